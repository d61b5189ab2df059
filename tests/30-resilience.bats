#!/usr/bin/env bats
# Resilience end to end: goman-api's calls go breaker -> rate limiter -> retry through the fault
# proxy (tests/fixtures/fault_proxy.py) in front of moto. Attempts are counted twice: by the
# proxy (what reached the "service") and by the api_call events in $GOMAN_EVENTS.
# Every test has its own shared state file (GOMAN_STATE_FILE), so breakers, quota and send
# rate start fresh; time constants are shortened through GOMAN_* settings.
load helpers
load fixtures/fault_proxy

setup_file() {
	isolate_home
	local_aws_start
	fault_proxy_start
}

teardown_file() {
	fault_proxy_stop
	local_aws_stop
}

setup() {
	fault_proxy_config '{"sequence":null,"bucket":null,"probabilities":null,"match":null,"delay_ms":null,"reset_stats":true}' >/dev/null
	export GOMAN_STATE_FILE="$BATS_TEST_TMPDIR/breakers"
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/ev.jsonl"
	export AWS_ENDPOINT_URL_DIRECT=$AWS_ENDPOINT_URL
	export AWS_ENDPOINT_URL=$FAULT_PROXY_URL
}

CALL='{"service":"ec2","action":"DescribeRegions"}'

calls() { # N -> N call lines
	local i
	for ((i = 0; i < $1; i++)); do echo "$CALL"; done
}

stat() { # jq filter on the proxy's stats
	fault_proxy_get stats | jq -r "$1"
}

events() { # jq filter over the event lines, slurped
	jq -s -r "$1" "$GOMAN_EVENTS"
}

ms_now() { date +%s%3N; }

@test "goman-api: 200 calls through 30 % throttling all succeed, attempts counted alike and within the quota" {
	fault_proxy_config '{"probabilities":{"throttle":0.3}}'
	calls 200 >"$BATS_TEST_TMPDIR/in"
	AWS_MAX_ATTEMPTS=10 GOMAN_RETRY_BASE_MS=10 GOMAN_RETRY_CAP_MS=200 \
		run -0 --separate-stderr goman-api <"$BATS_TEST_TMPDIR/in"
	assert_equal "${#lines[@]}" 200
	assert_equal "$(jq -s 'map(select(.response.ok)) | length' <<<"$output")" 200
	total=$(stat .total) throttled=$(stat '.outcomes.throttle // 0')
	attempts=$(jq -s 'map(.response.attempts) | add' <<<"$output")
	retried=$(jq -s 'map(select(.response.attempts > 1)) | length' <<<"$output")
	echo "# proxy saw $total requests, $throttled throttled; attempts $attempts" >&3
	# the proxy, the records and the events count the same attempts
	assert_equal "$attempts" "$total"
	assert_equal "$(events 'map(select(.event=="api_call")) | length')" "$total"
	assert_equal "$(events 'map(select(.event=="api_call" and .outcome=="throttled")) | length')" "$throttled"
	# every throttled attempt was retried (none given up for quota or attempts)...
	assert_equal "$(events 'map(select(.event=="retry" and .reason=="throttled")) | length')" "$throttled"
	assert_equal "$((total - 200))" "$throttled"
	# ...and the retries fit the quota: 500 tokens, 5 per retry, refunds of 5 for a success
	# after retries and 1 for a first-try success
	bound=$((200 + (500 + 5 * retried + (200 - retried)) / 5))
	echo "# retries $((total - 200)) in $retried calls; quota bound on attempts $bound" >&3
	[ "$total" -le "$bound" ]
	[ "$throttled" -ge 30 ] # the plan did throttle (30 % of ~280)
}

