/*
 * test_ratelimit.c - dataplane/policy/ratelimit.h: exact token arithmetic
 * (N pass, N+1 refused; one token back after exactly 60 s / N; no drift),
 * independence of rules and keys, runtime parameter changes, LRU eviction
 * and the capacity bound, a random run against a simple model, and the
 * per-IP connection counters against an oracle (1,000,000 operations).
 * Single-threaded; starts an EAL without hugepages (the tables live in
 * rte_malloc memory). Keys are passed in heap buffers of their exact size
 * so that ASan catches any read past a key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "dataplane/policy/ratelimit.h"

static unsigned checks, failures;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

#define MIN_US 60000000ull

/* xorshift64*: reproducible pseudo-random numbers */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static struct pol_rl *mk(uint32_t capacity)
{
	struct pol_rl *t = pol_rl_create(capacity, SOCKET_ID_ANY);

	if (t == NULL) {
		perror("pol_rl_create");
		exit(1);
	}
	return t;
}

static struct pol_conns *mk_conns(uint32_t capacity)
{
	struct pol_conns *c = pol_conns_create(capacity, SOCKET_ID_ANY);

	if (c == NULL) {
		perror("pol_conns_create");
		exit(1);
	}
	return c;
}

/* take with a heap copy of the key (exact size) */
static bool take(struct pol_rl *t, uint64_t rule, const void *key, size_t len,
		 uint32_t pm, uint32_t burst, uint32_t cost, uint64_t now)
{
	void *k = malloc(len ? len : 1);
	bool r;

	memcpy(k, key, len);
	r = pol_rl_take(t, rule, k, len, pm, burst, cost, now);
	free(k);
	return r;
}

static bool take_s(struct pol_rl *t, uint64_t rule, const char *key,
		   uint32_t pm, uint32_t burst, uint32_t cost, uint64_t now)
{
	return take(t, rule, key, strlen(key), pm, burst, cost, now);
}

/* key number i as 4 octets (an IPv4 address) */
static bool take_ip(struct pol_rl *t, uint64_t rule, uint32_t ip, uint32_t pm,
		    uint32_t burst, uint32_t cost, uint64_t now)
{
	return take(t, rule, &ip, sizeof(ip), pm, burst, cost, now);
}

static void test_exact(void)
{
	static const uint32_t ns[] = {1,  2,   3,    7,	    10,	    59,
				      60, 100, 1000, 65535, 1000000};
	static const uint32_t costs[] = {1, 2, 3, 5};
	struct pol_rl *t = mk(1024);
	uint64_t rule = 1;

	for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
		for (size_t c = 0; c < sizeof(costs) / sizeof(costs[0]); c++) {
			uint32_t n = ns[a], cost = costs[c];
			uint32_t pass = n / cost, got = 0;
			uint64_t now = 1000 + rule;

			/* burst == per_minute == n: n / cost pass at once */
			while (got < pass + 5 &&
			       take_s(t, rule, "198.51.100.7", n, n, cost, now))
				got++;
			CHECK(got == pass);
			/* a refused take takes nothing: the rest is there */
			if (n % cost != 0) {
				CHECK(take_s(t, rule, "198.51.100.7", n, n,
					     n % cost, now));
			}
			CHECK(!take_s(t, rule, "198.51.100.7", n, n, 1, now));
			rule++;
		}
	}
	/* cost 0 always passes, burst 0 refuses any cost */
	CHECK(take_s(t, 999, "k", 10, 10, 0, 5));
	CHECK(!take_s(t, 998, "k", 10, 0, 1, 5));
	CHECK(take_s(t, 998, "k", 10, 0, 0, 5));
	/* a new key whose cost exceeds burst: refused, no bucket */
	{
		uint32_t before = pol_rl_count(t);

		CHECK(!take_s(t, 997, "big", 10, 10, 11, 5));
		CHECK(pol_rl_count(t) == before);
	}
	/* the largest values do not overflow */
	CHECK(take_s(t, 996, "max", UINT32_MAX, UINT32_MAX, UINT32_MAX, 1));
	CHECK(!take_s(t, 996, "max", UINT32_MAX, UINT32_MAX, 1, 1));
	CHECK(take_s(t, 996, "max", UINT32_MAX, UINT32_MAX, UINT32_MAX,
		     UINT64_MAX));
	pol_rl_free(t);
}

