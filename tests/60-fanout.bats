#!/usr/bin/env bats
# goman-fanout: whole lines, order, timeouts, retries, halt, batch, joblog, bad input, signals.
# Job scripts are written into the test's own temp dir; nothing here needs the AWS endpoint.

load helpers

setup_file() {
	isolate_home
	J="$BATS_FILE_TMPDIR/jobs"
	mkdir -p "$J"
	# echo the input after a delay that shrinks with i, so later lines finish first
	cat >"$J/slow-first.sh" <<'EOF'
#!/bin/sh
read -r line
i=$(printf '%s' "$line" | sed 's/.*"i":\([0-9]*\).*/\1/')
sleep "0.$((9 - i % 10))"
printf '%s\n' "$line"
EOF
	# exits 75 the first time it sees an input, succeeds after (state file per input)
	cat >"$J/tempfail-once.sh" <<'EOF'
#!/bin/sh
read -r line
i=$(printf '%s' "$line" | sed 's/.*"i":\([0-9]*\).*/\1/')
st="$STATE/seen-$i"
if [ ! -e "$st" ]; then : >"$st"; exit 75; fi
printf '{"i":%s,"done":true}\n' "$i"
EOF
	# sleeps past the timeout the first time, answers at once after
	cat >"$J/slow-once.sh" <<'EOF'
#!/bin/sh
read -r line
st="$STATE/slow-once"
if [ ! -e "$st" ]; then : >"$st"; sleep 30; fi
printf '%s\n' "$line"
EOF
	# fails when i is a multiple of $MOD
	cat >"$J/fail-mod.sh" <<'EOF'
#!/bin/sh
read -r line
i=$(printf '%s' "$line" | sed 's/.*"i":\([0-9]*\).*/\1/')
[ $((i % MOD)) -eq 0 ] && exit 3
printf '%s\n' "$line"
EOF
	# ignores TERM, so only KILL ends it; records its pid
	cat >"$J/stubborn.sh" <<'EOF'
#!/bin/sh
trap '' TERM
echo $$ >>"$STATE/pids"
sleep 30 &
echo $! >>"$STATE/pids"
wait
EOF
	chmod +x "$J"/*.sh
	export J
}

setup() {
	export STATE="$BATS_TEST_TMPDIR/state"
	mkdir -p "$STATE"
}

lines() { # n [first] -> {"i":first} .. n lines
	seq "${2:-0}" $((${2:-0} + $1 - 1)) | sed 's/.*/{"i":&}/'
}

gone() { # pid: exited (a zombie whose parent is a non-reaping init counts as gone)
	local s
	s=$(ps -o stat= -p "$1" || true)
	[ -z "$s" ] || [[ "$s" == Z* ]]
}

@test "goman-fanout: 10,000 lines through -j 8 cat lose none and interleave none (70 KB lines)" {
	python3 -c '
import sys
for i in range(10000):
    n = 70000 if i % 100 == 0 else (i * 37) % 300
    sys.stdout.write("{\"i\":%d,\"n\":%d,\"pad\":\"%s\"}\n" % (i, n, chr(97 + i % 26) * n))
' >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr goman-fanout -j 8 -- cat <"$BATS_TEST_TMPDIR/in"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	run -0 python3 -c '
import json, sys
seen = set()
for l in open(sys.argv[1]):
    o = json.loads(l)
    assert len(o["pad"]) == o["n"], o["i"]
    assert o["pad"] == chr(97 + o["i"] % 26) * o["n"], o["i"]
    assert o["i"] not in seen, o["i"]
    seen.add(o["i"])
assert seen == set(range(10000)), len(seen)
print(len(seen))' "$BATS_TEST_TMPDIR/out"
	assert_output 10000
}

@test "goman-fanout: --keep-order writes in input order though later jobs finish first" {
	run -0 --separate-stderr goman-fanout -j 10 --keep-order -- "$J/slow-first.sh" < <(lines 20)
	assert_equal "$output" "$(lines 20)"
	# and without it the order follows completion (line 0 sleeps 0.9 s, line 9 not at all)
	run -0 --separate-stderr goman-fanout -j 2 -- "$J/slow-first.sh" < <(printf '{"i":0}\n{"i":9}\n')
	assert_equal "${lines[0]}" '{"i":9}'
}

