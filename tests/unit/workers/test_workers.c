/*
 * test_workers.c - the worker pool (dataplane/workers): completions come
 * back on the core that submitted the job and nowhere else; a completion
 * wakes a core asleep on its eventfd (one core, as with --cores 1); jobs
 * of a closed connection are handed back through drop() and never
 * through done(), queued or running, and nothing leaks (run under ASan).
 *
 * Each "core" is a pthread that follows lcore.c's protocol: poll, and
 * when idle store the sleeping flag, fence, check workers_pending(),
 * then sleep on its eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/workers/workers.h"

static int failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #c);                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A job of the tests: who submitted it, what came back. */
struct tjob {
	struct worker_job job;   /* first: the pool hands back this */
	uint16_t submitter;
	uint32_t id;
	int *done_on;            /* core done() ran for, per id */
	int *dropped;            /* drop() count, per id */
	sem_t *gate;             /* work() waits on it when set */
	bool after_sleep;        /* work() ends once the core sleeps */
	uint64_t finished_ns;    /* work() end */
	uint16_t polled_on;
};

static volatile int sleeping; /* the core of test_wake is asleep */

static void tjob_work(struct worker_job *j)
{
	struct tjob *t = (struct tjob *)j;
	struct timespec ts = {0, 20 * 1000};

	if (t->gate)
		sem_wait(t->gate);
	while (t->after_sleep && !__atomic_load_n(&sleeping, __ATOMIC_ACQUIRE))
		nanosleep(&ts, NULL);
	t->finished_ns = now_ns();
}

static __thread uint16_t current_core;

static void tjob_done(struct worker_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->polled_on = current_core;
	t->done_on[t->id] = current_core + 1;
}

static void tjob_drop(struct worker_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->dropped[t->id]++;
	free(t);
}

static struct tjob *tjob_new(uint16_t core, uint32_t id, int *done_on,
			     int *dropped)
{
	struct tjob *t = calloc(1, sizeof(*t));

	t->job.work = tjob_work;
	t->job.done = tjob_done;
	t->job.drop = tjob_drop;
	t->submitter = core;
	t->id = id;
	t->done_on = done_on;
	t->dropped = dropped;
	return t;
}

/* ---- 1. completions come back on the right core ---------------------- */

#define CORES 3
#define PER_CORE 2000

static struct worker_pool *pool;
static int done_on[CORES * PER_CORE];
static int dropped1[CORES * PER_CORE];
static int wrong_core;

static void *core_main(void *arg)
{
	uint16_t k = (uint16_t)(uintptr_t)arg;
	struct tjob *mine[PER_CORE];
	uint32_t sent = 0, back = 0;

	current_core = k;
	while (back < PER_CORE) {
		if (sent < PER_CORE) {
			struct tjob *t = tjob_new(k, k * PER_CORE + sent,
						  done_on, dropped1);

			mine[sent] = t;
			if (workers_submit(pool, k, &t->job) == 0)
				sent++;
			else
				free(t);
		}
		back += workers_poll(pool, k, 64);
	}
	for (uint32_t i = 0; i < PER_CORE; i++) {
		if (mine[i]->polled_on != k || mine[i]->job.core != k)
			__atomic_fetch_add(&wrong_core, 1, __ATOMIC_RELAXED);
		free(mine[i]);
	}
	return NULL;
}

static void test_right_core(void)
{
	struct workers_config cfg;
	pthread_t th[CORES];
	int err;

	workers_config_defaults(&cfg);
	cfg.n_cores = CORES;
	cfg.threads = 2;
	cfg.ring_size = 64; /* small: exercises -ENOBUFS and refill */
	pool = workers_create(&cfg, &err);
	CHECK(pool != NULL);
	if (!pool)
		return;
	for (uintptr_t k = 0; k < CORES; k++)
		pthread_create(&th[k], NULL, core_main, (void *)k);
	for (int k = 0; k < CORES; k++)
		pthread_join(th[k], NULL);
	CHECK(wrong_core == 0);
	for (int i = 0; i < CORES * PER_CORE; i++) {
		CHECK(done_on[i] == i / PER_CORE + 1);
		CHECK(dropped1[i] == 0);
		if (done_on[i] != i / PER_CORE + 1)
			break;
	}
	for (uint16_t k = 0; k < CORES; k++)
		CHECK(workers_in_flight(pool, k) == 0);
	workers_destroy(pool);
	pool = NULL;
}

/* ---- 2. a sleeping core is woken by a completion --------------------- */

/* lcore.c's idle sleep: flag, fence, last look, sleep on the eventfd
 * (here up to 5 s: only the eventfd can end it early). Returns the time
 * the sleep ended. */
