/*
 * logger.c - the logger thread (DESIGN 8): every dataplane core writes
 * its session and message log lines into its own log ring (SP/SC, lines
 * from a mempool); this thread drains every ring every few milliseconds
 * into the log file, so a long reload compile on the main lcore never
 * leaves the rings to fill (a full ring drops and counts on the core,
 * never blocks it).
 *
 * Ownership: the logger thread is the only consumer of the log rings
 * while it runs; the main lcore drains them itself only when the thread
 * could not start, and after it stopped. stdio locks the FILE for the
 * main lcore's own lines (reload and push events).
 */
#include <pthread.h>
#include <time.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/control.h"

void logger_drain(struct control *ctl)
{
	void *lines[64];

	for (int k = 0; k < ctl->options->n_cores; k++) {
		struct rte_ring *r = ctl->cores[k].log_ring;
		unsigned n;

		if (!r)
			continue;
		while ((n = rte_ring_dequeue_burst(r, lines, 64, NULL)) > 0) {
			for (unsigned i = 0; i < n; i++)
				fprintf(ctl->log, "%s\n", (char *)lines[i]);
			rte_mempool_put_bulk(ctl->log_pool, lines, n);
		}
	}
	fflush(ctl->log); /* also the main lcore's own lines */
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
