/*
 * options.c - parses mxgate's command line into struct mxg_options and
 * combines it with the configuration file (options.h). The option list
 * printed by --help is the reference the man page is written from.
 *
 * Ownership: main lcore, before EAL starts (options_keep_overrides also
 * at every reload). Prints its errors on stderr; --help, --version and
 * --check-config exit the process.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <rte_byteorder.h>
#include <rte_common.h>

#include "dataplane/app.h"
#include "dataplane/options.h"
#include "control/config.h"
#include "control/state_default.h"

void options_usage(FILE *f)
{
	fprintf(f,
"usage: mxgate [options] [-- extra EAL arguments]\n"
"  --config FILE         configuration file (docs/configuration.md); without\n"
"                        it the embedded default runs (tap port, listeners\n"
"                        25 and 587, local Maildir next hop). Options below\n"
"                        override the file's stack settings.\n"
"  --check-config FILE   validate FILE, print FILE:LINE errors, exit 0/1\n"
"  --print-default-config print the embedded default configuration (the\n"
"                        file format of --config) and exit\n"
"  --init-state DIR      make what the embedded default makes on its first\n"
"                        run, when missing: DIR/tls (test certificates) and\n"
"                        DIR/users (one submission user, its password\n"
"                        printed once), and exit\n"
"  --maildir PATH        Maildir of the local next hop (overrides the file)\n"
"  --log-file PATH       session and message log (default: the file's\n"
"                        log.file, else standard error)\n"
"  --max-sessions N      SMTP sessions per core (1024)\n"
"  --no-gateway          run the stack and built-in services only\n"
"  --admin-socket PATH   admin API for mxgatectl (/run/mxgate/admin.sock)\n"
"  --no-admin            no admin socket\n"
"  --metrics ADDR:PORT   Prometheus metrics over HTTP (kernel socket)\n"
"  --watch-config        reload when the --config file changes (1 s poll)\n"
"  --port SPEC           DPDK vdev (net_tap0,iface=mxg0 by default;\n"
"                        net_memif..., net_af_packet..., net_ring...) or a\n"
"                        PCI address\n"
"  --ip ADDR/LEN         our IPv4 address (198.18.0.2/24)\n"
"  --gateway ADDR        next hop for off-link destinations (none)\n"
"  --ip6 ADDR/LEN        our IPv6 address (none; e.g. fd00:6d78::2/64)\n"
"  --gateway6 ADDR       IPv6 next hop for off-link destinations (none)\n"
"  --ip6-dad N           DAD solicitations before our IPv6 addresses are\n"
"                        used (1; 0 = no DAD)\n"
"  --ip6-accept-ra       learn the default IPv6 router from RAs\n"
"  --cores N             dataplane lcores (1); they share the CPUs\n"
"  --dp-cpus LIST        CPU of each dataplane lcore, e.g. 1 or 0,1\n"
"                        (default: lcore k on CPU k mod the CPU count)\n"
"  --huge auto|yes|no    hugepages (auto: use them when the machine has\n"
"                        free ones, --no-huge otherwise)\n"
"  --busy-poll           never back off when idle (benchmarks)\n"
"  --idle-sleep-max-us N longest idle sleep (4000)\n"
"  --echo-port P         built-in echo service (0 = off, the default)\n"
"  --discard-port P      built-in discard service (0 = off, the default)\n"
"  --max-conns N         TCBs per core (16384)\n"
"  --syn-backlog N       half-open TCBs per core before SYN cookies (1024)\n"
"  --max-timewait N      TIME_WAIT entries per core (16384)\n"
"  --timewait-ms N       TIME_WAIT duration (30000)\n"
"  --rcvbuf N --sndbuf N per-connection buffers in bytes (65536)\n"
"  --mbufs N             mbuf pool size (default: sized from the limits)\n"
"  --fault SPEC          fault injector, e.g. drop=5,reorder=2,dup=1,seed=7\n"
"  --connect ADDR:PORT   active-open check: connect, send, verify echo\n"
"  --connect6 [ADDR]:PORT the active-open check over IPv6\n"
"  --connect-bytes N     bytes each way per check connection (1048576)\n"
"  --connect-count N     check connections, one after another (1)\n"
"  --exit-after-connect  exit when the check is done (status 0 if all ok)\n"
"  --stats-file PATH     write JSON counters there periodically\n"
"  --stats-interval-ms N (200)\n"
"  --run-seconds N       stop after N seconds (0: until SIGINT/SIGTERM)\n"
"  --loadgen SPEC        benchmark load generator on every core:\n"
"                        cps,ADDR:PORT[,conc=N][,bytes=N] (open, request,\n"
"                        echo, close) or bulk,ADDR:PORT[,conc=N]\n"
"  --loadgen-ip6 ADDR    the --loadgen target over IPv6 (port and mode\n"
"                        from --loadgen)\n"
"  -v, --verbose         DPDK notices on stderr\n"
"  -V, --version         print the version and exit\n"
"  -h, --help\n");
}

static int parse_cidr(const char *s, rte_be32_t *ip, rte_be32_t *mask)
{
	char buf[64], *slash;
	struct in_addr a;
	long len = 32;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = '\0';
		len = strtol(slash + 1, &end, 10);
		if (*end || len < 0 || len > 32)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*ip = a.s_addr;
	*mask = len ? rte_cpu_to_be_32(~0u << (32 - len)) : 0;
	return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t max,
		     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "mxgate: --%s: '%s' is not a number in "
				"0..%llu\n", opt, s, (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

enum {
	OPT_PORT = 256, OPT_IP, OPT_GW, OPT_CORES, OPT_HUGE, OPT_BUSY,
	OPT_IDLE, OPT_ECHO, OPT_DISCARD, OPT_MAXCONNS, OPT_BACKLOG, OPT_MAXTW,
	OPT_TWMS, OPT_RCVBUF, OPT_SNDBUF, OPT_MBUFS, OPT_FAULT, OPT_CONNECT,
	OPT_CBYTES, OPT_CCOUNT, OPT_CEXIT, OPT_STATS, OPT_STATSINT, OPT_RUN,
	OPT_LOADGEN, OPT_DPCPUS, OPT_CONFIG, OPT_CHECK, OPT_MAILDIR, OPT_LOGF,
	OPT_NOGW, OPT_MAXSESS, OPT_ADMIN, OPT_NOADMIN, OPT_METRICS, OPT_WATCH,
	OPT_PRINTDEF, OPT_INITSTATE,
};

static const struct option long_opts[] = {
	{"port", required_argument, NULL, OPT_PORT},
	{"ip", required_argument, NULL, OPT_IP},
	{"gateway", required_argument, NULL, OPT_GW},
	{"cores", required_argument, NULL, OPT_CORES},
	{"huge", required_argument, NULL, OPT_HUGE},
	{"busy-poll", no_argument, NULL, OPT_BUSY},
	{"idle-sleep-max-us", required_argument, NULL, OPT_IDLE},
	{"echo-port", required_argument, NULL, OPT_ECHO},
	{"discard-port", required_argument, NULL, OPT_DISCARD},
	{"max-conns", required_argument, NULL, OPT_MAXCONNS},
	{"syn-backlog", required_argument, NULL, OPT_BACKLOG},
	{"max-timewait", required_argument, NULL, OPT_MAXTW},
	{"timewait-ms", required_argument, NULL, OPT_TWMS},
	{"rcvbuf", required_argument, NULL, OPT_RCVBUF},
	{"sndbuf", required_argument, NULL, OPT_SNDBUF},
	{"mbufs", required_argument, NULL, OPT_MBUFS},
	{"fault", required_argument, NULL, OPT_FAULT},
	{"connect", required_argument, NULL, OPT_CONNECT},
	{"connect-bytes", required_argument, NULL, OPT_CBYTES},
	{"connect-count", required_argument, NULL, OPT_CCOUNT},
	{"exit-after-connect", no_argument, NULL, OPT_CEXIT},
	{"stats-file", required_argument, NULL, OPT_STATS},
	{"stats-interval-ms", required_argument, NULL, OPT_STATSINT},
	{"run-seconds", required_argument, NULL, OPT_RUN},
	{"loadgen", required_argument, NULL, OPT_LOADGEN},
	{"dp-cpus", required_argument, NULL, OPT_DPCPUS},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"check-config", required_argument, NULL, OPT_CHECK},
	{"print-default-config", no_argument, NULL, OPT_PRINTDEF},
	{"init-state", required_argument, NULL, OPT_INITSTATE},
	{"maildir", required_argument, NULL, OPT_MAILDIR},
	{"log-file", required_argument, NULL, OPT_LOGF},
	{"no-gateway", no_argument, NULL, OPT_NOGW},
	{"watch-config", no_argument, NULL, OPT_WATCH},
	{"max-sessions", required_argument, NULL, OPT_MAXSESS},
	{"admin-socket", required_argument, NULL, OPT_ADMIN},
	{"no-admin", no_argument, NULL, OPT_NOADMIN},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"verbose", no_argument, NULL, 'v'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int options_parse(struct mxg_options *c, int argc, char **argv)
{
	uint64_t v;
	int opt;

	memset(c, 0, sizeof(*c));
	c->gateway_enabled = true;
	c->max_sessions = 1024;
	c->admin_path = "/run/mxgate/admin.sock";
	snprintf(c->port_spec, sizeof(c->port_spec), "net_tap0,iface=mxg0");
	parse_cidr("198.18.0.2/24", &c->ip, &c->netmask);
	c->n_cores = 1;
	c->idle_sleep_max_us = 4000;
	c->rx_desc = 1024;
	c->tx_desc = 1024;
	c->stats_interval_ms = 200;
	net_stack_conf_defaults(&c->stack);
	c->stack.max_conns = 16384;
	c->stack.syn_backlog = 1024;
	c->stack.max_timewait = 16384;
	c->stack.timewait_ms = 30000;
	c->stack.rcvbuf = 65536;
	c->stack.sndbuf = 65536;
	c->svc.echo_port = 0;
	c->svc.discard_port = 0;
	c->svc.connect_count = 1;
	c->svc.connect_bytes = 1 << 20;
	c->svc.connect_delay_ms = 200;

#define NUM(name, max, dst)                                                    \
	do {                                                                   \
		if (parse_u64(name, optarg, max, &v) < 0)                      \
			return -EINVAL;                                        \
		dst = v;                                                       \
	} while (0)

	while ((opt = getopt_long(argc, argv, "vVh", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_PORT:
			c->given.port = true;
			snprintf(c->port_spec, sizeof(c->port_spec), "%s",
				 optarg);
			break;
		case OPT_IP:
			c->given.ip = true;
			if (parse_cidr(optarg, &c->ip, &c->netmask) < 0) {
				fprintf(stderr, "mxgate: --ip: '%s' is not "
						"ADDR/LEN\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_GW: {
			rte_be32_t m;

			c->given.gateway = true;
			if (parse_cidr(optarg, &c->gateway, &m) < 0) {
				fprintf(stderr, "mxgate: --gateway: '%s' is "
						"not an IPv4 address\n",
					optarg);
				return -EINVAL;
			}
			break;
		}
		case OPT_CORES:
			c->given.cores = true;
			NUM("cores", MXG_MAX_CORES, c->n_cores);
			if (c->n_cores == 0) {
				fprintf(stderr, "mxgate: --cores must be "
						">= 1\n");
				return -EINVAL;
			}
			break;
		case OPT_HUGE:
			if (!strcmp(optarg, "auto"))
				c->huge_mode = 0;
			else if (!strcmp(optarg, "yes"))
				c->huge_mode = 1;
			else if (!strcmp(optarg, "no"))
				c->huge_mode = 2;
			else {
				fprintf(stderr, "mxgate: --huge: auto, yes "
						"or no\n");
				return -EINVAL;
			}
			break;
		case OPT_BUSY:
			c->given.busy_poll = true;
			c->busy_poll = true;
			break;
		case OPT_IDLE:
			NUM("idle-sleep-max-us", 1000000, c->idle_sleep_max_us);
			break;
		case OPT_ECHO:
			NUM("echo-port", 65535, c->svc.echo_port);
			break;
		case OPT_DISCARD:
			NUM("discard-port", 65535, c->svc.discard_port);
			break;
		case OPT_MAXCONNS:
			c->given.max_conns = true;
			NUM("max-conns", 1 << 24, c->stack.max_conns);
			break;
		case OPT_BACKLOG:
			c->given.syn_backlog = true;
			NUM("syn-backlog", 1 << 24, c->stack.syn_backlog);
			break;
		case OPT_MAXTW:
			NUM("max-timewait", 1 << 24, c->stack.max_timewait);
			break;
		case OPT_TWMS:
			NUM("timewait-ms", 600000, c->stack.timewait_ms);
			break;
		case OPT_RCVBUF:
			NUM("rcvbuf", 1 << 26, c->stack.rcvbuf);
			break;
		case OPT_SNDBUF:
			NUM("sndbuf", 1 << 26, c->stack.sndbuf);
			break;
		case OPT_MBUFS:
			NUM("mbufs", 1 << 26, c->mbufs);
			break;
		case OPT_FAULT: {
			const char *bad = NULL;

			if (fault_parse(optarg, &c->fault, &bad) < 0) {
				fprintf(stderr, "mxgate: --fault '%s': %s\n",
					optarg, bad);
				return -EINVAL;
			}
			break;
		}
		case OPT_CONNECT: {
			char buf[64], *colon;
			struct in_addr a;

			snprintf(buf, sizeof(buf), "%s", optarg);
			colon = strrchr(buf, ':');
			if (!colon) {
				fprintf(stderr, "mxgate: --connect: expected "
						"ADDR:PORT\n");
				return -EINVAL;
			}
			*colon = '\0';
			if (inet_pton(AF_INET, buf, &a) != 1 ||
			    parse_u64("connect", colon + 1, 65535, &v) < 0 ||
			    v == 0) {
				fprintf(stderr, "mxgate: --connect: '%s' is "
						"not ADDR:PORT\n", optarg);
				return -EINVAL;
			}
			c->svc.connect_ip = a.s_addr;
			c->svc.connect_port = (uint16_t)v;
			break;
		}
		case OPT_CBYTES:
			NUM("connect-bytes", 1ULL << 40, c->svc.connect_bytes);
			break;
		case OPT_CCOUNT:
			NUM("connect-count", 1 << 24, c->svc.connect_count);
			break;
		case OPT_CEXIT:
			c->exit_after_connect = true;
			break;
		case OPT_STATS:
			snprintf(c->stats_file, sizeof(c->stats_file), "%s",
				 optarg);
			break;
		case OPT_STATSINT:
			NUM("stats-interval-ms", 60000, c->stats_interval_ms);
			break;
		case OPT_CONFIG:
			c->config_path = optarg;
			break;
		case OPT_CHECK: {
			static struct ctl_config chk;
			static char errs[16384];
			int r = ctl_config_load(optarg, &chk, errs,
						sizeof(errs));

			if (r < 0) {
				fputs(errs, stderr);
				if (errs[0] && errs[strlen(errs) - 1] != '\n')
					fputc('\n', stderr);
				fprintf(stderr, "mxgate: %s: configuration "
						"invalid\n", optarg);
				exit(1);
			}
			printf("mxgate: %s: configuration ok (%u listeners, "
			       "%u pools)\n", optarg, chk.n_listeners,
			       chk.n_pools);
			ctl_config_free(&chk);
			exit(0);
		}
		case OPT_MAILDIR:
			c->maildir_path = optarg;
			break;
		case OPT_LOGF:
			c->log_path = optarg;
			c->given.log_file = true;
			break;
		case OPT_ADMIN:
			c->admin_path = optarg;
			break;
		case OPT_NOADMIN:
			c->admin_path = NULL;
			break;
		case OPT_METRICS:
			c->metrics_spec = optarg;
			break;
		case OPT_NOGW:
			c->gateway_enabled = false;
			break;
		case OPT_WATCH:
			c->watch_config = true;
			break;
		case OPT_MAXSESS:
			c->given.max_sessions = true;
			NUM("max-sessions", 1 << 22, c->max_sessions);
			if (c->max_sessions == 0)
				c->max_sessions = 1;
			break;
		case OPT_RUN:
			NUM("run-seconds", 1 << 30, c->run_seconds);
			break;
		case OPT_DPCPUS:
			snprintf(c->dp_cpus, sizeof(c->dp_cpus), "%s", optarg);
			break;
		case OPT_LOADGEN:
			if (svc_parse_loadgen(optarg, &c->svc) < 0)
				return -EINVAL;
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'V':
			printf("mxgate %s\n", MXG_VERSION);
			exit(0);
		case OPT_PRINTDEF:
			/* What runs without --config, as a file to start
			 * from (scripts/run.sh writes it once). */
			fputs(ctl_config_default_text, stdout);
			exit(0);
		case OPT_INITSTATE: {
			char host[256], err[512];

			ctl_default_host(host, sizeof(host));
			if (ctl_default_state(optarg, host, err, sizeof(err)) <
			    0) {
				fprintf(stderr, "mxgate: --init-state: %s\n",
					err);
				exit(1);
			}
			exit(0);
		}
		case 'h':
			options_usage(stdout);
			exit(0);
		default:
			options_usage(stderr);
			return -EINVAL;
		}
	}
