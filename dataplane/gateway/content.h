/*
 * content.h - content rules on the delivery path (issue 15; DESIGN 6b):
 * the gateway's few calls into content/ (content/scan.h).
 *
 * Owner: the session's dataplane lcore. Uses the listener's rule set and
 * this core's Hyperscan scratch from the transaction's snapshot (both
 * built on the main lcore); allocates one scanner per scanned message
 * (freed at its end or abort), never per packet.
 */
#ifndef MXG_GATEWAY_CONTENT_H
#define MXG_GATEWAY_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/gateway/gateway-t.h"

/* Body bytes exactly as they go to the next hop (dot-unstuffed); the
 * first call of a transaction starts the scan (or decides that this
 * message is not scanned: no rules, exempt client, no memory). */
void content_gw_body(struct gw_sess *s, const uint8_t *p, size_t n);

/* at most this many octets of headers added per message (header action);
 * further headers are dropped and counted */
#define CONTENT_GW_ADD_MAX 1024

/* The headers this message gets from rules with the header action
 * ("Name: value" CRLF each), still to send before the next body bytes:
 * those of envelope rules before the first body byte, those of header
 * rules at the end of the header block (content_gw_body_limit): NULL
 * and *len 0 when none (or all sent). The first call of a transaction
 * starts the scan, like content_gw_body(). Call before the first body
 * byte goes to the next hop; content_gw_added_header_sent() records
 * how many octets the next hop took. */
const uint8_t *content_gw_added_header(struct gw_sess *s, size_t *len);
void content_gw_added_header_sent(struct gw_sess *s, size_t n);

/* How many of the next len body bytes p may go to the next hop now:
 * len, or fewer up to the end of the header block, or 0 when headers
 * of header rules were just queued (send content_gw_added_header()
 * first, then call again). Call after content_gw_added_header(). */
size_t content_gw_body_limit(struct gw_sess *s, const uint8_t *p, size_t len);

/* End of data, before the final dot goes to the next hop: when a rule
 * decides (reject, tempfail, discard, quarantine), aborts the next hop's
 * transaction (no dot is ever sent), answers the client (quarantine:
 * once the copy is durable, content_gw_quarantine_done) and returns
 * true; false lets delivery go on. Every hit is logged with its rule
 * file:line. */
bool content_gw_data_end(struct gw_sess *s);

/* HELO name, MAIL or RCPT address (where CONTENT_WHERE_HELO, _MAIL or
 * _RCPT): when a
 * reject or tempfail rule matches, answers the command (550/451 with the
 * rule's code and text), logs the hit and returns true. Other actions of
 * envelope rules (discard, log) are applied with the message at end of
 * data. */
bool content_gw_envelope(struct gw_sess *s, int where, const char *addr,
			 size_t len);

/* Completions of this core's quarantine Maildir (gc->qmd): answers the
 * end of data of each session whose quarantine copy was committed (250
 * when durable, 451 otherwise). Every poll-loop iteration, like
 * delivery_maildir_done(). */
void content_gw_quarantine_done(struct gw_core *gc);

/* Release the scan of the current transaction (every end and abort
 * path: sess_txn_reset). */
void content_gw_release(struct gw_sess *s);

#endif /* MXG_GATEWAY_CONTENT_H */
