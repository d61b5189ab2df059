#!/usr/bin/env bats
# Hostile input lines into every plumbing command, against moto (signature checking on):
# lines without identifying fields, not JSON, 100k nested arrays, 70 KB fields, invalid
# UTF-8, NUL escapes, numbers beyond double and int64. Whatever comes in, every output line
# is strict JSON in valid UTF-8, http_status is 0 or 100..599, retry_after_ms -1 or at most
# a day, request_id and code printable; no command dies by a signal; the exit status is 65
# (bad lines); the good lines between the bad ones come out once each, and every bad line
# gets exactly one error record. Also: a full standard output is exit 74 for each of them.

load helpers

setup_file() {
	isolate_home
	local_aws_start
	node_profile_create
	export GOMAN_IDEMPOTENCY_DIR="$BATS_FILE_TMPDIR/idem"
	mkdir -p "$GOMAN_IDEMPOTENCY_DIR"
	chmod 700 "$GOMAN_IDEMPOTENCY_DIR"
}

teardown_file() {
	local_aws_stop
}

setup() {
	# breakers per test: what one command's hostile lines do to a breaker is not the next
	# test's business
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run"
	mkdir -p "$XDG_RUNTIME_DIR"
	chmod 700 "$XDG_RUNTIME_DIR"
}

# hostile_run GOOD [EXTRA...] -- CMD...: feeds the hostile lines (with GOOD as the good
# record) to CMD under a timeout; leaves $IN, $OUT, $ERR and $rc
hostile_run() {
	local good=$1
	shift
	local extras=()
	while [ "$1" != "--" ]; do
		extras+=("$1")
		shift
	done
	shift
	IN="$BATS_TEST_TMPDIR/in.jsonl" OUT="$BATS_TEST_TMPDIR/out.jsonl" ERR="$BATS_TEST_TMPDIR/err"
	python3 "$ROOT/tests/fixtures/hostile_lines.py" "$good" "${extras[@]}" >"$IN"
	rc=0
	timeout 120 "$@" <"$IN" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ge 124 ]; then
		echo "$1 ended with $rc (timeout or signal); stderr:"
		tail -20 "$ERR"
		return 1
	fi
}

# check_output [--per-line [--mark FIELD]]: the contract checks on $OUT
check_output() {
	run python3 "$ROOT/tests/fixtures/check_jsonl.py" "$OUT" --input "$IN" "$@"
	[ "$status" -eq 0 ] || { printf '%s\n' "$output"; tail -5 "$ERR"; return 1; }
}

# good_records_are FILTER: the three good records (g1..g3) all pass the jq FILTER
good_records_are() {
	local n
	n=$(jq -c 'select(.n == "g1" or .n == "g2" or .n == "g3") | select('"$1"')' "$OUT" | wc -l)
	[ "$n" -eq 3 ] || { grep -a '"n":"g' "$OUT" | cut -c1-400; return 1; }
}

@test "hostile lines: goman-sign writes one sane record per line and exits 65" {
	hostile_run '{"url":"https://sts.amazonaws.com/","method":"GET"}' \
		'{"n":"h-hdr","url":"https://sts.amazonaws.com/","method":"GET","headers":{"X-A":"b\r\nX-I: y"}}' \
		'{"n":"h-url","url":"https://sts.amazonaws.com/\u0000/\u00ff","method":"G\u0000T"}' \
		-- goman-sign
	check_output --per-line
	assert_equal "$rc" 65
	good_records_are ".ok"
}

@test "hostile lines: goman-api writes one sane record per line and exits 65" {
	hostile_run '{"service":"sts","action":"GetCallerIdentity"}' \
		'{"n":"h-evdl","service":"ec2","action":"DescribeRegions","eventual_deadline_ms":9223372036854774784}' \
		'{"n":"h-params","service":"ssm","action":"GetParameter","params":{"Name":"x"}}' \
		'{"n":"h-hdr","service":"s3","action":"ListBuckets","method":"GET","headers":{"X-A":"b\r\nX-I: y"}}' \
		-- goman-api --jobs 2
	check_output --per-line
	assert_equal "$rc" 65
	good_records_are ".ok"
}

@test "hostile lines: goman-provision --dry-run writes one sane record per line and exits 65" {
	hostile_run '{"cluster":"hx","role":"server"}' \
		'{"n":"h-idx","cluster":"hx","role":"agent","index":1e300}' \
		'{"n":"h-tag","cluster":"hx","role":"agent","tags":{"k\u0000":"\u0000"}}' \
		-- goman-provision --dry-run --timeout 10s --poll-interval 100ms
	check_output --per-line
	assert_equal "$rc" 65
	good_records_are ".provision.ok"
}