#undef NUM
	c->port_is_vdev = strncmp(c->port_spec, "net_", 4) == 0 ||
			  strncmp(c->port_spec, "eth_", 4) == 0;
	c->svc.max_conns = c->stack.max_conns;
	return optind;
}

/* Bytes of memory budgeted per session when the table is sized from the
 * machine: 4 KiB an idle session measured (bench/sessions.sh) plus as much
 * again for the work areas and mbufs of sessions with data in flight. */
#define CAPACITY_BYTES_PER_SESSION 8192u

static uint64_t mem_total_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/*
 * Session and backend capacity per core, in this order: --max-sessions
 * (an override), stack.sessions_per_core, or sized from the machine: a
 * quarter of its memory at CAPACITY_BYTES_PER_SESSION a session, split
 * over the dataplane cores, at most stack.max_conns (each session is one
 * TCP connection of its core's stack) and at least 64. Backend
 * connections: stack.backends_per_core, or half the sessions + 16 (the
 * relay reuses idle connections across sessions). How the figure was
 * reached is kept in capacity_why for the start-up log.
 */
static void options_capacity(struct mxg_options *c, const struct ctl_config *m)
{
	uint16_t cores = c->n_cores ? c->n_cores : 1;

	if (c->given.max_sessions) {
		snprintf(c->capacity_why, sizeof(c->capacity_why),
			 "--max-sessions");
	} else if (m->stack.sessions_per_core) {
		c->max_sessions = m->stack.sessions_per_core;
		snprintf(c->capacity_why, sizeof(c->capacity_why),
			 "stack.sessions_per_core");
	} else {
		uint64_t mem = mem_total_bytes();
		uint64_t by_mem = mem / 4 / CAPACITY_BYTES_PER_SESSION / cores;
		uint64_t v = RTE_MIN(by_mem, (uint64_t)c->stack.max_conns);

		if (v < 64)
			v = 64;
		c->max_sessions = (uint32_t)v;
		snprintf(c->capacity_why, sizeof(c->capacity_why),
			 "sized from the machine: a quarter of %llu MiB at "
			 "%u bytes a session over %u core(s) is %llu, "
			 "capped by stack.max_conns %u",
			 (unsigned long long)(mem >> 20),
			 CAPACITY_BYTES_PER_SESSION, cores,
			 (unsigned long long)by_mem, c->stack.max_conns);
	}
	c->max_backends = m->stack.backends_per_core
				  ? m->stack.backends_per_core
				  : c->max_sessions / 2 + 16;
}

