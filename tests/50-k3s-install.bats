#!/usr/bin/env bats
# scripts/k3s-install.sh run for real against a loopback mirror (tests/fixtures/mirror.py)
# serving a stand-in k3s (tests/fixtures/fake-k3s), under --prefix with --no-services.
# The SSM token fetch runs curl --aws-sigv4 against moto (signature checking on) with
# credentials from a loopback IMDSv2 fixture (tests/fixtures/imds_sigv4.py).

load helpers
bats_require_minimum_version 1.5.0

V=v1.31.4+k3s1
V2=v1.31.5+k3s1
TOKEN_TEXT=K10goman-test-token-7f3a9c1e::server:4b1d

wait_file() { # file: up to ~15 s
	local i
	for i in $(seq 1 150); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

make_release() { # version: DIR/<version>/{k3s,k3s-arm64,k3s-armhf,sha256sum-*.txt}
	local d="$MIRROR_DIR/$1"
	mkdir -p "$d"
	sed "s/^FAKE_VERSION=.*/FAKE_VERSION=$1/" "$ROOT/tests/fixtures/fake-k3s" >"$d/k3s"
	cp "$d/k3s" "$d/k3s-arm64"
	cp "$d/k3s" "$d/k3s-armhf"
	printf '#arm64\n' >>"$d/k3s-arm64" # each arch its own bytes, like real assets
	printf '#armhf\n' >>"$d/k3s-armhf"
	chmod 755 "$d"/k3s*
	(cd "$d" &&
		{ sha256sum k3s; echo "0000000000000000000000000000000000000000000000000000000000000000  k3s-airgap-images-amd64.tar"; } >sha256sum-amd64.txt &&
		sha256sum k3s-arm64 >sha256sum-arm64.txt && sha256sum k3s-armhf >sha256sum-arm.txt)
}

setup_file() {
	isolate_home
	MIRROR_DIR="$BATS_FILE_TMPDIR/mirror"
	MLOG="$BATS_FILE_TMPDIR/mirror.log"
	export MIRROR_DIR MLOG
	make_release "$V"
	make_release "$V2"
	mkdir -p "$MIRROR_DIR/channels"
	echo "$V" >"$MIRROR_DIR/channels/stable"
	python3 "$ROOT/tests/fixtures/mirror.py" --dir "$MIRROR_DIR" --port-file "$BATS_FILE_TMPDIR/mirror.port" \
		--log "$MLOG" --pid-file "$BATS_FILE_TMPDIR/mirror.pid" 3>&- &
	wait_file "$BATS_FILE_TMPDIR/mirror.port"
	MIRROR="http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/mirror.port")"
	export MIRROR
	# A port with nothing listening: bind, read, close.
	DEAD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	export DEAD_PORT
	# curl shim: records every curl argv of the script, then runs the real curl.
	REAL_CURL=$(command -v curl)
	mkdir -p "$BATS_FILE_TMPDIR/shim"
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"$CURL_ARGV_LOG"\nexec %s "$@"\n' "$REAL_CURL" >"$BATS_FILE_TMPDIR/shim/curl"
	chmod 755 "$BATS_FILE_TMPDIR/shim/curl"
	export SHIM_DIR="$BATS_FILE_TMPDIR/shim"
	printf '%s\n' "$TOKEN_TEXT" >"$BATS_FILE_TMPDIR/token"
	chmod 600 "$BATS_FILE_TMPDIR/token"
	export TOKFILE="$BATS_FILE_TMPDIR/token"
	# SSM on moto (signature checking on) holding the token, and two IMDSv2 fixtures
	# serving the moto IAM key as role credentials: one right, one with a wrong secret.
	local_aws_start
	TOK="$TOKEN_TEXT" "$LOCAL_AWS_PYTHON" -c '
import botocore.session, os
c = botocore.session.get_session().create_client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
c.put_parameter(Name="/goman/demo/token", Value=os.environ["TOK"], Type="SecureString")'
	start_imds good "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
	start_imds bad "$AWS_ACCESS_KEY_ID" "wrong${AWS_SECRET_ACCESS_KEY#?????}"
}

start_imds() { # NAME AKID SECRET -> exports IMDS_<NAME> (endpoint URL); creds via env only
	local d="$BATS_FILE_TMPDIR/imds-$1"
	mkdir -p "$d"
	IMDS_ACCESS_KEY_ID=$2 IMDS_SECRET_ACCESS_KEY=$3 IMDS_REGION=us-east-1 \
		python3 "$ROOT/tests/fixtures/imds_sigv4.py" --port-file "$d/port" \
		--log "$d/log" --pid-file "$d/pid" 3>&- &
	wait_file "$d/port"
	export "IMDS_${1^^}=http://127.0.0.1:$(cat "$d/port")"
}

teardown_file() {
	[ -f "$BATS_FILE_TMPDIR/mirror.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/mirror.pid")" 2>/dev/null
	local f
	for f in "$BATS_FILE_TMPDIR"/imds-*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	local_aws_stop
}

