/*
 * tls_internal.h - what tls_ctx.c and tls_session.c share; not for use
 * outside tls/ (callers use tls_ctx.h and tls_session.h).
 */
#ifndef MXG_TLS_INTERNAL_H
#define MXG_TLS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls/tls_ctx.h"

/* One SSL_CTX and the host names its certificates serve. */
struct tls_name_ctx {
	SSL_CTX *ctx;
	char **names; /* lower case; "*.example.com" wildcards */
	uint32_t n_names;
};

struct tls_server_ctx {
	struct tls_name_ctx *v; /* v[0]: the default (no or unknown SNI) */
	uint32_t n;
	struct tls_cert_info *certs;
	char **files;
	uint32_t n_certs;
	uint32_t min_cipher_bits;
	struct tls_ticket_ring *ring;
	atomic_uint refs; /* the creator's, and one per server session: the
			     SNI and ticket callbacks reach this struct, so
			     it outlives tls_server_ctx_free() while a
			     session made from it lives */
};

/* A session's reference (tls_session.c). */
void tls_server_ctx_hold(struct tls_server_ctx *c);

struct tls_client_ctx {
	SSL_CTX *ctx;
	bool verify;
	bool pinned;		  /* pin[] holds the expected SHA-256 */
	unsigned char pin[32];
};

/* The SSL_CTX ex_data slot holding the SSL_CTX's tls_server_ctx or
 * tls_client_ctx (SSL_is_server tells which). */
int tls_ctx_ex_index(void);

/* Whether cert's SHA-256 is the client context's pin. */
bool tls_client_pin_match(const struct tls_client_ctx *c, X509 *cert);

const char *tls_key_type_name(const EVP_PKEY *pk);

#endif /* MXG_TLS_INTERNAL_H */
