/*
 * acl.c - CIDR tables over rte_lpm/rte_lpm6 and the per-core runtime
 * block table (see acl.h for the contract).
 *
 * Ownership: a struct pol_acl is written by the thread that builds it and
 * is read-only once published; a struct pol_block belongs to one
 * dataplane lcore. Promises: every byte is allocated at create time with
 * rte_malloc on the requested socket; add/del/lookup never allocate,
 * never block and never log. Lookups are const and touch only the LPM
 * tables (plus one array load for IPv6 and for blocks).
 *
 * Beside each rte_lpm we keep a small open-addressing map of the
 * prefixes held (key = masked address and depth), because rte_lpm keeps
 * its rules in per-depth arrays that it scans linearly: asking it "is
 * this prefix present?" costs O(prefixes of that depth), our map O(1).
 * The map gives exact counts, -ENOSPC before rte_lpm is touched, -ENOENT
 * on deletes, and (for blocks) the entry behind a prefix.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

#include "dataplane/policy/acl.h"
#include "dataplane/policy/block6.h"

/* rte_lpm6 keeps 21-bit next hops (struct rte_lpm6_tbl_entry). */
#define LPM6_HOP_BITS 21
#define LPM6_HOP_MAX ((1u << LPM6_HOP_BITS) - 1)
#define LPM6_TBL8_MAX (1u << 21) /* RTE_LPM6_TBL8_MAX_NUM_GROUPS */
/* A /128 below the 24-bit first level needs one tbl8 per further byte. */
#define LPM6_TBL8_PER_PREFIX 13
#define LPM_TBL8_BYTES (RTE_LPM_TBL8_GROUP_NUM_ENTRIES * 4u)
#define LPM_TBL24_BYTES ((size_t)RTE_LPM_TBL24_NUM_ENTRIES * 4u)

/* Table names must be unique in the process (rte_lpm keeps a global
 * list and refuses duplicates). */
static atomic_uint acl_seq;

static void acl_name(char *buf, size_t len, const char *kind)
{
	snprintf(buf, len, "mxg%s_%u", kind,
		 atomic_fetch_add_explicit(&acl_seq, 1, memory_order_relaxed));
}

static inline uint32_t depth_mask4(uint8_t depth)
{
	return depth == 0 ? 0 : ~0u << (32 - depth);
}

static void mask6(uint8_t out[16], const uint8_t in[16], uint8_t depth)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = depth >= 8 * (i + 1) ? 8
				: depth > 8 * i	     ? depth - 8 * i
						     : 0;

		out[i] = (uint8_t)(in[i] & (0xff00u >> bits));
	}
}

/*
 * kvmap: open addressing with linear probing of keys below 2^40 to 24-bit
 * values, both packed into one 64-bit slot (key << 24 | value), so a
 * probe reads 8 bytes. At most half full (sized at create). Deletion
 * shifts later members of the cluster back (no tombstones), so probe
 * lengths never degrade under churn.
 */
#define KV_EMPTY UINT64_MAX
#define KV_VBITS 24
#define KV_VMASK ((1ull << KV_VBITS) - 1)

struct kvmap {
	uint64_t *slot;
	uint32_t mask;
	uint8_t shift;
};

static int kv_init(struct kvmap *m, uint32_t max, int socket, size_t *mem)
{
	uint64_t n = 16;
	uint8_t bits = 4;

	while (n < 2ull * max) {
		n <<= 1;
		bits++;
	}
	if (n > (1ull << 31))
		return -EINVAL;
	m->slot = rte_malloc_socket("mxg_acl_map", n * sizeof(uint64_t),
				    RTE_CACHE_LINE_SIZE, socket);
	if (m->slot == NULL)
		return -ENOMEM;
	memset(m->slot, 0xff, n * sizeof(uint64_t));
	m->mask = (uint32_t)(n - 1);
	m->shift = (uint8_t)(64 - bits);
	*mem += n * sizeof(uint64_t);
	return 0;
}

static inline uint32_t kv_home(const struct kvmap *m, uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> m->shift);
}

