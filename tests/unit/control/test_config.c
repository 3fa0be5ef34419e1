/*
 * test_config.c - the configuration loader (control/config.h): the built-in
 * default, the documented example file, and each kind of error with its
 * exact FILE:LINE: key '...': message, all errors collected in one pass.
 * Usage: test_config PATH-TO-docs/examples/mxgate.conf
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"

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

static char err[16384];

/* Loads text as "t.conf" and expects failure with exactly want. */
static void expect_errors(const char *text, const char *want, int line)
{
	struct mxg_config c;
	int rc = ctl_config_load_string(text, "t.conf", &c, err, sizeof(err));

	checks++;
	if (rc != -EINVAL || strcmp(err, want) != 0) {
		fprintf(stderr,
			"FAIL line %d: rc %d\n--- got:\n%s--- want:\n%s---\n",
			line, rc, err, want);
		failures++;
	}
	CHECK(c.listeners == NULL && c.pools == NULL && c.source == NULL);
}
#define ERRS(text, want) expect_errors(text, want, __LINE__)

/* A valid minimal head to which each case adds its fault. */
#define LISTENERS                                                              \
	"listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n"

static void test_default(void)
{
	struct mxg_config c;

	CHECK(ctl_config_default(&c) == 0);
	CHECK(strcmp(c.source, "<built-in>") == 0);
	CHECK(strcmp(c.stack.port, "net_tap0,iface=mxg0") == 0);
	CHECK(c.stack.address == 0xC6120002 && c.stack.prefix_len == 24);
	CHECK(c.stack.gateway == 0 && c.stack.cores == 1);
	CHECK(c.n_listeners == 2);
	CHECK(strcmp(c.listeners[0].name, "mx") == 0 &&
	      c.listeners[0].port == 25 && c.listeners[0].role == CTL_ROLE_MX);
	CHECK(strcmp(c.listeners[1].name, "submission") == 0 &&
	      c.listeners[1].port == 587 &&
	      c.listeners[1].role == CTL_ROLE_SUBMISSION);
	CHECK(c.listeners[0].address == 0xC6120002);
	CHECK(c.listeners[0].max_message_size == 36700160);
	CHECK(c.listeners[0].timeouts.data_term_ms == 600000);
	CHECK(c.n_pools == 1 && c.pools[0].type == CTL_POOL_MAILDIR &&
	      c.default_pool == 0);
	CHECK(strcmp(c.maildir.path, "/var/lib/mxgate/Maildir") == 0);
	CHECK(strcmp(c.log.level, "info") == 0);
	ctl_config_free(&c);
	CHECK(c.listeners == NULL);
	ctl_config_free(&c); /* twice is harmless */
}

static void test_example(const char *path)
{
	struct mxg_config c;
	int rc = ctl_config_load(path, &c, err, sizeof(err));

	CHECK(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "%s", err);
		return;
	}
	CHECK(err[0] == '\0');
	CHECK(c.stack.gateway == 0xC6120001);
	CHECK(c.n_listeners == 2 && c.listeners[1].port == 587);
	CHECK(strcmp(c.listeners[0].hostname, "mx.example.com") == 0);
	CHECK(c.listeners[1].bare_lf == CTL_BARE_LF_NORMALIZE);
	CHECK(!c.listeners[1].pipelining_enforce);
	CHECK(c.n_pools == 3 && c.default_pool == 0);
	CHECK(c.pools[0].client_info == CTL_CINFO_XCLIENT);
	CHECK(c.pools[0].n_servers == 2 && c.pools[0].servers[0].weight == 2 &&
	      c.pools[0].servers[1].address == 0xC6120003);
	CHECK(c.pools[0].idle_max == 32 && c.pools[0].idle_max_age_ms == 30000);
	CHECK(c.pools[0].timeouts.data_end_ms == 300000);
	CHECK(c.pools[0].health_interval_ms == 10000 &&
	      c.pools[0].health_fail_after == 3);
	CHECK(c.pools[1].client_info == CTL_CINFO_PROXY &&
	      c.pools[1].n_domains == 2 &&
	      strcmp(c.pools[1].domains[1], ".corp.example") == 0 &&
	      c.pools[1].servers[0].port == 2525);
	CHECK(c.pools[2].type == CTL_POOL_MAILDIR && c.pools[2].n_servers == 0);
	ctl_config_free(&c);
}

