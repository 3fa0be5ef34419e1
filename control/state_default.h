/*
 * state_default.h - what the embedded default makes on its first run
 * under the state directory (state_default.c): the TLS material
 * (tls_default.c) and the one submission user (issue 14).
 */
#ifndef MXG_CONTROL_STATE_DEFAULT_H
#define MXG_CONTROL_STATE_DEFAULT_H

#include <stddef.h>

#define CTL_STATE_DIR "/var/lib/mxgate"
/* The embedded default's users file and its first user's login. */
#define CTL_AUTH_DEFAULT_USERS CTL_STATE_DIR "/users"
#define CTL_AUTH_DEFAULT_LOGIN "mxgate"

/* When path does not exist: makes a random password for
 * CTL_AUTH_DEFAULT_LOGIN, writes "LOGIN:HASH" (yescrypt, libcrypt's
 * default cost, auth/store.h) to path (mode 0600, never over an existing
 * file) and prints the login and the password on stdout, the only time
 * the password is shown. 0 (also when path exists), or a negative errno
 * with a message in err. Main lcore; blocks. */
int ctl_auth_default_user(const char *path, char *err, size_t errlen);

/* Both first-run pieces under dir: dir/tls (ctl_tls_default_material for
 * host) and dir/users (ctl_auth_default_user). dir is made when
 * missing. 0, or a negative errno with a message in err. */
int ctl_default_state(const char *dir, const char *host, char *err,
		      size_t errlen);

#endif /* MXG_CONTROL_STATE_DEFAULT_H */