/* Slot position of key, or -1. */
static inline int64_t kv_find(const struct kvmap *m, uint64_t key)
{
	uint32_t i = kv_home(m, key);

	for (;;) {
		uint64_t s = m->slot[i];

		if (s == KV_EMPTY)
			return -1;
		if ((s >> KV_VBITS) == key)
			return i;
		i = (i + 1) & m->mask;
	}
}

static inline uint32_t kv_val(const struct kvmap *m, int64_t pos)
{
	return (uint32_t)(m->slot[pos] & KV_VMASK);
}

/* key must be absent and the map not full (callers bound the count). */
static void kv_insert(struct kvmap *m, uint64_t key, uint32_t val)
{
	uint32_t i = kv_home(m, key);

	while (m->slot[i] != KV_EMPTY)
		i = (i + 1) & m->mask;
	m->slot[i] = key << KV_VBITS | val;
}

static void kv_remove_at(struct kvmap *m, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & m->mask;
		if (m->slot[j] == KV_EMPTY)
			break;
		k = kv_home(m, m->slot[j] >> KV_VBITS);
		/* Leave slot j alone when its home lies cyclically in
		 * (i, j]: moving it to i would put it before its home. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->slot[i] = m->slot[j];
		i = j;
	}
	m->slot[i] = KV_EMPTY;
}

static inline uint64_t key4(uint32_t ip_masked, uint8_t depth)
{
	return (uint64_t)ip_masked << 6 | depth;
}

/* ------------------------------------------------------------------ */

struct pol_acl {
	struct rte_lpm *lpm4;  /* NULL when max4 == 0 */
	struct rte_lpm6 *lpm6; /* NULL when max6 == 0 */
	uint32_t max4, max6;
	uint32_t n4, n6;	 /* prefixes held, /0 included */
	bool has_def4, has_def6; /* /0: rte_lpm takes depths 1..32 only */
	uint32_t def4, def6;
	struct kvmap pfx4; /* IPv4 prefixes held (value unused) */
	/* rte_lpm6 stores 21-bit next hops, ours are 24-bit: lpm6 holds an
	 * id, v6val[id] the value. Ids are interned per distinct value
	 * (ALLOW and DENY are two ids however many prefixes carry them). */
	struct kvmap v6ids; /* value -> id */
	uint32_t *v6val;
	uint32_t *v6ref;
	uint32_t *v6free;
	uint32_t v6nfree;
	uint32_t tbl8s4, tbl8s6;
	size_t mem;
	/* Static IPv4 tables (pol_acl_build4): our own DIR-24-8 arrays,
	 * painted once; lpm4 is then NULL and add/del of IPv4 refused. */
	uint32_t *s24;	   /* 2^24 entries: 0 miss, v+1, or S_EXT|group */
	uint32_t *s8;	   /* 256 entries a group */
	uint32_t s8_groups;
	size_t s24_len, s8_len;
};

#define S_EXT 0x80000000u

struct pol_acl *pol_acl_create(uint32_t max4, uint32_t max6, int socket)
{
	return pol_acl_create_ex(max4, 0, max6, 0, socket);
}

uint32_t pol_acl_tbl8s4_default(uint32_t max4)
{
	return RTE_MAX(1u,
		       RTE_MIN(max4, (uint32_t)RTE_LPM_MAX_TBL8_NUM_GROUPS));
}

uint32_t pol_acl_tbl8s6_default(uint32_t max6)
{
	uint64_t n = (uint64_t)max6 * LPM6_TBL8_PER_PREFIX;

	return (uint32_t)RTE_MAX(1ull, RTE_MIN(n, (uint64_t)LPM6_TBL8_MAX));
}

struct pol_acl *pol_acl_create_ex(uint32_t max4, uint32_t tbl8s4, uint32_t max6,
				  uint32_t tbl8s6, int socket)
{
	struct pol_acl *a;
	char name[RTE_LPM_NAMESIZE - 8];
	int r;

	/* One id per value held plus one while a replace is in flight. */
	if (max4 > (1u << 30) || max6 > LPM6_HOP_MAX - 1 ||
	    tbl8s4 > RTE_LPM_MAX_TBL8_NUM_GROUPS || tbl8s6 > LPM6_TBL8_MAX) {
		errno = EINVAL;
		return NULL;
	}
	a = rte_zmalloc_socket("mxg_acl", sizeof(*a), RTE_CACHE_LINE_SIZE,
			       socket);
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	a->mem = sizeof(*a);
	a->max4 = max4;
	a->max6 = max6;
	r = kv_init(&a->pfx4, max4, socket, &a->mem);
	if (r < 0)
		goto fail;
	if (max4 > 0) {
		struct rte_lpm_config c = {
			.max_rules = max4,
			.number_tbl8s =
				tbl8s4 ? tbl8s4 : pol_acl_tbl8s4_default(max4),
		};

		acl_name(name, sizeof(name), "a4");
		a->lpm4 = rte_lpm_create(name, socket, &c);
		if (a->lpm4 == NULL) {
			r = -(rte_errno ? rte_errno : ENOMEM);
			goto fail;
		}
		a->tbl8s4 = c.number_tbl8s;
		a->mem += LPM_TBL24_BYTES + (size_t)max4 * 8 +
			  (size_t)c.number_tbl8s * LPM_TBL8_BYTES;
	}
	if (max6 > 0) {
		struct rte_lpm6_config c = {
			.max_rules = max6,
			.number_tbl8s =
				tbl8s6 ? tbl8s6 : pol_acl_tbl8s6_default(max6),
		};
		uint32_t nid = max6 + 1;

		acl_name(name, sizeof(name), "a6");
		a->lpm6 = rte_lpm6_create(name, socket, &c);
		if (a->lpm6 == NULL) {
			r = -(rte_errno ? rte_errno : ENOMEM);
			goto fail;
		}
		a->tbl8s6 = c.number_tbl8s;
		/* tbl24, tbl8 groups with their pool index and header, and
		 * the rule hash (about 64 bytes a rule, 1.2 x max_rules). */
		a->mem += LPM_TBL24_BYTES +
			  (size_t)c.number_tbl8s * (LPM_TBL8_BYTES + 16) +
			  ((size_t)max6 * 12 / 10 + 64) * 64;
		r = kv_init(&a->v6ids, nid, socket, &a->mem);
		if (r < 0)
			goto fail;
		a->v6val = rte_malloc_socket(
			"mxg_acl6", 3 * sizeof(uint32_t) * nid, 0, socket);
		if (a->v6val == NULL) {
			r = -ENOMEM;
			goto fail;
		}
		a->v6ref = a->v6val + nid;
		a->v6free = a->v6ref + nid;
		for (uint32_t i = 0; i < nid; i++) {
			a->v6ref[i] = 0;
			a->v6free[i] = nid - 1 - i;
		}
		a->v6nfree = nid;
		a->mem += 3 * sizeof(uint32_t) * nid;
	}
	return a;
fail:
	pol_acl_free(a);
	errno = -r;
	return NULL;
}

void pol_acl_free(struct pol_acl *a)
{
	if (a == NULL)
		return;
	rte_lpm_free(a->lpm4);
	rte_lpm6_free(a->lpm6);
	if (a->s24)
		munmap(a->s24, a->s24_len);
	if (a->s8)
		munmap(a->s8, a->s8_len);
	rte_free(a->pfx4.slot);
	rte_free(a->v6ids.slot);
	rte_free(a->v6val);
	rte_free(a);
}

/*
 * Static IPv4 tables. A snapshot's lists are known in full when it is
 * compiled and never change afterwards, so rather than adding prefixes
 * one by one to rte_lpm (which scans the rules of a depth linearly on
 * every add: a million prefixes of one depth take minutes) we paint the
 * same DIR-24-8 layout directly: prefixes sorted by depth, shortest
 * first, each writes its value over its range, so a longer prefix
 * overwrites the shorter ones it sits in, which is longest-prefix match.
 * Prefixes of /24 or shorter go to the 2^24-entry first level; a longer
 * one gets a 256-entry group for its /24 (created from the first-level
 * value, which is final by then) and paints its part of it. Cost: the
 * entries painted (2^(24-d) for a /d up to /24, 2^(32-d) beyond), about
 * a second for a million realistic prefixes. The arrays are anonymous
 * mappings, so a small list touches a few pages, not 64 MiB. Lookup is
 * the same one or two loads as rte_lpm.
 */
static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static int pfx_cmp(const void *x, const void *y)
{
	const struct pol_acl_entry4 *a = x, *b = y;

	if (a->depth != b->depth)
		return a->depth < b->depth ? -1 : 1;
	if (a->ip != b->ip)
		return a->ip < b->ip ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static void *map_zero(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int pol_acl_build4(struct pol_acl *a, struct pol_acl_entry4 *e, uint32_t n)
{
	uint32_t groups = 0;

	if (a == NULL || a->lpm4 != NULL || a->s24 != NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].depth > 32 || e[i].value > POL_ACL_VALUE_MAX)
			return -EINVAL;
		e[i].ip &= depth_mask4(e[i].depth);
		e[i].order = i;
	}
	/* by depth, then prefix, then input order: equal prefixes are
	 * adjacent and only the last of them (the later entry) is painted */
	qsort(e, n, sizeof(*e), pfx_cmp);
	/* groups: distinct /24s holding a prefix longer than /24 (the
	 * longer prefixes are at the end, sorted by depth only, so count
	 * with a sort of their /24s) */
	{
		uint32_t first = n, *keys;

		for (uint32_t i = 0; i < n; i++)
			if (e[i].depth > 24) {
				first = i;
				break;
			}
		keys = malloc(sizeof(*keys) * (n - first + 1));
		if (!keys)
			return -ENOMEM;
		for (uint32_t i = first; i < n; i++)
			keys[i - first] = e[i].ip >> 8;
		qsort(keys, n - first, sizeof(*keys), u32_cmp);
		for (uint32_t i = 0; i < n - first; i++)
			if (i == 0 || keys[i] != keys[i - 1])
				groups++;
		free(keys);
	}
	a->s24_len = (size_t)(1u << 24) * sizeof(uint32_t);
	a->s8_len = (size_t)(groups ? groups : 1) * 256 * sizeof(uint32_t);
	a->s24 = map_zero(a->s24_len);
	a->s8 = map_zero(a->s8_len);
	if (!a->s24 || !a->s8)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t v = e[i].value + 1, ip = e[i].ip;
		uint8_t d = e[i].depth;

		if (i + 1 < n && e[i + 1].depth == d && e[i + 1].ip == ip)
			continue; /* a later entry for the same prefix */
		a->n4++;
		if (d <= 24) {
			uint32_t from = d ? ip >> 8 : 0;
			uint32_t cnt = 1u << (24 - d);

			for (uint32_t k = 0; k < cnt; k++)
				a->s24[from + k] = v;
		} else {
			uint32_t *t = &a->s24[ip >> 8], *g;
			uint32_t cnt = 1u << (32 - d);

			if (!(*t & S_EXT)) {
				uint32_t base = *t;

				g = &a->s8[(size_t)a->s8_groups * 256];
				for (uint32_t k = 0; k < 256; k++)
					g[k] = base;
				*t = S_EXT | a->s8_groups++;
			}
			g = &a->s8[(size_t)(*t & ~S_EXT) * 256];
			for (uint32_t k = 0; k < cnt; k++)
				g[(ip & 255) + k] = v;
		}
	}
	a->mem += a->s24_len + a->s8_len;
	return 0;
}

