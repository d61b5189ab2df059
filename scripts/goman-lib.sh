# goman-lib.sh - sourced by scripts/goman: messages, usage errors,
# exit-code arithmetic, paths, and the few AWS calls the porcelain makes itself through
# goman-api (JSON lines in, JSON lines out). Nothing here runs on its own.
#
# Secrets: values that may be secret (the K3s token, the kubeconfig, AWS keys) only ever
# travel through pipes and files, never through argv: jq --arg is used for names, never
# for parameter values that could be secret.
# shellcheck shell=bash

# shellcheck disable=SC2034  # names for the scripts that source this file
# sysexits.h, as DESIGN.md uses them
GM_EX_USAGE=64 GM_EX_DATAERR=65 GM_EX_UNAVAILABLE=69 GM_EX_IOERR=74 GM_EX_TEMPFAIL=75
GM_EX_CONFIG=78
GM_NAME_RE='^[a-z][a-z0-9-]{0,39}$'

gm_prog=${gm_prog:-goman}

gm_say() { printf '%s\n' "$*" >&2; }
gm_warn() { printf '%s: %s\n' "$gm_prog" "$*" >&2; }
# die [CODE] MESSAGE: one line on stderr, then exit (default 1)
gm_die() {
	local code=1
	case "${1:-}" in '' | *[!0-9]*) ;; *) code=$1; shift ;; esac
	printf '%s: %s\n' "$gm_prog" "$*" >&2
	exit "$code"
}
# usage error: the message, a pointer to --help, exit 64
gm_usage_die() {
	printf '%s: %s\n' "$gm_prog" "$*" >&2
	printf "Try '%s --help'.\n" "$gm_prog" >&2
	exit "$GM_EX_USAGE"
}
gm_need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || gm_usage_die "option '$1' needs a value"; }
gm_need_uint() {
	case "$2" in '' | *[!0-9]*) gm_usage_die "option '$1' wants a non-negative integer, not '$2'" ;; esac
}

gm_valid_name() { [[ $1 =~ $GM_NAME_RE ]]; }
gm_check_name() {
	[ -n "${1:-}" ] || gm_usage_die "a cluster name is required"
	gm_valid_name "$1" || gm_usage_die "bad cluster name '$1' (want ^[a-z][a-z0-9-]{0,39}\$)"
}

# gm_worst CODE...: the exit code of a pipeline, first match of DESIGN.md's order wins:
# 64 usage, 74 output lost, 78 configuration, 65 bad input, 69 unavailable, 75 temporary,
# any other failure 1, else 0.
gm_worst() {
	local c w=0
	for c in 64 74 78 65 69 75; do
		case " $* " in *" $c "*) echo "$c"; return 0 ;; esac
	done
	for c in "$@"; do [ "$c" != 0 ] && w=1; done
	echo "$w"
}

gm_state_dir() { printf '%s/goman\n' "${XDG_STATE_HOME:-$HOME/.local/state}"; }
gm_state_file() { printf '%s/%s.jsonl\n' "$(gm_state_dir)" "$1"; }

# clusters that have a state file, one name a line
gm_state_clusters() {
	local f n
	for f in "$(gm_state_dir)"/*.jsonl; do
		[ -f "$f" ] || continue
		n=${f##*/}
		n=${n%.jsonl}
		gm_valid_name "$n" && printf '%s\n' "$n"
	done
	return 0
}

gm_now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# the concurrency of a profile, for goman-metrics' efficiency slots: what the plumbing's
# --show-config says (config.c holds the table); a profile it does not know gives the
# configured default, as a command without --env would use
gm_profile_concurrency() {
	local c
	c=$(goman-batch --show-config ${1:+--env "$1"} 2>/dev/null ||
		goman-batch --show-config 2>/dev/null)
	c=$(awk '$1 == "concurrency" && $2 == "=" { print $3; exit }' <<<"$c")
	[[ $c =~ ^[0-9]+$ ]] || return 1
	echo "$c"
}

gm_have() { command -v "$1" >/dev/null 2>&1; }
gm_require() {
	local c
	for c in "$@"; do
		gm_have "$c" || gm_die "$GM_EX_UNAVAILABLE" "'$c' is not installed or not on PATH"
	done
}