setup() {
	P="$BATS_TEST_TMPDIR/root"
	S="$ROOT/scripts/k3s-install.sh"
	export CURL_ARGV_LOG="$BATS_TEST_TMPDIR/curl-argv.log"
	: >"$MLOG"
	rm -f "$MIRROR_DIR/.delay" "$MIRROR_DIR/.tamper"
	unset GOMAN_MIN_FREE_MB GOMAN_UNAME_M GOMAN_DOWNLOADER FAKE_K3S_PS_SNAPSHOT FAKE_K3S_NOT_READY FAKE_K3S_KUBECONFIG_BIG
}

# install [args...]: the script as a server under $P against the mirror, stdout in $output
install_server() {
	PATH="$SHIM_DIR:$PATH" sh "$S" --role server --cluster-init --tls-san api.example.test \
		--prefix "$P" --no-services --mirror "$MIRROR" --k3s-version "$V" \
		--token-file "$TOKFILE" --ready-timeout 5 "$@"
}

# nogrep PATTERN [FILE]: fails when PATTERN is found (a bare `! grep` would not fail a test)
nogrep() {
	if grep -q -- "$@"; then
		echo "unexpected match of '$1'" >&2
		return 1
	fi
}

result() { printf '%s\n' "$output" | sed -n 's/^GOMAN_RESULT //p' | tail -n 1; }

assert_nothing_installed() {
	[ ! -e "$P/usr/local/bin/k3s" ]
	[ ! -e "$P/etc/rancher/k3s/goman-token" ]
	[ ! -e "$P/etc/systemd/system/k3s.service" ]
	[ -z "$(find "$P" -name '.k3s.new*' 2>/dev/null)" ]
}

@test "k3s-install.sh: --help lists flags and every exit code" {
	run -0 sh "$S" --help
	assert_output --partial "--token-ssm-param"
	for code in 64 10 11 12 13 14 15 20 21 30 31 32; do
		assert_line --regexp "^  $code "
	done
}

@test "k3s-install.sh: refuses a token on the command line (exit 64)" {
	run -64 --separate-stderr sh "$S" --role server --token "$TOKEN_TEXT" --prefix "$P"
	assert_output --partial '"code":"Usage"'
	[ ! -e "$P" ]
}

@test "k3s-install.sh: an agent without --server-url is a usage error" {
	run -64 --separate-stderr sh "$S" --role agent --prefix "$P"
	assert_output --partial "server-url"
}

@test "k3s-install.sh: installs a server: binary, 0600 token file, unit, ready" {
	run -0 --separate-stderr install_server
	r=$(result)
	[ "$(jq -r .ok <<<"$r")" = true ]
	[ "$(jq -r .role <<<"$r")" = server ]
	[ "$(jq -r .version <<<"$r")" = "$V" ]
	[ "$(jq -r .skipped <<<"$r")" = false ]
	[ "$(jq -r .ready <<<"$r")" = api ]
	[ "$(jq -r .checksum <<<"$r")" = "sha256:$(sha256sum <"$MIRROR_DIR/$V/k3s" | cut -d' ' -f1)" ]
	jq -e '.timings_ms.download >= 0 and .ms >= .timings_ms.download' <<<"$r"
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s"
	[ "$(stat -c %a "$P/etc/rancher/k3s/goman-token")" = 600 ]
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	unit="$P/etc/systemd/system/k3s.service"
	grep -q "^ExecStart=.*\"server\" \"--cluster-init\" \"--tls-san\" \"api.example.test\" \"--write-kubeconfig\" \"$P/etc/rancher/k3s/k3s.yaml\" \"--token-file\" " "$unit"
	nogrep "$TOKEN_TEXT" "$unit"
	# the token is in no output and no log
	nogrep "$TOKEN_TEXT" <<<"$output$stderr"
	nogrep "$TOKEN_TEXT" "$P/var/log/goman-k3s-install.log"
	nogrep "$TOKEN_TEXT" "$CURL_ARGV_LOG"
}

@test "k3s-install.sh: progress 25/50/75/100 in order on stdout and in the progress file; result last" {
	run -0 --separate-stderr install_server
	[ "$(printf '%s\n' "$output" | sed -n 's/^GOMAN_PROGRESS \([0-9]*\) .*/\1/p' | tr '\n' ' ')" = "25 50 75 100 " ]
	[ "$(cut -d' ' -f1 "$P/var/lib/goman/install-progress" | tr '\n' ' ')" = "25 50 75 100 " ]
	[[ "${lines[-1]}" == "GOMAN_RESULT {"* ]]
	[ "${#output}" -lt 20000 ]
}

@test "k3s-install.sh: a second run skips the download (checksum file only)" {
	run -0 --separate-stderr install_server
	: >"$MLOG"
	run -0 --separate-stderr install_server
	[ "$(result | jq -r .skipped)" = true ]
	grep -q "^start /$V/sha256sum-amd64.txt " "$MLOG"
	nogrep "^start /$V/k3s " "$MLOG"
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s"
}

@test "k3s-install.sh: another version is an in-place upgrade" {
	run -0 --separate-stderr install_server
	run -0 --separate-stderr install_server --k3s-version "$V2"
	r=$(result)
	[ "$(jq -r .skipped <<<"$r")" = false ]
	[ "$(jq -r .upgraded <<<"$r")" = true ]
	[ "$(jq -r .version <<<"$r")" = "$V2" ]
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V2/k3s"
}

