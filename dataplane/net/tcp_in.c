/*
 * tcp_in.c - TCP input: RFC 9293 3.10.7 "SEGMENT ARRIVES" for every state,
 * listeners (with SYN cookies when the backlog is full), TIME_WAIT, the
 * receive side of the upper-layer API (tcp_recv / tcp_recv_chain) and the
 * ICMP fragmentation-needed hook.
 *
 * Ownership: TCBs, listeners and TIME_WAIT entries of the stack's lcore.
 *
 * Promises: received payload stays in the received mbufs (headers cut
 * off by moving data_off, no copy); in-order data is a chain of segments
 * bounded by conf->rcvbuf, out-of-order data a sorted list bounded by
 * conf->ooo_max_segs; everything outside the window is dropped and
 * counted. Callbacks are called last for each event and every path that
 * calls one re-checks TF_DEAD afterwards, since the upper layer may close
 * or abort the connection from inside any callback.
 */
#include <errno.h>
#include <string.h>

#include "net_priv.h"

struct tcp_seg {
	uint32_t seq, ack;
	uint32_t len; /* payload bytes */
	uint32_t wnd; /* raw window field */
	uint8_t flags;
	struct tcp_opts o;
	struct rte_mbuf *m; /* payload only, NULL when none or consumed */
};

#define TCP_IW_SEGS 10 /* RFC 6928 initial window */

static void tcp_segment(struct tcp_conn *c, struct tcp_seg *s);

/* ---- mbuf helpers ---------------------------------------------------- */

/* Cut n bytes from the front of a packet chain; NULL if nothing is left. */
static struct rte_mbuf *pkt_adj(struct rte_mbuf *m, uint32_t n)
{
	uint32_t left;
	uint16_t nb = m->nb_segs;

	if (n >= m->pkt_len) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	left = m->pkt_len - n;
	while (n >= m->data_len) {
		struct rte_mbuf *nx = m->next;

		n -= m->data_len;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
		nb--;
		m = nx;
	}
	m->data_off = (uint16_t)(m->data_off + n);
	m->data_len = (uint16_t)(m->data_len - n);
	m->pkt_len = left;
	m->nb_segs = nb;
	return m;
}

static void rcvq_append(struct tcp_conn *c, struct rte_mbuf *m)
{
	struct net_stack *st = c->st;

	while (m != NULL) {
		struct rte_mbuf *nx = m->next;

		m->next = NULL;
		if (m->data_len == 0) {
			rte_pktmbuf_free_seg(m);
		} else {
			if (c->rcvq_tail != NULL)
				c->rcvq_tail->next = m;
			else
				c->rcvq_head = m;
			c->rcvq_tail = m;
			c->rcv_bytes += m->data_len;
			st->stats.mbufs_held++;
		}
		m = nx;
	}
}

static inline uint32_t ooo_seq(const struct rte_mbuf *m)
{
	return m->hash.usr;
}

/* Queue an out-of-order segment (RFC 9293 3.10.7.4 "seventh"), sorted
 * by sequence number, overlaps trimmed so no byte is held twice. */
static void ooo_insert(struct tcp_conn *c, struct rte_mbuf *m, uint32_t seq,
		       uint32_t len)
{
	struct net_stack *st = c->st;
	struct rte_mbuf *prev = NULL, *cur = c->ooo_head;
	uint32_t end = seq + len;

	if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
		net_drop(st, m, NET_DROP_OOO_FULL);
		return;
	}
	while (cur != NULL && seq_lt(ooo_seq(cur), seq)) {
		prev = cur;
		cur = cur->next;
	}
	if (prev != NULL) {
		uint32_t pend = ooo_seq(prev) + prev->data_len;

		if (seq_geq(pend, end)) {
			rte_pktmbuf_free(m); /* duplicate */
			return;
		}
		if (seq_gt(pend, seq)) {
			uint32_t cut = pend - seq;

			m->data_off = (uint16_t)(m->data_off + cut);
			m->data_len = (uint16_t)(m->data_len - cut);
			seq = pend;
		}
	}
	while (cur != NULL && seq_leq(ooo_seq(cur) + cur->data_len, end)) {
		struct rte_mbuf *nx = cur->next;

		/* fully covered by the new segment */
		c->ooo_cnt--;
		c->ooo_bytes -= cur->data_len;
		cur->next = NULL;
		rte_pktmbuf_free_seg(cur);
		st->stats.mbufs_held--;
		cur = nx;
	}
	if (prev != NULL)
		prev->next = cur;
	else
		c->ooo_head = cur;
	if (cur != NULL && seq_lt(ooo_seq(cur), end))
		m->data_len = (uint16_t)(ooo_seq(cur) - seq);
	if (c->ooo_cnt >= st->conf.ooo_max_segs) {
		net_drop(st, m, NET_DROP_OOO_FULL);
		return;
	}
	m->pkt_len = m->data_len;
	m->hash.usr = seq;
	m->next = cur;
	if (prev != NULL)
		prev->next = m;
	else
		c->ooo_head = m;
	c->ooo_cnt++;
	c->ooo_bytes += m->data_len;
	st->stats.mbufs_held++;
	st->stats.tcp_ooo_queued++;
}

/* Move queued segments that became in-order to the receive queue. */
static bool ooo_pull(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	bool moved = false;

	while (c->ooo_head != NULL &&
	       seq_leq(ooo_seq(c->ooo_head), c->rcv_nxt)) {
		struct rte_mbuf *h = c->ooo_head;
		uint32_t s = ooo_seq(h), end = s + h->data_len;

		c->ooo_head = h->next;
		h->next = NULL;
		c->ooo_cnt--;
		c->ooo_bytes -= h->data_len;
		st->stats.mbufs_held--;
		if (seq_leq(end, c->rcv_nxt)) {
			rte_pktmbuf_free_seg(h);
			continue;
		}
		h->data_off = (uint16_t)(h->data_off + (c->rcv_nxt - s));
		h->data_len = (uint16_t)(end - c->rcv_nxt);
		h->pkt_len = h->data_len;
		rcvq_append(c, h);
		c->rcv_nxt = end;
		moved = true;
	}
	return moved;
}

