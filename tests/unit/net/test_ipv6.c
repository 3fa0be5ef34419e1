/*
 * test_ipv6.c - packet-level tests of IPv6, Neighbor Discovery and
 * ICMPv6: NS/NA answers and resolution with its pending queue, retries
 * and expiry, hostile ND, router messages, DAD, echo, Packet Too Big
 * lowering the MSS (never below 1280 - 60), extension header chains
 * (legal and hostile), source/destination checks, flow labels and
 * dual-stack listeners. The TCP state machine over IPv6 is covered by
 * the whole TCP suite in family mode (test_net_tcp6).
 */
#include <errno.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "harness.h"

static struct rte_mempool *P;
static struct net_stack *S;
static struct t_app A;
static uint64_t T;

static const struct net_stats *ST(void)
{
	return net_stack_stats(S);
}

static void setup_with(void (*tweak)(struct net_stack_conf *))
{
	P = t_pool(2047);
	S = t_stack(P, tweak);
	memset(&A, 0, sizeof(A));
	T = 1000000;
	CHECK_EQ(tcp_listen(S, 25, &t_cb, &A), 0);
}

static void conf6(struct net_stack_conf *c)
{
	t_conf_ip6(c);
}

static void setup(void)
{
	setup_with(conf6);
}

static void teardown(void)
{
	t_destroy(S, P);
}

static struct net_addr sn_of(const struct net_addr *a)
{
	struct net_addr s = {{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff,
			      a->b[13], a->b[14], a->b[15]}};

	return s;
}

static const struct net_addr all_nodes = {
	{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
static const struct net_addr unspec;

/* An ND message: type, flags byte, target, optional link-layer option
 * (lla_type 0: none), from src to dst with hop limit hlim. */
static struct rte_mbuf *
nd_frame(uint8_t type, uint8_t flags, const struct net_addr *src,
	 const struct net_addr *dst, const struct net_addr *target,
	 uint8_t lla_type, uint8_t lla_len, uint8_t hlim)
{
	uint8_t b[40];
	uint32_t len = 24;

	memset(b, 0, sizeof(b));
	b[0] = type;
	b[4] = flags;
	memcpy(&b[8], target, 16);
	if (lla_type) {
		b[24] = lla_type;
		b[25] = lla_len;
		memcpy(&b[26], t_peer_mac.addr_bytes, 6);
		len = 32;
	}
	return t_build_ip6(P, src, dst, hlim, 0, NULL, 0, IPPROTO_ICMPV6, b,
			   len);
}

static void syn_family(bool v6, uint16_t sport, uint32_t seq)
{
	struct t_seg s;

	t_seg_init(&s);
	s.v6 = v6;
	s.sport = sport;
	s.seq = seq;
	s.flags = T_FLAG_SYN;
	s.mss = 1460;
	t_send(S, P, &s, T);
}

static void syn6(uint16_t sport, uint32_t seq)
{
	syn_family(true, sport, seq);
}

/* ---- Neighbor Discovery ---------------------------------------------- */

static void test_nd_ns_answered(void)
{
	struct net_addr sn = sn_of(&t_our_ip6);
	struct tcp_conn *c;
	struct t_out o;

	setup();
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_our_ip6, 1, 1, 255),
		 T);
	if (t_take1(S, &o)) {
		CHECK(o.v6);
		CHECK_EQ(o.icmp_type, 136);
		CHECK(o.l4_csum_ok);
		CHECK_EQ(o.hop_limit, 255);
		CHECK(memcmp(&o.src6, &t_our_ip6, 16) == 0);
		CHECK(memcmp(&o.dst6, &t_peer_ip6, 16) == 0);
		CHECK(memcmp(&o.dst, &t_peer_mac, 6) == 0);
		/* o.data: the message after its first 8 bytes: target, then
		 * the target link-layer option. Flags were S|O. */
		CHECK(memcmp(o.data, &t_our_ip6, 16) == 0);
		CHECK_EQ(o.data[16], 2);
		CHECK(memcmp(&o.data[18], &t_our_mac, 6) == 0);
	}
	CHECK_EQ(ST()->nd_adverts_out, 1);
	CHECK_EQ(ST()->arp_cached, 1);
	/* Learned from the solicitation: a connect goes straight out. */
	CHECK_EQ(tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c), 0);
	if (t_take1(S, &o)) {
		CHECK(o.v6);
		CHECK_EQ(o.flags, T_FLAG_SYN);
		CHECK_EQ(o.mss, 1440); /* 1500 - 40 - 20 */
		CHECK(memcmp(&o.dst, &t_peer_mac, 6) == 0);
		CHECK(o.l4_csum_ok);
	}
	/* A solicitation for someone else: no answer. */
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_off_ip6, 1, 1, 255),
		 T);
	CHECK_EQ(t_drain(S), 0);
	teardown();
}

static void test_nd_resolve_pending(void)
{
	struct net_addr sn = sn_of(&t_peer_ip6);
	struct tcp_conn *c;
	struct t_out o[8];
	int n;

	setup();
	CHECK_EQ(tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c), 0);
	if (t_take1(S, &o[0])) {
		uint8_t mc[6] = {0x33, 0x33, 0xff, 0, 0, 2};

		CHECK_EQ(o[0].icmp_type, 135);
		CHECK_EQ(o[0].hop_limit, 255);
		CHECK(o[0].l4_csum_ok);
		CHECK(memcmp(&o[0].dst6, &sn, 16) == 0);
		CHECK(memcmp(&o[0].dst, mc, 6) == 0);
		CHECK(memcmp(o[0].data, &t_peer_ip6, 16) == 0);
		CHECK_EQ(o[0].data[16], 1); /* source link-layer option */
	}
	/* Four frames wait for the answer, the fifth is dropped. */
	for (int i = 0; i < 4; i++)
		tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->drops[NET_DROP_ARP_PENDING], 1);
	t_inject(S,
		 nd_frame(136, 0x60, &t_peer_ip6, &t_our_ip6, &t_peer_ip6, 2, 1,
			  255),
		 T);
	n = t_take(S, o, 8);
	CHECK_EQ(n, 4);
	for (int i = 0; i < n; i++) {
		CHECK_EQ(o[i].flags, T_FLAG_SYN);
		CHECK(memcmp(&o[i].dst, &t_peer_mac, 6) == 0);
	}
	CHECK_EQ(ST()->nd_adverts_in, 1);
	teardown();
}

