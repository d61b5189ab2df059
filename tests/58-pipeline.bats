#!/usr/bin/env bats
# goman-provision ... | goman-install --via ssm: the pipeline streams. moto (signature
# checking on) behind the fault proxy, whose delay model makes provisioning take seconds and
# nodes reach running at different times: every instance reads "pending" for 3 s after its
# launch, and the second RunInstances to reach the proxy is answered 4 s after the first.
# Agents need the first server's address, so the claim is about runs where the server's
# group was the prompt one: goman-provision sends the server group first, but both are in
# flight at once, so a run where the server's group still drew the delay is repeated with a
# new cluster name (at most 5 runs). SSM sees the
# instances unregistered for 1 s (InvalidInstanceId) and each command InProgress for 1 s.
load helpers
load fixtures/fault_proxy
bats_require_minimum_version 1.5.0

setup_file() { cluster_env_start '{}'; }
teardown_file() { cluster_env_stop; }

setup() {
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events.jsonl"
}

# epoch ms of the RFC 3339 times on stdin, one a line
to_ms() {
	"$LOCAL_AWS_PYTHON" -c '
import sys, datetime as d
for l in sys.stdin:
    l = l.strip()
    if l:
        print(int(d.datetime.strptime(l, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=d.timezone.utc).timestamp() * 1000))'
}

@test "pipeline: goman-provision | goman-install --via ssm on 20 nodes: installs start before provisioning ends" {
	local try server_running last_running
	for try in 1 2 3 4 5; do
		fault_proxy_config '{"pending_s":3,"registration_s":1,"invocation_s":1,
			"sequence":["forward","delay:4000"],"match":["RunInstances"],"reset_stats":true}' >/dev/null
		goman-provision --cluster "pipe$try" --servers 1 --agents 19 --poll-interval 200ms --poll-max 1s \
			2>"$BATS_TEST_TMPDIR/prov.err" |
			goman-install --via ssm --poll-interval 250ms --poll-floor 500ms --batch-window 200ms \
				--delivery-timeout 30s --timeout 60s --k3s-version v1.31.4+k3s1 \
				>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/inst.err"
		jq -r '.t.running // empty' "$BATS_TEST_TMPDIR/out" | to_ms | sort -n >"$BATS_TEST_TMPDIR/running"
		last_running=$(tail -n 1 "$BATS_TEST_TMPDIR/running")
		server_running=$(jq -r 'select(.role == "server") | .t.running // empty' "$BATS_TEST_TMPDIR/out" | to_ms)
		[ -n "$server_running" ] && [ -n "$last_running" ] || break
		[ "$server_running" -lt $((last_running - 2000)) ] && break
		echo "# run $try: the server's group drew the delay; again" >&3
	done
	run -0 cat "$BATS_TEST_TMPDIR/out"
	[ "${#lines[@]}" -eq 20 ] || { cat "$BATS_TEST_TMPDIR/prov.err" "$BATS_TEST_TMPDIR/inst.err" >&2; false; }
	[ "$server_running" -lt $((last_running - 2000)) ] ||
		{ echo "the server was never among the first nodes running in $try runs" >&2; false; }
	# one record per node, provisioned and installed, both stages' times in it
	jq -e -s 'length == 20 and all(.ok and .provision and .install.ok and .install.via == "ssm" and
		.t.running and .t.install_start and .t.installed) and
		(map(.name) | unique | length == 20) and
		(map(select(.role == "server")) | length == 1)' "$BATS_TEST_TMPDIR/out"
	# nodes reached running at different times (the delay model worked): the server seconds
	# before the last agent (checked above)
	# ... and the earliest install started well before the last node was running: no barrier
	jq -r '.t.install_start' "$BATS_TEST_TMPDIR/out" | to_ms | sort -n >"$BATS_TEST_TMPDIR/starts"
	first_start=$(head -n 1 "$BATS_TEST_TMPDIR/starts")
	[ "$first_start" -lt $((last_running - 1500)) ] ||
		{ echo "first install start $first_start, last running $last_running" >&2; false; }
	# the same from install.ms: t.installed - install.ms is the start
	jq -r '.t.installed' "$BATS_TEST_TMPDIR/out" | to_ms >"$BATS_TEST_TMPDIR/done"
	jq -r '.install.ms' "$BATS_TEST_TMPDIR/out" | paste "$BATS_TEST_TMPDIR/done" - |
		awk '{ printf "%d\n", $1 - $2 }' | sort -n | head -n 1 >"$BATS_TEST_TMPDIR/start2"
	[ "$(cat "$BATS_TEST_TMPDIR/start2")" -lt $((last_running - 1500)) ]
	# the first server's install went out with its private IP, the agents joined it
	ip0=$(jq -r 'select(.role == "server") | .private_ip' "$BATS_TEST_TMPDIR/out")
	jq -e -s --arg u "https://$ip0:6443" 'map(select(.role == "agent") | .install.server_url == $u) |
		length == 19 and all' "$BATS_TEST_TMPDIR/out"
	# the 19 agents did not each get a SendCommand: arrivals close together share one (the
	# log holds what reached moto, not the InvalidInstanceId answers of the delay model)
	sends=$(fault_proxy_get log | jq '[.[] | select(.action == "SendCommand")] | length')
	[ "$sends" -lt 19 ] || { echo "$sends SendCommands" >&2; false; }
}