@test "goman-api: the retry quota, shared by two processes, stops retries when it runs dry" {
	fault_proxy_config '{"probabilities":{"throttle":1.0}}'
	calls 10 >"$BATS_TEST_TMPDIR/in"
	export GOMAN_RETRY_QUOTA_CAPACITY=50 AWS_MAX_ATTEMPTS=5 GOMAN_RETRY_BASE_MS=5 GOMAN_RETRY_CAP_MS=20
	goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o1" 2>/dev/null 3>&- &
	p1=$!
	goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o2" 2>/dev/null 3>&- &
	p2=$!
	rc1=0 rc2=0
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	# throttled to the end: temporary failures (75), not a breaker (throttling never trips it)
	assert_equal "$rc1 $rc2" "75 75"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/o1" "$BATS_TEST_TMPDIR/o2" | jq -s -r 'map(.response.error.code) | unique | join(",")')" RequestLimitExceeded
	total=$(stat .total)
	echo "# 20 calls, AWS_MAX_ATTEMPTS 5 (100 attempts unbounded), quota 50/5: $total attempts" >&3
	# 20 first attempts + 50/5 retries in all, not 10 per process
	[ "$total" -le 30 ]
	[ "$total" -ge 20 ]
	assert_equal "$(events 'map(select(.event=="retry")) | length')" "$((total - 20))"
}

@test "goman-api: a closed port opens the EC2 breaker; later calls fail fast with CircuitOpen, exit 69" {
	port=$("$LOCAL_AWS_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	calls 12 >"$BATS_TEST_TMPDIR/in"
	start=$(ms_now)
	AWS_ENDPOINT_URL=http://127.0.0.1:$port GOMAN_BREAKER_EC2_FAILURE_THRESHOLD=3 \
		GOMAN_BREAKER_EC2_MAX_CONCURRENT=1 GOMAN_BREAKER_EC2_RECOVERY_MS=60000 \
		GOMAN_RETRY_BASE_MS=5 GOMAN_RETRY_CAP_MS=20 \
		run -69 --separate-stderr goman-api <"$BATS_TEST_TMPDIR/in"
	took=$(($(ms_now) - start))
	assert_equal "${#lines[@]}" 12
	# 3 failures open it; 1 more may have been in flight (MaxConcurrent 1)
	sent=$(events 'map(select(.event=="api_call" and .outcome=="transient")) | length')
	[ "$sent" -ge 3 ] && [ "$sent" -le 4 ]
	last=${lines[11]}
	assert_equal "$(jq -r .response.error.code <<<"$last")" CircuitOpen
	assert_equal "$(jq -r .response.error.class <<<"$last")" circuit_open
	# the next probe is one recovery window (60 s) after the opening, which happened inside
	# this run: at most 60 s away, and at least 60 s minus the run's own time (not a fixed
	# slack: a loaded machine stretches the run)
	retry_after=$(jq -r .response.error.retry_after_ms <<<"$last")
	echo "# run took $took ms; last call: next probe in $retry_after ms" >&3
	[ "$retry_after" -le 60000 ]
	[ "$retry_after" -ge $((60000 - took)) ]
	assert_equal "$(events 'map(select(.event=="breaker" and .to=="open")) | length')" 1
	[[ "$stderr" == *"[CIRCUIT] ec2 us-east-1: closed -> open"* ]]
}

@test "goman-api: 8 processes on a dead endpoint share one breaker: attempts stay within threshold + MaxConcurrent + probes per window" {
	fault_proxy_config '{"probabilities":{"error500":1.0}}'
	export GOMAN_BREAKER_EC2_RECOVERY_MS=1000 GOMAN_BREAKER_EC2_MAX_CONCURRENT=1 \
		GOMAN_RETRY_BASE_MS=20 GOMAN_RETRY_CAP_MS=100
	# EC2 defaults: threshold 5, 2 probes; MaxConcurrent 1 (shared now: 1 in flight; the
	# bound still allows the 8 a per-process cap would)
	start=$(ms_now)
	pids=()
	for i in 1 2 3 4 5 6 7 8; do
		# a paced stream: each process keeps calling for ~3 s (several recovery windows)
		(rc=0
		 for j in $(seq 30); do echo "$CALL"; sleep 0.1; done | goman-api \
			>"$BATS_TEST_TMPDIR/o$i" 2>/dev/null || rc=$?
		 echo "$rc" >"$BATS_TEST_TMPDIR/rc$i") 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}"
	elapsed=$(($(ms_now) - start))
	total=$(stat .total)
	windows=$(((elapsed + 999) / 1000))
	bound=$((5 + 8 + 2 * windows))
	echo "# 8 processes x 30 calls over $elapsed ms: $total attempts reached the endpoint (bound $bound, unshared >= 40)" >&3
	[ "$total" -ge 5 ]
	[ "$total" -le "$bound" ]
	# the events agree with the proxy
	assert_equal "$(events 'map(select(.event=="api_call" and .outcome=="transient")) | length')" "$total"
	for i in 1 2 3 4 5 6 7 8; do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/rc$i")" 69
		assert_equal "$(jq -r .response.error.code <"$BATS_TEST_TMPDIR/o$i" | tail -1)" CircuitOpen
	done
	# opened once by the failures, then each failed probe re-opened it
	assert_equal "$(events 'map(select(.event=="breaker" and .from=="closed" and .to=="open")) | length')" 1
	probes=$(events 'map(select(.event=="breaker" and .from=="half-open" and .to=="open")) | length')
	[ "$probes" -ge 1 ]
}

