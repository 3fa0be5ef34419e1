/*
 * tls_session.c - one TLS connection over two OpenSSL memory BIOs (see
 * tls_session.h for the contract).
 *
 * Threads: one owner at a time (the core, or the worker holding the
 * handshake job). OpenSSL's error queue is per thread, so every entry
 * point clears it first and reads it before returning: nothing is left
 * behind for the next session that thread runs.
 *
 * States: HANDSHAKE -> OPEN -> CLOSED, and any -> FAILED. Only fail()
 * and the handshake/read paths below change state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"
#include "tls/tls_session.h"

struct tls_session {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	struct tls_server_ctx *ctx; /* server side: a reference */
	enum tls_state state;
	enum tls_fail fail;
	bool eof;	  /* the peer's FIN was seen */
	bool reneg;	  /* a renegotiation attempt was seen */
	uint32_t min_bits;
	char detail[192];
};

static const char *const fail_names[TLS_FAIL_COUNT] = {
	[TLS_FAIL_NONE] = "none",
	[TLS_FAIL_PROTOCOL] = "protocol",
	[TLS_FAIL_VERSION] = "version",
	[TLS_FAIL_NO_SHARED] = "no_shared_cipher",
	[TLS_FAIL_WEAK_CIPHER] = "weak_cipher",
	[TLS_FAIL_PEER_CERT] = "peer_certificate",
	[TLS_FAIL_RENEGOTIATION] = "renegotiation",
	[TLS_FAIL_TRUNCATED] = "truncated",
	[TLS_FAIL_OVERFLOW] = "overflow",
	[TLS_FAIL_NOMEM] = "nomem",
	[TLS_FAIL_INTERNAL] = "internal",
};

const char *tls_fail_name(enum tls_fail f)
{
	return (unsigned)f < TLS_FAIL_COUNT ? fail_names[f] : "?";
}

static void fail(struct tls_session *s, enum tls_fail why, const char *d)
{
	if (s->state == TLS_ST_FAILED)
		return;
	s->state = TLS_ST_FAILED;
	s->fail = why;
	snprintf(s->detail, sizeof(s->detail), "%s", d ? d : "");
}

/* Maps OpenSSL's reason for a failed handshake or read to a counter. */
static void fail_from_queue(struct tls_session *s)
{
	unsigned long e = ERR_peek_last_error();
	char buf[192] = "";
	enum tls_fail why = TLS_FAIL_PROTOCOL;

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(e)) {
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_VERSION_TOO_LOW:
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			why = TLS_FAIL_VERSION;
			break;
		case SSL_R_NO_SHARED_CIPHER:
		case SSL_R_NO_SHARED_GROUPS:
		case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
		case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
			why = TLS_FAIL_NO_SHARED;
			break;
		case SSL_R_CERTIFICATE_VERIFY_FAILED: {
			/* which check: untrusted, expired, wrong name, pin */
			long v = SSL_get_verify_result(s->ssl);
			size_t k = strlen(buf);

			snprintf(buf + k, sizeof(buf) - k, " (%s)",
				 X509_verify_cert_error_string(v));
			why = TLS_FAIL_PEER_CERT;
			break;
		}
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
			why = TLS_FAIL_PEER_CERT;
			break;
		default:
			break;
		}
	} else if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
		why = TLS_FAIL_NOMEM;
	}
	ERR_clear_error();
	fail(s, why, buf);
}

/* Renegotiation: with SSL_OP_NO_RENEGOTIATION OpenSSL answers a TLS 1.2
 * ClientHello on an established connection with a no_renegotiation
 * warning and goes on; we end the connection instead (nginx does the
 * same), so a peer cannot make us spend a handshake per record. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_session *s = SSL_get_app_data(ssl);

	if (s == NULL)
		return;
	if ((where & SSL_CB_WRITE_ALERT) &&
	    (ret & 0xff) == SSL_AD_NO_RENEGOTIATION)
		s->reneg = true;
	if ((where & SSL_CB_HANDSHAKE_START) && s->state == TLS_ST_OPEN &&
	    SSL_version(ssl) < TLS1_3_VERSION)
		s->reneg = true;
}

static struct tls_session *session_new(SSL_CTX *ctx)
{
	struct tls_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	ERR_clear_error();
	s->ssl = SSL_new(ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		return NULL;
	}
	/* An empty input BIO means "retry", not end of file. */
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_app_data(s->ssl, s);
	SSL_set_info_callback(s->ssl, info_cb);
	return s;
}

