/*
 * rules.c - content rule files: parser (file:line errors, includes,
 * comments) and compiler into Hyperscan databases (rules.h).
 *
 * Main lcore only (config load and reload): allocates freely, reads
 * files, never runs on a data-path core.
 */
#include <ctype.h>
#include <errno.h>
#include <hs/hs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "content/cache.h"
#include "content/rules.h"

struct parser {
	const char *cache_dir;   /* compiled databases kept here, or NULL */
	struct content_ruleset *rs;
	unsigned cap;
	char *err;
	size_t errlen;
	int depth;
};

static void perr(struct parser *p, const char *file, unsigned line,
		 const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err[0] != '\0')
		return; /* keep the first error */
	n = snprintf(p->err, p->errlen, "%s:%u: ", file, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *intern_file(struct parser *p, const char *file)
{
	struct content_ruleset *rs = p->rs;
	char **nf;

	for (unsigned i = 0; i < rs->n_files; i++)
		if (strcmp(rs->files[i], file) == 0)
			return rs->files[i];
	nf = realloc(rs->files, (rs->n_files + 1) * sizeof(*nf));
	if (nf == NULL)
		return NULL;
	rs->files = nf;
	nf[rs->n_files] = strdup(file);
	if (nf[rs->n_files] == NULL)
		return NULL;
	return nf[rs->n_files++];
}

static const struct {
	const char *name;
	enum content_where where;
} wheres[] = {
	{"helo", CONTENT_WHERE_HELO},
	{"mail", CONTENT_WHERE_MAIL},
	{"rcpt", CONTENT_WHERE_RCPT},
	{"header", CONTENT_WHERE_HEADER},
	{"body", CONTENT_WHERE_BODY},
	{"mime", CONTENT_WHERE_MIME},
	{"attachment-name", CONTENT_WHERE_ATTACHMENT},
};

static const struct {
	const char *name;
	enum content_action action;
} actions[] = {
	{"reject", CONTENT_ACT_REJECT},
	{"tempfail", CONTENT_ACT_TEMPFAIL},
	{"discard", CONTENT_ACT_DISCARD},
	{"quarantine", CONTENT_ACT_QUARANTINE},
	{"header", CONTENT_ACT_HEADER},
	{"log", CONTENT_ACT_LOG},
};

const char *content_action_name(enum content_action a)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (actions[i].action == a)
			return actions[i].name;
	return "none";
}

const char *content_where_name(enum content_where w)
{
	if (w == CONTENT_WHERE_HEADER_NAMED)
		return "header:";
	for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++)
		if (wheres[i].where == w)
			return wheres[i].name;
	return "?";
}

static char *skip_ws(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* next whitespace-delimited word; NUL-terminates it, advances *s */
static char *word(char **s)
{
	char *b = skip_ws(*s), *e = b;

	if (*b == '\0')
		return NULL;
	while (*e != '\0' && *e != ' ' && *e != '\t')
		e++;
	if (*e != '\0')
		*e++ = '\0';
	*s = e;
	return b;
}

/* RFC 5322 3.6.8 field name: printable ASCII except colon */
static bool header_name_ok(const char *n)
{
	if (*n == '\0')
		return false;
	for (; *n; n++)
		if (*n < 33 || *n > 126 || *n == ':')
			return false;
	return true;
}

/* "X.Y.Z" with class digit c (RFC 3463) */
static bool status_ok(const char *s, char c)
{
	const char *p = s;
	int parts = 0;

	if (s[0] != c || s[1] != '.')
		return false;
	while (*p) {
		int digits = 0;
		while (isdigit((unsigned char)*p)) {
			p++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return false;
		parts++;
		if (*p == '.')
			p++;
		else if (*p != '\0')
			return false;
	}
	return parts == 3 && strlen(s) < 8;
}

/* The largest rule file read (each include counts on its own). */
#define CONTENT_RULES_MAX_FILE (64 << 20)

static int parse_file(struct parser *p, const char *path);

static int do_include(struct parser *p, const char *file, unsigned line,
		      char *rest)
{
	char *arg = skip_ws(rest), *end, full[4096];
	const char *slash;

	if (*arg == '"') {
		end = strchr(arg + 1, '"');
		if (end == NULL || *skip_ws(end + 1) != '\0') {
			perr(p, file, line, "include: unterminated quoted path");
			return -EINVAL;
		}
		*end = '\0';
		arg++;
	} else {
		char *w = word(&arg);
		if (w == NULL || *skip_ws(arg) != '\0') {
			perr(p, file, line, "include: expected one path");
			return -EINVAL;
		}
		arg = w;
	}
	if (*arg == '\0') {
		perr(p, file, line, "include: empty path");
		return -EINVAL;
	}
	if (p->depth >= CONTENT_INCLUDE_DEPTH) {
		perr(p, file, line, "include: nested deeper than %d (a loop?)",
		     CONTENT_INCLUDE_DEPTH);
		return -ELOOP;
	}
	slash = strrchr(file, '/');
	if (arg[0] == '/' || slash == NULL)
		snprintf(full, sizeof(full), "%s", arg);
	else
		snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - file),
			 file, arg);
	{
		FILE *f = fopen(full, "r");
		if (f == NULL) {
			perr(p, file, line, "include \"%s\": %s", full,
			     strerror(errno));
			return -ENOENT;
		}
		fclose(f);
	}
	p->depth++;
	int rc = parse_file(p, full);
	p->depth--;
	return rc;
}

