/*
 * store.c - the users file (see store.h). Loading sorts the entries by
 * login so that a lookup is a binary search over immutable memory.
 * Errors are collected, not stopped at: an operator sees every bad line
 * at once.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/errbuf.h"
#include "auth/store.h"

struct auth_user {
	char *login;
	char *hash;
	unsigned line;
};

struct auth_store {
	struct auth_user *v;
	uint32_t n;
	char dummy[AUTH_MAX_HASH];
};

static const char *const strong[] = {"$y$",  "$gy$", "$7$", "$2b$",
				     "$2y$", "$6$",  NULL};

bool auth_hash_strong(const char *h)
{
	for (int i = 0; strong[i]; i++)
		if (strncmp(h, strong[i], strlen(strong[i])) == 0)
			return true;
	return false;
}

static int cmp_user(const void *a, const void *b)
{
	return strcmp(((const struct auth_user *)a)->login,
		      ((const struct auth_user *)b)->login);
}

void auth_store_free(struct auth_store *s)
{
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		free(s->v[i].login);
		if (s->v[i].hash) {
			memset(s->v[i].hash, 0, strlen(s->v[i].hash));
			free(s->v[i].hash);
		}
	}
	free(s->v);
	free(s);
}

static bool login_ok(const char *p)
{
	if (*p == 0 || strlen(p) > AUTH_MAX_FIELD)
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ':')
			return false;
	return true;
}

struct auth_store *auth_store_load(const char *path, char *err, size_t cap)
{
	struct auth_errbuf e;
	struct auth_store *s = calloc(1, sizeof(*s));
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t lcap = 0, vcap = 0;
	unsigned ln = 0;
	ssize_t len;

	auth_errbuf_init(&e, err, cap);
	if (s == NULL || f == NULL) {
		auth_errbuf_add(&e, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	while ((len = getline(&line, &lcap, f)) >= 0) {
		ln++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 0 || *p == '#')
			continue;
		char *colon = strchr(p, ':');

		if (colon == NULL) {
			auth_errbuf_add(
				&e, "%s:%u: no ':' (a line \"login:hash\")\n",
				path, ln);
			continue;
		}
		*colon = 0;
		char *h = colon + 1;
		/* Tolerate /etc/shadow-like trailing fields. */
		char *c2 = strchr(h, ':');

		if (c2)
			*c2 = 0;
		if (!login_ok(p)) {
			auth_errbuf_add(&e,
					"%s:%u: bad login \"%.40s\" (1..255 "
					"octets, no spaces, controls or ':')\n",
					path, ln, p);
			continue;
		}
		if (!auth_hash_strong(h) || strlen(h) >= AUTH_MAX_HASH ||
		    strlen(h) < 20) {
			auth_errbuf_add(
				&e,
				"%s:%u: user \"%s\": not a strong password "
				"hash (yescrypt \"$y$...\", SHA-512 crypt "
				"\"$6$...\", bcrypt \"$2b$...\" or scrypt "
				"\"$7$...\": mkpasswd -m yescrypt)\n",
				path, ln, p);
			continue;
		}
		if (s->n == vcap) {
			size_t nc = vcap ? vcap * 2 : 16;
			struct auth_user *nv = realloc(s->v, nc * sizeof(*nv));

			if (nv == NULL) {
				auth_errbuf_add(&e, "%s:%u: out of memory\n",
						path, ln);
				break;
			}
			s->v = nv;
			vcap = nc;
		}
		s->v[s->n].login = strdup(p);
		s->v[s->n].hash = strdup(h);
		s->v[s->n].line = ln;
		if (!s->v[s->n].login || !s->v[s->n].hash) {
			free(s->v[s->n].login);
			free(s->v[s->n].hash);
			auth_errbuf_add(&e, "%s:%u: out of memory\n", path, ln);
			break;
		}
		/* The dummy for unknown users: the first strongest hash. */
		if (s->dummy[0] == 0 || (strncmp(h, "$y$", 3) == 0 &&
					 strncmp(s->dummy, "$y$", 3) != 0))
			snprintf(s->dummy, sizeof(s->dummy), "%s", h);
		s->n++;
	}
	if (ferror(f))
		auth_errbuf_add(&e, "%s: read error: %s\n", path,
				strerror(errno));
	if (s->n > 1) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_user);
		for (uint32_t i = 1; i < s->n; i++)
			if (strcmp(s->v[i - 1].login, s->v[i].login) == 0)
				auth_errbuf_add(
					&e,
					"%s:%u: user \"%s\" already "
					"defined at line %u (one line per "
					"user)\n",
					path,
					s->v[i].line > s->v[i - 1].line
						? s->v[i].line
						: s->v[i - 1].line,
					s->v[i].login,
					s->v[i].line > s->v[i - 1].line
						? s->v[i - 1].line
						: s->v[i].line);
	}
out:
	free(line);
	if (f)
		fclose(f);
	if (e.n) {
		auth_store_free(s);
		return NULL;
	}
	return s;
}

uint32_t auth_store_count(const struct auth_store *s)
{
	return s ? s->n : 0;
}

const char *auth_store_lookup(const struct auth_store *s, const char *login)
{
	struct auth_user key = {.login = (char *)(uintptr_t)login};
	const struct auth_user *u;

	if (s == NULL || s->n == 0)
		return NULL;
	u = bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_user);
	return u ? u->hash : NULL;
}

const char *auth_store_dummy_hash(const struct auth_store *s)
{
	/* yescrypt of a random password nobody knows, default cost. */
	static const char fallback[] =
		"$y$j9T$ujY/"
		"KhJsiYa82w07qJJez1$"
		"j4WCjtZp475KOmHxt5eP5eLkswlrATcKB89YbCM2aW2";

	return s && s->dummy[0] ? s->dummy : fallback;
}

int auth_hash_password(const char *prefix, unsigned long cost,
		       const char *password, char *out, size_t cap)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int r = -1;

	if (crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)) ==
	    NULL)
		return -1;
	cd = calloc(1, sizeof(*cd)); /* ~32 KiB: not on the stack */
	if (cd == NULL)
		return -1;
	h = crypt_r(password, salt, cd);
	if (h != NULL && h[0] != '*' && strlen(h) < cap) {
		memcpy(out, h, strlen(h) + 1);
		r = 0;
	} else {
		errno = EINVAL;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

enum auth_result auth_store_check(const char *hash, const char *password)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	enum auth_result r = AUTH_RESULT_TEMPFAIL;

	if (cd == NULL)
		return AUTH_RESULT_TEMPFAIL;
	const char *out = crypt_r(password, hash, cd);

	/* libcrypt returns NULL or a string starting with '*' on failure
	 * (unsupported method, bad setting, out of memory). */
	if (out != NULL && out[0] != '*') {
		size_t a = strlen(out), b = strlen(hash);
		unsigned char d = a != b;

		/* Constant time over the hash length. */
		for (size_t i = 0; i < b; i++)
			d |= (unsigned char)(out[i < a ? i : 0] ^ hash[i]);
		r = d == 0 ? AUTH_RESULT_OK : AUTH_RESULT_FAIL;
	}
	memset(cd, 0, sizeof(*cd));
	free(cd);
	return r;
}
