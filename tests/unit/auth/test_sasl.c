/*
 * test_sasl.c - auth/sasl.h and auth/base64.h: every reply of the AUTH
 * state machine (235, 454, 501 abort and bad base64, 503 in a
 * transaction and after success, 504, 534, 535, 538), PLAIN and LOGIN in
 * both the initial-response and the challenge form, PLAIN's
 * NUL-separated fields at their edges, the GSSAPI sequence driven with
 * fake GSS results, and strict base64 (padding, trailing bits,
 * alphabet, length).
 */
#include <errno.h>
#include <string.h>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "check.h"

static struct auth_sasl_config cfg = {
	.mechanisms = AUTH_MECH_PLAIN | AUTH_MECH_LOGIN | AUTH_MECH_GSSAPI,
	.allow_cleartext = false,
	.allow_authzid = false,
	.gss_realm = "EXAMPLE.COM",
};

/* base64 of n octets (may contain NULs) into a static buffer */
static const char *b64(const void *p, size_t n)
{
	static char buf[2048];

	if (auth_b64_encode(p, n, buf, sizeof(buf)) < 0)
		return "?";
	return buf;
}
#define B64S(lit) b64(lit, sizeof(lit) - 1)

static int begin(struct auth_sasl *m, const char *mech, const char *ir,
		 bool tls, bool txn, struct auth_sasl_out *o)
{
	return auth_sasl_begin(m, mech, strlen(mech), ir, ir ? strlen(ir) : 0,
			       tls, txn, o);
}

static int line(struct auth_sasl *m, const char *l, struct auth_sasl_out *o)
{
	return auth_sasl_line(m, l, strlen(l), o);
}

static bool is_reply(const struct auth_sasl_out *o, int code, const char *pfx)
{
	return o->kind == AUTH_OUT_REPLY && o->code == code &&
	       strncmp(o->reply, pfx, strlen(pfx)) == 0;
}

