/*
 * tcp_timer.c - per-core TCP timers: a binary min-heap of TCBs keyed by
 * their earliest deadline, driven by the now_us the poll loop passes in;
 * and the RFC 6298 retransmission timeout computation.
 *
 * Ownership: the heap (st->heap) belongs to the stack's lcore; each TCB
 * carries its four deadlines (RTO, delayed ACK, persist, linger) and its
 * position in the heap, so arming, moving and stopping are O(log n) with
 * no allocation. TIME_WAIT entries do not use the heap: they expire in
 * FIFO order from their own ring (tcb.c).
 *
 * Retransmission (RFC 6298, RFC 5681, RFC 6582, Karn):
 *  - RTO = SRTT + max(G, 4*RTTVAR), clamped to [200 ms, 60 s]; before any
 *    sample 1 s. Samples come only from segments never retransmitted
 *    (Karn's rule, enforced in tcp_xmit()).
 *  - On expiry: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS
 *    (loss window), recover = highest sequence sent (RFC 6582 4), the
 *    timer backs off exponentially (5.5) and go-back-N resends from
 *    snd_una as ACKs open cwnd again. The backed-off RTO is kept until a
 *    valid sample arrives (5.7 / Karn). After TCP_MAX_RETRIES expiries
 *    without progress the connection is reset with ETIMEDOUT.
 *  - SYN and SYN-ACK are retried TCP_MAX_SYN_RETRIES times.
 */
#include <errno.h>

#include "net_priv.h"

static void heap_set(struct net_stack *st, uint32_t pos, struct tcp_conn *c)
{
	st->heap[pos] = c;
	c->heap_pos = pos;
}

static void heap_up(struct net_stack *st, uint32_t pos)
{
	struct tcp_conn *c = st->heap[pos];

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;

		if (st->heap[parent]->deadline <= c->deadline)
			break;
		heap_set(st, pos, st->heap[parent]);
		pos = parent;
	}
	heap_set(st, pos, c);
}

static void heap_down(struct net_stack *st, uint32_t pos)
{
	struct tcp_conn *c = st->heap[pos];

	for (;;) {
		uint32_t l = 2 * pos + 1, r = l + 1, m = l;

		if (l >= st->heap_n)
			break;
		if (r < st->heap_n &&
		    st->heap[r]->deadline < st->heap[l]->deadline)
			m = r;
		if (st->heap[m]->deadline >= c->deadline)
			break;
		heap_set(st, pos, st->heap[m]);
		pos = m;
	}
	heap_set(st, pos, c);
}

static void heap_remove(struct net_stack *st, struct tcp_conn *c)
{
	uint32_t pos = c->heap_pos;
	struct tcp_conn *last;

	c->heap_pos = UINT32_MAX;
	last = st->heap[--st->heap_n];
	if (pos == st->heap_n)
		return;
	heap_set(st, pos, last);
	heap_up(st, pos);
	heap_down(st, last->heap_pos);
}

static void tcp_timer_resched(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	uint64_t d = 0, old = c->deadline;

	for (int i = 0; i < TT_MAX; i++)
		if (c->timer[i] != 0 && (d == 0 || c->timer[i] < d))
			d = c->timer[i];
	if (d == 0) {
		if (c->heap_pos != UINT32_MAX)
			heap_remove(st, c);
		c->deadline = 0;
		return;
	}
	c->deadline = d;
	if (c->heap_pos == UINT32_MAX) {
		heap_set(st, st->heap_n++, c);
		heap_up(st, c->heap_pos);
	} else if (d < old) {
		heap_up(st, c->heap_pos);
	} else if (d > old) {
		heap_down(st, c->heap_pos);
	}
}

void tcp_timer_set(struct tcp_conn *c, enum tcp_timer_id id, uint64_t at)
{
	/* Only the deferred-notification timer may be due immediately;
	 * anything periodic must move time forward or the run loop spins. */
	if (id != TT_LINGER && at <= c->st->now_us)
		at = c->st->now_us + 1;
	if (at == 0)
		at = 1;
	c->timer[id] = at;
	tcp_timer_resched(c);
}

void tcp_timer_stop(struct tcp_conn *c, enum tcp_timer_id id)
{
	if (c->timer[id] == 0)
		return;
	c->timer[id] = 0;
	tcp_timer_resched(c);
}

void tcp_timer_unlink(struct tcp_conn *c)
{
	for (int i = 0; i < TT_MAX; i++)
		c->timer[i] = 0;
	if (c->heap_pos != UINT32_MAX)
		heap_remove(c->st, c);
	c->deadline = 0;
}

