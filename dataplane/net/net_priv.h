/*
 * net_priv.h - internal types shared by the layers of dataplane/net/.
 *
 * Ownership: everything here hangs off one struct net_stack and belongs to
 * the lcore that created it; nothing is shared between cores except the
 * read-only conf (and the secret in it).
 *
 * Promises: all tables are sized in net_stack_create() and never grow; the
 * per-packet path allocates nothing but mbufs from conf->pool.
 */
#ifndef MXG_NET_PRIV_H
#define MXG_NET_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "net.h"
#include "tcp.h"

#define NET_LISTEN_MAX 32     /* listening ports per stack */
#define ARP_PENDING_MAX 4     /* frames held per unresolved next hop */
#define ARP_RETRY_US 1000000u /* ARP request retry interval */
#define ARP_MAX_TRIES 3	      /* requests before pending frames are dropped */

#define TCP_MIN_RTO_US                                                         \
	200000u			 /* RFC 6298 2.4 allows a lower floor than 1 s \
				  */
#define TCP_MAX_RTO_US 60000000u /* RFC 6298 2.5 */
#define TCP_INIT_RTO_US 1000000u /* RFC 6298 2.1 */
#define TCP_SYN_FALLBACK_RTO_US 3000000u /* RFC 6298 5.7 */
#define TCP_MAX_RETRIES 8	 /* data retransmissions before ETIMEDOUT */
#define TCP_MAX_SYN_RETRIES 5	 /* SYN / SYN-ACK retransmissions */
#define TCP_FIN_WAIT_2_US 60000000u /* silent peer in FIN_WAIT_2 */
#define TCP_CHACK_PER_SEC 100	    /* RFC 5961 7: challenge ACK rate limit */
#define TCP_DEFAULT_MSS 536	    /* RFC 9293 3.7.1 when no MSS option */
#define TCP_MIN_MSS 88		    /* floor for ICMP-lowered MSS */
#define IPV6_MIN_MTU 1280	    /* RFC 8200 5 */
#define TCP6_MIN_MSS (IPV6_MIN_MTU - 60) /* RFC 8201 4: never below */
#define IP6_EXT_MAX 8		    /* extension headers walked per packet */
#define IP6_HDRS_MAX 256	    /* bytes of extension headers walked */
/* ICMPv6 errors a core sends (RFC 4443 2.4 f): a bucket of
 * ICMP6_ERR_BURST tokens refilled at ICMP6_ERR_PER_SEC. */
#define ICMP6_ERR_PER_SEC 100
#define ICMP6_ERR_BURST 10
#define ND_RETRANS_US 1000000u	    /* RFC 4861 10 RetransTimer */
#define TCP_OPT_SPACE 40

/* TCP option kinds (RFC 9293 3.2, RFC 7323); DPDK 22.11 has no names. */
#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_OPT_WS 3
#define TCP_OPT_TS 8

/* Sequence-space comparisons, RFC 9293 3.4 (modulo 2^32). */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}
static inline bool seq_leq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}
static inline bool seq_gt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}
static inline bool seq_geq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}
static inline uint32_t seq_max(uint32_t a, uint32_t b)
{
	return seq_gt(a, b) ? a : b;
}

/* ---- open-addressing index table (tcb.c) ----------------------------- */

/* Linear probing over (hash, idx+1) slots; idx 0 in a slot means empty.
 * Sized to at least twice the entries it can ever hold, so inserts never
 * fail; removal is by backward shift (no tombstones). */
struct oa_slot {
	uint32_t hash;
	uint32_t idx1;
};
struct oa_tab {
	struct oa_slot *slot;
	uint32_t mask;
};
typedef bool (*oa_eq_fn)(const void *ctx, uint32_t idx, const void *key);
int oa_init(struct oa_tab *t, uint32_t entries, int socket);
void oa_free(struct oa_tab *t);
uint32_t oa_find(const struct oa_tab *t, uint32_t h, oa_eq_fn eq,
		 const void *ctx, const void *key);
void oa_insert(struct oa_tab *t, uint32_t h, uint32_t idx);
void oa_remove(struct oa_tab *t, uint32_t h, uint32_t idx);
#define OA_NONE UINT32_MAX

