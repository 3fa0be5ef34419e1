/*
 * test_config_content.c - the content-rule keys (control/config_content.c):
 * rule sets compiled at load, a listener naming one, and every error with
 * the configuration's file:line followed by the rule file's file:line
 * (Hyperscan's own message), so that --check-config and a refused reload
 * say exactly where.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content/rules.h"
#include "control/config.h"
#include "../auth/check.h"

static char err[8192], dir[256];

static void put(const char *name, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int load(const char *fmt, struct ctl_config *c)
{
	char text[4096], conf[512];

	snprintf(text, sizeof(text), fmt, dir, dir);
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	return ctl_config_load_string(text, conf, c, err, sizeof(err));
}

int main(void)
{
	struct ctl_config c;
	char want[1024];

	snprintf(dir, sizeof(dir), "/tmp/mxg-cfgcontent-%d", getpid());
	mkdir(dir, 0700);
	put("good.rules", "header:Subject /buy now/i reject 5.7.1 no\n");
	put("bad.rules", "body /ok/ log\n\nbody /(a)\\1/ reject x\n");

	/* good: the listener refers to the compiled set */
	CHECK(load("content_rule_sets = ( { name = \"spam\"; file = \"%s/good.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"spam\"; content_exempt_authenticated = true;\n"
		   "  content_scan_limit = 1000000; } );\n//%s\n", &c) == 0);
	if (err[0])
		fprintf(stderr, "%s", err);
	CHECK(c.n_content_sets == 1 && c.content_sets[0].rules != NULL &&
	      c.content_sets[0].rules->n_rules == 1);
	CHECK(c.listeners[0].content.set == 0);
	CHECK(c.listeners[0].content.exempt_authenticated);
	CHECK(!c.listeners[0].content.exempt_relay_networks);
	CHECK(c.listeners[0].content.scan_limit == 1000000);
	ctl_config_free(&c);

	/* relative to the configuration file */
	CHECK(load("content_rule_sets = ( { name = \"spam\"; file = \"good.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"spam\"; } );\n//%s %s\n", &c) == 0);
	ctl_config_free(&c);

	/* a listener without rules */
	CHECK(load("listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s%s\n",
		   &c) == 0);
	CHECK(c.listeners[0].content.set == -1);
	ctl_config_free(&c);

	/* a rule file that does not compile: config file:line, then the
	 * rule file's file:line and Hyperscan's message */
	CHECK(load("listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n"
		   "content_rule_sets = (\n"
		   "  { name = \"spam\";\n"
		   "    file = \"%s/bad.rules\"; } );\n//%s\n", &c) == -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/t.conf:4: key 'content_rule_sets[0].file': %s/bad.rules:3: "
		 "pattern /(a)\\1/ refused by Hyperscan: \"Back-references are "
		 "unsupported.\"\n", dir, dir);
	CHECK(strcmp(err, want) == 0);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "got  %swant %s", err, want);

	/* unknown set, missing file, duplicate name, missing keys */
	CHECK(load("content_rule_sets = ( { name = \"a\"; file = \"%s/good.rules\"; },\n"
		   "  { name = \"a\"; file = \"%s/none.rules\"; },\n"
		   "  { name = \"b\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"nope\"; } );\n", &c) == -EINVAL);
	CHECK(strstr(err, "t.conf:2: key 'content_rule_sets[1]': duplicate name \"a\" (first at line 1)") != NULL);
	CHECK(strstr(err, "t.conf:2: key 'content_rule_sets[1].file': ") != NULL &&
	      strstr(err, "none.rules:0: No such file or directory") != NULL);
	CHECK(strstr(err, "t.conf:3: key 'content_rule_sets[2].file': missing") != NULL);
	CHECK(strstr(err, "t.conf:5: key 'listeners[0].content_rules': no rule set named \"nope\"") != NULL);
	if (failures)
		fprintf(stderr, "%s", err);

	/* quarantine needs content_quarantine_maildir (an absolute path)
	 * when its set is bound to a listener; header needs nothing */
	put("q.rules", "body /x/ log\nattachment-name /exe$/ quarantine q\n");
	CHECK(load("content_rule_sets = ( { name = \"q\"; file = \"%s/q.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"q\"; } );\n//%s\n", &c) == -EINVAL);
	CHECK(strstr(err, "t.conf:3: key 'listeners[0].content_rules': ") != NULL &&
	      strstr(err, "q.rules:2: action \"quarantine\" needs content_quarantine_maildir") != NULL);
	CHECK(load("content_rule_sets = ( { name = \"q\"; file = \"%s/q.rules\"; } );\n"
		   "content_quarantine_maildir = \"/var/lib/mxgate/Quarantine\";\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"q\"; } );\n//%s\n", &c) == 0);
	CHECK(c.content_quarantine_maildir != NULL &&
	      strcmp(c.content_quarantine_maildir, "/var/lib/mxgate/Quarantine") == 0);
	ctl_config_free(&c);
	CHECK(load("content_rule_sets = ( { name = \"q\"; file = \"%s/q.rules\"; } );\n"
		   "content_quarantine_maildir = \"Quarantine\";\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"q\"; } );\n//%s\n", &c) == -EINVAL);
	CHECK(strstr(err, "t.conf:2: key 'content_quarantine_maildir': \"Quarantine\": an absolute path") != NULL);
	CHECK(load("content_rule_sets = ( { name = \"q\"; file = \"%s/q.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s\n",
		   &c) == 0);
	ctl_config_free(&c);
	put("h.rules", "mail /@example\\.net$/ header X-Content-Rule: net\n");
	CHECK(load("content_rule_sets = ( { name = \"h\"; file = \"%s/h.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"h\"; } );\n//%s\n", &c) == 0);
	ctl_config_free(&c);
	put("h.rules", "header:Subject /x/ header X-Content-Rule: s\n");
	CHECK(load("content_rule_sets = ( { name = \"h\"; file = \"%s/h.rules\"; } );\n"
		   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
		   "  content_rules = \"h\"; } );\n//%s\n", &c) == 0);
	ctl_config_free(&c);

	/* per-rule counters: a second configuration with the same rule
	 * shares its counter (a reload keeps the count); a changed pattern
	 * or another line gets a new one; the last release frees it */
	{
		struct ctl_config c2, c3;

		put("k.rules", "body /keep/ log\nbody /change/ log\n");
		CHECK(load("content_rule_sets = ( { name = \"k\"; file = \"%s/k.rules\"; } );\n"
			   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s\n",
			   &c) == 0);
		CHECK(load("content_rule_sets = ( { name = \"k\"; file = \"%s/k.rules\"; } );\n"
			   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s\n",
			   &c2) == 0);
		put("k.rules", "body /keep/ log\nbody /changed/ log\n");
		CHECK(load("content_rule_sets = ( { name = \"k\"; file = \"%s/k.rules\"; } );\n"
			   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s\n",
			   &c3) == 0);
		if (failures)
			return check_summary("config_content");
		CHECK(ctl_content_hits_acquire(&c.content_sets[0]) == 0 &&
		      ctl_content_hits_acquire(&c2.content_sets[0]) == 0 &&
		      ctl_content_hits_acquire(&c3.content_sets[0]) == 0);
		c.content_sets[0].hits[0]->core[1] = 5;
		c.content_sets[0].hits[1]->core[0] = 7;
		CHECK(c2.content_sets[0].hits[0] == c.content_sets[0].hits[0]);
		CHECK(ctl_rule_hits_sum(c2.content_sets[0].hits[0]) == 5);
		CHECK(ctl_rule_hits_sum(c2.content_sets[0].hits[1]) == 7);
		ctl_config_free(&c);
		ctl_config_free(&c2);
		CHECK(ctl_rule_hits_sum(c3.content_sets[0].hits[0]) == 5);
		CHECK(c3.content_sets[0].hits[1] != NULL &&
		      ctl_rule_hits_sum(c3.content_sets[0].hits[1]) == 0);
		ctl_config_free(&c3);
		CHECK(load("content_rule_sets = ( { name = \"k\"; file = \"%s/k.rules\"; } );\n"
			   "listeners = ( { name = \"mx\"; port = 25; role = \"mx\"; } );\n//%s\n",
			   &c) == 0);
		CHECK(ctl_content_hits_acquire(&c.content_sets[0]) == 0 &&
		      ctl_rule_hits_sum(c.content_sets[0].hits[0]) == 0);
		ctl_config_free(&c);
		snprintf(want, sizeof(want), "%s/k.rules", dir);
		unlink(want);
	}

	char p[512];
	snprintf(p, sizeof(p), "%s/h.rules", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/q.rules", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/good.rules", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/bad.rules", dir);
	unlink(p);
	rmdir(dir);
	return check_summary("config_content");
}
