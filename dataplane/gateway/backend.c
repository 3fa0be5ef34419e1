/*
 * backend.c - the backend connection.
 *
 * Owner: one dataplane lcore.
 *
 * What it does: a backend connection's life: open (TCP connect and relay
 * client), the pump (received bytes into the relay client, its events into
 * the owning session, its output to TCP), the TCP callbacks, the idle cache
 * (park, take, expire, flush), active health checks, and STARTTLS to a
 * pool's backends over the connection's transport (xprt_plain or, for a
 * pool with tls, xprt_tls as client; handshakes on the worker pool).
 * Ownership by a session goes through be_own and ends only through sess_put_backend /
 * be_let_go, the one release path (issue 11).
 *
 * Promises: a backend event handler answers the owner's pending request
 * and dirties the owner, never pumps it; a connection is released only by
 * core_run (be_release); the backend invariant (backend_check.c) holds
 * between two pumps.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

#include <assert.h>
#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
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
#include "dataplane/gateway/client_tls.h"
#include "dataplane/fmt.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/delivery.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/policy_state.h"
#include "dataplane/gateway/session.h"

static const struct tcp_callbacks be_cb;
static int be_tls_attach(struct gw_be *b, const struct mxg_snapshot_pool *gp,
			 struct gw_pool_set *pool_set);

static struct gw_be *be_alloc(struct gw_core *gc)
{
	for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
		struct gw_be *b = &gc->be[i];

		/* a released slot may still be linked on the dirty list
		 * until core_run() walks past it: reusing it then would cut the
		 * list */
		if (b->state == BE_FREE && !b->dirty) {
			memset(b, 0, sizeof(*b));
			b->gc = gc;
			b->idx = i;
			if (i >= gc->be_hwm)
				gc->be_hwm = i + 1;
			return b;
		}
	}
	return NULL;
}

/* Open a new backend connection to server srv of pool. */
struct gw_be *be_open(struct gw_core *gc, struct gw_pool_set *pool_set,
		      uint32_t pool, uint32_t srv,
		      const struct gw_sess *for_sess)
{
	const struct mxg_snapshot_pool *gp = &pool_set->snap->pools[pool];
	struct relay_server_info si;
	struct relay_proxy_addr pa;
	struct relay_proxy_tls pt;
	struct tls_session_info ti;
	struct gw_be *b = be_alloc(gc);

	if (!b)
		return NULL;
	relay_server_get_info(pool_set->rp, srv, &si);
	/* No session (health check): all-zero addresses, which the PROXY v2
	 * encoder sends as the LOCAL command. */
	memset(&pa, 0, sizeof(pa));
	if (for_sess) {
		/* the client's TLS as PP2_TYPE_SSL / AUTHORITY TLVs */
		if (gp->rc.client_info == RELAY_CINFO_PROXY &&
		    client_tls_proxy_info(for_sess, &ti, &pt))
			pa.tls = &pt;
		pa.src_port = for_sess->client_port;
		pa.dst_port = for_sess->lst->port;
		if (for_sess->client_v6) {
			pa.v6 = true;
			memcpy(pa.src6, for_sess->client_addr.b, 16);
			memcpy(pa.dst6, for_sess->local_addr.b, 16);
		} else {
			pa.src_addr = rte_be_to_cpu_32(
				net_addr_v4(&for_sess->client_addr));
			/* the address the client reached (the port's
			 * address unless the harness gave none) */
			pa.dst_addr = rte_be_to_cpu_32(
				net_addr_is_v4(&for_sess->local_addr)
					? net_addr_v4(&for_sess->local_addr)
					: gc->gw->our_ip);
		}
	}
	b->rc = relay_client_init(
		gc->relay_mem + (size_t)b->idx * gc->gw->relay_mem,
		gc->gw->relay_mem, &gp->rc,
		gp->rc.client_info == RELAY_CINFO_PROXY ? &pa : NULL,
		core_now_ms(gc));
	if (!b->rc)
		return NULL;
	b->pool = pool;
	b->srv = srv;
	relay_server_format(si.v6, si.addr, si.addr6, si.port, b->name,
			    sizeof(b->name));
	xprt_init(&b->x, &xprt_plain_ops, NULL);
	if (be_tls_attach(b, gp, pool_set) < 0) {
		xprt_release(&b->x);
		b->rc = NULL;
		return NULL;
	}
	b->pool_set = pool_set;
	pool_set->users++;
	if ((si.v6 ? tcp_connect6(gc->st, (const struct net_addr *)si.addr6,
				  si.port, &be_cb, b, &b->tc)
		   : tcp_connect(gc->st, rte_cpu_to_be_32(si.addr), si.port,
				 &be_cb, b, &b->tc)) < 0) {
		xprt_release(&b->x);
		b->rc = NULL;
		b->pool_set = NULL;
		state_pool_set_put(gc, pool_set);
		return NULL;
	}
	b->x.tc = b->tc;
	b->state = BE_CONNECTING;
	relay_server_opened(pool_set->rp, srv);
	b->counted = true;
	gc->stats.backend_connects++;
	gc->stats.backend_live++;
	return b;
}

