/*
 * gateway.c - SMTP sessions on the per-core TCP stack, relayed in-line to
 * backend MTAs or the local Maildir (see gateway.h, DESIGN 5).
 *
 * Ownership: everything in a struct gw_core belongs to one dataplane lcore.
 * The TCP callbacks, the poll and every pump run on that lcore.
 *
 * How work flows. TCP callbacks never do protocol work themselves: they
 * mark the session or backend connection "dirty" and run the dirty lists
 * (gw_run). A session pump feeds client bytes into the SMTP engine,
 * answers its events, and writes its output; a backend pump feeds backend
 * bytes into the relay client, handles its events (which answer the
 * owning session's pending request and dirty that session), and writes
 * its output. Because each pump only touches its own object and dirties
 * the other, no pump ever re-enters another, and an object is only freed
 * by gw_run once no pump is running on it.
 *
 * The safety rule (DESIGN 5): a client's end of data is answered 250 only
 * from a backend's 250 to our final dot (RELAY_EV_DATA_END) or from a
 * Maildir completion with status 0 (file and directory fsync'd). Every
 * other outcome is a 4xx or the backend's own 5xx.
 *
 * What this first version simplifies (docs/status.md): RCPTs reach the
 * backend one at a time (MAIL and the first RCPT are pipelined; the engine
 * holds further pipelined input until each verdict), Maildir delivery
 * stores one file per message whatever the recipients.
 */
#include "dataplane/gateway.h"

#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#define GW_MAX_LOG_RCPT 4

struct gw_be;
struct gw_core;

/* The next-hop pools of one snapshot on one core: the relay_pools state
 * (server health, connection counts, idle cache) and the snapshot whose
 * pool settings it was built from (a core reference is held). A reload
 * with the same pools fingerprint keeps the set and re-points it at the
 * new snapshot; a different one builds a new set and retires the old:
 * its idle connections are closed, connections in a transaction finish
 * it, and the set is freed when nobody uses it. */
struct gw_pset {
	struct relay_pools *rp;
	struct mxg_snapshot *snap;
	uint64_t fp;
	uint32_t users;   /* sessions and backend connections */
	bool retired;
	struct gw_pset *next; /* retired list */
};

/* Why a client request is waiting. */
enum gw_wait {
	W_NONE = 0,
	W_RCPT,      /* RCPT verdict waits for the backend (MAIL+RCPT) */
	W_DATA,      /* DATA verdict waits for 354 */
	W_DATA_END,  /* end-of-data verdict waits for the backend / Maildir */
};

struct gw_sess {
	bool used;
	bool dirty;
	bool dead;           /* TCP gone: release at the end of gw_run */
	bool closing;        /* tcp_close() called */
	bool peer_eof;
	struct gw_sess *next_dirty;
	struct gw_core *gc;
	uint32_t idx;
	uint32_t gen;
	char sid[24];
	const struct gw_listener *lst; /* in snap */
	struct mxg_snapshot *snap;     /* policy of this transaction (ref) */
	struct gw_pset *ps;            /* pools of this transaction */
	bool cnt_ip, cnt_lst;          /* counted in ipc / lconns */
	uint16_t lport;
	uint32_t nmsgs;                /* MAIL commands accepted */
	uint16_t deny_code;            /* refuse at CONNECT (0: greet) */
	const char *deny_enh, *deny_text;
	uint64_t t_dot_us;             /* final dot sent to the backend */
	struct tcp_conn *tc;
	struct smtp_session *sm;
	struct rte_mbuf *in;  /* unconsumed received segments */
	uint32_t in_off;
	rte_be32_t client_ip;
	uint16_t client_port;
	char client[INET_ADDRSTRLEN];
	char helo[256];
	bool esmtp;
	uint64_t t_start_us;

	/* Transaction. */
	int pool;             /* -1 until the first RCPT */
	struct gw_be *be;     /* backend of this transaction */
	bool be_sticky;       /* PROXY v2: backend bound to this client */
	bool txn_failed;      /* backend died: everything now gets 4xx */
	bool mail_sent;       /* relay_client_mail() done on be */
	bool mail_failed;     /* backend refused MAIL: reply kept below */
	struct relay_reply_copy {
		uint16_t code;
		char enh[16];
		char text[256];
	} mail_reply;
	enum gw_wait wait;
	char pend_rcpt[520];  /* RCPT waiting for the backend to be READY */
	char pend_rcpt_params[160];
	bool pend_rcpt_queued;
	int md_job;           /* Maildir job, -1 none */
	bool md_committed;
	bool md_failed;
	int md_status;
	bool body_discard;    /* swallow the body (transaction failed) */
	char from[520];
	char mail_params[200];
	uint32_t nrcpt_ok, nrcpt_bad;
	char rcpt_log[GW_MAX_LOG_RCPT][128];
	uint64_t t_mail_us;
	uint64_t size;
	char backend_name[32];
};

enum gw_be_state {
	BE_FREE = 0,
	BE_CONNECTING,       /* tcp_connect issued */
	BE_UP,               /* TCP up; relay client drives the protocol */
};

struct gw_be {
	enum gw_be_state state;
	bool dirty;
	bool dead;           /* TCP gone: release in gw_run */
	bool closing;
	bool probe;          /* active health check connection */
	bool ready;          /* RELAY_EV_READY seen since last txn */
	bool idle;           /* parked in the pool's idle cache */
	bool counted;        /* relay_server_opened() done */
	bool eof;            /* relay_client_eof() done */
	bool reuse_check;    /* reused from the cache, no reply yet in this
				transaction: a failure now is retried on a
				fresh connection */
	bool xclient_used;   /* an XCLIENT identity was applied */
	struct gw_be *next_dirty;
	struct gw_core *gc;
	struct gw_pset *ps;  /* pools srv and pool index into */
	uint32_t idx;
	uint32_t srv;
	uint32_t pool;
	struct tcp_conn *tc;
	struct relay_client *rc;
	struct gw_sess *owner;
	uint32_t owner_gen;  /* owner->gen when it took b */
	struct rte_mbuf *in;
	uint32_t in_off;
	char name[32];
};

/* A limit changed at run time (mxgatectl limit KEY VALUE). */
struct gw_override {
	char key[120];
	uint32_t value;
};

/* A backend taken out of service or put back at run time. */
struct gw_bover {
	char name[120];
	bool down;
};

/* Effective limits of one listener of the current snapshot: its
 * configured values with the pushed overrides applied. */
struct gw_eff {
	uint32_t max_conn, per_ip, rate, msgs;
};

#define GW_MAX_OVERRIDES 64
/* Pushed blocks/allows per core: rte_lpm with a tbl8 group reserved per
 * entry (each may be a host in a /24 of its own): about 64 MiB + 1.1 KiB
 * an entry of DPDK memory per core. */

struct gw_core {
	struct gw_global *gw;
	uint16_t core;
	struct net_stack *st;
	struct mxg_snapshot *snap;   /* adopted policy (core ref held) */
	struct gw_pset *ps;          /* current pools */
	struct gw_pset *ps_retired;
	struct gw_eff *eff;          /* per listener of snap */
	uint32_t eff_cap;
	struct gw_rule_eff {
		uint32_t per_minute, burst;
	} *rule_eff;                 /* per rule of snap */
	uint32_t rule_eff_cap;
	struct pol_block *blocks;    /* pushed blocks/allows */
	struct pol_domains *dom_over;/* pushed domain changes */
	struct pol_rl *rl;           /* rate-limit buckets */
	struct pol_conns *ipc;       /* connections per client IP */
	struct gw_override over[GW_MAX_OVERRIDES];
	uint32_t n_over;
	struct gw_bover bover[GW_MAX_OVERRIDES];
	uint32_t n_bover;
	bool draining;
	uint8_t listening[65536 / 8];
	volatile uint64_t push_seq, push_lat_us, generation;
	/* the last push this core could not apply, and why (-errno) */
	volatile uint64_t push_fail_seq;
	volatile int32_t push_fail_err;
	uint64_t lat[GW_LAT_BUCKETS];
	uint64_t lat_sum_us;
	struct gw_sess *sess;
	uint8_t *smtp_mem;
	uint32_t free_sess;    /* index list through next_free */
	uint32_t *sess_next_free;
	struct gw_be *be;
	uint8_t *relay_mem;
	struct maildir *md;
	uint32_t md_inflight;
	struct gw_sess *dirty_s;
	struct gw_be *dirty_b;
	bool running;
	uint64_t now_us;
	uint64_t last_scan_us;
	uint32_t sid_seq;
	uint32_t sid_epoch;
	struct rte_ring *log;
	struct rte_mempool *log_pool;
	struct gw_stats stats;
	uint8_t scratch[16384];
};

#define NO_FREE UINT32_MAX


static inline uint64_t now_ms(const struct gw_core *gc)
{
	return gc->now_us / 1000;
}

/* ------------------------------------------------------------ logging */

/* One line into the core's log ring; never blocks: a full ring or an
 * empty record pool drops the line and counts it. */
static void __attribute__((format(printf, 2, 3)))
gw_log(struct gw_core *gc, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int n;

	if (!gc->log || rte_mempool_get(gc->log_pool, (void **)&line) != 0) {
		gc->stats.log_dropped++;
		return;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(line, GW_LOG_LINE, "ts=%lld.%03ld core=%u ",
			     (long long)ts.tv_sec, ts.tv_nsec / 1000000,
			     gc->core);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, GW_LOG_LINE - (size_t)n, fmt, ap);
	va_end(ap);
	if (rte_ring_enqueue(gc->log, line) != 0) {
		rte_mempool_put(gc->log_pool, line);
		gc->stats.log_dropped++;
	}
}

/* Quotes s for a key="value" field: drops control characters and quotes. */
static const char *logq(char *buf, size_t len, const char *s)
{
	size_t j = 0;

	for (size_t i = 0; s && s[i] && j + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[j++] = (c < 0x20 || c == '"' || c == 0x7f) ? ' ' : (char)c;
	}
	buf[j] = '\0';
	return buf;
}

/* Received segments held between feeds are detached one by one (the
 * chain head's pkt_len/nb_segs are not maintained), so they are freed one
 * by one too. */
static void segs_free(struct rte_mbuf **in)
{
	while (*in) {
		struct rte_mbuf *n = (*in)->next;

		(*in)->next = NULL;
		rte_pktmbuf_free_seg(*in);
		*in = n;
	}
}

/* Drop the head segment once fully consumed; the next becomes the head. */
static void seg_next(struct rte_mbuf **in, uint32_t *off)
{
	struct rte_mbuf *next = (*in)->next;

	(*in)->next = NULL;
	rte_pktmbuf_free_seg(*in);
	*in = next;
	*off = 0;
}

/* ------------------------------------------------------------ dirty lists */

static void run(struct gw_core *gc);

static void sess_dirty(struct gw_sess *s)
{
	if (s->dirty || !s->used)
		return;
	s->dirty = true;
	s->next_dirty = s->gc->dirty_s;
	s->gc->dirty_s = s;
}

static void be_dirty(struct gw_be *b)
{
	if (b->dirty || b->state == BE_FREE)
		return;
	b->dirty = true;
	b->next_dirty = b->gc->dirty_b;
	b->gc->dirty_b = b;
}

/* ------------------------------------------------------------ verdicts */

static void verdict(struct gw_sess *s, enum smtp_verdict_kind k, uint16_t code,
		    const char *enh, const char *text)
{
	struct smtp_verdict v = {.kind = k, .code = code, .enh = enh,
				 .text = text};

	(void)smtp_session_verdict(s->sm, &v);
	sess_dirty(s);
}

static void verdict_reply(struct gw_sess *s, const struct relay_reply *r)
{
	enum smtp_verdict_kind k = r->code >= 200 && r->code < 400
					   ? SMTP_V_ACCEPT
					   : SMTP_V_REJECT;

	verdict(s, k, r->code, r->enh[0] ? r->enh : NULL, r->text);
}

static void tempfail(struct gw_sess *s, const char *enh, const char *text)
{
	verdict(s, SMTP_V_REJECT, 451, enh, text);
}

/* ------------------------------------------------------------ snapshots */

/* Per-core references on a snapshot (snapshot.h): written by this core
 * only, read by the main lcore before it frees a retired snapshot. */
static void snap_ref(struct gw_core *gc, struct mxg_snapshot *sn)
{
	__atomic_store_n(&sn->refs[gc->core].n, sn->refs[gc->core].n + 1,
			 __ATOMIC_RELEASE);
}

static void snap_unref(struct gw_core *gc, struct mxg_snapshot *sn)
{
	__atomic_store_n(&sn->refs[gc->core].n, sn->refs[gc->core].n - 1,
			 __ATOMIC_RELEASE);
}

static void pset_free(struct gw_core *gc, struct gw_pset *ps)
{
	relay_pools_destroy(ps->rp);
	snap_unref(gc, ps->snap);
	free(ps);
}

/* One user of ps is done with it; a retired set nobody uses is freed. */
static void pset_put(struct gw_core *gc, struct gw_pset *ps)
{
	ps->users--;
	if (!ps->retired || ps->users > 0)
		return;
	for (struct gw_pset **pp = &gc->ps_retired; *pp; pp = &(*pp)->next)
		if (*pp == ps) {
			*pp = ps->next;
			break;
		}
	pset_free(gc, ps);
}

