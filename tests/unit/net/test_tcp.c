/*
 * test_tcp.c - packet-level tests of the TCP state machine: crafted
 * segments from a fake peer (10.0.0.2) are injected at chosen times into
 * one stack, and the segments it emits are asserted field by field.
 *
 * Every case ends with t_destroy(), which asserts that every mbuf went
 * back to the pool.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#ifdef T_FAMILY6
/* Built a second time as test_net_tcp6: every case over IPv6. */
#define tcp_connect t_connect
#endif

static struct rte_mempool *P;
static struct net_stack *S;
static struct t_app A;
static uint64_t T;

/* The fake peer's view of the current connection. */
static struct {
	uint16_t sport, dport;
	uint32_t seq; /* next sequence number the peer sends */
	uint32_t ack; /* what the peer acknowledges (our next seq) */
	uint16_t wnd;
	bool ts;
	uint32_t tsval;
} PR;

static const struct net_stats *ST(void)
{
	return net_stack_stats(S);
}

static void setup_with(void (*tweak)(struct net_stack_conf *))
{
	P = t_pool(4095);
	S = t_stack(P, tweak);
	memset(&A, 0, sizeof(A));
	T = 1000000;
	t_learn_peer(S, T);
	CHECK_EQ(tcp_listen(S, 25, &t_cb, &A), 0);
	memset(&PR, 0, sizeof(PR));
	PR.sport = 5555;
	PR.dport = 25;
	PR.wnd = 65535;
}

static void setup(void)
{
	setup_with(NULL);
}

static void teardown(void)
{
	t_destroy(S, P);
}

/* Send a segment from the peer with its current seq/ack; with ts, a
 * timestamp option echoing tsecr. */
static void pseg_ts(uint8_t flags, const void *data, uint32_t len, bool ts,
		    uint32_t tsecr)
{
	struct t_seg s;

	t_seg_init(&s);
	s.sport = PR.sport;
	s.dport = PR.dport;
	s.seq = PR.seq;
	s.ack = PR.ack;
	s.flags = flags;
	s.wnd = PR.wnd;
	s.data = data;
	s.len = len;
	if (ts) {
		s.ts = true;
		s.tsval = ++PR.tsval;
		s.tsecr = tsecr;
	}
	t_send(S, P, &s, T);
	PR.seq += len + ((flags & T_FLAG_SYN) ? 1 : 0) +
		  ((flags & T_FLAG_FIN) ? 1 : 0);
}

static void pseg(uint8_t flags, const void *data, uint32_t len)
{
	pseg_ts(flags, data, len, PR.ts, 0);
}

/* Passive open with the peer's options; returns our ISS. */
static uint32_t handshake_opts(int mss, int ws, bool ts)
{
	struct t_seg s;
	struct t_out o;

	t_seg_init(&s);
	s.sport = PR.sport;
	s.seq = 1000;
	s.flags = T_FLAG_SYN;
	s.mss = mss;
	s.wscale = ws;
	s.ts = ts;
	s.tsval = 500;
	s.wnd = PR.wnd;
	t_send(S, P, &s, T);
	CHECK_EQ(ST()->syn_rcvd, 1);
	if (!t_take1(S, &o))
		return 0;
	CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
	CHECK_EQ(o.ack, 1001);
	CHECK(o.ip_csum_ok);
	CHECK(o.l4_csum_ok);
	CHECK_EQ(o.mss, 1460);
	CHECK_EQ(o.wscale >= 0, ws >= 0);
	CHECK_EQ(o.ts, ts);
	if (ts)
		CHECK_EQ(o.tsecr, 500);
	PR.seq = 1001;
	PR.ack = o.seq + 1;
	PR.ts = ts;
	PR.tsval = 600;
	T += 10000;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(ST()->syn_rcvd, 0);
	CHECK_EQ(ST()->live_tcbs, 1);
	CHECK(A.conn != NULL);
	if (A.conn != NULL)
		CHECK_EQ(tcp_conn_state(A.conn), TCP_ESTABLISHED);
	CHECK_EQ(t_drain(S), 0);
	return o.seq;
}

static uint32_t handshake(void)
{
	return handshake_opts(1460, -1, false);
}

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 31 + (i >> 8));
}

/* ---- handshakes ------------------------------------------------------ */

static void test_passive_open(void)
{
	setup();
	handshake_opts(1400, 7, true);
	CHECK_EQ(tcp_conn_mss(A.conn), 1400 - 12); /* timestamps */
	CHECK_EQ(ST()->tcp_accepted, 1);
	teardown();
}

static void test_passive_refused(void)
{
	struct t_out o;

	setup();
	A.refuse = true;
	t_seg_init(&(struct t_seg){0});
	PR.seq = 1000;
	pseg(T_FLAG_SYN, NULL, 0);
	CHECK(t_take1(S, &o));
	PR.ack = o.seq + 1;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK(t_take1(S, &o));
	CHECK(o.flags & T_FLAG_RST);
	CHECK_EQ(ST()->live_tcbs, 0);
	CHECK_EQ(A.closed + A.reset, 0);
	teardown();
}

static void test_active_open(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	CHECK_EQ(tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c),
		 0);
	CHECK_EQ(tcp_conn_state(c), TCP_SYN_SENT);
	if (!t_take1(S, &o))
		goto out;
	CHECK_EQ(o.flags, T_FLAG_SYN);
	CHECK_EQ(o.dport, 80);
	CHECK(o.sport >= 40000 && o.sport <= 40009);
	CHECK_EQ(o.mss, 1460);
	CHECK(o.wscale >= 0);
	CHECK(o.ts);
	CHECK(memcmp(&o.dst, &t_peer_mac, 6) == 0);
	PR.sport = 80;
	PR.dport = o.sport;
	PR.seq = 7000;
	PR.ack = o.seq + 1;
	{
		struct t_seg s;

		t_seg_init(&s);
		s.sport = 80;
		s.dport = o.sport;
		s.seq = 7000;
		s.ack = o.seq + 1;
		s.flags = T_FLAG_SYN | T_FLAG_ACK;
		s.mss = 1000;
		s.wscale = 2;
		t_send(S, P, &s, T + 5000);
	}
	PR.seq = 7001;
	CHECK_EQ(A.connected, 1);
	CHECK_EQ(tcp_conn_state(c), TCP_ESTABLISHED);
	CHECK_EQ(tcp_conn_mss(c), 1000); /* no timestamps from the peer */
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 7001);
		CHECK(!o.ts);
	}
	CHECK_EQ(ST()->tcp_connected, 1);
out:
	teardown();
}

