/*
 * tls_ctx.h - TLS contexts (DESIGN 7): what a listener or a backend pool
 * needs to run TLS, compiled once from the configuration into ready
 * OpenSSL 3 SSL_CTXs, plus the session-ticket key ring the control plane
 * rotates and every context shares.
 *
 * Threads. Contexts are built and freed by the main lcore (configuration
 * load, snapshot free after the RCU grace period); once built they are
 * read-only and used by any thread (dataplane cores create sessions from
 * them, workers run handshakes on them). The ticket key ring is written
 * only by tls_ticket_ring_rotate() (control plane) and read by the
 * ticket callback during handshakes (workers): a rwlock orders them, and
 * handshakes never run on a poll-mode core, so no core ever waits on it.
 *
 * Policy that holds whatever the configuration says: TLS 1.2 minimum
 * (never SSLv3, TLS 1.0 or 1.1), no renegotiation, no compression,
 * forward-secret TLS 1.2 cipher suites only (a cipher string that lets
 * a non-ECDHE/DHE or unauthenticated suite through is refused),
 * SSL_MODE_RELEASE_BUFFERS, tickets only (no server-side session cache,
 * so a ticket resumes on any core and any context sharing the ring).
 */
#ifndef MXG_TLS_CTX_H
#define MXG_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct tls_server_ctx;
struct tls_client_ctx;
struct tls_ticket_ring;

enum tls_client_cert {
	TLS_CCERT_OFF = 0, /* no certificate requested */
	TLS_CCERT_ASK,	   /* requested; a missing or unverified one is
			      allowed, reported as unverified */
	TLS_CCERT_REQUIRE, /* a certificate verifying against ca_file, or
			      the handshake fails */
};

/* One certificate/key pair (PEM files); chain: extra intermediates
 * (PEM, may be NULL; the cert file may also hold the chain after the
 * leaf). */
struct tls_cert_spec {
	const char *cert;
	const char *key;
	const char *chain;
};

struct tls_server_spec {
	const char *name;		  /* listener name: session id
					     context, messages */
	const struct tls_cert_spec *certs;
	uint32_t n_certs;		  /* >= 1 */
	int min_version;		  /* TLS1_2_VERSION or TLS1_3_VERSION
					     (0 = TLS 1.2) */
	const char *ciphers;		  /* TLS 1.2 cipher string; NULL =
					     TLS_DEFAULT_CIPHERS */
	uint32_t min_cipher_bits;	  /* checked after the handshake;
					     0 = none */
	enum tls_client_cert client_cert;
	const char *ca_file;		  /* required unless client_cert is
					     off */
};

/* Forward-secret, authenticated TLS 1.2 suites (TLS 1.3 suites all are). */
#define TLS_DEFAULT_CIPHERS                                                   \
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"

/* One loaded certificate, for status and metrics. */
struct tls_cert_info {
	char subject[256];	 /* one-line subject */
	char names[256];	 /* DNS names it serves, comma separated */
	const char *key_type;	 /* "RSA", "ECDSA", ... */
	int key_bits;
	time_t not_after;	 /* expiry, seconds since the epoch */
	const char *file;	 /* the configured cert file (owned by ctx) */
};

/*
 * Builds a listener's contexts: one SSL_CTX per distinct first DNS name
 * of the certificates (an RSA and an ECDSA certificate with the same
 * first name share one SSL_CTX, and OpenSSL picks by the client's
 * signature algorithms); SNI selects the SSL_CTX whose certificates name
 * the requested host (exact or "*.domain" wildcard), else the first.
 * Every key is checked against its certificate. ring may be NULL (no
 * tickets until tls_server_ctx_set_ring). Main lcore. NULL on error with
 * a message in err naming the certificate index and the file.
 * *bad_cert is set to the index of the certificate at fault, or -1.
 */
struct tls_server_ctx *tls_server_ctx_new(const struct tls_server_spec *spec,
					  struct tls_ticket_ring *ring,
					  int *bad_cert, char *err,
					  size_t errlen);

/* Attaches the ticket key ring (before the context is published). */
void tls_server_ctx_set_ring(struct tls_server_ctx *c,
			     struct tls_ticket_ring *ring);

/* Drops the creator's reference (NULL is a no-op). Each server session
 * holds a reference of its own, so sessions still open on c finish on
 * it (certificates, SNI, tickets); the memory goes with the last one. */
void tls_server_ctx_free(struct tls_server_ctx *c);

/* Certificates loaded, and the i-th one's description. */
uint32_t tls_server_ctx_n_certs(const struct tls_server_ctx *c);
const struct tls_cert_info *tls_server_ctx_cert(const struct tls_server_ctx *c,
						uint32_t i);
uint32_t tls_server_ctx_min_cipher_bits(const struct tls_server_ctx *c);

/*
 * Backend side (a next-hop pool's STARTTLS). Three ways to trust the
 * backend, from a pool's configuration:
 *  - verify: the chain verifies against ca_file and the certificate
 *    names the expected host (tls_session_new_client's server_name;
 *    RFC 6125 DNS-ID, no partial wildcards, or an IP address);
 *  - fingerprint: the backend's leaf certificate has this SHA-256 (64
 *    hex digits, colons allowed); the chain and name are not checked,
 *    unless verify is also set, then both must hold;
 *  - neither: opportunistic encryption, nothing checked (an active
 *    attacker can read the mail; the pool said it accepts that).
 * TLS 1.2 minimum as on the server side; cert/key: an optional client
 * certificate (PEM; cert may hold the chain after the leaf) for backends
 * that ask for one.
 */
struct tls_client_spec {
	const char *name;	   /* pool name, for messages */
	bool verify;
	const char *ca_file;	   /* required when verify */
	const char *fingerprint;   /* NULL: no pin */
	int min_version;	   /* 0 = TLS 1.2 */
	const char *ciphers;	   /* NULL = TLS_DEFAULT_CIPHERS */
	const char *cert;	   /* client certificate (NULL: none) */
	const char *key;	   /* its key (NULL: in cert) */
};

/* Builds a backend context. Main lcore. NULL with a message in err
 * naming the key at fault (tls_ca_file, tls_fingerprint, tls_cert,
 * tls_key, tls_ciphers). */
struct tls_client_ctx *tls_client_ctx_new(const struct tls_client_spec *spec,
					  char *err, size_t errlen);
void tls_client_ctx_free(struct tls_client_ctx *c);

/*
 * Ticket key ring: TLS_TICKET_KEYS keys; the newest encrypts new
 * tickets, every key in the ring decrypts (a ticket under an older key
 * resumes and gets a fresh ticket). Rotating replaces the oldest key with
 * a new random one. So a ticket lives for at most TLS_TICKET_KEYS
 * rotation intervals. Any thread may read (ticket callback); rotate from
 * one thread (the control plane).
 */
#define TLS_TICKET_KEYS 3

struct tls_ticket_ring *tls_ticket_ring_new(void);
void tls_ticket_ring_free(struct tls_ticket_ring *r);
/* New current key. 0 or -ENOMEM/-EIO (no randomness: ring unchanged). */
int tls_ticket_ring_rotate(struct tls_ticket_ring *r);
/* Rotations so far (for status). */
uint64_t tls_ticket_ring_generation(const struct tls_ticket_ring *r);

/* Process-wide OpenSSL setup (idempotent; main lcore before use). */
int tls_global_init(void);

#endif /* MXG_TLS_CTX_H */
