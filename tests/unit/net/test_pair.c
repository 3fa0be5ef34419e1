/*
 * test_pair.c - two stacks wired back to back in one process (take_tx of
 * one -> input of the other) moving several MiB each way byte-exact
 * through a wire that drops, reorders and duplicates frames on a fixed
 * pattern, so loss recovery (RTO, fast retransmit, NewReno, out-of-order
 * reassembly) is exercised end to end. Time is simulated.
 */
#include <string.h>

#include "harness.h"

#ifndef TOTAL
#define TOTAL (3u << 20) /* bytes each way */
#endif

struct side {
	const char *name;
	struct tcp_conn *c;
	uint64_t sent, rcvd;
	int dir; /* pattern of what this side sends */
	bool zero_copy;
	bool mismatch;
	bool fin_sent, peer_closed, closed, reset;
};

static uint8_t pat(int dir, uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 11) + (uint64_t)dir * 13);
}

static void push(struct side *s)
{
	uint8_t buf[8192];

	while (s->c != NULL && s->sent < TOTAL) {
		size_t n = RTE_MIN(sizeof(buf), (size_t)(TOTAL - s->sent));
		ssize_t r;

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(s->dir, s->sent + i);
		r = tcp_send(s->c, buf, n);
		if (r <= 0)
			break;
		s->sent += (uint64_t)r;
	}
	if (s->c != NULL && s->sent == TOTAL && !s->fin_sent) {
		s->fin_sent = true;
		tcp_close(s->c);
	}
}

static void check_bytes(struct side *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(1 - s->dir, s->rcvd + i))
			s->mismatch = true;
	s->rcvd += n;
}

static void *p_accepted(void *arg, struct tcp_conn *c)
{
	struct side *s = arg;

	s->c = c;
	push(s);
	return s;
}

static void p_connected(void *ctx, struct tcp_conn *c)
{
	struct side *s = ctx;

	s->c = c;
	push(s);
}

static void p_readable(void *ctx, struct tcp_conn *c)
{
	struct side *s = ctx;

	if (s->zero_copy) {
		struct rte_mbuf *m;

		while ((m = tcp_recv_chain(c, 1u << 16)) != NULL) {
			for (struct rte_mbuf *g = m; g != NULL; g = g->next)
				check_bytes(s, rte_pktmbuf_mtod(g, uint8_t *),
					    g->data_len);
			rte_pktmbuf_free(m);
		}
	} else {
		uint8_t buf[5000];
		size_t n;

		while ((n = tcp_recv(c, buf, sizeof(buf))) > 0)
			check_bytes(s, buf, n);
	}
}

static void p_writable(void *ctx, struct tcp_conn *c)
{
	(void)c;
	push(ctx);
}

static void p_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct side *s = ctx;

	(void)c;
	s->peer_closed = true;
}

static void p_closed(void *ctx, struct tcp_conn *c)
{
	struct side *s = ctx;

	(void)c;
	s->closed = true;
	s->c = NULL;
}

static void p_reset(void *ctx, struct tcp_conn *c, int err)
{
	struct side *s = ctx;

	(void)c;
	fprintf(stderr, "%s: reset %d\n", s->name, err);
	s->reset = true;
	s->c = NULL;
}

static const struct tcp_callbacks pcb = {
	.accepted = p_accepted,
	.connected = p_connected,
	.readable = p_readable,
	.writable = p_writable,
	.peer_closed = p_peer_closed,
	.closed = p_closed,
	.reset = p_reset,
};

static const struct rte_ether_addr mac_a = {{0x02, 0, 0, 0, 0, 0x0a}};
static const struct rte_ether_addr mac_b = {{0x02, 0, 0, 0, 0, 0x0b}};

static uint32_t pair_ip;
static const struct rte_ether_addr *pair_mac;

