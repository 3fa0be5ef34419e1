/*
 * test_tls_client.c - tls/'s backend side (issue 13, TLS to backends):
 * client contexts that verify the backend against a CA file and a name,
 * pin it by SHA-256 fingerprint, or only encrypt; SNI (never for an IP
 * literal); the optional client certificate; configuration errors. Run
 * against the server side of our own library (sans-I/O on both ends)
 * and against a real peer, `openssl s_server -rev` on a Unix socket,
 * driven through the same sans-I/O session. Certificates are generated
 * at run time (tls_testcerts.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tls/tls_ctx.h"
#include "tls/tls_session.h"
#include "tls_testcerts.h"

static int failures;
#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",          \
				__FILE__, __LINE__, #c);                      \
			failures++;                                           \
		}                                                             \
	} while (0)

static struct tc_files F;

/* A listener with only the ECDSA certificate (the pin is of one leaf). */
static struct tls_server_ctx *server(enum tls_client_cert cc)
{
	struct tls_cert_spec cert = {F.ec_crt, F.ec_key, NULL};
	struct tls_server_spec sp = {.name = "mx", .certs = &cert,
				     .n_certs = 1, .client_cert = cc,
				     .ca_file = F.ca};
	char err[256];
	int bad;
	struct tls_server_ctx *c = tls_server_ctx_new(&sp, NULL, &bad, err,
						      sizeof(err));

	if (c == NULL)
		fprintf(stderr, "server: %s\n", err);
	return c;
}

static struct tls_client_ctx *client(struct tls_client_spec sp)
{
	char err[256] = "";
	struct tls_client_ctx *c = tls_client_ctx_new(&sp, err, sizeof(err));

	if (c == NULL)
		fprintf(stderr, "client: %s\n", err);
	return c;
}

/* Our client against our server until neither moves. */
static void run(struct tls_session *cli, struct tls_session *srv)
{
	char buf[32768];

	for (int k = 0; k < 20; k++) {
		size_t n, moved = 0;

		tls_session_handshake(cli);
		moved += n = tls_session_take_output(cli, buf, sizeof(buf));
		tls_session_feed(srv, buf, n);
		tls_session_handshake(srv);
		moved += n = tls_session_take_output(srv, buf, sizeof(buf));
		tls_session_feed(cli, buf, n);
		if (moved == 0)
			break;
	}
}

struct outcome {
	enum tls_state cli, srv;
	enum tls_fail cli_fail;
	struct tls_session_info ci, si; /* si.sni: see sni[] */
	char sni[256];			/* "" when none was sent */
	char detail[192];		/* the client's failure */
};

static struct outcome connect_to(struct tls_server_ctx *sc,
				 struct tls_client_ctx *cc, const char *name)
{
	struct tls_session *srv = tls_session_new_server(sc);
	struct tls_session *cli = tls_session_new_client(cc, name);
	struct outcome o;

	memset(&o, 0, sizeof(o));
	CHECK(srv && cli);
	if (srv && cli) {
		char buf[64];

		/* nothing to send before the first step */
		CHECK(tls_session_output_len(cli) == 0);
		run(cli, srv);
		o.cli = tls_session_state(cli);
		o.srv = tls_session_state(srv);
		o.cli_fail = tls_session_fail_reason(cli);
		snprintf(o.detail, sizeof(o.detail), "%s",
			 tls_session_fail_detail(cli));
		tls_session_info(cli, &o.ci);
		tls_session_info(srv, &o.si);
		if (o.si.sni) /* points into the session */
			snprintf(o.sni, sizeof(o.sni), "%s", o.si.sni);
		o.si.sni = NULL;
		if (o.cli == TLS_ST_OPEN && o.srv == TLS_ST_OPEN) {
			CHECK(tls_session_write(cli, "EHLO gw\r\n", 9) == 9);
			tls_session_feed(srv, buf,
					 tls_session_take_output(cli, buf,
								 sizeof(buf)));
			CHECK(tls_session_read(srv, buf, sizeof(buf)) == 9 &&
			      memcmp(buf, "EHLO gw\r\n", 9) == 0);
		}
	}
	tls_session_free(srv);
	tls_session_free(cli);
	return o;
}

