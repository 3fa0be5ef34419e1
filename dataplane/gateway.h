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
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "control/config.h"
#include "control/snapshot.h"
#include "dataplane/relay/relay_client.h"
#include "dataplane/relay/relay_pool.h"
#include "dataplane/workers/workers.h"
#include "dataplane/smtp/smtp_session.h"

struct net_stack;
struct worker_pool;

/* Runtime pushes (mxgatectl): sent by the main lcore to every dataplane
 * lcore over its push ring, applied there between two poll iterations to
 * the core's own overlay state. They survive a reload (they are not part
 * of any snapshot) and are lost on restart. */
enum gw_push_kind {
	GW_PUSH_BLOCK = 1,  /* CIDR denied (optional expiry) */
	GW_PUSH_ALLOW,      /* CIDR allowed even if a list denies it */
	GW_PUSH_UNBLOCK,    /* remove a pushed BLOCK/ALLOW entry */
	GW_PUSH_DOMAIN_ADD, /* accept mail for a domain */
	GW_PUSH_DOMAIN_DEL, /* stop accepting it */
	GW_PUSH_LIMIT,      /* name = limit key, value */
	GW_PUSH_BACKEND,    /* name = [POOL/]ADDR:PORT, down */
	GW_PUSH_DRAIN,      /* stop accepting new connections */
};

struct gw_push {
	uint64_t seq;       /* set by gw_push_send() */
	uint64_t t_sent_us; /* clock_us() when sent */
	uint32_t kind;      /* enum gw_push_kind */
	uint32_t ip;        /* BLOCK/ALLOW/UNBLOCK: IPv4, host order */
	uint8_t depth;      /* 0..32, or 0..128 when v6 */
	bool subdomains;    /* DOMAIN_*: ".example.com" */
	bool down;          /* BACKEND */
	bool v6;            /* BLOCK/ALLOW/UNBLOCK: addr6, not ip */
	uint8_t addr6[16];  /* IPv6 prefix, network order */
	uint32_t value;     /* LIMIT */
	uint64_t expire_us; /* BLOCK/ALLOW: clock_us() deadline, 0 never */
	char name[120];     /* domain, limit key or backend */
};

/* Process-wide state shared by the main lcore and every dataplane lcore.
 * The fixed part is written before the dataplane starts; snap is
 * published by the main lcore (gw_publish) and read by the dataplane
 * lcores once per iteration; lconns are per-listener-port connection
 * counts kept by atomics (a listener limit spans all cores). */
struct gw_global {
	uint32_t max_sessions;   /* per core */
	uint32_t max_backends;   /* per core */
	size_t smtp_mem;         /* bytes per session engine (struct) */
	size_t smtp_buf;         /* bytes per engine work area (pooled) */
	size_t relay_mem;        /* bytes per backend client */
	const char *maildir_path;
	uint32_t maildir_workers, maildir_max_jobs;
	const char *quarantine_path;  /* content_quarantine_maildir, NULL */
	struct worker_pool *workers;  /* the one pool: Maildir steps, TLS
					 handshakes (NULL: listeners with
					 TLS refuse clients) and AUTH's
					 credential checks (NULL: AUTH
					 answers 454); set before
					 gw_core_create */
	const char *hostname;
	rte_be32_t our_ip;
	uint16_t n_cores;

	struct mxg_snapshot *snap;    /* current; atomic pointer */
	struct rte_rcu_qsbr *qs;      /* one thread per dataplane core */
	struct gw_retired {
		struct mxg_snapshot *s;
		uint64_t token;
	} *retired;                   /* main lcore only */
	uint32_t n_retired, cap_retired;
	uint64_t snapshots_freed, snapshots_retired;
	struct rte_ring *push[MXG_MAX_CORES]; /* SP/SC, main -> core */
	uint64_t push_seq;            /* main lcore only */
	uint32_t *lconns;             /* [65536], atomic */
	uint32_t pushed_blocks;       /* entries the per-core tables hold */
	/* The first snapshot's pointers the fixed part uses. */
	struct mxg_snapshot *first;
};

