/*
 * test_ipv4.c - packet-level tests of Ethernet, ARP, IPv4 and ICMP: ARP
 * reply / request / retry / expiry / bound / replicas, ICMP echo and
 * fragmentation-needed, IPv4 validation drops, RX checksum flags and TX
 * checksum offload.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
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
	tcp_listen(S, 25, &t_cb, &A);
}

static void setup(void)
{
	setup_with(NULL);
}

static void teardown(void)
{
	t_destroy(S, P);
}

static struct rte_mbuf *arp_frame(uint16_t op, uint32_t sip,
				  const struct rte_ether_addr *sha,
				  uint32_t tip, bool replica)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(P);
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *ah;

	rte_pktmbuf_append(m, sizeof(*eh) + sizeof(*ah));
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (op == RTE_ARP_OP_REQUEST)
		memset(&eh->dst_addr, 0xff, 6);
	else
		eh->dst_addr = t_our_mac;
	eh->src_addr = *sha;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	ah = (struct rte_arp_hdr *)(eh + 1);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = 6;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(op);
	ah->arp_data.arp_sha = *sha;
	ah->arp_data.arp_sip = rte_cpu_to_be_32(sip);
	memset(&ah->arp_data.arp_tha, 0, 6);
	ah->arp_data.arp_tip = rte_cpu_to_be_32(tip);
	if (replica)
		m->hash.usr = NET_MBUF_REPLICA;
	return m;
}

static struct rte_ether_addr mac_of(uint8_t last)
{
	struct rte_ether_addr a = {{0x02, 0, 0, 0, 1, last}};

	return a;
}

/* ---- ARP ------------------------------------------------------------- */

static void test_arp_reply(void)
{
	struct t_out o;

	setup();
	t_inject(S,
		 arp_frame(RTE_ARP_OP_REQUEST, T_PEER_IP, &t_peer_mac, T_OUR_IP,
			   false),
		 T);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.ether_type, RTE_ETHER_TYPE_ARP);
		CHECK_EQ(o.arp_op, RTE_ARP_OP_REPLY);
		CHECK_EQ(o.arp_sip, T_OUR_IP);
		CHECK_EQ(o.arp_tip, T_PEER_IP);
		CHECK(memcmp(&o.dst, &t_peer_mac, 6) == 0);
		CHECK(memcmp(&o.src, &t_our_mac, 6) == 0);
	}
	CHECK_EQ(ST()->arp_replies_out, 1);
	CHECK_EQ(ST()->arp_cached, 1);
	/* A request for someone else: not answered, not learned. */
	t_inject(S,
		 arp_frame(RTE_ARP_OP_REQUEST, 0x0a000007, &t_gw_mac,
			   0x0a000009, false),
		 T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->arp_cached, 1);
	CHECK_EQ(ST()->drops[NET_DROP_ARP], 1);
	teardown();
}

static void test_arp_replica_not_answered(void)
{
	struct rte_ether_addr m5 = mac_of(5), m6 = mac_of(6);
	struct tcp_conn *c;
	struct t_out o;

	setup();
	t_inject(S,
		 arp_frame(RTE_ARP_OP_REQUEST, 0x0a000005, &m5, T_OUR_IP, true),
		 T);
	CHECK_EQ(t_drain(S), 0); /* learned only */
	CHECK_EQ(ST()->arp_cached, 1);
	CHECK_EQ(ST()->arp_replies_out, 0);
	/* A replicated reply seen by this core fills its cache. */
	t_inject(S,
		 arp_frame(RTE_ARP_OP_REPLY, 0x0a000006, &m6, T_OUR_IP, true),
		 T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->arp_cached, 2);
	CHECK_EQ(ST()->arp_replies_in, 1);
	/* ...and is used without a request. */
	tcp_connect(S, rte_cpu_to_be_32(0x0a000006), 25, &t_cb, &A, &c);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.ether_type, RTE_ETHER_TYPE_IPV4);
		CHECK(memcmp(&o.dst, &m6, 6) == 0);
	}
	teardown();
}

