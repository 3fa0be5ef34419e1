/*
 * tls_job.c - handshake steps on the worker pool (see tls_job.h).
 *
 * Threads: work() on a worker thread (the only code that touches the
 * session while the job is in flight); done() and drop() on the owning
 * core, called by workers_poll() or workers_destroy().
 */
#include <stddef.h>

#include "tls/tls_job.h"

static void hs_work(struct worker_job *wj)
{
	struct tls_hs_job *j = (struct tls_hs_job *)wj;

	j->result = tls_session_handshake(j->sess);
}

static void hs_done(struct worker_job *wj)
{
	struct tls_hs_job *j = (struct tls_hs_job *)wj;

	j->complete(j);
}

/* Cancelled: the connection is gone, nobody else holds the session. */
static void hs_drop(struct worker_job *wj)
{
	struct tls_hs_job *j = (struct tls_hs_job *)wj;

	tls_session_free(j->sess);
	j->sess = NULL;
	if (j->release)
		j->release(j);
}

void tls_hs_job_init(struct tls_hs_job *j, struct tls_session *sess,
		     void *owner, void (*complete)(struct tls_hs_job *),
		     void (*release)(struct tls_hs_job *))
{
	j->wj.work = hs_work;
	j->wj.done = hs_done;
	j->wj.drop = hs_drop;
	j->sess = sess;
	j->result = TLS_ST_HANDSHAKE;
	j->abandoned = false;
	j->owner = owner;
	j->complete = complete;
	j->release = release;
}

int tls_hs_job_submit(struct worker_pool *p, uint16_t core,
		      struct tls_hs_job *j)
{
	return workers_submit(p, core, &j->wj);
}

void tls_hs_job_abandon(struct tls_hs_job *j)
{
	j->abandoned = true;
	j->owner = NULL;
	workers_cancel(&j->wj);
}
