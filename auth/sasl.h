/*
 * sasl.h - the server side of SMTP AUTH (RFC 4954) as a sans-I/O state
 * machine: the AUTH command and each client line in; a reply, a "334"
 * challenge, or a request ("verify these credentials", "run this GSS
 * step") out. Requests are answered later, when the worker pool is done
 * (auth/jobs.h): the machine never hashes, never calls GSS-API and never
 * blocks.
 *
 * Mechanisms: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and
 * GSSAPI (RFC 4752, the GSS-API work itself in auth/gss.c through MIT
 * Kerberos). PLAIN and LOGIN send the password: they are refused with
 * 538 5.7.11 on a cleartext transport unless the listener allows it.
 *
 * Threads: a machine belongs to one session on one dataplane lcore.
 * Memory: struct auth_sasl is the caller's (embed it); no allocation.
 * Strings handed out in struct auth_sasl_out stay valid until the next
 * call on the same machine (GSS challenges: as long as the job whose
 * result carried them).
 */
#ifndef MXG_AUTH_SASL_H
#define MXG_AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 4616 2: authzid, authcid and passwd are at most 255 octets. */
#define AUTH_MAX_FIELD 255

enum auth_mech {
	AUTH_MECH_PLAIN = 1u << 0,
	AUTH_MECH_LOGIN = 1u << 1,
	AUTH_MECH_GSSAPI = 1u << 2,
};

/* Listener policy, read-only (from the policy snapshot). */
struct auth_sasl_config {
	unsigned mechanisms;   /* AUTH_MECH_* the listener accepts */
	bool allow_cleartext;  /* PLAIN/LOGIN without TLS (discouraged) */
	bool allow_authzid;    /* PLAIN/GSSAPI authzid != login accepted
				  (proxy authorization); default refused */
	const char *gss_realm; /* "EXAMPLE.COM": principals user@REALM log
				  in as "user"; others keep the full
				  principal. NULL/"": keep it always */
};

enum auth_sasl_state {
	AUTH_SASL_IDLE = 0,	  /* no exchange; AUTH accepted */
	AUTH_SASL_PLAIN_WAIT,	  /* sent "334 ", waiting for the message */
	AUTH_SASL_LOGIN_USER,	  /* sent "334 Username:" */
	AUTH_SASL_LOGIN_PASS,	  /* sent "334 Password:" */
	AUTH_SASL_VERIFYING,	  /* waiting for auth_sasl_verified() */
	AUTH_SASL_GSS_WAIT_TOKEN, /* sent a challenge, waiting for a token */
	AUTH_SASL_GSS_WAIT_EMPTY, /* sent the last context token, waiting
				     for the client's (empty) answer */
	AUTH_SASL_GSS_WAIT_LAYER, /* sent the security-layer offer */
	AUTH_SASL_GSS_RUNNING,	  /* waiting for auth_sasl_gss_done() */
	AUTH_SASL_DONE,		  /* authenticated; AUTH refused (503) */
};

enum auth_out_kind {
	AUTH_OUT_REPLY = 0, /* final reply in .reply; exchange over */
	AUTH_OUT_CHALLENGE, /* send "334 " .challenge, feed the line */
	AUTH_OUT_VERIFY,    /* check .authcid/.password on the pool */
	AUTH_OUT_GSS,	    /* run GSS step .gss_op on .gss_in */
};

enum auth_gss_op {
	AUTH_GSS_ACCEPT = 0, /* gss_accept_sec_context() on a token;
				on completion also wrap the RFC 4752
				3.1 security-layer offer */
	AUTH_GSS_UNWRAP,     /* unwrap the client's layer choice and
				authzid */
};

/* The outcome of a credential check (auth/jobs.h, auth/store.h). */
enum auth_result {
	AUTH_RESULT_OK = 0,
	AUTH_RESULT_FAIL,     /* bad password or unknown user: 535 */
	AUTH_RESULT_TEMPFAIL, /* the store could not answer: 454 */
	AUTH_RESULT_LOCKED,   /* brute-force lockout: 454 */
};

