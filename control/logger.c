/*
 * logger.c - the logger thread (DESIGN 8): every dataplane core writes
 * its session and message log lines into its own log ring (SP/SC, lines
 * from a mempool); this thread drains every ring every few milliseconds
 * into the log file, so a long reload compile on the main lcore never
 * leaves the rings to fill (a full ring drops and counts on the core,
 * never blocks it). Each line is rendered on the way out
 * (control/logline.c): key=value or JSON (log.format), filtered by
 * log.level. The cores only ever write key=value.
 *
 * Reopen (mxgatectl reopen-log, SIGUSR1): the rings are drained into the
 * old file and it is flushed before the new one replaces it, under the
 * same lock as every write, so no line is lost, doubled or split across
 * the two files.
 *
 * Ownership: ctl->log, the rings' consumer side, log_format and
 * log_level are used only under log_lock: by the logger thread, or by the
 * main lcore for its own lines (logger_printf), a reopen, a reload
 * (logger_configure), and draining when the thread is not running.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/control.h"
#include "control/logline.h"

/* A main-lcore line is at most this long (before rendering). */
#define LOGGER_MAIN_LINE 1536
/* Rendering needs at most 6 octets per octet of input (logline.h). */
#define LOGGER_OUT (6 * LOGGER_MAIN_LINE + 64)

static volatile sig_atomic_t reopen_requested;

void control_request_reopen(void)
{
	reopen_requested = 1;
}

/* One line into the file as log.format and log.level say; log_lock
 * held. A line the renderer cannot fit (none should) goes out as it is. */
static void write_line(struct control *ctl, const char *line)
{
	static char out[LOGGER_OUT]; /* under log_lock */

	if ((int)logline_level_of(line) > ctl->log_level)
		return;
	if (logline_render(line, (enum logline_format)ctl->log_format, out,
			   sizeof(out)) < 0)
		fprintf(ctl->log, "%s\n", line);
	else
		fprintf(ctl->log, "%s\n", out);
}

/* Every core's ring into the file; log_lock held. */
static void drain_locked(struct control *ctl)
{
	void *lines[64];

	for (int k = 0; k < ctl->options->n_cores; k++) {
		struct rte_ring *r = ctl->cores[k].log_ring;
		unsigned n;

		if (!r)
			continue;
		while ((n = rte_ring_dequeue_burst(r, lines, 64, NULL)) > 0) {
			for (unsigned i = 0; i < n; i++)
				write_line(ctl, lines[i]);
			rte_mempool_put_bulk(ctl->log_pool, lines, n);
		}
	}
	fflush(ctl->log);
}

void logger_drain(struct control *ctl)
{
	pthread_mutex_lock(&ctl->log_lock);
	drain_locked(ctl);
	pthread_mutex_unlock(&ctl->log_lock);
}

void logger_printf(struct control *ctl, const char *fmt, ...)
{
	char line[LOGGER_MAIN_LINE];
	struct timespec ts;
	va_list ap;
	int n;

	if (!ctl->log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "ts=%lld.%03ld core=main ",
		     (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&ctl->log_lock);
	write_line(ctl, line);
	fflush(ctl->log);
	pthread_mutex_unlock(&ctl->log_lock);
}

int logger_reopen(struct control *ctl, char *msg, size_t len)
{
	const char *path = ctl->log_path;
	FILE *nf;
	int r;

	if (!ctl->log || ctl->log == stderr || !path[0]) {
		snprintf(msg, len, "no log file: the log goes to standard "
				   "error");
		return -ENOENT;
	}
	pthread_mutex_lock(&ctl->log_lock);
	drain_locked(ctl); /* everything logged so far: the old file */
	nf = fopen(path, "a");
	if (!nf) {
		r = -errno;
		pthread_mutex_unlock(&ctl->log_lock);
		snprintf(msg, len, "%s: %s (still writing the old file)", path,
			 strerror(-r));
		return r;
	}
	fclose(ctl->log);
	ctl->log = nf;
	pthread_mutex_unlock(&ctl->log_lock);
	snprintf(msg, len, "{\"reopened\":\"%s\"}", path);
	return 0;
}

void logger_configure(struct control *ctl, const struct ctl_config *cfg)
{
	int f = logline_format_parse(cfg->log.format);
	int l = logline_level_parse(cfg->log.level);

	pthread_mutex_lock(&ctl->log_lock);
	ctl->log_format = f < 0 ? LOGLINE_KV : f;
	ctl->log_level = l < 0 ? LOGLINE_INFO : l;
	pthread_mutex_unlock(&ctl->log_lock);
}

void logger_tick(struct control *ctl)
{
	if (reopen_requested) {
		char msg[1200];

		reopen_requested = 0;
		if (logger_reopen(ctl, msg, sizeof(msg)) < 0)
			fprintf(stderr, "mxgate: SIGUSR1: log reopen: %s\n",
				msg);
	}
	if (ctl->log && !ctl->logger_running)
		logger_drain(ctl);
}

static void *logger_main(void *arg)
{
	struct control *ctl = arg;
	struct timespec ts = {0, 5 * 1000 * 1000};

	while (!ctl->logger_stop) {
		logger_drain(ctl);
		nanosleep(&ts, NULL);
	}
	logger_drain(ctl);
	return NULL;
}

void logger_start(struct control *ctl)
{
	pthread_mutex_init(&ctl->log_lock, NULL);
	ctl->log_level = LOGLINE_INFO;
	snprintf(ctl->log_path, sizeof(ctl->log_path), "%s",
		 ctl->options->log_path ? ctl->options->log_path : "");
	if (!ctl->log)
		return;
	ctl->logger_stop = false;
	if (pthread_create(&ctl->logger, NULL, logger_main, ctl) == 0) {
		pthread_setname_np(ctl->logger, "mxg-logger");
		ctl->logger_running = true;
	}
}

void logger_stop(struct control *ctl)
{
	if (ctl->logger_running) {
		ctl->logger_stop = true;
		pthread_join(ctl->logger, NULL);
		ctl->logger_running = false;
	}
	if (ctl->log)
		logger_drain(ctl);
}
