/*
 * smtpb.c - sans-I/O SMTP client (load generator) and server (sink) of
 * mxgate-bench; see smtpb.h. Never blocks, never allocates: every buffer
 * is inside the caller's struct.
 */
#include "smtpb.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const step_names[SMTPB_STEP_MAX] = {
	[SMTPB_GREETING] = "connect", [SMTPB_EHLO] = "ehlo",
	[SMTPB_MAIL] = "mail",	      [SMTPB_RCPT] = "rcpt",
	[SMTPB_DATA] = "data",	      [SMTPB_DOT] = "dot",
	[SMTPB_RSET] = "rset",	      [SMTPB_QUIT] = "quit",
	[SMTPB_STARTTLS] = "starttls",
};

const char *smtpb_step_name(enum smtpb_step s)
{
	return s < SMTPB_STEP_MAX ? step_names[s] : "?";
}

uint64_t smtpb_line_hash(uint64_t h, const char *p, size_t n)
{
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w ^ ((uint64_t)n << 56)) * 0x100000001b3ULL;
	return h ^ (h >> 31);
}

/* ------------------------------------------------------------- replies */

static bool kw(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	if (len < 4 + n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = line[4 + i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c != word[i])
			return false;
	}
	return len == 4 + n || line[4 + n] == ' ';
}

enum smtpb_parse smtpb_reply_feed(struct smtpb_reply_parser *p, const char *in,
				  size_t len, size_t *used, int *code)
{
	size_t i = 0;

	while (i < len) {
		char ch = in[i++];
		size_t l;
		int c;

		if (ch != '\n') {
			if (p->len < sizeof(p->line) - 1)
				p->line[p->len++] = ch;
			else
				p->overflow = true;
			continue;
		}
		l = p->len;
		if (l && p->line[l - 1] == '\r')
			l--;
		p->len = 0;
		if (p->overflow || l < 3 || p->line[0] < '2' ||
		    p->line[0] > '5' || p->line[1] < '0' || p->line[1] > '9' ||
		    p->line[2] < '0' || p->line[2] > '9' ||
		    (l > 3 && p->line[3] != ' ' && p->line[3] != '-')) {
			p->overflow = false;
			*used = i;
			return SMTPB_BAD;
		}
		c = (p->line[0] - '0') * 100 + (p->line[1] - '0') * 10 +
		    (p->line[2] - '0');
		if (p->code && c != p->code) {
			*used = i;
			p->code = 0;
			return SMTPB_BAD;
		}
		p->code = c;
		if (kw(p->line, l, "PIPELINING"))
			p->pipelining = true;
		if (kw(p->line, l, "CHUNKING"))
			p->chunking = true;
		if (kw(p->line, l, "STARTTLS"))
			p->starttls = true;
		if (l > 3 && p->line[3] == '-')
			continue;
		*code = c;
		p->code = 0;
		*used = i;
		return SMTPB_REPLY;
	}
	*used = i;
	return SMTPB_NEED_MORE;
}

/* --------------------------------------------------------------- client */

/* Body text: lines cut from a fixed pseudo-random alphabet string at
 * positions that depend on (seq, line), so every message differs. */
