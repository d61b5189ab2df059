#!/usr/bin/env bats
# goman-metrics: KPIs from a recorded stream, Prometheus textfile, --check, --follow.
load helpers

STREAM="$BATS_TEST_DIRNAME/fixtures/metrics/demo-stream.jsonl"

setup_file() { isolate_home; }

@test "goman-metrics: json summary matches the hand-computed KPIs" {
	run -0 goman-metrics --format json <"$STREAM"
	c=$(jq -c '.clusters[0]' <<<"$output")
	[ "$(jq .creation_ms <<<"$c")" = 90000 ]
	[ "$(jq .installation_ms <<<"$c")" = 50000 ]
	[ "$(jq .configuration_ms <<<"$c")" = 10000 ]
	[ "$(jq .nodes <<<"$c")" = 3 ]
	[ "$(jq .success_pct <<<"$c")" = 66.67 ]
	[ "$(jq .health.retry_pct <<<"$output")" = 25 ]
}

@test "goman-metrics: --export is the seed's spelling of --format json" {
	run -0 goman-metrics --export <"$STREAM"
	jq -e '.clusters[0].cluster == "demo"' <<<"$output"
}

@test "goman-metrics: the table names every KPI of the seed" {
	run -0 goman-metrics <"$STREAM"
	for k in "creation time" "installation time" "configuration time" "success rate" \
		"parallel efficiency" "schedule efficiency" "retry rate" "idempotency hit rate" \
		"throughput ops/min" "ec2 DescribeInstances"; do
		assert_output --partial "$k"
	done
}

@test "goman-metrics: promtool accepts the textfile, written atomically" {
	command -v promtool >/dev/null || skip "promtool (Debian prometheus) not installed"
	prom="$BATS_TEST_TMPDIR/goman.prom"
	run -0 goman-metrics --format prom --prom-file "$prom" <"$STREAM"
	run -0 promtool check metrics <"$prom"
	grep -q '^goman_cluster_creation_seconds{cluster="demo"} 90$' "$prom"
	# no temp file left beside it
	[ "$(ls "$BATS_TEST_TMPDIR")" = goman.prom ]
}

@test "goman-metrics: --check fails with one line per breach" {
	run -1 goman-metrics --check --format json <"$STREAM"
	assert_line "success rate 66.7% <= target 99.0% (cluster demo)"
	assert_line "breaker ec2/us-east-1 is open"
	assert_line "retry rate 25.0% >= target 5.0%"
	assert_line --partial "parallel efficiency 64.8%"
}

@test "goman-metrics: --check passes a stream within loosened targets" {
	run -0 goman-metrics --check --target-success 50 --target-efficiency 50 \
		--target-retry 30 --no-breaker-alert --format json <"$STREAM"
	refute_output --partial "target"
}

@test "goman-metrics: malformed lines are skipped with their line number, exit 65" {
	run -65 bash -c "{ head -3 '$STREAM'; echo 'not json'; tail -n +4 '$STREAM'; } | goman-metrics --format json 2>&1"
	assert_output --partial "skipped line 4"
	assert_output --partial '"creation_ms":90000'
}

@test "goman-metrics: --follow reads a growing file, including a line written in two parts" {
	f="$BATS_TEST_TMPDIR/events.jsonl"
	: >"$f"
	goman-metrics --follow "$f" --format json >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	head -8 "$STREAM" >>"$f"
	sleep 0.5
	line=$(sed -n 9p "$STREAM")
	printf '%s' "${line:0:40}" >>"$f"
	sleep 0.5
	printf '%s\n' "${line:40}" >>"$f"
	tail -n +10 "$STREAM" >>"$f"
	sleep 0.7
	kill -TERM "$pid"
	wait "$pid"
	jq -e '.clusters[0].creation_ms == 90000 and .health.api_calls == 4' "$BATS_TEST_TMPDIR/out"
}