static void test_refill(void)
{
	static const uint32_t ns[] = {1, 7, 10, 60, 61, 1000, 7919};
	struct pol_rl *t = mk(64);

	for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
		uint32_t n = ns[a];
		uint64_t t0 = 5000000, step = (MIN_US + n - 1) / n; /* ceil */
		uint64_t rule = 100 + a, now;

		for (uint32_t i = 0; i < n; i++)
			CHECK(take_ip(t, rule, 42, n, n, 1, t0));
		CHECK(!take_ip(t, rule, 42, n, n, 1, t0));
		/* one microsecond early: still empty */
		CHECK(!take_ip(t, rule, 42, n, n, 1, t0 + step - 1));
		/* exactly 60 s / n (rounded up): one token, only one */
		CHECK(take_ip(t, rule, 42, n, n, 1, t0 + step));
		CHECK(!take_ip(t, rule, 42, n, n, 1, t0 + step));
		/* the fraction left over is not lost: after a full minute
		 * since t0, n tokens in all came back */
		now = t0 + MIN_US;
		{
			uint32_t got = 0;

			while (got < n + 2 &&
			       take_ip(t, rule, 42, n, n, 1, now))
				got++;
			CHECK(got == n - 1);
		}
	}

	/* no drift: poll every 1 ms for an hour at 7/min (burst 2, so the
	 * level never sits at the cap and nothing is clipped): the burst
	 * plus exactly 7 x 60 tokens */
	{
		uint64_t allowed = 0, t0 = 1;

		for (uint64_t now = t0; now <= t0 + 60 * MIN_US; now += 1000)
			allowed += take_s(t, 7, "drift", 7, 2, 1, now);
		CHECK(allowed == 2 + 7 * 60);
	}
	/* polling at odd intervals: burst + floor(rate x elapsed) */
	{
		uint64_t allowed = 0, now = 1, last = 1;

		while (now <= 1 + 10 * MIN_US) {
			allowed += take_s(t, 8, "odd", 13, 3, 1, now);
			last = now;
			now += 1 + rnd() % 7777;
		}
		CHECK(allowed == 3 + 13 * (last - 1) / MIN_US);
	}
	/* a clock that goes back gives nothing */
	CHECK(take_s(t, 9, "back", 60, 1, 1, 10 * MIN_US));
	CHECK(!take_s(t, 9, "back", 60, 1, 1, 5 * MIN_US));
	CHECK(!take_s(t, 9, "back", 60, 1, 1, 10 * MIN_US + 999999));
	CHECK(take_s(t, 9, "back", 60, 1, 1, 10 * MIN_US + 1000000));
	pol_rl_free(t);
}

static void test_burst_lt_rate(void)
{
	struct pol_rl *t = mk(64);
	uint64_t now = 77;
	uint32_t got = 0;

	/* 600/min (10/s), burst 5 */
	while (got < 10 && take_s(t, 1, "s", 600, 5, 1, now))
		got++;
	CHECK(got == 5);
	CHECK(!take_s(t, 1, "s", 600, 5, 1, now + 99999));
	CHECK(take_s(t, 1, "s", 600, 5, 1, now + 100000));
	CHECK(!take_s(t, 1, "s", 600, 5, 1, now + 100000));
	/* a long pause refills to burst, not beyond */
	now += 3600 * 1000000ull;
	got = 0;
	while (got < 10 && take_s(t, 1, "s", 600, 5, 1, now))
		got++;
	CHECK(got == 5);
	pol_rl_free(t);
}

