#!/usr/bin/env bats
# goman-provision against moto (signature checking on), mostly through the fault proxy
# (its pending-delay model makes launched instances read "pending" for a while).
# One moto for this file; every test uses its own cluster name.
load helpers
load fixtures/fault_proxy

setup_file() { cluster_env_start '{"pending_s":2}'; }
teardown_file() { cluster_env_stop; }

setup() {
	fault_proxy_config '{"sequence":null,"probabilities":null,"match":null,"pending_s":2,"stopping_s":null,"initializing_s":null,"reset_stats":true}' >/dev/null
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events.jsonl"
}

# instances of a cluster (any state) as "id state name role index" lines, straight from moto
instances() {
	AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeInstances\",\"params\":{\"Filter.1.Name\":\"tag:goman:cluster\",\"Filter.1.Value.1\":\"$1\"}}" |
		jq -r '.response.data.reservationSet[].instancesSet[] |
			(.tagSet // [] | map({(.key): .value}) | add // {}) as $t |
			"\(.instanceId) \(.instanceState.name) \($t["goman:name"] // "-") \($t["goman:role"] // "-") \($t["goman:index"] // "-")"'
}

calls() { # count api_call events for an action ("" = all)
	if [ -z "$1" ]; then
		jq -c 'select(.event=="api_call")' "$GOMAN_EVENTS" | wc -l
	else
		jq -c --arg a "$1" 'select(.event=="api_call" and .action==$a)' "$GOMAN_EVENTS" | wc -l
	fi
}

@test "goman-provision: --help and --version" {
	run -0 goman-provision --help
	assert_output --partial "--servers"
	run -0 goman-provision --version
	assert_output --regexp '^goman-provision [0-9]'
}

@test "goman-provision: usage errors exit 64" {
	run -64 goman-provision --servers 1
	assert_output --partial "need --cluster"
	run -64 goman-provision --cluster Bad_Name --servers 1
	assert_output --partial "must match"
	run -64 goman-provision --cluster ok --servers 1 --wait sometime
	run -64 goman-provision --cluster ok --servers 1 --tag novalue
}

@test "goman-provision: a missing instance profile is a clear error naming goman init, nothing launched" {
	run -1 --separate-stderr goman-provision --cluster noprof --servers 1 --agents 1 \
		--instance-profile nope --poll-interval 100ms
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -r .provision.error.code <<<"${lines[0]}")" NoSuchEntity
	assert_regex "$(jq -r .provision.error.message <<<"${lines[0]}")" 'goman init'
	assert_equal "$(calls RunInstances)" 0
	assert_equal "$(instances noprof | wc -l)" 0
}