/* ---- TCP control block ----------------------------------------------- */

/* 4-tuple, addresses in network order (IPv4 as ::ffff:a.b.c.d, so one
 * table and one hash serve both families), ports in host order. */
struct tcp_key {
	struct net_addr raddr;
	struct net_addr laddr;
	uint16_t rport;
	uint16_t lport;
};

static inline bool tcp_key_v6(const struct tcp_key *k)
{
	return !net_addr_is_v4(&k->raddr);
}

/* What the IP layer tells TCP and ICMPv6 about a received packet. */
struct net_l3 {
	struct net_addr src, dst;
	uint16_t phdr_sum; /* pseudo-header sum, folded, not complemented */
	uint8_t v6;
	uint8_t hop_limit;
};

enum tcp_timer_id {
	TT_RTO,	    /* retransmission (also SYN / SYN-ACK) */
	TT_DELACK,  /* delayed ACK */
	TT_PERSIST, /* zero-window probe */
	TT_LINGER,  /* FIN_WAIT_2 timeout; deferred closed() notification */
	TT_MAX
};

/* c->flags */
#define TF_PASSIVE (1u << 0)	    /* created from a listener */
#define TF_TS (1u << 1)		    /* RFC 7323 timestamps negotiated */
#define TF_ACKNOW (1u << 2)	    /* send an ACK at the end of processing */
#define TF_DELACK (1u << 3)	    /* ACK owed, delayed-ACK timer running */
#define TF_FIN_QUEUED (1u << 4)	    /* user closed: FIN after the data */
#define TF_PEER_FIN (1u << 5)	    /* peer's FIN received (in order) */
#define TF_OOO_FIN (1u << 6)	    /* peer's FIN seen beyond a hole */
#define TF_WANT_WR (1u << 7)	    /* tcp_send() was short: fire writable() */
#define TF_DEAD (1u << 8)	    /* released; memory reaped later */
#define TF_RECOVERY (1u << 9)	    /* NewReno fast recovery (RFC 6582) */
#define TF_RTT (1u << 10)	    /* an RTT sample is being timed */
#define TF_PERSIST (1u << 11)	    /* zero send window: persist mode */
#define TF_ACCEPTED (1u << 12)	    /* handed to the upper layer */
#define TF_NOTIFY_CLOSED (1u << 13) /* closed() owed from the timer */
#define TF_REAP (1u << 14)	    /* on the reap list */
#define TF_WS (1u << 15)	    /* RFC 7323 window scaling negotiated */

struct tcp_conn {
	struct net_stack *st;
	const struct tcp_callbacks *cb;
	void *ctx;
	void *listen_arg;
	struct tcp_key key;
	uint32_t idx;
	uint32_t heap_pos; /* UINT32_MAX: not in the timer heap */
	uint32_t flags;
	uint8_t state;
	uint8_t snd_wscale; /* shift applied to the peer's window */
	uint8_t rcv_wscale; /* shift we apply to our window */
	uint8_t dupacks;
	uint8_t rto_shift; /* exponential backoff (RFC 6298 5.5) */
	uint8_t retries;
	uint8_t persist_shift;
	uint8_t unacked_segs; /* full segments received since our last ACK */
	uint16_t mss;	      /* effective send MSS (payload per segment) */
	uint16_t peer_mss;    /* MSS option the peer sent */
	uint16_t pmtu_mss;    /* MSS allowed by path MTU (ICMP) */
	uint16_t pad0;

	/* Send sequence variables, RFC 9293 3.3.1. */
	uint32_t iss;
	uint32_t snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd, max_snd_wnd;
	uint32_t snd_wl1, snd_wl2;
	uint32_t snd_buf_seq; /* seq of the first byte in sndq */
	uint32_t cwnd, ssthresh, recover;

	/* Receive sequence variables. */
	uint32_t irs;
	uint32_t rcv_nxt;
	uint32_t rcv_adv; /* right edge we advertised (never shrinks) */
	uint32_t ooo_fin_seq;

