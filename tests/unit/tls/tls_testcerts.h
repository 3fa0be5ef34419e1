/*
 * tls_testcerts.h - test-only certificates made at run time with the
 * EVP/X509 APIs (no private key is committed): a CA, a second CA nobody
 * trusts, an ECDSA P-256 and an RSA 2048 server certificate for
 * "mx.test", an ECDSA one for "other.test", client certificates from
 * each CA, and a few broken files. Used by the TLS unit tests, the TLS
 * fuzzer and bench/tls.
 */
#ifndef MXG_TLS_TESTCERTS_H
#define MXG_TLS_TESTCERTS_H

#include <limits.h>

struct tc_files {
	char dir[PATH_MAX];
	char ca[PATH_MAX];	    /* trusted CA (PEM) */
	char ec_crt[PATH_MAX], ec_key[PATH_MAX];       /* mx.test P-256 */
	char rsa_crt[PATH_MAX], rsa_key[PATH_MAX];     /* mx.test RSA 2048 */
	char other_crt[PATH_MAX], other_key[PATH_MAX]; /* other.test, *.other.test */
	char cli_crt[PATH_MAX], cli_key[PATH_MAX];     /* client, trusted CA */
	char bad_crt[PATH_MAX], bad_key[PATH_MAX];     /* client, unknown CA */
	/* client, trusted CA, a CN with '"', CR LF and '\\' (a header
	 * injection attempt through the Received: comment) */
	char evil_crt[PATH_MAX], evil_key[PATH_MAX];
	char garbage[PATH_MAX];	    /* not PEM */
};

#define TC_EVIL_CN "evil\"\r\nX-Injected: 1\\"

/* Makes every file under a new temporary directory. 0 or -1. */
int tc_make(struct tc_files *f);
/* SHA-256 of the PEM certificate in crt as hex into out (at least 96
 * bytes): lower case, or upper case pairs separated by colons as
 * `openssl x509 -fingerprint` prints. "" if it cannot be read. */
void tc_fingerprint(const char *crt, int colons, char *out);
/* Removes the files and the directory. */
void tc_remove(const struct tc_files *f);

#endif
