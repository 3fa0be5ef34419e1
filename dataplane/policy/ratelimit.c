/*
 * ratelimit.c - per-core token buckets (struct pol_rl), per-IP connection
 * counters (struct pol_conns) and the keyed 64-bit hash behind both
 * (ratelimit.h, DESIGN 2 and 6).
 *
 * Ownership: a table belongs to the dataplane lcore that created it; only
 * that lcore reads or writes it (the stats reader reads the counters
 * racily). No locks, no atomics.
 *
 * Promises: every byte is allocated by *_create (rte_zmalloc_socket, on
 * the caller's NUMA socket, so an EAL must be running); take/inc/dec never
 * allocate, never block, and touch a bounded number of cells: at most
 * five evictions per insert, and linear probing over an index kept at
 * most half full with backward-shift deletion (no tombstones), so probe
 * lengths do not grow with churn. Hash seeds are random per table, so a
 * client cannot choose keys that collide (hash flooding).
 *
 * pol_rl layout. Memory is an array of 64-byte cells, 2 x capacity of
 * them, plus an index of 8-byte slots (a power of two >= 2 x capacity).
 * A bucket takes one cell: rule, level, last refill time, LRU links, the
 * key length and the first RL_INLINE (27) octets of the key; a longer key
 * continues in extension cells of RL_EXT (60) octets each, chained by
 * index (a 255-octet key takes 5 cells). Keys are stored whole and
 * compared exactly. Index slots hold the low 32 bits of the key's hash
 * (which also give the home slot) and the bucket's cell, so a probe
 * compares hashes without touching buckets. When the bucket count reaches
 * capacity, or free cells are too few for a new key, the least recently
 * used bucket is evicted (repeatedly, at most five times: each eviction
 * frees at least one cell). With keys of at most 87 octets a bucket takes
 * at most two cells, so the table holds `capacity` buckets; longer keys
 * make it hold fewer. Bytes per bucket at capacity: 128 (cells) plus 16
 * to 32 (index).
 *
 * Arithmetic. A level is kept in units of 1/60,000,000 token (one
 * token-microsecond per minute): a bucket refills by exactly per_minute
 * units per microsecond elapsed and a token costs 60,000,000 units, so no
 * rounding ever happens and nothing drifts; a refill of one token takes
 * exactly 60 s / per_minute when that is a whole number of microseconds,
 * otherwise the next whole microsecond.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "dataplane/policy/ratelimit.h"

#define NIL UINT32_MAX

/* ---- hash ------------------------------------------------------------- */

/*
 * A multiply-mix hash with the structure of Wang Yi's wyhash (final
 * version 4): 16 input octets per 64x64->128 multiply, the two halves of
 * the product folded together. Fast on short keys (an IPv4 address costs
 * three multiplies) and, with a secret seed, without known cheap
 * collisions. Not a MAC: fingerprints and table placement only.
 */
#define H_P0 0xa0761d6478bd642full
#define H_P1 0xe7037ed1a0b428dbull
#define H_P2 0x8ebc6af09c88c6e3ull

static inline uint64_t h_rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t h_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void h_mul(uint64_t *a, uint64_t *b)
{
#ifdef __SIZEOF_INT128__
	__uint128_t r = (__uint128_t)*a * *b;

	*a = (uint64_t)r;
	*b = (uint64_t)(r >> 64);
#else
	uint64_t ha = *a >> 32, hb = *b >> 32;
	uint64_t la = (uint32_t)*a, lb = (uint32_t)*b;
	uint64_t rh = ha * hb, rm0 = ha * lb, rm1 = hb * la, rl = la * lb;
	uint64_t t = rl + (rm0 << 32), c = t < rl, lo, hi;

	lo = t + (rm1 << 32);
	c += lo < t;
	hi = rh + (rm0 >> 32) + (rm1 >> 32) + c;
	*a = lo;
	*b = hi;
#endif
}

static inline uint64_t h_mix(uint64_t a, uint64_t b)
{
	h_mul(&a, &b);
	return a ^ b;
}

