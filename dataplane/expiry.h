/*
 * expiry.h - bucketed expiry (a hashed timer wheel) over small integer ids.
 *
 * Owner: whoever embeds a struct mxg_expiry; one thread (the gateway keeps
 * one per dataplane lcore for its session time-outs). Never allocates
 * after mxg_expiry_init, never blocks; no DPDK, so unit tests use it alone.
 *
 * Why: the gateway used to look at every session every 20 ms to find the
 * few whose deadline had passed; at 100,000 idle sessions that walk alone
 * touched 100,000 sessions (and their engines) fifty times a second. Here
 * an id is filed in the slot of its due tick and only the slots whose
 * tick has come are visited, so idle sessions cost nothing per poll.
 *
 * Rules:
 *  - Time is in milliseconds, cut into ticks of tick_ms; nslots (a power
 *    of two) slots cover nslots * tick_ms; a due time further out sits in
 *    the slot of its tick modulo nslots and is passed over (left in place)
 *    until its round comes.
 *  - An id fires no later than the first mxg_expiry_run whose now is one
 *    tick past its due time rounded up, and never before its tick.
 *  - Lazy re-arming: arming an id that is armed for an earlier or equal
 *    tick leaves it where it is (it fires early; the caller, seeing the
 *    real deadline not reached, arms it again). Arming for an earlier tick
 *    moves it. This keeps the common case (a deadline pushed later by
 *    client progress) to a compare, without touching the lists.
 */
#ifndef MXG_EXPIRY_H
#define MXG_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#define MXG_EXPIRY_NONE UINT32_MAX

struct mxg_expiry_node {
	uint32_t next, prev; /* ids in the same slot; NONE ends */
	uint64_t due_tick;   /* valid while armed */
	bool armed;
};

struct mxg_expiry {
	uint32_t nslots; /* power of two */
	uint32_t tick_ms;
	uint32_t nids;
	uint32_t armed;		      /* ids armed now */
	uint64_t next_tick;	      /* first tick not yet visited */
	uint32_t *head;		      /* per slot: first id or NONE */
	struct mxg_expiry_node *node; /* per id */
};

/* Sets e up for ids 0..nids-1 with nslots slots (rounded up to a power
 * of two) of tick_ms each, starting at now_ms. Returns 0 or -ENOMEM /
 * -EINVAL. */
int mxg_expiry_init(struct mxg_expiry *e, uint32_t nids, uint32_t nslots,
		    uint32_t tick_ms, uint64_t now_ms);

/* Frees what mxg_expiry_init allocated (e may be zeroed or half set up). */
void mxg_expiry_fini(struct mxg_expiry *e);

/* Arms id to fire at due_ms (see the lazy rule above). A due time
 * already passed fires at the next run. */
void mxg_expiry_arm(struct mxg_expiry *e, uint32_t id, uint64_t due_ms);

/* Disarms id (nothing if it is not armed). */
void mxg_expiry_cancel(struct mxg_expiry *e, uint32_t id);

static inline bool mxg_expiry_armed(const struct mxg_expiry *e, uint32_t id)
{
	return e->node[id].armed;
}

/* Visits the slots of the ticks up to now_ms, disarms the ids due and
 * writes them to out (at most max). When out fills up, the rest stays
 * for the next call (which starts at the same slot). Returns the number
 * written. */
uint32_t mxg_expiry_run(struct mxg_expiry *e, uint64_t now_ms, uint32_t *out,
			uint32_t max);

#endif /* MXG_EXPIRY_H */
