#!/bin/sh
# bench/gateway.sh - messages per second per mxgate core over memif
# (issue 17). Not a test: it prints what it measured and writes
# bench/results/gateway.json and bench/results/gateway.png.
#
# One memif link, two processes, in a network namespace created here:
#   mxgate-bench (CPU 0): the generator -> 198.18.9.2:25 and the sink on
#       198.18.9.3:2526, one lcore, busy-polling, one process;
#   mxgate (one dataplane lcore on CPU 1, busy-polling): listener :25,
#       pool "default" -> 198.18.9.3:2526, i.e. back over the same memif
#       port to the sink (mxgate has one port; its backend is reachable
#       on it, so no second port is needed).
# Every message the generator saw accepted must be counted by the sink
# exactly once with a good body digest, or the case is marked invalid.
# Cases: 1 msg/conn of 2 KiB; 10 msgs/conn; 10 rcpts/msg; 100 rcpts/msg
# (not in the default set); 100 KiB msgs; conn1_tls: 1 msg/conn of 2 KiB
# over STARTTLS (mxgate's listener offers it with a test ECDSA P-256
# certificate made here; mxgate-bench --starttls verifies it against the
# test CA; mxgate's handshakes run on its worker threads, unpinned, and
# mxgate-bench's inline on CPU 0).
# mxgate's per-message cost: its process CPU time (/proc/PID/stat,
# user+system) over the measured window / messages; frames per message
# from both stacks' counters. perf top functions when perf can sample.
#
# Two mxgate cores (cases conn1_2core and its same-run reference
# conn1_1core_backoff): mxgate with two dataplane lcores on CPUs 0 and 1
# and its default idle back-off; mxgate-bench on CPU 0 beside mxgate's
# first lcore, with --client-ips 198.18.9.64/27 (32 source addresses, so
# mxgate's steering by client address spreads the sessions over both
# lcores) and --queues 2 (the memif has a queue pair per mxgate lcore;
# mxgate-bench sends a source address's frames on queue (index mod 2),
# so about half of them reach their owner directly and the rest are
# steered by mxgate over its rings), and no busy polling on either side:
# three pollers share two CPUs by sleeping when idle.
#
# usage: bench/gateway.sh [SECONDS per case, default 6] [SESSIONS, 64]
#   CASES="conn1 conn10 rcpt10 big100k conn1_tls conn1_1core_backoff conn1_2core"
#                  which cases (default these; rcpt100 too on request)
#   MEMIF_ARGS=",rsize=12"  extra net_memif arguments for both ends (the
#                  default: 4,096-slot rings; MEMIF_ARGS= for 1,024)
#   NAME=gateway   results as bench/results/NAME.json and NAME.png
#   TOOL=0         skip the tool-only baseline
#   MXG=PATH       the mxgate binary to measure (default build/dataplane/mxgate)
#   MXG_BASE=PATH  a second mxgate binary (e.g. a build of the parent
#                  commit): every case runs first with it (as CASE_base),
#                  then with MXG, in the same run, REPEAT times (default
#                  2), alternating; the JSON gets the ratio of the summed
#                  rates; no perf record in this mode (it would load one
#                  side only)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-6}
SESS=${2:-64}
WARM=2
CASES=${CASES:-"conn1 conn10 rcpt10 big100k conn1_tls conn1_1core_backoff conn1_2core"}
MEMIF_ARGS=${MEMIF_ARGS-,rsize=12}
NAME=${NAME:-gateway}
TOOL=${TOOL:-1}
[ "$(id -u)" = 0 ] || { echo "gateway.sh: must run as root" >&2; exit 2; }
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
ninja -C build >/dev/null
MXG=${MXG:-$ROOT/build/dataplane/mxgate}
MXG_BASE=${MXG_BASE:-}
REPEAT=${REPEAT:-2}
RUN_MXG=$MXG
BENCH=$ROOT/build/bench/mxgate-bench/mxgate-bench
OUT=$ROOT/bench/results
mkdir -p "$OUT"
NS=mxggw-$$
TMP=$(mktemp -d /tmp/mxggw.XXXXXX)
HZ=$(getconf CLK_TCK)

