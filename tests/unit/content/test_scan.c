/*
 * test_scan.c - content/scan.h: rules hit and miss on the envelope,
 * headers (folded, encoded words, named), the raw body, base64 and
 * quoted-printable parts, nested multiparts and attachment names
 * (Content-Disposition filename=, RFC 2231 filename*=, Content-Type
 * name=); priorities; and every verdict equal whatever the split:
 * whole, byte by byte, at every single offset, and random splits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/check.h"
#include "content/scan.h"

static const char *rules_text =
	"helo /^evil\\.example$/i reject 5.7.1 bad helo\n"           /* 0 */
	"mail /@spam\\.test>?$/ tempfail 4.7.1 later\n"             /* 1 */
	"header:Subject /\\bbuy now\\b/i reject 5.7.1 subject spam\n"/* 2 */
	"header /^X-Mailer: BadMailer/ log bad mailer\n"            /* 3 */
	"body /RAW-MARKER-[0-9]+/ log raw marker\n"                 /* 4 */
	"mime /decoded secret phrase/i reject 5.7.1 secret\n"       /* 5 */
	"attachment-name /\\.exe$/i quarantine exe attachment\n"    /* 6 */
	"header:Subject /tag me/ header X-Tagged: yes\n"            /* 7 */
	"body /low priority/ priority=200 discard\n"                /* 8 */
	"body /high priority/ priority=1 tempfail try later\n"      /* 9 */
	"mime /plain words/ log qp words\n";                        /* 10 */

static struct content_ruleset *rs;
static void *scratch;

static bool has_hit(const struct content_verdict *v, int rule)
{
	for (unsigned i = 0; i < v->n_hits; i++)
		if (v->hits[i] == rule)
			return true;
	return false;
}

/* scan msg split at the offsets in cuts[0..ncuts) (ascending) */
static struct content_verdict scan_split(const char *msg, size_t n,
					 const size_t *cuts, size_t ncuts,
					 struct content_scan_stats *st)
{
	static struct content_scan s;
	struct content_verdict v;
	size_t at = 0;

	content_scan_begin(&s, rs, scratch, 0);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		content_scan_feed(&s, msg + at, end - at);
		at = end;
	}
	if (st)
		*st = s.stats;
	content_scan_end(&s, &v);
	return v;
}

static struct content_verdict scan(const char *msg)
{
	return scan_split(msg, strlen(msg), NULL, 0, NULL);
}

static bool same(const struct content_verdict *a,
		 const struct content_verdict *b)
{
	if (a->rule != b->rule || a->n_hits != b->n_hits)
		return false;
	for (unsigned i = 0; i < a->n_hits; i++)
		if (!has_hit(b, a->hits[i]))
			return false;
	return true;
}

/* the verdict of msg is the same whole, byte by byte, split at each
 * single offset and in 200 random splits */
static void check_splits(const char *msg, int line)
{
	size_t n = strlen(msg), *cuts = calloc(n + 1, sizeof(*cuts));
	struct content_verdict whole = scan(msg), v;
	bool ok = true;

	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	v = scan_split(msg, n, cuts, n ? n - 1 : 0, NULL);
	ok &= same(&whole, &v);
	for (size_t i = 1; i < n && ok; i++) {
		size_t c = i;
		v = scan_split(msg, n, &c, 1, NULL);
		if (!same(&whole, &v)) {
			fprintf(stderr, "split at %zu differs\n", i);
			ok = false;
		}
	}
	srand(42);
	for (int r = 0; r < 200 && ok; r++) {
		size_t k = 0;
		for (size_t i = 1; i < n; i++)
			if (rand() % 7 == 0)
				cuts[k++] = i;
		v = scan_split(msg, n, cuts, k, NULL);
		ok &= same(&whole, &v);
	}
	checks++;
	if (!ok) {
		fprintf(stderr, "FAIL line %d: verdict depends on the split\n",
			line);
		failures++;
	}
	free(cuts);
}

