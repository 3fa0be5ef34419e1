/*
 * fuzz_tcp.c - libFuzzer harness for the userspace TCP/IP stack
 * (dataplane/net): hostile frames in, against a stack with a listener,
 * established connections and an application that sends, reads, closes
 * and aborts.
 *
 * Input: 1 config octet (bit 3: the whole input runs over IPv6: the
 * stack has fd00:6d78::1/64, the peer is fd00:6d78::2, learnt over ND,
 * segments and active opens are IPv6), then operations (op = octet % 8):
 *   op 0  raw frame: next octet L, then L*8 octets from the input, padded
 *         with zeros: any Ethernet frame at all (ARP, IPv4, junk)
 *   op 1  raw IPv4 packet: our MAC and EtherType 0x0800 around L*8 input
 *         octets (headers, options, lengths and checksums all hostile);
 *         over IPv6: a selector octet, a next header and a hop limit,
 *         then an IPv6 header from the peer to our address (or our
 *         solicited-node group) around L*8 octets that are either an
 *         extension-header chain (hostile lengths and options) or an
 *         ICMPv6 message with a valid checksum (ND, echo, Packet Too Big)
 *   op 2  TCP segment with valid checksums from one of four peer ports:
 *         seq/ack near what the peer should send (or anywhere), any
 *         flags, window, MSS/WS/TS options, up to 1,460 payload octets
 *   op 3  time: advance 1 us .. 65 s, run the timers
 *   op 4  application: send, send-more, flush, recv, close, abort on one
 *         of the open connections
 *   op 5  active open to the peer (tcp_connect)
 *   op 6  a valid in-window data segment from the peer on a connection
 *         the harness believes established (deep state coverage)
 *   op 7  bad checksum / truncated copy of op 2
 * After every op, every frame the stack emits is parsed; what the peer
 * would learn from them (our seq, its ack) is tracked so later segments
 * land in the window.
 *
 * FUZZ_TCP_TRACE=1 prints the stack's counters after each input (to see
 * that a corpus reaches established connections, retransmissions, zero
 * windows and reassembly).
 *
 * Checks, beyond the sanitizers: every frame the stack emits parses with
 * correct IPv4 and TCP checksums (IPv6: TCP and ICMPv6); no more frames than its TX queue holds;
 * after destroying the stack every mbuf is back in the pool.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "harness.h"

#define NPEER 4
#define NSLOT 16

static struct rte_mempool *P;
static bool trace; /* FUZZ_TCP_TRACE set: counters after each input */

/* What the harness knows of one peer port (one connection at a time). */
struct peer {
	uint16_t port;
	uint32_t seq; /* next octet the peer sends */
	uint32_t ack; /* our next octet, as the peer saw it */
	bool synced;  /* a SYN-ACK or SYN seen: seq/ack meaningful */
	bool ts;
	uint32_t tsval;
};

/* Application state per connection. */
struct slot {
	bool used;
	struct tcp_conn *c; /* NULL until accepted/connect returned it */
	bool closing;
};

struct fz {
	struct net_stack *st;
	uint64_t now;
	struct peer pr[NPEER];
	struct slot sl[NSLOT];
	const uint8_t *p;
	size_t n;
	bool echo;
};

static struct fz F;

static uint8_t u8(void)
{
	if (F.n == 0)
		return 0;
	F.n--;
	return *F.p++;
}

static uint16_t u16(void)
{
	return (uint16_t)(u8() | (u8() << 8));
}

static uint32_t u32(void)
{
	return (uint32_t)u16() | ((uint32_t)u16() << 16);
}

static struct slot *slot_new(struct tcp_conn *c)
{
	for (int i = 0; i < NSLOT; i++)
		if (!F.sl[i].used) {
			F.sl[i].used = true;
			F.sl[i].c = c;
			F.sl[i].closing = false;
			return &F.sl[i];
		}
	return NULL;
}

static void slot_gone(void *ctx)
{
	struct slot *s = ctx;

	if (s) {
		s->used = false;
		s->c = NULL;
		s->closing = false;
	}
}

static void *cb_accepted(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return slot_new(c); /* NULL: refused (table of slots full) */
}

static void cb_connected(void *ctx, struct tcp_conn *c)
{
	(void)ctx;
	(void)c;
}

