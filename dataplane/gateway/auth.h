/*
 * auth.h - exported by auth.c (the client session's SMTP AUTH, issue 14);
 * see there.
 */
#ifndef MXG_GATEWAY_AUTH_H
#define MXG_GATEWAY_AUTH_H

#include <stdbool.h>

#include "dataplane/gateway/gateway-t.h"

/* Core set-up and tear-down: the per-core brute-force table, sized by
 * the first snapshot's auth.brute_force.table_size. 0 or -ENOMEM. */
int auth_core_init(struct gw_core *gc);
void auth_core_fini(struct gw_core *gc);

/* A new session (client.c, at accept): unauthenticated, no exchange. */
void auth_session_init(struct gw_sess *s);

/* The session is released (client.c): a job on the pool is cancelled
 * (its completion never touches s), a GSS context is deleted, secrets
 * are wiped. */
void auth_session_end(struct gw_sess *s);

/* Process teardown (gw_core_destroy, after workers_destroy gave every
 * job back through drop()): frees what the session holds that is not on
 * the pool; never touches a job that was. */
void auth_session_teardown(struct gw_sess *s);

/* After a pump: an exchange that is over (answered, nothing on the
 * worker pool, the engine not waiting for a continuation line) gives
 * its area back to the core's pool (issue 18). */
void auth_settle(struct gw_sess *s);

/* SMTP_REQ_AUTH at the head of the engine's queue (session.c). Returns
 * false while the answer waits (a job on the pool, or the tarpit):
 * the engine then processes no further input. */
bool auth_request(struct gw_sess *s, const struct smtp_event *ev);

/* True when a tarpit-held answer is due (core.c's 20 ms scan dirties
 * the session then). */
static inline bool auth_due(const struct gw_sess *s, uint64_t now_us)
{
	return s->auth && s->auth->wait == GW_AUTH_HELD &&
	       s->auth->hold_until_us <= now_us;
}

/* The login of an authenticated session, or NULL. */
static inline const char *auth_login(const struct gw_sess *s)
{
	return s->auth_login[0] ? s->auth_login : NULL;
}

/* MAIL FROM of an authenticated client against the sender-login map
 * (RFC 6409 practice). Returns true when it answered 553 5.7.1. */
bool auth_mail_refused(struct gw_sess *s, const struct smtp_mail *m);

/* The RFC 3848 protocol word for Received: ESMTP, ESMTPA, ESMTPS,
 * ESMTPSA (SMTP after HELO). */
const char *auth_received_protocol(const struct gw_sess *s);

#endif /* MXG_GATEWAY_AUTH_H */