static void test_envelope(void)
{
	struct content_verdict v;

	content_verdict_init(&v);
	CHECK(content_scan_envelope(rs, scratch, CONTENT_WHERE_HELO,
				    "EVIL.example", 12, &v) == 0);
	CHECK(v.rule == 0 && content_verdict_action(rs, &v) == CONTENT_ACT_REJECT);
	content_verdict_init(&v);
	content_scan_envelope(rs, scratch, CONTENT_WHERE_HELO, "good.example",
			      12, &v);
	CHECK(v.rule == -1 && v.n_hits == 0);
	content_scan_envelope(rs, scratch, CONTENT_WHERE_MAIL, "<a@spam.test>",
			      13, &v);
	CHECK(v.rule == 1);
	CHECK(content_scan_envelope(rs, scratch, CONTENT_WHERE_BODY, "x", 1,
				    &v) < 0);
}

#define H "From: a@b\r\nTo: c@d\r\n"

static void test_headers(void)
{
	struct content_verdict v;

	v = scan(H "Subject: please buy now!\r\n\r\nhello\r\n");
	CHECK(v.rule == 2);
	/* folded */
	v = scan(H "Subject: please buy\r\n now!\r\n\r\nhello\r\n");
	CHECK(v.rule == 2);
	/* encoded word, B and Q */
	v = scan(H "Subject: =?utf-8?B?YnV5IG5vdw==?=\r\n\r\nx\r\n");
	CHECK(v.rule == 2);
	v = scan(H "Subject: =?iso-8859-1?Q?buy_now?=\r\n\r\nx\r\n");
	CHECK(v.rule == 2);
	/* two adjacent encoded words: the space between them goes */
	v = scan(H "Subject: =?utf-8?Q?buy_?= =?utf-8?Q?now?=\r\n\r\nx\r\n");
	CHECK(v.rule == 2);
	/* the named rule is for Subject only */
	v = scan(H "X-Subject: buy now\r\nComments: buy now\r\n\r\nx\r\n");
	CHECK(v.rule == -1 && v.n_hits == 0);
	/* in the body it is no header */
	v = scan(H "\r\nSubject: buy now\r\n");
	CHECK(v.rule == -1);
	/* whole-line header rule, case of the name matters (no i flag) */
	v = scan(H "X-Mailer: BadMailer 1.0\r\n\r\nx\r\n");
	CHECK(v.rule == -1 && has_hit(&v, 3));
	v = scan(H "Subject: tag me\r\n\r\nx\r\n");
	CHECK(v.rule == -1 && has_hit(&v, 7) && v.n_hits == 1);
	/* header block only, no body */
	v = scan(H "Subject: buy now");
	CHECK(v.rule == 2);
	check_splits(H "Subject: please buy\r\n now!\r\n\r\nhello\r\n", __LINE__);
	check_splits(H "Subject: =?utf-8?B?YnV5IG5vdw==?=\r\n\r\nx\r\n", __LINE__);
}

static void test_body(void)
{
	struct content_verdict v;

	v = scan(H "\r\nline\r\nRAW-MARKER-123 here\r\n");
	CHECK(v.rule == -1 && has_hit(&v, 4));
	v = scan(H "\r\nRAW-MARKER-\r\n");
	CHECK(v.n_hits == 0);
	/* priorities: 9 (priority 1) beats 8 (priority 200) whatever
	 * comes first */
	v = scan(H "\r\nlow priority\r\nhigh priority\r\n");
	CHECK(v.rule == 9);
	v = scan(H "\r\nhigh priority\r\nlow priority\r\n");
	CHECK(v.rule == 9);
	/* equal priority: the earlier rule wins: subject (2) over mime (5) */
	v = scan(H "Subject: buy now\r\n\r\ndecoded secret phrase\r\n");
	CHECK(v.rule == 2 && has_hit(&v, 5));
	/* the raw-body marker in a header is no body hit */
	v = scan(H "X-A: RAW-MARKER-1\r\n\r\nx\r\n");
	CHECK(v.n_hits == 0);
	check_splits(H "\r\nsome text RAW-MARKER-98765 more\r\n", __LINE__);
	check_splits(H "\r\nlow priority\r\nhigh priority\r\n", __LINE__);
}