static void test_base64(void)
{
	uint8_t out[16];

	CHECK(auth_b64_decode("", 0, out, sizeof(out)) == 0);
	CHECK(auth_b64_decode("Zm9v", 4, out, sizeof(out)) == 3 &&
	      memcmp(out, "foo", 3) == 0);
	CHECK(auth_b64_decode("Zm8=", 4, out, sizeof(out)) == 2);
	CHECK(auth_b64_decode("Zg==", 4, out, sizeof(out)) == 1);
	CHECK(auth_b64_decode("Zh==", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm9=", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm9", 3, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm9v\n", 5, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Z===", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("====", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zg==Zm9v", 8, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm=v", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm9-", 4, out, sizeof(out)) == -EINVAL);
	CHECK(auth_b64_decode("Zm9vZm9v", 8, out, 5) == -ENOSPC);
	CHECK(auth_b64_decode("Zm9vZm9v", 8, NULL, 0) == 6);
	/* every octet value round-trips */
	uint8_t all[256], back[256];
	char enc[400];

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (size_t n = 0; n <= 256; n += 37) {
		ssize_t e = auth_b64_encode(all, n, enc, sizeof(enc));

		CHECK(e == (ssize_t)auth_b64_len(n));
		CHECK(auth_b64_decode(enc, (size_t)e, back, sizeof(back)) ==
		      (ssize_t)n);
		CHECK(memcmp(all, back, n) == 0);
	}
	CHECK(auth_b64_encode(all, 3, enc, 4) == -ENOSPC);
}

static void test_plain(void)
{
	struct auth_sasl m;
	struct auth_sasl_out o;

	/* initial response, then a good verdict */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "PLAIN", B64S("\0alice\0secret"), true, false, &o) ==
	      0);
	CHECK(o.kind == AUTH_OUT_VERIFY);
	CHECK(strcmp(o.authcid, "alice") == 0 && strcmp(o.authzid, "") == 0);
	CHECK(o.password_len == 6 && memcmp(o.password, "secret", 6) == 0);
	CHECK(m.state == AUTH_SASL_VERIFYING);
	/* busy: no new AUTH, no line */
	CHECK(begin(&m, "PLAIN", NULL, true, false, &o) == -EBUSY);
	CHECK(line(&m, "*", &o) == -EBUSY);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_OK, &o) == 0);
	CHECK(is_reply(&o, 235, "235 2.7.0 "));
	CHECK(strcmp(o.login, "alice") == 0);
	CHECK(m.password[0] == 0 && m.password_len == 0); /* wiped */
	CHECK(auth_sasl_authenticated(&m));
	/* second AUTH */
	CHECK(begin(&m, "PLAIN", NULL, true, false, &o) == 0);
	CHECK(is_reply(&o, 503, "503 5.5.1 "));
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_OK, &o) == -EBUSY);

	/* challenge form: "334 " then the message; bad password */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "plain", NULL, true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE && strcmp(o.challenge, "") == 0);
	CHECK(line(&m, B64S("alice\0alice\0pw"), &o) == 0);
	CHECK(o.kind == AUTH_OUT_VERIFY && strcmp(o.authzid, "alice") == 0);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_FAIL, &o) == 0);
	CHECK(is_reply(&o, 535, "535 5.7.8 ") && o.failure);
	CHECK(m.state == AUTH_SASL_IDLE);
	/* store down: 454 4.7.0, not counted as a guess */
	CHECK(begin(&m, "PLAIN", B64S("\0alice\0pw"), true, false, &o) == 0);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_TEMPFAIL, &o) == 0);
	CHECK(is_reply(&o, 454, "454 4.7.0 ") && !o.failure);
	/* locked out */
	CHECK(begin(&m, "PLAIN", B64S("\0alice\0pw"), true, false, &o) == 0);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_LOCKED, &o) == 0);
	CHECK(is_reply(&o, 454, "454 4.7.0 ") && o.failure);

	/* abort in the challenge form */
	CHECK(begin(&m, "PLAIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, "*", &o) == 0 && is_reply(&o, 501, "501 5.7.0 "));
	CHECK(m.state == AUTH_SASL_IDLE);
	/* bad base64 in the challenge form and as initial response */
	CHECK(begin(&m, "PLAIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, "AGFsaWNlAHB3=", &o) == 0 &&
	      is_reply(&o, 501, "501 5.5.2 "));
	CHECK(begin(&m, "PLAIN", "!!!!", true, false, &o) == 0 &&
	      is_reply(&o, 501, "501 5.5.2 "));
	/* "=" is an empty initial response: an invalid PLAIN message */
	CHECK(begin(&m, "PLAIN", "=", true, false, &o) == 0 &&
	      is_reply(&o, 535, "535 5.7.8 "));

	/* PLAIN field edge cases, each a 535 */
	static const struct {
		const char *msg;
		size_t n;
	} bad[] = {
		{"alice\0secret", 12},	    /* one NUL */
		{"\0\0secret", 8},	    /* empty authcid */
		{"\0alice\0", 7},	    /* empty password */
		{"\0alice\0se\0cret", 15},  /* a third NUL */
		{"\0ali\rce\0secret", 14},  /* control in authcid */
		{"bob\0alice\0secret", 16}, /* authzid != authcid */
		{"", 0},
		{"\0", 1},
		{"\0\0", 2},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(begin(&m, "PLAIN", b64(bad[i].msg, bad[i].n), true, false,
			    &o) == 0);
		if (!is_reply(&o, 535, "535 5.7.8 "))
			fprintf(stderr, "  bad PLAIN case %zu\n", i);
		CHECK(is_reply(&o, 535, "535 5.7.8 "));
	}
	/* field lengths: 255 octets pass, 256 fail */
	char msg[3 * 256 + 2];
	size_t n = 0;

	msg[n++] = 0;
	memset(msg + n, 'u', 255), n += 255;
	msg[n++] = 0;
	memset(msg + n, 'p', 255), n += 255;
	CHECK(begin(&m, "PLAIN", b64(msg, n), true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_VERIFY && strlen(o.authcid) == 255 &&
	      o.password_len == 255);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_FAIL, &o) == 0);
	msg[n++] = 'p';
	CHECK(begin(&m, "PLAIN", b64(msg, n), true, false, &o) == 0 &&
	      is_reply(&o, 535, "535 5.7.8 "));
	/* a password with any non-NUL octet, e.g. UTF-8 and spaces */
	CHECK(begin(&m, "PLAIN", B64S("\0alice\0p\xc3\xa4 ss\x01"), true, false,
		    &o) == 0);
	CHECK(o.kind == AUTH_OUT_VERIFY && o.password_len == 7);
	auth_sasl_reset(&m);
	CHECK(m.state == AUTH_SASL_IDLE && m.password_len == 0);

	/* proxy authorization when configured: logs in as the authzid */
	struct auth_sasl_config pc = cfg;

	pc.allow_authzid = true;
	auth_sasl_init(&m, &pc);
	CHECK(begin(&m, "PLAIN", B64S("bob\0alice\0secret"), true, false, &o) ==
	      0);
	CHECK(o.kind == AUTH_OUT_VERIFY && strcmp(o.authcid, "alice") == 0);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_OK, &o) == 0);
	CHECK(o.code == 235 && strcmp(o.login, "bob") == 0);
}

