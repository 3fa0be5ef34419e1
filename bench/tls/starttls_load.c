/*
 * starttls_load.c - a STARTTLS load client for bench/tls.sh: N parallel
 * sessions on one epoll loop, each EHLO, STARTTLS, the TLS handshake,
 * EHLO, MAIL, RCPT, DATA (SIZE octets), QUIT, then the next session on
 * that slot until COUNT messages were accepted. With --resume each slot
 * offers the ticket of its previous session (TLS 1.2 and 1.3 alike).
 * With --plain no STARTTLS (a cleartext session: the latency probe);
 * with --handshake-only QUIT right after the handshake (a flood; COUNT
 * then counts handshakes).
 * Prints one JSON object: sessions, messages accepted, seconds, msg/s,
 * resumed handshakes, session latency percentiles (connect to 221).
 *
 * One thread; never verifies the server's certificate (load, not trust).
 * usage: starttls_load HOST PORT SESSIONS COUNT [--size N] [--resume]
 *                      [--plain] [--handshake-only] [--bind IP]
 *                      [--seconds MAX]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum step {
	ST_GREET, ST_EHLO1, ST_STARTTLS, ST_HANDSHAKE, ST_EHLO2, ST_MAIL,
	ST_RCPT, ST_DATA, ST_DOT, ST_QUIT
};

struct slot {
	int fd;
	SSL *ssl;
	SSL_SESSION *sess;      /* the ticket to offer next */
	enum step st;
	char in[4096];
	size_t in_len;
	const char *out;        /* pending output */
	size_t out_len, out_off;
	double t0;
	bool busy;
	bool accepted;      /* its message got 250 */
};

static struct sockaddr_in dst, src;
static bool use_bind, resume, plain, hs_only;
static SSL_CTX *ctx;
static int ep;
static char *body;
static size_t body_len;
static long n_busy, want, started, accepted, sessions_done, resumed, failures;
static volatile sig_atomic_t stop;
static double *lat;
static long n_lat, cap_lat;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *s)
{
	struct slot *sl = SSL_get_app_data(ssl);

	if (!sl)
		return 0;
	if (sl->sess)
		SSL_SESSION_free(sl->sess);
	sl->sess = s;
	return 1; /* we keep the reference */
}

static void slot_close(struct slot *sl, bool ok)
{
	if (sl->ssl) {
		/* close_notify: SSL_free without it marks the session
		 * not resumable (OpenSSL's ssl_clear_bad_session) */
		if (ok)
			(void)SSL_shutdown(sl->ssl);
		SSL_set_app_data(sl->ssl, NULL);
		SSL_free(sl->ssl);
		sl->ssl = NULL;
	}
	if (sl->fd >= 0)
		close(sl->fd);
	sl->fd = -1;
	sl->busy = false;
	n_busy--;
	if (ok) {
		sessions_done++;
		if (n_lat == cap_lat) {
			cap_lat = cap_lat ? 2 * cap_lat : 1024;
			lat = realloc(lat, (size_t)cap_lat * sizeof(*lat));
		}
		lat[n_lat++] = now() - sl->t0;
	} else {
		if (getenv("STARTTLS_LOAD_DEBUG"))
			fprintf(stderr, "session failed at step %d\n",
				(int)sl->st);
		failures++;
		if (!sl->accepted)
			started--; /* sent again by another session */
	}
}

