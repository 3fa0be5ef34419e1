/*
 * brute.h - per-core brute-force state: failed authentications counted
 * per client IP and per login, with thresholds that first delay the
 * reply (a tarpit on that one session's reply timer, never on the core)
 * and then refuse AUTH with 454 4.7.0 for a while.
 *
 * Per IP: delay after ip_delay_after failures, lockout after
 * ip_lockout_after. Per login: delay after user_delay_after; lockout
 * only if user_lockout_after is set (0 by default: a per-login lockout
 * lets anyone lock a user out, while the per-IP lockout leaves a
 * legitimate user from another address unaffected). Failures are
 * forgotten window_s after the last one; a lockout lasts lockout_s.
 * A success clears that login's count (not the IP's: one valid account
 * must not reset an attacker's count).
 *
 * Client IPs are steered to one core, so per-IP counts are exact; a
 * login tried from many cores is counted per core.
 *
 * Bounded: capacity entries allocated at create; when full, the least
 * recently used entry is evicted (a locked-out entry can be evicted by
 * a flood of new keys: the flood then costs the attacker as much).
 * Threads: one table per dataplane lcore; no locks; never allocates
 * after create. Time is the caller's (now_us, monotonic), so tests use
 * a fake clock.
 */
#ifndef MXG_AUTH_BRUTE_H
#define MXG_AUTH_BRUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_brute_config {
	uint32_t ip_delay_after;     /* failures (5) */
	uint32_t ip_lockout_after;   /* failures (20); 0 = never */
	uint32_t user_delay_after;   /* failures (5) */
	uint32_t user_lockout_after; /* failures (0 = never) */
	uint32_t delay_ms;	     /* first delay (1000), doubles per
					failure past the threshold */
	uint32_t max_delay_ms;	     /* cap (16000) */
	uint32_t window_s;	     /* failures forgotten after (900) */
	uint32_t lockout_s;	     /* lockout length (900) */
};

struct auth_brute_stats {
	uint64_t failures, lockouts, refused, evictions;
};

struct auth_brute;

void auth_brute_config_defaults(struct auth_brute_config *c);

/* capacity: entries (IPs and logins together), 16 .. 2^24. NULL with
 * errno on failure. The config is copied; auth_brute_set_config()
 * replaces it (reload) and keeps the counts. */
struct auth_brute *auth_brute_create(uint32_t capacity,
				     const struct auth_brute_config *c);
void auth_brute_free(struct auth_brute *t);
void auth_brute_set_config(struct auth_brute *t,
			   const struct auth_brute_config *c);

/* Before an AUTH exchange (login NULL) and again once the login is
 * known: true when ip (host order) or login is locked out now; the
 * caller replies 454 4.7.0 and does not check the password. */
bool auth_brute_locked(struct auth_brute *t, uint32_t ip, const char *login,
		       uint64_t now_us);

/* Records one failure of (ip, login; login may be NULL) and returns the
 * delay in ms to hold the 535 reply (0 = none). *locked_now: this
 * failure started a lockout (log it). */
uint32_t auth_brute_fail(struct auth_brute *t, uint32_t ip, const char *login,
			 uint64_t now_us, bool *locked_now);

/* A successful login: clears that login's failures. */
void auth_brute_success(struct auth_brute *t, const char *login);

uint32_t auth_brute_count(const struct auth_brute *t);
const struct auth_brute_stats *auth_brute_stats(const struct auth_brute *t);

#endif /* MXG_AUTH_BRUTE_H */