static void test_active_refused(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o);
	PR.sport = 80;
	PR.dport = o.sport;
	PR.seq = 0;
	PR.ack = o.seq + 1;
	pseg(T_FLAG_RST | T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.reset, 1);
	CHECK_EQ(A.reset_err, ECONNREFUSED);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void test_simultaneous_open(void)
{
	struct tcp_conn *c;
	struct t_out o;
	uint32_t iss;

	setup();
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o);
	iss = o.seq;
	PR.sport = 80;
	PR.dport = o.sport;
	PR.seq = 9000;
	/* Crossing SYN from the peer. */
	pseg(T_FLAG_SYN, NULL, 0);
	CHECK_EQ(tcp_conn_state(c), TCP_SYN_RCVD);
	CHECK_EQ(ST()->syn_rcvd, 0); /* active: not a half-open passive */
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
		CHECK_EQ(o.seq, iss);
		CHECK_EQ(o.ack, 9001);
	}
	/* The peer's SYN-ACK (its answer to our SYN) is a duplicate of its
	 * SYN for us: RFC 9293 says ACK it. */
	PR.seq = 9000;
	PR.ack = iss + 1;
	pseg(T_FLAG_SYN | T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 9001);
	}
	CHECK_EQ(tcp_conn_state(c), TCP_SYN_RCVD);
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(tcp_conn_state(c), TCP_ESTABLISHED);
	CHECK_EQ(A.connected, 1);
	teardown();
}

static void test_synack_retransmit_and_giveup(void)
{
	struct t_out o, o2;

	setup();
	PR.seq = 1000;
	pseg(T_FLAG_SYN, NULL, 0);
	t_take1(S, &o);
	/* Lost SYN-ACK: the peer repeats its SYN, we repeat the SYN-ACK. */
	PR.seq = 1000;
	pseg(T_FLAG_SYN, NULL, 0);
	if (t_take1(S, &o2)) {
		CHECK_EQ(o2.flags, T_FLAG_SYN | T_FLAG_ACK);
		CHECK_EQ(o2.seq, o.seq);
	}
	/* RTO: 1 s, 2 s, 4 s ... then the half-open TCB is dropped. */
	net_stack_poll(S, T + 999999);
	CHECK_EQ(t_drain(S), 0);
	net_stack_poll(S, T + 1000000);
	CHECK_EQ(t_drain(S), 1);
	for (int i = 0; i < 10; i++) {
		T += 61000000;
		net_stack_poll(S, T);
		t_drain(S);
	}
	CHECK_EQ(ST()->syn_rcvd, 0);
	CHECK_EQ(ST()->live_tcbs, 0);
	CHECK_EQ(ST()->tcp_timeouts, 1);
	CHECK_EQ(A.accepted, 0);
	teardown();
}

/* ---- RST ------------------------------------------------------------- */

static void test_rst_no_connection(void)
{
	struct t_out o;
	struct t_seg s;

	setup();
	t_seg_init(&s);
	s.dport = 26; /* nobody listens */
	s.seq = 4000;
	s.flags = T_FLAG_SYN;
	t_send(S, P, &s, T);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_RST | T_FLAG_ACK);
		CHECK_EQ(o.seq, 0);
		CHECK_EQ(o.ack, 4001);
	}
	s.flags = T_FLAG_ACK;
	s.ack = 777;
	t_send(S, P, &s, T);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_RST);
		CHECK_EQ(o.seq, 777);
	}
	/* Never answer a RST. */
	s.flags = T_FLAG_RST;
	t_send(S, P, &s, T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->drops[NET_DROP_TCP_NOCONN], 3);
	CHECK_EQ(ST()->tcp_rst_out, 2);
	teardown();
}

static void test_rst_exact_resets(void)
{
	setup();
	handshake();
	pseg(T_FLAG_RST, NULL, 0);
	CHECK_EQ(A.reset, 1);
	CHECK_EQ(A.reset_err, ECONNRESET);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void test_challenge_ack_rst(void)
{
	struct t_out o;

	setup();
	handshake();
	PR.seq += 100; /* in window, not exact */
	pseg(T_FLAG_RST, NULL, 0);
	CHECK_EQ(A.reset, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 1001);
	}
	CHECK_EQ(ST()->tcp_challenge_acks, 1);
	/* Out of window RST: silently dropped. */
	PR.seq = 1001 + 200000;
	pseg(T_FLAG_RST, NULL, 0);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(A.reset, 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_ESTABLISHED);
	teardown();
}

static void test_challenge_ack_syn(void)
{
	struct t_out o;

	setup();
	handshake();
	PR.seq = 1001 + 50;
	pseg(T_FLAG_SYN, NULL, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 1001);
	}
	CHECK_EQ(ST()->tcp_challenge_acks, 1);
	CHECK_EQ(A.reset, 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_ESTABLISHED);
	/* Rate limit: at most 100 per second. */
	for (int i = 0; i < 150; i++) {
		PR.seq = 1001 + 50;
		pseg(T_FLAG_SYN, NULL, 0);
	}
	CHECK_EQ(ST()->tcp_challenge_acks, 100);
	CHECK_EQ(t_drain(S), 99);
	teardown();
}

/* ---- data ------------------------------------------------------------ */

static void test_data_delayed_ack(void)
{
	uint8_t d[3000], r[3000];
	struct t_out o;

	setup();
	handshake();
	fill(d, sizeof(d), 1);
	pseg(T_FLAG_ACK | T_FLAG_PSH, d, 1000);
	CHECK_EQ(A.readable, 1);
	CHECK_EQ(tcp_recv_avail(A.conn), 1000);
	CHECK_EQ(t_drain(S), 0); /* delayed */
	CHECK_EQ(net_stack_next_timer_us(S, T), 40000);
	net_stack_poll(S, T + 39999);
	CHECK_EQ(t_drain(S), 0);
	net_stack_poll(S, T + 40000);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.ack, 2001);
		CHECK_EQ(o.wnd, 65535 - 1000);
	}
	/* Two segments: ACK at once on the second. */
	pseg(T_FLAG_ACK, d + 1000, 1000);
	CHECK_EQ(t_drain(S), 0);
	pseg(T_FLAG_ACK, d + 2000, 1000);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, 4001);
	CHECK_EQ(tcp_recv(A.conn, r, sizeof(r)), 3000);
	CHECK(memcmp(d, r, 3000) == 0);
	CHECK_EQ(tcp_recv_avail(A.conn), 0);
	/* Reading 3000 bytes opened the window by more than 2*MSS: a
	 * window update goes out. */
	if (t_take1(S, &o))
		CHECK_EQ(o.wnd, 65535);
	teardown();
}

