/*
 * fuzz_smtp.c - libFuzzer harness for the SMTP session engine.
 *
 * Input: 4 config octets, then operations:
 *   op 0  feed: next octet L, then L input octets (one read)
 *   op 1  answer the head request: accept
 *   op 2  answer: reject (code from the next octet, text with controls)
 *   op 3  answer: close
 *   op 4  by bits 4-5: 0 answer AUTH challenge; 1 defer the head
 *         (RCPT: SMTP_V_DEFER); 2 answer deferred RCPT #(next octet & 15)
 *         accept or reject (bit 3); 3 the same with close
 *   op 5  time: advance next octet * 5000 ms
 *   op 6  tls_done(next octet & 1)
 *   op 7  toggle data pause / consume only part of the output
 * (op = octet & 7; higher bits vary the amount where it matters.)
 * After every op, notifications are acked and output and data drained.
 *
 * Checks, beyond the sanitizers: every reply line is "ddd[ -]text CRLF"
 * with no bare CR/LF; every 4xx/5xx line carries a class-matching enhanced
 * code (RFC 3463); each delivered message's backend bytes are canonical
 * (CRLF, no NUL, re-stuffed) and re-parse through the body filter to
 * themselves (the differential check); per-session memory stays bounded; deferred
 * RCPTs never exceed max_rcpt_deferred and exist only inside a
 * transaction (the engine itself asserts that no session closes with one
 * unanswered, i.e. that no reply is ever left out of order).
 */
#include "dataplane/smtp/smtp_body.h"
#include "dataplane/smtp/smtp_session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX (1 << 16)

struct state {
	struct smtp_session *s;
	uint64_t now;
	int paused;
	uint8_t msg[MSG_MAX];
	size_t msgn;
	int msg_overflow;
	char line[2048];
	size_t linen;
};

static void
check_line(const char *l, size_t n)
{
	/* n includes CRLF */
	if (n < 6 || l[n - 2] != '\r' || l[n - 1] != '\n')
		abort();
	for (int i = 0; i < 3; i++)
		if (l[i] < '0' || l[i] > '9')
			abort();
	if (l[3] != ' ' && l[3] != '-')
		abort();
	for (size_t i = 0; i < n - 2; i++)
		if (l[i] == '\r' || l[i] == '\n')
			abort();
	if (l[0] == '4' || l[0] == '5') {
		/* RFC 3463 enhanced code, same class */
		if (l[4] != l[0] || l[5] != '.')
			abort();
	}
}

static void
take_output(struct state *st, size_t max)
{
	size_t n;
	const uint8_t *p = smtp_session_output(st->s, &n);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		if (st->linen < sizeof(st->line))
			st->line[st->linen] = (char)p[i];
		st->linen++;
		if (p[i] == '\n') {
			if (st->linen > sizeof(st->line))
				abort(); /* replies are bounded */
			check_line(st->line, st->linen);
			st->linen = 0;
		}
	}
	smtp_session_output_consume(st->s, n);
}

static int
canonical(const uint8_t *p, size_t n)
{
	int bol = 1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == 0)
			return 0;
		if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
			return 0;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return 0;
		if (bol && p[i] == '.' && (i + 1 >= n || p[i + 1] != '.'))
			return 0;
		bol = p[i] == '\n';
	}
	return n == 0 || bol;
}

/* Differential: the backend copy, parsed as a DATA body, is itself. */
static void
check_message(struct state *st)
{
	static uint8_t out[MSG_MAX + 16];
	struct smtp_body b;
	size_t prod, i = 0, o = 0;
	enum smtp_body_res res = SMTP_BODY_MORE;

	if (st->msg_overflow)
		return;
	if (!canonical(st->msg, st->msgn))
		abort();
	smtp_body_init(&b, false, false, 0);
	while (i < st->msgn) {
		size_t k = smtp_body_filter(&b, st->msg + i, st->msgn - i,
				out + o, sizeof(out) - o, &prod, &res);
		o += prod;
		i += k;
		if (res != SMTP_BODY_MORE || k == 0)
			break;
	}
	if (res != SMTP_BODY_MORE || i != st->msgn)
		abort(); /* ended (or refused) inside the message */
	size_t k = smtp_body_filter(&b, (const uint8_t *)".\r\n", 3, out + o,
			sizeof(out) - o, &prod, &res);
	if (res != SMTP_BODY_END || k != 3 || prod != 0)
		abort();
	if (o != st->msgn || memcmp(out, st->msg, o) != 0)
		abort();
}

static void
take_data(struct state *st)
{
	size_t n;
	const uint8_t *p;

	if (st->paused)
		return;
	p = smtp_session_data(st->s, &n);
	if (!n)
		return;
	if (st->msgn + n <= MSG_MAX) {
		memcpy(st->msg + st->msgn, p, n);
		st->msgn += n;
	} else {
		st->msg_overflow = 1;
	}
	smtp_session_data_consume(st->s, n);
}

static void
settle(struct state *st)
{
	for (int guard = 0; guard < 64; guard++) {
		const struct smtp_event *ev;
		take_output(st, SIZE_MAX);
		take_data(st);
		ev = smtp_session_event(st->s);
		if (ev == NULL || ev->type == SMTP_EV_DATA_CHUNK)
			return;
		if (ev->type == SMTP_EV_RESET || ev->type == SMTP_EV_CLOSE) {
			st->msgn = 0;
			st->msg_overflow = 0;
			if (smtp_session_ack(st->s) != 0)
				abort();
			continue;
		}
		if (ev->type == SMTP_REQ_DATA_END) {
			/* all body bytes were drained before DATA_END */
			size_t dn;
			smtp_session_data(st->s, &dn);
			if (dn != 0)
				abort();
			check_message(st);
			st->msgn = 0;
			st->msg_overflow = 0;
		}
		return; /* a request: answered by an op */
	}
}

