/*
 * nd.c - IPv6 Neighbor Discovery (RFC 4861) for a host: answer Neighbor
 * Solicitations for our addresses, solicit next hops (the cache itself,
 * its bound, expiry and pending queue are arp.c's, shared with ARP),
 * learn from advertisements, Duplicate Address Detection for our two
 * addresses (RFC 4862 5.4), and the policy for router messages: Router
 * Advertisements are ignored unless conf.ip6_accept_ra (then a router
 * lifetime makes the sender our default router), Redirects are never
 * accepted (counted), Router Solicitations are not for a host.
 *
 * Ownership: the IPv6 address state of the stack's lcore. Every core runs
 * DAD on the same schedule, core 0 alone transmits; the steering layer
 * copies NS/NA to every core (STEER_ALL, flagged NET_MBUF_REPLICA), so
 * each core sees a conflicting NA and learns solicited answers, and only
 * the receiving core answers.
 *
 * Promises: every message is validated as RFC 4861 7.1 says (hop limit
 * 255, code 0, lengths, option lengths non-zero and inside the message)
 * before anything is learned; nothing is ever learned from a replica
 * that was not asked for; no allocation but the frames sent.
 */
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>

#include "net_priv.h"

#define ND_RS 133
#define ND_RA 134
#define ND_NS 135
#define ND_NA 136
#define ND_REDIRECT 137
#define ND_OPT_SLLA 1
#define ND_OPT_TLLA 2
#define ND_NA_ROUTER 0x80
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE 0x20

