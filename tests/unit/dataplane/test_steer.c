/*
 * test_steer.c - steering rules (dataplane/steer.h): a client's every
 * connection lands on one core, active-open ports map to their core,
 * ICMP errors follow the quoted connection, ARP goes to every core; over
 * IPv6 the client's /64 decides, extension headers do not hide the
 * ports, NS/NA go to every core and Packet Too Big follows its quote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/steer.h"

static int failures;
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static struct rte_mempool *pool;

static struct rte_mbuf *tcp_frame(uint32_t src, uint32_t dst, uint16_t sport,
				  uint16_t dport)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;

	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(
		m, sizeof(*eth) + sizeof(*ip) + sizeof(*th));
	memset(eth, 0, sizeof(*eth) + sizeof(*ip) + sizeof(*th));
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	ip->version_ihl = 0x45;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(src);
	ip->dst_addr = rte_cpu_to_be_32(dst);
	th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	return m;
}

/* IPv6 frame: src/dst addresses, next header chain in ext (ext_len
 * bytes, first type first_nh), then 8 bytes of l4 (ports or ICMPv6). */
static struct rte_mbuf *frame6(const uint8_t *src, const uint8_t *dst,
			       uint8_t first_nh, const uint8_t *ext,
			       uint32_t ext_len, const uint8_t *l4,
			       uint32_t l4_len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv6_hdr *ip;
	uint32_t len = sizeof(*eth) + sizeof(*ip) + ext_len + l4_len;

	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)len);
	memset(eth, 0, len);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eth + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->proto = first_nh;
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	if (ext_len > 0)
		memcpy((uint8_t *)(ip + 1), ext, ext_len);
	memcpy((uint8_t *)(ip + 1) + ext_len, l4, l4_len);
	return m;
}

