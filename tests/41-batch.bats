#!/usr/bin/env bats
# tests/41-batch.bats - goman-batch against moto (signature checking on): bisection of bad
# IDs, the stop/start round trip with waits, termination protection, bad input, --cluster.

load helpers
load fixtures/fault_proxy

setup_file() {
	isolate_home
	local_aws_start
	export INST="$ROOT/bench/batch_instances.py"
}

teardown() {
	fault_proxy_stop
}

teardown_file() {
	local_aws_stop
}

inst() {
	"$LOCAL_AWS_PYTHON" "$INST" "$@"
}

@test "goman-batch: 200 instances with 4 bogus IDs: 196 stopped, 4 error records, bisection in the log" {
	inst launch 196 >"$BATS_TEST_TMPDIR/good.jsonl"
	# bogus IDs mixed in: three well-formed but nonexistent, one malformed
	awk 'NR==17{print "{\"instance_id\":\"i-0000000000000dead\",\"n\":\"bad1\"}"}
	     NR==80{print "{\"instance_id\":\"i-0123456789abcdef0\",\"n\":\"bad2\"}"}
	     NR==81{print "{\"instance_id\":\"i-00000000deadbeef1\",\"n\":\"bad3\"}"}
	     {print}
	     END{print "{\"instance_id\":\"i-not-an-id\",\"n\":\"bad4\"}"}' \
		"$BATS_TEST_TMPDIR/good.jsonl" >"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/in.jsonl")" -eq 200 ]
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events.jsonl"
	run -1 --separate-stderr goman-batch stop --batch-size 10 <"$BATS_TEST_TMPDIR/in.jsonl"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out.jsonl"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out.jsonl")" -eq 200 ]
	[ "$(jq -c 'select(.ok == true)' "$BATS_TEST_TMPDIR/out.jsonl" | wc -l)" -eq 196 ]
	# every input instance answered exactly once
	[ -z "$(jq -r .instance_id "$BATS_TEST_TMPDIR/out.jsonl" | sort | uniq -d)" ]
	# the four error records keep their input fields and name the bad ID's code
	run jq -r 'select(.ok == false) | "\(.n) \(.batch.action) \(.batch.error.code)"' "$BATS_TEST_TMPDIR/out.jsonl"
	[ "$(printf '%s\n' "$output" | awk '{print $1}' | sort | tr '\n' ' ')" = "bad1 bad2 bad3 bad4 " ]
	[ -z "$(printf '%s\n' "$output" | grep -Ev ' stop InvalidInstanceID\.(NotFound|Malformed)$')" ]
	# good records: action, states and batch number under "batch"
	run jq -r 'select(.ok) | "\(.batch.action) \(.batch.previous_state) \(.batch.batch >= 1) \(.batch.ms >= 0)"' "$BATS_TEST_TMPDIR/out.jsonl"
	[ "$(printf '%s\n' "$output" | sort -u)" = "stop running true true" ]
	# bisection is visible: refused batches split, each bad ID isolated
	[ "$(grep -c 'bisecting into' <<<"$stderr")" -ge 4 ]
	[ "$(grep -c 'isolated: InvalidInstanceID' <<<"$stderr")" -eq 4 ]
	grep -q '^\[BATCH\] batch 1/20: stop 10 instances' <<<"$stderr"
	grep -Eq '^\[BATCH\] batch [0-9]+: 10 ok in [0-9]+ ms' <<<"$stderr"
	# API calls counted from the events match what the engine made
	calls=$(jq -r 'select(.event == "api_call" and .action == "StopInstances") | .action' "$GOMAN_EVENTS" | wc -l)
	grep -q "20 batches, $calls calls" <<<"$stderr"
	[ "$calls" -gt 20 ] && [ "$calls" -lt 60 ]
	# and the 196 really are stopped
	run inst states $(jq -r .instance_id "$BATS_TEST_TMPDIR/good.jsonl")
	[ "$(printf '%s\n' "$output" | awk '{print $2}' | sort | uniq -c | awk '{print $1, $2}')" = "196 stopped" ]
}

@test "goman-batch: under 30 % throttling + 5 % 500s no ID is lost or misattributed, throttles never bisect" {
	inst launch 50 | awk 'NR==9{print "{\"instance_id\":\"i-0000000000000dead\"}"} {print}
		END{print "{\"instance_id\":\"i-00000000deadbeef1\"}"}' >"$BATS_TEST_TMPDIR/in.jsonl"
	fault_proxy_start '{"probabilities":{"throttle":0.3,"error500":0.05},"match":["StopInstances"],"seed":"41"}'
	AWS_ENDPOINT_URL=$FAULT_PROXY_URL run --separate-stderr goman-batch stop --batch-size 10 \
		--concurrency 2 <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 1 ] || [ "$status" -eq 75 ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 52 ]
	[ -z "$(jq -r .instance_id <<<"$output" | sort | uniq -d)" ]
	# a good ID is ok, or failed by throttling/5xx past the retries (retryable): never NotFound
	[ -z "$(jq -c 'select(.ok == false and (.instance_id | test("dead") | not)) |
		select(.batch.error.retryable != true or (.batch.error.class | IN("throttling","transient") | not))' <<<"$output")" ]
	[ "$(jq -c 'select(.ok)' <<<"$output" | wc -l)" -ge 30 ]
	# the faults happened and were retried; only the bad IDs' refusals were bisected
	[ "$(fault_proxy_get stats | jq '.outcomes.throttle')" -gt 0 ]
	grep -q '^\[RETRY\] ec2 StopInstances' <<<"$stderr"
	[ -z "$(grep 'bisecting' <<<"$stderr" | grep -v InvalidInstanceID)" ]
}