cleanup() {
	trap - EXIT INT TERM
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 1
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
	ip netns del $NS 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "gateway.sh: kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add $NS
ip -n $NS link set lo up
NX="ip netns exec $NS"

# cputicks PID: utime+stime of a process, clock ticks
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

PERF_OK=false
if perf record -e cpu-clock -o "$TMP/perf.probe" true >/dev/null 2>&1; then
	PERF_OK=true
fi

# run_case NAME GEN-ARGS...: one mxgate, one mxgate-bench, one JSON line.
# MX_CORES (1), MX_CPUS (1), BUSY (true): mxgate's lcores and polling;
# BENCH_SRC: extra mxgate-bench arguments (source addresses, queues).
run_case() {
	name=$1; shift
	sock=$TMP/$name.sock
	mx_cores=${MX_CORES:-1}; mx_cpus=${MX_CPUS:-1}; busy=${BUSY:-true}
	if [ "$busy" = true ]; then mx_busy=--busy-poll; bench_busy=--busy-poll
	else mx_busy=; bench_busy=; fi
	tls=
	case $name in
	*_tls*) [ -f "$TMP/tls/ca.pem" ] ||
			"$ROOT/scripts/make-tls-certs.sh" "$TMP/tls" \
				gw.bench.mxgt.test >/dev/null
		tls="tls = \"optional\"; certificates = ( { cert = \"$TMP/tls/ecdsa.crt\"; key = \"$TMP/tls/ecdsa.key\"; } );" ;;
	esac
	cat >"$TMP/$name.conf" <<EOF
stack = { port = "net_memif0,role=server,socket=$sock,id=0$MEMIF_ARGS";
          address = "198.18.9.2/24"; cores = $mx_cores; busy_poll = $busy;
          max_conns = 16384; };
listeners = ( { name = "mx"; port = 25; role = "mx";
                hostname = "gw.bench.mxgt.test"; $tls } );
pools = ( { name = "default"; type = "smtp"; client_info = "none";
            servers = ( { address = "198.18.9.3"; port = 2526; } );
            idle_max = 256; } );
maildir = { path = "$TMP/Maildir"; };
log = { file = "$TMP/$name.log"; level = "warn"; };
policy = { relay_networks = [ "198.18.0.0/15" ]; };
EOF
	# shellcheck disable=SC2086
	$NX "$RUN_MXG" --config "$TMP/$name.conf" $mx_busy --cores $mx_cores \
		--dp-cpus $mx_cpus --stats-file "$TMP/$name-mx.json" \
		--stats-interval-ms 200 >"$TMP/$name-mx.out" 2>&1 &
	mpid=$!; echo $mpid >>"$TMP/pids"
	sleep 2
	kill -0 $mpid || { cat "$TMP/$name-mx.out" >&2; return 1; }
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	# shellcheck disable=SC2086
	$NX "$BENCH" --port "net_memif0,role=client,socket=$sock,id=0$MEMIF_ARGS" \
		--ip 198.18.9.3/24 --cpu 0 $bench_busy --quiet ${BENCH_SRC:-} \
		--target 198.18.9.2:25 --sink-port 2526 --sink-check-digest \
		--sessions "$SESS" --warmup $WARM --duration "$SECS" \
		--drain-ms 3000 --json "$TMP/$name-bench.json" "$@" \
		>"$TMP/$name-bench.out" 2>&1 &
	bpid=$!; echo $bpid >>"$TMP/pids"
	sleep $WARM
	t0=$(date +%s.%N); c0=$(cputicks $mpid)
	if [ "$PERF_OK" = true ] && [ "$name" = conn1 ] && [ -z "$MXG_BASE" ]
	then
		perf record -e cpu-clock -g -p $mpid -o "$TMP/perf.data" \
			-- sleep 3 >/dev/null 2>&1 || true
		sleep $((SECS - 3)) 2>/dev/null || true
	else
		sleep "$SECS"
	fi
	c1=$(cputicks $mpid); t1=$(date +%s.%N)
	load1=$(cut -d' ' -f1-3 /proc/loadavg)
	wait $bpid || true
	sleep 0.5
	kill -TERM $mpid; wait $mpid 2>/dev/null || true
	python3 - "$name" "$TMP/$name-bench.json" "$TMP/$name-mx.json" \
		"$c0" "$c1" "$t0" "$t1" "$HZ" "$load0" "$load1" "$*" \
		"$mx_cores" "$busy" "${BENCH_SRC:-}" \
		>>"$TMP/cases.jsonl" <<'PY'
import json, sys
(name, bj, mj, c0, c1, t0, t1, hz, l0, l1, args, cores, busy,
 src) = sys.argv[1:]
b = json.load(open(bj))
g = b["generator"]; m = g["measured"]; t = g["total"]; s = b["sink"]
busy = None
try:
    mxd = json.load(open(mj))
    mx = mxd["total"]
    if mx.get("gw_messages_accepted") and mxd.get("tsc_hz"):
        # the lcores' time in iterations that found work, over the
        # whole run (warm-up and drain included), per message
        busy = {k: round(mx[k] * 1e9 / mxd["tsc_hz"] /
                         mx["gw_messages_accepted"], 1)
                for k in ("busy_tsc", "idle_tsc") if k in mx}
    per_core = [{k: c.get(k) for k in ("core", "gw_sessions",
                                       "gw_messages_accepted", "rx_pkts",
                                       "steered_in", "steered_out",
                                       "idle_sleeps", "loops")}
                for c in mxd.get("per_core", [])]
except Exception:
    mx = {}
    per_core = []
cpu = (float(c1) - float(c0)) / float(hz)
wall = float(t1) - float(t0)
rate = m["msgs_per_s"]
msgs_in_cpu_window = rate * wall
r = {
  "case": name, "generator_args": args, "mxgate_cores": int(cores),
  "busy_poll": busy == "true", "bench_source_args": src,
  "source_addresses": g.get("source_addresses", 1),
  "mxgate_per_core": per_core,
  "msgs_per_s": rate, "conns_per_s": m["conns_per_s"],
  "bytes_per_s": m["bytes_per_s"], "rcpts_ok": m["rcpts_ok"],
  "measured_s": m["seconds"],
  "latency_us": {k: v for k, v in m["latency"].items() if v["count"]},
  "replies": m["replies"], "bad_peer": t["bad_peer"],
  "generator_accepted_total": t["msgs_accepted"],
  "sink_msgs_total": s["msgs"], "sink_digest_bad": s["digest_bad"],
  "sink_duplicates": s["duplicates"], "exactly_once": b.get("exactly_once"),
  "mxgate_cpu_s": round(cpu, 3), "window_s": round(wall, 3),
  "mxgate_cpu_ns_per_msg": round(cpu * 1e9 / msgs_in_cpu_window, 1)
                           if msgs_in_cpu_window else None,
  "mxgate_core_ns_per_msg": round(1e9 / rate, 1) if rate else None,
  "mxgate_lcore_ns_per_msg": busy,
  # process CPU per message times the share of the lcores' polling time
  # that found work (busy / (busy + empty), both wall-clock TSC and
  # inflated alike by preemption): the working CPU per message
  "mxgate_working_cpu_ns_per_msg":
      round(cpu * 1e9 / msgs_in_cpu_window * busy["busy_tsc"] /
            (busy["busy_tsc"] + busy["idle_tsc"]), 1)
      if busy and msgs_in_cpu_window and
      busy.get("busy_tsc", 0) + busy.get("idle_tsc", 0) > 0 else None,
  "bench_frames_per_msg": {
      "rx": round(b["net"]["rx_frames"] / max(t["msgs_accepted"], 1), 2),
      "tx": round(b["net"]["tx_frames"] / max(t["msgs_accepted"], 1), 2)},
  "bench_cpu_ns_per_msg": g.get("cpu_ns_per_msg"),
  "bench_idle_time_share": b.get("poll", {}).get("idle_time_share"),
  "bench_port_tx_dropped": b["net"].get("port_tx_dropped"),
  "bench_retransmits": b["net"]["retransmits"],
  # STARTTLS cases: handshakes at both ends over the whole run
  "tls_handshakes": {"generator": t.get("tls_handshakes"),
                     "mxgate": mx.get("gw_tls_handshakes"),
                     "mxgate_failed": mx.get("gw_tls_handshakes_failed")},
  "mxgate_counters": {k: mx[k] for k in sorted(mx)
                      if k in ("rx_pkts", "tx_pkts", "gw_messages_accepted",
                               "tcp_retransmits", "tx_dropped",
                               "busy_tsc", "idle_tsc",
                               "gw_backend_round_trips")},
  # issue 17: waits for a backend reply per message (None: a binary
  # without the counter)
  "backend_round_trips_per_msg":
      round(mx["gw_backend_round_trips"] / mx["gw_messages_accepted"], 2)
      if mx.get("gw_messages_accepted") and
      "gw_backend_round_trips" in mx else None,
  "loadavg_before": l0, "loadavg_after": l1,
}
print(json.dumps(r))
sys.stderr.write("%-6s %9.1f msg/s  %7.1f conn/s  exactly_once=%s  "
                 "mxgate %s ns/msg (cpu %s, working %s)  "
                 "load %s -> %s\n" % (
                     name, rate, m["conns_per_s"], r["exactly_once"],
                     r["mxgate_core_ns_per_msg"], r["mxgate_cpu_ns_per_msg"],
                     r["mxgate_working_cpu_ns_per_msg"], l0, l1))
PY
}

