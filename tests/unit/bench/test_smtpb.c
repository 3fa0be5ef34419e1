/*
 * test_smtpb.c - mxgate-bench's sans-I/O SMTP client and sink
 * (bench/mxgate-bench/smtpb.h): the reply parser on multi-line, split and
 * malformed replies; the sink on transcripts (dot-stuffing, BDAT,
 * refusals, drops, a body whose digest does not match); and the client
 * wired to the sink in memory, byte by byte or in large pieces, with and
 * without PIPELINING and BDAT, asserting that every message the client
 * saw accepted was counted by the sink exactly once with a good digest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/mxgate-bench/smtpb.h"

static int failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #c);                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

static void test_reply_parser(void)
{
	struct smtpb_reply_parser p = {0};
	const char *r = "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
			"250 SIZE 100\r\n220 next\r\n";
	size_t used, off = 0;
	int code = 0;

	CHECK(smtpb_reply_feed(&p, r, strlen(r), &used, &code) == SMTPB_REPLY);
	CHECK(code == 250 && p.pipelining && p.chunking);
	off = used;
	CHECK(smtpb_reply_feed(&p, r + off, strlen(r) - off, &used, &code) ==
	      SMTPB_REPLY);
	CHECK(code == 220 && off + used == strlen(r));

	/* split anywhere, bare LF accepted, "354" without text */
	memset(&p, 0, sizeof(p));
	{
		const char *s = "354\n";
		enum smtpb_parse res = SMTPB_NEED_MORE;

		for (size_t i = 0; i < 4; i++) {
			res = smtpb_reply_feed(&p, s + i, 1, &used, &code);
			if (i < 3)
				CHECK(res == SMTPB_NEED_MORE);
		}
		CHECK(res == SMTPB_REPLY && code == 354);
	}
	/* malformed: not digits, code change within a reply, bad separator */
	memset(&p, 0, sizeof(p));
	CHECK(smtpb_reply_feed(&p, "hello\r\n", 7, &used, &code) == SMTPB_BAD);
	memset(&p, 0, sizeof(p));
	CHECK(smtpb_reply_feed(&p, "250-a\r\n251 b\r\n", 14, &used, &code) ==
	      SMTPB_BAD);
	memset(&p, 0, sizeof(p));
	CHECK(smtpb_reply_feed(&p, "250xa\r\n", 7, &used, &code) == SMTPB_BAD);
	memset(&p, 0, sizeof(p));
	CHECK(smtpb_reply_feed(&p, "150 a\r\n", 7, &used, &code) == SMTPB_BAD);
	/* keyword only as a whole word */
	memset(&p, 0, sizeof(p));
	CHECK(smtpb_reply_feed(&p, "250 PIPELININGX\r\n", 17, &used, &code) ==
	      SMTPB_REPLY);
	CHECK(!p.pipelining);
}

/* Feed a transcript to a sink; returns its replies concatenated. */
static void sink_run(struct smtpb_sink *s, const char *in, char *out,
		     size_t cap, int *msgs, struct smtpb_sink_msg *last,
		     int *drops)
{
	size_t len = strlen(in), off = 0, o = 0;

	while (off < len && s->state != SMTPB_S_CLOSED) {
		enum smtpb_sink_ev ev;
		struct smtpb_sink_msg m;
		size_t used;

		smtpb_sink_input(s, in + off, len - off, &used, 0, &ev, &m);
		off += used;
		if (ev == SMTPB_S_MSG) {
			(*msgs)++;
			*last = m;
		}
		if (ev == SMTPB_S_DROP)
			(*drops)++;
		if (!used && ev == SMTPB_S_NONE)
			break;
	}
	{
		const char *p;
		size_t n = smtpb_sink_peek(s, 0, &p);

		if (n >= cap)
			n = cap - 1;
		memcpy(out, p, n);
		out[n] = 0;
		o = n;
		smtpb_sink_sent(s, n);
	}
	(void)o;
}

