/*
 * workers.h - the one worker pool (DESIGN 1): pthreads that run what may
 * block or take more than a few microseconds (Maildir writes and fsyncs;
 * later TLS handshakes, credential checks, DNS) so that no poll loop
 * does. Each dataplane core has a job ring in and a completion ring out;
 * a completion wakes the owning core from its idle sleep through the
 * core's eventfd, whatever the number of cores.
 *
 * Threads and ownership. A job belongs to the core that submitted it and
 * always comes back to that core exactly once: through done() after its
 * work ran, or through drop() when it was cancelled (its connection
 * closed) - so a job is never lost and never freed twice. Between submit
 * and poll the pool owns it: work() runs on a worker thread, nothing else
 * may touch it except workers_cancel() from the owning core.
 * workers_submit/poll/cancel/pending are called by the owning core only,
 * never block and never allocate (sem_post may enter the kernel to wake a
 * worker). Workers wait on a semaphore when every ring is empty.
 *
 * Memory: workers_create() allocates every ring; jobs are the caller's.
 */
#ifndef MXG_WORKERS_H
#define MXG_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

struct worker_pool;

struct worker_job {
	/* Set by the submitter. */
	void (*work)(struct worker_job *job);  /* worker thread; may block */
	void (*done)(struct worker_job *job);  /* owning core, after work */
	void (*drop)(struct worker_job *job);  /* owning core, cancelled job:
						  release it (work may or
						  may not have run) */
	/* Set by the pool. */
	uint16_t core;          /* the owning core */
	bool cancelled;         /* workers_cancel(); atomic */
	bool ran;               /* work() ran (read in done/drop) */
};

struct workers_config {
	uint32_t threads;       /* worker threads (2) */
	uint16_t n_cores;       /* dataplane cores that submit (1..) */
	uint32_t ring_size;     /* jobs in flight per core, power of 2 (1024) */
	const char *name;       /* thread name prefix ("mxg-worker") */
};

void workers_config_defaults(struct workers_config *cfg);

/* The pool's thread count for `tls.workers` = configured: configured when
 * not 0, else the CPUs of [0, n_cpus) that run no dataplane lcore
 * (dp_cpus[0..n_dp), duplicates and out-of-range entries allowed), at
 * least 1. Pure; any thread. */
uint32_t workers_threads_for(uint32_t configured, long n_cpus,
			     const long *dp_cpus, unsigned n_dp);

/* Allocates the rings and starts the threads. NULL with *err = -errno.
 * Main lcore, before the dataplane cores start. */
struct worker_pool *workers_create(const struct workers_config *cfg,
				   int *err);

/* Tells the pool how to wake core: its eventfd (-1: none; the core then
 * finds completions at its next iteration) and the flag it sets while it
 * sleeps (the fence protocol of lcore.c: the sleeper stores the flag,
 * fences, checks workers_pending(), then sleeps; a worker enqueues,
 * fences, and writes the eventfd when it sees the flag). Main lcore,
 * before the cores start. */
void workers_attach_core(struct worker_pool *p, uint16_t core, int wake_fd,
			 volatile int *sleeping);

/* Queues job for a worker on behalf of core. 0, or -ENOBUFS when the
 * core's ring is full (the caller answers 4xx or retries later). */
int workers_submit(struct worker_pool *p, uint16_t core,
		   struct worker_job *job);

/* Marks a submitted job cancelled (its connection closed): its done()
 * will not be called; its drop() will, on this core, once the pool
 * gives it back. Owning core only. */
void workers_cancel(struct worker_job *job);

/* Hands back up to max finished jobs of core: calls done() or drop() on
 * each. Returns how many. Owning core only; never blocks. */
unsigned workers_poll(struct worker_pool *p, uint16_t core, unsigned max);

/* True when core has completions waiting (the sleeper's last check). */
bool workers_pending(const struct worker_pool *p, uint16_t core);

/* Jobs core submitted that it has not had back yet. */
uint32_t workers_in_flight(const struct worker_pool *p, uint16_t core);

/* Stops the threads after the jobs they hold, then gives every job still
 * in the pool back through drop() on the calling thread. The cores must
 * have stopped. NULL is a no-op. */
void workers_destroy(struct worker_pool *p);

#endif /* MXG_WORKERS_H */
