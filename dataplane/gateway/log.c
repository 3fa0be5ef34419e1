/*
 * log.c - log lines of the gateway.
 *
 * Owner: one dataplane lcore; the lines go through the core's log ring to
 * the logger thread (control/logger.c).
 *
 * What it does: formats a log line (log_line), quotes client-supplied text
 * (log_quote) and writes the per-message line (log_message).
 *
 * Promises: never blocks: a full ring drops the line and counts log_dropped.
 *
 * One module of the gateway (dataplane/gateway.h; types in gateway-t.h;
 * DESIGN 5; the layout in docs/architecture.md).
 */
#include "dataplane/gateway/gateway-t.h"

#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/clock.h"
#include "dataplane/fmt.h"
#include "dataplane/net/tcp.h"
#include "dataplane/policy/acl.h"
#include "dataplane/policy/addr.h"
#include "dataplane/policy/domains.h"
#include "dataplane/policy/ratelimit.h"
#include "dataplane/relay/maildir.h"

#include "dataplane/gateway/log.h"
#include "dataplane/gateway/session.h"

/* One line into the core's log ring; never blocks: a full ring or an
 * empty record pool drops the line and counts it. */
void __attribute__((format(printf, 2, 3)))
log_line(struct gw_core *gc, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int n;

	if (!gc->log || rte_mempool_get(gc->log_pool, (void **)&line) != 0) {
		gc->stats.log_dropped++;
		return;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		n = mxg_fmt(line, GW_LOG_LINE, "ts=%lld.%03ld core=%u ",
			     (long long)ts.tv_sec, ts.tv_nsec / 1000000,
			     gc->core);
	}
	va_start(ap, fmt);
	mxg_vfmt(line + n, GW_LOG_LINE - (size_t)n, fmt, ap);
	va_end(ap);
	if (rte_ring_enqueue(gc->log, line) != 0) {
		rte_mempool_put(gc->log_pool, line);
		gc->stats.log_dropped++;
	}
}

/* Quotes s for a key="value" field: drops control characters and quotes. */
static const char *log_quote(char *buf, size_t len, const char *s)
{
	size_t j = 0;

	for (size_t i = 0; s && s[i] && j + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[j++] = (c < 0x20 || c == '"' || c == 0x7f) ? ' ' : (char)c;
	}
	buf[j] = '\0';
	return buf;
}

void log_message(struct gw_sess *s, const char *outcome,
			const struct relay_reply *r, uint16_t code,
			const char *enh, const char *text)
{
	const struct gw_txn *tx = sess_txn_ro(s);
	char q1[300], q2[300], q3[300], rc[300], rl[600];
	size_t off = 0;

	rl[0] = '\0';
	for (uint32_t i = 0; i < s->nrcpt_ok && i < GW_MAX_LOG_RCPT; i++)
		off += (size_t)mxg_fmt(rl + off, sizeof(rl) - off, "%s<%s>",
					i ? "," : "", tx->rcpt_log[i]);
	if (r)
		mxg_fmt(rc, sizeof(rc), "%u %s %s", r->code, r->enh,
			 r->text ? r->text : "");
	else
		mxg_fmt(rc, sizeof(rc), "%u %s %s", code, enh ? enh : "",
			 text ? text : "");
	log_line(s->gc,
		 "event=message sid=%s client=%s helo=\"%s\" listener=%s "
		 "from=<%s> rcpts=%u to=%s size=%llu backend=%s reply=\"%s\" "
		 "outcome=%s ms=%llu",
		 s->sid, s->client, log_quote(q1, sizeof(q1), s->helo),
		 s->lst->cl->name, log_quote(q2, sizeof(q2), tx->from),
		 s->nrcpt_ok, rl[0] ? rl : "-", (unsigned long long)s->size,
		 tx->backend_name[0] ? tx->backend_name : "-",
		 log_quote(q3, sizeof(q3), rc), outcome,
		 (unsigned long long)((s->gc->now_us - s->t_mail_us) / 1000));
}
