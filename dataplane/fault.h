/*
 * fault.h - port-level fault injector for tests: drops, duplicates,
 * reorders and delays frames by percentage, reproducibly from a seed.
 * Off by default (all rates zero: fault_apply() is then a no-op).
 *
 * Ownership: one struct fault per direction per dataplane lcore; only that
 * lcore touches it. Never blocks; duplicates are deep copies
 * (rte_pktmbuf_copy) so the stack may modify either; delayed and held
 * frames are bounded (FAULT_HOLD_MAX) and freed by fault_destroy().
 */
#ifndef MXG_FAULT_H
#define MXG_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#define FAULT_HOLD_MAX 256
#define FAULT_IN_MAX 64   /* frames per fault_apply() call */

struct fault_conf {
	/* Rates in hundredths of a percent (0..10000): 500 = 5%. */
	uint32_t drop, dup, reorder, delay;
	uint32_t delay_us;        /* how long a delayed frame is held */
	uint64_t seed;
};

struct fault_stats {
	uint64_t dropped, duplicated, reordered, delayed;
};

struct fault;

/* Parse "drop=5,dup=1,reorder=2,delay=1,delay_us=2000,seed=42" (percent,
 * decimals allowed). Returns 0 or -EINVAL with *bad naming the bad key. */
int fault_parse(const char *s, struct fault_conf *fc, const char **bad);

bool fault_enabled(const struct fault_conf *fc);

/* seed_salt distinguishes cores and directions from the same conf. */
struct fault *fault_create(const struct fault_conf *fc, uint64_t seed_salt,
			   struct rte_mempool *copy_pool, int socket);
void fault_destroy(struct fault *f);

/* Apply faults to pkts[0..n) in place. Returns the number of frames to
 * pass on, written back to pkts[] (capacity cap >= n; duplicates and
 * released delayed frames may make the result larger than n, never larger
 * than cap). Held frames are released on later calls once due. */
uint16_t fault_apply(struct fault *f, struct rte_mbuf **pkts, uint16_t n,
		     uint16_t cap, uint64_t now_us);

const struct fault_stats *fault_stats(const struct fault *f);

#endif /* MXG_FAULT_H */
