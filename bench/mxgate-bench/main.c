/*
 * main.c - mxgate-bench: an SMTP load generator and an SMTP sink on
 * mxgate's own userspace stack (dataplane/net), on one DPDK port of any
 * kind (net_memif, net_tap, net_af_packet, a NIC), polled by one lcore.
 *
 * Sets up EAL, the port (dataplane/port.c) and one stack, starts the
 * generator (--target) and/or the sink (--sink-port), then polls on the
 * main lcore: rx burst -> stack -> services -> tx burst. Prints a progress
 * line each second on stderr and one JSON document at the end (stdout or
 * --json FILE). Ends when the generator has finished (plus --linger-ms for
 * the sink), after --run-seconds, or on SIGINT/SIGTERM.
 *
 * One lcore per process: the stack is per core and this program does not
 * steer; run two processes for two cores. With --client-ips the generator
 * opens its sessions from several source addresses (one stack each on
 * the same port and lcore; frames are handed to the stack that owns their
 * destination address), so a server that steers by client address, such
 * as mxgate with several dataplane lcores, spreads them over its cores.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "bench.h"
#include "dataplane/clock.h"
#include "dataplane/net/net.h"
#include "dataplane/port.h"
#include "tls/tls_ctx.h"

#define BURST 32

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxgate-bench --port SPEC --ip A.B.C.D/LEN [options]\n"
		"  --port SPEC          DPDK vdev "
		"(net_memif0,role=client,socket=...,\n"
		"                       net_tap0,iface=..., "
		"net_af_packet0,iface=...)\n"
		"  --cpu N              CPU of the polling lcore (default 0)\n"
		"  --ip A/LEN           our address on the port\n"
		"  --gateway A          next router (default: every peer "
		"on-link)\n"
		"  --client-ips A/LEN   generator sessions from every address "
		"of\n"
		"                       this block (at most 64, and at most "
		"--sessions\n"
		"                       of them used), round robin (default: "
		"--ip alone)\n"
		"  --queues N           queue pairs on the port (1; a memif "
		"peer with\n"
		"                       N queues, e.g. mxgate with N cores, "
		"needs N):\n"
		"                       all polled; stack i sends on queue "
		"i mod N\n"
		"  --busy-poll          never sleep when idle (benchmarks)\n"
		"  --json FILE          final JSON document (default stdout)\n"
		"  --quiet              no progress lines\n"
		"  --run-seconds S      stop after S seconds whatever happens\n"
		"  --linger-ms MS       after the generator ends, keep serving "
		"(200)\n"
		"generator (on with --target):\n"
		"  --target IP:PORT     SMTP server to load\n"
		"  --sessions N         closed loop: sessions in flight (16)\n"
		"  --rate R             open loop: new sessions per second "
		"(cap --sessions)\n"
		"  --msgs-per-conn N    messages per session (1)\n"
		"  --rcpts N[-M]        recipients per message, uniform (1)\n"
		"  --size N[-M]         message bytes, uniform (2048)\n"
		"  --no-pipelining      one command at a time even when "
		"offered\n"
		"  --bdat               BDAT LAST instead of DATA when "
		"offered\n"
		"  --helo NAME          EHLO argument (mxgate-bench.test)\n"
		"  --from PAT --to PAT  patterns: {s} session, {m} message, "
		"{r} recipient\n"
		"  --count N            messages to send (--duration caps it, "
		"600), or\n"
		"  --duration S         measured seconds (10), after\n"
		"  --warmup S           seconds not measured (1)\n"
		"  --step-timeout-ms MS no progress for MS: abort, count "
		"(5000)\n"
		"  --drain-ms MS        at the end, time to finish sessions "
		"(5000)\n"
		"  --starttls           STARTTLS after EHLO, EHLO again, the "
		"mail over\n"
		"                       TLS (required: a server not offering "
		"it is a\n"
		"                       protocol error)\n"
		"  --tls-ca FILE        verify the server's chain against FILE "
		"(default:\n"
		"                       opportunistic, nothing checked)\n"
		"  --tls-name NAME      SNI and the name to verify (default "
		"with --tls-ca:\n"
		"                       the target's address)\n"
		"  --tls-resume         offer the last session's ticket, per "
		"source address\n"
		"sink (on with --sink-port):\n"
		"  --sink-port P        listen on P\n"
		"  --sink-max-conns N   contexts (1024)\n"
		"  --sink-4xx PCT --sink-5xx PCT   share of RCPTs refused\n"
		"  --sink-drop PCT      share of sessions reset at a random "
		"step\n"
		"  --sink-delay STEP=MS reply delay "
		"(connect|ehlo|mail|rcpt|data|dot)\n"
		"  --sink-no-pipelining --sink-chunking  EHLO keywords\n"
		"  --sink-check-digest  check every message's X-Bench digest\n"
		"  --sink-max-seq N     duplicate bitmap size (16777216)\n"
		"  --sink-tls-cert FILE --sink-tls-key FILE  offer STARTTLS "
		"with this\n"
		"                       certificate (PEM)\n");
}

static int parse_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	char *e;
	unsigned long a = strtoul(s, &e, 10), b = a;

	if (e == s)
		return -1;
	if (*e == '-') {
		const char *t = e + 1;

		b = strtoul(t, &e, 10);
		if (e == t)
			return -1;
	}
	if (*e || b < a || b > UINT32_MAX)
		return -1;
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return 0;
}

static int parse_step(const char *name)
{
	for (int s = 0; s < SMTPB_STEP_MAX; s++)
		if (!strcmp(name, smtpb_step_name(s)))
			return s;
	return -1;
}

struct opts {
	char port[256];
	int cpu;
	rte_be32_t ip, mask, gateway;
	rte_be32_t client_ip; /* first of --client-ips (0: --ip only) */
	uint32_t n_client_ips;
	uint16_t queues; /* queue pairs on the port (1..8) */
	bool busy, quiet;
	const char *json;
	double run_seconds;
	uint32_t linger_ms;
	bool gen_on, sink_on, duration_set;
	const char *tls_ca; /* --tls-ca: verify the server against it */
	const char *sink_cert, *sink_key; /* --sink-tls-cert/-key */
	struct gen_conf g;
	struct sink_conf s;
};