	/* RTT / RTO, RFC 6298, microseconds. */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t rtt_seq;
	uint64_t rtt_ts;

	/* RFC 7323 timestamps. */
	uint32_t ts_recent;
	uint32_t ts_off;
	uint32_t last_ack_sent;

	/* Buffers: single-segment mbufs linked by ->next. */
	struct rte_mbuf *sndq_head, *sndq_tail;
	uint32_t snd_bytes;	  /* unacked + unsent bytes in sndq */
	uint32_t snd_head_off;	  /* acked bytes still in sndq_head */
	uint32_t snd_cur_seq;	  /* seq of the first byte stored in snd_cur */
	struct rte_mbuf *snd_cur; /* send cursor: where the last copy ended */
	struct rte_mbuf *rcvq_head, *rcvq_tail; /* in-order data segments */
	uint32_t rcv_bytes;
	struct rte_mbuf *ooo_head; /* sorted by seq (hash.usr), one seg each */
	uint16_t ooo_cnt;
	uint16_t pad1;
	uint32_t ooo_bytes;

	uint64_t timer[TT_MAX]; /* absolute deadlines, 0 = off */
	uint64_t deadline;	/* min of timer[] (heap key) */
};

/* Compact TIME_WAIT entry (RFC 9293 3.6): just enough to ACK a
 * retransmitted FIN and to recognise the old incarnation. */
struct tw_ent {
	struct tcp_key key;
	uint32_t snd_nxt;
	uint32_t rcv_nxt;
	uint32_t ts_recent;
	uint32_t ts_off;
	uint64_t expire_us;
	uint8_t valid;
	uint8_t ts;
	uint8_t rcv_wscale;
	uint8_t pad;
	uint32_t hash;
};

struct tcp_listener {
	uint16_t port; /* 0: free */
	uint8_t families; /* TCP_FAMILY_*: which of our addresses it serves */
	const struct tcp_callbacks *cb;
	void *arg;
};

enum arp_state { ARP_FREE = 0, ARP_PENDING, ARP_VALID };

/* One neighbor cache for both families: an entry resolves an IPv4 next
 * hop by ARP or an IPv6 one by Neighbor Discovery (the address says
 * which). */
struct arp_ent {
	struct net_addr addr;
	uint8_t state;
	uint8_t tries;
	uint8_t npending;
	uint8_t pad;
	struct rte_ether_addr mac;
	uint64_t stamp_us; /* learned (VALID) or last request (PENDING) */
	struct rte_mbuf *pending[ARP_PENDING_MAX];
};

struct net_stack {
	struct net_stats stats; /* first: cache aligned */
	struct net_stack_conf conf;
	uint64_t now_us;
	int depth;	  /* nesting of top-level entry points */
	uint16_t mss_max; /* our MSS: MTU and mbuf data room */
	uint16_t mss_max6; /* the same over IPv6 (20 more header bytes) */
	uint16_t ip_id;
	uint16_t eph_next;

	struct rte_mbuf **txq;
	uint32_t txq_head, txq_cnt;

	struct tcp_conn *tcbs;
	uint32_t *tcb_free;
	uint32_t n_free;
	uint32_t *reap;
	uint32_t n_reap;
	struct oa_tab tcb_tab;
	uint32_t hash_seed;
	struct tcp_conn **heap;
	uint32_t heap_n;

	struct tcp_listener lst[NET_LISTEN_MAX];

	struct tw_ent *tw;
	uint32_t tw_head, tw_cnt;
	struct oa_tab tw_tab;

	struct arp_ent *arp;
	struct oa_tab arp_tab;
	uint64_t arp_next_sweep;

	/* IPv6: link-local address (from the MAC), DAD, default router. */
	struct net_addr ll6;
	struct net_addr gw6; /* all zero: none */
	uint8_t ip6_state;   /* enum ip6_state */
	uint8_t dad_left;    /* DAD solicitations still to send */
	uint64_t dad_next_us;

	/* MLD (mld.c): start-up reports left and when the next is due;
	 * when a query's answer is due (UINT64_MAX: none pending) */
	uint8_t mld_start_left;
	uint64_t mld_start_us;
	uint64_t mld_answer_us;

