/*
 * core.h - exported by core.c (the per-core scheduler of the gateway); see
 * there.
 */
#ifndef MXG_GATEWAY_CORE_H
#define MXG_GATEWAY_CORE_H

#include "dataplane/gateway/gateway-t.h"

static inline uint64_t core_now_ms(const struct gw_core *gc)
{
	return gc->now_us / 1000;
}

void core_dirty_session(struct gw_sess *s);

/* Files s in the core's time-out wheel under its next deadline (engine
 * time-out, Maildir job, AUTH hold). core_run calls it after each pump. */
void core_sess_arm(struct gw_sess *s);

void core_dirty_backend(struct gw_be *b);

void core_run(struct gw_core *gc);

/* Engine work areas out of the core's pool now (held by sessions). */
uint32_t gw_core_bufs_held(const struct gw_core *gc);

/* Per-core area pools (struct gw_area_pool): 0 or -ENOMEM; get returns
 * NULL when every area is out. */
int gw_area_pool_init(struct gw_area_pool *p, size_t elem, uint32_t cap);
void gw_area_pool_fini(struct gw_area_pool *p);
void *gw_area_get(struct gw_area_pool *p);
void gw_area_put(struct gw_area_pool *p, void *a);

static inline uint32_t gw_area_held(const struct gw_area_pool *p)
{
	return p->cap - p->n_free;
}

#endif /* MXG_GATEWAY_CORE_H */
