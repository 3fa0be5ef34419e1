/*
 * mxgatectl.c - the operator's command-line client of the admin API
 * (control/admin.h; protocol in docs/operations.md).
 *
 *   mxgatectl [-s SOCKET] [-j] [-t SECONDS] COMMAND [ARGS]
 *
 * Validates the arguments locally (bad CIDR, missing or extra arguments:
 * message, exit 2), sends one JSON line to the socket, waits for the one
 * line of reply and prints it for humans (-j: the raw JSON line). Exit 0 if
 * the gateway answered ok:true, 1 on ok:false or when it cannot be reached,
 * 2 on a usage error. A single-threaded short-lived process: it may block,
 * but never longer than -t (default 30 s) waiting for the gateway.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control/cidr.h"

#define CTL_DEFAULT_SOCKET "/run/mxgate/admin.sock"
/* Well above any reply the server is configured to send (admin.h). */
#define REPLY_MAX (4u << 20)
/* One year: longer blocks belong in the configuration file. */
#define EXPIRE_MAX 31536000

static const char *prog = "mxgatectl";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxgatectl [-s SOCKET] [-j] [-t SECONDS] COMMAND "
		"[ARGS]\n"
		"  -s SOCKET   admin socket (default " CTL_DEFAULT_SOCKET ")\n"
		"  -j          print the raw JSON reply\n"
		"  -t SECONDS  wait at most this long for the reply "
		"(default 30)\n"
		"commands:\n"
		"  status                         state, uptime, cores\n"
		"  stats                          counters, per core and "
		"total\n"
		"  reload                         reread the configuration "
		"file\n"
		"  show-config                    the running policy\n"
		"  drain                          stop accepting, finish "
		"sessions, exit\n"
		"  reopen-log                     reopen the log file "
		"(after logrotate)\n"
		"  block CIDR [--expire SECONDS]  refuse connections from "
		"CIDR\n"
		"  allow CIDR [--expire SECONDS]  accept CIDR even if a list "
		"denies it\n"
		"  unblock CIDR                   lift a pushed block or "
		"allow\n"
		"  backend-down NAME              take a backend out of "
		"service\n"
		"  backend-up NAME                put it back\n"
		"  limit KEY VALUE                change a limit\n"
		"  domain-add DOMAIN              accept mail for DOMAIN\n"
		"  domain-del DOMAIN              stop accepting it\n"
		"Runtime pushes (block, limit, domain-*, backend-*) are lost "
		"on "
		"restart\nunless also written to the configuration file.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see mxgatectl -h)\n");
	return 2;
}

/* NAME of a backend or pool: as config.c accepts names, <= 64 printable
 * octets without space, quote or backslash. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

/* A domain as in pools[].domains: LDH labels of 1..63, <= 253 in all, a
 * leading "." meaning every subdomain, a trailing dot tolerated. */
static bool valid_domain(const char *s)
{
	size_t n, i, label = 0;

	if (*s == '.')
		s++;
	n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
		if (ch == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

/* Decimal 0..max, nothing else. */
static bool parse_uint(const char *s, long long max, long long *v)
{
	long long x = 0;

	if (*s == '\0' || strlen(s) > 18)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (*s - '0');
	}
	if (x > max)
		return false;
	*v = x;
	return true;
}

static bool valid_limit_key(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-' || ch == '[' ||
		      ch == ']'))
			return false;
	}
	return true;
}

/* Builds the request from argv (after the options) into *req. Returns 0 or
 * the exit status of a usage error (message printed). */
