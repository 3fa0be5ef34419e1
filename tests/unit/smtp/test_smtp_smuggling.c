/*
 * test_smtp_smuggling.c - proofs that no byte sequence makes the engine and
 * a backend disagree on where a message ends (SMTP smuggling,
 * CVE-2023-51764 class), plus the differential check: what the engine
 * emits for the backend, re-parsed by the engine, is the same message.
 *
 * 1. Exhaustive: every body tail over {CR, LF, '.', NUL, 'a'} up to 8
 *    octets, both bare-EOL policies, whole and octet-by-octet: the body
 *    ends exactly after the first literal "\r\n.\r\n" (body start counts as
 *    after CRLF); under reject any bare CR/LF before it is refused; the
 *    output is canonical CRLF, NUL-free and fully re-stuffed; re-parsing
 *    the output yields the output.
 * 2. The published end-of-data variants through whole sessions (DATA and
 *    BDAT), all-at-once and one octet per read: the smuggled MAIL never
 *    becomes a command.
 * 3. Random bodies through DATA and BDAT sessions, re-fed as DATA.
 */
#include "dataplane/smtp/smtp_body.h"
#include "dataplane/smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static long checks;

#define CHECK(cond, ...) do { checks++; if (!(cond)) { failures++; \
	if (failures < 20) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, \
	__LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } \
	} while (0)

static void
hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02x", p[i]);
	out[o] = 0;
}

/* Canonical: CR only before LF, LF only after CR, no NUL, every line
 * starting with '.' starts with "..", and ends at a line end. */
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

struct fres {
	enum smtp_body_res res;
	size_t consumed;
	uint8_t out[4096];
	size_t outn;
};

static void
filter_all(const uint8_t *in, size_t n, int normalize, int bdat, int bytewise,
		struct fres *r)
{
	struct smtp_body b;
	size_t i = 0;

	smtp_body_init(&b, bdat, normalize, 0);
	r->outn = 0;
	r->res = SMTP_BODY_MORE;
	while (i < n) {
		size_t len = bytewise ? 1 : n - i, prod;
		size_t k = smtp_body_filter(&b, in + i, len, r->out + r->outn,
				sizeof(r->out) - r->outn, &prod, &r->res);
		r->outn += prod;
		i += k;
		if (r->res != SMTP_BODY_MORE)
			break;
		if (k == 0)
			break;
	}
	if (bdat && r->res == SMTP_BODY_MORE) {
		int f = smtp_body_finish(&b, r->out + r->outn,
				sizeof(r->out) - r->outn);
		if (f < 0)
			r->res = SMTP_BODY_BARE;
		else
			r->outn += (size_t)f;
	}
	r->consumed = i;
}

/* Index just past the first "\r\n.\r\n" in "\r\n"+in, relative to in. */
static long
true_end(const uint8_t *in, size_t n)
{
	uint8_t v[80];

	v[0] = '\r';
	v[1] = '\n';
	memcpy(v + 2, in, n);
	for (size_t j = 0; j + 5 <= n + 2; j++)
		if (!memcmp(v + j, "\r\n.\r\n", 5))
			return (long)(j + 5 - 2);
	return -1;
}

static long
first_bare(const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && (i + 1 >= n || in[i + 1] != '\n'))
			return (long)i;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return (long)i;
	}
	return -1;
}

static void
check_body(const uint8_t *tail, size_t tn)
{
	uint8_t in[64];
	size_t n = 0;
	char hx[160];

	memcpy(in, tail, tn);
	n = tn;
	memcpy(in + n, "\r\n.\r\n", 5);
	n += 5;
	hex(in, n, hx, sizeof(hx));
	long end = true_end(in, n);
	CHECK(end > 0, "no end in %s", hx);

	for (int norm = 0; norm < 2; norm++) {
		struct fres whole, bytes;
		filter_all(in, n, norm, 0, 0, &whole);
		filter_all(in, n, norm, 0, 1, &bytes);
		CHECK(whole.res == bytes.res && whole.consumed == bytes.consumed &&
		      whole.outn == bytes.outn &&
		      !memcmp(whole.out, bytes.out, whole.outn),
		      "split-dependent result for %s", hx);
		long bare = first_bare(in, (size_t)end);
		if (!norm && bare >= 0) {
			CHECK(whole.res == SMTP_BODY_BARE,
			      "reject policy let %s through (res %d)", hx,
			      whole.res);
			continue;
		}
		CHECK(whole.res == SMTP_BODY_END &&
		      whole.consumed == (size_t)end,
		      "policy %d: %s ended at %zu (res %d), want %ld", norm, hx,
		      whole.consumed, whole.res, end);
		CHECK(canonical(whole.out, whole.outn),
		      "policy %d: non-canonical output for %s", norm, hx);
		/* differential: the output re-parsed is itself */
		uint8_t again[4200];
		memcpy(again, whole.out, whole.outn);
		memcpy(again + whole.outn, ".\r\n", 3);
		struct fres re;
		filter_all(again, whole.outn + 3, 0, 0, 0, &re);
		CHECK(re.res == SMTP_BODY_END && re.consumed == whole.outn + 3 &&
		      re.outn == whole.outn &&
		      !memcmp(re.out, whole.out, whole.outn),
		      "policy %d: re-parse differs for %s", norm, hx);
	}
	/* BDAT: octets, never an end; output canonical and re-parses. */
	struct fres bd;
	filter_all(in, n, 1, 1, 0, &bd);
	CHECK(bd.res == SMTP_BODY_MORE && bd.consumed == n &&
	      canonical(bd.out, bd.outn), "BDAT output for %s", hx);
	uint8_t again[4200];
	memcpy(again, bd.out, bd.outn);
	memcpy(again + bd.outn, ".\r\n", 3);
	struct fres re;
	filter_all(again, bd.outn + 3, 0, 0, 0, &re);
	CHECK(re.res == SMTP_BODY_END && re.outn == bd.outn &&
	      !memcmp(re.out, bd.out, bd.outn), "BDAT re-parse for %s", hx);
}

