/*
 * core.c - the per-core scheduler of the gateway.
 *
 * Owner: one dataplane lcore (everything in its struct gw_core).
 *
 * What it does: allocates the core's slabs (sessions, backend connections,
 * relay clients, Maildir instance) in gw_core_create and frees them in
 * gw_core_destroy; keeps the two dirty lists and runs them (core_run);
 * gw_core_poll drives time: protocol deadlines, Maildir completions
 * (delivery.c), idle-backend expiry and health checks (backend.c), pushes
 * and snapshot adoption (policy_state.c), and the invariant (backend_check.c).
 *
 * How work flows. TCP callbacks never do protocol work themselves: they
 * mark the session or backend connection "dirty" and run the dirty lists
 * (core_run). A session pump (session.c) feeds client bytes into the SMTP
 * engine, answers its events, and writes its output; a backend pump
 * (backend.c) feeds backend bytes into the relay client, handles its
 * events (which answer the owning session's pending request and dirty that
 * session), and writes its output. Because each pump only touches its own
 * object and dirties the other, no pump ever re-enters another.
 *
 * Promises: TCP callbacks and events never pump; they dirty an object and
 * core_run pumps it. core_run is the only place where a session or backend
 * connection is released, so no object is freed under a running pump, and
 * it never re-enters itself.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

#include <assert.h>
#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/mman.h>

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

#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/client.h"
#include "dataplane/gateway/client_tls.h"
#include "dataplane/gateway/content.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/delivery.h"
#include "dataplane/gateway/policy_state.h"
#include "dataplane/gateway/session.h"

/* Debug and sanitizer builds check the backend invariant every scan. */
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) ||                      \
	defined(__SANITIZE_UNDEFINED__)
#define GW_CHECK_INVARIANT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) ||                                        \
	__has_feature(undefined_behavior_sanitizer)
#define GW_CHECK_INVARIANT 1
#endif
#endif
#ifndef GW_CHECK_INVARIANT
#define GW_CHECK_INVARIANT 0
#endif

void core_dirty_session(struct gw_sess *s)
{
	if (s->dirty || !s->used)
		return;
	s->dirty = true;
	s->next_dirty = s->gc->dirty_s;
	s->gc->dirty_s = s;
}

void core_dirty_backend(struct gw_be *b)
{
	if (b->dirty || b->state == BE_FREE)
		return;
	b->dirty = true;
	b->next_dirty = b->gc->dirty_b;
	b->gc->dirty_b = b;
}

/* When s must next be looked at without input: its engine's deadline
 * (greeting, command or data time-out), the next tick while a Maildir
 * job is in flight (short appends, as the 20 ms scan did), or the end of
 * an AUTH tarpit hold. Called after every pump, so a deadline moved
 * earlier is seen at once; one moved later is found when the old one
 * fires (mxg_expiry's lazy rule). */
void core_sess_arm(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	uint64_t d = smtp_session_deadline(s->sm);

	if (s->md_job >= 0)
		d = RTE_MIN(d, core_now_ms(gc) + 1);
	if (s->auth && s->auth->wait == GW_AUTH_HELD)
		d = RTE_MIN(d, (s->auth->hold_until_us + 999) / 1000);
	if (d == SMTP_NO_DEADLINE)
		mxg_expiry_cancel(&gc->sess_expiry, s->idx);
	else
		mxg_expiry_arm(&gc->sess_expiry, s->idx, d);
}

/* Sessions whose time has come (mxg_expiry): each is pumped if its
 * deadline passed, its Maildir job wants a look or its AUTH hold ended;
 * one that fired early (its deadline moved later) is filed again. */
static void core_sess_expire(struct gw_core *gc, uint64_t now_us)
{
	uint32_t ids[256], n;

	do {
		n = mxg_expiry_run(&gc->sess_expiry, core_now_ms(gc), ids,
				   RTE_DIM(ids));
		for (uint32_t i = 0; i < n; i++) {
			struct gw_sess *s = &gc->sess[ids[i]];

			if (!s->used || s->dead)
				continue;
			if (smtp_session_deadline(s->sm) <= core_now_ms(gc) ||
			    s->md_job >= 0 || auth_due(s, now_us))
				core_dirty_session(s);
			else
				core_sess_arm(s);
		}
	} while (n == RTE_DIM(ids));
}

