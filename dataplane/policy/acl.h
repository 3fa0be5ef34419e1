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
 * unique in the process. rte_lpm is DIR-24-8: every IPv4 table costs a
 * fixed 64 MiB tbl24, plus 8 bytes a rule and 1 KiB per tbl8 group (one
 * group per /24 network holding a prefix longer than /24); rte_lpm6 a
 * fixed 64 MiB tbl24 plus 1 KiB per tbl8 group (a prefix longer than /24
 * needs up to one group per further octet: 13 for a /128).
 *
 * Costs: lookups are one rte_lpm/rte_lpm6 lookup (plus one array load
 * for IPv6). Adds and deletes of IPv4 prefixes pay rte_lpm's own work:
 * it scans the rules of the same depth linearly and rewrites the table
 * entries the prefix covers (2^(24-depth) for a short prefix), so a
 * million-prefix table takes seconds to build; that is for the
 * snapshot compiler, off the data path.
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
 * that family then always misses; at most 2^30 and 2^21 - 2). socket:
 * NUMA socket or SOCKET_ID_ANY. Returns NULL with errno set (ENOMEM,
 * EINVAL). Any max4 (max6) prefixes fit, whatever their lengths: the
 * tbl8 budgets are pol_acl_tbl8s4_default(max4) and
 * pol_acl_tbl8s6_default(max6), i.e. the worst case. */
struct pol_acl *pol_acl_create(uint32_t max4, uint32_t max6, int socket);
/* As pol_acl_create with explicit tbl8 group budgets (0: the default).
 * A builder that knows its prefixes can pass the exact need and save
 * memory: for IPv4, the number of distinct /24 networks that hold a
 * prefix longer than /24 (a million host routes scattered over the
 * Internet need a million groups, 1 GiB; a million prefixes of /24 or
 * shorter need none). With a smaller budget than the prefixes need,
 * pol_acl_add4/6 return -ENOSPC when the groups run out. */
struct pol_acl *pol_acl_create_ex(uint32_t max4, uint32_t tbl8s4,
				  uint32_t max6, uint32_t tbl8s6, int socket);
/* Default budgets: one IPv4 group per prefix (each prefix longer than /24
 * may sit in a /24 of its own), 13 IPv6 groups per prefix (a /128 needs
 * a group for each of its octets 4..16); capped at rte_lpm's 2^24 and
 * rte_lpm6's 2^21 groups. */
uint32_t pol_acl_tbl8s4_default(uint32_t max4);
uint32_t pol_acl_tbl8s6_default(uint32_t max6);
void pol_acl_free(struct pol_acl *a);

/* Adds or replaces prefix ip/depth (IPv4 host byte order; depth 0..32;
 * host bits are ignored) with value (<= POL_ACL_VALUE_MAX). Returns 0,
 * -ENOSPC when full (prefixes or tbl8 groups; the table is then
 * unchanged), -EINVAL on a bad depth or value. A /0 entry matches every
 * address that no longer prefix matches. */
int pol_acl_add4(struct pol_acl *a, uint32_t ip, uint8_t depth,
		 uint32_t value);
/*
 * A static IPv4 table for lists known in full (a snapshot's ACLs): a
 * table created with max4 == 0 (IPv6 entries may still be added with
 * pol_acl_add6) gets all its IPv4 prefixes at once, painted into its
 * own DIR-24-8 arrays in O(entries painted) instead of rte_lpm's
 * per-add scans (see acl.c). e is reordered and rewritten (host bits
 * cleared); on equal prefixes the later entry in the input wins. After
 * it, pol_acl_add4/del4 on the table are refused (-EINVAL); lookups are
 * the same call. Returns 0, -EINVAL (bad entry, table not empty or not
 * created with max4 == 0) or -ENOMEM.
 */
struct pol_acl_entry4 {
	uint32_t ip;	/* host byte order */
	uint8_t depth;	/* 0..32 */
	uint32_t value; /* <= POL_ACL_VALUE_MAX */
	uint32_t order; /* scratch */
};
int pol_acl_build4(struct pol_acl *a, struct pol_acl_entry4 *e, uint32_t n);

