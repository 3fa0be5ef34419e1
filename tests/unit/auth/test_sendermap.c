/*
 * test_sendermap.c - auth/sendermap.h: exact addresses and @domain
 * entries (case-insensitive, no subdomains), logins absent from the map,
 * the null sender, and load errors with FILE:LINE.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sendermap.h"
#include "check.h"

static const char *write_tmp(const char *text)
{
	static char path[] = "/tmp/test_sendermap.XXXXXX";
	static char p[sizeof(path)];
	int fd;

	memcpy(p, path, sizeof(path));
	fd = mkstemp(p);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("mkstemp");
		exit(1);
	}
	close(fd);
	return p;
}

int main(void)
{
	char err[1024];
	const char *p =
		write_tmp("# login senders\n"
			  "alice  alice@example.com, Sales@Example.COM\n"
			  "\n"
			  "bob\t@example.org   # whole domain\n"
			  "carol carol@example.net @example.com\n");
	struct auth_sendermap *m = auth_sendermap_load(p, err, sizeof(err));

	unlink(p);
	CHECK(m != NULL && err[0] == 0);
	if (m == NULL) {
		fprintf(stderr, "%s", err);
		return check_summary("test_sendermap");
	}
	CHECK(auth_sendermap_count(m) == 3);
	CHECK(auth_sendermap_allowed(m, "alice", "alice@example.com"));
	CHECK(auth_sendermap_allowed(m, "alice", "ALICE@example.COM"));
	CHECK(auth_sendermap_allowed(m, "alice", "sales@example.com"));
	CHECK(!auth_sendermap_allowed(m, "alice", "bob@example.com"));
	CHECK(!auth_sendermap_allowed(m, "alice", "alice@example.com.evil"));
	CHECK(!auth_sendermap_allowed(m, "alice", "xalice@example.com"));
	CHECK(auth_sendermap_allowed(m, "bob", "anyone@example.org"));
	CHECK(auth_sendermap_allowed(m, "bob", "x@EXAMPLE.ORG"));
	CHECK(!auth_sendermap_allowed(m, "bob", "x@sub.example.org"));
	CHECK(!auth_sendermap_allowed(m, "bob", "x@example.org.evil"));
	CHECK(!auth_sendermap_allowed(m, "bob", "example.org"));
	CHECK(auth_sendermap_allowed(m, "carol", "z@example.com"));
	CHECK(auth_sendermap_allowed(m, "carol", "carol@example.net"));
	/* a login not in the map: nothing but the null sender */
	CHECK(!auth_sendermap_allowed(m, "dave", "dave@example.com"));
	CHECK(auth_sendermap_allowed(m, "dave", ""));
	CHECK(!auth_sendermap_allowed(m, "Alice", "alice@example.com"));
	auth_sendermap_free(m);
	CHECK(!auth_sendermap_allowed(NULL, "alice", "alice@example.com"));

	p = write_tmp("alice a@example.com\n"
		      "bob not-an-address\n"
		      "carol\n"
		      "alice b@example.com\n"
		      "dave x@exa mple.com x@@example.com @\n");
	m = auth_sendermap_load(p, err, sizeof(err));
	unlink(p);
	CHECK(m == NULL);
	CHECK(strstr(err, ":2: login \"bob\": bad sender \"not-an-address\""));
	CHECK(strstr(err, ":3: login \"carol\" has no senders"));
	CHECK(strstr(err, ":4: login \"alice\" already listed at line 1"));
	CHECK(strstr(err, ":5: login \"dave\": bad sender \"x@@example.com\""));
	CHECK(strstr(err, ":5: login \"dave\": bad sender \"@\""));
	if (failures)
		fprintf(stderr, "errors were:\n%s", err);
	CHECK(auth_sendermap_load("/nonexistent", err, sizeof(err)) == NULL);
	return check_summary("test_sendermap");
}
