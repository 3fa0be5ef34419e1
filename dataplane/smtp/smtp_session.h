/*
 * smtp_session.h - the SMTP server session engine: a sans-I/O RFC 5321
 * state machine with ESMTP extensions. Bytes and time in; reply bytes,
 * backend body bytes and requests out.
 *
 * Ownership: a struct smtp_session belongs to the one lcore (or thread) that
 * owns the client connection; no function here is thread-safe and none needs
 * to be. The engine never touches a socket, a clock, a file or the heap: all
 * its memory is one block obtained at creation (from the caller's allocator
 * callback, or passed in by the caller), sized by smtp_session_memsize().
 * Nothing allocates after that.
 *
 * How a caller drives it (see docs/smtp-engine.md for the full contract):
 *
 *   s = smtp_session_create(&cfg, &alloc, now);      // raises SMTP_REQ_CONNECT
 *   loop:
 *     smtp_session_time(s, now);                      // before feeding/answering
 *     n = smtp_session_feed(s, bytes, len);           // n <= len: rest stays in
 *                                                     // the caller (TCP window)
 *     out = smtp_session_output(s, &len) -> send; smtp_session_output_consume()
 *     d = smtp_session_data(s, &len)     -> backend; smtp_session_data_consume()
 *     ev = smtp_session_event(s)         -> requests: smtp_session_verdict()
 *                                           (now or later); notifications:
 *                                           smtp_session_ack()
 *     arm a timer for smtp_session_deadline(s)
 *     smtp_session_closed(s) -> flush output, close the connection
 *
 * While an event is unanswered the engine processes no further input, so
 * replies always leave in command order whatever the pipelining depth.
 * The one exception is a RCPT the caller defers (SMTP_V_DEFER): its reply
 * keeps its place in the output while further pipelined RCPTs are read,
 * and smtp_session_rcpt_verdict() fills it in later (RFC 2920 order kept).
 */
#ifndef MXG_SMTP_SESSION_H
#define MXG_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

/* ------------------------------------------------------------------ config */

/* What to do with a bare CR or bare LF inside a message body. */
enum smtp_bare_eol_policy {
	SMTP_BARE_EOL_REJECT = 0,  /* 550 5.6.0 and close the connection */
	SMTP_BARE_EOL_NORMALIZE,   /* re-emit as CRLF; never ends the body */
};

/* Listener flags (struct smtp_config.flags). */
#define SMTP_CFG_TLS_AVAILABLE     (1u << 0)  /* offer STARTTLS */
#define SMTP_CFG_TLS_ACTIVE        (1u << 1)  /* already TLS (port 465) */
#define SMTP_CFG_CLEARTEXT_AUTH    (1u << 2)  /* offer AUTH without TLS */
#define SMTP_CFG_SYNC_ENFORCE      (1u << 3)  /* RFC 2920 sync: 554 + close */
#define SMTP_CFG_NO_PIPELINING     (1u << 4)  /* do not advertise PIPELINING */
#define SMTP_CFG_NO_CHUNKING       (1u << 5)  /* no CHUNKING/BDAT */
#define SMTP_CFG_NO_SMTPUTF8       (1u << 6)  /* no SMTPUTF8 */
#define SMTP_CFG_NO_DSN            (1u << 7)  /* no DSN parameters */
#define SMTP_CFG_NO_8BITMIME       (1u << 8)  /* no 8BITMIME */
#define SMTP_CFG_ETRN              (1u << 9)  /* accept ETRN (hand to caller) */
#define SMTP_CFG_NO_VRFY           (1u << 10) /* VRFY -> 502 instead of 252 */
#define SMTP_CFG_TLS_REQUIRED      (1u << 11) /* 530 to MAIL/RCPT/DATA/BDAT/
						 AUTH before STARTTLS */

/*
 * Per-listener configuration. smtp_session_init() copies everything it needs
 * (strings included) into the session, so the config may be freed or
 * swapped (RCU snapshot) while sessions created from it live on.
 * Zero in a numeric field means "the default" (smtp_config_defaults()).
 */
