/*
 * policy_state.h - exported by policy_state.c (the per-core policy state); see
 * there.
 */
#ifndef MXG_GATEWAY_POLICY_STATE_H
#define MXG_GATEWAY_POLICY_STATE_H

#include "dataplane/gateway/gateway-t.h"

void state_snapshot_ref(struct gw_core *gc, struct mxg_snapshot *sn);

void state_snapshot_unref(struct gw_core *gc, struct mxg_snapshot *sn);

void state_pool_set_free(struct gw_core *gc, struct gw_pool_set *pool_set);

void state_pool_set_put(struct gw_core *gc, struct gw_pool_set *pool_set);

struct gw_pool_set *state_pool_set_new(struct gw_core *gc,
				       struct mxg_snapshot *sn);

void state_session_adopt(struct gw_sess *s);

/* Recomputes the effective limits; 0, or -ENOMEM (reported: a log
 * line, stats.limits_alloc_failed, gw_push_state.limits_failed_generation)
 * when the per-core tables could not be allocated. */
int state_limits_compute(struct gw_core *gc);

/* The allocator of those tables (calloc; a unit test replaces it to
 * inject a failure). */
extern void *(*state_limits_calloc)(size_t n, size_t size);

void state_set_listening(struct gw_core *gc, uint16_t port, bool on);

/* Apply a snapshot listener's family restriction (its configured
 * address) to the stack's listener on its port. Returns tcp_listen_families'
 * result. */
int state_listen_families(struct gw_core *gc,
			  const struct mxg_snapshot_listener *l);

void state_adopt(struct gw_core *gc, struct mxg_snapshot *sn);

void state_pushes_apply(struct gw_core *gc);

#endif /* MXG_GATEWAY_POLICY_STATE_H */
