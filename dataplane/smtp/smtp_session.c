/*
 * smtp_session.c - the SMTP server session engine (RFC 5321 + ESMTP), sans
 * I/O. See smtp_session.h for the caller's contract and docs/smtp-engine.md
 * for the states, replies and smuggling rules.
 *
 * Ownership: one session belongs to one lcore/thread; nothing is shared.
 * Promises: never blocks, never allocates after smtp_session_create() (all
 * buffers are carved from the one block), never touches a socket, clock or
 * file, never reads past a buffer whatever the input (fuzzed).
 *
 * Shape (OpenSMTPD smtp_session.c style): one enum smtp_state; input is
 * cut into command lines (line_input) or body octets (body_input); each
 * command has one handler (cmd_*); each answered request has one place
 * where its verdict moves the state (on_verdict). While any event is queued
 * no input is processed, which is what keeps pipelined replies in order.
 * A deferred RCPT (SMTP_V_DEFER) is the one request answered without a
 * reply: its place in the output is remembered (struct smtp_defer), the
 * caller sees output only up to the first unanswered one, and only
 * further RCPT lines are read until all are answered.
 */
#include "smtp_session.h"
#include "smtp_body.h"
#include "smtp_parse.h"
#include "dataplane/fmt.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SMTP_EVQ 4             /* events queued at most at once */
#define REPLY_MAX 1024         /* one reply, all lines, at most */
#define CLOSE_RESERVE 384      /* room kept for a final 421 */
#define BODY_MIN_ROOM 64       /* data area room needed to read body */

struct evslot {
	struct smtp_event ev;
	uint64_t t;            /* when it was queued (verdict deadline) */
};

enum lex { LEX_LINE = 0, LEX_SKIP };

/* A RCPT whose verdict was deferred: where its reply goes in the output
 * (octets after out_off), the request's time (its verdict deadline). */
struct smtp_defer {
	uint32_t index;        /* rcpt.index, the caller's ticket */
	uint32_t pos;          /* reply position in the output window */
	uint64_t t;
	bool done;             /* reply written, an earlier one still open */
};

/* The work area: what a session needs only while something is in flight
 * (a command being answered, a transaction, replies or body bytes not yet
 * taken). It heads the buffer block: work, in, out, data, arg. With a
 * pool (smtp_session_init_pooled) it is taken when needed and given back
 * when the session is idle, so an idle session is its struct alone. */
struct smtp_work {
	struct smtp_path mpath, rpath;
	char envid[101];
	char mauth[501];
	char orcpt[501];
	char helo[256];
	char etrn[256];
	struct smtp_defer defer[SMTP_RCPT_DEFER_MAX]; /* ring, command order */
};

struct smtp_session {
	enum smtp_state state;
	enum lex lex;          /* command lexer: normal, or skipping a long line */

	/* Listener config (copied at init). */
	uint32_t flags;
	bool normalize;
	uint32_t max_cmd_line, max_text_line, max_auth_line, max_rcpts;
	uint32_t max_errors, max_defer;
	uint64_t max_msg_size;
	uint32_t tmo_greeting, tmo_command, tmo_mail, tmo_rcpt, tmo_data_init,
		 tmo_data_block, tmo_data_term;
	const char *host, *banner, *mechs;

	/* Session facts (not states: they hold across the phases). */
	uint64_t now, t_mark;  /* clock; last progress on the client side */
	bool tls_active, auth_ok, esmtp, data_paused;
	uint32_t nrcpt, rcpt_tried, auth_step;
	size_t ahead;          /* input received after the current line */
	size_t feed_ahead;     /* caller bytes not yet in the window */

	/* Body of the current message. */
	struct smtp_body body;
	bool body_discard;     /* reading the body only to find its end */
	enum smtp_reset_reason discard_why;
	bool bdat_txn;         /* this transaction's body came by BDAT */
	bool bdat_accepted;    /* current chunk feeds the body */
	bool bdat_last;
	uint64_t bdat_left;    /* octets of the current chunk still to read */
	uint64_t bdat_chunk;   /* octets of the current chunk */
	uint64_t bdat_total;   /* octets declared by this message's chunks */
	enum smtp_state bdat_ret; /* state after a refused chunk */

	/* Strings the events point to. mail's pointers and the work area
	 * are only used while the work area is held (see hold()). */
	struct smtp_mail mail;
	char mech[24];
	struct smtp_work *w;   /* paths and strings of the transaction */
	char *arg;             /* AUTH responses, max_auth_line octets */
	const struct smtp_buf_pool *pool; /* NULL: buffers in the block */

	/* Deferred RCPTs: w->defer[dh .. dh+dn) in command order; the head
	 * is never done (answered heads are popped). */
	uint32_t dh, dn;
	uint32_t reply_lim;    /* octets a custom reply may take */

	/* Events. */
	struct evslot q[SMTP_EVQ];
	uint8_t qh, qn;
	uint32_t seq;
	struct smtp_event chunk_ev;

	struct smtp_stats st;

	/* Buffers: each is data at [off, off+len) of [0, cap). */
	uint8_t *in, *out, *data;
	uint32_t in_cap, in_off, in_len;
	uint32_t out_cap, out_off, out_len;
	uint32_t data_cap, data_off, data_len;

	struct smtp_alloc alloc; /* set when created by smtp_session_create */
	size_t memsize;
};

static const char *const state_names[SMTP_ST__COUNT] = {
	"CONNECT", "REJECTED", "HELO", "READY", "MAIL", "RCPT", "DATA",
	"BDAT", "BDAT_MORE", "EOM", "AUTH", "TLS", "CLOSED",
};

static const char *const event_names[SMTP_EV__COUNT] = {
	"NONE", "CONNECT", "HELO", "MAIL", "RCPT", "DATA", "DATA_END",
	"STARTTLS", "AUTH", "ETRN", "RESET", "CLOSE", "DATA_CHUNK",
};

const char *
smtp_state_name(enum smtp_state st)
{
	return (unsigned)st < SMTP_ST__COUNT ? state_names[st] : "?";
}

const char *
smtp_event_name(enum smtp_event_type t)
{
	return (unsigned)t < SMTP_EV__COUNT ? event_names[t] : "?";
}

static bool
is_request(enum smtp_event_type t)
{
	return t >= SMTP_REQ_CONNECT && t <= SMTP_REQ_ETRN;
}

/* ------------------------------------------------------------ config/init */

void
smtp_config_defaults(struct smtp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->hostname = "localhost";
	c->banner = "ESMTP";
	c->bare_eol = SMTP_BARE_EOL_REJECT;
	c->max_cmd_line = 512;          /* RFC 5321 4.5.3.1.4 */
	c->max_text_line = 1000;        /* RFC 5321 4.5.3.1.6 */
	c->max_rcpts = 100;             /* RFC 5321 4.5.3.1.8 minimum */
	c->max_msg_size = 10u << 20;
	c->max_errors = 10;
	c->max_rcpt_deferred = 16;
	c->tmo_greeting_ms = 300000;    /* RFC 5321 4.5.3.2.1 */
	c->tmo_command_ms = 300000;     /* 4.5.3.2.7 server timeout */
	c->tmo_mail_ms = 300000;        /* 4.5.3.2.2 */
	c->tmo_rcpt_ms = 300000;        /* 4.5.3.2.3 */
	c->tmo_data_init_ms = 120000;   /* 4.5.3.2.4 */
	c->tmo_data_block_ms = 180000;  /* 4.5.3.2.5 */
	c->tmo_data_term_ms = 600000;   /* 4.5.3.2.6 */
	c->in_buf_size = 4096;
	c->out_buf_size = 4096;
	c->data_buf_size = 16384;
}

/* Effective config: zero fields take the defaults. */
static void
cfg_fill(struct smtp_config *e, const struct smtp_config *c)
{
	struct smtp_config d;

	smtp_config_defaults(&d);
	*e = *c;
#define DEF(f) if (e->f == 0) e->f = d.f
	DEF(max_cmd_line); DEF(max_text_line); DEF(max_rcpts);
	DEF(max_msg_size); DEF(max_errors); DEF(max_rcpt_deferred);
	DEF(tmo_greeting_ms);
	DEF(tmo_command_ms); DEF(tmo_mail_ms); DEF(tmo_rcpt_ms);
	DEF(tmo_data_init_ms); DEF(tmo_data_block_ms); DEF(tmo_data_term_ms);
	DEF(in_buf_size); DEF(out_buf_size); DEF(data_buf_size);
#undef DEF
	if (e->hostname == NULL || e->hostname[0] == 0)
		e->hostname = d.hostname;
	if (e->banner == NULL)
		e->banner = d.banner;
	if (e->auth_mechanisms == NULL)
		e->auth_mechanisms = "";
	if (e->max_auth_line == 0 || e->max_auth_line > e->in_buf_size)
		e->max_auth_line = e->in_buf_size;
}

static bool
cfg_valid(const struct smtp_config *e)
{
	return strlen(e->hostname) <= 255 && strlen(e->banner) <= 255 &&
	       strlen(e->auth_mechanisms) <= 200 &&
	       e->max_cmd_line >= 16 && e->max_cmd_line <= e->in_buf_size &&
	       e->max_auth_line >= e->max_cmd_line &&
	       e->out_buf_size >= REPLY_MAX + CLOSE_RESERVE + 512 &&
	       e->data_buf_size >= 256 && e->in_buf_size <= (1u << 30) &&
	       e->max_rcpt_deferred <= SMTP_RCPT_DEFER_MAX &&
	       e->out_buf_size <= (1u << 30) && e->data_buf_size <= (1u << 30);
}

static size_t
al16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static size_t
bufsize(const struct smtp_config *e)
{
	return al16(sizeof(struct smtp_work)) + al16(e->in_buf_size) +
	       al16(e->out_buf_size) + al16(e->data_buf_size) +
	       al16(e->max_auth_line + 1);
}

size_t
smtp_session_bufsize(const struct smtp_config *c)
{
	struct smtp_config e;

	cfg_fill(&e, c);
	return bufsize(&e);
}

size_t
smtp_session_memsize_pooled(const struct smtp_config *c)
{
	struct smtp_config e;

	cfg_fill(&e, c);
	return al16(sizeof(struct smtp_session)) +
	       al16(strlen(e.hostname) + 1) + al16(strlen(e.banner) + 1) +
	       al16(strlen(e.auth_mechanisms) + 1);
}

