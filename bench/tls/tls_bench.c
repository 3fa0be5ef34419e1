/*
 * tls_bench.c - server-side TLS handshakes per second per thread through
 * tls_session (the work a handshake job does on a worker), for ECDSA
 * P-256 and RSA 2048 certificates, full and resumed (TLS 1.3 tickets,
 * X25519). The in-memory OpenSSL client runs on the same thread; only
 * the CPU time spent in server calls (CLOCK_THREAD_CPUTIME_ID around
 * them) is counted, so the client's work and other load on the machine
 * do not enter the figure. Prints JSON.
 * usage: tls_bench SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

#include "tests/unit/tls/tls_testcerts.h"
#include "tls/tls_ctx.h"
#include "tls/tls_session.h"

static double server_cpu; /* seconds in server calls */

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One handshake; returns 1 resumed, 0 full, -1 failed. *sess_io: the
 * session to offer (NULL: none), replaced by the new one if asked. */
static int one(struct tls_server_ctx *sc, SSL_CTX *cctx,
	       SSL_SESSION **sess_io, int keep)
{
	static char buf[65536];
	SSL *c = SSL_new(cctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
	struct tls_session *s;
	struct tls_session_info in;
	double t0;
	int rc = -1;

	BIO_set_mem_eof_return(r, -1);
	SSL_set_bio(c, r, w);
	SSL_set_connect_state(c);
	SSL_set_tlsext_host_name(c, "mx.test");
	if (*sess_io)
		SSL_set_session(c, *sess_io);
	t0 = cpu_now();
	s = tls_session_new_server(sc);
	server_cpu += cpu_now() - t0;
	for (int i = 0; i < 8; i++) {
		int n;
		size_t m;

		if (SSL_do_handshake(c) == 1)
			SSL_read(c, buf, sizeof(buf)); /* the ticket */
		ERR_clear_error();
		n = BIO_read(w, buf, sizeof(buf));
		t0 = cpu_now();
		if (n > 0)
			tls_session_feed(s, buf, (size_t)n);
		tls_session_handshake(s);
		m = tls_session_take_output(s, buf, sizeof(buf));
		server_cpu += cpu_now() - t0;
		if (m)
			BIO_write(r, buf, (int)m);
		if (n <= 0 && m == 0 && SSL_is_init_finished(c))
			break;
	}
	if (tls_session_info(s, &in) == 0)
		rc = in.resumed ? 1 : 0;
	if (keep) {
		SSL_SESSION_free(*sess_io);
		*sess_io = SSL_get1_session(c);
	}
	SSL_shutdown(c);
	SSL_free(c);
	t0 = cpu_now();
	tls_session_free(s);
	server_cpu += cpu_now() - t0;
	return rc;
}

static void run(const char *name, const char *crt, const char *key,
		double secs, int last)
{
	struct tls_cert_spec cs = {crt, key, NULL};
	struct tls_server_spec sp = {.name = "bench", .certs = &cs,
				     .n_certs = 1};
	struct tls_ticket_ring *ring = tls_ticket_ring_new();
	char err[256];
	int bad;
	struct tls_server_ctx *sc =
		tls_server_ctx_new(&sp, ring, &bad, err, sizeof(err));
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_SESSION *sess = NULL;
	long full = 0, resumed = 0, bad_full = 0, bad_res = 0;
	double full_cpu, res_cpu;

	if (sc == NULL) {
		fprintf(stderr, "%s: %s\n", name, err);
		exit(1);
	}
	SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256");
	SSL_CTX_set1_groups_list(cctx, "X25519");
	server_cpu = 0;
	while (server_cpu < secs) {
		SSL_SESSION *none = NULL;

		if (one(sc, cctx, &none, 0) == 0)
			full++;
		else
			bad_full++;
	}
	full_cpu = server_cpu;
	one(sc, cctx, &sess, 1);
	server_cpu = 0;
	while (server_cpu < secs) {
		if (one(sc, cctx, &sess, 1) == 1)
			resumed++;
		else
			bad_res++;
	}
	res_cpu = server_cpu;
	printf("  \"%s\": {\"full_per_second\": %.0f, \"resumed_per_second\": "
	       "%.0f, \"full\": %ld, \"resumed\": %ld, \"not_full\": %ld, "
	       "\"not_resumed\": %ld}%s\n",
	       name, full / full_cpu, resumed / res_cpu, full, resumed,
	       bad_full, bad_res, last ? "" : ",");
	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
	tls_server_ctx_free(sc);
	tls_ticket_ring_free(ring);
}

/* ------------------------------------------------------------------
 * The public-key operations of one handshake, timed in this process
 * through the same EVP calls libssl makes for them (a context made per
 * operation, the algorithm fetched by name, as ssl_generate_pkey(),
 * ssl_derive() and tls_construct_cert_verify() do): X25519 key
 * generation and derivation, the CertificateVerify signature (130 bytes
 * signed, TLS 1.3's 64 spaces, context string and transcript hash) with
 * ECDSA-SHA256 and RSA-PSS-SHA256. `openssl speed` times the bare
 * primitive on a context made once; this is what a handshake can do at
 * best with OpenSSL's own per-operation overhead, so the gap between the
 * two is OpenSSL's and the gap to this bound is the rest of the
 * handshake (key schedule, transcript, records, allocation).
 */
static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (k == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	return k;
}

static int x25519_keygen(EVP_PKEY **out)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
	int ok = c && EVP_PKEY_keygen_init(c) == 1 &&
		 EVP_PKEY_keygen(c, out) == 1;

	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

static int x25519_derive(EVP_PKEY *ours, EVP_PKEY *peer)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
	unsigned char secret[64];
	size_t n = sizeof(secret);
	int ok = c && EVP_PKEY_derive_init(c) == 1 &&
		 EVP_PKEY_derive_set_peer(c, peer) == 1 &&
		 EVP_PKEY_derive(c, secret, &n) == 1;

	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

static int cert_verify_sign(EVP_PKEY *k, int pss)
{
	static unsigned char tbs[130];
	unsigned char sig[512];
	size_t n = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = m && EVP_DigestSignInit_ex(m, &pc, "SHA256", NULL, NULL, k,
					    NULL) == 1;

	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) ==
			     1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) ==
			     1;
	ok = ok && EVP_DigestSign(m, sig, &n, tbs, sizeof(tbs)) == 1;
	EVP_MD_CTX_free(m);
	return ok ? 0 : -1;
}

