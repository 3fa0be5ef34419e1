/*
 * test_gss_kdc.c - GSSAPI (RFC 4752) end to end against a real MIT KDC:
 * the client side through MIT GSS-API (the ticket cache that kinit
 * filled), the server side through auth/sasl.h and auth/gss.c exactly as
 * the gateway will run them (the job's work() called as the worker
 * would, its result fed back with auth_sasl_gss_done()). Started by
 * gss_kdc.sh, which runs the KDC in a private network namespace.
 *
 * usage: test_gss_kdc CASE KEYTAB SERVICE TARGET
 *   CASE good:    expect 235 and login "alice"
 *   CASE fail:    expect 535 (wrong key, other service, expired ticket)
 *   CASE temp:    expect 454 (no key for SERVICE in KEYTAB)
 *   CASE expired: make the first token, sleep 5 s past the ticket's
 *                 end, then expect 535
 * KEYTAB/SERVICE configure the server; TARGET is the principal the
 * client asks a ticket for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>

#include "auth/base64.h"
#include "auth/jobs.h"
#include "auth/sasl.h"

static struct auth_gss_job job;
static char b64[AUTH_GSS_MAX_B64 + 1];

static const char *enc(const gss_buffer_desc *b)
{
	if (auth_b64_encode(b->value, b->length, b64, sizeof(b64)) < 0)
		return NULL;
	return b64;
}

static void die(const char *what, OM_uint32 major, OM_uint32 minor)
{
	OM_uint32 m2, ctx = 0;
	gss_buffer_desc b;

	gss_display_status(&m2, major ? major : minor,
			   major ? GSS_C_GSS_CODE : GSS_C_MECH_CODE,
			   GSS_C_NO_OID, &ctx, &b);
	fprintf(stderr, "client %s: %.*s\n", what, (int)b.length,
		(char *)b.value);
	exit(2);
}

/* Runs the step the machine asked for as a worker would. */
static void run_job(struct auth_sasl *m, struct auth_sasl_out *o)
{
	if (auth_gss_job_step(&job, o->gss_op, o->gss_in, o->gss_in_len)) {
		fprintf(stderr, "token too long\n");
		exit(2);
	}
	job.wj.work(&job.wj);
	if (job.error[0])
		printf("server GSS: %s\n", job.error);
	auth_sasl_gss_done(m, &job.res, o);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: test_gss_kdc CASE KEYTAB SERVICE "
				"TARGET\n");
		return 2;
	}
	const char *kase = argv[1];
	struct auth_sasl_config cfg = {.mechanisms = AUTH_MECH_GSSAPI,
				       .gss_realm = "MXG.TEST"};
	struct auth_gss_config gc;
	struct auth_sasl m;
	struct auth_sasl_out o;
	OM_uint32 major, minor, m2;
	gss_ctx_id_t cctx = GSS_C_NO_CONTEXT;
	gss_name_t target;
	gss_buffer_desc tn = {strlen(argv[4]), argv[4]};
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER;

	memset(&gc, 0, sizeof(gc));
	snprintf(gc.keytab, sizeof(gc.keytab), "%s", argv[2]);
	snprintf(gc.service, sizeof(gc.service), "%s", argv[3]);
	auth_gss_job_init(&job, &gc, NULL, NULL, NULL);
	auth_sasl_init(&m, &cfg);

	major = gss_import_name(&minor, &tn,
				(gss_OID)GSS_KRB5_NT_PRINCIPAL_NAME, &target);
	if (GSS_ERROR(major))
		die("import_name", major, minor);
	major = gss_init_sec_context(
		&minor, GSS_C_NO_CREDENTIAL, &cctx, target, GSS_C_NO_OID,
		GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG, 0,
		GSS_C_NO_CHANNEL_BINDINGS, &in, NULL, &out, NULL, NULL);
	if (GSS_ERROR(major))
		die("init_sec_context", major, minor);
	if (strcmp(kase, "expired") == 0) {
		printf("token made; waiting for the ticket to expire\n");
		fflush(stdout);
		sleep(8);
	}
	/* AUTH GSSAPI <initial response> */
	const char *ir = enc(&out);

	auth_sasl_begin(&m, "GSSAPI", 6, ir, strlen(ir), true, false, &o);
	gss_release_buffer(&m2, &out);
	for (int round = 0; round < 10 && o.kind != AUTH_OUT_REPLY; round++) {
		if (o.kind == AUTH_OUT_GSS) {
			run_job(&m, &o);
			continue;
		}
		/* a 334 challenge: the client's next answer */
		uint8_t tok[AUTH_GSS_MAX_B64];
		ssize_t n = auth_b64_decode(o.challenge, strlen(o.challenge),
					    tok, sizeof(tok));
		gss_buffer_desc ib = {(size_t)n, tok};

		printf("334 (%zd octets, state %d)\n", n, m.state);
		if (m.state == AUTH_SASL_GSS_WAIT_LAYER) {
			/* RFC 4752 3.1: unwrap the offer, choose "no
			 * layer", no authzid */
			major = gss_unwrap(&minor, cctx, &ib, &out, NULL, NULL);
			if (GSS_ERROR(major))
				die("unwrap offer", major, minor);
			unsigned char *p = out.value;

			if (out.length != 4 || !(p[0] & 1)) {
				fprintf(stderr, "bad offer\n");
				return 2;
			}
			gss_release_buffer(&m2, &out);
			unsigned char ans[4] = {1, 0, 0, 0};
			gss_buffer_desc ab = {4, ans};

			major = gss_wrap(&minor, cctx, 0, GSS_C_QOP_DEFAULT,
					 &ab, NULL, &out);
			if (GSS_ERROR(major))
				die("wrap answer", major, minor);
		} else {
			major = gss_init_sec_context(
				&minor, GSS_C_NO_CREDENTIAL, &cctx, target,
				GSS_C_NO_OID,
				GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG, 0,
				GSS_C_NO_CHANNEL_BINDINGS, &ib, NULL, &out,
				NULL, NULL);
			if (GSS_ERROR(major))
				die("init_sec_context (2)", major, minor);
		}
		const char *line = enc(&out);

		auth_sasl_line(&m, line, strlen(line), &o);
		gss_release_buffer(&m2, &out);
	}
	auth_gss_job_release(&job);
	gss_delete_sec_context(&m2, &cctx, GSS_C_NO_BUFFER);
	gss_release_name(&m2, &target);
	printf("%s%s%s\n", o.kind == AUTH_OUT_REPLY ? o.reply : "(no reply)",
	       o.login && o.login[0] ? " login=" : "", o.login ? o.login : "");
	if (o.kind != AUTH_OUT_REPLY)
		return 1;
	if (strcmp(kase, "good") == 0)
		return o.code == 235 && strcmp(o.login, "alice") == 0 ? 0 : 1;
	if (strcmp(kase, "temp") == 0)
		return o.code == 454 ? 0 : 1;
	return o.code == 535 ? 0 : 1;
}
