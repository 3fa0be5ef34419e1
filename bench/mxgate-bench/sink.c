/*
 * sink.c - mxgate-bench's SMTP sink on the per-core TCP API: one sans-I/O
 * smtpb_sink per connection; counts messages, recipients and bytes, and
 * proves delivery: every message's X-Bench digest is checked and its seq
 * marked in a bitmap, so a message that arrives twice, or mangled, is
 * counted (duplicates, digest_bad).
 *
 * STARTTLS (conf.smtp.starttls, a server context in conf.tls): after the
 * 220 to STARTTLS leaves in plaintext, the connection gets a server
 * tls_session (tls/, memory BIOs; handshake inline on this lcore) and
 * the SMTP sink sees only its plaintext, as in gen.c.
 *
 * Ownership: the struct sink belongs to the lcore polling the stack;
 * callbacks run on it. All memory is allocated in sink_create; when every
 * context is taken a new connection is refused (RST) and counted.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"

struct sconn {
	struct sink *k;
	struct tcp_conn *c; /* NULL: free */
	struct smtpb_sink ss;
	struct tls_session *tls;
	bool closing;
	uint32_t next_free;
};

struct sink {
	struct sink_conf conf;
	struct net_stack *st;
	struct sconn *conns;
	uint32_t free_head;
	uint8_t *seen; /* bitmap over seq < max_seq */
	bool delays;   /* some step is delayed: poll pending */
	uint64_t last_scan;
	rte_be32_t peers[SINK_MAX_PEERS];
	uint32_t n_peers;
	struct sink_counts n;
	char buf[65536];
	char pbuf[16384]; /* plaintext out of TLS */
};

#define NONE UINT32_MAX

static void put_conn(struct sconn *sc)
{
	struct sink *k = sc->k;

	sc->c = NULL;
	tls_session_free(sc->tls);
	sc->tls = NULL;
	sc->next_free = k->free_head;
	k->free_head = (uint32_t)(sc - k->conns);
	k->n.live--;
}

/* TLS records to TCP, as far as the window takes them. */
static void flush_tls(struct sconn *sc)
{
	struct sink *k = sc->k;

	while (tls_session_output_len(sc->tls)) {
		size_t room = tcp_send_space(sc->c), n;

		if (room > sizeof(k->buf))
			room = sizeof(k->buf);
		if (!room)
			return;
		n = tls_session_take_output(sc->tls, k->buf, room);
		if (tcp_send(sc->c, k->buf, n) < (ssize_t)n)
			return;
	}
}

static void flush_out(struct sconn *sc, uint64_t now)
{
	const char *p;
	size_t n;

	if (sc->tls) {
		flush_tls(sc);
		if (tls_session_state(sc->tls) != TLS_ST_OPEN ||
		    tls_session_output_len(sc->tls))
			return;
		while ((n = smtpb_sink_peek(&sc->ss, now, &p)) > 0) {
			if (tls_session_write(sc->tls, p, n) < 0)
				return;
			smtpb_sink_sent(&sc->ss, n);
		}
		flush_tls(sc);
		return;
	}
	while ((n = smtpb_sink_peek(&sc->ss, now, &p)) > 0) {
		ssize_t w = tcp_send(sc->c, p, n);

		if (w <= 0)
			return;
		smtpb_sink_sent(&sc->ss, (size_t)w);
	}
}

static void count_msg(struct sink *k, const struct smtpb_sink_msg *m)
{
	k->n.msgs++;
	k->n.rcpts += m->rcpts;
	k->n.bytes += m->bytes;
	if (!m->has_bench) {
		k->n.no_bench++;
		return;
	}
	if (!k->n.nonce)
		k->n.nonce = m->nonce;
	if (m->nonce != k->n.nonce) {
		k->n.foreign_nonce++;
		return;
	}
	if (k->conf.smtp.check_digest && !m->digest_ok)
		k->n.digest_bad++;
	if (m->seq >= k->conf.max_seq) {
		k->n.seq_out_of_range++;
		return;
	}
	if (k->seen[m->seq / 8] & (1u << (m->seq % 8)))
		k->n.duplicates++;
	k->seen[m->seq / 8] |= (uint8_t)(1u << (m->seq % 8));
}

