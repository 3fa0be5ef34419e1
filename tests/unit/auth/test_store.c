/*
 * test_store.c - auth/store.h and the password-check job of auth/jobs.h:
 * yescrypt and SHA-512 crypt hashes verified through crypt_r (right and
 * wrong passwords), an unknown user failing after the same work, a
 * missing store answering TEMPFAIL, load errors with FILE:LINE (weak
 * hash, no ':', bad login, duplicate user, missing file) and a reload
 * that replaces the users. Then the jobs on a real worker pool: done()
 * on the owning core with the result, and a cancelled job handed back
 * through drop() with its password wiped (ASan sees any leak).
 */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jobs.h"
#include "auth/store.h"
#include "check.h"
#include "dataplane/workers/workers.h"

static char dir[] = "/tmp/test_store.XXXXXX";

static const char *hash_of(const char *prefix, unsigned long cost,
			   const char *pw)
{
	static char out[2][AUTH_MAX_HASH];
	static int k;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	memset(&cd, 0, sizeof(cd));
	if (!crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)))
		return "*";
	k ^= 1;
	snprintf(out[k], sizeof(out[k]), "%s", crypt_r(pw, salt, &cd));
	return out[k];
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_check(void)
{
	const char *y = hash_of("$y$", 0, "correct horse");
	char y_copy[AUTH_MAX_HASH];

	snprintf(y_copy, sizeof(y_copy), "%s", y);
	const char *s = hash_of("$6$", 5000, "battery staple");

	CHECK(strncmp(y_copy, "$y$", 3) == 0 && strncmp(s, "$6$", 3) == 0);
	CHECK(auth_store_check(y_copy, "correct horse") == AUTH_RESULT_OK);
	CHECK(auth_store_check(y_copy, "correct horsE") == AUTH_RESULT_FAIL);
	CHECK(auth_store_check(y_copy, "") == AUTH_RESULT_FAIL);
	CHECK(auth_store_check(s, "battery staple") == AUTH_RESULT_OK);
	CHECK(auth_store_check(s, "battery stapl") == AUTH_RESULT_FAIL);
	/* a hash libcrypt cannot compute: the store's fault, 454 */
	CHECK(auth_store_check("$y$!!!$bad", "x") == AUTH_RESULT_TEMPFAIL);
	CHECK(auth_hash_strong(y_copy) && auth_hash_strong(s));
	CHECK(!auth_hash_strong("$1$abc$def") && !auth_hash_strong("abCDef"));
}

