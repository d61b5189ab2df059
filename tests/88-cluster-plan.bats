#!/usr/bin/env bats
# goman cluster plan / export, the porcelain over goman-spec | goman-plan, against moto
# (signature checking on): a table on a terminal, JSON lines off it, exit 0 when nothing
# would change and 2 when changes are pending, nothing launched; export writes the file
# the cluster was made from and never over a file that exists.
load helpers

setup_file() {
	isolate_home
	local_aws_start
	node_profile_create
}

teardown_file() { local_aws_stop; }

# on_tty CMD...: runs CMD with stdout on a terminal (script(1)), prints what it showed
on_tty() {
	script -qec "$(printf '%q ' "$@")" /dev/null | tr -d '\r'
	return "${PIPESTATUS[0]}"
}

@test "goman cluster plan: the file a cluster was made from plans to nothing (exit 0)" {
	goman-spec -f "$(cfile same 1)" | goman-provision --poll-interval 100ms >/dev/null
	run -0 --separate-stderr goman cluster plan -f "$(cfile same 1)"
	[ "$(jq -c 'select(.plan) | .plan | [.launch, .terminate, .drift, .unchanged]' <<<"$output")" = '[0,0,0,2]' ]
}

@test "goman cluster plan: more agents are launches named (exit 2), nothing launched; a table on a terminal" {
	goman-spec -f "$(cfile grow 1)" | goman-provision --poll-interval 100ms >/dev/null
	run -2 --separate-stderr goman cluster plan -f "$(cfile grow 3)"
	[ "$(jq -rc 'select(.change == "launch") | .name' <<<"$output" | sort | paste -sd,)" = grow-agent-1,grow-agent-2 ]
	[ "$(count grow)" = 2 ]
	f=$(cfile grow 3)
	run -2 on_tty goman cluster plan -f "$f"
	assert_line --regexp '^CHANGE +NAME +GROUP +DETAIL'
	assert_line --regexp '^launch +grow-agent-2 +workers +t3.small'
}

@test "goman cluster plan: a bad cluster file is exit 65 naming its line and key" {
	printf 'name: bad\ngroups:\n  - {name: control, role: server, count: 1, colour: red}\n' >"$BATS_TEST_TMPDIR/bad.yaml"
	run -65 --separate-stderr goman cluster plan -f "$BATS_TEST_TMPDIR/bad.yaml"
	[[ $stderr == *"bad.yaml:3"*colour* ]]
	run -64 goman cluster plan
}

@test "goman cluster export: the file of an existing cluster plans to nothing; an existing file is never overwritten" {
	goman-spec -f "$(cfile exp 2)" | goman-provision --poll-interval 100ms >/dev/null
	run -0 --separate-stderr goman cluster export exp --output "$BATS_TEST_TMPDIR/exp.json"
	assert_output "$BATS_TEST_TMPDIR/exp.json"
	run -0 --separate-stderr goman cluster plan -f "$BATS_TEST_TMPDIR/exp.json"
	[ "$(jq -c 'select(.plan) | .plan.launch + .plan.terminate + .plan.drift' <<<"$output")" = 0 ]
	before=$(cat "$BATS_TEST_TMPDIR/exp.json")
	run -1 --separate-stderr goman cluster export exp --output "$BATS_TEST_TMPDIR/exp.json"
	[[ $stderr == *"exists; not overwriting it"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/exp.json")" = "$before" ]
	[ -z "$(find "$BATS_TEST_TMPDIR" -name '.goman-export.*')" ]
}

# moto answers SSM at once: poll fast, do not wait for a node table that never comes
FAST=(-- --poll-interval 200ms --poll-floor 100ms --verify-wait 1s)

@test "goman cluster apply: launches what the file asks, again is a no-op, more agents are added" {
	export GOMAN_POLL_MS=200
	run -0 --separate-stderr goman cluster apply -f "$(cfile app 1)" --yes "${FAST[@]}"
	[ "$(count app)" = 2 ]
	run -0 --separate-stderr goman cluster plan -f "$(cfile app 1)"
	run -0 --separate-stderr goman cluster apply -f "$(cfile app 3)" --yes "${FAST[@]}"
	[ "$(count app)" = 4 ]
	[[ $stderr == *"app: 2 to launch, 0 to terminate"* ]]
	run -0 --separate-stderr goman cluster plan -f "$(cfile app 3)"
}

@test "goman cluster apply: terminations are named and need --yes off a terminal; then drained and terminated" {
	export GOMAN_POLL_MS=200
	goman-spec -f "$(cfile shrink 2)" | goman-provision --poll-interval 100ms >/dev/null
	[ "$(count shrink)" = 3 ]
	run -64 --separate-stderr goman cluster apply -f "$(cfile shrink 1)" "${FAST[@]}" </dev/null
	[[ $stderr == *"shrink-agent-1 i-"* ]]
	[[ $stderr == *"pass --yes"* ]]
	[ "$(count shrink)" = 3 ]
	run -2 --separate-stderr goman cluster apply -f "$(cfile shrink 1)" --dry-run "${FAST[@]}"
	[ "$(jq -rc 'select(.change == "terminate") | .name' <<<"$output")" = shrink-agent-1 ]
	[ "$(count shrink)" = 3 ]
	run -0 --separate-stderr goman cluster apply -f "$(cfile shrink 1)" --yes "${FAST[@]}"
	[ "$(count shrink)" = 2 ]
	# one drain, of the surplus agent only, sent to run on the first server
	run -0 bash -c 'goman-api <<<"{\"service\":\"ssm\",\"action\":\"ListCommands\",\"input\":{}}" |
		jq -r ".response.data.Commands[] | .Parameters.commands | join(\" \")" | grep "kubectl drain"'
	assert_equal "${#lines[@]}" 1
	[[ $output == *shrink-agent-1* && $output != *shrink-server-0* ]]
	grep -q '"event":"apply","cluster":"shrink","removed":\["shrink-agent-1"\]' "$XDG_STATE_HOME/goman/shrink.jsonl"
}

@test "goman cluster apply: a bad install flag or a bad file launches nothing" {
	run -64 --separate-stderr goman cluster apply -f "$(cfile nothing 1)" --yes -- --no-such-flag
	[ "$(count nothing)" = 0 ]
	printf 'name: nothing\ngroups: []\n' >"$BATS_TEST_TMPDIR/empty.yaml"
	run -65 --separate-stderr goman cluster apply -f "$BATS_TEST_TMPDIR/empty.yaml" --yes
	[ "$(count nothing)" = 0 ]
}
