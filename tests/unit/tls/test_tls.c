/*
 * test_tls.c - tls/ against an in-memory OpenSSL client: handshakes
 * (TLS 1.3, 1.2), certificate choice by SNI and by the client's
 * signature algorithms, ticket resumption across context instances that
 * share a key ring, refused versions, garbage, 1-byte feeds,
 * renegotiation, truncation, minimum cipher bits, client certificates,
 * configuration errors, and the handshake as a worker-pool job.
 * Certificates are generated at run time (tls_testcerts.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "dataplane/workers/workers.h"
#include "tls/tls_ctx.h"
#include "tls/tls_job.h"
#include "tls/tls_mbuf.h"
#include "tls/tls_session.h"
#include "tls_testcerts.h"

static int failures;
#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",          \
				__FILE__, __LINE__, #c);                      \
			failures++;                                           \
		}                                                             \
	} while (0)

static struct tc_files F;
static struct tls_ticket_ring *ring;

/* ----------------------------------------------------------- helpers */

static struct tls_server_ctx *server(uint32_t min_bits,
				     enum tls_client_cert cc, int with_other)
{
	struct tls_cert_spec certs[3] = {
		{F.ec_crt, F.ec_key, NULL},
		{F.rsa_crt, F.rsa_key, NULL},
		{F.other_crt, F.other_key, NULL},
	};
	struct tls_server_spec sp = {
		.name = "mx",
		.certs = certs,
		.n_certs = with_other ? 3 : 2,
		.min_cipher_bits = min_bits,
		.client_cert = cc,
		.ca_file = F.ca,
	};
	char err[512] = "";
	int bad;
	struct tls_server_ctx *c = tls_server_ctx_new(&sp, ring, &bad, err,
						      sizeof(err));

	if (c == NULL)
		fprintf(stderr, "server ctx: %s\n", err);
	return c;
}

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
};

static void client_new(struct client *c, int maxv, const char *sni)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(c->ctx, maxv);
	SSL_CTX_load_verify_locations(c->ctx, F.ca, NULL);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	c->ssl = SSL_new(c->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	if (sni)
		SSL_set_tlsext_host_name(c->ssl, sni);
}

static void client_free(struct client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
}

/* Client output -> server, max bytes per feed (0 = all at once). */
static size_t to_server(struct client *c, struct tls_session *s, size_t step)
{
	char buf[65536];
	int n = BIO_read(c->wbio, buf, sizeof(buf));
	size_t moved = 0;

	for (int off = 0; n > 0 && off < n;) {
		size_t k = step ? step : (size_t)(n - off);

		if (k > (size_t)(n - off))
			k = (size_t)(n - off);
		tls_session_feed(s, buf + off, k);
		if (step && tls_session_state(s) == TLS_ST_HANDSHAKE) {
			tls_session_handshake(s);
			/* a partial hello never completes a handshake */
			if ((size_t)off + k < (size_t)n)
				CHECK(tls_session_state(s) !=
				      TLS_ST_OPEN);
		}
		off += (int)k;
		moved += k;
	}
	return moved;
}

static size_t to_client(struct tls_session *s, struct client *c)
{
	char buf[65536];
	size_t n, moved = 0;

	while ((n = tls_session_take_output(s, buf, sizeof(buf))) > 0) {
		BIO_write(c->rbio, buf, (int)n);
		moved += n;
	}
	return moved;
}

/* Runs both sides until neither moves. Returns the server's state. */
static enum tls_state pump(struct client *c, struct tls_session *s,
			   size_t step)
{
	for (int i = 0; i < 50; i++) {
		size_t moved;
		int r = SSL_do_handshake(c->ssl);

		if (r == 1) { /* read post-handshake messages (tickets) */
			char tmp[256];

			SSL_read(c->ssl, tmp, sizeof(tmp));
		}
		ERR_clear_error();
		moved = to_server(c, s, step);
		tls_session_handshake(s);
		moved += to_client(s, c);
		if (moved == 0)
			break;
	}
	return tls_session_state(s);
}

