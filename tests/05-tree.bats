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

@test "comments give reasons, not issue numbers" {
	cd "$ROOT"
	# a comment that names a tracker number sends the reader where a clone cannot follow;
	# the pattern is split so this file does not match itself
	pat='\b[Ii]ssue[- ]''[0-9]|\bthe [a-z]+ issue\b|\(order ''[0-9] of'
	run bash -c "git ls-files -z -- libgoman bin scripts tests bench man doc Makefile README.md |
		xargs -0 grep -nE '$pat' -- | grep -v '^tests/vectors/'"
	assert_output ""
}

@test "the structure checks fail on what they are meant to catch" {
	# dep-circles: two objects that call each other are one circle
	d="$BATS_TEST_TMPDIR/objs"
	mkdir -p "$d"
	printf 'void b(void); void a(void) { b(); }\n' >"$d/a.c"
	printf 'void a(void); void b(void) { a(); }\n' >"$d/b.c"
	printf 'void a(void); void c(void) { a(); }\n' >"$d/c.c"
	for f in a b c; do cc -c -o "$d/$f.o" "$d/$f.c"; done
	run -1 "$ROOT/tests/checks/dep-circles" "$d"
	assert_line "circle: {a, b}"
	refute_output --partial "c,"
	rm "$d/b.o"
	run -0 "$ROOT/tests/checks/dep-circles" "$d"
	# long-functions: 121 lines between the braces' lines is one too many
	{
		printf 'int f(void)\n{\n'
		for _ in $(seq 1 119); do printf '\t;\n'; done
		printf '\treturn 0;\n}\n'
	} >"$d/long.c"
	run -1 "$ROOT/tests/checks/long-functions" 120 "$d/long.c"
	assert_output --partial "f() is 122 lines"
	run -0 "$ROOT/tests/checks/long-functions" 122 "$d/long.c"
}