static void cb_readable(void *ctx, struct tcp_conn *c)
{
	uint8_t buf[2048];
	size_t n;

	(void)ctx;
	if (!F.echo)
		return;
	while ((n = tcp_recv(c, buf, sizeof(buf))) > 0)
		if (tcp_send(c, buf, n) < 0)
			break;
}

static void cb_writable(void *ctx, struct tcp_conn *c)
{
	(void)ctx;
	(void)c;
}

static void cb_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct slot *s = ctx;

	if (s && !s->closing && (F.now & 1)) {
		s->closing = true;
		tcp_close(c);
	}
}

static void cb_closed(void *ctx, struct tcp_conn *c)
{
	(void)c;
	slot_gone(ctx);
}

static void cb_reset(void *ctx, struct tcp_conn *c, int err)
{
	(void)c;
	(void)err;
	slot_gone(ctx);
}

static const struct tcp_callbacks fz_cb = {
	.accepted = cb_accepted,
	.connected = cb_connected,
	.readable = cb_readable,
	.writable = cb_writable,
	.peer_closed = cb_peer_closed,
	.closed = cb_closed,
	.reset = cb_reset,
};

static struct peer *peer_of(uint16_t port)
{
	for (int i = 0; i < NPEER; i++)
		if (F.pr[i].port == port)
			return &F.pr[i];
	return NULL;
}

/* Every frame the stack queued: parsed, checked, and what a peer would
 * learn from it recorded. */
static void drain(void)
{
	static struct t_out o;
	struct rte_mbuf *m;
	unsigned n = 0;

	while (net_stack_take_tx(F.st, &m, 1) == 1) {
		t_parse(m, &o);
		rte_pktmbuf_free(m);
		if (++n > 4096)
			abort(); /* more than any queue holds: a loop */
		if (o.ether_type == RTE_ETHER_TYPE_IPV6 && o.proto == 58 &&
		    !o.l4_csum_ok)
			abort(); /* an ICMPv6 / ND frame with a bad checksum */
		if ((o.ether_type != RTE_ETHER_TYPE_IPV4 &&
		     o.ether_type != RTE_ETHER_TYPE_IPV6) ||
		    o.proto != 6)
			continue;
		if (!o.ip_csum_ok || !o.l4_csum_ok)
			abort(); /* we emitted a frame with a bad checksum */
		{
			struct peer *p = peer_of(o.dport);
			uint32_t end = o.seq + o.len +
				       ((o.flags & T_FLAG_SYN) ? 1 : 0) +
				       ((o.flags & T_FLAG_FIN) ? 1 : 0);

			if (!p)
				continue;
			if (o.flags & T_FLAG_RST) {
				p->synced = false;
				continue;
			}
			if ((o.flags & T_FLAG_SYN) && !(o.flags & T_FLAG_ACK)) {
				/* our active open: the peer answers later */
				p->ack = end;
				p->seq = 7000 + p->port;
				p->synced = true;
				continue;
			}
			if (o.flags & T_FLAG_SYN)
				p->seq = o.ack;
			if ((int32_t)(end - p->ack) > 0 || o.flags & T_FLAG_SYN)
				p->ack = end;
			p->synced = true;
			if (o.ts)
				p->ts = true;
		}
	}
}

static void inject_raw(bool ipv4)
{
	uint32_t len = (uint32_t)u8() * 8;
	uint32_t hdr = ipv4 ? sizeof(struct rte_ether_hdr) : 0;
	struct rte_mbuf *m = rte_pktmbuf_alloc(P);
	uint8_t *d;

	if (!m)
		return;
	if (hdr + len > 1514)
		len = 1514 - hdr;
	if (hdr + len < 1)
		len = 1;
	d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(hdr + len));
	if (!d) {
		rte_pktmbuf_free(m);
		return;
	}
	memset(d, 0, hdr + len);
	if (ipv4) {
		struct rte_ether_hdr *eh = (struct rte_ether_hdr *)d;

		eh->dst_addr = t_our_mac;
		eh->src_addr = t_peer_mac;
		eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	}
	for (uint32_t i = 0; i < len && F.n; i++)
		d[hdr + i] = u8();
	t_inject(F.st, m, F.now);
}

static uint8_t payload[1460];

/* op 1 over IPv6: a packet from the peer with a fuzzed chain or a
 * checksummed ICMPv6 message. */
