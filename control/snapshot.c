/*
 * snapshot.c - compiles a validated configuration into the immutable
 * policy snapshot of snapshot.h: listeners with their SMTP settings and
 * ACLs, next-hop pools, rte_lpm ACL tables, the accepted-domain table,
 * restriction lists and rate-limit rules.
 *
 * Main lcore only. Allocates; never touches per-core state.
 */
#include "control/snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <rte_memory.h>

#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "content/rules.h"
#include "tls/tls_ctx.h"

/* FNV-1a, 64 bits: fingerprints of configuration pieces (not a hot path). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint32_t ms_or(uint32_t v, uint32_t dflt)
{
	return v ? v : dflt;
}

/* ------------------------------------------------------------ tables */

/*
 * ACL tables are shared between snapshots when their content is the same
 * (same allow and deny entries in the same order): rte_lpm costs 64 MiB
 * per IPv4 table whatever its size, and a reload that does not touch a
 * list should cost nothing for it. The registry lives on the main lcore,
 * the only thread that builds and frees snapshots.
 */
struct acl_shared {
	struct pol_acl *acl;
	uint64_t fp;
	uint32_t refs;
	struct acl_shared *next;
};

static struct acl_shared *acl_registry;

/*
 * Freeing a large table is slow (rte_rib removes its nodes one by one:
 * seconds for a million prefixes), and it would hold up the main lcore's
 * admin socket and the next reload. A reaper thread frees tables nobody
 * can reach any more; the main lcore only queues them. DPDK's heap,
 * mempools and tailq are safe to release from a non-EAL thread.
 */
struct reap_item {
	struct pol_acl *acl;
	struct reap_item *next;
};

static pthread_mutex_t reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cv = PTHREAD_COND_INITIALIZER;
static struct reap_item *reap_head;
static bool reap_started, reap_stop;
static pthread_t reap_thread;

static void *reaper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reap_mu);
	for (;;) {
		struct reap_item *it;

		while (!reap_head && !reap_stop)
			pthread_cond_wait(&reap_cv, &reap_mu);
		if (!reap_head)
			break;
		it = reap_head;
		reap_head = it->next;
		pthread_mutex_unlock(&reap_mu);
		pol_acl_free(it->acl);
		free(it);
		pthread_mutex_lock(&reap_mu);
	}
	pthread_mutex_unlock(&reap_mu);
	return NULL;
}

static void acl_free_later(struct pol_acl *a)
{
	struct reap_item *it = malloc(sizeof(*it));

	if (!reap_started && !reap_stop) {
		reap_started = pthread_create(&reap_thread, NULL, reaper,
					      NULL) == 0;
		if (reap_started)
			pthread_setname_np(reap_thread, "mxg-reaper");
	}
	if (!it || !reap_started) {
		free(it);
		pol_acl_free(a);
		return;
	}
	it->acl = a;
	pthread_mutex_lock(&reap_mu);
	it->next = reap_head;
	reap_head = it;
	pthread_cond_signal(&reap_cv);
	pthread_mutex_unlock(&reap_mu);
}

void mxg_snapshot_reaper_stop(void)
{
	if (reap_started) {
		pthread_mutex_lock(&reap_mu);
		reap_stop = true;
		pthread_cond_signal(&reap_cv);
		pthread_mutex_unlock(&reap_mu);
		pthread_join(reap_thread, NULL); /* after the queue is empty */
		reap_started = false;
	}
	reap_stop = true;
}

static uint64_t acl_fp(const struct ctl_cidr_list *allow,
		       const struct ctl_cidr_list *deny)
{
	uint64_t h = FNV_INIT;

	for (int l = 0; l < 2; l++) {
		const struct ctl_cidr_list *x = l ? allow : deny;
		uint32_t n = x ? x->n : 0;

		h = fnv(h, &n, sizeof(n));
		for (uint32_t i = 0; x && i < x->n; i++) {
			h = fnv(h, &x->v[i].family, sizeof(x->v[i].family));
			h = fnv(h, x->v[i].addr, 16);
			h = fnv(h, &x->v[i].prefix_len, 1);
		}
	}
	return h;
}

