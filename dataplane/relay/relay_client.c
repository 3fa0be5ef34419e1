/*
 * relay_client.c - sans-I/O SMTP client for one backend connection.
 *
 * Ownership: one struct relay_client per backend connection, used only by
 * the lcore that owns that connection. Never blocks, never allocates after
 * init (relay_client_create() mallocs the one block), never reads a clock.
 *
 * Shape: commands go through one FIFO (cmdq). A command is "staged" (its
 * text waits in cmdbuf) until flush() may send it, then "sent" (its text is
 * in the output buffer) until its reply arrives. Replies are matched to the
 * oldest sent command, which is what lets pipelined RCPT replies be
 * reported one by one in order (RFC 2920 3.1). The greeting is modelled as
 * a command that is "sent" when the TCP connection comes up. The connection
 * phase lives in one enum (enum relay_state); every transition is in
 * on_reply(), fail() and the few public calls that start a step.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_client.h"
#include "dataplane/fmt.h"

#include "dataplane/smtp/smtp_parse.h"

#define EVQ_SIZE 16	 /* events; the last slot is kept for the error */
#define CMDQ_SIZE 256	 /* staged + sent commands */
#define CMDBUF_SIZE 8192 /* staged command text */
#define INBUF_SIZE 4096	 /* reply bytes not yet parsed */
/* RFC 5321 4.5.3.1.5 limits a reply line to 512 octets; we accept up to 2
 * KiB from backends we trust, and call anything longer a protocol error. */
#define REPLY_LINE_MAX 2048
/* RFC 5321 4.5.3.1.4: 512 octets per command line; MAIL/RCPT with
 * extension parameters may be longer (RFC 5321 4.5.3.1.4 allows the
 * extension to raise it), we allow 2 KiB. XCLIENT stays within 512. */
#define CMD_LINE_MAX 2048
#define XCLIENT_LINE_MAX 512
#define DOT_RESERVE 5 /* CRLF . CRLF */

enum cmd_kind {
	CMD_GREETING = 0,
	CMD_EHLO,
	CMD_HELO,
	CMD_XCLIENT,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_DOT,
	CMD_RSET,
	CMD_QUIT,
	CMD_STARTTLS,
};

struct cmd {
	uint8_t kind;	/* enum cmd_kind */
	bool quiet;	/* transaction aborted: swallow the reply */
	bool lazy;	/* the RSET owed since the last transaction, sent
			   ahead of the next MAIL: no event of its own */
	uint16_t len;	/* text length while staged */
	uint32_t index; /* RCPT index */
};

struct ev_slot {
	struct relay_event ev;
	char text[RELAY_REPLY_TEXT_MAX];
};

/* The reply being assembled from its lines. */
struct reply_acc {
	bool started;
	uint16_t code;
	uint16_t lines;
	uint16_t text_len;
	bool truncated;
	char enh[16];
	char text[RELAY_REPLY_TEXT_MAX];
};

struct relay_client {
	struct relay_client_config cfg;
	char helo[256];
	enum relay_state state;
	uint64_t now;
	uint64_t connect_deadline;
	uint64_t head_deadline; /* reply deadline of the oldest sent cmd */
	uint64_t out_since;	/* output last made progress */

	struct relay_caps caps;
	struct relay_caps ncaps; /* being parsed from an EHLO reply */
	struct relay_client_stats stats;

	uint32_t nrcpt;	      /* RCPT index counter, per transaction */
	bool data_sent;	      /* DATA staged or sent in this transaction */
	bool rset_due;	      /* relay_client_rset_lazy(): RSET before MAIL */
	bool want_writable;   /* a short body take happened */
	bool tls_wait;	      /* 220 to STARTTLS: the caller handshakes */
	bool tls_active;      /* handshake done: never STARTTLS again */
	uint64_t tls_deadline; /* while tls_wait */
	uint8_t body_tail[2]; /* last two body octets, for the CRLF rule */
	uint64_t body_len;    /* body octets in this transaction */

	struct cmd cmdq[CMDQ_SIZE];
	uint32_t cq_head, cq_tail; /* free-running */
	uint32_t nsent;		   /* sent commands at the head of cmdq */
	uint32_t cb_head, cb_tail;
	char cmdbuf[CMDBUF_SIZE];

	uint32_t in_len;
	uint8_t inbuf[INBUF_SIZE];
	struct reply_acc cur;

	struct ev_slot evq[EVQ_SIZE];
	uint32_t eq_head, eq_tail; /* free-running */

	uint32_t out_size, out_head, out_len;
	uint8_t out[];
};

/* ------------------------------------------------------------ names */

static const char *const state_names[RELAY_ST__COUNT] = {
	"CONNECTING", "SETUP", "READY", "TXN",	  "BODY",
	"EOD",	      "RSET",  "QUIT",	"CLOSED", "FAILED",
};
static const char *const step_names[RELAY_STEP__COUNT] = {
	"none", "connect", "greeting", "ehlo",	   "helo", "xclient", "mail",
	"rcpt", "data",	   "body",     "data_end", "rset", "quit",
	"starttls",
};
static const char *const error_names[RELAY_ERR__COUNT] = {
	"none", "timeout", "closed", "protocol", "rejected", "shutdown",
	"tls",
};
static const char *const event_names[RELAY_EV__COUNT] = {
	"NONE",	    "READY",	"MAIL", "RCPT",	  "DATA",
	"WRITABLE", "DATA_END", "RSET", "CLOSED", "ERROR",
	"STARTTLS",
};

const char *relay_state_name(enum relay_state st)
{
	return (unsigned)st < RELAY_ST__COUNT ? state_names[st] : "?";
}

const char *relay_step_name(enum relay_step st)
{
	return (unsigned)st < RELAY_STEP__COUNT ? step_names[st] : "?";
}

const char *relay_error_name(enum relay_error e)
{
	return (unsigned)e < RELAY_ERR__COUNT ? error_names[e] : "?";
}

const char *relay_event_name(enum relay_event_type t)
{
	return (unsigned)t < RELAY_EV__COUNT ? event_names[t] : "?";
}

static enum relay_step kind_step(unsigned kind)
{
	static const enum relay_step map[] = {
		[CMD_GREETING] = RELAY_STEP_GREETING,
		[CMD_EHLO] = RELAY_STEP_EHLO,
		[CMD_HELO] = RELAY_STEP_HELO,
		[CMD_XCLIENT] = RELAY_STEP_XCLIENT,
		[CMD_MAIL] = RELAY_STEP_MAIL,
		[CMD_RCPT] = RELAY_STEP_RCPT,
		[CMD_DATA] = RELAY_STEP_DATA,
		[CMD_DOT] = RELAY_STEP_DATA_END,
		[CMD_RSET] = RELAY_STEP_RSET,
		[CMD_QUIT] = RELAY_STEP_QUIT,
		[CMD_STARTTLS] = RELAY_STEP_STARTTLS,
	};
	return kind < sizeof(map) / sizeof(map[0]) ? map[kind]
						   : RELAY_STEP_NONE;
}

static uint32_t kind_timeout(const struct relay_client *c, unsigned kind)
{
	switch (kind) {
	case CMD_GREETING:
		return c->cfg.tmo_greeting_ms;
	case CMD_EHLO:
	case CMD_HELO:
	case CMD_STARTTLS:
		return c->cfg.tmo_ehlo_ms;
	case CMD_XCLIENT:
		return c->cfg.tmo_xclient_ms;
	case CMD_MAIL:
		return c->cfg.tmo_mail_ms;
	case CMD_RCPT:
		return c->cfg.tmo_rcpt_ms;
	case CMD_DATA:
		return c->cfg.tmo_data_ms;
	case CMD_DOT:
		return c->cfg.tmo_data_end_ms;
	case CMD_RSET:
		return c->cfg.tmo_rset_ms;
	default:
		return c->cfg.tmo_quit_ms;
	}
}