static void core_overload_errors(struct gw_core *gc, struct gw_sess *s);

/* Pump every dirty session and backend until nothing is dirty. Objects
 * whose TCP connection is gone are released here, outside any pump. */
void core_run(struct gw_core *gc)
{
	if (gc->running)
		return;
	gc->running = true;
	for (int guard = 0; guard < 1024; guard++) {
		struct gw_sess *s = gc->dirty_s;
		struct gw_be *b = gc->dirty_b;

		if (!s && !b)
			break;
		gc->dirty_s = NULL;
		gc->dirty_b = NULL;
		/* Take the successor before pumping: a pump may dirty its
		 * own object again, which rewrites next_dirty. */
		for (struct gw_be *nb; b; b = nb) {
			nb = b->next_dirty;
			b->dirty = false;
			if (b->state == BE_FREE)
				continue;
			if (b->dead) {
				be_drain(b);
				/* a dead connection still in the idle cache
				 * stays allocated until the cache lets go */
				if (b->idle && !be_idle_remove(b))
					continue;
				{
					struct gw_sess *o = be_owner(b);

					if (o)
						delivery_backend_failed(
							o, "Backend connection "
							   "lost, try again "
							   "later");
				}
				be_release(b);
				continue;
			}
			be_pump(b);
		}
		for (struct gw_sess *ns; s; s = ns) {
			ns = s->next_dirty;
			s->dirty = false;
			if (!s->used)
				continue;
			if (s->dead) {
				mxg_expiry_cancel(&gc->sess_expiry, s->idx);
				client_release(s);
				continue;
			}
			sess_pump(s);
			if (s->used && !s->dead) {
				core_overload_errors(gc, s);
				core_sess_arm(s);
			}
		}
	}
	gc->running = false;
}

/*
 * Overload mode (DESIGN 1, as Postfix's stress mode): at or above
 * stack.overload_percent of the session table the idle-between-commands
 * time-out shrinks to stack.overload_idle_ms, so the slots held by idle
 * and slow clients come back first; below the threshold the listener's
 * own time-outs apply again. Entry and exit are logged and counted.
 * Returns whether the core is in overload now.
 */
static bool core_overload_update(struct gw_core *gc)
{
	const struct ctl_config *cfg = &gc->snap->cfg;
	uint32_t pct = cfg->stack.overload_percent;
	bool over = pct && gc->stats.sessions_live * 100 >=
				   (uint64_t)pct * gc->gw->max_sessions;

	if (over != (gc->stats.overload != 0)) {
		gc->stats.overload = over;
		if (over)
			gc->stats.overload_entered++;
		log_line(gc, "event=overload state=%s sessions=%llu "
			 "capacity=%u threshold_percent=%u idle_timeout_ms=%u",
			 over ? "on" : "off",
			 (unsigned long long)gc->stats.sessions_live,
			 gc->gw->max_sessions, pct,
			 cfg->stack.overload_idle_ms);
	}
	return over;
}

/* In overload: closes s with 421 4.3.2 if it is between commands (no
 * transaction, nothing owed) and has been idle for overload_idle_ms.
 * Its idle time is read off the engine's command deadline, which is the
 * last client progress plus the listener's command (or greeting) time-out. */
static bool core_overload_idle(struct gw_core *gc, struct gw_sess *s)
{
	enum smtp_state st = smtp_session_state(s->sm);
	uint64_t d = smtp_session_deadline(s->sm), tmo, now = core_now_ms(gc);

	if ((st != SMTP_ST_HELO && st != SMTP_ST_READY) || s->closing ||
	    s->wait != W_NONE || d == SMTP_NO_DEADLINE)
		return false;
	/* a client that talked before the greeting goes first, at once */
	if (smtp_session_stats(s->sm)->pregreet_bytes) {
		smtp_session_shutdown(s->sm, 421, "4.3.2",
				      "Service busy, closing connection");
		gc->stats.overload_pregreet_closed++;
		core_dirty_session(s);
		return true;
	}
	tmo = s->lst->smtp.tmo_command_ms ? s->lst->smtp.tmo_command_ms
					  : 300000;
	if (d < tmo || now < d - tmo + gc->snap->cfg.stack.overload_idle_ms)
		return false;
	smtp_session_shutdown(s->sm, 421, "4.3.2",
			      "Service busy, closing idle connection");
	gc->stats.overload_idle_closed++;
	core_dirty_session(s);
	return true;
}