static void test_nd_retry_expiry(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c);
	CHECK_EQ(t_drain(S), 1); /* NS */
	/* Unanswered: two more solicitations a second apart, then the
	 * waiting frame is dropped. */
	for (int i = 0; i < 2; i++) {
		T += 1000000;
		net_stack_poll(S, T);
		if (t_take1(S, &o))
			CHECK_EQ(o.icmp_type, 135);
	}
	CHECK_EQ(ST()->nd_solicits_out, 3);
	T += 1000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 0);
	/* The SYN and its retransmissions waited; all dropped. */
	CHECK(ST()->drops[NET_DROP_ARP_PENDING] >= 1);
	CHECK_EQ(ST()->mbufs_held, 0);
	/* A learned entry expires after arp_timeout_ms. */
	t_learn_peer6(S, T);
	CHECK_EQ(ST()->arp_cached, 1);
	T += 31000000;
	net_stack_poll(S, T);
	CHECK_EQ(ST()->arp_cached, 0);
	teardown();
}

static void test_nd_unsolicited_na_not_learned(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	/* RFC 4861 7.2.5: no entry, no learning. */
	t_inject(S,
		 nd_frame(136, 0x20, &t_peer_ip6, &all_nodes, &t_peer_ip6, 2, 1,
			  255),
		 T);
	CHECK_EQ(ST()->arp_cached, 0);
	CHECK_EQ(ST()->nd_adverts_in, 1);
	tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c);
	if (t_take1(S, &o))
		CHECK_EQ(o.icmp_type, 135);
	teardown();
}

static void test_nd_hostile(void)
{
	struct net_addr sn = sn_of(&t_our_ip6);
	uint64_t nd0;
	uint8_t b[32];

	setup();
	nd0 = ST()->drops[NET_DROP_ND];
	/* Hop limit below 255: forwarded, so forged off-link. */
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_our_ip6, 1, 1, 64),
		 T);
	/* Option length 0. */
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_our_ip6, 1, 0, 255),
		 T);
	/* Option running past the end. */
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_our_ip6, 1, 2, 255),
		 T);
	/* DAD probe (from ::) carrying a link-layer option. */
	t_inject(S, nd_frame(135, 0, &unspec, &sn, &t_our_ip6, 1, 1, 255), T);
	/* DAD probe to a unicast destination. */
	t_inject(S,
		 nd_frame(135, 0, &unspec, &t_our_ip6, &t_our_ip6, 0, 0, 255),
		 T);
	/* Multicast target. */
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &all_nodes, 1, 1, 255),
		 T);
	/* Solicited advertisement to a multicast group. */
	t_inject(S,
		 nd_frame(136, 0x40, &t_peer_ip6, &all_nodes, &t_peer_ip6, 2, 1,
			  255),
		 T);
	/* Truncated: 20 bytes of NS. */
	memset(b, 0, sizeof(b));
	b[0] = 135;
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &sn, 255, 0, NULL, 0,
			     IPPROTO_ICMPV6, b, 20),
		 T);
	/* Non-zero code. */
	b[1] = 1;
	memcpy(&b[8], &t_our_ip6, 16);
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &sn, 255, 0, NULL, 0,
			     IPPROTO_ICMPV6, b, 24),
		 T);
	CHECK_EQ(ST()->drops[NET_DROP_ND] - nd0, 9);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->arp_cached, 0);
	CHECK_EQ(ST()->nd_adverts_in, 0);
	teardown();
}

static void accept_ra(struct net_stack_conf *c)
{
	t_conf_ip6(c);
	c->ip6_accept_ra = true;
}

static struct rte_mbuf *ra_frame(uint16_t lifetime)
{
	uint8_t b[24];

	memset(b, 0, sizeof(b));
	b[0] = 134;
	b[6] = (uint8_t)(lifetime >> 8);
	b[7] = (uint8_t)lifetime;
	b[16] = 1; /* source link-layer address: the router's */
	b[17] = 1;
	memcpy(&b[18], t_gw_mac.addr_bytes, 6);
	return t_build_ip6(P, &t_gw_ip6, &all_nodes, 255, 0, NULL, 0,
			   IPPROTO_ICMPV6, b, sizeof(b));
}

static void test_nd_router_messages(void)
{
	uint8_t rd[40];
	struct tcp_conn *c;
	struct t_out o;

	/* Ignored by default: an off-link destination is resolved on the
	 * link (no router), the RA only counted. */
	setup();
	t_inject(S, ra_frame(1800), T);
	CHECK_EQ(ST()->nd_ra_ignored, 1);
	CHECK_EQ(ST()->arp_cached, 0);
	tcp_connect6(S, &t_off_ip6, 25, &t_cb, &A, &c);
	if (t_take1(S, &o))
		CHECK(memcmp(o.data, &t_off_ip6, 16) == 0); /* NS target */
	/* A redirect is never accepted. */
	memset(rd, 0, sizeof(rd));
	rd[0] = 137;
	memcpy(&rd[8], &t_peer_ip6, 16);
	memcpy(&rd[24], &t_off_ip6, 16);
	t_inject(S,
		 t_build_ip6(P, &t_gw_ip6, &t_our_ip6, 255, 0, NULL, 0,
			     IPPROTO_ICMPV6, rd, sizeof(rd)),
		 T);
	CHECK_EQ(ST()->nd_redirects_ignored, 1);
	CHECK_EQ(t_drain(S), 0);
	teardown();

	/* Configured: the router becomes the default next hop. */
	setup_with(accept_ra);
	t_inject(S, ra_frame(1800), T);
	CHECK_EQ(ST()->nd_ra_ignored, 0);
	tcp_connect6(S, &t_off_ip6, 25, &t_cb, &A, &c);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_SYN);
		CHECK(memcmp(&o.dst, &t_gw_mac, 6) == 0);
		CHECK(memcmp(&o.dst6, &t_off_ip6, 16) == 0);
		/* Our link-local address is used only on the link. */
		CHECK(memcmp(&o.src6, &t_our_ip6, 16) == 0);
	}
	/* Lifetime 0: no longer a router. */
	t_inject(S, ra_frame(0), T);
	tcp_connect6(S, &t_off_ip6, 26, &t_cb, &A, &c);
	if (t_take1(S, &o))
		CHECK_EQ(o.icmp_type, 135);
	teardown();
}

/* ---- MLD (RFC 3810) ------------------------------------------------------ */

static void dad1_mld(struct net_stack_conf *c)
{
	t_conf_ip6(c);
	c->dad_transmits = 1;
	c->mld_reports = true;
}

