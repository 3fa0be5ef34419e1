/*
 * client_tls.h - exported by client_tls.c (TLS on a client connection,
 * the gateway's side); see there.
 */
#ifndef MXG_GATEWAY_CLIENT_TLS_H
#define MXG_GATEWAY_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/gateway/gateway-t.h"

/* At accept, after xprt_init: a listener with TLS gets the TLS transport
 * (implicit: the handshake starts now). 0 (also when the listener has no
 * TLS), or a negative errno: refuse the connection. */
int client_tls_attach(struct gw_sess *s);

/* Copies the transport's counters into gc->stats (every poll). */
void client_tls_sync_stats(struct gw_core *gc);

/* The Received: protocol (RFC 3848) is auth_received_protocol()'s
 * (auth.h): it asks the transport, xprt_is_secure(). */

/* The Received: comment on TLS, as Postfix words it; "" without TLS.
 * snprintf's return. */
int client_tls_received_comment(const struct gw_sess *s, char *buf,
				size_t len);

/* " tls=TLSv1.3 cipher=... bits=256 sni=- resumed=no" (or " tls=failed
 * tls_reason=...", or "") for the session's log line. snprintf's
 * return. */
int client_tls_log_fields(const struct gw_sess *s, char *buf, size_t len);

struct relay_proxy_tls;
struct tls_session_info;

/* The PROXY v2 TLS TLVs for a backend connection opened for s (relay
 * pools with client_info = proxy): fills t (its strings point into in
 * and s, both the caller's to keep until the header is encoded). False
 * when s has no TLS (no TLVs then). Owning core. */
bool client_tls_proxy_info(const struct gw_sess *s,
			   struct tls_session_info *in,
			   struct relay_proxy_tls *t);

#endif /* MXG_GATEWAY_CLIENT_TLS_H */