# baseline: the tool alone, generator (CPU 0) <-memif-> sink (CPU 1), no
# mxgate: what one mxgate-bench lcore does per second when nothing else
# is in the way (in the gateway cases one process is generator and sink)
tool_only() {
	sock=$TMP/tool.sock
	$NX "$BENCH" --port "net_memif0,role=server,socket=$sock,id=0" \
		--ip 198.18.9.2/24 --cpu 1 --busy-poll --quiet \
		--sink-port 25 --sink-check-digest --run-seconds $((SECS + WARM + 8)) \
		--json "$TMP/tool-sink.json" >"$TMP/tool-sink.out" 2>&1 &
	spid=$!; echo $spid >>"$TMP/pids"
	sleep 1.5
	l0=$(cut -d' ' -f1-3 /proc/loadavg)
	$NX "$BENCH" --port "net_memif0,role=client,socket=$sock,id=0" \
		--ip 198.18.9.3/24 --cpu 0 --busy-poll --quiet \
		--target 198.18.9.2:25 --sessions "$SESS" --warmup $WARM \
		--duration "$SECS" --size 2048 --json "$TMP/tool-gen.json" \
		>"$TMP/tool-gen.out" 2>&1 || true
	l1=$(cut -d' ' -f1-3 /proc/loadavg)
	kill -TERM $spid 2>/dev/null || true; wait $spid 2>/dev/null || true
	python3 - "$TMP/tool-gen.json" "$TMP/tool-sink.json" "$l0" "$l1" \
		>"$TMP/tool.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
m = g["generator"]["measured"]; t = g["generator"]["total"]
r = {"case": "tool_only", "msgs_per_s": m["msgs_per_s"],
     "generator_accepted_total": t["msgs_accepted"],
     "sink_msgs_total": s["sink"]["msgs"],
     "exactly_once": t["msgs_accepted"] == s["sink"]["msgs"] and
                     not s["sink"]["duplicates"] and not s["sink"]["digest_bad"],
     "generator_idle_time_share": g["poll"]["idle_time_share"],
     "sink_idle_time_share": s["poll"]["idle_time_share"],
     "generator_cpu_ns_per_msg": g["generator"]["cpu_ns_per_msg"],
     "loadavg_before": sys.argv[3], "loadavg_after": sys.argv[4]}
print(json.dumps(r))
sys.stderr.write("tool   %9.1f msg/s  (generator <-> sink, no mxgate)  "
                 "exactly_once=%s  load %s -> %s\n" % (
                     r["msgs_per_s"], r["exactly_once"], sys.argv[3],
                     sys.argv[4]))
PY
}

