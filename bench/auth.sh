#!/bin/sh
# bench/auth.sh [seconds per case] [threads]: password verifications per
# second per worker thread for the users file's hashes (yescrypt at
# libcrypt's default cost; SHA-512 crypt at 5000 rounds as the baseline,
# same run), and the SASL machine's own cost per PLAIN exchange. Writes
# bench/results/auth.json. A benchmark, not a test: it asserts nothing
# beyond "the right password verified".
#
# bench/auth.sh flood [SECONDS]: the effect of an AUTH flood on other
# sessions (root: a network namespace): bench/auth_flood.py runs mxgate
# idle, flooded from one address (lockout on) and from 16 addresses
# (thresholds off: every attempt a yescrypt check), measuring another
# session's NOOP round trip and a legitimate login + send meanwhile.
# Writes bench/results/auth-flood.json.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD:-$root/build}
# plot_flood JSON PNG: per phase, another session's NOOP round trip (p50,
# p99) and a legitimate login + send (p50), log scale.
plot_flood() {
	command -v gnuplot >/dev/null 2>&1 || {
		echo "auth.sh: no gnuplot: no plot"
		return 0
	}
	dat=$(mktemp)
	python3 - "$1" > "$dat" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["phases"]:
    print('"%s" %s %s %s' % (p["phase"], p["noop_rtt"]["p50_ms"],
                             p["noop_rtt"]["p99_ms"],
                             p["login_and_send"]["p50_ms"]))
PY
	gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output "$2"
set title "AUTH flood: other sessions' latency (ms, log scale)"
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8
set logscale y
set ylabel "ms"
set key top left
plot "$dat" using 2:xtic(1) title "NOOP p50", "" using 3 title "NOOP p99", \
     "" using 4 title "login + send p50"
GP
	rm -f "$dat"
	echo "auth.sh: wrote $2"
}

if [ "${1:-}" = plot-flood ]; then
	plot_flood "$root/bench/results/auth-flood.json" \
		"$root/bench/results/auth-flood.png"
	exit 0
fi
if [ "${1:-}" = flood ]; then
	ninja -C "$build" >/dev/null
	mkdir -p "$root/bench/results"
	python3 "$here/auth_flood.py" "$build/dataplane/mxgate" \
		"$build/auth/mxgate-mkpasswd" "$root/bench/results/auth-flood.json" \
		"${2:-10}"
	cat "$root/bench/results/auth-flood.json"
	plot_flood "$root/bench/results/auth-flood.json" \
		"$root/bench/results/auth-flood.png"
	exit 0
fi
secs=${1:-5}
threads=${2:-1}
ninja -C "$build" bench/auth/auth_bench >/dev/null
mkdir -p "$root/bench/results"
out="$root/bench/results/auth.json"
"$build/bench/auth/auth_bench" "$secs" "$threads" > "$out.tmp"
{
	printf '{ "date": "%s", "commit": "%s", "cpus": %s, "result":\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		"$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(nproc)"
	cat "$out.tmp"
	echo '}'
} > "$out"
rm -f "$out.tmp"
cat "$out"
