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

/* net_tap only, for busy-polling lcores: stop the kernel signalling
 * every frame it queues (the PMD's rx "trigger", a real-time signal per
 * frame, which rx_burst needs before it reads at all) by clearing
 * O_ASYNC on the tap file descriptors, and let port_rx_kick() raise the
 * trigger by hand before each rx_burst instead. A busy-polling loop
 * reads every iteration anyway; the signal only cost it a kernel signal
 * frame and the sending CPU an inter-processor interrupt per frame.
 * Returns true when the kick is armed (a net_tap port and its handler
 * found). Main lcore, after port_setup, before the lcores start. */
bool port_tap_busy_mode(const struct port_info *pi);

/* Raise net_tap's rx trigger (a call of the PMD's own signal handler).
 * A no-op unless port_tap_busy_mode armed it. */
void port_rx_kick(void);

/* Stop and close the port; the PMD returns every mbuf it held. */
void port_teardown(const struct port_info *pi);

#endif /* MXG_PORT_H */
