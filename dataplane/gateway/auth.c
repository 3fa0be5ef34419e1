/*
 * auth.c - the client session's SMTP AUTH (issue 14, DESIGN 7b): the
 * engine's SMTP_REQ_AUTH into the sans-I/O SASL machine (auth/sasl.h),
 * its requests onto the worker pool (auth/jobs.h: every password hash
 * and every GSS-API step), its answers back to the engine; brute-force
 * accounting per client IP and login (auth/brute.h); the sender-login
 * map at MAIL (auth/sendermap.h).
 *
 * Owner: one dataplane lcore. auth_request runs in the session pump; the
 * jobs' done()/drop() run on the same core from workers_poll (lcore.c),
 * outside any pump: they only store the result and dirty the session,
 * and the next pump answers the engine.
 *
 * Promises: never hashes, never calls GSS-API, never blocks; while an
 * exchange waits (job out, or a tarpit-held 535) the engine's AUTH
 * request stays unanswered, so no further client input is processed. A
 * session released with a job out cancels it: the pool then calls
 * drop(), which frees the job and never touches the session. A job
 * carries copies of what it reads (auth/jobs.h), never pointers into a
 * snapshot a reload may retire. Jobs are allocated per exchange (one
 * malloc per AUTH, not per packet) and freed by done() or drop().
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>

#include "auth/brute.h"
#include "auth/jobs.h"
#include "auth/sendermap.h"
#include "dataplane/workers/workers.h"

#include <rte_hash_crc.h>

#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/session.h"

int auth_core_init(struct gw_core *gc)
{
	const struct ctl_auth_config *a = &gc->gw->snap->cfg.auth;

	gc->brute = auth_brute_create(a->brute_table_size ? a->brute_table_size
							  : 65536,
				      &a->brute_force);
	if (!gc->brute)
		return -ENOMEM;
	gc->brute_generation = gc->gw->snap->generation;
	return 0;
}

void auth_core_fini(struct gw_core *gc)
{
	auth_brute_free(gc->brute);
	gc->brute = NULL;
}

/* The core's table with the limits of the current policy (a reload
 * changes the limits and keeps the counts). */
static struct auth_brute *brute(struct gw_core *gc)
{
	if (gc->snap && gc->brute_generation != gc->snap->generation) {
		auth_brute_set_config(gc->brute,
				      &gc->snap->cfg.auth.brute_force);
		gc->brute_generation = gc->snap->generation;
	}
	return gc->brute;
}

void auth_session_init(struct gw_sess *s)
{
	s->auth = NULL;
	s->auth_login[0] = '\0';
}

/* The exchange's area from the core's pool (issue 18: an idle session
 * holds none). NULL when every area is out. */
static struct gw_auth *auth_take(struct gw_sess *s)
{
	struct gw_auth *a = s->auth;

	if (a)
		return a;
	a = gw_area_get(&s->gc->auth_pool);
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	auth_sasl_init(&a->sasl, &s->lst->sasl);
	a->wait = GW_AUTH_IDLE;
	s->auth = a;
	return a;
}

/* The exchange is over (answered, nothing on the pool, no GSS context
 * kept): secrets wiped, the area back to the pool. */
static void auth_put(struct gw_sess *s)
{
	struct gw_auth *a = s->auth;

	if (!a || a->wait != GW_AUTH_IDLE || a->vjob || a->gjob)
		return;
	auth_sasl_reset(&a->sasl);
	gw_area_put(&s->gc->auth_pool, a);
	s->auth = NULL;
}

static void gss_job_free(struct auth_gss_job *j)
{
	auth_gss_job_release(j);
	free(j);
}

void auth_session_end(struct gw_sess *s)
{
	struct gw_auth *a = s->auth;

	if (!a)
		return;
	if (a->wait == GW_AUTH_JOB) {
		/* the pool gives the job back through drop(), which frees
		 * it: from now on nobody points from the job to s */
		if (a->vjob)
			workers_cancel(&a->vjob->wj);
		else if (a->gjob)
			workers_cancel(&a->gjob->wj);
	} else if (a->gjob) {
		gss_job_free(a->gjob);
	}
	a->vjob = NULL;
	a->gjob = NULL;
	a->wait = GW_AUTH_IDLE;
	auth_put(s);
}

