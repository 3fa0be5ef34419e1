/*
 * logline.c - key=value log lines to what the log file holds
 * (logline.h, docs/logging.md "Grammar" and "JSON lines").
 *
 * Ownership: none; pure functions on the caller's buffers, any thread.
 * Never allocates. A line the grammar does not describe (a dataplane
 * line cut at GW_LOG_LINE inside a quoted value, a word without '=') is
 * still rendered, never dropped: an open quote runs to the end of the
 * line, a word without '=' is a key with an empty value.
 */
#include <stdbool.h>
#include <string.h>

#include "control/logline.h"

#define LOGLINE_MAX_PAIRS 400 /* a 1,536-octet line has fewer */

struct pair {
	const char *key, *raw, *val; /* raw: the pair as written */
	size_t key_len, raw_len, val_len;
	bool quoted;
};

/* Keys docs/logging.md documents as numbers: JSON numbers, not strings.
 * "core" is not among them: main-lcore lines carry core=main. */
static const char *const numeric_keys[] = {
	"ts", "generation", "rcpts", "size", "ms", "commands", "messages",
	"errors", "pregreet", "code", "value", "seq", "kind", "port",
	"cores_applied", "cores_failed", "latency_us", "compile_us", NULL,
};

int logline_format_parse(const char *name)
{
	if (strcmp(name, "kv") == 0)
		return LOGLINE_KV;
	if (strcmp(name, "json") == 0)
		return LOGLINE_JSON;
	return -1;
}

int logline_level_parse(const char *name)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

/* Splits line into pairs; returns how many (at most max). */
static unsigned split(const char *line, struct pair *p, unsigned max)
{
	const char *s = line;
	unsigned n = 0;

	while (*s && n < max) {
		const char *eq, *end;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		p[n].key = s;
		end = s + strcspn(s, " =");
		if (*end != '=') { /* a word without '=' */
			p[n] = (struct pair){.key = s, .key_len = end - s,
					     .raw = s, .raw_len = end - s,
					     .val = end};
			s = end;
			n++;
			continue;
		}
		eq = end;
		p[n].key_len = eq - s;
		p[n].quoted = eq[1] == '"';
		if (p[n].quoted) {
			const char *close = strchr(eq + 2, '"');

			p[n].val = eq + 2;
			end = close ? close + 1 : eq + 2 + strlen(eq + 2);
			p[n].val_len = (close ? close : end) - p[n].val;
		} else {
			p[n].val = eq + 1;
			end = eq + 1 + strcspn(eq + 1, " ");
			p[n].val_len = end - p[n].val;
		}
		p[n].raw = s;
		p[n].raw_len = end - s;
		s = end;
		n++;
	}
	return n;
}

static bool key_is(const struct pair *p, const char *k)
{
	return p->key_len == strlen(k) && memcmp(p->key, k, p->key_len) == 0;
}

static bool repeated(const struct pair *p, unsigned i)
{
	for (unsigned j = 0; j < i; j++)
		if (p[j].key_len == p[i].key_len &&
		    memcmp(p[j].key, p[i].key, p[i].key_len) == 0)
			return true;
	return false;
}

enum logline_level logline_level_of(const char *line)
{
	struct pair p[LOGLINE_MAX_PAIRS];
	unsigned n = split(line, p, LOGLINE_MAX_PAIRS);

	for (unsigned i = 0; i < n; i++) {
		if (!key_is(&p[i], "event"))
			continue;
		if (p[i].val_len == 5 && memcmp(p[i].val, "error", 5) == 0)
			return LOGLINE_ERROR;
		if ((p[i].val_len == 13 &&
		     memcmp(p[i].val, "backend_error", 13) == 0) ||
		    (p[i].val_len == 11 &&
		     memcmp(p[i].val, "push_failed", 11) == 0))
			return LOGLINE_WARN;
		break;
	}
	return LOGLINE_INFO;
}

/* A JSON number (RFC 8259 6) without exponent: -?digits(.digits)? */
static bool is_number(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	d = i;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == d || (s[d] == '0' && i - d > 1))
		return false;
	if (i < n && s[i] == '.') {
		d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == n;
}

static bool numeric(const struct pair *p)
{
	for (int i = 0; numeric_keys[i]; i++)
		if (key_is(p, numeric_keys[i]))
			return !p->quoted && is_number(p->val, p->val_len);
	return false;
}

struct out {
	char *buf;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n >= o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* Length of the valid UTF-8 sequence at s (at most n octets), 0 if none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* s as a JSON string, quotes included (RFC 8259 7). */
static void put_json_string(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		if (u[i] == '"' || u[i] == '\\') {
			char esc[2] = {'\\', (char)u[i]};

			put(o, esc, 2);
			i++;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex[u[i] >> 4],
				       hex[u[i] & 15]};

			put(o, esc, 6);
			i++;
		} else if (u[i] < 0x80) {
			put(o, s + i, 1);
			i++;
		} else {
			size_t len = utf8_len(u + i, n - i);

			if (len) {
				put(o, s + i, len);
				i += len;
			} else {
				put(o, "\\ufffd", 6);
				i++;
			}
		}
	}
	put(o, "\"", 1);
}

int logline_render(const char *line, enum logline_format fmt, char *out,
		   size_t outlen)
{
	struct pair p[LOGLINE_MAX_PAIRS];
	struct out o = {.buf = out, .cap = outlen};
	unsigned n = split(line, p, LOGLINE_MAX_PAIRS);
	bool first = true;

	if (fmt == LOGLINE_JSON)
		put(&o, "{", 1);
	for (unsigned i = 0; i < n; i++) {
		if (repeated(p, i))
			continue;
		if (fmt == LOGLINE_KV) {
			if (!first)
				put(&o, " ", 1);
			put(&o, p[i].raw, p[i].raw_len);
		} else {
			if (!first)
				put(&o, ",", 1);
			put_json_string(&o, p[i].key, p[i].key_len);
			put(&o, ":", 1);
			if (numeric(&p[i]))
				put(&o, p[i].val, p[i].val_len);
			else
				put_json_string(&o, p[i].val, p[i].val_len);
		}
		first = false;
	}
	if (fmt == LOGLINE_JSON)
		put(&o, "}", 1);
	if (o.full)
		return -1;
	out[o.len] = '\0';
	return (int)o.len;
}
