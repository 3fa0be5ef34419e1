/*
 * admin.c - the admin API server: JSON lines over a Unix stream socket
 * (contract in admin.h).
 *
 * Threads: one thread (the main lcore) owns a struct ctl_admin and
 * everything in it; nothing is shared, nothing locked.
 * Promises: every socket is non-blocking, so ctl_admin_poll() waits only in
 * poll() (bounded by its time-out) and in handlers. Buffers are allocated at
 * create; jansson allocates per request. A client that stops reading its
 * replies is not read from either (one reply in flight per connection), so
 * memory per connection is fixed.
 *
 * Per connection an explicit state:
 *   READING  no reply pending: read, answer complete lines one by one
 *   WRITING  a reply is pending: send it, then back to READING
 *   CLOSING  a last reply is pending (line too long): send it, then close
 * A peer that shut its sending side (peer_eof) still gets the answers to
 * the lines it sent; the connection closes when none is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control/admin.h"

#define ADMIN_MAX_CMDS 64
#define ADMIN_CMD_NAME_MAX 32
#define ADMIN_ACCEPTS_PER_POLL 64

enum admin_cstate {
	ADMIN_C_FREE = 0,
	ADMIN_C_READING,
	ADMIN_C_WRITING,
	ADMIN_C_CLOSING,
};

struct admin_client {
	int fd;
	enum admin_cstate state;
	bool peer_eof; /* peer shut its side: answer what is buffered */
	char *in;      /* max_line + 2 octets (line, '\r', '\n') */
	size_t in_len;
	char *out; /* max_reply + 1 octets (reply, '\n') */
	size_t out_len;
	size_t out_off;
	uint64_t last_ms; /* accept, last request, last write progress */
};

struct admin_cmd {
	char name[ADMIN_CMD_NAME_MAX + 1];
	ctl_admin_handler_fn fn;
	void *ctx;
};

struct ctl_admin_req {
	const char *cmd;
	json_t *root;
};

struct ctl_admin {
	struct ctl_admin_conf conf;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* of our socket file, so destroy unlinks only ours */
	ino_t ino;
	int lfd;
	struct admin_client *clients;
	struct pollfd *pfds; /* max_clients + 1 */
	int *pfd_client;     /* pfds[i] -> client index, -1 = listener */
	char *scratch;	     /* handler output, max_reply + 1 */
	struct admin_cmd cmds[ADMIN_MAX_CMDS];
	unsigned n_cmds;
	struct ctl_admin_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- socket file ---------------------------------------------------- */

/*
 * A socket file left at path by a process that died is removed; one that a
 * live server still accepts on is left alone. Probing by connect() is what
 * tells them apart (a dead listener's file refuses with ECONNREFUSED). The
 * probe is non-blocking so a live server with a full backlog (EAGAIN) does
 * not hang us. There is a window between probe and bind in which another
 * starting instance could win: bind() then fails with EADDRINUSE.
 */
static int remove_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat sb;
	int fd, rc;

	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
		close(fd);
		return -EADDRINUSE;
	}
	rc = errno;
	close(fd);
	if (rc != ECONNREFUSED)
		return -rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static void free_all(struct ctl_admin *a)
{
	unsigned i;

	if (a->clients != NULL) {
		for (i = 0; i < a->conf.max_clients; i++) {
			free(a->clients[i].in);
			free(a->clients[i].out);
		}
	}
	free(a->clients);
	free(a->pfds);
	free(a->pfd_client);
	free(a->scratch);
	free(a);
}

struct ctl_admin *ctl_admin_create(const struct ctl_admin_conf *conf, int *err)
{
	struct ctl_admin *a;
	struct sockaddr_un sa;
	struct stat sb;
	unsigned i;
	int rc;