/* ------------------------------------------------------------ config */

void relay_client_config_defaults(struct relay_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->helo_name = "localhost";
	cfg->tmo_connect_ms = 10000;
	cfg->tmo_greeting_ms = 60000;
	cfg->tmo_ehlo_ms = 60000;
	cfg->tmo_xclient_ms = 60000;
	cfg->tmo_mail_ms = 120000;
	cfg->tmo_rcpt_ms = 120000;
	cfg->tmo_data_ms = 120000;
	cfg->tmo_data_block_ms = 180000;
	cfg->tmo_data_end_ms = 300000;
	cfg->tmo_rset_ms = 30000;
	cfg->tmo_quit_ms = 10000;
	cfg->out_buf_size = 16384;
}

static void fill_defaults(struct relay_client_config *cfg)
{
	struct relay_client_config d;

	relay_client_config_defaults(&d);
#define DEF(f)                                                                 \
	do {                                                                   \
		if (cfg->f == 0)                                               \
			cfg->f = d.f;                                          \
	} while (0)
	DEF(tmo_connect_ms);
	DEF(tmo_greeting_ms);
	DEF(tmo_ehlo_ms);
	DEF(tmo_xclient_ms);
	DEF(tmo_mail_ms);
	DEF(tmo_rcpt_ms);
	DEF(tmo_data_ms);
	DEF(tmo_data_block_ms);
	DEF(tmo_data_end_ms);
	DEF(tmo_rset_ms);
	DEF(tmo_quit_ms);
	DEF(out_buf_size);
#undef DEF
	if (cfg->helo_name == NULL || cfg->helo_name[0] == '\0')
		cfg->helo_name = d.helo_name;
}

/* ------------------------------------------------------------ encoders */

/* One TLV (proxy-protocol.txt 2.2.7): type, 16-bit length, value. */
static uint8_t *pp2_tlv(uint8_t *p, uint8_t type, const void *v, size_t n)
{
	*p++ = type;
	*p++ = (uint8_t)(n >> 8);
	*p++ = (uint8_t)n;
	memcpy(p, v, n);
	return p + n;
}

/* The TLS TLVs' length, or -EINVAL when a string is over its bound. */
static int pp2_tls_len(const struct relay_proxy_tls *t)
{
	size_t v = strnlen(t->version ? t->version : "",
			   RELAY_PP2_MAX_VERSION + 1);
	size_t c = strnlen(t->cipher ? t->cipher : "",
			   RELAY_PP2_MAX_CIPHER + 1);
	size_t cn = t->cn ? strnlen(t->cn, RELAY_PP2_MAX_CN + 1) : 0;
	size_t a = t->sni ? strnlen(t->sni, RELAY_PP2_MAX_AUTHORITY + 1) : 0;

	if (v > RELAY_PP2_MAX_VERSION || c > RELAY_PP2_MAX_CIPHER ||
	    cn > RELAY_PP2_MAX_CN || a > RELAY_PP2_MAX_AUTHORITY)
		return -EINVAL;
	return (int)((a ? 3 + a : 0) + 3 + 5 + 3 + v + 3 + c +
		     (cn ? 3 + cn : 0));
}

/* PP2_TYPE_AUTHORITY (the SNI), then PP2_TYPE_SSL: client flags, verify
 * (0: a certificate was presented and verified, 2.2.5), sub-TLVs
 * VERSION, CIPHER, CN (only for a verified certificate's CN). */
static uint8_t *pp2_tls(uint8_t *p, const struct relay_proxy_tls *t)
{
	const char *v = t->version ? t->version : "";
	const char *c = t->cipher ? t->cipher : "";
	size_t vn = strlen(v), cn = strlen(c);
	size_t nn = t->cn ? strlen(t->cn) : 0;
	size_t ssl = 5 + 3 + vn + 3 + cn + (nn ? 3 + nn : 0);
	uint8_t client = RELAY_PP2_CLIENT_SSL;
	uint32_t verify = t->verified ? 0 : 1;

	if (t->sni && t->sni[0])
		p = pp2_tlv(p, RELAY_PP2_TYPE_AUTHORITY, t->sni,
			    strlen(t->sni));
	if (t->cert_conn)
		client |= RELAY_PP2_CLIENT_CERT_CONN;
	if (t->cert_sess)
		client |= RELAY_PP2_CLIENT_CERT_SESS;
	*p++ = RELAY_PP2_TYPE_SSL;
	*p++ = (uint8_t)(ssl >> 8);
	*p++ = (uint8_t)ssl;
	*p++ = client;
	*p++ = (uint8_t)(verify >> 24);
	*p++ = (uint8_t)(verify >> 16);
	*p++ = (uint8_t)(verify >> 8);
	*p++ = (uint8_t)verify;
	p = pp2_tlv(p, RELAY_PP2_SUBTYPE_SSL_VERSION, v, vn);
	p = pp2_tlv(p, RELAY_PP2_SUBTYPE_SSL_CIPHER, c, cn);
	if (nn)
		p = pp2_tlv(p, RELAY_PP2_SUBTYPE_SSL_CN, t->cn, nn);
	return p;
}

int relay_proxy_v2_encode(const struct relay_proxy_addr *a, uint8_t *buf,
			  size_t len)
{
	/* proxy-protocol.txt 2.2: 12-octet signature, then version 2 and
	 * command PROXY (0x21), AF_INET + STREAM (0x11), then the address
	 * block length (12, network order), then src addr, dst addr, src
	 * port, dst port, all in network byte order. */
	static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
	uint8_t *p = buf;
	bool local = !a->v6 && a->src_addr == 0 && a->dst_addr == 0 &&
		     a->src_port == 0 && a->dst_port == 0;
	int tl = a->tls && !local ? pp2_tls_len(a->tls) : 0;
	size_t block;

	if (tl < 0)
		return tl;
	if (len < (a->v6 ? RELAY_PROXY_V2_TCP6_LEN : RELAY_PROXY_V2_TCP4_LEN) +
			  (size_t)tl)
		return -ENOSPC;
	memcpy(p, sig, sizeof(sig));
	p += sizeof(sig);
	if (a->v6) {
		/* PROXY, AF_INET6 + STREAM (0x21), 36-octet block: 16-octet
		 * source, destination, then the two ports; the length
		 * covers the TLVs after it (2.2) */
		block = 36 + (size_t)tl;
		*p++ = 0x21;
		*p++ = 0x21;
		*p++ = (uint8_t)(block >> 8);
		*p++ = (uint8_t)block;
		memcpy(p, a->src6, 16);
		p += 16;
		memcpy(p, a->dst6, 16);
		p += 16;
		*p++ = (uint8_t)(a->src_port >> 8);
		*p++ = (uint8_t)a->src_port;
		*p++ = (uint8_t)(a->dst_port >> 8);
		*p++ = (uint8_t)a->dst_port;
		if (tl)
			p = pp2_tls(p, a->tls);
		return (int)(p - buf);
	}
	if (local) {
		/* No client behind this connection (a health check): the
		 * LOCAL command, AF_UNSPEC, no address block (2.2). */
		*p++ = 0x20;
		*p++ = 0x00;
		*p++ = 0;
		*p++ = 0;
		return RELAY_PROXY_V2_LOCAL_LEN;
	}
	block = 12 + (size_t)tl;
	*p++ = 0x21;
	*p++ = 0x11;
	*p++ = (uint8_t)(block >> 8);
	*p++ = (uint8_t)block;
	*p++ = (uint8_t)(a->src_addr >> 24);
	*p++ = (uint8_t)(a->src_addr >> 16);
	*p++ = (uint8_t)(a->src_addr >> 8);
	*p++ = (uint8_t)a->src_addr;
	*p++ = (uint8_t)(a->dst_addr >> 24);
	*p++ = (uint8_t)(a->dst_addr >> 16);
	*p++ = (uint8_t)(a->dst_addr >> 8);
	*p++ = (uint8_t)a->dst_addr;
	*p++ = (uint8_t)(a->src_port >> 8);
	*p++ = (uint8_t)a->src_port;
	*p++ = (uint8_t)(a->dst_port >> 8);
	*p++ = (uint8_t)a->dst_port;
	if (tl)
		p = pp2_tls(p, a->tls);
	return (int)(p - buf);
}