static int parse(int argc, char **argv, struct opts *o)
{
	enum {
		O_PORT = 256,
		O_CPU,
		O_IP,
		O_GW,
		O_CIPS,
		O_QUEUES,
		O_BUSY,
		O_JSON,
		O_QUIET,
		O_RUN,
		O_LINGER,
		O_TARGET,
		O_SESS,
		O_RATE,
		O_MPC,
		O_RCPTS,
		O_SIZE,
		O_NOPIPE,
		O_BDAT,
		O_HELO,
		O_FROM,
		O_TO,
		O_COUNT,
		O_DUR,
		O_WARM,
		O_STO,
		O_DRAIN,
		O_SPORT,
		O_SMAX,
		O_S4,
		O_S5,
		O_SDROP,
		O_SDELAY,
		O_SNOPIPE,
		O_SCHUNK,
		O_SDIGEST,
		O_SSEQ,
		O_STARTTLS,
		O_TLSCA,
		O_TLSNAME,
		O_SCERT,
		O_SKEY,
		O_RESUME,
		O_HELP
	};
	static const struct option lo[] = {
		{"port", 1, 0, O_PORT},
		{"cpu", 1, 0, O_CPU},
		{"ip", 1, 0, O_IP},
		{"gateway", 1, 0, O_GW},
		{"client-ips", 1, 0, O_CIPS},
		{"queues", 1, 0, O_QUEUES},
		{"busy-poll", 0, 0, O_BUSY},
		{"json", 1, 0, O_JSON},
		{"quiet", 0, 0, O_QUIET},
		{"run-seconds", 1, 0, O_RUN},
		{"linger-ms", 1, 0, O_LINGER},
		{"target", 1, 0, O_TARGET},
		{"sessions", 1, 0, O_SESS},
		{"rate", 1, 0, O_RATE},
		{"msgs-per-conn", 1, 0, O_MPC},
		{"rcpts", 1, 0, O_RCPTS},
		{"size", 1, 0, O_SIZE},
		{"no-pipelining", 0, 0, O_NOPIPE},
		{"bdat", 0, 0, O_BDAT},
		{"helo", 1, 0, O_HELO},
		{"from", 1, 0, O_FROM},
		{"to", 1, 0, O_TO},
		{"count", 1, 0, O_COUNT},
		{"duration", 1, 0, O_DUR},
		{"warmup", 1, 0, O_WARM},
		{"step-timeout-ms", 1, 0, O_STO},
		{"drain-ms", 1, 0, O_DRAIN},
		{"sink-port", 1, 0, O_SPORT},
		{"sink-max-conns", 1, 0, O_SMAX},
		{"sink-4xx", 1, 0, O_S4},
		{"sink-5xx", 1, 0, O_S5},
		{"sink-drop", 1, 0, O_SDROP},
		{"sink-delay", 1, 0, O_SDELAY},
		{"sink-no-pipelining", 0, 0, O_SNOPIPE},
		{"sink-chunking", 0, 0, O_SCHUNK},
		{"sink-check-digest", 0, 0, O_SDIGEST},
		{"sink-max-seq", 1, 0, O_SSEQ},
		{"starttls", 0, 0, O_STARTTLS},
		{"tls-ca", 1, 0, O_TLSCA},
		{"tls-name", 1, 0, O_TLSNAME},
		{"tls-resume", 0, 0, O_RESUME},
		{"sink-tls-cert", 1, 0, O_SCERT},
		{"sink-tls-key", 1, 0, O_SKEY},
		{"help", 0, 0, O_HELP},
		{0, 0, 0, 0}};
	int c;

	o->linger_ms = 200;
	o->queues = 1;
	o->g.sessions = 16;
	o->g.msgs_per_conn = 1;
	o->g.rcpts_lo = o->g.rcpts_hi = 1;
	o->g.size_lo = o->g.size_hi = 2048;
	o->g.duration_s = 10;
	o->g.warmup_s = 1;
	o->g.step_timeout_ms = 5000;
	o->g.drain_ms = 5000;
	o->g.smtp.helo = "mxgate-bench.test";
	o->g.smtp.from = "bench{s}@gen.mxgate-bench.test";
	o->g.smtp.to = "user{r}@sink.mxgate-bench.test";
	o->g.smtp.pipelining = true;
	o->s.max_conns = 1024;
	o->s.max_seq = 1u << 24;
	o->s.smtp.pipelining = true;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			snprintf(o->port, sizeof(o->port), "%s", optarg);
			break;
		case O_CPU:
			o->cpu = atoi(optarg);
			break;
		case O_IP: {
			char a[64], *sl;
			int len = 24;

			snprintf(a, sizeof(a), "%s", optarg);
			sl = strchr(a, '/');
			if (sl) {
				*sl = 0;
				len = atoi(sl + 1);
			}
			if (inet_pton(AF_INET, a, &o->ip) != 1 || len < 1 ||
			    len > 32)
				return -1;
			o->mask = htonl(len == 32 ? 0xffffffffu
						  : ~(0xffffffffu >> len));
			break;
		}
		case O_GW:
			if (inet_pton(AF_INET, optarg, &o->gateway) != 1)
				return -1;
			break;
		case O_QUEUES:
			o->queues = (uint16_t)atoi(optarg);
			break;
		case O_CIPS: {
			char a[64], *sl;
			int len;
			uint32_t first;

			snprintf(a, sizeof(a), "%s", optarg);
			sl = strchr(a, '/');
			if (!sl)
				return -1;
			*sl = 0;
			len = atoi(sl + 1);
			if (inet_pton(AF_INET, a, &o->client_ip) != 1 ||
			    len < 26 || len > 32)
				return -1; /* at most 64 addresses */
			first = ntohl(o->client_ip);
			first &= len == 32 ? 0xffffffffu
					   : ~(0xffffffffu >> len);
			o->client_ip = htonl(first);
			o->n_client_ips = 1u << (32 - len);
			break;
		}
		case O_BUSY:
			o->busy = true;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_QUIET:
			o->quiet = true;
			break;
		case O_RUN:
			o->run_seconds = atof(optarg);
			break;
		case O_LINGER:
			o->linger_ms = (uint32_t)atoi(optarg);
			break;
		case O_TARGET: {
			char a[64], *co;

			snprintf(a, sizeof(a), "%s", optarg);
			co = strchr(a, ':');
			if (!co)
				return -1;
			*co = 0;
			if (inet_pton(AF_INET, a, &o->g.ip) != 1)
				return -1;
			o->g.port = (uint16_t)atoi(co + 1);
			o->gen_on = true;
			break;
		}
		case O_SESS:
			o->g.sessions = (uint32_t)atoi(optarg);
			break;
		case O_RATE:
			o->g.rate = atof(optarg);
			break;
		case O_MPC:
			o->g.msgs_per_conn = (uint32_t)atoi(optarg);
			break;
		case O_RCPTS:
			if (parse_range(optarg, &o->g.rcpts_lo,
					&o->g.rcpts_hi) ||
			    o->g.rcpts_lo < 1 ||
			    o->g.rcpts_hi > SMTPB_MAX_RCPTS)
				return -1;
			break;
		case O_SIZE:
			if (parse_range(optarg, &o->g.size_lo, &o->g.size_hi))
				return -1;
			break;
		case O_NOPIPE:
			o->g.smtp.pipelining = false;
			break;
		case O_BDAT:
			o->g.smtp.bdat = true;
			break;
		case O_HELO:
			o->g.smtp.helo = optarg;
			break;
		case O_FROM:
			o->g.smtp.from = optarg;
			break;
		case O_TO:
			o->g.smtp.to = optarg;
			break;
		case O_COUNT:
			o->g.count = strtoull(optarg, NULL, 10);
			break;
		case O_DUR:
			o->g.duration_s = atof(optarg);
			o->duration_set = true;
			break;
		case O_WARM:
			o->g.warmup_s = atof(optarg);
			break;
		case O_STO:
			o->g.step_timeout_ms = (uint32_t)atoi(optarg);
			break;
		case O_DRAIN:
			o->g.drain_ms = (uint32_t)atoi(optarg);
			break;
		case O_SPORT:
			o->s.port = (uint16_t)atoi(optarg);
			o->sink_on = true;
			break;
		case O_SMAX:
			o->s.max_conns = (uint32_t)atoi(optarg);
			break;
		case O_S4:
			o->s.smtp.rcpt_4xx_pct = (uint32_t)atoi(optarg);
			break;
		case O_S5:
			o->s.smtp.rcpt_5xx_pct = (uint32_t)atoi(optarg);
			break;
		case O_SDROP:
			o->s.smtp.drop_pct = (uint32_t)atoi(optarg);
			break;
		case O_SDELAY: {
			char a[64], *eq;
			int st;

			snprintf(a, sizeof(a), "%s", optarg);
			eq = strchr(a, '=');
			if (!eq)
				return -1;
			*eq = 0;
			st = parse_step(a);
			if (st < 0)
				return -1;
			o->s.smtp.delay_us[st] = (uint32_t)atoi(eq + 1) * 1000;
			break;
		}
		case O_SNOPIPE:
			o->s.smtp.pipelining = false;
			break;
		case O_SCHUNK:
			o->s.smtp.chunking = true;
			break;
		case O_SDIGEST:
			o->s.smtp.check_digest = true;
			break;
		case O_SSEQ:
			o->s.max_seq = strtoull(optarg, NULL, 10);
			break;
		case O_STARTTLS:
			o->g.smtp.starttls = true;
			break;
		case O_TLSCA:
			o->tls_ca = optarg;
			break;
		case O_TLSNAME:
			o->g.tls_name = optarg;
			break;
		case O_RESUME:
			o->g.tls_resume = true;
			break;
		case O_SCERT:
			o->sink_cert = optarg;
			o->s.smtp.starttls = true;
			break;
		case O_SKEY:
			o->sink_key = optarg;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	/* With --count, --duration caps the run (default 600 s), so a
	 * server that fails every session cannot keep it going forever. */
	if (o->g.count && !o->duration_set)
		o->g.duration_s = 600;
	if (!o->port[0] || !o->ip || (!o->gen_on && !o->sink_on) ||
	    o->g.sessions < 1 || o->s.max_conns < 1 ||
	    o->s.smtp.rcpt_4xx_pct + o->s.smtp.rcpt_5xx_pct > 100 ||
	    o->s.smtp.drop_pct > 100 || o->n_client_ips > GEN_MAX_SRC ||
	    o->queues < 1 || o->queues > 8 ||
	    (o->gen_on && !o->g.count && o->g.duration_s <= 0))
		return -1;
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

void hist_json(FILE *f, const struct hist *h)
{
	fprintf(f,
		"{\"count\": %" PRIu64 ", \"p50_us\": %" PRIu64
		", \"p99_us\": %" PRIu64 ", \"p999_us\": %" PRIu64
		", \"max_us\": %" PRIu64 "}",
		h->count, hist_quantile(h, 0.5), hist_quantile(h, 0.99),
		hist_quantile(h, 0.999), h->max);
}

static void counts_json(FILE *f, const struct gen_counts *c, double secs)
{
	static const char *const cls[] = {"0xx", "1xx", "2xx",
					  "3xx", "4xx", "5xx"};
	uint64_t timeouts = 0, resets = 0, closed = 0;

	fprintf(f,
		"{\"seconds\": %.3f, \"sessions_started\": %" PRIu64
		", \"sessions_done\": %" PRIu64 ", \"msgs_sent\": %" PRIu64
		", \"msgs_accepted\": %" PRIu64 ", \"msgs_refused\": %" PRIu64
		", \"rcpts_ok\": %" PRIu64 ", \"bytes\": %" PRIu64
		", \"msgs_per_s\": %.1f, \"conns_per_s\": %.1f"
		", \"bytes_per_s\": %.1f, \"tls_handshakes\": %" PRIu64
		", \"tls_resumed\": %" PRIu64 ",\n  \"replies\": {",
		secs, c->sessions_started, c->sessions_done, c->msgs_sent,
		c->msgs_accepted, c->msgs_refused, c->rcpts_ok, c->bytes,
		secs > 0 ? (double)c->msgs_accepted / secs : 0,
		secs > 0 ? (double)c->sessions_done / secs : 0,
		secs > 0 ? (double)c->bytes / secs : 0, c->tls_ok,
		c->tls_resumed);
	for (int s = 0; s < SMTPB_STEP_MAX; s++) {
		bool first = true;

		fprintf(f, "%s\"%s\": {", s ? ", " : "", smtpb_step_name(s));
		for (int k = 0; k < 6; k++) {
			if (!c->replies[s][k])
				continue;
			fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ",
				cls[k], c->replies[s][k]);
			first = false;
		}
		fprintf(f, "}");
		timeouts += c->timeouts[s];
		resets += c->resets[s];
		closed += c->closed[s];
	}
	fprintf(f, "},\n  \"latency\": {");
	for (int s = 0; s < SMTPB_STEP_MAX; s++) {
		fprintf(f, "%s\"%s\": ", s ? ", " : "", smtpb_step_name(s));
		hist_json(f, &c->lat[s]);
	}
	fprintf(f,
		"},\n  \"bad_peer\": {\"timeouts\": %" PRIu64
		", \"resets\": %" PRIu64 ", \"closed_early\": %" PRIu64
		", \"refused\": %" PRIu64 ", \"protocol_errors\": %" PRIu64
		", \"connect_failed\": %" PRIu64 ", \"late_starts\": %" PRIu64,
		timeouts, resets, closed, c->refused, c->protocol_errors,
		c->no_conn, c->late_starts);
	fprintf(f, ", \"tls_failed\": %" PRIu64, c->tls_failed);
	for (int r = 1; r < TLS_FAIL_COUNT; r++)
		if (c->tls_fail[r])
			fprintf(f, ", \"tls_failed_%s\": %" PRIu64,
				tls_fail_name(r), c->tls_fail[r]);
	for (int s = 0; s < SMTPB_STEP_MAX; s++) {
		if (c->timeouts[s])
			fprintf(f, ", \"timeout_at_%s\": %" PRIu64,
				smtpb_step_name(s), c->timeouts[s]);
		if (c->resets[s])
			fprintf(f, ", \"reset_at_%s\": %" PRIu64,
				smtpb_step_name(s), c->resets[s]);
		if (c->closed[s])
			fprintf(f, ", \"closed_at_%s\": %" PRIu64,
				smtpb_step_name(s), c->closed[s]);
	}
	fprintf(f, "}}");
}

