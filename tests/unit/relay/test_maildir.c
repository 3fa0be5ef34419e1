/*
 * test_maildir.c - the Maildir next hop (dataplane/relay/maildir.h) on
 * real files in a temporary directory: delivery into new/ with the
 * Received: header and un-stuffed LF body, fsyncs counted, abort leaves
 * nothing, bounded job slots and chunk pool, size limit, header injection,
 * several workers, an I/O error reported as a failed completion; the file
 * work runs on the worker pool (dataplane/workers): an abort cancels the
 * step out, and a step's completion wakes a core asleep on its eventfd.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/relay/maildir.h"

static int failures;
static int checks;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static char base[256];

/* The worker pool each test runs its Maildir on; this thread is core 0. */
static struct worker_pool *pool;

static void pool_new(uint32_t threads, uint16_t cores)
{
	struct workers_config wc;
	int err = 0;

	workers_config_defaults(&wc);
	wc.threads = threads;
	wc.n_cores = cores;
	pool = workers_create(&wc, &err);
	if (pool == NULL) {
		fprintf(stderr, "workers_create: %d\n", err);
		exit(1);
	}
}

static void use_pool(struct maildir_config *cfg, uint32_t threads)
{
	pool_new(threads, 1);
	cfg->pool = pool;
	cfg->core = 0;
}

/* The order mxgate tears down in: the pool first, then the Maildir. */
static void md_end(struct maildir *md)
{
	workers_destroy(pool);
	pool = NULL;
	maildir_destroy(md);
}

/* One poll-loop iteration of core 0: finished steps, then waiting ones. */
static void pump(struct maildir *md)
{
	workers_poll(pool, 0, 64);
	maildir_poll(md, NULL, 0);
}

static int count_dir(const char *root, const char *sub)
{
	char p[512];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	d = opendir(p);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static char *slurp(const char *root, const char *sub, const char *name)
{
	char p[1024];
	FILE *f;
	static char buf[1 << 20];
	size_t n;

	snprintf(p, sizeof(p), "%s/%s/%s", root, sub, name);
	f = fopen(p, "rb");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Waits (up to 5 s) for one completion. */
static int wait_done(struct maildir *md, struct maildir_completion *c)
{
	for (int i = 0; i < 5000; i++) {
		workers_poll(pool, 0, 64);
		if (maildir_poll(md, c, 1) == 1)
			return 1;
		usleep(1000);
	}
	return 0;
}

static void rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "note: could not remove %s\n", path);
}

static const struct maildir_received RCV = {
	.client_addr = "192.0.2.7",
	.client_name = "client.example",
	.helo = "helo.example",
	.listener = "mx",
	.session_id = "S0001",
	.protocol = "ESMTP",
	.sender = "alice@example.org",
	.recipient = "bob@example.com",
	.time = 1700000000,
};