static void test_trust_modes(void)
{
	struct tls_server_ctx *sc = server(TLS_CCERT_OFF);
	char pin[100], pin_colons[100], wrong[100];
	struct tls_client_ctx *ca, *untrusted, *opp, *pinned, *pinned_c,
		*pin_wrong, *pin_and_ca;
	struct outcome o;

	tc_fingerprint(F.ec_crt, 0, pin);
	tc_fingerprint(F.ec_crt, 1, pin_colons);
	tc_fingerprint(F.rsa_crt, 0, wrong);
	ca = client((struct tls_client_spec){.name = "p", .verify = true,
					     .ca_file = F.ca});
	/* a trust anchor that did not sign the backend's certificate */
	untrusted = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.other_crt});
	opp = client((struct tls_client_spec){.name = "p"});
	pinned = client((struct tls_client_spec){.name = "p",
						 .fingerprint = pin});
	pinned_c = client((struct tls_client_spec){.name = "p",
						   .fingerprint = pin_colons});
	pin_wrong = client((struct tls_client_spec){.name = "p",
						    .fingerprint = wrong});
	pin_and_ca = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca,
		.fingerprint = pin});
	CHECK(sc && ca && untrusted && opp && pinned && pinned_c &&
	      pin_wrong && pin_and_ca);
	if (!(sc && ca && untrusted && opp && pinned && pinned_c &&
	      pin_wrong && pin_and_ca))
		return;

	/* CA and name */
	o = connect_to(sc, ca, "mx.test");
	CHECK(o.cli == TLS_ST_OPEN && o.srv == TLS_ST_OPEN);
	CHECK(o.ci.peer_cert && o.ci.peer_verified && !o.ci.peer_pinned);
	CHECK(strcmp(o.sni, "mx.test") == 0);
	CHECK(strcmp(o.ci.version, "TLSv1.3") == 0);
	o = connect_to(sc, ca, "wrong.test");
	CHECK(o.cli == TLS_ST_FAILED && o.cli_fail == TLS_FAIL_PEER_CERT);
	CHECK(strstr(o.detail, "hostname mismatch") != NULL);
	CHECK(o.srv != TLS_ST_OPEN);
	o = connect_to(sc, untrusted, "mx.test");
	CHECK(o.cli == TLS_ST_FAILED && o.cli_fail == TLS_FAIL_PEER_CERT);
	/* an address: no SNI (RFC 6066 3), checked against iPAddress
	 * names, which the certificate has none of */
	o = connect_to(sc, ca, "198.18.0.9");
	CHECK(o.cli == TLS_ST_FAILED && o.cli_fail == TLS_FAIL_PEER_CERT);
	o = connect_to(sc, opp, "198.18.0.9");
	CHECK(o.cli == TLS_ST_OPEN && o.sni[0] == '\0');
	/* a verifying context needs a name */
	CHECK(tls_session_new_client(ca, NULL) == NULL);

	/* opportunistic: anything goes, nothing is claimed */
	o = connect_to(sc, opp, "wrong.test");
	CHECK(o.cli == TLS_ST_OPEN && o.srv == TLS_ST_OPEN);
	CHECK(o.ci.peer_cert && !o.ci.peer_pinned);

	/* pinned: chain and name not checked, the leaf is */
	o = connect_to(sc, pinned, "wrong.test");
	CHECK(o.cli == TLS_ST_OPEN && o.ci.peer_pinned);
	CHECK(strcmp(o.ci.peer_sha256, pin) == 0);
	o = connect_to(sc, pinned_c, NULL);
	CHECK(o.cli == TLS_ST_OPEN && o.ci.peer_pinned);
	o = connect_to(sc, pin_wrong, "mx.test");
	CHECK(o.cli == TLS_ST_FAILED && o.cli_fail == TLS_FAIL_PEER_CERT);
	CHECK(o.srv != TLS_ST_OPEN);
	/* pin and CA: both must hold */
	o = connect_to(sc, pin_and_ca, "mx.test");
	CHECK(o.cli == TLS_ST_OPEN && o.ci.peer_pinned && o.ci.peer_verified);
	o = connect_to(sc, pin_and_ca, "wrong.test");
	CHECK(o.cli == TLS_ST_FAILED && o.cli_fail == TLS_FAIL_PEER_CERT);

	tls_client_ctx_free(ca);
	tls_client_ctx_free(untrusted);
	tls_client_ctx_free(opp);
	tls_client_ctx_free(pinned);
	tls_client_ctx_free(pinned_c);
	tls_client_ctx_free(pin_wrong);
	tls_client_ctx_free(pin_and_ca);
	tls_server_ctx_free(sc);
}