/* one non-comment line: WHERE /PATTERN/FLAGS [priority=N] ACTION [TEXT] */
static int parse_rule(struct parser *p, const char *file, unsigned line,
		      char *s)
{
	struct content_rule r = {.priority = CONTENT_DEFAULT_PRIORITY,
				 .line = line};
	char *w, *pat, *pend, *flags, *a;
	bool found = false;

	w = word(&s);
	if (strncmp(w, "header:", 7) == 0) {
		if (!header_name_ok(w + 7)) {
			perr(p, file, line, "bad header name in \"%s\"", w);
			return -EINVAL;
		}
		r.where = CONTENT_WHERE_HEADER_NAMED;
		r.header_name = strdup(w + 7);
		found = true;
	} else {
		for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++)
			if (strcmp(w, wheres[i].name) == 0) {
				r.where = wheres[i].where;
				found = true;
			}
	}
	if (!found) {
		perr(p, file, line,
		     "unknown rule target \"%s\" (valid: helo, mail, rcpt, "
		     "header, header:NAME, body, mime, attachment-name, "
		     "include)", w);
		return -EINVAL;
	}
	s = skip_ws(s);
	if (*s != '/') {
		perr(p, file, line, "expected /pattern/ after \"%s\"", w);
		goto bad;
	}
	pat = ++s;
	for (pend = pat; *pend && *pend != '/'; pend++)
		if (*pend == '\\' && pend[1] != '\0')
			pend++;
	if (*pend != '/') {
		perr(p, file, line, "pattern has no closing '/'");
		goto bad;
	}
	if (pend == pat) {
		perr(p, file, line, "empty pattern");
		goto bad;
	}
	*pend = '\0';
	r.pattern = strdup(pat);
	s = pend + 1;
	flags = s;
	while (*s && *s != ' ' && *s != '\t')
		s++;
	if (*s)
		*s++ = '\0';
	for (char *f = flags; *f; f++)
		if (strchr("isml", *f) == NULL) {
			perr(p, file, line,
			     "unknown pattern flag '%c' (valid: i s m l)", *f);
			goto bad;
		}
	/* keep the flags after the pattern's NUL for the compiler */
	{
		size_t pl = strlen(r.pattern);
		char *np = realloc(r.pattern, pl + 1 + strlen(flags) + 1);
		if (np == NULL)
			goto nomem;
		strcpy(np + pl + 1, flags);
		r.pattern = np;
	}
	a = word(&s);
	if (a != NULL && strncmp(a, "priority=", 9) == 0) {
		char *e;
		long v = strtol(a + 9, &e, 10);
		if (a[9] == '\0' || *e != '\0' || v < 0 || v > 1000000) {
			perr(p, file, line,
			     "bad priority \"%s\" (0..1000000, lower wins)", a);
			goto bad;
		}
		r.priority = (int)v;
		a = word(&s);
	}
	if (a == NULL) {
		perr(p, file, line,
		     "missing action (reject, tempfail, discard, quarantine, "
		     "header, log)");
		goto bad;
	}
	found = false;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(a, actions[i].name) == 0) {
			r.action = actions[i].action;
			found = true;
		}
	if (!found) {
		perr(p, file, line,
		     "unknown action \"%s\" (valid: reject, tempfail, discard, "
		     "quarantine, header, log)", a);
		goto bad;
	}
	s = skip_ws(s);
	/* trailing whitespace is not part of the text */
	for (size_t n = strlen(s); n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t');)
		s[--n] = '\0';
	if (r.action == CONTENT_ACT_REJECT || r.action == CONTENT_ACT_TEMPFAIL) {
		char cls = r.action == CONTENT_ACT_REJECT ? '5' : '4';
		size_t cl = strcspn(s, " \t");
		if (cl > 0 && isdigit((unsigned char)s[0]) &&
		    memchr(s, '.', cl) != NULL) {
			char code[16];
			snprintf(code, sizeof(code), "%.*s", (int)(cl < 15 ? cl : 15), s);
			if (cl >= sizeof(r.status) || !status_ok(code, cls)) {
				perr(p, file, line,
				     "bad enhanced status \"%s\" for %s (want "
				     "%c.X.Y, RFC 3463)", code, a, cls);
				goto bad;
			}
			strcpy(r.status, code);
			s = skip_ws(s + cl);
		} else {
			strcpy(r.status, cls == '5' ? "5.7.1" : "4.7.1");
		}
		if (*s == '\0') {
			perr(p, file, line, "%s needs a reply text", a);
			goto bad;
		}
	} else if (r.action == CONTENT_ACT_HEADER) {
		char *colon = strchr(s, ':');
		if (colon == NULL) {
			perr(p, file, line,
			     "header action needs \"Name: value\"");
			goto bad;
		}
		*colon = '\0';
		bool ok = header_name_ok(s);
		*colon = ':';
		if (!ok) {
			perr(p, file, line, "header action: bad header name");
			goto bad;
		}
		if (r.where == CONTENT_WHERE_BODY || r.where == CONTENT_WHERE_MIME ||
		    r.where == CONTENT_WHERE_ATTACHMENT) {
			perr(p, file, line,
			     "header action only for helo, mail, rcpt and "
			     "header rules (decided before the header block "
			     "ends); use log for %s", content_where_name(r.where));
			goto bad;
		}
	}
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 32 && *c != '\t') {
			perr(p, file, line, "control character in text");
			goto bad;
		}
	r.text = strdup(s);
	r.file = intern_file(p, file);
	if (r.text == NULL || r.file == NULL)
		goto nomem;
	if (p->rs->n_rules >= CONTENT_RULES_MAX) {
		perr(p, file, line, "more than %d rules", CONTENT_RULES_MAX);
		goto bad;
	}
	if (p->rs->n_rules == p->cap) {
		unsigned nc = p->cap ? p->cap * 2 : 64;
		struct content_rule *nr =
			realloc(p->rs->rules, nc * sizeof(*nr));
		if (nr == NULL)
			goto nomem;
		p->rs->rules = nr;
		p->cap = nc;
	}
	if (r.action == CONTENT_ACT_HEADER &&
	    (r.where == CONTENT_WHERE_HEADER ||
	     r.where == CONTENT_WHERE_HEADER_NAMED))
		p->rs->header_adds = true;
	if (r.action == CONTENT_ACT_QUARANTINE)
		p->rs->quarantine = true;
	p->rs->rules[p->rs->n_rules++] = r;
	return 0;