void auth_session_teardown(struct gw_sess *s)
{
	struct gw_auth *a = s->auth;

	if (!a)
		return;
	if (a->wait != GW_AUTH_JOB && a->gjob)
		gss_job_free(a->gjob);
	a->vjob = NULL;
	a->gjob = NULL;
	a->wait = GW_AUTH_IDLE;
	auth_put(s);
}

void auth_settle(struct gw_sess *s)
{
	/* the engine answers a client's "*" (and a 503) itself: an
	 * exchange no longer awaiting a line is over */
	if (s->auth && s->sm && smtp_session_state(s->sm) != SMTP_ST_AUTH)
		auth_put(s);
}

static void mech_count(struct gw_core *gc, enum auth_mech m, bool ok)
{
	switch (m) {
	case AUTH_MECH_PLAIN:
		(*(ok ? &gc->stats.auth_ok_plain
		      : &gc->stats.auth_failed_plain))++;
		break;
	case AUTH_MECH_LOGIN:
		(*(ok ? &gc->stats.auth_ok_login
		      : &gc->stats.auth_failed_login))++;
		break;
	case AUTH_MECH_GSSAPI:
		(*(ok ? &gc->stats.auth_ok_gssapi
		      : &gc->stats.auth_failed_gssapi))++;
		break;
	}
}

/* A login as a log value: no space, quote or control (docs/logging.md
 * grammar), at most 64 octets. */
static const char *log_user(const char *u, char *buf, size_t cap)
{
	size_t i;

	if (!u || !u[0])
		return "-";
	for (i = 0; u[i] && i + 1 < cap && i < 64; i++)
		buf[i] = (unsigned char)u[i] <= 0x20 || u[i] == '"' ||
					 u[i] == 0x7f
				 ? '?'
				 : u[i];
	buf[i] = '\0';
	return buf;
}

static void auth_log(struct gw_sess *s, const char *result, int code,
		     uint32_t delay_ms)
{
	char u[72];

	log_line(s->gc,
		 "event=auth sid=%s client=%s mech=%s user=%s result=%s "
		 "code=%d delay_ms=%u",
		 s->sid, s->client, auth_mech_name(s->auth->mech),
		 log_user(s->auth_login[0] ? s->auth_login : s->auth->tried, u,
			  sizeof(u)),
		 result, code, delay_ms);
}

/* The brute-force tables key an address by 32 bits: an IPv4 client by
 * its address, an IPv6 client by a hash of its per-IP key (the
 * policy.ipv6_prefix prefix, /64 by default), so rotating addresses
 * inside one /64 does not reset its count. A hash may collide with
 * another client's key: both then share one count (stricter, never
 * looser for either). */
static uint32_t brute_ip(const struct gw_sess *s)
{
	if (net_addr_is_v4(&s->client_addr))
		return rte_be_to_cpu_32(net_addr_v4(&s->client_addr));
	return rte_hash_crc(s->ipkey, sizeof(s->ipkey), 0x6d786777u);
}

/* The final reply of an exchange is in a->out: brute-force accounting,
 * counters, log line; the answer is then held until hold_until_us (the
 * tarpit: a timer on this session, the core goes on). */
static void auth_outcome(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	struct gw_auth *a = s->auth;
	const struct auth_sasl_out *o = &a->out;
	uint32_t ip = brute_ip(s);
	uint32_t delay_ms = 0;
	bool locked_now = false;

	a->wait = GW_AUTH_HELD;
	a->hold_until_us = 0;
	if (o->kind != AUTH_OUT_REPLY)
		return;
	if (o->code == 235) {
		snprintf(s->auth_login, sizeof(s->auth_login), "%s",
			 o->login);
		auth_brute_success(brute(gc), s->auth_login);
		mech_count(gc, a->mech, true);
		auth_log(s, "ok", 235, 0);
	} else if (o->code == 454 && o->failure) {
		gc->stats.auth_locked++;
		auth_log(s, "locked", 454, 0);
	} else if (o->code == 454) {
		gc->stats.auth_tempfail++;
		auth_log(s, "tempfail", 454, 0);
	} else if (o->failure) {
		delay_ms = auth_brute_fail(brute(gc), ip,
					   a->tried[0] ? a->tried : NULL,
					   gc->now_us, &locked_now);
		mech_count(gc, a->mech, false);
		if (delay_ms) {
			gc->stats.auth_delayed++;
			a->hold_until_us =
				gc->now_us + (uint64_t)delay_ms * 1000;
		}
		auth_log(s, "failed", o->code, delay_ms);
		if (locked_now) {
			char u[72];

			gc->stats.auth_lockouts++;
			log_line(gc,
				 "event=auth_lockout sid=%s client=%s user=%s",
				 s->sid, s->client,
				 log_user(a->tried, u, sizeof(u)));
		}
	}
	if (o->code != 235)
		a->tried[0] = '\0';
}

