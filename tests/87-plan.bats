#!/usr/bin/env bats
# goman-plan against moto (signature checking on): a cluster made from a cluster file plans
# to nothing (exit 0); more agents in the file are launches named (exit 2) and nothing is
# launched; fewer are terminations named; the exported file of the cluster plans to
# nothing; bad spec lines exit 65 with nothing planned; usage errors exit 64.
load helpers

setup_file() {
	isolate_home
	local_aws_start
	node_profile_create
}

teardown_file() { local_aws_stop; }

create() { # create NAME AGENTS
	goman-spec -f "$(cfile "$1" "$2")" | goman-provision --poll-interval 100ms >/dev/null
}

@test "goman-plan: --help and --version" {
	run -0 goman-plan --help
	assert_output --partial "--export"
	run -0 goman-plan --version
	assert_output --regexp '^goman-plan [0-9]'
}

@test "goman-plan: usage errors exit 64" {
	run -64 goman-plan --cluster Bad_Name </dev/null
	assert_output --partial "must match"
	run -64 goman-plan --export
	assert_output --partial "--export needs --cluster"
	run -64 goman-plan </dev/null
	assert_output --partial "give --cluster"
	run -64 goman-plan --cluster a extra </dev/null
	run -64 --separate-stderr goman-plan <<'IN'
{"cluster":"r","role":"server","index":0,"region":"us-east-1"}
{"cluster":"r","role":"agent","index":0,"region":"eu-west-1"}
IN
	assert_equal "$stderr" "goman-plan: the specs name different regions"
	run -64 --separate-stderr goman-plan --region eu-west-1 <<<'{"cluster":"r","role":"server","index":0,"region":"us-east-1"}'
	assert_equal "$stderr" "goman-plan: --region differs from the specs' region: us-east-1"
}

@test "goman-plan: the file a cluster was made from plans to nothing, exit 0" {
	create same 2
	assert_equal "$(count same)" 3
	run -0 --separate-stderr bash -c "goman-spec -f '$(cfile same 2)' | goman-plan"
	assert_equal "${#lines[@]}" 1
	assert_equal "$(jq -c .plan <<<"$output")" '{"launch":0,"terminate":0,"drift":0,"orphan":0,"unchanged":3}'
	assert_equal "$(jq -r .cluster <<<"$output")" same
}

@test "goman-plan: more agents in the file are launches named, exit 2, nothing launched" {
	create grow 2
	before=$(count grow)
	run -2 --separate-stderr bash -c "goman-spec -f '$(cfile grow 4)' | goman-plan --cluster grow"
	assert_equal "$(jq -r 'select(.change=="launch") | "\(.name) \(.group) \(.role) \(.instance_type)"' <<<"$output")" \
"grow-agent-2 workers agent t3.small
grow-agent-3 workers agent t3.small"
	assert_equal "$(jq -c 'select(.plan) | .plan' <<<"$output")" '{"launch":2,"terminate":0,"drift":0,"orphan":0,"unchanged":3}'
	assert_equal "$(count grow)" "$before"
}

@test "goman-plan: fewer agents in the file are terminations named, with their instance" {
	create shrink 2
	run -2 --separate-stderr bash -c "goman-spec -f '$(cfile shrink 1)' | goman-plan"
	t=$(jq -c 'select(.change=="terminate")' <<<"$output")
	assert_equal "$(jq -r '"\(.name) \(.role) \(.index)"' <<<"$t")" "shrink-agent-1 agent 1"
	assert_regex "$(jq -r .instance_id <<<"$t")" '^i-'
	assert_equal "$(jq -c 'select(.plan) | .plan.terminate' <<<"$output")" 1
	assert_equal "$(count shrink)" 3
}

@test "goman-plan: another instance type in the file is a drift of the nodes that have it" {
	create drifty 1
	f=$(cfile drifty 1)
	sed -i 's/t3.small/m5.large/' "$f"
	run -2 --separate-stderr bash -c "goman-spec -f '$f' | goman-plan"
	d=$(jq -c 'select(.change=="drift")' <<<"$output")
	assert_equal "$(jq -r .name <<<"$d")" drifty-agent-0
	assert_equal "$(jq -c .drift.instance_type <<<"$d")" '{"want":["m5.large"],"have":"t3.small"}'
}

