/*
 * test_maildir.c - the Maildir next hop (dataplane/relay/maildir.h) on
 * real files in a temporary directory: delivery into new/ with the
 * Received: header and un-stuffed LF body, fsyncs counted, abort leaves
 * nothing, bounded job slots and chunk pool, size limit, header injection,
 * several workers, an I/O error reported as a failed completion.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	maildir_destroy(md);
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
	for (int i = 0; i < 100 && count_dir(root, "tmp") == 0; i++)
		usleep(1000);
	maildir_destroy(md);
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
	maildir_destroy(md);
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
	cfg.workers = 3;
	cfg.max_jobs = 32;
	cfg.chunk_size = 128;
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

			while (maildir_append(md, jobs[i], l, (size_t)n) != n)
				usleep(100);
		}
	for (int i = 0; i < 20; i++)
		maildir_commit(md, jobs[i]);
	for (int t = 0; t < 5000 && done < 20; t++) {
		unsigned n = maildir_poll(md, c, 8);

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
	maildir_destroy(md);
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
	maildir_destroy(md);
	rm_rf(root);

	/* A path that cannot be created. */
	cfg.path = "/proc/no/such/Maildir";
	CHECK(maildir_create(&cfg, &err) == NULL && err < 0);
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
	rm_rf(base);
	printf("maildir: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
