/*
 * xprt_tls.c - the client transport with TLS (see xprt.h, DESIGN 7):
 * STARTTLS on a plain connection, or TLS from the first byte (implicit,
 * RFC 8314). Records <-> tls/tls_session.h over the stack's segments.
 *
 * Owner: the dataplane lcore of the connection, except the tls_session
 * while a handshake step is on the worker pool (tls_job.h): from submit
 * to completion the core never touches it; received records wait in the
 * transport's segments (x->rx) meanwhile. The poll-mode core never runs a
 * handshake step; after the handshake it encrypts and decrypts records
 * inline.
 *
 * Promises: a connection that dies with a step in flight abandons the job
 * (tls_hs_job_abandon): the pool's drop frees the session and the
 * transport's memory, so a worker never touches freed memory and nothing
 * leaks; a job dropped at shutdown (workers_destroy) frees the session
 * and leaves the rest to xprt_release. Allocation: one struct per TLS
 * connection at attach; a plaintext or ciphertext overflow buffer only
 * while the engine or TCP cannot take what was decrypted or encrypted.
 */
#include "dataplane/gateway/xprt_tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tcp.h"
#include "tls/tls_job.h"

/* One TLS record's worth of plaintext per write, and the most one read
 * returns (RFC 8446 5.1). */
#define XTLS_CHUNK 16384u
/* The largest record on the wire (RFC 8446 5.2). */
#define XTLS_RECORD (16384u + 2048u + 5u)

struct xtls {
	struct tls_hs_job job;	  /* the handshake step in flight */
	struct xprt *x;		  /* NULL once abandoned */
	struct tls_session *ts;	  /* NULL while a worker holds it */
	struct xprt_tls_params p;
	bool started;		  /* TLS began (STARTTLS or implicit):
				     before, the transport is plain */
	bool in_flight;		  /* job submitted, not back yet */
	bool cleartext_ok;	  /* STARTTLS: the 220 still goes in clear */
	bool need_step;		  /* input fed since the last step */
	bool failed;		  /* handshake or record layer failed */
	bool eof_reported;
	bool peer_eof;		  /* TCP FIN seen */
	bool eof_fed;		  /* ...and told to the session */
	size_t budget;		  /* feed_sink: bytes it may still take */
	uint8_t *out;		  /* ciphertext TCP did not take yet */
	size_t out_len, out_off;
	uint8_t *pt;		  /* plaintext the engine did not take */
	size_t pt_len, pt_off;
};

/* Decryption scratch of the lcore: a read never outlives one call. */
static _Thread_local uint8_t xtls_scratch[XTLS_CHUNK];

static struct xtls *xt_of(struct xprt *x)
{
	return x->impl;
}

/* Pushes held ciphertext into TCP. True when nothing is left held. */
static bool out_push(struct xtls *t, bool last)
{
	struct xprt *x = t->x;
	ssize_t w;

	if (t->out_off == t->out_len)
		return true;
	if (!x || !x->tc)
		return false;
	w = tcp_send_more(x->tc, t->out + t->out_off, t->out_len - t->out_off,
			  last);
	if (w > 0)
		t->out_off += (size_t)w;
	if (t->out_off == t->out_len) {
		free(t->out);
		t->out = NULL;
		t->out_len = t->out_off = 0;
		return true;
	}
	return false;
}

/* Moves the session's records to TCP; what TCP does not take is held
 * (appended after what is already held). 0 or -ENOMEM. */
static int out_take(struct xtls *t, bool last)
{
	size_t n = tls_session_output_len(t->ts);
	uint8_t *nb;

	if (n == 0) {
		(void)out_push(t, last);
		return 0;
	}
	if (t->out_off == t->out_len && t->x && t->x->tc) {
		/* nothing held: straight to TCP through the scratch */
		while (n) {
			size_t k = tls_session_take_output(
				t->ts, xtls_scratch,
				n < sizeof(xtls_scratch) ? n
							 : sizeof(xtls_scratch));
			ssize_t w = tcp_send_more(t->x->tc, xtls_scratch, k,
						  last);

			if (w < 0)
				w = 0;
			n -= k;
			if ((size_t)w < k) {
				size_t rest = k - (size_t)w + n;

				nb = malloc(rest);
				if (!nb)
					return -ENOMEM;
				memcpy(nb, xtls_scratch + w, k - (size_t)w);
				if (n)
					tls_session_take_output(
						t->ts, nb + (k - (size_t)w), n);
				free(t->out);
				t->out = nb;
				t->out_len = rest;
				t->out_off = 0;
				return 0;
			}
		}
		return 0;
	}
	nb = malloc(t->out_len - t->out_off + n);
	if (!nb)
		return -ENOMEM;
	memcpy(nb, t->out + t->out_off, t->out_len - t->out_off);
	tls_session_take_output(t->ts, nb + (t->out_len - t->out_off), n);
	free(t->out);
	t->out_len = t->out_len - t->out_off + n;
	t->out_off = 0;
	t->out = nb;
	out_push(t, last);
	return 0;
}

