/*
 * cache.c - compiled Hyperscan databases kept on disk (cache.h).
 *
 * Main lcore only; blocking file I/O at config load, never on a data
 * path core.
 *
 * File layout: "MXGHSDB1", key h[0], key h[1], payload length, payload
 * checksum (FNV-1a 64), then the hs_serialize_database() bytes. The key
 * is in the name and again inside, so a renamed file is refused too.
 */
#include <errno.h>
#include <fcntl.h>
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content/cache.h"

#define MAGIC "MXGHSDB1"
#define HDR_LEN (8 + 4 * 8)
#define MAX_DB (256u << 20)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

static void mix(struct content_cache_key *k, const void *p, size_t n)
{
	k->h[0] = fnv(k->h[0], p, n);
	k->h[1] = fnv(k->h[1] ^ 0x9e3779b97f4a7c15ull, p, n);
}

void content_cache_key(const char *const *exprs, const unsigned *flags,
		       const unsigned *ids, unsigned n, unsigned mode,
		       struct content_cache_key *k)
{
	hs_platform_info_t plat;
	const char *ver = hs_version();

	k->h[0] = 1469598103934665603ull;
	k->h[1] = 14695981039346656037ull ^ 0x5bd1e995ull;
	mix(k, "mxgate-content-cache-1", 21);
	mix(k, ver, strlen(ver) + 1);
	memset(&plat, 0, sizeof(plat));
	if (hs_populate_platform(&plat) == HS_SUCCESS)
		mix(k, &plat, sizeof(plat));
	mix(k, &mode, sizeof(mode));
	mix(k, &n, sizeof(n));
	for (unsigned i = 0; i < n; i++) {
		mix(k, &flags[i], sizeof(flags[i]));
		mix(k, &ids[i], sizeof(ids[i]));
		mix(k, exprs[i], strlen(exprs[i]) + 1);
	}
}

static void path_of(char *out, size_t len, const char *dir,
		    const struct content_cache_key *k)
{
	snprintf(out, len, "%s/%016llx%016llx.hsdb", dir,
		 (unsigned long long)k->h[0], (unsigned long long)k->h[1]);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void *refuse(const char *path, const char *why)
{
	fprintf(stderr, "mxgate: content cache: %s: %s; ignored, the rules "
		"are compiled again\n", path, why);
	unlink(path);
	return NULL;
}

void *content_cache_load(const char *dir, const struct content_cache_key *k)
{
	char path[1200];
	uint8_t hdr[HDR_LEN];
	uint8_t *buf;
	uint64_t len;
	hs_database_t *db = NULL;
	FILE *f;
	hs_error_t e;

	path_of(path, sizeof(path), dir, k);
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fread(hdr, 1, HDR_LEN, f) != HDR_LEN ||
	    memcmp(hdr, MAGIC, 8) != 0 || get64(hdr + 8) != k->h[0] ||
	    get64(hdr + 16) != k->h[1]) {
		fclose(f);
		return refuse(path, "bad header");
	}
	len = get64(hdr + 24);
	if (len == 0 || len > MAX_DB) {
		fclose(f);
		return refuse(path, "bad length");
	}
	buf = malloc(len + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	/* exactly len octets, then the end of the file */
	if (fread(buf, 1, len + 1, f) != len) {
		fclose(f);
		free(buf);
		return refuse(path, "truncated or overlong");
	}
	fclose(f);
	if (fnv(1469598103934665603ull, buf, len) != get64(hdr + 32)) {
		free(buf);
		return refuse(path, "checksum mismatch (corrupt)");
	}
	e = hs_deserialize_database((const char *)buf, len, &db);
	free(buf);
	if (e != HS_SUCCESS) {
		char why[80];

		snprintf(why, sizeof(why), "refused by Hyperscan (error %d)",
			 (int)e);
		return refuse(path, why);
	}
	return db;
}

int content_cache_store(const char *dir, const struct content_cache_key *k,
			const void *db)
{
	char path[1200], tmp[1240];
	uint8_t hdr[HDR_LEN];
	char *bytes = NULL;
	size_t len = 0;
	int fd, rc = 0;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	if (hs_serialize_database((const hs_database_t *)db, &bytes, &len) !=
	    HS_SUCCESS) {
		rc = -ENOMEM;
		goto fail;
	}
	path_of(path, sizeof(path), dir, k);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	memcpy(hdr, MAGIC, 8);
	put64(hdr + 8, k->h[0]);
	put64(hdr + 16, k->h[1]);
	put64(hdr + 24, len);
	put64(hdr + 32, fnv(1469598103934665603ull, bytes, len));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (write(fd, hdr, HDR_LEN) != HDR_LEN ||
	    write(fd, bytes, len) != (ssize_t)len) {
		rc = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
		goto fail;
	}
	free(bytes);
	return 0;
fail:
	free(bytes);
	fprintf(stderr, "mxgate: content cache: cannot store in %s: %s\n", dir,
		strerror(-rc));
	return rc;
}
