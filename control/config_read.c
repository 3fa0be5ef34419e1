/*
 * config_read.c - the configuration loader's error collector and typed
 * getters (config_read.h): every key is read through one of these, so a
 * wrong type, an out-of-range value or an unknown key is reported the
 * same way everywhere: FILE:LINE: key 'PATH': message (what is valid).
 *
 * Threads: main lcore only (start-up, reload, --check-config). Allocates
 * (strings, lists) for the configuration being loaded.
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

/* ------------------------------------------------------------ errors */



void cfg_err(struct ctx *x, unsigned line, const char *key,
		    const char *fmt, ...)
{
	char msg[1024];
	char full[1536];
	va_list ap;
	int n;

	x->n_err++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		n = snprintf(full, sizeof(full), "%s:%u: key '%s': %s\n",
			     x->file, line, key, msg);
	else if (line)
		n = snprintf(full, sizeof(full), "%s:%u: %s\n", x->file, line,
			     msg);
	else
		n = snprintf(full, sizeof(full), "%s: %s\n", x->file, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(full))
		n = sizeof(full) - 1;
	/* Keep 48 octets for the "... N more" line. */
	if (x->buf == NULL || x->used + (size_t)n + 48 > x->len) {
		x->n_dropped++;
		return;
	}
	memcpy(x->buf + x->used, full, (size_t)n);
	x->used += (size_t)n;
	x->buf[x->used] = '\0';
}

unsigned cfg_line_of(const config_setting_t *s)
{
	return s ? config_setting_source_line(s) : 0;
}

/* ------------------------------------------------------------ getters */

const char *cfg_type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP:
		return "a group { }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [ ]";
	case CONFIG_TYPE_LIST:
		return "a list ( )";
	default:
		return "nothing";
	}
}

void cfg_path_of(char *out, size_t len, const char *parent, const char *name)
{
	if (parent && parent[0])
		snprintf(out, len, "%s.%s", parent, name);
	else
		snprintf(out, len, "%s", name);
}

/* Reports the members of group not in allowed (NULL-terminated). */
void cfg_check_keys(struct ctx *x, const config_setting_t *g,
		       const char *path, const char *const *allowed)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m =
			config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		bool ok = false;
		char valid[1024] = "", key[256];
		size_t vl = 0;

		for (const char *const *a = allowed; *a; a++) {
			if (name && strcmp(name, *a) == 0)
				ok = true;
			vl += (size_t)snprintf(valid + vl, sizeof(valid) - vl,
					       "%s%s", vl ? ", " : "", *a);
			if (vl >= sizeof(valid))
				vl = sizeof(valid) - 1;
		}
		if (ok)
			continue;
		cfg_path_of(key, sizeof(key), path, name ? name : "?");
		cfg_err(x, cfg_line_of(m), key, "unknown key (valid here: %s)",
			valid);
	}
}

bool cfg_want_type(struct ctx *x, const config_setting_t *s, const char *key,
		      int type, const char *valid)
{
	int t = config_setting_type(s);

	if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
		return true;
	cfg_err(x, cfg_line_of(s), key, "%s, expected %s", cfg_type_name(t), valid);
	return false;
}

/* Integer member name of g in [min, max]; absent: *out unchanged. */
void cfg_get_uint(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256], valid[96];
	long long v;

	if (s == NULL)
		return;
	cfg_path_of(key, sizeof(key), path, name);
	snprintf(valid, sizeof(valid), "an integer %llu..%llu",
		 (unsigned long long)min, (unsigned long long)max);
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_INT, valid))
		return;
	v = config_setting_get_int64(s);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max) {
		cfg_err(x, cfg_line_of(s), key, "%lld is out of range (%s)", v,
			valid);
		return;
	}
	*out = (uint64_t)v;
}

void cfg_get_u32(struct ctx *x, const config_setting_t *g, const char *path,
		    const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = *out;

	cfg_get_uint(x, g, path, name, min, max, &v);
	*out = (uint32_t)v;
}