static void report(FILE *f, const struct opts *o, struct gen *g, struct sink *k,
		   const struct net_stats *ns, double wall, double cpu,
		   uint64_t now, uint64_t tx_dropped)
{
	fprintf(f,
		" \"tool\": \"mxgate-bench\", \"port\": \"%s\", "
		"\"wall_seconds\": %.3f, \"cpu_seconds\": %.3f,\n",
		o->port, wall, cpu);
	if (g) {
		uint64_t t0, t1;
		const struct gen_counts *tot = gen_total(g);

		gen_window(g, now, &t0, &t1);
		fprintf(f,
			" \"generator\": {\"sessions\": %u, "
			"\"source_addresses\": %u, \"rate\": %.1f, "
			"\"msgs_per_conn\": %u, \"rcpts\": [%u, %u], "
			"\"size\": [%u, %u], \"pipelining\": %s, \"bdat\": %s, "
			"\"starttls\": %s, \"warmup_s\": %.3f, \"nonce\": \"%016" PRIx64 "\",\n"
			"  \"measured\": ",
			o->g.sessions,
			o->n_client_ips ? RTE_MIN(o->n_client_ips,
						  o->g.sessions)
					: 1u,
			o->g.rate,
			o->g.msgs_per_conn,
			o->g.rcpts_lo, o->g.rcpts_hi, o->g.size_lo,
			o->g.size_hi, o->g.smtp.pipelining ? "true" : "false",
			o->g.smtp.bdat ? "true" : "false",
			o->g.smtp.starttls ? "true" : "false", o->g.warmup_s,
			o->g.smtp.nonce);
		counts_json(f, gen_measured(g),
			    t1 > t0 ? (double)(t1 - t0) / 1e6 : 0);
		fprintf(f, ",\n  \"total\": ");
		counts_json(f, tot, wall);
		fprintf(f, ",\n  \"cpu_ns_per_msg\": %.1f},\n",
			tot->msgs_accepted
				? cpu * 1e9 / (double)tot->msgs_accepted
				: 0);
	}
	if (k) {
		const struct sink_counts *s = sink_counts(k);

		fprintf(f,
			" \"sink\": {\"conns\": %" PRIu64 ", \"msgs\": %" PRIu64
			", \"rcpts\": %" PRIu64 ", \"bytes\": %" PRIu64
			", \"digest_bad\": %" PRIu64
			", \"duplicates\": %" PRIu64 ", \"no_bench\": %" PRIu64
			", \"foreign_nonce\": %" PRIu64
			", \"seq_out_of_range\": %" PRIu64
			", \"drops\": %" PRIu64 ", \"refused_full\": %" PRIu64
			", \"resets\": %" PRIu64 ", \"peer_addrs\": %" PRIu64
			", \"tls_handshakes\": %" PRIu64
			", \"tls_failed\": %" PRIu64
			", \"nonce\": \"%016" PRIx64 "\"},\n",
			s->conns, s->msgs, s->rcpts, s->bytes, s->digest_bad,
			s->duplicates, s->no_bench, s->foreign_nonce,
			s->seq_out_of_range, s->drops, s->refused_full,
			s->resets, s->peer_addrs, s->tls_handshakes,
			s->tls_failed, s->nonce);
	}
	if (g && k) {
		const struct sink_counts *s = sink_counts(k);
		const struct gen_counts *t = gen_total(g);

		fprintf(f, " \"exactly_once\": %s,\n",
			s->msgs == t->msgs_accepted && !s->duplicates &&
					!s->digest_bad && !s->no_bench &&
					!s->foreign_nonce
				? "true"
				: "false");
	}
	fprintf(f,
		" \"net\": {\"rx_frames\": %" PRIu64 ", \"tx_frames\": %" PRIu64
		", \"retransmits\": %" PRIu64 ", \"rst_in\": %" PRIu64
		", \"rst_out\": %" PRIu64 ", \"connected\": %" PRIu64
		", \"accepted\": %" PRIu64 ", \"timeouts\": %" PRIu64
		", \"port_tx_dropped\": %" PRIu64 "}}\n",
		ns->rx_frames, ns->tx_frames, ns->tcp_retransmits,
		ns->tcp_rst_in, ns->tcp_rst_out, ns->tcp_connected,
		ns->tcp_accepted, ns->tcp_timeouts, tx_dropped);
}