static void *
f_alloc(void *c, size_t n)
{
	(void)c;
	if (n > (1u << 20))
		abort(); /* per-session memory is bounded */
	return malloc(n);
}

static void
f_free(void *c, void *p, size_t n)
{
	(void)c;
	(void)n;
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct smtp_config cfg;
	struct smtp_alloc al = { f_alloc, f_free, NULL };
	static const char *const texts[] = {
		NULL, "nope", "multi\nline\nreply", "ctl\r\x01\x7f chars",
		"", "\n", "a\n\nb",
	};
	static const char *const enhs[] = {
		NULL, "5.1.1", "4.7.0", "2.0.0", "x.y.z", "5.1234.1", "",
	};

	if (size < 4)
		return 0;
	st.now = 0;
	st.paused = 0;
	st.msgn = 0;
	st.msg_overflow = 0;
	st.linen = 0;
	smtp_config_defaults(&cfg);
	cfg.hostname = "fuzz.example";
	cfg.flags = (uint32_t)data[0] | ((uint32_t)(data[1] & 7) << 8);
	cfg.bare_eol = (data[1] & 8) ? SMTP_BARE_EOL_NORMALIZE
				     : SMTP_BARE_EOL_REJECT;
	cfg.auth_mechanisms = (data[1] & 16) ? "PLAIN LOGIN" : "";
	if (data[2] & 1) {
		/* small everything: exercise the limits and backpressure */
		cfg.in_buf_size = 600;
		cfg.out_buf_size = 2048;
		cfg.data_buf_size = 256;
		cfg.max_text_line = 80;
		cfg.max_msg_size = 300;
	}
	cfg.max_rcpts = 1 + (data[2] >> 4);
	cfg.max_errors = 1 + (data[3] & 15);
	cfg.max_rcpt_deferred = data[3] >> 4; /* 0: the default, 16 */
	st.s = smtp_session_create(&cfg, &al, 0);
	if (st.s == NULL)
		abort();
	size_t i = 4;
	while (i < size) {
		uint8_t op = data[i++];
		uint8_t arg = i < size ? data[i] : 0;
		struct smtp_verdict v = { SMTP_V_ACCEPT, 0, NULL, NULL };
		switch (op & 7) {
		case 0: {
			size_t l = i < size ? data[i++] : 0;
			if (l > size - i)
				l = size - i;
			size_t k = 0;
			while (k < l) {
				size_t t = smtp_session_feed(st.s, data + i + k,
							     l - k);
				k += t;
				if (t == 0)
					break; /* held: like a closed window */
			}
			i += l;
			break;
		}
		case 1:
			smtp_session_verdict(st.s, &v);
			break;
		case 2:
			i++;
			v.kind = SMTP_V_REJECT;
			v.code = (uint16_t)(400 + (arg % 200));
			v.enh = enhs[(op >> 3) % 7];
			v.text = texts[arg % 7];
			smtp_session_verdict(st.s, &v);
			break;
		case 3:
			v.kind = SMTP_V_CLOSE;
			v.text = texts[(op >> 3) % 7];
			smtp_session_verdict(st.s, &v);
			break;
		case 4:
			switch ((op >> 4) & 3) {
			case 0:
				v.kind = SMTP_V_CHALLENGE;
				v.text = (op & 8) ? "VXNlcm5hbWU6" : "";
				smtp_session_verdict(st.s, &v);
				break;
			case 1:
				v.kind = SMTP_V_DEFER;
				smtp_session_verdict(st.s, &v);
				break;
			default:
				i++;
				v.kind = ((op >> 4) & 3) == 3 ? SMTP_V_CLOSE :
					 (op & 8) ? SMTP_V_REJECT : SMTP_V_ACCEPT;
				if (v.kind == SMTP_V_REJECT)
					v.code = (uint16_t)(400 + (arg % 200));
				v.enh = enhs[(arg >> 4) % 7];
				v.text = texts[(op >> 6) + (arg & 1)];
				smtp_session_rcpt_verdict(st.s, arg & 15, &v);
				break;
			}
			break;
		case 5:
			i++;
			st.now += (uint64_t)arg * 5000;
			smtp_session_time(st.s, st.now);
			break;
		case 6:
			i++;
			smtp_session_tls_done(st.s, arg & 1);
			break;
		case 7:
			if (op & 8) {
				st.paused = !st.paused;
				smtp_session_data_pause(st.s, st.paused);
			} else {
				take_output(&st, op >> 4);
			}
			break;
		}
		settle(&st);
		uint32_t nd = smtp_session_rcpt_deferred(st.s);
		enum smtp_state ss = smtp_session_state(st.s);
		if (nd > (cfg.max_rcpt_deferred ? cfg.max_rcpt_deferred : 16) ||
		    (nd && ss != SMTP_ST_MAIL && ss != SMTP_ST_RCPT))
			abort();
	}
	st.now += 3600 * 1000;
	smtp_session_time(st.s, st.now);
	settle(&st);
	if (!smtp_session_closed(st.s))
		abort(); /* an hour of silence always ends a session */
	smtp_session_destroy(st.s);
	return 0;
}
