/*
 * test_config_auth.c - the AUTH keys of the configuration
 * (control/config_auth.c): listener auth modes and their agreement with
 * require_auth/allow_anonymous, mechanisms, cleartext; the auth section
 * with a real users file and sender map (their FILE:LINE errors carried
 * into the config's errors), brute-force limits, GSSAPI; each error
 * with its exact message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sendermap.h"
#include "auth/store.h"
#include "control/config.h"
#include "tests/unit/auth/check.h"

static char err[16384];
static char dir[] = "/tmp/test_config_auth.XXXXXX";

static void expect_errors(const char *text, const char *want, int line)
{
	struct ctl_config c;
	int rc = ctl_config_load_string(text, "t.conf", &c, err, sizeof(err));

	checks++;
	if (rc != -EINVAL || strcmp(err, want) != 0) {
		fprintf(stderr,
			"FAIL line %d: rc %d\n--- got:\n%s--- want:\n%s---\n",
			line, rc, err, want);
		failures++;
	}
	if (rc == 0)
		ctl_config_free(&c);
}
#define ERRS(text, want) expect_errors(text, want, __LINE__)

static int load(const char *text, struct ctl_config *c)
{
	int rc = ctl_config_load_string(text, "t.conf", c, err, sizeof(err));

	if (rc)
		fprintf(stderr, "unexpected errors:\n%s", err);
	return rc;
}

#define MX "{ name = \"mx\"; port = 25; role = \"mx\"; }"

static void test_modes(void)
{
	struct ctl_config c;

	CHECK(load("listeners = ( " MX ",\n"
		   "{ name = \"sub\"; port = 587; role = \"submission\"; },\n"
		   "{ name = \"s2\"; port = 588; role = \"submission\"; "
		   "require_auth = false; },\n"
		   "{ name = \"s3\"; port = 589; role = \"submission\"; "
		   "auth = \"optional\"; auth_mechanisms = [\"plain\", "
		   "\"GSSAPI\"]; auth_allow_cleartext = true; },\n"
		   "{ name = \"m2\"; port = 26; role = \"mx\"; auth = "
		   "\"required\"; allow_anonymous = false; }\n"
		   ");\n"
		   "auth = { gssapi = { service = "
		   "\"smtp/mx.example.com@EX.COM\";"
		   " keytab = \"/etc/mxgate/smtp.keytab\"; realm = \"EX.COM\";"
		   " }; };\n",
		   &c) == 0);
	CHECK(c.listeners[0].auth == CTL_AUTH_OFF);
	CHECK(c.listeners[1].auth == CTL_AUTH_REQUIRED &&
	      c.listeners[1].require_auth &&
	      c.listeners[1].auth_mechanisms ==
		      (CTL_AUTH_PLAIN | CTL_AUTH_LOGIN) &&
	      !c.listeners[1].auth_allow_cleartext);
	CHECK(c.listeners[2].auth == CTL_AUTH_OPTIONAL &&
	      !c.listeners[2].require_auth);
	CHECK(c.listeners[3].auth == CTL_AUTH_OPTIONAL &&
	      !c.listeners[3].require_auth &&
	      c.listeners[3].auth_mechanisms ==
		      (CTL_AUTH_PLAIN | CTL_AUTH_GSSAPI) &&
	      c.listeners[3].auth_allow_cleartext);
	CHECK(c.listeners[4].auth == CTL_AUTH_REQUIRED &&
	      c.listeners[4].require_auth);
	CHECK(strcmp(c.auth.gssapi_service, "smtp/mx.example.com@EX.COM") == 0);
	CHECK(strcmp(c.auth.gssapi_realm, "EX.COM") == 0);
	CHECK(c.auth.users == NULL && c.auth.sender_map == NULL);
	CHECK(c.auth.brute_force.ip_delay_after == 5 &&
	      c.auth.brute_table_size == 65536);
	ctl_config_free(&c);
	/* the built-in default: mx off, submission required */
	CHECK(ctl_config_default(&c) == 0);
	CHECK(c.listeners[0].auth == CTL_AUTH_OFF &&
	      c.listeners[1].auth == CTL_AUTH_REQUIRED);
	ctl_config_free(&c);

	ERRS("listeners = ( { name = \"s\"; port = 587; role = "
	     "\"submission\";\n"
	     " auth = \"optional\";\n require_auth = true; } );\n",
	     "t.conf:2: key 'listeners[0].auth': auth = \"optional\" "
	     "contradicts require_auth = true at line 3 (drop require_auth: "
	     "auth = \"required\" is require_auth = true)\n");
	ERRS("listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
	     " auth = \"required\"; } );\n",
	     "t.conf:2: key 'listeners[0].auth': auth = \"required\" "
	     "contradicts allow_anonymous = true, the default for role \"mx\" "
	     "(add allow_anonymous = false)\n");
	ERRS("listeners = ( { name = \"mx\"; port = 25; role = \"mx\";\n"
	     " auth = \"yes\"; } );\n",
	     "t.conf:2: key 'listeners[0].auth': \"yes\" is not valid (one "
	     "of \"off\" or \"optional\" or \"required\")\n");
	ERRS("listeners = ( { name = \"s\"; port = 587; role = "
	     "\"submission\";\n"
	     " auth_mechanisms = [\"PLAIN\", \"CRAM-MD5\"]; } );\n",
	     "t.conf:2: key 'listeners[0].auth_mechanisms': \"CRAM-MD5\" is "
	     "not a mechanism (\"PLAIN\", \"LOGIN\" or \"GSSAPI\")\n");
	ERRS("listeners = ( { name = \"s\"; port = 587; role = "
	     "\"submission\";\n"
	     " auth_mechanisms = [\"GSSAPI\"]; } );\n",
	     "t.conf:2: key 'listeners[0].auth_mechanisms': GSSAPI needs "
	     "auth.gssapi { service = \"smtp/HOSTNAME@REALM\"; keytab = "
	     "\"...\"; }\n");
	ERRS("listeners = ( " MX " );\nauth = {\n gssapi = { service = "
	     "\"imap/x@Y\"; };\n};\n",
	     "t.conf:3: key 'auth.gssapi.service': \"imap/x@Y\" is not "
	     "smtp/HOSTNAME@REALM (RFC 4752 and RFC 4954: the service is "
	     "\"smtp\")\n");
	ERRS("listeners = ( " MX " );\nauth = {\n brute_force = {\n delay = 5;"
	     " max_delay = 2; ip_lockout_after = 3; };\n};\n",
	     "t.conf:3: key 'auth.brute_force': max_delay (2 s) is below "
	     "delay (5 s)\n"
	     "t.conf:3: key 'auth.brute_force': ip_lockout_after (3) is "
	     "below ip_delay_after (5): clients would be locked out before "
	     "any delay\n");
	ERRS("listeners = ( " MX " );\nauth = {\n users = \"x\";\n};\n",
	     "t.conf:3: key 'auth.users': unknown key (valid here: users_file, "
	     "dovecot_socket, sender_login_map, brute_force, gssapi)\n");
	ERRS("listeners = ( " MX " );\nauth = {\n users_file = \"\";\n"
	     " dovecot_socket = \"/run/dovecot/auth-client\";\n};\n",
	     "t.conf:4: key 'auth.dovecot_socket': users_file is set too (one "
	     "password store: the users file or Dovecot)\n");
	CHECK(load("listeners = ( " MX " );\nauth = { dovecot_socket = "
		   "\"/run/dovecot/auth-client\"; };\n",
		   &c) == 0);
	CHECK(strcmp(c.auth.dovecot_socket, "/run/dovecot/auth-client") == 0 &&
	      c.auth.users == NULL);
	ctl_config_free(&c);
}