/* ---------------------------------------------------------- TLS (issue 13)
 * STARTTLS to a pool's backends: the relay client asks for it
 * (RELAY_EV_STARTTLS), the connection's transport (xprt_tls.c, as on
 * client connections) runs the handshake as client on the worker pool,
 * verifying per the pool (CA + name, SHA-256 pin, or nothing when
 * opportunistic), and these callbacks tell the relay client the outcome
 * (relay_client_tls_done: EHLO again, or RELAY_ERR_TLS - a backend
 * error, 4xx to the client). They run from workers_poll or inside the
 * pump; they note and dirty, never pump. */

static enum relay_tls gp_tls_mode(const struct gw_be *b)
{
	return b->pool_set->snap->pools[b->pool].rc.tls;
}

static struct gw_be *be_of(struct xprt *x)
{
	return (struct gw_be *)((char *)x - offsetof(struct gw_be, x));
}

static void be_tls_done(struct xprt *x, bool ok)
{
	struct gw_be *b = be_of(x);
	struct gw_core *gc = b->gc;
	struct gw_sess *s = b->owner;
	struct tls_session_info in;

	if (ok && xprt_tls_info(x, &in) == 0) {
		b->tls_up = true;
		gc->stats.backend_tls_handshakes++;
		log_line(gc, "event=backend_tls backend=%s tls=%s cipher=%s "
			 "bits=%d verified=%s pinned=%s subject=\"%s\" "
			 "sha256=%s sid=%s",
			 b->name, in.version, in.cipher, in.cipher_bits,
			 in.peer_verified ? "yes" : "no",
			 in.peer_pinned ? "yes" : "no", in.peer_subject,
			 in.peer_sha256, s ? s->sid : "-");
		relay_client_tls_done(b->rc, true);
	} else {
		enum tls_fail f = xprt_tls_fail_reason(x);

		b->tls_failed = true;
		gc->stats.backend_tls_failed++;
		log_line(gc, "event=backend_tls_failed backend=%s reason=%s "
			 "detail=\"%s\" sid=%s",
			 b->name, tls_fail_name(f == TLS_FAIL_NONE
						? TLS_FAIL_INTERNAL : f),
			 xprt_tls_fail_detail(x), s ? s->sid : "-");
		relay_client_tls_done(b->rc, false);
	}
	core_dirty_backend(b);
}

static void be_tls_wake(struct xprt *x)
{
	core_dirty_backend(be_of(x));
}

/* close_notify or a broken record after the handshake: no more input
 * (what is still held cannot be decrypted), so the relay client hears
 * the end now rather than after its time-out; its event closes b. */
static void be_tls_eof(struct xprt *x)
{
	struct gw_be *b = be_of(x);

	if (!b->eof) {
		b->eof = true;
		relay_client_eof(b->rc);
	}
	core_dirty_backend(b);
}

