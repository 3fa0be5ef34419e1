/*
 * client_policy.c - client policy checks.
 *
 * Owner: one dataplane lcore.
 *
 * What it does: the checks the session runs against the adopted snapshot
 * and the core's pushed state: connection control at accept (pushed blocks
 * and allows, networks, allow/deny lists, connection limits per listener
 * and per client IP, connection rate, rate rules), MAIL policy (AUTH
 * required, sender restrictions, messages per connection, rate rules) and
 * RCPT policy (relay access, recipient restrictions, rate rules).
 *
 * Promises: no I/O; each refusal counts one stats counter and answers the
 * code DESIGN 6 gives; a connection counted by policy_conn_limits is
 * uncounted by policy_conn_uncount.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

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

#include "content/rules.h"
#include "dataplane/clock.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#include "dataplane/gateway/auth.h"
#include "dataplane/gateway/client_policy.h"
#include "dataplane/gateway/content.h"
#include "dataplane/gateway/log.h"
#include "dataplane/gateway/session.h"

/* Effective limits of listener l: the core's table when l belongs to the
 * current snapshot (overrides applied), else its configured values. */
static struct gw_limits policy_listener_limits(const struct gw_core *gc,
				  const struct mxg_snapshot_listener *l)
{
	const struct mxg_snapshot *sn = gc->snap;
	struct gw_limits e;

	if (l >= sn->listeners && l < sn->listeners + sn->n_listeners &&
	    l->idx < gc->listener_limits_cap)
		return gc->listener_limits[l->idx];
	e.max_conn = l->cl->max_connections;
	e.per_ip = l->cl->max_connections_per_ip;
	e.rate = l->cl->connection_rate_per_ip;
	e.msgs = l->cl->max_messages_per_connection;
	return e;
}

static void policy_rule_params(const struct gw_core *gc,
			       const struct mxg_snapshot *sn, uint32_t i,
			       uint32_t *per_minute, uint32_t *burst)
{
	if (sn == gc->snap && i < gc->rule_limits_cap) {
		*per_minute = gc->rule_limits[i].per_minute;
		*burst = gc->rule_limits[i].burst;
	} else {
		*per_minute = sn->rules[i].per_minute;
		*burst = sn->rules[i].burst;
	}
}

/* Rate-limit rules of sn for event what on listener l: every rule whose
 * key can be formed takes one token (cost). False (and the rule's name in
 * *hit) when one is exhausted. Rules are checked in file order and stop at
 * the first refusal, so a refused event costs nothing in later rules. */
/* The key of s's per-IP rate buckets: the IPv4 address (4 bytes, host
 * order), or the client's IPv6 prefix (s->ipkey, 16 bytes; prefix24: the
 * /48 instead, for the rule key "ip24"). */
static const void *policy_ip_key(const struct gw_sess *s, bool prefix24,
				 uint8_t buf[16], size_t *len)
{
	if (s->client_v6) {
		if (!prefix24) {
			*len = 16;
			return s->ipkey;
		}
		pol_ipkey6(buf, s->client_addr.b, 48);
		*len = 16;
		return buf;
	}
	{
		uint32_t ip = rte_be_to_cpu_32(net_addr_v4(&s->client_addr));

		if (prefix24)
			ip &= 0xffffff00u;
		memcpy(buf, &ip, 4);
		*len = 4;
		return buf;
	}
}

