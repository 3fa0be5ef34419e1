/*
 * test_relay_client.c - transcript tests of the sans-I/O backend SMTP client
 * (dataplane/relay/relay_client.h): scripted backend replies in, exact
 * command bytes and events out. No sockets, no DPDK.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/relay/relay_client.h"

static int failures;
static int checks;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static uint64_t now;

/* Takes all output and compares it with want (exact bytes). */
static int out_is(struct relay_client *c, const char *want, int line)
{
	size_t len;
	const uint8_t *p = relay_client_output(c, &len);
	int ok = len == strlen(want) && memcmp(p, want, len) == 0;

	if (!ok)
		fprintf(stderr, "FAIL line %d: output \"%.*s\" != \"%s\"\n",
			line, (int)len, (const char *)p, want);
	relay_client_output_consume(c, len);
	return ok;
}
#define OUT(c, s) CHECK(out_is(c, s, __LINE__))

static void feed(struct relay_client *c, const char *s)
{
	size_t n = relay_client_feed(c, s, strlen(s));

	if (n != strlen(s))
		fprintf(stderr, "note: feed took %zu of %zu\n", n, strlen(s));
}

/* Pops one event and checks type, code, enh and text (NULL = any). */
static int ev_is(struct relay_client *c, enum relay_event_type type,
		 uint16_t code, const char *enh, const char *text, int line)
{
	const struct relay_event *ev = relay_client_event(c);
	int ok;

	if (ev == NULL) {
		fprintf(stderr, "FAIL line %d: no event, want %s\n", line,
			relay_event_name(type));
		return 0;
	}
	ok = ev->type == type && ev->reply.code == code &&
	     (enh == NULL || strcmp(ev->reply.enh, enh) == 0) &&
	     (text == NULL || strcmp(ev->reply.text, text) == 0);
	if (!ok)
		fprintf(stderr,
			"FAIL line %d: event %s %u [%s] \"%s\" (step %s err %s)"
			", want %s %u [%s] \"%s\"\n",
			line, relay_event_name(ev->type), ev->reply.code,
			ev->reply.enh, ev->reply.text,
			relay_step_name(ev->step), relay_error_name(ev->error),
			relay_event_name(type), code, enh ? enh : "*",
			text ? text : "*");
	relay_client_event_pop(c);
	return ok;
}
#define EV(c, t, code, enh, text) CHECK(ev_is(c, t, code, enh, text, __LINE__))

static int err_is(struct relay_client *c, enum relay_error err,
		  enum relay_step step, int line)
{
	const struct relay_event *ev = relay_client_event(c);
	int ok;

	if (ev == NULL) {
		fprintf(stderr, "FAIL line %d: no event, want ERROR\n", line);
		return 0;
	}
	ok = ev->type == RELAY_EV_ERROR && ev->error == err && ev->step == step;
	if (!ok)
		fprintf(stderr, "FAIL line %d: event %s err %s step %s\n", line,
			relay_event_name(ev->type), relay_error_name(ev->error),
			relay_step_name(ev->step));
	relay_client_event_pop(c);
	return ok;
}
#define ERR(c, e, s) CHECK(err_is(c, e, s, __LINE__))
#define NOEV(c) CHECK(relay_client_event(c) == NULL)

static const char *EHLO_FULL = "250-backend.example Hello mx.test\r\n"
			       "250-PIPELINING\r\n"
			       "250-SIZE 36700160\r\n"
			       "250-8BITMIME\r\n"
			       "250-SMTPUTF8\r\n"
			       "250-XCLIENT NAME ADDR PROTO HELO LOGIN\r\n"
			       "250-CHUNKING\r\n"
			       "250-DSN\r\n"
			       "250 ENHANCEDSTATUSCODES\r\n";

static const char *EHLO_PLAIN = "250-backend.example\r\n"
				"250-SIZE\r\n"
				"250 8BITMIME\r\n";

static struct relay_client *mk(struct relay_client_config *cfg,
			       const struct relay_proxy_addr *px)
{
	struct relay_client_config d;

	if (cfg == NULL) {
		relay_client_config_defaults(&d);
		d.helo_name = "mx.test";
		cfg = &d;
	}
	return relay_client_create(cfg, px, now);
}

/* Connected, greeted, EHLO answered with ehlo; READY popped. */
static struct relay_client *up(struct relay_client_config *cfg,
			       const char *ehlo)
{
	struct relay_client *c = mk(cfg, NULL);

	CHECK(c != NULL);
	if (c == NULL)
		exit(1);
	CHECK(relay_client_connected(c) == 0);
	OUT(c, "");
	feed(c, "220 backend.example ESMTP\r\n");
	OUT(c, "EHLO mx.test\r\n");
	feed(c, ehlo);
	EV(c, RELAY_EV_READY, 0, "", "");
	CHECK(relay_client_state(c) == RELAY_ST_READY);
	return c;
}

static void test_ehlo_caps(void)
{
	struct relay_client *c = up(NULL, EHLO_FULL);
	const struct relay_caps *k = relay_client_caps(c);

	CHECK(k->esmtp && k->pipelining && k->size && k->eightbitmime);
	CHECK(k->size_max == 36700160);
	CHECK(k->smtputf8 && k->chunking && k->dsn && k->enhancedstatuscodes);
	CHECK(k->xclient);
	CHECK(k->xclient_attrs ==
	      (RELAY_XCLIENT_NAME | RELAY_XCLIENT_ADDR | RELAY_XCLIENT_PROTO |
	       RELAY_XCLIENT_HELO | RELAY_XCLIENT_LOGIN));
	CHECK(!k->starttls);
	relay_client_destroy(c);

	c = up(NULL, EHLO_PLAIN);
	k = relay_client_caps(c);
	CHECK(k->size && k->size_max == 0 && !k->pipelining && !k->xclient);
	relay_client_destroy(c);

	/* Lower-case keywords are keywords too (RFC 5321 2.4). */
	c = up(NULL, "250-b\r\n250-pipelining\r\n250 xclient addr\r\n");
	k = relay_client_caps(c);
	CHECK(k->pipelining && k->xclient &&
	      k->xclient_attrs == RELAY_XCLIENT_ADDR);
	relay_client_destroy(c);
}

static void test_helo_fallback(void)
{
	struct relay_client *c = mk(NULL, NULL);

	relay_client_connected(c);
	feed(c, "220 old.example\r\n");
	OUT(c, "EHLO mx.test\r\n");
	feed(c, "502 5.5.1 What?\r\n");
	NOEV(c);
	OUT(c, "HELO mx.test\r\n");
	feed(c, "250 old.example\r\n");
	EV(c, RELAY_EV_READY, 0, NULL, NULL);
	CHECK(!relay_client_caps(c)->esmtp);
	relay_client_destroy(c);
}

