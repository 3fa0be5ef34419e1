/*
 * config_auth.c - the AUTH keys of the configuration (issue 14, DESIGN
 * 7b): per listener auth / auth_mechanisms / auth_allow_cleartext, and
 * the auth section (users file, sender-login map, brute-force limits,
 * GSSAPI keytab and service). Kept apart from config.c so that listener
 * parsing calls it from one line.
 *
 * Coherence with the older keys: `auth = "required"` is require_auth =
 * true; a listener that gives both must give the same; without `auth`,
 * the mode follows require_auth (required, else optional on submission
 * and smtps, off on mx). The users file and the sender map are loaded
 * here, so --check-config and a reload report their FILE:LINE errors
 * before anything changes.
 *
 * Threads: main lcore, like the rest of the loader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sendermap.h"
#include "auth/store.h"
#include "control/config_read.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static const char *const modes[] = {"off", "optional", "required", NULL};

static const struct {
	const char *name;
	unsigned bit;
} mech_names[] = {
	{"PLAIN", CTL_AUTH_PLAIN},
	{"LOGIN", CTL_AUTH_LOGIN},
	{"GSSAPI", CTL_AUTH_GSSAPI},
};

static void parse_mechanisms(struct ctx *x, const config_setting_t *s,
			     const char *key, unsigned *out)
{
	unsigned bits = 0;

	if (!cfg_want_type(x, s, key, CONFIG_TYPE_ARRAY,
			   "an array of \"PLAIN\", \"LOGIN\", \"GSSAPI\""))
		return;
	int n = config_setting_length(s);

	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string_elem(s, (unsigned)i);
		unsigned bit = 0;

		for (size_t k = 0;
		     v && k < sizeof(mech_names) / sizeof(mech_names[0]); k++)
			if (strcasecmp(v, mech_names[k].name) == 0)
				bit = mech_names[k].bit;
		if (bit == 0) {
			cfg_err(x, cfg_line_of(s), key,
				"\"%s\" is not a mechanism (\"PLAIN\", "
				"\"LOGIN\" or \"GSSAPI\")",
				v ? v : "?");
			return;
		}
		bits |= bit;
	}
	if (bits == 0) {
		cfg_err(x, cfg_line_of(s), key,
			"empty (at least one mechanism, or auth = \"off\")");
		return;
	}
	*out = bits;
}

void cfg_parse_listener_auth(struct ctx *x, const config_setting_t *g,
			     const char *path, struct ctl_listener *l)
{
	const config_setting_t *a = config_setting_get_member(g, "auth");
	const config_setting_t *r =
		config_setting_get_member(g, "require_auth");
	char key[160];
	int e;

	l->auth_mechanisms = CTL_AUTH_PLAIN | CTL_AUTH_LOGIN;
	l->auth_allow_cleartext = false;
	if (l->require_auth)
		l->auth = CTL_AUTH_REQUIRED;
	else
		l->auth = l->role == CTL_ROLE_MX ? CTL_AUTH_OFF
						 : CTL_AUTH_OPTIONAL;
	if (a) {
		e = (int)l->auth;
		cfg_get_enum(x, g, path, "auth", modes, &e);
		l->auth = (enum ctl_auth_mode)e;
		cfg_path_of(key, sizeof(key), path, "auth");
		if (r && (l->auth == CTL_AUTH_REQUIRED) != l->require_auth) {
			cfg_err(x, cfg_line_of(a), key,
				"auth = \"%s\" contradicts require_auth = %s "
				"at line %u (drop require_auth: auth = "
				"\"required\" is require_auth = true)",
				modes[l->auth],
				l->require_auth ? "true" : "false",
				cfg_line_of(r));
		} else if (l->auth == CTL_AUTH_REQUIRED && l->allow_anonymous &&
			   config_setting_get_member(g, "allow_anonymous") ==
				   NULL) {
			cfg_err(x, cfg_line_of(a), key,
				"auth = \"required\" contradicts "
				"allow_anonymous = true, the default for role "
				"\"%s\" (add allow_anonymous = false)",
				ctl_role_name(l->role));
			/* reported once, not again as require_auth */
			l->allow_anonymous = false;
		}
		l->require_auth = l->auth == CTL_AUTH_REQUIRED;
	}
	const config_setting_t *m =
		config_setting_get_member(g, "auth_mechanisms");

	cfg_path_of(key, sizeof(key), path, "auth_mechanisms");
	if (m)
		parse_mechanisms(x, m, key, &l->auth_mechanisms);
	cfg_get_bool(x, g, path, "auth_allow_cleartext",
		     &l->auth_allow_cleartext);
}

