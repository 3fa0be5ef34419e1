/*
 * gateway-t.h - the types of the gateway's per-core state (HAProxy style:
 * types only; the functions are declared in each module's own header in
 * this folder, the public API in dataplane/gateway.h).
 *
 * Everything in a struct gw_core and what hangs from it (sessions, backend
 * connections, pool sets, effective limits, overrides) belongs to one
 * dataplane lcore. Who touches what, and when, is said at the top of each
 * module: core.c (scheduler), client.c (client connection), session.c
 * (session pump), client_policy.c, delivery.c, backend.c, backend_check.c,
 * policy_state.c, log.c; control/publish.c is the main lcore's side.
 */
#ifndef MXG_GATEWAY_T_H
#define MXG_GATEWAY_T_H

#include <stdbool.h>
#include <stdint.h>

#include <netinet/in.h>

#include <rte_mbuf.h>

#include "auth/sasl.h"
#include "dataplane/expiry.h"
#include "dataplane/gateway.h"
#include "dataplane/net/net.h"
#include "dataplane/gateway/rx.h"
#include "dataplane/gateway/xprt.h"
#include "dataplane/gateway/xprt_tls.h"

struct auth_brute;
struct auth_gss_job;
struct auth_verify_job;
struct pol_block;
struct pol_domains;
struct pol_rl;
struct pol_conns;
struct maildir;
struct tcp_conn;

#include "dataplane/relay/maildir.h"

#define GW_MAX_LOG_RCPT 4

struct gw_be;
struct gw_core;

/* The outstanding RCPTs of one session (delivery.c, issue 17): a block
 * taken from the core's LIFO of free ones (gw_core.rcptq, one per session
 * slot in a MAP_NORESERVE area) at the first deferred RCPT and given back
 * when none is outstanding, so only as many blocks are resident as
 * sessions ever had recipients outstanding at once. An entry
 * holds the engine's ticket (rcpt.index) and the recipient's text until
 * the relay client took it; text is appended and reset when the queue
 * empties. */
#define GW_RCPTQ_MAX 64        /* == SMTP_RCPT_DEFER_MAX */
#define GW_RCPTQ_TEXT 16384
struct gw_rcpt_entry {
	uint32_t index;        /* the engine's rcpt.index (the ticket) */
	uint16_t off;          /* address at text + off, then params */
	uint16_t addr_len, params_len;
};
struct gw_rcptq {
	struct gw_rcpt_entry ent[GW_RCPTQ_MAX];
	char text[GW_RCPTQ_TEXT];
};

/* The next-hop pools of one snapshot on one core: the relay_pools state
 * (server health, connection counts, idle cache) and the snapshot whose
 * pool settings it was built from (a core reference is held). A reload
 * with the same pools fingerprint keeps the set and re-points it at the
 * new snapshot; a different one builds a new set and retires the old:
 * its idle connections are closed, connections in a transaction finish
 * it, and the set is freed when nobody uses it. */
struct gw_pool_set {
	struct relay_pools *rp;
	struct mxg_snapshot *snap;
	uint64_t fp;
	uint32_t users;   /* sessions and backend connections */
	bool retired;
	struct gw_pool_set *next; /* retired list */
};

/* Why a client request is waiting. */
enum gw_wait {
	W_NONE = 0,
	W_DATA,      /* DATA verdict waits for 354 */
	W_DATA_END,  /* end-of-data verdict waits for the backend / Maildir */
	W_QUARANTINE, /* end-of-data verdict waits for the quarantine
			 Maildir's commit (content.c) */
};

/* What a session's AUTH exchange waits for (auth.c). While it is not
 * GW_AUTH_IDLE the engine's SMTP_REQ_AUTH stays unanswered, so no
 * further client input is processed. */
enum gw_auth_wait {
	GW_AUTH_IDLE = 0, /* no AUTH request held */
	GW_AUTH_JOB,	  /* a credential check or GSS step is on the pool */
	GW_AUTH_HELD,	  /* the answer is in .out, held until
			     .hold_until_us (brute-force tarpit; 0 = now) */
};

