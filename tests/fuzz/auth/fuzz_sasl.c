/*
 * fuzz_sasl.c - libFuzzer harness for the SASL decoder (auth/sasl.c,
 * auth/base64.c): strict base64, PLAIN's NUL-separated fields, LOGIN's
 * steps and the GSSAPI sequence, driven as a session would. Input: one
 * control octet (mechanism, TLS, transaction, verdicts), then lines
 * separated by '\n': the first is the AUTH initial response ("-" for
 * none), each next one a client line. Requests are answered from the
 * control octet. Checks: every reply has a code the RFC allows, the
 * machine never asks for a line it cannot take, a 235 always names a
 * login, passwords handed out are at most 255 octets and NUL-free, and
 * base64 round-trips.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/base64.h"
#include "auth/sasl.h"

static const char *const mech_names[] = {"PLAIN", "LOGIN",    "GSSAPI",
					 "login", "CRAM-MD5", ""};

static void check_out(const struct auth_sasl *m, const struct auth_sasl_out *o)
{
	if (o->kind == AUTH_OUT_REPLY) {
		static const int ok[] = {235, 454, 501, 503,
					 504, 534, 535, 538};
		int found = 0;

		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			found |= o->code == ok[i];
		assert(found);
		assert(o->reply && strlen(o->reply) > 4);
		if (o->code == 235)
			assert(o->login && o->login[0] &&
			       auth_sasl_authenticated(m));
	} else if (o->kind == AUTH_OUT_VERIFY) {
		assert(o->password_len >= 1 && o->password_len <= 255);
		assert(memchr(o->password, 0, o->password_len) == NULL);
		assert(o->authcid[0] && strlen(o->authcid) <= 255);
	} else if (o->kind == AUTH_OUT_CHALLENGE) {
		assert(auth_b64_decode(o->challenge, strlen(o->challenge), NULL,
				       0) >= 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	const char *p = (const char *)data + 1,
		   *end = (const char *)data + size;

	/* base64 round trip on the whole input */
	{
		uint8_t *dec = malloc(size);
		ssize_t n = auth_b64_decode(p, (size_t)(end - p), dec, size);

		if (n >= 0) {
			char *enc = malloc(size + 4);

			assert(auth_b64_encode(dec, (size_t)n, enc, size + 4) ==
			       end - p);
			assert(memcmp(enc, p, (size_t)(end - p)) == 0);
			free(enc);
		}
		free(dec);
	}

	struct auth_sasl_config cfg = {
		.mechanisms = AUTH_MECH_PLAIN | AUTH_MECH_LOGIN |
			      (ctl & 0x80 ? AUTH_MECH_GSSAPI : 0),
		.allow_cleartext = ctl & 0x40,
		.allow_authzid = ctl & 0x20,
		.gss_realm = "EXAMPLE.COM",
	};
	struct auth_sasl m;
	struct auth_sasl_out o;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *le = nl ? nl : end;
	char *ir = NULL;

	auth_sasl_init(&m, &cfg);
	if (!(le - p == 1 && p[0] == '-')) {
		ir = malloc((size_t)(le - p) + 1);
		memcpy(ir, p, (size_t)(le - p));
	}
	const char *mech = mech_names[(ctl & 7) % 6];

	auth_sasl_begin(&m, mech, strlen(mech), ir, ir ? (size_t)(le - p) : 0,
			ctl & 8, ctl & 0x10 && (ctl & 7) == 5, &o);
	free(ir);
	p = nl ? nl + 1 : end;
	for (int round = 0; round < 64; round++) {
		check_out(&m, &o);
		if (o.kind == AUTH_OUT_VERIFY) {
			assert(auth_sasl_line(&m, "x", 1, &o) == -EBUSY);
			auth_sasl_verified(&m, (enum auth_result)(round % 4),
					   &o);
			continue;
		}
		if (o.kind == AUTH_OUT_GSS) {
			struct auth_gss_result r = {0};

			r.result = (enum auth_result)((ctl >> 1) % 3);
			if (o.gss_op == AUTH_GSS_ACCEPT) {
				r.complete = round & 1;
				r.token_b64 = round & 2 ? "dG9r" : "";
				r.offer_b64 = r.complete ? "b2ZmZXI=" : NULL;
			} else {
				r.principal = ctl & 4 ? "alice@EXAMPLE.COM"
						      : "bob@OTHER";
				r.authzid = ctl & 2 ? "root" : "";
			}
			auth_sasl_gss_done(&m, &r, &o);
			continue;
		}
		if (o.kind == AUTH_OUT_REPLY && p >= end)
			break;
		if (p >= end)
			break;
		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl ? nl : end;
		/* a copy of exactly the line: ASan sees any over-read */
		size_t n = (size_t)(le - p);
		char *line = malloc(n ? n : 1);

		memcpy(line, p, n);
		if (o.kind == AUTH_OUT_REPLY)
			auth_sasl_begin(&m, mech, strlen(mech), line, n, true,
					false, &o);
		else
			assert(auth_sasl_line(&m, line, n, &o) == 0);
		free(line);
		p = nl ? nl + 1 : end;
	}
	auth_sasl_reset(&m);
	return 0;
}
