#!/usr/bin/env bats
# The goman porcelain, every verb, against moto with signature checking on. The endpoint is
# started by `goman local-aws start` itself (managed policies loaded, for goman init) and
# stopped by `goman local-aws stop` in the last test and in teardown_file.
load helpers
# shellcheck source=fixtures/sshd.bash
. "$ROOT/tests/fixtures/sshd.bash"
load fixtures/fault_proxy

# moto answers SSM at once: poll fast, do not wait for a node table that never comes
FAST=(-- --poll-interval 200ms --poll-floor 100ms --verify-wait 1s)

setup_file() {
	isolate_home
	export GOMAN_POLL_MS=200
	local out
	out=$(HOME=$REAL_HOME goman local-aws start) || return 1
	LOCAL_AWS_PYTHON=$(HOME=$REAL_HOME "$ROOT/scripts/local-aws.sh" python)
	out+=$'\n'"export LOCAL_AWS_PYTHON=$LOCAL_AWS_PYTHON"
	mirror_start "$BATS_FILE_TMPDIR/mirror" "$K3S_V" || return 1
	out+=$'\n'"export MIRROR=$MIRROR"
	eval "$out"
	printf '%s\n' "$out" >"$BATS_FILE_TMPDIR/env"
}

setup() {
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/env"
}

teardown_file() {
	fault_proxy_stop
	mirror_stop "$BATS_FILE_TMPDIR/mirror"
	goman local-aws stop >/dev/null 2>&1 || true
}
K3S_V=v1.31.4+k3s1
# a table as a terminal shows it: script(1) gives the command one
on_tty() { script -qec "$*" /dev/null </dev/null | tr -d '\r'; }

# api SERVICE ACTION JSON -> the response line (JSON on stdin of goman-api, never argv)
api() {
	local key=params
	case $1 in ssm) key=input ;; esac
	jq -nc --arg s "$1" --arg a "$2" --arg k "$key" --argjson p "$3" '{service:$s,action:$a} + {($k):$p}' | goman-api
}
# live instances of a cluster (optionally of one role)
count_live() {
	api ec2 DescribeInstances "$(jq -nc --arg c "$1" '{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":$c,
		"Filter.2.Name":"instance-state-name","Filter.2.Value.1":"pending","Filter.2.Value.2":"running",
		"Filter.2.Value.3":"stopping","Filter.2.Value.4":"stopped"}')" |
		jq --arg r "${2:-}" '[.response.data.reservationSet | if type == "array" then .[] else empty end |
			.instancesSet[] | select($r == "" or any(.tagSet[]; .key == "goman:role" and .value == $r))] | length'
}
records() { jq -c 'select(.event == null and .name != null)' "$XDG_STATE_HOME/goman/$1.jsonl"; }

@test "goman: --help lists every command and each verb has --help on stdout" {
	run -0 goman --help
	for c in "cluster create" "cluster delete" "cluster list" "cluster status" "cluster kubeconfig" \
		"cluster scale" "cluster upgrade" "plan --nodes" "metrics" "init" "local-aws"; do
		assert_output --partial "$c"
	done
	for v in create delete list status kubeconfig scale upgrade; do
		run -0 --separate-stderr goman cluster "$v" --help
		assert_output --partial "usage: goman cluster $v"
	done
	for c in plan metrics init local-aws; do
		run -0 --separate-stderr goman "$c" --help
		assert_output --partial "usage: goman $c"
	done
	run -0 goman --version
	assert_output "goman $(cat "$ROOT/VERSION")"
}

@test "goman: unknown commands, verbs and options are usage errors (64)" {
	run -64 goman frobnicate
	assert_output --partial "unknown command 'frobnicate'"
	run -64 goman cluster frobnicate
	run -64 goman cluster create ok --bogus
	assert_output --partial "unknown option '--bogus'"
	run -64 goman cluster create ok --servers many
	run -64 goman cluster create ok --via telnet
	run -64 goman cluster create ok --env prod
	run -64 goman
}

@test "goman cluster: names are validated before any AWS call" {
	for n in Bad 1abc a_b -x "a.b" "$(printf 'a%.0s' {1..41})" ""; do
		run -64 goman cluster status "$n"
		run -64 goman cluster delete "$n" --yes
		run -64 goman cluster create "$n"
	done
	# 40 characters is the limit
	run -64 goman cluster create "$(printf 'a%.0s' {1..40})" --agents 200
	assert_output --partial "more than --max-nodes"
}

@test "goman cluster create: refuses more than --max-nodes without --force, launching nothing" {
	run -64 goman cluster create big --servers 1 --agents 100
	assert_output --partial "101 nodes is more than --max-nodes 100; add --force"
	run -64 goman cluster create big --servers 3 --agents 3 --max-nodes 5
	[ "$(count_live big)" = 0 ]
	[ ! -e "$XDG_STATE_HOME/goman/big.jsonl" ]
}

