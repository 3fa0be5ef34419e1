/*
 * test_admin.c - the admin API server (control/admin.h) over real Unix
 * sockets in a temporary directory, mxgatectl run as a subprocess against
 * it and against a missing socket, and CIDR parsing (control/cidr.h).
 * Usage: test_admin PATH-TO-mxgatectl
 * Single-threaded: the test is both the clients and the server's poller.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control/admin.h"
#include "control/cidr.h"

extern char **environ;

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
				"FAIL %s:%d:\n  got:  '%s'\n  want: '%s'\n",   \
				__FILE__, __LINE__, (got), (want));            \
			failures++;                                            \
		}                                                              \
	} while (0)

static char dir[64];
static char sock_path[100];

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handlers --------------------------------------------------------- */

static struct {
	char cidr[64];
	int64_t expire;
	int calls;
} blocked;

static int h_status(const struct ctl_admin_req *req, char *out, size_t len,
		    void *ctx)
{
	(void)req;
	(void)ctx;
	snprintf(out, len, "{\"state\":\"running\",\"cores\":2}");
	return 0;
}

static int h_echo(const struct ctl_admin_req *req, char *out, size_t len,
		  void *ctx)
{
	const char *t = ctl_admin_req_str(req, "text");
	int n;

	(void)ctx;
	if (t == NULL) {
		snprintf(out, len, "missing argument 'text' (a string)");
		return -EINVAL;
	}
	n = snprintf(out, len, "{\"text\":");
	if (ctl_admin_json_str(out + n, len - (size_t)n - 1, t) < 0)
		return -ENOSPC;
	strcat(out, "}");
	return 0;
}

static int h_block(const struct ctl_admin_req *req, char *out, size_t len,
		   void *ctx)
{
	const char *c = ctl_admin_req_str(req, "cidr");
	struct ctl_cidr cidr;
	char err[128];
	int rc;

	(void)ctx;
	if (c == NULL) {
		snprintf(out, len, "missing argument 'cidr' (a string)");
		return -EINVAL;
	}
	if (ctl_cidr_parse(c, &cidr, err, sizeof(err)) != 0) {
		snprintf(out, len, "bad cidr '%s': %s", c, err);
		return -EINVAL;
	}
	blocked.expire = 0;
	rc = ctl_admin_req_int(req, "expire", &blocked.expire);
	if (rc == -EINVAL) {
		snprintf(out, len, "'expire' must be an integer");
		return rc;
	}
	snprintf(blocked.cidr, sizeof(blocked.cidr), "%s", c);
	blocked.calls++;
	return 0; /* empty: {"ok":true} */
}

static int h_errno(const struct ctl_admin_req *req, char *out, size_t len,
		   void *ctx)
{
	(void)req;
	(void)out;
	(void)len;
	(void)ctx;
	return -EBUSY; /* no text: strerror */
}

static int h_garbage(const struct ctl_admin_req *req, char *out, size_t len,
		     void *ctx)
{
	(void)req;
	(void)ctx;
	snprintf(out, len, "[1,2]");
	return 0;
}

static int h_big(const struct ctl_admin_req *req, char *out, size_t len,
		 void *ctx)
{
	size_t i, n = len - 3; /* fits the buffer, not the reply */

	(void)req;
	(void)ctx;
	strcpy(out, "{\"x\":\"");
	for (i = 6; i < n; i++)
		out[i] = 'a';
	strcpy(out + n, "\"}");
	return 0;
}

static int h_nested(const struct ctl_admin_req *req, char *out, size_t len,
		    void *ctx)
{
	(void)req;
	(void)ctx;
	snprintf(out, len,
		 "{\"total\":{\"sessions\":5},\"per_core\":[{\"sessions\":"
		 "2},{\"sessions\":3}]}");
	return 0;
}