static void progress(const struct opts *o, struct gen *g, struct sink *k,
		     uint64_t now, uint64_t t_start)
{
	static uint64_t last_t;
	double dt = last_t ? (double)(now - last_t) / 1e6 : 1;
	char gl[200] = "", sl[160] = "";

	(void)o;
	if (g) {
		static uint64_t last_msgs;
		const struct gen_counts *c = gen_total(g);
		uint64_t bad = c->refused + c->protocol_errors + c->no_conn +
			       c->tls_failed;

		for (int s = 0; s < SMTPB_STEP_MAX; s++)
			bad += c->timeouts[s] + c->resets[s] + c->closed[s];
		snprintf(gl, sizeof(gl),
			 " gen: %.0f msg/s, %" PRIu64 " accepted, %" PRIu64
			 " refused, %u live, %" PRIu64 " bad-peer events",
			 (double)(c->msgs_accepted - last_msgs) / dt,
			 c->msgs_accepted, c->msgs_refused, gen_live(g), bad);
		last_msgs = c->msgs_accepted;
	}
	if (k) {
		static uint64_t last_sink;
		const struct sink_counts *s = sink_counts(k);

		snprintf(sl, sizeof(sl),
			 " sink: %.0f msg/s, %" PRIu64 " msgs, %" PRIu64
			 " bad digests, %" PRIu64 " duplicates",
			 (double)(s->msgs - last_sink) / dt, s->msgs,
			 s->digest_bad, s->duplicates);
		last_sink = s->msgs;
	}
	last_t = now;
	fprintf(stderr, "[%5.1fs]%s%s\n", (double)(now - t_start) / 1e6, gl,
		sl);
}

