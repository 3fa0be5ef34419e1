/*
 * dovecot.h - the client side of Dovecot's authentication protocol
 * (auth-client protocol 1.2, the one Postfix's smtpd_sasl_type = dovecot
 * speaks on /var/run/dovecot/auth-client): a second credential store
 * beside the users file.
 *
 * Sans-I/O: auth_dovecot_hello() and auth_dovecot_request() write the
 * bytes to send; auth_dovecot_feed() takes bytes received and
 * auth_dovecot_next() hands out parsed replies (OK, FAIL, CONT with
 * their id). auth_dovecot_verify() is the blocking driver that runs it
 * over a Unix socket: worker threads only (through auth_verify_job).
 *
 * Memory: struct auth_dovecot is the caller's; bounded buffers, no
 * allocation. Threads: one owner at a time.
 */
#ifndef MXG_AUTH_DOVECOT_H
#define MXG_AUTH_DOVECOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/sasl.h"

#define AUTH_DOVECOT_LINE 8192 /* longest line accepted from the server */

enum auth_dovecot_state {
	AUTH_DC_HANDSHAKE = 0, /* waiting for the server's DONE */
	AUTH_DC_READY,	       /* requests may be sent */
	AUTH_DC_BROKEN,	       /* protocol error: close the connection */
};

enum auth_dovecot_kind {
	AUTH_DC_OK = 0,
	AUTH_DC_FAIL,
	AUTH_DC_CONT,
};

struct auth_dovecot_reply {
	enum auth_dovecot_kind kind;
	uint32_t id;
	bool temp;		       /* FAIL with "temp": store trouble */
	char user[AUTH_MAX_FIELD + 1]; /* "user=" (canonical login), or "" */
	char reason[160];	       /* "reason=", or "" */
	char data[AUTH_DOVECOT_LINE];  /* CONT: base64 challenge */
};

struct auth_dovecot {
	enum auth_dovecot_state state;
	unsigned mechs; /* AUTH_MECH_* the server offers */
	char buf[AUTH_DOVECOT_LINE];
	size_t len;
	char error[120];
};

void auth_dovecot_init(struct auth_dovecot *c);

/* The client's handshake ("VERSION 1 2", "CPID pid"). Returns its length
 * or -ENOSPC. */
ssize_t auth_dovecot_hello(struct auth_dovecot *c, uint32_t pid, char *out,
			   size_t cap);

/* An AUTH request for mech with the initial response resp (n octets,
 * NULL: none), service "smtp", the client's and our addresses (dotted
 * text, may be NULL) and whether the session is encrypted. Returns its
 * length, -EAGAIN before the handshake is done, -ENOTSUP when the server
 * does not offer mech, -ENOSPC. */
ssize_t auth_dovecot_request(struct auth_dovecot *c, uint32_t id,
			     const char *mech, const uint8_t *resp, size_t n,
			     const char *rip, const char *lip, bool secured,
			     char *out, size_t cap);

/* Takes up to n received bytes; returns how many it took (fewer when its
 * buffer is full: call auth_dovecot_next() first). */
size_t auth_dovecot_feed(struct auth_dovecot *c, const char *in, size_t n);

/* Parses the next complete line: 1 with *r filled for OK/FAIL/CONT, 0
 * when no reply is complete (handshake lines are consumed here), -EPROTO
 * on a protocol error (state BROKEN, reason in c->error). */
int auth_dovecot_next(struct auth_dovecot *c, struct auth_dovecot_reply *r);

/* Blocking: connects to the Unix socket at path, handshakes, asks PLAIN
 * for (login, password) and waits for the answer, at most timeout_ms in
 * all. OK (canonical login in login_out, cap octets), FAIL, or TEMPFAIL
 * (socket, protocol, time-out, or Dovecot's "temp"). Worker threads. */
enum auth_result auth_dovecot_verify(const char *path, const char *login,
				     const char *password, size_t plen,
				     const char *rip, bool secured,
				     int timeout_ms, char *login_out,
				     size_t cap);

#endif /* MXG_AUTH_DOVECOT_H */