/* Plaintext commands in. False when the connection was given up (or
 * TLS starts: the rest of this input is discarded). */
static bool feed_plain(struct sconn *sc, const char *buf, size_t n,
		       uint64_t now)
{
	struct sink *k = sc->k;
	size_t off = 0;

	while (off < n) {
		enum smtpb_sink_ev ev;
		struct smtpb_sink_msg m;
		size_t used;

		smtpb_sink_input(&sc->ss, buf + off, n - off, &used, now, &ev,
				 &m);
		off += used;
		if (ev == SMTPB_S_MSG) {
			count_msg(k, &m);
		} else if (ev == SMTPB_S_DROP) {
			k->n.drops++;
			tcp_abort(sc->c);
			put_conn(sc);
			return false;
		} else if (ev == SMTPB_S_QUIT) {
			k->n.quits++;
			flush_out(sc, now);
			if (sc->tls) {
				tls_session_shutdown(sc->tls);
				flush_tls(sc);
			}
			sc->closing = true;
			tcp_close(sc->c);
			return false;
		} else if (ev == SMTPB_S_STARTTLS) {
			flush_out(sc, now); /* the 220, in plaintext */
			sc->tls = tls_session_new_server(k->conf.tls);
			if (!sc->tls) {
				k->n.tls_failed++;
				tcp_abort(sc->c);
				put_conn(sc);
			}
			return false;
		}
		if (!used && ev == SMTPB_S_NONE)
			break;
	}
	return true;
}

static void tls_give_up(struct sconn *sc)
{
	sc->k->n.tls_failed++;
	flush_tls(sc); /* the alert, if it fits */
	tcp_abort(sc->c);
	put_conn(sc);
}

/* Ciphertext in. False when the connection is gone or closing. */
static bool feed_tls(struct sconn *sc, const char *buf, size_t n,
		     uint64_t now)
{
	struct sink *k = sc->k;
	ssize_t r;

	if (tls_session_feed(sc->tls, buf, n) < 0) {
		tls_give_up(sc);
		return false;
	}
	if (tls_session_state(sc->tls) == TLS_ST_HANDSHAKE) {
		enum tls_state st = tls_session_handshake(sc->tls);

		if (st == TLS_ST_FAILED) {
			tls_give_up(sc);
			return false;
		}
		flush_tls(sc);
		if (st == TLS_ST_HANDSHAKE)
			return true;
		k->n.tls_handshakes++;
		smtpb_sink_tls_done(&sc->ss);
	}
	while ((r = tls_session_read(sc->tls, k->pbuf, sizeof(k->pbuf))) > 0)
		if (!feed_plain(sc, k->pbuf, (size_t)r, now))
			return false;
	if (r < 0 && r != -EPIPE) {
		tls_give_up(sc);
		return false;
	}
	return true;
}

static void sc_readable(void *ctx, struct tcp_conn *c)
{
	struct sconn *sc = ctx;
	struct sink *k = sc->k;
	uint64_t now = clock_us();
	size_t n;

	(void)c;
	while (!sc->closing &&
	       (n = tcp_recv(sc->c, k->buf, sc->tls ? 16384 : sizeof(k->buf))) >
		       0) {
		bool tls = sc->tls != NULL;

		if (!(tls ? feed_tls(sc, k->buf, n, now)
			  : feed_plain(sc, k->buf, n, now))) {
			if (!sc->c || sc->closing || !sc->tls)
				return;
		}
	}
	flush_out(sc, now);
}

/* Distinct client addresses seen (up to SINK_MAX_PEERS), so a run with
 * --client-ips can show that its sessions came from all of them. */
