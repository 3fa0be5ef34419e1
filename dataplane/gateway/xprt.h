/*
 * xprt.h - the client transport interface: what the session pump
 * (session.c) talks to instead of TCP. One struct xprt per client
 * connection, embedded in its session; its ops are chosen at accept
 * (client.c) by the listener: xprt_plain, xprt_tls (xprt_tls.h) for
 * a listener with TLS, a fake one in the unit harness (tests/unit/gateway/).
 *
 * Owner: the dataplane lcore of the connection; no op blocks, none
 * takes a lock. Every op is called from the session pump or the client
 * callbacks, never from another lcore or thread (a TLS implementation
 * hands handshakes to dataplane/workers and resumes on completion).
 *
 * The session pump's view, one round:
 *   xprt_read(x, sink, ctx)      plaintext in -> SMTP engine
 *   xprt_send_more(x, p, n, last) engine output -> peer
 *   xprt_flush(x) / xprt_shutdown(x)
 * and, for STARTTLS, xprt_can_start_tls(x) then xprt_start_tls(x).
 *
 * The STARTTLS byte boundary (RFC 3207 5, CVE-2011-0411) is owned here:
 * xprt_start_tls() is called right after the engine queued its 220 to
 * STARTTLS (the engine has already dropped, and counted, what it held
 * past the STARTTLS line). It drops every byte the transport received and
 * the session did not consume: the held segments and whatever TCP has
 * buffered. They are counted in x->starttls_discarded. From then on
 * xprt_read() hands nothing to the engine until the TLS handshake is done:
 * the next bytes on the wire (the ClientHello) go to the TLS layer only.
 *
 * Contract for an implementation (struct xprt_ops):
 *  read       offer received plaintext to sink, in order, until sink takes
 *             less than offered or none is left; keep what sink did not
 *             take for the next call (consume = what sink returned).
 *             Returns the bytes sink took. Never called in
 *             XPRT_TLS_HANDSHAKE (a TLS transport feeds its handshake
 *             from its own callbacks instead); called after XPRT_GONE
 *             only to hand over what is still held.
 *  send_more  queue up to len bytes of plaintext; with last set, hold
 *             them so they leave with the FIN of a following shutdown.
 *             Returns bytes taken (may be short or 0 when full: the
 *             connection's writable callback fires later), or < 0 when
 *             the connection cannot send any more.
 *  flush      send what was queued and held now.
 *  shutdown   graceful close: the queued output, then close_notify (TLS)
 *             and the FIN. The client callbacks report the end.
 *  discard_input  drop every received byte not yet consumed (held and
 *             buffered below); returns how many. Used by the boundary.
 *  start_tls  begin the TLS handshake as server; NULL when the transport
 *             cannot (xprt_plain): STARTTLS is then not advertised and
 *             refused. Returns 0 or a negative errno.
 *  is_secure  true when the plaintext the session sees was encrypted on
 *             the wire (TLS established); NULL means never (xprt_plain).
 *             AUTH asks it before PLAIN/LOGIN (auth.c) and for the "S"
 *             of ESMTPSA.
 *  drive      XPRT_TLS_HANDSHAKE only: hand what was received to the
 *             handshake (a TLS transport posts it to a worker); NULL
 *             when the transport never handshakes. Called by xprt_read.
 *  peer_eof   the peer closed its side (TCP FIN); NULL when nothing
 *             needs doing (a TLS transport fails a handshake that can
 *             no longer complete).
 *  release    free what the transport holds (received data, TLS state);
 *             the TCP connection is the client connection's, not its.
 */
#ifndef MXG_GATEWAY_XPRT_H
#define MXG_GATEWAY_XPRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/gateway/rx.h"

struct tcp_conn;
struct xprt;

enum xprt_state {
	XPRT_GONE = 0,       /* the TCP connection is gone */
	XPRT_READY,          /* plaintext flows (plain, or TLS established) */
	XPRT_TLS_HANDSHAKE,  /* after the STARTTLS boundary, until done */
	XPRT_CLOSING,        /* shutdown called */
};

