/*
 * domains.c - domain tables (see domains.h): open addressing with linear
 * probing on a 64-bit hash of the lower-cased name and its subdomains
 * flag; names live in an arena allocated at create time.
 *
 * Threads: one writer, then read-only (or owner-only for overlays).
 * Never allocates after pol_domains_create().
 */
#include "dataplane/policy/domains.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 253

struct dom_slot {
	uint64_t hash;	/* 0 = empty, 1 = deleted (tombstone) */
	uint32_t off;	/* name in the arena */
	uint8_t len;
	uint8_t sub;
	uint8_t type;
	uint8_t pad;
};

struct pol_domains {
	struct dom_slot *slots;
	uint32_t mask;	    /* slots - 1 (power of two) */
	uint32_t count;	    /* live entries */
	uint32_t capacity;  /* most live entries */
	uint32_t used;	    /* live + tombstones */
	char *arena;
	size_t arena_len, arena_used;
	/* freed names are not reclaimed; the arena holds capacity full-size
	 * names, so a table that replaces entries may run out only after
	 * more than capacity distinct insertions (then -ENOSPC) */
};

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t dom_hash(const char *s, size_t n, bool sub)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (sub ? 0x9e3779b97f4a7c15ULL : 0);

	for (size_t i = 0; i < n; i++) {
		h ^= lc((unsigned char)s[i]);
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h < 2 ? h + 2 : h;
}

static bool name_eq(const char *stored, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)stored[i] != lc((unsigned char)s[i]))
			return false;
	return true;
}

struct pol_domains *pol_domains_create(uint32_t capacity)
{
	struct pol_domains *d;
	uint64_t slots = 16;

	if (capacity == 0)
		capacity = 1;
	if (capacity > (1u << 26)) {
		errno = EINVAL;
		return NULL;
	}
	while (slots < (uint64_t)capacity * 2)
		slots <<= 1;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->slots = calloc(slots, sizeof(*d->slots));
	d->arena_len = (size_t)capacity * 64 + NAME_MAX_LEN;
	d->arena = malloc(d->arena_len);
	if (!d->slots || !d->arena) {
		pol_domains_free(d);
		errno = ENOMEM;
		return NULL;
	}
	d->mask = (uint32_t)(slots - 1);
	d->capacity = capacity;
	return d;
}

void pol_domains_free(struct pol_domains *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d->arena);
	free(d);
}

/* One trailing dot ignored; 1..253 octets; no empty label. */
static int norm_len(const char *name, size_t len, size_t *out)
{
	if (len && name[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c == 0x7f)
			return -EINVAL;
		if (c == '.' && i + 1 < len && name[i + 1] == '.')
			return -EINVAL;
	}
	*out = len;
	return 0;
}

static struct dom_slot *find(const struct pol_domains *d, const char *s,
			     size_t n, bool sub, uint64_t h)
{
	uint32_t i = (uint32_t)h & d->mask;

	for (uint32_t probes = 0; probes <= d->mask; probes++) {
		struct dom_slot *e = &d->slots[i];

		if (e->hash == 0)
			return NULL;
		if (e->hash == h && e->len == n && e->sub == sub &&
		    name_eq(d->arena + e->off, s, n))
			return e;
		i = (i + 1) & d->mask;
	}
	return NULL;
}

int pol_domains_add(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains, enum pol_dom_type type)
{
	uint64_t h;
	struct dom_slot *e;
	uint32_t i;
	size_t n;

	if (norm_len(name, len, &n) < 0 || type == POL_DOM_NONE)
		return -EINVAL;
	h = dom_hash(name, n, subdomains);
	e = find(d, name, n, subdomains, h);
	if (e) {
		e->type = (uint8_t)type;
		return 0;
	}
	if (d->count >= d->capacity || d->arena_used + n > d->arena_len)
		return -ENOSPC;
	i = (uint32_t)h & d->mask;
	while (d->slots[i].hash > 1)
		i = (i + 1) & d->mask;
	e = &d->slots[i];
	if (e->hash == 0)
		d->used++;
	for (size_t k = 0; k < n; k++)
		d->arena[d->arena_used + k] = (char)lc((unsigned char)name[k]);
	e->off = (uint32_t)d->arena_used;
	d->arena_used += n;
	e->len = (uint8_t)n;
	e->sub = subdomains;
	e->type = (uint8_t)type;
	e->hash = h;
	d->count++;
	return 0;
}

int pol_domains_del(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains)
{
	struct dom_slot *e;
	size_t n;

	if (norm_len(name, len, &n) < 0)
		return -ENOENT;
	e = find(d, name, n, subdomains, dom_hash(name, n, subdomains));
	if (!e)
		return -ENOENT;
	e->hash = 1; /* tombstone: probing goes on past it */
	d->count--;
	return 0;
}

enum pol_dom_type pol_domains_lookup(const struct pol_domains *d,
				     const char *name, size_t len)
{
	const struct dom_slot *e;
	size_t n, off = 0;

	if (!d || d->count == 0 || norm_len(name, len, &n) < 0)
		return POL_DOM_NONE;
	/* the name itself: an exact entry, then a subdomain entry */
	e = find(d, name, n, false, dom_hash(name, n, false));
	if (e)
		return (enum pol_dom_type)e->type;
	for (;;) {
		const char *s = name + off;
		size_t m = n - off;
		const char *dot;

		e = find(d, s, m, true, dom_hash(s, m, true));
		if (e)
			return (enum pol_dom_type)e->type;
		dot = memchr(s, '.', m);
		if (!dot)
			return POL_DOM_NONE;
		off = (size_t)(dot + 1 - name);
	}
}

uint32_t pol_domains_count(const struct pol_domains *d)
{
	return d ? d->count : 0;
}

size_t pol_domains_memory(const struct pol_domains *d)
{
	return d ? sizeof(*d) + ((size_t)d->mask + 1) * sizeof(*d->slots) +
			   d->arena_len
		 : 0;
}
