/*
 * tls_default.h - the embedded default's TLS material (tls_default.c).
 */
#ifndef MXG_CONTROL_TLS_DEFAULT_H
#define MXG_CONTROL_TLS_DEFAULT_H

#include <stddef.h>

/* Where the embedded default keeps them (scripts/run.sh's too). */
#define CTL_TLS_DEFAULT_DIR "/var/lib/mxgate/tls"

/* Makes, when missing, under dir: ca.pem/ca.key (a test CA), ecdsa.crt/
 * ecdsa.key (P-256) and rsa.crt/rsa.key (2048) for host, localhost and
 * 198.18.0.2, signed by the CA; says so on stdout. 0, or a negative
 * errno with a message in err. Main lcore; blocks. */
int ctl_tls_default_material(const char *dir, const char *host, char *err,
			     size_t errlen);

#endif /* MXG_CONTROL_TLS_DEFAULT_H */