/* Removes exactly ip/depth: 0, -ENOENT, -EINVAL. */
int pol_acl_del4(struct pol_acl *a, uint32_t ip, uint8_t depth);
/* Longest match: 0 and *value, or -ENOENT. Hot path. */
int pol_acl_lookup4(const struct pol_acl *a, uint32_t ip, uint32_t *value);

/* IPv6: addr is 16 octets, network order; depth 0..128; same returns as
 * IPv4. Values are full 24-bit values too (rte_lpm6 keeps 21-bit next
 * hops, so the table interns each distinct value and lets rte_lpm6 hold
 * its index). */
int pol_acl_add6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth,
		 uint32_t value);
int pol_acl_del6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth);
int pol_acl_lookup6(const struct pol_acl *a, const uint8_t addr[16],
		    uint32_t *value);

uint32_t pol_acl_count(const struct pol_acl *a); /* prefixes held */
/* Bytes allocated at create (DPDK's own bookkeeping estimated). */
size_t pol_acl_memory(const struct pol_acl *a);

/*
 * Runtime blocks and allows pushed by the operator (mxgatectl block/allow
 * CIDR [--expire SECONDS]), one table per dataplane lcore, written and
 * read by that core only. Each entry has an action (POL_ACL_ALLOW or
 * POL_ACL_DENY) and an expiry (0 = never). An expired entry no longer
 * matches from the microsecond it expires (checked on lookup) and is
 * removed by pol_block_expire(). Adding an existing prefix replaces its
 * action and expiry. Cost of add/del/lookup does not depend on how many
 * entries the table holds (beyond rte_lpm's own prefix-range work, see
 * above, and O(log n) to keep the expiry heap ordered).
 *
 * Shadowing: rte_lpm returns only the longest prefix. When that entry
 * has expired but is not yet removed, the lookup walks the shorter
 * depths itself (at most 32 hash probes, only in that window), so a
 * shorter live entry still answers: the result is always the longest
 * live match.
 */
struct pol_block;

/* max_entries: 1 .. 2^24. The tbl8 budget is the worst case (every entry
 * a host in a /24 of its own), so any max_entries prefixes fit: about
 * 64 MiB + 1.1 KiB per entry (pol_block_memory). NULL with errno. */
struct pol_block *pol_block_create(uint32_t max_entries, int socket);
void pol_block_free(struct pol_block *b);
/* Returns 0, -ENOSPC, -EINVAL (depth > 32, action not ALLOW/DENY). */
int pol_block_add4(struct pol_block *b, uint32_t ip, uint8_t depth,
		   uint32_t action, uint64_t expire_us);
/* Removes the entry for exactly ip/depth. 0 or -ENOENT. */
int pol_block_del4(struct pol_block *b, uint32_t ip, uint8_t depth);
/* Longest live match: its action (POL_ACL_ALLOW/POL_ACL_DENY), or 0 when
 * no live entry matches. now_us: the caller's monotonic clock. */
uint32_t pol_block_lookup4(const struct pol_block *b, uint32_t ip,
			   uint64_t now_us);
/* The same for IPv6 prefixes (depth 0..128; block6.c: one hash probe per
 * distinct prefix length in use). The entries of both families share
 * max_entries each (a table holds up to max_entries of each family). */
int pol_block_add6(struct pol_block *b, const uint8_t addr[16],
		   uint8_t depth, uint32_t action, uint64_t expire_us);
int pol_block_del6(struct pol_block *b, const uint8_t addr[16],
		   uint8_t depth);
uint32_t pol_block_lookup6(const struct pol_block *b, const uint8_t addr[16],
			   uint64_t now_us);
/* Removes entries expired at now_us (both families), at most max per call;
 * returns how many it removed. */
uint32_t pol_block_expire(struct pol_block *b, uint64_t now_us,
			  uint32_t max);
uint32_t pol_block_count(const struct pol_block *b);
size_t pol_block_memory(const struct pol_block *b); /* bytes allocated */

#endif /* MXG_POLICY_ACL_H */