static void test_send_segments(void)
{
	static uint8_t d[5000];
	struct t_out o[8];
	int n;

	setup();
	handshake();
	fill(d, sizeof(d), 9);
	CHECK_EQ(tcp_send(A.conn, d, sizeof(d)), 5000);
	n = t_take(S, o, 8);
	CHECK_EQ(n, 4);
	for (int i = 0; i < n; i++) {
		uint32_t off = o[i].seq - PR.ack;

		CHECK_EQ(off, (uint32_t)i * 1460);
		CHECK_EQ(o[i].len, i < 3 ? 1460 : 5000 - 3 * 1460);
		CHECK(memcmp(o[i].data, d + off, o[i].len) == 0);
		CHECK(o[i].l4_csum_ok);
		CHECK_EQ(o[i].ack, 1001);
	}
	CHECK(o[3].flags & T_FLAG_PSH);
	CHECK_EQ(net_stack_stats(S)->mbufs_held > 0, 1);
	CHECK_EQ(net_stack_next_timer_us(S, T), 200000); /* RTO */
	PR.ack += 5000;
	pseg(T_FLAG_ACK, NULL, 0);
	/* Only the ARP entry's expiry remains. */
	CHECK(net_stack_next_timer_us(S, T) > 29000000);
	teardown();
}

static void test_recv_chain_zero_copy(void)
{
	uint8_t d[3000];
	struct rte_mbuf *m;

	setup();
	handshake();
	fill(d, sizeof(d), 3);
	pseg(T_FLAG_ACK, d, 1000);
	pseg(T_FLAG_ACK, d + 1000, 1000);
	pseg(T_FLAG_ACK, d + 2000, 1000);
	m = tcp_recv_chain(A.conn, 2500);
	CHECK(m != NULL);
	if (m != NULL) {
		uint8_t r[2000];

		CHECK_EQ(m->pkt_len, 2000); /* whole segments only */
		CHECK_EQ(m->nb_segs, 2);
		CHECK(rte_pktmbuf_read(m, 0, 2000, r) != NULL);
		CHECK(memcmp(rte_pktmbuf_read(m, 0, 2000, r), d, 2000) == 0);
		rte_pktmbuf_free(m);
	}
	m = tcp_recv_chain(A.conn, 100); /* smaller than a segment: copy */
	CHECK(m != NULL && m->pkt_len == 100);
	if (m != NULL) {
		CHECK(memcmp(rte_pktmbuf_mtod(m, void *), d + 2000, 100) == 0);
		rte_pktmbuf_free(m);
	}
	CHECK_EQ(tcp_recv_avail(A.conn), 900);
	teardown();
}

static void test_backpressure_writable(void)
{
	static uint8_t d[100000];
	int sent;

	setup();
	handshake();
	CHECK_EQ(tcp_send(A.conn, d, sizeof(d)), 65536);
	CHECK_EQ(tcp_send_space(A.conn), 0);
	CHECK_EQ(tcp_send(A.conn, d, 10), 0);
	sent = t_drain(S); /* initial window: 10 segments */
	CHECK_EQ(sent, 10);
	CHECK_EQ(A.writable, 0);
	PR.ack += 14600;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.writable, 0); /* 14600 free < a quarter of 64 KiB? no */
	CHECK_EQ(tcp_send_space(A.conn), 14600);
	t_drain(S);
	PR.ack += 14600;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.writable, 1);
	teardown();
}

/* ---- close ----------------------------------------------------------- */

static void test_active_close_time_wait(void)
{
	struct t_out o;

	setup();
	handshake();
	CHECK_EQ(tcp_close(A.conn), 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_FIN_WAIT_1);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_FIN | T_FLAG_ACK);
		CHECK_EQ(o.seq, PR.ack);
	}
	CHECK_EQ(tcp_send(A.conn, "x", 1), -EPIPE);
	PR.ack += 1;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_FIN_WAIT_2);
	/* Data may still arrive in FIN_WAIT_2. */
	pseg(T_FLAG_ACK, "hello", 5);
	CHECK_EQ(tcp_recv_avail(A.conn), 5);
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.peer_closed, 1);
	CHECK_EQ(A.closed, 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	CHECK_EQ(ST()->timewait, 1);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 1001 + 5 + 1);
	}
	/* Retransmitted FIN in TIME_WAIT is ACKed again. */
	T += 1000000;
	PR.seq -= 1;
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 1007);
		CHECK_EQ(o.seq, PR.ack);
	}
	/* A data segment for the old conn: ACK; a RST: ignored (RFC 1337) */
	pseg(T_FLAG_RST, NULL, 0);
	CHECK_EQ(ST()->timewait, 1);
	CHECK_EQ(t_drain(S), 0);
	/* Expiry: 60 s after the restart. */
	CHECK(net_stack_next_timer_us(S, T) <= 60000000);
	net_stack_poll(S, T + 59999999);
	CHECK_EQ(ST()->timewait, 1);
	net_stack_poll(S, T + 60000000);
	CHECK_EQ(ST()->timewait, 0);
	/* After expiry the 4-tuple is unknown: RST (ARP expired too). */
	T += 60000000;
	t_learn_peer(S, T);
	pseg(T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o))
		CHECK(o.flags & T_FLAG_RST);
	teardown();
}

static void test_passive_close_last_ack(void)
{
	struct t_out o;

	setup();
	handshake();
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.peer_closed, 1);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_CLOSE_WAIT);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, 1002);
	/* We may still send in CLOSE_WAIT. */
	CHECK_EQ(tcp_send(A.conn, "bye", 3), 3);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK | T_FLAG_PSH);
		CHECK_EQ(o.len, 3);
	}
	CHECK_EQ(tcp_close(A.conn), 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_LAST_ACK);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK | T_FLAG_FIN);
		CHECK_EQ(o.seq, PR.ack + 3);
	}
	PR.ack += 4;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.closed, 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	CHECK_EQ(ST()->timewait, 0);
	teardown();
}

static void test_close_in_callback(void)
{
	struct t_out o;

	setup();
	A.close_on_peer_closed = true;
	handshake();
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	/* ACK of the FIN and our FIN in one segment. */
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_FIN | T_FLAG_ACK);
		CHECK_EQ(o.ack, 1002);
	}
	CHECK_EQ(tcp_conn_state(A.conn), TCP_LAST_ACK);
	PR.ack += 1;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.closed, 1);
	teardown();
}