static void test_login(void)
{
	struct auth_sasl m;
	struct auth_sasl_out o;

	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, B64S("Username:")) == 0);
	CHECK(line(&m, B64S("alice"), &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, B64S("Password:")) == 0);
	CHECK(line(&m, B64S("secret"), &o) == 0);
	CHECK(o.kind == AUTH_OUT_VERIFY && strcmp(o.authcid, "alice") == 0 &&
	      o.password_len == 6);
	CHECK(auth_sasl_verified(&m, AUTH_RESULT_OK, &o) == 0);
	CHECK(o.code == 235 && strcmp(o.login, "alice") == 0);

	/* initial response is the user name */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "LOGIN", B64S("alice"), true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, B64S("Password:")) == 0);
	CHECK(line(&m, "*", &o) == 0 && is_reply(&o, 501, "501 5.7.0 "));
	/* abort at the user name; bad base64 at the password */
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, "*", &o) == 0 && is_reply(&o, 501, "501 5.7.0 "));
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, B64S("alice"), &o) == 0);
	CHECK(line(&m, "c2VjcmV0=", &o) == 0 &&
	      is_reply(&o, 501, "501 5.5.2 "));
	/* empty user name or password, NUL in either: 535 */
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, "", &o) == 0 && is_reply(&o, 535, "535 5.7.8 "));
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, B64S("alice"), &o) == 0);
	CHECK(line(&m, "", &o) == 0 && is_reply(&o, 535, "535 5.7.8 "));
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(line(&m, B64S("al\0ice"), &o) == 0 &&
	      is_reply(&o, 535, "535 5.7.8 "));
	CHECK(begin(&m, "LOGIN", B64S("alice"), true, false, &o) == 0);
	CHECK(line(&m, B64S("se\0cret"), &o) == 0 &&
	      is_reply(&o, 535, "535 5.7.8 "));
	/* a line when none is expected */
	CHECK(line(&m, B64S("x"), &o) == -EBUSY);
	/* a new AUTH during a challenge starts over */
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0);
	CHECK(begin(&m, "PLAIN", B64S("\0a\0b"), true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_VERIFY);
}

static void test_policy(void)
{
	struct auth_sasl m;
	struct auth_sasl_out o;
	struct auth_sasl_config only_plain = cfg;

	auth_sasl_init(&m, &cfg);
	/* 503 inside a transaction */
	CHECK(begin(&m, "PLAIN", NULL, true, true, &o) == 0 &&
	      is_reply(&o, 503, "503 5.5.1 "));
	/* 504 unknown mechanism, 501 no mechanism */
	CHECK(begin(&m, "CRAM-MD5", NULL, true, false, &o) == 0 &&
	      is_reply(&o, 504, "504 5.5.4 "));
	CHECK(begin(&m, "", NULL, true, false, &o) == 0 &&
	      is_reply(&o, 501, "501 5.5.4 "));
	/* 538 before TLS for PLAIN and LOGIN; GSSAPI needs none */
	CHECK(begin(&m, "PLAIN", B64S("\0a\0b"), false, false, &o) == 0 &&
	      is_reply(&o, 538, "538 5.7.11 "));
	CHECK(begin(&m, "LOGIN", NULL, false, false, &o) == 0 &&
	      is_reply(&o, 538, "538 5.7.11 "));
	CHECK(begin(&m, "GSSAPI", NULL, false, false, &o) == 0 &&
	      o.kind == AUTH_OUT_CHALLENGE);
	/* the listener allows cleartext */
	struct auth_sasl_config clear = cfg;

	clear.allow_cleartext = true;
	auth_sasl_init(&m, &clear);
	CHECK(begin(&m, "PLAIN", B64S("\0a\0b"), false, false, &o) == 0 &&
	      o.kind == AUTH_OUT_VERIFY);
	/* 534: a mechanism we know that the listener does not accept */
	only_plain.mechanisms = AUTH_MECH_PLAIN;
	auth_sasl_init(&m, &only_plain);
	CHECK(begin(&m, "LOGIN", NULL, true, false, &o) == 0 &&
	      is_reply(&o, 534, "534 5.7.9 "));
	CHECK(begin(&m, "GSSAPI", NULL, true, false, &o) == 0 &&
	      is_reply(&o, 534, "534 5.7.9 "));
	CHECK(auth_mech_parse("gssapi", 6) == AUTH_MECH_GSSAPI);
	CHECK(auth_mech_parse("PLAINX", 6) == 0);
	CHECK(strcmp(auth_mech_name(AUTH_MECH_LOGIN), "LOGIN") == 0);
}

/* A fake ACCEPT result: complete or not, with a token and the offer. */
static void gss_accept_result(struct auth_gss_result *r, enum auth_result res,
			      bool complete, const char *token)
{
	memset(r, 0, sizeof(*r));
	r->result = res;
	r->complete = complete;
	r->token_b64 = token;
	r->offer_b64 = complete ? "b2ZmZXI=" : NULL;
}

