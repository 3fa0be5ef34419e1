/*
 * test_session.c - the client session driven over a fake transport
 * (issue 12), as tests/unit/net/harness.c drives the stack: a real
 * gateway core (snapshot from a configuration string, a stack, the
 * Maildir next hop in a temporary directory), a session opened through
 * client_open() with a transport whose input the test writes and whose
 * output it reads.
 *
 * Cases: greeting; a pipelined transaction delivered to the Maildir;
 * the STARTTLS byte boundary (bytes after the STARTTLS line never reach
 * the engine, are counted, and later bytes go to the TLS layer only);
 * the peer closing with a message pending (the 250 still comes, then
 * the close); a failed allocation of the effective-limit tables during a
 * reload is reported. Recipients pipelined to a backend (issue 17), over a
 * fake backend MTA played with crafted TCP segments (fb_*): mixed
 * 250/550/452 in one round trip, a backend without PIPELINING, a 452 4.5.3
 * pool switch and policy refusals in the middle of a group, the backend
 * dying with the group outstanding, and a cached connection dying under a
 * group (resent on a fresh one). Every case ends with the backend
 * invariant and every mbuf back in its pool.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/config.h"
#include "control/snapshot.h"
#include "dataplane/clock.h"
#include "dataplane/gateway.h"
#include "dataplane/gateway/client.h"
#include "dataplane/gateway/core.h"
#include "dataplane/gateway/gateway-t.h"
#include "dataplane/gateway/policy_state.h"
#include "dataplane/gateway/xprt.h"
#include "dataplane/workers/workers.h"
#include "tests/unit/net/harness.h"

/* ------------------------------------------------------------ fake */

#define FAKE_SEGS 16

/* The fake transport: input as segments the test appends (read offers
 * them in order, like received mbufs), output collected in a buffer. */
struct fake {
	char seg[FAKE_SEGS][1024];
	size_t seg_len[FAKE_SEGS];
	unsigned n_seg, cur;
	size_t cur_off;
	char out[16384];
	size_t out_len;
	bool shut;
	bool tls_started;
	unsigned reads;
	bool one_seg;     /* offer at most one segment a read (a record) */
};

static size_t fake_read(struct xprt *x, gw_rx_sink_fn sink, void *ctx)
{
	struct fake *f = x->impl;
	size_t total = 0;

	f->reads++;
	while (f->cur < f->n_seg) {
		size_t len = f->seg_len[f->cur] - f->cur_off;
		size_t n = sink(ctx, (const uint8_t *)f->seg[f->cur] + f->cur_off,
				len);

		total += n;
		f->cur_off += n;
		if (n < len)
			break;
		f->cur++;
		f->cur_off = 0;
		if (f->one_seg)
			break;
	}
	return total;
}

static ssize_t fake_send_more(struct xprt *x, const void *buf, size_t len,
			      bool last)
{
	struct fake *f = x->impl;

	(void)last;
	if (f->shut)
		return -1;
	if (len > sizeof(f->out) - 1 - f->out_len)
		len = sizeof(f->out) - 1 - f->out_len;
	memcpy(f->out + f->out_len, buf, len);
	f->out_len += len;
	f->out[f->out_len] = '\0';
	return (ssize_t)len;
}

static void fake_flush(struct xprt *x)
{
	(void)x;
}

static int fake_shutdown(struct xprt *x)
{
	((struct fake *)x->impl)->shut = true;
	return 0;
}

static size_t fake_discard_input(struct xprt *x)
{
	struct fake *f = x->impl;
	size_t n = 0;

	for (; f->cur < f->n_seg; f->cur++, f->cur_off = 0)
		n += f->seg_len[f->cur] - f->cur_off;
	return n;
}

static int fake_start_tls(struct xprt *x)
{
	((struct fake *)x->impl)->tls_started = true;
	return 0;
}

static const struct xprt_ops fake_ops = {
	.name = "fake",
	.read = fake_read,
	.send_more = fake_send_more,
	.flush = fake_flush,
	.shutdown = fake_shutdown,
	.discard_input = fake_discard_input,
	.start_tls = fake_start_tls,
};

/* The same without TLS, as xprt_plain. */
static const struct xprt_ops fake_plain_ops = {
	.name = "fake-plain",
	.read = fake_read,
	.send_more = fake_send_more,
	.flush = fake_flush,
	.shutdown = fake_shutdown,
	.discard_input = fake_discard_input,
};

static void fake_in(struct fake *f, const char *s)
{
	size_t len = strlen(s);

	CHECK(f->n_seg < FAKE_SEGS && len < sizeof(f->seg[0]));
	if (f->n_seg >= FAKE_SEGS || len >= sizeof(f->seg[0]))
		return;
	memcpy(f->seg[f->n_seg], s, len);
	f->seg_len[f->n_seg++] = len;
}

/* ------------------------------------------------------------ core */

struct h {
	struct rte_mempool *pool;
	struct net_stack *st;
	struct gw_global gw;
	struct gw_core *gc;
	struct worker_pool *workers; /* the Maildir's steps run here */
	char dir[64];
	char md[96];
};

/* What the next h_start() configures (AUTH cases): keys added to the
 * mx listener, a top-level section, the relay networks, and the users
 * file and sender map written into the test directory. */
static const char *h_listener_opts = "";
static const char *h_top_opts = "";
static const char *h_relay_nets = "198.18.0.0/15";
static const char *h_users;  /* users file content, NULL: none */
static const char *h_map;    /* sender-login map content, NULL: none */
static uint32_t h_client_ip = 0xc6120001u; /* 198.18.0.1 */
/* The next hops: the Maildir, or (fake backend cases) an smtp pool at
 * the crafted peer of the net harness plus the Maildir for one domain. */
static const char h_pools_maildir[] =
	"{ name = \"default\"; type = \"maildir\"; }";
static const char *h_pools = h_pools_maildir;
static const char *h_policy_opts = "";

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* A snapshot of generation gen: listener mx on 25, and with two also
 * listener sub on 587. */