@test "goman plan: the seed's capacity formula, concurrency clamped to at least 1" {
	run -0 goman plan --nodes 1 --json
	assert_output '{"nodes":1,"memory_mb":562,"cpu":1,"concurrency":1,"profile":"development","expected_minutes":{"min":3,"max":4},"extrapolated":false}'
	run -0 goman plan --nodes 20 --json
	assert_output '{"nodes":20,"memory_mb":1512,"cpu":2,"concurrency":10,"profile":"production","expected_minutes":{"min":14,"max":17.5},"extrapolated":false}'
	run -0 goman plan --nodes 7 --json
	[ "$(jq -c '[.memory_mb, .cpu, .concurrency, .profile]' <<<"$output")" = '[862,1,3,"staging"]' ]
	run -0 goman plan --nodes 150 --json
	[ "$(jq -c '[.memory_mb, .cpu, .concurrency, .profile, .extrapolated]' <<<"$output")" = '[8012,15,10,"high-volume",true]' ]
	run -0 goman plan --nodes 3
	assert_line --regexp '^memory +662 MB$'
	assert_line --regexp '^expected time +8-10 min$'
	run -64 goman plan
	run -64 goman plan --nodes 0
}

@test "goman init: role goman-node with SSM core and /goman/* parameters, instance profile; twice is fine" {
	run -0 --separate-stderr goman init
	assert_equal "$(jq -r '.init.ok' <<<"$output")" true
	run -0 --separate-stderr goman init
	assert_equal "$(jq -r '.init.instance_profile_arn' <<<"$output")" "arn:aws:iam::123456789012:instance-profile/goman-node"
	run -0 api iam GetRole '{"RoleName":"goman-node"}'
	doc=$(jq -r '.response.data.GetRoleResult.Role.AssumeRolePolicyDocument' <<<"$output")
	[[ $doc == *ec2.amazonaws.com* ]]
	run -0 api iam ListAttachedRolePolicies '{"RoleName":"goman-node"}'
	assert_output --partial 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore'
	run -0 api iam GetRolePolicy '{"RoleName":"goman-node","PolicyName":"goman-parameters"}'
	# moto hands the document back percent-encoded
	pol=$(jq -r '.response.data.GetRolePolicyResult.PolicyDocument' <<<"$output" |
		"$LOCAL_AWS_PYTHON" -c 'import sys,urllib.parse; print(urllib.parse.unquote(sys.stdin.read().strip()))')
	[ "$(jq -c '.Statement[0].Action | sort' <<<"$pol")" = '["ssm:GetParameter","ssm:GetParameters","ssm:PutParameter"]' ]
	[ "$(jq -r '.Statement[0].Resource' <<<"$pol")" = 'arn:aws:ssm:*:*:parameter/goman/*' ]
	run -0 api iam GetInstanceProfile '{"InstanceProfileName":"goman-node"}'
	[ "$(jq -c '[.response.data.GetInstanceProfileResult.InstanceProfile.Roles[].RoleName]' <<<"$output")" = '["goman-node"]' ]
}

@test "goman cluster create: 1 server + 2 agents via ssm, records in the state file, node records then the summary" {
	run -0 --separate-stderr goman cluster create alpha --servers 1 --agents 2 --via ssm "${FAST[@]}"
	# not a terminal: JSON lines, the node records then {"summary"} as the last line
	[ "${#lines[@]}" = 4 ]
	[ "$(jq -sc '.[:3] | map(.name) | sort' <<<"$output")" = '["alpha-agent-0","alpha-agent-1","alpha-server-0"]' ]
	# "not verified" (no node table, as against moto) is not "not Ready": exit 0
	[ "$(jq -c '.summary | [.nodes, .nodes_ok, .verified, .nodes_ready]' <<<"${lines[3]}")" = '[3,3,false,null]' ]
	# the summary counts this run's own calls
	[ "$(jq '.summary.health.api_calls' <<<"${lines[3]}")" -gt 0 ]
	[ "$(count_live alpha)" = 3 ]
	[ "$(count_live alpha server)" = 1 ]
	run -0 records alpha
	[ "${#lines[@]}" = 3 ]
	[ "$(jq -s '[.[] | select(.ok == true and .install.via == "ssm" and .install.verified == false)] | length' <<<"$output")" = 3 ]
	[ "$(jq -sc 'map(.name) | sort' <<<"$output")" = '["alpha-agent-0","alpha-agent-1","alpha-server-0"]' ]
	# the plumbing's event lines went to the state file too
	run -0 jq -s '[.[] | select(.event == "api_call")] | length' "$XDG_STATE_HOME/goman/alpha.jsonl"
	[ "$output" -gt 0 ]
	# the cluster token exists, and never reached the state file
	token=$(api ssm GetParameter '{"Name":"/goman/alpha/token","WithDecryption":true}' | jq -r .response.data.Parameter.Value)
	[ -n "$token" ] && [ "$token" != null ]
	run -1 grep -rF -- "$token" "$XDG_STATE_HOME/goman"
}

