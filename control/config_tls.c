/*
 * config_tls.c - the TLS keys of the configuration (issue 13): a
 * listener's tls mode, certificates and policy, a pool's STARTTLS to its
 * backends, the global tls section. Certificates and keys are loaded
 * here, while the file and line are known, into ready contexts
 * (tls/tls_ctx.h) that the configuration owns and the snapshot built
 * from it publishes; they are freed with the configuration, so with the
 * snapshot after its RCU grace period.
 *
 * Threads: main lcore only, like the rest of the loader.
 *
 * Listeners: every mode is served (dataplane/gateway/xprt_tls.c); role
 * "smtps" means tls = "implicit" (the default there, and the only mode
 * it accepts). Pools: every mode is served (STARTTLS to the backends,
 * dataplane/gateway/backend.c); the files are loaded here into a client
 * context, so a bad CA file, pin or client key is named with its line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_read.h"
#include "tls/tls_ctx.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static const char *const listener_modes[] = {"off", "optional", "required",
					     "implicit", NULL};
static const char *const pool_modes[] = {"off", "opportunistic", "required",
					 NULL};
static const char *const ccert_modes[] = {"off", "ask", "require", NULL};

static void parse_certs(struct ctx *x, const config_setting_t *g,
			const char *path, struct ctl_listener_tls *t)
{
	static const char *const keys[] = {"cert", "key", "chain", NULL};
	const config_setting_t *s = config_setting_get_member(g,
							      "certificates");
	char key[160];
	int n;

	cfg_path_of(key, sizeof(key), path, "certificates");
	if (s == NULL || !cfg_want_type(x, s, key, CONFIG_TYPE_LIST,
					"a list ( { cert = \"...\"; key = "
					"\"...\"; }, ... )"))
		return;
	n = config_setting_length(s);
	t->certs = calloc((size_t)n + 1, sizeof(*t->certs));
	for (int i = 0; t->certs && i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
								    (unsigned)i);
		struct ctl_tls_cert *c = &t->certs[t->n_certs++];
		char ep[192];

		snprintf(ep, sizeof(ep), "%s[%d]", key, i);
		c->line = cfg_line_of(e);
		if (!cfg_want_type(x, e, ep, CONFIG_TYPE_GROUP, "a group { }"))
			continue;
		cfg_check_keys(x, e, ep, keys);
		cfg_get_str(x, e, ep, "cert", 4096, &c->cert);
		cfg_get_str(x, e, ep, "key", 4096, &c->key);
		cfg_get_str(x, e, ep, "chain", 4096, &c->chain);
		if (c->cert == NULL || c->key == NULL) {
			char k2[224];

			cfg_path_of(k2, sizeof(k2), ep,
				    c->cert == NULL ? "cert" : "key");
			cfg_err(x, c->line, k2,
				"missing (the path of a PEM %s)",
				c->cert == NULL ? "certificate" : "private key");
		}
	}
}

/* "AB:cd:..." or "abcd..." (64 hex digits) -> lower case, no colons. */
static char *fingerprint(const char *v)
{
	char out[65];
	size_t n = 0;

	for (const char *p = v; *p; p++) {
		if (*p == ':')
			continue;
		if (n >= 64 || !((*p >= '0' && *p <= '9') ||
				 (*p >= 'a' && *p <= 'f') ||
				 (*p >= 'A' && *p <= 'F')))
			return NULL;
		out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	}
	if (n != 64)
		return NULL;
	out[64] = '\0';
	return strdup(out);
}

static void parse_partners(struct ctx *x, const config_setting_t *g,
			   const char *path, struct ctl_listener_tls *t)
{
	const config_setting_t *s = config_setting_get_member(g,
							      "tls_partners");
	char key[160];
	int n;

	cfg_path_of(key, sizeof(key), path, "tls_partners");
	if (s == NULL ||
	    !cfg_want_type(x, s, key, CONFIG_TYPE_ARRAY,
			   "an array [ \"sha256:HEX\", \"subject:CN=...\" ]"))
		return;
	n = config_setting_length(s);
	t->partners = calloc((size_t)n + 1, sizeof(*t->partners));
	for (int i = 0; t->partners && i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
								    (unsigned)i);
		struct ctl_tls_partner *p = &t->partners[t->n_partners];
		const char *v = config_setting_get_string(e);
		char ep[192];

		snprintf(ep, sizeof(ep), "%s[%d]", key, i);
		p->line = cfg_line_of(e);
		if (v && strncmp(v, "sha256:", 7) == 0 &&
		    (p->sha256 = fingerprint(v + 7)) != NULL) {
			t->n_partners++;
		} else if (v && strncmp(v, "subject:", 8) == 0 && v[8]) {
			p->subject = strdup(v + 8);
			t->n_partners++;
		} else {
			cfg_err(x, p->line, ep,
				"\"%s\" is not a partner (\"sha256:\" and the "
				"certificate's 64 hex digits, or \"subject:\" "
				"and its RFC 2253 subject)",
				v ? v : "");
		}
	}
}