/* Answers the engine with the machine's output: 334 challenge or the
 * final reply ("535 5.7.8 text" split into code, enhanced code, text). */
static void answer(struct gw_sess *s, const struct auth_sasl_out *o)
{
	char enh[16] = "";
	const char *p, *text = NULL;
	size_t n;

	if (o->kind == AUTH_OUT_CHALLENGE) {
		sess_verdict(s, SMTP_V_CHALLENGE, 334, NULL,
			     o->challenge ? o->challenge : "");
		return;
	}
	p = o->reply ? o->reply : "";
	if (strlen(p) > 4) {
		p += 4;
		n = strcspn(p, " ");
		if (n < sizeof(enh)) {
			memcpy(enh, p, n);
			enh[n] = '\0';
		}
		text = p[n] ? p + n + 1 : NULL;
	}
	sess_verdict(s, o->code == 235 ? SMTP_V_ACCEPT : SMTP_V_REJECT,
		     (uint16_t)o->code, enh[0] ? enh : NULL, text);
}

/* ------------------------------------------------------------ jobs */

static void verify_done(struct worker_job *wj)
{
	struct auth_verify_job *j = (struct auth_verify_job *)wj;
	struct gw_sess *s = j->owner;
	enum auth_result r = j->result;

	/* a released session cancelled its job: done() never sees it */
	assert(s->used && s->auth && s->auth->vjob == j);
	auth_verify_job_wipe(j);
	free(j);
	s->auth->vjob = NULL;
	if (auth_sasl_verified(&s->auth->sasl, r, &s->auth->out) < 0) {
		s->auth->wait = GW_AUTH_IDLE;
		auth_put(s);
		return;
	}
	auth_outcome(s);
	core_dirty_session(s);
}

/* A cancelled check: its session is gone; free the job only. */
static void verify_drop(struct worker_job *wj)
{
	struct auth_verify_job *j = (struct auth_verify_job *)wj;

	auth_verify_job_wipe(j);
	free(j);
}

static void gss_done(struct worker_job *wj)
{
	struct auth_gss_job *j = (struct auth_gss_job *)wj;
	struct gw_sess *s = j->owner;
	struct gw_auth *a = s->auth;

	assert(s->used && a && a->gjob == j);
	if (j->res.result != AUTH_RESULT_OK && j->error[0])
		log_line(s->gc, "event=auth_gss sid=%s client=%s error=\"%s\"",
			 s->sid, s->client, j->error);
	if (auth_sasl_gss_done(&a->sasl, &j->res, &a->out) < 0) {
		a->wait = GW_AUTH_IDLE;
		a->gjob = NULL;
		gss_job_free(j);
		auth_put(s);
		return;
	}
	if (a->out.kind == AUTH_OUT_REPLY) {
		/* the exchange is over; the 235's login lives in the
		 * machine, not in the job */
		if (a->out.code != 235 && j->res.principal)
			snprintf(a->tried, sizeof(a->tried), "%s",
				 j->res.principal);
		a->gjob = NULL;
		gss_job_free(j);
		auth_outcome(s);
	} else {
		/* a challenge pointing into the job: kept for the next step */
		a->wait = GW_AUTH_HELD;
		a->hold_until_us = 0;
	}
	core_dirty_session(s);
}