static void test_greeting_refused(void)
{
	struct relay_client *c = mk(NULL, NULL);

	relay_client_connected(c);
	feed(c, "554 5.3.2 go away\r\n");
	CHECK(relay_client_event(c) != NULL &&
	      relay_client_event(c)->reply.code == 554);
	ERR(c, RELAY_ERR_REJECTED, RELAY_STEP_GREETING);
	CHECK(relay_client_done(c));
	relay_client_destroy(c);
}

/* Pipelined MAIL + 3 RCPT + DATA in one write; a 550 5.1.1 in the middle
 * is reported individually and verbatim; the body streams; the dot only
 * after commit; then RSET reuse and QUIT. */
static void test_pipelined_transaction(void)
{
	struct relay_client *c = up(NULL, EHLO_FULL);
	struct relay_mail m = {.sender = "alice@example.org",
			       .params = "SIZE=120 BODY=8BITMIME"};

	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rcpt(c, "bob@example.com", NULL) == 0);
	CHECK(relay_client_rcpt(c, "nobody@example.com", NULL) == 1);
	CHECK(relay_client_rcpt(
		      c, "carol@example.com",
		      "NOTIFY=FAILURE ORCPT=rfc822;carol@example.com") == 2);
	CHECK(relay_client_data(c) == 0);
	CHECK(relay_client_rcpt(c, "late@example.com", NULL) == -EBUSY);
	OUT(c, "MAIL FROM:<alice@example.org> SIZE=120 BODY=8BITMIME\r\n"
	       "RCPT TO:<bob@example.com>\r\n"
	       "RCPT TO:<nobody@example.com>\r\n"
	       "RCPT TO:<carol@example.com> NOTIFY=FAILURE "
	       "ORCPT=rfc822;carol@example.com\r\n"
	       "DATA\r\n");
	feed(c,
	     "250 2.1.0 Ok\r\n"
	     "250 2.1.5 Ok\r\n"
	     "550-5.1.1 <nobody@example.com>: Recipient address rejected:\r\n"
	     "550 5.1.1 User unknown in virtual mailbox table\r\n"
	     "250 2.1.5 Ok\r\n"
	     "354 End data with <CR><LF>.<CR><LF>\r\n");
	EV(c, RELAY_EV_MAIL, 250, "2.1.0", "Ok");
	EV(c, RELAY_EV_RCPT, 250, "2.1.5", "Ok");
	{
		const struct relay_event *ev = relay_client_event(c);

		CHECK(ev && ev->index == 1 && ev->reply.lines == 2);
	}
	EV(c, RELAY_EV_RCPT, 550, "5.1.1",
	   "<nobody@example.com>: Recipient address rejected:\n"
	   "User unknown in virtual mailbox table");
	CHECK(relay_client_event(c) && relay_client_event(c)->index == 2);
	EV(c, RELAY_EV_RCPT, 250, "2.1.5", "Ok");
	EV(c, RELAY_EV_DATA, 354, "", "End data with <CR><LF>.<CR><LF>");
	NOEV(c);
	CHECK(relay_client_state(c) == RELAY_ST_BODY);

	CHECK(relay_client_body(c, "Subject: t\r\n\r\n", 14) == 14);
	CHECK(relay_client_body(c, "..leading dot\r\n", 15) == 15);
	OUT(c, "Subject: t\r\n\r\n..leading dot\r\n");
	CHECK(relay_client_commit(c) == 0);
	OUT(c, ".\r\n");
	CHECK(relay_client_state(c) == RELAY_ST_EOD);
	feed(c, "250 2.0.0 Ok: queued as 4XyZ\r\n");
	EV(c, RELAY_EV_DATA_END, 250, "2.0.0", "Ok: queued as 4XyZ");
	CHECK(relay_client_state(c) == RELAY_ST_READY);

	/* Reuse: RSET first (liveness), then a second transaction. */
	CHECK(relay_client_rset(c) == 0);
	OUT(c, "RSET\r\n");
	feed(c, "250 2.0.0 Ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);
	m.sender = "";
	m.params = NULL;
	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rcpt(c, "bob@example.com", NULL) == 0);
	CHECK(relay_client_data(c) == 0);
	OUT(c, "MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
	feed(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	EV(c, RELAY_EV_MAIL, 250, "", "ok");
	EV(c, RELAY_EV_RCPT, 250, "", "ok");
	EV(c, RELAY_EV_DATA, 354, "", "go");
	/* A body that does not end in CRLF gets one before the dot. */
	CHECK(relay_client_body(c, "x", 1) == 1);
	CHECK(relay_client_commit(c) == 0);
	OUT(c, "x\r\n.\r\n");
	feed(c, "554 5.7.1 spam\r\n");
	EV(c, RELAY_EV_DATA_END, 554, "5.7.1", "spam");
	CHECK(relay_client_stats(c)->transactions == 2);

	CHECK(relay_client_quit(c) == 0);
	OUT(c, "QUIT\r\n");
	feed(c, "221 2.0.0 Bye\r\n");
	EV(c, RELAY_EV_CLOSED, 0, NULL, NULL);
	CHECK(relay_client_done(c));
	relay_client_destroy(c);
}

/* Without PIPELINING, commands go one at a time. */
static void test_no_pipelining(void)
{
	struct relay_client *c = up(NULL, EHLO_PLAIN);
	struct relay_mail m = {.sender = "a@b.c"};

	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	relay_client_rcpt(c, "w@y.z", NULL);
	relay_client_data(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "250 ok\r\n");
	OUT(c, "RCPT TO:<x@y.z>\r\n");
	feed(c, "250 ok\r\n");
	OUT(c, "RCPT TO:<w@y.z>\r\n");
	feed(c, "450 4.2.0 greylisted\r\n");
	OUT(c, "DATA\r\n");
	feed(c, "354 go\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 450, "4.2.0", "greylisted");
	EV(c, RELAY_EV_DATA, 354, NULL, NULL);
	relay_client_destroy(c);
}

/* Replies split at every byte still parse. */
static void test_bytewise(void)
{
	struct relay_client *c = mk(NULL, NULL);
	const char *s = "220-hi\r\n220 there\r\n";

	relay_client_connected(c);
	for (size_t i = 0; s[i]; i++)
		CHECK(relay_client_feed(c, s + i, 1) == 1);
	OUT(c, "EHLO mx.test\r\n");
	for (const char *p = EHLO_FULL; *p; p++)
		relay_client_feed(c, p, 1);
	EV(c, RELAY_EV_READY, 0, NULL, NULL);
	CHECK(relay_client_caps(c)->pipelining);
	relay_client_destroy(c);
}

static void test_xclient(void)
{
	struct relay_client_config cfg;
	struct relay_client *c;
	struct relay_xclient x = {.addr = "192.0.2.7",
				  .name = "[UNAVAILABLE]",
				  .helo = "client helo+x=y",
				  .proto = "ESMTP",
				  .login = "user@example.org",
				  .port = 40000};
	struct relay_mail m = {.sender = "a@b.c", .xclient = &x};
	char enc[64];

	CHECK(relay_xtext_encode("a b+c=d\x01", enc, sizeof(enc)) == 16);
	CHECK(strcmp(enc, "a+20b+2Bc+3Dd+01") == 0);
	CHECK(relay_xtext_encode("abcdef", enc, 4) == -ENOSPC);

	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.client_info = RELAY_CINFO_XCLIENT;
	c = up(&cfg, EHLO_FULL);
	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rcpt(c, "r@example.com", NULL) == 0);
	/* XCLIENT ends a pipelining group; PORT was not advertised. */
	OUT(c, "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PROTO=ESMTP "
	       "HELO=client+20helo+2Bx+3Dy LOGIN=user@example.org\r\n");
	feed(c, "220 backend.example ESMTP\r\n");
	OUT(c, "EHLO mx.test\r\n");
	NOEV(c);
	feed(c, EHLO_FULL);
	NOEV(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<r@example.com>\r\n");
	feed(c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, "2.1.0", "Ok");
	EV(c, RELAY_EV_RCPT, 250, "2.1.5", "Ok");
	CHECK(relay_client_abort(c) == RELAY_ABORT_RSET);
	OUT(c, "RSET\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);

	/* A refused XCLIENT is fatal: nothing behind it is sent. */
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PROTO=ESMTP "
	       "HELO=client+20helo+2Bx+3Dy LOGIN=user@example.org\r\n");
	feed(c, "550 5.7.0 Insufficient authorization\r\n");
	ERR(c, RELAY_ERR_REJECTED, RELAY_STEP_XCLIENT);
	OUT(c, "");
	relay_client_destroy(c);

	/* Server without XCLIENT: skipped, counted. */
	c = up(&cfg, EHLO_PLAIN);
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	CHECK(relay_client_stats(c)->xclient_skipped == 1);
	relay_client_destroy(c);
}

static void test_proxy_v2(void)
{
	/* Hand-computed from proxy-protocol.txt 2.2: signature, 0x21 (v2,
	 * PROXY), 0x11 (TCP over IPv4), length 12, 192.0.2.1 ->
	 * 198.18.0.2, ports 12345 (0x3039) -> 25 (0x0019). */
	static const uint8_t want[28] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
		0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 0xC0, 0x00, 0x02, 0x01,
		0xC6, 0x12, 0x00, 0x02, 0x30, 0x39, 0x00, 0x19};
	struct relay_proxy_addr px = {.src_addr = 0xC0000201,
				      .dst_addr = 0xC6120002,
				      .src_port = 12345,
				      .dst_port = 25};
	struct relay_client_config cfg;
	struct relay_client *c;
	uint8_t buf[40];
	const uint8_t *p;
	size_t len;

	CHECK(relay_proxy_v2_encode(&px, buf, sizeof(buf)) == 28);
	CHECK(memcmp(buf, want, 28) == 0);
	CHECK(relay_proxy_v2_encode(&px, buf, 27) == -ENOSPC);
	{
		/* TCP over IPv6: AF_INET6 + STREAM, a 36-octet block */
		static const uint8_t want6[52] = {
			0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55,
			0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x24,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0x01,
			0xfd, 0x00, 0x6d, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0x02,
			0x30, 0x39, 0x00, 0x19};
		struct relay_proxy_addr p6 = {.v6 = true,
					      .src_port = 12345,
					      .dst_port = 25};
		uint8_t b6[64];

		memcpy(p6.src6, want6 + 16, 16);
		memcpy(p6.dst6, want6 + 32, 16);
		CHECK(relay_proxy_v2_encode(&p6, b6, sizeof(b6)) == 52);
		CHECK(memcmp(b6, want6, 52) == 0);
		CHECK(relay_proxy_v2_encode(&p6, b6, 51) == -ENOSPC);
	}

	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.client_info = RELAY_CINFO_PROXY;
	CHECK(relay_client_create(&cfg, NULL, now) == NULL);
	c = relay_client_create(&cfg, &px, now);
	p = relay_client_output(c, &len);
	CHECK(len == 28 && memcmp(p, want, 28) == 0);
	relay_client_output_consume(c, len);
	relay_client_connected(c);
	feed(c, "220 hi\r\n");
	OUT(c, "EHLO mx.test\r\n");
	relay_client_destroy(c);
}

/* A PROXY v2 TLV walk written from proxy-protocol.txt 2.2, apart from
 * the encoder: the header's length covers the address block and the
 * TLVs; each TLV is type, 16-bit length, value; PP2_TYPE_SSL holds
 * client (1), verify (4, network order), then sub-TLVs. */
struct pp2_seen {
	char authority[300], version[64], cipher[80], cn[80];
	int client, n_ssl, n_authority, n_cn;
	long verify;
	bool bad;
};

static void pp2_str(char *dst, size_t cap, const uint8_t *v, size_t n,
		    bool *bad)
{
	if (n >= cap) {
		*bad = true;
		return;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static void pp2_decode(const uint8_t *b, size_t len, struct pp2_seen *o)
{
	size_t block, off;

	memset(o, 0, sizeof(*o));
	o->verify = -1;
	o->client = -1;
	if (len < 16 || b[12] != 0x21) {
		o->bad = true;
		return;
	}
	block = (size_t)b[14] << 8 | b[15];
	if (16 + block != len) {
		o->bad = true;
		return;
	}
	off = 16 + (b[13] == 0x11 ? 12 : b[13] == 0x21 ? 36 : 0);
	while (off < len) {
		size_t n;
		uint8_t t;

		if (off + 3 > len) {
			o->bad = true;
			return;
		}
		t = b[off];
		n = (size_t)b[off + 1] << 8 | b[off + 2];
		off += 3;
		if (off + n > len) {
			o->bad = true;
			return;
		}
		if (t == 0x02) {
			o->n_authority++;
			pp2_str(o->authority, sizeof(o->authority), b + off, n,
				&o->bad);
		} else if (t == 0x20) {
			size_t q = off + 5;

			o->n_ssl++;
			if (n < 5) {
				o->bad = true;
				return;
			}
			o->client = b[off];
			o->verify = (long)b[off + 1] << 24 |
				    (long)b[off + 2] << 16 |
				    (long)b[off + 3] << 8 | b[off + 4];
			while (q < off + n) {
				uint8_t st = b[q];
				size_t sn = (size_t)b[q + 1] << 8 | b[q + 2];

				q += 3;
				if (q + sn > off + n) {
					o->bad = true;
					return;
				}
				if (st == 0x21)
					pp2_str(o->version, sizeof(o->version),
						b + q, sn, &o->bad);
				else if (st == 0x23)
					pp2_str(o->cipher, sizeof(o->cipher),
						b + q, sn, &o->bad);
				else if (st == 0x22) {
					o->n_cn++;
					pp2_str(o->cn, sizeof(o->cn), b + q,
						sn, &o->bad);
				} else
					o->bad = true;
				q += sn;
			}
		} else {
			o->bad = true;
		}
		off += n;
	}
}

/* PROXY v2 with the client's TLS (issue 13): PP2_TYPE_SSL (client
 * flags, verify, VERSION, CIPHER, CN) and PP2_TYPE_AUTHORITY (SNI). */
static void test_proxy_v2_tls(void)
{
	struct relay_proxy_tls t = {.version = "TLSv1.3",
				    .cipher = "TLS_AES_256_GCM_SHA384"};
	struct relay_proxy_addr px = {.src_addr = 0xC0000201,
				      .dst_addr = 0xC6120002,
				      .src_port = 12345,
				      .dst_port = 25,
				      .tls = &t};
	uint8_t buf[RELAY_PROXY_V2_MAX_LEN];
	struct pp2_seen o;
	char big[400];
	int n;

	/* No client certificate, no SNI: only PP2_TYPE_SSL, byte-exact:
	 * 0x20, length 5+3+7+3+22 = 40, client 0x01, verify 1 */
	{
		static const uint8_t want[] = {
			0x20, 0x00, 0x28, 0x01, 0, 0, 0, 1,
			0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
			0x23, 0x00, 0x16};

		n = relay_proxy_v2_encode(&px, buf, sizeof(buf));
		CHECK(n == 28 + 43);
		CHECK(buf[14] == 0 && buf[15] == 12 + 43);
		CHECK(memcmp(buf + 28, want, sizeof(want)) == 0);
		CHECK(memcmp(buf + 28 + sizeof(want), t.cipher, 22) == 0);
		pp2_decode(buf, (size_t)n, &o);
		CHECK(!o.bad && o.n_ssl == 1 && o.n_authority == 0);
		CHECK(o.client == RELAY_PP2_CLIENT_SSL && o.verify == 1);
		CHECK(strcmp(o.version, "TLSv1.3") == 0);
		CHECK(strcmp(o.cipher, "TLS_AES_256_GCM_SHA384") == 0);
		CHECK(o.n_cn == 0);
		CHECK(relay_proxy_v2_encode(&px, buf, (size_t)n - 1) ==
		      -ENOSPC);
	}
	/* A verified client certificate and SNI, over IPv6 */
	t.cn = "partner.example";
	t.sni = "mx.example.net";
	t.cert_conn = t.cert_sess = t.verified = true;
	px.v6 = true;
	px.src6[0] = 0x20;
	px.dst6[0] = 0xfd;
	n = relay_proxy_v2_encode(&px, buf, sizeof(buf));
	CHECK(n > 52);
	pp2_decode(buf, (size_t)n, &o);
	CHECK(!o.bad && o.n_ssl == 1 && o.n_authority == 1 && o.n_cn == 1);
	CHECK(strcmp(o.authority, "mx.example.net") == 0);
	CHECK(strcmp(o.cn, "partner.example") == 0);
	CHECK(o.client == (RELAY_PP2_CLIENT_SSL | RELAY_PP2_CLIENT_CERT_CONN |
			   RELAY_PP2_CLIENT_CERT_SESS));
	CHECK(o.verify == 0);
	/* resumed: the certificate is the session's, not this
	 * connection's; an unverified one says verify != 0 */
	t.cert_conn = false;
	t.verified = false;
	t.cn = NULL;
	px.v6 = false;
	n = relay_proxy_v2_encode(&px, buf, sizeof(buf));
	pp2_decode(buf, (size_t)n, &o);
	CHECK(!o.bad && o.n_cn == 0 && o.verify == 1);
	CHECK(o.client ==
	      (RELAY_PP2_CLIENT_SSL | RELAY_PP2_CLIENT_CERT_SESS));
	/* the longest of everything fits the documented maximum */
	memset(big, 'a', sizeof(big));
	big[RELAY_PP2_MAX_AUTHORITY] = '\0';
	t.sni = big;
	{
		char v[RELAY_PP2_MAX_VERSION + 1], c[RELAY_PP2_MAX_CIPHER + 1],
			cn[RELAY_PP2_MAX_CN + 1];

		memset(v, 'v', sizeof(v));
		v[RELAY_PP2_MAX_VERSION] = '\0';
		memset(c, 'c', sizeof(c));
		c[RELAY_PP2_MAX_CIPHER] = '\0';
		memset(cn, 'n', sizeof(cn));
		cn[RELAY_PP2_MAX_CN] = '\0';
		t.version = v;
		t.cipher = c;
		t.cn = cn;
		px.v6 = true;
		n = relay_proxy_v2_encode(&px, buf, sizeof(buf));
		CHECK(n == RELAY_PROXY_V2_MAX_LEN);
		pp2_decode(buf, (size_t)n, &o);
		CHECK(!o.bad && strlen(o.authority) == RELAY_PP2_MAX_AUTHORITY);
		/* one octet over a bound: refused, not truncated */
		big[RELAY_PP2_MAX_AUTHORITY] = 'a';
		big[RELAY_PP2_MAX_AUTHORITY + 1] = '\0';
		CHECK(relay_proxy_v2_encode(&px, buf, sizeof(buf)) == -EINVAL);
		{
			struct relay_client_config cfg;

			relay_client_config_defaults(&cfg);
			cfg.client_info = RELAY_CINFO_PROXY;
			CHECK(relay_client_create(&cfg, &px, now) == NULL);
		}
	}
	/* a LOCAL header (health check) never carries TLVs */
	memset(&px, 0, sizeof(px));
	px.tls = &t;
	CHECK(relay_proxy_v2_encode(&px, buf, sizeof(buf)) ==
	      RELAY_PROXY_V2_LOCAL_LEN);
}

static void to_body(struct relay_client *c)
{
	struct relay_mail m = {.sender = "a@b.c"};

	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rcpt(c, "x@y.z", NULL) == 0);
	CHECK(relay_client_data(c) == 0);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
	feed(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 250, NULL, NULL);
	EV(c, RELAY_EV_DATA, 354, NULL, NULL);
}

static void test_backpressure(void)
{
	struct relay_client_config cfg;
	struct relay_client *c;
	static char big[4000];
	ssize_t n;
	size_t len;

	memset(big, 'a', sizeof(big));
	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.out_buf_size = 1024;
	c = up(&cfg, EHLO_FULL);
	to_body(c);
	CHECK(relay_client_body_space(c) == 1024 - 5);
	n = relay_client_body(c, big, sizeof(big));
	CHECK(n == 1019);
	CHECK(relay_client_body_space(c) == 0);
	CHECK(relay_client_body(c, big, 10) == 0);
	NOEV(c);
	/* The transport takes a little: not yet worth a WRITABLE. */
	relay_client_output_consume(c, 100);
	NOEV(c);
	relay_client_output_consume(c, 300);
	EV(c, RELAY_EV_WRITABLE, 0, NULL, NULL);
	CHECK(relay_client_body_space(c) == 400);
	CHECK(relay_client_body(c, big, 400) == 400);
	relay_client_output(c, &len);
	CHECK(len == 1019);
	/* The dot always fits: its room is reserved. */
	CHECK(relay_client_commit(c) == 0);
	relay_client_output(c, &len);
	CHECK(len == 1019 + 3 + 2 || len == 1019 + 3);
	relay_client_destroy(c);
}

static void test_abort(void)
{
	struct relay_client *c = up(NULL, EHLO_FULL);
	struct relay_mail m = {.sender = "a@b.c"};
	size_t len;
	const uint8_t *p;

	/* In the body: the dot is never emitted, the body bytes not yet
	 * sent are dropped, the connection must close. */
	to_body(c);
	CHECK(relay_client_body(c, "hello\r\n", 7) == 7);
	CHECK(relay_client_abort(c) == RELAY_ABORT_CLOSE);
	p = relay_client_output(c, &len);
	CHECK(len == 0);
	(void)p;
	CHECK(relay_client_commit(c) == -EPIPE);
	CHECK(relay_client_done(c));
	relay_client_destroy(c);

	/* Body already flushed, then abort: still no dot. */
	c = up(NULL, EHLO_FULL);
	to_body(c);
	relay_client_body(c, "hello\r\n", 7);
	OUT(c, "hello\r\n");
	CHECK(relay_client_abort(c) == RELAY_ABORT_CLOSE);
	OUT(c, "");
	relay_client_destroy(c);

	/* DATA sent, 354 not yet back: RSET would become body text. */
	c = up(NULL, EHLO_FULL);
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	relay_client_data(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
	CHECK(relay_client_abort(c) == RELAY_ABORT_CLOSE);
	OUT(c, "");
	relay_client_destroy(c);

	/* Before DATA: RSET, replies of the aborted commands swallowed. */
	c = up(NULL, EHLO_PLAIN);
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	relay_client_data(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	CHECK(relay_client_abort(c) == RELAY_ABORT_RSET);
	OUT(c, "");
	feed(c, "250 ok\r\n");
	OUT(c, "RSET\r\n");
	NOEV(c);
	feed(c, "250 flushed\r\n");
	EV(c, RELAY_EV_RSET, 250, "", "flushed");
	CHECK(relay_client_state(c) == RELAY_ST_READY);

	/* DATA refused (no valid recipients): abort -> RSET. */
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	relay_client_data(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "250 ok\r\n");
	OUT(c, "RCPT TO:<x@y.z>\r\n");
	feed(c, "550 5.1.1 no\r\n");
	OUT(c, "DATA\r\n");
	feed(c, "554 5.5.1 Error: no valid recipients\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 550, "5.1.1", "no");
	EV(c, RELAY_EV_DATA, 554, "5.5.1", "Error: no valid recipients");
	CHECK(relay_client_abort(c) == RELAY_ABORT_RSET);
	OUT(c, "RSET\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);
	relay_client_destroy(c);
}

/* Each step's deadline fires as a RELAY_ERR_TIMEOUT with that step. */
static void test_timeouts(void)
{
	struct relay_client_config cfg;
	struct relay_client *c;
	struct relay_mail m = {.sender = "a@b.c"};
	struct relay_xclient x = {.addr = "192.0.2.1"};

	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.tmo_connect_ms = 100;
	cfg.tmo_greeting_ms = 200;
	cfg.tmo_ehlo_ms = 300;
	cfg.tmo_xclient_ms = 400;
	cfg.tmo_mail_ms = 500;
	cfg.tmo_rcpt_ms = 600;
	cfg.tmo_data_ms = 700;
	cfg.tmo_data_block_ms = 800;
	cfg.tmo_data_end_ms = 900;
	cfg.tmo_rset_ms = 1000;
	cfg.tmo_quit_ms = 1100;

	now = 1000;
	c = mk(&cfg, NULL);
	CHECK(relay_client_deadline(c) == 1100);
	relay_client_time(c, 1099);
	NOEV(c);
	relay_client_time(c, 1100);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_CONNECT);
	relay_client_destroy(c);

	c = mk(&cfg, NULL);
	relay_client_connected(c);
	CHECK(relay_client_deadline(c) == 1200);
	relay_client_time(c, 1200);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_GREETING);
	relay_client_destroy(c);

	c = mk(&cfg, NULL);
	relay_client_connected(c);
	relay_client_time(c, 1050);
	feed(c, "220 hi\r\n");
	OUT(c, "EHLO mx.test\r\n");
	CHECK(relay_client_deadline(c) == 1350);
	relay_client_time(c, 1350);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_EHLO);
	relay_client_destroy(c);

	cfg.client_info = RELAY_CINFO_XCLIENT;
	c = up(&cfg, EHLO_FULL);
	m.xclient = &x;
	relay_client_mail(c, &m);
	OUT(c, "XCLIENT ADDR=192.0.2.1\r\n");
	CHECK(relay_client_deadline(c) == 1400);
	relay_client_time(c, 1400);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_XCLIENT);
	relay_client_destroy(c);
	cfg.client_info = RELAY_CINFO_NONE;
	m.xclient = NULL;

	c = up(&cfg, EHLO_FULL);
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n");
	CHECK(relay_client_deadline(c) == 1500);
	relay_client_time(c, 1499);
	NOEV(c);
	relay_client_time(c, 1500);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_MAIL);
	relay_client_destroy(c);

	c = up(&cfg, EHLO_FULL);
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n");
	relay_client_time(c, 1100);
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	CHECK(relay_client_deadline(c) == 1700);
	relay_client_time(c, 1700);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_RCPT);
	relay_client_destroy(c);

	now = 1000;
	c = up(&cfg, EHLO_FULL);
	relay_client_mail(c, &m);
	relay_client_rcpt(c, "x@y.z", NULL);
	relay_client_data(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
	feed(c, "250 ok\r\n250 ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 250, NULL, NULL);
	relay_client_time(c, 1700);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_DATA);
	relay_client_destroy(c);

	/* Body output not drained by the backend in time. */
	c = up(&cfg, EHLO_FULL);
	to_body(c);
	CHECK(relay_client_deadline(c) == RELAY_NO_DEADLINE);
	relay_client_time(c, 2000);
	relay_client_body(c, "abc\r\n", 5);
	CHECK(relay_client_deadline(c) == 2800);
	relay_client_time(c, 2500);
	relay_client_output_consume(c, 2); /* progress restarts the clock */
	CHECK(relay_client_deadline(c) == 3300);
	relay_client_time(c, 3300);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_BODY);
	relay_client_destroy(c);

	c = up(&cfg, EHLO_FULL);
	to_body(c);
	relay_client_time(c, 5000);
	relay_client_commit(c);
	OUT(c, ".\r\n");
	CHECK(relay_client_deadline(c) == 5900);
	relay_client_time(c, 5899);
	NOEV(c);
	relay_client_time(c, 5900);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_DATA_END);
	CHECK(relay_client_state(c) == RELAY_ST_FAILED);
	relay_client_destroy(c);

	c = up(&cfg, EHLO_FULL);
	relay_client_rset(c);
	OUT(c, "RSET\r\n");
	relay_client_time(c, 2000);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_RSET);
	relay_client_destroy(c);

	/* A QUIT that times out is simply closed. */
	c = up(&cfg, EHLO_FULL);
	relay_client_quit(c);
	OUT(c, "QUIT\r\n");
	relay_client_time(c, 2100);
	EV(c, RELAY_EV_CLOSED, 0, NULL, NULL);
	relay_client_destroy(c);
	now = 0;
}

