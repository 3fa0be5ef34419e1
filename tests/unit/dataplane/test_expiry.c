/*
 * test_expiry.c - dataplane/expiry.c (bucketed expiry of session
 * time-outs) against a plain array of deadlines: every id fires in the
 * tick its deadline falls due (never before it, never a tick late), a
 * moved or cancelled id does not fire at its old time, deadlines beyond
 * the wheel's span wait for their round, a run that fills its output
 * goes on at the next call, and a run after a long pause catches up.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/expiry.h"

static int fails;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #c);                                 \
			fails++;                                               \
		}                                                              \
	} while (0)

#define NID 2000
#define TICK 20
#define NSLOT 64 /* span 1,280 ms: many deadlines need several rounds */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Random arms, moves (earlier and later), cancels and runs over 60 s of
 * simulated time, against a model that knows each id's deadline. With
 * lazy re-arming an id may fire early after its deadline moved later: the
 * caller (like the gateway) then arms it again, which the model allows. */
static void random_model(void)
{
	static uint64_t due[NID]; /* 0 = not armed in the model */
	/* earliest deadline armed since the id last fired or was cancelled:
	 * the wheel may fire it from then on, never before */
	static uint64_t lo[NID];
	static uint32_t out[NID];
	struct mxg_expiry e;
	uint64_t now = 1000;
	uint64_t fired = 0, early = 0;

	CHECK(mxg_expiry_init(&e, NID, NSLOT, TICK, now) == 0);
	memset(due, 0, sizeof(due));
	memset(lo, 0, sizeof(lo));
	while (now < 61000) {
		for (int k = 0; k < 40; k++) {
			uint32_t id = (uint32_t)(rnd() % NID);
			uint64_t r = rnd() % 100;

			if (r < 10) {
				mxg_expiry_cancel(&e, id);
				due[id] = lo[id] = 0;
			} else {
				uint64_t d = now + rnd() % 5000;

				mxg_expiry_arm(&e, id, d);
				/* the model's deadline is the real one */
				due[id] = d;
				if (!lo[id] || d < lo[id])
					lo[id] = d;
			}
		}
		now += 1 + rnd() % 37;
		uint32_t n = mxg_expiry_run(&e, now, out, NID);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = out[i];

			CHECK(due[id] != 0);  /* a cancelled id never fires */
			CHECK(lo[id] <= now); /* never before a deadline */
			lo[id] = 0;
			fired++;
			if (due[id] > now) {
				/* fired early after a later re-arm: the
				 * caller arms it again */
				early++;
				mxg_expiry_arm(&e, id, due[id]);
				lo[id] = due[id];
			} else {
				due[id] = 0;
			}
		}
		/* nothing due before the last completed tick is left */
		for (uint32_t id = 0; id < NID; id++)
			if (due[id] && due[id] + TICK <= now / TICK * TICK) {
				CHECK(!"an id is late");
				fprintf(stderr, "id %u due %llu now %llu\n", id,
					(unsigned long long)due[id],
					(unsigned long long)now);
				due[id] = lo[id] = 0;
				mxg_expiry_cancel(&e, id);
			}
		uint32_t armed = 0;
		for (uint32_t id = 0; id < NID; id++)
			armed += due[id] != 0;
		CHECK(armed == e.armed);
	}
	printf("random: %llu fired, %llu early after a later re-arm\n",
	       (unsigned long long)fired, (unsigned long long)early);
	CHECK(fired > 10000);
	mxg_expiry_fini(&e);
}

static void exact_ticks(void)
{
	struct mxg_expiry e;
	uint32_t out[8];

	CHECK(mxg_expiry_init(&e, 8, NSLOT, TICK, 0) == 0);
	mxg_expiry_arm(&e, 1, 100);		   /* tick 5 */
	mxg_expiry_arm(&e, 2, 101);		   /* tick 6 (rounded up) */
	mxg_expiry_arm(&e, 3, 100 + NSLOT * TICK); /* same slot, next round */
	CHECK(mxg_expiry_run(&e, 99, out, 8) == 0);
	CHECK(mxg_expiry_run(&e, 100, out, 8) == 1 && out[0] == 1);
	CHECK(mxg_expiry_run(&e, 119, out, 8) == 0);
	CHECK(mxg_expiry_run(&e, 120, out, 8) == 1 && out[0] == 2);
	CHECK(mxg_expiry_run(&e, 100 + NSLOT * TICK - 1, out, 8) == 0);
	CHECK(mxg_expiry_run(&e, 100 + NSLOT * TICK, out, 8) == 1 &&
	      out[0] == 3);
	/* moved earlier: fires at the new time, not the old one */
	mxg_expiry_arm(&e, 4, 5000);
	mxg_expiry_arm(&e, 4, 3000);
	CHECK(mxg_expiry_run(&e, 3000, out, 8) == 1 && out[0] == 4);
	CHECK(mxg_expiry_run(&e, 6000, out, 8) == 0);
	/* a passed deadline fires at the next tick */
	mxg_expiry_arm(&e, 5, 10);
	CHECK(mxg_expiry_run(&e, 6000, out, 8) == 0);
	CHECK(mxg_expiry_run(&e, 6020, out, 8) == 1 && out[0] == 5);
	/* a full output: the rest at the next call, same now */
	for (uint32_t i = 0; i < 8; i++)
		mxg_expiry_arm(&e, i, 7000);
	CHECK(mxg_expiry_run(&e, 7000, out, 3) == 3);
	CHECK(mxg_expiry_run(&e, 7000, out, 3) == 3);
	CHECK(mxg_expiry_run(&e, 7000, out, 8) == 2);
	CHECK(e.armed == 0);
	/* a long pause (many rounds): everything due fires in one run */
	mxg_expiry_arm(&e, 6, 8000);
	mxg_expiry_arm(&e, 7, 500000);
	CHECK(mxg_expiry_run(&e, 400000, out, 8) == 1 && out[0] == 6);
	CHECK(mxg_expiry_run(&e, 500000, out, 8) == 1 && out[0] == 7);
	mxg_expiry_fini(&e);
}

int main(void)
{
	exact_ticks();
	random_model();
	if (fails) {
		fprintf(stderr, "test_expiry: %d failures\n", fails);
		return 1;
	}
	printf("test_expiry: ok\n");
	return 0;
}