static void test_sink_transcripts(void)
{
	struct smtpb_sink_conf cf = {
		.pipelining = true, .chunking = true, .check_digest = true};
	struct smtpb_sink s;
	struct smtpb_sink_msg m = {0};
	char out[4096];
	int msgs = 0, drops = 0;
	uint64_t h = SMTPB_FNV_INIT;
	char body[512];

	/* DATA with a dot-stuffed line: the digest is over the unstuffed
	 * line, so it matches. */
	h = smtpb_line_hash(h, "hello", 5);
	h = smtpb_line_hash(h, ".dot", 4);
	snprintf(body, sizeof(body),
		 "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
		 "Subject: t\r\nX-Bench: 00000000000000ab 42\r\n\r\n"
		 "hello\r\n..dot\r\nx-bench-digest %012u %016llx\r\n.\r\n"
		 "QUIT\r\n",
		 (unsigned)(7 + 6), (unsigned long long)h);
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s, body, out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1 && drops == 0);
	CHECK(m.has_bench && m.nonce == 0xab && m.seq == 42);
	CHECK(m.digest_ok && m.rcpts == 1);
	CHECK(strstr(out, "250-PIPELINING") && strstr(out, "354 ") &&
	      strstr(out, "250 2.0.0 Ok: queued") && strstr(out, "221 "));

	/* The same with one body byte changed: digest_ok false. */
	body[strstr(body, "hello") - body] = 'j';
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s, body, out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1 && !m.digest_ok);

	/* Lines after the trailer: not ok. */
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s,
		 "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n\r\n"
		 "x-bench-digest 000000000000 cbf29ce484222325\r\nmore\r\n"
		 ".\r\n",
		 out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1 && !m.digest_ok);

	/* Empty body with a good trailer: ok. */
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s,
		 "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n\r\n"
		 "x-bench-digest 000000000000 cbf29ce484222325\r\n.\r\n",
		 out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1 && m.digest_ok);

	/* BDAT in two chunks, the second LAST. */
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s,
		 "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
		 "BDAT 6\r\nA: b\r\nBDAT 2 LAST\r\n\r\nRSET\r\n",
		 out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1 && m.bytes == 6 + 2);
	CHECK(strstr(out, "250 2.0.0 6 octets") && strstr(out, "Ok: queued"));

	/* BDAT chunks that split a line (and its CRLF): the digest is over
	 * the same lines as one chunk would give. */
	{
		char t[80];
		uint64_t hh = smtpb_line_hash(SMTPB_FNV_INIT, "hello", 5);

		snprintf(t, sizeof(t), "x-bench-digest %012u %016llx\r\n", 7u,
			 (unsigned long long)hh);
		snprintf(body, sizeof(body),
			 "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
			 "BDAT 6\r\nA: b\r\nBDAT 5\r\n\r\nhelBDAT 3\r\nlo\r"
			 "BDAT %zu LAST\r\n\n%s",
			 strlen(t) + 1, t);
		msgs = 0;
		smtpb_sink_init(&s, &cf, 1, 0);
		sink_run(&s, body, out, sizeof(out), &msgs, &m, &drops);
		CHECK(msgs == 1 && m.digest_ok);
		if (!m.digest_ok)
			fprintf(stderr,
				"bdat split: msgs %d bytes %llu body %llu "
				"trailer %d/%d after %d out=%s\n",
				msgs, (unsigned long long)m.bytes,
				(unsigned long long)s.body_len, s.trailer_seen,
				s.trailer_ok, s.after_trailer, out);
	}

	/* RSET answers 250 wherever it comes: alone, pipelined ahead of a
	 * MAIL (a gateway reusing a backend connection), inside an open
	 * transaction, after a message, in lower case; only an unknown verb
	 * gets 502. The whole reply stream is compared. */
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s,
		 "RSET\r\nEHLO x\r\nRSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
		 "RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n"
		 "rset\r\nRSET \r\nMAIL FROM:<a@b>\r\nXYZZY\r\n",
		 out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 1);
	CHECK(strcmp(out, "220 mxgate-bench sink ESMTP\r\n"
			  "250 2.0.0 Ok\r\n"
			  "250-mxgate-bench\r\n250-PIPELINING\r\n"
			  "250-CHUNKING\r\n250 8BITMIME\r\n"
			  "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
			  "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
			  "354 End data with <CR><LF>.<CR><LF>\r\n"
			  "250 2.0.0 Ok: queued\r\n"
			  "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n"
			  "502 5.5.2 not implemented\r\n") == 0);

	/* DATA without recipients; RCPT before MAIL. */
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s, "EHLO x\r\nRCPT TO:<c@d>\r\nMAIL FROM:<a@b>\r\nDATA\r\n",
		 out, sizeof(out), &msgs, &m, &drops);
	CHECK(msgs == 0 && strstr(out, "503 ") && strstr(out, "554 "));

	/* All recipients refused by pattern. */
	cf.rcpt_5xx_pct = 100;
	msgs = 0;
	smtpb_sink_init(&s, &cf, 1, 0);
	sink_run(&s, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", out,
		 sizeof(out), &msgs, &m, &drops);
	CHECK(strstr(out, "550 5.1.1"));
	cf.rcpt_5xx_pct = 0;

	/* Drops: with 100 % every session ends in a drop verdict somewhere
	 * from the greeting to the end of data. */
	cf.drop_pct = 100;
	for (uint64_t k = 0; k < 50; k++) {
		msgs = drops = 0;
		smtpb_sink_init(&s, &cf, k, 0);
		if (smtpb_sink_drop_now(&s)) {
			drops++;
		} else {
			sink_run(
				&s,
				"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
				"DATA\r\n\r\nx\r\n.\r\nQUIT\r\n",
				out, sizeof(out), &msgs, &m, &drops);
		}
		CHECK(drops == 1 && msgs == 0);
	}
	cf.drop_pct = 0;

	/* Delay: the greeting is held until its time. */
	cf.delay_us[SMTPB_GREETING] = 1000;
	{
		const char *p;

		smtpb_sink_init(&s, &cf, 1, 5000);
		CHECK(smtpb_sink_peek(&s, 5999, &p) == 0);
		CHECK(smtpb_sink_peek(&s, 6000, &p) > 0);
	}
}