static const char *write_file(const char *name, const char *text)
{
	static char path[2][256];
	static int k;

	k ^= 1;
	snprintf(path[k], sizeof(path[k]), "%s/%s", dir, name);
	FILE *f = fopen(path[k], "w");

	if (f == NULL) {
		perror(path[k]);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	return path[k];
}

static void test_files(void)
{
	struct ctl_config c;
	char text[2048], want[2048];
	const char *h = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA"
			"2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
	char users[512];

	snprintf(users, sizeof(users), "alice:%s\n", h);
	const char *u = write_file("users", users);
	const char *m = write_file("senders", "alice @example.com\n");

	snprintf(text, sizeof(text),
		 "listeners = ( " MX " );\nauth = { users_file = \"%s\";\n"
		 " sender_login_map = \"%s\";\n brute_force = { "
		 "ip_lockout_after = 50; lockout = 60; window = 120; "
		 "delay = 2; table_size = 1024; };\n};\n",
		 u, m);
	CHECK(load(text, &c) == 0);
	CHECK(c.auth.users && auth_store_count(c.auth.users) == 1 &&
	      auth_store_lookup(c.auth.users, "alice"));
	CHECK(c.auth.sender_map &&
	      auth_sendermap_allowed(c.auth.sender_map, "alice",
				     "a@example.com"));
	CHECK(c.auth.brute_force.ip_lockout_after == 50 &&
	      c.auth.brute_force.lockout_s == 60 &&
	      c.auth.brute_force.window_s == 120 &&
	      c.auth.brute_force.delay_ms == 2000 &&
	      c.auth.brute_table_size == 1024);
	ctl_config_free(&c);

	/* errors inside the files, with both locations */
	u = write_file("users", "alice:plain\nbob\n");
	m = write_file("senders", "alice\n");
	snprintf(text, sizeof(text),
		 "listeners = ( " MX " );\nauth = {\n users_file = \"%s\";\n"
		 " sender_login_map = \"%s\";\n};\n",
		 u, m);
	snprintf(want, sizeof(want),
		 "t.conf:3: key 'auth.users_file': %s:1: user \"alice\": not "
		 "a strong password hash (yescrypt \"$y$...\", SHA-512 crypt "
		 "\"$6$...\", bcrypt \"$2b$...\" or scrypt \"$7$...\": "
		 "mkpasswd -m yescrypt)\n"
		 "t.conf:3: key 'auth.users_file': %s:2: no ':' (a line "
		 "\"login:hash\")\n"
		 "t.conf:4: key 'auth.sender_login_map': %s:1: login \"alice\" "
		 "has no senders (list addresses or @domains after the "
		 "login)\n",
		 u, u, m);
	ERRS(text, want);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_modes();
	test_files();
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_summary("test_config_auth");
}
