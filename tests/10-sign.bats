#!/usr/bin/env bats
# goman-sign: signing records, shapes, bad input, and --send against moto (signature
# checking on).
bats_require_minimum_version 1.5.0
load helpers

SUITE_SECRET=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
VANILLA='{"url":"https://example.amazonaws.com/","service":"service","region":"us-east-1","time":"2015-08-30T12:36:00Z"}'

setup_file() {
	isolate_home
	local_aws_start
}

teardown_file() {
	local_aws_stop
}

suite_keys() {
	export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=$SUITE_SECRET
	unset AWS_SESSION_TOKEN
}

@test "goman-sign: get-vanilla signs to the AWS suite's Authorization" {
	suite_keys
	run -0 goman-sign <<<"$VANILLA"
	want=$(sed -n 's/^Authorization://p' "$ROOT/tests/vectors/aws-sigv4/v4/get-vanilla/header-signed-request.txt" | tr -d '\r')
	got=$(jq -r '.headers.Authorization' <<<"$output")
	[ -n "$want" ]
	assert_equal "$got" "$want"
	assert_equal "$(jq -r '.headers["X-Amz-Date"]' <<<"$output")" "20150830T123600Z"
	assert_equal "$(jq -r '.ok' <<<"$output")" "true"
}

@test "goman-sign: headers given as an array come back as an array, order and duplicates kept" {
	suite_keys
	run -0 goman-sign <<<'{"url":"https://example.amazonaws.com/","service":"service","region":"us-east-1","time":"2015-08-30T12:36:00Z","headers":[["My-Header1","a"],["My-Header1","b"],["X-Other","c"]]}'
	assert_equal "$(jq -r '.headers|type' <<<"$output")" "array"
	assert_equal "$(jq -c '.headers[0:3]' <<<"$output")" '[["My-Header1","a"],["My-Header1","b"],["X-Other","c"]]'
	jq -e '.headers[] | select(.[0]=="Authorization") | .[1] | test("SignedHeaders=host;my-header1;x-amz-date;x-other")' <<<"$output"
}