static void bover_apply(struct gw_core *gc, struct gw_pset *ps,
			const struct gw_bover *o);

static struct gw_pset *pset_new(struct gw_core *gc, struct mxg_snapshot *sn)
{
	struct gw_pset *ps = calloc(1, sizeof(*ps));
	int e = 0;

	if (!ps)
		return NULL;
	ps->rp = relay_pools_create(&sn->rpc, &e);
	if (!ps->rp) {
		free(ps);
		return NULL;
	}
	ps->snap = sn;
	ps->fp = sn->pools_fp;
	snap_ref(gc, sn);
	for (uint32_t i = 0; i < gc->n_bover; i++)
		bover_apply(gc, ps, &gc->bover[i]);
	return ps;
}

/* Make s use the core's current snapshot and pools for its next
 * transaction (DESIGN 6: a transaction keeps the snapshot it began with).
 * A session whose listener is gone from the new snapshot keeps its old
 * one; a sticky (PROXY) backend keeps its pool set. */
static void sess_adopt(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->snap != gc->snap) {
		const struct gw_listener *l =
			mxg_snapshot_listener(gc->snap, s->lport);

		if (l) {
			snap_ref(gc, gc->snap);
			snap_unref(gc, s->snap);
			s->snap = gc->snap;
			s->lst = l;
		}
	}
	if (s->ps != gc->ps && !s->be) {
		gc->ps->users++;
		pset_put(gc, s->ps);
		s->ps = gc->ps;
	}
}

/* ------------------------------------------------------------ backends */

static const struct tcp_callbacks be_cb;
static struct gw_be *sess_get_backend(struct gw_sess *s, uint32_t pool);

static struct gw_be *be_alloc(struct gw_core *gc)
{
	for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
		struct gw_be *b = &gc->be[i];

		/* a released slot may still be linked on the dirty list
		 * until run() walks past it: reusing it then would cut the
		 * list */
		if (b->state == BE_FREE && !b->dirty) {
			memset(b, 0, sizeof(*b));
			b->gc = gc;
			b->idx = i;
			return b;
		}
	}
	return NULL;
}

/* Open a new backend connection to server srv of pool. */
static struct gw_be *be_open(struct gw_core *gc, struct gw_pset *ps,
			     uint32_t pool, uint32_t srv,
			     const struct gw_sess *for_sess)
{
	const struct gw_pool *gp = &ps->snap->pools[pool];
	struct relay_server_info si;
	struct relay_proxy_addr pa;
	struct gw_be *b = be_alloc(gc);
	struct in_addr a;
	char ip[INET_ADDRSTRLEN];

	if (!b)
		return NULL;
	relay_server_get_info(ps->rp, srv, &si);
	/* No session (health check): all-zero addresses, which the PROXY v2
	 * encoder sends as the LOCAL command. */
	memset(&pa, 0, sizeof(pa));
	if (for_sess) {
		pa.src_addr = rte_be_to_cpu_32(for_sess->client_ip);
		pa.src_port = for_sess->client_port;
		pa.dst_addr = rte_be_to_cpu_32(gc->gw->our_ip);
		pa.dst_port = for_sess->lst->port;
	}
	b->rc = relay_client_init(gc->relay_mem + (size_t)b->idx *
						   gc->gw->relay_mem,
				  gc->gw->relay_mem, &gp->rc,
				  gp->rc.client_info == RELAY_CINFO_PROXY ? &pa
									  : NULL,
				  now_ms(gc));
	if (!b->rc)
		return NULL;
	b->pool = pool;
	b->srv = srv;
	b->ps = ps;
	ps->users++;
	a.s_addr = rte_cpu_to_be_32(si.addr);
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(b->name, sizeof(b->name), "%s:%u", ip, si.port);
	if (tcp_connect(gc->st, a.s_addr, si.port, &be_cb, b, &b->tc) < 0) {
		b->rc = NULL;
		b->ps = NULL;
		pset_put(gc, ps);
		return NULL;
	}
	b->state = BE_CONNECTING;
	relay_server_opened(ps->rp, srv);
	b->counted = true;
	gc->stats.backend_connects++;
	gc->stats.backend_live++;
	return b;
}

/* Forget a backend: its TCP connection is gone or being aborted. */
static void be_release(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	if (b->counted)
		relay_server_closed(b->ps->rp, b->srv);
	segs_free(&b->in);
	gc->stats.backend_live--;
	b->state = BE_FREE;
	if (b->ps) {
		struct gw_pset *ps = b->ps;

		b->ps = NULL;
		pset_put(gc, ps);
	}
}

/* Close the backend's TCP connection after its output is flushed. */
static void be_close(struct gw_be *b, bool abort_now)
{
	if (b->tc == NULL || b->closing)
		return;
	b->closing = true;
	if (abort_now) {
		struct tcp_conn *tc = b->tc;

		b->tc = NULL;
		tcp_abort(tc);
		b->dead = true;
		be_dirty(b);
	} else {
		tcp_close(b->tc);
	}
}

/* The transaction on b is over (success, RSET, or the session left): park
 * b in the idle cache, or QUIT it. */
static void be_detach(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	const struct gw_pool *gp = &b->ps->snap->pools[b->pool];
	void *evicted = NULL;

	b->owner = NULL;
	if (b->dead || b->closing)
		return;
	/* A connection that carries one client's XCLIENT identity may only
	 * be reused if the backend still offers XCLIENT to overwrite it
	 * (Postfix stops offering it once the identity is no longer an
	 * authorised host): else the next client would inherit it. */
	if (relay_client_state(b->rc) == RELAY_ST_READY &&
	    gp->rc.client_info != RELAY_CINFO_PROXY &&
	    !(b->xclient_used && !relay_client_caps(b->rc)->xclient) &&
	    !b->ps->retired &&
	    relay_pool_idle_put(b->ps->rp, b->srv, b, now_ms(gc),
				&evicted) == 0) {
		b->idle = true;
		if (evicted) {
			struct gw_be *e = evicted;

			e->idle = false;
			relay_client_quit(e->rc);
			be_dirty(e);
		}
		return;
	}
	if (relay_client_quit(b->rc) < 0)
		be_close(b, false);
	be_dirty(b);
}

/* Take b out of its server's idle cache. False when the cache no longer
 * hands it out (too old): it then comes back through idle_expire. */
static bool idle_remove(struct gw_be *b)
{
	struct gw_core *gc = b->gc;
	void *held[64];
	unsigned n = 0;
	bool found = false;
	void *x;

	while (n < 64 &&
	       (x = relay_pool_idle_take(b->ps->rp, b->srv, now_ms(gc)))) {
		if (x == b) {
			found = true;
			break;
		}
		held[n++] = x;
	}
	while (n > 0) {
		void *ev = NULL;

		relay_pool_idle_put(b->ps->rp, b->srv, held[--n], now_ms(gc),
				    &ev);
	}
	if (found)
		b->idle = false;
	return found;
}

/* s takes b for its transaction. */
static void be_own(struct gw_be *b, struct gw_sess *s)
{
	b->owner = s;
	b->owner_gen = s->gen;
}

/* The session b works for, or NULL. An owner whose slot was released or
 * reused (generation), or which no longer points back at b, is never
 * followed: that is a broken invariant, counted and logged, and b is
 * let go of (issue 11: a stale owner used to fail another client's
 * transaction). */
static struct gw_sess *be_owner(struct gw_be *b)
{
	struct gw_sess *s = b->owner;

	if (!s)
		return NULL;
	if (s->used && s->gen == b->owner_gen && s->be == b)
		return s;
	b->gc->stats.be_invariant_errors++;
	gw_log(b->gc, "event=invariant backend=%s what=stale_owner", b->name);
	b->owner = NULL;
	return NULL;
}

/* Nobody owns b any more: the one way a backend connection stops serving
 * a session (issue 11). Clean (READY): the idle cache or QUIT
 * (be_detach). A transaction open: RSET, parked on its reply
 * (RELAY_EV_RSET), or closed once DATA was sent. Failed: aborted now.
 * Connecting, greeting, RSET or QUIT in flight: left to finish, each
 * under a relay deadline, and parked (RELAY_EV_READY, RELAY_EV_RSET) or
 * closed by its outcome. Dead or closing: gw_run releases it. */
static void be_let_go(struct gw_be *b)
{
	b->owner = NULL;
	if (b->dead || b->closing || b->state != BE_UP)
		return;
	switch (relay_client_state(b->rc)) {
	case RELAY_ST_TXN:
	case RELAY_ST_BODY:
		if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
			be_close(b, false);
		be_dirty(b);
		return;
	case RELAY_ST_FAILED:
		be_close(b, true);
		return;
	case RELAY_ST_CLOSED:
		be_dirty(b); /* be_pump flushes and closes it */
		return;
	case RELAY_ST_CONNECTING:
	case RELAY_ST_SETUP:
	case RELAY_ST_RSET:
	case RELAY_ST_QUIT:
		be_dirty(b);
		return;
	default: /* READY, EOD */
		be_detach(b);
		return;
	}
}

/* s is done with its backend connection (s->be may be NULL). */
static void sess_put_backend(struct gw_sess *s)
{
	struct gw_be *b = s->be;

	s->be = NULL;
	s->be_sticky = false;
	if (b)
		be_let_go(b);
}

/* ------------------------------------------------------------ sessions */

static void sess_txn_reset(struct gw_sess *s)
{
	s->pool = -1;
	s->txn_failed = false;
	s->mail_sent = false;
	s->mail_failed = false;
	s->wait = W_NONE;
	s->pend_rcpt_queued = false;
	s->md_job = -1;
	s->md_committed = false;
	s->md_failed = false;
	s->body_discard = false;
	s->nrcpt_ok = s->nrcpt_bad = 0;
	s->size = 0;
	s->backend_name[0] = '\0';
}

/* Abandon whatever the next hop holds for the current transaction. */
static void sess_txn_abort(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->md_job >= 0 && !s->md_committed) {
		maildir_abort(gc->md, s->md_job);
		/* the -ECANCELED completion still arrives and is dropped */
		s->md_job = -1;
	}
	if (s->be) {
		struct gw_be *b = s->be;

		if (!s->be_sticky || b->dead || b->closing ||
		    b->state != BE_UP) {
			sess_put_backend(s);
		} else if (relay_client_state(b->rc) == RELAY_ST_TXN ||
			   relay_client_state(b->rc) == RELAY_ST_BODY) {
			/* a sticky (PROXY) connection stays with its client
			 * through the RSET, or goes when it must close */
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
				sess_put_backend(s);
			else
				be_dirty(b);
		} else if (relay_client_state(b->rc) == RELAY_ST_EOD ||
			   relay_client_done(b->rc) ||
			   relay_client_state(b->rc) == RELAY_ST_QUIT) {
			sess_put_backend(s);
		}
	}
	sess_txn_reset(s);
}

static void log_message(struct gw_sess *s, const char *outcome,
			const struct relay_reply *r, uint16_t code,
			const char *enh, const char *text)
{
	char q1[300], q2[300], q3[300], rc[300], rl[600];
	size_t off = 0;

	rl[0] = '\0';
	for (uint32_t i = 0; i < s->nrcpt_ok && i < GW_MAX_LOG_RCPT; i++)
		off += (size_t)snprintf(rl + off, sizeof(rl) - off, "%s<%s>",
					i ? "," : "", s->rcpt_log[i]);
	if (r)
		snprintf(rc, sizeof(rc), "%u %s %s", r->code, r->enh,
			 r->text ? r->text : "");
	else
		snprintf(rc, sizeof(rc), "%u %s %s", code, enh ? enh : "",
			 text ? text : "");
	gw_log(s->gc,
	       "event=message sid=%s client=%s helo=\"%s\" listener=%s "
	       "from=<%s> rcpts=%u to=%s size=%llu backend=%s reply=\"%s\" "
	       "outcome=%s ms=%llu",
	       s->sid, s->client, logq(q1, sizeof(q1), s->helo),
	       s->lst->cl->name, logq(q2, sizeof(q2), s->from), s->nrcpt_ok,
	       rl[0] ? rl : "-", (unsigned long long)s->size,
	       s->backend_name[0] ? s->backend_name : "-",
	       logq(q3, sizeof(q3), rc), outcome,
	       (unsigned long long)((s->gc->now_us - s->t_mail_us) / 1000));
}

/* Count and log the final answer to a transaction. */
static void txn_done(struct gw_sess *s, uint16_t code,
		     const struct relay_reply *r, const char *enh,
		     const char *text)
{
	struct gw_core *gc = s->gc;
	const char *outcome;

	if (code >= 200 && code < 300) {
		gc->stats.messages_accepted++;
		outcome = "accepted";
	} else if (code >= 500) {
		gc->stats.messages_rejected++;
		outcome = "rejected";
	} else {
		gc->stats.messages_tempfail++;
		outcome = "tempfail";
	}
	log_message(s, outcome, r, code, enh, text);
}

/* Backend failed under a transaction: every waiting request of s gets a
 * 4xx; the rest of the transaction is 4xx too (never 250). */
static void sess_backend_failed(struct gw_sess *s, const char *why)
{
	s->txn_failed = true;
	sess_put_backend(s);
	switch (s->wait) {
	case W_RCPT:
		s->wait = W_NONE;
		s->gc->stats.rcpts_rejected++;
		tempfail(s, "4.4.2", why);
		break;
	case W_DATA:
		s->wait = W_NONE;
		tempfail(s, "4.4.2", why);
		break;
	case W_DATA_END:
		s->wait = W_NONE;
		txn_done(s, 451, NULL, "4.4.2", why);
		tempfail(s, "4.4.2", why);
		sess_txn_reset(s);
		break;
	default:
		/* in the body: swallow it, answer 451 at end of data */
		s->body_discard = true;
		break;
	}
}