static void data_roundtrip(struct client *c, struct tls_session *s)
{
	char buf[256];
	ssize_t n;

	CHECK(SSL_write(c->ssl, "EHLO x\r\n", 8) == 8);
	to_server(c, s, 0);
	n = tls_session_read(s, buf, sizeof(buf));
	CHECK(n == 8 && memcmp(buf, "EHLO x\r\n", 8) == 0);
	CHECK(tls_session_read(s, buf, sizeof(buf)) == 0);
	CHECK(tls_session_write(s, "250 ok\r\n", 8) == 8);
	to_client(s, c);
	CHECK(SSL_read(c->ssl, buf, sizeof(buf)) == 8 &&
	      memcmp(buf, "250 ok\r\n", 8) == 0);
}

/* ------------------------------------------------------------- cases */

static void test_handshake(int maxv, const char *want)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct tls_session *s = tls_session_new_server(sc);
	struct tls_session_info in;
	struct client c;
	char buf[64];

	client_new(&c, maxv, "mx.test");
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	CHECK(SSL_is_init_finished(c.ssl));
	CHECK(SSL_get_verify_result(c.ssl) == X509_V_OK);
	CHECK(tls_session_info(s, &in) == 0);
	CHECK(strcmp(in.version, want) == 0);
	CHECK(!in.resumed && !in.peer_cert);
	CHECK(in.sni && strcmp(in.sni, "mx.test") == 0);
	CHECK(in.cipher_bits >= 128);
	data_roundtrip(&c, s);
	/* close_notify from the client: a clean end. */
	SSL_shutdown(c.ssl);
	to_server(&c, s, 0);
	CHECK(tls_session_read(s, buf, sizeof(buf)) == -EPIPE);
	CHECK(tls_session_state(s) == TLS_ST_CLOSED);
	tls_session_shutdown(s);
	CHECK(tls_session_output_len(s) > 0);
	client_free(&c);
	tls_session_free(s);
	tls_server_ctx_free(sc);
}

/* Which certificate: by SNI, and by the client's signature algorithms. */
static const char *chosen(struct tls_server_ctx *sc, const char *sni,
			  const char *sigalgs, char *subject, size_t len)
{
	struct tls_session *s = tls_session_new_server(sc);
	struct tls_session_info in;
	struct client c;
	const char *kt = "none";

	client_new(&c, TLS1_3_VERSION, sni);
	if (sigalgs)
		SSL_set1_sigalgs_list(c.ssl, sigalgs);
	subject[0] = '\0';
	if (pump(&c, s, 0) == TLS_ST_OPEN && tls_session_info(s, &in) == 0) {
		X509 *x = SSL_get0_peer_certificate(c.ssl);

		kt = in.cert_key_type;
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, subject, (int)len);
	}
	client_free(&c);
	tls_session_free(s);
	return kt;
}

static void test_cert_choice(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 1);
	char cn[128];

	CHECK(strcmp(chosen(sc, "mx.test", "ECDSA+SHA256", cn, sizeof(cn)),
		     "ECDSA") == 0);
	CHECK(strcmp(chosen(sc, "mx.test", "rsa_pss_rsae_sha256:RSA+SHA256",
			    cn, sizeof(cn)),
		     "RSA") == 0);
	CHECK(strcmp(cn, "mx.test") == 0);
	chosen(sc, "other.test", NULL, cn, sizeof(cn));
	CHECK(strcmp(cn, "other.test") == 0);
	chosen(sc, "a.other.test", NULL, cn, sizeof(cn)); /* wildcard */
	CHECK(strcmp(cn, "other.test") == 0);
	chosen(sc, "unknown.test", NULL, cn, sizeof(cn)); /* default */
	CHECK(strcmp(cn, "mx.test") == 0);
	chosen(sc, NULL, NULL, cn, sizeof(cn));
	CHECK(strcmp(cn, "mx.test") == 0);
	/* other.test has no RSA certificate: an RSA-only client fails. */
	CHECK(strcmp(chosen(sc, "other.test", "RSA+SHA256", cn, sizeof(cn)),
		     "none") == 0);
	CHECK(tls_server_ctx_n_certs(sc) == 3);
	CHECK(strcmp(tls_server_ctx_cert(sc, 1)->key_type, "RSA") == 0);
	CHECK(tls_server_ctx_cert(sc, 1)->key_bits == 2048);
	CHECK(strcmp(tls_server_ctx_cert(sc, 0)->names, "mx.test,smtp.test") ==
	      0);
	CHECK(tls_server_ctx_cert(sc, 0)->not_after > time(NULL) + 29 * 86400);
	CHECK(tls_server_ctx_cert(sc, 0)->not_after < time(NULL) + 31 * 86400);
	tls_server_ctx_free(sc);
}