/* Client against sink in memory. chunk: bytes moved per step each way. */
struct pair_result {
	uint64_t accepted, sink_msgs, sink_bad, sink_rcpts, client_rcpts_ok;
	uint64_t events[SMTPB_STEP_MAX];
	int state;
};

static void run_pair(const struct smtpb_client_conf *cc,
		     const struct smtpb_sink_conf *sc, uint32_t nmsg,
		     uint32_t rcpts, uint32_t size, size_t chunk,
		     struct pair_result *res)
{
	static struct smtpb_client c;
	static struct smtpb_sink s;
	static char seen[1000];
	uint32_t given = 0;
	uint64_t now = 1;
	int guard = 0;

	memset(res, 0, sizeof(*res));
	memset(seen, 0, sizeof(seen));
	smtpb_client_init(&c, cc, 7, now);
	smtpb_sink_init(&s, sc, 7, now);
	while (c.state != SMTPB_C_DONE && c.state != SMTPB_C_FAILED &&
	       guard++ < 10000000) {
		const char *p;
		size_t n, used;
		bool moved = false;

		now++;
		if (smtpb_client_wants_msg(&c)) {
			struct smtpb_msg m = {
				.seq = given, .rcpts = rcpts, .size = size};
			smtpb_client_next(&c, given < nmsg ? &m : NULL);
			given++;
		}
		/* client -> sink */
		n = smtpb_client_peek(&c, &p);
		if (n > chunk)
			n = chunk;
		if (n) {
			size_t off = 0;

			while (off < n && s.state != SMTPB_S_CLOSED) {
				enum smtpb_sink_ev ev;
				struct smtpb_sink_msg m;

				smtpb_sink_input(&s, p + off, n - off, &used,
						 now, &ev, &m);
				off += used;
				if (ev == SMTPB_S_MSG) {
					res->sink_msgs++;
					res->sink_rcpts += m.rcpts;
					if (!m.digest_ok || !m.has_bench ||
					    m.nonce != cc->nonce ||
					    m.seq >= sizeof(seen) ||
					    seen[m.seq]++)
						res->sink_bad++;
				}
			}
			smtpb_client_sent(&c, n, now);
			moved = true;
		}
		/* sink -> client */
		n = smtpb_sink_peek(&s, now, &p);
		if (n > chunk)
			n = chunk;
		if (n) {
			size_t off = 0;

			while (off < n) {
				struct smtpb_event ev[8];
				int k = smtpb_client_input(&c, p + off, n - off,
							   &used, ev, 8);

				off += used;
				if (k < 0)
					break;
				for (int i = 0; i < k; i++) {
					res->events[ev[i].step]++;
					CHECK(ev[i].sent_us != 0);
					if (ev[i].msg_done &&
					    ev[i].msg_accepted) {
						res->accepted++;
						res->client_rcpts_ok +=
							ev[i].msg_rcpts_ok;
					}
				}
				if (!used)
					break;
			}
			smtpb_sink_sent(&s, n);
			moved = true;
		}
		if (!moved && c.state != SMTPB_C_BODY)
			break; /* deadlock: neither side has anything */
	}
	res->state = c.state;
}

