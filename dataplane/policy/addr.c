/*
 * addr.c - envelope address normalisation, the relay decision and
 * restriction lists (see addr.h for the contract).
 *
 * Ownership: pol_addr_parse and pol_rcpt_decide are pure functions over
 * caller memory (any thread). A struct pol_addrlist is built by one
 * thread and then only read. Promises: parsing and matching never
 * allocate, never block, look at each octet of the address a bounded
 * number of times (the address is at most 254 octets), and never treat
 * anything but a plain local@domain as a local recipient.
 *
 * The grammar is RFC 5321 4.1.2 (Path, Mailbox, Local-part, Domain,
 * address-literal) with RFC 6531 (SMTPUTF8) octets >= 0x80 allowed in
 * both parts. Anything else is POL_ADDR_BAD: a gateway that forwards to
 * other MTAs must not pass on what they might parse differently.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/smtp/smtp_parse.h"

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its "<>". */
#define ADDR_MAX 254
#define DOMAIN_MAX 253
#define LABEL_MAX 63

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Octets an unquoted local part may not hold (RFC 5321 4.1.2 atext and
 * '.'); '@', '%' and '!' are classified separately. */
static inline bool local_special(unsigned char c)
{
	switch (c) {
	case ' ':
	case '"':
	case '(':
	case ')':
	case ',':
	case ':':
	case ';':
	case '<':
	case '>':
	case '[':
	case '\\':
	case ']':
		return true;
	default:
		return false;
	}
}

/* A domain (no brackets): one trailing dot removed, 1..253 octets,
 * labels 1..63 octets of letters, digits, '-', '_' or octets >= 0x80.
 * Writes it lower-cased to out (when not NULL). */
static bool domain_norm(const unsigned char *d, size_t n, char *out,
			uint16_t *out_len)
{
	size_t label = 0;

	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else {
			if (++label > LABEL_MAX)
				return false;
			if (!((c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			      c >= 0x80))
				return false;
		}
		if (out)
			out[i] = (char)lc(c);
	}
	if (label == 0)
		return false;
	if (out) {
		out[n] = '\0';
		*out_len = (uint16_t)n;
	}
	return true;
}

/* RFC 5321 4.1.2 A-d-l: "@a,@b" up to (not including) the ':'. */
static bool route_ok(const unsigned char *s, size_t n)
{
	size_t q = 0;

	for (;;) {
		size_t e;

		if (q >= n || s[q] != '@')
			return false;
		for (e = q + 1; e < n && s[e] != ','; e++)
			;
		if (!domain_norm(s + q + 1, e - q - 1, NULL, NULL))
			return false;
		if (e == n)
			return true;
		q = e + 1;
	}
}

static uint32_t local_flags(const char *l, size_t n)
{
	uint32_t f = 0;

	for (size_t i = 0; i < n; i++) {
		switch (l[i]) {
		case '@':
			f |= POL_ADDR_AT_LOCAL;
			break;
		case '%':
			f |= POL_ADDR_PERCENT;
			break;
		case '!':
			f |= POL_ADDR_BANG;
			break;
		default:
			break;
		}
	}
	return f;
}