/* Several stacks on one port (--client-ips): hand each frame to the stack
 * of its destination address (IPv4 destination, ARP target); anything
 * else goes to stk[0], the --ip stack. */
static void demux_input(struct net_stack **stk, uint32_t n_stk,
			const struct opts *o, struct rte_mbuf **pkts,
			uint16_t n, uint64_t now)
{
	struct rte_mbuf *by[1 + GEN_MAX_SRC][BURST];
	uint16_t cnt[1 + GEN_MAX_SRC] = {0};
	uint32_t first = ntohl(o->client_ip);

	for (uint16_t i = 0; i < n; i++) {
		const struct rte_ether_hdr *eh =
			rte_pktmbuf_mtod(pkts[i], const struct rte_ether_hdr *);
		uint16_t type = rte_be_to_cpu_16(eh->ether_type);
		uint32_t dst = 0, k = 0;

		if (type == RTE_ETHER_TYPE_IPV4 &&
		    pkts[i]->data_len >= sizeof(*eh) + 20) {
			const struct rte_ipv4_hdr *ip =
				(const struct rte_ipv4_hdr *)(eh + 1);

			dst = ntohl(ip->dst_addr);
		} else if (type == RTE_ETHER_TYPE_ARP &&
			   pkts[i]->data_len >= sizeof(*eh) + 28) {
			const struct rte_arp_hdr *ah =
				(const struct rte_arp_hdr *)(eh + 1);

			dst = ntohl(ah->arp_data.arp_tip);
		}
		if (dst - first < n_stk - 1)
			k = 1 + (dst - first);
		by[k][cnt[k]++] = pkts[i];
	}
	for (uint32_t k = 0; k < n_stk; k++)
		if (cnt[k])
			net_stack_input(stk[k], by[k], cnt[k], now);
}