size_t
smtp_session_memsize(const struct smtp_config *c)
{
	struct smtp_config e;

	cfg_fill(&e, c);
	return smtp_session_memsize_pooled(c) + bufsize(&e);
}

/* Points the session's areas into a buffer block (bufsize() octets). */
static void
carve_bufs(struct smtp_session *s, uint8_t *cur)
{
	s->w = (struct smtp_work *)cur; cur += al16(sizeof(struct smtp_work));
	s->in = cur; cur += al16(s->in_cap);
	s->out = cur; cur += al16(s->out_cap);
	s->data = cur; cur += al16(s->data_cap);
	s->arg = (char *)cur;
	s->w->helo[0] = 0;
}

/* Makes sure the work area is there (a pooled session takes it from the
 * pool). False: the pool is empty; the caller does nothing this time. */
static bool
hold(struct smtp_session *s)
{
	void *b;

	if (s->w)
		return true;
	b = s->pool->get(s->pool->ctx);
	if (b == NULL)
		return false;
	carve_bufs(s, b);
	return true;
}

/* Gives a pooled session's work area back when nothing it holds is in
 * flight: no event queued (events point into it), no input held, no reply
 * or body byte untaken, and a phase that keeps nothing in it (greeted,
 * between transactions, refused, or closed). */
static void
idle(struct smtp_session *s)
{
	if (s->pool == NULL || s->w == NULL || s->qn || s->in_len ||
	    s->out_len || s->data_len)
		return;
	switch (s->state) {
	case SMTP_ST_HELO:
	case SMTP_ST_READY:
	case SMTP_ST_REJECTED:
	case SMTP_ST_CLOSED:
		break;
	default:
		return;
	}
	s->pool->put(s->pool->ctx, s->w);
	s->w = NULL;
	s->in = s->out = s->data = NULL;
	s->arg = NULL;
	s->in_off = s->out_off = s->data_off = 0;
}

static char *
carve_str(uint8_t **cur, const char *src)
{
	size_t n = strlen(src);
	char *d = (char *)*cur;

	memcpy(d, src, n + 1);
	*cur += al16(n + 1);
	return d;
}

static struct smtp_event *push(struct smtp_session *s,
		enum smtp_event_type t);

struct smtp_session *
smtp_session_init(void *mem, size_t size, const struct smtp_config *c,
		uint64_t now_ms)
{
	return smtp_session_init_pooled(mem, size, c, NULL, now_ms);
}

struct smtp_session *
smtp_session_init_pooled(void *mem, size_t size, const struct smtp_config *c,
		const struct smtp_buf_pool *pool, uint64_t now_ms)
{
	struct smtp_config e;
	struct smtp_session *s = mem;
	uint8_t *cur;

	if (mem == NULL || c == NULL)
		return NULL;
	cfg_fill(&e, c);
	if (!cfg_valid(&e) || size < (pool ? smtp_session_memsize_pooled(c)
					   : smtp_session_memsize(c)))
		return NULL;
	if (pool && (pool->get == NULL || pool->put == NULL))
		return NULL;
	memset(s, 0, sizeof(*s));
	cur = (uint8_t *)mem + al16(sizeof(*s));
	s->host = carve_str(&cur, e.hostname);
	s->banner = carve_str(&cur, e.banner);
	s->mechs = carve_str(&cur, e.auth_mechanisms);
	s->in_cap = e.in_buf_size;
	s->out_cap = e.out_buf_size;
	s->data_cap = e.data_buf_size;
	s->memsize = size;
	s->pool = pool;
	if (pool == NULL)
		carve_bufs(s, cur);

	s->flags = e.flags;
	s->normalize = e.bare_eol == SMTP_BARE_EOL_NORMALIZE;
	s->max_cmd_line = e.max_cmd_line;
	s->max_text_line = e.max_text_line;
	s->max_auth_line = e.max_auth_line;
	s->max_rcpts = e.max_rcpts;
	s->max_errors = e.max_errors;
	s->max_defer = e.max_rcpt_deferred;
	s->reply_lim = REPLY_MAX;
	s->max_msg_size = e.max_msg_size;
	s->tmo_greeting = e.tmo_greeting_ms;
	s->tmo_command = e.tmo_command_ms;
	s->tmo_mail = e.tmo_mail_ms;
	s->tmo_rcpt = e.tmo_rcpt_ms;
	s->tmo_data_init = e.tmo_data_init_ms;
	s->tmo_data_block = e.tmo_data_block_ms;
	s->tmo_data_term = e.tmo_data_term_ms;
	s->tls_active = (e.flags & SMTP_CFG_TLS_ACTIVE) != 0;

	s->now = s->t_mark = now_ms;
	s->state = SMTP_ST_CONNECT;
	push(s, SMTP_REQ_CONNECT);
	return s;
}

struct smtp_session *
smtp_session_create(const struct smtp_config *c, const struct smtp_alloc *a,
		uint64_t now_ms)
{
	size_t n;
	void *mem;
	struct smtp_session *s;

	if (a == NULL || a->alloc == NULL || c == NULL)
		return NULL;
	n = smtp_session_memsize(c);
	mem = a->alloc(a->ctx, n);
	if (mem == NULL)
		return NULL;
	s = smtp_session_init(mem, n, c, now_ms);
	if (s == NULL) {
		if (a->free)
			a->free(a->ctx, mem, n);
		return NULL;
	}
	s->alloc = *a;
	return s;
}

void
smtp_session_destroy(struct smtp_session *s)
{
	if (s == NULL || s->alloc.free == NULL)
		return;
	struct smtp_alloc a = s->alloc;
	a.free(a.ctx, s, s->memsize);
}

/* ------------------------------------------------------------ events */

static struct smtp_event *
push(struct smtp_session *s, enum smtp_event_type t)
{
	struct evslot *e;

	assert(s->qn < SMTP_EVQ);
	e = &s->q[(s->qh + s->qn) % SMTP_EVQ];
	s->qn++;
	memset(&e->ev, 0, sizeof(e->ev));
	e->ev.type = t;
	e->ev.seq = ++s->seq;
	e->t = s->now;
	return &e->ev;
}

static void
pop(struct smtp_session *s)
{
	s->qh = (uint8_t)((s->qh + 1) % SMTP_EVQ);
	s->qn--;
}

/* ------------------------------------------------------------ output */

static uint32_t
out_free(const struct smtp_session *s)
{
	return s->out_cap - s->out_len;
}

static void
out_put(struct smtp_session *s, const void *p, size_t n)
{
	if (s->out_off + s->out_len + n > s->out_cap && s->out_off > 0) {
		memmove(s->out, s->out + s->out_off, s->out_len);
		s->out_off = 0;
	}
	/* Room is checked before any command is taken (blocked()), so this
	 * only truncates on our own bug; it never overflows. */
	if (s->out_off + s->out_len + n > s->out_cap)
		n = s->out_cap - s->out_off - s->out_len;
	memcpy(s->out + s->out_off + s->out_len, p, n);
	s->out_len += (uint32_t)n;
}

#define REPLY(s, lit) out_put((s), lit "\r\n", sizeof(lit "\r\n") - 1)

static void __attribute__((format(printf, 2, 3)))
replyf(struct smtp_session *s, const char *fmt, ...)
{
	char buf[REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = mxg_vfmt(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	out_put(s, buf, (size_t)n);
}

static void push_close(struct smtp_session *s, enum smtp_close_reason r);

/* Before a final reply while RCPT verdicts are outstanding: the client
 * gets the replies up to the first unanswered RCPT, then the final one
 * (RFC 2920: replies in command order; what came after is dropped). */
static void
cut_deferred(struct smtp_session *s)
{
	if (s->dn == 0)
		return;
	s->out_len = s->w->defer[s->dh].pos;
	s->dn = 0;
}

/* The session ends: final reply already written (after cut_deferred). */
static void
close_session(struct smtp_session *s, enum smtp_close_reason r)
{
	/* every closing path cuts before its reply; never mis-order */
	assert(s->dn == 0);
	cut_deferred(s);
	s->state = SMTP_ST_CLOSED;
	s->qn = 0;
	s->in_len = s->in_off = 0;
	s->data_len = s->data_off = 0;
	s->lex = LEX_LINE;
	push_close(s, r);
}

static void
push_close(struct smtp_session *s, enum smtp_close_reason r)
{
	push(s, SMTP_EV_CLOSE)->close.reason = r;
}

/* A protocol error reply: counted; at max_errors the session ends. */
static void
error_reply(struct smtp_session *s, const char *line)
{
	out_put(s, line, strlen(line));
	out_put(s, "\r\n", 2);
	s->st.errors++;
	if (s->st.errors >= s->max_errors) {
		cut_deferred(s);
		replyf(s, "421 4.7.0 %s Error: too many errors", s->host);
		close_session(s, SMTP_CLOSE_ERRORS);
	}
}

/* RFC 2920 3.1: the command just handled may only end a pipeline group; if
 * more input was already there, the client did not wait for our reply.
 * Returns true if the session was closed for it. */
static bool
sync_violation(struct smtp_session *s, size_t ahead)
{
	if (ahead == 0 || s->auth_ok)
		return false;
	s->st.sync_violations++;
	if (!(s->flags & SMTP_CFG_SYNC_ENFORCE))
		return false;
	cut_deferred(s);
	REPLY(s, "554 5.5.0 Error: SMTP protocol synchronization");
	close_session(s, SMTP_CLOSE_SYNC);
	return true;
}

static bool
enh_valid(const char *e, int cls)
{
	/* RFC 3463: class "." subject(1-3 digits) "." detail(1-3 digits) */
	int k;

	if (e == NULL || e[0] != '0' + cls || e[1] != '.')
		return false;
	e += 2;
	for (int part = 0; part < 2; part++) {
		for (k = 0; k < 3 && e[k] >= '0' && e[k] <= '9'; k++)
			;
		if (k == 0)
			return false;
		e += k;
		if (part == 0 && *e++ != '.')
			return false;
	}
	return *e == 0;
}

/*
 * Writes a caller-supplied reply: every line "code[-| ]enh text". Controls
 * in text become spaces ('\n' separates lines), so a verdict can never
 * inject a reply or a line end. At most REPLY_MAX octets in all.
 */
static void
reply_custom(struct smtp_session *s, unsigned code, const char *enh,
		const char *text)
{
	char buf[REPLY_MAX];
	char ebuf[16];
	size_t o = 0, lim = s->reply_lim;
	int cls = (int)(code / 100);
	bool use_enh = cls == 2 || cls == 4 || cls == 5;

	if (use_enh && !enh_valid(enh, cls)) {
		mxg_fmt(ebuf, sizeof(ebuf), "%d.0.0", cls);
		enh = ebuf;
	}
	if (text == NULL)
		text = "";
	const char *t = text;
	do {
		const char *nl = strchr(t, '\n');
		size_t len = nl ? (size_t)(nl - t) : strlen(t);
		bool last = nl == NULL || nl[1] == 0;
		size_t hdr_need = 4 + (use_enh ? strlen(enh) + 1 : 0) + 2;
		if (o + hdr_need + 1 > lim)
			break;
		if (o + hdr_need + len > lim - 40)
			last = true; /* no room for more lines */
		o += (size_t)mxg_fmt(buf + o, lim - o, "%03u%c", code,
				last ? ' ' : '-');
		if (use_enh)
			o += (size_t)mxg_fmt(buf + o, lim - o, "%s ", enh);
		size_t room = lim - o - 2;
		if (len > room)
			len = room;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)t[i];
			buf[o++] = (char)(c < 32 || c == 127 ? ' ' : c);
		}
		buf[o++] = '\r';
		buf[o++] = '\n';
		if (last)
			break;
		t = nl + 1;
	} while (1);
	out_put(s, buf, o);
}

