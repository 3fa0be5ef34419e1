/*
 * tls_ctx.c - listener and backend TLS contexts, SNI selection, the
 * session-ticket key ring (see tls_ctx.h for the contract).
 *
 * Threads: contexts are built and freed on the main lcore and read-only
 * in between; the SNI and ticket callbacks run inside handshakes (worker
 * threads). The ticket ring's rwlock is the only lock, taken only inside
 * handshakes and by the control plane's rotation.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"
#include "tls/tls_internal.h"

/* ------------------------------------------------------------ globals */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;

static void init_once_fn(void)
{
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
				 OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
			 NULL);
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int tls_ctx_ex_index(void)
{
	return ex_index;
}

int tls_global_init(void)
{
	pthread_once(&init_once, init_once_fn);
	return ex_index >= 0 ? 0 : -ENOMEM;
}

/* ------------------------------------------------------- ticket ring */

struct tls_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	bool set;
};

struct tls_ticket_ring {
	pthread_rwlock_t lock;
	struct tls_ticket_key k[TLS_TICKET_KEYS];
	unsigned cur;
	uint64_t generation;
};

struct tls_ticket_ring *tls_ticket_ring_new(void)
{
	struct tls_ticket_ring *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	pthread_rwlock_init(&r->lock, NULL);
	if (tls_ticket_ring_rotate(r) < 0) {
		tls_ticket_ring_free(r);
		return NULL;
	}
	return r;
}

void tls_ticket_ring_free(struct tls_ticket_ring *r)
{
	if (r == NULL)
		return;
	pthread_rwlock_destroy(&r->lock);
	OPENSSL_cleanse(r->k, sizeof(r->k));
	free(r);
}

int tls_ticket_ring_rotate(struct tls_ticket_ring *r)
{
	struct tls_ticket_key k;
	unsigned next;

	if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
	    RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
	    RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
		return -EIO;
	k.set = true;
	pthread_rwlock_wrlock(&r->lock);
	next = r->generation == 0 ? 0 : (r->cur + 1) % TLS_TICKET_KEYS;
	r->k[next] = k;
	r->cur = next;
	r->generation++;
	pthread_rwlock_unlock(&r->lock);
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

uint64_t tls_ticket_ring_generation(const struct tls_ticket_ring *r)
{
	uint64_t g;

	pthread_rwlock_rdlock((pthread_rwlock_t *)&r->lock);
	g = r->generation;
	pthread_rwlock_unlock((pthread_rwlock_t *)&r->lock);
	return g;
}

static int ticket_mac_init(EVP_MAC_CTX *h, unsigned char *key)
{
	OSSL_PARAM p[3];

	p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						(char *)"SHA256", 0);
	p[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(h, p) == 1 ? 0 : -1;
}

/* RFC 5077 4 layout (key name, IV, AES-256-CBC, HMAC-SHA256), used by
 * OpenSSL for TLS 1.2 and 1.3 tickets alike. Returns 1 (a new ticket
 * made), 2 (use and renew: every ticket we accept), 0 (unknown key: full
 * handshake), -1 (error). Always renewed: a TLS 1.3 client uses a ticket
 * once (RFC 8446 C.4; OpenSSL's client does) and OpenSSL's server sends
 * none after a resumption unless asked, so without it every other
 * reconnection was a full handshake; a TLS 1.2 client gets a ticket
 * under the current key. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_server_ctx *sc =
		SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
	struct tls_ticket_ring *r = sc ? sc->ring : NULL;
	int ret = 0;

	if (r == NULL) /* no ring attached: no tickets (an empty one) */
		return 0;
	pthread_rwlock_rdlock(&r->lock);
	if (enc) {
		struct tls_ticket_key *k = &r->k[r->cur];

		memcpy(name, k->name, 16);
		ret = RAND_bytes(iv, 16) == 1 &&
				      EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(),
							 NULL, k->aes, iv) == 1 &&
				      ticket_mac_init(hctx, k->hmac) == 0
			      ? 1
			      : -1;
	} else {
		for (unsigned i = 0; i < TLS_TICKET_KEYS; i++) {
			struct tls_ticket_key *k = &r->k[i];

			if (!k->set || memcmp(name, k->name, 16) != 0)
				continue;
			if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
					       k->aes, iv) != 1 ||
			    ticket_mac_init(hctx, k->hmac) != 0)
				ret = -1;
			else
				ret = 2;
			break;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return ret;
}