/* Seconds in the file, milliseconds in the struct. */
void cfg_get_secs(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, uint32_t min, uint32_t max,
		     uint32_t *out_ms)
{
	uint64_t v = *out_ms / 1000;

	cfg_get_uint(x, g, path, name, min, max, &v);
	*out_ms = (uint32_t)(v * 1000);
}

void cfg_get_bool(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, bool *out)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256];

	if (s == NULL)
		return;
	cfg_path_of(key, sizeof(key), path, name);
	if (cfg_want_type(x, s, key, CONFIG_TYPE_BOOL, "true or false"))
		*out = config_setting_get_bool(s);
}

/* String member; replaces *out (a strdup) when present and valid. */
const config_setting_t *cfg_get_str(struct ctx *x, const config_setting_t *g,
				       const char *path, const char *name,
				       size_t maxlen, char **out)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256], valid[64];
	const char *v;

	if (s == NULL)
		return NULL;
	cfg_path_of(key, sizeof(key), path, name);
	snprintf(valid, sizeof(valid), "a string of at most %zu octets",
		 maxlen);
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_STRING, valid))
		return NULL;
	v = config_setting_get_string(s);
	if (strlen(v) > maxlen) {
		cfg_err(x, cfg_line_of(s), key, "too long (%s)", valid);
		return NULL;
	}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 32) {
			cfg_err(x, cfg_line_of(s), key,
				"control character in string (printable "
				"text)");
			return NULL;
		}
	free(*out);
	*out = strdup(v);
	return s;
}

/* String member that must be one of names[] (NULL-terminated); *out is the
 * index. */
void cfg_get_enum(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, const char *const *names, int *out)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256], valid[256];
	size_t vl = 0;
	const char *v;

	if (s == NULL)
		return;
	cfg_path_of(key, sizeof(key), path, name);
	for (const char *const *n = names; *n; n++)
		vl += (size_t)snprintf(valid + vl, sizeof(valid) - vl,
				       "%s\"%s\"", vl ? " or " : "one of ", *n);
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_STRING, valid))
		return;
	v = config_setting_get_string(s);
	for (int i = 0; names[i]; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return;
		}
	cfg_err(x, cfg_line_of(s), key, "\"%s\" is not valid (%s)", v, valid);
}

bool cfg_parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

/* IPv4 address member; empty string allowed when allow_empty (-> 0). */
const config_setting_t *cfg_get_ipv4(struct ctx *x,
					const config_setting_t *g,
					const char *path, const char *name,
					bool allow_empty, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256];
	const char *v;

	if (s == NULL)
		return NULL;
	cfg_path_of(key, sizeof(key), path, name);
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_STRING,
		       "a string with an IPv4 address"))
		return NULL;
	v = config_setting_get_string(s);
	if (allow_empty && v[0] == '\0') {
		*out = 0;
		return s;
	}
	if (!cfg_parse_ipv4(v, out)) {
		cfg_err(x, cfg_line_of(s), key,
			"\"%s\" is not an IPv4 address (dotted quad, e.g. "
			"\"198.18.0.1\"%s)",
			v, allow_empty ? ", or \"\" for none" : "");
		return NULL;
	}
	return s;
}

/* ------------------------------------------------------------ lists */

void cfg_nomem(struct ctx *x, const config_setting_t *s, const char *key)
{
	cfg_err(x, cfg_line_of(s), key,
		"out of memory (a smaller configuration, or more memory)");
}

/* Array member of strings; NULL when absent or of another type (an
 * error then). key receives the member's path. */
static const config_setting_t *
get_array(struct ctx *x, const config_setting_t *g, const char *path,
	  const char *name, const char *valid, char *key, size_t keylen)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	cfg_path_of(key, keylen, path, name);
	if (s == NULL || !cfg_want_type(x, s, key, CONFIG_TYPE_ARRAY, valid))
		return NULL;
	return s;
}