ssize_t relay_xtext_encode(const char *src, char *dst, size_t dstlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	/* RFC 3461 4: xchar is "!" to "~" except "+" and "="; anything
	 * else is "+" and two upper-case hex digits. */
	for (const unsigned char *s = (const unsigned char *)src; *s; s++) {
		if (*s >= 33 && *s <= 126 && *s != '+' && *s != '=') {
			if (o + 1 >= dstlen)
				return -ENOSPC;
			dst[o++] = (char)*s;
		} else {
			if (o + 3 >= dstlen)
				return -ENOSPC;
			dst[o++] = '+';
			dst[o++] = hex[*s >> 4];
			dst[o++] = hex[*s & 15];
		}
	}
	if (o >= dstlen)
		return -ENOSPC;
	dst[o] = '\0';
	return (ssize_t)o;
}

/* ------------------------------------------------------------ events */

static uint32_t ev_count(const struct relay_client *c)
{
	return c->eq_tail - c->eq_head;
}

/* Room for one ordinary event (the last slot is kept for RELAY_EV_ERROR
 * or RELAY_EV_CLOSED, of which there is at most one). */
static bool ev_room(const struct relay_client *c)
{
	return ev_count(c) < EVQ_SIZE - 1;
}

static struct relay_event *ev_push(struct relay_client *c,
				   enum relay_event_type type,
				   enum relay_step step)
{
	struct ev_slot *s;

	if (ev_count(c) >= EVQ_SIZE)
		return NULL; /* cannot happen: see ev_room() */
	s = &c->evq[c->eq_tail++ % EVQ_SIZE];
	memset(&s->ev, 0, sizeof(s->ev));
	s->ev.type = type;
	s->ev.step = step;
	s->text[0] = '\0';
	s->ev.reply.text = s->text;
	return &s->ev;
}

static void ev_set_reply(struct relay_client *c, struct relay_event *ev,
			 const struct reply_acc *r)
{
	struct ev_slot *s = (struct ev_slot *)ev;

	(void)c;
	ev->reply.code = r->code;
	memcpy(ev->reply.enh, r->enh, sizeof(ev->reply.enh));
	memcpy(s->text, r->text, r->text_len);
	s->text[r->text_len] = '\0';
	ev->reply.text = s->text;
	ev->reply.text_len = r->text_len;
	ev->reply.lines = r->lines;
	ev->reply.truncated = r->truncated;
}

/* ------------------------------------------------------------ output */

static uint32_t out_room(const struct relay_client *c)
{
	return c->out_size - c->out_len;
}

static void out_append(struct relay_client *c, const void *p, size_t n)
{
	if (c->out_head + c->out_len + n > c->out_size) {
		memmove(c->out, c->out + c->out_head, c->out_len);
		c->out_head = 0;
	}
	if (c->out_len == 0)
		c->out_since = c->now;
	memcpy(c->out + c->out_head + c->out_len, p, n);
	c->out_len += (uint32_t)n;
}

/* ------------------------------------------------------------ failure */

static void drop_queues(struct relay_client *c)
{
	c->cq_head = c->cq_tail = 0;
	c->nsent = 0;
	c->cb_head = c->cb_tail = 0;
	c->in_len = 0;
	c->cur.started = false;
}

/*
 * The connection is unusable. Everything unanswered fails: one
 * RELAY_EV_ERROR (in the reserved slot), nothing after it. During QUIT a
 * failure is the end we wanted anyway: RELAY_EV_CLOSED instead.
 */
static void fail(struct relay_client *c, enum relay_error err,
		 enum relay_step step, const struct reply_acc *r)
{
	struct relay_event *ev;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return;
	drop_queues(c);
	c->out_len = 0;
	c->out_head = 0;
	if (c->state == RELAY_ST_QUIT) {
		c->state = RELAY_ST_CLOSED;
		ev_push(c, RELAY_EV_CLOSED, RELAY_STEP_QUIT);
		return;
	}
	c->state = RELAY_ST_FAILED;
	ev = ev_push(c, RELAY_EV_ERROR, step);
	if (ev) {
		ev->error = err;
		if (r)
			ev_set_reply(c, ev, r);
	}
}

/* ------------------------------------------------------------ commands */

static struct cmd *cq_at(struct relay_client *c, uint32_t i)
{
	return &c->cmdq[(c->cq_head + i) % CMDQ_SIZE];
}

static uint32_t cq_count(const struct relay_client *c)
{
	return c->cq_tail - c->cq_head;
}

/* RFC 2920 3.1: only these may be followed by more commands before their
 * reply; EHLO, DATA, QUIT (and XCLIENT, which restarts the session) end a
 * group. */
static bool pipelinable(unsigned kind)
{
	return kind == CMD_MAIL || kind == CMD_RCPT || kind == CMD_RSET;
}

static void flush(struct relay_client *c)
{
	while (c->nsent < cq_count(c)) {
		struct cmd *n = cq_at(c, c->nsent);

		if (c->nsent > 0) {
			struct cmd *last = cq_at(c, c->nsent - 1);

			if (!c->caps.pipelining || !pipelinable(last->kind))
				break;
			if (!pipelinable(n->kind) && n->kind != CMD_DATA &&
			    n->kind != CMD_QUIT)
				break;
		}
		if (out_room(c) < n->len)
			break; /* output_consume() calls us again */
		out_append(c, c->cmdbuf + c->cb_head, n->len);
		c->cb_head += n->len;
		n->len = 0;
		if (c->nsent++ == 0) {
			/* nothing was in flight: the client waits a whole
			 * round trip for this command (and those pipelined
			 * behind it) */
			c->head_deadline = c->now + kind_timeout(c, n->kind);
			c->stats.round_trips++;
		}
		c->stats.commands++;
	}
	if (c->cb_head == c->cb_tail)
		c->cb_head = c->cb_tail = 0;
}

/* Appends a staged command; text is formatted from fmt. 0 or -ENOSPC
 * (-EINVAL when the line is too long). */
