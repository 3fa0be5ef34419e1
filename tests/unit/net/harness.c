/*
 * harness.c - see harness.h. Builds frames with correct checksums (unless
 * asked not to) and parses/validates what the stack emits.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "harness.h"

int t_failures;
bool t_v6;
const char *t_current = "";

const struct rte_ether_addr t_our_mac = {{0x02, 0, 0, 0, 0, 0x01}};
const struct rte_ether_addr t_peer_mac = {{0x02, 0, 0, 0, 0, 0x02}};
const struct rte_ether_addr t_gw_mac = {{0x02, 0, 0, 0, 0, 0xfe}};

const struct net_addr t_our_ip6 = {
	{0xfd, 0, 0x6d, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
const struct net_addr t_peer_ip6 = {
	{0xfd, 0, 0x6d, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};
const struct net_addr t_off_ip6 = {
	{0xfd, 0, 0x6d, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}};
const struct net_addr t_gw_ip6 = {
	{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe}};

int t_connect(struct net_stack *st, rte_be32_t ip, uint16_t port,
	      const struct tcp_callbacks *cb, void *ctx,
	      struct tcp_conn **out)
{
	if (!t_v6)
		return tcp_connect(st, ip, port, cb, ctx, out);
	return tcp_connect6(st,
			    rte_be_to_cpu_32(ip) == T_OFF_IP ? &t_off_ip6
							     : &t_peer_ip6,
			    port, cb, ctx, out);
}

void t_conf_ip6(struct net_stack_conf *c)
{
	c->ip6 = t_our_ip6;
	c->ip6_prefixlen = 64;
	c->dad_transmits = 0;
	c->mld_reports = false; /* the MLD cases turn it on */
}

