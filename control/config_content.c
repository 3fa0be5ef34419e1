/*
 * config_content.c - the content-rule keys of the configuration (issue
 * 15): the top-level list content_rule_sets ( { name; file; } ), each
 * rule file parsed and compiled into Hyperscan databases here, while the
 * configuration's file and line are known (content/rules.h), and the
 * listener keys that name a set and its exemptions, and
 * content_quarantine_maildir (where the quarantine action delivers).
 *
 * Threads: main lcore only, like the rest of the loader. The compiled
 * sets are owned by the configuration and freed with it (so with the
 * snapshot, after its RCU grace period). A rule file that does not
 * compile fails the whole load: on reload the old rules keep serving.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/rules.h"
#include "control/config.h"
#include "control/config_read.h"

void cfg_parse_listener_content(struct ctx *x, const config_setting_t *g,
				const char *path, struct ctl_listener *l)
{
	const config_setting_t *s;

	l->content.set = -1;
	s = cfg_get_str(x, g, path, "content_rules", 64, &l->content.name);
	if (s != NULL)
		l->content.line = cfg_line_of(s);
	cfg_get_bool(x, g, path, "content_exempt_authenticated",
		     &l->content.exempt_authenticated);
	cfg_get_bool(x, g, path, "content_exempt_relay_networks",
		     &l->content.exempt_relay_networks);
	cfg_get_uint(x, g, path, "content_scan_limit", 0, 1ull << 36,
		     &l->content.scan_limit);
}

/* file relative to the configuration file's directory */
static void full_path(char *out, size_t len, const char *conf,
		      const char *file)
{
	const char *slash = strrchr(conf, '/');

	if (file[0] == '/' || slash == NULL)
		snprintf(out, len, "%s", file);
	else
		snprintf(out, len, "%.*s/%s", (int)(slash - conf), conf, file);
}

void cfg_parse_content(struct ctx *x, const config_setting_t *root,
		       struct ctl_config *c)
{
	static const char *const keys[] = {"name", "file", NULL};
	const config_setting_t *s =
		config_setting_get_member(root, "content_rule_sets");
	const config_setting_t *q;
	char key[160];

	q = cfg_get_str(x, root, "", "content_quarantine_maildir", 1024,
			&c->content_quarantine_maildir);
	if (q != NULL && c->content_quarantine_maildir[0] != '/')
		cfg_err(x, cfg_line_of(q), "content_quarantine_maildir",
			"\"%s\": an absolute path", c->content_quarantine_maildir);
	q = cfg_get_str(x, root, "", "content_cache_dir", 1024,
			&c->content_cache_dir);
	if (q != NULL && c->content_cache_dir[0] != '/') {
		cfg_err(x, cfg_line_of(q), "content_cache_dir",
			"\"%s\": an absolute path", c->content_cache_dir);
		free(c->content_cache_dir);
		c->content_cache_dir = NULL;
	}

	if (s != NULL && cfg_want_type(x, s, "content_rule_sets",
				       CONFIG_TYPE_LIST,
				       "a list ( { name = ...; file = ...; } )")) {
		int n = config_setting_length(s);

		c->content_sets = calloc((size_t)n + 1, sizeof(*c->content_sets));
		for (int i = 0; c->content_sets && i < n; i++) {
			const config_setting_t *g =
				config_setting_get_elem(s, (unsigned)i);
			struct ctl_content_set *cs = &c->content_sets[i];
			char path[48], full[1024], err[1024];

			snprintf(path, sizeof(path), "content_rule_sets[%d]", i);
			c->n_content_sets++;
			if (!cfg_want_type(x, g, path, CONFIG_TYPE_GROUP,
					   "a group { }"))
				continue;
			cs->line = cfg_line_of(g);
			cfg_check_keys(x, g, path, keys);
			cfg_get_str(x, g, path, "name", 64, &cs->name);
			const config_setting_t *f =
				cfg_get_str(x, g, path, "file", 900, &cs->file);
			cfg_path_of(key, sizeof(key), path, cs->name ? "file" : "name");
			if (cs->name == NULL || cs->file == NULL) {
				cfg_err(x, cs->line, key,
					"missing (each rule set needs a name "
					"and a file)");
				continue;
			}
			for (int j = 0; j < i; j++)
				if (c->content_sets[j].name &&
				    strcmp(c->content_sets[j].name, cs->name) == 0)
					cfg_err(x, cs->line, path,
						"duplicate name \"%s\" (first "
						"at line %u)", cs->name,
						c->content_sets[j].line);
			full_path(full, sizeof(full), x->file, cs->file);
			cs->rules = content_ruleset_load_cached(
				cs->name, full, c->content_cache_dir, err,
				sizeof(err));
			if (cs->rules == NULL)
				cfg_err(x, cfg_line_of(f), key, "%s", err);
		}
	}
	for (uint32_t i = 0; i < c->n_listeners; i++) {
		struct ctl_listener *l = &c->listeners[i];
		char path[32];

		l->content.set = -1;
		if (l->content.name == NULL)
			continue;
		for (uint32_t j = 0; j < c->n_content_sets; j++)
			if (c->content_sets[j].name &&
			    strcmp(c->content_sets[j].name, l->content.name) == 0)
				l->content.set = (int32_t)j;
		if (l->content.set >= 0 &&
		    c->content_sets[l->content.set].rules != NULL &&
		    c->content_sets[l->content.set].rules->quarantine &&
		    c->content_quarantine_maildir == NULL) {
			const struct content_ruleset *rs =
				c->content_sets[l->content.set].rules;
			for (unsigned k = 0; k < rs->n_rules; k++) {
				const struct content_rule *r = &rs->rules[k];
				if (r->action != CONTENT_ACT_QUARANTINE)
					continue;
				snprintf(path, sizeof(path), "listeners[%u]", i);
				cfg_path_of(key, sizeof(key), path,
					    "content_rules");
				cfg_err(x, l->content.line, key,
					"%s:%u: action \"quarantine\" needs "
					"content_quarantine_maildir = \"/path\" "
					"(the Maildir quarantined messages go "
					"to)", r->file, r->line);
				break;
			}
		}
		if (l->content.set < 0) {
			snprintf(path, sizeof(path), "listeners[%u]", i);
			cfg_path_of(key, sizeof(key), path, "content_rules");
			cfg_err(x, l->content.line, key,
				"no rule set named \"%s\" (define it in "
				"content_rule_sets)", l->content.name);
		}
	}
}

