/*
 * jobs.c - the password-check job (see jobs.h). The GSS-API job's work
 * is in gss.c, next to the rest of the GSS-API code.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/dovecot.h"
#include "auth/jobs.h"

static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
}

void auth_verify_job_prepare(struct auth_verify_job *j,
			     const struct auth_store *store, const char *login,
			     const char *password, size_t password_len,
			     void (*done)(struct worker_job *),
			     void (*drop)(struct worker_job *), void *owner)
{
	const char *h = store ? auth_store_lookup(store, login) : NULL;

	memset(j, 0, sizeof(*j));
	j->wj.work = auth_verify_job_work;
	j->wj.done = done;
	j->wj.drop = drop;
	j->owner = owner;
	j->known = h != NULL;
	if (store == NULL) {
		j->hash[0] = 0; /* no store: TEMPFAIL in work() */
	} else {
		snprintf(j->hash, sizeof(j->hash), "%s",
			 h ? h : auth_store_dummy_hash(store));
	}
	if (password_len > AUTH_MAX_FIELD)
		password_len = AUTH_MAX_FIELD;
	memcpy(j->password, password, password_len);
	j->password[password_len] = 0;
	j->password_len = password_len;
	snprintf(j->login, sizeof(j->login), "%s", login);
	j->result = AUTH_RESULT_TEMPFAIL;
}

void auth_verify_job_prepare_dovecot(struct auth_verify_job *j,
				     const char *path, const char *login,
				     const char *password, size_t password_len,
				     const char *rip, bool secured,
				     void (*done)(struct worker_job *),
				     void (*drop)(struct worker_job *),
				     void *owner)
{
	auth_verify_job_prepare(j, NULL, login, password, password_len, done,
				drop, owner);
	snprintf(j->dovecot, sizeof(j->dovecot), "%s", path);
	snprintf(j->rip, sizeof(j->rip), "%s", rip ? rip : "");
	j->secured = secured;
	j->known = true;
}

void auth_verify_job_work(struct worker_job *wj)
{
	struct auth_verify_job *j = (struct auth_verify_job *)wj;

	if (j->dovecot[0]) {
		char canon[AUTH_MAX_FIELD + 1];

		j->result = auth_dovecot_verify(
			j->dovecot, j->login, j->password, j->password_len,
			j->rip[0] ? j->rip : NULL, j->secured, 5000, canon,
			sizeof(canon));
		if (j->result == AUTH_RESULT_OK)
			snprintf(j->login, sizeof(j->login), "%s", canon);
	} else if (j->hash[0] == 0) {
		j->result = AUTH_RESULT_TEMPFAIL;
	} else {
		enum auth_result r = auth_store_check(j->hash, j->password);

		/* Unknown login: the same work, then a failure (unless the
		 * store itself failed: that stays a TEMPFAIL). */
		if (!j->known && r == AUTH_RESULT_OK)
			r = AUTH_RESULT_FAIL;
		j->result = r;
	}
	wipe(j->password, sizeof(j->password));
}

void auth_verify_job_wipe(struct auth_verify_job *j)
{
	wipe(j->password, sizeof(j->password));
	wipe(j->hash, sizeof(j->hash));
}