@test "k3s-install.sh: a tampered binary fails the checksum (exit 21) and installs nothing" {
	touch "$MIRROR_DIR/.tamper"
	run -21 --separate-stderr install_server
	r=$(result)
	[ "$(jq -r .ok <<<"$r")" = false ]
	[ "$(jq -r .class <<<"$r")" = checksum ]
	[ "$(jq -r .code <<<"$r")" = ChecksumMismatch ]
	jq -e '.log_tail | test("sha256")' <<<"$r"
	grep -q "^start /$V/k3s " "$MLOG" # it did download, then refused
	assert_nothing_installed
	[ "$(cut -d' ' -f1 "$P/var/lib/goman/install-progress" | tr '\n' ' ')" = "25 " ]
	[ "${#output}" -lt 20000 ]
}

@test "k3s-install.sh: a tampered upgrade keeps the installed binary" {
	run -0 --separate-stderr install_server
	touch "$MIRROR_DIR/.tamper"
	run -21 --separate-stderr install_server --k3s-version "$V2"
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s"
}

@test "k3s-install.sh: an unreachable mirror is a pre-check failure (exit 14)" {
	run -14 --separate-stderr install_server --mirror "http://127.0.0.1:$DEAD_PORT"
	[ "$(result | jq -r .class)" = precheck ]
	[ "$(result | jq -r .code)" = Unreachable ]
	assert_nothing_installed
	nogrep GOMAN_PROGRESS <<<"$output"
}

@test "k3s-install.sh: low disk (threshold override) is a pre-check failure before any download" {
	GOMAN_MIN_FREE_MB=999999999 run -13 --separate-stderr install_server
	[ "$(result | jq -r .class)" = precheck ]
	[ "$(result | jq -r .code)" = LowDisk ]
	assert_nothing_installed
	[ ! -s "$MLOG" ]
}

@test "k3s-install.sh: an unwritable install path is a pre-check failure (exit 12)" {
	mkdir -p "$P"
	echo "a file, not a directory" >"$P/usr" # so $P/usr/local/bin can never be created
	run -12 --separate-stderr install_server
	[ "$(result | jq -r .code)" = Permission ]
	[ ! -s "$MLOG" ]
}

@test "k3s-install.sh: an unsupported architecture is a pre-check failure (exit 11)" {
	GOMAN_UNAME_M=mips64 run -11 --separate-stderr install_server
	[ "$(result | jq -r .code)" = UnsupportedArch ]
	[ ! -s "$MLOG" ]
}

@test "k3s-install.sh: aarch64 fetches k3s-arm64 and sha256sum-arm64.txt" {
	GOMAN_UNAME_M=aarch64 run -0 --separate-stderr install_server
	grep -q "^start /$V/k3s-arm64 " "$MLOG"
	grep -q "^start /$V/sha256sum-arm64.txt " "$MLOG"
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s-arm64"
	[ "$(result | jq -r .arch)" = arm64 ]
}

@test "k3s-install.sh: armv7l fetches k3s-armhf and sha256sum-arm.txt" {
	GOMAN_UNAME_M=armv7l run -0 --separate-stderr install_server
	grep -q "^start /$V/k3s-armhf " "$MLOG"
	grep -q "^start /$V/sha256sum-arm.txt " "$MLOG"
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s-armhf"
}

@test "k3s-install.sh: binary and checksum downloads overlap in time (mirror delays each 1 s)" {
	echo 1 >"$MIRROR_DIR/.delay"
	run -0 --separate-stderr install_server
	bs=$(awk -v p="/$V/k3s" '$1 == "start" && $2 == p { print $3 }' "$MLOG")
	be=$(awk -v p="/$V/k3s" '$1 == "end" && $2 == p { print $3 }' "$MLOG")
	ss=$(awk -v p="/$V/sha256sum-amd64.txt" '$1 == "start" && $2 == p { print $3 }' "$MLOG")
	se=$(awk -v p="/$V/sha256sum-amd64.txt" '$1 == "end" && $2 == p { print $3 }' "$MLOG")
	[ -n "$bs" ] && [ -n "$be" ] && [ -n "$ss" ] && [ -n "$se" ]
	# each request started before the other one ended: the two were in flight together
	[ "$bs" -lt "$se" ]
	[ "$ss" -lt "$be" ]
}

