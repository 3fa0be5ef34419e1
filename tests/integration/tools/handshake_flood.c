/*
 * handshake_flood.c - complete TCP handshakes with mxgate from many spoofed
 * IPv4 sources, for the policy flood test (tests/integration/test_policy.py
 * scenario "flood").
 *
 * For connection i it sends a SYN from a source address of 198.18.0.0/15
 * outside the tap's own /24 (198.18.1.1 .. 198.19.255.254, hosts .1-.254,
 * 129,794 distinct addresses; past that the addresses repeat with another
 * source port), then answers what the gateway sends, statelessly, from the
 * frame itself:
 *   SYN-ACK                -> ACK (seq = its ack, ack = its seq + 1): the
 *                             handshake is complete, the gateway accepts
 *   first data or FIN      -> RST (seq = its ack): the gateway has run its
 *                             connection policy and sent its greeting
 *                             (220 or 421), we record which, and go
 * The gateway must route replies to those sources through the kernel side
 * of the tap (stack.gateway = the kernel address): the kernel does not
 * forward, so they go nowhere; this tool reads them from an AF_PACKET
 * socket on the tap and writes its frames there.
 *
 * Bounded: at most --count connections, at most --window in flight (a
 * connection that got no greeting within 2 s stops counting against the
 * window and is reported lost), and it stops at --seconds whatever
 * happened. Prints one JSON object of counters on standard output.
 * "stray" counts replies to other clients of the tap (the legitimate
 * ones). Exit status 0 unless it could not run at all.
 *
 * usage: handshake_flood --iface IF --src-mac MAC --dst-mac MAC
 *            --dst IP [--port 25] [--count N] [--window W]
 *            [--seconds S] [--rate PER_SECOND]
 *
 * Only addresses of 198.18.0.0/15 are ever written; frames leave only on
 * the named interface (the test's namespace).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SUBNETS 511u /* 198.18.1.0/24 .. 198.19.255.0/24 */
#define HOSTS 254u
#define DISTINCT (SUBNETS * HOSTS)
#define SPORT_BASE 20000u
#define LOST_MS 2000u

enum conn_state { C_NONE = 0, C_SYN, C_ACKED, C_DONE, C_LOST };

