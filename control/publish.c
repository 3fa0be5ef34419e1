/*
 * publish.c - the main lcore's side of the gateway's policy (DESIGN 5, 8):
 * the process-wide state (gw_global_init/fini), publishing a snapshot to
 * every dataplane lcore with RCU (gw_publish), freeing retired snapshots
 * no lcore can reach any more (gw_reclaim), and sending runtime pushes over
 * each core's push ring (gw_push_send). The dataplane side that adopts and
 * applies them is dataplane/gateway/policy_state.c.
 *
 * Owner: the main lcore. Promises: a snapshot is freed only after every
 * dataplane lcore has reported a quiescent state since it was replaced;
 * a refused publish leaves the running policy as it was.
 */
#include "dataplane/gateway.h"

#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

/* Retired snapshots a core may still use: at most this many pending
 * before a publish waits (reloads are rare; 200 in a test run). */
#define GW_MAX_RETIRED 1024

int gw_global_init(struct gw_global *gw, struct mxg_snapshot *first,
		   uint32_t max_sessions, uint16_t n_cores, char *err,
		   size_t errlen)
{
	size_t sz;

	memset(gw, 0, sizeof(*gw));
	gw->max_sessions = max_sessions;
	gw->max_backends = max_sessions / 2 + 16;
	gw->maildir_path = first->cfg.maildir.path;
	gw->maildir_workers = first->cfg.maildir.workers;
	gw->maildir_max_jobs = first->cfg.maildir.max_jobs;
	gw->quarantine_path = first->cfg.content_quarantine_maildir;
	gw->our_ip = rte_cpu_to_be_32(first->cfg.stack.address);
	gw->hostname = first->hostname;
	gw->smtp_mem = first->smtp_mem;
	gw->smtp_buf = first->smtp_buf;
	gw->relay_mem = first->relay_mem;
	gw->n_cores = n_cores;
	gw->first = first;
	gw->snap = first;
	if (n_cores == 0 || n_cores > MXG_MAX_CORES) {
		snprintf(err, errlen, "%u cores: 1..%u supported", n_cores,
			 MXG_MAX_CORES);
		return -EINVAL;
	}
	gw->lconns = calloc(65536, sizeof(*gw->lconns));
	gw->retired = calloc(GW_MAX_RETIRED, sizeof(*gw->retired));
	gw->cap_retired = GW_MAX_RETIRED;
	sz = rte_rcu_qsbr_get_memsize(n_cores);
	gw->qs = rte_zmalloc("mxg_rcu", sz, RTE_CACHE_LINE_SIZE);
	if (!gw->lconns || !gw->retired || !gw->qs)
		goto nomem;
	if (rte_rcu_qsbr_init(gw->qs, n_cores) != 0) {
		snprintf(err, errlen, "rte_rcu_qsbr_init: %s",
			 rte_strerror(rte_errno));
		goto fail;
	}
	for (uint16_t k = 0; k < n_cores; k++) {
		char name[32];

		snprintf(name, sizeof(name), "mxg_push%u", k);
		gw->push[k] = rte_ring_create_elem(name, sizeof(struct gw_push),
						   1024, SOCKET_ID_ANY,
						   RING_F_SP_ENQ |
							   RING_F_SC_DEQ);
		if (!gw->push[k]) {
			snprintf(err, errlen, "push ring: %s",
				 rte_strerror(rte_errno));
			goto fail;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	gw->snap = NULL; /* the caller still owns first on failure */
	gw->first = NULL;
	gw_global_fini(gw);
	return -ENOMEM;
}

void gw_global_fini(struct gw_global *gw)
{
	for (uint32_t i = 0; i < gw->n_retired; i++)
		mxg_snapshot_free(gw->retired[i].s);
	if (gw->snap)
		mxg_snapshot_free(gw->snap);
	mxg_snapshot_reaper_stop();
	for (int k = 0; k < MXG_MAX_CORES; k++)
		rte_ring_free(gw->push[k]);
	rte_free(gw->qs);
	free(gw->lconns);
	free(gw->retired);
	memset(gw, 0, sizeof(*gw));
}

/*
 * The RCU swap (DESIGN 6). Publishing is one atomic pointer store; the
 * old snapshot goes on the retired list with a qsbr token. A dataplane
 * core reports a quiescent state at the end of every poll iteration
 * (lcore.c), after which it can no longer be holding the old pointer
 * without a reference: every read of gw->snap happens inside an
 * iteration and is either turned into a counted reference (state_adopt)
 * or dropped. So once the token is reached, the per-core counts only go
 * down, and the snapshot is freed when they are all zero. Sessions keep
 * a retired snapshot alive for the rest of their transaction.
 */
int gw_publish(struct gw_global *gw, struct mxg_snapshot *sn, char *err,
	       size_t errlen)
{
	struct mxg_snapshot *old = gw->snap;
	int r = mxg_snapshot_reloadable(old, sn, err, errlen);

	if (r < 0)
		return r;
	if (sn->rate_table_size != old->rate_table_size ||
	    sn->block_table_size != old->block_table_size) {
		snprintf(err, errlen, "%s: policy.%s changed; "
				      "that needs a restart (nothing was "
				      "changed)",
			 sn->cfg.source ? sn->cfg.source : "config",
			 sn->rate_table_size != old->rate_table_size
				 ? "rate_table_size"
				 : "block_table_size");
		return -EINVAL;
	}
	gw_reclaim(gw);
	if (gw->n_retired == gw->cap_retired) {
		snprintf(err, errlen, "%u earlier snapshots are still in use "
				      "by sessions; try again later",
			 gw->n_retired);
		return -EBUSY;
	}
	__atomic_store_n(&gw->snap, sn, __ATOMIC_RELEASE);
	gw->retired[gw->n_retired].s = old;
	gw->retired[gw->n_retired].token = rte_rcu_qsbr_start(gw->qs);
	gw->n_retired++;
	gw->snapshots_retired++;
	return 0;
}

unsigned gw_reclaim(struct gw_global *gw)
{
	unsigned freed = 0;
	uint32_t j = 0;

	for (uint32_t i = 0; i < gw->n_retired; i++) {
		struct gw_retired *r = &gw->retired[i];

		if (rte_rcu_qsbr_check(gw->qs, r->token, false) == 1 &&
		    mxg_snapshot_refs(r->s) == 0) {
			if (r->s == gw->first)
				gw->first = NULL;
			mxg_snapshot_free(r->s);
			freed++;
			continue;
		}
		gw->retired[j++] = *r;
	}
	gw->n_retired = j;
	gw->snapshots_freed += freed;
	return freed;
}

int64_t gw_push_send(struct gw_global *gw, struct gw_push *p)
{
	for (uint16_t k = 0; k < gw->n_cores; k++)
		if (rte_ring_free_count(gw->push[k]) == 0)
			return -ENOBUFS;
	p->seq = ++gw->push_seq;
	p->t_sent_us = clock_us();
	for (uint16_t k = 0; k < gw->n_cores; k++)
		rte_ring_sp_enqueue_elem(gw->push[k], p, sizeof(*p));
	return (int64_t)p->seq;
}
