/*
 * acl.c - CIDR tables over DPDK's rte_fib (IPv4, DIR-24-8) and rte_fib6
 * (IPv6, trie), and the per-core table of pushed blocks (see acl.h).
 *
 * Why rte_fib and not rte_lpm: both answer a lookup with the same
 * DIR-24-8 arrays (one or two memory reads), but rte_lpm keeps its rules
 * in a flat table scanned linearly on every add and delete, so loading
 * 1,000,000 prefixes takes minutes; rte_fib keeps them in an rte_rib tree
 * and loads them in about a second.
 *
 * Sizing. DIR-24-8 has a fixed 2^24-entry first level (64 MiB with 4-byte
 * next hops) plus one 256-entry tbl8 group (1 KiB) per /24 that holds a
 * longer prefix. How many groups a list needs is only known from its
 * prefixes, so pol_acl_create() reserves max4 groups for small tables and
 * max4 / 2 (at least 4096, at most 2^19 = 512 MiB) for large ones; a
 * list that needs more gets -ENOSPC from pol_acl_add4() and the reload
 * is refused with that error. Next hop 0 means "no match": values are
 * stored as given (>= 1 by convention of the callers) and pol_block
 * stores index + 1.
 *
 * Threads: as acl.h says; nothing here locks.
 */
#include "dataplane/policy/acl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_rib.h>
#include <rte_rib6.h>

struct pol_acl {
	struct rte_fib *f4;
	struct rte_fib6 *f6;
	uint32_t n4, n6;
	size_t mem;
};

static uint32_t acl_seq;

static uint32_t tbl8_groups(uint32_t max)
{
	uint32_t g;

	if (max <= 4096)
		return max < 256 ? 256 : max;
	g = max / 2;
	if (g < 4096)
		g = 4096;
	if (g > (1u << 19))
		g = 1u << 19;
	return g;
}

struct pol_acl *pol_acl_create(uint32_t max4, uint32_t max6, int socket)
{
	struct pol_acl *a = calloc(1, sizeof(*a));
	char name[64];
	uint32_t id;

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	if (max4 > (1u << 30) || max6 > (1u << 30))
		goto inval;
	id = __atomic_fetch_add(&acl_seq, 1, __ATOMIC_RELAXED);
	if (max4) {
		struct rte_fib_conf c;

		memset(&c, 0, sizeof(c));
		c.type = RTE_FIB_DIR24_8;
		c.default_nh = 0;
		c.max_routes = (int)max4 + 2; /* + the two /1 halves of /0 */
		c.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
		c.dir24_8.num_tbl8 = tbl8_groups(max4);
		snprintf(name, sizeof(name), "pacl4_%u", id);
		a->f4 = rte_fib_create(name, socket, &c);
		if (!a->f4)
			goto fail;
		a->mem += (size_t)(1u << 24) * 4 +
			  (size_t)c.dir24_8.num_tbl8 * 1024 +
			  (size_t)c.max_routes * 64;
	}
	if (max6) {
		struct rte_fib6_conf c;

		memset(&c, 0, sizeof(c));
		c.type = RTE_FIB6_TRIE;
		c.default_nh = 0;
		c.max_routes = (int)max6 + 2;
		c.trie.nh_sz = RTE_FIB6_TRIE_4B;
		c.trie.num_tbl8 = max6 * 4 < 1024 ? 1024 : max6 * 4;
		snprintf(name, sizeof(name), "pacl6_%u", id);
		a->f6 = rte_fib6_create(name, socket, &c);
		if (!a->f6)
			goto fail;
		a->mem += (size_t)(1u << 24) * 4 +
			  (size_t)c.trie.num_tbl8 * 1024 +
			  (size_t)c.max_routes * 96;
	}
	return a;
inval:
	free(a);
	errno = EINVAL;
	return NULL;
fail:
	errno = rte_errno ? rte_errno : ENOMEM;
	pol_acl_free(a);
	return NULL;
}

void pol_acl_free(struct pol_acl *a)
{
	if (!a)
		return;
	rte_fib_free(a->f4);
	rte_fib6_free(a->f6);
	free(a);
}

static uint32_t mask4(uint32_t ip, uint8_t depth)
{
	return depth == 0 ? 0 : depth >= 32 ? ip : ip & ~(0xffffffffu >> depth);
}