static void test_pair(void)
{
	struct smtpb_client_conf cc = {.helo = "gen.test",
				       .from = "s{s}@gen.test",
				       .to = "u{m}.{r}@sink.test",
				       .nonce = 0x1234};
	struct smtpb_sink_conf sc = {.check_digest = true};
	struct pair_result r;
	const size_t chunks[] = {1, 7, 100000};
	const uint32_t sizes[] = {100, 2048, 102400};

	for (int pl = 0; pl < 2; pl++)
		for (int bd = 0; bd < 2; bd++)
			for (size_t ci = 0; ci < 3; ci++)
				for (size_t si = 0; si < 3; si++) {
					uint32_t n = chunks[ci] == 1 ? 3 : 20;

					if (chunks[ci] == 1 && si == 2)
						continue; /* slow */
					cc.pipelining = sc.pipelining = pl;
					cc.bdat = sc.chunking = bd;
					run_pair(&cc, &sc, n,
						 1 + (uint32_t)si * 4,
						 sizes[si], chunks[ci], &r);
					CHECK(r.state == SMTPB_C_DONE);
					CHECK(r.accepted == n);
					CHECK(r.sink_msgs == n);
					CHECK(r.sink_bad == 0);
					CHECK(r.sink_rcpts ==
					      r.client_rcpts_ok);
					CHECK(r.events[SMTPB_QUIT] == 1);
					CHECK(r.events[SMTPB_DATA] ==
					      (bd ? 0 : n));
					if (failures) {
						fprintf(stderr,
							"pl=%d bdat=%d "
							"chunk=%zu size=%u: "
							"accepted %llu sink "
							"%llu bad %llu state "
							"%d\n",
							pl, bd, chunks[ci],
							sizes[si],
							(unsigned long long)
								r.accepted,
							(unsigned long long)
								r.sink_msgs,
							(unsigned long long)
								r.sink_bad,
							r.state);
						return;
					}
				}

	/* Refusals: half the recipients 5xx, a fifth 4xx: the client's
	 * accepted recipient count equals the sink's, messages whose
	 * recipients were all refused are not sent (and not counted). */
	sc.rcpt_5xx_pct = 50;
	sc.rcpt_4xx_pct = 20;
	for (int pl = 0; pl < 2; pl++) {
		cc.pipelining = sc.pipelining = pl;
		cc.bdat = sc.chunking = false;
		run_pair(&cc, &sc, 200, 2, 500, 100000, &r);
		CHECK(r.state == SMTPB_C_DONE);
		CHECK(r.accepted == r.sink_msgs && r.sink_bad == 0);
		CHECK(r.accepted > 50 && r.accepted < 200);
		CHECK(r.sink_rcpts == r.client_rcpts_ok);
		CHECK(r.events[SMTPB_RSET] > 0); /* after each refused one */
	}
	/* With BDAT pipelined the body leaves before the verdicts: the
	 * sink refuses the chunk of a message without recipients. */
	cc.pipelining = sc.pipelining = true;
	cc.bdat = sc.chunking = true;
	run_pair(&cc, &sc, 200, 1, 500, 100000, &r);
	CHECK(r.state == SMTPB_C_DONE);
	CHECK(r.accepted == r.sink_msgs && r.sink_bad == 0);
	CHECK(r.accepted > 20 && r.accepted < 100);
}