/* In overload, after a pump: a session that has made
 * stack.overload_max_errors protocol errors (instead of the listener's
 * limit) and waits for nothing is closed with 421 4.7.0, as the engine
 * does at its own limit. */
static void core_overload_errors(struct gw_core *gc, struct gw_sess *s)
{
	if (!gc->stats.overload || s->closing || s->wait != W_NONE ||
	    smtp_session_closed(s->sm) ||
	    smtp_session_stats(s->sm)->errors <
		    gc->snap->cfg.stack.overload_max_errors)
		return;
	smtp_session_shutdown(s->sm, 421, "4.7.0",
			      "Too many errors, closing connection");
	gc->stats.overload_errors_closed++;
	core_dirty_session(s);
}

/* In overload, a cursor walks the session table so that every session
 * is looked at about four times per stack.overload_idle_ms (the idle
 * close may come up to a quarter of it late): work per 20 ms tick is
 * bounded by the table's peak over that fraction, and nothing is walked
 * outside overload. */
static void core_overload_sweep(struct gw_core *gc)
{
	uint32_t idle_ms = gc->snap->cfg.stack.overload_idle_ms;
	uint64_t per = (uint64_t)gc->sess_hwm * 20 * 4 / RTE_MAX(idle_ms, 1u);
	uint32_t n = (uint32_t)RTE_MIN(RTE_MAX(per, 64u), gc->sess_hwm);

	for (uint32_t k = 0; k < n; k++) {
		struct gw_sess *s;

		if (gc->overload_cursor >= gc->sess_hwm)
			gc->overload_cursor = 0;
		s = &gc->sess[gc->overload_cursor++];
		if (s->used && !s->dead)
			core_overload_idle(gc, s);
	}
}

void gw_core_poll(struct gw_core *gc, uint64_t now_us)
{
	struct mxg_snapshot *sn;

	gc->now_us = now_us;
	sn = __atomic_load_n(&gc->gw->snap, __ATOMIC_ACQUIRE);
	if (sn != gc->snap)
		state_adopt(gc, sn);
	if (gc->gw->push[gc->core] &&
	    !rte_ring_empty(gc->gw->push[gc->core]))
		state_pushes_apply(gc);
	if (gc->md)
		delivery_maildir_done(gc);
	if (gc->qmd)
		content_gw_quarantine_done(gc);
	/* Time-outs and short Maildir appends: a scan every 20 ms. */
	if (now_us - gc->last_scan_us >= 20000) {
		bool over;

		gc->last_scan_us = now_us;
		over = core_overload_update(gc);
		if (over)
			core_overload_sweep(gc);
		core_sess_expire(gc, now_us);
		gc->stats.backend_idle = 0;
		for (uint32_t i = 0; i < gc->be_hwm; i++) {
			struct gw_be *b = &gc->be[i];

			gc->stats.backend_idle +=
				b->state != BE_FREE && b->idle;
			if (b->state == BE_UP && !b->dead &&
			    relay_client_deadline(b->rc) <= core_now_ms(gc))
				core_dirty_backend(b);
			else if (b->state == BE_CONNECTING &&
				 relay_client_deadline(b->rc) <=
					 core_now_ms(gc)) {
				/* connect time-out: drop the TCP attempt */
				be_close(b, true);
				{
					struct gw_sess *o = be_owner(b);

					if (o)
						delivery_backend_failed(
							o, "Backend connect "
							   "timed out, try "
							   "again later");
				}
				relay_server_report(b->pool_set->rp, b->srv,
						    false, core_now_ms(gc));
				gc->stats.backend_errors++;
			}
		}
		be_expire_idle(gc->pool_set, core_now_ms(gc));
		be_health_checks(gc);
		pol_block_expire(gc->blocks, now_us, 64);
		gc->stats.rl_entries = pol_rl_count(gc->rl);
		gc->stats.rl_evictions = pol_rl_stats(gc->rl)->evictions;
		gc->stats.ipconn_entries = pol_conns_count(gc->conns_per_ip);
		core_run(gc);
		if (GW_CHECK_INVARIANT)
			gw_core_check(gc, false);
	}
	core_run(gc);
	client_tls_sync_stats(gc);
}