/* Build MAIL parameters the backend offers. */
static void mail_params(struct gw_sess *s, const struct relay_caps *caps,
			char *buf, size_t len)
{
	size_t off = 0;
	char *p = s->mail_params;

	buf[0] = '\0';
	/* mail_params holds "SIZE=n BODY=x SMTPUTF8 RET=x ENVID=x" as the
	 * client gave them; keep those the backend supports. */
	while (*p) {
		char tok[160];
		size_t n = strcspn(p, " ");
		bool keep = false;

		snprintf(tok, sizeof(tok), "%.*s", (int)RTE_MIN(n, 159u), p);
		if (!strncmp(tok, "SIZE=", 5))
			keep = caps->size;
		else if (!strncmp(tok, "BODY=", 5))
			keep = caps->eightbitmime;
		else if (!strcmp(tok, "SMTPUTF8"))
			keep = caps->smtputf8;
		else if (!strncmp(tok, "RET=", 4) || !strncmp(tok, "ENVID=", 6))
			keep = caps->dsn;
		if (keep && off + n + 2 < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? " " : "", tok);
		p += n;
		while (*p == ' ')
			p++;
	}
}

/* The backend of s is READY: send MAIL (+XCLIENT) and the waiting RCPT. */
static void sess_backend_ready(struct gw_sess *s)
{
	struct gw_be *b = s->be;
	const struct relay_caps *caps = relay_client_caps(b->rc);
	struct relay_xclient xc = {
		.addr = s->client,
		.port = s->client_port,
		.name = "[UNAVAILABLE]",
		.helo = s->helo[0] ? s->helo : NULL,
		.proto = s->esmtp ? "ESMTP" : "SMTP",
	};
	struct relay_mail m = {.sender = s->from, .xclient = &xc};
	char params[200], rparams[160];

	if (!s->mail_sent) {
		mail_params(s, caps, params, sizeof(params));
		m.params = params[0] ? params : NULL;
		if (caps->xclient)
			b->xclient_used = true;
		if (relay_client_mail(b->rc, &m) < 0) {
			sess_backend_failed(s, "Backend refused the "
					       "transaction");
			return;
		}
		s->mail_sent = true;
	}
	if (s->wait == W_RCPT && !s->pend_rcpt_queued) {
		rparams[0] = '\0';
		if (caps->dsn && s->pend_rcpt_params[0])
			snprintf(rparams, sizeof(rparams), "%s",
				 s->pend_rcpt_params);
		if (relay_client_rcpt(b->rc, s->pend_rcpt,
				      rparams[0] ? rparams : NULL) < 0) {
			sess_backend_failed(s, "Backend refused the "
					       "recipient");
			return;
		}
		s->pend_rcpt_queued = true;
	}
	be_dirty(b);
}

/* ------------------------------------------------------------ backend pump */

static void be_handle_event(struct gw_be *b, const struct relay_event *ev)
{
	struct gw_core *gc = b->gc;
	struct gw_sess *s = be_owner(b);

	switch (ev->type) {
	case RELAY_EV_READY:
		b->ready = true;
		if (b->probe) {
			relay_server_check_result(b->ps->rp, b->srv, true,
						  now_ms(gc));
			relay_client_quit(b->rc);
			return;
		}
		relay_server_report(b->ps->rp, b->srv, true, now_ms(gc));
		if (s)
			sess_backend_ready(s);
		else
			be_detach(b);
		return;
	case RELAY_EV_MAIL:
		b->reuse_check = false;
		if (!s)
			return;
		if (ev->reply.code / 100 != 2) {
			/* Keep the refusal: it answers this RCPT and every
			 * later one of the transaction. */
			s->mail_failed = true;
			s->mail_reply.code = ev->reply.code;
			snprintf(s->mail_reply.enh, sizeof(s->mail_reply.enh),
				 "%s", ev->reply.enh);
			snprintf(s->mail_reply.text,
				 sizeof(s->mail_reply.text), "%s",
				 ev->reply.text ? ev->reply.text : "");
		}
		return;
	case RELAY_EV_RCPT:
		if (!s || s->wait != W_RCPT)
			return;
		s->wait = W_NONE;
		s->pend_rcpt_queued = false;
		if (s->mail_failed) {
			/* MAIL refused: the RCPT reply (503) is not the
			 * client's business; give it the MAIL reply. */
			gc->stats.rcpts_rejected++;
			verdict(s, SMTP_V_REJECT, s->mail_reply.code,
				s->mail_reply.enh[0] ? s->mail_reply.enh
						     : NULL,
				s->mail_reply.text);
			return;
		}
		if (ev->reply.code / 100 == 2) {
			if (s->nrcpt_ok < GW_MAX_LOG_RCPT)
				snprintf(s->rcpt_log[s->nrcpt_ok], 128, "%.127s",
					 s->pend_rcpt);
			s->nrcpt_ok++;
			gc->stats.rcpts_accepted++;
		} else {
			s->nrcpt_bad++;
			gc->stats.rcpts_rejected++;
		}
		verdict_reply(s, &ev->reply);
		return;
	case RELAY_EV_DATA:
		if (!s || s->wait != W_DATA)
			return;
		s->wait = W_NONE;
		if (ev->reply.code == 354) {
			verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		} else {
			struct relay_reply r = ev->reply;

			/* DATA refused: the transaction is dead at the
			 * backend; abort it there and tell the client. */
			if (r.code < 400)
				r.code = 451;
			verdict_reply(s, &r);
			s->txn_failed = true;
			if (relay_client_abort(b->rc) == RELAY_ABORT_CLOSE)
				sess_put_backend(s);
		}
		return;
	case RELAY_EV_WRITABLE:
		if (s)
			sess_dirty(s);
		return;
	case RELAY_EV_DATA_END:
		/* any reply proves the server alive */
		relay_server_report(b->ps->rp, b->srv, true, now_ms(gc));
		if (!s || s->wait != W_DATA_END)
			return;
		s->wait = W_NONE;
		{
			static const uint32_t bounds[] = GW_LAT_BOUNDS;
			uint64_t us = gc->now_us - s->t_dot_us;
			unsigned k = 0;

			while (k < RTE_DIM(bounds) && us > bounds[k] * 1000ULL)
				k++;
			gc->lat[k]++;
			gc->lat_sum_us += us;
		}
		txn_done(s, ev->reply.code, &ev->reply, NULL, NULL);
		verdict_reply(s, &ev->reply);
		if (!s->be_sticky) {
			/* RSET between transactions (DESIGN 5): owed now,
			 * sent ahead of the next MAIL in the same pipelined
			 * group (no round trip of its own); the connection is
			 * parked at once. */
			(void)relay_client_rset_lazy(b->rc);
			sess_put_backend(s);
		}
		sess_txn_reset(s);
		return;
	case RELAY_EV_RSET:
		b->reuse_check = false;
		/* An aborted transaction's RSET: the connection is reusable
		 * (unless a sticky session still holds it). */
		if (!s)
			be_detach(b);
		else if (s->wait == W_RCPT)
			sess_backend_ready(s);
		return;
	case RELAY_EV_CLOSED:
		be_close(b, false);
		return;
	case RELAY_EV_ERROR: {
		char why[200];

		gc->stats.backend_errors++;
		if (b->probe)
			relay_server_check_result(b->ps->rp, b->srv, false,
						  now_ms(gc));
		else
			relay_server_report(b->ps->rp, b->srv, false,
					    now_ms(gc));
		snprintf(why, sizeof(why),
			 "Backend %s failed (%s at %s), try again later",
			 b->name, relay_error_name(ev->error),
			 relay_step_name(ev->step));
		gw_log(gc, "event=backend_error backend=%s error=%s step=%s "
			   "code=%u sid=%s",
		       b->name, relay_error_name(ev->error),
		       relay_step_name(ev->step), ev->reply.code,
		       s ? s->sid : "-");
		if (s && b->reuse_check && s->wait == W_RCPT) {
			/* A cached connection died before its RSET answer:
			 * nothing of the transaction reached it; retry the
			 * RCPT on a fresh connection. */
			b->owner = NULL;
			s->mail_sent = false;
			s->mail_failed = false;
			s->pend_rcpt_queued = false;
			s->be = sess_get_backend(s, b->pool);
			be_close(b, true);
			if (!s->be) {
				sess_backend_failed(s, why);
				return;
			}
			snprintf(s->backend_name, sizeof(s->backend_name),
				 "%s", s->be->name);
			if (relay_client_state(s->be->rc) == RELAY_ST_READY)
				sess_backend_ready(s);
			return;
		}
		be_close(b, true);
		if (s)
			sess_backend_failed(s, why);
		return;
	}
	default:
		return;
	}
}

/* Feed backend bytes, handle events, write output. */
static void be_pump(struct gw_be *b)
{
	struct gw_core *gc = b->gc;

	if (b->state != BE_UP || b->dead)
		return;
	relay_client_time(b->rc, now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct relay_event *ev;
		bool progress = false;

		/* input */
		for (;;) {
			size_t n, len;

			if (!b->in && b->tc)
				b->in = tcp_recv_chain(b->tc, 65536), b->in_off = 0;
			if (!b->in)
				break;
			len = b->in->data_len - b->in_off;
			n = relay_client_feed(
				b->rc,
				rte_pktmbuf_mtod_offset(b->in, uint8_t *,
							b->in_off),
				len);
			if (n)
				progress = true;
			b->in_off += (uint32_t)n;
			if (b->in_off < b->in->data_len)
				break;
			seg_next(&b->in, &b->in_off);
		}
		/* events */
		while ((ev = relay_client_event(b->rc)) != NULL) {
			be_handle_event(b, ev);
			relay_client_event_pop(b->rc);
			progress = true;
			if (b->dead)
				return;
		}
		/* output */
		if (b->tc) {
			size_t len;
			const uint8_t *out = relay_client_output(b->rc, &len);

			if (len) {
				ssize_t w = tcp_send(b->tc, out, len);

				if (w > 0) {
					relay_client_output_consume(
						b->rc, (size_t)w);
					progress = true;
				}
			}
		}
		if (!progress)
			break;
	}
	if (relay_client_done(b->rc) && b->tc) {
		size_t len;

		(void)relay_client_output(b->rc, &len);
		if (len == 0)
			be_close(b, relay_client_state(b->rc) ==
					    RELAY_ST_FAILED);
	}
}

/* TCP callbacks of backend connections. */
static void be_connected(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	b->state = BE_UP;
	relay_client_connected(b->rc);
	be_dirty(b);
	run(b->gc);
}

static void be_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	be_dirty(ctx);
	run(((struct gw_be *)ctx)->gc);
}

static void be_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gw_be *b = ctx;

	RTE_SET_USED(c);
	be_pump(b); /* take what is buffered first */
	if (b->state == BE_UP && !b->dead && !b->eof) {
		b->eof = true;
		relay_client_eof(b->rc);
		be_dirty(b);
	}
	if (!b->closing)
		be_close(b, false);
	run(b->gc);
}

static void be_gone(struct gw_be *b, int err)
{
	b->tc = NULL;
	if (!b->dead) {
		if (b->state == BE_CONNECTING) {
			/* relay client never started: raise its error
			 * through eof for one code path */
			b->state = BE_UP;
		}
		if (!b->eof) {
			b->eof = true;
			relay_client_eof(b->rc);
		}
		b->state = BE_UP;
		be_pump(b);
	}
	RTE_SET_USED(err);
	b->dead = true;
	be_dirty(b);
	run(b->gc);
}

static void be_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	be_gone(ctx, 0);
}

static void be_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	be_gone(ctx, err);
}

static const struct tcp_callbacks be_cb = {
	.connected = be_connected,
	.readable = be_readable,
	.writable = be_readable,
	.peer_closed = be_peer_closed,
	.closed = be_closed,
	.reset = be_reset,
};

/* ------------------------------------------------------------ policy */

/* Effective limits of listener l: the core's table when l belongs to the
 * current snapshot (overrides applied), else its configured values. */
static struct gw_eff listener_eff(const struct gw_core *gc,
				  const struct gw_listener *l)
{
	const struct mxg_snapshot *sn = gc->snap;
	struct gw_eff e;

	if (l >= sn->listeners && l < sn->listeners + sn->n_listeners &&
	    l->idx < gc->eff_cap)
		return gc->eff[l->idx];
	e.max_conn = l->cl->max_connections;
	e.per_ip = l->cl->max_connections_per_ip;
	e.rate = l->cl->connection_rate_per_ip;
	e.msgs = l->cl->max_messages_per_connection;
	return e;
}

static void rule_params(const struct gw_core *gc,
			const struct mxg_snapshot *sn, uint32_t i,
			uint32_t *per_minute, uint32_t *burst)
{
	if (sn == gc->snap && i < gc->rule_eff_cap) {
		*per_minute = gc->rule_eff[i].per_minute;
		*burst = gc->rule_eff[i].burst;
	} else {
		*per_minute = sn->rules[i].per_minute;
		*burst = sn->rules[i].burst;
	}
}

