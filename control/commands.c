/*
 * commands.c - what each admin command (mxgatectl) means, once, in one
 * table (control_register_commands): status, stats, reload, show-config,
 * the runtime pushes (block, allow, unblock, domain-add, domain-del,
 * limit, backend-down, backend-up) and drain. Pushes go to every
 * dataplane core over its push ring; a handler waits (at most 1 s) until
 * every core applied one and says how many did.
 *
 * Ownership: main lcore only (handlers run inside ctl_admin_poll). The
 * handlers read the published snapshot and write only struct control.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "control/admin.h"
#include "control/cidr.h"
#include "control/control.h"
#include "control/snapshot.h"
#include "dataplane/clock.h"

/* Room for one more distinct override key (limit or backend): true when
 * k is already there or was added. */
static bool key_room(char keys[][CTL_OVERRIDE_KEY], unsigned *n,
		     const char *k)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(keys[i], k) == 0)
			return true;
	if (*n == CTL_MAX_OVERRIDES)
		return false;
	snprintf(keys[(*n)++], CTL_OVERRIDE_KEY, "%s", k);
	return true;
}

static int command_status(const struct ctl_admin_req *req, char *out,
			  size_t outlen, void *ctx)
{
	(void)req;
	return report_status(ctx, out, outlen);
}

static int command_stats(const struct ctl_admin_req *req, char *out,
			 size_t outlen, void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)req;
	if (!f)
		return -ENOMEM;
	report_stats_json(ctx, f, false, false);
	fclose(f);
	if (len + 1 > outlen) {
		free(buf);
		snprintf(out, outlen, "stats larger than the reply limit");
		return -ENOSPC;
	}
	memcpy(out, buf, len + 1);
	free(buf);
	return 0;
}

static int command_reload(const struct ctl_admin_req *req, char *out,
			  size_t outlen, void *ctx)
{
	(void)req;
	return control_reload(ctx, "admin", out, outlen);
}

/* logrotate's postrotate: the log file by its path again (logger.c). */
static int command_reopen_log(const struct ctl_admin_req *req, char *out,
			      size_t outlen, void *ctx)
{
	(void)req;
	return logger_reopen(ctx, out, outlen);
}

/* Why a core could not apply p (err: its -errno). */
static const char *push_fail_reason(struct control *ctl,
				    const struct gw_push *p, int err)
{
	static char why[160];

	if (err == -ENOMEM && p->kind == GW_PUSH_LIMIT)
		return "effective limits not allocated (out of memory); the "
		       "override is kept and applied at the next reload or "
		       "limit push that can allocate them";
	if (err != -ENOSPC)
		return strerror(-err);
	switch (p->kind) {
	case GW_PUSH_BLOCK:
	case GW_PUSH_ALLOW:
		snprintf(why, sizeof(why),
			 "pushed-block table full (policy.block_table_size "
			 "= %u per core); unblock entries or raise it "
			 "(restart)",
			 gw_current(ctl->gw)->block_table_size);
		return why;
	case GW_PUSH_DOMAIN_ADD:
	case GW_PUSH_DOMAIN_DEL:
		return "pushed-domain table full (4096 per core); put the "
		       "domains in the configuration and reload";
	default:
		return "override table full (64 per core)";
	}
}

/* Sends p to every core and waits (at most 1 s) until all applied it. */
static int push_and_wait(struct control *ctl, struct gw_push *p, char *out,
			 size_t outlen)
{
	int64_t seq = gw_push_send(ctl->gw, p);
	uint64_t lat;
	struct gw_push_state states[MXG_MAX_CORES];
	unsigned n, nfail = 0;
	int err = 0;

	if (seq < 0) {
		snprintf(out, outlen, "push queue full; try again");
		return -EBUSY;
	}
	ctl->pushes++;
	n = control_cores_caught_up(ctl, (uint64_t)seq, 0, 1000, &lat, states);
	/* A core that took the push but could not apply it (its table
	 * full) says so; the reply names the error. Counted among the
	 * cores counted in n, from the state each had then (its seq load
	 * is an acquire: fail_seq/fail_err are consistent with it). */
	for (int k = 0; k < ctl->options->n_cores; k++)
		if (states[k].seq >= (uint64_t)seq &&
		    states[k].fail_seq == (uint64_t)seq) {
			nfail++;
			err = states[k].fail_err;
		}
	snprintf(out, outlen,
		 "{\"seq\":%lld,\"cores\":%u,\"cores_applied\":%u,"
		 "\"cores_failed\":%u,\"latency_us\":%llu%s%s%s}",
		 (long long)seq, ctl->options->n_cores, n - nfail, nfail,
		 (unsigned long long)lat, nfail ? ",\"error\":\"" : "",
		 nfail ? push_fail_reason(ctl, p, err) : "",
		 nfail ? "\"" : "");
	logger_printf(ctl, "event=push seq=%lld kind=%u name=\"%s\" "
			   "cores_applied=%u cores_failed=%u latency_us=%llu",
		      (long long)seq, p->kind, p->name, n - nfail, nfail,
		      (unsigned long long)lat);
	if (nfail)
		return err < 0 ? err : -EIO;
	return n == ctl->options->n_cores ? 0 : -ETIMEDOUT;
}

