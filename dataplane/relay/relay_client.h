/*
 * relay_client.h - sans-I/O SMTP client for one backend connection of the
 * in-line relay (DESIGN section 5). Bytes and time in; command bytes and
 * events out. It never touches a socket, a clock or a file.
 *
 * Ownership: a struct relay_client belongs to the one lcore (or thread) that
 * owns the backend TCP connection; nothing here is thread-safe and nothing
 * needs to be. All memory is one block sized by relay_client_memsize(),
 * given by the caller (relay_client_init) or malloc'd once
 * (relay_client_create). Nothing allocates after that.
 *
 * How the glue drives it:
 *
 *   c = relay_client_create(&cfg, &proxy_or_NULL, now);   // CONNECTING
 *   (TCP connect) ... relay_client_connected(c);          // wait for 220
 *   loop:
 *     relay_client_time(c, now);                // before anything else
 *     n = relay_client_feed(c, bytes, len);     // backend replies
 *     out = relay_client_output(c, &len) -> tcp send; ..._output_consume()
 *     while ((ev = relay_client_event(c))) { handle; relay_client_event_pop(c);
 * } arm a timer for relay_client_deadline(c) TCP closed/reset by the backend ->
 * relay_client_eof(c)
 *
 * A transaction:
 *   RELAY_EV_READY                       greeting + EHLO done (or after RSET)
 *   relay_client_mail(c, &mail)          [XCLIENT.. 220, EHLO 250,] MAIL
 *   relay_client_rcpt(c, addr, params)   (any number, pipelined if offered)
 *   relay_client_data(c)                 DATA, pipelined after the RCPTs
 *   RELAY_EV_MAIL, RELAY_EV_RCPT x n, RELAY_EV_DATA   (one per command, in
 *                                        order, replies verbatim)
 *   relay_client_body(c, ...)            only after RELAY_EV_DATA code 354;
 *                                        RELAY_EV_WRITABLE after a short take
 *   relay_client_commit(c)               "." CRLF -> RELAY_EV_DATA_END
 *   or relay_client_abort(c)             never sends the dot (see there)
 *
 * Safety rule: RELAY_EV_ERROR means every command still unanswered failed,
 * no further event will report success, and the connection must be closed.
 * The caller answers its client 4xx for anything not yet answered; a 250 can
 * only come from a RELAY_EV_DATA_END whose reply code is 250.
 */
#ifndef MXG_RELAY_CLIENT_H
#define MXG_RELAY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct relay_client;

/* How the backend learns who the real client is (chosen per pool). */
enum relay_client_info {
	RELAY_CINFO_NONE = 0,
	RELAY_CINFO_XCLIENT, /* Postfix XCLIENT before each transaction */
	RELAY_CINFO_PROXY,   /* PROXY protocol v2 header, once per connection */
};

/* STARTTLS to the backend (RFC 3207; issue 13), chosen per pool. */
enum relay_tls {
	RELAY_TLS_OFF = 0,
	RELAY_TLS_OPPORTUNISTIC, /* when offered; in clear when not (or
				    when STARTTLS is refused) */
	RELAY_TLS_REQUIRED,	 /* not offered, refused, or a failed
				    handshake: RELAY_ERR_TLS */
};

struct relay_client_config {
	const char *helo_name; /* our EHLO argument; <= 255 octets */
	enum relay_client_info client_info;
	enum relay_tls tls;

	/* Per-step time-outs in milliseconds; 0 = default (in brackets).
	 * The defaults are below the RFC 5321 4.5.3.2 minimums on purpose:
	 * the client behind us waits with its own RFC time-outs, and must get
	 * our 4xx before it gives up. */
	uint32_t tmo_connect_ms;    /* TCP connect (10 s) */
	uint32_t tmo_greeting_ms;   /* 220 greeting (60 s) */
	uint32_t tmo_ehlo_ms;	    /* EHLO/HELO reply (60 s) */
	uint32_t tmo_xclient_ms;    /* XCLIENT 220 reply (60 s) */
	uint32_t tmo_mail_ms;	    /* MAIL reply (120 s) */
	uint32_t tmo_rcpt_ms;	    /* each RCPT reply (120 s) */
	uint32_t tmo_data_ms;	    /* DATA 354 reply (120 s) */
	uint32_t tmo_data_block_ms; /* output not drained (backend not
				       reading), any phase (180 s) */
	uint32_t tmo_data_end_ms;   /* reply to the final dot (300 s) */
	uint32_t tmo_rset_ms;	    /* RSET reply (30 s) */
	uint32_t tmo_quit_ms;	    /* QUIT reply (10 s) */