int pol_acl_add4(struct pol_acl *a, uint32_t ip, uint8_t depth, uint32_t value)
{
	uint32_t ipm;
	int64_t pos;
	int r;

	if (a == NULL || depth > 32 || value > POL_ACL_VALUE_MAX ||
	    a->s24 != NULL)
		return -EINVAL;
	ipm = ip & depth_mask4(depth);
	pos = kv_find(&a->pfx4, key4(ipm, depth));
	if (pos < 0 && a->n4 >= a->max4)
		return -ENOSPC;
	if (depth == 0) {
		a->def4 = value;
		a->has_def4 = true;
	} else {
		/* Replacing keeps rte_lpm's rule and rewrites its entries;
		 * a new rule may fail for want of tbl8 groups (-ENOSPC),
		 * in which case rte_lpm has already removed it again. */
		r = rte_lpm_add(a->lpm4, ipm, depth, value);
		if (r < 0)
			return r;
	}
	if (pos < 0) {
		kv_insert(&a->pfx4, key4(ipm, depth), 0);
		a->n4++;
	}
	return 0;
}

int pol_acl_del4(struct pol_acl *a, uint32_t ip, uint8_t depth)
{
	uint32_t ipm;
	int64_t pos;

	if (a == NULL || depth > 32)
		return -EINVAL;
	ipm = ip & depth_mask4(depth);
	pos = kv_find(&a->pfx4, key4(ipm, depth));
	if (pos < 0)
		return -ENOENT;
	if (depth == 0)
		a->has_def4 = false;
	else
		rte_lpm_delete(a->lpm4, ipm, depth);
	kv_remove_at(&a->pfx4, (uint32_t)pos);
	a->n4--;
	return 0;
}

