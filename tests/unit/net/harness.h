/*
 * harness.h - packet-level test harness for dataplane/net: an EAL in a
 * test process, a stack with a private pool, a crafted-frame builder and
 * a parser for the frames the stack emits.
 *
 * Ownership: single-threaded test process; one stack per test case.
 */
#ifndef MXG_TEST_NET_HARNESS_H
#define MXG_TEST_NET_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_mbuf.h>

#include "dataplane/net/net.h"
#include "dataplane/net/tcp.h"

extern int t_failures;
extern const char *t_current;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s: %s:%d: CHECK(%s) failed\n",       \
				t_current, __FILE__, __LINE__, #cond);         \
			t_failures++;                                          \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a != _b) {                                                \
			fprintf(stderr,                                        \
				"%s: %s:%d: CHECK_EQ(%s, %s) failed: %lld != " \
				"%lld\n",                                      \
				t_current, __FILE__, __LINE__, #a, #b, _a,     \
				_b);                                           \
			t_failures++;                                          \
		}                                                              \
	} while (0)

/* Addresses used by every test (host order helpers). */
#define T_OUR_IP 0x0a000001u  /* 10.0.0.1: the stack */
#define T_PEER_IP 0x0a000002u /* 10.0.0.2: the crafted peer */
#define T_OFF_IP 0x0b000005u  /* 11.0.0.5: off-link, via gateway */
#define T_GW_IP 0x0a0000feu   /* 10.0.0.254 */

extern const struct rte_ether_addr t_our_mac, t_peer_mac, t_gw_mac;

/* IPv6 (ULA fd00:6d78::/64): the stack ::1, the peer ::2, an off-link
 * host fd00:6d79::5, the router fe80::fe. */
extern const struct net_addr t_our_ip6, t_peer_ip6, t_off_ip6, t_gw_ip6;
/* Family mode: when set, t_stack() configures IPv6 (MTU 1520, so the
 * IPv6 MSS is the 1460 the IPv4 cases expect), t_seg_init() builds IPv6
 * segments and t_learn_peer() learns the peer over ND: the TCP cases run
 * unchanged over IPv6 (test_tcp.c built with T_FAMILY6). */
extern bool t_v6;
/* Ethernet + IP + TCP header bytes of a segment without options. */
#define T_HDRS (t_v6 ? 14u + 40u + 20u : 14u + 20u + 20u)
/* tcp_connect() of the cases in either family: T_PEER_IP / T_OFF_IP
 * (network order) map to t_peer_ip6 / t_off_ip6 in IPv6 mode. */
int t_connect(struct net_stack *st, rte_be32_t ip, uint16_t port,
	      const struct tcp_callbacks *cb, void *ctx,
	      struct tcp_conn **out);
/* A stack with t_our_ip6/64 (DAD off unless the tweak sets it). */
void t_conf_ip6(struct net_stack_conf *c);
/* Teach the stack the peer's MAC over ND (an NS from the peer for our
 * address) and drain the advertisement. */
void t_learn_peer6(struct net_stack *st, uint64_t now);
/* An IPv6 frame from the peer's MAC: base header (next header = the first
 * extension's type when ext_len > 0, else l4proto), ext bytes as given,
 * then l4 bytes whose TCP/ICMPv6 checksum is filled in (pseudo-header of
 * src, dst, l4len, l4proto). */
struct rte_mbuf *t_build_ip6(struct rte_mempool *pool,
			     const struct net_addr *src,
			     const struct net_addr *dst, uint8_t hlim,
			     uint8_t first_nh, const uint8_t *ext,
			     uint32_t ext_len, uint8_t l4proto, uint8_t *l4,
			     uint32_t l4len);

/* EAL once per process; a pool per test (name unique). */
void t_init_eal(void);
struct rte_mempool *t_pool(unsigned int n);

/* A stack on a fresh pool with test-sized bounds; conf tweaks after
 * net_stack_conf_defaults() through the optional callback. */
struct net_stack *t_stack(struct rte_mempool *pool,
			  void (*tweak)(struct net_stack_conf *c));
/* Teach the stack the peer's MAC (inject an ARP request from the peer)
 * and drain the reply. */
void t_learn_peer(struct net_stack *st, uint64_t now);
/* Destroy the stack and check every mbuf went back to the pool. */
void t_destroy(struct net_stack *st, struct rte_mempool *pool);

/* Crafted TCP segment from the peer to the stack. */
struct t_seg {
	uint32_t src_ip, dst_ip; /* host order; 0 = defaults */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	int mss;    /* -1: no option */
	int wscale; /* -1: no option */
	bool ts;
	uint32_t tsval, tsecr;
	const void *data;
	uint32_t len;
	bool bad_csum;
	bool v6;                   /* over IPv6 (t_peer_ip6 -> t_our_ip6) */
	const struct net_addr *src6; /* NULL: t_peer_ip6 */
};
void t_seg_init(struct t_seg *s);
struct rte_mbuf *t_build_tcp(struct rte_mempool *pool, const struct t_seg *s);
void t_inject(struct net_stack *st, struct rte_mbuf *m, uint64_t now);
void t_send(struct net_stack *st, struct rte_mempool *pool,
	    const struct t_seg *s, uint64_t now);

/* A parsed frame the stack emitted. */
struct t_out {
	uint16_t ether_type;
	struct rte_ether_addr dst, src;
	/* ARP */
	uint16_t arp_op;
	uint32_t arp_sip, arp_tip;
	/* IPv6 */
	bool v6;
	struct net_addr src6, dst6;
	uint8_t hop_limit;
	uint32_t flow;
	/* IPv4 */
	uint32_t src_ip, dst_ip;
	uint8_t proto;
	bool ip_csum_ok, l4_csum_ok;
	uint8_t icmp_type;
	uint8_t icmp_code;   /* IPv6 only */
	uint32_t icmp_param; /* IPv6 only: the second word (MTU, pointer) */
	/* TCP */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	int mss, wscale;
	bool ts;
	uint32_t tsval, tsecr;
	uint32_t len;
	uint8_t data[2048];
};
/* Take all queued frames; returns how many (at most max). */
int t_take(struct net_stack *st, struct t_out *out, int max);
/* Take exactly one frame (CHECK fails otherwise). */
bool t_take1(struct net_stack *st, struct t_out *o);
void t_parse(struct rte_mbuf *m, struct t_out *o);
/* Frames queued right now, freed without looking. */
int t_drain(struct net_stack *st);

/* Upper-layer recorder used as ctx for every connection. */
struct t_app {
	int accepted, connected, readable, writable, peer_closed, closed, reset,
		reset_err;
	struct tcp_conn *conn;
	bool refuse; /* accepted() returns NULL */
	bool close_on_peer_closed;
	bool abort_on_readable;
	bool echo; /* readable(): recv and send back */
	uint8_t rx[1 << 16];
	size_t rx_len;
};
extern const struct tcp_callbacks t_cb;

#define T_FLAG_FIN 0x01
#define T_FLAG_SYN 0x02
#define T_FLAG_RST 0x04
#define T_FLAG_PSH 0x08
#define T_FLAG_ACK 0x10

typedef void (*t_case_fn)(void);
int t_run(const char *suite, const char *const *names, const t_case_fn *fns,
	  int n);

#endif
