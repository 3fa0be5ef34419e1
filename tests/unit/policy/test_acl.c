/*
 * test_acl.c - unit tests of dataplane/policy/acl.{h,c}: longest-prefix
 * semantics, /0 and /32, add/replace/delete, capacity and tbl8 budgets,
 * a million random IPv4 prefixes against an independent oracle, IPv6
 * with full 24-bit values, and the per-core block table's expiry.
 *
 * Single-threaded; starts an EAL without hugepages or devices because
 * rte_lpm allocates with rte_malloc. Exits non-zero on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "dataplane/policy/acl.h"

static unsigned checks, failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__,         \
				__LINE__, #c);                                 \
		}                                                              \
	} while (0)

#define IP(a, b, c, d)                                                         \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |      \
	 (uint32_t)(d))

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Lookup returning the value, or UINT32_MAX on a miss. */
static uint32_t look4(const struct pol_acl *a, uint32_t ip)
{
	uint32_t v = 0xdeadbeef;

	return pol_acl_lookup4(a, ip, &v) == 0 ? v : UINT32_MAX;
}

static uint32_t look6(const struct pol_acl *a, const uint8_t ip[16])
{
	uint32_t v = 0xdeadbeef;

	return pol_acl_lookup6(a, ip, &v) == 0 ? v : UINT32_MAX;
}

static void test_lpm_basics(void)
{
	struct pol_acl *a = pol_acl_create(64, 0, SOCKET_ID_ANY);

	CHECK(a != NULL);
	if (!a)
		return;
	CHECK(pol_acl_count(a) == 0);
	CHECK(look4(a, IP(10, 1, 2, 3)) == UINT32_MAX);
	/* Nested: deny /8, allow /16 inside, deny /24 inside that, allow
	 * one host inside that. */
	CHECK(pol_acl_add4(a, IP(10, 0, 0, 0), 8, POL_ACL_DENY) == 0);
	CHECK(pol_acl_add4(a, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW) == 0);
	CHECK(pol_acl_add4(a, IP(10, 1, 2, 0), 24, POL_ACL_DENY) == 0);
	CHECK(pol_acl_add4(a, IP(10, 1, 2, 3), 32, POL_ACL_ALLOW) == 0);
	CHECK(pol_acl_count(a) == 4);
	CHECK(look4(a, IP(10, 9, 9, 9)) == POL_ACL_DENY);
	CHECK(look4(a, IP(10, 1, 9, 9)) == POL_ACL_ALLOW);
	CHECK(look4(a, IP(10, 1, 2, 9)) == POL_ACL_DENY);
	CHECK(look4(a, IP(10, 1, 2, 3)) == POL_ACL_ALLOW);
	CHECK(look4(a, IP(10, 1, 2, 4)) == POL_ACL_DENY);
	CHECK(look4(a, IP(11, 0, 0, 1)) == UINT32_MAX);
	CHECK(look4(a, IP(9, 255, 255, 255)) == UINT32_MAX);

	/* Host bits of a prefix are ignored. */
	CHECK(pol_acl_add4(a, IP(192, 168, 1, 77), 24, 42) == 0);
	CHECK(look4(a, IP(192, 168, 1, 1)) == 42);
	CHECK(pol_acl_del4(a, IP(192, 168, 1, 200), 24) == 0);
	CHECK(look4(a, IP(192, 168, 1, 1)) == UINT32_MAX);

	/* /0 matches what nothing longer matches. */
	CHECK(pol_acl_add4(a, IP(1, 2, 3, 4), 0, 7) == 0);
	CHECK(pol_acl_count(a) == 5);
	CHECK(look4(a, IP(11, 0, 0, 1)) == 7);
	CHECK(look4(a, 0) == 7);
	CHECK(look4(a, UINT32_MAX) == 7);
	CHECK(look4(a, IP(10, 9, 9, 9)) == POL_ACL_DENY);
	CHECK(pol_acl_add4(a, 0, 0, 8) == 0); /* replace */
	CHECK(pol_acl_count(a) == 5);
	CHECK(look4(a, IP(11, 0, 0, 1)) == 8);
	CHECK(pol_acl_del4(a, 0, 0) == 0);
	CHECK(pol_acl_del4(a, 0, 0) == -ENOENT);
	CHECK(look4(a, IP(11, 0, 0, 1)) == UINT32_MAX);
	CHECK(pol_acl_count(a) == 4);

	/* /32 at both ends of the space. */
	CHECK(pol_acl_add4(a, 0, 32, 100) == 0);
	CHECK(pol_acl_add4(a, UINT32_MAX, 32, 101) == 0);
	CHECK(look4(a, 0) == 100);
	CHECK(look4(a, 1) == UINT32_MAX);
	CHECK(look4(a, UINT32_MAX) == 101);
	CHECK(look4(a, UINT32_MAX - 1) == UINT32_MAX);

	/* Replace keeps the count; the new value answers. */
	CHECK(pol_acl_add4(a, IP(10, 1, 0, 0), 16, 9) == 0);
	CHECK(pol_acl_count(a) == 6);
	CHECK(look4(a, IP(10, 1, 9, 9)) == 9);
	CHECK(look4(a, IP(10, 1, 2, 9)) == POL_ACL_DENY);

	/* Delete uncovers the next shorter prefix. */
	CHECK(pol_acl_del4(a, IP(10, 1, 2, 0), 24) == 0);
	CHECK(look4(a, IP(10, 1, 2, 9)) == 9);
	CHECK(look4(a, IP(10, 1, 2, 3)) == POL_ACL_ALLOW);
	CHECK(pol_acl_del4(a, IP(10, 1, 2, 0), 24) == -ENOENT);
	CHECK(pol_acl_del4(a, IP(10, 1, 0, 0), 17) == -ENOENT);
	CHECK(pol_acl_del4(a, IP(10, 1, 2, 3), 32) == 0);
	CHECK(look4(a, IP(10, 1, 2, 3)) == 9);
	CHECK(pol_acl_del4(a, IP(10, 1, 0, 0), 16) == 0);
	CHECK(look4(a, IP(10, 1, 2, 3)) == POL_ACL_DENY);
	CHECK(pol_acl_count(a) == 3);

	/* Bad arguments. */
	CHECK(pol_acl_add4(a, 0, 33, 1) == -EINVAL);
	CHECK(pol_acl_add4(a, 0, 8, POL_ACL_VALUE_MAX + 1) == -EINVAL);
	CHECK(pol_acl_del4(a, 0, 33) == -EINVAL);
	CHECK(pol_acl_add4(a, IP(20, 0, 0, 0), 8, POL_ACL_VALUE_MAX) == 0);
	CHECK(look4(a, IP(20, 5, 5, 5)) == POL_ACL_VALUE_MAX);

	/* This table holds no IPv6. */
	{
		uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};

		CHECK(pol_acl_add6(a, v6, 32, 1) == -ENOSPC);
		CHECK(look6(a, v6) == UINT32_MAX);
	}
	CHECK(pol_acl_memory(a) > (64u << 20));
	pol_acl_free(a);
}