struct smtp_config {
	const char *hostname;        /* our name in replies; <= 255 octets */
	const char *banner;          /* greeting text after "220 host " */
	const char *auth_mechanisms; /* e.g. "PLAIN LOGIN"; NULL/"" = no AUTH */
	uint32_t flags;              /* SMTP_CFG_* */
	enum smtp_bare_eol_policy bare_eol;

	/* RFC 5321 4.5.3.1 limits. */
	uint32_t max_cmd_line;       /* command line incl. CRLF (512) */
	uint32_t max_text_line;      /* body line incl. CRLF (1000) */
	uint32_t max_auth_line;      /* AUTH line incl. CRLF (<= in_buf_size) */
	uint32_t max_rcpts;          /* RCPT per transaction (100) */
	uint64_t max_msg_size;       /* octets; advertised in SIZE (10 MiB) */
	uint32_t max_errors;         /* protocol errors before 421 (10) */
	uint32_t max_rcpt_deferred;  /* RCPT verdicts deferred at once (16,
	                                <= SMTP_RCPT_DEFER_MAX) */

	/* RFC 5321 4.5.3.2 time-outs, milliseconds. The *_wait ones bound how
	 * long the engine waits for the client; the others bound how long it
	 * waits for the caller's verdict (the client is waiting for our reply
	 * for that long), after which it replies 421 4.4.1 and closes. */
	uint32_t tmo_greeting_ms;    /* CONNECT verdict (5 min) */
	uint32_t tmo_command_ms;     /* server waiting for a command (5 min);
	                                also HELO/STARTTLS/AUTH/ETRN verdicts */
	uint32_t tmo_mail_ms;        /* MAIL verdict (5 min) */
	uint32_t tmo_rcpt_ms;        /* RCPT verdict (5 min) */
	uint32_t tmo_data_init_ms;   /* DATA/first BDAT verdict (2 min) */
	uint32_t tmo_data_block_ms;  /* server waiting for body bytes (3 min) */
	uint32_t tmo_data_term_ms;   /* end-of-data verdict (10 min) */

	/* Per-session memory (octets). */
	uint32_t in_buf_size;        /* held/pipelined input (4096) */
	uint32_t out_buf_size;       /* replies not yet taken (4096, >= 2048) */
	uint32_t data_buf_size;      /* body bytes for the backend (16384) */
};

/* Upper bound of smtp_config.max_rcpt_deferred. */
#define SMTP_RCPT_DEFER_MAX 64
/* Octets a deferred RCPT's reply may take at most (RFC 5321 4.5.3.1.5: a
 * reply line is at most 512 octets); longer caller text is cut at a line. */
#define SMTP_RCPT_DEFER_REPLY_MAX 512

/* Fills cfg with the defaults above (hostname "localhost"). */
void smtp_config_defaults(struct smtp_config *cfg);

/* Allocator callback used once by smtp_session_create()/destroy(). */
struct smtp_alloc {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void *ctx;
};

/* ------------------------------------------------------------------ states */

/* The protocol phase. One enum; all transitions live in smtp_session.c. */
enum smtp_state {
	SMTP_ST_CONNECT = 0, /* before the greeting: CONNECT verdict pending */
	SMTP_ST_REJECTED,    /* greeted with 554: only QUIT (RFC 5321 3.1) */
	SMTP_ST_HELO,        /* greeted, waiting for HELO/EHLO */
	SMTP_ST_READY,       /* HELO done, no mail transaction */
	SMTP_ST_MAIL,        /* MAIL accepted, no recipient yet */
	SMTP_ST_RCPT,        /* >= 1 recipient accepted */
	SMTP_ST_DATA,        /* reading a DATA body (after 354) */
	SMTP_ST_BDAT,        /* reading BDAT chunk octets */
	SMTP_ST_BDAT_MORE,   /* between BDAT chunks of one message */
	SMTP_ST_EOM,         /* body complete; DATA_END once data is drained */
	SMTP_ST_AUTH,        /* waiting for an AUTH continuation line */
	SMTP_ST_TLS,         /* 220 sent for STARTTLS, handshake in progress */
	SMTP_ST_CLOSED,      /* final reply written; close after flushing */
	SMTP_ST__COUNT
};