@test "goman-metrics: usage errors exit 64" {
	run -64 goman-metrics --format xml
	run -64 goman-metrics --target-creation soon
	run -0 goman-metrics --help
	assert_output --partial "usage: goman-metrics"
}

@test "goman-metrics: NaN, infinite and huge numbers in flags are usage errors" {
	for v in nan inf 1e999 -5m 0x10s; do
		run -64 goman-metrics --target-creation "$v" </dev/null
	done
	for v in nan inf -1 101; do
		run -64 goman-metrics --target-success "$v" </dev/null
	done
	for v in 4294967297 5x 0; do
		run -64 goman-metrics --concurrency "$v" </dev/null
	done
}

@test "goman-metrics: infinite and huge numbers in lines give a finite summary" {
	run -0 goman-metrics --format json <<-'EOF2'
	{"event":"api_call","service":"ec2","action":"X","ms":1e999}
	{"event":"api_call","service":"ec2","action":"X","ms":-1e999}
	{"cluster":"c","name":"s","role":"server","ok":true,"provision":{"ms":9e18},"install":{"ms":9e18},"t":{"launched":"2026-01-01T10:00:00Z","installed":"2026-01-01T10:01:00Z"}}
	{"event":"cluster","cluster":"c","phase":"ready","ts":"2026-01-01T10:02:00Z","nodes_ready":1e300}
	EOF2
	jq -e '.health.latency[0].count == 2 and .clusters[0].nodes_ready >= 0 and
		.clusters[0].parallel_efficiency_pct > 0' <<<"$output"
	run -0 goman-metrics --format prom <<<'{"event":"api_call","service":"ec2","action":"X","ms":1e308}'
	refute_output --partial "inf"
}

@test "goman-metrics: parallel efficiency stays within 100 % when more nodes provision at once than there are slots" {
	# four nodes provision together for 60 s, then install one after another (concurrency 1):
	# summing durations said (4 x 60 + 4 x 15) / (120 x 1) = 250 %
	run -0 goman-metrics --format json --concurrency 1 <<-'EOF2'
	{"cluster":"c","name":"s","role":"server","ok":true,"provision":{"ms":60000},"install":{"ms":15000},"t":{"launched":"2026-01-01T10:00:00Z","installed":"2026-01-01T10:01:15Z"}}
	{"cluster":"c","name":"a1","role":"agent","ok":true,"provision":{"ms":60000},"install":{"ms":15000},"t":{"launched":"2026-01-01T10:00:00Z","installed":"2026-01-01T10:01:30Z"}}
	{"cluster":"c","name":"a2","role":"agent","ok":true,"provision":{"ms":60000},"install":{"ms":15000},"t":{"launched":"2026-01-01T10:00:00Z","installed":"2026-01-01T10:01:45Z"}}
	{"cluster":"c","name":"a3","role":"agent","ok":true,"provision":{"ms":60000},"install":{"ms":15000},"t":{"launched":"2026-01-01T10:00:00Z","installed":"2026-01-01T10:02:00Z"}}
	EOF2
	# the one slot held work all 120 s
	assert_equal "$(jq .clusters[0].parallel_efficiency_pct <<<"$output")" 100
	run -0 goman-metrics --format json --concurrency 3 <"$STREAM"
	jq -e '.clusters[0].parallel_efficiency_pct <= 100' <<<"$output"
}

@test "goman-metrics: the summary counts the calls and retries of the lines it is given, as create feeds it" {
	# create feeds the run's node records, then the run's own events file (not the state file)
	run -0 goman-metrics --format json < <(grep -v '"event"' "$STREAM"; grep '"event"' "$STREAM")
	calls=$(grep -c '"event":"api_call"' "$STREAM")
	retries=$(grep -c '"event":"retry"' "$STREAM")
	assert_equal "$(jq -c '[.health.api_calls, .health.retries]' <<<"$output")" "[$calls,$retries]"
	run -0 goman-metrics < <(grep -v '"event"' "$STREAM"; grep '"event"' "$STREAM")
	assert_output --partial "($retries of $calls calls)"
}
