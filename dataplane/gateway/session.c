/*
 * session.c - the client session pump.
 *
 * Owner: one dataplane lcore; called from core_run only.
 *
 * What it does: sess_pump feeds the client's received bytes into the SMTP
 * engine (dataplane/smtp), answers its events (policy checks in
 * client_policy.c, transaction steps in delivery.c) and writes the engine's
 * output back to the client; verdict helpers answer a pending request.
 *
 * Promises: a pump touches only its own session (backend connections are
 * dirtied, never pumped from here); a client's end of data is answered 250
 * only from delivery.c's confirmed outcomes (DESIGN 5).
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

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "content/rules.h"
#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/client_policy.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/content.h"
#include "dataplane/gateway/delivery.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/policy_state.h"
#include "dataplane/gateway/session.h"

void sess_verdict(struct gw_sess *s, enum smtp_verdict_kind k, uint16_t code,
		  const char *enh, const char *text)
{
	struct smtp_verdict v = {.kind = k, .code = code, .enh = enh,
				 .text = text};

	(void)smtp_session_verdict(s->sm, &v);
	core_dirty_session(s);
}

void sess_verdict_reply(struct gw_sess *s, const struct relay_reply *r)
{
	enum smtp_verdict_kind k = r->code >= 200 && r->code < 400
					   ? SMTP_V_ACCEPT
					   : SMTP_V_REJECT;

	sess_verdict(s, k, r->code, r->enh[0] ? r->enh : NULL, r->text);
}

void sess_tempfail(struct gw_sess *s, const char *enh, const char *text)
{
	sess_verdict(s, SMTP_V_REJECT, 451, enh, text);
}

const struct gw_txn gw_txn_none;

/* The transaction's area back to the core's pool. */
static void sess_txn_put(struct gw_sess *s)
{
	if (!s->txn)
		return;
	gw_area_put(&s->gc->txn_pool, s->txn);
	s->txn = NULL;
}

void sess_txn_reset(struct gw_sess *s)
{
	content_gw_release(s);
	s->pool = -1;
	s->txn_failed = false;
	s->mail_sent = false;
	s->mail_failed = false;
	s->wait = W_NONE;
	delivery_rcpt_forget(s);
	s->md_job = -1;
	s->md_committed = false;
	s->md_failed = false;
	s->body_discard = false;
	s->nrcpt_ok = s->nrcpt_bad = 0;
	s->size = 0;
	sess_txn_put(s);
}

/* Abandon whatever the next hop holds for the current transaction,
 * keeping the transaction's own state (envelope, size) for its log. */
void sess_next_hop_abort(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->md_job >= 0 && !s->md_committed) {
		maildir_abort(gc->md, s->md_job);
		/* the -ECANCELED completion still arrives and is dropped */
		s->md_job = -1;
	}
	if (s->be) {
		struct gw_be *b = s->be;

		if (!s->be_sticky || b->dead || b->closing ||
		    b->state != BE_UP) {
			sess_put_backend(s);
		} else if (relay_client_state(b->rc) == RELAY_ST_TXN ||
			   relay_client_state(b->rc) == RELAY_ST_BODY) {
			/* a sticky (PROXY) connection stays with its client
			 * through the RSET, or goes when it must close */
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
				sess_put_backend(s);
			else
				core_dirty_backend(b);
		} else if (relay_client_state(b->rc) == RELAY_ST_EOD ||
			   relay_client_done(b->rc) ||
			   relay_client_state(b->rc) == RELAY_ST_QUIT) {
			sess_put_backend(s);
		}
	}
}

/* Abandon whatever the next hop holds and reset the transaction. */
void sess_txn_abort(struct gw_sess *s)
{
	sess_next_hop_abort(s);
	sess_txn_reset(s);
}

/* STARTTLS accepted: the engine queues its 220 (and drops what it held
 * past the STARTTLS line), then the transport drops everything received
 * after it (xprt.h: the byte boundary); the next bytes are the TLS
 * layer's. A transport that fails to start TLS closes the connection. */
static void sess_starttls(struct gw_sess *s)
{
	int64_t n;

	sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
	n = xprt_start_tls(&s->xp);
	if (n < 0) {
		log_line(s->gc, "event=starttls sid=%s error=%d", s->sid,
			 (int)n);
		s->closing = true;
		xprt_shutdown(&s->xp);
		return;
	}
	s->gc->stats.starttls_discarded += (uint64_t)n;
}

