#!/usr/bin/env bats
# goman-install --via ssh against a REAL sshd started on a loopback port (temp host key,
# temp user key; tests/fixtures/sshd.bash), the script and token over ssh's stdin.

load helpers
bats_require_minimum_version 1.5.0
# shellcheck source=fixtures/sshd.bash
. "$ROOT/tests/fixtures/sshd.bash"

V=v1.31.4+k3s1
TOKEN_TEXT=K10goman-ssh-install-3b9d::server:c0de

setup_file() {
	[ -x /usr/sbin/sshd ] || skip "sshd is not installed (scripts/deps.sh installs openssh-server)"
	isolate_home
	mirror_start "$BATS_FILE_TMPDIR/mirror" "$V"
	sshd_start "$BATS_FILE_TMPDIR/sshd"
	# ssh reads the passwd home, not $HOME: a config of our own keeps known_hosts here
	printf 'Host *\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n' \
		"$BATS_FILE_TMPDIR/known_hosts" >"$BATS_FILE_TMPDIR/ssh_config"
	printf '%s\n' "$TOKEN_TEXT" >"$BATS_FILE_TMPDIR/token"
	chmod 600 "$BATS_FILE_TMPDIR/token"
}

teardown_file() {
	sshd_stop "$BATS_FILE_TMPDIR/sshd"
	mirror_stop "$BATS_FILE_TMPDIR/mirror"
}

setup() {
	P="$BATS_TEST_TMPDIR/root"
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events"
	rm -f "$BATS_FILE_TMPDIR/known_hosts"
}

install_ssh() {
	goman-install --via ssh --ssh-config "$BATS_FILE_TMPDIR/ssh_config" --ssh-port "$SSH_PORT" --ssh-key "$SSH_KEY" --ssh-user "$(id -un)" \
		--token-file "$BATS_FILE_TMPDIR/token" --prefix "$P" --no-services --mirror "$MIRROR" \
		--k3s-version "$V" --verify-wait 2s "$@"
}

node() { printf '{"cluster":"sh","name":"sh-%s-%d","role":"%s","index":%d,"private_ip":"127.0.0.1"}\n' "$1" "$2" "$1" "$2"; }

@test "goman-install: --via ssh installs over a real sshd, progress streamed, host key accepted" {
	run -0 --separate-stderr install_ssh < <(node server 0; node agent 0)
	[ "${#lines[@]}" -eq 2 ]
	jq -e -s 'all(.ok and .install.ok and .install.via == "ssh" and .install.verified and
		.install.progress == 100)' <<<"$output"
	cmp "$P/usr/local/bin/k3s" "$BATS_FILE_TMPDIR/mirror/files/$V/k3s"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	grep -q 'sh-server-0: 50% download' <<<"$stderr"
	# accept-new wrote the host key; the sshd log shows our key was used
	[ -s "$BATS_FILE_TMPDIR/known_hosts" ]
	grep -q "Accepted publickey" "$SSHD_DIR/sshd.log"
	jq -e -s 'map(select(.event == "cluster")) | .[0].nodes_ready == 1' "$GOMAN_EVENTS"
	if grep -q "$TOKEN_TEXT" <<<"$output$stderr"; then echo "token leaked" >&2; return 1; fi
}

@test "goman-install: the token is in no process argv during an ssh install" {
	echo 1 >"$BATS_FILE_TMPDIR/mirror/files/.delay"
	: >"$BATS_FILE_TMPDIR/mirror/log"
	install_ssh < <(node server 0) >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do grep -q "^start /$V/k3s " "$BATS_FILE_TMPDIR/mirror/log" && break; sleep 0.05; done
	ps -eo args >"$BATS_TEST_TMPDIR/ps.txt"
	wait "$pid"
	rm -f "$BATS_FILE_TMPDIR/mirror/files/.delay"
	grep -q "bash -s --" "$BATS_TEST_TMPDIR/ps.txt"
	if grep -q "$TOKEN_TEXT" "$BATS_TEST_TMPDIR/ps.txt" "$BATS_TEST_TMPDIR/out"; then
		echo "token in argv or output" >&2
		return 1
	fi
}

@test "goman-install: an unreachable ssh host is a failed record (SshFailed), not a crash" {
	run -75 --separate-stderr install_ssh --ssh-port 1 < <(node server 0)
	jq -e '.ok == false and .install.error.code == "SshFailed" and .install.error.class == "transient"' <<<"${lines[0]}"
}

@test "goman-install: --via ssh needs private_ip (or public_ip with --ssh-public-ip)" {
	run -65 --separate-stderr install_ssh < <(echo '{"cluster":"sh","role":"server","index":0}')
	jq -e '.install.error.code == "BadInput" and .install.error.line == 1' <<<"${lines[0]}"
}

@test "goman-install: a private_ip carrying a unit line is a BadInput record (exit 65); the others install" {
	evil='{"cluster":"sh","role":"agent","index":1,"private_ip":"127.0.0.1\nExecStart=/bin/sh -c '"'"'id >/tmp/PWNED'"'"'\nX="}'
	proxy='{"cluster":"sh","role":"agent","index":2,"private_ip":"127.0.0.1","public_ip":"-oProxyCommand=touch '"$BATS_TEST_TMPDIR"'/proxied"}'
	run -65 --separate-stderr install_ssh < <(node server 0; printf '%s\n' "$evil" "$proxy"; node agent 0)
	[ "${#lines[@]}" -eq 4 ]
	jq -e -s '[.[] | select(.index == 1 or .index == 2) | .install.error.code] == ["BadInput", "BadInput"]' <<<"$output"
	jq -e -s '[.[] | select(.index == 0) | .install.ok] == [true, true]' <<<"$output"
	# the agent's unit names the first server only; no line of the hostile record got in
	grep -q '"--server" "https://127.0.0.1:6443"' "$P/etc/systemd/system/k3s-agent.service"
	if grep -rq '^ExecStart=/bin/sh' "$P/etc/systemd/system"; then echo "injected unit line" >&2; return 1; fi
	[ ! -e "$BATS_TEST_TMPDIR/proxied" ]
}

