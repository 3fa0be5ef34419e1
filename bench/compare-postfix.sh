#!/bin/sh
# bench/compare-postfix.sh - mxgate against Postfix as an in-line SMTP front,
# same machine, same run, same load, same backend (issue 4). Not a test: it
# prints what it measured and writes bench/results/compare-postfix.json and
# bench/results/compare-postfix.png.
#
# Load: Postfix smtp-source, SESSIONS parallel sessions, one message of
# 2 KiB per connection (no -d), MESSAGES messages in all.
#  (a) mxgate on a net_tap port (one dataplane lcore on CPU 1, its default
#      idle back-off; BUSY=1 busy-polls instead),
#      pool -> smtp-sink; smtp-source on the kernel side of the tap.
#  (b) Postfix smtpd with smtpd_proxy_filter (in-line, no queue: it answers
#      the final dot after the filter did) -> smtp-sink; every Postfix
#      process on CPU 1, smtp-source over the namespace's loopback.
# smtp-source and smtp-sink run on CPU 0 in both runs. Each run has its own
# smtp-sink, whose received count (-c) must equal MESSAGES.
# CPU per message (issue 17): over tap the kernel client, not the front,
# sets the pace, so each run also reports the front's own CPU time per
# message: the process's user+system time from /proc over the smtp-source
# run (Postfix: master with its reaped children plus the live children),
# and the busy time of the pinned CPU 1 from /proc/stat (which also holds
# the kernel's tap/loopback work and whatever else runs there); the
# ratio of the first is the efficiency figure. mxgate's process time
# includes its poll loop's empty iterations (the idle back-off spins 256
# of them before each sleep), so the script also reports the time its
# dataplane lcore spent in iterations that found work (the stats file's
# busy_tsc) and in empty polls with the back-off's pauses (idle_tsc):
# wall-clock TSC, inflated alike when the lcore is preempted, so their
# ratio times the lcore thread's CPU time (/proc/PID/task) is the
# working CPU per message (lcore_working_cpu_ns_per_msg).
# Second opinion (issue 17): right after smtp-source, mxgate-bench (the
# userspace-stack generator, on its own net_tap port, 198.18.2.2 via the
# namespace's kernel as router, CPU 0) sends the same load (MESSAGES
# messages, SESSIONS sessions, SIZE octets, 1 per connection) to the same
# front; the sink must count them too.
# Everything runs in a network namespace created here (198.18.0.0/15
# addresses only) and removed on exit; every wait is bounded.
#
# Content rules (issue 15): with RULES=N set (0 included), both fronts
# get the same N generated body rules (bench/content/gen_gateway.py:
# literals and regexes that match nothing in the load, and a probe rule):
# mxgate as a content_rule_sets file bound to the listener, Postfix as
# body_checks = pcre:. body_checks are a cleanup(8) feature, which an
# smtpd_proxy_filter front never runs, so in this mode Postfix is the
# ordinary queueing front (smtpd -> cleanup -> queue -> smtp -> the same
# smtp-sink), with and without rules alike; its rate is counted until the
# sink has every message. smtp-source sends one generated message of SIZE
# body octets (English-like 72-column lines, -F); mxgate-bench is not run
# (it cannot send that file). After the timed run a probe message that
# the last rule matches must be refused (550) by the front: proof that the
# rules were in force. Writes bench/results/content-gateway-SIZE-N.json,
# no plot (bench/content.sh gateway combines the runs and plots).
#
# usage: bench/compare-postfix.sh [MESSAGES [SESSIONS]]   (root)
#   MXGATE=path   use this binary instead of building ./build
#   PHASES="mxgate postfix"   which runs (default both)
#   SIZE=2048     message payload octets
#   RULES=N       content-rules mode (above)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MSGS=${1:-20000}
SESS=${2:-50}
SIZE=${SIZE:-2048}
PHASES=${PHASES:-"mxgate postfix"}
# BUSY=0 (default, as deployed): the dataplane lcore backs off when idle
# (on this 2-CPU VM the kernel side then gets CPU 1 in the gaps);
# BUSY=1: it busy-polls.
BUSY=${BUSY:-0}
if [ "$BUSY" = 1 ]; then BUSY_CFG=true; BUSY_FLAG=--busy-poll
else BUSY_CFG=false; BUSY_FLAG=; fi
TMO=600   # seconds, per smtp-source run
RULES=${RULES:-}