static void test_arp_request_queue_and_resolve(void)
{
	struct rte_ether_addr m3 = mac_of(3);
	struct tcp_conn *c;
	struct t_out o[8];
	int n;

	setup();
	for (int i = 0; i < 6; i++)
		CHECK_EQ(tcp_connect(S, rte_cpu_to_be_32(0x0a000003), 25, &t_cb,
				     &A, &c),
			 0);
	/* One request; four SYNs wait; two are dropped (bounded). */
	if (t_take1(S, o)) {
		CHECK_EQ(o[0].arp_op, RTE_ARP_OP_REQUEST);
		CHECK_EQ(o[0].arp_tip, 0x0a000003);
		CHECK(rte_is_broadcast_ether_addr(&o[0].dst));
	}
	CHECK_EQ(ST()->drops[NET_DROP_ARP_PENDING], 2);
	CHECK_EQ(ST()->arp_requests_out, 1);
	CHECK_EQ(ST()->mbufs_held, 4);
	t_inject(S,
		 arp_frame(RTE_ARP_OP_REPLY, 0x0a000003, &m3, T_OUR_IP, false),
		 T + 100);
	n = t_take(S, o, 8);
	CHECK_EQ(n, 4);
	for (int i = 0; i < n; i++) {
		CHECK_EQ(o[i].flags, T_FLAG_SYN);
		CHECK(memcmp(&o[i].dst, &m3, 6) == 0);
	}
	CHECK_EQ(ST()->mbufs_held, 0);
	/* Off-link destinations resolve the gateway. */
	tcp_connect(S, rte_cpu_to_be_32(T_OFF_IP), 25, &t_cb, &A, &c);
	if (t_take1(S, o))
		CHECK_EQ(o[0].arp_tip, T_GW_IP);
	teardown();
}

static void test_arp_retry_giveup(void)
{
	struct tcp_conn *c;

	setup();
	net_stack_poll(S, T);
	tcp_connect(S, rte_cpu_to_be_32(0x0a000004), 25, &t_cb, &A, &c);
	CHECK_EQ(t_drain(S), 1);
	CHECK_EQ(net_stack_next_timer_us(S, T), 1000000);
	net_stack_poll(S, T + 1000000);
	CHECK_EQ(t_drain(S), 1); /* retry */
	net_stack_poll(S, T + 2000000);
	CHECK_EQ(t_drain(S), 1);
	CHECK_EQ(ST()->arp_requests_out, 3);
	/* Gives up: the SYN and its two retransmissions (RTO 1 s, 2 s)
	 * that waited on the entry are dropped. */
	net_stack_poll(S, T + 3000000);
	CHECK_EQ(ST()->drops[NET_DROP_ARP_PENDING], 3);
	CHECK_EQ(ST()->arp_requests_out, 3);
	CHECK_EQ(ST()->mbufs_held, 0);
	teardown();
}

static void test_arp_expiry(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	t_learn_peer(S, T);
	CHECK_EQ(ST()->arp_cached, 1);
	net_stack_poll(S, T + 29999999);
	CHECK_EQ(ST()->arp_cached, 1);
	net_stack_poll(S, T + 30000000); /* arp_timeout_ms = 30 s */
	CHECK_EQ(ST()->arp_cached, 0);
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 25, &t_cb, &A, &c);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.ether_type, RTE_ETHER_TYPE_ARP);
		CHECK_EQ(o.arp_tip, T_PEER_IP);
	}
	teardown();
}

/* An entry in use is asked for again in the last three seconds of its
 * life while it is still used (frames go out, nothing waits); the answer
 * renews it, so a busy next hop never lapses into PENDING. */