static int version_of(struct ctx *x, const config_setting_t *g,
		      const char *path)
{
	static const char *const v[] = {"1.2", "1.3", NULL};
	int e = 0;

	cfg_get_enum(x, g, path, "tls_min_version", v, &e);
	return e == 1 ? 0x0304 : 0x0303;
}

/* Loads the certificates into a context; errors at the line of the
 * certificate at fault. */
static void build_server(struct ctx *x, const config_setting_t *g,
			 const char *path, const char *name,
			 struct ctl_listener_tls *t)
{
	struct tls_cert_spec *cs = calloc(t->n_certs + 1, sizeof(*cs));
	struct tls_server_spec sp = {
		.name = name,
		.certs = cs,
		.n_certs = t->n_certs,
		.min_version = t->min_version,
		.ciphers = t->ciphers,
		.min_cipher_bits = t->min_cipher_bits,
		.client_cert = (enum tls_client_cert)t->client_cert,
		.ca_file = t->ca_file,
	};
	char err[512], key[192];
	int bad = -1;
	unsigned line;

	if (cs == NULL) {
		cfg_nomem(x, g, path);
		return;
	}
	for (uint32_t i = 0; i < t->n_certs; i++) {
		cs[i].cert = t->certs[i].cert;
		cs[i].key = t->certs[i].key;
		cs[i].chain = t->certs[i].chain;
	}
	t->ctx = tls_server_ctx_new(&sp, NULL, &bad, err, sizeof(err));
	free(cs);
	if (t->ctx)
		return;
	if (bad >= 0 && (uint32_t)bad < t->n_certs) {
		snprintf(key, sizeof(key), "%s.certificates[%d]", path, bad);
		line = t->certs[bad].line;
	} else if (strncmp(err, "tls_ciphers", 11) == 0) {
		cfg_path_of(key, sizeof(key), path, "tls_ciphers");
		line = cfg_line_of(config_setting_get_member(g, "tls_ciphers"));
	} else if (strncmp(err, "tls_ca_file", 11) == 0) {
		cfg_path_of(key, sizeof(key), path, "tls_ca_file");
		line = cfg_line_of(config_setting_get_member(g, "tls_ca_file"));
	} else {
		cfg_path_of(key, sizeof(key), path, "certificates");
		line = cfg_line_of(g);
	}
	cfg_err(x, line ? line : cfg_line_of(g), key, "%s", err);
}