/* Drops one reference on a table made by acl_build. */
static void acl_put(struct pol_acl *a)
{
	if (!a)
		return;
	for (struct acl_shared **pp = &acl_registry; *pp; pp = &(*pp)->next) {
		struct acl_shared *e = *pp;

		if (e->acl != a)
			continue;
		if (--e->refs == 0) {
			*pp = e->next;
			acl_free_later(e->acl);
			free(e);
		}
		return;
	}
	pol_acl_free(a); /* not shared (registry out of memory) */
}

/* One ACL from allow and deny lists: deny entries DENY, allow entries
 * ALLOW (allow is the exception, so on equal prefixes allow wins). */
static int acl_build(const struct ctl_cidr_list *allow,
		     const struct ctl_cidr_list *deny, struct pol_acl **out,
		     const char *what, char *err, size_t errlen)
{
	uint32_t n4 = 0, n6 = 0;
	const struct ctl_cidr_list *lists[2] = {deny, allow};
	const uint32_t vals[2] = {POL_ACL_DENY, POL_ACL_ALLOW};
	struct pol_acl *a;
	struct acl_shared *sh;
	uint64_t fp = acl_fp(allow, deny);

	*out = NULL;
	for (int l = 0; l < 2; l++) {
		if (!lists[l])
			continue;
		for (uint32_t i = 0; i < lists[l]->n; i++)
			if (lists[l]->v[i].family == AF_INET)
				n4++;
			else
				n6++;
	}
	if (n4 + n6 == 0)
		return 0;
	for (sh = acl_registry; sh; sh = sh->next)
		if (sh->fp == fp) {
			sh->refs++;
			*out = sh->acl;
			return 0;
		}
	/* IPv4: a static table painted at once (pol_acl_build4); IPv6:
	 * rte_lpm6. Deny entries come first and allow entries after, so on
	 * equal prefixes allow (the exception) wins. */
	a = pol_acl_create(0, n6, SOCKET_ID_ANY);
	if (!a) {
		snprintf(err, errlen, "%s: cannot create table (%u entries): "
				      "%s", what, n4 + n6, strerror(errno));
		return -ENOMEM;
	}
	{
		struct pol_acl_entry4 *e4 = malloc(sizeof(*e4) * (n4 + 1));
		uint32_t k = 0;
		int r = 0;

		if (!e4) {
			pol_acl_free(a);
			snprintf(err, errlen, "%s: out of memory", what);
			return -ENOMEM;
		}
		for (int l = 0; l < 2 && r == 0; l++)
			for (uint32_t i = 0; lists[l] && i < lists[l]->n && r == 0;
			     i++) {
				const struct ctl_cidr *c = &lists[l]->v[i];

				if (c->family == AF_INET) {
					uint32_t ip;

					memcpy(&ip, c->addr, 4);
					e4[k].ip = ntohl(ip);
					e4[k].depth = c->prefix_len;
					e4[k].value = vals[l];
					k++;
				} else {
					r = pol_acl_add6(a, c->addr,
							 c->prefix_len,
							 vals[l]);
					if (r < 0)
						snprintf(err, errlen,
							 "%s: entry %u: %s",
							 what, i,
							 strerror(-r));
				}
			}
		if (r == 0 && k) {
			r = pol_acl_build4(a, e4, k);
			if (r < 0)
				snprintf(err, errlen, "%s: %s", what,
					 strerror(-r));
		}
		free(e4);
		if (r < 0) {
			pol_acl_free(a);
			return r;
		}
	}
	sh = calloc(1, sizeof(*sh));
	if (sh) {
		sh->acl = a;
		sh->fp = fp;
		sh->refs = 1;
		sh->next = acl_registry;
		acl_registry = sh;
	}
	*out = a;
	return 0;
}

static int list_build(char **v, uint32_t n, struct pol_addrlist **out,
		      const char *what, char *err, size_t errlen)
{
	struct pol_addrlist *l;

	*out = NULL;
	if (n == 0)
		return 0;
	l = pol_addrlist_create(n);
	if (!l) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		int r = pol_addrlist_add(l, v[i]);

		if (r < 0) {
			snprintf(err, errlen, "%s: entry '%s': %s", what, v[i],
				 strerror(-r));
			pol_addrlist_free(l);
			return r;
		}
	}
	*out = l;
	return 0;
}

