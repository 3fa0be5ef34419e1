/*
 * metrics.c - Prometheus text exposition over HTTP/1.0 (contract in
 * metrics.h).
 *
 * Threads: one thread (the main lcore) owns a struct ctl_metrics and runs
 * the callback; nothing is shared or locked.
 * Promises: non-blocking sockets, waits only in poll(); every connection
 * has a deadline; memory per connection is its request buffer plus one
 * response of at most max_response + a header.
 *
 * Per connection an explicit state:
 *   READING  collecting the request head (up to the blank line)
 *   WRITING  sending the one response
 *   LINGER   response sent and our side shut: read and discard until the
 *            peer closes (or a short deadline), so that closing with
 *            unread request bytes does not reset the connection and
 *            destroy the response before the peer has read it
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/metrics.h"

#define METRICS_ACCEPTS_PER_POLL 64
#define METRICS_LINGER_MS 1000

enum metrics_cstate {
	METRICS_C_FREE = 0,
	METRICS_C_READING,
	METRICS_C_WRITING,
	METRICS_C_LINGER,
};

struct metrics_client {
	int fd;
	enum metrics_cstate state;
	char *in; /* max_request octets */
	size_t in_len;
	char *resp; /* malloc'd per response */
	size_t resp_len;
	size_t resp_off;
	uint64_t deadline_ms;
};

struct ctl_mw {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* 0, -ENOSPC (over max), -EINVAL (bad name), -ENOMEM */
};

struct ctl_metrics {
	struct ctl_metrics_conf conf;
	ctl_metrics_fn fn;
	void *ctx;
	int lfd;
	uint16_t port;
	struct metrics_client *clients;
	struct pollfd *pfds;
	int *pfd_client;
	struct ctl_metrics_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the writer ------------------------------------------------------ */

static void mw_put(struct ctl_mw *w, const char *s, size_t n)
{
	if (w->err != 0)
		return;
	if (w->len + n > w->max) {
		w->err = -ENOSPC;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap != 0 ? w->cap : 4096;
		char *nb;

		while (cap < w->len + n)
			cap *= 2;
		if (cap > w->max)
			cap = w->max;
		nb = realloc(w->buf, cap);
		if (nb == NULL) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void mw_puts(struct ctl_mw *w, const char *s)
{
	mw_put(w, s, strlen(s));
}

static bool valid_metric_name(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == ':'))
			return false;
	}
	return true;
}

static bool valid_label_name(const char *s)
{
	if (s == NULL || strchr(s, ':') != NULL || strncmp(s, "__", 2) == 0)
		return false;
	return valid_metric_name(s);
}

/* Exposition format: label values escape backslash, double quote and
 * line feed; HELP text escapes backslash and line feed only. */
static void mw_escaped(struct ctl_mw *w, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (esc == NULL)
			continue;
		mw_put(w, run, (size_t)(s - run));
		mw_puts(w, esc);
		run = s + 1;
	}
	mw_put(w, run, (size_t)(s - run));
}