@test "goman cluster create: a re-run converges (no new instance) and every stage's status counts" {
	run -0 --separate-stderr goman cluster create alpha --servers 1 --agents 2 "${FAST[@]}"
	[ "$(count_live alpha)" = 3 ]
	# the summary counts this run's calls, not every call the state file has seen
	run_calls=$(jq '.summary.health.api_calls' <<<"${lines[-1]}")
	all_calls=$(jq -s '[.[] | select(.event == "api_call")] | length' "$XDG_STATE_HOME/goman/alpha.jsonl")
	[ "$run_calls" -gt 0 ] && [ "$run_calls" -lt "$all_calls" ]
	# a failing stage is not lost: an install flag it rejects stops create before anything
	run -64 --separate-stderr goman cluster create alpha --servers 1 --agents 3 -- --no-such-install-flag
	[[ $stderr == *"install flags: unrecognized option '--no-such-install-flag'; nothing launched"* ]]
	[ "$(count_live alpha)" = 3 ]
	# on a terminal the summary is a table
	run -0 on_tty goman cluster create alpha --servers 1 --agents 2 "${FAST[@]}"
	assert_output --partial "cluster alpha: 3 nodes, 3 ok"
	assert_output --partial "success rate"
	assert_line --regexp '^nodes ready +not verified'
}

@test "goman cluster list: clusters that have instances; a state file without instances is no row" {
	run -0 on_tty goman cluster list
	assert_line --regexp '^alpha +3 +3 +.*/goman/alpha.jsonl$'
	# not a terminal: JSON lines
	run -0 --separate-stderr goman cluster list
	[ "$(jq -sc '.[] | select(.cluster == "alpha") | [.instances, .running]' <<<"$output")" = '[3,3]' ]
	printf '{"event":"cluster","cluster":"ghost","phase":"ready"}\n' >"$XDG_STATE_HOME/goman/ghost.jsonl"
	run -0 --separate-stderr goman cluster list --json
	[ "$(jq -sc 'map(.cluster)' <<<"$output")" = '["alpha"]' ]
	rm -f "$XDG_STATE_HOME/goman/ghost.jsonl"
}

@test "goman cluster list: a count it could not read is unknown, never 0" {
	printf '{"event":"cluster","cluster":"ghost","phase":"ready"}\n' >"$XDG_STATE_HOME/goman/ghost.jsonl"
	run -0 --separate-stderr goman cluster list --local --json
	[ "$(jq -sc 'map([.cluster, .instances, .running])' <<<"$output")" = '[["alpha",null,null],["ghost",null,null]]' ]
	AWS_ENDPOINT_URL=http://127.0.0.1:9 GOMAN_ENV=development run --separate-stderr goman cluster list
	[ "$status" -ne 0 ]
	[[ $stderr == *"counts unknown"* ]]
	run -0 on_tty goman cluster list --local
	assert_line --regexp '^ghost +unknown +unknown '
	rm -f "$XDG_STATE_HOME/goman/ghost.jsonl"
}

@test "goman cluster status: nodes server first, then the state file's metrics" {
	run -0 on_tty goman cluster status alpha
	assert_line --index 0 --regexp '^NAME +ROLE +INDEX +INSTANCE +STATE +PRIVATE-IP$'
	assert_line --index 1 --regexp '^alpha-server-0 +server +0 +i-[0-9a-f]+ +running +[0-9.]+$'
	assert_line --index 2 --regexp '^alpha-agent-0 +agent +0 '
	assert_output --partial "cluster alpha: 3 nodes, 3 ok"
	run -0 --separate-stderr goman cluster status alpha
	[ "$(jq -c '[(.nodes | length), .nodes[0].role, (.metrics | type)]' <<<"$output")" = '[3,"server","object"]' ]
	run -1 --separate-stderr goman cluster status nosuch
	[[ $stderr == *"no cluster 'nosuch'"* ]]
}

