/*
 * mld.c - Multicast Listener Discovery version 2 (RFC 3810), host side:
 * report the solicited-node groups of our two IPv6 addresses, so that a
 * switch doing MLD snooping (RFC 4541) forwards the Neighbor
 * Solicitations for them to our port.
 *
 * Reports go to ff02::16 with hop limit 1 and a hop-by-hop Router Alert
 * (RFC 2711, value 0: MLD). At start-up, before the first DAD probe (RFC
 * 4862 5.4.2), core 0 sends a State Change Report (CHANGE_TO_EXCLUDE {}
 * for each group) twice, one second apart (RFC 3810 9.1 Robustness 2,
 * 9.11 Unsolicited Report Interval 1 s); from the unspecified address
 * while our link-local address is tentative (5.2.13). A Query (general
 * or for one of our groups) is answered by the core that received it
 * with a Current State Report (MODE_IS_EXCLUDE {}) after a delay drawn
 * in [0, Maximum Response Delay] (6.2; at most 10 s here). All-nodes
 * ff02::1 is never reported (6). An MLDv1 querier is answered in MLDv2
 * too (no version 1 compatibility mode: most snooping switches read
 * version 2).
 *
 * Ownership: the MLD timers of the stack's lcore; stateless otherwise.
 *
 * Promises: a Query is acted on only with hop limit 1, a link-local
 * source, code 0 and a length of at least 24 bytes (RFC 3810 5.1.14,
 * 6.2); never allocates but the frames it sends.
 */
#include <string.h>

#include <rte_ip.h>

#include "net_priv.h"

#define MLD_QUERY 130
#define MLD2_REPORT 143
#define MLD2_MODE_IS_EXCLUDE 2
#define MLD2_CHANGE_TO_EXCLUDE 4
#define MLD_ROBUSTNESS 2
#define MLD_UNSOLICITED_US 1000000u
#define MLD_MAX_DELAY_MS 10000u

static const struct net_addr mld_all_routers = {
	{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16}};

/* Our groups: the solicited-node groups of the global and the
 * link-local address (one when both share their low 24 bits). */
static uint32_t mld_groups(const struct net_stack *st, struct net_addr g[2])
{
	ip6_solicited_node(&st->conf.ip6, &g[0]);
	ip6_solicited_node(&st->ll6, &g[1]);
	return memcmp(&g[0], &g[1], sizeof(g[0])) == 0 ? 1 : 2;
}

void mld_report(struct net_stack *st, uint8_t record_type)
{
	static const struct net_addr unspec;
	struct net_addr g[2];
	uint32_t n = mld_groups(st, g);
	uint16_t icmplen = (uint16_t)(8 + 20 * n);
	const struct net_addr *src =
		st->ip6_state == IP6_READY ? &st->ll6 : &unspec;
	struct rte_mbuf *m;
	uint8_t *h =
		ipv6_alloc(st, &m, src, &mld_all_routers, 0 /* hop-by-hop */,
			   (uint16_t)(8 + icmplen), 0, 1);
	uint8_t *p;
	uint32_t sum;

	if (h == NULL)
		return;
	/* Hop-by-hop: Router Alert (RFC 2711) MLD, then PadN of 2. */
	h[0] = IPPROTO_ICMPV6;
	h[1] = 0;
	h[2] = 5;
	h[3] = 2;
	h[4] = h[5] = 0;
	h[6] = 1;
	h[7] = 0;
	p = h + 8;
	memset(p, 0, icmplen);
	p[0] = MLD2_REPORT;
	p[7] = (uint8_t)n; /* number of multicast address records */
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = p + 8 + 20 * i;

		r[0] = record_type; /* aux data length 0, no sources */
		memcpy(&r[4], &g[i], 16);
	}
	/* RFC 4443 2.3 over the pseudo-header: ipv6_output only sums an
	 * ICMPv6 header right after the IPv6 one. */
	sum = ip6_phdr_sum(src, &mld_all_routers, icmplen, IPPROTO_ICMPV6);
	sum += rte_raw_cksum(p, icmplen);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (uint16_t)~sum;
	memcpy(&p[2], &(uint16_t){(uint16_t)sum}, 2);
	st->stats.mld_reports_out++;
	ipv6_output(st, m);
}

void mld_init(struct net_stack *st)
{
	st->mld_start_left = st->conf.core_index == 0 && st->conf.mld_reports
				     ? MLD_ROBUSTNESS
				     : 0;
	st->mld_start_us = 0;
	st->mld_answer_us = UINT64_MAX;
}

void mld_poll(struct net_stack *st)
{
	if (st->ip6_state == IP6_OFF || st->ip6_state == IP6_DUPLICATE)
		return;
	if (st->mld_start_left > 0) {
		if (st->mld_start_us == 0)
			st->mld_start_us = st->now_us;
		if (st->now_us >= st->mld_start_us) {
			mld_report(st, MLD2_CHANGE_TO_EXCLUDE);
			st->mld_start_left--;
			st->mld_start_us = st->now_us + MLD_UNSOLICITED_US;
		}
	}
	if (st->now_us >= st->mld_answer_us) {
		st->mld_answer_us = UINT64_MAX;
		mld_report(st, MLD2_MODE_IS_EXCLUDE);
	}
}

uint64_t mld_next_timer(const struct net_stack *st)
{
	uint64_t t = st->mld_answer_us;

	if (st->ip6_state == IP6_OFF || st->ip6_state == IP6_DUPLICATE)
		return UINT64_MAX;
	if (st->mld_start_left > 0)
		t = RTE_MIN(t, st->mld_start_us == 0 ? st->now_us
						     : st->mld_start_us);
	return t;
}

void mld_input(struct net_stack *st, struct rte_mbuf *m,
	       const struct net_l3 *l3, uint16_t l4off, uint16_t l4len)
{
	uint8_t buf[24];
	const uint8_t *p;
	struct net_addr g[2], any;
	uint32_t n, code, delay_ms;
	bool ours = false;

	p = l4len >= sizeof(buf) ? rte_pktmbuf_read(m, l4off, sizeof(buf), buf)
				 : NULL;
	if (p == NULL || p[0] != MLD_QUERY || p[1] != 0 ||
	    !st->conf.mld_reports || l3->hop_limit != 1 ||
	    !ip6_is_linklocal(&l3->src) || st->ip6_state == IP6_OFF ||
	    st->ip6_state == IP6_DUPLICATE) {
		net_drop(st, m, NET_DROP_ICMP);
		return;
	}
	/* A general query names ::, a specific one its group. */
	memset(&any, 0, sizeof(any));
	n = mld_groups(st, g);
	for (uint32_t i = 0; i < n; i++)
		ours |= memcmp(&p[8], &g[i], 16) == 0;
	if (memcmp(&p[8], &any, 16) != 0 && !ours) {
		rte_pktmbuf_free(m);
		return;
	}
	/* RFC 3810 5.1.3: below 32768 the code is milliseconds, above a
	 * floating point value (which is more than our cap anyway). */
	code = ((uint32_t)p[4] << 8) | p[5];
	delay_ms = RTE_MIN(code, MLD_MAX_DELAY_MS);
	{
		uint64_t r = net_siphash(st->sip_k0, st->sip_k1 ^ 0x6d6c64,
					 &st->now_us, sizeof(st->now_us));
		uint64_t at =
			st->now_us + (r % ((uint64_t)delay_ms + 1)) * 1000;

		/* 6.2: an earlier pending answer stands. */
		if (at < st->mld_answer_us)
			st->mld_answer_us = at;
	}
	rte_pktmbuf_free(m);
}