static void
exhaustive(int maxlen)
{
	static const uint8_t alpha[] = { '\r', '\n', '.', 0, 'a' };
	uint8_t buf[16];
	long count = 0;

	for (int len = 0; len <= maxlen; len++) {
		long total = 1;
		for (int i = 0; i < len; i++)
			total *= 5;
		for (long v = 0; v < total; v++) {
			long x = v;
			for (int i = 0; i < len; i++) {
				buf[i] = alpha[x % 5];
				x /= 5;
			}
			check_body(buf, (size_t)len);
			count++;
		}
	}
	printf("exhaustive: %ld body tails up to %d octets\n", count, maxlen);
}

/* ------------------------------------------------------------ sessions */

struct sess_out {
	char replies[8192];
	size_t rn;
	uint8_t data[1 << 16];
	size_t dn;
	int mails, data_ends, closed;
	char evil_mail;
};

static void *
al(void *c, size_t n)
{
	(void)c;
	return malloc(n);
}

static void
fr(void *c, void *p, size_t n)
{
	(void)c;
	(void)n;
	free(p);
}

static void
pump(struct smtp_session *s, struct sess_out *o)
{
	for (;;) {
		size_t n;
		const uint8_t *p = smtp_session_output(s, &n);
		int progress = 0;
		if (n) {
			if (o->rn + n < sizeof(o->replies)) {
				memcpy(o->replies + o->rn, p, n);
				o->rn += n;
			}
			smtp_session_output_consume(s, n);
			progress = 1;
		}
		p = smtp_session_data(s, &n);
		if (n) {
			if (o->dn + n <= sizeof(o->data)) {
				memcpy(o->data + o->dn, p, n);
				o->dn += n;
			}
			smtp_session_data_consume(s, n);
			progress = 1;
		}
		const struct smtp_event *ev = smtp_session_event(s);
		if (ev && ev->type != SMTP_EV_DATA_CHUNK) {
			if (ev->type == SMTP_REQ_MAIL) {
				o->mails++;
				if (strstr(ev->mail.addr, "evil"))
					o->evil_mail = 1;
			}
			if (ev->type == SMTP_REQ_DATA_END)
				o->data_ends++;
			if (ev->type == SMTP_EV_CLOSE || ev->type == SMTP_EV_RESET)
				smtp_session_ack(s);
			else
				smtp_session_accept(s);
			progress = 1;
		}
		if (!progress)
			break;
	}
	o->closed = smtp_session_closed(s);
}

static void
run_session(const uint8_t *in, size_t n, int normalize, int bytewise,
		struct sess_out *o)
{
	struct smtp_config c;
	struct smtp_alloc a = { al, fr, NULL };

	smtp_config_defaults(&c);
	c.bare_eol = normalize ? SMTP_BARE_EOL_NORMALIZE : SMTP_BARE_EOL_REJECT;
	c.max_text_line = 0;
	memset(o, 0, sizeof(*o));
	struct smtp_session *s = smtp_session_create(&c, &a, 0);
	pump(s, o);
	size_t i = 0;
	while (i < n) {
		size_t len = bytewise ? 1 : n - i;
		size_t k = smtp_session_feed(s, in + i, len);
		i += k;
		pump(s, o);
		if (k == 0 && smtp_session_feed(s, in + i, len) == 0)
			break;
	}
	pump(s, o);
	smtp_session_destroy(s);
}