static void test_capacity(void)
{
	struct pol_acl *a = pol_acl_create(8, 0, SOCKET_ID_ANY);

	CHECK(a != NULL);
	if (!a)
		return;
	for (uint32_t i = 0; i < 7; i++)
		CHECK(pol_acl_add4(a, IP(10, i, 0, 0), 16, i) == 0);
	CHECK(pol_acl_add4(a, 0, 0, 99) == 0); /* /0 counts too */
	CHECK(pol_acl_count(a) == 8);
	CHECK(pol_acl_add4(a, IP(11, 0, 0, 0), 8, 1) == -ENOSPC);
	CHECK(pol_acl_add4(a, IP(11, 0, 0, 0), 32, 1) == -ENOSPC);
	CHECK(look4(a, IP(11, 0, 0, 0)) == 99);
	CHECK(pol_acl_count(a) == 8);
	/* Replacing when full is fine. */
	CHECK(pol_acl_add4(a, IP(10, 3, 0, 0), 16, 33) == 0);
	CHECK(look4(a, IP(10, 3, 1, 1)) == 33);
	CHECK(pol_acl_del4(a, IP(10, 0, 0, 0), 16) == 0);
	CHECK(pol_acl_add4(a, IP(11, 0, 0, 0), 8, 1) == 0);
	CHECK(look4(a, IP(11, 0, 0, 0)) == 1);
	CHECK(pol_acl_add4(a, IP(12, 0, 0, 0), 8, 1) == -ENOSPC);
	pol_acl_free(a);

	/* The default tbl8 budget takes max4 hosts, each in its own /24. */
	a = pol_acl_create(2000, 0, SOCKET_ID_ANY);
	CHECK(a != NULL);
	if (!a)
		return;
	{
		int bad = 0;

		for (uint32_t i = 0; i < 2000; i++)
			if (pol_acl_add4(a, IP(100, i >> 8, i & 255, 7), 32,
					 i) != 0)
				bad++;
		CHECK(bad == 0);
		CHECK(pol_acl_count(a) == 2000);
		CHECK(pol_acl_add4(a, IP(101, 0, 0, 7), 32, 1) == -ENOSPC);
		bad = 0;
		for (uint32_t i = 0; i < 2000; i++)
			if (look4(a, IP(100, i >> 8, i & 255, 7)) != i ||
			    look4(a, IP(100, i >> 8, i & 255, 8)) != UINT32_MAX)
				bad++;
		CHECK(bad == 0);
	}
	pol_acl_free(a);

	/* An explicit, smaller budget: 4 groups = 4 /24s with long
	 * prefixes; the table is unchanged by the refused add. */
	a = pol_acl_create_ex(100, 4, 0, 0, SOCKET_ID_ANY);
	CHECK(a != NULL);
	if (!a)
		return;
	for (uint32_t i = 0; i < 4; i++)
		CHECK(pol_acl_add4(a, IP(10, 0, i, 128), 25, i + 1) == 0);
	CHECK(pol_acl_add4(a, IP(10, 0, 9, 128), 25, 9) == -ENOSPC);
	CHECK(pol_acl_count(a) == 4);
	CHECK(look4(a, IP(10, 0, 9, 200)) == UINT32_MAX);
	/* Same /24 as an existing group: no new group needed. */
	CHECK(pol_acl_add4(a, IP(10, 0, 2, 0), 26, 50) == 0);
	CHECK(look4(a, IP(10, 0, 2, 1)) == 50);
	CHECK(look4(a, IP(10, 0, 2, 129)) == 3);
	/* Short prefixes need no group. */
	CHECK(pol_acl_add4(a, IP(20, 0, 0, 0), 24, 60) == 0);
	/* Deleting a /24's last long prefix frees its group. */
	CHECK(pol_acl_del4(a, IP(10, 0, 0, 128), 25) == 0);
	CHECK(pol_acl_add4(a, IP(10, 0, 9, 128), 25, 9) == 0);
	CHECK(look4(a, IP(10, 0, 9, 200)) == 9);
	pol_acl_free(a);

	CHECK(pol_acl_create(0, (1u << 21), SOCKET_ID_ANY) == NULL &&
	      errno == EINVAL);
}

