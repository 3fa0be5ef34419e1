/*
 * client_policy.h - exported by client_policy.c (client policy checks); see
 * there.
 */
#ifndef MXG_GATEWAY_CLIENT_POLICY_H
#define MXG_GATEWAY_CLIENT_POLICY_H

#include "dataplane/gateway/gateway-t.h"

bool policy_conn_denied(struct gw_core *gc,
			const struct mxg_snapshot_listener *l,
			const struct net_addr *client);

enum conn_verdict policy_conn_limits(struct gw_sess *s, const char **hit);

bool policy_mail(struct gw_sess *s, const struct smtp_mail *m);

bool policy_rcpt(struct gw_sess *s, const struct smtp_rcpt *r);

/* The client is in the snapshot's relay networks (either family). */
bool policy_in_relay_networks(const struct gw_sess *s);

#endif /* MXG_GATEWAY_CLIENT_POLICY_H */
