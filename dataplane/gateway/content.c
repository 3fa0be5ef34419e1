/*
 * content.c - content rules on the delivery path (content.h).
 *
 * Owner: one dataplane lcore. The scanner of a message lives from its
 * first body chunk to the end of data (or an abort); its Hyperscan
 * streams are released on every path through content_gw_release().
 *
 * What this first version simplifies (docs/status.md): reject and
 * tempfail rules on HELO, MAIL and RCPT answer the command; discard and
 * log on envelope rules are judged with the message at end of data; the
 * recipients scanned there are the logged ones
 * (GW_MAX_LOG_RCPT); header actions of envelope rules add their header
 * at the top of the message (content_gw_added_header), those of header
 * rules at the end of the header block (content_gw_body_limit).
 *
 * Quarantine (docs/content-rules.md): a body rule decides at end of
 * data, after the body went to the next hop, and mxgate keeps no queue;
 * so every scanned message of a set with quarantine rules is copied, as
 * it streams, into a job on this core's quarantine Maildir (gc->qmd):
 * exactly the octets the next hop took (added headers included), after
 * X-Original-To: lines for the recipients. At end of data a quarantine
 * verdict aborts the next hop's transaction (no dot), commits the copy
 * and answers 250 only on its durable completion
 * (content_gw_quarantine_done); any other outcome aborts the copy. A
 * copy that could not take every octet (no job slot, chunk pool empty,
 * too big) is abandoned: a quarantine verdict then answers 451 4.3.0,
 * never 250, so an accepted message is never lost.
 */
#include "dataplane/gateway/gateway-t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "content/scan.h"
#include "dataplane/policy/acl.h"
#include "dataplane/smtp/smtp_session.h"

#include "dataplane/gateway/content.h"
#include "dataplane/gateway/client_policy.h"
#include "dataplane/gateway/delivery.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/session.h"

struct gw_content {
	struct content_scan scan;
	/* header-action headers of envelope rules, sent before the first
	 * body byte (content_gw_added_header) */
	char add[CONTENT_GW_ADD_MAX];
	size_t add_len, add_off;
	/* header rules with the header action: their headers go at the end
	 * of the header block (content_gw_body_limit) */
	bool hdr_end_pending;       /* end of the header block not reached */
	bool line_start;            /* the next body byte starts a line */
	size_t fed_ahead;           /* next body bytes already scanned */
	/* the copy for the quarantine Maildir (sets with quarantine rules) */
	int q_job;                  /* gc->qmd job, -1 none */
	bool q_lost;                /* the copy misses octets: unusable */
};

/* Octets for the quarantine copy: all of them or the copy is lost. */
static void quarantine_put(struct gw_sess *s, const void *p, size_t n)
{
	struct gw_content *c = s->content;
	ssize_t r;

	if (c == NULL || c->q_job < 0 || c->q_lost || n == 0)
		return;
	r = maildir_append(s->gc->qmd, c->q_job, p, n);
	if (r < 0 || (size_t)r != n)
		c->q_lost = true;
}

/* Starts the quarantine copy of this message: the Maildir's Return-Path
 * and Received:, then one X-Original-To: per recipient (the envelope a
 * quarantine reviewer needs; at most GW_MAX_LOG_RCPT). */
static void quarantine_begin(struct gw_sess *s)
{
	struct gw_content *c = s->content;
	struct maildir_received rcv;
	char tls[GW_RECEIVED_TLS_MAX], line[160];
	int j;

	c->q_job = -1;
	c->q_lost = false;
	if (!c->scan.rs->quarantine)
		return;
	c->q_lost = true;
	if (s->gc->qmd == NULL)
		return;
	delivery_maildir_received(s, &rcv, tls, sizeof(tls));
	j = maildir_begin(s->gc->qmd, &rcv,
			  ((uint64_t)s->gen << 32) | s->idx);
	if (j < 0)
		return;
	c->q_job = j;
	c->q_lost = false;
	s->gc->stats.content_quarantine_copies++;
	for (uint32_t i = 0; i < s->nrcpt_ok && i < GW_MAX_LOG_RCPT; i++) {
		int n = snprintf(line, sizeof(line), "X-Original-To: %s\r\n",
				 sess_txn_ro(s)->rcpt_log[i]);

		quarantine_put(s, line, (size_t)n);
	}
}

/* Abandons the copy (its tmp/ file is unlinked by the worker). */
static void quarantine_abort(struct gw_sess *s, struct gw_content *c)
{
	if (c->q_job >= 0)
		maildir_abort(s->gc->qmd, c->q_job);
	c->q_job = -1;
}

