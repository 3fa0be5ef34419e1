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
#        bench/content.sh gateway [MSGS_2K [MSGS_20K [SESSIONS [RULES]]]]
#          (root; default 3000 600 20 1000) the whole gateway against
#          Postfix with the same RULES body rules, through
#          bench/compare-postfix.sh (RULES=N mode, read its header): for
#          2 KiB and 20 KiB bodies, in this order, mxgate without rules,
#          mxgate with RULES rules, Postfix without, Postfix with
#          body_checks = pcre:, the same message count for the four; the
#          short mxgate pair runs REPS times interleaved (default 3; the
#          figures are the medians, every run is in the JSON); writes
#          bench/results/content-gateway.json and content-gateway.png.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [ "${1:-}" = gateway ]; then
	shift
	m2=${1:-3000}; m20=${2:-600}; sess=${3:-20}; nr=${4:-1000}
	reps=${REPS:-3}
	[ -f "$root/build/build.ninja" ] || meson setup "$root/build" "$root" -Dwerror=true >/dev/null
	ninja -C "$root/build" dataplane/mxgate >/dev/null
	G=$(mktemp -d)
	trap 'rm -rf "$G"' EXIT
	for run in "2048 $m2" "20480 $m20"; do
		set -- $run
		for ph in mxgate postfix; do
			n=1; [ $ph = mxgate ] && n=$reps
			for k in $(seq "$n"); do
			for r in 0 "$nr"; do
				echo "content.sh gateway: $ph, $2 msgs of $1 B, $r rules ($k/$n)" >&2
				MXGATE=$root/build/dataplane/mxgate RULES=$r SIZE=$1 PHASES=$ph \
					"$here/compare-postfix.sh" "$2" "$sess" >"$G/log" 2>&1 ||
					{ tail -20 "$G/log" >&2; echo "content.sh gateway: $ph $1 B $r rules failed (kept in the JSON as invalid)" >&2; }
				grep -E '^(mxgate|postfix): ' "$G/log" | grep -v 'configuration ok' >&2 || true
				mv "$here/results/content-gateway-$1-$r.json" "$G/$ph-$1-$r-$k.json" 2>/dev/null || true
			done
			done
		done
	done
	python3 - "$G" "$here/results/content-gateway.json" "$G/data" "$nr" <<'PY'