/* A backend that requires a client certificate. */
static void test_client_cert(void)
{
	struct tls_server_ctx *sc = server(TLS_CCERT_REQUIRE);
	struct tls_client_ctx *with = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca,
		.cert = F.cli_crt, .key = F.cli_key});
	struct tls_client_ctx *without = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca});
	struct tls_client_ctx *min13 = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca,
		.cert = F.cli_crt, .key = F.cli_key,
		.min_version = 0x0304});
	struct outcome o;

	CHECK(sc && with && without && min13);
	if (sc && with && without && min13) {
		o = connect_to(sc, with, "mx.test");
		CHECK(o.cli == TLS_ST_OPEN && o.srv == TLS_ST_OPEN);
		CHECK(o.si.peer_cert && o.si.peer_verified);
		CHECK(strstr(o.si.peer_subject, "CN=partner.example"));
		o = connect_to(sc, without, "mx.test");
		CHECK(o.srv == TLS_ST_FAILED);
		o = connect_to(sc, min13, "mx.test");
		CHECK(o.cli == TLS_ST_OPEN &&
		      strcmp(o.ci.version, "TLSv1.3") == 0);
	}
	tls_client_ctx_free(with);
	tls_client_ctx_free(without);
	tls_client_ctx_free(min13);
	tls_server_ctx_free(sc);
}

static void expect_error(struct tls_client_spec sp, const char *want)
{
	char err[512] = "";
	struct tls_client_ctx *c = tls_client_ctx_new(&sp, err, sizeof(err));

	CHECK(c == NULL);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "want \"%s\" in \"%s\"\n", want, err);
		failures++;
	}
	tls_client_ctx_free(c);
}

static void test_errors(void)
{
	expect_error((struct tls_client_spec){.verify = true},
		     "tls_ca_file: cannot load");
	expect_error((struct tls_client_spec){.verify = true,
					      .ca_file = F.garbage},
		     "tls_ca_file: cannot load");
	expect_error((struct tls_client_spec){.fingerprint = "12:34"},
		     "tls_fingerprint: \"12:34\" is not a SHA-256");
	expect_error((struct tls_client_spec){.fingerprint =
			      "zz2345678901234567890123456789012345678901234"
			      "5678901234567890123"},
		     "tls_fingerprint");
	expect_error((struct tls_client_spec){.cert = F.garbage,
					      .key = F.cli_key},
		     "tls_cert: cannot read");
	expect_error((struct tls_client_spec){.cert = F.cli_crt,
					      .key = F.garbage},
		     "tls_key: cannot read");
	expect_error((struct tls_client_spec){.cert = F.cli_crt,
					      .key = F.bad_key},
		     "tls_key: the key in");
	expect_error((struct tls_client_spec){.ciphers = "aNULL"},
		     "tls_ciphers");
}