static void gss_drop(struct worker_job *wj)
{
	gss_job_free((struct auth_gss_job *)wj);
}

/* ------------------------------------------------------------ exchange */

/* A credential check for the machine's AUTH_OUT_VERIFY. Returns false
 * when the job is out (the caller waits). */
static bool start_verify(struct gw_sess *s, const struct auth_sasl_out *o)
{
	struct gw_core *gc = s->gc;
	struct gw_auth *a = s->auth;
	const struct mxg_snapshot *sn = s->snap;
	struct auth_verify_job *j;
	enum auth_result r = AUTH_RESULT_TEMPFAIL;

	snprintf(a->tried, sizeof(a->tried), "%s", o->authcid);
	if (auth_brute_locked(brute(gc), brute_ip(s),
			      a->tried, gc->now_us)) {
		r = AUTH_RESULT_LOCKED;
		goto answer_now;
	}
	if (!gc->gw->workers)
		goto answer_now;
	j = malloc(sizeof(*j));
	if (!j)
		goto answer_now;
	if (sn->cfg.auth.dovecot_socket)
		auth_verify_job_prepare_dovecot(
			j, sn->cfg.auth.dovecot_socket, o->authcid, o->password,
			o->password_len, s->client, xprt_is_secure(&s->xp),
			verify_done, verify_drop, s);
	else
		auth_verify_job_prepare(j, sn->auth_users, o->authcid,
					o->password, o->password_len,
					verify_done, verify_drop, s);
	if (workers_submit(gc->gw->workers, gc->core, &j->wj) < 0) {
		auth_verify_job_wipe(j);
		free(j);
		goto answer_now;
	}
	a->vjob = j;
	a->wait = GW_AUTH_JOB;
	return false;

answer_now:
	if (auth_sasl_verified(&a->sasl, r, &a->out) < 0)
		return true;
	auth_outcome(s);
	return true;
}

/* A GSS-API step for the machine's AUTH_OUT_GSS. */
static bool start_gss(struct gw_sess *s, const struct auth_sasl_out *o)
{
	struct gw_core *gc = s->gc;
	struct gw_auth *a = s->auth;
	struct auth_gss_result fail = {.result = AUTH_RESULT_TEMPFAIL,
				       .token_b64 = "",
				       .offer_b64 = "",
				       .principal = "",
				       .authzid = ""};

	if (!gc->gw->workers)
		goto answer_now;
	if (!a->gjob) {
		a->gjob = malloc(sizeof(*a->gjob));
		if (!a->gjob)
			goto answer_now;
		auth_gss_job_init(a->gjob, &s->snap->gss, gss_done, gss_drop,
				  s);
	}
	if (auth_gss_job_step(a->gjob, o->gss_op, o->gss_in, o->gss_in_len) <
	    0) {
		fail.result = AUTH_RESULT_FAIL;
		goto answer_now;
	}
	if (workers_submit(gc->gw->workers, gc->core, &a->gjob->wj) < 0)
		goto answer_now;
	a->wait = GW_AUTH_JOB;
	return false;

answer_now:
	if (a->gjob) {
		gss_job_free(a->gjob);
		a->gjob = NULL;
	}
	if (auth_sasl_gss_done(&a->sasl, &fail, &a->out) < 0)
		return true;
	auth_outcome(s);
	return true;
}

/* The machine's output: answer now, or start a job. Returns false when
 * the answer waits. */
static bool step(struct gw_sess *s, const struct auth_sasl_out *o)
{
	struct gw_auth *a = s->auth;

	switch (o->kind) {
	case AUTH_OUT_CHALLENGE:
		answer(s, o);
		return true;
	case AUTH_OUT_VERIFY:
		if (!start_verify(s, o))
			return false;
		break;
	case AUTH_OUT_GSS:
		if (!start_gss(s, o))
			return false;
		break;
	case AUTH_OUT_REPLY:
		a->out = *o;
		auth_outcome(s);
		break;
	}
	/* an outcome is held: answer unless the tarpit holds it */
	if (a->hold_until_us > s->gc->now_us)
		return false;
	a->wait = GW_AUTH_IDLE;
	answer(s, &a->out);
	auth_put(s);
	return true;
}

