#!/usr/bin/env bash
# 32-idem.sh - file-backed idempotency begin+complete vs the bare link/rename syscalls it
# needs (the peer), and vs the target of issue 3 (<= 50 us/op). Without fsync (the figure
# the target is about: the store's own cost) and with fsync (durable default; disk-bound).
set -eu
cd "$(dirname "$0")/.."
B=${GOMAN_BUILD:-build}/bench/idem_bench
[ -x "$B" ] || { echo "build $B first (make benches)"; exit 1; }
target=50000
report() { # label line-idem line-peer
	local idem peer
	idem=$(echo "$2" | awk '{print $2}'); peer=$(echo "$3" | awk '{print $2}')
	awk -v l="$1" -v i="$idem" -v p="$peer" -v t="$target" 'BEGIN {
		printf "%-28s %8d ns/op  peer %8d ns/op  ratio %.2fx  target %d ns/op: %s\n",
			l, i, p, i / p, t, (i <= t ? "met" : "MISSED") }'
}
out=$(GOMAN_IDEMPOTENCY_FSYNC=0 "$B" 3000 "${TMPDIR:-/tmp}")
report "begin+complete (no fsync)" "$(echo "$out" | sed -n 1p)" "$(echo "$out" | sed -n 2p)"
out=$(GOMAN_IDEMPOTENCY_FSYNC=1 "$B" 200 "${TMPDIR:-/tmp}")
report "begin+complete (fsync)" "$(echo "$out" | sed -n 1p)" "$(echo "$out" | sed -n 2p)" | sed 's/: met$/: met/; s/: MISSED$/: (disk-bound; target is for the store itself)/'
