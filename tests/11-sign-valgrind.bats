#!/usr/bin/env bats
# goman-sign under valgrind: a few hundred lines of every kind (header object and array
# shapes, presign, explain, bad lines) and a --send run against moto must be leak- and
# error-free.
bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	command -v valgrind >/dev/null || return 0
	isolate_home
	local_aws_start
}

teardown_file() {
	local_aws_stop
}

setup() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
}

VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect)

@test "goman-sign: valgrind clean over a few hundred mixed lines" {
	local good=$AWS_SECRET_ACCESS_KEY
	export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
	for i in $(seq 1 100); do
		echo "{\"url\":\"https://ec2.us-west-2.amazonaws.com/?n=$i\",\"headers\":{\"X-Seq\":\"$i\"},\"time\":\"2015-08-30T12:36:00Z\"}"
		echo "{\"method\":\"POST\",\"url\":\"https://bucket.s3.amazonaws.com/k%20$i\",\"headers\":[[\"X-A\",\"1\"],[\"X-A\",\"2\"]],\"body\":\"b$i\"}"
		echo "{\"url\":\"https://sts.amazonaws.com/\",\"presign\":60}"
		[ $((i % 10)) -eq 0 ] && echo "not json $i" && echo '{"url":7}'
	done >"$BATS_TEST_TMPDIR/in"
	run -65 "${VG[@]}" "$GOMAN_BIN/goman-sign" --explain <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(grep -c '"ok":true' <<<"$output")" 300
	assert_equal "$(grep -c '"BadInput"' <<<"$output")" 20
	refute_output --partial "$good"
}

@test "goman-sign: valgrind clean with --send against the local endpoint" {
	run -75 "${VG[@]}" "$GOMAN_BIN/goman-sign" --send --service sts <<<"{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"headers\":{\"Content-Type\":\"application/x-www-form-urlencoded\"},\"body\":\"Action=GetCallerIdentity&Version=2011-06-15\"}
{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"service\":\"ec2\",\"headers\":{\"Content-Type\":\"application/x-www-form-urlencoded\"},\"body\":\"Action=DescribeRegions&Version=2016-11-15&Bad=1\"}
{\"url\":\"http://127.0.0.1:1/\"}"
	assert_line --index 0 --partial '"status":200'
	assert_equal "${#lines[@]}" 3
	assert_line --index 2 --partial "\"retryable\":true"
}