/* A session's AUTH state (auth.c). */
struct gw_auth {
	struct auth_sasl sasl;
	enum gw_auth_wait wait;
	struct auth_verify_job *vjob; /* on the pool (wait == JOB) */
	struct auth_gss_job *gjob;    /* one GSSAPI exchange, kept across
					 steps; on the pool when wait == JOB */
	struct auth_sasl_out out;     /* the answer while HELD */
	uint64_t hold_until_us;
	enum auth_mech mech;	      /* of the exchange in flight */
	char tried[AUTH_MAX_FIELD + 1]; /* login asked for (logs, brute) */
};

/* A per-core pool of fixed-size areas, one per session slot, reserved
 * (MAP_NORESERVE) and resident only once written; a LIFO of free ones
 * keeps the resident set at the peak number held at once, not the
 * number of sessions (core.c: gw_area_*). */
struct gw_area_pool {
	uint8_t *mem;
	size_t len, elem;
	uint32_t *free;
	uint32_t n_free, cap;
};

/* The strings of one SMTP transaction (struct gw_sess.txn). */
struct gw_txn {
	struct relay_reply_copy {
		uint16_t code;
		char enh[16];
		char text[256];
	} mail_reply;
	char from[520];
	char delivery_mail_params[200];
	char rcpt_log[GW_MAX_LOG_RCPT][128];
	char backend_name[56];
};

struct gw_sess {
	bool used;
	bool dirty;
	bool dead;           /* TCP gone: release at the end of core_run */
	bool closing;        /* tcp_close() called */
	bool peer_eof;
	struct gw_sess *next_dirty;
	struct gw_core *gc;
	uint32_t idx;
	uint32_t gen;
	char sid[24];
	const struct mxg_snapshot_listener *lst; /* in snap */
	struct mxg_snapshot *snap;     /* policy of this transaction (ref) */
	struct gw_pool_set *pool_set;            /* pools of this transaction */
	bool counted_ip,
		counted_listener; /* counted in conns_per_ip / lconns */
	uint16_t lport;
	uint32_t nmsgs;                /* MAIL commands accepted */
	uint16_t deny_code;            /* refuse at CONNECT (0: greet) */
	const char *deny_enh, *deny_text;
	uint64_t t_dot_us;             /* final dot sent to the backend */
	struct xprt xp;       /* the client transport (xprt.h) */
	struct smtp_session *sm;
	/* The client and the address it reached, IPv4-mapped for IPv4
	 * (dataplane/net/net.h), so one field serves both families. */
	struct net_addr client_addr;
	struct net_addr local_addr;
	bool client_v6;
	uint16_t client_port;
	char client[INET6_ADDRSTRLEN];      /* RFC 5952 text form */
	/* RFC 5321 4.1.3 address literal body: "192.0.2.1" or
	 * "IPv6:2001:db8::1" (Received, XCLIENT ADDR) */
	char client_literal[INET6_ADDRSTRLEN + 5];
	/* "192.0.2.1:40000" or "[2001:db8::1]:40000" for log lines */
	char client_hp[INET6_ADDRSTRLEN + 8];
	/* per-IP key (pol_ipkey4, or pol_ipkey6 over the snapshot's
	 * ipv6_prefix at accept): connection counts and rate buckets */
	uint8_t ipkey[16];
	char helo[256];
	bool esmtp;
	uint64_t t_start_us;
	/* TLS (client_tls.c): what the log and Received: say. */
	bool tls_up;
	bool tls_resumed;
	/* Client certificate (issue 13): one was presented, it verified
	 * against the listener's tls_ca_file, and it is in tls_partners
	 * (relays like relay_networks). Its subject, CN and fingerprint
	 * stay in the transport (xprt_tls_info); nothing more here. */
	bool tls_peer_cert;
	bool tls_peer_verified;
	bool tls_partner;
	uint16_t tls_bits;
	enum tls_fail tls_failed;
	char tls_version[12];
	char tls_cipher[48];
	char tls_sni[64];

