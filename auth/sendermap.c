/*
 * sendermap.c - login -> allowed senders (see sendermap.h). Logins are
 * sorted for a binary search; each keeps its list of patterns, stored
 * lower case.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/errbuf.h"
#include "auth/sendermap.h"

struct login_senders {
	char *login;
	char **pat;
	uint32_t n;
	unsigned line;
};

struct auth_sendermap {
	struct login_senders *v;
	uint32_t n;
};

static int cmp(const void *a, const void *b)
{
	return strcmp(((const struct login_senders *)a)->login,
		      ((const struct login_senders *)b)->login);
}

void auth_sendermap_free(struct auth_sendermap *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->n; i++) {
		for (uint32_t k = 0; k < m->v[i].n; k++)
			free(m->v[i].pat[k]);
		free(m->v[i].pat);
		free(m->v[i].login);
	}
	free(m->v);
	free(m);
}

uint32_t auth_sendermap_count(const struct auth_sendermap *m)
{
	return m ? m->n : 0;
}

/* "local@domain" or "@domain": one '@', a non-empty domain of
 * letters, digits, '-', '.', no spaces or controls. */
static bool pattern_ok(const char *p)
{
	const char *at = strchr(p, '@');

	if (at == NULL || strchr(at + 1, '@') || at[1] == 0 || strlen(p) > 254)
		return false;
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '<' ||
		    *q == '>')
			return false;
	for (const char *q = at + 1; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.')
			return false;
	return true;
}

struct auth_sendermap *auth_sendermap_load(const char *path, char *err,
					   size_t cap)
{
	struct auth_sendermap *m = calloc(1, sizeof(*m));
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t lcap = 0, vcap = 0;
	unsigned ln = 0;
	ssize_t len;

	struct auth_errbuf eb;

	auth_errbuf_init(&eb, err, cap);
	if (m == NULL || f == NULL) {
		auth_errbuf_add(&eb, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	while ((len = getline(&line, &lcap, f)) >= 0) {
		ln++;
		char *hash = strchr(line, '#');

		if (hash)
			*hash = 0;
		char *save = NULL;
		char *login = strtok_r(line, " \t\r\n", &save);

		if (login == NULL)
			continue;
		if (m->n == vcap) {
			size_t nc = vcap ? 2 * vcap : 16;
			void *nv = realloc(m->v, nc * sizeof(*m->v));

			if (nv == NULL) {
				auth_errbuf_add(&eb, "%s:%u: out of memory\n",
						path, ln);
				break;
			}
			m->v = nv;
			vcap = nc;
		}
		struct login_senders *e = &m->v[m->n];

		memset(e, 0, sizeof(*e));
		e->line = ln;
		e->login = strdup(login);
		m->n++;
		if (e->login == NULL) {
			auth_errbuf_add(&eb, "%s:%u: out of memory\n", path,
					ln);
			break;
		}
		char *tok;
		unsigned before = eb.n;

		while ((tok = strtok_r(NULL, " \t\r\n,", &save)) != NULL) {
			if (!pattern_ok(tok)) {
				auth_errbuf_add(
					&eb,
					"%s:%u: login \"%s\": bad "
					"sender \"%.60s\" (an address "
					"user@example.com or @example.com)\n",
					path, ln, e->login, tok);
				continue;
			}
			char **np = realloc(e->pat, (e->n + 1) * sizeof(*np));

			if (np == NULL) {
				auth_errbuf_add(&eb, "%s:%u: out of memory\n",
						path, ln);
				break;
			}
			e->pat = np;
			e->pat[e->n] = strdup(tok);
			if (e->pat[e->n] == NULL) {
				auth_errbuf_add(&eb, "%s:%u: out of memory\n",
						path, ln);
				break;
			}
			for (char *q = e->pat[e->n]; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			e->n++;
		}
		if (e->n == 0 && eb.n == before)
			auth_errbuf_add(&eb,
					"%s:%u: login \"%s\" has no senders "
					"(list addresses or @domains after the "
					"login)\n",
					path, ln, e->login);
	}
	if (m->n > 1) {
		qsort(m->v, m->n, sizeof(*m->v), cmp);
		for (uint32_t i = 1; i < m->n; i++)
			if (strcmp(m->v[i - 1].login, m->v[i].login) == 0) {
				unsigned a = m->v[i - 1].line, b = m->v[i].line;

				auth_errbuf_add(
					&eb,
					"%s:%u: login \"%s\" already "
					"listed at line %u (one line per "
					"login)\n",
					path, a > b ? a : b, m->v[i].login,
					a > b ? b : a);
			}
	}
out:
	free(line);
	if (f)
		fclose(f);
	if (eb.n) {
		auth_sendermap_free(m);
		return NULL;
	}
	return m;
}

bool auth_sendermap_allowed(const struct auth_sendermap *m, const char *login,
			    const char *sender)
{
	struct login_senders key = {.login = (char *)(uintptr_t)login};
	const struct login_senders *e;

	if (sender[0] == 0) /* null sender */
		return true;
	if (m == NULL || m->n == 0)
		return false;
	e = bsearch(&key, m->v, m->n, sizeof(*m->v), cmp);
	if (e == NULL)
		return false;
	const char *at = strrchr(sender, '@');

	for (uint32_t i = 0; i < e->n; i++) {
		const char *p = e->pat[i];

		if (p[0] == '@') {
			if (at && strcasecmp(at, p) == 0)
				return true;
		} else if (strcasecmp(sender, p) == 0) {
			return true;
		}
	}
	return false;
}
