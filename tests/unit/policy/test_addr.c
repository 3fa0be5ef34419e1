/*
 * test_addr.c - unit tests of dataplane/policy/addr.{h,c}: an open-relay
 * battery (every routing trick and malformed form against a gateway
 * whose only accepted domain is "ours.example"), normalisation and
 * classification, postmaster, and restriction lists.
 *
 * Single-threaded, no EAL. Exits non-zero on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"

static unsigned checks, failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__,         \
				__LINE__, #c);                                 \
		}                                                              \
	} while (0)

/* An address with its length (so NULs inside can be tested). */
#define A(s) s, sizeof(s) - 1

enum { L = POL_RCPT_LOCAL, R = POL_RCPT_RELAY, D = POL_RCPT_DENIED };

struct trick {
	const char *addr;
	size_t len;
	int with_relay; /* result when the client may relay */
	uint32_t must;	/* flags that must be set */
	const char *why;
};

/*
 * Every one of these must be DENIED for a client that may not relay.
 * For a client that may relay, routing tricks are RELAY (never LOCAL)
 * and malformed addresses are DENIED.
 */
static const struct trick battery[] = {
	{A("u%them.example@ours.example"), R, POL_ADDR_PERCENT, "percent hack"},
	{A("them.example!u@ours.example"), R, POL_ADDR_BANG, "bang path"},
	{A("@ours.example:u@them.example"), R, POL_ADDR_ROUTE, "source route"},
	{A("@ours.example,@ours.example:u@ours.example"), R, POL_ADDR_ROUTE,
	 "source route through ourselves to ourselves"},
	{A("u@them.example@ours.example"), R, POL_ADDR_AT_LOCAL, "two '@'"},
	{A("u@@ours.example"), R, POL_ADDR_AT_LOCAL, "doubled '@'"},
	{A("\"u@them.example\"@ours.example"), R,
	 POL_ADDR_AT_LOCAL | POL_ADDR_QUOTED, "quoted '@'"},
	{A("\"u%them.example\"@ours.example"), R,
	 POL_ADDR_PERCENT | POL_ADDR_QUOTED, "quoted '%'"},
	{A("\"them.example!u\"@ours.example"), R,
	 POL_ADDR_BANG | POL_ADDR_QUOTED, "quoted '!'"},
	{A("U%THEM.EXAMPLE@OURS.EXAMPLE"), R, POL_ADDR_PERCENT,
	 "percent hack, upper case"},
	{A("u%them.example@ours.example."), R, POL_ADDR_PERCENT,
	 "percent hack, trailing dot"},
	{A("them!u%x.example@ours.example"), R,
	 POL_ADDR_BANG | POL_ADDR_PERCENT, "bang and percent"},
	{A("\"u\\@them.example\"@ours.example"), R, POL_ADDR_AT_LOCAL,
	 "escaped '@' in quotes"},
	{A("\"u\\%them.example\"@ours.example"), R, POL_ADDR_PERCENT,
	 "escaped '%' in quotes"},
	{A("\"\\u\\@them.example\"@ours.example"), R, POL_ADDR_AT_LOCAL,
	 "escapes everywhere"},
	{A("@ours.example:\"u@them\"@ours.example"), R,
	 POL_ADDR_ROUTE | POL_ADDR_AT_LOCAL, "route and quoted '@'"},
	{A("u@[198.18.0.2]"), R, POL_ADDR_LITERAL, "IPv4 literal"},
	{A("u@[IPv6:2001:db8::1]"), R, POL_ADDR_LITERAL, "IPv6 literal"},
	{A("u@[ours.example]"), R, POL_ADDR_LITERAL, "our name as a literal"},
	{A("u@sub.ours.example"), R, 0, "subdomain, not accepted"},
	{A("u@ours.example.them.example"), R, 0, "ours as a prefix"},
	{A("u@them.example"), R, 0, "plain relay"},
	{A("U@THEM.EXAMPLE"), R, 0, "plain relay, upper case"},
	{A("u@xours.example"), R, 0, "ours as a suffix"},
	{A("u@ours.examp1e"), R, 0, "digit look-alike"},
	{A("u@\xd0\xbeurs.example"), R, POL_ADDR_NONASCII,
	 "Cyrillic o look-alike"},
	{A("u@\xd0\x9eURS.EXAMPLE"), R, POL_ADDR_NONASCII,
	 "Cyrillic O look-alike, upper case"},
	{A("u@ours\xef\xbc\x8e"
	   "example"),
	 R, POL_ADDR_NONASCII, "fullwidth full stop"},
	{A("u@xn--urs-9cd.example"), R, 0, "punycode variant"},
	{A("u@ours.example.."), D, POL_ADDR_BAD, "two trailing dots"},
	{A("u@.ours.example"), D, POL_ADDR_BAD, "leading dot"},
	{A("u@ours..example"), D, POL_ADDR_BAD, "empty label"},
	{A("u\\@them.example@ours.example"), D, POL_ADDR_BAD,
	 "backslash outside quotes"},
	{A("u\tx@ours.example"), D, POL_ADDR_BAD, "tab"},
	{A("u\r\nRCPT TO:<x@them.example>@ours.example"), D, POL_ADDR_BAD,
	 "CRLF injection"},
	{A("\"u\x01\"@ours.example"), D, POL_ADDR_BAD,
	 "control octet in quotes"},
	{A("\"u\\\x01\"@ours.example"), D, POL_ADDR_BAD,
	 "escaped control octet"},
	{A("u\x7f@ours.example"), D, POL_ADDR_BAD, "DEL"},
	{A("u\0@them.example@ours.example"), D, POL_ADDR_BAD,
	 "NUL in local part"},
	{A("u@ours.example\0.them.example"), D, POL_ADDR_BAD, "NUL in domain"},
	{A("@ours.example"), D, POL_ADDR_BAD, "empty local part"},
	{A("\"\"@ours.example"), D, POL_ADDR_BAD, "empty quoted local part"},
	{A("u@"), D, POL_ADDR_BAD, "empty domain"},
	{A("u@ours.example@"), D, POL_ADDR_BAD, "empty domain after '@'"},
	{A("@:u@ours.example"), D, POL_ADDR_BAD, "empty route"},
	{A("@ours.example,:u@ours.example"), D, POL_ADDR_BAD,
	 "route with empty hop"},
	{A("@ours.example u@them.example"), D, POL_ADDR_BAD,
	 "route without ':'"},
	{A("\"u\"@them.example@ours.example"), D, POL_ADDR_BAD,
	 "quoted, then '@' in the domain"},
	{A("\"u@ours.example"), D, POL_ADDR_BAD, "unterminated quote"},
	{A("u\"x\"@ours.example"), D, POL_ADDR_BAD, "quote inside atom"},
	{A("\"u\".x@ours.example"), D, POL_ADDR_BAD, "text after quotes"},
	{A("<u@them.example>@ours.example"), D, POL_ADDR_BAD, "angle brackets"},
	{A("u@them.example%ours.example"), D, POL_ADDR_BAD,
	 "'%' in the domain"},
	{A("u@ours.example:25"), D, POL_ADDR_BAD, "port in the domain"},
	{A("u @ours.example"), D, POL_ADDR_BAD, "space"},
	{A("u@ours.example "), D, POL_ADDR_BAD, "trailing space"},
	{A("u,v@ours.example"), D, POL_ADDR_BAD, "comma list"},
	{A("u@[198.18.0.2"), D, POL_ADDR_BAD, "unterminated literal"},
	{A("u@[]"), D, POL_ADDR_BAD, "empty literal"},
	{A("u@[1.2.3.4]x"), D, POL_ADDR_BAD, "text after literal"},
	/* issue 11: the SMTP engine's grammar (smtp_valid_mailbox) */
	{A("a..b@ours.example"), D, POL_ADDR_BAD, "empty atom (engine: 501)"},
	{A(".a@ours.example"), D, POL_ADDR_BAD, "leading dot"},
	{A("a.@ours.example"), D, POL_ADDR_BAD, "trailing dot in local part"},
	{A("u@ours_x.example"), D, POL_ADDR_BAD, "underscore in domain"},
	{A("u@-ours.example"), D, POL_ADDR_BAD, "label starts with '-'"},
	{A("u@ours-.example"), D, POL_ADDR_BAD, "label ends with '-'"},
	{A("\xc3" "x@ours.example"), D, POL_ADDR_BAD, "bad UTF-8"},
	{A("u%them.example"), D, POL_ADDR_NODOMAIN | POL_ADDR_PERCENT,
	 "percent hack without domain"},
	{A("them.example!u"), D, POL_ADDR_NODOMAIN | POL_ADDR_BANG,
	 "bang path without domain"},
	{A("\"u@them.example\""), D, POL_ADDR_NODOMAIN | POL_ADDR_AT_LOCAL,
	 "quoted address without domain"},
	{A("u"), D, POL_ADDR_NODOMAIN, "no domain, not postmaster"},
	{A("postmaster%them.example"), D, POL_ADDR_NODOMAIN,
	 "postmaster with percent"},
	{A("postmaster@them.example"), R, 0, "someone else's postmaster"},
	{A(""), D, POL_ADDR_BAD, "empty"},
};