int pol_acl_lookup4(const struct pol_acl *a, uint32_t ip, uint32_t *value)
{
	if (a->s24 != NULL) {
		uint32_t e = a->s24[ip >> 8];

		if (e & S_EXT)
			e = a->s8[(size_t)(e & ~S_EXT) * 256 + (ip & 255)];
		if (e == 0)
			return -ENOENT;
		*value = e - 1;
		return 0;
	}
	if (likely(a->lpm4 != NULL) && rte_lpm_lookup(a->lpm4, ip, value) == 0)
		return 0;
	if (a->has_def4) {
		*value = a->def4;
		return 0;
	}
	return -ENOENT;
}

/* Id for value with one more reference, or -ENOSPC (cannot happen while
 * ids outnumber prefixes by one, which create guarantees). */
static int v6_ref(struct pol_acl *a, uint32_t value, uint32_t *id)
{
	int64_t pos = kv_find(&a->v6ids, value);

	if (pos >= 0) {
		*id = kv_val(&a->v6ids, pos);
	} else {
		if (a->v6nfree == 0)
			return -ENOSPC;
		*id = a->v6free[--a->v6nfree];
		a->v6val[*id] = value;
		kv_insert(&a->v6ids, value, *id);
	}
	a->v6ref[*id]++;
	return 0;
}