/* ------------------------------------------------------------ transaction */

static bool
in_txn(const struct smtp_session *s)
{
	return s->state == SMTP_ST_MAIL || s->state == SMTP_ST_RCPT ||
	       s->state == SMTP_ST_BDAT_MORE;
}

static void
txn_clear(struct smtp_session *s)
{
	s->nrcpt = s->rcpt_tried = 0;
	s->bdat_txn = false;
	s->bdat_total = 0;
	s->body_discard = false;
	memset(&s->mail, 0, sizeof(s->mail));
}

/* Ends (or discards) the mail transaction: back to READY (RFC 5321 4.1.4). */
static void
txn_end(struct smtp_session *s)
{
	txn_clear(s);
	s->state = SMTP_ST_READY;
}

static void
txn_reset(struct smtp_session *s, enum smtp_reset_reason why)
{
	if (!in_txn(s))
		return;
	push(s, SMTP_EV_RESET)->reset.reason = why;
	txn_end(s);
}

static void
data_drop(struct smtp_session *s)
{
	s->data_len = s->data_off = 0;
}

static bool
auth_offered(const struct smtp_session *s)
{
	/* RFC 4954 4 + DESIGN 4: no AUTH before TLS unless allowed. */
	return s->mechs[0] != 0 &&
	       (s->tls_active || (s->flags & SMTP_CFG_CLEARTEXT_AUTH));
}

static bool
mech_listed(const struct smtp_session *s, const char *m, size_t n)
{
	const char *p = s->mechs;

	while (*p) {
		while (*p == ' ')
			p++;
		size_t k = 0;
		while (p[k] && p[k] != ' ')
			k++;
		if (k == n && k > 0 && smtp_ieq(p, m, n))
			return true;
		p += k;
	}
	return false;
}

static void
reply_ehlo(struct smtp_session *s)
{
	char buf[REPLY_MAX];
	const char *ext[12];
	char size[40];
	int ne = 0, o;

	if (!(s->flags & SMTP_CFG_NO_PIPELINING))
		ext[ne++] = "PIPELINING";
	mxg_fmt(size, sizeof(size), "SIZE %" PRIu64, s->max_msg_size);
	ext[ne++] = size;
	if (!(s->flags & SMTP_CFG_NO_8BITMIME))
		ext[ne++] = "8BITMIME";
	if (!(s->flags & SMTP_CFG_NO_SMTPUTF8))
		ext[ne++] = "SMTPUTF8";
	ext[ne++] = "ENHANCEDSTATUSCODES";
	if (!(s->flags & SMTP_CFG_NO_CHUNKING))
		ext[ne++] = "CHUNKING";
	if (!(s->flags & SMTP_CFG_NO_DSN))
		ext[ne++] = "DSN";
	if (s->flags & SMTP_CFG_ETRN)
		ext[ne++] = "ETRN";
	if ((s->flags & SMTP_CFG_TLS_AVAILABLE) && !s->tls_active)
		ext[ne++] = "STARTTLS";
	o = mxg_fmt(buf, sizeof(buf), "250-%s\r\n", s->host);
	for (int i = 0; i < ne; i++)
		o += mxg_fmt(buf + o, sizeof(buf) - (size_t)o, "250%c%s\r\n",
				i == ne - 1 && !auth_offered(s) ? ' ' : '-',
				ext[i]);
	if (auth_offered(s))
		o += mxg_fmt(buf + o, sizeof(buf) - (size_t)o,
				"250 AUTH %s\r\n", s->mechs);
	out_put(s, buf, (size_t)o);
}

/* ------------------------------------------------------------ commands */

static const char *
skip_sp(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* One ESMTP parameter: keyword ["=" value] (RFC 5321 4.1.2). */
struct param {
	const char *key, *val;
	size_t klen, vlen;
};

/* Cuts the next parameter; returns 0, 1 at the end, -1 on bad syntax. */
static int
next_param(const char **pp, const char *end, struct param *pr)
{
	const char *p = skip_sp(*pp, end);

	if (p == end)
		return 1;
	pr->key = p;
	while (p < end && (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
			   (*p >= '0' && *p <= '9') || *p == '-'))
		p++;
	pr->klen = (size_t)(p - pr->key);
	pr->val = NULL;
	pr->vlen = 0;
	if (pr->klen == 0 || pr->key[0] == '-')
		return -1;
	if (p < end && *p == '=') {
		pr->val = ++p;
		while (p < end && *p != ' ' && *p != '=' &&
		       (unsigned char)*p > 32 && *p != 127)
			p++;
		pr->vlen = (size_t)(p - pr->val);
		if (pr->vlen == 0)
			return -1;
	}
	if (p < end && *p != ' ')
		return -1;
	*pp = p;
	return 0;
}

static bool
key_is(const struct param *pr, const char *k)
{
	size_t n = strlen(k);
	return pr->klen == n && smtp_ieq(pr->key, k, n);
}

static bool
val_is(const struct param *pr, const char *v)
{
	size_t n = strlen(v);
	return pr->vlen == n && smtp_ieq(pr->val, v, n);
}

static void
copy_val(char *dst, const struct param *pr)
{
	memcpy(dst, pr->val, pr->vlen);
	dst[pr->vlen] = 0;
}

static void
param_error(struct smtp_session *s, const struct param *pr, bool unknown)
{
	char line[160];
	int k = (int)(pr->klen > 40 ? 40 : pr->klen);

	if (unknown)
		mxg_fmt(line, sizeof(line),
			 "555 5.5.4 Unsupported option: %.*s", k, pr->key);
	else
		mxg_fmt(line, sizeof(line),
			 "501 5.5.4 Syntax error in parameter %.*s", k, pr->key);
	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 32 || *c == 127)
			*c = ' ';
	error_reply(s, line);
}

