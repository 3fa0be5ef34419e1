/*
 * gateway.c - SMTP sessions on the per-core TCP stack, relayed in-line to
 * backend MTAs or the local Maildir (see gateway.h, DESIGN 5).
 *
 * Ownership: everything in a struct gw_core belongs to one dataplane lcore.
 * The TCP callbacks, the poll and every pump run on that lcore.
 *
 * How work flows. TCP callbacks never do protocol work themselves: they
 * mark the session or backend connection "dirty" and run the dirty lists
 * (gw_run). A session pump feeds client bytes into the SMTP engine,
 * answers its events, and writes its output; a backend pump feeds backend
 * bytes into the relay client, handles its events (which answer the
 * owning session's pending request and dirty that session), and writes
 * its output. Because each pump only touches its own object and dirties
 * the other, no pump ever re-enters another, and an object is only freed
 * by gw_run once no pump is running on it.
 *
 * The safety rule (DESIGN 5): a client's end of data is answered 250 only
 * from a backend's 250 to our final dot (RELAY_EV_DATA_END) or from a
 * Maildir completion with status 0 (file and directory fsync'd). Every
 * other outcome is a 4xx or the backend's own 5xx.
 *
 * What this first version simplifies (docs/status.md): RCPTs reach the
 * backend one at a time (MAIL and the first RCPT are pipelined; the engine
 * holds further pipelined input until each verdict), Maildir delivery
 * stores one file per message whatever the recipients.
 */
#include "dataplane/gateway.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/net/tcp.h"
#include "dataplane/relay/maildir.h"

#define GW_MAX_LOG_RCPT 4

struct gw_be;

/* Why a client request is waiting. */
enum gw_wait {
	W_NONE = 0,
	W_RCPT,      /* RCPT verdict waits for the backend (MAIL+RCPT) */
	W_DATA,      /* DATA verdict waits for 354 */
	W_DATA_END,  /* end-of-data verdict waits for the backend / Maildir */
};

struct gw_sess {
	bool used;
	bool dirty;
	bool dead;           /* TCP gone: release at the end of gw_run */
	bool closing;        /* tcp_close() called */
	bool peer_eof;
	struct gw_sess *next_dirty;
	struct gw_core *gc;
	uint32_t idx;
	uint32_t gen;
	char sid[24];
	const struct gw_listener *lst;
	struct tcp_conn *tc;
	struct smtp_session *sm;
	struct rte_mbuf *in;  /* unconsumed received segments */
	uint32_t in_off;
	rte_be32_t client_ip;
	uint16_t client_port;
	char client[INET_ADDRSTRLEN];
	char helo[256];
	bool esmtp;
	uint64_t t_start_us;

	/* Transaction. */
	int pool;             /* -1 until the first RCPT */
	struct gw_be *be;     /* backend of this transaction */
	bool be_sticky;       /* PROXY v2: backend bound to this client */
	bool txn_failed;      /* backend died: everything now gets 4xx */
	bool mail_sent;       /* relay_client_mail() done on be */
	bool mail_failed;     /* backend refused MAIL: reply kept below */
	struct relay_reply_copy {
		uint16_t code;
		char enh[16];
		char text[256];
	} mail_reply;
	enum gw_wait wait;
	char pend_rcpt[520];  /* RCPT waiting for the backend to be READY */
	char pend_rcpt_params[160];
	bool pend_rcpt_queued;
	int md_job;           /* Maildir job, -1 none */
	bool md_committed;
	bool md_failed;
	int md_status;
	bool body_discard;    /* swallow the body (transaction failed) */
	char from[520];
	char mail_params[200];
	uint32_t nrcpt_ok, nrcpt_bad;
	char rcpt_log[GW_MAX_LOG_RCPT][128];
	uint64_t t_mail_us;
	uint64_t size;
	char backend_name[32];
};

enum gw_be_state {
	BE_FREE = 0,
	BE_CONNECTING,       /* tcp_connect issued */
	BE_UP,               /* TCP up; relay client drives the protocol */
};

struct gw_be {
	enum gw_be_state state;
	bool dirty;
	bool dead;           /* TCP gone: release in gw_run */
	bool closing;
	bool probe;          /* active health check connection */
	bool ready;          /* RELAY_EV_READY seen since last txn */
	bool idle;           /* parked in the pool's idle cache */
	bool counted;        /* relay_server_opened() done */
	bool eof;            /* relay_client_eof() done */
	bool reuse_check;    /* reused from the cache, no reply yet in this
				transaction: a failure now is retried on a
				fresh connection */
	bool xclient_used;   /* an XCLIENT identity was applied */
	struct gw_be *next_dirty;
	struct gw_core *gc;
	uint32_t idx;
	uint32_t srv;
	uint32_t pool;
	struct tcp_conn *tc;
	struct relay_client *rc;
	struct gw_sess *owner;
	struct rte_mbuf *in;
	uint32_t in_off;
	char name[32];
};

struct gw_core {
	const struct gw_global *gw;
	uint16_t core;
	struct net_stack *st;
	struct gw_sess *sess;
	uint8_t *smtp_mem;
	uint32_t free_sess;    /* index list through next_free */
	uint32_t *sess_next_free;
	struct gw_be *be;
	uint8_t *relay_mem;
	struct relay_pools *pools;
	struct maildir *md;
	uint32_t md_inflight;
	struct gw_sess *dirty_s;
	struct gw_be *dirty_b;
	bool running;
	uint64_t now_us;
	uint64_t last_scan_us;
	uint32_t sid_seq;
	uint32_t sid_epoch;
	struct rte_ring *log;
	struct rte_mempool *log_pool;
	struct gw_ltag *tags;
	struct gw_stats stats;
	uint8_t scratch[16384];
};

#define NO_FREE UINT32_MAX

/* Listener tag: the compiled listener and the owning core, so the shared
 * accepted() callback finds its core without a global. */
struct gw_ltag {
	struct gw_listener l;
	struct gw_core *gc;
};

static inline uint64_t now_ms(const struct gw_core *gc)
{
	return gc->now_us / 1000;
}

/* ------------------------------------------------------------ logging */

/* One line into the core's log ring; never blocks: a full ring or an
 * empty record pool drops the line and counts it. */
static void __attribute__((format(printf, 2, 3)))
gw_log(struct gw_core *gc, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int n;

	if (!gc->log || rte_mempool_get(gc->log_pool, (void **)&line) != 0) {
		gc->stats.log_dropped++;
		return;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(line, GW_LOG_LINE, "ts=%lld.%03ld core=%u ",
			     (long long)ts.tv_sec, ts.tv_nsec / 1000000,
			     gc->core);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, GW_LOG_LINE - (size_t)n, fmt, ap);
	va_end(ap);
	if (rte_ring_enqueue(gc->log, line) != 0) {
		rte_mempool_put(gc->log_pool, line);
		gc->stats.log_dropped++;
	}
}

/* Quotes s for a key="value" field: drops control characters and quotes. */
static const char *logq(char *buf, size_t len, const char *s)
{
	size_t j = 0;

	for (size_t i = 0; s && s[i] && j + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[j++] = (c < 0x20 || c == '"' || c == 0x7f) ? ' ' : (char)c;
	}
	buf[j] = '\0';
	return buf;
}

/* Received segments held between feeds are detached one by one (the
 * chain head's pkt_len/nb_segs are not maintained), so they are freed one
 * by one too. */
static void segs_free(struct rte_mbuf **in)
{
	while (*in) {
		struct rte_mbuf *n = (*in)->next;

		(*in)->next = NULL;
		rte_pktmbuf_free_seg(*in);
		*in = n;
	}
}

/* Drop the head segment once fully consumed; the next becomes the head. */
static void seg_next(struct rte_mbuf **in, uint32_t *off)
{
	struct rte_mbuf *next = (*in)->next;

	(*in)->next = NULL;
	rte_pktmbuf_free_seg(*in);
	*in = next;
	*off = 0;
}

/* ------------------------------------------------------------ dirty lists */

static void run(struct gw_core *gc);

