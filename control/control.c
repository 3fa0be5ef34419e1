/*
 * control.c - the control plane's main-lcore loop body (control.h): start
 * the endpoints and the logger, then one turn per main-loop iteration,
 * then stop. The meaning of each admin command is in commands.c, reloads
 * in reload.c, the renderings of the counters in report.c.
 *
 * Ownership: main lcore only. Never touches a dataplane core's state
 * except through the functions of gateway.h meant for the main lcore.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "control/admin.h"
#include "control/control.h"
#include "control/metrics.h"
#include "control/snapshot.h"

static void start_admin(struct control *ctl)
{
	const char *path = ctl->options->admin_path;
	struct ctl_admin_conf ac = {.path = path};
	char dir[256], *slash;
	int err = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0700);
	}
	ctl->admin = ctl_admin_create(&ac, &err);
	if (!ctl->admin) {
		fprintf(stderr, "mxgate: admin socket %s: %s (running without "
				"it)\n", path, strerror(-err));
		return;
	}
	control_register_commands(ctl);
	printf("mxgate: admin socket %s\n", path);
}

static void start_metrics(struct control *ctl)
{
	const char *spec = ctl->options->metrics_spec;
	struct ctl_metrics_conf mc = {0};
	char buf[128], *colon;
	int err = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	colon = strrchr(buf, ':');
	if (colon) {
		*colon = '\0';
		mc.address = buf;
		mc.port = (uint16_t)atoi(colon + 1);
		ctl->metrics = ctl_metrics_create(&mc, report_metrics, ctl,
						  &err);
	} else {
		err = -EINVAL;
	}
	if (!ctl->metrics)
		fprintf(stderr, "mxgate: metrics %s: %s (running without "
				"them)\n", spec, strerror(-err));
	else
		printf("mxgate: metrics on http://%s:%u/metrics\n", mc.address,
		       ctl_metrics_port(ctl->metrics));
}

void control_start(struct control *ctl)
{
	logger_start(ctl);
	if (ctl->gw)
		logger_configure(ctl, &gw_current(ctl->gw)->cfg);
	/* Admin socket and metrics endpoint; failures are reported and the
	 * gateway serves without them (another instance may own the path). */
	if (ctl->options->admin_path && ctl->gw)
		start_admin(ctl);
	if (ctl->options->metrics_spec)
		start_metrics(ctl);
	fflush(stdout);
}

/* Session-ticket keys: a new one every tls.ticket_rotation; the ring
 * (shared by every snapshot's TLS contexts) keeps the previous ones for
 * decryption. The first call only starts the clock: the ring was made
 * with a fresh key. */
static void rotate_ticket_keys(struct control *ctl, uint64_t now)
{
	const struct mxg_snapshot *s =
		ctl->gw && ctl->gw->snap ? gw_current(ctl->gw) : NULL;
	uint64_t iv = s ? (uint64_t)s->cfg.tls.ticket_rotation_ms * 1000 : 0;

	if (iv == 0)
		return;
	if (ctl->last_ticket_rotation_us == 0) {
		ctl->last_ticket_rotation_us = now;
	} else if (now - ctl->last_ticket_rotation_us >= iv) {
		if (mxg_snapshot_tls_rotate() < 0)
			fprintf(stderr, "mxgate: ticket key rotation failed "
					"(keeping the current keys)\n");
		ctl->last_ticket_rotation_us = now;
	}
}

void control_poll(struct control *ctl, uint64_t now)
{
	if (now - ctl->last_stats_us >=
	    (uint64_t)ctl->options->stats_interval_ms * 1000) {
		control_write_stats(ctl, false, false);
		ctl->last_stats_us = now;
	}
	logger_tick(ctl);
	if (ctl->metrics)
		ctl_metrics_poll(ctl->metrics, 0);
	if (ctl->admin) {
		ctl_admin_poll(ctl->admin, 50);
	} else {
		struct timespec ts = {0, 50 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	if (ctl->gw)
		control_reload_tick(ctl, now);
	rotate_ticket_keys(ctl, now);
}

void control_stop(struct control *ctl)
{
	ctl_admin_destroy(ctl->admin);
	ctl->admin = NULL;
	ctl_metrics_destroy(ctl->metrics);
	ctl->metrics = NULL;
	logger_stop(ctl);
}