/* Checks m is an MLDv2 report from src to ff02::16 with hop limit 1, a
 * hop-by-hop Router Alert (MLD), a valid checksum and one record of type
 * rtype per group in g[0..ng). */
static void check_mld_report(struct rte_mbuf *m, const struct net_addr *src,
			     uint8_t rtype, const struct net_addr *g, int ng)
{
	static const uint8_t mac[6] = {0x33, 0x33, 0, 0, 0, 0x16};
	static const struct net_addr all_routers = {
		{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16}};
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ipv6_hdr *ip = (const void *)(f + 14);
	const uint8_t *h = f + 14 + 40, *p = h + 8;
	uint32_t icmplen = 8 + 20 * (uint32_t)ng, sum;

	CHECK_EQ(rte_pktmbuf_data_len(m), 14 + 40 + 8 + icmplen);
	CHECK(memcmp(f, mac, 6) == 0);
	CHECK_EQ(f[12], 0x86);
	CHECK_EQ(f[13], 0xdd);
	CHECK_EQ(ip->hop_limits, 1);
	CHECK_EQ(ip->proto, 0);
	CHECK_EQ(rte_be_to_cpu_16(ip->payload_len), 8 + icmplen);
	CHECK(memcmp(ip->src_addr, src, 16) == 0);
	CHECK(memcmp(ip->dst_addr, &all_routers, 16) == 0);
	/* Hop-by-hop: next ICMPv6, length 0, Router Alert 0 (MLD). */
	CHECK_EQ(h[0], 58);
	CHECK_EQ(h[1], 0);
	CHECK(h[2] == 5 && h[3] == 2 && h[4] == 0 && h[5] == 0);
	/* ICMPv6 checksum over the pseudo-header of the report. */
	sum = rte_raw_cksum(ip->src_addr, 16) +
	      rte_raw_cksum(ip->dst_addr, 16) +
	      rte_cpu_to_be_16((uint16_t)icmplen) + rte_cpu_to_be_16(58) +
	      rte_raw_cksum(p, icmplen);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	CHECK_EQ(sum, 0xffff);
	CHECK_EQ(p[0], 143);
	CHECK_EQ(p[1], 0);
	CHECK_EQ((p[6] << 8) | p[7], ng);
	for (int i = 0; i < ng; i++) {
		const uint8_t *r = p + 8 + 20 * i;

		CHECK_EQ(r[0], rtype);
		CHECK(r[1] == 0 && r[2] == 0 && r[3] == 0);
		CHECK(memcmp(r + 4, &g[i], 16) == 0);
	}
}

/* An MLD query (v2 when len 28, v1 when 24) for group (NULL: general)
 * from src with hop limit hlim and max response ms. */
static void mld_query(const struct net_addr *src, uint8_t hlim,
		      const struct net_addr *group, uint16_t ms, uint32_t len)
{
	uint8_t q[28], ra[8] = {58, 0, 5, 2, 0, 0, 1, 0};

	memset(q, 0, sizeof(q));
	q[0] = 130;
	q[4] = (uint8_t)(ms >> 8);
	q[5] = (uint8_t)ms;
	if (group)
		memcpy(&q[8], group, 16);
	t_inject(S,
		 t_build_ip6(P, src, &all_nodes, hlim, 0, ra, sizeof(ra),
			     IPPROTO_ICMPV6, q, len),
		 T);
}

static void test_mld(void)
{
	static const struct net_addr unspec6;
	static const struct net_addr router = {
		{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
	struct net_addr g[2], ll;
	struct rte_mbuf *m[8];
	struct t_out o;
	uint16_t n;

	setup_with(dad1_mld);
	/* Start: the report comes before the DAD probes, from ::. */
	net_stack_poll(S, T);
	n = net_stack_take_tx(S, m, 8);
	CHECK_EQ(n, 3);
	if (n != 3)
		goto out;
	t_parse(m[1], &o);
	CHECK_EQ(o.icmp_type, 135);
	memcpy(&ll, o.data, 16); /* the link-local address DAD probes */
	CHECK(ll.b[0] == 0xfe && ll.b[1] == 0x80);
	g[0] = sn_of(&t_our_ip6);
	g[1] = sn_of(&ll);
	check_mld_report(m[0], &unspec6, 4, g, 2);
	for (int i = 0; i < n; i++)
		rte_pktmbuf_free(m[i]);
	CHECK_EQ(ST()->mld_reports_out, 1);
	/* Robustness 2: the second a second later, still from :: (it goes
	 * before DAD ends in the same poll); then no more. */
	T += 1000000;
	CHECK_EQ(net_stack_next_timer_us(S, T), 0);
	net_stack_poll(S, T);
	n = net_stack_take_tx(S, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1) {
		check_mld_report(m[0], &unspec6, 4, g, 2);
		rte_pktmbuf_free(m[0]);
	}
	CHECK(net_stack_ip6_ready(S));
	T += 5000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(net_stack_next_timer_us(S, T), UINT64_MAX);

	/* A general query (v2) with max response 0: answered at once with
	 * the current state (MODE_IS_EXCLUDE {}) from our link-local. */
	mld_query(&router, 1, NULL, 0, 28);
	net_stack_poll(S, T);
	n = net_stack_take_tx(S, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1) {
		check_mld_report(m[0], &ll, 2, g, 2);
		rte_pktmbuf_free(m[0]);
	}
	/* A query for our global address's group, v1, max response 2 s:
	 * answered within 2 s, not after. */
	mld_query(&router, 1, &g[0], 2000, 24);
	CHECK(net_stack_next_timer_us(S, T) <= 2000000);
	T += 2000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 1);
	CHECK_EQ(ST()->mld_reports_out, 4);
	/* Not answered: hop limit 64, a global source, another group,
	 * a short message. */
	mld_query(&router, 64, NULL, 0, 28);
	mld_query(&t_peer_ip6, 1, NULL, 0, 28);
	mld_query(&router, 1, &all_nodes, 0, 28);
	mld_query(&router, 1, NULL, 0, 20);
	T += 11000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->mld_reports_out, 4);
out:
	teardown();
}

/* ---- DAD ------------------------------------------------------------- */

static void dad1(struct net_stack_conf *c)
{
	t_conf_ip6(c);
	c->dad_transmits = 1;
}

