#!/bin/sh
# bench/control.sh - control-plane benchmark (issue 5): with 1,000,000 CIDR
# entries in the configuration, the time of a full reload (parse, compile,
# publish, every core adopted) and the latency of runtime pushes (block /
# unblock of a /32) until every dataplane core applied them, p50/p99, as
# measured by the cores (send to applied) and by the admin client (round
# trip). Reference in the same run: Postfix loading the same 1,000,000
# entries as a cidr: table (postmap -q), the work a Postfix reload does
# for such a table.
# Runs mxgate in its own network namespace on a net_tap port; nothing
# leaves it. Writes bench/results/control.json and control.png.
# usage: bench/control.sh [pushes] [cores]     (default 1000, 2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
pushes=${1:-1000}
cores=${2:-2}
entries=${ENTRIES:-1000000}
ns=mxgbench-ctl
tmp=$(mktemp -d /tmp/mxg-ctlbench.XXXXXX)
chmod 755 "$tmp"

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" dataplane/mxgate control/mxgatectl >/dev/null

cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del $ns 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

python3 - "$tmp" "$entries" <<'EOF'
import random, sys
tmp, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
seen = set()
cidrs = []
while len(cidrs) < n:
    depth = rnd.choice((16, 20, 22, 24, 24, 24, 28, 32, 32, 32))
    # 10.0.0.0/8 and 100.64.0.0/10: never the bench's own addresses
    base = rnd.choice((0x0a000000, 0x64400000))
    span = 24 if base == 0x0a000000 else 22
    ip = base | rnd.getrandbits(span)
    ip &= (0xffffffff << (32 - depth)) & 0xffffffff
    if (ip, depth) in seen:
        continue
    seen.add((ip, depth))
    cidrs.append("%d.%d.%d.%d/%d" % (ip >> 24, (ip >> 16) & 255,
                                     (ip >> 8) & 255, ip & 255, depth))
with open(tmp + "/deny.cidr", "w") as f:
    for c in cidrs:
        f.write("%s REJECT\n" % c)
# two files that differ in one entry: a reload between them rebuilds the
# whole deny table (an unchanged list would be shared, not rebuilt)
for name, last in (("a", "100.127.255.255/32"), ("b", "100.127.255.254/32")):
    with open(tmp + "/mxgate-%s.conf" % name, "w") as f:
        f.write('stack = { port = "net_tap0,iface=mxgb0"; '
                'address = "198.18.0.2/24"; };\n')
        f.write('listeners = ( { name = "mx"; port = 25; role = "mx"; } );\n')
        f.write('pools = ( { name = "default"; type = "maildir"; } );\n')
        f.write('maildir = { path = "%s/Maildir"; };\n' % tmp)
        f.write('policy = { accepted_domains = ( "example.com" );\n'
                '  deny = [\n')
        f.write(",\n".join('"%s"' % c for c in cidrs[:-1] + [last]))
        f.write('\n  ];\n};\n')
EOF

ip netns del $ns 2>/dev/null || true
ip netns add $ns
cp "$tmp/mxgate-a.conf" "$tmp/mxgate.conf"
sock=$tmp/admin.sock
t0=$(date +%s.%N)
ip netns exec $ns "$build/dataplane/mxgate" --config "$tmp/mxgate.conf" \
	--cores "$cores" --admin-socket "$sock" --log-file "$tmp/log" \
	--stats-file "$tmp/stats.json" >"$tmp/out" 2>&1 &
pid=$!
i=0
until "$build/control/mxgatectl" -s "$sock" status >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 1200 ] || ! kill -0 $pid 2>/dev/null; then
		cat "$tmp/out" >&2
		echo "bench/control.sh: mxgate did not come up" >&2
		exit 1
	fi
	sleep 0.1
done
t1=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)

python3 - "$sock" "$pushes" "$tmp" "$t0" "$t1" "$rss" "$cores" "$entries" \
	"$here/results" <<'EOF'
import json, os, shutil, socket, subprocess, sys, time, random
sock, pushes, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0, t1, rss, cores, entries = float(sys.argv[4]), float(sys.argv[5]), \
    int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
outdir = sys.argv[9]

s = socket.socket(socket.AF_UNIX)
s.connect(sock)
f = s.makefile("rwb")

def call(obj):
    f.write((json.dumps(obj) + "\n").encode())
    f.flush()
    return json.loads(f.readline())

def pending():
    return call({"cmd": "stats"}).get("policy", {}).get("snapshots_pending")

def wait_freed(limit=120):
    a = time.monotonic()
    while pending() != 0 and time.monotonic() - a < limit:
        time.sleep(0.05)
    return time.monotonic() - a

