/*
 * tcb.c - the TCP control block table, listeners, the compact TIME_WAIT
 * table, and the connection lifecycle part of the upper-layer API
 * (connect/close/abort and accessors).
 *
 * Ownership: every table belongs to the stack's lcore. TCBs live in one
 * array of conf->max_conns entries with a free list and an open-addressing
 * index by 4-tuple; TIME_WAIT entries in a FIFO ring of conf->max_timewait
 * entries with their own index.
 *
 * Lifetime rule (re-entrancy): a TCB is released (hash slot, timers and
 * buffers freed, gauges updated) at the moment it dies, but its memory is
 * only put back on the free list by tcb_reap() at the start or end of a
 * top-level entry point (net_stack_input/poll, tcp_connect outside a
 * callback). Code that calls a callback checks TF_DEAD afterwards, and API
 * calls on a dead conn are harmless no-ops until then.
 *
 * Promises: never allocates after init; a full TIME_WAIT table recycles
 * its oldest entry (counted); a full TCB table refuses (counted).
 */
#include <errno.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "net_priv.h"

/* ---- open addressing ------------------------------------------------- */

int oa_init(struct oa_tab *t, uint32_t entries, int socket)
{
	uint32_t n = 16;

	while (n < 2 * (uint64_t)entries)
		n <<= 1;
	t->slot = rte_zmalloc_socket("net_oa", sizeof(*t->slot) * n, 0, socket);
	if (t->slot == NULL)
		return -ENOMEM;
	t->mask = n - 1;
	return 0;
}

void oa_free(struct oa_tab *t)
{
	rte_free(t->slot);
	t->slot = NULL;
}

uint32_t oa_find(const struct oa_tab *t, uint32_t h, oa_eq_fn eq,
		 const void *ctx, const void *key)
{
	for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct oa_slot *s = &t->slot[i];

		if (s->idx1 == 0)
			return OA_NONE;
		if (s->hash == h && eq(ctx, s->idx1 - 1, key))
			return s->idx1 - 1;
	}
}

void oa_insert(struct oa_tab *t, uint32_t h, uint32_t idx)
{
	uint32_t i = h & t->mask;

	while (t->slot[i].idx1 != 0)
		i = (i + 1) & t->mask;
	t->slot[i].hash = h;
	t->slot[i].idx1 = idx + 1;
}

void oa_remove(struct oa_tab *t, uint32_t h, uint32_t idx)
{
	uint32_t i = h & t->mask, j;

	while (t->slot[i].idx1 != idx + 1) {
		if (t->slot[i].idx1 == 0)
			return;
		i = (i + 1) & t->mask;
	}
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (j = i;;) {
		uint32_t k;

		j = (j + 1) & t->mask;
		if (t->slot[j].idx1 == 0)
			break;
		k = t->slot[j].hash & t->mask;
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			t->slot[i] = t->slot[j];
			i = j;
		}
	}
	t->slot[i].idx1 = 0;
	t->slot[i].hash = 0;
}

/* ---- TCB table ------------------------------------------------------- */

uint32_t tcp_key_hash(const struct net_stack *st, const struct tcp_key *k)
{
	return rte_hash_crc(k, sizeof(*k), st->hash_seed);
}

static bool tcb_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct net_stack *st = ctx;

	return memcmp(&st->tcbs[idx].key, key, sizeof(struct tcp_key)) == 0;
}

static bool tw_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct net_stack *st = ctx;

	return st->tw[idx].valid &&
	       memcmp(&st->tw[idx].key, key, sizeof(struct tcp_key)) == 0;
}

int tcb_init(struct net_stack *st, int socket)
{
	uint32_t n = st->conf.max_conns;

	st->tcbs = rte_zmalloc_socket("tcbs", sizeof(*st->tcbs) * n,
				      RTE_CACHE_LINE_SIZE, socket);
	st->tcb_free =
		rte_zmalloc_socket("tcb_free", sizeof(uint32_t) * n, 0, socket);
	st->reap =
		rte_zmalloc_socket("tcb_reap", sizeof(uint32_t) * n, 0, socket);
	st->heap =
		rte_zmalloc_socket("tcb_heap", sizeof(void *) * n, 0, socket);
	st->tw = rte_zmalloc_socket(
		"tw", sizeof(*st->tw) * st->conf.max_timewait, 0, socket);
	if (st->tcbs == NULL || st->tcb_free == NULL || st->reap == NULL ||
	    st->heap == NULL || (st->tw == NULL && st->conf.max_timewait))
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		st->tcb_free[i] = n - 1 - i;
	st->n_free = n;
	if (oa_init(&st->tcb_tab, n, socket) != 0 ||
	    oa_init(&st->tw_tab, st->conf.max_timewait, socket) != 0)
		return -ENOMEM;
	return 0;
}