static void sess_dirty(struct gw_sess *s)
{
	if (s->dirty || !s->used)
		return;
	s->dirty = true;
	s->next_dirty = s->gc->dirty_s;
	s->gc->dirty_s = s;
}

static void be_dirty(struct gw_be *b)
{
	if (b->dirty || b->state == BE_FREE)
		return;
	b->dirty = true;
	b->next_dirty = b->gc->dirty_b;
	b->gc->dirty_b = b;
}

/* ------------------------------------------------------------ verdicts */

static void verdict(struct gw_sess *s, enum smtp_verdict_kind k, uint16_t code,
		    const char *enh, const char *text)
{
	struct smtp_verdict v = {.kind = k, .code = code, .enh = enh,
				 .text = text};

	(void)smtp_session_verdict(s->sm, &v);
	sess_dirty(s);
}

static void verdict_reply(struct gw_sess *s, const struct relay_reply *r)
{
	enum smtp_verdict_kind k = r->code >= 200 && r->code < 400
					   ? SMTP_V_ACCEPT
					   : SMTP_V_REJECT;

	verdict(s, k, r->code, r->enh[0] ? r->enh : NULL, r->text);
}

static void tempfail(struct gw_sess *s, const char *enh, const char *text)
{
	verdict(s, SMTP_V_REJECT, 451, enh, text);
}

/* ------------------------------------------------------------ backends */

static const struct tcp_callbacks be_cb;
static struct gw_be *sess_get_backend(struct gw_sess *s, uint32_t pool);

static struct gw_be *be_alloc(struct gw_core *gc)
{
	for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
		struct gw_be *b = &gc->be[i];

		if (b->state == BE_FREE) {
			memset(b, 0, sizeof(*b));
			b->gc = gc;
			b->idx = i;
			return b;
		}
	}
	return NULL;
}

/* Open a new backend connection to server srv of pool. */
static struct gw_be *be_open(struct gw_core *gc, uint32_t pool, uint32_t srv,
			     const struct gw_sess *for_sess)
{
	const struct gw_pool *gp = &gc->gw->pools[pool];
	struct relay_server_info si;
	struct relay_proxy_addr pa;
	struct gw_be *b = be_alloc(gc);
	struct in_addr a;
	char ip[INET_ADDRSTRLEN];

	if (!b)
		return NULL;
	relay_server_get_info(gc->pools, srv, &si);
	/* No session (health check): all-zero addresses, which the PROXY v2
	 * encoder sends as the LOCAL command. */
	memset(&pa, 0, sizeof(pa));
	if (for_sess) {
		pa.src_addr = rte_be_to_cpu_32(for_sess->client_ip);
		pa.src_port = for_sess->client_port;
		pa.dst_addr = rte_be_to_cpu_32(gc->gw->our_ip);
		pa.dst_port = for_sess->lst->port;
	}
	b->rc = relay_client_init(gc->relay_mem + (size_t)b->idx *
						   gc->gw->relay_mem,
				  gc->gw->relay_mem, &gp->rc,
				  gp->rc.client_info == RELAY_CINFO_PROXY ? &pa
									  : NULL,
				  now_ms(gc));
	if (!b->rc)
		return NULL;
	b->pool = pool;
	b->srv = srv;
	a.s_addr = rte_cpu_to_be_32(si.addr);
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(b->name, sizeof(b->name), "%s:%u", ip, si.port);
	if (tcp_connect(gc->st, a.s_addr, si.port, &be_cb, b, &b->tc) < 0) {
		b->rc = NULL;
		return NULL;
	}
	b->state = BE_CONNECTING;
	relay_server_opened(gc->pools, srv);
	b->counted = true;
	gc->stats.backend_connects++;
	gc->stats.backend_live++;
	return b;
}

/* Forget a backend: its TCP connection is gone or being aborted. */
static void be_release(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	if (b->counted)
		relay_server_closed(gc->pools, b->srv);
	segs_free(&b->in);
	gc->stats.backend_live--;
	b->state = BE_FREE;
}

/* Close the backend's TCP connection after its output is flushed. */
static void be_close(struct gw_be *b, bool abort_now)
{
	if (b->tc == NULL || b->closing)
		return;
	b->closing = true;
	if (abort_now) {
		struct tcp_conn *tc = b->tc;

		b->tc = NULL;
		tcp_abort(tc);
		b->dead = true;
		be_dirty(b);
	} else {
		tcp_close(b->tc);
	}
}

/* The transaction on b is over (success, RSET, or the session left): park
 * b in the idle cache, or QUIT it. */
static void be_detach(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	const struct gw_pool *gp = &gc->gw->pools[b->pool];
	void *evicted = NULL;

	b->owner = NULL;
	if (b->dead || b->closing)
		return;
	/* A connection that carries one client's XCLIENT identity may only
	 * be reused if the backend still offers XCLIENT to overwrite it
	 * (Postfix stops offering it once the identity is no longer an
	 * authorised host): else the next client would inherit it. */
	if (relay_client_state(b->rc) == RELAY_ST_READY &&
	    gp->rc.client_info != RELAY_CINFO_PROXY &&
	    !(b->xclient_used && !relay_client_caps(b->rc)->xclient) &&
	    relay_pool_idle_put(gc->pools, b->srv, b, now_ms(gc),
				&evicted) == 0) {
		b->idle = true;
		if (evicted) {
			struct gw_be *e = evicted;

			e->idle = false;
			relay_client_quit(e->rc);
			be_dirty(e);
		}
		return;
	}
	if (relay_client_quit(b->rc) < 0)
		be_close(b, false);
	be_dirty(b);
}

/* Take b out of its server's idle cache. False when the cache no longer
 * hands it out (too old): it then comes back through idle_expire. */
static bool idle_remove(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	void *held[64];
	unsigned n = 0;
	bool found = false;
	void *x;

	while (n < 64 &&
	       (x = relay_pool_idle_take(gc->pools, b->srv, now_ms(gc)))) {
		if (x == b) {
			found = true;
			break;
		}
		held[n++] = x;
	}
	while (n > 0) {
		void *ev = NULL;

		relay_pool_idle_put(gc->pools, b->srv, held[--n], now_ms(gc),
				    &ev);
	}
	if (found)
		b->idle = false;
	return found;
}

/* ------------------------------------------------------------ sessions */

static void sess_txn_reset(struct gw_sess *s)
{
	s->pool = -1;
	s->txn_failed = false;
	s->mail_sent = false;
	s->mail_failed = false;
	s->wait = W_NONE;
	s->pend_rcpt_queued = false;
	s->md_job = -1;
	s->md_committed = false;
	s->md_failed = false;
	s->body_discard = false;
	s->nrcpt_ok = s->nrcpt_bad = 0;
	s->size = 0;
	s->backend_name[0] = '\0';
}

/* Abandon whatever the next hop holds for the current transaction. */
static void sess_txn_abort(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->md_job >= 0 && !s->md_committed) {
		maildir_abort(gc->md, s->md_job);
		/* the -ECANCELED completion still arrives and is dropped */
		s->md_job = -1;
	}
	if (s->be) {
		struct gw_be *b = s->be;

		if (!s->be_sticky)
			s->be = NULL;
		if (b->dead || b->closing) {
			if (s->be_sticky)
				s->be = NULL;
			b->owner = NULL;
		} else if (relay_client_state(b->rc) == RELAY_ST_TXN ||
			   relay_client_state(b->rc) == RELAY_ST_BODY) {
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE) {
				b->owner = NULL;
				if (s->be_sticky)
					s->be = NULL;
				be_close(b, false);
			}
			be_dirty(b);
			/* RSET case: be_pump parks it after RELAY_EV_RSET */
			if (!s->be_sticky)
				b->owner = NULL;
		} else if (!s->be_sticky) {
			be_detach(b);
		}
	}
	sess_txn_reset(s);
}

