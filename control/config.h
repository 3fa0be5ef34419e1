/*
 * config.h - the mxgate configuration file: schema, loading, validation
 * (DESIGN section 8; every key is documented in docs/configuration.md).
 *
 * Threads: called by the main lcore (start-up, reload, --check-config),
 * never by a dataplane lcore. Loading allocates; the result is a plain
 * immutable value that the snapshot compiler turns into per-core tables.
 *
 * Errors: every problem found is reported, not just the first, one line
 * each, in the form
 *     FILE:LINE: key 'listeners[1].port': what is wrong (what would be valid)
 * Syntax errors come from libconfig as "FILE:LINE: syntax error: TEXT".
 * All or nothing: on any error *out is left empty (nothing to free).
 */
#ifndef MXG_CONTROL_CONFIG_H
#define MXG_CONTROL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/brute.h"
#include "control/cidr.h"
#include "dataplane/bounds.h"

struct auth_store;
struct auth_sendermap;
struct content_ruleset;

enum ctl_role {
	CTL_ROLE_MX = 0,     /* port 25: inbound mail, no AUTH by default */
	CTL_ROLE_SUBMISSION, /* port 587: RFC 6409 message submission */
	CTL_ROLE_SMTPS,	     /* port 465: implicit TLS (RFC 8314) */
};

enum ctl_bare_lf {
	CTL_BARE_LF_REJECT = 0, /* bare CR/LF in DATA: 550 5.6.0, close */
	CTL_BARE_LF_NORMALIZE,	/* re-emit as CRLF */
};

enum ctl_pool_type {
	CTL_POOL_SMTP = 0, /* backend MTAs over SMTP */
	CTL_POOL_MAILDIR,  /* the local Maildir (maildir { } section) */
};

enum ctl_client_info {
	CTL_CINFO_NONE = 0,
	CTL_CINFO_XCLIENT,
	CTL_CINFO_PROXY,
};

/* What a refused client sees (policy.deny_action, listener deny_action). */
enum ctl_deny_action {
	CTL_DENY_REPLY = 0, /* "554 5.7.1 ..." in place of the greeting */
	CTL_DENY_CLOSE,	    /* close without a word */
};

enum ctl_domain_type {
	CTL_DOM_AUTHORITATIVE = 0, /* ours; unknown recipients are the
				      backend's to reject */
	CTL_DOM_INTERNAL_RELAY,	   /* accepted, forwarded inside the org */
	CTL_DOM_EXTERNAL_RELAY,	   /* accepted, forwarded to outside hosts */
};

/* A list of CIDR blocks ("allow", "deny", "networks", "relay_networks"). */
struct ctl_cidr_list {
	struct ctl_cidr *v;
	uint32_t n;
};

struct ctl_domain {
	char *name;	 /* lower case, no trailing dot, no leading '.' */
	bool subdomains; /* written ".example.com" or "*.example.com":
			    the subdomains too (and the domain itself) */
	enum ctl_domain_type type;
	unsigned line;
};

/* Sender or recipient restrictions. Entries are "user@example.com" (one
 * address), "example.com" (the domain), ".example.com" (the domain and
 * its subdomains); stored lower case, trailing dot removed. A reject
 * entry wins over an accept entry; with a non-empty accept list, only
 * what it matches passes. */
struct ctl_addr_list {
	char **accept;
	uint32_t n_accept;
	char **reject;
	uint32_t n_reject;
};

enum ctl_rl_key {
	CTL_RL_IP = 0,	     /* client IPv4 address */
	CTL_RL_IP24,	     /* client /24 aggregate */
	CTL_RL_SENDER_DOMAIN,/* MAIL FROM domain (lower case) */
	CTL_RL_USER,	     /* authenticated user */
};

enum ctl_rl_what {
	CTL_RL_CONNECTIONS = 0, /* counted at connect: 421 4.7.0, close */
	CTL_RL_MESSAGES,	/* counted at MAIL: 451 4.7.1 */
	CTL_RL_RECIPIENTS,	/* counted at RCPT: 451 4.7.1 */
};

