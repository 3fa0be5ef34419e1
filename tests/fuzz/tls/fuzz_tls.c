/*
 * fuzz_tls.c - libFuzzer harness for tls_session, the server side
 * (DESIGN 9: TLS records handed to the engine) and the backend client
 * side (a hostile or broken backend's flight: malformed or huge
 * certificate chains, wrong versions, garbage).
 *
 * Input: a mode octet, then chunks (1 length octet, that many bytes),
 * each fed to the session with a handshake step or a read after it.
 *   mode & 1 == 0: the chunks are the client's first flight (hostile
 *                  ClientHellos, garbage, split records);
 *   mode & 1 == 1: a real in-memory OpenSSL client completes a TLS 1.3
 *                  (mode & 2: 1.2) handshake first, then the chunks are
 *                  records injected after it (application data, alerts,
 *                  renegotiation hellos, post-handshake messages).
 *   mode & 4: a FIN (feed_eof) after the last chunk.
 *   mode & 8: client side instead: our backend session sends its
 *             ClientHello, the chunks are the server's answer; (mode >>
 *             4) % 3 picks the context: CA and name, SHA-256 pin, or
 *             opportunistic (mode & 1 and 2 are then unused).
 * Checks, beyond the sanitizers: a failed session reports a reason and
 * never goes back to another state; reads never return more than asked;
 * buffered output stays bounded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/unit/tls/tls_testcerts.h"
#include "tls/tls_ctx.h"
#include "tls/tls_session.h"

static struct tls_server_ctx *sc;
static struct tls_ticket_ring *ring;
static SSL_CTX *cctx;
static struct tc_files files;
static struct tls_client_ctx *backend[3];

static void cleanup(void)
{
	tc_remove(&files);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tls_cert_spec certs[2];
	struct tls_server_spec sp;
	char err[256];
	int bad;

	(void)argc, (void)argv;
	if (tls_global_init() < 0 || tc_make(&files) < 0)
		abort();
	atexit(cleanup);
	certs[0] = (struct tls_cert_spec){files.ec_crt, files.ec_key, NULL};
	certs[1] = (struct tls_cert_spec){files.other_crt, files.other_key,
					  NULL};
	memset(&sp, 0, sizeof(sp));
	sp.name = "fuzz";
	sp.certs = certs;
	sp.n_certs = 2;
	sp.client_cert = TLS_CCERT_ASK;
	sp.ca_file = files.ca;
	ring = tls_ticket_ring_new();
	sc = tls_server_ctx_new(&sp, ring, &bad, err, sizeof(err));
	cctx = SSL_CTX_new(TLS_client_method());
	backend[0] = tls_client_ctx_new(
		&(struct tls_client_spec){.name = "fuzz", .verify = true,
					  .ca_file = files.ca},
		err, sizeof(err));
	backend[1] = tls_client_ctx_new(
		&(struct tls_client_spec){
			.name = "fuzz",
			.fingerprint = "00112233445566778899aabbccddeeff"
				       "00112233445566778899aabbccddeeff"},
		err, sizeof(err));
	backend[2] = tls_client_ctx_new(&(struct tls_client_spec){.name = "f"},
					err, sizeof(err));
	if (sc == NULL || cctx == NULL || !backend[0] || !backend[1] ||
	    !backend[2]) {
		fprintf(stderr, "fuzz_tls: %s\n", err);
		abort();
	}
	return 0;
}

static void drain(struct tls_session *s, SSL *c)
{
	static char buf[65536];
	size_t n;

	while ((n = tls_session_take_output(s, buf, sizeof(buf))) > 0)
		if (c)
			BIO_write(SSL_get_rbio(c), buf, (int)n);
}

/* A real client's handshake with s. NULL if it did not complete. */
static SSL *handshake(struct tls_session *s, int tls12)
{
	static char buf[65536];
	SSL *c = SSL_new(cctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());

	BIO_set_mem_eof_return(r, -1);
	SSL_set_bio(c, r, w);
	SSL_set_connect_state(c);
	SSL_set_tlsext_host_name(c, "mx.test");
	if (tls12)
		SSL_set_max_proto_version(c, TLS1_2_VERSION);
	for (int i = 0; i < 8; i++) {
		int n;

		if (SSL_do_handshake(c) == 1)
			SSL_read(c, buf, sizeof(buf));
		ERR_clear_error();
		while ((n = BIO_read(w, buf, sizeof(buf))) > 0)
			tls_session_feed(s, buf, (size_t)n);
		tls_session_handshake(s);
		drain(s, c);
	}
	if (tls_session_state(s) != TLS_ST_OPEN) {
		SSL_free(c);
		return NULL;
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct tls_session *s;
	SSL *c = NULL;
	uint8_t mode;
	size_t off = 1;
	static char plain[4096];

	if (n < 1)
		return 0;
	mode = d[0];
	if (mode & 8) {
		s = tls_session_new_client(backend[(mode >> 4) % 3], "mx.test");
		if (s == NULL)
			return 0;
		if (tls_session_handshake(s) != TLS_ST_HANDSHAKE ||
		    tls_session_output_len(s) == 0)
			abort(); /* a ClientHello, always */
		drain(s, NULL);
	} else {
		s = tls_session_new_server(sc);
		if (s == NULL)
			return 0;
		if ((mode & 1) && (c = handshake(s, mode & 2)) == NULL)
			abort(); /* a genuine client must always get through */
	}
	while (off < n) {
		size_t len = d[off++];
		enum tls_state before = tls_session_state(s);
		ssize_t r;

		if (len > n - off)
			len = n - off;
		tls_session_feed(s, d + off, len);
		off += len;
		if (tls_session_state(s) == TLS_ST_HANDSHAKE)
			tls_session_handshake(s);
		do {
			r = tls_session_read(s, plain, sizeof(plain));
			if (r > (ssize_t)sizeof(plain))
				abort();
		} while (r > 0);
		if (before == TLS_ST_FAILED &&
		    tls_session_state(s) != TLS_ST_FAILED)
			abort();
		if (tls_session_output_len(s) > 4 * TLS_SESSION_MAX_BUFFERED)
			abort();
		drain(s, NULL);
	}
	if (mode & 4) {
		tls_session_feed_eof(s);
		tls_session_handshake(s);
		tls_session_read(s, plain, sizeof(plain));
	}
	if (tls_session_state(s) == TLS_ST_FAILED &&
	    tls_session_fail_reason(s) == TLS_FAIL_NONE)
		abort();
	if (tls_session_state(s) == TLS_ST_OPEN) {
		tls_session_write(s, "250 ok\r\n", 8);
		tls_session_shutdown(s);
		drain(s, NULL);
	}
	SSL_free(c);
	tls_session_free(s);
	return 0;
}