/* "decoded secret phrase" in base64 (with a line break in the middle) */
#define B64_SECRET "ZGVjb2RlZCBzZWNy\r\nZXQgcGhyYXNl\r\n"

static const char *multipart_msg =
	H "Subject: hi\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"preamble decoded secret phrase (not scanned)\r\n"
	"--outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"nothing here\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative;\r\n"
	" boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	B64_SECRET
	"--inner--\r\n"
	"--outer\r\n"
	"Content-Type: application/octet-stream; name=\"x.bin\"\r\n"
	"Content-Disposition: attachment;\r\n"
	"\tfilename=\"setup.EXE\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"TVqQAAMAAAAEAAAA\r\n"
	"--outer--\r\n"
	"epilogue\r\n";

static void test_mime(void)
{
	struct content_verdict v;
	struct content_scan_stats st;

	/* the phrase only exists after base64 decoding */
	CHECK(strstr(multipart_msg, "decoded secret phrase (not") != NULL);
	v = scan_split(multipart_msg, strlen(multipart_msg), NULL, 0, &st);
	CHECK(has_hit(&v, 5) && has_hit(&v, 6));
	CHECK(v.rule == 5); /* both priority 100: the earlier rule */
	CHECK(st.mime_malformed == 0 && st.mime_too_deep == 0);
	check_splits(multipart_msg, __LINE__);

	/* the same with the secret in the preamble only: no mime hit */
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "decoded secret phrase\r\n--b\r\n\r\nplain\r\n--b--\r\n");
	CHECK(v.n_hits == 0);
	/* base64 split across lines and chunks, top-level part */
	v = scan(H "Content-Transfer-Encoding: base64\r\n\r\n" B64_SECRET);
	CHECK(v.rule == 5);
	/* non-text part: decoded but not scanned by mime rules */
	v = scan(H "Content-Type: image/png\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\n" B64_SECRET);
	CHECK(v.rule == -1);
	/* quoted-printable with a soft line break inside the phrase */
	const char *qp = H "Content-Type: text/plain\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"some plain=20wo=\r\nrds and =64ecoded secret=\r\n phrase\r\n";
	v = scan(qp);
	CHECK(has_hit(&v, 10) && v.rule == 5);
	check_splits(qp, __LINE__);
	/* attachment names: RFC 2231, Content-Type name=, encoded word */
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "Content-Disposition: attachment; filename*=utf-8''a%2Eexe\r\n"
		 "\r\nx\r\n--b--\r\n");
	CHECK(v.rule == 6);
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "Content-Type: application/x; name=run.exe\r\n\r\nx\r\n--b--\r\n");
	CHECK(v.rule == 6);
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "Content-Type: application/x; name=\"=?utf-8?B?cnVuLmV4ZQ==?=\"\r\n"
		 "\r\nx\r\n--b--\r\n");
	CHECK(v.rule == 6);
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "Content-Disposition: attachment; filename=run.exe.txt\r\n"
		 "\r\nx\r\n--b--\r\n");
	CHECK(v.rule == -1);
	/* a boundary-like line of another boundary is body text */
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "Content-Type: text/plain\r\n\r\n--bx\r\ndecoded secret phrase\r\n"
		 "--b--\r\n");
	CHECK(v.rule == 5);
	/* text after the closing boundary (epilogue) is not a part */
	v = scan(H "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		 "\r\nx\r\n--b--\r\ndecoded secret phrase\r\n");
	CHECK(v.rule == -1);
	/* multipart without a boundary: counted, nothing scanned */
	v = scan_split(H "Content-Type: multipart/mixed\r\n\r\n"
		       "decoded secret phrase\r\n", 0, NULL, 0, &st);
	(void)v;
	{
		const char *m = H "Content-Type: multipart/mixed\r\n\r\n"
			"decoded secret phrase\r\n";
		v = scan_split(m, strlen(m), NULL, 0, &st);
		CHECK(st.mime_malformed == 1 && v.rule == -1);
	}
}

