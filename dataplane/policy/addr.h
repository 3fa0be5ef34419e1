/*
 * addr.h - address normalisation and the relay decision (DESIGN 6).
 *
 * Every policy decision about an envelope address (relay control, sender
 * and recipient restrictions, rate-limit keys) is taken on the normalised
 * form built here, never on the text the client sent. Normalisation:
 * domain lower-cased (ASCII), one trailing dot removed; local part kept as
 * sent except that a quoted local part is unquoted (backslash pairs
 * resolved) and then inspected like any other; the whole address is
 * classified by the routing tricks it contains.
 *
 * The relay decision (pol_rcpt_decide) treats every routing trick as
 * relaying: a client that may not relay can only reach a plain
 * local@accepted-domain address. None of the forms below can turn a
 * denied relay into an accepted one:
 *   user%other@ours (percent hack), other!user@ours (bang path),
 *   @ours:user@there (source route), user@there@ours (several '@'),
 *   "user@there"@ours (quoted '@', '%', '!'), user@[198.18.0.2] (address
 *   literal), non-ASCII look-alike domains, empty or malformed domains.
 *
 * Syntax is RFC 5321 4.1.2 with RFC 6531 octets >= 0x80 allowed.
 * POL_ADDR_BAD: empty address or local part (including ""), longer than
 * 254 octets, NUL or other control octets anywhere, an unterminated
 * quoted string or text after it other than "@domain", an unquoted local
 * part holding a space or one of "(),:;<>[\], a source route that is
 * not "@domain{,@domain}:", an empty domain, a domain with an empty label
 * (leading, trailing after the one allowed dot, or doubled), a label over
 * 63 octets, a domain over 253 octets or holding anything but letters,
 * digits, '-', '_' and octets >= 0x80, or an address literal that is not
 * "[" dtext "]". And (issue 11: one grammar for the SMTP engine, the
 * relay client and policy) an address without routing flags and with a
 * domain is POL_ADDR_BAD unless smtp_valid_mailbox() accepts it (one
 * trailing dot of the domain aside): so "a..b@x", a local part over 64
 * octets, '_' or a leading/trailing '-' in a label, or malformed UTF-8
 * are BAD; whatever is LOCAL or RELAY can be sent to the next hop as
 * written.
 *
 * Threads: pure functions over caller memory; any thread.
 */
#ifndef MXG_POLICY_ADDR_H
#define MXG_POLICY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pol_domains;

/* Classification bits (struct pol_addr.flags). */
#define POL_ADDR_QUOTED    (1u << 0) /* local part was a quoted string */
#define POL_ADDR_PERCENT   (1u << 1) /* '%' in the (unquoted) local part */
#define POL_ADDR_BANG      (1u << 2) /* '!' in the local part */
#define POL_ADDR_AT_LOCAL  (1u << 3) /* '@' inside the local part (quoted
					or several '@') */
#define POL_ADDR_ROUTE     (1u << 4) /* source route "@a,@b:" present */
#define POL_ADDR_LITERAL   (1u << 5) /* domain is an address literal */
#define POL_ADDR_NONASCII  (1u << 6) /* non-ASCII octets anywhere */
#define POL_ADDR_NODOMAIN  (1u << 7) /* no '@' (e.g. "postmaster") */
#define POL_ADDR_BAD       (1u << 8) /* malformed: empty parts, bad
					quoting, control characters, too
					long */
/* Any of these makes a recipient a relay attempt. */
#define POL_ADDR_ROUTING (POL_ADDR_PERCENT | POL_ADDR_BANG |            \
			  POL_ADDR_AT_LOCAL | POL_ADDR_ROUTE |            \
			  POL_ADDR_LITERAL | POL_ADDR_BAD)

struct pol_addr {
	char local[256];   /* unquoted local part, NUL-terminated */
	uint16_t local_len;
	char domain[256];  /* lower-cased, no trailing dot ("" if none;
			      for a literal the text inside [ ]) */
	uint16_t domain_len;
	uint32_t flags;    /* POL_ADDR_* */
};

/* Parses and normalises addr (len octets, as the SMTP engine gives it:
 * without <>; a source route may still be present, and is dropped from
 * the result). The domain is the text after the last '@' outside
 * quotes. Always fills *out (after an error, local and domain hold what
 * could be parsed); returns 0, or -EINVAL when POL_ADDR_BAD was set. */
int pol_addr_parse(const char *addr, size_t len, struct pol_addr *out);

enum pol_rcpt_result {
	POL_RCPT_LOCAL = 0,  /* to an accepted domain (or postmaster) */
	POL_RCPT_RELAY,      /* relaying, and the client may relay */
	POL_RCPT_DENIED,     /* relaying, and the client may not */
};

/* The relay decision for one recipient. accepted: the snapshot's
 * accepted-domain table; overlay: the core's pushed changes (may be NULL;
 * consulted first: POL_DOM_REMOVED there hides an accepted domain, a
 * type there adds one). may_relay: the client is in a relay network or
 * authenticated on a listener that lets authenticated clients relay.
 * A bare "postmaster" (RFC 5321 4.5.1, any case) is local. *type gets
 * the accepted domain's type when the result is POL_RCPT_LOCAL
 * (POL_DOM_NONE for a bare postmaster; type may be NULL).
 *
 * Order: POL_ADDR_BAD is DENIED even when may_relay (there is nothing
 * well-formed to deliver or relay); no domain is DENIED unless it is the
 * bare postmaster; any routing flag is RELAY or DENIED by may_relay,
 * whatever the domain; otherwise the domain's closest covering entry in
 * the overlay decides, or if the overlay has none, the one in accepted:
 * AUTHORITATIVE, INTERNAL_RELAY or EXTERNAL_RELAY make it LOCAL, anything
 * else (none, REMOVED, LISTED) makes it RELAY or DENIED by may_relay. */
enum pol_rcpt_result pol_rcpt_decide(const struct pol_addr *a,
				     const struct pol_domains *accepted,
				     const struct pol_domains *overlay,
				     bool may_relay, int *type);

/* Sender/recipient restriction lists compiled from struct ctl_addr_list
 * entries ("user@dom", "dom", ".dom"). Built by one thread, then
 * read-only. C heap, allocated at create only. */
struct pol_addrlist;

struct pol_addrlist *pol_addrlist_create(uint32_t capacity);
void pol_addrlist_free(struct pol_addrlist *l);
/* entry as in the configuration, NUL-terminated: "user@dom" (parsed and
 * normalised like an envelope address: a quoted local part is unquoted;
 * a route or a malformed address is -EINVAL), "dom" (that domain only),
 * ".dom" or "*.dom" (dom and every name below it, as in struct
 * ctl_addr_list). Adding an entry already held changes nothing. 0,
 * -ENOSPC, -EINVAL. */
int pol_addrlist_add(struct pol_addrlist *l, const char *entry);
/* True when the normalised address matches an entry: the whole address
 * (local part compared case-sensitively, domain case-insensitively), its
 * domain, or a parent domain entered with a leading dot. An address
 * literal matches only whole-address entries written with the same
 * literal ("u@[192.0.2.1]"); a malformed address (POL_ADDR_BAD) or one
 * without a domain matches nothing. Hot path: no allocation. */
bool pol_addrlist_match(const struct pol_addrlist *l,
			const struct pol_addr *a);
uint32_t pol_addrlist_count(const struct pol_addrlist *l);

#endif /* MXG_POLICY_ADDR_H */
