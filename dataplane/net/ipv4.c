/*
 * ipv4.c - IPv4 input validation (RFC 791, RFC 1122 3.2.1) and output with
 * software or offloaded checksums, routing to an on-link host or gateway.
 *
 * Ownership: stateless apart from the IP ID counter of the stack's lcore.
 *
 * Promises: bad headers, bad checksums, foreign destinations and fragments
 * are counted and dropped, never reassembled (we send with DF set and
 * advertise an MSS that fits the MTU); never allocates except the mbuf
 * of a frame it builds.
 */
#include <rte_ethdev.h>
#include <rte_ip.h>

#include "net_priv.h"

void ipv4_input(struct net_stack *st, struct rte_mbuf *m)
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr);
	struct rte_ipv4_hdr *ip;
	uint32_t hl, tot;
	uint64_t csum;

	if (rte_pktmbuf_data_len(m) < l2 + sizeof(*ip)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2);
	hl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	/* RFC 1122 3.2.1.1-2: version 4, IHL >= 5, consistent length. */
	if ((ip->version_ihl >> 4) != 4 || hl < sizeof(*ip) || tot < hl ||
	    l2 + hl > rte_pktmbuf_data_len(m)) {
		net_drop(st, m, NET_DROP_IP_HDR);
		return;
	}
	if (l2 + tot > rte_pktmbuf_pkt_len(m)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	csum = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (csum == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (csum == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN &&
	     rte_raw_cksum(ip, hl) != 0xffff)) {
		net_drop(st, m, NET_DROP_IP_CSUM);
		return;
	}
	if (ip->dst_addr != st->conf.ip) {
		net_drop(st, m, NET_DROP_IP_DST);
		return;
	}
	/* RFC 791: MF set or a non-zero offset is a fragment. */
	if (rte_be_to_cpu_16(ip->fragment_offset) &
	    (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		st->stats.ip_frags++;
		net_drop(st, m, NET_DROP_IP_FRAG);
		return;
	}
	if (net_mbuf_trim(m, l2 + tot) != 0) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	switch (ip->next_proto_id) {
	case IPPROTO_TCP: {
		struct net_l3 l3;

		l3.src = net_addr_from_v4(ip->src_addr);
		l3.dst = net_addr_from_v4(ip->dst_addr);
		l3.phdr_sum = rte_ipv4_phdr_cksum(ip, 0);
		l3.v6 = 0;
		l3.hop_limit = ip->time_to_live;
		tcp_input(st, m, &l3, (uint16_t)(l2 + hl),
			  (uint16_t)(tot - hl));
		break;
	}
	case IPPROTO_ICMP:
		icmp_input(st, m, ip, (uint16_t)(l2 + hl),
			   (uint16_t)(tot - hl));
		break;
	default:
		net_drop(st, m, NET_DROP_IP_PROTO);
	}
}

void *ipv4_alloc(struct net_stack *st, struct rte_mbuf **mp, rte_be32_t dst,
		 uint8_t proto, uint16_t l4len)
{
	const uint16_t l2 = sizeof(struct rte_ether_hdr);
	struct rte_ipv4_hdr *ip;
	struct rte_mbuf *m =
		net_alloc_frame(st, (uint16_t)(l2 + sizeof(*ip) + l4len));

	*mp = NULL;
	if (m == NULL)
		return NULL;
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4len));
	ip->packet_id = rte_cpu_to_be_16(st->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->hdr_checksum = 0;
	ip->src_addr = st->conf.ip;
	ip->dst_addr = dst;
	m->l2_len = l2;
	m->l3_len = sizeof(*ip);
	*mp = m;
	return ip + 1;
}

void ipv4_output(struct net_stack *st, struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(
		m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	uint64_t off = st->conf.tx_offloads;
	rte_be32_t nh;

	m->l2_len = sizeof(struct rte_ether_hdr);
	m->l3_len = (uint64_t)(ip->version_ihl & 0x0f) * 4;
	ip->hdr_checksum = 0;
	if (ip->next_proto_id == IPPROTO_TCP) {
		struct rte_tcp_hdr *th =
			(struct rte_tcp_hdr *)((char *)ip + m->l3_len);

		th->cksum = 0;
		if (off & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
			m->ol_flags |=
				RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
			m->l4_len = (uint64_t)(th->data_off >> 4) * 4;
			th->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
		} else {
			th->cksum = rte_ipv4_udptcp_cksum(ip, th);
		}
	}
	if (off & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
	else
		ip->hdr_checksum = rte_ipv4_cksum(ip);

	nh = ip->dst_addr;
	if (st->conf.gateway != 0 &&
	    ((nh ^ st->conf.ip) & st->conf.netmask) != 0)
		nh = st->conf.gateway;
	{
		struct net_addr a = net_addr_from_v4(nh);

		neigh_output(st, m, &a);
	}
}