struct ctl_rate_limit {
	char *name;		/* for logs and metrics; default "rlN" */
	enum ctl_rl_key key;
	enum ctl_rl_what what;
	uint32_t per_minute;	/* sustained rate */
	uint32_t burst;		/* bucket size; 0 = per_minute */
	char *listener;		/* only on this listener; NULL = all */
	unsigned line;
};

/* TLS (issue 13; docs/configuration.md "TLS"). */
enum ctl_tls_mode {
	CTL_TLS_OFF = 0,  /* cleartext only */
	CTL_TLS_OPTIONAL, /* STARTTLS offered */
	CTL_TLS_REQUIRED, /* STARTTLS before MAIL, RCPT, DATA, BDAT, AUTH */
	CTL_TLS_IMPLICIT, /* TLS from the first byte (RFC 8314, port 465) */
};

enum ctl_pool_tls_mode {
	CTL_POOL_TLS_OFF = 0,
	CTL_POOL_TLS_OPPORTUNISTIC, /* STARTTLS when offered, no checks */
	CTL_POOL_TLS_REQUIRED,	    /* STARTTLS, verified CA and name */
};

struct ctl_tls_cert {
	char *cert, *key, *chain; /* chain NULL when absent */
	unsigned line;
};

/* A client certificate that may relay: by SHA-256 fingerprint (64 lower
 * case hex digits) or by verified subject (RFC 2253 one-line form). */
struct ctl_tls_partner {
	char *sha256;
	char *subject;
	unsigned line;
};

struct tls_server_ctx;
struct tls_client_ctx;

struct ctl_listener_tls {
	enum ctl_tls_mode mode;
	struct ctl_tls_cert *certs;
	uint32_t n_certs;
	int min_version;	  /* 0x0303 (TLS 1.2) or 0x0304 (1.3) */
	char *ciphers;		  /* NULL: tls/ default (forward secret) */
	uint32_t min_cipher_bits; /* 0: none */
	int client_cert;	  /* enum tls_client_cert */
	char *ca_file;
	struct ctl_tls_partner *partners;
	uint32_t n_partners;
	struct tls_server_ctx *ctx; /* built by the loader, owned; NULL
				       when mode is off */
};

struct ctl_pool_tls {
	enum ctl_pool_tls_mode mode;
	char *ca_file;		    /* required mode: verify chain + name */
	char *name;		    /* expected name (and SNI); NULL: the
				       server's configured address is not
				       a name, so CA verification needs it */
	char *fingerprint;	    /* required mode: SHA-256 pin of the
				       backends' certificate */
	char *cert, *key;	    /* client certificate (key NULL: in
				       cert) */
	struct tls_client_ctx *ctx; /* built by the loader, owned */
};

/* AUTH on a listener (issue 14; control/config_auth.c). */
enum ctl_auth_mode {
	CTL_AUTH_OFF = 0,  /* AUTH neither offered nor accepted */
	CTL_AUTH_OPTIONAL, /* offered; anonymous clients may still send */
	CTL_AUTH_REQUIRED, /* AUTH before MAIL (require_auth = true) */
};
/* SASL mechanisms: the same bits as auth/sasl.h's AUTH_MECH_*. */
#define CTL_AUTH_PLAIN  (1u << 0)
#define CTL_AUTH_LOGIN  (1u << 1)
#define CTL_AUTH_GSSAPI (1u << 2)

/* The auth section: credential stores and brute-force limits, shared
 * by every listener with AUTH. The users file and the sender map are
 * loaded (and their FILE:LINE errors reported) with the configuration;
 * the loaded values are owned here until handed to a snapshot. */
