/*
 * stack.c - life cycle of one lcore's stack (create/destroy), the
 * top-level entry points (input, poll, next timer) and the counters.
 *
 * Ownership: a struct net_stack belongs to the lcore that drives it;
 * only net_stack_stats() may be read from other threads.
 *
 * Promises: every table is allocated here from the conf bounds; after
 * create nothing but mbufs is allocated; destroy returns every mbuf the
 * stack holds to its pool. Each top-level call reaps TCBs released by
 * the previous one, so callbacks never see their conn memory reused
 * under them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "net_priv.h"

void net_stack_conf_defaults(struct net_stack_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->n_cores = 1;
	conf->netmask = rte_cpu_to_be_32(0xffffff00u);
	conf->mtu = 1500;
	conf->max_conns = 16384;
	conf->syn_backlog = 1024;
	conf->max_timewait = 16384;
	conf->arp_entries = 256;
	conf->arp_timeout_ms = 60000;
	conf->rcvbuf = 128 * 1024;
	conf->sndbuf = 128 * 1024;
	conf->ooo_max_segs = 64;
	conf->txq_size = 4096;
	conf->timewait_ms = 60000; /* 2 * MSL, MSL = 30 s */
	conf->delack_ms = 40;
	conf->eph_lo = 32768;
	conf->eph_hi = 60999;
	conf->mld_reports = true;
}

static void stack_free(struct net_stack *st)
{
	tcb_fini(st);
	arp_fini(st);
	if (st->txq != NULL) {
		struct rte_mbuf *m;

		while (net_stack_take_tx(st, &m, 1) == 1)
			rte_pktmbuf_free(m);
	}
	rte_free(st->txq);
	rte_free(st);
}

struct net_stack *net_stack_create(const struct net_stack_conf *conf)
{
	int socket = (int)rte_socket_id();
	struct net_stack *st;
	uint64_t k[4];
	uint32_t room;