static void slot_start(struct slot *sl)
{
	sl->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sl->st = ST_GREET;
	sl->in_len = 0;
	sl->out = NULL;
	sl->t0 = now();
	sl->busy = true;
	n_busy++;
	sl->accepted = false;
	started++;
	if (use_bind)
		(void)bind(sl->fd, (struct sockaddr *)&src, sizeof(src));
	if (connect(sl->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 &&
	    errno != EINPROGRESS) {
		slot_close(sl, false);
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
				  .data.ptr = sl};
	epoll_ctl(ep, EPOLL_CTL_ADD, sl->fd, &ev);
}

static void want_out(struct slot *sl, const char *s, size_t n)
{
	sl->out = s;
	sl->out_len = n;
	sl->out_off = 0;
}

/* Writes what is pending. 0 done, 1 would block, -1 error. */
static int flush_out(struct slot *sl)
{
	while (sl->out && sl->out_off < sl->out_len) {
		ssize_t n;

		if (sl->ssl) {
			int r = SSL_write(sl->ssl, sl->out + sl->out_off,
					  (int)(sl->out_len - sl->out_off));
			if (r <= 0) {
				int e = SSL_get_error(sl->ssl, r);

				return e == SSL_ERROR_WANT_WRITE ||
				       e == SSL_ERROR_WANT_READ ? 1 : -1;
			}
			n = r;
		} else {
			n = send(sl->fd, sl->out + sl->out_off,
				 sl->out_len - sl->out_off, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 1 : -1;
		}
		sl->out_off += (size_t)n;
	}
	sl->out = NULL;
	return 0;
}

/* A complete reply in sl->in: its code, else 0 (need more), -1 error. */
static int take_reply(struct slot *sl)
{
	size_t i = 0;

	while (i < sl->in_len) {
		char *nl = memchr(sl->in + i, '\n', sl->in_len - i);
		size_t end;

		if (!nl)
			return 0;
		end = (size_t)(nl - sl->in) + 1;
		if (end - i >= 4 && sl->in[i + 3] == ' ') {
			int code = atoi(sl->in + i);

			memmove(sl->in, sl->in + end, sl->in_len - end);
			sl->in_len -= end;
			return code;
		}
		i = end;
	}
	return sl->in_len >= sizeof(sl->in) ? -1 : 0;
}

static const char *const EHLO = "EHLO load.bench.mxgt.test\r\n";
static const char *const MAIL = "MAIL FROM:<load@bench.mxgt.test>\r\n";
static const char *const RCPT = "RCPT TO:<rcpt@example.net>\r\n";

/* The reply to the step just finished came: the next step. */
static int advance(struct slot *sl, int code)
{
	switch (sl->st) {
	case ST_GREET:
		if (code != 220)
			return -1;
		sl->st = ST_EHLO1;
		want_out(sl, EHLO, strlen(EHLO));
		return 0;
	case ST_EHLO1:
		if (code != 250)
			return -1;
		if (plain) {
			sl->st = ST_MAIL;
			want_out(sl, MAIL, strlen(MAIL));
		} else {
			sl->st = ST_STARTTLS;
			want_out(sl, "STARTTLS\r\n", 10);
		}
		return 0;
	case ST_STARTTLS:
		if (code != 220 || sl->in_len)
			return -1;
		sl->ssl = SSL_new(ctx);
		SSL_set_app_data(sl->ssl, sl);
		SSL_set_fd(sl->ssl, sl->fd);
		SSL_set_tlsext_host_name(sl->ssl, "gw.bench.mxgt.test");
		if (resume && sl->sess)
			SSL_set_session(sl->ssl, sl->sess);
		sl->st = ST_HANDSHAKE;
		return 0;
	case ST_EHLO2:
		if (code != 250)
			return -1;
		sl->st = ST_MAIL;
		want_out(sl, MAIL, strlen(MAIL));
		return 0;
	case ST_MAIL:
		if (code != 250)
			return -1;
		sl->st = ST_RCPT;
		want_out(sl, RCPT, strlen(RCPT));
		return 0;
	case ST_RCPT:
		if (code != 250)
			return -1;
		sl->st = ST_DATA;
		want_out(sl, "DATA\r\n", 6);
		return 0;
	case ST_DATA:
		if (code != 354)
			return -1;
		sl->st = ST_DOT;
		want_out(sl, body, body_len);
		return 0;
	case ST_DOT:
		if (code != 250)
			return -1;
		accepted++;
		sl->accepted = true;
		sl->st = ST_QUIT;
		want_out(sl, "QUIT\r\n", 6);
		return 0;
	case ST_QUIT:
		if (code == 221 && hs_only)
			accepted++; /* counts handshakes, not messages */
		return code == 221 ? 1 : -1;
	case ST_HANDSHAKE:
		break;
	}
	return -1;
}

/* Runs the slot as far as it goes. 1 finished, 0 waiting, -1 failed. */
static int pump(struct slot *sl)
{
	for (;;) {
		int r, code;

		if (sl->st == ST_HANDSHAKE) {
			r = SSL_connect(sl->ssl);
			if (r != 1) {
				int e = SSL_get_error(sl->ssl, r);

				return e == SSL_ERROR_WANT_READ ||
				       e == SSL_ERROR_WANT_WRITE ? 0 : -1;
			}
			resumed += SSL_session_reused(sl->ssl) == 1;
			if (hs_only) { /* a handshake flood: QUIT at once */
				sl->st = ST_QUIT;
				want_out(sl, "QUIT\r\n", 6);
			} else {
				sl->st = ST_EHLO2;
				want_out(sl, EHLO, strlen(EHLO));
			}
		}
		r = flush_out(sl);
		if (r)
			return r < 0 ? -1 : 0;
		code = take_reply(sl);
		if (code < 0)
			return -1;
		if (code > 0) {
			r = advance(sl, code);
			if (r)
				return r;
			continue;
		}
		if (sl->ssl) {
			r = SSL_read(sl->ssl, sl->in + sl->in_len,
				     (int)(sizeof(sl->in) - sl->in_len));
			if (r <= 0) {
				int e = SSL_get_error(sl->ssl, r);

				return e == SSL_ERROR_WANT_READ ||
				       e == SSL_ERROR_WANT_WRITE ? 0 : -1;
			}
		} else {
			r = (int)recv(sl->fd, sl->in + sl->in_len,
				      sizeof(sl->in) - sl->in_len, 0);
			if (r == 0)
				return -1;
			if (r < 0)
				return errno == EAGAIN ? 0 : -1;
		}
		sl->in_len += (size_t)r;
	}
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!n_lat)
		return 0;
	long i = (long)(p * (double)(n_lat - 1) + 0.5);

	return lat[i] * 1000.0;
}

int main(int argc, char **argv)
{
	long n_slots;
	size_t size = 2048;
	double max_secs = 300, t0, t1;
	struct slot *slots;

	if (argc < 5) {
		fprintf(stderr, "usage: %s HOST PORT SESSIONS COUNT [--size N] "
				"[--resume] [--plain] [--handshake-only] [--bind IP] "
				"[--seconds MAX]\n", argv[0]);
		return 2;
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
		return 2;
	n_slots = atol(argv[3]);
	want = atol(argv[4]);
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--resume"))
			resume = true;
		else if (!strcmp(argv[i], "--plain"))
			plain = true;
		else if (!strcmp(argv[i], "--handshake-only"))
			hs_only = true;
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			max_secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--bind") && i + 1 < argc) {
			use_bind = true;
			src.sin_family = AF_INET;
			if (inet_pton(AF_INET, argv[++i], &src.sin_addr) != 1)
				return 2;
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (n_slots < 1 || want < 1)
		return 2;
	/* the body: a few header lines, lines of 76 'x', ".\r\n" */
	body = malloc(size + 256);
	body_len = (size_t)snprintf(body, 256,
				    "From: <load@bench.mxgt.test>\r\n"
				    "To: <rcpt@example.net>\r\n"
				    "Subject: starttls load\r\n\r\n");
	while (body_len + 80 < size) {
		memset(body + body_len, 'x', 76);
		memcpy(body + body_len + 76, "\r\n", 2);
		body_len += 78;
	}
	memcpy(body + body_len, ".\r\n", 3);
	body_len += 3;

	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
						    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);

	signal(SIGTERM, on_term); /* stop and print what was measured */
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(0);
	slots = calloc((size_t)n_slots, sizeof(*slots));
	t0 = now();
	for (long i = 0; i < n_slots && started < want; i++) {
		slots[i].fd = -1;
		slot_start(&slots[i]);
	}
	while (!stop && (accepted < want || n_busy) && now() - t0 < max_secs) {
		struct epoll_event ev[256];
		int n = epoll_wait(ep, ev, 256, 200);

		for (int k = 0; k < n; k++) {
			struct slot *sl = ev[k].data.ptr;
			int r;

			if (!sl->busy)
				continue;
			r = pump(sl);
			if (r == 0)
				continue;
			slot_close(sl, r > 0);
			if (failures > 1000 + want)
				goto out;
			if (started < want)
				slot_start(sl);
		}
		for (long i = 0; i < n_slots; i++)
			if (!slots[i].busy && started < want)
				slot_start(&slots[i]);
	}
out:
	t1 = now();
	qsort(lat, (size_t)n_lat, sizeof(*lat), cmp_d);
	printf("{\"sessions\": %ld, \"parallel\": %ld, \"messages\": %ld, "
	       "\"accepted\": %ld, \"failures\": %ld, \"seconds\": %.3f, "
	       "\"msg_per_s\": %.1f, \"tls\": %s, \"resume\": %s, "
	       "\"resumed\": %ld, \"size\": %zu, \"latency_ms\": {\"p50\": "
	       "%.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}}\n",
	       sessions_done, n_slots, want, accepted, failures, t1 - t0,
	       accepted / (t1 - t0), plain ? "false" : "true",
	       resume ? "true" : "false", resumed, size, pct(0.5), pct(0.9),
	       pct(0.99), pct(1.0));
	return accepted == want || stop ? 0 : 1;
}