/* Element i of array s as a string; NULL (and an error naming key[i])
 * when it is not one. libconfig arrays are homogeneous, so this only
 * fails on an array of numbers or booleans. */
static const char *elem_str(struct ctx *x, const config_setting_t *s, int i,
			    const char *key, char *ekey, size_t ekeylen,
			    const char *valid)
{
	const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
	const char *v = config_setting_get_string(e);

	snprintf(ekey, ekeylen, "%s[%d]", key, i);
	if (v == NULL)
		cfg_err(x, cfg_line_of(e), ekey, "%s, expected %s",
			cfg_type_name(config_setting_type(e)), valid);
	return v;
}

/* CIDR list member ("allow", "deny", "networks", "relay_networks"): an
 * array of IPv4/IPv6 networks or bare addresses, each checked by
 * ctl_cidr_parse() (host bits set is an error that names the network). */
void cfg_get_cidr_list(struct ctx *x, const config_setting_t *g,
			  const char *path, const char *name,
			  struct ctl_cidr_list *out)
{
	static const char valid[] =
		"a string with an IPv4 or IPv6 network or address, e.g. "
		"\"192.0.2.0/24\" or \"2001:db8::/32\"";
	char key[256];
	const config_setting_t *s =
		get_array(x, g, path, name,
			  "an array of strings [ \"192.0.2.0/24\", "
			  "\"2001:db8::/32\", ... ]",
			  key, sizeof(key));
	int n;

	if (s == NULL || (n = config_setting_length(s)) == 0)
		return;
	out->v = calloc((size_t)n, sizeof(*out->v));
	if (out->v == NULL) {
		cfg_nomem(x, s, key);
		return;
	}
	for (int i = 0; i < n; i++) {
		char ekey[300], why[160];
		const char *v =
			elem_str(x, s, i, key, ekey, sizeof(ekey), valid);

		if (v == NULL)
			continue;
		/* ctl_cidr_parse's reasons end with what would be valid. */
		if (ctl_cidr_parse(v, &out->v[out->n], why, sizeof(why)) < 0) {
			cfg_err(x,
				cfg_line_of(config_setting_get_elem(s,
								(unsigned)i)),
				ekey, "\"%s\": %s", v, why);
			continue;
		}
		out->n++;
	}
}

/* Normalises a domain as the policy section writes it into out (at
 * least 254 octets): lower case, one trailing dot removed; when wild is
 * not NULL a leading "." or "*." is allowed, removed and reported in
 * *wild. Labels are LDH (RFC 1035 2.3.1, RFC 5890 2.3.1): letters,
 * digits, hyphens, 1..63 octets, no hyphen at either end; 1..253 octets
 * in all (RFC 1035 2.3.4, without the trailing dot). Returns NULL, or
 * what is wrong. */
const char *cfg_norm_domain(const char *in, char *out, bool *wild)
{
	size_t n, label = 0;
	const char *d = in;

	if (wild) {
		*wild = false;
		if (d[0] == '.' || (d[0] == '*' && d[1] == '.')) {
			d += d[0] == '.' ? 1 : 2;
			*wild = true;
		}
	}
	n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0)
		return "empty domain";
	if (n > 253)
		return "longer than 253 octets";
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];

		if (ch == '.') {
			if (label == 0)
				return "empty label";
			if (d[i - 1] == '-')
				return "a label ends with '-'";
			label = 0;
			out[i] = '.';
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return "only letters, digits, '-' and '.' are "
			       "allowed";
		if (label == 0 && ch == '-')
			return "a label starts with '-'";
		if (++label > 63)
			return "a label is longer than 63 octets";
		out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	if (label == 0)
		return "empty label";
	if (d[n - 1] == '-')
		return "a label ends with '-'";
	out[n] = '\0';
	return NULL;
}

/* Normalises a sender/recipient restriction entry into out (ENTRY_MAX
 * octets): "user@domain" (the local part kept as written, RFC 5321
 * 4.5.3.1.1: at most 64 octets), "domain", ".domain" (or "*.domain",
 * stored as ".domain"). Returns NULL, or what is wrong. */
