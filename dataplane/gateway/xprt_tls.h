/*
 * xprt_tls.h - the client transport with TLS (xprt.h; DESIGN 7): STARTTLS
 * (RFC 3207) or implicit TLS (RFC 8314) over the stack, handshakes on the
 * worker pool (tls/tls_job.h), records encrypted and decrypted inline
 * afterwards.
 *
 * Owner: the dataplane lcore of the connection; every function here and
 * every callback in the params runs on it (callbacks from workers_poll,
 * never from inside a pump: they only mark the session and note state).
 */
#ifndef MXG_GATEWAY_XPRT_TLS_H
#define MXG_GATEWAY_XPRT_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/gateway/xprt.h"
#include "tls/tls_session.h"

struct worker_pool;

/* Counters the transport bumps (the core's; see control/counters.h). */
struct xprt_tls_counters {
	uint64_t tls_jobs;	     /* handshake steps posted */
	uint64_t tls_jobs_refused;   /* job ring full: handshake failed */
	uint64_t tls_jobs_abandoned; /* connection gone with a step out */
	uint64_t tls_record_errors;  /* record layer failed after the
					handshake */
	uint64_t tls_live;	     /* transports allocated, not freed */
};

struct xprt_tls_params {
	const struct tls_server_ctx *ctx; /* the listener's (snapshot) */
	/* Client side instead (a backend connection, issue 13): the pool's
	 * context, and the name to send as SNI and verify (may be NULL
	 * when the context does not verify). xprt_start_tls() then starts
	 * a client handshake (the ClientHello leaves first). */
	const struct tls_client_ctx *client_ctx;
	const char *server_name;
	struct worker_pool *pool;
	uint16_t core;			  /* pool index of this lcore */
	bool implicit;			  /* TLS from the first byte (465) */
	struct xprt_tls_counters *counters; /* may be NULL */
	/* The handshake ended (ok or failed: the alert is queued). */
	void (*done)(struct xprt *x, bool ok);
	/* A step came back needing more input: pump the connection. */
	void (*wake)(struct xprt *x);
	/* close_notify or a broken record after the handshake: no more
	 * input, as after a FIN. */
	void (*eof)(struct xprt *x);
	/* May be NULL. A transport released with a step out is freed when
	 * the pool gives the job back; gone(gone_a, gone_b) runs then, on
	 * the owning core, so the owner can keep alive what the step still
	 * reads (a backend's client context: its pin) until then. */
	void (*gone)(void *a, void *b);
	void *gone_a, *gone_b;
};

/* Makes x (set up by xprt_init over its TCP connection) a TLS transport.
 * With p->implicit the handshake starts now (x is then
 * XPRT_TLS_HANDSHAKE and sends nothing until it is done); otherwise
 * xprt_start_tls() starts it after the 220 to STARTTLS. 0 or -ENOMEM. */
int xprt_tls_attach(struct xprt *x, const struct xprt_tls_params *p);

/* XPRT_TLS_HANDSHAKE: posts received records to a worker when no step is
 * out (xprt_read calls it through ops->drive). */
void xprt_tls_drive(struct xprt *x);

/* True while a worker holds the session. */
bool xprt_tls_handshaking(const struct xprt *x);

/* Version, cipher, SNI... once established; -EAGAIN before (or when x is
 * not TLS). */
int xprt_tls_info(const struct xprt *x, struct tls_session_info *out);

/* Why the handshake or record layer failed (TLS_FAIL_NONE if it did not,
 * or x is not TLS). */
enum tls_fail xprt_tls_fail_reason(const struct xprt *x);
/* OpenSSL's words for it ("" if none), for the log. */
const char *xprt_tls_fail_detail(const struct xprt *x);

#endif /* MXG_GATEWAY_XPRT_TLS_H */
