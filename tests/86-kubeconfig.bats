#!/usr/bin/env bats
# goman-kubeconfig: a cluster's kubeconfig merged into the user's, or written alone, with the
# exit codes and record shape of goman(7); credentials never printed.
load helpers

setup() {
	isolate_home
	tok=kc-secret-$RANDOM$RANDOM
	k3s="apiVersion: v1
clusters:
- cluster: {certificate-authority-data: Q0E=, server: 'https://127.0.0.1:6443'}
  name: default
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
kind: Config
users:
- name: default
  user: {token: $tok}"
}

@test "goman-kubeconfig merge: a new file, then a second cluster beside the first" {
	run -0 --separate-stderr goman-kubeconfig merge --cluster one <<<"$k3s"
	[ "$(jq -c '[.cluster, .kubeconfig.ok, .kubeconfig.path, .kubeconfig.backup, .kubeconfig.context, .ok]' <<<"$output")" = \
		"[\"one\",true,\"$HOME/.kube/config\",null,\"goman-one\",true]" ]
	[[ $output != *"$tok"* && $stderr != *"$tok"* ]]
	run -0 --separate-stderr goman-kubeconfig merge --cluster two --server https://10.1.2.3:6443 <<<"$k3s"
	[ "$(jq -r '.kubeconfig.backup' <<<"$output")" != null ]
	run -0 grep -c '^- name: goman-' "$HOME/.kube/config"
	assert_output 2
	grep -q 'current-context: goman-one' "$HOME/.kube/config"
	grep -q "server: 'https://10.1.2.3:6443'" "$HOME/.kube/config"
	[ "$(stat -c %a "$HOME/.kube/config")" = 600 ]
	[ "$(stat -c %a "$HOME/.kube")" = 700 ]
}

@test "goman-kubeconfig write: refuses another cluster's file (exit 1), leaves it as it was" {
	goman-kubeconfig merge --cluster one --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s" >/dev/null
	before=$(cat "$BATS_TEST_TMPDIR/kc")
	run -1 --separate-stderr goman-kubeconfig write --cluster two --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s"
	[ "$(jq -r '.kubeconfig.error.code' <<<"$output")" = KubeconfigInUse ]
	[ "$(jq -r '.ok' <<<"$output")" = false ]
	[ "$(cat "$BATS_TEST_TMPDIR/kc")" = "$before" ]
	run -0 goman-kubeconfig write --cluster one --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s"
}

@test "goman-kubeconfig: a kubeconfig it cannot use is exit 65 and nothing is written" {
	run -65 --separate-stderr goman-kubeconfig merge --cluster one --file "$BATS_TEST_TMPDIR/kc" <<<'a: &x [1]
b: *x'
	[ "$(jq -r '.kubeconfig.error.code' <<<"$output")" = BadInput ]
	[ ! -e "$BATS_TEST_TMPDIR/kc" ]
	printf 'not: [yaml' >"$BATS_TEST_TMPDIR/kc"
	run -65 --separate-stderr goman-kubeconfig merge --cluster one --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s"
	[ "$(cat "$BATS_TEST_TMPDIR/kc")" = "not: [yaml" ]
	run -0 find "$BATS_TEST_TMPDIR" -name 'kc?*'
	assert_output "" # no backup, no temporary file, no lock left
}

@test "goman-kubeconfig: usage errors are exit 64" {
	run -64 goman-kubeconfig merge
	run -64 goman-kubeconfig write --cluster one
	run -64 goman-kubeconfig write --cluster one --file x --use
	run -64 goman-kubeconfig merge --cluster one --server http://plain:6443
	run -64 goman-kubeconfig frob --cluster one
	run -0 goman-kubeconfig --help
	[[ $output == *"goman-kubeconfig merge"* ]]
}

@test "goman-kubeconfig: a held kubectl lock fails the write and is left alone" {
	goman-kubeconfig merge --cluster one --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s" >/dev/null
	: >"$BATS_TEST_TMPDIR/kc.lock"
	run -1 --separate-stderr goman-kubeconfig merge --cluster two --file "$BATS_TEST_TMPDIR/kc" <<<"$k3s"
	[ "$(jq -r '.kubeconfig.error.code' <<<"$output")" = KubeconfigLocked ]
	[ -e "$BATS_TEST_TMPDIR/kc.lock" ]
	! grep -q goman-two "$BATS_TEST_TMPDIR/kc"
}