static void log_message(struct gw_sess *s, const char *outcome,
			const struct relay_reply *r, uint16_t code,
			const char *enh, const char *text)
{
	char q1[300], q2[300], q3[300], rc[300], rl[600];
	size_t off = 0;

	rl[0] = '\0';
	for (uint32_t i = 0; i < s->nrcpt_ok && i < GW_MAX_LOG_RCPT; i++)
		off += (size_t)snprintf(rl + off, sizeof(rl) - off, "%s<%s>",
					i ? "," : "", s->rcpt_log[i]);
	if (r)
		snprintf(rc, sizeof(rc), "%u %s %s", r->code, r->enh,
			 r->text ? r->text : "");
	else
		snprintf(rc, sizeof(rc), "%u %s %s", code, enh ? enh : "",
			 text ? text : "");
	gw_log(s->gc,
	       "event=message sid=%s client=%s helo=\"%s\" listener=%s "
	       "from=<%s> rcpts=%u to=%s size=%llu backend=%s reply=\"%s\" "
	       "outcome=%s ms=%llu",
	       s->sid, s->client, logq(q1, sizeof(q1), s->helo),
	       s->lst->cl->name, logq(q2, sizeof(q2), s->from), s->nrcpt_ok,
	       rl[0] ? rl : "-", (unsigned long long)s->size,
	       s->backend_name[0] ? s->backend_name : "-",
	       logq(q3, sizeof(q3), rc), outcome,
	       (unsigned long long)((s->gc->now_us - s->t_mail_us) / 1000));
}

/* Count and log the final answer to a transaction. */
static void txn_done(struct gw_sess *s, uint16_t code,
		     const struct relay_reply *r, const char *enh,
		     const char *text)
{
	struct gw_core *gc = s->gc;
	const char *outcome;

	if (code >= 200 && code < 300) {
		gc->stats.messages_accepted++;
		outcome = "accepted";
	} else if (code >= 500) {
		gc->stats.messages_rejected++;
		outcome = "rejected";
	} else {
		gc->stats.messages_tempfail++;
		outcome = "tempfail";
	}
	log_message(s, outcome, r, code, enh, text);
}

/* Backend failed under a transaction: every waiting request of s gets a
 * 4xx; the rest of the transaction is 4xx too (never 250). */
static void sess_backend_failed(struct gw_sess *s, const char *why)
{
	s->txn_failed = true;
	s->be = NULL;
	s->be_sticky = false;
	switch (s->wait) {
	case W_RCPT:
		s->wait = W_NONE;
		s->gc->stats.rcpts_rejected++;
		tempfail(s, "4.4.2", why);
		break;
	case W_DATA:
		s->wait = W_NONE;
		tempfail(s, "4.4.2", why);
		break;
	case W_DATA_END:
		s->wait = W_NONE;
		txn_done(s, 451, NULL, "4.4.2", why);
		tempfail(s, "4.4.2", why);
		sess_txn_reset(s);
		break;
	default:
		/* in the body: swallow it, answer 451 at end of data */
		s->body_discard = true;
		break;
	}
}

/* Build MAIL parameters the backend offers. */
static void mail_params(struct gw_sess *s, const struct relay_caps *caps,
			char *buf, size_t len)
{
	size_t off = 0;
	char *p = s->mail_params;

	buf[0] = '\0';
	/* mail_params holds "SIZE=n BODY=x SMTPUTF8 RET=x ENVID=x" as the
	 * client gave them; keep those the backend supports. */
	while (*p) {
		char tok[160];
		size_t n = strcspn(p, " ");
		bool keep = false;

		snprintf(tok, sizeof(tok), "%.*s", (int)RTE_MIN(n, 159u), p);
		if (!strncmp(tok, "SIZE=", 5))
			keep = caps->size;
		else if (!strncmp(tok, "BODY=", 5))
			keep = caps->eightbitmime;
		else if (!strcmp(tok, "SMTPUTF8"))
			keep = caps->smtputf8;
		else if (!strncmp(tok, "RET=", 4) || !strncmp(tok, "ENVID=", 6))
			keep = caps->dsn;
		if (keep && off + n + 2 < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? " " : "", tok);
		p += n;
		while (*p == ' ')
			p++;
	}
}

/* The backend of s is READY: send MAIL (+XCLIENT) and the waiting RCPT. */
static void sess_backend_ready(struct gw_sess *s)
{
	struct gw_be *b = s->be;
	const struct relay_caps *caps = relay_client_caps(b->rc);
	struct relay_xclient xc = {
		.addr = s->client,
		.port = s->client_port,
		.name = "[UNAVAILABLE]",
		.helo = s->helo[0] ? s->helo : NULL,
		.proto = s->esmtp ? "ESMTP" : "SMTP",
	};
	struct relay_mail m = {.sender = s->from, .xclient = &xc};
	char params[200], rparams[160];

	if (!s->mail_sent) {
		mail_params(s, caps, params, sizeof(params));
		m.params = params[0] ? params : NULL;
		if (caps->xclient)
			b->xclient_used = true;
		if (relay_client_mail(b->rc, &m) < 0) {
			sess_backend_failed(s, "Backend refused the "
					       "transaction");
			return;
		}
		s->mail_sent = true;
	}
	if (s->wait == W_RCPT && !s->pend_rcpt_queued) {
		rparams[0] = '\0';
		if (caps->dsn && s->pend_rcpt_params[0])
			snprintf(rparams, sizeof(rparams), "%s",
				 s->pend_rcpt_params);
		if (relay_client_rcpt(b->rc, s->pend_rcpt,
				      rparams[0] ? rparams : NULL) < 0) {
			sess_backend_failed(s, "Backend refused the "
					       "recipient");
			return;
		}
		s->pend_rcpt_queued = true;
	}
	be_dirty(b);
}

/* ------------------------------------------------------------ backend pump */