static void test_abort_in_readable(void)
{
	struct t_out o;

	setup();
	A.abort_on_readable = true;
	handshake();
	pseg(T_FLAG_ACK | T_FLAG_FIN, "data", 4);
	CHECK_EQ(A.readable, 1);
	CHECK_EQ(A.peer_closed, 0); /* conn gone: no more callbacks */
	CHECK_EQ(A.closed + A.reset, 0);
	if (t_take1(S, &o))
		CHECK(o.flags & T_FLAG_RST);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void test_simultaneous_close(void)
{
	struct t_out o;

	setup();
	handshake();
	tcp_close(A.conn);
	t_take1(S, &o);
	/* Peer's FIN crosses ours: it does not ACK our FIN yet. */
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_CLOSING);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_ACK);
		CHECK_EQ(o.ack, 1002);
	}
	PR.ack += 1;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.closed, 1);
	CHECK_EQ(ST()->timewait, 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void test_fin_wait_1_fin_ack(void)
{
	struct t_out o;

	setup();
	handshake();
	tcp_close(A.conn);
	t_take1(S, &o);
	PR.ack += 1; /* FIN+ACK acknowledging our FIN: straight to TW */
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.closed, 1);
	CHECK_EQ(ST()->timewait, 1);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, 1002);
	teardown();
}

static void tw4(struct net_stack_conf *c)
{
	c->max_timewait = 4;
}

static void test_timewait_bound(void)
{
	struct t_out o;

	setup_with(tw4);
	for (int i = 0; i < 6; i++) {
		A.accepted = 0;
		PR.sport = (uint16_t)(6000 + i);
		handshake();
		tcp_close(A.conn);
		t_take1(S, &o);
		PR.ack += 1;
		pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
		t_drain(S);
	}
	CHECK_EQ(ST()->timewait, 4);
	CHECK_EQ(ST()->timewait_recycled, 2);
	CHECK_EQ(A.closed, 6);
	CHECK_EQ(ST()->live_tcbs, 0);
	/* The recycled (oldest) tuple now gets a RST, the newest an ACK. */
	PR.sport = 6000;
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o))
		CHECK(o.flags & T_FLAG_RST);
	PR.sport = 6005;
	PR.seq -= 1;
	pseg(T_FLAG_FIN | T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o))
		CHECK_EQ(o.flags, T_FLAG_ACK);
	teardown();
}

/* ---- retransmission -------------------------------------------------- */