static void test_load(void)
{
	char err[2048], text[2048];
	char y[AUTH_MAX_HASH];

	snprintf(y, sizeof(y), "%s", hash_of("$y$", 0, "pw-alice"));
	const char *s6 = hash_of("$6$", 5000, "pw-bob");

	snprintf(text, sizeof(text),
		 "# users\n\nalice:%s\n  bob:%s:extra:fields\n", y, s6);
	struct auth_store *st =
		auth_store_load(write_file("users", text), err, sizeof(err));

	CHECK(st != NULL && err[0] == 0);
	if (st == NULL) {
		fprintf(stderr, "%s", err);
		return;
	}
	CHECK(auth_store_count(st) == 2);
	CHECK(auth_store_lookup(st, "alice") &&
	      strcmp(auth_store_lookup(st, "alice"), y) == 0);
	CHECK(auth_store_lookup(st, "bob") &&
	      strcmp(auth_store_lookup(st, "bob"), s6) == 0);
	CHECK(auth_store_lookup(st, "Alice") == NULL);
	CHECK(auth_store_lookup(st, "carol") == NULL);
	/* the dummy is the store's yescrypt hash */
	CHECK(strncmp(auth_store_dummy_hash(st), "$y$", 3) == 0);
	CHECK(auth_store_check(auth_store_lookup(st, "bob"), "pw-bob") ==
	      AUTH_RESULT_OK);

	/* a bad file: every error with its line, nothing loaded */
	snprintf(text, sizeof(text),
		 "alice:%s\n"			   /* 1 ok */
		 "bob:$1$salt$md5hash0123456789\n" /* 2 weak */
		 "carol\n"			   /* 3 no ':' */
		 "da ve:%s\n"			   /* 4 bad login */
		 "alice:%s\n"			   /* 5 duplicate */
		 "erin:plaintext\n",		   /* 6 not a hash */
		 y, y, y);
	struct auth_store *bad =
		auth_store_load(write_file("bad", text), err, sizeof(err));

	CHECK(bad == NULL);
	CHECK(strstr(err, "/bad:2: user \"bob\": not a strong password hash"));
	CHECK(strstr(err, "/bad:3: no ':'"));
	CHECK(strstr(err, "/bad:4: bad login"));
	CHECK(strstr(err, "/bad:5: user \"alice\" already defined at line 1"));
	CHECK(strstr(err, "/bad:6: user \"erin\""));
	if (bad == NULL && failures)
		fprintf(stderr, "errors were:\n%s", err);
	CHECK(auth_store_load("/nonexistent/users", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/users: No such file"));

	/* reload: a new store replaces the old one (old kept on error) */
	snprintf(text, sizeof(text), "carol:%s\n", y);
	struct auth_store *st2 =
		auth_store_load(write_file("users", text), err, sizeof(err));

	CHECK(st2 && auth_store_count(st2) == 1 &&
	      auth_store_lookup(st2, "carol") &&
	      !auth_store_lookup(st2, "alice"));
	CHECK(auth_store_lookup(st, "alice") != NULL); /* old untouched */
	auth_store_free(st);
	auth_store_free(st2);
	/* empty file: a valid store without users (every login fails) */
	st = auth_store_load(write_file("empty", "# none\n"), err, sizeof(err));
	CHECK(st && auth_store_count(st) == 0 &&
	      auth_store_lookup(st, "x") == NULL);
	auth_store_free(st);
}

/* ---- jobs on a real pool ---- */
static int dones, drops;
static enum auth_result last;
static void on_done(struct worker_job *wj)
{
	struct auth_verify_job *j = (struct auth_verify_job *)wj;

	CHECK(j->password[0] == 0); /* work() wiped it */
	last = j->result;
	dones++;
}
static void on_drop(struct worker_job *wj)
{
	struct auth_verify_job *j = (struct auth_verify_job *)wj;

	auth_verify_job_wipe(j);
	CHECK(j->password[0] == 0 && j->hash[0] == 0);
	drops++;
	free(j);
}

static void run_one(struct worker_pool *p, struct auth_verify_job *j)
{
	CHECK(workers_submit(p, 0, &j->wj) == 0);
	while (workers_poll(p, 0, 8) == 0)
		usleep(1000);
}

static void test_jobs(void)
{
	char err[512], text[512];

	snprintf(text, sizeof(text), "alice:%s\n",
		 hash_of("$y$", 0, "pw-alice"));
	struct auth_store *st =
		auth_store_load(write_file("users", text), err, sizeof(err));
	struct workers_config wc;
	int e = 0;

	workers_config_defaults(&wc);
	wc.threads = 1;
	wc.n_cores = 1;
	wc.ring_size = 16;
	struct worker_pool *p = workers_create(&wc, &e);

	CHECK(st && p);
	if (!st || !p)
		return;
	workers_attach_core(p, 0, -1, NULL);
	struct auth_verify_job j;

	auth_verify_job_prepare(&j, st, "alice", "pw-alice", 8, on_done,
				on_drop, NULL);
	run_one(p, &j);
	CHECK(dones == 1 && last == AUTH_RESULT_OK);
	auth_verify_job_prepare(&j, st, "alice", "pw-alicE", 8, on_done,
				on_drop, NULL);
	run_one(p, &j);
	CHECK(dones == 2 && last == AUTH_RESULT_FAIL);
	/* unknown user, even with the dummy's password: FAIL */
	auth_verify_job_prepare(&j, st, "mallory", "pw-alice", 8, on_done,
				on_drop, NULL);
	CHECK(!j.known && strncmp(j.hash, "$y$", 3) == 0);
	run_one(p, &j);
	CHECK(dones == 3 && last == AUTH_RESULT_FAIL);
	/* no store: TEMPFAIL */
	auth_verify_job_prepare(&j, NULL, "alice", "pw-alice", 8, on_done,
				on_drop, NULL);
	run_one(p, &j);
	CHECK(dones == 4 && last == AUTH_RESULT_TEMPFAIL);
	/* the connection died: cancelled jobs come back through drop() */
	for (int i = 0; i < 4; i++) {
		struct auth_verify_job *c = malloc(sizeof(*c));

		auth_verify_job_prepare(c, st, "alice", "pw-alice", 8, on_done,
					on_drop, NULL);
		CHECK(workers_submit(p, 0, &c->wj) == 0);
		workers_cancel(&c->wj);
	}
	while (drops < 4)
		if (workers_poll(p, 0, 8) == 0)
			usleep(1000);
	CHECK(dones == 4 && drops == 4);
	CHECK(workers_in_flight(p, 0) == 0);
	workers_destroy(p);
	auth_store_free(st);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_check();
	test_load();
	test_jobs();
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_summary("test_store");
}