if [ "$(id -u)" != 0 ]; then
	echo "compare-postfix.sh: must run as root (netns, tap)" >&2
	exit 2
fi
./scripts/install-deps.sh >/dev/null
if [ -z "${MXGATE:-}" ]; then
	[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
	ninja -C build >/dev/null
	MXGATE=$ROOT/build/dataplane/mxgate
fi
OUT=$ROOT/bench/results
mkdir -p "$OUT"
NS=mxgcmp-$$
BENCH=$ROOT/build/bench/mxgate-bench/mxgate-bench
HZ=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/mxgcmp.XXXXXX)
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
	[ -n "${KEEP:-}" ] && echo "compare-postfix.sh: kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
if [ -n "$RULES" ]; then
	python3 "$ROOT/bench/content/gen_gateway.py" "$TMP" "$RULES" "$SIZE"
	chmod 644 "$TMP"/*.txt "$TMP"/body*
fi
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS addr add 198.18.1.1/32 dev lo
NX="ip netns exec $NS"
# 2 x MESSAGES short connections: room for the client's TIME_WAITs.
$NX sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
$NX sysctl -qw net.ipv4.tcp_tw_reuse=1
$NX sysctl -qw net.ipv4.ip_forward=1

# proc_ticks PID: user+system clock ticks of one process
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# proc_uticks PID: user clock ticks only (over tap, mxgate's system
# time holds the kernel's work for every frame it writes to the tap,
# including the peer's TCP receive processing)
proc_uticks() { awk '{print $14}' "/proc/$1/stat"; }
# pf_ticks MASTER [user]: Postfix's CPU: master with its reaped children
# (cutime+cstime) plus every live child; with "user", user time only
pf_ticks() {
	if [ "${2:-}" = user ]; then mf='$14 + $16'; cf='$14'
	else mf='$14 + $15 + $16 + $17'; cf='$14 + $15'; fi
	m=$(awk "{print $mf}" "/proc/$1/stat")
	c=0
	for d in /proc/[0-9]*; do
		[ "$(awk '/^PPid:/{print $2}' "$d/status" 2>/dev/null)" = "$1" ] || continue
		t=$(awk "{print $cf}" "$d/stat" 2>/dev/null || echo 0)
		c=$((c + ${t:-0}))
	done
	echo $((m + c))
}
# cpu1_ticks: busy ticks of CPU 1 (user nice system irq softirq)
# lcore_ticks PID: utime+stime of mxgate's dataplane lcore thread
# (DPDK names it rte-worker-N)
lcore_ticks() {
	for t in /proc/$1/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = rte-worker-1 ] &&
			awk '{print $14 + $15}' "$t/stat" && return
	done
	echo 0
}
cpu1_ticks() { awk '$1 == "cpu1" {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# ns_per_msg TICKS: nanoseconds of CPU per message
ns_per_msg() { python3 -c "print(round($1 * 1e9 / $HZ / $MSGS, 1))"; }

# bench_run NAME TARGET: mxgate-bench with the same load as smtp-source,
# from its own tap (198.18.2.2, router 198.18.2.1 = this namespace's
# kernel); prints "msgs_per_s accepted" (null null when it failed)
bench_run() {
	tap=mxgcb$1
	$NX taskset -c 0 timeout $TMO "$BENCH" --port "net_tap0,iface=$tap" \
		--ip 198.18.2.2/24 --gateway 198.18.2.1 --cpu 0 --quiet \
		--target "$2" --count "$MSGS" --sessions "$SESS" --warmup 0 \
		--size "$SIZE" --msgs-per-conn 1 --from load@bench.mxgt.test \
		--to rcpt@example.net --json "$TMP/bench-$1.json" \
		>"$TMP/bench-$1.out" 2>&1 &
	bp=$!
	i=0
	until $NX ip link show $tap >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 400 ] && break; sleep 0.05
	done
	$NX ip addr add 198.18.2.1/24 dev $tap 2>/dev/null || true
	$NX ip link set $tap up 2>/dev/null || true
	if wait $bp && [ -f "$TMP/bench-$1.json" ]; then
		python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["generator"]["total"]; m=json.load(open(sys.argv[1]))["generator"]["measured"]; print(m["msgs_per_s"], t["msgs_accepted"])' "$TMP/bench-$1.json"
	else
		echo "compare-postfix.sh: mxgate-bench against $1 failed" >&2
		tail -3 "$TMP/bench-$1.out" >&2
		echo "null null"
	fi
}

# wait_port IP PORT: until something listens there (bounded)
wait_port() {
	i=0
	until $NX python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$1" "$2" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 400 ] && { echo "compare-postfix.sh: nothing on $1:$2" >&2; return 1; }
		sleep 0.05
	done
}

# sink_start NAME: smtp-sink on every address of the namespace, port 2526.
# -C -F: no XCLIENT, no XFORWARD, so neither front passes client details
# (smtp-sink answers XCLIENT with 250 where XCLIENT_README says 220, and
# Postfix's proxy would send XFORWARD): both pay the same round trips.
sink_start() {
	$NX taskset -c 0 smtp-sink -u nobody -c -C -F -m 1024 0.0.0.0:2526 1024 \
		>"$TMP/sink-$1.out" 2>&1 &
	echo $! >>"$TMP/pids"
	SINKPID=$!
	if ! wait_port 198.18.1.1 2526; then
		tr '\r' '\n' <"$TMP/sink-$1.out" | tail -3 >&2
		return 1
	fi
}
# sink_count NAME: messages the sink counted (its last mesg=N)
sink_count() {
	tr '\r' '\n' <"$TMP/sink-$1.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}
sink_stop() {
	kill -TERM "$SINKPID" 2>/dev/null || true
	wait "$SINKPID" 2>/dev/null || true
}
# sink_settle NAME WANT: wait up to 10 s for the count to reach WANT
sink_settle() {
	i=0
	while [ "$(sink_count "$1")" != "$2" ] && [ $i -lt 100 ]; do
		i=$((i + 1)); sleep 0.1
	done
	sink_count "$1"
}

# source NAME HOST:PORT -> seconds (wall clock of the whole run)
source_run() {
	t0=$(date +%s.%N)
	rc=0
	if [ -n "$RULES" ]; then body="-F $TMP/message.txt"
	else body="-l $SIZE"; fi
	$NX taskset -c 0 timeout $TMO smtp-source -s "$SESS" -m "$MSGS" \
		$body -M bench.mxgt.test -f load@bench.mxgt.test \
		-t rcpt@example.net "$2" >"$TMP/source-$1.out" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	if [ $rc != 0 ]; then
		echo "compare-postfix.sh: smtp-source against $1 failed ($rc):" >&2
		tail -5 "$TMP/source-$1.out" >&2
	fi
	python3 -c "print(round($t1 - $t0, 3))"
	return $rc
}

# probe HOST PORT: send probe.txt (the last rule matches it); prints the
# front's reply code to the end of data (250 when it was accepted)
probe() {
	$NX python3 - "$1" "$2" "$TMP/probe.txt" <<'PY' 2>&1 | tail -1
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
try:
    s.sendmail("load@bench.mxgt.test", ["rcpt@example.net"],
               open(sys.argv[3], "rb").read().replace(b"\n", b"\r\n"))
    print(250)
except smtplib.SMTPDataError as e:
    print(e.smtp_code)
PY
}
# sink_wait NAME WANT SECS: wait up to SECS for the sink's count
sink_wait() {
	i=0
	while [ "$(sink_count "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do
		i=$((i + 1)); sleep 0.1
	done
	sink_count "$1"
}
MX_PROBE=null; PF_PROBE=null; PF_ARRIVE=null; PF_ACC_RATE=null
MX_SECS=null; MX_RATE=null; MX_RECV=null; MX_ACC=null; MX_OK=false
PF_SECS=null; PF_RATE=null; PF_RECV=null; PF_OK=false
MX_CPU=null; MX_CPU1=null; PF_CPU=null; PF_CPU1=null; MX_BUSY_NS=null; MX_EMPTY_NS=null; MX_LCORE_NS=null; MX_WORK_NS=null; MX_UCPU=null; PF_UCPU=null
MX_B_RATE=null; MX_B_ACC=null; MX_B_RECV=null
PF_B_RATE=null; PF_B_ACC=null; PF_B_RECV=null
MX_LOAD=""; PF_LOAD=""

# mx_tsc_ns FIELD: mxgate's dataplane time, nanoseconds, from the stats
# file: busy_tsc (iterations that found work) or idle_tsc (the empty
# polls, without the back-off's pauses and sleeps); wall-clock cycles
mx_tsc_ns() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total"][sys.argv[2]] * 1e9 / d["tsc_hz"])' "$TMP/mx.json" "$1" 2>/dev/null || echo 0
}

run_mxgate() {
	sink_start mxgate || return 1
	cat >"$TMP/mxgate.conf" <<EOF
stack = { port = "net_tap0,iface=mxgc0"; address = "198.18.0.2/24";
          gateway = "198.18.0.1"; cores = 1; busy_poll = $BUSY_CFG; max_conns = 16384; };
listeners = ( { name = "mx"; port = 25; role = "mx";
                hostname = "gw.bench.mxgt.test"; } );
pools = ( { name = "default"; type = "smtp"; client_info = "none";
            servers = ( { address = "198.18.0.1"; port = 2526; } );
            idle_max = 64; } );
maildir = { path = "$TMP/Maildir"; };
log = { file = "$TMP/mxgate.log"; level = "warn"; };
policy = { relay_networks = [ "198.18.0.0/15" ]; };
EOF
	if [ -n "$RULES" ] && [ "$RULES" != 0 ]; then
		cat >>"$TMP/mxgate.conf" <<EOF
content_rule_sets = ( { name = "bench"; file = "$TMP/body.rules"; } );
EOF
		sed -i 's/hostname = "gw.bench.mxgt.test";/& content_rules = "bench";/' "$TMP/mxgate.conf"
	fi
	"$MXGATE" --check-config "$TMP/mxgate.conf" >&2 || return 1
	$NX "$MXGATE" --config "$TMP/mxgate.conf" $BUSY_FLAG --cores 1 \
		--dp-cpus 1 --stats-file "$TMP/mx.json" --stats-interval-ms 200 \
		>"$TMP/mx.out" 2>&1 &
	echo $! >>"$TMP/pids"; mpid=$!
	i=0
	until $NX ip link show mxgc0 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 1200 ] && { cat "$TMP/mx.out" >&2; return 1; }
		kill -0 $mpid 2>/dev/null || { cat "$TMP/mx.out" >&2; return 1; }
		sleep 0.05
	done
	$NX ip addr add 198.18.0.1/24 dev mxgc0
	$NX ip link set mxgc0 up
	wait_port 198.18.0.2 25 || return 1
	echo "mxgate: smtp-source $MSGS msgs, $SESS sessions, $SIZE B ..." >&2
	MX_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
	sleep 0.3 # a fresh stats file
	p0=$(proc_ticks $mpid); k0=$(cpu1_ticks); l0=$(lcore_ticks $mpid)
	u0=$(proc_uticks $mpid)
	b0=$(mx_tsc_ns busy_tsc); e0=$(mx_tsc_ns idle_tsc)
	if MX_SECS=$(source_run mxgate 198.18.0.2:25); then MX_OK=true; fi
	p1=$(proc_ticks $mpid); k1=$(cpu1_ticks); l1=$(lcore_ticks $mpid)
	u1=$(proc_uticks $mpid); MX_UCPU=$(ns_per_msg $((u1 - u0)))
	sleep 0.3; b1=$(mx_tsc_ns busy_tsc); e1=$(mx_tsc_ns idle_tsc)
	MX_BUSY_NS=$(python3 -c "print(round(($b1 - $b0) / $MSGS, 1))")
	MX_EMPTY_NS=$(python3 -c "print(round(($e1 - $e0) / $MSGS, 1))")
	MX_LCORE_NS=$(ns_per_msg $((l1 - l0)))
	# the lcore thread's CPU time times the share of its polling time
	# that found work: what the messages cost, without the empty polls
	MX_WORK_NS=$(python3 -c "b, e = $b1 - $b0, $e1 - $e0; print(round($MX_LCORE_NS * b / (b + e), 1) if b + e > 0 else 'null')")
	MX_LOAD="$MX_LOAD -> $(cut -d' ' -f1-3 /proc/loadavg)"
	MX_CPU=$(ns_per_msg $((p1 - p0))); MX_CPU1=$(ns_per_msg $((k1 - k0)))
	echo "mxgate: CPU $MX_CPU ns/msg (process), CPU 1 busy $MX_CPU1 ns/msg, lcore thread $MX_LCORE_NS ns/msg of which working $MX_WORK_NS (busy iterations $MX_BUSY_NS, empty polls $MX_EMPTY_NS ns/msg of wall clock); load $MX_LOAD" >&2
	MX_RECV=$(sink_settle mxgate "$MSGS")
	if [ -n "$RULES" ]; then
		MX_PROBE=$(probe 198.18.0.2 25)
		echo "mxgate: probe message answered $MX_PROBE" >&2
	else
	echo "mxgate: mxgate-bench, the same load ..." >&2
	set -- $(bench_run mx 198.18.0.2:25)
	MX_B_RATE=$1; MX_B_ACC=$2
	MX_B_RECV=$(sink_settle mxgate $((MSGS * 2)))
	echo "mxgate: mxgate-bench $MX_B_RATE msg/s, accepted $MX_B_ACC, sink now $MX_B_RECV" >&2
	fi
	sleep 0.5
	MX_ACC=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"].get("gw_messages_accepted", "null"))' "$TMP/mx.json" 2>/dev/null || echo null)
	kill -TERM $mpid; wait $mpid 2>/dev/null || true
	sink_stop
	MX_RATE=$(python3 -c "print(round($MSGS / $MX_SECS, 1))")
	echo "mxgate: $MX_SECS s, $MX_RATE msg/s; smtp-sink received $MX_RECV, gw_messages_accepted $MX_ACC" >&2
}

run_postfix() {
	sink_start postfix || return 1
	PYTHONPATH=$ROOT/tests/integration python3 - "$PFDIR" "$RULES" "$TMP" <<'PY'
import sys
import peers
if sys.argv[2] == "":
    pf = peers.Postfix(listen="198.18.1.1:25", deliver="proxy",
                       proxy_filter="198.18.1.1:2526", xclient_hosts="",
                       base=sys.argv[1], hostname="front.bench.mxgt.test")
else:
    # content mode: the queueing front (cleanup runs body_checks)
    extra = {"transport_maps": "static:smtp:[198.18.1.1]:2526",
             "smtp_tls_security_level": "none"}
    if sys.argv[2] != "0":
        extra["body_checks"] = "pcre:%s/body_checks.pcre" % sys.argv[3]
    pf = peers.Postfix(listen="198.18.1.1:25", deliver="discard",
                       xclient_hosts="", main_extra=extra,
                       base=sys.argv[1], hostname="front.bench.mxgt.test")
pf.write_config()
PY
	[ -f "$PFDIR/etc/main.cf" ] || return 1
	$NX taskset -c 1 postfix -c "$PFDIR/etc" start >&2 || return 1
	wait_port 198.18.1.1 25 || return 1
	echo "postfix: smtp-source $MSGS msgs, $SESS sessions, $SIZE B ..." >&2
	pm=$(cat "$PFDIR/queue/pid/master.pid" | tr -d ' ')
	PF_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
	p0=$(pf_ticks $pm); k0=$(cpu1_ticks); u0=$(pf_ticks $pm user)
	t0=$(date +%s.%N)
	if PF_SECS=$(source_run postfix 198.18.1.1:25); then PF_OK=true; fi
	if [ -n "$RULES" ]; then
		# queueing front: the messages are done when the sink has them
		PF_ACC_RATE=$(python3 -c "print(round($MSGS / $PF_SECS, 1))")
		PF_RECV=$(sink_wait postfix "$MSGS" 150)
		PF_ARRIVE=$(python3 -c "import time; print(round(time.time() - $t0, 3))")
	fi
	p1=$(pf_ticks $pm); k1=$(cpu1_ticks); u1=$(pf_ticks $pm user)
	PF_UCPU=$(ns_per_msg $((u1 - u0)))
	PF_LOAD="$PF_LOAD -> $(cut -d' ' -f1-3 /proc/loadavg)"
	PF_CPU=$(ns_per_msg $((p1 - p0))); PF_CPU1=$(ns_per_msg $((k1 - k0)))
	echo "postfix: CPU $PF_CPU ns/msg (processes), CPU 1 busy $PF_CPU1 ns/msg; load $PF_LOAD" >&2
	if [ -n "$RULES" ]; then
		PF_PROBE=$(probe 198.18.1.1 25)
		echo "postfix: accepted at $PF_ACC_RATE msg/s, all at the sink after $PF_ARRIVE s; probe message answered $PF_PROBE" >&2
	else
	PF_RECV=$(sink_settle postfix "$MSGS")
	echo "postfix: mxgate-bench, the same load ..." >&2
	set -- $(bench_run pf 198.18.1.1:25)
	PF_B_RATE=$1; PF_B_ACC=$2
	PF_B_RECV=$(sink_settle postfix $((MSGS * 2)))
	echo "postfix: mxgate-bench $PF_B_RATE msg/s, accepted $PF_B_ACC, sink now $PF_B_RECV" >&2
	fi
	postfix -c "$PFDIR/etc" stop >&2 || true
	sink_stop
	if [ "$PF_ARRIVE" != null ]; then PF_SECS=$PF_ARRIVE; fi
	PF_RATE=$(python3 -c "print(round($MSGS / $PF_SECS, 1))")
	echo "postfix: $PF_SECS s, $PF_RATE msg/s; smtp-sink received $PF_RECV" >&2
	grep -E 'warning|fatal|error' "$PFDIR/maillog" | head -5 >&2 || true
}

for ph in $PHASES; do
	case $ph in
	mxgate) run_mxgate || echo "compare-postfix.sh: mxgate run failed" >&2 ;;
	postfix) run_postfix || echo "compare-postfix.sh: postfix run failed" >&2 ;;
	esac
done

JSON=$OUT/compare-postfix.json
[ -n "$RULES" ] && JSON=$OUT/content-gateway-$SIZE-$RULES.json
python3 - "$JSON" <<PY
import json, sys, time, platform
def n(x):
    return None if x in ("null", "", None) else float(x)
msgs = $MSGS
mx = {"ok": "$MX_OK" == "true", "seconds": n("$MX_SECS"),
      "msg_per_s": n("$MX_RATE"), "sink_received": n("$MX_RECV"),
      "gw_messages_accepted": n("$MX_ACC"),
      "cpu_ns_per_msg_process": n("$MX_CPU"),
      "cpu_ns_per_msg_cpu1": n("$MX_CPU1"), "loadavg": "$MX_LOAD",
      "busy_ns_per_msg_lcore": n("$MX_BUSY_NS"),
      "empty_poll_ns_per_msg_lcore": n("$MX_EMPTY_NS"),
      "lcore_thread_cpu_ns_per_msg": n("$MX_LCORE_NS"),
      "user_cpu_ns_per_msg_process": n("$MX_UCPU"),
      "lcore_working_cpu_ns_per_msg": n("$MX_WORK_NS"),
      "mxgate_bench": {"msg_per_s": n("$MX_B_RATE"),
                       "accepted": n("$MX_B_ACC"),
                       "sink_total_after": n("$MX_B_RECV")}}
pf = {"ok": "$PF_OK" == "true", "seconds": n("$PF_SECS"),
      "msg_per_s": n("$PF_RATE"), "sink_received": n("$PF_RECV"),
      "cpu_ns_per_msg_process": n("$PF_CPU"),
      "cpu_ns_per_msg_cpu1": n("$PF_CPU1"), "loadavg": "$PF_LOAD",
      "user_cpu_ns_per_msg_process": n("$PF_UCPU"),
      "mxgate_bench": {"msg_per_s": n("$PF_B_RATE"),
                       "accepted": n("$PF_B_ACC"),
                       "sink_total_after": n("$PF_B_RECV")}}
for r in (mx, pf):
    r["counts_match"] = r["sink_received"] == msgs
r = {
  "bench": "compare-postfix",
  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  "host": platform.node(), "cpus": $(nproc),
  "load": {"tool": "smtp-source", "messages": msgs, "sessions": $SESS,
           "payload_bytes": $SIZE, "messages_per_connection": 1},
  "mxgate": dict(mx, port="net_tap", dataplane_lcores=1,
                 busy_poll=$( [ "$BUSY" = 1 ] && echo True || echo False),
                 cpu="dataplane lcore on CPU 1"),
  "postfix": dict(pf, version="$(postconf -d -h mail_version)",
                  mode="smtpd_proxy_filter (in-line)",
                  cpu="all Postfix processes on CPU 1"),
  "backend": "smtp-sink (CPU 0), one per run",
  "target_ratio": 3.0,
  "target_cpu_ratio": 10.0,
  "machine_shared": "2 CPUs shared with other developers: re-run on a "
                    "quiet machine before quoting",
}
r["cpu_ratio_postfix_vs_mxgate_process"] = (
    round(pf["cpu_ns_per_msg_process"] / mx["cpu_ns_per_msg_process"], 2)
    if pf["cpu_ns_per_msg_process"] and mx["cpu_ns_per_msg_process"]
    else None)
r["cpu_ratio_postfix_vs_mxgate_user"] = (
    round(pf["user_cpu_ns_per_msg_process"] /
          mx["user_cpu_ns_per_msg_process"], 2)
    if pf["user_cpu_ns_per_msg_process"] and
    mx["user_cpu_ns_per_msg_process"] else None)
r["cpu_ratio_postfix_vs_mxgate_working"] = (
    round(pf["cpu_ns_per_msg_process"] / mx["lcore_working_cpu_ns_per_msg"],
          2)
    if pf["cpu_ns_per_msg_process"] and
    mx.get("lcore_working_cpu_ns_per_msg") else None)
r["cpu_ratio_postfix_vs_mxgate_cpu1"] = (
    round(pf["cpu_ns_per_msg_cpu1"] / mx["cpu_ns_per_msg_cpu1"], 2)
    if pf["cpu_ns_per_msg_cpu1"] and mx["cpu_ns_per_msg_cpu1"] else None)
for x in ((mx, pf) if "$RULES" == "" else ()):
    b = x["mxgate_bench"]
    b["counts_match"] = (b["accepted"] == msgs and
                         b["sink_total_after"] == 2 * msgs)
phases = "$PHASES".split()
ok = all(x["ok"] and x["counts_match"]
         for name, x in (("mxgate", mx), ("postfix", pf)) if name in phases)
if "$RULES" != "":
    r["content"] = {
        "rules": int("$RULES"), "generator": "bench/content/gen_gateway.py",
        "message": "smtp-source -F: one generated message, $SIZE body "
                   "octets, 72-column English-like lines",
        "postfix_mode": "queueing front (smtpd, cleanup with body_checks "
                        "= pcre:, qmgr, smtp to the sink): body_checks do "
                        "not run in an smtpd_proxy_filter front",
        "postfix_seconds_is": "smtp-source start until the sink counted "
                              "every message",
        "postfix_accept_msg_per_s": n("$PF_ACC_RATE"),
        "mxgate_probe_reply": n("$MX_PROBE"),
        "postfix_probe_reply": n("$PF_PROBE")}
    want = 550 if int("$RULES") > 0 else 250
    for name, code in (("mxgate", n("$MX_PROBE")), ("postfix", n("$PF_PROBE"))):
        if name in phases and code != want:
            ok = False
    for x in (mx, pf):
        del x["mxgate_bench"]
r["valid"] = ok and len(phases) == 2
open("$TMP/valid", "w").write("1" if ok else "0")
r["ratio_mxgate_vs_postfix"] = (round(mx["msg_per_s"] / pf["msg_per_s"], 2)
                                if mx["msg_per_s"] and pf["msg_per_s"]
                                else None)
json.dump(r, open(sys.argv[1], "w"), indent=1)
print(json.dumps(r, indent=1))
print("mxgate %s msg/s, postfix %s msg/s, ratio %s%s" % (
    mx["msg_per_s"], pf["msg_per_s"], r["ratio_mxgate_vs_postfix"],
    "" if ok else "  (INVALID: a run failed or counts differ)"))
print("CPU per message: mxgate %s ns, postfix %s ns (process), ratio %s; "
      "CPU 1 busy: %s / %s ns, ratio %s" % (
    mx["cpu_ns_per_msg_process"], pf["cpu_ns_per_msg_process"],
    r["cpu_ratio_postfix_vs_mxgate_process"], mx["cpu_ns_per_msg_cpu1"],
    pf["cpu_ns_per_msg_cpu1"], r["cpu_ratio_postfix_vs_mxgate_cpu1"]))
print("user CPU per message: mxgate %s ns, postfix %s ns, ratio %s" % (
    mx["user_cpu_ns_per_msg_process"], pf["user_cpu_ns_per_msg_process"],
    r["cpu_ratio_postfix_vs_mxgate_user"]))
print("mxgate lcore thread %s ns/msg, of it working %s ns/msg: "
      "postfix/mxgate %s" % (
    mx["lcore_thread_cpu_ns_per_msg"], mx["lcore_working_cpu_ns_per_msg"],
    r["cpu_ratio_postfix_vs_mxgate_working"]))
if "$RULES" == "":
    print("mxgate-bench, same load: against mxgate %s msg/s, against "
          "postfix %s msg/s" % (mx["mxgate_bench"]["msg_per_s"],
                                pf["mxgate_bench"]["msg_per_s"]))
else:
    print("content rules %s: probe replies mxgate %s, postfix %s" % (
        "$RULES", r["content"]["mxgate_probe_reply"],
        r["content"]["postfix_probe_reply"]))
if len(phases) < 2:
    print("only %s run: no valid comparison" % phases)
PY

if [ -n "$RULES" ]; then
	echo "compare-postfix.sh: wrote $JSON" >&2
	[ "$(cat "$TMP/valid" 2>/dev/null)" = 1 ]
	exit
fi
z() { [ "$1" = null ] && echo 0 || echo "$1"; }
cat >"$TMP/plot.gp" <<GP
set terminal png size 1000,420
set output "$OUT/compare-postfix.png"
set multiplot layout 1,2 title "SMTP in-line front, $MSGS msgs x $SIZE B, $SESS sessions, 1 msg/conn ($(date -u +%F), shared machine)"
set style data histograms
set style fill solid 0.7
set boxwidth 0.8
set yrange [0:*]
set title "messages/s (smtp-source | mxgate-bench)"
plot "-" using 2:xtic(1) title "smtp-source", "-" using 2 title "mxgate-bench"
"mxgate (tap)" $(z "$MX_RATE")
"Postfix" $(z "$PF_RATE")
e
"mxgate" $(z "$MX_B_RATE")
"Postfix" $(z "$PF_B_RATE")
e
set title "front CPU per message, us (process user+system)"
plot "-" using (\$2/1000):xtic(1) notitle
"mxgate" $(z "$MX_CPU")
"Postfix" $(z "$PF_CPU")
e
unset multiplot
GP
gnuplot "$TMP/plot.gp" && echo "compare-postfix.sh: wrote $OUT/compare-postfix.json and $OUT/compare-postfix.png" >&2
[ "$(cat "$TMP/valid" 2>/dev/null)" = 1 ]
