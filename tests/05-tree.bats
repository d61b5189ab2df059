#!/usr/bin/env bats
# The tree stands alone: a clone with nothing beside it builds, tests and reads its own data.
load helpers

@test "no tracked file names a directory beside the checkout" {
	cd "$ROOT"
	# the pattern is split so this file does not match itself
	pat='\.\./''shared'
	run bash -c "git ls-files -z | xargs -0 grep -lE '$pat' --"
	assert_output ""
}

@test "the AWS SigV4 suite is carried whole, with its licence and notice" {
	suite="$ROOT/tests/vectors/aws-sigv4"
	[ -s "$suite/LICENSE" ]
	grep -q "Apache License" "$suite/LICENSE"
	[ -s "$suite/NOTICE" ]
	n=$(find "$suite/v4" -name context.json | wc -l)
	[ "$n" -eq 38 ]
}