@test "goman-sign: presign puts the signature in the url (the suite's query signature)" {
	suite_keys
	run -0 goman-sign <<<'{"url":"https://example.amazonaws.com/","service":"service","region":"us-east-1","time":"2015-08-30T12:36:00Z","presign":3600}'
	sig=$(tr -d '\r\n' <"$ROOT/tests/vectors/aws-sigv4/v4/get-vanilla/query-signature.txt")
	url=$(jq -r .url <<<"$output")
	[[ "$url" == https://example.amazonaws.com/\?*X-Amz-Expires=3600* ]]
	[[ "$url" == *"X-Amz-Signature=$sig"* ]]
	jq -e '.headers == null' <<<"$output"
}

@test "goman-sign: --explain gives canonical_request and string_to_sign, never the secret" {
	suite_keys
	run -0 --separate-stderr goman-sign --explain <<<"$VANILLA"
	want=$(cat "$ROOT/tests/vectors/aws-sigv4/v4/get-vanilla/header-canonical-request.txt")
	assert_equal "$(jq -r .canonical_request <<<"$output")" "$want"
	want=$(cat "$ROOT/tests/vectors/aws-sigv4/v4/get-vanilla/header-string-to-sign.txt")
	assert_equal "$(jq -r .string_to_sign <<<"$output")" "$want"
	refute_output --partial "$SUITE_SECRET"
	[[ "$stderr" != *"$SUITE_SECRET"* ]]
}

@test "goman-sign: service and region come from the URL host" {
	suite_keys
	run -0 goman-sign <<<'{"url":"https://ec2.us-west-2.amazonaws.com/","time":"2015-08-30T12:36:00Z"}
{"url":"https://mybucket.s3.eu-west-1.amazonaws.com/k","time":"2015-08-30T12:36:00Z"}
{"url":"https://sts.amazonaws.com/","time":"2015-08-30T12:36:00Z"}'
	assert_line --index 0 --partial 'Credential=AKIDEXAMPLE/20150830/us-west-2/ec2/aws4_request'
	assert_line --index 1 --partial 'Credential=AKIDEXAMPLE/20150830/eu-west-1/s3/aws4_request'
	# S3 header mode signs the payload hash
	jq -s -e '.[1].headers["x-amz-content-sha256"] // .[1].headers["X-Amz-Content-Sha256"] | length == 64' <<<"$output"
	assert_line --index 2 --partial 'Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request'
}

@test "goman-sign: bad lines are error records with line numbers, good lines still signed, exit 65" {
	suite_keys
	run -65 goman-sign <<<"$VANILLA
not json
[1,2]
{\"method\":\"GET\"}
{\"url\":\"ftp://x/\",\"service\":\"s\",\"region\":\"r\"}
{\"url\":\"https://example.amazonaws.com/\",\"service\":\"service\",\"region\":\"us-east-1\",\"presign\":\"soon\"}
$VANILLA"
	assert_equal "${#lines[@]}" 7
	for i in 1 2 3 4 5; do
		assert_equal "$(jq -r '.error.code + " " + (.error.line|tostring) + " " + (.ok|tostring)' <<<"${lines[$i]}")" "BadInput $((i + 1)) false"
	done
	assert_equal "$(jq -r .headers.Authorization <<<"${lines[0]}" | cut -c1-16)" "AWS4-HMAC-SHA256"
	assert_equal "$(jq -r .headers.Authorization <<<"${lines[6]}" | cut -c1-16)" "AWS4-HMAC-SHA256"
	# identifying fields of a bad record are kept
	assert_equal "$(jq -r .method <<<"${lines[3]}")" "GET"
}

@test "goman-sign: no credentials is a failed record, exit 78 (configuration)" {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	run -78 goman-sign <<<"$VANILLA"
	jq -e '.ok == false and (.error.code | length > 0)' <<<"$output"
}

@test "goman-sign: usage errors exit 64; --help exits 0; --version prints the version" {
	run -64 goman-sign --bogus
	run -64 goman-sign extra-arg
	run -0 goman-sign --help
	assert_output --partial "usage: goman-sign"
	run -0 goman-sign --version
	assert_output "goman-sign $(cat "$ROOT/VERSION")"
}

# ---- --send against the local endpoint (moto, signature checking on) ----------------------

@test "goman-sign: --send STS GetCallerIdentity is accepted" {
	run -0 --separate-stderr goman-sign --send --service sts <<<"{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"headers\":{\"Content-Type\":\"application/x-www-form-urlencoded\"},\"body\":\"Action=GetCallerIdentity&Version=2011-06-15\"}"
	assert_equal "$(jq -r .response.status <<<"$output")" 200
	jq -e '.response.body | test("<Arn>arn:aws:iam::[0-9]+:user/goman</Arn>")' <<<"$output"
	refute_output --partial "$AWS_SECRET_ACCESS_KEY"
	[[ "$stderr" != *"$AWS_SECRET_ACCESS_KEY"* ]]
}

@test "goman-sign: --send EC2 DescribeRegions (POST form) is accepted" {
	run -0 --separate-stderr goman-sign --send <<<"{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"service\":\"ec2\",\"headers\":[[\"Content-Type\",\"application/x-www-form-urlencoded; charset=utf-8\"]],\"body\":\"Action=DescribeRegions&Version=2016-11-15\"}"
	assert_equal "$(jq -r .response.status <<<"$output")" 200
	jq -e '.response.body | test("us-east-1")' <<<"$output"
	jq -e '.headers | type == "array"' <<<"$output"
	refute_output --partial "$AWS_SECRET_ACCESS_KEY"
}

@test "goman-sign: --send SSM GetParameter (JSON 1.1) is accepted" {
	name=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64
	run -0 --separate-stderr goman-sign --send --service ssm <<<"{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"headers\":{\"Content-Type\":\"application/x-amz-json-1.1\",\"X-Amz-Target\":\"AmazonSSM.GetParameter\"},\"body\":\"{\\\"Name\\\":\\\"$name\\\"}\"}"
	assert_equal "$(jq -r .response.status <<<"$output")" 200
	jq -e '.response.body | fromjson | .Parameter.Value | startswith("ami-")' <<<"$output"
}

@test "goman-sign: --send with a wrong secret is an AuthFailure error record (EC2), exit 78" {
	good=$AWS_SECRET_ACCESS_KEY
	export AWS_SECRET_ACCESS_KEY=WRONGwrongWRONGwrongWRONGwrongWRONGwrong
	run -78 --separate-stderr goman-sign --send <<<"{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"service\":\"ec2\",\"headers\":{\"Content-Type\":\"application/x-www-form-urlencoded\"},\"body\":\"Action=DescribeRegions&Version=2016-11-15\"}
{\"method\":\"POST\",\"url\":\"$AWS_ENDPOINT_URL/\",\"service\":\"sts\",\"headers\":{\"Content-Type\":\"application/x-www-form-urlencoded\"},\"body\":\"Action=GetCallerIdentity&Version=2011-06-15\"}"
	assert_equal "$(jq -r '.error.code + " " + .error.class + " " + (.error.http_status|tostring) + " " + (.ok|tostring)' <<<"${lines[0]}")" "AuthFailure auth 401 false"
	assert_equal "$(jq -r '.response.status' <<<"${lines[0]}")" 401
	# STS answers 403 with its own code
	jq -e '.error.http_status == 403 and .error.class == "auth" and (.error.code | length > 0) and .error.code != "HttpError"' <<<"${lines[1]}"
	refute_output --partial WRONGwrongWRONG
	refute_output --partial "$good"
	[[ "$stderr" != *WRONGwrongWRONG* ]]
}

@test "goman-sign: --send to a closed port is a transport error record" {
	port=$("$LOCAL_AWS_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	run -75 goman-sign --send --service sts <<<"{\"url\":\"http://127.0.0.1:$port/\"}"
	jq -e '.ok == false and .error.class == "transient" and .error.retryable == true' <<<"$output"
}

@test "goman-sign: CR/LF in a header value or name, or a region that is not a label, is BadInput" {
	run -65 --separate-stderr goman-sign <<'IN'
{"url":"https://s3.amazonaws.com/b","region":"us-east-1","service":"s3","headers":{"X-A":"b\r\nX-Injected: yes"}}
{"url":"https://s3.amazonaws.com/b","region":"us-east-1","service":"s3","headers":[["X-A\r\nX-Injected","yes"]]}
{"url":"https://s3.amazonaws.com/b","region":"us-east-1","service":"s3","headers":{"X-A:B":"c"}}
{"url":"https://s3.amazonaws.com/b","region":"x@127.0.0.1:18443/#","service":"s3"}
{"url":"https://s3.amazonaws.com/b","region":"us-east-1","service":"s3","headers":{"X-A":"tab\tis fine"}}
IN
	assert_equal "${#lines[@]}" 5
	for i in 0 1 2 3; do
		assert_equal "$(jq -r .error.code <<<"${lines[$i]}")" "BadInput"
	done
	assert_equal "$(jq -r '.headers.Authorization | startswith("AWS4-HMAC-SHA256")' <<<"${lines[4]}")" true
	# the same region as a flag is a usage error
	run -64 goman-sign --region 'x@127.0.0.1:18443/#' <<<'{"url":"https://s3.amazonaws.com/b","service":"s3"}'
}
