/*
 * config.c - loads the mxgate configuration file with libconfig and checks
 * it against the schema of docs/configuration.md.
 *
 * Threads: main lcore only (start-up, reload, --check-config). Allocates
 * freely; never touched by the data path.
 *
 * Shape: one function per section (stack, listener, pool, maildir, log;
 * the policy section is in config_policy.c, the getters in
 * config_read.c). Each first reports keys it does not know, then reads the keys it
 * knows with typed getters that report wrong types and out-of-range
 * values; settings that default to another section's (a listener's
 * deny_action) are resolved once both are read, and the cross-section
 * rules (duplicate ports and names, pools without servers, rate limits
 * naming a listener, the default pool) run last. Every error goes through
 * cfg_err(), so the FILE:LINE: key '...': message (valid) format is in one
 * place, and all errors are collected before the load fails as a whole.
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

#include "control/config.h"
#include "control/config_read.h"
#include "control/state_default.h"
#include "control/tls_default.h"

/* Key paths and messages are built with snprintf into fixed buffers; a
 * truncated message is still a message, so GCC's truncation warning is
 * noise here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define DEFAULT_CERTS                                                          \
	"( { cert = \"" CTL_TLS_DEFAULT_DIR "/ecdsa.crt\"; key = \""              \
	CTL_TLS_DEFAULT_DIR "/ecdsa.key\"; },\n"                                 \
	"      { cert = \"" CTL_TLS_DEFAULT_DIR "/rsa.crt\"; key = \""            \
	CTL_TLS_DEFAULT_DIR "/rsa.key\"; } )"

const char ctl_config_default_text[] =
	"# mxgate built-in default configuration\n"
	"stack = {\n"
	"  port = \"net_tap0,iface=mxg0\";\n"
	"  address = \"198.18.0.2/24\";\n"
	"  address6 = \"fd00:6d78::2/64\";\n"
	"};\n"
	"# TLS: test certificates mxgate makes on its first run under\n"
	"# " CTL_TLS_DEFAULT_DIR " (replace them with your own)\n"
	"# AUTH: 587 and 465 require it (their role's default), PLAIN and\n"
	"# LOGIN inside TLS only; 25 is MX, without AUTH. The users file is\n"
	"# made on the first run with one user whose password is printed\n"
	"# once (add users with mxgate-mkpasswd).\n"
	"listeners = (\n"
	"  { name = \"mx\"; port = 25; role = \"mx\"; tls = \"optional\";\n"
	"    certificates = " DEFAULT_CERTS "; },\n"
	"  { name = \"submission\"; port = 587; role = \"submission\";\n"
	"    tls = \"optional\"; certificates = " DEFAULT_CERTS "; },\n"
	"  { name = \"smtps\"; port = 465; role = \"smtps\";\n"
	"    certificates = " DEFAULT_CERTS "; }\n"
	");\n"
	"pools = (\n"
	"  { name = \"default\"; type = \"maildir\"; }\n"
	");\n"
	"maildir = { path = \"/var/lib/mxgate/Maildir\"; };\n"
	"auth = { users_file = \"" CTL_AUTH_DEFAULT_USERS "\"; };\n"
	"policy = { accepted_domains = ( \"example.com\" ); };\n";

/* ------------------------------------------------------------ sections */

/* Split "ADDR/LEN" into ip (NUL-terminated) and the prefix length;
 * -1 when there is no slash, no digits after it, or ADDR is too long. */
static long split_prefix(const char *v, char *ip, size_t iplen)
{
	const char *slash = strchr(v, '/');
	char *end;
	long len;

	if (slash == NULL || (size_t)(slash - v) >= iplen)
		return -1;
	memcpy(ip, v, (size_t)(slash - v));
	ip[slash - v] = '\0';
	len = strtol(slash + 1, &end, 10);
	return (*end != '\0' || slash[1] == '\0') ? -1 : len;
}

/* A unicast IPv6 address a port can own: not unspecified, multicast,
 * loopback or IPv4-mapped. NULL when fine, else what it is. */
static const char *ipv6_unusable(const uint8_t *a)
{
	static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0,    0,
						     0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0,
					 0, 0, 0, 0, 0, 0, 0, 1};

	if (memcmp(a, zero, 16) == 0)
		return "the unspecified address";
	if (a[0] == 0xff)
		return "a multicast address";
	if (memcmp(a, loop, 16) == 0)
		return "the loopback address";
	if (memcmp(a, mapped, 12) == 0)
		return "an IPv4-mapped address (use stack.address)";
	return NULL;
}

/* stack.address6 "ADDR/LEN" and stack.gateway6 "ADDR" or "" (issue 16). */
static void parse_stack_ipv6(struct ctx *x, const config_setting_t *g,
			     struct ctl_config *c)
{
	const config_setting_t *s = config_setting_get_member(g, "address6");
	const char *v, *why;
	char ip[INET6_ADDRSTRLEN + 1];

	if (s && cfg_want_type(x, s, "stack.address6", CONFIG_TYPE_STRING,
			       "a string \"ipv6-address/len\"")) {
		uint8_t a[16];
		long len;

		v = config_setting_get_string(s);
		len = split_prefix(v, ip, sizeof(ip));
		if (len < 1 || len > 128 || inet_pton(AF_INET6, ip, a) != 1) {
			cfg_err(x, cfg_line_of(s), "stack.address6",
				"\"%s\" is not an IPv6 prefix (address/len with "
				"len 1..128, e.g. \"fd00:6d78::2/64\")",
				v);
		} else if ((why = ipv6_unusable(a)) != NULL) {
			cfg_err(x, cfg_line_of(s), "stack.address6",
				"\"%s\" is %s, not one the port can own", v,
				why);
		} else {
			memcpy(c->stack.address6, a, 16);
			c->stack.prefix6_len = (uint8_t)len;
		}
	}
	s = config_setting_get_member(g, "gateway6");
	if (s && cfg_want_type(x, s, "stack.gateway6", CONFIG_TYPE_STRING,
			       "a string with an IPv6 address")) {
		uint8_t a[16];

		v = config_setting_get_string(s);
		if (v[0] == '\0') {
			memset(c->stack.gateway6, 0, 16);
		} else if (inet_pton(AF_INET6, v, a) != 1 ||
			   (why = ipv6_unusable(a)) != NULL) {
			cfg_err(x, cfg_line_of(s), "stack.gateway6",
				"\"%s\" is not a unicast IPv6 address (e.g. "
				"\"fd00:6d78::1\" or \"fe80::1\", or \"\" for "
				"none)",
				v);
		} else {
			memcpy(c->stack.gateway6, a, 16);
		}
	}
}

