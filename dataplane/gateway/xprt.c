/*
 * xprt.c - the parts of the client transport every implementation shares
 * (see xprt.h): set-up, shutdown, the STARTTLS byte boundary, release.
 *
 * Owner: the dataplane lcore of the connection. Promises: after
 * xprt_start_tls() returned >= 0 no byte received before it reaches the
 * engine; every byte dropped there is counted in starttls_discarded.
 */
#include "dataplane/gateway/xprt.h"

#include <errno.h>
#include <string.h>

#include "dataplane/net/tcp.h"

void xprt_init(struct xprt *x, const struct xprt_ops *ops,
	       struct tcp_conn *tc)
{
	memset(x, 0, sizeof(*x));
	x->ops = ops;
	x->tc = tc;
	x->state = XPRT_READY;
}

int xprt_shutdown(struct xprt *x)
{
	if (x->state == XPRT_GONE || x->state == XPRT_CLOSING)
		return 0;
	x->state = XPRT_CLOSING;
	return x->ops->shutdown(x);
}

int64_t xprt_start_tls(struct xprt *x)
{
	size_t n;
	int r;

	if (!xprt_can_start_tls(x))
		return -ENOTSUP;
	n = x->ops->discard_input(x);
	x->starttls_discarded += n;
	x->state = XPRT_TLS_HANDSHAKE;
	r = x->ops->start_tls(x);
	if (r < 0)
		return r;
	return (int64_t)n;
}

void xprt_release(struct xprt *x)
{
	if (x->ops && x->ops->release)
		x->ops->release(x);
	gw_rx_free(&x->rx);
	x->tc = NULL;
	x->state = XPRT_GONE;
}