static void test_dad(void)
{
	struct net_addr sn = sn_of(&t_our_ip6);
	struct tcp_conn *c;
	struct t_out o[4];

	setup_with(dad1);
	CHECK(!net_stack_ip6_ready(S));
	CHECK_EQ(net_stack_next_timer_us(S, T), 0);
	net_stack_poll(S, T);
	CHECK_EQ(t_take(S, o, 4), 2); /* link-local and global */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(o[i].icmp_type, 135);
		CHECK(memcmp(&o[i].src6, &unspec, 16) == 0);
		CHECK_EQ(o[i].len, 16); /* target only, no option */
	}
	CHECK(memcmp(o[1].data, &t_our_ip6, 16) == 0);
	/* Tentative: traffic to the address is not ours yet. */
	syn6(5555, 1);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->drops[NET_DROP_DAD], 1);
	CHECK_EQ(tcp_connect6(S, &t_peer_ip6, 80, &t_cb, &A, &c),
		 -EADDRNOTAVAIL);
	/* Nobody objected for RetransTimer: ready. */
	T += 999999;
	net_stack_poll(S, T);
	CHECK(!net_stack_ip6_ready(S));
	T += 1;
	net_stack_poll(S, T);
	CHECK(net_stack_ip6_ready(S));
	t_inject(S, nd_frame(135, 0, &t_peer_ip6, &sn, &t_our_ip6, 1, 1, 255),
		 T);
	CHECK_EQ(t_drain(S), 1);
	teardown();

	/* Someone advertises our address: duplicate, IPv6 stays off. */
	setup_with(dad1);
	net_stack_poll(S, T);
	t_drain(S);
	t_inject(S,
		 nd_frame(136, 0x20, &t_peer_ip6, &all_nodes, &t_our_ip6, 2, 1,
			  255),
		 T);
	T += 2000000;
	net_stack_poll(S, T);
	CHECK(!net_stack_ip6_ready(S));
	CHECK_EQ(ST()->dad_duplicates, 1);
	syn6(5555, 1);
	CHECK_EQ(t_drain(S), 0);
	teardown();

	/* Someone else runs DAD for our address at the same time. */
	setup_with(dad1);
	net_stack_poll(S, T);
	t_drain(S);
	t_inject(S, nd_frame(135, 0, &unspec, &sn, &t_our_ip6, 0, 0, 255), T);
	T += 2000000;
	net_stack_poll(S, T);
	CHECK(!net_stack_ip6_ready(S));
	CHECK_EQ(ST()->dad_duplicates, 1);
	teardown();
}

/* ---- ICMPv6 ---------------------------------------------------------- */

static void test_icmp6_echo(void)
{
	uint8_t b[64];
	struct t_out o;

	setup();
	t_learn_peer6(S, T);
	memset(b, 0, sizeof(b));
	b[0] = 128;
	for (int i = 4; i < 64; i++)
		b[i] = (uint8_t)i;
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0,
			     IPPROTO_ICMPV6, b, sizeof(b)),
		 T);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.icmp_type, 129);
		CHECK(o.l4_csum_ok);
		CHECK(memcmp(&o.dst6, &t_peer_ip6, 16) == 0);
		CHECK(memcmp(&o.src6, &t_our_ip6, 16) == 0);
		CHECK_EQ(o.len, 56);
		CHECK(memcmp(o.data, b + 8, 56) == 0);
	}
	CHECK_EQ(ST()->icmp6_echo, 1);
	/* To all-nodes: not answered (no amplification). */
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &all_nodes, 64, 0, NULL, 0,
			     IPPROTO_ICMPV6, b, sizeof(b)),
		 T);
	CHECK_EQ(t_drain(S), 0);
	/* Bad checksum. */
	{
		struct rte_mbuf *m =
			t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0,
				    IPPROTO_ICMPV6, b, sizeof(b));

		*rte_pktmbuf_mtod_offset(m, uint8_t *, 14 + 40 + 10) ^= 1;
		t_inject(S, m, T);
	}
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->icmp6_echo, 1);
	CHECK_EQ(ST()->drops[NET_DROP_ICMP], 2);
	teardown();
}

/* Passive IPv6 connection from the peer's port 5555; returns our ISS. */
static uint32_t handshake6(void)
{
	struct t_seg s;
	struct t_out o;

	t_learn_peer6(S, T);
	syn6(5555, 1000);
	if (!t_take1(S, &o))
		return 0;
	CHECK(o.v6);
	CHECK_EQ(o.mss, 1440);
	t_seg_init(&s);
	s.v6 = true;
	s.seq = 1001;
	s.ack = o.seq + 1;
	s.flags = T_FLAG_ACK;
	t_send(S, P, &s, T);
	CHECK_EQ(A.accepted, 1);
	return o.seq;
}

/* Packet Too Big from a router quoting the segment (seq) we sent. */
static void ptb(uint32_t mtu, uint32_t seq, const struct net_addr *inner_src)
{
	uint8_t b[8 + 40 + 20];
	struct rte_ipv6_hdr *in = (struct rte_ipv6_hdr *)(b + 8);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(b + 48);

	memset(b, 0, sizeof(b));
	b[0] = 2;
	b[4] = (uint8_t)(mtu >> 24);
	b[5] = (uint8_t)(mtu >> 16);
	b[6] = (uint8_t)(mtu >> 8);
	b[7] = (uint8_t)mtu;
	in->vtc_flow = rte_cpu_to_be_32(6u << 28);
	in->proto = IPPROTO_TCP;
	in->hop_limits = 64;
	memcpy(in->src_addr, inner_src, 16);
	memcpy(in->dst_addr, &t_peer_ip6, 16);
	th->src_port = rte_cpu_to_be_16(25);
	th->dst_port = rte_cpu_to_be_16(5555);
	th->sent_seq = rte_cpu_to_be_32(seq);
	t_inject(S,
		 t_build_ip6(P, &t_gw_ip6, &t_our_ip6, 64, 0, NULL, 0,
			     IPPROTO_ICMPV6, b, sizeof(b)),
		 T);
}

