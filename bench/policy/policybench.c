/*
 * policybench.c - single-core cost of mxgate's policy path (DESIGN 6),
 * in nanoseconds per operation, and the memory its tables take.
 *
 *  (a) per connection: pol_block lookup, the global deny table (1,000,000
 *      random IPv4 prefixes, /8../32 but mostly /16../32), a per-listener
 *      ACL, pol_conns_inc plus the pol_conns_dec of a connection opened
 *      4,096 connections earlier, and one pol_rl_take (600/min, burst
 *      60) keyed by the client address in a 65,536-bucket table. Every
 *      lookup is made for every connection (the cost of a client that is
 *      let in; the JSON says which tables would have refused). Two client
 *      mixes: "hot" (50,000 addresses that keep coming back: the bucket
 *      table holds them all) and "flood" (every connection from a new
 *      random address: every take inserts and evicts).
 *  (b) per recipient: pol_addr_parse, pol_rcpt_decide against 100,000
 *      accepted domains, pol_addrlist_match against a 10,000-entry
 *      restriction list, and a pol_rl_take keyed by the sender domain
 *      (20,000 sender domains, 65,536 buckets).
 *  (c) pol_acl_memory, pol_domains_memory, pol_rl_memory,
 *      pol_conns_memory, pol_block_memory, and the time to build each
 *      table: the deny table as a snapshot is built, all at once
 *      (pol_acl_build4), and
 *      for comparison --adds (65,536) such prefixes added one by one
 *      (pol_acl_add4, the runtime path over rte_lpm).
 *  Each step is also timed alone over the same inputs.
 *
 * Timing: CLOCK_MONOTONIC around batches of 64 operations; p50 and p99
 * are of the per-operation time within a batch, the mean is over the
 * whole run (ns_mean_p99: the mean of the batches up to the 99th
 * percentile, i.e. without the batches a preempted vCPU stretched); each
 * measurement runs three times (once only after 75 s, so that a busy
 * machine still finishes) and the run with the lowest mean is reported.
 * Inputs are generated before the clock starts; the rate-limit clock is
 * simulated (5 us between operations).
 *
 * usage: policybench [--cidrs N] [--ops N] [--adds N] [--mem MB] > out.json
 * (JSON on stdout, progress on stderr). Runs the EAL on the first CPU of
 * its affinity mask, without hugepages. Benchmark program, not the data
 * path: it allocates, uses stdio and the clock freely.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"

#define BATCH 64

static volatile uint64_t sink;

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Repetitions are skipped once the run is past this point, so that a
 * machine shared with busy tenants still finishes in bounded time. */
static uint64_t soft_deadline = UINT64_MAX;
static bool late(void)
{
	return now_ns() > soft_deadline;
}