/* ----------------------------------------------------- certificates */

/* One certificate file, its key and chain, read before grouping. */
struct loaded {
	X509 *x;
	EVP_PKEY *pk;
	STACK_OF(X509) *chain;
	char **names;
	uint32_t n_names;
};

static void errf(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* The most useful OpenSSL reason on the queue, then clears it. */
static const char *ossl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static int add_name(struct loaded *l, const char *n, size_t len)
{
	char **v;
	char *s;

	if (len == 0 || len > 253 || memchr(n, '\0', len))
		return 0;
	v = realloc(l->names, (l->n_names + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	l->names = v;
	s = strndup(n, len);
	if (s == NULL)
		return -ENOMEM;
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	v[l->n_names++] = s;
	return 0;
}

/* DNS names of the subjectAltName, else the subject CN. */
static int cert_names(struct loaded *l)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(l->x, NID_subject_alt_name,
					      NULL, NULL);
	int rc = 0;

	for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == GEN_DNS && rc == 0)
			rc = add_name(l, (const char *)ASN1_STRING_get0_data(
						 g->d.dNSName),
				      (size_t)ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(san);
	if (rc == 0 && l->n_names == 0) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(l->x),
						  NID_commonName, cn,
						  sizeof(cn));

		if (n > 0)
			rc = add_name(l, cn, (size_t)n);
	}
	return rc;
}

static void loaded_free(struct loaded *l)
{
	X509_free(l->x);
	EVP_PKEY_free(l->pk);
	sk_X509_pop_free(l->chain, X509_free);
	for (uint32_t i = 0; i < l->n_names; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

const char *tls_key_type_name(const EVP_PKEY *pk)
{
	switch (pk ? EVP_PKEY_get_base_id(pk) : 0) {
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_EC:
		return "ECDSA";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	case EVP_PKEY_ED448:
		return "Ed448";
	default:
		return "unknown";
	}
}

static int read_chain_file(const char *path, STACK_OF(X509) *chain)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;
	int n = 0;

	if (b == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			BIO_free(b);
			return -1;
		}
		n++;
	}
	ERR_clear_error(); /* the end of the file */
	BIO_free(b);
	return n;
}