	uint32_t out_buf_size; /* output (commands + body), >= 1024
				  (16384); bounds body memory */
};

/* Fills cfg with the defaults (helo_name "localhost"). */
void relay_client_config_defaults(struct relay_client_config *cfg);

/* What a PROXY v2 header says about the client's TLS (proxy-protocol.txt
 * 2.2.5/2.2.6): PP2_TYPE_SSL with PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN /
 * _SESS and verify, sub-TLVs VERSION, CIPHER and (cn set) CN; and
 * PP2_TYPE_AUTHORITY with the SNI (sni set). Strings are NUL-terminated
 * and at most the RELAY_PP2_MAX_* below (longer: the encoder refuses). */
struct relay_proxy_tls {
	const char *version; /* "TLSv1.3" */
	const char *cipher;  /* "TLS_AES_256_GCM_SHA384" */
	const char *cn;	     /* verified client certificate's CN; NULL */
	const char *sni;     /* server name the client sent; NULL */
	bool cert_conn;	     /* a client certificate on this connection */
	bool cert_sess;	     /* ...on this TLS session (also resumed) */
	bool verified;	     /* presented and verified: verify = 0 */
};

#define RELAY_PP2_MAX_VERSION 32
#define RELAY_PP2_MAX_CIPHER 64
#define RELAY_PP2_MAX_CN 64
#define RELAY_PP2_MAX_AUTHORITY 255

/* proxy-protocol.txt 2.2 type codes */
#define RELAY_PP2_TYPE_AUTHORITY 0x02
#define RELAY_PP2_TYPE_SSL 0x20
#define RELAY_PP2_SUBTYPE_SSL_VERSION 0x21
#define RELAY_PP2_SUBTYPE_SSL_CN 0x22
#define RELAY_PP2_SUBTYPE_SSL_CIPHER 0x23
#define RELAY_PP2_CLIENT_SSL 0x01
#define RELAY_PP2_CLIENT_CERT_CONN 0x02
#define RELAY_PP2_CLIENT_CERT_SESS 0x04

/* PROXY v2 addresses: TCP over IPv4 (src_addr/dst_addr, host byte
 * order) or, when v6 is set, TCP over IPv6 (src6/dst6, network order);
 * tls, when not NULL, adds the TLS TLVs (not to a LOCAL header). */
struct relay_proxy_addr {
	uint32_t src_addr;
	uint32_t dst_addr;
	uint16_t src_port;
	uint16_t dst_port;
	bool v6;
	uint8_t src6[16];
	uint8_t dst6[16];
	const struct relay_proxy_tls *tls;
};

/* Length of a PROXY v2 TCP4 header, and of a LOCAL one (all-zero
 * addresses: a connection of our own, e.g. a health check). */
#define RELAY_PROXY_V2_TCP4_LEN 28
#define RELAY_PROXY_V2_LOCAL_LEN 16
#define RELAY_PROXY_V2_TCP6_LEN 52 /* 16 + the 36-octet address block */
/* The longest header: TCP6 and every TLS TLV at its longest. */
#define RELAY_PROXY_V2_MAX_LEN                                              \
	(RELAY_PROXY_V2_TCP6_LEN + 3 + RELAY_PP2_MAX_AUTHORITY + 3 + 5 +    \
	 3 + RELAY_PP2_MAX_VERSION + 3 + RELAY_PP2_MAX_CIPHER + 3 +         \
	 RELAY_PP2_MAX_CN)