@test "k3s-install.sh: the token is absent from every process's argv during the run" {
	echo 1 >"$MIRROR_DIR/.delay"
	export FAKE_K3S_PS_SNAPSHOT="$BATS_TEST_TMPDIR/ps-ready.txt"
	# the mirror's log holds earlier tests' requests too: wait for a start line of this run
	n0=$(wc -l <"$MLOG")
	install_server >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	# snapshot while the slow binary download is in flight (its curl is running)
	for _ in $(seq 1 100); do
		tail -n +"$((n0 + 1))" "$MLOG" | grep -q "^start /$V/k3s " && ps -eo args | grep -q '[c]url -K -' && break
		sleep 0.05
	done
	ps -eo args >"$BATS_TEST_TMPDIR/ps-download.txt"
	wait "$pid"
	grep -q 'k3s-install.sh' "$BATS_TEST_TMPDIR/ps-download.txt" # the snapshot saw the run
	grep -q 'curl -K -' "$BATS_TEST_TMPDIR/ps-download.txt"
	grep -q 'k3s kubectl get --raw /readyz' "$FAKE_K3S_PS_SNAPSHOT" # and so did this one
	nogrep "$TOKEN_TEXT" "$BATS_TEST_TMPDIR/ps-download.txt"
	nogrep "$TOKEN_TEXT" "$FAKE_K3S_PS_SNAPSHOT"
	nogrep "$TOKEN_TEXT" "$BATS_TEST_TMPDIR/out"
}

@test "k3s-install.sh: a server that never gets ready fails with class start (exit 32)" {
	FAKE_K3S_NOT_READY=1 run -32 --separate-stderr install_server --ready-timeout 1
	[ "$(result | jq -r .class)" = start ]
	[ "$(result | jq -r .code)" = NotReady ]
}

@test "k3s-install.sh: an agent with the token on stdin writes k3s-agent.service" {
	run -0 --separate-stderr sh -c 'PATH="$1:$PATH" sh "$2" --role agent --server-url https://10.0.0.5:6443 \
		--prefix "$3" --no-services --mirror "$4" --k3s-version "$5" --token-stdin <"$6"' \
		_ "$SHIM_DIR" "$S" "$P" "$MIRROR" "$V" "$TOKFILE"
	r=$(result)
	[ "$(jq -r .role <<<"$r")" = agent ]
	[ "$(jq -r .ready <<<"$r")" = unmanaged ]
	grep -q '^ExecStart=.*"agent" "--server" "https://10.0.0.5:6443" "--token-file" ' \
		"$P/etc/systemd/system/k3s-agent.service"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	[ "$(stat -c %a "$P/etc/rancher/k3s/goman-token")" = 600 ]
	nogrep "$TOKEN_TEXT" <<<"$output$stderr"
}

# agent_with URL [args...]: the script as an agent joining URL, under $SH (sh or bash)
agent_with() {
	local url=$1
	shift
	PATH="$SHIM_DIR:$PATH" $SH "$S" --role agent --server-url "$url" --prefix "$P" --no-services \
		--mirror "$MIRROR" --k3s-version "$V" --token-file "$TOKFILE" "$@"
}

# no_injected_unit: no unit file, and no line anywhere below $P that starts a directive
no_injected_unit() {
	[ ! -e "$P/etc/systemd/system/k3s-agent.service" ]
	[ ! -e "$P/etc/systemd/system/k3s.service" ]
	if [ -d "$P" ] && grep -rq '^ExecStart=/bin/sh' "$P"; then
		echo "an injected ExecStart line was written" >&2
		return 1
	fi
}

@test "k3s-install.sh: a server URL with a newline and its own ExecStart line is refused (exit 64), under sh and bash" {
	evil=$'10.0.0.5\nExecStart=/bin/sh -c \'id >/root/PWNED\'\nX='
	for SH in sh bash; do
		rm -rf "$P"
		run -64 --separate-stderr agent_with "https://$evil:6443"
		[ "$(result | jq -r .code)" = BadInput ]
		[ "$(result | jq -r .class)" = bad_input ]
		[ "$(result | jq -r .message)" = "--server-url holds a control character" ]
		no_injected_unit
		# the value itself is not echoed (it is what must stay out of line-based files)
		nogrep 'PWNED' <<<"$output$stderr"
	done
}

@test "k3s-install.sh: control characters in any value written into the unit are refused (exit 64)" {
	SH=sh
	run -64 --separate-stderr agent_with https://10.0.0.5:6443 -- $'--node-label=a\nExecStart=/bin/sh'
	[ "$(result | jq -r .code)" = BadInput ]
	no_injected_unit
	run -64 --separate-stderr agent_with https://10.0.0.5:6443 --data-dir $'/var/lib/k\tx'
	no_injected_unit
	run -64 --separate-stderr agent_with https://10.0.0.5:6443 --k3s-version $'v1\x7f'
	no_injected_unit
	GOMAN_TLS_SAN=$'a\rExecStart=/bin/sh' run -64 --separate-stderr sh "$S" --role server \
		--prefix "$P" --no-services --mirror "$MIRROR" --k3s-version "$V" --token-file "$TOKFILE"
	no_injected_unit
	run -64 --separate-stderr agent_with https://10.0.0.5:6443 --mirror $'http://x/\nurl = "http://evil/"'
	no_injected_unit
	# a clean value still installs
	run -0 --separate-stderr agent_with https://10.0.0.5:6443 -- --node-label=a=b
	grep -q '^ExecStart=.* "--node-label=a=b"$' "$P/etc/systemd/system/k3s-agent.service"
}