@test "goman cluster kubeconfig: SecureString to ~/.kube/goman-NAME.yaml, mode 0600, value never printed" {
	run -1 --separate-stderr goman cluster kubeconfig alpha
	[[ $stderr == *"no kubeconfig stored for 'alpha'"* ]]
	[ ! -e "$HOME/.kube/goman-alpha.yaml" ]
	tok=kc-$RANDOM$RANDOM
	secret="apiVersion: v1
clusters: [{cluster: {server: 'https://10.0.0.1:6443'}, name: default}]
users: [{name: default, user: {token: $tok}}]"
	jq -nc --arg v "$secret" '{service:"ssm",action:"PutParameter",input:{Name:"/goman/alpha/kubeconfig",Type:"SecureString",Value:$v,Overwrite:true}}' |
		goman-api >/dev/null
	run -0 --separate-stderr goman cluster kubeconfig alpha
	assert_output "$HOME/.kube/goman-alpha.yaml"
	[ "$(stat -c %a "$HOME/.kube/goman-alpha.yaml")" = 600 ]
	run -0 kc_names "$HOME/.kube/goman-alpha.yaml"
	assert_output "goman-alpha goman-alpha goman-alpha goman-alpha https://10.0.0.1:6443 $tok"
	[[ $stderr != *kc-* ]]
	run -0 --separate-stderr goman cluster kubeconfig alpha --output "$BATS_TEST_TMPDIR/kc"
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/kc")" = 600 ]
	# no temporary file left beside it
	[ "$(ls -A "$HOME/.kube")" = goman-alpha.yaml ]
}

# kc_names FILE -> "current-context cluster context user server credential" of goman's entry
kc_names() {
	"$LOCAL_AWS_PYTHON" - "$1" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
c = [x for x in d["clusters"] if x["name"].startswith("goman-")][0]
x = [x for x in d["contexts"] if x["name"].startswith("goman-")][0]
u = [x for x in d["users"] if x["name"].startswith("goman-")][0]
assert x["context"] == {"cluster": c["name"], "user": u["name"]}
print(d.get("current-context"), c["name"], x["name"], u["name"], c["cluster"]["server"],
      u["user"].get("token"))
PY
}

other_kubeconfig() {
	cat <<'EOF'
apiVersion: v1
clusters:
- cluster: {server: 'https://ABCD.eks.amazonaws.com'}
  name: prod-eks
contexts:
- context: {cluster: prod-eks, user: prod-eks}
  name: prod-eks
current-context: prod-eks
kind: Config
users:
- name: prod-eks
  user: {exec: {command: aws, args: [eks, get-token]}}
EOF
}

@test "goman cluster kubeconfig --output refuses a file that holds another cluster" {
	other_kubeconfig >"$BATS_TEST_TMPDIR/shared"
	before=$(cat "$BATS_TEST_TMPDIR/shared")
	run -1 --separate-stderr goman cluster kubeconfig alpha --output "$BATS_TEST_TMPDIR/shared"
	[[ $stderr == *"holds other entries (prod-eks"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/shared")" = "$before" ]
}

@test "goman cluster kubeconfig --merge keeps the other contexts, backs up, writes 0600; --use switches" {
	export KUBECONFIG="$BATS_TEST_TMPDIR/first:$BATS_TEST_TMPDIR/second"
	other_kubeconfig >"$BATS_TEST_TMPDIR/first"
	chmod 644 "$BATS_TEST_TMPDIR/first"
	before=$(cat "$BATS_TEST_TMPDIR/first")
	run -0 --separate-stderr goman cluster kubeconfig alpha --merge --server https://54.1.2.3:6443
	assert_output "$BATS_TEST_TMPDIR/first"
	[ ! -e "$BATS_TEST_TMPDIR/second" ] # kubectl's rule: merge into the first file
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/first")" = 600 ]
	run -0 kc_names "$BATS_TEST_TMPDIR/first"
	[[ $output == "prod-eks goman-alpha goman-alpha goman-alpha https://54.1.2.3:6443 kc-"* ]]
	run -0 "$LOCAL_AWS_PYTHON" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1]))
print(sorted(x["name"] for x in d["contexts"]), d["users"][0]["user"]["exec"]["args"])' "$BATS_TEST_TMPDIR/first"
	assert_output "['goman-alpha', 'prod-eks'] ['eks', 'get-token']"
	backup=$(ls "$BATS_TEST_TMPDIR"/first.goman-*.bak)
	[ "$(cat "$backup")" = "$before" ]
	run -0 --separate-stderr goman cluster kubeconfig alpha --merge --use
	run -0 kc_names "$BATS_TEST_TMPDIR/first"
	[[ $output == "goman-alpha goman-alpha "* ]]
	[ "$("$LOCAL_AWS_PYTHON" -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["clusters"]))' "$BATS_TEST_TMPDIR/first")" = 2 ]
	run -64 --separate-stderr goman cluster kubeconfig alpha --use
	run -64 --separate-stderr goman cluster kubeconfig alpha --merge --output x
}

