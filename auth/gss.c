/*
 * gss.c - the GSSAPI mechanism's server steps (RFC 4752) with MIT
 * Kerberos' GSS-API (libgssapi-krb5): accept the client's context
 * tokens against the keytab's smtp/ service key, then wrap the
 * security-layer offer and unwrap the client's choice and authzid.
 * We offer only "no security layer" (TLS protects the session).
 *
 * Threads: auth_gss_job_work() runs on a worker thread (reads the
 * keytab, may take milliseconds); one job is on one thread at a time,
 * so its context handle is never shared. Nothing here is called on a
 * poll-mode core except init/step/release, which only copy and free.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include "auth/base64.h"
#include "auth/jobs.h"

/* RFC 4752 3.1: security layer bit masks. */
#define LAYER_NONE 0x01

void auth_gss_job_init(struct auth_gss_job *j, const struct auth_gss_config *c,
		       void (*done)(struct worker_job *),
		       void (*drop)(struct worker_job *), void *owner)
{
	memset(&j->wj, 0, sizeof(j->wj));
	j->wj.work = auth_gss_job_work;
	j->wj.done = done;
	j->wj.drop = drop;
	j->owner = owner;
	j->cfg = *c;
	j->ctx = GSS_C_NO_CONTEXT;
	j->cred = GSS_C_NO_CREDENTIAL;
	j->in[0] = 0;
	j->in_len = 0;
	memset(&j->res, 0, sizeof(j->res));
}

int auth_gss_job_step(struct auth_gss_job *j, enum auth_gss_op op,
		      const char *b64, size_t n)
{
	if (n > AUTH_GSS_MAX_B64)
		return -E2BIG;
	j->wj.cancelled = false;
	j->wj.ran = false;
	j->op = op;
	memcpy(j->in, b64, n);
	j->in[n] = 0;
	j->in_len = n;
	return 0;
}

void auth_gss_job_release(struct auth_gss_job *j)
{
	OM_uint32 minor;
	gss_ctx_id_t ctx = j->ctx;
	gss_cred_id_t cred = j->cred;

	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	if (cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&minor, &cred);
	j->ctx = GSS_C_NO_CONTEXT;
	j->cred = GSS_C_NO_CREDENTIAL;
}

/* GSS-API's own words for major/minor, for the log. */
static void describe(struct auth_gss_job *j, const char *what, OM_uint32 major,
		     OM_uint32 minor)
{
	OM_uint32 m2, ctx = 0;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
	size_t o = (size_t)snprintf(j->error, sizeof(j->error), "%s: ", what);

	if (o >= sizeof(j->error))
		return;
	gss_display_status(&m2, major ? major : minor,
			   major ? GSS_C_GSS_CODE : GSS_C_MECH_CODE,
			   GSS_C_NO_OID, &ctx, &b);
	snprintf(j->error + o, sizeof(j->error) - o, "%.*s", (int)b.length,
		 (const char *)b.value);
	gss_release_buffer(&m2, &b);
	if (major && minor) {
		o = strlen(j->error);
		ctx = 0;
		gss_display_status(&m2, minor, GSS_C_MECH_CODE, GSS_C_NO_OID,
				   &ctx, &b);
		snprintf(j->error + o, sizeof(j->error) - o, " (%.*s)",
			 (int)b.length, (const char *)b.value);
		gss_release_buffer(&m2, &b);
	}
}

static int acquire(struct auth_gss_job *j)
{
	OM_uint32 major, minor;
	gss_name_t name = GSS_C_NO_NAME;
	gss_key_value_element_desc el = {"keytab", j->cfg.keytab};
	gss_key_value_set_desc store = {1, &el};
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;

	if (j->cfg.service[0]) {
		gss_buffer_desc nb = {strlen(j->cfg.service), j->cfg.service};

		major = gss_import_name(&minor, &nb,
					(gss_OID)GSS_KRB5_NT_PRINCIPAL_NAME,
					&name);
		if (GSS_ERROR(major)) {
			describe(j, "import service name", major, minor);
			return -1;
		}
	}
	major = gss_acquire_cred_from(
		&minor, name, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT,
		j->cfg.keytab[0] ? &store : NULL, &cred, NULL, NULL);
	if (name != GSS_C_NO_NAME)
		gss_release_name(&minor, &name);
	if (GSS_ERROR(major)) {
		describe(j, "acquire acceptor credentials", major, minor);
		return -1;
	}
	j->cred = cred;
	return 0;
}

static void encode_out(struct auth_gss_job *j, const gss_buffer_desc *b,
		       char *dst, size_t cap, bool *ok)
{
	if (auth_b64_encode(b->value, b->length, dst, cap) < 0) {
		snprintf(j->error, sizeof(j->error), "token too long");
		*ok = false;
	}
}