void cfg_parse_listener_tls(struct ctx *x, const config_setting_t *g,
			    const char *path, struct ctl_listener *l)
{
	struct ctl_listener_tls *t = &l->tls;
	const config_setting_t *m;
	char key[160];
	int e;

	/* RFC 8314: an smtps listener is TLS from the first byte */
	if (l->role == CTL_ROLE_SMTPS &&
	    config_setting_get_member(g, "tls") == NULL)
		t->mode = CTL_TLS_IMPLICIT;
	e = (int)t->mode;
	cfg_get_enum(x, g, path, "tls", listener_modes, &e);
	t->mode = (enum ctl_tls_mode)e;
	if (l->role == CTL_ROLE_SMTPS && t->mode != CTL_TLS_IMPLICIT) {
		cfg_path_of(key, sizeof(key), path, "tls");
		cfg_err(x, cfg_line_of(config_setting_get_member(g, "tls")),
			key,
			"role \"smtps\" is implicit TLS (RFC 8314): tls must "
			"be \"implicit\" (or left out)");
	}
	t->min_version = version_of(x, g, path);
	cfg_get_str(x, g, path, "tls_ciphers", 1024, &t->ciphers);
	cfg_get_u32(x, g, path, "tls_min_cipher_bits", 0, 256,
		    &t->min_cipher_bits);
	e = t->client_cert;
	cfg_get_enum(x, g, path, "tls_client_cert", ccert_modes, &e);
	t->client_cert = e;
	cfg_get_str(x, g, path, "tls_ca_file", 4096, &t->ca_file);
	parse_certs(x, g, path, t);
	parse_partners(x, g, path, t);

	if (t->mode == CTL_TLS_OFF) {
		/* TLS keys without TLS are a mistake worth naming. */
		if (t->n_certs || t->n_partners ||
		    t->client_cert != TLS_CCERT_OFF) {
			cfg_path_of(key, sizeof(key), path, "tls");
			cfg_err(x, l->line, key,
				"TLS settings given but tls is \"off\" (set "
				"tls = \"optional\", \"required\" or "
				"\"implicit\", or remove them)");
		}
		return;
	}
	if (t->n_certs == 0) {
		cfg_path_of(key, sizeof(key), path, "certificates");
		m = config_setting_get_member(g, "tls");
		cfg_err(x, m ? cfg_line_of(m) : l->line, key,
			"missing: tls = \"%s\" needs certificates ( { cert = "
			"\"...\"; key = \"...\"; } )",
			listener_modes[t->mode]);
		return;
	}
	if (t->client_cert != TLS_CCERT_OFF && t->ca_file == NULL) {
		cfg_path_of(key, sizeof(key), path, "tls_ca_file");
		m = config_setting_get_member(g, "tls_client_cert");
		cfg_err(x, m ? cfg_line_of(m) : l->line, key,
			"missing: tls_client_cert = \"%s\" needs the CA file "
			"client certificates are verified against",
			ccert_modes[t->client_cert]);
		return;
	}
	if (t->n_partners && t->client_cert == TLS_CCERT_OFF) {
		cfg_path_of(key, sizeof(key), path, "tls_partners");
		cfg_err(x,
			cfg_line_of(config_setting_get_member(g,
							      "tls_partners")),
			key,
			"partners need client certificates (tls_client_cert "
			"= \"ask\" or \"require\")");
		return;
	}
	if (x->n_err == 0)
		build_server(x, g, path, l->name, t);
}

/* The line of a pool's key, else of the pool. */
static unsigned key_line(const config_setting_t *g, const char *k)
{
	const config_setting_t *m = config_setting_get_member(g, k);

	return cfg_line_of(m ? m : g);
}

/* The pool's backend context, with every file read now so that a bad
 * one is named with its line. tls/ prefixes its messages with the key
 * at fault ("tls_ca_file: ..."). */
static void build_client(struct ctx *x, const config_setting_t *g,
			 const char *path, const char *pool,
			 struct ctl_pool_tls *t)
{
	static const char *const at[] = {"tls_ca_file", "tls_fingerprint",
					 "tls_cert", "tls_key", NULL};
	struct tls_client_spec cs = {
		.name = pool,
		.verify = t->ca_file != NULL,
		.ca_file = t->ca_file,
		.fingerprint = t->fingerprint,
		.cert = t->cert,
		.key = t->key,
	};
	const char *k = "tls";
	char key[160], err[512] = "";

	t->ctx = tls_client_ctx_new(&cs, err, sizeof(err));
	if (t->ctx)
		return;
	for (int i = 0; at[i]; i++)
		if (strncmp(err, at[i], strlen(at[i])) == 0 &&
		    err[strlen(at[i])] == ':')
			k = at[i];
	cfg_path_of(key, sizeof(key), path, k);
	cfg_err(x, key_line(g, k), key, "%s", err);
}