static void test_disconnects(void)
{
	struct relay_client *c = up(NULL, EHLO_FULL);

	/* Mid-DATA: error, never a DATA_END. */
	to_body(c);
	relay_client_body(c, "partial\r\n", 9);
	OUT(c, "partial\r\n");
	relay_client_eof(c);
	ERR(c, RELAY_ERR_CLOSED, RELAY_STEP_BODY);
	NOEV(c);
	CHECK(relay_client_body(c, "x", 1) == -EPIPE);
	CHECK(relay_client_commit(c) == -EPIPE);
	relay_client_destroy(c);

	/* After the dot, before the reply. */
	c = up(NULL, EHLO_FULL);
	to_body(c);
	relay_client_commit(c);
	OUT(c, ".\r\n");
	relay_client_eof(c);
	ERR(c, RELAY_ERR_CLOSED, RELAY_STEP_DATA_END);
	relay_client_destroy(c);

	/* 421 in the middle of pipelined RCPTs: that reply is reported,
	 * then everything else fails. */
	c = up(NULL, EHLO_FULL);
	{
		struct relay_mail m = {.sender = "a@b.c"};

		relay_client_mail(c, &m);
		relay_client_rcpt(c, "x@y.z", NULL);
		relay_client_rcpt(c, "w@y.z", NULL);
		relay_client_data(c);
	}
	OUT(c, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nRCPT TO:<w@y.z>\r\n"
	       "DATA\r\n");
	feed(c, "250 ok\r\n421 4.3.2 shutting down\r\n");
	EV(c, RELAY_EV_MAIL, 250, NULL, NULL);
	EV(c, RELAY_EV_RCPT, 421, "4.3.2", "shutting down");
	ERR(c, RELAY_ERR_SHUTDOWN, RELAY_STEP_RCPT);
	NOEV(c);
	relay_client_destroy(c);

	/* Idle connection closed by the backend. */
	c = up(NULL, EHLO_FULL);
	relay_client_eof(c);
	ERR(c, RELAY_ERR_CLOSED, RELAY_STEP_NONE);
	relay_client_destroy(c);
}

