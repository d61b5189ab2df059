#!/usr/bin/env bash
# bench/60-fanout.sh - goman-fanout against xargs -P and GNU parallel, in the same run.
#  1. 2000 trivial jobs, 4 at a time: `true` once per input line (xargs: the line as an
#     argument, parallel: likewise, goman-fanout: the line on stdin). Wall time of each, best
#     of $REPEAT rounds (rounds interleave the three tools so load changes hit all alike),
#     and the ratios to xargs. Target: goman-fanout <= 1.2 x xargs.
#     GNU parallel (~5x slower than xargs) runs once, not $REPEAT times, to keep the bench short.
#  2. The same with output, once: `cat` (goman-fanout) against `echo` (xargs).
#  3. Max RSS of goman-fanout over 1k / 10k / 100k input lines (--keep-order, --batch 10 so
#     100k lines stay 10k jobs), which should stay flat.
# Env: GOMAN_BUILD (build), REPEAT (3), JOBS (2000).
set -u
cd "$(dirname "$0")/.."
BUILD=${GOMAN_BUILD:-build}
FANOUT="$BUILD/bin/goman-fanout"
REPEAT=${REPEAT:-3}
JOBS=${JOBS:-2000}
[ -x "$FANOUT" ] || { echo "bench 60-fanout: $FANOUT not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

seq 1 "$JOBS" | sed 's/.*/{"i":&}/' >"$tmp/in"
have_parallel=1
command -v parallel >/dev/null || { have_parallel=0; echo "GNU parallel not installed: skipped"; }

now() { date +%s.%N; }
# wall seconds of "$@" with stdin from $tmp/in, stdout to $tmp/out
wall() {
	local t0 t1
	t0=$(now)
	"$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" || { echo "failed: $*" >&2; cat "$tmp/err" >&2; return 1; }
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}
min() { printf '%s\n' "$@" | sort -g | head -1; }

round() { # label, then the three commands as strings
	local label=$1 xs=() gs=() ps=() r t
	for ((r = 0; r < REPEAT; r++)); do
		t=$(wall bash -c "$2") || return 1; xs+=("$t")
		t=$(wall bash -c "$3") || return 1; gs+=("$t")
		if [ $have_parallel = 1 ] && [ -n "$4" ] && [ "$r" = 0 ]; then
			t=$(wall bash -c "$4") || return 1; ps+=("$t")
		fi
	done
	local x g p
	x=$(min "${xs[@]}"); g=$(min "${gs[@]}")
	printf '%s: %s jobs -j4, best of %s%s\n' "$label" "$JOBS" "$REPEAT" \
		"$([ ${#ps[@]} -gt 0 ] && echo ' (parallel: one round)')"
	printf '  xargs -P4        %7.3f s\n' "$x"
	printf '  goman-fanout -j4 %7.3f s   %.2fx xargs\n' "$g" "$(echo "$g / $x" | bc -l)"
	if [ ${#ps[@]} -gt 0 ]; then
		p=$(min "${ps[@]}")
		printf '  parallel -j4     %7.3f s   %.2fx xargs\n' "$p" "$(echo "$p / $x" | bc -l)"
	fi
	if [ "$label" = "true" ]; then
		ok=$(echo "$g <= 1.2 * $x" | bc -l)
		[ "$ok" = 1 ] && echo "  target <= 1.2x xargs: met" || echo "  target <= 1.2x xargs: NOT met"
	fi
}

round true "xargs -d '\n' -n1 -P4 true" "'$FANOUT' -j4 -- true" "parallel -j4 true" || exit 1
REPEAT=1 round "cat/echo" "xargs -d '\n' -n1 -P4 echo" "'$FANOUT' -j4 -- cat" "" || exit 1
lines=$(wc -l <"$tmp/out")
[ "$lines" -eq "$JOBS" ] || { echo "lost lines: $lines of $JOBS" >&2; exit 1; }

echo "max RSS of goman-fanout --keep-order --batch 10 -j4 -- cat:"
for n in 1000 10000 100000; do
	seq 1 "$n" | sed 's/.*/{"i":&,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}/' >"$tmp/rss-in"
	/usr/bin/time -f '%M' -o "$tmp/rss" "$FANOUT" --keep-order --batch 10 -j4 -- cat \
		<"$tmp/rss-in" >"$tmp/rss-out" 2>/dev/null || { echo "rss run failed" >&2; exit 1; }
	[ "$(wc -l <"$tmp/rss-out")" -eq "$n" ] || { echo "lost lines at $n" >&2; exit 1; }
	printf '  %6d lines: %s KB\n' "$n" "$(cat "$tmp/rss")"
done
