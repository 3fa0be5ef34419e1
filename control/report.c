/*
 * report.c - the three renderings of the dataplane's counters: the JSON
 * stats file (also the admin "stats" reply), the admin "status" reply and
 * the Prometheus families. Every figure comes from one struct counters
 * (control/counters.c), so the three never disagree on what a counter
 * means.
 *
 * Ownership: main lcore only (the metrics callback runs inside
 * ctl_metrics_poll on the main lcore). Allocates only the temporary
 * stream of an admin "stats" reply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_mempool.h>

#include "content/rules.h"
#include "control/control.h"
#include "control/metrics.h"
#include "control/snapshot.h"
#include "dataplane/clock.h"
#include "tls/tls_ctx.h"

void control_counters(const struct control *ctl, struct counters *out)
{
	counters_read(ctl->cores, ctl->options->n_cores, &ctl->kept, out);
}

void report_stats_json(struct control *ctl, FILE *f, bool final,
		       bool mbufs_ok)
{
	const struct mxg_options *c = ctl->options;
	const struct counters_core *t;
	struct counters *cs = malloc(sizeof(*cs));

	if (!cs)
		return;
	control_counters(ctl, cs);
	t = &cs->total;
	fprintf(f, "{\n \"version\": \"%s\",\n \"pid\": %d,\n", MXG_VERSION,
		getpid());
	fprintf(f, " \"cores\": %u,\n \"port\": {\"driver\": \"%s\", "
		   "\"queues\": %u, \"tx_offloads\": %llu},\n",
		c->n_cores, ctl->port->driver, ctl->port->n_queues,
		(unsigned long long)ctl->port->tx_offloads);
	fprintf(f, " \"conn_state_bytes\": %zu,\n",
		net_stack_conn_state_bytes());
	fprintf(f, " \"tsc_hz\": %llu,\n",
		(unsigned long long)rte_get_tsc_hz());
	fprintf(f, " \"mbufs\": {\"size\": %u, \"available\": %u},\n",
		ctl->pool->size, rte_mempool_avail_count(ctl->pool));
	if (final)
		fprintf(f, " \"shutdown\": {\"clean\": true, "
			   "\"all_mbufs_returned\": %s},\n",
			mbufs_ok ? "true" : "false");

	/* Totals, then per core. */
	fprintf(f, " \"total\": {");
	{
		const char *sep = "";
#define ONE(prefix, group, field)                                              \
	fprintf(f, "%s\"" prefix "%s\": %llu", sep, #field,                    \
		(unsigned long long)t->group.field);                           \
	sep = ", ";
#define NET(field) ONE("", net, field)
#define LCORE(field) ONE("", lcore, field)
#define SVC(field) ONE("svc_", svc, field)
#define GW(field) ONE("gw_", gw, field)
		NET_STATS_FIELDS(NET)
		LCORE_STATS_FIELDS(LCORE)
		SVC_STATS_FIELDS(SVC)
		GW_STATS_FIELDS(GW)
		fprintf(f, "%s\"fault_dropped\": %llu, "
			   "\"fault_duplicated\": %llu, "
			   "\"fault_reordered\": %llu, "
			   "\"fault_delayed\": %llu",
			sep, (unsigned long long)t->fault.dropped,
			(unsigned long long)t->fault.duplicated,
			(unsigned long long)t->fault.reordered,
			(unsigned long long)t->fault.delayed);
		for (int d = 0; d < NET_DROP_MAX; d++)
			fprintf(f, ", \"drop_%s\": %llu",
				net_drop_name((enum net_drop)d),
				(unsigned long long)t->net.drops[d]);
	}
	fprintf(f, "},\n \"per_core\": [");
	for (int k = 0; k < c->n_cores; k++) {
		const char *sep = "";

		t = &cs->core[k];
		fprintf(f, "%s\n  {\"core\": %d, \"lcore\": %u, ",
			k ? "," : "", k, t->lcore_id);
		NET_STATS_FIELDS(NET)
		LCORE_STATS_FIELDS(LCORE)
		if (t->has_gateway) {
			GW_STATS_FIELDS(GW)
		}
#undef NET
#undef LCORE
#undef SVC
#undef GW
#undef ONE
		if (t->has_push)
			fprintf(f, ", \"policy_generation\": %llu, "
				   "\"push_seq\": %llu, \"push_latency_us\": "
				   "%llu, \"blocks\": %u",
				(unsigned long long)t->push.generation,
				(unsigned long long)t->push.seq,
				(unsigned long long)t->push.latency_us,
				t->push.blocks);
		fprintf(f, "}");
	}
	fprintf(f, "\n ]");
	if (ctl->gw && ctl->gw->snap) {
		const struct mxg_snapshot *sn = gw_current(ctl->gw);

		fprintf(f, ",\n \"policy\": {\"generation\": %llu, "
			   "\"source\": \"%s\", \"reloads_ok\": %llu, "
			   "\"reloads_failed\": %llu, \"snapshots_retired\": "
			   "%llu, \"snapshots_freed\": %llu, "
			   "\"snapshots_pending\": %u, \"pushes\": %llu, "
			   "\"last_reload_us\": %llu, \"tables_kib\": %u}",
			(unsigned long long)sn->generation,
			sn->cfg.source ? sn->cfg.source : "",
			(unsigned long long)ctl->reloads_ok,
			(unsigned long long)ctl->reloads_failed,
			(unsigned long long)ctl->gw->snapshots_retired,
			(unsigned long long)ctl->gw->snapshots_freed,
			ctl->gw->n_retired, (unsigned long long)ctl->pushes,
			(unsigned long long)ctl->last_reload_us,
			sn->tables_bytes);
	}
	fprintf(f, "\n}\n");
	free(cs);
}

