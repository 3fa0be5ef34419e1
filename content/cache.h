/*
 * cache.h - compiled Hyperscan databases kept on disk across restarts
 * (issue 15: "a restart does not recompile an unchanged rule set").
 *
 * One file per database (one per target class of a rule set), named by
 * a key over everything that decides the compiled bytes: the
 * expressions, their flags and ids, the mode, the Hyperscan version and
 * the platform Hyperscan detects. An unchanged class loads its file
 * (hs_deserialize_database) instead of compiling; a changed one gets
 * another key, so another file. A file that is short, corrupt (our
 * checksum over the serialized bytes) or refused by Hyperscan is
 * ignored with a line on stderr, unlinked and rewritten after the
 * compile.
 *
 * Main lcore only (config load and reload); reads and writes files.
 */
#ifndef MXG_CONTENT_CACHE_H
#define MXG_CONTENT_CACHE_H

#include <stdint.h>

struct content_cache_key {
	uint64_t h[2]; /* two 64-bit hashes of the same material */
};

/* The key of one database: n expressions with their flags and ids,
 * compiled in mode (HS_MODE_BLOCK or HS_MODE_STREAM). */
void content_cache_key(const char *const *exprs, const unsigned *flags,
		       const unsigned *ids, unsigned n, unsigned mode,
		       struct content_cache_key *k);

/* The database stored under k in dir (hs_database_t *), or NULL: no
 * file (a miss), or a bad one (logged on stderr, unlinked). */
void *content_cache_load(const char *dir, const struct content_cache_key *k);

/* Stores db (hs_database_t *) under k in dir (made 0700 when missing),
 * written to a temporary name and renamed. 0 or a negative errno
 * (logged on stderr; the compiled set is used all the same). */
int content_cache_store(const char *dir, const struct content_cache_key *k,
			const void *db);

#endif
