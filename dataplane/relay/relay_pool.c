/*
 * relay_pool.c - next-hop pools: domain routing table, smooth weighted
 * round-robin, health state, connection limits, idle connection cache.
 *
 * Ownership: one struct relay_pools per dataplane lcore, touched by that
 * lcore only. Everything is allocated in relay_pools_create(); the data
 * path functions never allocate, never block, and are O(servers in the
 * pool) or O(idle_max) at worst, both small and bounded by configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <arpa/inet.h>

#include "relay_pool.h"

#define DEF_IDLE_AGE_MS 60000
#define DEF_FAIL_AFTER 3
#define DEF_RETRY_MS 30000
#define MAX_WEIGHT 1000

struct server {
	struct relay_server_config cfg;
	uint32_t pool;
	int64_t cur_weight; /* smooth WRR state */
	bool up;
	bool probing;
	bool admin_down;
	uint32_t conns;
	uint32_t idle;
	uint32_t fails;
	uint64_t retry_at;
	uint64_t next_check;
	uint64_t selected;
};

struct idle_ent {
	void *conn;
	uint32_t srv;
	uint64_t since;
};

struct pool {
	char *name;
	uint32_t first_srv, n_srv;
	uint32_t max_conns, max_per_srv;
	uint32_t conns;
	uint32_t idle_max, idle_age_ms;
	uint32_t fail_after, retry_ms, check_ms;
	struct idle_ent *idle; /* oldest first, n_idle <= idle_max */
	uint32_t n_idle;
};

struct dom_ent {
	const char *key; /* lower case; leading '.' = subdomains */
	uint32_t len;
	uint32_t pool;
};

struct relay_pools {
	struct pool *pools;
	uint32_t n_pools;
	uint32_t default_pool;
	uint32_t max_conns, conns;
	struct server *srv;
	uint32_t n_srv;
	struct dom_ent *dom; /* open addressing, power-of-two size */
	uint32_t dom_mask;
	char *arena; /* names and domain keys */
};

/* ------------------------------------------------------------ domains */