static bool exempt(const struct gw_sess *s)
{
	const struct ctl_listener_content *lc = &s->lst->cl->content;

	if (lc->exempt_authenticated && smtp_session_authenticated(s->sm))
		return true;
	return lc->exempt_relay_networks && policy_in_relay_networks(s);
}

/* the per-rule counter of this core (metrics: mxgate_content_rule_hits_
 * total{set, rule, action}); only this core writes its row */
static void count_hit(struct gw_sess *s, const struct content_ruleset *rs,
		      unsigned id)
{
	struct ctl_rule_hits *const *h = s->lst->content_hits;

	if (h != NULL && id < rs->n_rules)
		__atomic_store_n(&h[id]->core[s->gc->core],
				 h[id]->core[s->gc->core] + 1,
				 __ATOMIC_RELAXED);
}

static void envelope(struct gw_sess *s, const struct content_ruleset *rs,
		     void *scratch, struct content_verdict *v);
static void begin(struct gw_sess *s);

/* The headers of envelope rules with the header action, known before the
 * first body byte: they go at the top of the message (before its first
 * header line, like a Received: field; RFC 5322 3.6 sets no order). */
static void queue_headers(struct gw_sess *s, const struct content_ruleset *rs,
			  const struct content_verdict *v, bool header_rules)
{
	struct gw_content *c = s->content;

	for (unsigned i = 0; i < v->n_hits; i++) {
		const struct content_rule *r = &rs->rules[v->hits[i]];
		bool hr = r->where == CONTENT_WHERE_HEADER ||
			  r->where == CONTENT_WHERE_HEADER_NAMED;
		size_t tl = strlen(r->text);

		if (r->action != CONTENT_ACT_HEADER || hr != header_rules)
			continue;
		if (c->add_len + tl + 2 > sizeof(c->add)) {
			s->gc->stats.content_headers_dropped++;
			continue;
		}
		memcpy(c->add + c->add_len, r->text, tl);
		memcpy(c->add + c->add_len + tl, "\r\n", 2);
		c->add_len += tl + 2;
		s->gc->stats.content_headers_added++;
	}
}

static void added_headers(struct gw_sess *s, const struct content_ruleset *rs,
			  void *scratch)
{
	struct gw_content *c = s->content;
	struct content_verdict v;

	c->add_len = c->add_off = 0;
	c->hdr_end_pending = rs->header_adds;
	c->line_start = true;
	c->fed_ahead = 0;
	if (rs->db[CONTENT_WHERE_HELO] == NULL &&
	    rs->db[CONTENT_WHERE_MAIL] == NULL &&
	    rs->db[CONTENT_WHERE_RCPT] == NULL)
		return;
	content_verdict_init(&v);
	envelope(s, rs, scratch, &v);
	queue_headers(s, rs, &v, false);
}

const uint8_t *content_gw_added_header(struct gw_sess *s, size_t *len)
{
	if (!s->content_started)
		begin(s);
	if (s->content == NULL || s->content->add_off >= s->content->add_len) {
		*len = 0;
		return NULL;
	}
	*len = s->content->add_len - s->content->add_off;
	return (const uint8_t *)s->content->add + s->content->add_off;
}

void content_gw_added_header_sent(struct gw_sess *s, size_t n)
{
	if (s->content != NULL) {
		quarantine_put(s, s->content->add + s->content->add_off, n);
		s->content->add_off += n;
	}
}

static void begin(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	const struct content_ruleset *rs = s->lst ? s->lst->content : NULL;
	void *scratch;

	s->content_started = true;
	if (rs == NULL)
		return;
	if (exempt(s)) {
		gc->stats.content_exempt++;
		return;
	}
	scratch = s->snap->content_scratch[gc->core];
	s->content = malloc(sizeof(*s->content));
	if (s->content == NULL || scratch == NULL) {
		free(s->content);
		s->content = NULL;
		gc->stats.content_unscanned++;
		return;
	}
	content_scan_begin(&s->content->scan, rs, scratch,
			   s->lst->cl->content.scan_limit);
	gc->stats.content_scanned++;
	quarantine_begin(s);
	added_headers(s, rs, scratch);
}

/*
 * Where the headers of header rules go: before the empty line that ends
 * the header block, once the scanner has judged the last header. The
 * body bytes are canonical CRLF (smtp_session_data), so a line that
 * starts with CR or LF is that empty line. When p starts with it, the
 * empty line is scanned ahead (fed_ahead: content_gw_body skips it), the
 * headers of the header rules that matched are queued, and 0 is
 * returned: send the queue, then call again. Otherwise returns how many
 * bytes of p may go now (up to the empty line, or all of p).
 */