echo "gateway.sh: $SECS s per case after $WARM s warm-up, $SESS sessions" >&2
[ "$TOOL" = 1 ] && tool_only
case_args() {
	case $1 in
	conn1) echo --msgs-per-conn 1 --size 2048 ;;
	conn10) echo --msgs-per-conn 10 --size 2048 ;;
	rcpt10) echo --msgs-per-conn 1 --size 2048 --rcpts 10 ;;
	rcpt100) echo --msgs-per-conn 1 --size 2048 --rcpts 100 ;;
	big100k) echo --msgs-per-conn 1 --size 102400 ;;
	conn1_tls) echo --msgs-per-conn 1 --size 2048 --starttls \
		--tls-ca "$TMP/tls/ca.pem" --tls-name gw.bench.mxgt.test ;;
	conn1_1core_backoff|conn1_2core) echo --msgs-per-conn 1 --size 2048 ;;
	*) echo "gateway.sh: unknown case $1" >&2; return 1 ;;
	esac
}
# per-case mxgate layout (see the head of this file)
case_env() {
	case $1 in
	conn1_1core_backoff*) MX_CORES=1 MX_CPUS=1 BUSY=false
		BENCH_SRC="--client-ips 198.18.9.64/27" ;;
	conn1_2core*) MX_CORES=2 MX_CPUS=0,1 BUSY=false
		BENCH_SRC="--client-ips 198.18.9.64/27 --queues 2" ;;
	*) MX_CORES=1 MX_CPUS=1 BUSY=true BENCH_SRC= ;;
	esac
}
for c in $CASES; do
	args=$(case_args $c) || continue
	case_env $c
	if [ -n "$MXG_BASE" ]; then
		i=0
		while [ $i -lt "$REPEAT" ]; do
			RUN_MXG=$MXG_BASE
			# shellcheck disable=SC2086
			run_case ${c}_base $args
			RUN_MXG=$MXG
			# shellcheck disable=SC2086
			run_case $c $args
			i=$((i + 1))
		done
		continue
	fi
	# shellcheck disable=SC2086
	run_case $c $args