/* Rate-limit rules of sn for event what on listener l: every rule whose
 * key can be formed takes one token (cost). False (and the rule's name in
 * *hit) when one is exhausted. Rules are checked in file order and stop at
 * the first refusal, so a refused event costs nothing in later rules. */
static bool rules_take(struct gw_core *gc, const struct mxg_snapshot *sn,
		       const struct gw_listener *l, enum ctl_rl_what what,
		       uint32_t ip, const char *sdom, size_t sdom_len,
		       const char *user, uint32_t cost, const char **hit)
{
	for (uint32_t i = 0; i < sn->n_rules; i++) {
		const struct gw_rule *r = &sn->rules[i];
		uint32_t key4, pm, burst;
		const void *key;
		size_t klen;

		if (r->what != what ||
		    (r->listener >= 0 && (uint32_t)r->listener != l->idx))
			continue;
		switch (r->key) {
		case CTL_RL_IP:
			key4 = ip;
			key = &key4;
			klen = 4;
			break;
		case CTL_RL_IP24:
			key4 = ip & 0xffffff00u;
			key = &key4;
			klen = 4;
			break;
		case CTL_RL_SENDER_DOMAIN:
			if (!sdom || sdom_len == 0)
				continue;
			key = sdom;
			klen = sdom_len;
			break;
		case CTL_RL_USER:
			if (!user || !user[0])
				continue;
			key = user;
			klen = strlen(user);
			break;
		default:
			continue;
		}
		rule_params(gc, sn, i, &pm, &burst);
		if (pm == 0)
			continue;
		if (!pol_rl_take(gc->rl, r->fp, key, klen, pm, burst, cost,
				 gc->now_us)) {
			*hit = r->name;
			return false;
		}
	}
	return true;
}

/* Fingerprint of a listener's connection_rate_per_ip bucket family. */
static uint64_t conn_rate_fp(const struct gw_listener *l)
{
	return pol_hash64(l->cl->name, strlen(l->cl->name), 0x636f6e6e72617465ULL);
}

enum conn_verdict { CONN_OK = 0, CONN_DENY, CONN_LIMIT, CONN_RATE };

/* Connection control (DESIGN 6), in order: pushed blocks and allows, the
 * listener's networks, the listener's allow/deny, the global allow/deny
 * (an allow entry is an exception inside a deny entry). */
static bool conn_denied(struct gw_core *gc, const struct gw_listener *l,
			uint32_t ip)
{
	const struct mxg_snapshot *sn = gc->snap;
	uint32_t v;

	switch (pol_block_lookup4(gc->blocks, ip, gc->now_us)) {
	case POL_ACL_DENY:
		return true;
	case POL_ACL_ALLOW:
		return false;
	default:
		break;
	}
	if (l->networks && pol_acl_lookup4(l->networks, ip, &v) < 0)
		return true;
	if (l->acl && pol_acl_lookup4(l->acl, ip, &v) == 0)
		return v == POL_ACL_DENY;
	if (sn->acl && pol_acl_lookup4(sn->acl, ip, &v) == 0)
		return v == POL_ACL_DENY;
	return false;
}

/* A refused connection does not hold a listener or per-IP slot while
 * its 421 is flushed and the close completes. */
static enum conn_verdict conn_uncount(struct gw_sess *s, uint32_t ip,
				      enum conn_verdict v)
{
	struct gw_core *gc = s->gc;

	if (s->cnt_lst)
		__atomic_sub_fetch(&gc->gw->lconns[s->lport], 1,
				   __ATOMIC_RELAXED);
	if (s->cnt_ip)
		pol_conns_dec(gc->ipc, ip);
	s->cnt_lst = s->cnt_ip = false;
	return v;
}

/* The limits at connect: listener total (all cores), per client IP,
 * connection rate per IP, rate rules on connections. Counts the
 * connection when it passes. */
static enum conn_verdict conn_limits(struct gw_sess *s, uint32_t ip,
				     const char **hit)
{
	struct gw_core *gc = s->gc;
	const struct gw_listener *l = s->lst;
	struct gw_eff e = listener_eff(gc, l);
	uint32_t *lc = &gc->gw->lconns[s->lport];

	if (e.max_conn) {
		uint32_t n = __atomic_add_fetch(lc, 1, __ATOMIC_RELAXED);

		if (n > e.max_conn) {
			__atomic_sub_fetch(lc, 1, __ATOMIC_RELAXED);
			return CONN_LIMIT;
		}
	} else {
		__atomic_add_fetch(lc, 1, __ATOMIC_RELAXED);
	}
	s->cnt_lst = true;
	if (!pol_conns_inc(gc->ipc, ip, e.per_ip))
		return conn_uncount(s, ip, CONN_LIMIT);
	s->cnt_ip = true;
	if (e.rate && !pol_rl_take(gc->rl, conn_rate_fp(l), &ip, 4, e.rate,
				   e.rate, 1, gc->now_us)) {
		*hit = "connection_rate_per_ip";
		return conn_uncount(s, ip, CONN_RATE);
	}
	if (!rules_take(gc, s->snap, l, CTL_RL_CONNECTIONS, ip, NULL, 0, NULL,
			1, hit))
		return conn_uncount(s, ip, CONN_RATE);
	return CONN_OK;
}

/* Restriction lists: reject wins; a non-empty accept list admits only
 * what it matches. */
static bool restricted(const struct gw_restrict *r, const struct pol_addr *a)
{
	if (r->reject && pol_addrlist_match(r->reject, a))
		return true;
	if (r->accept && !pol_addrlist_match(r->accept, a))
		return true;
	return false;
}

static bool may_relay(const struct gw_sess *s)
{
	uint32_t v;

	if (smtp_session_authenticated(s->sm) && s->lst->cl->relay_authenticated)
		return true;
	return s->snap->relay_nets &&
	       pol_acl_lookup4(s->snap->relay_nets,
			       rte_be_to_cpu_32(s->client_ip), &v) == 0 &&
	       v == POL_ACL_ALLOW;
}

/* MAIL FROM policy. Returns true when the verdict was given (refused). */
static bool mail_policy(struct gw_sess *s, const struct smtp_mail *m)
{
	struct gw_core *gc = s->gc;
	const struct gw_listener *l = s->lst;
	struct gw_eff e = listener_eff(gc, l);
	struct pol_addr a;
	const char *hit = NULL;
	bool authed = smtp_session_authenticated(s->sm);

	if (!authed && (l->cl->require_auth || !l->cl->allow_anonymous)) {
		gc->stats.mail_denied_auth++;
		verdict(s, SMTP_V_REJECT, 530, "5.7.0",
			"Authentication required");
		return true;
	}
	if (e.msgs && s->nmsgs >= e.msgs) {
		gc->stats.mail_denied_count++;
		gw_log(gc, "event=limit sid=%s client=%s limit="
			   "max_messages_per_connection value=%u",
		       s->sid, s->client, e.msgs);
		verdict(s, SMTP_V_CLOSE, 421, "4.7.0",
			"Too many messages in this connection, reconnect");
		return true;
	}
	pol_addr_parse(m->addr, m->addr_len, &a);
	/* RFC 5321 4.5.5: the null sender (bounces) is not restricted. */
	if (!m->null_sender &&
	    (restricted(&s->snap->senders, &a) || restricted(&l->senders, &a))) {
		gc->stats.mail_denied_sender++;
		verdict(s, SMTP_V_REJECT, 550, "5.7.1",
			"Sender address rejected: Access denied");
		return true;
	}
	if (!rules_take(gc, s->snap, l, CTL_RL_MESSAGES,
			rte_be_to_cpu_32(s->client_ip),
			m->null_sender ? NULL : a.domain, a.domain_len, NULL, 1,
			&hit)) {
		gc->stats.mail_rate_limited++;
		gw_log(gc, "event=rate_limited sid=%s client=%s rule=%s at=mail",
		       s->sid, s->client, hit ? hit : "-");
		verdict(s, SMTP_V_REJECT, 451, "4.7.1",
			"Message rate limit exceeded, try again later");
		return true;
	}
	return false;
}

/* RCPT TO policy: relay control, recipient restrictions, rate rules.
 * Returns true when the verdict was given (refused). */
