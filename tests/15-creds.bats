#!/usr/bin/env bats
# creds: the parts of the credential chain that need a live endpoint. AssumeRole runs
# against the local AWS endpoint (moto, signature checking on) through the cmocka binary
# build/tests/test_creds (its "assume-role" group); the offline parts (files, env,
# credential_process, ECS/IMDSv2 against the loopback fixture) are its default group,
# run by the unit suite.
bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	isolate_home
	local_aws_start
}

teardown_file() {
	local_aws_stop
}

@test "creds: role_arn + source_profile assumes the role through STS, chains, and caches" {
	run -0 "$GOMAN_BUILD/tests/test_creds" assume-role
	assert_output --partial "[  PASSED  ] 1 test(s)."
	refute_output --partial "FAILED"
}

@test "creds: debug logging of every provider never shows a secret" {
	# env, profile, process, ECS and IMDS all resolve in this run, with debug lines on
	GOMAN_LOG=debug run -0 "$GOMAN_BUILD/tests/test_creds"
	assert_output --partial "[CREDS] credentials from process"
	assert_output --partial "[CREDS] credentials from imds"
	refute_output --partial "proc-secret"
	refute_output --partial "ecs-fixture-secret"
	refute_output --partial "imds-fixture-secret"
	refute_output --partial "ecs-auth-token"
	refute_output --partial "env-secret"
}