static struct mxg_snapshot *h_snapshot(const struct h *h, uint64_t gen,
				       bool two)
{
	char conf[4096], err[1024], auth[512] = "";
	struct ctl_config c;
	struct mxg_snapshot *sn = NULL;

	if (h_users || h_map)
		snprintf(auth, sizeof(auth),
			 "auth = { %s%s%s %s%s%s %s };\n",
			 h_users ? "users_file = \"" : "",
			 h_users ? h->dir : "", h_users ? "/users\";" : "",
			 h_map ? "sender_login_map = \"" : "",
			 h_map ? h->dir : "", h_map ? "/map\";" : "",
			 h_top_opts);
	snprintf(conf, sizeof(conf),
		 "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; "
		 "%s }%s );\n"
		 "pools = ( %s );\n"
		 "maildir = { path = \"%s\"; };\n"
		 "policy = { relay_networks = [ \"%s\" ]; %s };\n%s",
		 h_listener_opts,
		 two ? ", { name = \"sub\"; port = 587; role = "
		       "\"submission\"; }"
		     : "",
		 h_pools, h->md, h_relay_nets, h_policy_opts, auth);
	if (ctl_config_load_string(conf, "t.conf", &c, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	if (mxg_snapshot_build(&c, gen, &sn, err, sizeof(err))) {
		fprintf(stderr, "snapshot: %s\n", err);
		abort();
	}
	return sn;
}

static void h_write(const struct h *h, const char *name, const char *text)
{
	char path[160];
	FILE *fp;

	if (!text)
		return;
	snprintf(path, sizeof(path), "%s/%s", h->dir, name);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (!fp)
		abort();
	fputs(text, fp);
	fclose(fp);
}

static void h_start(struct h *h)
{
	char err[256];
	struct mxg_snapshot *sn;

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/mxg-test-session-XXXXXX");
	CHECK(mkdtemp(h->dir) != NULL);
	snprintf(h->md, sizeof(h->md), "%s/Maildir", h->dir);
	h_write(h, "users", h_users);
	h_write(h, "map", h_map);
	sn = h_snapshot(h, 1, false);
	h->pool = t_pool(1024);
	h->st = t_stack(h->pool, NULL);
	if (gw_global_init(&h->gw, sn, 8, 1, err, sizeof(err))) {
		fprintf(stderr, "gw_global_init: %s\n", err);
		abort();
	}
	{
		/* Maildir steps and AUTH's credential checks run on a
		 * real pool */
		struct workers_config wc;
		int e = 0;

		workers_config_defaults(&wc);
		wc.threads = 1;
		wc.n_cores = 1;
		h->workers = workers_create(&wc, &e);
		CHECK(h->workers != NULL);
		if (!h->workers)
			abort();
		workers_attach_core(h->workers, 0, -1, NULL);
		h->gw.workers = h->workers;
	}
	h->gc = gw_core_create(&h->gw, 0, h->st, NULL, NULL, err,
			       sizeof(err));
	if (!h->gc) {
		fprintf(stderr, "gw_core_create: %s\n", err);
		abort();
	}
	gw_core_poll(h->gc, now_us());
}

static void h_stop(struct h *h)
{
	char cmd[160];

	CHECK_EQ(gw_core_check(h->gc, true), 0);
	workers_destroy(h->workers); /* mxgate's order: pool, then cores */
	gw_core_destroy(h->gc);
	gw_global_fini(&h->gw);
	t_destroy(h->st, h->pool);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	CHECK_EQ(system(cmd), 0);
}

static struct gw_sess *h_open(struct h *h, struct fake *f,
			      const struct xprt_ops *ops)
{
	struct gw_sess *s;

	memset(f, 0, sizeof(*f));
	{
		struct net_addr ca =
			net_addr_from_v4(rte_cpu_to_be_32(h_client_ip));

		s = client_open(h->gc, 25, &ca, 40000, NULL, ops, NULL);
	}
	CHECK(s != NULL);
	if (!s)
		abort();
	s->xp.impl = f;
	core_run(h->gc);
	return s;
}

/* Pumps s after new input, then polls the core (Maildir completions)
 * until want appears in the output or a generous bound passes (a bound,
 * not a timing assertion). */
static bool h_until(struct h *h, struct gw_sess *s, struct fake *f,
		    const char *want)
{
	uint64_t t0 = now_us();

	core_dirty_session(s);
	core_run(h->gc);
	while (!strstr(f->out, want)) {
		if (now_us() - t0 > 10 * 1000000u) {
			fprintf(stderr, "%s: waited for \"%s\" in:\n%s\n",
				t_current, want, f->out);
			return false;
		}
		workers_poll(h->workers, 0, 64);
		gw_core_poll(h->gc, now_us());
		usleep(200);
	}
	return true;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static unsigned maildir_files(const struct h *h)
{
	char p[160];
	DIR *d;
	struct dirent *e;
	unsigned n = 0;

	snprintf(p, sizeof(p), "%s/new", h->md);
	d = opendir(p);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Ends s the way the client callbacks would and lets core_run release
 * it. */
static void h_close(struct h *h, struct gw_sess *s)
{
	client_gone(s);
	core_run(h->gc);
	CHECK(!s->used);
}

/* ------------------------------------------------------------ cases */

static void test_greeting(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "greeting";
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	CHECK(strncmp(f.out, "220 ", 4) == 0);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	/* the plain transport cannot start TLS: STARTTLS not offered */
	CHECK(strstr(f.out, "STARTTLS") == NULL);
	fake_in(&f, "QUIT\r\n");
	CHECK(h_until(&h, s, &f, "221 "));
	CHECK(f.shut);
	h_close(&h, s);
	h_stop(&h);
}

static void test_pipelined(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "pipelined";
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	f.out_len = 0;
	f.out[0] = '\0';
	/* RFC 2920: one segment, three commands */
	fake_in(&f, "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\n"
		    "DATA\r\n");
	CHECK(h_until(&h, s, &f, "354 "));
	CHECK_EQ(count(f.out, "250 "), 2);
	fake_in(&f, "Subject: t\r\n\r\nhello\r\n.\r\n");
	CHECK(h_until(&h, s, &f, "queued"));
	CHECK_EQ(count(f.out, "250 "), 3);
	CHECK_EQ(maildir_files(&h), 1);
	CHECK_EQ(h.gc->stats.messages_accepted, 1);
	fake_in(&f, "QUIT\r\n");
	CHECK(h_until(&h, s, &f, "221 "));
	h_close(&h, s);
	h_stop(&h);
}

static void test_starttls_boundary(void)
{
	static const char after[] = "QUIT\r\n";
	static const char hello[] = "\x16\x03\x01\x00\x05hello";
	struct h h;
	struct fake f;
	struct gw_sess *s;
	const struct smtp_stats *es;
	uint32_t commands;

	t_current = "starttls_boundary";
	h_start(&h);
	s = h_open(&h, &f, &fake_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	CHECK(strstr(f.out, "STARTTLS") != NULL);
	es = smtp_session_stats(s->sm);
	commands = es->commands;
	/* The STARTTLS line, then bytes the client sent before our 220
	 * (a command injection, CVE-2011-0411), still below the engine
	 * when the 220 is queued: the transport reads one record a time. */
	f.one_seg = true;
	fake_in(&f, "STARTTLS\r\n");
	fake_in(&f, after);
	CHECK(h_until(&h, s, &f, "220 2.0.0"));
	CHECK(f.tls_started);
	CHECK_EQ(xprt_state(&s->xp), XPRT_TLS_HANDSHAKE);
	/* QUIT never reached the engine: no reply to it, no command, not
	 * even swallowed by the engine; dropped and counted below it */
	CHECK(strstr(f.out, "221") == NULL);
	CHECK_EQ(es->commands, commands + 1);
	CHECK_EQ(es->starttls_discarded, 0);
	CHECK_EQ(s->xp.starttls_discarded, strlen(after));
	CHECK_EQ(h.gc->stats.starttls_discarded, strlen(after));
	/* The next bytes (a ClientHello) are the TLS layer's: the session
	 * pump does not read them. */
	f.reads = 0;
	fake_in(&f, hello);
	core_dirty_session(s);
	core_run(h.gc);
	CHECK_EQ(f.reads, 0);
	CHECK_EQ(f.cur, f.n_seg - 1);
	CHECK_EQ(es->commands, commands + 1);
	CHECK_EQ(es->starttls_discarded, 0);
	h_close(&h, s);
	h_stop(&h);
}

/* Issue 18: a client gone in the middle of DATA gives its transaction
 * area back. */
static void test_close_mid_data(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "close_mid_data";
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	CHECK(s->txn == NULL);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	fake_in(&f, "MAIL FROM:<a@client.test>\r\n");
	CHECK(h_until(&h, s, &f, "2.1.0"));
	CHECK(s->txn != NULL);
	fake_in(&f, "RCPT TO:<b@dest.test>\r\nDATA\r\n");
	CHECK(h_until(&h, s, &f, "354 "));
	fake_in(&f, "Subject: t\r\n\r\nhalf a bo");
	core_dirty_session(s);
	core_run(h.gc);
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 1);
	h_close(&h, s);
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 0);
	CHECK_EQ(maildir_files(&h), 0);
	h_stop(&h);
}

static void test_peer_close_pending(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "peer_close_pending";
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	fake_in(&f, "MAIL FROM:<a@client.test>\r\n");
	CHECK(h_until(&h, s, &f, "2.1.0"));
	fake_in(&f, "RCPT TO:<b@dest.test>\r\n");
	CHECK(h_until(&h, s, &f, "2.1.5"));
	fake_in(&f, "DATA\r\n");
	CHECK(h_until(&h, s, &f, "354 "));
	/* the final dot and the FIN together: the verdict is still owed */
	fake_in(&f, "Subject: t\r\n\r\nbye\r\n.\r\n");
	client_peer_eof(s);
	CHECK(!f.shut);
	CHECK(h_until(&h, s, &f, "queued"));
	CHECK_EQ(maildir_files(&h), 1);
	/* and only then the close */
	CHECK(f.shut);
	h_close(&h, s);
	h_stop(&h);
}

static void *failing_calloc(size_t n, size_t size)
{
	(void)n;
	(void)size;
	return NULL;
}

/* Issue 12 fix: when the per-core effective-limit tables cannot be
 * allocated during a reload, the pushed limit overrides are not applied
 * to the new listeners - and that is reported (counter, log line, push
 * state for the reload reply; the push itself fails with -ENOMEM). */
static void test_limits_alloc_failure(void)
{
	struct h h;
	struct gw_push p;
	struct gw_push_state ps;
	char err[256];
	int64_t seq;

	t_current = "limits_alloc_failure";
	h_start(&h);
	memset(&p, 0, sizeof(p));
	p.kind = GW_PUSH_LIMIT;
	snprintf(p.name, sizeof(p.name), "listener.sub.max_connections");
	p.value = 7;
	seq = gw_push_send(&h.gw, &p);
	CHECK(seq > 0);
	gw_core_poll(h.gc, now_us());
	gw_core_push_state(h.gc, &ps);
	CHECK_EQ(ps.seq, seq);
	CHECK_EQ(ps.fail_seq, 0);
	CHECK_EQ(ps.limits_failed_generation, 0);

	/* a reload that adds listener sub, with no memory for the table */
	state_limits_calloc = failing_calloc;
	CHECK_EQ(gw_publish(&h.gw, h_snapshot(&h, 2, true), err, sizeof(err)),
		 0);
	gw_core_poll(h.gc, now_us());
	gw_core_push_state(h.gc, &ps);
	CHECK_EQ(ps.generation, 2);
	CHECK_EQ(ps.limits_failed_generation, 2);
	CHECK_EQ(h.gc->stats.limits_alloc_failed, 1);

	/* a limit push that needs the table fails, and says why */
	p.value = 8;
	seq = gw_push_send(&h.gw, &p);
	gw_core_poll(h.gc, now_us());
	gw_core_push_state(h.gc, &ps);
	CHECK_EQ(ps.fail_seq, seq);
	CHECK_EQ(ps.fail_err, -ENOMEM);
	CHECK_EQ(h.gc->stats.limits_alloc_failed, 2);

	/* memory back: the next push applies the kept override */
	state_limits_calloc = calloc;
	p.value = 9;
	seq = gw_push_send(&h.gw, &p);
	gw_core_poll(h.gc, now_us());
	gw_core_push_state(h.gc, &ps);
	CHECK(ps.fail_seq != (uint64_t)seq);
	CHECK_EQ(h.gc->listener_limits_cap, 2);
	CHECK_EQ(h.gc->listener_limits[1].max_conn, 9);
	(void)gw_reclaim(&h.gw);
	h_stop(&h);
}


/* ------------------------------------------------------------ AUTH */

#define USERS                                                                  \
	"alice:$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv"  \
	"72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.\n"                               \
	"bob:$6$bcdefghi$03lEkynWXwePgPwguTwz9kxINn1UXdGScak8eIOyM1X3Q6kTuqJeJ" \
	"ajqL2A3w0cMQxbrXNgL3huzfx4872wa8/\n"
#define PLAIN_ALICE "AGFsaWNlAHNlY3JldA=="	/* \0alice\0secret */
#define PLAIN_ALICE_BAD "AGFsaWNlAHdyb25n"	/* \0alice\0wrong */
#define PLAIN_BOB "AGJvYgBzZWNyZXQ="		/* \0bob\0secret */

/* An mx listener with AUTH on cleartext (the test transport has no
 * TLS), no relay network covering the client, a users file. */
static void auth_setup(const char *map, const char *top)
{
	h_listener_opts = "auth = \"optional\"; auth_allow_cleartext = true; "
			  "relay_authenticated = true;";
	h_relay_nets = "192.0.2.0/24";
	h_users = USERS;
	h_map = map;
	h_top_opts = top ? top : "";
	h_client_ip = 0xc6120001u;
}

static void auth_reset_setup(void)
{
	h_listener_opts = "";
	h_relay_nets = "198.18.0.0/15";
	h_users = NULL;
	h_map = NULL;
	h_top_opts = "";
	h_client_ip = 0xc6120001u;
}

static void out_clear(struct fake *f)
{
	f->out_len = 0;
	f->out[0] = '\0';
}

/* PLAIN with an initial response on the worker pool: relay refused
 * before, allowed after; Received says ESMTPA; LOGIN in the challenge
 * form; a bad password 535; a second AUTH 503; AUTH in a transaction
 * 503; "*" 501. */
static void test_auth_plain_login(void)
{
	struct h h;
	struct fake f, f2;
	struct gw_sess *s, *s2;
	char path[256];

	t_current = "auth_plain_login";
	auth_setup(NULL, NULL);
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	CHECK(strstr(f.out, "250 AUTH PLAIN LOGIN\r\n") != NULL);
	fake_in(&f, "MAIL FROM:<alice@client.test>\r\nRCPT TO:<x@far.test>\r\n");
	CHECK(h_until(&h, s, &f, "554 5.7.1"));
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 1); /* MAIL took one */
	fake_in(&f, "RSET\r\n");
	CHECK(h_until(&h, s, &f, "250 2.0.0"));
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 0); /* RSET gave it back */
	/* AUTH inside a transaction: 503 */
	fake_in(&f, "MAIL FROM:<alice@client.test>\r\nAUTH PLAIN " PLAIN_ALICE
		    "\r\n");
	CHECK(h_until(&h, s, &f, "503 5.5.1"));
	out_clear(&f);
	fake_in(&f, "RSET\r\n");
	CHECK(h_until(&h, s, &f, "250 2.0.0"));
	out_clear(&f);
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE_BAD "\r\n");
	CHECK(h_until(&h, s, &f, "535 5.7.8"));
	CHECK_EQ(h.gc->stats.auth_failed_plain, 1);
	/* abort with "*" */
	fake_in(&f, "AUTH PLAIN\r\n");
	CHECK(h_until(&h, s, &f, "334 "));
	CHECK_EQ(gw_area_held(&h.gc->auth_pool), 1);
	fake_in(&f, "*\r\n");
	CHECK(h_until(&h, s, &f, "501 5.7.0"));
	CHECK_EQ(gw_area_held(&h.gc->auth_pool), 0); /* aborted: back */
	out_clear(&f);
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	/* the check is a job: nothing answered until the pool is done */
	core_dirty_session(s);
	core_run(h.gc);
	CHECK(s->auth != NULL);
	CHECK_EQ(s->auth->wait, GW_AUTH_JOB);
	CHECK_EQ(gw_area_held(&h.gc->auth_pool), 1);
	CHECK(strstr(f.out, "235") == NULL);
	CHECK(h_until(&h, s, &f, "235 2.7.0"));
	CHECK_EQ(h.gc->stats.auth_ok_plain, 1);
	CHECK(strcmp(s->auth_login, "alice") == 0);
	/* issue 18: AUTH done, its area is back; only the login stays */
	CHECK(s->auth == NULL);
	CHECK_EQ(gw_area_held(&h.gc->auth_pool), 0);
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	CHECK(h_until(&h, s, &f, "503 5.5.1"));
	out_clear(&f);
	fake_in(&f, "MAIL FROM:<alice@client.test>\r\nRCPT TO:<x@far.test>\r\n"
		    "DATA\r\n");
	CHECK(h_until(&h, s, &f, "354 "));
	fake_in(&f, "Subject: t\r\n\r\nhello\r\n.\r\n");
	CHECK(h_until(&h, s, &f, "queued"));
	CHECK_EQ(maildir_files(&h), 1);
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 0); /* transaction over */
	snprintf(path, sizeof(path), "grep -rq 'with ESMTPA' '%s/new'", h.md);
	CHECK_EQ(system(path), 0);
	fake_in(&f, "QUIT\r\n");
	CHECK(h_until(&h, s, &f, "221 "));
	h_close(&h, s);

	/* RFC 4954 4: AUTH ends a pipeline group; a command behind it in
	 * the same segment is not run while the check is out, and is a
	 * synchronisation error (554 5.5.0, enforced here) */
	s2 = h_open(&h, &f2, &fake_plain_ops);
	fake_in(&f2, "EHLO client.test\r\n");
	CHECK(h_until(&h, s2, &f2, "250 "));
	fake_in(&f2, "AUTH PLAIN " PLAIN_ALICE "\r\nNOOP\r\n");
	core_dirty_session(s2);
	core_run(h.gc);
	CHECK_EQ(s2->auth->wait, GW_AUTH_JOB);
	CHECK(strstr(f2.out, "250 2.0.0 Ok") == NULL); /* NOOP not run */
	CHECK(h_until(&h, s2, &f2, "554 5.5.0"));
	CHECK(strstr(f2.out, "235") == NULL);
	h_close(&h, s2);

	/* LOGIN, challenge form */
	s2 = h_open(&h, &f2, &fake_plain_ops);
	fake_in(&f2, "EHLO client.test\r\n");
	CHECK(h_until(&h, s2, &f2, "250 "));
	fake_in(&f2, "AUTH LOGIN\r\n");
	CHECK(h_until(&h, s2, &f2, "334 VXNlcm5hbWU6\r\n"));
	fake_in(&f2, "YWxpY2U=\r\n");
	CHECK(h_until(&h, s2, &f2, "334 UGFzc3dvcmQ6\r\n"));
	fake_in(&f2, "c2VjcmV0\r\n");
	CHECK(h_until(&h, s2, &f2, "235 2.7.0"));
	CHECK_EQ(h.gc->stats.auth_ok_login, 1);
	h_close(&h, s2);
	h_stop(&h);
	auth_reset_setup();
}