static void test_rto_backoff_karn(void)
{
	struct t_out o;
	uint64_t t0;
	uint32_t una;

	setup();
	handshake(); /* RTT sample 10 ms -> RTO 200 ms (floor) */
	una = PR.ack;
	tcp_send(A.conn, "abcdefgh", 8);
	t_take1(S, &o);
	t0 = T;
	CHECK_EQ(net_stack_next_timer_us(S, T), 200000);
	/* 200 ms, 400 ms, 800 ms: exponential backoff. */
	uint64_t at = t0;
	for (int i = 0; i < 3; i++) {
		uint64_t iv = 200000ull << i;

		net_stack_poll(S, at + iv - 1);
		CHECK_EQ(t_drain(S), 0);
		net_stack_poll(S, at + iv);
		if (t_take1(S, &o)) {
			CHECK_EQ(o.seq, una);
			CHECK_EQ(o.len, 8);
		}
		at += iv;
	}
	CHECK_EQ(ST()->tcp_retransmits, 3);
	/* ACK of the retransmitted data: Karn - no RTT sample, backoff
	 * kept: the next RTO is still 1.6 s. */
	T = at + 300000;
	PR.ack += 8;
	pseg(T_FLAG_ACK, NULL, 0);
	tcp_send(A.conn, "ijkl", 4);
	t_take1(S, &o);
	CHECK_EQ(net_stack_next_timer_us(S, T), 1600000);
	/* An ACK of never-retransmitted data gives a sample and resets the
	 * backoff. */
	T += 20000;
	PR.ack += 4;
	pseg(T_FLAG_ACK, NULL, 0);
	tcp_send(A.conn, "mnop", 4);
	t_take1(S, &o);
	CHECK_EQ(net_stack_next_timer_us(S, T), 200000);
	/* No ACK ever: after the retry limit the conn is reset. */
	for (int i = 0; i < 20 && A.reset == 0; i++) {
		T += 61000000;
		net_stack_poll(S, T);
		t_drain(S);
	}
	CHECK_EQ(A.reset, 1);
	CHECK_EQ(A.reset_err, ETIMEDOUT);
	CHECK_EQ(ST()->tcp_timeouts, 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

/* The peer's ACK of our SYN-ACK is lost, and so is its first data; our
 * SYN-ACK is retransmitted (lost too) and the peer's data retransmission
 * arrives 3.4 s after our first SYN-ACK, echoing that SYN-ACK's timestamp
 * (a trace of stack2_seq2000_fault with a kernel client). The 3.4 s are
 * the peer's back-off, not the path: taken as the first RTT sample they
 * made the RTO 10.2 s (3 x R, RFC 6298 2.2), and an echo lost once came
 * back 13.6 s, lost twice 34 s after the handshake, past the client's
 * 20 s. Now the ACK gives no sample (Karn) and the RTO starts at 3 s
 * (RFC 6298 5.7): the echo is retransmitted at +3 s and +9 s. */
static void send_ts(uint8_t flags, const void *data, uint32_t len,
		    uint32_t tsecr)
{
	pseg_ts(flags, data, len, true, tsecr);
}

static int count_echo(uint32_t seq, uint32_t len)
{
	struct t_out o[8];
	int n = t_take(S, o, 8), hits = 0;

	for (int i = 0; i < n; i++)
		if (o[i].seq == seq && o[i].len == len)
			hits++;
	return hits;
}

static void test_handshake_ack_lost_rto(void)
{
	static const char msg[] = "hello 1138\n";
	struct t_out o;
	uint64_t t0, end;
	uint32_t synack_ts, iss;
	int retx = 0;

	setup();
	A.echo = true;
	PR.seq = 1000;
	PR.tsval = 500;
	send_ts(T_FLAG_SYN, NULL, 0, 0);
	if (!t_take1(S, &o))
		goto out;
	t0 = T;
	synack_ts = o.tsval;
	iss = o.seq;
	PR.ack = iss + 1;
	/* The peer's ACK and data are lost; our SYN-ACK RTO (1 s, then 2 s)
	 * fires twice, both lost. */
	T = t0 + 1000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 1);
	T = t0 + 3000000;
	net_stack_poll(S, T);
	CHECK_EQ(t_drain(S), 1);
	/* The peer's data retransmission, echoing the first SYN-ACK. */
	T = t0 + 3400000;
	send_ts(T_FLAG_ACK | T_FLAG_PSH, msg, sizeof(msg) - 1, synack_ts);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(A.readable, 1);
	/* The echo leaves at once (lost on the way). */
	CHECK_EQ(count_echo(iss + 1, sizeof(msg) - 1), 1);
	CHECK_EQ(net_stack_next_timer_us(S, T), 3000000);
	/* Until the client's 20 s time-out: two retransmissions. */
	end = t0 + 20000000;
	while (T < end) {
		uint64_t d = net_stack_next_timer_us(S, T);

		if (d == UINT64_MAX || T + d >= end)
			break;
		T += d;
		net_stack_poll(S, T);
		retx += count_echo(iss + 1, sizeof(msg) - 1);
	}
	CHECK(retx >= 2);
out:
	teardown();
}

/* The SYN-ACK is lost once, the peer's ACK echoes the retransmitted one
 * (a SYN-ACK for its repeated SYN follows it): that sample is exact
 * (RFC 7323 4.1) and kept, the RTO is the 200 ms floor, not the 3 s
 * fallback. */
static void test_handshake_synack_lost_sample(void)
{
	struct t_out o;
	uint64_t t0;

	setup();
	A.echo = true;
	PR.seq = 1000;
	PR.tsval = 500;
	send_ts(T_FLAG_SYN, NULL, 0, 0);
	if (!t_take1(S, &o))
		goto out;
	t0 = T;
	PR.ack = o.seq + 1;
	T = t0 + 1000000;
	net_stack_poll(S, T);
	if (!t_take1(S, &o))
		goto out;
	/* The peer's repeated SYN crosses it: one more SYN-ACK, 2 ms
	 * later; the peer answers the first it gets, the timeout's. */
	T += 2000;
	PR.seq = 1000;
	send_ts(T_FLAG_SYN, NULL, 0, 0);
	CHECK_EQ(t_drain(S), 1);
	T += 2000;
	send_ts(T_FLAG_ACK | T_FLAG_PSH, "hi\n", 3, o.tsval);
	CHECK_EQ(count_echo(PR.ack, 3), 1);
	CHECK_EQ(net_stack_next_timer_us(S, T), 200000);
out:
	teardown();
}

/* The other orders the fault injector makes of a short echo's handshake:
 * the SYN duplicated, the data overtaking the third ACK, the third ACK
 * and the data duplicated after the echo left. One echo, its timer
 * armed, and the echo retransmitted when it is lost. */
static void test_handshake_reorder_dup_echo(void)
{
	static const char msg[] = "hello 7\n";
	struct t_out o;
	uint32_t iss, ack_seq, data_seq;

	setup();
	A.echo = true;
	PR.seq = 1000;
	PR.tsval = 500;
	send_ts(T_FLAG_SYN, NULL, 0, 0);
	if (!t_take1(S, &o))
		goto out;
	iss = o.seq;
	PR.ack = iss + 1;
	PR.seq = 1000; /* the SYN again (duplicate): SYN-ACK again */
	send_ts(T_FLAG_SYN, NULL, 0, 0);
	CHECK_EQ(t_drain(S), 1);
	T += 300;
	ack_seq = PR.seq;
	data_seq = PR.seq;
	/* The data first (the third ACK held back by reordering). */
	send_ts(T_FLAG_ACK | T_FLAG_PSH, msg, sizeof(msg) - 1, o.tsval);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(count_echo(iss + 1, sizeof(msg) - 1), 1);
	/* Then the late third ACK and a duplicate of the data: re-ACKs,
	 * never a second echo. */
	PR.seq = ack_seq;
	send_ts(T_FLAG_ACK, NULL, 0, o.tsval);
	PR.seq = data_seq;
	send_ts(T_FLAG_ACK | T_FLAG_PSH, msg, sizeof(msg) - 1, o.tsval);
	CHECK_EQ(count_echo(iss + 1, sizeof(msg) - 1), 0);
	CHECK_EQ(A.readable, 1);
	CHECK_EQ(ST()->live_tcbs, 1);
	/* The echo was lost: its retransmission timer runs. */
	uint64_t d = net_stack_next_timer_us(S, T);

	CHECK(d != UINT64_MAX && d <= 3000000);
	T += d;
	net_stack_poll(S, T);
	CHECK_EQ(count_echo(iss + 1, sizeof(msg) - 1), 1);
out:
	teardown();
}

static void test_fast_retransmit_newreno(void)
{
	static uint8_t d[20 * 1460];
	struct t_out o[32];
	uint32_t base;
	int n;

	setup();
	handshake();
	base = PR.ack;
	fill(d, sizeof(d), 5);
	CHECK_EQ(tcp_send(A.conn, d, sizeof(d)), (long)sizeof(d));
	CHECK_EQ(t_take(S, o, 32), 10); /* IW10 */
	/* Segment 1 arrives, segment 2 (base+1460) is lost. */
	PR.ack = base + 1460;
	pseg(T_FLAG_ACK, NULL, 0);
	n = t_take(S, o, 32); /* cwnd grew: new data */
	CHECK(n >= 1);
	{
		uint32_t hi = o[n - 1].seq + o[n - 1].len;

		/* RFC 3042 limited transmit: one new segment per each of
		 * the first two duplicate ACKs. */
		for (int i = 0; i < 2; i++) {
			pseg(T_FLAG_ACK, NULL, 0);
			if (t_take1(S, &o[0])) {
				CHECK_EQ(o[0].seq, hi);
				CHECK_EQ(o[0].len, 1460);
				hi += 1460;
			}
		}
	}
	CHECK_EQ(ST()->tcp_fast_retransmits, 0);
	CHECK_EQ(ST()->tcp_retransmits, 0);
	pseg(T_FLAG_ACK, NULL, 0); /* third duplicate */
	CHECK_EQ(ST()->tcp_fast_retransmits, 1);
	if (t_take1(S, &o[0])) {
		CHECK_EQ(o[0].seq, base + 1460);
		CHECK_EQ(o[0].len, 1460);
		CHECK(memcmp(o[0].data, d + 1460, 1460) == 0);
	}
	/* Further dupacks inflate cwnd and release new segments. */
	for (int i = 0; i < 6; i++)
		pseg(T_FLAG_ACK, NULL, 0);
	n = t_take(S, o, 32);
	CHECK(n >= 1);
	/* Partial ACK (up to segment 5): segment 5 retransmitted at once. */
	PR.ack = base + 4 * 1460;
	pseg(T_FLAG_ACK, NULL, 0);
	n = t_take(S, o, 32);
	CHECK(n >= 1);
	if (n >= 1)
		CHECK_EQ(o[0].seq, base + 4 * 1460);
	CHECK_EQ(ST()->tcp_fast_retransmits, 1); /* one loss episode */
	CHECK(ST()->tcp_retransmits >= 2);
	/* ACK everything sent until all is through: recovery ends and
	 * nothing stays outstanding. */
	{
		uint32_t hi = base + 4 * 1460 + 1460;

		for (int round = 0; round < 50; round++) {
			for (int i = 0; i < n; i++)
				if ((int32_t)(o[i].seq + o[i].len - hi) > 0)
					hi = o[i].seq + o[i].len;
			PR.ack = hi;
			pseg(T_FLAG_ACK, NULL, 0);
			n = t_take(S, o, 32);
			if (n == 0)
				break;
		}
		CHECK_EQ(hi, base + sizeof(d));
	}
	CHECK_EQ(tcp_send_space(A.conn), 65536);
	CHECK(net_stack_next_timer_us(S, T) > 29000000);
	teardown();
}

static void test_ooo_reassembly(void)
{
	uint8_t d[4000], r[4000];
	struct t_out o;
	uint32_t s0;

	setup();
	handshake();
	fill(d, sizeof(d), 11);
	s0 = PR.seq;
	/* 2nd and 3rd before the 1st; 3rd overlaps the 2nd. */
	PR.seq = s0 + 1000;
	pseg(T_FLAG_ACK, d + 1000, 1000);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, s0); /* immediate duplicate ACK */
	PR.seq = s0 + 1500;
	pseg(T_FLAG_ACK, d + 1500, 1500);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, s0);
	CHECK_EQ(A.readable, 0);
	CHECK_EQ(ST()->tcp_ooo_queued, 2);
	PR.seq = s0;
	pseg(T_FLAG_ACK, d, 1000);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, s0 + 3000); /* hole filled: ACK at once */
	CHECK_EQ(A.readable, 1);
	CHECK_EQ(tcp_recv(A.conn, r, sizeof(r)), 3000);
	CHECK(memcmp(r, d, 3000) == 0);
	teardown();
}

