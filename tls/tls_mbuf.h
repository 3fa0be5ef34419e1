/*
 * tls_mbuf.h - feeding a tls_session from DPDK mbufs (the dataplane's
 * received segments) without copying them into a staging buffer first:
 * each segment's bytes go straight into the session's input BIO.
 * Header-only so that tls/ itself does not depend on DPDK.
 *
 * Threads: the session's owner (see tls_session.h).
 */
#ifndef MXG_TLS_MBUF_H
#define MXG_TLS_MBUF_H

#include <rte_mbuf.h>

#include "tls/tls_session.h"

/* Feeds len bytes of the chain m starting off bytes in. Returns the
 * bytes fed, or a negative errno from tls_session_feed (the session has
 * then failed). */
static inline int tls_session_feed_mbuf(struct tls_session *s,
					const struct rte_mbuf *m, uint32_t off,
					uint32_t len)
{
	int total = 0;

	for (; m && len; m = m->next) {
		uint32_t n;
		int r;

		if (off >= m->data_len) {
			off -= m->data_len;
			continue;
		}
		n = m->data_len - off;
		if (n > len)
			n = len;
		r = tls_session_feed(s, rte_pktmbuf_mtod_offset(m, const char *,
								off),
				     n);
		if (r < 0)
			return r;
		total += r;
		len -= n;
		off = 0;
	}
	return total;
}

#endif /* MXG_TLS_MBUF_H */