/* Counters of one core; summed by the reader. */
struct gw_stats {
	uint64_t sessions, sessions_live, sessions_refused;
	/* of sessions_refused: answered 421 4.3.2 because the session table
	 * was full (the rest: no listener, engine refused, no slot in the
	 * unit harness) */
	uint64_t sessions_refused_busy;
	/* a MAIL or AUTH found its core's transaction / AUTH area pool
	 * empty and was answered 452 4.3.1 / 454 4.3.0 */
	uint64_t areas_exhausted;
	/* Overload mode: 1 while on (gauge), times entered, sessions
	 * closed idle by its shorter time-out */
	uint64_t overload, overload_entered, overload_idle_closed;
	/* ...pregreet clients closed first, sessions closed at the lower
	 * error limit (stack.overload_max_errors) */
	uint64_t overload_pregreet_closed, overload_errors_closed;
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
	uint64_t pushes_applied;      /* runtime pushes applied */
	uint64_t pushes_failed;       /* runtime pushes refused (table full) */
	/* Backend bookkeeping found broken by gw_core_check() or by a
	 * backend event whose owner was stale (issue 11); always 0. */
	uint64_t be_invariant_errors;
	uint64_t backend_idle;        /* of backend_live, in the idle cache
					 (gauge, every 20 ms) */
	/* Bytes the client transport dropped at the STARTTLS boundary
	 * (received after the STARTTLS line, past what the engine held;
	 * dataplane/gateway/xprt.h). */
	uint64_t starttls_discarded;
	/* Effective-limit tables not allocated at a reload or push (pushed
	 * limit overrides then partly not applied; logged). */
	uint64_t limits_alloc_failed;
	/* AUTH (issue 14; dataplane/gateway/auth.c): exchanges by outcome
	 * and mechanism, brute-force delays and lockouts, MAIL refused by
	 * the sender-login map. */
	uint64_t auth_ok_plain, auth_ok_login, auth_ok_gssapi;
	uint64_t auth_failed_plain, auth_failed_login, auth_failed_gssapi;
	uint64_t auth_locked;	  /* 454 4.7.0: IP or login locked out */
	uint64_t auth_lockouts;	  /* lockouts started */
	uint64_t auth_delayed;	  /* 535 held by the tarpit */
	uint64_t auth_tempfail;	  /* 454 4.7.0: store or pool unavailable */
	uint64_t mail_denied_login; /* 553 5.7.1: sender not the login's */
	/* Content rules (issue 15; gateway/content.c): messages scanned,
	 * passed unscanned (exempt client; no memory), cut by the scan
	 * limit; rule hits; messages by deciding action; headers added or
	 * dropped (over CONTENT_GW_ADD_MAX); quarantine copies started,
	 * messages quarantined (durable), quarantine verdicts answered 451. */
	uint64_t content_scanned, content_exempt, content_unscanned;
	uint64_t content_truncated, content_hits;
	uint64_t content_rejected, content_tempfailed, content_discarded;
	uint64_t content_quarantined, content_quarantine_failed;
	uint64_t content_quarantine_copies;
	uint64_t content_headers_added, content_headers_dropped;
	/* TLS on client connections (issue 13; xprt_tls.c). */
	uint64_t tls_handshakes;        /* completed */
	uint64_t tls_handshakes_failed; /* failed (alert or close) */
	uint64_t tls_tlsv1_2, tls_tlsv1_3; /* completed, by version */
	uint64_t tls_resumed;           /* completed by resumption */
	uint64_t tls_fail_protocol, tls_fail_version, tls_fail_other;
	uint64_t tls_fail_peer_cert;    /* client certificate missing or
					   not verified (required), alert */
	uint64_t tls_client_certs;      /* completed with a client cert */
	uint64_t tls_partners;          /* ...that matched tls_partners */
	uint64_t tls_jobs;              /* handshake steps posted */
	uint64_t tls_jobs_refused;      /* job ring full */
	uint64_t tls_jobs_abandoned;    /* connection gone mid-step */
	uint64_t tls_record_errors;     /* record layer failed later */
	uint64_t tls_live;              /* transports holding TLS state
					   (gauge; 0 when idle) */
	/* STARTTLS to backends (issue 13; backend.c). */
	uint64_t backend_tls_handshakes; /* completed (verified per pool) */
	uint64_t backend_tls_failed;	 /* handshake or verification failed */
	uint64_t backend_tls_missing;	 /* tls required: STARTTLS not offered
					    or refused (connection failed) */
	uint64_t backend_tls_cleartext;	 /* opportunistic: went on in clear */
	/* Issue 17: backend round trips (relay_client round_trips: a
	 * pipelined group of commands counts once) */
	uint64_t backend_round_trips;
} __attribute__((aligned(64)));

struct gw_core;

/* Sets up gw around its first snapshot (ownership passes to gw) for
 * n_cores dataplane lcores. Returns 0 or a negative errno with a message
 * in err. Main lcore, before the dataplane starts. */
int gw_global_init(struct gw_global *gw, struct mxg_snapshot *first,
		   uint32_t max_sessions, uint16_t n_cores, char *err,
		   size_t errlen);
