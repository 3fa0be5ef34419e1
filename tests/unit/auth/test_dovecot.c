/*
 * test_dovecot.c - auth/dovecot.h: the client of Dovecot's auth protocol
 * 1.2. Sans-I/O: the handshake (VERSION, MECH, SPID, CUID, COOKIE, DONE)
 * fed in pieces, requests refused before DONE and for mechanisms the
 * server does not offer, the AUTH line's fields and escaping, OK/FAIL/
 * CONT parsing (user=, reason=, temp), a wrong major version, an
 * over-long line. Then the blocking driver against a scripted server on
 * a Unix socket: OK, FAIL, FAIL temp, a server that closes, a server that
 * never answers (time-out), no socket at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/base64.h"
#include "auth/dovecot.h"
#include "auth/jobs.h"
#include "check.h"

static const char HS[] = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\n"
			 "MECH\tLOGIN\tplaintext\nSPID\t42\nCUID\t7\n"
			 "COOKIE\t0123abcd\nDONE\n";

static struct auth_dovecot_reply r;

static int feed(struct auth_dovecot *c, const char *s)
{
	auth_dovecot_feed(c, s, strlen(s));
	return auth_dovecot_next(c, &r);
}

static void test_sansio(void)
{
	struct auth_dovecot c;
	char out[1024];
	ssize_t n;

	auth_dovecot_init(&c);
	n = auth_dovecot_hello(&c, 1234, out, sizeof(out));
	CHECK(n > 0 && strcmp(out, "VERSION\t1\t2\nCPID\t1234\n") == 0);
	CHECK(auth_dovecot_request(&c, 1, "PLAIN", NULL, 0, NULL, NULL, false,
				   out, sizeof(out)) == -EAGAIN);
	/* the handshake one octet at a time */
	for (size_t i = 0; i < sizeof(HS) - 1; i++) {
		auth_dovecot_feed(&c, HS + i, 1);
		CHECK(auth_dovecot_next(&c, &r) == 0);
	}
	CHECK(c.state == AUTH_DC_READY);
	CHECK(c.mechs == (AUTH_MECH_PLAIN | AUTH_MECH_LOGIN));
	CHECK(auth_dovecot_request(&c, 1, "GSSAPI", NULL, 0, NULL, NULL, false,
				   out, sizeof(out)) == -ENOTSUP);
	static const uint8_t msg[] = "\0alice\0pw";

	n = auth_dovecot_request(&c, 9, "PLAIN", msg, sizeof(msg) - 1,
				 "198.18.0.1", "198.18.0.2\t", true, out,
				 sizeof(out));
	CHECK(n > 0);
	CHECK(strcmp(out, "AUTH\t9\tPLAIN\tservice=smtp\tnologin\tsecured"
			  "\trip=198.18.0.1\tlip=198.18.0.2\001t\tresp="
			  "AGFsaWNlAHB3\n") == 0);
	CHECK(auth_dovecot_request(&c, 9, "PLAIN", msg, sizeof(msg) - 1, NULL,
				   NULL, false, out, 30) == -ENOSPC);
	/* replies */
	CHECK(feed(&c, "OK\t9\tuser=alice@example.com\n") == 1);
	CHECK(r.kind == AUTH_DC_OK && r.id == 9 &&
	      strcmp(r.user, "alice@example.com") == 0);
	CHECK(feed(&c, "FAIL\t10\tuser=bob\treason=bad\001tpass\n") == 1);
	CHECK(r.kind == AUTH_DC_FAIL && r.id == 10 && !r.temp &&
	      strcmp(r.reason, "bad\tpass") == 0);
	CHECK(feed(&c, "FAIL\t11\ttemp\n") == 1 && r.temp);
	CHECK(feed(&c, "CONT\t12\tVXNlcm5hbWU6\n") == 1 &&
	      r.kind == AUTH_DC_CONT && strcmp(r.data, "VXNlcm5hbWU6") == 0);
	/* unknown lines are ignored; two replies in one read */
	CHECK(feed(&c, "NOTICE\tx\nOK\t1\nOK\t2\n") == 1 && r.id == 1);
	CHECK(auth_dovecot_next(&c, &r) == 1 && r.id == 2);
	CHECK(auth_dovecot_next(&c, &r) == 0);
	/* bad id */
	CHECK(feed(&c, "OK\tx1\n") == -EPROTO && c.state == AUTH_DC_BROKEN);

	auth_dovecot_init(&c);
	CHECK(feed(&c, "VERSION\t2\t0\n") == -EPROTO);
	auth_dovecot_init(&c);
	char big[AUTH_DOVECOT_LINE + 10];

	memset(big, 'x', sizeof(big));
	CHECK(auth_dovecot_feed(&c, big, sizeof(big)) == AUTH_DOVECOT_LINE);
	CHECK(auth_dovecot_next(&c, &r) == -EPROTO);
}

