/*
 * test_domains.c - unit tests of dataplane/policy/domains.{h,c}: exact
 * and subdomain entries, case and trailing dot, non-ASCII look-alikes,
 * malformed names, capacity, arena churn, 100,000 domains against a
 * model, and the overlay semantics seen through pol_rcpt_decide.
 *
 * Single-threaded, no EAL (the domain tables use the C heap). Exits
 * non-zero on any failure.
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

#define S(x) (x), strlen(x)

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static enum pol_dom_type look(const struct pol_domains *d, const char *n)
{
	return pol_domains_lookup(d, n, strlen(n));
}

static void test_basics(void)
{
	struct pol_domains *d = pol_domains_create(16);
	char buf[300];

	CHECK(d != NULL);
	if (!d)
		return;
	CHECK(look(d, "example.com") == POL_DOM_NONE);
	CHECK(pol_domains_add(d, S("example.com"), false,
			      POL_DOM_AUTHORITATIVE) == 0);
	CHECK(pol_domains_count(d) == 1);
	CHECK(look(d, "example.com") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "EXAMPLE.COM") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "ExAmPlE.cOm") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "example.com.") == POL_DOM_AUTHORITATIVE);
	/* Exact: nothing below, nothing beside. */
	CHECK(look(d, "a.example.com") == POL_DOM_NONE);
	CHECK(look(d, "example.co") == POL_DOM_NONE);
	CHECK(look(d, "example.comm") == POL_DOM_NONE);
	CHECK(look(d, "xexample.com") == POL_DOM_NONE);
	CHECK(look(d, "com") == POL_DOM_NONE);
	/* Only one trailing dot is ignored; no leading or empty label. */
	CHECK(look(d, "example.com..") == POL_DOM_NONE);
	CHECK(look(d, ".example.com") == POL_DOM_NONE);
	CHECK(look(d, "example..com") == POL_DOM_NONE);
	CHECK(look(d, "") == POL_DOM_NONE);
	CHECK(look(d, ".") == POL_DOM_NONE);
	/* The name need not be NUL-terminated. */
	CHECK(pol_domains_lookup(d, "example.comXYZ", 11) ==
	      POL_DOM_AUTHORITATIVE);
	CHECK(pol_domains_lookup(d, "example.com.XYZ", 12) ==
	      POL_DOM_AUTHORITATIVE);

	/* A subdomain entry of the same name is a second entry: the exact
	 * one still wins for the name itself. */
	CHECK(pol_domains_add(d, S("Example.COM."), true,
			      POL_DOM_INTERNAL_RELAY) == 0);
	CHECK(pol_domains_count(d) == 2);
	CHECK(look(d, "example.com") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "a.example.com") == POL_DOM_INTERNAL_RELAY);
	CHECK(look(d, "A.B.C.EXAMPLE.COM.") == POL_DOM_INTERNAL_RELAY);
	CHECK(look(d, "aexample.com") == POL_DOM_NONE);
	CHECK(look(d, "a..example.com") == POL_DOM_NONE);
	CHECK(look(d, "-.example.com") == POL_DOM_INTERNAL_RELAY);
	CHECK(look(d, "a b.example.com") == POL_DOM_NONE);
	CHECK(look(d, "a@b.example.com") == POL_DOM_NONE);
	CHECK(look(d, "a%b.example.com") == POL_DOM_NONE);
	CHECK(pol_domains_get(d, S("example.com"), true) ==
	      POL_DOM_INTERNAL_RELAY);
	CHECK(pol_domains_get(d, S("a.example.com"), true) == POL_DOM_NONE);

	/* The closest covering entry decides. */
	CHECK(pol_domains_add(d, S("b.example.com"), true,
			      POL_DOM_EXTERNAL_RELAY) == 0);
	CHECK(look(d, "x.b.example.com") == POL_DOM_EXTERNAL_RELAY);
	CHECK(look(d, "b.example.com") == POL_DOM_EXTERNAL_RELAY);
	CHECK(look(d, "c.example.com") == POL_DOM_INTERNAL_RELAY);
	/* Replace keeps the count. */
	CHECK(pol_domains_add(d, S("B.example.com"), true, POL_DOM_LISTED) ==
	      0);
	CHECK(pol_domains_count(d) == 3);
	CHECK(look(d, "x.b.example.com") == POL_DOM_LISTED);

	/* Delete needs the same subdomains flag. */
	CHECK(pol_domains_del(d, S("example.com"), false) == 0);
	CHECK(pol_domains_del(d, S("example.com"), false) == -ENOENT);
	CHECK(look(d, "example.com") == POL_DOM_INTERNAL_RELAY);
	CHECK(pol_domains_del(d, S("b.example.com"), false) == -ENOENT);
	CHECK(pol_domains_del(d, S("EXAMPLE.com."), true) == 0);
	CHECK(look(d, "example.com") == POL_DOM_NONE);
	CHECK(look(d, "c.example.com") == POL_DOM_NONE);
	CHECK(look(d, "x.b.example.com") == POL_DOM_LISTED);
	CHECK(pol_domains_count(d) == 1);

	/* A subdomain entry for a TLD covers everything in it. */
	CHECK(pol_domains_add(d, S("test"), true, POL_DOM_LISTED) == 0);
	CHECK(look(d, "a.b.c.test") == POL_DOM_LISTED);
	CHECK(look(d, "test") == POL_DOM_LISTED);
	CHECK(look(d, "testx") == POL_DOM_NONE);

	/* Bad names and types. */
	CHECK(pol_domains_add(d, S(""), false, POL_DOM_LISTED) == -EINVAL);
	CHECK(pol_domains_add(d, S("."), false, POL_DOM_LISTED) == -EINVAL);
	CHECK(pol_domains_add(d, S(".a.com"), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("a..com"), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("a.com.."), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("a b.com"), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("a@b.com"), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("[1.2.3.4]"), false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, "a\0b.com", 7, false, POL_DOM_LISTED) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, S("a.com"), false, POL_DOM_NONE) == -EINVAL);
	CHECK(pol_domains_add(d, S("a.com"), false, (enum pol_dom_type)99) ==
	      -EINVAL);
	CHECK(pol_domains_add(d, NULL, 3, false, POL_DOM_LISTED) == -EINVAL);
	/* Label of 63 fine, 64 not; 253 octets fine (254 with the dot),
	 * 254 not. */
	memset(buf, 'a', 64);
	strcpy(buf + 64, ".com");
	CHECK(pol_domains_add(d, S(buf), false, POL_DOM_LISTED) == -EINVAL);
	CHECK(pol_domains_add(d, S(buf + 1), false, POL_DOM_LISTED) == 0);
	CHECK(look(d, buf + 1) == POL_DOM_LISTED);
	CHECK(look(d, buf) == POL_DOM_NONE);
	for (int i = 0; i < 253; i++)
		buf[i] = (i % 50 == 49) ? '.' : 'b';
	buf[253] = '\0';
	CHECK(pol_domains_add(d, S(buf), false, POL_DOM_LISTED) == 0);
	CHECK(look(d, buf) == POL_DOM_LISTED);
	buf[253] = '.';
	buf[254] = '\0';
	CHECK(look(d, buf) == POL_DOM_LISTED);
	CHECK(pol_domains_add(d, S(buf), false, POL_DOM_LISTED) == 0);
	buf[253] = 'b';
	CHECK(pol_domains_add(d, S(buf), false, POL_DOM_LISTED) == -EINVAL);
	CHECK(look(d, buf) == POL_DOM_NONE);
	CHECK(pol_domains_memory(d) > 0);
	pol_domains_free(d);
}