static int stage(struct relay_client *c, unsigned kind, uint32_t index,
		 size_t maxlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int stage(struct relay_client *c, unsigned kind, uint32_t index,
		 size_t maxlen, const char *fmt, ...)
{
	va_list ap;
	int n;
	struct cmd *q;

	if (cq_count(c) >= CMDQ_SIZE)
		return -ENOSPC;
	if (CMDBUF_SIZE - c->cb_tail < maxlen + 1 && c->cb_head > 0) {
		memmove(c->cmdbuf, c->cmdbuf + c->cb_head,
			c->cb_tail - c->cb_head);
		c->cb_tail -= c->cb_head;
		c->cb_head = 0;
	}
	va_start(ap, fmt);
	n = mxg_vfmt(c->cmdbuf + c->cb_tail, CMDBUF_SIZE - c->cb_tail, fmt,
		      ap);
	va_end(ap);
	if (n < 0 || (size_t)n > maxlen)
		return -EINVAL;
	if ((size_t)n >= CMDBUF_SIZE - c->cb_tail)
		return -ENOSPC;
	q = &c->cmdq[c->cq_tail++ % CMDQ_SIZE];
	q->kind = (uint8_t)kind;
	q->quiet = false;
	q->lazy = false;
	q->len = (uint16_t)n;
	q->index = index;
	c->cb_tail += (uint32_t)n;
	return 0;
}

/* Commands queue atomically: remember the tail, roll back on failure. */
struct stage_mark {
	uint32_t cq_tail;
	uint32_t staged_len;
};

static void mark_take(const struct relay_client *c, struct stage_mark *m)
{
	m->cq_tail = c->cq_tail;
	m->staged_len = c->cb_tail - c->cb_head;
}

static void mark_rollback(struct relay_client *c, const struct stage_mark *m)
{
	c->cq_tail = m->cq_tail;
	c->cb_tail = c->cb_head + m->staged_len;
}

/* ------------------------------------------------------------ EHLO caps */

static bool word_eq(const char *w, size_t wl, const char *kw)
{
	size_t kl = strlen(kw);

	return wl == kl && strncasecmp(w, kw, kl) == 0;
}

/* RFC 5321 4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param ). */
static void parse_ehlo_line(struct relay_caps *k, const char *s, size_t len)
{
	size_t i = 0, wl;
	const char *w;

	while (i < len && s[i] != ' ')
		i++;
	w = s;
	wl = i;
	if (word_eq(w, wl, "PIPELINING")) {
		k->pipelining = true;
	} else if (word_eq(w, wl, "SIZE")) {
		uint64_t v = 0;

		k->size = true;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			if (v < UINT64_MAX / 10)
				v = v * 10 + (uint64_t)(s[i] - '0');
		k->size_max = v;
	} else if (word_eq(w, wl, "8BITMIME")) {
		k->eightbitmime = true;
	} else if (word_eq(w, wl, "SMTPUTF8")) {
		k->smtputf8 = true;
	} else if (word_eq(w, wl, "CHUNKING")) {
		k->chunking = true;
	} else if (word_eq(w, wl, "DSN")) {
		k->dsn = true;
	} else if (word_eq(w, wl, "ENHANCEDSTATUSCODES")) {
		k->enhancedstatuscodes = true;
	} else if (word_eq(w, wl, "STARTTLS")) {
		k->starttls = true;
	} else if (word_eq(w, wl, "AUTH")) {
		k->auth = true;
	} else if (word_eq(w, wl, "XCLIENT")) {
		k->xclient = true;
		while (i < len) {
			while (i < len && s[i] == ' ')
				i++;
			w = s + i;
			while (i < len && s[i] != ' ')
				i++;
			wl = (size_t)(s + i - w);
			if (word_eq(w, wl, "ADDR"))
				k->xclient_attrs |= RELAY_XCLIENT_ADDR;
			else if (word_eq(w, wl, "NAME"))
				k->xclient_attrs |= RELAY_XCLIENT_NAME;
			else if (word_eq(w, wl, "HELO"))
				k->xclient_attrs |= RELAY_XCLIENT_HELO;
			else if (word_eq(w, wl, "PROTO"))
				k->xclient_attrs |= RELAY_XCLIENT_PROTO;
			else if (word_eq(w, wl, "LOGIN"))
				k->xclient_attrs |= RELAY_XCLIENT_LOGIN;
			else if (word_eq(w, wl, "PORT"))
				k->xclient_attrs |= RELAY_XCLIENT_PORT;
		}
	}
}

/* ------------------------------------------------------------ replies */

static bool is_reply_class(uint16_t code, unsigned cls)
{
	return code / 100 == cls;
}

static void enter_ready(struct relay_client *c)
{
	c->state = RELAY_ST_READY;
	c->nrcpt = 0;
	c->data_sent = false;
	c->body_len = 0;
	c->want_writable = false;
}

static void report(struct relay_client *c, const struct cmd *cmd,
		   enum relay_event_type type)
{
	struct relay_event *ev;

	if (cmd->quiet)
		return;
	ev = ev_push(c, type, kind_step(cmd->kind));
	if (ev) {
		ev->index = cmd->index;
		ev_set_reply(c, ev, &c->cur);
	}
}

/* After the set-up EHLO: true when STARTTLS was staged (cfg.tls asks and
 * the backend offers it). REQUIRED and not offered fails the client. */
static bool want_starttls(struct relay_client *c)
{
	if (c->cfg.tls == RELAY_TLS_OFF || c->tls_active)
		return false;
	if (!c->caps.starttls) {
		if (c->cfg.tls == RELAY_TLS_REQUIRED)
			fail(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS, NULL);
		return false;
	}
	if (stage(c, CMD_STARTTLS, 0, CMD_LINE_MAX, "STARTTLS\r\n") < 0) {
		fail(c, RELAY_ERR_PROTOCOL, RELAY_STEP_STARTTLS, NULL);
		return false;
	}
	return true;
}

/*
 * A complete reply for the oldest sent command: the one place where
 * replies move the state. The head command is removed first so that a
 * handler may stage follow-ups (EHLO after the greeting, HELO after a
 * refused EHLO).
 */
static void on_reply(struct relay_client *c)
{
	struct reply_acc *r = &c->cur;
	struct cmd cmd;
	enum relay_step step;
	uint16_t code = r->code;

	c->stats.replies++;
	if (c->nsent == 0) {
		/* Unsolicited: RFC 5321 3.8 lets a server send 421 and close
		 * at any time; anything else is a protocol error. */
		fail(c, code == 421 ? RELAY_ERR_SHUTDOWN : RELAY_ERR_PROTOCOL,
		     RELAY_STEP_NONE, r);
		return;
	}
	cmd = *cq_at(c, 0);
	c->cq_head++;
	c->nsent--;
	if (c->nsent > 0)
		c->head_deadline = c->now + kind_timeout(c, cq_at(c, 0)->kind);
	step = kind_step(cmd.kind);

	/* Replies to commands of an aborted transaction (or to anything
	 * before a QUIT) are swallowed; only a 421 still matters. */
	if (cmd.quiet) {
		if (code == 421)
			fail(c, RELAY_ERR_SHUTDOWN, step, r);
		else
			flush(c);
		return;
	}

	/* 1yz replies do not exist in SMTP (RFC 5321 4.2.1). */
	if (is_reply_class(code, 1)) {
		fail(c, RELAY_ERR_PROTOCOL, step, r);
		return;
	}

	switch (cmd.kind) {
	case CMD_GREETING:
		if (code != 220) {
			fail(c,
			     code == 421 ? RELAY_ERR_SHUTDOWN
					 : RELAY_ERR_REJECTED,
			     step, r);
			return;
		}
		if (stage(c, CMD_EHLO, 0, CMD_LINE_MAX, "EHLO %s\r\n",
			  c->helo) < 0) {
			fail(c, RELAY_ERR_PROTOCOL, step, NULL);
			return;
		}
		break;
	case CMD_EHLO:
		if (code == 250) {
			c->caps = c->ncaps;
			if (c->state == RELAY_ST_SETUP) {
				if (want_starttls(c))
					break;
				if (c->state != RELAY_ST_SETUP)
					return; /* failed: TLS required */
				enter_ready(c);
				ev_push(c, RELAY_EV_READY, step);
			}
			break;
		}
		/* RFC 5321 3.2: a server that refuses EHLO with 5xx may
		 * still speak HELO. Only at set-up: after XCLIENT the server
		 * offered EHLO a moment ago. */
		if (is_reply_class(code, 5) && c->state == RELAY_ST_SETUP) {
			memset(&c->caps, 0, sizeof(c->caps));
			if (stage(c, CMD_HELO, 0, CMD_LINE_MAX, "HELO %s\r\n",
				  c->helo) == 0)
				break;
		}
		fail(c, code == 421 ? RELAY_ERR_SHUTDOWN : RELAY_ERR_REJECTED,
		     step, r);
		return;
	case CMD_HELO:
		if (code != 250) {
			fail(c,
			     code == 421 ? RELAY_ERR_SHUTDOWN
					 : RELAY_ERR_REJECTED,
			     step, r);
			return;
		}
		if (c->cfg.tls == RELAY_TLS_REQUIRED && !c->tls_active) {
			/* HELO: no ESMTP, so no STARTTLS */
			fail(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS, NULL);
			return;
		}
		enter_ready(c);
		ev_push(c, RELAY_EV_READY, step);
		break;
	case CMD_XCLIENT:
		/* XCLIENT_README: success is a fresh 220 greeting; the EHLO
		 * staged behind it follows. */
		if (code != 220) {
			fail(c,
			     code == 421 ? RELAY_ERR_SHUTDOWN
					 : RELAY_ERR_REJECTED,
			     step, r);
			return;
		}
		break;
	case CMD_MAIL:
	case CMD_RCPT:
		if (is_reply_class(code, 3)) {
			fail(c, RELAY_ERR_PROTOCOL, step, r);
			return;
		}
		report(c, &cmd,
		       cmd.kind == CMD_MAIL ? RELAY_EV_MAIL : RELAY_EV_RCPT);
		break;
	case CMD_DATA:
		if (is_reply_class(code, 2) ||
		    (is_reply_class(code, 3) && code != 354)) {
			fail(c, RELAY_ERR_PROTOCOL, step, r);
			return;
		}
		if (code == 354 && c->state == RELAY_ST_TXN && !cmd.quiet) {
			c->state = RELAY_ST_BODY;
			c->body_tail[0] = c->body_tail[1] = 0;
			c->body_len = 0;
		}
		report(c, &cmd, RELAY_EV_DATA);
		break;
	case CMD_DOT:
		if (is_reply_class(code, 3)) {
			fail(c, RELAY_ERR_PROTOCOL, step, r);
			return;
		}
		c->stats.transactions++;
		enter_ready(c);
		report(c, &cmd, RELAY_EV_DATA_END);
		break;
	case CMD_RSET:
		if (cmd.lazy && code == 250)
			break; /* the MAIL behind it carries on */
		if (code != 250) {
			fail(c,
			     code == 421 ? RELAY_ERR_SHUTDOWN
					 : RELAY_ERR_REJECTED,
			     step, r);
			return;
		}
		enter_ready(c);
		report(c, &cmd, RELAY_EV_RSET);
		break;
	case CMD_STARTTLS:
		if (code == 220) {
			/* RFC 3207 4: the TLS handshake starts now; input
			 * after this reply is not ours (parse_input drops
			 * it) */
			c->tls_wait = true;
			c->tls_deadline = c->now + c->cfg.tmo_ehlo_ms;
			report(c, &cmd, RELAY_EV_STARTTLS);
			return;
		}
		if (c->cfg.tls == RELAY_TLS_REQUIRED || code == 421) {
			fail(c, code == 421 ? RELAY_ERR_SHUTDOWN : RELAY_ERR_TLS,
			     step, r);
			return;
		}
		/* opportunistic: refused, go on in clear */
		enter_ready(c);
		ev_push(c, RELAY_EV_READY, step);
		break;
	case CMD_QUIT:
		/* RFC 5321 4.1.1.10: 221; whatever comes, we are done. */
		drop_queues(c);
		c->state = RELAY_ST_CLOSED;
		ev_push(c, RELAY_EV_CLOSED, step);
		return;
	}
	/* RFC 5321 3.8: 421 means the server is closing the channel. The
	 * reply was reported above; everything behind it fails. */
	if (code == 421) {
		fail(c, RELAY_ERR_SHUTDOWN, step, r);
		return;
	}
	flush(c);
}

static int parse_enh(const char *s, size_t len, unsigned cls)
{
	/* RFC 3463 2: class "." subject "." detail, 1-3 digits each, class
	 * matching the reply's first digit (RFC 2034 4). Returns the length
	 * of the code (not counting the following space) or 0. */
	size_t i = 0;
	int part;

	if (len < 5 || (unsigned)(s[0] - '0') != cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		size_t d = 0;

		while (i < len && s[i] >= '0' && s[i] <= '9' && d < 4) {
			i++;
			d++;
		}
		if (d == 0 || d > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return (int)i;
}

static void acc_text(struct reply_acc *r, const char *s, size_t len)
{
	size_t room = RELAY_REPLY_TEXT_MAX - 1 - r->text_len;

	if (r->lines > 1) {
		if (room == 0) {
			r->truncated = true;
			return;
		}
		r->text[r->text_len++] = '\n';
		room--;
	}
	if (len > room) {
		len = room;
		r->truncated = true;
	}
	memcpy(r->text + r->text_len, s, len);
	r->text_len += (uint16_t)len;
}

/* One reply line (without CRLF). RFC 5321 4.2: "xyz-text" continues,
 * "xyz text" or "xyz" ends the reply; every line carries the same code. */
static void on_line(struct relay_client *c, const char *s, size_t len)
{
	struct reply_acc *r = &c->cur;
	uint16_t code;
	bool last;
	const char *t;
	size_t tl;

	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' ||
	    s[2] < '0' || s[2] > '9' ||
	    (len > 3 && s[3] != ' ' && s[3] != '-')) {
		/* Code 1yz is caught later as "unexpected"; here anything
		 * not 2yz-5yz is malformed. */
		fail(c, RELAY_ERR_PROTOCOL,
		     c->nsent ? kind_step(cq_at(c, 0)->kind) : RELAY_STEP_NONE,
		     NULL);
		return;
	}
	code = (uint16_t)((s[0] - '0') * 100 + (s[1] - '0') * 10 +
			  (s[2] - '0'));
	last = len == 3 || s[3] == ' ';
	t = len > 4 ? s + 4 : "";
	tl = len > 4 ? len - 4 : 0;

	if (!r->started) {
		memset(r, 0, offsetof(struct reply_acc, text));
		r->started = true;
		r->code = code;
		memset(&c->ncaps, 0, sizeof(c->ncaps));
		c->ncaps.esmtp = true;
	} else if (code != r->code) {
		fail(c, RELAY_ERR_PROTOCOL,
		     c->nsent ? kind_step(cq_at(c, 0)->kind) : RELAY_STEP_NONE,
		     NULL);
		return;
	}
	r->lines++;
	if (r->lines == 1) {
		int el = parse_enh(t, tl, (unsigned)(code / 100));

		if (el > 0) {
			memcpy(r->enh, t, (size_t)el);
			r->enh[el] = '\0';
			t += el;
			tl -= (size_t)el;
			if (tl > 0) {
				t++;
				tl--;
			}
		}
	} else if (r->enh[0] != '\0') {
		size_t el = strlen(r->enh);

		if (tl >= el && memcmp(t, r->enh, el) == 0 &&
		    (tl == el || t[el] == ' ')) {
			t += el;
			tl -= el;
			if (tl > 0) {
				t++;
				tl--;
			}
		}
	}
	acc_text(r, t, tl);
	if (r->lines > 1 && c->nsent > 0 && cq_at(c, 0)->kind == CMD_EHLO &&
	    code == 250)
		parse_ehlo_line(&c->ncaps, t, tl);
	if (last) {
		r->started = false;
		on_reply(c);
	}
}

static bool alive(const struct relay_client *c)
{
	return c->state != RELAY_ST_FAILED && c->state != RELAY_ST_CLOSED &&
	       c->state != RELAY_ST_CONNECTING;
}

static void parse_input(struct relay_client *c)
{
	uint32_t pos = 0;

	while (alive(c) && ev_room(c) && pos < c->in_len) {
		uint8_t *lf = memchr(c->inbuf + pos, '\n', c->in_len - pos);
		size_t len;

		if (lf == NULL) {
			if (c->in_len - pos >= REPLY_LINE_MAX) {
				fail(c, RELAY_ERR_PROTOCOL,
				     c->nsent ? kind_step(cq_at(c, 0)->kind)
					      : RELAY_STEP_NONE,
				     NULL);
				return;
			}
			break;
		}
		len = (size_t)(lf - (c->inbuf + pos));
		if (len + 1 > REPLY_LINE_MAX) {
			fail(c, RELAY_ERR_PROTOCOL,
			     c->nsent ? kind_step(cq_at(c, 0)->kind)
				      : RELAY_STEP_NONE,
			     NULL);
			return;
		}
		/* Tolerate a bare LF from a sloppy server; strip the CR. */
		if (len > 0 && c->inbuf[pos + len - 1] == '\r')
			len--;
		on_line(c, (const char *)c->inbuf + pos, len);
		pos = (uint32_t)(lf - c->inbuf) + 1;
		if (c->tls_wait) {
			/* RFC 3207 5: nothing the server sent in clear after
			 * its 220 is trusted (or TLS) */
			c->stats.starttls_discarded += c->in_len - pos;
			pos = c->in_len;
			break;
		}
	}
	if (!alive(c) && c->state != RELAY_ST_CONNECTING) {
		c->in_len = 0;
		return;
	}
	if (pos > 0) {
		memmove(c->inbuf, c->inbuf + pos, c->in_len - pos);
		c->in_len -= pos;
	}
}

/* ------------------------------------------------------------ life */

size_t relay_client_memsize(const struct relay_client_config *cfg)
{
	uint32_t out = cfg && cfg->out_buf_size ? cfg->out_buf_size : 16384;

	return (sizeof(struct relay_client) + out + 7) & ~(size_t)7;
}

struct relay_client *relay_client_init(void *mem, size_t size,
				       const struct relay_client_config *cfg,
				       const struct relay_proxy_addr *proxy,
				       uint64_t now_ms)
{
	struct relay_client *c = mem;
	struct relay_client_config k;

	if (mem == NULL || cfg == NULL)
		return NULL;
	k = *cfg;
	fill_defaults(&k);
	if (k.out_buf_size < 1024 || size < relay_client_memsize(&k) ||
	    strlen(k.helo_name) > 255 || strpbrk(k.helo_name, " \r\n") ||
	    (k.client_info == RELAY_CINFO_PROXY && proxy == NULL))
		return NULL;
	memset(c, 0, sizeof(*c));
	c->cfg = k;
	memcpy(c->helo, k.helo_name, strlen(k.helo_name) + 1);
	c->cfg.helo_name = c->helo;
	c->out_size = k.out_buf_size;
	c->now = now_ms;
	c->state = RELAY_ST_CONNECTING;
	c->connect_deadline = now_ms + k.tmo_connect_ms;
	if (k.client_info == RELAY_CINFO_PROXY) {
		uint8_t hdr[RELAY_PROXY_V2_MAX_LEN];

		/* proxy-protocol.txt 2: the header is the very first thing
		 * on the connection, before the server's greeting. */
		int hl = relay_proxy_v2_encode(proxy, hdr, sizeof(hdr));

		if (hl < 0)
			return NULL; /* a TLS string over its bound */
		out_append(c, hdr, (size_t)hl);
	}
	return c;
}

struct relay_client *relay_client_create(const struct relay_client_config *cfg,
					 const struct relay_proxy_addr *proxy,
					 uint64_t now_ms)
{
	struct relay_client_config k;
	size_t sz;
	void *mem;
	struct relay_client *c;

	if (cfg == NULL)
		return NULL;
	k = *cfg;
	fill_defaults(&k);
	sz = relay_client_memsize(&k);
	mem = malloc(sz);
	if (mem == NULL)
		return NULL;
	c = relay_client_init(mem, sz, &k, proxy, now_ms);
	if (c == NULL)
		free(mem);
	return c;
}

void relay_client_destroy(struct relay_client *c)
{
	free(c);
}

int relay_client_connected(struct relay_client *c)
{
	struct cmd *q;

	if (c->state != RELAY_ST_CONNECTING)
		return -EINVAL;
	c->state = RELAY_ST_SETUP;
	/* RFC 5321 3.1: the server speaks first; wait for its 220 as if it
	 * were the reply to a command we sent. */
	q = &c->cmdq[c->cq_tail++ % CMDQ_SIZE];
	memset(q, 0, sizeof(*q));
	q->kind = CMD_GREETING;
	c->nsent = 1;
	c->head_deadline = c->now + c->cfg.tmo_greeting_ms;
	if (c->out_len > 0)
		c->out_since = c->now;
	parse_input(c);
	return 0;
}

size_t relay_client_feed(struct relay_client *c, const void *buf, size_t len)
{
	size_t n;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return len; /* nobody listens any more: discard */
	if (c->tls_wait) {
		/* between the 220 to STARTTLS and the handshake: the
		 * caller's TLS layer owns the bytes; cleartext is dropped */
		c->stats.starttls_discarded += (uint32_t)len;
		return len;
	}
	n = INBUF_SIZE - c->in_len;
	if (n > len)
		n = len;
	memcpy(c->inbuf + c->in_len, buf, n);
	c->in_len += (uint32_t)n;
	c->stats.bytes_in += n;
	parse_input(c);
	return n;
}

void relay_client_eof(struct relay_client *c)
{
	enum relay_step step = RELAY_STEP_NONE;

	if (c->state == RELAY_ST_CONNECTING)
		step = RELAY_STEP_CONNECT;
	else if (c->nsent > 0)
		step = kind_step(cq_at(c, 0)->kind);
	else if (c->state == RELAY_ST_BODY)
		step = RELAY_STEP_BODY;
	fail(c, RELAY_ERR_CLOSED, step, NULL);
}

const uint8_t *relay_client_output(const struct relay_client *c, size_t *len)
{
	*len = c->out_len;
	return c->out + c->out_head;
}

void relay_client_output_consume(struct relay_client *c, size_t n)
{
	if (n > c->out_len)
		n = c->out_len;
	c->out_head += (uint32_t)n;
	c->out_len -= (uint32_t)n;
	c->stats.bytes_out += n;
	if (c->out_len == 0)
		c->out_head = 0;
	if (n > 0)
		c->out_since = c->now;
	if (!alive(c))
		return;
	flush(c);
	if (c->want_writable && c->state == RELAY_ST_BODY &&
	    relay_client_body_space(c) >= c->out_size / 4 && ev_room(c)) {
		c->want_writable = false;
		ev_push(c, RELAY_EV_WRITABLE, RELAY_STEP_BODY);
	}
}

void relay_client_time(struct relay_client *c, uint64_t now_ms)
{
	c->now = now_ms;
	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return;
	if (c->state == RELAY_ST_CONNECTING) {
		if (now_ms >= c->connect_deadline)
			fail(c, RELAY_ERR_TIMEOUT, RELAY_STEP_CONNECT, NULL);
		return;
	}
	if (c->nsent > 0 && now_ms >= c->head_deadline) {
		fail(c, RELAY_ERR_TIMEOUT, kind_step(cq_at(c, 0)->kind), NULL);
		return;
	}
	if (c->tls_wait && now_ms >= c->tls_deadline) {
		fail(c, RELAY_ERR_TIMEOUT, RELAY_STEP_STARTTLS, NULL);
		return;
	}
	if (c->out_len > 0 &&
	    now_ms >= c->out_since + c->cfg.tmo_data_block_ms) {
		enum relay_step step = RELAY_STEP_BODY;

		if (c->state != RELAY_ST_BODY && c->state != RELAY_ST_EOD &&
		    c->nsent > 0)
			step = kind_step(cq_at(c, 0)->kind);
		fail(c, RELAY_ERR_TIMEOUT, step, NULL);
	}
}

uint64_t relay_client_deadline(const struct relay_client *c)
{
	uint64_t d = RELAY_NO_DEADLINE;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return d;
	if (c->state == RELAY_ST_CONNECTING)
		return c->connect_deadline;
	if (c->nsent > 0)
		d = c->head_deadline;
	if (c->tls_wait && c->tls_deadline < d)
		d = c->tls_deadline;
	if (c->out_len > 0 && c->out_since + c->cfg.tmo_data_block_ms < d)
		d = c->out_since + c->cfg.tmo_data_block_ms;
	return d;
}

const struct relay_event *relay_client_event(const struct relay_client *c)
{
	if (ev_count(c) == 0)
		return NULL;
	return &c->evq[c->eq_head % EVQ_SIZE].ev;
}

void relay_client_event_pop(struct relay_client *c)
{
	if (ev_count(c) == 0)
		return;
	c->eq_head++;
	if (c->want_writable && c->state == RELAY_ST_BODY &&
	    relay_client_body_space(c) >= c->out_size / 4 && ev_room(c)) {
		c->want_writable = false;
		ev_push(c, RELAY_EV_WRITABLE, RELAY_STEP_BODY);
	}
	parse_input(c);
}

/* ------------------------------------------------------------ transaction */

/* Arguments end up inside a command line: CR, LF or NUL would let a
 * caller's data smuggle a second command (RFC 5321 2.3.8). */
/* A command argument that is not an address: no CR or LF, so it can
 * never end the command line early. */
static bool arg_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* An address for "<...>": the SMTP engine's own grammar
 * (smtp_valid_mailbox), so every address the engine accepts, quoted local
 * parts holding '<' or '>' included, is sent as the client wrote it. */
static bool mailbox_ok(const char *s, unsigned flags)
{
	return smtp_valid_mailbox(s, strlen(s), flags);
}

static int check_txn(const struct relay_client *c)
{
	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_TXN || c->data_sent)
		return -EBUSY;
	return 0;
}

static int stage_xclient(struct relay_client *c, const struct relay_xclient *x)
{
	/* XCLIENT_README: "XCLIENT attribute=value ..."; values xtext;
	 * a command line stays within 512 octets, so long attribute sets
	 * are split over several XCLIENT commands, each answered by 220. */
	struct xattr {
		uint32_t bit;
		const char *name;
		const char *val;
	} attrs[6];
	char portbuf[8];
	char line[XCLIENT_LINE_MAX + 1];
	char enc[XCLIENT_LINE_MAX];
	size_t n = 0, ll = 0;
	int rc;

	attrs[n++] = (struct xattr){RELAY_XCLIENT_NAME, "NAME", x->name};
	attrs[n++] = (struct xattr){RELAY_XCLIENT_ADDR, "ADDR", x->addr};
	if (x->port) {
		mxg_fmt(portbuf, sizeof(portbuf), "%u", x->port);
		attrs[n++] =
			(struct xattr){RELAY_XCLIENT_PORT, "PORT", portbuf};
	}
	attrs[n++] = (struct xattr){RELAY_XCLIENT_PROTO, "PROTO", x->proto};
	attrs[n++] = (struct xattr){RELAY_XCLIENT_HELO, "HELO", x->helo};
	attrs[n++] = (struct xattr){RELAY_XCLIENT_LOGIN, "LOGIN", x->login};

	for (size_t i = 0; i < n; i++) {
		ssize_t el;
		size_t need;

		if (attrs[i].val == NULL ||
		    !(c->caps.xclient_attrs & attrs[i].bit))
			continue;
		el = relay_xtext_encode(attrs[i].val, enc, sizeof(enc));
		if (el < 0)
			return -EINVAL;
		need = 1 + strlen(attrs[i].name) + 1 + (size_t)el;
		if (7 + need + 2 > XCLIENT_LINE_MAX)
			return -EINVAL;
		if (ll > 0 && ll + need + 2 > XCLIENT_LINE_MAX) {
			rc = stage(c, CMD_XCLIENT, 0, XCLIENT_LINE_MAX,
				   "%s\r\n", line);
			if (rc < 0)
				return rc;
			ll = 0;
		}
		if (ll == 0)
			ll = (size_t)mxg_fmt(line, sizeof(line), "XCLIENT");
		ll += (size_t)mxg_fmt(line + ll, sizeof(line) - ll, " %s=%s",
				       attrs[i].name, enc);
	}
	if (ll == 0)
		return 1; /* nothing the server accepts */
	return stage(c, CMD_XCLIENT, 0, XCLIENT_LINE_MAX, "%s\r\n", line);
}

int relay_client_mail(struct relay_client *c, const struct relay_mail *m)
{
	struct stage_mark mark;
	const char *params = m->params ? m->params : "";
	int rc;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_READY)
		return -EBUSY;
	if (m->sender == NULL || !mailbox_ok(m->sender, SMTP_PATH_REVERSE) ||
	    !arg_ok(params))
		return -EINVAL;
	mark_take(c, &mark);
	if (c->cfg.client_info == RELAY_CINFO_XCLIENT && m->xclient) {
		const struct relay_xclient *x = m->xclient;

		if ((x->addr && !arg_ok(x->addr)) ||
		    (x->proto && !arg_ok(x->proto)))
			return -EINVAL;
		if (!c->caps.xclient) {
			c->stats.xclient_skipped++;
		} else {
			rc = stage_xclient(c, x);
			if (rc < 0)
				goto undo;
			if (rc == 0) {
				/* XCLIENT_README: the server resets to the
				 * just-connected state; EHLO again. Postfix
				 * records the name of this EHLO, so send the
				 * client's own HELO name when it is a clean
				 * token, ours otherwise. */
				const char *h = c->helo;

				if (x->helo && x->helo[0] &&
				    strlen(x->helo) <= 255 &&
				    !strpbrk(x->helo, " \t\r\n") &&
				    arg_ok(x->helo))
					h = x->helo;
				rc = stage(c, CMD_EHLO, 0, CMD_LINE_MAX,
					   "EHLO %s\r\n", h);
				if (rc < 0)
					goto undo;
			} else {
				c->stats.xclient_skipped++;
			}
		}
	}
	/* XCLIENT resets the backend's session itself (XCLIENT_README);
	 * otherwise the RSET owed since the last transaction leads. */
	if (c->rset_due && c->cq_tail == mark.cq_tail) {
		rc = stage(c, CMD_RSET, 0, CMD_LINE_MAX, "RSET\r\n");
		if (rc < 0)
			goto undo;
		c->cmdq[(c->cq_tail - 1) % CMDQ_SIZE].lazy = true;
	}
	rc = stage(c, CMD_MAIL, 0, CMD_LINE_MAX, "MAIL FROM:<%s>%s%s\r\n",
		   m->sender, params[0] ? " " : "", params);
	if (rc < 0)
		goto undo;
	c->rset_due = false;
	c->state = RELAY_ST_TXN;
	c->nrcpt = 0;
	c->data_sent = false;
	flush(c);
	return 0;
undo:
	mark_rollback(c, &mark);
	return rc;
}