static const struct net_addr nd_all_nodes = {
	{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

void nd_init(struct net_stack *st)
{
	uint64_t iid = net_siphash(st->sip_k0, st->sip_k1 ^ 0x6c6c36,
				   st->conf.mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	struct net_addr *ll = &st->ll6;

	/* RFC 4862 5.3: fe80::/64 and an interface identifier; ours is a
	 * keyed hash of the MAC (in the spirit of RFC 7217), not the
	 * modified EUI-64 of RFC 4291 2.5.1: net_tap gives the kernel end
	 * of the tap the same MAC as ours, so EUI-64 would make both ends
	 * claim one link-local address and one of them fail DAD. The same
	 * secret on every core gives every core the same address. */
	memset(ll, 0, sizeof(*ll));
	ll->b[0] = 0xfe;
	ll->b[1] = 0x80;
	memcpy(&ll->b[8], &iid, 8);
	st->gw6 = st->conf.ip6_gateway;
	if (st->conf.ip6_prefixlen == 0) {
		st->ip6_state = IP6_OFF;
		return;
	}
	st->dad_left = st->conf.dad_transmits;
	st->dad_next_us = 0;
	st->ip6_state = st->dad_left > 0 ? IP6_TENTATIVE : IP6_READY;
	mld_init(st);
}

bool net_stack_ip6_ready(const struct net_stack *st)
{
	return st->ip6_state == IP6_READY;
}

/* Send NS or NA. src: our address (unspecified for DAD); lla_type: the
 * link-layer option to carry (0: none); mac: Ethernet destination when
 * known (NULL: multicast or resolve). */
static void nd_send(struct net_stack *st, uint8_t type, uint8_t flags,
		    const struct net_addr *src, const struct net_addr *dst,
		    const struct net_addr *target, uint8_t lla_type,
		    const struct rte_ether_addr *mac)
{
	uint16_t len = (uint16_t)(24 + (lla_type ? 8 : 0));
	struct rte_mbuf *m;
	uint8_t *p = ipv6_alloc(st, &m, src, dst, IPPROTO_ICMPV6, len, 0, 255);

	if (p == NULL)
		return;
	memset(p, 0, len);
	p[0] = type;
	p[4] = flags;
	memcpy(&p[8], target, 16);
	if (lla_type) {
		p[24] = lla_type;
		p[25] = 1; /* 8 octets */
		memcpy(&p[26], st->conf.mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	}
	if (type == ND_NS)
		st->stats.nd_solicits_out++;
	else
		st->stats.nd_adverts_out++;
	if (mac != NULL)
		ipv6_output_to(st, m, mac);
	else
		ipv6_output(st, m);
}

void nd_solicit(struct net_stack *st, const struct net_addr *target)
{
	struct net_addr sn;

	if (st->ip6_state != IP6_READY)
		return;
	ip6_solicited_node(target, &sn);
	nd_send(st, ND_NS, 0, ipv6_src_for(st, target), &sn, target,
		ND_OPT_SLLA, NULL);
}

static void dad_send(struct net_stack *st, const struct net_addr *a)
{
	static const struct net_addr unspec;
	struct net_addr sn;

	/* RFC 4861 4.3: no source link-layer option from ::. */
	ip6_solicited_node(a, &sn);
	nd_send(st, ND_NS, 0, &unspec, &sn, a, 0, NULL);
}

void nd_poll(struct net_stack *st)
{
	/* RFC 4862 5.4.2: join the solicited-node groups (an MLD report)
	 * before the first DAD probe. */
	mld_poll(st);
	if (st->ip6_state != IP6_TENTATIVE)
		return;
	if (st->dad_next_us == 0)
		st->dad_next_us = st->now_us;
	if (st->now_us < st->dad_next_us)
		return;
	if (st->dad_left == 0) {
		/* RFC 4862 5.4: RetransTimer after the last NS, no answer:
		 * the addresses are ours. */
		st->ip6_state = IP6_READY;
		return;
	}
	if (st->conf.core_index == 0) {
		dad_send(st, &st->ll6);
		dad_send(st, &st->conf.ip6);
	}
	st->dad_left--;
	st->dad_next_us = st->now_us + ND_RETRANS_US;
}

uint64_t nd_next_timer(const struct net_stack *st)
{
	uint64_t m = mld_next_timer(st);

	if (st->ip6_state != IP6_TENTATIVE)
		return m;
	return RTE_MIN(m, st->dad_next_us == 0 ? st->now_us : st->dad_next_us);
}

/* Find a link-layer address option of the given type in the options
 * area. Returns -1 when the options are malformed (RFC 4861 7.1.1: a
 * zero length), 0 when absent, 1 with *mac filled. */
static int nd_find_lla(const uint8_t *o, uint32_t len, uint8_t type,
		       struct rte_ether_addr *mac)
{
	int found = 0;

	for (uint32_t i = 0; i < len;) {
		uint32_t olen;

		if (i + 2 > len)
			return -1;
		olen = (uint32_t)o[i + 1] * 8;
		if (olen == 0 || i + olen > len)
			return -1;
		if (o[i] == type && olen >= 8) {
			memcpy(mac->addr_bytes, &o[i + 2], RTE_ETHER_ADDR_LEN);
			found = 1;
		}
		i += olen;
	}
	return found;
}

static bool nd_target_ours(const struct net_stack *st, const struct net_addr *t)
{
	return memcmp(t, &st->conf.ip6, sizeof(*t)) == 0 ||
	       memcmp(t, &st->ll6, sizeof(*t)) == 0;
}

static void dad_conflict(struct net_stack *st)
{
	st->stats.dad_duplicates++;
	if (st->ip6_state == IP6_TENTATIVE)
		st->ip6_state = IP6_DUPLICATE;
}

static void nd_ns_input(struct net_stack *st, const struct rte_mbuf *m,
			const struct net_l3 *l3, const uint8_t *p, uint32_t len,
			bool replica)
{
	const struct rte_ether_hdr *eh =
		rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	struct rte_ether_addr slla;
	struct net_addr target;
	bool unspec = ip6_is_unspecified(&l3->src);
	int has;

	memcpy(&target, &p[8], 16);
	has = nd_find_lla(p + 24, len - 24, ND_OPT_SLLA, &slla);
	/* RFC 4861 7.1.1 */
	if (ip6_is_multicast(&target) || has < 0 || (unspec && has > 0) ||
	    (unspec && !ip6_is_multicast(&l3->dst))) {
		st->stats.drops[NET_DROP_ND]++;
		return;
	}
	if (!nd_target_ours(st, &target) || st->ip6_state == IP6_OFF ||
	    st->ip6_state == IP6_DUPLICATE)
		return;
	if (st->ip6_state == IP6_TENTATIVE) {
		/* RFC 4862 5.4.3: someone else's DAD for our address. */
		if (unspec)
			dad_conflict(st);
		return;
	}
	if (!unspec && has > 0)
		neigh_learn(st, &l3->src, &slla, true);
	if (replica)
		return;
	/* RFC 4861 7.2.4: answer; to all-nodes for a DAD probe. */
	if (unspec)
		nd_send(st, ND_NA, ND_NA_OVERRIDE, &target, &nd_all_nodes,
			&target, ND_OPT_TLLA, NULL);
	else
		nd_send(st, ND_NA, ND_NA_SOLICITED | ND_NA_OVERRIDE, &target,
			&l3->src, &target, ND_OPT_TLLA,
			has > 0 ? &slla : &eh->src_addr);
}

static void nd_na_input(struct net_stack *st, const struct rte_mbuf *m,
			const struct net_l3 *l3, const uint8_t *p, uint32_t len)
{
	const struct rte_ether_hdr *eh =
		rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	struct rte_ether_addr tlla;
	struct net_addr target;
	int has;

	memcpy(&target, &p[8], 16);
	has = nd_find_lla(p + 24, len - 24, ND_OPT_TLLA, &tlla);
	/* RFC 4861 7.1.2 */
	if (ip6_is_multicast(&target) || has < 0 ||
	    (ip6_is_multicast(&l3->dst) && (p[4] & ND_NA_SOLICITED))) {
		st->stats.drops[NET_DROP_ND]++;
		return;
	}
	st->stats.nd_adverts_in++;
	if (nd_target_ours(st, &target)) {
		/* RFC 4862 5.4.4: our address is someone else's. */
		dad_conflict(st);
		return;
	}
	/* RFC 4861 7.2.5: only an entry we have is updated. */
	neigh_learn(st, &target, has > 0 ? &tlla : &eh->src_addr, false);
}

static void nd_ra_input(struct net_stack *st, const struct rte_mbuf *m,
			const struct net_l3 *l3, const uint8_t *p, uint32_t len)
{
	struct rte_ether_addr slla;
	uint16_t lifetime = (uint16_t)((p[6] << 8) | p[7]);
	int has;

	if (!st->conf.ip6_accept_ra) {
		st->stats.nd_ra_ignored++;
		return;
	}
	/* RFC 4861 6.1.2: from a link-local source, 16 bytes at least. */
	has = len >= 16 ? nd_find_lla(p + 16, len - 16, ND_OPT_SLLA, &slla)
			: -1;
	if (!ip6_is_linklocal(&l3->src) || has < 0) {
		st->stats.drops[NET_DROP_ND]++;
		return;
	}
	if (lifetime > 0) {
		st->gw6 = l3->src;
		neigh_learn(st, &l3->src,
			    has > 0 ? &slla
				    : &rte_pktmbuf_mtod(
					       m, const struct rte_ether_hdr *)
					       ->src_addr,
			    true);
	} else if (memcmp(&st->gw6, &l3->src, sizeof(st->gw6)) == 0) {
		memset(&st->gw6, 0, sizeof(st->gw6));
	}
}

void nd_input(struct net_stack *st, struct rte_mbuf *m, const struct net_l3 *l3,
	      uint16_t l4off, uint16_t l4len)
{
	uint8_t buf[512];
	const uint8_t *p;
	bool replica = m->hash.usr == NET_MBUF_REPLICA;
	uint8_t type;

	if (l4len > sizeof(buf)) {
		net_drop(st, m, NET_DROP_ND);
		return;
	}
	p = rte_pktmbuf_read(m, l4off, l4len, buf);
	if (p == NULL) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	type = p[0];
	/* RFC 4861 6.1, 7.1, 8.1: hop limit 255 (never forwarded), code 0,
	 * and the fixed part present. */
	if (l3->hop_limit != 255 || p[1] != 0 ||
	    l4len < (type == ND_RA	   ? 16
		     : type == ND_REDIRECT ? 40
		     : type == ND_RS	   ? 8
					   : 24)) {
		net_drop(st, m, NET_DROP_ND);
		return;
	}
	switch (type) {
	case ND_NS:
		nd_ns_input(st, m, l3, p, l4len, replica);
		break;
	case ND_NA:
		nd_na_input(st, m, l3, p, l4len);
		break;
	case ND_RA:
		nd_ra_input(st, m, l3, p, l4len);
		break;
	case ND_REDIRECT:
		/* A host that sends only to on-link neighbors and one
		 * configured router has no use for redirects, and an
		 * on-path attacker has every use for them. */
		st->stats.nd_redirects_ignored++;
		break;
	default: /* RS: for routers */
		break;
	}
	rte_pktmbuf_free(m);
}
