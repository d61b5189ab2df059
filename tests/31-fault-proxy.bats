#!/usr/bin/env bats
# tests/fixtures/fault_proxy.py in front of moto, driven by plain curl (curl signs with
# --aws-sigv4 for the proxy's host:port, which the proxy passes through unchanged).
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
	fault_proxy_config '{"sequence":null,"bucket":null,"probabilities":null,"match":null,"pending_s":null,"registration_s":null,"invocation_s":null,"delay_ms":null,"reset_stats":true}' >/dev/null
}

# ec2 FORM -> prints "HTTP_CODE BODY"; sig SERVICE
sig() { echo "--aws-sigv4 aws:amz:us-east-1:$1 --user $AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"; }
ec2() {
	# shellcheck disable=SC2046
	curl -sS $(sig ec2) -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		-d "$1&Version=2016-11-15" "$FAULT_PROXY_URL/"
}
ssm() { # TARGET JSON
	# shellcheck disable=SC2046
	curl -sS $(sig ssm) -H 'Content-Type: application/x-amz-json-1.1' \
		-H "X-Amz-Target: AmazonSSM.$1" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		-d "$2" "$FAULT_PROXY_URL/"
}

@test "fault_proxy: forwards signed requests with Host unchanged, so signatures verify" {
	run -0 ec2 'Action=DescribeRegions'
	assert_output 200
	grep -q '<regionName>us-east-1</regionName>' "$BATS_TEST_TMPDIR/body"
	# a wrong secret is still refused upstream: the proxy does not bypass the check
	run -0 curl -sS --aws-sigv4 aws:amz:us-east-1:ec2 --user "$AWS_ACCESS_KEY_ID:wrong" \
		-o /dev/null -w '%{http_code}' -d 'Action=DescribeRegions&Version=2016-11-15' "$FAULT_PROXY_URL/"
	assert_output 401
}

@test "fault_proxy: a sequence plan throttles, fails, resets and delays in order" {
	fault_proxy_config '{"sequence":["throttle","throttle503","error500","reset","delay:400"]}'
	run -0 ec2 'Action=DescribeRegions'
	assert_output 400
	grep -q '<Code>RequestLimitExceeded</Code>' "$BATS_TEST_TMPDIR/body"
	run -0 ec2 'Action=DescribeRegions'
	assert_output 503
	grep -q '<Code>RequestLimitExceeded</Code>' "$BATS_TEST_TMPDIR/body"
	run -0 ec2 'Action=DescribeRegions'
	assert_output 500
	grep -q '<Code>InternalError</Code>' "$BATS_TEST_TMPDIR/body"
	run -56 ec2 'Action=DescribeRegions' # curl: connection reset (recv failure)
	start=$(date +%s%N)
	run -0 ec2 'Action=DescribeRegions'
	assert_output 200
	[ $(( ($(date +%s%N) - start) / 1000000 )) -ge 400 ]
	run -0 ec2 'Action=DescribeRegions' # sequence used up: forward
	assert_output 200
	run -0 fault_proxy_get stats
	[ "$(jq -c .actions.DescribeRegions <<<"$output")" = \
		'{"throttle":1,"throttle503":1,"error500":1,"reset":1,"delay":1,"forward":1}' ]
}

@test "fault_proxy: SSM throttling is a 400 JSON ThrottlingException, S3 a 503 SlowDown" {
	fault_proxy_config '{"sequence":["throttle","throttle"]}'
	run -0 ssm DescribeParameters '{}'
	assert_output 400
	[ "$(jq -r .__type "$BATS_TEST_TMPDIR/body")" = ThrottlingException ]
	# shellcheck disable=SC2046
	run -0 curl -sS $(sig s3) -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$FAULT_PROXY_URL/"
	assert_output 503
	grep -q '<Code>SlowDown</Code>' "$BATS_TEST_TMPDIR/body"
	run -0 ssm DescribeParameters '{}'
	assert_output 200
	run -0 fault_proxy_get stats
	[ "$(jq -r '.actions.DescribeParameters.throttle' <<<"$output")" = 1 ]
	[ "$(jq -r '.actions["s3:GET"].throttle' <<<"$output")" = 1 ]
}

@test "fault_proxy: seeded probabilities throttle about their share, counted in stats" {
	fault_proxy_config '{"probabilities":{"throttle":0.3},"seed":7,"match":["DescribeRegions"]}'
	throttled=0
	for i in $(seq 1 60); do
		code=$(ec2 'Action=DescribeRegions')
		[ "$code" = 400 ] && throttled=$((throttled + 1))
		[ "$code" = 400 ] || [ "$code" = 200 ]
	done
	run -0 ec2 'Action=DescribeAvailabilityZones' # not matched: always forwarded
	assert_output 200
	[ "$throttled" -ge 8 ] && [ "$throttled" -le 30 ]
	run -0 fault_proxy_get stats
	[ "$(jq -r .actions.DescribeRegions.throttle <<<"$output")" = "$throttled" ]
	[ "$(jq -r .total <<<"$output")" = 61 ]
}