static void pair_conf(struct net_stack_conf *c)
{
	c->ip = rte_cpu_to_be_32(pair_ip);
	c->mac = *pair_mac;
	c->gateway = 0;
	c->rcvbuf = 256 * 1024;
	c->sndbuf = 256 * 1024;
	c->ooo_max_segs = 64;
	c->max_timewait = 8;
	c->timewait_ms = 2000;
	c->txq_size = 1024;
}

/* The wire: a deterministic fault pattern per direction. */
struct wire {
	uint64_t n;
	uint64_t rng; /* heavy mode: seeded LCG, percentages below */
	unsigned int drop_pct, reorder_pct, dup_pct;
	struct rte_mbuf *held; /* reordered frame, delivered after the next */
	uint64_t dropped, reordered, duplicated;
	bool faults;
};

static int wire_move(struct net_stack *from, struct net_stack *to,
		     struct wire *w, uint64_t now)
{
	struct rte_mbuf *in[64], *out[130];
	uint16_t n = net_stack_take_tx(from, in, 64), k = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = in[i];
		uint64_t c = w->n++;

		if (w->drop_pct != 0) {
			/* Percent mode: map the LCG onto the fixed
			 * pattern's three decisions. */
			w->rng = w->rng * 6364136223846793005ULL +
				 1442695040888963407ULL;
			unsigned int r = (unsigned int)(w->rng >> 33) % 100;

			c = r < w->drop_pct				    ? 13
			    : r < w->drop_pct + w->reorder_pct		    ? 7
			    : r < w->drop_pct + w->reorder_pct + w->dup_pct ? 3
									    : 1;
		}
		if (w->faults &&
		    (c % 97 == 13 || c % 389 == 200 || c % 389 == 201)) {
			w->dropped++; /* single losses and a burst of two */
			rte_pktmbuf_free(m);
			continue;
		}
		if (w->faults && c % 61 == 7 && w->held == NULL) {
			w->reordered++;
			w->held = m;
			continue;
		}
		if (w->faults && c % 151 == 3) {
			struct rte_mbuf *d =
				rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);

			if (d != NULL) {
				w->duplicated++;
				out[k++] = d;
			}
		}
		out[k++] = m;
		if (w->held != NULL) {
			out[k++] = w->held;
			w->held = NULL;
		}
	}
	/* A held frame is released when the wire goes quiet. */
	if (n == 0 && w->held != NULL) {
		out[k++] = w->held;
		w->held = NULL;
	}
	if (k > 0)
		net_stack_input(to, out, k, now);
	return n + (k > 0);
}