/* A released connection's handshake step came back from the pool: the
 * pool set (so the snapshot and the client context the step read) may
 * go now (be_release kept it). */
static void be_tls_gone(void *gc, void *pool_set)
{
	state_pool_set_put(gc, pool_set);
}

/* A pool with tls: the transport that can start TLS as client. 0, or
 * < 0 when it cannot (no worker pool: never a handshake on a core). */
static int be_tls_attach(struct gw_be *b, const struct mxg_snapshot_pool *gp,
			 struct gw_pool_set *pool_set)
{
	struct gw_core *gc = b->gc;
	struct xprt_tls_params p = {
		.client_ctx = gp->cp ? gp->cp->tls.ctx : NULL,
		.server_name = gp->cp ? gp->cp->tls.name : NULL,
		.pool = gc->gw->workers,
		.core = gc->core,
		.counters = &gc->tls_counters,
		.done = be_tls_done,
		.wake = be_tls_wake,
		.eof = be_tls_eof,
		.gone = be_tls_gone,
		.gone_a = gc,
		.gone_b = pool_set,
	};

	if (gp->rc.tls == RELAY_TLS_OFF)
		return 0;
	if (!p.client_ctx || !p.pool)
		return -ENOTSUP;
	return xprt_tls_attach(&b->x, &p);
}

/* Forget a backend: its TCP connection is gone or being aborted. */
void be_release(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	/* a handshake step still on a worker reads the pool's client
	 * context: the pool set stays until it is back (be_tls_gone) */
	bool step_out = xprt_tls_handshaking(&b->x);

	if (b->counted)
		relay_server_closed(b->pool_set->rp, b->srv);
	xprt_release(&b->x);
	gc->stats.backend_live--;
	b->state = BE_FREE;
	if (b->pool_set) {
		struct gw_pool_set *pool_set = b->pool_set;

		b->pool_set = NULL;
		if (!step_out)
			state_pool_set_put(gc, pool_set);
	}
}

/* Close the backend's TCP connection after its output is flushed. */
void be_close(struct gw_be *b, bool abort_now)
{
	if (b->tc == NULL || b->closing)
		return;
	b->closing = true;
	if (abort_now) {
		struct tcp_conn *tc = b->tc;

		b->tc = NULL;
		xprt_gone(&b->x);
		tcp_abort(tc);
		b->dead = true;
		core_dirty_backend(b);
	} else {
		/* TLS: close_notify, then the FIN */
		xprt_shutdown(&b->x);
	}
}

/* The transaction on b is over (success, RSET, or the session left): park
 * b in the idle cache, or QUIT it. */
static void be_detach(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	const struct mxg_snapshot_pool *gp = &b->pool_set->snap->pools[b->pool];
	void *evicted = NULL;

	b->owner = NULL;
	if (b->dead || b->closing)
		return;
	/* A connection that carries one client's XCLIENT identity may only
	 * be reused if the backend still offers XCLIENT to overwrite it
	 * (Postfix stops offering it once the identity is no longer an
	 * authorised host): else the next client would inherit it. */
	if (relay_client_state(b->rc) == RELAY_ST_READY &&
	    gp->rc.client_info != RELAY_CINFO_PROXY &&
	    !(b->xclient_used && !relay_client_caps(b->rc)->xclient) &&
	    !b->pool_set->retired &&
	    relay_pool_idle_put(b->pool_set->rp, b->srv, b, core_now_ms(gc),
				&evicted) == 0) {
		b->idle = true;
		if (evicted) {
			struct gw_be *e = evicted;

			e->idle = false;
			relay_client_quit(e->rc);
			core_dirty_backend(e);
		}
		return;
	}
	if (relay_client_quit(b->rc) < 0)
		be_close(b, false);
	core_dirty_backend(b);
}

/* Take b out of its server's idle cache. False when the cache no longer
 * hands it out (too old): it then comes back through idle_expire. */