# full reloads of the 1M-entry file: each measured alone (the previous
# snapshot already freed), then the time until the replaced one is freed
reloads = []
for i in range(3):
    shutil.copy(tmp + "/mxgate-%s.conf" % "ba"[i % 2], tmp + "/mxgate.conf")
    wait_freed()
    a = time.monotonic()
    r = call({"cmd": "reload"})
    wall = time.monotonic() - a
    if not r.get("ok"):
        sys.exit("reload failed: %s" % r)
    freed = wait_freed()
    reloads.append({"wall_s": round(wall, 3),
                    "compile_us": r["compile_us"],
                    "adopt_us": r["adopt_us"],
                    "cores_adopted": r["cores_adopted"],
                    "old_freed_after_s": round(freed, 2)})

core_us, rtt_us = [], []
rnd = random.Random(7)
for i in range(pushes):
    ip = "198.19.%d.%d/32" % (rnd.randrange(256), rnd.randrange(256))
    a = time.monotonic()
    r = call({"cmd": "block" if i % 2 == 0 else "unblock", "cidr": ip}
             if i % 2 == 0 else {"cmd": "unblock", "cidr": last})
    rtt_us.append((time.monotonic() - a) * 1e6)
    if not r.get("ok") or r.get("cores_applied") != cores:
        sys.exit("push failed: %s" % r)
    core_us.append(r["latency_us"])
    last = ip

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]

# Postfix reference: load the same table as cidr: (what a reload does)
pf = None
try:
    a = time.monotonic()
    subprocess.run(["postmap", "-q", "192.0.2.1", "cidr:" + tmp +
                    "/deny.cidr"], capture_output=True, timeout=600)
    pf = round(time.monotonic() - a, 3)
except (OSError, subprocess.TimeoutExpired):
    pass

stats = json.load(open(tmp + "/stats.json"))
res = {
    "benchmark": "control",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "cpu_model": [l.split(":", 1)[1].strip()
                  for l in open("/proc/cpuinfo") if l.startswith("model name")][0],
    "cores": cores,
    "cidr_entries": entries,
    "startup_s": round(t1 - t0, 2),
    "rss_kib_after_start": rss,
    "tables_kib": stats.get("policy", {}).get("tables_kib"),
    "reloads": reloads,
    "reload_wall_s_best": min(r["wall_s"] for r in reloads),
    "reload_compile_us_best": min(r["compile_us"] for r in reloads),
    "old_snapshot_freed_s": max(r["old_freed_after_s"] for r in reloads),
    "pushes": pushes,
    "push_core_us_p50": pct(core_us, 50),
    "push_core_us_p99": pct(core_us, 99),
    "push_core_us_max": max(core_us),
    "push_rtt_us_p50": round(pct(rtt_us, 50)),
    "push_rtt_us_p99": round(pct(rtt_us, 99)),
    "postfix_cidr_load_s": pf,
}
os.makedirs(outdir, exist_ok=True)
with open(outdir + "/control.json", "w") as o:
    json.dump(res, o, indent=2)
with open(tmp + "/lat.dat", "w") as o:
    for i, v in enumerate(sorted(core_us)):
        o.write("%f %d %d\n" % ((i + 1) / len(core_us), v,
                                sorted(rtt_us)[i]))
print("entries:            %d CIDR blocks in the file" % entries)
print("startup:            %.1f s (parse + compile + ports), RSS %d MiB" %
      (t1 - t0, rss // 1024))
print("full reload:        %.2f s wall (parse + compile %.2f s), all %d "
      "cores adopted; old snapshot freed %.2f s later (main lcore)" %
      (res["reload_wall_s_best"], res["reload_compile_us_best"] / 1e6, cores,
       res["old_snapshot_freed_s"]))
print("push latency:       p50 %d us, p99 %d us, max %d us (send -> applied "
      "on every core; target 10 ms)" % (res["push_core_us_p50"],
                                        res["push_core_us_p99"],
                                        res["push_core_us_max"]))
print("push round trip:    p50 %d us, p99 %d us (admin client)" %
      (res["push_rtt_us_p50"], res["push_rtt_us_p99"]))
if pf is not None:
    print("Postfix reference:  postmap -q on the same cidr: table %.2f s "
          "(mxgate reload / Postfix load = %.2f)" %
          (pf, res["reload_wall_s_best"] / pf if pf else 0))
EOF

if command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<EOF
set terminal png size 800,480
set output "$here/results/control.png"
set title "mxgate runtime push latency (1M CIDR entries, $cores cores)"
set xlabel "latency (us)"
set ylabel "fraction of pushes"
set logscale x
set key bottom right
plot "$tmp/lat.dat" using 2:1 with lines lw 2 title "sent -> applied on every core", \
     "$tmp/lat.dat" using 3:1 with lines lw 2 title "admin round trip"
EOF
fi
echo "results: $here/results/control.json"