static int command_block(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	const char *cmd = ctl_admin_req_cmd(req);
	const char *cidr = ctl_admin_req_str(req, "cidr");
	struct gw_push p;
	struct ctl_cidr c;
	char why[128];
	int64_t exp = 0;
	uint32_t ip;

	memset(&p, 0, sizeof(p));
	if (!cidr) {
		snprintf(out, outlen, "%s: missing \"cidr\"", cmd);
		return -EINVAL;
	}
	if (ctl_cidr_parse(cidr, &c, why, sizeof(why)) < 0) {
		snprintf(out, outlen, "%s: bad CIDR '%s': %s", cmd, cidr, why);
		return -EINVAL;
	}
	if (ctl_admin_req_int(req, "expire", &exp) == -EINVAL || exp < 0 ||
	    exp > 10LL * 365 * 86400) {
		snprintf(out, outlen, "%s: bad \"expire\" (seconds, 0..%lld)",
			 cmd, 10LL * 365 * 86400);
		return -EINVAL;
	}
	if (c.family == AF_INET6) {
		p.v6 = true;
		memcpy(p.addr6, c.addr, 16);
	} else {
		memcpy(&ip, c.addr, 4);
		p.ip = ntohl(ip);
	}
	p.depth = c.prefix_len;
	p.kind = strcmp(cmd, "block") == 0   ? GW_PUSH_BLOCK
		 : strcmp(cmd, "allow") == 0 ? GW_PUSH_ALLOW
					     : GW_PUSH_UNBLOCK;
	p.expire_us = exp ? clock_us() + (uint64_t)exp * 1000000 : 0;
	snprintf(p.name, sizeof(p.name), "%s", cidr);
	return push_and_wait(ctl, &p, out, outlen);
}

static int command_domain(const struct ctl_admin_req *req, char *out,
		      size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	const char *cmd = ctl_admin_req_cmd(req);
	const char *d = ctl_admin_req_str(req, "domain");
	struct gw_push p;
	size_t n;

	memset(&p, 0, sizeof(p));
	if (!d || !d[0]) {
		snprintf(out, outlen, "%s: missing \"domain\"", cmd);
		return -EINVAL;
	}
	if (d[0] == '*' && d[1] == '.')
		d++;
	if (d[0] == '.') {
		p.subdomains = true;
		d++;
	}
	n = strlen(d);
	if (n && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= sizeof(p.name)) {
		snprintf(out, outlen, "%s: bad domain", cmd);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) {
			snprintf(out, outlen, "%s: bad domain (letters, "
					      "digits, '-', '.')", cmd);
			return -EINVAL;
		}
		p.name[i] = (char)tolower((unsigned char)ch);
	}
	p.kind = strcmp(cmd, "domain-add") == 0 ? GW_PUSH_DOMAIN_ADD
						: GW_PUSH_DOMAIN_DEL;
	return push_and_wait(ctl, &p, out, outlen);
}

