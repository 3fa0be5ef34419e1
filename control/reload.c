/*
 * reload.c - configuration reloads (DESIGN 6: all or nothing, with
 * file:line errors) requested by SIGHUP, the admin socket or a change of
 * the file (--watch-config); the main loop's other control work: freeing
 * retired policy snapshots and ending a drain.
 *
 * Ownership: main lcore only, except control_request_reload(), which a
 * signal handler calls. A reload compiles the file here, off the data
 * path, then publishes the snapshot (RCU) for the cores to adopt.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rte_common.h>
#include <rte_cycles.h>

#include "control/control.h"
#include "control/snapshot.h"
#include "dataplane/clock.h"
#include "dataplane/options.h"

/* Set by the SIGHUP handler; the only signal-shared state here. */
static volatile sig_atomic_t reload_requested;

void control_request_reload(void)
{
	reload_requested = 1;
}

unsigned control_cores_caught_up(struct control *ctl, uint64_t seq,
				 uint64_t gen, uint32_t wait_ms,
				 uint64_t *lat_max,
				 struct gw_push_state *states)
{
	uint64_t deadline = clock_us() + (uint64_t)wait_ms * 1000;
	uint16_t n_cores = ctl->options->n_cores;
	unsigned n;

	for (;;) {
		n = 0;
		*lat_max = 0;
		for (int k = 0; k < n_cores; k++) {
			struct gw_push_state ps;

			if (states)
				memset(&states[k], 0, sizeof(states[k]));
			if (!ctl->cores[k].gw)
				continue;
			gw_core_push_state(ctl->cores[k].gw, &ps);
			if ((seq && ps.seq >= seq) ||
			    (gen && ps.generation >= gen)) {
				n++;
				*lat_max = RTE_MAX(*lat_max, ps.latency_us);
				/* what this core said when it was counted */
				if (states)
					states[k] = ps;
			}
		}
		if (n == n_cores || clock_us() >= deadline)
			return n;
		rte_delay_us_sleep(200);
	}
}

int control_reload(struct control *ctl, const char *who, char *msg,
		   size_t len)
{
	static char errs[16384];
	const char *path = ctl->options->config_path;
	struct ctl_config cfg;
	struct mxg_snapshot *sn;
	uint64_t t0 = clock_us(), lat;
	char err[512];
	struct gw_push_state states[MXG_MAX_CORES];
	unsigned n, nlimits = 0;
	int r;

	if (!path) {
		snprintf(msg, len, "no configuration file to reload (running "
				   "the built-in default; start with --config)");
		r = -EINVAL;
		goto failed;
	}
	r = ctl_config_load(path, &cfg, errs, sizeof(errs));
	if (r < 0) {
		size_t l = strlen(errs);

		while (l && errs[l - 1] == '\n')
			errs[--l] = '\0';
		snprintf(msg, len, "%s", errs[0] ? errs : strerror(-r));
		goto failed;
	}
	/* What the command line overrides stays overridden, so only what
	 * the file itself changed is compared. */
	options_keep_overrides(ctl->options, &cfg, &gw_current(ctl->gw)->cfg);
	r = mxg_snapshot_build(&cfg, ctl->generation + 1, &sn, err,
			       sizeof(err));
	if (r < 0) {
		snprintf(msg, len, "%s", err);
		goto failed;
	}
	r = gw_publish(ctl->gw, sn, err, sizeof(err));
	if (r < 0) {
		mxg_snapshot_free(sn);
		snprintf(msg, len, "%s", err);
		goto failed;
	}
	ctl->generation++;
	ctl->reloads_ok++;
	ctl->last_reload_us = clock_us() - t0;
	n = control_cores_caught_up(ctl, 0, ctl->generation, 1000, &lat,
				    states);
	/* A core that could not allocate its effective-limit tables runs
	 * part of the listeners without the pushed limit overrides: the
	 * reply and the log say so (the core logged the detail). */
	for (int k = 0; k < ctl->options->n_cores; k++)
		if (states[k].limits_failed_generation == ctl->generation)
			nlimits++;
	snprintf(msg, len,
		 "{\"generation\":%llu,\"compile_us\":%llu,\"cores\":%u,"
		 "\"cores_adopted\":%u,\"adopt_us\":%llu%s}",
		 (unsigned long long)ctl->generation,
		 (unsigned long long)ctl->last_reload_us, ctl->options->n_cores, n,
		 (unsigned long long)(clock_us() - t0 - ctl->last_reload_us),
		 nlimits ? ",\"warning\":\"effective limits not allocated on "
			   "some cores (out of memory): pushed limit overrides "
			   "partly not applied\"" : "");
	logger_configure(ctl, &gw_current(ctl->gw)->cfg);
	logger_printf(ctl, "event=reload by=%s result=ok generation=%llu "
			   "compile_us=%llu%s",
		      who, (unsigned long long)ctl->generation,
		      (unsigned long long)ctl->last_reload_us,
		      nlimits ? " warning=limits_not_allocated" : "");
	return 0;
failed:
	ctl->reloads_failed++;
	if (ctl->log) {
		char one[1024];

		snprintf(one, sizeof(one), "%s", msg);
		/* docs/logging.md: a quoted value holds no quote or
		 * control character (errors quote the bad value). */
		for (char *p = one; *p; p++)
			if (*p == '\n')
				*p = ';';
			else if (*p == '"' || (unsigned char)*p < 0x20)
				*p = ' ';
		logger_printf(ctl, "event=reload by=%s result=failed "
				   "error=\"%s\"", who, one);
	}
	return r;
}