/* Full handshake on a, resumption on b. Returns 1 resumed, 0 not, -1
 * failed. */
static int resume(struct tls_server_ctx *a, struct tls_server_ctx *b,
		  int maxv, void (*between)(void))
{
	struct tls_session *s = tls_session_new_server(a);
	struct tls_session_info in;
	SSL_SESSION *sess;
	struct client c;
	int rc = -1;

	client_new(&c, maxv, "mx.test");
	if (pump(&c, s, 0) != TLS_ST_OPEN)
		goto out;
	sess = SSL_get1_session(c.ssl);
	/* OpenSSL spoils the session of an SSL freed without shutdown */
	SSL_shutdown(c.ssl);
	client_free(&c);
	tls_session_free(s);
	if (between)
		between();
	s = tls_session_new_server(b);
	client_new(&c, maxv, "mx.test");
	SSL_set_session(c.ssl, sess);
	SSL_SESSION_free(sess);
	if (pump(&c, s, 0) == TLS_ST_OPEN && tls_session_info(s, &in) == 0) {
		rc = in.resumed ? 1 : 0;
		CHECK(in.resumed == (SSL_session_reused(c.ssl) == 1));
	}
out:
	client_free(&c);
	tls_session_free(s);
	return rc;
}

static void rotate(void)
{
	CHECK(tls_ticket_ring_rotate(ring) == 0);
}

static void rotate_all(void)
{
	for (int i = 0; i < TLS_TICKET_KEYS; i++)
		rotate();
}

static void test_resumption(void)
{
	struct tls_server_ctx *a = server(0, TLS_CCERT_OFF, 0);
	struct tls_server_ctx *b = server(0, TLS_CCERT_OFF, 0);
	struct tls_ticket_ring *own = tls_ticket_ring_new();
	struct tls_server_ctx *c = server(0, TLS_CCERT_OFF, 0);

	tls_server_ctx_set_ring(c, own);
	/* no ring: handshakes work, nothing resumes */
	tls_server_ctx_set_ring(b, NULL);
	CHECK(resume(b, b, TLS1_3_VERSION, NULL) == 0);
	CHECK(resume(b, b, TLS1_2_VERSION, NULL) == 0);
	tls_server_ctx_set_ring(b, ring);
	CHECK(resume(a, a, TLS1_3_VERSION, NULL) == 1);
	CHECK(resume(a, b, TLS1_3_VERSION, NULL) == 1); /* other instance */
	CHECK(resume(a, b, TLS1_2_VERSION, NULL) == 1);
	CHECK(resume(a, b, TLS1_3_VERSION, rotate) == 1); /* older key */
	CHECK(resume(a, b, TLS1_3_VERSION, rotate_all) == 0); /* expired */
	CHECK(resume(a, c, TLS1_3_VERSION, NULL) == 0); /* other ring */
	CHECK(tls_ticket_ring_generation(ring) >= 1 + 1 + TLS_TICKET_KEYS);
	tls_ticket_ring_free(own);
	tls_server_ctx_free(a);
	tls_server_ctx_free(b);
	tls_server_ctx_free(c);
}