/* A server that answers what was not asked, or garbage: FAILED, never a
 * hang. */
static void test_client_bad_server(void)
{
	struct smtpb_client_conf cc = {.helo = "h", .from = "a", .to = "b"};
	struct smtpb_client c;
	struct smtpb_event ev[8];
	size_t used;

	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(smtpb_client_input(&c, "220 hi\r\n", 8, &used, ev, 8) == 1);
	CHECK(ev[0].step == SMTPB_GREETING && ev[0].code == 220);
	CHECK(smtpb_client_waiting(&c) == SMTPB_EHLO);
	CHECK(smtpb_client_input(&c, "250 ok\r\n250 extra\r\n", 19, &used, ev,
				 8) == -1);
	CHECK(c.state == SMTPB_C_FAILED);

	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(smtpb_client_input(&c, "HTTP/1.1 400\r\n", 14, &used, ev, 8) ==
	      -1);

	/* 554 greeting: the client QUITs politely. */
	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(smtpb_client_input(&c, "554 go away\r\n", 13, &used, ev, 8) == 1);
	CHECK(c.state == SMTPB_C_QUIT &&
	      smtpb_client_waiting(&c) == SMTPB_QUIT);
}

/* Client output so far, as a string (and drained). */
static const char *client_out(struct smtpb_client *c)
{
	static char b[4096];
	const char *p;
	size_t n = smtpb_client_peek(c, &p);

	if (n >= sizeof(b))
		n = sizeof(b) - 1;
	memcpy(b, p, n);
	b[n] = 0;
	smtpb_client_sent(c, n, 1);
	return b;
}

static int client_feed(struct smtpb_client *c, const char *in, size_t *used)
{
	struct smtpb_event ev[8];

	return smtpb_client_input(c, in, strlen(in), used, ev, 8);
}

/* STARTTLS (RFC 3207): EHLO, STARTTLS, then the caller's handshake, EHLO
 * again, and only then mail. Bytes after the 220 are not taken as
 * replies; a server that does not offer STARTTLS is a protocol error
 * (never plaintext mail); a refused STARTTLS ends with QUIT. */