/* Encodes a PROXY v2 "PROXY" command for TCP over IPv4 or IPv6 (HAProxy
 * proxy-protocol.txt section 2.2) into buf, then a->tls's TLVs; all-zero
 * IPv4 addresses give the LOCAL command instead (no TLVs). Returns the
 * length (28, 52 or 16 without TLVs), -ENOSPC if len is too small, or
 * -EINVAL for a TLS string longer than its RELAY_PP2_MAX_*. */
int relay_proxy_v2_encode(const struct relay_proxy_addr *a, uint8_t *buf,
			  size_t len);

/* xtext encoding (RFC 3461 4, used by XCLIENT): octets outside '!'..'~' and
 * '+' and '=' become "+HH". Returns the encoded length (excluding the NUL
 * written at dst[len]) or -ENOSPC. */
ssize_t relay_xtext_encode(const char *src, char *dst, size_t dstlen);

/* ------------------------------------------------------------------ state */

enum relay_state {
	RELAY_ST_CONNECTING = 0, /* waiting for relay_client_connected() */
	RELAY_ST_SETUP,		 /* greeting / EHLO in progress */
	RELAY_ST_READY,		 /* idle: relay_client_mail() allowed */
	RELAY_ST_TXN,		 /* transaction open (MAIL/RCPT/DATA) */
	RELAY_ST_BODY,		 /* 354 received: body bytes accepted */
	RELAY_ST_EOD,		 /* final dot sent, waiting for the reply */
	RELAY_ST_RSET,		 /* RSET in flight (abort or rset) */
	RELAY_ST_QUIT,		 /* QUIT in flight */
	RELAY_ST_CLOSED,	 /* done: flush output (if any) and close */
	RELAY_ST_FAILED,	 /* RELAY_EV_ERROR raised: close now */
	RELAY_ST__COUNT
};

/* The command (or wait) an event or error belongs to. */
enum relay_step {
	RELAY_STEP_NONE = 0,
	RELAY_STEP_CONNECT,
	RELAY_STEP_GREETING,
	RELAY_STEP_EHLO,
	RELAY_STEP_HELO,
	RELAY_STEP_XCLIENT,
	RELAY_STEP_MAIL,
	RELAY_STEP_RCPT,
	RELAY_STEP_DATA,
	RELAY_STEP_BODY, /* output not drained within tmo_data_block_ms */
	RELAY_STEP_DATA_END,
	RELAY_STEP_RSET,
	RELAY_STEP_QUIT,
	RELAY_STEP_STARTTLS, /* STARTTLS and the TLS handshake */
	RELAY_STEP__COUNT
};

enum relay_error {
	RELAY_ERR_NONE = 0,
	RELAY_ERR_TIMEOUT,  /* a step's deadline passed */
	RELAY_ERR_CLOSED,   /* backend closed the connection unexpectedly */
	RELAY_ERR_PROTOCOL, /* malformed or unexpected reply */
	RELAY_ERR_REJECTED, /* greeting/EHLO/XCLIENT/RSET refused (reply set) */
	RELAY_ERR_SHUTDOWN, /* backend replied 421: it is closing */
	RELAY_ERR_TLS,	    /* tls required: STARTTLS not offered or
			       refused, or the handshake failed */
	RELAY_ERR__COUNT
};

/* Capabilities from the last EHLO reply (RFC 5321 4.1.1.1). */
#define RELAY_XCLIENT_ADDR (1u << 0)
#define RELAY_XCLIENT_NAME (1u << 1)
#define RELAY_XCLIENT_HELO (1u << 2)
#define RELAY_XCLIENT_PROTO (1u << 3)
#define RELAY_XCLIENT_LOGIN (1u << 4)
#define RELAY_XCLIENT_PORT (1u << 5)

struct relay_caps {
	bool esmtp;	   /* EHLO accepted (false after HELO fallback) */
	bool pipelining;   /* RFC 2920 */
	bool size;	   /* RFC 1870 */
	uint64_t size_max; /* SIZE argument, 0 = none given */
	bool eightbitmime; /* RFC 6152 */
	bool smtputf8;	   /* RFC 6531 */
	bool chunking;	   /* RFC 3030 */
	bool dsn;	   /* RFC 3461 */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool starttls;		  /* RFC 3207 (used when cfg.tls asks) */
	bool auth;		  /* RFC 4954: AUTH offered (we never log
				     in; it allows MAIL's AUTH=) */
	bool xclient;		  /* Postfix XCLIENT */
	uint32_t xclient_attrs;	  /* RELAY_XCLIENT_* advertised */
};