/* A ClientHello offering only version v (record version 0x0301). */
static size_t raw_hello(unsigned char *b, unsigned v)
{
	static const unsigned char suites[] = {0x00, 0x2f, 0x00, 0x35,
					       0xc0, 0x13, 0x00, 0xff};
	size_t n = 0, hs, body;

	b[n++] = 0x16, b[n++] = 0x03, b[n++] = v == 0x0300 ? 0x00 : 0x01;
	n += 2; /* record length */
	hs = n;
	b[n++] = 0x01; /* client_hello */
	n += 3;
	body = n;
	b[n++] = (unsigned char)(v >> 8), b[n++] = (unsigned char)v;
	memset(b + n, 0x42, 32), n += 32; /* random */
	b[n++] = 0;			   /* session id */
	b[n++] = 0, b[n++] = sizeof(suites);
	memcpy(b + n, suites, sizeof(suites)), n += sizeof(suites);
	b[n++] = 1, b[n++] = 0; /* compression: null */
	b[3] = (unsigned char)((n - hs) >> 8), b[4] = (unsigned char)(n - hs);
	b[hs + 1] = 0, b[hs + 2] = (unsigned char)((n - body) >> 8),
	b[hs + 3] = (unsigned char)(n - body);
	return n;
}

static enum tls_fail feed_raw(struct tls_server_ctx *sc, const void *b,
			      size_t n)
{
	struct tls_session *s = tls_session_new_server(sc);
	enum tls_fail f;

	tls_session_feed(s, b, n);
	CHECK(tls_session_handshake(s) == TLS_ST_FAILED);
	f = tls_session_fail_reason(s);
	/* an alert goes back, or nothing: never a ServerHello */
	CHECK(tls_session_output_len(s) < 16);
	tls_session_free(s);
	return f;
}

static void test_refusals(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	unsigned char b[512];
	size_t n;

	n = raw_hello(b, 0x0300);
	CHECK(feed_raw(sc, b, n) == TLS_FAIL_VERSION);
	n = raw_hello(b, 0x0301);
	CHECK(feed_raw(sc, b, n) == TLS_FAIL_VERSION);
	n = raw_hello(b, 0x0302);
	CHECK(feed_raw(sc, b, n) == TLS_FAIL_VERSION);
	CHECK(feed_raw(sc, "EHLO example.com\r\n", 18) == TLS_FAIL_PROTOCOL);
	memset(b, 0x16, sizeof(b));
	CHECK(feed_raw(sc, b, sizeof(b)) == TLS_FAIL_PROTOCOL);
	/* and a real client capped at TLS 1.1 */
	{
		struct tls_session *s = tls_session_new_server(sc);
		struct client c;

		client_new(&c, TLS1_1_VERSION, "mx.test");
		SSL_set_security_level(c.ssl, 0);
		SSL_set_cipher_list(c.ssl, "DEFAULT:@SECLEVEL=0");
		CHECK(pump(&c, s, 0) == TLS_ST_FAILED);
		CHECK(tls_session_fail_reason(s) == TLS_FAIL_VERSION);
		client_free(&c);
		tls_session_free(s);
	}
	/* the input bound */
	{
		struct tls_session *s = tls_session_new_server(sc);
		static unsigned char big[TLS_SESSION_MAX_BUFFERED + 1];

		CHECK(tls_session_feed(s, big, sizeof(big)) == -ENOBUFS);
		CHECK(tls_session_fail_reason(s) == TLS_FAIL_OVERFLOW);
		tls_session_free(s);
	}
	tls_server_ctx_free(sc);
}

/* The client's flight fed from a chain of three fake mbufs (no EAL:
 * only buf_addr, data_off, data_len and next are read), from an offset
 * inside the first segment. */
