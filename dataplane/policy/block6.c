/*
 * block6.c - pushed IPv6 blocks and allows (see block6.h and the runtime
 * block table in acl.h).
 *
 * Owner: one dataplane lcore (the table is written and read by its core
 * only). Never allocates after create; every operation is bounded: add
 * and delete are one hash operation, a lookup at most one probe per
 * distinct depth in use (<= 129), an expiry pass at most 4 x max slots.
 */
#include "dataplane/policy/block6.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_malloc.h>

#include "dataplane/policy/acl.h"
#include "dataplane/policy/ratelimit.h"

struct blk6_key {
	uint8_t addr[16]; /* masked to depth */
	uint8_t depth;
	uint8_t pad[3];
};

struct blk6_ent {
	uint64_t expire_us; /* 0: never */
	struct blk6_key key;
	uint8_t action;     /* 0: free slot */
};

struct pol_block6 {
	struct rte_hash *h;   /* key -> index into ent */
	struct blk6_ent *ent;
	uint32_t *free;       /* stack of unused indices */
	uint32_t max, n, nfree, cursor;
	uint32_t ndepth[129]; /* entries per depth */
};

static atomic_uint block6_seq;

static void blk6_key(struct blk6_key *k, const uint8_t addr[16],
		     uint8_t depth)
{
	memset(k, 0, sizeof(*k));
	pol_ipkey6(k->addr, addr, depth);
	k->depth = depth;
}

struct pol_block6 *pol_block6_create(uint32_t max_entries, int socket)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = max_entries < 8 ? 8 : max_entries,
		.key_len = sizeof(struct blk6_key),
		.hash_func = rte_jhash,
		.socket_id = socket,
		/* extendable buckets: every one of max_entries keys fits */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct pol_block6 *b;

	if (max_entries == 0 || max_entries > POL_ACL_VALUE_MAX + 1u) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(name, sizeof(name), "mxgb6_%u",
		 atomic_fetch_add_explicit(&block6_seq, 1,
					   memory_order_relaxed));
	b = rte_zmalloc_socket("mxg_block6", sizeof(*b), RTE_CACHE_LINE_SIZE,
			       socket);
	if (b == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	b->max = max_entries;
	b->ent = rte_zmalloc_socket("mxg_block6_ent",
				    sizeof(*b->ent) * max_entries,
				    RTE_CACHE_LINE_SIZE, socket);
	b->free = rte_malloc_socket("mxg_block6_idx",
				    sizeof(uint32_t) * max_entries,
				    RTE_CACHE_LINE_SIZE, socket);
	b->h = rte_hash_create(&hp);
	if (b->ent == NULL || b->free == NULL || b->h == NULL) {
		pol_block6_free(b);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < max_entries; i++)
		b->free[i] = max_entries - 1 - i;
	b->nfree = max_entries;
	return b;
}

void pol_block6_free(struct pol_block6 *b)
{
	if (b == NULL)
		return;
	rte_hash_free(b->h);
	rte_free(b->free);
	rte_free(b->ent);
	rte_free(b);
}

static inline bool blk6_live(const struct blk6_ent *e, uint64_t now_us)
{
	return e->expire_us == 0 || now_us < e->expire_us;
}

int pol_block6_add(struct pol_block6 *b, const uint8_t addr[16],
		   uint8_t depth, uint32_t action, uint64_t expire_us)
{
	struct blk6_key k;
	void *data;
	uint32_t idx;

	if (b == NULL || depth > 128 ||
	    (action != POL_ACL_ALLOW && action != POL_ACL_DENY))
		return -EINVAL;
	blk6_key(&k, addr, depth);
	if (rte_hash_lookup_data(b->h, &k, &data) >= 0) {
		idx = (uint32_t)(uintptr_t)data;
		b->ent[idx].action = (uint8_t)action;
		b->ent[idx].expire_us = expire_us;
		return 0;
	}
	if (b->nfree == 0)
		return -ENOSPC;
	idx = b->free[b->nfree - 1];
	if (rte_hash_add_key_data(b->h, &k, (void *)(uintptr_t)idx) < 0)
		return -ENOSPC;
	b->nfree--;
	b->ent[idx].key = k;
	b->ent[idx].action = (uint8_t)action;
	b->ent[idx].expire_us = expire_us;
	b->ndepth[depth]++;
	b->n++;
	return 0;
}

static void blk6_remove(struct pol_block6 *b, uint32_t idx)
{
	struct blk6_ent *e = &b->ent[idx];

	rte_hash_del_key(b->h, &e->key);
	b->ndepth[e->key.depth]--;
	e->action = 0;
	b->free[b->nfree++] = idx;
	b->n--;
}

int pol_block6_del(struct pol_block6 *b, const uint8_t addr[16],
		   uint8_t depth)
{
	struct blk6_key k;
	void *data;

	if (b == NULL || depth > 128)
		return -EINVAL;
	blk6_key(&k, addr, depth);
	if (rte_hash_lookup_data(b->h, &k, &data) < 0)
		return -ENOENT;
	blk6_remove(b, (uint32_t)(uintptr_t)data);
	return 0;
}

uint32_t pol_block6_lookup(const struct pol_block6 *b, const uint8_t addr[16],
			   uint64_t now_us)
{
	if (b == NULL || b->n == 0)
		return 0;
	for (int d = 128; d >= 0; d--) {
		struct blk6_key k;
		void *data;

		if (b->ndepth[d] == 0)
			continue;
		blk6_key(&k, addr, (uint8_t)d);
		if (rte_hash_lookup_data(b->h, &k, &data) >= 0) {
			const struct blk6_ent *e =
				&b->ent[(uint32_t)(uintptr_t)data];

			/* expired, not yet removed: a shorter live
			 * prefix still answers */
			if (blk6_live(e, now_us))
				return e->action;
		}
	}
	return 0;
}

uint32_t pol_block6_expire(struct pol_block6 *b, uint64_t now_us,
			   uint32_t max)
{
	uint32_t done = 0, steps;

	if (b == NULL || b->n == 0)
		return 0;
	steps = 4 * max < b->max ? 4 * max : b->max;
	while (steps-- > 0 && done < max) {
		struct blk6_ent *e = &b->ent[b->cursor];

		if (e->action != 0 && !blk6_live(e, now_us)) {
			blk6_remove(b, b->cursor);
			done++;
		}
		b->cursor = b->cursor + 1 < b->max ? b->cursor + 1 : 0;
	}
	return done;
}

uint32_t pol_block6_count(const struct pol_block6 *b)
{
	return b ? b->n : 0;
}

size_t pol_block6_memory(const struct pol_block6 *b)
{
	if (b == NULL)
		return 0;
	/* the hash: a key slot + bucket share per entry, roughly */
	return sizeof(*b) + (sizeof(*b->ent) + sizeof(uint32_t)) * b->max +
	       (size_t)b->max * (sizeof(struct blk6_key) + 32);
}