static void test_battery(const struct pol_domains *acc)
{
	char big[400];
	struct pol_addr a;
	unsigned n = sizeof(battery) / sizeof(battery[0]);
	unsigned denied = 0;

	CHECK(n >= 30);
	for (unsigned i = 0; i < n; i++) {
		const struct trick *t = &battery[i];
		int type = -1;
		enum pol_rcpt_result r0, r1;

		pol_addr_parse(t->addr, t->len, &a);
		r0 = pol_rcpt_decide(&a, acc, NULL, false, &type);
		r1 = pol_rcpt_decide(&a, acc, NULL, true, &type);
		checks += 3;
		if (r0 != POL_RCPT_DENIED || (int)r1 != t->with_relay ||
		    (a.flags & t->must) != t->must) {
			failures++;
			fprintf(stderr,
				"FAIL battery %u (%s): result %d/%d, want "
				"%d/%d; flags %#x, want %#x set\n",
				i, t->why, r0, r1, D, t->with_relay, a.flags,
				t->must);
		}
		if (r0 == POL_RCPT_DENIED)
			denied++;
		/* The same trick in upper case is still denied. */
		{
			char up[300];

			for (size_t k = 0; k < t->len; k++)
				up[k] = (char)((t->addr[k] >= 'a' &&
						t->addr[k] <= 'z')
						       ? t->addr[k] - 32
						       : t->addr[k]);
			pol_addr_parse(up, t->len, &a);
			CHECK(pol_rcpt_decide(&a, acc, NULL, false, NULL) ==
			      POL_RCPT_DENIED);
		}
	}
	/* Overlong (RFC 5321 4.5.3.1.3: 254 octets without <>). */
	memset(big, 'a', sizeof(big));
	memcpy(big + 242, "@ours.example", 13); /* 255 octets */
	CHECK(pol_addr_parse(big, 255, &a) == -EINVAL);
	CHECK(a.flags & POL_ADDR_BAD);
	CHECK(pol_rcpt_decide(&a, acc, NULL, false, NULL) == POL_RCPT_DENIED);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);
	/* 254 octets, but a local part of 241: over RFC 5321 4.5.3.1.1's
	 * 64, which the SMTP engine refuses, so policy does too (issue 11:
	 * one grammar). */
	CHECK(pol_addr_parse(big + 1, 254, &a) == -EINVAL);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);
	/* A local part of exactly 64 octets is fine, 65 is not. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 64, "@ours.example", 13);
	CHECK(pol_addr_parse(big, 77, &a) == 0);
	CHECK(pol_rcpt_decide(&a, acc, NULL, false, NULL) == POL_RCPT_LOCAL);
	memset(big, 'a', sizeof(big));
	memcpy(big + 65, "@ours.example", 13);
	CHECK(pol_addr_parse(big, 78, &a) == -EINVAL);
	CHECK(pol_addr_parse(big, 400, &a) == -EINVAL);
	/* A 64-octet label and a 254-octet domain. */
	memset(big, 'b', sizeof(big));
	memcpy(big, "u@", 2);
	memcpy(big + 66, ".ours.example", 14);
	pol_addr_parse(big, strlen(big), &a);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);
	printf("test_addr: open-relay battery: %u of %u tricks denied\n",
	       denied, n);
}

