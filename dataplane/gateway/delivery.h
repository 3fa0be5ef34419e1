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

/* RCPT that passed local policy: answered at once (Maildir, refusals of
 * the transaction) or deferred and queued for the backend (issue 17). */
void delivery_rcpt(struct gw_sess *s, const struct smtp_rcpt *r);
/* Whether the outstanding-RCPT queue of s can take r now; when not, the
 * caller leaves the request unanswered until a backend reply frees room
 * (checked before policy, which counts). */
bool delivery_rcpt_room(const struct gw_sess *s, const struct smtp_rcpt *r);
/* The backend's reply to the oldest forwarded RCPT (RELAY_EV_RCPT). */
void delivery_rcpt_reply(struct gw_sess *s, const struct relay_reply *rep);
/* Every outstanding RCPT of s gets 451 4.4.2 why (backend failed). */
void delivery_rcpt_fail_all(struct gw_sess *s, const char *why);
/* Forget the queue without answering (the transaction ended). */
void delivery_rcpt_forget(struct gw_sess *s);
/* Nothing queued reached a backend (retry on a fresh connection): send
 * every entry again. */
void delivery_rcpt_resend(struct gw_sess *s);
/* True when queued RCPTs wait to be sent to the backend. */
bool delivery_rcpt_waiting(const struct gw_sess *s);

/* Room for the TLS comment of Received: (maildir.c's FIELD_MAX). */
#define GW_RECEIVED_TLS_MAX 256

/* The Received: trace field's facts of the current transaction for a
 * Maildir job (the local next hop, the quarantine); tls (tls_len octets)
 * receives the TLS comment rcv points to. */
void delivery_maildir_received(struct gw_sess *s,
			       struct maildir_received *rcv, char *tls,
			       size_t tls_len);

void delivery_data(struct gw_sess *s);

bool delivery_body_chunk(struct gw_sess *s);

void delivery_data_end(struct gw_sess *s);

/* The session a Maildir job's tag ((gen << 32) | slot, given at
 * maildir_begin) names, or NULL when it ended since. */
struct gw_sess *delivery_maildir_session(struct gw_core *gc, uint64_t tag);

void delivery_maildir_done(struct gw_core *gc);

#endif /* MXG_GATEWAY_DELIVERY_H */
