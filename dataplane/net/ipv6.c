/*
 * ipv6.c - IPv6 input validation (RFC 8200) with a bounded walk of the
 * extension headers, and output with software or offloaded checksums,
 * routing to an on-link neighbor or the default router.
 *
 * Ownership: stateless apart from the stack's IPv6 address state (nd.c
 * runs DAD and may set the default router); the stack's lcore only.
 *
 * Promises: a packet is accepted only with version 6, a payload length
 * that fits the frame, a non-multicast source, a destination that is
 * ours (or, for ICMPv6 only, all-nodes or our solicited-node group), at
 * most IP6_EXT_MAX extension headers in IP6_HDRS_MAX bytes (moved up into
 * the first segment when a chain splits them), no routing header of type 0 (RFC 5095) or with segments
 * left (we are not a router), no option whose type says "discard" (RFC
 * 8200 4.2), and no fragment header: fragments are counted and dropped
 * as IPv4 fragments are (our MSS fits the MTU). Everything refused is
 * counted; the refusals RFC 8200 4 names (an unrecognized Next Header, a
 * routing header with segments left, an option whose type asks for it)
 * are answered with an ICMPv6 Parameter Problem (icmp6_error: RFC 4443
 * 2.4 rules, rate limited); UDP, No Next Header, fragments and our own
 * bounds are dropped silently. A hop limit of 0 is accepted: RFC 8200 3
 * discards it only when forwarding (ND checks its 255 itself). Never
 * allocates except the mbuf of a frame it builds.
 */
#include <stddef.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_ip.h>

#include "net_priv.h"

#define IP6_NH_HOPOPTS 0
#define IP6_NH_ROUTING 43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_ICMPV6 58
#define IP6_NH_NONE 59
#define IP6_NH_DSTOPTS 60

