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
			cs->rules = content_ruleset_load(cs->name, full, err,
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

void cfg_free_content(struct ctl_config *c)
{
	for (uint32_t i = 0; i < c->n_content_sets; i++) {
		free(c->content_sets[i].name);
		free(c->content_sets[i].file);
		content_ruleset_free(c->content_sets[i].rules);
		free(c->content_sets[i].hits);
	}
	free(c->content_sets);
	c->content_sets = NULL;
	free(c->content_quarantine_maildir);
	c->content_quarantine_maildir = NULL;
	c->n_content_sets = 0;
	for (uint32_t i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].content.name);
		c->listeners[i].content.name = NULL;
	}
}