void t_init_eal(void)
{
	static bool done;
	char *argv[] = {
		"test", "--no-huge", "--no-pci", "--no-shconf",	      "-m",
		"256",	"-l",	     "0",	 "--log-level=error", NULL};

	if (done)
		return;
	if (rte_eal_init(9, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		exit(1);
	}
	done = true;
}

struct rte_mempool *t_pool(unsigned int n)
{
	static int seq;
	char name[32];
	struct rte_mempool *mp;

	snprintf(name, sizeof(name), "tpool%d", seq++);
	mp = rte_pktmbuf_pool_create(name, n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				     SOCKET_ID_ANY);
	if (mp == NULL) {
		fprintf(stderr, "pool create failed\n");
		exit(1);
	}
	return mp;
}

struct net_stack *t_stack(struct rte_mempool *pool,
			  void (*tweak)(struct net_stack_conf *c))
{
	struct net_stack_conf c;
	struct net_stack *st;

	net_stack_conf_defaults(&c);
	c.mac = t_our_mac;
	c.ip = rte_cpu_to_be_32(T_OUR_IP);
	c.netmask = rte_cpu_to_be_32(0xffffff00u);
	c.gateway = rte_cpu_to_be_32(T_GW_IP);
	c.pool = pool;
	c.max_conns = 64;
	c.syn_backlog = 16;
	c.max_timewait = 16;
	c.arp_entries = 8;
	c.arp_timeout_ms = 30000;
	c.rcvbuf = 65535;
	c.sndbuf = 65536;
	c.ooo_max_segs = 8;
	c.txq_size = 512;
	c.timewait_ms = 60000;
	c.delack_ms = 40;
	c.eph_lo = 40000;
	c.eph_hi = 40009;
	for (int i = 0; i < 32; i++)
		c.secret[i] = (uint8_t)(i * 7 + 3);
	if (t_v6) {
		t_conf_ip6(&c);
		c.mtu = 1520;
		c.ip6_gateway = t_gw_ip6;
	}
	if (tweak != NULL)
		tweak(&c);
	st = net_stack_create(&c);
	if (st == NULL) {
		fprintf(stderr, "net_stack_create failed\n");
		exit(1);
	}
	return st;
}

static struct rte_mbuf *t_alloc(struct rte_mempool *pool, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	if (m == NULL || rte_pktmbuf_append(m, (uint16_t)len) == NULL) {
		fprintf(stderr, "test mbuf alloc failed\n");
		exit(1);
	}
	memset(rte_pktmbuf_mtod(m, void *), 0, len);
	m->hash.usr = 0; /* as the lcore loop does for local frames */
	return m;
}

void t_learn_peer(struct net_stack *st, uint64_t now)
{
	const struct net_stats *ns = net_stack_stats(st);
	struct rte_mempool *pool = NULL;
	struct rte_mbuf *m;
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *ah;
	struct t_out o;

	if (t_v6) {
		t_learn_peer6(st, now);
		return;
	}
	/* Borrow the pool the stack uses: allocate from any frame pool. */
	(void)ns;
	pool = rte_mempool_lookup("tpool_arp");
	if (pool == NULL)
		pool = rte_pktmbuf_pool_create("tpool_arp", 255, 0, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE,
					       SOCKET_ID_ANY);
	m = t_alloc(pool, sizeof(*eh) + sizeof(*ah));
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(&eh->dst_addr, 0xff, 6);
	eh->src_addr = t_peer_mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	ah = (struct rte_arp_hdr *)(eh + 1);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = 6;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	ah->arp_data.arp_sha = t_peer_mac;
	ah->arp_data.arp_sip = rte_cpu_to_be_32(T_PEER_IP);
	ah->arp_data.arp_tip = rte_cpu_to_be_32(T_OUR_IP);
	t_inject(st, m, now);
	if (t_take1(st, &o))
		CHECK_EQ(o.arp_op, RTE_ARP_OP_REPLY);
}

void t_destroy(struct net_stack *st, struct rte_mempool *pool)
{
	net_stack_destroy(st);
	CHECK_EQ(rte_mempool_avail_count(pool), pool->size);
	rte_mempool_free(pool);
}

void t_seg_init(struct t_seg *s)
{
	memset(s, 0, sizeof(*s));
	s->mss = -1;
	s->wscale = -1;
	s->wnd = 65535;
	s->dport = 25;
	s->sport = 5555;
	s->v6 = t_v6;
}

/* TCP header, options and payload of s at th (checksum left 0). */
static void t_fill_tcp(struct rte_tcp_hdr *th, const struct t_seg *s,
		       const uint8_t *opts, uint32_t ol)
{
	th->src_port = rte_cpu_to_be_16(s->sport);
	th->dst_port = rte_cpu_to_be_16(s->dport);
	th->sent_seq = rte_cpu_to_be_32(s->seq);
	th->recv_ack = rte_cpu_to_be_32(s->ack);
	th->data_off = (uint8_t)(((sizeof(*th) + ol) / 4) << 4);
	th->tcp_flags = s->flags;
	th->rx_win = rte_cpu_to_be_16(s->wnd);
	th->cksum = 0;
	th->tcp_urp = 0;
	memcpy(th + 1, opts, ol);
	if (s->len > 0)
		memcpy((uint8_t *)(th + 1) + ol, s->data, s->len);
}

struct rte_mbuf *t_build_tcp(struct rte_mempool *pool, const struct t_seg *s)
{
	uint8_t opts[40];
	uint32_t ol = 0, tlen;
	struct rte_mbuf *m;
	struct rte_ether_hdr *eh;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;

	if (s->mss >= 0) {
		opts[ol++] = 2;
		opts[ol++] = 4;
		opts[ol++] = (uint8_t)(s->mss >> 8);
		opts[ol++] = (uint8_t)s->mss;
	}
	if (s->wscale >= 0) {
		opts[ol++] = 1;
		opts[ol++] = 3;
		opts[ol++] = 3;
		opts[ol++] = (uint8_t)s->wscale;
	}
	if (s->ts) {
		uint32_t v = rte_cpu_to_be_32(s->tsval);
		uint32_t e = rte_cpu_to_be_32(s->tsecr);

		opts[ol++] = 1;
		opts[ol++] = 1;
		opts[ol++] = 8;
		opts[ol++] = 10;
		memcpy(&opts[ol], &v, 4);
		memcpy(&opts[ol + 4], &e, 4);
		ol += 8;
	}
	if (s->v6) {
		uint8_t l4[2048];
		uint32_t l4len = sizeof(*th) + ol + s->len;

		t_fill_tcp((struct rte_tcp_hdr *)l4, s, opts, ol);
		m = t_build_ip6(pool, s->src6 ? s->src6 : &t_peer_ip6,
				&t_our_ip6, 64, IPPROTO_TCP, NULL, 0,
				IPPROTO_TCP, l4, l4len);
		if (s->bad_csum) {
			th = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *,
						     14 + 40);
			th->cksum ^= 0x5a5a;
		}
		return m;
	}
	tlen = sizeof(*ip) + sizeof(*th) + ol + s->len;
	m = t_alloc(pool, sizeof(*eh) + tlen);
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eh->dst_addr = t_our_mac;
	eh->src_addr = t_peer_mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)tlen);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(s->src_ip ? s->src_ip : T_PEER_IP);
	ip->dst_addr = rte_cpu_to_be_32(s->dst_ip ? s->dst_ip : T_OUR_IP);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th = (struct rte_tcp_hdr *)(ip + 1);
	t_fill_tcp(th, s, opts, ol);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	if (s->bad_csum)
		th->cksum ^= 0x5a5a;
	return m;
}

