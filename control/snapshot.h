/*
 * snapshot.h - the immutable policy snapshot (DESIGN 6): everything a
 * dataplane lcore consults to decide who may connect, send and relay and
 * where mail goes, compiled from one configuration file by the main lcore
 * off the data path and published to the dataplane lcores by RCU.
 *
 * Lifetime. The main lcore builds a snapshot (mxg_snapshot_build), then
 * publishes it (gw_publish in gateway.h). A dataplane lcore adopts the
 * published pointer once per poll iteration and takes a per-core
 * reference for itself and for every session and backend pool set that
 * keeps using it (a session keeps the snapshot its transaction began
 * with). The main lcore frees a retired snapshot once (1) every
 * dataplane lcore has reported a quiescent state since it was replaced
 * (rte_rcu_qsbr: no core can still be about to take a new reference) and
 * (2) every per-core reference count is zero. refs[k] is written only by
 * core k and read by the main lcore.
 *
 * Nothing in a published snapshot is ever modified: runtime pushes go to
 * per-core overlay tables (dataplane/gateway/policy_state.c), never here.
 */
#ifndef MXG_SNAPSHOT_H
#define MXG_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "auth/jobs.h"
#include "auth/sasl.h"
#include "control/config.h"
#include "dataplane/bounds.h"
#include "dataplane/relay/relay_client.h"
#include "dataplane/relay/relay_pool.h"
#include "dataplane/smtp/smtp_session.h"

struct pol_acl;
struct tls_server_ctx;
struct pol_domains;
struct pol_addrlist;
struct content_ruleset;

/* Sender or recipient restrictions, compiled. NULL lists are empty. */
struct mxg_snapshot_restrict {
	struct pol_addrlist *accept;
	struct pol_addrlist *reject;
};

/* One listener (receive connector), compiled. */
struct mxg_snapshot_listener {
	const struct ctl_listener *cl;
	struct smtp_config smtp;
	uint16_t port;
	uint32_t idx;
	struct pol_acl *networks; /* NULL: serves every address */
	struct pol_acl *acl;	  /* listener allow/deny; NULL: none */
	struct mxg_snapshot_restrict senders, recipients;
	struct tls_server_ctx *tls; /* cl->tls.ctx (owned by cfg, so freed
				       with the snapshot); NULL: no TLS */
	/* AUTH (issue 14): the SASL machine's listener policy and the
	 * mechanism list the engine advertises (smtp.auth_mechanisms
	 * points here; "" when auth is off). */
	struct auth_sasl_config sasl;
	char auth_mechs[24];
	/* content rules (issue 15): the listener's compiled set (owned by
	 * cfg); NULL: none */
	const struct content_ruleset *content;
	/* the set's per-rule counters (cfg; config.h ctl_rule_hits) */
	struct ctl_rule_hits *const *content_hits;
};

/* One next-hop pool, compiled: how to talk to its servers. */
struct mxg_snapshot_pool {
	const struct ctl_pool *cp;
	bool maildir;
	struct relay_client_config rc;
};

/* One rate-limit rule, compiled. fp fingerprints its content (key, what,
 * listener, name) but not its numbers, so a reload or a push that only
 * changes per_minute/burst keeps the buckets. */
struct mxg_snapshot_rule {
	uint64_t fp;
	const char *name;
	enum ctl_rl_key key;
	enum ctl_rl_what what;
	uint32_t per_minute, burst;
	int32_t listener; /* index, -1 = every listener */
};

struct mxg_snapshot {
	uint64_t generation;
	struct ctl_config cfg; /* owned */

	struct mxg_snapshot_listener *listeners;
	uint32_t n_listeners;

	struct mxg_snapshot_pool *pools;
	uint32_t n_pools;
	struct relay_pool_config *rp;
	struct relay_server_config *rs;
	const char **domain_ptrs;
	struct relay_pools_config rpc;
	uint64_t pools_fp; /* same fingerprint: same pools, servers, order */
	bool has_maildir;

	struct pol_acl *acl;	    /* global allow/deny; NULL: none */
	struct pol_acl *relay_nets; /* NULL: none */
	struct pol_domains *domains;/* accepted domains (never NULL) */
	struct mxg_snapshot_restrict senders, recipients;
	struct mxg_snapshot_rule *rules;
	uint32_t n_rules;
	uint32_t rate_table_size;
	uint32_t block_table_size; /* pushed blocks per core */
	uint8_t ipv6_prefix;       /* per-IP keys of IPv6 clients: /N */

	size_t smtp_mem;  /* bytes one session engine needs (its struct) */
	size_t smtp_buf;  /* bytes of one engine work area (pooled) */
	size_t relay_mem; /* bytes one backend client needs */
	const char *hostname;
	/* AUTH (issue 14): the credential stores of this policy, owned by
	 * cfg.auth (loaded with the file), so a reload swaps them with the
	 * rest of the snapshot, all or nothing; jobs copy what they read. */
	const struct auth_store *auth_users;	  /* NULL: no users file */
	const struct auth_sendermap *sender_map; /* NULL: senders free */
	struct auth_gss_config gss;		  /* copied into GSS jobs */
	uint32_t tables_bytes; /* memory of the compiled tables, KiB */
	/* Hyperscan scratch for every rule set of this snapshot, one per
	 * dataplane core (index gw_core.core), allocated here on the main
	 * lcore so no core allocates one on its data path; NULL when no
	 * listener has content rules. */
	void *content_scratch[MXG_MAX_CORES];

	/* Per-core references (see above); one cache line each. */
	struct {
		volatile uint32_t n;
	} __rte_cache_aligned refs[MXG_MAX_CORES];
};

/*
 * Compiles cfg into a new snapshot, taking ownership of cfg's contents
 * (cfg is zeroed on success and on failure alike, so the caller never
 * frees it). Main lcore only; allocates (rte_malloc for the lpm tables).
 * Returns 0, or a negative errno with a message in err.
 */
int mxg_snapshot_build(struct ctl_config *cfg, uint64_t generation,
		       struct mxg_snapshot **out, char *err, size_t errlen);

/* Replaces the oldest session-ticket key of the ring all snapshots'
 * TLS contexts share (control plane, every tls.ticket_rotation). 0 or
 * a negative errno. Main lcore. */
int mxg_snapshot_tls_rotate(void);

/* Frees s and everything it owns. Only once no core can reach it. */
void mxg_snapshot_free(struct mxg_snapshot *s);

/* Waits until every table queued for freeing is freed and stops the
 * reaper thread (main lcore, at shutdown, before rte_eal_cleanup). */
void mxg_snapshot_reaper_stop(void);

/* Total of the per-core references (main lcore; racy but monotonic
 * enough for "is it zero yet" once no new references can be taken). */
uint32_t mxg_snapshot_refs(const struct mxg_snapshot *s);

/* The listener on port, or NULL. */
const struct mxg_snapshot_listener *mxg_snapshot_listener(const struct mxg_snapshot *s,
						uint16_t port);

/* Why a reload from old to new cannot be applied without a restart
 * (stack, Maildir or log settings differ, or more per-session memory is
 * needed): 0, or -EINVAL with the reason in err. */
int mxg_snapshot_reloadable(const struct mxg_snapshot *old,
			    const struct mxg_snapshot *new, char *err,
			    size_t errlen);

#endif /* MXG_SNAPSHOT_H */