static void test_lookalikes(void)
{
	struct pol_domains *d = pol_domains_create(8);
	/* U+0430 CYRILLIC SMALL LETTER A, U+0410 its capital, U+043E
	 * small o, U+FF0E FULLWIDTH FULL STOP. */
	const char *cyr_a = "ex\xd0\xb0mple.com";
	const char *cyr_A = "EX\xd0\x90MPLE.COM";

	CHECK(d != NULL);
	if (!d)
		return;
	CHECK(pol_domains_add(d, S("example.com"), true,
			      POL_DOM_AUTHORITATIVE) == 0);
	CHECK(look(d, cyr_a) == POL_DOM_NONE);
	CHECK(look(d, cyr_A) == POL_DOM_NONE);
	CHECK(look(d, "ex\xd0\xb0mple.com.") == POL_DOM_NONE);
	CHECK(look(d, "\xd0\xbe.example.com") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "example\xef\xbc\x8e"
		      "com") == POL_DOM_NONE);
	CHECK(look(d, "xn--exmple-cua.com") == POL_DOM_NONE);
	CHECK(look(d, "example.\xd1\x81om") == POL_DOM_NONE); /* Cyr. es */
	/* An entry with non-ASCII octets matches only those octets:
	 * no folding beyond ASCII (0xC1 vs 0xE1 would fold in Latin-1). */
	CHECK(pol_domains_add(d, S(cyr_a), false, POL_DOM_LISTED) == 0);
	CHECK(look(d, cyr_a) == POL_DOM_LISTED);
	CHECK(look(d, "EX\xd0\xb0MPLE.COM") == POL_DOM_LISTED);
	CHECK(look(d, cyr_A) == POL_DOM_NONE);
	CHECK(look(d, "example.com") == POL_DOM_AUTHORITATIVE);
	CHECK(pol_domains_add(d, S("\xc1.test"), false, POL_DOM_LISTED) == 0);
	CHECK(look(d, "\xc1.test") == POL_DOM_LISTED);
	CHECK(look(d, "\xe1.test") == POL_DOM_NONE);
	pol_domains_free(d);
}

