/*
 * gen.c - mxgate-bench's SMTP load generator on the per-core TCP API
 * (dataplane/net/tcp.h), driving one sans-I/O smtpb_client per session.
 *
 * Closed loop keeps conf.sessions sessions in flight; open loop starts
 * sessions at conf.rate per second on a fixed schedule and measures the
 * greeting latency from the scheduled time, so a slow server shows up in
 * the latencies instead of slowing the arrivals (no coordinated omission).
 *
 * A server that stalls (no progress for step_timeout_ms), resets, closes
 * early or talks nonsense ends the session, and the event is counted by
 * the step the session was waiting on: the generator never hangs.
 *
 * STARTTLS (conf.smtp.starttls): after the server's 220 to STARTTLS the
 * session gets a client tls_session (tls/, OpenSSL over memory BIOs);
 * ciphertext from TCP is fed to it, its records go to TCP only as far as
 * the send window takes them (tcp_send_space), and the SMTP client sees
 * only plaintext. The handshake crypto runs inline on this lcore (a bench
 * tool: mxgate itself posts it to workers). The starttls step's latency
 * runs from the STARTTLS command to the handshake's end; a failed
 * handshake is counted by reason and the session aborted; a stalled one
 * times out like any step. --tls-resume keeps the ticket of the last
 * session that ended with QUIT, per source address, and offers it in
 * the next handshake from that address.
 *
 * Ownership: the struct gen and its sessions belong to the lcore polling
 * the stack; callbacks run from net_stack_input/poll on that lcore. All
 * memory is allocated in gen_create.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"

/* ----------------------------------------------------------- histogram */

void hist_add(struct hist *h, uint64_t us)
{
	unsigned b;

	if (us < HIST_SUB) {
		b = (unsigned)us;
	} else {
		unsigned e = 63 - (unsigned)__builtin_clzll(us); /* >= 4 */
		unsigned sub = (unsigned)(us >> (e - 4)) & (HIST_SUB - 1);

		b = (e - 3) * HIST_SUB + sub;
		if (b >= HIST_BUCKETS)
			b = HIST_BUCKETS - 1;
	}
	h->n[b]++;
	h->count++;
	if (us > h->max)
		h->max = us;
}

/* Upper edge of bucket b, microseconds. */
static uint64_t bucket_top(unsigned b)
{
	unsigned e, sub;

	if (b < HIST_SUB)
		return b;
	e = b / HIST_SUB + 3;
	sub = b % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - 4)) - 1;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)ceil(q * (double)h->count);
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= want) {
			uint64_t t = bucket_top(b);

			return t < h->max ? t : h->max;
		}
	}
	return h->max;
}

/* ------------------------------------------------------------ sessions */

struct gsess {
	struct gen *g;
	struct tcp_conn *c; /* NULL: slot free */
	struct smtpb_client cl;
	struct tls_session *tls; /* after STARTTLS's 220 */
	uint64_t tls_t0;	 /* STARTTLS sent (latency of the step) */
	uint32_t msgs_left;
	uint64_t progress_us; /* last reply or bytes sent */
	bool quitting;	      /* tcp_close called */
	uint16_t src;	      /* index of the source address (stack) */
	uint32_t next_free;
};

struct gen {
	struct gen_conf conf;
	struct net_stack *st[GEN_MAX_SRC]; /* one per source address */
	uint32_t n_st;
	uint32_t next_src; /* round robin over st[] */
	uint64_t primed_mask; /* source addresses that connected once */
	uint64_t priming_mask; /* ... and those with a first SYN out */
	struct gsess *s;
	uint32_t free_head, live;
	uint64_t rng;
	uint64_t seq;	   /* messages handed out */
	uint64_t reserved; /* promised to open sessions, not handed out */
	uint64_t t_start, t_w0, t_w1; /* run start, window start/end */
	bool stopping, finished;
	uint64_t stop_us;
	uint64_t arrivals; /* open loop: sessions started */
	bool primed;	   /* every source connected once: ARP done */
	uint64_t last_scan;
	uint32_t session_ids;
	struct gen_counts tot, win;
	struct tls_ticket *ticket[GEN_MAX_SRC]; /* --tls-resume */
	char buf[65536];
	char pbuf[16384]; /* plaintext out of TLS */
};

/* TLS input is fed in pieces no larger than this, so the session's
 * input queue stays under TLS_SESSION_MAX_BUFFERED. */
#define TLS_FEED_CHUNK 16384

#define NONE UINT32_MAX

static uint64_t all_src(const struct gen *g)
{
	return g->n_st >= 64 ? UINT64_MAX : (1ULL << g->n_st) - 1;
}

