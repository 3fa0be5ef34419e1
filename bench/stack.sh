#!/bin/sh
# bench/stack.sh - throughput of mxgate's userspace TCP stack, one dataplane
# lcore, on this machine (issue 2). Not a test: it prints what it measured,
# writes bench/results/stack.json and bench/results/stack.png.
#
#  (a) net_memif between two mxgate processes: the client runs the
#      stack-based load generator (--loadgen), the server echo/discard;
#      each dataplane lcore busy-polls on its own CPU.
#  (b) net_tap against the Linux kernel: bench/stack/tcpload (epoll,
#      kernel sockets) in the namespace drives mxgate's echo/discard.
#  (c) kernel baseline in the same run: tcpload against tcpload's own
#      kernel echo server over loopback in the namespace.
#  connections/s = open, one 64-byte request/response, close.
#  Gbit/s        = bulk sends into discard, counted by the receiver.
#  state/conn    = bytes of stack state per idle established connection.
#
# usage: bench/stack.sh [SECONDS per run, default 8]   (root)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-8}
./scripts/install-deps.sh >/dev/null
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
ninja -C build >/dev/null
MXG=$ROOT/build/dataplane/mxgate
TCPLOAD=$ROOT/build/bench/stack/tcpload
OUT=$ROOT/bench/results
mkdir -p "$OUT"
NS=mxgbench-$$
TMP=$(mktemp -d)

cleanup() {
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 1
	for p in $(cat "$TMP"/pids 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
	ip netns del $NS 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add $NS
ip -n $NS link set lo up
NX="ip netns exec $NS"

# stat FILE KEY: a total counter from an mxgate stats file
stat() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"][sys.argv[2]])' "$1" "$2"
}
# rate FILE KEY: counter increase per second over SECS after 2 s warm-up
rate() {
	sleep 2
	a=$(stat "$1" "$2"); t0=$(date +%s.%N)
	sleep "$SECS"
	b=$(stat "$1" "$2"); t1=$(date +%s.%N)
	python3 -c "print(($b - $a) / ($t1 - $t0))"
}

memif_run() { # MODE(cps|bulk) -> rate
	mode=$1
	sock=$TMP/memif.sock
	rm -f "$sock"
	$NX "$MXG" --port "net_memif0,role=server,socket=$sock,id=0" \
		--ip 198.18.1.2/24 --busy-poll --dp-cpus 1 \
		--no-gateway --echo-port 7 --discard-port 9 \
		--stats-file "$TMP/srv.json" --stats-interval-ms 100 \
		>"$TMP/srv.log" 2>&1 &
	echo $! >>"$TMP/pids"; spid=$!
	sleep 1.5
	if [ "$mode" = cps ]; then
		lg="cps,198.18.1.2:7,conc=256,bytes=64"
	else
		lg="bulk,198.18.1.2:9,conc=8"
	fi
	$NX "$MXG" --port "net_memif0,role=client,socket=$sock,id=0" \
		--ip 198.18.1.3/24 --busy-poll --dp-cpus 0 --no-gateway \
		--echo-port 0 --discard-port 0 --timewait-ms 50 \
		--max-timewait 65536 --loadgen "$lg" \
		--stats-file "$TMP/cli.json" --stats-interval-ms 100 \
		>"$TMP/cli.log" 2>&1 &
	echo $! >>"$TMP/pids"; cpid=$!
	sleep 1
	if [ "$mode" = cps ]; then
		r=$(rate "$TMP/cli.json" svc_lg_completed)
		failed=$(stat "$TMP/cli.json" svc_lg_failed)
		done_c=$(stat "$TMP/cli.json" svc_lg_completed)
		acc_s=$(stat "$TMP/srv.json" tcp_accepted)
		echo "memif cps: $r conn/s (client completed $done_c, failed $failed; server accepted $acc_s)" >&2
		echo "{\"client_completed\": $done_c, \"client_failed\": $failed, \"server_accepted\": $acc_s}" >"$TMP/memif_cps_check.json"
	else
		r=$(rate "$TMP/srv.json" svc_discard_bytes)
		r=$(python3 -c "print($r * 8 / 1e9)")
		echo "memif bulk: $r Gbit/s" >&2
	fi
	kill -TERM $cpid $spid 2>/dev/null || true
	wait $cpid $spid 2>/dev/null || true
	echo "$r"
}

tap_run() { # MODE -> rate
	mode=$1
	$NX "$MXG" --port net_tap0,iface=mxgb0 --ip 198.18.0.2/24 \
		--busy-poll --dp-cpus 1 --timewait-ms 1000 \
		--no-gateway --echo-port 7 --discard-port 9 \
		--stats-file "$TMP/tap.json" --stats-interval-ms 100 \
		>"$TMP/tap.log" 2>&1 &
	echo $! >>"$TMP/pids"; tpid=$!
	i=0
	until $NX ip link show mxgb0 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 200 ] && { cat "$TMP/tap.log" >&2; exit 1; }
		sleep 0.05
	done
	$NX ip addr add 198.18.0.1/24 dev mxgb0
	$NX ip link set mxgb0 up
	sleep 1
	if [ "$mode" = cps ]; then
		r=$($NX taskset -c 0 "$TCPLOAD" cps 198.18.0.2 7 "$SECS" 64 64 |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["conn_per_s"])')
		echo "tap cps: $r conn/s" >&2
	else
		$NX taskset -c 0 "$TCPLOAD" bulk 198.18.0.2 9 "$((SECS + 3))" 4 >/dev/null &
		lpid=$!
		r=$(rate "$TMP/tap.json" svc_discard_bytes)
		r=$(python3 -c "print($r * 8 / 1e9)")
		wait $lpid || true
		echo "tap bulk: $r Gbit/s" >&2
	fi
	kill -TERM $tpid; wait $tpid 2>/dev/null || true
	echo "$r"
}