static void v6(uint8_t out[16], const char *hex)
{
	/* 32 hex digits, no separators. */
	for (int i = 0; i < 16; i++) {
		unsigned x;

		sscanf(hex + 2 * i, "%2x", &x);
		out[i] = (uint8_t)x;
	}
}

static void test_ipv6(void)
{
	struct pol_acl *a = pol_acl_create(0, 64, SOCKET_ID_ANY);
	uint8_t p32[16], p48[16], h1[16], h2[16], other[16], x[16];

	CHECK(a != NULL);
	if (!a)
		return;
	v6(p32, "20010db8000000000000000000000000");
	v6(p48, "20010db8000100000000000000000000");
	v6(h1, "20010db8000100000000000000000001");
	v6(h2, "20010db8000100000000000000000002");
	v6(other, "20010db9000000000000000000000001");
	CHECK(pol_acl_add6(a, p32, 32, POL_ACL_DENY) == 0);
	CHECK(pol_acl_add6(a, p48, 48, POL_ACL_ALLOW) == 0);
	/* A value above rte_lpm6's 21 bits survives. */
	CHECK(pol_acl_add6(a, h1, 128, 0xabcdef) == 0);
	CHECK(pol_acl_count(a) == 3);
	CHECK(look6(a, h1) == 0xabcdef);
	CHECK(look6(a, h2) == POL_ACL_ALLOW);
	v6(x, "20010db8ffff00000000000000000001");
	CHECK(look6(a, x) == POL_ACL_DENY);
	CHECK(look6(a, other) == UINT32_MAX);
	/* /0, replace, delete. */
	CHECK(pol_acl_add6(a, other, 0, 5) == 0);
	CHECK(look6(a, other) == 5);
	CHECK(pol_acl_count(a) == 4);
	CHECK(pol_acl_add6(a, h1, 128, POL_ACL_VALUE_MAX) == 0);
	CHECK(look6(a, h1) == POL_ACL_VALUE_MAX);
	CHECK(pol_acl_count(a) == 4);
	CHECK(pol_acl_del6(a, p48, 48) == 0);
	CHECK(look6(a, h2) == POL_ACL_DENY);
	CHECK(look6(a, h1) == POL_ACL_VALUE_MAX);
	CHECK(pol_acl_del6(a, p48, 48) == -ENOENT);
	CHECK(pol_acl_del6(a, h1, 127) == -ENOENT);
	CHECK(pol_acl_del6(a, h1, 128) == 0);
	CHECK(look6(a, h1) == POL_ACL_DENY);
	CHECK(pol_acl_del6(a, x, 0) == 0);
	CHECK(look6(a, other) == UINT32_MAX);
	CHECK(pol_acl_count(a) == 1);
	CHECK(pol_acl_add6(a, h1, 129, 1) == -EINVAL);
	CHECK(pol_acl_add6(a, h1, 64, POL_ACL_VALUE_MAX + 1) == -EINVAL);
	/* No IPv4 in this table. */
	CHECK(pol_acl_add4(a, IP(10, 0, 0, 0), 8, 1) == -ENOSPC);
	CHECK(look4(a, IP(10, 0, 0, 1)) == UINT32_MAX);

	/* Fill with 63 more /64s, each with its own 24-bit value; the
	 * 65th prefix is refused; then replace and recycle values. */
	{
		int bad = 0;

		for (int i = 0; i < 63; i++) {
			memcpy(x, p32, 16);
			x[6] = (uint8_t)(i >> 8);
			x[7] = (uint8_t)i;
			if (pol_acl_add6(a, x, 64, 0xf00000u + (uint32_t)i))
				bad++;
		}
		CHECK(bad == 0);
		CHECK(pol_acl_count(a) == 64);
		x[7] = 200;
		CHECK(pol_acl_add6(a, x, 64, 1) == -ENOSPC);
		for (int round = 0; round < 3; round++)
			for (int i = 0; i < 63; i++) {
				memcpy(x, p32, 16);
				x[7] = (uint8_t)i;
				x[15] = 0x55;
				if (pol_acl_add6(a, x, 64,
						 0x100000u * (uint32_t)round +
							 (uint32_t)i) != 0)
					bad++;
			}
		CHECK(bad == 0);
		for (int i = 0; i < 63; i++) {
			memcpy(x, p32, 16);
			x[7] = (uint8_t)i;
			x[12] = 0x77;
			if (look6(a, x) != 0x200000u + (uint32_t)i)
				bad++;
		}
		CHECK(bad == 0);
		CHECK(pol_acl_count(a) == 64);
	}
	CHECK(pol_acl_memory(a) > (64u << 20));
	pol_acl_free(a);
}