@test "goman metrics: goman-metrics over the cluster's state file, or stdin without one" {
	run -0 goman metrics alpha --format json
	[ "$(jq -c '.clusters[0] | [.cluster, .nodes, .nodes_ok]' <<<"$output")" = '["alpha",3,3]' ]
	[ "$(jq '.health.api_calls' <<<"$output")" -gt 0 ]
	run -0 goman metrics --cluster alpha
	assert_output --partial "cluster alpha: 3 nodes"
	run -0 bash -c 'jq -c "select(.event == null and .name != null)" "$XDG_STATE_HOME/goman/alpha.jsonl" | head -1 | goman metrics'
	assert_output --partial "cluster alpha: 1 nodes"
	run -1 goman metrics nosuch
}

@test "goman cluster scale: up provisions and installs only the new agent, down drains and terminates the highest" {
	before=$(records alpha | jq -s '[.[] | select(.name == "alpha-agent-0")] | length')
	run -0 --separate-stderr goman cluster scale alpha --agents 3 "${FAST[@]}"
	[ "$(count_live alpha agent)" = 3 ]
	run -0 records alpha
	[ "$(jq -s '[.[] | select(.name == "alpha-agent-2" and .install.ok == true)] | length' <<<"$output")" = 1 ]
	# only the new node went through install this time: one record of it, not of the old ones
	[ "$(jq -s '[.[] | select(.name == "alpha-agent-0")] | length' <<<"$output")" = "$before" ]
	s0=$(records alpha | jq -r 'select(.name == "alpha-server-0") | .instance_id' | tail -1)
	# a termination names its instances and, without a terminal, needs --yes
	run -64 --separate-stderr goman cluster scale alpha --agents 1 </dev/null
	[[ $stderr == *"alpha-agent-2 i-"* && $stderr == *"alpha-agent-1 i-"* && $stderr == *"pass --yes"* ]]
	[ "$(count_live alpha agent)" = 3 ]
	run -1 script -qec "goman cluster scale alpha --agents 1" /dev/null <<<"n"
	assert_output --partial "Drain and terminate these 2 agent(s)?"
	[ "$(count_live alpha agent)" = 3 ]
	run -0 --separate-stderr goman cluster scale alpha --agents 1 --yes
	[[ $stderr == *"draining 2 from the first server"* ]]
	scaled=$output
	# goman-install --action delete drained each agent from the first server over the
	# cluster's transport (SSM here, from its goman:via tag) and deleted its node object
	run -0 api ssm ListCommands "{\"InstanceId\":\"$s0\"}"
	drain=$(jq -c '[.response.data.Commands[] | select(.Comment == "goman install alpha kubectl")]' <<<"$output")
	[ "$(jq length <<<"$drain")" = 2 ]
	# (their InstanceIds are not checked: moto expands them to every instance of the region)
	text=$(jq -r '[.[].Parameters.commands[]] | join("\n")' <<<"$drain")
	for n in alpha-agent-1 alpha-agent-2; do
		[[ $text == *"kubectl drain --ignore-daemonsets --delete-emptydir-data --force"*"'$n'"* ]]
		[[ $text == *"kubectl delete node '$n'"* ]]
	done
	# no SSM script of the porcelain's own any more
	[ "$(jq '[.response.data.Commands[] | select(.Comment == "goman scale: drain")] | length' <<<"$output")" = 0 ]
	[ "$(jq -sc 'map(.name) | sort' <<<"$scaled")" = '["alpha-agent-1","alpha-agent-2"]' ]
	[ "$(jq -s 'all(.batch.action == "terminate" and .ok == true)' <<<"$scaled")" = true ]
	[ "$(count_live alpha agent)" = 1 ]
	[ "$(count_live alpha server)" = 1 ]
	# status counts the nodes that exist, not the state file's history
	run -0 --separate-stderr goman cluster status alpha
	[ "$(jq -c '[(.nodes | length), .metrics.clusters[0].nodes]' <<<"$output")" = '[2,2]' ]
	run -0 --separate-stderr goman cluster scale alpha --agents 1
	[[ $stderr == *"already has 1 agent"* ]]
	run -64 goman cluster scale alpha
	run -64 --separate-stderr goman cluster scale alpha --agents 4 -- --no-such-install-flag
	[[ $stderr == *"install flags: unrecognized option"* ]]
	[ "$(count_live alpha agent)" = 1 ]
}

