/*
 * delivery.c - delivery of a transaction.
 *
 * Owner: one dataplane lcore.
 *
 * What it does: a transaction's path to the next hop: picks or opens the
 * backend connection (delivery_get_backend), relays MAIL/RCPT/DATA, streams
 * the body (delivery_body_chunk, with content scanning and the headers
 * content rules add) to the backend or a Maildir job, and answers the client's
 * end of data from the outcome (delivery_data_end, delivery_maildir_done).
 *
 * Promises (DESIGN 5): 250 to the final dot only from a backend's 250 to
 * our dot or a Maildir completion with status 0; every other outcome is a
 * 4xx or the backend's own 5xx.
 *
 * Recipients (issue 17): a RCPT that passed local policy is answered
 * SMTP_V_DEFER and queued (gw_rcptq, bounded by the engine's
 * max_rcpt_deferred), the engine goes on reading pipelined RCPTs, and the
 * queue goes to the backend as one pipelined group behind MAIL; each
 * RELAY_EV_RCPT answers the oldest forwarded entry
 * (smtp_session_rcpt_verdict), so a message with N recipients costs one
 * backend round trip for its RCPTs, not N. Refusals decided here (another
 * pool, a failed transaction, no backend) are answered at once, in their
 * place. A backend failure answers every outstanding recipient 4xx.
 * The Maildir next hop answers at once (no deferral).
 *
 * What this version simplifies (docs/status.md): Maildir delivery stores
 * one file per message whatever the recipients.
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

#include "dataplane/clock.h"
#include "dataplane/fmt.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#include "dataplane/gateway/backend.h"
#include "dataplane/gateway/content.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/client_tls.h"
#include "dataplane/gateway/delivery.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/session.h"

/* Count and log the final answer to a transaction. */
void delivery_txn_done(struct gw_sess *s, uint16_t code,
		       const struct relay_reply *r, const char *enh,
		       const char *text)
{
	struct gw_core *gc = s->gc;
	const char *outcome;

	if (code >= 200 && code < 300) {
		gc->stats.messages_accepted++;
		outcome = "accepted";
	} else if (code >= 500) {
		gc->stats.messages_rejected++;
		outcome = "rejected";
	} else {
		gc->stats.messages_tempfail++;
		outcome = "tempfail";
	}
	log_message(s, outcome, r, code, enh, text);
}

/* Backend failed under a transaction: every waiting request of s gets a
 * 4xx; the rest of the transaction is 4xx too (never 250). */
void delivery_backend_failed(struct gw_sess *s, const char *why)
{
	s->txn_failed = true;
	sess_put_backend(s);
	delivery_rcpt_fail_all(s, why);
	switch (s->wait) {
	case W_DATA:
		s->wait = W_NONE;
		sess_tempfail(s, "4.4.2", why);
		break;
	case W_DATA_END:
		s->wait = W_NONE;
		delivery_txn_done(s, 451, NULL, "4.4.2", why);
		sess_tempfail(s, "4.4.2", why);
		sess_txn_reset(s);
		break;
	default:
		/* in the body: swallow it, answer 451 at end of data */
		s->body_discard = true;
		break;
	}
}

/* Build MAIL parameters the backend offers. */
void delivery_mail_params(struct gw_sess *s, const struct relay_caps *caps,
			  char *buf, size_t len)
{
	size_t off = 0;
	const char *p = sess_txn_ro(s)->delivery_mail_params;
	bool auth_sent = false;

	buf[0] = '\0';
	/* delivery_mail_params holds "SIZE=n BODY=x SMTPUTF8 RET=x ENVID=x
	 * AUTH=x" as the client gave them; keep those the backend supports. */
	while (*p) {
		char tok[160];
		size_t n = strcspn(p, " ");
		bool keep = false;

		mxg_fmt(tok, sizeof(tok), "%.*s", (int)RTE_MIN(n, 159u), p);
		if (!strncmp(tok, "SIZE=", 5))
			keep = caps->size;
		else if (!strncmp(tok, "BODY=", 5))
			keep = caps->eightbitmime;
		else if (!strcmp(tok, "SMTPUTF8"))
			keep = caps->smtputf8;
		else if (!strncmp(tok, "RET=", 4) || !strncmp(tok, "ENVID=", 6))
			keep = caps->dsn;
		else if (!strncmp(tok, "AUTH=", 5) && caps->auth) {
			/* RFC 4954 5: an authenticated client is trusted to
			 * name the submitter, so its AUTH= goes on as sent;
			 * from any other client it goes on as AUTH=<> */
			auth_sent = true;
			if (!s->auth_login[0])
				mxg_fmt(tok, sizeof(tok), "AUTH=<>");
			keep = true;
		}
		if (keep && off + strlen(tok) + 2 < len)
			off += (size_t)mxg_fmt(buf + off, len - off, "%s%s",
					       off ? " " : "", tok);
		p += n;
		while (*p == ' ')
			p++;
	}
	/* RFC 4954 5: to a backend that offers AUTH, the identity the
	 * client authenticated as (xtext), or "<>" when it does not fit,
	 * unless the client named one itself (above) */
	if (caps->auth && s->auth_login[0] && !auth_sent) {
		char x[300];

		if (relay_xtext_encode(s->auth_login, x, sizeof(x)) < 0)
			snprintf(x, sizeof(x), "<>");
		if (off + strlen(x) + 7 < len)
			off += (size_t)snprintf(buf + off, len - off, "%sAUTH=%s",
						off ? " " : "", x);
	}
}