/*
 * The oracle: a plain hash of (prefix, depth) -> value, answering a
 * lookup by trying depths 32..0. No LPM structure, no shared code.
 */
struct oracle {
	uint64_t *key; /* ip << 8 | depth, or UINT64_MAX */
	uint32_t *val; /* UINT32_MAX: deleted */
	uint32_t mask;
};

static uint32_t o_home(const struct oracle *o, uint64_t k)
{
	k ^= k >> 31;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 29;
	return (uint32_t)k & o->mask;
}

static uint32_t *o_slot(struct oracle *o, uint64_t k, bool create)
{
	uint32_t i = o_home(o, k);

	while (o->key[i] != UINT64_MAX) {
		if (o->key[i] == k)
			return &o->val[i];
		i = (i + 1) & o->mask;
	}
	if (!create)
		return NULL;
	o->key[i] = k;
	o->val[i] = UINT32_MAX;
	return &o->val[i];
}

static uint32_t o_mask(int d)
{
	return d == 0 ? 0 : ~0u << (32 - d);
}

static uint32_t o_lookup(struct oracle *o, uint32_t ip)
{
	for (int d = 32; d >= 0; d--) {
		uint32_t *v =
			o_slot(o, (uint64_t)(ip & o_mask(d)) << 8 | (uint64_t)d,
			       false);

		if (v && *v != UINT32_MAX)
			return *v;
	}
	return UINT32_MAX;
}

#define BIG_N 1000000u
#define BIG_POOL 4096u /* /24s that hold the prefixes longer than /24 */

/* Prefixes at depth d that the generator can make distinct. */
static uint64_t big_cap(int d)
{
	return d <= 24 ? 1ull << d : (uint64_t)BIG_POOL << (d - 24);
}

/*
 * The i-th distinct prefix of depth d (i < big_cap(d)): an odd multiplier
 * modulo a power of two is a bijection, so the prefixes are distinct and
 * scattered. Above /24 they fall in the BIG_POOL /24 networks of pool[].
 */
static uint32_t big_prefix(const uint32_t *pool, int d, uint64_t i)
{
	uint64_t j =
		(i * 0x9e3779b1ull + (uint64_t)d * 7919) & (big_cap(d) - 1);

	if (d <= 24)
		return d == 0 ? 0 : (uint32_t)(j << (32 - d));
	return pool[j >> (d - 24)] |
	       (uint32_t)((j & ((1u << (d - 24)) - 1)) << (32 - d));
}

/*
 * A million distinct random prefixes, inserted in random order, then
 * checked on sampled addresses against the oracle. rte_lpm scans the
 * rules of a depth linearly on every add, so the build costs about
 * sum(n_d^2)/2 compares: the prefixes are spread evenly over /16../32
 * (the depths that can hold tens of thousands), with a few of each
 * shorter depth (those rewrite 2^(24-d) entries each).
 */
