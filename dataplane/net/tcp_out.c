/*
 * tcp_out.c - TCP output: segmentation of the send buffer, control
 * segments, retransmission of one segment, window probes, timer arming,
 * and the send side of the upper-layer API (tcp_send).
 *
 * Ownership: operates on TCBs of the stack's lcore only.
 *
 * Promises: the send buffer is a bounded chain of pool mbufs
 * (conf->sndbuf bytes); tcp_send() copies into it and returns short when
 * full, and writable() fires once a quarter of it is free again. A frame
 * is built by copying at most one MSS from the send buffer into a fresh
 * mbuf, so the send buffer stays intact for retransmission. No Nagle:
 * the SMTP engine writes whole replies (TCP_NODELAY semantics), but the
 * sender-side silly window rule of RFC 9293 3.8.6.2.1 is applied.
 */
#include <errno.h>
#include <string.h>

#include "net_priv.h"

uint32_t tcp_ts_now(const struct tcp_conn *c)
{
	return (uint32_t)(c->st->now_us / 1000) + c->ts_off;
}

uint32_t tcp_snd_data_end(const struct tcp_conn *c)
{
	return c->snd_buf_seq + c->snd_bytes;
}

/* Effective MSS: RFC 9293 3.7.1 (peer's MSS option, our MTU) minus the
 * timestamp option carried by every segment, lowered by RFC 1191 PMTU. */
void tcp_update_mss(struct tcp_conn *c)
{
	uint32_t m = RTE_MIN((uint32_t)c->peer_mss,
			     (uint32_t)tcp_mss_max_for(c->st, &c->key));

	if (c->pmtu_mss != 0)
		m = RTE_MIN(m, (uint32_t)c->pmtu_mss);
	if (c->flags & TF_TS)
		m -= 12;
	c->mss = (uint16_t)RTE_MAX(m, 64u);
}

/* The window we advertise: free receive buffer. RFC 9293 3.8.6.2.2
 * receiver SWS avoidance: the right edge moves only by at least
 * min(rcvbuf/2, MSS); RFC 7323 2.4: it never moves left. */
uint16_t tcp_rcv_wnd_field(struct tcp_conn *c, bool syn)
{
	uint32_t rcvbuf = c->st->conf.rcvbuf;
	uint32_t freeb = c->rcv_bytes < rcvbuf ? rcvbuf - c->rcv_bytes : 0;
	uint32_t edge = c->rcv_nxt + freeb, wnd, field;
	uint32_t sws = RTE_MIN(rcvbuf / 2, (uint32_t)c->st->mss_max);

	if (syn) {
		field = RTE_MIN(freeb, 65535u);
		c->rcv_adv = seq_max(c->rcv_adv, c->rcv_nxt + field);
		return (uint16_t)field;
	}
	uint32_t old = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv : c->rcv_nxt;

	if (seq_gt(edge, old) && edge - old < sws)
		edge = old; /* also keeps a closed window closed */
	if (seq_lt(edge, c->rcv_adv))
		edge = c->rcv_adv;
	wnd = edge - c->rcv_nxt;
	field = RTE_MIN(wnd >> c->rcv_wscale, 65535u);
	c->rcv_adv = seq_max(c->rcv_adv, c->rcv_nxt + (field << c->rcv_wscale));
	return (uint16_t)field;
}

uint8_t tcp_build_syn_opts(struct net_stack *st, uint8_t *o, uint16_t mss,
			   int wscale, bool ts, uint32_t tsval, uint32_t tsecr)
{
	uint8_t n = 0;

	RTE_SET_USED(st);
	o[n++] = TCP_OPT_MSS;
	o[n++] = 4;
	o[n++] = (uint8_t)(mss >> 8);
	o[n++] = (uint8_t)mss;
	if (wscale >= 0) {
		o[n++] = TCP_OPT_NOP;
		o[n++] = TCP_OPT_WS;
		o[n++] = 3;
		o[n++] = (uint8_t)wscale;
	}
	if (ts) {
		o[n++] = TCP_OPT_NOP;
		o[n++] = TCP_OPT_NOP;
		o[n++] = TCP_OPT_TS;
		o[n++] = 10;
		tsval = rte_cpu_to_be_32(tsval);
		tsecr = rte_cpu_to_be_32(tsecr);
		memcpy(&o[n], &tsval, 4);
		memcpy(&o[n + 4], &tsecr, 4);
		n += 8;
	}
	return n;
}