/* Maximum reply text kept per event (longer text is truncated). */
#define RELAY_REPLY_TEXT_MAX 1024

/* A backend reply, ready to be relayed verbatim through the SMTP engine's
 * verdict (code, enh, text with '\n' between lines). */
struct relay_reply {
	uint16_t code;	  /* 0: no reply (time-out, close) */
	char enh[16];	  /* RFC 3463 code from the first line, or "" */
	const char *text; /* lines without code and enh, '\n' separated,
			     NUL-terminated; valid until the event is popped */
	uint16_t text_len;
	uint16_t lines;
	bool truncated; /* text was cut at RELAY_REPLY_TEXT_MAX */
};

enum relay_event_type {
	RELAY_EV_NONE = 0,
	RELAY_EV_READY,	   /* connection set up (greeting + EHLO) */
	RELAY_EV_MAIL,	   /* reply to MAIL FROM */
	RELAY_EV_RCPT,	   /* reply to one RCPT TO (index = 0-based order) */
	RELAY_EV_DATA,	   /* reply to DATA: 354 = send the body */
	RELAY_EV_WRITABLE, /* body room again after a short take */
	RELAY_EV_DATA_END, /* reply to the final dot: the message verdict */
	RELAY_EV_RSET,	   /* RSET accepted: READY again, reusable */
	RELAY_EV_CLOSED,   /* QUIT done, or the backend closed after QUIT */
	RELAY_EV_ERROR,	   /* fatal: see error, step, reply; close now */
	RELAY_EV_STARTTLS, /* 220 to STARTTLS: run the TLS handshake as
			      client, then relay_client_tls_done() */
	RELAY_EV__COUNT
};

struct relay_event {
	enum relay_event_type type;
	enum relay_step step;
	enum relay_error error; /* RELAY_EV_ERROR only */
	uint32_t index;		/* RELAY_EV_RCPT: which RCPT (0-based) */
	struct relay_reply reply;
};

/* Statistics, valid for the client's life. */
struct relay_client_stats {
	uint64_t bytes_out;	  /* consumed output octets */
	uint64_t bytes_in;	  /* fed input octets */
	uint64_t body_bytes;	  /* body octets accepted */
	uint32_t commands;	  /* commands sent (incl. the dot) */
	uint32_t round_trips;	  /* commands sent with nothing in flight:
				     the waits for a reply (a pipelined
				     group counts once) */
	uint32_t replies;	  /* complete replies parsed */
	uint32_t transactions;	  /* DATA_END replies received */
	uint32_t xclient_skipped; /* XCLIENT wanted but not offered */
	uint32_t starttls_discarded; /* octets after the 220 to STARTTLS,
					dropped (RFC 3207 5) */
};

/* ------------------------------------------------------------------ API */

/* Bytes of memory a client created with cfg needs. */
size_t relay_client_memsize(const struct relay_client_config *cfg);

/* Builds a client in caller memory (>= relay_client_memsize(cfg), 8-byte
 * aligned). cfg is copied (helo_name too). proxy: addresses for the PROXY
 * v2 header when cfg->client_info is RELAY_CINFO_PROXY (required then,
 * ignored otherwise); the header is the first output (NULL when the
 * encoder refuses it: a TLS string over its bound). Starts the connect
 * time-out at now_ms. Returns NULL if cfg is invalid or size is short. */
struct relay_client *relay_client_init(void *mem, size_t size,
				       const struct relay_client_config *cfg,
				       const struct relay_proxy_addr *proxy,
				       uint64_t now_ms);

/* Same with memory from malloc (once). NULL on failure. */
struct relay_client *relay_client_create(const struct relay_client_config *cfg,
					 const struct relay_proxy_addr *proxy,
					 uint64_t now_ms);
