/*
 * acl.c - CIDR tables over rte_lpm / rte_lpm6 and the per-core table of
 * pushed blocks (see acl.h).
 *
 * Sizing. rte_lpm is DIR-24-8: a fixed 2^24-entry first level (64 MiB)
 * plus one 256-entry tbl8 group (1 KiB) per /24 that holds a prefix
 * longer than /24. How many groups a list needs is only known from its
 * prefixes, so pol_acl_create() reserves max4 groups for small tables
 * and max4 / 2 (at least 4096, at most 2^19 = 512 MiB) for large ones;
 * a list that needs more gets -ENOSPC from pol_acl_add4() and the reload
 * is refused with that error.
 *
 * Threads: as acl.h says; nothing here locks.
 */
#include "dataplane/policy/acl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

struct pol_acl {
	struct rte_lpm *l4;
	struct rte_lpm6 *l6;
	uint32_t n4, n6;
	size_t mem;
};

static uint32_t acl_seq;

static uint32_t tbl8_groups(uint32_t max4)
{
	uint32_t g;

	if (max4 <= 4096)
		return max4 < 256 ? 256 : max4;
	g = max4 / 2;
	if (g < 4096)
		g = 4096;
	if (g > (1u << 19))
		g = 1u << 19;
	return g;
}

struct pol_acl *pol_acl_create(uint32_t max4, uint32_t max6, int socket)
{
	struct pol_acl *a = calloc(1, sizeof(*a));
	char name[RTE_LPM_NAMESIZE];
	uint32_t id;

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	id = __atomic_fetch_add(&acl_seq, 1, __ATOMIC_RELAXED);
	if (max4) {
		struct rte_lpm_config c = {
			.max_rules = max4,
			.number_tbl8s = tbl8_groups(max4),
			.flags = 0,
		};

		snprintf(name, sizeof(name), "pacl4_%u", id);
		a->l4 = rte_lpm_create(name, socket, &c);
		if (!a->l4)
			goto fail;
		a->mem += (size_t)(1u << 24) * 4 + (size_t)c.number_tbl8s * 1024 +
			  (size_t)max4 * 8;
	}
	if (max6) {
		struct rte_lpm6_config c = {
			.max_rules = max6,
			.number_tbl8s = max6 * 4 < 1024 ? 1024 : max6 * 4,
			.flags = 0,
		};

		snprintf(name, sizeof(name), "pacl6_%u", id);
		a->l6 = rte_lpm6_create(name, socket, &c);
		if (!a->l6)
			goto fail;
		a->mem += (size_t)(1u << 24) * 4 + (size_t)c.number_tbl8s * 1024 +
			  (size_t)max6 * 24;
	}
	return a;
fail:
	errno = rte_errno ? rte_errno : ENOMEM;
	pol_acl_free(a);
	return NULL;
}

void pol_acl_free(struct pol_acl *a)
{
	if (!a)
		return;
	rte_lpm_free(a->l4);
	rte_lpm6_free(a->l6);
	free(a);
}

int pol_acl_add4(struct pol_acl *a, uint32_t ip, uint8_t depth,
		 uint32_t value)
{
	uint32_t nh;
	int r;

	if (depth > 32 || value > POL_ACL_VALUE_MAX || !a->l4)
		return -EINVAL;
	if (depth == 0) {
		/* rte_lpm has no /0: two /1 halves cover everything */
		r = pol_acl_add4(a, 0, 1, value);
		return r < 0 ? r : pol_acl_add4(a, 0x80000000u, 1, value);
	}
	ip &= depth == 32 ? 0xffffffffu : ~(0xffffffffu >> depth);
	if (rte_lpm_is_rule_present(a->l4, ip, depth, &nh) != 1)
		a->n4++;
	else if (nh == value)
		return 0;
	r = rte_lpm_add(a->l4, ip, depth, value);
	if (r < 0) {
		if (rte_lpm_is_rule_present(a->l4, ip, depth, &nh) != 1)
			a->n4--;
		return r == -EINVAL ? -EINVAL : -ENOSPC;
	}
	return 0;
}

int pol_acl_del4(struct pol_acl *a, uint32_t ip, uint8_t depth)
{
	if (!a->l4 || depth > 32)
		return -EINVAL;
	if (depth == 0) {
		int r = pol_acl_del4(a, 0, 1);

		return r < 0 ? r : pol_acl_del4(a, 0x80000000u, 1);
	}
	ip &= depth == 32 ? 0xffffffffu : ~(0xffffffffu >> depth);
	if (rte_lpm_delete(a->l4, ip, depth) < 0)
		return -ENOENT;
	a->n4--;
	return 0;
}

