/*
 * lcore.c - the dataplane poll loop, one per dataplane lcore.
 *
 * Each iteration: receive a burst from this core's RX queue (if it has
 * one), pass it through the fault injector, steer every frame to its owner
 * core (DESIGN 2; frames for other cores go over their steer_ring, ARP to
 * every core), take frames other cores steered here, feed the stack, run
 * its timers, the services and the worker pool's completions, then
 * transmit what the stack queued.
 *
 * Ownership: everything reachable from the struct lcore_ctx passed in
 * belongs to this lcore; other cores only enqueue to its rings. Never
 * blocks and never allocates; when idle it backs off in growing sleeps (as
 * DPDK's l3fwd-power does) unless busy polling is configured, capped by the
 * stack's next timer so timers stay punctual.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "dataplane/app.h"
#include "dataplane/clock.h"
#include "dataplane/port.h"

volatile int mxg_quit;

/* Frames for the local stack gathered in one iteration. */
#define LOCAL_MAX (MXG_BURST * 4)

/* The cores in mask were handed work (frames on their steer or TX
 * ring): end the sleep of those asleep. The fence pairs with the one in
 * idle_sleep: either we see the flag, or the sleeper sees the ring
 * non-empty before it sleeps. */
static void lcore_wake(struct lcore_ctx *lc, uint32_t mask)
{
	uint64_t one = 1;

	if (!mask)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (uint16_t k = 0; mask; k++, mask >>= 1) {
		struct lcore_ctx *t = &lc->all[k];

		if ((mask & 1) && t->wake_fd >= 0 &&
		    __atomic_load_n(&t->sleeping, __ATOMIC_RELAXED))
			(void)!write(t->wake_fd, &one, sizeof(one));
	}
}

static void send_frames(struct lcore_ctx *lc, struct rte_mbuf **pkts,
			uint16_t n)
{
	uint16_t sent = 0;

	if (n == 0)
		return;
	if (lc->tx_queue >= 0) {
		/* A few retries absorb a momentarily full TX ring; after
		 * that the frames are dropped and TCP retransmits them. */
		for (int tries = 0; sent < n && tries < 4; tries++)
			sent += rte_eth_tx_burst(lc->port_id,
						 (uint16_t)lc->tx_queue,
						 pkts + sent, n - sent);
	} else {
		struct lcore_ctx *owner = &lc->all[0];

		sent = (uint16_t)rte_ring_enqueue_burst(
			owner->tx_ring, (void **)pkts, n, NULL);
		if (sent)
			lcore_wake(lc, 1u);
	}
	lc->stats.tx_pkts += sent;
	if (sent < n) {
		lc->stats.tx_dropped += n - sent;
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
}

/* Steer received frames: keep ours in local[], forward the rest. */
static uint16_t steer_burst(struct lcore_ctx *lc, struct rte_mbuf **pkts,
			    uint16_t n, struct rte_mbuf **local,
			    uint16_t nlocal)
{
	const struct mxg_options *conf = lc->options;
	uint32_t woken = 0; /* cores handed frames: wake once each */

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint16_t owner = steer_frame(lc->steer, m);

		if (owner == STEER_ALL) {
			/* Every core learns ARP bindings; the copies are
			 * flagged so only the receiving core answers. */
			for (uint16_t k = 0; k < conf->n_cores; k++) {
				struct rte_mbuf *c;

				if (k == lc->index)
					continue;
				c = rte_pktmbuf_copy(m, m->pool, 0,
						     UINT32_MAX);
				if (!c)
					continue;
				c->hash.usr = NET_MBUF_REPLICA;
				if (rte_ring_enqueue(lc->all[k].steer_ring,
						     c) != 0) {
					rte_pktmbuf_free(c);
					lc->stats.steer_ring_full++;
				} else {
					lc->stats.replicated++;
					woken |= 1u << k;
				}
			}
			owner = STEER_LOCAL;
		}
		if (owner == STEER_LOCAL || owner == lc->index) {
			m->hash.usr = 0;
			local[nlocal++] = m;
			continue;
		}
		m->hash.usr = 0;
		if (rte_ring_enqueue(lc->all[owner].steer_ring, m) != 0) {
			rte_pktmbuf_free(m);
			lc->stats.steer_ring_full++;
		} else {
			lc->stats.steered_out++;
			woken |= 1u << owner;
		}
	}
	lcore_wake(lc, woken);
	return nlocal;
}

/* The idle back-off's sleep: ended early by a frame on our rx queue, by
 * another core handing us work (lcore_wake) or by a worker handing back
 * a finished job (dataplane/workers: same flag, fence and eventfd). */
