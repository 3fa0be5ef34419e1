/*
 * config_policy.c - the policy section of the configuration file: global
 * allow/deny and relay networks, accepted domains, sender and recipient
 * restrictions, rate limits (docs/configuration.md), and the listeners'
 * inheritance of policy.deny_action.
 *
 * Threads: main lcore only (start-up, reload, --check-config). Allocates
 * for the configuration being loaded; errors through cfg_err().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

/* Key paths and messages are built with snprintf into fixed buffers; a
 * truncated message is still a message, so GCC's truncation warning is
 * noise here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "control/config_read.h"

static void parse_domain(struct ctx *x, const config_setting_t *e,
			 const char *path, struct ctl_config *c)
{
	static const char *const keys[] = {"domain", "type", NULL};
	static const char *const types[] = {"authoritative", "internal_relay",
					    "external_relay", NULL};
	struct ctl_domain d = {.type = CTL_DOM_AUTHORITATIVE};
	const config_setting_t *ds = e;
	char key[160], norm[256];
	const char *v, *why;
	int t = CTL_DOM_AUTHORITATIVE;

	snprintf(key, sizeof(key), "%s", path);
	if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
		cfg_check_keys(x, e, path, keys);
		cfg_get_enum(x, e, path, "type", types, &t);
		d.type = (enum ctl_domain_type)t;
		ds = config_setting_get_member(e, "domain");
		cfg_path_of(key, sizeof(key), path, "domain");
		if (ds == NULL) {
			cfg_err(x, cfg_line_of(e), key,
				"missing (a domain, e.g. \"example.com\", or "
				"\".example.com\" for it and its subdomains)");
			return;
		}
		if (!cfg_want_type(x, ds, key, CONFIG_TYPE_STRING,
			       "a string with a domain"))
			return;
	} else if (config_setting_type(e) != CONFIG_TYPE_STRING) {
		cfg_err(x, cfg_line_of(e), key,
			"%s, expected a string \"example.com\" or a group "
			"{ domain = \"example.com\"; type = \"...\"; }",
			cfg_type_name(config_setting_type(e)));
		return;
	}
	v = config_setting_get_string(ds);
	why = cfg_norm_domain(v, norm, &d.subdomains);
	if (why) {
		cfg_err(x, cfg_line_of(ds), key,
			"\"%s\": %s (a domain of letters, digits and '-' in "
			"dot-separated labels, e.g. \"example.com\", or "
			"\".example.com\" for it and its subdomains)",
			v, why);
		return;
	}
	d.line = cfg_line_of(ds);
	for (uint32_t k = 0; k < c->policy.n_domains; k++) {
		const struct ctl_domain *o = &c->policy.domains[k];

		if (o->subdomains == d.subdomains &&
		    strcmp(o->name, norm) == 0) {
			cfg_err(x, d.line, key,
				"\"%s\" is already an accepted domain at line "
				"%u (each domain once; \".%s\" and \"%s\" "
				"are two entries)",
				v, o->line, norm, norm);
			return;
		}
	}
	d.name = strdup(norm);
	if (d.name == NULL) {
		cfg_nomem(x, ds, key);
		return;
	}
	c->policy.domains[c->policy.n_domains++] = d;
}

/* One rate limit. Its listener is checked in cross_checks(), once every
 * listener is known. */
static void parse_rate_limit(struct ctx *x, const config_setting_t *g,
			     const char *path, unsigned idx,
			     struct ctl_rate_limit *r)
{
	static const char *const keys[] = {
		"name", "key", "what", "per_minute", "burst", "listener", NULL};
	static const char *const rkeys[] = {"ip", "ip24", "sender_domain",
					    "user", NULL};
	static const char *const whats[] = {"connections", "messages",
					    "recipients", NULL};
	static const char *const required[] = {"key", "what", "per_minute",
					       NULL};
	static const char *const valid[] = {
		"one of \"ip\" or \"ip24\" or \"sender_domain\" or \"user\"",
		"one of \"connections\" or \"messages\" or \"recipients\"",
		"an integer 1..10000000"};
	const config_setting_t *s;
	char key[160];
	int e;

	r->line = cfg_line_of(g);
	cfg_check_keys(x, g, path, keys);
	s = cfg_get_str(x, g, path, "name", 64, &r->name);
	if (s && r->name[0] == '\0') {
		cfg_path_of(key, sizeof(key), path, "name");
		cfg_err(x, cfg_line_of(s), key,
			"empty (a unique name, or leave it out for \"rl%u\")",
			idx);
	}
	if (r->name == NULL) {
		char def[16];

		snprintf(def, sizeof(def), "rl%u", idx);
		r->name = strdup(def);
		if (r->name == NULL)
			cfg_nomem(x, g, path);
	}
	for (int i = 0; required[i]; i++)
		if (config_setting_get_member(g, required[i]) == NULL) {
			cfg_path_of(key, sizeof(key), path, required[i]);
			cfg_err(x, r->line, key, "missing (%s)", valid[i]);
		}
	e = (int)r->key;
	cfg_get_enum(x, g, path, "key", rkeys, &e);
	r->key = (enum ctl_rl_key)e;
	e = (int)r->what;
	cfg_get_enum(x, g, path, "what", whats, &e);
	r->what = (enum ctl_rl_what)e;
	cfg_get_u32(x, g, path, "per_minute", 1, 10000000, &r->per_minute);
	cfg_get_u32(x, g, path, "burst", 0, 1000000, &r->burst);
	cfg_get_str(x, g, path, "listener", 64, &r->listener);