static void test_ooo_bound(void)
{
	uint8_t d[100];

	setup();
	handshake();
	memset(d, 7, sizeof(d));
	uint32_t s0 = PR.seq;
	for (int i = 0; i < 10; i++) {
		PR.seq = s0 + 200 * (uint32_t)(i + 1);
		pseg(T_FLAG_ACK, d, 100);
	}
	t_drain(S);
	CHECK_EQ(ST()->tcp_ooo_queued, 8); /* ooo_max_segs */
	CHECK_EQ(ST()->drops[NET_DROP_OOO_FULL], 2);
	teardown();
}

static void big_rcvbuf(struct net_stack_conf *c)
{
	c->rcvbuf = 256 * 1024;
}

static void test_window_scaling(void)
{
	static uint8_t d[5000];
	struct t_out o[8];
	struct t_seg s;
	int n;

	setup_with(big_rcvbuf);
	t_seg_init(&s);
	s.seq = 1000;
	s.flags = T_FLAG_SYN;
	s.mss = 1460;
	s.wscale = 7;
	s.wnd = 16; /* SYN windows are never scaled */
	t_send(S, P, &s, T);
	if (t_take1(S, o)) {
		CHECK_EQ(o[0].wscale, 3); /* 256 KiB >> 3 fits 16 bits */
		CHECK_EQ(o[0].wnd, 65535);
	}
	PR.seq = 1001;
	PR.ack = o[0].seq + 1;
	PR.wnd = 16; /* 16 << 7 = 2048 bytes */
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(tcp_send(A.conn, d, sizeof(d)), 5000);
	n = t_take(S, o, 8);
	CHECK_EQ(n, 1); /* 1460 fits 2048; the 588 rest waits (SWS) */
	if (n >= 1)
		CHECK_EQ(o[0].len, 1460);
	/* Our window is scaled by 3. */
	pseg(T_FLAG_ACK, d, 1000);
	pseg(T_FLAG_ACK, d, 1000);
	n = t_take(S, o, 8);
	CHECK(n >= 1);
	if (n >= 1)
		CHECK_EQ(o[n - 1].wnd, (256 * 1024 - 2000) >> 3);
	teardown();
}

static void test_zero_window_persist(void)
{
	struct t_out o;
	uint64_t iv;

	setup();
	handshake();
	PR.wnd = 0;
	pseg(T_FLAG_ACK, NULL, 0); /* window closes */
	CHECK_EQ(tcp_send(A.conn, "0123456789", 10), 10);
	CHECK_EQ(t_drain(S), 0);
	iv = net_stack_next_timer_us(S, T);
	CHECK_EQ(iv, 200000);
	net_stack_poll(S, T + iv);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.len, 1); /* one octet probe */
		CHECK_EQ(o.seq, PR.ack);
		CHECK_EQ(o.data[0], '0');
	}
	T += iv;
	/* The peer still has no room: ACK without the probe byte. */
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(net_stack_next_timer_us(S, T), 400000); /* backoff */
	net_stack_poll(S, T + 400000);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.len, 1);
		CHECK_EQ(o.seq, PR.ack);
	}
	T += 400000;
	CHECK_EQ(ST()->tcp_zero_window_probes, 2);
	CHECK_EQ(A.reset, 0);
	/* Window opens and acknowledges the probe: the rest flows. */
	PR.wnd = 65535;
	PR.ack += 1;
	pseg(T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.seq, PR.ack);
		CHECK_EQ(o.len, 9);
		CHECK(memcmp(o.data, "123456789", 9) == 0);
	}
	teardown();
}

/* Echo under loss (stack_echo50_fault): the peer's window shrank below
 * one MSS while nothing of ours was in flight, and the ACK that reopened
 * it was lost. Sender SWS avoidance holds the data back, so without a
 * timer both ends wait forever (RFC 1122 4.2.3.4 asks for an override
 * timeout): the persist timer must send what the window allows. */
static void test_small_window_override(void)
{
	static uint8_t d[5000];
	struct t_out o[8];
	uint64_t iv;
	int n;

	setup();
	handshake();
	fill(d, sizeof(d), 7);
	PR.wnd = 1024; /* open, but below our MSS of 1460 */
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(tcp_send(A.conn, d, sizeof(d)), 5000);
	CHECK_EQ(t_drain(S), 0); /* SWS: no 1024-byte runt */
	iv = net_stack_next_timer_us(S, T);
	CHECK_EQ(iv, 200000); /* a timer runs: not only the ARP expiry */
	net_stack_poll(S, T + iv);
	T += iv;
	if (t_take1(S, o)) {
		CHECK_EQ(o[0].seq, PR.ack);
		CHECK_EQ(o[0].len, 1024); /* what the window allows */
		CHECK(memcmp(o[0].data, d, 1024) == 0);
	}
	/* Acknowledged, but the window is still small: again after the
	 * timeout, not at once. */
	PR.ack += 1024;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(t_drain(S), 0);
	iv = net_stack_next_timer_us(S, T);
	CHECK_EQ(iv, 200000);
	net_stack_poll(S, T + iv);
	T += iv;
	if (t_take1(S, o)) {
		CHECK_EQ(o[0].seq, PR.ack);
		CHECK_EQ(o[0].len, 1024);
		CHECK(memcmp(o[0].data, d + 1024, 1024) == 0);
	}
	/* The window reopens with the ACK: the rest flows at once. */
	PR.ack += 1024;
	PR.wnd = 65535;
	pseg(T_FLAG_ACK, NULL, 0);
	n = t_take(S, o, 8);
	CHECK_EQ(n, 3);
	for (int i = 0; i < n; i++) {
		uint32_t off = o[i].seq - (PR.ack - 2048);

		CHECK_EQ(off, 2048 + (uint32_t)i * 1460);
		CHECK_EQ(o[i].len, i < 2 ? 1460 : 2952 - 2 * 1460);
		CHECK(memcmp(o[i].data, d + off, o[i].len) == 0);
	}
	PR.ack += 2952;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(t_drain(S), 0);
	CHECK(net_stack_next_timer_us(S, T) > 29000000); /* ARP only */
	CHECK_EQ(A.reset, 0);
	teardown();
}