static bool in_window(const struct gen *g, uint64_t now)
{
	return now >= g->t_w0 && (!g->t_w1 || now < g->t_w1);
}

/* Count into both sets (the window only when inside it). */
#define COUNT(g, now, expr)                                                    \
	do {                                                                   \
		(g)->tot.expr;                                                 \
		if (in_window((g), (now)))                                     \
			(g)->win.expr;                                         \
	} while (0)

static uint32_t draw(struct gen *g, uint32_t lo, uint32_t hi)
{
	if (hi <= lo)
		return lo;
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return lo + (uint32_t)(g->rng % ((uint64_t)hi - lo + 1));
}

static void slot_free(struct gsess *s)
{
	struct gen *g = s->g;

	/* messages promised to a session that ended early go back */
	g->reserved -= s->msgs_left;
	s->msgs_left = 0;
	s->c = NULL;
	tls_session_free(s->tls);
	s->tls = NULL;
	g->priming_mask &= ~(1ULL << s->src);
	s->next_free = g->free_head;
	g->free_head = (uint32_t)(s - g->s);
	g->live--;
}

static void give_msg(struct gsess *s)
{
	struct gen *g = s->g;
	struct smtpb_msg m;

	if (!smtpb_client_wants_msg(&s->cl))
		return;
	if (g->stopping || !s->msgs_left ||
	    (g->conf.count && g->seq >= g->conf.count)) {
		smtpb_client_next(&s->cl, NULL);
		return;
	}
	m.seq = g->seq++;
	m.rcpts = draw(g, g->conf.rcpts_lo, g->conf.rcpts_hi);
	m.size = draw(g, g->conf.size_lo, g->conf.size_hi);
	s->msgs_left--;
	g->reserved--; /* promised, now handed out (seq counts it) */
	smtpb_client_next(&s->cl, &m);
	COUNT(g, clock_us(), msgs_sent++);
}

/* TLS records waiting in the session to TCP, as far as the window
 * allows. False when some are left (writable() follows). */
static bool tls_flush(struct gsess *s)
{
	struct gen *g = s->g;

	while (tls_session_output_len(s->tls)) {
		size_t room = tcp_send_space(s->c), k;
		ssize_t w;

		if (room > sizeof(g->buf))
			room = sizeof(g->buf);
		if (!room)
			return false;
		k = tls_session_take_output(s->tls, g->buf, room);
		w = tcp_send(s->c, g->buf, k);
		if (w < (ssize_t)k) /* the space said it fits: lost bytes */
			return false;
		s->progress_us = clock_us();
	}
	return true;
}

/* The client's plaintext through TLS: only while no records wait, and
 * no more at once than the window takes, so nothing piles up here. */
static void pump_tls(struct gsess *s)
{
	if (tls_session_state(s->tls) != TLS_ST_OPEN) {
		tls_flush(s);
		return;
	}
	for (;;) {
		const char *p;
		size_t n, room;

		if (!tls_flush(s))
			return;
		n = smtpb_client_peek(&s->cl, &p);
		room = tcp_send_space(s->c);
		if (!n || room < 64)
			return;
		if (n > room - 64)
			n = room - 64; /* record overhead */
		if (n > 16384)
			n = 16384;
		if (tls_session_write(s->tls, p, n) < 0)
			return;
		smtpb_client_sent(&s->cl, n, clock_us());
	}
}

/* Send what the client has queued, as far as the window allows. */
static void pump(struct gsess *s)
{
	if (s->tls) {
		pump_tls(s);
		return;
	}
	for (;;) {
		const char *p;
		size_t n = smtpb_client_peek(&s->cl, &p);
		ssize_t w;

		if (!n)
			return;
		w = tcp_send(s->c, p, n);
		if (w <= 0)
			return;
		s->progress_us = clock_us();
		smtpb_client_sent(&s->cl, (size_t)w, s->progress_us);
		if ((size_t)w < n)
			return; /* writable() follows */
	}
}

static void abort_session(struct gsess *s)
{
	tcp_abort(s->c);
	slot_free(s);
}