void control_write_stats(struct control *ctl, bool final, bool mbufs_ok)
{
	const struct mxg_options *c = ctl->options;
	char tmp[300];
	FILE *f;

	if (!c->stats_file[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->stats_file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	report_stats_json(ctl, f, final, mbufs_ok);
	fclose(f);
	rename(tmp, c->stats_file);
}

/* The published snapshot, or NULL before the gateway runs. */
static const struct mxg_snapshot *published(const struct control *ctl)
{
	return ctl->gw && ctl->gw->snap ? gw_current(ctl->gw) : NULL;
}

/* in with '"', '\\' and control characters replaced by '?': paths
 * and certificate names come from files, not from us. */
static const char *json_safe(const char *in, char *buf, size_t len)
{
	size_t i = 0;

	for (; in[i] && i + 1 < len; i++)
		buf[i] = in[i] == '"' || in[i] == '\\' ||
				 (unsigned char)in[i] < 0x20
			 ? '?'
			 : in[i];
	buf[i] = '\0';
	return buf;
}

/* "tls_certificates":[{...},...] of the published snapshot: listener,
 * file, names, key, not_after (seconds since the epoch). Appends at
 * out + n; returns the new length. */
static size_t status_tls(const struct mxg_snapshot *s, char *out, size_t n,
			 size_t outlen)
{
	const char *sep = "";

	n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0,
			      ",\"tls_certificates\":[");
	for (uint32_t i = 0; s && i < s->n_listeners; i++)
		for (uint32_t k = 0; k < tls_server_ctx_n_certs(s->listeners[i].tls);
		     k++) {
			const struct tls_cert_info *c =
				tls_server_ctx_cert(s->listeners[i].tls, k);

			char f[512], nm[256];

			n += (size_t)snprintf(
				out + n, n < outlen ? outlen - n : 0,
				"%s{\"listener\":\"%s\",\"file\":\"%s\","
				"\"names\":\"%s\",\"key\":\"%s\","
				"\"bits\":%d,\"not_after\":%lld}",
				sep, s->listeners[i].cl->name,
				json_safe(c->file, f, sizeof(f)),
				json_safe(c->names, nm, sizeof(nm)), c->key_type, c->key_bits,
				(long long)c->not_after);
			sep = ",";
		}
	n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "]");
	return n;
}

