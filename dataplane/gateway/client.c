/*
 * client.c - the client connection.
 *
 * Owner: one dataplane lcore.
 *
 * What it does: the TCP callbacks of a client connection (accept, readable,
 * peer closed, closed, reset): at accept it takes a session slot, runs the
 * connection policy (client_policy.c), creates the SMTP engine and chooses
 * the transport; afterwards it only marks the session dirty. client_release
 * frees a session once its TCP connection is gone (called by core_run only).
 *
 * Promises: a callback never pumps and never frees; every connection
 * counted at accept is uncounted exactly once in client_release.
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

#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/client.h"
#include "dataplane/gateway/client_policy.h"
#include "dataplane/gateway/client_tls.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/policy_state.h"
#include "dataplane/gateway/session.h"

void client_release(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	const struct smtp_stats *st = smtp_session_stats(s->sm);
	char tls[512];

	if (s->wait == W_DATA_END && s->md_job >= 0) {
		/* the Maildir commit runs on; its completion is dropped */
		s->md_job = -1;
	}
	sess_txn_abort(s);
	sess_put_backend(s);
	auth_session_end(s);
	/* the client certificate's names live in the transport: word the
	 * TLS fields before it goes */
	client_tls_log_fields(s, tls, sizeof(tls));
	xprt_release(&s->xp);
	if (s->counted_listener)
		__atomic_sub_fetch(&gc->gw->lconns[s->lport], 1,
				   __ATOMIC_RELAXED);
	if (s->counted_ip)
		pol_conns_dec_key(gc->conns_per_ip, s->ipkey);
	{
		log_line(gc, "event=session sid=%s client=%s listener=%s "
			 "commands=%u messages=%u errors=%u pregreet=%u "
			 "ms=%llu%s",
			 s->sid, s->client_hp, s->lst->cl->name,
			 st->commands, st->messages, st->errors,
			 st->pregreet_bytes,
			 (unsigned long long)((gc->now_us - s->t_start_us) /
					      1000),
			 tls);
	}
	smtp_session_release(s->sm);
	s->sm = NULL;
	s->used = false;
	s->gen++;
	state_pool_set_put(gc, s->pool_set);
	s->pool_set = NULL;
	state_snapshot_unref(gc, s->snap);
	s->snap = NULL;
	gc->sess_next_free[s->idx] = gc->free_sess;
	gc->free_sess = s->idx;
	gc->stats.sessions_live--;
}

/* client_open() could not finish: the slot, its snapshot and pool set
 * references go back; the connection is refused (counted). */
static void client_open_undo(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	s->used = false;
	state_pool_set_put(gc, s->pool_set);
	state_snapshot_unref(gc, s->snap);
	gc->sess_next_free[s->idx] = gc->free_sess;
	gc->free_sess = s->idx;
	gc->stats.sessions_refused++;
}

/* The text forms of a client address: RFC 5952 (inet_ntop gives it), the
 * RFC 5321 4.1.3 address literal body ("IPv6:" tag) and host:port with
 * the RFC 5952 section 6 brackets for IPv6. */
static void client_addr_text(struct gw_sess *s)
{
	if (s->client_v6) {
		inet_ntop(AF_INET6, s->client_addr.b, s->client,
			  sizeof(s->client));
		snprintf(s->client_literal, sizeof(s->client_literal),
			 "IPv6:%s", s->client);
		snprintf(s->client_hp, sizeof(s->client_hp), "[%s]:%u",
			 s->client, s->client_port);
	} else {
		inet_ntop(AF_INET, &s->client_addr.b[12], s->client,
			  sizeof(s->client));
		snprintf(s->client_literal, sizeof(s->client_literal), "%s",
			 s->client);
		snprintf(s->client_hp, sizeof(s->client_hp), "%s:%u",
			 s->client, s->client_port);
	}
}

/*
 * A connection for which the session table has no slot is answered, not
 * reset (DESIGN 1 "a full gateway answers"): 421 4.3.2 and our FIN leave in
 * one segment, and the connection lives on in the stack only until the
 * close completes, with client_busy_marker as its context, holding no
 * session and no buffer. Whatever the client still sends is read and
 * dropped (client_readable), so its window never closes on us. The marker
 * is one read-only object shared by every core: it is only compared.
 */
static const char client_busy_marker = 0;
#define CLIENT_BUSY ((void *)(uintptr_t)&client_busy_marker)
static const char client_busy_reply[] =
	"421 4.3.2 Service busy, try again later\r\n";

