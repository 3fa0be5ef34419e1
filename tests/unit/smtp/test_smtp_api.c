/*
 * test_smtp_api.c - the parts of the engine's contract transcripts do not
 * reach: caller memory (smtp_session_init), one allocation per session,
 * config validation, verdict/ack misuse, reply-side backpressure (client
 * not reading), data-side backpressure, and DATA_END only after drain.
 */
#include "dataplane/smtp/smtp_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(c, msg) do { checks++; if (!(c)) { failures++; \
	fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, msg); } } \
	while (0)

static int nallocs;

static void *
t_alloc(void *c, size_t n)
{
	(void)c;
	nallocs++;
	return malloc(n);
}

static void
t_free(void *c, void *p, size_t n)
{
	(void)c;
	(void)n;
	nallocs--;
	free(p);
}

static const struct smtp_alloc al = { t_alloc, t_free, NULL };

static void
drain_events(struct smtp_session *s)
{
	const struct smtp_event *ev;
	while ((ev = smtp_session_event(s)) && ev->type != SMTP_EV_DATA_CHUNK) {
		if (ev->type == SMTP_EV_RESET || ev->type == SMTP_EV_CLOSE)
			smtp_session_ack(s);
		else
			smtp_session_accept(s);
	}
}

static void
test_memory(void)
{
	struct smtp_config c;
	static _Alignas(64) unsigned char mem[65536];

	smtp_config_defaults(&c);
	size_t need = smtp_session_memsize(&c);
	printf("default session memsize: %zu bytes\n", need);
	CHECK(need < 40000, "default session memory is bounded");
	CHECK(smtp_session_init(mem, need - 1, &c, 0) == NULL,
	      "init refuses a short block");
	struct smtp_session *s = smtp_session_init(mem, sizeof(mem), &c, 0);
	CHECK(s != NULL, "init in caller memory");
	CHECK(smtp_session_event(s)->type == SMTP_REQ_CONNECT, "CONNECT first");

	struct smtp_config bad = c;
	bad.out_buf_size = 100;
	CHECK(smtp_session_create(&bad, &al, 0) == NULL, "tiny out buffer refused");
	bad = c;
	bad.max_cmd_line = 8192;
	CHECK(smtp_session_create(&bad, &al, 0) == NULL,
	      "cmd line longer than input buffer refused");

	/* the config is copied: the caller's strings may go away */
	char host[32];
	strcpy(host, "copied.example");
	c.hostname = host;
	s = smtp_session_create(&c, &al, 0);
	CHECK(nallocs == 1, "one allocation per session");
	memset(host, 'X', sizeof(host) - 1);
	smtp_session_accept(s);
	size_t n;
	const uint8_t *p = smtp_session_output(s, &n);
	CHECK(n > 0 && memmem(p, n, "copied.example", 14) != NULL,
	      "hostname copied at init");
	smtp_session_destroy(s);
	CHECK(nallocs == 0, "destroy frees the block");
}

static void
test_misuse(void)
{
	struct smtp_config c;
	smtp_config_defaults(&c);
	struct smtp_session *s = smtp_session_create(&c, &al, 0);
	struct smtp_verdict v = { SMTP_V_CHALLENGE, 0, NULL, "x" };

	CHECK(smtp_session_ack(s) == -EINVAL, "ack on a request");
	CHECK(smtp_session_verdict(s, &v) == -EINVAL, "challenge on CONNECT");
	v.kind = SMTP_V_REJECT;
	v.code = 250;
	CHECK(smtp_session_verdict(s, &v) == -EINVAL, "reject with 2xx");
	v.kind = SMTP_V_ACCEPT;
	v.code = 550;
	CHECK(smtp_session_verdict(s, &v) == -EINVAL, "accept with 5xx");
	CHECK(smtp_session_accept(s) == 0, "accept CONNECT");
	CHECK(smtp_session_accept(s) == -ENOENT, "nothing pending");
	CHECK(smtp_session_tls_done(s, true) == -EINVAL, "tls_done outside TLS");
	smtp_session_feed(s, "QUIT\r\n", 6);
	const struct smtp_event *ev = smtp_session_event(s);
	CHECK(ev && ev->type == SMTP_EV_CLOSE, "CLOSE after QUIT");
	CHECK(smtp_session_accept(s) == -EINVAL, "verdict on a notification");
	CHECK(smtp_session_ack(s) == 0, "ack CLOSE");
	CHECK(smtp_session_accept(s) == -EPIPE, "closed");
	CHECK(smtp_session_feed(s, "NOOP\r\n", 6) == 6, "input after close dropped");
	CHECK(smtp_session_deadline(s) == SMTP_NO_DEADLINE, "no deadline closed");
	smtp_session_destroy(s);
}