/* Reads spec into l and checks the key matches. 0 or -1 with err. */
static int load_cert(const struct tls_cert_spec *spec, uint32_t idx,
		     struct loaded *l, struct tls_cert_info *info, char *err,
		     size_t errlen)
{
	char why[256];
	BIO *b;
	time_t t;
	struct tm tm;
	const ASN1_TIME *na;

	memset(l, 0, sizeof(*l));
	b = BIO_new_file(spec->cert, "r");
	if (b == NULL || (l->x = PEM_read_bio_X509(b, NULL, NULL, NULL)) ==
				 NULL) {
		errf(err, errlen,
		     "certificates[%u].cert: cannot read a PEM certificate "
		     "from \"%s\": %s",
		     idx, spec->cert, ossl_reason(why, sizeof(why)));
		BIO_free(b);
		return -1;
	}
	BIO_free(b);
	l->chain = sk_X509_new_null();
	if (l->chain == NULL ||
	    read_chain_file(spec->cert, l->chain) < 1 /* leaf counted */) {
		errf(err, errlen, "certificates[%u].cert: \"%s\": %s", idx,
		     spec->cert, ossl_reason(why, sizeof(why)));
		return -1;
	}
	/* The first entry is the leaf again: drop it. */
	X509_free(sk_X509_shift(l->chain));
	if (spec->chain && spec->chain[0] &&
	    read_chain_file(spec->chain, l->chain) < 1) {
		errf(err, errlen,
		     "certificates[%u].chain: no PEM certificate in \"%s\": "
		     "%s",
		     idx, spec->chain, ossl_reason(why, sizeof(why)));
		return -1;
	}
	b = BIO_new_file(spec->key, "r");
	if (b == NULL ||
	    (l->pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		errf(err, errlen,
		     "certificates[%u].key: cannot read a PEM private key "
		     "from \"%s\": %s",
		     idx, spec->key, ossl_reason(why, sizeof(why)));
		BIO_free(b);
		return -1;
	}
	BIO_free(b);
	if (X509_check_private_key(l->x, l->pk) != 1) {
		ERR_clear_error();
		errf(err, errlen,
		     "certificates[%u].key: the key in \"%s\" does not match "
		     "the certificate in \"%s\" (the private key of that "
		     "certificate)",
		     idx, spec->key, spec->cert);
		return -1;
	}
	if (cert_names(l) < 0 || l->n_names == 0) {
		errf(err, errlen,
		     "certificates[%u].cert: \"%s\" names no host (a "
		     "certificate with DNS subjectAltNames or a CN)",
		     idx, spec->cert);
		return -1;
	}
	memset(info, 0, sizeof(*info));
	X509_NAME_oneline(X509_get_subject_name(l->x), info->subject,
			  sizeof(info->subject));
	for (uint32_t i = 0, n = 0; i < l->n_names; i++)
		n += (uint32_t)snprintf(info->names + n,
					n < sizeof(info->names)
						? sizeof(info->names) - n
						: 0,
					"%s%s", i ? "," : "", l->names[i]);
	info->key_type = tls_key_type_name(l->pk);
	info->key_bits = EVP_PKEY_get_bits(l->pk);
	na = X509_get0_notAfter(l->x);
	t = 0;
	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		t = timegm(&tm);
	info->not_after = t;
	return 0;
}

/* ------------------------------------------------------- contexts */

/* TLS 1.2 suites must be forward secret and authenticated. */
static int check_fs(SSL_CTX *ctx, char *bad, size_t len)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
	int n12 = 0;

	for (int i = 0; sk && i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		int kx = SSL_CIPHER_get_kx_nid(c);
		int au = SSL_CIPHER_get_auth_nid(c);

		if (kx == NID_kx_any) /* TLS 1.3 */
			continue;
		n12++;
		if ((kx != NID_kx_ecdhe && kx != NID_kx_dhe) ||
		    au == NID_auth_null) {
			snprintf(bad, len, "%s", SSL_CIPHER_get_name(c));
			return -1;
		}
	}
	return n12;
}

static int min_version(int v)
{
	return v == TLS1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION;
}

/* Settings common to server and client contexts. */
static int ctx_common(SSL_CTX *ctx, int minv, const char *ciphers,
		      const char *who, char *err, size_t errlen)
{
	char bad[128], why[256];

	if (SSL_CTX_set_min_proto_version(ctx, min_version(minv)) != 1) {
		errf(err, errlen, "%s: cannot set the minimum version: %s", who,
		     ossl_reason(why, sizeof(why)));
		return -1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
	if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers
						 : TLS_DEFAULT_CIPHERS) != 1) {
		errf(err, errlen,
		     "tls_ciphers: \"%s\" selects no cipher suite (an "
		     "OpenSSL cipher string such as \"%s\")",
		     ciphers ? ciphers : "", TLS_DEFAULT_CIPHERS);
		ERR_clear_error();
		return -1;
	}
	if (check_fs(ctx, bad, sizeof(bad)) < 0) {
		errf(err, errlen,
		     "tls_ciphers: \"%s\" allows %s, which is not forward "
		     "secret or not authenticated (ECDHE or DHE suites only, "
		     "e.g. \"%s\")",
		     ciphers ? ciphers : "", bad, TLS_DEFAULT_CIPHERS);
		return -1;
	}
	return 0;
}

static bool name_match(const char *pattern, const char *host)
{
	if (strcasecmp(pattern, host) == 0)
		return true;
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(host, '.');

		return dot && dot != host && strcasecmp(dot, pattern + 1) == 0;
	}
	return false;
}

