#!/bin/sh
# Runs mxgate's whole test suite on a fresh Debian 12 machine, as root:
#   1. installs the Debian packages it needs (scripts/install-deps.sh);
#   2. gcc build with -Wall -Wextra -Werror: unit + integration + package
#      suites (package: the man pages against --help, the systemd unit, the
#      NIC helper, dashboard and log format against a running gateway, and
#      the Debian package built, installed, run and purged on this machine);
#   3. the same with -Db_sanitize=address,undefined: unit and integration
#      suites (MXG_SAN_INTEGRATION=0 runs only the unit suite there, and
#      the summary says so); gw_runcheck runs run.sh with the binary of
#      the build under test (MXGATE_BIN), so here it is the sanitised one;
#   4. clang libFuzzer build (ASan+UBSan): fuzz suite (60 s per harness).
# Ends with one line "N passed, N failed" summed over every run (a skipped
# test counts as failed: nothing is hidden) and exits non-zero on any
# failure. Build trees: build/, build-san/, build-fuzz/; a tree set up
# with other options or another compiler is set up afresh (--wipe).
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

if [ "$(id -u)" != 0 ]; then
	echo "test.sh: must run as root (network namespaces, tap ports)" >&2
	exit 2
fi
./scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

SUMMARY="$ROOT/build-summary.txt"
: > "$SUMMARY"
buildfail=0

# run_suite BUILD_DIR SETUP_ARGS... -- SUITES...
run_suite() {
	dir=$1; shift
	setup=""
	while [ "$1" != "--" ]; do setup="$setup $1"; shift; done
	shift
	echo "=== $dir: meson setup$setup"
	# What the tree was set up with: options and compiler. A reused tree
	# keeps its old options otherwise (meson setup does nothing on an
	# existing tree), so a difference means a fresh setup.
	stamp="CC=${CC:-} $setup"
	wipe=""
	old=$(cat "$dir/.mxg-setup" 2>/dev/null || echo "unknown")
	if [ -f "$dir/build.ninja" ] && [ "$old" != "$stamp" ]; then
		echo "=== $dir: was set up with other options ($old): --wipe"
		wipe="--wipe"
	fi
	if [ ! -f "$dir/build.ninja" ] || [ -n "$wipe" ]; then
		# shellcheck disable=SC2086
		meson setup $wipe "$dir" $setup >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log"; buildfail=$((buildfail + 1)); return; }
		echo "$stamp" >"$dir/.mxg-setup"
	fi
	ninja -C "$dir" >"$dir.build.log" 2>&1 || {
		tail -60 "$dir.build.log"; buildfail=$((buildfail + 1)); return; }
	suites=""
	for s in "$@"; do
		case $s in
		!*) suites="$suites --no-suite ${s#!}" ;;
		*) suites="$suites --suite $s" ;;
		esac
	done
	rm -f "$dir/meson-logs/testlog.json"
	# shellcheck disable=SC2086
	meson test -C "$dir" $suites --print-errorlogs --num-processes 1 \
		--no-rebuild || true
	python3 - "$dir/meson-logs/testlog.json" >>"$SUMMARY" <<'PY'
import json, sys
p = f = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("result") == "OK":
            p += 1
        else:
            f += 1
            print("# FAILED: %s (%s)" % (r.get("name"), r.get("result")),
                  file=sys.stderr)
except FileNotFoundError:
    f += 1
print(p, f)
PY
}

run_suite build -Dwerror=true -- unit integration package

SAN_SUITES="unit integration"
NOTES=""
if [ "${MXG_SAN_INTEGRATION:-1}" = 0 ]; then
	SAN_SUITES="unit"
	NOTES="NOTE: MXG_SAN_INTEGRATION=0: the integration suite did NOT run \
under ASan+UBSan (build-san ran the unit suite only)"
fi
# ASan needs DPDK's memory in plain pages: tests use --no-huge already.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
# shellcheck disable=SC2086
run_suite build-san -Dwerror=true -Db_sanitize=address,undefined \
	-Db_lundef=false -- $SAN_SUITES

CC=clang run_suite build-fuzz -Dwerror=true -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false -- fuzz

passed=$(awk '{p += $1} END {print p + 0}' "$SUMMARY")
failed=$(awk '{f += $2} END {print f + 0}' "$SUMMARY")
failed=$((failed + buildfail))
[ -n "$NOTES" ] && echo "$NOTES"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