@test "goman-provision: 1 server + 99 agents → exactly 100 running, tagged, streamed, few calls" {
	# one group's launch is answered at once, the other's 6 s later: the first record
	# must be out before the other group is even launched (no barrier)
	fault_proxy_config '{"sequence":["forward","delay:6000"],"match":["RunInstances"]}' >/dev/null
	goman-provision --cluster hundred --servers 1 --agents 99 --poll-interval 200ms \
		--poll-max 1s 2>"$BATS_TEST_TMPDIR/err" |
		"$LOCAL_AWS_PYTHON" -c '
import sys, time
for line in sys.stdin:
    sys.stdout.write("%d %s" % (time.time() * 1000, line)); sys.stdout.flush()' >"$BATS_TEST_TMPDIR/out"
	run -0 cut -d' ' -f2- "$BATS_TEST_TMPDIR/out"
	assert_equal "${#lines[@]}" 100
	assert_equal "$(jq -s 'map(select(.ok == true and .provision.reused == false)) | length' <<<"$output")" 100
	assert_equal "$(jq -s 'map(.name) | unique | length' <<<"$output")" 100
	assert_equal "$(jq -s 'map(select(.private_ip and .public_ip and .instance_id and .az and .t.launched and .t.running)) | length' <<<"$output")" 100
	assert_equal "$(jq -r 'select(.role=="server") | .name' <<<"$output")" hundred-server-0
	# exactly 100 instances, all running, each with its own name/role/index tags
	run -0 instances hundred
	assert_equal "${#lines[@]}" 100
	assert_equal "$(grep -c ' running ' <<<"$output")" 100
	assert_equal "$(awk '{print $3}' <<<"$output" | sort -u | wc -l)" 100
	assert_equal "$(grep -c ' hundred-server-0 server 0$' <<<"$output")" 1
	assert_equal "$(grep -c ' hundred-agent-98 agent 98$' <<<"$output")" 1
	# streamed: the first record arrived before the last instance was seen running
	first=$(head -1 "$BATS_TEST_TMPDIR/out" | cut -d' ' -f1)
	last_running=$(cut -d' ' -f2- "$BATS_TEST_TMPDIR/out" | jq -r '.t.running' | sort | tail -1)
	last_ms=$("$LOCAL_AWS_PYTHON" -c 'import sys,datetime as d; print(int(d.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=d.timezone.utc).timestamp()*1000))' "$last_running")
	[ "$first" -lt $((last_ms - 1500)) ] || { echo "first $first last running $last_ms"; false; }
	# calls: 2 groups + 1 CreateTags per node + describe rounds + setup (SSM, IAM, VPC, SG x3,
	# the listing)
	assert_equal "$(calls RunInstances)" 2
	assert_equal "$(calls CreateTags)" 100
	rounds=$(( $(calls DescribeInstances) - 1 ))
	setup=$(( $(calls GetParameter) + $(calls GetInstanceProfile) + $(calls DescribeVpcs) + \
		$(calls DescribeSecurityGroups) + $(calls CreateSecurityGroup) + \
		$(calls AuthorizeSecurityGroupIngress) + 1 ))
	[ "$setup" -le 7 ]
	[ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ]
	assert_equal "$(calls)" $((2 + 100 + rounds + setup))
	echo "# 100-node launch: $(calls) calls (setup $setup, RunInstances 2, CreateTags 100, describe rounds $rounds)" >&3
	# the records' api_calls add up to every call made
	assert_equal "$(cut -d' ' -f2- "$BATS_TEST_TMPDIR/out" | jq -s 'map(.provision.api_calls) | add | round')" "$(calls)"
	# the proxy saw the same
	assert_equal "$(fault_proxy_get stats | jq .total)" "$(calls)"

	# re-run: nothing launched, 100 records reused
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster hundred --servers 1 --agents 99 --poll-interval 200ms
	assert_equal "${#lines[@]}" 100
	assert_equal "$(jq -s 'map(select(.ok == true and .provision.reused == true and .state == "running")) | length' <<<"$output")" 100
	assert_equal "$(calls RunInstances)" 0
	assert_equal "$(calls CreateTags)" 0
	assert_equal "$(calls)" 1
	assert_equal "$(instances hundred | wc -l)" 100
}

@test "goman-provision: kill -9 during the launch, re-run → exactly 100 instances" {
	export AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2 # a fresh moto region: keeps moto fast
	# slow the name tags down so the kill lands between RunInstances and CreateTags
	fault_proxy_config '{"probabilities":{"delay":1.0},"delay_plan_ms":500,"match":["CreateTags"]}' >/dev/null
	goman-provision --cluster killed --servers 1 --agents 99 --poll-interval 200ms \
		>"$BATS_TEST_TMPDIR/out1" 2>"$BATS_TEST_TMPDIR/err1" 3>&- &
	pid=$!
	for _ in $(seq 1 200); do
		grep -q "launched 99 agent" "$BATS_TEST_TMPDIR/err1" && break
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" || true
	fault_proxy_config '{"sequence":null,"probabilities":null,"match":null}' >/dev/null
	before=$(instances killed | wc -l)
	named=$(instances killed | awk '$3 != "-"' | wc -l)
	[ "$named" -lt 100 ] # the kill left nodes without names
	run -0 --separate-stderr goman-provision --cluster killed --servers 1 --agents 99 --poll-interval 200ms
	assert_equal "${#lines[@]}" 100
	assert_equal "$(jq -s 'map(select(.ok == true)) | length' <<<"$output")" 100
	run -0 instances killed
	assert_equal "${#lines[@]}" 100
	assert_equal "$(awk '$3 != "-"' <<<"$output" | awk '{print $3}' | sort -u | wc -l)" 100
	echo "# kill -9: $before instances after the kill ($named named), 100 after the re-run" >&3
}

@test "goman-provision: 30% throttling + 5% 500s → still exactly 100, no lost records, retries within the quota" {
	export AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
	fault_proxy_config '{"probabilities":{"throttle":0.3,"error500":0.05},"seed":11}' >/dev/null
	run -0 --separate-stderr goman-provision --cluster stormy --servers 1 --agents 99 \
		--poll-interval 200ms --poll-max 1s
	assert_equal "${#lines[@]}" 100
	assert_equal "$(jq -s 'map(select(.ok == true)) | length' <<<"$output")" 100
	fault_proxy_config '{"probabilities":null}' >/dev/null
	assert_equal "$(instances stormy | wc -l)" 100
	assert_equal "$(instances stormy | awk '$3 != "-"' | wc -l)" 100
	retries=$(jq -c 'select(.event=="retry")' "$GOMAN_EVENTS" | wc -l)
	injected=$(fault_proxy_get stats | jq '(.outcomes.throttle // 0) + (.outcomes.error500 // 0)')
	[ "$retries" -ge 1 ]
	# every injected fault was answered by a retry, and the retries stay inside the AWS
	# standard quota (500 tokens, 5 a retry: 100 retries)
	[ "$retries" -le 100 ]
	echo "# 30%/5% faults: $injected injected, $retries retries, $(calls) calls" >&3
}

