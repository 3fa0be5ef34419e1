/*
 * gateway.h - the SMTP gateway on one dataplane lcore: listeners on the
 * userspace TCP stack run SMTP sessions (dataplane/smtp) and relay every
 * transaction in-line to a backend MTA (dataplane/relay) or to the local
 * Maildir, answering the client's end of data with 250 only after the next
 * hop did (DESIGN 5).
 *
 * Ownership: struct gw_global is built by the main lcore before the
 * dataplane starts and is read-only afterwards. Each struct gw_core belongs
 * to one dataplane lcore: its sessions, backend connections, pools, Maildir
 * instance and counters; other threads only read its counters and drain
 * its log ring. Never blocks; all memory is allocated by gw_core_create().
 */
#ifndef MXG_GATEWAY_H
#define MXG_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/config.h"
#include "dataplane/relay/relay_client.h"
#include "dataplane/relay/relay_pool.h"
#include "dataplane/smtp/smtp_session.h"

struct net_stack;

/* One listener, compiled from the configuration. */
struct gw_listener {
	const struct ctl_listener *cl;
	struct smtp_config smtp;
	uint16_t port;
};

/* One pool, compiled: how to talk to its servers. */
struct gw_pool {
	const struct ctl_pool *cp;
	bool maildir;
	struct relay_client_config rc;
};

/* Process-wide, read-only once the dataplane runs. */
struct gw_global {
	const struct mxg_config *cfg;
	struct gw_listener *listeners;
	uint32_t n_listeners;
	struct gw_pool *pools;
	uint32_t n_pools;
	struct relay_pool_config *rp;   /* relay_pools_create() input */
	struct relay_server_config *rs; /* servers of every pool */
	const char **domain_ptrs;
	struct relay_pools_config rpc;
	uint32_t max_sessions;   /* per core */
	uint32_t max_backends;   /* per core */
	size_t smtp_mem;         /* bytes per session engine */
	size_t relay_mem;        /* bytes per backend client */
	const char *maildir_path;
	const char *hostname;
	rte_be32_t our_ip;
};

/* Counters of one core; summed by the reader. */
struct gw_stats {
	uint64_t sessions, sessions_live, sessions_refused;
	uint64_t messages_accepted, messages_rejected, messages_tempfail;
	uint64_t rcpts_accepted, rcpts_rejected;
	uint64_t bytes_in;
	uint64_t backend_connects, backend_live, backend_reused;
	uint64_t backend_errors, backend_checks;
	uint64_t maildir_delivered, maildir_failed;
	uint64_t log_dropped;
	/* Policy (issue 6): refusals by reason and table sizes. */
	uint64_t conn_denied_acl;     /* deny lists, networks, pushed blocks */
	uint64_t conn_denied_limit;   /* max_connections (listener, per IP) */
	uint64_t conn_denied_rate;    /* connection rate per IP, rate rules */
	uint64_t mail_denied_auth;    /* 530 5.7.0: AUTH required */
	uint64_t mail_denied_sender;  /* 550 5.7.1: sender restrictions */
	uint64_t mail_rate_limited;   /* 451 4.7.1 at MAIL */
	uint64_t mail_denied_count;   /* 421 4.7.0: messages per connection */
	uint64_t rcpt_denied_relay;   /* 554 5.7.1 Relay access denied */
	uint64_t rcpt_denied_restrict;/* 550 5.7.1: recipient restrictions */
	uint64_t rcpt_rate_limited;   /* 451 4.7.1 at RCPT */
	uint64_t rl_entries;          /* rate-limit buckets held (gauge) */
	uint64_t rl_evictions;        /* buckets evicted (LRU) */
	uint64_t ipconn_entries;      /* client IPs with live connections */
	uint64_t policy_generation;   /* snapshot this core uses (gauge) */
	uint64_t pushes_applied;      /* runtime pushes applied */
} __attribute__((aligned(64)));

struct gw_core;

/* Builds gw from the configuration. Returns 0 or -EINVAL with a message in
 * err. Main lcore. */
int gw_global_init(struct gw_global *gw, const struct mxg_config *cfg,
		   uint32_t max_sessions, char *err, size_t errlen);
void gw_global_fini(struct gw_global *gw);

/* Per-core gateway: listens on every listener port of st. log: the ring
 * log lines (char * from log_pool) go to; may be NULL. Returns NULL with a
 * message in err on failure. */
struct gw_core *gw_core_create(const struct gw_global *gw, uint16_t core,
			       struct net_stack *st, struct rte_ring *log,
			       struct rte_mempool *log_pool, char *err,
			       size_t errlen);

/* Periodic work: time-outs, Maildir completions, idle backend expiry,
 * health checks. Returns true when work is in flight that needs the loop
 * to stay awake (e.g. Maildir jobs). */
bool gw_core_poll(struct gw_core *gc, uint64_t now_us);

/* Closes every session and backend connection (no callbacks) and frees
 * everything. The stack must be destroyed afterwards. */
void gw_core_destroy(struct gw_core *gc);

const struct gw_stats *gw_core_stats(const struct gw_core *gc);

/* Log record size (a line, NUL-terminated). */
#define GW_LOG_LINE 768

#endif /* MXG_GATEWAY_H */