static void on_event(struct gsess *s, const struct smtpb_event *e, uint64_t now)
{
	struct gen *g = s->g;
	int cls = e->code / 100;

	COUNT(g, now, replies[e->step][cls]++);
	if (e->step == SMTPB_STARTTLS && e->code == 220) {
		s->tls_t0 = e->sent_us; /* the step ends with the handshake */
		return;
	}
	if (e->sent_us && now >= e->sent_us) {
		hist_add(&g->tot.lat[e->step], now - e->sent_us);
		if (in_window(g, now))
			hist_add(&g->win.lat[e->step], now - e->sent_us);
	}
	if (e->msg_done) {
		if (e->msg_accepted) {
			COUNT(g, now, msgs_accepted++);
			COUNT(g, now, rcpts_ok += e->msg_rcpts_ok);
			COUNT(g, now, bytes += e->msg_bytes);
		} else {
			COUNT(g, now, msgs_refused++);
		}
	}
}

/* Plaintext replies in (from TCP, or out of TLS). False when the
 * session was aborted. */
static bool feed_plain(struct gsess *s, const char *buf, size_t n,
		       uint64_t now)
{
	struct gen *g = s->g;
	size_t off = 0;

	while (off < n) {
		struct smtpb_event ev[16];
		size_t used;
		int k = smtpb_client_input(&s->cl, buf + off, n - off, &used,
					   ev, 16);

		off += used;
		if (k < 0) {
			COUNT(g, now, protocol_errors++);
			abort_session(s);
			return false;
		}
		for (int i = 0; i < k; i++)
			on_event(s, &ev[i], now);
		if (smtpb_client_wants_tls(&s->cl))
			break; /* bytes after the 220 (none from a sane
				* server: it waits for our ClientHello) are
				* discarded, as RFC 3207 5 asks */
		give_msg(s);
		if (!used && !k)
			break;
	}
	return true;
}

static void tls_failed(struct gsess *s, uint64_t now)
{
	struct gen *g = s->g;
	enum tls_fail r = tls_session_fail_reason(s->tls);

	COUNT(g, now, tls_failed++);
	COUNT(g, now, tls_fail[r < TLS_FAIL_COUNT ? r : TLS_FAIL_INTERNAL]++);
	tls_flush(s); /* the alert, if it fits */
	abort_session(s);
}

/* The 220 to STARTTLS was read: ClientHello out. */
static bool tls_start(struct gsess *s, uint64_t now)
{
	struct gen *g = s->g;

	s->tls = tls_session_new_client(g->conf.tls, g->conf.tls_name);
	if (!s->tls) {
		COUNT(g, now, tls_failed++);
		COUNT(g, now, tls_fail[TLS_FAIL_NOMEM]++);
		abort_session(s);
		return false;
	}
	if (g->conf.tls_resume && g->ticket[s->src])
		tls_session_set_ticket(s->tls, g->ticket[s->src]);
	if (tls_session_handshake(s->tls) == TLS_ST_FAILED) {
		tls_failed(s, now);
		return false;
	}
	tls_flush(s);
	return true;
}

/* Ciphertext in: the handshake, then plaintext to the SMTP client. */
static bool feed_tls(struct gsess *s, const char *buf, size_t n, uint64_t now)
{
	struct gen *g = s->g;
	ssize_t r;

	if (tls_session_feed(s->tls, buf, n) < 0) {
		tls_failed(s, now);
		return false;
	}
	if (tls_session_state(s->tls) == TLS_ST_HANDSHAKE) {
		enum tls_state st = tls_session_handshake(s->tls);

		if (st == TLS_ST_FAILED) {
			tls_failed(s, now);
			return false;
		}
		if (st == TLS_ST_HANDSHAKE) {
			tls_flush(s);
			return true;
		}
		COUNT(g, now, tls_ok++);
		if (g->conf.tls_resume) {
			struct tls_session_info in;

			if (tls_session_info(s->tls, &in) == 0 && in.resumed)
				COUNT(g, now, tls_resumed++);
		}
		if (s->tls_t0 && now >= s->tls_t0) {
			hist_add(&g->tot.lat[SMTPB_STARTTLS], now - s->tls_t0);
			if (in_window(g, now))
				hist_add(&g->win.lat[SMTPB_STARTTLS],
					 now - s->tls_t0);
		}
		smtpb_client_tls_done(&s->cl);
	}
	while ((r = tls_session_read(s->tls, g->pbuf, sizeof(g->pbuf))) > 0)
		if (!feed_plain(s, g->pbuf, (size_t)r, now))
			return false;
	if (r < 0 && r != -EPIPE) {
		tls_failed(s, now);
		return false;
	}
	return true;
}