/* ------------------------------------------------------------------ events */

enum smtp_event_type {
	SMTP_EV_NONE = 0,
	/* Requests: answer with smtp_session_verdict(). */
	SMTP_REQ_CONNECT,    /* new connection: greet (accept) or refuse */
	SMTP_REQ_HELO,       /* HELO or EHLO */
	SMTP_REQ_MAIL,       /* MAIL FROM, parsed */
	SMTP_REQ_RCPT,       /* RCPT TO, parsed */
	SMTP_REQ_DATA,       /* DATA (accept -> 354) or first BDAT chunk */
	SMTP_REQ_DATA_END,   /* body complete and drained; answer = final reply */
	SMTP_REQ_STARTTLS,   /* accept -> 220 then TLS; smtp_session_tls_done() */
	SMTP_REQ_AUTH,       /* one SASL step; accept=235, challenge=334, reject */
	SMTP_REQ_ETRN,       /* RFC 1985 */
	/* Notifications: answer with smtp_session_ack(). */
	SMTP_EV_RESET,       /* mail transaction discarded (see reset.reason) */
	SMTP_EV_CLOSE,       /* session over (see close.reason) */
	SMTP_EV_DATA_CHUNK,  /* body bytes in the data area; ack = consume all */
	SMTP_EV__COUNT
};

enum smtp_reset_reason {
	SMTP_RESET_RSET = 0,   /* RSET command */
	SMTP_RESET_HELO,       /* HELO/EHLO inside a transaction */
	SMTP_RESET_SIZE,       /* body exceeded max_msg_size: abort backend */
	SMTP_RESET_LINE,       /* body line exceeded max_text_line: abort */
	SMTP_RESET_BDAT,       /* BDAT chunk rejected: abort */
};

enum smtp_close_reason {
	SMTP_CLOSE_QUIT = 0,   /* client QUIT, 221 sent */
	SMTP_CLOSE_TIMEOUT,    /* client too slow, 421 4.4.2 */
	SMTP_CLOSE_ERRORS,     /* too many errors, 421 4.7.0 */
	SMTP_CLOSE_SYNC,       /* RFC 2920 violation, 554 5.5.0 */
	SMTP_CLOSE_BARE_EOL,   /* bare CR/LF in body under reject, 550 5.6.0 */
	SMTP_CLOSE_VERDICT,    /* caller's verdict said close */
	SMTP_CLOSE_VERDICT_TIMEOUT, /* caller did not answer in time, 421 4.4.1 */
	SMTP_CLOSE_TLS_FAILED, /* smtp_session_tls_done(false) */
	SMTP_CLOSE_SHUTDOWN,   /* smtp_session_shutdown() */
};

/* DSN NOTIFY bits (RFC 3461 4.1). */
#define SMTP_NOTIFY_NEVER   (1u << 0)
#define SMTP_NOTIFY_SUCCESS (1u << 1)
#define SMTP_NOTIFY_FAILURE (1u << 2)
#define SMTP_NOTIFY_DELAY   (1u << 3)