static void test_ipv6(struct steer_conf *sc)
{
	static const uint8_t us[16] = {0xfd, 0, 0x6d, 0x78, 0, 0, 0, 0,
				       0,    0, 0,	0,    0, 0, 0, 2};
	uint8_t cl[16] = {0xfd, 0, 0x6d, 0x78, 0, 0, 0, 0,
			  0,	0, 0,	 0,    0, 0, 0, 0};
	uint8_t tcp[20] = {0x15, 0xb3, 0, 25}; /* 5555 -> 25 */
	uint8_t ext[16] = {0};
	unsigned hist[4] = {0};
	struct rte_mbuf *m;
	uint16_t lo, hi;

	/* Every address inside one /64 lands on one core; /64s spread. */
	for (uint32_t net = 0; net < 4000; net++) {
		uint16_t k0 = 0;

		cl[6] = (uint8_t)(net >> 8);
		cl[7] = (uint8_t)net;
		for (uint32_t host = 0; host < 8; host++) {
			uint16_t k;

			cl[8] = (uint8_t)(host * 37);
			cl[15] = (uint8_t)(host * 91 + 1);
			tcp[1] = (uint8_t)host;
			m = frame6(cl, us, IPPROTO_TCP, NULL, 0, tcp, 20);
			k = steer_frame(sc, m);
			rte_pktmbuf_free(m);
			if (host == 0)
				k0 = k;
			CHECK(k == k0);
			CHECK(k < 4);
		}
		CHECK(k0 == steer_core_of_ip6(sc, cl));
		hist[k0]++;
	}
	for (int k = 0; k < 4; k++)
		CHECK(hist[k] > 700 && hist[k] < 1300);

	/* Behind hop-by-hop + destination options, the active-open port
	 * still decides. */
	steer_eph_range(sc, 3, &lo, &hi);
	tcp[2] = (uint8_t)(lo >> 8);
	tcp[3] = (uint8_t)lo;
	ext[0] = 60;	      /* HBH -> DSTOPTS */
	ext[8] = IPPROTO_TCP; /* DSTOPTS -> TCP */
	m = frame6(cl, us, 0, ext, 16, tcp, 20);
	CHECK(steer_frame(sc, m) == 3);
	rte_pktmbuf_free(m);

	/* NS and NA: every core. Echo: local. */
	for (uint8_t type = 135; type <= 136; type++) {
		uint8_t nd[24] = {type};

		m = frame6(cl, us, IPPROTO_ICMPV6, NULL, 0, nd, 24);
		CHECK(steer_frame(sc, m) == STEER_ALL);
		rte_pktmbuf_free(m);
	}
	{
		uint8_t echo[8] = {128};

		m = frame6(cl, us, IPPROTO_ICMPV6, NULL, 0, echo, 8);
		CHECK(steer_frame(sc, m) == STEER_LOCAL);
		rte_pktmbuf_free(m);
	}
	/* Packet Too Big quoting our segment us:25 -> cl:5555: the
	 * client's core. */
	{
		uint8_t ptb[8 + 40 + 8] = {2};
		struct rte_ipv6_hdr *in = (struct rte_ipv6_hdr *)(ptb + 8);
		uint8_t router[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
				      0,    0,	  0, 0, 0, 0, 0, 1};

		in->vtc_flow = rte_cpu_to_be_32(6u << 28);
		in->proto = IPPROTO_TCP;
		memcpy(in->src_addr, us, 16);
		memcpy(in->dst_addr, cl, 16);
		ptb[48] = 0;
		ptb[49] = 25;
		ptb[50] = 0x15;
		ptb[51] = 0xb3;
		m = frame6(router, us, IPPROTO_ICMPV6, NULL, 0, ptb,
			   sizeof(ptb));
		CHECK(steer_frame(sc, m) == steer_core_of_ip6(sc, cl));
		rte_pktmbuf_free(m);
	}
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf",
		       "-m", "64", "-l", "0", "--log-level=error", NULL};
	struct steer_conf sc = {.n_cores = 4, .seed = 12345,
				.eph_base = 32768, .eph_per_core = 7000};
	unsigned hist[4] = {0};
	struct rte_mbuf *m;
	uint16_t lo, hi;

	(void)argc;
	if (rte_eal_init(9, eal) < 0)
		return 1;
	pool = rte_pktmbuf_pool_create("t", 1024, 0, 0, 2048, 0);
	CHECK(pool != NULL);

	/* Same client IP, any port: same core. Spread over cores. */
	for (uint32_t ip = 0; ip < 4000; ip++) {
		uint32_t a = 0xc6120000u + ip; /* 198.18.x.y */
		uint16_t k0 = 0;

		for (uint16_t p = 1000; p < 1010; p++) {
			uint16_t k;

			m = tcp_frame(a, 0xc6120002u, p, 25);
			k = steer_frame(&sc, m);
			rte_pktmbuf_free(m);
			if (p == 1000)
				k0 = k;
			CHECK(k == k0);
			CHECK(k < 4);
		}
		hist[k0]++;
	}
	for (int k = 0; k < 4; k++)
		CHECK(hist[k] > 700 && hist[k] < 1300);

	/* Active-open return traffic: by destination port range. */
	for (uint16_t k = 0; k < 4; k++) {
		steer_eph_range(&sc, k, &lo, &hi);
		CHECK(hi - lo + 1 == 7000);
		m = tcp_frame(0x0a000001u, 0xc6120002u, 25, lo);
		CHECK(steer_frame(&sc, m) == k);
		rte_pktmbuf_free(m);
		m = tcp_frame(0x0a000001u, 0xc6120002u, 25, hi);
		CHECK(steer_frame(&sc, m) == k);
		rte_pktmbuf_free(m);
	}
	CHECK(steer_core_of_port(&sc, 32767) == STEER_LOCAL);
	CHECK(steer_core_of_port(&sc, 32768 + 28000) == STEER_LOCAL);

	/* ARP: every core. */
	m = rte_pktmbuf_alloc(pool);
	{
		struct rte_ether_hdr *eth = (struct rte_ether_hdr *)
			rte_pktmbuf_append(m, 60);
		memset(eth, 0, 60);
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
		CHECK(steer_frame(&sc, m) == STEER_ALL);
	}
	rte_pktmbuf_free(m);

	/* ICMP frag-needed quoting our segment 198.18.0.2:25 -> client:5555
	 * goes to the client's core; quoting an active open goes by port. */
	for (int variant = 0; variant < 2; variant++) {
		uint32_t client = 0xc6120a0bu;
		uint16_t ourport = variant ? (uint16_t)(32768 + 7000 * 2 + 5)
					   : 25;
		struct rte_ether_hdr *eth;
		struct rte_ipv4_hdr *ip, *in;
		struct rte_icmp_hdr *ic;
		struct rte_tcp_hdr *th;
		uint16_t want;

		m = rte_pktmbuf_alloc(pool);
		eth = (struct rte_ether_hdr *)rte_pktmbuf_append(
			m, sizeof(*eth) + 20 + 8 + 20 + 20);
		memset(eth, 0, sizeof(*eth) + 68);
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		ip = (struct rte_ipv4_hdr *)(eth + 1);
		ip->version_ihl = 0x45;
		ip->next_proto_id = IPPROTO_ICMP;
		ip->src_addr = rte_cpu_to_be_32(0x0a000009u); /* a router */
		ic = (struct rte_icmp_hdr *)(ip + 1);
		ic->icmp_type = 3;
		ic->icmp_code = 4;
		in = (struct rte_ipv4_hdr *)((uint8_t *)ic + 8);
		in->version_ihl = 0x45;
		in->next_proto_id = IPPROTO_TCP;
		in->src_addr = rte_cpu_to_be_32(0xc6120002u);
		in->dst_addr = rte_cpu_to_be_32(client);
		th = (struct rte_tcp_hdr *)(in + 1);
		th->src_port = rte_cpu_to_be_16(ourport);
		th->dst_port = rte_cpu_to_be_16(5555);
		want = variant ? 2
			       : steer_core_of_ip(&sc,
						  rte_cpu_to_be_32(client));
		CHECK(steer_frame(&sc, m) == want);
		rte_pktmbuf_free(m);
	}

	test_ipv6(&sc);

	/* Truncated junk stays local, one core means local. */
	m = rte_pktmbuf_alloc(pool);
	rte_pktmbuf_append(m, 10);
	CHECK(steer_frame(&sc, m) == STEER_LOCAL);
	rte_pktmbuf_free(m);
	sc.n_cores = 1;
	m = tcp_frame(1, 2, 3, 4);
	CHECK(steer_frame(&sc, m) == STEER_LOCAL);
	rte_pktmbuf_free(m);

	CHECK(rte_mempool_avail_count(pool) == 1024);
	printf("test_steer: %s (%d failures)\n", failures ? "FAIL" : "ok",
	       failures);
	return failures ? 1 : 0;
}