static void *client_busy(struct gw_core *gc, struct tcp_conn *c,
			 const struct net_addr *ca,
			 const struct mxg_snapshot_listener *l)
{
	char a[INET6_ADDRSTRLEN];

	gc->stats.sessions_refused++;
	gc->stats.sessions_refused_busy++;
	if (net_addr_is_v4(ca))
		inet_ntop(AF_INET, &ca->b[12], a, sizeof(a));
	else
		inet_ntop(AF_INET6, ca->b, a, sizeof(a));
	/* Implicit TLS (465, RFC 8314): the client's first bytes are a
	 * ClientHello and it reads only TLS records, so a cleartext 421
	 * would be garbage to it. A handshake just to say 421 would spend
	 * a worker's crypto on a connection we have no room for, when we
	 * are busiest: the connection is closed (FIN) without a byte
	 * written, which a TLS client reports as a failed connection and
	 * retries later (docs/operations.md). */
	bool implicit = l->cl->tls.mode == CTL_TLS_IMPLICIT;

	log_line(gc, "event=refused client=%s listener=%s reason=busy "
		 "sessions=%u action=%s", a, l->cl->name,
		 gc->gw->max_sessions, implicit ? "close" : "421");
	if ((!implicit &&
	     tcp_send_more(c, client_busy_reply,
			   sizeof(client_busy_reply) - 1, true) < 0) ||
	    tcp_close(c) < 0)
		return NULL; /* cannot answer: the stack resets it */
	return CLIENT_BUSY;
}

struct gw_sess *client_open(struct gw_core *gc, uint16_t lp,
			    const struct net_addr *ca, uint16_t cport,
			    const struct net_addr *la,
			    const struct xprt_ops *ops, struct tcp_conn *c)
{
	const struct mxg_snapshot_listener *l;
	struct smtp_config smtp;
	struct gw_sess *s;
	uint32_t i;
	const char *hit = NULL;
	enum conn_verdict cv;

	l = mxg_snapshot_listener(gc->snap, lp);
	if (!l) {
		gc->stats.sessions_refused++;
		return NULL;
	}
	if (policy_conn_denied(gc, l, ca)) {
		const struct ctl_listener *cl = l->cl;

		gc->stats.conn_denied_acl++;
		if (cl->deny_action == CTL_DENY_CLOSE) {
			char a[INET6_ADDRSTRLEN];

			if (net_addr_is_v4(ca))
				inet_ntop(AF_INET, &ca->b[12], a, sizeof(a));
			else
				inet_ntop(AF_INET6, ca->b, a, sizeof(a));
			log_line(gc, "event=refused client=%s listener=%s "
				 "reason=acl action=close",
				 a, cl->name);
			return NULL; /* the stack resets it: no greeting */
		}
		cv = CONN_DENY;
	} else {
		cv = CONN_OK;
	}
	if (gc->free_sess == NO_FREE) {
		gc->stats.sessions_refused++;
		return NULL;
	}
	i = gc->free_sess;
	gc->free_sess = gc->sess_next_free[i];
	if (i >= gc->sess_hwm)
		gc->sess_hwm = i + 1;
	s = &gc->sess[i];
	{
		uint32_t gen = s->gen;

		memset(s, 0, sizeof(*s));
		s->gen = gen;
	}
	s->used = true;
	s->gc = gc;
	s->idx = i;
	s->lst = l;
	s->lport = lp;
	auth_session_init(s);
	s->snap = gc->snap;
	state_snapshot_ref(gc, s->snap);
	s->pool_set = gc->pool_set;
	s->pool_set->users++;
	xprt_init(&s->xp, ops, c);
	if (client_tls_attach(s) < 0) {
		/* TLS promised and not possible: no cleartext instead */
		xprt_release(&s->xp);
		client_open_undo(s);
		return NULL;
	}
	s->t_start_us = gc->now_us;
	s->md_job = -1;
	s->pool = -1;
	s->client_addr = *ca;
	if (la)
		s->local_addr = *la;
	s->client_v6 = !net_addr_is_v4(ca);
	s->client_port = cport;
	client_addr_text(s);
	if (s->client_v6)
		pol_ipkey6(s->ipkey, ca->b, s->snap->ipv6_prefix);
	else
		pol_ipkey4(s->ipkey, rte_be_to_cpu_32(net_addr_v4(ca)));
	/* start time + core + sequence: unique across restarts */
	snprintf(s->sid, sizeof(s->sid), "%08x%02x%06x", gc->sid_epoch,
		 gc->core & 0xff, gc->sid_seq++ & 0xffffff);
	/* STARTTLS is offered exactly when the transport can start TLS */
	smtp = l->smtp;
	if (xprt_can_start_tls(&s->xp))
		smtp.flags |= SMTP_CFG_TLS_AVAILABLE;
	else
		smtp.flags &= ~SMTP_CFG_TLS_AVAILABLE;
	s->sm = smtp_session_init_pooled(gc->smtp_mem +
						 (size_t)i * gc->gw->smtp_mem,
					 gc->gw->smtp_mem, &smtp,
					 &gc->buf_pool, core_now_ms(gc));
	if (!s->sm) {
		xprt_release(&s->xp);
		client_open_undo(s);
		return NULL;
	}
	gc->stats.sessions++;
	gc->stats.sessions_live++;
	if (cv == CONN_OK)
		cv = policy_conn_limits(s, &hit);
	switch (cv) {
	case CONN_DENY:
		s->deny_code = 554;
		s->deny_enh = "5.7.1";
		s->deny_text = "Access denied";
		break;
	case CONN_LIMIT:
		gc->stats.conn_denied_limit++;
		s->deny_code = 421;
		s->deny_enh = "4.7.0";
		s->deny_text = "Too many connections, try again later";
		break;
	case CONN_RATE:
		gc->stats.conn_denied_rate++;
		s->deny_code = 421;
		s->deny_enh = "4.7.0";
		s->deny_text = "Connection rate limit exceeded, try again "
			       "later";
		break;
	default:
		break;
	}
	log_line(gc, "event=connect sid=%s client=%s listener=%s%s%s",
		 s->sid, s->client_hp, l->cl->name,
		 s->deny_code ? " refused=" : "",
		 !s->deny_code	    ? ""
		 : cv == CONN_DENY  ? "acl"
		 : cv == CONN_LIMIT ? "limit"
				    : (hit ? hit : "rate"));
	core_dirty_session(s);
	/* core_run() is not called here: accepted() is inside the stack's input
	 * path before the conn is fully set up; the poll runs it. */
	return s;
}

