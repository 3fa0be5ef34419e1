/*
 * domains.c - domain tables: open addressing over lower-cased names with
 * parent walk (see domains.h for the contract).
 *
 * Ownership: a table is written by one thread (the snapshot builder, or
 * the dataplane lcore owning an overlay) and read by readers that never
 * write it. Promises: everything is allocated in pol_domains_create();
 * add, del and lookup never allocate, never block and never log. A
 * lookup hashes the name once, right to left, and then does one probe
 * per label boundary (most specific first); it never calls strlen.
 *
 * Layout. slot[] (a power of two >= 2 x capacity, so at most half full)
 * holds a 32-bit hash and an entry index + 1; ent[] holds each entry's
 * name offset, length, subdomain flag and type; names live in an arena
 * as [u32 entry index][u8 length][octets] records, appended at the end.
 * A deleted record is marked dead; when an add finds no room at the end
 * the arena is compacted in place (live records keep their order), which
 * is O(arena) but needs churn of a whole capacity's worth of names. The
 * arena is sized for `capacity` names of 253 octets, so a full table of
 * the longest names always fits; it comes from malloc without being
 * touched, so only the pages that hold names are ever backed.
 *
 * The tables use the C heap, not rte_malloc: they are small, read a few
 * cache lines per lookup, and this way the control plane and unit tests
 * can build them without an EAL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/policy/domains.h"

#define DOM_MAX_LEN 253	 /* RFC 1035 2.3.4, without the trailing dot */
#define DOM_MAX_LABEL 63 /* RFC 1035 2.3.4 */
#define DOM_MAX_BOUNDS 127
#define DOM_REC_HDR 5 /* u32 entry index, u8 length */
#define DOM_DEAD UINT32_MAX
#define DOM_MAX_CAPACITY (1u << 26)

#define FNV_INIT 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define SUB_SALT 0x9e3779b97f4a7c15ull

struct dom_slot {
	uint32_t h;    /* high half of the mixed hash; home = h & mask */
	uint32_t idx1; /* entry index + 1; 0: empty */
};

struct dom_ent {
	uint32_t off; /* of the name in the arena */
	uint8_t len;
	uint8_t sub;
	uint8_t type;
};

struct pol_domains {
	struct dom_slot *slot;
	uint32_t mask;
	uint32_t cap, n, nsub;
	struct dom_ent *ent;
	uint32_t *free;
	uint32_t nfree;
	char *arena;
	size_t arena_size, arena_used, arena_dead;
};

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Octets that never occur in a domain we store or match: controls,
 * space, and the separators of addresses and routes. */
static inline bool dom_octet_ok(unsigned char c)
{
	if (c <= ' ' || c == 0x7f)
		return false;
	switch (c) {
	case '"':
	case '(':
	case ')':
	case ',':
	case ':':
	case ';':
	case '<':
	case '>':
	case '@':
	case '[':
	case '\\':
	case ']':
	case '%':
	case '!':
		return false;
	default:
		return true;
	}
}

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * FNV_PRIME;
}

/* murmur3's fmix64: FNV's low bits are weak, the slot index uses
 * them. */
