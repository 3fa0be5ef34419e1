#!/bin/sh
# bench/tls-starttls.sh - mxgate against Postfix as an in-line SMTP front
# where every session does STARTTLS (issue 13), same machine, same run,
# same client, same certificate, same backend. Not a test: it prints what
# it measured and writes bench/results/tls-starttls.json and .png.
#
# Client: bench/tls/starttls_load (epoll + OpenSSL, one thread, CPU 0):
# SESSIONS parallel sessions, each EHLO, STARTTLS, handshake (TLS 1.3,
# ECDSA P-256 chosen by both fronts), EHLO, MAIL, RCPT, DATA (SIZE
# octets), QUIT; MESSAGES messages in all, one per session. "full": every
# handshake full; "resumed": each session offers its slot's previous
# ticket (the first of each slot is full).
#  (a) mxgate on a net_tap port, one dataplane lcore on CPU 1 (idle
#      back-off), listener 25 tls = "optional" with the certificate,
#      pool -> smtp-sink; its worker threads (tls.workers 0: one on this
#      2-CPU machine) are not pinned.
#  (b) Postfix smtpd with smtpd_proxy_filter (in-line) -> smtp-sink,
#      smtpd_tls_security_level = may with the same certificate and key;
#      every Postfix process on CPU 1.
# smtp-sink runs on CPU 0 in both runs; its count must equal MESSAGES.
# Plaintext latency during a handshake flood (mxgate only): a second
# listener on 2525 without TLS; the client with --plain, one session at a
# time, PROBE sessions (connect to 221, one 2 KiB message each) alone,
# then again while a handshake flood (SESSIONS parallel full handshakes,
# each QUIT right after it) runs on 25; p50/p99 of both.
# Everything runs in a network namespace created here (198.18.0.0/15) and
# removed on exit; every wait is bounded.
#
# usage: bench/tls-starttls.sh [MESSAGES [SESSIONS]]   (root)
#   MXGATE=path   use this binary; SIZE=2048; PROBE=300
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MSGS=${1:-3000}
SESS=${2:-32}
SIZE=${SIZE:-2048}
PROBE=${PROBE:-300}
TMO=600

if [ "$(id -u)" != 0 ]; then
	echo "tls-starttls.sh: must run as root (netns, tap)" >&2
	exit 2
