#!/usr/bin/env bats
# make demo (scripts/demo.sh): the whole main job against the local AWS endpoint, run once in
# setup_file (it starts and stops its own endpoint); the tests read what it printed and
# what it left behind.
load helpers

setup_file() {
	isolate_home
	export DEMO_TMP="$BATS_FILE_TMPDIR/tmp"
	mkdir -p "$DEMO_TMP"
	# the real HOME only to find moto (pyenv); the demo keeps its files under TMPDIR
	local rc=0
	HOME=$REAL_HOME TMPDIR=$DEMO_TMP NO_COLOR=1 "$ROOT/scripts/demo.sh" >"$BATS_FILE_TMPDIR/out" 2>&1 || rc=$?
	echo "$rc" >"$BATS_FILE_TMPDIR/rc"
}

demo_out() { cat "$BATS_FILE_TMPDIR/out"; }

@test "make demo: runs scripts/demo.sh with GOMAN_BUILD after building" {
	run -0 make -C "$ROOT" --no-print-directory -n demo BUILD=build
	assert_line "GOMAN_BUILD=build scripts/demo.sh"
	grep -q '^export AWS_EC2_METADATA_DISABLED=true' "$ROOT/scripts/demo.sh"
}

@test "demo.sh: completes and says so" {
	run demo_out
	[ "$(cat "$BATS_FILE_TMPDIR/rc")" = 0 ] || { demo_out; false; }
	assert_line "demo: ok"
	refute_output --partial "FAILED"
}

@test "demo.sh: signed calls through libgoman answer, a wrong secret is refused" {
	run demo_out
	assert_line --regexp '^sts GetCallerIdentity: HTTP 200, [0-9]+ ms -> arn:aws:iam::[0-9]+:user/goman$'
	assert_line --regexp '^ec2 DescribeRegions: HTTP 200, [0-9]+ ms -> [0-9]+ regions$'
	assert_line --regexp '^ssm GetParameter: HTTP 200, [0-9]+ ms -> AL2023 AMI ami-[0-9a-f]+$'
	assert_line --regexp '^refused: HTTP 403 [A-Za-z]+ \(class auth\); goman-api exit 78$'
}

@test "demo.sh: init, then a 3-node cluster over SSM with its records and metrics" {
	run demo_out
	assert_output --partial '$ goman init'
	assert_output --partial '"init":{"ok":true'
	assert_output --partial "acknowledges SSM commands without running them"
	assert_output --partial 'every record says "verified":false'
	assert_line --regexp '^demo-server-0 +i-[0-9a-f]+ +[0-9.]+ +provision [0-9]+ ms +install ok=true via=ssm verified=false$'
	assert_line --regexp '^demo-agent-0 +i-[0-9a-f]+ '
	assert_line --regexp '^demo-agent-1 +i-[0-9a-f]+ '
	assert_line '3 of 3 records say "verified":false, as the local endpoint runs nothing.'
	assert_output --partial "cluster demo: 3 nodes, 3 ok"
	assert_output --partial "success rate"
	# not a terminal: cluster list prints JSON lines
	assert_line --regexp '^\{"cluster":"demo","instances":3,"running":3,'
}

@test "demo.sh: deletes the cluster and stops the endpoint, leaving nothing behind" {
	run demo_out
	assert_output --partial '"delete":{"ok":true,"terminated":3'
	assert_line "no instance of demo left running"
	assert_output --partial '[LOCAL-AWS] stopped'
	url=$(sed -n 's/^endpoint \(http:[^,]*\), .*/\1/p' "$BATS_FILE_TMPDIR/out")
	[[ $url == http://127.0.0.1:* ]]
	run ! curl -fsS -o /dev/null --max-time 2 "$url/moto-api/"
	# its temporary directory (state, endpoint env file with the key) is gone
	run -0 find "$DEMO_TMP" -mindepth 1
	assert_output ""
}

@test "demo.sh: the secret key is never printed" {
	run demo_out
	# only the deliberately wrong one appears, by name
	refute_output --regexp 'AWS_SECRET_ACCESS_KEY=[A-Za-z0-9/+]{20,}'
	refute_output --partial 'export AWS_SECRET_ACCESS_KEY'
	assert_output --partial "secret in the environment only"
}

@test "demo.sh: a missing build is reported before anything starts" {
	run -1 env GOMAN_BUILD="$BATS_TEST_TMPDIR/nobuild" TMPDIR="$BATS_TEST_TMPDIR" "$ROOT/scripts/demo.sh"
	assert_output --partial "demo: FAILED: $BATS_TEST_TMPDIR/nobuild/bin/goman-api is missing"
	refute_output --partial "local AWS endpoint"
}