bool be_idle_remove(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	void *held[64];
	unsigned n = 0;
	bool found = false;
	void *x;

	while (n < 64 && (x = relay_pool_idle_take(b->pool_set->rp, b->srv,
						   core_now_ms(gc)))) {
		if (x == b) {
			found = true;
			break;
		}
		held[n++] = x;
	}
	while (n > 0) {
		void *ev = NULL;

		relay_pool_idle_put(b->pool_set->rp, b->srv, held[--n],
				    core_now_ms(gc), &ev);
	}
	if (found)
		b->idle = false;
	return found;
}

/* s takes b for its transaction. */
void be_own(struct gw_be *b, struct gw_sess *s)
{
	b->owner = s;
	b->owner_gen = s->gen;
}

/* The session b works for, or NULL. An owner whose slot was released or
 * reused (generation), or which no longer points back at b, is never
 * followed: that is a broken invariant, counted and logged, and b is
 * let go of (issue 11: a stale owner used to fail another client's
 * transaction). */
struct gw_sess *be_owner(struct gw_be *b)
{
	struct gw_sess *s = b->owner;

	if (!s)
		return NULL;
	if (s->used && s->gen == b->owner_gen && s->be == b)
		return s;
	b->gc->stats.be_invariant_errors++;
	log_line(b->gc, "event=invariant backend=%s what=stale_owner", b->name);
	b->owner = NULL;
	return NULL;
}

/* Nobody owns b any more: the one way a backend connection stops serving
 * a session (issue 11). Clean (READY): the idle cache or QUIT
 * (be_detach). A transaction open: RSET, parked on its reply
 * (RELAY_EV_RSET), or closed once DATA was sent. Failed: aborted now.
 * Connecting, greeting, RSET or QUIT in flight: left to finish, each
 * under a relay deadline, and parked (RELAY_EV_READY, RELAY_EV_RSET) or
 * closed by its outcome. Dead or closing: core_run releases it. */
static void be_let_go(struct gw_be *b)
{
	b->owner = NULL;
	if (b->dead || b->closing || b->state != BE_UP)
		return;
	switch (relay_client_state(b->rc)) {
	case RELAY_ST_TXN:
	case RELAY_ST_BODY:
		if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
			be_close(b, false);
		core_dirty_backend(b);
		return;
	case RELAY_ST_FAILED:
		be_close(b, true);
		return;
	case RELAY_ST_CLOSED:
		core_dirty_backend(b); /* be_pump flushes and closes it */
		return;
	case RELAY_ST_CONNECTING:
	case RELAY_ST_SETUP:
	case RELAY_ST_RSET:
	case RELAY_ST_QUIT:
		core_dirty_backend(b);
		return;
	default: /* READY, EOD */
		be_detach(b);
		return;
	}
}

/* s is done with its backend connection (s->be may be NULL). */
void sess_put_backend(struct gw_sess *s)
{
	struct gw_be *b = s->be;

	s->be = NULL;
	s->be_sticky = false;
	if (b)
		be_let_go(b);
}