static void test_million(void)
{
	struct oracle o;
	struct pol_acl *a = NULL;
	uint32_t *pool, *pip, n = 0, bad = 0;
	uint8_t *pdep;
	uint64_t quota[33] = {0}, lo = 1, hi = BIG_N, total;
	double t0, t1;

	o.mask = (1u << 22) - 1;
	o.key = malloc(sizeof(*o.key) * (o.mask + 1));
	o.val = malloc(sizeof(*o.val) * (o.mask + 1));
	pool = malloc(sizeof(*pool) * BIG_POOL);
	pip = malloc(sizeof(*pip) * BIG_N);
	pdep = malloc(BIG_N);
	CHECK(o.key && o.val && pool && pip && pdep);
	if (!o.key || !o.val || !pool || !pip || !pdep)
		goto out;
	memset(o.key, 0xff, sizeof(*o.key) * (o.mask + 1));
	for (uint32_t i = 0; i < BIG_POOL; i++)
		pool[i] = (uint32_t)(((i * 0x2545f491ull + 12345) & 0xffffffull)
				     << 8);
	/* Quotas: half of each depth 8..15; then the smallest per-depth
	 * quota q over 16..32 (capped by what a depth can hold) that
	 * makes BIG_N in all. */
	total = 0;
	for (int d = 8; d < 16; d++)
		total += quota[d] = big_cap(d) / 2;
	while (lo < hi) {
		uint64_t q = (lo + hi) / 2, sum = total;

		for (int d = 16; d <= 32; d++)
			sum += big_cap(d) < q ? big_cap(d) : q;
		if (sum >= BIG_N)
			hi = q;
		else
			lo = q + 1;
	}
	for (int d = 16; d <= 32 && total < BIG_N; d++) {
		quota[d] = big_cap(d) < lo ? big_cap(d) : lo;
		if (total + quota[d] > BIG_N)
			quota[d] = BIG_N - total;
		total += quota[d];
	}
	for (int d = 0; d <= 32; d++)
		for (uint64_t i = 0; i < quota[d]; i++) {
			pip[n] = big_prefix(pool, d, i);
			pdep[n] = (uint8_t)d;
			n++;
		}
	CHECK(n == BIG_N);
	for (uint32_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
		uint32_t j = (uint32_t)(rnd() % (i + 1)), t = pip[i];
		uint8_t td = pdep[i];

		pip[i] = pip[j];
		pip[j] = t;
		pdep[i] = pdep[j];
		pdep[j] = td;
	}

	/* Long prefixes all fall in BIG_POOL /24s, so that many tbl8
	 * groups suffice: the exact-budget path of pol_acl_create_ex. */
	a = pol_acl_create_ex(BIG_N, BIG_POOL, 0, 0, SOCKET_ID_ANY);
	CHECK(a != NULL);
	if (!a)
		goto out;
	t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t val = (uint32_t)(rnd() & POL_ACL_VALUE_MAX);
		uint32_t *slot =
			o_slot(&o, (uint64_t)pip[i] << 8 | pdep[i], true);

		if (*slot != UINT32_MAX) /* generator bug: not distinct */
			bad++;
		if (pol_acl_add4(a, pip[i], pdep[i], val) != 0)
			bad++;
		*slot = val;
	}
	CHECK(bad == 0);
	CHECK(pol_acl_count(a) == n);
	/* Replace a sample; full, so a new prefix is refused. */
	bad = 0;
	for (uint32_t i = 0; i < 10000; i++) {
		uint32_t k = (uint32_t)(rnd() % n);
		uint32_t val = (uint32_t)(rnd() & POL_ACL_VALUE_MAX);

		if (pol_acl_add4(a, pip[k], pdep[k], val) != 0)
			bad++;
		*o_slot(&o, (uint64_t)pip[k] << 8 | pdep[k], false) = val;
	}
	CHECK(bad == 0);
	CHECK(pol_acl_count(a) == n);
	CHECK(pol_acl_add4(a, pip[0] ^ 1u, 32, 1) == -ENOSPC ||
	      o_slot(&o, (uint64_t)(pip[0] ^ 1u) << 8 | 32, false));
	t1 = now_s();
	/* Sampled addresses: uniform ones (mostly shallow or missing),
	 * and ones inside inserted prefixes (every depth). */
	bad = 0;
	for (uint32_t i = 0; i < 200000; i++) {
		uint32_t ip;

		if (i & 1) {
			uint32_t k = (uint32_t)(rnd() % n);

			ip = pip[k] | ((uint32_t)rnd() & ~o_mask(pdep[k]));
		} else {
			ip = (uint32_t)rnd();
		}
		if (look4(a, ip) != o_lookup(&o, ip))
			bad++;
	}
	CHECK(bad == 0);
	/* Delete a sample (rte_lpm deletes scan rules linearly: keep it
	 * to a few thousand), then check again around them. */
	bad = 0;
	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t k = (uint32_t)(rnd() % n);
		uint32_t *slot =
			o_slot(&o, (uint64_t)pip[k] << 8 | pdep[k], false);
		int rc = pol_acl_del4(a, pip[k], pdep[k]);

		if (*slot == UINT32_MAX) {
			if (rc != -ENOENT)
				bad++;
		} else {
			if (rc != 0)
				bad++;
			*slot = UINT32_MAX;
			n--;
		}
		for (int j = 0; j < 8; j++) {
			uint32_t ip =
				pip[k] | ((uint32_t)rnd() & ~o_mask(pdep[k]));

			if (look4(a, ip) != o_lookup(&o, ip))
				bad++;
		}
	}
	CHECK(bad == 0);
	CHECK(pol_acl_count(a) == n);
	CHECK(pol_acl_memory(a) > (64u << 20) + (size_t)BIG_N * 8);
	printf("test_acl: %u random prefixes built in %.1f s, checked in "
	       "%.1f s\n",
	       BIG_N, t1 - t0, now_s() - t1);
out:
	pol_acl_free(a);
	free(o.key);
	free(o.val);
	free(pool);
	free(pip);
	free(pdep);
}

