/*
 * test_relay_pool.c - next-hop pools (dataplane/relay/relay_pool.h):
 * smooth weighted round-robin, domain routing (exact, subdomain, longest,
 * default), health down/probe/up, active checks, connection limits, and
 * the idle cache bound and age.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/relay/relay_pool.h"

static int failures;
static int checks;
#define CHECK(cond)                                                            \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

static const struct relay_server_config SRV_A[] = {
	{0xC6120001, 25, 5}, /* 0: a */
	{0xC6120003, 25, 1}, /* 1: b */
	{0xC6120004, 25, 1}, /* 2: c */
};
static const struct relay_server_config SRV_B[] = {
	{0x0A000001, 2525, 1}, /* 3 */
	{0x0A000002, 2525, 1}, /* 4 */
};
static const char *const DOM_B[] = {"Example.COM", ".example.com",
				    ".deep.example.net."};
static const char *const DOM_C[] = {"x.deep.example.net", ".example.net"};
static const struct relay_server_config SRV_C[] = {{0x0A000009, 25, 1}};

static struct relay_pools *mk(uint32_t total_max, uint32_t per_srv,
			      uint32_t idle_max)
{
	struct relay_pool_config pc[3] = {
		{.name = "default",
		 .servers = SRV_A,
		 .n_servers = 3,
		 .max_conns_per_server = per_srv,
		 .idle_max = idle_max,
		 .idle_max_age_ms = 1000,
		 .fail_after = 2,
		 .retry_ms = 5000,
		 .check_interval_ms = 100},
		{.name = "corp",
		 .domains = DOM_B,
		 .n_domains = 3,
		 .servers = SRV_B,
		 .n_servers = 2,
		 .max_conns = 3},
		{.name = "other",
		 .domains = DOM_C,
		 .n_domains = 2,
		 .servers = SRV_C,
		 .n_servers = 1},
	};
	struct relay_pools_config c = {.pools = pc,
				       .n_pools = 3,
				       .default_pool = 0,
				       .max_conns = total_max};
	int err = 0;
	struct relay_pools *p = relay_pools_create(&c, &err);

	CHECK(p != NULL);
	return p;
}

static void test_wrr(void)
{
	struct relay_pools *p = mk(0, 0, 0);
	int seq[7], cnt[3] = {0};

	/* nginx's example: weights 5,1,1 give a a a b a c a ... no
	 * bursts longer than needed, exact proportions every 7 picks. */
	for (int i = 0; i < 7; i++)
		seq[i] = relay_pool_select(p, 0, 0);
	CHECK(seq[0] == 0 && seq[1] == 0 && seq[2] == 1 && seq[3] == 0 &&
	      seq[4] == 2 && seq[5] == 0 && seq[6] == 0);
	for (int i = 0; i < 700; i++)
		cnt[relay_pool_select(p, 0, 0)]++;
	CHECK(cnt[0] == 500 && cnt[1] == 100 && cnt[2] == 100);
	/* Pool 1: equal weights alternate. */
	CHECK(relay_pool_select(p, 1, 0) == 3);
	CHECK(relay_pool_select(p, 1, 0) == 4);
	CHECK(relay_pool_select(p, 1, 0) == 3);
	CHECK(relay_pool_select(p, 7, 0) == -EINVAL);
	relay_pools_destroy(p);
}

static uint32_t route(struct relay_pools *p, const char *d)
{
	return relay_pools_route(p, d, strlen(d));
}

