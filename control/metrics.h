/*
 * metrics.h - the Prometheus endpoint: a minimal HTTP/1.0 server on a
 * kernel TCP socket (the management address, not the DPDK port) answering
 * GET /metrics in the text exposition format 0.0.4 (DESIGN section 8).
 *
 * The text comes from a caller callback that emits families through the
 * writer below; the writer formats numbers, checks metric and label names
 * and escapes label values and help text as the format requires, so the
 * callback never builds exposition text by hand.
 *
 * Threads: one thread (the main lcore) creates, polls and destroys a
 * struct ctl_metrics; the callback runs on it, inside ctl_metrics_poll().
 * Promises: sockets are non-blocking; ctl_metrics_poll() waits only in
 * poll(), at most its time-out, plus the callback's run time. Bounds:
 * max_clients connections (more get 503 and are closed), max_request
 * octets of request head (more: 431, close), max_response octets of body
 * (more: 500, counted), timeout_ms per connection from accept to the last
 * byte sent. One response per connection (HTTP/1.0, Connection: close).
 * The response body is allocated per request (bounded by max_response).
 */
#ifndef MXG_CONTROL_METRICS_H
#define MXG_CONTROL_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct ctl_metrics;
struct ctl_mw; /* the writer handed to the callback */

struct ctl_metrics_conf {
	const char *address;  /* numeric IPv4 or IPv6, e.g. "127.0.0.1" */
	uint16_t port;	      /* 0 = any free port (see ctl_metrics_port) */
	unsigned max_clients; /* 0 = 8 */
	size_t max_request;   /* 0 = 8192 */
	size_t max_response;  /* 0 = 4 MiB */
	uint32_t timeout_ms;  /* 0 = 10000 */
};

/* Emits every metric family, on the polling thread, once per scrape. */
typedef void (*ctl_metrics_fn)(struct ctl_mw *w, void *ctx);

/* Binds and listens (SO_REUSEADDR). Returns NULL with *err a negative
 * errno: -EINVAL (address not numeric), -ENOMEM, or what
 * socket/bind/listen returned (-EADDRINUSE ...). */
struct ctl_metrics *ctl_metrics_create(const struct ctl_metrics_conf *conf,
				       ctl_metrics_fn fn, void *ctx, int *err);

/* The port actually bound (useful with conf.port 0). */
uint16_t ctl_metrics_port(const struct ctl_metrics *m);

/* The listening descriptor (read readiness: call ctl_metrics_poll(m, 0)). */
int ctl_metrics_fd(const struct ctl_metrics *m);

/* Waits at most timeout_ms for activity, accepts, reads requests, runs the
 * callback for each GET /metrics, writes responses, closes finished and
 * timed-out connections. Returns the number of responses completed, or a
 * negative errno when poll() failed (EINTR counts as 0). */
int ctl_metrics_poll(struct ctl_metrics *m, int timeout_ms);

/* Closes everything and frees. NULL is allowed. */
void ctl_metrics_destroy(struct ctl_metrics *m);

struct ctl_metrics_stats {
	uint64_t scrapes;      /* 200 responses to GET /metrics */
	uint64_t not_found;    /* 404 */
	uint64_t bad_requests; /* 400, 405, 431 */
	uint64_t overflows;    /* 500: body over max_response or a
				  writer error (bad name) */
	uint64_t refused;      /* 503: over max_clients */
	uint64_t timed_out;    /* closed by timeout_ms */
};
void ctl_metrics_get_stats(const struct ctl_metrics *m,
			   struct ctl_metrics_stats *s);

/* ---- the writer ------------------------------------------------------ */

enum ctl_metric_type {
	CTL_METRIC_COUNTER = 0,
	CTL_METRIC_GAUGE,
	CTL_METRIC_HISTOGRAM,
};

struct ctl_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting "__" */
	const char *value; /* any UTF-8; escaped by the writer */
};

/* "# HELP name help" and "# TYPE name type" lines, once per family before
 * its samples. name: [a-zA-Z_:][a-zA-Z0-9_:]*; help is escaped. */
void ctl_mw_family(struct ctl_mw *w, const char *name, const char *help,
		   enum ctl_metric_type type);

/* One sample: name{labels} value. labels may be NULL when n_labels is 0. */
void ctl_mw_u64(struct ctl_mw *w, const char *name,
		const struct ctl_label *labels, unsigned n_labels, uint64_t v);
/* Same with a float value (NaN, +Inf, -Inf written as the format says). */
void ctl_mw_double(struct ctl_mw *w, const char *name,
		   const struct ctl_label *labels, unsigned n_labels, double v);

/* A histogram's samples: name_bucket{labels,le="bound[i]"} with the
 * cumulative count of counts[0..i], name_bucket{labels,le="+Inf"} = count,
 * name_sum and name_count. counts[i] is the number of observations in
 * (bound[i-1], bound[i]] (not cumulative); bounds ascending; count is the
 * total including those above the last bound. */
void ctl_mw_histogram(struct ctl_mw *w, const char *name,
		      const struct ctl_label *labels, unsigned n_labels,
		      const double *bounds, const uint64_t *counts,
		      unsigned n_buckets, double sum, uint64_t count);

/* Appends a formatted value the way the exposition format wants it
 * (shortest text that reads back the same; "NaN", "+Inf", "-Inf") into
 * buf. Exposed for tests. Returns the length or -ENOSPC. */
int ctl_metrics_fmt_double(char *buf, size_t len, double v);

#endif /* MXG_CONTROL_METRICS_H */