@test "goman-fanout: a job past --timeout is TERMed and becomes a JobTimeout error record" {
	SECONDS=0
	run -1 --separate-stderr goman-fanout -j 2 --timeout 300ms --grace 200ms -- sleep 30 <<<'{"name":"a"}'
	[ "$SECONDS" -lt 10 ]
	run -0 jq -c '[.name, .ok, .fanout.error.code, .fanout.error.class, .fanout.timed_out, .fanout.signal]' <<<"$output"
	assert_output '["a",false,"JobTimeout","timeout",true,15]'
	assert_equal "${stderr_lines[-1]}" "goman-fanout: 1 of 1 jobs failed"
}

@test "goman-fanout: a job that ignores TERM is KILLed after the grace period, children too" {
	SECONDS=0
	run -1 --separate-stderr goman-fanout --timeout 300ms --grace 300ms -- "$J/stubborn.sh" <<<'{"i":1}'
	[ "$SECONDS" -lt 10 ]
	run -0 jq -c '[.fanout.error.code, .fanout.signal]' <<<"$output"
	assert_output '["JobTimeout",9]'
	sleep 0.2
	while read -r pid; do gone "$pid"; done <"$STATE/pids"
}

@test "goman-fanout: --retries re-runs a job that exited 75 before writing anything" {
	run -0 --separate-stderr goman-fanout -j 3 --retries 2 --retry-delay 10ms -- "$J/tempfail-once.sh" < <(lines 5)
	assert_equal "$(sort <<<"$output")" "$(for i in 0 1 2 3 4; do echo "{\"i\":$i,\"done\":true}"; done)"
	[[ "$stderr" == *"[RETRY]"* ]]
	# without --retries the exit 75 is an error record, retryable
	rm -f "$STATE"/seen-*
	run -1 --separate-stderr goman-fanout -j 3 -- "$J/tempfail-once.sh" <<<'{"i":7}'
	run -0 jq -c '[.i, .fanout.error.code, .fanout.error.retryable, .fanout.exit]' <<<"$output"
	assert_output '[7,"JobTempFail",true,75]'
}

@test "goman-fanout: --retries re-runs a job that timed out" {
	run -0 --separate-stderr goman-fanout --timeout 500ms --grace 100ms --retries 1 --retry-delay 10ms -- "$J/slow-once.sh" <<<'{"i":1}'
	assert_output '{"i":1}'
}

@test "goman-fanout: a job that wrote a record then exited 75 is not retried and keeps it" {
	run -1 --separate-stderr goman-fanout --retries 3 -- sh -c 'cat; exit 75' <<<'{"i":1}'
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[0]}" '{"i":1}'
	run -0 jq -c '[.fanout.error.code, .fanout.attempts, .fanout.lines_out]' <<<"${lines[1]}"
	assert_output '["JobTempFail",1,1]'
}

@test "goman-fanout: --halt soon,fail=10% stops a run where 20% fail" {
	MOD=5 run -75 --separate-stderr goman-fanout -j 2 --halt soon,fail=10% -- "$J/fail-mod.sh" < <(lines 100)
	n=$(printf '%s\n' "$output" | grep -c .)
	[ "$n" -lt 100 ]
	[[ "${stderr_lines[-1]}" == "goman-fanout: halted: "* ]]
	# every job that ran answered: a line or an error record, never both, never twice
	run -0 jq -s 'map(.i) | length == (unique | length)' <<<"$output"
	assert_output true
}

@test "goman-fanout: --halt soon,fail=10% lets a run with 5% failures finish" {
	# lines 1..100: failures at 20, 40, ... so the rate never reaches 10%
	MOD=20 run -1 --separate-stderr goman-fanout -j 2 --halt soon,fail=10% -- "$J/fail-mod.sh" < <(lines 100 1)
	assert_equal "$(printf '%s\n' "$output" | grep -c .)" 100
	assert_equal "$(printf '%s\n' "$output" | grep -c '"ok":false')" 5
	assert_equal "${stderr_lines[-1]}" "goman-fanout: 5 of 100 jobs failed"
}

@test "goman-fanout: --halt now,fail=1 kills the running jobs" {
	SECONDS=0
	run -75 --separate-stderr goman-fanout -j 4 --grace 200ms --halt now,fail=1 -- \
		sh -c 'read -r l; case "$l" in *'"'"'"i":0'"'"'*) exit 1;; esac; sleep 30' < <(lines 8)
	[ "$SECONDS" -lt 10 ]
	run -0 jq -sc 'map(.fanout.error.code) | sort | unique' <<<"$output"
	assert_output '["Halted","JobFailed"]'
}

