/*
 * test_rules.c - content/rules.h: the rule file format (every target,
 * flag and action), priorities, includes (relative, missing, loops),
 * and bad files, each refused with its file:line and the reason
 * (Hyperscan's own message for patterns it cannot compile, such as
 * back-references).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../auth/check.h"
#include "content/rules.h"

static char err[512];

static struct content_ruleset *parse(const char *text)
{
	return content_ruleset_parse("t", "t.rules", text, err, sizeof(err));
}

/* the text must be refused with an error starting with want_prefix and
 * containing want_sub */
static void bad(const char *text, const char *want_prefix,
		const char *want_sub, int line)
{
	struct content_ruleset *rs = parse(text);

	checks++;
	if (rs != NULL || strncmp(err, want_prefix, strlen(want_prefix)) != 0 ||
	    strstr(err, want_sub) == NULL) {
		fprintf(stderr, "FAIL line %d: %s -> %s (want %s ...%s)\n",
			line, text, rs ? "accepted" : err, want_prefix,
			want_sub);
		failures++;
	}
	content_ruleset_free(rs);
}
#define BAD(t, p, s) bad(t, p, s, __LINE__)

static void test_good(void)
{
	struct content_ruleset *rs = parse(
		"# a comment\n"
		"\n"
		"   # indented comment\n"
		"helo /^bad\\.example$/i reject 5.7.1 go away\n"
		"mail /@spam\\.test>?$/ tempfail try later\n"
		"rcpt /^<?abuse@/ priority=5 discard\n"
		"header /^X-Spam: yes/im quarantine spam header\n"
		"header:Subject /viagra/i reject 5.7.0 no pills, thanks\n"
		"body /a.b/s log body hit\n"
		"mime /free money/i log X-Tag: money\r\n"
		"attachment-name /.exe$/il quarantine exe\n");
	CHECK(rs != NULL);
	if (rs == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK(rs->n_rules == 8);
	CHECK(rs->rules[0].where == CONTENT_WHERE_HELO);
	CHECK(rs->rules[0].line == 4);
	CHECK(strcmp(rs->rules[0].file, "t.rules") == 0);
	CHECK(strcmp(rs->rules[0].status, "5.7.1") == 0);
	CHECK(strcmp(rs->rules[0].text, "go away") == 0);
	CHECK(rs->rules[1].action == CONTENT_ACT_TEMPFAIL);
	CHECK(strcmp(rs->rules[1].status, "4.7.1") == 0);
	CHECK(strcmp(rs->rules[1].text, "try later") == 0);
	CHECK(rs->rules[2].priority == 5);
	CHECK(rs->rules[2].action == CONTENT_ACT_DISCARD);
	CHECK(rs->rules[2].text[0] == '\0');
	CHECK(rs->rules[4].where == CONTENT_WHERE_HEADER_NAMED);
	CHECK(strcmp(rs->rules[4].header_name, "Subject") == 0);
	CHECK(strcmp(rs->rules[4].status, "5.7.0") == 0);
	CHECK(strcmp(rs->rules[4].text, "no pills, thanks") == 0);
	CHECK(rs->rules[4].priority == CONTENT_DEFAULT_PRIORITY);
	CHECK(strcmp(rs->rules[6].text, "X-Tag: money") == 0);
	CHECK(rs->rules[6].line == 10);
	CHECK(rs->rules[7].where == CONTENT_WHERE_ATTACHMENT);
	for (int w = 0; w < CONTENT_WHERE_COUNT; w++)
		CHECK(rs->db[w] != NULL);
	void *scratch = NULL;
	CHECK(content_scratch_grow(rs, &scratch) == 0 && scratch != NULL);
	content_scratch_free(scratch);
	content_ruleset_free(rs);

	/* empty file: valid, no databases */
	rs = parse("# nothing\n");
	CHECK(rs != NULL && rs->n_rules == 0 && rs->db[CONTENT_WHERE_BODY] == NULL);
	content_ruleset_free(rs);
	/* an escaped slash inside the pattern */
	rs = parse("body /a\\/b/ log x\n");
	CHECK(rs != NULL && rs != NULL && strcmp(rs->rules[0].pattern, "a\\/b") == 0);
	content_ruleset_free(rs);
}

static void test_bad(void)
{
	BAD("bodyx /a/ reject x\n", "t.rules:1: ", "unknown rule target \"bodyx\"");
	BAD("\n\nbody a reject x\n", "t.rules:3: ", "expected /pattern/");
	BAD("body /abc reject x\n", "t.rules:1: ", "no closing '/'");
	BAD("body // reject x\n", "t.rules:1: ", "empty pattern");
	BAD("body /a/q reject x\n", "t.rules:1: ", "unknown pattern flag 'q'");
	BAD("body /a/\n", "t.rules:1: ", "missing action");
	BAD("body /a/ bounce x\n", "t.rules:1: ", "unknown action \"bounce\"");
	BAD("body /a/ reject\n", "t.rules:1: ", "reject needs a reply text");
	BAD("body /a/ reject 4.7.1 wrong class\n", "t.rules:1: ",
	    "bad enhanced status \"4.7.1\"");
	BAD("body /a/ tempfail 5.7.1 wrong class\n", "t.rules:1: ",
	    "bad enhanced status \"5.7.1\"");
	BAD("body /a/ reject 5.7.1.2 x\n", "t.rules:1: ", "bad enhanced status");
	BAD("body /a/ reject 5.7 x\n", "t.rules:1: ", "bad enhanced status");
	BAD("body /a/ priority=x reject x\n", "t.rules:1: ", "bad priority");
	BAD("body /a/ priority=-1 reject x\n", "t.rules:1: ", "bad priority");
	BAD("body /a/ priority= reject x\n", "t.rules:1: ", "bad priority");
	BAD("header /a/ header NoColon\n", "t.rules:1: ", "Name: value");
	BAD("header /a/ header Bad Name: v\n", "t.rules:1: ", "bad header name");
	BAD("body /a/ header X-A: b\n", "t.rules:1: ",
	    "header action only for helo, mail, rcpt and header rules");
	BAD("header: /a/ log\n", "t.rules:1: ", "bad header name");
	BAD("header:Sub:ject /a/ log\n", "t.rules:1: ", "bad header name");
	BAD("body /a/ log x\x01y\n", "t.rules:1: ", "control character");
	/* Hyperscan's own messages, quoted, at the right line */
	BAD("body /ok/ log\nbody /(a)\\1/ reject x\n", "t.rules:2: ",
	    "refused by Hyperscan: \"Back-references are unsupported");
	BAD("body /ok/ log\nmime /a(/ log\n", "t.rules:2: ",
	    "refused by Hyperscan: \"Missing close parenthesis");
	BAD("helo /a*/ log\n", "t.rules:1: ", "refused by Hyperscan");
	BAD("header /(?=a)b/ log\n", "t.rules:1: ", "refused by Hyperscan");
	BAD("rcpt /\\w+(?<!x)/ log\n", "t.rules:1: ", "refused by Hyperscan");
	/* includes */
	BAD("include\n", "t.rules:1: ", "include: expected one path");
	BAD("include \"a\n", "t.rules:1: ", "unterminated quoted path");
	BAD("include a b\n", "t.rules:1: ", "expected one path");
	BAD("include \"\"\n", "t.rules:1: ", "empty path");
	BAD("\ninclude /nonexistent/x.rules\n", "t.rules:2: ",
	    "include \"/nonexistent/x.rules\": No such file");
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

static void test_files(void)
{
	const char *dir = getenv("TEST_TMPDIR");
	char d[512], a[600], b[600], c[600], loop[600];
	struct content_ruleset *rs;

	snprintf(d, sizeof(d), "%s/rules-%d", dir ? dir : "/tmp", getpid());
	mkdir(d, 0700);
	snprintf(a, sizeof(a), "%s/a.rules", d);
	snprintf(b, sizeof(b), "%s/b.rules", d);
	snprintf(c, sizeof(c), "%s/c.rules", d);
	snprintf(loop, sizeof(loop), "%s/loop.rules", d);
	put(a, "body /one/ log\ninclude b.rules\nbody /three/ log\n");
	put(b, "# b\nbody /two/ reject x\n");
	put(c, "body /one/ log\ninclude \"b.rules\"\n\nbody /x(/ log\n");
	put(loop, "include loop.rules\n");
	/* a directory is not a rule file (fuzzer: "include ." sized it as
	 * LONG_MAX and asked malloc for 2^63 bytes) */
	{
		char dinc[600];

		snprintf(dinc, sizeof(dinc), "%s/dir.rules", d);
		put(dinc, "body /one/ log\ninclude .\n");
		rs = content_ruleset_load("d", dinc, err, sizeof(err));
		CHECK(rs == NULL && strstr(err, "not a regular file") != NULL);
		if (rs != NULL)
			content_ruleset_free(rs);
		unlink(dinc);
	}

	rs = content_ruleset_load("a", a, err, sizeof(err));
	CHECK(rs != NULL && rs->n_rules == 3);
	if (rs != NULL) {
		CHECK(strcmp(rs->rules[1].file, b) == 0 &&
		      rs->rules[1].line == 2);
		CHECK(strcmp(rs->rules[2].file, a) == 0 &&
		      rs->rules[2].line == 3);
		CHECK(rs->n_files == 2);
	}
	content_ruleset_free(rs);

	/* error in the includer after the include: its own file:line */
	rs = content_ruleset_load("c", c, err, sizeof(err));
	CHECK(rs == NULL);
	char want[700];
	snprintf(want, sizeof(want), "%s:4: ", c);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	/* error inside an included file: the included file:line */
	put(b, "# b\nbody /two/ reject x\nbody /(a)\\1/ log\n");
	rs = content_ruleset_load("a", a, err, sizeof(err));
	CHECK(rs == NULL);
	snprintf(want, sizeof(want), "%s:3: pattern /(a)\\1/ refused by "
		 "Hyperscan: \"", b);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	rs = content_ruleset_load("l", loop, err, sizeof(err));
	CHECK(rs == NULL && strstr(err, "nested deeper than 8") != NULL);

	snprintf(want, sizeof(want), "%s/none.rules", d);
	rs = content_ruleset_load("n", want, err, sizeof(err));
	CHECK(rs == NULL && strstr(err, "No such file") != NULL &&
	      strncmp(err, want, strlen(want)) == 0);

	unlink(a);
	unlink(b);
	unlink(c);
	unlink(loop);
	rmdir(d);
}

/* header_adds: set only by a header rule with the header action (the
 * gateway then looks for the end of each header block) */
static void test_header_adds(void)
{
	struct content_ruleset *rs;

	rs = parse("mail /a/ header X-A: b\nheader /b/ log\n");
	CHECK(rs != NULL && !rs->header_adds);
	content_ruleset_free(rs);
	rs = parse("header:Subject /b/ header X-B: c\n");
	CHECK(rs != NULL && rs->header_adds);
	content_ruleset_free(rs);
	rs = parse("header /b/ header X-B: c\n");
	CHECK(rs != NULL && rs->header_adds);
	content_ruleset_free(rs);
}

int main(void)
{
	test_good();
	test_header_adds();
	test_bad();
	test_files();
	if (failures)
		fprintf(stderr, "last error: %s\n", err);
	return check_summary("content_rules");
}