uint16_t ip6_phdr_sum(const struct net_addr *src, const struct net_addr *dst,
		      uint32_t len, uint8_t proto)
{
	uint32_t sum;

	/* rte_raw_cksum() sums words in memory order: add the length and
	 * protocol as the big-endian words they are on the wire. */
	sum = (uint32_t)rte_cpu_to_be_16((uint16_t)(len >> 16)) +
	      rte_cpu_to_be_16((uint16_t)len) + rte_cpu_to_be_16(proto);
	sum += (uint32_t)rte_raw_cksum(src, 16) + rte_raw_cksum(dst, 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

void ip6_solicited_node(const struct net_addr *a, struct net_addr *out)
{
	static const uint8_t pfx[13] = {0xff, 0x02, 0, 0, 0, 0,	  0,
					0,    0,    0, 0, 1, 0xff};

	memcpy(out->b, pfx, sizeof(pfx));
	memcpy(&out->b[13], &a->b[13], 3);
}

bool ipv6_is_ours(const struct net_stack *st, const struct net_addr *a)
{
	return st->ip6_state == IP6_READY &&
	       (memcmp(a, &st->conf.ip6, sizeof(*a)) == 0 ||
		memcmp(a, &st->ll6, sizeof(*a)) == 0);
}

const struct net_addr *ipv6_src_for(const struct net_stack *st,
				    const struct net_addr *dst)
{
	return ip6_is_linklocal(dst) ? &st->ll6 : &st->conf.ip6;
}

/* Multicast groups we listen to: all-nodes and the solicited-node groups
 * of our two addresses (also while tentative, for DAD). */
static bool ip6_our_group(const struct net_stack *st, const struct net_addr *a)
{
	static const struct net_addr all_nodes = {
		{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
	struct net_addr sn;

	if (memcmp(a, &all_nodes, sizeof(*a)) == 0)
		return true;
	ip6_solicited_node(&st->conf.ip6, &sn);
	if (memcmp(a, &sn, sizeof(*a)) == 0)
		return true;
	ip6_solicited_node(&st->ll6, &sn);
	return memcmp(a, &sn, sizeof(*a)) == 0;
}

static bool ip6_is_tentative(const struct net_stack *st,
			     const struct net_addr *a)
{
	return st->ip6_state == IP6_TENTATIVE &&
	       (memcmp(a, &st->conf.ip6, sizeof(*a)) == 0 ||
		memcmp(a, &st->ll6, sizeof(*a)) == 0);
}

/* A Parameter Problem the walk asks for (RFC 8200 4; RFC 4443 3.4). */
struct ip6_pp {
	bool send;
	bool mcast_ok; /* RFC 8200 4.2: option type 10xxxxxx */
	uint8_t code;
	uint32_t ptr; /* from the first byte of the IPv6 header */
};

/* RFC 8200 4.2: walk the TLV options of a hop-by-hop or destination
 * options header (p: the header, len: its length in bytes). Returns 0
 * when acceptable, -1 when malformed (silently dropped), or the action
 * bits (1..3) of an unknown option that asks for the packet to be
 * discarded, with *bad its offset in the header. */
static int ip6_opts_check(const uint8_t *p, uint32_t len, uint32_t *bad)
{
	uint32_t i = 2;

	while (i < len) {
		uint8_t type = p[i];

		if (type == 0) { /* Pad1 */
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + (uint32_t)p[i + 1] > len)
			return -1;
		/* PadN (1) and Router Alert (5, RFC 2711) are known and
		 * harmless; an unknown type's two high bits say 00: skip. */
		if (type != 1 && type != 5 && (type >> 6) != 0) {
			*bad = i;
			return type >> 6;
		}
		i += 2 + (uint32_t)p[i + 1];
	}
	return 0;
}

/* Walk the extension headers from nh at offset off (first segment);
 * on success nh and off name the upper-layer header. Returns a drop reason
 * or NET_DROP_MAX when the chain is acceptable; *pp says whether the drop
 * deserves a Parameter Problem (RFC 8200 4: an unrecognized Next Header,
 * a routing header with segments left, an option that asks for one). */
static enum net_drop ip6_walk(struct net_stack *st, const struct rte_mbuf *m,
			      uint8_t *nh, uint32_t *off, uint32_t end,
			      struct ip6_pp *pp)
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr);
	const uint32_t start = *off;
	const uint8_t *base = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t limit = RTE_MIN(end, (uint32_t)rte_pktmbuf_data_len(m));
	/* where the Next Header field that named *nh is */
	uint32_t nh_field = l2 + offsetof(struct rte_ipv6_hdr, proto);

	for (uint32_t n = 0;; n++) {
		const uint8_t *p = base + *off;
		uint32_t len, bad = 0;
		int act;

		switch (*nh) {
		case IPPROTO_TCP:
		case IP6_NH_ICMPV6:
			return NET_DROP_MAX;
		case IP6_NH_FRAGMENT:
			st->stats.ip_frags++;
			return NET_DROP_IP_FRAG;
		case IP6_NH_HOPOPTS:
		case IP6_NH_DSTOPTS:
		case IP6_NH_ROUTING:
			break;
		case IP6_NH_NONE: /* RFC 8200 4.7: nothing follows */
		case IPPROTO_UDP: /* not served; the IPv4 path is silent too */
			return NET_DROP_IP_PROTO;
		default: /* ESP, AH, anything we do not know */
			pp->send = true;
			pp->code = ICMP6_PP_NEXTHDR;
			pp->ptr = nh_field - l2;
			return NET_DROP_IP_PROTO;
		}
		/* RFC 8200 4.1: hop-by-hop only right after the header;
		 * elsewhere its 0 is an unrecognized Next Header. */
		if (*nh == IP6_NH_HOPOPTS && n != 0) {
			pp->send = true;
			pp->code = ICMP6_PP_NEXTHDR;
			pp->ptr = nh_field - l2;
			return NET_DROP_IP6_EXT;
		}
		if (n >= IP6_EXT_MAX || *off + 8 > limit)
			return NET_DROP_IP6_EXT;
		len = ((uint32_t)p[1] + 1) * 8;
		if (*off + len > limit || *off + len - start > IP6_HDRS_MAX)
			return NET_DROP_IP6_EXT;
		if (*nh == IP6_NH_ROUTING) {
			/* RFC 8200 4.4: segments left would need us to
			 * route (no type is ours): Parameter Problem at the
			 * routing type. Type 0 is refused outright, even
			 * with none left (RFC 5095). */
			if (p[3] != 0) {
				pp->send = true;
				pp->code = ICMP6_PP_HEADER;
				pp->ptr = *off + 2 - l2;
				return NET_DROP_IP6_EXT;
			}
			if (p[2] == 0)
				return NET_DROP_IP6_EXT;
		} else if ((act = ip6_opts_check(p, len, &bad)) != 0) {
			/* RFC 8200 4.2: 01 discard; 10 discard and report
			 * (even to multicast); 11 report unless multicast */
			if (act >= 2) {
				pp->send = true;
				pp->mcast_ok = act == 2;
				pp->code = ICMP6_PP_OPTION;
				pp->ptr = *off + bad - l2;
			}
			return NET_DROP_IP6_EXT;
		}
		st->stats.ip6_ext_hdrs++;
		nh_field = *off;
		*nh = p[0];
		*off += len;
	}
}

void ipv6_input(struct net_stack *st, struct rte_mbuf *m)
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr);
	struct rte_ipv6_hdr *ip;
	struct net_l3 l3;
	uint32_t plen, off;
	enum net_drop why;
	struct ip6_pp pp;
	uint8_t nh;
	bool mcast;

	if (st->ip6_state == IP6_OFF) {
		net_drop(st, m, NET_DROP_ETH_TYPE);
		return;
	}
	st->stats.ip6_rx++;
	if (rte_pktmbuf_data_len(m) < l2 + sizeof(*ip)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, l2);
	plen = rte_be_to_cpu_16(ip->payload_len);
	/* RFC 8200 3; a zero payload length would be a jumbogram (RFC
	 * 2675), which a 1500-byte link never carries. */
	if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || plen == 0) {
		net_drop(st, m, NET_DROP_IP_HDR);
		return;
	}
	if (l2 + sizeof(*ip) + plen > rte_pktmbuf_pkt_len(m)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	memcpy(&l3.src, ip->src_addr, 16);
	memcpy(&l3.dst, ip->dst_addr, 16);
	/* RFC 4291 2.7: a multicast source is never valid. */
	if (ip6_is_multicast(&l3.src)) {
		net_drop(st, m, NET_DROP_IP6_SRC);
		return;
	}
	mcast = ip6_is_multicast(&l3.dst);
	if (mcast ? !ip6_our_group(st, &l3.dst) : !ipv6_is_ours(st, &l3.dst)) {
		/* RFC 4862 5.4: a tentative address receives nothing but
		 * the Neighbor Discovery of DAD (which goes to the
		 * solicited-node group). */
		net_drop(st, m,
			 ip6_is_tentative(st, &l3.dst) ? NET_DROP_DAD
						       : NET_DROP_IP_DST);
		return;
	}
	if (net_mbuf_trim(m, l2 + (uint32_t)sizeof(*ip) + plen) != 0) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	/* Extension headers and the TCP header are read in place: where a
	 * chain splits them, move them up into the first segment (at most
	 * IP6_HDRS_MAX + 60 bytes past the base header). */
	if (m->nb_segs > 1)
		(void)net_mbuf_pullup(
			m, RTE_MIN(l2 + (uint32_t)sizeof(*ip) + plen,
				   l2 + (uint32_t)sizeof(*ip) + IP6_HDRS_MAX +
					   60));
	nh = ip->proto;
	off = l2 + sizeof(*ip);
	memset(&pp, 0, sizeof(pp));
	why = ip6_walk(st, m, &nh, &off, l2 + (uint32_t)sizeof(*ip) + plen,
		       &pp);
	l3.v6 = 1;
	l3.hop_limit = ip->hop_limits;
	if (why != NET_DROP_MAX) {
		/* A copy steered to every core (an NS or NA) is answered
		 * by the receiving core alone. */
		if (pp.send && m->hash.usr != NET_MBUF_REPLICA)
			icmp6_error(st, m, &l3, ICMP6_PARAM_PROB, pp.code,
				    pp.ptr, pp.mcast_ok);
		net_drop(st, m, why);
		return;
	}
	l3.phdr_sum = ip6_phdr_sum(&l3.src, &l3.dst,
				   l2 + (uint32_t)sizeof(*ip) + plen - off, nh);
	if (nh == IPPROTO_TCP) {
		if (mcast) {
			net_drop(st, m, NET_DROP_IP_DST);
			return;
		}
		tcp_input(st, m, &l3, (uint16_t)off,
			  (uint16_t)(l2 + sizeof(*ip) + plen - off));
		return;
	}
	icmp6_input(st, m, &l3, (uint16_t)off,
		    (uint16_t)(l2 + sizeof(*ip) + plen - off));
}