void gw_core_push_state(const struct gw_core *gc, struct gw_push_state *st)
{
	st->seq = __atomic_load_n(&gc->push_seq, __ATOMIC_ACQUIRE);
	st->latency_us = __atomic_load_n(&gc->push_lat_us, __ATOMIC_RELAXED);
	st->generation = __atomic_load_n(&gc->generation, __ATOMIC_RELAXED);
	st->blocks = pol_block_count(gc->blocks);
	st->fail_seq = __atomic_load_n(&gc->push_fail_seq, __ATOMIC_RELAXED);
	st->fail_err = __atomic_load_n(&gc->push_fail_err, __ATOMIC_RELAXED);
	st->limits_failed_generation = __atomic_load_n(
		&gc->limits_failed_generation, __ATOMIC_RELAXED);
}

const uint64_t *gw_core_latency(const struct gw_core *gc, uint64_t *sum_us)
{
	*sum_us = gc->lat_sum_us;
	return gc->lat;
}

/* A Maildir instance of this core (the local next hop, the content
 * quarantine); max_jobs 0: the default. NULL with err written. */
static struct maildir *core_maildir(const struct gw_global *gw, uint16_t core,
				    const char *path, uint32_t max_jobs,
				    const char *what, char *err, size_t errlen)
{
	struct maildir_config mc;
	struct maildir *md;
	int e = 0;

	maildir_config_defaults(&mc);
	mc.path = path;
	mc.hostname = gw->hostname;
	mc.instance = core;
	mc.pool = gw->workers;
	mc.core = core;
	if (max_jobs)
		mc.max_jobs = max_jobs;
	md = maildir_create(&mc, &e);
	if (!md)
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-e));
	return md;
}

const struct gw_stats *gw_core_stats(const struct gw_core *gc)
{
	return &gc->stats;
}

/* The engine's pool of work areas (smtp.h: struct smtp_buf_pool). One
 * area per session slot, so get never fails while a slot is held. */
static void *core_buf_get(void *ctx)
{
	struct gw_core *gc = ctx;

	if (gc->n_buf_free == 0)
		return NULL;
	return gc->smtp_bufs +
	       (size_t)gc->buf_free[--gc->n_buf_free] * gc->gw->smtp_buf;
}

static void core_buf_put(void *ctx, void *buf)
{
	struct gw_core *gc = ctx;
	size_t off = (size_t)((uint8_t *)buf - gc->smtp_bufs);

	assert(off % gc->gw->smtp_buf == 0 &&
	       gc->n_buf_free < gc->gw->max_sessions);
	gc->buf_free[gc->n_buf_free++] = (uint32_t)(off / gc->gw->smtp_buf);
}

int gw_area_pool_init(struct gw_area_pool *p, size_t elem, uint32_t cap)
{
	p->elem = (elem + 63) & ~(size_t)63;
	p->len = p->elem * cap;
	p->cap = cap;
	p->mem = mmap(NULL, p->len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->mem == MAP_FAILED) {
		p->mem = NULL;
		return -ENOMEM;
	}
	p->free = malloc(cap * sizeof(uint32_t));
	if (!p->free)
		return -ENOMEM;
	for (uint32_t i = 0; i < cap; i++)
		p->free[i] = cap - 1 - i;
	p->n_free = cap;
	return 0;
}

void gw_area_pool_fini(struct gw_area_pool *p)
{
	if (p->mem)
		munmap(p->mem, p->len);
	free(p->free);
	p->mem = NULL;
	p->free = NULL;
}

void *gw_area_get(struct gw_area_pool *p)
{
	if (p->n_free == 0)
		return NULL;
	return p->mem + (size_t)p->free[--p->n_free] * p->elem;
}

void gw_area_put(struct gw_area_pool *p, void *a)
{
	size_t off = (size_t)((uint8_t *)a - p->mem);

	assert(off % p->elem == 0 && off < p->len && p->n_free < p->cap);
	p->free[p->n_free++] = (uint32_t)(off / p->elem);
}

/* Work areas held by sessions now (gw_core_check, status). */
uint32_t gw_core_bufs_held(const struct gw_core *gc)
{
	return gc->gw->max_sessions - gc->n_buf_free;
}