struct rte_mbuf *t_build_ip6(struct rte_mempool *pool,
			     const struct net_addr *src,
			     const struct net_addr *dst, uint8_t hlim,
			     uint8_t first_nh, const uint8_t *ext,
			     uint32_t ext_len, uint8_t l4proto, uint8_t *l4,
			     uint32_t l4len)
{
	struct rte_mbuf *m;
	struct rte_ether_hdr *eh;
	struct rte_ipv6_hdr *ip;
	uint8_t *p;
	uint32_t sum;
	uint8_t *ck = NULL;

	m = t_alloc(pool, sizeof(*eh) + sizeof(*ip) + ext_len + l4len);
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (dst->b[0] == 0xff) {
		uint8_t mc[6] = {0x33, 0x33, dst->b[12], dst->b[13], dst->b[14],
				 dst->b[15]};

		memcpy(eh->dst_addr.addr_bytes, mc, 6);
	} else {
		eh->dst_addr = t_our_mac;
	}
	eh->src_addr = t_peer_mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eh + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)(ext_len + l4len));
	ip->proto = ext_len > 0 ? first_nh : l4proto;
	ip->hop_limits = hlim;
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	p = (uint8_t *)(ip + 1);
	if (ext_len > 0)
		memcpy(p, ext, ext_len);
	if (l4proto == IPPROTO_TCP && l4len >= 20)
		ck = l4 + 16;
	else if (l4proto == IPPROTO_ICMPV6 && l4len >= 4)
		ck = l4 + 2;
	if (ck != NULL) {
		uint16_t v;

		ck[0] = ck[1] = 0;
		sum = rte_raw_cksum(src, 16) + rte_raw_cksum(dst, 16) +
		      rte_cpu_to_be_16((uint16_t)l4len) +
		      rte_cpu_to_be_16(l4proto) + rte_raw_cksum(l4, l4len);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		v = (uint16_t)~sum;
		memcpy(ck, &v, 2);
	}
	if (l4len > 0)
		memcpy(p + ext_len, l4, l4len);
	return m;
}

void t_learn_peer6(struct net_stack *st, uint64_t now)
{
	struct rte_mempool *pool = rte_mempool_lookup("tpool_arp");
	uint8_t ns[32];
	struct net_addr sn = {{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff,
			       t_our_ip6.b[13], t_our_ip6.b[14],
			       t_our_ip6.b[15]}};
	struct t_out o;

	if (pool == NULL)
		pool = rte_pktmbuf_pool_create("tpool_arp", 255, 0, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE,
					       SOCKET_ID_ANY);
	memset(ns, 0, sizeof(ns));
	ns[0] = 135;
	memcpy(&ns[8], &t_our_ip6, 16);
	ns[24] = 1; /* source link-layer address */
	ns[25] = 1;
	memcpy(&ns[26], t_peer_mac.addr_bytes, 6);
	t_inject(st,
		 t_build_ip6(pool, &t_peer_ip6, &sn, 255, 0, NULL, 0,
			     IPPROTO_ICMPV6, ns, sizeof(ns)),
		 now);
	if (t_take1(st, &o)) {
		CHECK(o.v6);
		CHECK_EQ(o.icmp_type, 136);
	}
}

void t_inject(struct net_stack *st, struct rte_mbuf *m, uint64_t now)
{
	net_stack_input(st, &m, 1, now);
}

void t_send(struct net_stack *st, struct rte_mempool *pool,
	    const struct t_seg *s, uint64_t now)
{
	t_inject(st, t_build_tcp(pool, s), now);
}

static void t_parse_tcp(const struct rte_tcp_hdr *th, uint32_t l4len,
			struct t_out *o);

