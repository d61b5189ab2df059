#!/usr/bin/env bats
# goman-idem: the idempotency store seen and tidied from the shell, on records that
# goman-provision really wrote against moto (signature checking on): the file store (a
# launch held in flight by the fault proxy, so its INPROGRESS record has a live owner) and
# the DynamoDB backend.
load helpers
load fixtures/fault_proxy

setup_file() { cluster_env_start '{}'; }
teardown_file() { cluster_env_stop; }

setup() {
	fault_proxy_config '{"sequence":null,"match":null,"reset_stats":true}' >/dev/null
}

# the record of a cluster's launch, from `goman-idem list` (extra args passed on)
record_of() { # cluster [goman-idem options...]
	local c=$1
	shift
	goman-idem "$@" list 2>/dev/null | jq -c --arg c "$c" 'select(.identity.cluster == $c)'
}

# starts goman-provision for a cluster with RunInstances held for 4 s; waits for its
# INPROGRESS record; sets pid
provision_held() { # cluster
	fault_proxy_config '{"sequence":["delay:4000"],"match":["RunInstances"]}' >/dev/null
	goman-provision --cluster "$1" --servers 1 --poll-interval 100ms \
		>"$BATS_TEST_TMPDIR/$1.out" 2>"$BATS_TEST_TMPDIR/$1.err" 3>&- &
	pid=$!
	for _ in $(seq 1 100); do
		[ "$(record_of "$1" | jq -r .status)" = INPROGRESS ] && return 0
		sleep 0.05
	done
	return 1
}

@test "goman-idem: --help, --version, and usage errors exit 64" {
	run -0 goman-idem --help
	assert_output --partial "forget"
	run -0 goman-idem --version
	assert_output --regexp '^goman-idem [0-9]'
	run -64 goman-idem
	run -64 goman-idem frob
	run -64 goman-idem list extra
	run -64 goman-idem cleanup --force
	run -64 goman-idem forget --all
	run -64 goman-idem --dir "$BATS_TEST_TMPDIR" --table t list
}

@test "goman-idem: a live launch is listed INPROGRESS with its pid and not forgotten without --force" {
	provision_held idem-live
	rec=$(record_of idem-live)
	assert_equal "$(jq -r .owner_pid <<<"$rec")" "$pid"
	assert_regex "$(jq -r .client_token <<<"$rec")" '^[0-9a-f]{32}$'
	key=$(jq -r .id <<<"$rec")
	run -1 --separate-stderr goman-idem forget "$key"
	assert_equal "$(jq -r .error.code <<<"$output")" IdempotencyInProgress
	assert_equal "$(jq -r .id <<<"$output")" "$key"
	wait "$pid"
	rec=$(record_of idem-live)
	assert_equal "$(jq -r .status <<<"$rec")" COMPLETED
	assert_equal "$(jq -r '.result.instance_ids | length' <<<"$rec")" 1
}

@test "goman-idem: list | jq | forget removes a record; the re-run still converges by tag" {
	run -0 goman-provision --cluster idem-done --servers 1 --poll-interval 100ms
	key=$(record_of idem-done | jq -r .id)
	assert_regex "$key" '^[0-9a-f]{64}$'
	run -0 --separate-stderr bash -c \
		"goman-idem list | jq -c 'select(.identity.cluster == \"idem-done\")' | goman-idem forget"
	assert_equal "$output" "{\"id\":\"$key\",\"forgotten\":true}"
	assert_equal "$(record_of idem-done)" ""
	assert_equal "$(record_of idem-done --all | jq -c '[.status, .expires_at]')" '["FORGOTTEN",0]'
	# again: nothing left to forget, which is not an error
	run -0 --separate-stderr goman-idem forget "$key"
	assert_equal "$(jq -r .forgotten <<<"$output")" false
	# the node is found by its cluster tag: nothing is launched
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events.jsonl"
	run -0 --separate-stderr goman-provision --cluster idem-done --servers 1 --poll-interval 100ms
	assert_equal "$(jq -r .provision.reused <<<"$output")" true
	assert_equal "$(jq -c 'select(.event == "api_call" and .action == "RunInstances")' "$GOMAN_EVENTS" | wc -l)" 0
	# cleanup drops the forgotten record from the log for good
	run -0 --separate-stderr goman-idem cleanup
	assert_equal "$(jq -r .cleaned <<<"$output")" 1
	assert_equal "$(record_of idem-done --all)" ""
}

