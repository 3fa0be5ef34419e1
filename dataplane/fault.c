/*
 * fault.c - the port-level fault injector (see fault.h).
 *
 * Reordering holds one frame back and releases it after the next frame of
 * a later burst (or after delay_us if no traffic follows), so the peer sees
 * it out of order; delay holds a frame for delay_us. Both use one bounded
 * hold queue; when it is full the frame passes unharmed.
 */
#include "dataplane/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

struct held {
	struct rte_mbuf *m;
	uint64_t due_us;   /* released at this time at the latest */
	uint64_t mark;     /* reorder: released once passed > mark */
	bool reorder;
};

struct fault {
	struct fault_conf conf;
	uint64_t rng;
	struct rte_mempool *pool;
	struct held hold[FAULT_HOLD_MAX];
	uint32_t n_hold;
	uint64_t passed;   /* frames passed on so far */
	struct fault_stats st;
};

bool fault_enabled(const struct fault_conf *fc)
{
	return fc->drop || fc->dup || fc->reorder || fc->delay;
}

static int parse_rate(const char *v, uint32_t *out)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end != '\0' || d < 0 || d > 100)
		return -EINVAL;
	*out = (uint32_t)(d * 100.0 + 0.5);
	return 0;
}

int fault_parse(const char *s, struct fault_conf *fc, const char **bad)
{
	char buf[256], *save = NULL, *tok;

	memset(fc, 0, sizeof(*fc));
	fc->delay_us = 2000;
	fc->seed = 1;
	if (strlen(s) >= sizeof(buf)) {
		*bad = "fault spec too long";
		return -EINVAL;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int rc = 0;

		if (!eq) {
			*bad = "expected key=value";
			return -EINVAL;
		}
		*eq++ = '\0';
		if (!strcmp(tok, "drop"))
			rc = parse_rate(eq, &fc->drop);
		else if (!strcmp(tok, "dup"))
			rc = parse_rate(eq, &fc->dup);
		else if (!strcmp(tok, "reorder"))
			rc = parse_rate(eq, &fc->reorder);
		else if (!strcmp(tok, "delay"))
			rc = parse_rate(eq, &fc->delay);
		else if (!strcmp(tok, "delay_us"))
			fc->delay_us = (uint32_t)strtoul(eq, NULL, 10);
		else if (!strcmp(tok, "seed"))
			fc->seed = strtoull(eq, NULL, 0);
		else {
			*bad = "unknown key (drop, dup, reorder, delay, "
			       "delay_us, seed)";
			return -EINVAL;
		}
		if (rc) {
			*bad = "rate must be a percentage 0..100";
			return rc;
		}
	}
	return 0;
}

/* splitmix64: tiny, seedable, good enough to pick victims. */
static uint64_t rnd(struct fault *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static bool hit(struct fault *f, uint32_t rate)
{
	return rate && (rnd(f) % 10000) < rate;
}

struct fault *fault_create(const struct fault_conf *fc, uint64_t seed_salt,
			   struct rte_mempool *copy_pool, int socket)
{
	struct fault *f = rte_zmalloc_socket("fault", sizeof(*f), 0, socket);

	if (!f)
		return NULL;
	f->conf = *fc;
	f->rng = fc->seed * 0x100000001b3ULL + seed_salt;
	f->pool = copy_pool;
	return f;
}

void fault_destroy(struct fault *f)
{
	if (!f)
		return;
	for (uint32_t i = 0; i < f->n_hold; i++)
		rte_pktmbuf_free(f->hold[i].m);
	rte_free(f);
}

const struct fault_stats *fault_stats(const struct fault *f)
{
	return &f->st;
}

static bool hold(struct fault *f, struct rte_mbuf *m, uint64_t due,
		 bool reorder)
{
	struct held *h;

	if (f->n_hold == FAULT_HOLD_MAX)
		return false;
	h = &f->hold[f->n_hold++];
	h->m = m;
	h->due_us = due;
	h->mark = f->passed;
	h->reorder = reorder;
	return true;
}

static void pass(struct fault *f, struct rte_mbuf **pkts, uint16_t *out,
		 uint16_t cap, struct rte_mbuf *m)
{
	if (*out < cap) {
		pkts[(*out)++] = m;
		f->passed++;
	} else {
		rte_pktmbuf_free(m);
		f->st.dropped++;
	}
}

uint16_t fault_apply(struct fault *f, struct rte_mbuf **pkts, uint16_t n,
		     uint16_t cap, uint64_t now_us)
{
	struct rte_mbuf *in[FAULT_IN_MAX];
	uint16_t out = 0;
	uint32_t i, kept = 0;

	if (!f || !fault_enabled(&f->conf))
		return n;
	if (n > FAULT_IN_MAX)
		n = FAULT_IN_MAX;
	memcpy(in, pkts, n * sizeof(in[0]));

	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = in[i];

		if (hit(f, f->conf.drop)) {
			rte_pktmbuf_free(m);
			f->st.dropped++;
			continue;
		}
		if (hit(f, f->conf.reorder) &&
		    hold(f, m, now_us + f->conf.delay_us, true)) {
			f->st.reordered++;
			continue;
		}
		if (hit(f, f->conf.delay) &&
		    hold(f, m, now_us + f->conf.delay_us, false)) {
			f->st.delayed++;
			continue;
		}
		pass(f, pkts, &out, cap, m);
		if (hit(f, f->conf.dup) && out < cap) {
			struct rte_mbuf *c = rte_pktmbuf_copy(m, f->pool, 0,
							      UINT32_MAX);
			if (c) {
				pass(f, pkts, &out, cap, c);
				f->st.duplicated++;
			}
		}
	}

	/* Release held frames: delayed ones when due, reordered ones once a
	 * later frame has gone ahead of them (or when due, if none comes). */
	for (i = 0; i < f->n_hold; i++) {
		struct held *h = &f->hold[i];
		bool go = h->due_us <= now_us ||
			  (h->reorder && f->passed > h->mark);

		if (go && out < cap) {
			pkts[out++] = h->m;
			f->passed++;
		} else {
			f->hold[kept++] = *h;
		}
	}
	f->n_hold = kept;
	return out;
}