void tcb_fini(struct net_stack *st)
{
	if (st->tcbs != NULL) {
		for (uint32_t i = 0; i < st->conf.max_conns; i++) {
			struct tcp_conn *c = &st->tcbs[i];

			if (c->st != NULL && !(c->flags & TF_DEAD))
				tcb_release(c);
		}
	}
	rte_free(st->tcbs);
	rte_free(st->tcb_free);
	rte_free(st->reap);
	rte_free(st->heap);
	rte_free(st->tw);
	oa_free(&st->tcb_tab);
	oa_free(&st->tw_tab);
}

struct tcp_conn *tcb_lookup(struct net_stack *st, const struct tcp_key *k)
{
	uint32_t i = oa_find(&st->tcb_tab, tcp_key_hash(st, k), tcb_eq, st, k);

	return i == OA_NONE ? NULL : &st->tcbs[i];
}

struct tcp_conn *tcb_alloc(struct net_stack *st, const struct tcp_key *k)
{
	struct tcp_conn *c;
	uint32_t idx;

	if (st->n_free == 0 && st->depth == 0)
		tcb_reap(st);
	if (st->n_free == 0) {
		st->stats.drops[NET_DROP_TCB_FULL]++;
		return NULL;
	}
	idx = st->tcb_free[--st->n_free];
	c = &st->tcbs[idx];
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->idx = idx;
	c->heap_pos = UINT32_MAX;
	c->key = *k;
	c->state = TCP_CLOSED;
	c->rto_us = TCP_INIT_RTO_US;
	c->peer_mss = TCP_DEFAULT_MSS;
	oa_insert(&st->tcb_tab, tcp_key_hash(st, k), idx);
	st->stats.live_tcbs++;
	return c;
}

void tcp_rcvq_drop(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	struct rte_mbuf *m, *n;

	for (m = c->rcvq_head; m != NULL; m = n) {
		n = m->next;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
		st->stats.mbufs_held--;
	}
	c->rcvq_head = c->rcvq_tail = NULL;
	c->rcv_bytes = 0;
}

void tcb_release(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	struct rte_mbuf *m, *n;

	if (c->flags & TF_DEAD)
		return;
	tcb_set_state(c, TCP_CLOSED);
	c->flags |= TF_DEAD;
	oa_remove(&st->tcb_tab, tcp_key_hash(st, &c->key), c->idx);
	tcp_timer_unlink(c);
	for (m = c->sndq_head; m != NULL; m = n) {
		n = m->next;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
		st->stats.mbufs_held--;
	}
	c->sndq_head = c->sndq_tail = NULL;
	c->snd_cur = NULL;
	c->snd_bytes = 0;
	tcp_rcvq_drop(c);
	for (m = c->ooo_head; m != NULL; m = n) {
		n = m->next;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
		st->stats.mbufs_held--;
	}
	c->ooo_head = NULL;
	c->ooo_cnt = 0;
	c->ooo_bytes = 0;
	st->stats.live_tcbs--;
	st->stats.tcp_closed++;
	st->reap[st->n_reap++] = c->idx;
	c->flags |= TF_REAP;
}

void tcb_reap(struct net_stack *st)
{
	for (uint32_t i = 0; i < st->n_reap; i++) {
		struct tcp_conn *c = &st->tcbs[st->reap[i]];

		c->flags = TF_DEAD;
		c->cb = NULL;
		c->ctx = NULL;
		st->tcb_free[st->n_free++] = c->idx;
	}
	st->n_reap = 0;
}

void tcb_set_state(struct tcp_conn *c, enum tcp_state s)
{
	struct net_stack *st = c->st;

	if (c->state == s)
		return;
	if (c->state == TCP_SYN_RCVD && (c->flags & TF_PASSIVE))
		st->stats.syn_rcvd--;
	if (s == TCP_SYN_RCVD && (c->flags & TF_PASSIVE))
		st->stats.syn_rcvd++;
	c->state = (uint8_t)s;
}

