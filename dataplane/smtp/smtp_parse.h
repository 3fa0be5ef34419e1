/*
 * smtp_parse.h - RFC 5321/6531 syntax checks used by the session engine:
 * paths, domains, address literals, ESMTP parameters, xtext, base64, UTF-8.
 *
 * Used by the session engine and tests; smtp_valid_mailbox() is also the
 * one address grammar of the relay client (dataplane/relay) and the policy
 * normaliser (dataplane/policy), so that every address the engine accepts
 * can be relayed as the client wrote it (issue 11). Pure functions over
 * caller buffers: no state, no allocation, never read past the given length.
 */
#ifndef MXG_SMTP_PARSE_H
#define MXG_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.1-3 */
#define SMTP_MAX_LOCAL 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256

enum smtp_path_err {
	SMTP_PATH_OK = 0,
	SMTP_PATH_ESYNTAX = -1,
	SMTP_PATH_ETOOLONG = -2,
};

#define SMTP_PATH_REVERSE 1u  /* "<>" allowed (MAIL FROM) */
#define SMTP_PATH_FORWARD 2u  /* "<postmaster>" allowed (RCPT TO) */

struct smtp_path {
	char addr[SMTP_MAX_PATH + 1]; /* local@domain, NUL-terminated */
	uint16_t len;
	bool null;       /* <> */
	bool postmaster; /* <postmaster> */
	bool utf8;       /* non-ASCII octets present (valid UTF-8) */
};

/*
 * Parses a Reverse-path or Forward-path (RFC 5321 4.1.2) at p[0..n):
 * "<" [A-d-l ":"] Mailbox ">", with SMTPUTF8 (RFC 6531 3.3) local parts and
 * U-label domains. The source route is checked and dropped. *used gets the
 * octets taken. Returns SMTP_PATH_OK or an error.
 */
int smtp_parse_path(const char *p, size_t n, unsigned flags, size_t *used,
		struct smtp_path *out);

/*
 * The address grammar shared by the engine, the relay client and the policy
 * normaliser: true when p[0..n) is exactly what smtp_parse_path() accepts
 * between "<" and ">" without a source route, i.e. an RFC 5321 4.1.2
 * Mailbox (Dot-string or Quoted-string local part of at most 64 octets,
 * "@", a Domain or an address literal) of at most 254 octets, with RFC 6531
 * UTF-8 (well formed) in either part. flags: SMTP_PATH_REVERSE also accepts
 * the empty (null) reverse path, SMTP_PATH_FORWARD a bare "postmaster" (any
 * case). Such an address never holds CR, LF, NUL or another control octet;
 * a quoted local part may hold '<', '>', '@', ' ' and the like, and is
 * valid inside "<" ">" as written (RFC 5321 4.1.2 qtextSMTP).
 */
bool smtp_valid_mailbox(const char *p, size_t n, unsigned flags);

/* Domain (RFC 5321 4.1.2), U-labels allowed when utf8. */
bool smtp_valid_domain(const char *p, size_t n, bool utf8);
/* "[...]" address literal (RFC 5321 4.1.3). */
bool smtp_valid_addr_literal(const char *p, size_t n);
/* xtext (RFC 3461 4): "+" HEXCHAR HEXCHAR or %d33-42 / %d44-60 / %d62-126. */
bool smtp_valid_xtext(const char *p, size_t n);
/* base64 as used by RFC 4954 (may be empty; padding only at the end). */
bool smtp_valid_base64(const char *p, size_t n);
/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool smtp_valid_utf8(const uint8_t *p, size_t n);
/* Case-insensitive ASCII compare of n octets. */
bool smtp_ieq(const char *a, const char *b, size_t n);
/* Parses 1..20 decimal digits into *v without overflow. */
bool smtp_parse_u64(const char *p, size_t n, uint64_t *v);

#endif /* MXG_SMTP_PARSE_H */
