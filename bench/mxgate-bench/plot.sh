#!/bin/sh
# bench/mxgate-bench/plot.sh - plot one mxgate-bench JSON document with
# gnuplot: latency per step (p50, p99, p99.9, max; microseconds, log
# scale) of the measured window, and the replies per step by class.
#
# usage: bench/mxgate-bench/plot.sh RESULT.json OUT.png [TITLE]
set -eu
[ $# -ge 2 ] || { echo "usage: $0 RESULT.json OUT.png [TITLE]" >&2; exit 2; }
IN=$1
OUT=$2
TITLE=${3:-$(basename "$IN")}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$IN" "$TMP" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["generator"]["measured"]
with open(sys.argv[2] + "/lat.dat", "w") as f:
    for step, h in m["latency"].items():
        if h["count"]:
            f.write("%s %d %d %d %d\n" % (step, max(h["p50_us"], 1),
                    max(h["p99_us"], 1), max(h["p999_us"], 1),
                    max(h["max_us"], 1)))
with open(sys.argv[2] + "/rep.dat", "w") as f:
    for step, r in m["replies"].items():
        if r:
            f.write("%s %d %d %d %d\n" % (step, r.get("2xx", 0),
                    r.get("3xx", 0), r.get("4xx", 0), r.get("5xx", 0)))
with open(sys.argv[2] + "/sub", "w") as f:
    f.write("%.0f msg/s, %.0f conn/s, %.1f MB/s, %d accepted" % (
        m["msgs_per_s"], m["conns_per_s"], m["bytes_per_s"] / 1e6,
        m["msgs_accepted"]))
PY
cat >"$TMP/plot.gp" <<GP
set terminal png size 1000,420
set output "$OUT"
set multiplot layout 1,2 title "$TITLE: $(cat "$TMP/sub")"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7
set key outside bottom center horizontal
set title "latency per step, us"
set logscale y
plot "$TMP/lat.dat" using 2:xtic(1) title "p50", "" using 3 title "p99", \
     "" using 4 title "p99.9", "" using 5 title "max"
unset logscale y
set yrange [0:*]
set title "replies per step"
set style histogram rowstacked
plot "$TMP/rep.dat" using 2:xtic(1) title "2xx", "" using 3 title "3xx", \
     "" using 4 title "4xx", "" using 5 title "5xx"
unset multiplot
GP
gnuplot "$TMP/plot.gp"
echo "plot.sh: wrote $OUT" >&2
