/*
 * test_brute.c - auth/brute.h with a fake clock: per-IP delay then
 * lockout (454) and its end, the doubling delay and its cap, the window
 * that forgets old failures, per-login delay without lockout (a user
 * from another address is never locked out by an attacker), the opt-in
 * per-login lockout, success clearing the login's count only, the LRU
 * bound (a full table evicts the oldest; the count never exceeds the
 * capacity) and a config change on reload.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/brute.h"
#include "check.h"

#define S 1000000ull
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

static void test_ip(void)
{
	struct auth_brute_config c;

	auth_brute_config_defaults(&c); /* delay after 5, lock after 20 */
	struct auth_brute *t = auth_brute_create(64, &c);
	uint32_t a = IP(198, 18, 0, 1), b = IP(198, 18, 0, 2);
	uint64_t now = 1000 * S;
	bool lk = false;

	CHECK(t != NULL);
	for (int i = 1; i <= 4; i++)
		CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 0 && !lk);
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 1000); /* 5th */
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 2000);
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 4000);
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 8000);
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 16000);
	CHECK(auth_brute_fail(t, a, NULL, now, &lk) == 16000); /* cap */
	CHECK(!auth_brute_locked(t, a, NULL, now));
	for (int i = 11; i < 20; i++)
		auth_brute_fail(t, a, NULL, now, &lk);
	CHECK(!lk && !auth_brute_locked(t, a, NULL, now));
	auth_brute_fail(t, a, NULL, now, &lk); /* 20th */
	CHECK(lk);
	CHECK(auth_brute_locked(t, a, NULL, now));
	CHECK(auth_brute_locked(t, a, "anyone", now + 899 * S));
	/* another address is not affected */
	CHECK(!auth_brute_locked(t, b, NULL, now));
	CHECK(auth_brute_fail(t, b, NULL, now, &lk) == 0 && !lk);
	/* the lockout ends after lockout_s, and the count starts over */
	CHECK(!auth_brute_locked(t, a, NULL, now + 900 * S));
	CHECK(auth_brute_fail(t, a, NULL, now + 900 * S, &lk) == 0 && !lk);
	CHECK(auth_brute_stats(t)->lockouts == 1);
	CHECK(auth_brute_stats(t)->refused == 2);

	/* window: failures older than window_s are forgotten */
	uint32_t d = IP(198, 18, 0, 3);

	for (int i = 0; i < 4; i++)
		auth_brute_fail(t, d, NULL, now, &lk);
	CHECK(auth_brute_fail(t, d, NULL, now + 899 * S, &lk) == 1000);
	CHECK(auth_brute_fail(t, d, NULL, now + 899 * S + 900 * S, &lk) == 0);
	auth_brute_free(t);
}

static void test_user(void)
{
	struct auth_brute_config c;

	auth_brute_config_defaults(&c);
	struct auth_brute *t = auth_brute_create(64, &c);
	uint64_t now = 5 * S;
	bool lk;

	/* a distributed guess at one login: each address fails once */
	for (uint32_t i = 0; i < 4; i++)
		CHECK(auth_brute_fail(t, IP(198, 18, 1, i), "alice", now,
				      &lk) == 0);
	CHECK(auth_brute_fail(t, IP(198, 18, 1, 4), "alice", now, &lk) == 1000);
	/* 1000 failures on alice: delayed, never locked (default) */
	for (uint32_t i = 0; i < 1000; i++)
		auth_brute_fail(t, IP(198, 18, 2, i & 255) + (i >> 8), "alice",
				now, &lk);
	CHECK(!auth_brute_locked(t, IP(198, 19, 0, 1), "alice", now));
	/* alice logs in from her own address: her count is cleared */
	auth_brute_success(t, "alice");
	CHECK(auth_brute_fail(t, IP(198, 19, 0, 1), "alice", now, &lk) == 0);
	auth_brute_free(t);

	/* opt-in per-login lockout */
	c.user_lockout_after = 3;
	t = auth_brute_create(64, &c);
	for (uint32_t i = 0; i < 3; i++)
		auth_brute_fail(t, IP(198, 18, 3, i), "bob", now, &lk);
	CHECK(lk && auth_brute_locked(t, IP(198, 18, 9, 9), "bob", now));
	CHECK(!auth_brute_locked(t, IP(198, 18, 9, 9), "carol", now));
	/* success does not lift a lockout */
	auth_brute_success(t, "bob");
	CHECK(auth_brute_locked(t, IP(198, 18, 9, 9), "bob", now));
	/* reload: new thresholds apply to existing counts */
	c.ip_delay_after = 1;
	auth_brute_set_config(t, &c);
	CHECK(auth_brute_fail(t, IP(198, 18, 3, 0), NULL, now, &lk) == 2000);
	auth_brute_free(t);
}

static void test_bound(void)
{
	struct auth_brute_config c;

	auth_brute_config_defaults(&c);
	CHECK(auth_brute_create(8, &c) == NULL);
	struct auth_brute *t = auth_brute_create(16, &c);
	uint64_t now = S;
	bool lk;

	/* the oldest entry is evicted; the count stays at capacity */
	for (uint32_t i = 0; i < 4; i++)
		auth_brute_fail(t, IP(198, 18, 0, 1), NULL, now, &lk);
	for (uint32_t i = 0; i < 15; i++)
		auth_brute_fail(t, IP(198, 18, 4, i), NULL, now, &lk);
	CHECK(auth_brute_count(t) == 16);
	/* touching the first keeps it: the next insert evicts .4.0 */
	CHECK(auth_brute_fail(t, IP(198, 18, 0, 1), NULL, now, &lk) == 1000);
	auth_brute_fail(t, IP(198, 18, 5, 0), NULL, now, &lk);
	CHECK(auth_brute_count(t) == 16);
	CHECK(auth_brute_stats(t)->evictions == 1);
	CHECK(auth_brute_fail(t, IP(198, 18, 0, 1), NULL, now, &lk) == 2000);
	/* a flood of 100,000 addresses and logins: bounded */
	char login[32];

	for (uint32_t i = 0; i < 100000; i++) {
		snprintf(login, sizeof(login), "u%u", i);
		auth_brute_fail(t, IP(198, 18, 0, 0) + i, login, now, &lk);
		if (auth_brute_count(t) > 16) {
			CHECK(auth_brute_count(t) <= 16);
			break;
		}
	}
	CHECK(auth_brute_count(t) == 16);
	/* long logins are cut, not overflowed */
	char big[1000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	auth_brute_fail(t, 1, big, now, &lk);
	auth_brute_free(t);
}

int main(void)
{
	test_ip();
	test_user();
	test_bound();
	return check_summary("test_brute");
}