static void test_block(void)
{
	struct pol_block *b = pol_block_create(16, SOCKET_ID_ANY);

	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 0) == 0);
	CHECK(pol_block_add4(b, IP(10, 0, 0, 0), 8, POL_ACL_DENY, 0) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW, 1000) == 0);
	CHECK(pol_block_count(b) == 2);
	/* Live until its microsecond, then the /8 it shadowed answers,
	 * before and after removal. */
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 0) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 999) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 1000) == POL_ACL_DENY);
	CHECK(pol_block_lookup4(b, IP(10, 2, 0, 1), 1000) == POL_ACL_DENY);
	CHECK(pol_block_lookup4(b, IP(11, 2, 0, 1), 1000) == 0);
	CHECK(pol_block_expire(b, 999, 10) == 0);
	CHECK(pol_block_count(b) == 2);
	CHECK(pol_block_expire(b, 1000, 10) == 1);
	CHECK(pol_block_count(b) == 2 - 1);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 0) == POL_ACL_DENY);
	CHECK(pol_block_del4(b, IP(10, 1, 0, 0), 16) == -ENOENT);

	/* Re-adding replaces action and expiry. */
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW, 5000) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_DENY, 0) == 0);
	CHECK(pol_block_count(b) == 2);
	CHECK(pol_block_lookup4(b, IP(10, 1, 0, 1), 1000000000ull) ==
	      POL_ACL_DENY);
	CHECK(pol_block_expire(b, 1000000000ull, 100) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW, 7000) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW, 3000) ==
	      0); /* earlier expiry */
	CHECK(pol_block_lookup4(b, IP(10, 1, 0, 1), 2999) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 0, 1), 3000) == POL_ACL_DENY);
	CHECK(pol_block_expire(b, 3000, 100) == 1);

	/* Several expired layers over a live one, and /0. */
	CHECK(pol_block_add4(b, IP(10, 1, 0, 0), 16, POL_ACL_ALLOW, 100) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 2, 0), 24, POL_ACL_ALLOW, 200) == 0);
	CHECK(pol_block_add4(b, IP(10, 1, 2, 3), 32, POL_ACL_ALLOW, 300) == 0);
	CHECK(pol_block_add4(b, 0, 0, POL_ACL_ALLOW, 400) == 0);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 250) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 300) == POL_ACL_DENY);
	CHECK(pol_block_lookup4(b, IP(99, 1, 2, 3), 399) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(99, 1, 2, 3), 400) == 0);
	CHECK(pol_block_del4(b, IP(10, 0, 0, 0), 8) == 0);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 300) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 350) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 400) == 0);
	CHECK(pol_block_expire(b, 1000, 2) == 2); /* max respected */
	CHECK(pol_block_count(b) == 2);
	CHECK(pol_block_expire(b, 1000, 2) == 2);
	CHECK(pol_block_count(b) == 0);
	CHECK(pol_block_lookup4(b, IP(10, 1, 2, 3), 0) == 0);

	/* Bad arguments, capacity. */
	CHECK(pol_block_add4(b, 0, 33, POL_ACL_DENY, 0) == -EINVAL);
	CHECK(pol_block_add4(b, 0, 8, 0, 0) == -EINVAL);
	CHECK(pol_block_add4(b, 0, 8, 3, 0) == -EINVAL);
	for (uint32_t i = 0; i < 16; i++)
		CHECK(pol_block_add4(b, IP(172, 16, i, 1), 32, POL_ACL_DENY,
				     i < 8 ? 10 + i : 0) == 0);
	CHECK(pol_block_add4(b, IP(172, 17, 0, 1), 32, POL_ACL_DENY, 0) ==
	      -ENOSPC);
	CHECK(pol_block_add4(b, IP(172, 16, 3, 1), 32, POL_ACL_ALLOW, 0) == 0);
	CHECK(pol_block_expire(b, 100, 100) == 7);
	CHECK(pol_block_add4(b, IP(172, 17, 0, 1), 32, POL_ACL_DENY, 0) == 0);
	CHECK(pol_block_lookup4(b, IP(172, 16, 3, 1), 100) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup4(b, IP(172, 16, 2, 1), 0) == 0);
	CHECK(pol_block_count(b) == 10);
	CHECK(pol_block_memory(b) > (64u << 20));
	pol_block_free(b);
}

/* Pushed IPv6 blocks: longest live match, expiry, a /64 covering every
 * address inside it, replace and delete, the table bound. */
static void test_block6(void)
{
	struct pol_block *b = pol_block_create(4, SOCKET_ID_ANY);
	uint8_t h1[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0,
			  0, 0, 0, 1};
	uint8_t h2[16], other[16] = {0x20, 0x01, 0x0d, 0xb9};
	uint8_t p48[16] = {0x20, 0x01, 0x0d, 0xb8};

	CHECK(b != NULL);
	if (!b)
		return;
	memcpy(h2, h1, 16);
	h2[15] = 0x99; /* same /64, another host */
	h2[9] = 0x42;
	CHECK(pol_block_lookup6(b, h1, 0) == 0);
	CHECK(pol_block_add6(b, h1, 64, POL_ACL_DENY, 0) == 0);
	CHECK(pol_block_lookup6(b, h1, 0) == POL_ACL_DENY);
	CHECK(pol_block_lookup6(b, h2, 0) == POL_ACL_DENY); /* same /64 */
	CHECK(pol_block_lookup6(b, other, 0) == 0);
	/* IPv4 entries do not answer IPv6 lookups and back */
	CHECK(pol_block_lookup4(b, 0x0a000001u, 0) == 0);
	/* a host allowed inside the blocked /64 until t=100 */
	CHECK(pol_block_add6(b, h1, 128, POL_ACL_ALLOW, 100) == 0);
	CHECK(pol_block_lookup6(b, h1, 99) == POL_ACL_ALLOW);
	CHECK(pol_block_lookup6(b, h1, 100) == POL_ACL_DENY); /* shadowed */
	CHECK(pol_block_lookup6(b, h2, 99) == POL_ACL_DENY);
	CHECK(pol_block_count(b) == 2);
	CHECK(pol_block_expire(b, 100, 10) == 1);
	CHECK(pol_block_count(b) == 1);
	/* a /48 allow under the /64 deny: the longer prefix wins */
	CHECK(pol_block_add6(b, p48, 48, POL_ACL_ALLOW, 0) == 0);
	CHECK(pol_block_lookup6(b, h1, 0) == POL_ACL_DENY);
	p48[6] = 7;
	CHECK(pol_block_lookup6(b, p48, 0) == POL_ACL_ALLOW);
	CHECK(pol_block_del6(b, h1, 64) == 0);
	CHECK(pol_block_del6(b, h1, 64) == -ENOENT);
	CHECK(pol_block_lookup6(b, h1, 0) == POL_ACL_ALLOW); /* the /48 */
	CHECK(pol_block_add6(b, h1, 129, POL_ACL_DENY, 0) == -EINVAL);
	/* bound: 4 entries per family */
	for (int i = 0; i < 3; i++) {
		other[15] = (uint8_t)i;
		CHECK(pol_block_add6(b, other, 128, POL_ACL_DENY, 0) == 0);
	}
	other[15] = 9;
	CHECK(pol_block_add6(b, other, 128, POL_ACL_DENY, 0) == -ENOSPC);
	CHECK(pol_block_add4(b, 0x0a000001u, 32, POL_ACL_DENY, 0) == 0);
	CHECK(pol_block_count(b) == 5);
	pol_block_free(b);
}