static void test_protocol_errors(void)
{
	struct relay_client *c = mk(NULL, NULL);
	char longline[3000];

	relay_client_connected(c);
	feed(c, "2x0 what\r\n");
	ERR(c, RELAY_ERR_PROTOCOL, RELAY_STEP_GREETING);
	relay_client_destroy(c);

	/* Code changes inside a multi-line reply. */
	c = mk(NULL, NULL);
	relay_client_connected(c);
	feed(c, "220-a\r\n250 b\r\n");
	ERR(c, RELAY_ERR_PROTOCOL, RELAY_STEP_GREETING);
	relay_client_destroy(c);

	/* Over-long line. */
	c = mk(NULL, NULL);
	relay_client_connected(c);
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "220 ", 4);
	relay_client_feed(c, longline, sizeof(longline));
	ERR(c, RELAY_ERR_PROTOCOL, RELAY_STEP_GREETING);
	relay_client_destroy(c);

	/* Unsolicited reply on an idle connection. */
	c = up(NULL, EHLO_FULL);
	feed(c, "250 surprise\r\n");
	ERR(c, RELAY_ERR_PROTOCOL, RELAY_STEP_NONE);
	relay_client_destroy(c);

	/* 354 to MAIL. */
	c = up(NULL, EHLO_FULL);
	{
		struct relay_mail m = {.sender = "a@b.c"};

		relay_client_mail(c, &m);
	}
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "354 eh\r\n");
	ERR(c, RELAY_ERR_PROTOCOL, RELAY_STEP_MAIL);
	relay_client_destroy(c);

	/* Command injection through arguments is refused. */
	c = up(NULL, EHLO_FULL);
	{
		struct relay_mail m = {.sender = "a@b.c\r\nRCPT TO:<x>"};

		CHECK(relay_client_mail(c, &m) == -EINVAL);
		m.sender = "a@b.c";
		m.params = "SIZE=1\rX";
		CHECK(relay_client_mail(c, &m) == -EINVAL);
		m.params = NULL;
		CHECK(relay_client_mail(c, &m) == 0);
		CHECK(relay_client_rcpt(c, "x>\r\nDATA", NULL) == -EINVAL);
		CHECK(relay_client_rcpt(c, "", NULL) == -EINVAL);
	}
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	CHECK(relay_client_mail(c, &(struct relay_mail){.sender = "a"}) ==
	      -EBUSY);
	relay_client_destroy(c);
}

