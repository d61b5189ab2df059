# tests/helpers.bash - loaded by every bats file: `load helpers`.
# Gives: $GOMAN_BIN (the built commands, also put first on PATH), $ROOT, an isolated HOME and
# XDG dirs per test file, and local_aws_start/local_aws_stop (moto_server with signature
# checking on, started by the tests themselves, stopped by PID).
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
GOMAN_BUILD=${GOMAN_BUILD:-build}
case "$GOMAN_BUILD" in /*) ;; *) GOMAN_BUILD="$ROOT/$GOMAN_BUILD" ;; esac
GOMAN_BIN="$GOMAN_BUILD/bin"
export ROOT GOMAN_BUILD GOMAN_BIN
export PATH="$GOMAN_BIN:$ROOT/scripts:$PATH"
export AWS_EC2_METADATA_DISABLED=true
# the node-side installer from this tree, wherever the build directory is
export GOMAN_INSTALL_SCRIPT="$ROOT/scripts/k3s-install.sh"

# Per-file isolation of everything a goman command reads or writes.
isolate_home() {
	export HOME="$BATS_FILE_TMPDIR/home"
	export XDG_STATE_HOME="$HOME/.local/state" XDG_CONFIG_HOME="$HOME/.config"
	export XDG_RUNTIME_DIR="$BATS_FILE_TMPDIR/run"
	mkdir -p "$HOME" "$XDG_STATE_HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
	chmod 700 "$XDG_RUNTIME_DIR"
	unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE GOMAN_EVENTS GOMAN_ENV
}

# Starts moto_server (signature checking on) for this test file; exports its env.
# The real HOME is needed to find pyenv's moto; pass it along before isolating.
local_aws_start() {
	LOCAL_AWS_DIR="$BATS_FILE_TMPDIR/aws"
	export LOCAL_AWS_DIR
	HOME=${REAL_HOME:-$HOME} "$ROOT/scripts/local-aws.sh" start "$LOCAL_AWS_DIR" >/dev/null
	# shellcheck disable=SC1091
	. "$LOCAL_AWS_DIR/env"
	LOCAL_AWS_PYTHON=$(HOME=${REAL_HOME:-$HOME} "$ROOT/scripts/local-aws.sh" python)
	export LOCAL_AWS_PYTHON
}

# The instance profile `goman init` makes, in moto (which does not check it at launch).
node_profile_create() {
	goman-api --jobs 1 >/dev/null <<'IN'
{"service":"iam","action":"CreateRole","params":{"RoleName":"goman-node","AssumeRolePolicyDocument":"{}"}}
{"service":"iam","action":"CreateInstanceProfile","params":{"InstanceProfileName":"goman-node"}}
{"service":"iam","action":"AddRoleToInstanceProfile","params":{"InstanceProfileName":"goman-node","RoleName":"goman-node"}}
IN
}

local_aws_stop() {
	[ -n "${LOCAL_AWS_DIR:-}" ] && "$ROOT/scripts/local-aws.sh" stop "$LOCAL_AWS_DIR"
	return 0
}

REAL_HOME=${REAL_HOME:-$HOME}
export REAL_HOME

# cfile NAME AGENTS: a cluster file of 1 server + AGENTS agents (t3.small), its path
cfile() {
	local f="$BATS_TEST_TMPDIR/$1-$2.yaml"
	printf 'name: %s\ngroups:\n  - {name: control, role: server, count: 1}\n  - {name: workers, role: agent, count: %s, type: t3.small}\n' "$1" "$2" >"$f"
	echo "$f"
}

# count CLUSTER: its pending and running instances, straight from the endpoint
count() {
	goman-api <<<"{\"service\":\"ec2\",\"action\":\"DescribeInstances\",\"params\":{\"Filter.1.Name\":\"tag:goman:cluster\",\"Filter.1.Value.1\":\"$1\",\"Filter.2.Name\":\"instance-state-name\",\"Filter.2.Value.1\":\"running\",\"Filter.2.Value.2\":\"pending\"}}" |
		jq '[.response.data.reservationSet[]?.instancesSet[]?] | length'
}
