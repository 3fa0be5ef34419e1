/*
 * smtp_bench.c - single-core throughput of the SMTP session engine.
 *
 *   commands/s: a pipelined transcript (MAIL, 5 x RCPT, RSET, repeated)
 *               fed in 16 KiB reads; every request is accepted at once and
 *               every reply taken, as a caller on one lcore would.
 *   DATA bytes/s: message bodies (78-octet lines, some dot-stuffed) fed in
 *               64 KiB reads through DATA; the backend side takes every
 *               chunk at once. Also BDAT.
 *
 * usage: smtp_bench [seconds-per-test] > result.json
 * Benchmark program, not the data path: it may use the clock and stdio.
 */
#include "dataplane/smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *
b_alloc(void *c, size_t n)
{
	(void)c;
	return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

static void
b_free(void *c, void *p, size_t n)
{
	(void)c;
	(void)n;
	free(p);
}

static uint64_t sink;

/* Answers everything, takes all output and data. */
static void
serve(struct smtp_session *s)
{
	for (;;) {
		size_t n;
		const uint8_t *p = smtp_session_output(s, &n);
		if (n) {
			sink += p[0];
			smtp_session_output_consume(s, n);
		}
		p = smtp_session_data(s, &n);
		if (n) {
			sink += p[n - 1];
			smtp_session_data_consume(s, n);
		}
		const struct smtp_event *ev = smtp_session_event(s);
		if (ev == NULL)
			return;
		if (ev->type == SMTP_EV_DATA_CHUNK)
			continue;
		if (ev->type == SMTP_EV_RESET || ev->type == SMTP_EV_CLOSE)
			smtp_session_ack(s);
		else
			smtp_session_accept(s);
	}
}

static void
feed_all(struct smtp_session *s, const uint8_t *p, size_t n, size_t rd)
{
	size_t i = 0;
	while (i < n) {
		size_t len = n - i < rd ? n - i : rd;
		size_t k = smtp_session_feed(s, p + i, len);
		i += k;
		serve(s);
		if (k == 0 && smtp_session_closed(s)) {
			fprintf(stderr, "session closed unexpectedly\n");
			exit(1);
		}
	}
}

static struct smtp_session *
new_session(const struct smtp_config *c)
{
	static const struct smtp_alloc a = { b_alloc, b_free, NULL };
	struct smtp_session *s = smtp_session_create(c, &a, 0);
	if (!s)
		exit(1);
	serve(s);
	return s;
}

static double
bench_commands(double secs, double *cmds_out)
{
	struct smtp_config c;
	smtp_config_defaults(&c);
	c.hostname = "mx.bench.example";
	c.max_errors = 1000;

	const int reps = 20000;
	size_t cap = (size_t)reps * 256, n = 0;
	char *buf = malloc(cap);
	for (int r = 0; r < reps; r++) {
		n += (size_t)snprintf(buf + n, cap - n,
			"MAIL FROM:<sender%d@example.org> SIZE=4096\r\n", r);
		for (int k = 0; k < 5; k++)
			n += (size_t)snprintf(buf + n, cap - n,
				"RCPT TO:<user%d.%d@example.net>\r\n", r, k);
		n += (size_t)snprintf(buf + n, cap - n, "RSET\r\n");
	}
	double t0 = now_s(), t;
	uint64_t cmds = 0;
	do {
		struct smtp_session *s = new_session(&c);
		feed_all(s, (const uint8_t *)"EHLO bench.example\r\n", 20, 20);
		feed_all(s, (const uint8_t *)buf, n, 16384);
		cmds += smtp_session_stats(s)->commands;
		smtp_session_destroy(s);
		t = now_s();
	} while (t - t0 < secs);
	free(buf);
	*cmds_out = (double)cmds;
	return (double)cmds / (t - t0);
}

static double
bench_data(double secs, int bdat, double *bytes_out)
{
	struct smtp_config c;
	smtp_config_defaults(&c);
	c.hostname = "mx.bench.example";
	c.max_msg_size = 1u << 30;

	/* 8 MiB body of 78-octet lines; every 10th starts with a dot */
	size_t lines = (8u << 20) / 80, n = 0;
	uint8_t *body = malloc(lines * 80 + 16);
	for (size_t l = 0; l < lines; l++) {
		int k = 0;
		if (l % 10 == 0) {
			body[n++] = '.';
			body[n++] = '.';
			k = 2;
		}
		for (; k < 78; k++)
			body[n++] = (uint8_t)('a' + (l + (size_t)k) % 26);
		body[n++] = '\r';
		body[n++] = '\n';
	}
	char hdr[128];
	double t0 = now_s(), t;
	double total = 0;
	do {
		struct smtp_session *s = new_session(&c);
		const char *pre = "EHLO b\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n";
		feed_all(s, (const uint8_t *)pre, strlen(pre), 4096);
		if (bdat) {
			int h = snprintf(hdr, sizeof(hdr), "BDAT %zu LAST\r\n", n);
			feed_all(s, (const uint8_t *)hdr, (size_t)h, 4096);
			feed_all(s, body, n, 65536);
		} else {
			feed_all(s, (const uint8_t *)"DATA\r\n", 6, 6);
			feed_all(s, body, n, 65536);
			feed_all(s, (const uint8_t *)".\r\n", 3, 3);
		}
		if (smtp_session_stats(s)->messages != 1) {
			fprintf(stderr, "message not delivered\n");
			exit(1);
		}
		total += (double)n;
		smtp_session_destroy(s);
		t = now_s();
	} while (t - t0 < secs);
	free(body);
	*bytes_out = total;
	return total / (t - t0);
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	double cmds, bytes, bbytes;
	struct smtp_config c;

	smtp_config_defaults(&c);
	double cps = bench_commands(secs, &cmds);
	double bps = bench_data(secs, 0, &bytes);
	double bbps = bench_data(secs, 1, &bbytes);
	printf("{\n"
	       "  \"benchmark\": \"smtp-engine\",\n"
	       "  \"single_core\": true,\n"
	       "  \"seconds_per_test\": %.1f,\n"
	       "  \"session_memsize_bytes\": %zu,\n"
	       "  \"commands_per_second\": %.0f,\n"
	       "  \"commands_total\": %.0f,\n"
	       "  \"data_bytes_per_second\": %.0f,\n"
	       "  \"data_bytes_total\": %.0f,\n"
	       "  \"bdat_bytes_per_second\": %.0f,\n"
	       "  \"targets\": { \"commands_per_second\": 2000000, "
	       "\"data_bytes_per_second\": 1000000000 },\n"
	       "  \"sink\": %llu\n"
	       "}\n", secs, smtp_session_memsize(&c), cps, cmds, bps, bytes,
	       bbps, (unsigned long long)(sink & 1));
	return 0;
}
