/*
 * addr.c - envelope address normalisation, the relay decision and
 * restriction lists (see addr.h).
 *
 * Threads: pure functions over caller memory; address lists are built by
 * one thread and read-only afterwards. Never allocates on a lookup.
 */
#include "dataplane/policy/addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/policy/domains.h"

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets. Anything much longer
 * is not an address we route. */
#define ADDR_MAX 320

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Domain characters a routable name may hold (LDH and '_'); non-ASCII is
 * kept but flagged; anything else makes the address malformed. */
static bool dom_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.';
}

static void parse_domain(const char *p, size_t n, struct pol_addr *out)
{
	size_t label = 0;

	if (n && p[0] == '[') {
		/* RFC 5321 4.1.3 address literal: kept, never local */
		out->flags |= POL_ADDR_LITERAL;
		if (n < 3 || p[n - 1] != ']' || n - 2 >= sizeof(out->domain)) {
			out->flags |= POL_ADDR_BAD;
			return;
		}
		for (size_t i = 1; i + 1 < n; i++) {
			unsigned char c = (unsigned char)p[i];

			if (is_ctl(c) || c == '[' || c == ']' || c == '\\')
				out->flags |= POL_ADDR_BAD;
			out->domain[out->domain_len++] = (char)lc(c);
		}
		out->domain[out->domain_len] = '\0';
		return;
	}
	/* one trailing dot is the same name (RFC 1034 absolute form) */
	if (n && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253) {
		out->flags |= POL_ADDR_BAD;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = lc((unsigned char)p[i]);

		if (c >= 0x80) {
			out->flags |= POL_ADDR_NONASCII;
		} else if (!dom_char(c)) {
			out->flags |= POL_ADDR_BAD;
		}
		if (c == '.') {
			if (label == 0)
				out->flags |= POL_ADDR_BAD; /* empty label */
			label = 0;
		} else if (++label > 63) {
			out->flags |= POL_ADDR_BAD;
		}
		out->domain[out->domain_len++] = (char)c;
	}
	if (label == 0)
		out->flags |= POL_ADDR_BAD;
	out->domain[out->domain_len] = '\0';
}

static void local_flags(struct pol_addr *out)
{
	for (size_t i = 0; i < out->local_len; i++) {
		unsigned char c = (unsigned char)out->local[i];

		if (c == '%')
			out->flags |= POL_ADDR_PERCENT;
		else if (c == '!')
			out->flags |= POL_ADDR_BANG;
		else if (c == '@')
			out->flags |= POL_ADDR_AT_LOCAL;
		else if (c >= 0x80)
			out->flags |= POL_ADDR_NONASCII;
		else if (is_ctl(c))
			out->flags |= POL_ADDR_BAD;
	}
}