void *ipv6_alloc(struct net_stack *st, struct rte_mbuf **mp,
		 const struct net_addr *src, const struct net_addr *dst,
		 uint8_t proto, uint16_t l4len, uint32_t flow, uint8_t hlim)
{
	const uint16_t l2 = sizeof(struct rte_ether_hdr);
	struct rte_ipv6_hdr *ip;
	struct rte_mbuf *m =
		net_alloc_frame(st, (uint16_t)(l2 + sizeof(*ip) + l4len));

	*mp = NULL;
	if (m == NULL)
		return NULL;
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, l2);
	ip->vtc_flow = rte_cpu_to_be_32((6u << 28) | (flow & 0xfffff));
	ip->payload_len = rte_cpu_to_be_16(l4len);
	ip->proto = proto;
	ip->hop_limits = hlim;
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	m->l2_len = l2;
	m->l3_len = sizeof(*ip);
	*mp = m;
	return ip + 1;
}

/* The L4 checksum of a frame built by ipv6_alloc (TCP or ICMPv6). */
static void ipv6_cksum(struct net_stack *st, struct rte_mbuf *m,
		       struct rte_ipv6_hdr *ip)
{
	if (ip->proto == IPPROTO_TCP) {
		struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

		th->cksum = 0;
		if (st->conf.tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
			m->ol_flags |=
				RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TCP_CKSUM;
			m->l4_len = (uint64_t)(th->data_off >> 4) * 4;
			th->cksum = rte_ipv6_phdr_cksum(ip, m->ol_flags);
		} else {
			th->cksum = rte_ipv6_udptcp_cksum(ip, th);
		}
	} else if (ip->proto == IP6_NH_ICMPV6) {
		struct rte_icmp_hdr *ih = (struct rte_icmp_hdr *)(ip + 1);

		ih->icmp_cksum = 0;
		ih->icmp_cksum = rte_ipv6_udptcp_cksum(ip, ih);
	}
}

