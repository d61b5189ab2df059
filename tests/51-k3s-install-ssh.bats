#!/usr/bin/env bats
# scripts/k3s-install.sh run over a REAL OpenSSH server: sshd -D on a loopback port with a
# temp host key, a temp user key and a temp config, the script and the token over ssh's
# stdin (`bash -s`), against the loopback mirror (tests/fixtures/mirror.py).
# Skipped only when sshd is not installed (scripts/deps.sh installs openssh-server).

load helpers
bats_require_minimum_version 1.5.0

V=v1.31.4+k3s1
TOKEN_TEXT=K10goman-ssh-token-0c2e9d77::server:91aa

wait_file() {
	local i
	for i in $(seq 1 150); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

setup_file() {
	[ -x /usr/sbin/sshd ] || skip "sshd is not installed (scripts/deps.sh installs openssh-server)"
	isolate_home
	# mirror with one release
	MIRROR_DIR="$BATS_FILE_TMPDIR/mirror"
	MLOG="$BATS_FILE_TMPDIR/mirror.log"
	export MIRROR_DIR MLOG
	mkdir -p "$MIRROR_DIR/$V"
	cp "$ROOT/tests/fixtures/fake-k3s" "$MIRROR_DIR/$V/k3s"
	(cd "$MIRROR_DIR/$V" && sha256sum k3s >sha256sum-amd64.txt)
	python3 "$ROOT/tests/fixtures/mirror.py" --dir "$MIRROR_DIR" --port-file "$BATS_FILE_TMPDIR/mirror.port" \
		--log "$MLOG" --pid-file "$BATS_FILE_TMPDIR/mirror.pid" 3>&- &
	wait_file "$BATS_FILE_TMPDIR/mirror.port"
	export MIRROR="http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/mirror.port")"

	# sshd: temp host key, temp user key, temp config; the current user only
	source "$ROOT/tests/fixtures/sshd.bash"
	sshd_start "$BATS_FILE_TMPDIR/sshd"
	printf '%s\n' "$TOKEN_TEXT" >"$BATS_FILE_TMPDIR/token"
	chmod 600 "$BATS_FILE_TMPDIR/token"
}

teardown_file() {
	[ -f "$BATS_FILE_TMPDIR/mirror.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/mirror.pid")" 2>/dev/null
	[ -f "$BATS_FILE_TMPDIR/sshd/sshd.bgpid" ] && kill "$(cat "$BATS_FILE_TMPDIR/sshd/sshd.bgpid")" 2>/dev/null
	return 0
}

setup() {
	P="$BATS_TEST_TMPDIR/root"
	S="$ROOT/scripts/k3s-install.sh"
	: >"$MLOG"
	rm -f "$MIRROR_DIR/.delay" "$MIRROR_DIR/.tamper"
}

# ssh_install ARGS...: script then the token line on ssh's stdin, run by `bash -s` remotely
ssh_install() {
	{ cat "$S"; printf '%s\n' "$TOKEN_TEXT"; } |
		ssh -F /dev/null -p "$SSH_PORT" -i "$SSHD_DIR/user_key" -o BatchMode=yes \
			-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$SSHD_DIR/known_hosts" \
			-o ConnectTimeout=10 127.0.0.1 \
			bash -s -- --role server --cluster-init --prefix "$P" --no-services \
			--mirror "$MIRROR" --k3s-version "$V" --token-stdin --ready-timeout 5 "$@"
}

result() { printf '%s\n' "$output" | sed -n 's/^GOMAN_RESULT //p' | tail -n 1; }

@test "k3s-install.sh over ssh: installs with the token on stdin" {
	run -0 --separate-stderr ssh_install
	r=$(result)
	[ "$(jq -r .ok <<<"$r")" = true ]
	[ "$(jq -r .version <<<"$r")" = "$V" ]
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	[ "$(stat -c %a "$P/etc/rancher/k3s/goman-token")" = 600 ]
	if grep -q -- "$TOKEN_TEXT" <<<"$output$stderr"; then false; fi
	# a real sshd, key authentication, a host key accepted on first use
	grep -q "Accepted publickey for $(id -un)" "$SSHD_DIR/sshd.log"
	grep -q '^\[127.0.0.1\]:' "$SSHD_DIR/known_hosts"
}

@test "k3s-install.sh over ssh: progress lines arrive while the install still runs" {
	echo 1 >"$MIRROR_DIR/.delay"
	ssh_install | while IFS= read -r line; do printf '%s %s\n' "$(date +%s%N)" "$line"; done \
		>"$BATS_TEST_TMPDIR/stamped"
	t25=$(awk '$2 == "GOMAN_PROGRESS" && $3 == 25 { print $1 }' "$BATS_TEST_TMPDIR/stamped")
	bin_end=$(awk -v p="/$V/k3s" '$1 == "end" && $2 == p { print $3 }' "$MLOG")
	[ -n "$t25" ] && [ -n "$bin_end" ]
	# 25 (pre-checks done) reached us before the delayed binary download had finished
	[ "$t25" -lt "$bin_end" ]
	grep -q 'GOMAN_RESULT {"ok":true' "$BATS_TEST_TMPDIR/stamped"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
}

@test "k3s-install.sh over ssh: a checksum failure comes back as exit 21 through ssh" {
	touch "$MIRROR_DIR/.tamper"
	run -21 --separate-stderr ssh_install
	[ "$(result | jq -r .class)" = checksum ]
	[ ! -e "$P/usr/local/bin/k3s" ]
}

@test "k3s-install.sh over ssh: a second run is skipped" {
	run -0 --separate-stderr ssh_install
	run -0 --separate-stderr ssh_install
	[ "$(result | jq -r .skipped)" = true ]
}