static void parse_stack(struct ctx *x, const config_setting_t *g,
			struct ctl_config *c)
{
	static const char *const keys[] = {
		"port",	     "address",	  "gateway",	 "address6",
		"gateway6",  "cores",	  "busy_poll",	 "max_conns",
		"syn_backlog", "sessions_per_core", "backends_per_core",
		"overload_percent", "overload_idle_ms",
		"overload_max_errors", NULL};
	const config_setting_t *s;

	if (!cfg_want_type(x, g, "stack", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, "stack", keys);
	s = cfg_get_str(x, g, "stack", "port", 1024, &c->stack.port);
	if (s && c->stack.port[0] == '\0')
		cfg_err(x, cfg_line_of(s), "stack.port",
			"empty (DPDK device arguments, e.g. "
			"\"net_tap0,iface=mxg0\")");
	s = config_setting_get_member(g, "address");
	if (s && cfg_want_type(x, s, "stack.address", CONFIG_TYPE_STRING,
			   "a string \"a.b.c.d/len\"")) {
		const char *v = config_setting_get_string(s);
		char ip[64];
		long len = split_prefix(v, ip, sizeof(ip));
		uint32_t a;

		if (len < 1 || len > 32 || !cfg_parse_ipv4(ip, &a)) {
			cfg_err(x, cfg_line_of(s), "stack.address",
				"\"%s\" is not an IPv4 CIDR (address/prefix "
				"with prefix 1..32, e.g. \"198.18.0.2/24\")",
				v);
		} else {
			c->stack.address = a;
			c->stack.prefix_len = (uint8_t)len;
		}
	}
	cfg_get_ipv4(x, g, "stack", "gateway", true, &c->stack.gateway);
	parse_stack_ipv6(x, g, c);
	cfg_get_u32(x, g, "stack", "cores", 1, 128, &c->stack.cores);
	cfg_get_bool(x, g, "stack", "busy_poll", &c->stack.busy_poll);
	cfg_get_u32(x, g, "stack", "max_conns", 1, 16777216, &c->stack.max_conns);
	cfg_get_u32(x, g, "stack", "syn_backlog", 1, 1048576,
		&c->stack.syn_backlog);
	cfg_get_u32(x, g, "stack", "sessions_per_core", 1, 4194304,
		    &c->stack.sessions_per_core);
	s = config_setting_get_member(g, "sessions_per_core");
	/* Every session is a TCP connection of that core's stack: a table
	 * the stack cannot fill is a mistake, said where it was made. */
	if (s && c->stack.sessions_per_core > c->stack.max_conns)
		cfg_err(x, cfg_line_of(s), "stack.sessions_per_core",
			"%u is more than stack.max_conns (%u TCP connections "
			"per core, sessions and backend connections "
			"together): raise max_conns or lower this",
			c->stack.sessions_per_core, c->stack.max_conns);
	cfg_get_u32(x, g, "stack", "backends_per_core", 1, 1048576,
		    &c->stack.backends_per_core);
	cfg_get_u32(x, g, "stack", "overload_percent", 0, 100,
		    &c->stack.overload_percent);
	cfg_get_u32(x, g, "stack", "overload_idle_ms", 100, 3600000,
		    &c->stack.overload_idle_ms);
	cfg_get_u32(x, g, "stack", "overload_max_errors", 1, 1000,
		    &c->stack.overload_max_errors);
}

static void listener_defaults(struct ctx *x, struct ctl_listener *l,
			      const struct ctl_config *c)
{
	memset(l, 0, sizeof(*l));
	l->address = c->stack.address;
	l->hostname = strdup(x->hostname);
	l->banner = strdup("ESMTP mxgate");
	l->max_message_size = 36700160;
	l->max_recipients = 100;
	l->max_errors = 10;
	/* RFC 5321 4.5.3.2 minimums. */
	l->timeouts.greeting_ms = 300000;
	l->timeouts.command_ms = 300000;
	l->timeouts.mail_ms = 300000;
	l->timeouts.rcpt_ms = 300000;
	l->timeouts.data_init_ms = 120000;
	l->timeouts.data_block_ms = 180000;
	l->timeouts.data_term_ms = 600000;
	l->bare_lf = CTL_BARE_LF_REJECT;
	l->pipelining_enforce = true;
}

/* listeners[].address (issue 16): absent, the listener serves both of
 * the stack's addresses; an IPv4 address (it must be stack.address)
 * restricts it to IPv4, an IPv6 one (it must be stack.address6) to IPv6.
 * The port owns one address of each family, so any other address could
 * never be served: refused here rather than silently ignored. */
static void parse_listener_address(struct ctx *x, const config_setting_t *g,
				   const char *path,
				   const struct ctl_config *c,
				   struct ctl_listener *l)
{
	static const uint8_t zero[16];
	const config_setting_t *s = config_setting_get_member(g, "address");
	char key[160], want[INET6_ADDRSTRLEN];
	const char *v;
	uint8_t a[16];
	uint32_t a4;