static void do_accept(struct auth_gss_job *j, gss_buffer_desc *in)
{
	OM_uint32 major, minor, m2, flags = 0;
	gss_buffer_desc out = GSS_C_EMPTY_BUFFER;
	gss_name_t src = GSS_C_NO_NAME;
	gss_ctx_id_t ctx = j->ctx;
	bool ok = true;

	if (j->cred == GSS_C_NO_CREDENTIAL && acquire(j) < 0) {
		/* A missing or unreadable keytab is ours, not the
		 * client's: a temporary failure. */
		j->res.result = AUTH_RESULT_TEMPFAIL;
		return;
	}
	major = gss_accept_sec_context(&minor, &ctx, j->cred, in,
				       GSS_C_NO_CHANNEL_BINDINGS, &src, NULL,
				       &out, &flags, NULL, NULL);
	j->ctx = ctx;
	if (GSS_ERROR(major)) {
		describe(j, "accept", major, minor);
		gss_release_buffer(&m2, &out);
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	encode_out(j, &out, j->token_b64, sizeof(j->token_b64), &ok);
	gss_release_buffer(&m2, &out);
	j->res.token_b64 = j->token_b64;
	if (major & GSS_S_CONTINUE_NEEDED) {
		j->res.result = ok ? AUTH_RESULT_OK : AUTH_RESULT_FAIL;
		return;
	}
	/* Complete: who is it, then RFC 4752 3.1's offer: layers
	 * supported (none but "no layer"), max size 0. */
	gss_buffer_desc disp = GSS_C_EMPTY_BUFFER;

	major = gss_display_name(&minor, src, &disp, NULL);
	gss_release_name(&m2, &src);
	if (GSS_ERROR(major) || disp.length >= sizeof(j->principal)) {
		describe(j, "display name", major, minor);
		gss_release_buffer(&m2, &disp);
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	memcpy(j->principal, disp.value, disp.length);
	j->principal[disp.length] = 0;
	gss_release_buffer(&m2, &disp);

	unsigned char offer[4] = {LAYER_NONE, 0, 0, 0};
	gss_buffer_desc ob = {sizeof(offer), offer}, wrapped;

	major = gss_wrap(&minor, j->ctx, 0, GSS_C_QOP_DEFAULT, &ob, NULL,
			 &wrapped);
	if (GSS_ERROR(major)) {
		describe(j, "wrap", major, minor);
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	encode_out(j, &wrapped, j->offer_b64, sizeof(j->offer_b64), &ok);
	gss_release_buffer(&m2, &wrapped);
	j->res.complete = true;
	j->res.offer_b64 = j->offer_b64;
	j->res.result = ok ? AUTH_RESULT_OK : AUTH_RESULT_FAIL;
}

static void do_unwrap(struct auth_gss_job *j, gss_buffer_desc *in)
{
	OM_uint32 major, minor, m2;
	gss_buffer_desc out = GSS_C_EMPTY_BUFFER;

	major = gss_unwrap(&minor, j->ctx, in, &out, NULL, NULL);
	if (GSS_ERROR(major)) {
		describe(j, "unwrap", major, minor);
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	const unsigned char *p = out.value;

	/* The client must pick the one layer we offered; authzid (may
	 * be empty) follows the 4 octets. */
	if (out.length < 4 || p[0] != LAYER_NONE ||
	    out.length - 4 >= sizeof(j->authzid) ||
	    memchr(p + 4, 0, out.length - 4)) {
		snprintf(j->error, sizeof(j->error),
			 "bad security layer answer (%zu octets)", out.length);
		gss_release_buffer(&m2, &out);
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	memcpy(j->authzid, p + 4, out.length - 4);
	j->authzid[out.length - 4] = 0;
	gss_release_buffer(&m2, &out);
	j->res.principal = j->principal;
	j->res.authzid = j->authzid;
	j->res.result = AUTH_RESULT_OK;
}

void auth_gss_job_work(struct worker_job *wj)
{
	struct auth_gss_job *j = (struct auth_gss_job *)wj;
	unsigned char bin[AUTH_GSS_MAX_B64 / 4 * 3];
	ssize_t n;

	memset(&j->res, 0, sizeof(j->res));
	j->error[0] = 0;
	j->token_b64[0] = 0;
	n = auth_b64_decode(j->in, j->in_len, bin, sizeof(bin));
	if (n < 0) {
		snprintf(j->error, sizeof(j->error), "bad base64");
		j->res.result = AUTH_RESULT_FAIL;
		return;
	}
	gss_buffer_desc in = {(size_t)n, bin};

	if (j->op == AUTH_GSS_ACCEPT)
		do_accept(j, &in);
	else if (j->ctx == GSS_C_NO_CONTEXT)
		j->res.result = AUTH_RESULT_FAIL;
	else
		do_unwrap(j, &in);
}