static void test_minimal(void)
{
	struct mxg_config c;

	/* Only listeners: everything else defaults, next hop Maildir. */
	CHECK(ctl_config_load_string(LISTENERS, "t.conf", &c, err,
				     sizeof(err)) == 0);
	CHECK(c.n_pools == 1 && c.pools[0].type == CTL_POOL_MAILDIR &&
	      strcmp(c.pools[0].name, "default") == 0);
	CHECK(c.listeners[0].pipelining_enforce &&
	      c.listeners[0].bare_lf == CTL_BARE_LF_REJECT);
	ctl_config_free(&c);

	/* 64-bit integers (L suffix) are integers too; "default" pool
	 * is the default without default_pool. */
	CHECK(ctl_config_load_string(
		      "listeners = ( { name = \"mx\"; port = 25; role = "
		      "\"mx\"; max_message_size = 1073741824L; } );\n"
		      "pools = ( { name = \"a\"; type = \"maildir\"; },\n"
		      "  { name = \"default\"; type = \"maildir\"; } );\n",
		      "t.conf", &c, err, sizeof(err)) == 0);
	CHECK(c.listeners[0].max_message_size == 1073741824ull);
	CHECK(c.default_pool == 1);
	ctl_config_free(&c);
}

static void test_errors(void)
{
	/* Syntax error, reported by libconfig with its line. */
	ERRS("stack = {\n  port = ;\n};\n" LISTENERS,
	     "t.conf:2: syntax error: syntax error\n");

	/* Unknown key, at the top and in a section. */
	ERRS(LISTENERS "colour = \"blue\";\n",
	     "t.conf:2: key 'colour': unknown key (valid here: stack, "
	     "listeners, pools, default_pool, maildir, log)\n");
	ERRS(LISTENERS "log = {\n  file = \"\";\n  levle = \"info\";\n};\n",
	     "t.conf:4: key 'log.levle': unknown key (valid here: file, "
	     "level)\n");

	/* Wrong types. */
	ERRS(LISTENERS "stack = { cores = \"2\"; busy_poll = 1; };\n",
	     "t.conf:2: key 'stack.cores': a string, expected an integer "
	     "1..128\n"
	     "t.conf:2: key 'stack.busy_poll': an integer, expected true or "
	     "false\n");
	ERRS(LISTENERS "stack = { max_conns = 1.5; };\n",
	     "t.conf:2: key 'stack.max_conns': a float, expected an integer "
	     "1..16777216\n");
	ERRS("listeners = { name = \"mx\"; };\n",
	     "t.conf:1: key 'listeners': a group { }, expected a list "
	     "( { ... }, ... )\n");

	/* Out of range. */
	ERRS("listeners = ( { name = \"mx\"; port = 0; role = \"mx\";\n"
	     "  max_errors = 5000; } );\n",
	     "t.conf:1: key 'listeners[0].port': 0 is out of range (an "
	     "integer 1..65535)\n"
	     "t.conf:2: key 'listeners[0].max_errors': 5000 is out of range "
	     "(an integer 1..1000)\n");

	/* Bad addresses and CIDRs. */
	ERRS(LISTENERS "stack = {\n  address = \"198.18.0.2\";\n"
		       "  gateway = \"198.18.0\";\n};\n",
	     "t.conf:3: key 'stack.address': \"198.18.0.2\" is not an IPv4 "
	     "CIDR (address/prefix with prefix 1..32, e.g. "
	     "\"198.18.0.2/24\")\n"
	     "t.conf:4: key 'stack.gateway': \"198.18.0\" is not an IPv4 "
	     "address (dotted quad, e.g. \"198.18.0.1\", or \"\" for none)\n");
	ERRS(LISTENERS "stack = { address = \"10.0.0.1/33\"; };\n",
	     "t.conf:2: key 'stack.address': \"10.0.0.1/33\" is not an IPv4 "
	     "CIDR (address/prefix with prefix 1..32, e.g. "
	     "\"198.18.0.2/24\")\n");

	/* Duplicate listener port (and name). */
	ERRS("listeners = (\n"
	     "  { name = \"mx\"; port = 25; role = \"mx\"; },\n"
	     "  { name = \"mx\"; port = 25; role = \"submission\"; }\n"
	     ");\n",
	     "t.conf:3: key 'listeners[1].port': port 25 is already used by "
	     "listener 'mx' at line 2 (a port no other listener uses)\n"
	     "t.conf:3: key 'listeners[1].name': \"mx\" is already the name "
	     "of the listener at line 2 (a unique name)\n");

	/* Unknown role, missing keys. */
	ERRS("listeners = (\n  { name = \"mx\"; port = 25; role = \"relay\"; "
	     "},\n  { port = 26; }\n);\n",
	     "t.conf:2: key 'listeners[0].role': \"relay\" is not valid (one "
	     "of \"mx\" or \"submission\" or \"smtps\")\n"
	     "t.conf:3: key 'listeners[1].name': missing (a unique string)\n"
	     "t.conf:3: key 'listeners[1].role': missing (one of \"mx\" or "
	     "\"submission\" or \"smtps\")\n");
	ERRS("stack = { };\n",
	     "t.conf:1: key 'listeners': missing (a list ( { name = \"mx\"; "
	     "port = 25; role = \"mx\"; }, ... ))\n");

	/* Pools: without servers, bad server, bad domain, duplicate
	 * domain, unknown client_info, unknown default. */
	ERRS(LISTENERS "pools = (\n  { name = \"default\"; },\n"
		       "  { name = \"b\"; servers = ( { port = 25; } ); },\n"
		       "  { name = \"c\"; type = \"maildir\";\n"
		       "    servers = ( { address = \"10.0.0.1\"; } ); }\n);\n",
	     "t.conf:3: key 'pools[0].servers': pool has no servers (at "
	     "least one { address = \"a.b.c.d\"; port = 25; }, or type = "
	     "\"maildir\")\n"
	     "t.conf:4: key 'pools[1].servers[0].address': missing (an IPv4 "
	     "address, e.g. \"198.18.0.1\")\n"
	     "t.conf:6: key 'pools[2].servers': a maildir pool has no "
	     "servers (remove servers, or type = \"smtp\")\n");
	ERRS(LISTENERS
	     "pools = (\n"
	     "  { name = \"a\"; type = \"maildir\"; domains = [ \"x.org\", "
	     "\"-bad..\" ]; },\n"
	     "  { name = \"b\"; type = \"maildir\"; domains = [ \"X.ORG\" ];\n"
	     "    client_info = \"haproxy\"; }\n);\n"
	     "default_pool = \"zzz\";\n",
	     "t.conf:3: key 'pools[0].domains[1]': \"-bad..\" is not a "
	     "domain (e.g. \"example.com\", or \".example.com\" for its "
	     "subdomains)\n"
	     "t.conf:5: key 'pools[1].client_info': \"haproxy\" is not valid "
	     "(one of \"none\" or \"xclient\" or \"proxy\")\n"
	     "t.conf:4: key 'pools[1].domains': \"X.ORG\" is already routed "
	     "to pool 'a' (each domain in one pool)\n"
	     "t.conf:7: key 'default_pool': no pool is named \"zzz\" (the "
	     "name of a pool in pools)\n");

	/* Maildir path must be absolute. */
	ERRS(LISTENERS "maildir = { path = \"var/mail\"; workers = 0; };\n",
	     "t.conf:2: key 'maildir.path': \"var/mail\" is not absolute (a "
	     "path starting with '/')\n"
	     "t.conf:2: key 'maildir.workers': 0 is out of range (an integer "
	     "1..64)\n");
}

static void test_file_errors(void)
{
	struct mxg_config c;
	char small[200];
	char text[4096];
	size_t o = 0;

	CHECK(ctl_config_load("/nonexistent/mxgate.conf", &c, err,
			      sizeof(err)) == -ENOENT);
	CHECK(strcmp(err, "/nonexistent/mxgate.conf: cannot read the file: "
			  "No such file or directory\n") == 0);

	/* Many errors, small buffer: whole lines, then a count. */
	o += (size_t)snprintf(text + o, sizeof(text) - o, LISTENERS);
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "bogus%d = 1;\n", i);
	CHECK(ctl_config_load_string(text, "t.conf", &c, small,
				     sizeof(small)) == -EINVAL);
	CHECK(strstr(small, "t.conf:2: key 'bogus0': unknown key") == small);
	CHECK(strstr(small, " more error(s)\n") != NULL);
	CHECK(strlen(small) < sizeof(small));
}

int main(int argc, char **argv)
{
	test_default();
	if (argc > 1)
		test_example(argv[1]);
	else
		CHECK(!"missing the example file argument");
	test_minimal();
	test_errors();
	test_file_errors();
	printf("config: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
