/*
 * steer.c - owner-core selection for received frames. See steer.h for the
 * rules; this file only parses headers far enough to apply them.
 *
 * Stateless and read-only: safe on every lcore, never allocates.
 */
#include "dataplane/steer.h"

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <string.h>

uint16_t steer_core_of_ip(const struct steer_conf *sc, uint32_t ip_be)
{
	if (sc->n_cores <= 1)
		return 0;
	/* CRC32 of the address alone: symmetric in the sense that matters
	 * here (a client's every connection hashes alike), cheap, and the
	 * seed keeps an outsider from aiming a flood at one core. */
	return (uint16_t)(rte_hash_crc_4byte(ip_be, sc->seed) % sc->n_cores);
}

uint16_t steer_core_of_ip6(const struct steer_conf *sc, const uint8_t *ip6)
{
	uint64_t pfx;

	if (sc->n_cores <= 1)
		return 0;
	memcpy(&pfx, ip6, 8); /* the /64; the interface ID is ignored */
	return (uint16_t)(rte_hash_crc_8byte(pfx, sc->seed) % sc->n_cores);
}

uint16_t steer_core_of_port(const struct steer_conf *sc, uint16_t port)
{
	uint32_t end = (uint32_t)sc->eph_base +
		       (uint32_t)sc->eph_per_core * sc->n_cores;

	if (sc->eph_per_core == 0 || port < sc->eph_base || port >= end)
		return STEER_LOCAL;
	return (uint16_t)((port - sc->eph_base) / sc->eph_per_core);
}

void steer_eph_range(const struct steer_conf *sc, uint16_t k, uint16_t *lo,
		     uint16_t *hi)
{
	*lo = (uint16_t)(sc->eph_base + k * sc->eph_per_core);
	*hi = (uint16_t)(*lo + sc->eph_per_core - 1);
}

/* Owner of a TCP segment: local port (dst for inbound, src for a quoted
 * outbound segment) inside an active-open range, else the remote IP. */
static uint16_t tcp_owner(const struct steer_conf *sc, uint16_t local_port,
			  uint32_t remote_ip)
{
	uint16_t k = steer_core_of_port(sc, local_port);

	return k != STEER_LOCAL ? k : steer_core_of_ip(sc, remote_ip);
}

static uint16_t tcp_owner6(const struct steer_conf *sc, uint16_t local_port,
			   const uint8_t *remote)
{
	uint16_t k = steer_core_of_port(sc, local_port);

	return k != STEER_LOCAL ? k : steer_core_of_ip6(sc, remote);
}

/* IPv6: skip up to 8 hop-by-hop / routing / destination-options headers
 * (the stack validates them; here they only must not hide the TCP
 * header from the owner choice). */
static uint16_t steer_frame6(const struct steer_conf *sc, const uint8_t *p,
			     uint32_t len)
{
	const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)p;
	uint32_t off = sizeof(*ip);
	uint8_t nh;

	if (len < sizeof(*ip))
		return STEER_LOCAL;
	nh = ip->proto;
	for (int n = 0; n < 8 && (nh == 0 || nh == 43 || nh == 60); n++) {
		if (off + 8 > len)
			return STEER_LOCAL;
		nh = p[off];
		off += ((uint32_t)p[off + 1] + 1) * 8;
	}
	if (off + 8 > len)
		return STEER_LOCAL;
	if (nh == IPPROTO_TCP)
		return tcp_owner6(sc, (uint16_t)((p[off + 2] << 8) | p[off + 3]),
				  ip->src_addr);
	if (nh != IPPROTO_ICMPV6)
		return STEER_LOCAL;
	if (p[off] == 135 || p[off] == 136) /* NS, NA */
		return STEER_ALL;
	if (p[off] == 2 && off + 8 + sizeof(*ip) + 8 <= len) {
		/* Packet Too Big quoting our segment: src port ours. */
		const struct rte_ipv6_hdr *in =
			(const struct rte_ipv6_hdr *)(p + off + 8);
		const uint8_t *t = p + off + 8 + sizeof(*in);

		if (in->proto != IPPROTO_TCP)
			return STEER_LOCAL;
		return tcp_owner6(sc, (uint16_t)((t[0] << 8) | t[1]),
				  in->dst_addr);
	}
	return STEER_LOCAL;
}

uint16_t steer_frame(const struct steer_conf *sc, const struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth;
	const struct rte_ipv4_hdr *ip;
	uint32_t len = rte_pktmbuf_data_len(m);
	uint32_t ihl;

	if (sc->n_cores <= 1)
		return STEER_LOCAL;
	if (len < sizeof(*eth))
		return STEER_LOCAL;
	eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return STEER_ALL;
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
		return steer_frame6(sc, (const uint8_t *)(eth + 1),
				    len - (uint32_t)sizeof(*eth));
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return STEER_LOCAL;
	if (len < sizeof(*eth) + sizeof(*ip))
		return STEER_LOCAL;
	ip = (const struct rte_ipv4_hdr *)(eth + 1);
	ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	if (ihl < sizeof(*ip) || len < sizeof(*eth) + ihl + 8)
		return STEER_LOCAL;

	if (ip->next_proto_id == IPPROTO_TCP) {
		const struct rte_tcp_hdr *th =
			(const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
		return tcp_owner(sc, rte_be_to_cpu_16(th->dst_port),
				 ip->src_addr);
	}
	if (ip->next_proto_id == IPPROTO_ICMP) {
		const struct rte_icmp_hdr *ic =
			(const struct rte_icmp_hdr *)((const uint8_t *)ip + ihl);
		const struct rte_ipv4_hdr *in;
		const struct rte_tcp_hdr *ith;
		uint32_t iihl;

		/* Only errors (3 unreachable, 11 time exceeded) quote us. */
		if (ic->icmp_type != 3 && ic->icmp_type != 11)
			return STEER_LOCAL;
		if (len < sizeof(*eth) + ihl + 8 + sizeof(*in))
			return STEER_LOCAL;
		in = (const struct rte_ipv4_hdr *)((const uint8_t *)ic + 8);
		iihl = (uint32_t)(in->version_ihl & 0x0f) * 4;
		if (in->next_proto_id != IPPROTO_TCP || iihl < sizeof(*in) ||
		    len < sizeof(*eth) + ihl + 8 + iihl + 8)
			return STEER_LOCAL;
		ith = (const struct rte_tcp_hdr *)((const uint8_t *)in + iihl);
		/* The quoted segment was ours: src is our port, dst theirs. */
		return tcp_owner(sc, rte_be_to_cpu_16(ith->src_port),
				 in->dst_addr);
	}
	return STEER_LOCAL;
}