static void test_arp_refresh_ahead(void)
{
	struct tcp_conn *c;
	struct t_out o[8];
	int arp = 0, syn = 0, n;

	setup();
	t_learn_peer(S, T);
	net_stack_poll(S, T + 26000000);
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 25, &t_cb, &A, &c);
	CHECK_EQ(t_drain(S), 1); /* age 26 s: the SYN alone */
	CHECK_EQ(ST()->arp_requests_out, 0);
	net_stack_poll(S, T + 27500000);
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 26, &t_cb, &A, &c);
	n = t_take(S, o, 8);
	for (int i = 0; i < n; i++) {
		arp += o[i].ether_type == RTE_ETHER_TYPE_ARP;
		syn += o[i].ether_type == RTE_ETHER_TYPE_IPV4;
	}
	CHECK_EQ(arp, 1); /* age 27.5 s: asked again ... */
	/* ... and the frames went out at once: the new SYN and the first
	 * one's retransmission (RTO 1 s) */
	CHECK_EQ(syn, 2);
	CHECK_EQ(ST()->drops[NET_DROP_ARP_PENDING], 0);
	t_learn_peer(S, T + 28000000); /* the answer renews the entry */
	net_stack_poll(S, T + 31000000);
	CHECK_EQ(ST()->arp_cached, 1);
	CHECK_EQ(ST()->drops[NET_DROP_ARP_PENDING], 0);
	teardown();
}

static void test_arp_cache_bound(void)
{
	setup();
	for (int i = 0; i < 12; i++) {
		struct rte_ether_addr m = mac_of((uint8_t)(10 + i));

		t_inject(S,
			 arp_frame(RTE_ARP_OP_REQUEST,
				   0x0a000010u + (uint32_t)i, &m, T_OUR_IP,
				   false),
			 T + (uint64_t)i);
	}
	CHECK_EQ(t_drain(S), 12);      /* all answered */
	CHECK_EQ(ST()->arp_cached, 8); /* arp_entries, oldest evicted */
	teardown();
}

/* ---- ICMP ------------------------------------------------------------ */

static struct rte_mbuf *icmp_frame(uint8_t type, uint8_t code, const void *body,
				   uint32_t blen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(P);
	struct rte_ether_hdr *eh;
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *ih;
	uint32_t tlen = sizeof(*ip) + 8 + blen;

	rte_pktmbuf_append(m, (uint16_t)(sizeof(*eh) + tlen));
	memset(rte_pktmbuf_mtod(m, void *), 0, m->data_len);
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eh->dst_addr = t_our_mac;
	eh->src_addr = t_peer_mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)tlen);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_ICMP;
	ip->src_addr = rte_cpu_to_be_32(T_PEER_IP);
	ip->dst_addr = rte_cpu_to_be_32(T_OUR_IP);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	ih = (struct rte_icmp_hdr *)(ip + 1);
	ih->icmp_type = type;
	ih->icmp_code = code;
	memcpy((uint8_t *)ih + 8, body, blen);
	return m;
}

static void icmp_fix(struct rte_mbuf *m, uint16_t w1, uint16_t w2, bool bad)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(
		m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	struct rte_icmp_hdr *ih = (struct rte_icmp_hdr *)(ip + 1);
	uint32_t len = rte_be_to_cpu_16(ip->total_length) - sizeof(*ip);

	ih->icmp_ident = rte_cpu_to_be_16(w1);
	ih->icmp_seq_nb = rte_cpu_to_be_16(w2);
	ih->icmp_cksum = 0;
	ih->icmp_cksum = (uint16_t)~rte_raw_cksum(ih, len);
	if (bad)
		ih->icmp_cksum ^= 1;
}

static void test_icmp_echo(void)
{
	struct rte_mbuf *m;
	struct t_out o;

	setup();
	t_learn_peer(S, T);
	m = icmp_frame(RTE_IP_ICMP_ECHO_REQUEST, 0, "ping-payload", 12);
	icmp_fix(m, 0x1234, 7, false);
	t_inject(S, m, T);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.proto, IPPROTO_ICMP);
		CHECK_EQ(o.icmp_type, RTE_IP_ICMP_ECHO_REPLY);
		CHECK_EQ(o.dst_ip, T_PEER_IP);
		CHECK_EQ(o.src_ip, T_OUR_IP);
		CHECK(o.ip_csum_ok);
		CHECK(o.l4_csum_ok);
		CHECK_EQ(o.len, 12);
		CHECK(memcmp(o.data, "ping-payload", 12) == 0);
	}
	CHECK_EQ(ST()->icmp_echo, 1);
	/* Bad ICMP checksum: dropped. */
	m = icmp_frame(RTE_IP_ICMP_ECHO_REQUEST, 0, "x", 1);
	icmp_fix(m, 1, 1, true);
	t_inject(S, m, T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->drops[NET_DROP_ICMP], 1);
	teardown();
}