static void cb_readable(void *ctx, struct tcp_conn *c)
{
	struct gsess *s = ctx;
	struct gen *g = s->g;
	uint64_t now = clock_us();
	size_t n;

	(void)c;
	while ((n = tcp_recv(s->c, g->buf,
			     s->tls ? TLS_FEED_CHUNK : sizeof(g->buf))) > 0) {
		s->progress_us = now;
		if (s->tls) {
			if (!feed_tls(s, g->buf, n, now))
				return;
			continue;
		}
		if (!feed_plain(s, g->buf, n, now))
			return;
		if (smtpb_client_wants_tls(&s->cl) && !tls_start(s, now))
			return;
	}
	if (s->cl.state == SMTPB_C_DONE && !s->quitting) {
		s->quitting = true;
		COUNT(g, now, sessions_done++);
		if (s->tls && g->conf.tls_resume) {
			struct tls_ticket *t = tls_session_get_ticket(s->tls);

			if (t) {
				tls_ticket_free(g->ticket[s->src]);
				g->ticket[s->src] = t;
			}
		}
		if (s->tls) {
			tls_session_shutdown(s->tls);
			tls_flush(s);
		}
		tcp_close(s->c);
		return;
	}
	pump(s);
}

static void cb_connected(void *ctx, struct tcp_conn *c)
{
	struct gsess *s = ctx;
	struct gen *g = s->g;

	(void)c;
	s->progress_us = clock_us();
	g->primed_mask |= 1ULL << s->src;
	if (!g->primed && g->primed_mask == all_src(g)) {
		/* the open-loop schedule starts now */
		g->primed = true;
		g->t_start = s->progress_us;
		g->arrivals = 1;
	}
}

static void cb_writable(void *ctx, struct tcp_conn *c)
{
	(void)c;
	pump(ctx);
}

static void cb_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gsess *s = ctx;

	(void)c;
	if (s->quitting)
		return;
	if (s->cl.state != SMTPB_C_DONE)
		COUNT(s->g, clock_us(), closed[smtpb_client_waiting(&s->cl)]++);
	s->quitting = true;
	tcp_close(s->c);
}

static void cb_closed(void *ctx, struct tcp_conn *c)
{
	(void)c;
	slot_free(ctx);
}

static void cb_reset(void *ctx, struct tcp_conn *c, int err)
{
	struct gsess *s = ctx;
	struct gen *g = s->g;
	uint64_t now = clock_us();

	(void)c;
	if (!s->quitting) {
		if (err == ECONNREFUSED)
			COUNT(g, now, refused++);
		else
			COUNT(g, now, resets[smtpb_client_waiting(&s->cl)]++);
	}
	slot_free(s);
}

static const struct tcp_callbacks gen_cb = {
	.connected = cb_connected,
	.readable = cb_readable,
	.writable = cb_writable,
	.peer_closed = cb_peer_closed,
	.closed = cb_closed,
	.reset = cb_reset,
};

/* Sessions go round robin over the source addresses, so a server that
 * steers by client address (mxgate, DESIGN 2) sees them spread. */
static uint32_t next_src(struct gen *g)
{
	uint32_t k = g->next_src;

	g->next_src = k + 1 < g->n_st ? k + 1 : 0;
	return k;
}

/* Open a session from source address src (an index into st[]). */
static bool open_session(struct gen *g, uint32_t src, uint64_t sched_us,
			 uint64_t now)
{
	struct gsess *s;
	int rc;

	uint32_t promise = g->conf.msgs_per_conn;

	if (g->free_head == NONE)
		return false;
	/* --count: a session opens only for messages nobody holds yet, so
	 * none opens just to QUIT */
	if (g->conf.count) {
		uint64_t held = g->seq + g->reserved;

		if (held >= g->conf.count)
			return false;
		if (promise > g->conf.count - held)
			promise = (uint32_t)(g->conf.count - held);
	}
	s = &g->s[g->free_head];
	g->free_head = s->next_free;
	g->live++;
	s->quitting = false;
	s->msgs_left = promise;
	g->reserved += promise;
	s->progress_us = now;
	s->src = (uint16_t)src;
	smtpb_client_init(&s->cl, &g->conf.smtp, g->session_ids++, sched_us);
	rc = tcp_connect(g->st[src], g->conf.ip, g->conf.port, &gen_cb, s,
			 &s->c);
	if (rc < 0) {
		COUNT(g, now, no_conn++);
		slot_free(s);
		return false;
	}
	COUNT(g, now, sessions_started++);
	return true;
}

