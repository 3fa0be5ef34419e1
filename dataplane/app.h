/*
 * app.h - process-wide configuration and per-lcore context of the mxgate
 * dataplane: what main.c builds, what every poll loop (lcore.c) reads.
 *
 * Ownership: struct mxg_options (options.h) is written by the main lcore
 * before the dataplane lcores start and is read-only afterwards. Each struct
 * lcore_ctx belongs to one dataplane lcore; the main lcore only reads its
 * counters (racy word-sized loads, summed by the reader).
 */
#ifndef MXG_APP_H
#define MXG_APP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_ring.h>

#include "dataplane/fault.h"
#include "dataplane/gateway.h"
#include "dataplane/bounds.h"
#include "dataplane/net/net.h"
#include "dataplane/options.h"
#include "dataplane/services.h"
#include "dataplane/steer.h"
#include "dataplane/workers/workers.h"

#define MXG_BURST 32

/* Per-core counters of the glue layer (steering, port I/O). */
struct lcore_stats {
	uint64_t loops, idle_sleeps;
	/* TSC cycles spent in iterations that found work (frames in or
	 * out, steered frames, worker completions): the core's busy time,
	 * without the empty polls of busy polling or the idle back-off's
	 * spins and sleeps (tsc_hz in the stats file converts it). */
	uint64_t busy_tsc;
	/* TSC cycles of the iterations that found nothing, with the
	 * back-off's pauses but not its sleeps. Both are wall-clock
	 * cycles: time the thread was preempted inside an iteration counts
	 * too, so on a shared CPU busy_tsc / (busy_tsc + idle_tsc) is the
	 * figure to trust (the share of the lcore's CPU time that found
	 * work), not busy_tsc alone. */
	uint64_t idle_tsc;
	uint64_t rx_pkts, tx_pkts, tx_dropped;
	uint64_t steered_out, steered_in, steer_ring_full;
	uint64_t replicated;
	uint64_t fault_dropped, fault_duplicated, fault_reordered,
		fault_delayed;
} __rte_cache_aligned;

/* One dataplane lcore's world. */
struct lcore_ctx {
	uint16_t index;           /* 0..n_cores-1 */
	unsigned int lcore_id;
	uint16_t port_id;
	int rx_queue;             /* -1 when this core owns no RX queue */
	int tx_queue;             /* -1: send through tx_ring to core 0 */
	int wake_fd;              /* eventfd: other cores and the workers
				     wake this core (-1: none) */
	volatile int sleeping;    /* in its idle sleep (lcore_wake) */
	struct net_stack *stack;
	struct svc_state *svc;
	struct gw_core *gw;           /* SMTP gateway (NULL: --no-gateway) */
	struct worker_pool *workers;  /* shared; this core's rings by index */
	struct rte_ring *log_ring;    /* SP/SC: log lines to the main lcore */
	struct fault *fault_rx, *fault_tx;
	struct rte_ring *steer_ring;  /* MP/SC: frames other cores steer here */
	struct rte_ring *tx_ring;     /* MP/SC: frames to transmit (queue owner) */
	const struct steer_conf *steer;
	struct lcore_ctx *all;        /* array of n_cores contexts */
	const struct mxg_options *options; /* read-only */
	volatile bool stopped;        /* set by the lcore when its loop ended */
	struct lcore_stats stats;
};

/* Set by the signal handler; every loop polls it. */
extern volatile int mxg_quit;

/* *set = SIGRTMIN..SIGRTMAX: the signals net_tap may pick as its rx
 * trigger. Control threads block them, dataplane lcores take them. */
static inline void mxg_rt_signals(sigset_t *set)
{
	sigemptyset(set);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		sigaddset(set, s);
}

/* The dataplane poll loop (rte_eal_remote_launch target). */
int lcore_main(void *arg);

#endif /* MXG_APP_H */