	if (s == NULL)
		return;
	cfg_path_of(key, sizeof(key), path, "address");
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_STRING,
			   "a string with an IPv4 or IPv6 address"))
		return;
	v = config_setting_get_string(s);
	if (strchr(v, ':') == NULL) {
		if (!cfg_parse_ipv4(v, &a4)) {
			cfg_err(x, cfg_line_of(s), key,
				"\"%s\" is not an IPv4 or IPv6 address (e.g. "
				"\"198.18.0.2\" or \"fd00:6d78::2\")",
				v);
		} else if (a4 != c->stack.address) {
			cfg_err(x, cfg_line_of(s), key,
				"\"%s\" is not stack.address (%u.%u.%u.%u), "
				"the only IPv4 address the port owns",
				v, c->stack.address >> 24,
				(c->stack.address >> 16) & 0xff,
				(c->stack.address >> 8) & 0xff,
				c->stack.address & 0xff);
		} else {
			l->address = a4;
			l->family = CTL_FAMILY_V4;
		}
		return;
	}
	if (inet_pton(AF_INET6, v, a) != 1) {
		cfg_err(x, cfg_line_of(s), key,
			"\"%s\" is not an IPv6 address (e.g. "
			"\"fd00:6d78::2\", no brackets or prefix length)",
			v);
	} else if (memcmp(c->stack.address6, zero, 16) == 0) {
		cfg_err(x, cfg_line_of(s), key,
			"\"%s\" is IPv6 but stack.address6 is not set (set "
			"it, or name stack.address)",
			v);
	} else if (memcmp(a, c->stack.address6, 16) != 0) {
		inet_ntop(AF_INET6, c->stack.address6, want, sizeof(want));
		cfg_err(x, cfg_line_of(s), key,
			"\"%s\" is not stack.address6 (%s), the only IPv6 "
			"address the port owns",
			v, want);
	} else {
		memcpy(l->address6, a, 16);
		l->address = 0;
		l->family = CTL_FAMILY_V6;
	}
}

static void parse_listener(struct ctx *x, const config_setting_t *g,
			   const char *path, const struct ctl_config *c,
			   struct ctl_listener *l)
{
	static const char *const keys[] = {"name",
					   "address",
					   "port",
					   "role",
					   "hostname",
					   "banner",
					   "max_message_size",
					   "max_recipients",
					   "max_errors",
					   "timeouts",
					   "bare_lf",
					   "pipelining_enforce",
					   "networks",
					   "allow",
					   "deny",
					   "deny_action",
					   "allow_anonymous",
					   "require_auth",
					   "relay_authenticated",
					   "max_connections",
					   "max_connections_per_ip",
					   "connection_rate_per_ip",
					   "max_messages_per_connection",
					   "senders",
					   "recipients",
					   "tls",
					   "certificates",
					   "tls_min_version",
					   "tls_ciphers",
					   "tls_min_cipher_bits",
					   "tls_client_cert",
					   "tls_ca_file",
					   "tls_partners",
					   "auth",
					   "auth_mechanisms",
					   "auth_allow_cleartext",
					   "content_rules",
					   "content_exempt_authenticated",
					   "content_exempt_relay_networks",
					   "content_scan_limit",
					   NULL};
	static const char *const tkeys[] = {
		"greeting",  "command",	   "mail",	"rcpt",
		"data_init", "data_block", "data_term", NULL};
	static const char *const roles[] = {"mx", "submission", "smtps", NULL};
	static const char *const bare[] = {"reject", "normalize", NULL};
	static const char *const deny[] = {"reply", "close", NULL};
	const config_setting_t *t;
	char tp[128];
	uint64_t port = 0;
	int e;

	l->line = cfg_line_of(g);
	cfg_check_keys(x, g, path, keys);
	if (cfg_get_str(x, g, path, "name", 64, &l->name) == NULL &&
	    config_setting_get_member(g, "name") == NULL) {
		char key[160];

		cfg_path_of(key, sizeof(key), path, "name");
		cfg_err(x, l->line, key, "missing (a unique string)");
	}
	if (config_setting_get_member(g, "port") == NULL) {
		char key[160];

		cfg_path_of(key, sizeof(key), path, "port");
		cfg_err(x, l->line, key, "missing (an integer 1..65535)");
	}
	cfg_get_uint(x, g, path, "port", 1, 65535, &port);
	l->port = (uint16_t)port;
	parse_listener_address(x, g, path, c, l);
	e = (int)l->role;
	cfg_get_enum(x, g, path, "role", roles, &e);
	l->role = (enum ctl_role)e;
	if (config_setting_get_member(g, "role") == NULL) {
		char key[160];

		cfg_path_of(key, sizeof(key), path, "role");
		cfg_err(x, l->line, key,
			"missing (one of \"mx\" or \"submission\" or "
			"\"smtps\")");
	}
	cfg_get_str(x, g, path, "hostname", 255, &l->hostname);
	cfg_get_str(x, g, path, "banner", 400, &l->banner);
	cfg_get_uint(x, g, path, "max_message_size", 1024, 1ull << 36,
		 &l->max_message_size);
	cfg_get_u32(x, g, path, "max_recipients", 1, 100000, &l->max_recipients);
	cfg_get_u32(x, g, path, "max_errors", 1, 1000, &l->max_errors);
	e = (int)l->bare_lf;
	cfg_get_enum(x, g, path, "bare_lf", bare, &e);
	l->bare_lf = (enum ctl_bare_lf)e;
	cfg_get_bool(x, g, path, "pipelining_enforce", &l->pipelining_enforce);