static void test_independent(void)
{
	struct pol_rl *t = mk(256);
	uint8_t k1[255] = {0}, k2[255] = {0};

	CHECK(take_s(t, 1, "example.com", 1, 1, 1, 10));
	CHECK(!take_s(t, 1, "example.com", 1, 1, 1, 10));
	CHECK(take_s(t, 2, "example.com", 1, 1, 1, 10));  /* other rule */
	CHECK(take_s(t, 1, "example.co", 1, 1, 1, 10));	  /* prefix */
	CHECK(take_s(t, 1, "example.comx", 1, 1, 1, 10)); /* extension */
	CHECK(take_s(t, 1, "Example.com", 1, 1, 1, 10));  /* exact octets */
	CHECK(take(t, 1, "", 0, 1, 1, 1, 10));		  /* empty key */
	CHECK(!take(t, 1, "", 0, 1, 1, 1, 10));
	CHECK(!take_s(t, 1, "example.com", 1, 1, 1, 10));
	CHECK(!take_s(t, 2, "example.com", 1, 1, 1, 10));

	/* long keys differing in one octet anywhere, every length */
	for (size_t len = 1; len <= 255; len += (len < 100 ? 1 : 11)) {
		for (size_t i = 0; i < len; i++)
			k1[i] = (uint8_t)('a' + (i * 7 + len) % 26);
		CHECK(take(t, 3, k1, len, 1, 1, 1, 10));
		for (size_t pos = 0; pos < len; pos += (len > 40 ? 13 : 1)) {
			memcpy(k2, k1, len);
			k2[pos] ^= 0x20;
			CHECK(take(t, 3, k2, len, 1, 1, 1, 10));
			CHECK(!take(t, 3, k2, len, 1, 1, 1, 10));
		}
		CHECK(!take(t, 3, k1, len, 1, 1, 1, 10));
	}
	/* a key longer than 255 is cut there */
	{
		uint8_t big[300];

		memset(big, 'z', sizeof(big));
		CHECK(take(t, 4, big, 300, 1, 1, 1, 10));
		CHECK(!take(t, 4, big, 255, 1, 1, 1, 10));
		CHECK(take(t, 4, big, 254, 1, 1, 1, 10));
	}
	pol_rl_free(t);
}

static void test_param_change(void)
{
	struct pol_rl *t = mk(64);
	uint32_t got = 0;

	/* burst 10: take 2, then a push lowers burst to 5 */
	CHECK(take_s(t, 1, "p", 10, 10, 2, 100));
	while (got < 20 && take_s(t, 1, "p", 10, 5, 1, 100))
		got++;
	CHECK(got == 5);
	/* raise burst to 20: the level is kept (0), nothing is given */
	CHECK(!take_s(t, 1, "p", 60, 20, 1, 100));
	/* and it refills at the new rate (60/min = 1/s) up to 20 */
	CHECK(take_s(t, 1, "p", 60, 20, 1, 100 + 1000000));
	CHECK(!take_s(t, 1, "p", 60, 20, 1, 100 + 1000000));
	got = 0;
	while (got < 30 && take_s(t, 1, "p", 60, 20, 1, 100 + 3600000000ull))
		got++;
	CHECK(got == 20);
	/* a fully refilled bucket of burst 20 pushed to burst 3 has 3 */
	got = 0;
	while (got < 30 && take_s(t, 1, "p", 60, 3, 1, 200 + 7200000000ull))
		got++;
	CHECK(got == 3);
	pol_rl_free(t);
}

static void test_lru(void)
{
	struct pol_rl *t = mk(16);
	const struct pol_rl_stats *st = pol_rl_stats(t);

	CHECK(pol_rl_capacity(t) == 16);
	/* 16 drained buckets: a take on one of them is refused while it is
	 * held, and passes once it was evicted (it restarts full) */
	for (uint32_t k = 0; k < 16; k++)
		CHECK(take_ip(t, 1, k, 1, 1, 1, 10 + k));
	CHECK(pol_rl_count(t) == 16);
	CHECK(st->evictions == 0);
	CHECK(!take_ip(t, 1, 0, 1, 1, 1, 100)); /* key 0: most recent */
	CHECK(take_ip(t, 1, 16, 1, 1, 1, 101)); /* evicts key 1 */
	CHECK(pol_rl_count(t) == 16);
	CHECK(st->evictions == 1);
	CHECK(!take_ip(t, 1, 0, 1, 1, 1, 102)); /* key 0 stayed */
	for (uint32_t k = 2; k <= 16; k++)	/* so did 2..16 */
		CHECK(!take_ip(t, 1, k, 1, 1, 1, 103));
	CHECK(st->evictions == 1);
	CHECK(take_ip(t, 1, 1, 1, 1, 1, 104)); /* key 1 was evicted */
	CHECK(st->evictions == 2);	       /* ... and evicted key 0 */
	CHECK(take_ip(t, 1, 0, 1, 1, 1, 105));
	CHECK(!take_ip(t, 1, 1, 1, 1, 1, 106));
	CHECK(st->inserts == 19);
	pol_rl_free(t);
}