@test "goman-provision: bad input lines → error records with line numbers, the rest processed, exit 65" {
	run -65 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"lines","role":"server"}
not json
{"cluster":"lines","role":"queen"}
{"cluster":"Lines","role":"agent"}
{"cluster":"lines","role":"agent","instance_type":"t3.small","tags":{"team":"a"}}
{"cluster":"lines","role":"agent","index":0}
{"cluster":"lines","role":"agent","name":"lines-agent-0"}
IN
	assert_equal "${#lines[@]}" 7
	assert_equal "$(jq -s -c 'map(select(.error.code == "BadInput") | .error.line) | sort' <<<"$output")" "[2,3,4,7]"
	assert_equal "$(jq -s 'map(select(.ok == true)) | length' <<<"$output")" 3
	# an explicit index is claimed first; the line without one takes the next free index
	assert_equal "$(jq -r 'select(.ok and .instance_type=="t3.small") | .name' <<<"$output")" "lines-agent-1"
	run -0 instances lines
	assert_equal "${#lines[@]}" 3
}

@test "goman-provision: a spec's own \"_line\" (1e300, -5) never replaces its input line number" {
	run -65 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"linex","role":"queen","_line":1e300}
{"cluster":"linex","role":"queen","_line":-5}
IN
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -s -c 'map(.error.line)' <<<"$output")" "[1,2]"
	assert_equal "$(jq -s -c 'map(has("_line")) | any' <<<"$output")" false
}

@test "goman-provision: a stopped node is started and reused; --dry-run launches nothing" {
	run -0 --separate-stderr goman-provision --cluster sleepy --servers 1 --poll-interval 100ms
	id=$(jq -r .instance_id <<<"$output")
	AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api >/dev/null <<<"{\"service\":\"ec2\",\"action\":\"StopInstances\",\"params\":{\"InstanceId.1\":\"$id\"}}"
	run -0 --separate-stderr goman-provision --cluster sleepy --servers 1 --poll-interval 100ms
	assert_equal "$(jq -r '"\(.instance_id) \(.state) \(.provision.reused)"' <<<"$output")" "$id running true"
	assert_equal "$(calls StartInstances)" 1
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster sleepy --servers 1 --agents 2 --dry-run
	assert_equal "$(jq -s -c 'sort_by(.name) | map(.provision.would_launch)' <<<"$output")" "[true,true,false]"
	assert_equal "$(instances sleepy | wc -l)" 1
}

@test "goman-provision: a node still stopping is waited for, then started (EC2 refuses earlier)" {
	run -0 --separate-stderr goman-provision --cluster halting --servers 1 --agents 1 --poll-interval 100ms
	ids=$(jq -r .instance_id <<<"$output" | sort)
	# stopped through the proxy, which then shows them "stopping" for 2 s and refuses to
	# start them meanwhile (IncorrectInstanceState), as EC2 does
	fault_proxy_config '{"stopping_s":2}' >/dev/null
	run -0 --separate-stderr goman-batch stop <<<"$output"
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster halting --servers 1 --agents 1 --poll-interval 100ms
	assert_equal "$(jq -r .instance_id <<<"$output" | sort)" "$ids"
	assert_equal "$(jq -s 'map(select(.ok and .state == "running" and .provision.reused)) | length' <<<"$output")" 2
	run -0 fault_proxy_get stats
	[ "$(jq '.rewrites.stopping // 0' <<<"$output")" -ge 2 ]
	assert_equal "$(jq '.rewrites.start_while_stopping // 0' <<<"$output")" 0
	[ "$(calls StartInstances)" -ge 1 ]
	assert_equal "$(instances halting | awk '{print $2}' | sort -u)" running
}

@test "goman-provision: --wait status-ok holds each node until both status checks pass" {
	fault_proxy_config '{"initializing_s":3}' >/dev/null
	t0=$(date +%s%N)
	run -0 --separate-stderr goman-provision --cluster checked --servers 1 --agents 2 \
		--wait status-ok --poll-interval 200ms
	t1=$(date +%s%N)
	assert_equal "$(jq -s 'map(select(.ok and .state == "running")) | length' <<<"$output")" 3
	# the checks read "initializing" for 3 s after launch: no node came out before that
	[ $(((t1 - t0) / 1000000)) -ge 3000 ]
	[ "$(fault_proxy_get stats | jq '.rewrites.initializing // 0')" -ge 3 ]
	[ "$(calls DescribeInstanceStatus)" -ge 2 ]
	# and --wait running does not ask for them
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster checked --servers 1 --agents 2 --poll-interval 200ms
	assert_equal "$(calls DescribeInstanceStatus)" 0
}