@test "goman-install: an ssh host that is not an address is refused before ssh runs" {
	run -65 --separate-stderr install_ssh --ssh-public-ip < <(node server 0 |
		jq -c '.public_ip = "-oProxyCommand=touch '"$BATS_TEST_TMPDIR"'/proxied"')
	jq -e '.install.error.code == "BadInput"' <<<"${lines[0]}"
	[ ! -e "$BATS_TEST_TMPDIR/proxied" ]
	[ ! -e "$P/usr/local/bin/k3s" ]
}

@test "goman-install: --via ssh --airgap sends the presigned URLs on stdin, never in argv" {
	# presigned offline with made-up keys; the mirror stands in for S3 (it ignores the query)
	mkdir -p "$BATS_FILE_TMPDIR/mirror/files/goman-ssh-airgap"
	cp -r "$BATS_FILE_TMPDIR/mirror/files/$V" "$BATS_FILE_TMPDIR/mirror/files/goman-ssh-airgap/rel"
	echo 1 >"$BATS_FILE_TMPDIR/mirror/files/.delay"
	: >"$BATS_FILE_TMPDIR/mirror/log"
	AWS_ACCESS_KEY_ID=AKIDGOMANAIRGAPTEST AWS_SECRET_ACCESS_KEY=goman-airgap-test-secret \
		AWS_SESSION_TOKEN=goman-airgap-session-77c1 AWS_REGION=us-east-1 \
		AWS_ENDPOINT_URL_S3="$MIRROR" install_ssh --no-kubeconfig --airgap s3://goman-ssh-airgap/rel \
		< <(node server 0) >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	for _ in $(seq 1 100); do
		grep -qs "^start /goman-ssh-airgap/rel/k3s " "$BATS_FILE_TMPDIR/mirror/log" && break
		sleep 0.05
	done
	ps -eo args >"$BATS_TEST_TMPDIR/ps.txt"
	wait "$pid"
	rm -f "$BATS_FILE_TMPDIR/mirror/files/.delay"
	jq -e '.install.ok and .install.via == "ssh"' "$BATS_TEST_TMPDIR/out"
	cmp "$P/usr/local/bin/k3s" "$BATS_FILE_TMPDIR/mirror/files/goman-ssh-airgap/rel/k3s"
	grep -q "bash -s -- .*--airgap-stdin" "$BATS_TEST_TMPDIR/ps.txt"
	# the script logs the URLs without their query string; argv has no URL at all
	if grep -qF /goman-ssh-airgap/rel/k3s "$BATS_TEST_TMPDIR/ps.txt"; then
		echo "an air-gap URL in argv" >&2
		return 1
	fi
	for s in X-Amz-Signature= X-Amz-Credential= goman-airgap-session-77c1; do
		if grep -qF -- "$s" "$BATS_TEST_TMPDIR/ps.txt" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err"; then
			echo "'$s' in argv or output" >&2
			return 1
		fi
	done
}

@test "goman-install --action drain over ssh: kubectl runs on the first server's host, one command per node" {
	mkdir -p "$P/usr/local/bin"
	cp "$ROOT/tests/fixtures/fake-k3s" "$P/usr/local/bin/k3s"
	run -0 --separate-stderr install_ssh --action drain --drain-timeout 45s < <(node agent 1; node server 0)
	jq -e -s 'length == 2 and all(.drain.ok and .drain.via == "ssh" and .drain.action == "drain")' <<<"$output"
	[ "$(sort "$P/usr/local/bin/kubectl.log")" = "$(printf '%s\n' \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=45s sh-agent-1" \
		"kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=45s sh-server-0")" ]
	[ "$(grep -c "Accepted publickey" "$SSHD_DIR/sshd.log")" -ge 2 ]
	# agents only: --server-address names the host; a failing kubectl comes back through ssh
	touch "$P/usr/local/bin/kubectl.fail"
	run -1 --separate-stderr install_ssh --action uncordon --server-address 127.0.0.1 < <(node agent 2)
	jq -e '.drain.error.code == "UncordonFailed" and (.drain.error.message | test("NotFound"))' <<<"${lines[0]}"
	# and without a server at all, nothing runs: NoServer
	run -1 --separate-stderr install_ssh --action cordon < <(node agent 3)
	jq -e '.drain.error.code == "NoServer"' <<<"${lines[0]}"
	[ "$(grep -c cordon "$P/usr/local/bin/kubectl.log")" -eq 1 ]
}

@test "goman-install --action delete over ssh: drain and delete of each node run on the first server's host" {
	mkdir -p "$P/usr/local/bin"
	cp "$ROOT/tests/fixtures/fake-k3s" "$P/usr/local/bin/k3s"
	run -0 --separate-stderr install_ssh --action delete --server-address 127.0.0.1 < <(node agent 7)
	jq -e '.drain.ok and .drain.action == "delete" and .drain.via == "ssh"' <<<"${lines[0]}"
	grep -qxF "kubectl delete node sh-agent-7" "$P/usr/local/bin/kubectl.log"
}
