/*
 * services.h - built-in TCP services on the userspace stack, for tests and
 * benchmarks: echo (RFC 862), discard (RFC 863), and an active-open check
 * ("connect test") that opens connections to a remote listener, sends a
 * deterministic pattern and verifies the bytes echoed back.
 *
 * Ownership: one struct svc_state per dataplane lcore, touched only by it;
 * its counters are read by the main lcore. Never blocks; per-connection
 * contexts come from a bounded per-core array (svc_conf.max_conns); when it
 * is exhausted new connections are refused (RST) and counted.
 */
#ifndef MXG_SERVICES_H
#define MXG_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>

#include "dataplane/net/net.h"

struct net_stack;

struct svc_conf {
	uint16_t echo_port;       /* 0: off */
	uint16_t discard_port;    /* 0: off */
	uint32_t max_conns;       /* contexts per core */
	/* Connect test: core 0 opens connect_count connections, one after
	 * another, to connect_ip:connect_port; each sends connect_bytes of a
	 * pattern and expects the same bytes back, then closes. */
	rte_be32_t connect_ip;
	bool connect_v6;              /* connect to connect_ip6 instead */
	struct net_addr connect_ip6;
	uint16_t connect_port;
	uint32_t connect_count;
	uint64_t connect_bytes;
	uint32_t connect_delay_ms; /* wait before the first open */
	/* Load generator (benchmarks): every core keeps lg_conc connections
	 * to lg_ip:lg_port busy. cps: open, send lg_req_bytes, read them
	 * back (echo), close, repeat. bulk: open, then send forever
	 * (discard). */
	rte_be32_t lg_ip;
	bool lg_v6;               /* load lg_ip6 instead of lg_ip */
	struct net_addr lg_ip6;
	uint16_t lg_port;         /* 0: off */
	bool lg_bulk;
	uint32_t lg_conc;
	uint32_t lg_req_bytes;
};

struct svc_stats {
	uint64_t accepted, refused, closed, reset;
	uint64_t echo_bytes, discard_bytes;
	uint64_t connect_started, connect_ok, connect_fail;
	uint64_t connect_bytes_verified;
	uint64_t lg_started, lg_completed, lg_failed, lg_bytes;
	uint64_t live;
} __attribute__((aligned(64)));

struct svc_state;

/* Create the services of one core and start listening on st. */
struct svc_state *svc_create(const struct svc_conf *conf, uint16_t core_index,
			     struct net_stack *st, int socket);

/* Periodic work (the connect test's schedule). */
void svc_poll(struct svc_state *s, uint64_t now_us);

/* True when the connect test (if any) has finished. */
bool svc_connect_done(const struct svc_state *s);

const struct svc_stats *svc_stats(const struct svc_state *s);

void svc_destroy(struct svc_state *s);

/* Parses the --loadgen spec "cps,ADDR:PORT[,conc=N][,bytes=N]" or
 * "bulk,ADDR:PORT[,conc=N]" into svc. 0, or -EINVAL with a message on
 * stderr. */
int svc_parse_loadgen(const char *spec, struct svc_conf *svc);

#endif /* MXG_SERVICES_H */
