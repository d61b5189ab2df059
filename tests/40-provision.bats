#!/usr/bin/env bats
# goman-provision against moto (signature checking on), mostly through the fault proxy
# (its pending-delay model makes launched instances read "pending" for a while).
# One moto for this file; every test uses its own cluster name.
load helpers
load fixtures/fault_proxy

setup_file() { cluster_env_start '{"pending_s":2}'; }
teardown_file() { cluster_env_stop; }

setup() {
	fault_proxy_config '{"sequence":null,"probabilities":null,"match":null,"match_body":null,"pending_s":2,"stopping_s":null,"initializing_s":null,"reset_stats":true}' >/dev/null
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
	# calls: 7 groups (the server; the agents over moto's 6 default subnets) + 1 CreateTags
	# per node + describe rounds + setup (SSM, IAM, subnets, SG x3, the listing)
	assert_equal "$(calls RunInstances)" 7
	assert_equal "$(calls CreateTags)" 100
	rounds=$(( $(calls DescribeInstances) - 1 ))
	setup=$(( $(calls GetParameter) + $(calls GetInstanceProfile) + $(calls DescribeVpcs) + \
		$(calls DescribeSubnets) + \
		$(calls DescribeSecurityGroups) + $(calls CreateSecurityGroup) + \
		$(calls AuthorizeSecurityGroupIngress) + 1 ))
	[ "$setup" -le 7 ]
	[ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ]
	assert_equal "$(calls)" $((7 + 100 + rounds + setup))
	echo "# 100-node launch: $(calls) calls (setup $setup, RunInstances 7, CreateTags 100, describe rounds $rounds)" >&3
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
		grep -qE "launched [0-9]+ agent" "$BATS_TEST_TMPDIR/err1" && break
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
		"Name=quick-agent-1,goman:cluster=quick,goman:group=agent,goman:index=1,goman:launch=$(jq -r '.response.data.reservationSet[0].instancesSet[0].tagSet[] | select(.key=="goman:launch") | .value' <<<"$output"),goman:name=quick-agent-1,goman:role=agent,owner=ops"
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
	# the tokens were saved before the first send (one launch per subnet: 3 agents, 3 AZs)
	tokens=$(cat "$XDG_STATE_HOME"/goman/idempotency/records.jsonl |
		jq -r 'select(.identity.cluster == "takeover" and .status == "INPROGRESS") | .client_token' | sort -u)
	assert_equal "$(grep -cE '^[0-9a-f]{32}$' <<<"$tokens")" 3
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster takeover --agents 3 --poll-interval 100ms
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -c 'select(.event=="idempotency") | .taken_over' "$GOMAN_EVENTS" | sort -u)" true
	run -0 instances takeover
	assert_equal "${#lines[@]}" 3
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeInstances","params":{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":"takeover"}}'
	assert_equal "$(jq -r '.response.data.reservationSet[].instancesSet[].tagSet[] | select(.key=="goman:launch") | .value' <<<"$output" | sort -u)" "$tokens"
}

# one instance's tags as "k=v" lines, sorted
tags_of() {
	AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeInstances\",\"params\":{\"InstanceId.1\":\"$1\"}}" |
		jq -r '.response.data.reservationSet[0].instancesSet[0].tagSet[] | "\(.key)=\(.value)"' | sort
}

@test "goman-provision: 3 servers + 4 agents without a subnet → servers in 3 distinct AZs, agents in >= 2, a re-run agrees" {
	run -0 --separate-stderr goman-provision --cluster spread --servers 3 --agents 4 --poll-interval 100ms
	assert_equal "${#lines[@]}" 7
	assert_equal "$(jq -s '[.[] | select(.role=="server") | .az] | unique | length' <<<"$output")" 3
	[ "$(jq -s '[.[] | select(.role=="agent") | .az] | unique | length' <<<"$output")" -ge 2 ]
	# every record says where it runs, and that is the default subnet of its AZ
	assert_equal "$(jq -s 'map(select(.az and (.subnet_id | startswith("subnet-")))) | length' <<<"$output")" 7
	defaults=$(AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeSubnets","params":{"Filter.1.Name":"default-for-az","Filter.1.Value.1":"true"}}' |
		jq -c '[.response.data.subnetSet[] | {(.subnetId): .availabilityZone}] | add')
	assert_equal "$(jq -s --argjson d "$defaults" 'map(select($d[.subnet_id] == .az)) | length' <<<"$output")" 7
	# moto's view: the instances run where the records say
	first=$(jq -s -c 'map({(.instance_id): .az}) | add' <<<"$output")
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeInstances","params":{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":"spread"}}'
	assert_equal "$(jq -S -c '[.response.data.reservationSet[].instancesSet[] | {(.instanceId): .placement.availabilityZone}] | add' <<<"$output")" "$(jq -S -c . <<<"$first")"
	# one RunInstances per (role, subnet)
	assert_equal "$(calls RunInstances)" 7
	# a dry run of one more of each places it where the plan would: the 4th server in
	# an AZ with none, the 5th agent where agents are fewest
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster spread --servers 4 --agents 5 --dry-run
	new_server_az=$(jq -r 'select(.provision.would_launch and .role=="server") | .az' <<<"$output")
	[ -n "$new_server_az" ]
	assert_equal "$(jq -s --arg z "$new_server_az" '[.[] | select(.role=="server" and .az==$z)] | length' <<<"$output")" 1
	run -0 --separate-stderr goman-provision --cluster spread --servers 4 --agents 5 --dry-run
	assert_equal "$(jq -r 'select(.provision.would_launch and .role=="server") | .az' <<<"$output")" "$new_server_az"
}