struct gw_core *gw_core_create(struct gw_global *gw, uint16_t core,
			       struct net_stack *st, struct rte_ring *log,
			       struct rte_mempool *log_pool, char *err,
			       size_t errlen)
{
	struct gw_core *gc = calloc(1, sizeof(*gc));
	struct mxg_snapshot *sn = gw->snap;

	if (!gc)
		goto nomem;
	gc->gw = gw;
	gc->core = core;
	gc->sid_epoch = (uint32_t)time(NULL);
	gc->st = st;
	gc->log = log;
	gc->log_pool = log_pool;
	gc->sess = calloc(gw->max_sessions, sizeof(*gc->sess));
	gc->sess_next_free = calloc(gw->max_sessions, sizeof(uint32_t));
	gc->smtp_mem = aligned_alloc(64, gw->smtp_mem * gw->max_sessions);
	gc->be = calloc(gw->max_backends, sizeof(*gc->be));
	gc->relay_mem = aligned_alloc(64, gw->relay_mem * gw->max_backends);
	if (!gc->sess || !gc->sess_next_free || !gc->smtp_mem || !gc->be ||
	    !gc->relay_mem)
		goto nomem;
	/* Reserved, not committed: pages become resident when a session
	 * first writes into an area (the LIFO reuses the warm ones). */
	gc->smtp_bufs_len = gw->smtp_buf * gw->max_sessions;
	gc->smtp_bufs = mmap(NULL, gc->smtp_bufs_len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			     0);
	gc->buf_free = malloc(gw->max_sessions * sizeof(uint32_t));
	if (gc->smtp_bufs == MAP_FAILED) {
		gc->smtp_bufs = NULL;
		goto nomem;
	}
	if (!gc->buf_free)
		goto nomem;
	/* The outstanding-RCPT blocks (delivery.c), reserved the same way:
	 * resident only in slots that pipelined recipients. */
	gc->rcptq_len = sizeof(struct gw_rcptq) * gw->max_sessions;
	gc->rcptq = mmap(NULL, gc->rcptq_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (gc->rcptq == MAP_FAILED) {
		gc->rcptq = NULL;
		goto nomem;
	}
	gc->rcptq_free = malloc(gw->max_sessions * sizeof(uint32_t));
	if (!gc->rcptq_free)
		goto nomem;
	/* transaction strings and AUTH state: one area per slot too */
	if (gw_area_pool_init(&gc->txn_pool, sizeof(struct gw_txn),
			      gw->max_sessions) < 0 ||
	    gw_area_pool_init(&gc->auth_pool, sizeof(struct gw_auth),
			      gw->max_sessions) < 0)
		goto nomem;
	for (uint32_t i = 0; i < gw->max_sessions; i++)
		gc->rcptq_free[i] = gw->max_sessions - 1 - i;
	gc->n_rcptq_free = gw->max_sessions;
	for (uint32_t i = 0; i < gw->max_sessions; i++)
		gc->buf_free[i] = gw->max_sessions - 1 - i;
	gc->n_buf_free = gw->max_sessions;
	gc->buf_pool.get = core_buf_get;
	gc->buf_pool.put = core_buf_put;
	gc->buf_pool.ctx = gc;
	for (uint32_t i = 0; i < gw->max_sessions; i++)
		gc->sess_next_free[i] = i + 1 < gw->max_sessions ? i + 1
								 : NO_FREE;
	/* 20 ms ticks (the old scan's period), 16,384 slots: 327 s, so a
	 * session idle for the default 300 s is visited once */
	if (mxg_expiry_init(&gc->sess_expiry, gw->max_sessions, 16384, 20,
			    core_now_ms(gc)) < 0)
		goto nomem;
	gc->free_sess = 0;

	gc->blocks = pol_block_create(sn->block_table_size, SOCKET_ID_ANY);
	gc->dom_over = pol_domains_create(4096);
	gc->rl = pol_rl_create(sn->rate_table_size, SOCKET_ID_ANY);
	gc->conns_per_ip =
		pol_conns_create(gw->max_sessions * 2 + 16, SOCKET_ID_ANY);
	if (!gc->blocks || !gc->dom_over || !gc->rl || !gc->conns_per_ip) {
		snprintf(err, errlen, "policy tables: out of memory");
		goto fail;
	}
	gc->snap = sn;
	state_snapshot_ref(gc, sn);
	gc->generation = sn->generation;
	gc->pool_set = state_pool_set_new(gc, sn);
	if (!gc->pool_set) {
		snprintf(err, errlen, "next-hop pools: cannot build");
		goto fail;
	}
	gc->pool_set->users = 1;
	state_limits_compute(gc);
	if (auth_core_init(gc) < 0) {
		snprintf(err, errlen, "auth brute-force table: out of memory");
		goto fail;
	}
	if (sn->has_maildir &&
	    (gc->md = core_maildir(gw, core, gw->maildir_path,
				   gw->maildir_max_jobs, "maildir", err,
				   errlen)) == NULL)
		goto fail;
	if (gw->quarantine_path &&
	    (gc->qmd = core_maildir(gw, core, gw->quarantine_path, 0,
				    "content_quarantine_maildir", err,
				    errlen)) == NULL)
		goto fail;
	for (uint32_t i = 0; i < sn->n_listeners; i++) {
		int r = tcp_listen(st, sn->listeners[i].port, &client_callbacks,
				   gc);

		if (r < 0) {
			snprintf(err, errlen, "listener %s: port %u: %s",
				 sn->listeners[i].cl->name,
				 sn->listeners[i].port, strerror(-r));
			goto fail;
		}
		state_listen_families(gc, &sn->listeners[i]);
		state_set_listening(gc, sn->listeners[i].port, true);
	}
	if (rte_rcu_qsbr_thread_register(gw->qs, core) != 0) {
		snprintf(err, errlen, "rcu register core %u failed", core);
		goto fail;
	}
	rte_rcu_qsbr_thread_online(gw->qs, core);
	return gc;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	if (gc)
		gw_core_destroy(gc);
	return NULL;
}

void gw_core_quiescent(struct gw_core *gc)
{
	rte_rcu_qsbr_quiescent(gc->gw->qs, gc->core);
}

void gw_core_destroy(struct gw_core *gc)
{
	if (!gc)
		return;
	if (gc->sess)
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];

			if (s->used) {
				auth_session_teardown(s);
				xprt_release(&s->xp);
				if (s->counted_listener)
					__atomic_sub_fetch(
						&gc->gw->lconns[s->lport], 1,
						__ATOMIC_RELAXED);
				if (s->snap)
					state_snapshot_unref(gc, s->snap);
			}
		}
	if (gc->be)
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			struct gw_be *b = &gc->be[i];

			if (b->state != BE_FREE)
				xprt_release(&b->x);
		}
	if (gc->md)
		maildir_destroy(gc->md);
	if (gc->qmd)
		maildir_destroy(gc->qmd);
	if (gc->pool_set)
		state_pool_set_free(gc, gc->pool_set);
	while (gc->pool_sets_retired) {
		struct gw_pool_set *pool_set = gc->pool_sets_retired;

		gc->pool_sets_retired = pool_set->next;
		state_pool_set_free(gc, pool_set);
	}
	if (gc->snap)
		state_snapshot_unref(gc, gc->snap);
	if (gc->gw->qs) {
		rte_rcu_qsbr_thread_offline(gc->gw->qs, gc->core);
		rte_rcu_qsbr_thread_unregister(gc->gw->qs, gc->core);
	}
	pol_block_free(gc->blocks);
	pol_domains_free(gc->dom_over);
	pol_rl_free(gc->rl);
	pol_conns_free(gc->conns_per_ip);
	auth_core_fini(gc);
	free(gc->listener_limits);
	free(gc->rule_limits);
	free(gc->sess);
	free(gc->sess_next_free);
	mxg_expiry_fini(&gc->sess_expiry);
	free(gc->smtp_mem);
	if (gc->smtp_bufs)
		munmap(gc->smtp_bufs, gc->smtp_bufs_len);
	free(gc->buf_free);
	if (gc->rcptq)
		munmap(gc->rcptq, gc->rcptq_len);
	free(gc->rcptq_free);
	gw_area_pool_fini(&gc->txn_pool);
	gw_area_pool_fini(&gc->auth_pool);
	free(gc->be);
	free(gc->relay_mem);
	free(gc);
}
