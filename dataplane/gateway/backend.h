/*
 * backend.h - exported by backend.c (the backend connection); see there.
 */
#ifndef MXG_GATEWAY_BACKEND_H
#define MXG_GATEWAY_BACKEND_H

#include "dataplane/gateway/gateway-t.h"

struct gw_be *be_open(struct gw_core *gc, struct gw_pool_set *pool_set,
		      uint32_t pool, uint32_t srv,
		      const struct gw_sess *for_sess);

void be_release(struct gw_be *b);

void be_close(struct gw_be *b, bool abort_now);

bool be_idle_remove(struct gw_be *b);

void be_own(struct gw_be *b, struct gw_sess *s);

struct gw_sess *be_owner(struct gw_be *b);

void sess_put_backend(struct gw_sess *s);

void be_pump(struct gw_be *b);

void be_drain(struct gw_be *b);

void be_health_checks(struct gw_core *gc);

void be_expire_idle(struct gw_pool_set *pool_set, uint64_t now);

void be_flush_idle(struct gw_core *gc, struct gw_pool_set *pool_set);

#endif /* MXG_GATEWAY_BACKEND_H */
