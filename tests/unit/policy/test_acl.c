/*
 * test_acl.c - CIDR tables (dataplane/policy/acl.h): longest-prefix
 * semantics, allow inside deny, /0 and /32, replace and delete, IPv6,
 * 1,000,000 random prefixes checked against an independent oracle, and
 * the per-core table of pushed blocks with expiry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "dataplane/policy/acl.h"

static int fails, checks;

#define CHECK(c, ...)                                                          \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			fails++;                                               \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static uint32_t look(const struct pol_acl *a, uint32_t ip)
{
	uint32_t v = 0;

	return pol_acl_lookup4(a, ip, &v) == 0 ? v : 0;
}

/* oracle: set of (network, depth) */
static uint64_t *oset;
static uint32_t omask;

static uint64_t okey(uint32_t ip, uint8_t d)
{
	return ((uint64_t)ip << 8 | d) + 1;
}

static uint32_t ohash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (uint32_t)k;
}

static void oadd(uint32_t ip, uint8_t d)
{
	uint64_t k = okey(ip, d);
	uint32_t i = ohash(k) & omask;

	while (oset[i] && oset[i] != k)
		i = (i + 1) & omask;
	oset[i] = k;
}

static bool ohas(uint32_t ip, uint8_t d)
{
	uint64_t k = okey(ip, d);
	uint32_t i = ohash(k) & omask;

	while (oset[i]) {
		if (oset[i] == k)
			return true;
		i = (i + 1) & omask;
	}
	return false;
}

