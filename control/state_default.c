/*
 * state_default.c - the embedded default's first run (issue 14): the one
 * submission user, hashed in the users file, its password printed once;
 * with the TLS material of tls_default.c, under the state directory.
 * `mxgate --init-state DIR` runs the same (scripts/run.sh does, for a
 * configuration written from --print-default-config).
 *
 * Threads: main lcore, before the configuration is loaded. Blocks
 * (random bytes, one yescrypt hash, file writes).
 */
#include "control/state_default.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/store.h"
#include "control/tls_default.h"

/* 16 characters from an alphabet without look-alikes (0/O, 1/l/I):
 * 56 symbols, about 93 bits. Bytes >= 224 (4 * 56) are drawn again so
 * every symbol is equally likely. */
static int make_password(char *pw, size_t len)
{
	static const char abc[] = "abcdefghijkmnopqrstuvwxyz"
				  "ABCDEFGHJKLMNPQRSTUVWXYZ"
				  "2345679";
	const size_t n = sizeof(abc) - 1;
	size_t i = 0;

	while (i + 1 < len) {
		unsigned char b[32];
		ssize_t got = getrandom(b, sizeof(b), 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (ssize_t k = 0; k < got && i + 1 < len; k++)
			if (b[k] < 256 - 256 % n)
				pw[i++] = abc[b[k] % n];
		explicit_bzero(b, sizeof(b));
	}
	pw[i] = '\0';
	return 0;
}

static int write_new(const char *path, const char *text, char *err,
		     size_t errlen)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return r;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* link, not rename: never replaces a file made meanwhile */
	if (r == 0 && link(tmp, path) < 0)
		r = -errno;
	unlink(tmp);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

int ctl_auth_default_user(const char *path, char *err, size_t errlen)
{
	char pw[17], hash[AUTH_MAX_HASH], line[AUTH_MAX_HASH + 256];
	int r;

	if (access(path, F_OK) == 0)
		return 0;
	r = make_password(pw, sizeof(pw));
	if (r < 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(-r));
		return r;
	}
	if (auth_hash_password("$y$", 0, pw, hash, sizeof(hash)) < 0) {
		r = errno ? -errno : -EINVAL;
		snprintf(err, errlen, "%s: cannot hash the password (%s)",
			 path, strerror(-r));
		explicit_bzero(pw, sizeof(pw));
		return r;
	}
	snprintf(line, sizeof(line),
		 "# mxgate's first user (embedded default); add users with\n"
		 "# mxgate-mkpasswd LOGIN >> this file, then mxgatectl "
		 "reload\n%s:%s\n",
		 CTL_AUTH_DEFAULT_LOGIN, hash);
	r = write_new(path, line, err, errlen);
	if (r == 0) {
		printf("mxgate: first run: made the submission user "
		       "\"%s\" with password \"%s\"\n"
		       "mxgate: (only its hash is kept, in %s: note the "
		       "password now, it is not shown again)\n",
		       CTL_AUTH_DEFAULT_LOGIN, pw, path);
		fflush(stdout);
	}
	explicit_bzero(pw, sizeof(pw));
	return r;
}

int ctl_default_state(const char *dir, const char *host, char *err,
		      size_t errlen)
{
	char path[4096];
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return r;
	}
	snprintf(path, sizeof(path), "%s/tls", dir);
	r = ctl_tls_default_material(path, host, err, errlen);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/users", dir);
	return ctl_auth_default_user(path, err, errlen);
}