@test "goman-fanout: --batch 3 hands three lines to each job" {
	run -0 --separate-stderr goman-fanout -j 2 --keep-order --batch 3 -- \
		sh -c 'n=$(wc -l); printf "{\"n\":%d}\n" "$n"' < <(lines 10)
	assert_equal "$output" "$(printf '{"n":3}\n{"n":3}\n{"n":3}\n{"n":1}')"
}

@test "goman-fanout: a failed batch yields one error record per input line" {
	run -1 --separate-stderr goman-fanout --batch 2 -- false < <(lines 3)
	run -0 jq -sc 'sort_by(.i) | map([.i, .fanout.error.code, .fanout.batch_index // null])' <<<"$output"
	assert_output '[[0,"JobFailed",0],[1,"JobFailed",1],[2,"JobFailed",null]]'
}

@test "goman-fanout: --joblog writes GNU parallel's columns, one row per job" {
	run -0 --separate-stderr goman-fanout -j 2 --joblog "$BATS_TEST_TMPDIR/log" -- cat < <(lines 3)
	run -0 head -1 "$BATS_TEST_TMPDIR/log"
	assert_output "$(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand')"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/log")" 4
	run -0 awk -F'\t' 'NR > 1 { print NF, $5, $6, $7, $8, $9 }' "$BATS_TEST_TMPDIR/log"
	assert_equal "${lines[0]}" "9 8 8 0 0 cat"
	assert_equal "$(cut -f1 "$BATS_TEST_TMPDIR/log" | tail -n +2 | sort -n | tr '\n' ' ')" "1 2 3 "
}

@test "goman-fanout: joblog records a failed job's exit value" {
	run -1 --separate-stderr goman-fanout --joblog "$BATS_TEST_TMPDIR/log" -- sh -c 'exit 4' <<<'{"i":1}'
	run -0 awk -F'\t' 'NR == 2 { print $7, $8 }' "$BATS_TEST_TMPDIR/log"
	assert_output "4 0"
}

@test "goman-fanout: a line that is not JSON becomes a BadInput record, exit 65" {
	run -65 --separate-stderr goman-fanout --keep-order -- cat < <(printf '{"i":1}\nnot json\n{"i":2}\n')
	assert_equal "${lines[0]}" '{"i":1}'
	assert_equal "${lines[2]}" '{"i":2}'
	run -0 jq -c '[.fanout.error.code, .fanout.error.line, .fanout.input]' <<<"${lines[1]}"
	assert_output '["BadInput",2,"not json"]'
}

@test "goman-fanout: --raw passes lines that are not JSON" {
	run -0 --separate-stderr goman-fanout --raw --keep-order -- cat < <(printf 'a b\nc\n')
	assert_output "$(printf 'a b\nc')"
}

@test "goman-fanout: a silent job adds nothing; --pass echoes its input with ok:true" {
	run -0 --separate-stderr goman-fanout -- true <<<'{"i":1,"ok":false}'
	assert_output ''
	run -0 --separate-stderr goman-fanout --pass -- true <<<'{"i":1,"ok":false}'
	assert_output '{"i":1,"ok":true}'
}

@test "goman-fanout: usage errors exit 64" {
	run -64 goman-fanout
	run -64 goman-fanout -j 0 -- cat
	run -64 goman-fanout --halt sometimes -- cat
	run -64 goman-fanout --timeout 5parsecs -- cat
	run -0 goman-fanout --help
	[[ "$output" == usage:* ]]
}

@test "goman-fanout: a command that cannot be run is a SpawnFailed record per job" {
	run -1 --separate-stderr goman-fanout -- /nonexistent/cmd <<<'{"i":1}'
	run -0 jq -c '[.i, .fanout.error.code, .fanout.error.class]' <<<"$output"
	assert_output '[1,"SpawnFailed","start"]'
}

@test "goman-fanout: SIGTERM stops the run and kills the running jobs" {
	goman-fanout -j 3 --grace 200ms -- "$J/stubborn.sh" < <(lines 3) >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ "$(cat "$STATE/pids" 2>/dev/null | wc -l)" = 6 ] && break; sleep 0.1; done
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	sleep 0.2
	while read -r p; do gone "$p"; done <"$STATE/pids"
	assert_equal "$(grep -c '"Interrupted"' "$BATS_TEST_TMPDIR/out")" 3
}

