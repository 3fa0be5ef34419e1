/*
 * test_smtp_mailbox.c - smtp_valid_mailbox(), the one address grammar of
 * the engine, the relay client and policy (issue 11): every octet in a
 * dot-atom and in a quoted local part, domain literals, SMTPUTF8, and
 * agreement with smtp_parse_path() on each case.
 */
#include <stdio.h>
#include <string.h>

#include "dataplane/smtp/smtp_parse.h"

static int fails, checks;

#define CHECK(c)                                                               \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			fails++;                                               \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);    \
		}                                                              \
	} while (0)

/* The validator and the engine's path parser must agree. */
static bool both(const char *a, size_t n, unsigned flags)
{
	char path[600];
	struct smtp_path out;
	size_t used = 0;
	bool v = smtp_valid_mailbox(a, n, flags);
	bool p;

	path[0] = '<';
	memcpy(path + 1, a, n);
	path[n + 1] = '>';
	p = smtp_parse_path(path, n + 2, flags, &used, &out) == SMTP_PATH_OK &&
	    used == n + 2;
	if (v != p) {
		fails++;
		printf("FAIL: validator %d, parser %d on <%.*s>\n", v, p,
		       (int)n, a);
	}
	checks++;
	return v;
}

#define B(s, f) both(s, sizeof(s) - 1, f)

int main(void)
{
	char buf[300];

	for (int c = 0; c < 256; c++) {
		bool atext = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') ||
			     (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
		bool qtext = c >= 32 && c <= 126 && c != '"' && c != '\\';
		size_t n;

		/* dot-atom: a<c>b@example.com */
		n = (size_t)snprintf(buf, sizeof(buf), "a%cb@example.com", 'x');
		buf[1] = (char)c;
		if (c >= 0x80)
			continue; /* lone octet >= 0x80 is bad UTF-8: below */
		CHECK(both(buf, n, 0) == (atext || c == '.'));
		/* quoted: "a<c>b"@example.com */
		n = (size_t)snprintf(buf, sizeof(buf), "\"axb\"@example.com");
		buf[2] = (char)c;
		CHECK(both(buf, n, 0) == (qtext || c == '\\')); /* "a\b": a pair */
		/* quoted pair: "a\<c>b"@example.com */
		n = (size_t)snprintf(buf, sizeof(buf), "\"a\\xb\"@example.com");
		buf[3] = (char)c;
		CHECK(both(buf, n, 0) == (c >= 32 && c <= 126));
	}
	/* the issue 11 addresses */
	CHECK(B("\"a>b\"@attacker.test", 0));
	CHECK(B("\"a<b\"@x.test", 0));
	CHECK(B("\"a@b\"@x.test", 0));
	CHECK(B("\"john doe\"@x.test", 0));
	CHECK(!B("a>b@x.test", 0));
	CHECK(!B("a..b@x.test", 0));
	CHECK(!B(".a@x.test", 0));
	CHECK(!B("a.@x.test", 0));
	CHECK(!B("\"unterminated@x.test", 0));
	CHECK(!B("\"a\"b@x.test", 0));
	CHECK(!B("a@x.test\r\nRSET", 0));
	/* domain literals */
	CHECK(B("u@[198.18.0.1]", 0));
	CHECK(B("u@[IPv6:2001:db8::1]", 0));
	CHECK(B("u@[tag:some-thing]", 0));
	CHECK(!B("u@[300.1.1.1]", 0));
	CHECK(!B("u@[1.2.3]", 0));
	CHECK(!B("u@[IPv6:zz::1]", 0));
	CHECK(!B("u@[198.18.0.1", 0));
	CHECK(!B("u@[]", 0));
	/* domains */
	CHECK(!B("u@-x.test", 0));
	CHECK(!B("u@x-.test", 0));
	CHECK(!B("u@x_y.test", 0));
	CHECK(!B("u@x..test", 0));
	CHECK(!B("u@x.test.", 0));
	CHECK(!B("u@", 0));
	CHECK(!B("@x.test", 0));
	/* SMTPUTF8 (RFC 6531) */
	CHECK(B("\xc3\xbcser@example.com", 0));
	CHECK(B("u@\xc3\xbc" "ber.example", 0));
	CHECK(B("\"\xe2\x82\xac x\"@example.com", 0));
	CHECK(!B("\xc3" "x@example.com", 0));
	CHECK(!B("\xed\xa0\x80@example.com", 0)); /* surrogate */
	CHECK(!B("\xc0\xaf@example.com", 0));     /* overlong */
	/* null path and postmaster */
	CHECK(smtp_valid_mailbox("", 0, SMTP_PATH_REVERSE));
	CHECK(!smtp_valid_mailbox("", 0, SMTP_PATH_FORWARD));
	CHECK(B("postmaster", SMTP_PATH_FORWARD));
	CHECK(B("PostMaster", SMTP_PATH_FORWARD));
	CHECK(!B("postmaster", SMTP_PATH_REVERSE));
	CHECK(!B("postmaste", SMTP_PATH_FORWARD));
	/* lengths: local part 64, path 256 with <> */
	memset(buf, 'a', 65);
	memcpy(buf + 64, "@x.test", 7);
	CHECK(both(buf, 71, 0));
	memset(buf, 'a', 65);
	memcpy(buf + 65, "@x.test", 7);
	CHECK(!both(buf, 72, 0));
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "u@", 2);
	for (int i = 2 + 60; i < 254; i += 61)
		buf[i] = '.';
	CHECK(both(buf, 254, 0));
	CHECK(!both(buf, 255, 0));
	printf("test_smtp_mailbox: %d checks, %d failures\n", checks, fails);
	return fails ? 1 : 0;
}