/* --watch-config: true when the file's identity or content changed since
 * the last look (once a second). */
static bool config_file_changed(struct control *ctl, uint64_t now)
{
	struct stat st;
	bool changed;

	if (!ctl->options->watch_config || !ctl->options->config_path ||
	    now - ctl->last_watch_us < 1000000)
		return false;
	ctl->last_watch_us = now;
	if (stat(ctl->options->config_path, &st) != 0)
		return false;
	changed = ctl->have_stat &&
		  (st.st_mtim.tv_sec != ctl->last_stat.st_mtim.tv_sec ||
		   st.st_mtim.tv_nsec != ctl->last_stat.st_mtim.tv_nsec ||
		   st.st_size != ctl->last_stat.st_size ||
		   st.st_ino != ctl->last_stat.st_ino);
	ctl->last_stat = st;
	ctl->have_stat = true;
	return changed;
}

void control_reload_tick(struct control *ctl, uint64_t now)
{
	struct counters *cs;

	if (reload_requested) {
		char msg[16384];

		reload_requested = 0;
		if (control_reload(ctl, "SIGHUP", msg, sizeof(msg)) < 0)
			fprintf(stderr, "mxgate: reload failed, policy "
					"unchanged:\n%s\n", msg);
		else
			printf("mxgate: reloaded %s: %s\n",
			       ctl->options->config_path, msg);
		fflush(stdout);
	}
	if (config_file_changed(ctl, now)) {
		char msg[16384];

		if (control_reload(ctl, "watch", msg, sizeof(msg)) < 0)
			fprintf(stderr, "mxgate: reload (file changed) failed, "
					"policy unchanged:\n%s\n", msg);
	}
	gw_reclaim(ctl->gw);
	if (!ctl->drain_started_us)
		return;
	now = clock_us(); /* the admin poll may have started the drain */
	cs = malloc(sizeof(*cs));
	if (!cs)
		return;
	control_counters(ctl, cs);
	if (cs->total.gw.sessions_live == 0 ||
	    now - ctl->drain_started_us > 300ULL * 1000000) {
		printf("mxgate: drained (%llu sessions left), exiting\n",
		       (unsigned long long)cs->total.gw.sessions_live);
		fflush(stdout);
		mxg_quit = 1;
	}
	free(cs);
}
