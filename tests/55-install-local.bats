#!/usr/bin/env bats
# goman-install --via local end to end: the real scripts/k3s-install.sh under --prefix with
# --no-services against the loopback mirror serving the fake k3s; the token from
# --token-file goes to the script on stdin only.

load helpers
bats_require_minimum_version 1.5.0
# shellcheck source=fixtures/sshd.bash
. "$ROOT/tests/fixtures/sshd.bash"

V=v1.31.4+k3s1
TOKEN_TEXT=K10goman-local-token-5e1f::server:77ab

setup_file() {
	isolate_home
	mirror_start "$BATS_FILE_TMPDIR/mirror" "$V"
	printf '%s\n' "$TOKEN_TEXT" >"$BATS_FILE_TMPDIR/token"
	chmod 600 "$BATS_FILE_TMPDIR/token"
}

teardown_file() { mirror_stop "$BATS_FILE_TMPDIR/mirror"; }

setup() {
	P="$BATS_TEST_TMPDIR/root"
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events"
}

install_local() {
	goman-install --via local --token-file "$BATS_FILE_TMPDIR/token" --prefix "$P" --no-services \
		--mirror "$MIRROR" --k3s-version "$V" --verify-wait 2s "$@"
}

node() { printf '{"cluster":"box","name":"box-%s-%d","role":"%s","index":%d,"mine":"kept"}\n' "$1" "$2" "$1" "$2"; }

@test "goman-install: --via local installs a single-box server end to end" {
	run -0 --separate-stderr install_local < <(node server 0)
	[ "${#lines[@]}" -eq 1 ]
	r=${lines[0]}
	jq -e '.ok and .install.ok and .install.via == "local" and .install.verified and
		.install.k3s_version == "'"$V"'" and .install.skipped == false and .install.progress == 100 and
		.install.mode == "first-server" and .mine == "kept" and (.install.ms >= 0) and
		(.t.installed | test("^[0-9T:.-]+Z$"))' <<<"$r"
	cmp "$P/usr/local/bin/k3s" "$BATS_FILE_TMPDIR/mirror/files/$V/k3s"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	[ "$(stat -c %a "$P/etc/rancher/k3s/goman-token")" = 600 ]
	# progress streamed live as [INSTALL] lines, in order
	[ "$(grep -o 'box-server-0: [0-9]*%' <<<"$stderr" | tr '\n' ' ')" = "box-server-0: 25% box-server-0: 50% box-server-0: 75% box-server-0: 100% " ]
	# verified from the first server: the cluster event counts the Ready nodes
	jq -e -s 'map(select(.event == "cluster")) | length == 1 and .[0].nodes_ready == 1 and
		.[0].verified and .[0].cluster == "box"' "$GOMAN_EVENTS"
	if grep -q "$TOKEN_TEXT" <<<"$output$stderr"; then echo "token leaked" >&2; return 1; fi
}

@test "goman-install: a re-run is cheap: skipped download" {
	run -0 --separate-stderr install_local < <(node server 0)
	run -0 --separate-stderr install_local < <(node server 0)
	jq -e '.install.ok and .install.skipped' <<<"${lines[0]}"
}

@test "goman-install: server + agents locally; agents join the first server's address" {
	run -0 --separate-stderr install_local < <(node server 0; node agent 0; node agent 1)
	[ "${#lines[@]}" -eq 3 ]
	jq -e -s 'all(.install.ok) and ([.[] | select(.role == "agent") | .install.server_url] ==
		["https://127.0.0.1:6443", "https://127.0.0.1:6443"])' <<<"$output"
	grep -q '"--server" "https://127.0.0.1:6443"' "$P/etc/systemd/system/k3s-agent.service"
}

@test "goman-install: a failing script is a record with its class (checksum), exit 1" {
	touch "$BATS_FILE_TMPDIR/mirror/files/.tamper"
	run -1 --separate-stderr install_local < <(node server 0)
	rm -f "$BATS_FILE_TMPDIR/mirror/files/.tamper"
	jq -e '.ok == false and .install.ok == false and .install.error.class == "checksum" and
		.install.error.code == "ChecksumMismatch" and (.install.log_tail | length > 0)' <<<"${lines[0]}"
	[ ! -e "$P/usr/local/bin/k3s" ]
}

