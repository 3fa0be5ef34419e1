/*
 * net.h - one dataplane lcore's userspace TCP/IP stack (IPv4 and IPv6,
 * one TCP for both): the contract
 * between the lcore poll loop (dataplane/lcore.c) and dataplane/net/.
 *
 * Ownership: a struct net_stack and everything reachable from it (TCBs,
 * TIME_WAIT entries, ARP cache, timers, buffers) belongs to exactly one
 * dataplane lcore. Every function here must be called from that lcore only,
 * except net_stack_stats(), whose counters other threads may read (racy but
 * word-atomic 64-bit loads; summed by the reader).
 *
 * Promises: never blocks, never sleeps, never takes a lock, never calls
 * malloc after net_stack_create(); every table is bounded by the conf.
 *
 * The stack is sans-clock: the caller passes the current time in
 * microseconds to net_stack_input() and net_stack_poll(). Unit tests drive
 * time explicitly; the lcore loop passes a TSC-derived monotonic clock.
 *
 * Frames out: the stack never calls rte_eth_tx_burst(). It appends outgoing
 * frames to an internal bounded TX queue that the caller drains with
 * net_stack_take_tx(). When the queue is full new frames are dropped and
 * counted (drops[NET_DROP_TXQ_FULL]); TCP recovers them by retransmission.
 */
#ifndef MXG_NET_H
#define MXG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

struct net_stack;

/* An IP address of either family: IPv6, or IPv4 as the IPv4-mapped IPv6
 * address ::ffff:a.b.c.d (RFC 4291 2.5.5.2). Network byte order. */
struct net_addr {
	uint8_t b[16];
};

static inline bool net_addr_is_v4(const struct net_addr *a)
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	for (int i = 0; i < 12; i++)
		if (a->b[i] != pfx[i])
			return false;
	return true;
}

static inline struct net_addr net_addr_from_v4(rte_be32_t ip)
{
	struct net_addr a = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}};

	memcpy(&a.b[12], &ip, 4);
	return a;
}

/* The IPv4 address of a mapped address (network order). */
static inline rte_be32_t net_addr_v4(const struct net_addr *a)
{
	rte_be32_t ip;

	memcpy(&ip, &a->b[12], 4);
	return ip;
}

/* Per-core configuration. Addresses and ports in network byte order where
 * typed rte_be*_t, host order otherwise. */
struct net_stack_conf {
	uint16_t core_index;       /* 0..n_cores-1 among dataplane lcores */
	uint16_t n_cores;
	struct rte_ether_addr mac; /* our port's MAC */
	rte_be32_t ip;             /* our IPv4 address */
	rte_be32_t netmask;
	rte_be32_t gateway;        /* 0: no gateway, everything is on-link */
	uint16_t mtu;              /* IP MTU of the port, e.g. 1500 */

	/* IPv6 (off while ip6_prefixlen is 0). Our global address and its
	 * on-link prefix; a link-local fe80::/64 address is derived from the
	 * MAC (a keyed hash of it, see nd.c). ip6_gateway: next hop for
	 * off-link destinations (all zero: none; RA may set it when
	 * ip6_accept_ra). dad_transmits: Neighbor Solicitations sent for
	 * Duplicate Address Detection before our addresses are used (RFC
	 * 4862 5.4; 0 = no DAD), one per second. */
	struct net_addr ip6;
	uint8_t ip6_prefixlen;     /* 1..128; 0: IPv6 off */
	uint8_t dad_transmits;
	bool ip6_accept_ra;        /* learn a default router from RAs */
	bool mld_reports;          /* MLDv2 reports of our solicited-node
				      groups (RFC 3810; mld.c); default on */
	struct net_addr ip6_gateway;
	struct rte_mempool *pool;  /* mbufs for frames the stack builds */