static void test_routing(void)
{
	struct relay_pools *p = mk(0, 0, 0);

	CHECK(relay_pools_count(p) == 3 && relay_pools_nservers(p) == 6);
	CHECK(relay_pools_find(p, "corp") == 1);
	CHECK(relay_pools_find(p, "nope") == -ENOENT);
	CHECK(strcmp(relay_pool_name(p, 2), "other") == 0);
	CHECK(route(p, "example.com") == 1);	/* exact, any case */
	CHECK(route(p, "EXAMPLE.com.") == 1);	/* trailing dot */
	CHECK(route(p, "mx.example.com") == 1); /* subdomain */
	CHECK(route(p, "a.b.example.com") == 1);
	CHECK(route(p, "badexample.com") == 0); /* not a subdomain */
	CHECK(route(p, "example.org") == 0);	/* default */
	CHECK(route(p, "") == 0);
	CHECK(route(p, "example.net") == 0); /* ".example.net" only */
	CHECK(route(p, "a.example.net") == 2);
	/* Longest match wins: .deep.example.net (corp) over .example.net,
	 * and the exact x.deep.example.net (other) over both. */
	CHECK(route(p, "y.deep.example.net") == 1);
	CHECK(route(p, "x.deep.example.net") == 2);
	CHECK(route(p, "z.x.deep.example.net") == 1);
	relay_pools_destroy(p);

	/* A domain in two pools is a configuration error. */
	{
		static const char *const d1[] = {"dup.example"};
		static const char *const d2[] = {"DUP.example"};
		struct relay_pool_config pc[2] = {
			{.name = "a",
			 .domains = d1,
			 .n_domains = 1,
			 .servers = SRV_C,
			 .n_servers = 1},
			{.name = "b",
			 .domains = d2,
			 .n_domains = 1,
			 .servers = SRV_C,
			 .n_servers = 1},
		};
		struct relay_pools_config c = {.pools = pc, .n_pools = 2};
		int err = 0;

		CHECK(relay_pools_create(&c, &err) == NULL && err == -EINVAL);
		pc[1].domains = NULL;
		pc[1].n_domains = 0;
		pc[1].n_servers = 0;
		CHECK(relay_pools_create(&c, &err) == NULL && err == -EINVAL);
		pc[1].n_servers = 1;
		c.default_pool = 2;
		CHECK(relay_pools_create(&c, &err) == NULL && err == -EINVAL);
	}
}

static void test_health(void)
{
	struct relay_pools *p = mk(0, 0, 0);
	struct relay_server_info si;
	uint32_t due[8];
	int s;

	/* fail_after = 2 consecutive failures; a success in between
	 * resets the count. */
	relay_server_report(p, 0, false, 100);
	relay_server_report(p, 0, true, 110);
	relay_server_report(p, 0, false, 120);
	CHECK(relay_server_up(p, 0));
	relay_server_report(p, 0, false, 130);
	CHECK(!relay_server_up(p, 0));
	relay_server_get_info(p, 0, &si);
	CHECK(!si.up && si.fails == 2 && si.retry_at == 5130);
	/* Down: never chosen before the retry time. */
	for (int i = 0; i < 50; i++) {
		s = relay_pool_select(p, 0, 1000);
		CHECK(s == 1 || s == 2);
	}
	/* Retry time: one probe, then the others again. */
	CHECK(relay_pool_select(p, 0, 5130) == 0);
	s = relay_pool_select(p, 0, 5131);
	CHECK(s == 1 || s == 2);
	relay_server_get_info(p, 0, &si);
	CHECK(si.probing);
	/* The probe fails: down for another retry interval. */
	relay_server_report(p, 0, false, 5200);
	relay_server_get_info(p, 0, &si);
	CHECK(!si.up && !si.probing && si.retry_at == 10200);
	CHECK(relay_pool_select(p, 0, 10200) == 0);
	relay_server_report(p, 0, true, 10210);
	CHECK(relay_server_up(p, 0));

	/* All down: -EHOSTDOWN. */
	for (uint32_t k = 0; k < 3; k++) {
		relay_server_report(p, k, false, 20000);
		relay_server_report(p, k, false, 20000);
	}
	CHECK(relay_pool_select(p, 0, 20001) == -EHOSTDOWN);
	/* Active check brings one back at once. */
	relay_server_check_result(p, 2, true, 20002);
	CHECK(relay_pool_select(p, 0, 20003) == 2);

	/* Checks due: pool 0 only (interval 100), rescheduled. */
	CHECK(relay_pools_checks_due(p, 30000, due, 8) == 3);
	CHECK(due[0] == 0 && due[1] == 1 && due[2] == 2);
	CHECK(relay_pools_checks_due(p, 30050, due, 8) == 0);
	CHECK(relay_pools_checks_due(p, 30100, due, 2) == 2);
	CHECK(relay_pools_checks_due(p, 30100, due, 2) == 1);

	/* Operator push. */
	relay_server_set_admin_down(p, 3, true);
	CHECK(!relay_server_up(p, 3));
	CHECK(relay_pool_select(p, 1, 0) == 4);
	CHECK(relay_pool_select(p, 1, 0) == 4);
	relay_server_set_admin_down(p, 3, false);
	CHECK(relay_server_up(p, 3));
	relay_pools_destroy(p);
}

