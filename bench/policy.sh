#!/bin/sh
# bench/policy.sh - single-core cost of the policy path (DESIGN 6): ns per
# connection (block list, 1,000,000-prefix global deny table, listener
# ACL, per-IP connection count, per-IP rate limit) and per recipient
# (address parse, relay decision against 100,000 accepted domains,
# restriction list, sender-domain rate limit), plus the memory of those
# tables and the time to build the 1M-prefix table. Not a test: it prints
# what it measured, writes bench/results/policy.json and policy.png.
#
# Builds bench/policy/policybench in ./build (or $BUILD_DIR; set up with
# meson if missing), runs it pinned to one CPU of this shell's affinity
# (EAL without hugepages), bounded to 160 s (repetitions are dropped
# after 75 s on a busy machine).
# usage: bench/policy.sh [OPS per measurement, default 1000000]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
ops=${1:-1000000}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" bench/policy/policybench >/dev/null
BIN=$build/bench/policy/policybench
OUT=$here/results
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[,-].*//' || echo 0)
echo "bench/policy.sh: $ops operations per measurement, CPU $cpu" >&2
timeout 160 taskset -c "$cpu" "$BIN" --ops "$ops" >"$TMP/raw.json" 2>"$TMP/err" || {
	tr '\r' '\n' <"$TMP/err" >&2
	echo "bench/policy.sh: policybench failed or timed out" >&2
	exit 1
}
tr '\r' '\n' <"$TMP/err" | grep -v '^  \.\.\.' >&2

buildtype=$(meson introspect --buildoptions "$build" 2>/dev/null |
	python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"][0])' 2>/dev/null ||
	echo unknown)

python3 - "$TMP/raw.json" "$OUT/policy.json" "$TMP/plot.dat" "$buildtype" <<'PY'
import json, sys, time, platform, os
r = json.load(open(sys.argv[1]))
r.pop("sink", None)
r["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
r["host"] = platform.node()
r["cpus"] = os.cpu_count()
r["buildtype"] = sys.argv[4]
r["hugepages"] = False
try:
    r["cpu_model"] = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                      if l.startswith("model name")][0]
except (OSError, IndexError):
    r["cpu_model"] = "unknown"
json.dump(r, open(sys.argv[2], "w"), indent=1)

c, p, m = r["connection_path"]["ns"], r["recipient_path"]["ns"], r["memory_bytes"]
with open(sys.argv[3], "w") as f:
    for k in ("full_hot", "full_flood", "block_lookup", "global_acl_lookup",
              "listener_acl_lookup", "conns_inc_dec", "rl_take_hot",
              "rl_take_flood"):
        f.write('"%s" %.1f %.1f\n' % (k.replace("_", "-"), c[k]["ns_mean_p99"], c[k]["ns_p50"]))
    f.write("\n\n")
    for k in ("full", "addr_parse", "rcpt_decide", "addrlist_match",
              "rl_take_sender_domain"):
        f.write('"%s" %.1f %.1f\n' % (k.replace("_", "-"), p[k]["ns_mean_p99"], p[k]["ns_p50"]))
    f.write("\n\n")
    for k in ("acl_global", "acl_listener", "domains_accepted", "rl_conn",
              "rl_rcpt", "conns", "block"):
        f.write('"%s" %.2f\n' % (k.replace("_", "-"), m[k] / 1048576.0))

b = r["build"]
hdr = "ns: mean / mean without slowest 1% of batches / p50 / p99"
print("per connection (1M-prefix deny table, 65,536 buckets); " + hdr)
for k in ("full_hot", "full_flood", "block_lookup", "global_acl_lookup",
          "listener_acl_lookup", "conns_inc_dec", "rl_take_hot", "rl_take_flood"):
    print("  %-24s %8.1f %8.1f %8.1f %8.1f" % (k, c[k]["ns_mean"], c[k]["ns_mean_p99"], c[k]["ns_p50"], c[k]["ns_p99"]))
print("per recipient (100,000 accepted domains); " + hdr)
for k in ("full", "addr_parse", "rcpt_decide", "addrlist_match", "rl_take_sender_domain"):
    print("  %-24s %8.1f %8.1f %8.1f %8.1f" % (k, p[k]["ns_mean"], p[k]["ns_mean_p99"], p[k]["ns_p50"], p[k]["ns_p99"]))
print("memory, MiB:")
for k, v in m.items():
    print("  %-24s %10.2f" % (k, v / 1048576.0))
print("build: %d prefixes at once (pol_acl_build4) in %.2f s; %d added one"
      " by one (pol_acl_add4) in %.2f s; %d domains in %.3f s"
      % (b["acl_cidrs"], b["acl_build4_seconds"], b["acl_add4_prefixes"],
         b["acl_add4_seconds"], b["domains"], b["domains_seconds"]))
PY

cat >"$TMP/plot.gp" <<GP
set terminal png size 1200,440
set output "$OUT/policy.png"
set multiplot layout 1,3 title "mxgate policy path, 1 core ($(date -u +%F), $buildtype, no hugepages)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -40 font ",8"
set key top right font ",8"
set title "per connection, ns"
plot "$TMP/plot.dat" index 0 using 2:xtic(1) title "mean w/o slowest 1%", "" index 0 using 3 title "p50"
set title "per recipient, ns"
plot "$TMP/plot.dat" index 1 using 2:xtic(1) title "mean w/o slowest 1%", "" index 1 using 3 title "p50"
set title "table memory, MiB"
set logscale y
set yrange [0.1:*]
plot "$TMP/plot.dat" index 2 using 2:xtic(1) notitle
unset multiplot
GP
gnuplot "$TMP/plot.gp" && echo "bench/policy.sh: wrote $OUT/policy.json and $OUT/policy.png" >&2