	/* Bounds (every table has one; behaviour when full is tested). */
	uint32_t max_conns;        /* TCBs (all states but TIME_WAIT) */
	uint32_t syn_backlog;      /* half-open passive TCBs before SYN cookies */
	uint32_t max_timewait;     /* compact TIME_WAIT entries; oldest recycled */
	uint32_t arp_entries;      /* neighbor cache size (ARP and ND) */
	uint32_t arp_timeout_ms;   /* neighbor entry lifetime (ARP and ND) */
	uint32_t rcvbuf;           /* per-connection receive buffer, bytes */
	uint32_t sndbuf;           /* per-connection send buffer, bytes */
	uint32_t ooo_max_segs;     /* out-of-order segments queued per conn */
	uint32_t txq_size;         /* frames queued for net_stack_take_tx() */
	uint32_t timewait_ms;      /* TIME_WAIT duration (2*MSL) */
	uint32_t delack_ms;        /* delayed-ACK timer, e.g. 40 */

	/* Active opens use local ports in [eph_lo, eph_hi], disjoint per core,
	 * so return traffic can be steered by destination port (DESIGN 2). */
	uint16_t eph_lo, eph_hi;

	/* Shared secret (same on all cores) for RFC 6528 ISNs and SYN
	 * cookies, so a cookie minted on one core validates on another. */
	uint8_t secret[32];

	/* Port offloads actually enabled (RTE_ETH_TX_OFFLOAD_* bits): when
	 * IPV4_CKSUM / TCP_CKSUM are set the stack fills ol_flags instead of
	 * computing checksums in software. RX checksum status is read from
	 * mbuf ol_flags when the PMD reports it. */
	uint64_t tx_offloads;
};

/* Fill conf with defaults (the caller then sets addresses and pool). */
void net_stack_conf_defaults(struct net_stack_conf *conf);

/* Create a stack. Allocates all tables up front (rte_zmalloc_socket on the
 * caller's socket). Returns NULL and sets rte_errno on failure. */
struct net_stack *net_stack_create(const struct net_stack_conf *conf);

/* Release every TCB, buffer, queued frame and table. Every mbuf the stack
 * held is returned to its pool. Callbacks are not invoked. */
void net_stack_destroy(struct net_stack *st);

/* Feed received Ethernet frames. The stack takes ownership of every mbuf
 * (frees it or keeps it as receive data). now_us: monotonic microseconds.
 * Frames flagged with NET_MBUF_REPLICA in m->hash.usr (ARP replies copied
 * to every core by the steering layer) are only learned from, never
 * answered. */
void net_stack_input(struct net_stack *st, struct rte_mbuf **pkts,
		     uint16_t n, uint64_t now_us);
#define NET_MBUF_REPLICA 0x4d584731u /* "MXG1" */

/* Run expired timers (retransmission, delayed ACK, persist, keepalive,
 * TIME_WAIT, ARP expiry). Cheap when nothing is due; call every loop. */
void net_stack_poll(struct net_stack *st, uint64_t now_us);

/* Microseconds until the next timer is due (UINT64_MAX if none); the loop
 * may sleep at most this long when idle. */
uint64_t net_stack_next_timer_us(const struct net_stack *st, uint64_t now_us);

/* Move up to max queued outgoing frames into out[]; the caller owns them
 * and must transmit or free them. Returns the number moved. */
uint16_t net_stack_take_tx(struct net_stack *st, struct rte_mbuf **out,
			   uint16_t max);