void cfg_parse_pool_tls(struct ctx *x, const config_setting_t *g,
			const char *path, struct ctl_pool *p)
{
	struct ctl_pool_tls *t = &p->tls;
	char key[160];
	int e = (int)t->mode;

	cfg_get_enum(x, g, path, "tls", pool_modes, &e);
	t->mode = (enum ctl_pool_tls_mode)e;
	cfg_get_str(x, g, path, "tls_ca_file", 4096, &t->ca_file);
	cfg_get_str(x, g, path, "tls_name", 255, &t->name);
	cfg_get_str(x, g, path, "tls_fingerprint", 128, &t->fingerprint);
	cfg_get_str(x, g, path, "tls_cert", 4096, &t->cert);
	cfg_get_str(x, g, path, "tls_key", 4096, &t->key);
	cfg_path_of(key, sizeof(key), path, "tls");
	if (t->mode == CTL_POOL_TLS_OFF) {
		if (t->ca_file || t->fingerprint || t->cert || t->key)
			cfg_err(x, key_line(g, "tls"), key,
				"TLS settings given but tls is \"off\" (set "
				"tls = \"opportunistic\" or \"required\", or "
				"remove them)");
		return;
	}
	if (t->mode == CTL_POOL_TLS_OPPORTUNISTIC &&
	    (t->ca_file || t->fingerprint)) {
		const char *k = t->ca_file ? "tls_ca_file" : "tls_fingerprint";

		cfg_path_of(key, sizeof(key), path, k);
		cfg_err(x, key_line(g, k), key,
			"\"opportunistic\" checks no certificate (tls = "
			"\"required\" to verify the backends)");
		return;
	}
	if (t->mode == CTL_POOL_TLS_REQUIRED && t->ca_file == NULL &&
	    t->fingerprint == NULL) {
		cfg_err(x, key_line(g, "tls"), key,
			"\"required\" needs tls_ca_file and tls_name (the CA "
			"and the name the backends' certificates must carry) "
			"or tls_fingerprint (the SHA-256 of their "
			"certificate)");
		return;
	}
	if (t->ca_file && t->name == NULL) {
		cfg_path_of(key, sizeof(key), path, "tls_name");
		cfg_err(x, key_line(g, "tls_ca_file"), key,
			"missing: tls_ca_file needs tls_name, the name the "
			"backends' certificates must carry");
		return;
	}
	if (t->key && t->cert == NULL) {
		cfg_path_of(key, sizeof(key), path, "tls_cert");
		cfg_err(x, key_line(g, "tls_key"), key,
			"missing: tls_key without tls_cert (the client "
			"certificate it belongs to)");
		return;
	}
	if (x->n_err == 0)
		build_client(x, g, path, p->name, t);
}

void cfg_parse_tls(struct ctx *x, const config_setting_t *g,
		   struct ctl_config *c)
{
	static const char *const keys[] = {"workers", "ticket_rotation", NULL};

	if (!cfg_want_type(x, g, "tls", CONFIG_TYPE_GROUP, "a group { }"))
		return;
	cfg_check_keys(x, g, "tls", keys);
	cfg_get_u32(x, g, "tls", "workers", 0, 256, &c->tls.workers);
	cfg_get_secs(x, g, "tls", "ticket_rotation", 60, 7 * 86400,
		     &c->tls.ticket_rotation_ms);
}

void cfg_free_listener_tls(struct ctl_listener_tls *t)
{
	for (uint32_t i = 0; t->certs && i < t->n_certs; i++) {
		free(t->certs[i].cert);
		free(t->certs[i].key);
		free(t->certs[i].chain);
	}
	free(t->certs);
	for (uint32_t i = 0; t->partners && i < t->n_partners; i++) {
		free(t->partners[i].sha256);
		free(t->partners[i].subject);
	}
	free(t->partners);
	free(t->ciphers);
	free(t->ca_file);
	tls_server_ctx_free(t->ctx);
	memset(t, 0, sizeof(*t));
}

void cfg_free_pool_tls(struct ctl_pool_tls *t)
{
	free(t->ca_file);
	free(t->name);
	free(t->fingerprint);
	free(t->cert);
	free(t->key);
	tls_client_ctx_free(t->ctx);
	memset(t, 0, sizeof(*t));
}

bool ctl_tls_partner_match(const struct ctl_listener_tls *t, bool verified,
			   const char *sha256, const char *subject)
{
	if (!verified)
		return false;
	for (uint32_t i = 0; i < t->n_partners; i++) {
		const struct ctl_tls_partner *p = &t->partners[i];

		if (p->sha256 && sha256 && strcmp(p->sha256, sha256) == 0)
			return true;
		if (p->subject && subject && strcmp(p->subject, subject) == 0)
			return true;
	}
	return false;
}
