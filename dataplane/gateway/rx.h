/*
 * rx.h - received TCP segments held between feeds, and the one loop that
 * walks them into a consumer (the SMTP engine through xprt_plain, the
 * relay client of a backend connection).
 *
 * Owner: one dataplane lcore (the connection's). Zero copy: the consumer
 * reads straight from the mbufs tcp_recv_chain() detached; what it does
 * not take stays held (head segment and offset) for the next feed.
 */
#ifndef MXG_GATEWAY_RX_H
#define MXG_GATEWAY_RX_H

#include <stddef.h>
#include <stdint.h>

struct rte_mbuf;
struct tcp_conn;

struct gw_rx {
	struct rte_mbuf *head; /* unconsumed received segments */
	uint32_t off;          /* consumed bytes of head */
};

/* Takes up to len bytes at p; returns how many it took (0..len). Taking
 * less than len means "no more for now": the feed stops there. */
typedef size_t (*gw_rx_sink_fn)(void *ctx, const uint8_t *p, size_t len);

/* Offers the held bytes, then what tc has buffered (tc may be NULL), to
 * sink until it takes less than offered or nothing is left. Returns the
 * bytes sink took. */
size_t gw_rx_feed(struct gw_rx *rx, struct tcp_conn *tc, gw_rx_sink_fn sink,
		  void *ctx);

/* Drops everything held and everything tc has buffered (tc may be NULL)
 * without looking at it. Returns how many bytes were dropped. */
size_t gw_rx_discard(struct gw_rx *rx, struct tcp_conn *tc);

/* Frees the held segments (teardown, release). */
void gw_rx_free(struct gw_rx *rx);

#endif /* MXG_GATEWAY_RX_H */