int pol_addr_parse(const char *addr, size_t len, struct pol_addr *out)
{
	const char *p = addr, *end = addr + len, *at = NULL;

	memset(out, 0, offsetof(struct pol_addr, flags) + sizeof(out->flags));
	out->local[0] = out->domain[0] = '\0';
	if (len == 0 || len > ADDR_MAX || memchr(addr, '\0', len)) {
		out->flags |= POL_ADDR_BAD;
		return -EINVAL;
	}
	/* RFC 5321 4.1.2 source route "@a,@b:" (obsolete, ignored by
	 * receivers, but we refuse to route on it) */
	if (*p == '@') {
		const char *colon = memchr(p, ':', len);

		out->flags |= POL_ADDR_ROUTE;
		if (!colon) {
			out->flags |= POL_ADDR_BAD;
			return -EINVAL;
		}
		p = colon + 1;
	}
	if (p < end && *p == '"') {
		/* quoted local part: unquote, resolve quoted pairs */
		bool closed = false;

		out->flags |= POL_ADDR_QUOTED;
		for (p++; p < end; p++) {
			unsigned char c = (unsigned char)*p;

			if (c == '"') {
				closed = true;
				p++;
				break;
			}
			if (c == '\\') {
				if (++p == end)
					break;
				c = (unsigned char)*p;
			}
			if ((size_t)out->local_len + 1 >= sizeof(out->local)) {
				out->flags |= POL_ADDR_BAD;
				break;
			}
			out->local[out->local_len++] = (char)c;
		}
		out->local[out->local_len] = '\0';
		if (!closed)
			out->flags |= POL_ADDR_BAD;
		if (p < end && *p != '@')
			out->flags |= POL_ADDR_BAD; /* "a"b@c */
		at = p < end ? p : NULL;
	} else {
		/* the mail goes to the domain after the last '@'; any other
		 * '@' is in the local part */
		for (const char *q = end; q > p; q--)
			if (q[-1] == '@') {
				at = q - 1;
				break;
			}
		{
			size_t n = (size_t)((at ? at : end) - p);

			if (n >= sizeof(out->local)) {
				out->flags |= POL_ADDR_BAD;
				n = sizeof(out->local) - 1;
			}
			memcpy(out->local, p, n);
			out->local_len = (uint16_t)n;
			out->local[n] = '\0';
		}
		for (size_t i = 0; i < out->local_len; i++) {
			unsigned char c = (unsigned char)out->local[i];

			/* RFC 5321 4.1.2 specials outside quotes */
			if (c == '"' || c == '\\' || c == ' ' || c == '(' ||
			    c == ')' || c == '<' || c == '>' || c == ',' ||
			    c == ';' || c == ':' || c == '[' || c == ']')
				out->flags |= POL_ADDR_BAD;
		}
	}
	local_flags(out);
	if (!at) {
		out->flags |= POL_ADDR_NODOMAIN;
		if (out->local_len == 0)
			out->flags |= POL_ADDR_BAD;
	} else {
		if (out->local_len == 0 && !(out->flags & POL_ADDR_QUOTED))
			out->flags |= POL_ADDR_BAD;
		parse_domain(at + 1, (size_t)(end - at - 1), out);
	}
	return (out->flags & POL_ADDR_BAD) ? -EINVAL : 0;
}

static bool is_postmaster(const struct pol_addr *a)
{
	static const char pm[] = "postmaster";

	if (a->local_len != sizeof(pm) - 1)
		return false;
	for (size_t i = 0; i < sizeof(pm) - 1; i++)
		if (lc((unsigned char)a->local[i]) != (unsigned char)pm[i])
			return false;
	return true;
}

enum pol_rcpt_result pol_rcpt_decide(const struct pol_addr *a,
				     const struct pol_domains *accepted,
				     const struct pol_domains *overlay,
				     bool may_relay, int *type)
{
	enum pol_dom_type t = POL_DOM_NONE;

	if (type)
		*type = 0;
	if (a->flags & POL_ADDR_NODOMAIN) {
		/* RFC 5321 4.5.1: <postmaster> without a domain is ours */
		if (!(a->flags & (POL_ADDR_ROUTING | POL_ADDR_QUOTED)) &&
		    is_postmaster(a))
			return POL_RCPT_LOCAL;
		return may_relay ? POL_RCPT_RELAY : POL_RCPT_DENIED;
	}
	if (a->flags & POL_ADDR_ROUTING)
		return may_relay ? POL_RCPT_RELAY : POL_RCPT_DENIED;
	if (overlay)
		t = pol_domains_lookup(overlay, a->domain, a->domain_len);
	if (t == POL_DOM_NONE && accepted)
		t = pol_domains_lookup(accepted, a->domain, a->domain_len);
	if (t == POL_DOM_AUTHORITATIVE || t == POL_DOM_INTERNAL_RELAY ||
	    t == POL_DOM_EXTERNAL_RELAY) {
		if (type)
			*type = (int)t;
		return POL_RCPT_LOCAL;
	}
	return may_relay ? POL_RCPT_RELAY : POL_RCPT_DENIED;
}

/* ------------------------------------------------------------ lists */

struct addr_slot {
	uint64_t hash; /* 0 = empty */
	uint32_t off;
	uint16_t len;
};

struct pol_addrlist {
	struct pol_domains *domains; /* "dom" and ".dom" entries */
	struct addr_slot *slots;     /* "local@dom" entries */
	uint32_t mask, n_addr, capacity;
	char *arena;
	size_t arena_len, arena_used;
};

static uint64_t str_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 31;
	return h ? h : 1;
}