void options_merge_config(struct mxg_options *c, struct ctl_config *m)
{
	if (c->maildir_path) {
		free(m->maildir.path);
		m->maildir.path = strdup(c->maildir_path);
	}
	if (!c->given.port && m->stack.port && m->stack.port[0]) {
		snprintf(c->port_spec, sizeof(c->port_spec), "%s",
			 m->stack.port);
		c->port_is_vdev = strncmp(c->port_spec, "net_", 4) == 0 ||
				  strncmp(c->port_spec, "eth_", 4) == 0;
	}
	if (!c->given.ip && m->stack.address) {
		c->ip = rte_cpu_to_be_32(m->stack.address);
		c->netmask = m->stack.prefix_len
				     ? rte_cpu_to_be_32(~0u << (32 - m->stack.prefix_len))
				     : 0;
	} else {
		m->stack.address = rte_be_to_cpu_32(c->ip);
	}
	if (!c->given.gateway && m->stack.gateway)
		c->gateway = rte_cpu_to_be_32(m->stack.gateway);
	if (!c->given.cores && m->stack.cores)
		c->n_cores = (uint16_t)RTE_MIN(m->stack.cores,
					       (uint32_t)MXG_MAX_CORES);
	if (!c->given.busy_poll && m->stack.busy_poll)
		c->busy_poll = true;
	if (!c->given.max_conns && m->stack.max_conns)
		c->stack.max_conns = m->stack.max_conns;
	if (!c->given.syn_backlog && m->stack.syn_backlog)
		c->stack.syn_backlog = m->stack.syn_backlog;
	c->svc.max_conns = c->stack.max_conns;
	if (!c->log_path && m->log.file && m->log.file[0])
		c->log_path = m->log.file;
	options_capacity(c, m);
}

void options_keep_overrides(const struct mxg_options *c, struct ctl_config *n,
			    const struct ctl_config *running)
{
#define KEEP_STR(f)                                                            \
	do {                                                                   \
		free(n->f);                                                    \
		n->f = running->f ? strdup(running->f) : NULL;                 \
	} while (0)
	if (c->given.port)
		KEEP_STR(stack.port);
	if (c->given.ip) {
		n->stack.address = running->stack.address;
		n->stack.prefix_len = running->stack.prefix_len;
	}
	if (c->given.gateway)
		n->stack.gateway = running->stack.gateway;
	if (c->given.cores)
		n->stack.cores = running->stack.cores;
	if (c->given.busy_poll)
		n->stack.busy_poll = running->stack.busy_poll;
	if (c->given.max_conns)
		n->stack.max_conns = running->stack.max_conns;
	if (c->given.syn_backlog)
		n->stack.syn_backlog = running->stack.syn_backlog;
	if (c->maildir_path)
		KEEP_STR(maildir.path);
	/* Only a --log-file override is kept: a log_path taken from the
	 * file's own log.file must not hide a change of it (reload refuses
	 * that change as needing a restart). */
	if (c->given.log_file)
		KEEP_STR(log.file);
#undef KEEP_STR
}
