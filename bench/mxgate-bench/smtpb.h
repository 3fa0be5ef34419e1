/*
 * smtpb.h - the SMTP halves of mxgate-bench, sans-I/O: a client session
 * (the load generator's) and a server session (the sink's). Bytes and time
 * in, bytes and events out; neither touches a socket, a clock or a file,
 * so unit tests drive them from transcripts (tests in test_smtpb.c).
 *
 * Ownership: each struct belongs to the caller (one per connection, one
 * lcore); nothing here allocates or blocks.
 *
 * Messages carry a bench header the sink checks:
 *   X-Bench: <nonce> <seq> <body bytes> <fnv1a64 of the body, 16 hex>
 * where the body is everything after the header block's empty line, with
 * dot-stuffing undone, so a sink proves that what the client was told was
 * accepted arrived intact; the seq lets it count duplicates.
 */
#ifndef MXG_SMTPB_H
#define MXG_SMTPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Steps of a session, for latency histograms and reply counters. */
enum smtpb_step {
	SMTPB_GREETING, /* connect -> 220 */
	SMTPB_EHLO,
	SMTPB_MAIL,
	SMTPB_RCPT,
	SMTPB_DATA, /* DATA -> 354 */
	SMTPB_DOT,  /* end of data (or BDAT LAST) -> 250 */
	SMTPB_RSET,
	SMTPB_QUIT,
	SMTPB_STARTTLS, /* STARTTLS -> 220, then the handshake to its end
			 * (the caller reports the handshake's end) */
	SMTPB_STEP_MAX
};
const char *smtpb_step_name(enum smtpb_step s);

/* FNV-1a 64, incremental. */
#define SMTPB_FNV_INIT 0xcbf29ce484222325ULL
static inline uint64_t smtpb_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* Word-wise line hash of the digest (cheaper than byte-wise FNV; both
 * sides hash the body line by line, CRLF excluded). */
uint64_t smtpb_line_hash(uint64_t h, const char *p, size_t n);

/* ---------------------------------------------------------------- reply
 * Incremental parser of server replies (RFC 5321 4.2: "ddd-" continuation
 * lines, then "ddd " or "ddd"). Notes the EHLO keywords it cares about. */
struct smtpb_reply_parser {
	char line[1024];
	size_t len;
	bool overflow;
	int code;		   /* of the reply being read; 0: none yet */
	bool pipelining, chunking; /* keywords seen since the caller reset */
	bool starttls;
};

enum smtpb_parse {
	SMTPB_NEED_MORE = 0,
	SMTPB_REPLY = 1, /* *code holds a complete reply's code */
	SMTPB_BAD = -1,	 /* not a reply */
};

/* Consume bytes of in[0..len) up to the end of one complete reply;
 * *used tells how many were taken. */
enum smtpb_parse smtpb_reply_feed(struct smtpb_reply_parser *p, const char *in,
				  size_t len, size_t *used, int *code);

/* --------------------------------------------------------------- client */
struct smtpb_client_conf {
	const char *helo; /* EHLO argument */
	const char *from; /* pattern: {s} session, {m} message seq */
	const char *to;	  /* pattern: {s}, {m}, {r} recipient index */
	bool pipelining;  /* RFC 2920, when the server offers it */
	bool bdat;	  /* RFC 3030 BDAT LAST, when offered */
	uint64_t nonce;	  /* X-Bench run nonce */
	bool starttls;	  /* RFC 3207 after the first EHLO; required: a
			   * server that does not offer it is a protocol
			   * error (counted), never plaintext mail */
};

/* One message; the caller draws rcpts and size from its distributions. */
struct smtpb_msg {
	uint64_t seq;	/* X-Bench seq, unique in the run */
	uint32_t rcpts; /* 1..SMTPB_MAX_RCPTS */
	uint32_t size;	/* approximate message bytes */
};