static void v6_unref(struct pol_acl *a, uint32_t id)
{
	if (--a->v6ref[id] == 0) {
		int64_t pos = kv_find(&a->v6ids, a->v6val[id]);

		if (pos >= 0)
			kv_remove_at(&a->v6ids, (uint32_t)pos);
		a->v6free[a->v6nfree++] = id;
	}
}

int pol_acl_add6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth,
		 uint32_t value)
{
	uint8_t m[16];
	uint32_t old = 0, id;
	int present, r;

	if (a == NULL || addr == NULL || depth > 128 ||
	    value > POL_ACL_VALUE_MAX)
		return -EINVAL;
	if (depth == 0) {
		if (!a->has_def6 && a->n6 >= a->max6)
			return -ENOSPC;
		if (!a->has_def6)
			a->n6++;
		a->has_def6 = true;
		a->def6 = value;
		return 0;
	}
	if (a->lpm6 == NULL)
		return -ENOSPC;
	mask6(m, addr, depth);
	present = rte_lpm6_is_rule_present(a->lpm6, m, depth, &old);
	if (present < 0)
		return present;
	if (!present && a->n6 >= a->max6)
		return -ENOSPC;
	r = v6_ref(a, value, &id);
	if (r < 0)
		return r;
	/* rte_lpm6 checks its tbl8 budget before changing anything. */
	r = rte_lpm6_add(a->lpm6, m, depth, id);
	if (r < 0) {
		v6_unref(a, id);
		return r;
	}
	if (present)
		v6_unref(a, old);
	else
		a->n6++;
	return 0;
}

int pol_acl_del6(struct pol_acl *a, const uint8_t addr[16], uint8_t depth)
{
	uint8_t m[16];
	uint32_t old;
	int r;

	if (a == NULL || addr == NULL || depth > 128)
		return -EINVAL;
	if (depth == 0) {
		if (!a->has_def6)
			return -ENOENT;
		a->has_def6 = false;
		a->n6--;
		return 0;
	}
	if (a->lpm6 == NULL)
		return -ENOENT;
	mask6(m, addr, depth);
	if (rte_lpm6_is_rule_present(a->lpm6, m, depth, &old) != 1)
		return -ENOENT;
	r = rte_lpm6_delete(a->lpm6, m, depth);
	if (r < 0)
		return r;
	v6_unref(a, old);
	a->n6--;
	return 0;
}