struct ctl_auth_config {
	char *users_file;          /* NULL: no password store (PLAIN and
				      LOGIN answer 454 4.7.0) */
	char *dovecot_socket;      /* Dovecot's auth-client socket: PLAIN
				      and LOGIN checked there instead of
				      in users_file; NULL: not used */
	char *sender_login_map;    /* NULL: senders not tied to logins */
	struct auth_store *users;
	struct auth_sendermap *sender_map;
	struct auth_brute_config brute_force;
	uint32_t brute_table_size; /* entries per core (LRU); 65536 */
	char *gssapi_keytab;       /* NULL: KRB5_KTNAME or the default */
	char *gssapi_service;      /* "smtp/HOST@REALM"; NULL: no GSSAPI */
	char *gssapi_realm;        /* principals of this realm log in
				      without "@REALM"; NULL: keep it */
	unsigned line;
};

/* Listener time-outs, milliseconds (the file says seconds). */
struct ctl_listener_timeouts {
	uint32_t greeting_ms, command_ms, mail_ms, rcpt_ms;
	uint32_t data_init_ms, data_block_ms, data_term_ms;
};

/* Content rules of a listener (issue 15, config_content.c). */
struct ctl_listener_content {
	char *name;           /* content_rules: a content_rule_sets name */
	int32_t set;          /* index into ctl_config.content_sets, -1 */
	unsigned line;
	bool exempt_authenticated;  /* no scan after a successful AUTH */
	bool exempt_relay_networks; /* no scan for policy.relay_networks */
	uint64_t scan_limit;  /* octets scanned per message, 0: all */
};

/* One content rule's hit counter: one word per dataplane core (core k
 * writes only core[k], relaxed atomics; the main lcore sums). Shared by
 * every loaded configuration whose set has the same rule (set name,
 * rule file, line, where, action, pattern: ctl_content_hits_acquire), so
 * a reload that keeps a rule keeps its count, and cores still on the old
 * snapshot count into the same words. */
struct ctl_rule_hits {
	uint64_t core[MXG_MAX_CORES];
	uint64_t hash;
	uint32_t refs;
	size_t key_len;
	char *key;
	struct ctl_rule_hits *next;
};

/* One named rule set: a rule file compiled into Hyperscan databases. */
struct ctl_content_set {
	char *name;
	char *file;
	unsigned line;
	struct content_ruleset *rules; /* content/rules.h; owned */
	/* hits[rule]: its counter (n_rules pointers), taken by the snapshot
	 * build for sets bound to a listener, released with the config */
	struct ctl_rule_hits **hits;
};

/* Which families a listener serves (issue 16). */
enum ctl_family {
	CTL_FAMILY_ANY = 0, /* no address given: both of the stack's */
	CTL_FAMILY_V4,	    /* address names stack.address: IPv4 only */
	CTL_FAMILY_V6,	    /* address names stack.address6: IPv6 only */
};
/* Takes cs's per-rule counters from the registry (main lcore): the
 * counter of a rule some loaded configuration already has is shared.
 * 0 or -ENOMEM. No-op when cs->hits is set. */
int ctl_content_hits_acquire(struct ctl_content_set *cs);

/* A counter's total over every core (main lcore). */
uint64_t ctl_rule_hits_sum(const struct ctl_rule_hits *h);

