/*
 * tls_session.h - one TLS connection as a sans-I/O object (DESIGN 7):
 * received ciphertext in, plaintext out; plaintext in, records to send
 * out. OpenSSL 3 over two memory BIOs; no sockets, no clocks.
 *
 * Threads and ownership. A session belongs to exactly one thread at a
 * time: the dataplane core that created it, except while a handshake job
 * (tls_job.h) holds it on a worker. Nothing here blocks or sleeps.
 * During the handshake only tls_session_handshake() makes progress;
 * after it, tls_session_read/write run on the owning core (record
 * encryption and decryption inline).
 *
 * Memory: SSL_MODE_RELEASE_BUFFERS, so an idle session holds no record
 * buffers, and one BIO of our own over two byte queues whose memory is
 * freed as soon as they drain, so it holds no I/O buffer either (about
 * 14 KB per idle session with OpenSSL 3.0, most of it the SSL object:
 * tests/unit/tls/test_tls_mem.c). feed() is bounded by
 * TLS_SESSION_MAX_BUFFERED so a peer cannot grow the input queue.
 */
#ifndef MXG_TLS_SESSION_H
#define MXG_TLS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tls/tls_ctx.h"

struct tls_session;

/* Ciphertext buffered and not yet processed, at most: two full records
 * (16 KiB plaintext + 2 KiB expansion allowed by RFC 8446 5.2) and one. */
#define TLS_SESSION_MAX_BUFFERED (3u * (16384u + 2048u + 5u))

enum tls_state {
	TLS_ST_HANDSHAKE = 0, /* handshake in progress */
	TLS_ST_OPEN,	      /* application data flows */
	TLS_ST_CLOSED,	      /* peer sent close_notify */
	TLS_ST_FAILED,	      /* see tls_session_fail_reason(); send what
				 tls_session_take_output() still has (an
				 alert), then close */
};

/* Why a session failed: one counter per reason. */
enum tls_fail {
	TLS_FAIL_NONE = 0,
	TLS_FAIL_PROTOCOL,	/* not TLS, malformed record or message */
	TLS_FAIL_VERSION,	/* SSLv3/TLS 1.0/1.1 or below the minimum */
	TLS_FAIL_NO_SHARED,	/* no shared cipher, group or sigalg */
	TLS_FAIL_WEAK_CIPHER,	/* below min_cipher_bits */
	TLS_FAIL_PEER_CERT,	/* client/server certificate refused */
	TLS_FAIL_RENEGOTIATION, /* a renegotiation attempt */
	TLS_FAIL_TRUNCATED,	/* EOF without close_notify */
	TLS_FAIL_OVERFLOW,	/* more buffered input than allowed */
	TLS_FAIL_NOMEM,
	TLS_FAIL_INTERNAL,
	TLS_FAIL_COUNT
};

const char *tls_fail_name(enum tls_fail f);

/* Server session on ctx (a listener's). NULL on allocation failure. */
struct tls_session *tls_session_new_server(const struct tls_server_ctx *ctx);

/* Client session (to a backend). server_name: sent as SNI when it is a
 * host name (never for an IP literal, RFC 6066 3) and, when the context
 * verifies, the name (or address) the certificate must carry; NULL only
 * when the context does not verify. The session starts in
 * TLS_ST_HANDSHAKE with nothing to send: the first
 * tls_session_handshake() writes the ClientHello to the output, then
 * the exchange goes on as on the server side (feed, handshake, take
 * output) until TLS_ST_OPEN or TLS_ST_FAILED (TLS_FAIL_PEER_CERT for an
 * untrusted chain, a wrong name or a fingerprint mismatch). NULL on
 * allocation failure or a name OpenSSL refuses. */
struct tls_session *tls_session_new_client(const struct tls_client_ctx *ctx,
					   const char *server_name);