static void be_handle_event(struct gw_be *b, const struct relay_event *ev)
{
	struct gw_core *gc = b->gc;
	struct gw_sess *s = b->owner;

	switch (ev->type) {
	case RELAY_EV_READY:
		b->ready = true;
		if (b->probe) {
			relay_server_check_result(gc->pools, b->srv, true,
						  now_ms(gc));
			relay_client_quit(b->rc);
			return;
		}
		relay_server_report(gc->pools, b->srv, true, now_ms(gc));
		if (s)
			sess_backend_ready(s);
		else
			be_detach(b);
		return;
	case RELAY_EV_MAIL:
		b->reuse_check = false;
		if (!s)
			return;
		if (ev->reply.code / 100 != 2) {
			/* Keep the refusal: it answers this RCPT and every
			 * later one of the transaction. */
			s->mail_failed = true;
			s->mail_reply.code = ev->reply.code;
			snprintf(s->mail_reply.enh, sizeof(s->mail_reply.enh),
				 "%s", ev->reply.enh);
			snprintf(s->mail_reply.text,
				 sizeof(s->mail_reply.text), "%s",
				 ev->reply.text ? ev->reply.text : "");
		}
		return;
	case RELAY_EV_RCPT:
		if (!s || s->wait != W_RCPT)
			return;
		s->wait = W_NONE;
		s->pend_rcpt_queued = false;
		if (s->mail_failed) {
			/* MAIL refused: the RCPT reply (503) is not the
			 * client's business; give it the MAIL reply. */
			gc->stats.rcpts_rejected++;
			verdict(s, SMTP_V_REJECT, s->mail_reply.code,
				s->mail_reply.enh[0] ? s->mail_reply.enh
						     : NULL,
				s->mail_reply.text);
			return;
		}
		if (ev->reply.code / 100 == 2) {
			if (s->nrcpt_ok < GW_MAX_LOG_RCPT)
				snprintf(s->rcpt_log[s->nrcpt_ok], 128, "%.127s",
					 s->pend_rcpt);
			s->nrcpt_ok++;
			gc->stats.rcpts_accepted++;
		} else {
			s->nrcpt_bad++;
			gc->stats.rcpts_rejected++;
		}
		verdict_reply(s, &ev->reply);
		return;
	case RELAY_EV_DATA:
		if (!s || s->wait != W_DATA)
			return;
		s->wait = W_NONE;
		if (ev->reply.code == 354) {
			verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		} else {
			struct relay_reply r = ev->reply;

			/* DATA refused: the transaction is dead at the
			 * backend; abort it there and tell the client. */
			if (r.code < 400)
				r.code = 451;
			verdict_reply(s, &r);
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE) {
				s->be = NULL;
				b->owner = NULL;
				be_close(b, false);
			}
			s->txn_failed = true;
		}
		return;
	case RELAY_EV_WRITABLE:
		if (s)
			sess_dirty(s);
		return;
	case RELAY_EV_DATA_END:
		/* any reply proves the server alive */
		relay_server_report(gc->pools, b->srv, true, now_ms(gc));
		if (!s || s->wait != W_DATA_END)
			return;
		s->wait = W_NONE;
		txn_done(s, ev->reply.code, &ev->reply, NULL, NULL);
		verdict_reply(s, &ev->reply);
		if (!s->be_sticky) {
			/* RSET between transactions (DESIGN 5): sent now, off
			 * the next message's path; the connection is parked
			 * when the backend answers it (RELAY_EV_RSET). */
			s->be = NULL;
			b->owner = NULL;
			if (relay_client_rset(b->rc) < 0)
				be_detach(b);
			be_dirty(b);
		}
		sess_txn_reset(s);
		return;
	case RELAY_EV_RSET:
		b->reuse_check = false;
		/* An aborted transaction's RSET: the connection is reusable
		 * (unless a sticky session still holds it). */
		if (!s)
			be_detach(b);
		else if (s->wait == W_RCPT)
			sess_backend_ready(s);
		return;
	case RELAY_EV_CLOSED:
		be_close(b, false);
		return;
	case RELAY_EV_ERROR: {
		char why[200];

		gc->stats.backend_errors++;
		if (b->probe)
			relay_server_check_result(gc->pools, b->srv, false,
						  now_ms(gc));
		else
			relay_server_report(gc->pools, b->srv, false,
					    now_ms(gc));
		snprintf(why, sizeof(why),
			 "Backend %s failed (%s at %s), try again later",
			 b->name, relay_error_name(ev->error),
			 relay_step_name(ev->step));
		gw_log(gc, "event=backend_error backend=%s error=%s step=%s "
			   "code=%u sid=%s",
		       b->name, relay_error_name(ev->error),
		       relay_step_name(ev->step), ev->reply.code,
		       s ? s->sid : "-");
		if (s && b->reuse_check && s->wait == W_RCPT) {
			/* A cached connection died before its RSET answer:
			 * nothing of the transaction reached it; retry the
			 * RCPT on a fresh connection. */
			b->owner = NULL;
			s->mail_sent = false;
			s->mail_failed = false;
			s->pend_rcpt_queued = false;
			s->be = sess_get_backend(s, b->pool);
			be_close(b, true);
			if (!s->be) {
				sess_backend_failed(s, why);
				return;
			}
			snprintf(s->backend_name, sizeof(s->backend_name),
				 "%s", s->be->name);
			if (relay_client_state(s->be->rc) == RELAY_ST_READY)
				sess_backend_ready(s);
			return;
		}
		if (s) {
			b->owner = NULL;
			sess_backend_failed(s, why);
		}
		be_close(b, true);
		return;
	}
	default:
		return;
	}
}

/* Feed backend bytes, handle events, write output. */
static void be_pump(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	if (b->state != BE_UP || b->dead)
		return;
	relay_client_time(b->rc, now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct relay_event *ev;
		bool progress = false;

		/* input */
		for (;;) {
			size_t n, len;

			if (!b->in && b->tc)
				b->in = tcp_recv_chain(b->tc, 65536), b->in_off = 0;
			if (!b->in)
				break;
			len = b->in->data_len - b->in_off;
			n = relay_client_feed(
				b->rc,
				rte_pktmbuf_mtod_offset(b->in, uint8_t *,
							b->in_off),
				len);
			if (n)
				progress = true;
			b->in_off += (uint32_t)n;
			if (b->in_off < b->in->data_len)
				break;
			seg_next(&b->in, &b->in_off);
		}
		/* events */
		while ((ev = relay_client_event(b->rc)) != NULL) {
			be_handle_event(b, ev);
			relay_client_event_pop(b->rc);
			progress = true;
			if (b->dead)
				return;
		}
		/* output */
		if (b->tc) {
			size_t len;
			const uint8_t *out = relay_client_output(b->rc, &len);

			if (len) {
				ssize_t w = tcp_send(b->tc, out, len);

				if (w > 0) {
					relay_client_output_consume(
						b->rc, (size_t)w);
					progress = true;
				}
			}
		}
		if (!progress)
			break;
	}
	if (relay_client_done(b->rc) && b->tc) {
		size_t len;

		(void)relay_client_output(b->rc, &len);
		if (len == 0)
			be_close(b, relay_client_state(b->rc) ==
					    RELAY_ST_FAILED);
	}
}

/* TCP callbacks of backend connections. */
static void be_connected(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	b->state = BE_UP;
	relay_client_connected(b->rc);
	be_dirty(b);
	run(b->gc);
}

static void be_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	be_dirty(ctx);
	run(((struct gw_be *)ctx)->gc);
}

static void be_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	be_pump(b); /* take what is buffered first */
	if (b->state == BE_UP && !b->dead && !b->eof) {
		b->eof = true;
		relay_client_eof(b->rc);
		be_dirty(b);
	}
	if (!b->closing)
		be_close(b, false);
	run(b->gc);
}

static void be_gone(struct gw_be *b, int err)
{
	b->tc = NULL;
	if (!b->dead) {
		if (b->state == BE_CONNECTING) {
			/* relay client never started: raise its error
			 * through eof for one code path */
			b->state = BE_UP;
		}
		if (!b->eof) {
			b->eof = true;
			relay_client_eof(b->rc);
		}
		b->state = BE_UP;
		be_pump(b);
	}
	RTE_SET_USED(err);
	b->dead = true;
	be_dirty(b);
	run(b->gc);
}

static void be_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	be_gone(ctx, 0);
}

static void be_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	be_gone(ctx, err);
}

static const struct tcp_callbacks be_cb = {
	.connected = be_connected,
	.readable = be_readable,
	.writable = be_readable,
	.peer_closed = be_peer_closed,
	.closed = be_closed,
	.reset = be_reset,
};

/* ------------------------------------------------------------ session pump */

/* Get a backend for s in pool: idle cached, else new. NULL: none. */
static struct gw_be *sess_get_backend(struct gw_sess *s, uint32_t pool)
{
	struct gw_core *gc = s->gc;
	const struct gw_pool *gp = &gc->gw->pools[pool];
	uint32_t srv;
	struct gw_be *b;
	int r;

	while (gp->rc.client_info != RELAY_CINFO_PROXY &&
	       (b = relay_pool_idle_take_any(gc->pools, pool, now_ms(gc),
					     &srv)) != NULL) {
		b->idle = false;
		if (b->dead || b->closing ||
		    relay_client_state(b->rc) != RELAY_ST_READY) {
			if (b->dead)
				be_release(b);
			continue;
		}
		/* Cached connections were RSET and answered before they were
		 * parked (RELAY_EV_DATA_END below), so they are clean; one
		 * that died since is retried on a new connection. */
		b->reuse_check = true;
		b->owner = s;
		gc->stats.backend_reused++;
		return b;
	}
	r = relay_pool_select(gc->pools, pool, now_ms(gc));
	if (r < 0)
		return NULL;
	b = be_open(gc, pool, (uint32_t)r, s);
	if (b)
		b->owner = s;
	return b;
}

static const char *rcpt_domain(const struct smtp_rcpt *r, size_t *len)
{
	const char *at = memrchr(r->addr, '@', r->addr_len);

	if (!at) {
		*len = 0;
		return "";
	}
	*len = r->addr_len - (size_t)(at + 1 - r->addr);
	return at + 1;
}