static void be_handle_event(struct gw_be *b, const struct relay_event *ev)
{
	struct gw_core *gc = b->gc;
	struct gw_sess *s = be_owner(b);

	switch (ev->type) {
	case RELAY_EV_READY:
		b->ready = true;
		if (!b->tls_up && !b->tls_noted &&
		    gp_tls_mode(b) == RELAY_TLS_OPPORTUNISTIC) {
			/* opportunistic, not offered (or refused): clear */
			b->tls_noted = true;
			gc->stats.backend_tls_cleartext++;
			log_line(gc, "event=backend_tls_skipped backend=%s "
				 "reason=%s",
				 b->name,
				 relay_client_caps(b->rc)->starttls ? "refused"
								    : "not_offered");
		}
		if (b->probe) {
			relay_server_check_result(b->pool_set->rp, b->srv, true,
						  core_now_ms(gc));
			relay_client_quit(b->rc);
			return;
		}
		relay_server_report(b->pool_set->rp, b->srv, true,
				    core_now_ms(gc));
		if (s)
			delivery_backend_ready(s);
		else
			be_detach(b);
		return;
	case RELAY_EV_MAIL:
		b->reuse_check = false;
		if (!s || !s->txn)
			return;
		if (ev->reply.code / 100 != 2) {
			/* Keep the refusal: it answers this RCPT and every
			 * later one of the transaction. */
			s->mail_failed = true;
			s->txn->mail_reply.code = ev->reply.code;
			mxg_fmt(s->txn->mail_reply.enh,
				sizeof(s->txn->mail_reply.enh),
				 "%s", ev->reply.enh);
			mxg_fmt(s->txn->mail_reply.text,
				 sizeof(s->txn->mail_reply.text), "%s",
				 ev->reply.text ? ev->reply.text : "");
		}
		return;
	case RELAY_EV_RCPT:
		/* the oldest forwarded recipient's answer (delivery.c) */
		if (s)
			delivery_rcpt_reply(s, &ev->reply);
		return;
	case RELAY_EV_DATA:
		if (!s || s->wait != W_DATA)
			return;
		s->wait = W_NONE;
		if (ev->reply.code == 354) {
			sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		} else {
			struct relay_reply r = ev->reply;

			/* DATA refused: the transaction is dead at the
			 * backend; abort it there and tell the client. */
			if (r.code < 400)
				r.code = 451;
			sess_verdict_reply(s, &r);
			s->txn_failed = true;
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
				sess_put_backend(s);
		}
		return;
	case RELAY_EV_WRITABLE:
		if (s)
			core_dirty_session(s);
		return;
	case RELAY_EV_DATA_END:
		/* any reply proves the server alive */
		relay_server_report(b->pool_set->rp, b->srv, true,
				    core_now_ms(gc));
		if (!s || s->wait != W_DATA_END)
			return;
		s->wait = W_NONE;
		{
			static const uint32_t bounds[] = GW_LAT_BOUNDS;
			uint64_t us = gc->now_us - s->t_dot_us;
			unsigned k = 0;

			while (k < RTE_DIM(bounds) && us > bounds[k] * 1000ULL)
				k++;
			gc->lat[k]++;
			gc->lat_sum_us += us;
		}
		delivery_txn_done(s, ev->reply.code, &ev->reply, NULL, NULL);
		sess_verdict_reply(s, &ev->reply);
		if (!s->be_sticky) {
			/* RSET between transactions (DESIGN 5): owed now,
			 * sent ahead of the next MAIL in the same pipelined
			 * group (no round trip of its own); the connection is
			 * parked at once. */
			(void)relay_client_rset_lazy(b->rc);
			sess_put_backend(s);
		}
		sess_txn_reset(s);
		return;
	case RELAY_EV_RSET:
		b->reuse_check = false;
		/* An aborted transaction's RSET: the connection is reusable
		 * (unless a sticky session still holds it). */
		if (!s)
			be_detach(b);
		else if (delivery_rcpt_waiting(s))
			delivery_backend_ready(s);
		return;
	case RELAY_EV_CLOSED:
		be_close(b, false);
		return;
	case RELAY_EV_STARTTLS:
		/* the 220 to STARTTLS: our ClientHello goes next, on a
		 * worker (the transport drops any cleartext that followed
		 * the 220) */
		if (xprt_start_tls(&b->x) < 0) {
			gc->stats.backend_tls_failed++;
			log_line(gc, "event=backend_tls_failed backend=%s "
				 "reason=start sid=%s",
				 b->name, s ? s->sid : "-");
			relay_client_tls_done(b->rc, false);
		}
		return;
	case RELAY_EV_ERROR: {
		char why[200];

		gc->stats.backend_errors++;
		if (ev->error == RELAY_ERR_TLS && ev->step == RELAY_STEP_STARTTLS &&
		    !b->tls_failed)
			gc->stats.backend_tls_missing++;
		if (b->probe)
			relay_server_check_result(b->pool_set->rp, b->srv,
						  false, core_now_ms(gc));
		else
			relay_server_report(b->pool_set->rp, b->srv, false,
					    core_now_ms(gc));
		mxg_fmt(why, sizeof(why),
			 "Backend %s failed (%s at %s), try again later",
			 b->name, relay_error_name(ev->error),
			 relay_step_name(ev->step));
		log_line(gc, "event=backend_error backend=%s error=%s step=%s "
			 "code=%u sid=%s",
			 b->name, relay_error_name(ev->error),
			 relay_step_name(ev->step), ev->reply.code,
			 s ? s->sid : "-");
		if (s && b->reuse_check && s->rq_n) {
			/* A cached connection died before its RSET answer:
			 * nothing of the transaction reached it; retry the
			 * whole group of RCPTs on a fresh connection. */
			b->owner = NULL;
			s->mail_sent = false;
			s->mail_failed = false;
			delivery_rcpt_resend(s);
			s->be = delivery_get_backend(s, b->pool);
			be_close(b, true);
			if (!s->be) {
				delivery_backend_failed(s, why);
				return;
			}
			if (s->txn)
				mxg_fmt(s->txn->backend_name,
					sizeof(s->txn->backend_name), "%s",
					s->be->name);
			if (relay_client_state(s->be->rc) == RELAY_ST_READY)
				delivery_backend_ready(s);
			return;
		}
		be_close(b, true);
		if (s)
			delivery_backend_failed(s, why);
		return;
	}
	default:
		return;
	}
}

