/*
 * expiry.c - bucketed expiry over small integer ids (see expiry.h).
 *
 * Owner: the thread that owns the struct mxg_expiry. Allocates only in
 * mxg_expiry_init; every other call is O(1) per id touched.
 */
#include "dataplane/expiry.h"

#include <errno.h>
#include <stdlib.h>

int mxg_expiry_init(struct mxg_expiry *e, uint32_t nids, uint32_t nslots,
		    uint32_t tick_ms, uint64_t now_ms)
{
	uint32_t n = 1;

	if (nids == 0 || nids == MXG_EXPIRY_NONE || nslots == 0 ||
	    nslots > (1u << 30) || tick_ms == 0)
		return -EINVAL;
	while (n < nslots)
		n <<= 1;
	e->nslots = n;
	e->tick_ms = tick_ms;
	e->nids = nids;
	e->armed = 0;
	e->next_tick = now_ms / tick_ms + 1;
	e->head = malloc(sizeof(*e->head) * n);
	e->node = calloc(nids, sizeof(*e->node));
	if (!e->head || !e->node) {
		mxg_expiry_fini(e);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		e->head[i] = MXG_EXPIRY_NONE;
	return 0;
}

void mxg_expiry_fini(struct mxg_expiry *e)
{
	free(e->head);
	free(e->node);
	e->head = NULL;
	e->node = NULL;
}

static void unlink_id(struct mxg_expiry *e, uint32_t id)
{
	struct mxg_expiry_node *n = &e->node[id];

	if (n->prev != MXG_EXPIRY_NONE)
		e->node[n->prev].next = n->next;
	else
		e->head[n->due_tick & (e->nslots - 1)] = n->next;
	if (n->next != MXG_EXPIRY_NONE)
		e->node[n->next].prev = n->prev;
	n->armed = false;
	e->armed--;
}

void mxg_expiry_cancel(struct mxg_expiry *e, uint32_t id)
{
	if (e->node[id].armed)
		unlink_id(e, id);
}

void mxg_expiry_arm(struct mxg_expiry *e, uint32_t id, uint64_t due_ms)
{
	struct mxg_expiry_node *n = &e->node[id];
	/* rounded up: an id never fires before its due time */
	uint64_t t = due_ms / e->tick_ms + (due_ms % e->tick_ms != 0);
	uint32_t slot;

	if (t < e->next_tick)
		t = e->next_tick;
	if (n->armed) {
		if (n->due_tick <= t)
			return; /* lazy: fires early, is armed again */
		unlink_id(e, id);
	}
	slot = (uint32_t)(t & (e->nslots - 1));
	n->due_tick = t;
	n->prev = MXG_EXPIRY_NONE;
	n->next = e->head[slot];
	if (n->next != MXG_EXPIRY_NONE)
		e->node[n->next].prev = id;
	e->head[slot] = id;
	n->armed = true;
	e->armed++;
}

uint32_t mxg_expiry_run(struct mxg_expiry *e, uint64_t now_ms, uint32_t *out,
			uint32_t max)
{
	uint64_t now_tick = now_ms / e->tick_ms;
	uint32_t k = 0;

	for (uint32_t visited = 0; e->next_tick <= now_tick; visited++) {
		uint32_t slot = (uint32_t)(e->next_tick & (e->nslots - 1));

		if (visited == e->nslots) {
			/* every slot seen once in this call: whatever is
			 * due up to now_tick has fired */
			e->next_tick = now_tick + 1;
			break;
		}
		for (uint32_t id = e->head[slot], nx; id != MXG_EXPIRY_NONE;
		     id = nx) {
			nx = e->node[id].next;
			if (e->node[id].due_tick > now_tick)
				continue; /* a later round of this slot */
			if (k == max)
				return k; /* this slot again next call */
			unlink_id(e, id);
			out[k++] = id;
		}
		e->next_tick++;
	}
	return k;
}