/* A frame for a segment of 4-tuple k: IPv4, or IPv6 with the flow label
 * of RFC 6437 3 (a keyed hash of the 4-tuple, stable for the flow).
 * Returns the TCP header or NULL (counted). */
static struct rte_tcp_hdr *tcp_frame(struct net_stack *st,
				     struct rte_mbuf **mp,
				     const struct tcp_key *k, uint16_t l4len)
{
	if (!tcp_key_v6(k))
		return ipv4_alloc(st, mp, net_addr_v4(&k->raddr), IPPROTO_TCP,
				  l4len);
	return ipv6_alloc(st, mp, &k->laddr, &k->raddr, IPPROTO_TCP, l4len,
			  tcp_key_hash(st, k) & 0xfffff, 64);
}

static void tcp_frame_output(struct net_stack *st, struct rte_mbuf *m,
			     const struct tcp_key *k)
{
	if (tcp_key_v6(k))
		ipv6_output(st, m);
	else
		ipv4_output(st, m);
}

/* Copy len bytes of the send buffer starting at sequence seq. A cursor
 * remembers where the previous copy ended, so sending a large buffer
 * front to back does not rescan the chain for every segment. */
static void sndq_copy(struct tcp_conn *c, uint32_t seq, uint8_t *dst,
		      uint32_t len)
{
	struct rte_mbuf *m = c->sndq_head;
	uint32_t base = c->snd_buf_seq - c->snd_head_off, off;

	if (c->snd_cur != NULL && seq_geq(seq, c->snd_cur_seq)) {
		m = c->snd_cur;
		base = c->snd_cur_seq;
	}
	off = seq - base;
	while (m != NULL && off >= m->data_len) {
		off -= m->data_len;
		base += m->data_len;
		m = m->next;
	}
	while (len > 0 && m != NULL) {
		uint32_t n = RTE_MIN(len, (uint32_t)m->data_len - off);

		memcpy(dst, rte_pktmbuf_mtod_offset(m, const uint8_t *, off),
		       n);
		dst += n;
		len -= n;
		off = 0;
		c->snd_cur = m;
		c->snd_cur_seq = base;
		base += m->data_len;
		m = m->next;
	}
}

