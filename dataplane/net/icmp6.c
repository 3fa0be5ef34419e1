/*
 * icmp6.c - ICMPv6 (RFC 4443): echo reply, Packet Too Big (RFC 8201)
 * lowering the path MSS of the TCP connection it quotes, and hand-off of
 * Neighbor Discovery messages to nd.c.
 *
 * Ownership: stateless; TCP state is changed only through
 * tcp_icmp_frag_needed() on the stack's own lcore.
 *
 * Also builds the ICMPv6 errors ipv6.c asks for (Parameter Problem, RFC
 * 8200 4), under the rules of RFC 4443 2.4 and a per-core token bucket.
 *
 * Promises: the checksum is verified first; echo is answered only for a
 * unicast destination of ours (no amplification through multicast);
 * anything else is counted as NET_DROP_ICMP and dropped; no error is ever
 * sent about an ICMPv6 message, to a multicast or unspecified source, or
 * (but for the RFC 8200 4.2 option case) about a multicast packet; at most
 * ICMP6_ERR_BURST errors at once and ICMP6_ERR_PER_SEC a second per core.
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "net_priv.h"

#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_MLD_QUERY 130
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

/* RFC 4443 2.4 (f): a token bucket per core, refilled from now_us. */
static bool icmp6_err_token(struct net_stack *st)
{
	uint64_t add = (st->now_us - st->icmp6_err_stamp_us) *
		       ICMP6_ERR_PER_SEC / 1000000;

	if (add >= ICMP6_ERR_BURST) {
		st->icmp6_err_tokens = ICMP6_ERR_BURST;
		st->icmp6_err_stamp_us = st->now_us;
	} else if (add > 0) {
		st->icmp6_err_tokens = (uint32_t)RTE_MIN(
			(uint64_t)ICMP6_ERR_BURST, st->icmp6_err_tokens + add);
		st->icmp6_err_stamp_us += add * 1000000 / ICMP6_ERR_PER_SEC;
	}
	if (st->icmp6_err_tokens == 0) {
		st->stats.icmp6_errors_limited++;
		return false;
	}
	st->icmp6_err_tokens--;
	return true;
}

bool icmp6_error(struct net_stack *st, const struct rte_mbuf *m,
		 const struct net_l3 *l3, uint8_t type, uint8_t code,
		 uint32_t param, bool mcast_ok)
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr);
	/* RFC 4443 2.4 (c): the error fits the IPv6 minimum MTU. */
	const uint32_t room = 1280 - sizeof(struct rte_ipv6_hdr) - 8;
	const struct rte_ether_hdr *eh =
		rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct net_addr *src;
	struct rte_mbuf *r;
	uint32_t qlen;
	uint8_t *p;
	const void *q;

	/* RFC 4443 2.4 (e): not to a source that names no single node,
	 * and not about multicast, unless the caller may (2.4 e.3). */
	if (ip6_is_unspecified(&l3->src) || ip6_is_multicast(&l3->src))
		return false;
	if (!mcast_ok && (ip6_is_multicast(&l3->dst) ||
			  rte_is_multicast_ether_addr(&eh->dst_addr)))
		return false;
	if (rte_pktmbuf_pkt_len(m) <= l2 || !icmp6_err_token(st))
		return false;
	qlen = RTE_MIN(rte_pktmbuf_pkt_len(m) - l2, room);
	src = ip6_is_multicast(&l3->dst) ? ipv6_src_for(st, &l3->src)
					 : &l3->dst;
	p = ipv6_alloc(st, &r, src, &l3->src, IPPROTO_ICMPV6,
		       (uint16_t)(8 + qlen), 0, 64);
	if (p == NULL)
		return false;
	p[0] = type;
	p[1] = code;
	p[2] = p[3] = 0;
	p[4] = (uint8_t)(param >> 24);
	p[5] = (uint8_t)(param >> 16);
	p[6] = (uint8_t)(param >> 8);
	p[7] = (uint8_t)param;
	q = rte_pktmbuf_read(m, l2, qlen, p + 8);
	if (q != p + 8)
		memcpy(p + 8, q, qlen);
	st->stats.icmp6_errors_out++;
	ipv6_output(st, r);
	return true;
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
	if (p[0] == ICMP6_MLD_QUERY) {
		mld_input(st, m, l3, l4off, l4len);
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