int pol_addr_parse(const char *addr, size_t len, struct pol_addr *out)
{
	const unsigned char *s = (const unsigned char *)addr;
	uint32_t f = 0;
	size_t p = 0, ll = 0, dstart = 0;
	bool has_domain = false;

	out->local[0] = '\0';
	out->local_len = 0;
	out->domain[0] = '\0';
	out->domain_len = 0;
	if (addr == NULL || len == 0) {
		out->flags = POL_ADDR_BAD | POL_ADDR_NODOMAIN;
		return -EINVAL;
	}
	if (len > ADDR_MAX) {
		out->flags = POL_ADDR_BAD;
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f) /* NUL and controls too */
			f |= POL_ADDR_BAD;
		else if (s[i] >= 0x80)
			f |= POL_ADDR_NONASCII;
	}

	/* RFC 5321 4.1.2 and C: a source route "@a,@b:" may come first;
	 * it is obsolete and we never honour it, but it marks a relay
	 * attempt. */
	if (s[0] == '@') {
		const unsigned char *colon = memchr(s, ':', len);

		f |= POL_ADDR_ROUTE;
		if (colon == NULL || !route_ok(s, (size_t)(colon - s))) {
			out->flags = f | POL_ADDR_BAD;
			return -EINVAL;
		}
		p = (size_t)(colon - s) + 1;
	}
	if (p == len) {
		out->flags = f | POL_ADDR_BAD | POL_ADDR_NODOMAIN;
		return -EINVAL;
	}

	if (s[p] == '"') {
		/* RFC 5321 4.1.2 Quoted-string: quoted-pairSMTP is '\' and
		 * one octet 32..126 (RFC 6531: or UTF-8). The unquoted
		 * text is what the next MTA will act on: classify that. */
		size_t q = p + 1;
		bool closed = false;

		f |= POL_ADDR_QUOTED;
		while (q < len) {
			unsigned char c = s[q];

			if (c == '\\') {
				if (q + 1 == len)
					break;
				c = s[q + 1];
				q += 2;
			} else if (c == '"') {
				closed = true;
				q++;
				break;
			} else {
				q++;
			}
			out->local[ll++] = (char)c;
		}
		/* An empty quoted local part ("") is legal syntax but no
		 * one's mailbox: refuse it with the other malformed ones. */
		if (!closed || ll == 0)
			f |= POL_ADDR_BAD;
		else if (q == len)
			f |= POL_ADDR_NODOMAIN;
		else if (s[q] == '@') {
			has_domain = true;
			dstart = q + 1;
		} else
			f |= POL_ADDR_BAD; /* "a"b@x, "a".b@x */
	} else {
		/* Unquoted: the domain follows the last '@'; any earlier
		 * '@' is a routing trick (u@there@ours). */
		size_t at = len;

		while (at > p && s[at - 1] != '@')
			at--;
		if (at == p) {
			f |= POL_ADDR_NODOMAIN;
			ll = len - p;
		} else {
			has_domain = true;
			dstart = at;
			ll = at - 1 - p;
		}
		for (size_t i = 0; i < ll; i++) {
			if (local_special(s[p + i]))
				f |= POL_ADDR_BAD;
			out->local[i] = (char)s[p + i];
		}
		if (ll == 0)
			f |= POL_ADDR_BAD;
	}
	out->local[ll] = '\0';
	out->local_len = (uint16_t)ll;
	f |= local_flags(out->local, ll);

	if (has_domain) {
		size_t dn = len - dstart;
		const unsigned char *d = s + dstart;

		if (dn == 0) {
			f |= POL_ADDR_BAD;
		} else if (d[0] == '[') {
			/* RFC 5321 4.1.3: the text between the brackets is
			 * dtext (33-90, 94-126); its meaning (IPv4, IPv6:,
			 * tag:) does not matter, a literal is never ours. */
			f |= POL_ADDR_LITERAL;
			if (dn < 3 || d[dn - 1] != ']') {
				f |= POL_ADDR_BAD;
			} else {
				for (size_t i = 1; i + 1 < dn; i++) {
					unsigned char c = d[i];

					if (c < 33 || c > 126 ||
					    (c >= 91 && c <= 93))
						f |= POL_ADDR_BAD;
					out->domain[i - 1] = (char)lc(c);
				}
				out->domain[dn - 2] = '\0';
				out->domain_len = (uint16_t)(dn - 2);
			}
		} else if (!domain_norm(d, dn, out->domain, &out->domain_len)) {
			f |= POL_ADDR_BAD;
			out->domain[0] = '\0';
			out->domain_len = 0;
		}
	}
	/* One grammar for the SMTP engine, the relay client and policy
	 * (issue 11): an address that could be LOCAL or a plain relay by
	 * its domain must be one the engine accepts and the relay client
	 * sends as written (smtp_valid_mailbox); the one trailing dot
	 * tolerated above is left out of that check. Routing tricks and
	 * addresses without a domain are decided by their flags alone. */
	if (!(f & (POL_ADDR_BAD | POL_ADDR_ROUTING | POL_ADDR_NODOMAIN))) {
		size_t n = len - p;

		if (s[len - 1] == '.')
			n--;
		if (!smtp_valid_mailbox(addr + p, n, SMTP_PATH_FORWARD))
			f |= POL_ADDR_BAD;
	}
	out->flags = f;
	return (f & POL_ADDR_BAD) ? -EINVAL : 0;
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