/* ------------------------------------------ against openssl s_server */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static pid_t s_server(const char *sock, int need_cert)
{
	pid_t pid = fork();

	if (pid == 0) {
		int devnull = open("/dev/null", 0);

		dup2(devnull, 0); /* s_server reads commands from stdin */
		if (!getenv("TLS_TEST_VERBOSE")) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		if (need_cert)
			execlp("openssl", "openssl", "s_server", "-unix", sock,
			       "-cert", F.ec_crt, "-key", F.ec_key, "-rev",
			       "-naccept", "1", "-Verify", "1", "-CAfile",
			       F.ca, (char *)NULL);
		else
			execlp("openssl", "openssl", "s_server", "-unix", sock,
			       "-cert", F.ec_crt, "-key", F.ec_key, "-rev",
			       "-naccept", "1", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/*
 * Our sans-I/O client over a Unix socket to s_server -rev (which
 * answers each line reversed). Returns 1 when "olleh" came back, 0 when
 * the exchange failed, -1 when s_server could not be reached. Bounded:
 * 10 s in all.
 */
static int via_s_server(struct tls_client_ctx *cc, int need_cert,
			enum tls_fail *why)
{
	char dir[] = "/tmp/mxg-tlsc-XXXXXX", sock[64], buf[32768];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct tls_session *s = NULL;
	double t0 = now();
	int fd = -1, rc = -1, sent = 0, status;
	size_t got = 0;
	char echo[64];
	pid_t pid;

	*why = TLS_FAIL_NONE;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sock, sizeof(sock), "%s/s", dir);
	pid = s_server(sock, need_cert);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	while (now() - t0 < 5) { /* s_server takes a moment to listen */
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(20000);
	}
	if (fd < 0)
		goto out;
	rc = 0;
	s = tls_session_new_client(cc, "mx.test");
	while (s && now() - t0 < 10) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		size_t n;
		ssize_t r;

		if (tls_session_state(s) == TLS_ST_HANDSHAKE)
			tls_session_handshake(s);
		if (tls_session_state(s) == TLS_ST_OPEN && !sent) {
			tls_session_write(s, "hello\n", 6);
			sent = 1;
		}
		while ((n = tls_session_take_output(s, buf, sizeof(buf))) > 0)
			if (write(fd, buf, n) != (ssize_t)n)
				goto out;
		if (tls_session_state(s) == TLS_ST_FAILED)
			break;
		if (tls_session_state(s) == TLS_ST_OPEN) {
			r = tls_session_read(s, echo + got,
					     sizeof(echo) - 1 - got);
			if (r > 0)
				got += (size_t)r;
			if (got >= 6)
				break;
			if (r < 0)
				break;
		}
		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r <= 0) {
			tls_session_feed_eof(s);
			/* one more pass to read what is buffered */
			if (tls_session_state(s) == TLS_ST_HANDSHAKE)
				tls_session_handshake(s);
			else if (tls_session_state(s) == TLS_ST_OPEN)
				(void)tls_session_read(s, echo, 1);
			break;
		}
		tls_session_feed(s, buf, (size_t)r);
	}
	if (got >= 6 && memcmp(echo, "olleh\n", 6) == 0)
		rc = 1;
	if (s)
		*why = tls_session_fail_reason(s);
out:
	tls_session_free(s);
	if (fd >= 0)
		close(fd);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	unlink(sock);
	rmdir(dir);
	return rc;
}

static void test_s_server(void)
{
	char pin[100], wrong[100];
	struct tls_client_ctx *ca = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca});
	struct tls_client_ctx *pinned, *pin_wrong, *with_cert;
	enum tls_fail why;
	int r;

	tc_fingerprint(F.ec_crt, 0, pin);
	tc_fingerprint(F.rsa_crt, 0, wrong);
	pinned = client((struct tls_client_spec){.name = "p",
						 .fingerprint = pin});
	pin_wrong = client((struct tls_client_spec){.name = "p",
						    .fingerprint = wrong});
	with_cert = client((struct tls_client_spec){
		.name = "p", .verify = true, .ca_file = F.ca,
		.cert = F.cli_crt, .key = F.cli_key});
	r = via_s_server(ca, 0, &why);
	if (r < 0) {
		/* the openssl command is a test dependency (Debian package
		 * openssl, scripts/install-deps.sh): its absence fails */
		fprintf(stderr, "openssl s_server did not start\n");
		failures++;
		goto out;
	}
	CHECK(r == 1);
	CHECK(via_s_server(pinned, 0, &why) == 1);
	CHECK(via_s_server(pin_wrong, 0, &why) == 0 &&
	      why == TLS_FAIL_PEER_CERT);
	CHECK(via_s_server(with_cert, 1, &why) == 1);
	/* s_server -Verify: no client certificate, no echo */
	CHECK(via_s_server(ca, 1, &why) == 0);
out:
	tls_client_ctx_free(ca);
	tls_client_ctx_free(pinned);
	tls_client_ctx_free(pin_wrong);
	tls_client_ctx_free(with_cert);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (tls_global_init() < 0 || tc_make(&F) < 0) {
		fprintf(stderr, "cannot make test certificates\n");
		return 1;
	}
	test_trust_modes();
	test_client_cert();
	test_errors();
	test_s_server();
	tc_remove(&F);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("test_tls_client: all checks passed\n");
	return failures ? 1 : 0;
}