@test "goman cluster upgrade: servers one at a time, then agents, with the new version" {
	run -0 --separate-stderr goman cluster upgrade alpha --k3s-version v1.31.5+k3s1 "${FAST[@]}"
	[ "${#lines[@]}" = 2 ]
	[ "$(jq -sc 'map(.role)' <<<"$output")" = '["server","agent"]' ]
	[ "$(jq -s 'all(.install.ok == true)' <<<"$output")" = true ]
	[[ $stderr == *"draining alpha-server-0"*"upgrading alpha-server-0 to v1.31.5+k3s1"*"draining alpha-agent-0"*"upgrading alpha-agent-0 to v1.31.5+k3s1"* ]]
	# each node drained, then uncordoned, by kubectl on the first server (SSM commands)
	s0=$(records alpha | jq -r 'select(.name == "alpha-server-0") | .instance_id' | tail -1)
	run -0 api ssm ListCommands "{\"InstanceId\":\"$s0\"}"
	cmds=$(jq -r '.response.data.Commands[] | .Parameters.commands | join(" ")' <<<"$output")
	[ "$(grep -c 'kubectl drain.*alpha-server-0' <<<"$cmds")" = 1 ]
	[ "$(grep -c 'kubectl drain.*alpha-agent-0' <<<"$cmds")" = 1 ]
	[ "$(grep -c 'kubectl uncordon.*alpha-agent-0' <<<"$cmds")" = 1 ]
	run -64 goman cluster upgrade alpha
}

@test "goman cluster delete: refuses without a terminal or --yes, then removes instances, parameters, group" {
	run -64 --separate-stderr goman cluster delete alpha </dev/null
	[[ $stderr == *"pass --yes"* ]]
	[ "$(count_live alpha)" = 2 ]
	# on a terminal (script(1) gives it one) it asks; anything but yes keeps the cluster
	run -1 script -qec "goman cluster delete alpha" /dev/null <<<"n"
	assert_output --partial "Delete cluster 'alpha'"
	# the prompt comes after the instances it would terminate
	assert_output --partial "alpha-server-0 i-"
	assert_output --partial "not deleted"
	[ "$(count_live alpha)" = 2 ]
	launches=$(goman-idem list | jq -s 'map(select(.identity.cluster == "alpha")) | length')
	[ "$launches" -ge 1 ]
	run -0 script -qec "goman cluster delete alpha" /dev/null <<<"y"
	# on a terminal: one line that says what went
	assert_output --partial "cluster alpha deleted: 2 instance(s) terminated, parameters /goman/alpha/token"
	# its launch records are forgotten: a new alpha may launch with other parameters
	assert_output --partial " $launches launch record(s) forgotten"
	[ -z "$(goman-idem list | jq -c 'select(.identity.cluster == "alpha")')" ]
	[ "$(count_live alpha)" = 0 ]
	run -0 api ssm GetParameters '{"Names":["/goman/alpha/token","/goman/alpha/kubeconfig"]}'
	[ "$(jq -c '.response.data.InvalidParameters | sort' <<<"$output")" = '["/goman/alpha/kubeconfig","/goman/alpha/token"]' ]
	run -0 api ec2 DescribeSecurityGroups '{"Filter.1.Name":"group-name","Filter.1.Value.1":"goman-alpha"}'
	[ "$(jq '.response.data.securityGroupInfo | if type == "array" then length else 0 end' <<<"$output")" = 0 ]
	[ ! -e "$XDG_STATE_HOME/goman/alpha.jsonl" ]
	[ -s "$XDG_STATE_HOME/goman/alpha.deleted.jsonl" ]
	# a cluster with neither instances nor parameters: said so, exit 1, nothing printed as deleted
	run -1 --separate-stderr goman cluster delete alpha --yes
	[[ $stderr == *"no cluster 'alpha'"* && $stderr != *"deleted ("* ]]
	[ -z "$output" ]
}

@test "goman cluster delete: a cluster that does not exist exits 1 and says so" {
	run -1 --separate-stderr goman cluster delete nosuch --yes
	[[ $stderr == *"no cluster 'nosuch'"*"nothing deleted"* ]]
	[ -z "$output" ]
}

@test "goman cluster delete: termination protection stops it, nothing else deleted, until --force" {
	ami=$(api ssm GetParameter '{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}' |
		jq -r .response.data.Parameter.Value)
	run -0 api ec2 RunInstances "$(jq -nc --arg a "$ami" '{ImageId:$a, MinCount:"1", MaxCount:"1",
		InstanceType:"t3.micro", "TagSpecification.1.ResourceType":"instance",
		"TagSpecification.1.Tag.1.Key":"goman:cluster", "TagSpecification.1.Tag.1.Value":"prot"}')"
	id=$(jq -r '.response.data.instancesSet[0].instanceId' <<<"$output")
	# (moto ignores DisableApiTermination at launch; it honours the attribute set afterwards)
	run -0 api ec2 ModifyInstanceAttribute "{\"InstanceId\":\"$id\",\"DisableApiTermination.Value\":\"true\"}"
	[ "$(jq -r .response.ok <<<"$output")" = true ]
	run -0 api ssm PutParameter '{"Name":"/goman/prot/token","Type":"SecureString","Value":"placeholder"}'
	run -1 --separate-stderr goman cluster delete prot --yes
	[[ $stderr == *"not deleting parameters"* ]]
	[ "$(count_live prot)" = 1 ]
	run -0 api ssm GetParameter '{"Name":"/goman/prot/token"}'
	run -0 --separate-stderr goman cluster delete prot --yes --force
	[ "$(jq -c '[.delete.terminated, .delete.parameters_deleted]' <<<"$output")" = '[1,["/goman/prot/token"]]' ]
	[ "$(count_live prot)" = 0 ]
}