static bool accepted_type(enum pol_dom_type t)
{
	return t == POL_DOM_AUTHORITATIVE || t == POL_DOM_INTERNAL_RELAY ||
	       t == POL_DOM_EXTERNAL_RELAY;
}

enum pol_rcpt_result pol_rcpt_decide(const struct pol_addr *a,
				     const struct pol_domains *accepted,
				     const struct pol_domains *overlay,
				     bool may_relay, int *type)
{
	enum pol_dom_type t = POL_DOM_NONE;

	/* Malformed: nothing can be delivered or relayed to it. */
	if (a->flags & POL_ADDR_BAD)
		return POL_RCPT_DENIED;
	/* RFC 5321 4.5.1: "postmaster" without a domain must be accepted;
	 * any other address without a domain has nowhere to go. */
	if (a->flags & POL_ADDR_NODOMAIN) {
		if (!(a->flags & POL_ADDR_ROUTING) && is_postmaster(a)) {
			if (type)
				*type = POL_DOM_NONE;
			return POL_RCPT_LOCAL;
		}
		return POL_RCPT_DENIED;
	}
	/* Every routing trick is relaying, whatever domain follows. */
	if (a->flags & POL_ADDR_ROUTING)
		return may_relay ? POL_RCPT_RELAY : POL_RCPT_DENIED;
	if (overlay)
		t = pol_domains_lookup(overlay, a->domain, a->domain_len);
	if (t == POL_DOM_NONE && accepted)
		t = pol_domains_lookup(accepted, a->domain, a->domain_len);
	if (accepted_type(t)) {
		if (type)
			*type = (int)t;
		return POL_RCPT_LOCAL;
	}
	return may_relay ? POL_RCPT_RELAY : POL_RCPT_DENIED;
}

/* ------------------------------------------------------------------ */

/*
 * Restriction lists: domain entries ("dom" exact, ".dom" the domain and
 * below) in a pol_domains table; whole addresses in an exact-octet set
 * keyed "local@domain" (local part as sent after unquoting, domain lower
 * case; "local@[literal]" for address literals). The set is open
 * addressing over an arena, never deleted from.
 */
struct al_slot {
	uint32_t h;
	uint32_t idx1; /* entry index + 1; 0: empty */
};

struct al_ent {
	uint32_t off;
	uint16_t len;
};

struct pol_addrlist {
	struct pol_domains *doms;
	struct al_slot *slot;
	uint32_t mask;
	struct al_ent *ent;
	uint32_t cap, naddr;
	char *arena;
	size_t arena_size, arena_used;
};

/* The address key, as four pieces (no copy on the match path). */
struct al_key {
	const char *p[4];
	size_t n[4];
	size_t len;
};

static void al_key_init(struct al_key *k, const struct pol_addr *a)
{
	bool lit = (a->flags & POL_ADDR_LITERAL) != 0;

	k->p[0] = a->local;
	k->n[0] = a->local_len;
	k->p[1] = lit ? "@[" : "@";
	k->n[1] = lit ? 2 : 1;
	k->p[2] = a->domain;
	k->n[2] = a->domain_len;
	k->p[3] = "]";
	k->n[3] = lit ? 1 : 0;
	k->len = k->n[0] + k->n[1] + k->n[2] + k->n[3];
}