	if (conf == NULL || conf->path == NULL || conf->path[0] == '\0') {
		*err = -EINVAL;
		return NULL;
	}
	if (strlen(conf->path) >= sizeof(sa.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	a->lfd = -1;
	a->conf = *conf;
	if (a->conf.max_clients == 0)
		a->conf.max_clients = 16;
	if (a->conf.max_line == 0)
		a->conf.max_line = 4096;
	if (a->conf.max_reply == 0)
		a->conf.max_reply = 65536;
	if (a->conf.idle_timeout_ms == 0)
		a->conf.idle_timeout_ms = 30000;
	snprintf(a->path, sizeof(a->path), "%s", conf->path);
	a->conf.path = a->path;

	a->clients = calloc(a->conf.max_clients, sizeof(*a->clients));
	a->pfds = calloc(a->conf.max_clients + 1, sizeof(*a->pfds));
	a->pfd_client = calloc(a->conf.max_clients + 1, sizeof(int));
	a->scratch = malloc(a->conf.max_reply + 1);
	if (a->clients == NULL || a->pfds == NULL || a->pfd_client == NULL ||
	    a->scratch == NULL)
		goto nomem;
	for (i = 0; i < a->conf.max_clients; i++) {
		a->clients[i].fd = -1;
		a->clients[i].in = malloc(a->conf.max_line + 2);
		a->clients[i].out = malloc(a->conf.max_reply + 1);
		if (a->clients[i].in == NULL || a->clients[i].out == NULL)
			goto nomem;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, a->path, strlen(a->path));
	rc = remove_stale(a->path, &sa);
	if (rc < 0)
		goto fail;
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->lfd < 0)
		goto fail_errno;
	/* Linux creates the file with the socket inode's mode masked by the
	 * umask: setting it first leaves no window in which the file is
	 * wider than 0600. The chmod after bind covers other kernels. */
	if (fchmod(a->lfd, 0600) != 0)
		goto fail_errno;
	if (bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail_errno;
	if (chmod(a->path, 0600) != 0 || lstat(a->path, &sb) != 0) {
		rc = -errno;
		unlink(a->path);
		goto fail;
	}
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	if (listen(a->lfd, (int)a->conf.max_clients) != 0) {
		rc = -errno;
		unlink(a->path);
		goto fail;
	}
	return a;

fail_errno:
	rc = -errno;
	goto fail;
nomem:
	rc = -ENOMEM;
fail:
	if (a->lfd >= 0)
		close(a->lfd);
	free_all(a);
	*err = rc;
	return NULL;
}

static bool valid_cmd_name(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > ADMIN_CMD_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

static const struct admin_cmd *find_cmd(const struct ctl_admin *a,
					const char *name)
{
	unsigned i;

	for (i = 0; i < a->n_cmds; i++)
		if (strcmp(a->cmds[i].name, name) == 0)
			return &a->cmds[i];
	return NULL;
}

int ctl_admin_register(struct ctl_admin *a, const char *name,
		       ctl_admin_handler_fn fn, void *ctx)
{
	struct admin_cmd *c;

	if (name == NULL || fn == NULL || !valid_cmd_name(name))
		return -EINVAL;
	if (strcmp(name, "help") == 0 || find_cmd(a, name) != NULL)
		return -EEXIST;
	if (a->n_cmds == ADMIN_MAX_CMDS)
		return -ENOSPC;
	c = &a->cmds[a->n_cmds++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->fn = fn;
	c->ctx = ctx;
	return 0;
}

int ctl_admin_fd(const struct ctl_admin *a)
{
	return a->lfd;
}

void ctl_admin_get_stats(const struct ctl_admin *a, struct ctl_admin_stats *s)
{
	*s = a->st;
}

/* ---- requests ------------------------------------------------------- */

const char *ctl_admin_req_cmd(const struct ctl_admin_req *req)
{
	return req->cmd;
}

const char *ctl_admin_req_str(const struct ctl_admin_req *req, const char *key)
{
	json_t *v = json_object_get(req->root, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int ctl_admin_req_int(const struct ctl_admin_req *req, const char *key,
		      int64_t *v)
{
	json_t *j = json_object_get(req->root, key);

	if (j == NULL)
		return -ENOENT;
	if (!json_is_integer(j))
		return -EINVAL;
	*v = (int64_t)json_integer_value(j);
	return 0;
}

int ctl_admin_json_str(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	const unsigned char *p;

#define PUT(ch)                                                                \
	do {                                                                   \
		if (o + 1 >= outlen)                                           \
			goto nospace;                                          \
		out[o++] = (char)(ch);                                         \
	} while (0)
	PUT('"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			PUT('\\');
			PUT('"');
			break;
		case '\\':
			PUT('\\');
			PUT('\\');
			break;
		case '\n':
			PUT('\\');
			PUT('n');
			break;
		case '\r':
			PUT('\\');
			PUT('r');
			break;
		case '\t':
			PUT('\\');
			PUT('t');
			break;
		default:
			if (*p < 0x20) {
				PUT('\\');
				PUT('u');
				PUT('0');
				PUT('0');
				PUT(hex[*p >> 4]);
				PUT(hex[*p & 15]);
			} else {
				PUT(*p);
			}
		}
	}
	PUT('"');
#undef PUT
	out[o] = '\0';
	return (int)o;
nospace:
	if (outlen > 0)
		out[0] = '\0';
	return -ENOSPC;
}

/* Puts text (one JSON document, no newline in it) and '\n' as c's pending
 * reply. The caller checked it fits. */
static void set_reply(struct ctl_admin *a, struct admin_client *c,
		      const char *text, size_t len)
{
	(void)a;
	memcpy(c->out, text, len);
	c->out[len] = '\n';
	c->out_len = len + 1;
	c->out_off = 0;
}

/* {"ok":false,"error":msg}. msg comes from us, jansson or a handler; if it
 * is not valid UTF-8 or too long a fixed text replaces it. */
static void reply_error(struct ctl_admin *a, struct admin_client *c,
			const char *msg)
{
	static const char fallback[] = "{\"ok\":false,\"error\":\"error\"}";
	json_t *r = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	char *s = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;

	a->st.errors++;
	if (s != NULL && strlen(s) <= a->conf.max_reply)
		set_reply(a, c, s, strlen(s));
	else
		set_reply(a, c, fallback, sizeof(fallback) - 1);
	free(s);
	json_decref(r);
}

static void reply_help(struct ctl_admin *a, struct admin_client *c)
{
	json_t *r = json_pack("{s:b,s:[s]}", "ok", 1, "commands", "help");
	json_t *list = json_object_get(r, "commands");
	char *s;
	unsigned i;

	for (i = 0; i < a->n_cmds; i++)
		json_array_append_new(list, json_string(a->cmds[i].name));
	s = json_dumps(r, JSON_COMPACT);
	if (s != NULL && strlen(s) <= a->conf.max_reply)
		set_reply(a, c, s, strlen(s));
	else
		reply_error(a, c, "reply too large");
	free(s);
	json_decref(r);
}

/* Runs the handler of a parsed request and sets the reply. */
static void dispatch(struct ctl_admin *a, struct admin_client *c,
		     const struct admin_cmd *cmd, struct ctl_admin_req *req)
{
	char msg[160];
	json_t *body, *reply;
	char *s;
	int rc;

	a->scratch[0] = '\0';
	rc = cmd->fn(req, a->scratch, a->conf.max_reply + 1, cmd->ctx);
	a->scratch[a->conf.max_reply] = '\0';
	if (rc < 0) {
		reply_error(a, c,
			    a->scratch[0] != '\0' ? a->scratch : strerror(-rc));
		return;
	}
	if (a->scratch[0] == '\0') {
		body = json_object();
	} else {
		body = json_loads(a->scratch, 0, NULL);
		if (!json_is_object(body)) {
			json_decref(body);
			snprintf(msg, sizeof(msg),
				 "internal error: command '%s' produced "
				 "invalid output",
				 cmd->name);
			reply_error(a, c, msg);
			return;
		}
	}
	json_object_del(body, "ok");
	reply = json_pack("{s:b}", "ok", 1);
	json_object_update(reply, body);
	s = json_dumps(reply, JSON_COMPACT);
	json_decref(body);
	json_decref(reply);
	if (s == NULL) {
		reply_error(a, c, "out of memory");
	} else if (strlen(s) > a->conf.max_reply) {
		snprintf(msg, sizeof(msg),
			 "reply too large (%zu octets, limit %zu)", strlen(s),
			 a->conf.max_reply);
		reply_error(a, c, msg);
	} else {
		set_reply(a, c, s, strlen(s));
	}
	free(s);
}

/* Answers one request line (without its line end). */
static void handle_line(struct ctl_admin *a, struct admin_client *c,
			const char *line, size_t len)
{
	char msg[200];
	json_error_t je;
	json_t *root, *jcmd;
	const struct admin_cmd *cmd;
	struct ctl_admin_req req;

	a->st.requests++;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(msg, sizeof(msg), "bad JSON at column %d: %s",
			 je.column, je.text);
		reply_error(a, c, msg);
		return;
	}
	if (!json_is_object(root)) {
		reply_error(a, c, "bad request: not a JSON object");
		goto out;
	}
	jcmd = json_object_get(root, "cmd");
	if (!json_is_string(jcmd)) {
		reply_error(a, c, "bad request: missing \"cmd\" (a string)");
		goto out;
	}
	req.cmd = json_string_value(jcmd);
	req.root = root;
	if (strcmp(req.cmd, "help") == 0) {
		reply_help(a, c);
		goto out;
	}
	cmd = find_cmd(a, req.cmd);
	if (cmd == NULL) {
		if (valid_cmd_name(req.cmd))
			snprintf(msg, sizeof(msg),
				 "unknown command '%s' (try \"help\")",
				 req.cmd);
		else
			snprintf(msg, sizeof(msg),
				 "unknown command (try \"help\")");
		reply_error(a, c, msg);
		goto out;
	}
	dispatch(a, c, cmd, &req);
out:
	json_decref(root);
}

/* ---- connections ---------------------------------------------------- */

static void client_close(struct ctl_admin *a, struct admin_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = ADMIN_C_FREE;
	c->peer_eof = false;
	c->in_len = 0;
	c->out_len = 0;
	c->out_off = 0;
	a->st.clients--;
}

/* Sends what it can of the pending reply. Returns true when it is all
 * sent, false when the socket is full or the connection was closed. */
static bool client_flush(struct ctl_admin *a, struct admin_client *c,
			 uint64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
				 c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->last_ms = now;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		client_close(a, c);
		return false;
	}
	c->out_len = c->out_off = 0;
	if (c->state == ADMIN_C_CLOSING) {
		client_close(a, c);
		return false;
	}
	c->state = ADMIN_C_READING;
	return true;
}

/*
 * Answers the complete lines in c's input, one at a time: each reply is
 * sent before the next line is looked at, so a client that does not read
 * its replies stops being served (and times out) instead of growing a
 * queue. Returns the number of requests answered.
 */
static int client_process(struct ctl_admin *a, struct admin_client *c,
			  uint64_t now)
{
	char msg[96];
	int answered = 0;

	while (c->state == ADMIN_C_READING) {
		char *nl = memchr(c->in, '\n', c->in_len);
		size_t len, used;

		if (nl == NULL) {
			if (c->in_len >= a->conf.max_line + 2)
				goto too_long;
			if (c->peer_eof && c->in_len > 0) {
				/* A last line without '\n' before EOF. */
				c->in[c->in_len++] = '\n';
				continue;
			}
			if (c->peer_eof)
				client_close(a, c);
			return answered;
		}
		used = (size_t)(nl - c->in) + 1;
		len = used - 1;
		if (len > 0 && c->in[len - 1] == '\r')
			len--;
		if (len > a->conf.max_line)
			goto too_long;
		if (len > 0) {
			handle_line(a, c, c->in, len);
			c->state = ADMIN_C_WRITING;
			answered++;
			c->last_ms = now;
		}
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (len > 0 && !client_flush(a, c, now))
			return answered;
		/* client_flush() set READING again */
	}
	return answered;

too_long:
	a->st.too_long++;
	a->st.requests++;
	snprintf(msg, sizeof(msg), "request line longer than %zu octets",
		 a->conf.max_line);
	reply_error(a, c, msg);
	c->state = ADMIN_C_CLOSING;
	c->in_len = 0;
	client_flush(a, c, now);
	return answered + 1;
}

static int client_read(struct ctl_admin *a, struct admin_client *c,
		       uint64_t now)
{
	size_t cap = a->conf.max_line + 2;

	while (c->in_len < cap) {
		ssize_t n = recv(c->fd, c->in + c->in_len, cap - c->in_len,
				 MSG_DONTWAIT);

		if (n > 0) {
			c->in_len += (size_t)n;
			/* Stop at the first complete line: the rest waits in
			 * the socket until the reply is out (back-pressure). */
			if (memchr(c->in + c->in_len - (size_t)n, '\n',
				   (size_t)n) != NULL)
				break;
			continue;
		}
		if (n == 0) {
			c->peer_eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		client_close(a, c);
		return 0;
	}
	return client_process(a, c, now);
}

static void accept_clients(struct ctl_admin *a, uint64_t now)
{
	static const char busy[] =
		"{\"ok\":false,\"error\":\"too many clients\"}\n";
	unsigned i, k;

	for (k = 0; k < ADMIN_ACCEPTS_PER_POLL; k++) {
		int fd = accept4(a->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_client *c = NULL;

		if (fd < 0)
			return; /* EAGAIN, or an aborted connection */
		for (i = 0; i < a->conf.max_clients; i++) {
			if (a->clients[i].state == ADMIN_C_FREE) {
				c = &a->clients[i];
				break;
			}
		}
		if (c == NULL) {
			/* Best effort: a fresh socket has room for this. */
			ssize_t n = send(fd, busy, sizeof(busy) - 1,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)n;
			close(fd);
			a->st.refused++;
			continue;
		}
		c->fd = fd;
		c->state = ADMIN_C_READING;
		c->peer_eof = false;
		c->in_len = c->out_len = c->out_off = 0;
		c->last_ms = now;
		a->st.accepted++;
		a->st.clients++;
	}
}

int ctl_admin_poll(struct ctl_admin *a, int timeout_ms)
{
	unsigned i, n = 0;
	int rc, answered = 0;
	uint64_t now;

	a->pfds[n].fd = a->lfd;
	a->pfds[n].events = POLLIN;
	a->pfd_client[n++] = -1;
	for (i = 0; i < a->conf.max_clients; i++) {
		struct admin_client *c = &a->clients[i];

		if (c->state == ADMIN_C_FREE)
			continue;
		a->pfds[n].fd = c->fd;
		a->pfds[n].events =
			c->state == ADMIN_C_READING ? POLLIN : POLLOUT;
		a->pfd_client[n++] = (int)i;
	}
	rc = poll(a->pfds, n, timeout_ms < 0 ? 0 : timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	now = now_ms();

	for (i = 1; i < n && rc > 0; i++) {
		struct admin_client *c = &a->clients[a->pfd_client[i]];
		short re = a->pfds[i].revents;

		if (re == 0 || c->state == ADMIN_C_FREE)
			continue;
		if (c->state == ADMIN_C_READING) {
			answered += client_read(a, c, now);
		} else if (client_flush(a, c, now)) {
			/* Reply out: answer any line already buffered. */
			answered += client_process(a, c, now);
		}
	}
	if (a->pfds[0].revents & POLLIN)
		accept_clients(a, now);

	for (i = 0; i < a->conf.max_clients; i++) {
		struct admin_client *c = &a->clients[i];

		if (c->state != ADMIN_C_FREE &&
		    now - c->last_ms >= a->conf.idle_timeout_ms) {
			a->st.idle_closed++;
			client_close(a, c);
		}
	}
	return answered;
}

void ctl_admin_destroy(struct ctl_admin *a)
{
	struct stat sb;
	unsigned i;

	if (a == NULL)
		return;
	for (i = 0; i < a->conf.max_clients; i++)
		if (a->clients[i].state != ADMIN_C_FREE)
			client_close(a, &a->clients[i]);
	close(a->lfd);
	/* Only the file we created: a newer instance may have replaced it. */
	if (lstat(a->path, &sb) == 0 && sb.st_dev == a->dev &&
	    sb.st_ino == a->ino)
		unlink(a->path);
	free_all(a);
}