/* Received ciphertext into the session (the rx feed's sink), at most
 * t->budget bytes: one record's worth per feed, read before the next, so
 * the input BIO stays under TLS_SESSION_MAX_BUFFERED whatever the peer
 * sends (the rest waits in the segments: TCP backpressure). */
static size_t feed_sink(void *ctx, const uint8_t *p, size_t len)
{
	struct xtls *t = ctx;

	if (len > t->budget)
		len = t->budget;
	if (len == 0 || tls_session_feed(t->ts, p, len) < 0)
		return 0;
	t->budget -= len;
	t->need_step = true;
	return len;
}

/* Feeds up to one record of received ciphertext. Returns bytes fed. */
static size_t feed_record(struct xtls *t)
{
	struct xprt *x = t->x;

	if (!x || (!x->tc && !x->rx.head))
		return 0;
	t->budget = XTLS_RECORD;
	return gw_rx_feed(&x->rx, x->tc, feed_sink, t);
}

static void hs_release(struct tls_hs_job *j);
static void hs_complete(struct tls_hs_job *j);

/* The one place a transport's memory goes (the session is gone). */
static void xt_free(struct xtls *t)
{
	if (t->p.counters)
		t->p.counters->tls_live--;
	free(t->out);
	free(t->pt);
	free(t);
}

/* The step cannot run (input overflow, job ring full): complete it
 * here as failed, as if a worker had said so. */
static void hs_fail_now(struct xtls *t)
{
	t->job.sess = t->ts;
	t->job.owner = t;
	t->job.result = TLS_ST_FAILED;
	t->in_flight = true;
	hs_complete(&t->job);
}

/* Handshake: fed input goes to a worker for one step. */
static void hs_step(struct xtls *t)
{
	struct xprt *x = t->x;
	int r;

	if (t->in_flight || !t->ts || t->failed || !x->tc)
		return;
	if (!out_push(t, false))
		return; /* a flight is still leaving; wait for writable */
	feed_record(t);
	if (t->peer_eof && !t->eof_fed && !x->rx.head &&
	    tcp_recv_avail(x->tc) == 0) {
		/* every byte is in: a handshake that needs more fails
		 * (TLS_FAIL_TRUNCATED) instead of waiting for ever */
		tls_session_feed_eof(t->ts);
		t->eof_fed = true;
		t->need_step = true;
	}
	if (tls_session_state(t->ts) == TLS_ST_FAILED) {
		hs_fail_now(t);
		return;
	}
	if (!t->need_step)
		return;
	/* the first ClientHello bytes: no more cleartext from now on */
	t->cleartext_ok = false;
	t->need_step = false;
	tls_hs_job_init(&t->job, t->ts, t, hs_complete, hs_release);
	t->in_flight = true;
	r = tls_hs_job_submit(t->p.pool, t->p.core, &t->job);
	if (r < 0) {
		/* the core's job ring is full: refuse this handshake rather
		 * than run it on the core */
		t->in_flight = false;
		if (t->p.counters)
			t->p.counters->tls_jobs_refused++;
		hs_fail_now(t);
		return;
	}
	t->ts = NULL;
	if (t->p.counters)
		t->p.counters->tls_jobs++;
}

/* Owning core: a step came back, the session is ours again. */
static void hs_complete(struct tls_hs_job *j)
{
	struct xtls *t = j->owner;
	struct xprt *x = t->x;
	enum tls_state st = j->result;

	t->in_flight = false;
	t->ts = j->sess;
	if (!x)
		return; /* cannot happen: abandoned jobs never complete */
	(void)out_take(t, false);
	if (x->tc)
		tcp_flush(x->tc);
	if (st == TLS_ST_HANDSHAKE && tls_session_state(t->ts) == TLS_ST_FAILED)
		st = TLS_ST_FAILED;
	switch (st) {
	case TLS_ST_OPEN:
		if (x->state == XPRT_TLS_HANDSHAKE)
			x->state = XPRT_READY;
		t->p.done(x, true);
		break;
	case TLS_ST_HANDSHAKE:
		/* more input needed, or already here: the pump drives on */
		t->p.wake(x);
		break;
	default:
		t->failed = true;
		t->p.done(x, false);
		break;
	}
}