static uint32_t al_hash(const struct al_key *k)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int j = 0; j < 4; j++)
		for (size_t i = 0; i < k->n[j]; i++)
			h = (h ^ (unsigned char)k->p[j][i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

static bool al_eq(const char *stored, const struct al_key *k)
{
	for (int j = 0; j < 4; j++) {
		if (k->n[j] && memcmp(stored, k->p[j], k->n[j]) != 0)
			return false;
		stored += k->n[j];
	}
	return true;
}

static int64_t al_find(const struct pol_addrlist *l, uint32_t h,
		       const struct al_key *k)
{
	uint32_t i = h & l->mask;

	for (;;) {
		const struct al_slot *s = &l->slot[i];

		if (s->idx1 == 0)
			return -1;
		if (s->h == h) {
			const struct al_ent *e = &l->ent[s->idx1 - 1];

			if (e->len == k->len && al_eq(l->arena + e->off, k))
				return i;
		}
		i = (i + 1) & l->mask;
	}
}

struct pol_addrlist *pol_addrlist_create(uint32_t capacity)
{
	struct pol_addrlist *l;
	uint64_t n = 16;

	if (capacity == 0 || capacity > (1u << 26)) {
		errno = EINVAL;
		return NULL;
	}
	while (n < 2ull * capacity)
		n <<= 1;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->cap = capacity;
	l->mask = (uint32_t)(n - 1);
	l->doms = pol_domains_create(capacity);
	l->slot = calloc(n, sizeof(*l->slot));
	l->ent = calloc(capacity, sizeof(*l->ent));
	l->arena_size = (size_t)capacity * ADDR_MAX;
	l->arena = malloc(l->arena_size);
	if (l->doms == NULL || l->slot == NULL || l->ent == NULL ||
	    l->arena == NULL) {
		pol_addrlist_free(l);
		errno = ENOMEM;
		return NULL;
	}
	return l;
}

void pol_addrlist_free(struct pol_addrlist *l)
{
	if (l == NULL)
		return;
	pol_domains_free(l->doms);
	free(l->slot);
	free(l->ent);
	free(l->arena);
	free(l);
}

uint32_t pol_addrlist_count(const struct pol_addrlist *l)
{
	return l ? l->naddr + pol_domains_count(l->doms) : 0;
}

static int al_add_addr(struct pol_addrlist *l, const char *entry, size_t n)
{
	struct pol_addr a;
	struct al_key k;
	uint32_t h, i, idx;
	char *w;

	/* A route or a malformed address is no address to list. */
	if (pol_addr_parse(entry, n, &a) < 0 ||
	    (a.flags & (POL_ADDR_ROUTE | POL_ADDR_NODOMAIN)))
		return -EINVAL;
	al_key_init(&k, &a);
	h = al_hash(&k);
	if (al_find(l, h, &k) >= 0)
		return 0;
	if (pol_addrlist_count(l) >= l->cap ||
	    l->arena_used + k.len > l->arena_size)
		return -ENOSPC;
	idx = l->naddr;
	w = l->arena + l->arena_used;
	for (int j = 0; j < 4; j++) {
		memcpy(w, k.p[j], k.n[j]);
		w += k.n[j];
	}
	l->ent[idx] = (struct al_ent){.off = (uint32_t)l->arena_used,
				      .len = (uint16_t)k.len};
	l->arena_used += k.len;
	for (i = h & l->mask; l->slot[i].idx1 != 0; i = (i + 1) & l->mask)
		;
	l->slot[i] = (struct al_slot){.h = h, .idx1 = idx + 1};
	l->naddr++;
	return 0;
}

int pol_addrlist_add(struct pol_addrlist *l, const char *entry)
{
	size_t n;
	bool sub = false;

	if (l == NULL || entry == NULL)
		return -EINVAL;
	n = strnlen(entry, ADDR_MAX + 1);
	if (n == 0 || n > ADDR_MAX)
		return -EINVAL;
	if (memchr(entry, '@', n) != NULL)
		return al_add_addr(l, entry, n);
	if (entry[0] == '.') {
		sub = true;
		entry++;
		n--;
	} else if (entry[0] == '*' && entry[1] == '.') {
		sub = true;
		entry += 2;
		n -= 2;
	}
	/* Re-adding what is there is not growth. */
	if (pol_domains_get(l->doms, entry, n, sub) == POL_DOM_NONE &&
	    pol_addrlist_count(l) >= l->cap)
		return -ENOSPC;
	return pol_domains_add(l->doms, entry, n, sub, POL_DOM_LISTED);
}

bool pol_addrlist_match(const struct pol_addrlist *l, const struct pol_addr *a)
{
	if (l == NULL || a == NULL ||
	    (a->flags & (POL_ADDR_BAD | POL_ADDR_NODOMAIN)))
		return false;
	if (l->naddr > 0) {
		struct al_key k;

		al_key_init(&k, a);
		if (al_find(l, al_hash(&k), &k) >= 0)
			return true;
	}
	if (a->flags & POL_ADDR_LITERAL)
		return false;
	return pol_domains_lookup(l->doms, a->domain, a->domain_len) !=
	       POL_DOM_NONE;
}