void tcp_finish(struct tcp_conn *c, int err)
{
	const struct tcp_callbacks *cb = c->cb;
	bool known = !(c->flags & TF_PASSIVE) || (c->flags & TF_ACCEPTED);

	if (c->flags & TF_DEAD)
		return;
	tcb_release(c);
	if (!known || cb == NULL)
		return;
	if (err == 0) {
		if (cb->closed != NULL)
			cb->closed(c->ctx, c);
	} else if (cb->reset != NULL) {
		cb->reset(c->ctx, c, err);
	}
}

/* ---- listeners ------------------------------------------------------- */

struct tcp_listener *tcp_listener_find(struct net_stack *st, uint16_t port)
{
	for (int i = 0; i < NET_LISTEN_MAX; i++)
		if (st->lst[i].port == port && port != 0)
			return &st->lst[i];
	return NULL;
}

struct tcp_listener *tcp_listener_match(struct net_stack *st,
					const struct tcp_key *k)
{
	struct tcp_listener *l = tcp_listener_find(st, k->lport);
	unsigned fam = tcp_key_v6(k) ? TCP_FAMILY_V6 : TCP_FAMILY_V4;

	return (l != NULL && (l->families & fam)) ? l : NULL;
}

int tcp_listen_families(struct net_stack *st, uint16_t port, unsigned families)
{
	struct tcp_listener *l = tcp_listener_find(st, port);

	if (l == NULL)
		return -ENOENT;
	if ((families & ~(unsigned)TCP_FAMILY_ANY) != 0 || families == 0)
		return -EINVAL;
	l->families = (uint8_t)families;
	return 0;
}

int tcp_listen(struct net_stack *st, uint16_t port,
	       const struct tcp_callbacks *cb, void *listen_arg)
{
	if (port == 0 || cb == NULL)
		return -EINVAL;
	if (tcp_listener_find(st, port) != NULL)
		return -EADDRINUSE;
	for (int i = 0; i < NET_LISTEN_MAX; i++) {
		if (st->lst[i].port == 0) {
			st->lst[i].port = port;
			st->lst[i].families = TCP_FAMILY_ANY;
			st->lst[i].cb = cb;
			st->lst[i].arg = listen_arg;
			return 0;
		}
	}
	return -ENOSPC;
}

int tcp_unlisten(struct net_stack *st, uint16_t port)
{
	struct tcp_listener *l = tcp_listener_find(st, port);

	if (l == NULL)
		return -ENOENT;
	memset(l, 0, sizeof(*l));
	return 0;
}

/* ---- TIME_WAIT ------------------------------------------------------- */

struct tw_ent *tw_lookup(struct net_stack *st, const struct tcp_key *k)
{
	uint32_t i;

	if (st->conf.max_timewait == 0)
		return NULL;
	i = oa_find(&st->tw_tab, tcp_key_hash(st, k), tw_eq, st, k);
	return i == OA_NONE ? NULL : &st->tw[i];
}

void tw_remove(struct net_stack *st, struct tw_ent *e)
{
	if (!e->valid)
		return;
	oa_remove(&st->tw_tab, e->hash, (uint32_t)(e - st->tw));
	e->valid = 0;
	st->stats.timewait--;
}

static void tw_pop_head(struct net_stack *st, bool recycle)
{
	struct tw_ent *e = &st->tw[st->tw_head];

	if (e->valid) {
		tw_remove(st, e);
		if (recycle)
			st->stats.timewait_recycled++;
	}
	st->tw_head = (st->tw_head + 1) % st->conf.max_timewait;
	st->tw_cnt--;
}

/* RFC 9293 3.6: hold the 4-tuple for 2*MSL; here in a FIFO, so the
 * oldest entry is both the next to expire and the one recycled when the
 * table is full (the peer then gets an RST for a late retransmission). */
void tw_insert_from(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	uint32_t max = st->conf.max_timewait;
	struct tw_ent *e;
	uint32_t pos;

	if (max == 0)
		return;
	while (st->tw_cnt >= max)
		tw_pop_head(st, true);
	pos = (st->tw_head + st->tw_cnt) % max;
	e = &st->tw[pos];
	memset(e, 0, sizeof(*e));
	e->key = c->key;
	e->snd_nxt = c->snd_max;
	e->rcv_nxt = c->rcv_nxt;
	e->ts_recent = c->ts_recent;
	e->ts_off = c->ts_off;
	e->ts = (c->flags & TF_TS) != 0;
	e->rcv_wscale = c->rcv_wscale;
	e->expire_us = st->now_us + (uint64_t)st->conf.timewait_ms * 1000;
	e->hash = tcp_key_hash(st, &c->key);
	e->valid = 1;
	oa_insert(&st->tw_tab, e->hash, pos);
	st->tw_cnt++;
	st->stats.timewait++;
}