/* Owning core: the pool dropped the job (it freed the session). An
 * abandoned job's transport is gone too; otherwise (pool destroyed at
 * shutdown) the connection still holds it and releases it later. */
static void hs_release(struct tls_hs_job *j)
{
	struct xtls *t = (struct xtls *)j;

	t->in_flight = false;
	t->ts = NULL;
	if (j->abandoned) {
		if (t->p.gone)
			t->p.gone(t->p.gone_a, t->p.gone_b);
		xt_free(t);
	} else {
		t->failed = true;
	}
}

void xprt_tls_drive(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	if (t)
		hs_step(t);
}

static void tls_peer_eof(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	t->peer_eof = true;
	if (x->state == XPRT_TLS_HANDSHAKE)
		t->p.wake(x); /* the pump's drive feeds the EOF */
}

bool xprt_tls_handshaking(const struct xprt *x)
{
	const struct xtls *t = x->impl;

	return t && t->in_flight;
}

/* Offers held plaintext to sink. True when all of it was taken. */
static bool pt_offer(struct xtls *t, gw_rx_sink_fn sink, void *ctx,
		     size_t *total)
{
	while (t->pt_off < t->pt_len) {
		size_t n = sink(ctx, t->pt + t->pt_off, t->pt_len - t->pt_off);

		*total += n;
		t->pt_off += n;
		if (n == 0)
			return false;
	}
	free(t->pt);
	t->pt = NULL;
	t->pt_len = t->pt_off = 0;
	return true;
}

static size_t tls_read(struct xprt *x, gw_rx_sink_fn sink, void *ctx)
{
	struct xtls *t = xt_of(x);
	size_t total = 0;

	if (!t->started) /* before STARTTLS: cleartext, as xprt_plain */
		return gw_rx_feed(&x->rx, x->tc, sink, ctx);
	if (!t->ts || t->in_flight)
		return 0;
	if (!pt_offer(t, sink, ctx, &total))
		return total;
	for (;;) {
		ssize_t r;
		size_t n;

		r = tls_session_read(t->ts, xtls_scratch, sizeof(xtls_scratch));
		if (r == 0 && !t->failed && feed_record(t) > 0)
			continue; /* a record needed more bytes: try again */
		if (r <= 0) {
			/* alerts, key updates, tickets: whatever the read
			 * produced leaves now */
			(void)out_take(t, false);
			if (r < 0 && !t->eof_reported) {
				/* close_notify (-EPIPE) or a broken record
				 * layer (-EPROTO): the session ends as on a
				 * FIN */
				t->eof_reported = true;
				if (r != -EPIPE) {
					t->failed = true;
					if (t->p.counters)
						t->p.counters
							->tls_record_errors++;
				}
				t->p.eof(x);
			}
			break;
		}
		n = sink(ctx, xtls_scratch, (size_t)r);
		total += n;
		if (n < (size_t)r) {
			t->pt = malloc((size_t)r - n);
			if (!t->pt) {
				t->failed = true;
				t->p.eof(x);
				break;
			}
			memcpy(t->pt, xtls_scratch + n, (size_t)r - n);
			t->pt_len = (size_t)r - n;
			t->pt_off = 0;
			break;
		}
	}
	if (x->tc)
		tcp_flush(x->tc);
	return total;
}

/* Nothing can be encrypted any more (the peer's close_notify, a failed
 * record layer): what the session still wants to say is lost, so the
 * connection closes now instead of waiting for output that never
 * leaves; the client callbacks report the end. */
static ssize_t xt_cannot_send(struct xprt *x)
{
	if (x->tc && x->state != XPRT_CLOSING) {
		x->state = XPRT_CLOSING;
		(void)out_push(xt_of(x), true);
		tcp_close(x->tc);
	}
	return -1;
}

static ssize_t tls_send_more(struct xprt *x, const void *buf, size_t len,
			     bool last)
{
	struct xtls *t = xt_of(x);
	size_t n;

	if (!t->started)
		return tcp_send_more(x->tc, buf, len, last);
	if (x->state == XPRT_TLS_HANDSHAKE) {
		/* the 220 to STARTTLS leaves in clear; after it, nothing
		 * until the handshake is done (an implicit listener's
		 * greeting waits for it) */
		if (t->cleartext_ok)
			return tcp_send_more(x->tc, buf, len, last);
		return 0;
	}
	if (!t->ts || t->in_flight || t->failed ||
	    tls_session_state(t->ts) != TLS_ST_OPEN)
		return xt_cannot_send(x);
	if (!out_push(t, false))
		return 0; /* the writable callback pumps again */
	n = len < XTLS_CHUNK ? len : XTLS_CHUNK;
	if (tls_session_write(t->ts, buf, n) < 0 ||
	    out_take(t, last && n == len) < 0) {
		t->failed = true;
		return xt_cannot_send(x);
	}
	return (ssize_t)n;
}

