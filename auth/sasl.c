/*
 * sasl.c - the SMTP AUTH server state machine (see sasl.h). One enum of
 * states; each event (begin, line, verified, gss_done) is one function
 * that switches on the state. Hostile input throughout: every client
 * octet is checked before it is used; secrets are wiped as soon as they
 * have been handed to the credential check.
 *
 * Threads: the owning session's lcore. Never blocks, never allocates.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "auth/base64.h"
#include "auth/sasl.h"

/* RFC 4954 6 and RFC 3463 / RFC 5248 enhanced codes. */
#define R_OK "235 2.7.0 Authentication successful"
#define R_ABORT "501 5.7.0 Authentication cancelled"
#define R_BADB64 "501 5.5.2 Cannot decode base64 response"
#define R_BADSYNTAX "501 5.5.4 Syntax: AUTH mechanism [initial-response]"
#define R_TXN "503 5.5.1 AUTH not allowed during a mail transaction"
#define R_AGAIN "503 5.5.1 Already authenticated"
#define R_UNKNOWN "504 5.5.4 Unrecognized authentication type"
#define R_POLICY                                                               \
	"534 5.7.9 Authentication mechanism is too weak or not allowed here"
#define R_BAD "535 5.7.8 Authentication credentials invalid"
#define R_ENCRYPT                                                              \
	"538 5.7.11 Encryption required for requested authentication "         \
	"mechanism"
#define R_TEMP "454 4.7.0 Temporary authentication failure"
#define R_LOCKED "454 4.7.0 Too many authentication failures, try again later"

/* "Username:" and "Password:" in base64 (the LOGIN convention). */
#define CH_USER "VXNlcm5hbWU6"
#define CH_PASS "UGFzc3dvcmQ6"

static const struct {
	const char *name;
	enum auth_mech bit;
} mechs[] = {
	{"PLAIN", AUTH_MECH_PLAIN},
	{"LOGIN", AUTH_MECH_LOGIN},
	{"GSSAPI", AUTH_MECH_GSSAPI},
};

unsigned auth_mech_parse(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == n &&
		    strncasecmp(mechs[i].name, name, n) == 0)
			return mechs[i].bit;
	return 0;
}

const char *auth_mech_name(enum auth_mech m)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (mechs[i].bit == m)
			return mechs[i].name;
	return "?";
}

static void wipe(struct auth_sasl *m)
{
	/* volatile stores so the compiler keeps them */
	volatile char *p = m->password;

	for (size_t i = 0; i < sizeof(m->password); i++)
		p[i] = 0;
	m->password_len = 0;
}

void auth_sasl_init(struct auth_sasl *m, const struct auth_sasl_config *cfg)
{
	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->state = AUTH_SASL_IDLE;
}

void auth_sasl_reset(struct auth_sasl *m)
{
	const struct auth_sasl_config *cfg = m->cfg;

	wipe(m);
	auth_sasl_init(m, cfg);
}

static void reply(struct auth_sasl_out *out, int code, const char *text)
{
	memset(out, 0, sizeof(*out));
	out->kind = AUTH_OUT_REPLY;
	out->code = code;
	out->reply = text;
	out->login = "";
}

/* Ends the exchange with a reply (the machine is IDLE again). */
static void finish(struct auth_sasl *m, struct auth_sasl_out *out, int code,
		   const char *text)
{
	wipe(m);
	m->authcid[0] = m->authzid[0] = 0;
	m->state = AUTH_SASL_IDLE;
	reply(out, code, text);
}

static void fail(struct auth_sasl *m, struct auth_sasl_out *out)
{
	finish(m, out, 535, R_BAD);
	out->failure = true;
}

static void challenge(struct auth_sasl *m, struct auth_sasl_out *out,
		      enum auth_sasl_state next, const char *text)
{
	memset(out, 0, sizeof(*out));
	out->kind = AUTH_OUT_CHALLENGE;
	out->challenge = text;
	out->login = "";
	m->state = next;
}

