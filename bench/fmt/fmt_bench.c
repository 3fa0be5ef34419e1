/*
 * fmt_bench.c - the formatting work of one message on the data path
 * (one 2 KiB message per connection: its log lines, the engine's replies,
 * the relay client's commands, the delivery copies), done with glibc's
 * snprintf and with mxg_fmt (dataplane/fmt.h), interleaved in rounds.
 * Time is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a loaded
 * machine slows both sides alike instead of deciding the result; the
 * best round of each is reported. Run by bench/fmt.sh. Not a test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/fmt.h"

typedef int (*fmt_fn)(char *, size_t, const char *, ...);

static volatile size_t sink;

/* The calls of one message, format strings as the code has them. */
static void one_message(fmt_fn f, char *b, size_t n)
{
	size_t k = 0;

	/* log lines: connect, message, session (prefix + body each) */
	for (int i = 0; i < 3; i++)
		k += (size_t)f(b, n, "ts=%lld.%03ld core=%u ",
			       1796300000LL + i, 123L, 0u);
	k += (size_t)f(b, n, "event=connect sid=%s client=%s:%u listener=%s%s%s",
		       "675f0a1b00000001", "198.18.9.3", 40001u, "mx", "", "");
	k += (size_t)f(b, n, "%s<%s>", "", "rcpt-000001@bench.test");
	k += (size_t)f(b, n, "%u %s %s", 250u, "2.0.0", "Ok: queued");
	k += (size_t)f(b, n,
		       "event=message sid=%s client=%s helo=\"%s\" listener=%s "
		       "from=<%s> rcpts=%u to=%s size=%llu backend=%s "
		       "reply=\"%s\" outcome=%s ms=%llu",
		       "675f0a1b00000001", "198.18.9.3", "mxgate-bench.test",
		       "mx", "s1@bench.test", 1u, "<rcpt-000001@bench.test>",
		       2048ULL, "198.18.9.3:2526", "250 2.0.0 Ok: queued",
		       "delivered", 0ULL);
	k += (size_t)f(b, n,
		       "event=session sid=%s client=%s:%u listener=%s "
		       "messages=%u rcpts=%u refused=%u bytes=%llu ms=%llu "
		       "end=%s",
		       "675f0a1b00000001", "198.18.9.3", 40001u, "mx", 1u, 1u,
		       0u, 2200ULL, 1ULL, "quit");
	/* engine replies: greeting, EHLO (9 lines), MAIL, RCPT, DATA, dot,
	 * QUIT: code + enh per reply */
	k += (size_t)f(b, n, "220 %s ESMTP", "gw.bench.mxgt.test");
	k += (size_t)f(b, n, "SIZE %llu", 10485760ULL);
	k += (size_t)f(b, n, "250-%s\r\n", "gw.bench.mxgt.test");
	for (int i = 0; i < 8; i++)
		k += (size_t)f(b, n, "250%c%s\r\n", i == 7 ? ' ' : '-',
			       "ENHANCEDSTATUSCODES");
	for (int i = 0; i < 5; i++) {
		k += (size_t)f(b, n, "%03u%c", 250u, ' ');
		k += (size_t)f(b, n, "%s ", "2.1.0");
	}
	/* relay client commands and the delivery copies */
	k += (size_t)f(b, n, "MAIL FROM:<%s>%s%s\r\n", "s1@bench.test", " ",
		       "SIZE=2048");
	k += (size_t)f(b, n, "RCPT TO:<%s>%s%s\r\n", "rcpt-000001@bench.test",
		       "", "");
	k += (size_t)f(b, n, "DATA\r\n");
	k += (size_t)f(b, n, "RSET\r\n");
	k += (size_t)f(b, n, "%.*s", 22, "rcpt-000001@bench.test");
	k += (size_t)f(b, n, "%.*s", 22, "rcpt-000001@bench.test");
	k += (size_t)f(b, n, "%s", "198.18.9.3:2526");
	sink += k;
}

static double cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double round_ns(fmt_fn f, int msgs)
{
	char b[1024];
	double t0 = cpu_ns();

	for (int i = 0; i < msgs; i++)
		one_message(f, b, sizeof(b));
	return (cpu_ns() - t0) / msgs;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	int msgs = argc > 2 ? atoi(argv[2]) : 20000;
	double best_libc = 1e18, best_mxg = 1e18;

	for (int r = 0; r < rounds; r++) {
		double a = round_ns(snprintf, msgs);
		double m = round_ns(mxg_fmt, msgs);

		if (a < best_libc)
			best_libc = a;
		if (m < best_mxg)
			best_mxg = m;
	}
	printf("{\"bench\": \"fmt\", \"rounds\": %d, \"msgs_per_round\": %d, "
	       "\"calls_per_msg\": 36, \"snprintf_ns_per_msg\": %.1f, "
	       "\"mxg_fmt_ns_per_msg\": %.1f, \"ratio\": %.2f}\n",
	       rounds, msgs, best_libc, best_mxg, best_libc / best_mxg);
	return 0;
}
