/*
 * smtp_body.h - message body filter: client body bytes (DATA or BDAT) in,
 * canonical dot-stuffed CRLF bytes for the backend out.
 *
 * Internal to dataplane/smtp (the tests use it directly). State is a few
 * words inside struct smtp_session; never allocates, never blocks.
 *
 * The rules that make SMTP smuggling impossible (CVE-2023-51764 class):
 * - DATA ends only at "\r\n.\r\n" taken literally from the input, where the
 *   start of the body counts as preceded by "\r\n". Nothing else (bare LF,
 *   bare CR, NUL, their mixes) ends it.
 * - A bare CR or bare LF is either an error (REJECT) or re-emitted as CRLF
 *   (NORMALIZE); a line started that way can never end the body.
 * - NUL octets are dropped from the output (a backend that strips NULs
 *   would otherwise see a different line); they still count as input for
 *   boundary detection, so "\r\n\0.\r\n" is not an end.
 * - Output lines are re-stuffed from what is emitted, so every emitted line
 *   that starts with '.' starts with "..": the emitted stream never contains
 *   a line that a backend could take for the end of data.
 * - BDAT bodies take octets exactly: no dot-unstuffing, no terminator.
 */
#ifndef MXG_SMTP_BODY_H
#define MXG_SMTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_body_st {
	SMTP_BODY_BOL = 0,  /* after a literal CRLF (or body start) */
	SMTP_BODY_BOL_N,    /* after a normalised bare CR/LF: cannot end */
	SMTP_BODY_DOT,      /* "." at BOL */
	SMTP_BODY_DOT_N,    /* "." at BOL_N */
	SMTP_BODY_DOT_CR,   /* ".\r" at BOL */
	SMTP_BODY_DOT_N_CR, /* ".\r" at BOL_N */
	SMTP_BODY_MID,      /* inside a line */
	SMTP_BODY_CR,       /* CR seen, LF may follow */
};

enum smtp_body_res {
	SMTP_BODY_MORE = 0, /* all input taken, or output room exhausted */
	SMTP_BODY_END,      /* "\r\n.\r\n" seen (DATA only); rest not taken */
	SMTP_BODY_BARE,     /* bare CR/LF under the reject policy */
};

struct smtp_body {
	enum smtp_body_st st;
	bool out_bol;       /* emitted stream is at a line start */
	bool bdat;          /* octet mode */
	bool normalize;     /* bare CR/LF policy */
	bool overlong;      /* sticky: a line exceeded max_line */
	uint32_t max_line;  /* octets incl. CRLF, 0 = unlimited */
	uint32_t line_len;  /* input octets in the current line */
	uint64_t size;      /* message octets: content + CRLF, unstuffed */
	uint64_t emitted;   /* octets written to out */
	uint32_t bare_cr, bare_lf, nul;
};

/* Starts a body. */
void smtp_body_init(struct smtp_body *b, bool bdat, bool normalize,
		uint32_t max_line);

/*
 * Filters in[0..n) into out[0..cap) (out may be NULL: parse and count but
 * emit nothing, used to skip a refused body). Returns the input octets
 * taken; *produced gets the output octets written. Stops early on END (the
 * terminator's octets are taken), BARE, or when cap leaves < 8 octets room.
 */
size_t smtp_body_filter(struct smtp_body *b, const uint8_t *in, size_t n,
		uint8_t *out, size_t cap, size_t *produced,
		enum smtp_body_res *res);

/*
 * Ends a BDAT body: resolves a pending CR and completes an unterminated
 * last line with CRLF. Needs <= 4 octets of room. Returns octets written,
 * or -1 for a bare CR at the very end under the reject policy.
 */
int smtp_body_finish(struct smtp_body *b, uint8_t *out, size_t cap);

#endif /* MXG_SMTP_BODY_H */