int relay_client_rcpt(struct relay_client *c, const char *rcpt,
		      const char *params)
{
	int rc = check_txn(c);

	if (rc < 0)
		return rc;
	if (params == NULL)
		params = "";
	if (rcpt == NULL || !mailbox_ok(rcpt, SMTP_PATH_FORWARD) ||
	    !arg_ok(params))
		return -EINVAL;
	rc = stage(c, CMD_RCPT, c->nrcpt, CMD_LINE_MAX, "RCPT TO:<%s>%s%s\r\n",
		   rcpt, params[0] ? " " : "", params);
	if (rc < 0)
		return rc;
	flush(c);
	return (int)c->nrcpt++;
}

int relay_client_data(struct relay_client *c)
{
	int rc = check_txn(c);

	if (rc < 0)
		return rc;
	rc = stage(c, CMD_DATA, 0, CMD_LINE_MAX, "DATA\r\n");
	if (rc < 0)
		return rc;
	c->data_sent = true;
	flush(c);
	return 0;
}

size_t relay_client_body_space(const struct relay_client *c)
{
	if (c->state != RELAY_ST_BODY ||
	    c->out_len + DOT_RESERVE >= c->out_size)
		return 0;
	return c->out_size - c->out_len - DOT_RESERVE;
}

ssize_t relay_client_body(struct relay_client *c, const void *buf, size_t len)
{
	size_t n;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_BODY)
		return -EINVAL;
	n = relay_client_body_space(c);
	if (n > len)
		n = len;
	if (n < len)
		c->want_writable = true;
	if (n == 0)
		return 0;
	out_append(c, buf, n);
	if (n >= 2) {
		memcpy(c->body_tail, (const uint8_t *)buf + n - 2, 2);
	} else {
		c->body_tail[0] = c->body_tail[1];
		c->body_tail[1] = *(const uint8_t *)buf;
	}
	c->body_len += n;
	c->stats.body_bytes += n;
	return (ssize_t)n;
}