@test "goman cluster create: a bad install flag, an unknown type, key pair, AMI or subnet: exit 64, nothing launched" {
	run -64 --separate-stderr goman cluster create keyed --agents 1 -- --key-name mykey
	[[ $stderr == *"install flags: unrecognized option '--key-name'"* ]]
	run -64 --separate-stderr goman cluster create keyed --agents 1 --type t3.nosuchsize
	[[ $stderr == *"instance type: "*"t3.nosuchsize"*"(InvalidInstanceType); nothing launched"* ]]
	run -64 --separate-stderr goman cluster create keyed --agent-type m5.nosuch
	[[ $stderr == *"InvalidInstanceType"* ]]
	run -64 --separate-stderr goman cluster create keyed --key-name nosuchkey
	[[ $stderr == *"key pair: "*"InvalidKeyPair.NotFound"* ]]
	run -64 --separate-stderr goman cluster create keyed --ami ami-12345678
	[[ $stderr == *"AMI: "*"InvalidAMIID.NotFound"* ]]
	run -64 --separate-stderr goman cluster create keyed --subnet subnet-nosuch
	[[ $stderr == *"subnet: "*"InvalidSubnetID.NotFound"* ]]
	run -64 --separate-stderr goman cluster create keyed --ssh-cidr 10.0.0.0/33
	run -64 --separate-stderr goman cluster create keyed --tag novalue
	[ "$(count_live keyed)" = 0 ]
	[ ! -e "$XDG_STATE_HOME/goman/keyed.jsonl" ]
}

@test "goman cluster create: missing or refused credentials, a malformed region: exit 78, said once, nothing launched" {
	run -78 --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY goman cluster create nocred
	[ "$(grep -c 'no credentials' <<<"$stderr")" = 1 ]
	[[ $stderr == *"nothing launched"* ]]
	AWS_SECRET_ACCESS_KEY=wrong-secret run -78 --separate-stderr goman cluster create nocred
	[[ $stderr == *"SignatureDoesNotMatch"* || $stderr == *"InvalidClientTokenId"* || $stderr == *"AuthFailure"* ]]
	AWS_REGION='eu west' run -78 --separate-stderr goman cluster create nocred
	[[ $stderr == *"AWS_REGION is not a valid region name"* ]]
	[ "$(count_live nocred)" = 0 ]
	[ ! -e "$XDG_STATE_HOME/goman/nocred.jsonl" ]
	# nothing launched, so nothing listed, and status of nothing fails
	run -0 --separate-stderr goman cluster list --json
	[[ $output != *nocred* ]]
	run -1 --separate-stderr goman cluster status nocred
}

@test "goman cluster create: --subnet, --ami, --key-name, --tag, per-role types reach goman-provision; --dry-run launches nothing" {
	run -0 api ec2 CreateKeyPair '{"KeyName":"passkey"}'
	subnet=$(api ec2 DescribeSubnets '{}' | jq -r '.response.data.subnetSet | if type == "array" then .[0] else . end | .subnetId')
	ami=$(api ssm GetParameter '{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}' |
		jq -r .response.data.Parameter.Value)
	run -0 --separate-stderr goman cluster create pass --agents 1 --server-type t3.large --agent-type t3.small \
		--key-name passkey --tag team=a --tag env=test --subnet "$subnet" --ami "$ami" --ssh-cidr 203.0.113.7/32 --dry-run
	[ "$(count_live pass)" = 0 ]
	[ ! -e "$XDG_STATE_HOME/goman/pass.jsonl" ]
	run -0 --separate-stderr goman cluster create pass --agents 1 --server-type t3.large --agent-type t3.small \
		--key-name passkey --tag team=a --tag env=test --subnet "$subnet" --ami "$ami" --ssh-cidr 203.0.113.7/32 "${FAST[@]}"
	run -0 api ec2 DescribeInstances '{"Filter.1.Name":"tag:goman:cluster","Filter.1.Value.1":"pass"}'
	got=$(jq -c '[.response.data.reservationSet[].instancesSet[] |
		[(.tagSet | map(select(.key == "goman:role")) | .[0].value), .instanceType, .keyName, .subnetId, .imageId,
		 (.tagSet | map(select(.key == "team" or .key == "env")) | map("\(.key)=\(.value)") | sort | join(","))]] | sort' <<<"$output")
	[ "$got" = "$(jq -nc --arg s "$subnet" --arg a "$ami" '[["agent","t3.small","passkey",$s,$a,"env=test,team=a"],["server","t3.large","passkey",$s,$a,"env=test,team=a"]]')" ]
	run -0 --separate-stderr goman cluster delete pass --yes
}