static void
cmd_helo(struct smtp_session *s, const char *a, const char *end, bool esmtp)
{
	const char *e;

	a = skip_sp(a, end);
	for (e = a; e < end && *e != ' '; e++)
		;
	if (a == end || skip_sp(e, end) != end || e - a > 255) {
		if (esmtp)
			error_reply(s, "501 5.5.4 Syntax: EHLO hostname");
		else
			error_reply(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	size_t n = (size_t)(e - a);
	memcpy(s->w->helo, a, n);
	s->w->helo[n] = 0;
	/* RFC 5321 4.1.4: EHLO/HELO inside a transaction is an implied RSET */
	txn_reset(s, SMTP_RESET_HELO);
	struct smtp_event *ev = push(s, SMTP_REQ_HELO);
	ev->helo.name = s->w->helo;
	ev->helo.esmtp = esmtp;
	ev->helo.valid = a[0] == '[' ? smtp_valid_addr_literal(a, n)
				     : smtp_valid_domain(a, n, true);
}

static bool
need_helo(struct smtp_session *s)
{
	if (s->state == SMTP_ST_HELO) {
		error_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return false;
	}
	return true;
}

/* RFC 3207 4: a listener that requires TLS answers 530 to the commands
 * that carry mail or credentials until STARTTLS succeeded. */
static bool
need_tls(struct smtp_session *s)
{
	if ((s->flags & SMTP_CFG_TLS_REQUIRED) && !s->tls_active) {
		error_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return false;
	}
	return true;
}

static void
path_error(struct smtp_session *s, int err, bool sender)
{
	if (err == SMTP_PATH_ETOOLONG)
		error_reply(s, sender ? "501 5.1.7 Error: sender address too long"
				      : "501 5.1.3 Error: recipient address too long");
	else
		error_reply(s, sender ? "501 5.1.7 Bad sender address syntax"
				      : "501 5.1.3 Bad recipient address syntax");
}

static void
cmd_mail(struct smtp_session *s, const char *a, const char *end)
{
	struct param pr;
	size_t used;
	int r;

	if (!need_helo(s) || !need_tls(s))
		return;
	if (in_txn(s)) {
		error_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (end - a < 5 || !smtp_ieq(a, "FROM:", 5)) {
		error_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	a = skip_sp(a + 5, end); /* tolerate "FROM: <a>" */
	r = smtp_parse_path(a, (size_t)(end - a), SMTP_PATH_REVERSE, &used,
			&s->w->mpath);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, true);
		return;
	}
	a += used;
	if (a < end && *a != ' ') {
		error_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	memset(&s->mail, 0, sizeof(s->mail));
	bool seen_size = false, seen_body = false, seen_utf8 = false,
	     seen_ret = false, seen_envid = false, seen_auth = false;
	while ((r = next_param(&a, end, &pr)) == 0) {
		bool dsn = !(s->flags & SMTP_CFG_NO_DSN);
		if (!s->esmtp) {
			param_error(s, &pr, true); /* RFC 5321 4.1.2: EHLO only */
			return;
		} else if (key_is(&pr, "SIZE")) {
			if (seen_size || !pr.val ||
			    !smtp_parse_u64(pr.val, pr.vlen, &s->mail.size))
				goto bad;
			seen_size = s->mail.has_size = true;
		} else if (key_is(&pr, "BODY") &&
			   !(s->flags & SMTP_CFG_NO_8BITMIME)) {
			if (seen_body || !pr.val)
				goto bad;
			if (val_is(&pr, "7BIT"))
				s->mail.body = SMTP_BODY_7BIT;
			else if (val_is(&pr, "8BITMIME"))
				s->mail.body = SMTP_BODY_8BITMIME;
			else
				goto bad;
			seen_body = true;
		} else if (key_is(&pr, "SMTPUTF8") &&
			   !(s->flags & SMTP_CFG_NO_SMTPUTF8)) {
			if (seen_utf8 || pr.val)
				goto bad;
			seen_utf8 = s->mail.smtputf8 = true;
		} else if (key_is(&pr, "RET") && dsn) {
			if (seen_ret || !pr.val)
				goto bad;
			if (val_is(&pr, "FULL"))
				s->mail.ret = SMTP_RET_FULL;
			else if (val_is(&pr, "HDRS"))
				s->mail.ret = SMTP_RET_HDRS;
			else
				goto bad;
			seen_ret = true;
		} else if (key_is(&pr, "ENVID") && dsn) {
			/* RFC 3461 4.4: xtext, at most 100 characters */
			if (seen_envid || !pr.val || pr.vlen > 100 ||
			    !smtp_valid_xtext(pr.val, pr.vlen))
				goto bad;
			copy_val(s->w->envid, &pr);
			s->mail.envid = s->w->envid;
			seen_envid = true;
		} else if (key_is(&pr, "AUTH")) {
			/* RFC 4954 5: xtext mailbox or "<>" */
			if (seen_auth || !pr.val || pr.vlen > 500 ||
			    !(val_is(&pr, "<>") ||
			      smtp_valid_xtext(pr.val, pr.vlen)))
				goto bad;
			copy_val(s->w->mauth, &pr);
			s->mail.auth = s->w->mauth;
			seen_auth = true;
		} else {
			param_error(s, &pr, true);
			return;
		}
	}
	if (r < 0) {
		error_reply(s, "501 5.5.4 Syntax error in MAIL parameters");
		return;
	}
	if (s->w->mpath.utf8 && !s->mail.smtputf8) {
		/* RFC 6531 3.4 */
		error_reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
		return;
	}
	if (s->mail.has_size && s->mail.size > s->max_msg_size) {
		/* RFC 1870 6.1 */
		REPLY(s, "552 5.3.4 Error: message size exceeds fixed limit");
		return;
	}
	s->mail.addr = s->w->mpath.addr;
	s->mail.addr_len = s->w->mpath.len;
	s->mail.null_sender = s->w->mpath.null;
	s->mail.utf8 = s->w->mpath.utf8;
	push(s, SMTP_REQ_MAIL)->mail = s->mail;
	return;
bad:
	param_error(s, &pr, false);
}

static bool
parse_notify(const struct param *pr, uint8_t *bits)
{
	const char *p = pr->val, *end = pr->val + pr->vlen;
	uint8_t b = 0;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
		uint8_t f;
		if (n == 5 && smtp_ieq(p, "NEVER", 5))
			f = SMTP_NOTIFY_NEVER;
		else if (n == 7 && smtp_ieq(p, "SUCCESS", 7))
			f = SMTP_NOTIFY_SUCCESS;
		else if (n == 7 && smtp_ieq(p, "FAILURE", 7))
			f = SMTP_NOTIFY_FAILURE;
		else if (n == 5 && smtp_ieq(p, "DELAY", 5))
			f = SMTP_NOTIFY_DELAY;
		else
			return false;
		if (b & f)
			return false;
		b |= f;
		p += n + (c ? 1 : 0);
		if (c && p == end)
			return false;
	}
	/* RFC 3461 4.1: NEVER stands alone */
	if ((b & SMTP_NOTIFY_NEVER) && b != SMTP_NOTIFY_NEVER)
		return false;
	*bits = b;
	return b != 0;
}

static void
cmd_rcpt(struct smtp_session *s, const char *a, const char *end)
{
	struct param pr;
	struct smtp_rcpt rc;
	size_t used;
	int r;

	if (!need_helo(s) || !need_tls(s))
		return;
	if (s->state == SMTP_ST_READY) {
		error_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->state == SMTP_ST_BDAT_MORE) {
		error_reply(s, "503 5.5.1 Error: BDAT transfer in progress");
		return;
	}
	if (end - a < 3 || !smtp_ieq(a, "TO:", 3)) {
		error_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	a = skip_sp(a + 3, end);
	r = smtp_parse_path(a, (size_t)(end - a), SMTP_PATH_FORWARD, &used,
			&s->w->rpath);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, false);
		return;
	}
	a += used;
	if (a < end && *a != ' ') {
		error_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	memset(&rc, 0, sizeof(rc));
	bool seen_notify = false, seen_orcpt = false;
	while ((r = next_param(&a, end, &pr)) == 0) {
		bool dsn = !(s->flags & SMTP_CFG_NO_DSN);
		if (!s->esmtp) {
			param_error(s, &pr, true);
			return;
		} else if (key_is(&pr, "NOTIFY") && dsn) {
			if (seen_notify || !pr.val ||
			    !parse_notify(&pr, &rc.notify))
				goto bad;
			seen_notify = true;
		} else if (key_is(&pr, "ORCPT") && dsn) {
			/* RFC 3461 4.2: addr-type ";" xtext, <= 500 */
			const char *semi = pr.val ?
				memchr(pr.val, ';', pr.vlen) : NULL;
			if (seen_orcpt || !pr.val || pr.vlen > 500 || !semi ||
			    semi == pr.val ||
			    !smtp_valid_xtext(semi + 1,
				    (size_t)(pr.val + pr.vlen - semi - 1)) ||
			    semi + 1 == pr.val + pr.vlen)
				goto bad;
			copy_val(s->w->orcpt, &pr);
			rc.orcpt = s->w->orcpt;
			seen_orcpt = true;
		} else {
			param_error(s, &pr, true);
			return;
		}
	}
	if (r < 0) {
		error_reply(s, "501 5.5.4 Syntax error in RCPT parameters");
		return;
	}
	if (s->w->rpath.utf8 && !s->mail.smtputf8) {
		error_reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
		return;
	}
	if (s->nrcpt >= s->max_rcpts) {
		/* RFC 5321 4.5.3.1.10: 452, not an error */
		REPLY(s, "452 4.5.3 Error: too many recipients");
		s->rcpt_tried++;
		return;
	}
	rc.addr = s->w->rpath.addr;
	rc.addr_len = s->w->rpath.len;
	rc.postmaster = s->w->rpath.postmaster;
	rc.utf8 = s->w->rpath.utf8;
	rc.index = s->rcpt_tried++;
	push(s, SMTP_REQ_RCPT)->rcpt = rc;
	return;
bad:
	param_error(s, &pr, false);
}

/* DATA or BDAT is only valid with an accepted recipient. */
static bool
need_rcpt(struct smtp_session *s)
{
	if (!need_helo(s) || !need_tls(s))
		return false;
	if (s->state == SMTP_ST_READY) {
		error_reply(s, "503 5.5.1 Error: need MAIL command");
		return false;
	}
	if (s->state == SMTP_ST_MAIL) {
		/* RFC 5321 3.3: 554 when every RCPT was refused */
		if (s->rcpt_tried > 0)
			error_reply(s, "554 5.5.1 Error: no valid recipients");
		else
			error_reply(s, "503 5.5.1 Error: need RCPT command");
		return false;
	}
	return true;
}

static void
cmd_data(struct smtp_session *s, const char *a, const char *end)
{
	if (a != end) {
		error_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == SMTP_ST_BDAT_MORE) {
		error_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (!need_rcpt(s))
		return;
	struct smtp_event *ev = push(s, SMTP_REQ_DATA);
	ev->data.bdat = false;
	ev->data.nrcpt = s->nrcpt;
}

static void bdat_chunk_done(struct smtp_session *s);

/* RFC 3030 2: "BDAT" SP chunk-size [SP "LAST"] */
static void
cmd_bdat(struct smtp_session *s, const char *a, const char *end)
{
	const char *e;
	uint64_t size;
	bool last = false;

	if (s->flags & SMTP_CFG_NO_CHUNKING) {
		error_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	a = skip_sp(a, end);
	for (e = a; e < end && *e != ' '; e++)
		;
	if (!smtp_parse_u64(a, (size_t)(e - a), &size)) {
		error_reply(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
		return;
	}
	e = skip_sp(e, end);
	if (e != end) {
		if (end - e != 4 || !smtp_ieq(e, "LAST", 4)) {
			error_reply(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
			return;
		}
		last = true;
	}
	/* Whatever the answer, the chunk's octets follow and must be read
	 * (RFC 3030 3): refused chunks are skipped, never parsed. */
	s->bdat_left = s->bdat_chunk = size;
	s->bdat_last = last;
	s->bdat_accepted = false;
	s->bdat_ret = s->state;
	if (s->state == SMTP_ST_BDAT_MORE) {
		if (size > s->max_msg_size - s->bdat_total) {
			push(s, SMTP_EV_RESET)->reset.reason = SMTP_RESET_SIZE;
			data_drop(s);
			REPLY(s, "552 5.3.4 Error: message size exceeds fixed limit");
			txn_clear(s);
			s->bdat_ret = SMTP_ST_READY;
		} else {
			s->bdat_total += size;
			s->bdat_accepted = true;
		}
		s->state = SMTP_ST_BDAT;
		if (size == 0)
			bdat_chunk_done(s);
		return;
	}
	if (!need_rcpt(s) || s->state == SMTP_ST_CLOSED) {
		if (s->state != SMTP_ST_CLOSED) {
			s->state = SMTP_ST_BDAT;
			if (size == 0)
				bdat_chunk_done(s);
		}
		return;
	}
	if (size > s->max_msg_size) {
		REPLY(s, "552 5.3.4 Error: message size exceeds fixed limit");
		s->state = SMTP_ST_BDAT;
		if (size == 0)
			bdat_chunk_done(s);
		return;
	}
	struct smtp_event *ev = push(s, SMTP_REQ_DATA);
	ev->data.bdat = true;
	ev->data.nrcpt = s->nrcpt;
}

static void
cmd_rset(struct smtp_session *s, const char *a, const char *end)
{
	if (a != end) {
		error_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	if (s->state != SMTP_ST_HELO)
		txn_reset(s, SMTP_RESET_RSET);
	REPLY(s, "250 2.0.0 Ok");
}

static void
cmd_starttls(struct smtp_session *s, const char *a, const char *end)
{
	if (!(s->flags & SMTP_CFG_TLS_AVAILABLE)) {
		error_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (s->tls_active) {
		error_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (a != end) {
		error_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (!need_helo(s))
		return;
	if (in_txn(s)) {
		error_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	push(s, SMTP_REQ_STARTTLS);
}

static void
cmd_auth(struct smtp_session *s, const char *a, const char *end)
{
	const char *e;

	if (!need_tls(s))
		return;
	if (s->mechs[0] == 0) {
		error_reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (!auth_offered(s)) {
		/* RFC 4954 6 */
		error_reply(s, "538 5.7.11 Encryption required for requested "
			       "authentication mechanism");
		return;
	}
	if (!need_helo(s))
		return;
	if (!s->esmtp) {
		error_reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->auth_ok) {
		error_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (in_txn(s)) {
		error_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	a = skip_sp(a, end);
	for (e = a; e < end && *e != ' '; e++)
		;
	if (a == e) {
		error_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (!mech_listed(s, a, (size_t)(e - a)) ||
	    (size_t)(e - a) >= sizeof(s->mech)) {
		error_reply(s, "504 5.5.4 Error: unsupported authentication "
			       "mechanism");
		return;
	}
	size_t mn = (size_t)(e - a);
	for (size_t i = 0; i < mn; i++)
		s->mech[i] = (char)((a[i] >= 'a' && a[i] <= 'z') ? a[i] - 32
								: a[i]);
	s->mech[mn] = 0;
	const char *resp = NULL;
	e = skip_sp(e, end);
	if (e < end) {
		const char *r = e;
		while (e < end && *e != ' ')
			e++;
		if (e != end) {
			error_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
				       "[initial-response]");
			return;
		}
		size_t rn = (size_t)(end - r);
		if (!(rn == 1 && r[0] == '=') && !smtp_valid_base64(r, rn)) {
			error_reply(s, "501 5.5.2 Error: invalid base64 data");
			return;
		}
		if (rn == 1 && r[0] == '=')
			rn = 0; /* RFC 4954 4: "=" is an empty response */
		memcpy(s->arg, r, rn);
		s->arg[rn] = 0;
		resp = s->arg;
	}
	s->auth_step = 0;
	struct smtp_event *ev = push(s, SMTP_REQ_AUTH);
	ev->auth.mech = s->mech;
	ev->auth.response = resp;
	ev->auth.step = 0;
}

/* A line sent after "334": the client's SASL response (RFC 4954 4). */
static void
auth_line(struct smtp_session *s, const char *a, size_t n)
{
	s->state = SMTP_ST_READY;
	if (n == 1 && a[0] == '*') {
		error_reply(s, "501 5.7.0 Error: authentication cancelled");
		return;
	}
	if (!smtp_valid_base64(a, n)) {
		error_reply(s, "501 5.5.2 Error: invalid base64 data");
		return;
	}
	memcpy(s->arg, a, n);
	s->arg[n] = 0;
	struct smtp_event *ev = push(s, SMTP_REQ_AUTH);
	ev->auth.mech = s->mech;
	ev->auth.response = s->arg;
	ev->auth.step = ++s->auth_step;
	s->state = SMTP_ST_AUTH; /* until the verdict */
}

static void
cmd_etrn(struct smtp_session *s, const char *a, const char *end)
{
	const char *e;

	if (!(s->flags & SMTP_CFG_ETRN)) {
		error_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (!need_helo(s))
		return;
	if (in_txn(s)) {
		error_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	a = skip_sp(a, end);
	for (e = a; e < end && *e != ' '; e++)
		;
	if (a == e || e != end || e - a > 255) {
		error_reply(s, "501 5.5.4 Syntax: ETRN node");
		return;
	}
	memcpy(s->w->etrn, a, (size_t)(e - a));
	s->w->etrn[e - a] = 0;
	push(s, SMTP_REQ_ETRN)->etrn.node = s->w->etrn;
}

/* Command verbs, keyed by their first four letters upper-cased. */
#define VERB(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | \
			  (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/*
 * One complete command line (CRLF removed; may hold any octet but CR/LF is
 * checked here). The single dispatch point for commands.
 */
static void
on_line(struct smtp_session *s, const char *line, size_t n)
{
	const char *end = line + n;

	if (memchr(line, '\r', n) != NULL || memchr(line, 0, n) != NULL) {
		if (s->state == SMTP_ST_AUTH)
			s->state = SMTP_ST_READY;
		error_reply(s, "500 5.5.2 Error: bare <CR> or NUL in command");
		return;
	}
	if (s->state == SMTP_ST_AUTH) {
		auth_line(s, line, n);
		if (s->state == SMTP_ST_AUTH && s->qn)
			return;
		return;
	}

	const char *sp = memchr(line, ' ', n);
	size_t vlen = sp ? (size_t)(sp - line) : n;
	const char *args = sp ? sp + 1 : end;
	uint32_t v = 0;

	if (vlen == 4) {
		v = VERB(line[0] & 0xdf, line[1] & 0xdf, line[2] & 0xdf,
			 line[3] & 0xdf);
		/* letters only: "&0xdf" maps some non-letters onto letters */
		for (int i = 0; i < 4; i++) {
			unsigned char c = (unsigned char)line[i];
			if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
				v = 0;
		}
	}
	if (s->state == SMTP_ST_REJECTED) {
		/* RFC 5321 3.1: after a 554 greeting, only QUIT */
		if (v == VERB('Q', 'U', 'I', 'T') && args == end) {
			REPLY(s, "221 2.0.0 Bye");
			close_session(s, SMTP_CLOSE_QUIT);
		} else {
			error_reply(s, "503 5.5.1 Error: access denied, send QUIT");
		}
		return;
	}
	if (s->state == SMTP_ST_BDAT_MORE &&
	    !(v == VERB('B', 'D', 'A', 'T') || v == VERB('R', 'S', 'E', 'T') ||
	      v == VERB('Q', 'U', 'I', 'T') || v == VERB('N', 'O', 'O', 'P') ||
	      v == VERB('H', 'E', 'L', 'P') || v == VERB('E', 'H', 'L', 'O') ||
	      v == VERB('H', 'E', 'L', 'O') || v == VERB('V', 'R', 'F', 'Y'))) {
		if (v != 0 || (vlen == 8 && smtp_ieq(line, "STARTTLS", 8))) {
			error_reply(s, "503 5.5.1 Error: BDAT transfer in progress");
			return;
		}
	}

	switch (v) {
	case VERB('E', 'H', 'L', 'O'):
		cmd_helo(s, args, end, true);
		return;
	case VERB('H', 'E', 'L', 'O'):
		cmd_helo(s, args, end, false);
		return;
	case VERB('M', 'A', 'I', 'L'):
		cmd_mail(s, args, end);
		return;
	case VERB('R', 'C', 'P', 'T'):
		cmd_rcpt(s, args, end);
		return;
	case VERB('D', 'A', 'T', 'A'):
		cmd_data(s, args, end);
		return;
	case VERB('B', 'D', 'A', 'T'):
		cmd_bdat(s, args, end);
		return;
	case VERB('R', 'S', 'E', 'T'):
		cmd_rset(s, args, end);
		return;
	case VERB('N', 'O', 'O', 'P'):
		/* RFC 5321 4.1.1.9: NOOP [SP String] */
		if (sync_violation(s, s->ahead))
			return;
		REPLY(s, "250 2.0.0 Ok");
		return;
	case VERB('Q', 'U', 'I', 'T'):
		if (args != end) {
			error_reply(s, "501 5.5.4 Syntax: QUIT");
			return;
		}
		if (sync_violation(s, s->ahead))
			return;
		REPLY(s, "221 2.0.0 Bye");
		close_session(s, SMTP_CLOSE_QUIT);
		return;
	case VERB('V', 'R', 'F', 'Y'):
		if (skip_sp(args, end) == end) {
			error_reply(s, "501 5.5.4 Syntax: VRFY address");
			return;
		}
		if (sync_violation(s, s->ahead))
			return;
		if (s->flags & SMTP_CFG_NO_VRFY)
			error_reply(s, "502 5.5.1 Error: VRFY command is disabled");
		else /* RFC 5321 7.3 */
			REPLY(s, "252 2.0.0 Cannot VRFY user, but will accept "
				 "message and attempt delivery");
		return;
	case VERB('E', 'X', 'P', 'N'):
		if (sync_violation(s, s->ahead))
			return;
		error_reply(s, "502 5.5.1 Error: EXPN command is disabled");
		return;
	case VERB('H', 'E', 'L', 'P'):
		REPLY(s, "214-2.0.0 Commands supported:\r\n"
			 "214-2.0.0 HELO EHLO MAIL RCPT DATA BDAT RSET NOOP\r\n"
			 "214 2.0.0 QUIT VRFY HELP STARTTLS AUTH ETRN");
		return;
	case VERB('A', 'U', 'T', 'H'):
		cmd_auth(s, args, end);
		return;
	case VERB('E', 'T', 'R', 'N'):
		cmd_etrn(s, args, end);
		return;
	default:
		break;
	}
	if (vlen == 8 && smtp_ieq(line, "STARTTLS", 8)) {
		cmd_starttls(s, args, end);
		return;
	}
	error_reply(s, "500 5.5.1 Error: command not recognized");
}

/* ------------------------------------------------------------ input */

static uint32_t
data_free(struct smtp_session *s)
{
	if (s->data_len == 0)
		s->data_off = 0;
	else if (s->data_off > s->data_cap / 2) {
		memmove(s->data, s->data + s->data_off, s->data_len);
		s->data_off = 0;
	}
	return s->data_cap - s->data_off - s->data_len;
}

/* Whether input must wait (kept in the input buffer / caller). */
static bool
blocked(struct smtp_session *s)
{
	if (s->qn)
		return true;
	/* deferred RCPTs: bounded in number, never past max_rcpts */
	if (s->dn && (s->dn >= s->max_defer ||
		      s->nrcpt + s->dn >= s->max_rcpts))
		return true;
	switch (s->state) {
	case SMTP_ST_CLOSED:
	case SMTP_ST_TLS:
		return false;
	case SMTP_ST_EOM:
		return true;
	case SMTP_ST_DATA:
	case SMTP_ST_BDAT:
		if (out_free(s) < REPLY_MAX + CLOSE_RESERVE)
			return true;
		if (s->body_discard ||
		    (s->state == SMTP_ST_BDAT && !s->bdat_accepted))
			return false;
		return s->data_paused || data_free(s) < BODY_MIN_ROOM;
	default:
		/* room for the next reply, a final 421, and each deferred
		 * RCPT's reply still to come */
		return out_free(s) < REPLY_MAX + CLOSE_RESERVE +
				     s->dn * SMTP_RCPT_DEFER_REPLY_MAX;
	}
}

/* While RCPT verdicts are outstanding only RCPT lines are read: any other
 * command waits until all are answered (its reply and its effect, e.g.
 * DATA's recipient count, depend on them). False: hold the input. */
static bool
defer_may_read(const struct smtp_session *s, const uint8_t *p, size_t n)
{
	if (s->dn == 0 || s->lex == LEX_SKIP)
		return true; /* a long line being skipped began "RCPT " */
	return n >= 5 && smtp_ieq((const char *)p, "RCPT ", 5);
}

static void
body_start(struct smtp_session *s, bool bdat)
{
	smtp_body_init(&s->body, bdat, s->normalize, s->max_text_line);
	s->body_discard = false;
}

/* The body grew past a limit: the backend copy is void (RESET tells the
 * caller to abort it); the rest is only parsed to find its end. */
static void
start_discard(struct smtp_session *s, enum smtp_reset_reason why)
{
	s->body_discard = true;
	s->discard_why = why;
	data_drop(s);
	push(s, SMTP_EV_RESET)->reset.reason = why;
}

static void
discard_reply(struct smtp_session *s)
{
	if (s->discard_why == SMTP_RESET_LINE) /* RFC 5321 4.5.3.1.6 */
		REPLY(s, "550 5.6.0 Error: message line too long");
	else /* RFC 1870 6.2 */
		REPLY(s, "552 5.3.4 Error: message size exceeds fixed limit");
}

static void
bare_eol(struct smtp_session *s)
{
	/* DESIGN 4: bare CR/LF in a body is rejected, then the connection
	 * closes: nothing after it can be trusted to be framed alike. */
	REPLY(s, "550 5.6.0 Error: bare <CR> or <LF> in message data");
	close_session(s, SMTP_CLOSE_BARE_EOL);
}

static void
body_stats(struct smtp_session *s, uint32_t cr, uint32_t lf, uint32_t nul)
{
	s->st.bare_cr += s->body.bare_cr - cr;
	s->st.bare_lf += s->body.bare_lf - lf;
	s->st.nul_dropped += s->body.nul - nul;
}

static void
bdat_chunk_done(struct smtp_session *s)
{
	if (!s->bdat_accepted) {
		/* refused chunk: its reply went out before its octets */
		s->state = s->bdat_ret;
		return;
	}
	if (s->body_discard) {
		discard_reply(s);
		txn_end(s);
		return;
	}
	if (s->bdat_last) {
		uint32_t cr = s->body.bare_cr, lf = s->body.bare_lf,
			 nul = s->body.nul;
		uint32_t room = data_free(s);
		int r = smtp_body_finish(&s->body,
				s->data + s->data_off + s->data_len, room);
		body_stats(s, cr, lf, nul);
		if (r < 0) {
			bare_eol(s);
			return;
		}
		s->data_len += (uint32_t)r;
		s->st.body_bytes += (uint64_t)r;
		if (s->body.size > s->max_msg_size) {
			start_discard(s, SMTP_RESET_SIZE);
			discard_reply(s);
			txn_end(s);
			return;
		}
		s->state = SMTP_ST_EOM;
		return;
	}
	/* RFC 3030 4.2 */
	replyf(s, "250 2.0.0 Ok: %" PRIu64 " octets received", s->bdat_chunk);
	s->state = SMTP_ST_BDAT_MORE;
}

static size_t
body_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	bool bdat = s->state == SMTP_ST_BDAT;
	size_t lim = n, k, prod = 0;
	enum smtp_body_res res;

	if (bdat && lim > s->bdat_left)
		lim = (size_t)s->bdat_left;
	if (bdat && !s->bdat_accepted) {
		/* RFC 3030 3: octets of a refused chunk are read, not parsed */
		s->bdat_left -= lim;
		if (s->bdat_left == 0)
			bdat_chunk_done(s);
		return lim;
	}
	uint32_t cr = s->body.bare_cr, lf = s->body.bare_lf, nul = s->body.nul;
	if (s->body_discard) {
		k = smtp_body_filter(&s->body, p, lim, NULL, 0, &prod, &res);
	} else {
		uint32_t room = data_free(s);
		k = smtp_body_filter(&s->body, p, lim,
				s->data + s->data_off + s->data_len, room,
				&prod, &res);
		s->data_len += (uint32_t)prod;
		s->st.body_bytes += prod;
	}
	body_stats(s, cr, lf, nul);
	if (bdat)
		s->bdat_left -= k;
	if (res == SMTP_BODY_BARE) {
		bare_eol(s);
		return n;
	}
	if (!s->body_discard &&
	    (s->body.size > s->max_msg_size || s->body.overlong))
		start_discard(s, s->body.overlong ? SMTP_RESET_LINE
						  : SMTP_RESET_SIZE);
	if (res == SMTP_BODY_END) {
		if (s->body_discard) {
			discard_reply(s);
			txn_end(s);
		} else {
			s->state = SMTP_ST_EOM;
		}
	} else if (bdat && s->bdat_left == 0) {
		bdat_chunk_done(s);
	}
	return k;
}

/* Cuts one command line from p[0..n); returns octets taken (0: partial). */
static size_t
line_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	const uint8_t *lf;
	size_t k, limit;

	if (s->lex == LEX_SKIP) {
		lf = memchr(p, '\n', n);
		if (lf == NULL)
			return n;
		k = (size_t)(lf - p) + 1;
		s->lex = LEX_LINE;
		s->st.commands++;
		if (s->state == SMTP_ST_AUTH) {
			s->state = SMTP_ST_READY;
			/* RFC 4954 4 */
			error_reply(s, "500 5.5.6 Error: authentication exchange "
				       "line is too long");
		} else {
			/* RFC 5321 4.5.3.1.4 */
			error_reply(s, "500 5.5.2 Error: line too long");
		}
		return k;
	}
	/* RFC 4954 4: AUTH lines may exceed 512 octets */
	limit = (s->state == SMTP_ST_AUTH ||
		 (n >= 5 && smtp_ieq((const char *)p, "AUTH ", 5)))
			? s->max_auth_line : s->max_cmd_line;
	lf = memchr(p, '\n', n < limit ? n : limit);
	if (lf == NULL) {
		if (n < limit)
			return 0;
		s->lex = LEX_SKIP;
		s->st.long_lines++;
		return limit;
	}
	k = (size_t)(lf - p) + 1;
	s->ahead = (n - k) + s->feed_ahead;
	s->st.commands++;
	if (k < 2 || p[k - 2] != '\r') {
		/* A command line ends with CRLF only (RFC 5321 2.3.8) */
		if (s->state == SMTP_ST_AUTH)
			s->state = SMTP_ST_READY;
		error_reply(s, "500 5.5.2 Error: bare <LF> received");
		return k;
	}
	on_line(s, (const char *)p, k - 2);
	return k;
}

/* Runs the machine over p[0..n); returns octets taken. */
static size_t
process(struct smtp_session *s, const uint8_t *p, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if (s->state == SMTP_ST_CLOSED)
			return n;
		if (s->state == SMTP_ST_TLS) {
			/* CVE-2011-0411 class: plaintext after STARTTLS */
			s->st.starttls_discarded += (uint32_t)(n - i);
			return n;
		}
		if (blocked(s))
			break;
		if (s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT)
			k = body_input(s, p + i, n - i);
		else if (!defer_may_read(s, p + i, n - i))
			break;
		else
			k = line_input(s, p + i, n - i);
		if (k == 0)
			break;
		i += k;
	}
	return i;
}

static void
raise_data_end(struct smtp_session *s)
{
	struct smtp_event *ev = push(s, SMTP_REQ_DATA_END);

	ev->data_end.size = s->body.size;
	ev->data_end.emitted = s->body.emitted;
	ev->data_end.nrcpt = s->nrcpt;
	ev->data_end.bdat = s->bdat_txn;
	s->st.messages++;
}

/* Processes held input as far as possible. */
static void
run(struct smtp_session *s)
{
	for (;;) {
		/* DATA_END only once the backend has every body octet */
		if (s->state == SMTP_ST_EOM && s->qn == 0 && s->data_len == 0)
			raise_data_end(s);
		if (s->in_len == 0)
			return;
		size_t k = process(s, s->in + s->in_off, s->in_len);
		if (k == 0)
			return;
		s->in_off += (uint32_t)k;
		s->in_len -= (uint32_t)k;
		if (s->in_len == 0)
			s->in_off = 0;
	}
}

size_t
smtp_session_feed(struct smtp_session *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t total = 0;

	if (len == 0)
		return 0;
	if (s->state == SMTP_ST_CLOSED)
		return len;
	if (s->state == SMTP_ST_TLS) {
		s->st.starttls_discarded += (uint32_t)len;
		return len;
	}
	if (s->state == SMTP_ST_CONNECT) {
		/* pregreet: the client talks before our greeting */
		uint64_t pg = (uint64_t)s->st.pregreet_bytes + len;
		s->st.pregreet_bytes = pg > UINT32_MAX ? UINT32_MAX
						       : (uint32_t)pg;
	}
	if (!hold(s))
		return 0; /* pool empty: the bytes stay with the caller */
	while (len > 0) {
		if (s->in_len == 0 && !blocked(s)) {
			/* fast path: straight from the caller's buffer */
			s->feed_ahead = 0;
			size_t k = process(s, p, len);
			p += k;
			len -= k;
			total += k;
			if (len == 0)
				break;
		}
		if (s->in_off > 0 && s->in_off + s->in_len + len > s->in_cap) {
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
		}
		size_t c = s->in_cap - s->in_off - s->in_len;
		if (c > len)
			c = len;
		if (c == 0)
			break;
		memcpy(s->in + s->in_off + s->in_len, p, c);
		s->in_len += (uint32_t)c;
		p += c;
		len -= c;
		total += c;
		s->feed_ahead = len;
		run(s);
		s->feed_ahead = 0;
	}
	if (total)
		s->t_mark = s->now;
	run(s);
	idle(s);
	return total;
}

const uint8_t *
smtp_session_output(const struct smtp_session *s, size_t *len)
{
	static const uint8_t none[1];

	/* only up to the first RCPT whose reply is still to come */
	*len = s->dn ? s->w->defer[s->dh].pos : s->out_len;
	return s->out ? s->out + s->out_off : none;
}

/* The caller took n octets of an output area (replies or body): advance
 * the window, rewind it when empty, count it as progress, resume. */
static void
area_consume(struct smtp_session *s, uint32_t *off, uint32_t *len, size_t n)
{
	if (s->w == NULL)
		return; /* nothing held, nothing to take */
	if (n > *len)
		n = *len;
	*off += (uint32_t)n;
	*len -= (uint32_t)n;
	if (*len == 0)
		*off = 0;
	if (n)
		s->t_mark = s->now;
	run(s);
	idle(s);
}

void
smtp_session_output_consume(struct smtp_session *s, size_t n)
{
	if (s->dn) {
		/* the deferred places move with the window */
		uint32_t vis = s->w->defer[s->dh].pos;
		if (n > vis)
			n = vis;
		for (uint32_t i = 0; i < s->dn; i++)
			s->w->defer[(s->dh + i) % SMTP_RCPT_DEFER_MAX].pos -=
				(uint32_t)n;
	}
	area_consume(s, &s->out_off, &s->out_len, n);
}

const uint8_t *
smtp_session_data(const struct smtp_session *s, size_t *len)
{
	static const uint8_t none[1];

	*len = s->data_len;
	return s->data ? s->data + s->data_off : none;
}

void
smtp_session_data_consume(struct smtp_session *s, size_t n)
{
	area_consume(s, &s->data_off, &s->data_len, n);
}

void
smtp_session_data_pause(struct smtp_session *s, bool paused)
{
	s->data_paused = paused;
	if (!paused && s->w)
		run(s);
}

const struct smtp_event *
smtp_session_event(struct smtp_session *s)
{
	if (s->qn)
		return &s->q[s->qh].ev;
	if (s->data_len) {
		s->chunk_ev.type = SMTP_EV_DATA_CHUNK;
		s->chunk_ev.seq = s->seq;
		s->chunk_ev.chunk.ptr = s->data + s->data_off;
		s->chunk_ev.chunk.len = s->data_len;
		return &s->chunk_ev;
	}
	return NULL;
}

/* Reply for a verdict: the default literal unless code/enh/text given. */
static void
verdict_reply(struct smtp_session *s, const struct smtp_verdict *v,
		unsigned defcode, const char *defenh, const char *deftext,
		const char *deflit)
{
	if (v->code == 0 && v->text == NULL && v->enh == NULL && deflit) {
		out_put(s, deflit, strlen(deflit));
		return;
	}
	unsigned code = v->code ? v->code : defcode;
	const char *enh = v->enh;
	if (enh == NULL || !enh_valid(enh, (int)(code / 100)))
		enh = code == defcode ? defenh : NULL;
	reply_custom(s, code, enh, v->text ? v->text : deftext);
}

static void
count_error(struct smtp_session *s)
{
	s->st.errors++;
	if (s->st.errors >= s->max_errors) {
		cut_deferred(s);
		replyf(s, "421 4.7.0 %s Error: too many errors", s->host);
		close_session(s, SMTP_CLOSE_ERRORS);
	}
}

/* The one place where an answered request moves the session. */
static void
on_verdict(struct smtp_session *s, const struct smtp_event *e,
		const struct smtp_verdict *v)
{
	bool accept = v->kind == SMTP_V_ACCEPT;
	char text[320];

	if (v->kind == SMTP_V_CLOSE) {
		mxg_fmt(text, sizeof(text), "%s Service not available, "
			 "closing transmission channel", s->host);
		cut_deferred(s);
		verdict_reply(s, v, 421, "4.3.2", text, NULL);
		close_session(s, SMTP_CLOSE_VERDICT);
		return;
	}
	switch (e->type) {
	case SMTP_REQ_CONNECT:
		if (accept) {
			/* RFC 2034 3: no enhanced code in the greeting */
			if (v->text)
				replyf(s, "220 %s %.255s", s->host, v->text);
			else
				replyf(s, "220 %s %s", s->host, s->banner);
			s->state = SMTP_ST_HELO;
		} else {
			mxg_fmt(text, sizeof(text), "%s Error: access denied",
				 s->host);
			verdict_reply(s, v, 554, "5.7.1", text, NULL);
			s->state = SMTP_ST_REJECTED;
		}
		break;
	case SMTP_REQ_HELO:
		if (sync_violation(s, s->in_len))
			return;
		if (accept) {
			s->esmtp = e->helo.esmtp;
			s->state = SMTP_ST_READY;
			if (s->esmtp)
				reply_ehlo(s);
			else
				replyf(s, "250 %s", s->host);
		} else {
			verdict_reply(s, v, 550, "5.7.1", "Error: HELO rejected",
				      NULL);
		}
		break;
	case SMTP_REQ_MAIL:
		if (accept) {
			s->state = SMTP_ST_MAIL;
			s->nrcpt = s->rcpt_tried = 0;
			verdict_reply(s, v, 250, "2.1.0", "Ok",
				      "250 2.1.0 Ok\r\n");
		} else {
			memset(&s->mail, 0, sizeof(s->mail));
			verdict_reply(s, v, 550, "5.7.1", "Error: sender rejected",
				      NULL);
		}
		break;
	case SMTP_REQ_RCPT:
		if (accept) {
			s->nrcpt++;
			s->state = SMTP_ST_RCPT;
			verdict_reply(s, v, 250, "2.1.5", "Ok",
				      "250 2.1.5 Ok\r\n");
		} else {
			verdict_reply(s, v, 550, "5.7.1",
				      "Error: recipient rejected", NULL);
		}
		break;
	case SMTP_REQ_DATA:
		if (!e->data.bdat) {
			/* RFC 2920 3.1: DATA ends a pipeline group */
			if (sync_violation(s, s->in_len))
				return;
			if (accept) {
				body_start(s, false);
				s->bdat_txn = false;
				s->state = SMTP_ST_DATA;
				/* 3xx: no enhanced code (RFC 2034 3) */
				if (v->text)
					replyf(s, "354 %.200s", v->text);
				else
					REPLY(s, "354 End data with "
						 "<CR><LF>.<CR><LF>");
			} else {
				verdict_reply(s, v, 554, "5.7.1",
					      "Error: data refused", NULL);
			}
			break;
		}
		if (accept) {
			body_start(s, true);
			s->bdat_txn = true;
			s->bdat_total = s->bdat_left;
			s->bdat_accepted = true;
		} else {
			verdict_reply(s, v, 554, "5.7.1", "Error: data refused",
				      NULL);
			s->bdat_accepted = false;
			s->bdat_ret = SMTP_ST_RCPT;
		}
		s->state = SMTP_ST_BDAT;
		if (s->bdat_left == 0)
			bdat_chunk_done(s);
		break;
	case SMTP_REQ_DATA_END:
		if (accept)
			verdict_reply(s, v, 250, "2.0.0", "Ok: queued",
				      "250 2.0.0 Ok: queued\r\n");
		else
			verdict_reply(s, v, 554, "5.7.1",
				      "Error: message rejected", NULL);
		txn_end(s);
		break;
	case SMTP_REQ_STARTTLS:
		if (sync_violation(s, s->in_len))
			return;
		if (accept) {
			/* CVE-2011-0411: what came with STARTTLS is dropped */
			s->st.starttls_discarded += s->in_len;
			s->in_len = s->in_off = 0;
			s->lex = LEX_LINE;
			REPLY(s, "220 2.0.0 Ready to start TLS");
			s->state = SMTP_ST_TLS;
		} else {
			verdict_reply(s, v, 454, "4.7.0",
				      "TLS not available due to temporary "
				      "reason", NULL);
		}
		break;
	case SMTP_REQ_AUTH:
		if (sync_violation(s, s->in_len))
			return;
		if (accept) {
			s->auth_ok = true;
			s->state = SMTP_ST_READY;
			verdict_reply(s, v, 235, "2.7.0",
				      "Authentication successful",
				      "235 2.7.0 Authentication successful\r\n");
		} else if (v->kind == SMTP_V_CHALLENGE) {
			s->state = SMTP_ST_AUTH;
			replyf(s, "334 %.900s", v->text ? v->text : "");
		} else {
			s->state = SMTP_ST_READY;
			verdict_reply(s, v, 535, "5.7.8",
				      "Error: authentication failed", NULL);
			count_error(s);
		}
		break;
	case SMTP_REQ_ETRN:
		if (accept) /* RFC 1985 5 */
			verdict_reply(s, v, 250, "2.0.0", "Queuing started",
				      "250 2.0.0 Queuing started\r\n");
		else
			verdict_reply(s, v, 458, "4.0.0",
				      "Unable to queue messages", NULL);
		break;
	default:
		break;
	}
}

static const struct smtp_verdict accept_default = {
	SMTP_V_ACCEPT, 0, NULL, NULL
};

/* Whether v may answer a request of type t. */
static bool
verdict_valid(enum smtp_event_type t, const struct smtp_verdict *v)
{
	return (unsigned)v->kind <= SMTP_V_DEFER &&
	       (v->kind != SMTP_V_CHALLENGE || t == SMTP_REQ_AUTH) &&
	       (v->kind != SMTP_V_DEFER || t == SMTP_REQ_RCPT) &&
	       (v->code == 0 || (v->code >= 200 && v->code <= 599)) &&
	       (v->kind != SMTP_V_REJECT || v->code == 0 || v->code >= 400) &&
	       (v->kind != SMTP_V_ACCEPT || v->code < 300);
}

/* The RCPT request e is answered later: remember where its reply goes. */
static int
defer_rcpt(struct smtp_session *s, const struct evslot *e)
{
	struct smtp_defer *d;

	if (s->dn >= s->max_defer)
		return -ENOSPC; /* not reached: input stops at the bound */
	d = &s->w->defer[(s->dh + s->dn) % SMTP_RCPT_DEFER_MAX];
	d->index = e->ev.rcpt.index;
	d->pos = s->out_len;
	d->t = e->t; /* the verdict time-out runs from the command */
	d->done = false;
	s->dn++;
	return 0;
}

int
smtp_session_verdict(struct smtp_session *s, const struct smtp_verdict *v)
{
	struct evslot e;

	if (v == NULL)
		v = &accept_default;
	if (s->qn == 0)
		return s->state == SMTP_ST_CLOSED ? -EPIPE : -ENOENT;
	e = s->q[s->qh];
	if (!is_request(e.ev.type) || !verdict_valid(e.ev.type, v))
		return -EINVAL;
	if (!hold(s))
		return -EAGAIN;
	if (v->kind == SMTP_V_DEFER) {
		int rc = defer_rcpt(s, &e);
		if (rc)
			return rc;
		pop(s);
	} else {
		pop(s);
		on_verdict(s, &e.ev, v);
	}
	s->t_mark = s->now;
	run(s);
	idle(s);
	return 0;
}

/*
 * Fills the place of deferred RCPT k: on_verdict() appends the reply (at
 * most SMTP_RCPT_DEFER_REPLY_MAX octets, the room blocked() kept for it),
 * which is then rotated into its place; the later places move up by its
 * length; answered places at the head are popped, so the output grows to
 * the next unanswered one.
 */
static void
defer_fill(struct smtp_session *s, uint32_t k, const struct smtp_event *e,
		const struct smtp_verdict *v)
{
	uint8_t tmp[SMTP_RCPT_DEFER_REPLY_MAX];
	struct smtp_defer *d = &s->w->defer[(s->dh + k) % SMTP_RCPT_DEFER_MAX];
	uint32_t before = s->out_len, n, at = d->pos;

	s->reply_lim = SMTP_RCPT_DEFER_REPLY_MAX;
	on_verdict(s, e, v);
	s->reply_lim = REPLY_MAX;
	n = s->out_len - before;
	assert(n <= sizeof(tmp));
	if (n > sizeof(tmp))
		n = sizeof(tmp);
	uint8_t *o = s->out + s->out_off;
	memcpy(tmp, o + before, n);
	memmove(o + at + n, o + at, before - at);
	memcpy(o + at, tmp, n);
	d->done = true;
	for (uint32_t i = k + 1; i < s->dn; i++)
		s->w->defer[(s->dh + i) % SMTP_RCPT_DEFER_MAX].pos += n;
	while (s->dn && s->w->defer[s->dh].done) {
		s->dh = (s->dh + 1) % SMTP_RCPT_DEFER_MAX;
		s->dn--;
	}
}

int
smtp_session_rcpt_verdict(struct smtp_session *s, uint32_t index,
		const struct smtp_verdict *v)
{
	struct smtp_event e;
	uint32_t k;

	if (v == NULL)
		v = &accept_default;
	if (s->state == SMTP_ST_CLOSED)
		return -EPIPE;
	for (k = 0; k < s->dn; k++) {
		const struct smtp_defer *d =
			&s->w->defer[(s->dh + k) % SMTP_RCPT_DEFER_MAX];
		if (d->index == index && !d->done)
			break;
	}
	if (k == s->dn)
		return -ENOENT;
	if (v->kind == SMTP_V_DEFER || !verdict_valid(SMTP_REQ_RCPT, v))
		return -EINVAL;
	memset(&e, 0, sizeof(e));
	e.type = SMTP_REQ_RCPT;
	e.rcpt.index = index;
	s->t_mark = s->now;
	if (v->kind == SMTP_V_CLOSE)
		on_verdict(s, &e, v); /* cuts at the first open place */
	else
		defer_fill(s, k, &e, v);
	run(s);
	idle(s);
	return 0;
}

uint32_t
smtp_session_rcpt_deferred(const struct smtp_session *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->dn; i++)
		n += !s->w->defer[(s->dh + i) % SMTP_RCPT_DEFER_MAX].done;
	return n;
}

int
smtp_session_accept(struct smtp_session *s)
{
	return smtp_session_verdict(s, NULL);
}

int
smtp_session_ack(struct smtp_session *s)
{
	if (s->qn == 0) {
		if (s->data_len) {
			smtp_session_data_consume(s, s->data_len);
			return 0;
		}
		return s->state == SMTP_ST_CLOSED ? -EPIPE : -ENOENT;
	}
	if (is_request(s->q[s->qh].ev.type))
		return -EINVAL;
	if (!hold(s))
		return -EAGAIN;
	pop(s);
	s->t_mark = s->now;
	run(s);
	idle(s);
	return 0;
}

int
smtp_session_tls_done(struct smtp_session *s, bool ok)
{
	if (s->state != SMTP_ST_TLS)
		return -EINVAL;
	if (!hold(s))
		return -EAGAIN;
	s->t_mark = s->now;
	if (!ok) {
		close_session(s, SMTP_CLOSE_TLS_FAILED);
		return 0;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS */
	s->tls_active = true;
	s->esmtp = false;
	s->auth_ok = false;
	s->w->helo[0] = 0;
	txn_clear(s);
	s->state = SMTP_ST_HELO;
	run(s);
	idle(s);
	return 0;
}

uint64_t
smtp_session_deadline(const struct smtp_session *s)
{
	uint32_t t;

	if (s->state == SMTP_ST_CLOSED)
		return SMTP_NO_DEADLINE;
	if (s->dn) {
		/* the client waits for the oldest deferred RCPT's reply */
		uint64_t d = s->w->defer[s->dh].t + s->tmo_rcpt;
		if (s->qn && s->q[s->qh].ev.type == SMTP_REQ_RCPT &&
		    s->q[s->qh].t + s->tmo_rcpt < d)
			d = s->q[s->qh].t + s->tmo_rcpt;
		return d;
	}
	if (s->qn) {
		const struct evslot *e = &s->q[s->qh];
		switch (e->ev.type) {
		case SMTP_REQ_CONNECT: t = s->tmo_greeting; break;
		case SMTP_REQ_MAIL: t = s->tmo_mail; break;
		case SMTP_REQ_RCPT: t = s->tmo_rcpt; break;
		case SMTP_REQ_DATA: t = s->tmo_data_init; break;
		case SMTP_REQ_DATA_END: t = s->tmo_data_term; break;
		case SMTP_REQ_HELO:
		case SMTP_REQ_STARTTLS:
		case SMTP_REQ_AUTH:
		case SMTP_REQ_ETRN: t = s->tmo_command; break;
		default: return SMTP_NO_DEADLINE; /* caller's turn */
		}
		return e->t + t;
	}
	if (s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT ||
	    s->state == SMTP_ST_EOM)
		t = s->tmo_data_block;
	else
		t = s->tmo_command;
	return s->t_mark + t;
}

void
smtp_session_time(struct smtp_session *s, uint64_t now_ms)
{
	uint64_t d;

	if (now_ms > s->now)
		s->now = now_ms;
	d = smtp_session_deadline(s);
	if (d == SMTP_NO_DEADLINE || s->now < d)
		return;
	if (!hold(s))
		return; /* pool empty: fires on a later call */
	if (s->dn || (s->qn && is_request(s->q[s->qh].ev.type))) {
		/* the caller (policy, backend) did not answer in time */
		cut_deferred(s);
		replyf(s, "421 4.4.1 %s Error: timeout exceeded, try again "
			  "later", s->host);
		close_session(s, SMTP_CLOSE_VERDICT_TIMEOUT);
	} else if (s->state == SMTP_ST_TLS) {
		close_session(s, SMTP_CLOSE_TIMEOUT);
	} else {
		replyf(s, "421 4.4.2 %s Error: timeout exceeded", s->host);
		close_session(s, SMTP_CLOSE_TIMEOUT);
	}
	run(s);
	idle(s);
}

void
smtp_session_shutdown(struct smtp_session *s, uint16_t code, const char *enh,
		const char *text)
{
	char t[256];

	if (s->state == SMTP_ST_CLOSED)
		return;
	/* pool empty: close without the reply (it could not be queued) */
	if (hold(s) && s->state != SMTP_ST_TLS) {
		if (code < 400 || code > 599) {
			code = 421;
			enh = "4.3.2";
		}
		cut_deferred(s);
		if (text == NULL) {
			mxg_fmt(t, sizeof(t), "%s Service shutting down",
				 s->host);
		} else {
			mxg_fmt(t, sizeof(t), "%s", text);
		}
		reply_custom(s, code, enh, t);
	}
	close_session(s, SMTP_CLOSE_SHUTDOWN);
	run(s);
	idle(s);
}

void
smtp_session_release(struct smtp_session *s)
{
	if (s && s->pool && s->w) {
		s->dn = 0; /* the places live in the work area */
		s->pool->put(s->pool->ctx, s->w);
		s->w = NULL;
		s->in = s->out = s->data = NULL;
		s->arg = NULL;
		s->in_len = s->out_len = s->data_len = 0;
		s->in_off = s->out_off = s->data_off = 0;
	}
}

bool
smtp_session_holds_buffers(const struct smtp_session *s)
{
	return s->pool == NULL || s->w != NULL;
}

bool
smtp_session_closed(const struct smtp_session *s)
{
	return s->state == SMTP_ST_CLOSED;
}

enum smtp_state
smtp_session_state(const struct smtp_session *s)
{
	return s->state;
}

bool
smtp_session_tls_active(const struct smtp_session *s)
{
	return s->tls_active;
}

bool
smtp_session_authenticated(const struct smtp_session *s)
{
	return s->auth_ok;
}

const struct smtp_stats *
smtp_session_stats(const struct smtp_session *s)
{
	return &s->st;
}