static struct ctl_admin *make_server(unsigned max_clients, size_t max_line,
				     uint32_t idle_ms)
{
	struct ctl_admin_conf conf = {
		.path = sock_path,
		.max_clients = max_clients,
		.max_line = max_line,
		.max_reply = 1024,
		.idle_timeout_ms = idle_ms,
	};
	struct ctl_admin *a;
	int err = 0;

	a = ctl_admin_create(&conf, &err);
	if (a == NULL) {
		fprintf(stderr, "ctl_admin_create: %s\n", strerror(-err));
		exit(1);
	}
	CHECK(ctl_admin_register(a, "status", h_status, NULL) == 0);
	CHECK(ctl_admin_register(a, "echo", h_echo, NULL) == 0);
	CHECK(ctl_admin_register(a, "block", h_block, NULL) == 0);
	CHECK(ctl_admin_register(a, "errno", h_errno, NULL) == 0);
	CHECK(ctl_admin_register(a, "garbage", h_garbage, NULL) == 0);
	CHECK(ctl_admin_register(a, "big", h_big, NULL) == 0);
	CHECK(ctl_admin_register(a, "stats", h_nested, NULL) == 0);
	return a;
}

/* ---- clients ------------------------------------------------------------ */

static int cli_connect(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void cli_send(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);

		if (k < 0) {
			perror("send");
			exit(1);
		}
		s += k;
		n -= (size_t)k;
	}
}

/*
 * Polls the server while reading fd until want_lines lines arrived, EOF,
 * or 2 s passed. Returns the text read (static), *eof set if the server
 * closed.
 */