static uint32_t mask(uint32_t ip, uint8_t d)
{
	return d == 0 ? 0 : d == 32 ? ip : ip & ~(0xffffffffu >> d);
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf",
		       "-m", "1800", "-l", "0", "--log-level=error", NULL};
	struct pol_acl *a;
	struct pol_block *b;
	const uint32_t N = 1000000;
	uint32_t bad = 0, added = 0;
	uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	uint8_t q6[16];
	uint32_t v;
	clock_t t0;

	(void)argc;
	if (rte_eal_init(9, eal) < 0)
		return 1;

	a = pol_acl_create(64, 16, SOCKET_ID_ANY);
	CHECK(a != NULL, "create");
	CHECK(look(a, IP(10, 1, 2, 3)) == 0, "empty table misses");
	CHECK(pol_acl_add4(a, IP(10, 0, 0, 0), 8, POL_ACL_DENY) == 0, "add /8");
	CHECK(pol_acl_add4(a, IP(10, 1, 2, 0), 24, POL_ACL_ALLOW) == 0,
	      "allow inside");
	CHECK(pol_acl_add4(a, IP(10, 1, 2, 3), 32, POL_ACL_DENY) == 0, "/32");
	CHECK(look(a, IP(10, 9, 9, 9)) == POL_ACL_DENY, "in /8");
	CHECK(look(a, IP(10, 1, 2, 4)) == POL_ACL_ALLOW, "allow wins inside");
	CHECK(look(a, IP(10, 1, 2, 3)) == POL_ACL_DENY, "/32 wins");
	CHECK(look(a, IP(11, 0, 0, 0)) == 0, "outside");
	CHECK(pol_acl_count(a) == 3, "count %u", pol_acl_count(a));
	CHECK(pol_acl_add4(a, IP(10, 1, 2, 77), 24, POL_ACL_DENY) == 0,
	      "replace (host bits ignored)");
	CHECK(look(a, IP(10, 1, 2, 4)) == POL_ACL_DENY && pol_acl_count(a) == 3,
	      "replaced, count unchanged");
	CHECK(pol_acl_del4(a, IP(10, 1, 2, 0), 24) == 0, "delete");
	CHECK(pol_acl_del4(a, IP(10, 1, 2, 0), 24) == -ENOENT, "delete twice");
	CHECK(look(a, IP(10, 1, 2, 4)) == POL_ACL_DENY, "falls back to /8");
	CHECK(pol_acl_add4(a, 0, 0, POL_ACL_ALLOW) == 0, "/0");
	CHECK(look(a, IP(203, 0, 113, 9)) == POL_ACL_ALLOW, "/0 covers all");
	CHECK(look(a, IP(10, 5, 5, 5)) == POL_ACL_DENY, "longer still wins");
	CHECK(pol_acl_add4(a, 1, 33, 1) == -EINVAL, "depth 33");
	CHECK(pol_acl_add4(a, 1, 8, 0) == -EINVAL, "value 0 is reserved");
	CHECK(pol_acl_add6(a, v6, 32, POL_ACL_DENY) == 0, "add v6 /32");
	memcpy(q6, v6, 16);
	q6[15] = 1;
	CHECK(pol_acl_lookup6(a, q6, &v) == 0 && v == POL_ACL_DENY, "v6 hit");
	q6[3] = 0xb9;
	CHECK(pol_acl_lookup6(a, q6, &v) == -ENOENT, "v6 miss");
	CHECK(pol_acl_memory(a) > (64u << 20), "memory reported");
	pol_acl_free(a);

	/* 1,000,000 random prefixes, value = depth; the oracle knows which
	 * (network, depth) pairs exist, so the longest match of any address
	 * is the largest depth d with (addr masked to d, d) in the set. */
	omask = (1u << 22) - 1;
	oset = calloc((size_t)omask + 1, sizeof(*oset));
	a = pol_acl_create(N, 0, SOCKET_ID_ANY);
	CHECK(a && oset, "create 1M");
	t0 = clock();
	for (uint32_t i = 0; i < N && a; i++) {
		static const uint8_t depths[] = {8, 12, 16, 20, 22, 24, 24, 24,
						 26, 28, 32, 32, 32, 32};
		uint8_t d = depths[rnd() % sizeof(depths)];
		uint32_t ip = mask((uint32_t)rnd(), d);

		if (pol_acl_add4(a, ip, d, d) != 0) {
			bad++;
			continue;
		}
		oadd(ip, d);
		added++;
	}
	printf("acl: 1,000,000 adds in %.2f s (%u failed: tbl8 groups), "
	       "%u prefixes, %zu MiB\n",
	       (double)(clock() - t0) / CLOCKS_PER_SEC, bad,
	       a ? pol_acl_count(a) : 0, a ? pol_acl_memory(a) >> 20 : 0);
	CHECK(bad == 0, "every add succeeded (%u failed)", bad);
	bad = 0;
	for (uint32_t s = 0; s < 2000000 && a; s++) {
		uint32_t ip = (uint32_t)rnd(), want = 0;

		for (int d = 32; d >= 1; d--)
			if (ohas(mask(ip, (uint8_t)d), (uint8_t)d)) {
				want = (uint32_t)d;
				break;
			}
		if (look(a, ip) != want)
			bad++;
	}
	CHECK(bad == 0, "2,000,000 random lookups agree with the oracle "
	      "(%u differ)", bad);
	pol_acl_free(a);
	free(oset);

	/* pushed blocks */
	b = pol_block_create(1024, SOCKET_ID_ANY);
	CHECK(b != NULL, "block table");
	CHECK(pol_block_lookup4(b, IP(1, 2, 3, 4), 0) == 0, "empty");
	CHECK(pol_block_add4(b, IP(198, 18, 0, 64), 26, POL_ACL_DENY, 1000) == 0,
	      "block with expiry");
	CHECK(pol_block_add4(b, IP(198, 18, 0, 66), 32, POL_ACL_ALLOW, 0) == 0,
	      "allow inside, no expiry");
	CHECK(pol_block_lookup4(b, IP(198, 18, 0, 65), 999) == POL_ACL_DENY,
	      "before expiry");
	CHECK(pol_block_lookup4(b, IP(198, 18, 0, 65), 1000) == 0,
	      "from the microsecond it expires");
	CHECK(pol_block_lookup4(b, IP(198, 18, 0, 66), 5000) == POL_ACL_ALLOW,
	      "the allow has no expiry");
	CHECK(pol_block_count(b) == 2, "two entries");
	CHECK(pol_block_expire(b, 1000, 64) == 1 && pol_block_count(b) == 1,
	      "expire removes the expired entry only");
	CHECK(pol_block_add4(b, IP(198, 18, 0, 66), 32, POL_ACL_DENY, 0) == 0 &&
		      pol_block_count(b) == 1 &&
		      pol_block_lookup4(b, IP(198, 18, 0, 66), 0) ==
			      POL_ACL_DENY,
	      "re-adding replaces action and expiry");
	CHECK(pol_block_del4(b, IP(198, 18, 0, 66), 32) == 0 &&
		      pol_block_lookup4(b, IP(198, 18, 0, 66), 0) == 0,
	      "delete");
	CHECK(pol_block_del4(b, IP(198, 18, 0, 66), 32) == -ENOENT,
	      "delete twice");
	for (uint32_t i = 0; i < 1024; i++)
		pol_block_add4(b, IP(100, 64, i >> 8, i & 255), 32,
			       POL_ACL_DENY, 0);
	CHECK(pol_block_count(b) == 1024 &&
		      pol_block_add4(b, IP(9, 9, 9, 9), 32, POL_ACL_DENY, 0) ==
			      -ENOSPC,
	      "the table is bounded");
	pol_block_free(b);

	printf("acl: %d checks, %d failures\n", checks, fails);
	return fails ? 1 : 0;
}