/*
 * Per-rule hit counters, kept across reloads. The registry holds every
 * counter some loaded configuration uses, keyed by what identifies a
 * rule: set name, rule file, line, where, header name, action and
 * pattern (the reply text is not part of it: a rule whose text changes
 * keeps counting). Main lcore only (config load, snapshot build and
 * free); the dataplane only adds to core[] of counters it was given.
 */
#define HITS_BUCKETS 1024
static struct ctl_rule_hits *hits_registry[HITS_BUCKETS];

static uint64_t hits_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--)
		h = (h ^ (uint8_t)*p++) * 1099511628211ull;
	return h;
}

static char *hits_key(const char *set, const struct content_rule *r,
		      size_t *len)
{
	char *k = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&k, &n);

	if (f == NULL)
		return NULL;
	/* NUL-separated: no field holds a NUL */
	fprintf(f, "%s%c%s%c%u%c%d%c%d%c%s%c%s", set, 0, r->file, 0, r->line,
		0, (int)r->where, 0, (int)r->action, 0,
		r->header_name ? r->header_name : "", 0, r->pattern);
	if (fclose(f) != 0) {
		free(k);
		return NULL;
	}
	*len = n;
	return k;
}

static void hits_put(struct ctl_rule_hits *h)
{
	struct ctl_rule_hits **pp;

	if (h == NULL || --h->refs > 0)
		return;
	for (pp = &hits_registry[h->hash % HITS_BUCKETS]; *pp != h;
	     pp = &(*pp)->next)
		;
	*pp = h->next;
	free(h->key);
	free(h);
}

static struct ctl_rule_hits *hits_get(const char *set,
				      const struct content_rule *r)
{
	size_t len;
	char *key = hits_key(set, r, &len);
	struct ctl_rule_hits *h;
	uint64_t hash;

	if (key == NULL)
		return NULL;
	hash = hits_hash(key, len);
	for (h = hits_registry[hash % HITS_BUCKETS]; h != NULL; h = h->next)
		if (h->hash == hash && h->key_len == len &&
		    memcmp(h->key, key, len) == 0) {
			free(key);
			h->refs++;
			return h;
		}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		free(key);
		return NULL;
	}
	h->hash = hash;
	h->key = key;
	h->key_len = len;
	h->refs = 1;
	h->next = hits_registry[hash % HITS_BUCKETS];
	hits_registry[hash % HITS_BUCKETS] = h;
	return h;
}

static void hits_release(struct ctl_content_set *cs)
{
	for (unsigned k = 0; cs->hits != NULL && k < cs->rules->n_rules; k++)
		hits_put(cs->hits[k]);
	free(cs->hits);
	cs->hits = NULL;
}

int ctl_content_hits_acquire(struct ctl_content_set *cs)
{
	if (cs->hits != NULL || cs->rules == NULL)
		return 0;
	cs->hits = calloc(cs->rules->n_rules + 1, sizeof(*cs->hits));
	if (cs->hits == NULL)
		return -ENOMEM;
	for (unsigned k = 0; k < cs->rules->n_rules; k++) {
		cs->hits[k] = hits_get(cs->name, &cs->rules->rules[k]);
		if (cs->hits[k] == NULL) {
			hits_release(cs);
			return -ENOMEM;
		}
	}
	return 0;
}

uint64_t ctl_rule_hits_sum(const struct ctl_rule_hits *h)
{
	uint64_t n = 0;

	for (unsigned c = 0; c < MXG_MAX_CORES; c++)
		n += __atomic_load_n(&h->core[c], __ATOMIC_RELAXED);
	return n;
}

void cfg_free_content(struct ctl_config *c)
{
	for (uint32_t i = 0; i < c->n_content_sets; i++) {
		if (c->content_sets[i].rules != NULL)
			hits_release(&c->content_sets[i]);
		free(c->content_sets[i].name);
		free(c->content_sets[i].file);
		content_ruleset_free(c->content_sets[i].rules);
	}
	free(c->content_sets);
	c->content_sets = NULL;
	free(c->content_quarantine_maildir);
	c->content_quarantine_maildir = NULL;
	free(c->content_cache_dir);
	c->content_cache_dir = NULL;
	c->n_content_sets = 0;
	for (uint32_t i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].content.name);
		c->listeners[i].content.name = NULL;
	}
}