bool auth_request(struct gw_sess *s, const struct smtp_event *ev)
{
	struct gw_core *gc = s->gc;
	struct gw_auth *a = s->auth;
	const char *resp = ev->auth.response;
	struct auth_sasl_out out;
	enum smtp_state st;
	int r;

	if (a) {
		switch (a->wait) {
		case GW_AUTH_JOB:
			return false;
		case GW_AUTH_HELD:
			if (a->hold_until_us > gc->now_us)
				return false;
			a->wait = GW_AUTH_IDLE;
			answer(s, &a->out);
			if (a->out.kind == AUTH_OUT_REPLY)
				auth_put(s);
			return true;
		case GW_AUTH_IDLE:
			break;
		}
	}
	if (ev->auth.step == 0 && s->auth_login[0]) {
		/* RFC 4954 4: the exchange's area is gone, the login
		 * stays */
		sess_verdict(s, SMTP_V_REJECT, 503, "5.5.1",
			     "Already authenticated");
		return true;
	}
	a = auth_take(s);
	if (!a) {
		/* every area is out (bounded by the session table) */
		gc->stats.areas_exhausted++;
		sess_verdict(s, SMTP_V_REJECT, 454, "4.3.0",
			     "Temporary authentication failure, try again "
			     "later");
		return true;
	}
	/* the listener policy of the session's snapshot (kept by ref) */
	a->sasl.cfg = &s->lst->sasl;
	if (ev->auth.step == 0) {
		/* a new exchange ends whatever the last one left (the
		 * engine answered a "*" itself) */
		if (a->gjob) {
			gss_job_free(a->gjob);
			a->gjob = NULL;
		}
		a->tried[0] = '\0';
		a->mech = (enum auth_mech)auth_mech_parse(
			ev->auth.mech, strlen(ev->auth.mech));
		if (auth_brute_locked(brute(gc), brute_ip(s),
				      NULL, gc->now_us)) {
			gc->stats.auth_locked++;
			auth_log(s, "locked", 454, 0);
			sess_verdict(s, SMTP_V_REJECT, 454, "4.7.0",
				     "Too many authentication failures, try "
				     "again later");
			auth_put(s);
			return true;
		}
		st = smtp_session_state(s->sm);
		r = auth_sasl_begin(
			&a->sasl, ev->auth.mech, strlen(ev->auth.mech), resp,
			resp ? strlen(resp) : 0, xprt_is_secure(&s->xp),
			st == SMTP_ST_MAIL || st == SMTP_ST_RCPT, &out);
	} else {
		r = auth_sasl_line(&a->sasl, resp ? resp : "",
				   resp ? strlen(resp) : 0, &out);
	}
	if (r < 0) {
		/* the engine and the machine disagree on the exchange: a
		 * bug of ours; end it cleanly */
		auth_sasl_reset(&a->sasl);
		sess_verdict(s, SMTP_V_REJECT, 454, "4.7.0",
			     "Temporary authentication failure");
		auth_put(s);
		return true;
	}
	return step(s, &out);
}

bool auth_mail_refused(struct gw_sess *s, const struct smtp_mail *m)
{
	const struct auth_sendermap *map = s->snap->sender_map;
	char u[72];

	if (!map || !s->auth_login[0] ||
	    auth_sendermap_allowed(map, s->auth_login,
				   m->null_sender ? "" : m->addr))
		return false;
	s->gc->stats.mail_denied_login++;
	log_line(s->gc, "event=sender_login_mismatch sid=%s client=%s user=%s",
		 s->sid, s->client, log_user(s->auth_login, u, sizeof(u)));
	sess_verdict(s, SMTP_V_REJECT, 553, "5.7.1",
		     "Sender address rejected: not owned by the "
		     "authenticated user");
	return true;
}

const char *auth_received_protocol(const struct gw_sess *s)
{
	bool tls = xprt_is_secure(&s->xp), authed = s->auth_login[0] != '\0';

	if (!s->esmtp)
		return tls ? "SMTPS" : "SMTP";
	return authed ? (tls ? "ESMTPSA" : "ESMTPA")
		      : (tls ? "ESMTPS" : "ESMTP");
}