int pol_acl_lookup6(const struct pol_acl *a, const uint8_t addr[16],
		    uint32_t *value)
{
	uint32_t id;

	if (likely(a->lpm6 != NULL) &&
	    rte_lpm6_lookup(a->lpm6, addr, &id) == 0) {
		*value = a->v6val[id];
		return 0;
	}
	if (a->has_def6) {
		*value = a->def6;
		return 0;
	}
	return -ENOENT;
}

uint32_t pol_acl_count(const struct pol_acl *a)
{
	return a ? a->n4 + a->n6 : 0;
}

size_t pol_acl_memory(const struct pol_acl *a)
{
	return a ? a->mem : 0;
}

/* ------------------------------------------------------------------ */

/*
 * Runtime blocks. Entry i lives in ent[i]; rte_lpm maps a prefix to i
 * (its 24-bit next hop), the kvmap maps (prefix, depth) to i, the heap
 * orders the entries that expire by expire_us (heap_pos is the entry's
 * place in it), and free[] stacks unused indices. A /0 entry is not in
 * rte_lpm (depth 1..32 only): def is its index + 1.
 */
#define BLK_NOHEAP UINT32_MAX

struct blk_ent {
	uint64_t expire_us; /* 0: never */
	uint32_t ip;	    /* masked */
	uint32_t heap_pos;
	uint8_t depth;
	uint8_t action;
};

struct pol_block {
	struct rte_lpm *lpm;
	struct pol_block6 *v6; /* the IPv6 half (block6.c) */
	struct blk_ent *ent;
	uint32_t *free;
	uint32_t *heap;
	struct kvmap map;
	uint32_t max, n, nfree, nheap;
	uint32_t def;
};

struct pol_block *pol_block_create(uint32_t max_entries, int socket)
{
	struct pol_block *b;
	struct rte_lpm_config c = {
		.max_rules = max_entries,
		.number_tbl8s = pol_acl_tbl8s4_default(max_entries),
	};
	char name[RTE_LPM_NAMESIZE - 8];
	size_t mem = 0;
	int r = -ENOMEM;

	/* Entry indices travel as rte_lpm's 24-bit next hop. */
	if (max_entries == 0 || max_entries > POL_ACL_VALUE_MAX + 1u) {
		errno = EINVAL;
		return NULL;
	}
	b = rte_zmalloc_socket("mxg_block", sizeof(*b), RTE_CACHE_LINE_SIZE,
			       socket);
	if (b == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	b->max = max_entries;
	b->ent = rte_zmalloc_socket("mxg_block_ent",
				    sizeof(*b->ent) * max_entries,
				    RTE_CACHE_LINE_SIZE, socket);
	b->free = rte_malloc_socket("mxg_block_idx",
				    2 * sizeof(uint32_t) * max_entries,
				    RTE_CACHE_LINE_SIZE, socket);
	if (b->ent == NULL || b->free == NULL)
		goto fail;
	b->heap = b->free + max_entries;
	for (uint32_t i = 0; i < max_entries; i++)
		b->free[i] = max_entries - 1 - i;
	b->nfree = max_entries;
	r = kv_init(&b->map, max_entries, socket, &mem);
	if (r < 0)
		goto fail;
	acl_name(name, sizeof(name), "b4");
	b->lpm = rte_lpm_create(name, socket, &c);
	if (b->lpm == NULL) {
		r = -(rte_errno ? rte_errno : ENOMEM);
		goto fail;
	}
	b->v6 = pol_block6_create(max_entries, socket);
	if (b->v6 == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	return b;
fail:
	pol_block_free(b);
	errno = -r;
	return NULL;
}

void pol_block_free(struct pol_block *b)
{
	if (b == NULL)
		return;
	rte_lpm_free(b->lpm);
	pol_block6_free(b->v6);
	rte_free(b->map.slot);
	rte_free(b->free);
	rte_free(b->ent);
	rte_free(b);
}

static inline bool blk_live(const struct blk_ent *e, uint64_t now_us)
{
	return e->expire_us == 0 || now_us < e->expire_us;
}

static inline uint64_t heap_key(const struct pol_block *b, uint32_t i)
{
	return b->ent[b->heap[i]].expire_us;
}

static inline void heap_set(struct pol_block *b, uint32_t i, uint32_t idx)
{
	b->heap[i] = idx;
	b->ent[idx].heap_pos = i;
}

static void heap_up(struct pol_block *b, uint32_t i)
{
	uint32_t idx = b->heap[i];
	uint64_t k = b->ent[idx].expire_us;

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (heap_key(b, p) <= k)
			break;
		heap_set(b, i, b->heap[p]);
		i = p;
	}
	heap_set(b, i, idx);
}

static void heap_down(struct pol_block *b, uint32_t i)
{
	uint32_t idx = b->heap[i];
	uint64_t k = b->ent[idx].expire_us;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= b->nheap)
			break;
		if (c + 1 < b->nheap && heap_key(b, c + 1) < heap_key(b, c))
			c++;
		if (k <= heap_key(b, c))
			break;
		heap_set(b, i, b->heap[c]);
		i = c;
	}
	heap_set(b, i, idx);
}

