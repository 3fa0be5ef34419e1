/*
 * test_smtp_defer.c - deferred RCPT verdicts (issue 17), driven directly:
 * one pipelined group (MAIL, RCPTs, DATA, body, QUIT) split at every byte
 * and fed byte by byte, the deferred verdicts answered in every order of
 * four and at different points of the feed; the replies must always be a
 * prefix of the one right answer (command order), DATA must see the final
 * accepted count, and never more than the bound may be out at once. Then
 * the edges: misuse, the reply-buffer bound, long replies, late answers
 * after a time-out, a pooled session released mid-deferral.
 */
#include "dataplane/smtp/smtp_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(c, ...) do { checks++; if (!(c)) { failures++; \
	fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void *
t_alloc(void *c, size_t n)
{
	(void)c;
	return malloc(n);
}

static void
t_free(void *c, void *p, size_t n)
{
	(void)c;
	(void)n;
	free(p);
}

static const struct smtp_alloc al = { t_alloc, t_free, NULL };

#define NR 4

static const char group[] =
	"MAIL FROM:<a@example.org>\r\n"
	"RCPT TO:<r0@example.net>\r\n"
	"RCPT TO:<r1@example.net>\r\n"
	"RCPT TO:<r2@example.net>\r\n"
	"RCPT TO:<r3@example.net>\r\n"
	"DATA\r\n"
	"Subject: t\r\n\r\nbody\r\n.\r\n"
	"QUIT\r\n";

/* What each RCPT is answered, and the one right reply stream. */
static const struct smtp_verdict answers[NR] = {
	{ SMTP_V_ACCEPT, 0, NULL, NULL },
	{ SMTP_V_REJECT, 550, "5.1.1", "r1 unknown" },
	{ SMTP_V_ACCEPT, 250, "2.1.5", "r2 ok" },
	{ SMTP_V_REJECT, 450, "4.2.1", "r3 busy\nlater" },
};
static const char expect[] =
	"250 2.1.0 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"550 5.1.1 r1 unknown\r\n"
	"250 2.1.5 r2 ok\r\n"
	"450-4.2.1 r3 busy\r\n"
	"450 4.2.1 later\r\n"
	"354 End data with <CR><LF>.<CR><LF>\r\n"
	"250 2.0.0 Ok: queued\r\n"
	"221 2.0.0 Bye\r\n";

struct drv {
	struct smtp_session *s;
	char out[4096];
	size_t nout;
	bool out_of[NR];     /* deferred, not answered */
	bool answered[NR];
	unsigned max_out, data_nrcpt, end_nrcpt;
	bool bad;
};

static unsigned
outstanding(const struct drv *d)
{
	unsigned n = 0;
	for (int i = 0; i < NR; i++)
		n += d->out_of[i];
	return n;
}

/* Takes the replies; they must always be a prefix of the right stream. */
static void
take(struct drv *d)
{
	size_t n;
	const uint8_t *p = smtp_session_output(d->s, &n);
	if (n == 0)
		return;
	if (d->nout + n > sizeof(d->out) - 1)
		n = sizeof(d->out) - 1 - d->nout;
	memcpy(d->out + d->nout, p, n);
	d->nout += n;
	d->out[d->nout] = 0;
	smtp_session_output_consume(d->s, n);
	if (strncmp(d->out, expect, d->nout) != 0 && !d->bad) {
		d->bad = true;
		CHECK(0, "replies leave out of order:\n%s", d->out);
	}
}

/* Answers every queued event; RCPTs are deferred. */
static void
pump(struct drv *d)
{
	const struct smtp_event *ev;

	take(d);
	while ((ev = smtp_session_event(d->s)) != NULL) {
		struct smtp_verdict v = { SMTP_V_ACCEPT, 0, NULL, NULL };
		switch (ev->type) {
		case SMTP_EV_DATA_CHUNK:
		case SMTP_EV_RESET:
		case SMTP_EV_CLOSE:
			smtp_session_ack(d->s);
			break;
		case SMTP_REQ_RCPT: {
			uint32_t i = ev->rcpt.index;
			CHECK(i < NR && ev->rcpt.addr[1] == (char)('0' + i),
			      "RCPT index %u", i);
			v.kind = SMTP_V_DEFER;
			CHECK(smtp_session_verdict(d->s, &v) == 0, "defer");
			if (i < NR)
				d->out_of[i] = true;
			if (outstanding(d) > d->max_out)
				d->max_out = outstanding(d);
			break;
		}
		case SMTP_REQ_DATA:
			CHECK(outstanding(d) == 0, "DATA with RCPTs out");
			d->data_nrcpt = ev->data.nrcpt;
			smtp_session_accept(d->s);
			break;
		case SMTP_REQ_DATA_END:
			d->end_nrcpt = ev->data_end.nrcpt;
			smtp_session_accept(d->s);
			break;
		default:
			smtp_session_accept(d->s);
		}
		take(d);
	}
}

