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
 * it queues (its rx "trigger": rx_burst reads only after one). On this
 * kind of host the signal (a signal frame on the lcore, an inter-processor
 * interrupt from the sending CPU) costs more than the read it saves, and
 * it is delivered to whichever thread the kernel picks. So port_tap_arm()
 * finds the tap queue descriptors and the PMD's handler (the one of the
 * signal F_GETSIG names) and turns the signal off for good (clears
 * O_ASYNC); lcores call port_rx_kick() (the handler, called by hand)
 * before every rx_burst, and sleep in port_idle_wait(), a ppoll() on
 * their queue's descriptor that a queued frame ends at once. Returns true
 * when armed. Main lcore, after port_setup, before the lcores start. */
bool port_tap_arm(const struct port_info *pi);

/* Raise net_tap's rx trigger. A no-op unless port_tap_arm armed it. */
void port_rx_kick(void);

/* Idle sleep of the lcore that polls rx queue `queue` (-1: none): up to
 * us microseconds, ended early by a frame queued on that queue (when
 * port_tap_arm armed net_tap) or by wake_fd (an eventfd other cores write
 * when they hand this one work; -1: none) becoming readable. Both are
 * level triggered: what was queued before the call ends it at once. With
 * neither, a plain nanosleep. */
void port_idle_wait(int queue, int wake_fd, uint64_t us);

/* Stop and close the port; the PMD returns every mbuf it held. */
void port_teardown(const struct port_info *pi);

#endif /* MXG_PORT_H */