/* Issue 11: the relay client sends every address the SMTP engine accepts,
 * as written (quoted local parts with '<', '>', '@', ' ' included), and
 * refuses the others with -EINVAL leaving its state as it was. Each octet
 * in a dot-atom, a quoted string and a quoted pair; literals; SMTPUTF8. */
static void addr_case(const char *addr, size_t n, bool want)
{
	struct relay_client *c = up(NULL, EHLO_FULL);
	struct relay_mail m = {.sender = "s@example.org"};
	char a[128], line[300];
	int r;

	memcpy(a, addr, n);
	a[n] = '\0';
	/* MAIL FROM (the reverse path) */
	m.sender = a;
	r = relay_client_mail(c, &m);
	if (strlen(a) != n) /* a NUL inside: refused (it ends the string) */
		want = false;
	CHECK(want ? r == 0 : r == -EINVAL);
	if (r == 0) {
		snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", a);
		OUT(c, line);
		feed(c, "250 2.1.0 Ok\r\n");
		EV(c, RELAY_EV_MAIL, 250, "2.1.0", "Ok");
	} else {
		CHECK(relay_client_state(c) == RELAY_ST_READY);
		OUT(c, "");
		m.sender = "s@example.org";
		CHECK(relay_client_mail(c, &m) == 0);
		OUT(c, "MAIL FROM:<s@example.org>\r\n");
		feed(c, "250 2.1.0 Ok\r\n");
		EV(c, RELAY_EV_MAIL, 250, "2.1.0", "Ok");
	}
	/* RCPT TO (the forward path) */
	r = relay_client_rcpt(c, a, NULL);
	CHECK(want ? r == 0 : r == -EINVAL);
	CHECK(relay_client_state(c) == RELAY_ST_TXN);
	if (r == 0) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", a);
		OUT(c, line);
	} else {
		OUT(c, "");
	}
	relay_client_destroy(c);
}