/* Frees a client made by relay_client_create(); NULL is a no-op. */
void relay_client_destroy(struct relay_client *c);

/* The TCP connection is established: wait for the greeting. 0 or -EINVAL
 * if not CONNECTING. */
int relay_client_connected(struct relay_client *c);

/* Backend bytes in. Returns how many were taken; the rest must be offered
 * again after events are popped (the event queue is bounded). */
size_t relay_client_feed(struct relay_client *c, const void *buf, size_t len);

/* The backend closed or reset the connection. Raises RELAY_EV_CLOSED after
 * QUIT, else RELAY_EV_ERROR/RELAY_ERR_CLOSED (nothing after it). */
void relay_client_eof(struct relay_client *c);

/* Output for the backend: pointer and length of what waits. Valid until
 * the next call that changes the client. */
const uint8_t *relay_client_output(const struct relay_client *c, size_t *len);
/* n output bytes were sent (n <= length). May queue RELAY_EV_WRITABLE and
 * release held (non-pipelined) commands. */
void relay_client_output_consume(struct relay_client *c, size_t n);

/* Current time (ms, monotonic). Fires an expired deadline as RELAY_EV_ERROR
 * with RELAY_ERR_TIMEOUT and the step. Call before the other functions. */
void relay_client_time(struct relay_client *c, uint64_t now_ms);
#define RELAY_NO_DEADLINE UINT64_MAX
/* Absolute time (ms) of the next deadline, or RELAY_NO_DEADLINE. */
uint64_t relay_client_deadline(const struct relay_client *c);

/* The oldest event, or NULL. Valid until relay_client_event_pop(). */
const struct relay_event *relay_client_event(const struct relay_client *c);
/* Drops the oldest event and parses any held input. */
void relay_client_event_pop(struct relay_client *c);

/* Who the client is, for XCLIENT (Postfix XCLIENT_README). NULL fields and
 * port 0 are not sent; only attributes the backend advertised are sent.
 * Values are xtext-encoded here. addr: "192.0.2.1" or "IPV6:2001:db8::1";
 * name may be "[UNAVAILABLE]"/"[TEMPUNAVAIL]"; proto "SMTP"/"ESMTP". */
struct relay_xclient {
	const char *addr;
	uint16_t port;
	const char *name;
	const char *helo;
	const char *proto;
	const char *login;
};

struct relay_mail {
	const char *sender; /* mailbox without <>; "" for the null sender */
	const char *params; /* "SIZE=123 BODY=8BITMIME" or NULL; the caller
			       sends only what relay_client_caps() offers */
	const struct relay_xclient *xclient; /* used with RELAY_CINFO_XCLIENT */
};

/* Starts a transaction (state READY): queues [XCLIENT..., EHLO], MAIL.
 * The sender (and each recipient below) must pass smtp_valid_mailbox()
 * (dataplane/smtp/smtp_parse.h), the SMTP engine's own grammar: whatever
 * the engine accepted is sent as written, quoted local parts included.
 * Returns 0, -EINVAL (an address that grammar refuses, CR/LF in params),
 * -EBUSY (not READY), -EPIPE (failed/closed), -ENOSPC (command queue). */
int relay_client_mail(struct relay_client *c, const struct relay_mail *m);
/* Queues RCPT TO:<rcpt> [params]. Returns the 0-based RCPT index or the
 * errors of relay_client_mail(). Sent at once with PIPELINING, else one by
 * one as replies arrive; each reply is a RELAY_EV_RCPT with that index. */
int relay_client_rcpt(struct relay_client *c, const char *rcpt,
		      const char *params);
/* Queues DATA (after the RCPTs). RELAY_EV_DATA with 354 moves to BODY;
 * any other reply leaves the transaction open: relay_client_abort() it. */
int relay_client_data(struct relay_client *c);