@test "hostile lines: goman-install writes one sane record per line and exits 65" {
	hostile_run '{"cluster":"hx","role":"agent","index":IDX,"name":"hx-agent-IDX","instance_id":"i-0123456789abcdef0","private_ip":"10.0.0.5"}' \
		'{"n":"h-noinst","cluster":"hx","role":"agent","index":5,"name":"hx-agent-5"}' \
		'{"n":"h-idx","cluster":"hx","role":"agent","index":1e300,"instance_id":"i-0123456789abcdef0"}' \
		'{"n":"h-ip","cluster":"hx","role":"agent","index":7,"name":"hx-agent-7","instance_id":"i-0123456789abcdef0","private_ip":"10.0.0.5\nExecStart=/bin/sh -c id\nX="}' \
		-- goman-install --server-url https://10.0.0.1:6443 --timeout 5s --delivery-timeout 1s \
		--poll-interval 100ms --batch-window 50ms --no-verify --no-kubeconfig
	check_output --per-line
	assert_equal "$rc" 65
	good_records_are ".install.ok"
}

@test "hostile lines: goman-batch writes one sane record per line and exits 65" {
	hostile_run '{"instance_id":"i-0123456789abcdef0"}' \
		'{"n":"h-idnum","instance_id":12345}' \
		'{"n":"h-idctl","instance_id":"i-01234567\n89abcdef0"}' \
		-- goman-batch describe --batch-timeout 10s
	check_output --per-line
	assert_equal "$rc" 65
	good_records_are ".batch"
}

@test "hostile lines: goman-metrics --format json counts what it can, writes sane JSON and exits 65" {
	hostile_run '{"event":"api_call","service":"ec2","action":"X","attempt":1,"ms":5,"outcome":"ok"}' \
		'{"n":"h-inf","event":"api_call","service":"ec2","action":"X","ms":1e999}' \
		'{"n":"h-9e18","cluster":"hx","name":"hx-server-0","provision":{"ok":true,"ms":9e18},"install":{"ok":true,"ms":9e18},"ok":true}' \
		'{"n":"h-ready","event":"cluster","cluster":"hx","phase":"ready","nodes_ready":1e300,"nodes":-1e300,"ms":1e999}' \
		-- goman-metrics --format json
	check_output
	assert_equal "$rc" 65
	[ "$(wc -l <"$OUT")" -ge 1 ]
}

@test "hostile lines: goman-fanout -- cat passes good lines once, one record per bad line, exits 65" {
	hostile_run '{"i":IDX}' -- goman-fanout -j 2 -- cat
	# lines are handed to the jobs verbatim: \u0000 is the job's to refuse
	check_output --per-line --keep-nul
	assert_equal "$rc" 65
	good_records_are true
}

@test "hostile lines: goman-idem forget answers each key once, one record per bad line, exits 65" {
	hostile_run '{"id":"000000000000000000000000000000000000000000000000000000000000000IDX"}' \
		'{"n":"h-idnum","id":1e999}' \
		-- goman-idem forget
	check_output --per-line --mark id
	assert_equal "$rc" 65
	[ "$(jq -c 'select(.forgotten == false)' "$OUT" | wc -l)" -eq 3 ]
}

# full_stdout CMD...: one good and one bad line, standard output on /dev/full
full_stdout() {
	local good=$1
	shift
	rc=0
	printf '%s\nnot json\n' "$good" | timeout 60 "$@" >/dev/full 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	if [ "$rc" -ne 74 ]; then
		echo "$1: exit $rc on a full stdout (want 74)"
		tail -5 "$BATS_TEST_TMPDIR/err"
		return 1
	fi
}

@test "a full standard output is exit 74 for every plumbing command" {
	full_stdout '{"url":"https://sts.amazonaws.com/","method":"GET"}' goman-sign
	full_stdout '{"service":"sts","action":"GetCallerIdentity"}' goman-api
	full_stdout '{"cluster":"hx","role":"server"}' goman-provision --dry-run --timeout 10s
	full_stdout '{"cluster":"hx","role":"agent","index":1,"name":"hx-agent-1","instance_id":"i-0123456789abcdef0"}' \
		goman-install --server-url https://10.0.0.1:6443 --timeout 5s --delivery-timeout 1s \
		--poll-interval 100ms --batch-window 50ms --no-verify --no-kubeconfig
	full_stdout '{"instance_id":"i-0123456789abcdef0"}' goman-batch describe
	full_stdout '{"event":"api_call","service":"ec2","action":"X","ms":5}' goman-metrics --format json
	full_stdout '{"i":1}' goman-fanout -- cat
	full_stdout '{"id":"0000000000000000000000000000000000000000000000000000000000000001"}' goman-idem forget
}
