/*
 * policy_state.c - the per-core policy state.
 *
 * Owner: one dataplane lcore.
 *
 * What it does: adopts a newly published snapshot (references, pool sets
 * kept or rebuilt by pools fingerprint, listeners opened and closed),
 * computes the effective limits (configured values with pushed overrides
 * applied), and applies runtime pushes (blocks/allows, domains, limits,
 * backend overrides, drain) sent by control/publish.c.
 *
 * Promises: a session keeps the snapshot and pool set it started its
 * transaction with (references counted); a retired pool set is freed only
 * when its last user is gone; a push that cannot be applied is recorded in
 * push_fail_seq/push_fail_err.
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

#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/client.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/policy_state.h"

static void state_backend_override_apply(struct gw_core *gc,
					 struct gw_pool_set *pool_set,
					 const struct gw_backend_override *o);

/* Per-core references on a snapshot (snapshot.h): written by this core
 * only, read by the main lcore before it frees a retired snapshot. */
void state_snapshot_ref(struct gw_core *gc, struct mxg_snapshot *sn)
{
	__atomic_store_n(&sn->refs[gc->core].n, sn->refs[gc->core].n + 1,
			 __ATOMIC_RELEASE);
}

void state_snapshot_unref(struct gw_core *gc, struct mxg_snapshot *sn)
{
	__atomic_store_n(&sn->refs[gc->core].n, sn->refs[gc->core].n - 1,
			 __ATOMIC_RELEASE);
}

void state_pool_set_free(struct gw_core *gc, struct gw_pool_set *pool_set)
{
	relay_pools_destroy(pool_set->rp);
	state_snapshot_unref(gc, pool_set->snap);
	free(pool_set);
}

/* One user of pool_set is done with it; a retired set nobody uses is freed. */
void state_pool_set_put(struct gw_core *gc, struct gw_pool_set *pool_set)
{
	pool_set->users--;
	if (!pool_set->retired || pool_set->users > 0)
		return;
	for (struct gw_pool_set **pp = &gc->pool_sets_retired; *pp;
	     pp = &(*pp)->next)
		if (*pp == pool_set) {
			*pp = pool_set->next;
			break;
		}
	state_pool_set_free(gc, pool_set);
}

struct gw_pool_set *state_pool_set_new(struct gw_core *gc,
				       struct mxg_snapshot *sn)
{
	struct gw_pool_set *pool_set = calloc(1, sizeof(*pool_set));
	int e = 0;

	if (!pool_set)
		return NULL;
	pool_set->rp = relay_pools_create(&sn->rpc, &e);
	if (!pool_set->rp) {
		free(pool_set);
		return NULL;
	}
	pool_set->snap = sn;
	pool_set->fp = sn->pools_fp;
	state_snapshot_ref(gc, sn);
	for (uint32_t i = 0; i < gc->n_backend_overrides; i++)
		state_backend_override_apply(gc, pool_set,
					     &gc->backend_overrides[i]);
	return pool_set;
}

/* Make s use the core's current snapshot and pools for its next
 * transaction (DESIGN 6: a transaction keeps the snapshot it began with).
 * A session whose listener is gone from the new snapshot keeps its old
 * one; a sticky (PROXY) backend keeps its pool set. */
void state_session_adopt(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->snap != gc->snap) {
		const struct mxg_snapshot_listener *l =
			mxg_snapshot_listener(gc->snap, s->lport);

		if (l) {
			state_snapshot_ref(gc, gc->snap);
			state_snapshot_unref(gc, s->snap);
			s->snap = gc->snap;
			s->lst = l;
		}
	}
	if (s->pool_set != gc->pool_set && !s->be) {
		gc->pool_set->users++;
		state_pool_set_put(gc, s->pool_set);
		s->pool_set = gc->pool_set;
	}
}

static void state_backend_override_apply(struct gw_core *gc,
					 struct gw_pool_set *pool_set,
					 const struct gw_backend_override *o)
{
	uint32_t n = relay_pools_nservers(pool_set->rp);
	const char *slash = strchr(o->name, '/');
	const char *hp = slash ? slash + 1 : o->name;

	RTE_SET_USED(gc);
	for (uint32_t i = 0; i < n; i++) {
		struct relay_server_info si;
		char name[64];

		relay_server_get_info(pool_set->rp, i, &si);
		if (pool_set->snap->pools[si.pool].maildir)
			continue;
		if (slash &&
		    (strlen(relay_pool_name(pool_set->rp, si.pool)) !=
		     (size_t)(slash - o->name) ||
		     strncmp(relay_pool_name(pool_set->rp, si.pool), o->name,
			     (size_t)(slash - o->name)) != 0))
			continue;
		relay_server_format(si.v6, si.addr, si.addr6, si.port, name,
				    sizeof(name));
		if (strcmp(name, hp) == 0)
			relay_server_set_admin_down(pool_set->rp, i, o->down);
	}
}