	/* Receive-connector policy. Without deny_action the listener takes
	 * policy.deny_action, resolved once both are read (the policy
	 * section may come later in the file): see cfg_inherit_policy(). */
	cfg_get_cidr_list(x, g, path, "networks", &l->networks);
	cfg_get_cidr_list(x, g, path, "allow", &l->allow);
	cfg_get_cidr_list(x, g, path, "deny", &l->deny);
	e = (int)l->deny_action;
	cfg_get_enum(x, g, path, "deny_action", deny, &e);
	l->deny_action = (enum ctl_deny_action)e;
	/* Role defaults: an MX takes mail from anyone for our domains and
	 * relays for no one; submission and smtps serve users who log in
	 * (RFC 6409 4.1, RFC 8314). */
	l->allow_anonymous = l->role == CTL_ROLE_MX;
	l->require_auth = l->role != CTL_ROLE_MX;
	l->relay_authenticated = l->role != CTL_ROLE_MX;
	cfg_get_bool(x, g, path, "allow_anonymous", &l->allow_anonymous);
	cfg_get_bool(x, g, path, "require_auth", &l->require_auth);
	cfg_get_bool(x, g, path, "relay_authenticated", &l->relay_authenticated);
	cfg_parse_listener_auth(x, g, path, l);
	if (l->allow_anonymous && l->require_auth) {
		const config_setting_t *a =
			config_setting_get_member(g, "allow_anonymous");
		const config_setting_t *r =
			config_setting_get_member(g, "require_auth");
		char key[160];

		/* Contradictory: say which one came from the role. */
		if (a && r) {
			cfg_path_of(key, sizeof(key), path, "require_auth");
			cfg_err(x, cfg_line_of(r), key,
				"require_auth = true contradicts "
				"allow_anonymous = true (set one of them to "
				"false)");
		} else if (r) {
			cfg_path_of(key, sizeof(key), path, "require_auth");
			cfg_err(x, cfg_line_of(r), key,
				"require_auth = true contradicts "
				"allow_anonymous = true, the default for role "
				"\"%s\" (add allow_anonymous = false)",
				ctl_role_name(l->role));
		} else {
			cfg_path_of(key, sizeof(key), path, "allow_anonymous");
			cfg_err(x, cfg_line_of(a), key,
				"allow_anonymous = true contradicts "
				"require_auth = true, the default for role "
				"\"%s\" (add require_auth = false)",
				ctl_role_name(l->role));
		}
	}
	cfg_get_u32(x, g, path, "max_connections", 0, 16777216,
		&l->max_connections);
	cfg_get_u32(x, g, path, "max_connections_per_ip", 0, 1048576,
		&l->max_connections_per_ip);
	cfg_get_u32(x, g, path, "connection_rate_per_ip", 0, 1000000,
		&l->connection_rate_per_ip);
	cfg_get_u32(x, g, path, "max_messages_per_connection", 0, 1000000,
		&l->max_messages_per_connection);
	cfg_get_addr_list(x, g, path, "senders", &l->senders);
	cfg_get_addr_list(x, g, path, "recipients", &l->recipients);
	cfg_parse_listener_tls(x, g, path, l);
	cfg_parse_listener_content(x, g, path, l);

	t = config_setting_get_member(g, "timeouts");
	cfg_path_of(tp, sizeof(tp), path, "timeouts");
	if (t && cfg_want_type(x, t, tp, CONFIG_TYPE_GROUP, "a group { }")) {
		cfg_check_keys(x, t, tp, tkeys);
		cfg_get_secs(x, t, tp, "greeting", 1, 3600,
			 &l->timeouts.greeting_ms);
		cfg_get_secs(x, t, tp, "command", 1, 3600, &l->timeouts.command_ms);
		cfg_get_secs(x, t, tp, "mail", 1, 3600, &l->timeouts.mail_ms);
		cfg_get_secs(x, t, tp, "rcpt", 1, 3600, &l->timeouts.rcpt_ms);
		cfg_get_secs(x, t, tp, "data_init", 1, 3600,
			 &l->timeouts.data_init_ms);
		cfg_get_secs(x, t, tp, "data_block", 1, 3600,
			 &l->timeouts.data_block_ms);
		cfg_get_secs(x, t, tp, "data_term", 1, 3600,
			 &l->timeouts.data_term_ms);
	}
}

static void pool_defaults(struct ctl_pool *p)
{
	memset(p, 0, sizeof(*p));
	p->type = CTL_POOL_SMTP;
	p->max_conns = 0;
	p->max_conns_per_server = 0;
	p->idle_max = 16;
	p->idle_max_age_ms = 30000;
	p->helo_name = strdup("");
	/* Mirrors relay_client_config_defaults(). */
	p->timeouts.connect_ms = 10000;
	p->timeouts.greeting_ms = 60000;
	p->timeouts.ehlo_ms = 60000;
	p->timeouts.xclient_ms = 60000;
	p->timeouts.mail_ms = 120000;
	p->timeouts.rcpt_ms = 120000;
	p->timeouts.data_ms = 120000;
	p->timeouts.data_block_ms = 180000;
	p->timeouts.data_end_ms = 300000;
	p->timeouts.rset_ms = 30000;
	p->timeouts.quit_ms = 10000;
	p->health_interval_ms = 10000;
	p->health_fail_after = 3;
	p->health_retry_ms = 30000;
}

/* RFC 1035 2.3.1 letters, digits, hyphens, dots; optional leading dot for
 * "every subdomain of". */
static bool domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n == 0 || n > 254)
		return false;
	if (d[0] == '.')
		d++;
	if (*d == '\0')
		return false;
	for (; *d; d++) {
		if (*d == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') ||
		      (*d >= '0' && *d <= '9') || *d == '-') ||
		    ++label > 63)
			return false;
	}
	return label > 0;
}