done

PERF_TOP=""
if [ "$PERF_OK" = true ] && [ -f "$TMP/perf.data" ]; then
	perf report -i "$TMP/perf.data" --stdio --no-children --sort symbol \
		2>/dev/null | grep -E '^ +[0-9]' | head -25 >"$TMP/perf.top" || true
	PERF_TOP=$TMP/perf.top
fi

python3 - "$OUT/$NAME.json" "$TMP/cases.jsonl" "$PERF_TOP" "$TMP/tool.json" <<PY
import json, sys, time, platform
cases = [json.loads(l) for l in open(sys.argv[2])]
try:
    tool = json.load(open(sys.argv[4]))
except Exception:
    tool = None
top = open(sys.argv[3]).read().splitlines() if sys.argv[3] else []
r = {"bench": "gateway",
     "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
     "host": platform.node(), "cpus": $(nproc),
     "setup": "mxgate 1 dataplane lcore (CPU 1, busy poll) <-memif-> "
              "mxgate-bench generator+sink (CPU 0, busy poll); backend "
              "pool = the sink over the same memif port; conn1_2core: "
              "mxgate 2 lcores (CPUs 0,1), mxgate-bench on CPU 0 with 32 "
              "source addresses and 2 queues, idle back-off everywhere; "
              "conn1_1core_backoff: its reference (1 lcore on CPU 1, "
              "same sources, back-off)",
     "sessions": $SESS, "seconds_per_case": $SECS, "warmup_s": $WARM,
     "goal_msgs_per_s_conn1": 50000,
     "machine_shared": "2 CPUs shared with other developers: re-run on a "
                       "quiet machine before quoting",
     "memif_args": "$MEMIF_ARGS",
     "cases": cases, "tool_only_baseline": tool,
     "mxgate": "$MXG", "mxgate_base": "$MXG_BASE" or None,
     "ratio_to_base": {n: round(
         sum(c["msgs_per_s"] for c in cases if c["case"] == n) /
         sum(c["msgs_per_s"] for c in cases if c["case"] == n + "_base"), 3)
         for n in {c["case"] for c in cases}
         if any(c["case"] == n + "_base" for c in cases)},
     "perf_top_mxgate_conn1": top,
     "valid": all(c["exactly_once"] for c in cases)}
json.dump(r, open(sys.argv[1], "w"), indent=1)
PY
{
	echo 'set terminal png size 720,420'
	echo "set output \"$OUT/$NAME.png\""
	echo "set title \"mxgate, 1 dataplane lcore, memif: messages/s ($(date -u +%F), shared machine)\""
	echo 'set style data histograms'
	echo 'set style fill solid 0.7'
	echo 'set boxwidth 0.6'
	echo 'set yrange [0:*]'
	echo 'set ylabel "messages/s"'
	echo 'plot "-" using 2:xtic(1) notitle'
	python3 -c '
import json,sys
for c in json.load(open(sys.argv[1]))["cases"]:
    print("%s %s" % (c["case"], c["msgs_per_s"]))' "$OUT/$NAME.json"
	echo e
} >"$TMP/plot.gp"
gnuplot "$TMP/plot.gp"
[ -n "$PERF_TOP" ] && { echo "perf top (mxgate, conn1):" >&2; cat "$PERF_TOP" >&2; }
echo "gateway.sh: wrote $OUT/$NAME.json and $OUT/$NAME.png" >&2