static void inject_ip6(void)
{
	static const struct net_addr sn = {{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0,
					    0, 1, 0xff, 0, 0, 1}};
	uint8_t sel = u8(), nh = u8(), hlim = (sel & 4) ? 255 : u8();
	uint32_t len = (uint32_t)u8() * 8;
	struct rte_mbuf *m;

	if (len > 1400)
		len = 1400;
	for (uint32_t i = 0; i < len; i++)
		payload[i] = F.n ? u8() : 0;
	if (sel & 1)
		m = t_build_ip6(P, &t_peer_ip6, (sel & 2) ? &sn : &t_our_ip6,
				hlim, 0, NULL, 0, IPPROTO_ICMPV6, payload,
				len);
	else
		m = t_build_ip6(P, &t_peer_ip6, (sel & 2) ? &sn : &t_our_ip6,
				hlim, nh, payload, len, IPPROTO_TCP, NULL, 0);
	t_inject(F.st, m, F.now);
}

static void segment(bool deep, bool broken)
{
	struct peer *p = &F.pr[u8() % NPEER];
	uint8_t sel = u8();
	struct t_seg s;
	struct rte_mbuf *m;

	if (deep && !p->synced)
		return;
	t_seg_init(&s);
	s.src_ip = T_PEER_IP;
	s.dst_ip = T_OUR_IP;
	s.sport = p->port;
	s.dport = (sel & 0x80) ? (uint16_t)(40000 + (sel & 7)) : 25;
	if (deep) {
		s.flags = T_FLAG_ACK | ((sel & 1) ? T_FLAG_PSH : 0) |
			  ((sel & 0x40) ? T_FLAG_FIN : 0);
		s.seq = p->seq;
		s.ack = p->ack;
		s.len = u16() % sizeof(payload);
	} else {
		s.flags = u8();
		switch (sel & 3) {
		case 0:
			s.seq = p->seq;
			s.ack = p->ack;
			break;
		case 1:
			s.seq = p->seq + (int8_t)u8() * 97;
			s.ack = p->ack + (int8_t)u8() * 97;
			break;
		case 2:
			s.seq = p->seq - u16();
			s.ack = p->ack + u16();
			break;
		default:
			s.seq = u32();
			s.ack = u32();
			break;
		}
		s.len = (sel & 4) ? u16() % sizeof(payload) : 0;
	}
	s.wnd = (sel & 8) ? u16() : 65535;
	s.mss = (sel & 0x10) ? (int)u16() : -1;
	s.wscale = (sel & 0x20) ? (int)(u8() % 20) : -1;
	s.ts = p->ts || ((sel & 0x40) && !deep);
	s.tsval = ++p->tsval;
	s.tsecr = u32();
	for (uint32_t i = 0; i < s.len; i++)
		payload[i] = F.n ? u8() : (uint8_t)i;
	s.data = payload;
	s.bad_csum = broken && (sel & 0x20);
	m = t_build_tcp(P, &s);
	if (!m)
		return;
	if (broken && !(sel & 0x20) && m->data_len > 20) {
		uint16_t cut = (uint16_t)(u8() % 40 + 1);

		rte_pktmbuf_trim(m, cut < m->data_len ? cut : 1);
	}
	t_inject(F.st, m, F.now);
	if (s.flags & T_FLAG_SYN)
		p->synced = true;
	if (deep || (sel & 3) == 0)
		p->seq = s.seq + s.len + ((s.flags & T_FLAG_SYN) ? 1 : 0) +
			 ((s.flags & T_FLAG_FIN) ? 1 : 0);
}

static void app_op(void)
{
	uint8_t sel = u8();
	struct slot *s = &F.sl[sel % NSLOT];
	static uint8_t buf[8192];
	size_t len;

	if (!s->used || !s->c)
		return;
	switch ((sel >> 4) % 6) {
	case 0:
	case 1:
		len = (size_t)u16() % sizeof(buf);
		memset(buf, 'x', len);
		(void)tcp_send_more(s->c, buf, len, ((sel >> 4) % 6) == 1);
		break;
	case 2:
		tcp_flush(s->c);
		break;
	case 3:
		(void)tcp_recv(s->c, buf, (size_t)u16() % sizeof(buf));
		break;
	case 4:
		if (!s->closing) {
			s->closing = true;
			tcp_close(s->c);
		}
		break;
	default:
		tcp_abort(s->c); /* no callback */
		slot_gone(s);
		break;
	}
}

