/*
 * main.c - mxgate's entry point: setup and teardown only. In order:
 * options (options.c) -> configuration (control/config.c) -> EAL (with
 * hugepages when the machine has them, --no-huge otherwise) and the mbuf
 * pool sized from the limits -> the port -> the first policy snapshot ->
 * one stack, gateway, service set and ring set per dataplane lcore ->
 * launch the poll loops (lcore.c) -> the control loop (control/) until
 * SIGINT/SIGTERM, a drain or --run-seconds -> teardown with every mbuf
 * returned.
 *
 * Ownership: the main lcore owns struct mxgate: the configuration
 * (read-only once the dataplane starts) and the teardown. It never
 * touches a dataplane core's state while that core runs, except through
 * the control plane (counters, rings, RCU publish).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "control/config.h"
#include "control/control.h"
#include "control/snapshot.h"
#include "dataplane/app.h"
#include "dataplane/clock.h"
#include "dataplane/gateway.h"
#include "dataplane/ip6_opts.h"
#include "dataplane/options.h"
#include "dataplane/port.h"

/* Everything main sets up and tears down. */
struct mxgate {
	struct mxg_options options; /* command line merged with the file */
	struct ctl_config cfg;      /* the configuration file at start */
	struct lcore_ctx cores[MXG_MAX_CORES];
	struct steer_conf steer;
	struct port_info port;
	struct rte_mempool *pool;
	struct gw_global gw;
	struct worker_pool *workers;
	struct control ctl;
	bool invariant_failed; /* a backend connection unaccounted for */
};

static void on_signal(int sig)
{
	(void)sig;
	mxg_quit = 1;
}

static void on_sighup(int sig)
{
	(void)sig;
	control_request_reload();
}

static void on_sigusr1(int sig)
{
	(void)sig;
	control_request_reopen();
}

/* Load the configuration (file or embedded default) and apply its stack
 * settings where the command line gave none. */
