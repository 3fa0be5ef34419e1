/*
 * test_addr.c - address normalisation and the relay decision
 * (dataplane/policy/addr.h): an open-relay battery of routing tricks, each
 * of which must be refused for a client that may not relay, plus the
 * plain cases that must pass, and restriction lists.
 */
#include <stdio.h>
#include <string.h>

#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"

static int fails, checks;

#define CHECK(c, ...)                                                          \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			fails++;                                               \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

static const char *res_name(enum pol_rcpt_result r)
{
	return r == POL_RCPT_LOCAL ? "LOCAL"
	       : r == POL_RCPT_RELAY ? "RELAY"
				     : "DENIED";
}

static enum pol_rcpt_result decide(const struct pol_domains *acc,
				   const struct pol_domains *ov,
				   const char *addr, size_t len, bool relay)
{
	struct pol_addr a;

	pol_addr_parse(addr, len, &a);
	return pol_rcpt_decide(&a, acc, ov, relay, NULL);
}

#define D(acc, s, relay) decide(acc, NULL, s, sizeof(s) - 1, relay)

/* Relay tricks against the accepted domain ours.example. Every one must be
 * refused for a client that may not relay. */
static const char *const tricks[] = {
	"u%them.example@ours.example",
	"u%them.example%ours.example@ours.example",
	"them.example!u@ours.example",
	"ours.example!them.example!u@ours.example",
	"u@them.example@ours.example",
	"u@them.example@OURS.EXAMPLE",
	"\"u@them.example\"@ours.example",
	"\"u%them.example\"@ours.example",
	"\"them.example!u\"@ours.example",
	"\"u\\@them.example\"@ours.example",
	"\"u@them.example\"@ours.example.",
	"U%THEM.EXAMPLE@OURS.EXAMPLE",
	"THEM.EXAMPLE!U@OURS.EXAMPLE",
	"@ours.example:u@them.example",
	"@ours.example,@x.example:u@them.example",
	"@ours.example:u%them.example@ours.example",
	"u@[198.18.0.2]",
	"u@[IPv6:2001:db8::1]",
	"u%them.example@[198.18.0.2]",
	"u@them.example",
	"u@them.example.",
	"u@ours.example.them.example",
	"u@sub.ours.example",
	"u@ours.examp1e",
	"u@xn--ours-example-7xa.example",
	"u@\xd0\xbeurs.example",          /* Cyrillic o */
	"u@ours.ex\xc9\x91mple",          /* Latin alpha */
	"u@ours..example",
	"u@.ours.example",
	"u@ours.example..",
	"u@",
	"@ours.example",
	"u@ours.example@",
	"u@@ours.example",
	"u@ours.example\r\nRCPT TO:<x@them.example>",
	"u@ours.example;them.example",
	"u@ours.example,v@them.example",
	"u@ours.example them.example",
	"\"u@them.example@ours.example",
	"u\"@them.example\"@ours.example",
	"u@ours.example%them.example",
	"u@(comment)ours.example",
	"them.example:u@ours.example",
};