struct xprt_ops {
	const char *name;
	size_t (*read)(struct xprt *x, gw_rx_sink_fn sink, void *ctx);
	ssize_t (*send_more)(struct xprt *x, const void *buf, size_t len,
			     bool last);
	void (*flush)(struct xprt *x);
	int (*shutdown)(struct xprt *x);
	size_t (*discard_input)(struct xprt *x);
	int (*start_tls)(struct xprt *x);
	bool (*is_secure)(const struct xprt *x);
	void (*drive)(struct xprt *x);
	void (*peer_eof)(struct xprt *x);
	void (*release)(struct xprt *x);
};

struct xprt {
	const struct xprt_ops *ops;
	struct tcp_conn *tc;     /* NULL once gone (xprt_gone) */
	struct gw_rx rx;         /* received, not yet consumed */
	enum xprt_state state;
	uint64_t starttls_discarded; /* bytes dropped at the boundary */
	void *impl;              /* the implementation's own state */
};

/* The plain transport: today's TCP code, moved. */
extern const struct xprt_ops xprt_plain_ops;
/* The TLS transport (xprt_tls.h). */
extern const struct xprt_ops xprt_tls_ops;

/* Sets x up over tc with ops (client.c, at accept). */
void xprt_init(struct xprt *x, const struct xprt_ops *ops,
	       struct tcp_conn *tc);

/* The TCP connection is gone (closed or reset): nothing more is read or
 * sent; held data is kept until xprt_release. */
static inline void xprt_gone(struct xprt *x)
{
	x->tc = NULL;
	x->state = XPRT_GONE;
}

static inline enum xprt_state xprt_state(const struct xprt *x)
{
	return x->state;
}

/* True while output can still be written (not gone). */
static inline bool xprt_up(const struct xprt *x)
{
	return x->state != XPRT_GONE;
}

static inline size_t xprt_read(struct xprt *x, gw_rx_sink_fn sink,
			       void *ctx)
{
	/* after the boundary, received bytes are the TLS layer's */
	if (x->state == XPRT_TLS_HANDSHAKE) {
		if (x->ops->drive)
			x->ops->drive(x);
		return 0;
	}
	return x->ops->read(x, sink, ctx);
}

static inline ssize_t xprt_send_more(struct xprt *x, const void *buf,
				     size_t len, bool last)
{
	if (x->state == XPRT_GONE)
		return -1;
	return x->ops->send_more(x, buf, len, last);
}

static inline void xprt_flush(struct xprt *x)
{
	if (x->state != XPRT_GONE)
		x->ops->flush(x);
}

/* The peer's FIN arrived (client.c). */
static inline void xprt_peer_eof(struct xprt *x)
{
	if (x->state != XPRT_GONE && x->ops->peer_eof)
		x->ops->peer_eof(x);
}

/* Graceful close; once. */
int xprt_shutdown(struct xprt *x);

static inline bool xprt_can_start_tls(const struct xprt *x)
{
	return x->ops->start_tls != NULL && x->state == XPRT_READY;
}

/* True when the connection is encrypted (TLS up): PLAIN and LOGIN may
 * send a password, Received says ESMTPS/ESMTPSA. */
static inline bool xprt_is_secure(const struct xprt *x)
{
	return x->ops->is_secure != NULL && x->state != XPRT_GONE &&
	       x->ops->is_secure(x);
}

/* The STARTTLS boundary (see the top of this file). Returns the bytes
 * dropped (>= 0), or a negative errno when the transport cannot start
 * TLS (nothing is dropped then). */
int64_t xprt_start_tls(struct xprt *x);

/* Frees what x holds; x is unusable afterwards. */
void xprt_release(struct xprt *x);

#endif /* MXG_GATEWAY_XPRT_H */