enum smtpb_client_state {
	SMTPB_C_GREETING,
	SMTPB_C_EHLO,
	SMTPB_C_STARTTLS, /* STARTTLS sent, 220 awaited */
	SMTPB_C_TLS,	  /* 220 received: the caller runs the handshake,
			   * then smtpb_client_tls_done */
	SMTPB_C_IDLE, /* between messages: smtpb_client_next */
	SMTPB_C_TXN,  /* MAIL/RCPT(/DATA) in flight */
	SMTPB_C_BODY, /* content being generated and sent */
	SMTPB_C_DOT,  /* waiting for the end-of-data reply */
	SMTPB_C_QUIT,
	SMTPB_C_DONE,	/* QUIT answered: the caller closes */
	SMTPB_C_FAILED, /* protocol error: the caller aborts */
};

/* One reply, as reported to the caller. */
struct smtpb_event {
	enum smtpb_step step;
	int code;
	uint64_t sent_us;      /* when its command left (0: not yet) */
	bool msg_done;	       /* this reply ended a message... */
	bool msg_accepted;     /* ...with 2xx at end of data */
	uint32_t msg_rcpts_ok; /* recipients answered 2xx */
	uint64_t msg_bytes;    /* message bytes sent */
};

#define SMTPB_MAX_RCPTS 100
#define SMTPB_MAX_INFLIGHT (SMTPB_MAX_RCPTS + 8)

struct smtpb_client {
	const struct smtpb_client_conf *conf;
	enum smtpb_client_state state;
	uint32_t session;
	struct smtpb_reply_parser rp;
	bool pipelining, chunking; /* offered and wanted */
	bool tls;		   /* the TLS layer is up */
	/* Replies awaited, in command order; end_pos: stream offset just
	 * after the command (stamped sent_us when sent that far). */
	struct {
		uint8_t step;
		uint64_t end_pos, sent_us;
	} await[SMTPB_MAX_INFLIGHT];
	uint32_t await_head, await_n;
	uint64_t pos_queued, pos_sent;
	/* Pending output out[out_off..out_len). */
	char out[16384];
	size_t out_off, out_len;
	bool overflow; /* a command did not fit (FAILED) */
	/* The current message. */
	struct smtpb_msg msg;
	uint32_t next_rcpt, rcpts_ok;
	bool msg_failed, need_rset;
	uint64_t msg_bytes;
	char hdr[512];
	size_t hdr_len, hdr_done;
	uint32_t body_lines, body_line;
	uint64_t body_hash, body_len;
};

/* Start a session; the greeting's latency counts from now_us. */
void smtpb_client_init(struct smtpb_client *c,
		       const struct smtpb_client_conf *conf, uint32_t session,
		       uint64_t now_us);

/* True when the client is between messages (state IDLE): the caller then
 * gives it the next message, or NULL to QUIT. */
bool smtpb_client_wants_msg(const struct smtpb_client *c);
void smtpb_client_next(struct smtpb_client *c, const struct smtpb_msg *msg);

/* Server bytes in, events out (up to max, one per reply). Returns the
 * number of events, or -1 on a protocol error (state FAILED). *used bytes
 * were consumed; the caller feeds the rest after handling the events. */
int smtpb_client_input(struct smtpb_client *c, const char *in, size_t len,
		       size_t *used, struct smtpb_event *ev, int max);

/* Pending output: *p points at the returned number of bytes. After
 * sending k of them, smtpb_client_sent(k, now) stamps the commands that
 * left (their latency starts). */
size_t smtpb_client_peek(struct smtpb_client *c, const char **p);
void smtpb_client_sent(struct smtpb_client *c, size_t k, uint64_t now_us);

/* STARTTLS: true once the server's 220 to STARTTLS was read (state
 * TLS). Every byte after it belongs to TLS: smtpb_client_input stops
 * right after that reply, and the caller starts the handshake, then
 * calls smtpb_client_tls_done (EHLO again, on the plaintext of TLS). */