static inline uint32_t dom_mix(uint64_t h, bool sub)
{
	h ^= sub ? SUB_SALT : 0;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* Slot index of (name, sub) or -1. name may have upper-case ASCII;
 * stored names are lower case. */
static int64_t dom_find(const struct pol_domains *d, uint32_t h, bool sub,
			const char *name, size_t len)
{
	uint32_t i = h & d->mask;

	for (;;) {
		const struct dom_slot *s = &d->slot[i];

		if (s->idx1 == 0)
			return -1;
		if (s->h == h) {
			const struct dom_ent *e = &d->ent[s->idx1 - 1];

			if (e->len == len && e->sub == sub) {
				const unsigned char *a =
					(const unsigned char *)d->arena +
					e->off;
				const unsigned char *q =
					(const unsigned char *)name;
				size_t k = 0;

				while (k < len && a[k] == lc(q[k]))
					k++;
				if (k == len)
					return i;
			}
		}
		i = (i + 1) & d->mask;
	}
}

struct pol_domains *pol_domains_create(uint32_t capacity)
{
	struct pol_domains *d;
	uint64_t n = 16;

	if (capacity == 0 || capacity > DOM_MAX_CAPACITY) {
		errno = EINVAL;
		return NULL;
	}
	while (n < 2ull * capacity)
		n <<= 1;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->cap = capacity;
	d->mask = (uint32_t)(n - 1);
	d->slot = calloc(n, sizeof(*d->slot));
	d->ent = calloc(capacity, sizeof(*d->ent));
	d->free = malloc(sizeof(*d->free) * capacity);
	d->arena_size = (size_t)capacity * (DOM_REC_HDR + DOM_MAX_LEN);
	d->arena = malloc(d->arena_size);
	if (d->slot == NULL || d->ent == NULL || d->free == NULL ||
	    d->arena == NULL) {
		pol_domains_free(d);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < capacity; i++)
		d->free[i] = capacity - 1 - i;
	d->nfree = capacity;
	return d;
}

void pol_domains_free(struct pol_domains *d)
{
	if (d == NULL)
		return;
	free(d->slot);
	free(d->ent);
	free(d->free);
	free(d->arena);
	free(d);
}

/*
 * Validates and lower-cases name into out (DOM_MAX_LEN octets). Labels
 * are 1..63 octets of anything but separators and what can never be in
 * a domain (controls, space, quotes, brackets, '@', '%', '!', ...);
 * octets >= 0x80 are kept as they are (U-labels). Returns the length
 * and the hash the lookup computes for it, or -EINVAL.
 */
static int dom_norm(const char *name, size_t len, char *out, uint64_t *hash)
{
	const unsigned char *s = (const unsigned char *)name;
	uint64_t h = FNV_INIT;
	size_t label = 0;

	if (name == NULL)
		return -EINVAL;
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > DOM_MAX_LEN)
		return -EINVAL;
	for (size_t i = len; i-- > 0;) {
		unsigned char c = lc(s[i]);

		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else {
			if (++label > DOM_MAX_LABEL)
				return -EINVAL;
			if (!dom_octet_ok(c))
				return -EINVAL;
		}
		out[i] = (char)c;
		h = fnv_step(h, c);
	}
	if (label == 0)
		return -EINVAL;
	*hash = h;
	return (int)len;
}

/* Moves live records to the front of the arena, in order. */
static void dom_compact(struct pol_domains *d)
{
	size_t r = 0, w = 0;

	while (r < d->arena_used) {
		uint32_t idx;
		size_t sz = DOM_REC_HDR + (unsigned char)d->arena[r + 4];

		memcpy(&idx, d->arena + r, sizeof(idx));
		if (idx != DOM_DEAD) {
			if (w != r)
				memmove(d->arena + w, d->arena + r, sz);
			d->ent[idx].off = (uint32_t)(w + DOM_REC_HDR);
			w += sz;
		}
		r += sz;
	}
	d->arena_used = w;
	d->arena_dead = 0;
}

int pol_domains_add(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains, enum pol_dom_type type)
{
	char buf[DOM_MAX_LEN];
	uint64_t h64;
	uint32_t h, idx, i;
	int64_t pos;
	int n;

	if (d == NULL || type <= POL_DOM_NONE || type > POL_DOM_LISTED)
		return -EINVAL;
	n = dom_norm(name, len, buf, &h64);
	if (n < 0)
		return n;
	h = dom_mix(h64, subdomains);
	pos = dom_find(d, h, subdomains, buf, (size_t)n);
	if (pos >= 0) {
		d->ent[d->slot[pos].idx1 - 1].type = (uint8_t)type;
		return 0;
	}
	if (d->n == d->cap)
		return -ENOSPC;
	if (d->arena_used + DOM_REC_HDR + (size_t)n > d->arena_size)
		dom_compact(d);
	/* Cannot fail: the arena holds capacity names of DOM_MAX_LEN. */
	if (d->arena_used + DOM_REC_HDR + (size_t)n > d->arena_size)
		return -ENOSPC;
	idx = d->free[--d->nfree];
	memcpy(d->arena + d->arena_used, &idx, sizeof(idx));
	d->arena[d->arena_used + 4] = (char)n;
	memcpy(d->arena + d->arena_used + DOM_REC_HDR, buf, (size_t)n);
	d->ent[idx] = (struct dom_ent){
		.off = (uint32_t)(d->arena_used + DOM_REC_HDR),
		.len = (uint8_t)n,
		.sub = subdomains,
		.type = (uint8_t)type,
	};
	d->arena_used += DOM_REC_HDR + (size_t)n;
	for (i = h & d->mask; d->slot[i].idx1 != 0; i = (i + 1) & d->mask)
		;
	d->slot[i] = (struct dom_slot){.h = h, .idx1 = idx + 1};
	d->n++;
	if (subdomains)
		d->nsub++;
	return 0;
}