static void test_mbuf_feed(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct tls_session *s = tls_session_new_server(sc);
	struct rte_mbuf m[3];
	static char seg[3][2048];
	char hello[4096];
	struct client c;
	int n, cut1, cut2;

	client_new(&c, TLS1_3_VERSION, "mx.test");
	SSL_do_handshake(c.ssl);
	ERR_clear_error();
	n = BIO_read(c.wbio, hello, sizeof(hello));
	CHECK(n > 100);
	cut1 = n / 3, cut2 = 2 * n / 3;
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 3; i++) {
		m[i].buf_addr = seg[i];
		m[i].data_off = 64;
		m[i].next = i < 2 ? &m[i + 1] : NULL;
	}
	memcpy(seg[0] + 64, "XXXXX", 5); /* skipped by off */
	memcpy(seg[0] + 69, hello, (size_t)cut1);
	m[0].data_len = (uint16_t)(5 + cut1);
	memcpy(seg[1] + 64, hello + cut1, (size_t)(cut2 - cut1));
	m[1].data_len = (uint16_t)(cut2 - cut1);
	memcpy(seg[2] + 64, hello + cut2, (size_t)(n - cut2));
	m[2].data_len = (uint16_t)(n - cut2 + 7); /* 7 more bytes: not fed */
	CHECK(tls_session_feed_mbuf(s, m, 5, (uint32_t)n) == n);
	CHECK(tls_session_handshake(s) == TLS_ST_HANDSHAKE);
	to_client(s, &c);
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	client_free(&c);
	tls_session_free(s);
	tls_server_ctx_free(sc);
}

/* A reload frees the context while a handshake is in flight: the
 * session finishes on it (SNI and ticket callbacks included; ASan would
 * see a use after free). */
static void test_ctx_outlived(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 1);
	struct tls_session *s = tls_session_new_server(sc);
	struct tls_session_info in;
	struct client c;
	char cn[64] = "";

	tls_server_ctx_free(sc);
	client_new(&c, TLS1_3_VERSION, "a.other.test");
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	CHECK(tls_session_info(s, &in) == 0);
	X509_NAME_get_text_by_NID(
		X509_get_subject_name(SSL_get0_peer_certificate(c.ssl)),
		NID_commonName, cn, sizeof(cn));
	CHECK(strcmp(cn, "other.test") == 0);
	client_free(&c);
	tls_session_free(s);
}

static void test_one_byte_feeds(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct tls_session *s = tls_session_new_server(sc);
	struct client c;

	client_new(&c, TLS1_3_VERSION, "mx.test");
	CHECK(pump(&c, s, 1) == TLS_ST_OPEN);
	data_roundtrip(&c, s);
	client_free(&c);
	tls_session_free(s);
	tls_server_ctx_free(sc);
}

static void test_renegotiation_and_truncation(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct tls_session *s = tls_session_new_server(sc);
	struct client c;
	char buf[64];

	client_new(&c, TLS1_2_VERSION, "mx.test");
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	CHECK(SSL_renegotiate(c.ssl) == 1);
	SSL_do_handshake(c.ssl);
	ERR_clear_error();
	CHECK(to_server(&c, s, 0) > 0);
	CHECK(tls_session_read(s, buf, sizeof(buf)) == -EPROTO);
	CHECK(tls_session_fail_reason(s) == TLS_FAIL_RENEGOTIATION);
	client_free(&c);
	tls_session_free(s);

	/* FIN without close_notify, after the handshake and during it */
	s = tls_session_new_server(sc);
	client_new(&c, TLS1_3_VERSION, "mx.test");
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	tls_session_feed_eof(s);
	CHECK(tls_session_read(s, buf, sizeof(buf)) == -EPROTO);
	CHECK(tls_session_fail_reason(s) == TLS_FAIL_TRUNCATED);
	client_free(&c);
	tls_session_free(s);
	s = tls_session_new_server(sc);
	client_new(&c, TLS1_3_VERSION, "mx.test");
	SSL_do_handshake(c.ssl);
	{
		char h[64];
		int n = BIO_read(c.wbio, h, 40); /* a partial hello */

		tls_session_feed(s, h, (size_t)n);
	}
	CHECK(tls_session_handshake(s) == TLS_ST_HANDSHAKE);
	tls_session_feed_eof(s);
	CHECK(tls_session_handshake(s) == TLS_ST_FAILED);
	CHECK(tls_session_fail_reason(s) == TLS_FAIL_TRUNCATED);
	client_free(&c);
	tls_session_free(s);
	tls_server_ctx_free(sc);
}

