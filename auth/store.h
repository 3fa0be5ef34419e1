/*
 * store.h - the users file: one "login:hash" per line, hashes in crypt(5)
 * form from libcrypt (yescrypt "$y$", the default of Debian's mkpasswd,
 * or SHA-512 crypt "$6$", bcrypt "$2b$", scrypt "$7$"; weak schemes
 * (DES, MD5 "$1$") are refused at load). '#' starts a comment; blank
 * lines are skipped. Errors name FILE:LINE.
 *
 * Threads: auth_store_load() runs on the main lcore (start-up, reload)
 * and allocates; the result is immutable, read by any lcore
 * (auth_store_lookup never blocks) until auth_store_free() after the
 * snapshot that holds it is retired. auth_store_check() hashes: worker
 * threads only (tens of milliseconds at the default yescrypt cost).
 */
#ifndef MXG_AUTH_STORE_H
#define MXG_AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"

#define AUTH_MAX_HASH 256 /* longest hash string kept, NUL included */

struct auth_store;

/* Loads path. NULL on any error, with every problem written to err
 * (cap octets, one "FILE:LINE: what (what would be valid)" per line).
 * All or nothing. */
struct auth_store *auth_store_load(const char *path, char *err, size_t cap);
void auth_store_free(struct auth_store *s);
uint32_t auth_store_count(const struct auth_store *s);

/* The hash of login, or NULL (exact, case-sensitive). Any lcore. */
const char *auth_store_lookup(const struct auth_store *s, const char *login);

/* A hash of the store's strongest kind for an unknown user, so that an
 * unknown login costs the same time as a known one. */
const char *auth_store_dummy_hash(const struct auth_store *s);

/* Checks password against hash with crypt_r (constant-time compare).
 * OK, FAIL, or TEMPFAIL when libcrypt cannot compute the hash (out of
 * memory, unsupported method). Worker threads only. */
enum auth_result auth_store_check(const char *hash, const char *password);

/* Hashes password for the users file: prefix "$y$" (yescrypt) or "$6$"
 * (SHA-512 crypt), cost 0 for libcrypt's default, a fresh random salt.
 * 0 with the crypt(5) string in out (cap octets), or -1 (errno set).
 * Blocks (tens of ms): main lcore tools, workers. */
int auth_hash_password(const char *prefix, unsigned long cost,
		       const char *password, char *out, size_t cap);

/* True for the crypt(5) prefixes the store accepts. */
bool auth_hash_strong(const char *hash);

#endif /* MXG_AUTH_STORE_H */