int ctl_metrics_fmt_double(char *buf, size_t len, double v)
{
	int n;

	if (isnan(v))
		n = snprintf(buf, len, "NaN");
	else if (isinf(v))
		n = snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	else {
		/* Shortest of the two that reads back exactly. */
		n = snprintf(buf, len, "%.15g", v);
		if (n > 0 && (size_t)n < len && strtod(buf, NULL) != v)
			n = snprintf(buf, len, "%.17g", v);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/* name{labels[,le="..."]} */
static void mw_series(struct ctl_mw *w, const char *name, const char *suffix,
		      const struct ctl_label *labels, unsigned n_labels,
		      const char *le)
{
	unsigned i;

	if (!valid_metric_name(name) || (n_labels > 0 && labels == NULL)) {
		w->err = w->err != 0 ? w->err : -EINVAL;
		return;
	}
	mw_puts(w, name);
	mw_puts(w, suffix);
	if (n_labels == 0 && le == NULL)
		return;
	mw_puts(w, "{");
	for (i = 0; i < n_labels; i++) {
		if (!valid_label_name(labels[i].name) ||
		    labels[i].value == NULL ||
		    (le != NULL && strcmp(labels[i].name, "le") == 0)) {
			w->err = w->err != 0 ? w->err : -EINVAL;
			return;
		}
		if (i > 0)
			mw_puts(w, ",");
		mw_puts(w, labels[i].name);
		mw_puts(w, "=\"");
		mw_escaped(w, labels[i].value, true);
		mw_puts(w, "\"");
	}
	if (le != NULL) {
		if (n_labels > 0)
			mw_puts(w, ",");
		mw_puts(w, "le=\"");
		mw_puts(w, le);
		mw_puts(w, "\"");
	}
	mw_puts(w, "}");
}

void ctl_mw_family(struct ctl_mw *w, const char *name, const char *help,
		   enum ctl_metric_type type)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	if (!valid_metric_name(name) || (unsigned)type > CTL_METRIC_HISTOGRAM) {
		w->err = w->err != 0 ? w->err : -EINVAL;
		return;
	}
	if (help != NULL) {
		mw_puts(w, "# HELP ");
		mw_puts(w, name);
		mw_puts(w, " ");
		mw_escaped(w, help, false);
		mw_puts(w, "\n");
	}
	mw_puts(w, "# TYPE ");
	mw_puts(w, name);
	mw_puts(w, " ");
	mw_puts(w, types[type]);
	mw_puts(w, "\n");
}

void ctl_mw_u64(struct ctl_mw *w, const char *name,
		const struct ctl_label *labels, unsigned n_labels, uint64_t v)
{
	char num[32];

	mw_series(w, name, "", labels, n_labels, NULL);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
	mw_puts(w, num);
}

void ctl_mw_double(struct ctl_mw *w, const char *name,
		   const struct ctl_label *labels, unsigned n_labels, double v)
{
	char num[40];

	mw_series(w, name, "", labels, n_labels, NULL);
	num[0] = ' ';
	ctl_metrics_fmt_double(num + 1, sizeof(num) - 2, v);
	mw_puts(w, num);
	mw_puts(w, "\n");
}

void ctl_mw_histogram(struct ctl_mw *w, const char *name,
		      const struct ctl_label *labels, unsigned n_labels,
		      const double *bounds, const uint64_t *counts,
		      unsigned n_buckets, double sum, uint64_t count)
{
	char le[40], num[32];
	uint64_t cum = 0;
	unsigned i;

	for (i = 0; i < n_buckets; i++) {
		if ((i > 0 && !(bounds[i] > bounds[i - 1])) ||
		    isnan(bounds[i])) {
			w->err = w->err != 0 ? w->err : -EINVAL;
			return;
		}
		cum += counts[i];
		ctl_metrics_fmt_double(le, sizeof(le), bounds[i]);
		mw_series(w, name, "_bucket", labels, n_labels, le);
		snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
		mw_puts(w, num);
	}
	mw_series(w, name, "_bucket", labels, n_labels, "+Inf");
	snprintf(num, sizeof(num), " %" PRIu64 "\n", count);
	mw_puts(w, num);
	mw_series(w, name, "_sum", labels, n_labels, NULL);
	le[0] = ' ';
	ctl_metrics_fmt_double(le + 1, sizeof(le) - 2, sum);
	mw_puts(w, le);
	mw_puts(w, "\n");
	mw_series(w, name, "_count", labels, n_labels, NULL);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", count);
	mw_puts(w, num);
}

/* ---- HTTP ------------------------------------------------------------ */

static void free_all(struct ctl_metrics *m)
{
	unsigned i;

	if (m->clients != NULL) {
		for (i = 0; i < m->conf.max_clients; i++) {
			free(m->clients[i].in);
			free(m->clients[i].resp);
		}
	}
	free(m->clients);
	free(m->pfds);
	free(m->pfd_client);
	free(m);
}

struct ctl_metrics *ctl_metrics_create(const struct ctl_metrics_conf *conf,
				       ctl_metrics_fn fn, void *ctx, int *err)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ctl_metrics *m;
	char port[8];
	unsigned i;
	int rc, one = 1;

	if (conf == NULL || conf->address == NULL || fn == NULL) {
		*err = -EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	m->lfd = -1;
	m->conf = *conf;
	m->conf.address = NULL; /* not kept */
	m->fn = fn;
	m->ctx = ctx;
	if (m->conf.max_clients == 0)
		m->conf.max_clients = 8;
	if (m->conf.max_request == 0)
		m->conf.max_request = 8192;
	if (m->conf.max_response == 0)
		m->conf.max_response = 4u << 20;
	if (m->conf.timeout_ms == 0)
		m->conf.timeout_ms = 10000;
	m->clients = calloc(m->conf.max_clients, sizeof(*m->clients));
	m->pfds = calloc(m->conf.max_clients + 1, sizeof(*m->pfds));
	m->pfd_client = calloc(m->conf.max_clients + 1, sizeof(int));
	if (m->clients == NULL || m->pfds == NULL || m->pfd_client == NULL)
		goto nomem;
	for (i = 0; i < m->conf.max_clients; i++) {
		m->clients[i].fd = -1;
		m->clients[i].in = malloc(m->conf.max_request);
		if (m->clients[i].in == NULL)
			goto nomem;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", conf->port);
	memset(&ss, 0, sizeof(ss));
	if (getaddrinfo(conf->address, port, &hints, &ai) != 0 || ai == NULL) {
		rc = -EINVAL;
		goto fail;
	}
	m->lfd = socket(ai->ai_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0)
		goto fail_errno;
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->lfd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(m->lfd, (int)m->conf.max_clients) != 0 ||
	    getsockname(m->lfd, (struct sockaddr *)&ss, &sl) != 0)
		goto fail_errno;
	m->port = ntohs(ss.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&ss)->sin6_port
				: ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(ai);
	return m;

fail_errno:
	rc = -errno;
	goto fail;
nomem:
	rc = -ENOMEM;
fail:
	if (ai != NULL)
		freeaddrinfo(ai);
	if (m->lfd >= 0)
		close(m->lfd);
	free_all(m);
	*err = rc;
	return NULL;
}

uint16_t ctl_metrics_port(const struct ctl_metrics *m)
{
	return m->port;
}

int ctl_metrics_fd(const struct ctl_metrics *m)
{
	return m->lfd;
}

void ctl_metrics_get_stats(const struct ctl_metrics *m,
			   struct ctl_metrics_stats *s)
{
	*s = m->st;
}

static void client_close(struct metrics_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = METRICS_C_FREE;
	c->in_len = 0;
	free(c->resp);
	c->resp = NULL;
	c->resp_len = c->resp_off = 0;
}

/* Sets c's response: a status line, headers, then body (may be NULL when
 * head_only or len 0). Returns false when out of memory (c closed). */
static bool set_response(struct metrics_client *c, const char *status,
			 const char *ctype, const char *body, size_t len,
			 bool head_only)
{
	char head[256];
	int hl = snprintf(
		head, sizeof(head),
		"HTTP/1.0 %s\r\n"
		"Content-Type: %s\r\n"
		"Content-Length: %zu\r\n"
		"Connection: close\r\n"
		"%s"
		"\r\n",
		status, ctype, len,
		strncmp(status, "405", 3) == 0 ? "Allow: GET, HEAD\r\n" : "");
	size_t blen = head_only ? 0 : len;

	c->resp = malloc((size_t)hl + blen);
	if (c->resp == NULL) {
		client_close(c);
		return false;
	}
	memcpy(c->resp, head, (size_t)hl);
	if (blen > 0)
		memcpy(c->resp + hl, body, blen);
	c->resp_len = (size_t)hl + blen;
	c->resp_off = 0;
	c->state = METRICS_C_WRITING;
	return true;
}

static void respond_text(struct metrics_client *c, const char *status,
			 const char *text, bool head_only)
{
	set_response(c, status, "text/plain; charset=utf-8", text, strlen(text),
		     head_only);
}

/* Parses the request head in c->in[0..head_len) and sets the response. */
static void handle_request(struct ctl_metrics *m, struct metrics_client *c,
			   size_t head_len)
{
	char *line = c->in, *sp1, *sp2, *eol, *q;
	bool head_only;
	struct ctl_mw w;

	eol = memchr(line, '\n', head_len);
	if (eol > line && eol[-1] == '\r')
		eol--;
	*eol = '\0';
	sp1 = strchr(line, ' ');
	sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		m->st.bad_requests++;
		respond_text(c, "400 Bad Request", "bad request\n", false);
		return;
	}
	*sp1 = *sp2 = '\0';
	head_only = strcmp(line, "HEAD") == 0;
	if (strcmp(line, "GET") != 0 && !head_only) {
		m->st.bad_requests++;
		respond_text(c, "405 Method Not Allowed", "only GET and HEAD\n",
			     false);
		return;
	}
	q = strchr(sp1 + 1, '?');
	if (q != NULL)
		*q = '\0';
	if (strcmp(sp1 + 1, "/metrics") != 0) {
		m->st.not_found++;
		respond_text(c, "404 Not Found", "not found: try /metrics\n",
			     head_only);
		return;
	}

	memset(&w, 0, sizeof(w));
	w.max = m->conf.max_response;
	m->fn(&w, m->ctx);
	if (w.err != 0) {
		m->st.overflows++;
		respond_text(c, "500 Internal Server Error",
			     w.err == -ENOSPC ? "metrics over max_response\n"
			     : w.err == -EINVAL
				     ? "bad metric or label name (a bug)\n"
				     : "out of memory\n",
			     head_only);
	} else {
		m->st.scrapes++;
		set_response(c, "200 OK",
			     "text/plain; version=0.0.4; "
			     "charset=utf-8",
			     w.buf, w.len, head_only);
	}
	free(w.buf);
}