int relay_client_commit(struct relay_client *c)
{
	struct cmd *q;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_BODY)
		return -EINVAL;
	if (out_room(c) < DOT_RESERVE)
		return -EAGAIN;
	/* RFC 5321 4.1.1.4: the body ends with CRLF, then "." CRLF. A body
	 * that does not end in CRLF gets one, so the dot is always a line
	 * of its own and the backend sees the boundary we see. */
	if (c->body_len > 0 &&
	    !(c->body_tail[0] == '\r' && c->body_tail[1] == '\n'))
		out_append(c, "\r\n.\r\n", 5);
	else
		out_append(c, ".\r\n", 3);
	q = &c->cmdq[c->cq_tail++ % CMDQ_SIZE];
	memset(q, 0, sizeof(*q));
	q->kind = CMD_DOT;
	/* In BODY nothing else is outstanding: 354 was the last reply. */
	if (c->nsent++ == 0) {
		c->head_deadline = c->now + c->cfg.tmo_data_end_ms;
		c->stats.round_trips++;
	}
	c->stats.commands++;
	c->want_writable = false;
	c->state = RELAY_ST_EOD;
	return 0;
}

int relay_client_abort(struct relay_client *c)
{
	uint32_t i;
	int rc;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_TXN && c->state != RELAY_ST_BODY)
		return -EINVAL;
	if (c->data_sent && c->state == RELAY_ST_TXN) {
		/* DATA still staged (not sent)? Then RSET is still fine. */
		bool staged = false;

		for (i = c->nsent; i < cq_count(c); i++)
			if (cq_at(c, i)->kind == CMD_DATA)
				staged = true;
		if (staged)
			goto rset;
		/* DATA sent and unanswered: a 354 may be on its way, after
		 * which RSET would be body text. */
		if (c->nsent > 0 && cq_at(c, c->nsent - 1)->kind == CMD_DATA)
			goto close;
		/* DATA answered with an error: command mode again. */
		goto rset;
	}
	if (c->state == RELAY_ST_BODY)
		goto close;