/* 200,000 distinct keys into a small table: never more than capacity */
static void test_capacity(void)
{
	const uint32_t cap = 4096;
	uint8_t key[255];
	int bad = 0;

	for (int mode = 0; mode < 3; mode++) {
		struct pol_rl *t = mk(cap);
		const struct pol_rl_stats *st = pol_rl_stats(t);

		for (uint32_t i = 0; i < 200000; i++) {
			size_t len;

			if (mode == 0) {
				len = 4;
			} else if (mode == 1) {
				len = 4 + i % 84; /* up to 87: 2 cells */
			} else {
				len = 1 + rnd() % 255; /* any length */
			}
			memset(key, 'k', len);
			memcpy(key, &i, len < 4 ? len : 4);
			if (len < 4)
				memset(key, 0, len); /* few distinct */
			if (!pol_rl_take(t, 5, key, len, 1, 1, 1, i))
				bad += len >= 4;
			if (pol_rl_count(t) > cap)
				bad++;
		}
		CHECK(bad == 0);
		CHECK(pol_rl_count(t) <= cap);
		if (mode < 2) {
			CHECK(pol_rl_count(t) == cap);
			CHECK(st->inserts == 200000);
			CHECK(st->evictions == 200000 - cap);
		} else {
			CHECK(st->evictions == st->inserts - pol_rl_count(t));
			CHECK(pol_rl_count(t) >= (2 * cap - 10) / 5);
		}
		printf("capacity mode %d: %u buckets held of %u, %" PRIu64
		       " inserts, %" PRIu64 " evictions, %zu bytes\n",
		       mode, pol_rl_count(t), cap, st->inserts, st->evictions,
		       pol_rl_memory(t));
		pol_rl_free(t);
	}
	/* all keys of 255 octets take 5 cells: 2 x cap / 5 buckets */
	{
		struct pol_rl *t = mk(cap);

		for (uint32_t i = 0; i < 20000; i++) {
			memset(key, 'q', sizeof(key));
			memcpy(key + 100, &i, 4);
			CHECK(take(t, 6, key, 255, 1, 1, 1, i) == true);
		}
		CHECK(pol_rl_count(t) == 2 * cap / 5);
		pol_rl_free(t);
	}
	/* memory: 144 bytes per bucket at 65,536 buckets */
	{
		struct pol_rl *t = mk(65536);

		CHECK(pol_rl_memory(t) >= 65536 * 144 &&
		      pol_rl_memory(t) < 65536 * 144 + 1024);
		pol_rl_free(t);
	}
	CHECK(pol_rl_create(15, SOCKET_ID_ANY) == NULL);
}

/*
 * Random operations against a plain model: buckets in an array, LRU by a
 * use counter, the cell accounting of the header (one cell plus one per
 * 60 octets of key beyond 27; 2 x capacity cells), levels computed with
 * 128-bit arithmetic.
 */
#define M_CAP 48
#define M_KEYS 400
#define M_RULES 3

struct m_bucket {
	bool used;
	int rule, key;
	unsigned __int128 level;
	uint64_t last, use;
};

static uint32_t m_cells(size_t len)
{
	return len <= 27 ? 1 : 1 + (uint32_t)((len - 27 + 59) / 60);
}