@test "goman-batch: stop --wait, wait stopped, start --wait, wait running round trip" {
	inst launch 20 >"$BATS_TEST_TMPDIR/in.jsonl"
	run -0 --separate-stderr goman-batch stop --wait --poll-interval 100ms --batch-size 5 <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -r '.batch.state' <<<"$output" | sort -u)" = "stopped" ]
	[ "$(jq -r '.batch.previous_state' <<<"$output" | sort -u)" = "running" ]
	run -0 --separate-stderr goman-batch wait stopped --poll-interval 100ms <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -c 'select(.ok and .batch.action == "wait" and .batch.state == "stopped")' <<<"$output" | wc -l)" -eq 20 ]
	# piped from the wait's own output: its "batch" result is replaced, input fields kept
	goman-batch wait stopped --poll-interval 100ms <"$BATS_TEST_TMPDIR/in.jsonl" 2>/dev/null >"$BATS_TEST_TMPDIR/stopped.jsonl"
	run -0 --separate-stderr goman-batch start --wait --poll-interval 100ms <"$BATS_TEST_TMPDIR/stopped.jsonl"
	[ "$(jq -r '"\(.batch.action) \(.batch.previous_state) \(.batch.state) \(.n >= 0)"' <<<"$output" | sort -u)" = "start stopped running true" ]
	[ "$(jq -c '.batch | keys' <<<"$output" | sort -u)" = '["action","batch","ms","ok","previous_state","state"]' ]
	run -0 --separate-stderr goman-batch wait running --poll-interval 100ms <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -c 'select(.ok and .batch.state == "running")' <<<"$output" | wc -l)" -eq 20 ]
	run inst states $(jq -r .instance_id "$BATS_TEST_TMPDIR/in.jsonl")
	[ "$(printf '%s\n' "$output" | awk '{print $2}' | sort -u)" = "running" ]
}

@test "goman-batch: wait STATE times out per instance with an error record" {
	inst launch 3 >"$BATS_TEST_TMPDIR/in.jsonl"
	run -75 --separate-stderr goman-batch wait stopped --poll-interval 100ms --timeout 500ms <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -r '.batch.error.class' <<<"$output" | sort -u)" = "timeout" ]
	[ "$(jq -r '.batch.state' <<<"$output" | sort -u)" = "running" ]
}

@test "goman-batch: terminate refuses a protected instance without --force, lifts it with --force" {
	inst launch 6 >"$BATS_TEST_TMPDIR/in.jsonl"
	prot=$(sed -n 4p "$BATS_TEST_TMPDIR/in.jsonl" | jq -r .instance_id)
	inst protect "$prot"
	run -1 --separate-stderr goman-batch terminate --batch-size 6 <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -c 'select(.ok)' <<<"$output" | wc -l)" -eq 5 ]
	run jq -r 'select(.ok == false) | "\(.instance_id) \(.batch.error.code)"' <<<"$output"
	[ "$output" = "$prot OperationNotPermitted" ]
	run -1 --separate-stderr goman-batch terminate <"$BATS_TEST_TMPDIR/in.jsonl"
	jq -r 'select(.ok == false) | .batch.error.message' <<<"$output" | grep -q -- '--force'
	run inst states "$prot"
	[ "$output" = "$prot running" ]
	sed -n 4p "$BATS_TEST_TMPDIR/in.jsonl" >"$BATS_TEST_TMPDIR/one.jsonl"
	run -0 --separate-stderr goman-batch terminate --force --wait --poll-interval 100ms <"$BATS_TEST_TMPDIR/one.jsonl"
	[ "$(jq -r '"\(.ok) \(.batch.state)"' <<<"$output")" = "true terminated" ]
	grep -q "$prot: lifting termination protection (--force)" <<<"$stderr"
	run inst states "$prot"
	[ "$output" = "$prot terminated" ]
}

@test "goman-batch: bad input lines are error records with line numbers, the rest processed, exit 65" {
	inst launch 3 >"$BATS_TEST_TMPDIR/good.jsonl"
	{ sed -n 1p "$BATS_TEST_TMPDIR/good.jsonl"; echo 'not json'; echo '{"name":"no-id"}'
	  sed -n 2p "$BATS_TEST_TMPDIR/good.jsonl"; echo '{"instance_id":7}'; sed -n 3p "$BATS_TEST_TMPDIR/good.jsonl"; } \
		>"$BATS_TEST_TMPDIR/in.jsonl"
	run -65 --separate-stderr goman-batch describe <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 6 ]
	run jq -r 'select(.batch.error.code == "BadInput") | .batch.error.line' <<<"$output"
	[ "$(printf '%s\n' "$output" | sort -n | tr '\n' ' ')" = "2 3 5 " ]
	run -65 --separate-stderr goman-batch describe <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -c 'select(.ok and .batch.state == "running")' <<<"$output" | wc -l)" -eq 3 ]
	[ "$(jq -c 'select(.name == "no-id") | .ok' <<<"$output")" = false ]
}