static void active_open(void)
{
	struct peer *p = &F.pr[u8() % NPEER];
	struct tcp_conn *c;
	struct slot *s = slot_new(NULL);

	if (!s)
		return;
	if (t_connect(F.st, rte_cpu_to_be_32(T_PEER_IP), p->port, &fz_cb, s,
		      &c) == 0)
		s->c = c;
	else
		slot_gone(s);
}

static void tweak(struct net_stack_conf *c)
{
	/* Small buffers reach zero windows, persist and full queues. */
	if (F.n && (F.p[0] & 1)) {
		c->rcvbuf = 4096;
		c->sndbuf = 4096;
	}
	c->delack_ms = (F.n && (F.p[0] & 2)) ? 0 : 40;
	c->ooo_max_segs = 4;
	c->max_conns = 12;
	c->syn_backlog = 4;
	c->max_timewait = 4;
	c->timewait_ms = 2000;
	/* the peer's ports 40000..40007 are our active-open range */
	c->eph_lo = 40000;
	c->eph_hi = 40007;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	t_init_eal();
	P = t_pool(2047);
	trace = getenv("FUZZ_TCP_TRACE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t cfg;
	unsigned ops = 0;

	memset(&F, 0, sizeof(F));
	F.p = data;
	F.n = size;
	F.now = 1000000;
	t_v6 = size > 0 && (data[0] & 8);
	F.st = t_stack(P, tweak);
	cfg = u8();
	F.echo = cfg & 4;
	for (int i = 0; i < NPEER; i++)
		F.pr[i].port = (uint16_t)(5555 + i);
	t_learn_peer(F.st, F.now);
	if (tcp_listen(F.st, 25, &fz_cb, NULL) != 0)
		abort();
	drain();
	while (F.n > 0 && ops++ < 4096) {
		switch (u8() % 8) {
		case 0:
			inject_raw(false);
			break;
		case 1:
			if (t_v6)
				inject_ip6();
			else
				inject_raw(true);
			break;
		case 2:
			segment(false, false);
			break;
		case 3: {
			uint32_t us = (uint32_t)u16() * (1 + u8() % 1000);

			F.now += us ? us : 1;
			break;
		}
		case 4:
			app_op();
			break;
		case 5:
			active_open();
			break;
		case 6:
			segment(true, false);
			break;
		default:
			segment(false, true);
			break;
		}
		net_stack_poll(F.st, F.now);
		drain();
	}
	/* Let every timer run out: retransmissions give up, TIME_WAIT and
	 * lingering closes end. */
	for (int i = 0; i < 64; i++) {
		F.now += 5 * 1000 * 1000;
		net_stack_poll(F.st, F.now);
		drain();
	}
	if (trace) {
		const struct net_stats *ns = net_stack_stats(F.st);

		fprintf(stderr,
			"fuzz_tcp: accepted %llu connected %llu seg_in %llu "
			"seg_out %llu retransmits %llu zwp %llu ooo %llu\n",
			(unsigned long long)ns->tcp_accepted,
			(unsigned long long)ns->tcp_connected,
			(unsigned long long)ns->tcp_seg_in,
			(unsigned long long)ns->tcp_seg_out,
			(unsigned long long)ns->tcp_retransmits,
			(unsigned long long)ns->tcp_zero_window_probes,
			(unsigned long long)ns->tcp_ooo_queued);
		if (t_v6)
			fprintf(stderr,
				"fuzz_tcp: ipv6 rx %llu ext %llu echo %llu "
				"ptb %llu ns_out %llu na_out %llu na_in %llu "
				"ext_drops %llu nd_drops %llu\n",
				(unsigned long long)ns->ip6_rx,
				(unsigned long long)ns->ip6_ext_hdrs,
				(unsigned long long)ns->icmp6_echo,
				(unsigned long long)ns->icmp6_ptb,
				(unsigned long long)ns->nd_solicits_out,
				(unsigned long long)ns->nd_adverts_out,
				(unsigned long long)ns->nd_adverts_in,
				(unsigned long long)
					ns->drops[NET_DROP_IP6_EXT],
				(unsigned long long)ns->drops[NET_DROP_ND]);
	}
	net_stack_destroy(F.st);
	/* the pool of t_learn_peer's ARP frame is separate; ours must be
	 * whole again */
	if (rte_mempool_avail_count(P) != P->size) {
		fprintf(stderr, "fuzz_tcp: %u of %u mbufs not returned\n",
			P->size - rte_mempool_avail_count(P), P->size);
		abort();
	}
	if (t_failures)
		abort();
	return 0;
}