counts() { stat '[.outcomes.forward // 0, .outcomes.throttle // 0] | join(" ")'; }

@test "goman-api: 4 adaptive processes settle near the token bucket's refill rate and speed up when it is raised" {
	# the storm to compare with: standard mode, same 4 processes, 3 s
	fault_proxy_config '{"bucket":{"capacity":5,"refill":10,"per_action":true}}'
	export AWS_MAX_ATTEMPTS=20 GOMAN_RETRY_BASE_MS=20 GOMAN_RETRY_CAP_MS=500
	pids=()
	for i in 1 2 3 4; do
		yes "$CALL" | goman-api --jobs 4 >/dev/null 2>&1 3>&- &
		pids+=($!)
	done
	sleep 3
	read -r f0 t0 <<<"$(counts)"
	kill "${pids[@]}"
	wait "${pids[@]}" || true
	# adaptive mode: a fresh bucket and fresh stats
	fault_proxy_config '{"bucket":{"capacity":5,"refill":10,"per_action":true},"reset_stats":true}' >/dev/null
	rm -f "$GOMAN_STATE_FILE"
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/adaptive.jsonl"
	export AWS_RETRY_MODE=adaptive # botocore's defaults: min rate 0.5/s, 500 ms buckets
	pids=()
	for i in 1 2 3 4; do
		yes "$CALL" | goman-api --jobs 4 >/dev/null 2>&1 3>&- &
		pids+=($!)
	done
	sleep 4
	read -r f1 t1 <<<"$(counts)"
	sleep 4
	read -r f2 t2 <<<"$(counts)"
	fault_proxy_config '{"bucket":{"capacity":5,"refill":40,"per_action":true}}' >/dev/null
	sleep 3
	read -r f3 t3 <<<"$(counts)"
	sleep 3
	read -r f4 t4 <<<"$(counts)"
	kill "${pids[@]}"
	wait "${pids[@]}" || true
	# throttled shares in per mille, send rates per s
	share0=$((1000 * t0 / (f0 + t0)))
	share2=$((1000 * (t2 - t1) / (f2 - f1 + t2 - t1)))
	rate2=$(((f2 - f1) / 4)) rate4=$(((f4 - f3) / 3))
	# the first second of the adaptive run, timed from its own first attempt (process start
	# under load varies): "ok throttled"
	read -r b1 bt1 <<<"$(events 'map(select(.event=="api_call")
		| .t = (.ts[11:13]|tonumber)*3600000 + (.ts[14:16]|tonumber)*60000 + (.ts[17:23]|tonumber*1000))
		| (map(.t) | min) as $t0 | map(select(.t < $t0 + 1000))
		| "\(map(select(.outcome=="ok")) | length) \(map(select(.outcome=="throttled")) | length)"')"
	share1=$((1000 * bt1 / (b1 + bt1)))
	echo "# bucket 5 + 10/s, standard mode: $f0 ok $t0 throttled in 3 s (${share0}‰)" >&3
	echo "# adaptive: first second $b1 ok $bt1 throttled (${share1}‰); 0-4 s $f1 ok $t1 throttled; 4-8 s $((f2 - f1)) ok $((t2 - t1)) throttled (${share2}‰), ${rate2}/s" >&3
	echo "# raised to 40/s: 8-11 s $((f3 - f2)) ok $((t3 - t2)) throttled; 11-14 s $((f4 - f3)) ok $((t4 - t3)) throttled, ${rate4}/s" >&3
	[ "$share0" -ge 500 ]           # standard mode storms the bucket
	[ "$bt1" -gt 0 ]                # the adaptive burst was throttled too...
	[ "$share2" -lt "$share1" ]     # ...then the throttled share fell
	[ "$share2" -le 250 ]
	[ "$rate2" -ge 4 ]              # near the refill rate, not starved far below it
	[ "$rate4" -ge $((rate2 * 3 / 2)) ] # and faster once the bucket was raised
}