static void test_min_bits(void)
{
	struct tls_server_ctx *sc = server(256, TLS_CCERT_OFF, 0);
	struct tls_session *s = tls_session_new_server(sc);
	struct client c;

	client_new(&c, TLS1_3_VERSION, "mx.test");
	SSL_set_ciphersuites(c.ssl, "TLS_AES_128_GCM_SHA256");
	CHECK(pump(&c, s, 0) == TLS_ST_FAILED);
	CHECK(tls_session_fail_reason(s) == TLS_FAIL_WEAK_CIPHER);
	client_free(&c);
	tls_session_free(s);
	s = tls_session_new_server(sc);
	client_new(&c, TLS1_3_VERSION, "mx.test");
	SSL_set_ciphersuites(c.ssl, "TLS_AES_256_GCM_SHA384");
	CHECK(pump(&c, s, 0) == TLS_ST_OPEN);
	client_free(&c);
	tls_session_free(s);
	tls_server_ctx_free(sc);
}

static void use_client_cert(struct client *c, const char *crt,
			    const char *key)
{
	CHECK(SSL_use_certificate_file(c->ssl, crt, SSL_FILETYPE_PEM) == 1);
	CHECK(SSL_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) == 1);
}

static enum tls_state with_cert(struct tls_server_ctx *sc, int maxv,
				const char *crt, const char *key,
				struct tls_session_info *in)
{
	struct tls_session *s = tls_session_new_server(sc);
	struct client c;
	enum tls_state st;

	client_new(&c, maxv, "mx.test");
	if (crt)
		use_client_cert(&c, crt, key);
	st = pump(&c, s, 0);
	memset(in, 0, sizeof(*in));
	tls_session_info(s, in);
	if (st == TLS_ST_FAILED)
		CHECK(tls_session_fail_reason(s) == TLS_FAIL_PEER_CERT);
	client_free(&c);
	tls_session_free(s);
	return st;
}

static void test_client_certs(void)
{
	struct tls_server_ctx *req = server(0, TLS_CCERT_REQUIRE, 0);
	struct tls_server_ctx *ask = server(0, TLS_CCERT_ASK, 0);
	struct tls_session_info in;
	char fp[100];

	tc_fingerprint(F.cli_crt, 0, fp);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		CHECK(with_cert(req, v, F.cli_crt, F.cli_key, &in) ==
		      TLS_ST_OPEN);
		CHECK(in.peer_cert && in.peer_verified);
		CHECK(strstr(in.peer_subject, "CN=partner.example") != NULL);
		CHECK(strcmp(in.peer_sha256, fp) == 0);
		/* the Received: comment's names, worked out at handshake
		 * end (Postfix: Client CN "...", Issuer "...") */
		CHECK(strcmp(in.peer_cn, "partner.example") == 0);
		CHECK(strcmp(in.peer_issuer_cn, "mxgate test CA") == 0);
		CHECK(with_cert(req, v, F.bad_crt, F.bad_key, &in) ==
		      TLS_ST_FAILED);
		CHECK(with_cert(req, v, NULL, NULL, &in) == TLS_ST_FAILED);
		CHECK(with_cert(ask, v, F.bad_crt, F.bad_key, &in) ==
		      TLS_ST_OPEN);
		CHECK(in.peer_cert && !in.peer_verified);
		CHECK(strcmp(in.peer_issuer_cn, "unknown CA") == 0);
		CHECK(with_cert(ask, v, NULL, NULL, &in) == TLS_ST_OPEN);
		CHECK(in.peer_cn[0] == '\0' && in.peer_sha256[0] == '\0');
		CHECK(!in.peer_cert);
		CHECK(with_cert(ask, v, F.cli_crt, F.cli_key, &in) ==
		      TLS_ST_OPEN);
		CHECK(in.peer_cert && in.peer_verified);
		/* a CN made to break the Received: comment and the log
		 * line: only printable ASCII survives, '"' and '\\' too
		 * become '?'; the RFC 2253 subject escapes them */
		CHECK(with_cert(ask, v, F.evil_crt, F.evil_key, &in) ==
		      TLS_ST_OPEN);
		CHECK(strcmp(in.peer_cn, "evil???X-Injected: 1?") == 0);
		CHECK(strpbrk(in.peer_subject, "\r\n") == NULL);
	}
	tls_server_ctx_free(req);
	tls_server_ctx_free(ask);
}