	/* Transaction. */
	int pool;             /* -1 until the first RCPT */
	struct gw_be *be;     /* backend of this transaction */
	bool be_sticky;       /* PROXY v2: backend bound to this client */
	bool txn_failed;      /* backend died: everything now gets 4xx */
	bool mail_sent;       /* relay_client_mail() done on be */
	bool mail_failed;     /* backend refused MAIL: reply kept below */
	enum gw_wait wait;
	/* Outstanding RCPTs (delivery.c, issue 17): answered SMTP_V_DEFER,
	 * forwarded to the backend as one pipelined group; their entries
	 * and text live in block rq_block - 1 of gw_core.rcptq (0: none)
	 * while rq_n > 0.
	 * A ring of rq_n entries from rq_head; the first rq_sent of them
	 * went to the relay client (in order), the rest wait for it. */
	uint32_t rq_block;
	uint8_t rq_head, rq_n, rq_sent;
	uint16_t rq_text;     /* text octets used in the block */
	int md_job;           /* Maildir job, -1 none */
	bool md_committed;
	bool md_failed;
	int md_status;
	bool body_discard;    /* swallow the body (transaction failed) */
	/* The transaction's strings (envelope, MAIL parameters, backend
	 * reply and name): a pooled area taken at an accepted MAIL and
	 * given back when the transaction ends (sess_txn_reset); NULL
	 * while idle. Read through sess_txn_ro(). */
	struct gw_txn *txn;
	uint32_t nrcpt_ok, nrcpt_bad;
	uint64_t t_mail_us;
	uint64_t size;
	/* AUTH (auth.c): the exchange's state is a pooled area taken at
	 * the AUTH command and given back when the exchange ends; only
	 * the authenticated login outlives it. */
	struct gw_auth *auth;
	char auth_login[AUTH_MAX_FIELD + 1]; /* authenticated as; "" = not */
	struct gw_content *content; /* scanner of this message (content.c) */
	bool content_started;       /* first body chunk seen */
	int quarantine_job;         /* committed quarantine Maildir job
				       (valid while wait == W_QUARANTINE) */
};

enum gw_be_state {
	BE_FREE = 0,
	BE_CONNECTING,       /* tcp_connect issued */
	BE_UP,               /* TCP up; relay client drives the protocol */
};

struct gw_be {
	enum gw_be_state state;
	bool dirty;
	bool dead;           /* TCP gone: release in core_run */
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
	bool fin_pending;    /* peer FIN: eof once input is taken (pump) */
	bool drain_pending;  /* TCP gone: last pump before release */
	struct gw_be *next_dirty;
	struct gw_core *gc;
	struct gw_pool_set *pool_set;  /* pools srv and pool index into */
	uint32_t idx;
	uint32_t srv;
	uint32_t pool;
	struct tcp_conn *tc;
	struct relay_client *rc;
	struct gw_sess *owner;
	uint32_t owner_gen;  /* owner->gen when it took b */
	struct xprt x;       /* plain, or TLS after STARTTLS (a pool with
				tls): received bytes, held output */
	bool tls_up;         /* STARTTLS handshake done on x */
	bool tls_failed;     /* ...failed (counted as such) */
	bool tls_noted;      /* opportunistic in clear: counted once */
	uint32_t round_trips_counted; /* relay round_trips in the stats */
	char name[56];     /* "[ipv6]:port" fits */
};

/* A limit changed at run time (mxgatectl limit KEY VALUE). */
struct gw_override {
	char key[120];
	uint32_t value;
};

/* A backend taken out of service or put back at run time. */
struct gw_backend_override {
	char name[120];
	bool down;
};

/* Effective limits of one listener of the current snapshot: its
 * configured values with the pushed overrides applied. */
