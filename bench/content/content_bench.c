/*
 * content_bench.c - content scanning throughput on one core (issue 15):
 * the content/ scanner (Hyperscan, streaming, MIME parser) over a
 * generated corpus fed in 1,460-octet chunks (one TCP segment each),
 * with 0 (parser only), 100, 1,000 and 10,000 rules, raw body and
 * base64 MIME parts; and, on the same corpus and the same rules, PCRE2
 * (JIT) applied rule by rule to each line, the way Postfix's body_checks
 * work. Prints one JSON object.
 *
 * Rules: half literals (random 10-letter words, flag l), half regexes
 * (\bWORD[0-9]{2,5}[a-z]+ and (WORD|WORD)\s+[a-z]{3}WORD[0-9] shapes),
 * all caseless; none matches the corpus, so every rule runs to the end
 * (the worst case for a line-by-line engine).
 *
 * usage: content_bench [seconds-per-test] [max-rules]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

#include "content/scan.h"

#define MSG_SIZE (64 * 1024)
#define N_MSGS 64
#define CHUNK 1460

static const char *words[] = {
	"the", "mail", "gateway", "message", "server", "client", "delivery",
	"policy", "content", "report", "meeting", "tomorrow", "invoice",
	"please", "attached", "thanks", "regards", "project", "update",
	"schedule", "review", "budget", "team", "office", "customer"};

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* CPU time: the machine is shared */
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* body text: lines of words, ~72 columns, CRLF */
static size_t text(char *out, size_t n)
{
	size_t o = 0, col = 0;

	while (o + 20 < n) {
		const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		if (col + l > 72) {
			out[o++] = '\r';
			out[o++] = '\n';
			col = 0;
		}
		memcpy(out + o, w, l);
		o += l;
		col += l;
		out[o++] = ' ';
		col++;
	}
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

static const char *HDR =
	"From: <a@example.net>\r\nTo: <b@example.com>\r\nSubject: bench\r\n"
	"Message-ID: <x@bench>\r\n";

static char *make_raw(size_t *len)
{
	char *m = malloc(MSG_SIZE + 1024);
	size_t o = (size_t)sprintf(m, "%s\r\n", HDR);
	o += text(m + o, MSG_SIZE - o);
	*len = o;
	return m;
}

static char *make_mime(size_t *len)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *t = malloc(MSG_SIZE), *m = malloc(MSG_SIZE * 2);
	size_t tl = text(t, MSG_SIZE * 3 / 4 - 512), o, col = 0;

	o = (size_t)sprintf(m, "%sMIME-Version: 1.0\r\nContent-Type: "
			    "multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
			    "Content-Type: text/plain\r\n"
			    "Content-Transfer-Encoding: base64\r\n\r\n", HDR);
	for (size_t i = 0; i + 2 < tl; i += 3) {
		uint32_t v = ((uint32_t)(uint8_t)t[i] << 16) |
			     ((uint32_t)(uint8_t)t[i + 1] << 8) | (uint8_t)t[i + 2];
		m[o++] = b64[v >> 18];
		m[o++] = b64[(v >> 12) & 63];
		m[o++] = b64[(v >> 6) & 63];
		m[o++] = b64[v & 63];
		if ((col += 4) == 76) {
			m[o++] = '\r';
			m[o++] = '\n';
			col = 0;
		}
	}
	o += (size_t)sprintf(m + o, "\r\n--B--\r\n");
	free(t);
	*len = o;
	return m;
}

static void rword(char *w, int n)
{
	for (int i = 0; i < n; i++)
		w[i] = (char)('a' + rnd() % 26);
	w[n] = '\0';
}

/* rule i as "PATTERN" (regex source) and whether it is literal */
static void rule_pattern(unsigned i, char *out, size_t len, int *literal)
{
	char a[12], b[12], c[12];

	rword(a, 10);
	rword(b, 8);
	rword(c, 6);
	*literal = i % 2 == 0;
	if (*literal)
		snprintf(out, len, "%s", a);
	else if (i % 4 == 1)
		snprintf(out, len, "\\b%s[0-9]{2,5}[a-z]+", a);
	else
		snprintf(out, len, "(%s|%s)\\s+[a-z]{3}%s[0-9]", a, b, c);
}

static char *rule_file(unsigned n, const char *where)
{
	size_t cap = (size_t)n * 80 + 64, o = 0;
	char *t = malloc(cap), p[64];
	int lit;

	rng = 0x1234567ull;
	for (unsigned i = 0; i < n; i++) {
		rule_pattern(i, p, sizeof(p), &lit);
		o += (size_t)snprintf(t + o, cap - o, "%s /%s/i%s log r%u\n",
				      where, p, lit ? "l" : "", i);
	}
	t[o] = '\0';
	return t;
}

