/*
 * ratelimit.h - per-core rate-limit buckets and per-client concurrency
 * counters (DESIGN 2 and 6).
 *
 * A client IP always lands on the same dataplane lcore (steering hashes
 * the client address), so per-IP tables kept per core are exact. Tables
 * are bounded: when the bucket table is full the least recently used
 * bucket is evicted (a flood from a million spoofed addresses costs a
 * fixed amount of memory; the evicted bucket restarts full, which only
 * favours the client). Everything is allocated at create time, with
 * rte_zmalloc_socket() on the given NUMA socket: an EAL must be running.
 *
 * Threads: a table belongs to one dataplane lcore; nobody else touches
 * it (counters are read racily by the stats reader).
 */
#ifndef MXG_POLICY_RATELIMIT_H
#define MXG_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pol_rl;

struct pol_rl_stats {
	uint64_t lookups, allowed, limited, inserts, evictions;
};

/*
 * capacity: most buckets held (16 .. 2^28). NULL with errno (EINVAL,
 * ENOMEM) on failure. Memory is 2 x capacity 64-byte cells plus an index
 * of 8-byte slots (a power of two >= 2 x capacity): 144 to 160 bytes per
 * bucket. A bucket takes one cell for a key of up to 27 octets, plus one
 * per further 60 octets (5 for 255 octets); the table holds `capacity`
 * buckets while keys are at most 87 octets, fewer with longer keys (the
 * least recently used are evicted to free cells).
 */
struct pol_rl *pol_rl_create(uint32_t capacity, int socket);
void pol_rl_free(struct pol_rl *t);

/*
 * Token bucket of (rule, key): holds at most burst tokens, refills at
 * per_minute tokens per 60 s (exact integer arithmetic, no drift), starts
 * full. Takes cost tokens if they are there and returns true; otherwise
 * takes nothing and returns false. So with burst == per_minute == N, N
 * calls of cost 1 at the same instant pass and call N+1 is refused; one
 * more token is back exactly 60 s / N later (rounded up to a whole
 * microsecond). A new key whose cost exceeds burst is refused without
 * creating a bucket. now_us: the caller's monotonic clock in us (a clock
 * that goes back refills nothing).
 * rule: a fingerprint of the rule's content, so that a reload that keeps
 * a rule keeps its buckets and a changed rule starts afresh. key: up to
 * 255 octets (an IPv4 address, a /24, a domain, a user name; a longer key
 * is cut at 255); keys are stored whole and compared exactly. If
 * per_minute or burst of a rule changes under the same fingerprint (a
 * runtime push), the bucket adopts the new values and keeps its level,
 * capped at the new burst.
 */
bool pol_rl_take(struct pol_rl *t, uint64_t rule, const void *key,
		 size_t keylen, uint32_t per_minute, uint32_t burst,
		 uint32_t cost, uint64_t now_us);

uint32_t pol_rl_count(const struct pol_rl *t);
uint32_t pol_rl_capacity(const struct pol_rl *t);
size_t pol_rl_memory(const struct pol_rl *t);
const struct pol_rl_stats *pol_rl_stats(const struct pol_rl *t);

/*
 * Concurrent connections per client on one core, keyed by 16 bytes: an
 * IPv4-mapped address (pol_ipkey4) or an IPv6 prefix (pol_ipkey6, so a
 * host rotating addresses inside its /64 stays one key). An entry
 * exists while its count is above zero; capacity must be at least the
 * core's session limit, so the table can never be full of live entries.
 */
struct pol_conns;

/* capacity: most distinct keys (>= 1); 20-byte slots, a power of two >=
 * 2 x capacity (40 to 80 bytes per entry). NULL with errno on failure. */
struct pol_conns *pol_conns_create(uint32_t capacity, int socket);
void pol_conns_free(struct pol_conns *t);
/* Counts one more connection of ip unless it already has max (0 = no
 * limit) or the table is full; returns true when counted. */
bool pol_conns_inc(struct pol_conns *t, uint32_t ip, uint32_t max);
/* One connection of ip ended (must pair with a successful inc; an
 * unpaired dec is ignored). */
void pol_conns_dec(struct pol_conns *t, uint32_t ip);
uint32_t pol_conns_get(const struct pol_conns *t, uint32_t ip);
/* The same by key (pol_ipkey4/pol_ipkey6); the IPv4 calls above are
 * these with pol_ipkey4(ip). */
bool pol_conns_inc_key(struct pol_conns *t, const uint8_t key[16],
		       uint32_t max);
void pol_conns_dec_key(struct pol_conns *t, const uint8_t key[16]);
uint32_t pol_conns_get_key(const struct pol_conns *t, const uint8_t key[16]);
/* key = ::ffff:ip (ip in host order). */
void pol_ipkey4(uint8_t key[16], uint32_t ip);
/* key = addr with the bits past prefix (0..128) cleared. */
void pol_ipkey6(uint8_t key[16], const uint8_t addr[16], uint8_t prefix);
uint32_t pol_conns_count(const struct pol_conns *t); /* distinct IPs */
size_t pol_conns_memory(const struct pol_conns *t);

/* 64-bit hash (e.g. a rule fingerprint over its fields): deterministic
 * for (data, len, seed), fast on short inputs, not cryptographic. */
uint64_t pol_hash64(const void *data, size_t len, uint64_t seed);

#endif /* MXG_POLICY_RATELIMIT_H */