static void test_local(const struct pol_domains *acc)
{
	static const struct {
		const char *addr;
		size_t len;
		const char *local, *domain;
	} ok[] = {
		{A("u@ours.example"), "u", "ours.example"},
		{A("U@OURS.EXAMPLE"), "U", "ours.example"},
		{A("u@ours.example."), "u", "ours.example"},
		{A("first.last+tag@Ours.Example"), "first.last+tag",
		 "ours.example"},
		{A("\"john doe\"@ours.example"), "john doe", "ours.example"},
		{A("\"a\\\"b\\\\c\"@ours.example"), "a\"b\\c", "ours.example"},
		{A("\xc3\xbcser@ours.example"), "\xc3\xbcser", "ours.example"},
		{A("o'brien@ours.example"), "o'brien", "ours.example"},
		{A("postmaster@ours.example"), "postmaster", "ours.example"},
	};
	struct pol_addr a;

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int type = -1;

		CHECK(pol_addr_parse(ok[i].addr, ok[i].len, &a) == 0);
		CHECK(strcmp(a.local, ok[i].local) == 0);
		CHECK(a.local_len == strlen(ok[i].local));
		CHECK(strcmp(a.domain, ok[i].domain) == 0);
		CHECK(a.domain_len == strlen(ok[i].domain));
		CHECK((a.flags & POL_ADDR_ROUTING) == 0);
		CHECK(pol_rcpt_decide(&a, acc, NULL, false, &type) ==
		      POL_RCPT_LOCAL);
		CHECK(type == POL_DOM_AUTHORITATIVE);
		CHECK(pol_rcpt_decide(&a, acc, NULL, true, &type) ==
		      POL_RCPT_LOCAL);
	}
	CHECK(pol_addr_parse(A("\xc3\xbcser@ours.example"), &a) == 0);
	CHECK(a.flags & POL_ADDR_NONASCII);
	CHECK(pol_addr_parse(A("\"john doe\"@ours.example"), &a) == 0);
	CHECK(a.flags == POL_ADDR_QUOTED);

	/* RFC 5321 4.5.1: bare postmaster, any case, quoted or not. */
	static const struct {
		const char *s;
		size_t len;
	} pm[] = {{A("postmaster")},
		  {A("Postmaster")},
		  {A("POSTMASTER")},
		  {A("\"postmaster\"")}};
	for (unsigned i = 0; i < 4; i++) {
		int type = -1;

		CHECK(pol_addr_parse(pm[i].s, pm[i].len, &a) == 0);
		CHECK(a.flags & POL_ADDR_NODOMAIN);
		CHECK(pol_rcpt_decide(&a, acc, NULL, false, &type) ==
		      POL_RCPT_LOCAL);
		CHECK(type == POL_DOM_NONE);
		CHECK(pol_rcpt_decide(&a, NULL, NULL, false, NULL) ==
		      POL_RCPT_LOCAL);
	}
	CHECK(pol_addr_parse(A("postmaste"), &a) == 0);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);
	CHECK(pol_addr_parse(A("postmasterx"), &a) == 0);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);
	CHECK(pol_addr_parse(A("p\xc3\xb6stmaster"), &a) == 0);
	CHECK(pol_rcpt_decide(&a, acc, NULL, true, NULL) == POL_RCPT_DENIED);

	/* Classification details. */
	CHECK(pol_addr_parse(A("@a.example,@b.example:U%X@OURS.Example."),
			     &a) == 0);
	CHECK(strcmp(a.local, "U%X") == 0);
	CHECK(strcmp(a.domain, "ours.example") == 0);
	CHECK(a.flags == (POL_ADDR_ROUTE | POL_ADDR_PERCENT));
	CHECK(pol_addr_parse(A("u@[IPv6:2001:DB8::1]"), &a) == 0);
	CHECK(strcmp(a.domain, "ipv6:2001:db8::1") == 0);
	CHECK(a.flags == POL_ADDR_LITERAL);
	CHECK(pol_addr_parse(A("u@[198.18.0.2]"), &a) == 0);
	CHECK(strcmp(a.domain, "198.18.0.2") == 0);
	CHECK(pol_addr_parse(A("a@b@c.example"), &a) == 0);
	CHECK(strcmp(a.local, "a@b") == 0 &&
	      strcmp(a.domain, "c.example") == 0);
	CHECK(pol_addr_parse(NULL, 0, &a) == -EINVAL);
	CHECK(a.flags & POL_ADDR_BAD);

	/* A subdomain entry makes the names below local. */
	{
		struct pol_domains *d = pol_domains_create(4);
		int type = -1;

		CHECK(d != NULL);
		if (!d)
			return;
		CHECK(pol_domains_add(d, "ours.example", 12, true,
				      POL_DOM_INTERNAL_RELAY) == 0);
		pol_addr_parse(A("u@sub.ours.example"), &a);
		CHECK(pol_rcpt_decide(&a, d, NULL, false, &type) ==
		      POL_RCPT_LOCAL);
		CHECK(type == POL_DOM_INTERNAL_RELAY);
		pol_addr_parse(A("u@ours.example.them.example"), &a);
		CHECK(pol_rcpt_decide(&a, d, NULL, false, NULL) ==
		      POL_RCPT_DENIED);
		pol_addr_parse(A("u%x@sub.ours.example"), &a);
		CHECK(pol_rcpt_decide(&a, d, NULL, false, NULL) ==
		      POL_RCPT_DENIED);
		pol_domains_free(d);
	}
}