@test "k3s-install.sh: --node-name, --node-label and --node-taint go into the unit as k3s flags" {
	SH=sh
	run -0 --separate-stderr agent_with https://10.0.0.5:6443 --node-name web-agent-3 \
		--node-label tier=web --node-label example.com/team=a --node-taint dedicated=web:NoSchedule \
		--node-taint spot:PreferNoSchedule
	grep -q '^ExecStart=.* "--node-name" "web-agent-3" "--node-label" "tier=web" "--node-label" "example.com/team=a" "--node-taint" "dedicated=web:NoSchedule" "--node-taint" "spot:PreferNoSchedule"' \
		"$P/etc/systemd/system/k3s-agent.service"
	# the same from the environment
	rm -rf "$P"
	GOMAN_NODE_NAME=web-agent-4 GOMAN_NODE_LABELS="tier=web" GOMAN_NODE_TAINTS="a:NoExecute" \
		run -0 --separate-stderr agent_with https://10.0.0.5:6443
	grep -q '"--node-name" "web-agent-4" "--node-label" "tier=web" "--node-taint" "a:NoExecute"' \
		"$P/etc/systemd/system/k3s-agent.service"
}

@test "k3s-install.sh: a node installed without --node-name keeps its host name on a re-run" {
	SH=sh
	run -0 --separate-stderr agent_with https://10.0.0.5:6443
	run -0 --separate-stderr agent_with https://10.0.0.5:6443 --node-name web-agent-3 --node-label tier=web
	nogrep '"--node-name"' "$P/etc/systemd/system/k3s-agent.service"
	grep -q '"--node-label" "tier=web"' "$P/etc/systemd/system/k3s-agent.service"
	[[ "$stderr" == *"keeping the registered node name"* ]]
}

@test "k3s-install.sh: a node name, label or taint outside its form is refused (exit 64), nothing written" {
	SH=sh
	for bad in "--node-name Web_1" "--node-name -x" "--node-label tier" "--node-label tier=a\$(id)" \
		"--node-label ti*r=a" "--node-label a/b/c=d" "--node-label tier=-web" "--node-taint a=b" \
		"--node-taint a=b:Sometimes" "--node-taint a;b=c:NoSchedule" "--node-taint a=b c:NoSchedule"; do
		rm -rf "$P"
		# shellcheck disable=SC2086 # flag and value as two words; the value has no space but the last
		read -r flag val <<<"$bad"
		run -64 --separate-stderr agent_with https://10.0.0.5:6443 "$flag" "$val"
		[ "$(result | jq -r .code)" = BadInput ] || { echo "not refused: $bad" >&2; return 1; }
		no_injected_unit
	done
	GOMAN_NODE_LABELS='*' run -64 --separate-stderr agent_with https://10.0.0.5:6443
	no_injected_unit
}

@test "k3s-install.sh: a token with a control character is refused (exit 15) and not written" {
	printf 'K10tok\033[2Jen\n' >"$BATS_TEST_TMPDIR/tok"
	SH=sh
	run -15 --separate-stderr agent_with https://10.0.0.5:6443 --token-file "$BATS_TEST_TMPDIR/tok"
	[ "$(result | jq -r .code)" = TokenUnavailable ]
	[ ! -e "$P/etc/rancher/k3s/goman-token" ]
	no_injected_unit
}

@test "k3s-install.sh: a channel resolves to its release" {
	run -0 --separate-stderr sh "$S" --role server --prefix "$P" --no-services --mirror "$MIRROR" \
		--channel stable --channel-url "$MIRROR/channels" --ready-timeout 5
	[ "$(result | jq -r .version)" = "$V" ]
	grep -q "^start /channels/stable " "$MLOG"
}

@test "k3s-install.sh: air-gap URLs are used as given and their query strings stay out of the log" {
	q='X-Amz-Signature=feedfacecafe0123'
	run -0 --separate-stderr install_server --mirror "http://127.0.0.1:$DEAD_PORT" \
		--airgap-binary-url "$MIRROR/$V2/k3s?$q" --airgap-checksum-url "$MIRROR/$V2/sha256sum-amd64.txt?$q"
	[ "$(result | jq -r .airgap)" = true ]
	[ "$(result | jq -r .version)" = "$V2" ]
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V2/k3s"
	nogrep "$q" "$P/var/log/goman-k3s-install.log"
	nogrep "$q" "$CURL_ARGV_LOG" # the URL went to curl in a config on stdin
	nogrep "^start / " "$MLOG"     # no reachability probe in air-gap mode
}

@test "k3s-install.sh: --airgap-stdin reads \"BINARY_URL CHECKSUM_URL\" from stdin; a bad line is exit 14" {
	q='X-Amz-Signature=feedfacecafe0123'
	run -0 --separate-stderr install_server --mirror "http://127.0.0.1:$DEAD_PORT" --airgap-stdin \
		< <(printf '%s %s\n' "$MIRROR/$V2/k3s?$q" "$MIRROR/$V2/sha256sum-amd64.txt?$q")
	[ "$(result | jq -r .airgap)" = true ]
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V2/k3s"
	nogrep "$q" "$P/var/log/goman-k3s-install.log"
	nogrep "$q" "$CURL_ARGV_LOG"
	rm -rf "$P"
	run -14 --separate-stderr install_server --airgap-stdin < <(printf '%s\n' "$MIRROR/$V2/k3s")
	[ "$(result | jq -r .code)" = Unreachable ]
	run -14 --separate-stderr install_server --airgap-stdin </dev/null
	run -64 --separate-stderr install_server --airgap-stdin --airgap-binary-url x --airgap-checksum-url y
	assert_nothing_installed
}

