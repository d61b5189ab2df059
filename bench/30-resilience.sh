#!/usr/bin/env bash
# bench/30-resilience.sh - per-attempt cost of breaker + retry (+ shared state file), in ns/op
# and allocations/op, against the performance guide's targets. Peer: a monotonic clock read.
set -u
cd "$(dirname "$0")/.."
B=${GOMAN_BUILD:-build}/bench/resilience_bench
[ -x "$B" ] || { echo "missing $B (make benches)"; exit 1; }
"$B" "${GOMAN_BENCH_N:-2000000}"
