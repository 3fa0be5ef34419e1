/*
 * backend_check.c - the backend-connection invariant.
 *
 * Owner: one dataplane lcore (gw_core_check; or the main lcore once that
 * lcore has stopped, at teardown).
 *
 * What it does: gw_core_check (gateway.h) checks every backend connection
 * is exactly idle, owned, starting or ending, that sessions and connections
 * point at each other, and that the pools' counts equal what the slots hold.
 *
 * Promises: never changes anything but stats.be_invariant_errors.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

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

#include "dataplane/gateway/core.h"
#include "dataplane/gateway/log.h"

static void __attribute__((format(printf, 3, 4)))
check_fail(struct gw_core *gc, bool teardown, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gc->stats.be_invariant_errors++;
	if (teardown)
		fprintf(stderr, "mxgate: core %u: backend invariant: %s\n",
			gc->core, msg);
	else
		log_line(gc, "event=invariant core=%u %s", gc->core, msg);
}

/* Which of the four a live backend slot is; NULL when none. */
static const char *check_backend_class(const struct gw_be *b)
{
	const struct gw_sess *o = b->owner;
	enum relay_state rs = relay_client_state(b->rc);

	if (b->idle)
		return o ? NULL : "idle";
	if (o)
		return o->used && o->gen == b->owner_gen && o->be == b
			       ? "owned"
			       : NULL;
	if (b->dead || b->closing || relay_client_done(b->rc) ||
	    rs == RELAY_ST_QUIT || rs == RELAY_ST_RSET ||
	    relay_client_event(b->rc) != NULL)
		return "ending";
	if (b->state == BE_CONNECTING || rs == RELAY_ST_CONNECTING ||
	    rs == RELAY_ST_SETUP || b->probe)
		return "starting";
	return NULL; /* unowned, not cached, nothing in flight: leaked */
}

/* The scans stop at the high-water marks: sessions at gc->sess_hwm,
 * backends at gc->be_hwm (no slot above either was ever used), and the
 * pool-set scans at be_n (1 + the highest backend slot not free, found by
 * gw_core_check's first pass). In debug builds this
 * check runs every 20 ms; over every slot (16,384 sessions of 2.7 KiB and
 * 8,208 backends by default) it cost about 15 % of a dataplane core in
 * bench/gateway.sh's perf profile, whatever the load. */
static unsigned check_pool_set(struct gw_core *gc, struct gw_pool_set *pool_set,
			       uint32_t be_n, bool teardown)
{
	unsigned bad = 0;
	uint32_t users = pool_set == gc->pool_set ? 1 : 0;

	for (uint32_t i = 0; i < gc->sess_hwm; i++)
		if (gc->sess[i].used && gc->sess[i].pool_set == pool_set)
			users++;
	for (uint32_t i = 0; i < be_n; i++)
		if (gc->be[i].state != BE_FREE &&
		    gc->be[i].pool_set == pool_set)
			users++;
	if (users != pool_set->users) {
		check_fail(gc, teardown, "pool set users %u, held by %u",
			   pool_set->users, users);
		bad++;
	}
	for (uint32_t srv = 0; srv < relay_pools_nservers(pool_set->rp);
	     srv++) {
		struct relay_server_info si;
		uint32_t conns = 0, idle = 0;

		relay_server_get_info(pool_set->rp, srv, &si);
		for (uint32_t i = 0; i < be_n; i++) {
			const struct gw_be *b = &gc->be[i];

			if (b->state == BE_FREE || b->pool_set != pool_set ||
			    b->srv != srv)
				continue;
			conns += b->counted;
			idle += b->idle;
		}
		if (si.conns != conns || si.idle != idle) {
			check_fail(gc, teardown,
				   "server %u: pool counts %u open %u idle, "
				   "slots hold %u open %u idle",
				   srv, si.conns, si.idle, conns, idle);
			bad++;
		}
	}
	return bad;
}

unsigned gw_core_check(struct gw_core *gc, bool teardown)
{
	unsigned bad = 0;
	uint64_t live = 0;
	uint32_t be_n = 0; /* 1 + highest backend slot not free */

	for (uint32_t i = 0; i < gc->be_hwm; i++) {
		const struct gw_be *b = &gc->be[i];

		if (b->state == BE_FREE)
			continue;
		live++;
		be_n = i + 1;
		if (!check_backend_class(b)) {
			check_fail(gc, teardown,
				   "backend=%s slot=%u idle=%d owner=%s "
				 "relay_state=%d dead=%d closing=%d: not idle, "
				   "owned, starting or ending",
				   b->name, i, b->idle,
				   b->owner ? "stale" : "none",
				   (int)relay_client_state(b->rc), b->dead,
				   b->closing);
			bad++;
		}
	}
	{
		/* every engine work area out of the pool is held by a live
		 * session (issue 18: none leaks, none is held twice) */
		uint32_t holders = 0;

		for (uint32_t i = 0; i < gc->sess_hwm; i++)
			if (gc->sess[i].used && gc->sess[i].sm &&
			    smtp_session_holds_buffers(gc->sess[i].sm))
				holders++;
		if (holders != gw_core_bufs_held(gc)) {
			check_fail(gc, teardown, "engine work areas: %u out "
				   "of the pool, %u sessions hold one",
				   gw_core_bufs_held(gc), holders);
			bad++;
		}
	}
	{
		/* issue 18: every transaction / AUTH area out of its pool is
		 * held by exactly one live session */
		uint32_t txn = 0, auth = 0;

		for (uint32_t i = 0; i < gc->sess_hwm; i++) {
			txn += gc->sess[i].used && gc->sess[i].txn;
			auth += gc->sess[i].used && gc->sess[i].auth;
		}
		if (txn != gw_area_held(&gc->txn_pool) ||
		    auth != gw_area_held(&gc->auth_pool)) {
			check_fail(gc, teardown, "areas: %u transaction and "
				   "%u AUTH out of the pools, sessions hold "
				   "%u and %u", gw_area_held(&gc->txn_pool),
				   gw_area_held(&gc->auth_pool), txn, auth);
			bad++;
		}
	}
	for (uint32_t i = 0; i < gc->sess_hwm; i++) {
		const struct gw_sess *s = &gc->sess[i];

		if (!s->used || !s->be)
			continue;
		if (s->be->state == BE_FREE || s->be->owner != s) {
			check_fail(gc, teardown, "sid=%s: its backend %s does "
				   "not point back at it", s->sid, s->be->name);
			bad++;
		}
	}
	if (live != gc->stats.backend_live) {
		check_fail(gc, teardown, "backend_live %llu, slots hold %llu",
			   (unsigned long long)gc->stats.backend_live,
			   (unsigned long long)live);
		bad++;
	}
	if (gc->pool_set)
		bad += check_pool_set(gc, gc->pool_set, be_n, teardown);
	for (struct gw_pool_set *pool_set = gc->pool_sets_retired; pool_set;
	     pool_set = pool_set->next)
		bad += check_pool_set(gc, pool_set, be_n, teardown);
	return bad;
}