/* Build and queue one segment of this connection. */
static void tcp_xmit(struct tcp_conn *c, uint32_t seq, uint32_t len,
		     uint8_t flags)
{
	struct net_stack *st = c->st;
	uint8_t opts[TCP_OPT_SPACE];
	uint8_t optlen = 0;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m;
	bool consumes =
		len > 0 || (flags & (RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG));

	if (flags & RTE_TCP_SYN_FLAG) {
		optlen = tcp_build_syn_opts(
			st, opts, tcp_mss_max_for(st, &c->key),
			(c->flags & TF_WS) ? c->rcv_wscale : -1,
			(c->flags & TF_TS) != 0, tcp_ts_now(c),
			(flags & RTE_TCP_ACK_FLAG) ? c->ts_recent : 0);
	} else if (c->flags & TF_TS) {
		uint32_t v = rte_cpu_to_be_32(tcp_ts_now(c));
		uint32_t e = rte_cpu_to_be_32(c->ts_recent);

		opts[0] = TCP_OPT_NOP;
		opts[1] = TCP_OPT_NOP;
		opts[2] = TCP_OPT_TS;
		opts[3] = 10;
		memcpy(&opts[4], &v, 4);
		memcpy(&opts[8], &e, 4);
		optlen = 12;
	}
	th = tcp_frame(st, &m, &c->key,
		       (uint16_t)(sizeof(*th) + optlen + len));
	if (th == NULL)
		return;
	th->src_port = rte_cpu_to_be_16(c->key.lport);
	th->dst_port = rte_cpu_to_be_16(c->key.rport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack =
		(flags & RTE_TCP_ACK_FLAG) ? rte_cpu_to_be_32(c->rcv_nxt) : 0;
	th->data_off = (uint8_t)(((sizeof(*th) + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(
		tcp_rcv_wnd_field(c, (flags & RTE_TCP_SYN_FLAG) != 0));
	th->cksum = 0;
	th->tcp_urp = 0;
	memcpy(th + 1, opts, optlen);
	if (len > 0)
		sndq_copy(c, seq, (uint8_t *)(th + 1) + optlen, len);
	st->stats.tcp_seg_out++;
	if (flags & RTE_TCP_ACK_FLAG) {
		c->last_ack_sent = c->rcv_nxt;
		c->flags &= ~(TF_ACKNOW | TF_DELACK);
		c->unacked_segs = 0;
		if (c->timer[TT_DELACK])
			tcp_timer_stop(c, TT_DELACK);
	}
	if (consumes) {
		if (seq_lt(seq, c->snd_max)) {
			/* Karn: never time a retransmitted segment. */
			st->stats.tcp_retransmits++;
			c->flags &= ~TF_RTT;
		} else if (!(c->flags & TF_RTT)) {
			c->flags |= TF_RTT;
			c->rtt_seq = seq;
			c->rtt_ts = st->now_us;
		}
	}
	tcp_frame_output(st, m, &c->key);
}

void tcp_send_syn(struct tcp_conn *c)
{
	uint8_t flags = RTE_TCP_SYN_FLAG;

	if (c->state == TCP_SYN_RCVD)
		flags |= RTE_TCP_ACK_FLAG;
	tcp_xmit(c, c->iss, 0, flags);
	c->snd_nxt = c->iss + 1;
	c->snd_max = seq_max(c->snd_max, c->iss + 1);
	tcp_timer_set(c, TT_RTO, c->st->now_us + tcp_cur_rto(c));
}

void tcp_send_ack(struct tcp_conn *c)
{
	if (c->state == TCP_SYN_SENT || c->state == TCP_CLOSED ||
	    (c->flags & TF_DEAD))
		return;
	/* snd_max, not snd_nxt: after a go-back-N rewind snd_nxt may sit
	 * below what the peer already received, and a pure ACK carrying an
	 * old sequence number is unacceptable to it (RFC 9293 3.10.7.4). */
	tcp_xmit(c, c->snd_max, 0, RTE_TCP_ACK_FLAG);
}

void tcp_send_rst_conn(struct tcp_conn *c)
{
	tcp_emit(c->st, &c->key, c->snd_max, c->rcv_nxt,
		 RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, 0, NULL, 0);
}

void tcp_emit(struct net_stack *st, const struct tcp_key *k, uint32_t seq,
	      uint32_t ack, uint8_t flags, uint16_t wnd, const uint8_t *opts,
	      uint8_t optlen)
{
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m;

	th = tcp_frame(st, &m, k, (uint16_t)(sizeof(*th) + optlen));
	if (th == NULL)
		return;
	th->src_port = rte_cpu_to_be_16(k->lport);
	th->dst_port = rte_cpu_to_be_16(k->rport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)(((sizeof(*th) + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(wnd);
	th->cksum = 0;
	th->tcp_urp = 0;
	if (optlen > 0)
		memcpy(th + 1, opts, optlen);
	st->stats.tcp_seg_out++;
	if (flags & RTE_TCP_RST_FLAG)
		st->stats.tcp_rst_out++;
	tcp_frame_output(st, m, k);
}

void tcp_emit_rst_for(struct net_stack *st, const struct tcp_key *k,
		      uint32_t seq, uint32_t ack, uint8_t flags,
		      uint32_t seglen)
{
	if (flags & RTE_TCP_RST_FLAG)
		return; /* never answer a RST */
	if (flags & RTE_TCP_ACK_FLAG)
		tcp_emit(st, k, ack, 0, RTE_TCP_RST_FLAG, 0, NULL, 0);
	else
		tcp_emit(st, k, 0, seq + seglen,
			 RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, 0, NULL, 0);
}

static bool fin_unsent(const struct tcp_conn *c, uint32_t data_end)
{
	return (c->flags & TF_FIN_QUEUED) && seq_leq(c->snd_nxt, data_end);
}

/* Send data and FIN as far as min(cwnd, peer window) allows; then any ACK
 * still owed. Called after every event that can open a window or queue
 * data or owe an ACK. */
void tcp_output(struct tcp_conn *c)
{
	uint32_t data_end;

	if (c->flags & TF_DEAD)
		return;
	switch (c->state) {
	case TCP_SYN_RCVD:
		if (c->flags & TF_ACKNOW)
			tcp_send_ack(c);
		return;
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT_1:
	case TCP_FIN_WAIT_2:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		break;
	default:
		c->flags &= ~TF_ACKNOW;
		return;
	}
	data_end = tcp_snd_data_end(c);
	for (;;) {
		uint32_t win = RTE_MIN(c->snd_wnd, c->cwnd);
		uint32_t lim = c->snd_una + win;

		if (seq_lt(c->snd_nxt, data_end)) {
			uint32_t avail = data_end - c->snd_nxt;
			uint32_t room =
				seq_gt(lim, c->snd_nxt) ? lim - c->snd_nxt : 0;
			uint32_t len =
				RTE_MIN(RTE_MIN(avail, room), (uint32_t)c->mss);
			uint8_t fl = RTE_TCP_ACK_FLAG;

			if (len == 0)
				break;
			/* RFC 9293 3.8.6.2.1: no small segment unless it
			 * is the last of the data or half the max window. */
			if (len < c->mss && len < avail &&
			    len < c->max_snd_wnd / 2)
				break;
			if (len == avail) {
				fl |= RTE_TCP_PSH_FLAG;
				if (c->flags & TF_FIN_QUEUED)
					fl |= RTE_TCP_FIN_FLAG;
			}
			tcp_xmit(c, c->snd_nxt, len, fl);
			c->snd_nxt += len + ((fl & RTE_TCP_FIN_FLAG) ? 1 : 0);
			c->snd_max = seq_max(c->snd_max, c->snd_nxt);
			continue;
		}
		if ((c->flags & TF_FIN_QUEUED) && c->snd_nxt == data_end) {
			tcp_xmit(c, c->snd_nxt, 0,
				 RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG);
			c->snd_nxt++;
			c->snd_max = seq_max(c->snd_max, c->snd_nxt);
		}
		break;
	}
	if (c->flags & TF_ACKNOW)
		tcp_send_ack(c);
	tcp_arm_timers(c);
}

/* One segment at snd_una regardless of the windows (RTO, fast
 * retransmit, NewReno partial ACK). */
void tcp_retransmit_una(struct tcp_conn *c)
{
	uint32_t data_end = tcp_snd_data_end(c);
	uint32_t seq = c->snd_una, end;

	if (seq_lt(seq, data_end)) {
		uint32_t len = RTE_MIN(data_end - seq, (uint32_t)c->mss);
		uint8_t fl = RTE_TCP_ACK_FLAG;

		if (seq + len == data_end && (c->flags & TF_FIN_QUEUED) &&
		    seq_gt(c->snd_max, data_end))
			fl |= RTE_TCP_FIN_FLAG;
		tcp_xmit(c, seq, len, fl);
		end = seq + len + ((fl & RTE_TCP_FIN_FLAG) ? 1 : 0);
	} else if ((c->flags & TF_FIN_QUEUED) && seq == data_end) {
		tcp_xmit(c, seq, 0, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG);
		end = seq + 1;
	} else {
		return;
	}
	if (seq_lt(c->snd_nxt, end))
		c->snd_nxt = end;
	c->snd_max = seq_max(c->snd_max, end);
}

/* RFC 3042 limited transmit: on the first two duplicate ACKs send one
 * new segment if the peer's window allows, so small windows still
 * produce the three duplicates fast retransmit needs. */
void tcp_limited_transmit(struct tcp_conn *c)
{
	uint32_t data_end = tcp_snd_data_end(c);
	uint32_t lim = c->snd_una + c->snd_wnd, len;

	if (c->snd_nxt != c->snd_max || !seq_lt(c->snd_nxt, data_end) ||
	    !seq_lt(c->snd_nxt, lim))
		return;
	len = RTE_MIN(RTE_MIN(data_end - c->snd_nxt, lim - c->snd_nxt),
		      (uint32_t)c->mss);
	if (len < c->mss && c->snd_nxt + len != data_end)
		return;
	tcp_xmit(c, c->snd_nxt, len, RTE_TCP_ACK_FLAG);
	c->snd_nxt += len;
	c->snd_max = c->snd_nxt;
}

/* RFC 9293 3.8.6.1: probe a zero window with one octet of new data (or
 * the octet already sent as the previous probe). A window that is open
 * but too small for sender SWS avoidance gets what fits in it instead:
 * the override timeout of RFC 1122 4.2.3.4 (tcp_arm_timers). */
void tcp_send_probe(struct tcp_conn *c)
{
	uint32_t data_end = tcp_snd_data_end(c);

	c->st->stats.tcp_zero_window_probes++;
	if (c->snd_una != c->snd_max) {
		if (seq_lt(c->snd_una, data_end))
			tcp_xmit(c, c->snd_una, 1, RTE_TCP_ACK_FLAG);
		else
			tcp_xmit(c, c->snd_una, 0,
				 RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG);
		return;
	}
	if (seq_lt(c->snd_nxt, data_end)) {
		uint32_t avail = data_end - c->snd_nxt;
		uint32_t len =
			RTE_MIN(RTE_MIN(avail, c->snd_wnd), (uint32_t)c->mss);

		len = RTE_MAX(len, 1u);
		tcp_xmit(c, c->snd_nxt, len,
			 RTE_TCP_ACK_FLAG |
				 (len == avail ? RTE_TCP_PSH_FLAG : 0));
		c->snd_nxt += len;
	} else if (fin_unsent(c, data_end)) {
		tcp_xmit(c, c->snd_nxt, 0, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG);
		c->snd_nxt++;
	}
	c->snd_max = seq_max(c->snd_max, c->snd_nxt);
}

/* Timer policy after output or an ACK:
 * - data waiting and nothing in flight, right after tcp_output() sent
 *   nothing: the peer's window holds the data back, either closed or
 *   open by less than sender SWS avoidance sends (RFC 9293 3.8.6.2.1).
 *   Only a window update from the peer would restart the flow, and a
 *   lost one is never retransmitted, so persist mode runs a timer: a
 *   one-octet probe for a zero window (RFC 1122 4.2.2.17), a segment of
 *   what fits for a small one (the override timeout of RFC 1122
 *   4.2.3.4). Exponential backoff and no retry limit: a peer that keeps
 *   answering probes is kept. A zero-window probe in flight keeps
 *   persist mode until the window opens;
 * - data in flight: the retransmission timer runs (RFC 6298 5.1);
 * - an owed ACK: the delayed-ACK timer runs. */
void tcp_arm_timers(struct tcp_conn *c)
{
	uint64_t now = c->st->now_us;
	uint32_t data_end;
	bool unsent, outstanding, blocked;

	if ((c->flags & TF_DEAD) || c->state == TCP_SYN_SENT ||
	    c->state == TCP_SYN_RCVD || c->state == TCP_CLOSED)
		return;
	data_end = tcp_snd_data_end(c);
	unsent = seq_lt(c->snd_nxt, data_end) || fin_unsent(c, data_end);
	outstanding = c->snd_una != c->snd_max;
	blocked = unsent && !outstanding;
	if (blocked && !(c->flags & TF_PERSIST)) {
		c->flags |= TF_PERSIST;
		c->persist_shift = 0;
	}
	if ((c->flags & TF_PERSIST) && c->snd_wnd != 0 && !blocked) {
		c->flags &= ~TF_PERSIST;
		c->persist_shift = 0;
	}
	if (c->flags & TF_PERSIST) {
		if (c->timer[TT_RTO])
			tcp_timer_stop(c, TT_RTO);
		if (!c->timer[TT_PERSIST]) {
			uint64_t iv =
				(uint64_t)RTE_MAX(c->rto_us, TCP_MIN_RTO_US)
				<< c->persist_shift;

			tcp_timer_set(
				c, TT_PERSIST,
				now + RTE_MIN(iv, (uint64_t)TCP_MAX_RTO_US));
		}
	} else {
		if (c->timer[TT_PERSIST])
			tcp_timer_stop(c, TT_PERSIST);
		if (outstanding) {
			if (!c->timer[TT_RTO])
				tcp_timer_set(c, TT_RTO, now + tcp_cur_rto(c));
		} else if (c->timer[TT_RTO]) {
			tcp_timer_stop(c, TT_RTO);
		}
	}
	if ((c->flags & TF_DELACK) && !c->timer[TT_DELACK])
		tcp_timer_set(c, TT_DELACK,
			      now + (uint64_t)c->st->conf.delack_ms * 1000);
}

void tcp_window_update(struct tcp_conn *c)
{
	uint32_t rcvbuf = c->st->conf.rcvbuf;
	uint32_t freeb = c->rcv_bytes < rcvbuf ? rcvbuf - c->rcv_bytes : 0;
	uint32_t edge = c->rcv_nxt + freeb;
	uint32_t th = RTE_MIN(rcvbuf / 2, 2u * c->st->mss_max);

	if (c->state != TCP_ESTABLISHED && c->state != TCP_FIN_WAIT_1 &&
	    c->state != TCP_FIN_WAIT_2)
		return;
	if (seq_gt(edge, c->rcv_adv) && edge - c->rcv_adv >= th)
		tcp_send_ack(c);
}

/* ---- upper-layer send ------------------------------------------------ */

size_t tcp_send_space(const struct tcp_conn *c)
{
	uint32_t sb = c->st->conf.sndbuf;

	if (c->flags & TF_DEAD)
		return 0;
	return c->snd_bytes < sb ? sb - c->snd_bytes : 0;
}

ssize_t tcp_send(struct tcp_conn *c, const void *buf, size_t len)
{
	return tcp_send_more(c, buf, len, false);
}

void tcp_flush(struct tcp_conn *c)
{
	if (!(c->flags & TF_DEAD))
		tcp_output(c);
}

ssize_t tcp_send_more(struct tcp_conn *c, const void *buf, size_t len,
		      bool more)
{
	struct net_stack *st = c->st;
	const uint8_t *p = buf;
	size_t space, done = 0, want = len;

	if ((c->flags & (TF_DEAD | TF_FIN_QUEUED)) ||
	    (c->state != TCP_ESTABLISHED && c->state != TCP_CLOSE_WAIT &&
	     c->state != TCP_SYN_SENT && c->state != TCP_SYN_RCVD))
		return -EPIPE;
	space = tcp_send_space(c);
	if (len > space)
		len = space;
	while (done < len) {
		struct rte_mbuf *t = c->sndq_tail;
		uint32_t room = t != NULL ? rte_pktmbuf_tailroom(t) : 0;
		uint32_t n;

		if (room == 0) {
			t = net_alloc(st);
			if (t == NULL)
				break;
			if (c->sndq_tail != NULL)
				c->sndq_tail->next = t;
			else
				c->sndq_head = t;
			c->sndq_tail = t;
			st->stats.mbufs_held++;
			room = rte_pktmbuf_tailroom(t);
		}
		n = (uint32_t)RTE_MIN((size_t)room, len - done);
		memcpy(rte_pktmbuf_mtod_offset(t, uint8_t *, t->data_len),
		       p + done, n);
		t->data_len = (uint16_t)(t->data_len + n);
		t->pkt_len = t->data_len;
		done += n;
	}
	c->snd_bytes += (uint32_t)done;
	if (done < want)
		c->flags |= TF_WANT_WR;
	if (done > 0 && !more)
		tcp_output(c);
	return (ssize_t)done;
}