@test "goman-install: --wait-server holds agents until the first server is done" {
	run -0 --separate-stderr install_local --wait-server < <(node agent 0; node server 0)
	s=$(jq -r 'select(.role == "server") | .t.installed' <<<"$output")
	a=$(jq -r 'select(.role == "agent") | .t.installed' <<<"$output")
	[[ "$a" > "$s" ]]
	[ "$(jq -r 'select(.role == "agent") | .install.wait_ms' <<<"$output")" -gt 0 ]
}

@test "goman-install: --concurrency 1 runs one script at a time" {
	run -0 --separate-stderr install_local --concurrency 1 < <(node server 0; node agent 0; node agent 1)
	[ "$(grep -c 'starting (' <<<"$stderr")" -eq 3 ]
	# with one slot, each node waited for the one before it
	jq -e -s '[.[] | .install.wait_ms] | max > 0' <<<"$output"
}

@test "goman-install: --server-url must be https://ADDR:PORT (exit 64)" {
	for url in $'https://10.0.0.5\nExecStart=/bin/sh:6443' https://10.0.0.5 http://10.0.0.5:6443 \
		'https://10.0.0.5:6443 --token x'; do
		run -64 --separate-stderr install_local --server-url "$url" < <(node agent 0)
		[[ "$stderr" == *"--server-url must be https://ADDR:PORT"* ]]
		[ ! -e "$P" ]
	done
	run -0 --separate-stderr install_local < <(node server 0)
}

@test "goman-install: a record's name, labels and taints reach the K3s unit as --node-name/--node-label/--node-taint" {
	run -0 --separate-stderr install_local < <(node server 0 |
		jq -c '.labels = {"tier": "web", "example.com/team": "a"} | .taints = ["dedicated=web:NoSchedule"]')
	jq -e '.install.ok' <<<"${lines[0]}"
	grep -q '"--node-name" "box-server-0" "--node-label" "tier=web" "--node-label" "example.com/team=a" "--node-taint" "dedicated=web:NoSchedule"' \
		"$P/etc/systemd/system/k3s.service"
}

@test "goman-install: a label or taint Kubernetes would refuse is a BadInput record (exit 65); the others install" {
	run -65 --separate-stderr install_local < <(node server 0
		node agent 1 | jq -c '.labels = {"tier": "web;id"}'
		node agent 2 | jq -c '.labels = {"kubernetes.io/role": "x"}'
		node agent 3 | jq -c '.taints = ["a=b:Sometimes"]'
		node agent 4 | jq -c '.taints = "a=b:NoSchedule"'
		node agent 5 | jq -c '.name = "Box_Agent"'
		node agent 0 | jq -c '.labels = {"node.kubernetes.io/pool": "a"}')
	[ "${#lines[@]}" -eq 7 ]
	jq -e -s '[.[] | select(.index >= 1) | .install.error.code] == ["BadInput", "BadInput", "BadInput", "BadInput", "BadInput"]' <<<"$output"
	jq -e -s '[.[] | select(.index == 0) | .install.ok] == [true, true]' <<<"$output"
	grep -q '"--node-label" "node.kubernetes.io/pool=a"' "$P/etc/systemd/system/k3s-agent.service"
	if grep -rq 'web;id\|Sometimes\|Box_Agent\|kubernetes.io/role' "$P/etc/systemd/system"; then echo "a refused value reached a unit" >&2; return 1; fi
}