rset:
	/* Drop staged commands, swallow replies of the sent ones. */
	c->cq_tail = c->cq_head + c->nsent;
	c->cb_head = c->cb_tail = 0;
	for (i = 0; i < c->nsent; i++)
		cq_at(c, i)->quiet = true;
	rc = stage(c, CMD_RSET, 0, CMD_LINE_MAX, "RSET\r\n");
	if (rc < 0) {
		fail(c, RELAY_ERR_PROTOCOL, RELAY_STEP_RSET, NULL);
		return RELAY_ABORT_CLOSE;
	}
	c->state = RELAY_ST_RSET;
	c->data_sent = false;
	flush(c);
	return RELAY_ABORT_RSET;
close:
	drop_queues(c);
	c->out_len = 0;
	c->out_head = 0;
	c->state = RELAY_ST_CLOSED;
	return RELAY_ABORT_CLOSE;
}

int relay_client_rset(struct relay_client *c)
{
	int rc;

	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_READY)
		return -EBUSY;
	rc = stage(c, CMD_RSET, 0, CMD_LINE_MAX, "RSET\r\n");
	if (rc < 0)
		return rc;
	c->rset_due = false;
	c->state = RELAY_ST_RSET;
	flush(c);
	return 0;
}

int relay_client_rset_lazy(struct relay_client *c)
{
	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state != RELAY_ST_READY)
		return -EBUSY;
	c->rset_due = true;
	return 0;
}