int pol_acl_lookup4(const struct pol_acl *a, uint32_t ip, uint32_t *value)
{
	if (!a->l4 || rte_lpm_lookup(a->l4, ip, value) != 0)
		return -ENOENT;
	return 0;
}

int pol_acl_add6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth,
		 uint32_t value)
{
	uint32_t nh;
	uint8_t ip[16];
	int r;

	if (depth > 128 || value > POL_ACL_VALUE_MAX || !a->l6)
		return -EINVAL;
	if (depth == 0) {
		memset(ip, 0, 16);
		r = pol_acl_add6(a, ip, 1, value);
		ip[0] = 0x80;
		return r < 0 ? r : pol_acl_add6(a, ip, 1, value);
	}
	memcpy(ip, addr, 16);
	if (rte_lpm6_is_rule_present(a->l6, ip, depth, &nh) != 1)
		a->n6++;
	r = rte_lpm6_add(a->l6, ip, depth, value);
	if (r < 0) {
		if (rte_lpm6_is_rule_present(a->l6, ip, depth, &nh) != 1)
			a->n6--;
		return r == -EINVAL ? -EINVAL : -ENOSPC;
	}
	return 0;
}

int pol_acl_del6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth)
{
	uint8_t ip[16];

	if (!a->l6 || depth > 128 || depth == 0)
		return -EINVAL;
	memcpy(ip, addr, 16);
	if (rte_lpm6_delete(a->l6, ip, depth) < 0)
		return -ENOENT;
	a->n6--;
	return 0;
}

int pol_acl_lookup6(const struct pol_acl *a, const uint8_t addr[16],
		    uint32_t *value)
{
	if (!a->l6 || rte_lpm6_lookup(a->l6, addr, value) != 0)
		return -ENOENT;
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

struct pol_block {
	struct pol_acl *acl; /* value = index into e[] */
	struct blk_entry *e;
	uint32_t *free_list;
	uint32_t n_free, max, count, cursor;
};

struct pol_block *pol_block_create(uint32_t max_entries, int socket)
{
	struct pol_block *b = calloc(1, sizeof(*b));

	if (!b || max_entries == 0 || max_entries > POL_ACL_VALUE_MAX)
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

static uint32_t mask_ip(uint32_t ip, uint8_t depth)
{
	return depth == 0 ? 0
	       : depth == 32 ? ip
			     : ip & ~(0xffffffffu >> depth);
}

int pol_block_add4(struct pol_block *b, uint32_t ip, uint8_t depth,
		   uint32_t action, uint64_t expire_us)
{
	uint32_t idx;
	int r;

	if (depth > 32 || (action != POL_ACL_ALLOW && action != POL_ACL_DENY))
		return -EINVAL;
	ip = mask_ip(ip, depth);
	if (depth > 0 && rte_lpm_is_rule_present(b->acl->l4, ip, depth, &idx) ==
				 1) {
		b->e[idx].action = (uint8_t)action;
		b->e[idx].expire_us = expire_us;
		return 0;
	}
	if (depth == 0 && rte_lpm_is_rule_present(b->acl->l4, 0, 1, &idx) == 1 &&
	    b->e[idx].depth == 0) {
		b->e[idx].action = (uint8_t)action;
		b->e[idx].expire_us = expire_us;
		return 0;
	}
	if (b->n_free == 0)
		return -ENOSPC;
	idx = b->free_list[--b->n_free];
	r = pol_acl_add4(b->acl, ip, depth, idx);
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
	uint32_t idx;

	if (depth > 32)
		return -ENOENT;
	ip = mask_ip(ip, depth);
	if (rte_lpm_is_rule_present(b->acl->l4, depth ? ip : 0,
				    depth ? depth : 1, &idx) != 1 ||
	    b->e[idx].action == 0 || b->e[idx].depth != depth)
		return -ENOENT;
	blk_remove(b, idx);
	return 0;
}

uint32_t pol_block_lookup4(const struct pol_block *b, uint32_t ip,
			   uint64_t now_us)
{
	uint32_t idx;

	if (b->count == 0 || rte_lpm_lookup(b->acl->l4, ip, &idx) != 0)
		return 0;
	/* An expired entry no longer matches. Until pol_block_expire()
	 * removes it (every 20 ms in the gateway) it may hide a shorter live
	 * prefix under it; the gateway's sweep bounds that window. */
	if (b->e[idx].expire_us && now_us >= b->e[idx].expire_us)
		return 0;
	return b->e[idx].action;
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
