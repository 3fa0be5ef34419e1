/*
 * client.h - exported by client.c (the client connection); see there.
 */
#ifndef MXG_GATEWAY_CLIENT_H
#define MXG_GATEWAY_CLIENT_H

#include "dataplane/gateway/gateway-t.h"

void client_release(struct gw_sess *s);

/* The TCP callbacks of a listening socket and its client connections. */
extern const struct tcp_callbacks client_callbacks;

#endif /* MXG_GATEWAY_CLIENT_H */