struct flood {
	int fd;
	int ifindex;
	uint8_t src_mac[6], dst_mac[6];
	uint32_t dst; /* network order */
	uint16_t port;
	uint32_t count;
	uint8_t *state;
	uint32_t *sent_ms;
	/* counters */
	uint64_t syn_sent, synack, acks_sent, greet_220, greet_421, greet_other,
		rst_in, fin_in, rst_sent, lost, stray;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t src_of(uint32_t i)
{
	uint32_t k = i % DISTINCT;
	uint32_t v = (18u << 8 | 1u) + k / HOSTS; /* second.third octet */

	return htonl(198u << 24 | v << 8 | (k % HOSTS + 1));
}

static uint16_t sport_of(uint32_t i)
{
	return (uint16_t)(SPORT_BASE + i / DISTINCT);
}

/* Connection index from a reply's destination address and port, or -1. */
static long index_of(const struct flood *f, uint32_t ip_n, uint16_t dport)
{
	uint32_t ip = ntohl(ip_n);
	uint32_t v = (ip >> 8) & 0xffff, h = ip & 0xff;
	long i;

	if ((ip >> 24) != 198 || v < (18u << 8 | 1u) || v > (19u << 8 | 255u) ||
	    h < 1 || h > HOSTS || dport < SPORT_BASE)
		return -1;
	i = (long)(dport - SPORT_BASE) * DISTINCT +
	    (long)(v - (18u << 8 | 1u)) * HOSTS + (h - 1);
	return i < (long)f->count ? i : -1;
}

static uint32_t isn_of(uint32_t i)
{
	uint32_t x = i * 2654435761u + 0x9e3779b9u;

	x ^= x >> 15;
	return x * 2246822519u;
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t k = 0; k + 1 < n; k += 2)
		s += (uint32_t)b[k] << 8 | b[k + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

static int send_tcp(struct flood *f, uint32_t src, uint16_t sport, uint32_t seq,
		    uint32_t ack, uint8_t flags)
{
	uint8_t fr[14 + 20 + 24];
	uint8_t *ip = fr + 14, *tcp = ip + 20;
	size_t tlen = flags == 0x02 ? 24 : 20; /* SYN carries an MSS */
	uint32_t s;
	struct sockaddr_ll sa;

	memset(fr, 0, sizeof(fr));
	memcpy(fr, f->dst_mac, 6);
	memcpy(fr + 6, f->src_mac, 6);
	fr[12] = 0x08;
	fr[13] = 0x00;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + tlen) >> 8);
	ip[3] = (uint8_t)(20 + tlen);
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &f->dst, 4);
	s = csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(s >> 8);
	ip[11] = (uint8_t)s;

	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[2] = (uint8_t)(f->port >> 8);
	tcp[3] = (uint8_t)f->port;
	seq = htonl(seq);
	ack = htonl(ack);
	memcpy(tcp + 4, &seq, 4);
	memcpy(tcp + 8, &ack, 4);
	tcp[12] = (uint8_t)((tlen / 4) << 4);
	tcp[13] = flags;
	tcp[14] = 0xff; /* window 65535 */
	tcp[15] = 0xff;
	if (tlen == 24) {
		tcp[20] = 2; /* MSS 1460 */
		tcp[21] = 4;
		tcp[22] = 0x05;
		tcp[23] = 0xb4;
	}
	{
		uint8_t ph[12];

		memcpy(ph, ip + 12, 8);
		ph[8] = 0;
		ph[9] = IPPROTO_TCP;
		ph[10] = (uint8_t)(tlen >> 8);
		ph[11] = (uint8_t)tlen;
		s = csum_fold(csum_add(csum_add(0, ph, 12), tcp, tlen));
		tcp[16] = (uint8_t)(s >> 8);
		tcp[17] = (uint8_t)s;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sll_family = AF_PACKET;
	sa.sll_ifindex = f->ifindex;
	sa.sll_halen = 6;
	memcpy(sa.sll_addr, f->dst_mac, 6);
	for (int tries = 0; tries < 1000; tries++) {
		if (sendto(f->fd, fr, 14 + 20 + tlen, 0, (struct sockaddr *)&sa,
			   sizeof(sa)) >= 0)
			return 0;
		if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			return -errno;
		usleep(100);
	}
	return -ENOBUFS;
}

