/*
 * tls_testcerts.c - see tls_testcerts.h. Test-only: keys are generated
 * fresh on every run and removed with the directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls_testcerts.h"

static EVP_PKEY *key_new(int rsa)
{
	return rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	if (e == NULL)
		return -1;
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return 0;
}

static X509 *cert_new(EVP_PKEY *k, const char *cn, const char *san,
		      X509 *issuer, EVP_PKEY *ik, int ca)
{
	static long serial = 1;
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC,
				   (const unsigned char *)"mxgate test", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
				   MBSTRING_ASC, (const unsigned char *)cn, -1,
				   -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	if (ca) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
	}
	if (san)
		add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
	if (X509_sign(x, ik ? ik : k, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL,
							      0, NULL, NULL);
	fclose(f);
	return ok ? 0 : -1;
}

static void join(char *out, const char *dir, const char *name)
{
	size_t d = strlen(dir);

	/* dir is a short mkdtemp() name */
	memcpy(out, dir, d);
	out[d] = '/';
	memcpy(out + d + 1, name, strlen(name) + 1);
}

/* One leaf: key and cert files. */
static int leaf(const char *crt, const char *kf, int rsa, const char *cn,
		const char *san, X509 *ca, EVP_PKEY *cak)
{
	EVP_PKEY *k = key_new(rsa);
	X509 *x = k ? cert_new(k, cn, san, ca, cak, 0) : NULL;
	int rc = x && write_pem(crt, x, NULL) == 0 &&
				 write_pem(kf, NULL, k) == 0
			 ? 0
			 : -1;

	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int tc_make(struct tc_files *f)
{
	EVP_PKEY *cak = key_new(0), *ca2k = key_new(0);
	X509 *ca, *ca2;
	int rc = -1;
	FILE *g;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mxg-tls-XXXXXX");
	if (mkdtemp(f->dir) == NULL || cak == NULL || ca2k == NULL)
		goto out;
	ca = cert_new(cak, "mxgate test CA", NULL, NULL, NULL, 1);
	ca2 = cert_new(ca2k, "unknown CA", NULL, NULL, NULL, 1);
	join(f->ca, f->dir, "ca.pem");
	join(f->ec_crt, f->dir, "ec.crt");
	join(f->ec_key, f->dir, "ec.key");
	join(f->rsa_crt, f->dir, "rsa.crt");
	join(f->rsa_key, f->dir, "rsa.key");
	join(f->other_crt, f->dir, "other.crt");
	join(f->other_key, f->dir, "other.key");
	join(f->cli_crt, f->dir, "client.crt");
	join(f->cli_key, f->dir, "client.key");
	join(f->bad_crt, f->dir, "badclient.crt");
	join(f->bad_key, f->dir, "badclient.key");
	join(f->evil_crt, f->dir, "evil.crt");
	join(f->evil_key, f->dir, "evil.key");
	join(f->garbage, f->dir, "garbage.pem");
	if (ca && ca2 && write_pem(f->ca, ca, NULL) == 0 &&
	    leaf(f->ec_crt, f->ec_key, 0, "mx.test", "DNS:mx.test,DNS:smtp.test",
		 ca, cak) == 0 &&
	    leaf(f->rsa_crt, f->rsa_key, 1, "mx.test",
		 "DNS:mx.test,DNS:smtp.test", ca, cak) == 0 &&
	    leaf(f->other_crt, f->other_key, 0, "other.test",
		 "DNS:other.test,DNS:*.other.test", ca, cak) == 0 &&
	    leaf(f->cli_crt, f->cli_key, 0, "partner.example", NULL, ca,
		 cak) == 0 &&
	    leaf(f->bad_crt, f->bad_key, 0, "stranger.example", NULL, ca2,
		 ca2k) == 0 &&
	    leaf(f->evil_crt, f->evil_key, 0, TC_EVIL_CN, NULL, ca, cak) == 0 &&
	    (g = fopen(f->garbage, "w")) != NULL) {
		fputs("this is not a PEM file\n", g);
		fclose(g);
		rc = 0;
	}
	X509_free(ca);
	X509_free(ca2);
out:
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ca2k);
	return rc;
}

void tc_remove(const struct tc_files *f)
{
	const char *const v[] = {f->ca,	       f->ec_crt,    f->ec_key,
				 f->rsa_crt,   f->rsa_key,   f->other_crt,
				 f->other_key, f->cli_crt,   f->cli_key,
				 f->bad_crt,   f->bad_key,   f->evil_crt,
				 f->evil_key,  f->garbage};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i][0])
			unlink(v[i]);
	if (f->dir[0])
		rmdir(f->dir);
}

void tc_fingerprint(const char *crt, int colons, char *out)
{
	FILE *f = fopen(crt, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char md[32];
	unsigned n = 0;

	out[0] = '\0';
	if (x && X509_digest(x, EVP_sha256(), md, &n) == 1)
		for (unsigned i = 0; i < 32; i++)
			out += sprintf(out,
				       !colons ? "%02x" : i ? ":%02X" : "%02X",
				       md[i]);
	X509_free(x);
	if (f)
		fclose(f);
}