static inline uint64_t hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t a, b;

	seed ^= h_mix(seed ^ H_P0, H_P1);
	if (len <= 16) {
		if (len >= 4) {
			size_t q = (len >> 3) << 2;

			a = (h_rd32(p) << 32) | h_rd32(p + q);
			b = (h_rd32(p + len - 4) << 32) |
			    h_rd32(p + len - 4 - q);
		} else if (len > 0) {
			a = ((uint64_t)p[0] << 16) |
			    ((uint64_t)p[len >> 1] << 8) | p[len - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t i = len;

		while (i > 16) {
			seed = h_mix(h_rd64(p) ^ H_P1, h_rd64(p + 8) ^ seed);
			p += 16;
			i -= 16;
		}
		/* the last 16 octets (overlapping what the loop took) */
		a = h_rd64(p + i - 16);
		b = h_rd64(p + i - 8);
	}
	a ^= H_P1;
	b ^= seed;
	h_mul(&a, &b);
	return h_mix(a ^ H_P0 ^ len, b ^ H_P1);
}

uint64_t pol_hash64(const void *data, size_t len, uint64_t seed)
{
	return hash64(data, len, seed);
}

/* A per-table secret; getrandom() at create time, the TSC if that fails
 * (still different per table and per run). */
static uint64_t table_secret(const void *salt)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = rte_rdtsc() ^ (uint64_t)(uintptr_t)salt;
	return hash64(&s, sizeof(s), H_P2);
}

/* ---- pol_rl ------------------------------------------------------------ */

#define RL_UNIT 60000000ull /* level units per token: us per minute */
#define RL_INLINE 27	    /* key octets held in the bucket cell */
#define RL_EXT 60	    /* key octets per extension cell */
#define RL_KEY_MAX 255
#define RL_CAP_MAX (1u << 28)

struct rl_bucket {
	uint64_t rule;
	uint64_t level;	  /* units of 1/RL_UNIT token, <= burst * RL_UNIT */
	uint64_t last_us; /* time of the last refill */
	uint32_t prev;	  /* LRU: towards the most recently used */
	uint32_t next;	  /* LRU: towards the least recently used */
	uint32_t ext;	  /* first extension cell, NIL if none */
	uint8_t keylen;
	uint8_t key[RL_INLINE];
};

struct rl_ext {
	uint8_t key[RL_EXT];
	uint32_t next; /* next extension cell; free-list link */
};

union rl_cell {
	struct rl_bucket b;
	struct rl_ext x;
};

_Static_assert(sizeof(struct rl_bucket) == 64, "bucket is one cache line");
_Static_assert(sizeof(struct rl_ext) == 64, "extension is one cache line");

struct rl_slot {
	uint32_t hash; /* low 32 bits of the key hash; home = hash & mask */
	uint32_t cell; /* NIL: empty */
};

struct pol_rl {
	union rl_cell *cells;
	struct rl_slot *slots;
	uint64_t secret;
	uint32_t mask;
	uint32_t capacity;
	uint32_t count;	 /* buckets held */
	uint32_t ncells; /* 2 x capacity */
	uint32_t nfree;	 /* cells on the free list */
	uint32_t free;	 /* free-list head */
	uint32_t head;	 /* most recently used bucket */
	uint32_t tail;	 /* least recently used bucket */
	struct pol_rl_stats stats __rte_cache_aligned;
} __rte_cache_aligned;

static inline uint32_t rl_cells_for(size_t len)
{
	return len <= RL_INLINE
		       ? 1u
		       : 1u + (uint32_t)((len - RL_INLINE + RL_EXT - 1) /
					 RL_EXT);
}

struct pol_rl *pol_rl_create(uint32_t capacity, int socket)
{
	struct pol_rl *t;
	uint32_t nslots = 16;

	if (capacity < 16 || capacity > RL_CAP_MAX) {
		errno = EINVAL;
		return NULL;
	}
	while (nslots < 2 * (uint64_t)capacity)
		nslots <<= 1;
	t = rte_zmalloc_socket("pol_rl", sizeof(*t), RTE_CACHE_LINE_SIZE,
			       socket);
	if (t == NULL)
		goto nomem;
	t->ncells = 2 * capacity;
	t->cells = rte_zmalloc_socket("pol_rl_cells",
				      sizeof(*t->cells) * t->ncells,
				      RTE_CACHE_LINE_SIZE, socket);
	t->slots = rte_malloc_socket("pol_rl_index", sizeof(*t->slots) * nslots,
				     RTE_CACHE_LINE_SIZE, socket);
	if (t->cells == NULL || t->slots == NULL)
		goto nomem;
	for (uint32_t i = 0; i < nslots; i++)
		t->slots[i] = (struct rl_slot){.hash = 0, .cell = NIL};
	for (uint32_t i = 0; i < t->ncells; i++)
		t->cells[i].x.next = i + 1 < t->ncells ? i + 1 : NIL;
	t->free = 0;
	t->nfree = t->ncells;
	t->mask = nslots - 1;
	t->capacity = capacity;
	t->head = t->tail = NIL;
	t->secret = table_secret(t);
	return t;
nomem:
	pol_rl_free(t);
	errno = ENOMEM;
	return NULL;
}