static void heap_remove(struct pol_block *b, uint32_t idx)
{
	uint32_t i = b->ent[idx].heap_pos;
	uint32_t last = b->heap[--b->nheap];

	b->ent[idx].heap_pos = BLK_NOHEAP;
	if (i == b->nheap)
		return;
	heap_set(b, i, last);
	heap_up(b, i);
	heap_down(b, b->ent[last].heap_pos);
}

static void blk_set_expiry(struct pol_block *b, uint32_t idx, uint64_t exp)
{
	struct blk_ent *e = &b->ent[idx];

	e->expire_us = exp;
	if (e->heap_pos != BLK_NOHEAP) {
		if (exp == 0) {
			heap_remove(b, idx);
		} else {
			heap_up(b, e->heap_pos);
			heap_down(b, e->heap_pos);
		}
	} else if (exp != 0) {
		b->nheap++;
		heap_set(b, b->nheap - 1, idx);
		heap_up(b, b->nheap - 1);
	}
}

int pol_block_add4(struct pol_block *b, uint32_t ip, uint8_t depth,
		   uint32_t action, uint64_t expire_us)
{
	uint32_t ipm, idx;
	struct blk_ent *e;
	int64_t pos;

	if (b == NULL || depth > 32 ||
	    (action != POL_ACL_ALLOW && action != POL_ACL_DENY))
		return -EINVAL;
	ipm = ip & depth_mask4(depth);
	pos = kv_find(&b->map, key4(ipm, depth));
	if (pos >= 0) {
		/* Replace: rte_lpm keeps mapping the prefix to the same
		 * entry, only the entry changes. */
		idx = kv_val(&b->map, pos);
		b->ent[idx].action = (uint8_t)action;
		blk_set_expiry(b, idx, expire_us);
		return 0;
	}
	if (b->nfree == 0)
		return -ENOSPC;
	idx = b->free[b->nfree - 1];
	if (depth > 0) {
		int r = rte_lpm_add(b->lpm, ipm, depth, idx);

		if (r < 0)
			return r;
	} else {
		b->def = idx + 1;
	}
	b->nfree--;
	e = &b->ent[idx];
	e->ip = ipm;
	e->depth = depth;
	e->action = (uint8_t)action;
	e->expire_us = 0;
	e->heap_pos = BLK_NOHEAP;
	blk_set_expiry(b, idx, expire_us);
	kv_insert(&b->map, key4(ipm, depth), idx);
	b->n++;
	return 0;
}

static void blk_remove(struct pol_block *b, uint32_t idx, uint32_t mpos)
{
	struct blk_ent *e = &b->ent[idx];

	if (e->depth > 0)
		rte_lpm_delete(b->lpm, e->ip, e->depth);
	else
		b->def = 0;
	if (e->heap_pos != BLK_NOHEAP)
		heap_remove(b, idx);
	kv_remove_at(&b->map, mpos);
	b->free[b->nfree++] = idx;
	b->n--;
}