/* Recomputes the effective limits of the current snapshot's listeners and
 * rules from their configured values and the pushed overrides. Keys:
 * "listener.NAME.FIELD" (max_connections, max_connections_per_ip,
 * connection_rate_per_ip, max_messages_per_connection) and
 * "rate_limit.NAME.per_minute" / ".burst". Unknown keys were refused by
 * the main lcore before the push. */
void *(*state_limits_calloc)(size_t n, size_t size) = calloc;

/* The tables could not be allocated for sn: the previous (smaller) ones
 * stay; listeners and rules beyond them run on their configured values,
 * without the pushed overrides. Said once per generation, never silently:
 * a log line, stats.limits_alloc_failed, and the generation in the push
 * state (the reload and push replies name it). */
static void state_limits_failed(struct gw_core *gc,
				const struct mxg_snapshot *sn)
{
	gc->stats.limits_alloc_failed++;
	__atomic_store_n(&gc->limits_failed_generation, sn->generation,
			 __ATOMIC_RELAXED);
	log_line(gc,
		 "event=error what=limits core=%u generation=%llu "
		 "detail=\"effective limits not allocated (out of memory): "
		 "%u pushed limit override(s) not applied beyond the first "
		 "%u listener(s) and %u rule(s)\"",
		 gc->core, (unsigned long long)sn->generation, gc->n_over,
		 gc->listener_limits_cap, gc->rule_limits_cap);
}