static int build_request(int argc, char **argv, json_t **req)
{
	static const char *const bare[] = {"status",	  "stats", "reload",
					   "show-config", "drain",
					   "reopen-log",  NULL};
	const char *cmd = argv[0];
	char err[160];
	struct ctl_cidr cidr;
	long long v;
	json_t *r;
	int i;

	*req = NULL;
	for (i = 0; bare[i] != NULL; i++) {
		if (strcmp(cmd, bare[i]) == 0) {
			if (argc != 1)
				return usage_error("%s takes no arguments",
						   cmd);
			*req = json_pack("{s:s}", "cmd", cmd);
			return 0;
		}
	}
	if (strcmp(cmd, "block") == 0 || strcmp(cmd, "unblock") == 0 ||
	    strcmp(cmd, "allow") == 0) {
		/* block and allow take --expire; unblock removes either */
		bool block = cmd[0] != 'u';

		if (argc < 2)
			return usage_error("%s: missing CIDR", cmd);
		if (ctl_cidr_parse(argv[1], &cidr, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s: bad CIDR '%s': %s\n", prog,
				cmd, argv[1], err);
			return 2;
		}
		r = json_pack("{s:s,s:s}", "cmd", cmd, "cidr", argv[1]);
		if (block && argc == 4 && strcmp(argv[2], "--expire") == 0) {
			if (!parse_uint(argv[3], EXPIRE_MAX, &v) || v == 0) {
				json_decref(r);
				fprintf(stderr,
					"%s: block: bad --expire '%s' (want "
					"seconds, 1..%d)\n",
					prog, argv[3], EXPIRE_MAX);
				return 2;
			}
			json_object_set_new(r, "expire", json_integer(v));
		} else if (block && argc == 3 &&
			   strcmp(argv[2], "--expire") == 0) {
			json_decref(r);
			return usage_error("block: --expire needs SECONDS", "");
		} else if (argc != 2) {
			json_decref(r);
			return usage_error(block ? "block: unexpected "
						   "argument '%s' (usage: "
						   "block CIDR [--expire "
						   "SECONDS])"
						 : "unblock: unexpected "
						   "argument '%s'",
					   argv[2]);
		}
		*req = r;
		return 0;
	}
	if (strcmp(cmd, "backend-down") == 0 ||
	    strcmp(cmd, "backend-up") == 0) {
		if (argc != 2)
			return usage_error("%s: need exactly one NAME", cmd);
		if (!valid_name(argv[1]))
			return usage_error("bad backend name '%s' (1..64 "
					   "printable characters, no space)",
					   argv[1]);
		*req = json_pack("{s:s,s:s}", "cmd", cmd, "name", argv[1]);
		return 0;
	}
	if (strcmp(cmd, "limit") == 0) {
		if (argc != 3)
			return usage_error("limit: need KEY VALUE%s", "");
		if (!valid_limit_key(argv[1]))
			return usage_error("limit: bad KEY '%s' (letters, "
					   "digits, '_', '.', '-', '[', ']')",
					   argv[1]);
		if (!parse_uint(argv[2], (1LL << 53), &v))
			return usage_error("limit: bad VALUE '%s' (want a "
					   "non-negative integer)",
					   argv[2]);
		*req = json_pack("{s:s,s:s,s:I}", "cmd", cmd, "key", argv[1],
				 "value", (json_int_t)v);
		return 0;
	}
	if (strcmp(cmd, "domain-add") == 0 || strcmp(cmd, "domain-del") == 0) {
		if (argc != 2)
			return usage_error("%s: need exactly one DOMAIN", cmd);
		if (!valid_domain(argv[1]))
			return usage_error("bad domain '%s' (example.com, or "
					   ".example.com for its subdomains)",
					   argv[1]);
		*req = json_pack("{s:s,s:s}", "cmd", cmd, "domain", argv[1]);
		return 0;
	}
	return usage_error("unknown command '%s'", cmd);
}

/* Prints a reply for humans: one "key: value" line per member; objects
 * and arrays as indented JSON under their key. */
