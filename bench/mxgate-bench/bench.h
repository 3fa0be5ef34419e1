/*
 * bench.h - mxgate-bench's generator and sink services on one lcore's
 * userspace stack (dataplane/net), and the histogram they share.
 *
 * Ownership: one struct gen and one struct sink per process, owned by the
 * one polling lcore; main.c reads their counters from that same lcore
 * (progress lines, the final JSON). Nothing here blocks; every table is
 * sized once at start.
 */
#ifndef MXG_BENCH_H
#define MXG_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_byteorder.h>

#include "smtpb.h"
#include "tls/tls_session.h"

struct net_stack;

/* Log-linear latency histogram in microseconds: 16 sub-buckets per power
 * of two (about 6 % resolution), up to 2^40 us. */
#define HIST_SUB 16
#define HIST_BUCKETS (41 * HIST_SUB)
struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t count, max;
};
void hist_add(struct hist *h, uint64_t us);
uint64_t hist_quantile(const struct hist *h, double q);

/* ------------------------------------------------------------ generator */
struct gen_conf {
	rte_be32_t ip; /* target */
	uint16_t port;
	uint32_t sessions; /* closed loop: in flight; open: at most */
	double rate;	   /* open loop: new sessions/s (0: closed) */
	uint32_t msgs_per_conn;
	uint32_t rcpts_lo, rcpts_hi; /* uniform */
	uint32_t size_lo, size_hi;   /* uniform */
	uint64_t count;		     /* messages to send (0: by duration) */
	double duration_s;	     /* measured seconds (after warm-up) */
	double warmup_s;
	uint32_t step_timeout_ms; /* no progress for this long: abort */
	uint32_t drain_ms;	  /* at the end: time to finish */
	struct smtpb_client_conf smtp;
	/* --starttls (smtp.starttls): the context the handshakes run on
	 * (inline on the generator's lcore) and the name to verify and
	 * send as SNI (NULL: none; only when the context does not verify) */
	const struct tls_client_ctx *tls;
	const char *tls_name;
	bool tls_resume; /* keep the last ticket per source address */
};

/* Counters. Two sets: all of the run (for the exactly-once check at a
 * sink) and the measured window after warm-up (rates, latencies). */
struct gen_counts {
	uint64_t sessions_started, sessions_done, msgs_sent, msgs_accepted,
		msgs_refused, rcpts_ok, bytes;
	uint64_t replies[SMTPB_STEP_MAX][6]; /* by class 0..5 (x00) */
	uint64_t timeouts[SMTPB_STEP_MAX];   /* no reply in time */
	uint64_t resets[SMTPB_STEP_MAX];     /* RST or ICMP while waiting */
	uint64_t closed[SMTPB_STEP_MAX];     /* FIN while waiting */
	uint64_t refused;		     /* connect refused */
	uint64_t protocol_errors;
	uint64_t no_conn;     /* tcp_connect failed */
	uint64_t late_starts; /* open loop: no free slot */
	uint64_t tls_ok;      /* STARTTLS handshakes completed */
	uint64_t tls_resumed; /* ... of them resumed from a ticket */
	uint64_t tls_failed;  /* ... failed, by reason below */
	uint64_t tls_fail[TLS_FAIL_COUNT];
	struct hist lat[SMTPB_STEP_MAX];
};

/* Source addresses (one stack each) a generator spreads its sessions
 * over, round robin. */
#define GEN_MAX_SRC 64

struct gen;
/* st: n_st stacks on one port, one per source address (1..GEN_MAX_SRC);
 * the first is the one of --ip. */
struct gen *gen_create(const struct gen_conf *conf, struct net_stack **st,
		       uint32_t n_st, uint64_t now_us);
/* Start, time out, end sessions; returns true while the run goes on. */
bool gen_poll(struct gen *g, uint64_t now_us);
const struct gen_counts *gen_total(const struct gen *g);
const struct gen_counts *gen_measured(const struct gen *g);
/* Measured window: start and (when over) end, microseconds. */
void gen_window(const struct gen *g, uint64_t now_us, uint64_t *t0,
		uint64_t *t1);
uint32_t gen_live(const struct gen *g);
/* Free the generator (after the stack that called it back is gone or
 * will never run again). */
void gen_destroy(struct gen *g);

/* ----------------------------------------------------------------- sink */
struct sink_conf {
	uint16_t port;
	uint32_t max_conns;
	uint64_t max_seq; /* bitmap size for duplicate detection */
	struct smtpb_sink_conf smtp;
	/* --sink-tls-cert/--sink-tls-key (smtp.starttls): handshakes run
	 * inline on the sink's lcore */
	const struct tls_server_ctx *tls;
};

struct sink_counts {
	uint64_t conns, msgs, rcpts, bytes;
	uint64_t digest_bad, duplicates, no_bench, foreign_nonce;
	uint64_t seq_out_of_range, drops, refused_full, resets, quits;
	uint64_t live;
	uint64_t peer_addrs; /* distinct client addresses (up to 256) */
	uint64_t nonce; /* the first nonce seen */
	uint64_t tls_handshakes, tls_failed;
};

#define SINK_MAX_PEERS 256

struct sink;
struct sink *sink_create(const struct sink_conf *conf, struct net_stack *st,
			 uint64_t now_us);
void sink_poll(struct sink *s, uint64_t now_us);
const struct sink_counts *sink_counts(const struct sink *s);
void sink_destroy(struct sink *s);

/* JSON writers of main.c's report. */
void hist_json(FILE *f, const struct hist *h);

#endif /* MXG_BENCH_H */