void tw_restart(struct net_stack *st, struct tw_ent *e)
{
	uint32_t max = st->conf.max_timewait;
	struct tw_ent copy = *e;
	uint32_t pos;

	tw_remove(st, e);
	while (st->tw_cnt >= max)
		tw_pop_head(st, true);
	pos = (st->tw_head + st->tw_cnt) % max;
	st->tw[pos] = copy;
	st->tw[pos].valid = 1;
	st->tw[pos].expire_us =
		st->now_us + (uint64_t)st->conf.timewait_ms * 1000;
	oa_insert(&st->tw_tab, copy.hash, pos);
	st->tw_cnt++;
	st->stats.timewait++;
}

void tw_expire(struct net_stack *st)
{
	while (st->tw_cnt > 0) {
		struct tw_ent *e = &st->tw[st->tw_head];

		if (e->valid && e->expire_us > st->now_us)
			break;
		tw_pop_head(st, false);
	}
}

void tcp_enter_timewait(struct tcp_conn *c)
{
	tw_insert_from(c);
	tcp_finish(c, 0);
}

/* ---- connection API ------------------------------------------------- */

/* Active open of k (addresses and rport set; lport picked here from this
 * core's ephemeral range). */
static int tcp_connect_key(struct net_stack *st, struct tcp_key k,
			   const struct tcp_callbacks *cb, void *ctx,
			   struct tcp_conn **out)
{
	uint32_t range = (uint32_t)st->conf.eph_hi - st->conf.eph_lo + 1;
	struct tcp_conn *c;
	uint32_t i;

	*out = NULL;
	if (st->depth == 0)
		tcb_reap(st);
	for (i = 0; i < range; i++) {
		k.lport = st->eph_next;
		st->eph_next = st->eph_next >= st->conf.eph_hi
				       ? st->conf.eph_lo
				       : (uint16_t)(st->eph_next + 1);
		if (tcb_lookup(st, &k) == NULL && tw_lookup(st, &k) == NULL &&
		    tcp_listener_find(st, k.lport) == NULL)
			break;
	}
	if (i == range)
		return -EADDRNOTAVAIL;
	c = tcb_alloc(st, &k);
	if (c == NULL)
		return -ENOSPC;
	c->cb = cb;
	c->ctx = ctx;
	c->iss = tcp_isn(st, &k);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->recover = c->iss;
	c->ts_off = tcp_ts_offset(st, &k);
	c->flags |= TF_TS | TF_WS; /* offered; cleared if the peer declines */
	while (c->rcv_wscale < 14 && (st->conf.rcvbuf >> c->rcv_wscale) > 65535)
		c->rcv_wscale++;
	tcp_update_mss(c);
	tcb_set_state(c, TCP_SYN_SENT);
	*out = c;
	tcp_send_syn(c);
	return 0;
}

int tcp_connect(struct net_stack *st, rte_be32_t dst, uint16_t dport,
		const struct tcp_callbacks *cb, void *ctx,
		struct tcp_conn **out)
{
	struct tcp_key k;

	memset(&k, 0, sizeof(k));
	k.raddr = net_addr_from_v4(dst);
	k.laddr = net_addr_from_v4(st->conf.ip);
	k.rport = dport;
	return tcp_connect_key(st, k, cb, ctx, out);
}

int tcp_connect6(struct net_stack *st, const struct net_addr *dst,
		 uint16_t dport, const struct tcp_callbacks *cb, void *ctx,
		 struct tcp_conn **out)
{
	struct tcp_key k;

	*out = NULL;
	if (st->ip6_state != IP6_READY || net_addr_is_v4(dst) ||
	    ip6_is_multicast(dst) || ip6_is_unspecified(dst))
		return -EADDRNOTAVAIL;
	memset(&k, 0, sizeof(k));
	k.raddr = *dst;
	k.laddr = *ipv6_src_for(st, dst);
	k.rport = dport;
	return tcp_connect_key(st, k, cb, ctx, out);
}