/* The client never reads replies: the engine stops taking commands once
 * the reply buffer is nearly full, and takes the rest when it drains. */
static void
test_reply_backpressure(void)
{
	struct smtp_config c;
	smtp_config_defaults(&c);
	c.out_buf_size = 2048;
	c.in_buf_size = 1024;
	struct smtp_session *s = smtp_session_create(&c, &al, 0);
	smtp_session_accept(s);

	char buf[60000];
	size_t n = 0;
	while (n + 12 < sizeof(buf))
		n += (size_t)sprintf(buf + n, "RSET\r\n");
	size_t took = smtp_session_feed(s, buf, n);
	size_t outn;
	smtp_session_output(s, &outn);
	CHECK(took < n, "input refused while replies pile up");
	CHECK(outn <= 2048, "reply buffer bounded");
	size_t total = took;
	int rounds = 0;
	while (total < n && rounds++ < 10000) {
		smtp_session_output(s, &outn);
		smtp_session_output_consume(s, outn);
		total += smtp_session_feed(s, buf + total, n - total);
	}
	CHECK(total == n, "all input taken once replies drain");
	for (int r = 0; r < 100; r++) { /* held input runs as replies drain */
		smtp_session_output(s, &outn);
		smtp_session_output_consume(s, outn);
	}
	if (smtp_session_stats(s)->commands != n / 6)
		fprintf(stderr, "commands %u, want %zu\n",
			smtp_session_stats(s)->commands, n / 6);
	CHECK(smtp_session_stats(s)->commands == n / 6, "every RSET answered");
	smtp_session_destroy(s);
}

/* The backend is slow: body bytes wait in the data area; DATA_END only
 * once the caller has taken every body octet. */
static void
test_data_backpressure(void)
{
	struct smtp_config c;
	smtp_config_defaults(&c);
	c.data_buf_size = 1024;
	c.in_buf_size = 1024;
	struct smtp_session *s = smtp_session_create(&c, &al, 0);
	const char *pre = "EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";
	size_t k = 0, n = strlen(pre);
	smtp_session_accept(s);
	while (k < n) {
		k += smtp_session_feed(s, pre + k, n - k);
		drain_events(s);
	}
	static char body[100000];
	size_t bn = 0;
	while (bn + 80 < sizeof(body) - 8) {
		memset(body + bn, 'q', 78);
		bn += 78;
		body[bn++] = '\r';
		body[bn++] = '\n';
	}
	memcpy(body + bn, ".\r\n", 3);
	bn += 3;
	size_t took = smtp_session_feed(s, body, bn);
	size_t dn;
	smtp_session_data(s, &dn);
	CHECK(took < bn && dn <= 1024, "body held while backend side is full");
	const struct smtp_event *ev = smtp_session_event(s);
	CHECK(ev && ev->type == SMTP_EV_DATA_CHUNK, "DATA_CHUNK view");
	size_t got = 0, total = took;
	int saw_end_early = 0;
	for (int r = 0; r < 100000 && total <= bn; r++) {
		ev = smtp_session_event(s);
		if (ev && ev->type == SMTP_REQ_DATA_END) {
			smtp_session_data(s, &dn);
			if (dn)
				saw_end_early = 1;
			break;
		}
		smtp_session_data(s, &dn);
		/* take a little at a time, like a slow backend */
		size_t t = dn > 100 ? 100 : dn;
		got += t;
		smtp_session_data_consume(s, t);
		if (total < bn)
			total += smtp_session_feed(s, body + total, bn - total);
	}
	CHECK(!saw_end_early, "DATA_END after drain only");
	CHECK(got == bn - 3, "every body octet delivered");
	ev = smtp_session_event(s);
	CHECK(ev && ev->type == SMTP_REQ_DATA_END, "DATA_END raised");

	/* explicit pause */
	smtp_session_accept(s);
	smtp_session_data_pause(s, true);
	const char *m2 = "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";
	k = 0;
	n = strlen(m2);
	while (k < n) {
		k += smtp_session_feed(s, m2 + k, n - k);
		drain_events(s);
	}
	smtp_session_feed(s, "hello\r\n", 7);
	smtp_session_data(s, &dn);
	CHECK(dn == 0, "paused: no body read");
	smtp_session_data_pause(s, false);
	smtp_session_data(s, &dn);
	CHECK(dn == 7, "resumed: body read");
	smtp_session_destroy(s);
}

int
main(void)
{
	test_memory();
	test_misuse();
	test_reply_backpressure();
	test_data_backpressure();
	printf("%d checks\n", checks);
	printf("%d passed, %d failed\n", checks - failures, failures);
	return failures ? 1 : 0;
}