bool smtpb_client_wants_tls(const struct smtpb_client *c);
void smtpb_client_tls_done(struct smtpb_client *c);

/* The step whose reply the client waits for (bad-peer reports). */
enum smtpb_step smtpb_client_waiting(const struct smtpb_client *c);

/* ----------------------------------------------------------------- sink */
struct smtpb_sink_conf {
	uint32_t rcpt_4xx_pct; /* share of RCPTs answered 450 */
	uint32_t rcpt_5xx_pct; /* share answered 550 */
	uint32_t drop_pct;     /* share of sessions reset at a random step */
	uint32_t delay_us[SMTPB_STEP_MAX]; /* reply delay per step */
	bool pipelining, chunking;	   /* advertised in EHLO */
	bool starttls; /* advertised until TLS is up; the caller runs it */
	bool check_digest;
	uint64_t seed;
};

enum smtpb_sink_ev {
	SMTPB_S_NONE,
	SMTPB_S_MSG,  /* a message was accepted (250 queued) */
	SMTPB_S_DROP, /* reset the connection now */
	SMTPB_S_QUIT, /* 221 queued: close once it is sent */
	SMTPB_S_STARTTLS, /* 220 queued: send it, then every further byte
			   * is TLS (the rest of this input is discarded,
			   * RFC 3207 5); smtpb_sink_tls_done once it is up */
};

struct smtpb_sink_msg {
	uint64_t nonce, seq; /* from X-Bench */
	bool has_bench;	     /* X-Bench header seen */
	bool digest_ok;	     /* trailer present, last, length+digest match */
	uint32_t rcpts;
	uint64_t bytes;
};

struct smtpb_sink {
	const struct smtpb_sink_conf *conf;
	enum { SMTPB_S_CMD, SMTPB_S_DATA, SMTPB_S_BDAT, SMTPB_S_CLOSED } state;
	uint64_t rng;
	char line[1024];
	size_t len;
	bool line_overflow;
	bool in_txn;
	bool tls; /* STARTTLS done: no longer offered */
	uint32_t rcpts;
	uint64_t bdat_left;
	bool bdat_last, bdat_open, bdat_refused;
	char bline[1024]; /* BDAT: a content line may span chunks, with
			   * commands between them (line[] holds those) */
	size_t blen;
	bool drop_armed;
	enum smtpb_step drop_at;
	bool in_headers;
	bool trailer_seen, trailer_ok, after_trailer;
	struct smtpb_sink_msg m;
	uint64_t body_hash, body_len;
	/* Replies out[0..out_len), released at ready_us (delays). */
	char out[8192];
	size_t out_len;
	uint64_t ready_us;
};

/* Start a session (queues the greeting unless the session is to be
 * dropped at once: smtpb_sink_drop_now). */
void smtpb_sink_init(struct smtpb_sink *s, const struct smtpb_sink_conf *conf,
		     uint64_t conn_seed, uint64_t now_us);
bool smtpb_sink_drop_now(const struct smtpb_sink *s);

/* Client bytes in. Stops after a verdict (*ev; *msg filled for
 * SMTPB_S_MSG); *used tells how much was consumed. */
void smtpb_sink_input(struct smtpb_sink *s, const char *in, size_t len,
		      size_t *used, uint64_t now_us, enum smtpb_sink_ev *ev,
		      struct smtpb_sink_msg *msg);

/* The caller's TLS handshake completed: the session starts over
 * (RFC 3207 4.2: the client sends EHLO again). */
void smtpb_sink_tls_done(struct smtpb_sink *s);

/* Reply bytes that may be sent at now_us (0: none, or delayed). */
size_t smtpb_sink_peek(struct smtpb_sink *s, uint64_t now_us, const char **p);
void smtpb_sink_sent(struct smtpb_sink *s, size_t k);

#endif /* MXG_SMTPB_H */