enum smtp_body_type { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

/* Parsed MAIL FROM. Strings are NUL-terminated and live in the session
 * until the transaction ends (DATA_END answered, RESET, or HELO). */
struct smtp_mail {
	const char *addr;      /* mailbox without <> or source route; "" for <> */
	uint16_t addr_len;
	bool null_sender;      /* <> */
	bool utf8;             /* address holds non-ASCII (SMTPUTF8) */
	bool has_size;
	uint64_t size;         /* SIZE= (RFC 1870) */
	enum smtp_body_type body;
	bool smtputf8;         /* SMTPUTF8 parameter (RFC 6531) */
	enum smtp_ret ret;     /* RET= (RFC 3461) */
	const char *envid;     /* ENVID= xtext as sent, or NULL */
	const char *auth;      /* AUTH= xtext as sent (RFC 4954 5), or NULL */
};

/* Parsed RCPT TO. Valid until the event is answered (a deferral answers
 * it: copy what you need before SMTP_V_DEFER). */
struct smtp_rcpt {
	const char *addr;      /* mailbox without <>; "postmaster" allowed */
	uint16_t addr_len;
	bool postmaster;       /* <postmaster> without a domain */
	bool utf8;
	uint8_t notify;        /* SMTP_NOTIFY_* bits, 0 = not given */
	const char *orcpt;     /* ORCPT= as sent ("rfc822;xtext"), or NULL */
	uint32_t index;        /* 0-based RCPT attempt in this transaction */
};

struct smtp_event {
	enum smtp_event_type type;
	uint32_t seq;          /* per-session event number, for logs */
	union {
		struct {
			const char *name;  /* argument as sent */
			bool esmtp;        /* EHLO */
			bool valid;        /* name is a domain or address literal */
		} helo;
		struct smtp_mail mail;
		struct smtp_rcpt rcpt;
		struct {
			bool bdat;         /* started by BDAT, not DATA */
			uint32_t nrcpt;    /* accepted recipients */
		} data;
		struct {
			uint64_t size;     /* message octets (unstuffed, CRLF) */
			uint64_t emitted;  /* octets given in the data area */
			uint32_t nrcpt;
			bool bdat;
		} data_end;
		struct {
			const char *mech;     /* upper-cased mechanism name */
			const char *response; /* base64 as sent; "" for "="; NULL
			                         when the AUTH line had none */
			uint32_t step;        /* 0: AUTH line, 1..: continuation */
		} auth;
		struct {
			const char *node;     /* ETRN argument as sent */
		} etrn;
		struct {
			enum smtp_reset_reason reason;
		} reset;
		struct {
			enum smtp_close_reason reason;
		} close;
		struct {
			const uint8_t *ptr;   /* == smtp_session_data() */
			size_t len;
		} chunk;
	};
};

/* How the caller answers a request. */
enum smtp_verdict_kind {
	SMTP_V_ACCEPT = 0, /* go on; default reply unless code/text given */
	SMTP_V_REJECT,     /* reply code (4xx/5xx) enh text; no state change */
	SMTP_V_CLOSE,      /* reply (default 421 4.3.2) then close */
	SMTP_V_CHALLENGE,  /* AUTH only: "334 text" and wait for a line */
	SMTP_V_DEFER,      /* RCPT only: answer later with
			      smtp_session_rcpt_verdict(rcpt.index); the
			      engine goes on reading pipelined RCPTs */
};

struct smtp_verdict {
	enum smtp_verdict_kind kind;
	uint16_t code;     /* 0 = default for kind and request */
	const char *enh;   /* "5.1.1"; NULL or malformed = class.0.0 */
	const char *text;  /* NULL = default; '\n' separates reply lines;
	                      CR and other controls are replaced by spaces */
};

/* Counters; read at any time, valid for the session's life. */
struct smtp_stats {
	uint32_t commands;          /* command lines processed */
	uint32_t errors;            /* protocol errors counted to max_errors */
	uint32_t sync_violations;   /* RFC 2920 violations seen */
	uint32_t pregreet_bytes;    /* bytes received before the greeting */
	uint32_t starttls_discarded;/* plaintext bytes dropped after STARTTLS */
	uint32_t bare_cr;           /* bare CR in bodies */
	uint32_t bare_lf;           /* bare LF in bodies */
	uint32_t nul_dropped;       /* NUL octets removed from bodies */
	uint32_t messages;          /* DATA_END raised */
	uint32_t long_lines;        /* over-long command lines */
	uint64_t body_bytes;        /* octets given in the data area */
};

/* ------------------------------------------------------------------ API */

/* Bytes of memory a session created with cfg needs (one block). */
size_t smtp_session_memsize(const struct smtp_config *cfg);

/* Builds a session in caller memory (size >= smtp_session_memsize(cfg),
 * 16-byte aligned), e.g. an rte_mempool object. now_ms: current time.
 * Queues SMTP_REQ_CONNECT. Returns NULL if cfg is invalid or size short. */
struct smtp_session *smtp_session_init(void *mem, size_t size,
		const struct smtp_config *cfg, uint64_t now_ms);

/*
 * Buffers from a pool (DESIGN 1: an idle session costs a few KiB). The
 * block given to smtp_session_init_pooled() holds the session alone
 * (smtp_session_memsize_pooled()); its work area (transaction strings,
 * input, reply and body buffers, smtp_session_bufsize() octets) is taken
 * with get() when the session has something in flight and given back with
 * put() when it is idle again (greeted or between transactions, with no
 * event, input, reply or body byte pending). get() returns 16-byte
 * aligned memory or NULL when the pool is empty: the call that needed it
 * then does nothing (feed takes 0 bytes, verdict/ack/tls_done return
 * -EAGAIN, a due time-out fires on a later smtp_session_time(), shutdown
 * closes without its reply). The pool must outlive its sessions; get and
 * put are called from the session's own thread only.
 */
struct smtp_buf_pool {
	void *(*get)(void *ctx);
	void (*put)(void *ctx, void *buf);
	void *ctx;
};

/* Octets of one work area (what get() must return) for cfg. */
size_t smtp_session_bufsize(const struct smtp_config *cfg);
/* Octets of a pooled session's own block for cfg. */
size_t smtp_session_memsize_pooled(const struct smtp_config *cfg);

/* As smtp_session_init(), with the work area from pool (NULL: in the
 * block, exactly smtp_session_init()). */
struct smtp_session *smtp_session_init_pooled(void *mem, size_t size,
		const struct smtp_config *cfg, const struct smtp_buf_pool *pool,
		uint64_t now_ms);

/* The owner is done with a pooled session (closed or its connection
 * gone): gives back the work area if it holds one. Idempotent; a no-op
 * for a session whose buffers are in its block. */
void smtp_session_release(struct smtp_session *s);

/* Whether the work area is held now (always true without a pool). */
bool smtp_session_holds_buffers(const struct smtp_session *s);

/* Same, memory from alloc (called once). NULL on failure. */
struct smtp_session *smtp_session_create(const struct smtp_config *cfg,
		const struct smtp_alloc *alloc, uint64_t now_ms);

/* Frees a session made by smtp_session_create(); NULL is a no-op. A session
 * made by smtp_session_init() is simply forgotten by its owner. */
void smtp_session_destroy(struct smtp_session *s);

/* Gives the engine input bytes from the client (plaintext: after TLS
 * decryption). Returns how many were taken (copied or processed); the rest
 * must be offered again later (keep them in the TCP receive buffer: that is
 * the backpressure towards the client). Never fails. */
size_t smtp_session_feed(struct smtp_session *s, const void *buf, size_t len);

/* Reply bytes for the client: pointer and length of what is waiting.
 * Valid until the next call that changes the session. */
const uint8_t *smtp_session_output(const struct smtp_session *s, size_t *len);
/* The caller sent n reply bytes (n <= length). May resume processing. */
void smtp_session_output_consume(struct smtp_session *s, size_t n);

/* Body bytes for the backend: canonical CRLF, dot-stuffed, never containing
 * the end-of-data line (the backend side adds ".\r\n" when, and only when,
 * SMTP_REQ_DATA_END is accepted). Empty or ending in CRLF at DATA_END. */
const uint8_t *smtp_session_data(const struct smtp_session *s, size_t *len);
/* The backend took n body bytes. May resume processing. */
void smtp_session_data_consume(struct smtp_session *s, size_t n);
/* paused=true: stop reading body input even if the data area has room
 * (backend not writable); false resumes. */
void smtp_session_data_pause(struct smtp_session *s, bool paused);

/* The oldest unanswered event, or NULL. If no request or notification is
 * queued but body bytes wait, returns an SMTP_EV_DATA_CHUNK view of them.
 * The pointer stays valid until that event is answered. */
const struct smtp_event *smtp_session_event(struct smtp_session *s);

/* Answers the request at the head of the queue. Returns 0, -ENOENT if no
 * event is queued, -EINVAL if the head is a notification or the verdict
 * is not valid for it (it is then not consumed; SMTP_V_DEFER is valid for
 * RCPT only), -EPIPE if closed. */
int smtp_session_verdict(struct smtp_session *s, const struct smtp_verdict *v);
/*
 * Deferred RCPT verdicts (RFC 2920 pipelining towards the backend).
 * SMTP_V_DEFER on a SMTP_REQ_RCPT answers the request without a reply:
 * its ticket is the event's rcpt.index. The reply's place in the output is
 * kept (output stops there until it is filled), and the engine reads
 * further pipelined RCPT commands, at most max_rcpt_deferred outstanding
 * (fewer if the reply buffer cannot reserve SMTP_RCPT_DEFER_REPLY_MAX for
 * each), never more than max_rcpts with the accepted ones. Any other
 * command waits until every outstanding RCPT is answered, so DATA/BDAT
 * see the final accepted count. smtp_session_rcpt_verdict() answers one
 * outstanding RCPT, in any order: kind ACCEPT, REJECT or CLOSE (CLOSE: the
 * replies before the first unanswered RCPT, then 421, close). A time-out
 * (tmo_rcpt from the oldest outstanding RCPT), shutdown or close drops
 * the unanswered ones and what was queued after the first of them: the
 * client gets the replies in order up to it, then the final reply.
 * Returns 0, -ENOENT if no RCPT with that index is outstanding (answered,
 * dropped, other transaction), -EINVAL for a bad verdict, -EPIPE if
 * closed.
 */
int smtp_session_rcpt_verdict(struct smtp_session *s, uint32_t index,
		const struct smtp_verdict *v);
/* Number of RCPT verdicts outstanding (deferred, not yet answered). */
uint32_t smtp_session_rcpt_deferred(const struct smtp_session *s);

/* Shorthand: smtp_session_verdict() with SMTP_V_ACCEPT defaults. */
int smtp_session_accept(struct smtp_session *s);
/* Acknowledges the notification at the head (for DATA_CHUNK: consumes all
 * body bytes). Returns 0, -ENOENT, or -EINVAL if the head is a request. */
int smtp_session_ack(struct smtp_session *s);

/* The TLS handshake that followed an accepted STARTTLS finished.
 * ok: the session resets to the pre-EHLO state (RFC 3207 4.2);
 * !ok: the session closes (no reply: the stream is no longer plaintext).
 * Returns 0, or -EINVAL if the session is not in SMTP_ST_TLS. */
int smtp_session_tls_done(struct smtp_session *s, bool ok);

/* Tells the engine the time (ms, monotonic). Fires an expired deadline:
 * the client-side time-outs reply 421 4.4.2 and close, the verdict-side
 * ones 421 4.4.1 and close. Call it before feed/verdict with fresh time. */
void smtp_session_time(struct smtp_session *s, uint64_t now_ms);
/* Absolute time (ms) of the next deadline, or SMTP_NO_DEADLINE. */
#define SMTP_NO_DEADLINE UINT64_MAX
uint64_t smtp_session_deadline(const struct smtp_session *s);

/* Ends the session now with a reply (e.g. 421 4.3.2 shutting down);
 * code 0 = that default. Pending requests are dropped. */
void smtp_session_shutdown(struct smtp_session *s, uint16_t code,
		const char *enh, const char *text);

/* True once the final reply is written: flush output, then close. */
bool smtp_session_closed(const struct smtp_session *s);
enum smtp_state smtp_session_state(const struct smtp_session *s);
bool smtp_session_tls_active(const struct smtp_session *s);
bool smtp_session_authenticated(const struct smtp_session *s);
const struct smtp_stats *smtp_session_stats(const struct smtp_session *s);

const char *smtp_state_name(enum smtp_state st);
const char *smtp_event_name(enum smtp_event_type t);

#endif /* MXG_SMTP_SESSION_H */