static void on_rcpt(struct gw_sess *s, const struct smtp_rcpt *r)
{
	struct gw_core *gc = s->gc;
	size_t dlen;
	const char *dom = rcpt_domain(r, &dlen);
	uint32_t pool = relay_pools_route(gc->pools, dom, dlen);
	const struct gw_pool *gp = &gc->gw->pools[pool];

	if (s->txn_failed) {
		gc->stats.rcpts_rejected++;
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (s->pool >= 0 && (uint32_t)s->pool != pool) {
		/* DESIGN 5: one pool per transaction. */
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, 452, "4.5.3",
			"Recipient goes to another destination: send it in "
			"its own transaction");
		return;
	}
	s->pool = (int)pool;
	if (gp->maildir) {
		if (s->nrcpt_ok < GW_MAX_LOG_RCPT)
			snprintf(s->rcpt_log[s->nrcpt_ok], 128, "%.*s",
				 (int)RTE_MIN(r->addr_len, 127), r->addr);
		s->nrcpt_ok++;
		gc->stats.rcpts_accepted++;
		snprintf(s->backend_name, sizeof(s->backend_name), "maildir");
		verdict(s, SMTP_V_ACCEPT, 250, "2.1.5", "Ok");
		return;
	}
	if (s->mail_failed) {
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, s->mail_reply.code,
			s->mail_reply.enh[0] ? s->mail_reply.enh : NULL,
			s->mail_reply.text);
		return;
	}
	snprintf(s->pend_rcpt, sizeof(s->pend_rcpt), "%.*s", (int)r->addr_len,
		 r->addr);
	s->pend_rcpt_params[0] = '\0';
	if (r->notify || r->orcpt) {
		size_t off = 0;

		if (r->notify) {
			static const char *names[] = {"NEVER", "SUCCESS",
						      "FAILURE", "DELAY"};
			const char *sep = "NOTIFY=";

			for (int i = 0; i < 4; i++)
				if (r->notify & (1u << i)) {
					off += (size_t)snprintf(
						s->pend_rcpt_params + off,
						sizeof(s->pend_rcpt_params) -
							off,
						"%s%s", sep, names[i]);
					sep = ",";
				}
		}
		if (r->orcpt && off < sizeof(s->pend_rcpt_params))
			snprintf(s->pend_rcpt_params + off,
				 sizeof(s->pend_rcpt_params) - off,
				 "%sORCPT=%s", off ? " " : "", r->orcpt);
	}
	s->wait = W_RCPT;
	s->pend_rcpt_queued = false;
	if (!s->be) {
		s->be = sess_get_backend(s, pool);
		if (!s->be) {
			s->wait = W_NONE;
			gc->stats.rcpts_rejected++;
			tempfail(s, "4.4.1",
				 "No backend available, try again later");
			return;
		}
		s->be_sticky = gp->rc.client_info == RELAY_CINFO_PROXY;
		snprintf(s->backend_name, sizeof(s->backend_name), "%s",
			 s->be->name);
	}
	if (relay_client_state(s->be->rc) == RELAY_ST_READY || s->mail_sent)
		sess_backend_ready(s);
	/* else RELAY_EV_READY calls sess_backend_ready() */
}

static void on_data(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->txn_failed || s->pool < 0) {
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (gc->gw->pools[s->pool].maildir) {
		struct maildir_received rcv = {
			.client_addr = s->client,
			.helo = s->helo[0] ? s->helo : NULL,
			.listener = s->lst->cl->name,
			.session_id = s->sid,
			.protocol = s->esmtp ? "ESMTP" : "SMTP",
			.sender = s->from,
			.recipient = s->nrcpt_ok == 1 ? s->rcpt_log[0] : NULL,
		};
		int j = maildir_begin(gc->md, &rcv,
				      ((uint64_t)s->gen << 32) | s->idx);

		if (j < 0) {
			tempfail(s, "4.3.0", "Local delivery busy, try again "
					     "later");
			return;
		}
		s->md_job = j;
		gc->md_inflight++;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return;
	}
	if (!s->be || relay_client_data(s->be->rc) < 0) {
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	s->wait = W_DATA;
	be_dirty(s->be);
}

/* Body bytes for the next hop. Returns false when it must wait. */
static bool on_chunk(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	size_t len;
	const uint8_t *p = smtp_session_data(s->sm, &len);
	ssize_t n;

	if (len == 0)
		return true;
	if (s->body_discard || s->txn_failed || s->md_failed) {
		s->size += len;
		smtp_session_data_consume(s->sm, len);
		return true;
	}
	if (s->md_job >= 0) {
		n = maildir_append(gc->md, s->md_job, p, len);
		if (n == -EFBIG || n < 0) {
			s->md_failed = true;
			s->md_status = (int)n;
			smtp_session_data_consume(s->sm, len);
			return true;
		}
	} else if (s->be) {
		n = relay_client_body(s->be->rc, p, len);
		if (n < 0) {
			s->body_discard = true;
			smtp_session_data_consume(s->sm, len);
			return true;
		}
		be_dirty(s->be);
	} else {
		s->body_discard = true;
		smtp_session_data_consume(s->sm, len);
		return true;
	}
	s->size += (uint64_t)n;
	if (n > 0)
		smtp_session_data_consume(s->sm, (size_t)n);
	return (size_t)n == len;
}

static void on_data_end(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->md_job >= 0 && s->md_failed) {
		int st = s->md_status;

		maildir_abort(gc->md, s->md_job);
		s->md_job = -1;
		if (st == -EFBIG) {
			txn_done(s, 552, NULL, "5.3.4", "Message too big");
			verdict(s, SMTP_V_REJECT, 552, "5.3.4",
				"Message too big for local delivery");
		} else {
			txn_done(s, 451, NULL, "4.3.0", "Local delivery failed");
			tempfail(s, "4.3.0", "Local delivery failed, try "
					     "again later");
		}
		sess_txn_reset(s);
		return;
	}
	if (s->body_discard || s->txn_failed) {
		txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		tempfail(s, "4.4.2", "Backend failed during the message, try "
				     "again later");
		sess_txn_abort(s);
		return;
	}
	if (s->md_job >= 0) {
		if (maildir_commit(gc->md, s->md_job) < 0) {
			txn_done(s, 451, NULL, "4.3.0", "Local delivery failed");
			tempfail(s, "4.3.0", "Local delivery failed");
			sess_txn_reset(s);
			return;
		}
		s->md_committed = true;
		s->wait = W_DATA_END;
		return;
	}
	if (!s->be || relay_client_commit(s->be->rc) < 0) {
		txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		tempfail(s, "4.4.2", "Backend failed, try again later");
		sess_txn_abort(s);
		return;
	}
	s->wait = W_DATA_END;
	be_dirty(s->be);
}

/* One engine event. Returns false when the session must wait. */
static bool sess_event(struct gw_sess *s, const struct smtp_event *ev)
{
	struct gw_core *gc = s->gc;

	switch (ev->type) {
	case SMTP_REQ_CONNECT:
		/* Connection policy is the policy issue's; accept. */
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_HELO:
		snprintf(s->helo, sizeof(s->helo), "%s", ev->helo.name);
		s->esmtp = ev->helo.esmtp;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_MAIL: {
		const struct smtp_mail *m = &ev->mail;
		size_t off = 0;

		sess_txn_reset(s);
		snprintf(s->from, sizeof(s->from), "%.*s", (int)m->addr_len,
			 m->addr);
		s->mail_params[0] = '\0';
#define P(...)                                                                 \
	off += (size_t)snprintf(s->mail_params + off,                          \
				sizeof(s->mail_params) - off, __VA_ARGS__)
		if (m->has_size)
			P("%sSIZE=%llu", off ? " " : "",
			  (unsigned long long)m->size);
		if (m->body == SMTP_BODY_8BITMIME)
			P("%sBODY=8BITMIME", off ? " " : "");
		else if (m->body == SMTP_BODY_7BIT)
			P("%sBODY=7BIT", off ? " " : "");
		if (m->smtputf8)
			P("%sSMTPUTF8", off ? " " : "");
		if (m->ret == SMTP_RET_FULL)
			P("%sRET=FULL", off ? " " : "");
		else if (m->ret == SMTP_RET_HDRS)
			P("%sRET=HDRS", off ? " " : "");
		if (m->envid && off + strlen(m->envid) + 8 <
					sizeof(s->mail_params))
			P("%sENVID=%s", off ? " " : "", m->envid);
#undef P
		s->t_mail_us = gc->now_us;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	}
	case SMTP_REQ_RCPT:
		if (s->wait != W_NONE)
			return false;
		on_rcpt(s, &ev->rcpt);
		return s->wait == W_NONE;
	case SMTP_REQ_DATA:
		if (s->wait != W_NONE)
			return false;
		on_data(s);
		return s->wait == W_NONE;
	case SMTP_EV_DATA_CHUNK:
		return on_chunk(s);
	case SMTP_REQ_DATA_END:
		if (s->wait != W_NONE)
			return false;
		on_data_end(s);
		return s->wait == W_NONE;
	case SMTP_EV_RESET:
		sess_txn_abort(s);
		smtp_session_ack(s->sm);
		return true;
	case SMTP_EV_CLOSE:
		smtp_session_ack(s->sm);
		return true;
	case SMTP_REQ_STARTTLS:
		verdict(s, SMTP_V_REJECT, 454, "4.7.0",
			"TLS not available");
		return true;
	case SMTP_REQ_AUTH:
		verdict(s, SMTP_V_REJECT, 504, "5.5.4",
			"Authentication not available");
		return true;
	case SMTP_REQ_ETRN:
		verdict(s, SMTP_V_REJECT, 458, "4.5.0",
			"Unable to queue messages");
		return true;
	default:
		smtp_session_ack(s->sm);
		return true;
	}
}

