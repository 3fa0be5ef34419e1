/*
 * dovecot.c - Dovecot auth-client protocol 1.2, client side (see
 * dovecot.h). Lines are TAB-separated fields ending in LF; values escape
 * 0x01 as \001 '1', TAB as \001 't', LF as \001 'n' (Dovecot's
 * str_tabescape). The server's handshake: VERSION, MECH..., SPID, CUID,
 * COOKIE, DONE; then per request OK / FAIL / CONT with the request id.
 * Unknown lines are ignored (the protocol grows by adding them).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth/base64.h"
#include "auth/dovecot.h"

void auth_dovecot_init(struct auth_dovecot *c)
{
	memset(c, 0, sizeof(*c));
	c->state = AUTH_DC_HANDSHAKE;
}

ssize_t auth_dovecot_hello(struct auth_dovecot *c, uint32_t pid, char *out,
			   size_t cap)
{
	(void)c;
	int n = snprintf(out, cap, "VERSION\t1\t2\nCPID\t%u\n", pid);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* Appends value escaped; false when it does not fit. */
static bool put_escaped(char *out, size_t cap, size_t *o, const char *v,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = v[i], e = 0;

		if (c == 0x01)
			e = '1';
		else if (c == '\t')
			e = 't';
		else if (c == '\n')
			e = 'n';
		else if (c == '\r')
			e = 'r';
		if (*o + 2 >= cap)
			return false;
		if (e) {
			out[(*o)++] = 0x01;
			out[(*o)++] = e;
		} else {
			out[(*o)++] = c;
		}
	}
	return true;
}

static bool put(char *out, size_t cap, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (*o + n >= cap)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	return true;
}

ssize_t auth_dovecot_request(struct auth_dovecot *c, uint32_t id,
			     const char *mech, const uint8_t *resp, size_t n,
			     const char *rip, const char *lip, bool secured,
			     char *out, size_t cap)
{
	char head[64];
	size_t o = 0;

	if (c->state != AUTH_DC_READY)
		return -EAGAIN;
	unsigned bit = auth_mech_parse(mech, strlen(mech));

	if (bit == 0 || !(c->mechs & bit))
		return -ENOTSUP;
	snprintf(head, sizeof(head), "AUTH\t%u\t", id);
	if (!put(out, cap, &o, head) ||
	    !put_escaped(out, cap, &o, mech, strlen(mech)) ||
	    !put(out, cap, &o, "\tservice=smtp\tnologin"))
		return -ENOSPC;
	if (secured && !put(out, cap, &o, "\tsecured"))
		return -ENOSPC;
	if (rip && (!put(out, cap, &o, "\trip=") ||
		    !put_escaped(out, cap, &o, rip, strlen(rip))))
		return -ENOSPC;
	if (lip && (!put(out, cap, &o, "\tlip=") ||
		    !put_escaped(out, cap, &o, lip, strlen(lip))))
		return -ENOSPC;
	if (resp) {
		if (!put(out, cap, &o, "\tresp="))
			return -ENOSPC;
		ssize_t e = auth_b64_encode(resp, n, out + o, cap - o);

		if (e < 0)
			return -ENOSPC;
		o += (size_t)e;
	}
	if (o + 2 > cap)
		return -ENOSPC;
	out[o++] = '\n';
	out[o] = 0;
	return (ssize_t)o;
}

size_t auth_dovecot_feed(struct auth_dovecot *c, const char *in, size_t n)
{
	size_t room = sizeof(c->buf) - c->len;

	if (n > room)
		n = room;
	memcpy(c->buf + c->len, in, n);
	c->len += n;
	return n;
}

static int broken(struct auth_dovecot *c, const char *why)
{
	c->state = AUTH_DC_BROKEN;
	snprintf(c->error, sizeof(c->error), "%s", why);
	return -EPROTO;
}