@test "fault_proxy: the token bucket refuses past capacity per action, and can be raised" {
	fault_proxy_config '{"bucket":{"capacity":3,"refill":0.2,"per_action":true}}'
	codes=""
	for i in 1 2 3 4 5; do codes="$codes $(ec2 'Action=DescribeRegions')"; done
	[ "$codes" = " 200 200 200 400 400" ]
	run -0 ec2 'Action=DescribeAvailabilityZones' # its own bucket
	assert_output 200
	fault_proxy_config '{"bucket":{"capacity":50,"refill":10,"per_action":true}}'
	run -0 ec2 'Action=DescribeRegions'
	assert_output 200
	run -0 fault_proxy_get stats
	[ "$(jq -r .actions.DescribeRegions.throttle <<<"$output")" = 2 ]
}

@test "fault_proxy: delay model shows pending, unregistered and InProgress, then the truth" {
	fault_proxy_config '{"pending_s":4,"registration_s":4,"invocation_s":4}'
	run -0 ec2 'Action=DescribeImages&Owner.1=amazon'
	ami=$(grep -o '<imageId>ami-[0-9a-f]*' "$BATS_TEST_TMPDIR/body" | head -1 | cut -d'>' -f2)
	run -0 ec2 "Action=RunInstances&ImageId=$ami&MinCount=1&MaxCount=1&InstanceType=t3.micro"
	assert_output 200
	iid=$(grep -o '<instanceId>i-[0-9a-f]*' "$BATS_TEST_TMPDIR/body" | head -1 | cut -d'>' -f2)
	launched=$(date +%s%N)
	run -0 ec2 "Action=DescribeInstances&InstanceId.1=$iid"
	grep -q '<instanceState><code>0</code><name>pending</name></instanceState>' "$BATS_TEST_TMPDIR/body"
	send='{"InstanceIds":["'$iid'"],"DocumentName":"AWS-RunShellScript","Parameters":{"commands":["echo hi"]}}'
	run -0 ssm SendCommand "$send"
	assert_output 400
	[ "$(jq -r .__type "$BATS_TEST_TMPDIR/body")" = InvalidInstanceId ]
	# the first half must have fitted in the window, or the test proves nothing
	[ $(( ($(date +%s%N) - launched) / 1000000 )) -lt 4000 ]
	sleep 4.2
	run -0 ec2 "Action=DescribeInstances&InstanceId.1=$iid"
	grep -q '<name>running</name>' "$BATS_TEST_TMPDIR/body"
	run -0 ssm SendCommand "$send"
	assert_output 200
	cid=$(jq -r .Command.CommandId "$BATS_TEST_TMPDIR/body")
	sent=$(date +%s%N)
	run -0 ssm GetCommandInvocation '{"CommandId":"'$cid'","InstanceId":"'$iid'"}'
	assert_output 200
	[ "$(jq -r .Status "$BATS_TEST_TMPDIR/body")" = InProgress ]
	[ $(( ($(date +%s%N) - sent) / 1000000 )) -lt 4000 ]
	sleep 4.2
	run -0 ssm GetCommandInvocation '{"CommandId":"'$cid'","InstanceId":"'$iid'"}'
	[ "$(jq -r .Status "$BATS_TEST_TMPDIR/body")" = Success ]
	run -0 fault_proxy_get stats
	[ "$(jq -c .rewrites <<<"$output")" = '{"pending":1,"unregistered":1,"invocation_in_progress":1}' ]
}

@test "fault_proxy: the log holds the bodies it forwarded, not the ones it refused" {
	fault_proxy_config '{"sequence":["throttle"]}'
	run -0 ssm DescribeParameters '{"MaxResults":7}'
	assert_output 400
	run -0 ssm DescribeParameters '{"MaxResults":5}'
	assert_output 200
	run -0 fault_proxy_get log
	[ "$(jq -r 'map(select(.action=="DescribeParameters")) | map(.body) | join(" ")' <<<"$output")" = '{"MaxResults":5}' ]
}

@test "fault_proxy: bad control requests are refused" {
	run -0 curl -s -o /dev/null -w '%{http_code}' -d 'not json' "$FAULT_PROXY_URL/__proxy/config"
	assert_output 400
	run -0 curl -s -o /dev/null -w '%{http_code}' "$FAULT_PROXY_URL/__proxy/nope"
	assert_output 404
}
