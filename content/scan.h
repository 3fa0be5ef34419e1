/*
 * scan.h - the per-message content scanner (DESIGN 6b): a sans-I/O
 * streaming parser of one message (header block, raw body, MIME parts
 * with base64 and quoted-printable decoded on the fly, attachment
 * names) that runs a rule set's Hyperscan databases over it and keeps
 * the verdict.
 *
 * Threads: a struct content_scan belongs to the lcore that owns the
 * session; the rule set and the scratch (one per lcore, grown on the
 * main lcore by content_scratch_grow()) are read-only here. The only
 * allocations are Hyperscan's stream state: hs_open_stream() at the
 * start of the message and of each decoded text part, released at the
 * part's end, at content_scan_end() and at content_scan_abort().
 * Memory per message is bounded (fixed buffers below) whatever the input.
 */
#ifndef MXG_CONTENT_SCAN_H
#define MXG_CONTENT_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/rules.h"

#define CONTENT_MAX_HITS 32       /* distinct rules remembered per message */
#define CONTENT_MIME_DEPTH 8      /* nested multiparts followed */
#define CONTENT_LINE_MAX 1024     /* longer lines are passed in pieces */
#define CONTENT_HEADER_MAX 4096   /* unfolded header; the rest is cut */
#define CONTENT_BOUNDARY_MAX 70   /* RFC 2046 5.1.1 */

struct content_verdict {
	int rule;               /* deciding rule (reject..quarantine), -1 */
	unsigned n_hits;        /* distinct rules that matched, in order */
	int hits[CONTENT_MAX_HITS];
	unsigned hits_dropped;  /* distinct hits beyond CONTENT_MAX_HITS */
};

/* counters of what the scanner could not follow (never fatal) */
struct content_scan_stats {
	uint32_t headers_cut;   /* headers longer than CONTENT_HEADER_MAX */
	uint32_t mime_too_deep; /* multiparts beyond CONTENT_MIME_DEPTH */
	uint32_t mime_malformed;/* multipart without boundary, missing end */
	uint32_t scan_errors;   /* Hyperscan errors (stream open failed) */
	bool truncated;         /* message longer than the scan limit */
};

enum content_cte { CONTENT_CTE_IDENTITY, CONTENT_CTE_BASE64, CONTENT_CTE_QP };

/* attributes of the MIME entity whose headers are being read */
struct content_entity {
	bool multipart;
	bool text;              /* text/ * or no Content-Type */
	bool has_type;
	enum content_cte cte;
	char boundary[CONTENT_BOUNDARY_MAX + 1];
	char filename[256];
};

struct content_scan {
	const struct content_ruleset *rs;
	void *scratch;                 /* hs_scratch_t * of this lcore */
	uint64_t limit, fed;
	/* top level: message headers, then body */
	enum { CS_HEADERS, CS_BODY } top;
	/* MIME side of the body */
	enum { CM_OFF, CM_PART_HEADERS, CM_PART_BODY, CM_SKIP } mime;
	bool mime_enabled;             /* rule set has mime or attachment rules */
	void *body_stream;             /* hs_stream_t *, raw body */
	void *part_stream;             /* hs_stream_t *, decoded text part */
	/* line assembly (MIME and header side) */
	char line[CONTENT_LINE_MAX];
	size_t line_len;
	bool line_cont;                /* line is a continuation piece */
	/* header unfolding */
	char hdr[CONTENT_HEADER_MAX];
	size_t hdr_len;
	bool hdr_any;
	bool hdr_cut;                  /* this header counted as cut */
	const char *cur_name;          /* for named-header rules */
	size_t cur_name_len;
	/* MIME */
	struct content_entity ent;
	char bounds[CONTENT_MIME_DEPTH][CONTENT_BOUNDARY_MAX + 1];
	unsigned depth;
	unsigned too_deep;             /* ignored nested multiparts */
	/* decoders */
	uint32_t b64_acc;
	unsigned b64_n;
	bool b64_end;
	unsigned qp_state;             /* 0, 1 after '=', 2 after '=' + hex */
	uint8_t qp_hi;
	/* decoded part text waits here so Hyperscan is called per few KiB,
	 * not per line; flushed when full and at the part's end */
	uint8_t dec[4096];
	size_t dec_len;
	struct content_verdict v;
	struct content_scan_stats stats;
};

/*
 * Scan one envelope value (HELO name, MAIL or RCPT address) with the
 * rules of class where (CONTENT_WHERE_HELO, _MAIL, _RCPT) in block mode;
 * hits are added to *v (initialise with content_verdict_init()).
 * Returns 0, or -EIO on a Hyperscan error.
 */
int content_scan_envelope(const struct content_ruleset *rs, void *scratch,
			  enum content_where where, const char *value,
			  size_t len, struct content_verdict *v);

void content_verdict_init(struct content_verdict *v);

/* Start scanning one message. limit: bytes scanned (0: no limit); the
 * rest passes unscanned and sets stats.truncated. 0 or -EIO. */
int content_scan_begin(struct content_scan *s,
		       const struct content_ruleset *rs, void *scratch,
		       uint64_t limit);

/* Feed the next bytes of the message exactly as it will be delivered
 * (dot-unstuffed, CRLF line ends, header block first). Any split. */
int content_scan_feed(struct content_scan *s, const void *buf, size_t len);

/* End of message: flush, close every stream, copy the verdict. */
int content_scan_end(struct content_scan *s, struct content_verdict *v);

/* Abort (client gone, RSET, transaction failed): release the streams. */
void content_scan_abort(struct content_scan *s);

/* The action of a verdict: the deciding rule's, or CONTENT_ACT_NONE. */
enum content_action content_verdict_action(const struct content_ruleset *rs,
					   const struct content_verdict *v);

/* Decoders, exposed for tests and the fuzzer: RFC 2047 encoded words in
 * in[0..n) decoded into out (at most outlen-1 bytes, NUL-terminated);
 * returns the length. */
size_t content_decode_words(const char *in, size_t n, char *out,
			    size_t outlen);

#endif