@test "goman-plan: an instance of the cluster without goman:role is an orphan" {
	create orph 0
	goman-api >/dev/null <<'IN'
{"service":"ec2","action":"RunInstances","params":{"ImageId":"ami-12c6146b","MinCount":"1","MaxCount":"1","InstanceType":"t3.micro","TagSpecification.1.ResourceType":"instance","TagSpecification.1.Tag.1.Key":"goman:cluster","TagSpecification.1.Tag.1.Value":"orph"}}
IN
	run -2 --separate-stderr bash -c "goman-spec -f '$(cfile orph 0)' | goman-plan"
	o=$(jq -c 'select(.change=="orphan")' <<<"$output")
	assert_equal "$(jq -r .reason <<<"$o")" "no goman:role tag"
	assert_regex "$(jq -r .instance_id <<<"$o")" '^i-'
}

@test "goman-plan: --export writes a file goman-spec reads (groups from goman:group), and its specs plan to nothing" {
	create exp 2
	run -0 --separate-stderr goman-plan --export --cluster exp
	echo "$output" >"$BATS_TEST_TMPDIR/exp.json"
	assert_equal "$(jq -c '[.groups[] | {name, role, count, type}]' <<<"$output")" \
		'[{"name":"control","role":"server","count":1,"type":["t3.medium"]},{"name":"workers","role":"agent","count":2,"type":["t3.small"]}]'
	run -0 goman-spec -f "$BATS_TEST_TMPDIR/exp.json" --check
	run -0 --separate-stderr bash -c "goman-spec -f '$BATS_TEST_TMPDIR/exp.json' | goman-plan"
	assert_equal "$(jq -c .plan <<<"$output")" '{"launch":0,"terminate":0,"drift":0,"orphan":0,"unchanged":3}'
}

@test "goman-plan: --export of a cluster with no instance exits 1" {
	run -1 --separate-stderr goman-plan --export --cluster nosuch
	assert_output ""
	assert_regex "$stderr" "no instance"
}

@test "goman-plan: a bad spec line exits 65 with an error record and no plan" {
	run -65 --separate-stderr goman-plan --cluster bad <<'IN'
{"cluster":"bad","role":"server","index":0}
{"cluster":"bad","role":"boss","index":1}
not json
IN
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -r '"\(.error.line) \(.error.code)"' <<<"$output")" $'2 BadInput\n3 BadInput'
	run -0 bash -c "jq -e 'select(.plan)' <<<'$output' | wc -l"
	assert_output 0
}

@test "goman-plan: labels the file asks for are read from the goman:labels tag (drift, then none)" {
	create lab 1
	f=$(cfile lab 1)
	sed -i 's/type: t3.small}/type: t3.small, labels: {tier: web}, taints: ["d=web:NoSchedule"]}/' "$f"
	run -2 --separate-stderr bash -c "goman-spec -f '$f' | goman-plan"
	d=$(jq -c 'select(.change=="drift")' <<<"$output")
	assert_equal "$(jq -c .drift <<<"$d")" \
		'{"labels":{"want":{"tier":"web"},"have":{}},"taints":{"want":["d=web:NoSchedule"],"have":[]}}'
	jq -c '{instance_id}' <<<"$d" | goman-batch tag --tag goman:labels=tier=web --tag 'goman:taints=d=web:NoSchedule' >/dev/null
	run -0 --separate-stderr bash -c "goman-spec -f '$f' | goman-plan"
	assert_equal "$(jq -c .plan.unchanged <<<"$output")" 2
}

@test "goman-plan: a listing that fails exits non-zero with the cause and no plan" {
	run --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
		goman-plan --cluster nocred </dev/null
	assert [ "$status" -ne 0 ] && assert [ "$status" -ne 2 ]
	assert_output ""
	assert_regex "$stderr" "listing cluster nocred"
}