/* Drop reasons, counted per core. */
enum net_drop {
	NET_DROP_ETH_TYPE,      /* not IPv4/IPv6/ARP */
	NET_DROP_ETH_DST,       /* not for our MAC nor broadcast */
	NET_DROP_SHORT,         /* truncated header */
	NET_DROP_IP_CSUM,
	NET_DROP_IP_HDR,        /* bad version/IHL/length */
	NET_DROP_IP_DST,        /* not our address */
	NET_DROP_IP_FRAG,       /* fragments are counted and dropped */
	NET_DROP_IP_PROTO,      /* not TCP/ICMP/ICMPv6 */
	NET_DROP_ICMP,          /* bad or unhandled ICMP or ICMPv6 */
	NET_DROP_TCP_CSUM,
	NET_DROP_TCP_HDR,       /* bad data offset / options */
	NET_DROP_TCP_SEQ,       /* out of window, answered by ACK */
	NET_DROP_TCP_NOCONN,    /* no connection, answered by RST */
	NET_DROP_TCB_FULL,      /* max_conns reached */
	NET_DROP_OOO_FULL,      /* out-of-order queue full */
	NET_DROP_RCVBUF_FULL,   /* data beyond the receive window */
	NET_DROP_ARP,           /* malformed or not for us */
	NET_DROP_ARP_PENDING,   /* frame waiting on ARP resolution dropped */
	NET_DROP_TXQ_FULL,
	NET_DROP_NOMBUF,        /* mempool empty when building a frame */
	NET_DROP_IP6_EXT,       /* bad, refused or too long extension chain */
	NET_DROP_ND,            /* malformed or refused Neighbor Discovery */
	NET_DROP_IP6_SRC,       /* multicast/unspecified/loopback source */
	NET_DROP_DAD,           /* our IPv6 address is tentative or duplicate */
	NET_DROP_MAX
};

/* Per-core counters. One writer (the owning lcore); readers sum across
 * cores. Cache-line aligned so cores never share a line. */
struct net_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t tcp_seg_in, tcp_seg_out;
	uint64_t tcp_retransmits;     /* RTO and fast retransmits */
	uint64_t tcp_fast_retransmits;
	uint64_t tcp_rst_in, tcp_rst_out;
	uint64_t tcp_challenge_acks;  /* RFC 5961 */
	uint64_t syncookies_sent, syncookies_ok, syncookies_bad;
	uint64_t tcp_accepted, tcp_connected;  /* passive / active opens */
	uint64_t tcp_closed;          /* TCBs released */
	uint64_t tcp_timeouts;        /* connections dropped by RTO limit */
	uint64_t tcp_zero_window_probes; /* persist timer firings */
	uint64_t tcp_ooo_queued;
	uint64_t timewait_recycled;   /* oldest TIME_WAIT reused when full */
	uint64_t arp_requests_out, arp_replies_out, arp_replies_in;
	uint64_t icmp_echo, icmp_frag_needed;
	uint64_t ip_frags;
	/* Gauges (current values). */
	uint64_t live_tcbs;           /* TCBs in any state but TIME_WAIT */
	uint64_t syn_rcvd;            /* half-open passive TCBs */
	uint64_t timewait;            /* compact TIME_WAIT entries */
	uint64_t arp_cached;
	uint64_t mbufs_held;          /* mbufs in rx/tx/ooo buffers and txq */
	uint64_t drops[NET_DROP_MAX];
	/* IPv6 (the neighbor cache gauge is arp_cached, shared). */
	uint64_t ip6_rx, ip6_ext_hdrs;   /* frames; extension headers walked */
	uint64_t icmp6_echo, icmp6_ptb;  /* echo replies; Packet Too Big in */
	uint64_t nd_solicits_out, nd_adverts_out, nd_adverts_in;
	uint64_t nd_redirects_ignored, nd_ra_ignored;
	uint64_t dad_duplicates;         /* our address found in use */
	/* ICMPv6 errors (RFC 4443): sent, and withheld by the rate limit */
	uint64_t icmp6_errors_out, icmp6_errors_limited;
	uint64_t mld_reports_out;        /* MLDv2 reports (RFC 3810) */
} __rte_cache_aligned;

/* Counters of this core's stack; the pointer stays valid until destroy. */
const struct net_stats *net_stack_stats(const struct net_stack *st);

/* Name of a drop reason for logs and the stats dump. */
const char *net_drop_name(enum net_drop d);

/* IPv6 state of our address: false while DAD runs or after it found a
 * duplicate (then IPv6 stays off and drops[NET_DROP_DAD] counts). */
bool net_stack_ip6_ready(const struct net_stack *st);

/* Bytes of stack state held for one idle established connection (TCB and
 * its share of table slots, without buffered payload). For the benchmark. */
size_t net_stack_conn_state_bytes(void);

#endif /* MXG_NET_H */