/* Finds the end of the request head; 0 while incomplete. */
static size_t head_end(const char *b, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (b[i] != '\n')
			continue;
		if (b[i + 1] == '\n')
			return i + 2;
		if (b[i + 1] == '\r' && i + 2 < n && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void client_read(struct ctl_metrics *m, struct metrics_client *c)
{
	for (;;) {
		size_t room = m->conf.max_request - c->in_len, end;
		ssize_t n;

		if (room == 0) {
			m->st.bad_requests++;
			respond_text(c, "431 Request Header Fields Too Large",
				     "request too large\n", false);
			return;
		}
		n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_close(c); /* gone before asking */
			return;
		}
		c->in_len += (size_t)n;
		end = head_end(c->in, c->in_len);
		if (end != 0) {
			handle_request(m, c, end);
			return;
		}
	}
}

/* Returns true when the response is completely sent. */
static bool client_write(struct metrics_client *c, uint64_t now)
{
	while (c->resp_off < c->resp_len) {
		ssize_t n = send(c->fd, c->resp + c->resp_off,
				 c->resp_len - c->resp_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->resp_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		client_close(c);
		return false;
	}
	free(c->resp);
	c->resp = NULL;
	c->resp_len = c->resp_off = 0;
	shutdown(c->fd, SHUT_WR);
	c->state = METRICS_C_LINGER;
	if (c->deadline_ms > now + METRICS_LINGER_MS)
		c->deadline_ms = now + METRICS_LINGER_MS;
	return true;
}

static void client_drain(struct metrics_client *c)
{
	char sink[512];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		client_close(c);
		return;
	}
}

static void accept_clients(struct ctl_metrics *m, uint64_t now)
{
	static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\n"
				   "Content-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	unsigned i, k;

	for (k = 0; k < METRICS_ACCEPTS_PER_POLL; k++) {
		int fd = accept4(m->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct metrics_client *c = NULL;

		if (fd < 0)
			return;
		for (i = 0; i < m->conf.max_clients; i++) {
			if (m->clients[i].state == METRICS_C_FREE) {
				c = &m->clients[i];
				break;
			}
		}
		if (c == NULL) {
			ssize_t n = send(fd, busy, sizeof(busy) - 1,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)n;
			close(fd);
			m->st.refused++;
			continue;
		}
		c->fd = fd;
		c->state = METRICS_C_READING;
		c->in_len = 0;
		c->deadline_ms = now + m->conf.timeout_ms;
	}
}

int ctl_metrics_poll(struct ctl_metrics *m, int timeout_ms)
{
	unsigned i, n = 0;
	int rc, done = 0;
	uint64_t now;

	m->pfds[n].fd = m->lfd;
	m->pfds[n].events = POLLIN;
	m->pfd_client[n++] = -1;
	for (i = 0; i < m->conf.max_clients; i++) {
		struct metrics_client *c = &m->clients[i];

		if (c->state == METRICS_C_FREE)
			continue;
		m->pfds[n].fd = c->fd;
		m->pfds[n].events =
			c->state == METRICS_C_WRITING ? POLLOUT : POLLIN;
		m->pfd_client[n++] = (int)i;
	}
	rc = poll(m->pfds, n, timeout_ms < 0 ? 0 : timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	now = now_ms();

	for (i = 1; i < n && rc > 0; i++) {
		struct metrics_client *c = &m->clients[m->pfd_client[i]];

		if (m->pfds[i].revents == 0)
			continue;
		if (c->state == METRICS_C_READING)
			client_read(m, c);
		else if (c->state == METRICS_C_LINGER)
			client_drain(c);
		/* A response just built is tried at once, below. */
		if (c->state == METRICS_C_WRITING && client_write(c, now)) {
			done++;
			client_drain(c);
		}
	}
	if (m->pfds[0].revents & POLLIN)
		accept_clients(m, now);

	for (i = 0; i < m->conf.max_clients; i++) {
		struct metrics_client *c = &m->clients[i];

		if (c->state == METRICS_C_FREE || now < c->deadline_ms)
			continue;
		if (c->state != METRICS_C_LINGER)
			m->st.timed_out++;
		client_close(c);
	}
	return done;
}

void ctl_metrics_destroy(struct ctl_metrics *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < m->conf.max_clients; i++)
		if (m->clients[i].state != METRICS_C_FREE)
			client_close(&m->clients[i]);
	close(m->lfd);
	free_all(m);
}