/* Unescapes s in place (str_tabunescape). */
static void unescape(char *s)
{
	char *w = s;

	for (char *p = s; *p; p++) {
		if (*p == 0x01 && p[1]) {
			p++;
			*w++ = *p == '1'   ? 0x01
			       : *p == 't' ? '\t'
			       : *p == 'n' ? '\n'
			       : *p == 'r' ? '\r'
					   : *p;
		} else {
			*w++ = *p;
		}
	}
	*w = 0;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

/* One server line, NUL-terminated, split into fields at TABs. */
static int line(struct auth_dovecot *c, char *l, struct auth_dovecot_reply *r)
{
	char *f[64];
	int nf = 0;

	for (char *p = l;;) {
		if (nf == 64)
			break;
		f[nf++] = p;
		char *t = strchr(p, '\t');

		if (t == NULL)
			break;
		*t = 0;
		p = t + 1;
	}
	for (int i = 1; i < nf; i++)
		unescape(f[i]);
	if (c->state == AUTH_DC_HANDSHAKE) {
		if (strcmp(f[0], "VERSION") == 0) {
			if (nf < 3 || strcmp(f[1], "1") != 0)
				return broken(c, "server speaks another major "
						 "version");
		} else if (strcmp(f[0], "MECH") == 0 && nf >= 2) {
			c->mechs |= auth_mech_parse(f[1], strlen(f[1]));
		} else if (strcmp(f[0], "DONE") == 0) {
			c->state = AUTH_DC_READY;
		}
		return 0; /* SPID, CUID, COOKIE, unknown: ignored */
	}
	enum auth_dovecot_kind k;

	if (strcmp(f[0], "OK") == 0)
		k = AUTH_DC_OK;
	else if (strcmp(f[0], "FAIL") == 0)
		k = AUTH_DC_FAIL;
	else if (strcmp(f[0], "CONT") == 0)
		k = AUTH_DC_CONT;
	else
		return 0;
	if (nf < 2)
		return broken(c, "reply without an id");
	char *end;
	unsigned long id = strtoul(f[1], &end, 10);

	if (*end || f[1][0] == 0 || id > UINT32_MAX)
		return broken(c, "bad request id");
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->id = (uint32_t)id;
	if (k == AUTH_DC_CONT) {
		if (nf >= 3)
			copy(r->data, sizeof(r->data), f[2]);
		return 1;
	}
	for (int i = 2; i < nf; i++) {
		if (strncmp(f[i], "user=", 5) == 0)
			copy(r->user, sizeof(r->user), f[i] + 5);
		else if (strncmp(f[i], "reason=", 7) == 0)
			copy(r->reason, sizeof(r->reason), f[i] + 7);
		else if (strcmp(f[i], "temp") == 0 ||
			 strncmp(f[i], "code=temp", 9) == 0)
			r->temp = true;
	}
	return 1;
}

int auth_dovecot_next(struct auth_dovecot *c, struct auth_dovecot_reply *r)
{
	for (;;) {
		if (c->state == AUTH_DC_BROKEN)
			return -EPROTO;
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl == NULL) {
			if (c->len == sizeof(c->buf))
				return broken(c, "line too long");
			return 0;
		}
		*nl = 0;
		size_t used = (size_t)(nl - c->buf) + 1;

		if (memchr(c->buf, 0, used - 1))
			return broken(c, "NUL in a line");
		int k = line(c, c->buf, r);

		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (k != 0)
			return k;
	}
}

/* ---- blocking driver (worker threads) ---- */

static long left_ms(const struct timespec *t0, int timeout_ms)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	long el = (now.tv_sec - t0->tv_sec) * 1000 +
		  (now.tv_nsec - t0->tv_nsec) / 1000000;
	return timeout_ms - el;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

enum auth_result auth_dovecot_verify(const char *path, const char *login,
				     const char *password, size_t plen,
				     const char *rip, bool secured,
				     int timeout_ms, char *login_out,
				     size_t cap)
{
	struct auth_dovecot *c = malloc(sizeof(*c));
	struct auth_dovecot_reply *r = malloc(sizeof(*r));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	enum auth_result res = AUTH_RESULT_TEMPFAIL;
	uint8_t msg[2 * AUTH_MAX_FIELD + 2];
	char out[1400];
	struct timespec t0;
	char in[2048];
	size_t got = 0, pending = 0;
	bool sent = false;
	int fd = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!c || !r || strlen(path) >= sizeof(sa.sun_path) ||
	    strlen(login) > AUTH_MAX_FIELD || plen > AUTH_MAX_FIELD)
		goto out;
	auth_dovecot_init(c);
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	ssize_t n = auth_dovecot_hello(c, (uint32_t)getpid(), out, sizeof(out));

	if (n < 0 || !send_all(fd, out, (size_t)n))
		goto out;
	/* PLAIN: NUL login NUL password (no authzid) */
	size_t ml = 0, ll = strlen(login);

	msg[ml++] = 0;
	memcpy(msg + ml, login, ll);
	ml += ll;
	msg[ml++] = 0;
	memcpy(msg + ml, password, plen);
	ml += plen;
	for (;;) {
		int k;

		/* Replies first (also what arrived with the handshake). */
		while ((k = auth_dovecot_next(c, r)) == 1) {
			if (r->id != 1)
				continue;
			if (r->kind == AUTH_DC_OK) {
				res = AUTH_RESULT_OK;
				snprintf(login_out, cap, "%s",
					 r->user[0] ? r->user : login);
			} else if (r->kind == AUTH_DC_FAIL) {
				res = r->temp ? AUTH_RESULT_TEMPFAIL
					      : AUTH_RESULT_FAIL;
			} /* CONT to PLAIN with a response: protocol error */
			goto out;
		}
		if (k < 0)
			goto out;
		if (!sent && c->state == AUTH_DC_READY) {
			n = auth_dovecot_request(c, 1, "PLAIN", msg, ml, rip,
						 NULL, secured, out,
						 sizeof(out));
			if (n < 0 || !send_all(fd, out, (size_t)n))
				goto out;
			sent = true;
		}
		if (pending < got) {
			pending += auth_dovecot_feed(c, in + pending,
						     got - pending);
			continue;
		}
		long ms = left_ms(&t0, timeout_ms);
		struct pollfd pf = {fd, POLLIN, 0};

		if (ms <= 0 || poll(&pf, 1, (int)ms) <= 0)
			goto out;
		ssize_t g = recv(fd, in, sizeof(in), 0);

		if (g <= 0)
			goto out;
		got = (size_t)g;
		pending = 0;
	}
out:
	memset(msg, 0, sizeof(msg));
	memset(out, 0, sizeof(out));
	if (fd >= 0)
		close(fd);
	free(c);
	free(r);
	return res;
}