/* ---- a scripted Dovecot on a Unix socket ---- */
static char sock_path[108];
static int lfd;
static const char *answer; /* reply line to AUTH ("" = close, NULL =
			      never answer) */
static char seen_auth[1024];

static void *server(void *arg)
{
	(void)arg;
	int fd = accept(lfd, NULL, NULL);
	char buf[2048];
	size_t len = 0;

	if (fd < 0)
		return NULL;
	if (write(fd, HS, strlen(HS)) < 0)
		goto done;
	for (;;) {
		ssize_t g = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (g <= 0)
			break;
		len += (size_t)g;
		buf[len] = 0;
		char *a = strstr(buf, "AUTH\t");

		if (a && strchr(a, '\n')) {
			snprintf(seen_auth, sizeof(seen_auth), "%.*s",
				 (int)(strchr(a, '\n') - a), a);
			if (answer == NULL) {
				sleep(2);
				break;
			}
			if (answer[0] && write(fd, answer, strlen(answer)) < 0)
				break;
			break;
		}
	}
done:
	close(fd);
	return NULL;
}

static enum auth_result run(const char *ans, char *login, int timeout_ms)
{
	pthread_t t;

	answer = ans;
	seen_auth[0] = 0;
	pthread_create(&t, NULL, server, NULL);
	enum auth_result res =
		auth_dovecot_verify(sock_path, "alice", "s3cret", 6,
				    "198.18.0.1", true, timeout_ms, login, 64);
	pthread_join(t, NULL);
	return res;
}

static void test_driver(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char login[64] = "";

	snprintf(sock_path, sizeof(sock_path), "/tmp/test_dovecot.%d",
		 (int)getpid());
	unlink(sock_path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(lfd, 4) == 0);

	CHECK(run("OK\t1\tuser=alice@example.com\n", login, 5000) ==
	      AUTH_RESULT_OK);
	CHECK(strcmp(login, "alice@example.com") == 0);
	/* the request carried PLAIN's NUL alice NUL s3cret */
	CHECK(strstr(seen_auth,
		     "\tPLAIN\tservice=smtp\tnologin\tsecured"
		     "\trip=198.18.0.1\tresp=AGFsaWNlAHMzY3JldA==") != NULL);
	/* the same through the worker job, as a worker runs it */
	{
		static struct auth_verify_job j;
		pthread_t t;

		answer = "OK\t1\tuser=Alice\n";
		pthread_create(&t, NULL, server, NULL);
		auth_verify_job_prepare_dovecot(&j, sock_path, "alice", "pw", 2,
						"198.18.0.7", false, NULL, NULL,
						NULL);
		j.wj.work(&j.wj);
		pthread_join(t, NULL);
		CHECK(j.result == AUTH_RESULT_OK &&
		      strcmp(j.login, "Alice") == 0 && j.password[0] == 0);
		CHECK(strstr(seen_auth, "\trip=198.18.0.7\tresp=AGFsaWNlAHB3"));
	}
	CHECK(run("FAIL\t1\tuser=alice\n", login, 5000) == AUTH_RESULT_FAIL);
	CHECK(run("FAIL\t1\ttemp\treason=db down\n", login, 5000) ==
	      AUTH_RESULT_TEMPFAIL);
	CHECK(run("", login, 5000) == AUTH_RESULT_TEMPFAIL);  /* closed */
	CHECK(run(NULL, login, 300) == AUTH_RESULT_TEMPFAIL); /* time-out */
	close(lfd);
	unlink(sock_path);
	CHECK(auth_dovecot_verify(sock_path, "alice", "x", 1, NULL, false, 500,
				  login, 64) == AUTH_RESULT_TEMPFAIL);
}

int main(void)
{
	test_sansio();
	test_driver();
	return check_summary("test_dovecot");
}