@test "goman-install --check: good flags print nothing and exit 0, without stdin, AWS or a node" {
	# stdin stays open 20 s: a read of it would outlast the timeout; the endpoint is dead
	AWS_ENDPOINT_URL=http://127.0.0.1:9 run -0 --separate-stderr timeout 10 goman-install --check \
		--via ssm --k3s-version v1.31.4+k3s1 --servers 3 --timeout 5m --tls-san api.example.test \
		< <(sleep 20)
	[ -z "$output" ]
	[ -z "$stderr" ]
	touch "$BATS_TEST_TMPDIR/key"
	run -0 --separate-stderr goman-install --check --via ssh --ssh-key "$BATS_TEST_TMPDIR/key" \
		--channel stable --server-url https://10.0.0.5:6443 --mirror "$MIRROR" </dev/null
	[ -z "$output$stderr" ]
	run -0 --separate-stderr goman-install --check --action drain --drain-timeout 2m --via ssh \
		--server-address 10.0.0.5 </dev/null
	[ -z "$output$stderr" ]
}

@test "goman-install --check: one message per problem, exit 64, nothing on stdout" {
	run -64 --separate-stderr goman-install --check --via ssh --ssh-key "$BATS_TEST_TMPDIR/nokey" \
		--k3s-version 1.31.4 --channel 'Stable!' --server-url http://10.0.0.5:6443 --bogus \
		--servers 0 --timeout 5q --region 'eu west' --script "$BATS_TEST_TMPDIR/noscript" \
		--token-file "$BATS_TEST_TMPDIR/notoken" extra </dev/null
	[ -z "$output" ]
	for m in "unrecognized option '--bogus'" "--servers takes a number from 1 to 99" \
		"bad duration for --timeout" "unexpected argument 'extra'" "--k3s-version '1.31.4' is not a K3s release" \
		"--channel 'Stable!' is not a channel name" "--server-url must be https://ADDR:PORT" \
		"--region 'eu west' is not a region name" "--ssh-key $BATS_TEST_TMPDIR/nokey: not a readable file" \
		"--script $BATS_TEST_TMPDIR/noscript: not a readable file" \
		"--token-file $BATS_TEST_TMPDIR/notoken: not a readable file"; do
		[ "$(grep -cF -- "$m" <<<"$stderr")" -eq 1 ] || { echo "missing: $m" >&2; return 1; }
	done
	[ "$(wc -l <<<"$stderr")" -eq 11 ]
	# without --check the same checks refuse to start: nothing runs
	run -64 --separate-stderr goman-install --via local --k3s-version 1.31.4 < <(node server 0)
	[[ "$stderr" == *"--k3s-version '1.31.4' is not a K3s release"* ]]
	[ -z "$output" ]
	[ ! -e "$P" ]
}

# a server's k3s under $P (the stand-in logs kubectl's argv to kubectl.log beside it)
fake_server() {
	mkdir -p "$P/usr/local/bin"
	cp "$ROOT/tests/fixtures/fake-k3s" "$P/usr/local/bin/k3s"
	chmod 755 "$P/usr/local/bin/k3s"
}

@test "goman-install --action drain: kubectl drain of each record's node runs on the server, records get \"drain\"" {
	fake_server
	run -0 --separate-stderr goman-install --via local --prefix "$P" --action drain --drain-timeout 90s \
		< <(node agent 1; node server 0; node agent 2)
	[ "${#lines[@]}" -eq 3 ]
	jq -e -s 'all(.ok and .drain.ok and .drain.action == "drain" and .drain.via == "local" and
		(.drain.ms >= 0) and .mine == "kept" and (has("install") | not))' <<<"$output"
	[ "$(sort "$P/usr/local/bin/kubectl.log")" = "$(printf '%s\n' \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=90s box-agent-1" \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=90s box-agent-2" \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=90s box-server-0")" ]
	# nothing was installed, no token was asked for
	[ ! -e "$P/etc/systemd/system" ]
}

@test "goman-install --action cordon and uncordon name the node as the install named it" {
	fake_server
	run -0 --separate-stderr goman-install --via local --prefix "$P" --action cordon < <(node agent 3)
	run -0 --separate-stderr goman-install --via local --prefix "$P" --action uncordon < <(node agent 3)
	jq -e '.drain.ok and .drain.action == "uncordon"' <<<"${lines[0]}"
	[ "$(cat "$P/usr/local/bin/kubectl.log")" = "$(printf '%s\n' "kubectl cordon box-agent-3" "kubectl uncordon box-agent-3")" ]
	# the install gave K3s that same name
	run -0 --separate-stderr install_local < <(node server 0; node agent 3)
	grep -q '"--node-name" "box-agent-3"' "$P/etc/systemd/system/k3s-agent.service"
}