static bool rcpt_policy(struct gw_sess *s, const struct smtp_rcpt *r)
{
	struct gw_core *gc = s->gc;
	struct pol_addr a;
	enum pol_rcpt_result res;
	const char *hit = NULL;
	int type = 0;

	pol_addr_parse(r->addr, r->addr_len, &a);
	res = pol_rcpt_decide(&a, s->snap->domains, gc->dom_over,
			      may_relay(s), &type);
	if (res == POL_RCPT_DENIED) {
		gc->stats.rcpt_denied_relay++;
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, 554, "5.7.1", "Relay access denied");
		return true;
	}
	if (restricted(&s->snap->recipients, &a) ||
	    restricted(&s->lst->recipients, &a)) {
		gc->stats.rcpt_denied_restrict++;
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, 550, "5.7.1",
			"Recipient address rejected: Access denied");
		return true;
	}
	{
		const char *sd = memrchr(s->from, '@', strlen(s->from));
		char dom[256];
		size_t dl = 0;

		/* the sender domain key, lower case like the MAIL check */
		if (sd) {
			sd++;
			while (sd[dl] && dl < sizeof(dom) - 1) {
				dom[dl] = (char)tolower((unsigned char)sd[dl]);
				dl++;
			}
			if (dl && dom[dl - 1] == '.')
				dl--;
		}
		if (!rules_take(gc, s->snap, s->lst, CTL_RL_RECIPIENTS,
				rte_be_to_cpu_32(s->client_ip),
				dl ? dom : NULL, dl, NULL, 1, &hit)) {
			gc->stats.rcpt_rate_limited++;
			gc->stats.rcpts_rejected++;
			gw_log(gc, "event=rate_limited sid=%s client=%s rule=%s "
				   "at=rcpt",
			       s->sid, s->client, hit ? hit : "-");
			verdict(s, SMTP_V_REJECT, 451, "4.7.1",
				"Recipient rate limit exceeded, try again "
				"later");
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ session pump */

/* Get a backend for s in pool: idle cached, else new. NULL: none. */
static struct gw_be *sess_get_backend(struct gw_sess *s, uint32_t pool)
{
	struct gw_core *gc = s->gc;
	struct gw_pset *ps = s->ps;
	const struct gw_pool *gp = &ps->snap->pools[pool];
	uint32_t srv;
	struct gw_be *b;
	int r;

	while (gp->rc.client_info != RELAY_CINFO_PROXY &&
	       (b = relay_pool_idle_take_any(ps->rp, pool, now_ms(gc),
					     &srv)) != NULL) {
		b->idle = false;
		if (b->dead || b->closing ||
		    relay_client_state(b->rc) != RELAY_ST_READY) {
			if (b->dead)
				be_release(b);
			continue;
		}
		/* A cached connection's RSET leads the next MAIL
		 * (relay_client_rset_lazy); one that died or refuses it is
		 * retried on a new connection before any reply of this
		 * transaction came (RELAY_EV_ERROR below). */
		b->reuse_check = true;
		be_own(b, s);
		gc->stats.backend_reused++;
		return b;
	}
	r = relay_pool_select(ps->rp, pool, now_ms(gc));
	if (r < 0)
		return NULL;
	b = be_open(gc, ps, pool, (uint32_t)r, s);
	if (b)
		be_own(b, s);
	return b;
}

static const char *rcpt_domain(const struct smtp_rcpt *r, size_t *len)
{
	const char *at = memrchr(r->addr, '@', r->addr_len);

	if (!at) {
		*len = 0;
		return "";
	}
	*len = r->addr_len - (size_t)(at + 1 - r->addr);
	return at + 1;
}

static void on_rcpt(struct gw_sess *s, const struct smtp_rcpt *r)
{
	struct gw_core *gc = s->gc;
	size_t dlen;
	const char *dom = rcpt_domain(r, &dlen);
	uint32_t pool = relay_pools_route(s->ps->rp, dom, dlen);
	const struct gw_pool *gp = &s->ps->snap->pools[pool];

	if (s->txn_failed) {
		gc->stats.rcpts_rejected++;
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (s->pool >= 0 && (uint32_t)s->pool != pool) {
		/* DESIGN 5: one pool per transaction. */
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, 452, "4.5.3",
			"Recipient goes to another destination: send it in "
			"its own transaction");
		return;
	}
	s->pool = (int)pool;
	if (gp->maildir) {
		if (s->nrcpt_ok < GW_MAX_LOG_RCPT)
			snprintf(s->rcpt_log[s->nrcpt_ok], 128, "%.*s",
				 (int)RTE_MIN(r->addr_len, 127), r->addr);
		s->nrcpt_ok++;
		gc->stats.rcpts_accepted++;
		snprintf(s->backend_name, sizeof(s->backend_name), "maildir");
		verdict(s, SMTP_V_ACCEPT, 250, "2.1.5", "Ok");
		return;
	}
	if (s->mail_failed) {
		gc->stats.rcpts_rejected++;
		verdict(s, SMTP_V_REJECT, s->mail_reply.code,
			s->mail_reply.enh[0] ? s->mail_reply.enh : NULL,
			s->mail_reply.text);
		return;
	}
	snprintf(s->pend_rcpt, sizeof(s->pend_rcpt), "%.*s", (int)r->addr_len,
		 r->addr);
	s->pend_rcpt_params[0] = '\0';
	if (r->notify || r->orcpt) {
		size_t off = 0;

		if (r->notify) {
			static const char *names[] = {"NEVER", "SUCCESS",
						      "FAILURE", "DELAY"};
			const char *sep = "NOTIFY=";

			for (int i = 0; i < 4; i++)
				if (r->notify & (1u << i)) {
					off += (size_t)snprintf(
						s->pend_rcpt_params + off,
						sizeof(s->pend_rcpt_params) -
							off,
						"%s%s", sep, names[i]);
					sep = ",";
				}
		}
		if (r->orcpt && off < sizeof(s->pend_rcpt_params))
			snprintf(s->pend_rcpt_params + off,
				 sizeof(s->pend_rcpt_params) - off,
				 "%sORCPT=%s", off ? " " : "", r->orcpt);
	}
	s->wait = W_RCPT;
	s->pend_rcpt_queued = false;
	if (s->be && !s->mail_sent &&
	    (s->be->pool != pool || s->be->ps != s->ps)) {
		/* a sticky (PROXY) backend of an earlier transaction belongs
		 * to another pool: never send this one there */
		sess_put_backend(s);
	}
	if (!s->be) {
		s->be = sess_get_backend(s, pool);
		if (!s->be) {
			s->wait = W_NONE;
			gc->stats.rcpts_rejected++;
			tempfail(s, "4.4.1",
				 "No backend available, try again later");
			return;
		}
		s->be_sticky = gp->rc.client_info == RELAY_CINFO_PROXY;
		snprintf(s->backend_name, sizeof(s->backend_name), "%s",
			 s->be->name);
	}
	if (relay_client_state(s->be->rc) == RELAY_ST_READY || s->mail_sent)
		sess_backend_ready(s);
	/* else RELAY_EV_READY calls sess_backend_ready() */
}

static void on_data(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->txn_failed || s->pool < 0) {
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	if (s->ps->snap->pools[s->pool].maildir) {
		struct maildir_received rcv = {
			.client_addr = s->client,
			.helo = s->helo[0] ? s->helo : NULL,
			.listener = s->lst->cl->name,
			.session_id = s->sid,
			.protocol = s->esmtp ? "ESMTP" : "SMTP",
			.sender = s->from,
			.recipient = s->nrcpt_ok == 1 ? s->rcpt_log[0] : NULL,
		};
		int j = maildir_begin(gc->md, &rcv,
				      ((uint64_t)s->gen << 32) | s->idx);

		if (j < 0) {
			tempfail(s, "4.3.0", "Local delivery busy, try again "
					     "later");
			return;
		}
		s->md_job = j;
		gc->md_inflight++;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return;
	}
	if (!s->be || relay_client_data(s->be->rc) < 0) {
		/* the transaction cannot go on at this backend: let it go
		 * (issue 11: every failed relay call releases it) */
		s->txn_failed = true;
		sess_put_backend(s);
		tempfail(s, "4.4.2", "Backend failed, try again later");
		return;
	}
	s->wait = W_DATA;
	be_dirty(s->be);
}

/* Body bytes for the next hop. Returns false when it must wait. */
static bool on_chunk(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	size_t len;
	const uint8_t *p = smtp_session_data(s->sm, &len);
	ssize_t n;

	if (len == 0)
		return true;
	if (s->body_discard || s->txn_failed || s->md_failed) {
		s->size += len;
		smtp_session_data_consume(s->sm, len);
		return true;
	}
	if (s->md_job >= 0) {
		n = maildir_append(gc->md, s->md_job, p, len);
		if (n == -EFBIG || n < 0) {
			s->md_failed = true;
			s->md_status = (int)n;
			smtp_session_data_consume(s->sm, len);
			return true;
		}
	} else if (s->be) {
		n = relay_client_body(s->be->rc, p, len);
		if (n < 0) {
			s->body_discard = true;
			sess_put_backend(s);
			smtp_session_data_consume(s->sm, len);
			return true;
		}
		be_dirty(s->be);
	} else {
		s->body_discard = true;
		smtp_session_data_consume(s->sm, len);
		return true;
	}
	s->size += (uint64_t)n;
	if (n > 0)
		smtp_session_data_consume(s->sm, (size_t)n);
	return (size_t)n == len;
}

static void on_data_end(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->md_job >= 0 && s->md_failed) {
		int st = s->md_status;

		maildir_abort(gc->md, s->md_job);
		s->md_job = -1;
		if (st == -EFBIG) {
			txn_done(s, 552, NULL, "5.3.4", "Message too big");
			verdict(s, SMTP_V_REJECT, 552, "5.3.4",
				"Message too big for local delivery");
		} else {
			txn_done(s, 451, NULL, "4.3.0", "Local delivery failed");
			tempfail(s, "4.3.0", "Local delivery failed, try "
					     "again later");
		}
		sess_txn_reset(s);
		return;
	}
	if (s->body_discard || s->txn_failed) {
		txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		tempfail(s, "4.4.2", "Backend failed during the message, try "
				     "again later");
		sess_txn_abort(s);
		return;
	}
	if (s->md_job >= 0) {
		if (maildir_commit(gc->md, s->md_job) < 0) {
			txn_done(s, 451, NULL, "4.3.0", "Local delivery failed");
			tempfail(s, "4.3.0", "Local delivery failed");
			sess_txn_reset(s);
			return;
		}
		s->md_committed = true;
		s->wait = W_DATA_END;
		return;
	}
	if (!s->be || relay_client_commit(s->be->rc) < 0) {
		txn_done(s, 451, NULL, "4.4.2", "Backend failed");
		tempfail(s, "4.4.2", "Backend failed, try again later");
		sess_txn_abort(s);
		return;
	}
	s->wait = W_DATA_END;
	s->t_dot_us = gc->now_us;
	be_dirty(s->be);
}

/* One engine event. Returns false when the session must wait. */
static bool sess_event(struct gw_sess *s, const struct smtp_event *ev)
{
	struct gw_core *gc = s->gc;

	switch (ev->type) {
	case SMTP_REQ_CONNECT:
		if (s->deny_code)
			verdict(s, SMTP_V_CLOSE, s->deny_code, s->deny_enh,
				s->deny_text);
		else
			verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_HELO:
		snprintf(s->helo, sizeof(s->helo), "%s", ev->helo.name);
		s->esmtp = ev->helo.esmtp;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	case SMTP_REQ_MAIL: {
		const struct smtp_mail *m = &ev->mail;
		size_t off = 0;

		/* a new MAIL ends whatever the last transaction left */
		sess_txn_abort(s);
		sess_adopt(s);
		if (mail_policy(s, m))
			return true;
		s->nmsgs++;
		snprintf(s->from, sizeof(s->from), "%.*s", (int)m->addr_len,
			 m->addr);
		s->mail_params[0] = '\0';
#define P(...)                                                                 \
	off += (size_t)snprintf(s->mail_params + off,                          \
				sizeof(s->mail_params) - off, __VA_ARGS__)
		if (m->has_size)
			P("%sSIZE=%llu", off ? " " : "",
			  (unsigned long long)m->size);
		if (m->body == SMTP_BODY_8BITMIME)
			P("%sBODY=8BITMIME", off ? " " : "");
		else if (m->body == SMTP_BODY_7BIT)
			P("%sBODY=7BIT", off ? " " : "");
		if (m->smtputf8)
			P("%sSMTPUTF8", off ? " " : "");
		if (m->ret == SMTP_RET_FULL)
			P("%sRET=FULL", off ? " " : "");
		else if (m->ret == SMTP_RET_HDRS)
			P("%sRET=HDRS", off ? " " : "");
		if (m->envid && off + strlen(m->envid) + 8 <
					sizeof(s->mail_params))
			P("%sENVID=%s", off ? " " : "", m->envid);
#undef P
		s->t_mail_us = gc->now_us;
		verdict(s, SMTP_V_ACCEPT, 0, NULL, NULL);
		return true;
	}
	case SMTP_REQ_RCPT:
		if (s->wait != W_NONE)
			return false;
		if (rcpt_policy(s, &ev->rcpt))
			return true;
		on_rcpt(s, &ev->rcpt);
		return s->wait == W_NONE;
	case SMTP_REQ_DATA:
		if (s->wait != W_NONE)
			return false;
		on_data(s);
		return s->wait == W_NONE;
	case SMTP_EV_DATA_CHUNK:
		return on_chunk(s);
	case SMTP_REQ_DATA_END:
		if (s->wait != W_NONE)
			return false;
		on_data_end(s);
		return s->wait == W_NONE;
	case SMTP_EV_RESET:
		sess_txn_abort(s);
		smtp_session_ack(s->sm);
		return true;
	case SMTP_EV_CLOSE:
		smtp_session_ack(s->sm);
		return true;
	case SMTP_REQ_STARTTLS:
		verdict(s, SMTP_V_REJECT, 454, "4.7.0",
			"TLS not available");
		return true;
	case SMTP_REQ_AUTH:
		verdict(s, SMTP_V_REJECT, 504, "5.5.4",
			"Authentication not available");
		return true;
	case SMTP_REQ_ETRN:
		verdict(s, SMTP_V_REJECT, 458, "4.5.0",
			"Unable to queue messages");
		return true;
	default:
		smtp_session_ack(s->sm);
		return true;
	}
}

static void sess_pump(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;

	if (s->dead || !s->sm)
		return;
	smtp_session_time(s->sm, now_ms(gc));
	for (int round = 0; round < 64; round++) {
		const struct smtp_event *ev;
		bool progress = false;

		/* client input into the engine */
		for (;;) {
			size_t n, len;

			if (!s->in && s->tc) {
				s->in = tcp_recv_chain(s->tc, 65536);
				s->in_off = 0;
			}
			if (!s->in)
				break;
			len = s->in->data_len - s->in_off;
			n = smtp_session_feed(
				s->sm,
				rte_pktmbuf_mtod_offset(s->in, uint8_t *,
							s->in_off),
				len);
			gc->stats.bytes_in += n;
			if (n)
				progress = true;
			s->in_off += (uint32_t)n;
			if (s->in_off < s->in->data_len)
				break;
			seg_next(&s->in, &s->in_off);
		}
		/* events */
		while ((ev = smtp_session_event(s->sm)) != NULL) {
			if (!sess_event(s, ev))
				break;
			progress = true;
		}
		/* replies to the client */
		if (s->tc) {
			size_t len;
			const uint8_t *out = smtp_session_output(s->sm, &len);

			if (len) {
				/* The last reply (221, 421) is held for the
				 * FIN below, so both leave in one segment. */
				bool last = smtp_session_closed(s->sm);
				ssize_t w = tcp_send_more(s->tc, out, len,
							  last);

				if (w > 0) {
					smtp_session_output_consume(s->sm,
								    (size_t)w);
					progress = true;
				}
				if (last && (w < 0 || (size_t)w < len))
					tcp_flush(s->tc);
			}
		}
		if (!progress)
			break;
	}
	if (s->tc && !s->closing) {
		size_t len;

		(void)smtp_session_output(s->sm, &len);
		/* A client that half-closed after its last command (e.g.
		 * ".", QUIT, FIN) still gets the answers it is owed: the
		 * backend's verdict on its message above all, or it would
		 * send the message again. */
		if (len == 0 && (smtp_session_closed(s->sm) ||
				 (s->peer_eof && s->wait == W_NONE))) {
			s->closing = true;
			tcp_close(s->tc);
		}
	}
}

/* ------------------------------------------------------------ session life */

static void sess_release(struct gw_sess *s)
{
	struct gw_core *gc = s->gc;
	const struct smtp_stats *st = smtp_session_stats(s->sm);

	if (s->wait == W_DATA_END && s->md_job >= 0) {
		/* the Maildir commit runs on; its completion is dropped */
		s->md_job = -1;
	}
	sess_txn_abort(s);
	sess_put_backend(s);
	segs_free(&s->in);
	if (s->cnt_lst)
		__atomic_sub_fetch(&gc->gw->lconns[s->lport], 1,
				   __ATOMIC_RELAXED);
	if (s->cnt_ip)
		pol_conns_dec(gc->ipc, rte_be_to_cpu_32(s->client_ip));
	gw_log(gc, "event=session sid=%s client=%s:%u listener=%s "
		   "commands=%u messages=%u errors=%u pregreet=%u ms=%llu",
	       s->sid, s->client, s->client_port, s->lst->cl->name,
	       st->commands, st->messages, st->errors, st->pregreet_bytes,
	       (unsigned long long)((gc->now_us - s->t_start_us) / 1000));
	s->sm = NULL;
	s->used = false;
	s->gen++;
	pset_put(gc, s->ps);
	s->ps = NULL;
	snap_unref(gc, s->snap);
	s->snap = NULL;
	gc->sess_next_free[s->idx] = gc->free_sess;
	gc->free_sess = s->idx;
	gc->stats.sessions_live--;
}

static void *cl_accepted(void *arg, struct tcp_conn *c)
{
	struct gw_core *gc = arg;
	const struct gw_listener *l;
	struct gw_sess *s;
	rte_be32_t la, cip;
	uint16_t lp, cport;
	uint32_t i, ip;
	const char *hit = NULL;
	enum conn_verdict cv;

	tcp_conn_addrs(c, &la, &lp, &cip, &cport);
	l = mxg_snapshot_listener(gc->snap, lp);
	if (!l) {
		gc->stats.sessions_refused++;
		return NULL;
	}
	ip = rte_be_to_cpu_32(cip);
	if (conn_denied(gc, l, ip)) {
		const struct ctl_listener *cl = l->cl;

		gc->stats.conn_denied_acl++;
		if (cl->deny_action == CTL_DENY_CLOSE) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &cip, a, sizeof(a));
			gw_log(gc, "event=refused client=%s listener=%s "
				   "reason=acl action=close",
			       a, cl->name);
			return NULL; /* the stack resets it: no greeting */
		}
		cv = CONN_DENY;
	} else {
		cv = CONN_OK;
	}
	if (gc->free_sess == NO_FREE) {
		gc->stats.sessions_refused++;
		return NULL;
	}
	i = gc->free_sess;
	gc->free_sess = gc->sess_next_free[i];
	s = &gc->sess[i];
	{
		uint32_t gen = s->gen;

		memset(s, 0, sizeof(*s));
		s->gen = gen;
	}
	s->used = true;
	s->gc = gc;
	s->idx = i;
	s->lst = l;
	s->lport = lp;
	s->snap = gc->snap;
	snap_ref(gc, s->snap);
	s->ps = gc->ps;
	s->ps->users++;
	s->tc = c;
	s->t_start_us = gc->now_us;
	s->md_job = -1;
	s->pool = -1;
	s->client_ip = cip;
	s->client_port = cport;
	inet_ntop(AF_INET, &s->client_ip, s->client, sizeof(s->client));
	/* start time + core + sequence: unique across restarts */
	snprintf(s->sid, sizeof(s->sid), "%08x%02x%06x", gc->sid_epoch,
		 gc->core & 0xff, gc->sid_seq++ & 0xffffff);
	s->sm = smtp_session_init(gc->smtp_mem + (size_t)i * gc->gw->smtp_mem,
				  gc->gw->smtp_mem, &l->smtp, now_ms(gc));
	if (!s->sm) {
		s->used = false;
		pset_put(gc, s->ps);
		snap_unref(gc, s->snap);
		gc->sess_next_free[i] = gc->free_sess;
		gc->free_sess = i;
		gc->stats.sessions_refused++;
		return NULL;
	}
	gc->stats.sessions++;
	gc->stats.sessions_live++;
	if (cv == CONN_OK)
		cv = conn_limits(s, ip, &hit);
	switch (cv) {
	case CONN_DENY:
		s->deny_code = 554;
		s->deny_enh = "5.7.1";
		s->deny_text = "Access denied";
		break;
	case CONN_LIMIT:
		gc->stats.conn_denied_limit++;
		s->deny_code = 421;
		s->deny_enh = "4.7.0";
		s->deny_text = "Too many connections, try again later";
		break;
	case CONN_RATE:
		gc->stats.conn_denied_rate++;
		s->deny_code = 421;
		s->deny_enh = "4.7.0";
		s->deny_text = "Connection rate limit exceeded, try again "
			       "later";
		break;
	default:
		break;
	}
	gw_log(gc, "event=connect sid=%s client=%s:%u listener=%s%s%s", s->sid,
	       s->client, s->client_port, l->cl->name,
	       s->deny_code ? " refused=" : "",
	       !s->deny_code ? ""
	       : cv == CONN_DENY ? "acl"
	       : cv == CONN_LIMIT ? "limit"
				  : (hit ? hit : "rate"));
	sess_dirty(s);
	/* run() is not called here: accepted() is inside the stack's input
	 * path before the conn is fully set up; the poll runs it. */
	return s;
}