@test "goman-idem: re-launching a terminated cluster with another AMI is a mismatch until forgotten" {
	run -0 --separate-stderr goman-provision --cluster idem-ami --servers 1 --poll-interval 100ms
	run -0 --separate-stderr goman-batch terminate --cluster idem-ami --wait --poll-interval 100ms
	used=$(AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<'{"service":"ssm","action":"GetParameter","input":{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}}' |
		jq -r .response.data.Parameter.Value)
	other=$(AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeImages","params":{"Owner.1":"amazon"}}' |
		jq -r --arg u "$used" '[.response.data.imagesSet[].imageId | select(. != $u)] | sort | .[0]')
	assert_regex "$other" '^ami-'
	# same identity (cluster, role, type, subnet, nothing existing), other parameters
	run -1 --separate-stderr goman-provision --cluster idem-ami --servers 1 --ami "$other" --poll-interval 100ms
	assert_equal "$(jq -r .provision.error.code <<<"$output")" IdempotencyMismatch
	how=$(jq -r .provision.error.message <<<"$output" | grep -o 'goman-idem forget [0-9a-f]*')
	assert_regex "$how" '^goman-idem forget [0-9a-f]{64}$'
	# the way out the message names works
	run -0 --separate-stderr $how
	run -0 --separate-stderr goman-provision --cluster idem-ami --servers 1 --ami "$other" --poll-interval 100ms
	assert_equal "$(jq -r '"\(.ok) \(.provision.reused)"' <<<"$output")" "true false"
}

@test "goman-idem: forget --force takes a live launch's record; that run warns and still delivers" {
	provision_held idem-force
	key=$(record_of idem-force | jq -r .id)
	run -0 --separate-stderr goman-idem forget --force "$key"
	assert_equal "$(jq -r .forgotten <<<"$output")" true
	wait "$pid"
	assert_equal "$(jq -r .ok "$BATS_TEST_TMPDIR/idem-force.out")" true
	grep -q "cannot record the launch" "$BATS_TEST_TMPDIR/idem-force.err"
	assert_equal "$(record_of idem-force)" ""
}

@test "goman-idem: bad keys and lines are error records, the good ones around them still go, exit 65" {
	run -0 goman-provision --cluster idem-bad --servers 1 --poll-interval 100ms
	key=$(record_of idem-bad | jq -r .id)
	run -65 --separate-stderr goman-idem forget <<<"not json
{\"x\":1}
{\"id\":\"$key\"}
{\"id\":\"ABC\"}"
	assert_equal "${#lines[@]}" 4
	assert_equal "$(jq -r '.error.line // empty' <<<"${lines[0]}")" 1
	assert_equal "$(jq -r .error.code <<<"${lines[1]}")" BadInput
	assert_equal "${lines[2]}" "{\"id\":\"$key\",\"forgotten\":true}"
	assert_equal "$(jq -r .error.code <<<"${lines[3]}")" BadInput
}

@test "goman-idem: the DynamoDB backend lists, forgets and cleans up the same way" {
	GOMAN_EVENTS= goman-api >/dev/null <<<'{"service":"dynamodb","action":"CreateTable","input":{"TableName":"goman-idem-cli","BillingMode":"PAY_PER_REQUEST","AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}],"KeySchema":[{"AttributeName":"id","KeyType":"HASH"}]}}'
	run -0 env GOMAN_IDEMPOTENCY_TABLE=goman-idem-cli goman-provision --cluster idem-ddb \
		--servers 1 --poll-interval 100ms
	rec=$(record_of idem-ddb --table goman-idem-cli)
	assert_equal "$(jq -r .status <<<"$rec")" COMPLETED
	assert_equal "$(record_of idem-ddb)" "" # not in the file store
	key=$(jq -r .id <<<"$rec")
	run -0 --separate-stderr env GOMAN_IDEMPOTENCY_TABLE=goman-idem-cli goman-idem forget "$key"
	assert_equal "$output" "{\"id\":\"$key\",\"forgotten\":true}"
	assert_equal "$(record_of idem-ddb --table goman-idem-cli --all)" ""
	run -0 --separate-stderr goman-idem --table goman-idem-cli forget "$key"
	assert_equal "$(jq -r .forgotten <<<"$output")" false
	run -0 --separate-stderr goman-idem --table goman-idem-cli cleanup
	assert_equal "$(jq -r .cleaned <<<"$output")" 0
}
