/*
 * test_fault.c - the fault injector drops, duplicates, reorders and delays
 * at the configured rates, reproducibly from its seed, and never loses or
 * leaks an mbuf it did not mean to.
 */
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "dataplane/fault.h"

static int failures;
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static struct rte_mempool *pool;

/* Send N numbered frames through f in bursts of 8; record the order. */
static unsigned pass_frames(struct fault *f, unsigned n, uint32_t *seen,
			    unsigned cap)
{
	unsigned got = 0, next = 0;
	uint64_t now = 0;

	while (next < n || now < 1000000) {
		struct rte_mbuf *b[FAULT_IN_MAX];
		uint16_t k = 0, out;

		while (k < 8 && next < n) {
			b[k] = rte_pktmbuf_alloc(pool);
			*rte_pktmbuf_mtod(b[k], uint32_t *) = next++;
			b[k]->data_len = b[k]->pkt_len = 4;
			k++;
		}
		out = fault_apply(f, b, k, FAULT_IN_MAX, now);
		for (uint16_t i = 0; i < out; i++) {
			if (got < cap)
				seen[got] = *rte_pktmbuf_mtod(b[i], uint32_t *);
			got++;
			rte_pktmbuf_free(b[i]);
		}
		now += 100;
	}
	return got;
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf",
		       "-m", "64", "-l", "0", "--log-level=error", NULL};
	struct fault_conf fc;
	const char *bad = NULL;
	static uint32_t seen[30000], seen2[30000];
	struct fault *f;
	unsigned got, got2, inversions = 0;

	(void)argc;
	if (rte_eal_init(9, eal) < 0)
		return 1;
	pool = rte_pktmbuf_pool_create("t", 4096, 0, 0, 256, 0);

	CHECK(fault_parse("drop=5,reorder=2,dup=1,seed=7", &fc, &bad) == 0);
	CHECK(fc.drop == 500 && fc.reorder == 200 && fc.dup == 100);
	CHECK(fault_parse("drop=5,bogus=1", &fc, &bad) < 0);
	CHECK(fault_parse("drop=500", &fc, &bad) < 0);

	/* Disabled: identity. */
	memset(&fc, 0, sizeof(fc));
	f = fault_create(&fc, 0, pool, 0);
	got = pass_frames(f, 1000, seen, 30000);
	CHECK(got == 1000);
	for (unsigned i = 0; i < 1000; i++)
		CHECK(seen[i] == i);
	fault_destroy(f);

	/* 5% drop, 2% reorder, 1% dup over 20000 frames. */
	fault_parse("drop=5,reorder=2,dup=1,seed=7", &fc, &bad);
	f = fault_create(&fc, 1, pool, 0);
	got = pass_frames(f, 20000, seen, 30000);
	{
		const struct fault_stats *s = fault_stats(f);

		printf("dropped %llu dup %llu reordered %llu got %u\n",
		       (unsigned long long)s->dropped,
		       (unsigned long long)s->duplicated,
		       (unsigned long long)s->reordered, got);
		CHECK(s->dropped > 800 && s->dropped < 1200);
		CHECK(s->duplicated > 120 && s->duplicated < 280);
		CHECK(s->reordered > 280 && s->reordered < 520);
		CHECK(got == 20000 - s->dropped + s->duplicated);
	}
	for (unsigned i = 1; i < got && i < 30000; i++)
		if (seen[i] < seen[i - 1])
			inversions++;
	CHECK(inversions > 200);
	fault_destroy(f);

	/* Same seed, same salt: same result. */
	f = fault_create(&fc, 1, pool, 0);
	got2 = pass_frames(f, 20000, seen2, 30000);
	CHECK(got2 == got);
	CHECK(memcmp(seen, seen2, sizeof(uint32_t) * (got < 30000 ? got : 30000)) == 0);
	fault_destroy(f);

	/* Delay holds frames for delay_us, then releases them all. */
	fault_parse("delay=50,delay_us=500,seed=3", &fc, &bad);
	f = fault_create(&fc, 0, pool, 0);
	got = pass_frames(f, 1000, seen, 30000);
	CHECK(got == 1000);
	CHECK(fault_stats(f)->delayed > 350);
	fault_destroy(f);

	CHECK(rte_mempool_avail_count(pool) == 4096);
	printf("test_fault: %s (%d failures)\n", failures ? "FAIL" : "ok",
	       failures);
	return failures ? 1 : 0;
}
