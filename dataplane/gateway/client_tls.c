/*
 * client_tls.c - TLS on a client connection, the gateway's side (issue
 * 13; DESIGN 7): picks the TLS transport for a listener with TLS, answers
 * its callbacks (handshake done: the SMTP engine resets, RFC 3207 4.2;
 * failed: the session closes), counts, and words what the log line and
 * the Received: header say about the session's TLS.
 *
 * Owner: one dataplane lcore. The callbacks run from workers_poll (a
 * handshake step came back) or from inside the pump (a record-layer end):
 * they note state and dirty the session, they never pump it.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/client_tls.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/gateway/core.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/xprt_tls.h"
#include "dataplane/relay/relay_client.h"

static struct gw_sess *sess_of(struct xprt *x)
{
	return (struct gw_sess *)((char *)x - offsetof(struct gw_sess, xp));
}

/* The transport's counters live in the core's stats (gateway.h). */
static struct xprt_tls_counters *counters_of(struct gw_core *gc)
{
	return &gc->tls_counters;
}

static void on_done(struct xprt *x, bool ok)
{
	struct gw_sess *s = sess_of(x);
	struct gw_core *gc = s->gc;
	struct tls_session_info in;

	if (ok && xprt_tls_info(x, &in) == 0) {
		gc->stats.tls_handshakes++;
		if (strcmp(in.version, "TLSv1.3") == 0)
			gc->stats.tls_tlsv1_3++;
		else if (strcmp(in.version, "TLSv1.2") == 0)
			gc->stats.tls_tlsv1_2++;
		if (in.resumed)
			gc->stats.tls_resumed++;
		s->tls_up = true;
		snprintf(s->tls_version, sizeof(s->tls_version), "%s",
			 in.version);
		snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s",
			 in.cipher);
		s->tls_bits = (uint16_t)in.cipher_bits;
		s->tls_resumed = in.resumed;
		snprintf(s->tls_sni, sizeof(s->tls_sni), "%s",
			 in.sni ? in.sni : "");
		s->tls_peer_cert = in.peer_cert;
		s->tls_peer_verified = in.peer_cert && in.peer_verified;
		/* Partner relaying (Postfix's permit_tls_clientcerts): only
		 * a certificate that verified against tls_ca_file */
		s->tls_partner = ctl_tls_partner_match(
			&s->lst->cl->tls, s->tls_peer_verified, in.peer_sha256,
			in.peer_subject);
		if (in.peer_cert)
			gc->stats.tls_client_certs++;
		if (s->tls_partner)
			gc->stats.tls_partners++;
		/* RFC 3207 4.2: the engine forgets EHLO and everything
		 * else learnt before TLS (STARTTLS; an implicit session
		 * never left its greeting) */
		if (smtp_session_state(s->sm) == SMTP_ST_TLS)
			(void)smtp_session_tls_done(s->sm, true);
	} else {
		enum tls_fail f = xprt_tls_fail_reason(x);

		gc->stats.tls_handshakes_failed++;
		if (f == TLS_FAIL_PROTOCOL)
			gc->stats.tls_fail_protocol++;
		else if (f == TLS_FAIL_VERSION)
			gc->stats.tls_fail_version++;
		else if (f == TLS_FAIL_PEER_CERT)
			gc->stats.tls_fail_peer_cert++;
		else
			gc->stats.tls_fail_other++;
		s->tls_failed = f == TLS_FAIL_NONE ? TLS_FAIL_INTERNAL : f;
		if (smtp_session_state(s->sm) == SMTP_ST_TLS)
			(void)smtp_session_tls_done(s->sm, false);
		/* the alert is queued; nothing more is said in clear */
		if (!s->closing) {
			s->closing = true;
			xprt_shutdown(&s->xp);
		}
	}
	core_dirty_session(s);
}

static void on_wake(struct xprt *x)
{
	core_dirty_session(sess_of(x));
}

static void on_eof(struct xprt *x)
{
	struct gw_sess *s = sess_of(x);

	s->peer_eof = true;
	core_dirty_session(s);
}

int client_tls_attach(struct gw_sess *s)
{
	const struct mxg_snapshot_listener *l = s->lst;
	struct gw_core *gc = s->gc;
	struct xprt_tls_params p = {
		.ctx = l->tls,
		.pool = gc->gw->workers,
		.core = gc->core,
		.implicit = l->cl->tls.mode == CTL_TLS_IMPLICIT,
		.counters = counters_of(gc),
		.done = on_done,
		.wake = on_wake,
		.eof = on_eof,
	};

	if (!l->tls || l->cl->tls.mode == CTL_TLS_OFF)
		return 0;
	if (!p.pool)
		return -ENOTSUP; /* no handshakes on the cores, ever */
	return xprt_tls_attach(&s->xp, &p);
}