static void test_deliver(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct maildir_stats st;
	char root[300];
	int err = 0, j;
	const char *pieces[] = {"Subject: hi\r", "\n\r\n..dot line\r\n",
				"x\ry\r\n",	 ".",
				".\r\n",	 "last\r\n"};
	const char *want =
		"Return-Path: <alice@example.org>\n"
		"Received: from helo.example (client.example [192.0.2.7])\n"
		"\tby gw.test (mxgate, listener mx) with ESMTP id S0001\n"
		"\tfor <bob@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n"
		"Subject: hi\n\n.dot line\nx\ry\n.\nlast\n";
	char *got;

	snprintf(root, sizeof(root), "%s/deep/Maildir", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	cfg.chunk_size = 64; /* small: the body crosses chunk boundaries */
	use_pool(&cfg, 1);
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;
	CHECK(count_dir(root, "cur") == 0 && count_dir(root, "new") == 0 &&
	      count_dir(root, "tmp") == 0);
	j = maildir_begin(md, &RCV, 42);
	CHECK(j >= 0);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		CHECK(maildir_append(md, j, pieces[i], strlen(pieces[i])) ==
		      (ssize_t)strlen(pieces[i]));
	CHECK(maildir_commit(md, j) == 0);
	CHECK(maildir_append(md, j, "x", 1) == -EINVAL);
	CHECK(wait_done(md, &c));
	CHECK(c.job == j && c.status == 0 && c.tag == 42);
	CHECK(c.size == strlen(want));
	CHECK(strstr(c.name, ".gw.test") != NULL);
	CHECK(count_dir(root, "new") == 1 && count_dir(root, "tmp") == 0);
	got = slurp(root, "new", c.name);
	CHECK(got != NULL && strcmp(got, want) == 0);
	if (got && strcmp(got, want) != 0)
		fprintf(stderr, "got:\n%s\nwant:\n%s\n", got, want);
	maildir_stats(md, &st);
	CHECK(st.delivered == 1 && st.fsyncs == 2 && st.failed == 0);
	md_end(md);
	rm_rf(root);
}

static void test_abort_and_limits(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct maildir_stats st;
	char root[300];
	char big[300];
	int err = 0, j1, j2;

	memset(big, 'a', sizeof(big));
	snprintf(root, sizeof(root), "%s/md2", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	cfg.max_jobs = 2;
	cfg.chunk_size = 64;
	cfg.max_chunks = 2;
	cfg.max_message_size = 1000;
	use_pool(&cfg, 1);
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;

	/* Abort: nothing left anywhere. */
	j1 = maildir_begin(md, &RCV, 1);
	CHECK(maildir_append(md, j1, "hello\r\n", 7) == 7);
	CHECK(maildir_abort(md, j1) == 0);
	CHECK(wait_done(md, &c));
	CHECK(c.job == j1 && c.status == -ECANCELED && c.name[0] == '\0');
	CHECK(count_dir(root, "new") == 0 && count_dir(root, "tmp") == 0);

	/* Job slots are bounded: the third begin is refused (-> 451). */
	maildir_hold(md, true);
	j1 = maildir_begin(md, &RCV, 1);
	j2 = maildir_begin(md, &RCV, 2);
	CHECK(j1 >= 0 && j2 >= 0 && j1 != j2);
	CHECK(maildir_begin(md, &RCV, 3) == -EAGAIN);

	/* The chunk pool is bounded: 2 chunks of 64 octets, workers held. */
	CHECK(maildir_append(md, j1, big, 200) == 128);
	CHECK(maildir_append(md, j2, big, 10) == 0);
	/* Size limit per message. */
	CHECK(maildir_append(md, j1, big, 900) == -EFBIG);
	maildir_hold(md, false);
	for (int i = 0; i < 5000; i++) {
		ssize_t n = maildir_append(md, j2, "line\r\n", 6);

		if (n == 6)
			break;
		pump(md);
		usleep(1000);
	}
	CHECK(maildir_abort(md, j1) == 0);
	CHECK(maildir_commit(md, j2) == 0);
	CHECK(wait_done(md, &c));
	CHECK(wait_done(md, &c));
	CHECK(count_dir(root, "new") == 1 && count_dir(root, "tmp") == 0);
	/* Slots are free again. */
	j1 = maildir_begin(md, &RCV, 4);
	CHECK(j1 >= 0);
	maildir_stats(md, &st);
	CHECK(st.busy == 1 && st.chunk_short >= 1 && st.aborted == 2);
	/* Destroy with an uncommitted message: its tmp file goes. */
	maildir_append(md, j1, "x\r\n", 3);
	for (int i = 0; i < 1000 && count_dir(root, "tmp") == 0; i++) {
		pump(md);
		usleep(1000);
	}
	CHECK(count_dir(root, "tmp") == 1);
	md_end(md);
	CHECK(count_dir(root, "tmp") == 0);
	CHECK(count_dir(root, "new") == 1);
	rm_rf(root);
}

static void test_header_injection_and_crlf(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct maildir_received r = RCV;
	char root[300];
	int err = 0, j;
	char *got;

	snprintf(root, sizeof(root), "%s/md3", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	cfg.keep_crlf = true;
	use_pool(&cfg, 1);
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;
	r.helo = "evil\r\nX-Injected: yes";
	r.sender = "";
	r.recipient = NULL;
	j = maildir_begin(md, &r, 0);
	maildir_append(md, j, "A: b\r\n\r\nbody\r\n", 14);
	maildir_commit(md, j);
	CHECK(wait_done(md, &c) && c.status == 0);
	got = slurp(root, "new", c.name);
	CHECK(got != NULL);
	if (got) {
		CHECK(strncmp(got, "Return-Path: <>\r\n", 17) == 0);
		CHECK(strstr(got, "from evil??X-Injected: yes (") != NULL);
		CHECK(strstr(got, "\r\nX-Injected") == NULL);
		CHECK(strstr(got, "id S0001\r\n\t; Tue, 14 Nov 2023") != NULL);
		CHECK(strstr(got, "\r\nA: b\r\n\r\nbody\r\n") != NULL);
	}
	md_end(md);
	rm_rf(root);
}

static void test_many_workers(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c[8];
	char root[300];
	int err = 0, done = 0, ok = 0;
	int jobs[20];

	snprintf(root, sizeof(root), "%s/md4", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	cfg.max_jobs = 32;
	cfg.chunk_size = 128;
	use_pool(&cfg, 3);
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;
	for (int i = 0; i < 20; i++)
		jobs[i] = maildir_begin(md, &RCV, (uint64_t)i);
	/* Interleave the bodies of all 20 messages. */
	for (int line = 0; line < 50; line++)
		for (int i = 0; i < 20; i++) {
			char l[64];
			int n = snprintf(l, sizeof(l), "msg %d line %d\r\n", i,
					 line);

			while (maildir_append(md, jobs[i], l, (size_t)n) != n) {
				pump(md);
				usleep(100);
			}
		}
	for (int i = 0; i < 20; i++)
		maildir_commit(md, jobs[i]);
	for (int t = 0; t < 5000 && done < 20; t++) {
		unsigned n;

		workers_poll(pool, 0, 64);
		n = maildir_poll(md, c, 8);

		for (unsigned k = 0; k < n; k++) {
			char *got = slurp(root, "new", c[k].name);
			char want[64];

			done++;
			snprintf(want, sizeof(want), "\nmsg %d line 49\n",
				 (int)c[k].tag);
			/* All 50 lines, and only this message's. */
			if (c[k].status == 0 && got && strstr(got, want)) {
				char mine[32];
				int nall = 0, nmine = 0;

				snprintf(mine, sizeof(mine), "\nmsg %d line",
					 (int)c[k].tag);
				for (char *p = got; (p = strstr(p, "\nmsg "));
				     p++)
					nall++;
				for (char *p = got; (p = strstr(p, mine)); p++)
					nmine++;
				if (nall == 50 && nmine == 50)
					ok++;
			}
		}
		if (n == 0)
			usleep(1000);
	}
	CHECK(done == 20 && ok == 20);
	CHECK(count_dir(root, "new") == 20);
	md_end(md);
	rm_rf(root);
}

static void test_io_error(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct maildir_stats st;
	char root[300], tmp[320];
	int err = 0, j;

	snprintf(root, sizeof(root), "%s/md5", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	use_pool(&cfg, 1);
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;
	/* tmp/ vanishes under us: the open fails, the commit reports it. */
	snprintf(tmp, sizeof(tmp), "%s/tmp", root);
	CHECK(rmdir(tmp) == 0);
	j = maildir_begin(md, &RCV, 9);
	maildir_append(md, j, "x\r\n", 3);
	maildir_commit(md, j);
	CHECK(wait_done(md, &c));
	CHECK(c.status == -ENOENT && c.name[0] == '\0');
	CHECK(count_dir(root, "new") == 0);
	maildir_stats(md, &st);
	CHECK(st.failed == 1 && st.delivered == 0);
	md_end(md);
	rm_rf(root);

	/* A path that cannot be created. */
	cfg.path = "/proc/no/such/Maildir";
	use_pool(&cfg, 1);
	CHECK(maildir_create(&cfg, &err) == NULL && err < 0);
	/* No pool: refused. */
	cfg.pool = NULL;
	cfg.path = root;
	CHECK(maildir_create(&cfg, &err) == NULL && err == -EINVAL);
	workers_destroy(pool);
	pool = NULL;
}

/* ---- the worker pool: cancellation and the wake of a sleeping core ---- */

/* A job of another core (1) that holds the pool's only thread: until
 * *release is set (bounded: 5 s). started tells that a worker took it. */
struct blocker {
	struct worker_job job;
	volatile int *release;
	volatile int started;
};

static void blocker_work(struct worker_job *wj)
{
	struct blocker *b = (struct blocker *)wj;
	struct timespec ts = {0, 20 * 1000};

	__atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 250000 &&
			!__atomic_load_n(b->release, __ATOMIC_ACQUIRE);
	     i++)
		nanosleep(&ts, NULL);
}

static void blocker_back(struct worker_job *wj)
{
	(void)wj;
}

static void blocker_start(struct blocker *b, volatile int *release)
{
	memset(b, 0, sizeof(*b));
	b->job.work = blocker_work;
	b->job.done = blocker_back;
	b->job.drop = blocker_back;
	b->release = release;
	CHECK(workers_submit(pool, 1, &b->job) == 0);
	for (int i = 0; i < 5000 && !__atomic_load_n(&b->started,
						     __ATOMIC_ACQUIRE);
	     i++)
		usleep(1000);
	CHECK(b->started);
}

/* maildir_abort() while a step is out: the pool hands the step back
 * without running it (no file is ever opened), or, when the file is
 * already open, the queued writes are dropped and the tmp/ file goes. */
static void test_abort_cancels_step(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct maildir_stats st;
	struct blocker b;
	volatile int release = 0;
	char root[300], big[200];
	int err = 0, j;

	memset(big, 'b', sizeof(big));
	snprintf(root, sizeof(root), "%s/md6", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	cfg.chunk_size = 64;
	pool_new(1, 2);
	cfg.pool = pool;
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;

	/* 1. The open step waits behind core 1's job: cancelled unrun. */
	blocker_start(&b, &release);
	j = maildir_begin(md, &RCV, 11);
	CHECK(j >= 0 && workers_in_flight(pool, 0) == 1);
	CHECK(maildir_abort(md, j) == 0);
	__atomic_store_n(&release, 1, __ATOMIC_RELEASE);
	CHECK(wait_done(md, &c));
	CHECK(c.job == j && c.tag == 11 && c.status == -ECANCELED);
	CHECK(count_dir(root, "tmp") == 0 && count_dir(root, "new") == 0);
	CHECK(workers_in_flight(pool, 0) == 0 && !maildir_busy(md));

	/* 2. The file is open; a write step waits: cancelled, unlinked. */
	j = maildir_begin(md, &RCV, 12);
	for (int i = 0; i < 5000 && count_dir(root, "tmp") == 0; i++) {
		pump(md);
		usleep(1000);
	}
	CHECK(count_dir(root, "tmp") == 1);
	for (int i = 0; i < 5000 && maildir_busy(md); i++) {
		pump(md);
		usleep(1000);
	}
	release = 0;
	blocker_start(&b, &release);
	CHECK(maildir_append(md, j, big, sizeof(big)) == sizeof(big));
	CHECK(workers_in_flight(pool, 0) == 1); /* the write step */
	CHECK(maildir_abort(md, j) == 0);
	__atomic_store_n(&release, 1, __ATOMIC_RELEASE);
	CHECK(wait_done(md, &c));
	CHECK(c.job == j && c.tag == 12 && c.status == -ECANCELED);
	CHECK(count_dir(root, "tmp") == 0 && count_dir(root, "new") == 0);
	maildir_stats(md, &st);
	CHECK(st.aborted == 2 && st.delivered == 0 && st.bytes == 0);
	md_end(md);
	rm_rf(root);
}

/* Core 0 sleeps as lcore.c does (flag, fence, last look, sleep on its
 * eventfd) while a Maildir step is out: the worker that finishes the step
 * must wake it. The pool's one thread is held by a job of core 1 (which
 * has no eventfd: its completion wakes nobody) until core 0 is asleep,
 * so each sleep can only end through the step's completion - or through
 * the 5 s bound, which fails the test. Two sleeps: the open step and the
 * commit step (write, fsync, rename, fsync new/). */
static volatile int core0_sleeping;

static void test_completion_wakes_core(void)
{
	struct maildir_config cfg;
	struct maildir *md;
	struct maildir_completion c;
	struct blocker b;
	char root[300];
	int err = 0, j, woken = 0, got = 0;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	CHECK(efd >= 0);
	snprintf(root, sizeof(root), "%s/md7", base);
	maildir_config_defaults(&cfg);
	cfg.path = root;
	cfg.hostname = "gw.test";
	pool_new(1, 2);
	workers_attach_core(pool, 0, efd, &core0_sleeping);
	cfg.pool = pool;
	md = maildir_create(&cfg, &err);
	CHECK(md != NULL);
	if (md == NULL)
		return;
	blocker_start(&b, &core0_sleeping);
	j = maildir_begin(md, &RCV, 21);
	CHECK(maildir_append(md, j, "Subject: w\r\n\r\nwake\r\n", 20) == 20);
	CHECK(maildir_commit(md, j) == 0);
	for (int round = 0; round < 2 && !got; round++) {
		struct pollfd pf = {.fd = efd, .events = POLLIN};
		uint64_t v;
		int r = 0;

		if (round == 1) {
			/* hold the thread again, then send the commit step
			 * that waited (maildir_hold) behind the open step */
			blocker_start(&b, &core0_sleeping);
			maildir_hold(md, false);
			CHECK(maildir_poll(md, &c, 1) == 0);
			CHECK(workers_in_flight(pool, 0) == 1);
		}
		__atomic_store_n(&core0_sleeping, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		CHECK(!workers_pending(pool, 0)); /* the step is held */
		r = poll(&pf, 1, 5000);
		__atomic_store_n(&core0_sleeping, 0, __ATOMIC_RELAXED);
		if (r == 1 && (pf.revents & POLLIN))
			woken++;
		else
			fprintf(stderr, "core 0 not woken by the Maildir "
					"step (round %d, poll %d)\n",
				round, r);
		(void)!read(efd, &v, sizeof(v));
		/* the step is back; core 1's job went to core 1 */
		for (int i = 0; i < 5000 && !workers_pending(pool, 0); i++)
			usleep(1000);
		maildir_hold(md, true); /* round 1 sends the commit step */
		CHECK(workers_poll(pool, 0, 64) >= 1);
		got = (int)maildir_poll(md, &c, 1);
		workers_poll(pool, 1, 64);
	}
	CHECK(woken == 2);
	CHECK(got == 1 && c.job == j && c.status == 0);
	CHECK(count_dir(root, "new") == 1);
	md_end(md);
	close(efd);
	rm_rf(root);
}

int main(void)
{
	setenv("TZ", "UTC0", 1);
	tzset();
	snprintf(base, sizeof(base), "/tmp/mxg-maildir-XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_deliver();
	test_abort_and_limits();
	test_header_injection_and_crlf();
	test_many_workers();
	test_io_error();
	test_abort_cancels_step();
	test_completion_wakes_core();
	rm_rf(base);
	printf("maildir: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