static void note_peer(struct sink *k, const struct tcp_conn *c)
{
	rte_be32_t la, ra;
	uint16_t lp, rp;

	tcp_conn_addrs(c, &la, &lp, &ra, &rp);
	for (uint32_t i = 0; i < k->n_peers; i++)
		if (k->peers[i] == ra)
			return;
	if (k->n_peers < SINK_MAX_PEERS)
		k->peers[k->n_peers++] = ra;
	k->n.peer_addrs = k->n_peers;
}

static void *sc_accepted(void *arg, struct tcp_conn *c)
{
	struct sink *k = arg;
	struct sconn *sc;
	uint64_t now = clock_us();

	if (k->free_head == NONE) {
		k->n.refused_full++;
		return NULL;
	}
	sc = &k->conns[k->free_head];
	k->free_head = sc->next_free;
	sc->c = c;
	sc->closing = false;
	k->n.live++;
	k->n.conns++;
	note_peer(k, c);
	smtpb_sink_init(&sc->ss, &k->conf.smtp, k->n.conns, now);
	if (smtpb_sink_drop_now(&sc->ss)) {
		k->n.drops++;
		put_conn(sc);
		return NULL; /* the stack answers RST */
	}
	flush_out(sc, now);
	return sc;
}

static void sc_writable(void *ctx, struct tcp_conn *c)
{
	(void)c;
	flush_out(ctx, clock_us());
}

static void sc_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct sconn *sc = ctx;

	(void)c;
	if (!sc->closing) {
		sc->closing = true;
		tcp_close(sc->c);
	}
}

static void sc_closed(void *ctx, struct tcp_conn *c)
{
	(void)c;
	put_conn(ctx);
}

static void sc_reset(void *ctx, struct tcp_conn *c, int err)
{
	struct sconn *sc = ctx;

	(void)c;
	(void)err;
	sc->k->n.resets++;
	put_conn(sc);
}

static const struct tcp_callbacks sink_cb = {
	.accepted = sc_accepted,
	.readable = sc_readable,
	.writable = sc_writable,
	.peer_closed = sc_peer_closed,
	.closed = sc_closed,
	.reset = sc_reset,
};

struct sink *sink_create(const struct sink_conf *conf, struct net_stack *st,
			 uint64_t now_us)
{
	struct sink *k = calloc(1, sizeof(*k));

	(void)now_us;
	if (!k)
		return NULL;
	k->conf = *conf;
	k->st = st;
	k->conns = calloc(conf->max_conns, sizeof(*k->conns));
	k->seen = calloc(conf->max_seq / 8 + 1, 1);
	if (!k->conns || !k->seen)
		goto fail;
	for (uint32_t i = 0; i < conf->max_conns; i++) {
		k->conns[i].k = k;
		k->conns[i].next_free = i + 1 < conf->max_conns ? i + 1 : NONE;
	}
	for (int s = 0; s < SMTPB_STEP_MAX; s++)
		if (conf->smtp.delay_us[s])
			k->delays = true;
	if (tcp_listen(st, conf->port, &sink_cb, k) < 0)
		goto fail;
	return k;
fail:
	free(k->conns);
	free(k->seen);
	free(k);
	return NULL;
}

void sink_poll(struct sink *k, uint64_t now)
{
	/* Delayed replies leave when due: scanned every 100 us. */
	if (!k->delays || now - k->last_scan < 100)
		return;
	k->last_scan = now;
	for (uint32_t i = 0; i < k->conf.max_conns; i++) {
		struct sconn *sc = &k->conns[i];

		if (sc->c && !sc->closing && sc->ss.out_len)
			flush_out(sc, now);
	}
}

const struct sink_counts *sink_counts(const struct sink *k)
{
	return &k->n;
}

void sink_destroy(struct sink *k)
{
	if (!k)
		return;
	for (uint32_t i = 0; i < k->conf.max_conns; i++)
		tls_session_free(k->conns[i].tls);
	free(k->conns);
	free(k->seen);
	free(k);
}