static int restrict_build(const struct ctl_addr_list *c, struct mxg_snapshot_restrict *r,
			  const char *what, char *err, size_t errlen)
{
	int e = list_build(c->accept, c->n_accept, &r->accept, what, err,
			   errlen);

	if (e == 0)
		e = list_build(c->reject, c->n_reject, &r->reject, what, err,
			       errlen);
	return e;
}

static void restrict_free(struct mxg_snapshot_restrict *r)
{
	pol_addrlist_free(r->accept);
	pol_addrlist_free(r->reject);
	r->accept = r->reject = NULL;
}

/* ------------------------------------------------------------ build */

/* The session-ticket key ring every TLS context of every snapshot shares
 * (so a ticket from before a reload still resumes, on any core): made at
 * the first snapshot with TLS, rotated by mxg_snapshot_tls_rotate(),
 * freed never (one per process). Main lcore only. */
static struct tls_ticket_ring *ticket_ring;

int mxg_snapshot_tls_rotate(void)
{
	return ticket_ring ? tls_ticket_ring_rotate(ticket_ring) : 0;
}

/* The AUTH stores of the policy (issue 14): loaded by the config
 * loader, owned by s->cfg.auth, swapped with the snapshot. */
static void auth_build(struct mxg_snapshot *s)
{
	const struct ctl_auth_config *a = &s->cfg.auth;

	s->auth_users = a->users;
	s->sender_map = a->sender_map;
	snprintf(s->gss.keytab, sizeof(s->gss.keytab), "%s",
		 a->gssapi_keytab ? a->gssapi_keytab : "");
	snprintf(s->gss.service, sizeof(s->gss.service), "%s",
		 a->gssapi_service ? a->gssapi_service : "");
}

/* AUTH on one listener (issue 14): the mechanisms the engine offers
 * and the SASL machine accepts. The engine offers AUTH only after TLS
 * unless the listener allows cleartext (SMTP_CFG_CLEARTEXT_AUTH); the
 * gateway asks the transport again (xprt_is_secure) before a PLAIN or
 * LOGIN exchange. */
static void listener_auth_build(const struct mxg_snapshot *s,
				const struct ctl_listener *cl,
				struct mxg_snapshot_listener *l)
{
	static const unsigned bits[] = {AUTH_MECH_PLAIN, AUTH_MECH_LOGIN,
					AUTH_MECH_GSSAPI};
	size_t off = 0;

	l->auth_mechs[0] = '\0';
	l->sasl.mechanisms = cl->auth == CTL_AUTH_OFF ? 0 : cl->auth_mechanisms;
	if (!s->cfg.auth.gssapi_service)
		l->sasl.mechanisms &= ~(unsigned)AUTH_MECH_GSSAPI;
	l->sasl.allow_cleartext = cl->auth_allow_cleartext;
	l->sasl.allow_authzid = false;
	l->sasl.gss_realm = s->cfg.auth.gssapi_realm;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (l->sasl.mechanisms & bits[i])
			off += (size_t)snprintf(
				l->auth_mechs + off, sizeof(l->auth_mechs) - off,
				"%s%s", off ? " " : "",
				auth_mech_name((enum auth_mech)bits[i]));
	l->smtp.auth_mechanisms = l->auth_mechs;
	if (cl->auth_allow_cleartext)
		l->smtp.flags |= SMTP_CFG_CLEARTEXT_AUTH;
}

