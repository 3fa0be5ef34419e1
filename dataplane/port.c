/*
 * port.c - DPDK port bring-up (see port.h).
 *
 * Works with any PMD: checksum offloads are enabled only when the device
 * offers them and the stack is told which ones are on; devices with fewer
 * queues than dataplane cores get one queue pair owned by core 0 and
 * software steering does the rest (DESIGN 2).
 */
#include "dataplane/port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

int port_setup(uint16_t n_cores, uint16_t rx_desc, uint16_t tx_desc,
	       uint16_t mtu, struct rte_mempool *pool, struct port_info *pi)
{
	struct rte_eth_conf pc;
	struct rte_eth_dev_info di;
	uint16_t pid, nq;
	int rc;

	memset(pi, 0, sizeof(*pi));
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "mxgate: no DPDK port available (check the "
				"--port device spec)\n");
		return -ENODEV;
	}
	RTE_ETH_FOREACH_DEV(pid)
	{
		break;
	}
	rc = rte_eth_dev_info_get(pid, &di);
	if (rc != 0)
		return rc;
	snprintf(pi->driver, sizeof(pi->driver), "%s", di.driver_name);

	nq = (di.max_rx_queues >= n_cores && di.max_tx_queues >= n_cores)
		     ? n_cores
		     : 1;

	memset(&pc, 0, sizeof(pc));
	pi->tx_offloads = di.tx_offload_capa &
			  (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
			   RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
			   RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	pi->rx_offloads = di.rx_offload_capa &
			  (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM |
			   RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	pc.txmode.offloads = pi->tx_offloads;
	pc.rxmode.offloads = pi->rx_offloads;

	rc = rte_eth_dev_configure(pid, nq, nq, &pc);
	if (rc < 0) {
		fprintf(stderr, "mxgate: port %u configure: %s\n", pid,
			strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rx_desc, &tx_desc);
	if (rc < 0)
		return rc;
	for (uint16_t q = 0; q < nq; q++) {
		struct rte_eth_txconf txc = di.default_txconf;
		struct rte_eth_rxconf rxc = di.default_rxconf;

		txc.offloads = pi->tx_offloads;
		rxc.offloads = pi->rx_offloads;
		rc = rte_eth_rx_queue_setup(pid, q, rx_desc,
					    rte_eth_dev_socket_id(pid), &rxc,
					    pool);
		if (rc < 0) {
			fprintf(stderr, "mxgate: rx queue %u: %s\n", q,
				strerror(-rc));
			return rc;
		}
		rc = rte_eth_tx_queue_setup(pid, q, tx_desc,
					    rte_eth_dev_socket_id(pid), &txc);
		if (rc < 0) {
			fprintf(stderr, "mxgate: tx queue %u: %s\n", q,
				strerror(-rc));
			return rc;
		}
	}
	if (mtu) {
		rc = rte_eth_dev_set_mtu(pid, mtu);
		if (rc < 0 && rc != -ENOTSUP)
			fprintf(stderr, "mxgate: set mtu %u: %s (ignored)\n",
				mtu, strerror(-rc));
	}
	rc = rte_eth_dev_start(pid);
	if (rc < 0) {
		fprintf(stderr, "mxgate: port %u start: %s\n", pid,
			strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(pid, &pi->mac);
	pi->port_id = pid;
	pi->n_queues = nq;
	return 0;
}

void port_teardown(const struct port_info *pi)
{
	rte_eth_dev_stop(pi->port_id);
	rte_eth_dev_close(pi->port_id);
}