void pol_rl_free(struct pol_rl *t)
{
	if (t == NULL)
		return;
	rte_free(t->cells);
	rte_free(t->slots);
	rte_free(t);
}

static inline uint32_t rl_hash(const struct pol_rl *t, uint64_t rule,
			       const void *key, size_t len)
{
	return (uint32_t)hash64(key, len, rule ^ t->secret);
}

static bool rl_key_eq(const struct pol_rl *t, const struct rl_bucket *b,
		      const uint8_t *key, size_t len)
{
	size_t n = len < RL_INLINE ? len : RL_INLINE;
	uint32_t x = b->ext;

	if (memcmp(b->key, key, n) != 0)
		return false;
	for (size_t off = n; off < len; off += RL_EXT) {
		size_t m = len - off < RL_EXT ? len - off : RL_EXT;

		if (memcmp(t->cells[x].x.key, key + off, m) != 0)
			return false;
		x = t->cells[x].x.next;
	}
	return true;
}

static void rl_key_copy_out(const struct pol_rl *t, const struct rl_bucket *b,
			    uint8_t *out)
{
	size_t len = b->keylen, n = len < RL_INLINE ? len : RL_INLINE;
	uint32_t x = b->ext;

	memcpy(out, b->key, n);
	for (size_t off = n; off < len; off += RL_EXT) {
		size_t m = len - off < RL_EXT ? len - off : RL_EXT;

		memcpy(out + off, t->cells[x].x.key, m);
		x = t->cells[x].x.next;
	}
}

static inline uint32_t rl_cell_get(struct pol_rl *t)
{
	uint32_t c = t->free;

	t->free = t->cells[c].x.next;
	t->nfree--;
	return c;
}

static inline void rl_cell_put(struct pol_rl *t, uint32_t c)
{
	t->cells[c].x.next = t->free;
	t->free = c;
	t->nfree++;
}

static inline void rl_lru_unlink(struct pol_rl *t, uint32_t c)
{
	struct rl_bucket *b = &t->cells[c].b;

	if (b->prev != NIL)
		t->cells[b->prev].b.next = b->next;
	else
		t->head = b->next;
	if (b->next != NIL)
		t->cells[b->next].b.prev = b->prev;
	else
		t->tail = b->prev;
}

static inline void rl_lru_push(struct pol_rl *t, uint32_t c)
{
	struct rl_bucket *b = &t->cells[c].b;

	b->prev = NIL;
	b->next = t->head;
	if (t->head != NIL)
		t->cells[t->head].b.prev = c;
	else
		t->tail = c;
	t->head = c;
}

/*
 * Linear-probing delete without tombstones (Knuth 6.4, algorithm R):
 * after emptying slot i, walk the cluster that follows and pull back each
 * entry whose home is not in (i, j], so that every remaining entry stays
 * reachable from its home and clusters never grow from deletions.
 */
static void rl_slot_delete(struct pol_rl *t, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t home;

		j = (j + 1) & t->mask;
		if (t->slots[j].cell == NIL)
			break;
		home = t->slots[j].hash & t->mask;
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].cell = NIL;
}

/* Evicts the least recently used bucket. */
static void rl_evict(struct pol_rl *t)
{
	uint32_t c = t->tail, h, i, x;
	struct rl_bucket *b = &t->cells[c].b;
	uint8_t key[RL_KEY_MAX];

	rl_key_copy_out(t, b, key);
	h = rl_hash(t, b->rule, key, b->keylen);
	for (i = h & t->mask; t->slots[i].cell != c; i = (i + 1) & t->mask)
		;
	rl_slot_delete(t, i);
	rl_lru_unlink(t, c);
	x = b->ext;
	while (x != NIL) {
		uint32_t nx = t->cells[x].x.next;

		rl_cell_put(t, x);
		x = nx;
	}
	rl_cell_put(t, c);
	t->count--;
	t->stats.evictions++;
}