static uint64_t idle_sleep(struct worker_pool *p, int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	uint64_t v;

	__atomic_store_n(&sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!workers_pending(p, 0))
		poll(&pf, 1, 5000);
	__atomic_store_n(&sleeping, 0, __ATOMIC_RELAXED);
	(void)!read(fd, &v, sizeof(v));
	return now_ns();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_wake(void)
{
	enum { ROUNDS = 200 };
	static int d_on[ROUNDS], d_drop[ROUNDS];
	uint64_t lat[ROUNDS];
	struct workers_config cfg;
	struct worker_pool *p;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), err;
	unsigned late = 0;
	int rounds = 0;

	CHECK(fd >= 0);
	workers_config_defaults(&cfg);
	cfg.n_cores = 1; /* the case that had no eventfd before */
	p = workers_create(&cfg, &err);
	CHECK(p != NULL);
	if (!p)
		return;
	workers_attach_core(p, 0, fd, &sleeping);
	current_core = 0;
	for (int r = 0; r < ROUNDS; r++) {
		struct tjob *t = tjob_new(0, (uint32_t)r, d_on, d_drop);
		uint64_t woke;

		/* The job ends only once the core has set its sleeping
		 * flag: the completion lands while it sleeps (or between
		 * its last look and the poll: the eventfd is then already
		 * readable), so only the wake can end the sleep early. */
		t->after_sleep = true;
		CHECK(workers_submit(p, 0, &t->job) == 0);
		woke = idle_sleep(p, fd);
		while (workers_poll(p, 0, 1) == 0)
			woke = idle_sleep(p, fd);
		CHECK(d_on[r] == 1);
		lat[r] = woke > t->finished_ns ? woke - t->finished_ns : 0;
		/* generous: the sleep would last 5 s without the wake */
		if (lat[r] > 250ull * 1000 * 1000)
			late++;
		free(t);
		rounds++;
		if (late)
			break; /* one is enough: each would take 5 s */
	}
	CHECK(late == 0);
	qsort(lat, (size_t)rounds, sizeof(lat[0]), cmp_u64);
	printf("wake after completion: median %.1f us, p99 %.1f us, max "
	       "%.1f us (%d rounds, 1 core)\n",
	       lat[rounds / 2] / 1e3, lat[rounds * 99 / 100] / 1e3,
	       lat[rounds - 1] / 1e3, rounds);
	workers_destroy(p);
	close(fd);
}

/* ---- 3. jobs of a closed connection are dropped, not leaked ---------- */

static void test_cancel(void)
{
	enum { N = 64 };
	static int d_on[N + 1], d_drop[N + 1];
	struct workers_config cfg;
	struct worker_pool *p;
	struct tjob *jobs[N + 1];
	sem_t gate;
	unsigned back = 0;
	int err;

	workers_config_defaults(&cfg);
	cfg.threads = 1;
	p = workers_create(&cfg, &err);
	CHECK(p != NULL);
	if (!p)
		return;
	sem_init(&gate, 0, 0);
	current_core = 0;
	/* Job 0 blocks the only worker; jobs 1..N queue behind it. */
	for (uint32_t i = 0; i <= N; i++) {
		jobs[i] = tjob_new(0, i, d_on, d_drop);
		if (i == 0)
			jobs[i]->gate = &gate;
		CHECK(workers_submit(p, 0, &jobs[i]->job) == 0);
	}
	/* The connection owning the running job and the odd queued ones
	 * closes: running and queued jobs are cancelled alike. */
	for (uint32_t i = 0; i <= N; i++)
		if (i == 0 || i % 2)
			workers_cancel(&jobs[i]->job);
	sem_post(&gate);
	while (back < N + 1)
		back += workers_poll(p, 0, 16);
	CHECK(workers_in_flight(p, 0) == 0);
	for (uint32_t i = 0; i <= N; i++) {
		bool cancelled = i == 0 || i % 2;

		CHECK(d_drop[i] == (cancelled ? 1 : 0));
		CHECK(d_on[i] == (cancelled ? 0 : 1));
		if (!cancelled)
			free(jobs[i]); /* done() leaves it to its owner */
	}
	/* Destroying the pool with jobs still queued hands them back. */
	jobs[0] = tjob_new(0, 0, d_on, d_drop);
	jobs[0]->gate = &gate;
	CHECK(workers_submit(p, 0, &jobs[0]->job) == 0);
	for (uint32_t i = 1; i <= 8; i++) {
		jobs[i] = tjob_new(0, i, d_on, d_drop);
		CHECK(workers_submit(p, 0, &jobs[i]->job) == 0);
	}
	memset(d_drop, 0, sizeof(d_drop));
	sem_post(&gate); /* let job 0 end so destroy can join */
	workers_destroy(p);
	{
		unsigned handed_back = 0;

		for (uint32_t i = 0; i <= 8; i++)
			handed_back += (unsigned)d_drop[i];
		CHECK(handed_back == 9);
	}
	sem_destroy(&gate);
}

/* tls.workers: the configured count wins; 0 = the CPUs without a
 * dataplane lcore, at least 1 (main.c's placement: lcore k on k % ncpu). */
static void test_threads_for(void)
{
	long one_core[] = {1}, two_cores[] = {1, 0}, pinned[] = {2, 3, 2, 9};

	CHECK(workers_threads_for(3, 2, one_core, 1) == 3);
	CHECK(workers_threads_for(0, 2, one_core, 1) == 1);
	CHECK(workers_threads_for(0, 2, two_cores, 2) == 1); /* none free */
	CHECK(workers_threads_for(0, 8, one_core, 1) == 7);
	CHECK(workers_threads_for(0, 8, two_cores, 2) == 6);
	/* duplicates and a CPU past the machine count once / not at all */
	CHECK(workers_threads_for(0, 4, pinned, 4) == 2);
	CHECK(workers_threads_for(0, 1, one_core, 1) == 1);
}

int main(void)
{
	test_threads_for();
	test_right_core();
	test_wake();
	test_cancel();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