static int listeners_build(struct mxg_snapshot *s, char *err, size_t errlen)
{
	const struct ctl_config *cfg = &s->cfg;
	size_t smem = 0, sbuf = 0;

	s->listeners = calloc(cfg->n_listeners, sizeof(*s->listeners));
	if (!s->listeners)
		return -ENOMEM;
	s->n_listeners = cfg->n_listeners;
	for (uint32_t i = 0; i < cfg->n_listeners; i++) {
		const struct ctl_listener *cl = &cfg->listeners[i];
		struct mxg_snapshot_listener *l = &s->listeners[i];
		struct smtp_config *sc = &l->smtp;
		char what[96];
		size_t m;
		int r;

		l->cl = cl;
		l->tls = cl->tls.ctx;
		if (l->tls) {
			if (ticket_ring == NULL)
				ticket_ring = tls_ticket_ring_new();
			if (ticket_ring == NULL)
				return -ENOMEM;
			/* Before publication: the context is not shared yet. */
			tls_server_ctx_set_ring(l->tls, ticket_ring);
		}
		l->idx = i;
		l->port = cl->port;
		smtp_config_defaults(sc);
		if (cl->hostname && cl->hostname[0])
			sc->hostname = cl->hostname;
		if (cl->banner && cl->banner[0])
			sc->banner = cl->banner;
		if (!s->hostname)
			s->hostname = sc->hostname;
		sc->max_msg_size = cl->max_message_size;
		sc->max_rcpts = cl->max_recipients;
		sc->max_errors = cl->max_errors;
		/* Issue 17: a pipelined group of up to 64 RCPTs goes to the
		 * backend at once (delivery.c); the reply buffer keeps 512
		 * octets for each deferred reply above its 1,408 reserve
		 * (docs/smtp-engine.md), so it is sized for 64. Reserved
		 * memory: only the octets written become resident. */
		sc->max_rcpt_deferred = SMTP_RCPT_DEFER_MAX;
		sc->out_buf_size = 1408 + SMTP_RCPT_DEFER_MAX *
					      SMTP_RCPT_DEFER_REPLY_MAX;
		sc->bare_eol = cl->bare_lf == CTL_BARE_LF_NORMALIZE
				       ? SMTP_BARE_EOL_NORMALIZE
				       : SMTP_BARE_EOL_REJECT;
		if (cl->pipelining_enforce)
			sc->flags |= SMTP_CFG_SYNC_ENFORCE;
		/* TLS (issue 13): STARTTLS itself is offered per connection
		 * by its transport (client.c); required and implicit are
		 * the engine's to enforce. */
		if (l->tls && cl->tls.mode == CTL_TLS_REQUIRED)
			sc->flags |= SMTP_CFG_TLS_REQUIRED;
		if (l->tls && cl->tls.mode == CTL_TLS_IMPLICIT)
			sc->flags |= SMTP_CFG_TLS_ACTIVE;
		sc->tmo_greeting_ms = cl->timeouts.greeting_ms;
		sc->tmo_command_ms = cl->timeouts.command_ms;
		sc->tmo_mail_ms = cl->timeouts.mail_ms;
		sc->tmo_rcpt_ms = cl->timeouts.rcpt_ms;
		sc->tmo_data_init_ms = cl->timeouts.data_init_ms;
		sc->tmo_data_block_ms = cl->timeouts.data_block_ms;
		sc->tmo_data_term_ms = cl->timeouts.data_term_ms;
		listener_auth_build(s, cl, l);
		m = smtp_session_memsize_pooled(sc);
		sbuf = RTE_MAX(sbuf, smtp_session_bufsize(sc));
		if (m == 0) {
			snprintf(err, errlen,
				 "listener %s: invalid SMTP settings",
				 cl->name);
			return -EINVAL;
		}
		smem = RTE_MAX(smem, m);

		snprintf(what, sizeof(what), "listener %s networks", cl->name);
		/* networks lists what is served: entries are ALLOW,
		 * everything else misses. */
		r = acl_build(&cl->networks, NULL, &l->networks, what, err,
			      errlen);
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "listener %s allow/deny",
			 cl->name);
		r = acl_build(&cl->allow, &cl->deny, &l->acl, what, err,
			      errlen);
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "listener %s senders", cl->name);
		r = restrict_build(&cl->senders, &l->senders, what, err,
				   errlen);
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "listener %s recipients",
			 cl->name);
		r = restrict_build(&cl->recipients, &l->recipients, what, err,
				   errlen);
		if (r < 0)
			return r;
	}
	s->smtp_mem = RTE_ALIGN_CEIL(smem, 64);
	s->smtp_buf = RTE_ALIGN_CEIL(sbuf, 64);
	return 0;
}