/* Refills b up to now (capped at burst: also applies a lowered burst). */
static inline uint64_t rl_refill(struct rl_bucket *b, uint32_t per_minute,
				 uint64_t cap, uint64_t now_us)
{
	uint64_t lvl = b->level < cap ? b->level : cap;

	if (now_us > b->last_us) {
		uint64_t add;

		if (__builtin_mul_overflow(now_us - b->last_us,
					   (uint64_t)per_minute, &add) ||
		    add >= cap - lvl)
			lvl = cap;
		else
			lvl += add;
		b->last_us = now_us;
	}
	/* a clock that went back refills nothing and keeps last_us */
	return lvl;
}

bool pol_rl_take(struct pol_rl *t, uint64_t rule, const void *key,
		 size_t keylen, uint32_t per_minute, uint32_t burst,
		 uint32_t cost, uint64_t now_us)
{
	const uint64_t cap = (uint64_t)burst * RL_UNIT;
	const uint64_t need = (uint64_t)cost * RL_UNIT;
	const uint8_t *k = key;
	struct rl_bucket *b;
	uint32_t h, i, c, ncell;

	if (keylen > RL_KEY_MAX)
		keylen = RL_KEY_MAX;
	t->stats.lookups++;
	h = rl_hash(t, rule, k, keylen);
	for (i = h & t->mask; (c = t->slots[i].cell) != NIL;
	     i = (i + 1) & t->mask) {
		uint64_t lvl;

		if (t->slots[i].hash != h)
			continue;
		b = &t->cells[c].b;
		if (b->rule != rule || b->keylen != keylen ||
		    !rl_key_eq(t, b, k, keylen))
			continue;
		lvl = rl_refill(b, per_minute, cap, now_us);
		if (t->head != c) {
			rl_lru_unlink(t, c);
			rl_lru_push(t, c);
		}
		if (lvl >= need) {
			b->level = lvl - need;
			t->stats.allowed++;
			return true;
		}
		b->level = lvl;
		t->stats.limited++;
		return false;
	}

	/* New bucket: it would start full, so one that could not pay even
	 * then is not worth a slot (nor an eviction). */
	if (need > cap) {
		t->stats.limited++;
		return false;
	}
	ncell = rl_cells_for(keylen);
	if (t->count >= t->capacity || t->nfree < ncell) {
		do
			rl_evict(t);
		while (t->count >= t->capacity || t->nfree < ncell);
		/* deletions moved slots: find the first empty one again */
		for (i = h & t->mask; t->slots[i].cell != NIL;
		     i = (i + 1) & t->mask)
			;
	}
	c = rl_cell_get(t);
	b = &t->cells[c].b;
	b->rule = rule;
	b->level = cap - need;
	b->last_us = now_us;
	b->keylen = (uint8_t)keylen;
	b->ext = NIL;
	memcpy(b->key, k, keylen < RL_INLINE ? keylen : RL_INLINE);
	if (keylen > RL_INLINE) {
		uint32_t *link = &b->ext;

		for (size_t off = RL_INLINE; off < keylen; off += RL_EXT) {
			size_t m =
				keylen - off < RL_EXT ? keylen - off : RL_EXT;
			uint32_t x = rl_cell_get(t);

			memcpy(t->cells[x].x.key, k + off, m);
			t->cells[x].x.next = NIL;
			*link = x;
			link = &t->cells[x].x.next;
		}
	}
	rl_lru_push(t, c);
	t->slots[i] = (struct rl_slot){.hash = h, .cell = c};
	t->count++;
	t->stats.inserts++;
	t->stats.allowed++;
	return true;
}

uint32_t pol_rl_count(const struct pol_rl *t)
{
	return t->count;
}

uint32_t pol_rl_capacity(const struct pol_rl *t)
{
	return t->capacity;
}

size_t pol_rl_memory(const struct pol_rl *t)
{
	return sizeof(*t) + sizeof(*t->cells) * (size_t)t->ncells +
	       sizeof(*t->slots) * ((size_t)t->mask + 1);
}

const struct pol_rl_stats *pol_rl_stats(const struct pol_rl *t)
{
	return &t->stats;
}

/* ---- pol_conns --------------------------------------------------------- */

/* Open addressing on the 16-byte key (an IPv4-mapped address or a masked
 * IPv6 prefix), count 0 = empty slot; at least twice as many slots as
 * entries, backward-shift deletion as above. */
struct conns_slot {
	uint8_t key[16];
	uint32_t n;
};

struct pol_conns {
	struct conns_slot *slots;
	uint64_t secret;
	uint32_t mask;
	uint32_t capacity;
	uint32_t count;
} __rte_cache_aligned;