static int command_limit(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	static const char *lfields[] = {"max_connections",
					"max_connections_per_ip",
					"connection_rate_per_ip",
					"max_messages_per_connection", NULL};
	const struct mxg_snapshot *sn = gw_current(ctl->gw);
	const char *key = ctl_admin_req_str(req, "key");
	const char *dot;
	struct gw_push p;
	int64_t v;
	bool ok = false;

	memset(&p, 0, sizeof(p));
	if (!key || ctl_admin_req_int(req, "value", &v) < 0 || v < 0 ||
	    v > UINT32_MAX) {
		snprintf(out, outlen, "limit: need \"key\" and \"value\" "
				      "(0..4294967295)");
		return -EINVAL;
	}
	dot = strrchr(key, '.');
	if (dot && strncmp(key, "listener.", 9) == 0 && dot > key + 9) {
		size_t nl = (size_t)(dot - (key + 9));

		for (uint32_t i = 0; i < sn->n_listeners; i++) {
			const char *ln = sn->listeners[i].cl->name;

			if (strlen(ln) == nl && !strncmp(ln, key + 9, nl))
				for (int f = 0; lfields[f]; f++)
					ok |= !strcmp(dot + 1, lfields[f]);
		}
	} else if (dot && strncmp(key, "rate_limit.", 11) == 0 &&
		   dot > key + 11) {
		size_t nl = (size_t)(dot - (key + 11));

		for (uint32_t i = 0; i < sn->n_rules; i++) {
			const char *rn = sn->rules[i].name;

			if (rn && strlen(rn) == nl &&
			    !strncmp(rn, key + 11, nl))
				ok |= !strcmp(dot + 1, "per_minute") ||
				      !strcmp(dot + 1, "burst");
		}
	}
	if (!ok) {
		snprintf(out, outlen,
			 "limit: unknown key '%s' (listener.NAME.{max_"
			 "connections,max_connections_per_ip,connection_rate_"
			 "per_ip,max_messages_per_connection} or "
			 "rate_limit.NAME.{per_minute,burst} of the running "
			 "policy)",
			 key);
		return -EINVAL;
	}
	if (strlen(key) >= sizeof(p.name) ||
	    !key_room(ctl->limit_keys, &ctl->n_limit_keys, key)) {
		snprintf(out, outlen, "limit: too many distinct limit "
				      "overrides (%d); write them to the file "
				      "and reload",
			 CTL_MAX_OVERRIDES);
		return -ENOSPC;
	}
	p.kind = GW_PUSH_LIMIT;
	p.value = (uint32_t)v;
	snprintf(p.name, sizeof(p.name), "%s", key);
	return push_and_wait(ctl, &p, out, outlen);
}

static int command_backend(const struct ctl_admin_req *req, char *out,
		       size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	const struct mxg_snapshot *sn = gw_current(ctl->gw);
	const char *cmd = ctl_admin_req_cmd(req);
	const char *name = ctl_admin_req_str(req, "name");
	const char *slash, *hp;
	struct gw_push p;
	unsigned found = 0;

	memset(&p, 0, sizeof(p));
	if (!name || strlen(name) >= sizeof(p.name)) {
		snprintf(out, outlen, "%s: missing or long \"name\"", cmd);
		return -EINVAL;
	}
	slash = strchr(name, '/');
	hp = slash ? slash + 1 : name;
	for (uint32_t i = 0; i < sn->cfg.n_pools; i++) {
		const struct ctl_pool *cp = &sn->cfg.pools[i];

		if (slash && (strlen(cp->name) != (size_t)(slash - name) ||
			      strncmp(cp->name, name, (size_t)(slash - name))))
			continue;
		for (uint32_t k = 0; k < cp->n_servers; k++) {
			char s[64];

			relay_server_format(cp->servers[k].v6,
					    cp->servers[k].address,
					    cp->servers[k].address6,
					    cp->servers[k].port, s, sizeof(s));
			found += strcmp(s, hp) == 0;
		}
	}
	if (!found) {
		snprintf(out, outlen, "%s: no backend '%s' in the running "
				      "policy (ADDR:PORT or POOL/ADDR:PORT)",
			 cmd, name);
		return -ENOENT;
	}
	if (!key_room(ctl->backend_keys, &ctl->n_backend_keys, name)) {
		snprintf(out, outlen, "%s: too many backend overrides", cmd);
		return -ENOSPC;
	}
	p.kind = GW_PUSH_BACKEND;
	p.down = strcmp(cmd, "backend-down") == 0;
	snprintf(p.name, sizeof(p.name), "%s", name);
	return push_and_wait(ctl, &p, out, outlen);
}

static int command_drain(const struct ctl_admin_req *req, char *out,
		     size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	struct counters cs;
	struct gw_push p;
	char tmp[256];
	int r;

	(void)req;
	memset(&p, 0, sizeof(p));
	p.kind = GW_PUSH_DRAIN;
	snprintf(p.name, sizeof(p.name), "drain");
	r = push_and_wait(ctl, &p, tmp, sizeof(tmp));
	if (r < 0 && r != -ETIMEDOUT) {
		snprintf(out, outlen, "%s", tmp);
		return r;
	}
	if (!ctl->drain_started_us)
		ctl->drain_started_us = clock_us();
	control_counters(ctl, &cs);
	snprintf(out, outlen,
		 "{\"draining\":true,\"sessions_open\":%llu,"
		 "\"timeout_s\":300}",
		 (unsigned long long)cs.total.gw.sessions_live);
	return 0;
}

