/*
 * test_metrics.c - the Prometheus endpoint (control/metrics.h) on
 * 127.0.0.1, an ephemeral port: the exact exposition text of a known
 * callback, label and help escaping, 404/405/400/431/500/503, time-outs.
 * Single-threaded: the test is the HTTP client and the server's poller.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/metrics.h"

static int failures;
static int checks;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)
#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		checks++;                                                      \
		if (strcmp((got), (want)) != 0) {                              \
			fprintf(stderr,                                        \
				"FAIL %s:%d:\n--- got:\n%s\n--- want:\n%s\n",  \
				__FILE__, __LINE__, (got), (want));            \
			failures++;                                            \
		}                                                              \
	} while (0)

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mode; /* which callback behaviour */

static void scrape(struct ctl_mw *w, void *ctx)
{
	static const double bounds[] = {0.005, 0.1, 1};
	static const uint64_t counts[] = {1, 2, 3};
	const struct ctl_label acl[] = {{"reason", "acl"}};
	const struct ctl_label odd[] = {{"reason", "a\"b\\c\nd"}};
	const struct ctl_label two[] = {{"core", "0"}, {"listener", "mx"}};
	const struct ctl_label pool[] = {{"pool", "default"}};
	const struct ctl_label bad[] = {{"0bad", "x"}};

	(void)ctx;
	if (mode == 1) { /* a bug in the caller: bad label name */
		ctl_mw_u64(w, "mxg_x", bad, 1, 1);
		return;
	}
	ctl_mw_family(w, "mxg_connections_rejected_total",
		      "Connections refused, by reason.\nSee \\docs.",
		      CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxg_connections_rejected_total", acl, 1, 12);
	ctl_mw_u64(w, "mxg_connections_rejected_total", odd, 1, 0);
	ctl_mw_family(w, "mxg_sessions_open", "Open SMTP sessions.",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxg_sessions_open", two, 2, 3);
	ctl_mw_u64(w, "mxg_sessions_open", NULL, 0, 18446744073709551615ull);
	ctl_mw_family(w, "mxg_load", NULL, CTL_METRIC_GAUGE);
	ctl_mw_double(w, "mxg_load", NULL, 0, 0.25);
	ctl_mw_double(w, "mxg_load", acl, 1, NAN);
	ctl_mw_family(w, "mxg_backend_reply_seconds", "Backend reply latency.",
		      CTL_METRIC_HISTOGRAM);
	ctl_mw_histogram(w, "mxg_backend_reply_seconds", pool, 1, bounds,
			 counts, 3, 2.5, 7);
	ctl_mw_histogram(w, "mxg_backend_reply_seconds", NULL, 0, bounds,
			 counts, 3, 0, 6);
}

static const char want_body[] =
	"# HELP mxg_connections_rejected_total Connections refused, by "
	"reason.\\nSee \\\\docs.\n"
	"# TYPE mxg_connections_rejected_total counter\n"
	"mxg_connections_rejected_total{reason=\"acl\"} 12\n"
	"mxg_connections_rejected_total{reason=\"a\\\"b\\\\c\\nd\"} 0\n"
	"# HELP mxg_sessions_open Open SMTP sessions.\n"
	"# TYPE mxg_sessions_open gauge\n"
	"mxg_sessions_open{core=\"0\",listener=\"mx\"} 3\n"
	"mxg_sessions_open 18446744073709551615\n"
	"# TYPE mxg_load gauge\n"
	"mxg_load 0.25\n"
	"mxg_load{reason=\"acl\"} NaN\n"
	"# HELP mxg_backend_reply_seconds Backend reply latency.\n"
	"# TYPE mxg_backend_reply_seconds histogram\n"
	"mxg_backend_reply_seconds_bucket{pool=\"default\",le=\"0.005\"} 1\n"
	"mxg_backend_reply_seconds_bucket{pool=\"default\",le=\"0.1\"} 3\n"
	"mxg_backend_reply_seconds_bucket{pool=\"default\",le=\"1\"} 6\n"
	"mxg_backend_reply_seconds_bucket{pool=\"default\",le=\"+Inf\"} 7\n"
	"mxg_backend_reply_seconds_sum{pool=\"default\"} 2.5\n"
	"mxg_backend_reply_seconds_count{pool=\"default\"} 7\n"
	"mxg_backend_reply_seconds_bucket{le=\"0.005\"} 1\n"
	"mxg_backend_reply_seconds_bucket{le=\"0.1\"} 3\n"
	"mxg_backend_reply_seconds_bucket{le=\"1\"} 6\n"
	"mxg_backend_reply_seconds_bucket{le=\"+Inf\"} 6\n"
	"mxg_backend_reply_seconds_sum 0\n"
	"mxg_backend_reply_seconds_count 6\n";

static int cli_connect(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Polls m while reading fd to EOF (or 3 s). */
static char rbuf[1 << 16];
static const char *read_all(struct ctl_metrics *m, int fd, bool *eof)
{
	long long end = mono_ms() + 3000;
	size_t got = 0;

	*eof = false;
	rbuf[0] = '\0';
	while (mono_ms() < end) {
		ssize_t n;

		ctl_metrics_poll(m, 5);
		n = recv(fd, rbuf + got, sizeof(rbuf) - 1 - got, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			*eof = n == 0;
			break;
		}
		if (n > 0) {
			got += (size_t)n;
			rbuf[got] = '\0';
		}
	}
	return rbuf;
}

static const char *http(struct ctl_metrics *m, const char *req)
{
	int fd = cli_connect(ctl_metrics_port(m));
	bool eof;
	const char *r;

	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		exit(1);
	r = read_all(m, fd, &eof);
	CHECK(eof);
	close(fd);
	return r;
}

static struct ctl_metrics *make(unsigned max_clients, size_t max_request,
				size_t max_response, uint32_t timeout_ms)
{
	struct ctl_metrics_conf conf = {
		.address = "127.0.0.1",
		.port = 0,
		.max_clients = max_clients,
		.max_request = max_request,
		.max_response = max_response,
		.timeout_ms = timeout_ms,
	};
	int err = 0;
	struct ctl_metrics *m = ctl_metrics_create(&conf, scrape, NULL, &err);

	if (m == NULL) {
		fprintf(stderr, "ctl_metrics_create: %s\n", strerror(-err));
		exit(1);
	}
	return m;
}

static void test_fmt(void)
{
	char b[40];

	CHECK(ctl_metrics_fmt_double(b, sizeof(b), 0.1) == 3);
	CHECK_STR(b, "0.1");
	ctl_metrics_fmt_double(b, sizeof(b), 1e-3);
	CHECK_STR(b, "0.001");
	ctl_metrics_fmt_double(b, sizeof(b), 1.0 / 3);
	CHECK(strtod(b, NULL) == 1.0 / 3);
	ctl_metrics_fmt_double(b, sizeof(b), 1e300);
	CHECK_STR(b, "1e+300");
	ctl_metrics_fmt_double(b, sizeof(b), -2);
	CHECK_STR(b, "-2");
	ctl_metrics_fmt_double(b, sizeof(b), INFINITY);
	CHECK_STR(b, "+Inf");
	ctl_metrics_fmt_double(b, sizeof(b), -INFINITY);
	CHECK_STR(b, "-Inf");
	ctl_metrics_fmt_double(b, sizeof(b), NAN);
	CHECK_STR(b, "NaN");
	CHECK(ctl_metrics_fmt_double(b, 3, 0.125) == -ENOSPC);
}

static void test_http(void)
{
	struct ctl_metrics *m = make(4, 512, 0, 5000);
	struct ctl_metrics_stats st;
	char want[4096];
	const char *r;

	CHECK(ctl_metrics_port(m) != 0);
	snprintf(want, sizeof(want),
		 "HTTP/1.0 200 OK\r\n"
		 "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 strlen(want_body), want_body);
	r = http(m, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
	CHECK_STR(r, want);
	/* HTTP/1.0, bare LF line ends, a query string */
	r = http(m, "GET /metrics?x=1 HTTP/1.0\n\n");
	CHECK_STR(r, want);
	/* HEAD: the same head, no body */
	*strstr(want, "\r\n\r\n") = '\0';
	strcat(want, "\r\n\r\n");
	CHECK_STR(http(m, "HEAD /metrics HTTP/1.0\r\n\r\n"), want);

	CHECK_STR(http(m, "GET / HTTP/1.0\r\n\r\n"),
		  "HTTP/1.0 404 Not Found\r\n"
		  "Content-Type: text/plain; charset=utf-8\r\n"
		  "Content-Length: 24\r\n"
		  "Connection: close\r\n\r\n"
		  "not found: try /metrics\n");
	CHECK(strncmp(http(m, "GET /metricsx HTTP/1.0\r\n\r\n"),
		      "HTTP/1.0 404 ", 13) == 0);
	CHECK_STR(
		http(m, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
		"HTTP/1.0 405 Method Not Allowed\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Length: 18\r\n"
		"Connection: close\r\n"
		"Allow: GET, HEAD\r\n\r\n"
		"only GET and HEAD\n");
	CHECK(strncmp(http(m, "GET /metrics\r\n\r\n"), "HTTP/1.0 400 ", 13) ==
	      0);
	CHECK(strncmp(http(m, "garbage\r\n\r\n"), "HTTP/1.0 400 ", 13) == 0);
	/* A head over max_request (512): 431, and the response still
	 * arrives although we never read the rest. */
	{
		char big[2048];

		memset(big, 'a', sizeof(big));
		memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
		big[sizeof(big) - 1] = '\0';
		CHECK(strncmp(http(m, big), "HTTP/1.0 431 ", 13) == 0);
	}
	/* A callback bug: 500, not a malformed exposition. */
	mode = 1;
	CHECK(strncmp(http(m, "GET /metrics HTTP/1.0\r\n\r\n"),
		      "HTTP/1.0 500 Internal Server Error\r\n", 36) == 0);
	CHECK(strstr(rbuf, "bad metric or label name") != NULL);
	mode = 0;

	ctl_metrics_get_stats(m, &st);
	CHECK(st.scrapes == 3 && st.not_found == 2 && st.bad_requests == 4 &&
	      st.overflows == 1);
	ctl_metrics_destroy(m);

	/* Body over max_response: 500. */
	m = make(4, 512, 256, 5000);
	CHECK(strncmp(http(m, "GET /metrics HTTP/1.0\r\n\r\n"), "HTTP/1.0 500 ",
		      13) == 0);
	CHECK(strstr(rbuf, "metrics over max_response") != NULL);
	ctl_metrics_destroy(m);
}

static void test_bounds(void)
{
	struct ctl_metrics *m = make(2, 512, 0, 300);
	struct ctl_metrics_stats st;
	int a, b, c;
	bool eof;
	long long t0;

	/* Two silent clients hold both slots; the third gets 503. */
	a = cli_connect(ctl_metrics_port(m));
	b = cli_connect(ctl_metrics_port(m));
	ctl_metrics_poll(m, 10);
	ctl_metrics_poll(m, 10);
	c = cli_connect(ctl_metrics_port(m));
	CHECK(strncmp(read_all(m, c, &eof), "HTTP/1.0 503 ", 13) == 0);
	CHECK(eof);
	close(c);
	/* Silent clients are dropped at the deadline (300 ms). */
	t0 = mono_ms();
	read_all(m, a, &eof);
	CHECK(eof);
	read_all(m, b, &eof);
	CHECK(eof);
	CHECK(mono_ms() - t0 >= 200);
	close(a);
	close(b);
	ctl_metrics_get_stats(m, &st);
	CHECK(st.refused == 1 && st.timed_out == 2);
	/* Served again once the slots are free. */
	CHECK(strncmp(http(m, "GET /metrics HTTP/1.0\r\n\r\n"),
		      "HTTP/1.0 200 OK\r\n", 17) == 0);
	/* poll honours its time-out (once the last client is gone) */
	for (int i = 0; i < 5; i++)
		ctl_metrics_poll(m, 20);
	t0 = mono_ms();
	CHECK(ctl_metrics_poll(m, 50) == 0);
	CHECK(mono_ms() - t0 >= 45 && mono_ms() - t0 < 500);
	ctl_metrics_destroy(m);
}

/* Can a plain socket bind [::1]:0 here? */
static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 &&
		  bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* One GET /metrics over [::1]: the exposition comes back. */
static void test_scrape_v6(struct ctl_metrics *m)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n";
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT,
				  .sin6_port = htons(ctl_metrics_port(m))};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool eof;
	const char *r;

	CHECK(fd >= 0 &&
	      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) ==
	      (ssize_t)sizeof(req) - 1);
	r = read_all(m, fd, &eof);
	CHECK(eof && strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0 &&
	      strstr(r, want_body) != NULL);
	close(fd);
}

static void test_create_errors(void)
{
	struct ctl_metrics_conf conf = {.address = "localhost"};
	struct ctl_metrics *m, *m2;
	int err = 0;

	CHECK(ctl_metrics_create(&conf, scrape, NULL, &err) == NULL &&
	      err == -EINVAL);
	conf.address = "::1";
	m = ctl_metrics_create(&conf, scrape, NULL, &err);
	if (have_ipv6_loopback()) {
		/* the kernel binds ::1: so must the endpoint, and answer */
		CHECK(m != NULL);
		if (m != NULL)
			test_scrape_v6(m);
	} else {
		printf("test_metrics: this host has no IPv6 loopback: the ::1 "
		       "listener is NOT tested here\n");
	}
	if (m != NULL)
		ctl_metrics_destroy(m);
	conf.address = "127.0.0.1";
	m = ctl_metrics_create(&conf, scrape, NULL, &err);
	CHECK(m != NULL);
	conf.port = ctl_metrics_port(m);
	m2 = ctl_metrics_create(&conf, scrape, NULL, &err);
	CHECK(m2 == NULL && err == -EADDRINUSE);
	ctl_metrics_destroy(m);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_fmt();
	test_http();
	test_bounds();
	test_create_errors();
	printf("test_metrics: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
