/*
 * auth_bench.c - password verifications per second per worker thread
 * (issue 14): the exact work a worker does for AUTH PLAIN/LOGIN
 * (auth_verify_job_work: crypt_r, constant-time compare, wipe), for
 * yescrypt at libcrypt's default cost (the users file's recommended
 * hash) and SHA-512 crypt at 5000 rounds (the baseline, measured in the
 * same run). Also the SASL machine's own cost per PLAIN exchange (decode
 * and parse, no hash) to show where the time goes. Prints JSON.
 * usage: auth_bench SECONDS_PER_CASE THREADS
 */
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/base64.h"
#include "auth/jobs.h"
#include "auth/sasl.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct arg {
	const char *hash;
	double secs;
	unsigned long n, ok;
};

static void *run(void *p)
{
	struct arg *a = p;
	struct auth_verify_job j;
	double t0 = now();

	while (now() - t0 < a->secs) {
		memset(&j, 0, sizeof(j));
		snprintf(j.hash, sizeof(j.hash), "%s", a->hash);
		strcpy(j.password, "correct horse battery");
		j.known = true;
		auth_verify_job_work(&j.wj);
		a->n++;
		a->ok += j.result == AUTH_RESULT_OK;
	}
	return NULL;
}

static double measure(const char *hash, double secs, int threads,
		      unsigned long *okp)
{
	pthread_t t[64];
	struct arg a[64];
	double t0 = now();
	unsigned long n = 0, ok = 0;

	for (int i = 0; i < threads; i++) {
		a[i] = (struct arg){hash, secs, 0, 0};
		pthread_create(&t[i], NULL, run, &a[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		n += a[i].n;
		ok += a[i].ok;
	}
	*okp = ok;
	return (double)n / (now() - t0) / threads;
}

static const char *mkhash(const char *prefix, unsigned long cost)
{
	static char out[2][AUTH_MAX_HASH];
	static int k;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	memset(&cd, 0, sizeof(cd));
	crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt));
	k ^= 1;
	snprintf(out[k], sizeof(out[k]), "%s",
		 crypt_r("correct horse battery", salt, &cd));
	return out[k];
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	const char *y = mkhash("$y$", 0);
	char ybuf[AUTH_MAX_HASH];

	snprintf(ybuf, sizeof(ybuf), "%s", y);
	const char *s6 = mkhash("$6$", 5000);
	unsigned long oky, oks;

	if (threads < 1 || threads > 64)
		threads = 1;
	double ry = measure(ybuf, secs, threads, &oky);
	double rs = measure(s6, secs, threads, &oks);

	/* the machine alone: one PLAIN exchange up to the verify request */
	struct auth_sasl_config cfg = {.mechanisms = AUTH_MECH_PLAIN};
	struct auth_sasl m;
	struct auth_sasl_out o;
	char ir[128];
	static const char msg[] = "\0alice\0correct horse battery";
	unsigned long n = 0;

	auth_b64_encode((const uint8_t *)msg, sizeof(msg) - 1, ir, sizeof(ir));
	double t0 = now();

	while (now() - t0 < secs) {
		for (int i = 0; i < 1000; i++) {
			auth_sasl_init(&m, &cfg);
			auth_sasl_begin(&m, "PLAIN", 5, ir, strlen(ir), true,
					false, &o);
			auth_sasl_verified(&m, AUTH_RESULT_OK, &o);
		}
		n += 1000;
	}
	double rm = (double)n / (now() - t0);

	printf("{\n  \"seconds_per_case\": %.1f,\n  \"threads\": %d,\n"
	       "  \"yescrypt\": { \"setting\": \"%.7s\", "
	       "\"verifications_per_s_per_thread\": %.1f, \"ok\": %lu },\n"
	       "  \"sha512crypt_5000\": { \"setting\": \"$6$\", "
	       "\"verifications_per_s_per_thread\": %.1f, \"ok\": %lu },\n"
	       "  \"sasl_plain_exchanges_per_s_no_hash\": %.0f\n}\n",
	       secs, threads, ybuf, ry, oky, rs, oks, rm);
	return oky && oks ? 0 : 1;
}