/* The transport: plain here; client_open() makes it TLS for a listener
 * with TLS (client_tls.c). */
static void *client_accepted(void *arg, struct tcp_conn *c)
{
	struct net_addr la, ca;
	uint16_t lp, cport;

	struct gw_core *gc = arg;
	const struct mxg_snapshot_listener *l;

	tcp_conn_addrs6(c, &la, &lp, &ca, &cport);
	/* Table full: answered 421 before any policy runs (an ACL with
	 * action close then also gets the 421, which costs it nothing). */
	l = mxg_snapshot_listener(gc->snap, lp);
	if (gc->free_sess == NO_FREE && l)
		return client_busy(gc, c, &ca, l);
	return client_open(gc, lp, &ca, cport, &la, &xprt_plain_ops, c);
}

static void client_readable(void *ctx, struct tcp_conn *c)
{
	if (ctx == CLIENT_BUSY) {
		uint8_t sink[256];

		while (tcp_recv(c, sink, sizeof(sink)) > 0)
			;
		return;
	}
	core_dirty_session(ctx);
	core_run(((struct gw_sess *)ctx)->gc);
}

void client_peer_eof(struct gw_sess *s)
{
	s->peer_eof = true;
	xprt_peer_eof(&s->xp);
	core_dirty_session(s);
	core_run(s->gc);
}

static void client_peer_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	if (ctx == CLIENT_BUSY)
		return;
	client_peer_eof(ctx);
}

void client_gone(struct gw_sess *s)
{
	xprt_gone(&s->xp);
	s->dead = true;
	core_dirty_session(s);
	core_run(s->gc);
}

static void client_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	if (ctx == CLIENT_BUSY)
		return;
	client_gone(ctx);
}

static void client_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	RTE_SET_USED(err);
	if (ctx == CLIENT_BUSY)
		return;
	client_gone(ctx);
}

const struct tcp_callbacks client_callbacks = {
	.accepted = client_accepted,
	.readable = client_readable,
	.writable = client_readable,
	.peer_closed = client_peer_closed,
	.closed = client_closed,
	.reset = client_reset,
};