static SSL_CTX *find_ctx(const struct tls_server_ctx *sc, const char *host)
{
	for (uint32_t i = 0; i < sc->n; i++)
		for (uint32_t k = 0; k < sc->v[i].n_names; k++)
			if (name_match(sc->v[i].names[k], host))
				return sc->v[i].ctx;
	return NULL;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_server_ctx *sc = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *c;

	(void)alert;
	if (host == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	c = find_ctx(sc, host);
	if (c && c != SSL_get_SSL_CTX(ssl))
		SSL_set_SSL_CTX(ssl, c);
	return SSL_TLSEXT_ERR_OK;
}

/* TLS_CCERT_ASK: request a certificate and continue whatever the
 * verification says; tls_session_info() reports whether it verified. */
static int ask_verify_cb(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static SSL_CTX *server_ctx(struct tls_server_ctx *sc,
			   const struct tls_server_spec *spec, char *err,
			   size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];
	const char *sid = spec->name ? spec->name : "mxgate";

	if (ctx == NULL) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	if (ctx_common(ctx, spec->min_version, spec->ciphers, "tls", err,
		       errlen) < 0)
		goto fail;
	/* Tickets only, no server-side cache: a ticket resumes on any core
	 * and any context sharing the key ring. One ticket per handshake
	 * keeps the flight small. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid,
				       (unsigned)strnlen(sid, 32));
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, sc);
	SSL_CTX_set_ex_data(ctx, ex_index, sc);
	if (spec->client_cert != TLS_CCERT_OFF) {
		STACK_OF(X509_NAME) *names;

		if (spec->ca_file == NULL ||
		    SSL_CTX_load_verify_locations(ctx, spec->ca_file, NULL) !=
			    1 ||
		    (names = SSL_load_client_CA_file(spec->ca_file)) == NULL) {
			errf(err, errlen,
			     "tls_ca_file: cannot load CA certificates from "
			     "\"%s\": %s",
			     spec->ca_file ? spec->ca_file : "",
			     ossl_reason(why, sizeof(why)));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		if (spec->client_cert == TLS_CCERT_REQUIRE)
			SSL_CTX_set_verify(ctx,
					   SSL_VERIFY_PEER |
						   SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
					   NULL);
		else
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, ask_verify_cb);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int use_cert(SSL_CTX *ctx, struct loaded *l)
{
	if (SSL_CTX_use_certificate(ctx, l->x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, l->pk) != 1)
		return -1;
	for (int i = 0; i < sk_X509_num(l->chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(l->chain, i)) !=
		    1)
			return -1;
	return 0;
}

struct tls_server_ctx *tls_server_ctx_new(const struct tls_server_spec *spec,
					  struct tls_ticket_ring *ring,
					  int *bad_cert, char *err,
					  size_t errlen)
{
	struct tls_server_ctx *sc;
	struct loaded *ld = NULL;
	char why[256];

	*bad_cert = -1;
	if (tls_global_init() < 0 || spec->n_certs == 0) {
		errf(err, errlen, "certificates: empty (at least one)");
		return NULL;
	}
	sc = calloc(1, sizeof(*sc));
	ld = calloc(spec->n_certs, sizeof(*ld));
	if (sc == NULL || ld == NULL)
		goto nomem;
	sc->ring = ring;
	atomic_init(&sc->refs, 1);
	sc->min_cipher_bits = spec->min_cipher_bits;
	sc->certs = calloc(spec->n_certs, sizeof(*sc->certs));
	sc->files = calloc(spec->n_certs, sizeof(*sc->files));
	sc->v = calloc(spec->n_certs, sizeof(*sc->v));
	if (sc->certs == NULL || sc->files == NULL || sc->v == NULL)
		goto nomem;
	for (uint32_t i = 0; i < spec->n_certs; i++) {
		if (load_cert(&spec->certs[i], i, &ld[i], &sc->certs[i], err,
			      errlen) < 0) {
			*bad_cert = (int)i;
			goto fail;
		}
		sc->files[i] = strdup(spec->certs[i].cert);
		if (sc->files[i] == NULL)
			goto nomem;
		sc->certs[i].file = sc->files[i];
		sc->n_certs++;
	}
	/* Group by first name: one SSL_CTX per name, one certificate per key
	 * type in it. */
	for (uint32_t i = 0; i < spec->n_certs; i++) {
		struct tls_name_ctx *nc = NULL;

		for (uint32_t k = 0; k < sc->n; k++)
			if (sc->v[k].n_names &&
			    strcmp(sc->v[k].names[0], ld[i].names[0]) == 0)
				nc = &sc->v[k];
		if (nc == NULL) {
			nc = &sc->v[sc->n];
			nc->ctx = server_ctx(sc, spec, err, errlen);
			if (nc->ctx == NULL)
				goto fail;
			sc->n++;
		} else {
			for (uint32_t k = 0; k < i; k++)
				if (strcmp(ld[k].names[0], ld[i].names[0]) ==
					    0 &&
				    EVP_PKEY_get_base_id(ld[k].pk) ==
					    EVP_PKEY_get_base_id(ld[i].pk)) {
					*bad_cert = (int)i;
					errf(err, errlen,
					     "certificates[%u]: a second %s "
					     "certificate for \"%s\" "
					     "(certificates[%u] has one; one "
					     "RSA and one ECDSA per name)",
					     i, sc->certs[i].key_type,
					     ld[i].names[0], k);
					goto fail;
				}
		}
		if (use_cert(nc->ctx, &ld[i]) < 0) {
			*bad_cert = (int)i;
			errf(err, errlen,
			     "certificates[%u]: OpenSSL refuses \"%s\": %s", i,
			     spec->certs[i].cert, ossl_reason(why, sizeof(why)));
			goto fail;
		}
		/* The name list of the context: every name of its certs. */
		for (uint32_t k = 0; k < ld[i].n_names; k++) {
			char **v = realloc(nc->names,
					   (nc->n_names + 1) * sizeof(*v));

			if (v == NULL)
				goto nomem;
			nc->names = v;
			v[nc->n_names] = strdup(ld[i].names[k]);
			if (v[nc->n_names] == NULL)
				goto nomem;
			nc->n_names++;
		}
	}
	for (uint32_t i = 0; i < spec->n_certs; i++)
		loaded_free(&ld[i]);
	free(ld);
	return sc;
nomem:
	errf(err, errlen, "out of memory");
fail:
	if (ld)
		for (uint32_t i = 0; i < spec->n_certs; i++)
			loaded_free(&ld[i]);
	free(ld);
	tls_server_ctx_free(sc);
	return NULL;
}

void tls_server_ctx_set_ring(struct tls_server_ctx *c,
			     struct tls_ticket_ring *ring)
{
	c->ring = ring;
}

void tls_server_ctx_hold(struct tls_server_ctx *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void tls_server_ctx_free(struct tls_server_ctx *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (uint32_t i = 0; c->v && i < c->n; i++) {
		SSL_CTX_free(c->v[i].ctx);
		for (uint32_t k = 0; k < c->v[i].n_names; k++)
			free(c->v[i].names[k]);
		free(c->v[i].names);
	}
	for (uint32_t i = 0; c->files && i < c->n_certs; i++)
		free(c->files[i]);
	free(c->files);
	free(c->certs);
	free(c->v);
	free(c);
}

uint32_t tls_server_ctx_n_certs(const struct tls_server_ctx *c)
{
	return c ? c->n_certs : 0;
}

const struct tls_cert_info *tls_server_ctx_cert(const struct tls_server_ctx *c,
						uint32_t i)
{
	return c && i < c->n_certs ? &c->certs[i] : NULL;
}

uint32_t tls_server_ctx_min_cipher_bits(const struct tls_server_ctx *c)
{
	return c->min_cipher_bits;
}

/* ---------------------------------------------------- client side */

/* "ab:cd:..." or "abcd..." (64 hex digits) into 32 bytes. 0 or -1. */
static int parse_pin(const char *s, unsigned char out[32])
{
	unsigned n = 0;

	for (const char *p = s; *p; p++) {
		int v;

		if (*p == ':')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			return -1;
		if (n >= 64)
			return -1;
		if (n % 2 == 0)
			out[n / 2] = (unsigned char)(v << 4);
		else
			out[n / 2] |= (unsigned char)v;
		n++;
	}
	return n == 64 ? 0 : -1;
}

bool tls_client_pin_match(const struct tls_client_ctx *c, X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	return c->pinned && cert &&
	       X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == 32 &&
	       CRYPTO_memcmp(md, c->pin, 32) == 0;
}

/* Runs for each certificate of the backend's chain, leaf last (depth
 * 0), and again for each error. With a pin the leaf must match it;
 * chain errors count only when the pool also verifies (ca_file). */
static int client_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		x, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct tls_client_ctx *cc =
		ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index)
		    : NULL;

	if (cc == NULL || !cc->pinned)
		return ok;
	if (X509_STORE_CTX_get_error_depth(x) == 0 &&
	    !tls_client_pin_match(cc, X509_STORE_CTX_get_current_cert(x))) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return cc->verify ? ok : 1;
}