static void test_capacity_churn(void)
{
	struct pol_domains *d = pol_domains_create(4);
	char name[260];
	unsigned bad = 0;

	CHECK(d != NULL);
	if (!d)
		return;
	CHECK(pol_domains_add(d, S("a.test"), false, POL_DOM_LISTED) == 0);
	CHECK(pol_domains_add(d, S("b.test"), false, POL_DOM_LISTED) == 0);
	CHECK(pol_domains_add(d, S("c.test"), false, POL_DOM_LISTED) == 0);
	CHECK(pol_domains_add(d, S("c.test"), true, POL_DOM_LISTED) == 0);
	CHECK(pol_domains_add(d, S("d.test"), false, POL_DOM_LISTED) ==
	      -ENOSPC);
	CHECK(pol_domains_add(d, S("a.test"), false, POL_DOM_AUTHORITATIVE) ==
	      0);
	CHECK(look(d, "a.test") == POL_DOM_AUTHORITATIVE);
	CHECK(look(d, "d.test") == POL_DOM_NONE);
	CHECK(pol_domains_del(d, S("b.test"), false) == 0);
	CHECK(pol_domains_add(d, S("d.test"), false, POL_DOM_LISTED) == 0);
	CHECK(look(d, "d.test") == POL_DOM_LISTED);
	CHECK(look(d, "b.test") == POL_DOM_NONE);
	CHECK(pol_domains_count(d) == 4);

	/* Churn of long names many times the arena: compaction keeps the
	 * live ones intact. */
	for (int i = 0; i < 20000; i++) {
		int len = 100 + (int)(rnd() % 140); /* + "19999.test" <= 253 */

		for (int k = 0; k < len; k++)
			name[k] = (k % 50 == 49) ? '.' : (char)('a' + k % 26);
		len = snprintf(name + len, 20, "%d.test", i) + len;
		if (pol_domains_del(d, S("d.test"), false) != 0)
			bad++;
		if (pol_domains_add(d, name, (size_t)len, false,
				    POL_DOM_LISTED) != 0)
			bad++;
		if (pol_domains_lookup(d, name, (size_t)len) != POL_DOM_LISTED)
			bad++;
		if (pol_domains_del(d, name, (size_t)len, false) != 0)
			bad++;
		if (pol_domains_add(d, S("d.test"), false, POL_DOM_LISTED))
			bad++;
		if (look(d, "a.test") != POL_DOM_AUTHORITATIVE ||
		    look(d, "x.c.test") != POL_DOM_LISTED)
			bad++;
	}
	CHECK(bad == 0);
	CHECK(pol_domains_count(d) == 4);
	pol_domains_free(d);
	CHECK(pol_domains_create(0) == NULL && errno == EINVAL);
}