nomem:
	perr(p, file, line, "out of memory");
bad:
	free(r.header_name);
	free(r.pattern);
	free(r.text);
	return -EINVAL;
}

static int parse_text(struct parser *p, const char *file, char *text)
{
	unsigned line = 0;
	char *s = text;

	while (*s) {
		char *nl = strchr(s, '\n'), *l;
		line++;
		if (nl != NULL)
			*nl = '\0';
		size_t n = strlen(s);
		if (n > 0 && s[n - 1] == '\r')
			s[--n] = '\0';
		l = skip_ws(s);
		if (*l != '\0' && *l != '#') {
			int rc;
			if (strncmp(l, "include", 7) == 0 &&
			    (l[7] == ' ' || l[7] == '\t' || l[7] == '\0'))
				rc = do_include(p, file, line, l + 7);
			else
				rc = parse_rule(p, file, line, l);
			if (rc < 0)
				return rc;
		}
		if (nl == NULL)
			break;
		s = nl + 1;
	}
	return 0;
}

static int parse_file(struct parser *p, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	int rc;

	if (f == NULL) {
		perr(p, path, 0, "%s", strerror(errno));
		return -errno;
	}
	/* a directory opens too (and "sizes" as LONG_MAX): regular files
	 * only, and of a size a rule file can have */
	{
		struct stat sb;

		if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
			fclose(f);
			perr(p, path, 0, "not a regular file");
			return -EINVAL;
		}
		if (sb.st_size > CONTENT_RULES_MAX_FILE) {
			fclose(f);
			perr(p, path, 0, "larger than %d MiB",
			     CONTENT_RULES_MAX_FILE >> 20);
			return -EFBIG;
		}
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    n > CONTENT_RULES_MAX_FILE || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		perr(p, path, 0, "cannot size the file");
		return -EIO;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		perr(p, path, 0, "read failed");
		return -EIO;
	}
	fclose(f);
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n) {
		free(buf);
		perr(p, path, 0, "NUL byte in rule file");
		return -EINVAL;
	}
	rc = parse_text(p, path, buf);
	free(buf);
	return rc;
}