@test "goman cluster create: fewer Ready nodes than installed is exit 1, and the summary says so" {
	# --via local: both nodes install on this machine under one prefix, and the fake k3s
	# lists one Ready node: the verify step counts 1 of 2
	printf 'K10porcelain-token::server:1\n' >"$BATS_TEST_TMPDIR/token"
	chmod 600 "$BATS_TEST_TMPDIR/token"
	run -1 --separate-stderr goman cluster create short --agents 1 --via local --k3s-version "$K3S_V" -- \
		--token-file "$BATS_TEST_TMPDIR/token" --prefix "$BATS_TEST_TMPDIR/root" --no-services \
		--mirror "$MIRROR" --verify-wait 2s
	[[ $stderr == *"1 of 2 installed nodes Ready; 1 not Ready"* ]]
	[ "$(jq -c '.summary | [.nodes_ok, .verified, .nodes_ready]' <<<"${lines[-1]}")" = '[2,true,1]' ]
	# the nodes not seen Ready are named, in the summary and the message (the fake k3s
	# lists this machine's hostname, so neither installed name is in its table)
	[ "$(jq -c '.summary.not_ready | sort' <<<"${lines[-1]}")" = '["short-agent-0","short-server-0"]' ]
	[[ $stderr == *"not seen Ready in the node table: short-server-0 short-agent-0"* ]]
	run -0 --separate-stderr goman cluster delete short --yes
}

@test "goman cluster create: SIGINT stops the pipeline, keeps the records, exits 130 and says how to go on" {
	# SSM invocations stay InProgress for a minute: the create is still installing
	fault_proxy_start '{"invocation_s":60}'
	local out="$BATS_TEST_TMPDIR/out" err="$BATS_TEST_TMPDIR/err"
	# bats runs a test with SIGINT ignored, which a shell cannot trap: the create starts
	# with SIGINT at its default, as from a terminal
	AWS_ENDPOINT_URL=$FAULT_PROXY_URL "$LOCAL_AWS_PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' goman cluster create intr --agents 1 "${FAST[@]}" >"$out" 2>"$err" &
	pid=$!
	for _ in $(seq 1 200); do
		grep -q "starting" "$err" && break
		sleep 0.1
	done
	grep -q "starting" "$err"
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 130 ]
	grep -q "interrupted: 2 instance(s) of intr exist, 0 installed" "$err"
	grep -q "goman cluster create intr" "$err"
	grep -q "goman cluster delete intr" "$err"
	# no stage left running
	run ! pgrep -f "goman-install --via ssm --servers 1"
	[ "$(count_live intr)" = 2 ]
	[ -f "$XDG_STATE_HOME/goman/intr.jsonl" ]
	run -0 --separate-stderr goman cluster delete intr --yes
}

@test "goman: the porcelain and the demo are clean under shellcheck" {
	command -v shellcheck >/dev/null || skip "shellcheck not installed"
	run -0 shellcheck -x -S warning "$ROOT/scripts/goman" "$ROOT/scripts/goman-lib.sh" "$ROOT/scripts/demo.sh"
}

@test "goman local-aws: env repeats the export lines, start again reuses, bad verbs are usage errors" {
	run -0 goman local-aws env
	assert_line --regexp '^export AWS_ENDPOINT_URL=http://127\.0\.0\.1:[0-9]+$'
	assert_line "export AWS_EC2_METADATA_DISABLED=true"
	first=$output
	run -0 --separate-stderr goman local-aws start
	[ "$output" = "$first" ]
	[[ $stderr == *"already running"* ]]
	run -64 goman local-aws restart
	run -64 goman local-aws
}

@test "goman local-aws: stop stops the endpoint (last test of the file)" {
	url=$(sed -n 's/^export AWS_ENDPOINT_URL=//p' "$BATS_FILE_TMPDIR/env")
	curl -fsS -o /dev/null "$url/moto-api/"
	run -0 --separate-stderr goman local-aws stop
	run ! curl -fsS -o /dev/null --max-time 2 "$url/moto-api/"
	run -1 goman local-aws env
}