/* Random adds, replaces, deletes and expiries against a plain array. */
static void test_block_random(void)
{
	enum { N = 512, OPS = 20000 };
	struct pol_block *b = pol_block_create(N, SOCKET_ID_ANY);
	struct {
		uint32_t ip;
		uint8_t depth, action;
		bool used;
		uint64_t exp;
	} m[N];
	uint64_t now = 1;
	unsigned bad = 0, used = 0;

	CHECK(b != NULL);
	if (!b)
		return;
	memset(m, 0, sizeof(m));
	for (int op = 0; op < OPS; op++) {
		uint64_t r = rnd();
		unsigned k = (unsigned)(r % N);

		if ((r >> 16) % 4 != 0) {
			/* Prefix k: depth from a few values, inside 10/8. */
			static const uint8_t ds[] = {8, 12, 16, 20, 24, 28, 32};
			uint8_t d = ds[k % 7];
			uint32_t ip = (IP(10, 0, 0, 0) |
				       ((uint32_t)(r >> 24) & 0x00ffffffu)) &
				      (~0u << (32 - d));
			uint64_t exp =
				(r >> 40) % 3 ? now + (r >> 50) % 500 : 0;
			uint8_t act =
				(r >> 9) & 1 ? POL_ACL_DENY : POL_ACL_ALLOW;
			int rc;
			int same = -1;

			for (unsigned j = 0; j < N; j++)
				if (m[j].used && m[j].ip == ip &&
				    m[j].depth == d)
					same = (int)j;
			if (same < 0 && m[k].used)
				continue;
			if (same >= 0)
				k = (unsigned)same;
			rc = pol_block_add4(b, ip, d, act, exp);
			if (rc != 0) {
				bad++;
				continue;
			}
			if (!m[k].used)
				used++;
			m[k].ip = ip;
			m[k].depth = d;
			m[k].action = act;
			m[k].exp = exp;
			m[k].used = true;
		} else if ((r >> 20) & 1) {
			if (m[k].used) {
				if (pol_block_del4(b, m[k].ip, m[k].depth) != 0)
					bad++;
				m[k].used = false;
				used--;
			}
		} else {
			uint32_t lim = (uint32_t)(r >> 32) % 8, gone = 0,
				 due = 0;

			now += (r >> 40) % 100;
			for (unsigned j = 0; j < N; j++)
				if (m[j].used && m[j].exp && m[j].exp <= now)
					due++;
			gone = pol_block_expire(b, now, lim);
			if (gone != (due < lim ? due : lim))
				bad++;
			gone += pol_block_expire(b, now, UINT32_MAX);
			if (gone != due)
				bad++;
			for (unsigned j = 0; j < N; j++)
				if (m[j].used && m[j].exp && m[j].exp <= now) {
					m[j].used = false;
					used--;
				}
		}
		if (pol_block_count(b) != used)
			bad++;
		/* Longest live match for a few addresses. */
		for (int q = 0; q < 4; q++) {
			uint32_t ip = IP(10, 0, 0, 0) |
				      ((uint32_t)rnd() & 0x00ffffffu);
			uint64_t t = now + rnd() % 300;
			int best = -1;
			uint32_t want = 0;

			if (q == 0 && used) {
				unsigned j = (unsigned)(rnd() % N);

				while (!m[j].used)
					j = (j + 1) % N;
				ip = m[j].ip | ((uint32_t)rnd() &
						~(~0u << (32 - m[j].depth)));
			}
			for (unsigned j = 0; j < N; j++) {
				if (!m[j].used ||
				    (ip & (~0u << (32 - m[j].depth))) !=
					    m[j].ip)
					continue;
				if (m[j].exp && t >= m[j].exp)
					continue;
				if ((int)m[j].depth > best) {
					best = m[j].depth;
					want = m[j].action;
				}
			}
			if (pol_block_lookup4(b, ip, t) != want)
				bad++;
		}
	}
	CHECK(bad == 0);
	pol_block_free(b);
}

/*
 * The static IPv4 table (pol_acl_build4), as snapshots use it: a million
 * random prefixes over /8../32 with value = depth, some duplicates with
 * a different value (the later must win), checked on 2,000,000 random
 * addresses against an oracle that tries depths 32 down to 0; and the
 * small cases (/0, allow inside deny, add refused afterwards).
 */
static uint64_t *st_set;
static uint32_t st_mask;

static uint32_t st_slot(uint64_t k)
{
	uint64_t h = k * 0x9e3779b97f4a7c15ULL;
	uint32_t i = (uint32_t)(h >> 40) & st_mask;

	while (st_set[i] && st_set[i] != k)
		i = (i + 1) & st_mask;
	return i;
}