/* literal flag: every byte that is not alphanumeric becomes \xHH */
static char *escape_literal(const char *s)
{
	char *o = malloc(strlen(s) * 4 + 1), *q = o;

	if (o == NULL)
		return NULL;
	for (; *s; s++) {
		if (isalnum((unsigned char)*s))
			*q++ = *s;
		else
			q += sprintf(q, "\\x%02x", (unsigned char)*s);
	}
	*q = '\0';
	return o;
}

static int compile_class(struct parser *p, enum content_where w)
{
	struct content_ruleset *rs = p->rs;
	unsigned n = 0, k = 0;
	const char **exprs;
	unsigned *flags, *ids;
	char **owned;
	hs_compile_error_t *cerr = NULL;
	hs_database_t *db = NULL;
	struct content_cache_key key;
	int rc = 0;
	bool block = !(w == CONTENT_WHERE_BODY || w == CONTENT_WHERE_MIME);

	for (unsigned i = 0; i < rs->n_rules; i++)
		if (rs->rules[i].where == w)
			n++;
	if (n == 0)
		return 0;
	exprs = calloc(n, sizeof(*exprs));
	flags = calloc(n, sizeof(*flags));
	ids = calloc(n, sizeof(*ids));
	owned = calloc(n, sizeof(*owned));
	if (!exprs || !flags || !ids || !owned) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < rs->n_rules; i++) {
		const struct content_rule *r = &rs->rules[i];
		const char *fl;
		if (r->where != w)
			continue;
		fl = r->pattern + strlen(r->pattern) + 1;
		flags[k] = HS_FLAG_SINGLEMATCH;
		if (strchr(fl, 'i'))
			flags[k] |= HS_FLAG_CASELESS;
		if (strchr(fl, 's'))
			flags[k] |= HS_FLAG_DOTALL;
		if (strchr(fl, 'm'))
			flags[k] |= HS_FLAG_MULTILINE;
		if (strchr(fl, 'l')) {
			owned[k] = escape_literal(r->pattern);
			if (owned[k] == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			exprs[k] = owned[k];
		} else {
			exprs[k] = r->pattern;
		}
		ids[k] = i;
		k++;
	}
	if (p->cache_dir != NULL) {
		content_cache_key(exprs, flags, ids, n,
				  block ? HS_MODE_BLOCK : HS_MODE_STREAM, &key);
		db = content_cache_load(p->cache_dir, &key);
		if (db != NULL) {
			rs->db[w] = db;
			rs->cache_loaded++;
			goto out;
		}
	}
	if (hs_compile_multi(exprs, flags, ids, n,
			     block ? HS_MODE_BLOCK : HS_MODE_STREAM, NULL, &db,
			     &cerr) != HS_SUCCESS) {
		if (cerr->expression >= 0 && (unsigned)cerr->expression < n) {
			const struct content_rule *r =
				&rs->rules[ids[cerr->expression]];
			perr(p, r->file, r->line,
			     "pattern /%s/ refused by Hyperscan: \"%s\"",
			     r->pattern, cerr->message);
		} else {
			perr(p, rs->files ? rs->files[0] : "?", 0,
			     "Hyperscan could not compile the %s rules: \"%s\"",
			     content_where_name(w), cerr->message);
		}
		hs_free_compile_error(cerr);
		rc = -EINVAL;
		goto out;
	}
	rs->db[w] = db;
	rs->compiled++;
	if (p->cache_dir != NULL)
		content_cache_store(p->cache_dir, &key, db);
out:
	if (owned)
		for (unsigned i = 0; i < n; i++)
			free(owned[i]);
	free(owned);
	free(exprs);
	free(flags);
	free(ids);
	return rc;
}