static bool t_cksum6_ok(const struct rte_ipv6_hdr *ip6, const uint8_t *l4,
			uint32_t l4len)
{
	uint32_t sum = rte_raw_cksum(ip6->src_addr, 32) +
		       rte_cpu_to_be_16((uint16_t)l4len) +
		       rte_cpu_to_be_16(ip6->proto) + rte_raw_cksum(l4, l4len);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

void t_parse(struct rte_mbuf *m, struct t_out *o)
{
	const struct rte_ether_hdr *eh;

	memset(o, 0, sizeof(*o));
	o->mss = -1;
	o->wscale = -1;
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	o->dst = eh->dst_addr;
	o->src = eh->src_addr;
	o->ether_type = rte_be_to_cpu_16(eh->ether_type);
	if (o->ether_type == RTE_ETHER_TYPE_ARP) {
		const struct rte_arp_hdr *ah = (const void *)(eh + 1);

		o->arp_op = rte_be_to_cpu_16(ah->arp_opcode);
		o->arp_sip = rte_be_to_cpu_32(ah->arp_data.arp_sip);
		o->arp_tip = rte_be_to_cpu_32(ah->arp_data.arp_tip);
		return;
	}
	if (o->ether_type == RTE_ETHER_TYPE_IPV6) {
		const struct rte_ipv6_hdr *ip6 = (const void *)(eh + 1);
		const uint8_t *l4 = (const uint8_t *)(ip6 + 1);
		uint32_t l4len = rte_be_to_cpu_16(ip6->payload_len);

		o->v6 = true;
		memcpy(&o->src6, ip6->src_addr, 16);
		memcpy(&o->dst6, ip6->dst_addr, 16);
		o->hop_limit = ip6->hop_limits;
		o->flow = rte_be_to_cpu_32(ip6->vtc_flow) & 0xfffff;
		o->proto = ip6->proto;
		o->ip_csum_ok = true;
		o->l4_csum_ok = t_cksum6_ok(ip6, l4, l4len);
		if (o->proto == IPPROTO_ICMPV6) {
			o->icmp_type = l4[0];
			o->icmp_code = l4[1];
			o->icmp_param = l4len >= 8 ? ((uint32_t)l4[4] << 24) |
							     ((uint32_t)l4[5] << 16) |
							     ((uint32_t)l4[6] << 8) | l4[7]
						   : 0;
			o->len = l4len >= 8 ? l4len - 8 : 0;
			memcpy(o->data, l4 + 8,
			       o->len < sizeof(o->data) ? o->len
							: sizeof(o->data));
			return;
		}
		if (o->proto == IPPROTO_TCP)
			t_parse_tcp((const struct rte_tcp_hdr *)l4, l4len, o);
		return;
	}
	if (o->ether_type != RTE_ETHER_TYPE_IPV4)
		return;
	const struct rte_ipv4_hdr *ip = (const void *)(eh + 1);
	uint32_t hl = (ip->version_ihl & 0xf) * 4u;
	uint32_t tot = rte_be_to_cpu_16(ip->total_length);

	o->src_ip = rte_be_to_cpu_32(ip->src_addr);
	o->dst_ip = rte_be_to_cpu_32(ip->dst_addr);
	o->proto = ip->next_proto_id;
	o->ip_csum_ok = rte_raw_cksum(ip, hl) == 0xffff;
	if (o->proto == IPPROTO_ICMP) {
		const struct rte_icmp_hdr *ih =
			(const void *)((const uint8_t *)ip + hl);

		o->icmp_type = ih->icmp_type;
		o->l4_csum_ok = rte_raw_cksum(ih, tot - hl) == 0xffff;
		o->len = tot - hl - 8;
		memcpy(o->data, (const uint8_t *)ih + 8,
		       o->len < sizeof(o->data) ? o->len : sizeof(o->data));
		return;
	}
	if (o->proto != IPPROTO_TCP)
		return;
	const struct rte_tcp_hdr *th = (const void *)((const uint8_t *)ip + hl);

	o->l4_csum_ok = __rte_ipv4_udptcp_cksum(ip, th) == 0xffff;
	t_parse_tcp(th, tot - hl, o);
}

static void t_parse_tcp(const struct rte_tcp_hdr *th, uint32_t l4len,
			struct t_out *o)
{
	uint32_t thl = (th->data_off >> 4) * 4u;
	const uint8_t *p = (const uint8_t *)(th + 1);

	o->sport = rte_be_to_cpu_16(th->src_port);
	o->dport = rte_be_to_cpu_16(th->dst_port);
	o->seq = rte_be_to_cpu_32(th->sent_seq);
	o->ack = rte_be_to_cpu_32(th->recv_ack);
	o->flags = th->tcp_flags;
	o->wnd = rte_be_to_cpu_16(th->rx_win);
	for (uint32_t i = 0; i < thl - 20;) {
		if (p[i] == 0)
			break;
		if (p[i] == 1) {
			i++;
			continue;
		}
		if (p[i] == 2)
			o->mss = (p[i + 2] << 8) | p[i + 3];
		if (p[i] == 3)
			o->wscale = p[i + 2];
		if (p[i] == 8) {
			uint32_t v, e;

			memcpy(&v, &p[i + 2], 4);
			memcpy(&e, &p[i + 6], 4);
			o->ts = true;
			o->tsval = rte_be_to_cpu_32(v);
			o->tsecr = rte_be_to_cpu_32(e);
		}
		i += p[i + 1];
	}
	o->len = l4len - thl;
	memcpy(o->data, (const uint8_t *)th + thl,
	       o->len < sizeof(o->data) ? o->len : sizeof(o->data));
}

int t_take(struct net_stack *st, struct t_out *out, int max)
{
	struct rte_mbuf *m;
	int n = 0;

	while (n < max && net_stack_take_tx(st, &m, 1) == 1) {
		t_parse(m, &out[n]);
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

bool t_take1(struct net_stack *st, struct t_out *o)
{
	struct rte_mbuf *m[8];
	uint16_t n = net_stack_take_tx(st, m, 8);

	if (n != 1) {
		fprintf(stderr, "%s: expected 1 frame, got %u\n", t_current, n);
		t_failures++;
	}
	if (n >= 1)
		t_parse(m[0], o);
	for (uint16_t i = 0; i < n; i++)
		rte_pktmbuf_free(m[i]);
	return n == 1;
}

int t_drain(struct net_stack *st)
{
	struct rte_mbuf *m;
	int n = 0;

	while (net_stack_take_tx(st, &m, 1) == 1) {
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

/* ---- recorder callbacks --------------------------------------------- */

static void *cb_accepted(void *arg, struct tcp_conn *c)
{
	struct t_app *a = arg;

	a->accepted++;
	a->conn = c;
	return a->refuse ? NULL : a;
}

static void cb_connected(void *ctx, struct tcp_conn *c)
{
	struct t_app *a = ctx;

	a->connected++;
	a->conn = c;
}

static void cb_readable(void *ctx, struct tcp_conn *c)
{
	struct t_app *a = ctx;

	a->readable++;
	if (a->abort_on_readable) {
		tcp_abort(c);
		a->conn = NULL;
		return;
	}
	if (a->echo) {
		uint8_t buf[4096];
		size_t n;

		while ((n = tcp_recv(c, buf, sizeof(buf))) > 0)
			tcp_send(c, buf, n);
	}
}

static void cb_writable(void *ctx, struct tcp_conn *c)
{
	struct t_app *a = ctx;

	(void)c;
	a->writable++;
}

static void cb_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct t_app *a = ctx;

	a->peer_closed++;
	if (a->close_on_peer_closed)
		tcp_close(c);
}

static void cb_closed(void *ctx, struct tcp_conn *c)
{
	struct t_app *a = ctx;

	(void)c;
	a->closed++;
	a->conn = NULL;
}

static void cb_reset(void *ctx, struct tcp_conn *c, int err)
{
	struct t_app *a = ctx;

	(void)c;
	a->reset++;
	a->reset_err = err;
	a->conn = NULL;
}

const struct tcp_callbacks t_cb = {
	.accepted = cb_accepted,
	.connected = cb_connected,
	.readable = cb_readable,
	.writable = cb_writable,
	.peer_closed = cb_peer_closed,
	.closed = cb_closed,
	.reset = cb_reset,
};

int t_run(const char *suite, const char *const *names, const t_case_fn *fns,
	  int n)
{
	int failed_cases = 0;

	t_init_eal();
	for (int i = 0; i < n; i++) {
		int before = t_failures;

		t_current = names[i];
		fns[i]();
		if (t_failures != before) {
			failed_cases++;
			printf("FAIL %s/%s\n", suite, names[i]);
		} else {
			printf("ok   %s/%s\n", suite, names[i]);
		}
	}
	printf("%s: %d/%d cases passed\n", suite, n - failed_cases, n);
	return failed_cases ? 1 : 0;
}
