/*
 * main.c - mxgate's entry point and main lcore: parse options, start DPDK
 * (with hugepages when the machine has them, --no-huge otherwise), size the
 * mbuf pool from the limits, bring up the port, create one stack and one
 * set of rings per dataplane lcore, launch the poll loops, publish counters
 * and shut down cleanly on SIGINT/SIGTERM with every mbuf returned.
 *
 * Ownership: the main lcore owns the configuration (read-only once the
 * dataplane starts) and the teardown. It never touches a dataplane core's
 * state while that core runs, except to read counters.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "dataplane/app.h"
#include "dataplane/clock.h"
#include "dataplane/gateway.h"
#include "dataplane/ip6_opts.h"
#include "control/admin.h"
#include "control/cidr.h"
#include "control/config.h"
#include "control/metrics.h"
#include "dataplane/port.h"

#define MXG_VERSION "0.1.0"

static struct mxg_conf g_conf;
static struct lcore_ctx g_cores[MXG_MAX_CORES];
static struct steer_conf g_steer;
static struct port_info g_port;
static struct rte_mempool *g_pool;
static bool g_exit_after_connect;
/* Counters of each core's stack and services as they were at teardown,
 * so the final stats file still carries them. */
static struct net_stats g_last_net[MXG_MAX_CORES];
static struct svc_stats g_last_svc[MXG_MAX_CORES];
static struct fault_stats g_last_fault[MXG_MAX_CORES][2];
static bool g_torn_down;
static struct gw_stats g_last_gw[MXG_MAX_CORES];

/* Gateway: configuration, compiled listeners/pools, per-core log rings. */
static struct mxg_config g_cfg;
static struct gw_global g_gw;
static bool g_gateway = true;
static const char *g_config_path;
static const char *g_maildir_override;
static const char *g_log_path;
static uint32_t g_max_sessions = 1024;
static const char *g_admin_path = "/run/mxgate/admin.sock";
static const char *g_metrics_spec;
static struct ctl_admin *g_admin;
static struct ctl_metrics *g_metrics;
static struct rte_mempool *g_log_pool;
static FILE *g_log;
/* Reloads (issue 5): requested by SIGHUP, the admin socket or a change of
 * the file (--watch-config); counted for stats and metrics. */
static volatile sig_atomic_t g_reload_req;
static bool g_watch_config;
static uint64_t g_generation = 1;
static uint64_t g_reloads_ok, g_reloads_failed, g_pushes;
static uint64_t g_last_reload_us;
static uint64_t g_drain_started_us;
/* Which stack settings the command line gave (they override the file). */
static bool set_port, set_ip, set_gw, set_cores, set_busy, set_maxconns,
	set_backlog;

static const struct gw_stats *core_gw(int k)
{
	if (g_torn_down || !g_cores[k].gw)
		return &g_last_gw[k];
	return gw_core_stats(g_cores[k].gw);
}

static const struct net_stats *core_net(int k)
{
	if (g_torn_down || !g_cores[k].stack)
		return &g_last_net[k];
	return net_stack_stats(g_cores[k].stack);
}

static const struct svc_stats *core_svc(int k)
{
	if (g_torn_down || !g_cores[k].svc)
		return &g_last_svc[k];
	return svc_stats(g_cores[k].svc);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: mxgate [options] [-- extra EAL arguments]\n"
"  --config FILE         configuration file (docs/configuration.md); without\n"
"                        it the embedded default runs (tap port, listeners\n"
"                        25 and 587, local Maildir next hop). Options below\n"
"                        override the file's stack settings.\n"
"  --check-config FILE   validate FILE, print FILE:LINE errors, exit 0/1\n"
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
"  --connect-bytes N     bytes each way per check connection (1048576)\n"
"  --connect-count N     check connections, one after another (1)\n"
"  --exit-after-connect  exit when the check is done (status 0 if all ok)\n"
"  --stats-file PATH     write JSON counters there periodically\n"
"  --stats-interval-ms N (200)\n"
"  --run-seconds N       stop after N seconds (0: until SIGINT/SIGTERM)\n"
"  --loadgen SPEC        benchmark load generator on every core:\n"
"                        cps,ADDR:PORT[,conc=N][,bytes=N] (open, request,\n"
"                        echo, close) or bulk,ADDR:PORT[,conc=N]\n"
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

static bool machine_has_hugepages(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long free_pages = 0;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &free_pages) == 1)
			break;
	fclose(f);
	return free_pages > 0;
}

/* "cps,198.18.0.2:7,conc=64,bytes=64" or "bulk,198.18.0.2:9,conc=4" */
static int parse_loadgen(const char *spec, struct svc_conf *svc)
{
	char buf[256], *save = NULL, *tok;
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	svc->lg_conc = 32;
	svc->lg_req_bytes = 64;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save), i++) {
		if (i == 0) {
			if (!strcmp(tok, "cps"))
				svc->lg_bulk = false;
			else if (!strcmp(tok, "bulk"))
				svc->lg_bulk = true;
			else
				goto bad;
		} else if (i == 1) {
			char *colon = strrchr(tok, ':');
			struct in_addr a;

			if (!colon)
				goto bad;
			*colon = '\0';
			if (inet_pton(AF_INET, tok, &a) != 1)
				goto bad;
			svc->lg_ip = a.s_addr;
			svc->lg_port = (uint16_t)atoi(colon + 1);
			if (!svc->lg_port)
				goto bad;
		} else if (!strncmp(tok, "conc=", 5)) {
			svc->lg_conc = (uint32_t)atoi(tok + 5);
		} else if (!strncmp(tok, "bytes=", 6)) {
			svc->lg_req_bytes = (uint32_t)atoi(tok + 6);
			if (svc->lg_req_bytes == 0 || svc->lg_req_bytes > 32768)
				goto bad;
		} else {
			goto bad;
		}
	}
	if (i < 2)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "mxgate: --loadgen '%s': expected "
			"cps|bulk,ADDR:PORT[,conc=N][,bytes=N(1..32768)]\n",
		spec);
	return -EINVAL;
}