/* ------------------------------------------------ outstanding RCPTs */

static struct gw_rcptq *rq_block(const struct gw_sess *s)
{
	return &s->gc->rcptq[s->rq_block - 1];
}

/* The queue is empty: its block goes back to the core's LIFO. */
static void rq_release(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	s->rq_head = s->rq_n = s->rq_sent = 0;
	s->rq_text = 0;
	if (s->rq_block == 0)
		return;
	assert(gc->n_rcptq_free < gc->gw->max_sessions);
	gc->rcptq_free[gc->n_rcptq_free++] = s->rq_block - 1;
	s->rq_block = 0;
}

static struct gw_rcpt_entry *rq_at(const struct gw_sess *s, unsigned i)
{
	return &rq_block(s)->ent[(s->rq_head + i) % GW_RCPTQ_MAX];
}

/* The RCPT parameters the backend gets (DSN, RFC 3461 4): NOTIFY= and
 * ORCPT= as the client gave them. Returns the length written. */
static size_t rcpt_params(const struct smtp_rcpt *r, char *buf, size_t len)
{
	static const char *names[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
	size_t off = 0;

	buf[0] = '\0';
	if (r->notify) {
		const char *sep = "NOTIFY=";

		for (int i = 0; i < 4; i++)
			if (r->notify & (1u << i)) {
				off += (size_t)mxg_fmt(buf + off, len - off,
						       "%s%s", sep, names[i]);
				sep = ",";
			}
	}
	if (r->orcpt && off < len)
		off += (size_t)mxg_fmt(buf + off, len - off, "%sORCPT=%s",
				       off ? " " : "", r->orcpt);
	return RTE_MIN(off, len - 1);
}

/* Worst case text of one entry: the address, NUL, params, NUL. */
#define RQ_PARAMS_MAX 160
static size_t rq_need(const struct smtp_rcpt *r)
{
	return (size_t)r->addr_len + 2 + RQ_PARAMS_MAX;
}

bool delivery_rcpt_room(const struct gw_sess *s, const struct smtp_rcpt *r)
{
	return s->rq_n < GW_RCPTQ_MAX &&
	       (size_t)s->rq_text + rq_need(r) <= GW_RCPTQ_TEXT;
}

/* Answers the engine's deferred RCPT at the head of the queue and drops
 * the entry. */
static void rq_answer_head(struct gw_sess *s, enum smtp_verdict_kind k,
			   uint16_t code, const char *enh, const char *text)
{
	struct gw_rcpt_entry *e = rq_at(s, 0);
	struct smtp_verdict v = {.kind = k, .code = code, .enh = enh,
				 .text = text};

	/* -ENOENT/-EPIPE: the engine dropped it (time-out, close) */
	(void)smtp_session_rcpt_verdict(s->sm, e->index, &v);
	s->rq_head = (uint8_t)((s->rq_head + 1) % GW_RCPTQ_MAX);
	s->rq_n--;
	if (s->rq_sent)
		s->rq_sent--;
	if (s->rq_n == 0)
		rq_release(s);
	core_dirty_session(s);
}

void delivery_rcpt_fail_all(struct gw_sess *s, const char *why)
{
	while (s->rq_n) {
		s->gc->stats.rcpts_rejected++;
		s->nrcpt_bad++;
		rq_answer_head(s, SMTP_V_REJECT, 451, "4.4.2", why);
	}
	s->rq_sent = 0;
}

void delivery_rcpt_forget(struct gw_sess *s)
{
	rq_release(s);
}

void delivery_rcpt_resend(struct gw_sess *s)
{
	s->rq_sent = 0;
}

bool delivery_rcpt_waiting(const struct gw_sess *s)
{
	return s->rq_n > s->rq_sent;
}

void delivery_rcpt_reply(struct gw_sess *s, const struct relay_reply *rep)
{
	struct gw_core *gc = s->gc;
	struct gw_rcpt_entry *e;

	if (s->rq_sent == 0)
		return; /* not ours (answered by a failure already) */
	e = rq_at(s, 0);
	if (s->mail_failed) {
		/* MAIL refused: the RCPT reply (503) is not the client's
		 * business; give it the MAIL reply. */
		const struct relay_reply_copy *mr = &sess_txn_ro(s)->mail_reply;

		gc->stats.rcpts_rejected++;
		s->nrcpt_bad++;
		rq_answer_head(s, SMTP_V_REJECT, mr->code,
			       mr->enh[0] ? mr->enh : NULL, mr->text);
	} else if (rep->code / 100 == 2) {
		if (s->txn && s->nrcpt_ok < GW_MAX_LOG_RCPT)
			mxg_fmt(s->txn->rcpt_log[s->nrcpt_ok], 128, "%.*s",
				(int)RTE_MIN(e->addr_len, 127),
				rq_block(s)->text + e->off);
		s->nrcpt_ok++;
		gc->stats.rcpts_accepted++;
		rq_answer_head(s, SMTP_V_ACCEPT, rep->code,
			       rep->enh[0] ? rep->enh : NULL, rep->text);
	} else {
		uint16_t code = rep->code >= 400 ? rep->code : 451;

		s->nrcpt_bad++;
		gc->stats.rcpts_rejected++;
		rq_answer_head(s, SMTP_V_REJECT, code,
			       rep->enh[0] ? rep->enh : NULL, rep->text);
	}
	/* entries the relay client had no room for go now */
	if (delivery_rcpt_waiting(s) && s->be)
		delivery_backend_ready(s);
}

/* The backend of s is READY (or its transaction open): send MAIL
 * (+XCLIENT) once, then every queued RCPT not yet sent, in order; they
 * leave in one pipelined group (the relay client sends them one at a
 * time to a backend without PIPELINING). */
void delivery_backend_ready(struct gw_sess *s)
{
	struct gw_be *b = s->be;
	const struct relay_caps *caps = relay_client_caps(b->rc);
	struct relay_xclient xc = {
		.addr = s->client_literal,
		.port = s->client_port,
		.name = "[UNAVAILABLE]",
		.helo = s->helo[0] ? s->helo : NULL,
		.proto = s->esmtp ? "ESMTP" : "SMTP",
		.login = auth_login(s), /* XCLIENT LOGIN= (NULL: none) */
	};
	struct relay_mail m = {.sender = sess_txn_ro(s)->from,
			       .xclient = &xc};
	char params[520];

	if (!s->mail_sent) {
		if (s->rq_n == 0)
			return; /* nothing to send yet */
		delivery_mail_params(s, caps, params, sizeof(params));
		m.params = params[0] ? params : NULL;
		if (caps->xclient)
			b->xclient_used = true;
		if (relay_client_mail(b->rc, &m) < 0) {
			delivery_backend_failed(s, "Backend refused the "
						"transaction");
			return;
		}
		s->mail_sent = true;
	}
	while (s->rq_sent < s->rq_n) {
		struct gw_rcpt_entry *e = rq_at(s, s->rq_sent);
		const char *addr = rq_block(s)->text + e->off;
		const char *p = addr + e->addr_len + 1;
		int r = relay_client_rcpt(b->rc, addr,
					  caps->dsn && e->params_len ? p
								     : NULL);

		if (r == -ENOSPC && s->rq_sent > 0)
			break; /* the relay's queue is full: on a reply */
		if (r < 0) {
			delivery_backend_failed(s, "Backend refused the "
						"recipient");
			return;
		}
		s->rq_sent++;
	}
	core_dirty_backend(b);
}

/* Get a backend for s in pool: idle cached, else new. NULL: none. */
struct gw_be *delivery_get_backend(struct gw_sess *s, uint32_t pool)
{
	struct gw_core *gc = s->gc;
	struct gw_pool_set *pool_set = s->pool_set;
	const struct mxg_snapshot_pool *gp = &pool_set->snap->pools[pool];
	uint32_t srv;
	struct gw_be *b;
	int r;

	while (gp->rc.client_info != RELAY_CINFO_PROXY &&
	       (b = relay_pool_idle_take_any(pool_set->rp, pool,
					     core_now_ms(gc), &srv)) != NULL) {
		b->idle = false;
		if (b->dead || b->closing ||
		    relay_client_state(b->rc) != RELAY_ST_READY) {
			if (b->dead)
				be_release(b);
			continue;
		}
		/* A cached connection's RSET leads the next MAIL
		 * (relay_client_rset_lazy); one that died or refuses it is
		 * retried on a new connection before any reply of this
		 * transaction came (RELAY_EV_ERROR below). */
		b->reuse_check = true;
		be_own(b, s);
		gc->stats.backend_reused++;
		return b;
	}
	r = relay_pool_select(pool_set->rp, pool, core_now_ms(gc));
	if (r < 0)
		return NULL;
	b = be_open(gc, pool_set, pool, (uint32_t)r, s);
	if (b)
		be_own(b, s);
	return b;
}

static const char *delivery_rcpt_domain(const struct smtp_rcpt *r, size_t *len)
{
	const char *at = memrchr(r->addr, '@', r->addr_len);

	if (!at) {
		*len = 0;
		return "";
	}
	*len = r->addr_len - (size_t)(at + 1 - r->addr);
	return at + 1;
}

void delivery_rcpt(struct gw_sess *s, const struct smtp_rcpt *r)
{
	struct gw_core *gc = s->gc;
	size_t dlen;
	const char *dom = delivery_rcpt_domain(r, &dlen);
	uint32_t pool = relay_pools_route(s->pool_set->rp, dom, dlen);
	const struct mxg_snapshot_pool *gp = &s->pool_set->snap->pools[pool];

	if (s->txn_failed) {
		gc->stats.rcpts_rejected++;
		sess_tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (s->pool >= 0 && (uint32_t)s->pool != pool) {
		/* DESIGN 5: one pool per transaction. */
		gc->stats.rcpts_rejected++;
		sess_verdict(s, SMTP_V_REJECT, 452, "4.5.3",
			"Recipient goes to another destination: send it in "
			     "its own transaction");
		return;
	}
	s->pool = (int)pool;
	if (gp->maildir) {
		if (s->txn && s->nrcpt_ok < GW_MAX_LOG_RCPT)
			mxg_fmt(s->txn->rcpt_log[s->nrcpt_ok], 128, "%.*s",
				 (int)RTE_MIN(r->addr_len, 127), r->addr);
		s->nrcpt_ok++;
		gc->stats.rcpts_accepted++;
		if (s->txn)
			mxg_fmt(s->txn->backend_name,
				sizeof(s->txn->backend_name), "maildir");
		sess_verdict(s, SMTP_V_ACCEPT, 250, "2.1.5", "Ok");
		return;
	}
	if (s->mail_failed) {
		const struct relay_reply_copy *mr = &sess_txn_ro(s)->mail_reply;

		gc->stats.rcpts_rejected++;
		sess_verdict(s, SMTP_V_REJECT, mr->code,
			     mr->enh[0] ? mr->enh : NULL, mr->text);
		return;
	}
	if (s->be && !s->mail_sent &&
	    (s->be->pool != pool || s->be->pool_set != s->pool_set)) {
		/* a sticky (PROXY) backend of an earlier transaction belongs
		 * to another pool: never send this one there */
		sess_put_backend(s);
	}
	if (!s->be) {
		s->be = delivery_get_backend(s, pool);
		if (!s->be) {
			gc->stats.rcpts_rejected++;
			sess_tempfail(s, "4.4.1",
				      "No backend available, try again later");
			return;
		}
		s->be_sticky = gp->rc.client_info == RELAY_CINFO_PROXY;
		if (s->txn)
			mxg_fmt(s->txn->backend_name,
				sizeof(s->txn->backend_name), "%s",
				s->be->name);
	}
	/* Queue it (session.c checked delivery_rcpt_room) and defer the
	 * reply: the engine reads the next pipelined RCPT meanwhile. */
	{
		struct gw_rcptq *q;
		struct gw_rcpt_entry *e;
		char *t;
		size_t plen;

		if (s->rq_block == 0) {
			/* one block per session slot: never empty here */
			assert(s->gc->n_rcptq_free > 0);
			s->rq_block =
				s->gc->rcptq_free[--s->gc->n_rcptq_free] + 1;
		}
		q = rq_block(s);
		e = rq_at(s, s->rq_n);
		t = q->text + s->rq_text;

		memcpy(t, r->addr, r->addr_len);
		t[r->addr_len] = '\0';
		plen = rcpt_params(r, t + r->addr_len + 1, RQ_PARAMS_MAX);
		e->index = r->index;
		e->off = s->rq_text;
		e->addr_len = r->addr_len;
		e->params_len = (uint16_t)plen;
		s->rq_text = (uint16_t)(s->rq_text + r->addr_len + plen + 2);
		s->rq_n++;
	}
	sess_verdict(s, SMTP_V_DEFER, 0, NULL, NULL);
	if (relay_client_state(s->be->rc) == RELAY_ST_READY || s->mail_sent)
		delivery_backend_ready(s);
	/* else RELAY_EV_READY (or RSET) calls delivery_backend_ready() */
}

void delivery_maildir_received(struct gw_sess *s,
			       struct maildir_received *rcv, char *tls,
			       size_t tls_len)
{
	client_tls_received_comment(s, tls, tls_len);
	*rcv = (struct maildir_received){
		.client_addr = s->client_literal,
		.helo = s->helo[0] ? s->helo : NULL,
		.listener = s->lst->cl->name,
		.session_id = s->sid,
		.protocol = auth_received_protocol(s),
		.tls = tls,
		.sender = sess_txn_ro(s)->from,
		.recipient = s->nrcpt_ok == 1 ? sess_txn_ro(s)->rcpt_log[0]
					      : NULL,
	};
}

void delivery_data(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->txn_failed || s->pool < 0) {
		sess_tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (s->pool_set->snap->pools[s->pool].maildir) {
		char tls[GW_RECEIVED_TLS_MAX];
		struct maildir_received rcv;
		int j;

		delivery_maildir_received(s, &rcv, tls, sizeof(tls));
		j = maildir_begin(gc->md, &rcv,
				      ((uint64_t)s->gen << 32) | s->idx);

		if (j < 0) {
			sess_tempfail(s, "4.3.0",
				      "Local delivery busy, try again "
				      "later");
			return;
		}
		s->md_job = j;
		sess_verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return;
	}
	if (!s->be || relay_client_data(s->be->rc) < 0) {
		/* the transaction cannot go on at this backend: let it go
		 * (issue 11: every failed relay call releases it) */
		s->txn_failed = true;
		sess_put_backend(s);
		sess_tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	s->wait = W_DATA;
	core_dirty_backend(s->be);
}

/* Bytes to the next hop (Maildir job or backend): how many it took, or
 * -1 when it failed (the transaction is marked; end of data answers). */
static ssize_t next_hop_put(struct gw_sess *s, const uint8_t *p, size_t len)
{
	ssize_t n;

	if (s->md_job >= 0) {
		n = maildir_append(s->gc->md, s->md_job, p, len);
		if (n < 0) {
			s->md_failed = true;
			s->md_status = (int)n;
			return -1;
		}
		return n;
	}
	if (s->be) {
		n = relay_client_body(s->be->rc, p, len);
		if (n < 0) {
			s->body_discard = true;
			sess_put_backend(s);
			return -1;
		}
		core_dirty_backend(s->be);
		return n;
	}
	s->body_discard = true;
	return -1;
}

/* Headers added by content rules still to go before the next body bytes
 * (content.h). Returns false when the next hop must drain first; on a
 * next hop failure the body is consumed (end of data answers). */
static bool added_headers_put(struct gw_sess *s, size_t len, bool *failed)
{
	size_t hlen;
	const uint8_t *h = content_gw_added_header(s, &hlen);
	ssize_t n;

	*failed = false;
	if (hlen == 0)
		return true;
	n = next_hop_put(s, h, hlen);
	if (n < 0) {
		smtp_session_data_consume(s->sm, len);
		*failed = true;
		return true;
	}
	content_gw_added_header_sent(s, (size_t)n);
	return (size_t)n == hlen;
}

/* Body bytes for the next hop. Returns false when it must wait. */
bool delivery_body_chunk(struct gw_sess *s)
{
	size_t len, take;
	const uint8_t *p;
	ssize_t n;
	bool failed;

	/* at most three rounds: the top headers, the body up to the end of
	 * the header block, the headers of header rules and the rest */
	for (;;) {
		p = smtp_session_data(s->sm, &len);
		if (len == 0)
			return true;
		if (s->body_discard || s->txn_failed || s->md_failed) {
			s->size += len;
			smtp_session_data_consume(s->sm, len);
			return true;
		}
		if (!added_headers_put(s, len, &failed))
			return false;
		if (failed)
			return true;
		take = content_gw_body_limit(s, p, len);
		if (take == 0)
			continue; /* headers of header rules queued */
		n = next_hop_put(s, p, take);
		if (n < 0) {
			smtp_session_data_consume(s->sm, len);
			return true;
		}
		s->size += (uint64_t)n;
		content_gw_body(s, p, (size_t)n);
		if (n > 0)
			smtp_session_data_consume(s->sm, (size_t)n);
		if ((size_t)n < take)
			return false;
		if (take == len)
			return true;
	}
}

void delivery_data_end(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (content_gw_data_end(s))
		return; /* a rule decided; the next hop saw no dot */

	if (s->md_job >= 0 && s->md_failed) {
		int st = s->md_status;

		maildir_abort(gc->md, s->md_job);
		s->md_job = -1;
		if (st == -EFBIG) {
			delivery_txn_done(s, 552, NULL, "5.3.4",
					  "Message too big");
			sess_verdict(s, SMTP_V_REJECT, 552, "5.3.4",
				     "Message too big for local delivery");
		} else {
			delivery_txn_done(s, 451, NULL, "4.3.0",
					  "Local delivery failed");
			sess_tempfail(s, "4.3.0", "Local delivery failed, try "
				      "again later");
		}
		sess_txn_reset(s);
		return;
	}
	if (s->body_discard || s->txn_failed) {
		delivery_txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		sess_tempfail(s, "4.4.2",
			      "Backend failed during the message, try "
			      "again later");
		sess_txn_abort(s);
		return;
	}
	if (s->md_job >= 0) {
		if (maildir_commit(gc->md, s->md_job) < 0) {
			delivery_txn_done(s, 451, NULL, "4.3.0",
					  "Local delivery failed");
			sess_tempfail(s, "4.3.0", "Local delivery failed");
			sess_txn_reset(s);
			return;
		}
		s->md_committed = true;
		s->wait = W_DATA_END;
		return;
	}
	if (!s->be || relay_client_commit(s->be->rc) < 0) {
		delivery_txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		sess_tempfail(s, "4.4.2", "Backend failed, try again later");
		sess_txn_abort(s);
		return;
	}
	s->wait = W_DATA_END;
	s->t_dot_us = gc->now_us;
	core_dirty_backend(s->be);
}

struct gw_sess *delivery_maildir_session(struct gw_core *gc, uint64_t tag)
{
	uint32_t idx = (uint32_t)(tag & 0xffffffff);
	uint32_t gen = (uint32_t)(tag >> 32);
	struct gw_sess *s;

	if (idx >= gc->gw->max_sessions)
		return NULL;
	s = &gc->sess[idx];
	return s->used && s->gen == gen ? s : NULL;
}

void delivery_maildir_done(struct gw_core *gc)
{
	struct maildir_completion comp[16];
	unsigned n;

	while ((n = maildir_poll(gc->md, comp, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct gw_sess *s =
				delivery_maildir_session(gc, comp[i].tag);

			if (comp[i].status == 0)
				gc->stats.maildir_delivered++;
			else if (comp[i].status != -ECANCELED)
				gc->stats.maildir_failed++;
			if (s == NULL || s->md_job != comp[i].job ||
			    s->wait != W_DATA_END)
				continue;
			s->wait = W_NONE;
			s->md_job = -1;
			if (comp[i].status == 0) {
				char text[128];

				mxg_fmt(text, sizeof(text),
					 "Ok: queued as %s", s->sid);
				delivery_txn_done(s, 250, NULL, "2.0.0", text);
				sess_verdict(s, SMTP_V_ACCEPT, 250, "2.0.0",
					     text);
			} else {
				delivery_txn_done(s, 451, NULL, "4.3.0",
						  "Local delivery failed");
				sess_tempfail(s, "4.3.0",
					      "Local delivery failed, "
					      "try again later");
			}
			sess_txn_reset(s);
		}
	}
}
