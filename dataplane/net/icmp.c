/*
 * icmp.c - ICMP (RFC 792): echo reply, and fragmentation-needed (RFC 1191)
 * which lowers the path MSS of the TCP connection named by the embedded
 * header.
 *
 * Ownership: stateless; TCP state is changed only through
 * tcp_icmp_frag_needed() on the stack's own lcore.
 *
 * Promises: anything else (bad checksum, unhandled types) is counted as
 * NET_DROP_ICMP and dropped; never sends an ICMP error itself.
 */
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>

#include "net_priv.h"

#define ICMP_UNREACH 3
#define ICMP_UNREACH_NEEDFRAG 4

static void icmp_echo_reply(struct net_stack *st, struct rte_mbuf *m,
			    struct rte_ipv4_hdr *ip, uint16_t l4off,
			    uint16_t l4len)
{
	struct rte_mbuf *r;
	struct rte_icmp_hdr *ih;

	ih = ipv4_alloc(st, &r, ip->src_addr, IPPROTO_ICMP, l4len);
	if (ih == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	if (rte_pktmbuf_read(m, l4off, l4len, ih) != ih)
		memcpy(ih, rte_pktmbuf_mtod_offset(m, void *, l4off), l4len);
	rte_pktmbuf_free(m);
	ih->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ih->icmp_code = 0;
	ih->icmp_cksum = 0;
	ih->icmp_cksum = (uint16_t)~rte_raw_cksum(ih, l4len);
	st->stats.icmp_echo++;
	ipv4_output(st, r);
}

void icmp_input(struct net_stack *st, struct rte_mbuf *m,
		struct rte_ipv4_hdr *ip, uint16_t l4off, uint16_t l4len)
{
	struct rte_icmp_hdr *ih;
	uint16_t raw;

	if (l4len < sizeof(*ih) ||
	    rte_pktmbuf_data_len(m) < (uint32_t)l4off + sizeof(*ih)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	if (rte_raw_cksum_mbuf(m, l4off, l4len, &raw) != 0 || raw != 0xffff) {
		net_drop(st, m, NET_DROP_ICMP);
		return;
	}
	ih = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *, l4off);
	if (ih->icmp_type == RTE_IP_ICMP_ECHO_REQUEST && ih->icmp_code == 0) {
		if (l4len > st->mss_max + 40) {
			net_drop(st, m, NET_DROP_ICMP);
			return;
		}
		icmp_echo_reply(st, m, ip, l4off, l4len);
		return;
	}
	if (ih->icmp_type == ICMP_UNREACH &&
	    ih->icmp_code == ICMP_UNREACH_NEEDFRAG) {
		/* RFC 1191 4: next-hop MTU in the low 16 bits of the
		 * second word, then the original IP header + 8 bytes. */
		uint8_t buf[8 + 60 + 8];
		const uint8_t *p;
		const struct rte_ipv4_hdr *in;
		uint32_t ihl, need;
		struct tcp_key k;
		uint16_t mtu;
		uint32_t seq;

		if (l4len < 8 + sizeof(*in) + 8) {
			net_drop(st, m, NET_DROP_ICMP);
			return;
		}
		need = RTE_MIN((uint32_t)l4len, (uint32_t)sizeof(buf));
		p = rte_pktmbuf_read(m, l4off, need, buf);
		in = (const struct rte_ipv4_hdr *)(p + 8);
		ihl = (uint32_t)(in->version_ihl & 0x0f) * 4;
		if (ihl < sizeof(*in) || 8 + ihl + 8 > need ||
		    in->next_proto_id != IPPROTO_TCP ||
		    in->src_addr != st->conf.ip) {
			net_drop(st, m, NET_DROP_ICMP);
			return;
		}
		mtu = (uint16_t)((p[6] << 8) | p[7]);
		k.laddr = net_addr_from_v4(in->src_addr);
		k.raddr = net_addr_from_v4(in->dst_addr);
		k.lport = (uint16_t)((p[8 + ihl] << 8) | p[8 + ihl + 1]);
		k.rport = (uint16_t)((p[8 + ihl + 2] << 8) | p[8 + ihl + 3]);
		seq = ((uint32_t)p[8 + ihl + 4] << 24) |
		      ((uint32_t)p[8 + ihl + 5] << 16) |
		      ((uint32_t)p[8 + ihl + 6] << 8) | p[8 + ihl + 7];
		st->stats.icmp_frag_needed++;
		tcp_icmp_frag_needed(st, &k, seq, mtu);
		rte_pktmbuf_free(m);
		return;
	}
	net_drop(st, m, NET_DROP_ICMP);
}