static void test_static(void)
{
	const uint32_t N = 1000000;
	struct pol_acl_entry4 *e = malloc(sizeof(*e) * (N + 8));
	struct pol_acl *a;
	uint32_t bad = 0, v = 0;
	double t0;

	st_mask = (1u << 22) - 1;
	st_set = calloc((size_t)st_mask + 1, sizeof(*st_set));
	CHECK(e != NULL && st_set != NULL);
	if (!e || !st_set)
		goto out;
	/* small: deny 10/8, allow 10.1.2/24, deny 10.1.2.3/32, /0 allow,
	 * then the same /8 again as allow (the later wins) */
	a = pol_acl_create(0, 0, SOCKET_ID_ANY);
	e[0] = (struct pol_acl_entry4){IP(10, 0, 0, 0), 8, POL_ACL_DENY, 0};
	e[1] = (struct pol_acl_entry4){IP(10, 1, 2, 0), 24, POL_ACL_ALLOW, 0};
	e[2] = (struct pol_acl_entry4){IP(10, 1, 2, 3), 32, POL_ACL_DENY, 0};
	e[3] = (struct pol_acl_entry4){0, 0, 7, 0};
	e[4] = (struct pol_acl_entry4){IP(11, 0, 0, 0), 8, POL_ACL_DENY, 0};
	e[5] = (struct pol_acl_entry4){IP(11, 9, 9, 9), 8, POL_ACL_ALLOW, 0};
	CHECK(a && pol_acl_build4(a, e, 6) == 0);
	CHECK(pol_acl_lookup4(a, IP(10, 9, 9, 9), &v) == 0 &&
	      v == POL_ACL_DENY);
	CHECK(pol_acl_lookup4(a, IP(10, 1, 2, 4), &v) == 0 &&
	      v == POL_ACL_ALLOW);
	CHECK(pol_acl_lookup4(a, IP(10, 1, 2, 3), &v) == 0 &&
	      v == POL_ACL_DENY);
	CHECK(pol_acl_lookup4(a, IP(192, 0, 2, 1), &v) == 0 && v == 7);
	CHECK(pol_acl_lookup4(a, IP(11, 1, 1, 1), &v) == 0 &&
	      v == POL_ACL_ALLOW);
	CHECK(pol_acl_count(a) == 5);
	CHECK(pol_acl_add4(a, IP(1, 2, 3, 4), 32, 1) == -EINVAL);
	CHECK(pol_acl_build4(a, e, 1) == -EINVAL);
	pol_acl_free(a);
	a = pol_acl_create(0, 0, SOCKET_ID_ANY);
	CHECK(a && pol_acl_build4(a, e, 0) == 0);
	CHECK(pol_acl_lookup4(a, IP(10, 0, 0, 1), &v) == -ENOENT);
	pol_acl_free(a);

	/* a million */
	for (uint32_t i = 0; i < N; i++) {
		static const uint8_t ds[] = {8,	 12, 16, 20, 22, 24, 24,
					     24, 26, 28, 32, 32, 32, 32};
		uint8_t d = ds[rnd() % sizeof(ds)];
		uint32_t ip = (uint32_t)rnd() &
			      (d ? ~0u << (32 - d) : 0);

		e[i].ip = ip;
		e[i].depth = d;
		e[i].value = d;
		st_set[st_slot(((uint64_t)ip << 8 | d) + 1)] =
			((uint64_t)ip << 8 | d) + 1;
	}
	a = pol_acl_create(0, 0, SOCKET_ID_ANY);
	t0 = now_s();
	CHECK(a && pol_acl_build4(a, e, N) == 0);
	printf("test_acl: static table: 1000000 prefixes painted in %.2f s, "
	       "%u distinct, %zu MiB mapped\n",
	       now_s() - t0, a ? pol_acl_count(a) : 0,
	       a ? pol_acl_memory(a) >> 20 : 0);
	for (uint32_t s = 0; a && s < 2000000; s++) {
		uint32_t ip = (uint32_t)rnd(), want = UINT32_MAX, got;
		int d;

		for (d = 32; d >= 0; d--) {
			uint32_t m = ip & (d ? ~0u << (32 - d) : 0);
			uint64_t k = ((uint64_t)m << 8 | (uint32_t)d) + 1;

			if (st_set[st_slot(k)] == k) {
				want = (uint32_t)d;
				break;
			}
		}
		if (pol_acl_lookup4(a, ip, &got) != 0)
			got = UINT32_MAX;
		if (got != want)
			bad++;
	}
	CHECK(bad == 0);
	pol_acl_free(a);
out:
	free(e);
	free(st_set);
}

int main(int argc, char **argv)
{
	char prefix[64];
	char *eal[] = {argv[0], "--no-huge", "-m",
		       "512",	"--no-pci",  "--no-shconf",
		       "-l",	"0",	     "--log-level=lib.eal:error",
		       prefix,	NULL};

	snprintf(prefix, sizeof(prefix), "--file-prefix=mxg_t_acl_%d",
		 (int)getpid());
	if (rte_eal_init(10, eal) < 0) {
		fprintf(stderr, "test_acl: rte_eal_init failed\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "block6") == 0) { /* one case */
		test_block6();
		goto done;
	}
	test_lpm_basics();
	test_capacity();
	test_ipv6();
	test_block();
	test_block_random();
	test_block6();
	test_million();
	test_static();
done:
	printf("test_acl: %u checks, %u failures\n", checks, failures);
	rte_eal_cleanup();
	return failures ? 1 : 0;
}