/* One frame from the tap: a reply of the gateway to one of our sources. */
static void on_frame(struct flood *f, const uint8_t *fr, size_t n)
{
	const uint8_t *ip, *tcp;
	size_t ihl, thl, iplen;
	uint32_t dst, seq, ack;
	uint16_t sport, dport;
	uint8_t flags;
	long i;

	if (n < 14 + 20 + 20 || fr[12] != 0x08 || fr[13] != 0x00)
		return;
	ip = fr + 14;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	iplen = (size_t)ip[2] << 8 | ip[3];
	if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP || ihl < 20 ||
	    iplen > n - 14 || iplen < ihl + 20 || memcmp(ip + 12, &f->dst, 4))
		return;
	tcp = ip + ihl;
	sport = (uint16_t)(tcp[0] << 8 | tcp[1]);
	dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
	if (sport != f->port)
		return;
	memcpy(&dst, ip + 16, 4);
	i = index_of(f, dst, dport);
	if (i < 0) {
		f->stray++;
		return;
	}
	memcpy(&seq, tcp + 4, 4);
	memcpy(&ack, tcp + 8, 4);
	seq = ntohl(seq);
	ack = ntohl(ack);
	flags = tcp[13];
	thl = (size_t)(tcp[12] >> 4) * 4;
	if (thl < 20 || ihl + thl > iplen)
		return;

	if (flags & 0x04) { /* RST from the gateway */
		f->rst_in++;
		if (f->state[i] == C_SYN || f->state[i] == C_ACKED) {
			f->state[i] = C_DONE;
			f->greet_other++;
		}
		return;
	}
	if ((flags & 0x12) == 0x12) { /* SYN-ACK (or a retransmission) */
		if (f->state[i] == C_SYN)
			f->synack++;
		if (f->state[i] == C_SYN || f->state[i] == C_ACKED) {
			f->state[i] = C_ACKED;
			if (send_tcp(f, dst, dport, ack, seq + 1, 0x10) == 0)
				f->acks_sent++;
		}
		return;
	}
	{
		size_t plen = iplen - ihl - thl;
		const uint8_t *pl = tcp + thl;

		if (!plen && !(flags & 0x01))
			return; /* a bare ACK */
		if (flags & 0x01)
			f->fin_in++;
		if (f->state[i] == C_ACKED || f->state[i] == C_SYN ||
		    f->state[i] == C_LOST) {
			if (plen >= 3 && !memcmp(pl, "220", 3))
				f->greet_220++;
			else if (plen >= 3 && !memcmp(pl, "421", 3))
				f->greet_421++;
			else
				f->greet_other++;
			if (f->state[i] == C_LOST)
				f->lost--;
			f->state[i] = C_DONE;
		}
		/* Whatever its state, reset it: nothing stays open. */
		if (send_tcp(f, dst, dport, ack, 0, 0x04) == 0)
			f->rst_sent++;
	}
}

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned v[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5]) != 6)
		return -1;
	for (int k = 0; k < 6; k++)
		m[k] = (uint8_t)v[k];
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: handshake_flood --iface IF --src-mac MAC "
			"--dst-mac MAC --dst IP [--port 25] [--count N] "
			"[--window W] [--seconds S] [--rate PER_SECOND]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"iface", required_argument, NULL, 'i'},
		{"src-mac", required_argument, NULL, 's'},
		{"dst-mac", required_argument, NULL, 'm'},
		{"dst", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},
		{"count", required_argument, NULL, 'n'},
		{"window", required_argument, NULL, 'w'},
		{"seconds", required_argument, NULL, 't'},
		{"rate", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0}};
	struct flood f;
	const char *iface = NULL;
	uint32_t window = 256, seconds = 120, rate = 0;
	bool have_src = false, have_dst = false, have_ip = false;
	uint64_t t0, deadline, last_scan, next_i = 0, oldest = 0, inflight = 0;
	struct sockaddr_ll sa;
	int c, one = 1, bufsz = 8 << 20;
	uint8_t buf[2048];

	memset(&f, 0, sizeof(f));
	f.port = 25;
	f.count = 200000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			iface = optarg;
			break;
		case 's':
			if (parse_mac(optarg, f.src_mac))
				usage();
			have_src = true;
			break;
		case 'm':
			if (parse_mac(optarg, f.dst_mac))
				usage();
			have_dst = true;
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &f.dst) != 1)
				usage();
			have_ip = true;
			break;
		case 'p':
			f.port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			f.count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			window = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rate = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	/* The whole 198.18.0.0/15 gives DISTINCT sources per source port;
	 * the port range past SPORT_BASE bounds the count. */
	if (!iface || !have_src || !have_dst || !have_ip || f.count == 0 ||
	    f.count > DISTINCT * 40 || window == 0 || seconds == 0 ||
	    seconds > 600)
		usage();
	if ((ntohl(f.dst) >> 17) != (198u << 7 | 9u)) {
		fprintf(stderr, "handshake_flood: --dst must be in "
				"198.18.0.0/15\n");
		return 2;
	}
	f.ifindex = (int)if_nametoindex(iface);
	if (!f.ifindex) {
		perror(iface);
		return 1;
	}
	f.state = calloc(f.count, 1);
	f.sent_ms = calloc(f.count, sizeof(*f.sent_ms));
	if (!f.state || !f.sent_ms) {
		perror("calloc");
		return 1;
	}
	f.fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_IP));
	if (f.fd < 0) {
		perror("socket(AF_PACKET)");
		return 1;
	}
	setsockopt(f.fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz));
	setsockopt(f.fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz));
