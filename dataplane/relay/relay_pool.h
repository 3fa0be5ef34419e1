/*
 * relay_pool.h - next-hop pools of the in-line relay (DESIGN section 5):
 * backend servers with weights, pool choice by recipient domain, smooth
 * weighted round-robin over healthy servers, passive and active health
 * state, connection limits (per server, per pool, in total) and a bounded
 * cache of idle backend connections.
 *
 * Ownership: a struct relay_pools is per dataplane lcore (each core has its
 * own backend connections), used by that core only: nothing is
 * thread-safe, nothing needs to be. A pure data structure: it opens no
 * connection and reads no clock (times are passed in, milliseconds). All
 * memory is allocated by relay_pools_create(); nothing allocates after.
 *
 * Servers are named by a server id: 0..relay_pools_nservers()-1 over all
 * pools, in configuration order. Idle connections are opaque pointers the
 * glue owns (e.g. its struct holding a relay_client and a TCP connection).
 */
#ifndef MXG_RELAY_POOL_H
#define MXG_RELAY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_pools;

struct relay_server_config {
	uint32_t addr; /* IPv4, host byte order (unless v6) */
	uint16_t port;
	uint16_t weight; /* 1..1000; 0 = 1 */
	bool v6;          /* the server is addr6 (IPv6, network order) */
	uint8_t addr6[16];
};

/* A server's name as logs, metrics and mxgatectl show it:
 * "198.18.0.1:25" or "[fd00::1]:25". Returns snprintf's result. */
int relay_server_format(bool v6, uint32_t addr, const uint8_t addr6[16],
			uint16_t port, char *buf, size_t len);

struct relay_pool_config {
	const char *name;
	/* Recipient domains routed here, case-insensitive. "example.com"
	 * matches that domain only; ".example.com" matches every subdomain
	 * (a.example.com, b.c.example.com) but not example.com itself, as
	 * in Postfix transport maps. The longest match wins. */
	const char *const *domains;
	uint32_t n_domains;
	const struct relay_server_config *servers;
	uint32_t n_servers;	       /* >= 1 */
	uint32_t max_conns;	       /* open connections, 0 = no limit */
	uint32_t max_conns_per_server; /* 0 = no limit */
	uint32_t idle_max;	       /* idle connections kept, 0 = none */
	uint32_t idle_max_age_ms;      /* idle older than this expire (60 s
					  when 0) */
	uint32_t fail_after;	       /* consecutive failures -> down (3) */
	uint32_t retry_ms;	       /* down -> one probe after (30 s) */
	uint32_t check_interval_ms;    /* active checks, 0 = none */
};

struct relay_pools_config {
	const struct relay_pool_config *pools;
	uint32_t n_pools;      /* >= 1 */
	uint32_t default_pool; /* for domains no pool lists */
	uint32_t max_conns;    /* all pools together, 0 = no limit */
};

/* Per-server state, for logs, metrics and the admin API. */
struct relay_server_info {
	uint32_t pool;
	uint32_t addr;
	uint16_t port;
	uint16_t weight;
	bool v6;
	uint8_t addr6[16];
	bool up;
	bool probing;	   /* down, one trial connection handed out */
	uint32_t conns;	   /* open connections, idle ones included */
	uint32_t idle;	   /* of which idle in the cache */
	uint32_t fails;	   /* consecutive failures */
	uint64_t retry_at; /* when down: earliest probe */
	uint64_t selected; /* times chosen by relay_pool_select() */
};

/* Builds the pools (copies everything, strings included). NULL with
 * *err = -EINVAL (bad configuration: no servers, duplicate domain, bad
 * default pool) or -ENOMEM. Main lcore, before the dataplane starts. */
struct relay_pools *relay_pools_create(const struct relay_pools_config *cfg,
				       int *err);
void relay_pools_destroy(struct relay_pools *p);