struct gen *gen_create(const struct gen_conf *conf, struct net_stack **st,
		       uint32_t n_st, uint64_t now_us)
{
	struct gen *g;

	if (n_st < 1 || n_st > GEN_MAX_SRC)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->conf = *conf;
	/* more addresses than sessions: the extra ones stay unused (each
	 * in use is primed by a session of its own, below) */
	if (n_st > conf->sessions)
		n_st = conf->sessions;
	memcpy(g->st, st, n_st * sizeof(*st));
	g->n_st = n_st;
	g->s = calloc(conf->sessions, sizeof(*g->s));
	if (!g->s) {
		free(g);
		return NULL;
	}
	for (uint32_t i = 0; i < conf->sessions; i++) {
		g->s[i].g = g;
		g->s[i].next_free = i + 1 < conf->sessions ? i + 1 : NONE;
	}
	g->free_head = 0;
	g->rng = conf->smtp.nonce | 1;
	g->t_start = now_us;
	g->t_w0 = now_us + (uint64_t)(conf->warmup_s * 1e6);
	return g;
}

bool gen_poll(struct gen *g, uint64_t now)
{
	if (g->finished)
		return false;
	/* The end: by duration, or once every message was handed out. */
	if (!g->stopping &&
	    ((g->conf.duration_s > 0 &&
	      now >= g->t_w0 + (uint64_t)(g->conf.duration_s * 1e6)) ||
	     (g->conf.count && g->seq >= g->conf.count))) {
		g->stopping = true;
		g->stop_us = now;
		/* by duration the window ends now; by count, when the
		 * last message is answered */
		if (!g->conf.count && !g->t_w1)
			g->t_w1 = now > g->t_w0 ? now : g->t_w0 + 1;
	}
	if (!g->stopping && !g->primed) {
		/* One session per source address first: its SYN waits for
		 * ARP (each stack queues one frame per unresolved next hop);
		 * a whole burst of SYNs would be dropped and wait for their
		 * 1 s retransmission. A first session that failed is
		 * retried (its bit is cleared when its slot is freed). */
		for (uint32_t k = 0; k < g->n_st; k++) {
			uint64_t bit = 1ULL << k;

			if ((g->primed_mask | g->priming_mask) & bit)
				continue;
			if (open_session(g, k, now, now))
				g->priming_mask |= bit;
		}
	} else if (!g->stopping) {
		if (g->conf.rate > 0) {
			for (;;) {
				uint64_t t = g->t_start +
					     (uint64_t)((double)g->arrivals *
							1e6 / g->conf.rate);
				if (t > now ||
				    !open_session(g, next_src(g), t, now))
					break;
				if (now - t > 1000)
					COUNT(g, now, late_starts++);
				g->arrivals++;
			}
		} else {
			while (g->live < g->conf.sessions &&
			       open_session(g, next_src(g), now, now))
				;
		}
	}
	/* Stalls: sessions without progress for step_timeout_ms; at the
	 * end, whatever is left after drain_ms. Scanned once a ms. */
	if (now - g->last_scan >= 1000) {
		bool drain_over = g->stopping &&
				  now - g->stop_us > g->conf.drain_ms * 1000ULL;

		g->last_scan = now;
		for (uint32_t i = 0; i < g->conf.sessions; i++) {
			struct gsess *s = &g->s[i];

			if (!s->c)
				continue;
			/* progress_us may be a little after now (stamped
			 * inside callbacks of this iteration) */
			if (drain_over ||
			    (now > s->progress_us &&
			     now - s->progress_us >
				     g->conf.step_timeout_ms * 1000ULL)) {
				if (!s->quitting)
					COUNT(g, now,
					      timeouts[smtpb_client_waiting(
						      &s->cl)]++);
				abort_session(s);
				continue;
			}
			/* a session idle between messages after the stop */
			if (g->stopping && smtpb_client_wants_msg(&s->cl)) {
				give_msg(s);
				pump(s);
			}
		}
	}
	if (g->stopping && g->live == 0) {
		g->finished = true;
		if (!g->t_w1)
			g->t_w1 = now > g->t_w0 ? now : g->t_w0 + 1;
		return false;
	}
	return true;
}

const struct gen_counts *gen_total(const struct gen *g)
{
	return &g->tot;
}

const struct gen_counts *gen_measured(const struct gen *g)
{
	return &g->win;
}

void gen_window(const struct gen *g, uint64_t now_us, uint64_t *t0,
		uint64_t *t1)
{
	*t0 = g->t_w0;
	*t1 = g->t_w1 ? g->t_w1 : now_us;
}

uint32_t gen_live(const struct gen *g)
{
	return g->live;
}

void gen_destroy(struct gen *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; i < g->conf.sessions; i++)
		tls_session_free(g->s[i].tls); /* sessions cut at exit */
	for (uint32_t i = 0; i < GEN_MAX_SRC; i++)
		tls_ticket_free(g->ticket[i]);
	free(g->s);
	free(g);
}
