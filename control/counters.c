/*
 * counters.c - reads and sums the dataplane's per-core counters for every
 * rendering (stats file, admin replies, Prometheus): see counters.h.
 *
 * Ownership: main lcore only; reads other cores' counters without locks
 * (word-sized loads), never writes them. Never allocates.
 */
#include "control/counters.h"

#include <string.h>

static void read_core(const struct lcore_ctx *lc, struct counters_core *c)
{
	memset(c, 0, sizeof(*c));
	c->lcore_id = lc->lcore_id;
	if (lc->stack)
		c->net = *net_stack_stats(lc->stack);
	c->lcore = lc->stats;
	if (lc->svc)
		c->svc = *svc_stats(lc->svc);
	if (lc->gw) {
		c->has_gateway = true;
		c->has_push = true;
		c->gw = *gw_core_stats(lc->gw);
		gw_core_push_state(lc->gw, &c->push);
		{
			uint64_t sum;
			const uint64_t *h = gw_core_latency(lc->gw, &sum);

			memcpy(c->latency, h, sizeof(c->latency));
			c->latency_sum_us = sum;
		}
	}
	for (int j = 0; j < 2; j++) {
		const struct fault *f = j ? lc->fault_tx : lc->fault_rx;
		const struct fault_stats *x;

		if (!f)
			continue;
		x = fault_stats(f);
		c->fault.dropped += x->dropped;
		c->fault.duplicated += x->duplicated;
		c->fault.reordered += x->reordered;
		c->fault.delayed += x->delayed;
	}
}

void counters_keep(const struct lcore_ctx *lc, struct counters_kept *kept,
		   uint16_t k)
{
	read_core(lc, &kept->core[k]);
	/* A torn-down core lists its gateway counters (zero without one),
	 * but no push state: its gateway is gone. */
	kept->core[k].has_gateway = true;
	kept->core[k].has_push = false;
}

static void add(struct counters_core *t, const struct counters_core *c)
{
#define SUM(f) t->net.f += c->net.f;
	NET_STATS_FIELDS(SUM)
#undef SUM
	for (int d = 0; d < NET_DROP_MAX; d++)
		t->net.drops[d] += c->net.drops[d];
#define SUM(f) t->lcore.f += c->lcore.f;
	LCORE_STATS_FIELDS(SUM)
#undef SUM
#define SUM(f) t->svc.f += c->svc.f;
	SVC_STATS_FIELDS(SUM)
#undef SUM
#define SUM(f) t->gw.f += c->gw.f;
	GW_STATS_FIELDS(SUM)
#undef SUM
	t->fault.dropped += c->fault.dropped;
	t->fault.duplicated += c->fault.duplicated;
	t->fault.reordered += c->fault.reordered;
	t->fault.delayed += c->fault.delayed;
	for (int i = 0; i < GW_LAT_BUCKETS; i++)
		t->latency[i] += c->latency[i];
	t->latency_sum_us += c->latency_sum_us;
	t->has_gateway |= c->has_gateway;
}

void counters_read(const struct lcore_ctx *cores, uint16_t n_cores,
		   const struct counters_kept *kept, struct counters *out)
{
	memset(&out->total, 0, sizeof(out->total));
	out->n_cores = n_cores;
	for (uint16_t k = 0; k < n_cores; k++) {
		if (kept && kept->torn_down)
			out->core[k] = kept->core[k];
		else
			read_core(&cores[k], &out->core[k]);
		add(&out->total, &out->core[k]);
	}
}