static void idle_sleep(struct lcore_ctx *lc, uint64_t us)
{
	uint64_t v;

	__atomic_store_n(&lc->sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* pairs with lcore_wake */
	if (rte_ring_count(lc->steer_ring) == 0 &&
	    (!lc->tx_ring || rte_ring_count(lc->tx_ring) == 0) &&
	    (!lc->workers || !workers_pending(lc->workers, lc->index)))
		port_idle_wait(lc->rx_queue, lc->wake_fd, us);
	__atomic_store_n(&lc->sleeping, 0, __ATOMIC_RELAXED);
	if (lc->wake_fd >= 0)
		(void)!read(lc->wake_fd, &v, sizeof(v)); /* non-blocking */
}

int lcore_main(void *arg)
{
	struct lcore_ctx *lc = arg;
	const struct mxg_options *conf = lc->options;
	struct rte_mbuf *pkts[FAULT_IN_MAX];
	struct rte_mbuf *local[LOCAL_MAX];
	uint32_t idle_iters = 0;
	uint64_t sleep_us = 0;
	sigset_t io;

	/* net_tap raises a real-time signal per frame it queues (its rx
	 * "trigger"; the first free one from SIGRTMIN) unless port_tap_arm
	 * turned it off (port.h). main() blocks SIGRTMIN..SIGRTMAX before
	 * EAL starts its threads, so no control thread is woken by it (that
	 * cost the CPU they share with the kernel side a wake-up and a
	 * context switch per frame); when it is on, the lcores take it. */
	mxg_rt_signals(&io);
	pthread_sigmask(SIG_UNBLOCK, &io, NULL);

	while (!mxg_quit) {
		uint64_t tsc = rte_get_tsc_cycles();
		uint64_t now = clock_us_at(tsc);
		uint16_t n = 0, nlocal = 0, work = 0;

		lc->stats.loops++;

		/* 1. Port RX. */
		if (lc->rx_queue >= 0) {
			/* net_tap (port.h): we raise the PMD's rx trigger */
			port_rx_kick();
			n = rte_eth_rx_burst(lc->port_id,
					     (uint16_t)lc->rx_queue, pkts,
					     MXG_BURST);
			lc->stats.rx_pkts += n;
			n = fault_apply(lc->fault_rx, pkts, n, FAULT_IN_MAX,
					now);
			work += n;
			nlocal = steer_burst(lc, pkts, n, local, nlocal);
		}

		/* 2. Frames other cores steered to us. */
		n = (uint16_t)rte_ring_dequeue_burst(lc->steer_ring,
						     (void **)(local + nlocal),
						     LOCAL_MAX - nlocal, NULL);
		lc->stats.steered_in += n;
		nlocal += n;
		work += n;

		/* 3. The stack, its timers, the services. */
		if (nlocal)
			net_stack_input(lc->stack, local, nlocal, now);
		net_stack_poll(lc->stack, now);
		svc_poll(lc->svc, now);
		if (lc->workers)
			work += (uint16_t)workers_poll(lc->workers, lc->index,
						       MXG_BURST);
		if (lc->gw) {
			gw_core_poll(lc->gw, now);
			/* RCU (DESIGN 6): this core holds no unreferenced
			 * snapshot pointer past this point. */
			gw_core_quiescent(lc->gw);
		}

		/* 4. TX: our stack's frames, then (queue owner only) the
		 * frames of cores without a TX queue. */
		for (;;) {
			uint16_t t = net_stack_take_tx(lc->stack, pkts,
						       MXG_BURST);
			if (t == 0)
				break;
			work += t;
			t = fault_apply(lc->fault_tx, pkts, t, FAULT_IN_MAX,
					now);
			send_frames(lc, pkts, t);
		}
		/* Frames held by the fault injector are released when due
		 * even if nothing else is sent. */
		if (fault_enabled(&conf->fault)) {
			uint16_t t = fault_apply(lc->fault_tx, pkts, 0,
						 FAULT_IN_MAX, now);
			send_frames(lc, pkts, t);
			t = fault_apply(lc->fault_rx, pkts, 0, FAULT_IN_MAX,
					now);
			if (t) {
				nlocal = steer_burst(lc, pkts, t, local, 0);
				net_stack_input(lc->stack, local, nlocal, now);
			}
		}
		if (lc->tx_ring) {
			uint16_t t = (uint16_t)rte_ring_dequeue_burst(
				lc->tx_ring, (void **)pkts, MXG_BURST, NULL);
			work += t;
			send_frames(lc, pkts, t);
		}

		/* 5. Idle back-off: short pauses first, then sleeps that
		 * grow to idle_sleep_max_us, never past the next timer. */
		if (work) {
			lc->stats.busy_tsc += rte_get_tsc_cycles() - tsc;
			idle_iters = 0;
			sleep_us = 0;
			continue;
		}
		if (conf->busy_poll) {
			lc->stats.idle_tsc += rte_get_tsc_cycles() - tsc;
			continue;
		}
		if (++idle_iters < 256) {
			rte_pause();
			lc->stats.idle_tsc += rte_get_tsc_cycles() - tsc;
			continue;
		}
		sleep_us = sleep_us ? sleep_us * 2 : 1;
		if (sleep_us > conf->idle_sleep_max_us)
			sleep_us = conf->idle_sleep_max_us;
		{
			uint64_t next = net_stack_next_timer_us(lc->stack, now);

			if (next < sleep_us)
				sleep_us = next ? next : 1;
			/* Worker jobs out (Maildir steps) do not shorten
			 * the sleep: the worker that finishes one wakes us
			 * (idle_sleep). */
		}
		lc->stats.idle_sleeps++;
		lc->stats.idle_tsc += rte_get_tsc_cycles() - tsc;
		idle_sleep(lc, sleep_us);
	}
	lc->stopped = true;
	return 0;
}