/* What a finished GSS step hands back (filled by auth/gss.c on a
 * worker thread). */
struct auth_gss_result {
	enum auth_result result; /* OK, FAIL or TEMPFAIL */
	bool complete;		 /* ACCEPT: the context is established */
	const char *token_b64;	 /* ACCEPT: token for the client ("" =
				    none) */
	const char *offer_b64;	 /* ACCEPT, complete: the wrapped
				    layer offer */
	const char *principal;	 /* UNWRAP: the client's principal */
	const char *authzid;	 /* UNWRAP: "" when none */
};

struct auth_sasl_out {
	enum auth_out_kind kind;
	int code;	       /* REPLY: 235, 454, 501, 503, 504, 534,
				  535, 538 */
	const char *reply;     /* REPLY: whole line without CRLF */
	const char *challenge; /* CHALLENGE: base64 text after "334 " */
	/* VERIFY */
	const char *authcid, *authzid, *password;
	size_t password_len;
	/* GSS */
	enum auth_gss_op gss_op;
	const char *gss_in; /* base64 as sent ("" = empty) */
	size_t gss_in_len;
	/* REPLY 235: who logged in; "" otherwise */
	const char *login;
	/* REPLY 535/454(locked): the exchange counts as a failure (feed
	 * the brute-force tables, auth/brute.h) */
	bool failure;
};

struct auth_sasl {
	enum auth_sasl_state state;
	enum auth_mech mech;
	const struct auth_sasl_config *cfg;
	char authzid[AUTH_MAX_FIELD + 1];
	char authcid[AUTH_MAX_FIELD + 1];
	char password[AUTH_MAX_FIELD + 1];
	size_t password_len;
	const char *gss_offer; /* pending layer offer (in the job) */
	char login[2 * AUTH_MAX_FIELD + 2];
};

/* Resets m to IDLE for a new session under cfg (kept by pointer). */
void auth_sasl_init(struct auth_sasl *m, const struct auth_sasl_config *cfg);

/* Maps "PLAIN", "LOGIN", "GSSAPI" (any case, n octets) to its bit; 0
 * for any other name. */
unsigned auth_mech_parse(const char *name, size_t n);
const char *auth_mech_name(enum auth_mech m);

/*
 * The AUTH command (RFC 4954 4): mechanism name (n octets) and the
 * initial response as sent (NULL: none; "=" or "": empty). tls: the
 * transport is encrypted; in_transaction: between MAIL and the end of
 * the message. Fills *out; returns 0, or -EBUSY while a request is
 * outstanding (a caller bug: nothing changes).
 */
int auth_sasl_begin(struct auth_sasl *m, const char *mech, size_t n,
		    const char *initial, size_t initial_len, bool tls,
		    bool in_transaction, struct auth_sasl_out *out);

/* A line the client sent after a 334 (without CRLF): "*" aborts (501
 * 5.7.0), otherwise strict base64. 0, or -EBUSY when the machine is
 * not waiting for a line. */
int auth_sasl_line(struct auth_sasl *m, const char *line, size_t n,
		   struct auth_sasl_out *out);

/* The answer to AUTH_OUT_VERIFY. Wipes the password. 0, or -EBUSY when
 * no check was outstanding. */
int auth_sasl_verified(struct auth_sasl *m, enum auth_result r,
		       struct auth_sasl_out *out);

/* The answer to AUTH_OUT_GSS. 0, or -EBUSY when no step was
 * outstanding. */
int auth_sasl_gss_done(struct auth_sasl *m, const struct auth_gss_result *r,
		       struct auth_sasl_out *out);

/* The session died or reset: wipes secrets, back to IDLE (not DONE: a
 * new session starts unauthenticated). */
void auth_sasl_reset(struct auth_sasl *m);

static inline bool auth_sasl_authenticated(const struct auth_sasl *m)
{
	return m->state == AUTH_SASL_DONE;
}

#endif /* MXG_AUTH_SASL_H */