struct pol_addrlist *pol_addrlist_create(uint32_t capacity)
{
	struct pol_addrlist *l = calloc(1, sizeof(*l));
	uint64_t slots = 16;

	if (!l)
		return NULL;
	if (capacity == 0)
		capacity = 1;
	while (slots < (uint64_t)capacity * 2)
		slots <<= 1;
	l->domains = pol_domains_create(capacity);
	l->slots = calloc(slots, sizeof(*l->slots));
	l->arena_len = (size_t)capacity * 80 + 600;
	l->arena = malloc(l->arena_len);
	if (!l->domains || !l->slots || !l->arena) {
		pol_addrlist_free(l);
		errno = ENOMEM;
		return NULL;
	}
	l->mask = (uint32_t)(slots - 1);
	l->capacity = capacity;
	return l;
}

void pol_addrlist_free(struct pol_addrlist *l)
{
	if (!l)
		return;
	pol_domains_free(l->domains);
	free(l->slots);
	free(l->arena);
	free(l);
}

/* "local@domain" with the domain as normalised by pol_addr_parse. */
static size_t addr_key(const struct pol_addr *a, char *buf, size_t len)
{
	size_t n = (size_t)a->local_len + 1 + a->domain_len;

	if (n >= len)
		return 0;
	memcpy(buf, a->local, a->local_len);
	buf[a->local_len] = '@';
	memcpy(buf + a->local_len + 1, a->domain, a->domain_len);
	return n;
}

static bool addr_find(const struct pol_addrlist *l, const char *k, size_t n)
{
	uint64_t h = str_hash(k, n);
	uint32_t i = (uint32_t)h & l->mask;

	for (uint32_t p = 0; p <= l->mask; p++) {
		const struct addr_slot *e = &l->slots[i];

		if (e->hash == 0)
			return false;
		if (e->hash == h && e->len == n &&
		    memcmp(l->arena + e->off, k, n) == 0)
			return true;
		i = (i + 1) & l->mask;
	}
	return false;
}

int pol_addrlist_add(struct pol_addrlist *l, const char *entry)
{
	size_t n = strlen(entry);

	if (n == 0)
		return -EINVAL;
	if (strchr(entry, '@')) {
		struct pol_addr a;
		char key[600];
		size_t kn;
		uint64_t h;
		uint32_t i;

		if (pol_addr_parse(entry, n, &a) < 0 ||
		    (a.flags & POL_ADDR_NODOMAIN))
			return -EINVAL;
		kn = addr_key(&a, key, sizeof(key));
		if (kn == 0)
			return -EINVAL;
		if (addr_find(l, key, kn))
			return 0;
		if (l->n_addr >= l->capacity ||
		    l->arena_used + kn > l->arena_len)
			return -ENOSPC;
		h = str_hash(key, kn);
		i = (uint32_t)h & l->mask;
		while (l->slots[i].hash)
			i = (i + 1) & l->mask;
		memcpy(l->arena + l->arena_used, key, kn);
		l->slots[i].off = (uint32_t)l->arena_used;
		l->slots[i].len = (uint16_t)kn;
		l->slots[i].hash = h;
		l->arena_used += kn;
		l->n_addr++;
		return 0;
	}
	if (entry[0] == '*' && entry[1] == '.')
		entry++;
	if (entry[0] == '.')
		return pol_domains_add(l->domains, entry + 1, strlen(entry + 1),
				       true, POL_DOM_LISTED);
	return pol_domains_add(l->domains, entry, n, false, POL_DOM_LISTED);
}

bool pol_addrlist_match(const struct pol_addrlist *l, const struct pol_addr *a)
{
	if (!l)
		return false;
	if (l->n_addr && !(a->flags & POL_ADDR_NODOMAIN)) {
		char key[600];
		size_t kn = addr_key(a, key, sizeof(key));

		if (kn && addr_find(l, key, kn))
			return true;
	}
	return a->domain_len &&
	       pol_domains_lookup(l->domains, a->domain, a->domain_len) !=
		       POL_DOM_NONE;
}

uint32_t pol_addrlist_count(const struct pol_addrlist *l)
{
	return l ? l->n_addr + pol_domains_count(l->domains) : 0;
}