/* Establish an active connection to the peer; returns the conn. */
static struct tcp_conn *active_conn(uint32_t *iss, uint16_t *lport)
{
	struct tcp_conn *c;
	struct t_out o;
	struct t_seg s;

	t_learn_peer(S, T);
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o);
	*iss = o.seq;
	*lport = o.sport;
	t_seg_init(&s);
	s.sport = 80;
	s.dport = o.sport;
	s.seq = 100;
	s.ack = o.seq + 1;
	s.flags = T_FLAG_SYN | T_FLAG_ACK;
	s.mss = 1460;
	t_send(S, P, &s, T);
	t_drain(S);
	CHECK_EQ(tcp_conn_state(c), TCP_ESTABLISHED);
	return c;
}

static void test_icmp_frag_needed(void)
{
	static uint8_t d[4000];
	struct tcp_conn *c;
	uint32_t iss;
	uint16_t lport;
	uint8_t body[28];
	struct rte_ipv4_hdr *in = (struct rte_ipv4_hdr *)body;
	struct rte_mbuf *m;
	struct t_out o[8];
	int n;

	setup();
	c = active_conn(&iss, &lport);
	CHECK_EQ(tcp_conn_mss(c), 1460);
	CHECK_EQ(tcp_send(c, d, sizeof(d)), 4000);
	CHECK_EQ(t_take(S, o, 8), 3);
	/* Quote of our first segment: IP header + 8 bytes of TCP. */
	memset(body, 0, sizeof(body));
	in->version_ihl = RTE_IPV4_VHL_DEF;
	in->next_proto_id = IPPROTO_TCP;
	in->src_addr = rte_cpu_to_be_32(T_OUR_IP);
	in->dst_addr = rte_cpu_to_be_32(T_PEER_IP);
	body[20] = (uint8_t)(lport >> 8);
	body[21] = (uint8_t)lport;
	body[22] = 0;
	body[23] = 80;
	{
		uint32_t q = rte_cpu_to_be_32(iss + 1);

		memcpy(&body[24], &q, 4);
	}
	/* A quote with a sequence number not in flight is ignored
	 * (RFC 5927). */
	{
		uint8_t bogus[28];
		uint32_t q = rte_cpu_to_be_32(iss + 100000);

		memcpy(bogus, body, 28);
		memcpy(&bogus[24], &q, 4);
		m = icmp_frame(3, 4, bogus, 28);
		icmp_fix(m, 0, 1000, false);
		t_inject(S, m, T);
		CHECK_EQ(tcp_conn_mss(c), 1460);
	}
	m = icmp_frame(3, 4, body, 28);
	icmp_fix(m, 0, 1000, false); /* unused, next-hop MTU 1000 */
	t_inject(S, m, T);
	CHECK_EQ(ST()->icmp_frag_needed, 2);
	CHECK_EQ(tcp_conn_mss(c), 960);
	/* What was in flight is resent in smaller segments. */
	n = t_take(S, o, 8);
	CHECK(n >= 1);
	for (int i = 0; i < n; i++)
		CHECK(o[i].len <= 960);
	if (n >= 1) {
		CHECK_EQ(o[0].seq, iss + 1);
		CHECK_EQ(o[0].len, 960);
	}
	teardown();
}

/* ---- IPv4 / Ethernet validation ------------------------------------- */

static struct rte_mbuf *syn_frame(void)
{
	struct t_seg s;

	t_seg_init(&s);
	s.flags = T_FLAG_SYN;
	s.seq = 1;
	return t_build_tcp(P, &s);
}

static struct rte_ipv4_hdr *ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
				       sizeof(struct rte_ether_hdr));
}

static void ip_recsum(struct rte_mbuf *m)
{
	ip_of(m)->hdr_checksum = 0;
	ip_of(m)->hdr_checksum = rte_ipv4_cksum(ip_of(m));
}