static void test_model(void)
{
	struct pol_rl *t = mk(M_CAP);
	static uint8_t keys[M_KEYS][255];
	static size_t klen[M_KEYS];
	static struct m_bucket mb[M_CAP];
	static const uint32_t rates[M_RULES][2] = {{7, 3}, {600, 10}, {1, 1}};
	uint64_t now = 1000, use = 0, mismatch = 0;
	uint32_t mcount = 0, mfree = 2 * M_CAP;

	for (int k = 0; k < M_KEYS; k++) {
		klen[k] = k % 5 == 0 ? 1 + rnd() % 255 : 1 + rnd() % 20;
		for (size_t i = 0; i < klen[k]; i++)
			keys[k][i] = (uint8_t)rnd();
		if (klen[k] >= 2) { /* distinct: number the key */
			keys[k][0] = (uint8_t)k;
			keys[k][1] = (uint8_t)(k >> 8);
		}
	}
	for (int k = 0; k < M_KEYS; k++) /* 1-octet keys: keep distinct */
		if (klen[k] == 1)
			klen[k] = 2, keys[k][0] = (uint8_t)k,
			keys[k][1] = (uint8_t)(k >> 8);

	for (int op = 0; op < 300000; op++) {
		int rule = (int)(rnd() % M_RULES);
		int key = (int)(rnd() % (rnd() % 4 ? 60 : M_KEYS));
		uint32_t pm = rates[rule][0], burst = rates[rule][1];
		uint32_t cost = (uint32_t)(rnd() % 3);
		unsigned __int128 cap;
		unsigned __int128 need = (unsigned __int128)cost * MIN_US;
		bool expect, got;
		int f = -1;

		if (rnd() % 50 == 0) /* a push changes a rule's burst */
			burst = 1 + (uint32_t)(rnd() % 12);
		cap = (unsigned __int128)burst * MIN_US;
		now += rnd() % 4 == 0 ? 0 : rnd() % 3000000;
		for (int i = 0; i < M_CAP; i++)
			if (mb[i].used && mb[i].rule == rule &&
			    mb[i].key == key)
				f = i;
		if (f >= 0) {
			struct m_bucket *b = &mb[f];

			if (b->level > cap)
				b->level = cap;
			if (now > b->last) {
				b->level +=
					(unsigned __int128)(now - b->last) * pm;
				if (b->level > cap)
					b->level = cap;
				b->last = now;
			}
			b->use = ++use;
			expect = b->level >= need;
			if (expect)
				b->level -= need;
		} else if (need > cap) {
			expect = false;
		} else {
			uint32_t nc = m_cells(klen[key]);

			while (mcount >= M_CAP || mfree < nc) {
				int v = -1;

				for (int i = 0; i < M_CAP; i++)
					if (mb[i].used &&
					    (v < 0 || mb[i].use < mb[v].use))
						v = i;
				if (v < 0) /* cannot happen: 2 x cap cells */
					break;
				mb[v].used = false;
				mcount--;
				mfree += m_cells(klen[mb[v].key]);
			}
			for (f = 0; mb[f].used; f++)
				;
			use++;
			mb[f] = (struct m_bucket){.used = true,
						  .rule = rule,
						  .key = key,
						  .level = cap - need,
						  .last = now,
						  .use = use};
			mcount++;
			mfree -= nc;
			expect = true;
		}
		got = take(t, (uint64_t)rule * 0x1234567, keys[key], klen[key],
			   pm, burst, cost, now);
		if (got != expect || pol_rl_count(t) != mcount) {
			if (mismatch++ < 5)
				fprintf(stderr,
					"model op %d: rule %d key %d (len %zu) "
					"got %d expect %d count %u/%u\n",
					op, rule, key, klen[key], got, expect,
					pol_rl_count(t), mcount);
		}
	}
	CHECK(mismatch == 0);
	pol_rl_free(t);
}

/* ---- pol_conns ----------------------------------------------------- */

