/*
 * domains.h - domain tables: accepted domains (authoritative, internal
 * relay, external relay) and the domain part of sender/recipient
 * restrictions (DESIGN 6). Open-addressing hash on the lower-cased name;
 * an entry may cover its subdomains too. Sized at create time, lookups
 * never allocate.
 *
 * Threads: built by one thread, then read-only while published in a
 * snapshot; per-core overlay tables (runtime pushes) are written and read
 * by their owning core only.
 *
 * Names are compared case-insensitively (ASCII only; any non-ASCII octet
 * must match exactly, so a Unicode look-alike never equals an ASCII
 * name) after removing one trailing dot. Lookups of a name walk its
 * parents ("a.b.example.com" -> "b.example.com" -> "example.com" -> "com")
 * and stop at the first entry that covers it: an exact entry matches only
 * the same name; a subdomain entry matches the name and all names below.
 * A name may hold both an exact and a subdomain entry (they are distinct
 * keys); for the name itself the exact entry wins.
 *
 * Names: 1..253 octets, labels 1..63 octets; octets >= 0x80 are allowed
 * (U-labels) but controls, space and address separators ("(),:;<>@[\]
 * %! and the double quote) are not. A lookup of a malformed name (empty
 * or overlong label, such an octet) returns POL_DOM_NONE, even when a
 * parent would match.
 *
 * Memory: the C heap (malloc at create only; no EAL needed): about 40
 * bytes per slot of capacity, plus an arena sized for capacity names of
 * 253 octets that is only backed as far as names are stored.
 */
#ifndef MXG_POLICY_DOMAINS_H
#define MXG_POLICY_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pol_dom_type {
	POL_DOM_NONE = 0,	    /* not in the table */
	POL_DOM_AUTHORITATIVE,
	POL_DOM_INTERNAL_RELAY,
	POL_DOM_EXTERNAL_RELAY,
	POL_DOM_REMOVED,	    /* overlay tombstone: a push removed it */
	POL_DOM_LISTED,		    /* restriction lists: plain membership */
};

struct pol_domains;

/* capacity: most entries the table will hold (1 .. 2^26). NULL with
 * errno (EINVAL, ENOMEM) on failure. */
struct pol_domains *pol_domains_create(uint32_t capacity);
void pol_domains_free(struct pol_domains *d);

/* Adds or replaces name (len octets; one trailing dot ignored; must be
 * 1..253 octets after that). subdomains: also match names below it.
 * type: any but POL_DOM_NONE. Returns 0, -ENOSPC when full, -EINVAL for
 * a bad name or type. */
int pol_domains_add(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains, enum pol_dom_type type);
/* Removes the entry (same name and subdomains flag). 0 or -ENOENT
 * (-EINVAL for a malformed name). */
int pol_domains_del(struct pol_domains *d, const char *name, size_t len,
		    bool subdomains);
/* The type of exactly this entry (same name and subdomains flag, no
 * parent walk), POL_DOM_NONE when absent. */
enum pol_dom_type pol_domains_get(const struct pol_domains *d,
				  const char *name, size_t len,
				  bool subdomains);
/* The type of the closest covering entry, POL_DOM_NONE when none. Hot
 * path: no allocation; name need not be NUL-terminated. */
enum pol_dom_type pol_domains_lookup(const struct pol_domains *d,
				     const char *name, size_t len);

uint32_t pol_domains_count(const struct pol_domains *d);
size_t pol_domains_memory(const struct pol_domains *d);

#endif /* MXG_POLICY_DOMAINS_H */
