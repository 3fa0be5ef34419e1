/*
 * arp.c - ARP (RFC 826): answer requests for our address, resolve next
 * hops, keep a bounded per-core cache with expiry. The cache is the
 * neighbor cache of both families: IPv6 entries are resolved by Neighbor
 * Discovery (nd.c sends the solicitations and calls neigh_learn()), with
 * the same bound, expiry and pending queue.
 *
 * Ownership: the cache (st->arp, st->arp_tab) belongs to the stack's lcore.
 * Each core learns on its own; replies are replicated to every core by the
 * steering layer (DESIGN 2) and flagged NET_MBUF_REPLICA: those are learned
 * from but never answered.
 *
 * Promises: arp_entries slots at most; when full the least recently
 * learned VALID entry is evicted; at most ARP_PENDING_MAX frames wait per
 * unresolved next hop, more are dropped and counted; a next hop that does
 * not answer ARP_MAX_TRIES requests has its frames dropped.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "net_priv.h"

static uint32_t arp_hash(const struct net_stack *st, const struct net_addr *a)
{
	return rte_hash_crc(a, sizeof(*a), st->hash_seed ^ 0x41525021u);
}

static bool arp_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct net_stack *st = ctx;

	return memcmp(&st->arp[idx].addr, key, sizeof(struct net_addr)) == 0;
}

int arp_init(struct net_stack *st, int socket)
{
	uint32_t n = st->conf.arp_entries;

	st->arp = rte_zmalloc_socket("arp", sizeof(*st->arp) * n, 0, socket);
	if (st->arp == NULL)
		return -ENOMEM;
	return oa_init(&st->arp_tab, n, socket);
}

static void arp_drop_pending(struct net_stack *st, struct arp_ent *e,
			     bool count)
{
	for (uint32_t i = 0; i < e->npending; i++) {
		net_mbuf_free_held(st, e->pending[i]);
		if (count)
			st->stats.drops[NET_DROP_ARP_PENDING]++;
	}
	e->npending = 0;
}

static void arp_free_ent(struct net_stack *st, struct arp_ent *e)
{
	arp_drop_pending(st, e, true);
	if (e->state == ARP_VALID)
		st->stats.arp_cached--;
	oa_remove(&st->arp_tab, arp_hash(st, &e->addr),
		  (uint32_t)(e - st->arp));
	e->state = ARP_FREE;
	memset(&e->addr, 0, sizeof(e->addr));
}

void arp_fini(struct net_stack *st)
{
	if (st->arp != NULL) {
		for (uint32_t i = 0; i < st->conf.arp_entries; i++)
			if (st->arp[i].state != ARP_FREE)
				arp_drop_pending(st, &st->arp[i], false);
	}
	rte_free(st->arp);
	st->arp = NULL;
	oa_free(&st->arp_tab);
}

static struct arp_ent *arp_find(struct net_stack *st,
				const struct net_addr *a)
{
	uint32_t i = oa_find(&st->arp_tab, arp_hash(st, a), arp_eq, st, a);

	return i == OA_NONE ? NULL : &st->arp[i];
}

static void arp_note_deadline(struct net_stack *st, uint64_t at)
{
	if (st->arp_next_sweep == 0 || at < st->arp_next_sweep)
		st->arp_next_sweep = at;
}

/* A free slot, else the oldest VALID entry (LRU by learn time). */
static struct arp_ent *arp_new(struct net_stack *st, const struct net_addr *a)
{
	struct arp_ent *victim = NULL;

	for (uint32_t i = 0; i < st->conf.arp_entries; i++) {
		struct arp_ent *e = &st->arp[i];

		if (e->state == ARP_FREE) {
			victim = e;
			break;
		}
		if (e->state == ARP_VALID &&
		    (victim == NULL || e->stamp_us < victim->stamp_us))
			victim = e;
	}
	if (victim == NULL)
		return NULL;
	if (victim->state != ARP_FREE)
		arp_free_ent(st, victim);
	memset(victim, 0, sizeof(*victim));
	victim->addr = *a;
	oa_insert(&st->arp_tab, arp_hash(st, a), (uint32_t)(victim - st->arp));
	return victim;
}