int state_limits_compute(struct gw_core *gc)
{
	const struct mxg_snapshot *sn = gc->snap;
	int rc = 0;

	if (gc->listener_limits_cap < sn->n_listeners) {
		struct gw_limits *n = state_limits_calloc(
			sn->n_listeners, sizeof(*gc->listener_limits));

		if (n) {
			free(gc->listener_limits);
			gc->listener_limits = n;
			gc->listener_limits_cap = sn->n_listeners;
		} else {
			rc = -ENOMEM;
		}
	}
	if (gc->rule_limits_cap < sn->n_rules) {
		struct gw_rule_limits *n = state_limits_calloc(
			sn->n_rules, sizeof(*gc->rule_limits));

		if (n) {
			free(gc->rule_limits);
			gc->rule_limits = n;
			gc->rule_limits_cap = sn->n_rules;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc < 0)
		state_limits_failed(gc, sn);
	for (uint32_t i = 0; i < sn->n_listeners && i < gc->listener_limits_cap;
	     i++) {
		const struct ctl_listener *cl = sn->listeners[i].cl;

		gc->listener_limits[i].max_conn = cl->max_connections;
		gc->listener_limits[i].per_ip = cl->max_connections_per_ip;
		gc->listener_limits[i].rate = cl->connection_rate_per_ip;
		gc->listener_limits[i].msgs = cl->max_messages_per_connection;
	}
	for (uint32_t i = 0; i < sn->n_rules && i < gc->rule_limits_cap; i++) {
		gc->rule_limits[i].per_minute = sn->rules[i].per_minute;
		gc->rule_limits[i].burst = sn->rules[i].burst;
	}
	for (uint32_t k = 0; k < gc->n_over; k++) {
		const char *key = gc->over[k].key;
		const char *dot = strrchr(key, '.');
		uint32_t v = gc->over[k].value;
		const char *name;
		size_t nlen;

		if (!dot)
			continue;
		if (strncmp(key, "listener.", 9) == 0) {
			name = key + 9;
			nlen = dot > name ? (size_t)(dot - name) : 0;
			for (uint32_t i = 0; i < sn->n_listeners &&
					     i < gc->listener_limits_cap; i++) {
				const char *ln = sn->listeners[i].cl->name;

				if (strlen(ln) != nlen ||
				    strncmp(ln, name, nlen) != 0)
					continue;
				if (!strcmp(dot + 1, "max_connections"))
					gc->listener_limits[i].max_conn = v;
				else if (!strcmp(dot + 1,
						 "max_connections_per_ip"))
					gc->listener_limits[i].per_ip = v;
				else if (!strcmp(dot + 1,
						 "connection_rate_per_ip"))
					gc->listener_limits[i].rate = v;
				else if (!strcmp(dot + 1,
						 "max_messages_per_connection"))
					gc->listener_limits[i].msgs = v;
			}
		} else if (strncmp(key, "rate_limit.", 11) == 0) {
			name = key + 11;
			nlen = dot > name ? (size_t)(dot - name) : 0;
			for (uint32_t i = 0; i < sn->n_rules &&
					     i < gc->rule_limits_cap; i++) {
				const char *rn = sn->rules[i].name;

				if (!rn || strlen(rn) != nlen ||
				    strncmp(rn, name, nlen) != 0)
					continue;
				if (!strcmp(dot + 1, "per_minute"))
					gc->rule_limits[i].per_minute = v;
				else if (!strcmp(dot + 1, "burst"))
					gc->rule_limits[i].burst = v;
			}
		}
	}
	return rc;
}

static bool state_listening(const struct gw_core *gc, uint16_t port)
{
	return gc->listening[port >> 3] & (1u << (port & 7));
}

void state_set_listening(struct gw_core *gc, uint16_t port, bool on)
{
	if (on)
		gc->listening[port >> 3] |= (uint8_t)(1u << (port & 7));
	else
		gc->listening[port >> 3] &= (uint8_t)~(1u << (port & 7));
}

int state_listen_families(struct gw_core *gc,
			  const struct mxg_snapshot_listener *l)
{
	unsigned fam = TCP_FAMILY_ANY;

	if (l->cl->family == CTL_FAMILY_V4)
		fam = TCP_FAMILY_V4;
	else if (l->cl->family == CTL_FAMILY_V6)
		fam = TCP_FAMILY_V6;
	return tcp_listen_families(gc->st, l->port, fam);
}

/* Listener changes apply to new connections only: a removed port stops
 * accepting (its established sessions go on), a new one starts. */
static void state_listeners_sync(struct gw_core *gc)
{
	const struct mxg_snapshot *sn = gc->snap;

	for (uint32_t p = 0; p < 65536; p++) {
		if (!gc->listening[p >> 3]) {
			p |= 7;
			continue;
		}
		if (state_listening(gc, (uint16_t)p) &&
		    (gc->draining || !mxg_snapshot_listener(sn, (uint16_t)p))) {
			tcp_unlisten(gc->st, (uint16_t)p);
			state_set_listening(gc, (uint16_t)p, false);
		}
	}
	if (gc->draining)
		return;
	for (uint32_t i = 0; i < sn->n_listeners; i++) {
		uint16_t port = sn->listeners[i].port;
		int r;

		if (state_listening(gc, port)) {
			/* a changed address (family) applies to new SYNs */
			state_listen_families(gc, &sn->listeners[i]);
			continue;
		}
		r = tcp_listen(gc->st, port, &client_callbacks, gc);
		if (r < 0) {
			log_line(gc,
				 "event=error what=listen listener=%s port=%u "
				 "error=\"%s\"",
				 sn->listeners[i].cl->name, port, strerror(-r));
			continue;
		}
		state_listen_families(gc, &sn->listeners[i]);
		state_set_listening(gc, port, true);
	}
}

/* Adopt the published snapshot (once per poll iteration at most). */
void state_adopt(struct gw_core *gc, struct mxg_snapshot *sn)
{
	struct mxg_snapshot *old = gc->snap;

	state_snapshot_ref(gc, sn);
	gc->snap = sn;
	state_listeners_sync(gc);
	if (gc->pool_set->fp == sn->pools_fp) {
		/* same pools: keep their state, read settings from sn */
		state_snapshot_ref(gc, sn);
		state_snapshot_unref(gc, gc->pool_set->snap);
		gc->pool_set->snap = sn;
	} else {
		struct gw_pool_set *np = state_pool_set_new(gc, sn);

		if (np) {
			struct gw_pool_set *op = gc->pool_set;

			np->users = 1; /* the core's own */
			gc->pool_set = np;
			op->retired = true;
			op->next = gc->pool_sets_retired;
			gc->pool_sets_retired = op;
			be_flush_idle(gc, op);
			state_pool_set_put(gc, op);
		} else {
			log_line(gc,
				 "event=error what=reload detail=\"next-hop "
				 "pools of generation %llu not built (out of "
				 "memory); keeping the previous pools\"",
				 (unsigned long long)sn->generation);
		}
	}
	state_limits_compute(gc);
	__atomic_store_n(&gc->generation, sn->generation, __ATOMIC_RELEASE);
	log_line(gc, "event=policy generation=%llu",
		 (unsigned long long)sn->generation);
	/* Sessions between transactions (greeted or HELO done, nothing
	 * pending) move now: a connected client that never starts a
	 * transaction must not pin the old snapshot and its tables. */
	if (gc->sess)
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];
			enum smtp_state st;

			if (!s->used || !s->sm || s->wait != W_NONE ||
			    s->snap == sn)
				continue;
			st = smtp_session_state(s->sm);
			if (st == SMTP_ST_HELO || st == SMTP_ST_READY)
				state_session_adopt(s);
		}
	state_snapshot_unref(gc, old);
}