static void cl_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	sess_dirty(ctx);
	run(((struct gw_sess *)ctx)->gc);
}

static void cl_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct gw_sess *s = ctx;

	RTE_SET_USED(c);
	s->peer_eof = true;
	sess_dirty(s);
	run(s->gc);
}

static void cl_gone(struct gw_sess *s)
{
	s->tc = NULL;
	s->dead = true;
	sess_dirty(s);
	run(s->gc);
}

static void cl_closed(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	cl_gone(ctx);
}

static void cl_reset(void *ctx, struct tcp_conn *c, int err)
{
	RTE_SET_USED(c);
	RTE_SET_USED(err);
	cl_gone(ctx);
}

static const struct tcp_callbacks cl_cb = {
	.accepted = cl_accepted,
	.readable = cl_readable,
	.writable = cl_readable,
	.peer_closed = cl_peer_closed,
	.closed = cl_closed,
	.reset = cl_reset,
};

/* ------------------------------------------------------------ run loop */

/* Pump every dirty session and backend until nothing is dirty. Objects
 * whose TCP connection is gone are released here, outside any pump. */
static void run(struct gw_core *gc)
{
	if (gc->running)
		return;
	gc->running = true;
	for (int guard = 0; guard < 1024; guard++) {
		struct gw_sess *s = gc->dirty_s;
		struct gw_be *b = gc->dirty_b;

		if (!s && !b)
			break;
		gc->dirty_s = NULL;
		gc->dirty_b = NULL;
		/* Take the successor before pumping: a pump may dirty its
		 * own object again, which rewrites next_dirty. */
		for (struct gw_be *nb; b; b = nb) {
			nb = b->next_dirty;
			b->dirty = false;
			if (b->state == BE_FREE)
				continue;
			if (b->dead) {
				/* a dead connection still in the idle cache
				 * stays allocated until the cache lets go */
				if (b->idle && !idle_remove(b))
					continue;
				{
					struct gw_sess *o = be_owner(b);

					if (o)
						sess_backend_failed(
							o, "Backend connection "
							   "lost, try again "
							   "later");
				}
				be_release(b);
				continue;
			}
			be_pump(b);
		}
		for (struct gw_sess *ns; s; s = ns) {
			ns = s->next_dirty;
			s->dirty = false;
			if (!s->used)
				continue;
			if (s->dead) {
				sess_release(s);
				continue;
			}
			sess_pump(s);
		}
	}
	gc->running = false;
}

/* ------------------------------------------------------------ poll */

static void maildir_done(struct gw_core *gc)
{
	struct maildir_completion comp[16];
	unsigned n;

	while ((n = maildir_poll(gc->md, comp, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			uint32_t idx = (uint32_t)(comp[i].tag & 0xffffffff);
			uint32_t gen = (uint32_t)(comp[i].tag >> 32);
			struct gw_sess *s;

			gc->md_inflight--;
			if (comp[i].status == 0)
				gc->stats.maildir_delivered++;
			else if (comp[i].status != -ECANCELED)
				gc->stats.maildir_failed++;
			if (idx >= gc->gw->max_sessions)
				continue;
			s = &gc->sess[idx];
			if (!s->used || s->gen != gen || s->md_job != comp[i].job ||
			    s->wait != W_DATA_END)
				continue;
			s->wait = W_NONE;
			s->md_job = -1;
			if (comp[i].status == 0) {
				char text[128];

				snprintf(text, sizeof(text),
					 "Ok: queued as %s", s->sid);
				txn_done(s, 250, NULL, "2.0.0", text);
				verdict(s, SMTP_V_ACCEPT, 250, "2.0.0", text);
			} else {
				txn_done(s, 451, NULL, "4.3.0",
					 "Local delivery failed");
				tempfail(s, "4.3.0", "Local delivery failed, "
						     "try again later");
			}
			sess_txn_reset(s);
		}
	}
}

static void health_checks(struct gw_core *gc)
{
	uint32_t due[16];
	struct gw_pset *ps = gc->ps;
	unsigned n = relay_pools_checks_due(ps->rp, now_ms(gc), due, 16);

	for (unsigned i = 0; i < n; i++) {
		struct relay_server_info si;
		struct gw_be *b;

		relay_server_get_info(ps->rp, due[i], &si);
		if (ps->snap->pools[si.pool].maildir)
			continue;
		b = be_open(gc, ps, si.pool, due[i], NULL);
		if (!b) {
			relay_server_check_result(ps->rp, due[i], false,
						  now_ms(gc));
			continue;
		}
		b->probe = true;
		gc->stats.backend_checks++;
	}
}

/* Quit the idle connections of ps that are too old at clock now (or whose
 * server is down). */
static void pset_expire_idle(struct gw_pset *ps, uint64_t now)
{
	void *exp[16];
	uint32_t srv[16];
	unsigned n;

	while ((n = relay_pools_idle_expire(ps->rp, now, exp, srv, 16)) > 0) {
		for (unsigned k = 0; k < n; k++) {
			struct gw_be *b = exp[k];

			b->idle = false;
			if (b->dead) {
				be_release(b);
				continue;
			}
			if (relay_client_quit(b->rc) < 0)
				be_close(b, false);
			be_dirty(b);
		}
		if (n < 16)
			break;
	}
}

/* Quit every idle connection of ps (a retired set hands none out again):
 * a far-future clock makes every cached connection "too old". */
static void pset_flush_idle(struct gw_core *gc, struct gw_pset *ps)
{
	pset_expire_idle(ps, now_ms(gc) + (1ULL << 40));
}

static void bover_apply(struct gw_core *gc, struct gw_pset *ps,
			const struct gw_bover *o)
{
	uint32_t n = relay_pools_nservers(ps->rp);
	const char *slash = strchr(o->name, '/');
	const char *hp = slash ? slash + 1 : o->name;

	RTE_SET_USED(gc);
	for (uint32_t i = 0; i < n; i++) {
		struct relay_server_info si;
		struct in_addr a;
		char name[64];

		relay_server_get_info(ps->rp, i, &si);
		if (ps->snap->pools[si.pool].maildir)
			continue;
		if (slash &&
		    (strlen(relay_pool_name(ps->rp, si.pool)) !=
			     (size_t)(slash - o->name) ||
		     strncmp(relay_pool_name(ps->rp, si.pool), o->name,
			     (size_t)(slash - o->name)) != 0))
			continue;
		a.s_addr = rte_cpu_to_be_32(si.addr);
		inet_ntop(AF_INET, &a, name, sizeof(name));
		snprintf(name + strlen(name), sizeof(name) - strlen(name),
			 ":%u", si.port);
		if (strcmp(name, hp) == 0)
			relay_server_set_admin_down(ps->rp, i, o->down);
	}
}

/* Recomputes the effective limits of the current snapshot's listeners and
 * rules from their configured values and the pushed overrides. Keys:
 * "listener.NAME.FIELD" (max_connections, max_connections_per_ip,
 * connection_rate_per_ip, max_messages_per_connection) and
 * "rate_limit.NAME.per_minute" / ".burst". Unknown keys were refused by
 * the main lcore before the push. */
static void eff_compute(struct gw_core *gc)
{
	const struct mxg_snapshot *sn = gc->snap;

	if (gc->eff_cap < sn->n_listeners) {
		free(gc->eff);
		gc->eff = calloc(sn->n_listeners, sizeof(*gc->eff));
		gc->eff_cap = gc->eff ? sn->n_listeners : 0;
	}
	if (gc->rule_eff_cap < sn->n_rules) {
		free(gc->rule_eff);
		gc->rule_eff = calloc(sn->n_rules, sizeof(*gc->rule_eff));
		gc->rule_eff_cap = gc->rule_eff ? sn->n_rules : 0;
	}
	for (uint32_t i = 0; i < sn->n_listeners && i < gc->eff_cap; i++) {
		const struct ctl_listener *cl = sn->listeners[i].cl;

		gc->eff[i].max_conn = cl->max_connections;
		gc->eff[i].per_ip = cl->max_connections_per_ip;
		gc->eff[i].rate = cl->connection_rate_per_ip;
		gc->eff[i].msgs = cl->max_messages_per_connection;
	}
	for (uint32_t i = 0; i < sn->n_rules && i < gc->rule_eff_cap; i++) {
		gc->rule_eff[i].per_minute = sn->rules[i].per_minute;
		gc->rule_eff[i].burst = sn->rules[i].burst;
	}
	for (uint32_t k = 0; k < gc->n_over; k++) {
		const char *key = gc->over[k].key;
		const char *dot = strrchr(key, '.');
		uint32_t v = gc->over[k].value;
		const char *name;
		size_t nlen;

		if (!dot)
			continue;
		if (strncmp(key, "listener.", 9) == 0) {
			name = key + 9;
			nlen = dot > name ? (size_t)(dot - name) : 0;
			for (uint32_t i = 0; i < sn->n_listeners &&
					     i < gc->eff_cap; i++) {
				const char *ln = sn->listeners[i].cl->name;

				if (strlen(ln) != nlen ||
				    strncmp(ln, name, nlen) != 0)
					continue;
				if (!strcmp(dot + 1, "max_connections"))
					gc->eff[i].max_conn = v;
				else if (!strcmp(dot + 1,
						 "max_connections_per_ip"))
					gc->eff[i].per_ip = v;
				else if (!strcmp(dot + 1,
						 "connection_rate_per_ip"))
					gc->eff[i].rate = v;
				else if (!strcmp(dot + 1,
						 "max_messages_per_connection"))
					gc->eff[i].msgs = v;
			}
		} else if (strncmp(key, "rate_limit.", 11) == 0) {
			name = key + 11;
			nlen = dot > name ? (size_t)(dot - name) : 0;
			for (uint32_t i = 0; i < sn->n_rules &&
					     i < gc->rule_eff_cap; i++) {
				const char *rn = sn->rules[i].name;

				if (!rn || strlen(rn) != nlen ||
				    strncmp(rn, name, nlen) != 0)
					continue;
				if (!strcmp(dot + 1, "per_minute"))
					gc->rule_eff[i].per_minute = v;
				else if (!strcmp(dot + 1, "burst"))
					gc->rule_eff[i].burst = v;
			}
		}
	}
}

static bool listening(const struct gw_core *gc, uint16_t port)
{
	return gc->listening[port >> 3] & (1u << (port & 7));
}

static void set_listening(struct gw_core *gc, uint16_t port, bool on)
{
	if (on)
		gc->listening[port >> 3] |= (uint8_t)(1u << (port & 7));
	else
		gc->listening[port >> 3] &= (uint8_t)~(1u << (port & 7));
}

/* Listener changes apply to new connections only: a removed port stops
 * accepting (its established sessions go on), a new one starts. */
static void listeners_sync(struct gw_core *gc)
{
	const struct mxg_snapshot *sn = gc->snap;

	for (uint32_t p = 0; p < 65536; p++) {
		if (!gc->listening[p >> 3]) {
			p |= 7;
			continue;
		}
		if (listening(gc, (uint16_t)p) &&
		    (gc->draining || !mxg_snapshot_listener(sn, (uint16_t)p))) {
			tcp_unlisten(gc->st, (uint16_t)p);
			set_listening(gc, (uint16_t)p, false);
		}
	}
	if (gc->draining)
		return;
	for (uint32_t i = 0; i < sn->n_listeners; i++) {
		uint16_t port = sn->listeners[i].port;
		int r;

		if (listening(gc, port))
			continue;
		r = tcp_listen(gc->st, port, &cl_cb, gc);
		if (r < 0) {
			gw_log(gc, "event=error what=listen listener=%s port=%u "
				   "error=\"%s\"",
			       sn->listeners[i].cl->name, port, strerror(-r));
			continue;
		}
		set_listening(gc, port, true);
	}
}

/* Adopt the published snapshot (once per poll iteration at most). */
static void core_adopt(struct gw_core *gc, struct mxg_snapshot *sn)
{
	struct mxg_snapshot *old = gc->snap;

	snap_ref(gc, sn);
	gc->snap = sn;
	listeners_sync(gc);
	if (gc->ps->fp == sn->pools_fp) {
		/* same pools: keep their state, read settings from sn */
		snap_ref(gc, sn);
		snap_unref(gc, gc->ps->snap);
		gc->ps->snap = sn;
	} else {
		struct gw_pset *np = pset_new(gc, sn);

		if (np) {
			struct gw_pset *op = gc->ps;

			np->users = 1; /* the core's own */
			gc->ps = np;
			op->retired = true;
			op->next = gc->ps_retired;
			gc->ps_retired = op;
			pset_flush_idle(gc, op);
			pset_put(gc, op);
		} else {
			gw_log(gc, "event=error what=reload detail=\"next-hop "
				   "pools of generation %llu not built (out of "
				   "memory); keeping the previous pools\"",
			       (unsigned long long)sn->generation);
		}
	}
	eff_compute(gc);
	__atomic_store_n(&gc->generation, sn->generation, __ATOMIC_RELEASE);
	gw_log(gc, "event=policy generation=%llu core=%u",
	       (unsigned long long)sn->generation, gc->core);
	/* Sessions between transactions (greeted or HELO done, nothing
	 * pending) move now: a connected client that never starts a
	 * transaction must not pin the old snapshot and its tables. */
	if (gc->sess)
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];
			enum smtp_state st;

			if (!s->used || !s->sm || s->wait != W_NONE ||
			    s->snap == sn)
				continue;
			st = smtp_session_state(s->sm);
			if (st == SMTP_ST_HELO || st == SMTP_ST_READY)
				sess_adopt(s);
		}
	snap_unref(gc, old);
}

