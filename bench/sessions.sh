#!/bin/sh
# bench/sessions.sh - resident memory per idle SMTP session (issue 18).
# Not a test: it prints what it measured and writes
# bench/results/sessions.json and bench/results/sessions.png.
#
# bench/sessions.py does the work: mxgate on net_tap in a namespace of its
# own (one dataplane core), kernel clients from several 198.18.0.0/15
# source addresses (one client process per 18,000 sessions: a process may
# hold 20,000 descriptors here) open sessions, read the 220 greeting and
# stay idle; mxgate's VmRSS is read at each step, and the slope gives the
# bytes per idle session. BEFORE=path/to/another/mxgate runs the same
# steps against that binary too, in the same run (e.g. a build of the
# previous commit), for a same-run comparison.
#
# Postfix in the same run: smtpd processes (one per session) holding
# POSTFIX (default 500) idle sessions on 127.0.0.1 in the same namespace,
# their summed RSS and PSS.
#
# usage: [POSTFIX=N] bench/sessions.sh [STEPS, default 10000,50000,100000]
# Steps must finish within the 300 s greeting/command time-out, or the
# first sessions are closed by it (the opening rate falls beyond ~18,000
# sessions here; see docs/benchmarks.md).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STEPS=${1:-10000,50000,100000}
[ "$(id -u)" = 0 ] || { echo "sessions.sh: must run as root" >&2; exit 2; }
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
ninja -C build >/dev/null
mkdir -p bench/results
OUT=bench/results/sessions.json
python3 bench/sessions.py "$ROOT/build/dataplane/mxgate" "$OUT.after" \
	"$STEPS" --postfix "${POSTFIX:-500}" >/dev/null
if [ -n "${BEFORE:-}" ]; then
	python3 bench/sessions.py "$BEFORE" "$OUT.before" "$STEPS" >/dev/null
fi
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
res = {"bench": "sessions", "mxgate": json.load(open(out + ".after"))}
os.remove(out + ".after")
if os.path.exists(out + ".before"):
    res["before"] = json.load(open(out + ".before"))
    os.remove(out + ".before")
json.dump(res, open(out, "w"), indent=1)
for k in ("mxgate", "before"):
    if k in res:
        r = res[k]
        print("%-7s slope %s bytes/idle session; 1M sessions ~ %s GiB; "
              "steps %s" % (k, r.get("slope_bytes_per_session"),
                            r.get("million_sessions_gib_from_slope"),
                            [(s["sessions"], s["bytes_per_session"])
                             for s in r["steps"]]))
pf = res["mxgate"].get("postfix")
if pf:
    print("postfix %s idle sessions, %s smtpd: %s bytes RSS, %s bytes PSS "
          "per session" % (pf.get("sessions"), pf.get("smtpd_processes"),
                           pf.get("rss_bytes_per_session"),
                           pf.get("pss_bytes_per_session")))
PY
if command -v gnuplot >/dev/null 2>&1; then
	TMP=$(mktemp -d)
	python3 - "$OUT" "$TMP" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("mxgate", "before"):
    if k in d:
        base = d[k]["rss_base_kib"]
        with open("%s/%s.dat" % (sys.argv[2], k), "w") as f:
            f.write("0 0\n")
            for s in d[k]["steps"]:
                f.write("%d %.1f\n" % (s["sessions"],
                                       (s["rss_kib"] - base) / 1024.0))
PY
	PLOT="'$TMP/mxgate.dat' using 1:2 with linespoints title 'mxgate'"
	[ -f "$TMP/before.dat" ] && PLOT="$PLOT, '$TMP/before.dat' using 1:2 with linespoints title 'before'"
	gnuplot <<EOF2
set terminal png size 800,500
set output 'bench/results/sessions.png'
set title 'RSS growth with idle SMTP sessions (one core)'
set xlabel 'idle sessions (connected, greeted)'
set ylabel 'RSS delta, MiB'
set key left top
set grid
plot $PLOT
EOF2
	rm -rf "$TMP"
fi