struct gw_limits {
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
	struct gw_pool_set *pool_set;          /* current pools */
	struct gw_pool_set *pool_sets_retired;
	struct gw_limits *listener_limits;          /* per listener of snap */
	uint32_t listener_limits_cap;
	struct gw_rule_limits {
		uint32_t per_minute, burst;
	} *rule_limits;                 /* per rule of snap */
	uint32_t rule_limits_cap;
	struct pol_block *blocks;    /* pushed blocks/allows */
	struct pol_domains *dom_over;/* pushed domain changes */
	struct pol_rl *rl;           /* rate-limit buckets */
	struct pol_conns *conns_per_ip;       /* connections per client IP */
	struct auth_brute *brute;    /* AUTH failures per IP and login */
	uint64_t brute_generation;   /* snapshot whose limits it has */
	struct gw_override over[GW_MAX_OVERRIDES];
	uint32_t n_over;
	struct gw_backend_override backend_overrides[GW_MAX_OVERRIDES];
	uint32_t n_backend_overrides;
	bool draining;
	uint8_t listening[65536 / 8];
	volatile uint64_t push_seq, push_lat_us, generation;
	/* the last push this core could not apply, and why (-errno) */
	volatile uint64_t push_fail_seq;
	volatile int32_t push_fail_err;
	/* the last generation whose effective-limit tables could not be
	 * allocated (pushed overrides partly not applied), 0 none */
	volatile uint64_t limits_failed_generation;
	uint64_t lat[GW_LAT_BUCKETS];
	uint64_t lat_sum_us;
	struct gw_sess *sess;
	uint8_t *smtp_mem;
	/* Engine work areas (smtp_session_init_pooled): one per session
	 * slot reserved (MAP_NORESERVE), taken while a session has
	 * something in flight; a LIFO of free ones keeps the resident set
	 * at the peak number in flight, not the number of sessions. */
	uint8_t *smtp_bufs;
	size_t smtp_bufs_len;
	uint32_t *buf_free;    /* stack of free work-area indexes */
	uint32_t n_buf_free;
	struct smtp_buf_pool buf_pool;
	uint32_t free_sess;    /* index list through next_free */
	uint32_t sess_hwm;     /* 1 + highest slot ever used: the overload
				  sweep stops there (the free list is LIFO,
				  so it is the peak, not the capacity) */
	uint32_t *sess_next_free;
	/* Session time-outs (core.c): each live session is filed under its
	 * next deadline; only the due slots are visited per poll. */
	struct mxg_expiry sess_expiry;
	uint32_t overload_cursor; /* overload sweep position (core.c) */
	struct gw_be *be;
	uint32_t be_hwm;       /* 1 + highest backend slot ever used (be_alloc
				  takes the lowest free one): the scans stop
				  there */
	uint8_t *relay_mem;
	struct gw_rcptq *rcptq;    /* one per session slot (delivery.c) */
	size_t rcptq_len;
	uint32_t *rcptq_free;      /* LIFO of free block indexes */
	uint32_t n_rcptq_free;
	struct gw_area_pool txn_pool;  /* struct gw_txn (session.c) */
	struct gw_area_pool auth_pool; /* struct gw_auth (auth.c) */
	struct maildir *md;
	struct maildir *qmd; /* content_quarantine_maildir (content.c) */
	struct gw_sess *dirty_s;
	struct gw_be *dirty_b;
	bool running;      /* core_run is running the dirty lists */
	bool pumping;      /* a pump is running (never nested) */
	uint64_t now_us;
	uint64_t last_scan_us;
	uint32_t sid_seq;
	uint32_t sid_epoch;
	struct rte_ring *log;
	struct rte_mempool *log_pool;
	struct gw_stats stats;
	struct xprt_tls_counters tls_counters; /* copied into stats */
	uint8_t scratch[16384];
};

#define NO_FREE UINT32_MAX

enum conn_verdict { CONN_OK = 0, CONN_DENY, CONN_LIMIT, CONN_RATE };

#endif /* MXG_GATEWAY_T_H */