/* Answers the first outstanding RCPT in perm order (if any). */
static bool
answer_one(struct drv *d, const int *perm)
{
	for (int k = 0; k < NR; k++) {
		int i = perm[k];
		if (!d->out_of[i])
			continue;
		CHECK(smtp_session_rcpt_verdict(d->s, (uint32_t)i,
				&answers[i]) == 0, "rcpt_verdict %d", i);
		d->out_of[i] = false;
		d->answered[i] = true;
		pump(d);
		return true;
	}
	return false;
}

static void
start(struct drv *d, const struct smtp_config *c)
{
	memset(d, 0, sizeof(*d));
	d->s = smtp_session_create(c, &al, 0);
	smtp_session_accept(d->s); /* CONNECT */
	smtp_session_feed(d->s, "EHLO c.example\r\n", 16);
	smtp_session_accept(d->s);
	/* greeting and EHLO reply are not part of the group */
	smtp_session_output_consume(d->s, 1 << 20);
	CHECK(smtp_session_state(d->s) == SMTP_ST_READY, "greeted");
}

/* Offers buf until taken, answering in perm order whenever it stalls. */
static void
feed_all(struct drv *d, const char *buf, size_t n, const int *perm,
		unsigned answer_each)
{
	int guard = 0;
	while (n > 0 && guard++ < 10000) {
		size_t k = smtp_session_feed(d->s, buf, n);
		buf += k;
		n -= k;
		pump(d);
		for (unsigned a = 0; a < answer_each; a++)
			answer_one(d, perm);
		if (k == 0 && !answer_one(d, perm))
			break;
	}
	CHECK(n == 0, "input not taken (%zu left)", n);
}

static void
finish(struct drv *d, const int *perm, unsigned bound, const char *what)
{
	while (answer_one(d, perm))
		;
	pump(d);
	CHECK(d->nout == strlen(expect) && !strcmp(d->out, expect),
	      "%s: replies:\n%s", what, d->out);
	CHECK(d->data_nrcpt == 2 && d->end_nrcpt == 2,
	      "%s: DATA nrcpt %u, DATA_END nrcpt %u", what, d->data_nrcpt,
	      d->end_nrcpt);
	CHECK(d->max_out <= bound, "%s: %u out at once, bound %u", what,
	      d->max_out, bound);
	CHECK(smtp_session_closed(d->s), "%s: not closed after QUIT", what);
	CHECK(smtp_session_rcpt_deferred(d->s) == 0, "%s: still deferred",
	      what);
	smtp_session_destroy(d->s);
}

static bool
next_perm(int *p, int n)
{
	int i = n - 2;
	while (i >= 0 && p[i] >= p[i + 1])
		i--;
	if (i < 0)
		return false;
	int j = n - 1;
	while (p[j] <= p[i])
		j--;
	int t = p[i]; p[i] = p[j]; p[j] = t;
	for (int a = i + 1, b = n - 1; a < b; a++, b--) {
		t = p[a]; p[a] = p[b]; p[b] = t;
	}
	return true;
}

/* Every answer order x every split point (two reads), answering a
 * different number of RCPTs between the two reads; then byte by byte,
 * one answer after each byte. */