static void sess_pump(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->dead || !s->sm)
		return;
	smtp_session_time(s->sm, now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct smtp_event *ev;
		bool progress = false;

		/* client input into the engine */
		for (;;) {
			size_t n, len;

			if (!s->in && s->tc) {
				s->in = tcp_recv_chain(s->tc, 65536);
				s->in_off = 0;
			}
			if (!s->in)
				break;
			len = s->in->data_len - s->in_off;
			n = smtp_session_feed(
				s->sm,
				rte_pktmbuf_mtod_offset(s->in, uint8_t *,
							s->in_off),
				len);
			gc->stats.bytes_in += n;
			if (n)
				progress = true;
			s->in_off += (uint32_t)n;
			if (s->in_off < s->in->data_len)
				break;
			seg_next(&s->in, &s->in_off);
		}
		/* events */
		while ((ev = smtp_session_event(s->sm)) != NULL) {
			if (!sess_event(s, ev))
				break;
			progress = true;
		}
		/* replies to the client */
		if (s->tc) {
			size_t len;
			const uint8_t *out = smtp_session_output(s->sm, &len);

			if (len) {
				ssize_t w = tcp_send(s->tc, out, len);

				if (w > 0) {
					smtp_session_output_consume(s->sm,
								    (size_t)w);
					progress = true;
				}
			}
		}
		if (!progress)
			break;
	}
	if (s->tc && !s->closing) {
		size_t len;

		(void)smtp_session_output(s->sm, &len);
		if (len == 0 && (smtp_session_closed(s->sm) || s->peer_eof)) {
			s->closing = true;
			tcp_close(s->tc);
		}
	}
}

/* ------------------------------------------------------------ session life */

static void sess_release(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	const struct smtp_stats *st = smtp_session_stats(s->sm);

	if (s->wait == W_DATA_END && s->md_job >= 0) {
		/* the Maildir commit runs on; its completion is dropped */
		s->md_job = -1;
	}
	sess_txn_abort(s);
	if (s->be) {
		struct gw_be *b = s->be;

		s->be = NULL;
		b->owner = NULL;
		if (!b->dead && !b->closing) {
			if (relay_client_quit(b->rc) < 0)
				be_close(b, false);
			be_dirty(b);
		}
	}
	segs_free(&s->in);
	gw_log(gc, "event=session sid=%s client=%s:%u listener=%s "
		   "commands=%u messages=%u errors=%u pregreet=%u ms=%llu",
	       s->sid, s->client, s->client_port, s->lst->cl->name,
	       st->commands, st->messages, st->errors, st->pregreet_bytes,
	       (unsigned long long)((gc->now_us - s->t_start_us) / 1000));
	s->sm = NULL;
	s->used = false;
	s->gen++;
	gc->sess_next_free[s->idx] = gc->free_sess;
	gc->free_sess = s->idx;
	gc->stats.sessions_live--;
}

static void *cl_accepted(void *arg, struct tcp_conn *c)
{
	const struct gw_ltag *tag = arg;
	const struct gw_listener *l = &tag->l;
	struct gw_core *gc = tag->gc;
	struct gw_sess *s;
	rte_be32_t la;
	uint16_t lp;
	uint32_t i;

	if (gc->free_sess == NO_FREE) {
		gc->stats.sessions_refused++;
		return NULL;
	}
	i = gc->free_sess;
	gc->free_sess = gc->sess_next_free[i];
	s = &gc->sess[i];
	{
		uint32_t gen = s->gen;

		memset(s, 0, sizeof(*s));
		s->gen = gen;
	}
	s->used = true;
	s->gc = gc;
	s->idx = i;
	s->lst = l;
	s->tc = c;
	s->t_start_us = gc->now_us;
	s->md_job = -1;
	s->pool = -1;
	tcp_conn_addrs(c, &la, &lp, &s->client_ip, &s->client_port);
	inet_ntop(AF_INET, &s->client_ip, s->client, sizeof(s->client));
	/* start time + core + sequence: unique across restarts */
	snprintf(s->sid, sizeof(s->sid), "%08x%02x%06x", gc->sid_epoch,
		 gc->core & 0xff, gc->sid_seq++ & 0xffffff);
	s->sm = smtp_session_init(gc->smtp_mem + (size_t)i * gc->gw->smtp_mem,
				  gc->gw->smtp_mem, &l->smtp, now_ms(gc));
	if (!s->sm) {
		s->used = false;
		gc->sess_next_free[i] = gc->free_sess;
		gc->free_sess = i;
		gc->stats.sessions_refused++;
		return NULL;
	}
	gc->stats.sessions++;
	gc->stats.sessions_live++;
	gw_log(gc, "event=connect sid=%s client=%s:%u listener=%s", s->sid,
	       s->client, s->client_port, l->cl->name);
	sess_dirty(s);
	/* run() is not called here: accepted() is inside the stack's input
	 * path before the conn is fully set up; the poll runs it. */
	return s;
}

static void cl_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	sess_dirty(ctx);
	run(((struct gw_sess *)ctx)->gc);
}

static void cl_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gw_sess *s = ctx;

	RTE_SET_USED(c);
	s->peer_eof = true;
	sess_dirty(s);
	run(s->gc);
}

static void cl_gone(struct gw_sess *s)
{
	s->tc = NULL;
	s->dead = true;
	sess_dirty(s);
	run(s->gc);
}

static void cl_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	cl_gone(ctx);
}

static void cl_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	RTE_SET_USED(err);
	cl_gone(ctx);
}

static const struct tcp_callbacks cl_cb = {
	.accepted = cl_accepted,
	.readable = cl_readable,
	.writable = cl_readable,
	.peer_closed = cl_peer_closed,
	.closed = cl_closed,
	.reset = cl_reset,
};

/* ------------------------------------------------------------ run loop */

/* Pump every dirty session and backend until nothing is dirty. Objects
 * whose TCP connection is gone are released here, outside any pump. */
static void run(struct gw_core *gc)
{
	if (gc->running)
		return;
	gc->running = true;
	for (int guard = 0; guard < 1024; guard++) {
		struct gw_sess *s = gc->dirty_s;
		struct gw_be *b = gc->dirty_b;

		if (!s && !b)
			break;
		gc->dirty_s = NULL;
		gc->dirty_b = NULL;
		/* Take the successor before pumping: a pump may dirty its
		 * own object again, which rewrites next_dirty. */
		for (struct gw_be *nb; b; b = nb) {
			nb = b->next_dirty;
			b->dirty = false;
			if (b->state == BE_FREE)
				continue;
			if (b->dead) {
				/* a dead connection still in the idle cache
				 * stays allocated until the cache lets go */
				if (b->idle && !idle_remove(b))
					continue;
				if (b->owner) {
					struct gw_sess *o = b->owner;

					b->owner = NULL;
					if (o->be == b)
						sess_backend_failed(
							o, "Backend connection "
							   "lost, try again "
							   "later");
				}
				be_release(b);
				continue;
			}
			be_pump(b);
		}
		for (struct gw_sess *ns; s; s = ns) {
			ns = s->next_dirty;
			s->dirty = false;
			if (!s->used)
				continue;
			if (s->dead) {
				sess_release(s);
				continue;
			}
			sess_pump(s);
		}
	}
	gc->running = false;
}