/* 0, or -ENOSPC when the table is full (the main lcore refuses the
 * 65th distinct key before sending, so this is a second line). */
static int over_set(struct gw_core *gc, const char *key, uint32_t v)
{
	uint32_t i;

	for (i = 0; i < gc->n_over; i++)
		if (strcmp(gc->over[i].key, key) == 0)
			break;
	if (i == gc->n_over) {
		if (gc->n_over == GW_MAX_OVERRIDES)
			return -ENOSPC;
		gc->n_over++;
	}
	snprintf(gc->over[i].key, sizeof(gc->over[i].key), "%s", key);
	gc->over[i].value = v;
	return 0;
}

static int bover_set(struct gw_core *gc, const char *name, bool down)
{
	uint32_t i;

	for (i = 0; i < gc->n_bover; i++)
		if (strcmp(gc->bover[i].name, name) == 0)
			break;
	if (i == gc->n_bover) {
		if (gc->n_bover == GW_MAX_OVERRIDES)
			return -ENOSPC;
		gc->n_bover++;
	}
	snprintf(gc->bover[i].name, sizeof(gc->bover[i].name), "%s", name);
	gc->bover[i].down = down;
	bover_apply(gc, gc->ps, &gc->bover[i]);
	return 0;
}

/* Runtime pushes (gateway.h): each costs the same whatever the size of
 * the tables (one lpm add/delete, one hash insert, a short list). */
static void pushes_apply(struct gw_core *gc)
{
	struct rte_ring *r = gc->gw->push[gc->core];
	struct gw_push p;
	uint64_t seq = 0, sent = 0;

	while (rte_ring_sc_dequeue_elem(r, &p, sizeof(p)) == 0) {
		size_t nl = strnlen(p.name, sizeof(p.name));
		int rc = 0;

		switch (p.kind) {
		case GW_PUSH_BLOCK:
		case GW_PUSH_ALLOW:
			rc = pol_block_add4(gc->blocks, p.ip, p.depth,
					    p.kind == GW_PUSH_BLOCK
						    ? POL_ACL_DENY
						    : POL_ACL_ALLOW,
					    p.expire_us);
			break;
		case GW_PUSH_UNBLOCK:
			/* not there: nothing to undo, not a failure */
			(void)pol_block_del4(gc->blocks, p.ip, p.depth);
			break;
		case GW_PUSH_DOMAIN_ADD:
			rc = pol_domains_add(gc->dom_over, p.name, nl,
					     p.subdomains,
					     POL_DOM_AUTHORITATIVE);
			break;
		case GW_PUSH_DOMAIN_DEL:
			rc = pol_domains_add(gc->dom_over, p.name, nl,
					     p.subdomains, POL_DOM_REMOVED);
			break;
		case GW_PUSH_LIMIT:
			rc = over_set(gc, p.name, p.value);
			eff_compute(gc);
			break;
		case GW_PUSH_BACKEND:
			rc = bover_set(gc, p.name, p.down);
			break;
		case GW_PUSH_DRAIN:
			gc->draining = true;
			listeners_sync(gc);
			break;
		default:
			break;
		}
		if (rc < 0) {
			gc->stats.pushes_failed++;
			__atomic_store_n(&gc->push_fail_err, rc,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&gc->push_fail_seq, p.seq,
					 __ATOMIC_RELAXED);
			gw_log(gc, "event=push_failed seq=%llu kind=%u "
				   "core=%u error=\"%s\"",
			       (unsigned long long)p.seq, p.kind, gc->core,
			       strerror(-rc));
		} else {
			gc->stats.pushes_applied++;
		}
		seq = p.seq;
		sent = p.t_sent_us;
	}
	if (seq) {
		__atomic_store_n(&gc->push_lat_us, clock_us() - sent,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&gc->push_seq, seq, __ATOMIC_RELEASE);
	}
}

/* ------------------------------------------------------------ invariant */

/* Debug and sanitizer builds check the backend invariant every scan. */
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) ||                      \
	defined(__SANITIZE_UNDEFINED__)
#define GW_CHECK_INVARIANT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define GW_CHECK_INVARIANT 1
#endif
#endif
#ifndef GW_CHECK_INVARIANT
#define GW_CHECK_INVARIANT 0
#endif

static void __attribute__((format(printf, 3, 4)))
inv_fail(struct gw_core *gc, bool teardown, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gc->stats.be_invariant_errors++;
	if (teardown)
		fprintf(stderr, "mxgate: core %u: backend invariant: %s\n",
			gc->core, msg);
	else
		gw_log(gc, "event=invariant core=%u %s", gc->core, msg);
}

/* Which of the four a live backend slot is; NULL when none. */
static const char *be_class(const struct gw_be *b)
{
	const struct gw_sess *o = b->owner;
	enum relay_state rs = relay_client_state(b->rc);

	if (b->idle)
		return o ? NULL : "idle";
	if (o)
		return o->used && o->gen == b->owner_gen && o->be == b
			       ? "owned"
			       : NULL;
	if (b->dead || b->closing || relay_client_done(b->rc) ||
	    rs == RELAY_ST_QUIT || rs == RELAY_ST_RSET ||
	    relay_client_event(b->rc) != NULL)
		return "ending";
	if (b->state == BE_CONNECTING || rs == RELAY_ST_CONNECTING ||
	    rs == RELAY_ST_SETUP || b->probe)
		return "starting";
	return NULL; /* unowned, not cached, nothing in flight: leaked */
}

static unsigned pset_check(struct gw_core *gc, struct gw_pset *ps,
			   bool teardown)
{
	unsigned bad = 0;
	uint32_t users = ps == gc->ps ? 1 : 0;

	for (uint32_t i = 0; i < gc->gw->max_sessions; i++)
		if (gc->sess[i].used && gc->sess[i].ps == ps)
			users++;
	for (uint32_t i = 0; i < gc->gw->max_backends; i++)
		if (gc->be[i].state != BE_FREE && gc->be[i].ps == ps)
			users++;
	if (users != ps->users) {
		inv_fail(gc, teardown, "pool set users %u, held by %u",
			 ps->users, users);
		bad++;
	}
	for (uint32_t srv = 0; srv < relay_pools_nservers(ps->rp); srv++) {
		struct relay_server_info si;
		uint32_t conns = 0, idle = 0;

		relay_server_get_info(ps->rp, srv, &si);
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			const struct gw_be *b = &gc->be[i];

			if (b->state == BE_FREE || b->ps != ps || b->srv != srv)
				continue;
			conns += b->counted;
			idle += b->idle;
		}
		if (si.conns != conns || si.idle != idle) {
			inv_fail(gc, teardown,
				 "server %u: pool counts %u open %u idle, "
				 "slots hold %u open %u idle",
				 srv, si.conns, si.idle, conns, idle);
			bad++;
		}
	}
	return bad;
}

unsigned gw_core_check(struct gw_core *gc, bool teardown)
{
	unsigned bad = 0;
	uint64_t live = 0;

	for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
		const struct gw_be *b = &gc->be[i];

		if (b->state == BE_FREE)
			continue;
		live++;
		if (!be_class(b)) {
			inv_fail(gc, teardown,
				 "backend=%s slot=%u idle=%d owner=%s "
				 "relay_state=%d dead=%d closing=%d: not idle, "
				 "owned, starting or ending",
				 b->name, i, b->idle,
				 b->owner ? "stale" : "none",
				 (int)relay_client_state(b->rc), b->dead,
				 b->closing);
			bad++;
		}
	}
	for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
		const struct gw_sess *s = &gc->sess[i];

		if (!s->used || !s->be)
			continue;
		if (s->be->state == BE_FREE || s->be->owner != s) {
			inv_fail(gc, teardown, "sid=%s: its backend %s does "
				 "not point back at it", s->sid, s->be->name);
			bad++;
		}
	}
	if (live != gc->stats.backend_live) {
		inv_fail(gc, teardown, "backend_live %llu, slots hold %llu",
			 (unsigned long long)gc->stats.backend_live,
			 (unsigned long long)live);
		bad++;
	}
	if (gc->ps)
		bad += pset_check(gc, gc->ps, teardown);
	for (struct gw_pset *ps = gc->ps_retired; ps; ps = ps->next)
		bad += pset_check(gc, ps, teardown);
	return bad;
}

bool gw_core_poll(struct gw_core *gc, uint64_t now_us)
{
	struct mxg_snapshot *sn;

	gc->now_us = now_us;
	sn = __atomic_load_n(&gc->gw->snap, __ATOMIC_ACQUIRE);
	if (sn != gc->snap)
		core_adopt(gc, sn);
	if (gc->gw->push[gc->core] &&
	    !rte_ring_empty(gc->gw->push[gc->core]))
		pushes_apply(gc);
	if (gc->md)
		maildir_done(gc);
	/* Time-outs and short Maildir appends: a scan every 20 ms. */
	if (now_us - gc->last_scan_us >= 20000) {
		gc->last_scan_us = now_us;
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];

			if (!s->used || s->dead)
				continue;
			if (smtp_session_deadline(s->sm) <= now_ms(gc) ||
			    s->md_job >= 0)
				sess_dirty(s);
		}
		gc->stats.backend_idle = 0;
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			struct gw_be *b = &gc->be[i];

			gc->stats.backend_idle += b->state != BE_FREE && b->idle;
			if (b->state == BE_UP && !b->dead &&
			    relay_client_deadline(b->rc) <= now_ms(gc))
				be_dirty(b);
			else if (b->state == BE_CONNECTING &&
				 relay_client_deadline(b->rc) <= now_ms(gc)) {
				/* connect time-out: drop the TCP attempt */
				be_close(b, true);
				{
					struct gw_sess *o = be_owner(b);

					if (o)
						sess_backend_failed(
							o, "Backend connect "
							   "timed out, try "
							   "again later");
				}
				relay_server_report(b->ps->rp, b->srv, false,
						    now_ms(gc));
				gc->stats.backend_errors++;
			}
		}
		pset_expire_idle(gc->ps, now_ms(gc));
		health_checks(gc);
		pol_block_expire(gc->blocks, now_us, 64);
		gc->stats.rl_entries = pol_rl_count(gc->rl);
		gc->stats.rl_evictions = pol_rl_stats(gc->rl)->evictions;
		gc->stats.ipconn_entries = pol_conns_count(gc->ipc);
		run(gc);
		if (GW_CHECK_INVARIANT)
			gw_core_check(gc, false);
	}
	run(gc);
	return gc->md_inflight > 0;
}