@test "goman-batch: --cluster selects by the goman:cluster tag and does not read stdin" {
	inst launch 4 --cluster blue >/dev/null
	inst launch 2 --cluster green >/dev/null
	run -0 --separate-stderr goman-batch describe --cluster blue <<<'this is not read'
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 4 ]
	[ "$(jq -r '"\(.cluster) \(.ok) \(.batch.state)"' <<<"$output" | sort -u)" = "blue true running" ]
}

@test "goman-batch: tag sets every --tag on every instance" {
	inst launch 3 >"$BATS_TEST_TMPDIR/in.jsonl"
	run -0 --separate-stderr goman-batch tag --tag team=infra --tag goman:note=a=b <"$BATS_TEST_TMPDIR/in.jsonl"
	[ "$(jq -c 'select(.ok and .batch.action == "tag")' <<<"$output" | wc -l)" -eq 3 ]
	run inst tags "$(sed -n 2p "$BATS_TEST_TMPDIR/in.jsonl" | jq -r .instance_id)"
	[ "$output" = '{"goman:note": "a=b", "team": "infra"}' ]
}

@test "goman-batch: usage errors exit 64, --help exits 0, batch size comes from the profile" {
	run -64 goman-batch
	run -64 goman-batch destroy
	run -64 goman-batch wait
	run -64 goman-batch wait sideways
	run -64 goman-batch stop --tag a=b
	run -64 goman-batch tag
	run -64 goman-batch describe --wait
	run -64 goman-batch stop --batch-size 1001
	run -64 goman-batch stop --timeout forever
	run -0 goman-batch --help
	[[ "$output" == *"wait STATE"* ]]
	GOMAN_ENV=production run -0 goman-batch --show-config
	grep -Eq '^batch_size *= *15' <<<"$output"
	run -0 goman-batch --show-config --env high-volume
	grep -Eq '^batch_size *= *25' <<<"$output"
}

@test "goman-batch clusters: one record per cluster with its counts, read over describe pages of 200" {
	# moto counts a page in reservations, EC2 in instances: 201 launches of one each
	"$LOCAL_AWS_PYTHON" - <<'PY'
import botocore.session
ec2 = botocore.session.get_session().create_client("ec2")
for _ in range(201):
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "goman:cluster", "Value": "big"}]}])
PY
	inst launch 2 --cluster small >"$BATS_TEST_TMPDIR/small.jsonl"
	goman-batch stop <<<"$(head -1 "$BATS_TEST_TMPDIR/small.jsonl")" >/dev/null 2>&1
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events.jsonl"
	run -0 --separate-stderr goman-batch clusters
	assert_equal "$(jq -c 'select(.cluster == "big") | [.instances, .running, .ok]' <<<"$output")" '[201,201,true]'
	assert_equal "$(jq -c 'select(.cluster == "small") | [.instances, .running, .states.stopped]' <<<"$output")" '[2,1,1]'
	# sorted by name, one record each
	[ "$(jq -r .cluster <<<"$output")" = "$(jq -r .cluster <<<"$output" | sort -u)" ]
	# more than one page: no reply holds the whole listing
	[ "$(jq -c 'select(.event == "api_call" and .action == "DescribeInstances")' "$GOMAN_EVENTS" | wc -l)" -ge 2 ]
	GOMAN_EC2_MAX_RESULTS=1000 run -0 --separate-stderr goman-batch clusters --include-shutting-down
	assert_equal "$(jq -c 'select(.cluster == "big") | .instances' <<<"$output")" 201
}

@test "goman-batch clusters: a listing that failed is an error record with no count, never 0" {
	AWS_ENDPOINT_URL=http://127.0.0.1:9 GOMAN_ENV=development run --separate-stderr goman-batch clusters
	[ "$status" -ne 0 ] && [ "$status" -ne 64 ]
	assert_equal "$(jq -s 'length' <<<"$output")" 1
	assert_equal "$(jq -c '[.ok, has("instances"), has("running"), (.batch.error.code // .error.code | length > 0)]' <<<"$output")" '[false,false,false,true]'
}

@test "goman-batch describe --cluster: index from goman:index; --include-shutting-down goes with --cluster or clusters" {
	inst launch 2 --cluster indexed >"$BATS_TEST_TMPDIR/in.jsonl"
	goman-batch tag --tag goman:index=7 <<<"$(head -1 "$BATS_TEST_TMPDIR/in.jsonl")" >/dev/null 2>&1
	run -0 --separate-stderr goman-batch describe --cluster indexed --include-shutting-down
	assert_equal "$(jq -s -c 'map(.index) | sort' <<<"$output")" '[null,7]'
	run -64 goman-batch describe --include-shutting-down
	run -64 goman-batch clusters extra
}
