#!/usr/bin/env bash
# 32-idem.sh - file-backed idempotency begin+complete (ns/op) against the performance guide's target
# (<= 50 us/op), beside two peers run in the same invocation and directory:
#   locked appends  the least any store shared by processes must do for begin+complete: two
#                   appends to an open file, each under flock (the first fdatasync'd when
#                   durable). The ratio is against this one.
#   file per key    what a store keeping one file per key cannot avoid (write+link a new file,
#                   write+rename a replacement): creating a file is a directory change, which
#                   is why the store is a log.
# Three places: the state dir's filesystem without fsync (the store's own cost), tmpfs
# (/dev/shm, when present), and durable (the default: begin's line fdatasync'd; disk-bound).
# "cpu" is the user+system CPU per op, which a loaded shared machine inflates less than wall.
set -eu
cd "$(dirname "$0")/.."
B=${GOMAN_BUILD:-build}/bench/idem_bench
[ -x "$B" ] || { echo "build $B first (make benches)"; exit 1; }
target=50000
run() { # label fsync iterations dir
	GOMAN_IDEMPOTENCY_FSYNC=$2 "$B" "$3" "$4" | awk -v l="$1" -v t="$target" -v durable="$2" '
		{ ns[NR] = $2; cpu[NR] = $4 }
		END {
			v = ns[1] <= t ? "met" : "MISSED"
			if (ns[1] > t && durable == 1 && ns[2] > t)
				v = "missed (one fdatasync alone exceeds it here)"
			printf "%-32s %8d ns/op (cpu %7d)  locked appends %8d ns/op (cpu %7d)  ratio %.2fx  file per key %8d ns/op  target %d: %s\n",
				l, ns[1], cpu[1], ns[2], cpu[2], ns[1] / ns[2], ns[3], t, v }'
}
run "begin+complete (disk, no fsync)" 0 3000 "${TMPDIR:-/tmp}"
[ -d /dev/shm ] && [ -w /dev/shm ] && run "begin+complete (tmpfs)" 0 3000 /dev/shm
run "begin+complete (disk, durable)" 1 300 "${TMPDIR:-/tmp}"