static bool policy_rules_take(struct gw_core *gc, const struct mxg_snapshot *sn,
			      const struct mxg_snapshot_listener *l,
			      enum ctl_rl_what what, const struct gw_sess *s,
			      const char *sdom, size_t sdom_len,
			      const char *user, uint32_t cost, const char **hit)
{
	for (uint32_t i = 0; i < sn->n_rules; i++) {
		const struct mxg_snapshot_rule *r = &sn->rules[i];
		uint8_t kbuf[16];
		uint32_t pm, burst;
		const void *key;
		size_t klen;

		if (r->what != what ||
		    (r->listener >= 0 && (uint32_t)r->listener != l->idx))
			continue;
		switch (r->key) {
		case CTL_RL_IP:
		case CTL_RL_IP24:
			key = policy_ip_key(s, r->key == CTL_RL_IP24, kbuf,
					    &klen);
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
		policy_rule_params(gc, sn, i, &pm, &burst);
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
static uint64_t policy_conn_rate_fp(const struct mxg_snapshot_listener *l)
{
	return pol_hash64(l->cl->name, strlen(l->cl->name),
			  0x636f6e6e72617465ULL);
}

/* Connection control (DESIGN 6), in order: pushed blocks and allows, the
 * listener's networks, the listener's allow/deny, the global allow/deny
 * (an allow entry is an exception inside a deny entry). */
static int policy_acl_lookup(const struct pol_acl *a,
			     const struct net_addr *client, uint32_t *v)
{
	if (net_addr_is_v4(client))
		return pol_acl_lookup4(
			a, rte_be_to_cpu_32(net_addr_v4(client)), v);
	return pol_acl_lookup6(a, client->b, v);
}

bool policy_conn_denied(struct gw_core *gc,
			const struct mxg_snapshot_listener *l,
			const struct net_addr *client)
{
	const struct mxg_snapshot *sn = gc->snap;
	uint32_t v;

	switch (net_addr_is_v4(client)
			? pol_block_lookup4(
				  gc->blocks,
				  rte_be_to_cpu_32(net_addr_v4(client)),
				  gc->now_us)
			: pol_block_lookup6(gc->blocks, client->b,
					    gc->now_us)) {
	case POL_ACL_DENY:
		return true;
	case POL_ACL_ALLOW:
		return false;
	default:
		break;
	}
	if (l->networks && policy_acl_lookup(l->networks, client, &v) < 0)
		return true;
	if (l->acl && policy_acl_lookup(l->acl, client, &v) == 0)
		return v == POL_ACL_DENY;
	if (sn->acl && policy_acl_lookup(sn->acl, client, &v) == 0)
		return v == POL_ACL_DENY;
	return false;
}

/* A refused connection does not hold a listener or per-IP slot while
 * its 421 is flushed and the close completes. */
static enum conn_verdict policy_conn_uncount(struct gw_sess *s,
					     enum conn_verdict v)
{
	struct gw_core *gc = s->gc;

	if (s->counted_listener)
		__atomic_sub_fetch(&gc->gw->lconns[s->lport], 1,
				   __ATOMIC_RELAXED);
	if (s->counted_ip)
		pol_conns_dec_key(gc->conns_per_ip, s->ipkey);
	s->counted_listener = s->counted_ip = false;
	return v;
}

/* The limits at connect: listener total (all cores), per client IP (an
 * IPv6 client: per prefix, s->ipkey), connection rate per IP, rate
 * rules on connections. Counts the connection when it passes. */
enum conn_verdict policy_conn_limits(struct gw_sess *s, const char **hit)
{
	uint8_t kbuf[16];
	size_t klen;
	const void *key;
	struct gw_core *gc = s->gc;
	const struct mxg_snapshot_listener *l = s->lst;
	struct gw_limits e = policy_listener_limits(gc, l);
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
	s->counted_listener = true;
	if (!pol_conns_inc_key(gc->conns_per_ip, s->ipkey, e.per_ip))
		return policy_conn_uncount(s, CONN_LIMIT);
	s->counted_ip = true;
	key = policy_ip_key(s, false, kbuf, &klen);
	if (e.rate && !pol_rl_take(gc->rl, policy_conn_rate_fp(l), key, klen,
				   e.rate, e.rate, 1, gc->now_us)) {
		*hit = "connection_rate_per_ip";
		return policy_conn_uncount(s, CONN_RATE);
	}
	if (!policy_rules_take(gc, s->snap, l, CTL_RL_CONNECTIONS, s, NULL, 0,
			       NULL, 1, hit))
		return policy_conn_uncount(s, CONN_RATE);
	return CONN_OK;
}

/* Restriction lists: reject wins; a non-empty accept list admits only
 * what it matches. */
static bool policy_restricted(const struct mxg_snapshot_restrict *r,
			      const struct pol_addr *a)
{
	if (r->reject && pol_addrlist_match(r->reject, a))
		return true;
	if (r->accept && !pol_addrlist_match(r->accept, a))
		return true;
	return false;
}

bool policy_in_relay_networks(const struct gw_sess *s)
{
	uint32_t v;

	return s->snap->relay_nets &&
	       policy_acl_lookup(s->snap->relay_nets, &s->client_addr, &v) ==
		       0 &&
	       v == POL_ACL_ALLOW;
}

static bool policy_may_relay(const struct gw_sess *s)
{
	if (smtp_session_authenticated(s->sm) &&
	    s->lst->cl->relay_authenticated)
		return true;
	/* a verified client certificate in the listener's tls_partners
	 * (client_tls.c; Postfix's permit_tls_clientcerts) */
	if (s->tls_partner)
		return true;
	return policy_in_relay_networks(s);
}

/* MAIL FROM policy. Returns true when the verdict was given (refused). */
bool policy_mail(struct gw_sess *s, const struct smtp_mail *m)
{
	struct gw_core *gc = s->gc;
	const struct mxg_snapshot_listener *l = s->lst;
	struct gw_limits e = policy_listener_limits(gc, l);
	struct pol_addr a;
	const char *hit = NULL;
	bool authed = smtp_session_authenticated(s->sm);

	if (!authed && (l->cl->require_auth || !l->cl->allow_anonymous)) {
		gc->stats.mail_denied_auth++;
		sess_verdict(s, SMTP_V_REJECT, 530, "5.7.0",
			     "Authentication required");
		return true;
	}
	if (e.msgs && s->nmsgs >= e.msgs) {
		gc->stats.mail_denied_count++;
		log_line(gc, "event=limit sid=%s client=%s limit="
			 "max_messages_per_connection value=%u",
			 s->sid, s->client, e.msgs);
		sess_verdict(s, SMTP_V_CLOSE, 421, "4.7.0",
			     "Too many messages in this connection, reconnect");
		return true;
	}
	/* RFC 6409 6.1: an authenticated client sends as its own
	 * addresses (auth.sender_login_map) */
	if (auth_mail_refused(s, m))
		return true;
	pol_addr_parse(m->addr, m->addr_len, &a);
	/* RFC 5321 4.5.5: the null sender (bounces) is not restricted. */
	if (!m->null_sender && (policy_restricted(&s->snap->senders, &a) ||
				policy_restricted(&l->senders, &a))) {
		gc->stats.mail_denied_sender++;
		sess_verdict(s, SMTP_V_REJECT, 550, "5.7.1",
			     "Sender address rejected: Access denied");
		return true;
	}
	if (!policy_rules_take(gc, s->snap, l, CTL_RL_MESSAGES, s,
			m->null_sender ? NULL : a.domain, a.domain_len,
			       auth_login(s), 1,
			       &hit)) {
		gc->stats.mail_rate_limited++;
		log_line(gc,
			 "event=rate_limited sid=%s client=%s rule=%s at=mail",
			 s->sid, s->client, hit ? hit : "-");
		sess_verdict(s, SMTP_V_REJECT, 451, "4.7.1",
			     "Message rate limit exceeded, try again later");
		return true;
	}
	if (content_gw_envelope(s, CONTENT_WHERE_MAIL, m->addr, m->addr_len))
		return true;
	return false;
}

/* RCPT TO policy: relay control, recipient restrictions, rate rules.
 * Returns true when the verdict was given (refused). */
bool policy_rcpt(struct gw_sess *s, const struct smtp_rcpt *r)
{
	struct gw_core *gc = s->gc;
	struct pol_addr a;
	enum pol_rcpt_result res;
	const char *hit = NULL;
	int type = 0;

	pol_addr_parse(r->addr, r->addr_len, &a);
	res = pol_rcpt_decide(&a, s->snap->domains, gc->dom_over,
			      policy_may_relay(s), &type);
	if (res == POL_RCPT_DENIED) {
		gc->stats.rcpt_denied_relay++;
		gc->stats.rcpts_rejected++;
		sess_verdict(s, SMTP_V_REJECT, 554, "5.7.1",
			     "Relay access denied");
		return true;
	}
	if (policy_restricted(&s->snap->recipients, &a) ||
	    policy_restricted(&s->lst->recipients, &a)) {
		gc->stats.rcpt_denied_restrict++;
		gc->stats.rcpts_rejected++;
		sess_verdict(s, SMTP_V_REJECT, 550, "5.7.1",
			     "Recipient address rejected: Access denied");
		return true;
	}
	{
		const char *from = sess_txn_ro(s)->from;
		const char *sd = memrchr(from, '@', strlen(from));
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
		if (!policy_rules_take(gc, s->snap, s->lst, CTL_RL_RECIPIENTS, s,
				       dl ? dom : NULL, dl, auth_login(s), 1,
				       &hit)) {
			gc->stats.rcpt_rate_limited++;
			gc->stats.rcpts_rejected++;
			log_line(gc,
				 "event=rate_limited sid=%s client=%s rule=%s "
				 "at=rcpt",
				 s->sid, s->client, hit ? hit : "-");
			sess_verdict(s, SMTP_V_REJECT, 451, "4.7.1",
				     "Recipient rate limit exceeded, try again "
				     "later");
			return true;
		}
	}
	if (content_gw_envelope(s, CONTENT_WHERE_RCPT, r->addr, r->addr_len)) {
		gc->stats.rcpts_rejected++;
		return true;
	}
	return false;
}
