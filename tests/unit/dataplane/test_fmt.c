/*
 * test_fmt.c - mxg_fmt() writes exactly what snprintf() writes, returns
 * what it returns, and truncates where it truncates, for every format
 * shape the data path uses (log lines, replies, relay commands, the
 * Received: header) and for a seeded stream of random values; the
 * append helpers (mxg_sb_*) bound and count like it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/fmt.h"

static int failures;
static unsigned compared;
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

/* Both formatters, every buffer size from 0 to the full length + 2. */
#define SAME(...)                                                              \
	do {                                                                   \
		char want[512], got[512];                                      \
		int nw = snprintf(want, sizeof(want), __VA_ARGS__);            \
		int ng = mxg_fmt(got, sizeof(got), __VA_ARGS__);               \
		if (nw != ng || strcmp(want, got) != 0) {                      \
			fprintf(stderr,                                        \
				"FAIL line %d: snprintf %d \"%s\" mxg_fmt %d " \
				"\"%s\"\n",                                    \
				__LINE__, nw, want, ng, got);                  \
			failures++;                                            \
		}                                                              \
		for (size_t cap = 0; cap <= (size_t)nw + 2 && cap < 512;       \
		     cap++) {                                                  \
			char w2[512], g2[512];                                 \
			memset(w2, 'Z', sizeof(w2));                           \
			memset(g2, 'Z', sizeof(g2));                           \
			int a = snprintf(w2, cap, __VA_ARGS__);                \
			int b = mxg_fmt(g2, cap, __VA_ARGS__);                 \
			if (a != b || memcmp(w2, g2, cap + 1) != 0) {          \
				fprintf(stderr,                                \
					"FAIL line %d: cap %zu differs\n",     \
					__LINE__, cap);                        \
				failures++;                                    \
				break;                                         \
			}                                                      \
		}                                                              \
		compared++;                                                    \
	} while (0)

#ifndef __clang__
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static void test_shapes(void)
{
	const char *rcpt = "user@example.net";
	char none[1] = "";

	/* log.c: the prefix and the message line */
	SAME("ts=%lld.%03ld core=%u ", (long long)1796300000LL, 7L, 1u);
	SAME("ts=%lld.%03ld core=%u ", (long long)-5LL, 999L, 4294967295u);
	SAME("event=message sid=%s client=%s helo=\"%s\" listener=%s "
	     "from=<%s> rcpts=%u to=%s size=%llu backend=%s reply=\"%s\" "
	     "outcome=%s ms=%llu",
	     "675f0a1b00000001", "198.18.0.1", "client.mxgt.test", "mx",
	     "a@b", 1u, "<user@example.net>", 2048ULL, "198.18.9.3:2526",
	     "250 2.0.0 Ok: queued", "delivered", 0ULL);
	SAME("%s<%s>", ",", rcpt);
	SAME("%u %s %s", 250u, "2.1.5", "");
	/* client.c: the session id; backend.c */
	SAME("%08x%02x%06x", 0x675f0a1bu, 3u, 0xabcdeu);
	SAME("%08x%02x%06x", 0u, 0u, 0x1234567u);
	SAME("%s:%u", "198.18.9.3", 2526u);
	/* the engine's replies */
	SAME("%03u%c", 250u, '-');
	SAME("%03u%c", 5u, ' ');
	SAME("%s ", "2.1.0");
	SAME("SIZE %" PRIu64, (uint64_t)10485760);
	SAME("250-%s\r\n", "gw.bench.mxgt.test");
	SAME("250%c%s\r\n", ' ', "8BITMIME");
	SAME("%d.0.0", 4);
	SAME("%s Service not available, closing transmission channel",
	     "gw");
	/* the relay client's commands and XCLIENT */
	SAME("MAIL FROM:<%s>%s%s\r\n", "a@b", " ", "SIZE=2048");
	SAME("RCPT TO:<%s>%s%s\r\n", rcpt, "", none);
	SAME("EHLO %s\r\n", "gw.bench.mxgt.test");
	SAME(" %s=%s", "ADDR", "198.18.0.1");
	SAME("%u", 65535u);
	/* %.*s with and without NULs inside the precision */
	SAME("%.*s", 4, rcpt);
	SAME("%.*s", 0, rcpt);
	SAME("%.*s", 40, rcpt);
	SAME("%.*s", -1, rcpt);
	SAME("[%.3s]", "ab");
	/* widths, flags, lengths, signs */
	SAME("[%5s|%-5s|%5.2s]", "ab", "ab", "abc");
	SAME("[%*s|%-*s]", 6, "x", -6, "y");
	SAME("[%5d|%-5d|%05d|%-5d]", -42, -42, -42, 42);
	SAME("[%.3d|%5.3d|%.0d|%.0u]", 7, -7, 0, 0u);
	SAME("[%hhu %hu %hd %hhd]", (unsigned char)200, (unsigned short)60000,
	     (short)-3000, (signed char)-100);
	SAME("[%ld %lu %lld %llu]", -1L, 0UL, (long long)INT64_MIN,
	     (unsigned long long)UINT64_MAX);
	SAME("[%zu %zd %jd %ju %td]", (size_t)123, (ssize_t)-4,
	     (intmax_t)-9, (uintmax_t)9, (ptrdiff_t)-3);
	SAME("[%x %X %08X %lx %llx]", 0xdeadbeefu, 0xdeadbeefu, 0xabu,
	     0x1234UL, 0xfedcba9876543210ULL);
	SAME("[%i %d %d]", 0, INT32_MIN, INT32_MAX);
	SAME("[%c%c%3c%-3c]", 'a', 0x7f, 'b', 'c');
	SAME("100%% %s %%", "done");
	SAME("%s", "");
	SAME("no conversion at all");
	SAME("%p %p", (void *)0x1234, (void *)0);
}

/* Random values through the shapes the hot path uses. */
static void test_random(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char s[64];

	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t n = x % 40;

		for (size_t k = 0; k < n; k++)
			s[k] = (char)(' ' + ((x >> (k % 56)) + k) % 95);
		s[n] = '\0';
		SAME("ts=%lld.%03ld core=%u %s=%llu %08x %d %.*s|%-9s|",
		     (long long)(x >> 20), (long)(x % 1000), (unsigned)(x >> 40),
		     s, (unsigned long long)x, (unsigned)x, (int)(x >> 33),
		     (int)(x % 50), s, s);
	}
}

static void test_sb(void)
{
	char b[8];
	struct mxg_sb sb;

	mxg_sb_init(&sb, b, sizeof(b));
	mxg_sb_str(&sb, "250 ");
	mxg_sb_uint(&sb, 42, 10, false, 3);
	CHECK(strcmp(b, "250 042") == 0 && sb.len == 7);
	mxg_sb_ch(&sb, 'x');
	mxg_sb_uint(&sb, 0xab, 16, true, 0);
	CHECK(strcmp(b, "250 042") == 0 && sb.len == 10); /* bounded */
	mxg_sb_init(&sb, b, 0);
	mxg_sb_str(&sb, "abc");
	CHECK(sb.len == 3);
}

int main(void)
{
	test_shapes();
	test_random();
	test_sb();
	printf("fmt: %u formats compared with snprintf, %d failures\n",
	       compared, failures);
	return failures ? 1 : 0;
}