static void die(const char *what)
{
	fprintf(stderr, "policybench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- timing ---------------------------------------------------------- */

struct result {
	const char *name;
	double mean, p50, p99, tmean; /* tmean: mean of batches <= p99 */
	uint64_t ops;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Runs body for i in [0, n) in batches, REPS times; fills *r with the
 * repetition of the lowest mean (the one least disturbed by the other
 * tenants of a shared machine). */
#define REPS 3
#define TIMED(r, label, n, body)                                               \
	do {                                                                   \
		uint64_t nb_ = (n) / BATCH, t_all_ = 0, best_ = UINT64_MAX;    \
		double *per_ = malloc(sizeof(double) * nb_);                   \
		double *keep_ = malloc(sizeof(double) * nb_);                  \
		for (int rep_ = 0; rep_ < REPS && (rep_ == 0 || !late());      \
		     rep_++) {                                                 \
			t_all_ = 0;                                            \
			for (uint64_t b_ = 0; b_ < nb_; b_++) {                \
				uint64_t t0_ = now_ns(), t1_;                  \
				for (uint64_t i = b_ * BATCH;                  \
				     i < (b_ + 1) * BATCH; i++) {              \
					body;                                  \
				}                                              \
				t1_ = now_ns();                                \
				t_all_ += t1_ - t0_;                           \
				per_[b_] = (double)(t1_ - t0_) / BATCH;        \
			}                                                      \
			if (t_all_ < best_) {                                  \
				best_ = t_all_;                                \
				memcpy(keep_, per_, sizeof(double) * nb_);     \
			}                                                      \
		}                                                              \
		qsort(keep_, nb_, sizeof(double), cmp_double);                 \
		(r)->name = (label);                                           \
		(r)->ops = nb_ * BATCH;                                        \
		(r)->mean = (double)best_ / (double)(nb_ * BATCH);             \
		(r)->p50 = keep_[nb_ / 2];                                     \
		(r)->p99 = keep_[nb_ * 99 / 100];                              \
		(r)->tmean = 0;                                                \
		for (uint64_t k_ = 0; k_ <= nb_ * 99 / 100; k_++)              \
			(r)->tmean += keep_[k_];                               \
		(r)->tmean /= (double)(nb_ * 99 / 100 + 1);                    \
		free(per_);                                                    \
		free(keep_);                                                   \
		fprintf(stderr,                                                \
			"  %-24s mean %7.1f (%7.1f) ns  p50 %7.1f  p99 "       \
			"%7.1f\n",                                             \
			(r)->name, (r)->mean, (r)->tmean, (r)->p50, (r)->p99); \
	} while (0)

static void json_result(const struct result *r, const char *end)
{
	printf("      \"%s\": {\"ns_mean\": %.1f, \"ns_mean_p99\": %.1f, "
	       "\"ns_p50\": %.1f, \"ns_p99\": %.1f, \"ops\": %" PRIu64 "}%s\n",
	       r->name, r->mean, r->tmean, r->p50, r->p99, r->ops, end);
}

/* ---- (a) the connection path ----------------------------------------- */

/* A depth: mostly /16../32 (uniform), one in 1,000 /8../15. */
static uint8_t rnd_depth(void)
{
	if (rnd() % 1000 == 0)
		return (uint8_t)(8 + rnd() % 8);
	return (uint8_t)(16 + rnd() % 17);
}

static uint32_t mask4(uint8_t depth)
{
	return depth == 0 ? 0 : ~0u << (32 - depth);
}

/* A set of 64-bit keys (open addressing; key 0 is never used: depth is
 * at least 8) to draw distinct prefixes. Setup only. */
static uint64_t *u64set;
static uint64_t u64mask;

static int u64set_init(uint64_t n)
{
	uint64_t sz = 16;

	while (sz < 2 * n)
		sz <<= 1;
	u64set = calloc(sz, sizeof(*u64set));
	u64mask = sz - 1;
	return u64set ? 0 : -1;
}

static bool u64set_add(uint64_t k)
{
	uint64_t i = (k * 0x9e3779b97f4a7c15ull) >> 20 & u64mask;

	while (u64set[i] != 0) {
		if (u64set[i] == k)
			return false;
		i = (i + 1) & u64mask;
	}
	u64set[i] = k;
	return true;
}

static void u64set_free(void)
{
	free(u64set);
	u64set = NULL;
}

struct conn_env {
	struct pol_acl *global, *listener;
	struct pol_block *block;
	struct pol_conns *conns;
	struct pol_rl *rl;
	uint64_t rule;
	/* connections open: a ring of the last CONC addresses counted */
	uint32_t ring[4096];
	uint8_t counted[4096];
};

#define CONC 4096
/* why conn_path() would refuse a connection (it asks every table) */
#define REFUSED_BLOCK 1u
#define REFUSED_GLOBAL 2u
#define REFUSED_LISTENER 4u
#define REFUSED_CONNS 8u
#define REFUSED_RL 16u
#define REFUSED_N 5
static const char *const refused_name[REFUSED_N] = {
	"block", "global_acl", "listener_acl", "conns", "rate_limit"};
#define NOW0 1000000000ull /* simulated clock, us */
#define CONN_GAP_US 5	   /* 200,000 connections/s */

/* The simulated clock: every operation is CONN_GAP_US after the last, in
 * every phase and repetition, so buckets never see time go back. */
static uint64_t tick;
static inline uint64_t clk(void)
{
	return NOW0 + tick++ * CONN_GAP_US;
}

static inline uint32_t conn_path(struct conn_env *e, uint32_t ip)
{
	uint32_t slot = (uint32_t)(tick % CONC), v = 0, deny = 0;
	uint64_t now = clk();

	if (pol_block_lookup4(e->block, ip, now) == POL_ACL_DENY)
		deny |= REFUSED_BLOCK;
	if (pol_acl_lookup4(e->global, ip, &v) == 0 && v == POL_ACL_DENY)
		deny |= REFUSED_GLOBAL;
	if (pol_acl_lookup4(e->listener, ip, &v) == 0 && v == POL_ACL_DENY)
		deny |= REFUSED_LISTENER;
	if (e->counted[slot])
		pol_conns_dec(e->conns, e->ring[slot]);
	e->ring[slot] = ip;
	e->counted[slot] = pol_conns_inc(e->conns, ip, 20);
	if (!e->counted[slot])
		deny |= REFUSED_CONNS;
	if (!pol_rl_take(e->rl, e->rule, &ip, sizeof(ip), 600, 60, 1, now))
		deny |= REFUSED_RL;
	return deny;
}

static void conn_reset(struct conn_env *e)
{
	for (uint32_t s = 0; s < CONC; s++)
		if (e->counted[s])
			pol_conns_dec(e->conns, e->ring[s]);
	memset(e->counted, 0, sizeof(e->counted));
}

/* ---- (b) the recipient path ------------------------------------------ */

static const char *const tlds[] = {
	"com",	  "net",     "org", "de",   "co.uk", "fr", "nl",    "it",
	"com.au", "example", "io",  "info", "ch",    "se", "co.jp", "com.br",
};

/* a random domain name into buf (NUL-terminated), its length */
static size_t rnd_domain(char *buf, int upper)
{
	size_t n = 0;
	int labels = 1 + (int)(rnd() % 3);

	for (int l = 0; l < labels; l++) {
		size_t len = 3 + rnd() % 10;

		for (size_t k = 0; k < len; k++) {
			char c = (char)('a' + rnd() % 26);

			buf[n++] = upper && rnd() % 4 == 0 ? (char)(c - 32) : c;
		}
		if (rnd() % 5 == 0)
			buf[n++] = '-', buf[n++] = (char)('0' + rnd() % 10);
		buf[n++] = '.';
	}
	n += (size_t)sprintf(buf + n, "%s", tlds[rnd() % 16]);
	return n;
}

struct rcpt_case {
	char addr[128];
	uint16_t len;
	uint32_t sender; /* index of the sender domain */
};

struct rcpt_env {
	struct pol_domains *accepted;
	struct pol_addrlist *list;
	struct pol_rl *rl;
	uint64_t rule;
	char (*senders)[64];
	uint8_t *sender_len;
};

static inline uint32_t rcpt_path(struct rcpt_env *e, const struct rcpt_case *c)
{
	struct pol_addr a;
	int type = 0;
	uint32_t r;

	pol_addr_parse(c->addr, c->len, &a);
	r = (uint32_t)pol_rcpt_decide(&a, e->accepted, NULL, false, &type);
	r += pol_addrlist_match(e->list, &a);
	r += pol_rl_take(e->rl, e->rule, e->senders[c->sender],
			 e->sender_len[c->sender], 600, 100, 1, clk());
	return r;
}

/* ---- main ------------------------------------------------------------ */

int main(int argc, char **argv)
{
	uint32_t nadd = 65536, ncidr = 1000000, ndom = 100000, nlist = 10000,
		 nsend = 20000;
	uint64_t nops = 1000000;
	unsigned mem_mb = 4096;
	char lcore[16], mem[16];
	cpu_set_t cs;
	int cpu = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--cidrs") == 0)
			ncidr = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--ops") == 0)
			nops = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--mem") == 0)
			mem_mb = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--adds") == 0)
			nadd = (uint32_t)strtoul(argv[i + 1], NULL, 10);
	}
	nops -= nops % BATCH;
	if (nops < BATCH || ncidr == 0) {
		fprintf(stderr, "usage: policybench [--cidrs N] [--ops N] "
				"[--adds N] [--mem MB]\n");
		return 2;
	}
	if (sched_getaffinity(0, sizeof(cs), &cs) == 0)
		for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &cs); cpu++)
			;
	snprintf(lcore, sizeof(lcore), "%d", cpu);
	snprintf(mem, sizeof(mem), "%u", mem_mb);
	{
		char *eal[] = {argv[0],	      "--no-huge", "--no-pci",
			       "--no-shconf", "-m",	   mem,
			       "-l",	      lcore,	   "--log-level=error",
			       NULL};

		if (rte_eal_init(9, eal) < 0) {
			fprintf(stderr, "policybench: rte_eal_init failed\n");
			return 1;
		}
	}
	soft_deadline = now_ns() + 75 * 1000000000ull;
	fprintf(stderr,
		"policybench: cpu %d, %u CIDRs, %u domains, %" PRIu64
		" operations per measurement\n",
		cpu, ncidr, ndom, nops);

	/* ---- build the connection-path tables ---- */
	struct conn_env *ce = calloc(1, sizeof(*ce));
	uint32_t *hot = malloc(sizeof(uint32_t) * nops);
	uint32_t *flood = malloc(sizeof(uint32_t) * nops);
	uint32_t pop[50000];
	uint64_t t0, t1, enospc = 0, tries = 0;
	double acl_build_s, dom_build_s, add_s;
	uint32_t add_n;
	size_t add_mem;

	if (!ce || !hot || !flood)
		die("malloc");
	/* snapshot tables: created empty, filled by pol_acl_build4 */
	ce->global = pol_acl_create(0, 0, SOCKET_ID_ANY);
	ce->listener = pol_acl_create(0, 0, SOCKET_ID_ANY);
	ce->block = pol_block_create(4096, SOCKET_ID_ANY);
	ce->conns = pol_conns_create(65536, SOCKET_ID_ANY);
	ce->rl = pol_rl_create(65536, SOCKET_ID_ANY);
	if (!ce->global || !ce->listener || !ce->block || !ce->conns || !ce->rl)
		die("table create");
	{
		const char *r = "conn_rate client_ip 600/min burst 60";

		ce->rule = pol_hash64(r, strlen(r), 0);
	}
	{
		/* The snapshot path: all prefixes at once (pol_acl_build4).
		 * ncidr distinct prefixes, generated before the clock. */
		struct pol_acl_entry4 *e = malloc(sizeof(*e) * ncidr);
		struct pol_acl_entry4 le[41];
		uint32_t n = 0;

		if (!e || u64set_init(2 * ncidr) < 0)
			die("malloc");
		while (n < ncidr) {
			uint8_t d = rnd_depth();
			uint32_t ip = (uint32_t)rnd() & mask4(d);

			if (u64set_add(((uint64_t)ip << 8) | d))
				e[n++] = (struct pol_acl_entry4){
					.ip = ip,
					.depth = d,
					.value = POL_ACL_DENY};
		}
		u64set_free();
		t0 = now_ns();
		if (pol_acl_build4(ce->global, e, n) < 0)
			die("pol_acl_build4 (global)");
		t1 = now_ns();
		acl_build_s = (double)(t1 - t0) / 1e9;
		free(e);

		/* a listener ACL: deny a few networks, allow the rest */
		le[0] = (struct pol_acl_entry4){
			.ip = 0, .depth = 0, .value = POL_ACL_ALLOW};
		for (int k = 1; k < 41; k++)
			le[k] = (struct pol_acl_entry4){
				.ip = (uint32_t)rnd(),
				.depth = (uint8_t)(8 + rnd() % 25),
				.value = POL_ACL_DENY};
		if (pol_acl_build4(ce->listener, le, 41) < 0)
			die("pol_acl_build4 (listener)");
	}
	fprintf(stderr, "global ACL: %u prefixes built in %.2f s, %zu bytes\n",
		pol_acl_count(ce->global), acl_build_s,
		pol_acl_memory(ce->global));
	{
		/* for comparison: the same kind of prefixes one by one
		 * (pol_acl_add4, the runtime-push path over rte_lpm) */
		struct pol_acl *inc = pol_acl_create(nadd, 0, SOCKET_ID_ANY);

		if (!inc)
			die("pol_acl_create");
		t0 = now_ns();
		while (pol_acl_count(inc) < nadd) {
			uint8_t d = rnd_depth();

			tries++;
			if (pol_acl_add4(inc, (uint32_t)rnd(), d,
					 POL_ACL_DENY) == -ENOSPC &&
			    ++enospc > 1000)
				break;
		}
		t1 = now_ns();
		add_s = (double)(t1 - t0) / 1e9;
		add_n = pol_acl_count(inc);
		add_mem = pol_acl_memory(inc);
		pol_acl_free(inc);
		fprintf(stderr,
			"incremental ACL: %u prefixes added one by one in "
			"%.2f s (%" PRIu64 " adds, %" PRIu64 " -ENOSPC)\n",
			add_n, add_s, tries, enospc);
	}
	/* runtime blocks: 1,000 pushed addresses and networks, some expiring */
	for (int k = 0; k < 1000; k++)
		pol_block_add4(ce->block, (uint32_t)rnd(),
			       (uint8_t)(16 + rnd() % 17),
			       k % 10 ? POL_ACL_DENY : POL_ACL_ALLOW,
			       k % 3 ? 0 : NOW0 + rnd() % 20000000);
	for (uint32_t k = 0; k < 50000; k++)
		pop[k] = (uint32_t)rnd();
	for (uint64_t k = 0; k < nops; k++) {
		hot[k] = pop[rnd() % 50000];
		flood[k] = (uint32_t)rnd();
	}

	/* ---- (a) ---- */
	struct result ra[8];
	uint64_t denied = 0, why[REFUSED_N] = {0}, hot_ops = 0;
	uint32_t v;

	fprintf(stderr, "(a) connection path\n");
	/* warm: the buckets and counters of the hot population exist */
	for (uint64_t k = 0; k < nops; k++)
		sink += conn_path(ce, hot[k]);
	conn_reset(ce);
	TIMED(&ra[0], "full_hot", nops, {
		uint32_t d = conn_path(ce, hot[i]);

		hot_ops++;
		denied += d != 0;
		for (int k = 0; k < REFUSED_N; k++)
			why[k] += (d >> k) & 1;
	});
	conn_reset(ce);
	TIMED(&ra[1], "full_flood", nops, sink += conn_path(ce, flood[i]));
	conn_reset(ce);
	TIMED(&ra[2], "block_lookup", nops,
	      sink += pol_block_lookup4(ce->block, flood[i], clk()));
	TIMED(&ra[3], "global_acl_lookup", nops,
	      sink += pol_acl_lookup4(ce->global, flood[i], &v) + v);
	TIMED(&ra[4], "listener_acl_lookup", nops,
	      sink += pol_acl_lookup4(ce->listener, flood[i], &v) + v);
	TIMED(&ra[5], "conns_inc_dec", nops, {
		uint32_t s = (uint32_t)(i % CONC);

		if (ce->counted[s])
			pol_conns_dec(ce->conns, ce->ring[s]);
		ce->ring[s] = hot[i];
		ce->counted[s] = pol_conns_inc(ce->conns, hot[i], 20);
	});
	conn_reset(ce);
	TIMED(&ra[6], "rl_take_hot", nops,
	      sink +=
	      pol_rl_take(ce->rl, ce->rule, &hot[i], 4, 600, 60, 1, clk()));
	TIMED(&ra[7], "rl_take_flood", nops,
	      sink +=
	      pol_rl_take(ce->rl, ce->rule, &flood[i], 4, 600, 60, 1, clk()));
	fprintf(stderr, "  hot run: %.1f %% of connections would be refused:",
		100.0 * (double)denied / (double)hot_ops);
	for (int k = 0; k < REFUSED_N; k++)
		fprintf(stderr, " %s %.1f %%", refused_name[k],
			100.0 * (double)why[k] / (double)hot_ops);
	fprintf(stderr, "\n");

	/* ---- build the recipient-path tables ---- */
	struct rcpt_env re;
	char(*dom)[64] = malloc(sizeof(*dom) * ndom);
	uint8_t *domsub = malloc(ndom);
	uint64_t nrc = 1 << 16;
	struct rcpt_case *rc = malloc(sizeof(*rc) * nrc);
	uint32_t dom_refused = 0;

	re.senders = malloc(sizeof(*re.senders) * nsend);
	re.sender_len = malloc(nsend);
	if (!dom || !domsub || !rc || !re.senders || !re.sender_len)
		die("malloc");
	re.accepted = pol_domains_create(ndom);
	re.list = pol_addrlist_create(nlist);
	re.rl = pol_rl_create(65536, SOCKET_ID_ANY);
	if (!re.accepted || !re.list || !re.rl)
		die("table create");
	{
		const char *r = "rcpt_rate sender_domain 600/min burst 100";

		re.rule = pol_hash64(r, strlen(r), 0);
	}
	for (uint32_t k = 0; k < ndom; k++) {
		rnd_domain(dom[k], 0);
		domsub[k] = rnd() % 10 == 0;
	}
	t0 = now_ns();
	for (uint32_t k = 0; k < ndom; k++)
		dom_refused +=
			pol_domains_add(re.accepted, dom[k], strlen(dom[k]),
					domsub[k],
					k % 20 ? POL_DOM_AUTHORITATIVE
					       : POL_DOM_INTERNAL_RELAY) != 0;
	t1 = now_ns();
	dom_build_s = (double)(t1 - t0) / 1e9;
	fprintf(stderr,
		"accepted domains: %u in %.3f s (%u refused), "
		"%zu bytes\n",
		pol_domains_count(re.accepted), dom_build_s, dom_refused,
		pol_domains_memory(re.accepted));
	for (uint32_t k = 0; k < nlist; k++) {
		char e[96];
		const char *d = dom[rnd() % ndom];

		switch (k % 3) {
		case 0:
			snprintf(e, sizeof(e), "user%u@%s", k, d);
			break;
		case 1:
			snprintf(e, sizeof(e), "%s", d);
			break;
		default:
			snprintf(e, sizeof(e), ".%s", d);
		}
		pol_addrlist_add(re.list, e);
	}
	for (uint32_t k = 0; k < nsend; k++)
		re.sender_len[k] = (uint8_t)rnd_domain(re.senders[k], 0);
	{
		uint32_t bad = 0, kind[4] = {0};

		for (uint64_t k = 0; k < nrc; k++) {
			struct rcpt_case *c = &rc[k];
			uint32_t x = (uint32_t)(rnd() % 100), d;
			char other[64];
			int n;

			d = (uint32_t)(rnd() % ndom);
			if (x < 80) { /* plain local recipient, mixed case */
				n = snprintf(c->addr, sizeof(c->addr),
					     "first.last%u@%s", x, dom[d]);
				for (int j = n - 3; j > n - 8 && j > 0; j--)
					if (c->addr[j] >= 'a' &&
					    c->addr[j] <= 'z')
						c->addr[j] -= 32;
				kind[0]++;
			} else if (x < 85) { /* below an accepted domain */
				n = snprintf(c->addr, sizeof(c->addr),
					     "info@mail.%s", dom[d]);
				kind[1]++;
			} else if (x < 95) { /* relay attempt */
				rnd_domain(other, 1);
				n = snprintf(c->addr, sizeof(c->addr),
					     "someone@%s", other);
				kind[2]++;
			} else { /* routing tricks */
				rnd_domain(other, 0);
				n = snprintf(c->addr, sizeof(c->addr),
					     x % 2 ? "u%%%s@%s" : "\"u@%s\"@%s",
					     other, dom[d]);
				kind[3]++;
			}
			if (n < 0 || n >= (int)sizeof(c->addr))
				n = (int)sizeof(c->addr) - 1, bad++;
			c->len = (uint16_t)n;
			c->sender = (uint32_t)(rnd() % nsend);
		}
		fprintf(stderr,
			"recipients: %u local, %u below an accepted "
			"domain, %u relay attempts, %u tricks (%u "
			"cut)\n",
			kind[0], kind[1], kind[2], kind[3], bad);
	}

	/* ---- (b) ---- */
	struct result rb[5];
	uint32_t decided[3] = {0};
	struct pol_addr pa;
	const uint64_t rmask = nrc - 1;

	fprintf(stderr, "(b) recipient path\n");
	for (uint64_t k = 0; k < nrc; k++) {
		int type;

		pol_addr_parse(rc[k].addr, rc[k].len, &pa);
		decided[pol_rcpt_decide(&pa, re.accepted, NULL, false,
					&type)]++;
	}
	for (uint64_t k = 0; k < nops; k++)
		sink += rcpt_path(&re, &rc[k & rmask]);
	TIMED(&rb[0], "full", nops, sink += rcpt_path(&re, &rc[i & rmask]));
	TIMED(&rb[1], "addr_parse", nops,
	      sink += (uint64_t)pol_addr_parse(rc[i & rmask].addr,
					       rc[i & rmask].len, &pa) +
		      pa.flags);
	{
		/* decide and match on parsed addresses, one per case */
		struct pol_addr *pre = malloc(sizeof(*pre) * nrc);

		if (!pre)
			die("malloc");
		for (uint32_t k = 0; k < nrc; k++)
			pol_addr_parse(rc[k].addr, rc[k].len, &pre[k]);
		TIMED(&rb[2], "rcpt_decide", nops, {
			int type;

			sink += pol_rcpt_decide(&pre[i & rmask], re.accepted,
						NULL, false, &type);
		});
		TIMED(&rb[3], "addrlist_match", nops,
		      sink += pol_addrlist_match(re.list, &pre[i & rmask]));
		free(pre);
	}
	TIMED(&rb[4], "rl_take_sender_domain", nops, {
		const struct rcpt_case *c = &rc[i & rmask];

		sink += pol_rl_take(re.rl, re.rule, re.senders[c->sender],
				    re.sender_len[c->sender], 600, 100, 1,
				    clk());
	});
	fprintf(stderr,
		"  decisions over the %" PRIu64 " cases: %u local, "
		"%u relay, %u denied\n",
		nrc, decided[POL_RCPT_LOCAL], decided[POL_RCPT_RELAY],
		decided[POL_RCPT_DENIED]);

	/* ---- JSON ---- */
	printf("{\n  \"benchmark\": \"policy\",\n  \"single_core\": true,\n");
	printf("  \"timing\": \"ns per operation: mean over the run, mean "
	       "without the slowest 1%% of batches, p50/p99 of %d-operation "
	       "batches; best of %d runs\",\n",
	       BATCH, REPS);
	printf("  \"connection_path\": {\n");
	printf("    \"global_acl_cidrs\": %u,\n    \"listener_acl_prefixes\": "
	       "41,\n    \"block_entries\": %u,\n    \"hot_clients\": 50000,\n"
	       "    \"rl_buckets\": 65536,\n    \"conns_capacity\": 65536,\n"
	       "    \"concurrent_connections\": %d,\n",
	       pol_acl_count(ce->global), pol_block_count(ce->block), CONC);
	printf("    \"refused_fraction_hot\": %.4f,\n",
	       (double)denied / (double)hot_ops);
	printf("    \"refused_by_hot\": {");
	for (int k = 0; k < REFUSED_N; k++)
		printf("\"%s\": %.4f%s", refused_name[k],
		       (double)why[k] / (double)hot_ops,
		       k < REFUSED_N - 1 ? ", " : "");
	printf("},\n");
	printf("    \"ns\": {\n");
	for (int k = 0; k < 8; k++)
		json_result(&ra[k], k < 7 ? "," : "");
	printf("    }\n  },\n");
	printf("  \"recipient_path\": {\n");
	printf("    \"accepted_domains\": %u,\n    \"addrlist_entries\": %u,\n"
	       "    \"sender_domains\": %u,\n    \"rl_buckets\": 65536,\n",
	       pol_domains_count(re.accepted), pol_addrlist_count(re.list),
	       nsend);
	printf("    \"decisions\": {\"local\": %u, \"relay\": %u, \"denied\": "
	       "%u},\n",
	       decided[0], decided[1], decided[2]);
	printf("    \"ns\": {\n");
	for (int k = 0; k < 5; k++)
		json_result(&rb[k], k < 4 ? "," : "");
	printf("    }\n  },\n");
	printf("  \"memory_bytes\": {\n    \"acl_global\": %zu,\n"
	       "    \"acl_listener\": %zu,\n    \"domains_accepted\": %zu,\n"
	       "    \"rl_conn\": %zu,\n    \"rl_rcpt\": %zu,\n"
	       "    \"conns\": %zu,\n    \"block\": %zu\n  },\n",
	       pol_acl_memory(ce->global), pol_acl_memory(ce->listener),
	       pol_domains_memory(re.accepted), pol_rl_memory(ce->rl),
	       pol_rl_memory(re.rl), pol_conns_memory(ce->conns),
	       pol_block_memory(ce->block));
	printf("  \"build\": {\"acl_cidrs\": %u, \"acl_build4_seconds\": %.3f, "
	       "\"acl_add4_prefixes\": %u, \"acl_add4_seconds\": %.3f, "
	       "\"acl_add4_enospc\": %" PRIu64 ", \"acl_add4_memory\": %zu, "
	       "\"domains\": %u, \"domains_seconds\": %.4f},\n",
	       pol_acl_count(ce->global), acl_build_s, add_n, add_s, enospc,
	       add_mem, pol_domains_count(re.accepted), dom_build_s);
	printf("  \"rl_stats_conn\": {\"inserts\": %" PRIu64
	       ", \"evictions\": %" PRIu64 ", \"limited\": %" PRIu64 "},\n",
	       pol_rl_stats(ce->rl)->inserts, pol_rl_stats(ce->rl)->evictions,
	       pol_rl_stats(ce->rl)->limited);
	printf("  \"sink\": %" PRIu64 "\n}\n", (uint64_t)(sink & 1));

	pol_rl_free(re.rl);
	pol_addrlist_free(re.list);
	pol_domains_free(re.accepted);
	pol_rl_free(ce->rl);
	pol_conns_free(ce->conns);
	pol_block_free(ce->block);
	pol_acl_free(ce->listener);
	pol_acl_free(ce->global);
	free(rc);
	free(dom);
	free(domsub);
	free(re.senders);
	free(re.sender_len);
	free(hot);
	free(flood);
	free(ce);
	rte_eal_cleanup();
	return 0;
}