/* The running policy, for mxgatectl show-config. */
static int command_show_config(const struct ctl_admin_req *req, char *out,
		    size_t outlen, void *ctx)
{
	struct control *ctl = ctx;
	const struct mxg_snapshot *sn = gw_current(ctl->gw);
	const struct ctl_config *cf = &sn->cfg;
	size_t off = 0;
	char q[600];

	(void)req;
#define P(...)                                                                 \
	do {                                                                   \
		if (off < outlen)                                              \
			off += (size_t)snprintf(out + off, outlen - off,       \
						__VA_ARGS__);                  \
	} while (0)
	ctl_admin_json_str(q, sizeof(q), cf->source ? cf->source : "");
	P("{\"generation\":%llu,\"source\":%s,\"listeners\":[",
	  (unsigned long long)sn->generation, q);
	for (uint32_t i = 0; i < cf->n_listeners; i++) {
		const struct ctl_listener *l = &cf->listeners[i];

		ctl_admin_json_str(q, sizeof(q), l->name);
		P("%s{\"name\":%s,\"port\":%u,\"role\":\"%s\","
		  "\"networks\":%u,\"allow\":%u,\"deny\":%u,"
		  "\"deny_action\":\"%s\",\"allow_anonymous\":%s,"
		  "\"require_auth\":%s,\"relay_authenticated\":%s,"
		  "\"max_connections\":%u,\"max_connections_per_ip\":%u,"
		  "\"connection_rate_per_ip\":%u,"
		  "\"max_messages_per_connection\":%u,"
		  "\"max_recipients\":%u,\"max_message_size\":%llu}",
		  i ? "," : "", q, l->port, ctl_role_name(l->role),
		  l->networks.n, l->allow.n, l->deny.n,
		  l->deny_action == CTL_DENY_CLOSE ? "close" : "reply",
		  l->allow_anonymous ? "true" : "false",
		  l->require_auth ? "true" : "false",
		  l->relay_authenticated ? "true" : "false",
		  l->max_connections, l->max_connections_per_ip,
		  l->connection_rate_per_ip, l->max_messages_per_connection,
		  l->max_recipients,
		  (unsigned long long)l->max_message_size);
	}
	P("],\"accepted_domains\":%u,\"relay_networks\":[",
	  cf->policy.n_domains);
	for (uint32_t i = 0; i < cf->policy.relay_networks.n && i < 32; i++) {
		char c[CTL_CIDR_STRLEN];

		ctl_cidr_format(&cf->policy.relay_networks.v[i], c, sizeof(c));
		P("%s\"%s\"", i ? "," : "", c);
	}
	P("],\"allow\":%u,\"deny\":%u,\"rate_limits\":[",
	  cf->policy.allow.n, cf->policy.deny.n);
	for (uint32_t i = 0; i < sn->n_rules; i++) {
		static const char *keys[] = {"ip", "ip24", "sender_domain",
					     "user"};
		static const char *whats[] = {"connections", "messages",
					      "recipients"};

		ctl_admin_json_str(q, sizeof(q),
				   sn->rules[i].name ? sn->rules[i].name : "");
		P("%s{\"name\":%s,\"key\":\"%s\",\"what\":\"%s\","
		  "\"per_minute\":%u,\"burst\":%u}",
		  i ? "," : "", q, keys[sn->rules[i].key],
		  whats[sn->rules[i].what], sn->rules[i].per_minute,
		  sn->rules[i].burst);
	}
	P("],\"pools\":%u,\"tables_kib\":%u,\"limit_overrides\":%u,"
	  "\"backend_overrides\":%u}",
	  cf->n_pools, sn->tables_bytes, ctl->n_limit_keys, ctl->n_backend_keys);
#undef P
	if (off >= outlen) {
		snprintf(out, outlen, "policy larger than the reply limit");
		return -ENOSPC;
	}
	return 0;
}

/* The admin commands: one name, one handler. */
static const struct {
	const char *name;
	ctl_admin_handler_fn fn;
} commands[] = {
	{"status", command_status},
	{"stats", command_stats},
	{"reload", command_reload},
	{"show-config", command_show_config},
	{"block", command_block},
	{"allow", command_block},
	{"unblock", command_block},
	{"domain-add", command_domain},
	{"domain-del", command_domain},
	{"limit", command_limit},
	{"backend-down", command_backend},
	{"backend-up", command_backend},
	{"drain", command_drain},
	{"reopen-log", command_reopen_log},
};

void control_register_commands(struct control *ctl)
{
	for (size_t i = 0; i < RTE_DIM(commands); i++)
		ctl_admin_register(ctl->admin, commands[i].name,
				   commands[i].fn, ctl);
}