int pol_block_del4(struct pol_block *b, uint32_t ip, uint8_t depth)
{
	uint32_t ipm;
	int64_t pos;

	if (b == NULL || depth > 32)
		return -EINVAL;
	ipm = ip & depth_mask4(depth);
	pos = kv_find(&b->map, key4(ipm, depth));
	if (pos < 0)
		return -ENOENT;
	blk_remove(b, kv_val(&b->map, pos), (uint32_t)pos);
	return 0;
}

/*
 * rte_lpm answers with the longest prefix only. When that entry has
 * expired but pol_block_expire() has not removed it yet, a shorter live
 * entry it hides must still answer: walk the shorter depths through the
 * map (at most 32 O(1) probes, and only in that window between expiry
 * and removal, so the common path stays one rte_lpm lookup).
 */
static __rte_noinline uint32_t blk_shadowed(const struct pol_block *b,
					    uint32_t ip, uint8_t depth,
					    uint64_t now_us)
{
	while (depth-- > 1) {
		int64_t pos =
			kv_find(&b->map, key4(ip & depth_mask4(depth), depth));

		if (pos >= 0) {
			const struct blk_ent *e = &b->ent[kv_val(&b->map, pos)];

			if (blk_live(e, now_us))
				return e->action;
		}
	}
	if (b->def && blk_live(&b->ent[b->def - 1], now_us))
		return b->ent[b->def - 1].action;
	return 0;
}

uint32_t pol_block_lookup4(const struct pol_block *b, uint32_t ip,
			   uint64_t now_us)
{
	uint32_t idx;

	if (b->n == 0)
		return 0;
	if (rte_lpm_lookup(b->lpm, ip, &idx) == 0) {
		const struct blk_ent *e = &b->ent[idx];

		if (likely(blk_live(e, now_us)))
			return e->action;
		return blk_shadowed(b, ip, e->depth, now_us);
	}
	if (b->def && blk_live(&b->ent[b->def - 1], now_us))
		return b->ent[b->def - 1].action;
	return 0;
}

int pol_block_add6(struct pol_block *b, const uint8_t addr[16],
		   uint8_t depth, uint32_t action, uint64_t expire_us)
{
	return b ? pol_block6_add(b->v6, addr, depth, action, expire_us)
		 : -EINVAL;
}

int pol_block_del6(struct pol_block *b, const uint8_t addr[16],
		   uint8_t depth)
{
	return b ? pol_block6_del(b->v6, addr, depth) : -EINVAL;
}

uint32_t pol_block_lookup6(const struct pol_block *b, const uint8_t addr[16],
			   uint64_t now_us)
{
	return pol_block6_lookup(b->v6, addr, now_us);
}

uint32_t pol_block_expire(struct pol_block *b, uint64_t now_us, uint32_t max)
{
	uint32_t done = pol_block6_expire(b->v6, now_us, max);

	while (done < max && b->nheap > 0 && heap_key(b, 0) <= now_us) {
		uint32_t idx = b->heap[0];
		const struct blk_ent *e = &b->ent[idx];
		int64_t pos = kv_find(&b->map, key4(e->ip, e->depth));

		/* Every entry in the heap is in the map; if that were
		 * ever false, dropping it from the heap still ends the
		 * loop. */
		if (unlikely(pos < 0)) {
			heap_remove(b, idx);
			continue;
		}
		blk_remove(b, idx, (uint32_t)pos);
		done++;
	}
	return done;
}

uint32_t pol_block_count(const struct pol_block *b)
{
	return b ? b->n + pol_block6_count(b->v6) : 0;
}

size_t pol_block_memory(const struct pol_block *b)
{
	size_t slots;

	if (b == NULL)
		return 0;
	slots = (size_t)b->map.mask + 1;
	return pol_block6_memory(b->v6) + sizeof(*b) +
	       sizeof(*b->ent) * b->max +
	       2 * sizeof(uint32_t) * b->max + slots * sizeof(uint64_t) +
	       LPM_TBL24_BYTES + (size_t)b->max * 8 +
	       (size_t)pol_acl_tbl8s4_default(b->max) * LPM_TBL8_BYTES;
}