static void test_conns_basic(void)
{
	struct pol_conns *c = mk_conns(8);

	CHECK(pol_conns_get(c, 1) == 0);
	CHECK(pol_conns_inc(c, 1, 3));
	CHECK(pol_conns_inc(c, 1, 3));
	CHECK(pol_conns_inc(c, 1, 3));
	CHECK(!pol_conns_inc(c, 1, 3)); /* at max */
	CHECK(pol_conns_get(c, 1) == 3);
	CHECK(pol_conns_inc(c, 1, 4)); /* a raised limit */
	CHECK(pol_conns_inc(c, 1, 0)); /* 0: no limit */
	CHECK(pol_conns_get(c, 1) == 5);
	CHECK(pol_conns_count(c) == 1);
	CHECK(pol_conns_inc(c, 0, 1)); /* address 0 is an address */
	CHECK(!pol_conns_inc(c, 0, 1));
	CHECK(pol_conns_inc(c, UINT32_MAX, 1));
	CHECK(pol_conns_count(c) == 3);
	/* full of distinct addresses: a new one is refused, known ones
	 * still count */
	for (uint32_t ip = 100; ip < 105; ip++)
		CHECK(pol_conns_inc(c, ip, 0));
	CHECK(pol_conns_count(c) == 8);
	CHECK(!pol_conns_inc(c, 200, 0));
	CHECK(pol_conns_get(c, 200) == 0);
	CHECK(pol_conns_inc(c, 100, 0));
	/* the last connection of an address frees its entry */
	pol_conns_dec(c, UINT32_MAX);
	CHECK(pol_conns_get(c, UINT32_MAX) == 0);
	CHECK(pol_conns_count(c) == 7);
	CHECK(pol_conns_inc(c, 200, 0));
	/* an unpaired dec changes nothing */
	pol_conns_dec(c, 12345);
	CHECK(pol_conns_count(c) == 8);
	for (int i = 0; i < 5; i++)
		pol_conns_dec(c, 1);
	CHECK(pol_conns_get(c, 1) == 0);
	CHECK(pol_conns_get(c, 0) == 1);
	CHECK(pol_conns_get(c, 100) == 2);
	CHECK(pol_conns_memory(c) >= 16 * 8);
	pol_conns_free(c);
	CHECK(pol_conns_create(0, SOCKET_ID_ANY) == NULL);
}

/* Keys: an IPv6 client counted by its /64 (pol_ipkey6) stays one entry
 * whatever host address it rotates to; another /64 is another entry; an
 * IPv4 key never meets an IPv6 one. */