#define BODY_LINE 76
static const char body_text[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:!?"
	"The quick brown fox jumps over the lazy dog while mxgate counts it, "
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:!?";

static size_t expand(char *out, size_t cap, const char *pat, uint64_t s,
		     uint64_t m, uint32_t r)
{
	size_t o = 0;

	for (const char *p = pat; *p && o + 24 < cap; p++) {
		if (p[0] == '{' && p[1] && p[2] == '}' &&
		    (p[1] == 's' || p[1] == 'm' || p[1] == 'r')) {
			uint64_t v = p[1] == 's' ? s : p[1] == 'm' ? m : r;

			o += (size_t)snprintf(out + o, cap - o, "%" PRIu64, v);
			p += 2;
			continue;
		}
		out[o++] = *p;
	}
	return o;
}

static void await_push(struct smtpb_client *c, enum smtpb_step step)
{
	uint32_t k = (c->await_head + c->await_n) % SMTPB_MAX_INFLIGHT;

	c->await[k].step = (uint8_t)step;
	c->await[k].end_pos = c->pos_queued;
	c->await[k].sent_us = 0;
	c->await_n++;
}

static void put(struct smtpb_client *c, const char *s, size_t n)
{
	if (c->out_len + n > sizeof(c->out)) {
		c->overflow = true;
		return;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	c->pos_queued += n;
}

static void cmd(struct smtpb_client *c, enum smtpb_step step,
		const char *fmt_pat, const char *arg, uint32_t r)
{
	char b[600];
	size_t n = (size_t)snprintf(b, sizeof(b), "%s", fmt_pat);

	if (arg) {
		n += expand(b + n, sizeof(b) - n - 4, arg, c->session,
			    c->msg.seq, r);
		b[n++] = '>';
	}
	b[n++] = '\r';
	b[n++] = '\n';
	put(c, b, n);
	await_push(c, step);
}

void smtpb_client_init(struct smtpb_client *c,
		       const struct smtpb_client_conf *conf, uint32_t session,
		       uint64_t now_us)
{
	memset(c, 0, sizeof(*c));
	c->conf = conf;
	c->session = session;
	c->state = SMTPB_C_GREETING;
	await_push(c, SMTPB_GREETING);
	c->await[0].sent_us = now_us;
}

bool smtpb_client_wants_msg(const struct smtpb_client *c)
{
	return c->state == SMTPB_C_IDLE;
}

/* Header block of the current message into hdr[]. */
static void build_header(struct smtpb_client *c)
{
	char to[300];
	size_t n =
		expand(to, sizeof(to), c->conf->to, c->session, c->msg.seq, 0);

	to[n] = 0;
	c->hdr_len = (size_t)snprintf(
		c->hdr, sizeof(c->hdr),
		"To: <%s>\r\nSubject: mxgate-bench %" PRIu64 "\r\n"
		"Message-ID: <%016" PRIx64 ".%" PRIu64 "@mxgate-bench>\r\n"
		"X-Bench: %016" PRIx64 " %" PRIu64 "\r\n\r\n",
		to, c->msg.seq, c->conf->nonce, c->msg.seq, c->conf->nonce,
		c->msg.seq);
	if (c->hdr_len >= sizeof(c->hdr))
		c->hdr_len = sizeof(c->hdr) - 1;
	/* body lines: what the size asks for beyond the header and the
	 * trailer line (about 50 bytes), at least none */
	c->body_lines = 0;
	if (c->msg.size > c->hdr_len + 52)
		c->body_lines = (uint32_t)((c->msg.size - c->hdr_len - 52 +
					    BODY_LINE + 1) /
					   (BODY_LINE + 2));
	c->body_line = 0;
	c->hdr_done = 0;
	c->body_hash = SMTPB_FNV_INIT;
	c->body_len = 0;
}

/* Total bytes of the message as built (header, lines, trailer): BDAT
 * needs it before the first byte. The trailer has a fixed width. */
#define TRAILER_LEN (15 + 12 + 1 + 16 + 2) /* "x-bench-digest %012 %016\r\n"   \
					    */
static uint64_t message_size(const struct smtpb_client *c)
{
	return c->hdr_len + (uint64_t)c->body_lines * (BODY_LINE + 2) +
	       TRAILER_LEN;
}

static void start_txn(struct smtpb_client *c)
{
	c->rcpts_ok = 0;
	c->msg_failed = false;
	c->msg_bytes = 0;
	cmd(c, SMTPB_MAIL, "MAIL FROM:<", c->conf->from, 0);
	c->state = SMTPB_C_TXN;
	c->next_rcpt = 0;
	if (!c->pipelining)
		return;
	while (c->next_rcpt < c->msg.rcpts)
		cmd(c, SMTPB_RCPT, "RCPT TO:<", c->conf->to, c->next_rcpt++);
	if (c->chunking) {
		char b[64];
		size_t n = (size_t)snprintf(b, sizeof(b),
					    "BDAT %" PRIu64 " LAST\r\n",
					    message_size(c));
		put(c, b, n);
		c->state = SMTPB_C_BODY;
	} else {
		cmd(c, SMTPB_DATA, "DATA", NULL, 0);
	}
}

void smtpb_client_next(struct smtpb_client *c, const struct smtpb_msg *msg)
{
	if (c->state != SMTPB_C_IDLE)
		return;
	if (!msg) {
		cmd(c, SMTPB_QUIT, "QUIT", NULL, 0);
		c->state = SMTPB_C_QUIT;
		return;
	}
	c->msg = *msg;
	if (c->msg.rcpts < 1)
		c->msg.rcpts = 1;
	if (c->msg.rcpts > SMTPB_MAX_RCPTS)
		c->msg.rcpts = SMTPB_MAX_RCPTS;
	build_header(c);
	if (c->need_rset) {
		c->need_rset = false;
		cmd(c, SMTPB_RSET, "RSET", NULL, 0);
	}
	start_txn(c);
}

/* Generate body bytes into out[] while there is room. */
static void fill_body(struct smtpb_client *c)
{
	while (c->state == SMTPB_C_BODY) {
		size_t room = sizeof(c->out) - c->out_len;

		if (c->hdr_done < c->hdr_len) {
			size_t n = c->hdr_len - c->hdr_done;

			if (n > room)
				n = room;
			put(c, c->hdr + c->hdr_done, n);
			c->hdr_done += n;
			continue;
		}
		if (room < BODY_LINE + 2 + TRAILER_LEN + 8)
			return;
		if (c->body_line < c->body_lines) {
			uint64_t x = (c->msg.seq * 2654435761u +
				      c->body_line * 40503u);
			const char *src =
				body_text + x % (sizeof(body_text) - BODY_LINE);
			char *dst = c->out + c->out_len;

			c->body_hash =
				smtpb_line_hash(c->body_hash, src, BODY_LINE);
			c->body_len += BODY_LINE + 2;
			put(c, src, BODY_LINE);
			put(c, "\r\n", 2);
			/* never a leading dot (no stuffing needed) */
			if (dst[0] == '.')
				dst[0] = '_';
			c->body_line++;
			continue;
		}
		{
			char b[80];
			size_t n = (size_t)snprintf(b, sizeof(b),
						    "x-bench-digest %012" PRIu64
						    " %016" PRIx64 "\r\n",
						    c->body_len, c->body_hash);

			put(c, b, n);
		}
		if (!c->chunking)
			put(c, ".\r\n", 3);
		c->msg_bytes = message_size(c);
		await_push(c, SMTPB_DOT);
		c->state = SMTPB_C_DOT;
	}
}

size_t smtpb_client_peek(struct smtpb_client *c, const char **p)
{
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off > sizeof(c->out) / 2) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	fill_body(c);
	*p = c->out + c->out_off;
	return c->out_len - c->out_off;
}

void smtpb_client_sent(struct smtpb_client *c, size_t k, uint64_t now_us)
{
	c->out_off += k;
	c->pos_sent += k;
	for (uint32_t i = 0; i < c->await_n; i++) {
		uint32_t j = (c->await_head + i) % SMTPB_MAX_INFLIGHT;

		if (c->await[j].sent_us)
			continue;
		if (c->await[j].end_pos > c->pos_sent)
			break;
		c->await[j].sent_us = now_us ? now_us : 1;
	}
}

enum smtpb_step smtpb_client_waiting(const struct smtpb_client *c)
{
	if (c->await_n)
		return (enum smtpb_step)c->await[c->await_head].step;
	if (c->state == SMTPB_C_TLS)
		return SMTPB_STARTTLS; /* in the handshake */
	return c->state == SMTPB_C_BODY ? SMTPB_DOT : SMTPB_QUIT;
}

/* End of the current message: report, then idle (RSET first next time
 * when the server may hold a half transaction). */
static void msg_end(struct smtpb_client *c, struct smtpb_event *e,
		    bool accepted)
{
	e->msg_done = true;
	e->msg_accepted = accepted;
	e->msg_rcpts_ok = c->rcpts_ok;
	e->msg_bytes = c->msg_bytes;
	if (!accepted)
		c->need_rset = true;
	c->state = SMTPB_C_IDLE;
}

/* One reply for the awaited head step. Returns false on a protocol
 * error. */
static bool on_reply(struct smtpb_client *c, int code, struct smtpb_event *e)
{
	uint32_t h = c->await_head;
	enum smtpb_step step;
	bool ok = code / 100 == 2;

	if (c->await_n == 0)
		return false; /* a reply nobody asked for */
	step = (enum smtpb_step)c->await[h].step;
	e->step = step;
	e->code = code;
	e->sent_us = c->await[h].sent_us;
	c->await_head = (h + 1) % SMTPB_MAX_INFLIGHT;
	c->await_n--;

	switch (step) {
	case SMTPB_GREETING:
		if (code != 220) {
			cmd(c, SMTPB_QUIT, "QUIT", NULL, 0);
			c->state = SMTPB_C_QUIT;
			return true;
		}
		{
			char b[300];
			size_t n = (size_t)snprintf(b, sizeof(b), "EHLO %s\r\n",
						    c->conf->helo);
			put(c, b, n);
			await_push(c, SMTPB_EHLO);
		}
		c->state = SMTPB_C_EHLO;
		c->rp.pipelining = c->rp.chunking = c->rp.starttls = false;
		return true;
	case SMTPB_EHLO:
		if (!ok) {
			cmd(c, SMTPB_QUIT, "QUIT", NULL, 0);
			c->state = SMTPB_C_QUIT;
			return true;
		}
		if (c->conf->starttls && !c->tls) {
			if (!c->rp.starttls)
				return false; /* not offered: never plaintext */
			cmd(c, SMTPB_STARTTLS, "STARTTLS", NULL, 0);
			c->state = SMTPB_C_STARTTLS;
			return true;
		}
		c->pipelining = c->conf->pipelining && c->rp.pipelining;
		c->chunking = c->conf->bdat && c->rp.chunking;
		c->state = SMTPB_C_IDLE;
		return true;
	case SMTPB_STARTTLS:
		if (code != 220) {
			cmd(c, SMTPB_QUIT, "QUIT", NULL, 0);
			c->state = SMTPB_C_QUIT;
			return true;
		}
		c->state = SMTPB_C_TLS;
		return true;
	case SMTPB_RSET:
		return true;
	case SMTPB_QUIT:
		c->state = SMTPB_C_DONE;
		return true;
	case SMTPB_MAIL:
		if (!ok)
			c->msg_failed = true;
		break;
	case SMTPB_RCPT:
		if (ok)
			c->rcpts_ok++;
		break;
	case SMTPB_DATA:
		if (code == 354) {
			c->state = SMTPB_C_BODY;
			return true;
		}
		msg_end(c, e, false);
		return true;
	case SMTPB_DOT:
		msg_end(c, e, ok);
		return true;
	default:
		return false;
	}
	/* MAIL or RCPT answered. */
	if (c->pipelining) {
		/* BDAT: the whole group is in flight; its reply (DOT)
		 * closes it. DATA: the DATA reply decides. */
		return true;
	}
	if (c->msg_failed) {
		msg_end(c, e, false);
		return true;
	}
	if (c->next_rcpt < c->msg.rcpts) {
		cmd(c, SMTPB_RCPT, "RCPT TO:<", c->conf->to, c->next_rcpt++);
		return true;
	}
	if (!c->rcpts_ok) {
		msg_end(c, e, false);
		return true;
	}
	if (c->chunking) {
		char b[64];
		size_t n = (size_t)snprintf(b, sizeof(b),
					    "BDAT %" PRIu64 " LAST\r\n",
					    message_size(c));
		put(c, b, n);
		c->state = SMTPB_C_BODY;
	} else {
		cmd(c, SMTPB_DATA, "DATA", NULL, 0);
	}
	return true;
}

int smtpb_client_input(struct smtpb_client *c, const char *in, size_t len,
		       size_t *used, struct smtpb_event *ev, int max)
{
	size_t off = 0;
	int n = 0;

	while (n < max && off < len && c->state != SMTPB_C_FAILED) {
		size_t u;
		int code = 0;
		enum smtpb_parse r = smtpb_reply_feed(&c->rp, in + off,
						      len - off, &u, &code);

		off += u;
		if (r == SMTPB_NEED_MORE)
			break;
		memset(&ev[n], 0, sizeof(ev[n]));
		if (r == SMTPB_BAD || !on_reply(c, code, &ev[n]) ||
		    c->overflow) {
			c->state = SMTPB_C_FAILED;
			*used = off;
			return -1;
		}
		n++;
		if (c->state == SMTPB_C_TLS)
			break; /* what follows is TLS, not replies */
	}
	*used = off;
	return n;
}

bool smtpb_client_wants_tls(const struct smtpb_client *c)
{
	return c->state == SMTPB_C_TLS;
}

void smtpb_client_tls_done(struct smtpb_client *c)
{
	char b[300];
	size_t n;

	if (c->state != SMTPB_C_TLS)
		return;
	c->tls = true;
	c->rp.len = 0;
	c->rp.code = 0;
	c->rp.pipelining = c->rp.chunking = c->rp.starttls = false;
	n = (size_t)snprintf(b, sizeof(b), "EHLO %s\r\n", c->conf->helo);
	put(c, b, n);
	await_push(c, SMTPB_EHLO);
	c->state = SMTPB_C_EHLO;
}

/* ----------------------------------------------------------------- sink */

static uint32_t rnd100(struct smtpb_sink *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (uint32_t)(((s->rng * 0x2545F4914F6CDD1DULL) >> 33) % 100);
}

static void reply(struct smtpb_sink *s, enum smtpb_step step, const char *r,
		  uint64_t now_us)
{
	size_t n = strlen(r);
	uint64_t t = now_us + s->conf->delay_us[step];

	if (s->out_len + n > sizeof(s->out))
		return; /* a client that never reads: its replies are lost */
	memcpy(s->out + s->out_len, r, n);
	s->out_len += n;
	if (t > s->ready_us)
		s->ready_us = t;
}

void smtpb_sink_init(struct smtpb_sink *s, const struct smtpb_sink_conf *conf,
		     uint64_t conn_seed, uint64_t now_us)
{
	memset(s, 0, sizeof(*s));
	s->conf = conf;
	s->rng = (conf->seed ^ (conn_seed * 0x9E3779B97F4A7C15ULL)) | 1;
	if (conf->drop_pct && rnd100(s) < conf->drop_pct) {
		s->drop_armed = true;
		s->drop_at = (enum smtpb_step)(rnd100(s) % (SMTPB_DOT + 1));
	}
	if (s->drop_armed && s->drop_at == SMTPB_GREETING)
		return; /* dropped before the greeting: caller sees ev DROP */
	reply(s, SMTPB_GREETING, "220 mxgate-bench sink ESMTP\r\n", now_us);
}

void smtpb_sink_tls_done(struct smtpb_sink *s)
{
	s->tls = true;
	s->len = 0;
	s->line_overflow = false;
	s->in_txn = false;
	s->rcpts = 0;
	s->state = SMTPB_S_CMD;
}

bool smtpb_sink_drop_now(const struct smtpb_sink *s)
{
	return s->drop_armed && s->drop_at == SMTPB_GREETING;
}

static bool cmd_is(const char *l, size_t n, const char *word)
{
	size_t w = strlen(word);

	if (n < w)
		return false;
	for (size_t i = 0; i < w; i++) {
		char c = l[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c != word[i])
			return false;
	}
	return n == w || l[w] == ' ' || l[w] == ':';
}

static void body_start(struct smtpb_sink *s)
{
	memset(&s->m, 0, sizeof(s->m));
	s->m.rcpts = s->rcpts;
	s->in_headers = true;
	s->body_hash = SMTPB_FNV_INIT;
	s->body_len = 0;
	s->trailer_seen = false;
	s->after_trailer = false;
	s->len = 0;
	s->blen = 0;
	s->line_overflow = false;
}

/* One line of message content (without CRLF, dot-stuffing undone). */
static void body_line(struct smtpb_sink *s, const char *l, size_t n)
{
	s->m.bytes += n + 2;
	if (s->in_headers) {
		if (n == 0) {
			s->in_headers = false;
			return;
		}
		if (n > 9 && !memcmp(l, "X-Bench: ", 9)) {
			char b[80];
			unsigned long long nonce, seq;

			memcpy(b, l + 9, n - 9 < 79 ? n - 9 : 79);
			b[n - 9 < 79 ? n - 9 : 79] = 0;
			if (sscanf(b, "%llx %llu", &nonce, &seq) == 2) {
				s->m.has_bench = true;
				s->m.nonce = nonce;
				s->m.seq = seq;
			}
		}
		return;
	}
	if (!s->conf->check_digest)
		return;
	if (s->trailer_seen) {
		s->after_trailer = true;
		return;
	}
	if (n > 15 && !memcmp(l, "x-bench-digest ", 15)) {
		char b[64];
		unsigned long long len, h;

		memcpy(b, l + 15, n - 15 < 63 ? n - 15 : 63);
		b[n - 15 < 63 ? n - 15 : 63] = 0;
		s->trailer_seen = true;
		s->trailer_ok = sscanf(b, "%llu %llx", &len, &h) == 2 &&
				len == s->body_len && h == s->body_hash;
		return;
	}
	s->body_hash = smtpb_line_hash(s->body_hash, l, n);
	s->body_len += n + 2;
}

static void msg_accept(struct smtpb_sink *s, uint64_t now_us,
		       enum smtpb_sink_ev *ev, struct smtpb_sink_msg *msg)
{
	s->m.digest_ok = s->trailer_seen && s->trailer_ok &&
			 !s->after_trailer && !s->line_overflow;
	if (s->drop_armed && s->drop_at == SMTPB_DOT) {
		*ev = SMTPB_S_DROP;
		s->state = SMTPB_S_CLOSED;
		return;
	}
	reply(s, SMTPB_DOT, "250 2.0.0 Ok: queued\r\n", now_us);
	*msg = s->m;
	*ev = SMTPB_S_MSG;
	s->in_txn = false;
	s->rcpts = 0;
	s->state = SMTPB_S_CMD;
}

static bool drop_here(struct smtpb_sink *s, enum smtpb_step step,
		      enum smtpb_sink_ev *ev)
{
	if (!s->drop_armed || s->drop_at != step)
		return false;
	*ev = SMTPB_S_DROP;
	s->state = SMTPB_S_CLOSED;
	return true;
}

static void command(struct smtpb_sink *s, const char *l, size_t n,
		    uint64_t now_us, enum smtpb_sink_ev *ev)
{
	const struct smtpb_sink_conf *cf = s->conf;

	if (cmd_is(l, n, "EHLO")) {
		char b[200];

		snprintf(b, sizeof(b),
			 "250-mxgate-bench\r\n%s%s%s250 8BITMIME\r\n",
			 cf->pipelining ? "250-PIPELINING\r\n" : "",
			 cf->chunking ? "250-CHUNKING\r\n" : "",
			 cf->starttls && !s->tls ? "250-STARTTLS\r\n" : "");
		if (!drop_here(s, SMTPB_EHLO, ev))
			reply(s, SMTPB_EHLO, b, now_us);
		s->in_txn = false;
	} else if (cmd_is(l, n, "HELO")) {
		reply(s, SMTPB_EHLO, "250 mxgate-bench\r\n", now_us);
	} else if (cmd_is(l, n, "MAIL")) {
		if (drop_here(s, SMTPB_MAIL, ev))
			return;
		if (s->in_txn) {
			reply(s, SMTPB_MAIL, "503 5.5.1 nested MAIL\r\n",
			      now_us);
			return;
		}
		s->in_txn = true;
		s->rcpts = 0;
		reply(s, SMTPB_MAIL, "250 2.1.0 Ok\r\n", now_us);
	} else if (cmd_is(l, n, "RCPT")) {
		uint32_t r;

		if (drop_here(s, SMTPB_RCPT, ev))
			return;
		if (!s->in_txn) {
			reply(s, SMTPB_RCPT, "503 5.5.1 need MAIL\r\n", now_us);
			return;
		}
		r = rnd100(s);
		if (r < cf->rcpt_5xx_pct) {
			reply(s, SMTPB_RCPT, "550 5.1.1 unknown user\r\n",
			      now_us);
		} else if (r < cf->rcpt_5xx_pct + cf->rcpt_4xx_pct) {
			reply(s, SMTPB_RCPT, "450 4.2.0 try later\r\n", now_us);
		} else {
			s->rcpts++;
			reply(s, SMTPB_RCPT, "250 2.1.5 Ok\r\n", now_us);
		}
	} else if (cmd_is(l, n, "DATA")) {
		if (drop_here(s, SMTPB_DATA, ev))
			return;
		if (!s->in_txn || !s->rcpts) {
			reply(s, SMTPB_DATA,
			      "554 5.5.1 no valid recipients\r\n", now_us);
			return;
		}
		reply(s, SMTPB_DATA, "354 End data with <CR><LF>.<CR><LF>\r\n",
		      now_us);
		body_start(s);
		s->state = SMTPB_S_DATA;
	} else if (cmd_is(l, n, "BDAT")) {
		unsigned long long sz = 0;
		char b[64];
		size_t k = n - 4 < 63 ? n - 4 : 63;

		memcpy(b, l + 4, k);
		b[k] = 0;
		if (!cf->chunking || sscanf(b, "%llu", &sz) != 1) {
			reply(s, SMTPB_DATA, "501 5.5.4 bad BDAT\r\n", now_us);
			return;
		}
		/* RFC 3030: the chunk is read even when refused. */
		if (!s->bdat_open) {
			body_start(s);
			s->bdat_open = true;
			s->bdat_refused = !s->in_txn || !s->rcpts;
		}
		s->bdat_left = sz;
		s->bdat_last = strstr(b, "LAST") || strstr(b, "last");
		s->state = SMTPB_S_BDAT;
	} else if (cmd_is(l, n, "RSET")) {
		s->in_txn = false;
		s->rcpts = 0;
		s->bdat_open = false;
		reply(s, SMTPB_RSET, "250 2.0.0 Ok\r\n", now_us);
	} else if (cmd_is(l, n, "QUIT")) {
		reply(s, SMTPB_QUIT, "221 2.0.0 Bye\r\n", now_us);
		*ev = SMTPB_S_QUIT;
		s->state = SMTPB_S_CLOSED;
	} else if (cf->starttls && !s->tls && cmd_is(l, n, "STARTTLS")) {
		if (s->in_txn) {
			reply(s, SMTPB_STARTTLS, "503 5.5.1 in a transaction\r\n",
			      now_us);
			return;
		}
		reply(s, SMTPB_STARTTLS, "220 2.0.0 Ready to start TLS\r\n",
		      now_us);
		*ev = SMTPB_S_STARTTLS;
	} else if (cmd_is(l, n, "NOOP")) {
		reply(s, SMTPB_RSET, "250 2.0.0 Ok\r\n", now_us);
	} else {
		reply(s, SMTPB_RSET, "502 5.5.2 not implemented\r\n", now_us);
	}
}

/* A complete chunk of BDAT content arrived. */
static void bdat_done(struct smtpb_sink *s, uint64_t now_us,
		      enum smtpb_sink_ev *ev, struct smtpb_sink_msg *msg)
{
	/* A line may span chunks: only the last chunk ends the last one
	 * (RFC 3030 does not require content to end with CRLF). */
	if (s->bdat_last && s->blen) {
		body_line(s, s->bline, s->blen);
		s->blen = 0;
	}
	s->state = SMTPB_S_CMD;
	if (s->bdat_refused) {
		if (s->bdat_last)
			s->bdat_open = false;
		reply(s, SMTPB_DOT, "554 5.5.1 no valid recipients\r\n",
		      now_us);
		return;
	}
	if (!s->bdat_last) {
		char b[64];

		snprintf(b, sizeof(b), "250 2.0.0 %llu octets\r\n",
			 (unsigned long long)s->m.bytes);
		reply(s, SMTPB_DATA, b, now_us);
		return;
	}
	s->bdat_open = false;
	msg_accept(s, now_us, ev, msg);
}

void smtpb_sink_input(struct smtpb_sink *s, const char *in, size_t len,
		      size_t *used, uint64_t now_us, enum smtpb_sink_ev *ev,
		      struct smtpb_sink_msg *msg)
{
	size_t i = 0;

	*ev = SMTPB_S_NONE;
	while (i < len && *ev == SMTPB_S_NONE && s->state != SMTPB_S_CLOSED) {
		if (s->state == SMTPB_S_BDAT) {
			/* BDAT content is lines too (for the digest) but
			 * unstuffed and ended by its count. */
			size_t take = len - i;

			if (take > s->bdat_left)
				take = (size_t)s->bdat_left;
			for (size_t k = 0; k < take; k++) {
				char ch = in[i + k];

				if (ch == '\n' && s->blen &&
				    s->bline[s->blen - 1] == '\r') {
					body_line(s, s->bline, s->blen - 1);
					s->blen = 0;
				} else if (s->blen < sizeof(s->bline)) {
					s->bline[s->blen++] = ch;
				} else {
					s->line_overflow = true;
				}
			}
			i += take;
			s->bdat_left -= take;
			if (s->bdat_left == 0)
				bdat_done(s, now_us, ev, msg);
			continue;
		}
		{
			const char *nl = memchr(in + i, '\n', len - i);
			size_t end = nl ? (size_t)(nl - in) : len;
			size_t n = end - i;

			if (s->len + n > sizeof(s->line)) {
				s->line_overflow = true;
				n = sizeof(s->line) - s->len;
			}
			memcpy(s->line + s->len, in + i, n);
			s->len += n;
			i = end;
			if (!nl)
				break;
			i++; /* the LF */
		}
		{
			size_t n = s->len;
			const char *l = s->line;

			if (n && l[n - 1] == '\r')
				n--;
			s->len = 0;
			if (s->state == SMTPB_S_DATA) {
				if (n == 1 && l[0] == '.') {
					msg_accept(s, now_us, ev, msg);
					continue;
				}
				if (n && l[0] == '.') { /* RFC 5321 4.5.2 */
					l++;
					n--;
				}
				body_line(s, l, n);
				continue;
			}
			if (s->line_overflow) {
				s->line_overflow = false;
				reply(s, SMTPB_RSET,
				      "500 5.5.6 line too long\r\n", now_us);
				continue;
			}
			command(s, l, n, now_us, ev);
		}
	}
	*used = i;
}

size_t smtpb_sink_peek(struct smtpb_sink *s, uint64_t now_us, const char **p)
{
	if (!s->out_len || now_us < s->ready_us)
		return 0;
	*p = s->out;
	return s->out_len;
}

void smtpb_sink_sent(struct smtpb_sink *s, size_t k)
{
	memmove(s->out, s->out + k, s->out_len - k);
	s->out_len -= k;
}