static void expect_load_error(const struct tls_cert_spec *certs, uint32_t n,
			      const char *ciphers, int want_bad,
			      const char *want)
{
	struct tls_server_spec sp = {.name = "mx",
				     .certs = certs,
				     .n_certs = n,
				     .ciphers = ciphers};
	char err[512] = "";
	int bad = 99;
	struct tls_server_ctx *c = tls_server_ctx_new(&sp, ring, &bad, err,
						      sizeof(err));

	CHECK(c == NULL);
	CHECK(bad == want_bad);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
		failures++;
	}
	tls_server_ctx_free(c);
}

static void test_load_errors(void)
{
	struct tls_cert_spec mism[] = {{F.ec_crt, F.ec_key, NULL},
				       {F.rsa_crt, F.ec_key, NULL}};
	struct tls_cert_spec garb[] = {{F.ec_crt, F.garbage, NULL}};
	struct tls_cert_spec nocert[] = {{F.garbage, F.ec_key, NULL}};
	struct tls_cert_spec nofile[] = {{"/nonexistent.pem", F.ec_key, NULL}};
	struct tls_cert_spec badchain[] = {{F.ec_crt, F.ec_key, F.garbage}};
	struct tls_cert_spec twice[] = {{F.ec_crt, F.ec_key, NULL},
					{F.ec_crt, F.ec_key, NULL}};
	struct tls_cert_spec ok[] = {{F.ec_crt, F.ec_key, F.ca}};

	expect_load_error(mism, 2, NULL, 1, "does not match the certificate");
	expect_load_error(garb, 1, NULL, 0, "cannot read a PEM private key");
	expect_load_error(nocert, 1, NULL, 0, "cannot read a PEM certificate");
	expect_load_error(nofile, 1, NULL, 0, "/nonexistent.pem");
	expect_load_error(badchain, 1, NULL, 0, "certificates[0].chain");
	expect_load_error(twice, 2, NULL, 1, "a second ECDSA certificate");
	expect_load_error(ok, 1, "AES128-SHA", -1, "not forward secret");
	expect_load_error(ok, 1, "ECDHE+AESGCM:aNULL", -1,
			  "not forward secret");
	expect_load_error(ok, 1, "NOSUCHCIPHER", -1, "selects no cipher");
	/* A chain file is accepted */
	{
		struct tls_server_spec sp = {.name = "mx", .certs = ok,
					     .n_certs = 1};
		char err[256];
		int bad;
		struct tls_server_ctx *c =
			tls_server_ctx_new(&sp, ring, &bad, err, sizeof(err));

		CHECK(c != NULL);
		tls_server_ctx_free(c);
	}
}

/* Backend side: our client session against our server session. */
static void test_client_side(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct tls_client_spec good = {.name = "p", .verify = true,
				       .ca_file = F.ca};
	struct tls_client_spec opp = {.name = "p", .verify = false};
	char err[256];
	struct tls_client_ctx *cv = tls_client_ctx_new(&good, err, sizeof(err));
	struct tls_client_ctx *co = tls_client_ctx_new(&opp, err, sizeof(err));
	const struct {
		struct tls_client_ctx *c;
		const char *name;
		enum tls_state want;
	} cases[] = {
		{cv, "mx.test", TLS_ST_OPEN},
		{cv, "wrong.test", TLS_ST_FAILED},
		{co, "wrong.test", TLS_ST_OPEN},
	};

	CHECK(cv && co);
	for (size_t i = 0; cv && co && i < 3; i++) {
		struct tls_session *srv = tls_session_new_server(sc);
		struct tls_session *cli =
			tls_session_new_client(cases[i].c, cases[i].name);
		char buf[32768];

		for (int k = 0; k < 20; k++) {
			size_t n;

			tls_session_handshake(cli);
			n = tls_session_take_output(cli, buf, sizeof(buf));
			tls_session_feed(srv, buf, n);
			tls_session_handshake(srv);
			n = tls_session_take_output(srv, buf, sizeof(buf));
			tls_session_feed(cli, buf, n);
		}
		CHECK(tls_session_state(cli) == cases[i].want);
		if (cases[i].want == TLS_ST_FAILED)
			CHECK(tls_session_fail_reason(cli) ==
			      TLS_FAIL_PEER_CERT);
		tls_session_free(srv);
		tls_session_free(cli);
	}
	tls_client_ctx_free(cv);
	tls_client_ctx_free(co);
	tls_server_ctx_free(sc);
}