/* The relay client as the sink of received backend bytes. */
static size_t be_relay_sink(void *ctx, const uint8_t *p, size_t len)
{
	return relay_client_feed(ctx, p, len);
}

/* Feed backend bytes, handle events, write output. */
static void be_pump_once(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	if (b->state != BE_UP || b->dead)
		return;
	relay_client_time(b->rc, core_now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct relay_event *ev;
		bool progress = false;

		/* input */
		if (xprt_read(&b->x, be_relay_sink, b->rc))
			progress = true;
		/* the peer's FIN, once what it sent before is taken */
		if (b->fin_pending && !b->x.rx.head &&
		    xprt_state(&b->x) != XPRT_TLS_HANDSHAKE) {
			b->fin_pending = false;
			if (!b->eof) {
				b->eof = true;
				relay_client_eof(b->rc);
			}
			if (!b->closing)
				be_close(b, false);
			progress = true;
		}
		/* events */
		while ((ev = relay_client_event(b->rc)) != NULL) {
			be_handle_event(b, ev);
			relay_client_event_pop(b->rc);
			progress = true;
			if (b->dead)
				return;
		}
		/* output */
		if (b->tc) {
			size_t len;
			const uint8_t *out = relay_client_output(b->rc, &len);

			if (len) {
				ssize_t w = xprt_send_more(&b->x, out, len,
							   false);

				if (w > 0) {
					relay_client_output_consume(
						b->rc, (size_t)w);
					progress = true;
				}
			}
		}
		if (!progress)
			break;
	}
	if (b->tc)
		xprt_flush(&b->x);
	{
		uint32_t rt = relay_client_stats(b->rc)->round_trips;

		gc->stats.backend_round_trips += rt - b->round_trips_counted;
		b->round_trips_counted = rt;
	}
	if (relay_client_done(b->rc) && b->tc) {
		size_t len;

		(void)relay_client_output(b->rc, &len);
		if (len == 0)
			be_close(b, relay_client_state(b->rc) ==
					    RELAY_ST_FAILED);
	}
}

/* The re-entrancy rule (DESIGN 5, core.c): a pump runs from core_run
 * only, and never inside another pump; TCP callbacks and events mark
 * objects dirty instead. Checked in every build with assertions. */