static void
test_orders_and_splits(unsigned bound)
{
	struct smtp_config c;
	struct drv d;
	int perm[NR] = { 0, 1, 2, 3 };
	size_t len = strlen(group);
	unsigned runs = 0, max_seen = 0;
	char what[96];

	smtp_config_defaults(&c);
	c.max_rcpt_deferred = bound;
	do {
		for (size_t cut = 0; cut <= len; cut++) {
			snprintf(what, sizeof(what), "bound %u perm %d%d%d%d "
				 "cut %zu", bound, perm[0], perm[1], perm[2],
				 perm[3], cut);
			start(&d, &c);
			feed_all(&d, group, cut, perm, 0);
			for (size_t a = 0; a < cut % 3; a++)
				answer_one(&d, perm);
			feed_all(&d, group + cut, len - cut, perm, 0);
			if (d.max_out > max_seen)
				max_seen = d.max_out;
			finish(&d, perm, bound, what);
			runs++;
		}
		snprintf(what, sizeof(what), "bound %u perm %d%d%d%d bytes",
			 bound, perm[0], perm[1], perm[2], perm[3]);
		start(&d, &c);
		for (size_t i = 0; i < len; i++)
			feed_all(&d, group + i, 1, perm, i % 2);
		finish(&d, perm, bound, what);
		runs++;
	} while (next_perm(perm, NR));
	/* the group really had RCPTs out together, up to the bound */
	CHECK(max_seen == (bound < NR ? bound : NR),
	      "bound %u: at most %u out at once", bound, max_seen);
	printf("bound %u: %u runs, up to %u RCPTs out at once\n", bound, runs,
	       max_seen);
}

/* Misuse and late answers. */
static void
test_misuse(void)
{
	struct smtp_config c;
	struct drv d;
	struct smtp_verdict v = { SMTP_V_DEFER, 0, NULL, NULL };
	const struct smtp_event *ev;
	static const char in[] = "MAIL FROM:<a@example.org>\r\n"
				 "RCPT TO:<r0@example.net>\r\n"
				 "RCPT TO:<r1@example.net>\r\n";

	smtp_config_defaults(&c);
	c.tmo_rcpt_ms = 1000;
	start(&d, &c);
	smtp_session_feed(d.s, in, strlen(in));
	ev = smtp_session_event(d.s);
	CHECK(ev && ev->type == SMTP_REQ_MAIL, "MAIL pending");
	CHECK(smtp_session_verdict(d.s, &v) == -EINVAL, "DEFER on MAIL");
	smtp_session_accept(d.s);
	CHECK(smtp_session_verdict(d.s, &v) == 0, "defer r0");
	CHECK(smtp_session_verdict(d.s, &v) == 0, "defer r1");
	CHECK(smtp_session_rcpt_deferred(d.s) == 2, "2 deferred");
	CHECK(smtp_session_rcpt_verdict(d.s, 2, NULL) == -ENOENT,
	      "unknown index");
	CHECK(smtp_session_rcpt_verdict(d.s, 1, &v) == -EINVAL,
	      "DEFER a deferred");
	struct smtp_verdict bad = { SMTP_V_REJECT, 250, NULL, NULL };
	CHECK(smtp_session_rcpt_verdict(d.s, 1, &bad) == -EINVAL,
	      "reject with 250");
	bad.kind = SMTP_V_CHALLENGE;
	CHECK(smtp_session_rcpt_verdict(d.s, 1, &bad) == -EINVAL,
	      "challenge a RCPT");
	CHECK(smtp_session_rcpt_verdict(d.s, 1, NULL) == 0, "accept r1");
	CHECK(smtp_session_rcpt_verdict(d.s, 1, NULL) == -ENOENT,
	      "answer twice");
	CHECK(smtp_session_deadline(d.s) == 1000, "deadline %llu",
	      (unsigned long long)smtp_session_deadline(d.s));
	smtp_session_time(d.s, 1000);
	CHECK(smtp_session_closed(d.s), "time-out closes");
	CHECK(smtp_session_rcpt_verdict(d.s, 0, NULL) == -EPIPE,
	      "late answer after close");
	static const char want[] = "250 2.1.0 Ok\r\n421 4.4.1 localhost "
		"Error: timeout exceeded, try again later\r\n";
	size_t n;
	const uint8_t *p = smtp_session_output(d.s, &n);
	CHECK(n == strlen(want) && !memcmp(p, want, n),
	      "time-out replies:\n%.*s", (int)n, (const char *)p);
	smtp_session_destroy(d.s);
}

/* With the default 4 KiB reply buffer, (4096 - 1408) / 512 + 1 = 6 RCPTs
 * are out at once whatever max_rcpt_deferred says; a long deferred reply
 * is cut at a line to 512 octets and stays well formed. */