static void test_conns_ipv6(void)
{
	struct pol_conns *c = pol_conns_create(16, SOCKET_ID_ANY);
	uint8_t a[16] = {0xfd, 0, 0x6d, 0x78, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t k1[16], k2[16], k3[16], k4[16];

	CHECK(c != NULL);
	if (!c)
		return;
	pol_ipkey6(k1, a, 64);
	a[15] = 0x77;
	a[8] = 0x12; /* rotated inside the /64 */
	pol_ipkey6(k2, a, 64);
	CHECK(memcmp(k1, k2, 16) == 0);
	a[7] = 2; /* the next /64 */
	pol_ipkey6(k3, a, 64);
	CHECK(memcmp(k1, k3, 16) != 0);
	CHECK(pol_conns_inc_key(c, k1, 2));
	CHECK(pol_conns_inc_key(c, k2, 2));
	CHECK(!pol_conns_inc_key(c, k2, 2)); /* the /64 is at its limit */
	CHECK(pol_conns_inc_key(c, k3, 2));
	CHECK(pol_conns_get_key(c, k1) == 2 && pol_conns_count(c) == 2);
	pol_ipkey6(k4, a, 48);
	CHECK(k4[6] == 0 && k4[7] == 0 && k4[5] == 0 && k4[1] == 0);
	pol_ipkey4(k4, 0x0a000001u);
	CHECK(pol_conns_inc_key(c, k4, 1) && pol_conns_get(c, 0x0a000001u) == 1);
	pol_conns_dec_key(c, k2);
	CHECK(pol_conns_get_key(c, k1) == 1);
	pol_conns_free(c);
}

static void test_conns_oracle(void)
{
	enum { NIP = 6000, CAP = 2048 };
	static uint32_t ips[NIP], cnt[NIP];
	struct pol_conns *c = mk_conns(CAP);
	uint32_t distinct = 0;
	uint64_t bad = 0, refused = 0;

	for (int i = 0; i < NIP; i++) {
	again:
		ips[i] = (uint32_t)rnd();
		if (i < 8)
			ips[i] = (uint32_t)i; /* neighbours, 0 included */
		for (int j = 0; j < i; j++)
			if (ips[j] == ips[i])
				goto again;
	}
	for (int op = 0; op < 1000000; op++) {
		/* a moving window of active addresses, so entries come and
		 * go in every part of the table */
		int base = (op / 50000) * 300 % NIP;
		int i = (base + (int)(rnd() % 2500)) % NIP;
		uint32_t max = (uint32_t)(rnd() % 6); /* 0: no limit */

		if (op >= 50000 && op % 50000 == 0) {
			/* the addresses that left the window disconnect */
			int old = ((op / 50000 - 1) * 300) % NIP;

			for (int j = old; j < old + 300; j++)
				while (cnt[j % NIP] > 0) {
					pol_conns_dec(c, ips[j % NIP]);
					if (--cnt[j % NIP] == 0)
						distinct--;
					bad += pol_conns_get(c, ips[j % NIP]) !=
					       cnt[j % NIP];
				}
			bad += pol_conns_count(c) != distinct;
		}

		if (rnd() % 2 == 0 || cnt[i] == 0) {
			bool expect = !(max != 0 && cnt[i] >= max) &&
				      !(cnt[i] == 0 && distinct >= CAP);
			bool got = pol_conns_inc(c, ips[i], max);

			bad += got != expect;
			refused += !got;
			if (got && cnt[i]++ == 0)
				distinct++;
		} else {
			pol_conns_dec(c, ips[i]);
			if (--cnt[i] == 0)
				distinct--;
		}
		bad += pol_conns_count(c) != distinct;
		bad += pol_conns_get(c, ips[i]) != cnt[i];
		if (op % 100000 == 0)
			for (int j = 0; j < NIP; j++)
				bad += pol_conns_get(c, ips[j]) != cnt[j];
	}
	CHECK(bad == 0);
	CHECK(refused > 0);
	/* drain everything: empty, every address reads 0 */
	for (int i = 0; i < NIP; i++)
		while (cnt[i] > 0) {
			pol_conns_dec(c, ips[i]);
			cnt[i]--;
		}
	CHECK(pol_conns_count(c) == 0);
	for (int i = 0; i < NIP; i++)
		bad += pol_conns_get(c, ips[i]) != 0;
	/* and it fills to capacity again, everything findable */
	for (int i = 0; i < CAP; i++)
		bad += !pol_conns_inc(c, ips[NIP - 1 - i], 0);
	CHECK(!pol_conns_inc(c, ips[0], 0));
	for (int i = 0; i < CAP; i++)
		bad += pol_conns_get(c, ips[NIP - 1 - i]) != 1;
	CHECK(bad == 0);
	CHECK(pol_conns_count(c) == CAP);
	printf("conns oracle: 1000000 operations, %" PRIu64
	       " refused as the oracle said\n",
	       refused);
	pol_conns_free(c);
}

static void test_hash(void)
{
	uint8_t buf[300];
	double flips = 0;
	int n = 0;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	/* every length reads only its own octets (ASan) and is stable */
	for (size_t len = 0; len <= sizeof(buf); len++) {
		uint8_t *p = malloc(len ? len : 1);

		memcpy(p, buf, len);
		CHECK(pol_hash64(p, len, 1) == pol_hash64(buf, len, 1));
		CHECK(pol_hash64(p, len, 1) != pol_hash64(p, len, 2));
		if (len > 0)
			CHECK(pol_hash64(p, len, 1) !=
			      pol_hash64(p, len - 1, 1));
		/* avalanche: one flipped input bit flips about half */
		for (size_t bit = 0; bit < len * 8; bit += 5) {
			uint64_t h0 = pol_hash64(p, len, 99), h1;

			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			h1 = pol_hash64(p, len, 99);
			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			flips += __builtin_popcountll(h0 ^ h1);
			n++;
		}
		free(p);
	}
	flips /= n;
	CHECK(flips > 30.0 && flips < 34.0);
	printf("hash: mean %.2f of 64 bits flip per input bit\n", flips);
}

int main(int argc, char **argv)
{
	char *eal[] = {
		argv[0], "--no-huge", "--no-pci", "--no-shconf",       "-m",
		"256",	 "-l",	      "0",	  "--log-level=error", NULL};

	(void)argc;
	if (rte_eal_init(9, eal) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return 1;
	}
	test_exact();
	test_refill();
	test_burst_lt_rate();
	test_independent();
	test_param_change();
	test_lru();
	test_capacity();
	test_model();
	test_conns_basic();
	test_conns_oracle();
	test_conns_ipv6();
	test_hash();
	printf("policy_ratelimit: %u checks, %u failures\n", checks, failures);
	rte_eal_cleanup();
	return failures ? 1 : 0;
}