/* The counters the report prints, summed over the stacks. */
static void stats_sum(struct net_stack **stk, uint32_t n_stk,
		      struct net_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (uint32_t i = 0; i < n_stk; i++) {
		const struct net_stats *s = net_stack_stats(stk[i]);

		sum->rx_frames += s->rx_frames;
		sum->tx_frames += s->tx_frames;
		sum->tcp_retransmits += s->tcp_retransmits;
		sum->tcp_rst_in += s->tcp_rst_in;
		sum->tcp_rst_out += s->tcp_rst_out;
		sum->tcp_connected += s->tcp_connected;
		sum->tcp_accepted += s->tcp_accepted;
		sum->tcp_timeouts += s->tcp_timeouts;
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	char lcores[32], prefix[64];
	char *eal[16];
	int ne = 0;
	struct port_info pi;
	struct rte_mempool *pool;
	struct net_stack_conf sc;
	struct net_stack *stk[1 + GEN_MAX_SRC]; /* [0]: --ip; then clients */
	struct net_stack *st;
	uint32_t n_stk = 1;
	struct net_stats ns_sum;
	struct gen *g = NULL;
	struct tls_client_ctx *tls = NULL;
	struct tls_server_ctx *stls = NULL;
	static char tgt_name[INET_ADDRSTRLEN];
	struct sink *k = NULL;
	uint64_t t_start, last_progress, gen_end = 0;
	double cpu0;
	uint32_t pool_n;
	uint64_t loops = 0, idle_loops = 0, idle_tsc = 0, tsc_start;
	uint64_t tx_dropped = 0; /* the port's TX ring stayed full */
	int rc;

	memset(&o, 0, sizeof(o));
	if (parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		o.g.smtp.nonce = ((uint64_t)ts.tv_sec << 20) ^
				 (uint64_t)ts.tv_nsec ^
				 ((uint64_t)getpid() << 40);
	}
	snprintf(lcores, sizeof(lcores), "0@%d", o.cpu);
	snprintf(prefix, sizeof(prefix), "mxgate-bench-%d", getpid());
	eal[ne++] = argv[0];
	eal[ne++] = "--lcores";
	eal[ne++] = lcores;
	eal[ne++] = "--file-prefix";
	eal[ne++] = prefix;
	eal[ne++] = "--no-huge";
	eal[ne++] = "-m";
	eal[ne++] = "1024";
	eal[ne++] = "--no-shconf";
	eal[ne++] = "--no-pci";
	eal[ne++] = "--vdev";
	eal[ne++] = o.port;
	eal[ne++] = "--log-level=warning";
	eal[ne] = NULL;
	if (rte_eal_init(ne, eal) < 0) {
		fprintf(stderr, "mxgate-bench: EAL init failed\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	clock_init();

	/* mbufs: each connection may hold its send and receive buffers */
	pool_n = 16384 + (o.g.sessions + (o.sink_on ? 256 : 0)) * 96;
	if (pool_n > (1u << 20))
		pool_n = 1u << 20;
	pool = rte_pktmbuf_pool_create("bench_pool", pool_n, 256, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (!pool) {
		fprintf(stderr, "mxgate-bench: mbuf pool of %u: %s\n", pool_n,
			rte_strerror(rte_errno));
		return 1;
	}
	rc = port_setup(o.queues, 1024, 1024, 0, pool, &pi);
	if (rc < 0)
		return 1;
	if (pi.n_queues != o.queues) {
		fprintf(stderr, "mxgate-bench: the port has %u queue pairs, "
				"not %u\n", pi.n_queues, o.queues);
		return 1;
	}
	port_tap_arm(&pi);

	net_stack_conf_defaults(&sc);
	sc.mac = pi.mac;
	sc.ip = o.ip;
	sc.netmask = o.mask;
	sc.gateway = o.gateway;
	sc.pool = pool;
	sc.tx_offloads = pi.tx_offloads;
	sc.max_conns = o.g.sessions + o.s.max_conns + 64;
	sc.max_timewait = 65536;
	sc.timewait_ms = 1000;
	sc.eph_lo = 10000;
	sc.eph_hi = 65000;
	st = net_stack_create(&sc);
	if (!st) {
		fprintf(stderr, "mxgate-bench: stack: %s\n",
			rte_strerror(rte_errno));
		return 1;
	}
	stk[0] = st;
	/* One more stack per client address: same port, MAC and lcore,
	 * its own address, TCBs and ARP cache; the generator's sessions
	 * are spread over them (sessions / n each, plus slack). */
	for (uint32_t i = 0; i < o.n_client_ips; i++) {
		rte_be32_t a = htonl(ntohl(o.client_ip) + i);

		if (a == o.ip) {
			fprintf(stderr, "mxgate-bench: --client-ips must not "
					"hold --ip\n");
			return 2;
		}
		sc.ip = a;
		sc.max_conns = o.g.sessions / o.n_client_ips + 64;
		sc.max_timewait = 65536 / o.n_client_ips + 1024;
		stk[n_stk] = net_stack_create(&sc);
		if (!stk[n_stk]) {
			fprintf(stderr, "mxgate-bench: stack %u: %s\n", i,
				rte_strerror(rte_errno));
			return 1;
		}
		n_stk++;
	}
	/* The peer must be there before the first SYN: a memif whose other
	 * side has not connected yet drops frames (the SYN would wait for
	 * its retransmission, a time-out in a short run). */
	for (int i = 0; i < 1000 && !quit; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(pi.port_id, &link) == 0 &&
		    link.link_status == RTE_ETH_LINK_UP)
			break;
		usleep(10000);
	}
	t_start = clock_us();
	if (o.sink_on && o.sink_cert) {
		struct tls_cert_spec cs = {.cert = o.sink_cert,
					   .key = o.sink_key ? o.sink_key
							     : o.sink_cert};
		struct tls_server_spec ss = {.name = "mxgate-bench-sink",
					     .certs = &cs, .n_certs = 1};
		char err[256];
		int bad;

		if (tls_global_init() < 0) {
			fprintf(stderr, "mxgate-bench: OpenSSL init failed\n");
			return 1;
		}
		stls = tls_server_ctx_new(&ss, NULL, &bad, err, sizeof(err));
		if (!stls) {
			fprintf(stderr, "mxgate-bench: sink TLS: %s\n", err);
			return 1;
		}
		o.s.tls = stls;
	}
	if (o.sink_on) {
		k = sink_create(&o.s, st, t_start);
		if (!k) {
			fprintf(stderr,
				"mxgate-bench: sink on port %u failed\n",
				o.s.port);
			return 1;
		}
	}
	if (o.gen_on && o.g.smtp.starttls) {
		struct tls_client_spec ts = {
			.name = "mxgate-bench",
			.verify = o.tls_ca != NULL,
			.ca_file = o.tls_ca,
		};
		char err[256], tgt[INET_ADDRSTRLEN];

		if (tls_global_init() < 0) {
			fprintf(stderr, "mxgate-bench: OpenSSL init failed\n");
			return 1;
		}
		tls = tls_client_ctx_new(&ts, err, sizeof(err));
		if (!tls) {
			fprintf(stderr, "mxgate-bench: TLS: %s\n", err);
			return 1;
		}
		o.g.tls = tls;
		if (o.tls_ca && !o.g.tls_name) {
			inet_ntop(AF_INET, &o.g.ip, tgt, sizeof(tgt));
			o.g.tls_name = tgt_name;
			snprintf(tgt_name, sizeof(tgt_name), "%s", tgt);
		}
	}
	if (o.gen_on) {
		/* Let ARP and the peer settle: the generator's first SYN
		 * would otherwise wait for its retransmission. */
		g = n_stk > 1 ? gen_create(&o.g, stk + 1, n_stk - 1, t_start)
			      : gen_create(&o.g, stk, 1, t_start);
		if (!g) {
			fprintf(stderr, "mxgate-bench: generator: no memory\n");
			return 1;
		}
	}
	fprintf(stderr, "mxgate-bench: port %s (%s), cpu %d%s%s\n", o.port,
		pi.driver, o.cpu, g ? ", generator" : "", k ? ", sink" : "");
	cpu0 = cpu_seconds();
	tsc_start = rte_rdtsc();
	last_progress = t_start;
	while (!quit) {
		struct rte_mbuf *pkts[BURST];
		uint64_t now = clock_us();
		uint64_t tsc = rte_rdtsc();
		uint16_t n, work = 0;

		port_rx_kick();
		for (uint16_t q = 0; q < o.queues; q++) {
			n = rte_eth_rx_burst(pi.port_id, q, pkts, BURST);
			if (n && n_stk == 1)
				net_stack_input(st, pkts, n, now);
			else if (n)
				demux_input(stk, n_stk, &o, pkts, n, now);
			work += n;
		}
		for (uint32_t i = 0; i < n_stk; i++)
			net_stack_poll(stk[i], now);
		if (g && !gen_end && !gen_poll(g, now))
			gen_end = now;
		if (k)
			sink_poll(k, now);
		for (uint32_t i = 0; i < n_stk;) {
			uint16_t t = net_stack_take_tx(stk[i], pkts, BURST);
			uint16_t s = 0;

			if (!t) {
				i++;
				continue;
			}
			work += t;
			for (int tries = 0; s < t && tries < 4; tries++)
				s += rte_eth_tx_burst(pi.port_id,
						      (uint16_t)(i % o.queues),
						      pkts + s,
						      t - s);
			if (s < t) {
				tx_dropped += t - s;
				rte_pktmbuf_free_bulk(pkts + s, t - s);
			}
		}
		if (!o.quiet && now - last_progress >= 1000000) {
			progress(&o, g, k, now, t_start);
			last_progress = now;
		}
		if (gen_end && now - gen_end >= o.linger_ms * 1000ULL)
			break;
		if (o.run_seconds > 0 &&
		    now - t_start >= (uint64_t)(o.run_seconds * 1e6))
			break;
		/* Iterations that found nothing to do: with --busy-poll
		 * their share of the time tells whether this side waited on
		 * its peer (the peer is the limit) or never did. */
		loops++;
		if (!work) {
			idle_loops++;
			idle_tsc += rte_rdtsc() - tsc;
			if (!o.busy)
				port_idle_wait(0, -1, 20);
		}
	}
	{
		uint64_t now = clock_us();
		double wall = (double)(now - t_start) / 1e6;
		double cpu = cpu_seconds() - cpu0;
		FILE *f = stdout;

		if (!o.quiet)
			progress(&o, g, k, now, t_start);
		if (o.json) {
			f = fopen(o.json, "w");
			if (!f) {
				perror(o.json);
				f = stdout;
			}
		}
		fprintf(f,
			"{\"poll\": {\"loops\": %" PRIu64
			", \"idle_loops\": %" PRIu64
			", \"idle_time_share\": %.4f},\n",
			loops, idle_loops,
			(double)idle_tsc / (double)(rte_rdtsc() - tsc_start));
		stats_sum(stk, n_stk, &ns_sum);
		report(f, &o, g, k, &ns_sum, wall, cpu, now, tx_dropped);
		if (f != stdout)
			fclose(f);
	}
	for (uint32_t i = 0; i < n_stk; i++)
		net_stack_destroy(stk[i]); /* no callback runs after this */
	gen_destroy(g);
	tls_client_ctx_free(tls);
	sink_destroy(k);
	tls_server_ctx_free(stls);
	port_teardown(&pi);
	rte_eal_cleanup();
	return 0;
}