static void test_receiver_zero_window(void)
{
	static uint8_t d[70000];
	struct t_out o;
	uint32_t got = 0;

	setup();
	handshake();
	/* Fill our 65535-byte receive buffer without reading. */
	while (got < 65535) {
		uint32_t n = RTE_MIN(1460u, 65535 - got);

		pseg(T_FLAG_ACK, d, n);
		got += n;
	}
	t_drain(S);
	pseg(T_FLAG_ACK, d, 1); /* beyond the window: dropped, ACKed */
	if (t_take1(S, &o)) {
		CHECK_EQ(o.wnd, 0);
		CHECK_EQ(o.ack, 1001 + 65535);
	}
	CHECK_EQ(tcp_recv_avail(A.conn), 65535);
	/* RFC 9293 3.8.6.2.2: reading a little does not reopen a closed
	 * window (receiver SWS avoidance). */
	CHECK_EQ(tcp_recv(A.conn, d, 100), 100);
	CHECK_EQ(t_drain(S), 0);
	pseg(T_FLAG_ACK, d, 1); /* still no room */
	if (t_take1(S, &o))
		CHECK_EQ(o.wnd, 0);
	/* Reading reopens the window with an update. */
	CHECK_EQ(tcp_recv(A.conn, d, 29900), 29900);
	if (t_take1(S, &o))
		CHECK_EQ(o.wnd, 30000);
	teardown();
}

/* ---- SYN cookies ----------------------------------------------------- */

static void backlog2(struct net_stack_conf *c)
{
	c->syn_backlog = 2;
}

static void test_syncookie_roundtrip(void)
{
	struct t_out o;
	struct t_seg s;

	setup_with(backlog2);
	t_seg_init(&s);
	s.flags = T_FLAG_SYN;
	s.mss = 1460;
	s.wscale = 7;
	s.ts = true;
	for (int i = 0; i < 2; i++) {
		s.sport = (uint16_t)(7000 + i);
		s.seq = 100;
		t_send(S, P, &s, T);
	}
	CHECK_EQ(ST()->syn_rcvd, 2);
	CHECK_EQ(t_drain(S), 2);
	/* Backlog full: stateless cookie SYN-ACK, no TCB. */
	s.sport = 7100;
	s.seq = 5000;
	t_send(S, P, &s, T);
	CHECK_EQ(ST()->syncookies_sent, 1);
	CHECK_EQ(ST()->live_tcbs, 2);
	if (!t_take1(S, &o))
		goto out;
	CHECK_EQ(o.flags, T_FLAG_SYN | T_FLAG_ACK);
	CHECK_EQ(o.ack, 5001);
	CHECK_EQ(o.mss, 1460);
	CHECK_EQ(o.wscale, -1); /* documented loss: no wscale/timestamps */
	CHECK(!o.ts);
	/* A forged ACK fails. */
	PR.sport = 7100;
	PR.seq = 5001;
	PR.ack = o.seq + 2;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(ST()->syncookies_bad, 1);
	CHECK_EQ(A.accepted, 0);
	{
		struct t_out r;

		if (t_take1(S, &r))
			CHECK(r.flags & T_FLAG_RST);
	}
	/* The right ACK (with data) creates the connection. */
	PR.ack = o.seq + 1;
	pseg(T_FLAG_ACK | T_FLAG_PSH, "HELO x\r\n", 8);
	CHECK_EQ(ST()->syncookies_ok, 1);
	CHECK_EQ(A.accepted, 1);
	CHECK_EQ(ST()->live_tcbs, 3);
	if (A.conn != NULL) {
		CHECK_EQ(tcp_conn_state(A.conn), TCP_ESTABLISHED);
		CHECK_EQ(tcp_conn_mss(A.conn), 1460);
		CHECK_EQ(tcp_recv_avail(A.conn), 8);
		CHECK_EQ(tcp_send(A.conn, "250 ok\r\n", 8), 8);
		if (t_take1(S, &o)) {
			CHECK_EQ(o.seq, PR.ack);
			CHECK_EQ(o.ack, 5001 + 8);
			CHECK_EQ(o.len, 8);
		}
	}
out:
	teardown();
}