static void arp_send(struct net_stack *st, uint16_t op,
		     const struct rte_ether_addr *eth_dst,
		     const struct rte_ether_addr *tha, rte_be32_t tip)
{
	struct rte_mbuf *m = net_alloc(st);
	struct rte_arp_hdr *ah;

	if (m == NULL)
		return;
	if (rte_pktmbuf_append(m, sizeof(struct rte_ether_hdr) + sizeof(*ah)) ==
	    NULL) {
		net_drop(st, m, NET_DROP_NOMBUF);
		return;
	}
	ah = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *,
				     sizeof(struct rte_ether_hdr));
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(&st->conf.mac, &ah->arp_data.arp_sha);
	ah->arp_data.arp_sip = st->conf.ip;
	rte_ether_addr_copy(tha, &ah->arp_data.arp_tha);
	ah->arp_data.arp_tip = tip;
	if (op == RTE_ARP_OP_REQUEST)
		st->stats.arp_requests_out++;
	else
		st->stats.arp_replies_out++;
	eth_output(st, m, eth_dst, RTE_ETHER_TYPE_ARP);
}

static void arp_request(struct net_stack *st, rte_be32_t ip)
{
	static const struct rte_ether_addr bcast = {
		.addr_bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	static const struct rte_ether_addr zero;

	arp_send(st, RTE_ARP_OP_REQUEST, &bcast, &zero, ip);
}

/* Ask for a next hop: ARP request or ND multicast solicitation. */
static void neigh_solicit(struct net_stack *st, const struct net_addr *a)
{
	if (net_addr_is_v4(a))
		arp_request(st, net_addr_v4(a));
	else
		nd_solicit(st, a);
}

static uint16_t neigh_ether_type(const struct arp_ent *e)
{
	return net_addr_is_v4(&e->addr) ? RTE_ETHER_TYPE_IPV4
					: RTE_ETHER_TYPE_IPV6;
}

static void arp_learn(struct net_stack *st, struct arp_ent *e,
		      const struct rte_ether_addr *mac)
{
	if (e->state != ARP_VALID)
		st->stats.arp_cached++;
	e->state = ARP_VALID;
	rte_ether_addr_copy(mac, &e->mac);
	e->stamp_us = st->now_us;
	e->tries = 0;
	arp_note_deadline(st, st->now_us +
				      (uint64_t)st->conf.arp_timeout_ms * 1000);
	for (uint32_t i = 0; i < e->npending; i++) {
		struct rte_mbuf *p = e->pending[i];

		st->stats.mbufs_held -= p->nb_segs;
		eth_output(st, p, &e->mac, neigh_ether_type(e));
	}
	e->npending = 0;
}

void neigh_learn(struct net_stack *st, const struct net_addr *nh,
		 const struct rte_ether_addr *mac, bool create)
{
	struct arp_ent *e = arp_find(st, nh);

	if (e == NULL && create)
		e = arp_new(st, nh);
	if (e != NULL)
		arp_learn(st, e, mac);
}

void arp_input(struct net_stack *st, struct rte_mbuf *m)
{
	struct rte_arp_hdr *ah;
	struct arp_ent *e;
	bool replica = m->hash.usr == NET_MBUF_REPLICA;
	bool for_us;
	uint16_t op;
	rte_be32_t sip;
	struct net_addr sa;

	if (rte_pktmbuf_data_len(m) <
	    sizeof(struct rte_ether_hdr) + sizeof(*ah)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	ah = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *,
				     sizeof(struct rte_ether_hdr));
	op = rte_be_to_cpu_16(ah->arp_opcode);
	if (ah->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    ah->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != 4 ||
	    (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) ||
	    rte_is_multicast_ether_addr(&ah->arp_data.arp_sha)) {
		net_drop(st, m, NET_DROP_ARP);
		return;
	}
	sip = ah->arp_data.arp_sip;
	for_us = ah->arp_data.arp_tip == st->conf.ip;
	if (op == RTE_ARP_OP_REPLY)
		st->stats.arp_replies_in++;

	/* RFC 826 "merge": refresh what we know; add the sender if the
	 * packet was for us (request or reply) or is a reply copy. */
	sa = net_addr_from_v4(sip);
	e = sip != 0 ? arp_find(st, &sa) : NULL;
	if (e != NULL)
		arp_learn(st, e, &ah->arp_data.arp_sha);
	else if (sip != 0 && sip != st->conf.ip &&
		 (for_us || (op == RTE_ARP_OP_REPLY && replica))) {
		e = arp_new(st, &sa);
		if (e != NULL)
			arp_learn(st, e, &ah->arp_data.arp_sha);
	}

	if (!for_us) {
		if (e == NULL)
			st->stats.drops[NET_DROP_ARP]++;
		rte_pktmbuf_free(m);
		return;
	}
	if (op == RTE_ARP_OP_REQUEST && !replica) {
		struct rte_ether_addr sha = ah->arp_data.arp_sha;

		arp_send(st, RTE_ARP_OP_REPLY, &sha, &sha, sip);
	}
	rte_pktmbuf_free(m);
}

void neigh_output(struct net_stack *st, struct rte_mbuf *m,
		  const struct net_addr *nh)
{
	struct arp_ent *e = arp_find(st, nh);
	uint64_t life = (uint64_t)st->conf.arp_timeout_ms * 1000;

	if (e != NULL && e->state == ARP_VALID) {
		uint64_t age = st->now_us - e->stamp_us;

		if (age < life) {
			/* Refresh ahead: in the last ARP_MAX_TRIES retry
			 * intervals of its life an entry in use is asked
			 * for again (once per interval) while it is still
			 * used, so a busy next hop never goes PENDING: at
			 * 60,000 connections a minute the frames queued
			 * behind a lapsed entry overflowed its pending
			 * queue (drop_arp_pending) every 60 s. */
			uint64_t ahead = (uint64_t)(ARP_MAX_TRIES - e->tries) *
					 ARP_RETRY_US;

			if (e->tries < ARP_MAX_TRIES &&
			    age + ahead >= life) {
				e->tries++;
				neigh_solicit(st, nh);
			}
			eth_output(st, m, &e->mac, neigh_ether_type(e));
			return;
		}
		/* Expired: resolve again before using it. */
		st->stats.arp_cached--;
		e->state = ARP_PENDING;
		e->tries = 0;
	}
	if (e == NULL) {
		e = arp_new(st, nh);
		if (e == NULL) {
			net_drop(st, m, NET_DROP_ARP_PENDING);
			return;
		}
		e->state = ARP_PENDING;
	}
	if (e->npending >= ARP_PENDING_MAX) {
		net_drop(st, m, NET_DROP_ARP_PENDING);
	} else {
		e->pending[e->npending++] = m;
		st->stats.mbufs_held += m->nb_segs;
	}
	if (e->tries == 0) {
		e->tries = 1;
		e->stamp_us = st->now_us;
		arp_note_deadline(st, st->now_us + ARP_RETRY_US);
		neigh_solicit(st, nh);
	}
}

void arp_poll(struct net_stack *st)
{
	uint64_t now = st->now_us, next = 0;
	uint64_t life = (uint64_t)st->conf.arp_timeout_ms * 1000;

	if (st->arp_next_sweep == 0 || now < st->arp_next_sweep)
		return;
	for (uint32_t i = 0; i < st->conf.arp_entries; i++) {
		struct arp_ent *e = &st->arp[i];
		uint64_t due;

		if (e->state == ARP_FREE)
			continue;
		if (e->state == ARP_VALID) {
			due = e->stamp_us + life;
			if (due <= now) {
				arp_free_ent(st, e);
				continue;
			}
		} else {
			due = e->stamp_us + ARP_RETRY_US;
			if (due <= now) {
				if (e->tries >= ARP_MAX_TRIES) {
					arp_free_ent(st, e);
					continue;
				}
				e->tries++;
				e->stamp_us = now;
				neigh_solicit(st, &e->addr);
				due = now + ARP_RETRY_US;
			}
		}
		if (next == 0 || due < next)
			next = due;
	}
	st->arp_next_sweep = next;
}

uint64_t arp_next_timer(const struct net_stack *st)
{
	return st->arp_next_sweep == 0 ? UINT64_MAX : st->arp_next_sweep;
}