uint32_t tcp_cur_rto(const struct tcp_conn *c)
{
	uint64_t r = (uint64_t)c->rto_us << c->rto_shift;

	return (uint32_t)RTE_MIN(r, (uint64_t)TCP_MAX_RTO_US);
}

/* RFC 6298 2.2 / 2.3, G = 1 ms. */
void tcp_rtt_sample(struct tcp_conn *c, uint32_t r)
{
	uint64_t rto;

	if (r == 0)
		r = 1;
	if (c->srtt_us == 0) {
		c->srtt_us = r;
		c->rttvar_us = r / 2;
	} else {
		uint32_t delta =
			c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * (uint64_t)c->srtt_us + r) / 8;
	}
	rto = (uint64_t)c->srtt_us + RTE_MAX(1000u, 4 * c->rttvar_us);
	rto = RTE_MAX(rto, (uint64_t)TCP_MIN_RTO_US);
	c->rto_us = (uint32_t)RTE_MIN(rto, (uint64_t)TCP_MAX_RTO_US);
	c->rto_shift = 0;
}

void tcp_rto_syn_fallback(struct tcp_conn *c)
{
	c->rto_us = RTE_MAX(c->rto_us, TCP_SYN_FALLBACK_RTO_US);
	c->rto_shift = 0;
}

static void tcp_rto_expired(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	uint32_t flight;

	if (c->state == TCP_SYN_SENT || c->state == TCP_SYN_RCVD) {
		if (++c->retries > TCP_MAX_SYN_RETRIES) {
			st->stats.tcp_timeouts++;
			tcp_finish(c, ETIMEDOUT);
			return;
		}
		if (c->rto_shift < 16)
			c->rto_shift++;
		c->flags &= ~TF_RTT;
		tcp_send_syn(c);
		/* Karn's rule leaves rtt_ts unused: it now dates the latest
		 * timeout retransmission, which the end of the handshake
		 * compares an echoed timestamp with (tcp_synack_acked). */
		c->rtt_ts = st->now_us;
		return;
	}
	if (c->snd_una == c->snd_max)
		return;
	if (++c->retries > TCP_MAX_RETRIES) {
		st->stats.tcp_timeouts++;
		tcp_finish(c, ETIMEDOUT);
		return;
	}
	flight = c->snd_max - c->snd_una;
	c->ssthresh = RTE_MAX(flight / 2, 2u * c->mss); /* RFC 5681 (4) */
	c->cwnd = c->mss;
	c->recover = c->snd_max;
	c->flags &= ~(TF_RECOVERY | TF_RTT);
	c->dupacks = 0;
	if (c->rto_shift < 16)
		c->rto_shift++;
	c->snd_nxt = c->snd_una;
	tcp_retransmit_una(c);
	tcp_timer_set(c, TT_RTO, st->now_us + tcp_cur_rto(c));
	tcp_output(c);
}

static void tcp_timer_fire(struct tcp_conn *c, enum tcp_timer_id id)
{
	switch (id) {
	case TT_RTO:
		tcp_rto_expired(c);
		break;
	case TT_DELACK:
		if (c->flags & TF_DELACK)
			tcp_send_ack(c);
		break;
	case TT_PERSIST:
		if (c->flags & TF_PERSIST) {
			tcp_send_probe(c);
			if (c->persist_shift < 16)
				c->persist_shift++;
			tcp_arm_timers(c);
		}
		break;
	case TT_LINGER:
		if (c->flags & TF_NOTIFY_CLOSED) {
			tcp_finish(c, 0);
		} else if (c->state == TCP_FIN_WAIT_2) {
			c->st->stats.tcp_timeouts++;
			tcp_finish(c, ETIMEDOUT);
		}
		break;
	default:
		break;
	}
}

void tcp_timers_run(struct net_stack *st)
{
	uint64_t now = st->now_us;

	while (st->heap_n > 0 && st->heap[0]->deadline <= now) {
		struct tcp_conn *c = st->heap[0];

		for (int i = 0; i < TT_MAX; i++) {
			if (c->flags & TF_DEAD)
				break;
			if (c->timer[i] != 0 && c->timer[i] <= now) {
				c->timer[i] = 0;
				tcp_timer_resched(c);
				tcp_timer_fire(c, (enum tcp_timer_id)i);
			}
		}
	}
}

uint64_t tcp_timer_next(const struct net_stack *st)
{
	return st->heap_n > 0 ? st->heap[0]->deadline : UINT64_MAX;
}
