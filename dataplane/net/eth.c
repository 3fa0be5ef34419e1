/*
 * eth.c - Ethernet input demultiplexing and the bounded TX queue.
 *
 * Ownership: the TX queue belongs to the stack's lcore; frames leave it
 * only through net_stack_take_tx(), the caller transmits them.
 *
 * Promises: never blocks, never allocates; a full TX queue drops the new
 * frame and counts NET_DROP_TXQ_FULL (TCP retransmits what mattered).
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "net_priv.h"

uint32_t net_mbuf_segs(const struct rte_mbuf *m)
{
	uint32_t n = 0;

	for (; m != NULL; m = m->next)
		n++;
	return n;
}

int net_mbuf_trim(struct rte_mbuf *m, uint32_t len)
{
	struct rte_mbuf *seg = m, *rest;
	uint32_t left = len;

	if (m->pkt_len == len)
		return 0;
	if (m->pkt_len < len)
		return -1;
	while (seg->data_len < left) {
		left -= seg->data_len;
		seg = seg->next;
	}
	seg->data_len = (uint16_t)left;
	rest = seg->next;
	seg->next = NULL;
	if (rest != NULL) {
		m->nb_segs = (uint16_t)(m->nb_segs - net_mbuf_segs(rest));
		rte_pktmbuf_free(rest);
	}
	m->pkt_len = len;
	return 0;
}

int net_mbuf_pullup(struct rte_mbuf *m, uint32_t len)
{
	if (m->data_len >= len)
		return 0;
	if (m->pkt_len < len || RTE_MBUF_CLONED(m) ||
	    rte_mbuf_refcnt_read(m) > 1 ||
	    rte_pktmbuf_tailroom(m) < len - m->data_len)
		return -1;
	while (m->data_len < len) {
		struct rte_mbuf *seg = m->next;
		uint16_t n = (uint16_t)RTE_MIN(len - m->data_len,
					       (uint32_t)seg->data_len);

		memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, m->data_len),
		       rte_pktmbuf_mtod(seg, const uint8_t *), n);
		m->data_len = (uint16_t)(m->data_len + n);
		seg->data_off = (uint16_t)(seg->data_off + n);
		seg->data_len = (uint16_t)(seg->data_len - n);
		if (seg->data_len == 0) {
			m->next = seg->next;
			m->nb_segs--;
			seg->next = NULL;
			seg->nb_segs = 1;
			rte_pktmbuf_free_seg(seg);
		}
	}
	return 0;
}

/* Free a packet that was counted in mbufs_held. */
void net_mbuf_free_held(struct net_stack *st, struct rte_mbuf *m)
{
	st->stats.mbufs_held -= net_mbuf_segs(m);
	rte_pktmbuf_free(m);
}

void net_txq_push(struct net_stack *st, struct rte_mbuf *m)
{
	uint32_t size = st->conf.txq_size;

	if (st->txq_cnt >= size) {
		net_drop(st, m, NET_DROP_TXQ_FULL);
		return;
	}
	st->txq[(st->txq_head + st->txq_cnt) % size] = m;
	st->txq_cnt++;
	st->stats.mbufs_held += m->nb_segs;
	st->stats.tx_frames++;
}

uint16_t net_stack_take_tx(struct net_stack *st, struct rte_mbuf **out,
			   uint16_t max)
{
	uint16_t n = 0;
	uint32_t size = st->conf.txq_size;

	while (n < max && st->txq_cnt > 0) {
		struct rte_mbuf *m = st->txq[st->txq_head];

		st->txq_head = (st->txq_head + 1) % size;
		st->txq_cnt--;
		st->stats.mbufs_held -= m->nb_segs;
		out[n++] = m;
	}
	return n;
}

void eth_output(struct net_stack *st, struct rte_mbuf *m,
		const struct rte_ether_addr *dst, uint16_t ether_type)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

	rte_ether_addr_copy(dst, &eh->dst_addr);
	rte_ether_addr_copy(&st->conf.mac, &eh->src_addr);
	eh->ether_type = rte_cpu_to_be_16(ether_type);
	net_txq_push(st, m);
}

void eth_input(struct net_stack *st, struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eh;
	uint16_t type;

	st->stats.rx_frames++;
	if (rte_pktmbuf_data_len(m) < sizeof(*eh)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	/* RFC 2464 7: IPv6 multicast maps to 33:33:xx:xx:xx:xx; ipv6.c
	 * keeps only the groups we are in. */
	if (!rte_is_same_ether_addr(&eh->dst_addr, &st->conf.mac) &&
	    !rte_is_broadcast_ether_addr(&eh->dst_addr) &&
	    !(eh->dst_addr.addr_bytes[0] == 0x33 &&
	      eh->dst_addr.addr_bytes[1] == 0x33 &&
	      st->ip6_state != IP6_OFF)) {
		net_drop(st, m, NET_DROP_ETH_DST);
		return;
	}
	type = rte_be_to_cpu_16(eh->ether_type);
	switch (type) {
	case RTE_ETHER_TYPE_IPV4:
		/* NET_MBUF_REPLICA is only meaningful on ARP: hash.usr
		 * aliases the RSS hash a PMD writes on IP frames. */
		ipv4_input(st, m);
		break;
	case RTE_ETHER_TYPE_ARP:
		arp_input(st, m);
		break;
	case RTE_ETHER_TYPE_IPV6:
		ipv6_input(st, m);
		break;
	default:
		net_drop(st, m, NET_DROP_ETH_TYPE);
	}
}