	/* key "user": the login of an authenticated client (issue 14); a
	 * rule keyed on it does not apply to anonymous clients. */
	/* A connection is counted before the client says who it is: only
	 * the address can key it. */
	s = config_setting_get_member(g, "what");
	if (s && r->what == CTL_RL_CONNECTIONS &&
	    (r->key == CTL_RL_USER || r->key == CTL_RL_SENDER_DOMAIN) &&
	    config_setting_get_member(g, "key")) {
		cfg_path_of(key, sizeof(key), path, "what");
		cfg_err(x, cfg_line_of(s), key,
			"\"connections\" cannot be counted by key \"%s\", "
			"which is not known when a client connects "
			"(\"messages\" or \"recipients\" with this key, or "
			"key \"ip\" or \"ip24\")",
			rkeys[r->key]);
	}
}

void cfg_parse_policy(struct ctx *x, const config_setting_t *g,
			 struct ctl_config *c)
{
	static const char *const keys[] = {
		"deny_action",	    "allow",   "deny",	     "relay_networks",
		"accepted_domains", "senders", "recipients", "rate_limits",
		"rate_table_size",  "block_table_size", "ipv6_prefix", NULL};
	static const char *const deny[] = {"reply", "close", NULL};
	const config_setting_t *s;
	int e;

	if (!cfg_want_type(x, g, "policy", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, "policy", keys);
	e = (int)c->policy.deny_action;
	cfg_get_enum(x, g, "policy", "deny_action", deny, &e);
	c->policy.deny_action = (enum ctl_deny_action)e;
	cfg_get_cidr_list(x, g, "policy", "allow", &c->policy.allow);
	cfg_get_cidr_list(x, g, "policy", "deny", &c->policy.deny);
	cfg_get_cidr_list(x, g, "policy", "relay_networks",
		      &c->policy.relay_networks);

	s = config_setting_get_member(g, "accepted_domains");
	if (s) {
		int t = config_setting_type(s);
		int n = config_setting_length(s);

		if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
			cfg_err(x, cfg_line_of(s), "policy.accepted_domains",
				"%s, expected a list ( \"example.com\", "
				"{ domain = \"example.org\"; type = "
				"\"internal_relay\"; }, ... )",
				cfg_type_name(t));
		} else if (n > 0) {
			c->policy.domains =
				calloc((size_t)n, sizeof(*c->policy.domains));
			if (c->policy.domains == NULL)
				cfg_nomem(x, s, "policy.accepted_domains");
			for (int i = 0; c->policy.domains && i < n; i++) {
				char path[64];

				snprintf(path, sizeof(path),
					 "policy.accepted_domains[%d]", i);
				parse_domain(
					x,
					config_setting_get_elem(s, (unsigned)i),
					path, c);
			}
		}
	}

	cfg_get_addr_list(x, g, "policy", "senders", &c->policy.senders);
	cfg_get_addr_list(x, g, "policy", "recipients", &c->policy.recipients);

	s = config_setting_get_member(g, "rate_limits");
	if (s && cfg_want_type(x, s, "policy.rate_limits", CONFIG_TYPE_LIST,
			   "a list ( { key = \"ip\"; what = \"connections\"; "
			   "per_minute = 60; }, ... )")) {
		int n = config_setting_length(s);

		if (n > 0) {
			c->policy.rate_limits = calloc(
				(size_t)n, sizeof(*c->policy.rate_limits));
			if (c->policy.rate_limits == NULL)
				cfg_nomem(x, s, "policy.rate_limits");
		}
		for (int i = 0; c->policy.rate_limits && i < n; i++) {
			const config_setting_t *r =
				config_setting_get_elem(s, (unsigned)i);
			struct ctl_rate_limit *rl = &c->policy.rate_limits[i];
			char path[64];

			snprintf(path, sizeof(path), "policy.rate_limits[%d]",
				 i);
			c->policy.n_rate_limits++;
			if (!cfg_want_type(x, r, path, CONFIG_TYPE_GROUP,
				       "a group { }"))
				continue;
			parse_rate_limit(x, r, path, (unsigned)i, rl);
			for (int k = 0; rl->name && k < i; k++) {
				const struct ctl_rate_limit *o =
					&c->policy.rate_limits[k];
				const config_setting_t *ns =
					config_setting_get_member(r, "name");
				char key[80];

				if (o->name == NULL ||
				    strcmp(o->name, rl->name) != 0)
					continue;
				snprintf(key, sizeof(key), "%s.name", path);
				cfg_err(x, ns ? cfg_line_of(ns) : rl->line, key,
					"\"%s\" is already the name of the "
					"rate limit at line %u (a unique "
					"name)",
					rl->name, o->line);
			}
		}
	}
	cfg_get_u32(x, g, "policy", "rate_table_size", 16, 16777216,
		&c->policy.rate_table_size);
	cfg_get_u32(x, g, "policy", "block_table_size", 16, 1048576,
		&c->policy.block_table_size);
	/* an IPv6 client's per-IP limits and rate keys cover its /N */
	cfg_get_u32(x, g, "policy", "ipv6_prefix", 32, 128,
		&c->policy.ipv6_prefix);
}

/* Listener settings that default to the policy section's, which the
 * file may define after the listeners. */
void cfg_inherit_policy(const config_setting_t *root, struct ctl_config *c)
{
	const config_setting_t *ls =
		config_setting_get_member(root, "listeners");

	for (uint32_t i = 0; ls && i < c->n_listeners; i++) {
		const config_setting_t *g =
			config_setting_get_elem(ls, (unsigned)i);

		if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP ||
		    config_setting_get_member(g, "deny_action") == NULL)
			c->listeners[i].deny_action = c->policy.deny_action;
	}
}

