/*
 * tls_job.h - a TLS handshake step as a worker-pool job (DESIGN 1, 7):
 * the poll-mode cores never run a handshake.
 *
 * Ownership. The core owns the connection, the job's memory and, outside
 * a job, the session. tls_hs_job_submit() hands the session to the pool:
 * from then until done() the core must not touch it (it queues received
 * ciphertext elsewhere, e.g. its mbufs, and feeds it after done()). The
 * worker runs tls_session_handshake() once, which consumes whatever
 * input was fed before submit and leaves the records to send in the
 * session. done() runs on the owning core with the session back in the
 * core's hands; the core sends tls_session_take_output(), and either
 * submits again (still TLS_ST_HANDSHAKE and more input arrived), or goes
 * on inline (TLS_ST_OPEN), or closes (TLS_ST_FAILED).
 *
 * A connection that dies while its job is in flight calls
 * tls_hs_job_abandon(): the job is cancelled, and when the pool gives it
 * back drop() frees the session and calls release() on the job's memory.
 * The core never frees a session a worker may hold, and a worker never
 * sees the connection (the job carries only the session).
 */
#ifndef MXG_TLS_JOB_H
#define MXG_TLS_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/workers/workers.h"
#include "tls/tls_session.h"

struct tls_hs_job {
	struct worker_job wj;	  /* first: the pool's view */
	struct tls_session *sess; /* the pool's between submit and done */
	enum tls_state result;	  /* set by the worker */
	bool abandoned;		  /* the connection is gone */
	void *owner;		  /* the connection (core side only) */
	/* Owning core: the step finished, session back in owner's hands. */
	void (*complete)(struct tls_hs_job *j);
	/* Owning core: the job's memory may be reused (after complete, or
	 * after an abandoned job was dropped). May be NULL. */
	void (*release)(struct tls_hs_job *j);
};

/* Prepares j for sess (owner and callbacks are the caller's to set). */
void tls_hs_job_init(struct tls_hs_job *j, struct tls_session *sess,
		     void *owner, void (*complete)(struct tls_hs_job *),
		     void (*release)(struct tls_hs_job *));

/* Hands the session to a worker of p for one handshake step on behalf of
 * core. 0, or -ENOBUFS (ring full: the session stays the core's; retry
 * or close). Owning core only. */
int tls_hs_job_submit(struct worker_pool *p, uint16_t core,
		      struct tls_hs_job *j);

/* The connection closed while j was in flight: j->complete will not be
 * called; the pool's drop frees the session and releases j. Owning
 * core only. */
void tls_hs_job_abandon(struct tls_hs_job *j);

#endif /* MXG_TLS_JOB_H */
