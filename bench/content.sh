#!/bin/sh
# bench/content.sh - content scanning throughput on one core (issue 15).
# Builds bench/content/content_bench in a release build of its own
# (build-bench/ at the repository root, or $BUILD_DIR), runs it pinned to
# one CPU: the content/ scanner (Hyperscan streams, MIME parser) with 0,
# 100, 1,000 and 10,000 rules over raw bodies and base64 MIME parts fed in
# 1,460-octet chunks, against PCRE2 (JIT) applied rule by rule to each
# line (Postfix body_checks' way) on the same corpus and rules, in the
# same run. Throughput is octets per CPU-second of the benchmark thread
# (the machine is shared; wall-clock figures would measure the
# neighbours). Writes bench/results/content.json and content.png.
# usage: bench/content.sh [seconds-per-test] [max-rules]  (default 2 10000)
#        PLOT_ONLY=1 bench/content.sh   (redraw the plot from the JSON)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench}
secs=${1:-2}
maxr=${2:-10000}

mkdir -p "$here/results"
out="$here/results/content.json"
if [ "${PLOT_ONLY:-0}" != 1 ]; then
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/content/content_bench >/dev/null

cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[,-].*//' || echo 0)
if command -v taskset >/dev/null 2>&1; then
	taskset -c "$cpu" "$build/bench/content/content_bench" "$secs" "$maxr" > "$out.tmp"
else
	"$build/bench/content/content_bench" "$secs" "$maxr" > "$out.tmp"
fi
{
	head -n -1 "$out.tmp"
	printf '  ,"cpu_model": "%s"\n' "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
	printf '  ,"date": "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "}"
} > "$out"
rm -f "$out.tmp"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$out" "$TMP" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
with open(sys.argv[2] + "/data", "w") as f:
    for r in d["results"]:
        if r["rules"] == 0:
            continue
        if r["input"] == "raw":
            f.write("%d %f %f\n" % (r["rules"], r["hyperscan_mb_per_s"],
                                    r["pcre2_per_line_mb_per_s"]))
    f.write("\n\n")
    for r in d["results"]:
        if r["rules"] and r["input"] != "raw":
            f.write("%d %f\n" % (r["rules"], r["hyperscan_mb_per_s"]))
for r in d["results"]:
    print("%-6d %-12s mxgate/Hyperscan %10.1f MB/s   PCRE2 per line %8.3f MB/s   compile %.2f s"
          % (r["rules"], r["input"], r["hyperscan_mb_per_s"],
             r["pcre2_per_line_mb_per_s"], r["compile_s"]))
PY
if command -v gnuplot >/dev/null 2>&1; then
	cat > "$TMP/plot.gp" <<GP
set terminal pngcairo size 900,500 noenhanced
set output "$here/results/content.png"
set title "Content scanning, one core (MB per CPU-second; log scales)"
set xlabel "rules"
set ylabel "MB/s"
set logscale xy
set key bottom left
plot "$TMP/data" index 0 using 1:2 with linespoints title "mxgate content/ (Hyperscan), raw body", \
     "$TMP/data" index 1 using 1:2 with linespoints title "mxgate content/, base64 MIME part decoded", \
     "$TMP/data" index 0 using 1:3 with linespoints title "PCRE2 JIT per line and rule (body_checks way), raw"
GP
	gnuplot "$TMP/plot.gp" && echo "results: $out, $here/results/content.png"
else
	echo "results: $out (no gnuplot: no plot)"
fi