@test "goman-provision: every node carries goman:group (default its role) and goman:via; an untagged node is adopted into its group" {
	run -0 --separate-stderr goman-provision --poll-interval 100ms --via ssh <<'IN'
{"cluster":"grp","role":"server","group":"control"}
{"cluster":"grp","role":"agent"}
IN
	assert_equal "$(jq -s -c 'sort_by(.name) | map(.group)' <<<"$output")" '["agent","control"]'
	sid=$(jq -r 'select(.role=="server") | .instance_id' <<<"$output")
	aid=$(jq -r 'select(.role=="agent") | .instance_id' <<<"$output")
	run -0 tags_of "$sid"
	assert_line goman:group=control
	assert_line goman:via=ssh
	run -0 tags_of "$aid"
	assert_line goman:group=agent
	# a node an older goman launched: no goman:group, no goman:via
	AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api >/dev/null <<<"{\"service\":\"ec2\",\"action\":\"DeleteTags\",\"params\":{\"ResourceId.1\":\"$aid\",\"Tag.1.Key\":\"goman:group\",\"Tag.2.Key\":\"goman:via\"}}"
	run -0 tags_of "$aid"
	refute_line --partial goman:group=
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --poll-interval 100ms --via ssh <<'IN'
{"cluster":"grp","role":"server","group":"control"}
{"cluster":"grp","role":"agent","group":"workers"}
IN
	assert_equal "$(jq -s 'map(select(.ok and .provision.reused and (has("drift") | not))) | length' <<<"$output")" 2
	assert_equal "$(calls RunInstances)" 0
	assert_equal "$(calls CreateTags)" 1
	run -0 tags_of "$aid"
	assert_line goman:group=workers
	assert_line goman:via=ssh
	assert_line goman:name=grp-agent-0 # its name tags untouched
	# converged: nothing more to tag
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --poll-interval 100ms --via ssh <<'IN'
{"cluster":"grp","role":"server","group":"control"}
{"cluster":"grp","role":"agent","group":"workers"}
IN
	assert_equal "$(calls CreateTags)" 0
	assert_equal "$(calls)" 1
}

@test "goman-provision: spot, volume_gb, tags, labels and taints reach RunInstances and the instance's tags" {
	fault_proxy_config '{"reset_stats":true}' >/dev/null
	run -0 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"spotty","role":"agent","group":"workers","types":["t3.large","t3a.large"],"spot":true,"volume_gb":40,"labels":{"tier":"web","app":"shop"},"taints":["dedicated=web:NoSchedule"],"tags":{"team":"a"}}