static void test_client_starttls(void)
{
	struct smtpb_client_conf cc = {.helo = "h", .from = "f", .to = "t",
				       .pipelining = true, .starttls = true};
	struct smtpb_client c;
	struct smtpb_msg m = {.seq = 1, .rcpts = 1, .size = 100};
	const char *ehlo = "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
	size_t used;

	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(client_feed(&c, "220 hi\r\n", &used) == 1);
	CHECK(!strcmp(client_out(&c), "EHLO h\r\n"));
	CHECK(client_feed(&c, ehlo, &used) == 1);
	CHECK(!smtpb_client_wants_msg(&c));
	CHECK(!strcmp(client_out(&c), "STARTTLS\r\n"));
	CHECK(smtpb_client_waiting(&c) == SMTPB_STARTTLS);
	/* the 220 and, glued to it, bytes that must not be replies */
	CHECK(client_feed(&c, "220 go ahead\r\n250 injected\r\n", &used) ==
	      1);
	CHECK(used == strlen("220 go ahead\r\n"));
	CHECK(smtpb_client_wants_tls(&c) && !smtpb_client_wants_msg(&c));
	CHECK(smtpb_client_waiting(&c) == SMTPB_STARTTLS);
	CHECK(!strcmp(client_out(&c), ""));
	smtpb_client_tls_done(&c);
	CHECK(!strcmp(client_out(&c), "EHLO h\r\n"));
	/* no STARTTLS keyword now: fine, TLS is up */
	CHECK(client_feed(&c, "250-mx\r\n250 PIPELINING\r\n", &used) == 1);
	CHECK(smtpb_client_wants_msg(&c));
	smtpb_client_next(&c, &m);
	CHECK(!strncmp(client_out(&c), "MAIL FROM:<f>\r\n", 15));

	/* not offered */
	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(client_feed(&c, "220 hi\r\n", &used) == 1);
	client_out(&c);
	CHECK(client_feed(&c, "250-mx\r\n250 PIPELINING\r\n", &used) == -1);
	CHECK(c.state == SMTPB_C_FAILED);

	/* refused */
	smtpb_client_init(&c, &cc, 0, 1);
	CHECK(client_feed(&c, "220 hi\r\n", &used) == 1);
	client_out(&c);
	CHECK(client_feed(&c, ehlo, &used) == 1);
	client_out(&c);
	CHECK(client_feed(&c, "454 4.7.0 no\r\n", &used) == 1);
	CHECK(!smtpb_client_wants_tls(&c));
	CHECK(!strcmp(client_out(&c), "QUIT\r\n"));
}

/* The sink offers STARTTLS until it is up; its 220 ends the input (the
 * rest is discarded by the caller); after tls_done EHLO no longer
 * offers it and a second STARTTLS is not taken. */
static void test_sink_starttls(void)
{
	struct smtpb_sink_conf sc = {.pipelining = true, .starttls = true};
	struct smtpb_sink s;
	enum smtpb_sink_ev ev;
	struct smtpb_sink_msg m;
	const char *p;
	size_t used, n;
	const char *in = "EHLO x\r\nSTARTTLS\r\nRSET\r\n";
	char out[1024];

	smtpb_sink_init(&s, &sc, 1, 0);
	smtpb_sink_sent(&s, smtpb_sink_peek(&s, 0, &p));
	smtpb_sink_input(&s, in, strlen(in), &used, 0, &ev, &m);
	CHECK(ev == SMTPB_S_NONE || ev == SMTPB_S_STARTTLS);
	if (ev == SMTPB_S_NONE) {
		size_t u2;

		smtpb_sink_input(&s, in + used, strlen(in) - used, &u2, 0, &ev,
				 &m);
		used += u2;
	}
	CHECK(ev == SMTPB_S_STARTTLS);
	CHECK(used == strlen("EHLO x\r\nSTARTTLS\r\n"));
	n = smtpb_sink_peek(&s, 0, &p);
	memcpy(out, p, n);
	out[n] = 0;
	CHECK(strstr(out, "250-STARTTLS\r\n") &&
	      strstr(out, "220 2.0.0 Ready to start TLS\r\n"));
	smtpb_sink_sent(&s, n);
	smtpb_sink_tls_done(&s);
	in = "EHLO x\r\nSTARTTLS\r\n";
	smtpb_sink_input(&s, in, strlen(in), &used, 0, &ev, &m);
	if (ev == SMTPB_S_NONE && used < strlen(in)) {
		size_t u2;

		smtpb_sink_input(&s, in + used, strlen(in) - used, &u2, 0, &ev,
				 &m);
	}
	CHECK(ev == SMTPB_S_NONE);
	n = smtpb_sink_peek(&s, 0, &p);
	memcpy(out, p, n);
	out[n] = 0;
	CHECK(!strstr(out, "STARTTLS") && strstr(out, "502 "));
}

int main(void)
{
	test_reply_parser();
	test_sink_transcripts();
	test_pair();
	test_client_bad_server();
	test_client_starttls();
	test_sink_starttls();
	if (failures) {
		fprintf(stderr, "test_smtpb: %d failures\n", failures);
		return 1;
	}
	printf("test_smtpb: ok\n");
	return 0;
}