void be_pump(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	assert(gc->running && !gc->pumping);
	gc->pumping = true;
	be_pump_once(b);
	gc->pumping = false;
}

/* A connection whose TCP went away before it was dead: the relay client
 * has been told (eof); its last events are handled here, from core_run,
 * before the connection is released. */
void be_drain(struct gw_be *b)
{
	if (!b->drain_pending)
		return;
	b->drain_pending = false;
	b->dead = false;
	be_pump(b);
	b->dead = true;
}

/* TCP callbacks of backend connections. */
static void be_connected(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	b->state = BE_UP;
	relay_client_connected(b->rc);
	core_dirty_backend(b);
	core_run(b->gc);
}

static void be_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	core_dirty_backend(ctx);
	core_run(((struct gw_be *)ctx)->gc);
}

static void be_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	/* the pump takes what is buffered first, then tells the relay
	 * client and closes our side (be_pump_once) */
	if (b->state == BE_UP && !b->dead) {
		xprt_peer_eof(&b->x); /* fails a handshake still waiting */
		b->fin_pending = true;
		core_dirty_backend(b);
	} else if (!b->closing) {
		be_close(b, false);
	}
	core_run(b->gc);
}

static void be_gone(struct gw_be *b, int err)
{
	b->tc = NULL;
	xprt_gone(&b->x);
	if (!b->dead) {
		if (b->state == BE_CONNECTING) {
			/* relay client never started: raise its error
			 * through eof for one code path */
			b->state = BE_UP;
		}
		if (!b->eof) {
			b->eof = true;
			relay_client_eof(b->rc);
		}
		b->state = BE_UP;
		b->fin_pending = false;
		b->drain_pending = true; /* be_drain, from core_run */
	}
	RTE_SET_USED(err);
	b->dead = true;
	core_dirty_backend(b);
	core_run(b->gc);
}

static void be_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	be_gone(ctx, 0);
}

static void be_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	be_gone(ctx, err);
}

static const struct tcp_callbacks be_cb = {
	.connected = be_connected,
	.readable = be_readable,
	.writable = be_readable,
	.peer_closed = be_peer_closed,
	.closed = be_closed,
	.reset = be_reset,
};

void be_health_checks(struct gw_core *gc)
{
	uint32_t due[16];
	struct gw_pool_set *pool_set = gc->pool_set;
	unsigned n =
		relay_pools_checks_due(pool_set->rp, core_now_ms(gc), due, 16);

	for (unsigned i = 0; i < n; i++) {
		struct relay_server_info si;
		struct gw_be *b;

		relay_server_get_info(pool_set->rp, due[i], &si);
		if (pool_set->snap->pools[si.pool].maildir)
			continue;
		b = be_open(gc, pool_set, si.pool, due[i], NULL);
		if (!b) {
			relay_server_check_result(pool_set->rp, due[i], false,
						  core_now_ms(gc));
			continue;
		}
		b->probe = true;
		gc->stats.backend_checks++;
	}
}

/* Quit the idle connections of pool_set that are too old at clock now (or whose
 * server is down). */
void be_expire_idle(struct gw_pool_set *pool_set, uint64_t now)
{
	void *exp[16];
	uint32_t srv[16];
	unsigned n;

	while ((n = relay_pools_idle_expire(pool_set->rp, now, exp, srv, 16)) >
	       0) {
		for (unsigned k = 0; k < n; k++) {
			struct gw_be *b = exp[k];

			b->idle = false;
			if (b->dead) {
				be_release(b);
				continue;
			}
			if (relay_client_quit(b->rc) < 0)
				be_close(b, false);
			core_dirty_backend(b);
		}
		if (n < 16)
			break;
	}
}

/* Quit every idle connection of pool_set (a retired set hands none out again):
 * a far-future clock makes every cached connection "too old". */
void be_flush_idle(struct gw_core *gc, struct gw_pool_set *pool_set)
{
	be_expire_idle(pool_set, core_now_ms(gc) + (1ULL << 40));
}