#define ADDR(s, w) addr_case(s, sizeof(s) - 1, w)

static void test_addresses(void)
{
	char b[64];

	for (int o = 1; o < 256; o++) {
		bool atext = (o >= 'a' && o <= 'z') || (o >= 'A' && o <= 'Z') ||
			     (o >= '0' && o <= '9') ||
			     strchr("!#$%&'*+-/=?^_`{|}~", o);
		bool qtext = o >= 32 && o <= 126 && o != '"' && o != '\\';

		if (o >= 0x80)
			break; /* a lone octet >= 0x80 is not UTF-8: below */
		memcpy(b, "axb@example.com", 16);
		b[1] = (char)o;
		addr_case(b, 15, atext || o == '.');
		memcpy(b, "\"axb\"@example.com", 18);
		b[2] = (char)o;
		addr_case(b, 17, qtext || o == '\\');
		memcpy(b, "\"a\\xb\"@example.com", 19);
		b[3] = (char)o;
		addr_case(b, 18, o >= 32 && o <= 126);
	}
	ADDR("\"a>b\"@attacker.test", true);
	ADDR("\"<a@b>\"@x.test", true);
	ADDR("\"john doe\"@x.test", true);
	ADDR("u@[198.18.0.1]", true);
	ADDR("u@[IPv6:2001:db8::1]", true);
	ADDR("u@[tag:x]", true);
	ADDR("u@[300.0.0.1]", false);
	ADDR("\xc3\xbcser@\xc3\xbc" "ber.example", true);
	ADDR("\"\xe2\x82\xac\"@x.test", true);
	ADDR("\xc3" "x@x.test", false);
	ADDR("a>b@x.test", false);
	ADDR("a..b@x.test", false);
	ADDR("u@x.test>\r\nDATA", false);
	ADDR("u@x_y.test", false);
	ADDR("a\0b@x.test", false);
	/* the null reverse path is MAIL only; postmaster is RCPT only */
	{
		struct relay_client *c = up(NULL, EHLO_FULL);

		CHECK(relay_client_mail(c, &(struct relay_mail){.sender = ""}) ==
		      0);
		CHECK(relay_client_rcpt(c, "PostMaster", NULL) == 0);
		CHECK(relay_client_rcpt(c, "", NULL) == -EINVAL);
		OUT(c, "MAIL FROM:<>\r\nRCPT TO:<PostMaster>\r\n");
		relay_client_destroy(c);
		c = up(NULL, EHLO_FULL);
		CHECK(relay_client_mail(c, &(struct relay_mail){
						   .sender = "postmaster"}) ==
		      -EINVAL);
		relay_client_destroy(c);
	}
}