@test "goman-install --action drain: a failing kubectl is an error record naming the node and kubectl's error (exit 1)" {
	fake_server
	touch "$P/usr/local/bin/kubectl.fail"
	run -1 --separate-stderr goman-install --via local --prefix "$P" --action drain < <(node agent 4)
	jq -e '.ok == false and .drain.ok == false and .drain.action == "drain" and
		.drain.error.code == "DrainFailed" and
		(.drain.error.message | test("kubectl drain box-agent-4 exited with 1: Error from server \\(NotFound\\)"))' <<<"${lines[0]}"
}

@test "goman-install --action delete: drains then deletes each record's node on the server, records get \"drain\" with action delete" {
	fake_server
	run -0 --separate-stderr goman-install --via local --prefix "$P" --action delete --drain-timeout 90s \
		< <(node agent 1; node server 0; node agent 2)
	[ "${#lines[@]}" -eq 3 ]
	jq -e -s 'all(.ok and .drain.ok and .drain.action == "delete" and .drain.via == "local" and
		(.drain.ms >= 0) and .mine == "kept" and (has("install") | not))' <<<"$output"
	[ "$(grep box-agent-1 "$P/usr/local/bin/kubectl.log")" = "$(printf '%s\n' \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --force --timeout=90s box-agent-1" \
		"kubectl delete node box-agent-1")" ]
	[ "$(grep -c '^kubectl delete node' "$P/usr/local/bin/kubectl.log")" -eq 3 ]
}

@test "goman-install --action delete: a node Kubernetes does not know is already deleted (ok); a refused drain deletes nothing (exit 1)" {
	fake_server
	touch "$P/usr/local/bin/kubectl.fail"
	run -0 --separate-stderr goman-install --via local --prefix "$P" --action delete < <(node agent 5)
	jq -e '.ok and .drain.ok and .drain.action == "delete"' <<<"${lines[0]}"
	rm "$P/usr/local/bin/kubectl.fail"
	touch "$P/usr/local/bin/kubectl.refuse"
	run -1 --separate-stderr goman-install --via local --prefix "$P" --action delete < <(node agent 6)
	jq -e '.ok == false and .drain.action == "delete" and .drain.error.code == "DeleteFailed" and
		(.drain.error.message | test("kubectl delete box-agent-6 exited with 1: error: cannot evict"))' <<<"${lines[0]}"
	run ! grep -q "^kubectl delete" "$P/usr/local/bin/kubectl.log"
}

@test "goman-install: the verify step names the installed nodes that are not Ready (event not_ready, log line)" {
	mkdir -p "$P/usr/local/bin"
	printf '%s\n' "box-server-0 Ready" "box-agent-0 NotReady" >"$P/usr/local/bin/nodes"
	run -0 --separate-stderr install_local < <(node server 0; node agent 0; node agent 1)
	jq -e -s 'map(select(.event == "cluster")) | length == 1 and .[0].verified and
		.[0].nodes_ready == 1 and .[0].nodes_ok == 3 and
		.[0].not_ready == ["box-agent-0", "box-agent-1"]' "$GOMAN_EVENTS"
	grep -q "cluster box ready: 1 of 3 nodes Ready; not Ready: box-agent-0, box-agent-1" <<<"$stderr"
	# all Ready: an empty list, not a missing key
	printf '%s\n' "box-server-0 Ready" >"$P/usr/local/bin/nodes"
	rm -f "$GOMAN_EVENTS"
	run -0 --separate-stderr install_local < <(node server 0)
	jq -e -s 'map(select(.event == "cluster")) | .[0].nodes_ready == 1 and .[0].not_ready == []' "$GOMAN_EVENTS"
}