static bool present4(struct rte_fib *f, uint32_t ip, uint8_t depth,
		     uint64_t *nh)
{
	struct rte_rib_node *n = rte_rib_lookup_exact(rte_fib_get_rib(f), ip,
						      depth);

	if (!n)
		return false;
	if (nh)
		rte_rib_get_nh(n, nh);
	return true;
}

int pol_acl_add4(struct pol_acl *a, uint32_t ip, uint8_t depth,
		 uint32_t value)
{
	uint64_t nh;
	bool had;
	int r;

	if (!a || !a->f4 || depth > 32 || value == 0 ||
	    value > POL_ACL_VALUE_MAX)
		return -EINVAL;
	ip = mask4(ip, depth);
	had = present4(a->f4, ip, depth, &nh);
	if (had && nh == value)
		return 0;
	r = rte_fib_add(a->f4, ip, depth, value);
	if (r < 0)
		return r == -EINVAL ? -EINVAL : -ENOSPC;
	if (!had)
		a->n4++;
	return 0;
}

int pol_acl_del4(struct pol_acl *a, uint32_t ip, uint8_t depth)
{
	if (!a || !a->f4 || depth > 32)
		return -EINVAL;
	ip = mask4(ip, depth);
	if (!present4(a->f4, ip, depth, NULL))
		return -ENOENT;
	if (rte_fib_delete(a->f4, ip, depth) < 0)
		return -ENOENT;
	a->n4--;
	return 0;
}

int pol_acl_lookup4(const struct pol_acl *a, uint32_t ip, uint32_t *value)
{
	uint64_t nh = 0;

	if (!a->f4)
		return -ENOENT;
	rte_fib_lookup_bulk(a->f4, &ip, &nh, 1);
	if (nh == 0)
		return -ENOENT;
	*value = (uint32_t)nh;
	return 0;
}

static void mask6(uint8_t out[16], const uint8_t in[16], uint8_t depth)
{
	for (int i = 0; i < 16; i++) {
		int bits = depth - i * 8;

		out[i] = bits >= 8  ? in[i]
			 : bits <= 0 ? 0
				     : (uint8_t)(in[i] & (0xff << (8 - bits)));
	}
}

static bool present6(struct rte_fib6 *f, const uint8_t ip[16], uint8_t depth)
{
	return rte_rib6_lookup_exact(rte_fib6_get_rib(f), ip, depth) != NULL;
}

int pol_acl_add6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth,
		 uint32_t value)
{
	uint8_t ip[16];
	bool had;
	int r;

	if (!a || !a->f6 || depth > 128 || value == 0 ||
	    value > POL_ACL_VALUE_MAX)
		return -EINVAL;
	mask6(ip, addr, depth);
	had = present6(a->f6, ip, depth);
	r = rte_fib6_add(a->f6, ip, depth, value);
	if (r < 0)
		return r == -EINVAL ? -EINVAL : -ENOSPC;
	if (!had)
		a->n6++;
	return 0;
}

int pol_acl_del6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth)
{
	uint8_t ip[16];

	if (!a || !a->f6 || depth > 128)
		return -EINVAL;
	mask6(ip, addr, depth);
	if (!present6(a->f6, ip, depth) ||
	    rte_fib6_delete(a->f6, ip, depth) < 0)
		return -ENOENT;
	a->n6--;
	return 0;
}

int pol_acl_lookup6(const struct pol_acl *a, const uint8_t addr[16],
		    uint32_t *value)
{
	uint8_t ip[1][16];
	uint64_t nh = 0;

	if (!a->f6)
		return -ENOENT;
	memcpy(ip[0], addr, 16);
	rte_fib6_lookup_bulk(a->f6, ip, &nh, 1);
	if (nh == 0)
		return -ENOENT;
	*value = (uint32_t)nh;
	return 0;
}

uint32_t pol_acl_count(const struct pol_acl *a)
{
	return a ? a->n4 + a->n6 : 0;
}

size_t pol_acl_memory(const struct pol_acl *a)
{
	return a ? a->mem : 0;
}

/* ------------------------------------------------------------ blocks */

struct blk_entry {
	uint64_t expire_us; /* 0: never */
	uint32_t ip;
	uint8_t depth;
	uint8_t action;	    /* 0: free slot */
};