static uint32_t hash_ci(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a over lower-cased octets */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)tolower((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

static const struct dom_ent *dom_find(const struct relay_pools *p,
				      const char *s, size_t len)
{
	uint32_t i;

	if (p->dom == NULL)
		return NULL;
	for (i = hash_ci(s, len) & p->dom_mask;; i = (i + 1) & p->dom_mask) {
		const struct dom_ent *e = &p->dom[i];

		if (e->key == NULL)
			return NULL;
		if (e->len == len && strncasecmp(e->key, s, len) == 0)
			return e;
	}
}

uint32_t relay_pools_route(const struct relay_pools *p, const char *domain,
			   size_t len)
{
	const struct dom_ent *e;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0)
		return p->default_pool;
	e = dom_find(p, domain, len);
	if (e)
		return e->pool;
	/* Subdomain entries, longest suffix first: for a.b.example.com try
	 * ".b.example.com", then ".example.com", then ".com". */
	for (size_t i = 0; i < len; i++) {
		if (domain[i] != '.')
			continue;
		e = dom_find(p, domain + i, len - i);
		if (e)
			return e->pool;
	}
	return p->default_pool;
}

/* ------------------------------------------------------------ create */

void relay_pools_destroy(struct relay_pools *p)
{
	if (p == NULL)
		return;
	if (p->pools)
		for (uint32_t i = 0; i < p->n_pools; i++)
			free(p->pools[i].idle);
	free(p->pools);
	free(p->srv);
	free(p->dom);
	free(p->arena);
	free(p);
}

struct relay_pools *relay_pools_create(const struct relay_pools_config *cfg,
				       int *err)
{
	struct relay_pools *p = NULL;
	size_t arena_len = 0, ndom = 0, off = 0;
	int rc = -EINVAL;

	if (cfg == NULL || cfg->n_pools == 0 || cfg->pools == NULL ||
	    cfg->default_pool >= cfg->n_pools)
		goto fail;
	for (uint32_t i = 0; i < cfg->n_pools; i++) {
		const struct relay_pool_config *pc = &cfg->pools[i];

		if (pc->n_servers == 0 || pc->servers == NULL ||
		    pc->name == NULL)
			goto fail;
		arena_len += strlen(pc->name) + 1;
		for (uint32_t d = 0; d < pc->n_domains; d++) {
			if (pc->domains[d] == NULL ||
			    pc->domains[d][0] == '\0' ||
			    strcmp(pc->domains[d], ".") == 0)
				goto fail;
			arena_len += strlen(pc->domains[d]) + 1;
			ndom++;
		}
		for (uint32_t s = 0; s < pc->n_servers; s++)
			if (pc->servers[s].weight > MAX_WEIGHT ||
			    pc->servers[s].port == 0)
				goto fail;
	}
	rc = -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto fail;
	p->n_pools = cfg->n_pools;
	p->default_pool = cfg->default_pool;
	p->max_conns = cfg->max_conns;
	p->pools = calloc(cfg->n_pools, sizeof(*p->pools));
	p->arena = malloc(arena_len ? arena_len : 1);
	for (uint32_t i = 0; i < cfg->n_pools; i++)
		p->n_srv += cfg->pools[i].n_servers;
	p->srv = calloc(p->n_srv, sizeof(*p->srv));
	if (ndom) {
		uint32_t sz = 4;

		while (sz < ndom * 2)
			sz <<= 1;
		p->dom = calloc(sz, sizeof(*p->dom));
		p->dom_mask = sz - 1;
	}
	if (!p->pools || !p->arena || !p->srv || (ndom && !p->dom))
		goto fail;

	for (uint32_t i = 0, s0 = 0; i < cfg->n_pools; i++) {
		const struct relay_pool_config *pc = &cfg->pools[i];
		struct pool *po = &p->pools[i];
		size_t l = strlen(pc->name) + 1;

		po->name = memcpy(p->arena + off, pc->name, l);
		off += l;
		po->first_srv = s0;
		po->n_srv = pc->n_servers;
		po->max_conns = pc->max_conns;
		po->max_per_srv = pc->max_conns_per_server;
		po->idle_max = pc->idle_max;
		po->idle_age_ms = pc->idle_max_age_ms ? pc->idle_max_age_ms
						      : DEF_IDLE_AGE_MS;
		po->fail_after =
			pc->fail_after ? pc->fail_after : DEF_FAIL_AFTER;
		po->retry_ms = pc->retry_ms ? pc->retry_ms : DEF_RETRY_MS;
		po->check_ms = pc->check_interval_ms;
		if (po->idle_max) {
			po->idle = calloc(po->idle_max, sizeof(*po->idle));
			if (po->idle == NULL)
				goto fail;
		}
		for (uint32_t k = 0; k < pc->n_servers; k++, s0++) {
			struct server *sv = &p->srv[s0];

			sv->cfg = pc->servers[k];
			if (sv->cfg.weight == 0)
				sv->cfg.weight = 1;
			sv->pool = i;
			sv->up = true;
		}
		for (uint32_t d = 0; d < pc->n_domains; d++) {
			const char *dn = pc->domains[d];
			size_t dl = strlen(dn);
			char *key = p->arena + off;
			uint32_t h;

			for (size_t c = 0; c < dl; c++)
				key[c] = (char)tolower((unsigned char)dn[c]);
			key[dl] = '\0';
			off += dl + 1;
			if (dl > 1 && key[dl - 1] == '.')
				key[--dl] = '\0';
			rc = -EINVAL;
			if (dom_find(p, key, dl))
				goto fail; /* listed twice */
			h = hash_ci(key, dl) & p->dom_mask;
			while (p->dom[h].key)
				h = (h + 1) & p->dom_mask;
			p->dom[h] = (struct dom_ent){key, (uint32_t)dl, i};
		}
	}
	return p;
fail:
	relay_pools_destroy(p);
	if (err)
		*err = rc;
	return NULL;
}

uint32_t relay_pools_count(const struct relay_pools *p)
{
	return p->n_pools;
}

uint32_t relay_pools_nservers(const struct relay_pools *p)
{
	return p->n_srv;
}

const char *relay_pool_name(const struct relay_pools *p, uint32_t pool)
{
	return pool < p->n_pools ? p->pools[pool].name : NULL;
}

int relay_pools_find(const struct relay_pools *p, const char *name)
{
	for (uint32_t i = 0; i < p->n_pools; i++)
		if (strcmp(p->pools[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

/* ------------------------------------------------------------ select */

int relay_pool_select(struct relay_pools *p, uint32_t pool, uint64_t now_ms)
{
	struct pool *po;
	struct server *best = NULL;
	int64_t total = 0;
	bool any_healthy = false;

	if (pool >= p->n_pools)
		return -EINVAL;
	po = &p->pools[pool];
	if ((p->max_conns && p->conns >= p->max_conns) ||
	    (po->max_conns && po->conns >= po->max_conns))
		return -EBUSY;

	/* A down server whose retry time came gets one trial connection;
	 * its outcome (relay_server_report) decides up or down again. */
	for (uint32_t i = 0; i < po->n_srv; i++) {
		struct server *sv = &p->srv[po->first_srv + i];

		if (!sv->up && !sv->admin_down && !sv->probing &&
		    now_ms >= sv->retry_at &&
		    (!po->max_per_srv || sv->conns < po->max_per_srv)) {
			sv->probing = true;
			sv->selected++;
			return (int)(po->first_srv + i);
		}
	}
	for (uint32_t i = 0; i < po->n_srv; i++) {
		struct server *sv = &p->srv[po->first_srv + i];

		if (!sv->up || sv->admin_down)
			continue;
		any_healthy = true;
		if (po->max_per_srv && sv->conns >= po->max_per_srv)
			continue;
		sv->cur_weight += sv->cfg.weight;
		total += sv->cfg.weight;
		if (best == NULL || sv->cur_weight > best->cur_weight)
			best = sv;
	}
	if (best == NULL)
		return any_healthy ? -EBUSY : -EHOSTDOWN;
	best->cur_weight -= total;
	best->selected++;
	return (int)(best - p->srv);
}

void relay_server_opened(struct relay_pools *p, uint32_t srv)
{
	struct server *sv = &p->srv[srv];

	sv->conns++;
	p->pools[sv->pool].conns++;
	p->conns++;
}

void relay_server_closed(struct relay_pools *p, uint32_t srv)
{
	struct server *sv = &p->srv[srv];

	if (sv->conns == 0)
		return; /* caller bug; counters must not wrap */
	sv->conns--;
	p->pools[sv->pool].conns--;
	p->conns--;
}

/* ------------------------------------------------------------ health */

static void mark_down(struct relay_pools *p, struct server *sv, uint64_t now_ms)
{
	sv->up = false;
	sv->probing = false;
	sv->cur_weight = 0;
	sv->retry_at = now_ms + p->pools[sv->pool].retry_ms;
}

static void mark_up(struct server *sv)
{
	sv->up = true;
	sv->probing = false;
	sv->fails = 0;
}

void relay_server_report(struct relay_pools *p, uint32_t srv, bool ok,
			 uint64_t now_ms)
{
	struct server *sv = &p->srv[srv];

	if (ok) {
		mark_up(sv);
		return;
	}
	sv->fails++;
	if (sv->probing ||
	    (sv->up && sv->fails >= p->pools[sv->pool].fail_after))
		mark_down(p, sv, now_ms);
}

void relay_server_check_result(struct relay_pools *p, uint32_t srv, bool ok,
			       uint64_t now_ms)
{
	relay_server_report(p, srv, ok, now_ms);
}

unsigned relay_pools_checks_due(struct relay_pools *p, uint64_t now_ms,
				uint32_t *out, unsigned max)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < p->n_srv && n < max; i++) {
		struct server *sv = &p->srv[i];
		uint32_t iv = p->pools[sv->pool].check_ms;

		if (iv == 0 || sv->admin_down || now_ms < sv->next_check)
			continue;
		sv->next_check = now_ms + iv;
		out[n++] = i;
	}
	return n;
}

void relay_server_set_admin_down(struct relay_pools *p, uint32_t srv, bool down)
{
	struct server *sv = &p->srv[srv];

	sv->admin_down = down;
	if (!down)
		mark_up(sv);
}

bool relay_server_up(const struct relay_pools *p, uint32_t srv)
{
	return srv < p->n_srv && p->srv[srv].up && !p->srv[srv].admin_down;
}

void relay_server_get_info(const struct relay_pools *p, uint32_t srv,
			   struct relay_server_info *out)
{
	const struct server *sv = &p->srv[srv];

	memset(out, 0, sizeof(*out));
	out->pool = sv->pool;
	out->addr = sv->cfg.addr;
	out->v6 = sv->cfg.v6;
	memcpy(out->addr6, sv->cfg.addr6, 16);
	out->port = sv->cfg.port;
	out->weight = sv->cfg.weight;
	out->up = sv->up && !sv->admin_down;
	out->probing = sv->probing;
	out->conns = sv->conns;
	out->idle = sv->idle;
	out->fails = sv->fails;
	out->retry_at = sv->retry_at;
	out->selected = sv->selected;
}

/* ------------------------------------------------------------ idle cache */

static void idle_remove(struct relay_pools *p, struct pool *po, uint32_t i)
{
	p->srv[po->idle[i].srv].idle--;
	memmove(&po->idle[i], &po->idle[i + 1],
		(po->n_idle - i - 1) * sizeof(po->idle[0]));
	po->n_idle--;
}

int relay_pool_idle_put(struct relay_pools *p, uint32_t srv, void *conn,
			uint64_t now_ms, void **evicted)
{
	struct server *sv = &p->srv[srv];
	struct pool *po = &p->pools[sv->pool];

	if (evicted)
		*evicted = NULL;
	if (po->idle_max == 0)
		return -ENOSPC;
	if (!relay_server_up(p, srv))
		return -EHOSTDOWN;
	if (po->n_idle == po->idle_max) {
		/* Keep the freshest: the oldest is the likeliest to have
		 * been closed by the backend's own idle time-out. */
		if (evicted)
			*evicted = po->idle[0].conn;
		idle_remove(p, po, 0);
	}
	po->idle[po->n_idle++] = (struct idle_ent){conn, srv, now_ms};
	sv->idle++;
	return 0;
}

void *relay_pool_idle_take(struct relay_pools *p, uint32_t srv, uint64_t now_ms)
{
	struct pool *po = &p->pools[p->srv[srv].pool];

	if (!relay_server_up(p, srv))
		return NULL;
	for (uint32_t i = po->n_idle; i-- > 0;) {
		void *c;

		if (po->idle[i].srv != srv ||
		    now_ms - po->idle[i].since > po->idle_age_ms)
			continue;
		c = po->idle[i].conn;
		idle_remove(p, po, i);
		return c;
	}
	return NULL;
}

void *relay_pool_idle_take_any(struct relay_pools *p, uint32_t pool,
			       uint64_t now_ms, uint32_t *srv)
{
	struct pool *po;

	if (pool >= p->n_pools)
		return NULL;
	po = &p->pools[pool];
	for (uint32_t i = po->n_idle; i-- > 0;) {
		void *c;

		if (!relay_server_up(p, po->idle[i].srv) ||
		    now_ms - po->idle[i].since > po->idle_age_ms)
			continue;
		c = po->idle[i].conn;
		if (srv)
			*srv = po->idle[i].srv;
		idle_remove(p, po, i);
		return c;
	}
	return NULL;
}

unsigned relay_pools_idle_expire(struct relay_pools *p, uint64_t now_ms,
				 void **out, uint32_t *out_srv, unsigned max)
{
	unsigned n = 0;

	for (uint32_t k = 0; k < p->n_pools && n < max; k++) {
		struct pool *po = &p->pools[k];

		for (uint32_t i = 0; i < po->n_idle && n < max;) {
			struct idle_ent *e = &po->idle[i];

			if (now_ms - e->since > po->idle_age_ms ||
			    !relay_server_up(p, e->srv)) {
				if (out_srv)
					out_srv[n] = e->srv;
				out[n++] = e->conn;
				idle_remove(p, po, i);
			} else {
				i++;
			}
		}
	}
	return n;
}

int relay_server_format(bool v6, uint32_t addr, const uint8_t addr6[16],
			uint16_t port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (v6) {
		inet_ntop(AF_INET6, addr6, a, sizeof(a));
		return snprintf(buf, len, "[%s]:%u", a, port);
	}
	{
		struct in_addr in = {htonl(addr)};

		inet_ntop(AF_INET, &in, a, sizeof(a));
	}
	return snprintf(buf, len, "%s:%u", a, port);
}