struct ctl_listener {
	char *name;
	uint32_t address; /* IPv4, host order; the stack address
			     unless given (0 when family is V6) */
	uint8_t address6[16]; /* when family is V6 */
	enum ctl_family family;
	uint16_t port;
	enum ctl_role role;
	char *hostname;		   /* our name in replies */
	char *banner;		   /* greeting text after "220 host " */
	uint64_t max_message_size; /* octets, advertised in SIZE */
	uint32_t max_recipients;
	uint32_t max_errors;
	struct ctl_listener_timeouts timeouts;
	enum ctl_bare_lf bare_lf;
	bool pipelining_enforce; /* RFC 2920 sync violations: 554, close */
	/* Receive-connector policy (issue 6). */
	struct ctl_cidr_list networks; /* remote networks served; empty =
					  every address */
	struct ctl_cidr_list allow;    /* exceptions to deny (and to the
					  global deny list) */
	struct ctl_cidr_list deny;
	enum ctl_deny_action deny_action;
	bool allow_anonymous;	 /* unauthenticated clients may send
				    (default: true for mx, false
				    otherwise) */
	bool require_auth;	 /* AUTH before MAIL (default: false for
				    mx, true otherwise) */
	bool relay_authenticated;/* authenticated clients may relay
				    (default: false for mx, true
				    otherwise) */
	enum ctl_auth_mode auth;  /* default: off for mx, required
				     otherwise (optional when
				     require_auth = false) */
	unsigned auth_mechanisms; /* CTL_AUTH_*; default PLAIN LOGIN */
	bool auth_allow_cleartext;/* PLAIN/LOGIN before TLS (default
				     false; discouraged) */
	uint32_t max_connections;	 /* on this listener, all cores;
					    0 = no limit */
	uint32_t max_connections_per_ip; /* 0 = no limit */
	uint32_t connection_rate_per_ip; /* new connections per minute
					    per client IP; 0 = none */
	uint32_t max_messages_per_connection; /* 0 = no limit */
	struct ctl_addr_list senders;	 /* checked after the global ones */
	struct ctl_addr_list recipients;
	struct ctl_listener_tls tls;
	struct ctl_listener_content content;
	unsigned line;		 /* where it is defined, for messages */
};

struct ctl_server {
	uint32_t address; /* IPv4, host order (unless v6) */
	uint16_t port;
	uint16_t weight;
	bool v6;
	uint8_t address6[16]; /* IPv6, network order */
};

/* Backend time-outs, milliseconds (the file says seconds). */
struct ctl_pool_timeouts {
	uint32_t connect_ms, greeting_ms, ehlo_ms, xclient_ms, mail_ms;
	uint32_t rcpt_ms, data_ms, data_block_ms, data_end_ms, rset_ms;
	uint32_t quit_ms;
};

struct ctl_pool {
	char *name;
	enum ctl_pool_type type;
	char **domains; /* "example.com" exact, ".example.com"
			   subdomains */
	uint32_t n_domains;
	enum ctl_client_info client_info;
	struct ctl_server *servers;
	uint32_t n_servers;
	uint32_t max_conns; /* 0 = no limit */
	uint32_t max_conns_per_server;
	uint32_t idle_max;
	uint32_t idle_max_age_ms;
	char *helo_name; /* our EHLO name; "" = the gateway's */
	struct ctl_pool_timeouts timeouts;
	uint32_t health_interval_ms; /* active checks, 0 = none */
	uint32_t health_fail_after;
	uint32_t health_retry_ms;
	struct ctl_pool_tls tls;
	unsigned line;
};