/* 0, or -ENOSPC when the table is full (the main lcore refuses the
 * 65th distinct key before sending, so this is a second line). */
static int state_override_set(struct gw_core *gc, const char *key, uint32_t v)
{
	uint32_t i;

	for (i = 0; i < gc->n_over; i++)
		if (strcmp(gc->over[i].key, key) == 0)
			break;
	if (i == gc->n_over) {
		if (gc->n_over == GW_MAX_OVERRIDES)
			return -ENOSPC;
		gc->n_over++;
	}
	snprintf(gc->over[i].key, sizeof(gc->over[i].key), "%s", key);
	gc->over[i].value = v;
	return 0;
}

static int state_backend_override_set(struct gw_core *gc, const char *name,
				      bool down)
{
	uint32_t i;

	for (i = 0; i < gc->n_backend_overrides; i++)
		if (strcmp(gc->backend_overrides[i].name, name) == 0)
			break;
	if (i == gc->n_backend_overrides) {
		if (gc->n_backend_overrides == GW_MAX_OVERRIDES)
			return -ENOSPC;
		gc->n_backend_overrides++;
	}
	snprintf(gc->backend_overrides[i].name,
		 sizeof(gc->backend_overrides[i].name), "%s", name);
	gc->backend_overrides[i].down = down;
	state_backend_override_apply(gc, gc->pool_set,
				     &gc->backend_overrides[i]);
	return 0;
}

/* Runtime pushes (gateway.h): each costs the same whatever the size of
 * the tables (one lpm add/delete, one hash insert, a short list). */
void state_pushes_apply(struct gw_core *gc)
{
	struct rte_ring *r = gc->gw->push[gc->core];
	struct gw_push p;
	uint64_t seq = 0, sent = 0;

	while (rte_ring_sc_dequeue_elem(r, &p, sizeof(p)) == 0) {
		size_t nl = strnlen(p.name, sizeof(p.name));
		int rc = 0;

		switch (p.kind) {
		case GW_PUSH_BLOCK:
		case GW_PUSH_ALLOW:
		{
			uint32_t act = p.kind == GW_PUSH_BLOCK ? POL_ACL_DENY
							       : POL_ACL_ALLOW;

			rc = p.v6 ? pol_block_add6(gc->blocks, p.addr6,
						   p.depth, act, p.expire_us)
				  : pol_block_add4(gc->blocks, p.ip, p.depth,
						   act, p.expire_us);
			break;
		}
		case GW_PUSH_UNBLOCK:
			/* not there: nothing to undo, not a failure */
			if (p.v6)
				(void)pol_block_del6(gc->blocks, p.addr6,
						     p.depth);
			else
				(void)pol_block_del4(gc->blocks, p.ip,
						     p.depth);
			break;
		case GW_PUSH_DOMAIN_ADD:
			rc = pol_domains_add(gc->dom_over, p.name, nl,
					     p.subdomains,
					     POL_DOM_AUTHORITATIVE);
			break;
		case GW_PUSH_DOMAIN_DEL:
			rc = pol_domains_add(gc->dom_over, p.name, nl,
					     p.subdomains, POL_DOM_REMOVED);
			break;
		case GW_PUSH_LIMIT:
			rc = state_override_set(gc, p.name, p.value);
			if (rc >= 0)
				rc = state_limits_compute(gc);
			break;
		case GW_PUSH_BACKEND:
			rc = state_backend_override_set(gc, p.name, p.down);
			break;
		case GW_PUSH_DRAIN:
			gc->draining = true;
			state_listeners_sync(gc);
			break;
		default:
			break;
		}
		if (rc < 0) {
			gc->stats.pushes_failed++;
			__atomic_store_n(&gc->push_fail_err, rc,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&gc->push_fail_seq, p.seq,
					 __ATOMIC_RELAXED);
			log_line(gc, "event=push_failed seq=%llu kind=%u "
				 "error=\"%s\"",
				 (unsigned long long)p.seq, p.kind,
				 strerror(-rc));
		} else {
			gc->stats.pushes_applied++;
		}
		seq = p.seq;
		sent = p.t_sent_us;
	}
	if (seq) {
		__atomic_store_n(&gc->push_lat_us, clock_us() - sent,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&gc->push_seq, seq, __ATOMIC_RELEASE);
	}
}