#define BIG 100000

static void big_name(char *buf, int i, uint32_t salt)
{
	snprintf(buf, 64, "host%d-%08x.zone%d.Example%d.TEST", i, salt, i % 97,
		 i % 7);
}

static void test_hundred_thousand(void)
{
	struct pol_domains *d = pol_domains_create(BIG);
	uint32_t *salt = malloc(sizeof(*salt) * BIG);
	bool *live = calloc(BIG, sizeof(*live));
	char name[80], q[100];
	unsigned bad = 0;

	CHECK(d != NULL && salt != NULL && live != NULL);
	if (!d || !salt || !live)
		return;
	for (int i = 0; i < BIG; i++) {
		salt[i] = (uint32_t)rnd();
		big_name(name, i, salt[i]);
		/* Every 10th a subdomain entry. */
		if (pol_domains_add(d, S(name), i % 10 == 0,
				    (enum pol_dom_type)(1 + i % 3)) != 0)
			bad++;
		live[i] = true;
	}
	CHECK(bad == 0);
	CHECK(pol_domains_count(d) == BIG);
	big_name(name, BIG, 1);
	CHECK(pol_domains_add(d, S(name), false, POL_DOM_LISTED) == -ENOSPC);
	for (int pass = 0; pass < 2; pass++) {
		bad = 0;
		for (int i = 0; i < BIG; i++) {
			enum pol_dom_type want =
				live[i] ? (enum pol_dom_type)(1 + i % 3)
					: POL_DOM_NONE;

			big_name(name, i, salt[i]);
			for (char *c = name; *c; c++)
				if (rnd() & 1)
					*c = (char)(*c >= 'a' && *c <= 'z'
							    ? *c - 32
							    : *c);
			if (look(d, name) != want)
				bad++;
			/* Below it: only subdomain entries cover. */
			snprintf(q, sizeof(q), "mx.%s", name);
			if (look(d, q) != (i % 10 == 0 ? want : POL_DOM_NONE))
				bad++;
			/* A near miss never matches. */
			big_name(name, i, salt[i] ^ 1);
			if (look(d, name) != POL_DOM_NONE)
				bad++;
		}
		CHECK(bad == 0);
		/* Remove every other one, then check again. */
		if (pass == 0) {
			bad = 0;
			for (int i = 0; i < BIG; i += 2) {
				big_name(name, i, salt[i]);
				if (pol_domains_del(d, S(name), i % 10 == 0))
					bad++;
				live[i] = false;
			}
			CHECK(bad == 0);
			CHECK(pol_domains_count(d) == BIG / 2);
		}
	}
	/* Refill to the brim with new names. */
	bad = 0;
	for (int i = 0; i < BIG; i += 2) {
		big_name(name, i, salt[i] + 7);
		if (pol_domains_add(d, S(name), false, POL_DOM_LISTED) != 0)
			bad++;
	}
	CHECK(bad == 0);
	CHECK(pol_domains_count(d) == BIG);
	big_name(name, 0, salt[0]);
	CHECK(look(d, name) == POL_DOM_NONE);
	big_name(name, 0, salt[0] + 7);
	CHECK(look(d, name) == POL_DOM_LISTED);
	big_name(name, 1, salt[1]);
	CHECK(look(d, name) == (enum pol_dom_type)(1 + 1 % 3));
	printf("test_domains: %d domains, %zu bytes reserved\n", BIG,
	       pol_domains_memory(d));
	pol_domains_free(d);
	free(salt);
	free(live);
}

static enum pol_rcpt_result decide(const char *addr,
				   const struct pol_domains *acc,
				   const struct pol_domains *over, bool relay,
				   int *type)
{
	struct pol_addr a;

	pol_addr_parse(addr, strlen(addr), &a);
	return pol_rcpt_decide(&a, acc, over, relay, type);
}