/* A listener without auth_allow_cleartext over a cleartext transport:
 * AUTH is not advertised and refused with 538. */
static void test_auth_cleartext_refused(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "auth_cleartext_refused";
	auth_setup(NULL, NULL);
	h_listener_opts = "auth = \"optional\";";
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	CHECK(strstr(f.out, "AUTH") == NULL);
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	CHECK(h_until(&h, s, &f, "538 5.7.11"));
	CHECK_EQ(h.gc->stats.auth_ok_plain, 0);
	h_close(&h, s);
	h_stop(&h);
	auth_reset_setup();
}

/* The session dies while its check is on the pool: the job is
 * cancelled, its completion never reaches the session (auth.c asserts
 * it), and the slot's next session starts unauthenticated. */
static void test_auth_dies_during_job(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;
	uint64_t t0;

	t_current = "auth_dies_during_job";
	auth_setup(NULL, NULL);
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	core_dirty_session(s);
	core_run(h.gc);
	CHECK_EQ(s->auth->wait, GW_AUTH_JOB);
	CHECK_EQ(workers_in_flight(h.workers, 0), 1);
	h_close(&h, s);
	CHECK_EQ(gw_area_held(&h.gc->auth_pool), 0); /* closed mid-job */
	s = h_open(&h, &f, &fake_plain_ops); /* same slot, new session */
	t0 = now_us();
	while (workers_in_flight(h.workers, 0) && now_us() - t0 < 10000000u) {
		workers_poll(h.workers, 0, 64);
		gw_core_poll(h.gc, now_us());
		usleep(200);
	}
	CHECK_EQ(workers_in_flight(h.workers, 0), 0);
	CHECK_EQ(h.gc->stats.auth_ok_plain, 0);
	CHECK(s->auth_login[0] == '\0');
	CHECK(s->auth == NULL);
	h_close(&h, s);
	h_stop(&h);
	auth_reset_setup();
}

