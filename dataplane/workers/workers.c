/*
 * workers.c - the worker pool of workers.h: per-core job rings (the core
 * enqueues, any worker dequeues) and completion rings (any worker
 * enqueues, the core dequeues), a counting semaphore the workers sleep
 * on (one post per job), and the eventfd wake of a sleeping core.
 *
 * Ownership: the rings and counters of core k are touched by core k (its
 * ends of the rings, in_flight) and by the workers (their ends); the
 * configuration is read-only once the threads run. A core never blocks
 * here: sem_post and the eventfd write are non-blocking system calls
 * made only when a worker or core may be asleep.
 */
#include "dataplane/workers/workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_ring.h>

struct worker_core {
	struct rte_ring *jobs;    /* SP (the core) / MC (workers) */
	struct rte_ring *done;    /* MP (workers) / SC (the core) */
	uint32_t in_flight;       /* the core's own count */
	int wake_fd;
	volatile int *sleeping;
} __rte_cache_aligned;

struct worker_pool {
	struct workers_config cfg;
	sem_t work;               /* one post per queued job */
	bool stopping;            /* atomic */
	uint32_t next_core;       /* where workers start looking; atomic */
	pthread_t *threads;
	uint32_t n_threads;       /* started */
	struct worker_core *cores;
};

void workers_config_defaults(struct workers_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->threads = 2;
	cfg->n_cores = 1;
	cfg->ring_size = 1024;
	cfg->name = "mxg-worker";
}

uint32_t workers_threads_for(uint32_t configured, long n_cpus,
			     const long *dp_cpus, unsigned n_dp)
{
	uint32_t free_cpus = 0;

	if (configured)
		return configured;
	for (long cpu = 0; cpu < n_cpus; cpu++) {
		bool busy = false;

		for (unsigned i = 0; i < n_dp && !busy; i++)
			busy = dp_cpus[i] == cpu;
		free_cpus += !busy;
	}
	return free_cpus ? free_cpus : 1;
}

/* A ring in plain memory (no EAL memzone: the pool also runs in unit
 * tests and in threads that are not lcores). */
static struct rte_ring *ring_new(const char *name, uint32_t count,
				 unsigned flags)
{
	ssize_t sz = rte_ring_get_memsize(count);
	struct rte_ring *r;

	if (sz < 0)
		return NULL;
	r = aligned_alloc(RTE_CACHE_LINE_SIZE,
			  RTE_ALIGN_CEIL((size_t)sz, RTE_CACHE_LINE_SIZE));
	if (!r)
		return NULL;
	if (rte_ring_init(r, name, count, flags) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void wake_core(struct worker_core *c)
{
	uint64_t one = 1;

	/* Pairs with the sleeper's fence: either we see its flag, or it
	 * sees the completion before it sleeps. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (c->wake_fd >= 0 && c->sleeping &&
	    __atomic_load_n(c->sleeping, __ATOMIC_RELAXED))
		(void)!write(c->wake_fd, &one, sizeof(one));
}

/* A job some core queued; every sem token stands for one. */
static struct worker_job *take_job(struct worker_pool *p)
{
	uint16_t n = p->cfg.n_cores;

	for (;;) {
		uint32_t start = __atomic_fetch_add(&p->next_core, 1,
						    __ATOMIC_RELAXED);

		for (uint16_t i = 0; i < n; i++) {
			struct worker_core *c = &p->cores[(start + i) % n];
			void *job;

			if (rte_ring_mc_dequeue(c->jobs, &job) == 0)
				return job;
		}
		/* Another worker took "our" job first; the one it
		 * stands for is being enqueued or already there. */
		sched_yield();
	}
}

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;

	for (;;) {
		struct worker_job *job;
		struct worker_core *c;

		while (sem_wait(&p->work) != 0 && errno == EINTR)
			;
		if (__atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE))
			return NULL;
		job = take_job(p);
		c = &p->cores[job->core];
		job->ran = false;
		if (!__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE)) {
			job->work(job);
			job->ran = true;
		}
		/* Never full: a core has at most ring_size jobs in flight
		 * and the ring holds more. */
		while (rte_ring_mp_enqueue(c->done, job) != 0)
			sched_yield();
		wake_core(c);
	}
}