import json, os, sys, time
g, out, dat, nr = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runs, rows, valid, summary = [], [], True, []
for size in (2048, 20480):
    fig = {}
    for ph in ("mxgate", "postfix"):
        for r in (0, nr):
          reps = []
          for k in range(1, 100):
            f = "%s/%s-%d-%d-%d.json" % (g, ph, size, r, k)
            if not os.path.exists(f):
                if k == 1:
                    valid = False
                break
            d = json.load(open(f))
            x = d[ph]
            want = 550 if r else 250
            probe = d["content"][ph + "_probe_reply"]
            ok = x["ok"] and x["counts_match"] and probe == want
            valid = valid and ok
            reps.append(x)
            runs.append({"front": ph, "body_octets": size, "rules": r,
                         "repetition": k,
                         "messages": d["load"]["messages"],
                         "sessions": d["load"]["sessions"],
                         "msg_per_s": x["msg_per_s"],
                         "seconds": x["seconds"],
                         "sink_received": x["sink_received"],
                         "probe_reply": probe, "ok": ok,
                         "cpu_ns_per_msg_process":
                             x["cpu_ns_per_msg_process"],
                         "user_cpu_ns_per_msg_process":
                             x["user_cpu_ns_per_msg_process"],
                         "cpu_ns_per_msg_cpu1": x["cpu_ns_per_msg_cpu1"],
                         "lcore_working_cpu_ns_per_msg":
                             x.get("lcore_working_cpu_ns_per_msg"),
                         "postfix_accept_msg_per_s":
                             d["content"]["postfix_accept_msg_per_s"]
                             if ph == "postfix" else None,
                         "loadavg": x["loadavg"], "date": d["date"]})
          if reps:
            # medians over the repetitions, each figure on its own
            med = {}
            for key in ("msg_per_s", "cpu_ns_per_msg_process",
                        "user_cpu_ns_per_msg_process"):
                v = sorted(y[key] for y in reps if y[key] is not None)
                med[key] = v[len(v) // 2] if v else None
            med["repetitions"] = len(reps)
            fig[ph, r] = med
            summary.append(dict(front=ph, body_octets=size, rules=r, **med))
    def q(a, b, k="msg_per_s"):
        try:
            return round(a[k] / b[k], 2)
        except (KeyError, TypeError, ZeroDivisionError):
            return None
    m0, m1 = fig.get(("mxgate", 0)), fig.get(("mxgate", nr))
    p0, p1 = fig.get(("postfix", 0)), fig.get(("postfix", nr))
    k = "cpu_ns_per_msg_process"
    rows.append({"body_octets": size,
                 "mxgate_rules_vs_postfix_rules_msg_per_s": q(m1, p1) if m1 and p1 else None,
                 "mxgate_rules_vs_mxgate_none_msg_per_s": q(m1, m0) if m1 and m0 else None,
                 "postfix_rules_vs_postfix_none_msg_per_s": q(p1, p0) if p1 and p0 else None,
                 "cpu_postfix_rules_vs_mxgate_rules": q(p1, m1, k) if m1 and p1 else None,
                 "cpu_mxgate_rules_vs_mxgate_none": q(m1, m0, k) if m1 and m0 else None})
    with open(dat, "a") as f:
        for key in (("mxgate", 0), ("mxgate", nr), ("postfix", 0), ("postfix", nr)):
            x = fig.get(key)
            f.write('"%s %s" %s %s\n' % (key[0], "%d rules" % key[1] if key[1] else "no rules",
                                          x["msg_per_s"] if x and x["msg_per_s"] else 0,
                                          (x[k] / 1000) if x and x[k] else 0))
        f.write("\n\n")
r = {"bench": "content-gateway", "issue": 15,
     "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
     "rules": nr, "cpus": os.cpu_count(),
     "how": "bench/compare-postfix.sh with RULES=0 and RULES=%d, one after "
            "the other in one bench/content.sh gateway run" % nr,
     "targets": {"mxgate_rules_vs_postfix_rules": 10.0,
                 "mxgate_rules_vs_mxgate_none": 0.9},
     "machine_shared": "2 CPUs shared with a full CI run and other "
                       "developers (load averages per run): re-run on a "
                       "quiet machine before quoting",
     "valid": valid, "ratios": rows, "medians": summary, "runs": runs}
json.dump(r, open(out, "w"), indent=1)
for x in runs:
    print("%-7s %6d B %5d rules: %8.1f msg/s  CPU %9.1f us/msg (process)  "
          "sink %s  probe %s  load %s" % (
              x["front"], x["body_octets"], x["rules"], x["msg_per_s"] or 0,
              (x["cpu_ns_per_msg_process"] or 0) / 1000, x["sink_received"],
              x["probe_reply"], x["loadavg"]))
for x in summary:
    print("median of %d: %-7s %6d B %5d rules: %8.1f msg/s  CPU %9.1f us/msg"
          " (process), user %9.1f" % (x["repetitions"], x["front"],
          x["body_octets"], x["rules"], x["msg_per_s"] or 0,
          (x["cpu_ns_per_msg_process"] or 0) / 1000,
          (x["user_cpu_ns_per_msg_process"] or 0) / 1000))
for x in rows:
    print(x)
print("valid" if valid else "INVALID: a run failed, a count or a probe reply differs")
PY
	if command -v gnuplot >/dev/null 2>&1; then
		cat > "$G/plot.gp" <<GP
set terminal pngcairo size 1100,500 noenhanced
set output "$here/results/content-gateway.png"
set multiplot layout 1,2 title "Gateway with $nr body rules vs Postfix body_checks (pcre), $(date -u +%F), shared machine"
set style data histograms
set style fill solid 0.7
set logscale y
set ylabel "messages/s (log)"
set xtics rotate by -30
set title "messages/s"
plot "$G/data" index 0 using 2:xtic(1) title "2 KiB body", "$G/data" index 1 using 2 title "20 KiB body"
set ylabel "front CPU us/msg (log)"
set title "front CPU per message (process user+system)"
plot "$G/data" index 0 using 3:xtic(1) title "2 KiB body", "$G/data" index 1 using 3 title "20 KiB body"
unset multiplot
GP
		gnuplot "$G/plot.gp" && echo "results: $here/results/content-gateway.json, content-gateway.png"
	fi
	exit 0
fi
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
