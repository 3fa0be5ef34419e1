/*
 * admin.h - the admin API server: JSON lines over a local Unix stream
 * socket, the transport under mxgatectl (DESIGN section 8, issue 5).
 *
 * Protocol: a client sends one JSON object per line, e.g.
 *     {"cmd":"block","cidr":"192.0.2.0/24","expire":3600}
 * and gets exactly one JSON object per line back, in order:
 *     {"ok":true,...fields written by the handler...}
 *     {"ok":false,"error":"unknown command 'frob'"}
 * A client may send several requests on one connection; they are answered
 * one at a time. JSON is parsed and emitted with jansson (libjansson).
 *
 * Threads: everything here is called by one thread, the main lcore (never a
 * dataplane lcore). ctl_admin_poll() never blocks longer than its time-out
 * plus the time the registered handlers take: handlers run synchronously in
 * it and must themselves be quick (a reload compiles off the data path but
 * on this thread; that is the caller's choice).
 *
 * Bounds (all set at create, memory allocated then): max_clients
 * connections (one more is accepted, told "too many clients" and closed),
 * max_line octets per request (longer: error reply, then the connection is
 * closed), max_reply octets per reply, idle_timeout_ms without a complete
 * request or progress writing a reply closes the connection. jansson
 * allocates while parsing a request and building its reply.
 *
 * The socket file is created with mode 0600. A stale socket left by a dead
 * process is removed at create; a socket some live process still answers
 * on is not (-EADDRINUSE), nor is anything that is not a socket (-EEXIST).
 */
#ifndef MXG_CONTROL_ADMIN_H
#define MXG_CONTROL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct ctl_admin;
/* One parsed request, valid only during the handler call. */
struct ctl_admin_req;

struct ctl_admin_conf {
	const char *path;	  /* socket path, < 108 octets */
	unsigned max_clients;	  /* 0 = 16 */
	size_t max_line;	  /* request octets without '\n'; 0 = 4096 */
	size_t max_reply;	  /* reply octets without '\n'; 0 = 65536 */
	uint32_t idle_timeout_ms; /* 0 = 30000 */
};

/*
 * A command handler. req gives the request's arguments. On success it
 * writes a JSON object (e.g. {"uptime_s":12}) or nothing (empty string)
 * into out[0..outlen) as a NUL-terminated string and returns 0; the server
 * replies {"ok":true} followed by that object's members, on one line. On
 * failure it returns a negative errno and may write a plain-text message
 * (not JSON) into out; the reply is {"ok":false,"error":message}, or
 * strerror when out is empty. Output that is not a JSON object, or does not
 * fit, becomes an error reply. Called on the thread that polls.
 */
typedef int (*ctl_admin_handler_fn)(const struct ctl_admin_req *req, char *out,
				    size_t outlen, void *ctx);

/* Creates the socket at conf->path and listens. Returns NULL with *err set
 * to a negative errno: -ENAMETOOLONG, -EEXIST (not a socket),
 * -EADDRINUSE (a live server answers there), -ENOMEM, or what
 * socket/bind/listen returned. conf is copied. */
struct ctl_admin *ctl_admin_create(const struct ctl_admin_conf *conf, int *err);

/* Adds command name (<= 32 octets, copied) dispatched to fn(req, ..., ctx).
 * Returns 0, -EEXIST (already registered), -EINVAL (bad name) or -ENOSPC
 * (64 commands at most). The built-in command "help" lists them. */
int ctl_admin_register(struct ctl_admin *a, const char *name,
		       ctl_admin_handler_fn fn, void *ctx);

/* Waits at most timeout_ms (0 = do not wait) for activity, then accepts,
 * reads, dispatches complete requests, writes replies and closes idle or
 * finished connections. Returns the number of requests answered, or a
 * negative errno if poll() itself failed (EINTR counts as 0). */
int ctl_admin_poll(struct ctl_admin *a, int timeout_ms);

/* Closes every connection and the socket, unlinks the socket file, frees.
 * NULL is allowed. */
void ctl_admin_destroy(struct ctl_admin *a);

/* The listening descriptor, for a caller that multiplexes it with others
 * (read readiness means "call ctl_admin_poll(a, 0)"). */
int ctl_admin_fd(const struct ctl_admin *a);

/* The command name of req. */
const char *ctl_admin_req_cmd(const struct ctl_admin_req *req);
/* String argument key of req, or NULL when absent or not a string. */
const char *ctl_admin_req_str(const struct ctl_admin_req *req, const char *key);
/* Integer argument key: 0 and *v set, -ENOENT absent, -EINVAL not an
 * integer. */
int ctl_admin_req_int(const struct ctl_admin_req *req, const char *key,
		      int64_t *v);

/* Writes s as a JSON string literal, quotes included, into out (for
 * handlers building their reply). Returns the length written, or -ENOSPC
 * (out then holds "") when it does not fit in outlen with its NUL. */
int ctl_admin_json_str(char *out, size_t outlen, const char *s);

/* Counters of the server itself, for the metrics endpoint. */
struct ctl_admin_stats {
	uint64_t accepted;    /* connections accepted and kept */
	uint64_t refused;     /* accepted over max_clients, closed */
	uint64_t requests;    /* requests answered, ok or not */
	uint64_t errors;      /* of which ok:false */
	uint64_t too_long;    /* lines over max_line */
	uint64_t idle_closed; /* connections closed by idle_timeout_ms */
	uint32_t clients;     /* open connections now */
};
void ctl_admin_get_stats(const struct ctl_admin *a, struct ctl_admin_stats *s);

#endif /* MXG_CONTROL_ADMIN_H */