static int client_cert(SSL_CTX *ctx, const struct tls_client_spec *spec,
		       char *err, size_t errlen)
{
	const char *key = spec->key ? spec->key : spec->cert;
	char why[256];
	EVP_PKEY *pk;
	BIO *b;
	bool ok;

	if (SSL_CTX_use_certificate_chain_file(ctx, spec->cert) != 1) {
		errf(err, errlen,
		     "tls_cert: cannot read a PEM certificate from \"%s\": "
		     "%s",
		     spec->cert, ossl_reason(why, sizeof(why)));
		return -1;
	}
	b = BIO_new_file(key, "r");
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (pk == NULL) {
		errf(err, errlen,
		     "tls_key: cannot read a PEM private key from \"%s\": %s",
		     key, ossl_reason(why, sizeof(why)));
		return -1;
	}
	ok = SSL_CTX_use_PrivateKey(ctx, pk) == 1 &&
	     SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(pk);
	if (!ok) {
		ERR_clear_error();
		errf(err, errlen,
		     "tls_key: the key in \"%s\" does not match the "
		     "certificate in \"%s\"",
		     key, spec->cert);
		return -1;
	}
	return 0;
}

struct tls_client_ctx *tls_client_ctx_new(const struct tls_client_spec *spec,
					  char *err, size_t errlen)
{
	struct tls_client_ctx *cc;
	char why[256];

	if (tls_global_init() < 0)
		return NULL;
	cc = calloc(1, sizeof(*cc));
	if (cc == NULL || (cc->ctx = SSL_CTX_new(TLS_client_method())) ==
				  NULL) {
		errf(err, errlen, "out of memory");
		free(cc);
		return NULL;
	}
	cc->verify = spec->verify;
	SSL_CTX_set_ex_data(cc->ctx, ex_index, cc);
	if (ctx_common(cc->ctx, spec->min_version, spec->ciphers, "tls", err,
		       errlen) < 0)
		goto fail;
	if (spec->fingerprint) {
		if (parse_pin(spec->fingerprint, cc->pin) < 0) {
			errf(err, errlen,
			     "tls_fingerprint: \"%s\" is not a SHA-256 "
			     "fingerprint (64 hex digits, colons allowed, as "
			     "`openssl x509 -noout -fingerprint -sha256` "
			     "prints)",
			     spec->fingerprint);
			goto fail;
		}
		cc->pinned = true;
	}
	if (spec->verify) {
		if (spec->ca_file == NULL ||
		    SSL_CTX_load_verify_locations(cc->ctx, spec->ca_file,
						  NULL) != 1) {
			errf(err, errlen,
			     "tls_ca_file: cannot load CA certificates from "
			     "\"%s\": %s",
			     spec->ca_file ? spec->ca_file : "",
			     ossl_reason(why, sizeof(why)));
			goto fail;
		}
	}
	if (spec->verify || cc->pinned)
		SSL_CTX_set_verify(cc->ctx, SSL_VERIFY_PEER, client_verify_cb);
	if (spec->cert && client_cert(cc->ctx, spec, err, errlen) < 0)
		goto fail;
	/* Backend connections are long-lived and few: no session cache. */
	SSL_CTX_set_session_cache_mode(cc->ctx, SSL_SESS_CACHE_OFF);
	return cc;
fail:
	tls_client_ctx_free(cc);
	return NULL;
}

void tls_client_ctx_free(struct tls_client_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	OPENSSL_cleanse(c->pin, sizeof(c->pin));
	free(c);
}