/* Loads one of the section's files; each of its errors becomes a
 * config error at the key's line. */
static void report_file_errors(struct ctx *x, const config_setting_t *s,
			       const char *key, const char *errs)
{
	const char *p = errs;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		cfg_err(x, cfg_line_of(s), key, "%.*s", n, p);
		p = nl ? nl + 1 : NULL;
	}
}

void cfg_parse_auth(struct ctx *x, const config_setting_t *g,
		    struct ctl_config *c)
{
	static const char *const keys[] = {"users_file",       "dovecot_socket",
					   "sender_login_map", "brute_force",
					   "gssapi",	       NULL};
	static const char *const bkeys[] = {"ip_delay_after",
					    "ip_lockout_after",
					    "user_delay_after",
					    "user_lockout_after",
					    "delay",
					    "max_delay",
					    "window",
					    "lockout",
					    "table_size",
					    NULL};
	static const char *const gkeys[] = {"keytab", "service", "realm", NULL};
	struct ctl_auth_config *a = &c->auth;
	const config_setting_t *s;
	char err[4096];

	auth_brute_config_defaults(&a->brute_force);
	a->brute_table_size = 65536;
	if (g == NULL)
		return;
	if (!cfg_want_type(x, g, "auth", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	a->line = cfg_line_of(g);
	cfg_check_keys(x, g, "auth", keys);
	s = cfg_get_str(x, g, "auth", "users_file", 4096, &a->users_file);
	if (s && a->users_file[0]) {
		a->users = auth_store_load(a->users_file, err, sizeof(err));
		if (a->users == NULL)
			report_file_errors(x, s, "auth.users_file", err);
	}
	s = cfg_get_str(x, g, "auth", "dovecot_socket", 107,
			&a->dovecot_socket);
	if (s && a->users_file)
		cfg_err(x, cfg_line_of(s), "auth.dovecot_socket",
			"users_file is set too (one password store: the "
			"users file or Dovecot)");
	s = cfg_get_str(x, g, "auth", "sender_login_map", 4096,
			&a->sender_login_map);
	if (s && a->sender_login_map[0]) {
		a->sender_map = auth_sendermap_load(a->sender_login_map, err,
						    sizeof(err));
		if (a->sender_map == NULL)
			report_file_errors(x, s, "auth.sender_login_map", err);
	}

	s = config_setting_get_member(g, "brute_force");
	if (s && cfg_want_type(x, s, "auth.brute_force", CONFIG_TYPE_GROUP,
			       "a group { }")) {
		struct auth_brute_config *b = &a->brute_force;
		const char *p = "auth.brute_force";
		uint32_t ms;

		cfg_check_keys(x, s, p, bkeys);
		cfg_get_u32(x, s, p, "ip_delay_after", 0, 1000000,
			    &b->ip_delay_after);
		cfg_get_u32(x, s, p, "ip_lockout_after", 0, 1000000,
			    &b->ip_lockout_after);
		cfg_get_u32(x, s, p, "user_delay_after", 0, 1000000,
			    &b->user_delay_after);
		cfg_get_u32(x, s, p, "user_lockout_after", 0, 1000000,
			    &b->user_lockout_after);
		ms = b->delay_ms;
		cfg_get_secs(x, s, p, "delay", 1, 60, &ms);
		b->delay_ms = ms;
		ms = b->max_delay_ms;
		cfg_get_secs(x, s, p, "max_delay", 1, 300, &ms);
		b->max_delay_ms = ms;
		ms = b->window_s * 1000;
		cfg_get_secs(x, s, p, "window", 1, 86400, &ms);
		b->window_s = ms / 1000;
		ms = b->lockout_s * 1000;
		cfg_get_secs(x, s, p, "lockout", 1, 86400, &ms);
		b->lockout_s = ms / 1000;
		cfg_get_u32(x, s, p, "table_size", 16, 1u << 24,
			    &a->brute_table_size);
		if (b->max_delay_ms < b->delay_ms)
			cfg_err(x, cfg_line_of(s), p,
				"max_delay (%u s) is below delay (%u s)",
				b->max_delay_ms / 1000, b->delay_ms / 1000);
		if (b->ip_lockout_after && b->ip_delay_after &&
		    b->ip_lockout_after < b->ip_delay_after)
			cfg_err(x, cfg_line_of(s), p,
				"ip_lockout_after (%u) is below ip_delay_after "
				"(%u): clients would be locked out before "
				"any delay",
				b->ip_lockout_after, b->ip_delay_after);
	}

	s = config_setting_get_member(g, "gssapi");
	if (s && cfg_want_type(x, s, "auth.gssapi", CONFIG_TYPE_GROUP,
			       "a group { }")) {
		const config_setting_t *v;

		cfg_check_keys(x, s, "auth.gssapi", gkeys);
		cfg_get_str(x, s, "auth.gssapi", "keytab", 4096,
			    &a->gssapi_keytab);
		v = cfg_get_str(x, s, "auth.gssapi", "service", 255,
				&a->gssapi_service);
		if (v == NULL &&
		    config_setting_get_member(s, "service") == NULL)
			cfg_err(x, cfg_line_of(s), "auth.gssapi.service",
				"missing (the acceptor principal, e.g. "
				"\"smtp/mx.example.com@EXAMPLE.COM\")");
		else if (v && (strncmp(a->gssapi_service, "smtp/", 5) != 0 ||
			       strchr(a->gssapi_service, '@') == NULL))
			cfg_err(x, cfg_line_of(v), "auth.gssapi.service",
				"\"%s\" is not smtp/HOSTNAME@REALM (RFC 4752 "
				"and RFC 4954: the service is \"smtp\")",
				a->gssapi_service);
		cfg_get_str(x, s, "auth.gssapi", "realm", 255,
			    &a->gssapi_realm);
	}
}

void cfg_check_auth(struct ctx *x, const config_setting_t *root,
		    struct ctl_config *c)
{
	const config_setting_t *ls =
		config_setting_get_member(root, "listeners");

	for (uint32_t i = 0; i < c->n_listeners; i++) {
		const struct ctl_listener *l = &c->listeners[i];
		const config_setting_t *g =
			ls ? config_setting_get_elem(ls, i) : NULL;
		const config_setting_t *m =
			g ? config_setting_get_member(g, "auth_mechanisms")
			  : NULL;
		char key[64];

		if (l->auth == CTL_AUTH_OFF ||
		    !(l->auth_mechanisms & CTL_AUTH_GSSAPI) ||
		    c->auth.gssapi_service)
			continue;
		snprintf(key, sizeof(key), "listeners[%u].auth_mechanisms", i);
		cfg_err(x, m ? cfg_line_of(m) : l->line, key,
			"GSSAPI needs auth.gssapi { service = "
			"\"smtp/HOSTNAME@REALM\"; keytab = \"...\"; }");
	}
}

void cfg_free_auth(struct ctl_config *c)
{
	struct ctl_auth_config *a = &c->auth;

	free(a->users_file);
	free(a->dovecot_socket);
	free(a->sender_login_map);
	auth_store_free(a->users);
	auth_sendermap_free(a->sender_map);
	free(a->gssapi_keytab);
	free(a->gssapi_service);
	free(a->gssapi_realm);
	memset(a, 0, sizeof(*a));
}
