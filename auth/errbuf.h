/*
 * errbuf.h - internal to auth/: the collector of "FILE:LINE: ..." load
 * errors (every bad line is reported, then the load fails as a whole).
 * Main lcore only, like the loaders.
 */
#ifndef MXG_AUTH_ERRBUF_H
#define MXG_AUTH_ERRBUF_H

#include <stddef.h>

struct auth_errbuf {
	char *p; /* caller's buffer, may be NULL */
	size_t cap, used;
	unsigned n; /* errors seen, also those that did not fit */
};

void auth_errbuf_init(struct auth_errbuf *e, char *p, size_t cap);
void auth_errbuf_add(struct auth_errbuf *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* MXG_AUTH_ERRBUF_H */
