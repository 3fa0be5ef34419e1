/*
 * rx.c - received TCP segments held between feeds (see rx.h).
 *
 * Owner: one dataplane lcore. Promises: every segment detached from TCP
 * is freed exactly once, by gw_rx_feed once consumed, gw_rx_discard or
 * gw_rx_free.
 */
#include "dataplane/gateway/rx.h"

#include <rte_mbuf.h>

#include "dataplane/net/tcp.h"

/* Received segments held between feeds are detached one by one (the
 * chain head's pkt_len/nb_segs are not maintained), so they are freed one
 * by one too. */
void gw_rx_free(struct gw_rx *rx)
{
	while (rx->head) {
		struct rte_mbuf *n = rx->head->next;

		rx->head->next = NULL;
		rte_pktmbuf_free_seg(rx->head);
		rx->head = n;
	}
	rx->off = 0;
}

/* Drop the head segment once fully consumed; the next becomes the head. */
static void rx_next(struct gw_rx *rx)
{
	struct rte_mbuf *next = rx->head->next;

	rx->head->next = NULL;
	rte_pktmbuf_free_seg(rx->head);
	rx->head = next;
	rx->off = 0;
}

size_t gw_rx_feed(struct gw_rx *rx, struct tcp_conn *tc, gw_rx_sink_fn sink,
		  void *ctx)
{
	size_t total = 0;

	for (;;) {
		size_t n, len;

		if (!rx->head && tc) {
			rx->head = tcp_recv_chain(tc, 65536);
			rx->off = 0;
		}
		if (!rx->head)
			break;
		len = rx->head->data_len - rx->off;
		n = sink(ctx, rte_pktmbuf_mtod_offset(rx->head, uint8_t *,
						      rx->off),
			 len);
		total += n;
		rx->off += (uint32_t)n;
		if (rx->off < rx->head->data_len)
			break;
		rx_next(rx);
	}
	return total;
}

size_t gw_rx_discard(struct gw_rx *rx, struct tcp_conn *tc)
{
	size_t n = 0;

	for (struct rte_mbuf *m = rx->head; m; m = m->next)
		n += m->data_len;
	n -= rx->off;
	gw_rx_free(rx);
	while (tc) {
		struct rte_mbuf *m = tcp_recv_chain(tc, 65536);

		if (!m)
			break;
		rx->head = m;
		for (; m; m = m->next)
			n += m->data_len;
		gw_rx_free(rx);
	}
	return n;
}