static int load_config(struct mxgate *app)
{
	static char errs[16384];
	const char *path = app->options.config_path;
	int r;

	if (path)
		r = ctl_config_load(path, &app->cfg, errs, sizeof(errs));
	else
		r = ctl_config_default(&app->cfg);
	if (r < 0) {
		fputs(errs, stderr);
		fprintf(stderr, "\nmxgate: %s: configuration invalid\n",
			path ? path : "<built-in>");
		return r;
	}
	options_merge_config(&app->options, &app->cfg);
	/* stack.address6/gateway6, unless the command line set them */
	ip6_config_apply(&app->cfg, &app->options.stack);
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

/* mbufs: descriptors and rings of every core, plus full receive and send
 * buffers for the first 256 connections per core (a received segment
 * holds up to one MSS per mbuf, a send-buffer mbuf up to 2 KiB). Beyond
 * that connections share the pool; a dry pool shows up as
 * NET_DROP_NOMBUF plus TCP backoff, never as a crash. --mbufs overrides. */
static uint32_t pool_size(const struct mxg_options *c)
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

static uint64_t policy_mem_mb(const struct mxgate *app, uint16_t cores)
{
	const struct ctl_config *m = &app->cfg;
	uint64_t mb = 0;

	if (!app->options.gateway_enabled)
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


/* The CPU of each dataplane lcore k = 1..n_cores (out[k - 1]): main
 * lcore 0 on CPU 0; dataplane lcore k on CPU k % ncpu, so two dataplane
 * lcores on a 2-CPU machine share the CPUs, unless --dp-cpus names them. */
static void dataplane_cpus(const struct mxg_options *c, long ncpu, long *out)
{
	char list[128], *save = NULL, *tok;

	snprintf(list, sizeof(list), "%s", c->dp_cpus);
	tok = strtok_r(list, ",", &save);
	for (int k = 1; k <= c->n_cores; k++) {
		out[k - 1] = k % ncpu;
		if (tok) {
			out[k - 1] = strtol(tok, NULL, 10);
			tok = strtok_r(NULL, ",", &save);
		}
	}
}

static long online_cpus(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	return ncpu < 1 ? 1 : ncpu;
}

static int build_eal_args(const struct mxgate *app, int argc, char **argv,
			  int first_extra, char **eal, int max)
{
	const struct mxg_options *c = &app->options;
	static char lcores[256], prefix[64], mem[32];
	long dp[MXG_MAX_CORES];
	bool huge;
	int n = 0, off;

	dataplane_cpus(c, online_cpus(), dp);
	off = snprintf(lcores, sizeof(lcores), "0@0");
	for (int k = 1; k <= c->n_cores; k++)
		off += snprintf(lcores + off, sizeof(lcores) - (size_t)off,
				",%d@%ld", k, dp[k - 1]);

	eal[n++] = argv[0];
	eal[n++] = "--lcores";
	eal[n++] = lcores;
	snprintf(prefix, sizeof(prefix), "mxgate-%d", getpid());
	eal[n++] = "--file-prefix";
	eal[n++] = prefix;
	huge = c->huge_mode == 1 || (c->huge_mode == 0 && machine_has_hugepages());
	if (!huge) {
		/* Room for the pool, DPDK's own needs and the policy
		 * tables (mapped, touched only when used). */
		uint64_t mb = (uint64_t)pool_size(c) * 3072 / (1 << 20) + 512 +
			      128ULL * c->n_cores + policy_mem_mb(app, c->n_cores);

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
	eal[n++] = (char *)c->port_spec; /* EAL does not write it */
	if (!c->verbose)
		eal[n++] = "--log-level=warning";
	for (int i = first_extra; i < argc && n < max - 1; i++)
		eal[n++] = argv[i];
	eal[n] = NULL;
	return n;
}

static int setup_cores(struct mxgate *app)
{
	const struct mxg_options *c = &app->options;
	int socket = (int)rte_socket_id();
	unsigned int lcore_id;
	int k = 0;

	for (int i = 0; i < MXG_MAX_CORES; i++)
		app->cores[i].wake_fd = -1;
	{
		/* One worker pool for every core (dataplane/workers). */
		struct workers_config wc;
		int err = 0;
		long dp[MXG_MAX_CORES], ncpu = online_cpus();
		uint32_t tls_workers = 0;
		const char *why = "tls.workers";

		workers_config_defaults(&wc);
		wc.n_cores = c->n_cores;
		/* tls.workers: the handshakes' threads; 0 = the CPUs that
		 * run no dataplane lcore, at least 1 */
		if (c->gateway_enabled && app->gw.first)
			tls_workers = app->gw.first->cfg.tls.workers;
		dataplane_cpus(c, ncpu, dp);
		wc.threads = workers_threads_for(tls_workers, ncpu, dp,
						 c->n_cores);
		if (!tls_workers)
			why = "tls.workers 0: CPUs without a dataplane lcore";
		/* maildir.workers: threads per core for its fsyncs (they
		 * block), as when each core had its own writer threads */
		if (c->gateway_enabled && app->gw.first &&
		    app->gw.first->has_maildir &&
		    app->gw.maildir_workers * c->n_cores > wc.threads) {
			wc.threads = app->gw.maildir_workers * c->n_cores;
			why = "maildir.workers x cores";
		}
		app->workers = workers_create(&wc, &err);
		if (!app->workers) {
			fprintf(stderr, "mxgate: worker pool: %s\n",
				strerror(-err));
			return err;
		}
		printf("mxgate: worker pool: %u thread%s (%s; %ld CPUs, %u "
		       "dataplane)\n",
		       wc.threads, wc.threads == 1 ? "" : "s", why, ncpu,
		       c->n_cores);
		/* TLS handshakes, AUTH's credential checks and GSS steps run
		 * here, never on a core */
		app->gw.workers = app->workers;
	}
	app->steer.n_cores = c->n_cores;
	app->steer.seed = (uint32_t)rte_rand();
	app->steer.eph_base = 32768;
	app->steer.eph_per_core = (uint16_t)((61000 - 32768) / c->n_cores);

	RTE_LCORE_FOREACH_WORKER(lcore_id)
	{
		struct lcore_ctx *lc = &app->cores[k];
		struct net_stack_conf sc = c->stack;
		char name[64];

		if (k >= c->n_cores)
			break;
		lc->index = (uint16_t)k;
		lc->lcore_id = lcore_id;
		lc->port_id = app->port.port_id;
		lc->rx_queue = k < app->port.n_queues ? k : -1;
		lc->tx_queue = k < app->port.n_queues ? k : -1;
		lc->steer = &app->steer;
		lc->all = app->cores;
		lc->options = c;
		/* Other cores hand this one frames (steering, TX) and the
		 * workers hand it finished jobs: they wake it from its idle
		 * sleep through this (lcore.c), whatever the core count. */
		lc->sleeping = 0;
		lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (lc->wake_fd < 0)
			fprintf(stderr, "mxgate: core %d: eventfd: %s (steered "
					"frames and finished jobs wait for its "
					"idle sleep to end)\n",
				k, strerror(errno));
		lc->workers = app->workers;
		workers_attach_core(app->workers, (uint16_t)k, lc->wake_fd,
				    &lc->sleeping);

		sc.core_index = (uint16_t)k;
		sc.n_cores = c->n_cores;
		sc.mac = app->port.mac;
		sc.ip = c->ip;
		sc.netmask = c->netmask;
		sc.gateway = c->gateway;
		sc.pool = app->pool;
		sc.tx_offloads = app->port.tx_offloads;
		steer_eph_range(&app->steer, (uint16_t)k, &sc.eph_lo, &sc.eph_hi);
		lc->stack = net_stack_create(&sc);
		if (!lc->stack) {
			fprintf(stderr, "mxgate: core %d: stack: %s\n", k,
				rte_strerror(rte_errno));
			return -ENOMEM;
		}
		if (c->gateway_enabled) {
			char err[256];

			snprintf(name, sizeof(name), "log%d", k);
			lc->log_ring = rte_ring_create(name, 4096, socket,
						       RING_F_SP_ENQ |
							       RING_F_SC_DEQ);
			if (!lc->log_ring)
				return -ENOMEM;
			lc->gw = gw_core_create(&app->gw, (uint16_t)k, lc->stack,
						lc->log_ring, app->ctl.log_pool, err,
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
		if (lc->tx_queue >= 0 && app->port.n_queues < c->n_cores) {
			snprintf(name, sizeof(name), "txr%d", k);
			lc->tx_ring = rte_ring_create(name, 1024, socket,
						      RING_F_SC_DEQ);
			if (!lc->tx_ring)
				return -ENOMEM;
		}
		if (fault_enabled(&c->fault)) {
			lc->fault_rx = fault_create(&c->fault, 2 * k + 1,
						    app->pool, socket);
			lc->fault_tx = fault_create(&c->fault, 2 * k + 2,
						    app->pool, socket);
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
static bool teardown(struct mxgate *app)
{
	const struct mxg_options *c = &app->options;
	unsigned int avail;

	/* Jobs still in the pool go back to their owners (drop) while
	 * the owners exist; the cores have stopped. */
	workers_destroy(app->workers);
	app->workers = NULL;
	for (int k = 0; k < c->n_cores; k++) {
		struct lcore_ctx *lc = &app->cores[k];

		/* issue 11: a broken backend invariant fails the run
		 * (checked before the counters are kept, so the final
		 * stats file carries the count) */
		if (lc->gw && gw_core_check(lc->gw, true) > 0)
			app->invariant_failed = true;
		/* the final stats file still carries them */
		counters_keep(lc, &app->ctl.kept, (uint16_t)k);
		if (lc->gw) {
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
	app->ctl.kept.torn_down = true;
	port_teardown(&app->port);
	avail = rte_mempool_avail_count(app->pool);
	if (avail != app->pool->size) {
		fprintf(stderr, "mxgate: shutdown: %u of %u mbufs not "
				"returned\n", app->pool->size - avail,
			app->pool->size);
		return false;
	}
	printf("mxgate: clean shutdown: all %u mbufs returned\n", avail);
	return true;
}

/* The first policy snapshot, the gateway's shared state, the log pool
 * and the log file. 0, or -1 with a message printed. */
static int setup_gateway(struct mxgate *app)
{
	struct control *ctl = &app->ctl;
	struct mxg_snapshot *sn;
	char err[256];

	if (mxg_snapshot_build(&app->cfg, ctl->generation, &sn, err,
			       sizeof(err)) < 0) {
		fprintf(stderr, "mxgate: policy: %s\n", err);
		mxg_snapshot_reaper_stop();
		return -1;
	}
	if (gw_global_init(&app->gw, sn, app->options.max_sessions,
			   app->options.n_cores, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxgate: gateway: %s\n", err);
		mxg_snapshot_free(sn);
		return -1;
	}
	if (app->options.max_backends)
		app->gw.max_backends = app->options.max_backends;
	printf("mxgate: capacity: %u SMTP sessions per core (%s), %u backend "
	       "connections per core, %u TCP connections per core "
	       "(stack.max_conns)\n",
	       app->gw.max_sessions, app->options.capacity_why,
	       app->gw.max_backends, app->options.stack.max_conns);
	if (app->gw.max_sessions > app->options.stack.max_conns)
		printf("mxgate: warning: --max-sessions %u is more than "
		       "stack.max_conns %u: sessions beyond it are refused by "
		       "the stack (no 421)\n", app->gw.max_sessions,
		       app->options.stack.max_conns);
	ctl->gw = &app->gw;
	ctl->log_pool = rte_mempool_create("mxg_log", 8191, GW_LOG_LINE, 64, 0,
					   NULL, NULL, NULL, NULL,
					   (int)rte_socket_id(), 0);
	if (!ctl->log_pool) {
		fprintf(stderr, "mxgate: log pool: %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	ctl->log = app->options.log_path ? fopen(app->options.log_path, "a") : stderr;
	if (!ctl->log) {
		fprintf(stderr, "mxgate: log file %s: %s\n", app->options.log_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* What runs, on stdout (tests and operators read it). */
static void print_banner(const struct mxgate *app)
{
	const struct mxg_options *c = &app->options;
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
	printf("mxgate %s: port %u (%s, %u queue%s), %s, %u dataplane "
	       "core%s, %u mbufs, echo %u, discard %u\n",
	       MXG_VERSION, app->port.port_id, app->port.driver,
	       app->port.n_queues, app->port.n_queues == 1 ? "" : "s", ip,
	       c->n_cores, c->n_cores == 1 ? "" : "s", app->pool->size,
	       c->svc.echo_port, c->svc.discard_port);
	if (c->gateway_enabled) {
		const struct ctl_config *cf = &gw_current(&app->gw)->cfg;

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

/* The connect check's result; 4 when a check connection failed. */
static int connect_check_status(const struct mxgate *app)
{
	const struct mxg_options *c = &app->options;
	const struct svc_stats *s;

	if (!c->svc.connect_port)
		return 0;
	s = svc_stats(app->cores[0].svc);
	printf("mxgate: connect check: %llu ok, %llu failed, %llu bytes "
	       "verified\n",
	       (unsigned long long)s->connect_ok,
	       (unsigned long long)s->connect_fail,
	       (unsigned long long)s->connect_bytes_verified);
	return s->connect_ok != c->svc.connect_count ? 4 : 0;
}

int main(int argc, char **argv)
{
	static struct mxgate app; /* large; zeroed; main lcore's */
	struct mxg_options *c = &app.options;
	struct control *ctl = &app.ctl;
	char *eal[96];
	int first_extra, neal, status;
	uint64_t start;
	bool ok;

	/* IPv6 options (issue 16): taken out of argv before getopt sees
	 * them, applied after options_parse() has reset the configuration. */
	struct ip6_opts ip6;

	argc = ip6_opts_take(argc, argv, &ip6);
	if (argc < 0)
		return 2;
	first_extra = options_parse(c, argc, argv);
	if (first_extra < 0)
		return 2;
	ip6_opts_apply(&ip6, &c->stack, &c->svc);
	if (load_config(&app) < 0)
		return 2;

	neal = build_eal_args(&app, argc, argv, first_extra, eal, 96);
	{
		/* net_tap's rx trigger (a real-time signal) goes to the lcores
		 * only: every thread EAL and we create inherits this mask,
		 * lcore_main unblocks it. */
		sigset_t io;

		mxg_rt_signals(&io);
		pthread_sigmask(SIG_BLOCK, &io, NULL);
	}
	if (rte_eal_init(neal, eal) < 0) {
		fprintf(stderr, "mxgate: DPDK EAL init failed: %s\n",
			rte_strerror(rte_errno));
		return 1;
	}
	clock_init();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_sighup);
	signal(SIGUSR1, on_sigusr1);
	signal(SIGPIPE, SIG_IGN);

	app.pool = rte_pktmbuf_pool_create("mxg_mbufs", pool_size(c), 256, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (!app.pool) {
		fprintf(stderr, "mxgate: mbuf pool of %u: %s\n",
			pool_size(c), rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	if (port_setup(c->n_cores, c->rx_desc, c->tx_desc, c->mtu, app.pool,
		       &app.port) < 0) {
		rte_eal_cleanup();
		return 1;
	}
	/* net_tap: no per-frame signal while the lcores poll (port.h). */
	(void)port_tap_arm(&app.port);

	ctl->options = c;
	ctl->cores = app.cores;
	ctl->port = &app.port;
	ctl->pool = app.pool;
	ctl->generation = 1;
	if (c->gateway_enabled && setup_gateway(&app) < 0) {
		rte_eal_cleanup();
		return 1;
	}
	if (setup_cores(&app) < 0) {
		mxg_quit = 1;
		teardown(&app);
		rte_eal_cleanup();
		return 1;
	}
	print_banner(&app);

	for (int k = 0; k < c->n_cores; k++)
		rte_eal_remote_launch(lcore_main, &app.cores[k],
				      app.cores[k].lcore_id);

	start = clock_us();
	ctl->start_us = start;
	control_start(ctl);
	while (!mxg_quit) {
		uint64_t now = clock_us();

		if (c->run_seconds &&
		    now - start >= (uint64_t)c->run_seconds * 1000000)
			break;
		if (c->exit_after_connect && c->svc.connect_port &&
		    svc_connect_done(app.cores[0].svc))
			break;
		control_poll(ctl, now);
	}
	mxg_quit = 1;
	rte_eal_mp_wait_lcore();
	control_stop(ctl);

	status = connect_check_status(&app);
	control_write_stats(ctl, false, false);
	ok = teardown(&app);
	control_write_stats(ctl, true, ok);
	rte_mempool_free(app.pool);
	if (c->gateway_enabled) {
		gw_global_fini(&app.gw);
		if (ctl->log && ctl->log != stderr)
			fclose(ctl->log);
	}
	ctl_config_free(&app.cfg);
	rte_eal_cleanup();
	if (!ok)
		return 3;
	if (app.invariant_failed)
		return 5;
	return status;
}
