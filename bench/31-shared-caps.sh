#!/usr/bin/env bash
# bench/31-shared-caps.sh - MaxConcurrent shared by all of a user's processes, against the
# per-process cap, in the same run and with the same binaries: "per process" is
# GOMAN_SHARED_CAPS=0, which keeps everything else (shared breaker, quota, state file).
#  1. Dead endpoint: 8 goman-api processes x 5 DescribeRegions (--jobs 5) against an EC2
#     stand-in that answers every request with 500 after DEAD_MS (bench/caps_endpoint.py).
#     Requests that reached it. Target: <= 20 shared (per process: 40, every first attempt
#     at once; the shared breaker stops the retries in both).
#  2. Healthy overhead: 8 processes x CALLS calls, --jobs 1 (8 in flight: the EC2 cap, so
#     nobody waits for a unit) against the stand-in answering after OK_MS. Calls/s, best of
#     REPEAT rounds, interleaved, in alternating order. Target: shared within 5 % of per
#     process. (The stand-in is Python: it bounds the rate; the per-attempt cost of the
#     shared cap itself is a row of bench/30-resilience.sh.)
# Env: GOMAN_BUILD (build), REPEAT (5), CALLS (100), DEAD_MS (3000), OK_MS (5).
set -u
cd "$(dirname "$0")/.."
API=${GOMAN_BUILD:-build}/bin/goman-api
[ -x "$API" ] || { echo "missing $API (make all)"; exit 1; }
REPEAT=${REPEAT:-5} CALLS=${CALLS:-100} DEAD_MS=${DEAD_MS:-3000} OK_MS=${OK_MS:-5}
T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true HOME="$T/home" XDG_RUNTIME_DIR="$T/run"
unset GOMAN_EVENTS GOMAN_SHARED_CAPS AWS_PROFILE
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

endpoint() { # MODE DELAY_MS -> URL in $url
	rm -f "$T/port"
	python3 bench/caps_endpoint.py "$T/port" "$1" "$2" >"$T/endpoint.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || { echo "the stand-in endpoint did not start"; cat "$T/endpoint.log"; exit 1; }
	url="http://127.0.0.1:$(cat "$T/port")"
}
count() { curl -fsS "$1/__count"; }
reset() { curl -fsS -X POST "$1/__reset" >/dev/null; }
now() { date +%s.%N; }

# 8 processes at once, each N calls at --jobs J; GOMAN_STATE_FILE fresh per run
run8() { # URL N J
	local i ps=() call='{"service":"ec2","action":"DescribeRegions"}'
	export GOMAN_STATE_FILE="$T/run/state.$RANDOM$RANDOM"
	yes "$call" | head -n "$2" >"$T/in"
	for i in 1 2 3 4 5 6 7 8; do
		AWS_ENDPOINT_URL=$1 "$API" --jobs "$3" <"$T/in" >/dev/null 2>&1 &
		ps+=($!)
	done
	wait "${ps[@]}"
	rm -f "$GOMAN_STATE_FILE"
}

endpoint dead "$DEAD_MS"
dead=$url
echo "dead EC2 endpoint (500 after $DEAD_MS ms), 8 processes x 5 calls, --jobs 5:"
for mode in shared per-process; do
	reset "$dead"
	if [ $mode = shared ]; then run8 "$dead" 5 5; else GOMAN_SHARED_CAPS=0 run8 "$dead" 5 5; fi
	read -r n peak <<<"$(count "$dead")"
	printf '  %-12s %3d requests reached it, %2d at once\n' "$mode" "$n" "$peak"
	[ $mode = shared ] && shared_n=$n
done
rc=0
[ "$shared_n" -le 20 ] && echo "  target <= 20 shared: met" || { echo "  target <= 20 shared: NOT met"; rc=1; }

endpoint ok "$OK_MS"
ok=$url
echo "healthy endpoint ($OK_MS ms), 8 processes x $CALLS calls, --jobs 1, best of $REPEAT:"
best_s=0 best_p=0
for ((r = 0; r < REPEAT; r++)); do
	# the order alternates: a load that comes and goes hits both alike
	order="shared per-process"
	[ $((r % 2)) = 1 ] && order="per-process shared"
	for mode in $order; do
		reset "$ok"
		t0=$(now)
		if [ $mode = shared ]; then run8 "$ok" "$CALLS" 1; else GOMAN_SHARED_CAPS=0 run8 "$ok" "$CALLS" 1; fi
		t1=$(now)
		read -r n peak <<<"$(count "$ok")"
		rate=$(echo "$n / ($t1 - $t0)" | bc -l)
		if [ $mode = shared ]; then
			[ "$(echo "$rate > $best_s" | bc -l)" = 1 ] && best_s=$rate
		else
			[ "$(echo "$rate > $best_p" | bc -l)" = 1 ] && best_p=$rate
		fi
	done
done
printf '  shared       %8.1f calls/s\n  per-process  %8.1f calls/s\n' "$best_s" "$best_p"
ratio=$(echo "$best_s / $best_p" | bc -l)
printf '  shared / per-process %.3f\n' "$ratio"
[ "$(echo "$ratio >= 0.95" | bc -l)" = 1 ] && echo "  target within 5 %: met" || { echo "  target within 5 %: NOT met"; rc=1; }
exit $rc