static void test_icmp6_packet_too_big(void)
{
	static uint8_t d[4000];
	uint32_t iss;
	struct t_out o[8];
	int n;

	setup();
	iss = handshake6();
	CHECK_EQ(tcp_conn_mss(A.conn), 1440);
	tcp_send(A.conn, d, sizeof(d));
	n = t_take(S, o, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(o[0].len, 1440);
	/* A quoted sequence number not in flight: ignored (RFC 5927). */
	ptb(1400, iss + 5000, &t_our_ip6);
	CHECK_EQ(tcp_conn_mss(A.conn), 1440);
	/* A quote of somebody else's packet: refused. */
	ptb(1400, iss + 1, &t_off_ip6);
	CHECK_EQ(tcp_conn_mss(A.conn), 1440);
	CHECK_EQ(ST()->drops[NET_DROP_ICMP], 1);
	/* The real one: MSS 1400 - 60, what was too big goes again. */
	ptb(1400, iss + 1, &t_our_ip6);
	CHECK_EQ(ST()->icmp6_ptb, 2);
	CHECK_EQ(tcp_conn_mss(A.conn), 1340);
	n = t_take(S, o, 8);
	CHECK(n >= 1);
	if (n >= 1) {
		CHECK_EQ(o[0].seq, iss + 1);
		CHECK_EQ(o[0].len, 1340);
	}
	/* Below the IPv6 minimum MTU: 1280 - 60 and no lower. */
	ptb(600, iss + 1, &t_our_ip6);
	CHECK_EQ(tcp_conn_mss(A.conn), 1220);
	t_drain(S);
	ptb(68, iss + 1, &t_our_ip6);
	CHECK_EQ(tcp_conn_mss(A.conn), 1220);
	t_drain(S);
	teardown();
}

/* ---- IPv6 validation and extension headers ---------------------------- */

/* A SYN from sport to port 25 with an MSS option of 1460. */
static void syn_l4(uint8_t l4[24], uint16_t sport)
{
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)l4;

	memset(l4, 0, 24);
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(25);
	th->sent_seq = rte_cpu_to_be_32(77);
	th->data_off = 6 << 4;
	th->tcp_flags = T_FLAG_SYN;
	th->rx_win = rte_cpu_to_be_16(65535);
	l4[20] = 2;
	l4[21] = 4;
	l4[22] = 0x05;
	l4[23] = 0xb4;
}

/* A SYN to port 25 behind the given extension headers. */
static void syn_ext(uint8_t first, const uint8_t *ext, uint32_t len)
{
	uint8_t l4[24];

	syn_l4(l4, 6000);
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, first, ext, len,
			     IPPROTO_TCP, l4, sizeof(l4)),
		 T);
}

/* An 8-byte options header (hop-by-hop or destination) with next header
 * nh and one option of type opt (PadN-sized). */
static void opt8(uint8_t *p, uint8_t nh, uint8_t opt)
{
	memset(p, 0, 8);
	p[0] = nh;
	p[1] = 0;
	p[2] = opt;
	p[3] = 4;
}

static int synacks(void)
{
	struct t_out o[4];
	int n = t_take(S, o, 4), k = 0;

	for (int i = 0; i < n; i++)
		if (o[i].flags == (T_FLAG_SYN | T_FLAG_ACK))
			k++;
	return k;
}

static void test_ext_headers(void)
{
	uint8_t e[512];
	uint64_t ext0, frag0;

	setup();
	t_learn_peer6(S, T);
	/* Legal: hop-by-hop (PadN), destination options (Router Alert is
	 * hop-by-hop's, an unknown skippable type 0x1e), routing type 2
	 * with no segments left. */
	opt8(e, 60, 1);
	opt8(e + 8, 43, 0x1e);
	memset(e + 16, 0, 8);
	e[16] = IPPROTO_TCP;
	e[18] = 2; /* type 2 */
	e[19] = 0; /* segments left */
	syn_ext(0, e, 24);
	CHECK_EQ(synacks(), 1);
	CHECK_EQ(ST()->ip6_ext_hdrs, 3);

	ext0 = ST()->drops[NET_DROP_IP6_EXT];
	/* Hop-by-hop not first. */
	opt8(e, 0, 1);
	opt8(e + 8, IPPROTO_TCP, 1);
	syn_ext(60, e, 16);
	/* Routing type 0 (RFC 5095). */
	memset(e, 0, 8);
	e[0] = IPPROTO_TCP;
	e[2] = 0;
	syn_ext(43, e, 8);
	/* Routing with segments left: we do not forward. */
	e[2] = 4;
	e[3] = 1;
	syn_ext(43, e, 8);
	/* An option that says "discard if unknown". */
	opt8(e, IPPROTO_TCP, 0x80);
	syn_ext(60, e, 8);
	/* An option longer than its header. */
	opt8(e, IPPROTO_TCP, 1);
	e[3] = 9;
	syn_ext(60, e, 8);
	/* A header longer than the packet. */
	opt8(e, IPPROTO_TCP, 1);
	e[1] = 30;
	syn_ext(60, e, 8);
	/* Nine destination-options headers: past the walk bound. */
	for (int i = 0; i < 9; i++)
		opt8(e + 8 * i, i < 8 ? 60 : IPPROTO_TCP, 1);
	syn_ext(60, e, 72);
	/* A chain longer than the byte bound (256): 128 + 136 bytes of
	 * PadN in two destination-options headers. */
	memset(e, 0, sizeof(e));
	e[0] = 60;
	e[1] = 15; /* (15 + 1) * 8 = 128 bytes */
	e[128] = IPPROTO_TCP;
	e[129] = 16; /* 136 bytes */
	for (int i = 2; i < 128; i += 6) {
		e[i] = 1;
		e[i + 1] = (uint8_t)RTE_MIN(4, 126 - i);
	}
	for (int i = 2; i < 136; i += 6) {
		e[128 + i] = 1;
		e[128 + i + 1] = (uint8_t)RTE_MIN(4, 134 - i);
	}
	syn_ext(60, e, 264);
	CHECK_EQ(ST()->drops[NET_DROP_IP6_EXT] - ext0, 8);
	CHECK_EQ(synacks(), 0);

	/* A fragment header: counted and dropped. */
	frag0 = ST()->ip_frags;
	memset(e, 0, 8);
	e[0] = IPPROTO_TCP;
	e[3] = 1; /* more fragments */
	syn_ext(44, e, 8);
	CHECK_EQ(ST()->ip_frags - frag0, 1);
	CHECK_EQ(ST()->drops[NET_DROP_IP_FRAG], 1);
	/* No next header. */
	memset(e, 0, 8);
	e[0] = 59;
	syn_ext(60, e, 8);
	CHECK_EQ(ST()->drops[NET_DROP_IP_PROTO], 1);
	CHECK_EQ(synacks(), 0);
	teardown();
}

/* ---- ICMPv6 errors (RFC 8200 4, RFC 4443 2.4) --------------------------- */