/* Frees every snapshot and table; the dataplane must have stopped. */
void gw_global_fini(struct gw_global *gw);

/* Main lcore: publish s as the policy every core adopts at its next
 * iteration (RCU). Fails with -EINVAL and a reason in err, leaving the
 * running policy as it was, when s changes what needs a restart; s is
 * then still the caller's. On success gw owns s. */
int gw_publish(struct gw_global *gw, struct mxg_snapshot *s, char *err,
	       size_t errlen);
/* Main lcore: frees retired snapshots no core can reach any more.
 * Returns how many it freed. Cheap; call it every main-loop tick. */
unsigned gw_reclaim(struct gw_global *gw);
/* The snapshot now published (main lcore). */
static inline const struct mxg_snapshot *gw_current(const struct gw_global *gw)
{
	return __atomic_load_n(&gw->snap, __ATOMIC_ACQUIRE);
}

/* Main lcore: send p to every dataplane lcore. Returns its sequence
 * number (> 0), or -ENOBUFS when a core's ring is full. */
int64_t gw_push_send(struct gw_global *gw, struct gw_push *p);

/* Per-core gateway: listens on every listener port of st. log: the ring
 * log lines (char * from log_pool) go to; may be NULL. Returns NULL with a
 * message in err on failure. */
struct gw_core *gw_core_create(struct gw_global *gw, uint16_t core,
			       struct net_stack *st, struct rte_ring *log,
			       struct rte_mempool *log_pool, char *err,
			       size_t errlen);

/* Periodic work: time-outs, Maildir completions, idle backend expiry,
 * health checks. Maildir steps run on the worker pool, which wakes the
 * sleeping core when one comes back (call workers_poll() first). */
void gw_core_poll(struct gw_core *gc, uint64_t now_us);

/* Reports a quiescent state for RCU (once per poll iteration, after
 * gw_core_poll and the stack's input). */
void gw_core_quiescent(struct gw_core *gc);

/* Closes every session and backend connection (no callbacks) and frees
 * everything. The stack must be destroyed afterwards. */
void gw_core_destroy(struct gw_core *gc);

const struct gw_stats *gw_core_stats(const struct gw_core *gc);

/* The backend-connection invariant (issue 11, DESIGN 9): every backend
 * connection of gc is exactly one of
 *   idle      in its server's idle cache, owned by nobody;
 *   owned     by a live session (same slot generation) whose s->be is it;
 *   starting  TCP connect, greeting or EHLO in flight (health checks too);
 *   ending    closing, dead, QUIT or RSET in flight, or events still to
 *             be handled: each under a relay deadline or a TCP close;
 * every session's backend points back at it; and the pools' open and idle
 * counts per server, the pool sets' user counts and stats.backend_live
 * equal what the slots hold. Each violation adds one to
 * stats.be_invariant_errors and is logged (to stderr when teardown, else
 * through the core's log ring). Returns how many it found. Run by
 * gw_core_poll every 20 ms in debug and sanitizer builds; call it with
 * teardown = true once gc's lcore has stopped (before gw_core_destroy).
 * Never changes anything but the counter. */
unsigned gw_core_check(struct gw_core *gc, bool teardown);

/* Push progress of one core, read by the main lcore: the last sequence
 * applied and how long (microseconds) it took from gw_push_send() to the
 * moment the core had applied it. */
struct gw_push_state {
	uint64_t seq;
	uint64_t latency_us;
	uint64_t generation; /* snapshot the core uses */
	uint32_t blocks;     /* entries in its runtime block table */
	uint64_t fail_seq;   /* last push it could not apply (0: none) */
	int32_t fail_err;    /* why: -ENOSPC (table full), -EINVAL,
				-ENOMEM (limit tables not allocated) */
	/* last generation whose effective-limit tables this core could not
	 * allocate, so pushed limit overrides are partly not applied
	 * (0: none) */
	uint64_t limits_failed_generation;
};
void gw_core_push_state(const struct gw_core *gc, struct gw_push_state *st);

/* Backend end-of-data reply latency histogram of one core (bucket upper
 * bounds in milliseconds in GW_LAT_BOUNDS; the last bucket is +Inf). */
#define GW_LAT_BUCKETS 12
#define GW_LAT_BOUNDS {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000}
const uint64_t *gw_core_latency(const struct gw_core *gc, uint64_t *sum_us);

/* Log record size (a line, NUL-terminated). */
#define GW_LOG_LINE 768

#endif /* MXG_GATEWAY_H */