static void sndq_consume(struct tcp_conn *c, uint32_t n)
{
	struct net_stack *st = c->st;

	c->snd_bytes -= n;
	c->snd_buf_seq += n;
	while (n > 0 && c->sndq_head != NULL) {
		struct rte_mbuf *h = c->sndq_head;
		uint32_t avail = h->data_len - c->snd_head_off;

		if (n < avail) {
			c->snd_head_off += n;
			return;
		}
		n -= avail;
		c->snd_head_off = 0;
		if (c->snd_cur == h)
			c->snd_cur = NULL;
		c->sndq_head = h->next;
		if (c->sndq_head == NULL)
			c->sndq_tail = NULL;
		h->next = NULL;
		rte_pktmbuf_free_seg(h);
		st->stats.mbufs_held--;
	}
	/* A fully acked tail keeps its tailroom for later writes only when
	 * it is still queued; an empty queue starts fresh. */
}

/* ---- options --------------------------------------------------------- */

int tcp_parse_opts(const struct rte_tcp_hdr *th, struct tcp_opts *o)
{
	const uint8_t *p = (const uint8_t *)(th + 1);
	uint32_t n = (uint32_t)(th->data_off >> 4) * 4 - sizeof(*th);
	uint32_t i = 0;

	memset(o, 0, sizeof(*o));
	while (i < n) {
		uint8_t kind = p[i], olen;

		if (kind == TCP_OPT_EOL)
			break;
		if (kind == TCP_OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		olen = p[i + 1];
		if (olen < 2 || i + olen > n)
			return -1;
		switch (kind) {
		case TCP_OPT_MSS:
			if (olen == 4) {
				o->has_mss = true;
				o->mss = (uint16_t)((p[i + 2] << 8) | p[i + 3]);
			}
			break;
		case TCP_OPT_WS:
			if (olen == 3) {
				o->has_ws = true;
				/* RFC 7323 2.3: shift counts above 14 mean 14
				 */
				o->wscale = RTE_MIN(p[i + 2], (uint8_t)14);
			}
			break;
		case TCP_OPT_TS:
			if (olen == 10) {
				o->has_ts = true;
				memcpy(&o->tsval, &p[i + 2], 4);
				memcpy(&o->tsecr, &p[i + 6], 4);
				o->tsval = rte_be_to_cpu_32(o->tsval);
				o->tsecr = rte_be_to_cpu_32(o->tsecr);
			}
			break;
		default:
			break;
		}
		i += olen;
	}
	return 0;
}

/* ---- small pieces ---------------------------------------------------- */

/* RFC 5961 7: challenge ACKs, at most TCP_CHACK_PER_SEC per second per
 * core, so they cannot be used as an amplifier or a side channel. */
static void tcp_challenge_ack(struct tcp_conn *c)
{
	struct net_stack *st = c->st;
	uint64_t sec = st->now_us / 1000000;

	if (sec != st->chack_sec) {
		st->chack_sec = sec;
		st->chack_cnt = 0;
	}
	if (st->chack_cnt >= TCP_CHACK_PER_SEC)
		return;
	st->chack_cnt++;
	st->stats.tcp_challenge_acks++;
	tcp_send_ack(c);
}

static void tcp_init_cc(struct tcp_conn *c)
{
	tcp_update_mss(c);
	c->cwnd = TCP_IW_SEGS * (uint32_t)c->mss;
	c->ssthresh = UINT32_MAX / 2;
}

static uint8_t tcp_pick_wscale(const struct net_stack *st)
{
	uint8_t s = 0;

	while (s < 14 && (st->conf.rcvbuf >> s) > 65535)
		s++;
	return s;
}

/* Hand a passive connection to the upper layer; false if it refused
 * (RST sent) or killed the connection from inside accepted(). */
static bool tcp_accept_cb(struct tcp_conn *c)
{
	void *ctx = NULL;

	c->flags |= TF_ACCEPTED;
	if (c->cb != NULL && c->cb->accepted != NULL)
		ctx = c->cb->accepted(c->listen_arg, c);
	if (c->flags & TF_DEAD)
		return false;
	if (ctx == NULL) {
		c->flags &= ~TF_ACCEPTED;
		tcp_send_rst_conn(c);
		tcb_release(c);
		return false;
	}
	c->ctx = ctx;
	c->st->stats.tcp_accepted++;
	return true;
}

static void tcp_writable_check(struct tcp_conn *c)
{
	uint32_t sb = c->st->conf.sndbuf;

	if (!(c->flags & TF_WANT_WR) || tcp_send_space(c) < RTE_MAX(sb / 4, 1u))
		return;
	c->flags &= ~TF_WANT_WR;
	if (c->cb != NULL && c->cb->writable != NULL)
		c->cb->writable(c->ctx, c);
}

/* ---- ACK processing (RFC 9293 3.10.7.4 "fifth", RFC 5681, 6582) ---- */

static void tcp_ack_new(struct tcp_conn *c, uint32_t ack, uint32_t tsecr)
{
	struct net_stack *st = c->st;
	uint32_t acked = ack - c->snd_una;

	if (seq_gt(ack, c->snd_buf_seq)) {
		uint32_t n = RTE_MIN(ack - c->snd_buf_seq, c->snd_bytes);

		sndq_consume(c, n);
	}
	c->snd_una = ack;
	if (seq_lt(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	if ((c->flags & TF_TS) && tsecr != 0 && seq_leq(tsecr, tcp_ts_now(c))) {
		/* RFC 7323 4.1: the echoed timestamp dates the segment
		 * being acknowledged even if it was retransmitted, so
		 * Karn's ambiguity does not arise (1 ms resolution). */
		c->flags &= ~TF_RTT;
		tcp_rtt_sample(c, (tcp_ts_now(c) - tsecr) * 1000u);
	} else if ((c->flags & TF_RTT) && seq_gt(ack, c->rtt_seq)) {
		c->flags &= ~TF_RTT;
		tcp_rtt_sample(c, (uint32_t)RTE_MIN(st->now_us - c->rtt_ts,
						    (uint64_t)UINT32_MAX));
	}
	c->retries = 0;
	if (c->flags & TF_RECOVERY) {
		if (seq_geq(ack, c->recover)) {
			/* RFC 6582 3.2 step 3: full ACK, deflate. */
			c->cwnd = RTE_MIN(c->ssthresh,
					  (c->snd_max - c->snd_una) + c->mss);
			c->flags &= ~TF_RECOVERY;
			c->dupacks = 0;
		} else {
			/* Partial ACK: retransmit the next hole, deflate by
			 * the amount acked, add back one SMSS if it acked at
			 * least one; reset the timer (slow-but-steady). */
			tcp_retransmit_una(c);
			c->cwnd = (c->cwnd > acked ? c->cwnd - acked : 0) +
				  (acked >= c->mss ? c->mss : 0);
			c->cwnd = RTE_MAX(c->cwnd, (uint32_t)c->mss);
			tcp_timer_set(c, TT_RTO, st->now_us + tcp_cur_rto(c));
			return;
		}
	} else {
		c->dupacks = 0;
		if (c->cwnd < c->ssthresh) /* RFC 5681 3.1 slow start */
			c->cwnd += RTE_MIN(acked, (uint32_t)c->mss);
		else /* congestion avoidance */
			c->cwnd += RTE_MAX(1u,
					   (uint32_t)c->mss * c->mss / c->cwnd);
		c->cwnd = RTE_MIN(c->cwnd, 1u << 30);
	}
	/* RFC 6298 5.2 / 5.3 */
	if (c->snd_una == c->snd_max)
		tcp_timer_stop(c, TT_RTO);
	else
		tcp_timer_set(c, TT_RTO, st->now_us + tcp_cur_rto(c));
}

static void tcp_dupack(struct tcp_conn *c)
{
	c->dupacks++;
	if (c->dupacks == 3 && !(c->flags & TF_RECOVERY)) {
		/* RFC 6582 3.2 step 2: only if the ACK covers recover, so
		 * a loss already being repaired does not halve twice. */
		if (!seq_geq(c->snd_una, c->recover))
			return;
		uint32_t flight = c->snd_max - c->snd_una;

		c->recover = c->snd_max;
		c->ssthresh = RTE_MAX(flight / 2, 2u * c->mss);
		c->st->stats.tcp_fast_retransmits++;
		tcp_retransmit_una(c);
		c->cwnd = c->ssthresh + 3u * c->mss;
		c->flags |= TF_RECOVERY;
	} else if (c->dupacks > 3 && (c->flags & TF_RECOVERY)) {
		c->cwnd += c->mss; /* step 4: inflate */
	} else if (c->dupacks < 3 && !(c->flags & TF_RECOVERY)) {
		tcp_limited_transmit(c);
	}
}

/* The ACK of our SYN-ACK arrived; returns the TSecr tcp_ack_new() may
 * take an RTT sample from (0: none).
 *
 * With one SYN-ACK sent, any sample is exact. After a retransmission
 * (Karn's rule cleared TF_RTT) a timestamp echoing a SYN-ACK sent at or
 * after the latest timeout retransmission (rtt_ts; a repeated SYN's
 * SYN-ACK re-arms the timer, so that one is at least an RTO after every
 * earlier SYN-ACK) is exact too (RFC 7323 4.1). An older one dates a
 * SYN-ACK that timed out, whose ACK may have been lost: the peer then
 * retransmitted its data on its own back-off, and the time since our
 * first SYN-ACK measures that back-off, not the path. As the first sample (RTO = 3 x R, RFC 6298 2.2) it made
 * the RTO 10 s on a sub-millisecond path in stack2_seq2000_fault, so
 * that an echo lost twice came back after the client's 20 s time-out.
 * Such an ACK gives no sample (RFC 6298 3) and the RTO starts at 3 s
 * (5.7). */
static uint32_t tcp_synack_acked(struct tcp_conn *c, const struct tcp_seg *s)
{
	uint32_t tsecr = s->o.has_ts ? s->o.tsecr : 0;
	uint32_t latest;

	if (c->flags & TF_RTT)
		return tsecr;
	latest = (uint32_t)(c->rtt_ts / 1000) + c->ts_off; /* as tcp_ts_now */
	if ((c->flags & TF_TS) && tsecr != 0 && seq_geq(tsecr, latest))
		return tsecr;
	tcp_rto_syn_fallback(c);
	return 0;
}

/* ---- SYN_SENT (RFC 9293 3.10.7.3) ----------------------------------- */

static void tcp_syn_sent(struct tcp_conn *c, struct tcp_seg *s)
{
	struct net_stack *st = c->st;
	bool ack = s->flags & RTE_TCP_ACK_FLAG;

	if (ack && (seq_leq(s->ack, c->iss) || seq_gt(s->ack, c->snd_max))) {
		tcp_emit_rst_for(st, &c->key, s->seq, s->ack, s->flags, s->len);
		return;
	}
	if (s->flags & RTE_TCP_RST_FLAG) {
		if (ack)
			tcp_finish(c, ECONNREFUSED);
		return;
	}
	if (!(s->flags & RTE_TCP_SYN_FLAG))
		return;
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->rcv_adv = c->rcv_nxt + RTE_MIN(st->conf.rcvbuf, 65535u);
	c->last_ack_sent = c->rcv_nxt;
	if (s->o.has_mss)
		c->peer_mss = RTE_MAX(s->o.mss, (uint16_t)64);
	if (s->o.has_ws) {
		c->snd_wscale = s->o.wscale;
	} else {
		c->flags &= ~TF_WS;
		c->snd_wscale = c->rcv_wscale = 0;
	}
	if (s->o.has_ts)
		c->ts_recent = s->o.tsval;
	else
		c->flags &= ~TF_TS;
	tcp_init_cc(c);
	c->snd_wnd = s->wnd; /* RFC 7323 2.2: never scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	c->retries = 0;
	if (!ack) {
		/* Simultaneous open: SYN_RCVD, SYN-ACK with our ISS. */
		tcb_set_state(c, TCP_SYN_RCVD);
		tcp_send_syn(c);
		return;
	}
	if ((c->flags & TF_RTT) && seq_gt(s->ack, c->rtt_seq)) {
		c->flags &= ~TF_RTT;
		tcp_rtt_sample(c, (uint32_t)(st->now_us - c->rtt_ts));
	}
	c->snd_una = s->ack;
	tcp_timer_stop(c, TT_RTO);
	tcb_set_state(c, TCP_ESTABLISHED);
	st->stats.tcp_connected++;
	c->flags |= TF_ACKNOW;
	if (c->cb != NULL && c->cb->connected != NULL)
		c->cb->connected(c->ctx, c);
	if (c->flags & TF_DEAD)
		return;
	if (s->len > 0 || (s->flags & RTE_TCP_FIN_FLAG)) {
		/* Data or FIN on the SYN-ACK: continue as ESTABLISHED. */
		s->seq++;
		s->flags &= (uint8_t)~RTE_TCP_SYN_FLAG;
		tcp_segment(c, s);
		return;
	}
	tcp_output(c);
}

/* ---- synchronized states (RFC 9293 3.10.7.4) ------------------------- */

static void tcp_segment(struct tcp_conn *c, struct tcp_seg *s)
{
	struct net_stack *st = c->st;
	uint32_t seglen, rwnd, data_end;
	uint32_t tsecr = s->o.has_ts ? s->o.tsecr : 0;
	bool acceptable, readable = false, fin_now = false;

	if (c->state == TCP_SYN_SENT) {
		tcp_syn_sent(c, s);
		return;
	}
	/* Our SYN-ACK was lost: the peer repeats its SYN. */
	if (c->state == TCP_SYN_RCVD &&
	    (s->flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG |
			 RTE_TCP_RST_FLAG)) == RTE_TCP_SYN_FLAG &&
	    s->seq == c->irs) {
		tcp_send_syn(c);
		return;
	}
	/* RFC 7323 5.3 PAWS. */
	if ((c->flags & TF_TS) && s->o.has_ts &&
	    !(s->flags & RTE_TCP_RST_FLAG) &&
	    seq_lt(s->o.tsval, c->ts_recent)) {
		st->stats.drops[NET_DROP_TCP_SEQ]++;
		c->flags |= TF_ACKNOW;
		goto out;
	}

	/* first: sequence number acceptability */
	seglen = s->len + ((s->flags & RTE_TCP_SYN_FLAG) ? 1 : 0) +
		 ((s->flags & RTE_TCP_FIN_FLAG) ? 1 : 0);
	rwnd = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	if (seglen == 0)
		acceptable = rwnd == 0 ? s->seq == c->rcv_nxt
				       : (seq_geq(s->seq, c->rcv_nxt) &&
					  seq_lt(s->seq, c->rcv_nxt + rwnd));
	else
		acceptable = rwnd != 0 &&
			     ((seq_geq(s->seq, c->rcv_nxt) &&
			       seq_lt(s->seq, c->rcv_nxt + rwnd)) ||
			      (seq_geq(s->seq + seglen - 1, c->rcv_nxt) &&
			       seq_lt(s->seq + seglen - 1, c->rcv_nxt + rwnd)));
	if (!acceptable) {
		st->stats.drops[NET_DROP_TCP_SEQ]++;
		if (!(s->flags & RTE_TCP_RST_FLAG))
			c->flags |= TF_ACKNOW;
		goto out;
	}
	/* FIN_WAIT_2 is a half-close the upper layer still reads from:
	 * the linger timer only reaps a peer that has gone silent. */
	if (c->state == TCP_FIN_WAIT_2)
		tcp_timer_set(c, TT_LINGER, st->now_us + TCP_FIN_WAIT_2_US);
	/* RFC 7323 4.3: remember the peer's newest timestamp. */
	if ((c->flags & TF_TS) && s->o.has_ts &&
	    seq_leq(s->seq, c->last_ack_sent) &&
	    seq_geq(s->o.tsval, c->ts_recent))
		c->ts_recent = s->o.tsval;

	/* Trim to the window: old bytes in front, excess at the tail. */
	if (seq_lt(s->seq, c->rcv_nxt)) {
		uint32_t skip = c->rcv_nxt - s->seq;

		if (s->flags & RTE_TCP_SYN_FLAG) {
			s->flags &= (uint8_t)~RTE_TCP_SYN_FLAG;
			skip--;
			s->seq++;
		}
		if (skip >= s->len) {
			if (skip > s->len)
				s->flags &= (uint8_t)~RTE_TCP_FIN_FLAG;
			if (s->m != NULL)
				rte_pktmbuf_free(s->m);
			s->m = NULL;
			s->len = 0;
		} else if (skip > 0) {
			s->m = pkt_adj(s->m, skip);
			s->len -= skip;
		}
		s->seq = c->rcv_nxt;
		if (s->len == 0 && !(s->flags & RTE_TCP_FIN_FLAG))
			c->flags |= TF_ACKNOW; /* duplicate: re-ACK */
	}
	if (s->len > 0 && seq_gt(s->seq + s->len, c->rcv_nxt + rwnd)) {
		uint32_t keep = c->rcv_nxt + rwnd - s->seq;

		st->stats.drops[NET_DROP_RCVBUF_FULL]++;
		s->flags &= (uint8_t)~RTE_TCP_FIN_FLAG;
		if (keep == 0) {
			rte_pktmbuf_free(s->m);
			s->m = NULL;
		} else {
			net_mbuf_trim(s->m, keep);
		}
		s->len = keep;
		c->flags |= TF_ACKNOW;
	}

	/* second: RST (RFC 5961 3.2) */
	if (s->flags & RTE_TCP_RST_FLAG) {
		if (s->seq != c->rcv_nxt) {
			tcp_challenge_ack(c);
			goto out;
		}
		if (c->state == TCP_SYN_RCVD && (c->flags & TF_PASSIVE))
			tcb_release(c); /* back to LISTEN: nothing to tell */
		else if (c->state == TCP_SYN_RCVD)
			tcp_finish(c, ECONNREFUSED);
		else
			tcp_finish(c, ECONNRESET);
		goto out;
	}
	/* fourth: SYN in a synchronized state (RFC 5961 4.2) */
	if (s->flags & RTE_TCP_SYN_FLAG) {
		tcp_challenge_ack(c);
		goto out;
	}
	/* fifth: ACK */
	if (!(s->flags & RTE_TCP_ACK_FLAG))
		goto out;
	if (c->state == TCP_SYN_RCVD) {
		if (!(seq_gt(s->ack, c->snd_una) &&
		      seq_leq(s->ack, c->snd_max))) {
			tcp_emit_rst_for(st, &c->key, s->seq, s->ack, s->flags,
					 s->len);
			goto out;
		}
		tsecr = tcp_synack_acked(c, s);
		c->snd_wnd = s->wnd << c->snd_wscale;
		c->max_snd_wnd = RTE_MAX(c->max_snd_wnd, c->snd_wnd);
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		tcb_set_state(c, TCP_ESTABLISHED);
		if (c->flags & TF_PASSIVE) {
			if (!tcp_accept_cb(c))
				goto out;
		} else {
			st->stats.tcp_connected++;
			if (c->cb != NULL && c->cb->connected != NULL)
				c->cb->connected(c->ctx, c);
			if (c->flags & TF_DEAD)
				goto out;
		}
		if ((c->flags & TF_FIN_QUEUED) && c->state == TCP_ESTABLISHED)
			tcb_set_state(c, TCP_FIN_WAIT_1);
	}
	if (seq_gt(s->ack, c->snd_max)) {
		/* RFC 9293: ACK for something not yet sent */
		st->stats.drops[NET_DROP_TCP_SEQ]++;
		c->flags |= TF_ACKNOW;
		goto out;
	}
	if (seq_lt(s->ack, c->snd_una - c->max_snd_wnd)) {
		/* RFC 5961 5.2: too old to be a duplicate */
		tcp_challenge_ack(c);
		goto out;
	}
	if (seq_gt(s->ack, c->snd_una)) {
		tcp_ack_new(c, s->ack, tsecr);
	} else if (s->ack == c->snd_una && s->len == 0 &&
		   !(s->flags & RTE_TCP_FIN_FLAG) &&
		   (s->wnd << c->snd_wscale) == c->snd_wnd &&
		   c->snd_una != c->snd_max && c->snd_wnd != 0 &&
		   !(c->flags & TF_PERSIST)) {
		tcp_dupack(c); /* RFC 5681 2 "duplicate acknowledgment" */
	}
	/* RFC 9293 3.10.7.4: window update from newer segments only. */
	if (seq_lt(c->snd_wl1, s->seq) ||
	    (c->snd_wl1 == s->seq && seq_leq(c->snd_wl2, s->ack))) {
		c->snd_wnd = s->wnd << c->snd_wscale;
		c->max_snd_wnd = RTE_MAX(c->max_snd_wnd, c->snd_wnd);
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
	}
	data_end = tcp_snd_data_end(c);
	if ((c->flags & TF_FIN_QUEUED) && seq_gt(c->snd_una, data_end)) {
		/* our FIN is acknowledged */
		switch (c->state) {
		case TCP_FIN_WAIT_1:
			tcb_set_state(c, TCP_FIN_WAIT_2);
			tcp_timer_set(c, TT_LINGER,
				      st->now_us + TCP_FIN_WAIT_2_US);
			break;
		case TCP_CLOSING:
			tcp_enter_timewait(c);
			goto out;
		case TCP_LAST_ACK:
			tcp_finish(c, 0);
			goto out;
		default:
			break;
		}
	}
	tcp_writable_check(c);
	if (c->flags & TF_DEAD)
		goto out;

	/* seventh: segment text */
	if (s->len > 0) {
		if ((c->state == TCP_ESTABLISHED ||
		     c->state == TCP_FIN_WAIT_1 ||
		     c->state == TCP_FIN_WAIT_2) &&
		    !(c->flags & TF_PEER_FIN)) {
			if (s->seq == c->rcv_nxt) {
				bool hole = c->ooo_head != NULL;

				rcvq_append(c, s->m);
				s->m = NULL;
				c->rcv_nxt += s->len;
				if (ooo_pull(c) || hole ||
				    st->conf.delack_ms == 0 ||
				    ++c->unacked_segs >= 2)
					c->flags |= TF_ACKNOW;
				else
					c->flags |= TF_DELACK;
				readable = true;
			} else {
				ooo_insert(c, s->m, s->seq, s->len);
				s->m = NULL;
				c->flags |= TF_ACKNOW; /* RFC 5681 4.2 */
			}
		}
	}
	/* eighth: FIN */
	if (s->flags & RTE_TCP_FIN_FLAG) {
		uint32_t fseq = s->seq + s->len;

		if (fseq == c->rcv_nxt && !(c->flags & TF_PEER_FIN))
			fin_now = true;
		else if (seq_gt(fseq, c->rcv_nxt)) {
			c->flags |= TF_OOO_FIN;
			c->ooo_fin_seq = fseq;
			c->flags |= TF_ACKNOW;
		}
	}
	if (!fin_now && (c->flags & TF_OOO_FIN) &&
	    c->rcv_nxt == c->ooo_fin_seq && !(c->flags & TF_PEER_FIN))
		fin_now = true;
	if (fin_now) {
		c->flags &= ~TF_OOO_FIN;
		c->flags |= TF_PEER_FIN | TF_ACKNOW;
		c->rcv_nxt++;
		switch (c->state) {
		case TCP_ESTABLISHED:
			tcb_set_state(c, TCP_CLOSE_WAIT);
			break;
		case TCP_FIN_WAIT_1:
			tcb_set_state(c, TCP_CLOSING);
			break;
		default:
			break;
		}
	}
	if (readable && c->cb != NULL && c->cb->readable != NULL) {
		c->cb->readable(c->ctx, c);
		if (c->flags & TF_DEAD)
			goto out;
	}
	if (fin_now && c->cb != NULL && c->cb->peer_closed != NULL) {
		c->cb->peer_closed(c->ctx, c);
		if (c->flags & TF_DEAD)
			goto out;
	}
	tcp_output(c);
	if (fin_now && c->state == TCP_FIN_WAIT_2)
		tcp_enter_timewait(c);
	return;
out:
	if (!(c->flags & TF_DEAD))
		tcp_output(c);
}

/* ---- TIME_WAIT and LISTEN ------------------------------------------- */

static void tw_send_ack(struct net_stack *st, const struct tw_ent *e)
{
	uint8_t o[12];
	uint16_t wnd =
		(uint16_t)RTE_MIN(st->conf.rcvbuf >> e->rcv_wscale, 65535u);

	if (e->ts) {
		uint32_t v = rte_cpu_to_be_32((uint32_t)(st->now_us / 1000) +
					      e->ts_off);
		uint32_t r = rte_cpu_to_be_32(e->ts_recent);

		o[0] = TCP_OPT_NOP;
		o[1] = TCP_OPT_NOP;
		o[2] = TCP_OPT_TS;
		o[3] = 10;
		memcpy(&o[4], &v, 4);
		memcpy(&o[8], &r, 4);
	}
	tcp_emit(st, &e->key, e->snd_nxt, e->rcv_nxt, RTE_TCP_ACK_FLAG, wnd,
		 e->ts ? o : NULL, e->ts ? 12 : 0);
}

static void listen_input(struct net_stack *st, struct tcp_listener *l,
			 const struct tcp_key *k, struct tcp_seg *s);

static void tw_input(struct net_stack *st, struct tw_ent *e,
		     const struct tcp_key *k, struct tcp_seg *s)
{
	struct tcp_listener *l;

	/* RFC 1337: ignore RST in TIME_WAIT (no assassination). */
	if (s->flags & RTE_TCP_RST_FLAG)
		return;
	/* RFC 9293 3.10.7.4 / RFC 6191: a new SYN above the old sequence
	 * space may reopen the 4-tuple. */
	if ((s->flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
		    RTE_TCP_SYN_FLAG &&
	    seq_gt(s->seq, e->rcv_nxt) &&
	    (l = tcp_listener_match(st, k)) != NULL) {
		tw_remove(st, e);
		listen_input(st, l, k, s);
		return;
	}
	if (s->flags & RTE_TCP_FIN_FLAG) {
		tw_send_ack(st, e);
		tw_restart(st, e);
		return;
	}
	if (s->len > 0 || (s->flags & RTE_TCP_SYN_FLAG))
		tw_send_ack(st, e);
}

static void tcp_passive_init(struct tcp_conn *c, struct tcp_listener *l,
			     const struct tcp_seg *s)
{
	c->flags |= TF_PASSIVE;
	c->cb = l->cb;
	c->listen_arg = l->arg;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	c->retries = 0;
}

/* SYN cookie handshake completion: the ACK acknowledges our cookie. */
static void cookie_accept(struct net_stack *st, struct tcp_listener *l,
			  const struct tcp_key *k, struct tcp_seg *s,
			  uint16_t mss)
{
	struct tcp_conn *c = tcb_alloc(st, k);

	if (c == NULL)
		return;
	tcp_passive_init(c, l, s);
	c->irs = s->seq - 1;
	c->rcv_nxt = s->seq;
	c->rcv_adv = c->rcv_nxt + RTE_MIN(st->conf.rcvbuf, 65535u);
	c->last_ack_sent = c->rcv_nxt;
	c->iss = s->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = s->ack;
	c->snd_buf_seq = s->ack;
	c->recover = c->iss;
	c->peer_mss = mss;
	c->snd_wnd = s->wnd;
	c->max_snd_wnd = s->wnd;
	tcp_init_cc(c);
	tcb_set_state(c, TCP_ESTABLISHED);
	if (!tcp_accept_cb(c))
		return;
	tcp_segment(c, s); /* data / FIN riding on the ACK */
}

static void listen_input(struct net_stack *st, struct tcp_listener *l,
			 const struct tcp_key *k, struct tcp_seg *s)
{
	struct tcp_conn *c;

	if (s->flags & RTE_TCP_RST_FLAG)
		return;
	if (s->flags & RTE_TCP_ACK_FLAG) {
		if (!(s->flags & RTE_TCP_SYN_FLAG)) {
			uint16_t mss =
				syncookie_check(st, k, s->seq - 1, s->ack - 1);

			if (mss != 0) {
				st->stats.syncookies_ok++;
				cookie_accept(st, l, k, s, mss);
				return;
			}
			st->stats.syncookies_bad++;
		}
		st->stats.drops[NET_DROP_TCP_NOCONN]++;
		tcp_emit_rst_for(st, k, s->seq, s->ack, s->flags, s->len);
		return;
	}
	if (!(s->flags & RTE_TCP_SYN_FLAG) || (s->flags & RTE_TCP_FIN_FLAG)) {
		st->stats.drops[NET_DROP_TCP_HDR]++;
		return;
	}
	if (st->stats.syn_rcvd >= st->conf.syn_backlog) {
		/* RFC 4987 3.6: stateless SYN-ACK carrying a cookie. */
		uint16_t mss = s->o.has_mss ? s->o.mss : TCP_DEFAULT_MSS;
		uint8_t o[4];
		uint32_t cookie;

		mss = RTE_MIN(mss, tcp_mss_max_for(st, k));
		cookie = syncookie_make(st, k, s->seq, &mss);
		tcp_build_syn_opts(st, o, mss, -1, false, 0, 0);
		tcp_emit(st, k, cookie, s->seq + 1,
			 RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG,
			 (uint16_t)RTE_MIN(st->conf.rcvbuf, 65535u), o, 4);
		st->stats.syncookies_sent++;
		return;
	}
	c = tcb_alloc(st, k);
	if (c == NULL)
		return;
	tcp_passive_init(c, l, s);
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	c->iss = tcp_isn(st, k);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->recover = c->iss;
	if (s->o.has_mss)
		c->peer_mss = RTE_MAX(s->o.mss, (uint16_t)64);
	if (s->o.has_ws) {
		c->flags |= TF_WS;
		c->snd_wscale = s->o.wscale;
		c->rcv_wscale = tcp_pick_wscale(st);
	}
	if (s->o.has_ts) {
		c->flags |= TF_TS;
		c->ts_recent = s->o.tsval;
		c->ts_off = tcp_ts_offset(st, k);
	}
	c->snd_wnd = s->wnd;
	c->max_snd_wnd = s->wnd;
	tcp_init_cc(c);
	tcb_set_state(c, TCP_SYN_RCVD);
	tcp_send_syn(c);
}

/* ---- entry ----------------------------------------------------------- */

/* RFC 9293 3.10.7.1 / RFC 1122 4.2.3.10: never talk to broadcast or
 * multicast sources; over IPv6 neither to the unspecified, loopback or
 * IPv4-mapped source (RFC 4291 2.5.2, 2.5.3, RFC 4038 4.2). */
static bool tcp_src_ok(const struct net_l3 *l3)
{
	static const struct net_addr loop = {
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
	uint32_t src;

	if (l3->v6)
		return !ip6_is_multicast(&l3->src) &&
		       !ip6_is_unspecified(&l3->src) &&
		       !net_addr_is_v4(&l3->src) &&
		       memcmp(&l3->src, &loop, sizeof(loop)) != 0;
	src = rte_be_to_cpu_32(net_addr_v4(&l3->src));
	return !(src == 0 || src == UINT32_MAX || (src >> 28) == 0xe);
}

void tcp_input(struct net_stack *st, struct rte_mbuf *m,
	       const struct net_l3 *l3, uint16_t l4off, uint16_t l4len)
{
	struct rte_tcp_hdr *th;
	struct tcp_seg s;
	struct tcp_key k;
	struct tcp_conn *c;
	struct tw_ent *tw;
	struct tcp_listener *l;
	uint32_t hl;
	uint64_t l4f;

	if (l4len < sizeof(*th) ||
	    rte_pktmbuf_data_len(m) < (uint32_t)l4off + sizeof(*th)) {
		net_drop(st, m, NET_DROP_SHORT);
		return;
	}
	th = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, l4off);
	hl = (uint32_t)(th->data_off >> 4) * 4;
	if (hl < sizeof(*th) || hl > l4len ||
	    rte_pktmbuf_data_len(m) < l4off + hl) {
		net_drop(st, m, NET_DROP_TCP_HDR);
		return;
	}
	l4f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (l4f == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
		net_drop(st, m, NET_DROP_TCP_CSUM);
		return;
	}
	if (l4f == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN) {
		int ok = net_l4_cksum_ok(m, l4off, l4len, l3->phdr_sum);

		if (ok <= 0) {
			net_drop(st, m,
				 ok < 0 ? NET_DROP_SHORT : NET_DROP_TCP_CSUM);
			return;
		}
	}
	if (!tcp_src_ok(l3)) {
		net_drop(st, m, l3->v6 ? NET_DROP_IP6_SRC : NET_DROP_TCP_HDR);
		return;
	}
	if (tcp_parse_opts(th, &s.o) != 0) {
		net_drop(st, m, NET_DROP_TCP_HDR);
		return;
	}
	s.seq = rte_be_to_cpu_32(th->sent_seq);
	s.ack = rte_be_to_cpu_32(th->recv_ack);
	s.flags = th->tcp_flags & 0x3f;
	s.wnd = rte_be_to_cpu_16(th->rx_win);
	s.len = l4len - hl;
	k.raddr = l3->src;
	k.laddr = l3->dst;
	k.rport = rte_be_to_cpu_16(th->src_port);
	k.lport = rte_be_to_cpu_16(th->dst_port);
	st->stats.tcp_seg_in++;
	if (s.flags & RTE_TCP_RST_FLAG)
		st->stats.tcp_rst_in++;
	if (s.len > 0) {
		s.m = pkt_adj(m, l4off + hl);
	} else {
		rte_pktmbuf_free(m);
		s.m = NULL;
	}
	/* From here on only s is used; th and l3's packet died with the
	 * headers. */

	c = tcb_lookup(st, &k);
	if (c != NULL && c->state != TCP_CLOSED)
		tcp_segment(c, &s);
	else if ((tw = tw_lookup(st, &k)) != NULL)
		tw_input(st, tw, &k, &s);
	else if (c == NULL && (l = tcp_listener_match(st, &k)) != NULL)
		listen_input(st, l, &k, &s);
	else {
		/* RFC 9293 3.10.7.1: CLOSED answers with RST. */
		st->stats.drops[NET_DROP_TCP_NOCONN]++;
		tcp_emit_rst_for(
			st, &k, s.seq, s.ack, s.flags,
			s.len + ((s.flags & RTE_TCP_SYN_FLAG) ? 1 : 0) +
				((s.flags & RTE_TCP_FIN_FLAG) ? 1 : 0));
	}
	if (s.m != NULL)
		rte_pktmbuf_free(s.m);
}

/* ---- ICMP hook ------------------------------------------------------- */

void tcp_icmp_frag_needed(struct net_stack *st, const struct tcp_key *k,
			  uint32_t seq, uint32_t mtu)
{
	struct tcp_conn *c = tcb_lookup(st, k);
	bool v6 = tcp_key_v6(k);
	uint32_t cur, nm;

	if (c == NULL || (c->flags & TF_DEAD) || c->state < TCP_SYN_SENT)
		return;
	/* RFC 5927 4.1: the quoted sequence number must be in flight. */
	if (!(seq_geq(seq, c->snd_una) && seq_lt(seq, c->snd_max)))
		return;
	if (v6) {
		/* RFC 8201 4: a reported MTU below 1280 still means 1280;
		 * 60 = IPv6 + TCP headers. */
		mtu = RTE_MAX(mtu, (uint32_t)IPV6_MIN_MTU);
		nm = RTE_MAX(mtu - 60, (uint32_t)TCP6_MIN_MSS);
	} else {
		if (mtu < 68)
			return;
		nm = RTE_MAX(mtu - 40, (uint32_t)TCP_MIN_MSS);
	}
	cur = c->pmtu_mss ? c->pmtu_mss
			  : RTE_MIN((uint32_t)c->peer_mss,
				    (uint32_t)tcp_mss_max_for(st, k));
	if (nm >= cur)
		return;
	c->pmtu_mss = (uint16_t)nm;
	tcp_update_mss(c);
	if (c->state >= TCP_ESTABLISHED && c->snd_una != c->snd_max) {
		/* RFC 1191 6.4: resend what was too big, smaller. */
		c->snd_nxt = c->snd_una;
		tcp_retransmit_una(c);
		tcp_output(c);
	}
}

/* ---- upper-layer receive --------------------------------------------- */

size_t tcp_recv_avail(const struct tcp_conn *c)
{
	return (c->flags & TF_DEAD) ? 0 : c->rcv_bytes;
}

size_t tcp_recv(struct tcp_conn *c, void *buf, size_t len)
{
	struct net_stack *st = c->st;
	uint8_t *p = buf;
	size_t n = 0;

	if (c->flags & TF_DEAD)
		return 0;
	while (n < len && c->rcvq_head != NULL) {
		struct rte_mbuf *h = c->rcvq_head;
		uint32_t take = (uint32_t)RTE_MIN((size_t)h->data_len, len - n);

		memcpy(p + n, rte_pktmbuf_mtod(h, uint8_t *), take);
		n += take;
		if (take == h->data_len) {
			c->rcvq_head = h->next;
			if (c->rcvq_head == NULL)
				c->rcvq_tail = NULL;
			h->next = NULL;
			rte_pktmbuf_free_seg(h);
			st->stats.mbufs_held--;
		} else {
			h->data_off = (uint16_t)(h->data_off + take);
			h->data_len = (uint16_t)(h->data_len - take);
		}
	}
	c->rcv_bytes -= (uint32_t)n;
	if (n > 0)
		tcp_window_update(c);
	return n;
}

struct rte_mbuf *tcp_recv_chain(struct tcp_conn *c, uint32_t max)
{
	struct net_stack *st = c->st;
	struct rte_mbuf *head = c->rcvq_head, *last = NULL, *m;
	uint32_t total = 0;
	uint16_t cnt = 0;

	if ((c->flags & TF_DEAD) || head == NULL || max == 0)
		return NULL;
	if (head->data_len > max) {
		/* First segment larger than asked: copy a piece out. */
		struct rte_mbuf *r = net_alloc(st);
		uint32_t take;

		if (r == NULL)
			return NULL;
		take = RTE_MIN(max, (uint32_t)rte_pktmbuf_tailroom(r));
		memcpy(rte_pktmbuf_mtod(r, uint8_t *),
		       rte_pktmbuf_mtod(head, uint8_t *), take);
		r->data_len = (uint16_t)take;
		r->pkt_len = take;
		head->data_off = (uint16_t)(head->data_off + take);
		head->data_len = (uint16_t)(head->data_len - take);
		c->rcv_bytes -= take;
		tcp_window_update(c);
		return r;
	}
	for (m = head;
	     m != NULL && total + m->data_len <= max && cnt < UINT16_MAX;
	     m = m->next) {
		total += m->data_len;
		cnt++;
		last = m;
	}
	c->rcvq_head = last->next;
	if (c->rcvq_head == NULL)
		c->rcvq_tail = NULL;
	last->next = NULL;
	for (m = head->next; m != NULL; m = m->next) {
		m->nb_segs = 1;
		m->pkt_len = m->data_len;
	}
	head->nb_segs = cnt;
	head->pkt_len = total;
	st->stats.mbufs_held -= cnt;
	c->rcv_bytes -= total;
	tcp_window_update(c);
	return head;
}