#ifdef PACKET_IGNORE_OUTGOING
	setsockopt(f.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
#endif
	(void)one;
	memset(&sa, 0, sizeof(sa));
	sa.sll_family = AF_PACKET;
	sa.sll_protocol = htons(ETH_P_IP);
	sa.sll_ifindex = f.ifindex;
	if (bind(f.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bind");
		return 1;
	}

	t0 = now_ms();
	deadline = t0 + (uint64_t)seconds * 1000;
	last_scan = t0;
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = {.fd = f.fd, .events = POLLIN};
		int budget;

		if (now >= deadline)
			break;
		if (next_i >= f.count && inflight == 0)
			break;
		/* Send new SYNs while the window and the rate allow. */
		budget = 64;
		while (next_i < f.count && inflight < window && budget-- > 0) {
			uint32_t i = (uint32_t)next_i;

			if (rate && next_i >= (now - t0) * rate / 1000 + 1)
				break;
			if (send_tcp(&f, src_of(i), sport_of(i), isn_of(i), 0,
				     0x02) < 0)
				break;
			f.state[i] = C_SYN;
			f.sent_ms[i] = (uint32_t)(now - t0);
			f.syn_sent++;
			inflight++;
			next_i++;
		}
		if (poll(&pfd, 1, 1) > 0) {
			for (int k = 0; k < 256; k++) {
				ssize_t r = recv(f.fd, buf, sizeof(buf), 0);

				if (r <= 0)
					break;
				on_frame(&f, buf, (size_t)r);
			}
		}
		/* Retire finished and timed-out connections from the window,
		 * oldest first (they were sent in index order). */
		now = now_ms();
		if (now - last_scan >= 10 || inflight >= window) {
			last_scan = now;
			while (oldest < next_i) {
				uint8_t *st = &f.state[oldest];

				if (*st == C_DONE || *st == C_LOST) {
					oldest++;
					continue;
				}
				if (now - t0 - f.sent_ms[oldest] < LOST_MS)
					break;
				if (*st == C_ACKED &&
				    send_tcp(&f, src_of((uint32_t)oldest),
					     sport_of((uint32_t)oldest),
					     isn_of((uint32_t)oldest) + 1, 0,
					     0x04) == 0)
					f.rst_sent++;
				*st = C_LOST;
				f.lost++;
				oldest++;
			}
			inflight = 0;
			for (uint64_t k = oldest; k < next_i; k++)
				if (f.state[k] == C_SYN ||
				    f.state[k] == C_ACKED)
					inflight++;
		}
	}
	/* Drain late replies for a moment so nothing is left open. */
	{
		uint64_t end = now_ms() + 300;

		while (now_ms() < end) {
			struct pollfd pfd = {.fd = f.fd, .events = POLLIN};

			if (poll(&pfd, 1, 20) > 0) {
				ssize_t r;

				while ((r = recv(f.fd, buf, sizeof(buf), 0)) >
				       0)
					on_frame(&f, buf, (size_t)r);
			}
		}
	}
	printf("{\"requested\": %u, \"syn_sent\": %llu, \"synack\": %llu, "
	       "\"acks_sent\": %llu, \"greet_220\": %llu, \"greet_421\": "
	       "%llu, \"greet_other\": %llu, \"rst_in\": %llu, \"fin_in\": "
	       "%llu, \"rst_sent\": %llu, \"lost\": %llu, \"stray\": %llu, "
	       "\"distinct_sources\": %u, \"seconds\": %.2f}\n",
	       f.count, (unsigned long long)f.syn_sent,
	       (unsigned long long)f.synack, (unsigned long long)f.acks_sent,
	       (unsigned long long)f.greet_220, (unsigned long long)f.greet_421,
	       (unsigned long long)f.greet_other, (unsigned long long)f.rst_in,
	       (unsigned long long)f.fin_in, (unsigned long long)f.rst_sent,
	       (unsigned long long)f.lost, (unsigned long long)f.stray,
	       f.count < DISTINCT ? f.count : DISTINCT,
	       (double)(now_ms() - t0) / 1000.0);
	free(f.state);
	free(f.sent_ms);
	close(f.fd);
	return 0;
}
