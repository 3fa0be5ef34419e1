/*
 * options.h - mxgate's command line: what it says, parsed into one
 * struct, and how it combines with the configuration file (the command
 * line wins for the stack settings it gives; a reload keeps them).
 *
 * Ownership: struct mxg_options is written by the main lcore before the
 * dataplane lcores start (options_parse, then options_merge_config) and
 * is read-only afterwards; every lcore reads it.
 */
#ifndef MXG_OPTIONS_H
#define MXG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_byteorder.h>

#include "control/config.h"
#include "dataplane/fault.h"
#include "dataplane/net/net.h"
#include "dataplane/services.h"

#define MXG_VERSION "0.1.0"

/* Whole-process settings: the command line, with the configuration
 * file's stack settings filled in where the command line gave none. */
struct mxg_options {
	char port_spec[256];      /* vdev spec or PCI address */
	bool port_is_vdev;
	rte_be32_t ip, netmask, gateway;
	uint16_t n_cores;         /* dataplane lcores */
	bool busy_poll;           /* never back off (benchmarks) */
	uint32_t idle_sleep_max_us;
	uint32_t mbufs;           /* pool size; 0: sized from the limits */
	uint16_t rx_desc, tx_desc;
	uint16_t mtu;
	struct net_stack_conf stack;  /* template for every core's stack */
	struct svc_conf svc;
	struct fault_conf fault;
	char stats_file[256];     /* JSON counters, rewritten periodically */
	uint32_t stats_interval_ms;
	uint32_t run_seconds;     /* 0: until SIGINT/SIGTERM */
	bool verbose;

	/* Gateway and control plane. */
	bool gateway_enabled;     /* false: --no-gateway */
	const char *config_path;  /* --config; NULL: the embedded default */
	const char *maildir_path; /* --maildir (overrides the file) */
	const char *log_path;     /* --log-file, else the file's log.file */
	uint32_t max_sessions;    /* SMTP sessions per core */
	uint32_t max_backends;    /* backend connections per core */
	char capacity_why[200];   /* how max_sessions was chosen (logged) */
	const char *admin_path;   /* admin socket; NULL: --no-admin */
	const char *metrics_spec; /* --metrics ADDR:PORT, or NULL */
	bool watch_config;        /* reload when the file changes */
	bool exit_after_connect;  /* stop when the connect check is done */

	/* EAL. */
	int huge_mode;            /* 0 auto, 1 yes, 2 no */
	char dp_cpus[128];        /* --dp-cpus list, "" by default */

	/* Which stack settings the command line gave: they override the
	 * file, at start and at every reload. */
	struct {
		bool port, ip, gateway, cores, busy_poll, max_conns,
			syn_backlog, log_file, max_sessions;
	} given;
};

/* Prints the option list (--help). */
void options_usage(FILE *f);

/* Parses argv into o (defaults first). --help, --version and
 * --check-config print and exit. Returns the index of the first extra
 * EAL argument (after "--"), or -EINVAL with a message on stderr. */
int options_parse(struct mxg_options *o, int argc, char **argv);

/* Applies the file's stack settings where the command line gave none,
 * and the command line's Maildir path and log file to the file's
 * settings (m is changed). Main lcore, before EAL starts. */
void options_merge_config(struct mxg_options *o, struct ctl_config *m);

/* A reloaded file is compiled with the same command-line overrides the
 * running configuration got (stack settings, Maildir path, log file), so
 * that only what the file itself changed is compared with running. */
void options_keep_overrides(const struct mxg_options *options,
			    struct ctl_config *reloaded,
			    const struct ctl_config *running);

#endif /* MXG_OPTIONS_H */