int tcp_close(struct tcp_conn *c)
{
	if (c->flags & TF_DEAD)
		return -EPIPE;
	if (c->flags & TF_FIN_QUEUED)
		return 0;
	switch (c->state) {
	case TCP_SYN_SENT:
		/* RFC 9293 3.10.4: delete the TCB; closed() is delivered
		 * from the next poll so the caller never sees it re-enter. */
		for (int i = 0; i < TT_MAX; i++)
			tcp_timer_stop(c, (enum tcp_timer_id)i);
		tcb_set_state(c, TCP_CLOSED);
		c->flags |= TF_NOTIFY_CLOSED | TF_FIN_QUEUED;
		tcp_timer_set(c, TT_LINGER, c->st->now_us);
		return 0;
	case TCP_SYN_RCVD:
		c->flags |= TF_FIN_QUEUED; /* FIN once ESTABLISHED */
		return 0;
	case TCP_ESTABLISHED:
		c->flags |= TF_FIN_QUEUED;
		tcb_set_state(c, TCP_FIN_WAIT_1);
		break;
	case TCP_CLOSE_WAIT:
		c->flags |= TF_FIN_QUEUED;
		tcb_set_state(c, TCP_LAST_ACK);
		break;
	default:
		return -EPIPE;
	}
	tcp_output(c);
	return 0;
}

void tcp_abort(struct tcp_conn *c)
{
	if (c->flags & TF_DEAD)
		return;
	/* RFC 9293 3.10.5: RST <SEQ=SND.NXT> in synchronized states. */
	if (c->state >= TCP_SYN_RCVD && c->state != TCP_TIME_WAIT)
		tcp_send_rst_conn(c);
	tcb_release(c);
	if (c->st->depth == 0)
		tcb_reap(c->st);
}

void tcp_set_ctx(struct tcp_conn *c, void *ctx)
{
	c->ctx = ctx;
}

void *tcp_get_ctx(const struct tcp_conn *c)
{
	return c->ctx;
}

void tcp_conn_addrs(const struct tcp_conn *c, rte_be32_t *laddr,
		    uint16_t *lport, rte_be32_t *raddr, uint16_t *rport)
{
	bool v6 = tcp_key_v6(&c->key);

	if (laddr != NULL)
		*laddr = v6 ? 0 : net_addr_v4(&c->key.laddr);
	if (lport != NULL)
		*lport = c->key.lport;
	if (raddr != NULL)
		*raddr = v6 ? 0 : net_addr_v4(&c->key.raddr);
	if (rport != NULL)
		*rport = c->key.rport;
}

void tcp_conn_addrs6(const struct tcp_conn *c, struct net_addr *laddr,
		     uint16_t *lport, struct net_addr *raddr, uint16_t *rport)
{
	if (laddr != NULL)
		*laddr = c->key.laddr;
	if (lport != NULL)
		*lport = c->key.lport;
	if (raddr != NULL)
		*raddr = c->key.raddr;
	if (rport != NULL)
		*rport = c->key.rport;
}

bool tcp_conn_is_v6(const struct tcp_conn *c)
{
	return tcp_key_v6(&c->key);
}

enum tcp_state tcp_conn_state(const struct tcp_conn *c)
{
	return (enum tcp_state)c->state;
}

const char *tcp_state_name(enum tcp_state s)
{
	static const char *const names[] = {
		[TCP_CLOSED] = "CLOSED",
		[TCP_LISTEN] = "LISTEN",
		[TCP_SYN_SENT] = "SYN_SENT",
		[TCP_SYN_RCVD] = "SYN_RCVD",
		[TCP_ESTABLISHED] = "ESTABLISHED",
		[TCP_FIN_WAIT_1] = "FIN_WAIT_1",
		[TCP_FIN_WAIT_2] = "FIN_WAIT_2",
		[TCP_CLOSE_WAIT] = "CLOSE_WAIT",
		[TCP_CLOSING] = "CLOSING",
		[TCP_LAST_ACK] = "LAST_ACK",
		[TCP_TIME_WAIT] = "TIME_WAIT",
	};

	if ((unsigned int)s >= RTE_DIM(names))
		return "?";
	return names[s];
}

uint16_t tcp_conn_mss(const struct tcp_conn *c)
{
	return c->mss;
}