static void test_ip_drops(void)
{
	struct rte_mbuf *m;

	setup();
	t_learn_peer(S, T);

	m = syn_frame();
	ip_of(m)->hdr_checksum ^= 0x0101;
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_CSUM], 1);

	m = syn_frame();
	ip_of(m)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
	ip_recsum(m);
	t_inject(S, m, T);
	m = syn_frame();
	ip_of(m)->fragment_offset = rte_cpu_to_be_16(100);
	ip_recsum(m);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_FRAG], 2);
	CHECK_EQ(ST()->ip_frags, 2);

	m = syn_frame();
	ip_of(m)->dst_addr = rte_cpu_to_be_32(0x0a000009);
	ip_recsum(m);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_DST], 1);

	m = syn_frame();
	ip_of(m)->version_ihl = 0x65;
	ip_recsum(m);
	t_inject(S, m, T);
	m = syn_frame();
	ip_of(m)->total_length = rte_cpu_to_be_16(10);
	ip_recsum(m);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_HDR], 2);

	m = syn_frame();
	ip_of(m)->next_proto_id = IPPROTO_UDP;
	ip_recsum(m);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_IP_PROTO], 1);

	m = syn_frame();
	rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->dst_addr = t_gw_mac;
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_ETH_DST], 1);

	m = syn_frame();
	rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->ether_type =
		rte_cpu_to_be_16(0x86dd);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_ETH_TYPE], 1);

	m = syn_frame();
	rte_pktmbuf_trim(m, m->pkt_len - 20);
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_SHORT], 1);

	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->live_tcbs, 0);
	/* A good SYN with Ethernet padding still works. */
	m = syn_frame();
	rte_pktmbuf_append(m, 6);
	t_inject(S, m, T);
	CHECK_EQ(t_drain(S), 1);
	CHECK_EQ(ST()->syn_rcvd, 1);
	teardown();
}

static void test_rx_checksum_flags(void)
{
	struct rte_mbuf *m;

	setup();
	t_learn_peer(S, T);
	/* The PMD vouched for both checksums: not re-verified. */
	m = syn_frame();
	ip_of(m)->hdr_checksum ^= 0x0101;
	m->ol_flags |=
		RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	t_inject(S, m, T);
	CHECK_EQ(ST()->syn_rcvd, 1);
	CHECK_EQ(t_drain(S), 1);
	/* The PMD says L4 is bad: dropped even though it is right. */
	m = syn_frame();
	m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
	t_inject(S, m, T);
	CHECK_EQ(ST()->drops[NET_DROP_TCP_CSUM], 1);
	teardown();
}

static void offload(struct net_stack_conf *c)
{
	c->tx_offloads =
		RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
}

static void test_tx_checksum_offload(void)
{
	struct rte_mbuf *m;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;

	setup_with(offload);
	t_learn_peer(S, T);
	t_inject(S, syn_frame(), T);
	CHECK_EQ(net_stack_take_tx(S, &m, 1), 1);
	ip = ip_of(m);
	th = (struct rte_tcp_hdr *)(ip + 1);
	CHECK(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
	CHECK(m->ol_flags & RTE_MBUF_F_TX_TCP_CKSUM);
	CHECK(m->ol_flags & RTE_MBUF_F_TX_IPV4);
	CHECK_EQ(m->l2_len, 14);
	CHECK_EQ(m->l3_len, 20);
	CHECK_EQ(ip->hdr_checksum, 0);
	CHECK_EQ(th->cksum, rte_ipv4_phdr_cksum(ip, m->ol_flags));
	rte_pktmbuf_free(m);
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
		C(test_arp_reply),
		C(test_arp_replica_not_answered),
		C(test_arp_request_queue_and_resolve),
		C(test_arp_retry_giveup),
		C(test_arp_expiry),
		C(test_arp_refresh_ahead),
		C(test_arp_cache_bound),
		C(test_icmp_echo),
		C(test_icmp_frag_needed),
		C(test_ip_drops),
		C(test_rx_checksum_flags),
		C(test_tx_checksum_offload),
	};
	const char *names[RTE_DIM(cases)];
	t_case_fn fns[RTE_DIM(cases)];

	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		names[i] = cases[i].name;
		fns[i] = cases[i].fn;
	}
	return t_run("net_ipv4", names, fns, (int)RTE_DIM(cases));
}
