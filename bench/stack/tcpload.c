/*
 * tcpload.c - a kernel-socket TCP load generator for bench/stack.sh:
 *   tcpload cps  ADDR PORT SECONDS CONC BYTES   open, send BYTES, read them
 *                                               back, close; CONC at once
 *   tcpload bulk ADDR PORT SECONDS CONC         send as fast as possible
 *   tcpload serve ADDR PORT SECONDS             kernel echo server (the
 *                                               kernel baseline's peer)
 * Prints one JSON object: connections (or bytes) completed and the rate.
 * Single-threaded epoll; bounded in time by SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t sent, rcvd;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_conn(int ep, struct sockaddr_in *sa, struct conn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->sent = c->rcvd = 0;
	if (connect(c->fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		return -1;
	}
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Echo server with epoll: reads and writes back what fits. */
static int serve(struct sockaddr_in *sa, double secs)
{
	static char b[1 << 16];
	struct epoll_event evs[256], ev;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1, ep = epoll_create1(0);
	double t0 = now_s();

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    listen(ls, 4096) < 0) {
		perror("tcpload serve");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	while (now_s() - t0 < secs) {
		int n = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == ls) {
				int c;

				while ((c = accept4(ls, NULL, NULL,
						    SOCK_NONBLOCK)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = recv(fd, b, sizeof(b), 0);

				if (r > 0) {
					if (send(fd, b, (size_t)r,
						 MSG_NOSIGNAL) < 0)
						break;
					continue;
				}
				if (r == 0 || errno != EAGAIN)
					close(fd);
				break;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event evs[256];
	struct conn *conns;
	double secs, t0, t1;
	int conc, bulk, ep;
	size_t bytes = 0;
	uint64_t done = 0, failed = 0, total_bytes = 0;

	if (argc < 5 || (argc < 6 && strcmp(argv[1], "serve"))) {
		fprintf(stderr, "usage: tcpload cps|bulk ADDR PORT SECONDS "
				"CONC [BYTES]\n");
		return 2;
	}
	bulk = !strcmp(argv[1], "bulk");
	inet_pton(AF_INET, argv[2], &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(argv[3]));
	secs = atof(argv[4]);
	if (!strcmp(argv[1], "serve"))
		return serve(&sa, secs);
	conc = atoi(argv[5]);
	if (!bulk)
		bytes = argc > 6 ? (size_t)atol(argv[6]) : 64;
	conns = calloc((size_t)conc, sizeof(*conns));
	ep = epoll_create1(0);
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < conc; i++)
		if (open_conn(ep, &sa, &conns[i]) < 0)
			failed++;
	t0 = now_s();
	t1 = t0;
	while ((t1 = now_s()) - t0 < secs) {
		int n = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int err = 0;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				err = 1;
			if (!err && bulk && (evs[i].events & EPOLLOUT)) {
				ssize_t w = send(c->fd, buf, sizeof(buf),
						 MSG_NOSIGNAL);
				if (w > 0)
					total_bytes += (uint64_t)w;
				else if (w < 0 && errno != EAGAIN)
					err = 1;
			}
			if (!err && !bulk && (evs[i].events & EPOLLOUT) &&
			    c->sent < bytes) {
				ssize_t w = send(c->fd, buf, bytes - c->sent,
						 MSG_NOSIGNAL);
				if (w > 0) {
					c->sent += (size_t)w;
					if (c->sent == bytes) {
						struct epoll_event ev = {
							.events = EPOLLIN,
							.data.ptr = c};
						epoll_ctl(ep, EPOLL_CTL_MOD,
							  c->fd, &ev);
					}
				} else if (w < 0 && errno != EAGAIN) {
					err = 1;
				}
			}
			if (!err && (evs[i].events & EPOLLIN)) {
				ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
				if (r > 0)
					c->rcvd += (size_t)r;
				else if (r == 0 || errno != EAGAIN)
					err = !(r == 0 && !bulk &&
						c->rcvd >= bytes);
			}
			if (err || (!bulk && c->rcvd >= bytes)) {
				close(c->fd);
				if (err)
					failed++;
				else
					done++;
				if (open_conn(ep, &sa, c) < 0)
					failed++;
			}
		}
	}
	{
		double el = t1 - t0;

		if (bulk)
			printf("{\"mode\": \"bulk\", \"seconds\": %.3f, "
			       "\"bytes\": %llu, \"gbit_per_s\": %.3f, "
			       "\"failed\": %llu}\n",
			       el, (unsigned long long)total_bytes,
			       (double)total_bytes * 8 / el / 1e9,
			       (unsigned long long)failed);
		else
			printf("{\"mode\": \"cps\", \"seconds\": %.3f, "
			       "\"connections\": %llu, \"conn_per_s\": %.1f, "
			       "\"failed\": %llu}\n",
			       el, (unsigned long long)done, (double)done / el,
			       (unsigned long long)failed);
	}
	return 0;
}