struct ctl_config {
	char *source; /* file name or "<built-in>" */
	struct {
		char *port;	  /* DPDK device arguments */
		uint32_t address; /* IPv4, host order */
		uint8_t prefix_len;
		uint32_t gateway; /* 0 = none */
		uint8_t address6[16]; /* IPv6, network order */
		uint8_t prefix6_len;  /* 0: no IPv6 address */
		uint8_t gateway6[16]; /* all zero: none */
		uint32_t cores;	  /* dataplane lcores */
		bool busy_poll;
		uint32_t max_conns;
		uint32_t syn_backlog;
		/* Session table and backend connections per core; 0: sized
		 * at start-up (dataplane/options.c: options_capacity). */
		uint32_t sessions_per_core;
		uint32_t backends_per_core;
		/* Overload mode (issue 18): at or above overload_percent of
		 * the session table (0: off), sessions idle between commands
		 * for overload_idle_ms are closed with 421 4.3.2; clients
		 * that talked before the greeting are closed first, and a
		 * session reaching overload_max_errors protocol errors is
		 * closed (421 4.7.0). */
		uint32_t overload_percent;
		uint32_t overload_idle_ms;
		uint32_t overload_max_errors;
	} stack;
	struct ctl_listener *listeners;
	uint32_t n_listeners;
	struct ctl_pool *pools;
	uint32_t n_pools;
	uint32_t default_pool; /* index into pools */
	struct ctl_content_set *content_sets; /* content_rule_sets */
	uint32_t n_content_sets;
	char *content_quarantine_maildir; /* quarantine action's Maildir */
	char *content_cache_dir; /* compiled rule databases kept here */
	struct {
		char *path;
		uint32_t workers;
		uint32_t max_jobs;
	} maildir;
	/* The policy section (issue 6); every field has a safe default:
	 * no ACL, no relay networks, no accepted domains (so relaying is
	 * denied and nothing is accepted), no rate limits. */
	struct {
		enum ctl_deny_action deny_action;
		struct ctl_cidr_list allow; /* exceptions to deny */
		struct ctl_cidr_list deny;
		struct ctl_cidr_list relay_networks;
		struct ctl_domain *domains; /* accepted domains */
		uint32_t n_domains;
		struct ctl_addr_list senders;
		struct ctl_addr_list recipients;
		struct ctl_rate_limit *rate_limits;
		uint32_t n_rate_limits;
		uint32_t rate_table_size; /* buckets per core (LRU);
					     default 65536 */
		uint32_t block_table_size; /* pushed blocks per core;
					      default 16384 */
		uint32_t ipv6_prefix; /* IPv6 per-IP limits and rate
					 keys cover this prefix; 64 */
	} policy;
	struct ctl_auth_config auth;
	struct {
		uint32_t workers;	     /* handshake threads; 0 = CPUs
						not running dataplane
						lcores, at least 1 */
		uint32_t ticket_rotation_ms; /* ticket key lifetime step */
	} tls;
	struct {
		char *file;  /* "" = standard error */
		char *level;  /* "error" "warn" "info" "debug" (logline.h) */
		char *format; /* "kv" "json" */
	} log;
};

/* Loads and validates path into *out. Returns 0, or a negative errno
 * (-EINVAL for any syntax or validation error, -ENOENT/-EACCES/... when
 * the file cannot be read) with every error written to errbuf, one per
 * line (truncated to errlen with a final "... N more" line). errbuf may be
 * NULL. On failure *out is zeroed and owns nothing. */
int ctl_config_load(const char *path, struct ctl_config *out, char *errbuf,
		    size_t errlen);

/* Same from text in memory; name is used in messages as the file name. */
int ctl_config_load_string(const char *text, const char *name,
			   struct ctl_config *out, char *errbuf, size_t errlen);

/* The embedded default: tap port net_tap0 (iface mxg0), 198.18.0.2/24,
 * listeners mx on 25 and submission on 587 (STARTTLS) and 465 (implicit
 * TLS), AUTH required on 587 and 465, next hop the local Maildir
 * /var/lib/mxgate/Maildir. Makes its state on the first run
 * (control/state_default.h: TLS material, the users file with one user
 * whose password it prints). Returns 0 or a negative errno.
 * Its policy accepts example.com (authoritative) and relays for no one
 * but authenticated clients. */
int ctl_config_default(struct ctl_config *out);
/* gethostname(), or "localhost": the name of the default's certificates. */
void ctl_default_host(char *host, size_t cap);
/* The text of the embedded default (a valid configuration file). */
extern const char ctl_config_default_text[];

/* Frees what a successful load allocated; the struct is zeroed. */
void ctl_config_free(struct ctl_config *cfg);

const char *ctl_role_name(enum ctl_role r);

/* Partner relaying (listener tls_partners): true when a client
 * certificate that verified against tls_ca_file has the SHA-256
 * fingerprint (64 lower-case hex digits, as tls_session_info gives it)
 * or the RFC 2253 subject of a partner entry. An unverified certificate
 * never matches. Any thread (the table is immutable). */
bool ctl_tls_partner_match(const struct ctl_listener_tls *t, bool verified,
			   const char *sha256, const char *subject);

#endif /* MXG_CONTROL_CONFIG_H */
