/*
 * acl.h - CIDR tables for connection control, relay networks and runtime
 * blocks (DESIGN 6): longest-prefix match over rte_lpm (IPv4) and
 * rte_lpm6 (IPv6), each prefix carrying a 24-bit value chosen by the
 * caller (e.g. POL_ACL_ALLOW / POL_ACL_DENY, or an index).
 *
 * Threads: a table is built by one thread (the main lcore compiling a
 * snapshot, or the owning dataplane lcore applying a push) and then read
 * by readers that never write it; rte_lpm lookups are lock-free but adds
 * and deletes are not safe against concurrent lookups, so a published
 * snapshot's tables are never modified. Per-core push tables
 * (struct pol_block) are written and read by their owning core only.
 *
 * Memory: rte_malloc (hugepages or --no-huge memory), sized at create
 * time; no allocation after create. Names are generated internally and
 * unique in the process.
 */
#ifndef MXG_POLICY_ACL_H
#define MXG_POLICY_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POL_ACL_ALLOW 1u
#define POL_ACL_DENY 2u
#define POL_ACL_VALUE_MAX ((1u << 24) - 1)

struct pol_acl;

/* A table for up to max4 IPv4 and max6 IPv6 prefixes (either may be 0:
 * that family then always misses). socket: NUMA socket or SOCKET_ID_ANY.
 * Returns NULL with errno set (ENOMEM, EINVAL). */
struct pol_acl *pol_acl_create(uint32_t max4, uint32_t max6, int socket);
void pol_acl_free(struct pol_acl *a);

/* Adds or replaces prefix ip/depth (IPv4 host byte order; depth 0..32)
 * with value (<= POL_ACL_VALUE_MAX). Returns 0, -ENOSPC when full,
 * -EINVAL on a bad depth or value. */
int pol_acl_add4(struct pol_acl *a, uint32_t ip, uint8_t depth,
		 uint32_t value);
int pol_acl_del4(struct pol_acl *a, uint32_t ip, uint8_t depth);
/* Longest match: 0 and *value, or -ENOENT. Hot path. */
int pol_acl_lookup4(const struct pol_acl *a, uint32_t ip, uint32_t *value);

/* IPv6: addr is 16 octets, network order; depth 0..128. */
int pol_acl_add6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth,
		 uint32_t value);
int pol_acl_del6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth);
int pol_acl_lookup6(const struct pol_acl *a, const uint8_t addr[16],
		    uint32_t *value);

uint32_t pol_acl_count(const struct pol_acl *a); /* prefixes held */
size_t pol_acl_memory(const struct pol_acl *a);	 /* bytes allocated */

/*
 * Runtime blocks and allows pushed by the operator (mxgatectl block/allow
 * CIDR [--expire SECONDS]), one table per dataplane lcore, written and
 * read by that core only. Each entry has an action (POL_ACL_ALLOW or
 * POL_ACL_DENY) and an expiry (0 = never). An expired entry no longer
 * matches from the microsecond it expires (checked on lookup) and is
 * removed by pol_block_expire(). Adding an existing prefix replaces its
 * action and expiry. Cost of add/del/lookup does not depend on how many
 * entries the table holds (beyond rte_lpm's own prefix-range work).
 */
struct pol_block;

struct pol_block *pol_block_create(uint32_t max_entries, int socket);
void pol_block_free(struct pol_block *b);
/* Returns 0, -ENOSPC, -EINVAL. */
int pol_block_add4(struct pol_block *b, uint32_t ip, uint8_t depth,
		   uint32_t action, uint64_t expire_us);
/* Removes the entry for exactly ip/depth. 0 or -ENOENT. */
int pol_block_del4(struct pol_block *b, uint32_t ip, uint8_t depth);
/* Longest live match: its action (POL_ACL_ALLOW/POL_ACL_DENY), or 0 when
 * no live entry matches. now_us: the caller's monotonic clock. */
uint32_t pol_block_lookup4(const struct pol_block *b, uint32_t ip,
			   uint64_t now_us);
/* Removes entries expired at now_us, at most max per call; returns how
 * many it removed. */
uint32_t pol_block_expire(struct pol_block *b, uint64_t now_us,
			  uint32_t max);
uint32_t pol_block_count(const struct pol_block *b);

#endif /* MXG_POLICY_ACL_H */