/* 40 pipelined RCPTs answered in one burst: the bounded event queue holds
 * input back; every reply still comes out, in order. */
static void test_event_backlog(void)
{
	struct relay_client *c = up(NULL, EHLO_FULL);
	struct relay_mail m = {.sender = "a@b.c"};
	char replies[4096];
	size_t off = 0, taken = 0, len;
	int i, seen = 0;

	relay_client_mail(c, &m);
	off += (size_t)sprintf(replies + off, "250 ok\r\n");
	for (i = 0; i < 40; i++) {
		char r[32];

		snprintf(r, sizeof(r), "u%d@y.z", i);
		CHECK(relay_client_rcpt(c, r, NULL) == i);
		off += (size_t)sprintf(replies + off, "%s %d\r\n",
				       i % 3 ? "250 2.1.5" : "550 5.1.1", i);
	}
	relay_client_output(c, &len);
	relay_client_output_consume(c, len);
	while (taken < off || relay_client_event(c)) {
		const struct relay_event *ev;

		taken += relay_client_feed(c, replies + taken, off - taken);
		while ((ev = relay_client_event(c)) != NULL) {
			if (ev->type == RELAY_EV_RCPT) {
				char want[16];

				snprintf(want, sizeof(want), "%d", seen);
				CHECK(ev->index == (uint32_t)seen);
				CHECK(ev->reply.code == (seen % 3 ? 250 : 550));
				CHECK(strcmp(ev->reply.text, want) == 0);
				seen++;
			}
			relay_client_event_pop(c);
		}
	}
	CHECK(seen == 40);
	relay_client_destroy(c);
}

/* relay_client_rset_lazy: the RSET between transactions rides ahead of
 * the next MAIL in one pipelined group; its reply raises no event; a
 * refused one fails the connection before any event of the new
 * transaction; without PIPELINING it goes alone first; XCLIENT drops it. */
static void test_lazy_rset(void)
{
	struct relay_client_config cfg;
	struct relay_client *c = up(NULL, EHLO_FULL);
	struct relay_xclient x = {.addr = "192.0.2.7"};
	struct relay_mail m = {.sender = "a@b.c"};

	CHECK(relay_client_rset_lazy(c) == 0);
	OUT(c, "");
	CHECK(relay_client_state(c) == RELAY_ST_READY);
	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rcpt(c, "r@example.com", NULL) == 0);
	OUT(c, "RSET\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<r@example.com>\r\n");
	feed(c, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, "2.1.0", "Ok");
	EV(c, RELAY_EV_RCPT, 250, "2.1.5", "Ok");
	NOEV(c);
	CHECK(relay_client_data(c) == 0);
	OUT(c, "DATA\r\n");
	feed(c, "354 go\r\n");
	EV(c, RELAY_EV_DATA, 354, "", "go");
	CHECK(relay_client_commit(c) == 0);
	OUT(c, ".\r\n");
	feed(c, "250 2.0.0 queued\r\n");
	EV(c, RELAY_EV_DATA_END, 250, "2.0.0", "queued");
	/* Owed once: the transaction after it starts with RSET again,
	 * the one after an explicit RSET does not. */
	CHECK(relay_client_rset_lazy(c) == 0);
	CHECK(relay_client_rset(c) == 0);
	OUT(c, "RSET\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, "", "ok");
	CHECK(relay_client_abort(c) == RELAY_ABORT_RSET);
	OUT(c, "RSET\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);
	/* Not READY: refused. */
	CHECK(relay_client_mail(c, &m) == 0);
	CHECK(relay_client_rset_lazy(c) == -EBUSY);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, "", "ok");
	CHECK(relay_client_abort(c) == RELAY_ABORT_RSET);
	OUT(c, "RSET\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_RSET, 250, NULL, NULL);
	/* A refused RSET fails the connection: no MAIL event. */
	CHECK(relay_client_rset_lazy(c) == 0);
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "RSET\r\nMAIL FROM:<a@b.c>\r\n");
	feed(c, "451 4.3.0 try later\r\n250 ok\r\n");
	ERR(c, RELAY_ERR_REJECTED, RELAY_STEP_RSET);
	NOEV(c);
	CHECK(relay_client_state(c) == RELAY_ST_FAILED);
	relay_client_destroy(c);

	/* Without PIPELINING: RSET alone, MAIL after its reply. */
	c = up(NULL, EHLO_PLAIN);
	CHECK(relay_client_rset_lazy(c) == 0);
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "RSET\r\n");
	NOEV(c);
	feed(c, "250 ok\r\n");
	NOEV(c);
	OUT(c, "MAIL FROM:<a@b.c>\r\n");
	feed(c, "250 ok\r\n");
	EV(c, RELAY_EV_MAIL, 250, "", "ok");
	relay_client_destroy(c);

	/* XCLIENT resets the session: no RSET in front of it. */
	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.client_info = RELAY_CINFO_XCLIENT;
	c = up(&cfg, EHLO_FULL);
	m.xclient = &x;
	CHECK(relay_client_rset_lazy(c) == 0);
	CHECK(relay_client_mail(c, &m) == 0);
	OUT(c, "XCLIENT ADDR=192.0.2.7\r\n");
	relay_client_destroy(c);
}