static int pools_build(struct mxg_snapshot *s)
{
	const struct ctl_config *cfg = &s->cfg;
	uint32_t n_srv = 0, n_dom = 0, si = 0, di = 0;
	size_t rmem = 0;
	uint64_t fp = FNV_INIT;

	s->pools = calloc(cfg->n_pools, sizeof(*s->pools));
	s->rp = calloc(cfg->n_pools, sizeof(*s->rp));
	if (!s->pools || !s->rp)
		return -ENOMEM;
	s->n_pools = cfg->n_pools;
	for (uint32_t p = 0; p < cfg->n_pools; p++) {
		n_srv += cfg->pools[p].n_servers;
		n_dom += cfg->pools[p].n_domains;
	}
	/* Maildir pools get one placeholder server (relay_pools wants >= 1;
	 * it is never selected: the glue never asks a Maildir pool). */
	s->rs = calloc(n_srv + cfg->n_pools, sizeof(*s->rs));
	s->domain_ptrs = calloc(n_dom + 1, sizeof(*s->domain_ptrs));
	if (!s->rs || !s->domain_ptrs)
		return -ENOMEM;
	fp = fnv(fp, &cfg->default_pool, sizeof(cfg->default_pool));
	for (uint32_t p = 0; p < cfg->n_pools; p++) {
		const struct ctl_pool *cp = &cfg->pools[p];
		struct mxg_snapshot_pool *gp = &s->pools[p];
		struct relay_pool_config *rp = &s->rp[p];
		struct relay_client_config *rc = &gp->rc;
		size_t m;

		gp->cp = cp;
		gp->maildir = cp->type == CTL_POOL_MAILDIR;
		s->has_maildir |= gp->maildir;
		rp->name = cp->name;
		rp->domains = s->domain_ptrs + di;
		rp->n_domains = cp->n_domains;
		for (uint32_t d = 0; d < cp->n_domains; d++)
			s->domain_ptrs[di++] = cp->domains[d];
		rp->servers = s->rs + si;
		if (gp->maildir || cp->n_servers == 0) {
			s->rs[si].addr = 0x7f000001;
			s->rs[si].port = 1;
			s->rs[si].weight = 1;
			si++;
			rp->n_servers = 1;
		} else {
			for (uint32_t k = 0; k < cp->n_servers; k++, si++) {
				s->rs[si].addr = cp->servers[k].address;
				s->rs[si].v6 = cp->servers[k].v6;
				memcpy(s->rs[si].addr6,
				       cp->servers[k].address6, 16);
				s->rs[si].port = cp->servers[k].port;
				s->rs[si].weight = cp->servers[k].weight;
			}
			rp->n_servers = cp->n_servers;
		}
		rp->max_conns = cp->max_conns;
		rp->max_conns_per_server = cp->max_conns_per_server;
		rp->idle_max = cp->idle_max;
		rp->idle_max_age_ms = cp->idle_max_age_ms;
		rp->fail_after = cp->health_fail_after;
		rp->retry_ms = cp->health_retry_ms;
		rp->check_interval_ms = gp->maildir ? 0 : cp->health_interval_ms;

		relay_client_config_defaults(rc);
		rc->tls = cp->tls.mode == CTL_POOL_TLS_REQUIRED
				  ? RELAY_TLS_REQUIRED
			  : cp->tls.mode == CTL_POOL_TLS_OPPORTUNISTIC
				  ? RELAY_TLS_OPPORTUNISTIC
				  : RELAY_TLS_OFF;
		rc->helo_name = cp->helo_name && cp->helo_name[0]
					? cp->helo_name
					: (s->hostname ? s->hostname
						       : "localhost");
		rc->client_info = cp->client_info == CTL_CINFO_XCLIENT
					  ? RELAY_CINFO_XCLIENT
				  : cp->client_info == CTL_CINFO_PROXY
					  ? RELAY_CINFO_PROXY
					  : RELAY_CINFO_NONE;
		rc->tmo_connect_ms = ms_or(cp->timeouts.connect_ms,
					   rc->tmo_connect_ms);
		rc->tmo_greeting_ms = ms_or(cp->timeouts.greeting_ms,
					    rc->tmo_greeting_ms);
		rc->tmo_ehlo_ms = ms_or(cp->timeouts.ehlo_ms, rc->tmo_ehlo_ms);
		rc->tmo_xclient_ms = ms_or(cp->timeouts.xclient_ms,
					   rc->tmo_xclient_ms);
		rc->tmo_mail_ms = ms_or(cp->timeouts.mail_ms, rc->tmo_mail_ms);
		rc->tmo_rcpt_ms = ms_or(cp->timeouts.rcpt_ms, rc->tmo_rcpt_ms);
		rc->tmo_data_ms = ms_or(cp->timeouts.data_ms, rc->tmo_data_ms);
		rc->tmo_data_block_ms = ms_or(cp->timeouts.data_block_ms,
					      rc->tmo_data_block_ms);
		rc->tmo_data_end_ms = ms_or(cp->timeouts.data_end_ms,
					    rc->tmo_data_end_ms);
		rc->tmo_rset_ms = ms_or(cp->timeouts.rset_ms, rc->tmo_rset_ms);
		rc->tmo_quit_ms = ms_or(cp->timeouts.quit_ms, rc->tmo_quit_ms);
		m = relay_client_memsize(rc);
		rmem = RTE_MAX(rmem, m);

		/* Everything that shapes the per-core pool state or a
		 * backend conversation goes into the fingerprint. */
		fp = fnv_str(fp, cp->name);
		fp = fnv(fp, &gp->maildir, sizeof(gp->maildir));
		for (uint32_t d = 0; d < cp->n_domains; d++)
			fp = fnv_str(fp, cp->domains[d]);
		fp = fnv(fp, rp->servers,
			 rp->n_servers * sizeof(*rp->servers));
		fp = fnv(fp, &rp->max_conns,
			 offsetof(struct relay_pool_config, check_interval_ms) +
				 sizeof(rp->check_interval_ms) -
				 offsetof(struct relay_pool_config, max_conns));
		fp = fnv_str(fp, rc->helo_name);
		fp = fnv(fp, &rc->client_info, sizeof(rc->client_info));
		fp = fnv(fp, &rc->tmo_connect_ms, sizeof(uint32_t) * 11);
	}
	s->relay_mem = RTE_ALIGN_CEIL(rmem, 64);
	s->rpc.pools = s->rp;
	s->rpc.n_pools = cfg->n_pools;
	s->rpc.default_pool = cfg->default_pool;
	s->pools_fp = fp;
	return 0;
}