size_t content_gw_body_limit(struct gw_sess *s, const uint8_t *p, size_t len)
{
	struct gw_content *c = s->content;
	bool ls;
	size_t i = 0;

	if (c == NULL || !c->hdr_end_pending || len == 0)
		return len;
	ls = c->line_start;
	while (i < len) {
		const uint8_t *lf;

		if (ls && (p[i] == '\r' || p[i] == '\n'))
			break;
		lf = memchr(p + i, '\n', len - i);
		if (lf == NULL)
			return len;
		i = (size_t)(lf - p) + 1;
		ls = true;
	}
	if (i == len)
		return len;
	if (i > 0)
		return i;
	/* p starts with the empty line */
	const char *el = p[0] == '\r' ? "\r\n" : "\n";
	content_scan_feed(&c->scan, el, strlen(el));
	c->fed_ahead = strlen(el);
	c->hdr_end_pending = false;
	c->add_len = c->add_off = 0;
	queue_headers(s, c->scan.rs, &c->scan.v, true);
	return 0;
}

void content_gw_body(struct gw_sess *s, const uint8_t *p, size_t n)
{
	struct gw_content *c;
	size_t k;

	if (!s->content_started)
		begin(s);
	c = s->content;
	if (c == NULL || n == 0)
		return;
	quarantine_put(s, p, n);
	c->line_start = p[n - 1] == '\n';
	k = c->fed_ahead < n ? c->fed_ahead : n;
	c->fed_ahead -= k;
	if (n > k)
		content_scan_feed(&c->scan, p + k, n - k);
}

/* envelope rules, in block mode, into v */
static void envelope(struct gw_sess *s, const struct content_ruleset *rs,
		     void *scratch, struct content_verdict *v)
{
	const struct gw_txn *tx = sess_txn_ro(s);

	content_scan_envelope(rs, scratch, CONTENT_WHERE_HELO, s->helo,
			      strlen(s->helo), v);
	content_scan_envelope(rs, scratch, CONTENT_WHERE_MAIL, tx->from,
			      strlen(tx->from), v);
	for (uint32_t i = 0; i < s->nrcpt_ok && i < GW_MAX_LOG_RCPT; i++)
		content_scan_envelope(rs, scratch, CONTENT_WHERE_RCPT,
				      tx->rcpt_log[i], strlen(tx->rcpt_log[i]),
				      v);
}

bool content_gw_envelope(struct gw_sess *s, int where, const char *addr,
			 size_t len)
{
	struct gw_core *gc = s->gc;
	const struct content_ruleset *rs = s->lst ? s->lst->content : NULL;
	struct content_verdict v;
	const struct content_rule *r;
	void *scratch;
	char text[300];

	if (rs == NULL || s->snap == NULL || rs->db[where] == NULL || exempt(s))
		return false;
	scratch = s->snap->content_scratch[gc->core];
	if (scratch == NULL)
		return false;
	content_verdict_init(&v);
	content_scan_envelope(rs, scratch, (enum content_where)where, addr, len,
			      &v);
	if (v.rule < 0)
		return false;
	r = &rs->rules[v.rule];
	if (r->action != CONTENT_ACT_REJECT && r->action != CONTENT_ACT_TEMPFAIL)
		return false;
	gc->stats.content_hits++;
	count_hit(s, rs, (unsigned)v.rule);
	if (r->action == CONTENT_ACT_REJECT)
		gc->stats.content_rejected++;
	else
		gc->stats.content_tempfailed++;
	log_line(gc, "event=content sid=%s rule=%s:%u where=%s action=%s "
		 "decided=yes", s->sid, r->file, r->line,
		 content_where_name(r->where), content_action_name(r->action));
	snprintf(text, sizeof(text), "%s", r->text);
	sess_verdict(s, SMTP_V_REJECT,
		     r->action == CONTENT_ACT_REJECT ? 550 : 451, r->status,
		     text);
	return true;
}