@test "goman-provision: --wait none streams launched nodes; tags, --ssh-cidr rule, security group ensured once" {
	run -0 --separate-stderr goman-provision --cluster quick --agents 2 --wait none \
		--ssh-cidr 203.0.113.0/24 --tag owner=ops
	assert_equal "$(jq -s -c 'map(.state) | unique' <<<"$output")" '["pending"]'
	assert_equal "$(jq -s 'map(select(.ok)) | length' <<<"$output")" 2
	id=$(jq -r 'select(.index == 1) | .instance_id' <<<"$output")
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeInstances\",\"params\":{\"InstanceId.1\":\"$id\"}}"
	assert_equal "$(jq -r '.response.data.reservationSet[0].instancesSet[0].tagSet | map("\(.key)=\(.value)") | sort | join(",")' <<<"$output")" \
		"Name=quick-agent-1,goman:cluster=quick,goman:index=1,goman:launch=$(jq -r '.response.data.reservationSet[0].instancesSet[0].tagSet[] | select(.key=="goman:launch") | .value' <<<"$output"),goman:name=quick-agent-1,goman:role=agent,owner=ops"
	assert_equal "$(jq -r '.response.data.reservationSet[0].instancesSet[0].metadataOptions.httpTokens // "required"' <<<"$output")" required
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeSecurityGroups","params":{"Filter.1.Name":"group-name","Filter.1.Value.1":"goman-quick"}}'
	perms=$(jq -c '.response.data.securityGroupInfo[0].ipPermissions' <<<"$output")
	assert_equal "$(jq -r 'map("\(.ipProtocol)/\(.fromPort)-\(.toPort)") | sort | join(" ")' <<<"$perms")" \
		"tcp/10250-10250 tcp/22-22 tcp/2379-2380 tcp/6443-6443 udp/51820-51821 udp/8472-8472"
	assert_equal "$(jq -r '.[] | select(.fromPort == "22") | .ipRanges[0].cidrIp' <<<"$perms")" 203.0.113.0/24
	# one more node: the group is found with every rule, nothing is created or authorized
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster quick --agents 3 --wait none --ssh-cidr 203.0.113.0/24 --tag owner=ops
	assert_equal "$(jq -s 'map(select(.provision.reused == false)) | length' <<<"$output")" 1
	assert_equal "$(calls DescribeSecurityGroups)" 1
	assert_equal "$(calls CreateSecurityGroup)" 0
	assert_equal "$(calls AuthorizeSecurityGroupIngress)" 0
}

@test "goman-provision: an unreachable endpoint opens the breaker → one error record per node, exit 69" {
	run -69 --separate-stderr env AWS_ENDPOINT_URL=http://127.0.0.1:9 goman-provision --cluster down --servers 1 --agents 2
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -s -c 'map(.provision.error.code) | unique' <<<"$output")" '["CircuitOpen"]'
	assert_equal "$(jq -s -c 'map(.name) | sort' <<<"$output")" '["down-agent-0","down-agent-1","down-server-0"]'
}

@test "goman-provision: killed before RunInstances reached EC2 → the re-run takes over the saved ClientToken" {
	# every RunInstances is cut (TCP reset, never forwarded) until the kill
	fault_proxy_config '{"probabilities":{"reset":1.0},"match":["RunInstances"]}' >/dev/null
	goman-provision --cluster takeover --agents 3 --poll-interval 100ms >/dev/null 2>&1 3>&- &
	pid=$!
	for _ in $(seq 1 200); do
		[ "$(fault_proxy_get stats | jq '.actions.RunInstances.reset // 0')" -ge 1 ] && break
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" || true
	fault_proxy_config '{"probabilities":null,"match":null}' >/dev/null
	assert_equal "$(instances takeover | wc -l)" 0
	# the token was saved before the first send
	token=$(cat "$XDG_STATE_HOME"/goman/idempotency/records.jsonl |
		jq -r 'select(.identity.cluster == "takeover" and .status == "INPROGRESS") | .client_token')
	assert_regex "$token" '^[0-9a-f]{32}$'
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster takeover --agents 3 --poll-interval 100ms
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -c 'select(.event=="idempotency") | .taken_over' "$GOMAN_EVENTS")" true
	run -0 instances takeover
	assert_equal "${#lines[@]}" 3
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeInstances","params":{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":"takeover"}}'
	assert_equal "$(jq -r '[.response.data.reservationSet[].instancesSet[].tagSet[] | select(.key=="goman:launch") | .value] | unique | join(" ")' <<<"$output")" "$token"
}