/* STARTTLS to the backend (issue 13): offered -> STARTTLS, 220 ->
 * RELAY_EV_STARTTLS, no input or output until tls_done, then EHLO again
 * and READY; the three ways "required" fails; opportunistic in clear. */
static const char *EHLO_TLS = "250-backend.example\r\n"
			      "250-PIPELINING\r\n"
			      "250 STARTTLS\r\n";

static struct relay_client *tls_mk(enum relay_tls mode)
{
	struct relay_client_config cfg;
	struct relay_client *c;

	relay_client_config_defaults(&cfg);
	cfg.helo_name = "mx.test";
	cfg.tls = mode;
	cfg.tmo_ehlo_ms = 1000;
	c = mk(&cfg, NULL);
	CHECK(c != NULL);
	if (c == NULL)
		exit(1);
	CHECK(relay_client_connected(c) == 0);
	feed(c, "220 backend.example ESMTP\r\n");
	OUT(c, "EHLO mx.test\r\n");
	return c;
}

/* STARTTLS offered, sent and answered 220: the caller's handshake. */
static struct relay_client *tls_at_handshake(enum relay_tls mode)
{
	struct relay_client *c = tls_mk(mode);

	feed(c, EHLO_TLS);
	OUT(c, "STARTTLS\r\n");
	feed(c, "220 go ahead\r\n");
	EV(c, RELAY_EV_STARTTLS, 220, "", NULL);
	return c;
}

static void test_starttls(void)
{
	struct relay_client *c;
	struct relay_mail m = {.sender = "a@b.example"};
	const struct relay_caps *k;

	/* offered: STARTTLS, then nothing until the handshake is done */
	c = tls_mk(RELAY_TLS_REQUIRED);
	feed(c, EHLO_TLS);
	NOEV(c);
	OUT(c, "STARTTLS\r\n");
	CHECK(relay_client_state(c) == RELAY_ST_SETUP);
	/* the 220 with cleartext injected behind it (CVE-2011-0411 class) */
	feed(c, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n");
	EV(c, RELAY_EV_STARTTLS, 220, "2.0.0", NULL);
	CHECK(relay_client_stats(c)->starttls_discarded == 14);
	feed(c, "\x16\x03\x03");
	CHECK(relay_client_stats(c)->starttls_discarded == 17);
	OUT(c, "");
	CHECK(relay_client_mail(c, &m) == -EBUSY);
	CHECK(!relay_client_tls_active(c));
	CHECK(relay_client_tls_done(c, true) == 0);
	CHECK(relay_client_tls_done(c, true) == -EINVAL);
	CHECK(relay_client_tls_active(c));
	OUT(c, "EHLO mx.test\r\n");
	feed(c, "250-backend.example\r\n250 PIPELINING\r\n");
	EV(c, RELAY_EV_READY, 0, "", "");
	CHECK(relay_client_state(c) == RELAY_ST_READY);
	k = relay_client_caps(c);
	CHECK(k->pipelining && !k->starttls);
	relay_client_destroy(c);

	/* required, not offered: fails at the starttls step */
	c = tls_mk(RELAY_TLS_REQUIRED);
	feed(c, EHLO_PLAIN);
	ERR(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS);
	CHECK(relay_client_state(c) == RELAY_ST_FAILED);
	relay_client_destroy(c);

	/* required, refused */
	c = tls_mk(RELAY_TLS_REQUIRED);
	feed(c, EHLO_TLS);
	OUT(c, "STARTTLS\r\n");
	feed(c, "454 4.7.0 TLS not available\r\n");
	ERR(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS);
	relay_client_destroy(c);

	/* required, handshake failed (a wrong name, a pin mismatch) */
	c = tls_at_handshake(RELAY_TLS_REQUIRED);
	CHECK(relay_client_tls_done(c, false) == 0);
	ERR(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS);
	OUT(c, "");
	relay_client_destroy(c);

	/* required, HELO fallback: no ESMTP, no STARTTLS */
	c = tls_mk(RELAY_TLS_REQUIRED);
	feed(c, "502 no EHLO\r\n");
	OUT(c, "HELO mx.test\r\n");
	feed(c, "250 hi\r\n");
	ERR(c, RELAY_ERR_TLS, RELAY_STEP_STARTTLS);
	relay_client_destroy(c);

	/* handshake that never ends: the EHLO time-out bounds it */
	c = tls_at_handshake(RELAY_TLS_REQUIRED);
	CHECK(relay_client_deadline(c) == now + 1000);
	relay_client_time(c, now + 999);
	NOEV(c);
	relay_client_time(c, now + 1000);
	ERR(c, RELAY_ERR_TIMEOUT, RELAY_STEP_STARTTLS);
	relay_client_destroy(c);

	/* opportunistic: not offered -> clear; refused -> clear */
	c = tls_mk(RELAY_TLS_OPPORTUNISTIC);
	feed(c, EHLO_PLAIN);
	EV(c, RELAY_EV_READY, 0, "", "");
	CHECK(!relay_client_tls_active(c));
	relay_client_destroy(c);
	c = tls_mk(RELAY_TLS_OPPORTUNISTIC);
	feed(c, EHLO_TLS);
	OUT(c, "STARTTLS\r\n");
	feed(c, "454 4.7.0 TLS not available\r\n");
	EV(c, RELAY_EV_READY, 0, "", "");
	CHECK(relay_client_state(c) == RELAY_ST_READY);
	relay_client_destroy(c);

	/* off: STARTTLS offered and ignored */
	c = tls_mk(RELAY_TLS_OFF);
	feed(c, EHLO_TLS);
	EV(c, RELAY_EV_READY, 0, "", "");
	OUT(c, "");
	relay_client_destroy(c);

	/* QUIT mid-handshake: nothing in clear, closed */
	c = tls_at_handshake(RELAY_TLS_OPPORTUNISTIC);
	CHECK(relay_client_quit(c) == 0);
	OUT(c, "");
	CHECK(relay_client_done(c));
	relay_client_destroy(c);
}

int main(void)
{
	test_ehlo_caps();
	test_helo_fallback();
	test_greeting_refused();
	test_pipelined_transaction();
	test_no_pipelining();
	test_bytewise();
	test_xclient();
	test_lazy_rset();
	test_proxy_v2();
	test_proxy_v2_tls();
	test_backpressure();
	test_abort();
	test_timeouts();
	test_disconnects();
	test_protocol_errors();
	test_event_backlog();
	test_addresses();
	test_starttls();
	printf("relay_client: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
