/*
 * session.h - exported by session.c (the client session pump); see there.
 */
#ifndef MXG_GATEWAY_SESSION_H
#define MXG_GATEWAY_SESSION_H

#include "dataplane/gateway/gateway-t.h"

void sess_verdict(struct gw_sess *s, enum smtp_verdict_kind k, uint16_t code,
		  const char *enh, const char *text);

void sess_verdict_reply(struct gw_sess *s, const struct relay_reply *r);

void sess_tempfail(struct gw_sess *s, const char *enh, const char *text);

/* The transaction's strings, or empty ones while none is open. */
extern const struct gw_txn gw_txn_none;
static inline const struct gw_txn *sess_txn_ro(const struct gw_sess *s)
{
	return s->txn ? s->txn : &gw_txn_none;
}

/* Ends the transaction: its state cleared, its area back to the pool. */
void sess_txn_reset(struct gw_sess *s);

void sess_next_hop_abort(struct gw_sess *s);

void sess_txn_abort(struct gw_sess *s);

void sess_pump(struct gw_sess *s);

#endif /* MXG_GATEWAY_SESSION_H */