bool content_gw_data_end(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	struct content_verdict v;
	const struct content_ruleset *rs;
	const struct content_rule *r;
	char text[300];
	int q_job;
	bool q_lost;

	if (!s->content_started)
		begin(s); /* an empty body */
	if (s->content == NULL)
		return false;
	rs = s->content->scan.rs;
	void *scratch = s->content->scan.scratch;
	if (s->content->scan.stats.truncated)
		gc->stats.content_truncated++;
	content_scan_end(&s->content->scan, &v);
	envelope(s, rs, scratch, &v);
	q_job = s->content->q_job;
	q_lost = s->content->q_lost;
	if (v.rule < 0 || rs->rules[v.rule].action != CONTENT_ACT_QUARANTINE)
		quarantine_abort(s, s->content);
	free(s->content);
	s->content = NULL;

	for (unsigned i = 0; i < v.n_hits; i++) {
		r = &rs->rules[v.hits[i]];
		gc->stats.content_hits++;
		count_hit(s, rs, (unsigned)v.hits[i]);
		log_line(gc, "event=content sid=%s rule=%s:%u where=%s%s "
			 "action=%s%s", s->sid, r->file, r->line,
			 content_where_name(r->where),
			 r->header_name ? r->header_name : "",
			 content_action_name(r->action),
			 v.hits[i] == v.rule ? " decided=yes" : "");
	}
	if (v.rule < 0)
		return false;
	r = &rs->rules[v.rule];
	switch (r->action) {
	case CONTENT_ACT_REJECT:
		gc->stats.content_rejected++;
		snprintf(text, sizeof(text), "%s", r->text);
		delivery_txn_done(s, 550, NULL, r->status, text);
		sess_verdict(s, SMTP_V_REJECT, 550, r->status, text);
		break;
	case CONTENT_ACT_TEMPFAIL:
		gc->stats.content_tempfailed++;
		snprintf(text, sizeof(text), "%s", r->text);
		delivery_txn_done(s, 451, NULL, r->status, text);
		sess_verdict(s, SMTP_V_REJECT, 451, r->status, text);
		break;
	case CONTENT_ACT_DISCARD:
		/* RFC 5321 6.2 allows silent discard; the log says so */
		gc->stats.content_discarded++;
		snprintf(text, sizeof(text), "Ok: queued as %s", s->sid);
		log_line(gc, "event=content sid=%s discarded rule=%s:%u",
			 s->sid, r->file, r->line);
		delivery_txn_done(s, 250, NULL, "2.0.0", text);
		sess_verdict(s, SMTP_V_ACCEPT, 250, "2.0.0", text);
		break;
	case CONTENT_ACT_QUARANTINE:
		/* the next hop never sees the dot; 250 only once the copy is
		 * durable in the quarantine Maildir. A next hop that failed
		 * in the body made delivery swallow the rest of it
		 * (delivery_body_chunk), so the copy misses it too. */
		if (s->body_discard || s->txn_failed || s->md_failed)
			q_lost = true;
		sess_next_hop_abort(s);
		if (q_job >= 0 && !q_lost && maildir_commit(gc->qmd, q_job) == 0) {
			s->quarantine_job = q_job;
			s->wait = W_QUARANTINE;
			return true;
		}
		if (q_job >= 0)
			maildir_abort(gc->qmd, q_job);
		gc->stats.content_quarantine_failed++;
		log_line(gc, "event=content sid=%s quarantine=failed "
			 "rule=%s:%u reason=%s", s->sid, r->file, r->line,
			 q_job < 0 ? "no-job" : "copy-incomplete");
		delivery_txn_done(s, 451, NULL, "4.3.0", "Quarantine failed");
		sess_tempfail(s, "4.3.0", "Quarantine unavailable, try again "
			      "later");
		break;
	default:
		/* header is not a deciding action (its headers went out with
		 * the header block) */
		return false;
	}
	sess_txn_abort(s);
	return true;
}

void content_gw_quarantine_done(struct gw_core *gc)
{
	struct maildir_completion comp[16];
	unsigned n;

	while ((n = maildir_poll(gc->qmd, comp, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct gw_sess *s =
				delivery_maildir_session(gc, comp[i].tag);
			char text[128];

			if (s == NULL || s->wait != W_QUARANTINE ||
			    s->quarantine_job != comp[i].job)
				continue; /* an abort, or the client left */
			s->wait = W_NONE;
			if (comp[i].status == 0) {
				gc->stats.content_quarantined++;
				log_line(gc, "event=content sid=%s "
					 "quarantined=%s", s->sid,
					 comp[i].name);
				snprintf(text, sizeof(text),
					 "Ok: queued as %s", s->sid);
				delivery_txn_done(s, 250, NULL, "2.0.0", text);
				sess_verdict(s, SMTP_V_ACCEPT, 250, "2.0.0",
					     text);
			} else {
				gc->stats.content_quarantine_failed++;
				delivery_txn_done(s, 451, NULL, "4.3.0",
						  "Quarantine failed");
				sess_tempfail(s, "4.3.0", "Quarantine failed, "
					      "try again later");
			}
			sess_txn_reset(s);
		}
	}
}

void content_gw_release(struct gw_sess *s)
{
	if (s->wait == W_QUARANTINE) {
		/* the commit runs on; its completion is dropped */
		s->wait = W_NONE;
	}
	if (s->content != NULL) {
		quarantine_abort(s, s->content);
		content_scan_abort(&s->content->scan);
		free(s->content);
		s->content = NULL;
	}
	s->content_started = false;
}
