/*
 * tcp.h - the upper-layer API of the per-core TCP: event callbacks plus
 * listen/connect/send/recv/close/abort. No sockets, no file descriptors.
 *
 * Ownership: a struct tcp_conn belongs to the lcore whose net_stack created
 * it; call these functions only from that lcore, typically from inside a
 * callback or the poll loop. Callbacks run synchronously from
 * net_stack_input() / net_stack_poll().
 *
 * Lifetime: a conn handed out by accepted() or tcp_connect() stays valid
 * until exactly one of closed() or reset() has been called for it; after
 * that the pointer must not be used. The upper layer may call tcp_close()
 * or tcp_abort() from any callback, including readable().
 */
#ifndef MXG_TCP_H
#define MXG_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "net.h"

struct tcp_conn;

struct tcp_callbacks {
	/* Passive open reached ESTABLISHED. Return the context to attach to
	 * the connection, or NULL to refuse it (the stack sends RST). */
	void *(*accepted)(void *listen_arg, struct tcp_conn *c);
	/* Active open reached ESTABLISHED. */
	void (*connected)(void *ctx, struct tcp_conn *c);
	/* New in-order data is waiting in the receive buffer. */
	void (*readable)(void *ctx, struct tcp_conn *c);
	/* Send space became available after tcp_send() had returned short. */
	void (*writable)(void *ctx, struct tcp_conn *c);
	/* The peer sent FIN: no more data will come after what is buffered. */
	void (*peer_closed)(void *ctx, struct tcp_conn *c);
	/* Final: the connection finished its close (ours and the peer's FIN
	 * acknowledged, or it entered TIME_WAIT). c is invalid afterwards. */
	void (*closed)(void *ctx, struct tcp_conn *c);
	/* Final: the connection died: RST received, retransmission limit,
	 * connection refused (active open), or tcp_abort(). err is a positive
	 * errno (ECONNRESET, ETIMEDOUT, ECONNREFUSED, ECONNABORTED). c is
	 * invalid afterwards. Not called for tcp_abort() itself. */
	void (*reset)(void *ctx, struct tcp_conn *c, int err);
};

/* Listen on port (host order) on the stack's addresses, both families
 * (dual-stack: IPv4 and, when configured, IPv6). The callbacks and
 * listen_arg are shared by every connection accepted on it. Returns 0, or
 * -EADDRINUSE / -ENOSPC. */
int tcp_listen(struct net_stack *st, uint16_t port,
	       const struct tcp_callbacks *cb, void *listen_arg);

/* The address families a listener serves (issue 16: a listener that
 * names an address serves only that address's family). */
#define TCP_FAMILY_V4 1u
#define TCP_FAMILY_V6 2u
#define TCP_FAMILY_ANY (TCP_FAMILY_V4 | TCP_FAMILY_V6)

/* Restrict the listener on port to families (a non-empty TCP_FAMILY_*
 * mask; tcp_listen() starts with TCP_FAMILY_ANY). A SYN of another family
 * is answered as on a closed port (RST); established connections are not
 * affected. Returns 0, -ENOENT (no listener) or -EINVAL. */
int tcp_listen_families(struct net_stack *st, uint16_t port,
			unsigned families);

/* Stop listening; established connections are not affected. */
int tcp_unlisten(struct net_stack *st, uint16_t port);

/* Active open to dst:dport (dst network order, dport host order) from a
 * local port in this core's ephemeral range. *out receives the conn at
 * once (state SYN_SENT); connected() or reset() follows. Returns 0 or
 * -EADDRNOTAVAIL (no free port), -ENOSPC (table full). */
int tcp_connect(struct net_stack *st, rte_be32_t dst, uint16_t dport,
		const struct tcp_callbacks *cb, void *ctx,
		struct tcp_conn **out);

/* Active open over IPv6 to dst (16 bytes, network order) from our global
 * IPv6 address; otherwise as tcp_connect(). -EADDRNOTAVAIL also while
 * IPv6 is off or our address is still tentative (DAD). */
int tcp_connect6(struct net_stack *st, const struct net_addr *dst,
		 uint16_t dport, const struct tcp_callbacks *cb, void *ctx,
		 struct tcp_conn **out);

/* Copy up to len bytes into the send buffer. Returns bytes taken (may be
 * short or 0 when the buffer is full: writable() fires when space opens),
 * or -EPIPE after close/abort or in a state that cannot send. */
ssize_t tcp_send(struct tcp_conn *c, const void *buf, size_t len);

/* tcp_send that, with more set, only queues (like MSG_MORE): the data
 * leaves with the next output of this conn: tcp_flush, tcp_close (then
 * in the same segment as the FIN), a later tcp_send, an ACK or a timer. */
ssize_t tcp_send_more(struct tcp_conn *c, const void *buf, size_t len,
		      bool more);

/* Send what the windows allow now (after tcp_send_more). */
void tcp_flush(struct tcp_conn *c);

/* Free space in the send buffer, bytes. */
size_t tcp_send_space(const struct tcp_conn *c);

/* Copy up to len bytes of in-order received data out of the receive
 * buffer and reopen the window by that much. Returns bytes copied (0 if
 * none buffered). */
size_t tcp_recv(struct tcp_conn *c, void *buf, size_t len);

/* Zero-copy receive: detach up to max bytes of buffered data as an mbuf
 * chain (whole segments; the chain's pkt_len tells how much). The caller
 * owns and must free the chain. Returns NULL if nothing is buffered. */
struct rte_mbuf *tcp_recv_chain(struct tcp_conn *c, uint32_t max);

/* Bytes of in-order data waiting in the receive buffer. */
size_t tcp_recv_avail(const struct tcp_conn *c);

/* Graceful close: FIN after everything already sent. Further receive data
 * is still delivered until the peer's FIN. closed() follows. */
int tcp_close(struct tcp_conn *c);

/* Abortive close: send RST, free the conn immediately. No callback. */
void tcp_abort(struct tcp_conn *c);

void tcp_set_ctx(struct tcp_conn *c, void *ctx);
void *tcp_get_ctx(const struct tcp_conn *c);

/* Endpoint IPv4 addresses, network byte order (ports host order). For an
 * IPv6 connection the addresses are 0 (0.0.0.0): IPv6-aware callers use
 * tcp_conn_addrs6(). */
void tcp_conn_addrs(const struct tcp_conn *c, rte_be32_t *laddr,
		    uint16_t *lport, rte_be32_t *raddr, uint16_t *rport);

/* Endpoint addresses of either family (IPv4 as ::ffff:a.b.c.d). */
void tcp_conn_addrs6(const struct tcp_conn *c, struct net_addr *laddr,
		     uint16_t *lport, struct net_addr *raddr, uint16_t *rport);

/* True for a connection over IPv6. */
bool tcp_conn_is_v6(const struct tcp_conn *c);

/* RFC 9293 states, for tests and diagnostics. */
enum tcp_state {
	TCP_CLOSED,
	TCP_LISTEN,
	TCP_SYN_SENT,
	TCP_SYN_RCVD,
	TCP_ESTABLISHED,
	TCP_FIN_WAIT_1,
	TCP_FIN_WAIT_2,
	TCP_CLOSE_WAIT,
	TCP_CLOSING,
	TCP_LAST_ACK,
	TCP_TIME_WAIT,
};
enum tcp_state tcp_conn_state(const struct tcp_conn *c);
const char *tcp_state_name(enum tcp_state s);

/* Effective send MSS of the connection (after options and ICMP
 * fragmentation-needed). */
uint16_t tcp_conn_mss(const struct tcp_conn *c);

#endif /* MXG_TCP_H */