/* ------------------------------------------------ worker-pool jobs */

static int completed, released;

static void job_complete(struct tls_hs_job *j)
{
	(void)j;
	completed++;
}

static void job_release(struct tls_hs_job *j)
{
	released++;
	free(j);
}

static void test_jobs(void)
{
	struct tls_server_ctx *sc = server(0, TLS_CCERT_OFF, 0);
	struct workers_config wc;
	struct worker_pool *p;
	struct tls_hs_job *j;
	struct client c;
	volatile int sleeping = 0;
	int err;

	workers_config_defaults(&wc);
	wc.threads = 2;
	wc.n_cores = 1;
	wc.ring_size = 64;
	p = workers_create(&wc, &err);
	CHECK(p != NULL);
	if (p == NULL)
		return;
	workers_attach_core(p, 0, -1, &sleeping);

	/* A full handshake, one step per job, the core feeding between. */
	client_new(&c, TLS1_3_VERSION, "mx.test");
	j = calloc(1, sizeof(*j));
	tls_hs_job_init(j, tls_session_new_server(sc), &c, job_complete,
			job_release);
	for (int step = 0; step < 10 && j->result != TLS_ST_OPEN; step++) {
		int before = completed;

		SSL_do_handshake(c.ssl);
		ERR_clear_error();
		to_server(&c, j->sess, 0);
		CHECK(tls_hs_job_submit(p, 0, j) == 0);
		while (completed == before)
			if (workers_poll(p, 0, 8) == 0)
				usleep(100);
		to_client(j->sess, &c);
	}
	CHECK(j->result == TLS_ST_OPEN);
	CHECK(SSL_do_handshake(c.ssl) == 1);
	data_roundtrip(&c, j->sess); /* back on the core, inline */
	tls_session_free(j->sess);
	free(j);
	client_free(&c);

	/* Connections that die with their job in flight: dropped, the
	 * session freed by drop (ASan/LSan would see a leak). */
	for (int i = 0; i < 32; i++) {
		j = calloc(1, sizeof(*j));
		client_new(&c, TLS1_3_VERSION, "mx.test");
		SSL_do_handshake(c.ssl);
		tls_hs_job_init(j, tls_session_new_server(sc), &c,
				job_complete, job_release);
		to_server(&c, j->sess, 0);
		CHECK(tls_hs_job_submit(p, 0, j) == 0);
		tls_hs_job_abandon(j); /* the connection closes now */
		client_free(&c);
	}
	while (workers_in_flight(p, 0) > 0)
		if (workers_poll(p, 0, 64) == 0)
			usleep(100);
	CHECK(released == 32);
	workers_destroy(p);
	tls_server_ctx_free(sc);
}

int main(void)
{
	if (tls_global_init() < 0 || tc_make(&F) < 0) {
		fprintf(stderr, "cannot make test certificates\n");
		return 1;
	}
	ring = tls_ticket_ring_new();
	test_handshake(TLS1_3_VERSION, "TLSv1.3");
	test_handshake(TLS1_2_VERSION, "TLSv1.2");
	test_cert_choice();
	test_resumption();
	test_refusals();
	test_one_byte_feeds();
	test_mbuf_feed();
	test_ctx_outlived();
	test_renegotiation_and_truncation();
	test_min_bits();
	test_client_certs();
	test_load_errors();
	test_client_side();
	test_jobs();
	tls_ticket_ring_free(ring);
	tc_remove(&F);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("test_tls: all checks passed\n");
	return failures ? 1 : 0;
}
