/*
 * port.h - bring up the one DPDK port mxgate serves: queues, offloads,
 * start, and a clean stop. Main lcore only, before the dataplane lcores
 * start and after they have stopped.
 */
#ifndef MXG_PORT_H
#define MXG_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

struct port_info {
	uint16_t port_id;
	uint16_t n_queues;        /* RX/TX queue pairs configured */
	struct rte_ether_addr mac;
	uint64_t tx_offloads;     /* enabled RTE_ETH_TX_OFFLOAD_* */
	uint64_t rx_offloads;
	char driver[64];
};

/* Configure and start the first available port with one queue pair per
 * dataplane core when the device has enough queues, one otherwise.
 * Returns 0 or a negative errno (message printed). */
int port_setup(uint16_t n_cores, uint16_t rx_desc, uint16_t tx_desc,
	       uint16_t mtu, struct rte_mempool *pool, struct port_info *pi);

/* net_tap only. The PMD asks the kernel for a real-time signal per frame
 * it queues (its rx "trigger": rx_burst reads only after one). A polling
 * lcore reads every iteration anyway; the signal only costs it a signal
 * frame and the sending CPU an inter-processor interrupt per frame. So:
 * port_tap_arm() finds the PMD's handler and the tap descriptors and
 * turns the signal off (clears O_ASYNC); every lcore calls port_rx_kick()
 * (the handler, called by hand) before each rx_burst; and the signal is
 * on only while at least one lcore sleeps in its idle back-off, where it
 * is what wakes the sleeper (port_lcore_sleeping). Returns true when
 * armed (a net_tap port and its handler found). Main lcore, after
 * port_setup, before the lcores start. */
bool port_tap_arm(const struct port_info *pi);

/* Raise net_tap's rx trigger. A no-op unless port_tap_arm armed it. */
void port_rx_kick(void);

/* An lcore enters (true) or leaves (false) its idle sleep. Any lcore,
 * on transitions only (a system call per tap descriptor when the first
 * sleeper arrives or the last one leaves). A no-op unless armed. */
void port_lcore_sleeping(bool sleeping);

/* Stop and close the port; the PMD returns every mbuf it held. */
void port_teardown(const struct port_info *pi);

#endif /* MXG_PORT_H */
