/*
 * block6.h - the IPv6 half of the runtime block table (struct pol_block in
 * acl.h is the interface callers use; this header is private to
 * dataplane/policy). Prefixes are kept in a hash of (masked address,
 * depth); a lookup probes the depths that hold at least one entry, from
 * the longest down, so its cost is one hash probe per distinct prefix
 * length in use (typically /128, /64 and /48), not per entry.
 *
 * Threads: one owner (a dataplane lcore), as struct pol_block.
 * Memory: rte_malloc and rte_hash sized at create; no allocation after.
 */
#ifndef MXG_POLICY_BLOCK6_H
#define MXG_POLICY_BLOCK6_H

#include <stddef.h>
#include <stdint.h>

struct pol_block6;

struct pol_block6 *pol_block6_create(uint32_t max_entries, int socket);
void pol_block6_free(struct pol_block6 *b);
/* 0, -ENOSPC (full), -EINVAL (depth > 128). Replaces an existing
 * prefix's action and expiry. */
int pol_block6_add(struct pol_block6 *b, const uint8_t addr[16],
		   uint8_t depth, uint32_t action, uint64_t expire_us);
int pol_block6_del(struct pol_block6 *b, const uint8_t addr[16],
		   uint8_t depth); /* 0 or -ENOENT */
/* Longest live match's action, or 0. */
uint32_t pol_block6_lookup(const struct pol_block6 *b, const uint8_t addr[16],
			   uint64_t now_us);
/* Removes up to max expired entries, visiting at most 4 x max slots per
 * call (a cursor walks the entry array); returns how many it removed. */
uint32_t pol_block6_expire(struct pol_block6 *b, uint64_t now_us,
			   uint32_t max);
uint32_t pol_block6_count(const struct pol_block6 *b);
size_t pol_block6_memory(const struct pol_block6 *b);

#endif /* MXG_POLICY_BLOCK6_H */