static char rbuf[65536];
static const char *cli_read(struct ctl_admin *a, int fd, int want_lines,
			    bool *eof)
{
	long long end = mono_ms() + 2000;
	size_t got = 0;
	int lines = 0;

	*eof = false;
	rbuf[0] = '\0';
	while (mono_ms() < end && lines < want_lines) {
		ssize_t n;

		ctl_admin_poll(a, 5);
		n = recv(fd, rbuf + got, sizeof(rbuf) - 1 - got, 0);
		if (n == 0) {
			*eof = true;
			break;
		}
		if (n < 0) {
			if (errno == ECONNRESET) {
				*eof = true;
				break;
			}
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			lines += rbuf[got + (size_t)i] == '\n';
		got += (size_t)n;
		rbuf[got] = '\0';
	}
	return rbuf;
}

/* One request, one reply line (newline stripped). */
static char reply[65536];
static const char *ask(struct ctl_admin *a, const char *line)
{
	int fd = cli_connect();
	bool eof;
	char *nl;

	cli_send(fd, line, strlen(line));
	snprintf(reply, sizeof(reply), "%s", cli_read(a, fd, 1, &eof));
	close(fd);
	nl = strchr(reply, '\n');
	if (nl != NULL)
		*nl = '\0';
	return reply;
}

/* Server sees EOF within 2 s? */
static bool wait_eof(struct ctl_admin *a, int fd)
{
	bool eof;

	cli_read(a, fd, 1000, &eof);
	return eof;
}

/* ---- tests -------------------------------------------------------------- */

static void test_socket_file(void)
{
	struct ctl_admin_conf conf = {.path = sock_path};
	struct ctl_admin *a, *b;
	struct sockaddr_un sa;
	struct stat sb;
	mode_t old = umask(0); /* mode must not depend on the umask */
	int err = 0, fd;

	a = ctl_admin_create(&conf, &err);
	umask(old);
	CHECK(a != NULL);
	CHECK(lstat(sock_path, &sb) == 0);
	CHECK(S_ISSOCK(sb.st_mode));
	CHECK((sb.st_mode & 07777) == 0600);

	/* A live server is not displaced. */
	b = ctl_admin_create(&conf, &err);
	CHECK(b == NULL && err == -EADDRINUSE);
	ctl_admin_destroy(a);
	CHECK(lstat(sock_path, &sb) != 0 && errno == ENOENT);

	/* A stale socket (bound, process gone) is removed. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(fd);
	CHECK(lstat(sock_path, &sb) == 0);
	a = ctl_admin_create(&conf, &err);
	CHECK(a != NULL);
	CHECK(strcmp(ask(a, "{\"cmd\":\"help\"}\n"),
		     "{\"ok\":true,\"commands\":[\"help\"]}") == 0);
	ctl_admin_destroy(a);

	/* Not a socket: left alone. */
	fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	a = ctl_admin_create(&conf, &err);
	CHECK(a == NULL && err == -EEXIST);
	unlink(sock_path);

	/* Too long for sun_path. */
	conf.path =
		"/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	a = ctl_admin_create(&conf, &err);
	CHECK(a == NULL && err == -ENAMETOOLONG);
}

static void test_register(void)
{
	struct ctl_admin *a = make_server(4, 256, 5000);

	CHECK(ctl_admin_register(a, "status", h_status, NULL) == -EEXIST);
	CHECK(ctl_admin_register(a, "help", h_status, NULL) == -EEXIST);
	CHECK(ctl_admin_register(a, "Bad Name", h_status, NULL) == -EINVAL);
	CHECK(ctl_admin_register(a, "", h_status, NULL) == -EINVAL);
	CHECK(ctl_admin_register(a, "x", NULL, NULL) == -EINVAL);
	ctl_admin_destroy(a);
}

static void test_round_trips(void)
{
	struct ctl_admin *a = make_server(4, 256, 5000);
	struct ctl_admin_stats st;
	char line[512];
	int i;

	CHECK_STR(ask(a, "{\"cmd\":\"status\"}\n"),
		  "{\"ok\":true,\"state\":\"running\",\"cores\":2}");
	/* CRLF is accepted too */
	CHECK_STR(ask(a, "{\"cmd\":\"status\"}\r\n"),
		  "{\"ok\":true,\"state\":\"running\",\"cores\":2}");
	CHECK_STR(ask(a, "{\"cmd\":\"help\"}\n"),
		  "{\"ok\":true,\"commands\":[\"help\",\"status\",\"echo\","
		  "\"block\",\"errno\",\"garbage\",\"big\",\"stats\"]}");
	CHECK_STR(ask(a, "{\"cmd\":\"echo\",\"text\":\"a\\\"b\\\\c\\n\"}\n"),
		  "{\"ok\":true,\"text\":\"a\\\"b\\\\c\\n\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"stats\"}\n"),
		  "{\"ok\":true,\"total\":{\"sessions\":5},\"per_core\":[{"
		  "\"sessions\":2},{\"sessions\":3}]}");

	blocked.calls = 0;
	CHECK_STR(ask(a, "{\"cmd\":\"block\",\"cidr\":\"192.0.2.0/24\","
			 "\"expire\":3600}\n"),
		  "{\"ok\":true}");
	CHECK(blocked.calls == 1 && strcmp(blocked.cidr, "192.0.2.0/24") == 0 &&
	      blocked.expire == 3600);

	/* errors */
	CHECK_STR(ask(a, "{\"cmd\":\"frob\"}\n"),
		  "{\"ok\":false,\"error\":\"unknown command 'frob' (try "
		  "\\\"help\\\")\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"FROB me\"}\n"),
		  "{\"ok\":false,\"error\":\"unknown command (try "
		  "\\\"help\\\")\"}");
	CHECK(strncmp(ask(a, "{\"cmd\":\"status\"\n"),
		      "{\"ok\":false,\"error\":\"bad JSON at column ",
		      39) == 0);
	CHECK(strncmp(ask(a, "hello\n"),
		      "{\"ok\":false,\"error\":\"bad JSON at column ",
		      39) == 0);
	CHECK_STR(
		ask(a, "[1,2]\n"),
		"{\"ok\":false,\"error\":\"bad request: not a JSON object\"}");
	CHECK_STR(ask(a, "{\"verb\":\"status\"}\n"),
		  "{\"ok\":false,\"error\":\"bad request: missing \\\"cmd\\\" "
		  "(a string)\"}");
	CHECK_STR(ask(a, "{\"cmd\":7}\n"),
		  "{\"ok\":false,\"error\":\"bad request: missing \\\"cmd\\\" "
		  "(a string)\"}");
	CHECK(strncmp(ask(a, "{\"cmd\":\"status\",\"cmd\":\"x\"}\n"),
		      "{\"ok\":false,\"error\":\"bad JSON", 29) == 0);
	CHECK_STR(ask(a, "{\"cmd\":\"block\"}\n"),
		  "{\"ok\":false,\"error\":\"missing argument 'cidr' (a "
		  "string)\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"block\",\"cidr\":\"10.1.2.3/8\"}\n"),
		  "{\"ok\":false,\"error\":\"bad cidr '10.1.2.3/8': host bits "
		  "set after the prefix (did you mean 10.0.0.0/8?)\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"block\",\"cidr\":\"10.0.0.0/8\","
			 "\"expire\":\"soon\"}\n"),
		  "{\"ok\":false,\"error\":\"'expire' must be an integer\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"errno\"}\n"),
		  "{\"ok\":false,\"error\":\"Device or resource busy\"}");
	CHECK_STR(ask(a, "{\"cmd\":\"garbage\"}\n"),
		  "{\"ok\":false,\"error\":\"internal error: command "
		  "'garbage' produced invalid output\"}");
	CHECK(strncmp(ask(a, "{\"cmd\":\"big\"}\n"),
		      "{\"ok\":false,\"error\":\"reply too large (", 38) == 0);
	/* Invalid UTF-8 in a string is bad JSON, never echoed raw. */
	CHECK(strncmp(ask(a, "{\"cmd\":\"\xff\xfe\"}\n"),
		      "{\"ok\":false,\"error\":\"bad JSON", 29) == 0);

	/* Several requests pipelined on one connection, answered in order,
	 * empty lines skipped. */
	{
		int fd = cli_connect();
		bool eof;
		const char *two = "{\"cmd\":\"status\"}\n\n{\"cmd\":\"frob\"}\n"
				  "{\"cmd\":\"echo\",\"text\":\"3\"}\n";

		cli_send(fd, two, strlen(two));
		CHECK_STR(cli_read(a, fd, 3, &eof),
			  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n"
			  "{\"ok\":false,\"error\":\"unknown command 'frob' "
			  "(try \\\"help\\\")\"}\n"
			  "{\"ok\":true,\"text\":\"3\"}\n");
		CHECK(!eof);
		/* The same connection keeps working. */
		cli_send(fd, "{\"cmd\":\"status\"}\n", 17);
		CHECK_STR(cli_read(a, fd, 1, &eof),
			  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
		close(fd);
	}

	/* A request split over many writes. */
	{
		int fd = cli_connect();
		const char *req = "{\"cmd\":\"status\"}\n";
		bool eof;

		for (i = 0; req[i] != '\0'; i++) {
			cli_send(fd, req + i, 1);
			ctl_admin_poll(a, 1);
		}
		CHECK_STR(cli_read(a, fd, 1, &eof),
			  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
		close(fd);
	}

	/* Last line without '\n' before the client shuts its side. */
	{
		int fd = cli_connect();
		bool eof;

		cli_send(fd, "{\"cmd\":\"status\"}", 16);
		shutdown(fd, SHUT_WR);
		CHECK_STR(cli_read(a, fd, 2, &eof),
			  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
		CHECK(eof);
		close(fd);
	}

	/* A line of exactly max_line (256) octets is accepted... */
	memset(line, ' ', sizeof(line));
	memcpy(line, "{\"cmd\":\"status\"", 15);
	line[255] = '}';
	line[256] = '\n';
	line[257] = '\0';
	CHECK_STR(ask(a, line),
		  "{\"ok\":true,\"state\":\"running\",\"cores\":2}");
	/* ... one more is refused and the connection closed. */
	{
		int fd = cli_connect();
		bool eof;

		line[256] = ' ';
		line[257] = '}';
		line[258] = '\n';
		line[259] = '\0';
		cli_send(fd, line, strlen(line));
		CHECK_STR(cli_read(a, fd, 2, &eof),
			  "{\"ok\":false,\"error\":\"request line longer than "
			  "256 octets\"}\n");
		CHECK(eof);
		close(fd);
	}
	/* A long line with no newline at all, too. */
	{
		int fd = cli_connect();
		bool eof;

		memset(line, 'x', 400);
		cli_send(fd, line, 400);
		CHECK_STR(cli_read(a, fd, 2, &eof),
			  "{\"ok\":false,\"error\":\"request line longer than "
			  "256 octets\"}\n");
		CHECK(eof);
		close(fd);
	}
	ctl_admin_get_stats(a, &st);
	CHECK(st.too_long == 2);
	CHECK(st.clients == 0);
	ctl_admin_destroy(a);
}

static void test_bounds(void)
{
	struct ctl_admin *a = make_server(4, 256, 300);
	struct ctl_admin_stats st;
	int fds[5], i;
	bool eof;
	long long t0;

	for (i = 0; i < 4; i++) {
		fds[i] = cli_connect();
		ctl_admin_poll(a, 0);
	}
	ctl_admin_get_stats(a, &st);
	CHECK(st.clients == 4);
	/* The fifth is told and closed. */
	fds[4] = cli_connect();
	CHECK_STR(cli_read(a, fds[4], 2, &eof),
		  "{\"ok\":false,\"error\":\"too many clients\"}\n");
	CHECK(eof);
	close(fds[4]);
	/* The four are all served. */
	for (i = 0; i < 4; i++)
		cli_send(fds[i], "{\"cmd\":\"status\"}\n", 17);
	for (i = 0; i < 4; i++)
		CHECK_STR(cli_read(a, fds[i], 1, &eof),
			  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
	/* Freeing one slot makes room. */
	close(fds[0]);
	ctl_admin_poll(a, 10);
	ctl_admin_poll(a, 10);
	fds[0] = cli_connect();
	cli_send(fds[0], "{\"cmd\":\"status\"}\n", 17);
	CHECK_STR(cli_read(a, fds[0], 1, &eof),
		  "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
	ctl_admin_get_stats(a, &st);
	CHECK(st.refused == 1 && st.accepted == 5);

	/* Idle clients are closed after 300 ms. */
	t0 = mono_ms();
	for (i = 0; i < 4; i++)
		CHECK(wait_eof(a, fds[i]));
	CHECK(mono_ms() - t0 >= 250);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	ctl_admin_get_stats(a, &st);
	CHECK(st.idle_closed == 4 && st.clients == 0);

	/* The poll never waits longer than asked. */
	t0 = mono_ms();
	CHECK(ctl_admin_poll(a, 50) == 0);
	CHECK(mono_ms() - t0 >= 45 && mono_ms() - t0 < 500);
	t0 = mono_ms();
	CHECK(ctl_admin_poll(a, 0) == 0);
	CHECK(mono_ms() - t0 < 20);
	ctl_admin_destroy(a);
}

static void test_json_str(void)
{
	char b[32];

	CHECK(ctl_admin_json_str(b, sizeof(b), "a\"\\\n\x01z") == 16);
	CHECK_STR(b, "\"a\\\"\\\\\\n\\u0001z\"");
	CHECK(ctl_admin_json_str(b, 4, "abc") == -ENOSPC && b[0] == '\0');
	CHECK(ctl_admin_json_str(b, 5, "abc") == -ENOSPC);
	CHECK(ctl_admin_json_str(b, 6, "abc") == 5);
	CHECK_STR(b, "\"abc\"");
}

static void test_cidr(void)
{
	struct ctl_cidr c;
	char e[128], s[CTL_CIDR_STRLEN];

	CHECK(ctl_cidr_parse("192.0.2.0/24", &c, e, sizeof(e)) == 0);
	CHECK(c.family == AF_INET && c.prefix_len == 24 && c.addr[0] == 192 &&
	      c.addr[3] == 0);
	CHECK(ctl_cidr_format(&c, s, sizeof(s)) > 0);
	CHECK_STR(s, "192.0.2.0/24");
	CHECK(ctl_cidr_parse("198.51.100.7", &c, e, sizeof(e)) == 0);
	CHECK(c.prefix_len == 32);
	CHECK(ctl_cidr_parse("0.0.0.0/0", &c, e, sizeof(e)) == 0);
	CHECK(ctl_cidr_parse("2001:db8::/32", &c, e, sizeof(e)) == 0);
	CHECK(c.family == AF_INET6 && c.prefix_len == 32);
	ctl_cidr_format(&c, s, sizeof(s));
	CHECK_STR(s, "2001:db8::/32");
	CHECK(ctl_cidr_parse("2001:db8::1", &c, e, sizeof(e)) == 0 &&
	      c.prefix_len == 128);
	CHECK(ctl_cidr_parse("10.1.2.3/8", &c, e, sizeof(e)) == -EINVAL);
	CHECK_STR(e, "host bits set after the prefix (did you mean "
		     "10.0.0.0/8?)");
	CHECK(ctl_cidr_parse("10.0.0.0/33", &c, e, sizeof(e)) == -EINVAL);
	CHECK_STR(e, "prefix length 33 too long (want 0..32)");
	CHECK(ctl_cidr_parse("2001:db8::/129", &c, e, sizeof(e)) == -EINVAL);
	CHECK(ctl_cidr_parse("10.0.0.0/", &c, e, sizeof(e)) == -EINVAL);
	CHECK_STR(e, "bad prefix length (want 0..32)");
	CHECK(ctl_cidr_parse("10.0.0.0/8x", &c, e, sizeof(e)) == -EINVAL);
	CHECK(ctl_cidr_parse("10.0.0.0/-1", &c, e, sizeof(e)) == -EINVAL);
	CHECK(ctl_cidr_parse("10.0.0/8", &c, e, sizeof(e)) == -EINVAL);
	CHECK_STR(e, "not an address (want a.b.c.d/len or x:y::/len)");
	CHECK(ctl_cidr_parse("", &c, e, sizeof(e)) == -EINVAL);
	CHECK(ctl_cidr_parse("/8", &c, e, sizeof(e)) == -EINVAL);
	CHECK(ctl_cidr_parse("example.com/8", &c, NULL, 0) == -EINVAL);
	CHECK(ctl_cidr_parse("2001:db8::1/64", &c, e, sizeof(e)) == -EINVAL);
	CHECK_STR(e, "host bits set after the prefix (did you mean "
		     "2001:db8::/64?)");
}

/* ---- mxgatectl --------------------------------------------------------- */

static const char *ctl_path;
static char out_buf[8192], err_buf[8192];

static void drain_pipe(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	while (*len + 1 < cap && (n = read(fd, buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	buf[*len] = '\0';
}

/* Runs mxgatectl with args while polling a (may be NULL); returns its exit
 * status, output in out_buf/err_buf. */
static int run_ctl(struct ctl_admin *a, const char *const *args)
{
	posix_spawn_file_actions_t fa;
	char *argv[16];
	int po[2], pe[2], st = -1, i;
	size_t ol = 0, el = 0;
	long long end = mono_ms() + 10000;
	pid_t pid;

	argv[0] = (char *)ctl_path;
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
		exit(1);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	if (posix_spawn(&pid, ctl_path, &fa, NULL, argv, environ) != 0) {
		perror("posix_spawn");
		exit(1);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (a != NULL)
			ctl_admin_poll(a, 5);
		else
			usleep(2000);
		drain_pipe(po[0], out_buf, sizeof(out_buf), &ol);
		drain_pipe(pe[0], err_buf, sizeof(err_buf), &el);
		if (mono_ms() > end) {
			kill(pid, SIGKILL);
		}
	}
	fcntl(po[0], F_SETFL, 0);
	fcntl(pe[0], F_SETFL, 0);
	drain_pipe(po[0], out_buf, sizeof(out_buf), &ol);
	drain_pipe(pe[0], err_buf, sizeof(err_buf), &el);
	close(po[0]);
	close(pe[0]);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#define CTL(a, ...) run_ctl(a, (const char *const[]){__VA_ARGS__, NULL})

static void test_mxgatectl(void)
{
	struct ctl_admin *a = make_server(4, 256, 5000);
	char missing[100], want[400];

	CHECK(CTL(a, "-s", sock_path, "status") == 0);
	CHECK_STR(out_buf, "state: running\ncores: 2\n");
	CHECK_STR(err_buf, "");
	CHECK(CTL(a, "-s", sock_path, "-j", "status") == 0);
	CHECK_STR(out_buf, "{\"ok\":true,\"state\":\"running\",\"cores\":2}\n");
	CHECK(CTL(a, "-s", sock_path, "stats") == 0);
	CHECK_STR(out_buf, "total:\n{\n  \"sessions\": 5\n}\nper_core:\n[\n"
			   "  {\n    \"sessions\": 2\n  },\n  {\n"
			   "    \"sessions\": 3\n  }\n]\n");

	blocked.calls = 0;
	CHECK(CTL(a, "-s", sock_path, "block", "192.0.2.0/24", "--expire",
		  "60") == 0);
	CHECK_STR(out_buf, "ok\n");
	CHECK(blocked.calls == 1 && strcmp(blocked.cidr, "192.0.2.0/24") == 0 &&
	      blocked.expire == 60);
	CHECK(CTL(a, "-s", sock_path, "block", "2001:db8::/32") == 0);
	CHECK(blocked.calls == 2 && blocked.expire == 0);

	/* The server refuses: exit 1, its message. */
	CHECK(CTL(a, "-s", sock_path, "limit", "max_conns", "5") == 1);
	CHECK_STR(err_buf, "mxgatectl: limit: unknown command 'limit' (try "
			   "\"help\")\n");
	CHECK_STR(out_buf, "");
	CHECK(CTL(a, "-s", sock_path, "reload") == 1);

	/* Local validation: exit 2, the server is never asked. */
	blocked.calls = 0;
	CHECK(CTL(a, "-s", sock_path, "block", "10.1.2.3/8") == 2);
	CHECK_STR(err_buf, "mxgatectl: block: bad CIDR '10.1.2.3/8': host "
			   "bits set after the prefix (did you mean "
			   "10.0.0.0/8?)\n");
	CHECK(CTL(a, "-s", sock_path, "block", "300.0.0.0/8") == 2);
	CHECK(strstr(err_buf, "bad CIDR '300.0.0.0/8': not an address") !=
	      NULL);
	CHECK(CTL(a, "-s", sock_path, "block") == 2);
	CHECK(strstr(err_buf, "mxgatectl: block: missing CIDR") == err_buf);
	CHECK(CTL(a, "-s", sock_path, "block", "10.0.0.0/8", "--expire") == 2);
	CHECK(CTL(a, "-s", sock_path, "block", "10.0.0.0/8", "--expire",
		  "soon") == 2);
	CHECK(strstr(err_buf, "bad --expire 'soon'") != NULL);
	CHECK(CTL(a, "-s", sock_path, "block", "10.0.0.0/8", "--expire", "0") ==
	      2);
	CHECK(CTL(a, "-s", sock_path, "block", "10.0.0.0/8", "extra") == 2);
	CHECK(CTL(a, "-s", sock_path, "unblock", "10.0.0.0/8", "--expire",
		  "5") == 2);
	CHECK(CTL(a, "-s", sock_path, "status", "now") == 2);
	CHECK(CTL(a, "-s", sock_path, "limit", "max_conns") == 2);
	CHECK(CTL(a, "-s", sock_path, "limit", "max_conns", "-1") == 2);
	CHECK(CTL(a, "-s", sock_path, "limit", "max conns", "1") == 2);
	CHECK(CTL(a, "-s", sock_path, "domain-add", "exa mple.com") == 2);
	CHECK(CTL(a, "-s", sock_path, "domain-add", "-bad.example") == 2);
	CHECK(CTL(a, "-s", sock_path, "domain-del") == 2);
	CHECK(CTL(a, "-s", sock_path, "backend-down") == 2);
	CHECK(CTL(a, "-s", sock_path, "frob") == 2);
	CHECK_STR(err_buf, "mxgatectl: unknown command 'frob'\n(see "
			   "mxgatectl -h)\n");
	CHECK(CTL(a, "-s", sock_path) == 2);
	CHECK(CTL(a, "-x", "status") == 2);
	CHECK(blocked.calls == 0);
	CHECK(CTL(a, "-h") == 0);
	CHECK(strstr(out_buf, "usage: mxgatectl") == out_buf);

	/* Valid arguments reach the server (which lacks these commands). */
	CHECK(CTL(a, "-s", sock_path, "domain-add", ".example.com") == 1);
	CHECK(strstr(err_buf, "unknown command 'domain-add'") != NULL);
	CHECK(CTL(a, "-s", sock_path, "backend-down", "mta1") == 1);
	CHECK(strstr(err_buf, "unknown command 'backend-down'") != NULL);
	ctl_admin_destroy(a);

	/* No gateway. */
	snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
	CHECK(CTL(NULL, "-s", missing, "status") == 1);
	snprintf(want, sizeof(want),
		 "mxgatectl: cannot connect to %s: No such file or directory "
		 "(is mxgate running?)\n",
		 missing);
	CHECK_STR(err_buf, want);
	CHECK_STR(out_buf, "");
	/* A stale socket file: refused, same hint. */
	{
		struct sockaddr_un sa;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", missing);
		CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		close(fd);
		CHECK(CTL(NULL, "-s", missing, "status") == 1);
		snprintf(want, sizeof(want),
			 "mxgatectl: cannot connect to %s: Connection refused "
			 "(is mxgate running?)\n",
			 missing);
		CHECK_STR(err_buf, want);
		unlink(missing);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_admin PATH-TO-mxgatectl\n");
		return 2;
	}
	ctl_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/mxg-admin-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/admin.sock", dir);

	test_json_str();
	test_cidr();
	test_socket_file();
	test_register();
	test_round_trips();
	test_bounds();
	test_mxgatectl();

	unlink(sock_path);
	rmdir(dir);
	printf("test_admin: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
