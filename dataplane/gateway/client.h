/*
 * client.h - exported by client.c (the client connection); see there.
 */
#ifndef MXG_GATEWAY_CLIENT_H
#define MXG_GATEWAY_CLIENT_H

#include "dataplane/gateway/gateway-t.h"

/* A new client connection on listener port lport from client:cport (an
 * IPv4-mapped or IPv6 address; local: the address it reached, NULL when
 * unknown) over the
 * transport ops (its TCP connection c may be NULL for a transport that
 * has none, as in the unit harness): takes a session slot, runs the
 * connection policy, creates the SMTP engine (STARTTLS offered exactly
 * when the transport can start TLS) and dirties the session. Returns
 * NULL when refused without a greeting (no slot, no listener, ACL with
 * action close). */
struct gw_sess *client_open(struct gw_core *gc, uint16_t lport,
			    const struct net_addr *client, uint16_t cport,
			    const struct net_addr *local,
			    const struct xprt_ops *ops, struct tcp_conn *c);

/* The peer half-closed: answers still owed are sent, then the close. */
void client_peer_eof(struct gw_sess *s);

/* The connection is gone (closed or reset): released by core_run. */
void client_gone(struct gw_sess *s);

/* Frees a session whose connection is gone (core_run only). */
void client_release(struct gw_sess *s);

/* The TCP callbacks of a listening socket and its client connections. */
extern const struct tcp_callbacks client_callbacks;

#endif /* MXG_GATEWAY_CLIENT_H */