enum {
	OPT_PORT = 256, OPT_IP, OPT_GW, OPT_CORES, OPT_HUGE, OPT_BUSY,
	OPT_IDLE, OPT_ECHO, OPT_DISCARD, OPT_MAXCONNS, OPT_BACKLOG, OPT_MAXTW,
	OPT_TWMS, OPT_RCVBUF, OPT_SNDBUF, OPT_MBUFS, OPT_FAULT, OPT_CONNECT,
	OPT_CBYTES, OPT_CCOUNT, OPT_CEXIT, OPT_STATS, OPT_STATSINT, OPT_RUN,
	OPT_LOADGEN, OPT_DPCPUS, OPT_CONFIG, OPT_CHECK, OPT_MAILDIR, OPT_LOGF,
	OPT_NOGW, OPT_MAXSESS, OPT_ADMIN, OPT_NOADMIN, OPT_METRICS, OPT_WATCH,
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

static int huge_mode; /* 0 auto, 1 yes, 2 no */
static char dp_cpus[128];

static int parse_args(int argc, char **argv)
{
	struct mxg_conf *c = &g_conf;
	uint64_t v;
	int opt;

	memset(c, 0, sizeof(*c));
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
			set_port = true;
			snprintf(c->port_spec, sizeof(c->port_spec), "%s",
				 optarg);
			break;
		case OPT_IP:
			set_ip = true;
			if (parse_cidr(optarg, &c->ip, &c->netmask) < 0) {
				fprintf(stderr, "mxgate: --ip: '%s' is not "
						"ADDR/LEN\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_GW: {
			rte_be32_t m;

			set_gw = true;
			if (parse_cidr(optarg, &c->gateway, &m) < 0) {
				fprintf(stderr, "mxgate: --gateway: '%s' is "
						"not an IPv4 address\n",
					optarg);
				return -EINVAL;
			}
			break;
		}
		case OPT_CORES:
			set_cores = true;
			NUM("cores", MXG_MAX_CORES, c->n_cores);
			if (c->n_cores == 0) {
				fprintf(stderr, "mxgate: --cores must be "
						">= 1\n");
				return -EINVAL;
			}
			break;
		case OPT_HUGE:
			if (!strcmp(optarg, "auto"))
				huge_mode = 0;
			else if (!strcmp(optarg, "yes"))
				huge_mode = 1;
			else if (!strcmp(optarg, "no"))
				huge_mode = 2;
			else {
				fprintf(stderr, "mxgate: --huge: auto, yes "
						"or no\n");
				return -EINVAL;
			}
			break;
		case OPT_BUSY:
			set_busy = true;
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
			set_maxconns = true;
			NUM("max-conns", 1 << 24, c->stack.max_conns);
			break;
		case OPT_BACKLOG:
			set_backlog = true;
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
			g_exit_after_connect = true;
			break;
		case OPT_STATS:
			snprintf(c->stats_file, sizeof(c->stats_file), "%s",
				 optarg);
			break;
		case OPT_STATSINT:
			NUM("stats-interval-ms", 60000, c->stats_interval_ms);
			break;
		case OPT_CONFIG:
			g_config_path = optarg;
			break;
		case OPT_CHECK: {
			static struct mxg_config chk;
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
			g_maildir_override = optarg;
			break;
		case OPT_LOGF:
			g_log_path = optarg;
			break;
		case OPT_ADMIN:
			g_admin_path = optarg;
			break;
		case OPT_NOADMIN:
			g_admin_path = NULL;
			break;
		case OPT_METRICS:
			g_metrics_spec = optarg;
			break;
		case OPT_NOGW:
			g_gateway = false;
			break;
		case OPT_WATCH:
			g_watch_config = true;
			break;
		case OPT_MAXSESS:
			NUM("max-sessions", 1 << 20, g_max_sessions);
			if (g_max_sessions == 0)
				g_max_sessions = 1;
			break;
		case OPT_RUN:
			NUM("run-seconds", 1 << 30, c->run_seconds);
			break;
		case OPT_DPCPUS:
			snprintf(dp_cpus, sizeof(dp_cpus), "%s", optarg);
			break;
		case OPT_LOADGEN:
			if (parse_loadgen(optarg, &c->svc) < 0)
				return -EINVAL;
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'V':
			printf("mxgate %s\n", MXG_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
#undef NUM
	c->port_is_vdev = strncmp(c->port_spec, "net_", 4) == 0 ||
			  strncmp(c->port_spec, "eth_", 4) == 0;
	c->svc.max_conns = c->stack.max_conns;
	return optind;
}

/* mbufs: descriptors and rings of every core, plus full receive and send
 * buffers for the first 256 connections per core (a received segment
 * holds up to one MSS per mbuf, a send-buffer mbuf up to 2 KiB). Beyond
 * that connections share the pool; a dry pool shows up as
 * NET_DROP_NOMBUF plus TCP backoff, never as a crash. --mbufs overrides. */
static uint32_t pool_size(const struct mxg_conf *c)
{
	uint32_t per_core = c->rx_desc + c->tx_desc + 2048 /* rings */ +
			    c->stack.txq_size + 4 * FAULT_HOLD_MAX +
			    8 * MXG_BURST;
	uint32_t conns = RTE_MIN(c->stack.max_conns, 256u);
	uint32_t per_conn = c->stack.rcvbuf / 1400 + c->stack.sndbuf / 2048 + 4;
	uint64_t n;

	if (c->mbufs)
		return c->mbufs;
	n = (uint64_t)c->n_cores * (per_core + (uint64_t)conns * per_conn);
	if (n > (1u << 22))
		n = 1u << 22;
	return (uint32_t)n;
}

static void on_signal(int sig)
{
	(void)sig;
	mxg_quit = 1;
}

static void on_sighup(int sig)
{
	(void)sig;
	g_reload_req = 1;
}

/* --- counters ------------------------------------------------------- */

#define NET_STATS_FIELDS(X)                                                    \
	X(rx_frames) X(tx_frames) X(tcp_seg_in) X(tcp_seg_out)                 \
	X(tcp_retransmits) X(tcp_fast_retransmits) X(tcp_rst_in)               \
	X(tcp_rst_out) X(tcp_challenge_acks) X(syncookies_sent)               \
	X(syncookies_ok) X(syncookies_bad) X(tcp_accepted) X(tcp_connected)    \
	X(tcp_closed) X(tcp_timeouts) X(tcp_zero_window_probes)                \
	X(tcp_ooo_queued) X(timewait_recycled) X(arp_requests_out)             \
	X(arp_replies_out) X(arp_replies_in) X(icmp_echo) X(icmp_frag_needed)  \
	X(ip_frags) X(live_tcbs) X(syn_rcvd) X(timewait) X(arp_cached)         \
	X(mbufs_held) X(ip6_rx) X(ip6_ext_hdrs) X(icmp6_echo) X(icmp6_ptb)     \
	X(nd_solicits_out) X(nd_adverts_out) X(nd_adverts_in)                  \
	X(nd_redirects_ignored) X(nd_ra_ignored) X(dad_duplicates)

#define GW_STATS_FIELDS(X)                                                     \
	X(sessions) X(sessions_live) X(sessions_refused)                      \
	X(messages_accepted) X(messages_rejected) X(messages_tempfail)        \
	X(rcpts_accepted) X(rcpts_rejected) X(bytes_in) X(backend_connects)   \
	X(backend_live) X(backend_reused) X(backend_errors) X(backend_checks) \
	X(maildir_delivered) X(maildir_failed) X(log_dropped)                 \
	X(conn_denied_acl) X(conn_denied_limit) X(conn_denied_rate)           \
	X(mail_denied_auth) X(mail_denied_sender) X(mail_rate_limited)        \
	X(mail_denied_count) X(rcpt_denied_relay) X(rcpt_denied_restrict)     \
	X(rcpt_rate_limited) X(rl_entries) X(rl_evictions) X(ipconn_entries)  \
	X(pushes_applied) X(pushes_failed)

#define LCORE_STATS_FIELDS(X)                                                  \
	X(loops) X(idle_sleeps) X(rx_pkts) X(tx_pkts) X(tx_dropped)            \
	X(steered_out) X(steered_in) X(steer_ring_full) X(replicated)

#define SVC_STATS_FIELDS(X)                                                    \
	X(accepted) X(refused) X(closed) X(reset) X(echo_bytes)                \
	X(discard_bytes) X(connect_started) X(connect_ok) X(connect_fail)      \
	X(connect_bytes_verified) X(lg_started) X(lg_completed) X(lg_failed)  \
	X(lg_bytes) X(live)

/* The counters as one JSON object (stats file and admin "stats"). */
static void stats_json(FILE *f, bool final, bool mbufs_ok)
{
	const struct mxg_conf *c = &g_conf;

	fprintf(f, "{\n \"version\": \"%s\",\n \"pid\": %d,\n", MXG_VERSION,
		getpid());
	fprintf(f, " \"cores\": %u,\n \"port\": {\"driver\": \"%s\", "
		   "\"queues\": %u, \"tx_offloads\": %llu},\n",
		c->n_cores, g_port.driver, g_port.n_queues,
		(unsigned long long)g_port.tx_offloads);
	fprintf(f, " \"conn_state_bytes\": %zu,\n",
		net_stack_conn_state_bytes());
	fprintf(f, " \"mbufs\": {\"size\": %u, \"available\": %u},\n",
		g_pool->size, rte_mempool_avail_count(g_pool));
	if (final)
		fprintf(f, " \"shutdown\": {\"clean\": true, "
			   "\"all_mbufs_returned\": %s},\n",
			mbufs_ok ? "true" : "false");

	/* Totals, then per core. */
	fprintf(f, " \"total\": {");
	{
		const char *sep = "";
#define SUM(field)                                                             \
	{                                                                      \
		uint64_t s = 0;                                                \
		for (int k = 0; k < c->n_cores; k++)                           \
			s += core_net(k)->field;                               \
		fprintf(f, "%s\"%s\": %llu", sep, #field,                      \
			(unsigned long long)s);                                \
		sep = ", ";                                                    \
	}
		NET_STATS_FIELDS(SUM)
#undef SUM
#define SUM(field)                                                             \
	{                                                                      \
		uint64_t s = 0;                                                \
		for (int k = 0; k < c->n_cores; k++)                           \
			s += g_cores[k].stats.field;                           \
		fprintf(f, "%s\"%s\": %llu", sep, #field,                      \
			(unsigned long long)s);                                \
	}
		LCORE_STATS_FIELDS(SUM)
#undef SUM
#define SUM(field)                                                             \
	{                                                                      \
		uint64_t s = 0;                                                \
		for (int k = 0; k < c->n_cores; k++)                           \
			s += core_svc(k)->field;                               \
		fprintf(f, "%s\"svc_%s\": %llu", sep, #field,                  \
			(unsigned long long)s);                                \
	}
		SVC_STATS_FIELDS(SUM)
#undef SUM
#define SUM(field)                                                             \
	{                                                                      \
		uint64_t s = 0;                                                \
		for (int k = 0; k < c->n_cores; k++)                           \
			s += core_gw(k)->field;                                \
		fprintf(f, "%s\"gw_%s\": %llu", sep, #field,                   \
			(unsigned long long)s);                                \
	}
		GW_STATS_FIELDS(SUM)
#undef SUM
		{
			uint64_t fd = 0, fdup = 0, fro = 0, fdl = 0;

			for (int k = 0; k < c->n_cores; k++) {
				struct fault *fs[2] = {g_cores[k].fault_rx,
						       g_cores[k].fault_tx};
				for (int j = 0; j < 2; j++) {
					const struct fault_stats *x =
						fs[j] ? fault_stats(fs[j])
						      : &g_last_fault[k][j];
					fd += x->dropped;
					fdup += x->duplicated;
					fro += x->reordered;
					fdl += x->delayed;
				}
			}
			fprintf(f, "%s\"fault_dropped\": %llu, "
				   "\"fault_duplicated\": %llu, "
				   "\"fault_reordered\": %llu, "
				   "\"fault_delayed\": %llu",
				sep, (unsigned long long)fd,
				(unsigned long long)fdup,
				(unsigned long long)fro,
				(unsigned long long)fdl);
		}
		for (int d = 0; d < NET_DROP_MAX; d++) {
			uint64_t s = 0;

			for (int k = 0; k < c->n_cores; k++)
				s += core_net(k)->drops[d];
			fprintf(f, ", \"drop_%s\": %llu",
				net_drop_name((enum net_drop)d),
				(unsigned long long)s);
		}
	}
	fprintf(f, "},\n \"per_core\": [");
	for (int k = 0; k < c->n_cores; k++) {
		const char *sep = "";

		fprintf(f, "%s\n  {\"core\": %d, \"lcore\": %u, ",
			k ? "," : "", k, g_cores[k].lcore_id);
#define ONE(field)                                                             \
	fprintf(f, "%s\"%s\": %llu", sep, #field,                              \
		(unsigned long long)core_net(k)->field);                       \
	sep = ", ";
		NET_STATS_FIELDS(ONE)
#undef ONE
#define ONE(field)                                                             \
	fprintf(f, "%s\"%s\": %llu", sep, #field,                              \
		(unsigned long long)g_cores[k].stats.field);                   \
	sep = ", ";
		LCORE_STATS_FIELDS(ONE)
#undef ONE
		if (g_cores[k].gw || g_torn_down) {
#define ONE(field)                                                             \
	fprintf(f, "%s\"gw_%s\": %llu", sep, #field,                          \
		(unsigned long long)core_gw(k)->field);                        \
	sep = ", ";
			GW_STATS_FIELDS(ONE)
#undef ONE
		}
		if (g_cores[k].gw) {
			struct gw_push_state ps;

			gw_core_push_state(g_cores[k].gw, &ps);
			fprintf(f, ", \"policy_generation\": %llu, "
				   "\"push_seq\": %llu, \"push_latency_us\": "
				   "%llu, \"blocks\": %u",
				(unsigned long long)ps.generation,
				(unsigned long long)ps.seq,
				(unsigned long long)ps.latency_us, ps.blocks);
		}
		fprintf(f, "}");
	}
	fprintf(f, "\n ]");
	if (g_gateway && g_gw.snap) {
		const struct mxg_snapshot *sn = gw_current(&g_gw);

		fprintf(f, ",\n \"policy\": {\"generation\": %llu, "
			   "\"source\": \"%s\", \"reloads_ok\": %llu, "
			   "\"reloads_failed\": %llu, \"snapshots_retired\": "
			   "%llu, \"snapshots_freed\": %llu, "
			   "\"snapshots_pending\": %u, \"pushes\": %llu, "
			   "\"last_reload_us\": %llu, \"tables_kib\": %u}",
			(unsigned long long)sn->generation,
			sn->cfg.source ? sn->cfg.source : "",
			(unsigned long long)g_reloads_ok,
			(unsigned long long)g_reloads_failed,
			(unsigned long long)g_gw.snapshots_retired,
			(unsigned long long)g_gw.snapshots_freed,
			g_gw.n_retired, (unsigned long long)g_pushes,
			(unsigned long long)g_last_reload_us,
			sn->tables_bytes);
	}
	fprintf(f, "\n}\n");
}

static void write_stats(bool final, bool mbufs_ok)
{
	const struct mxg_conf *c = &g_conf;
	char tmp[300];
	FILE *f;

	if (!c->stats_file[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->stats_file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	stats_json(f, final, mbufs_ok);
	fclose(f);
	rename(tmp, c->stats_file);
}

/* --- admin socket and metrics (main lcore) -------------------------- */

static uint64_t g_start_us;

static uint64_t gw_total(size_t off)
{
	uint64_t s = 0;

	for (int k = 0; k < g_conf.n_cores; k++)
		s += *(const uint64_t *)((const char *)core_gw(k) + off);
	return s;
}
#define GW_TOTAL(field) gw_total(offsetof(struct gw_stats, field))

static uint64_t net_total(size_t off)
{
	uint64_t s = 0;

	for (int k = 0; k < g_conf.n_cores; k++)
		s += *(const uint64_t *)((const char *)core_net(k) + off);
	return s;
}
#define NET_TOTAL(field) net_total(offsetof(struct net_stats, field))

static int adm_status(const struct ctl_admin_req *req, char *out,
		      size_t outlen, void *ctx)
{
	char ip[INET_ADDRSTRLEN];

	(void)req;
	(void)ctx;
	inet_ntop(AF_INET, &g_conf.ip, ip, sizeof(ip));
	snprintf(out, outlen,
		 "{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%llu,"
		 "\"address\":\"%s\",\"cores\":%u,\"port_driver\":\"%s\","
		 "\"gateway\":%s,\"listeners\":%u,\"sessions_open\":%llu,"
		 "\"messages_accepted\":%llu,\"mbufs_free\":%u,"
		 "\"mbufs\":%u}",
		 MXG_VERSION, getpid(),
		 (unsigned long long)((clock_us() - g_start_us) / 1000000),
		 ip, g_conf.n_cores, g_port.driver,
		 g_gateway ? "true" : "false",
		 g_gateway ? gw_current(&g_gw)->n_listeners : 0,
		 (unsigned long long)GW_TOTAL(sessions_live),
		 (unsigned long long)GW_TOTAL(messages_accepted),
		 rte_mempool_avail_count(g_pool), g_pool->size);
	return 0;
}

static int adm_stats(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)req;
	(void)ctx;
	if (!f)
		return -ENOMEM;
	stats_json(f, false, false);
	fclose(f);
	if (len + 1 > outlen) {
		free(buf);
		snprintf(out, outlen, "stats larger than the reply limit");
		return -ENOSPC;
	}
	memcpy(out, buf, len + 1);
	free(buf);
	return 0;
}

static void metrics_cb(struct ctl_mw *w, void *ctx)
{
	static const char *outcomes[] = {"accepted", "rejected", "tempfail"};
	uint64_t msgs[3] = {GW_TOTAL(messages_accepted),
			    GW_TOTAL(messages_rejected),
			    GW_TOTAL(messages_tempfail)};

	(void)ctx;
	ctl_mw_family(w, "mxgate_connections_accepted_total",
		      "SMTP connections accepted", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_connections_accepted_total", NULL, 0,
		   GW_TOTAL(sessions));
	ctl_mw_family(w, "mxgate_connections_rejected_total",
		      "SMTP connections refused, by reason", CTL_METRIC_COUNTER);
	{
		struct ctl_label l = {"reason", "session_table_full"};
		const char *reasons[] = {"acl", "limit", "rate"};
		uint64_t v[] = {GW_TOTAL(conn_denied_acl),
				GW_TOTAL(conn_denied_limit),
				GW_TOTAL(conn_denied_rate)};

		ctl_mw_u64(w, "mxgate_connections_rejected_total", &l, 1,
			   GW_TOTAL(sessions_refused));
		for (int i = 0; i < 3; i++) {
			l.value = reasons[i];
			ctl_mw_u64(w, "mxgate_connections_rejected_total", &l,
				   1, v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_policy_refusals_total",
		      "Commands refused by policy, by reason",
		      CTL_METRIC_COUNTER);
	{
		const char *reasons[] = {"auth_required", "sender",
					 "message_rate", "messages_per_conn",
					 "relay", "recipient", "recipient_rate"};
		uint64_t v[] = {GW_TOTAL(mail_denied_auth),
				GW_TOTAL(mail_denied_sender),
				GW_TOTAL(mail_rate_limited),
				GW_TOTAL(mail_denied_count),
				GW_TOTAL(rcpt_denied_relay),
				GW_TOTAL(rcpt_denied_restrict),
				GW_TOTAL(rcpt_rate_limited)};

		for (int i = 0; i < 7; i++) {
			struct ctl_label l = {"reason", reasons[i]};

			ctl_mw_u64(w, "mxgate_policy_refusals_total", &l, 1,
				   v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_reloads_total",
		      "Configuration reloads by result", CTL_METRIC_COUNTER);
	{
		struct ctl_label l = {"result", "ok"};

		ctl_mw_u64(w, "mxgate_reloads_total", &l, 1, g_reloads_ok);
		l.value = "failed";
		ctl_mw_u64(w, "mxgate_reloads_total", &l, 1, g_reloads_failed);
	}
	ctl_mw_family(w, "mxgate_policy_generation",
		      "Generation of the published policy snapshot",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_policy_generation", NULL, 0,
		   g_gw.snap ? gw_current(&g_gw)->generation : 0);
	ctl_mw_family(w, "mxgate_pushes_total", "Runtime pushes sent",
		      CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_pushes_total", NULL, 0, g_pushes);
	ctl_mw_family(w, "mxgate_ratelimit_buckets",
		      "Rate-limit buckets held (all cores)", CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_ratelimit_buckets", NULL, 0,
		   GW_TOTAL(rl_entries));
	ctl_mw_family(w, "mxgate_backend_reply_seconds",
		      "Backend reply latency to the end of data",
		      CTL_METRIC_HISTOGRAM);
	{
		static const uint32_t ms[] = GW_LAT_BOUNDS;
		double bounds[GW_LAT_BUCKETS - 1];
		uint64_t counts[GW_LAT_BUCKETS] = {0}, total = 0, sum = 0;

		for (unsigned i = 0; i < GW_LAT_BUCKETS - 1; i++)
			bounds[i] = ms[i] / 1000.0;
		for (int k = 0; k < g_conf.n_cores; k++) {
			uint64_t su;
			const uint64_t *c;

			if (!g_cores[k].gw)
				continue;
			c = gw_core_latency(g_cores[k].gw, &su);
			for (unsigned i = 0; i < GW_LAT_BUCKETS; i++) {
				counts[i] += c[i];
				total += c[i];
			}
			sum += su;
		}
		ctl_mw_histogram(w, "mxgate_backend_reply_seconds", NULL, 0,
				 bounds, counts, GW_LAT_BUCKETS - 1,
				 sum / 1e6, total);
	}
	ctl_mw_family(w, "mxgate_messages_total",
		      "Messages by final outcome", CTL_METRIC_COUNTER);
	for (int i = 0; i < 3; i++) {
		struct ctl_label l = {"outcome", outcomes[i]};

		ctl_mw_u64(w, "mxgate_messages_total", &l, 1, msgs[i]);
	}
	ctl_mw_family(w, "mxgate_received_bytes_total",
		      "SMTP bytes taken from clients", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_received_bytes_total", NULL, 0,
		   GW_TOTAL(bytes_in));
	ctl_mw_family(w, "mxgate_sessions_open", "SMTP sessions open",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_sessions_open", NULL, 0,
		   GW_TOTAL(sessions_live));
	ctl_mw_family(w, "mxgate_backend_connections_open",
		      "Backend connections open", CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_backend_connections_open", NULL, 0,
		   GW_TOTAL(backend_live));
	ctl_mw_family(w, "mxgate_backend_errors_total",
		      "Backend connections that failed", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_backend_errors_total", NULL, 0,
		   GW_TOTAL(backend_errors));
	ctl_mw_family(w, "mxgate_tcp_retransmits_total",
		      "TCP segments retransmitted", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_tcp_retransmits_total", NULL, 0,
		   NET_TOTAL(tcp_retransmits));
	ctl_mw_family(w, "mxgate_syncookies_sent_total",
		      "SYN cookies sent", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_syncookies_sent_total", NULL, 0,
		   NET_TOTAL(syncookies_sent));
	ctl_mw_family(w, "mxgate_mbufs_free", "Free mbufs in the pool",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_mbufs_free", NULL, 0,
		   rte_mempool_avail_count(g_pool));
}

/* --- reload and runtime pushes (main lcore) ------------------------- */

/* A reloaded file is compiled with the same command-line overrides the
 * running one got (stack settings, Maildir path, log file), so that only
 * what the file itself changed is compared. */
static void reload_fixup(struct mxg_config *n)
{
	const struct mxg_config *o = &gw_current(&g_gw)->cfg;

#define KEEP_STR(f)                                                            \
	do {                                                                   \
		free(n->f);                                                    \
		n->f = o->f ? strdup(o->f) : NULL;                             \
	} while (0)
	if (set_port)
		KEEP_STR(stack.port);
	if (set_ip) {
		n->stack.address = o->stack.address;
		n->stack.prefix_len = o->stack.prefix_len;
	}
	if (set_gw)
		n->stack.gateway = o->stack.gateway;
	if (set_cores)
		n->stack.cores = o->stack.cores;
	if (set_busy)
		n->stack.busy_poll = o->stack.busy_poll;
	if (set_maxconns)
		n->stack.max_conns = o->stack.max_conns;
	if (set_backlog)
		n->stack.syn_backlog = o->stack.syn_backlog;
	if (g_maildir_override)
		KEEP_STR(maildir.path);
	if (g_log_path)
		KEEP_STR(log.file);
#undef KEEP_STR
}

/* Waits (bounded) until every dataplane core has applied push seq or
 * adopted generation gen; returns how many did and the slowest push
 * latency they measured. */
static unsigned cores_caught_up(uint64_t seq, uint64_t gen, uint32_t wait_ms,
				uint64_t *lat_max, struct gw_push_state *states)
{
	uint64_t deadline = clock_us() + (uint64_t)wait_ms * 1000;
	unsigned n;

	for (;;) {
		n = 0;
		*lat_max = 0;
		for (int k = 0; k < g_conf.n_cores; k++) {
			struct gw_push_state ps;

			if (states)
				memset(&states[k], 0, sizeof(states[k]));
			if (!g_cores[k].gw)
				continue;
			gw_core_push_state(g_cores[k].gw, &ps);
			if ((seq && ps.seq >= seq) ||
			    (gen && ps.generation >= gen)) {
				n++;
				*lat_max = RTE_MAX(*lat_max, ps.latency_us);
				/* what this core said when it was counted */
				if (states)
					states[k] = ps;
			}
		}
		if (n == g_conf.n_cores || clock_us() >= deadline)
			return n;
		rte_delay_us_sleep(200);
	}
}

/* Reload the configuration file: all or nothing. On failure the running
 * policy is untouched and msg says why (every error with file and line).
 * Returns 0 or a negative errno. */
static int do_reload(const char *who, char *msg, size_t len)
{
	static char errs[16384];
	struct mxg_config cfg;
	struct mxg_snapshot *sn;
	uint64_t t0 = clock_us(), lat;
	char err[512];
	unsigned n;
	int r;

	if (!g_config_path) {
		snprintf(msg, len, "no configuration file to reload (running "
				   "the built-in default; start with --config)");
		r = -EINVAL;
		goto failed;
	}
	r = ctl_config_load(g_config_path, &cfg, errs, sizeof(errs));
	if (r < 0) {
		size_t l = strlen(errs);

		while (l && errs[l - 1] == '\n')
			errs[--l] = '\0';
		snprintf(msg, len, "%s", errs[0] ? errs : strerror(-r));
		goto failed;
	}
	reload_fixup(&cfg);
	r = mxg_snapshot_build(&cfg, g_generation + 1, &sn, err, sizeof(err));
	if (r < 0) {
		snprintf(msg, len, "%s", err);
		goto failed;
	}
	r = gw_publish(&g_gw, sn, err, sizeof(err));
	if (r < 0) {
		mxg_snapshot_free(sn);
		snprintf(msg, len, "%s", err);
		goto failed;
	}
	g_generation++;
	g_reloads_ok++;
	g_last_reload_us = clock_us() - t0;
	n = cores_caught_up(0, g_generation, 1000, &lat, NULL);
	snprintf(msg, len,
		 "{\"generation\":%llu,\"compile_us\":%llu,\"cores\":%u,"
		 "\"cores_adopted\":%u,\"adopt_us\":%llu}",
		 (unsigned long long)g_generation,
		 (unsigned long long)g_last_reload_us, g_conf.n_cores, n,
		 (unsigned long long)(clock_us() - t0 - g_last_reload_us));
	if (g_log)
		fprintf(g_log, "event=reload by=%s result=ok generation=%llu "
			       "compile_us=%llu\n",
			who, (unsigned long long)g_generation,
			(unsigned long long)g_last_reload_us);
	return 0;
failed:
	g_reloads_failed++;
	if (g_log) {
		char one[1024];

		snprintf(one, sizeof(one), "%s", msg);
		for (char *p = one; *p; p++)
			if (*p == '\n')
				*p = ';';
		fprintf(g_log, "event=reload by=%s result=failed error=\"%s\"\n",
			who, one);
		fflush(g_log);
	}
	return r;
}

static int adm_reload(const struct ctl_admin_req *req, char *out,
		      size_t outlen, void *ctx)
{
	(void)req;
	(void)ctx;
	return do_reload("admin", out, outlen);
}

/* Keys of limit pushes already sent (each core holds at most
 * GW_MAX_OVERRIDES_MAIN distinct ones). */
#define GW_MAX_OVERRIDES_MAIN 64
static char g_over_keys[GW_MAX_OVERRIDES_MAIN][120];
static unsigned g_n_over_keys;
static char g_bover_keys[GW_MAX_OVERRIDES_MAIN][120];
static unsigned g_n_bover_keys;

static bool key_room(char keys[][120], unsigned *n, const char *k)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(keys[i], k) == 0)
			return true;
	if (*n == GW_MAX_OVERRIDES_MAIN)
		return false;
	snprintf(keys[(*n)++], 120, "%s", k);
	return true;
}

/* Why a core could not apply p (err: its -errno). */
static const char *push_fail_reason(const struct gw_push *p, int err)
{
	static char why[160];

	if (err != -ENOSPC)
		return strerror(-err);
	switch (p->kind) {
	case GW_PUSH_BLOCK:
	case GW_PUSH_ALLOW:
		snprintf(why, sizeof(why),
			 "pushed-block table full (policy.block_table_size "
			 "= %u per core); unblock entries or raise it "
			 "(restart)",
			 gw_current(&g_gw)->block_table_size);
		return why;
	case GW_PUSH_DOMAIN_ADD:
	case GW_PUSH_DOMAIN_DEL:
		return "pushed-domain table full (4096 per core); put the "
		       "domains in the configuration and reload";
	default:
		return "override table full (64 per core)";
	}
}

/* Sends p to every core and waits (at most 1 s) until all applied it. */
static int push_and_wait(struct gw_push *p, char *out, size_t outlen)
{
	int64_t seq = gw_push_send(&g_gw, p);
	uint64_t lat;
	struct gw_push_state states[MXG_MAX_CORES];
	unsigned n, nfail = 0;
	int err = 0;

	if (seq < 0) {
		snprintf(out, outlen, "push queue full; try again");
		return -EBUSY;
	}
	g_pushes++;
	n = cores_caught_up((uint64_t)seq, 0, 1000, &lat, states);
	/* A core that took the push but could not apply it (its table
	 * full) says so; the reply names the error. Counted among the
	 * cores counted in n, from the state each had then (its seq load
	 * is an acquire: fail_seq/fail_err are consistent with it). */
	for (int k = 0; k < g_conf.n_cores; k++)
		if (states[k].seq >= (uint64_t)seq &&
		    states[k].fail_seq == (uint64_t)seq) {
			nfail++;
			err = states[k].fail_err;
		}
	snprintf(out, outlen,
		 "{\"seq\":%lld,\"cores\":%u,\"cores_applied\":%u,"
		 "\"cores_failed\":%u,\"latency_us\":%llu%s%s%s}",
		 (long long)seq, g_conf.n_cores, n - nfail, nfail,
		 (unsigned long long)lat, nfail ? ",\"error\":\"" : "",
		 nfail ? push_fail_reason(p, err) : "",
		 nfail ? "\"" : "");
	if (g_log)
		fprintf(g_log, "event=push seq=%lld kind=%u name=\"%s\" "
			       "cores_applied=%u cores_failed=%u "
			       "latency_us=%llu\n",
			(long long)seq, p->kind, p->name, n - nfail, nfail,
			(unsigned long long)lat);
	if (nfail)
		return err < 0 ? err : -EIO;
	return n == g_conf.n_cores ? 0 : -ETIMEDOUT;
}

static int adm_block(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	const char *cmd = ctl_admin_req_cmd(req);
	const char *cidr = ctl_admin_req_str(req, "cidr");
	struct gw_push p;
	struct ctl_cidr c;
	char why[128];
	int64_t exp = 0;
	uint32_t ip;

	(void)ctx;
	memset(&p, 0, sizeof(p));
	if (!cidr) {
		snprintf(out, outlen, "%s: missing \"cidr\"", cmd);
		return -EINVAL;
	}
	if (ctl_cidr_parse(cidr, &c, why, sizeof(why)) < 0) {
		snprintf(out, outlen, "%s: bad CIDR '%s': %s", cmd, cidr, why);
		return -EINVAL;
	}
	if (c.family != AF_INET) {
		snprintf(out, outlen, "%s: IPv6 blocks are not supported yet "
				      "(the stack is IPv4 only)", cmd);
		return -EINVAL;
	}
	if (ctl_admin_req_int(req, "expire", &exp) == -EINVAL || exp < 0 ||
	    exp > 10LL * 365 * 86400) {
		snprintf(out, outlen, "%s: bad \"expire\" (seconds, 0..%lld)",
			 cmd, 10LL * 365 * 86400);
		return -EINVAL;
	}
	memcpy(&ip, c.addr, 4);
	p.ip = ntohl(ip);
	p.depth = c.prefix_len;
	p.kind = strcmp(cmd, "block") == 0   ? GW_PUSH_BLOCK
		 : strcmp(cmd, "allow") == 0 ? GW_PUSH_ALLOW
					     : GW_PUSH_UNBLOCK;
	p.expire_us = exp ? clock_us() + (uint64_t)exp * 1000000 : 0;
	snprintf(p.name, sizeof(p.name), "%s", cidr);
	return push_and_wait(&p, out, outlen);
}

static int adm_domain(const struct ctl_admin_req *req, char *out,
		      size_t outlen, void *ctx)
{
	const char *cmd = ctl_admin_req_cmd(req);
	const char *d = ctl_admin_req_str(req, "domain");
	struct gw_push p;
	size_t n;

	(void)ctx;
	memset(&p, 0, sizeof(p));
	if (!d || !d[0]) {
		snprintf(out, outlen, "%s: missing \"domain\"", cmd);
		return -EINVAL;
	}
	if (d[0] == '*' && d[1] == '.')
		d++;
	if (d[0] == '.') {
		p.subdomains = true;
		d++;
	}
	n = strlen(d);
	if (n && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= sizeof(p.name)) {
		snprintf(out, outlen, "%s: bad domain", cmd);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) {
			snprintf(out, outlen, "%s: bad domain (letters, "
					      "digits, '-', '.')", cmd);
			return -EINVAL;
		}
		p.name[i] = (char)tolower((unsigned char)ch);
	}
	p.kind = strcmp(cmd, "domain-add") == 0 ? GW_PUSH_DOMAIN_ADD
						: GW_PUSH_DOMAIN_DEL;
	return push_and_wait(&p, out, outlen);
}

static int adm_limit(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	static const char *lfields[] = {"max_connections",
					"max_connections_per_ip",
					"connection_rate_per_ip",
					"max_messages_per_connection", NULL};
	const struct mxg_snapshot *sn = gw_current(&g_gw);
	const char *key = ctl_admin_req_str(req, "key");
	const char *dot;
	struct gw_push p;
	int64_t v;
	bool ok = false;

	(void)ctx;
	memset(&p, 0, sizeof(p));
	if (!key || ctl_admin_req_int(req, "value", &v) < 0 || v < 0 ||
	    v > UINT32_MAX) {
		snprintf(out, outlen, "limit: need \"key\" and \"value\" "
				      "(0..4294967295)");
		return -EINVAL;
	}
	dot = strrchr(key, '.');
	if (dot && strncmp(key, "listener.", 9) == 0 && dot > key + 9) {
		size_t nl = (size_t)(dot - (key + 9));

		for (uint32_t i = 0; i < sn->n_listeners; i++) {
			const char *ln = sn->listeners[i].cl->name;

			if (strlen(ln) == nl && !strncmp(ln, key + 9, nl))
				for (int f = 0; lfields[f]; f++)
					ok |= !strcmp(dot + 1, lfields[f]);
		}
	} else if (dot && strncmp(key, "rate_limit.", 11) == 0 &&
		   dot > key + 11) {
		size_t nl = (size_t)(dot - (key + 11));

		for (uint32_t i = 0; i < sn->n_rules; i++) {
			const char *rn = sn->rules[i].name;

			if (rn && strlen(rn) == nl &&
			    !strncmp(rn, key + 11, nl))
				ok |= !strcmp(dot + 1, "per_minute") ||
				      !strcmp(dot + 1, "burst");
		}
	}
	if (!ok) {
		snprintf(out, outlen,
			 "limit: unknown key '%s' (listener.NAME.{max_"
			 "connections,max_connections_per_ip,connection_rate_"
			 "per_ip,max_messages_per_connection} or "
			 "rate_limit.NAME.{per_minute,burst} of the running "
			 "policy)",
			 key);
		return -EINVAL;
	}
	if (strlen(key) >= sizeof(p.name) ||
	    !key_room(g_over_keys, &g_n_over_keys, key)) {
		snprintf(out, outlen, "limit: too many distinct limit "
				      "overrides (%d); write them to the file "
				      "and reload",
			 GW_MAX_OVERRIDES_MAIN);
		return -ENOSPC;
	}
	p.kind = GW_PUSH_LIMIT;
	p.value = (uint32_t)v;
	snprintf(p.name, sizeof(p.name), "%s", key);
	return push_and_wait(&p, out, outlen);
}

static int adm_backend(const struct ctl_admin_req *req, char *out,
		       size_t outlen, void *ctx)
{
	const struct mxg_snapshot *sn = gw_current(&g_gw);
	const char *cmd = ctl_admin_req_cmd(req);
	const char *name = ctl_admin_req_str(req, "name");
	const char *slash, *hp;
	struct gw_push p;
	unsigned found = 0;

	(void)ctx;
	memset(&p, 0, sizeof(p));
	if (!name || strlen(name) >= sizeof(p.name)) {
		snprintf(out, outlen, "%s: missing or long \"name\"", cmd);
		return -EINVAL;
	}
	slash = strchr(name, '/');
	hp = slash ? slash + 1 : name;
	for (uint32_t i = 0; i < sn->cfg.n_pools; i++) {
		const struct ctl_pool *cp = &sn->cfg.pools[i];

		if (slash && (strlen(cp->name) != (size_t)(slash - name) ||
			      strncmp(cp->name, name, (size_t)(slash - name))))
			continue;
		for (uint32_t k = 0; k < cp->n_servers; k++) {
			struct in_addr a = {htonl(cp->servers[k].address)};
			char s[64];

			inet_ntop(AF_INET, &a, s, sizeof(s));
			snprintf(s + strlen(s), sizeof(s) - strlen(s), ":%u",
				 cp->servers[k].port);
			found += strcmp(s, hp) == 0;
		}
	}
	if (!found) {
		snprintf(out, outlen, "%s: no backend '%s' in the running "
				      "policy (ADDR:PORT or POOL/ADDR:PORT)",
			 cmd, name);
		return -ENOENT;
	}
	if (!key_room(g_bover_keys, &g_n_bover_keys, name)) {
		snprintf(out, outlen, "%s: too many backend overrides", cmd);
		return -ENOSPC;
	}
	p.kind = GW_PUSH_BACKEND;
	p.down = strcmp(cmd, "backend-down") == 0;
	snprintf(p.name, sizeof(p.name), "%s", name);
	return push_and_wait(&p, out, outlen);
}

static int adm_drain(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	struct gw_push p;
	char tmp[256];
	int r;

	(void)req;
	(void)ctx;
	memset(&p, 0, sizeof(p));
	p.kind = GW_PUSH_DRAIN;
	snprintf(p.name, sizeof(p.name), "drain");
	r = push_and_wait(&p, tmp, sizeof(tmp));
	if (r < 0 && r != -ETIMEDOUT) {
		snprintf(out, outlen, "%s", tmp);
		return r;
	}
	if (!g_drain_started_us)
		g_drain_started_us = clock_us();
	snprintf(out, outlen,
		 "{\"draining\":true,\"sessions_open\":%llu,"
		 "\"timeout_s\":300}",
		 (unsigned long long)GW_TOTAL(sessions_live));
	return 0;
}

/* The running policy, for mxgatectl show-config. */
static int adm_show(const struct ctl_admin_req *req, char *out,
		    size_t outlen, void *ctx)
{
	const struct mxg_snapshot *sn = gw_current(&g_gw);
	const struct mxg_config *cf = &sn->cfg;
	size_t off = 0;
	char q[600];

	(void)req;
	(void)ctx;
#define P(...)                                                                 \
	do {                                                                   \
		if (off < outlen)                                              \
			off += (size_t)snprintf(out + off, outlen - off,       \
						__VA_ARGS__);                  \
	} while (0)
	ctl_admin_json_str(q, sizeof(q), cf->source ? cf->source : "");
	P("{\"generation\":%llu,\"source\":%s,\"listeners\":[",
	  (unsigned long long)sn->generation, q);
	for (uint32_t i = 0; i < cf->n_listeners; i++) {
		const struct ctl_listener *l = &cf->listeners[i];

		ctl_admin_json_str(q, sizeof(q), l->name);
		P("%s{\"name\":%s,\"port\":%u,\"role\":\"%s\","
		  "\"networks\":%u,\"allow\":%u,\"deny\":%u,"
		  "\"deny_action\":\"%s\",\"allow_anonymous\":%s,"
		  "\"require_auth\":%s,\"relay_authenticated\":%s,"
		  "\"max_connections\":%u,\"max_connections_per_ip\":%u,"
		  "\"connection_rate_per_ip\":%u,"
		  "\"max_messages_per_connection\":%u,"
		  "\"max_recipients\":%u,\"max_message_size\":%llu}",
		  i ? "," : "", q, l->port, ctl_role_name(l->role),
		  l->networks.n, l->allow.n, l->deny.n,
		  l->deny_action == CTL_DENY_CLOSE ? "close" : "reply",
		  l->allow_anonymous ? "true" : "false",
		  l->require_auth ? "true" : "false",
		  l->relay_authenticated ? "true" : "false",
		  l->max_connections, l->max_connections_per_ip,
		  l->connection_rate_per_ip, l->max_messages_per_connection,
		  l->max_recipients,
		  (unsigned long long)l->max_message_size);
	}
	P("],\"accepted_domains\":%u,\"relay_networks\":[",
	  cf->policy.n_domains);
	for (uint32_t i = 0; i < cf->policy.relay_networks.n && i < 32; i++) {
		char c[CTL_CIDR_STRLEN];

		ctl_cidr_format(&cf->policy.relay_networks.v[i], c, sizeof(c));
		P("%s\"%s\"", i ? "," : "", c);
	}
	P("],\"allow\":%u,\"deny\":%u,\"rate_limits\":[",
	  cf->policy.allow.n, cf->policy.deny.n);
	for (uint32_t i = 0; i < sn->n_rules; i++) {
		static const char *keys[] = {"ip", "ip24", "sender_domain",
					     "user"};
		static const char *whats[] = {"connections", "messages",
					      "recipients"};

		ctl_admin_json_str(q, sizeof(q),
				   sn->rules[i].name ? sn->rules[i].name : "");
		P("%s{\"name\":%s,\"key\":\"%s\",\"what\":\"%s\","
		  "\"per_minute\":%u,\"burst\":%u}",
		  i ? "," : "", q, keys[sn->rules[i].key],
		  whats[sn->rules[i].what], sn->rules[i].per_minute,
		  sn->rules[i].burst);
	}
	P("],\"pools\":%u,\"tables_kib\":%u,\"limit_overrides\":%u,"
	  "\"backend_overrides\":%u}",
	  cf->n_pools, sn->tables_bytes, g_n_over_keys, g_n_bover_keys);
#undef P
	if (off >= outlen) {
		snprintf(out, outlen, "policy larger than the reply limit");
		return -ENOSPC;
	}
	return 0;
}

/* Main-loop work of the control plane: reload requests, file watch,
 * freeing retired snapshots, the end of a drain. */
static void control_tick(uint64_t now)
{
	static uint64_t last_watch;
	static struct stat last_st;
	static bool have_st;

	if (g_reload_req) {
		char msg[16384];

		g_reload_req = 0;
		if (do_reload("SIGHUP", msg, sizeof(msg)) < 0)
			fprintf(stderr, "mxgate: reload failed, policy "
					"unchanged:\n%s\n", msg);
		else
			printf("mxgate: reloaded %s: %s\n", g_config_path, msg);
		fflush(stdout);
	}
	if (g_watch_config && g_config_path && now - last_watch >= 1000000) {
		struct stat st;

		last_watch = now;
		if (stat(g_config_path, &st) == 0) {
			if (have_st &&
			    (st.st_mtim.tv_sec != last_st.st_mtim.tv_sec ||
			     st.st_mtim.tv_nsec != last_st.st_mtim.tv_nsec ||
			     st.st_size != last_st.st_size ||
			     st.st_ino != last_st.st_ino)) {
				char msg[16384];

				if (do_reload("watch", msg, sizeof(msg)) < 0)
					fprintf(stderr, "mxgate: reload "
							"(file changed) failed, "
							"policy unchanged:\n%s\n",
						msg);
			}
			last_st = st;
			have_st = true;
		}
	}
	gw_reclaim(&g_gw);
	now = clock_us(); /* the admin poll may have started the drain */
	if (g_drain_started_us &&
	    (GW_TOTAL(sessions_live) == 0 ||
	     now - g_drain_started_us > 300ULL * 1000000)) {
		printf("mxgate: drained (%llu sessions left), exiting\n",
		       (unsigned long long)GW_TOTAL(sessions_live));
		fflush(stdout);
		mxg_quit = 1;
	}
}

/* --- setup ---------------------------------------------------------- */

/* Admin socket and metrics endpoint; failures are reported and the
 * gateway serves without them (another instance may own the path). */
static void start_control(void)
{
	int err = 0;

	if (g_admin_path && g_gateway) {
		struct ctl_admin_conf ac = {.path = g_admin_path};
		char dir[256], *slash;

		snprintf(dir, sizeof(dir), "%s", g_admin_path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0700);
		}
		g_admin = ctl_admin_create(&ac, &err);
		if (!g_admin) {
			fprintf(stderr, "mxgate: admin socket %s: %s (running "
					"without it)\n", g_admin_path,
				strerror(-err));
		} else {
			ctl_admin_register(g_admin, "status", adm_status,
					   NULL);
			ctl_admin_register(g_admin, "stats", adm_stats, NULL);
			ctl_admin_register(g_admin, "reload", adm_reload, NULL);
			ctl_admin_register(g_admin, "show-config", adm_show,
					   NULL);
			ctl_admin_register(g_admin, "block", adm_block, NULL);
			ctl_admin_register(g_admin, "allow", adm_block, NULL);
			ctl_admin_register(g_admin, "unblock", adm_block, NULL);
			ctl_admin_register(g_admin, "domain-add", adm_domain,
					   NULL);
			ctl_admin_register(g_admin, "domain-del", adm_domain,
					   NULL);
			ctl_admin_register(g_admin, "limit", adm_limit, NULL);
			ctl_admin_register(g_admin, "backend-down", adm_backend,
					   NULL);
			ctl_admin_register(g_admin, "backend-up", adm_backend,
					   NULL);
			ctl_admin_register(g_admin, "drain", adm_drain, NULL);
			printf("mxgate: admin socket %s\n", g_admin_path);
		}
	}
	if (g_metrics_spec) {
		char buf[128], *colon;
		struct ctl_metrics_conf mc = {0};

		snprintf(buf, sizeof(buf), "%s", g_metrics_spec);
		colon = strrchr(buf, ':');
		if (colon) {
			*colon = '\0';
			mc.address = buf;
			mc.port = (uint16_t)atoi(colon + 1);
			g_metrics = ctl_metrics_create(&mc, metrics_cb, NULL,
						       &err);
		} else {
			err = -EINVAL;
		}
		if (!g_metrics)
			fprintf(stderr, "mxgate: metrics %s: %s (running "
					"without them)\n", g_metrics_spec,
				strerror(-err));
		else
			printf("mxgate: metrics on http://%s:%u/metrics\n",
			       mc.address, ctl_metrics_port(g_metrics));
	}
	fflush(stdout);
}

/* Load the configuration (file or embedded default) and apply its stack
 * settings where the command line gave none. */
static int load_config(void)
{
	struct mxg_config *m = &g_cfg;
	struct mxg_conf *c = &g_conf;
	static char errs[16384];
	int r;

	if (g_config_path)
		r = ctl_config_load(g_config_path, m, errs, sizeof(errs));
	else
		r = ctl_config_default(m);
	if (r < 0) {
		fputs(errs, stderr);
		fprintf(stderr, "\nmxgate: %s: configuration invalid\n",
			g_config_path ? g_config_path : "<built-in>");
		return r;
	}
	if (g_maildir_override) {
		free(m->maildir.path);
		m->maildir.path = strdup(g_maildir_override);
	}
	if (!set_port && m->stack.port && m->stack.port[0]) {
		snprintf(c->port_spec, sizeof(c->port_spec), "%s",
			 m->stack.port);
		c->port_is_vdev = strncmp(c->port_spec, "net_", 4) == 0 ||
				  strncmp(c->port_spec, "eth_", 4) == 0;
	}
	if (!set_ip && m->stack.address) {
		c->ip = rte_cpu_to_be_32(m->stack.address);
		c->netmask = m->stack.prefix_len
				     ? rte_cpu_to_be_32(~0u << (32 - m->stack.prefix_len))
				     : 0;
	} else {
		m->stack.address = rte_be_to_cpu_32(c->ip);
	}
	if (!set_gw && m->stack.gateway)
		c->gateway = rte_cpu_to_be_32(m->stack.gateway);
	ip6_config_apply(m, &c->stack); /* stack.address6/gateway6 */
	if (!set_cores && m->stack.cores)
		c->n_cores = (uint16_t)RTE_MIN(m->stack.cores,
					       (uint32_t)MXG_MAX_CORES);
	if (!set_busy && m->stack.busy_poll)
		c->busy_poll = true;
	if (!set_maxconns && m->stack.max_conns)
		c->stack.max_conns = m->stack.max_conns;
	if (!set_backlog && m->stack.syn_backlog)
		c->stack.syn_backlog = m->stack.syn_backlog;
	c->svc.max_conns = c->stack.max_conns;
	if (!g_log_path && m->log.file && m->log.file[0])
		g_log_path = m->log.file;
	return 0;
}

/* DPDK memory the policy tables need. IPv4 lists are static tables in
 * anonymous mappings (dataplane/policy/acl.c), not DPDK memory; IPv6
 * entries live in rte_lpm6 (64 MiB + 13 KiB an entry at worst), twice
 * over because a reload builds the new snapshot while the old one still
 * serves; each core's table of pushed blocks is rte_lpm (64 MiB + 1.1 KiB
 * an entry, policy.block_table_size entries) and its rate table about
 * 144 bytes a bucket (policy.rate_table_size); plus room to grow. */
static uint64_t v6_mb(const struct ctl_cidr_list *l)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < l->n; i++)
		n += l->v[i].family == AF_INET6;
	return n ? 66 + (uint64_t)n * 13 / 1024 : 0;
}

static uint64_t policy_mem_mb(uint16_t cores)
{
	const struct mxg_config *m = &g_cfg;
	uint64_t mb = 0;

	if (!g_gateway)
		return 0;
	mb += v6_mb(&m->policy.allow) + v6_mb(&m->policy.deny) +
	      v6_mb(&m->policy.relay_networks);
	for (uint32_t i = 0; i < m->n_listeners; i++)
		mb += v6_mb(&m->listeners[i].networks) +
		      v6_mb(&m->listeners[i].allow) +
		      v6_mb(&m->listeners[i].deny);
	return 2 * mb + 256 +
	       (uint64_t)cores *
		       (64 + 2 + (m->policy.block_table_size * 1152ULL >> 20) +
			(m->policy.rate_table_size * 144ULL >> 20));
}

/* Write out what the dataplane cores logged (main lcore). */
static void drain_logs(void)
{
	void *lines[64];

	for (int k = 0; k < g_conf.n_cores; k++) {
		unsigned n;

		if (!g_cores[k].log_ring)
			continue;
		while ((n = rte_ring_dequeue_burst(g_cores[k].log_ring, lines,
						   64, NULL)) > 0) {
			for (unsigned i = 0; i < n; i++)
				fprintf(g_log, "%s\n", (char *)lines[i]);
			rte_mempool_put_bulk(g_log_pool, lines, n);
		}
	}
	fflush(g_log); /* also the main lcore's own lines */
}

/* The logger thread (DESIGN 8): drains every core's log ring every few
 * milliseconds, so a long reload compile on the main lcore never leaves
 * the rings to fill (a full ring drops and counts, never blocks a core).
 * It is the only consumer of the rings; stdio locks the FILE for the
 * main lcore's own lines. */
static volatile bool g_logger_stop;
static pthread_t g_logger;
static bool g_logger_running;

static void *logger_main(void *arg)
{
	struct timespec ts = {0, 5 * 1000 * 1000};

	(void)arg;
	while (!g_logger_stop) {
		drain_logs();
		nanosleep(&ts, NULL);
	}
	drain_logs();
	return NULL;
}

static int build_eal_args(int argc, char **argv, int first_extra,
			  char **eal, int max)
{
	const struct mxg_conf *c = &g_conf;
	static char lcores[256], prefix[64], mem[32];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool huge;
	int n = 0, off;

	if (ncpu < 1)
		ncpu = 1;
	/* Main lcore 0 on CPU 0; dataplane lcore k on CPU k % ncpu, so two
	 * dataplane lcores on a 2-CPU machine share the CPUs. */
	off = snprintf(lcores, sizeof(lcores), "0@0");
	{
		char list[128], *save = NULL, *tok;

		snprintf(list, sizeof(list), "%s", dp_cpus);
		tok = strtok_r(list, ",", &save);
		for (int k = 1; k <= c->n_cores; k++) {
			long cpu = k % ncpu;

			if (tok) {
				cpu = strtol(tok, NULL, 10);
				tok = strtok_r(NULL, ",", &save);
			}
			off += snprintf(lcores + off,
					sizeof(lcores) - (size_t)off,
					",%d@%ld", k, cpu);
		}
	}

	eal[n++] = argv[0];
	eal[n++] = "--lcores";
	eal[n++] = lcores;
	snprintf(prefix, sizeof(prefix), "mxgate-%d", getpid());
	eal[n++] = "--file-prefix";
	eal[n++] = prefix;
	huge = huge_mode == 1 || (huge_mode == 0 && machine_has_hugepages());
	if (!huge) {
		/* Room for the pool, DPDK's own needs and the policy
		 * tables (mapped, touched only when used). */
		uint64_t mb = (uint64_t)pool_size(c) * 3072 / (1 << 20) + 512 +
			      128ULL * c->n_cores + policy_mem_mb(c->n_cores);

		snprintf(mem, sizeof(mem), "%llu", (unsigned long long)mb);
		eal[n++] = "--no-huge";
		eal[n++] = "-m";
		eal[n++] = mem;
		eal[n++] = "--no-shconf";
	} else {
		eal[n++] = "--in-memory";
	}
	if (c->port_is_vdev) {
		eal[n++] = "--no-pci";
		eal[n++] = "--vdev";
	} else {
		eal[n++] = "-a";
	}
	eal[n++] = g_conf.port_spec;
	if (!c->verbose)
		eal[n++] = "--log-level=warning";
	for (int i = first_extra; i < argc && n < max - 1; i++)
		eal[n++] = argv[i];
	eal[n] = NULL;
	return n;
}

static int setup_cores(void)
{
	struct mxg_conf *c = &g_conf;
	int socket = (int)rte_socket_id();
	unsigned int lcore_id;
	int k = 0;

	for (int i = 0; i < MXG_MAX_CORES; i++)
		g_cores[i].wake_fd = -1;
	g_steer.n_cores = c->n_cores;
	g_steer.seed = (uint32_t)rte_rand();
	g_steer.eph_base = 32768;
	g_steer.eph_per_core = (uint16_t)((61000 - 32768) / c->n_cores);

	RTE_LCORE_FOREACH_WORKER(lcore_id)
	{
		struct lcore_ctx *lc = &g_cores[k];
		struct net_stack_conf sc = c->stack;
		char name[64];

		if (k >= c->n_cores)
			break;
		lc->index = (uint16_t)k;
		lc->lcore_id = lcore_id;
		lc->port_id = g_port.port_id;
		lc->rx_queue = k < g_port.n_queues ? k : -1;
		lc->tx_queue = k < g_port.n_queues ? k : -1;
		lc->steer = &g_steer;
		lc->all = g_cores;
		lc->conf = c;
		/* Other cores hand this one frames (steering, TX): they
		 * wake it from its idle sleep through this (lcore.c). */
		lc->wake_fd = -1;
		lc->sleeping = 0;
		if (c->n_cores > 1) {
			lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (lc->wake_fd < 0)
				fprintf(stderr, "mxgate: core %d: eventfd: %s "
						"(steered frames wait for its "
						"idle sleep to end)\n",
					k, strerror(errno));
		}

		sc.core_index = (uint16_t)k;
		sc.n_cores = c->n_cores;
		sc.mac = g_port.mac;
		sc.ip = c->ip;
		sc.netmask = c->netmask;
		sc.gateway = c->gateway;
		sc.pool = g_pool;
		sc.tx_offloads = g_port.tx_offloads;
		steer_eph_range(&g_steer, (uint16_t)k, &sc.eph_lo, &sc.eph_hi);
		lc->stack = net_stack_create(&sc);
		if (!lc->stack) {
			fprintf(stderr, "mxgate: core %d: stack: %s\n", k,
				rte_strerror(rte_errno));
			return -ENOMEM;
		}
		if (g_gateway) {
			char err[256];

			snprintf(name, sizeof(name), "log%d", k);
			lc->log_ring = rte_ring_create(name, 4096, socket,
						       RING_F_SP_ENQ |
							       RING_F_SC_DEQ);
			if (!lc->log_ring)
				return -ENOMEM;
			lc->gw = gw_core_create(&g_gw, (uint16_t)k, lc->stack,
						lc->log_ring, g_log_pool, err,
						sizeof(err));
			if (!lc->gw) {
				fprintf(stderr, "mxgate: core %d: gateway: "
						"%s\n", k, err);
				return -EINVAL;
			}
		}
		lc->svc = svc_create(&c->svc, (uint16_t)k, lc->stack, socket);
		if (!lc->svc) {
			fprintf(stderr, "mxgate: core %d: services failed "
					"(port clash?)\n", k);
			return -ENOMEM;
		}
		snprintf(name, sizeof(name), "steer%d", k);
		lc->steer_ring = rte_ring_create(name, 1024, socket,
						 RING_F_SC_DEQ);
		if (!lc->steer_ring)
			return -ENOMEM;
		if (lc->tx_queue >= 0 && g_port.n_queues < c->n_cores) {
			snprintf(name, sizeof(name), "txr%d", k);
			lc->tx_ring = rte_ring_create(name, 1024, socket,
						      RING_F_SC_DEQ);
			if (!lc->tx_ring)
				return -ENOMEM;
		}
		if (fault_enabled(&c->fault)) {
			lc->fault_rx = fault_create(&c->fault, 2 * k + 1,
						    g_pool, socket);
			lc->fault_tx = fault_create(&c->fault, 2 * k + 2,
						    g_pool, socket);
			if (!lc->fault_rx || !lc->fault_tx)
				return -ENOMEM;
		}
		k++;
	}
	if (k < c->n_cores) {
		fprintf(stderr, "mxgate: only %d worker lcores for %u cores\n",
			k, c->n_cores);
		return -EINVAL;
	}
	return 0;
}

static void drain_ring(struct rte_ring *r)
{
	void *objs[64];
	unsigned int n;

	if (!r)
		return;
	while ((n = rte_ring_dequeue_burst(r, objs, 64, NULL)) > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)objs, n);
}

/* Tear everything down; returns true when every mbuf is back in the
 * pool. Port first so the PMD returns its RX descriptors. */
static bool teardown(void)
{
	const struct mxg_conf *c = &g_conf;
	unsigned int avail;

	for (int k = 0; k < c->n_cores; k++) {
		struct lcore_ctx *lc = &g_cores[k];

		if (lc->stack)
			g_last_net[k] = *net_stack_stats(lc->stack);
		if (lc->svc)
			g_last_svc[k] = *svc_stats(lc->svc);
		if (lc->fault_rx)
			g_last_fault[k][0] = *fault_stats(lc->fault_rx);
		if (lc->fault_tx)
			g_last_fault[k][1] = *fault_stats(lc->fault_tx);
		if (lc->gw) {
			g_last_gw[k] = *gw_core_stats(lc->gw);
			gw_core_destroy(lc->gw);
			lc->gw = NULL;
		}
		svc_destroy(lc->svc);
		lc->svc = NULL;
		if (lc->stack)
			net_stack_destroy(lc->stack);
		lc->stack = NULL;
		drain_ring(lc->steer_ring);
		drain_ring(lc->tx_ring);
		if (lc->wake_fd >= 0)
			close(lc->wake_fd);
		lc->wake_fd = -1;
		fault_destroy(lc->fault_rx);
		fault_destroy(lc->fault_tx);
		lc->fault_rx = lc->fault_tx = NULL;
	}
	g_torn_down = true;
	port_teardown(&g_port);
	avail = rte_mempool_avail_count(g_pool);
	if (avail != g_pool->size) {
		fprintf(stderr, "mxgate: shutdown: %u of %u mbufs not "
				"returned\n", g_pool->size - avail,
			g_pool->size);
		return false;
	}
	printf("mxgate: clean shutdown: all %u mbufs returned\n", avail);
	return true;
}

int main(int argc, char **argv)
{
	struct mxg_conf *c = &g_conf;
	char *eal[96];
	int first_extra, neal, rc;
	uint64_t start, last_stats = 0;
	bool ok;
	int status = 0;

	/* IPv6 options (issue 16): taken out of argv before getopt sees
	 * them, applied after parse_args() has reset the configuration. */
	struct ip6_opts ip6;

	argc = ip6_opts_take(argc, argv, &ip6);
	if (argc < 0)
		return 2;
	first_extra = parse_args(argc, argv);
	if (first_extra < 0)
		return 2;
	ip6_opts_apply(&ip6, &c->stack, &c->svc);
	if (load_config() < 0)
		return 2;

	neal = build_eal_args(argc, argv, first_extra, eal, 96);
	{
		/* net_tap's rx trigger (a real-time signal) goes to the lcores
		 * only: every thread EAL and we create inherits this mask,
		 * lcore_main unblocks it. */
		sigset_t io;

		mxg_rt_signals(&io);
		pthread_sigmask(SIG_BLOCK, &io, NULL);
	}
	rc = rte_eal_init(neal, eal);
	if (rc < 0) {
		fprintf(stderr, "mxgate: DPDK EAL init failed: %s\n",
			rte_strerror(rte_errno));
		return 1;
	}
	clock_init();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_sighup);
	signal(SIGPIPE, SIG_IGN);

	g_pool = rte_pktmbuf_pool_create("mxg_mbufs", pool_size(c), 256, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!g_pool) {
		fprintf(stderr, "mxgate: mbuf pool of %u: %s\n",
			pool_size(c), rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	if (port_setup(c->n_cores, c->rx_desc, c->tx_desc, c->mtu, g_pool,
		       &g_port) < 0) {
		rte_eal_cleanup();
		return 1;
	}
	/* net_tap: no per-frame signal while the lcores poll (port.h). */
	(void)port_tap_arm(&g_port);
	if (g_gateway) {
		char err[256];

		struct mxg_snapshot *sn;

		if (mxg_snapshot_build(&g_cfg, g_generation, &sn, err,
				       sizeof(err)) < 0) {
			fprintf(stderr, "mxgate: policy: %s\n", err);
			mxg_snapshot_reaper_stop();
			rte_eal_cleanup();
			return 1;
		}
		if (gw_global_init(&g_gw, sn, g_max_sessions, c->n_cores, err,
				   sizeof(err)) < 0) {
			fprintf(stderr, "mxgate: gateway: %s\n", err);
			mxg_snapshot_free(sn);
			rte_eal_cleanup();
			return 1;
		}
		g_log_pool = rte_mempool_create("mxg_log", 8191, GW_LOG_LINE,
						64, 0, NULL, NULL, NULL, NULL,
						(int)rte_socket_id(), 0);
		if (!g_log_pool) {
			fprintf(stderr, "mxgate: log pool: %s\n",
				rte_strerror(rte_errno));
			rte_eal_cleanup();
			return 1;
		}
		g_log = g_log_path ? fopen(g_log_path, "a") : stderr;
		if (!g_log) {
			fprintf(stderr, "mxgate: log file %s: %s\n",
				g_log_path, strerror(errno));
			rte_eal_cleanup();
			return 1;
		}
	}
	if (setup_cores() < 0) {
		mxg_quit = 1;
		teardown();
		rte_eal_cleanup();
		return 1;
	}
	{
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
		printf("mxgate %s: port %u (%s, %u queue%s), %s, %u dataplane "
		       "core%s, %u mbufs, echo %u, discard %u\n",
		       MXG_VERSION, g_port.port_id, g_port.driver,
		       g_port.n_queues, g_port.n_queues == 1 ? "" : "s", ip,
		       c->n_cores, c->n_cores == 1 ? "" : "s", g_pool->size,
		       c->svc.echo_port, c->svc.discard_port);
		if (g_gateway) {
			const struct mxg_config *cf = &gw_current(&g_gw)->cfg;

			for (uint32_t i = 0; i < cf->n_listeners; i++)
				printf("mxgate: listener %s on %s:%u (%s)\n",
				       cf->listeners[i].name, ip,
				       cf->listeners[i].port,
				       ctl_role_name(cf->listeners[i].role));
			for (uint32_t i = 0; i < cf->n_pools; i++)
				printf("mxgate: next hop pool %s: %s\n",
				       cf->pools[i].name,
				       cf->pools[i].type == CTL_POOL_MAILDIR
					       ? cf->maildir.path
					       : "SMTP servers");
			printf("mxgate: policy: %u accepted domain%s, %u relay "
			       "network%s, %u rate limit%s\n",
			       cf->policy.n_domains,
			       cf->policy.n_domains == 1 ? "" : "s",
			       cf->policy.relay_networks.n,
			       cf->policy.relay_networks.n == 1 ? "" : "s",
			       cf->policy.n_rate_limits,
			       cf->policy.n_rate_limits == 1 ? "" : "s");
		}
		fflush(stdout);
	}

	for (int k = 0; k < c->n_cores; k++)
		rte_eal_remote_launch(lcore_main, &g_cores[k],
				      g_cores[k].lcore_id);

	start = clock_us();
	g_start_us = start;
	if (g_log && pthread_create(&g_logger, NULL, logger_main, NULL) == 0) {
		pthread_setname_np(g_logger, "mxg-logger");
		g_logger_running = true;
	}
	start_control();
	while (!mxg_quit) {
		uint64_t now = clock_us();
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (now - last_stats >= (uint64_t)c->stats_interval_ms * 1000) {
			write_stats(false, false);
			last_stats = now;
		}
		if (c->run_seconds &&
		    now - start >= (uint64_t)c->run_seconds * 1000000)
			break;
		if (g_exit_after_connect && c->svc.connect_port &&
		    svc_connect_done(g_cores[0].svc))
			break;
		if (g_log && !g_logger_running)
			drain_logs();
		if (g_metrics)
			ctl_metrics_poll(g_metrics, 0);
		if (g_admin)
			ctl_admin_poll(g_admin, 50);
		else
			nanosleep(&ts, NULL);
		if (g_gateway)
			control_tick(now);
	}
	mxg_quit = 1;
	rte_eal_mp_wait_lcore();
	ctl_admin_destroy(g_admin);
	g_admin = NULL;
	ctl_metrics_destroy(g_metrics);
	g_metrics = NULL;
	if (g_logger_running) {
		g_logger_stop = true;
		pthread_join(g_logger, NULL);
		g_logger_running = false;
	}
	if (g_log)
		drain_logs();

	if (c->svc.connect_port) {
		const struct svc_stats *s = svc_stats(g_cores[0].svc);

		printf("mxgate: connect check: %llu ok, %llu failed, %llu "
		       "bytes verified\n",
		       (unsigned long long)s->connect_ok,
		       (unsigned long long)s->connect_fail,
		       (unsigned long long)s->connect_bytes_verified);
		if (s->connect_ok != c->svc.connect_count)
			status = 4;
	}
	write_stats(false, false);
	ok = teardown();
	write_stats(true, ok);
	rte_mempool_free(g_pool);
	if (g_gateway) {
		gw_global_fini(&g_gw);
		if (g_log && g_log != stderr)
			fclose(g_log);
	}
	ctl_config_free(&g_cfg);
	rte_eal_cleanup();
	if (!ok)
		return 3;
	return status;
}
