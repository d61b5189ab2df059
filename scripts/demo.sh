#!/usr/bin/env bash
# demo.sh - `make demo`: the main job of goman against a local AWS endpoint, on a fresh box.
#
#   1. signed calls through libgoman (goman-api): STS, EC2, SSM; a wrong secret is refused
#   2. goman init: the IAM role and instance profile goman-node
#   3. goman cluster create demo: 1 server + 2 agents over SSM, records and the metrics table
#   4. goman cluster delete demo, and the endpoint stopped
#
# Everything it writes (state files, the endpoint's state) lives in a temporary directory,
# removed at the end; ~/.aws is not read. Exit 0 when every step did what it should.
# GOMAN_BUILD (set by make) says where the built commands are.
set -u
export AWS_EC2_METADATA_DISABLED=true   # never ask 169.254.169.254 for credentials

root=$(cd "$(dirname "$0")/.." && pwd)
GOMAN_BUILD=${GOMAN_BUILD:-build}
case $GOMAN_BUILD in /*) ;; *) GOMAN_BUILD=$root/$GOMAN_BUILD ;; esac
export GOMAN_BUILD
export PATH="$GOMAN_BUILD/bin:$root/scripts:$PATH"
cluster=${GOMAN_DEMO_CLUSTER:-demo}

work=$(mktemp -d "${TMPDIR:-/tmp}/goman-demo.XXXXXX")
export XDG_STATE_HOME=$work/state XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL GOMAN_EVENTS GOMAN_ENV
mkdir -p "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME" && chmod 700 "$XDG_RUNTIME_DIR"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then B=$'\e[1m' N=$'\e[0m'; else B="" N=""; fi
section() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
say() { printf '%s\n' "$*"; }
run() { printf '%s$ %s%s\n' "$B" "$*" "$N"; "$@"; }
fail() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
	goman local-aws stop >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v jq >/dev/null || fail "jq is not installed (make deps)"
for c in goman-api goman-provision goman-install goman-batch goman-metrics; do
	[ -x "$GOMAN_BUILD/bin/$c" ] || fail "$GOMAN_BUILD/bin/$c is missing: run make first"
done

section "local AWS endpoint"
say "moto_server on loopback, signature checking on, AWS managed policies loaded (this takes a while)."
printf '%s$ eval "$(goman local-aws start)"%s\n' "$B" "$N"
env_lines=$(goman local-aws start) || fail "the local AWS endpoint did not start"
eval "$env_lines"
unset env_lines
say "endpoint $AWS_ENDPOINT_URL, region $AWS_REGION, access key $AWS_ACCESS_KEY_ID (secret in the environment only)"

section "1. signed calls through libgoman (goman-api)"
calls='{"service":"sts","action":"GetCallerIdentity"}
{"service":"ec2","action":"DescribeRegions"}
{"service":"ssm","action":"GetParameter","input":{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}}'
printf '%s$ goman-api <<calls (STS GetCallerIdentity, EC2 DescribeRegions, SSM GetParameter)%s\n' "$B" "$N"
out=$(printf '%s\n' "$calls" | goman-api) || fail "goman-api: a signed call failed"
jq -r '"\(.service) \(.action): HTTP \(.response.http_status), \(.response.ms) ms -> " + (
	if .action == "GetCallerIdentity" then .response.data.GetCallerIdentityResult.Arn
	elif .action == "DescribeRegions" then "\(.response.data.regionInfo | length) regions"
	else "AL2023 AMI \(.response.data.Parameter.Value)" end)' <<<"$out"
say ""
say "The same call with a wrong secret key (in the environment, never on argv):"
printf '%s$ AWS_SECRET_ACCESS_KEY=wrong goman-api <<<%s%s\n' "$B" "'{\"service\":\"sts\",\"action\":\"GetCallerIdentity\"}'" "$N"
out=$(AWS_SECRET_ACCESS_KEY=wrong-secret-for-the-demo goman-api <<<'{"service":"sts","action":"GetCallerIdentity"}' 2>/dev/null)
rc=$?
[ $rc -ne 0 ] && [ "$(jq -r .response.ok <<<"$out")" = false ] || fail "a wrong signature was accepted"
jq -r '"refused: HTTP \(.response.http_status) \(.response.error.code) (class \(.response.error.class)); goman-api exit '"$rc"'"' <<<"$out"

section "2. goman init"
run goman init || fail "goman init"

section "3. goman cluster create $cluster (1 server + 2 agents, via SSM)"
say "NOTE: the local endpoint acknowledges SSM commands without running them: nothing is"
say "installed here, the commands' output is empty, and so every record says \"verified\":false."
say "The wire protocol (SendCommand batches, invocation polling, the SecureString token kept"
say "out of the command text) is the one real AWS gets; on EC2 the same command installs K3s."
# moto answers at once: poll fast and do not wait long for a node table that never comes
run goman cluster create "$cluster" --servers 1 --agents 2 --via ssm -- \
	--poll-interval 200ms --poll-floor 100ms --verify-wait 1s || fail "goman cluster create"

state=$XDG_STATE_HOME/goman/$cluster.jsonl
say ""
say "Node records ($state):"
jq -r 'select(.event == null and .name != null) |
	[.name, .instance_id, .private_ip, "provision \(.provision.ms) ms",
	 "install ok=\(.install.ok) via=\(.install.via) verified=\(.install.verified)"] | @tsv' "$state" |
	while IFS=$'\t' read -r n id ip p i; do printf '%-16s %-21s %-16s %-18s %s\n' "$n" "$id" "$ip" "$p" "$i"; done
say ""
say "One record in full:"
jq -c 'select(.event == null and .role == "server")' "$state" | tail -1
n=$(jq -s '[.[] | select(.event == null and .name != null and .ok == true)] | length' "$state")
[ "$n" -eq 3 ] || fail "expected 3 ok node records, got $n"
unverified=$(jq -s '[.[] | select(.event == null and .install.verified == false)] | length' "$state")
say ""
say "$unverified of 3 records say \"verified\":false, as the local endpoint runs nothing."

section "the cluster as goman sees it"
say "The metrics of the state file: the records plus the plumbing's event lines (API calls)."
run goman metrics "$cluster" || fail "goman metrics"
run goman cluster list || fail "goman cluster list"
run goman plan --nodes 3

section "4. goman cluster delete $cluster"
run env GOMAN_POLL_MS=200 goman cluster delete "$cluster" --yes || fail "goman cluster delete"
left=$(goman-api <<<'{"service":"ec2","action":"DescribeInstances","params":{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":"'"$cluster"'","Filter.2.Name":"instance-state-name","Filter.2.Value.1":"running","Filter.2.Value.2":"pending"}}' |
	jq '[.response.data.reservationSet | if type == "array" then .[] else empty end | .instancesSet[]] | length')
[ "$left" = 0 ] || fail "$left instance(s) still running after delete"
say "no instance of $cluster left running"

section "local AWS endpoint"
run goman local-aws stop
say ""
say "demo: ok"
