/*
 * rules.h - content rule sets (DESIGN 6b): the rule file format, its
 * parser and the compiler that turns one rule set into Hyperscan
 * databases (block mode for envelope, headers and attachment names,
 * streaming mode for the raw body and decoded MIME text).
 *
 * Threads: content_ruleset_load() and content_ruleset_free() run on the
 * main lcore (config load and reload, snapshot reclaim); they allocate
 * and may take milliseconds to seconds. A loaded rule set is immutable
 * and read by every data-path core through the policy snapshot.
 *
 * File format, one rule per line (docs/configuration.md, "Content rules"):
 *
 *   # comment
 *   include "other.rules"            (relative to this file; depth <= 8)
 *   WHERE /PATTERN/FLAGS [priority=N] ACTION [TEXT]
 *
 *   WHERE  helo | mail | rcpt | header | header:NAME | body | mime |
 *          attachment-name
 *   FLAGS  i (caseless)  s (dot-all)  m (multi-line)  l (literal)
 *   ACTION reject [X.Y.Z] TEXT | tempfail [X.Y.Z] TEXT | discard [TEXT] |
 *          quarantine [TEXT] | header NAME: VALUE | log [TEXT]
 *
 * Priority: the lowest priority number wins among reject, tempfail,
 * discard and quarantine (default 100; equal numbers: the rule earlier
 * in the file, includes expanded in place, wins); header and log hits
 * accumulate.
 */
#ifndef MXG_CONTENT_RULES_H
#define MXG_CONTENT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTENT_RULES_MAX 100000   /* rules in one set */
#define CONTENT_INCLUDE_DEPTH 8
#define CONTENT_DEFAULT_PRIORITY 100

enum content_where {
	CONTENT_WHERE_HELO,
	CONTENT_WHERE_MAIL,
	CONTENT_WHERE_RCPT,
	CONTENT_WHERE_HEADER,     /* the whole unfolded "Name: value" line */
	CONTENT_WHERE_HEADER_NAMED, /* the value of one named header */
	CONTENT_WHERE_BODY,       /* raw body after the header block */
	CONTENT_WHERE_MIME,       /* decoded text of each text part */
	CONTENT_WHERE_ATTACHMENT, /* each attachment file name */
	CONTENT_WHERE_COUNT
};

enum content_action {
	CONTENT_ACT_NONE = 0,
	CONTENT_ACT_REJECT,
	CONTENT_ACT_TEMPFAIL,
	CONTENT_ACT_DISCARD,
	CONTENT_ACT_QUARANTINE,
	CONTENT_ACT_HEADER,
	CONTENT_ACT_LOG,
};

struct content_rule {
	enum content_where where;
	enum content_action action;
	int priority;
	unsigned line;
	const char *file;        /* owned by the rule set (interned) */
	char *header_name;       /* CONTENT_WHERE_HEADER_NAMED only */
	char *text;              /* reply text, header line or log text */
	char status[8];          /* enhanced code "5.7.1" for reject/tempfail */
	char *pattern;           /* as given between the slashes */
};

struct content_ruleset {
	char *name;
	struct content_rule *rules;
	unsigned n_rules;
	char **files;            /* interned file names */
	unsigned n_files;
	/* one database per WHERE class, NULL when the class has no rule;
	 * the Hyperscan id of a pattern is its index in rules[] */
	void *db[CONTENT_WHERE_COUNT];   /* hs_database_t * */
	/* some header or header:NAME rule has the header action (the
	 * gateway then finds the end of each message's header block) */
	bool header_adds;
	/* some rule has the quarantine action (the gateway then copies
	 * each scanned message to the quarantine Maildir as it streams) */
	bool quarantine;
	/* databases taken from the cache directory / compiled (the rest of
	 * the CONTENT_WHERE_COUNT classes have no rule) */
	unsigned cache_loaded, compiled;
};

/*
 * Parse the rule file at path (and its includes) and compile every
 * class into its Hyperscan database. name is copied. On error returns
 * NULL and writes "file:line: message" into err (Hyperscan's own
 * compile message quoted for a pattern it refuses).
 */
struct content_ruleset *content_ruleset_load(const char *name,
					     const char *path, char *err,
					     size_t errlen);

/* The same, with the compiled databases kept in cache_dir (content/
 * cache.h; NULL: none): a class whose expressions, flags, Hyperscan
 * version and platform match a file there is loaded instead of
 * compiled; a bad file is ignored (stderr) and replaced. */
struct content_ruleset *content_ruleset_load_cached(const char *name,
						    const char *path,
						    const char *cache_dir,
						    char *err, size_t errlen);

/* The same from a string; fname is used in messages and as the base
 * of relative includes ("." directory if it has no slash). */
struct content_ruleset *content_ruleset_parse(const char *name,
					      const char *fname,
					      const char *text, char *err,
					      size_t errlen);

void content_ruleset_free(struct content_ruleset *rs);

/* Extend *scratch (hs_scratch_t **; NULL to allocate) so that it can
 * scan every database of rs. Main lcore, off the data path. 0 or
 * -ENOMEM. */
int content_scratch_grow(const struct content_ruleset *rs, void **scratch);
void content_scratch_free(void *scratch);

/* A copy of scratch for another lcore (hs_clone_scratch). Main lcore.
 * 0 or -ENOMEM. */
int content_scratch_clone(const void *scratch, void **out);

const char *content_action_name(enum content_action a);
const char *content_where_name(enum content_where w);

#endif