/* Client-side resumption (mxgate-bench --tls-resume): the session's
 * ticket, taken after some application data was read (TLS 1.3 tickets
 * come after the handshake), and handed to a new client session on the
 * same context before its first tls_session_handshake(). A ticket is
 * an opaque reference (OpenSSL's SSL_SESSION); NULL when the session
 * holds nothing resumable. set: 0, or -EINVAL. */
struct tls_ticket;
struct tls_ticket *tls_session_get_ticket(const struct tls_session *s);
int tls_session_set_ticket(struct tls_session *s, const struct tls_ticket *t);
void tls_ticket_free(struct tls_ticket *t);

/* Frees s, whatever its state (NULL is a no-op). Owning thread. */
void tls_session_free(struct tls_session *s);

/* Received ciphertext. Returns bytes taken (all of len), or -ENOBUFS
 * when it would exceed TLS_SESSION_MAX_BUFFERED (the session fails with
 * TLS_FAIL_OVERFLOW). */
int tls_session_feed(struct tls_session *s, const void *buf, size_t len);
int tls_session_feed_iov(struct tls_session *s, const struct iovec *iov,
			 int n);

/* The peer closed its side of TCP (FIN): later reads report a close
 * without close_notify as TLS_FAIL_TRUNCATED. */
void tls_session_feed_eof(struct tls_session *s);

/* Runs the handshake as far as the input allows. Returns the state:
 * TLS_ST_HANDSHAKE (needs more input; send the output first), TLS_ST_OPEN
 * (done; the policy checks - minimum cipher bits - passed) or
 * TLS_ST_FAILED. Meant for a worker thread; any single owner may call. */
enum tls_state tls_session_handshake(struct tls_session *s);

/* Decrypts into buf. Returns bytes (> 0), 0 when more ciphertext is
 * needed, or -EPIPE after the peer's close_notify (TLS_ST_CLOSED), or
 * -EPROTO when the session failed. Renegotiation attempts fail it. */
ssize_t tls_session_read(struct tls_session *s, void *buf, size_t len);

/* Encrypts len bytes of plaintext into records (all or -EPROTO). */
ssize_t tls_session_write(struct tls_session *s, const void *buf, size_t len);

/* Queues close_notify. */
void tls_session_shutdown(struct tls_session *s);

/* Records waiting to be sent, and taking them (copied to buf, removed
 * from the session). */
size_t tls_session_output_len(const struct tls_session *s);
size_t tls_session_take_output(struct tls_session *s, void *buf, size_t len);

enum tls_state tls_session_state(const struct tls_session *s);
enum tls_fail tls_session_fail_reason(const struct tls_session *s);
/* OpenSSL's description of the failure ("" if none), for the log. */
const char *tls_session_fail_detail(const struct tls_session *s);

/* After the handshake: for the Received: header and the log. */
struct tls_session_info {
	const char *version;	 /* "TLSv1.3" */
	const char *cipher;	 /* "TLS_AES_256_GCM_SHA384" */
	int cipher_bits;
	const char *sni;	 /* NULL if none was sent */
	bool resumed;
	/* Client (or, on a client session, server) certificate. */
	bool peer_cert;		 /* one was presented */
	bool peer_verified;	 /* and it verified against the CA file */
	bool peer_pinned;	 /* client side: it matched the pinned
				    fingerprint */
	char peer_subject[256];	 /* RFC 2253 one-line subject */
	char peer_sha256[65];	 /* hex SHA-256 of the DER certificate */
	char peer_cn[64];	 /* subject CN, printable ASCII ('?' for
				    other bytes, '"' and '\\'); "" if none */
	char peer_issuer_cn[64]; /* issuer CN, same form */
	const char *cert_key_type; /* our certificate's key: "RSA",
				      "ECDSA" (server side) */
};

/* 0, or -EAGAIN before the handshake completed (a session that failed
 * after its handshake still answers). The peer fields were worked out
 * when the handshake completed (tls_session_handshake, on its thread):
 * this copies, it neither formats nor allocates. */
int tls_session_info(const struct tls_session *s,
		     struct tls_session_info *out);

#endif /* MXG_TLS_SESSION_H */