struct worker_pool *workers_create(const struct workers_config *cfg,
				   int *err)
{
	struct worker_pool *p;
	char name[32];

	if (!cfg->threads || !cfg->n_cores || !cfg->ring_size ||
	    !rte_is_power_of_2(cfg->ring_size)) {
		*err = -EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	p->cfg = *cfg;
	if (!p->cfg.name)
		p->cfg.name = "mxg-worker";
	p->cores = aligned_alloc(RTE_CACHE_LINE_SIZE,
				 sizeof(*p->cores) * cfg->n_cores);
	p->threads = calloc(cfg->threads, sizeof(*p->threads));
	if (!p->cores || !p->threads || sem_init(&p->work, 0, 0) != 0) {
		free(p->cores);
		free(p->threads);
		free(p);
		*err = -ENOMEM;
		return NULL;
	}
	memset(p->cores, 0, sizeof(*p->cores) * cfg->n_cores);
	for (uint16_t k = 0; k < cfg->n_cores; k++) {
		struct worker_core *c = &p->cores[k];

		c->wake_fd = -1;
		/* twice ring_size: room for every job in flight */
		snprintf(name, sizeof(name), "wjob%u", k);
		c->jobs = ring_new(name, 2 * cfg->ring_size,
				   RING_F_SP_ENQ);
		snprintf(name, sizeof(name), "wdone%u", k);
		c->done = ring_new(name, 2 * cfg->ring_size, RING_F_SC_DEQ);
		if (!c->jobs || !c->done) {
			workers_destroy(p);
			*err = -ENOMEM;
			return NULL;
		}
	}
	for (uint32_t i = 0; i < cfg->threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			workers_destroy(p);
			*err = -EAGAIN;
			return NULL;
		}
		p->n_threads++;
		snprintf(name, sizeof(name), "%.11s-%u", p->cfg.name, i);
		pthread_setname_np(p->threads[i], name);
	}
	return p;
}

void workers_attach_core(struct worker_pool *p, uint16_t core, int wake_fd,
			 volatile int *sleeping)
{
	p->cores[core].wake_fd = wake_fd;
	p->cores[core].sleeping = sleeping;
}

int workers_submit(struct worker_pool *p, uint16_t core,
		   struct worker_job *job)
{
	struct worker_core *c = &p->cores[core];

	if (c->in_flight >= p->cfg.ring_size)
		return -ENOBUFS;
	job->core = core;
	job->ran = false;
	__atomic_store_n(&job->cancelled, false, __ATOMIC_RELAXED);
	if (rte_ring_sp_enqueue(c->jobs, job) != 0)
		return -ENOBUFS;
	c->in_flight++;
	sem_post(&p->work);
	return 0;
}

void workers_cancel(struct worker_job *job)
{
	__atomic_store_n(&job->cancelled, true, __ATOMIC_RELEASE);
}

unsigned workers_poll(struct worker_pool *p, uint16_t core, unsigned max)
{
	struct worker_core *c = &p->cores[core];
	void *jobs[32];
	unsigned total = 0;

	while (total < max) {
		unsigned n = rte_ring_sc_dequeue_burst(
			c->done, jobs, RTE_MIN(max - total, 32u), NULL);

		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			struct worker_job *job = jobs[i];

			c->in_flight--;
			if (__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE))
				job->drop(job);
			else
				job->done(job);
		}
		total += n;
	}
	return total;
}

bool workers_pending(const struct worker_pool *p, uint16_t core)
{
	return rte_ring_count(p->cores[core].done) != 0;
}

uint32_t workers_in_flight(const struct worker_pool *p, uint16_t core)
{
	return p->cores[core].in_flight;
}

/* Every job left in r goes back through drop(). */
static void drop_all(struct worker_core *c, struct rte_ring *r)
{
	void *job;

	while (rte_ring_dequeue(r, &job) == 0) {
		c->in_flight--;
		((struct worker_job *)job)->drop(job);
	}
}

void workers_destroy(struct worker_pool *p)
{
	if (!p)
		return;
	__atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < p->n_threads; i++)
		sem_post(&p->work);
	for (uint32_t i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	for (uint16_t k = 0; k < p->cfg.n_cores; k++) {
		struct worker_core *c = &p->cores[k];

		if (c->done)
			drop_all(c, c->done);
		if (c->jobs)
			drop_all(c, c->jobs);
		free(c->jobs);
		free(c->done);
	}
	sem_destroy(&p->work);
	free(p->threads);
	free(p->cores);
	free(p);
}