/* ------------------------------------------------------------ poll */

static void maildir_done(struct gw_core *gc)
{
	struct maildir_completion comp[16];
	unsigned n;

	while ((n = maildir_poll(gc->md, comp, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			uint32_t idx = (uint32_t)(comp[i].tag & 0xffffffff);
			uint32_t gen = (uint32_t)(comp[i].tag >> 32);
			struct gw_sess *s;

			gc->md_inflight--;
			if (comp[i].status == 0)
				gc->stats.maildir_delivered++;
			else if (comp[i].status != -ECANCELED)
				gc->stats.maildir_failed++;
			if (idx >= gc->gw->max_sessions)
				continue;
			s = &gc->sess[idx];
			if (!s->used || s->gen != gen || s->md_job != comp[i].job ||
			    s->wait != W_DATA_END)
				continue;
			s->wait = W_NONE;
			s->md_job = -1;
			if (comp[i].status == 0) {
				char text[128];

				snprintf(text, sizeof(text),
					 "Ok: queued as %s", s->sid);
				txn_done(s, 250, NULL, "2.0.0", text);
				verdict(s, SMTP_V_ACCEPT, 250, "2.0.0", text);
			} else {
				txn_done(s, 451, NULL, "4.3.0",
					 "Local delivery failed");
				tempfail(s, "4.3.0", "Local delivery failed, "
						     "try again later");
			}
			sess_txn_reset(s);
		}
	}
}

static void health_checks(struct gw_core *gc)
{
	uint32_t due[16];
	unsigned n = relay_pools_checks_due(gc->pools, now_ms(gc), due, 16);

	for (unsigned i = 0; i < n; i++) {
		struct relay_server_info si;
		struct gw_be *b;

		relay_server_get_info(gc->pools, due[i], &si);
		if (gc->gw->pools[si.pool].maildir)
			continue;
		b = be_open(gc, si.pool, due[i], NULL);
		if (!b) {
			relay_server_check_result(gc->pools, due[i], false,
						  now_ms(gc));
			continue;
		}
		b->probe = true;
		gc->stats.backend_checks++;
	}
}

bool gw_core_poll(struct gw_core *gc, uint64_t now_us)
{
	gc->now_us = now_us;
	if (gc->md)
		maildir_done(gc);
	/* Time-outs and short Maildir appends: a scan every 20 ms. */
	if (now_us - gc->last_scan_us >= 20000) {
		void *exp[16];
		uint32_t srv[16];
		unsigned n;

		gc->last_scan_us = now_us;
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];

			if (!s->used || s->dead)
				continue;
			if (smtp_session_deadline(s->sm) <= now_ms(gc) ||
			    s->md_job >= 0)
				sess_dirty(s);
		}
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			struct gw_be *b = &gc->be[i];

			if (b->state == BE_UP && !b->dead &&
			    relay_client_deadline(b->rc) <= now_ms(gc))
				be_dirty(b);
			else if (b->state == BE_CONNECTING &&
				 relay_client_deadline(b->rc) <= now_ms(gc)) {
				/* connect time-out: drop the TCP attempt */
				be_close(b, true);
				if (b->owner) {
					struct gw_sess *o = b->owner;

					b->owner = NULL;
					if (o->be == b)
						sess_backend_failed(
							o, "Backend connect "
							   "timed out, try "
							   "again later");
				}
				relay_server_report(gc->pools, b->srv, false,
						    now_ms(gc));
				gc->stats.backend_errors++;
			}
		}
		while ((n = relay_pools_idle_expire(gc->pools, now_ms(gc), exp,
						    srv, 16)) > 0) {
			for (unsigned k = 0; k < n; k++) {
				struct gw_be *b = exp[k];

				b->idle = false;
				if (b->dead) {
					be_release(b);
					continue;
				}
				if (relay_client_quit(b->rc) < 0)
					be_close(b, false);
				be_dirty(b);
			}
			if (n < 16)
				break;
		}
		health_checks(gc);
	}
	run(gc);
	return gc->md_inflight > 0;
}

/* ------------------------------------------------------------ setup */

const struct gw_stats *gw_core_stats(const struct gw_core *gc)
{
	return &gc->stats;
}

static uint32_t ms_or(uint32_t v, uint32_t dflt)
{
	return v ? v : dflt;
}