static void test_limits(void)
{
	struct relay_pools *p = mk(5, 1, 0);
	struct relay_server_info si;
	int s;

	/* Per server 1 in pool 0: three servers, then -EBUSY. */
	for (int i = 0; i < 3; i++) {
		s = relay_pool_select(p, 0, 0);
		CHECK(s >= 0 && s <= 2);
		relay_server_opened(p, (uint32_t)s);
	}
	CHECK(relay_pool_select(p, 0, 0) == -EBUSY);
	relay_server_closed(p, 1);
	CHECK(relay_pool_select(p, 0, 0) == 1);
	relay_server_opened(p, 1);
	relay_server_get_info(p, 1, &si);
	CHECK(si.conns == 1);
	/* Pool 1: max_conns 3 of its own, but the total is 5 and pool 0
	 * already holds 3: only 2 more. */
	s = relay_pool_select(p, 1, 0);
	relay_server_opened(p, (uint32_t)s);
	s = relay_pool_select(p, 1, 0);
	relay_server_opened(p, (uint32_t)s);
	CHECK(relay_pool_select(p, 1, 0) == -EBUSY);
	CHECK(relay_pool_select(p, 2, 0) == -EBUSY);
	relay_server_closed(p, 0);
	relay_server_closed(p, 0); /* extra close does not wrap */
	relay_server_get_info(p, 0, &si);
	CHECK(si.conns == 0);
	CHECK(relay_pool_select(p, 1, 0) >= 3);
	relay_pools_destroy(p);
}

static void test_idle(void)
{
	struct relay_pools *p = mk(0, 0, 3);
	int c[10];
	void *ev = NULL, *out[8];
	uint32_t srv = 99, outs[8];
	struct relay_server_info si;

	/* No caching in pool 1 (idle_max 0). */
	CHECK(relay_pool_idle_put(p, 3, &c[0], 0, &ev) == -ENOSPC);

	CHECK(relay_pool_idle_put(p, 0, &c[1], 100, &ev) == 0 && !ev);
	CHECK(relay_pool_idle_put(p, 1, &c[2], 200, &ev) == 0 && !ev);
	CHECK(relay_pool_idle_put(p, 0, &c[3], 300, &ev) == 0 && !ev);
	relay_server_get_info(p, 0, &si);
	CHECK(si.idle == 2);
	/* Full (3): the oldest goes back to the caller to close. */
	CHECK(relay_pool_idle_put(p, 2, &c[4], 400, &ev) == 0 && ev == &c[1]);
	/* Take by server: newest first. */
	CHECK(relay_pool_idle_take(p, 0, 500) == &c[3]);
	CHECK(relay_pool_idle_take(p, 0, 500) == NULL);
	/* Take any: newest in the pool. */
	CHECK(relay_pool_idle_take_any(p, 0, 500, &srv) == &c[4] && srv == 2);
	/* Age: c[2] parked at 200, max age 1000: too old at 1201. */
	CHECK(relay_pool_idle_take(p, 1, 1201) == NULL);
	CHECK(relay_pools_idle_expire(p, 1201, out, outs, 8) == 1);
	CHECK(out[0] == &c[2] && outs[0] == 1);
	CHECK(relay_pools_idle_expire(p, 1201, out, outs, 8) == 0);
	/* A server going down flushes its idle connections. */
	relay_pool_idle_put(p, 1, &c[5], 2000, &ev);
	relay_pool_idle_put(p, 2, &c[6], 2000, &ev);
	relay_server_report(p, 1, false, 2001);
	relay_server_report(p, 1, false, 2002);
	CHECK(relay_pool_idle_take(p, 1, 2003) == NULL);
	CHECK(relay_pool_idle_put(p, 1, &c[7], 2003, &ev) == -EHOSTDOWN);
	CHECK(relay_pools_idle_expire(p, 2003, out, outs, 8) == 1);
	CHECK(out[0] == &c[5]);
	/* Bounded output: max 1 at a time. */
	relay_pool_idle_put(p, 0, &c[8], 3000, &ev);
	CHECK(relay_pools_idle_expire(p, 9000, out, NULL, 1) == 1);
	CHECK(relay_pools_idle_expire(p, 9000, out, NULL, 1) == 1);
	CHECK(relay_pools_idle_expire(p, 9000, out, NULL, 1) == 0);
	relay_server_get_info(p, 2, &si);
	CHECK(si.idle == 0);
	relay_pools_destroy(p);
}

int main(void)
{
	test_wrr();
	test_routing();
	test_health();
	test_limits();
	test_idle();
	printf("relay_pool: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
