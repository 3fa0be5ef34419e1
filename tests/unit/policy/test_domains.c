/*
 * test_domains.c - the domain hash (dataplane/policy/domains.h): exact and
 * subdomain entries, case, trailing dots, look-alikes, removal and
 * tombstones, 100,000 entries against an independent check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

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

#define L(d, s) pol_domains_lookup(d, s, strlen(s))

int main(void)
{
	struct pol_domains *d = pol_domains_create(16);
	struct pol_domains *big;
	const uint32_t N = 100000;
	char name[64];
	unsigned bad = 0;

	CHECK(d && L(d, "example.com") == POL_DOM_NONE, "empty table");
	CHECK(pol_domains_add(d, "Example.COM.", 12, false,
			      POL_DOM_AUTHORITATIVE) == 0, "add");
	CHECK(L(d, "example.com") == POL_DOM_AUTHORITATIVE, "case and dot");
	CHECK(L(d, "EXAMPLE.com.") == POL_DOM_AUTHORITATIVE, "query dot");
	CHECK(L(d, "a.example.com") == POL_DOM_NONE, "exact is exact");
	CHECK(L(d, "xexample.com") == POL_DOM_NONE, "no suffix match");
	CHECK(L(d, "ex\xd0\xb0mple.com") == POL_DOM_NONE,
	      "Cyrillic a is not a");
	CHECK(pol_domains_add(d, "corp.example", 12, true,
			      POL_DOM_INTERNAL_RELAY) == 0, "add subtree");
	CHECK(L(d, "corp.example") == POL_DOM_INTERNAL_RELAY, "subtree self");
	CHECK(L(d, "x.y.corp.example") == POL_DOM_INTERNAL_RELAY,
	      "subtree below");
	CHECK(L(d, "xcorp.example") == POL_DOM_NONE, "label boundary");
	CHECK(pol_domains_add(d, "a.corp.example", 14, false,
			      POL_DOM_EXTERNAL_RELAY) == 0, "more specific");
	CHECK(L(d, "a.corp.example") == POL_DOM_EXTERNAL_RELAY,
	      "closest entry wins");
	CHECK(L(d, "b.a.corp.example") == POL_DOM_INTERNAL_RELAY,
	      "an exact entry does not cover below");
	CHECK(pol_domains_add(d, "", 0, false, POL_DOM_LISTED) == -EINVAL,
	      "empty refused");
	CHECK(pol_domains_add(d, "a..b", 4, false, POL_DOM_LISTED) < 0,
	      "empty label refused");
	CHECK(pol_domains_add(d, "example.com", 11, false, POL_DOM_REMOVED) == 0,
	      "replace type");
	CHECK(L(d, "example.com") == POL_DOM_REMOVED, "replaced");
	CHECK(pol_domains_del(d, "example.com", 11, false) == 0, "delete");
	CHECK(L(d, "example.com") == POL_DOM_NONE, "deleted");
	CHECK(L(d, "corp.example") == POL_DOM_INTERNAL_RELAY,
	      "probing continues past a tombstone");
	CHECK(pol_domains_del(d, "example.com", 11, false) == -ENOENT,
	      "double delete");

	big = pol_domains_create(N);
	for (uint32_t i = 0; i < N; i++) {
		int n = snprintf(name, sizeof(name), "d%u.example%u.test", i,
				 i % 97);

		if (pol_domains_add(big, name, (size_t)n, i % 3 == 0,
				    POL_DOM_AUTHORITATIVE) < 0)
			bad++;
	}
	CHECK(bad == 0 && pol_domains_count(big) == N, "%u adds failed", bad);
	CHECK(pol_domains_add(big, "one.more", 8, false, POL_DOM_LISTED) ==
		      -ENOSPC, "capacity is a bound");
	bad = 0;
	for (uint32_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "x.d%u.example%u.test", i, i % 97);
		if ((L(big, name) != POL_DOM_NONE) != (i % 3 == 0))
			bad++;
		snprintf(name, sizeof(name), "D%u.EXAMPLE%u.test", i, i % 97);
		if (L(big, name) != POL_DOM_AUTHORITATIVE)
			bad++;
		snprintf(name, sizeof(name), "d%u.example%u.test", i + N,
			 i % 97);
		if (L(big, name) != POL_DOM_NONE)
			bad++;
	}
	CHECK(bad == 0, "100,000 domains: %u wrong answers", bad);
	printf("domains: %u entries, %zu bytes\n", pol_domains_count(big),
	       pol_domains_memory(big));
	pol_domains_free(big);
	pol_domains_free(d);
	printf("domains: %d checks, %d failures\n", checks, fails);
	return fails ? 1 : 0;
}