static struct content_ruleset *finish(struct parser *p, int rc)
{
	if (rc == 0)
		for (int w = 0; w < CONTENT_WHERE_COUNT && rc == 0; w++)
			rc = compile_class(p, (enum content_where)w);
	if (rc < 0) {
		if (p->err[0] == '\0')
			snprintf(p->err, p->errlen, "error %d", rc);
		content_ruleset_free(p->rs);
		return NULL;
	}
	return p->rs;
}

static struct content_ruleset *new_set(struct parser *p, const char *name,
				       char *err, size_t errlen)
{
	p->cache_dir = NULL;
	p->err = err;
	p->errlen = errlen;
	p->cap = 0;
	p->depth = 0;
	err[0] = '\0';
	p->rs = calloc(1, sizeof(*p->rs));
	if (p->rs == NULL || (p->rs->name = strdup(name)) == NULL) {
		free(p->rs);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return p->rs;
}

struct content_ruleset *content_ruleset_load(const char *name,
					     const char *path, char *err,
					     size_t errlen)
{
	return content_ruleset_load_cached(name, path, NULL, err, errlen);
}

struct content_ruleset *content_ruleset_load_cached(const char *name,
						    const char *path,
						    const char *cache_dir,
						    char *err, size_t errlen)
{
	struct parser p;

	if (new_set(&p, name, err, errlen) == NULL)
		return NULL;
	p.cache_dir = cache_dir;
	return finish(&p, parse_file(&p, path));
}

struct content_ruleset *content_ruleset_parse(const char *name,
					      const char *fname,
					      const char *text, char *err,
					      size_t errlen)
{
	struct parser p;
	char *copy;
	int rc;

	if (new_set(&p, name, err, errlen) == NULL)
		return NULL;
	copy = strdup(text);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		content_ruleset_free(p.rs);
		return NULL;
	}
	rc = parse_text(&p, fname, copy);
	free(copy);
	return finish(&p, rc);
}

void content_ruleset_free(struct content_ruleset *rs)
{
	if (rs == NULL)
		return;
	for (unsigned i = 0; i < rs->n_rules; i++) {
		free(rs->rules[i].header_name);
		free(rs->rules[i].text);
		free(rs->rules[i].pattern);
	}
	for (unsigned i = 0; i < rs->n_files; i++)
		free(rs->files[i]);
	for (int w = 0; w < CONTENT_WHERE_COUNT; w++)
		hs_free_database(rs->db[w]);
	free(rs->files);
	free(rs->rules);
	free(rs->name);
	free(rs);
}

int content_scratch_grow(const struct content_ruleset *rs, void **scratch)
{
	for (int w = 0; w < CONTENT_WHERE_COUNT; w++) {
		if (rs->db[w] == NULL)
			continue;
		if (hs_alloc_scratch(rs->db[w], (hs_scratch_t **)scratch) !=
		    HS_SUCCESS)
			return -ENOMEM;
	}
	return 0;
}

int content_scratch_clone(const void *scratch, void **out)
{
	return hs_clone_scratch(scratch, (hs_scratch_t **)out) == HS_SUCCESS
		       ? 0
		       : -ENOMEM;
}

void content_scratch_free(void *scratch)
{
	hs_free_scratch(scratch);
}