/* RFC 4443 3.4 codes, and the stack's burst (ICMP6_ERR_BURST). */
#define PP_HEADER 0
#define PP_NEXTHDR 1
#define PP_OPTION 2
#define ERR_BURST 10

/* A frame from the peer to dst: ext (first header type first) then 16
 * bytes of an upper layer of type l4proto. */
static void bad_chain(const struct net_addr *src, const struct net_addr *dst,
		      uint8_t first, const uint8_t *ext, uint32_t len,
		      uint8_t l4proto)
{
	uint8_t l4[16];

	memset(l4, 0xab, sizeof(l4));
	t_inject(S,
		 t_build_ip6(P, src, dst, 64, first, ext, len, l4proto, l4,
			     sizeof(l4)),
		 T);
}

/* Expects exactly one Parameter Problem with code and pointer, from our
 * address to the peer, quoting the invoking packet of plen bytes. */
static void expect_pp(uint8_t code, uint32_t ptr, uint32_t plen, int line)
{
	struct t_out o[4];
	int n = t_take(S, o, 4);

	if (n != 1 || !o[0].v6 || o[0].proto != IPPROTO_ICMPV6 ||
	    o[0].icmp_type != 4 || o[0].icmp_code != code ||
	    o[0].icmp_param != ptr || !o[0].l4_csum_ok || o[0].len != plen ||
	    o[0].data[0] != 0x60 || memcmp(&o[0].dst6, &t_peer_ip6, 16) != 0 ||
	    memcmp(&o[0].src6, &t_our_ip6, 16) != 0) {
		fprintf(stderr,
			"FAIL line %d: %d frames; type %u code %u param %u "
			"len %u (want code %u pointer %u len %u)\n",
			line, n, n ? o[0].icmp_type : 0, n ? o[0].icmp_code : 0,
			n ? o[0].icmp_param : 0, n ? o[0].len : 0, code, ptr,
			plen);
		CHECK(!"one Parameter Problem as expected");
	}
}
#define EXPECT_PP(code, ptr, plen) expect_pp(code, ptr, plen, __LINE__)

/* Split frame m into a chain of two segments at byte off. */
static struct rte_mbuf *split_at(struct rte_mbuf *m, uint32_t off)
{
	struct rte_mbuf *m2 = rte_pktmbuf_alloc(P);
	uint32_t rest = rte_pktmbuf_data_len(m) - off;
	char *d;

	CHECK(m2 != NULL);
	if (m2 == NULL)
		return m;
	d = rte_pktmbuf_append(m2, (uint16_t)rest);
	memcpy(d, rte_pktmbuf_mtod_offset(m, char *, off), rest);
	rte_pktmbuf_trim(m, (uint16_t)rest);
	CHECK_EQ(rte_pktmbuf_chain(m, m2), 0);
	return m;
}

/* Extension headers (and the TCP header) split over two segments are
 * moved up into the first: the SYN is answered wherever the cut is. */
static void test_ext_headers_chained(void)
{
	static const uint32_t cuts[] = {14 + 40 + 4, 14 + 40 + 8,
					14 + 40 + 16 + 3, 14 + 40 + 16 + 20};
	uint8_t e[16], l4[24];

	setup();
	t_learn_peer6(S, T);
	for (size_t i = 0; i < RTE_DIM(cuts); i++) {
		struct rte_mbuf *m;

		opt8(e, 60, 1);
		opt8(e + 8, IPPROTO_TCP, 0x1e);
		syn_l4(l4, (uint16_t)(6100 + i));
		m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, e, 16,
				IPPROTO_TCP, l4, sizeof(l4));
		m = split_at(m, cuts[i]);
		CHECK_EQ(m->nb_segs, 2);
		t_inject(S, m, T);
		CHECK_EQ(synacks(), 1);
	}
	CHECK_EQ(ST()->ip6_ext_hdrs, 2 * RTE_DIM(cuts));
	CHECK_EQ(ST()->drops[NET_DROP_IP6_EXT], 0);
	teardown();
}

