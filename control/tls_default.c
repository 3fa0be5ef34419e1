/*
 * tls_default.c - the embedded default's TLS material (issue 13): on the
 * first run without --config, a test CA and an ECDSA P-256 and an RSA
 * 2048 certificate for this host (also valid for localhost and
 * 198.18.0.2) under the state directory, the same files
 * scripts/make-tls-certs.sh makes. Existing files are kept. Test
 * material: a deployment names its own certificates in its file.
 *
 * Threads: main lcore, before the configuration is loaded. Blocks (key
 * generation, file writes): never called from a dataplane core.
 */
#include "control/tls_default.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *make_key(bool rsa)
{
	return rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
		   : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&v3, issuer, crt, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ex)
		return -1;
	ok = X509_add_ext(crt, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

/* A certificate for key, signed by ca_key (issuer ca, or itself). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *ca,
		       EVP_PKEY *ca_key, const char *san, long days)
{
	X509 *crt = X509_new();
	X509_NAME *name;
	unsigned char serial[8];
	FILE *u = fopen("/dev/urandom", "rb");
	BIGNUM *bn;
	bool ok = crt != NULL;

	if (!u || fread(serial, 1, sizeof(serial), u) != sizeof(serial))
		ok = false;
	if (u)
		fclose(u);
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt));
	BN_free(bn);
	ok = ok && X509_set_version(crt, 2);
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	ok = ok && X509_gmtime_adj(X509_getm_notAfter(crt), days * 86400L);
	ok = ok && X509_set_pubkey(crt, key);
	name = ok ? X509_get_subject_name(crt) : NULL;
	ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					      (const unsigned char *)
					      "mxgate test", -1, -1, 0);
	ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					      (const unsigned char *)cn, -1,
					      -1, 0);
	ok = ok && X509_set_issuer_name(crt, ca ? X509_get_subject_name(ca)
						: name);
	if (ok && !ca) {
		ok = add_ext(crt, crt, NID_basic_constraints,
			     "critical,CA:TRUE") == 0 &&
		     add_ext(crt, crt, NID_key_usage,
			     "critical,keyCertSign,cRLSign") == 0;
	} else if (ok) {
		ok = add_ext(crt, ca, NID_basic_constraints, "CA:FALSE") == 0 &&
		     add_ext(crt, ca, NID_ext_key_usage, "serverAuth") == 0 &&
		     add_ext(crt, ca, NID_subject_alt_name, san) == 0;
	}
	ok = ok && X509_sign(crt, ca_key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(crt);
		return NULL;
	}
	return crt;
}

static int write_pem(const char *dir, const char *file, mode_t mode,
		     EVP_PKEY *key, X509 *crt)
{
	char path[4096];
	FILE *f;
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_X509(f, crt);
	if (fclose(f) != 0 || !ok)
		return -EIO;
	return 0;
}

static bool exists(const char *dir, const char *file)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, R_OK) == 0;
}

int ctl_tls_default_material(const char *dir, const char *host, char *err,
			     size_t errlen)
{
	static const char *const leaves[2] = {"ecdsa", "rsa"};
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	char san[512];
	int r = 0, made = 0;

	if (exists(dir, "ecdsa.crt") && exists(dir, "ecdsa.key") &&
	    exists(dir, "rsa.crt") && exists(dir, "rsa.key"))
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return r;
	}
	/* the CA: kept when there, else made with its key */
	if (exists(dir, "ca.pem") && exists(dir, "ca.key")) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/ca.pem", dir);
		f = fopen(path, "r");
		ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "%s/ca.key", dir);
		f = fopen(path, "r");
		ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
	} else {
		ca_key = make_key(false);
		ca = ca_key ? make_cert(ca_key, "mxgate test CA", NULL, ca_key,
					NULL, 3650)
			    : NULL;
		if (ca && (write_pem(dir, "ca.key", 0600, ca_key, NULL) < 0 ||
			   write_pem(dir, "ca.pem", 0644, NULL, ca) < 0))
			r = -EIO;
	}
	if (!ca || !ca_key) {
		snprintf(err, errlen, "%s: cannot make or read the test CA",
			 dir);
		r = -EIO;
		goto out;
	}
	snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:198.18.0.2",
		 host);
	for (int i = 0; i < 2 && r == 0; i++) {
		char crtf[16], keyf[16];
		EVP_PKEY *k;
		X509 *c;

		snprintf(crtf, sizeof(crtf), "%s.crt", leaves[i]);
		snprintf(keyf, sizeof(keyf), "%s.key", leaves[i]);
		if (exists(dir, crtf) && exists(dir, keyf))
			continue;
		k = make_key(i == 1);
		c = k ? make_cert(k, host, ca, ca_key, san, 825) : NULL;
		if (!c || write_pem(dir, keyf, 0600, k, NULL) < 0 ||
		    write_pem(dir, crtf, 0644, NULL, c) < 0) {
			snprintf(err, errlen, "%s/%s: cannot make it", dir,
				 crtf);
			r = -EIO;
		} else {
			made++;
		}
		X509_free(c);
		EVP_PKEY_free(k);
	}
	if (r == 0 && made)
		printf("mxgate: TLS: made test certificates for %s under %s "
		       "(ecdsa.crt, rsa.crt, CA ca.pem)\n",
		       host, dir);
out:
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return r;
}