# ---- AWS through goman-api ---------------------------------------------------------------
# XML lists come back as arrays, but an empty one may be "" or null: arr makes any of them a list
GM_JQ_ARR='def arr: if type == "array" then . elif type == "object" then [.] else [] end; '
# gm_call SERVICE ACTION JSON: one call; JSON is the "params" object (query protocols: ec2,
# iam, sts) or "input" (JSON protocols: ssm, dynamodb). Prints the response line; returns
# goman-api's exit code. JSON comes on stdin of goman-api, never on its argv.
gm_call() {
	local key=params
	case "$1" in ssm | dynamodb) key=input ;; esac
	jq -nc --arg s "$1" --arg a "$2" --arg k "$key" --argjson p "$3" \
		'{service:$s, action:$a} + {($k): $p}' | goman-api
}
# the error code of a response line ("" when ok)
gm_err_code() { jq -r 'if .response.ok then "" else (.response.error.code // .error.code // "Error") end'; }

# gm_describe_cluster NAME: the cluster's live instances (not terminated) as node-like lines
# {cluster,name,role,index,instance_id,state,private_ip,public_ip,instance_type,az}, from
# goman-batch describe --cluster (the plumbing pages DescribeInstances). Returns its code
# on failure.
gm_describe_cluster() {
	local out rc
	out=$(GOMAN_LOG=${GOMAN_LOG:-warn} goman-batch describe --cluster "$1" --include-shutting-down)
	rc=$?
	jq -c 'select(.instance_id != null and .ok != false) |
		{cluster, name, role, index, group, via, instance_id, state: (.batch.state // .state),
		 private_ip, public_ip, instance_type, az}' <<<"$out"
	return $rc
}

# gm_cluster_via NODES: the transport the cluster was installed with, from its first
# server's goman:via tag (so drain and upgrade need no local state file); ssm when untagged
gm_cluster_via() {
	local v
	v=$(jq -r 'select(.role == "server" and .index == 0) | .via // empty' <<<"$1" | head -1)
	printf '%s\n' "${v:-ssm}"
}

# gm_tagged_clusters: "<cluster> <state>" for every live instance tagged goman:cluster, from
# goman-batch clusters (its per-state counts); non-zero when the listing failed
gm_tagged_clusters() {
	local out rc
	out=$(GOMAN_LOG=${GOMAN_LOG:-warn} goman-batch clusters --include-shutting-down)
	rc=$?
	[ $rc -eq 0 ] || return $rc
	jq -r 'select(.ok == true and .states != null) | .cluster as $c |
		.states | to_entries[] | range(.value) as $_ | "\($c) \(.key)"' <<<"$out"
}

# gm_dur_ms DUR: 90 (seconds), 90s, 500ms, 10m, 1h, 1h30m -> milliseconds; 1 when malformed
gm_dur_ms() {
	local d=$1 total=0 n u
	[[ $d =~ ^[0-9]+$ ]] && { echo $((d * 1000)); return 0; }
	[[ $d =~ ^([0-9]+(ms|s|m|h))+$ ]] || return 1
	while [[ $d =~ ^([0-9]+)(ms|s|m|h)(.*)$ ]]; do
		n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
		case $u in ms) total=$((total + n)) ;; s) total=$((total + n * 1000)) ;;
		m) total=$((total + n * 60000)) ;; h) total=$((total + n * 3600000)) ;; esac
	done
	echo "$total"
}
gm_ms_now() { echo $(($(date +%s%N) / 1000000)); }
# sleep for N milliseconds
gm_sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# ---- checks before anything is launched ---------------------------------------------------
# Each check prints one message and returns the code the command should exit with: 64 for
# a flag naming something that does not exist, 78 for credentials and configuration, the
# call's own code (69, 75, 1) when the check itself could not be made.

# gm_check_fail RC LINE WHAT: the message and code of a failed check call
gm_check_fail() {
	local rc=$1 line=$2 what=$3 code msg
	code=$(jq -r '.response.error.code // .error.code // "Error"' <<<"$line" 2>/dev/null)
	msg=$(jq -r '.response.error.message // .error.message // ""' <<<"$line" 2>/dev/null)
	[ -n "$code" ] || code=Error
	gm_warn "cannot check $what: $code${msg:+: $msg}"
	case $rc in 0) return 1 ;; *) return "$(gm_worst "$rc" 1)" ;; esac
}

# gm_check_credentials: one STS GetCallerIdentity; no credentials, refused ones, or a region
# missing or malformed in the environment or profile are configuration (78), said once
gm_check_credentials() {
	local out rc msg code
	out=$(gm_call sts GetCallerIdentity '{}' 2>/dev/null)
	rc=$?
	[ "$(jq -r '.response.ok // false' <<<"$out" 2>/dev/null)" = true ] && return 0
	code=$(jq -r '.response.error.code // .error.code // "Error"' <<<"$out" 2>/dev/null)
	msg=$(jq -r '.response.error.message // .error.message // ""' <<<"$out" 2>/dev/null)
	if [ "$rc" = "$GM_EX_CONFIG" ]; then
		gm_warn "credentials or configuration: ${msg:-$code} ($code); nothing launched"
		return "$GM_EX_CONFIG"
	fi
	gm_check_fail "$rc" "$out" "the credentials (STS GetCallerIdentity)"
}

