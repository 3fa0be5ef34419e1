/*
 * icmp6.c - ICMPv6 (RFC 4443): echo reply, Packet Too Big (RFC 8201)
 * lowering the path MSS of the TCP connection it quotes, and hand-off of
 * Neighbor Discovery messages to nd.c.
 *
 * Ownership: stateless; TCP state is changed only through
 * tcp_icmp_frag_needed() on the stack's own lcore.
 *
 * Promises: the checksum is verified first; echo is answered only for a
 * unicast destination of ours (no amplification through multicast);
 * anything else is counted as NET_DROP_ICMP and dropped; never sends an
 * ICMPv6 error itself.
 */
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>

#include "net_priv.h"

#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ND_FIRST 133
#define ICMP6_ND_LAST 137

static void icmp6_echo_reply(struct net_stack *st, struct rte_mbuf *m,
			     const struct net_l3 *l3, uint16_t l4off,
			     uint16_t l4len)
{
	struct rte_mbuf *r;
	struct rte_icmp_hdr *ih;

	ih = ipv6_alloc(st, &r, &l3->dst, &l3->src, IPPROTO_ICMPV6, l4len, 0,
			64);
	if (ih == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	if (rte_pktmbuf_read(m, l4off, l4len, ih) != ih)
		memcpy(ih, rte_pktmbuf_mtod_offset(m, void *, l4off), l4len);
	rte_pktmbuf_free(m);
	ih->icmp_type = 129; /* echo reply */
	ih->icmp_code = 0;
	st->stats.icmp6_echo++;
	ipv6_output(st, r);
}

/* RFC 4443 3.2: MTU in the second word, then as much of the invoking
 * packet as fits; we need its IPv6 header and 8 bytes of TCP. */
static void icmp6_ptb(struct net_stack *st, struct rte_mbuf *m, uint16_t l4off,
		      uint16_t l4len)
{
	uint8_t buf[8 + 40 + 8];
	const uint8_t *p;
	const struct rte_ipv6_hdr *in;
	struct tcp_key k;
	uint32_t mtu, seq;

	if (l4len < sizeof(buf)) {
		net_drop(st, m, NET_DROP_ICMP);
		return;
	}
	p = rte_pktmbuf_read(m, l4off, sizeof(buf), buf);
	in = (const struct rte_ipv6_hdr *)(p + 8);
	memset(&k, 0, sizeof(k));
	memcpy(&k.laddr, in->src_addr, 16);
	memcpy(&k.raddr, in->dst_addr, 16);
	if ((rte_be_to_cpu_32(in->vtc_flow) >> 28) != 6 ||
	    in->proto != IPPROTO_TCP || ip6_is_multicast(&k.raddr) ||
	    !ipv6_is_ours(st, &k.laddr)) {
		net_drop(st, m, NET_DROP_ICMP);
		return;
	}
	mtu = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
	      ((uint32_t)p[6] << 8) | p[7];
	k.lport = (uint16_t)((p[48] << 8) | p[49]);
	k.rport = (uint16_t)((p[50] << 8) | p[51]);
	seq = ((uint32_t)p[52] << 24) | ((uint32_t)p[53] << 16) |
	      ((uint32_t)p[54] << 8) | p[55];
	st->stats.icmp6_ptb++;
	tcp_icmp_frag_needed(st, &k, seq, mtu);
	rte_pktmbuf_free(m);
}

void icmp6_input(struct net_stack *st, struct rte_mbuf *m,
		 const struct net_l3 *l3, uint16_t l4off, uint16_t l4len)
{
	uint8_t hdr[4];
	const uint8_t *p;
	int ok;

	if (l4len < 4) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	/* RFC 4443 2.3: the checksum covers the pseudo-header. */
	ok = net_l4_cksum_ok(m, l4off, l4len, l3->phdr_sum);
	if (ok <= 0) {
		net_drop(st, m, ok < 0 ? NET_DROP_SHORT : NET_DROP_ICMP);
		return;
	}
	p = rte_pktmbuf_read(m, l4off, sizeof(hdr), hdr);
	if (p[0] >= ICMP6_ND_FIRST && p[0] <= ICMP6_ND_LAST) {
		nd_input(st, m, l3, l4off, l4len);
		return;
	}
	if (ip6_is_multicast(&l3->dst)) {
		net_drop(st, m, NET_DROP_ICMP);
		return;
	}
	if (p[0] == ICMP6_ECHO_REQUEST && p[1] == 0 && l4len >= 8) {
		if (l4len > st->conf.mtu - 40) {
			net_drop(st, m, NET_DROP_ICMP);
			return;
		}
		icmp6_echo_reply(st, m, l3, l4off, l4len);
		return;
	}
	if (p[0] == ICMP6_PACKET_TOO_BIG && p[1] == 0) {
		icmp6_ptb(st, m, l4off, l4len);
		return;
	}
	net_drop(st, m, NET_DROP_ICMP);
}