/* Brute force from one address: failures past ip_delay_after are held
 * (the session waits, the core serves another client meanwhile), past
 * ip_lockout_after AUTH gets 454; a client from another address still
 * logs in. */
static void test_auth_brute_force(void)
{
	struct h h;
	struct fake f, f2;
	struct gw_sess *s, *s2;

	t_current = "auth_brute_force";
	auth_setup(NULL, "brute_force = { ip_delay_after = 2; "
			 "ip_lockout_after = 4; delay = 1; max_delay = 1; };");
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	for (int i = 0; i < 4; i++) {
		out_clear(&f);
		fake_in(&f, "AUTH PLAIN " PLAIN_ALICE_BAD "\r\n");
		if (i >= 1) {
			/* 2nd failure on: the 535 is held by the tarpit */
			core_dirty_session(s);
			core_run(h.gc);
			while (s->auth && s->auth->wait == GW_AUTH_JOB) {
				workers_poll(h.workers, 0, 64);
				usleep(200);
			}
			gw_core_poll(h.gc, now_us());
			CHECK_EQ(s->auth->wait, GW_AUTH_HELD);
			CHECK(strstr(f.out, "535") == NULL);
			if (i == 1) {
				/* the core is not blocked: another client is
				 * served while the reply is held */
				h_client_ip = 0xc6120102u;
				s2 = h_open(&h, &f2, &fake_plain_ops);
				fake_in(&f2, "EHLO other.test\r\n");
				CHECK(h_until(&h, s2, &f2, "250 "));
				CHECK_EQ(s->auth->wait, GW_AUTH_HELD);
				h_close(&h, s2);
				h_client_ip = 0xc6120001u;
			}
		}
		CHECK(h_until(&h, s, &f, "535 5.7.8"));
	}
	CHECK_EQ(h.gc->stats.auth_failed_plain, 4);
	CHECK_EQ(h.gc->stats.auth_delayed, 3);
	CHECK_EQ(h.gc->stats.auth_lockouts, 1);
	out_clear(&f);
	/* locked out: the right password gets 454 */
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	CHECK(h_until(&h, s, &f, "454 4.7.0"));
	CHECK_EQ(h.gc->stats.auth_locked, 1);
	CHECK_EQ(h.gc->stats.auth_ok_plain, 0);
	h_close(&h, s);
	/* another address, same user: unaffected */
	h_client_ip = 0xc6120203u;
	s2 = h_open(&h, &f2, &fake_plain_ops);
	fake_in(&f2, "EHLO other.test\r\n");
	CHECK(h_until(&h, s2, &f2, "250 "));
	fake_in(&f2, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	CHECK(h_until(&h, s2, &f2, "235 2.7.0"));
	h_close(&h, s2);
	h_stop(&h);
	auth_reset_setup();
}

/* The sender-login map: alice may send as alice@client.test only
 * (553 5.7.1 otherwise); bob, absent from the map, as nobody. */
static void test_auth_sender_map(void)
{
	struct h h;
	struct fake f;
	struct gw_sess *s;

	t_current = "auth_sender_map";
	auth_setup("alice alice@client.test\n", NULL);
	h_start(&h);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	fake_in(&f, "AUTH PLAIN " PLAIN_ALICE "\r\n");
	CHECK(h_until(&h, s, &f, "235 2.7.0"));
	fake_in(&f, "MAIL FROM:<bob@client.test>\r\n");
	CHECK(h_until(&h, s, &f, "553 5.7.1"));
	CHECK_EQ(h.gc->stats.mail_denied_login, 1);
	out_clear(&f);
	fake_in(&f, "MAIL FROM:<alice@client.test>\r\n");
	CHECK(h_until(&h, s, &f, "250 2.1.0"));
	h_close(&h, s);
	s = h_open(&h, &f, &fake_plain_ops);
	fake_in(&f, "EHLO client.test\r\n");
	CHECK(h_until(&h, s, &f, "250 "));
	fake_in(&f, "AUTH PLAIN " PLAIN_BOB "\r\n");
	CHECK(h_until(&h, s, &f, "235 2.7.0"));
	fake_in(&f, "MAIL FROM:<bob@client.test>\r\n");
	CHECK(h_until(&h, s, &f, "553 5.7.1"));
	h_close(&h, s);
	h_stop(&h);
	auth_reset_setup();
}

/* ------------------------------------------------------------ fake backend
 * A backend MTA played over the net harness (issue 17): the gateway's
 * tcp_connect to T_PEER_IP:25 is answered with crafted segments, its
 * command lines parsed and answered, all replies to one received segment
 * in one segment (a pipelining server). Counts the segments that carried
 * RCPT lines: the round trips the RCPTs of a message cost. */

struct fb {
	bool up;
	bool pipelining;    /* advertise PIPELINING */
	bool die_on_rcpt;   /* RST when a segment carries RCPT lines (once) */
	bool in_data;
	uint16_t port;      /* the gateway's local port */
	uint32_t snd_nxt, rcv_nxt;
	unsigned conns;     /* SYNs answered */
	unsigned rcpt_segs; /* received segments carrying RCPT lines */
	unsigned rcpts;     /* RCPT lines received */
	unsigned messages;  /* final dots answered 250 */
	char line[1200];
	size_t line_len;
	char log[16384];    /* command lines received, for checks */
	size_t log_len;
};

static void fb_seg(struct h *h, struct fb *b, uint8_t flags, const char *data,
		   size_t len, int mss)
{
	struct t_seg sg;

	t_seg_init(&sg);
	sg.sport = 25;
	sg.dport = b->port;
	sg.seq = b->snd_nxt;
	sg.ack = b->rcv_nxt;
	sg.flags = flags;
	sg.mss = mss;
	sg.data = data;
	sg.len = (uint32_t)len;
	t_send(h->st, h->pool, &sg, now_us());
	b->snd_nxt += (uint32_t)len + ((flags & (T_FLAG_SYN | T_FLAG_FIN)) ? 1
									   : 0);
}

/* The reply to one command line (appended to out). */
static void fb_line(struct fb *b, const char *l, char *out, size_t *olen,
		    size_t cap)
{
	const char *r = NULL;
	char buf[256];

	if (b->in_data) {
		if (!strcmp(l, ".")) {
			b->in_data = false;
			b->messages++;
			r = "250 2.0.0 Ok: queued as FAKE\r\n";
		}
	} else {
		if (b->log_len + strlen(l) + 2 < sizeof(b->log))
			b->log_len += (size_t)snprintf(b->log + b->log_len,
				sizeof(b->log) - b->log_len, "%s\n", l);
		if (!strncasecmp(l, "EHLO", 4)) {
			r = b->pipelining
				? "250-fake.test\r\n250-PIPELINING\r\n"
				  "250 8BITMIME\r\n"
				: "250-fake.test\r\n250 8BITMIME\r\n";
		} else if (!strncasecmp(l, "MAIL", 4)) {
			r = "250 2.1.0 Ok\r\n";
		} else if (!strncasecmp(l, "RCPT TO:<", 9)) {
			const char *a = l + 9;
			int al = (int)strcspn(a, ">");

			b->rcpts++;
			if (!strncmp(a, "bad", 3))
				snprintf(buf, sizeof(buf),
					 "550 5.1.1 <%.*s> unknown\r\n", al, a);
			else if (!strncmp(a, "full", 4))
				snprintf(buf, sizeof(buf),
					 "452 4.2.2 <%.*s> full\r\n", al, a);
			else
				snprintf(buf, sizeof(buf),
					 "250 2.1.5 <%.*s> ok\r\n", al, a);
			r = buf;
		} else if (!strncasecmp(l, "DATA", 4)) {
			b->in_data = true;
			r = "354 go ahead\r\n";
		} else if (!strncasecmp(l, "RSET", 4)) {
			r = "250 2.0.0 Ok\r\n";
		} else if (!strncasecmp(l, "QUIT", 4)) {
			r = "221 2.0.0 Bye\r\n";
		} else {
			r = "502 5.5.2 what\r\n";
		}
	}
	if (r && *olen + strlen(r) < cap) {
		memcpy(out + *olen, r, strlen(r));
		*olen += strlen(r);
	}
}

/* Answers what the stack sent to the backend. */
static void fb_step(struct h *h, struct fb *b)
{
	struct t_out o[16];
	int n;

	while ((n = t_take(h->st, o, 16)) > 0) {
		for (int i = 0; i < n; i++) {
			char out[4096];
			size_t olen = 0;

			if (o[i].ether_type != 0x0800 || o[i].dport != 25)
				continue;
			if (o[i].flags & T_FLAG_RST) {
				b->up = false;
				continue;
			}
			if (o[i].flags & T_FLAG_SYN) {
				b->port = o[i].sport;
				b->rcv_nxt = o[i].seq + 1;
				b->snd_nxt = 7000;
				b->up = true;
				b->in_data = false;
				b->line_len = 0;
				b->conns++;
				fb_seg(h, b, T_FLAG_SYN | T_FLAG_ACK, NULL, 0,
				       1460);
				fb_seg(h, b, T_FLAG_ACK | T_FLAG_PSH,
				       "220 fake.test ESMTP\r\n", 21, -1);
				continue;
			}
			if (!b->up || o[i].sport != b->port)
				continue;
			if (o[i].len && o[i].seq == b->rcv_nxt) {
				bool rcpt = false;

				b->rcv_nxt += o[i].len;
				for (uint32_t k = 0; k < o[i].len; k++) {
					char c = (char)o[i].data[k];

					if (c == '\n') {
						b->line[b->line_len &&
							b->line[b->line_len -
								1] == '\r'
							? b->line_len - 1
							: b->line_len] = '\0';
						if (!b->in_data &&
						    !strncasecmp(b->line,
								 "RCPT", 4))
							rcpt = true;
						if (!(rcpt && b->die_on_rcpt))
							fb_line(b, b->line, out,
								&olen,
								sizeof(out));
						b->line_len = 0;
					} else if (b->line_len <
						   sizeof(b->line) - 1) {
						b->line[b->line_len++] = c;
					}
				}
				if (rcpt)
					b->rcpt_segs++;
				if (rcpt && b->die_on_rcpt) {
					fb_seg(h, b, T_FLAG_RST | T_FLAG_ACK,
					       NULL, 0, -1);
					b->up = false;
					b->die_on_rcpt = false; /* once */
					continue;
				}
			}
			if (o[i].flags & T_FLAG_FIN) {
				b->rcv_nxt++;
				fb_seg(h, b, T_FLAG_ACK | T_FLAG_FIN, NULL, 0,
				       -1);
				b->up = false;
				continue;
			}
			if (olen)
				fb_seg(h, b, T_FLAG_ACK | T_FLAG_PSH, out, olen,
				       -1);
			else if (o[i].len)
				fb_seg(h, b, T_FLAG_ACK, NULL, 0, -1);
		}
	}
}

/* h_until with the fake backend answering. */
static bool fb_until_n(struct h *h, struct gw_sess *s, struct fake *f,
		       struct fb *b, const char *want, unsigned n)
{
	uint64_t t0 = now_us();

	core_dirty_session(s);
	core_run(h->gc);
	while (count(f->out, want) < n) {
		if (now_us() - t0 > 10 * 1000000u) {
			fprintf(stderr, "%s: waited for \"%s\" in:\n%s\n"
				"backend saw:\n%s\n",
				t_current, want, f->out, b->log);
			return false;
		}
		fb_step(h, b);
		net_stack_poll(h->st, now_us());
		workers_poll(h->workers, 0, 64);
		gw_core_poll(h->gc, now_us());
		core_dirty_session(s);
		core_run(h->gc);
		usleep(100);
	}
	return true;
}

static const char h_pools_fake[] =
	"{ name = \"default\"; servers = ( { address = \"10.0.0.2\"; } ); "
	"health = { interval = 0; }; }, "
	"{ name = \"local\"; type = \"maildir\"; domains = [ \"md.test\" ]; }";

/* A session to the fake backend, after EHLO; output cleared. */
static struct gw_sess *fb_open(struct h *h, struct fake *f, struct fb *b,
			       bool pipelining)
{
	struct gw_sess *s;

	h_pools = h_pools_fake;
	h_start(h);
	h_pools = h_pools_maildir;
	memset(b, 0, sizeof(*b));
	b->pipelining = pipelining;
	t_learn_peer(h->st, now_us());
	s = h_open(h, f, &fake_plain_ops);
	fake_in(f, "EHLO client.test\r\n");
	CHECK(h_until(h, s, f, "250 "));
	out_clear(f);
	return s;
}

/* The client's pipelined group: MAIL, RCPT TO:<name_i@dest.test> for each
 * name, DATA. */
static void fb_group(struct fake *f, const char *const *names, unsigned n)
{
	char buf[1024];
	size_t off;

	off = (size_t)snprintf(buf, sizeof(buf), "MAIL FROM:<a@client.test>\r\n");
	for (unsigned i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"RCPT TO:<%s>\r\n", names[i]);
	snprintf(buf + off, sizeof(buf) - off, "DATA\r\n");
	fake_in(f, buf);
}

/* The reply codes in f->out, in order, as "250 550 ..." */
static void reply_codes(const struct fake *f, char *buf, size_t len)
{
	size_t off = 0;
	const char *p = f->out;

	buf[0] = '\0';
	while (*p && off + 5 < len) {
		if (p[0] >= '2' && p[0] <= '5' && p[3] == ' ') {
			off += (size_t)snprintf(buf + off, len - off, "%s%.3s",
						off ? " " : "", p);
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
}

static bool fb_until(struct h *h, struct gw_sess *s, struct fake *f,
		     struct fb *b, const char *want)
{
	return fb_until_n(h, s, f, b, want, 1);
}

/* Sends the group, waits for DATA's reply and checks every reply code in
 * order against want ("250 550 ... 354"). */
static void fb_expect(struct h *h, struct gw_sess *s, struct fake *f,
		      struct fb *b, const char *const *names, unsigned n,
		      const char *want)
{
	char codes[256];

	fb_group(f, names, n);
	CHECK(fb_until(h, s, f, b, "354 "));
	reply_codes(f, codes, sizeof(codes));
	CHECK(!strcmp(codes, want));
	if (strcmp(codes, want))
		fprintf(stderr, "%s: codes %s, want %s\n", t_current, codes,
			want);
}

/* The body, its 250 from the backend, QUIT, and the harness down. */
static void fb_finish(struct h *h, struct gw_sess *s, struct fake *f,
		      struct fb *b)
{
	fake_in(f, "hello\r\n.\r\n");
	CHECK(fb_until(h, s, f, b, "queued as FAKE"));
	fake_in(f, "QUIT\r\n");
	CHECK(fb_until(h, s, f, b, "221 "));
	h_close(h, s);
	/* every outstanding-RCPT block is back in the core's LIFO */
	CHECK_EQ(h->gc->n_rcptq_free, h->gw.max_sessions);
	h_stop(h);
}

/* Mixed 250/550/452 from a pipelining backend: one segment carries all
 * ten RCPTs (one round trip), each reply goes back to its recipient in
 * order, the message reaches the backend. */
static void test_rcpt_group_mixed(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "bad1@dest.test", "ok2@dest.test",
		"full1@dest.test", "ok3@dest.test", "bad2@dest.test",
		"ok4@dest.test", "ok5@dest.test", "ok6@dest.test",
		"ok7@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;

	t_current = "rcpt_group_mixed";
	s = fb_open(&h, &f, &b, true);
	fb_expect(&h, s, &f, &b, names, 10,
		  "250 250 550 250 452 250 550 250 250 250 250 354");
	CHECK(strstr(f.out, "550 5.1.1 <bad1@dest.test> unknown") != NULL);
	CHECK(strstr(f.out, "452 4.2.2 <full1@dest.test> full") != NULL);
	CHECK_EQ(b.rcpts, 10);
	CHECK_EQ(b.rcpt_segs, 1); /* one round trip for the group */
	/* the gateway's own count: EHLO, MAIL + the RCPTs, DATA */
	CHECK_EQ(h.gc->stats.backend_round_trips, 3);
	CHECK_EQ(h.gc->stats.rcpts_accepted, 7);
	CHECK_EQ(h.gc->stats.rcpts_rejected, 3);
	fb_finish(&h, s, &f, &b);
	CHECK_EQ(b.messages, 1);
}

/* A backend without PIPELINING: the relay client sends one RCPT at a
 * time; the replies still map to their recipients in order. */
static void test_rcpt_group_no_pipelining(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "bad1@dest.test", "ok2@dest.test",
		"full1@dest.test", "ok3@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;

	t_current = "rcpt_group_no_pipelining";
	s = fb_open(&h, &f, &b, false);
	fb_expect(&h, s, &f, &b, names, 5, "250 250 550 250 452 250 354");
	CHECK_EQ(b.rcpts, 5);
	CHECK_EQ(b.rcpt_segs, 5); /* one at a time */
	/* EHLO, MAIL, 5 x RCPT, DATA */
	CHECK_EQ(h.gc->stats.backend_round_trips, 8);
	fb_finish(&h, s, &f, &b);
}

/* A recipient of another pool in the middle of a group: 452 4.5.3 at
 * once, in its place; the backend never sees it. */
static void test_rcpt_group_pool_switch(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "x@md.test", "ok2@dest.test", "y@md.test",
		"bad1@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;

	t_current = "rcpt_group_pool_switch";
	s = fb_open(&h, &f, &b, true);
	fb_expect(&h, s, &f, &b, names, 5, "250 250 452 250 452 550 354");
	CHECK_EQ(count(f.out, "452 4.5.3"), 2);
	CHECK_EQ(b.rcpts, 3);
	CHECK_EQ(b.rcpt_segs, 1);
	CHECK(strstr(b.log, "md.test") == NULL);
	fb_finish(&h, s, &f, &b);
}

/* Local policy refuses some recipients of the group (relaying denied to
 * a client outside the relay networks): answered at once, in their
 * places, before the backend sees them. */
static void test_rcpt_group_policy(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "z@elsewhere.test", "ok2@dest.test",
		"w@elsewhere.test", "bad1@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;

	t_current = "rcpt_group_policy";
	h_relay_nets = "192.0.2.0/24";
	h_policy_opts = "accepted_domains = ( \"dest.test\" );";
	s = fb_open(&h, &f, &b, true);
	h_relay_nets = "198.18.0.0/15";
	h_policy_opts = "";
	/* 554 5.7.1 Relay access denied, from policy */
	fb_expect(&h, s, &f, &b, names, 5, "250 250 554 250 554 550 354");
	CHECK_EQ(count(f.out, "554 5.7.1"), 2);
	CHECK_EQ(b.rcpts, 3);
	CHECK_EQ(b.rcpt_segs, 1);
	CHECK(strstr(b.log, "elsewhere.test") == NULL);
	fb_finish(&h, s, &f, &b);
}

/* The backend dies (RST) with the group outstanding: every recipient
 * gets 451 4.4.2, in order, none a 250; DATA is then refused. */
static void test_rcpt_group_backend_dies(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "ok2@dest.test", "ok3@dest.test",
		"ok4@dest.test", "ok5@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;
	char codes[256];

	t_current = "rcpt_group_backend_dies";
	s = fb_open(&h, &f, &b, true);
	b.die_on_rcpt = true;
	fb_group(&f, names, 5);
	CHECK(fb_until_n(&h, s, &f, &b, "451 4.4.2", 5));
	CHECK(fb_until_n(&h, s, &f, &b, "\r\n", 7));
	reply_codes(&f, codes, sizeof(codes));
	CHECK(!strncmp(codes, "250 451 451 451 451 451 ", 24));
	CHECK(strstr(codes, "354") == NULL);
	fprintf(stderr, "%s codes: %s\n", t_current, codes);
	CHECK_EQ(b.rcpt_segs, 1);
	CHECK_EQ(h.gc->stats.rcpts_accepted, 0);
	fake_in(&f, "QUIT\r\n");
	CHECK(fb_until(&h, s, &f, &b, "221 "));
	h_close(&h, s);
	CHECK_EQ(h.gc->n_rcptq_free, h.gw.max_sessions);
	CHECK_EQ(gw_area_held(&h.gc->txn_pool), 0);
	h_stop(&h);
}

/* The second message goes to the cached connection, which dies on the
 * group (RSET + MAIL + RCPTs) before any reply: the whole group is sent
 * again on a fresh connection, and every recipient gets the new
 * backend's answer (never a 4xx from the dead one). */
static void test_rcpt_group_reuse_retry(void)
{
	static const char *const names[] = {
		"ok1@dest.test", "bad1@dest.test", "ok2@dest.test"};
	struct h h;
	struct fake f;
	struct fb b;
	struct gw_sess *s;

	t_current = "rcpt_group_reuse_retry";
	s = fb_open(&h, &f, &b, true);
	fb_group(&f, names, 3);
	CHECK(fb_until(&h, s, &f, &b, "354 "));
	fake_in(&f, "hello\r\n.\r\n");
	CHECK(fb_until(&h, s, &f, &b, "queued as FAKE"));
	CHECK_EQ(h.gc->stats.backend_reused, 0);
	out_clear(&f);
	b.die_on_rcpt = true;
	fb_expect(&h, s, &f, &b, names, 3, "250 250 550 250 354");
	CHECK_EQ(h.gc->stats.backend_reused, 1);
	CHECK_EQ(b.conns, 2);
	CHECK_EQ(b.rcpt_segs, 3); /* first message, dead group, resent */
	fb_finish(&h, s, &f, &b);
	CHECK_EQ(b.messages, 2);
}

/* Overload mode, dropped first (issue 18): with a table of 8 (default
 * overload_percent 80, overload_idle_ms 10 s, overload_max_errors 3),
 * below the threshold 3 protocol errors keep a session; at 7 of 8 a
 * client that talked before its greeting is closed with 421 4.3.2 at
 * once while the idle ones stay (their 10 s have not passed), and a
 * session's third error closes it with 421 4.7.0. */
static void test_overload_first(void)
{
	struct h h;
	static struct fake f[7];
	struct gw_sess *s[7];
	uint64_t t0;

	t_current = "overload_first";
	h_start(&h);
	s[0] = h_open(&h, &f[0], &fake_plain_ops);
	fake_in(&f[0], "FOO\r\n");
	fake_in(&f[0], "BAR\r\n");
	fake_in(&f[0], "BAZ\r\n");
	CHECK(h_until(&h, s[0], &f[0], "500 5.5.1 Error: command not recognized\r\n"
				       "500 5.5.1 Error: command not recognized\r\n"
				       "500 "));
	CHECK(!f[0].shut); /* 3 errors, below the threshold: kept */
	/* a pregreeter: its line is in before the engine's first pump */
	memset(&f[1], 0, sizeof(f[1]));
	fake_in(&f[1], "EHLO early.test\r\n");
	{
		struct net_addr ca =
			net_addr_from_v4(rte_cpu_to_be_32(h_client_ip));

		s[1] = client_open(h.gc, 25, &ca, 40001, NULL, &fake_plain_ops,
				   NULL);
	}
	CHECK(s[1] != NULL);
	if (!s[1])
		abort();
	s[1]->xp.impl = &f[1];
	core_run(h.gc);
	CHECK(smtp_session_stats(s[1]->sm)->pregreet_bytes > 0);
	for (int i = 2; i < 7; i++)
		s[i] = h_open(&h, &f[i], &fake_plain_ops);
	/* 7 of 8: overload at the next 20 ms check; the pregreeter goes
	 * within a sweep (bounded wait, not a timing assertion) */
	t0 = now_us();
	while (!strstr(f[1].out, "421 4.3.2") && now_us() - t0 < 5000000) {
		usleep(5000);
		gw_core_poll(h.gc, now_us());
	}
	CHECK(gw_core_stats(h.gc)->overload == 1);
	CHECK(strstr(f[1].out, "421 4.3.2") != NULL);
	CHECK(f[1].shut);
	CHECK_EQ(gw_core_stats(h.gc)->overload_pregreet_closed, 1);
	for (int i = 2; i < 7; i++)
		CHECK(!f[i].shut && !strstr(f[i].out, "421"));
	/* the lower error limit: the third error closes */
	fake_in(&f[2], "FOO\r\n");
	fake_in(&f[2], "BAR\r\n");
	CHECK(h_until(&h, s[2], &f[2], "500 5.5.1 Error: command not recognized\r\n"
				       "500 "));
	CHECK(!f[2].shut);
	fake_in(&f[2], "BAZ\r\n");
	CHECK(h_until(&h, s[2], &f[2], "421 4.7.0"));
	CHECK(f[2].shut);
	CHECK_EQ(gw_core_stats(h.gc)->overload_errors_closed, 1);
	for (int i = 0; i < 7; i++)
		h_close(&h, s[i]);
	h_stop(&h);
}

int main(void)
{
	t_init_eal();
	test_greeting();
	test_pipelined();
	test_starttls_boundary();
	test_peer_close_pending();
	test_close_mid_data();
	test_limits_alloc_failure();
	test_auth_plain_login();
	test_auth_cleartext_refused();
	test_auth_dies_during_job();
	test_auth_brute_force();
	test_auth_sender_map();
	test_rcpt_group_mixed();
	test_rcpt_group_no_pipelining();
	test_rcpt_group_pool_switch();
	test_rcpt_group_policy();
	test_rcpt_group_backend_dies();
	test_rcpt_group_reuse_retry();
	test_overload_first();
	mxg_snapshot_reaper_stop();
	if (t_failures) {
		fprintf(stderr, "%d check(s) failed\n", t_failures);
		return 1;
	}
	printf("gateway session harness: all checks passed\n");
	return 0;
}