static int policy_build(struct mxg_snapshot *s, char *err, size_t errlen)
{
	const struct ctl_config *cfg = &s->cfg;
	int r;

	r = acl_build(&cfg->policy.allow, &cfg->policy.deny, &s->acl,
		      "policy allow/deny", err, errlen);
	if (r < 0)
		return r;
	r = acl_build(&cfg->policy.relay_networks, NULL, &s->relay_nets,
		      "policy relay_networks", err, errlen);
	if (r < 0)
		return r;
	s->domains = pol_domains_create(cfg->policy.n_domains + 1);
	if (!s->domains) {
		snprintf(err, errlen, "accepted domains: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cfg->policy.n_domains; i++) {
		const struct ctl_domain *d = &cfg->policy.domains[i];
		enum pol_dom_type t =
			d->type == CTL_DOM_INTERNAL_RELAY ? POL_DOM_INTERNAL_RELAY
			: d->type == CTL_DOM_EXTERNAL_RELAY
				? POL_DOM_EXTERNAL_RELAY
				: POL_DOM_AUTHORITATIVE;

		r = pol_domains_add(s->domains, d->name, strlen(d->name),
				    d->subdomains, t);
		if (r < 0) {
			snprintf(err, errlen, "accepted domain '%s': %s",
				 d->name, strerror(-r));
			return r;
		}
	}
	r = restrict_build(&cfg->policy.senders, &s->senders, "policy senders",
			   err, errlen);
	if (r < 0)
		return r;
	r = restrict_build(&cfg->policy.recipients, &s->recipients,
			   "policy recipients", err, errlen);
	if (r < 0)
		return r;
	if (cfg->policy.n_rate_limits) {
		s->rules = calloc(cfg->policy.n_rate_limits, sizeof(*s->rules));
		if (!s->rules)
			return -ENOMEM;
	}
	s->n_rules = cfg->policy.n_rate_limits;
	for (uint32_t i = 0; i < s->n_rules; i++) {
		const struct ctl_rate_limit *c = &cfg->policy.rate_limits[i];
		struct mxg_snapshot_rule *g = &s->rules[i];
		uint64_t fp = FNV_INIT;

		g->name = c->name;
		g->key = c->key;
		g->what = c->what;
		g->per_minute = c->per_minute;
		g->burst = c->burst ? c->burst : c->per_minute;
		g->listener = -1;
		if (c->listener)
			for (uint32_t k = 0; k < s->n_listeners; k++)
				if (strcmp(s->listeners[k].cl->name,
					   c->listener) == 0)
					g->listener = (int32_t)k;
		fp = fnv_str(fp, c->name);
		fp = fnv(fp, &g->key, sizeof(g->key));
		fp = fnv(fp, &g->what, sizeof(g->what));
		fp = fnv_str(fp, c->listener);
		g->fp = fp;
	}
	s->rate_table_size = cfg->policy.rate_table_size
				     ? cfg->policy.rate_table_size
				     : 65536;
	s->block_table_size = cfg->policy.block_table_size
				      ? cfg->policy.block_table_size
				      : 16384;
	s->ipv6_prefix = (uint8_t)(cfg->policy.ipv6_prefix
					   ? cfg->policy.ipv6_prefix
					   : 64);
	return 0;
}

/* Content rules (issue 15): each listener's compiled set, and one
 * Hyperscan scratch per dataplane core that fits every set. */
static int content_build(struct mxg_snapshot *s, char *err, size_t errlen)
{
	void *proto = NULL;
	uint32_t cores = s->cfg.stack.cores;
	int r = 0;

	if (cores > MXG_MAX_CORES)
		cores = MXG_MAX_CORES;
	for (uint32_t i = 0; i < s->n_listeners; i++) {
		const struct ctl_listener *cl = s->listeners[i].cl;
		struct ctl_content_set *cs;

		if (cl->content.set < 0)
			continue;
		cs = &s->cfg.content_sets[cl->content.set];
		r = ctl_content_hits_acquire(cs);
		if (r < 0)
			goto out;
		s->listeners[i].content = cs->rules;
		s->listeners[i].content_hits = cs->hits;
		r = content_scratch_grow(s->listeners[i].content, &proto);
		if (r < 0)
			goto out;
	}
	if (proto == NULL)
		return 0;
	for (uint32_t k = 0; k < cores && r == 0; k++)
		r = content_scratch_clone(proto, &s->content_scratch[k]);
out:
	content_scratch_free(proto);
	if (r < 0)
		snprintf(err, errlen, "content rules: no memory for the "
			 "Hyperscan scratch or the hit counters");
	return r;
}

int mxg_snapshot_build(struct ctl_config *cfg, uint64_t generation,
		       struct mxg_snapshot **out, char *err, size_t errlen)
{
	struct mxg_snapshot *s;
	size_t bytes = 0;
	int r;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	s = aligned_alloc(RTE_CACHE_LINE_SIZE,
			  RTE_ALIGN_CEIL(sizeof(*s), RTE_CACHE_LINE_SIZE));
	if (!s) {
		ctl_config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->generation = generation;
	s->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	auth_build(s);

	r = listeners_build(s, err, errlen);
	if (r == 0)
		r = pools_build(s);
	if (r == 0)
		r = policy_build(s, err, errlen);
	if (r == 0)
		r = content_build(s, err, errlen);
	if (r < 0) {
		if (r == -ENOMEM && err && !err[0])
			snprintf(err, errlen, "out of memory");
		mxg_snapshot_free(s);
		return r;
	}
	if (s->acl)
		bytes += pol_acl_memory(s->acl);
	if (s->relay_nets)
		bytes += pol_acl_memory(s->relay_nets);
	bytes += pol_domains_memory(s->domains);
	for (uint32_t i = 0; i < s->n_listeners; i++) {
		if (s->listeners[i].networks)
			bytes += pol_acl_memory(s->listeners[i].networks);
		if (s->listeners[i].acl)
			bytes += pol_acl_memory(s->listeners[i].acl);
	}
	s->tables_bytes = (uint32_t)(bytes / 1024);
	*out = s;
	return 0;
}

void mxg_snapshot_free(struct mxg_snapshot *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; s->listeners && i < s->n_listeners; i++) {
		struct mxg_snapshot_listener *l = &s->listeners[i];

		acl_put(l->networks);
		acl_put(l->acl);
		restrict_free(&l->senders);
		restrict_free(&l->recipients);
	}
	free(s->listeners);
	free(s->pools);
	free(s->rp);
	free(s->rs);
	free(s->domain_ptrs);
	acl_put(s->acl);
	acl_put(s->relay_nets);
	pol_domains_free(s->domains);
	restrict_free(&s->senders);
	restrict_free(&s->recipients);
	free(s->rules);
	for (int k = 0; k < MXG_MAX_CORES; k++)
		content_scratch_free(s->content_scratch[k]);
	ctl_config_free(&s->cfg);
	free(s);
}

uint32_t mxg_snapshot_refs(const struct mxg_snapshot *s)
{
	uint32_t n = 0;

	for (int k = 0; k < MXG_MAX_CORES; k++)
		n += __atomic_load_n(&s->refs[k].n, __ATOMIC_ACQUIRE);
	return n;
}

const struct mxg_snapshot_listener *mxg_snapshot_listener(const struct mxg_snapshot *s,
						uint16_t port)
{
	for (uint32_t i = 0; i < s->n_listeners; i++)
		if (s->listeners[i].port == port)
			return &s->listeners[i];
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

int mxg_snapshot_reloadable(const struct mxg_snapshot *o,
			    const struct mxg_snapshot *n, char *err,
			    size_t errlen)
{
	const struct ctl_config *a = &o->cfg, *b = &n->cfg;
	const char *what = NULL;

	if (!str_eq(a->stack.port, b->stack.port) ||
	    a->stack.address != b->stack.address ||
	    a->stack.prefix_len != b->stack.prefix_len ||
	    a->stack.gateway != b->stack.gateway ||
	    memcmp(a->stack.address6, b->stack.address6, 16) != 0 ||
	    a->stack.prefix6_len != b->stack.prefix6_len ||
	    memcmp(a->stack.gateway6, b->stack.gateway6, 16) != 0 ||
	    a->stack.cores != b->stack.cores ||
	    a->stack.busy_poll != b->stack.busy_poll ||
	    a->stack.max_conns != b->stack.max_conns ||
	    a->stack.syn_backlog != b->stack.syn_backlog ||
	    a->stack.sessions_per_core != b->stack.sessions_per_core ||
	    a->stack.backends_per_core != b->stack.backends_per_core)
		what = "the stack section";
	else if (!str_eq(a->maildir.path, b->maildir.path) ||
		 a->maildir.workers != b->maildir.workers ||
		 a->maildir.max_jobs != b->maildir.max_jobs)
		what = "the maildir section";
	else if (a->tls.workers != b->tls.workers)
		what = "tls.workers";
	else if (!str_eq(a->content_quarantine_maildir,
			 b->content_quarantine_maildir))
		what = "content_quarantine_maildir";
	else if (!str_eq(a->log.file, b->log.file))
		what = "log.file";
	else if (n->has_maildir && !o->has_maildir)
		what = "a first Maildir pool";
	else if (n->smtp_mem > o->smtp_mem || n->smtp_buf > o->smtp_buf ||
		 n->relay_mem > o->relay_mem)
		what = "per-session buffer sizes";
	if (!what)
		return 0;
	snprintf(err, errlen,
		 "%s: %s changed; that needs a restart (nothing was "
		 "changed)",
		 b->source ? b->source : "config", what);
	return -EINVAL;
}