static bool lmatch(const struct pol_addrlist *l, const char *addr)
{
	struct pol_addr a;

	pol_addr_parse(addr, strlen(addr), &a);
	return pol_addrlist_match(l, &a);
}

static void test_addrlist(void)
{
	struct pol_addrlist *l = pol_addrlist_create(16);

	CHECK(l != NULL);
	if (!l)
		return;
	CHECK(pol_addrlist_count(l) == 0);
	CHECK(!lmatch(l, "john@example.com"));
	CHECK(pol_addrlist_add(l, "john@example.com") == 0);
	CHECK(pol_addrlist_add(l, "Jane@Mixed.Example.") == 0);
	CHECK(pol_addrlist_add(l, "example.net") == 0);
	CHECK(pol_addrlist_add(l, ".example.org") == 0);
	CHECK(pol_addrlist_add(l, "*.Example.IO") == 0);
	CHECK(pol_addrlist_add(l, "\"john doe\"@example.com") == 0);
	CHECK(pol_addrlist_add(l, "u@[192.0.2.1]") == 0);
	CHECK(pol_addrlist_add(l, "192.0.2.1") == 0);
	CHECK(pol_addrlist_count(l) == 8);
	/* Re-adding changes nothing. */
	CHECK(pol_addrlist_add(l, "john@EXAMPLE.com") == 0);
	CHECK(pol_addrlist_add(l, "EXAMPLE.net") == 0);
	CHECK(pol_addrlist_count(l) == 8);

	/* Whole addresses: local part exact, domain any case. */
	CHECK(lmatch(l, "john@example.com"));
	CHECK(lmatch(l, "john@EXAMPLE.COM."));
	CHECK(!lmatch(l, "John@example.com"));
	CHECK(!lmatch(l, "JOHN@example.com"));
	CHECK(!lmatch(l, "bob@example.com"));
	CHECK(!lmatch(l, "john@sub.example.com"));
	CHECK(lmatch(l, "Jane@mixed.example"));
	CHECK(!lmatch(l, "jane@mixed.example"));
	CHECK(lmatch(l, "\"john doe\"@Example.com"));
	CHECK(!lmatch(l, "johndoe@example.com"));
	/* Quoting that unquotes to the same local part is the same. */
	CHECK(lmatch(l, "\"john\"@example.com"));
	CHECK(lmatch(l, "@relay.example:john@example.com"));
	/* Domain entries: exact, and dot = the domain and below. */
	CHECK(lmatch(l, "anyone@example.net"));
	CHECK(lmatch(l, "ANYONE@EXAMPLE.NET"));
	CHECK(!lmatch(l, "x@sub.example.net"));
	CHECK(!lmatch(l, "x@example.network"));
	CHECK(lmatch(l, "x@example.org"));
	CHECK(lmatch(l, "x@a.b.EXAMPLE.org"));
	CHECK(!lmatch(l, "x@notexample.org"));
	CHECK(lmatch(l, "x@b.example.io"));
	CHECK(!lmatch(l, "x@ex\xd0\xb0mple.net"));
	/* Literals: only the whole address with the literal. */
	CHECK(lmatch(l, "u@[192.0.2.1]"));
	CHECK(!lmatch(l, "v@[192.0.2.1]"));
	CHECK(!lmatch(l, "u@192.0.2.1.example"));
	CHECK(lmatch(l, "v@192.0.2.1"));
	/* Malformed or domainless addresses match nothing. */
	CHECK(!lmatch(l, "john@example.com@"));
	CHECK(!lmatch(l, "x@example..net"));
	CHECK(!lmatch(l, "example.net"));
	CHECK(!pol_addrlist_match(NULL, NULL));

	/* Bad entries. */
	CHECK(pol_addrlist_add(l, "") == -EINVAL);
	CHECK(pol_addrlist_add(l, "@example.com") == -EINVAL);
	CHECK(pol_addrlist_add(l, "a@") == -EINVAL);
	CHECK(pol_addrlist_add(l, "a b@example.com") == -EINVAL);
	CHECK(pol_addrlist_add(l, "@r.example:u@example.com") == -EINVAL);
	CHECK(pol_addrlist_add(l, "a..b.com") == -EINVAL);
	CHECK(pol_addrlist_add(l, ".") == -EINVAL);
	CHECK(pol_addrlist_add(l, "..example.com") == -EINVAL);
	CHECK(pol_addrlist_add(NULL, "a.com") == -EINVAL);
	CHECK(pol_addrlist_count(l) == 8);
	pol_addrlist_free(l);

	/* Capacity counts both kinds. */
	l = pol_addrlist_create(3);
	CHECK(l != NULL);
	if (!l)
		return;
	CHECK(pol_addrlist_add(l, "a@x.example") == 0);
	CHECK(pol_addrlist_add(l, "x.example") == 0);
	CHECK(pol_addrlist_add(l, ".x.example") == 0);
	CHECK(pol_addrlist_add(l, "b@x.example") == -ENOSPC);
	CHECK(pol_addrlist_add(l, "y.example") == -ENOSPC);
	CHECK(pol_addrlist_add(l, "a@X.example") == 0);
	CHECK(pol_addrlist_add(l, "X.example") == 0);
	CHECK(pol_addrlist_count(l) == 3);
	pol_addrlist_free(l);
	CHECK(pol_addrlist_create(0) == NULL);
}

int main(void)
{
	struct pol_domains *acc = pol_domains_create(4);

	CHECK(acc != NULL);
	if (!acc)
		return 1;
	CHECK(pol_domains_add(acc, "ours.example", 12, false,
			      POL_DOM_AUTHORITATIVE) == 0);
	test_battery(acc);
	test_local(acc);
	test_addrlist();
	pol_domains_free(acc);
	printf("test_addr: %u checks, %u failures\n", checks, failures);
	return failures ? 1 : 0;
}
