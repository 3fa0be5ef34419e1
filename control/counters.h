/*
 * counters.h - the one place where the dataplane's per-core counters are
 * read and summed (DESIGN 8: counters are per core, summed on read). The
 * stats file, the admin "status" and "stats" replies and the Prometheus
 * families (control/report.c) all render a struct counters filled here,
 * so a counter has one meaning wherever it shows.
 *
 * Ownership: main lcore only. Reads the dataplane cores' counters while
 * they run (racy word-sized loads, as every reader of per-core counters
 * does); after teardown, the copies taken by counters_keep().
 */
#ifndef MXG_CONTROL_COUNTERS_H
#define MXG_CONTROL_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/app.h"

/* Counter names, in the order the stats file lists them. */
#define NET_STATS_FIELDS(X)                                                    \
	X(rx_frames) X(tx_frames) X(tcp_seg_in) X(tcp_seg_out)                 \
	X(tcp_retransmits) X(tcp_fast_retransmits) X(tcp_rst_in)               \
	X(tcp_rst_out) X(tcp_challenge_acks) X(syncookies_sent)               \
	X(syncookies_ok) X(syncookies_bad) X(tcp_accepted) X(tcp_connected)    \
	X(tcp_closed) X(tcp_timeouts) X(tcp_zero_window_probes)                \
	X(tcp_ooo_queued) X(timewait_recycled) X(arp_requests_out)             \
	X(arp_replies_out) X(arp_replies_in) X(icmp_echo) X(icmp_frag_needed)  \
	X(ip_frags) X(live_tcbs) X(syn_rcvd) X(timewait) X(arp_cached)         \
	X(mbufs_held) X(ip6_rx) X(ip6_ext_hdrs) X(icmp6_echo) X(icmp6_ptb)     \
	X(nd_solicits_out) X(nd_adverts_out) X(nd_adverts_in)                  \
	X(nd_redirects_ignored) X(nd_ra_ignored) X(dad_duplicates)            \
	X(icmp6_errors_out) X(icmp6_errors_limited) X(mld_reports_out)

#define GW_STATS_FIELDS(X)                                                     \
	X(sessions) X(sessions_live) X(sessions_refused) X(sessions_refused_busy) \
	X(areas_exhausted)                                                    \
	X(overload) X(overload_entered) X(overload_idle_closed)                \
	X(overload_pregreet_closed) X(overload_errors_closed)                 \
	X(messages_accepted) X(messages_rejected) X(messages_tempfail)        \
	X(rcpts_accepted) X(rcpts_rejected) X(bytes_in) X(backend_connects)   \
	X(backend_live) X(backend_reused) X(backend_errors) X(backend_checks) \
	X(maildir_delivered) X(maildir_failed) X(log_dropped)                 \
	X(conn_denied_acl) X(conn_denied_limit) X(conn_denied_rate)           \
	X(mail_denied_auth) X(mail_denied_sender) X(mail_rate_limited)        \
	X(mail_denied_count) X(rcpt_denied_relay) X(rcpt_denied_restrict)     \
	X(rcpt_rate_limited) X(rl_entries) X(rl_evictions) X(ipconn_entries)  \
	X(pushes_applied) X(pushes_failed) X(be_invariant_errors)            \
	X(backend_idle) X(starttls_discarded) X(limits_alloc_failed)         \
	X(auth_ok_plain) X(auth_ok_login) X(auth_ok_gssapi)                  \
	X(auth_failed_plain) X(auth_failed_login) X(auth_failed_gssapi)      \
	X(auth_locked) X(auth_lockouts) X(auth_delayed) X(auth_tempfail)     \
	X(mail_denied_login)                                                  \
	X(content_scanned) X(content_exempt) X(content_unscanned)             \
	X(content_truncated) X(content_hits) X(content_rejected)              \
	X(content_tempfailed) X(content_discarded) X(content_quarantined)     \
	X(content_quarantine_failed) X(content_quarantine_copies)             \
	X(content_headers_added) X(content_headers_dropped)                   \
	X(tls_handshakes) X(tls_handshakes_failed) X(tls_tlsv1_2)             \
	X(tls_tlsv1_3) X(tls_resumed) X(tls_fail_protocol) X(tls_fail_version) \
	X(tls_fail_other) X(tls_fail_peer_cert) X(tls_client_certs)           \
	X(tls_partners) X(tls_jobs) X(tls_jobs_refused)                      \
	X(tls_jobs_abandoned) X(tls_record_errors) X(tls_live)               \
	X(backend_tls_handshakes) X(backend_tls_failed)                      \
	X(backend_tls_missing) X(backend_tls_cleartext)                      \
	X(backend_round_trips)

#define LCORE_STATS_FIELDS(X)                                                  \
	X(loops) X(idle_sleeps) X(busy_tsc) X(idle_tsc) X(rx_pkts) X(tx_pkts)  \
	X(tx_dropped)                                                          \
	X(steered_out) X(steered_in) X(steer_ring_full) X(replicated)

#define SVC_STATS_FIELDS(X)                                                    \
	X(accepted) X(refused) X(closed) X(reset) X(echo_bytes)                \
	X(discard_bytes) X(connect_started) X(connect_ok) X(connect_fail)      \
	X(connect_bytes_verified) X(lg_started) X(lg_completed) X(lg_failed)  \
	X(lg_bytes) X(live)

/* One core's counters (or, in struct counters.total, their sums). */
struct counters_core {
	unsigned int lcore_id;
	bool has_gateway;  /* gateway counters are meaningful */
	bool has_push;     /* push state and latency read from a live core */
	struct net_stats net;
	struct lcore_stats lcore;
	struct svc_stats svc;
	struct gw_stats gw;
	struct fault_stats fault; /* receive and transmit injectors */
	struct gw_push_state push;
	uint64_t latency[GW_LAT_BUCKETS];
	uint64_t latency_sum_us;
};

/* Copies kept of every core's counters when the cores are torn down, so
 * the final stats file still carries them. */
struct counters_kept {
	bool torn_down;
	struct counters_core core[MXG_MAX_CORES];
};

struct counters {
	uint16_t n_cores;
	struct counters_core total;
	struct counters_core core[MXG_MAX_CORES];
};

/* Fills out from the n_cores contexts in cores (or from kept once torn
 * down) and sums every core into out->total. Main lcore. */
void counters_read(const struct lcore_ctx *cores, uint16_t n_cores,
		   const struct counters_kept *kept, struct counters *out);

/* Keeps a copy of core k's counters before its objects are destroyed
 * (teardown). Main lcore, dataplane stopped. */
void counters_keep(const struct lcore_ctx *lc, struct counters_kept *kept,
		   uint16_t k);

#endif /* MXG_CONTROL_COUNTERS_H */
