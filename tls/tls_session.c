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
#include <pthread.h>
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

/* Bytes queued one way. Memory only while bytes are queued: the block is
 * freed when drained, so an idle session holds no buffer at all (a
 * BIO_s_mem keeps its largest size for the connection's life). */
struct tls_queue {
	unsigned char *p;
	size_t off, len, cap; /* queued: p[off .. len) */
};

struct tls_session {
	SSL *ssl;
	BIO *bio;	  /* one BIO, both ways (owned by ssl) */
	struct tls_queue in;  /* received ciphertext, not yet read */
	struct tls_queue out; /* records to send */
	struct tls_server_ctx *ctx; /* server side: a reference */
	enum tls_state state;
	enum tls_fail fail;
	bool eof;	  /* the peer's FIN was seen */
	bool reneg;	  /* a renegotiation attempt was seen */
	uint32_t min_bits;
	bool opened;	  /* the handshake completed (info stays valid) */
	struct tls_peer *peer; /* the peer's certificate, described once on
				  the handshake's thread; NULL: none */
	char detail[192];
};

/* What the log, the Received: header, partner relaying and the PROXY v2
 * TLVs say about the peer's certificate: worked out once, when the
 * handshake completes (on the worker that ran it), so the core never
 * formats a certificate or allocates for it. */
struct tls_peer {
	bool verified;
	char subject[256];   /* RFC 2253 (OpenSSL escapes controls) */
	char sha256[65];
	char cn[64];	     /* printable ASCII only, '?' for others */
	char issuer_cn[64];
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

/* ------------------------------------------------------ the queues */

static size_t queue_len(const struct tls_queue *q)
{
	return q->len - q->off;
}

/* Queues and the session itself come from OpenSSL's allocator, so that a
 * count of OpenSSL's memory (tests/unit/tls/test_tls_mem.c) is the whole
 * session's. */
static void queue_free(struct tls_queue *q)
{
	OPENSSL_free(q->p);
	memset(q, 0, sizeof(*q));
}

static int queue_put(struct tls_queue *q, const void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (q->off && q->len + n > q->cap) { /* slide down first */
		memmove(q->p, q->p + q->off, q->len - q->off);
		q->len -= q->off;
		q->off = 0;
	}
	if (q->len + n > q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 2048;
		unsigned char *p;

		while (cap < q->len + n)
			cap *= 2;
		p = OPENSSL_realloc(q->p, cap);
		if (p == NULL)
			return -ENOMEM;
		q->p = p;
		q->cap = cap;
	}
	memcpy(q->p + q->len, buf, n);
	q->len += n;
	return 0;
}

static size_t queue_take(struct tls_queue *q, void *buf, size_t n)
{
	if (n > queue_len(q))
		n = queue_len(q);
	if (n == 0) /* also: an empty queue has no block (p NULL) */
		return 0;
	memcpy(buf, q->p + q->off, n);
	q->off += n;
	if (q->off == q->len)
		queue_free(q);
	return n;
}

/*
 * The session's BIO: OpenSSL reads ciphertext from s->in and writes
 * records to s->out. Reading an empty queue asks for a retry (the
 * caller feeds more), never end of file: a FIN is reported through
 * tls_session_feed_eof() instead.
 */
static BIO_METHOD *queue_method;

static int qbio_write(BIO *b, const char *buf, int n)
{
	struct tls_session *s = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	return queue_put(&s->out, buf, (size_t)n) == 0 ? n : -1;
}

static int qbio_read(BIO *b, char *buf, int n)
{
	struct tls_session *s = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (queue_len(&s->in) == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	return (int)queue_take(&s->in, buf, (size_t)n);
}

static long qbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_session *s = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		return (long)queue_len(&s->in);
	case BIO_CTRL_WPENDING:
		return (long)queue_len(&s->out);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int qbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void qbio_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "mxgate tls_session");

	if (m && BIO_meth_set_write(m, qbio_write) == 1 &&
	    BIO_meth_set_read(m, qbio_read) == 1 &&
	    BIO_meth_set_ctrl(m, qbio_ctrl) == 1 &&
	    BIO_meth_set_create(m, qbio_create) == 1)
		queue_method = m;
	else
		BIO_meth_free(m);
}

