#!/usr/bin/env bats
# The idempotency store's DynamoDB backend against moto (signature checking on), driven by
# the cmocka binary build/tests/test_idem (its dynamo_* tests skip without this env). moto
# takes no lock around conditional puts, so the condition logic is proven with sequential
# conflicting puts here, and the 8-process race on the file backend (test_idem itself).
load helpers
load fixtures/fault_proxy

DYNAMO_TESTS="dynamo_table_create_is_idempotent dynamo_new_complete_hit_and_mismatch
dynamo_conditional_put_refuses_a_live_holder_and_admits_an_expired_lease
dynamo_dead_owner_and_failed_records_are_taken_over_with_their_token
dynamo_eight_processes_in_turn_get_exactly_one_new dynamo_cleanup_deletes_expired_items"

setup_file() {
	[ -x "$GOMAN_BUILD/tests/test_idem" ] || {
		echo "build the unit tests first: make units" >&2
		return 1
	}
	isolate_home
	local_aws_start
}

teardown_file() {
	fault_proxy_stop
	local_aws_stop
}

@test "idem: DynamoDB conditional puts admit one owner, take over expired/dead/failed, clean up" {
	run -0 env GOMAN_IDEM_TEST_TABLE=goman-idem "$GOMAN_BUILD/tests/test_idem"
	refute_output --partial SKIPPED
	for t in $DYNAMO_TESTS; do assert_output --partial "[       OK ] $t"; done
	assert_output --partial "[  PASSED  ]"
	refute_output --partial "[  FAILED  ]"
}

@test "idem: DynamoDB backend keeps its answers through throttles and 500s (fault proxy)" {
	fault_proxy_start '{"probabilities":{"throttle":0.15,"error500":0.05},"seed":3}'
	run -0 env AWS_ENDPOINT_URL="$FAULT_PROXY_URL" GOMAN_IDEM_TEST_TABLE=goman-idem-faults \
		"$GOMAN_BUILD/tests/test_idem"
	refute_output --partial SKIPPED
	for t in $DYNAMO_TESTS; do assert_output --partial "[       OK ] $t"; done
	run -0 fault_proxy_get stats
	# the faults really happened, on the idempotency calls themselves
	[ "$(jq '[.actions.PutItem.throttle // 0, .actions.GetItem.throttle // 0,
		.actions.UpdateItem.throttle // 0, .actions.PutItem.error500 // 0,
		.actions.UpdateItem.error500 // 0, .actions.GetItem.error500 // 0] | add' <<<"$output")" -ge 3 ]
}