static void
test_reply_room(void)
{
	struct smtp_config c;
	struct drv d;
	char in[2048], text[1024];
	size_t n = 0;
	unsigned out = 0, max_out = 0;
	const struct smtp_event *ev;

	smtp_config_defaults(&c);
	c.max_rcpt_deferred = SMTP_RCPT_DEFER_MAX;
	start(&d, &c);
	n += (size_t)snprintf(in, sizeof(in), "MAIL FROM:<a@example.org>\r\n");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n,
				      "RCPT TO:<r%d@example.net>\r\n", i);
	CHECK(smtp_session_feed(d.s, in, n) == n, "group taken");
	smtp_session_accept(d.s);
	while ((ev = smtp_session_event(d.s)) && ev->type == SMTP_REQ_RCPT) {
		struct smtp_verdict v = { SMTP_V_DEFER, 0, NULL, NULL };
		smtp_session_verdict(d.s, &v);
		if (++out > max_out)
			max_out = out;
	}
	CHECK(max_out == 6, "%u out at once with a 4 KiB reply buffer",
	      max_out);
	/* three 300-octet lines: cut to what fits in 512 */
	memset(text, 'x', sizeof(text));
	text[300] = '\n';
	text[601] = '\n';
	text[902] = 0;
	struct smtp_verdict rej = { SMTP_V_REJECT, 550, "5.1.1", text };
	CHECK(smtp_session_rcpt_verdict(d.s, 0, &rej) == 0, "long reply");
	size_t len;
	const uint8_t *p = smtp_session_output(d.s, &len);
	const char *r = memmem(p, len, "550", 3);
	size_t rl = r ? len - (size_t)(r - (const char *)p) : 0;
	CHECK(r && rl <= SMTP_RCPT_DEFER_REPLY_MAX && rl > 300 &&
	      !memcmp(r, "550-5.1.1 x", 11) &&
	      memmem(r, rl, "\r\n550 5.1.1 x", 13) &&
	      !memcmp(r + rl - 2, "\r\n", 2), "long deferred reply %zu octets",
	      rl);
	smtp_session_shutdown(d.s, 0, NULL, NULL);
	CHECK(smtp_session_rcpt_deferred(d.s) == 0, "shutdown drops them");
	smtp_session_destroy(d.s);
}

/* A pooled session released with RCPTs out gives its area back once. */
static int pool_gets, pool_puts;
static void *
p_get(void *ctx)
{
	(void)ctx;
	pool_gets++;
	return aligned_alloc(16, 65536);
}
static void
p_put(void *ctx, void *b)
{
	(void)ctx;
	pool_puts++;
	free(b);
}

static void
test_pooled_release(void)
{
	struct smtp_config c;
	struct smtp_buf_pool pool = { p_get, p_put, NULL };
	struct smtp_verdict v = { SMTP_V_DEFER, 0, NULL, NULL };
	static const char in[] = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<r@b>\r\n";

	smtp_config_defaults(&c);
	CHECK(smtp_session_bufsize(&c) <= 65536, "pool area size");
	size_t n = smtp_session_memsize_pooled(&c);
	void *mem = aligned_alloc(16, (n + 15) & ~(size_t)15);
	struct smtp_session *s = smtp_session_init_pooled(mem, n, &c, &pool, 0);
	smtp_session_accept(s);
	smtp_session_feed(s, in, strlen(in));
	smtp_session_accept(s);
	smtp_session_accept(s);
	CHECK(smtp_session_verdict(s, &v) == 0, "defer");
	CHECK(smtp_session_rcpt_deferred(s) == 1, "1 deferred");
	smtp_session_release(s);
	CHECK(pool_gets == pool_puts, "gets %d puts %d", pool_gets, pool_puts);
	CHECK(smtp_session_rcpt_deferred(s) == 0, "none after release");
	free(mem);
}

int
main(void)
{
	test_orders_and_splits(16);
	test_orders_and_splits(2);
	test_orders_and_splits(1);
	test_misuse();
	test_reply_room();
	test_pooled_release();
	printf("%d checks\n%d passed, %d failed\n", checks, checks - failures,
	       failures);
	return failures ? 1 : 0;
}