#define ENTRY_MAX (64 + 1 + 253 + 1)
static const char *norm_entry(const char *in, char *out)
{
	const char *at = strchr(in, '@');
	const char *why;
	char dom[256];
	bool wild = false;

	if (at) {
		size_t ll = (size_t)(at - in);

		if (ll == 0)
			return "empty local part before '@'";
		if (ll > 64)
			return "local part longer than 64 octets";
		for (const char *p = in; p < at; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				return "space or control character in the "
				       "local part";
		if (at[1] == '\0')
			return "empty domain after '@'";
		why = cfg_norm_domain(at + 1, dom, NULL);
		if (why)
			return why;
		snprintf(out, ENTRY_MAX, "%.*s@%s", (int)ll, in, dom);
		return NULL;
	}
	why = cfg_norm_domain(in, dom, &wild);
	if (why)
		return why;
	snprintf(out, ENTRY_MAX, "%s%s", wild ? "." : "", dom);
	return NULL;
}

/* One array of restriction entries (accept or reject). */
static void get_entries(struct ctx *x, const config_setting_t *g,
			const char *path, const char *name, char ***out,
			uint32_t *n_out)
{
	static const char valid[] =
		"a string \"user@example.com\", \"example.com\" or "
		"\".example.com\"";
	char key[256];
	const config_setting_t *s =
		get_array(x, g, path, name,
			  "an array of strings [ \"user@example.com\", "
			  "\"example.com\", \".example.com\", ... ]",
			  key, sizeof(key));
	int n;

	if (s == NULL || (n = config_setting_length(s)) == 0)
		return;
	*out = calloc((size_t)n, sizeof(char *));
	if (*out == NULL) {
		cfg_nomem(x, s, key);
		return;
	}
	for (int i = 0; i < n; i++) {
		char ekey[300], norm[ENTRY_MAX];
		const char *v =
			elem_str(x, s, i, key, ekey, sizeof(ekey), valid);
		const char *why;

		if (v == NULL)
			continue;
		why = norm_entry(v, norm);
		if (why) {
			cfg_err(x,
				cfg_line_of(config_setting_get_elem(s,
								(unsigned)i)),
				ekey,
				"\"%s\": %s (an address \"user@example.com\", "
				"a domain \"example.com\", or "
				"\".example.com\" for the domain and its "
				"subdomains)",
				v, why);
			continue;
		}
		(*out)[*n_out] = strdup(norm);
		if ((*out)[*n_out] == NULL) {
			cfg_nomem(x, s, ekey);
			continue;
		}
		(*n_out)++;
	}
}

/* Sender or recipient restrictions: { accept = [ ... ]; reject = [ ... ]; } */
void cfg_get_addr_list(struct ctx *x, const config_setting_t *g,
			  const char *path, const char *name,
			  struct ctl_addr_list *out)
{
	static const char *const keys[] = {"accept", "reject", NULL};
	const config_setting_t *s = config_setting_get_member(g, name);
	char key[256];

	if (s == NULL)
		return;
	cfg_path_of(key, sizeof(key), path, name);
	if (!cfg_want_type(x, s, key, CONFIG_TYPE_GROUP,
		       "a group { accept = [ ... ]; reject = [ ... ]; }"))
		return;
	cfg_check_keys(x, s, key, keys);
	get_entries(x, s, key, "accept", &out->accept, &out->n_accept);
	get_entries(x, s, key, "reject", &out->reject, &out->n_reject);
}

void cfg_free_addr_list(struct ctl_addr_list *a)
{
	for (uint32_t i = 0; a->accept && i < a->n_accept; i++)
		free(a->accept[i]);
	free(a->accept);
	for (uint32_t i = 0; a->reject && i < a->n_reject; i++)
		free(a->reject[i]);
	free(a->reject);
	memset(a, 0, sizeof(*a));
}