static void test_overlay(void)
{
	struct pol_domains *acc = pol_domains_create(8);
	struct pol_domains *ov = pol_domains_create(8);
	int type = -1;

	CHECK(acc != NULL && ov != NULL);
	if (!acc || !ov)
		return;
	CHECK(pol_domains_add(acc, S("ours.example"), false,
			      POL_DOM_AUTHORITATIVE) == 0);
	CHECK(pol_domains_add(acc, S("corp.example"), true,
			      POL_DOM_INTERNAL_RELAY) == 0);
	/* No overlay, empty overlay: the snapshot decides. */
	CHECK(decide("u@ours.example", acc, NULL, false, &type) ==
	      POL_RCPT_LOCAL);
	CHECK(type == POL_DOM_AUTHORITATIVE);
	CHECK(decide("u@x.corp.example", acc, ov, false, &type) ==
	      POL_RCPT_LOCAL);
	CHECK(type == POL_DOM_INTERNAL_RELAY);
	CHECK(decide("u@new.example", acc, ov, false, NULL) == POL_RCPT_DENIED);
	CHECK(decide("u@new.example", acc, ov, true, NULL) == POL_RCPT_RELAY);
	CHECK(decide("u@ours.example", NULL, NULL, false, NULL) ==
	      POL_RCPT_DENIED);

	/* A push adds a domain. */
	CHECK(pol_domains_add(ov, S("new.example"), false,
			      POL_DOM_EXTERNAL_RELAY) == 0);
	type = -1;
	CHECK(decide("u@NEW.example.", acc, ov, false, &type) ==
	      POL_RCPT_LOCAL);
	CHECK(type == POL_DOM_EXTERNAL_RELAY);
	CHECK(decide("u@a.new.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);

	/* A push removes one: relaying again. */
	CHECK(pol_domains_add(ov, S("ours.example"), false, POL_DOM_REMOVED) ==
	      0);
	CHECK(decide("u@ours.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	CHECK(decide("u@ours.example", acc, ov, true, NULL) == POL_RCPT_RELAY);
	CHECK(decide("u@ours.example", acc, NULL, false, NULL) ==
	      POL_RCPT_LOCAL);
	/* An exact tombstone leaves the names below to the snapshot. */
	CHECK(pol_domains_add(ov, S("x.corp.example"), false,
			      POL_DOM_REMOVED) == 0);
	CHECK(decide("u@x.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	CHECK(decide("u@y.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_LOCAL);
	CHECK(decide("u@a.x.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_LOCAL);
	/* A subdomain tombstone hides the whole tree. */
	CHECK(pol_domains_add(ov, S("corp.example"), true, POL_DOM_REMOVED) ==
	      0);
	CHECK(decide("u@corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	CHECK(decide("u@y.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	/* Re-adding replaces the tombstone; a closer overlay entry wins
	 * over a farther tombstone. */
	CHECK(pol_domains_add(ov, S("ours.example"), false,
			      POL_DOM_AUTHORITATIVE) == 0);
	CHECK(decide("u@ours.example", acc, ov, false, NULL) == POL_RCPT_LOCAL);
	CHECK(pol_domains_add(ov, S("y.corp.example"), false,
			      POL_DOM_INTERNAL_RELAY) == 0);
	CHECK(decide("u@y.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_LOCAL);
	CHECK(decide("u@z.corp.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	/* A LISTED entry is not an accepted domain. */
	CHECK(pol_domains_add(ov, S("listed.example"), false, POL_DOM_LISTED) ==
	      0);
	CHECK(decide("u@listed.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	/* Routing tricks stay relaying even to an overlay domain. */
	CHECK(decide("u%them@new.example", acc, ov, false, NULL) ==
	      POL_RCPT_DENIED);
	pol_domains_free(acc);
	pol_domains_free(ov);
}

int main(void)
{
	test_basics();
	test_lookalikes();
	test_capacity_churn();
	test_hundred_thousand();
	test_overlay();
	printf("test_domains: %u checks, %u failures\n", checks, failures);
	return failures ? 1 : 0;
}