	if (conf == NULL || conf->pool == NULL || conf->max_conns == 0 ||
	    conf->txq_size == 0 || conf->arp_entries == 0 ||
	    conf->rcvbuf == 0 || conf->sndbuf == 0 || conf->mtu < 576 ||
	    conf->eph_lo == 0 || conf->eph_hi < conf->eph_lo ||
	    conf->ip6_prefixlen > 128 ||
	    (conf->ip6_prefixlen > 0 &&
	     (conf->mtu < IPV6_MIN_MTU || net_addr_is_v4(&conf->ip6) ||
	      ip6_is_multicast(&conf->ip6) ||
	      ip6_is_unspecified(&conf->ip6)))) {
		rte_errno = EINVAL;
		return NULL;
	}
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	st = rte_zmalloc_socket("net_stack", sizeof(*st), RTE_CACHE_LINE_SIZE,
				socket);
	if (st == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	st->conf = *conf;
	snprintf(st->name, sizeof(st->name), "net%u_%p", conf->core_index,
		 (void *)st);
	memcpy(k, conf->secret, sizeof(k));
	st->sip_k0 = rte_le_to_cpu_64(k[0]);
	st->sip_k1 = rte_le_to_cpu_64(k[1]);
	st->ck_k0 = rte_le_to_cpu_64(k[2]);
	st->ck_k1 = rte_le_to_cpu_64(k[3]);
	st->hash_seed = (uint32_t)net_siphash(st->sip_k0, st->ck_k1, "tcb", 3);
	st->eph_next = conf->eph_lo;
	/* Our MSS: the MTU, and what one pool mbuf can carry with headers
	 * (frames are built single-segment). */
	room = rte_pktmbuf_data_room_size(conf->pool) - RTE_PKTMBUF_HEADROOM;
	if (room < 14 + 20 + 60 + 536) {
		rte_free(st);
		rte_errno = EINVAL;
		return NULL;
	}
	st->mss_max = (uint16_t)RTE_MIN((uint32_t)conf->mtu - 40,
					room - (14 + 20 + 60));
	st->mss_max6 = (uint16_t)RTE_MIN((uint32_t)conf->mtu - 60,
					 room - (14 + 40 + 60));
	nd_init(st);
	st->txq = rte_zmalloc_socket("net_txq", sizeof(void *) * conf->txq_size,
				     0, socket);
	if (st->txq == NULL || tcb_init(st, socket) != 0 ||
	    arp_init(st, socket) != 0) {
		stack_free(st);
		rte_errno = ENOMEM;
		return NULL;
	}
	return st;
}

void net_stack_destroy(struct net_stack *st)
{
	if (st == NULL)
		return;
	stack_free(st);
}

void net_stack_input(struct net_stack *st, struct rte_mbuf **pkts, uint16_t n,
		     uint64_t now_us)
{
	if (now_us > st->now_us)
		st->now_us = now_us;
	if (st->depth++ == 0)
		tcb_reap(st);
	for (uint16_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		eth_input(st, pkts[i]);
	}
	if (--st->depth == 0)
		tcb_reap(st);
}

void net_stack_poll(struct net_stack *st, uint64_t now_us)
{
	if (now_us > st->now_us)
		st->now_us = now_us;
	if (st->depth++ == 0)
		tcb_reap(st);
	tcp_timers_run(st);
	tw_expire(st);
	arp_poll(st);
	nd_poll(st);
	if (--st->depth == 0)
		tcb_reap(st);
}

uint64_t net_stack_next_timer_us(const struct net_stack *st, uint64_t now_us)
{
	uint64_t t = tcp_timer_next(st), a = arp_next_timer(st);

	if (st->tw_cnt > 0) {
		const struct tw_ent *e = &st->tw[st->tw_head];

		t = RTE_MIN(t, e->valid ? e->expire_us : now_us);
	}
	t = RTE_MIN(t, a);
	t = RTE_MIN(t, nd_next_timer(st));
	if (t == UINT64_MAX)
		return UINT64_MAX;
	return t <= now_us ? 0 : t - now_us;
}

const struct net_stats *net_stack_stats(const struct net_stack *st)
{
	return &st->stats;
}

const char *net_drop_name(enum net_drop d)
{
	static const char *const names[NET_DROP_MAX] = {
		[NET_DROP_ETH_TYPE] = "eth_type",
		[NET_DROP_ETH_DST] = "eth_dst",
		[NET_DROP_SHORT] = "short",
		[NET_DROP_IP_CSUM] = "ip_csum",
		[NET_DROP_IP_HDR] = "ip_hdr",
		[NET_DROP_IP_DST] = "ip_dst",
		[NET_DROP_IP_FRAG] = "ip_frag",
		[NET_DROP_IP_PROTO] = "ip_proto",
		[NET_DROP_ICMP] = "icmp",
		[NET_DROP_TCP_CSUM] = "tcp_csum",
		[NET_DROP_TCP_HDR] = "tcp_hdr",
		[NET_DROP_TCP_SEQ] = "tcp_seq",
		[NET_DROP_TCP_NOCONN] = "tcp_noconn",
		[NET_DROP_TCB_FULL] = "tcb_full",
		[NET_DROP_OOO_FULL] = "ooo_full",
		[NET_DROP_RCVBUF_FULL] = "rcvbuf_full",
		[NET_DROP_ARP] = "arp",
		[NET_DROP_ARP_PENDING] = "arp_pending",
		[NET_DROP_TXQ_FULL] = "txq_full",
		[NET_DROP_NOMBUF] = "nombuf",
		[NET_DROP_IP6_EXT] = "ip6_ext",
		[NET_DROP_ND] = "nd",
		[NET_DROP_IP6_SRC] = "ip6_src",
		[NET_DROP_DAD] = "dad",
	};

	if ((unsigned int)d >= NET_DROP_MAX)
		return "?";
	return names[d];
}

/* Per idle established connection: the TCB, two slots of the index
 * (sized at twice max_conns), its free-list and reap-list words and its
 * timer-heap pointer. Buffers hold no mbuf when idle. */
size_t net_stack_conn_state_bytes(void)
{
	return sizeof(struct tcp_conn) + 2 * sizeof(struct oa_slot) +
	       2 * sizeof(uint32_t) + sizeof(struct tcp_conn *);
}
