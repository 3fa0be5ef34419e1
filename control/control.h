/*
 * control.h - the control plane on the main lcore (DESIGN 8): the loop
 * body main.c runs between launching the dataplane lcores and stopping
 * them. It serves the admin socket (control/commands.c) and the
 * Prometheus endpoint (control/report.c), rewrites the stats file,
 * reloads the configuration on SIGHUP, admin request or file change
 * (control/reload.c), frees retired policy snapshots, ends a drain, and
 * runs the logger thread (control/logger.c).
 *
 * Ownership: one struct control, owned by the main lcore. main.c fills
 * the "set up by main" part before control_start() and leaves it alone
 * afterwards; everything else is written by control/ code on the main
 * lcore only (the logger thread reads only cores, log, log_pool,
 * log_format and log_level, under log_lock).
 * Nothing here runs on a dataplane lcore, and nothing here touches a
 * dataplane core's state except its counters (read) and its rings.
 */
#ifndef MXG_CONTROL_CONTROL_H
#define MXG_CONTROL_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <rte_mempool.h>

#include "control/config.h"
#include "control/counters.h"
#include "dataplane/app.h"
#include "dataplane/port.h"

/* Distinct limit keys (and backends) a running gateway accepts pushes
 * for: each core holds at most this many overrides. */
#define CTL_MAX_OVERRIDES 64
#define CTL_OVERRIDE_KEY 120

struct ctl_admin;
struct ctl_metrics;

struct control {
	/* Set up by main before control_start(). */
	const struct mxg_options *options; /* command line + the file */
	struct lcore_ctx *cores;      /* options->n_cores contexts */
	const struct port_info *port;
	struct rte_mempool *pool;     /* the mbuf pool */
	struct gw_global *gw;         /* NULL: --no-gateway */
	FILE *log;                    /* session log; NULL without gateway */
	struct rte_mempool *log_pool; /* lines the cores' log rings carry */
	uint64_t start_us;

	/* Policy generations, reloads and pushes (reload.c, commands.c). */
	uint64_t generation;
	uint64_t reloads_ok, reloads_failed, pushes;
	uint64_t last_reload_us;      /* compile time of the last reload */
	uint64_t drain_started_us;    /* 0: not draining */
	char limit_keys[CTL_MAX_OVERRIDES][CTL_OVERRIDE_KEY];
	unsigned n_limit_keys;
	char backend_keys[CTL_MAX_OVERRIDES][CTL_OVERRIDE_KEY];
	unsigned n_backend_keys;

	/* File watch (--watch-config). */
	uint64_t last_watch_us;
	struct stat last_stat;
	bool have_stat;

	/* Stats file. */
	uint64_t last_stats_us;
	uint64_t last_ticket_rotation_us; /* tls.ticket_rotation */
	struct counters_kept kept;    /* copies taken at teardown */

	/* Endpoints and the logger thread. */
	struct ctl_admin *admin;
	struct ctl_metrics *metrics;
	pthread_t logger;
	bool logger_running;
	volatile bool logger_stop;
	pthread_mutex_t log_lock;     /* log and the rings' consumer side */
	int log_format;               /* enum logline_format (log.format) */
	int log_level;                /* enum logline_level (log.level) */
	/* The log file's path, copied at start: options->log_path may
	 * point into the first configuration, freed after a reload. */
	char log_path[1100];
};

/* Starts the logger thread, the admin socket and the metrics endpoint
 * (the latter two are reported and skipped when they fail: another
 * instance may own the path). Main lcore, after the cores launched. */
void control_start(struct control *ctl);

/* One turn of the main loop: rewrites the stats file when due, serves
 * admin and metrics requests (waits up to 50 ms for them), reloads when
 * asked, frees retired snapshots and ends a drain (sets mxg_quit). */
void control_poll(struct control *ctl, uint64_t now_us);

/* Closes the endpoints, stops the logger and writes out what the cores
 * logged. Main lcore, after the dataplane lcores stopped. */
void control_stop(struct control *ctl);

/* --- counters and their renderings (report.c) ------------------------ */

/* Reads every core's counters (counters.h). */
void control_counters(const struct control *ctl, struct counters *out);

/* Writes the counters as JSON to the --stats-file (atomically: a
 * temporary file renamed over it). final adds the shutdown result. */
void control_write_stats(struct control *ctl, bool final, bool mbufs_ok);

/* The counters as one JSON object: the stats file and admin "stats". */
void report_stats_json(struct control *ctl, FILE *f, bool final,
		       bool mbufs_ok);

/* Admin "status": a short JSON object into out. */
int report_status(struct control *ctl, char *out, size_t outlen);

/* Prometheus families (the ctl_metrics callback; ctx is the control). */
struct ctl_mw;
void report_metrics(struct ctl_mw *w, void *ctx);

/* --- reload (reload.c) ------------------------------------------------ */

/* Async-signal-safe: asks the main loop to reload (SIGHUP). */
void control_request_reload(void);

/* Reloads the configuration file: all or nothing. On failure the
 * running policy is untouched and msg says why (every error with file
 * and line). who names the requester in the log. 0 or a negative errno. */
int control_reload(struct control *ctl, const char *who, char *msg,
		   size_t len);

/* Reload requests (signal, file watch), snapshot reclaim, end of a
 * drain: the control work of one main-loop turn. */
void control_reload_tick(struct control *ctl, uint64_t now_us);

/* Waits (at most wait_ms) until every dataplane core applied push seq or
 * adopted generation gen; returns how many did, the slowest push latency
 * among them, and (when states is not NULL) each counted core's state. */
unsigned control_cores_caught_up(struct control *ctl, uint64_t seq,
				 uint64_t gen, uint32_t wait_ms,
				 uint64_t *lat_max,
				 struct gw_push_state *states);

/* --- admin commands (commands.c) -------------------------------------- */

/* Registers every admin command (one table) on ctl->admin. */
void control_register_commands(struct control *ctl);

/* --- logger (logger.c) ------------------------------------------------ */

/* Starts the logger thread draining every core's log ring into ctl->log;
 * without it, control_poll drains them itself. Level info, format kv
 * until logger_configure. Main lcore, before any other logger_ call. */
void logger_start(struct control *ctl);
/* Applies cfg's log.format and log.level to the lines written from now
 * on (start and every reload). Main lcore. */
void logger_configure(struct control *ctl, const struct ctl_config *cfg);
/* One main-lcore line (fmt: "event=... key=value ..."), prefixed with
 * ts= and core=main as the cores' lines, rendered and written at once.
 * Main lcore. */
void logger_printf(struct control *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reopens the log file by its path (logrotate renamed it): what the
 * rings hold goes to the old file first, then the new one takes every
 * following line. 0, or a negative errno with msg saying why (standard
 * error cannot be reopened; a failed open keeps the old file). msg gets
 * a JSON object on success. Main lcore. */
int logger_reopen(struct control *ctl, char *msg, size_t len);
/* Async-signal-safe: asks the main loop to reopen the log (SIGUSR1). */
void control_request_reopen(void);
/* A reopen asked by signal, and the drain when the thread is not
 * running: the logger's work of one main-loop turn. */
void logger_tick(struct control *ctl);
/* Stops it and writes out what is left. */
void logger_stop(struct control *ctl);
/* Writes out what the cores logged (logger thread, or the main lcore
 * when the thread is not running). */
void logger_drain(struct control *ctl);

#endif /* MXG_CONTROL_CONTROL_H */
