/* errbuf.c - the load error collector of auth/ (see errbuf.h). */
#include <stdarg.h>
#include <stdio.h>

#include "auth/errbuf.h"

void auth_errbuf_init(struct auth_errbuf *e, char *p, size_t cap)
{
	e->p = p;
	e->cap = cap;
	e->used = 0;
	e->n = 0;
	if (p && cap)
		p[0] = 0;
}

void auth_errbuf_add(struct auth_errbuf *e, const char *fmt, ...)
{
	va_list ap;

	e->n++;
	if (e->p == NULL || e->used + 1 >= e->cap)
		return;
	va_start(ap, fmt);
	int k = vsnprintf(e->p + e->used, e->cap - e->used, fmt, ap);
	va_end(ap);
	if (k > 0)
		e->used += (size_t)k < e->cap - e->used ? (size_t)k
							: e->cap - e->used - 1;
}
