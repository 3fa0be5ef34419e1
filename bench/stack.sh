#!/bin/sh
# bench/stack.sh - throughput of mxgate's userspace TCP stack, one dataplane
# lcore, on this machine (issue 2). Not a test: it prints what it measured,
# writes bench/results/stack.json and bench/results/stack.png.
#
#  (a) net_memif between two mxgate processes: the client runs the
#      stack-based load generator (--loadgen), the server echo/discard;
#      each dataplane lcore busy-polls on its own CPU. Run over IPv4 and
#      over IPv6 (fd00:6d78::/64, no DAD) alternately, REPEAT times each
#      (the machine is shared: one pass swings by several times); the
#      medians are reported, every sample is in the JSON.
#  (b) net_tap against the Linux kernel: bench/stack/tcpload (epoll,
#      kernel sockets) in the namespace drives mxgate's echo/discard.
#  (c) kernel baseline in the same run: tcpload against tcpload's own
#      kernel echo server over loopback in the namespace.
#  connections/s = open, one 64-byte request/response, close.
#  Gbit/s        = bulk sends into discard, counted by the receiver.
#  state/conn    = bytes of stack state per idle established connection.
#
# usage: bench/stack.sh [SECONDS per run, default 8] [REPEAT, default 3]
#        (root)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-8}
REPEAT=${2:-3}
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

memif_run() { # MODE(cps|bulk) [6] -> rate
	mode=$1
	fam=${2:-4}
	srv6=""; cli6=""; tag=""
	if [ "$fam" = 6 ]; then
		srv6="--ip6 fd00:6d78::2/64 --ip6-dad 0"
		cli6="--ip6 fd00:6d78::3/64 --ip6-dad 0 --loadgen-ip6 fd00:6d78::2"
		tag=" (IPv6)"
	fi
	sock=$TMP/memif.sock
	rm -f "$sock"
	# shellcheck disable=SC2086 # srv6/cli6 are word lists
	$NX "$MXG" --port "net_memif0,role=server,socket=$sock,id=0" \
		--ip 198.18.1.2/24 $srv6 --busy-poll --dp-cpus 1 \
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
	# shellcheck disable=SC2086
	$NX "$MXG" --port "net_memif0,role=client,socket=$sock,id=0" \
		--ip 198.18.1.3/24 $cli6 --busy-poll --dp-cpus 0 --no-gateway \
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
		echo "memif cps$tag: $r conn/s (client completed $done_c, failed $failed; server accepted $acc_s)" >&2
		echo "{\"client_completed\": $done_c, \"client_failed\": $failed, \"server_accepted\": $acc_s}" >"$TMP/memif_cps_check$fam.json"
	else
		r=$(rate "$TMP/srv.json" svc_discard_bytes)
		r=$(python3 -c "print($r * 8 / 1e9)")
		echo "memif bulk$tag: $r Gbit/s" >&2
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
# median of the numbers given
median() {
	python3 -c 'import statistics,sys; print(statistics.median(float(a) for a in sys.argv[1:]))' "$@"
}
S_CPS=""; S6_CPS=""; S_BULK=""; S6_BULK=""
k=0
while [ $k -lt "$REPEAT" ]; do
	S_CPS="$S_CPS $(memif_run cps)"
	S6_CPS="$S6_CPS $(memif_run cps 6)"
	S_BULK="$S_BULK $(memif_run bulk)"
	S6_BULK="$S6_BULK $(memif_run bulk 6)"
	k=$((k + 1))
done
# shellcheck disable=SC2086 # word lists of samples
M_CPS=$(median $S_CPS); M6_CPS=$(median $S6_CPS)
# shellcheck disable=SC2086
M_BULK=$(median $S_BULK); M6_BULK=$(median $S6_BULK)
list() { echo "$*" | sed 's/^ *//; s/ \+/, /g'; }
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
  "memif_ipv6": {"conn_per_s": $M6_CPS, "gbit_per_s": $M6_BULK},
  "memif_samples": {"repeat": $REPEAT,
    "ipv4_conn_per_s": [$(list $S_CPS)], "ipv6_conn_per_s": [$(list $S6_CPS)],
    "ipv4_gbit_per_s": [$(list $S_BULK)], "ipv6_gbit_per_s": [$(list $S6_BULK)]},
  "tap_vs_kernel_client": {"conn_per_s": $T_CPS, "gbit_per_s": $T_BULK},
  "kernel_loopback_baseline": {"conn_per_s": $K_CPS, "gbit_per_s": $K_BULK},
  "state_bytes_per_idle_conn": $STATE,
  "memif_cps_crosscheck": json.load(open("$TMP/memif_cps_check4.json")),
  "memif_ipv6_cps_crosscheck": json.load(open("$TMP/memif_cps_check6.json")),
  "targets": {"memif_conn_per_s": 150000, "memif_gbit_per_s": 5,
              "state_bytes_per_idle_conn": 2048},
}
r["ratio_memif_cps_vs_kernel_loopback"] = round($M_CPS / max($K_CPS, 1e-9), 2)
# IPv6 against IPv4 in the same run (issue 16 target: within 10 %):
# the ratio of the medians, and the median of the ratios of the pairs
# run back to back (less exposed to the load of a shared machine).
import statistics
s = r["memif_samples"]
def pairs(a, b):
  return round(statistics.median(y / max(x, 1e-9) for x, y in zip(a, b)), 3)
r["ratio_memif_ipv6_vs_ipv4"] = {
  "conn_per_s": round($M6_CPS / max($M_CPS, 1e-9), 3),
  "gbit_per_s": round($M6_BULK / max($M_BULK, 1e-9), 3),
  "conn_per_s_pairwise": pairs(s["ipv4_conn_per_s"], s["ipv6_conn_per_s"]),
  "gbit_per_s_pairwise": pairs(s["ipv4_gbit_per_s"], s["ipv6_gbit_per_s"])}
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
memif-v6 $M6_CPS
tap $T_CPS
kernel-lo $K_CPS
e
set title "Gbit/s"
plot "-" using 2:xtic(1) notitle
memif $M_BULK
memif-v6 $M6_BULK
tap $T_BULK
kernel-lo $K_BULK
e
unset multiplot
GP
gnuplot "$TMP/plot.gp" && echo "bench/stack.sh: wrote $OUT/stack.json and $OUT/stack.png" >&2