/* A fake UNWRAP result. */
static void gss_unwrap_result(struct auth_gss_result *r, const char *principal,
			      const char *authzid)
{
	memset(r, 0, sizeof(*r));
	r->result = AUTH_RESULT_OK;
	r->principal = principal;
	r->authzid = authzid;
}

static void test_gssapi(void)
{
	struct auth_sasl m;
	struct auth_sasl_out o;
	struct auth_gss_result r;

	/* no initial response: empty challenge, then the token */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "GSSAPI", NULL, true, false, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE && o.challenge[0] == 0);
	CHECK(line(&m, "YIIB", &o) == 0);
	CHECK(o.kind == AUTH_OUT_GSS && o.gss_op == AUTH_GSS_ACCEPT &&
	      o.gss_in_len == 4);
	CHECK(line(&m, "YIIB", &o) == -EBUSY);
	/* context continues */
	gss_accept_result(&r, AUTH_RESULT_OK, false, "c2VydmVy");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, "c2VydmVy") == 0);
	CHECK(line(&m, "Y2xpZW50", &o) == 0 && o.kind == AUTH_OUT_GSS);
	/* complete with a last token: token, empty answer, offer */
	gss_accept_result(&r, AUTH_RESULT_OK, true, "bGFzdA==");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, "bGFzdA==") == 0);
	CHECK(line(&m, "", &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, "b2ZmZXI=") == 0);
	CHECK(line(&m, "Y2hvaWNl", &o) == 0 && o.kind == AUTH_OUT_GSS &&
	      o.gss_op == AUTH_GSS_UNWRAP);
	gss_unwrap_result(&r, "alice@EXAMPLE.COM", "");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(o.code == 235 && strcmp(o.login, "alice") == 0);

	/* initial response; complete without a last token; a foreign
	 * realm keeps the whole principal; authzid = login is fine */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "GSSAPI", "YIIB", true, false, &o) == 0 &&
	      o.kind == AUTH_OUT_GSS);
	gss_accept_result(&r, AUTH_RESULT_OK, true, "");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(o.kind == AUTH_OUT_CHALLENGE &&
	      strcmp(o.challenge, "b2ZmZXI=") == 0);
	CHECK(line(&m, "Y2hvaWNl", &o) == 0 && o.kind == AUTH_OUT_GSS);
	gss_unwrap_result(&r, "bob@OTHER.ORG", "bob@OTHER.ORG");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(o.code == 235 && strcmp(o.login, "bob@OTHER.ORG") == 0);

	/* authzid of someone else: 535 (not configured) */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "GSSAPI", "YIIB", true, false, &o) == 0);
	gss_accept_result(&r, AUTH_RESULT_OK, true, "");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(line(&m, "Y2hvaWNl", &o) == 0);
	gss_unwrap_result(&r, "alice@EXAMPLE.COM", "root");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(is_reply(&o, 535, "535 5.7.8 ") && o.failure);

	/* failures: GSS refuses (535), keytab unreadable (454), bad
	 * base64 (501), non-empty answer to the last token (535), abort */
	auth_sasl_init(&m, &cfg);
	CHECK(begin(&m, "GSSAPI", "YIIB", true, false, &o) == 0);
	gss_accept_result(&r, AUTH_RESULT_FAIL, false, "");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0 &&
	      is_reply(&o, 535, "535 5.7.8 "));
	CHECK(begin(&m, "GSSAPI", "YIIB", true, false, &o) == 0);
	r.result = AUTH_RESULT_TEMPFAIL;
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0 &&
	      is_reply(&o, 454, "454 4.7.0 "));
	CHECK(begin(&m, "GSSAPI", "YII", true, false, &o) == 0 &&
	      is_reply(&o, 501, "501 5.5.2 "));
	CHECK(begin(&m, "GSSAPI", "YIIB", true, false, &o) == 0);
	gss_accept_result(&r, AUTH_RESULT_OK, true, "bGFzdA==");
	CHECK(auth_sasl_gss_done(&m, &r, &o) == 0);
	CHECK(line(&m, "eA==", &o) == 0 && is_reply(&o, 535, "535 5.7.8 "));
	CHECK(begin(&m, "GSSAPI", NULL, true, false, &o) == 0);
	CHECK(line(&m, "*", &o) == 0 && is_reply(&o, 501, "501 5.7.0 "));
	CHECK(auth_sasl_gss_done(&m, &r, &o) == -EBUSY);
}

int main(void)
{
	test_base64();
	test_plain();
	test_login();
	test_policy();
	test_gssapi();
	return check_summary("test_sasl");
}
