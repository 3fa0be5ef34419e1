#!/bin/sh
# bench/smtp-engine.sh - SMTP engine throughput, single core.
# Builds bench/smtp/smtp_bench in a release build of its own (build-bench/
# at the repository root, or $BUILD_DIR), runs it pinned to one CPU, writes
# bench/results/smtp-engine.json and prints the figures.
# usage: bench/smtp-engine.sh [seconds-per-test]   (default 3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench}
secs=${1:-3}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/smtp/smtp_bench >/dev/null

mkdir -p "$here/results"
out="$here/results/smtp-engine.json"
cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[,-].*//' || echo 0)
if command -v taskset >/dev/null 2>&1; then
	taskset -c "$cpu" "$build/bench/smtp/smtp_bench" "$secs" > "$out.tmp"
else
	"$build/bench/smtp/smtp_bench" "$secs" > "$out.tmp"
fi
{
	head -n -1 "$out.tmp"
	printf '  ,"cpu_model": "%s"\n' "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
	printf '  ,"date": "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "}"
} > "$out"
rm -f "$out.tmp"

awk -F'[:,]' '
/^  "commands_per_second"/ { printf "commands/s:        %12.0f  (target 2000000)\n", $2 }
/^  "data_bytes_per_second"/ { printf "DATA bytes/s:      %12.0f  (%.2f GB/s, target 1 GB/s)\n", $2, $2/1e9 }
/"bdat_bytes_per_second"/ { printf "BDAT bytes/s:      %12.0f  (%.2f GB/s)\n", $2, $2/1e9 }
/"session_memsize_bytes"/ { printf "session memory:    %12d bytes (default config)\n", $2 }
' "$out"
echo "results: $out"
