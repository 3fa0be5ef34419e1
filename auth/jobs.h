/*
 * jobs.h - the worker-pool jobs of AUTH (dataplane/workers/workers.h):
 * a password check (auth_verify_job) and a GSS-API step (auth_gss_job).
 * Hashing and GSS-API may take tens of milliseconds or read a keytab:
 * they never run on a poll-mode core.
 *
 * Life of a job (the pool's contract): the session's core fills it and
 * submits it; work() runs on a worker thread; done() runs back on the
 * owning core, which feeds the result to auth_sasl_verified() or
 * auth_sasl_gss_done(). If the connection dies meanwhile, the core calls
 * workers_cancel() and forgets the job; the pool then calls drop() on
 * the core, which must release it: auth_verify_job_wipe() /
 * auth_gss_job_release() followed by the caller's free. A job never
 * outlives its secrets: passwords are wiped by work() as soon as the
 * hash is computed and again by wipe().
 *
 * The job carries copies of everything it reads (the user's hash, the
 * keytab path, the service), never pointers into a policy snapshot that
 * a reload could retire while the job runs.
 */
#ifndef MXG_AUTH_JOBS_H
#define MXG_AUTH_JOBS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/sasl.h"
#include "auth/store.h"
#include "dataplane/workers/workers.h"

/* Longest GSS token accepted or produced, in base64 characters (a
 * Windows ticket with a large PAC is about 12 KB of binary). */
#define AUTH_GSS_MAX_B64 16384

struct auth_verify_job {
	struct worker_job wj; /* first: container_of is a cast */
	void *owner;	      /* the caller's session */
	char hash[AUTH_MAX_HASH];
	char password[AUTH_MAX_FIELD + 1];
	size_t password_len;
	bool known; /* the login exists */
	/* Dovecot instead of the users file (auth/dovecot.h) */
	char dovecot[108];		/* socket path; "" = users file */
	char login[AUTH_MAX_FIELD + 1]; /* asked; then Dovecot's canonical
					   name when OK */
	char rip[48];			/* client address, for Dovecot */
	bool secured;
	enum auth_result result; /* set by work() */
};

/* Core: fills j for (login, password) from store (NULL store: TEMPFAIL
 * without hashing) and sets work = auth_verify_job_work, done and drop
 * as given. An unknown login is hashed against the store's dummy hash
 * and fails: same cost, no user enumeration by timing. */
void auth_verify_job_prepare(struct auth_verify_job *j,
			     const struct auth_store *store, const char *login,
			     const char *password, size_t password_len,
			     void (*done)(struct worker_job *),
			     void (*drop)(struct worker_job *), void *owner);
/* Core: the same for a check by Dovecot's auth socket (path): work()
 * asks Dovecot (PLAIN) and waits at most 5 s; a socket that does not
 * answer is a TEMPFAIL. rip: the client's address (dotted), for
 * Dovecot's own brute-force and logs. */
void auth_verify_job_prepare_dovecot(struct auth_verify_job *j,
				     const char *path, const char *login,
				     const char *password, size_t password_len,
				     const char *rip, bool secured,
				     void (*done)(struct worker_job *),
				     void (*drop)(struct worker_job *),
				     void *owner);
/* Worker thread: crypt_r (or Dovecot), then wipes the password. */
void auth_verify_job_work(struct worker_job *wj);
/* Core (drop): wipes what the job still holds. */
void auth_verify_job_wipe(struct auth_verify_job *j);

/* GSSAPI acceptor settings, copied into each job. */
struct auth_gss_config {
	char keytab[PATH_MAX]; /* "" = the default (KRB5_KTNAME) */
	char service[256];     /* "smtp/mx.example.com@EXAMPLE.COM";
				  "" = any key of the keytab */
};

struct auth_gss_job {
	struct worker_job wj; /* first */
	void *owner;
	struct auth_gss_config cfg;
	void *ctx;  /* gss_ctx_id_t, kept across steps */
	void *cred; /* gss_cred_id_t */
	enum auth_gss_op op;
	char in[AUTH_GSS_MAX_B64 + 1];
	size_t in_len;
	/* results (valid after done(), until the next step) */
	struct auth_gss_result res;
	char token_b64[AUTH_GSS_MAX_B64 + 1];
	char offer_b64[64];
	char principal[AUTH_MAX_FIELD + 1];
	char authzid[AUTH_MAX_FIELD + 1];
	char error[160]; /* GSS-API's words, for the log */
};

/* Core: a fresh job for one GSSAPI exchange (cfg copied). */
void auth_gss_job_init(struct auth_gss_job *j, const struct auth_gss_config *c,
		       void (*done)(struct worker_job *),
		       void (*drop)(struct worker_job *), void *owner);
/* Core: the next step (from AUTH_OUT_GSS). -E2BIG when the token is
 * longer than AUTH_GSS_MAX_B64 (answer as a failure). */
int auth_gss_job_step(struct auth_gss_job *j, enum auth_gss_op op,
		      const char *b64, size_t n);
/* Worker thread: runs the step with MIT GSS-API (auth/gss.c). */
void auth_gss_job_work(struct worker_job *wj);
/* Core or worker: deletes the GSS context and credentials (end of the
 * exchange, or drop()). The job may then be freed. */
void auth_gss_job_release(struct auth_gss_job *j);

#endif /* MXG_AUTH_JOBS_H */
