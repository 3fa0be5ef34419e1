/*
 * log.h - exported by log.c (log lines of the gateway); see there.
 */
#ifndef MXG_GATEWAY_LOG_H
#define MXG_GATEWAY_LOG_H

#include "dataplane/gateway/gateway-t.h"

void __attribute__((format(printf, 2, 3)))
log_line(struct gw_core *gc, const char *fmt, ...);

void log_message(struct gw_sess *s, const char *outcome,
			const struct relay_reply *r, uint16_t code,
			const char *enh, const char *text);

#endif /* MXG_GATEWAY_LOG_H */