int main(void)
{
	struct pol_domains *acc = pol_domains_create(8);
	struct pol_domains *ov = pol_domains_create(8);
	struct pol_addrlist *l = pol_addrlist_create(16);
	struct pol_addr a;
	char big[400];
	unsigned n = 0;

	pol_domains_add(acc, "ours.example", 12, false, POL_DOM_AUTHORITATIVE);
	pol_domains_add(acc, "corp.example", 12, true, POL_DOM_INTERNAL_RELAY);

	/* plain addresses that must pass */
	CHECK(D(acc, "u@ours.example", false) == POL_RCPT_LOCAL, "plain");
	CHECK(D(acc, "U@OURS.EXAMPLE", false) == POL_RCPT_LOCAL, "case");
	CHECK(D(acc, "u@ours.example.", false) == POL_RCPT_LOCAL,
	      "one trailing dot is the same domain");
	CHECK(D(acc, "first.last+tag@ours.example", false) == POL_RCPT_LOCAL,
	      "dots and plus");
	CHECK(D(acc, "\"first last\"@ours.example", false) == POL_RCPT_LOCAL,
	      "a quoted local part without routing characters");
	CHECK(D(acc, "postmaster", false) == POL_RCPT_LOCAL, "bare postmaster");
	CHECK(D(acc, "PostMaster", false) == POL_RCPT_LOCAL,
	      "bare postmaster, any case");
	CHECK(D(acc, "root", false) == POL_RCPT_DENIED,
	      "a bare name other than postmaster");
	CHECK(D(acc, "u@corp.example", false) == POL_RCPT_LOCAL,
	      "subdomain entry covers the domain");
	CHECK(D(acc, "u@a.b.corp.example", false) == POL_RCPT_LOCAL,
	      "subdomain entry covers names below");
	CHECK(D(acc, "\xc3\xbc@ours.example", false) == POL_RCPT_LOCAL,
	      "a UTF-8 local part at an accepted domain");

	for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		enum pol_rcpt_result r =
			decide(acc, NULL, tricks[i], strlen(tricks[i]), false);

		CHECK(r == POL_RCPT_DENIED, "trick %zu <%s>: %s", i,
		      tricks[i], res_name(r));
		r = decide(acc, NULL, tricks[i], strlen(tricks[i]), true);
		CHECK(r != POL_RCPT_LOCAL, "trick %zu <%s> for a relay client "
		      "is relaying, not local: %s", i, tricks[i], res_name(r));
		n++;
	}
	/* NUL inside the address */
	CHECK(decide(acc, NULL, "u@ours.example\0x", 16, false) ==
		      POL_RCPT_DENIED, "NUL inside");
	/* over-long */
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 13, "@ours.example", 13);
	CHECK(decide(acc, NULL, big, sizeof(big), false) == POL_RCPT_DENIED,
	      "400-octet address");
	n += 2;
	printf("open-relay battery: %u tricks, each refused\n", n);

	/* relay clients relay plain external addresses */
	CHECK(D(acc, "u@them.example", true) == POL_RCPT_RELAY, "relay");
	CHECK(D(acc, "u@ours.example", true) == POL_RCPT_LOCAL,
	      "local for a relay client");

	/* overlay: a pushed domain adds, a tombstone hides */
	pol_domains_add(ov, "pushed.example", 14, false, POL_DOM_AUTHORITATIVE);
	CHECK(decide(acc, ov, "u@pushed.example", 16, false) == POL_RCPT_LOCAL,
	      "overlay adds a domain");
	pol_domains_add(ov, "ours.example", 12, false, POL_DOM_REMOVED);
	CHECK(decide(acc, ov, "u@ours.example", 14, false) == POL_RCPT_DENIED,
	      "overlay tombstone hides an accepted domain");

	/* parse results */
	pol_addr_parse("\"a\\\"b\"@X.Example.", 17, &a);
	CHECK(strcmp(a.local, "a\"b") == 0 && strcmp(a.domain, "x.example") == 0
		      && (a.flags & POL_ADDR_QUOTED) && !(a.flags & POL_ADDR_BAD),
	      "unquote and lower-case: local '%s' domain '%s' flags %x",
	      a.local, a.domain, a.flags);
	pol_addr_parse("u%v@x", 5, &a);
	CHECK(a.flags & POL_ADDR_PERCENT, "percent flag");
	pol_addr_parse("@a:u@x", 6, &a);
	CHECK((a.flags & POL_ADDR_ROUTE) && strcmp(a.local, "u") == 0,
	      "source route stripped and flagged");
	pol_addr_parse("u@[1.2.3.4]", 11, &a);
	CHECK((a.flags & POL_ADDR_LITERAL) && strcmp(a.domain, "1.2.3.4") == 0,
	      "literal");

	/* restriction lists */
	CHECK(pol_addrlist_add(l, "Spammer@Bad.Example") == 0, "add address");
	CHECK(pol_addrlist_add(l, "whole.example") == 0, "add domain");
	CHECK(pol_addrlist_add(l, ".tree.example") == 0, "add subtree");
	CHECK(pol_addrlist_add(l, "") < 0, "empty entry refused");
	pol_addr_parse("Spammer@BAD.example", 19, &a);
	CHECK(pol_addrlist_match(l, &a), "address, domain case-insensitive");
	pol_addr_parse("spammer@bad.example", 19, &a);
	CHECK(!pol_addrlist_match(l, &a), "local part is case-sensitive");
	pol_addr_parse("x@WHOLE.example", 15, &a);
	CHECK(pol_addrlist_match(l, &a), "domain entry");
	pol_addr_parse("x@sub.whole.example", 19, &a);
	CHECK(!pol_addrlist_match(l, &a), "domain entry is exact");
	pol_addr_parse("x@a.tree.example", 16, &a);
	CHECK(pol_addrlist_match(l, &a), "subtree entry covers below");
	pol_addr_parse("x@tree.example", 14, &a);
	CHECK(pol_addrlist_match(l, &a), "subtree entry covers itself");
	pol_addr_parse("x@tree.example.org", 18, &a);
	CHECK(!pol_addrlist_match(l, &a), "no suffix confusion");

	pol_addrlist_free(l);
	pol_domains_free(acc);
	pol_domains_free(ov);
	printf("addr: %d checks, %d failures\n", checks, fails);
	return fails ? 1 : 0;
}