int gw_global_init(struct gw_global *gw, const struct mxg_config *cfg,
		   uint32_t max_sessions, char *err, size_t errlen)
{
	uint32_t n_srv = 0, n_dom = 0, si = 0, di = 0;
	size_t smem = 0, rmem = 0;

	memset(gw, 0, sizeof(*gw));
	gw->cfg = cfg;
	gw->max_sessions = max_sessions;
	gw->max_backends = max_sessions / 2 + 16;
	gw->maildir_path = cfg->maildir.path;
	gw->our_ip = rte_cpu_to_be_32(cfg->stack.address);
	gw->listeners = calloc(cfg->n_listeners, sizeof(*gw->listeners));
	gw->pools = calloc(cfg->n_pools, sizeof(*gw->pools));
	gw->rp = calloc(cfg->n_pools, sizeof(*gw->rp));
	if (!gw->listeners || !gw->pools || !gw->rp)
		goto nomem;
	gw->n_listeners = cfg->n_listeners;
	gw->n_pools = cfg->n_pools;

	for (uint32_t i = 0; i < cfg->n_listeners; i++) {
		const struct ctl_listener *cl = &cfg->listeners[i];
		struct gw_listener *l = &gw->listeners[i];
		struct smtp_config *sc = &l->smtp;
		size_t m;

		l->cl = cl;
		l->port = cl->port;
		smtp_config_defaults(sc);
		if (cl->hostname && cl->hostname[0])
			sc->hostname = cl->hostname;
		if (cl->banner && cl->banner[0])
			sc->banner = cl->banner;
		if (!gw->hostname)
			gw->hostname = sc->hostname;
		sc->max_msg_size = cl->max_message_size;
		sc->max_rcpts = cl->max_recipients;
		sc->max_errors = cl->max_errors;
		sc->bare_eol = cl->bare_lf == CTL_BARE_LF_NORMALIZE
				       ? SMTP_BARE_EOL_NORMALIZE
				       : SMTP_BARE_EOL_REJECT;
		if (cl->pipelining_enforce)
			sc->flags |= SMTP_CFG_SYNC_ENFORCE;
		sc->tmo_greeting_ms = cl->timeouts.greeting_ms;
		sc->tmo_command_ms = cl->timeouts.command_ms;
		sc->tmo_mail_ms = cl->timeouts.mail_ms;
		sc->tmo_rcpt_ms = cl->timeouts.rcpt_ms;
		sc->tmo_data_init_ms = cl->timeouts.data_init_ms;
		sc->tmo_data_block_ms = cl->timeouts.data_block_ms;
		sc->tmo_data_term_ms = cl->timeouts.data_term_ms;
		m = smtp_session_memsize(sc);
		if (m == 0) {
			snprintf(err, errlen, "listener %s: invalid SMTP "
					      "settings", cl->name);
			return -EINVAL;
		}
		smem = RTE_MAX(smem, m);
	}
	gw->smtp_mem = RTE_ALIGN_CEIL(smem, 64);

	for (uint32_t p = 0; p < cfg->n_pools; p++) {
		n_srv += cfg->pools[p].n_servers;
		n_dom += cfg->pools[p].n_domains;
	}
	/* Maildir pools get one placeholder server (relay_pools wants >= 1;
	 * it is never selected: the glue never asks a Maildir pool). */
	gw->rs = calloc(n_srv + cfg->n_pools, sizeof(*gw->rs));
	gw->domain_ptrs = calloc(n_dom + 1, sizeof(*gw->domain_ptrs));
	if (!gw->rs || !gw->domain_ptrs)
		goto nomem;
	for (uint32_t p = 0; p < cfg->n_pools; p++) {
		const struct ctl_pool *cp = &cfg->pools[p];
		struct gw_pool *gp = &gw->pools[p];
		struct relay_pool_config *rp = &gw->rp[p];
		struct relay_client_config *rc = &gp->rc;
		size_t m;

		gp->cp = cp;
		gp->maildir = cp->type == CTL_POOL_MAILDIR;
		rp->name = cp->name;
		rp->domains = gw->domain_ptrs + di;
		rp->n_domains = cp->n_domains;
		for (uint32_t d = 0; d < cp->n_domains; d++)
			gw->domain_ptrs[di++] = cp->domains[d];
		rp->servers = gw->rs + si;
		if (gp->maildir || cp->n_servers == 0) {
			gw->rs[si].addr = 0x7f000001;
			gw->rs[si].port = 1;
			gw->rs[si].weight = 1;
			si++;
			rp->n_servers = 1;
		} else {
			for (uint32_t k = 0; k < cp->n_servers; k++, si++) {
				gw->rs[si].addr = cp->servers[k].address;
				gw->rs[si].port = cp->servers[k].port;
				gw->rs[si].weight = cp->servers[k].weight;
			}
			rp->n_servers = cp->n_servers;
		}
		rp->max_conns = cp->max_conns;
		rp->max_conns_per_server = cp->max_conns_per_server;
		rp->idle_max = cp->idle_max;
		rp->idle_max_age_ms = cp->idle_max_age_ms;
		rp->fail_after = cp->health_fail_after;
		rp->retry_ms = cp->health_retry_ms;
		rp->check_interval_ms = gp->maildir ? 0 : cp->health_interval_ms;

		relay_client_config_defaults(rc);
		rc->helo_name = cp->helo_name && cp->helo_name[0]
					? cp->helo_name
					: (gw->hostname ? gw->hostname
							: "localhost");
		rc->client_info = cp->client_info == CTL_CINFO_XCLIENT
					  ? RELAY_CINFO_XCLIENT
				  : cp->client_info == CTL_CINFO_PROXY
					  ? RELAY_CINFO_PROXY
					  : RELAY_CINFO_NONE;
		rc->tmo_connect_ms = ms_or(cp->timeouts.connect_ms,
					   rc->tmo_connect_ms);
		rc->tmo_greeting_ms = ms_or(cp->timeouts.greeting_ms,
					    rc->tmo_greeting_ms);
		rc->tmo_ehlo_ms = ms_or(cp->timeouts.ehlo_ms, rc->tmo_ehlo_ms);
		rc->tmo_xclient_ms = ms_or(cp->timeouts.xclient_ms,
					   rc->tmo_xclient_ms);
		rc->tmo_mail_ms = ms_or(cp->timeouts.mail_ms, rc->tmo_mail_ms);
		rc->tmo_rcpt_ms = ms_or(cp->timeouts.rcpt_ms, rc->tmo_rcpt_ms);
		rc->tmo_data_ms = ms_or(cp->timeouts.data_ms, rc->tmo_data_ms);
		rc->tmo_data_block_ms = ms_or(cp->timeouts.data_block_ms,
					      rc->tmo_data_block_ms);
		rc->tmo_data_end_ms = ms_or(cp->timeouts.data_end_ms,
					    rc->tmo_data_end_ms);
		rc->tmo_rset_ms = ms_or(cp->timeouts.rset_ms, rc->tmo_rset_ms);
		rc->tmo_quit_ms = ms_or(cp->timeouts.quit_ms, rc->tmo_quit_ms);
		m = relay_client_memsize(rc);
		rmem = RTE_MAX(rmem, m);
	}
	gw->relay_mem = RTE_ALIGN_CEIL(rmem, 64);
	gw->rpc.pools = gw->rp;
	gw->rpc.n_pools = cfg->n_pools;
	gw->rpc.default_pool = cfg->default_pool;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	gw_global_fini(gw);
	return -ENOMEM;
}

void gw_global_fini(struct gw_global *gw)
{
	free(gw->listeners);
	free(gw->pools);
	free(gw->rp);
	free(gw->rs);
	free(gw->domain_ptrs);
	memset(gw, 0, sizeof(*gw));
}

struct gw_core *gw_core_create(const struct gw_global *gw, uint16_t core,
			       struct net_stack *st, struct rte_ring *log,
			       struct rte_mempool *log_pool, char *err,
			       size_t errlen)
{
	struct gw_core *gc = calloc(1, sizeof(*gc));
	int e = 0;
	bool need_md = false;

	if (!gc)
		goto nomem;
	gc->gw = gw;
	gc->core = core;
	gc->sid_epoch = (uint32_t)time(NULL);
	gc->st = st;
	gc->log = log;
	gc->log_pool = log_pool;
	gc->sess = calloc(gw->max_sessions, sizeof(*gc->sess));
	gc->sess_next_free = calloc(gw->max_sessions, sizeof(uint32_t));
	gc->smtp_mem = aligned_alloc(64, gw->smtp_mem * gw->max_sessions);
	gc->be = calloc(gw->max_backends, sizeof(*gc->be));
	gc->relay_mem = aligned_alloc(64, gw->relay_mem * gw->max_backends);
	if (!gc->sess || !gc->sess_next_free || !gc->smtp_mem || !gc->be ||
	    !gc->relay_mem)
		goto nomem;
	for (uint32_t i = 0; i < gw->max_sessions; i++)
		gc->sess_next_free[i] = i + 1 < gw->max_sessions ? i + 1
								 : NO_FREE;
	gc->free_sess = 0;

	gc->pools = relay_pools_create(&gw->rpc, &e);
	if (!gc->pools) {
		snprintf(err, errlen, "next-hop pools: %s", strerror(-e));
		goto fail;
	}
	for (uint32_t p = 0; p < gw->n_pools; p++)
		need_md |= gw->pools[p].maildir;
	if (need_md) {
		struct maildir_config mc;

		maildir_config_defaults(&mc);
		mc.path = gw->maildir_path;
		mc.hostname = gw->hostname;
		mc.instance = core;
		if (gw->cfg->maildir.workers)
			mc.workers = gw->cfg->maildir.workers;
		if (gw->cfg->maildir.max_jobs)
			mc.max_jobs = gw->cfg->maildir.max_jobs;
		gc->md = maildir_create(&mc, &e);
		if (!gc->md) {
			snprintf(err, errlen, "maildir %s: %s", mc.path,
				 strerror(-e));
			goto fail;
		}
	}
	gc->tags = calloc(gw->n_listeners, sizeof(*gc->tags));
	if (!gc->tags)
		goto nomem;
	for (uint32_t i = 0; i < gw->n_listeners; i++) {
		struct gw_ltag *t = &gc->tags[i];
		int r;

		t->l = gw->listeners[i];
		t->gc = gc;
		r = tcp_listen(st, t->l.port, &cl_cb, t);
		if (r < 0) {
			snprintf(err, errlen, "listener %s: port %u: %s",
				 t->l.cl->name, t->l.port, strerror(-r));
			goto fail;
		}
	}
	return gc;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	if (gc)
		gw_core_destroy(gc);
	return NULL;
}

void gw_core_destroy(struct gw_core *gc)
{
	if (!gc)
		return;
	if (gc->sess)
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];

			if (s->used)
				segs_free(&s->in);
		}
	if (gc->be)
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			struct gw_be *b = &gc->be[i];

			if (b->state != BE_FREE)
				segs_free(&b->in);
		}
	if (gc->md)
		maildir_destroy(gc->md);
	if (gc->pools)
		relay_pools_destroy(gc->pools);
	free(gc->sess);
	free(gc->sess_next_free);
	free(gc->smtp_mem);
	free(gc->be);
	free(gc->relay_mem);
	free(gc->tags);
	free(gc);
}
