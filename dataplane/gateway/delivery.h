/*
 * delivery.h - exported by delivery.c (delivery of a transaction); see there.
 */
#ifndef MXG_GATEWAY_DELIVERY_H
#define MXG_GATEWAY_DELIVERY_H

#include "dataplane/gateway/gateway-t.h"

void delivery_txn_done(struct gw_sess *s, uint16_t code,
		       const struct relay_reply *r, const char *enh,
		       const char *text);

void delivery_backend_failed(struct gw_sess *s, const char *why);

void delivery_mail_params(struct gw_sess *s, const struct relay_caps *caps,
			  char *buf, size_t len);

void delivery_backend_ready(struct gw_sess *s);

struct gw_be *delivery_get_backend(struct gw_sess *s, uint32_t pool);

void delivery_rcpt(struct gw_sess *s, const struct smtp_rcpt *r);

void delivery_data(struct gw_sess *s);

bool delivery_body_chunk(struct gw_sess *s);

void delivery_data_end(struct gw_sess *s);

void delivery_maildir_done(struct gw_core *gc);

#endif /* MXG_GATEWAY_DELIVERY_H */