static void run_pair(bool faults, unsigned int drop_pct)
{
	struct rte_mempool *pa = t_pool(8191), *pb = t_pool(8191);
	struct net_stack *a, *b;
	struct side sa = {.name = "a", .dir = 0};
	struct side sb = {.name = "b", .dir = 1, .zero_copy = true};
	struct wire ab = {.faults = faults,
			  .rng = 1,
			  .drop_pct = drop_pct,
			  .reorder_pct = 2,
			  .dup_pct = 1};
	struct wire ba = ab;
	struct tcp_conn *c;
	uint64_t now = 1000000;
	int iter;

	pair_ip = T_OUR_IP;
	pair_mac = &mac_a;
	a = t_stack(pa, pair_conf);
	pair_ip = T_PEER_IP;
	pair_mac = &mac_b;
	b = t_stack(pb, pair_conf);
	CHECK_EQ(tcp_listen(b, 2525, &pcb, &sb), 0);
	net_stack_poll(a, now);
	CHECK_EQ(tcp_connect(a, rte_cpu_to_be_32(T_PEER_IP), 2525, &pcb, &sa,
			     &c),
		 0);
	for (iter = 0; iter < 2000000; iter++) {
		int moved =
			wire_move(a, b, &ab, now) + wire_move(b, a, &ba, now);

		net_stack_poll(a, now);
		net_stack_poll(b, now);
		if (sa.closed && sb.closed)
			break;
		if (sa.reset || sb.reset)
			break;
		if (moved == 0) {
			uint64_t ta = net_stack_next_timer_us(a, now);
			uint64_t tb = net_stack_next_timer_us(b, now);
			uint64_t d = RTE_MIN(ta, tb);

			now += (d == UINT64_MAX || d == 0) ? 10 : d;
		} else {
			now += 20; /* 20 us per wire hop */
		}
	}
	CHECK(!sa.reset && !sb.reset);
	CHECK(sa.closed && sb.closed);
	CHECK(sa.peer_closed && sb.peer_closed);
	CHECK_EQ(sa.sent, TOTAL);
	CHECK_EQ(sb.sent, TOTAL);
	CHECK_EQ(sa.rcvd, TOTAL);
	CHECK_EQ(sb.rcvd, TOTAL);
	CHECK(!sa.mismatch && !sb.mismatch);
	if (faults) {
		const struct net_stats *x = net_stack_stats(a);
		const struct net_stats *y = net_stack_stats(b);

		CHECK(ab.dropped > 10 && ba.dropped > 10);
		CHECK(ab.reordered > 0 && ab.duplicated > 0);
		CHECK(x->tcp_retransmits > 0 && y->tcp_retransmits > 0);
		CHECK(x->tcp_fast_retransmits + y->tcp_fast_retransmits > 0);
		CHECK(x->tcp_ooo_queued + y->tcp_ooo_queued > 0);
		printf("  faults a->b dropped %lu reordered %lu dup %lu; "
		       "retransmits a %lu b %lu (fast %lu/%lu); sim %.3f s\n",
		       (unsigned long)ab.dropped, (unsigned long)ab.reordered,
		       (unsigned long)ab.duplicated,
		       (unsigned long)x->tcp_retransmits,
		       (unsigned long)y->tcp_retransmits,
		       (unsigned long)x->tcp_fast_retransmits,
		       (unsigned long)y->tcp_fast_retransmits,
		       (double)(now - 1000000) / 1e6);
	}
	/* One side holds TIME_WAIT; after it expires nothing is left. */
	for (int i = 0; i < 100; i++) {
		wire_move(a, b, &ab, now);
		wire_move(b, a, &ba, now);
		now += 100000;
		net_stack_poll(a, now);
		net_stack_poll(b, now);
	}
	t_drain(a);
	t_drain(b);
	CHECK_EQ(net_stack_stats(a)->live_tcbs, 0);
	CHECK_EQ(net_stack_stats(b)->live_tcbs, 0);
	CHECK_EQ(net_stack_stats(a)->timewait + net_stack_stats(b)->timewait,
		 0);
	CHECK_EQ(net_stack_stats(a)->mbufs_held, 0);
	CHECK_EQ(net_stack_stats(b)->mbufs_held, 0);
	/* Destroy both before checking pools: frames cross pools. */
	net_stack_destroy(a);
	net_stack_destroy(b);
	CHECK_EQ(rte_mempool_avail_count(pa), pa->size);
	CHECK_EQ(rte_mempool_avail_count(pb), pb->size);
	rte_mempool_free(pa);
	rte_mempool_free(pb);
}

static void test_pair_clean(void)
{
	run_pair(false, 0);
}

/* ~1.5% loss in a fixed pattern incl. bursts, reorder, duplicates. */
static void test_pair_lossy(void)
{
	run_pair(true, 0);
}

/* 5% drop, 2% reorder, 1% duplicate each way (seeded). */
static void test_pair_heavy(void)
{
	run_pair(true, 5);
}

int main(void)
{
	static const char *const names[] = {
		"test_pair_clean", "test_pair_lossy", "test_pair_heavy"};
	static const t_case_fn fns[] = {test_pair_clean, test_pair_lossy,
					test_pair_heavy};

	return t_run("net_pair", names, fns, 3);
}