/* The fib's next hop for an entry is its index + 1 (0 = no match). */
struct pol_block {
	struct pol_acl *acl;
	struct blk_entry *e;
	uint32_t *free_list;
	uint32_t n_free, max, count, cursor;
};

struct pol_block *pol_block_create(uint32_t max_entries, int socket)
{
	struct pol_block *b = calloc(1, sizeof(*b));

	if (!b || max_entries == 0 || max_entries >= POL_ACL_VALUE_MAX)
		goto fail;
	b->acl = pol_acl_create(max_entries, 0, socket);
	b->e = calloc(max_entries, sizeof(*b->e));
	b->free_list = calloc(max_entries, sizeof(*b->free_list));
	if (!b->acl || !b->e || !b->free_list)
		goto fail;
	b->max = max_entries;
	for (uint32_t i = 0; i < max_entries; i++)
		b->free_list[i] = max_entries - 1 - i;
	b->n_free = max_entries;
	return b;
fail:
	pol_block_free(b);
	errno = ENOMEM;
	return NULL;
}

void pol_block_free(struct pol_block *b)
{
	if (!b)
		return;
	pol_acl_free(b->acl);
	free(b->e);
	free(b->free_list);
	free(b);
}

int pol_block_add4(struct pol_block *b, uint32_t ip, uint8_t depth,
		   uint32_t action, uint64_t expire_us)
{
	uint64_t nh;
	uint32_t idx;
	int r;

	if (depth > 32 || (action != POL_ACL_ALLOW && action != POL_ACL_DENY))
		return -EINVAL;
	ip = mask4(ip, depth);
	if (present4(b->acl->f4, ip, depth, &nh) && nh > 0) {
		b->e[nh - 1].action = (uint8_t)action;
		b->e[nh - 1].expire_us = expire_us;
		return 0;
	}
	if (b->n_free == 0)
		return -ENOSPC;
	idx = b->free_list[--b->n_free];
	r = pol_acl_add4(b->acl, ip, depth, idx + 1);
	if (r < 0) {
		b->n_free++;
		return r;
	}
	b->e[idx].ip = ip;
	b->e[idx].depth = depth;
	b->e[idx].action = (uint8_t)action;
	b->e[idx].expire_us = expire_us;
	b->count++;
	return 0;
}

static void blk_remove(struct pol_block *b, uint32_t idx)
{
	pol_acl_del4(b->acl, b->e[idx].ip, b->e[idx].depth);
	b->e[idx].action = 0;
	b->free_list[b->n_free++] = idx;
	b->count--;
}

int pol_block_del4(struct pol_block *b, uint32_t ip, uint8_t depth)
{
	uint64_t nh;

	if (depth > 32)
		return -ENOENT;
	ip = mask4(ip, depth);
	if (!present4(b->acl->f4, ip, depth, &nh) || nh == 0 ||
	    b->e[nh - 1].action == 0)
		return -ENOENT;
	blk_remove(b, (uint32_t)(nh - 1));
	return 0;
}

uint32_t pol_block_lookup4(const struct pol_block *b, uint32_t ip,
			   uint64_t now_us)
{
	uint32_t v;
	const struct blk_entry *e;

	if (b->count == 0 || pol_acl_lookup4(b->acl, ip, &v) < 0)
		return 0;
	e = &b->e[v - 1];
	/* An expired entry no longer matches. Until pol_block_expire()
	 * removes it (every 20 ms in the gateway) it may hide a shorter live
	 * prefix under it; the gateway's sweep bounds that window. */
	if (e->expire_us && now_us >= e->expire_us)
		return 0;
	return e->action;
}

uint32_t pol_block_expire(struct pol_block *b, uint64_t now_us, uint32_t max)
{
	uint32_t removed = 0, scanned = 0;

	if (b->count == 0)
		return 0;
	/* bounded work per call: a cursor over the slots, 16 per removal
	 * allowed, so a large table is swept over several calls */
	while (scanned < max * 16 && scanned < b->max && removed < max) {
		struct blk_entry *e = &b->e[b->cursor];

		if (e->action && e->expire_us && now_us >= e->expire_us) {
			blk_remove(b, b->cursor);
			removed++;
		}
		b->cursor = (b->cursor + 1) % b->max;
		scanned++;
	}
	return removed;
}

uint32_t pol_block_count(const struct pol_block *b)
{
	return b ? b->count : 0;
}