	/* ICMPv6 error rate limit (RFC 4443 2.4 f): a token bucket */
	uint64_t icmp6_err_stamp_us;
	uint32_t icmp6_err_tokens;

	uint64_t chack_sec; /* challenge-ACK rate limit window */
	uint32_t chack_cnt;

	uint64_t sip_k0, sip_k1; /* ISN key (secret[0..15]) */
	uint64_t ck_k0, ck_k1;	 /* SYN cookie key (secret[16..31]) */

	char name[48];
};

enum ip6_state {
	IP6_OFF = 0,  /* not configured */
	IP6_TENTATIVE, /* DAD running: our addresses not used yet */
	IP6_READY,
	IP6_DUPLICATE, /* DAD failed: IPv6 stays off */
};

/* ---- eth.c ----------------------------------------------------------- */
void eth_input(struct net_stack *st, struct rte_mbuf *m);
/* Fill the Ethernet header (dst given) and queue m for TX. */
void eth_output(struct net_stack *st, struct rte_mbuf *m,
		const struct rte_ether_addr *dst, uint16_t ether_type);
void net_txq_push(struct net_stack *st, struct rte_mbuf *m);
void net_mbuf_free_held(struct net_stack *st, struct rte_mbuf *m);
uint32_t net_mbuf_segs(const struct rte_mbuf *m);
/* Cut a packet (chain) to len bytes; -1 if shorter. */
int net_mbuf_trim(struct rte_mbuf *m, uint32_t len);
/* Make the first len bytes of a chain contiguous in its first segment
 * (BSD's m_pullup) by moving bytes up from the next segments into its
 * tailroom; emptied segments are freed. 0, or -1 when the chain is
 * shorter, the first segment lacks the room, or its data is shared. */
int net_mbuf_pullup(struct rte_mbuf *m, uint32_t len);

/* ---- arp.c ----------------------------------------------------------- */
int arp_init(struct net_stack *st, int socket);
void arp_fini(struct net_stack *st);
void arp_input(struct net_stack *st, struct rte_mbuf *m);
/* Send an IP frame (Ethernet header space present) to next hop nh (IPv4
 * mapped or IPv6), resolving it by ARP or ND; frames wait in a bounded
 * pending queue meanwhile. */
void neigh_output(struct net_stack *st, struct rte_mbuf *m,
		  const struct net_addr *nh);
/* Learn nh -> mac (ND): refresh an existing entry; create one only if
 * create (the packet was addressed to us). Sends what was pending. */
void neigh_learn(struct net_stack *st, const struct net_addr *nh,
		 const struct rte_ether_addr *mac, bool create);
void arp_poll(struct net_stack *st);
uint64_t arp_next_timer(const struct net_stack *st);

/* ---- ipv4.c ---------------------------------------------------------- */
void ipv4_input(struct net_stack *st, struct rte_mbuf *m);
/* m holds eth+ip+l4; the IP header is filled except checksum; computes or
 * offloads checksums (l4 = TCP or ICMP), routes and queues it. */
void ipv4_output(struct net_stack *st, struct rte_mbuf *m);
/* Allocate a frame with room for eth + IPv4 header + l4len bytes, fill
 * the IP header; returns the L4 header pointer or NULL (counted). */
void *ipv4_alloc(struct net_stack *st, struct rte_mbuf **mp, rte_be32_t dst,
		 uint8_t proto, uint16_t l4len);

/* ---- ipv6.c ---------------------------------------------------------- */
/* IPv6 pseudo-header sum (RFC 8200 8.1) for an upper-layer packet of len
 * bytes; folded, not complemented. Any 16-byte addresses (a mapped
 * source is still summed as the IPv6 address it is on the wire). */
uint16_t ip6_phdr_sum(const struct net_addr *src, const struct net_addr *dst,
		      uint32_t len, uint8_t proto);
void ipv6_input(struct net_stack *st, struct rte_mbuf *m);
/* Allocate a frame with room for eth + IPv6 header + l4len bytes, fill
 * the IPv6 header (flow label given, hop limit hlim); returns the L4
 * header pointer or NULL (counted). */