void gw_core_push_state(const struct gw_core *gc, struct gw_push_state *st)
{
	st->seq = __atomic_load_n(&gc->push_seq, __ATOMIC_ACQUIRE);
	st->latency_us = __atomic_load_n(&gc->push_lat_us, __ATOMIC_RELAXED);
	st->generation = __atomic_load_n(&gc->generation, __ATOMIC_RELAXED);
	st->blocks = pol_block_count(gc->blocks);
	st->fail_seq = __atomic_load_n(&gc->push_fail_seq, __ATOMIC_RELAXED);
	st->fail_err = __atomic_load_n(&gc->push_fail_err, __ATOMIC_RELAXED);
}

const uint64_t *gw_core_latency(const struct gw_core *gc, uint64_t *sum_us)
{
	*sum_us = gc->lat_sum_us;
	return gc->lat;
}

/* ------------------------------------------------------------ setup */

const struct gw_stats *gw_core_stats(const struct gw_core *gc)
{
	return &gc->stats;
}

/* Retired snapshots a core may still use: at most this many pending
 * before a publish waits (reloads are rare; 200 in a test run). */
#define GW_MAX_RETIRED 1024

int gw_global_init(struct gw_global *gw, struct mxg_snapshot *first,
		   uint32_t max_sessions, uint16_t n_cores, char *err,
		   size_t errlen)
{
	size_t sz;

	memset(gw, 0, sizeof(*gw));
	gw->max_sessions = max_sessions;
	gw->max_backends = max_sessions / 2 + 16;
	gw->maildir_path = first->cfg.maildir.path;
	gw->maildir_workers = first->cfg.maildir.workers;
	gw->maildir_max_jobs = first->cfg.maildir.max_jobs;
	gw->our_ip = rte_cpu_to_be_32(first->cfg.stack.address);
	gw->hostname = first->hostname;
	gw->smtp_mem = first->smtp_mem;
	gw->relay_mem = first->relay_mem;
	gw->n_cores = n_cores;
	gw->first = first;
	gw->snap = first;
	if (n_cores == 0 || n_cores > MXG_SNAP_MAX_CORES) {
		snprintf(err, errlen, "%u cores: 1..%u supported", n_cores,
			 MXG_SNAP_MAX_CORES);
		return -EINVAL;
	}
	gw->lconns = calloc(65536, sizeof(*gw->lconns));
	gw->retired = calloc(GW_MAX_RETIRED, sizeof(*gw->retired));
	gw->cap_retired = GW_MAX_RETIRED;
	sz = rte_rcu_qsbr_get_memsize(n_cores);
	gw->qs = rte_zmalloc("mxg_rcu", sz, RTE_CACHE_LINE_SIZE);
	if (!gw->lconns || !gw->retired || !gw->qs)
		goto nomem;
	if (rte_rcu_qsbr_init(gw->qs, n_cores) != 0) {
		snprintf(err, errlen, "rte_rcu_qsbr_init: %s",
			 rte_strerror(rte_errno));
		goto fail;
	}
	for (uint16_t k = 0; k < n_cores; k++) {
		char name[32];

		snprintf(name, sizeof(name), "mxg_push%u", k);
		gw->push[k] = rte_ring_create_elem(name, sizeof(struct gw_push),
						   1024, SOCKET_ID_ANY,
						   RING_F_SP_ENQ |
							   RING_F_SC_DEQ);
		if (!gw->push[k]) {
			snprintf(err, errlen, "push ring: %s",
				 rte_strerror(rte_errno));
			goto fail;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	gw->snap = NULL; /* the caller still owns first on failure */
	gw->first = NULL;
	gw_global_fini(gw);
	return -ENOMEM;
}

void gw_global_fini(struct gw_global *gw)
{
	for (uint32_t i = 0; i < gw->n_retired; i++)
		mxg_snapshot_free(gw->retired[i].s);
	if (gw->snap)
		mxg_snapshot_free(gw->snap);
	mxg_snapshot_reaper_stop();
	for (int k = 0; k < MXG_SNAP_MAX_CORES; k++)
		rte_ring_free(gw->push[k]);
	rte_free(gw->qs);
	free(gw->lconns);
	free(gw->retired);
	memset(gw, 0, sizeof(*gw));
}

/*
 * The RCU swap (DESIGN 6). Publishing is one atomic pointer store; the
 * old snapshot goes on the retired list with a qsbr token. A dataplane
 * core reports a quiescent state at the end of every poll iteration
 * (lcore.c), after which it can no longer be holding the old pointer
 * without a reference: every read of gw->snap happens inside an
 * iteration and is either turned into a counted reference (core_adopt)
 * or dropped. So once the token is reached, the per-core counts only go
 * down, and the snapshot is freed when they are all zero. Sessions keep
 * a retired snapshot alive for the rest of their transaction.
 */
int gw_publish(struct gw_global *gw, struct mxg_snapshot *sn, char *err,
	       size_t errlen)
{
	struct mxg_snapshot *old = gw->snap;
	int r = mxg_snapshot_reloadable(old, sn, err, errlen);

	if (r < 0)
		return r;
	if (sn->rate_table_size != old->rate_table_size ||
	    sn->block_table_size != old->block_table_size) {
		snprintf(err, errlen, "%s: policy.%s changed; "
				      "that needs a restart (nothing was "
				      "changed)",
			 sn->cfg.source ? sn->cfg.source : "config",
			 sn->rate_table_size != old->rate_table_size
				 ? "rate_table_size"
				 : "block_table_size");
		return -EINVAL;
	}
	gw_reclaim(gw);
	if (gw->n_retired == gw->cap_retired) {
		snprintf(err, errlen, "%u earlier snapshots are still in use "
				      "by sessions; try again later",
			 gw->n_retired);
		return -EBUSY;
	}
	__atomic_store_n(&gw->snap, sn, __ATOMIC_RELEASE);
	gw->retired[gw->n_retired].s = old;
	gw->retired[gw->n_retired].token = rte_rcu_qsbr_start(gw->qs);
	gw->n_retired++;
	gw->snapshots_retired++;
	return 0;
}

unsigned gw_reclaim(struct gw_global *gw)
{
	unsigned freed = 0;
	uint32_t j = 0;

	for (uint32_t i = 0; i < gw->n_retired; i++) {
		struct gw_retired *r = &gw->retired[i];

		if (rte_rcu_qsbr_check(gw->qs, r->token, false) == 1 &&
		    mxg_snapshot_refs(r->s) == 0) {
			if (r->s == gw->first)
				gw->first = NULL;
			mxg_snapshot_free(r->s);
			freed++;
			continue;
		}
		gw->retired[j++] = *r;
	}
	gw->n_retired = j;
	gw->snapshots_freed += freed;
	return freed;
}

int64_t gw_push_send(struct gw_global *gw, struct gw_push *p)
{
	for (uint16_t k = 0; k < gw->n_cores; k++)
		if (rte_ring_free_count(gw->push[k]) == 0)
			return -ENOBUFS;
	p->seq = ++gw->push_seq;
	p->t_sent_us = clock_us();
	for (uint16_t k = 0; k < gw->n_cores; k++)
		rte_ring_sp_enqueue_elem(gw->push[k], p, sizeof(*p));
	return (int64_t)p->seq;
}

struct gw_core *gw_core_create(struct gw_global *gw, uint16_t core,
			       struct net_stack *st, struct rte_ring *log,
			       struct rte_mempool *log_pool, char *err,
			       size_t errlen)
{
	struct gw_core *gc = calloc(1, sizeof(*gc));
	struct mxg_snapshot *sn = gw->snap;
	int e = 0;

	if (!gc)
		goto nomem;
	gc->gw = gw;
	gc->core = core;
	gc->sid_epoch = (uint32_t)time(NULL);
	gc->st = st;
	gc->log = log;
	gc->log_pool = log_pool;
	gc->sess = calloc(gw->max_sessions, sizeof(*gc->sess));
	gc->sess_next_free = calloc(gw->max_sessions, sizeof(uint32_t));
	gc->smtp_mem = aligned_alloc(64, gw->smtp_mem * gw->max_sessions);
	gc->be = calloc(gw->max_backends, sizeof(*gc->be));
	gc->relay_mem = aligned_alloc(64, gw->relay_mem * gw->max_backends);
	if (!gc->sess || !gc->sess_next_free || !gc->smtp_mem || !gc->be ||
	    !gc->relay_mem)
		goto nomem;
	for (uint32_t i = 0; i < gw->max_sessions; i++)
		gc->sess_next_free[i] = i + 1 < gw->max_sessions ? i + 1
								 : NO_FREE;
	gc->free_sess = 0;

	gc->blocks = pol_block_create(sn->block_table_size, SOCKET_ID_ANY);
	gc->dom_over = pol_domains_create(4096);
	gc->rl = pol_rl_create(sn->rate_table_size, SOCKET_ID_ANY);
	gc->ipc = pol_conns_create(gw->max_sessions * 2 + 16, SOCKET_ID_ANY);
	if (!gc->blocks || !gc->dom_over || !gc->rl || !gc->ipc) {
		snprintf(err, errlen, "policy tables: out of memory");
		goto fail;
	}
	gc->snap = sn;
	snap_ref(gc, sn);
	gc->generation = sn->generation;
	gc->ps = pset_new(gc, sn);
	if (!gc->ps) {
		snprintf(err, errlen, "next-hop pools: cannot build");
		goto fail;
	}
	gc->ps->users = 1;
	eff_compute(gc);
	if (sn->has_maildir) {
		struct maildir_config mc;

		maildir_config_defaults(&mc);
		mc.path = gw->maildir_path;
		mc.hostname = gw->hostname;
		mc.instance = core;
		if (gw->maildir_workers)
			mc.workers = gw->maildir_workers;
		if (gw->maildir_max_jobs)
			mc.max_jobs = gw->maildir_max_jobs;
		gc->md = maildir_create(&mc, &e);
		if (!gc->md) {
			snprintf(err, errlen, "maildir %s: %s", mc.path,
				 strerror(-e));
			goto fail;
		}
	}
	for (uint32_t i = 0; i < sn->n_listeners; i++) {
		int r = tcp_listen(st, sn->listeners[i].port, &cl_cb, gc);

		if (r < 0) {
			snprintf(err, errlen, "listener %s: port %u: %s",
				 sn->listeners[i].cl->name,
				 sn->listeners[i].port, strerror(-r));
			goto fail;
		}
		set_listening(gc, sn->listeners[i].port, true);
	}
	if (rte_rcu_qsbr_thread_register(gw->qs, core) != 0) {
		snprintf(err, errlen, "rcu register core %u failed", core);
		goto fail;
	}
	rte_rcu_qsbr_thread_online(gw->qs, core);
	return gc;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	if (gc)
		gw_core_destroy(gc);
	return NULL;
}

void gw_core_quiescent(struct gw_core *gc)
{
	rte_rcu_qsbr_quiescent(gc->gw->qs, gc->core);
}

void gw_core_destroy(struct gw_core *gc)
{
	if (!gc)
		return;
	if (gc->sess)
		for (uint32_t i = 0; i < gc->gw->max_sessions; i++) {
			struct gw_sess *s = &gc->sess[i];

			if (s->used) {
				segs_free(&s->in);
				if (s->cnt_lst)
					__atomic_sub_fetch(
						&gc->gw->lconns[s->lport], 1,
						__ATOMIC_RELAXED);
				if (s->snap)
					snap_unref(gc, s->snap);
			}
		}
	if (gc->be)
		for (uint32_t i = 0; i < gc->gw->max_backends; i++) {
			struct gw_be *b = &gc->be[i];

			if (b->state != BE_FREE)
				segs_free(&b->in);
		}
	if (gc->md)
		maildir_destroy(gc->md);
	if (gc->ps)
		pset_free(gc, gc->ps);
	while (gc->ps_retired) {
		struct gw_pset *ps = gc->ps_retired;

		gc->ps_retired = ps->next;
		pset_free(gc, ps);
	}
	if (gc->snap)
		snap_unref(gc, gc->snap);
	if (gc->gw->qs) {
		rte_rcu_qsbr_thread_offline(gc->gw->qs, gc->core);
		rte_rcu_qsbr_thread_unregister(gc->gw->qs, gc->core);
	}
	pol_block_free(gc->blocks);
	pol_domains_free(gc->dom_over);
	pol_rl_free(gc->rl);
	pol_conns_free(gc->ipc);
	free(gc->eff);
	free(gc->rule_eff);
	free(gc->sess);
	free(gc->sess_next_free);
	free(gc->smtp_mem);
	free(gc->be);
	free(gc->relay_mem);
	free(gc);
}