@test "k3s-install.sh: runs the same under bash" {
	run -0 --separate-stderr bash "$S" --role server --prefix "$P" --no-services --mirror "$MIRROR" \
		--k3s-version "$V" --token-file "$TOKFILE" --ready-timeout 5
	[ "$(result | jq -r .ok)" = true ]
}

# ---- node-side token fetch: curl --aws-sigv4 against moto, IMDSv2 on loopback ------------

# the script as a node: no AWS env credentials or region, only IMDS (and the SSM endpoint)
node_run() {
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION -u AWS_DEFAULT_REGION \
		PATH="$SHIM_DIR:$PATH" GOMAN_SSM_CLIENT=curl GOMAN_IMDS_ENDPOINT="$IMDS" \
		AWS_ENDPOINT_URL_SSM="$AWS_ENDPOINT_URL" \
		sh "$S" --role agent --server-url https://10.0.0.5:6443 --token-ssm-param /goman/demo/token \
		--prefix "$P" --no-services --mirror "$MIRROR" --k3s-version "$V" "$@"
}

@test "k3s-install.sh: reads the token from SSM with curl --aws-sigv4 and IMDSv2 role credentials" {
	ilog="$BATS_FILE_TMPDIR/imds-good/log"
	: >"$ilog"
	IMDS=$IMDS_GOOD run -0 --separate-stderr node_run
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	[ "$(stat -c %a "$P/etc/rancher/k3s/goman-token")" = 600 ]
	# IMDSv2: the session token first, then role, credentials and region with it
	[ "$(head -n 1 "$ilog")" = "PUT /latest/api/token 200" ]
	grep -q "^GET /latest/meta-data/iam/security-credentials/goman-node 200" "$ilog"
	grep -q "^GET /latest/meta-data/placement/region 200" "$ilog"
	nogrep ' 401$' "$ilog"
	# the secret key and the token reached curl only through its config on stdin
	grep -q -- '-K -' "$CURL_ARGV_LOG"
	nogrep "$AWS_SECRET_ACCESS_KEY" "$CURL_ARGV_LOG"
	nogrep "$TOKEN_TEXT" "$CURL_ARGV_LOG"
	nogrep "$AWS_SECRET_ACCESS_KEY" "$P/var/log/goman-k3s-install.log"
	nogrep "$TOKEN_TEXT" "$P/var/log/goman-k3s-install.log"
	nogrep "$TOKEN_TEXT" <<<"$output$stderr"
}

@test "k3s-install.sh: a wrong secret key is refused by the signature check (exit 15, nothing installed)" {
	IMDS=$IMDS_BAD run -15 --separate-stderr node_run
	[ "$(result | jq -r .code)" = TokenUnavailable ]
	jq -e '.log_tail | test("HTTP 403")' <<<"$(result)"
	assert_nothing_installed
}

@test "k3s-install.sh: reads the token from SSM with the aws CLI when it is there" {
	command -v aws >/dev/null 2>&1 || skip "no aws CLI"
	# the CLI's own credential chain: here the moto key in the environment
	run -0 --separate-stderr env GOMAN_SSM_CLIENT=aws \
		sh "$S" --role agent --server-url https://10.0.0.5:6443 --token-ssm-param /goman/demo/token \
		--prefix "$P" --no-services --mirror "$MIRROR" --k3s-version "$V"
	[ "$(cat "$P/etc/rancher/k3s/goman-token")" = "$TOKEN_TEXT" ]
	grep -q 'via aws' "$P/var/log/goman-k3s-install.log"
	nogrep "$TOKEN_TEXT" "$P/var/log/goman-k3s-install.log"
}

@test "k3s-install.sh: downloads with wget too, still in parallel" {
	command -v wget >/dev/null 2>&1 || skip "no wget"
	echo 1 >"$MIRROR_DIR/.delay"
	GOMAN_DOWNLOADER=wget run -0 --separate-stderr install_server
	[ "$(result | jq -r .ok)" = true ]
	cmp "$P/usr/local/bin/k3s" "$MIRROR_DIR/$V/k3s"
	bs=$(awk -v p="/$V/k3s" '$1 == "start" && $2 == p { print $3 }' "$MLOG")
	se=$(awk -v p="/$V/sha256sum-amd64.txt" '$1 == "end" && $2 == p { print $3 }' "$MLOG")
	ss=$(awk -v p="/$V/sha256sum-amd64.txt" '$1 == "start" && $2 == p { print $3 }' "$MLOG")
	be=$(awk -v p="/$V/k3s" '$1 == "end" && $2 == p { print $3 }' "$MLOG")
	[ "$bs" -lt "$se" ] && [ "$ss" -lt "$be" ]
}