void *ipv6_alloc(struct net_stack *st, struct rte_mbuf **mp,
		 const struct net_addr *src, const struct net_addr *dst,
		 uint8_t proto, uint16_t l4len, uint32_t flow, uint8_t hlim);
/* m holds eth+ipv6+l4 (no extension headers); computes or offloads the
 * L4 checksum (TCP or ICMPv6), resolves the next hop and queues it. */
void ipv6_output(struct net_stack *st, struct rte_mbuf *m);
/* ipv6_output to a known MAC, without resolution (ND answers). */
void ipv6_output_to(struct net_stack *st, struct rte_mbuf *m,
		    const struct rte_ether_addr *mac);
bool ipv6_is_ours(const struct net_stack *st, const struct net_addr *a);
/* Our source address towards dst: link-local for link-local peers. */
const struct net_addr *ipv6_src_for(const struct net_stack *st,
				    const struct net_addr *dst);
static inline bool ip6_is_multicast(const struct net_addr *a)
{
	return a->b[0] == 0xff;
}
static inline bool ip6_is_linklocal(const struct net_addr *a)
{
	return a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80;
}
static inline bool ip6_is_unspecified(const struct net_addr *a)
{
	static const struct net_addr z;

	return memcmp(a, &z, sizeof(z)) == 0;
}
/* ff02::1:ffXX:XXXX for a (RFC 4291 2.7.1). */
void ip6_solicited_node(const struct net_addr *a, struct net_addr *out);

/* ---- nd.c ------------------------------------------------------------ */
/* Neighbor Discovery (RFC 4861) messages: type 133..137. */
void nd_input(struct net_stack *st, struct rte_mbuf *m,
	      const struct net_l3 *l3, uint16_t l4off, uint16_t l4len);
/* Multicast Neighbor Solicitation for target (address resolution). */
void nd_solicit(struct net_stack *st, const struct net_addr *target);
void nd_init(struct net_stack *st);
/* DAD transmissions; cheap when none is due. */
void nd_poll(struct net_stack *st);
uint64_t nd_next_timer(const struct net_stack *st);

/* ---- mld.c ----------------------------------------------------------- */
/* MLDv2 (RFC 3810): our solicited-node groups reported at start-up and
 * in answer to queries. */
void mld_init(struct net_stack *st);
void mld_poll(struct net_stack *st);
uint64_t mld_next_timer(const struct net_stack *st);
/* An MLD message (type 130..132, 143) for us; consumes m. */
void mld_input(struct net_stack *st, struct rte_mbuf *m,
	       const struct net_l3 *l3, uint16_t l4off, uint16_t l4len);
/* Send one report of all our groups with this record type (2: current
 * state, 4: change to exclude {}). */
void mld_report(struct net_stack *st, uint8_t record_type);

/* ---- icmp6.c --------------------------------------------------------- */
void icmp6_input(struct net_stack *st, struct rte_mbuf *m,
		 const struct net_l3 *l3, uint16_t l4off, uint16_t l4len);
/* ICMPv6 error types and Parameter Problem codes (RFC 4443 3.4). */
#define ICMP6_PARAM_PROB 4
#define ICMP6_PP_HEADER 0  /* erroneous header field */
#define ICMP6_PP_NEXTHDR 1 /* unrecognized Next Header */
#define ICMP6_PP_OPTION 2  /* unrecognized IPv6 option */
/* Send an ICMPv6 error about the invoking packet m (eth + IPv6 at the
 * start; l3 its addresses) with param in the second word, quoting as much
 * of m as fits the minimum MTU. RFC 4443 2.4 (e): never about an ICMPv6
 * error, a packet from an unspecified source, or one sent to a multicast
 * group or link-layer multicast, unless mcast_ok (RFC 8200 4.2: an
 * unrecognized option of type 10xxxxxx). Rate limited (2.4 f). m is not
 * consumed. Returns true when an error was queued. */
bool icmp6_error(struct net_stack *st, const struct rte_mbuf *m,
		 const struct net_l3 *l3, uint8_t type, uint8_t code,
		 uint32_t param, bool mcast_ok);