static void test_icmp6_errors(void)
{
	static const struct net_addr unspec6;
	uint8_t e[64], big[1400];
	uint64_t lim0;
	int sent;

	setup();
	t_learn_peer6(S, T);
	/* An unrecognized Next Header in the IPv6 header: code 1, pointing
	 * at its Next Header field (offset 6). */
	bad_chain(&t_peer_ip6, &t_our_ip6, 0, NULL, 0, 253);
	EXPECT_PP(PP_NEXTHDR, 6, 40 + 16);
	/* ... after a destination-options header: at that header's
	 * first byte (40). */
	opt8(e, 253, 1);
	bad_chain(&t_peer_ip6, &t_our_ip6, 60, e, 8, 253);
	EXPECT_PP(PP_NEXTHDR, 40, 40 + 8 + 16);
	/* Hop-by-hop not first (RFC 8200 4.1): code 1 at the Next Header
	 * of the destination options that names it. */
	opt8(e, 0, 1);
	opt8(e + 8, IPPROTO_TCP, 1);
	bad_chain(&t_peer_ip6, &t_our_ip6, 60, e, 16, IPPROTO_TCP);
	EXPECT_PP(PP_NEXTHDR, 40, 40 + 16 + 16);
	/* Options whose type says "discard and report" (10xxxxxx) and
	 * "report unless multicast" (11xxxxxx): code 2 at the option type
	 * (after a PadN of 4 the second option: 40 + 8 + 2). */
	opt8(e, 60, 1);
	opt8(e + 8, IPPROTO_TCP, 0x80);
	bad_chain(&t_peer_ip6, &t_our_ip6, 0, e, 16, IPPROTO_TCP);
	EXPECT_PP(PP_OPTION, 50, 40 + 16 + 16);
	opt8(e, IPPROTO_TCP, 0xc2);
	bad_chain(&t_peer_ip6, &t_our_ip6, 60, e, 8, IPPROTO_TCP);
	EXPECT_PP(PP_OPTION, 42, 40 + 8 + 16);
	/* To all-nodes: 10xxxxxx is still reported (RFC 8200 4.2), from
	 * our address; 11xxxxxx and an unknown Next Header are not (RFC
	 * 4443 2.4 e.3). */
	opt8(e, IPPROTO_TCP, 0x80);
	bad_chain(&t_peer_ip6, &all_nodes, 60, e, 8, IPPROTO_TCP);
	EXPECT_PP(PP_OPTION, 42, 40 + 8 + 16);
	opt8(e, IPPROTO_TCP, 0xc2);
	bad_chain(&t_peer_ip6, &all_nodes, 60, e, 8, IPPROTO_TCP);
	bad_chain(&t_peer_ip6, &all_nodes, 0, NULL, 0, 253);
	CHECK_EQ(t_drain(S), 0);
	/* 01xxxxxx: discarded silently. */
	opt8(e, IPPROTO_TCP, 0x42);
	bad_chain(&t_peer_ip6, &t_our_ip6, 60, e, 8, IPPROTO_TCP);
	CHECK_EQ(t_drain(S), 0);
	/* A routing header with segments left: code 0 at its type. */
	memset(e, 0, 8);
	e[0] = IPPROTO_TCP;
	e[2] = 4;
	e[3] = 1;
	bad_chain(&t_peer_ip6, &t_our_ip6, 43, e, 8, IPPROTO_TCP);
	EXPECT_PP(PP_HEADER, 42, 40 + 8 + 16);
	/* Silent: UDP (no port unreachable, as over IPv4), No Next Header,
	 * a fragment, a malformed option, an unspecified source. */
	bad_chain(&t_peer_ip6, &t_our_ip6, 0, NULL, 0, IPPROTO_UDP);
	bad_chain(&t_peer_ip6, &t_our_ip6, 0, NULL, 0, 59);
	memset(e, 0, 8);
	e[0] = IPPROTO_TCP;
	e[3] = 1;
	bad_chain(&t_peer_ip6, &t_our_ip6, 44, e, 8, IPPROTO_TCP);
	opt8(e, IPPROTO_TCP, 1);
	e[3] = 9;
	bad_chain(&t_peer_ip6, &t_our_ip6, 60, e, 8, IPPROTO_TCP);
	bad_chain(&unspec6, &t_our_ip6, 0, NULL, 0, 253);
	CHECK_EQ(t_drain(S), 0);
	/* A replica (a copy of an NS/NA steered to every core): only the
	 * receiving core reports. */
	{
		uint8_t l4[16];
		struct rte_mbuf *m;

		memset(l4, 0xab, sizeof(l4));
		m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0,
				253, l4, sizeof(l4));
		m->hash.usr = NET_MBUF_REPLICA;
		t_inject(S, m, T);
		CHECK_EQ(t_drain(S), 0);
	}
	/* The quote stops at the minimum MTU: 1280 bytes in all. */
	memset(big, 0x5a, sizeof(big));
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0, 253,
			     big, sizeof(big)),
		 T);
	EXPECT_PP(PP_NEXTHDR, 6, 1280 - 48);
	CHECK_EQ(ST()->icmp6_errors_out, 8);

	/* Rate limit: a burst of 30 in one instant gets what is left of
	 * the bucket, then nothing; a second later the bucket is full. */
	T += 1000000;
	lim0 = ST()->icmp6_errors_limited;
	sent = 0;
	for (int i = 0; i < 30; i++) {
		bad_chain(&t_peer_ip6, &t_our_ip6, 0, NULL, 0, 253);
		sent += t_drain(S);
	}
	CHECK_EQ(sent, ERR_BURST);
	CHECK_EQ(ST()->icmp6_errors_limited - lim0, 30 - ERR_BURST);
	T += 50000; /* 50 ms: 5 tokens at 100 a second */
	sent = 0;
	for (int i = 0; i < 10; i++) {
		bad_chain(&t_peer_ip6, &t_our_ip6, 0, NULL, 0, 253);
		sent += t_drain(S);
	}
	CHECK_EQ(sent, 5);
	teardown();
}

/* Hop limit: ND demands 255 (tested with the ND cases); anything else is
 * accepted, 0 included (RFC 8200 3 discards it only when forwarding). */
static void test_hop_limit_zero(void)
{
	uint8_t l4[20];
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)l4;

	setup();
	t_learn_peer6(S, T);
	memset(l4, 0, sizeof(l4));
	th->src_port = rte_cpu_to_be_16(6001);
	th->dst_port = rte_cpu_to_be_16(25);
	th->sent_seq = rte_cpu_to_be_32(5);
	th->data_off = 5 << 4;
	th->tcp_flags = T_FLAG_SYN;
	th->rx_win = rte_cpu_to_be_16(65535);
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 0, 0, NULL, 0,
			     IPPROTO_TCP, l4, sizeof(l4)),
		 T);
	CHECK_EQ(synacks(), 1);
	teardown();
}

static void test_ip6_validation(void)
{
	static const struct net_addr mc_src = {
		{0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}};
	static const struct net_addr loop = {
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
	struct net_addr mapped = net_addr_from_v4(rte_cpu_to_be_32(T_PEER_IP));
	struct rte_mbuf *m;
	struct t_seg s;
	uint8_t b[24];

	setup();
	t_learn_peer6(S, T);
	/* TCP from a multicast, unspecified, loopback or mapped source. */
	t_seg_init(&s);
	s.v6 = true;
	s.flags = T_FLAG_SYN;
	s.src6 = &mc_src;
	t_send(S, P, &s, T);
	s.src6 = &unspec;
	t_send(S, P, &s, T);
	s.src6 = &loop;
	t_send(S, P, &s, T);
	s.src6 = &mapped;
	t_send(S, P, &s, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP6_SRC], 4);
	/* Not our address; TCP to a multicast group we are in. */
	memset(b, 0, sizeof(b));
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &t_off_ip6, 64, 0, NULL, 0,
			     IPPROTO_TCP, b, 20),
		 T);
	t_inject(S,
		 t_build_ip6(P, &t_peer_ip6, &all_nodes, 64, 0, NULL, 0,
			     IPPROTO_TCP, b, 20),
		 T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_DST], 2);
	/* Version 4 in an IPv6 frame; payload length 0; a payload length
	 * beyond the frame. */
	m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0, IPPROTO_TCP,
			b, 20);
	*rte_pktmbuf_mtod_offset(m, uint8_t *, 14) = 0x40;
	t_inject(S, m, T);
	m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0, IPPROTO_TCP,
			b, 20);
	*rte_pktmbuf_mtod_offset(m, uint16_t *, 18) = 0;
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_HDR], 2);
	m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0, IPPROTO_TCP,
			b, 20);
	*rte_pktmbuf_mtod_offset(m, uint16_t *, 18) = rte_cpu_to_be_16(21);
	t_inject(S, m, T);
	/* Shorter than an IPv6 header. */
	m = t_build_ip6(P, &t_peer_ip6, &t_our_ip6, 64, 0, NULL, 0, IPPROTO_TCP,
			b, 20);
	rte_pktmbuf_trim(m, 40);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_SHORT], 2);
	/* A bad TCP checksum. */
	t_seg_init(&s);
	s.v6 = true;
	s.flags = T_FLAG_SYN;
	s.bad_csum = true;
	t_send(S, P, &s, T);
	CHECK_EQ(ST()->drops[NET_DROP_TCP_CSUM], 1);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();

	/* IPv6 not configured: IPv6 frames are an unknown type. */
	setup_with(NULL);
	syn6(5555, 1);
	CHECK_EQ(ST()->drops[NET_DROP_ETH_TYPE], 1);
	CHECK_EQ(t_drain(S), 0);
	teardown();
}