/* How many body bytes relay_client_body() would take now (0 if not BODY). */
size_t relay_client_body_space(const struct relay_client *c);
/* Body bytes: canonical CRLF, already dot-stuffed (RFC 5321 4.5.2), never
 * the end-of-data line. Returns how many were taken (maybe fewer than len;
 * RELAY_EV_WRITABLE tells when to try again) or -EINVAL if not in BODY,
 * -EPIPE if failed. */
ssize_t relay_client_body(struct relay_client *c, const void *buf, size_t len);
/* Ends the body: "." CRLF (preceded by CRLF if the body did not end in
 * one), then the reply comes as RELAY_EV_DATA_END. 0, -EINVAL if not BODY,
 * -EAGAIN if the output has no room for the 5 octets (impossible: space
 * is reserved). */
int relay_client_commit(struct relay_client *c);

/* Abandons the open transaction; the final dot is never sent.
 * Returns RELAY_ABORT_RSET when DATA was not yet sent: the queued
 * commands are dropped, replies to those already sent are swallowed, RSET
 * follows and RELAY_EV_RSET reports the connection READY for reuse.
 * Returns RELAY_ABORT_CLOSE once DATA is sent (waiting for 354 or in the
 * body): in that phase RSET would be body text (RFC 5321 4.1.1.4), so
 * pending output is discarded, the state becomes CLOSED, and the caller
 * must close the connection; the backend discards a message whose
 * connection closes before the dot (RFC 5321 3.3). -EINVAL if no
 * transaction is open. */
#define RELAY_ABORT_RSET 0
#define RELAY_ABORT_CLOSE 1
int relay_client_abort(struct relay_client *c);

/* RSET on an idle (READY) connection, e.g. a liveness check before reusing
 * a cached one: RELAY_EV_RSET when accepted. 0, -EBUSY, -EPIPE. */
int relay_client_rset(struct relay_client *c);
/* The RSET between two transactions on a reused connection, without its
 * own round trip: it is sent ahead of the next relay_client_mail()'s MAIL
 * in the same pipelined group (alone first if the backend does not offer
 * PIPELINING), and its reply raises no event; a refusal fails the
 * connection (RELAY_EV_ERROR, step rset) before anything of the new
 * transaction is accepted. Dropped when that MAIL is preceded by XCLIENT,
 * which resets the backend's session itself. State stays READY.
 * 0, -EBUSY (not READY), -EPIPE. */
int relay_client_rset_lazy(struct relay_client *c);
/* QUIT (READY or SETUP): RELAY_EV_CLOSED after 221 or close. 0, -EPIPE. */
int relay_client_quit(struct relay_client *c);

/* STARTTLS (cfg.tls not OFF). After the EHLO reply at set-up: offered ->
 * STARTTLS is sent; its 220 raises RELAY_EV_STARTTLS and from then the
 * client takes no input (octets after the 220 are dropped and counted:
 * they came before TLS) and has no output until the caller ran the
 * handshake and calls relay_client_tls_done(). ok: EHLO again (RFC 3207
 * 4.2: forget what was learnt in clear), then RELAY_EV_READY as usual.
 * Not ok, or (REQUIRED) not offered or refused: RELAY_EV_ERROR with
 * RELAY_ERR_TLS at RELAY_STEP_STARTTLS. OPPORTUNISTIC and not offered or
 * refused: READY in clear. The handshake is bounded by tmo_ehlo_ms.
 * relay_client_tls_done: 0, or -EINVAL when no handshake is awaited. */
int relay_client_tls_done(struct relay_client *c, bool ok);
/* True once the TLS handshake succeeded on this connection. */
bool relay_client_tls_active(const struct relay_client *c);

enum relay_state relay_client_state(const struct relay_client *c);
/* True when the connection must be closed (CLOSED or FAILED) once the
 * output is flushed. */
bool relay_client_done(const struct relay_client *c);
const struct relay_caps *relay_client_caps(const struct relay_client *c);
const struct relay_client_stats *
relay_client_stats(const struct relay_client *c);

const char *relay_state_name(enum relay_state st);
const char *relay_step_name(enum relay_step st);
const char *relay_error_name(enum relay_error e);
const char *relay_event_name(enum relay_event_type t);

#endif /* MXG_RELAY_CLIENT_H */