int relay_client_tls_done(struct relay_client *c, bool ok)
{
	if (!c->tls_wait || !alive(c))
		return -EINVAL;
	c->tls_wait = false;
	if (!ok) {
		fail(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS, NULL);
		return 0;
	}
	c->tls_active = true;
	/* RFC 3207 4.2: discard what the server said in clear; ask again */
	memset(&c->caps, 0, sizeof(c->caps));
	if (stage(c, CMD_EHLO, 0, CMD_LINE_MAX, "EHLO %s\r\n", c->helo) < 0)
		fail(c, RELAY_ERR_PROTOCOL, RELAY_STEP_EHLO, NULL);
	else
		flush(c);
	return 0;
}

bool relay_client_tls_active(const struct relay_client *c)
{
	return c->tls_active;
}

int relay_client_quit(struct relay_client *c)
{
	if (c->state == RELAY_ST_FAILED || c->state == RELAY_ST_CLOSED)
		return -EPIPE;
	if (c->state == RELAY_ST_CONNECTING || c->tls_wait) {
		/* (mid-handshake a QUIT line would go in clear into TLS) */
		c->state = RELAY_ST_CLOSED;
		return 0;
	}
	/* Drop whatever is staged; QUIT follows the sent ones. */
	c->cq_tail = c->cq_head + c->nsent;
	c->cb_head = c->cb_tail = 0;
	if (c->state == RELAY_ST_BODY || c->state == RELAY_ST_EOD ||
	    (c->data_sent && c->nsent > 0)) {
		/* Inside DATA a QUIT line would be body text: just close. */
		drop_queues(c);
		c->out_len = 0;
		c->out_head = 0;
		c->state = RELAY_ST_CLOSED;
		return 0;
	}
	for (uint32_t i = 0; i < c->nsent; i++)
		cq_at(c, i)->quiet = true;
	if (stage(c, CMD_QUIT, 0, CMD_LINE_MAX, "QUIT\r\n") < 0) {
		c->state = RELAY_ST_CLOSED;
		return 0;
	}
	c->state = RELAY_ST_QUIT;
	flush(c);
	return 0;
}

enum relay_state relay_client_state(const struct relay_client *c)
{
	return c->state;
}

bool relay_client_done(const struct relay_client *c)
{
	return c->state == RELAY_ST_CLOSED || c->state == RELAY_ST_FAILED;
}

const struct relay_caps *relay_client_caps(const struct relay_client *c)
{
	return &c->caps;
}

const struct relay_client_stats *
relay_client_stats(const struct relay_client *c)
{
	return &c->stats;
}
