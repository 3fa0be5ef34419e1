/*
 * test_counters.c - control/counters.c, the one module the stats file,
 * admin status and Prometheus read counters through: every core's
 * counters are copied and summed field by field (stack, glue, services,
 * gateway, fault injectors, latency histogram); a core without a gateway
 * has no gateway counters or push state; after teardown the kept copies
 * are read, gateway counters listed, push state not.
 *
 * The per-core objects are opaque to control/: stand-ins below return
 * counters that differ per core and per field, so a field summed from
 * the wrong place, or twice, shows.
 */
#include <stdio.h>
#include <string.h>

#include "control/counters.h"

static int failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #c);                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

/* Stand-ins: opaque handles are small integers cast to pointers. */
static struct net_stats net[3];
static struct svc_stats svc[3];
static struct gw_stats gw[3];
static struct fault_stats fault[6];
static uint64_t latency[3][GW_LAT_BUCKETS];

static int id(const void *p)
{
	return (int)(uintptr_t)p - 1;
}

const struct net_stats *net_stack_stats(const struct net_stack *st)
{
	return &net[id(st)];
}

const struct svc_stats *svc_stats(const struct svc_state *s)
{
	return &svc[id(s)];
}

const struct gw_stats *gw_core_stats(const struct gw_core *gc)
{
	return &gw[id(gc)];
}

void gw_core_push_state(const struct gw_core *gc, struct gw_push_state *st)
{
	memset(st, 0, sizeof(*st));
	st->generation = 100 + (uint64_t)id(gc);
	st->seq = 7;
}

const uint64_t *gw_core_latency(const struct gw_core *gc, uint64_t *sum_us)
{
	*sum_us = 1000 * (uint64_t)(id(gc) + 1);
	return latency[id(gc)];
}

const struct fault_stats *fault_stats(const struct fault *f)
{
	return &fault[id(f)];
}

#define H(i) ((void *)(uintptr_t)((i) + 1))

int main(void)
{
	static struct lcore_ctx cores[3];
	static struct counters c;
	static struct counters_kept kept;

	for (int k = 0; k < 3; k++) {
		net[k].tcp_seg_in = 10 + k;
		net[k].mbufs_held = 1000 * (k + 1);
		net[k].drops[NET_DROP_MAX - 1] = 3;
		svc[k].echo_bytes = 100 * (k + 1);
		gw[k].messages_accepted = 5 + k;
		gw[k].pushes_failed = 1;
		fault[2 * k].dropped = 1;
		fault[2 * k + 1].dropped = 2;
		fault[2 * k + 1].delayed = 4;
		for (int i = 0; i < GW_LAT_BUCKETS; i++)
			latency[k][i] = (uint64_t)(k + i);
		cores[k].lcore_id = 1 + k;
		cores[k].stack = H(k);
		cores[k].svc = H(k);
		cores[k].fault_rx = H(2 * k);
		cores[k].fault_tx = H(2 * k + 1);
		cores[k].stats.loops = 1u << k;
		cores[k].stats.replicated = 9;
	}
	cores[0].gw = H(0);
	cores[2].gw = H(2); /* core 1 has no gateway */

	counters_read(cores, 3, &kept, &c);
	CHECK(c.n_cores == 3);
	CHECK(c.total.net.tcp_seg_in == 10 + 11 + 12);
	CHECK(c.total.net.mbufs_held == 6000);
	CHECK(c.total.net.drops[NET_DROP_MAX - 1] == 9);
	CHECK(c.total.lcore.loops == 7 && c.total.lcore.replicated == 27);
	CHECK(c.total.svc.echo_bytes == 600);
	CHECK(c.total.fault.dropped == 9 && c.total.fault.delayed == 12);
	/* gateway counters of cores 0 and 2 only */
	CHECK(c.total.gw.messages_accepted == 5 + 7);
	CHECK(c.total.gw.pushes_failed == 2);
	CHECK(c.core[1].has_gateway == false && c.core[1].has_push == false);
	CHECK(c.core[1].gw.messages_accepted == 0);
	CHECK(c.core[2].has_push && c.core[2].push.generation == 102);
	CHECK(c.total.latency[3] == (0 + 3) + (2 + 3));
	CHECK(c.total.latency_sum_us == 1000 + 3000);
	CHECK(c.core[1].lcore_id == 2 && c.core[1].net.tcp_seg_in == 11);

	/* Teardown: copies kept, then the objects are gone. */
	for (uint16_t k = 0; k < 3; k++)
		counters_keep(&cores[k], &kept, k);
	kept.torn_down = true;
	for (int k = 0; k < 3; k++) {
		cores[k].stack = NULL;
		cores[k].svc = NULL;
		cores[k].gw = NULL;
		cores[k].fault_rx = cores[k].fault_tx = NULL;
	}
	memset(&c, 0xff, sizeof(c));
	counters_read(cores, 3, &kept, &c);
	CHECK(c.total.net.tcp_seg_in == 33 && c.total.gw.messages_accepted == 12);
	CHECK(c.total.fault.dropped == 9);
	for (int k = 0; k < 3; k++)
		CHECK(c.core[k].has_gateway && !c.core[k].has_push);

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("counters: ok\n");
	return 0;
}