/* ---- TCP details of the IPv6 path ------------------------------------ */

static void test_flow_label_and_dual_stack(void)
{
	struct net_addr la, ra;
	rte_be32_t l4, r4;
	uint16_t lp, rp;
	struct t_out o1, o2;
	struct t_seg s;

	setup();
	t_learn_peer6(S, T);
	t_learn_peer(S, T);
	handshake6();
	CHECK(tcp_conn_is_v6(A.conn));
	tcp_conn_addrs6(A.conn, &la, &lp, &ra, &rp);
	CHECK(memcmp(&la, &t_our_ip6, 16) == 0);
	CHECK(memcmp(&ra, &t_peer_ip6, 16) == 0);
	CHECK_EQ(lp, 25);
	CHECK_EQ(rp, 5555);
	/* The IPv4 accessor says 0.0.0.0 rather than a wrong address. */
	tcp_conn_addrs(A.conn, &l4, NULL, &r4, NULL);
	CHECK_EQ(l4, 0);
	CHECK_EQ(r4, 0);
	/* One flow label per connection (RFC 6437), on every segment. */
	tcp_send(A.conn, "a", 1);
	t_take1(S, &o1);
	tcp_send(A.conn, "b", 1);
	t_take1(S, &o2);
	CHECK_EQ(o1.flow, o2.flow);
	CHECK(o1.flow != 0);
	/* Another client port, another label. */
	syn6(5556, 3000);
	if (t_take1(S, &o2))
		CHECK(o1.flow != o2.flow);
	/* The same listener takes IPv4. */
	memset(&A, 0, sizeof(A));
	t_seg_init(&s);
	s.v6 = false;
	s.flags = T_FLAG_SYN;
	s.seq = 9;
	t_send(S, P, &s, T);
	if (t_take1(S, &o1)) {
		CHECK(!o1.v6);
		CHECK_EQ(o1.flags, T_FLAG_SYN | T_FLAG_ACK);
	}
	teardown();
}

/* A listener restricted to one family (a listener with an address,
 * issue 16): the other family's SYN gets RST as on a closed port, its
 * own family's SYN-ACK; the restriction can change and be lifted. */
static void test_listener_family(void)
{
	struct t_out o;

	setup();
	t_learn_peer6(S, T);
	t_learn_peer(S, T);
	CHECK_EQ(tcp_listen_families(S, 25, TCP_FAMILY_V6), 0);
	syn_family(false, 7001, 9);
	if (t_take1(S, &o)) {
		CHECK(!o.v6);
		CHECK_EQ(o.flags, T_FLAG_RST | T_FLAG_ACK);
	}
	syn6(7002, 100);
	if (t_take1(S, &o)) {
		CHECK(o.v6);
		CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
	}
	CHECK_EQ(tcp_listen_families(S, 25, TCP_FAMILY_V4), 0);
	syn6(7003, 100);
	if (t_take1(S, &o)) {
		CHECK(o.v6);
		CHECK_EQ(o.flags, T_FLAG_RST | T_FLAG_ACK);
	}
	syn_family(false, 7004, 9);
	if (t_take1(S, &o))
		CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
	CHECK_EQ(tcp_listen_families(S, 25, TCP_FAMILY_ANY), 0);
	syn6(7005, 100);
	if (t_take1(S, &o))
		CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
	CHECK_EQ(tcp_listen_families(S, 25, 0), -EINVAL);
	CHECK_EQ(tcp_listen_families(S, 26, TCP_FAMILY_V4), -ENOENT);
	teardown();
}

/* Under a SYN flood (backlog full), cookies over IPv6 validate too. */
static void backlog1(struct net_stack_conf *c)
{
	t_conf_ip6(c);
	c->syn_backlog = 1;
}

static void test_syncookie6(void)
{
	struct t_seg s;
	struct t_out o;

	setup_with(backlog1);
	t_learn_peer6(S, T);
	syn6(5000, 10);
	t_drain(S);
	syn6(5001, 20);
	if (!t_take1(S, &o))
		goto out;
	CHECK_EQ(ST()->syncookies_sent, 1);
	CHECK_EQ(o.mss, 1440);
	t_seg_init(&s);
	s.v6 = true;
	s.sport = 5001;
	s.seq = 21;
	s.ack = o.seq + 1;
	s.flags = T_FLAG_ACK;
	t_send(S, P, &s, T);
	CHECK_EQ(ST()->syncookies_ok, 1);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(tcp_conn_mss(A.conn), 1440);
out:
	teardown();
}

int main(void)
{
#define C(x)                                                                   \
	{                                                                      \
#x, x                                                          \
	}
	static const struct {
		const char *name;
		t_case_fn fn;
	} cases[] = {
		C(test_nd_ns_answered),
		C(test_nd_resolve_pending),
		C(test_nd_retry_expiry),
		C(test_nd_unsolicited_na_not_learned),
		C(test_nd_hostile),
		C(test_nd_router_messages),
		C(test_dad),
		C(test_mld),
		C(test_icmp6_echo),
		C(test_icmp6_packet_too_big),
		C(test_ext_headers),
		C(test_ext_headers_chained),
		C(test_icmp6_errors),
		C(test_hop_limit_zero),
		C(test_ip6_validation),
		C(test_flow_label_and_dual_stack),
		C(test_listener_family),
		C(test_syncookie6),
	};
	const char *names[RTE_DIM(cases)];
	t_case_fn fns[RTE_DIM(cases)];

	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		names[i] = cases[i].name;
		fns[i] = cases[i].fn;
	}
	return t_run("net_ipv6", names, fns, (int)RTE_DIM(cases));
}