static inline uint32_t conns_home(const struct pol_conns *t,
				  const uint8_t key[16])
{
	return (uint32_t)hash64(key, 16, t->secret) & t->mask;
}

struct pol_conns *pol_conns_create(uint32_t capacity, int socket)
{
	struct pol_conns *t;
	uint32_t nslots = 16;

	if (capacity == 0 || capacity > RL_CAP_MAX) {
		errno = EINVAL;
		return NULL;
	}
	while (nslots < 2 * (uint64_t)capacity)
		nslots <<= 1;
	t = rte_zmalloc_socket("pol_conns", sizeof(*t), RTE_CACHE_LINE_SIZE,
			       socket);
	if (t != NULL)
		t->slots = rte_zmalloc_socket("pol_conns_index",
					      sizeof(*t->slots) * nslots,
					      RTE_CACHE_LINE_SIZE, socket);
	if (t == NULL || t->slots == NULL) {
		pol_conns_free(t);
		errno = ENOMEM;
		return NULL;
	}
	t->mask = nslots - 1;
	t->capacity = capacity;
	t->secret = table_secret(t);
	return t;
}

void pol_conns_free(struct pol_conns *t)
{
	if (t == NULL)
		return;
	rte_free(t->slots);
	rte_free(t);
}

/* The slot holding key, or the empty slot ending its probe sequence. */
static inline uint32_t conns_find(const struct pol_conns *t,
				  const uint8_t key[16])
{
	uint32_t i = conns_home(t, key);

	while (t->slots[i].n != 0 && memcmp(t->slots[i].key, key, 16) != 0)
		i = (i + 1) & t->mask;
	return i;
}

bool pol_conns_inc_key(struct pol_conns *t, const uint8_t key[16],
		       uint32_t max)
{
	uint32_t i = conns_find(t, key);
	struct conns_slot *s = &t->slots[i];

	if (s->n != 0) {
		if ((max != 0 && s->n >= max) || s->n == UINT32_MAX)
			return false;
		s->n++;
		return true;
	}
	if (t->count >= t->capacity)
		return false;
	memcpy(s->key, key, 16);
	s->n = 1;
	t->count++;
	return true;
}

void pol_conns_dec_key(struct pol_conns *t, const uint8_t key[16])
{
	uint32_t i = conns_find(t, key), j = i;

	if (t->slots[i].n == 0) /* unpaired dec: nothing to undo */
		return;
	if (--t->slots[i].n != 0)
		return;
	t->count--;
	for (;;) { /* backward shift, as rl_slot_delete */
		uint32_t home;

		j = (j + 1) & t->mask;
		if (t->slots[j].n == 0)
			break;
		home = conns_home(t, t->slots[j].key);
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].n = 0;
}

uint32_t pol_conns_get_key(const struct pol_conns *t, const uint8_t key[16])
{
	return t->slots[conns_find(t, key)].n;
}

void pol_ipkey4(uint8_t key[16], uint32_t ip)
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memcpy(key, pfx, 12);
	key[12] = (uint8_t)(ip >> 24);
	key[13] = (uint8_t)(ip >> 16);
	key[14] = (uint8_t)(ip >> 8);
	key[15] = (uint8_t)ip;
}

void pol_ipkey6(uint8_t key[16], const uint8_t addr[16], uint8_t prefix)
{
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = prefix > i * 8 ? prefix - i * 8u : 0;

		key[i] = bits >= 8 ? addr[i]
			 : bits == 0 ? 0
				     : (uint8_t)(addr[i] & (0xff00u >> bits));
	}
}

bool pol_conns_inc(struct pol_conns *t, uint32_t ip, uint32_t max)
{
	uint8_t key[16];

	pol_ipkey4(key, ip);
	return pol_conns_inc_key(t, key, max);
}

void pol_conns_dec(struct pol_conns *t, uint32_t ip)
{
	uint8_t key[16];

	pol_ipkey4(key, ip);
	pol_conns_dec_key(t, key);
}

uint32_t pol_conns_get(const struct pol_conns *t, uint32_t ip)
{
	uint8_t key[16];

	pol_ipkey4(key, ip);
	return pol_conns_get_key(t, key);
}

uint32_t pol_conns_count(const struct pol_conns *t)
{
	return t->count;
}

size_t pol_conns_memory(const struct pol_conns *t)
{
	return sizeof(*t) + sizeof(*t->slots) * ((size_t)t->mask + 1);
}
