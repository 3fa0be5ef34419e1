/*
 * xprt_plain.c - the client transport without TLS (see xprt.h): today's
 * TCP code, moved. Received segments are read zero-copy (rx.c).
 *
 * Owner: the dataplane lcore of the connection. It cannot start TLS, so
 * a listener served by it never advertises STARTTLS and the session
 * refuses the command (454).
 */
#include "dataplane/gateway/xprt.h"

#include "dataplane/net/tcp.h"

static size_t plain_read(struct xprt *x, gw_rx_sink_fn sink, void *ctx)
{
	return gw_rx_feed(&x->rx, x->tc, sink, ctx);
}

static ssize_t plain_send_more(struct xprt *x, const void *buf, size_t len,
			       bool last)
{
	return tcp_send_more(x->tc, buf, len, last);
}

static void plain_flush(struct xprt *x)
{
	tcp_flush(x->tc);
}

static int plain_shutdown(struct xprt *x)
{
	return tcp_close(x->tc);
}

static size_t plain_discard_input(struct xprt *x)
{
	return gw_rx_discard(&x->rx, x->tc);
}

const struct xprt_ops xprt_plain_ops = {
	.name = "plain",
	.read = plain_read,
	.send_more = plain_send_more,
	.flush = plain_flush,
	.shutdown = plain_shutdown,
	.discard_input = plain_discard_input,
	.start_tls = NULL, /* no TLS yet (issue 13): STARTTLS is refused */
	.is_secure = NULL, /* cleartext: never secure */
	.release = NULL,
};