struct tls_session *tls_session_new_server(const struct tls_server_ctx *ctx)
{
	struct tls_session *s = session_new(ctx->v[0].ctx);

	if (s) {
		SSL_set_accept_state(s->ssl);
		s->min_bits = ctx->min_cipher_bits;
		s->ctx = (struct tls_server_ctx *)ctx;
		tls_server_ctx_hold(s->ctx);
	}
	return s;
}

struct tls_session *tls_session_new_client(const struct tls_client_ctx *ctx,
					   const char *server_name)
{
	struct tls_session *s;
	unsigned char ip[16];
	bool literal;
	int ok = 1;

	if (ctx->verify && server_name == NULL)
		return NULL;
	s = session_new(ctx->ctx);
	if (s == NULL)
		return NULL;
	SSL_set_connect_state(s->ssl);
	if (server_name == NULL)
		return s;
	literal = inet_pton(AF_INET, server_name, ip) == 1 ||
		  inet_pton(AF_INET6, server_name, ip) == 1;
	/* RFC 6066 3: "Literal IPv4 and IPv6 addresses are not permitted"
	 * in server_name; an address is checked against the iPAddress
	 * subjectAltNames instead. */
	if (!literal)
		ok = SSL_set_tlsext_host_name(s->ssl, server_name);
	if (ok == 1 && ctx->verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);

		X509_VERIFY_PARAM_set_hostflags(
			vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, server_name)
			     : SSL_set1_host(s->ssl, server_name);
	}
	if (ok != 1) {
		ERR_clear_error();
		tls_session_free(s);
		return NULL;
	}
	return s;
}

void tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl); /* frees both BIOs */
	tls_server_ctx_free(s->ctx);
	free(s);
}

int tls_session_feed(struct tls_session *s, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if ((size_t)BIO_pending(s->rbio) + len > TLS_SESSION_MAX_BUFFERED) {
		fail(s, TLS_FAIL_OVERFLOW, "input buffer full");
		return -ENOBUFS;
	}
	if (BIO_write(s->rbio, buf, (int)len) != (int)len) {
		ERR_clear_error();
		fail(s, TLS_FAIL_NOMEM, "input BIO");
		return -ENOMEM;
	}
	return (int)len;
}

int tls_session_feed_iov(struct tls_session *s, const struct iovec *iov,
			 int n)
{
	int total = 0;

	for (int i = 0; i < n; i++) {
		int r = tls_session_feed(s, iov[i].iov_base, iov[i].iov_len);

		if (r < 0)
			return r;
		total += r;
	}
	return total;
}

void tls_session_feed_eof(struct tls_session *s)
{
	s->eof = true;
}

enum tls_state tls_session_handshake(struct tls_session *s)
{
	int r;

	if (s->state != TLS_ST_HANDSHAKE)
		return s->state;
	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		int bits = SSL_get_cipher_bits(s->ssl, NULL);

		/* The operators' "require N-bit encryption": the suite's
		 * symmetric strength, known only once it is negotiated. */
		if (s->min_bits && (bits < 0 || (uint32_t)bits < s->min_bits)) {
			char d[96];

			snprintf(d, sizeof(d), "%s has %d bits, %u required",
				 SSL_get_cipher_name(s->ssl), bits,
				 s->min_bits);
			fail(s, TLS_FAIL_WEAK_CIPHER, d);
			SSL_shutdown(s->ssl);
			ERR_clear_error();
			return s->state;
		}
		s->state = TLS_ST_OPEN;
		return s->state;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (s->eof && BIO_pending(s->rbio) == 0)
			fail(s, TLS_FAIL_TRUNCATED,
			     "connection closed during the handshake");
		break;
	case SSL_ERROR_SSL:
		fail_from_queue(s);
		break;
	default:
		fail(s, TLS_FAIL_INTERNAL, "unexpected handshake result");
		ERR_clear_error();
		break;
	}
	return s->state;
}