static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static struct tls_session *session_new(SSL_CTX *ctx)
{
	struct tls_session *s;

	pthread_once(&method_once, qbio_method_make);
	if (queue_method == NULL)
		return NULL;
	s = OPENSSL_zalloc(sizeof(*s));
	if (s == NULL)
		return NULL;
	ERR_clear_error();
	s->ssl = SSL_new(ctx);
	s->bio = BIO_new(queue_method);
	if (s->ssl == NULL || s->bio == NULL) {
		BIO_free(s->bio);
		SSL_free(s->ssl);
		OPENSSL_free(s);
		ERR_clear_error();
		return NULL;
	}
	BIO_set_data(s->bio, s);
	SSL_set_bio(s->ssl, s->bio, s->bio); /* one reference, taken */
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

struct tls_ticket *tls_session_get_ticket(const struct tls_session *s)
{
	SSL_SESSION *ss = SSL_get1_session(s->ssl);

	if (ss && !SSL_SESSION_is_resumable(ss)) {
		SSL_SESSION_free(ss);
		ss = NULL;
	}
	return (struct tls_ticket *)ss;
}

int tls_session_set_ticket(struct tls_session *s, const struct tls_ticket *t)
{
	if (SSL_set_session(s->ssl, (SSL_SESSION *)t) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

void tls_ticket_free(struct tls_ticket *t)
{
	SSL_SESSION_free((SSL_SESSION *)t);
}

void tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl); /* frees the BIO */
	OPENSSL_free(s->peer);
	queue_free(&s->in);
	queue_free(&s->out);
	tls_server_ctx_free(s->ctx);
	OPENSSL_free(s);
}

int tls_session_feed(struct tls_session *s, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (queue_len(&s->in) + len > TLS_SESSION_MAX_BUFFERED) {
		fail(s, TLS_FAIL_OVERFLOW, "input buffer full");
		return -ENOBUFS;
	}
	if (queue_put(&s->in, buf, len) < 0) {
		fail(s, TLS_FAIL_NOMEM, "input queue");
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

/* A name entry as printable ASCII: a CN is the peer's choice, and it
 * goes into a Received: header and a log line. Bytes outside ' '..'~',
 * and '"' and '\\', become '?' (Postfix refuses such names; we still
 * name what was presented). */
static void name_entry(const X509_NAME *n, int nid, char *out, size_t cap)
{
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	const ASN1_STRING *d;
	const unsigned char *p;
	int len;
	size_t k = 0;

	out[0] = '\0';
	if (i < 0)
		return;
	d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
	p = d ? ASN1_STRING_get0_data(d) : NULL;
	len = d ? ASN1_STRING_length(d) : 0;
	for (int j = 0; p && j < len && k + 1 < cap; j++)
		out[k++] = p[j] >= 0x20 && p[j] <= 0x7e && p[j] != '"' &&
					   p[j] != '\\'
				   ? (char)p[j]
				   : '?';
	out[k] = '\0';
}

/* Handshake done: describe the peer's certificate once (the worker's
 * thread; the only allocation, and only when a certificate came). */
static void describe_peer(struct tls_session *s)
{
	X509 *peer = SSL_get0_peer_certificate(s->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	struct tls_peer *p;
	BIO *b;

	if (peer == NULL || s->peer != NULL)
		return;
	p = OPENSSL_zalloc(sizeof(*p));
	if (p == NULL)
		return; /* described as "no certificate": never a partner */
	p->verified = SSL_get_verify_result(s->ssl) == X509_V_OK;
	b = BIO_new(BIO_s_mem());
	if (b) {
		int k;

		X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
				   XN_FLAG_RFC2253);
		k = BIO_read(b, p->subject, (int)sizeof(p->subject) - 1);
		p->subject[k > 0 ? k : 0] = '\0';
		BIO_free(b);
	}
	if (X509_digest(peer, EVP_sha256(), md, &n) == 1)
		for (unsigned i = 0; i < n && i < 32; i++)
			snprintf(p->sha256 + 2 * i, 3, "%02x", md[i]);
	name_entry(X509_get_subject_name(peer), NID_commonName, p->cn,
		   sizeof(p->cn));
	name_entry(X509_get_issuer_name(peer), NID_commonName, p->issuer_cn,
		   sizeof(p->issuer_cn));
	s->peer = p;
	ERR_clear_error();
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
		s->opened = true;
		describe_peer(s);
		return s->state;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (s->eof && queue_len(&s->in) == 0)
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
		if (s->eof && queue_len(&s->in) == 0) {
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
	return queue_len(&s->out);
}

size_t tls_session_take_output(struct tls_session *s, void *buf, size_t len)
{
	return queue_take(&s->out, buf, len);
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
	X509 *ours;

	memset(o, 0, sizeof(*o));
	if (!s->opened)
		return -EAGAIN;
	o->version = SSL_get_version(s->ssl);
	o->cipher = SSL_get_cipher_name(s->ssl);
	o->cipher_bits = SSL_get_cipher_bits(s->ssl, NULL);
	o->sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
	o->resumed = SSL_session_reused(s->ssl) == 1;
	ours = SSL_get_certificate(s->ssl);
	o->cert_key_type = ours ? tls_key_type_name(X509_get0_pubkey(ours))
				: NULL;
	if (s->peer) {
		const struct tls_peer *p = s->peer;

		o->peer_cert = true;
		o->peer_verified = p->verified;
		if (!SSL_is_server(s->ssl)) {
			const struct tls_client_ctx *cc = SSL_CTX_get_ex_data(
				SSL_get_SSL_CTX(s->ssl), tls_ctx_ex_index());

			o->peer_pinned =
				cc && tls_client_pin_match(
					      cc, SSL_get0_peer_certificate(
							  s->ssl));
		}
		memcpy(o->peer_subject, p->subject, sizeof(o->peer_subject));
		memcpy(o->peer_sha256, p->sha256, sizeof(o->peer_sha256));
		memcpy(o->peer_cn, p->cn, sizeof(o->peer_cn));
		memcpy(o->peer_issuer_cn, p->issuer_cn,
		       sizeof(o->peer_issuer_cn));
	}
	ERR_clear_error();
	return 0;
}