/* Operations per CPU second of op() run for secs. */
static double rate(int (*op)(void *), void *arg, double secs)
{
	double t0 = cpu_now(), t;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++)
			if (op(arg) < 0) {
				fprintf(stderr, "primitive failed\n");
				exit(1);
			}
		n += 16;
	} while ((t = cpu_now() - t0) < secs);
	return (double)n / t;
}

static EVP_PKEY *peer_share;

static int op_keygen(void *a)
{
	EVP_PKEY *k = NULL;
	int r = x25519_keygen(&k);

	(void)a;
	EVP_PKEY_free(k);
	return r;
}

static int op_derive(void *a)
{
	return x25519_derive(a, peer_share);
}

static int op_sign_ec(void *a)
{
	return cert_verify_sign(a, 0);
}

static int op_sign_rsa(void *a)
{
	return cert_verify_sign(a, 1);
}

static void primitives(const struct tc_files *f, double secs)
{
	EVP_PKEY *ec = load_key(f->ec_key), *rsa = load_key(f->rsa_key);
	EVP_PKEY *ours = NULL;

	if (x25519_keygen(&ours) < 0 || x25519_keygen(&peer_share) < 0)
		exit(1);
	printf("  \"primitives_per_second\": {\"x25519_keygen\": %.0f, "
	       "\"x25519_derive\": %.0f, \"ecdsa_p256_sha256_sign\": %.0f, "
	       "\"rsa2048_pss_sha256_sign\": %.0f},\n",
	       rate(op_keygen, NULL, secs), rate(op_derive, ours, secs),
	       rate(op_sign_ec, ec, secs), rate(op_sign_rsa, rsa, secs));
	EVP_PKEY_free(ours);
	EVP_PKEY_free(peer_share);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

int main(int argc, char **argv)
{
	struct tc_files f;
	double secs = argc > 1 ? atof(argv[1]) : 3;

	if (tls_global_init() < 0 || tc_make(&f) < 0)
		return 1;
	printf("{\n  \"openssl\": \"%s\",\n",
	       OpenSSL_version(OPENSSL_VERSION_STRING));
	primitives(&f, secs / 2);
	run("ecdsa_p256", f.ec_crt, f.ec_key, secs, 0);
	run("rsa_2048", f.rsa_crt, f.rsa_key, secs, 1);
	printf("}\n");
	tc_remove(&f);
	return 0;
}