int report_status(struct control *ctl, char *out, size_t outlen)
{
	char ip[INET_ADDRSTRLEN];
	struct counters *cs = malloc(sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	control_counters(ctl, cs);
	inet_ntop(AF_INET, &ctl->options->ip, ip, sizeof(ip));
	snprintf(out, outlen,
		 "{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%llu,"
		 "\"address\":\"%s\",\"cores\":%u,\"port_driver\":\"%s\","
		 "\"gateway\":%s,\"listeners\":%u,\"sessions_open\":%llu,"
		 "\"sessions_capacity\":%llu,\"sessions_per_core\":%u,"
		 "\"backends_per_core\":%u,\"sessions_refused_busy\":%llu,"
		 "\"messages_accepted\":%llu,\"mbufs_free\":%u,"
		 "\"mbufs\":%u",
		 MXG_VERSION, getpid(),
		 (unsigned long long)((clock_us() - ctl->start_us) / 1000000),
		 ip, ctl->options->n_cores, ctl->port->driver,
		 ctl->gw ? "true" : "false",
		 ctl->gw ? gw_current(ctl->gw)->n_listeners : 0,
		 (unsigned long long)cs->total.gw.sessions_live,
		 (unsigned long long)(ctl->gw ? (uint64_t)ctl->gw->max_sessions *
					      ctl->options->n_cores : 0),
		 ctl->gw ? ctl->gw->max_sessions : 0,
		 ctl->gw ? ctl->gw->max_backends : 0,
		 (unsigned long long)cs->total.gw.sessions_refused_busy,
		 (unsigned long long)cs->total.gw.messages_accepted,
		 rte_mempool_avail_count(ctl->pool), ctl->pool->size);
	{
		size_t n = strnlen(out, outlen);

		n = status_tls(published(ctl), out, n, outlen);
		snprintf(out + (n < outlen ? n : outlen - 1),
			 n < outlen ? outlen - n : 1, "}");
	}
	free(cs);
	return 0;
}

void report_metrics(struct ctl_mw *w, void *ctx)
{
	struct control *ctl = ctx;
	struct counters *cs = malloc(sizeof(*cs));
	const struct gw_stats *g;
	const struct net_stats *n;

	if (!cs)
		return;
	control_counters(ctl, cs);
	g = &cs->total.gw;
	n = &cs->total.net;
	static const char *outcomes[] = {"accepted", "rejected", "tempfail"};
	uint64_t msgs[3] = {g->messages_accepted,
			    g->messages_rejected,
			    g->messages_tempfail};

	ctl_mw_family(w, "mxgate_connections_accepted_total",
		      "SMTP connections accepted", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_connections_accepted_total", NULL, 0,
		   g->sessions);
	ctl_mw_family(w, "mxgate_connections_rejected_total",
		      "SMTP connections refused, by reason", CTL_METRIC_COUNTER);
	{
		struct ctl_label l = {"reason", "session_table_full"};
		const char *reasons[] = {"acl", "limit", "rate"};
		uint64_t v[] = {g->conn_denied_acl,
				g->conn_denied_limit,
				g->conn_denied_rate};

		ctl_mw_u64(w, "mxgate_connections_rejected_total", &l, 1,
			   g->sessions_refused);
		for (int i = 0; i < 3; i++) {
			l.value = reasons[i];
			ctl_mw_u64(w, "mxgate_connections_rejected_total", &l,
				   1, v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_policy_refusals_total",
		      "Commands refused by policy, by reason",
		      CTL_METRIC_COUNTER);
	{
		const char *reasons[] = {"auth_required", "sender",
					 "message_rate", "messages_per_conn",
					 "relay", "recipient", "recipient_rate"};
		uint64_t v[] = {g->mail_denied_auth,
				g->mail_denied_sender,
				g->mail_rate_limited,
				g->mail_denied_count,
				g->rcpt_denied_relay,
				g->rcpt_denied_restrict,
				g->rcpt_rate_limited};

		for (int i = 0; i < 7; i++) {
			struct ctl_label l = {"reason", reasons[i]};

			ctl_mw_u64(w, "mxgate_policy_refusals_total", &l, 1,
				   v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_reloads_total",
		      "Configuration reloads by result", CTL_METRIC_COUNTER);
	{
		struct ctl_label l = {"result", "ok"};

		ctl_mw_u64(w, "mxgate_reloads_total", &l, 1, ctl->reloads_ok);
		l.value = "failed";
		ctl_mw_u64(w, "mxgate_reloads_total", &l, 1, ctl->reloads_failed);
	}
	ctl_mw_family(w, "mxgate_policy_generation",
		      "Generation of the published policy snapshot",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_policy_generation", NULL, 0,
		   ctl->gw && ctl->gw->snap ? gw_current(ctl->gw)->generation : 0);
	ctl_mw_family(w, "mxgate_pushes_total", "Runtime pushes sent",
		      CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_pushes_total", NULL, 0, ctl->pushes);
	ctl_mw_family(w, "mxgate_ratelimit_buckets",
		      "Rate-limit buckets held (all cores)", CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_ratelimit_buckets", NULL, 0,
		   g->rl_entries);
	ctl_mw_family(w, "mxgate_backend_reply_seconds",
		      "Backend reply latency to the end of data",
		      CTL_METRIC_HISTOGRAM);
	{
		static const uint32_t ms[] = GW_LAT_BOUNDS;
		double bounds[GW_LAT_BUCKETS - 1];
		uint64_t counts[GW_LAT_BUCKETS] = {0}, total = 0, sum = 0;

		for (unsigned i = 0; i < GW_LAT_BUCKETS - 1; i++)
			bounds[i] = ms[i] / 1000.0;
		for (unsigned i = 0; i < GW_LAT_BUCKETS; i++) {
			counts[i] = cs->total.latency[i];
			total += counts[i];
		}
		sum = cs->total.latency_sum_us;
		ctl_mw_histogram(w, "mxgate_backend_reply_seconds", NULL, 0,
				 bounds, counts, GW_LAT_BUCKETS - 1,
				 sum / 1e6, total);
	}
	ctl_mw_family(w, "mxgate_messages_total",
		      "Messages by final outcome", CTL_METRIC_COUNTER);
	for (int i = 0; i < 3; i++) {
		struct ctl_label l = {"outcome", outcomes[i]};

		ctl_mw_u64(w, "mxgate_messages_total", &l, 1, msgs[i]);
	}
	ctl_mw_family(w, "mxgate_received_bytes_total",
		      "SMTP bytes taken from clients", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_received_bytes_total", NULL, 0,
		   g->bytes_in);
	ctl_mw_family(w, "mxgate_sessions_open", "SMTP sessions open",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_sessions_open", NULL, 0,
		   g->sessions_live);
	ctl_mw_family(w, "mxgate_sessions_capacity",
		      "SMTP sessions the gateway holds at most (all cores)",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_sessions_capacity", NULL, 0,
		   ctl->gw ? (uint64_t)ctl->gw->max_sessions *
				     ctl->options->n_cores
			   : 0);
	ctl_mw_family(w, "mxgate_overload",
		      "1 while a core is in overload mode (count of cores)",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_overload", NULL, 0, g->overload);
	ctl_mw_family(w, "mxgate_overload_idle_closed_total",
		      "Idle sessions closed by the overload time-out",
		      CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_overload_idle_closed_total", NULL, 0,
		   g->overload_idle_closed);
	ctl_mw_family(w, "mxgate_overload_pregreet_closed_total",
		      "Sessions of clients that talked before the greeting, "
		      "closed first in overload mode", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_overload_pregreet_closed_total", NULL, 0,
		   g->overload_pregreet_closed);
	ctl_mw_family(w, "mxgate_overload_errors_closed_total",
		      "Sessions closed at the overload mode's lower error "
		      "limit", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_overload_errors_closed_total", NULL, 0,
		   g->overload_errors_closed);
	ctl_mw_family(w, "mxgate_sessions_refused_busy_total",
		      "Connections answered 421 4.3.2 because the session "
		      "table was full", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_sessions_refused_busy_total", NULL, 0,
		   g->sessions_refused_busy);
	ctl_mw_family(w, "mxgate_backend_connections_open",
		      "Backend connections open", CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_backend_connections_open", NULL, 0,
		   g->backend_live);
	ctl_mw_family(w, "mxgate_backend_errors_total",
		      "Backend connections that failed", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_backend_errors_total", NULL, 0,
		   g->backend_errors);
	ctl_mw_family(w, "mxgate_tcp_retransmits_total",
		      "TCP segments retransmitted", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_tcp_retransmits_total", NULL, 0,
		   n->tcp_retransmits);
	ctl_mw_family(w, "mxgate_syncookies_sent_total",
		      "SYN cookies sent", CTL_METRIC_COUNTER);
	ctl_mw_u64(w, "mxgate_syncookies_sent_total", NULL, 0,
		   n->syncookies_sent);
	/* TLS on client connections (issue 13) */
	ctl_mw_family(w, "mxgate_tls_handshakes_total",
		      "Client TLS handshakes, by result and protocol version",
		      CTL_METRIC_COUNTER);
	{
		struct ctl_label l[2] = {{"result", "ok"}, {"version", ""}};
		const char *ver[] = {"TLSv1.2", "TLSv1.3"};
		uint64_t v[] = {g->tls_tlsv1_2, g->tls_tlsv1_3};

		for (int i = 0; i < 2; i++) {
			l[1].value = ver[i];
			ctl_mw_u64(w, "mxgate_tls_handshakes_total", l, 2,
				   v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_tls_handshake_failures_total",
		      "Client TLS handshakes that failed, by reason",
		      CTL_METRIC_COUNTER);
	{
		const char *reasons[] = {"protocol", "version",
					 "peer_certificate", "other"};
		uint64_t v[] = {g->tls_fail_protocol, g->tls_fail_version,
				g->tls_fail_peer_cert, g->tls_fail_other};

		for (int i = 0; i < 4; i++) {
			struct ctl_label l = {"reason", reasons[i]};

			ctl_mw_u64(w, "mxgate_tls_handshake_failures_total",
				   &l, 1, v[i]);
		}
	}
	/* STARTTLS to backends (issue 13; dataplane/gateway/backend.c) */
	ctl_mw_family(w, "mxgate_backend_tls_total",
		      "Backend connections by STARTTLS outcome",
		      CTL_METRIC_COUNTER);
	{
		const char *res[] = {"ok", "failed", "missing", "cleartext"};
		uint64_t v[] = {g->backend_tls_handshakes,
				g->backend_tls_failed, g->backend_tls_missing,
				g->backend_tls_cleartext};

		for (int i = 0; i < 4; i++) {
			struct ctl_label l = {"result", res[i]};

			ctl_mw_u64(w, "mxgate_backend_tls_total", &l, 1,
				   v[i]);
		}
	}
	ctl_mw_family(w, "mxgate_tls_sessions_open",
		      "Client and backend connections holding TLS state",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_tls_sessions_open", NULL, 0, g->tls_live);
	ctl_mw_family(w, "mxgate_tls_certificate_expiry_timestamp_seconds",
		      "Expiry (notAfter) of each loaded TLS certificate",
		      CTL_METRIC_GAUGE);
	for (uint32_t i = 0; published(ctl) && i < published(ctl)->n_listeners;
	     i++) {
		const struct mxg_snapshot_listener *l =
			&published(ctl)->listeners[i];

		for (uint32_t k = 0; k < tls_server_ctx_n_certs(l->tls); k++) {
			const struct tls_cert_info *c =
				tls_server_ctx_cert(l->tls, k);
			struct ctl_label lb[3] = {{"listener", l->cl->name},
						  {"file", c->file},
						  {"key", c->key_type}};

			ctl_mw_u64(w,
				   "mxgate_tls_certificate_expiry_timestamp_"
				   "seconds",
				   lb, 3, (uint64_t)c->not_after);
		}
	}
	ctl_mw_family(w, "mxgate_content_rule_hits_total",
		      "Messages (or MAIL/RCPT commands) each content rule "
		      "matched (kept across reloads for an unchanged rule)",
		      CTL_METRIC_COUNTER);
	for (uint32_t i = 0; published(ctl) &&
			     i < published(ctl)->cfg.n_content_sets; i++) {
		const struct ctl_content_set *cs =
			&published(ctl)->cfg.content_sets[i];

		for (uint32_t k = 0; cs->hits && k < cs->rules->n_rules; k++) {
			const struct content_rule *r = &cs->rules->rules[k];
			uint64_t n = ctl_rule_hits_sum(cs->hits[k]);
			char rule[1100];

			snprintf(rule, sizeof(rule), "%s:%u", r->file, r->line);
			struct ctl_label lb[3] = {
				{"set", cs->name},
				{"rule", rule},
				{"action", content_action_name(r->action)}};
			ctl_mw_u64(w, "mxgate_content_rule_hits_total", lb, 3, n);
		}
	}
	{
		/* per-action totals, from the per-core counters (they do
		 * not restart at a reload, unlike the per-rule rows) */
		const struct {
			const char *action;
			uint64_t n;
		} acts[] = {
			{"rejected", g->content_rejected},
			{"tempfailed", g->content_tempfailed},
			{"discarded", g->content_discarded},
			{"quarantined", g->content_quarantined},
			{"quarantine_failed", g->content_quarantine_failed},
		};
		const struct {
			const char *result;
			uint64_t n;
		} scans[] = {
			{"scanned", g->content_scanned},
			{"exempt", g->content_exempt},
			{"unscanned", g->content_unscanned},
			{"truncated", g->content_truncated},
		};

		ctl_mw_family(w, "mxgate_content_messages_total",
			      "Messages decided by a content rule, by action",
			      CTL_METRIC_COUNTER);
		for (size_t i = 0; i < RTE_DIM(acts); i++) {
			struct ctl_label l = {"action", acts[i].action};

			ctl_mw_u64(w, "mxgate_content_messages_total", &l, 1,
				   acts[i].n);
		}
		ctl_mw_family(w, "mxgate_content_scans_total",
			      "Messages by content scan result (truncated: "
			      "cut by content_scan_limit)", CTL_METRIC_COUNTER);
		for (size_t i = 0; i < RTE_DIM(scans); i++) {
			struct ctl_label l = {"result", scans[i].result};

			ctl_mw_u64(w, "mxgate_content_scans_total", &l, 1,
				   scans[i].n);
		}
		ctl_mw_family(w, "mxgate_content_rule_hits_all_total",
			      "Content rule hits, all rules and sets",
			      CTL_METRIC_COUNTER);
		ctl_mw_u64(w, "mxgate_content_rule_hits_all_total", NULL, 0,
			   g->content_hits);
	}
	ctl_mw_family(w, "mxgate_mbufs_free", "Free mbufs in the pool",
		      CTL_METRIC_GAUGE);
	ctl_mw_u64(w, "mxgate_mbufs_free", NULL, 0,
		   rte_mempool_avail_count(ctl->pool));
	free(cs);
}