/* ---- icmp.c ---------------------------------------------------------- */
void icmp_input(struct net_stack *st, struct rte_mbuf *m,
		struct rte_ipv4_hdr *ip, uint16_t l4off, uint16_t l4len);

/* ---- tcb.c ----------------------------------------------------------- */
int tcb_init(struct net_stack *st, int socket);
void tcb_fini(struct net_stack *st);
struct tcp_conn *tcb_lookup(struct net_stack *st, const struct tcp_key *k);
struct tcp_conn *tcb_alloc(struct net_stack *st, const struct tcp_key *k);
/* Release buffers, timers and the table slot; the struct is reaped after
 * the current top-level call returns (callbacks may still hold c). */
void tcb_release(struct tcp_conn *c);
void tcb_reap(struct net_stack *st);
void tcb_set_state(struct tcp_conn *c, enum tcp_state s);
struct tcp_listener *tcp_listener_find(struct net_stack *st, uint16_t port);
/* The listener a segment to k (our address and port) may open a
 * connection on: on k->lport and serving k's family; NULL otherwise. */
struct tcp_listener *tcp_listener_match(struct net_stack *st,
					const struct tcp_key *k);
struct tw_ent *tw_lookup(struct net_stack *st, const struct tcp_key *k);
void tw_insert_from(struct tcp_conn *c);
void tw_remove(struct net_stack *st, struct tw_ent *e);
void tw_expire(struct net_stack *st);
/* RFC 9293 3.10.7.4: a retransmitted FIN restarts the 2*MSL timer. */
void tw_restart(struct net_stack *st, struct tw_ent *e);
uint32_t tcp_key_hash(const struct net_stack *st, const struct tcp_key *k);
void tcp_enter_timewait(struct tcp_conn *c);
/* Final callbacks: release c and call closed() (err 0) or reset(err). */
void tcp_finish(struct tcp_conn *c, int err);
void tcp_rcvq_drop(struct tcp_conn *c);

/* ---- tcp_in.c -------------------------------------------------------- */
struct tcp_opts {
	uint16_t mss;
	uint8_t wscale;
	bool has_mss, has_ws, has_ts;
	uint32_t tsval, tsecr;
};
void tcp_input(struct net_stack *st, struct rte_mbuf *m,
	       const struct net_l3 *l3, uint16_t l4off, uint16_t l4len);
int tcp_parse_opts(const struct rte_tcp_hdr *th, struct tcp_opts *o);
/* ICMP fragmentation needed (RFC 1191) or ICMPv6 Packet Too Big (RFC
 * 8201) quoting segment seq of connection k: lower its MSS to fit mtu
 * (never below 1280 - 60 over IPv6). */
void tcp_icmp_frag_needed(struct net_stack *st, const struct tcp_key *k,
			  uint32_t seq, uint32_t mtu);
/* Our MSS towards the connection's family (MTU and mbuf room). */
static inline uint16_t tcp_mss_max_for(const struct net_stack *st,
				       const struct tcp_key *k)
{
	return tcp_key_v6(k) ? st->mss_max6 : st->mss_max;
}

/* ---- tcp_out.c ------------------------------------------------------- */
/* Send what the windows allow, then any owed ACK; rearm timers. */
void tcp_output(struct tcp_conn *c);
void tcp_send_ack(struct tcp_conn *c);
void tcp_send_syn(struct tcp_conn *c);
/* Retransmit one segment at snd_una (fast retransmit, partial ACK). */
void tcp_retransmit_una(struct tcp_conn *c);
/* RFC 3042: one new segment on the first two duplicate ACKs. */
void tcp_limited_transmit(struct tcp_conn *c);
/* Persist timer: one probe octet for a zero window, one segment of what
 * fits for a window too small for SWS avoidance (RFC 1122 4.2.3.4). */
void tcp_send_probe(struct tcp_conn *c);
void tcp_send_rst_conn(struct tcp_conn *c);
/* Stateless reply / control segment for a 4-tuple (RST, TIME_WAIT ACK,
 * SYN-ACK cookie). opts may be NULL. */