uint32_t relay_pools_count(const struct relay_pools *p);
uint32_t relay_pools_nservers(const struct relay_pools *p);
const char *relay_pool_name(const struct relay_pools *p, uint32_t pool);
/* Pool index by name, or -ENOENT. */
int relay_pools_find(const struct relay_pools *p, const char *name);

/* Pool for a recipient domain (the part after '@'; a trailing dot is
 * ignored): the longest exact or subdomain match, else the default. */
uint32_t relay_pools_route(const struct relay_pools *p, const char *domain,
			   size_t len);

/*
 * Chooses a server of pool for a new connection: smooth weighted
 * round-robin (as nginx's upstream: each eligible server's current weight
 * grows by its weight, the largest wins and loses the total) over servers
 * that are up and under their limit. A down server whose retry time has
 * come is offered once as a probe before the others. Returns the server
 * id, -EBUSY when the pool or total limit is reached or every healthy
 * server is at its own limit, -EHOSTDOWN when no server is healthy.
 * Does not count the connection: call relay_server_opened().
 */
int relay_pool_select(struct relay_pools *p, uint32_t pool, uint64_t now_ms);

/* Connection accounting: opened when the glue starts connecting, closed
 * when the connection is gone (whatever the reason). */
void relay_server_opened(struct relay_pools *p, uint32_t srv);
void relay_server_closed(struct relay_pools *p, uint32_t srv);

/* Passive health: the glue's verdict on a connection or transaction.
 * ok resets the failure count (and brings a probed server up); fail_after
 * consecutive failures mark the server down until now + retry_ms. */
void relay_server_report(struct relay_pools *p, uint32_t srv, bool ok,
			 uint64_t now_ms);
/* Active health: result of a check (connect, greeting, EHLO, QUIT) the
 * glue ran for a server from relay_pools_checks_due(). ok brings a down
 * server up at once; a failure counts like relay_server_report(). */
void relay_server_check_result(struct relay_pools *p, uint32_t srv, bool ok,
			       uint64_t now_ms);
/* Servers whose active check is due (pools with check_interval_ms); the
 * next check of each one returned is scheduled. Returns how many ids were
 * written to out (at most max). */
unsigned relay_pools_checks_due(struct relay_pools *p, uint64_t now_ms,
				uint32_t *out, unsigned max);
/* Operator push (mxgatectl): force a server down (until set up again) or
 * up. */
void relay_server_set_admin_down(struct relay_pools *p, uint32_t srv,
				 bool down);

bool relay_server_up(const struct relay_pools *p, uint32_t srv);
void relay_server_get_info(const struct relay_pools *p, uint32_t srv,
			   struct relay_server_info *out);

/* Idle connection cache, bounded per pool by idle_max.
 * put: keeps conn (an idle, READY backend connection of srv). Returns 0;
 * if the cache was full, *evicted receives the oldest connection, which
 * the caller closes (else *evicted = NULL). Returns -ENOSPC when the pool
 * caches nothing and -EHOSTDOWN when srv is down: the caller closes conn. */
int relay_pool_idle_put(struct relay_pools *p, uint32_t srv, void *conn,
			uint64_t now_ms, void **evicted);
/* Most recently parked connection of srv no older than idle_max_age_ms, or
 * NULL. The connection stays counted in relay_server_info.conns. */
void *relay_pool_idle_take(struct relay_pools *p, uint32_t srv,
			   uint64_t now_ms);
/* Same over every healthy server of pool; *srv receives its server. */
void *relay_pool_idle_take_any(struct relay_pools *p, uint32_t pool,
			       uint64_t now_ms, uint32_t *srv);
/* Removes idle connections that are too old or whose server is down and
 * writes them to out (at most max) for the caller to QUIT and close.
 * Returns how many; call again while it returns max. */
unsigned relay_pools_idle_expire(struct relay_pools *p, uint64_t now_ms,
				 void **out, uint32_t *out_srv, unsigned max);

#endif /* MXG_RELAY_POOL_H */
