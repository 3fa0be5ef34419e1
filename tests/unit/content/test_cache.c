/*
 * test_cache.c - content/cache.h through content_ruleset_load_cached():
 * a second load of an unchanged set takes every database from the cache
 * (and scans the same); a corrupt or truncated file is ignored,
 * recompiled and rewritten; a changed rule recompiles only its class.
 * Prints the compile and cache-load times of 100 rules, or of 1,000 with
 * MXG_CACHE_1000=1 in the environment (the figure in docs/benchmarks.md;
 * never asserted; 1,000 take seconds to compile, too long for CI).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../auth/check.h"
#include "content/rules.h"
#include "content/scan.h"

static char err[1024], dir[512], cache[600], rules[600];

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* k x 10 rules: 4.5k body literals, 4.5k body regexes, k MAIL regexes
 * (two classes: body in stream mode, mail in block mode); body_tag
 * changes the last body rule. The MAIL rule "spam7" is rule 9k + 7. */
static void write_rules(int k, const char *body_tag)
{
	FILE *f = fopen(rules, "w");

	for (int i = 0; i < 9 * k / 2; i++)
		fprintf(f, "body /spam phrase %04d/il log lit\n", i);
	for (int i = 0; i < 9 * k / 2 - 1; i++)
		fprintf(f, "body /buy[ -]?now-%d\\d{2,4}[a-z]+/i log re\n", i);
	fprintf(f, "body /%s/ log last\n", body_tag);
	for (int i = 0; i < k; i++)
		fprintf(f, "mail /^spam%d[a-z]*@example\\.(net|org)$/i reject "
			"no %d\n", i, i);
	fclose(f);
}

static struct content_ruleset *load(double *ms)
{
	double t0 = now_ms();
	struct content_ruleset *rs =
		content_ruleset_load_cached("t", rules, cache, err, sizeof(err));

	*ms = now_ms() - t0;
	if (rs == NULL)
		fprintf(stderr, "load: %s\n", err);
	return rs;
}

/* the MAIL class scans the same whether compiled or loaded */
static int mail_rule(const struct content_ruleset *rs, const char *addr)
{
	void *scratch = NULL;
	struct content_verdict v;

	if (content_scratch_grow(rs, &scratch) != 0)
		return -2;
	content_verdict_init(&v);
	content_scan_envelope(rs, scratch, CONTENT_WHERE_MAIL, addr,
			      strlen(addr), &v);
	content_scratch_free(scratch);
	return v.rule;
}

static unsigned n_files(void)
{
	DIR *d = opendir(cache);
	struct dirent *e;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".hsdb") != NULL)
			n++;
	closedir(d);
	return n;
}

/* flips one octet in the middle of every cache file (or cuts them) */
static void damage(bool truncate_them)
{
	DIR *d = opendir(cache);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[1200];
		FILE *f;
		long sz;

		if (strstr(e->d_name, ".hsdb") == NULL)
			continue;
		snprintf(p, sizeof(p), "%s/%s", cache, e->d_name);
		if (truncate_them) {
			CHECK(truncate(p, 100) == 0);
			continue;
		}
		f = fopen(p, "r+b");
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		fseek(f, sz / 2, SEEK_SET);
		int c = fgetc(f);
		fseek(f, sz / 2, SEEK_SET);
		fputc(c ^ 0x5a, f);
		fclose(f);
	}
	if (d)
		closedir(d);
}

int main(void)
{
	const char *tmp = getenv("TEST_TMPDIR");
	struct content_ruleset *rs;
	double t_compile, t_load, t;

	snprintf(dir, sizeof(dir), "%s/mxg-cache-%d", tmp ? tmp : "/tmp",
		 (int)getpid());
	mkdir(dir, 0700);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(rules, sizeof(rules), "%s/r.rules", dir);
	int k = getenv("MXG_CACHE_1000") ? 100 : 10;

	write_rules(k, "final marker");

	/* first load: compiled, stored */
	rs = load(&t_compile);
	CHECK(rs != NULL && rs->n_rules == 10u * (unsigned)k);
	if (rs == NULL)
		return check_summary("content_cache");
	CHECK(rs->compiled == 2 && rs->cache_loaded == 0);
	CHECK(n_files() == 2);
	CHECK(mail_rule(rs, "spam7abc@example.org") == 9 * k + 7);
	content_ruleset_free(rs);

	/* unchanged: both databases from the cache, same verdicts */
	rs = load(&t_load);
	CHECK(rs != NULL && rs->compiled == 0 && rs->cache_loaded == 2);
	CHECK(rs && mail_rule(rs, "spam7abc@example.org") == 9 * k + 7);
	CHECK(rs && mail_rule(rs, "ham@example.org") == -1);
	content_ruleset_free(rs);
	printf("%d rules (%d body, %d mail): compile %.1f ms, load from the "
	       "cache %.1f ms\n", 10 * k, 9 * k, k, t_compile, t_load);

	/* the rest with 100 rules (compiles are slow) */
	if (k != 10) {
		write_rules(10, "final marker");
		rs = load(&t);
		CHECK(rs != NULL && rs->compiled == 2 && rs->cache_loaded == 0);
		content_ruleset_free(rs);
	}

	/* corrupt files: ignored (stderr), compiled, rewritten */
	damage(false);
	rs = load(&t);
	CHECK(rs != NULL && rs->compiled == 2 && rs->cache_loaded == 0);
	CHECK(rs && mail_rule(rs, "spam7abc@example.org") == 97);
	content_ruleset_free(rs);
	rs = load(&t);
	CHECK(rs != NULL && rs->cache_loaded == 2);
	content_ruleset_free(rs);
	damage(true);
	rs = load(&t);
	CHECK(rs != NULL && rs->compiled == 2 && rs->cache_loaded == 0);
	content_ruleset_free(rs);

	/* a changed body rule: the body class compiles, mail loads */
	write_rules(10, "another marker");
	rs = load(&t);
	CHECK(rs != NULL && rs->compiled == 1 && rs->cache_loaded == 1);
	CHECK(rs && mail_rule(rs, "spam7abc@example.org") == 97);
	content_ruleset_free(rs);
	CHECK(n_files() == (k == 10 ? 3u : 5u));

	/* no cache directory: always compiled */
	rs = content_ruleset_load_cached("t", rules, NULL, err, sizeof(err));
	CHECK(rs != NULL && rs->compiled == 2 && rs->cache_loaded == 0);
	content_ruleset_free(rs);

	{
		char cmd[1300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return check_summary("content_cache");
}