/* Backward-shift deletion: no tombstones, probe lengths stay short. */
static void dom_slot_remove(struct pol_domains *d, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & d->mask;
		if (d->slot[j].idx1 == 0)
			break;
		k = d->slot[j].h & d->mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		d->slot[i] = d->slot[j];
		i = j;
	}
	d->slot[i] = (struct dom_slot){0, 0};
}

int pol_domains_del(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains)
{
	char buf[DOM_MAX_LEN];
	uint64_t h64;
	uint32_t idx, dead = DOM_DEAD;
	int64_t pos;
	int n;

	if (d == NULL)
		return -EINVAL;
	n = dom_norm(name, len, buf, &h64);
	if (n < 0)
		return n;
	pos = dom_find(d, dom_mix(h64, subdomains), subdomains, buf, (size_t)n);
	if (pos < 0)
		return -ENOENT;
	idx = d->slot[pos].idx1 - 1;
	memcpy(d->arena + d->ent[idx].off - DOM_REC_HDR, &dead, sizeof(dead));
	d->arena_dead += DOM_REC_HDR + d->ent[idx].len;
	dom_slot_remove(d, (uint32_t)pos);
	d->free[d->nfree++] = idx;
	d->n--;
	if (subdomains)
		d->nsub--;
	return 0;
}

enum pol_dom_type pol_domains_get(const struct pol_domains *d, const char *name,
				  size_t len, bool subdomains)
{
	char buf[DOM_MAX_LEN];
	uint64_t h64;
	int64_t pos;
	int n;

	if (d == NULL || d->n == 0)
		return POL_DOM_NONE;
	n = dom_norm(name, len, buf, &h64);
	if (n < 0)
		return POL_DOM_NONE;
	pos = dom_find(d, dom_mix(h64, subdomains), subdomains, buf, (size_t)n);
	return pos < 0 ? POL_DOM_NONE
		       : (enum pol_dom_type)d->ent[d->slot[pos].idx1 - 1].type;
}

enum pol_dom_type pol_domains_lookup(const struct pol_domains *d,
				     const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	/* Hash of the suffix after each dot, right to left. */
	uint64_t bh[DOM_MAX_BOUNDS];
	uint8_t bpos[DOM_MAX_BOUNDS];
	uint64_t h = FNV_INIT;
	unsigned nb = 0, label = 0;
	int64_t pos;

	if (d == NULL || name == NULL || d->n == 0)
		return POL_DOM_NONE;
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > DOM_MAX_LEN)
		return POL_DOM_NONE;
	/* One pass: the hash is built from the right, so at each dot it
	 * is the hash of the parent name to its right. A malformed name
	 * (empty or overlong label, an octet no domain has) never
	 * matches, not even through a parent. */
	for (size_t i = len; i-- > 0;) {
		unsigned char c = lc(s[i]);

		if (c == '.') {
			if (label == 0)
				return POL_DOM_NONE;
			/* 253 octets hold at most 126 dots. */
			bh[nb] = h;
			bpos[nb] = (uint8_t)(i + 1);
			nb++;
			label = 0;
		} else if (++label > DOM_MAX_LABEL || !dom_octet_ok(c)) {
			return POL_DOM_NONE;
		}
		h = fnv_step(h, c);
	}
	if (label == 0)
		return POL_DOM_NONE;
	/* The name itself: exact entries first, then subdomain ones. */
	if (d->n > d->nsub) {
		pos = dom_find(d, dom_mix(h, false), false, name, len);
		if (pos >= 0)
			return (enum pol_dom_type)d->ent[d->slot[pos].idx1 - 1]
				.type;
	}
	if (d->nsub == 0)
		return POL_DOM_NONE;
	pos = dom_find(d, dom_mix(h, true), true, name, len);
	if (pos >= 0)
		return (enum pol_dom_type)d->ent[d->slot[pos].idx1 - 1].type;
	/* Parents, closest first (the leftmost dot was recorded last). */
	while (nb-- > 0) {
		pos = dom_find(d, dom_mix(bh[nb], true), true, name + bpos[nb],
			       len - bpos[nb]);
		if (pos >= 0)
			return (enum pol_dom_type)d->ent[d->slot[pos].idx1 - 1]
				.type;
	}
	return POL_DOM_NONE;
}

uint32_t pol_domains_count(const struct pol_domains *d)
{
	return d ? d->n : 0;
}

size_t pol_domains_memory(const struct pol_domains *d)
{
	if (d == NULL)
		return 0;
	return sizeof(*d) + ((size_t)d->mask + 1) * sizeof(*d->slot) +
	       (size_t)d->cap * (sizeof(*d->ent) + sizeof(*d->free)) +
	       d->arena_size;
}