fi
if [ -z "${MXGATE:-}" ]; then
	[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
	ninja -C build >/dev/null
	MXGATE=$ROOT/build/dataplane/mxgate
fi
LOADC=${LOADC:-$ROOT/build/bench/tls/starttls_load}
[ -x "$LOADC" ] || ninja -C build bench/tls/starttls_load >/dev/null
OUT=$ROOT/bench/results
mkdir -p "$OUT"
NS=mxgtls-$$
TMP=$(mktemp -d /tmp/mxgtls.XXXXXX)
chmod 755 "$TMP"
PFDIR=$TMP/postfix

cleanup() {
	trap - EXIT INT TERM
	if [ -f "$PFDIR/etc/main.cf" ]; then
		postfix -c "$PFDIR/etc" stop >/dev/null 2>&1 || true
	fi
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 1
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
	ip netns del $NS 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "tls-starttls.sh: kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS addr add 198.18.1.1/32 dev lo
NX="ip netns exec $NS"
$NX sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
$NX sysctl -qw net.ipv4.tcp_tw_reuse=1

CERTS=$TMP/tls
"$ROOT/scripts/make-tls-certs.sh" "$CERTS" gw.bench.mxgt.test >/dev/null
chmod 755 "$CERTS"; chmod 644 "$CERTS/ecdsa.key"   # Postfix's smtpd reads it

wait_port() {
	i=0
	until $NX python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$1" "$2" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 400 ] && { echo "tls-starttls.sh: nothing on $1:$2" >&2; return 1; }
		sleep 0.05
	done
}
sink_start() {
	$NX taskset -c 0 smtp-sink -u nobody -c -C -F -m 1024 0.0.0.0:2526 1024 \
		>"$TMP/sink-$1.out" 2>&1 &
	echo $! >>"$TMP/pids"
	SINKPID=$!
	wait_port 198.18.1.1 2526
}
sink_count() {
	tr '\r' '\n' <"$TMP/sink-$1.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}
sink_settle() {
	i=0
	while [ "$(sink_count "$1")" != "$2" ] && [ $i -lt 100 ]; do
		i=$((i + 1)); sleep 0.1
	done
	sink_count "$1"
}
sink_stop() {
	kill -TERM "$SINKPID" 2>/dev/null || true
	wait "$SINKPID" 2>/dev/null || true
}
# load NAME HOST PORT ARGS...: the client on CPU 0, JSON to $TMP/NAME.json
load() {
	n=$1; shift
	$NX taskset -c 0 timeout $TMO "$LOADC" "$@" >"$TMP/$n.json" \
		2>"$TMP/$n.err" || echo "tls-starttls.sh: $n: client exit $?" >&2
	cat "$TMP/$n.json" >&2
}

run_mxgate() {
	sink_start mxgate || return 1
	cat >"$TMP/mxgate.conf" <<EOF
stack = { port = "net_tap0,iface=mxgt0"; address = "198.18.0.2/24";
          gateway = "198.18.0.1"; cores = 1; max_conns = 16384; };
listeners = (
  { name = "mx"; port = 25; role = "mx"; hostname = "gw.bench.mxgt.test";
    tls = "optional";
    certificates = ( { cert = "$CERTS/ecdsa.crt"; key = "$CERTS/ecdsa.key"; } ); },
  { name = "plain"; port = 2525; role = "mx"; hostname = "gw.bench.mxgt.test"; }
);
pools = ( { name = "default"; type = "smtp"; client_info = "none";
            servers = ( { address = "198.18.0.1"; port = 2526; } );
            idle_max = 64; } );
log = { file = "$TMP/mxgate.log"; level = "warn"; };
policy = { relay_networks = [ "198.18.0.0/15" ]; };
EOF
	"$MXGATE" --check-config "$TMP/mxgate.conf" >&2 || return 1
	$NX "$MXGATE" --config "$TMP/mxgate.conf" --cores 1 --dp-cpus 1 \
		--stats-file "$TMP/mx-stats.json" --stats-interval-ms 200 \
		>"$TMP/mx.out" 2>&1 &
	echo $! >>"$TMP/pids"; mpid=$!
	i=0
	until $NX ip link show mxgt0 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 300 ] && { cat "$TMP/mx.out" >&2; return 1; }
		kill -0 $mpid 2>/dev/null || { cat "$TMP/mx.out" >&2; return 1; }
		sleep 0.05
	done
	$NX ip addr add 198.18.0.1/24 dev mxgt0
	$NX ip link set mxgt0 up
	wait_port 198.18.0.2 25 || return 1
	grep "worker pool" "$TMP/mx.out" >&2 || true
	MX_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "mxgate: full handshakes ..." >&2
	load mx-full 198.18.0.2 25 "$SESS" "$MSGS" --size "$SIZE"
	echo "mxgate: resumed ..." >&2
	load mx-resumed 198.18.0.2 25 "$SESS" "$MSGS" --size "$SIZE" --resume
	echo "mxgate: plaintext probe alone ..." >&2
	load probe-idle 198.18.0.2 2525 1 "$PROBE" --size "$SIZE" --plain
	echo "mxgate: plaintext probe during a handshake flood ..." >&2
	$NX taskset -c 0 timeout $TMO "$LOADC" 198.18.0.2 25 "$SESS" 1000000 \
		--handshake-only --seconds 600 >"$TMP/flood.json" 2>&1 &
	fl=$!
	sleep 1
	load probe-flood 198.18.0.2 2525 1 "$PROBE" --size "$SIZE" --plain
	kill -TERM $fl 2>/dev/null || true
	wait $fl 2>/dev/null || true
	MX_LOAD="$MX_LOAD -> $(cut -d' ' -f1-3 /proc/loadavg)"
	sleep 0.5
	cp "$TMP/mx-stats.json" "$TMP/mx-stats-final.json" 2>/dev/null || true
	kill -TERM $mpid; wait $mpid 2>/dev/null || true
	MX_SINK=$(sink_settle mxgate "$((MSGS * 2 + PROBE * 2))")
	sink_stop
}

run_postfix() {
	sink_start postfix || return 1
	PYTHONPATH=$ROOT/tests/integration python3 - "$PFDIR" "$CERTS" <<'PY'
import sys
import peers
c = sys.argv[2]
pf = peers.Postfix(listen="198.18.1.1:25", deliver="proxy",
                   proxy_filter="198.18.1.1:2526", xclient_hosts="",
                   base=sys.argv[1], hostname="gw.bench.mxgt.test",
                   main_extra={"smtpd_tls_cert_file": c + "/ecdsa.crt",
                               "smtpd_tls_key_file": c + "/ecdsa.key",
                               "smtpd_tls_security_level": "may",
                               "smtpd_tls_loglevel": "0"})
pf.write_config()
PY
	[ -f "$PFDIR/etc/main.cf" ] || return 1
	$NX taskset -c 1 postfix -c "$PFDIR/etc" start >&2 || return 1
	wait_port 198.18.1.1 25 || return 1
	PF_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "postfix: full handshakes ..." >&2
	load pf-full 198.18.1.1 25 "$SESS" "$MSGS" --size "$SIZE"
	echo "postfix: resumed ..." >&2
	load pf-resumed 198.18.1.1 25 "$SESS" "$MSGS" --size "$SIZE" --resume
	PF_LOAD="$PF_LOAD -> $(cut -d' ' -f1-3 /proc/loadavg)"
	PF_SINK=$(sink_settle postfix "$((MSGS * 2))")
	grep -E 'warning|fatal|error' "$PFDIR/maillog" | head -5 >&2 || true
	postfix -c "$PFDIR/etc" stop >&2 || true
	sink_stop
}

MX_LOAD=""; PF_LOAD=""; MX_SINK=null; PF_SINK=null
run_mxgate || echo "tls-starttls.sh: mxgate run failed" >&2
run_postfix || echo "tls-starttls.sh: postfix run failed" >&2

python3 - "$TMP" "$OUT/tls-starttls.json" <<PY
import json, os, sys, time, platform
tmp, out = sys.argv[1], sys.argv[2]
def j(n):
    try:
        return json.load(open(os.path.join(tmp, n + ".json")))
    except (OSError, ValueError):
        return None
def rate(x):
    return x["msg_per_s"] if x and x["accepted"] == x["messages"] else None
def sink(x):
    return None if x in ("", "null") else int(x)
r = {"bench": "tls-starttls",
     "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
     "host": platform.node(), "cpus": os.cpu_count(),
     "load": {"client": "bench/tls/starttls_load (CPU 0)",
              "messages": $MSGS, "sessions": $SESS, "size": $SIZE,
              "messages_per_session": 1},
     "mxgate": {"full": j("mx-full"), "resumed": j("mx-resumed"),
                "sink_received": sink("$MX_SINK"), "loadavg": "$MX_LOAD",
                "cpu": "dataplane lcore on CPU 1; worker threads unpinned"},
     "postfix": {"full": j("pf-full"), "resumed": j("pf-resumed"),
                 "sink_received": sink("$PF_SINK"), "loadavg": "$PF_LOAD",
                 "version": os.popen("postconf -d -h mail_version").read().strip(),
                 "mode": "smtpd_proxy_filter (in-line), smtpd_tls_security_level=may",
                 "cpu": "all Postfix processes on CPU 1"},
     "plaintext_latency": {"listener": "2525 (no TLS), one session at a time",
                           "flood": j("flood"),
                           "alone": j("probe-idle"),
                           "during_handshake_flood": j("probe-flood")},
     "targets": {"full_ratio": 2.0, "resumed_ratio": 3.0,
                 "plaintext_p99_rise_ms": 1.0},
     "machine_shared": "2 CPUs shared with other developers: re-run on a "
                       "quiet machine before quoting"}
for k in ("full", "resumed"):
    a, b = rate(r["mxgate"][k]), rate(r["postfix"][k])
    r["ratio_mxgate_vs_postfix_" + k] = round(a / b, 2) if a and b else None
pa, pf = r["plaintext_latency"]["alone"], r["plaintext_latency"]["during_handshake_flood"]
if pa and pf:
    r["plaintext_latency"]["p99_rise_ms"] = round(
        pf["latency_ms"]["p99"] - pa["latency_ms"]["p99"], 3)
json.dump(r, open(out, "w"), indent=2)
def show(x):
    return "%s msg/s (resumed %s)" % (x and x["msg_per_s"], x and x["resumed"])
for f in ("mxgate", "postfix"):
    for k in ("full", "resumed"):
        print("%-8s %-8s %s" % (f, k, show(r[f][k])))
print("ratio full", r["ratio_mxgate_vs_postfix_full"], "resumed",
      r["ratio_mxgate_vs_postfix_resumed"])
if pa and pf:
    print("plaintext p99 alone %.3f ms, during flood %.3f ms" %
          (pa["latency_ms"]["p99"], pf["latency_ms"]["p99"]))
PY

cat >"$TMP/plot.gp" <<GP
set terminal png size 1000,420
set output "$OUT/tls-starttls.png"
set multiplot layout 1,2 title "STARTTLS in-line front, $MSGS msgs x $SIZE B, $SESS sessions ($(date -u +%F), shared machine)"
set style data histograms
set style fill solid 0.8
set ylabel "messages/s"
set yrange [0:*]
plot "$TMP/rates.dat" using 2:xtic(1) title "full handshake", "" using 3 title "resumed"
set ylabel "plaintext session latency on 2525 (ms)"
plot "$TMP/lat.dat" using 2:xtic(1) title "p50", "" using 3 title "p99"
unset multiplot
GP
python3 - "$OUT/tls-starttls.json" "$TMP" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
with open(sys.argv[2] + "/rates.dat", "w") as f:
    for k in ("mxgate", "postfix"):
        g = lambda m: (r[k][m] or {}).get("msg_per_s", 0)
        f.write("%s %s %s\n" % (k, g("full"), g("resumed")))
with open(sys.argv[2] + "/lat.dat", "w") as f:
    for k, lab in (("alone", "alone"), ("during_handshake_flood", "during-flood")):
        l = (r["plaintext_latency"][k] or {}).get("latency_ms", {})
        f.write("%s %s %s\n" % (lab, l.get("p50", 0), l.get("p99", 0)))
PY
gnuplot "$TMP/plot.gp" && echo "tls-starttls.sh: wrote $OUT/tls-starttls.json and $OUT/tls-starttls.png" >&2