@test "goman-fanout: -j auto cuts concurrency when jobs exit 75, grows it while they succeed" {
	run -0 --separate-stderr goman-fanout -j auto --retries 3 --retry-delay 10ms -- "$J/tempfail-once.sh" < <(lines 12)
	assert_equal "$(printf '%s\n' "$output" | grep -c '"done":true')" 12
	[[ "$stderr" == *"[PARALLEL] concurrency 3 -> 1 (a job exited 75)"* ]]
	GOMAN_ENV=high-volume run -0 --separate-stderr goman-fanout -j auto --max-jobs 12 -- \
		sh -c 'cat >/dev/null; echo "{\"error\":{\"class\":\"throttling\"}}"' < <(lines 4)
	[[ "$stderr" == *"concurrency 10 -> 5 (a job reported throttling)"* ]]
	run -0 --separate-stderr goman-fanout -j auto -- true < <(lines 30)
	[[ "$stderr" == *"concurrency 3 -> 4 (jobs succeed)"* ]]
	[[ "${stderr_lines[-1]}" == "[PARALLEL] 30 jobs: 30 ok"*"efficiency "* ]]
}

@test "goman-fanout: -j auto sees a throttling record split across writes or spaced out" {
	# half a record, a pause (so it arrives in two reads), then the rest
	GOMAN_ENV=high-volume run -0 --separate-stderr goman-fanout -j auto --max-jobs 12 -- \
		sh -c 'cat >/dev/null; printf "{\"error\":{\"cla"; sleep 0.3; printf "ss\":\"throttling\"}}\n"' < <(lines 1)
	assert_equal "$output" '{"error":{"class":"throttling"}}'
	[[ "$stderr" == *"concurrency 10 -> 5 (a job reported throttling)"* ]]
	# the spacing of another JSON writer, on stderr
	GOMAN_ENV=high-volume run -0 --separate-stderr goman-fanout -j auto --max-jobs 12 -- \
		sh -c 'cat >/dev/null; printf "{ \"error\": { \"class\": \"throttling\" } }\n" >&2' < <(lines 1)
	[[ "$stderr" == *"concurrency 10 -> 5 (a job reported throttling)"* ]]
	# the word alone is not a throttling record
	GOMAN_ENV=high-volume run -0 --separate-stderr goman-fanout -j auto --max-jobs 12 -- \
		sh -c 'cat >/dev/null; echo "{\"note\":\"\\\"class\\\":\\\"throttling\\\"\"}"' < <(lines 1)
	[[ "$stderr" != *"a job reported throttling"* ]]
}

@test "goman-fanout: a write error on stdout ends the run with an error" {
	run -74 bash -c 'printf "{\"i\":1}\n" | goman-fanout -- cat >/dev/full'
	assert_output --partial "write to stdout"
}

@test "goman-fanout: --bar draws on a terminal only, and appends a fanout event to GOMAN_EVENTS" {
	lines 30 >"$BATS_TEST_TMPDIR/in"
	GOMAN_EVENTS="$BATS_TEST_TMPDIR/ev" run -0 --separate-stderr goman-fanout --bar -j 4 -- true <"$BATS_TEST_TMPDIR/in"
	refute [ "$stderr" = "" ]
	[[ "$stderr" != *"done,"* ]]
	run -0 jq -c '[.event, .cmd, .jobs, .ok_jobs, .slots]' "$BATS_TEST_TMPDIR/ev"
	assert_output '["fanout","goman-fanout",30,30,4]'
	command -v script >/dev/null || skip "script(1) not installed"
	run -0 script -qc "goman-fanout --bar -j 4 -- true <'$BATS_TEST_TMPDIR/in'" /dev/null
	assert_output --partial "100% 30 done, 0 running, 0 failed"
}

@test "goman-fanout: --timeout, --grace and --retry-delay read goman(7)'s one duration grammar (1h30m, 0)" {
	run -0 --separate-stderr goman-fanout --timeout 1h30m --grace 1m30s --retry-delay 0 -- cat <<<'{"i":1}'
	assert_output '{"i":1}'
}