static void test_bad_checksum_dropped(void)
{
	struct t_seg s;

	setup();
	t_seg_init(&s);
	s.flags = T_FLAG_SYN;
	s.seq = 1;
	s.bad_csum = true;
	t_send(S, P, &s, T);
	CHECK_EQ(t_drain(S), 0);
	CHECK_EQ(ST()->drops[NET_DROP_TCP_CSUM], 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void test_destroy_returns_mbufs(void)
{
	static uint8_t d[20000];
	struct tcp_conn *c;

	setup();
	handshake();
	/* Unacked send data, in-order and out-of-order receive data, queued
	 * TX frames, a frame waiting on ARP for an unknown next hop. */
	tcp_send(A.conn, d, sizeof(d));
	pseg(T_FLAG_ACK, d, 1000);
	PR.seq += 3000;
	pseg(T_FLAG_ACK, d, 1000);
	tcp_connect(S, rte_cpu_to_be_32(T_OFF_IP), 25, &t_cb, &A, &c);
	CHECK(ST()->mbufs_held > 10);
	CHECK(rte_mempool_avail_count(P) < P->size);
	teardown(); /* asserts the pool is full again */
}

static void test_close_syn_sent(void)
{
	struct tcp_conn *c;
	struct t_out o;

	setup();
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o);
	CHECK_EQ(tcp_close(c), 0);
	CHECK_EQ(A.closed, 0); /* not re-entered from inside tcp_close */
	CHECK_EQ(tcp_conn_state(c), TCP_CLOSED);
	net_stack_poll(S, T);
	CHECK_EQ(A.closed, 1);
	CHECK_EQ(ST()->live_tcbs, 0);
	/* The late SYN-ACK finds nothing: RST. */
	PR.sport = 80;
	PR.dport = o.sport;
	PR.seq = 1;
	PR.ack = o.seq + 1;
	pseg(T_FLAG_SYN | T_FLAG_ACK, NULL, 0);
	if (t_take1(S, &o)) {
		CHECK_EQ(o.flags, T_FLAG_RST);
		CHECK_EQ(o.seq, PR.ack);
	}
	teardown();
}

static void test_fin_wait_2_timeout(void)
{
	struct t_out o;

	setup();
	handshake();
	tcp_close(A.conn);
	t_take1(S, &o);
	PR.ack += 1;
	pseg(T_FLAG_ACK, NULL, 0);
	CHECK_EQ(tcp_conn_state(A.conn), TCP_FIN_WAIT_2);
	/* Data from the peer keeps the half-closed connection alive. */
	T += 30000000;
	net_stack_poll(S, T);
	pseg(T_FLAG_ACK, "more", 4);
	net_stack_poll(S, T + 60000000 - 1);
	CHECK_EQ(A.reset, 0);
	CHECK_EQ(tcp_recv_avail(A.conn), 4);
	net_stack_poll(S, T + 60000000);
	CHECK_EQ(A.reset, 1);
	CHECK_EQ(A.reset_err, ETIMEDOUT);
	CHECK_EQ(ST()->live_tcbs, 0);
	teardown();
}

static void secret_b(struct net_stack_conf *c)
{
	c->secret[0] ^= 0xff;
}

static void test_isn_keyed(void)
{
	struct rte_mempool *p2 = t_pool(511), *p3 = t_pool(511);
	struct net_stack *s2 = t_stack(p2, NULL), *s3 = t_stack(p3, secret_b);
	struct tcp_conn *c;
	struct t_out o1, o2, o3;

	setup();
	/* Same clock, same 4-tuple: same secret gives the same ISN, another
	 * secret another one (RFC 6528: F(4-tuple, secret) + timer). */
	t_learn_peer(S, T);
	t_learn_peer(s2, T);
	t_learn_peer(s3, T);
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	tcp_connect(s2, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	tcp_connect(s3, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o1);
	t_take1(s2, &o2);
	t_take1(s3, &o3);
	CHECK_EQ(o1.seq, o2.seq);
	CHECK(o1.seq != o3.seq);
	/* Another port, another ISN. */
	tcp_connect(S, rte_cpu_to_be_32(T_PEER_IP), 80, &t_cb, &A, &c);
	t_take1(S, &o2);
	CHECK(o1.seq + 1 != o2.seq && o1.seq != o2.seq);
	t_destroy(s2, p2);
	t_destroy(s3, p3);
	teardown();
}

/* Split a built frame after split bytes into a two-segment chain. */
static struct rte_mbuf *chain_split(struct rte_mbuf *m, uint32_t split)
{
	struct rte_mbuf *t = rte_pktmbuf_alloc(P);
	uint32_t rest = m->data_len - split;

	memcpy(rte_pktmbuf_append(t, (uint16_t)rest),
	       rte_pktmbuf_mtod_offset(m, void *, split), rest);
	rte_pktmbuf_trim(m, (uint16_t)rest);
	CHECK_EQ(rte_pktmbuf_chain(m, t), 0);
	return m;
}

static void test_chained_mbufs(void)
{
	uint8_t d[2000], r[2000];
	struct t_seg s;
	struct t_out o;

	setup();
	handshake();
	fill(d, sizeof(d), 21);
	/* Out of order first (linearized into the queue), then in order;
	 * both arrive as chains split inside the payload. */
	t_seg_init(&s);
	s.sport = PR.sport;
	s.seq = PR.seq + 1000;
	s.ack = PR.ack;
	s.flags = T_FLAG_ACK;
	s.data = d + 1000;
	s.len = 1000;
	t_inject(S, chain_split(t_build_tcp(P, &s), T_HDRS + 300), T);
	t_drain(S);
	s.seq = PR.seq;
	s.data = d;
	t_inject(S, chain_split(t_build_tcp(P, &s), T_HDRS + 10), T);
	if (t_take1(S, &o))
		CHECK_EQ(o.ack, PR.seq + 2000);
	CHECK_EQ(tcp_recv_avail(A.conn), 2000);
	CHECK_EQ(tcp_recv(A.conn, r, sizeof(r)), 2000);
	CHECK(memcmp(r, d, 2000) == 0);
	CHECK_EQ(ST()->mbufs_held, 0);
	teardown();
}

static void test_conn_state_bytes(void)
{
	/* Target for the benchmark: <= 2 KiB per idle connection. */
	CHECK(net_stack_conn_state_bytes() <= 2048);
	CHECK(net_stack_conn_state_bytes() >= 200);
	printf("  conn state: %zu bytes\n", net_stack_conn_state_bytes());
}

int main(void)
{
#define C(x)                                                                   \
	{                                                                      \
#x, x                                                          \
	}
	static const struct {
		const char *name;
		t_case_fn fn;
	} cases[] = {
		C(test_passive_open),
		C(test_passive_refused),
		C(test_active_open),
		C(test_active_refused),
		C(test_simultaneous_open),
		C(test_synack_retransmit_and_giveup),
		C(test_rst_no_connection),
		C(test_rst_exact_resets),
		C(test_challenge_ack_rst),
		C(test_challenge_ack_syn),
		C(test_data_delayed_ack),
		C(test_send_segments),
		C(test_recv_chain_zero_copy),
		C(test_backpressure_writable),
		C(test_active_close_time_wait),
		C(test_passive_close_last_ack),
		C(test_close_in_callback),
		C(test_abort_in_readable),
		C(test_simultaneous_close),
		C(test_fin_wait_1_fin_ack),
		C(test_timewait_bound),
		C(test_rto_backoff_karn),
		C(test_handshake_ack_lost_rto),
		C(test_handshake_synack_lost_sample),
		C(test_handshake_reorder_dup_echo),
		C(test_fast_retransmit_newreno),
		C(test_ooo_reassembly),
		C(test_ooo_bound),
		C(test_window_scaling),
		C(test_zero_window_persist),
		C(test_small_window_override),
		C(test_receiver_zero_window),
		C(test_syncookie_roundtrip),
		C(test_bad_checksum_dropped),
		C(test_destroy_returns_mbufs),
		C(test_close_syn_sent),
		C(test_fin_wait_2_timeout),
		C(test_isn_keyed),
		C(test_conn_state_bytes),
		C(test_chained_mbufs),
	};
	const char *names[RTE_DIM(cases)];
	t_case_fn fns[RTE_DIM(cases)];

	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		names[i] = cases[i].name;
		fns[i] = cases[i].fn;
	}
#ifdef T_FAMILY6
	t_v6 = true;
	return t_run("net_tcp6", names, fns, (int)RTE_DIM(cases));
#else
	return t_run("net_tcp", names, fns, (int)RTE_DIM(cases));
#endif
}