static void test_deep(void)
{
	/* 12 nested multiparts: the 9th and deeper are not followed */
	char msg[8192];
	size_t o = (size_t)snprintf(msg, sizeof(msg), "%s", H);
	struct content_scan_stats st;
	struct content_verdict v;

	for (int i = 0; i < 12; i++)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o,
				      "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
				      "--b%d\r\n", i, i);
	o += (size_t)snprintf(msg + o, sizeof(msg) - o,
			      "Content-Type: text/plain\r\n\r\ndecoded secret phrase\r\n");
	v = scan_split(msg, o, NULL, 0, &st);
	CHECK(st.mime_too_deep == 1 && v.rule == -1);
	/* 8 levels: followed */
	o = (size_t)snprintf(msg, sizeof(msg), "%s", H);
	for (int i = 0; i < 8; i++)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o,
				      "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
				      "--b%d\r\n", i, i);
	o += (size_t)snprintf(msg + o, sizeof(msg) - o,
			      "Content-Type: text/plain\r\n\r\ndecoded secret phrase\r\n");
	v = scan_split(msg, o, NULL, 0, &st);
	CHECK(st.mime_too_deep == 0 && v.rule == 5);
	check_splits(msg, __LINE__);
}

static void test_limits(void)
{
	static struct content_scan s;
	struct content_verdict v;
	const char *m = H "\r\n0123456789 RAW-MARKER-1\r\n";

	/* the marker lies beyond the scan limit: not seen, truncated */
	content_scan_begin(&s, rs, scratch, strlen(H) + 8);
	content_scan_feed(&s, m, strlen(m));
	CHECK(s.stats.truncated);
	content_scan_end(&s, &v);
	CHECK(v.n_hits == 0);
	/* a very long header is cut, not overflowed; a long body line
	 * still matches across the line-buffer pieces */
	size_t big = 20000;
	char *msg = malloc(big + 200);
	if (msg == NULL) {
		CHECK(msg != NULL);
		return;
	}
	size_t o = (size_t)sprintf(msg, "X-Long: ");
	memset(msg + o, 'a', 6000);
	o += 6000;
	o += (size_t)sprintf(msg + o, "\r\nContent-Type: text/plain\r\n\r\n");
	memset(msg + o, 'b', 3000);
	o += 3000;
	o += (size_t)sprintf(msg + o, "decoded secret phrase\r\n");
	struct content_scan_stats st;
	v = scan_split(msg, o, NULL, 0, &st);
	CHECK(st.headers_cut == 1 && v.rule == 5);
	free(msg);
	/* abort releases the streams (ASan would see a leak otherwise) */
	content_scan_begin(&s, rs, scratch, 0);
	content_scan_feed(&s, multipart_msg, strlen(multipart_msg) / 2);
	CHECK(s.body_stream != NULL);
	content_scan_abort(&s);
	CHECK(s.body_stream == NULL && s.part_stream == NULL);
}

static void test_words(void)
{
	char out[64];

	CHECK(content_decode_words("a =?x?Q?b=41?= c", 16, out, sizeof(out)) == 6 &&
	      strcmp(out, "a bA c") == 0);
	CHECK(content_decode_words("=?x?B?", 6, out, sizeof(out)) == 6);
	CHECK(content_decode_words("=?x?Z?a?=", 9, out, sizeof(out)) == 9);
	/* output bounded */
	CHECK(content_decode_words("=?x?Q?abcdef?=", 14, out, 4) == 3 &&
	      strcmp(out, "abc") == 0);
}

int main(void)
{
	char err[512];

	rs = content_ruleset_parse("t", "t.rules", rules_text, err,
				   sizeof(err));
	if (rs == NULL) {
		fprintf(stderr, "rules: %s\n", err);
		return 1;
	}
	if (content_scratch_grow(rs, &scratch) != 0)
		return 1;
	test_envelope();
	test_headers();
	test_body();
	test_mime();
	test_deep();
	test_limits();
	test_words();
	content_scratch_free(scratch);
	content_ruleset_free(rs);
	return check_summary("content_scan");
}