kernel_run() { # MODE -> rate (kernel TCP over loopback, same machine)
	mode=$1
	$NX taskset -c 1 "$TCPLOAD" serve 127.0.0.1 7 "$((SECS + 2))" &
	spid=$!
	sleep 0.5
	if [ "$mode" = cps ]; then
		r=$($NX taskset -c 0 "$TCPLOAD" cps 127.0.0.1 7 "$SECS" 64 64 |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["conn_per_s"])')
	else
		r=$($NX taskset -c 0 "$TCPLOAD" bulk 127.0.0.1 7 "$SECS" 4 |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["gbit_per_s"])')
	fi
	wait $spid || true
	echo "kernel $mode: $r" >&2
	echo "$r"
}

echo "bench/stack.sh: $SECS s per run, one dataplane lcore" >&2
M_CPS=$(memif_run cps)
M_BULK=$(memif_run bulk)
T_CPS=$(tap_run cps)
T_BULK=$(tap_run bulk)
K_CPS=$(kernel_run cps)
K_BULK=$(kernel_run bulk)
STATE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conn_state_bytes"])' "$TMP/tap.json")

python3 - "$OUT/stack.json" <<PY
import json, sys, time, platform
r = {
  "bench": "stack", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  "host": platform.node(), "cpus": $(nproc), "seconds_per_run": $SECS,
  "dataplane_lcores": 1,
  "memif": {"conn_per_s": $M_CPS, "gbit_per_s": $M_BULK},
  "tap_vs_kernel_client": {"conn_per_s": $T_CPS, "gbit_per_s": $T_BULK},
  "kernel_loopback_baseline": {"conn_per_s": $K_CPS, "gbit_per_s": $K_BULK},
  "state_bytes_per_idle_conn": $STATE,
  "memif_cps_crosscheck": json.load(open("$TMP/memif_cps_check.json")),
  "targets": {"memif_conn_per_s": 150000, "memif_gbit_per_s": 5,
              "state_bytes_per_idle_conn": 2048},
}
r["ratio_memif_cps_vs_kernel_loopback"] = round($M_CPS / max($K_CPS, 1e-9), 2)
json.dump(r, open(sys.argv[1], "w"), indent=1)
print(json.dumps(r, indent=1))
PY

cat >"$TMP/plot.gp" <<GP
set terminal png size 900,420
set output "$OUT/stack.png"
set multiplot layout 1,2 title "mxgate stack, 1 dataplane lcore ($(date -u +%F))"
set style data histograms
set style fill solid 0.7
set boxwidth 0.8
set yrange [0:*]
set title "connections/s"
plot "-" using 2:xtic(1) notitle
memif $M_CPS
tap $T_CPS
kernel-lo $K_CPS
e
set title "Gbit/s"
plot "-" using 2:xtic(1) notitle
memif $M_BULK
tap $T_BULK
kernel-lo $K_BULK
e
unset multiplot
GP
gnuplot "$TMP/plot.gp" && echo "bench/stack.sh: wrote $OUT/stack.json and $OUT/stack.png" >&2