@test "goman-api: kill -9 of a process mid-call does not wedge the others" {
	fault_proxy_config '{"delay_ms":300}'
	export AWS_RETRY_MODE=adaptive
	calls 6 >"$BATS_TEST_TMPDIR/in"
	# the normal time of one process: 6 calls of ~300 ms, 2 at a time
	start=$(ms_now)
	run -0 goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in"
	normal=$(($(ms_now) - start))
	start=$(ms_now)
	pids=()
	for i in 1 2 3 4; do
		goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o$i" 2>/dev/null 3>&- &
		pids+=($!)
	done
	sleep 0.4 # every process has calls in flight (and uses the shared state) by now
	kill -9 "${pids[0]}"
	for i in 1 2 3; do
		wait "${pids[$i]}"
		assert_equal "$(jq -s 'map(select(.response.ok)) | length' "$BATS_TEST_TMPDIR/o$((i + 1))")" 6
	done
	took=$(($(ms_now) - start))
	echo "# one process alone: $normal ms; 3 survivors of a kill -9: $took ms" >&3
	[ "$took" -le $((2 * normal + 2000)) ]
	# and a new process still gets through at once
	start=$(ms_now)
	run -0 goman-api <<<"$CALL"
	[ $(($(ms_now) - start)) -le $((normal + 2000)) ]
}

@test "goman-api: 8 processes x 5 calls at a slow dead endpoint: MaxConcurrent is the user's, at most 20 requests reach it" {
	port=$("$LOCAL_AWS_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	# a dead service that still answers, late: a proxy whose upstream is a closed port (502)
	AWS_ENDPOINT_URL=http://127.0.0.1:$port fault_proxy_start '{"delay_ms":3000}'
	export AWS_ENDPOINT_URL=$FAULT_PROXY_URL
	calls 5 >"$BATS_TEST_TMPDIR/in"
	eight() {
		local i pids=()
		for i in 1 2 3 4 5 6 7 8; do
			goman-api --jobs 5 <"$BATS_TEST_TMPDIR/in" >/dev/null 2>&1 3>&- &
			pids+=($!)
		done
		wait "${pids[@]}" || true
	}
	eight
	shared=$(stat .total)
	# the same with the cap per process: every first attempt goes at once
	fault_proxy_config '{"reset_stats":true}' >/dev/null
	export GOMAN_STATE_FILE="$BATS_TEST_TMPDIR/breakers.per-process"
	GOMAN_SHARED_CAPS=0 eight
	per_process=$(stat .total)
	echo "# 8 processes x 5 calls, EC2 MaxConcurrent 8: $shared requests reached the dead endpoint with the cap shared, $per_process with it per process" >&3
	[ "$shared" -ge 8 ]
	# 8 in flight, then the few that fill a unit freed before the 5th failure opens the breaker
	[ "$shared" -le 20 ]
	[ "$per_process" -gt 20 ]
}

@test "goman-api: units held by a process killed with SIGKILL are taken back by the next one" {
	export GOMAN_BREAKER_EC2_MAX_CONCURRENT=2
	fault_proxy_config '{"delay_ms":30000}' >/dev/null
	calls 2 >"$BATS_TEST_TMPDIR/in"
	goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in" >/dev/null 2>&1 3>&- &
	holder=$!
	for _ in $(seq 100); do [ "$(stat .total)" = 2 ] && break; sleep 0.1; done
	assert_equal "$(stat .total)" 2
	fault_proxy_config '{"delay_ms":0}' >/dev/null
	# both units are the holder's: another process sends nothing while it lives
	run -124 timeout 2 goman-api <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(stat .total)" 2
	kill -9 "$holder"
	wait "$holder" || true
	start=$(ms_now)
	run -0 --separate-stderr timeout 20 goman-api --jobs 2 <"$BATS_TEST_TMPDIR/in"
	took=$(($(ms_now) - start))
	echo "# after the SIGKILL, 2 calls through a cap of 2 took $took ms" >&3
	assert_equal "$(jq -s 'map(select(.response.ok)) | length' <<<"$output")" 2
	assert_equal "$(stat .total)" 4
}