IN
	assert_equal "$(jq -r '"\(.ok) \(.instance_type) \(.group)"' <<<"$output")" "true t3.large workers"
	id=$(jq -r .instance_id <<<"$output")
	run -0 tags_of "$id"
	assert_line goman:labels=app=shop,tier=web
	assert_line goman:taints=dedicated=web:NoSchedule
	assert_line team=a
	assert_line goman:group=workers
	run -0 env AWS_ENDPOINT_URL="$MOTO_URL" GOMAN_EVENTS= goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeInstances\",\"params\":{\"InstanceId.1\":\"$id\"}}"
	assert_equal "$(jq -r '.response.data.reservationSet[0].instancesSet[0].instanceLifecycle' <<<"$output")" spot
	# the request as sent: one-time spot, a 40 GiB gp3 root on the AMI's root device
	body=$(fault_proxy_get log | jq -r '[.[] | select(.action=="RunInstances")][0].body')
	ami=$(sed -n 's/.*ImageId=\([^&]*\).*/\1/p' <<<"$body")
	root=$(AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeImages\",\"params\":{\"ImageId.1\":\"$ami\"}}" | jq -r '.response.data.imagesSet[0].rootDeviceName')
	[ -n "$root" ] && [ "$root" != null ]
	for kv in InstanceMarketOptions.MarketType=spot \
		InstanceMarketOptions.SpotOptions.SpotInstanceType=one-time \
		"BlockDeviceMapping.1.DeviceName=$(jq -rn --arg r "$root" '$r|@uri')" \
		BlockDeviceMapping.1.Ebs.VolumeSize=40 BlockDeviceMapping.1.Ebs.VolumeType=gp3 \
		BlockDeviceMapping.1.Ebs.DeleteOnTermination=true; do
		grep -qF -- "$kv" <<<"$body" || { echo "missing $kv in $body"; false; }
	done
}

@test "goman-provision: no capacity for the first type → the group launches with the next, the record says which" {
	# the first type has no capacity anywhere (as EC2 answers it: HTTP 500, never retried)
	fault_proxy_config '{"probabilities":{"error:500:InsufficientInstanceCapacity":1.0},"match":["RunInstances"],"match_body":["InstanceType=t3.large"]}' >/dev/null
	run -0 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"fallback","role":"agent","types":["t3.large","t3a.large"]}
{"cluster":"fallback","role":"agent","types":["t3.large","t3a.large"]}
IN
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -s -c 'map("\(.ok) \(.instance_type) \(.provision.types_tried)") | unique' <<<"$output")" '["true t3a.large [\"t3.large\"]"]'
	assert_equal "$(fault_proxy_get stats | jq '.actions.RunInstances.error')" 2
	assert_equal "$(instances fallback | wc -l)" 2
	# a list with no type left: the capacity error is the nodes' error
	run -1 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"nofallback","role":"agent","types":["t3.large"]}
IN
	assert_equal "$(jq -r .provision.error.code <<<"$output")" InsufficientInstanceCapacity
	assert_equal "$(instances nofallback | wc -l)" 0
}

@test "goman-provision: --dry-run names the nodes beyond the specs and the drift of existing ones" {
	run -0 --separate-stderr goman-provision --cluster drifty --servers 1 --agents 4 --poll-interval 100ms
	: >"$GOMAN_EVENTS"
	run -0 --separate-stderr goman-provision --cluster drifty --servers 1 --agents 1 --type m5.large --dry-run
	# the 2 asked for, with their drift, and the 3 beyond the specs as surplus records
	assert_equal "${#lines[@]}" 5
	assert_equal "$(jq -s -c '[.[] | select(.provision.surplus) | .name] | sort' <<<"$output")" '["drifty-agent-1","drifty-agent-2","drifty-agent-3"]'
	assert_equal "$(jq -s -c '[.[] | select(.provision.surplus | not) | .drift.instance_type] | unique' <<<"$output")" '[{"want":"m5.large","have":"t3.medium"}]'
	grep -qF "drifty-agent-1, drifty-agent-2, drifty-agent-3" <<<"$stderr"
	assert_equal "$(grep -c "drifted from its spec" <<<"$stderr")" 2
	assert_equal "$(jq -c 'select(.event=="provision_plan") | [.wanted, .exist, .launch, (.surplus | length), (.drift | length)]' "$GOMAN_EVENTS")" "[2,2,0,3,2]"
	assert_equal "$(calls RunInstances)" 0
	assert_equal "$(instances drifty | wc -l)" 5
	# without --dry-run the surplus is named on stderr only: records stay one per spec
	run -0 --separate-stderr goman-provision --cluster drifty --servers 1 --agents 1 --poll-interval 100ms
	assert_equal "${#lines[@]}" 2
	grep -qF "no spec asks for" <<<"$stderr"
	assert_equal "$(instances drifty | wc -l)" 5
}