static void parse_server(struct ctx *x, const config_setting_t *g,
			 const char *path, struct ctl_server *s)
{
	static const char *const keys[] = {"address", "port", "weight", NULL};
	uint64_t v;

	s->port = 25;
	s->weight = 1;
	if (!cfg_want_type(x, g, path, CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, path, keys);
	if (config_setting_get_member(g, "address") == NULL) {
		char key[160];

		cfg_path_of(key, sizeof(key), path, "address");
		cfg_err(x, cfg_line_of(g), key,
			"missing (an IPv4 or IPv6 address, e.g. "
			"\"198.18.0.1\" or \"fd00:6d78::1\")");
	}
	{
		const config_setting_t *a = config_setting_get_member(g, "address");
		const char *v = a ? config_setting_get_string(a) : NULL;
		const char *why;

		if (v && strchr(v, ':')) {
			char key[160];

			cfg_path_of(key, sizeof(key), path, "address");
			if (inet_pton(AF_INET6, v, s->address6) != 1)
				cfg_err(x, cfg_line_of(a), key,
					"\"%s\" is not an IPv6 address (e.g. "
					"\"fd00:6d78::1\")", v);
			else if ((why = ipv6_unusable(s->address6)) != NULL)
				cfg_err(x, cfg_line_of(a), key,
					"\"%s\" is %s, not a backend address",
					v, why);
			else
				s->v6 = true;
		} else {
			cfg_get_ipv4(x, g, path, "address", false,
				     &s->address);
		}
	}
	v = s->port;
	cfg_get_uint(x, g, path, "port", 1, 65535, &v);
	s->port = (uint16_t)v;
	v = s->weight;
	cfg_get_uint(x, g, path, "weight", 1, 1000, &v);
	s->weight = (uint16_t)v;
}

static void parse_pool(struct ctx *x, const config_setting_t *g,
		       const char *path, struct ctl_pool *p)
{
	static const char *const keys[] = {"name",
					   "type",
					   "domains",
					   "client_info",
					   "servers",
					   "max_conns",
					   "max_conns_per_server",
					   "idle_max",
					   "idle_max_age",
					   "helo_name",
					   "timeouts",
					   "health",
					   "tls",
					   "tls_ca_file",
					   "tls_name",
					   "tls_fingerprint",
					   "tls_cert",
					   "tls_key",
					   NULL};
	static const char *const tkeys[] = {
		"connect", "greeting",	 "ehlo",     "xclient", "mail", "rcpt",
		"data",	   "data_block", "data_end", "rset",	"quit", NULL};
	static const char *const hkeys[] = {"interval", "fail_after", "retry",
					    NULL};
	static const char *const types[] = {"smtp", "maildir", NULL};
	static const char *const cinfo[] = {"none", "xclient", "proxy", NULL};
	const config_setting_t *s;
	char sub[160];
	int e;

	p->line = cfg_line_of(g);
	cfg_check_keys(x, g, path, keys);
	if (config_setting_get_member(g, "name") == NULL) {
		cfg_path_of(sub, sizeof(sub), path, "name");
		cfg_err(x, p->line, sub, "missing (a unique string)");
	}
	cfg_get_str(x, g, path, "name", 64, &p->name);
	e = (int)p->type;
	cfg_get_enum(x, g, path, "type", types, &e);
	p->type = (enum ctl_pool_type)e;
	e = (int)p->client_info;
	cfg_get_enum(x, g, path, "client_info", cinfo, &e);
	p->client_info = (enum ctl_client_info)e;
	cfg_get_u32(x, g, path, "max_conns", 0, 1048576, &p->max_conns);
	cfg_get_u32(x, g, path, "max_conns_per_server", 0, 1048576,
		&p->max_conns_per_server);
	cfg_get_u32(x, g, path, "idle_max", 0, 65536, &p->idle_max);
	cfg_get_secs(x, g, path, "idle_max_age", 1, 3600, &p->idle_max_age_ms);
	cfg_get_str(x, g, path, "helo_name", 255, &p->helo_name);

	s = config_setting_get_member(g, "domains");
	cfg_path_of(sub, sizeof(sub), path, "domains");
	if (s && cfg_want_type(x, s, sub, CONFIG_TYPE_ARRAY,
			   "an array of strings [ \"example.com\", ... ]")) {
		int n = config_setting_length(s);

		p->domains = calloc((size_t)n + 1, sizeof(char *));
		for (int i = 0; p->domains && i < n; i++) {
			const config_setting_t *d =
				config_setting_get_elem(s, (unsigned)i);
			const char *v = config_setting_get_string(d);
			char key[200];

			snprintf(key, sizeof(key), "%s[%d]", sub, i);
			if (v == NULL) {
				cfg_err(x, cfg_line_of(s), key,
					"%s, expected a string",
					cfg_type_name(config_setting_type(d)));
				continue;
			}
			if (!domain_ok(v)) {
				cfg_err(x, cfg_line_of(s), key,
					"\"%s\" is not a domain (e.g. "
					"\"example.com\", or \".example.com\" "
					"for its subdomains)",
					v);
				continue;
			}
			p->domains[p->n_domains++] = strdup(v);
		}
	}

	s = config_setting_get_member(g, "servers");
	cfg_path_of(sub, sizeof(sub), path, "servers");
	if (s && cfg_want_type(x, s, sub, CONFIG_TYPE_LIST,
			   "a list ( { address = ...; }, ... )")) {
		int n = config_setting_length(s);

		p->servers = calloc((size_t)n + 1, sizeof(*p->servers));
		for (int i = 0; p->servers && i < n; i++) {
			char key[200];

			snprintf(key, sizeof(key), "%s[%d]", sub, i);
			parse_server(x, config_setting_get_elem(s, (unsigned)i),
				     key, &p->servers[p->n_servers++]);
		}
	}
	if (p->type == CTL_POOL_SMTP && p->n_servers == 0)
		cfg_err(x, s ? cfg_line_of(s) : p->line, sub,
			"pool has no servers (at least one { address = "
			"\"a.b.c.d\"; port = 25; }, or type = \"maildir\")");
	if (p->type == CTL_POOL_MAILDIR && s)
		cfg_err(x, cfg_line_of(s), sub,
			"a maildir pool has no servers (remove servers, or "
			"type = \"smtp\")");

	s = config_setting_get_member(g, "timeouts");
	cfg_path_of(sub, sizeof(sub), path, "timeouts");
	if (s && cfg_want_type(x, s, sub, CONFIG_TYPE_GROUP, "a group { }")) {
		struct ctl_pool_timeouts *t = &p->timeouts;

		cfg_check_keys(x, s, sub, tkeys);
		cfg_get_secs(x, s, sub, "connect", 1, 3600, &t->connect_ms);
		cfg_get_secs(x, s, sub, "greeting", 1, 3600, &t->greeting_ms);
		cfg_get_secs(x, s, sub, "ehlo", 1, 3600, &t->ehlo_ms);
		cfg_get_secs(x, s, sub, "xclient", 1, 3600, &t->xclient_ms);
		cfg_get_secs(x, s, sub, "mail", 1, 3600, &t->mail_ms);
		cfg_get_secs(x, s, sub, "rcpt", 1, 3600, &t->rcpt_ms);
		cfg_get_secs(x, s, sub, "data", 1, 3600, &t->data_ms);
		cfg_get_secs(x, s, sub, "data_block", 1, 3600, &t->data_block_ms);
		cfg_get_secs(x, s, sub, "data_end", 1, 3600, &t->data_end_ms);
		cfg_get_secs(x, s, sub, "rset", 1, 3600, &t->rset_ms);
		cfg_get_secs(x, s, sub, "quit", 1, 3600, &t->quit_ms);
	}
	s = config_setting_get_member(g, "health");
	cfg_path_of(sub, sizeof(sub), path, "health");
	if (s && cfg_want_type(x, s, sub, CONFIG_TYPE_GROUP, "a group { }")) {
		uint64_t iv = p->health_interval_ms / 1000;

		cfg_check_keys(x, s, sub, hkeys);
		cfg_get_uint(x, s, sub, "interval", 0, 3600, &iv);
		p->health_interval_ms = (uint32_t)iv * 1000;
		cfg_get_u32(x, s, sub, "fail_after", 1, 100, &p->health_fail_after);
		cfg_get_secs(x, s, sub, "retry", 1, 3600, &p->health_retry_ms);
	}
	cfg_parse_pool_tls(x, g, path, p);
}

static void parse_maildir(struct ctx *x, const config_setting_t *g,
			  struct ctl_config *c)
{
	static const char *const keys[] = {"path", "workers", "max_jobs", NULL};
	const config_setting_t *s;

	if (!cfg_want_type(x, g, "maildir", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, "maildir", keys);
	s = cfg_get_str(x, g, "maildir", "path", 1024, &c->maildir.path);
	if (s && c->maildir.path[0] != '/')
		cfg_err(x, cfg_line_of(s), "maildir.path",
			"\"%s\" is not absolute (a path starting with '/')",
			c->maildir.path);
	cfg_get_u32(x, g, "maildir", "workers", 1, 64, &c->maildir.workers);
	cfg_get_u32(x, g, "maildir", "max_jobs", 1, 65536, &c->maildir.max_jobs);
}

/* An enum kept as its name in *value (which holds the default, one of
 * names): replaced when the key is given and valid. */
static void get_enum_name(struct ctx *x, const config_setting_t *g,
			  const char *path, const char *name,
			  const char *const *names, char **value)
{
	int e = 0;

	for (int i = 0; names[i]; i++)
		if (strcmp(*value, names[i]) == 0)
			e = i;
	cfg_get_enum(x, g, path, name, names, &e);
	free(*value);
	*value = strdup(names[e]);
}

static void parse_log(struct ctx *x, const config_setting_t *g,
		      struct ctl_config *c)
{
	static const char *const keys[] = {"file", "level", "format", NULL};
	static const char *const levels[] = {"error", "warn", "info", "debug",
					     NULL};
	static const char *const formats[] = {"kv", "json", NULL};

	if (!cfg_want_type(x, g, "log", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, "log", keys);
	cfg_get_str(x, g, "log", "file", 1024, &c->log.file);
	get_enum_name(x, g, "log", "level", levels, &c->log.level);
	get_enum_name(x, g, "log", "format", formats, &c->log.format);
}

/* One accepted domain: "example.com", ".example.com" or "*.example.com"
 * as a string, or { domain = ...; type = ...; }. Duplicates (the same
 * name with the same subdomains flag) are refused, naming both lines. */
/* ------------------------------------------------------------ whole file */

void ctl_config_free(struct ctl_config *c)
{
	if (c == NULL)
		return;
	free(c->source);
	cfg_free_auth(c);
	cfg_free_content(c);
	free(c->stack.port);
	for (uint32_t i = 0; c->listeners && i < c->n_listeners; i++) {
		struct ctl_listener *l = &c->listeners[i];

		free(l->name);
		free(l->hostname);
		free(l->banner);
		free(l->networks.v);
		free(l->allow.v);
		free(l->deny.v);
		cfg_free_addr_list(&l->senders);
		cfg_free_addr_list(&l->recipients);
		cfg_free_listener_tls(&l->tls);
	}
	free(c->listeners);
	free(c->policy.allow.v);
	free(c->policy.deny.v);
	free(c->policy.relay_networks.v);
	for (uint32_t i = 0; c->policy.domains && i < c->policy.n_domains; i++)
		free(c->policy.domains[i].name);
	free(c->policy.domains);
	cfg_free_addr_list(&c->policy.senders);
	cfg_free_addr_list(&c->policy.recipients);
	for (uint32_t i = 0;
	     c->policy.rate_limits && i < c->policy.n_rate_limits; i++) {
		free(c->policy.rate_limits[i].name);
		free(c->policy.rate_limits[i].listener);
	}
	free(c->policy.rate_limits);
	for (uint32_t i = 0; c->pools && i < c->n_pools; i++) {
		struct ctl_pool *p = &c->pools[i];

		free(p->name);
		free(p->helo_name);
		for (uint32_t d = 0; p->domains && d < p->n_domains; d++)
			free(p->domains[d]);
		free(p->domains);
		free(p->servers);
		cfg_free_pool_tls(&p->tls);
	}
	free(c->pools);
	free(c->maildir.path);
	free(c->log.file);
	free(c->log.level);
	free(c->log.format);
	memset(c, 0, sizeof(*c));
}

/* Line of member name of listeners[i], else the listener's line. */
static unsigned listener_line(const config_setting_t *root, uint32_t i,
			      const char *name, unsigned dflt)
{
	const config_setting_t *ls =
		config_setting_get_member(root, "listeners");
	const config_setting_t *g =
		ls ? config_setting_get_elem(ls, (unsigned)i) : NULL;
	const config_setting_t *m =
		g && config_setting_type(g) == CONFIG_TYPE_GROUP
			? config_setting_get_member(g, name)
			: NULL;

	return m ? cfg_line_of(m) : dflt;
}

static void cross_checks(struct ctx *x, const config_setting_t *root,
			 struct ctl_config *c)
{
	const config_setting_t *s;

	/* Listener names and (address, port) pairs are unique. */
	for (uint32_t i = 0; i < c->n_listeners; i++) {
		struct ctl_listener *a = &c->listeners[i];
		char key[64];

		for (uint32_t k = 0; k < i; k++) {
			struct ctl_listener *b = &c->listeners[k];

			/* One listener per port: the stack keeps one per
			 * port (a family restriction is on that one). */
			if (a->port && a->port == b->port) {
				snprintf(key, sizeof(key), "listeners[%u].port",
					 i);
				cfg_err(x,
					listener_line(root, i, "port", a->line),
					key,
					"port %u is already used by listener "
					"'%s' at line %u (a port no other "
					"listener uses)",
					a->port, b->name ? b->name : "?",
					listener_line(root, k, "port",
						      b->line));
			}
			if (a->name && b->name &&
			    strcmp(a->name, b->name) == 0) {
				snprintf(key, sizeof(key), "listeners[%u].name",
					 i);
				cfg_err(x,
					listener_line(root, i, "name", a->line),
					key,
					"\"%s\" is already the name of the "
					"listener at line %u (a unique name)",
					a->name,
					listener_line(root, k, "name",
						      b->line));
			}
		}
	}
	/* Pool names and routed domains are unique. */
	for (uint32_t i = 0; i < c->n_pools; i++) {
		struct ctl_pool *a = &c->pools[i];
		char key[64];

		for (uint32_t k = 0; k < i; k++) {
			struct ctl_pool *b = &c->pools[k];

			if (a->name && b->name &&
			    strcmp(a->name, b->name) == 0) {
				snprintf(key, sizeof(key), "pools[%u].name", i);
				cfg_err(x, a->line, key,
					"\"%s\" is already the name of the "
					"pool "
					"at line %u (a unique name)",
					a->name, b->line);
			}
			for (uint32_t d = 0; d < a->n_domains; d++)
				for (uint32_t e = 0; e < b->n_domains; e++)
					if (strcasecmp(a->domains[d],
						       b->domains[e]) == 0) {
						snprintf(key, sizeof(key),
							 "pools[%u].domains",
							 i);
						cfg_err(x, a->line, key,
							"\"%s\" is already "
							"routed to pool '%s' "
							"(each domain in one "
							"pool)",
							a->domains[d],
							b->name ? b->name
								: "?");
					}
		}
	}
	/* A rate limit's listener exists. */
	s = config_setting_get_member(root, "policy");
	s = s && config_setting_type(s) == CONFIG_TYPE_GROUP
		    ? config_setting_get_member(s, "rate_limits")
		    : NULL;
	for (uint32_t i = 0; s && i < c->policy.n_rate_limits; i++) {
		const struct ctl_rate_limit *r = &c->policy.rate_limits[i];
		const config_setting_t *g =
			config_setting_get_elem(s, (unsigned)i);
		bool found = false;
		char key[64], names[256] = "";
		size_t nl = 0;

		if (r->listener == NULL)
			continue;
		for (uint32_t k = 0; k < c->n_listeners; k++) {
			const char *n = c->listeners[k].name;

			if (n == NULL)
				continue;
			if (strcmp(n, r->listener) == 0)
				found = true;
			nl += (size_t)snprintf(names + nl, sizeof(names) - nl,
					       "%s\"%s\"", nl ? ", " : "", n);
			if (nl >= sizeof(names))
				nl = sizeof(names) - 1;
		}
		if (found)
			continue;
		snprintf(key, sizeof(key), "policy.rate_limits[%u].listener",
			 i);
		cfg_err(x, cfg_line_of(config_setting_get_member(g, "listener")),
			key,
			"no listener is named \"%s\" (the name of a listener: "
			"%s; or leave it out for all)",
			r->listener, names);
	}

	/* The default pool: named, else "default", else the first. */
	s = config_setting_get_member(root, "default_pool");
	if (s) {
		if (cfg_want_type(x, s, "default_pool", CONFIG_TYPE_STRING,
			      "the name of a pool")) {
			const char *v = config_setting_get_string(s);
			bool found = false;

			for (uint32_t i = 0; i < c->n_pools; i++)
				if (c->pools[i].name &&
				    strcmp(c->pools[i].name, v) == 0) {
					c->default_pool = i;
					found = true;
				}
			if (!found)
				cfg_err(x, cfg_line_of(s), "default_pool",
					"no pool is named \"%s\" (the name of "
					"a pool in pools)",
					v);
		}
	} else {
		for (uint32_t i = 0; i < c->n_pools; i++)
			if (c->pools[i].name &&
			    strcmp(c->pools[i].name, "default") == 0)
				c->default_pool = i;
	}
}

static int load(struct ctx *x, config_t *cf, struct ctl_config *out)
{
	static const char *const keys[] = {
		"stack",	"listeners", "policy", "pools",
		"default_pool", "maildir",   "log",    "tls", "auth",
		"content_rule_sets", "content_quarantine_maildir",
		"content_cache_dir", NULL};
	const config_setting_t *root = config_root_setting(cf);
	const config_setting_t *s;
	struct ctl_config c;

	memset(&c, 0, sizeof(c));
	c.source = strdup(x->file);
	c.stack.port = strdup("net_tap0,iface=mxg0");
	c.stack.address = 0xC6120002; /* 198.18.0.2/24 */
	c.stack.prefix_len = 24;
	c.stack.cores = 1;
	c.stack.max_conns = 16384;
	c.stack.syn_backlog = 1024;
	c.stack.overload_percent = 80;
	c.stack.overload_idle_ms = 10000;
	c.stack.overload_max_errors = 3;
	c.maildir.path = strdup("/var/lib/mxgate/Maildir");
	c.maildir.workers = 1;
	c.maildir.max_jobs = 64;
	c.log.file = strdup("");
	c.log.level = strdup("info");
	c.log.format = strdup("kv");
	c.policy.deny_action = CTL_DENY_REPLY;
	c.policy.rate_table_size = 65536;
	c.policy.block_table_size = 16384;
	c.policy.ipv6_prefix = 64;

	cfg_check_keys(x, root, "", keys);
	s = config_setting_get_member(root, "stack");
	if (s)
		parse_stack(x, s, &c);

	s = config_setting_get_member(root, "listeners");
	if (s == NULL) {
		cfg_err(x, 1, "listeners",
			"missing (a list ( { name = \"mx\"; port = 25; role = "
			"\"mx\"; }, ... ))");
	} else if (cfg_want_type(x, s, "listeners", CONFIG_TYPE_LIST,
			     "a list ( { ... }, ... )")) {
		int n = config_setting_length(s);

		if (n == 0)
			cfg_err(x, cfg_line_of(s), "listeners",
				"empty (at least one listener)");
		c.listeners = calloc((size_t)n + 1, sizeof(*c.listeners));
		for (int i = 0; c.listeners && i < n; i++) {
			const config_setting_t *g =
				config_setting_get_elem(s, (unsigned)i);
			char path[32];

			snprintf(path, sizeof(path), "listeners[%d]", i);
			listener_defaults(x, &c.listeners[i], &c);
			c.n_listeners++;
			if (cfg_want_type(x, g, path, CONFIG_TYPE_GROUP,
				      "a group { }"))
				parse_listener(x, g, path, &c, &c.listeners[i]);
		}
	}

	cfg_parse_content(x, root, &c);
	cfg_parse_auth(x, config_setting_get_member(root, "auth"), &c);
	cfg_check_auth(x, root, &c);

	s = config_setting_get_member(root, "policy");
	if (s)
		cfg_parse_policy(x, s, &c);
	cfg_inherit_policy(root, &c);

	s = config_setting_get_member(root, "pools");
	if (s && cfg_want_type(x, s, "pools", CONFIG_TYPE_LIST,
			   "a list ( { ... }, ... )")) {
		int n = config_setting_length(s);

		if (n == 0)
			cfg_err(x, cfg_line_of(s), "pools",
				"empty (at least one pool, or leave pools out "
				"for the local Maildir)");
		c.pools = calloc((size_t)n + 1, sizeof(*c.pools));
		for (int i = 0; c.pools && i < n; i++) {
			const config_setting_t *g =
				config_setting_get_elem(s, (unsigned)i);
			char path[32];

			snprintf(path, sizeof(path), "pools[%d]", i);
			pool_defaults(&c.pools[i]);
			c.n_pools++;
			if (cfg_want_type(x, g, path, CONFIG_TYPE_GROUP,
				      "a group { }"))
				parse_pool(x, g, path, &c.pools[i]);
		}
	} else if (s == NULL) {
		/* No pools: everything goes to the local Maildir. */
		c.pools = calloc(1, sizeof(*c.pools));
		if (c.pools) {
			pool_defaults(&c.pools[0]);
			c.pools[0].name = strdup("default");
			c.pools[0].type = CTL_POOL_MAILDIR;
			c.n_pools = 1;
		}
	}

	s = config_setting_get_member(root, "maildir");
	if (s)
		parse_maildir(x, s, &c);
	s = config_setting_get_member(root, "log");
	if (s)
		parse_log(x, s, &c);
	c.tls.ticket_rotation_ms = 3600000;
	s = config_setting_get_member(root, "tls");
	if (s)
		cfg_parse_tls(x, s, &c);
	cross_checks(x, root, &c);

	if (x->n_err) {
		ctl_config_free(&c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

static int finish(struct ctx *x, config_t *cf, int rc, struct ctl_config *out)
{
	if (rc == 0)
		rc = load(x, cf, out);
	config_destroy(cf);
	if (x->n_dropped && x->buf && x->used + 48 <= x->len)
		snprintf(x->buf + x->used, x->len - x->used,
			 "... %u more error(s)\n", x->n_dropped);
	return rc;
}

static void ctx_init(struct ctx *x, const char *file, char *buf, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->file = file;
	x->buf = buf;
	x->len = len;
	if (buf && len)
		buf[0] = '\0';
	if (gethostname(x->hostname, sizeof(x->hostname) - 1) < 0 ||
	    x->hostname[0] == '\0')
		snprintf(x->hostname, sizeof(x->hostname), "localhost");
}

static int syntax_error(struct ctx *x, config_t *cf)
{
	if (config_error_type(cf) == CONFIG_ERR_FILE_IO) {
		int e = errno ? errno : ENOENT;

		cfg_err(x, 0, NULL, "cannot read the file: %s", strerror(e));
		return -e;
	}
	cfg_err(x, (unsigned)config_error_line(cf), NULL, "syntax error: %s",
		config_error_text(cf));
	return -EINVAL;
}

int ctl_config_load(const char *path, struct ctl_config *out, char *errbuf,
		    size_t errlen)
{
	struct ctx x;
	config_t cf;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	ctx_init(&x, path, errbuf, errlen);
	config_init(&cf);
	errno = 0;
	if (config_read_file(&cf, path) != CONFIG_TRUE)
		rc = syntax_error(&x, &cf);
	return finish(&x, &cf, rc, out);
}

int ctl_config_load_string(const char *text, const char *name,
			   struct ctl_config *out, char *errbuf, size_t errlen)
{
	struct ctx x;
	config_t cf;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	ctx_init(&x, name, errbuf, errlen);
	config_init(&cf);
	if (config_read_string(&cf, text) != CONFIG_TRUE)
		rc = syntax_error(&x, &cf);
	return finish(&x, &cf, rc, out);
}

void ctl_default_host(char *host, size_t cap)
{
	if (gethostname(host, cap) < 0 || host[0] == '\0')
		snprintf(host, cap, "localhost");
	host[cap - 1] = '\0';
}

int ctl_config_default(struct ctl_config *out)
{
	char err[512], host[256];
	int r;

	/* its certificates (issue 13) and its submission user (issue 14),
	 * made on the first run */
	ctl_default_host(host, sizeof(host));
	r = ctl_default_state(CTL_STATE_DIR, host, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "mxgate: embedded default: %s\n", err);
		return r;
	}
	return ctl_config_load_string(ctl_config_default_text, "<built-in>",
				      out, err, sizeof(err));
}

const char *ctl_role_name(enum ctl_role r)
{
	switch (r) {
	case CTL_ROLE_MX:
		return "mx";
	case CTL_ROLE_SUBMISSION:
		return "submission";
	case CTL_ROLE_SMTPS:
		return "smtps";
	}
	return "?";
}