static const char *const variants[] = {
	"\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\r\n.\n", "\r\n.\r",
	"\r\n\0.\r\n", "\r\n.\0\r\n", "\0\r\n.\r", "\n\n.\n\n",
	"\r\r\n.\r\r\n", "\r\n\r.\r\n", "\r\n.\r\r\n", "\n..\n", "\r\n.\n\r\n",
	"\r\n .\r\n", "\r\n.\t\r\n", "\n\r.\r\n", "\r\n\x00\r\n.\n",
	"\r\n.\x0b\r\n", "\r\r.\r\r",
};
static const size_t variant_len[] = {
	3, 4, 3, 4, 4, 4, 6, 6, 5, 5, 7, 6, 6, 4, 6, 6, 6, 5, 7, 6, 5,
};

static void
published_variants(void)
{
	static const char prefix[] =
		"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n"
		"RCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n\r\nbody";
	static const char smuggled[] =
		"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<v@example.net>"
		"\r\nDATA\r\nsmuggled\r\n";
	static const char suffix[] = "\r\n.\r\nQUIT\r\n";
	size_t nv = sizeof(variants) / sizeof(variants[0]);
	uint8_t in[1024];

	for (size_t v = 0; v < nv; v++) {
		size_t n = 0;
		memcpy(in, prefix, sizeof(prefix) - 1);
		n += sizeof(prefix) - 1;
		memcpy(in + n, variants[v], variant_len[v]);
		n += variant_len[v];
		memcpy(in + n, smuggled, sizeof(smuggled) - 1);
		n += sizeof(smuggled) - 1;
		memcpy(in + n, suffix, sizeof(suffix) - 1);
		n += sizeof(suffix) - 1;
		for (int norm = 0; norm < 2; norm++)
			for (int bw = 0; bw < 2; bw++) {
				struct sess_out o;
				run_session(in, n, norm, bw, &o);
				CHECK(!o.evil_mail && o.mails == 1,
				      "variant %zu policy %d: smuggled MAIL "
				      "became a command", v, norm);
				CHECK(o.data_ends <= 1, "variant %zu: %d ends",
				      v, o.data_ends);
				if (o.data_ends == 1) {
					CHECK(canonical(o.data, o.dn),
					      "variant %zu: non-canonical data", v);
					CHECK(memmem(o.data, o.dn, "MAIL FROM:<evil",
						     15) != NULL,
					      "variant %zu: smuggled text lost", v);
				} else {
					CHECK(!norm && o.closed &&
					      strstr(o.replies, "550 5.6.0"),
					      "variant %zu policy %d: neither "
					      "delivered nor refused", v, norm);
				}
			}
	}
	printf("published variants: %zu x 2 policies x 2 feed modes\n", nv);
}

static unsigned rnd_state = 2463534242u;
static unsigned
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Random bodies through DATA and BDAT sessions; the emitted data, sent
 * again as a DATA body, must come out unchanged. */
static void
differential(int iters)
{
	static const uint8_t alpha[] = { '\r', '\n', '.', 0, 'a', 'b', ' ',
		0xc3, '\r', '\n', '.' };
	uint8_t body[600], in[8192];
	int delivered = 0;

	for (int it = 0; it < iters; it++) {
		size_t bn = rnd() % sizeof(body), n;
		for (size_t i = 0; i < bn; i++)
			body[i] = rnd() % 3 ? (uint8_t)('a' + rnd() % 26)
					    : alpha[rnd() % sizeof(alpha)];
		int bdat = it & 1;
		struct sess_out o1, o2;
		if (bdat)
			n = (size_t)snprintf((char *)in, sizeof(in),
				"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
				"BDAT %zu LAST\r\n", bn);
		else
			n = (size_t)snprintf((char *)in, sizeof(in),
				"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
				"DATA\r\n");
		memcpy(in + n, body, bn);
		n += bn;
		if (!bdat) {
			memcpy(in + n, "\r\n.\r\n", 5);
			n += 5;
		}
		run_session(in, n, 1, it % 4 == 0, &o1);
		if (o1.data_ends != 1)
			continue; /* ended early on a literal end line: fine */
		delivered++;
		CHECK(canonical(o1.data, o1.dn), "iteration %d: non-canonical", it);
		n = (size_t)snprintf((char *)in, sizeof(in),
			"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
		memcpy(in + n, o1.data, o1.dn);
		n += o1.dn;
		memcpy(in + n, ".\r\nQUIT\r\n", 9);
		n += 9;
		run_session(in, n, 0, 0, &o2);
		CHECK(o2.data_ends == 1 && o2.dn == o1.dn &&
		      !memcmp(o1.data, o2.data, o1.dn) && o2.mails == 1,
		      "iteration %d: re-parse of emitted data differs", it);
	}
	printf("differential: %d random messages re-parsed (%d iterations)\n",
	       delivered, iters);
}

int
main(void)
{
	exhaustive(8);
	published_variants();
	differential(20000);
	printf("%ld checks, %d failures\n", checks, failures);
	printf("%d passed, %d failed\n", failures ? 0 : 3, failures ? 1 : 0);
	return failures ? 1 : 0;
}
