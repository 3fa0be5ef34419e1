/*
 * sendermap.h - which envelope senders each login may use (RFC 6409
 * submission practice; Postfix's reject_sender_login_mismatch). File
 * format, one login per line:
 *     login   addr@example.com, @example.org
 * an address allows exactly that sender (case-insensitive), "@domain"
 * every sender of that domain (not its subdomains). '#' comments, blank
 * lines skipped; errors name FILE:LINE. A login absent from the map may
 * use no sender (553 5.7.1); the null sender "<>" is always allowed
 * (bounces carry no identity to steal).
 *
 * Threads: loaded on the main lcore (allocates); immutable afterwards,
 * read by any lcore without locks; freed after the snapshot holding it
 * is retired.
 */
#ifndef MXG_AUTH_SENDERMAP_H
#define MXG_AUTH_SENDERMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_sendermap;

/* NULL on any error, each written to err as "FILE:LINE: ...\n". */
struct auth_sendermap *auth_sendermap_load(const char *path, char *err,
					   size_t cap);
void auth_sendermap_free(struct auth_sendermap *m);
uint32_t auth_sendermap_count(const struct auth_sendermap *m);

/* May login send as sender (the reverse-path without <>; "" = null
 * sender)? Never blocks. */
bool auth_sendermap_allowed(const struct auth_sendermap *m, const char *login,
			    const char *sender);

#endif /* MXG_AUTH_SENDERMAP_H */