@test "goman-provision: a spec's \"subnets\" list is placed over round-robin; a subnet that does not exist launches nothing" {
	read -r s1 s2 < <(AWS_ENDPOINT_URL=$MOTO_URL GOMAN_EVENTS= goman-api <<<'{"service":"ec2","action":"DescribeSubnets","params":{"Filter.1.Name":"default-for-az","Filter.1.Value.1":"true"}}' |
		jq -r '[.response.data.subnetSet | sort_by(.availabilityZone) | .[-2:][] | .subnetId] | join(" ")')
	run -0 --separate-stderr goman-provision --poll-interval 100ms <<IN
{"cluster":"listed","role":"agent","subnets":["$s2","$s1"]}
{"cluster":"listed","role":"agent","subnets":["$s2","$s1"]}
{"cluster":"listed","role":"agent","subnets":["$s2","$s1"]}
IN
	assert_equal "$(jq -s -c 'map(.subnet_id) | sort | unique' <<<"$output")" "$(jq -nc --arg a "$s1" --arg b "$s2" '[$a,$b] | sort')"
	assert_equal "$(jq -s -c 'group_by(.subnet_id) | map(length) | sort' <<<"$output")" "[1,2]"
	: >"$GOMAN_EVENTS"
	run -1 --separate-stderr goman-provision --poll-interval 100ms <<'IN'
{"cluster":"nosuchnet","role":"agent","subnets":["subnet-0000000000000dead"]}
IN
	assert_equal "$(jq -r .provision.error.code <<<"$output")" InvalidSubnetID.NotFound
	assert_equal "$(calls RunInstances)" 0
	assert_equal "$(instances nosuchnet | wc -l)" 0
}

@test "goman-provision: every record from RunInstances on carries the first server's server_url; a re-run's records too" {
	run -0 --separate-stderr goman-provision --cluster joinurl --servers 1 --agents 2 --wait none
	ip=$(jq -r 'select(.role == "server" and .index == 0) | .private_ip' <<<"$output")
	[[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]
	assert_equal "$(jq -s -c 'map(.server_url) | unique' <<<"$output")" "[\"https://$ip:6443\"]"
	# a re-run that names only agents: the URL comes from the existing first server
	run -0 --separate-stderr goman-provision --cluster joinurl --agents 3 --wait none
	assert_equal "$(jq -s 'length' <<<"$output")" 3
	assert_equal "$(jq -s -c 'map(.server_url) | unique' <<<"$output")" "[\"https://$ip:6443\"]"
	# a cluster without a first server has no URL to give
	run -0 --separate-stderr goman-provision --cluster nourl --agents 1 --wait none
	assert_equal "$(jq -r '.server_url // "none"' <<<"$output")" none
	# a first server killed before its CreateTags (cluster and role tags, no index) is
	# adopted: its address is the URL of every record
	run -0 --separate-stderr goman-api <<<'{"service":"ec2","action":"RunInstances","params":{"ImageId":"ami-12c6146b","MinCount":"1","MaxCount":"1","TagSpecification.1.ResourceType":"instance","TagSpecification.1.Tag.1.Key":"goman:cluster","TagSpecification.1.Tag.1.Value":"adopturl","TagSpecification.1.Tag.2.Key":"goman:role","TagSpecification.1.Tag.2.Value":"server"}}'
	ip=$(jq -r '.response.data.instancesSet[0].privateIpAddress' <<<"$output")
	run -0 --separate-stderr goman-provision --cluster adopturl --servers 1 --agents 1 --wait none
	assert_equal "$(jq -r 'select(.role == "server") | .provision.adopted' <<<"$output")" true
	assert_equal "$(jq -s -c 'map(.server_url) | unique' <<<"$output")" "[\"https://$ip:6443\"]"
}

@test "goman-provision: a node seen running does not wait for its name tags: its record says tagged:false, the tags are on when the run ends" {
	# every CreateTags takes 4 s, an instance runs after 2 s
	fault_proxy_config '{"probabilities":{"delay":1.0},"delay_plan_ms":4000,"match":["CreateTags"]}' >/dev/null
	start=$(date +%s%3N)
	run -0 --separate-stderr goman-provision --cluster slowtags --servers 1 --agents 4 --poll-interval 200ms
	took=$(($(date +%s%3N) - start))
	fault_proxy_config '{"probabilities":null,"match":null}' >/dev/null
	assert_equal "${#lines[@]}" 5
	assert_equal "$(jq -s 'map(select(.ok == true and .provision.tagged == false)) | length' <<<"$output")" 5
	# the run waited for the tags: every instance carries its name, role and index
	[ "$took" -ge 4000 ]
	run -0 instances slowtags
	assert_equal "${#lines[@]}" 5
	assert_equal "$(awk '$3 != "-"' <<<"$output" | awk '{print $3}' | sort -u | wc -l)" 5
	assert_equal "$(grep -c ' slowtags-agent-3 agent 3$' <<<"$output")" 1
}