static double run_scan(const struct content_ruleset *rs, void *scratch,
		       char **msgs, size_t *lens, double secs, size_t *hits)
{
	static struct content_scan s;
	struct content_verdict v;
	double t0 = now(), t;
	uint64_t bytes = 0;

	do {
		for (int k = 0; k < N_MSGS; k++) {
			content_scan_begin(&s, rs, scratch, 0);
			for (size_t at = 0; at < lens[k]; at += CHUNK)
				content_scan_feed(&s, msgs[k] + at,
						  lens[k] - at < CHUNK ? lens[k] - at : CHUNK);
			content_scan_end(&s, &v);
			*hits += v.n_hits;
			bytes += lens[k];
		}
		t = now() - t0;
	} while (t < secs);
	return (double)bytes / t / 1e6;
}

#ifdef HAVE_PCRE2
/* Postfix body_checks: every line against every rule in turn */
static double run_pcre(unsigned n, char **msgs, size_t *lens, double secs,
		       size_t *hits)
{
	pcre2_code **re = calloc(n, sizeof(*re));
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	char p[64];
	int lit, err;
	PCRE2_SIZE off;
	double t0, t;
	uint64_t bytes = 0;

	rng = 0x1234567ull;
	for (unsigned i = 0; i < n; i++) {
		rule_pattern(i, p, sizeof(p), &lit);
		re[i] = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
				      PCRE2_CASELESS | (lit ? PCRE2_LITERAL : 0),
				      &err, &off, NULL);
		pcre2_jit_compile(re[i], PCRE2_JIT_COMPLETE);
	}
	t0 = now();
	do {
		for (int k = 0; k < N_MSGS; k++) {
			const char *m = msgs[k], *e = m + lens[k];
			while (m < e) {
				const char *nl = memchr(m, '\n', (size_t)(e - m));
				size_t l = nl ? (size_t)(nl - m) : (size_t)(e - m);
				for (unsigned i = 0; i < n; i++)
					if (pcre2_jit_match(re[i], (PCRE2_SPTR)m, l, 0, 0,
							    md, NULL) >= 0) {
						(*hits)++;
						break; /* first match wins */
					}
				m += l + 1;
			}
			bytes += lens[k];
			if (now() - t0 >= secs)
				break;
		}
		t = now() - t0;
	} while (t < secs);
	for (unsigned i = 0; i < n; i++)
		pcre2_code_free(re[i]);
	free(re);
	pcre2_match_data_free(md);
	return (double)bytes / t / 1e6;
}
#endif

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	unsigned maxr = argc > 2 ? (unsigned)atoi(argv[2]) : 10000;
	static const unsigned counts[] = {0, 100, 1000, 10000};
	char *raw[N_MSGS], *mime[N_MSGS];
	size_t rawl[N_MSGS], mimel[N_MSGS], hits = 0;
	char err[512];
	int first = 1;

	for (int k = 0; k < N_MSGS; k++) {
		raw[k] = make_raw(&rawl[k]);
		mime[k] = make_mime(&mimel[k]);
	}
	printf("{\n  \"chunk_octets\": %d, \"message_octets\": %zu, "
	       "\"mime_message_octets\": %zu,\n  \"rule_mix\": \"50%% literals, "
	       "50%% regexes (\\\\bWORD[0-9]{2,5}[a-z]+, (A|B)\\\\s+[a-z]{3}C[0-9]), "
	       "caseless, none matching\",\n  \"results\": [\n",
	       CHUNK, rawl[0], mimel[0]);
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned n = counts[c];
		if (n > maxr)
			break;
		for (int mode = 0; mode < 2; mode++) {
			char *rt = rule_file(n, mode ? "mime" : "body");
			double t0 = now();
			struct content_ruleset *rs =
				content_ruleset_parse("b", "bench.rules", rt, err,
						      sizeof(err));
			double compile = now() - t0;
			void *scratch = NULL;
			free(rt);
			if (rs == NULL) {
				fprintf(stderr, "rules: %s\n", err);
				return 1;
			}
			if (content_scratch_grow(rs, &scratch) < 0 && n > 0)
				return 1;
			double mbs = run_scan(rs, scratch, mode ? mime : raw,
					      mode ? mimel : rawl, secs, &hits);
			double pmbs = -1;
#ifdef HAVE_PCRE2
			if (mode == 0 && n > 0)
				pmbs = run_pcre(n, raw, rawl, secs, &hits);
#endif
			printf("%s    {\"rules\": %u, \"input\": \"%s\", "
			       "\"hyperscan_mb_per_s\": %.1f, \"compile_s\": %.3f, "
			       "\"pcre2_per_line_mb_per_s\": %.3f}",
			       first ? "" : ",\n", n, mode ? "mime-base64" : "raw",
			       mbs, compile, pmbs);
			first = 0;
			fflush(stdout);
			content_scratch_free(scratch);
			content_ruleset_free(rs);
		}
	}
	printf("\n  ],\n  \"hits\": %zu\n}\n", hits);
	return 0;
}