void tcp_emit(struct net_stack *st, const struct tcp_key *k, uint32_t seq,
	      uint32_t ack, uint8_t flags, uint16_t wnd, const uint8_t *opts,
	      uint8_t optlen);
/* RFC 9293 3.10.7.1: the RST answering a segment (seq, ack, flags). */
void tcp_emit_rst_for(struct net_stack *st, const struct tcp_key *k,
		      uint32_t seq, uint32_t ack, uint8_t flags,
		      uint32_t seglen);
uint16_t tcp_rcv_wnd_field(struct tcp_conn *c, bool syn);
/* Send a window update if reading opened the window enough. */
void tcp_window_update(struct tcp_conn *c);
uint32_t tcp_ts_now(const struct tcp_conn *c);
uint32_t tcp_snd_data_end(const struct tcp_conn *c);
uint8_t tcp_build_syn_opts(struct net_stack *st, uint8_t *o, uint16_t mss,
			   int wscale, bool ts, uint32_t tsval, uint32_t tsecr);
void tcp_update_mss(struct tcp_conn *c);
void tcp_arm_timers(struct tcp_conn *c);

/* ---- tcp_timer.c ----------------------------------------------------- */
void tcp_timer_set(struct tcp_conn *c, enum tcp_timer_id id, uint64_t at);
void tcp_timer_stop(struct tcp_conn *c, enum tcp_timer_id id);
void tcp_timer_unlink(struct tcp_conn *c);
void tcp_timers_run(struct net_stack *st);
uint64_t tcp_timer_next(const struct net_stack *st);
uint32_t tcp_cur_rto(const struct tcp_conn *c);
void tcp_rtt_sample(struct tcp_conn *c, uint32_t rtt_us);
/* RFC 6298 5.7: the handshake needed a retransmission and gave no RTT
 * sample: data transmission starts with an RTO of at least 3 s, the
 * handshake's backoff cleared. */
void tcp_rto_syn_fallback(struct tcp_conn *c);

/* ---- syncookie.c ----------------------------------------------------- */
uint64_t net_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len);
uint32_t tcp_isn(struct net_stack *st, const struct tcp_key *k);
uint32_t tcp_ts_offset(struct net_stack *st, const struct tcp_key *k);
uint32_t syncookie_make(struct net_stack *st, const struct tcp_key *k,
			uint32_t peer_isn, uint16_t *mss);
/* Returns the MSS encoded in a valid cookie, 0 when invalid. */
uint16_t syncookie_check(struct net_stack *st, const struct tcp_key *k,
			 uint32_t peer_isn, uint32_t cookie);

/* ---- helpers --------------------------------------------------------- */

/* Software check of a TCP or ICMPv6 checksum over len bytes at off,
 * with the pseudo-header sum phdr (0 for ICMPv4). 1: good, 0: bad,
 * -1: the packet is shorter than off + len. */
static inline int net_l4_cksum_ok(const struct rte_mbuf *m, uint32_t off,
				  uint32_t len, uint16_t phdr)
{
	uint16_t raw;
	uint32_t sum;

	if (rte_raw_cksum_mbuf(m, off, len, &raw) != 0)
		return -1;
	sum = (uint32_t)raw + phdr;
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}
static inline void net_drop(struct net_stack *st, struct rte_mbuf *m,
			    enum net_drop why)
{
	st->stats.drops[why]++;
	if (m != NULL)
		rte_pktmbuf_free(m);
}

static inline struct rte_mbuf *net_alloc(struct net_stack *st)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(st->conf.pool);
	if (m == NULL)
		st->stats.drops[NET_DROP_NOMBUF]++;
	return m;
}

/* A frame of len bytes (one segment), or NULL (counted). */
static inline struct rte_mbuf *net_alloc_frame(struct net_stack *st,
					       uint16_t len)
{
	struct rte_mbuf *m = net_alloc(st);

	if (m != NULL && rte_pktmbuf_append(m, len) == NULL) {
		net_drop(st, m, NET_DROP_NOMBUF);
		return NULL;
	}
	return m;
}

#endif /* MXG_NET_PRIV_H */