@test "k3s-install.sh: wget also refuses a tampered binary" {
	command -v wget >/dev/null 2>&1 || skip "no wget"
	touch "$MIRROR_DIR/.tamper"
	GOMAN_DOWNLOADER=wget run -21 --separate-stderr install_server
	assert_nothing_installed
}

# ---- the first server's kubeconfig into SSM (node side, the same SSM client as the token) --

# ssm_param NAME -> {"Type","Value","Version","Tier"} read back from moto with botocore
ssm_param() {
	N="$1" "$LOCAL_AWS_PYTHON" -c '
import botocore.session, json, os
c = botocore.session.get_session().create_client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
n = os.environ["N"]
p = c.get_parameter(Name=n, WithDecryption=True)["Parameter"]
d = c.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [n]}])["Parameters"][0]
print(json.dumps({"Type": p["Type"], "Value": p["Value"], "Version": p["Version"], "Tier": d.get("Tier")}))'
}

# the script as the first server of a node: the token and the kubeconfig both through SSM
node_server_run() {
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION -u AWS_DEFAULT_REGION \
		PATH="$SHIM_DIR:$PATH" GOMAN_SSM_CLIENT=curl GOMAN_IMDS_ENDPOINT="$IMDS" \
		AWS_ENDPOINT_URL_SSM="$AWS_ENDPOINT_URL" \
		sh "$S" --role server --cluster-init --token-ssm-param /goman/demo/token \
		--prefix "$P" --no-services --mirror "$MIRROR" --k3s-version "$V" --ready-timeout 5 "$@"
}