ssize_t tls_session_read(struct tls_session *s, void *buf, size_t len)
{
	int r;

	switch (s->state) {
	case TLS_ST_HANDSHAKE:
		return 0;
	case TLS_ST_CLOSED:
		return -EPIPE;
	case TLS_ST_FAILED:
		return -EPROTO;
	case TLS_ST_OPEN:
		break;
	}
	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	r = SSL_read(s->ssl, buf, (int)len);
	if (s->reneg) {
		fail(s, TLS_FAIL_RENEGOTIATION, "renegotiation attempt");
		ERR_clear_error();
		return -EPROTO;
	}
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (s->eof && BIO_pending(s->rbio) == 0) {
			fail(s, TLS_FAIL_TRUNCATED,
			     "connection closed without close_notify");
			return -EPROTO;
		}
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		s->state = TLS_ST_CLOSED;
		return -EPIPE;
	case SSL_ERROR_SSL:
		fail_from_queue(s);
		return -EPROTO;
	default:
		ERR_clear_error();
		fail(s, TLS_FAIL_INTERNAL, "unexpected read result");
		return -EPROTO;
	}
}

ssize_t tls_session_write(struct tls_session *s, const void *buf, size_t len)
{
	int r;

	if (s->state != TLS_ST_OPEN)
		return s->state == TLS_ST_HANDSHAKE ? -EAGAIN : -EPROTO;
	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	ERR_clear_error();
	r = SSL_write(s->ssl, buf, (int)len);
	if (r > 0)
		return r;
	fail_from_queue(s);
	return -EPROTO;
}

void tls_session_shutdown(struct tls_session *s)
{
	if (s->state == TLS_ST_OPEN || s->state == TLS_ST_CLOSED) {
		ERR_clear_error();
		SSL_shutdown(s->ssl);
		ERR_clear_error();
	}
}

size_t tls_session_output_len(const struct tls_session *s)
{
	return BIO_ctrl_pending(s->wbio);
}

size_t tls_session_take_output(struct tls_session *s, void *buf, size_t len)
{
	int r;

	if (len > INT32_MAX)
		len = INT32_MAX;
	if (len == 0 || BIO_ctrl_pending(s->wbio) == 0)
		return 0;
	r = BIO_read(s->wbio, buf, (int)len);
	return r > 0 ? (size_t)r : 0;
}

enum tls_state tls_session_state(const struct tls_session *s)
{
	return s->state;
}

enum tls_fail tls_session_fail_reason(const struct tls_session *s)
{
	return s->fail;
}

const char *tls_session_fail_detail(const struct tls_session *s)
{
	return s->detail;
}

int tls_session_info(const struct tls_session *s, struct tls_session_info *o)
{
	X509 *peer;
	X509 *ours;

	memset(o, 0, sizeof(*o));
	if (s->state != TLS_ST_OPEN && s->state != TLS_ST_CLOSED)
		return -EAGAIN;
	o->version = SSL_get_version(s->ssl);
	o->cipher = SSL_get_cipher_name(s->ssl);
	o->cipher_bits = SSL_get_cipher_bits(s->ssl, NULL);
	o->sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
	o->resumed = SSL_session_reused(s->ssl) == 1;
	ours = SSL_get_certificate(s->ssl);
	o->cert_key_type = ours ? tls_key_type_name(X509_get0_pubkey(ours))
				: NULL;
	peer = SSL_get0_peer_certificate(s->ssl);
	if (peer) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned n = 0;
		BIO *b = BIO_new(BIO_s_mem());

		o->peer_cert = true;
		o->peer_verified = SSL_get_verify_result(s->ssl) == X509_V_OK;
		if (!SSL_is_server(s->ssl)) {
			const struct tls_client_ctx *cc = SSL_CTX_get_ex_data(
				SSL_get_SSL_CTX(s->ssl), tls_ctx_ex_index());

			o->peer_pinned = cc && tls_client_pin_match(cc, peer);
		}
		if (b) {
			int k;

			X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
					   XN_FLAG_RFC2253);
			k = BIO_read(b, o->peer_subject,
				     (int)sizeof(o->peer_subject) - 1);
			o->peer_subject[k > 0 ? k : 0] = '\0';
			BIO_free(b);
		}
		if (X509_digest(peer, EVP_sha256(), md, &n) == 1)
			for (unsigned i = 0; i < n && i < 32; i++)
				snprintf(o->peer_sha256 + 2 * i, 3, "%02x",
					 md[i]);
	}
	ERR_clear_error();
	return 0;
}