static void print_human(json_t *reply)
{
	const char *key;
	json_t *v;
	int n = 0;

	json_object_foreach(reply, key, v)
	{
		char *s;

		if (strcmp(key, "ok") == 0)
			continue;
		n++;
		if (json_is_string(v)) {
			printf("%s: %s\n", key, json_string_value(v));
			continue;
		}
		if (json_is_object(v) || json_is_array(v))
			s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
		else
			s = json_dumps(v, JSON_ENCODE_ANY);
		printf(json_is_object(v) || json_is_array(v) ? "%s:\n%s\n"
							     : "%s: %s\n",
		       key, s != NULL ? s : "?");
		free(s);
	}
	if (n == 0)
		printf("ok\n");
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends line, reads one reply line into *reply (malloc'd, NUL-terminated,
 * newline removed). Returns 0, or 1 after printing why. */
static int exchange(const char *path, const char *line, int timeout_s,
		    char **reply)
{
	struct sockaddr_un sa;
	size_t len = strlen(line), off = 0, cap = 4096, got = 0;
	long long deadline = mono_ms() + (long long)timeout_s * 1000;
	char *buf;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		fprintf(stderr, "%s: cannot connect to %s: %s%s\n", prog, path,
			strerror(e),
			e == ENOENT || e == ECONNREFUSED
				? " (is mxgate running?)"
			: e == EACCES ? " (the socket is mode 0600: run as "
					"its owner)"
				      : "");
		close(fd);
		return 1;
	}
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: sending to %s: %s\n", prog, path,
				strerror(errno));
			close(fd);
			return 1;
		}
		off += (size_t)n;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = deadline - mono_ms();
		char *nl;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			fprintf(stderr,
				"%s: no reply from %s within %d s (is mxgate "
				"stuck?)\n",
				prog, path, timeout_s);
			goto fail;
		}
		if (got + 1 == cap) {
			char *nb;

			if (cap >= REPLY_MAX) {
				fprintf(stderr, "%s: reply too large\n", prog);
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				fprintf(stderr, "%s: out of memory\n", prog);
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: reading from %s: %s\n", prog, path,
				strerror(errno));
			goto fail;
		}
		if (n == 0) {
			fprintf(stderr,
				"%s: %s closed the connection without a "
				"reply\n",
				prog, path);
			goto fail;
		}
		got += (size_t)n;
		buf[got] = '\0';
		nl = memchr(buf, '\n', got);
		if (nl != NULL) {
			*nl = '\0';
			break;
		}
	}
	close(fd);
	*reply = buf;
	return 0;
fail:
	free(buf);
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = CTL_DEFAULT_SOCKET;
	bool raw = false;
	long long timeout_s = 30;
	char *line, *reply_text;
	json_t *req, *reply, *ok, *err;
	json_error_t je;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+s:jt:h")) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 't':
			if (!parse_uint(optarg, 3600, &timeout_s) ||
			    timeout_s == 0)
				return usage_error("-t: bad SECONDS '%s' "
						   "(1..3600)",
						   optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (path[0] == '\0' ||
	    strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return usage_error("bad socket path '%s' (1..107 octets)",
				   path);
	rc = build_request(argc - optind, argv + optind, &req);
	if (rc != 0)
		return rc;
	if (req == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (line == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	{
		/* The protocol is one line per request. */
		size_t n = strlen(line);
		char *l2 = realloc(line, n + 2);

		if (l2 == NULL) {
			free(line);
			return 1;
		}
		line = l2;
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	rc = exchange(path, line, (int)timeout_s, &reply_text);
	free(line);
	if (rc != 0)
		return rc;
	reply = json_loads(reply_text, 0, &je);
	if (!json_is_object(reply)) {
		fprintf(stderr, "%s: malformed reply from %s: %s\n", prog, path,
			reply_text);
		json_decref(reply);
		free(reply_text);
		return 1;
	}
	ok = json_object_get(reply, "ok");
	err = json_object_get(reply, "error");
	if (raw)
		printf("%s\n", reply_text);
	if (json_is_true(ok)) {
		if (!raw)
			print_human(reply);
		rc = 0;
	} else {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			json_is_string(err) ? json_string_value(err)
					    : "failed (no error text)");
		rc = 1;
	}
	json_decref(reply);
	free(reply_text);
	return rc;
}