/* One engine event. Returns false when the session must wait. */
static bool sess_event(struct gw_sess *s, const struct smtp_event *ev)
{
	struct gw_core *gc = s->gc;

	switch (ev->type) {
	case SMTP_REQ_CONNECT:
		if (s->deny_code)
			sess_verdict(s, SMTP_V_CLOSE, s->deny_code, s->deny_enh,
				     s->deny_text);
		else
			sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_HELO:
		if (content_gw_envelope(s, CONTENT_WHERE_HELO, ev->helo.name,
					strlen(ev->helo.name)))
			return true;
		snprintf(s->helo, sizeof(s->helo), "%s", ev->helo.name);
		s->esmtp = ev->helo.esmtp;
		sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_MAIL: {
		const struct smtp_mail *m = &ev->mail;
		size_t off = 0;

		/* a new MAIL ends whatever the last transaction left */
		sess_txn_abort(s);
		state_session_adopt(s);
		if (policy_mail(s, m))
			return true;
		s->txn = gw_area_get(&gc->txn_pool);
		if (!s->txn) {
			/* every area is out (bounded by the session table) */
			gc->stats.areas_exhausted++;
			sess_verdict(s, SMTP_V_REJECT, 452, "4.3.1",
				     "Insufficient system resources, try "
				     "again later");
			return true;
		}
		memset(s->txn, 0, sizeof(*s->txn));
		s->nmsgs++;
		snprintf(s->txn->from, sizeof(s->txn->from), "%.*s",
			 (int)m->addr_len, m->addr);
#define P(...)                                                                 \
	off += (size_t)snprintf(s->txn->delivery_mail_params + off,            \
				sizeof(s->txn->delivery_mail_params) - off,    \
				__VA_ARGS__)
		if (m->has_size)
			P("%sSIZE=%llu", off ? " " : "",
			  (unsigned long long)m->size);
		if (m->body == SMTP_BODY_8BITMIME)
			P("%sBODY=8BITMIME", off ? " " : "");
		else if (m->body == SMTP_BODY_7BIT)
			P("%sBODY=7BIT", off ? " " : "");
		if (m->smtputf8)
			P("%sSMTPUTF8", off ? " " : "");
		if (m->ret == SMTP_RET_FULL)
			P("%sRET=FULL", off ? " " : "");
		else if (m->ret == SMTP_RET_HDRS)
			P("%sRET=HDRS", off ? " " : "");
		if (m->envid && off + strlen(m->envid) + 8 <
					sizeof(s->txn->delivery_mail_params))
			P("%sENVID=%s", off ? " " : "", m->envid);
		/* RFC 4954 5: the client's AUTH= (xtext as sent); what goes
		 * on is decided by delivery_mail_params() */
		if (m->auth && off + strlen(m->auth) + 7 <
				       sizeof(s->txn->delivery_mail_params))
			P("%sAUTH=%s", off ? " " : "", m->auth);
#undef P
		s->t_mail_us = gc->now_us;
		sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	}
	case SMTP_REQ_RCPT:
		/* no room in the outstanding-RCPT queue: wait for a backend
		 * reply (before policy, which counts) */
		if (s->wait != W_NONE || !delivery_rcpt_room(s, &ev->rcpt))
			return false;
		if (policy_rcpt(s, &ev->rcpt))
			return true;
		delivery_rcpt(s, &ev->rcpt);
		return true;
	case SMTP_REQ_DATA:
		if (s->wait != W_NONE)
			return false;
		delivery_data(s);
		return s->wait == W_NONE;
	case SMTP_EV_DATA_CHUNK:
		return delivery_body_chunk(s);
	case SMTP_REQ_DATA_END:
		if (s->wait != W_NONE)
			return false;
		delivery_data_end(s);
		return s->wait == W_NONE;
	case SMTP_EV_RESET:
		sess_txn_abort(s);
		smtp_session_ack(s->sm);
		return true;
	case SMTP_EV_CLOSE:
		smtp_session_ack(s->sm);
		return true;
	case SMTP_REQ_STARTTLS:
		if (!xprt_can_start_tls(&s->xp)) {
			sess_verdict(s, SMTP_V_REJECT, 454, "4.7.0",
				     "TLS not available");
			return true;
		}
		sess_starttls(s);
		return true;
	case SMTP_REQ_AUTH:
		return auth_request(s, ev);
	case SMTP_REQ_ETRN:
		sess_verdict(s, SMTP_V_REJECT, 458, "4.5.0",
			     "Unable to queue messages");
		return true;
	default:
		smtp_session_ack(s->sm);
		return true;
	}
}

/* The engine as the transport's sink: it takes what it can buffer. */
static size_t sess_engine_sink(void *ctx, const uint8_t *p, size_t len)
{
	struct gw_sess *s = ctx;

	return smtp_session_feed(s->sm, p, len);
}

static void sess_pump_once(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->dead || !s->sm)
		return;
	smtp_session_time(s->sm, core_now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct smtp_event *ev;
		bool progress = false;
		size_t n_in;

		/* client input into the engine */
		n_in = xprt_read(&s->xp, sess_engine_sink, s);
		gc->stats.bytes_in += n_in;
		if (n_in)
			progress = true;
		/* events */
		while ((ev = smtp_session_event(s->sm)) != NULL) {
			if (!sess_event(s, ev))
				break;
			progress = true;
		}
		/* replies to the client */
		if (xprt_up(&s->xp)) {
			size_t len;
			const uint8_t *out = smtp_session_output(s->sm, &len);

			if (len) {
				/* The last reply (221, 421) is held for the
				 * FIN below, so both leave in one segment. */
				bool last = smtp_session_closed(s->sm);
				ssize_t w = xprt_send_more(&s->xp, out, len,
							   last);

				if (w > 0) {
					smtp_session_output_consume(s->sm,
								    (size_t)w);
					progress = true;
				}
				if (last && (w < 0 || (size_t)w < len))
					xprt_flush(&s->xp);
			}
		}
		if (!progress)
			break;
	}
	if (xprt_up(&s->xp) && !s->closing) {
		size_t len;

		(void)smtp_session_output(s->sm, &len);
		/* A client that half-closed after its last command (e.g.
		 * ".", QUIT, FIN) still gets the answers it is owed: the
		 * backend's verdict on its message above all, or it would
		 * send the message again. */
		if (len == 0 && (smtp_session_closed(s->sm) ||
				 (s->peer_eof && s->wait == W_NONE &&
				  s->rq_n == 0))) {
			s->closing = true;
			xprt_shutdown(&s->xp);
		}
	}
}

/* The re-entrancy rule (core.c): from core_run only, never nested. */
void sess_pump(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	assert(gc->running && !gc->pumping);
	gc->pumping = true;
	sess_pump_once(s);
	auth_settle(s);
	gc->pumping = false;
}