void client_tls_sync_stats(struct gw_core *gc)
{
	const struct xprt_tls_counters *c = counters_of(gc);

	gc->stats.tls_jobs = c->tls_jobs;
	gc->stats.tls_jobs_refused = c->tls_jobs_refused;
	gc->stats.tls_jobs_abandoned = c->tls_jobs_abandoned;
	gc->stats.tls_record_errors = c->tls_record_errors;
	gc->stats.tls_live = c->tls_live;
}

/* Postfix's words for a client certificate (smtpd.c): ' (Client CN "x",
 * Issuer "y" (verified OK))' or '(not verified)'; "" without one. The
 * names were made printable when the handshake completed (tls/). */
static int peer_comment(const struct gw_sess *s, char *buf, size_t len)
{
	struct tls_session_info in;

	if (len)
		buf[0] = '\0';
	if (!s->tls_peer_cert || xprt_tls_info(&s->xp, &in) < 0 ||
	    !in.peer_cert)
		return 0;
	return snprintf(buf, len, " (Client CN \"%s\", Issuer \"%s\" (%s))",
			in.peer_cn, in.peer_issuer_cn,
			in.peer_verified ? "verified OK" : "not verified");
}

int client_tls_received_comment(const struct gw_sess *s, char *buf,
				size_t len)
{
	char peer[192];

	/* Postfix's wording (smtpd.c): "(using TLSv1.3 with cipher
	 * TLS_AES_256_GCM_SHA384 (256/256 bits))", then the client
	 * certificate's names when one was presented */
	if (!s->tls_up) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	peer_comment(s, peer, sizeof(peer));
	return snprintf(buf, len, "(using %s with cipher %s (%u/%u bits))%s",
			s->tls_version, s->tls_cipher, s->tls_bits,
			s->tls_bits, peer);
}

int client_tls_log_fields(const struct gw_sess *s, char *buf, size_t len)
{
	struct tls_session_info in;

	if (s->tls_up && s->tls_peer_cert && xprt_tls_info(&s->xp, &in) == 0 &&
	    in.peer_cert)
		return snprintf(buf, len,
				" tls=%s cipher=%s bits=%u sni=%s resumed=%s "
				"client_cert=%s client_subject=\"%s\" "
				"client_sha256=%s partner=%s",
				s->tls_version, s->tls_cipher, s->tls_bits,
				s->tls_sni[0] ? s->tls_sni : "-",
				s->tls_resumed ? "yes" : "no",
				in.peer_verified ? "verified" : "unverified",
				in.peer_subject, in.peer_sha256,
				s->tls_partner ? "yes" : "no");
	if (s->tls_up)
		return snprintf(buf, len,
				" tls=%s cipher=%s bits=%u sni=%s resumed=%s",
				s->tls_version, s->tls_cipher, s->tls_bits,
				s->tls_sni[0] ? s->tls_sni : "-",
				s->tls_resumed ? "yes" : "no");
	if (s->tls_failed != TLS_FAIL_NONE)
		return snprintf(buf, len, " tls=failed tls_reason=%s",
				tls_fail_name(s->tls_failed));
	if (len)
		buf[0] = '\0';
	return 0;
}

bool client_tls_proxy_info(const struct gw_sess *s,
			   struct tls_session_info *in,
			   struct relay_proxy_tls *t)
{
	memset(t, 0, sizeof(*t));
	if (!s->tls_up || xprt_tls_info(&s->xp, in) < 0)
		return false;
	t->version = s->tls_version;
	t->cipher = s->tls_cipher;
	t->sni = s->tls_sni[0] ? s->tls_sni : NULL;
	/* proxy-protocol.txt 2.2.5: CERT_CONN when presented over this
	 * connection, CERT_SESS over its TLS session (a resumed one
	 * carries the certificate of the session's full handshake) */
	t->cert_sess = in->peer_cert;
	t->cert_conn = in->peer_cert && !in->resumed;
	t->verified = in->peer_cert && in->peer_verified;
	t->cn = t->verified && in->peer_cn[0] ? in->peer_cn : NULL;
	return true;
}