# gm_check_exists WHAT SERVICE ACTION PARAMS NOTFOUND-REGEX: 0 when the call succeeds; 64
# when it answers a not-found code (the flag names something that is not there)
gm_check_exists() {
	local what=$1 out rc code msg
	out=$(gm_call "$2" "$3" "$4" 2>/dev/null)
	rc=$?
	[ "$(jq -r '.response.ok // false' <<<"$out" 2>/dev/null)" = true ] && return 0
	code=$(jq -r '.response.error.code // .error.code // "Error"' <<<"$out" 2>/dev/null)
	msg=$(jq -r '.response.error.message // .error.message // ""' <<<"$out" 2>/dev/null)
	if [[ $code =~ $5 ]]; then
		gm_warn "$what: ${msg:-$code} ($code); nothing launched"
		return "$GM_EX_USAGE"
	fi
	gm_check_fail "$rc" "$out" "$what"
}

# gm_check_types T...: every instance type exists (EC2 DescribeInstanceTypes)
gm_check_types() {
	[ $# -gt 0 ] || return 0
	local params
	params=$(printf '%s\n' "$@" | sort -u | jq -Rsc 'split("\n") | map(select(. != "")) |
		to_entries | map({("InstanceType.\(.key + 1)"): .value}) | add')
	gm_check_exists "instance type" ec2 DescribeInstanceTypes "$params" '^InvalidInstanceType'
}
# gm_check_ami ID|ssm:/path
gm_check_ami() {
	case $1 in
	ssm:*) gm_check_exists "AMI parameter" ssm GetParameter "$(jq -nc --arg n "${1#ssm:}" '{Name:$n}')" \
		'^(ParameterNotFound|ValidationException)' ;;
	*) gm_check_exists "AMI" ec2 DescribeImages "$(jq -nc --arg a "$1" '{"ImageId.1":$a}')" \
		'^InvalidAMIID' ;;
	esac
}
# gm_check_subnets ID...
gm_check_subnets() {
	[ $# -gt 0 ] || return 0
	local params
	params=$(printf '%s\n' "$@" | jq -Rsc 'split("\n") | map(select(. != "")) |
		to_entries | map({("SubnetId.\(.key + 1)"): .value}) | add')
	gm_check_exists "subnet" ec2 DescribeSubnets "$params" '^InvalidSubnet'
}
# gm_check_key_pair NAME
gm_check_key_pair() {
	gm_check_exists "key pair" ec2 DescribeKeyPairs "$(jq -nc --arg k "$1" '{"KeyName.1":$k}')" \
		'^InvalidKeyPair'
}

# gm_check_cidr FLAG VALUE: an IPv4 CIDR (a.b.c.d/n), else a usage error
gm_check_cidr() {
	local ip=${2%/*} n=${2##*/} o
	[[ $2 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] && [ "$n" -le 32 ] &&
		for o in ${ip//./ }; do [ "$o" -le 255 ] || break; done && [ "${o:-0}" -le 255 ] ||
		gm_usage_die "$1 wants an IPv4 CIDR like 203.0.113.7/32, not '$2'"
}

# gm_check_install_flags ARGS...: goman-install's flags as the run will pass them, checked
# without a node. goman-install --check does that where it exists; before it, --show-config
# parses every flag (unknown options, bad durations: 64) and does nothing else.
gm_check_install_flags() {
	local err rc
	if goman-install --help 2>/dev/null | grep -q -- '--check'; then
		err=$(goman-install --check "$@" 2>&1 >/dev/null </dev/null)
	else
		err=$(goman-install "$@" --show-config 2>&1 >/dev/null </dev/null)
	fi
	rc=$?
	[ $rc -eq 0 ] && return 0
	gm_warn "install flags: $(head -1 <<<"$err" | sed 's/^goman-install: //'); nothing launched"
	return "$rc"
}
# gm_check_provision_flags ARGS...: goman-provision's flags, parsed the same way
gm_check_provision_flags() {
	local err rc
	err=$(goman-provision "$@" --show-config 2>&1 >/dev/null </dev/null)
	rc=$?
	[ $rc -eq 0 ] && return 0
	gm_warn "provision flags: $(head -1 <<<"$err" | sed 's/^goman-provision: //'); nothing launched"
	return "$rc"
}
