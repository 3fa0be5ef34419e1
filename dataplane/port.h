/*
 * port.h - bring up the one DPDK port mxgate serves: queues, offloads,
 * start, and a clean stop. Main lcore only, before the dataplane lcores
 * start and after they have stopped.
 */
#ifndef MXG_PORT_H
#define MXG_PORT_H

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

/* Stop and close the port; the PMD returns every mbuf it held. */
void port_teardown(const struct port_info *pi);

#endif /* MXG_PORT_H */
