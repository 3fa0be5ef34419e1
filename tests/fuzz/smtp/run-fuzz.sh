#!/bin/sh
# Runs a libFuzzer harness for a fixed time over the seed corpus.
# usage: run-fuzz.sh FUZZER SEED_CORPUS DICT SCRATCH_DIR SECONDS
# New interesting inputs go to SCRATCH_DIR, never into the committed corpus.
# Exit status: non-zero on any crash, leak, timeout or sanitizer report.
set -eu
fuzzer=$1 corpus=$2 dict=$3 scratch=$4 secs=$5
mkdir -p "$scratch"
exec "$fuzzer" -max_total_time="$secs" -dict="$dict" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 "$scratch" "$corpus"