static void success(struct auth_sasl *m, struct auth_sasl_out *out,
		    const char *login)
{
	size_t n = strlen(login);

	if (n >= sizeof(m->login))
		n = sizeof(m->login) - 1;
	memmove(m->login, login, n);
	m->login[n] = 0;
	wipe(m);
	m->state = AUTH_SASL_DONE;
	reply(out, 235, R_OK);
	out->login = m->login;
}

/* Octets that may not appear in a user name: controls (RFC 4616 2 asks
 * for UTF-8 without NUL; we also keep CR, LF and other controls out of
 * logs and Received: headers). */
static bool name_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > AUTH_MAX_FIELD)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

static void copy_field(char *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Both fields in m; asks for the check. */
static void verify(struct auth_sasl *m, struct auth_sasl_out *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = AUTH_OUT_VERIFY;
	out->authcid = m->authcid;
	out->authzid = m->authzid;
	out->password = m->password;
	out->password_len = m->password_len;
	out->login = "";
	m->state = AUTH_SASL_VERIFYING;
}

/*
 * RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd, each
 * field 1..255 octets (authzid may be empty), no NUL inside a field.
 */
static void plain_message(struct auth_sasl *m, const char *b64, size_t n,
			  struct auth_sasl_out *out)
{
	uint8_t buf[3 * AUTH_MAX_FIELD + 2];
	ssize_t len = auth_b64_decode(b64, n, buf, sizeof(buf));
	const uint8_t *f[3];
	size_t fl[3];
	size_t k = 0, start = 0;

	if (len == -EINVAL) {
		finish(m, out, 501, R_BADB64);
		return;
	}
	if (len < 0) { /* longer than any valid message */
		fail(m, out);
		return;
	}
	for (size_t i = 0; i <= (size_t)len; i++) {
		if (i == (size_t)len || buf[i] == 0) {
			if (k == 3) { /* a third NUL */
				k = 4;
				break;
			}
			f[k] = buf + start;
			fl[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	if (k != 3 || (fl[0] && !name_ok(f[0], fl[0])) ||
	    !name_ok(f[1], fl[1]) || fl[2] == 0 || fl[2] > AUTH_MAX_FIELD) {
		memset(buf, 0, sizeof(buf));
		fail(m, out);
		return;
	}
	copy_field(m->authzid, f[0], fl[0]);
	copy_field(m->authcid, f[1], fl[1]);
	memcpy(m->password, f[2], fl[2]);
	m->password[fl[2]] = 0;
	m->password_len = fl[2];
	memset(buf, 0, sizeof(buf));
	/* Proxy authorization (acting as another user) only if allowed. */
	if (m->authzid[0] && strcmp(m->authzid, m->authcid) != 0 &&
	    !m->cfg->allow_authzid) {
		fail(m, out);
		return;
	}
	verify(m, out);
}

/* LOGIN: one field per step (user name, then password). */
static void login_field(struct auth_sasl *m, const char *b64, size_t n,
			bool is_user, struct auth_sasl_out *out)
{
	uint8_t buf[AUTH_MAX_FIELD];
	ssize_t len = auth_b64_decode(b64, n, buf, sizeof(buf));

	if (len == -EINVAL) {
		finish(m, out, 501, R_BADB64);
		return;
	}
	if (len < 0 || (is_user && !name_ok(buf, (size_t)len)) ||
	    memchr(buf, 0, (size_t)len) != NULL || len == 0) {
		memset(buf, 0, sizeof(buf));
		fail(m, out);
		return;
	}
	if (is_user) {
		copy_field(m->authcid, buf, (size_t)len);
		m->authzid[0] = 0;
		challenge(m, out, AUTH_SASL_LOGIN_PASS, CH_PASS);
		return;
	}
	memcpy(m->password, buf, (size_t)len);
	m->password[len] = 0;
	m->password_len = (size_t)len;
	memset(buf, 0, sizeof(buf));
	verify(m, out);
}

static void gss_step(struct auth_sasl *m, enum auth_gss_op op, const char *b64,
		     size_t n, struct auth_sasl_out *out)
{
	/* The worker decodes; the syntax is checked here so that bad
	 * base64 gets its 501 like any other mechanism. */
	if (auth_b64_decode(b64, n, NULL, 0) < 0) {
		finish(m, out, 501, R_BADB64);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->kind = AUTH_OUT_GSS;
	out->gss_op = op;
	out->gss_in = b64;
	out->gss_in_len = n;
	out->login = "";
	m->state = AUTH_SASL_GSS_RUNNING;
}

static bool busy(const struct auth_sasl *m)
{
	return m->state == AUTH_SASL_VERIFYING ||
	       m->state == AUTH_SASL_GSS_RUNNING;
}

int auth_sasl_begin(struct auth_sasl *m, const char *mech, size_t n,
		    const char *initial, size_t initial_len, bool tls,
		    bool in_transaction, struct auth_sasl_out *out)
{
	if (busy(m))
		return -EBUSY;
	if (m->state == AUTH_SASL_DONE) { /* RFC 4954 4 */
		reply(out, 503, R_AGAIN);
		return 0;
	}
	/* A new AUTH while a challenge was pending ends the old one. */
	wipe(m);
	m->state = AUTH_SASL_IDLE;
	if (in_transaction) {
		reply(out, 503, R_TXN);
		return 0;
	}
	if (n == 0) {
		reply(out, 501, R_BADSYNTAX);
		return 0;
	}
	unsigned bit = auth_mech_parse(mech, n);

	if (bit == 0) {
		reply(out, 504, R_UNKNOWN);
		return 0;
	}
	if (!(m->cfg->mechanisms & bit)) {
		reply(out, 534, R_POLICY);
		return 0;
	}
	/* RFC 4954 4: PLAIN and LOGIN expose the password. */
	if (bit != AUTH_MECH_GSSAPI && !tls && !m->cfg->allow_cleartext) {
		reply(out, 538, R_ENCRYPT);
		return 0;
	}
	m->mech = (enum auth_mech)bit;
	m->authcid[0] = m->authzid[0] = 0;
	/* "=" is the empty initial response (RFC 4954 4). */
	if (initial && initial_len == 1 && initial[0] == '=')
		initial_len = 0;
	switch (m->mech) {
	case AUTH_MECH_PLAIN:
		if (initial == NULL)
			challenge(m, out, AUTH_SASL_PLAIN_WAIT, "");
		else
			plain_message(m, initial, initial_len, out);
		break;
	case AUTH_MECH_LOGIN:
		/* An initial response is the user name (RFC 4954 4 allows
		 * it; clients such as Outlook send it). */
		if (initial == NULL || initial_len == 0)
			challenge(m, out, AUTH_SASL_LOGIN_USER, CH_USER);
		else
			login_field(m, initial, initial_len, true, out);
		break;
	case AUTH_MECH_GSSAPI:
		/* RFC 4752 3.1: the client starts; without an initial
		 * response we ask for it with an empty challenge. */
		if (initial == NULL || initial_len == 0)
			challenge(m, out, AUTH_SASL_GSS_WAIT_TOKEN, "");
		else
			gss_step(m, AUTH_GSS_ACCEPT, initial, initial_len, out);
		break;
	}
	return 0;
}

int auth_sasl_line(struct auth_sasl *m, const char *line, size_t n,
		   struct auth_sasl_out *out)
{
	switch (m->state) {
	case AUTH_SASL_PLAIN_WAIT:
	case AUTH_SASL_LOGIN_USER:
	case AUTH_SASL_LOGIN_PASS:
	case AUTH_SASL_GSS_WAIT_TOKEN:
	case AUTH_SASL_GSS_WAIT_EMPTY:
	case AUTH_SASL_GSS_WAIT_LAYER:
		break;
	default:
		return -EBUSY;
	}
	if (n == 1 && line[0] == '*') { /* RFC 4954 4 */
		finish(m, out, 501, R_ABORT);
		return 0;
	}
	switch (m->state) {
	case AUTH_SASL_PLAIN_WAIT:
		plain_message(m, line, n, out);
		break;
	case AUTH_SASL_LOGIN_USER:
		login_field(m, line, n, true, out);
		break;
	case AUTH_SASL_LOGIN_PASS:
		login_field(m, line, n, false, out);
		break;
	case AUTH_SASL_GSS_WAIT_TOKEN:
		gss_step(m, AUTH_GSS_ACCEPT, line, n, out);
		break;
	case AUTH_SASL_GSS_WAIT_EMPTY:
		/* RFC 4752 3.1: the client answers the last context token
		 * with an empty response; the layer offer follows. */
		if (auth_b64_decode(line, n, NULL, 0) != 0) {
			if (auth_b64_decode(line, n, NULL, 0) < 0)
				finish(m, out, 501, R_BADB64);
			else
				fail(m, out);
			break;
		}
		challenge(m, out, AUTH_SASL_GSS_WAIT_LAYER, m->gss_offer);
		break;
	case AUTH_SASL_GSS_WAIT_LAYER:
		gss_step(m, AUTH_GSS_UNWRAP, line, n, out);
		break;
	default:
		break;
	}
	return 0;
}

int auth_sasl_verified(struct auth_sasl *m, enum auth_result r,
		       struct auth_sasl_out *out)
{
	if (m->state != AUTH_SASL_VERIFYING)
		return -EBUSY;
	switch (r) {
	case AUTH_RESULT_OK:
		success(m, out, m->authzid[0] ? m->authzid : m->authcid);
		break;
	case AUTH_RESULT_FAIL:
		fail(m, out);
		break;
	case AUTH_RESULT_TEMPFAIL:
		finish(m, out, 454, R_TEMP);
		break;
	case AUTH_RESULT_LOCKED:
		finish(m, out, 454, R_LOCKED);
		out->failure = true;
		break;
	}
	return 0;
}

/* The login of a Kerberos principal: "user@REALM" is "user" when REALM
 * is the configured one, the whole principal otherwise. */
static const char *principal_login(const struct auth_sasl *m, const char *p,
				   char *buf, size_t cap)
{
	const char *realm = m->cfg->gss_realm;
	const char *at = strrchr(p, '@');

	if (realm && realm[0] && at && strcmp(at + 1, realm) == 0 &&
	    (size_t)(at - p) < cap) {
		memcpy(buf, p, (size_t)(at - p));
		buf[at - p] = 0;
		return buf;
	}
	return p;
}

int auth_sasl_gss_done(struct auth_sasl *m, const struct auth_gss_result *r,
		       struct auth_sasl_out *out)
{
	char buf[AUTH_MAX_FIELD + 1];

	if (m->state != AUTH_SASL_GSS_RUNNING)
		return -EBUSY;
	if (r->result == AUTH_RESULT_TEMPFAIL) {
		finish(m, out, 454, R_TEMP);
		return 0;
	}
	if (r->result != AUTH_RESULT_OK) {
		fail(m, out);
		return 0;
	}
	if (r->offer_b64 == NULL && r->principal == NULL) {
		/* ACCEPT, context not complete: send the token on. */
		challenge(m, out, AUTH_SASL_GSS_WAIT_TOKEN,
			  r->token_b64 ? r->token_b64 : "");
		return 0;
	}
	if (r->offer_b64) {
		/* ACCEPT complete. With a last token to send, the offer
		 * waits for the client's empty answer. */
		m->gss_offer = r->offer_b64;
		if (r->token_b64 && r->token_b64[0])
			challenge(m, out, AUTH_SASL_GSS_WAIT_EMPTY,
				  r->token_b64);
		else
			challenge(m, out, AUTH_SASL_GSS_WAIT_LAYER,
				  r->offer_b64);
		return 0;
	}
	/* UNWRAP: the client chose "no security layer" (gss.c checks). */
	const char *login = principal_login(m, r->principal, buf, sizeof(buf));

	if (!name_ok((const uint8_t *)login, strlen(login))) {
		fail(m, out);
		return 0;
	}
	if (r->authzid && r->authzid[0] && strcmp(r->authzid, login) != 0 &&
	    strcmp(r->authzid, r->principal) != 0) {
		if (!m->cfg->allow_authzid ||
		    !name_ok((const uint8_t *)r->authzid, strlen(r->authzid))) {
			fail(m, out);
			return 0;
		}
		login = r->authzid;
	}
	success(m, out, login);
	return 0;
}