static void tls_flush(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	if (t->started)
		out_push(t, false);
	tcp_flush(x->tc);
}

static int tls_shutdown(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	/* RFC 8446 6.1: close_notify before the FIN, when the record layer
	 * is ours and healthy */
	if (t->ts && !t->in_flight && !t->failed &&
	    tls_session_state(t->ts) == TLS_ST_OPEN) {
		tls_session_shutdown(t->ts);
		(void)out_take(t, true);
	}
	return tcp_close(x->tc);
}

static size_t tls_discard_input(struct xprt *x)
{
	return gw_rx_discard(&x->rx, x->tc);
}

static int tls_start(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	if (!t || t->ts || t->in_flight)
		return -EINVAL;
	if (t->p.client_ctx) {
		/* client (backend): we speak first, nothing in clear */
		t->ts = tls_session_new_client(t->p.client_ctx,
					       t->p.server_name);
		if (!t->ts)
			return -ENOMEM;
		t->started = true;
		t->need_step = true;
		return 0;
	}
	t->ts = tls_session_new_server(t->p.ctx);
	if (!t->ts)
		return -ENOMEM;
	t->started = true;
	t->cleartext_ok = true;
	return 0;
}

static void tls_release(struct xprt *x)
{
	struct xtls *t = xt_of(x);

	if (!t)
		return;
	x->impl = NULL;
	if (t->in_flight) {
		/* a worker may hold the session: the pool's drop frees it
		 * and then t (hs_release) */
		t->x = NULL;
		if (t->p.counters)
			t->p.counters->tls_jobs_abandoned++;
		tls_hs_job_abandon(&t->job);
		return;
	}
	tls_session_free(t->ts);
	t->ts = NULL;
	xt_free(t);
}

/* Encrypted on the wire: TLS began and its handshake completed (AUTH's
 * PLAIN/LOGIN and the "S" of ESMTPSA ask this). */
static bool tls_is_secure(const struct xprt *x)
{
	const struct xtls *t = x->impl;

	return t && t->started && !t->failed && x->state != XPRT_TLS_HANDSHAKE;
}

const struct xprt_ops xprt_tls_ops = {
	.name = "tls",
	.read = tls_read,
	.send_more = tls_send_more,
	.flush = tls_flush,
	.shutdown = tls_shutdown,
	.discard_input = tls_discard_input,
	.start_tls = tls_start,
	.drive = xprt_tls_drive,
	.peer_eof = tls_peer_eof,
	.is_secure = tls_is_secure,
	.release = tls_release,
};

int xprt_tls_attach(struct xprt *x, const struct xprt_tls_params *p)
{
	struct xtls *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->x = x;
	t->p = *p;
	x->ops = &xprt_tls_ops;
	x->impl = t;
	if (p->counters)
		p->counters->tls_live++;
	if (p->implicit) {
		int r = tls_start(x);

		if (r < 0) {
			x->impl = NULL;
			x->ops = &xprt_plain_ops;
			xt_free(t);
			return r;
		}
		t->cleartext_ok = false;
		x->state = XPRT_TLS_HANDSHAKE;
	}
	return 0;
}

int xprt_tls_info(const struct xprt *x, struct tls_session_info *out)
{
	const struct xtls *t = x->impl;

	if (x->ops != &xprt_tls_ops || !t || !t->ts || t->in_flight)
		return -EAGAIN;
	return tls_session_info(t->ts, out);
}

const char *xprt_tls_fail_detail(const struct xprt *x)
{
	const struct xtls *t = x->impl;

	if (x->ops != &xprt_tls_ops || !t || !t->ts || t->in_flight)
		return "";
	return tls_session_fail_detail(t->ts);
}

enum tls_fail xprt_tls_fail_reason(const struct xprt *x)
{
	const struct xtls *t = x->impl;

	if (x->ops != &xprt_tls_ops || !t || !t->ts || t->in_flight)
		return TLS_FAIL_NONE;
	return tls_session_fail_reason(t->ts);
}