void ipv6_output(struct net_stack *st, struct rte_mbuf *m)
{
	struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(
		m, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	struct net_addr dst, nh;
	bool onlink = true;

	ipv6_cksum(st, m, ip);
	memcpy(&dst, ip->dst_addr, 16);
	if (ip6_is_multicast(&dst)) {
		/* RFC 2464 7: 33:33 and the low 32 bits of the group. */
		struct rte_ether_addr mac = {{0x33, 0x33, dst.b[12], dst.b[13],
					      dst.b[14], dst.b[15]}};

		eth_output(st, m, &mac, RTE_ETHER_TYPE_IPV6);
		return;
	}
	if (!ip6_is_linklocal(&dst)) {
		uint32_t bits = st->conf.ip6_prefixlen;

		for (uint32_t i = 0; i < 16 && bits > 0; i++) {
			uint8_t mask = bits >= 8
					       ? 0xff
					       : (uint8_t)(0xff << (8 - bits));

			if ((dst.b[i] ^ st->conf.ip6.b[i]) & mask) {
				onlink = false;
				break;
			}
			bits = bits >= 8 ? bits - 8 : 0;
		}
	}
	/* As for IPv4: without a default router every destination is
	 * resolved on the link. */
	nh = (!onlink && !ip6_is_unspecified(&st->gw6)) ? st->gw6 : dst;
	neigh_output(st, m, &nh);
}

/* Build and send an ICMPv6 frame to a known MAC (ND answers), bypassing
 * resolution. */
void ipv6_output_to(struct net_stack *st, struct rte_mbuf *m,
		    const struct rte_ether_addr *mac)
{
	ipv6_cksum(st, m,
		   rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *,
					   sizeof(struct rte_ether_hdr)));
	eth_output(st, m, mac, RTE_ETHER_TYPE_IPV6);
}