# assert_kubeconfig_secret: no part of the node's kubeconfig key in argv, output or the log
assert_kubeconfig_secret() {
	local key
	key=$(awk '/client-key-data:/ { print $2 }' "$P/etc/rancher/k3s/k3s.yaml")
	[ ${#key} -gt 100 ]
	key=${key:20:60}
	[ ! -e "$CURL_ARGV_LOG" ] || nogrep "$key" "$CURL_ARGV_LOG"
	nogrep "$key" "$P/var/log/goman-k3s-install.log"
	nogrep "$key" <<<"$output$stderr"
	nogrep client-key-data <<<"$output$stderr"
}

@test "k3s-install.sh: the server stores its kubeconfig in SSM with curl --aws-sigv4: SecureString, address rewritten" {
	IMDS=$IMDS_GOOD run -0 --separate-stderr node_server_run \
		--kubeconfig-ssm-param /goman/kc1/kubeconfig --kubeconfig-server 10.0.0.5
	[ "$(result | jq -r .kubeconfig)" = stored ]
	p=$(ssm_param /goman/kc1/kubeconfig)
	jq -e '.Type == "SecureString" and .Tier == "Standard" and .Version == 1' <<<"$p"
	jq -j .Value <<<"$p" >"$BATS_TEST_TMPDIR/kc"
	grep -qx '    server: https://10.0.0.5:6443' "$BATS_TEST_TMPDIR/kc"
	nogrep 127.0.0.1 "$BATS_TEST_TMPDIR/kc"
	# everything else is the node's file byte for byte
	sed 's#https://10\.0\.0\.5:#https://127.0.0.1:#' "$BATS_TEST_TMPDIR/kc" | cmp - "$P/etc/rancher/k3s/k3s.yaml"
	# k3s was told where to write it (below the prefix)
	grep -q -- "\"--write-kubeconfig\" \"$P/etc/rancher/k3s/k3s.yaml\"" "$P/etc/systemd/system/k3s.service"
	grep -q -- '-K -' "$CURL_ARGV_LOG"
	nogrep "$AWS_SECRET_ACCESS_KEY" "$CURL_ARGV_LOG"
	assert_kubeconfig_secret
}

@test "k3s-install.sh: a kubeconfig over 4 KB goes to the Advanced tier and overwrites the old value" {
	"$LOCAL_AWS_PYTHON" -c '
import botocore.session, os
c = botocore.session.get_session().create_client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
c.put_parameter(Name="/goman/kc2/kubeconfig", Value="old", Type="SecureString")'
	FAKE_K3S_KUBECONFIG_BIG=1 IMDS=$IMDS_GOOD run -0 --separate-stderr node_server_run \
		--kubeconfig-ssm-param /goman/kc2/kubeconfig --kubeconfig-server fd00::5
	[ "$(stat -c %s "$P/etc/rancher/k3s/k3s.yaml")" -gt 4096 ]
	p=$(ssm_param /goman/kc2/kubeconfig)
	jq -e '.Type == "SecureString" and .Tier == "Advanced" and .Version == 2' <<<"$p"
	# an IPv6 address is bracketed in the URL
	jq -e '.Value | contains("server: https://[fd00::5]:6443\n")' <<<"$p"
	assert_kubeconfig_secret
}

@test "k3s-install.sh: a kubeconfig that cannot be stored is reported; the ready server is not failed" {
	# the token from a file; the wrong secret key fails PutParameter's signature check
	run -0 --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION \
		PATH="$SHIM_DIR:$PATH" GOMAN_SSM_CLIENT=curl GOMAN_IMDS_ENDPOINT="$IMDS_BAD" \
		AWS_ENDPOINT_URL_SSM="$AWS_ENDPOINT_URL" \
		sh "$S" --role server --token-file "$TOKFILE" --prefix "$P" --no-services \
		--mirror "$MIRROR" --k3s-version "$V" --ready-timeout 5 \
		--kubeconfig-ssm-param /goman/kc3/kubeconfig --kubeconfig-server 10.0.0.5
	jq -e '.ok and .kubeconfig == "failed"' <<<"$(result)"
	grep -q 'SSM PutParameter /goman/kc3/kubeconfig: HTTP 403' "$P/var/log/goman-k3s-install.log"
	assert_kubeconfig_secret
}

@test "k3s-install.sh: stores the kubeconfig with the aws CLI when it is there" {
	command -v aws >/dev/null 2>&1 || skip "no aws CLI"
	run -0 --separate-stderr env GOMAN_SSM_CLIENT=aws PATH="$SHIM_DIR:$PATH" \
		sh "$S" --role server --token-file "$TOKFILE" --prefix "$P" --no-services \
		--mirror "$MIRROR" --k3s-version "$V" --ready-timeout 5 \
		--kubeconfig-ssm-param /goman/kc4/kubeconfig --kubeconfig-server 10.0.0.7
	[ "$(result | jq -r .kubeconfig)" = stored ]
	grep -q 'kubeconfig.*via aws' "$P/var/log/goman-k3s-install.log"
	p=$(ssm_param /goman/kc4/kubeconfig)
	jq -e '.Type == "SecureString" and .Tier == "Standard" and
		(.Value | contains("server: https://10.0.0.7:6443\n"))' <<<"$p"
	assert_kubeconfig_secret
}

@test "k3s-install.sh: --kubeconfig-ssm-param is for servers, and the address is checked" {
	run -64 --separate-stderr sh "$S" --role agent --server-url https://10.0.0.5:6443 \
		--token-file "$TOKFILE" --kubeconfig-ssm-param /goman/x/kubeconfig
	run -64 --separate-stderr sh "$S" --role server --kubeconfig-ssm-param /goman/x/kubeconfig \
		--kubeconfig-server '10.0.0.5#x'
}

# a systemctl stand-in logging its argv to $SYSTEMCTL_LOG (the script runs with services on)
systemctl_shim() {
	mkdir -p "$BATS_TEST_TMPDIR/sysd"
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\nexit 0\n' "$BATS_TEST_TMPDIR/systemctl.log" \
		>"$BATS_TEST_TMPDIR/sysd/systemctl"
	chmod 755 "$BATS_TEST_TMPDIR/sysd/systemctl"
}

@test "k3s-install.sh: an agent whose server never answers stops after --server-wait, unit written but not enabled (exit 33)" {
	systemctl_shim
	run -33 --separate-stderr sh -c 'PATH="$1:$2:$PATH" sh "$3" --role agent --server-url "https://127.0.0.1:$4" \
		--prefix "$5" --mirror "$6" --k3s-version "$7" --token-file "$8" --server-wait 3' \
		_ "$BATS_TEST_TMPDIR/sysd" "$SHIM_DIR" "$S" "$DEAD_PORT" "$P" "$MIRROR" "$V" "$TOKFILE"
	r=$(result)
	jq -e '.ok == false and .class == "start" and .code == "ServerUnreachable" and .exit == 33' <<<"$r"
	[ -s "$P/etc/systemd/system/k3s-agent.service" ]
	nogrep -E "enable|start" "$BATS_TEST_TMPDIR/systemctl.log"
	run -0 sh "$S" --help
	assert_output --partial "33  start: the server at --server-url did not answer within --server-wait"
}

@test "k3s-install.sh: an agent running before its server waits for it, then enables and starts its unit" {
	systemctl_shim
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=k3s -days 1 -keyout "$BATS_TEST_TMPDIR/k" \
		-out "$BATS_TEST_TMPDIR/c" 2>/dev/null
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# the "server" comes up 3 s after the agent started
	(sleep 3; exec openssl s_server -quiet -accept "$port" -cert "$BATS_TEST_TMPDIR/c" -key "$BATS_TEST_TMPDIR/k" \
		-www </dev/null >/dev/null 2>&1) 3>&- &
	srv=$!
	run -0 --separate-stderr sh -c 'PATH="$1:$2:$PATH" sh "$3" --role agent --server-url "https://127.0.0.1:$4" \
		--prefix "$5" --mirror "$6" --k3s-version "$7" --token-file "$8" --server-wait 30 --ready-timeout 30' \
		_ "$BATS_TEST_TMPDIR/sysd" "$SHIM_DIR" "$S" "$port" "$P" "$MIRROR" "$V" "$TOKFILE"
	kill "$srv" 2>/dev/null || true
	jq -e '.ok and .ready == "active"' <<<"$(result)"
	# it did wait (the server was not there at first), and only then enabled the unit
	grep -q "waiting for the server https://127.0.0.1:$port" <<<"$stderr"
	grep -q "the server https://127.0.0.1:$port answers" <<<"$stderr"
	grep -qx "enable k3s-agent" "$BATS_TEST_TMPDIR/systemctl.log"
}
