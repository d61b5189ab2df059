#!/usr/bin/env bats
# goman-install --via ssm against moto (signature checking on) behind the fault proxy.
# moto accepts commands without running them (Status Success, empty output), so this
# proves the wire protocol only: the token parameter, SendCommand batching and text,
# GetCommandInvocation polling under InProgress, InvocationDoesNotExist and throttling.
# moto 5.2 has no ListCommandInvocations: against it goman-install falls back to one
# GetCommandInvocation poll per invocation. The List path runs against moto with that one
# action added by tests/fixtures/moto_ssm_list.py (moto's own SSM backend answers it).

load helpers
bats_require_minimum_version 1.5.0

wait_file() {
	local i
	for i in $(seq 1 150); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

setup_file() {
	isolate_home
	local_aws_start
	python3 "$ROOT/tests/fixtures/fault_proxy.py" "$AWS_ENDPOINT_URL" "$BATS_FILE_TMPDIR/proxy.port" \
		3>&- &
	echo $! >"$BATS_FILE_TMPDIR/proxy.pid"
	wait_file "$BATS_FILE_TMPDIR/proxy.port"
	PROXY="http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/proxy.port")"
	export PROXY MOTO="$AWS_ENDPOINT_URL"
	# 120 instances to name in records (created straight on moto)
	"$LOCAL_AWS_PYTHON" - >"$BATS_FILE_TMPDIR/ids" <<'EOF'
import botocore.session, os
ec2 = botocore.session.get_session().create_client("ec2", endpoint_url=os.environ["MOTO"], region_name="us-east-1")
r = ec2.run_instances(ImageId="ami-12345678", MinCount=120, MaxCount=120, InstanceType="t3.micro")
for i in r["Instances"]:
    print(i["InstanceId"], i["PrivateIpAddress"])
EOF
	[ "$(wc -l <"$BATS_FILE_TMPDIR/ids")" -eq 120 ]
}

teardown_file() {
	[ -f "$BATS_FILE_TMPDIR/proxy.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/proxy.pid")" 2>/dev/null
	local f
	for f in "$BATS_FILE_TMPDIR"/list-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null && rm -f "$f"; done
	local_aws_stop
}

setup() {
	curl -s -X POST -d '{"reset_stats":true,"sequence":null,"bucket":null,"match":null,"invocation_s":null}' \
		"$PROXY/__proxy/config" >/dev/null
	export AWS_ENDPOINT_URL_SSM="$PROXY"
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events"
}

# records CLUSTER SERVERS AGENTS: node records for the first SERVERS+AGENTS instances
records() {
	head -n $(($2 + $3)) "$BATS_FILE_TMPDIR/ids" | awk -v c="$1" -v s="$2" '{
		n = NR - 1; role = n < s ? "server" : "agent"; idx = n < s ? n : n - s
		printf "{\"cluster\":\"%s\",\"name\":\"%s-%s-%d\",\"role\":\"%s\",\"index\":%d,\"instance_id\":\"%s\",\"private_ip\":\"%s\",\"ok\":true}\n", c, c, role, idx, role, idx, $1, $2 }'
}

install_ssm() {
	goman-install --via ssm --poll-interval 100ms --poll-floor 100ms --batch-window 300ms \
		--delivery-timeout 20s --timeout 60s --k3s-version v1.31.4+k3s1 "$@"
}

proxy_log() { curl -s "$PROXY/__proxy/log"; }

ssm_param() { # NAME -> the decrypted value
	N="$1" "$LOCAL_AWS_PYTHON" -c '
import botocore.session, os
c = botocore.session.get_session().create_client("ssm", endpoint_url=os.environ["MOTO"], region_name="us-east-1")
p = c.get_parameter(Name=os.environ["N"], WithDecryption=True)["Parameter"]
print(p["Type"], p["Value"], p["Version"])'
}

@test "goman-install: --help and --version" {
	run -0 goman-install --help
	assert_output --partial "--via ssm|ssh|local"
	run -0 goman-install --version
	assert_output --regexp '^goman-install [0-9]'
	run -64 goman-install --via carrier-pigeon
}

@test "goman-install: one record per node, install object, token created once as SecureString and reused" {
	records t1 1 2 >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 3 ]
	for l in "${lines[@]}"; do
		jq -e '.ok == true and .install.ok == true and .install.via == "ssm" and
			.install.verified == false and (.install.command_id | length > 0) and
			(.t.installed | test("Z$")) and .install.k3s_version == "v1.31.4+k3s1"' <<<"$l"
	done
	read -r type value version < <(ssm_param /goman/t1/token)
	[ "$type" = SecureString ]
	[ "${#value}" -eq 64 ]
	[ "$version" = 1 ]
	# cluster event: verification ran; moto returns no output, so nothing was verified
	jq -e -s 'map(select(.event == "cluster")) | length == 1 and .[0].phase == "ready" and
		.[0].verified == false and .[0].nodes_ready == 0' "$GOMAN_EVENTS"
	# the second run reuses the token: same value, still version 1
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	read -r type2 value2 version2 < <(ssm_param /goman/t1/token)
	[ "$value2" = "$value" ]
	[ "$version2" = 1 ]
	# no SendCommand body holds it (the first run's PutParameter is the only request that
	# carries it; the proxy sees that too, which proves the search can find it)
	proxy_log >"$BATS_TEST_TMPDIR/log.json"
	jq -e '[.[] | select(.action == "SendCommand")] | length >= 4' "$BATS_TEST_TMPDIR/log.json"
	jq -r '.[] | select(.action == "SendCommand") | .body' "$BATS_TEST_TMPDIR/log.json" >"$BATS_TEST_TMPDIR/sends"
	[ -s "$BATS_TEST_TMPDIR/sends" ]
	if grep -q "$value" "$BATS_TEST_TMPDIR/sends"; then
		echo "token found in a SendCommand body" >&2
		return 1
	fi
	jq -r '.[] | select(.action == "PutParameter") | .body' "$BATS_TEST_TMPDIR/log.json" | grep -q "$value"
	# output records and events do not hold it either
	if printf "%s\n" "$output" "$stderr" | cat - "$GOMAN_EVENTS" | grep -q "$value"; then
		echo "token found in output or events" >&2
		return 1
	fi
}

@test "goman-install: first server gets --cluster-init with --servers 3; joiners and agents get its private IP" {
	records t2 3 4 >"$BATS_TEST_TMPDIR/in"
	ip0=$(head -n 1 "$BATS_FILE_TMPDIR/ids" | cut -d' ' -f2)
	run -0 --separate-stderr install_ssm --servers 3 <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 7 ]
	proxy_log | jq -r '.[] | select(.action == "SendCommand") | .body' >"$BATS_TEST_TMPDIR/sends"
	first=$(jq -r 'select(.Comment | test("first-server")) | .Parameters.commands[0]' "$BATS_TEST_TMPDIR/sends")
	[[ "$first" == *"'--role' 'server' '--cluster-init'"* ]]
	[[ "$first" == *"'--token-ssm-param' '/goman/t2/token'"* ]]
	[[ "$first" == *"GOMAN_K3S_INSTALL_EOF"* ]]
	join=$(jq -r 'select(.Comment | test("join-server")) | .Parameters.commands[0]' "$BATS_TEST_TMPDIR/sends")
	[[ "$join" == *"'--server-url' 'https://$ip0:6443'"* ]]
	agent=$(jq -r 'select(.Comment | test("agent")) | .Parameters.commands[0]' "$BATS_TEST_TMPDIR/sends")
	[[ "$agent" == *"'--role' 'agent' '--server-url' 'https://$ip0:6443'"* ]]
	# the first server stores its kubeconfig itself (the script's flags, no wrapper around it),
	# with its private IP as the server address; nobody else does
	[[ "$first" == *"'--kubeconfig-ssm-param' '/goman/t2/kubeconfig' '--kubeconfig-server' '$ip0'"* ]]
	# (what follows the script's here-document: the call and nothing around it)
	[[ "${first##*GOMAN_K3S_INSTALL_EOF}" != *"put-parameter"* ]]
	[[ "${join##*GOMAN_K3S_INSTALL_EOF}${agent##*GOMAN_K3S_INSTALL_EOF}" != *"--kubeconfig"* ]]
	# every SendCommand names its instances (never the ID-less forms)
	jq -e -s 'all(.InstanceIds | length >= 1) and all(.DocumentName == "AWS-RunShellScript")' \
		"$BATS_TEST_TMPDIR/sends"
}

@test "goman-install: 120 nodes go out in SendCommands of at most 50 instance IDs" {
	records t3 1 119 >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 120 ]
	proxy_log | jq -c '[.[] | select(.action == "SendCommand") | .body | fromjson |
		select(.Comment | test("verify") | not) | .InstanceIds | length]' >"$BATS_TEST_TMPDIR/sizes"
	cat "$BATS_TEST_TMPDIR/sizes" >&3
	jq -e 'max <= 50 and add == 120 and length <= 5' "$BATS_TEST_TMPDIR/sizes"
	[ "$(jq -s '[.[].install.command_id] | unique | length' <<<"$output")" -le 5 ]
}

@test "goman-install: InProgress and throttled polls are polled again, not failed" {
	records t4 1 3 >"$BATS_TEST_TMPDIR/in"
	curl -s -X POST -d '{"invocation_s":1,"match":["GetCommandInvocation"],"sequence":["throttle","throttle","throttle","throttle","throttle","throttle"]}' \
		"$PROXY/__proxy/config" >/dev/null
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 4 ]
	jq -e -s 'all(.install.ok)' <<<"$output"
	st=$(curl -s "$PROXY/__proxy/stats")
	jq -e '.actions.GetCommandInvocation.throttle == 6 and .rewrites.invocation_in_progress >= 1' <<<"$st"
}

@test "goman-install: an instance SSM does not know yet is retried until it registers" {
	# instances launched through the proxy are InvalidInstanceId for their first 4 s
	curl -s -X POST -d '{"registration_s":4}' "$PROXY/__proxy/config" >/dev/null
	AWS_ENDPOINT_URL_EC2="$PROXY" "$LOCAL_AWS_PYTHON" - >"$BATS_TEST_TMPDIR/young" <<'EOF'
import botocore.session, os
ec2 = botocore.session.get_session().create_client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL_EC2"], region_name="us-east-1")
r = ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2, InstanceType="t3.micro")
for n, i in enumerate(r["Instances"]):
    role = "server" if n == 0 else "agent"
    print('{"cluster":"t5","name":"t5-%s-0","role":"%s","index":0,"instance_id":"%s","private_ip":"%s"}' % (role, role, i["InstanceId"], i["PrivateIpAddress"]))
EOF
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/young"
	jq -e -s 'length == 2 and all(.install.ok)' <<<"$output"
	jq -e '.rewrites.unregistered >= 1' <<<"$(curl -s "$PROXY/__proxy/stats")"
	curl -s -X POST -d '{"registration_s":null}' "$PROXY/__proxy/config" >/dev/null
}

@test "goman-install: past the delivery timeout an unknown instance fails with class timeout" {
	curl -s -X POST -d '{"registration_s":30}' "$PROXY/__proxy/config" >/dev/null
	AWS_ENDPOINT_URL_EC2="$PROXY" "$LOCAL_AWS_PYTHON" - >"$BATS_TEST_TMPDIR/young" <<'EOF'
import botocore.session, os
ec2 = botocore.session.get_session().create_client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL_EC2"], region_name="us-east-1")
i = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
print('{"cluster":"t6","name":"t6-server-0","role":"server","index":0,"instance_id":"%s","private_ip":"%s"}' % (i["InstanceId"], i["PrivateIpAddress"]))
EOF
	run -75 --separate-stderr install_ssm --delivery-timeout 1s <"$BATS_TEST_TMPDIR/young"
	jq -e '.ok == false and .install.error.class == "timeout" and .install.error.code == "InvalidInstanceId"' <<<"$output"
	curl -s -X POST -d '{"registration_s":null}' "$PROXY/__proxy/config" >/dev/null
}

@test "goman-install: bad lines become error records with line numbers (exit 65)" {
	{ records t7 1 1; echo 'not json'; echo '{"cluster":"t7","role":"chef","index":2}'; } >"$BATS_TEST_TMPDIR/in"
	run -65 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 4 ]
	jq -e -s '[.[] | select(.ok == false)] | length == 2' <<<"$output"
	jq -e -s '[.[] | .error.line // .install.error.line | select(. != null)] == [3, 4]' <<<"$output"
}

@test "goman-install: agents without a first server and without --server-url fail NoServer" {
	records t8 1 2 | tail -n 2 >"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 2 and all(.install.error.code == "NoServer")' <<<"$output"
	# --server-url serves agent-only input
	run -0 --separate-stderr install_ssm --server-url https://10.9.9.9:6443 <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 2 and all(.install.ok and .install.server_url == "https://10.9.9.9:6443")' <<<"$output"
}

@test "goman-install: --no-kubeconfig leaves the kubeconfig flags out" {
	records t9 1 1 >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr install_ssm --no-kubeconfig <"$BATS_TEST_TMPDIR/in"
	proxy_log | jq -r '.[] | select(.action == "SendCommand") | .body' >"$BATS_TEST_TMPDIR/sends"
	first=$(jq -r 'select(.Comment | test("first-server")) | .Parameters.commands[0]' "$BATS_TEST_TMPDIR/sends")
	[[ "$first" == *"'--role' 'server'"* ]]
	[[ "${first##*GOMAN_K3S_INSTALL_EOF}" != *"--kubeconfig"* ]]
}

@test "goman-install: --via local with the token in SSM also stores the kubeconfig (aws CLI on the node)" {
	command -v aws >/dev/null 2>&1 || skip "no aws CLI"
	# shellcheck source=fixtures/sshd.bash
	. "$ROOT/tests/fixtures/sshd.bash"
	mirror_start "$BATS_TEST_TMPDIR/mirror" v1.31.4+k3s1
	P="$BATS_TEST_TMPDIR/root"
	printf '{"cluster":"l1","name":"l1-server-0","role":"server","index":0,"private_ip":"10.9.8.7"}\n' |
		run -0 --separate-stderr goman-install --via local --prefix "$P" --no-services \
		--mirror "$MIRROR" --k3s-version v1.31.4+k3s1 --verify-wait 2s
	mirror_stop "$BATS_TEST_TMPDIR/mirror"
	jq -e '.install.ok and .install.kubeconfig == "stored"' <<<"${lines[0]}"
	read -r type value version < <(ssm_param /goman/l1/kubeconfig | head -n 1)
	[ "$type" = SecureString ]
	ssm_param /goman/l1/kubeconfig | grep -qx '    server: https://10.9.8.7:6443'
	# the kubeconfig's key went nowhere but SSM
	key=$(awk '/client-key-data:/ { print substr($2, 21, 60) }' "$P/etc/rancher/k3s/k3s.yaml")
	[ ${#key} -eq 60 ]
	if grep -q -- "$key" <<<"$output$stderr"; then echo "kubeconfig in the output" >&2; return 1; fi
}

@test "goman-install: --airgap URLs reach the nodes through a SecureString, never the SendCommand text" {
	records t9 1 2 >"$BATS_TEST_TMPDIR/in"
	# temporary credentials (moto checks their session token): the URLs then carry one
	"$LOCAL_AWS_PYTHON" -c '
import botocore.session, os, json
ss = botocore.session.get_session()
iam = ss.create_client("iam", endpoint_url=os.environ["MOTO"], region_name="us-east-1")
doc = lambda st: json.dumps({"Version": "2012-10-17", "Statement": [st]})
try:
    iam.create_role(RoleName="goman-airgap-test", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))
except iam.exceptions.EntityAlreadyExistsException:
    pass
iam.put_role_policy(RoleName="goman-airgap-test", PolicyName="all",
                    PolicyDocument=doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
sts = ss.create_client("sts", endpoint_url=os.environ["MOTO"], region_name="us-east-1")
c = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/goman-airgap-test",
                    RoleSessionName="airgap")["Credentials"]
print(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])' >"$BATS_TEST_TMPDIR/creds"
	read -r akid skey stok <"$BATS_TEST_TMPDIR/creds"
	[ -n "$stok" ]
	AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$skey AWS_SESSION_TOKEN=$stok \
		run -0 --separate-stderr install_ssm --airgap s3://goman-airgap/k3s/v1 <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 3 ]
	proxy_log >"$BATS_TEST_TMPDIR/log.json"
	jq -r '.[] | select(.action == "SendCommand") | .body' "$BATS_TEST_TMPDIR/log.json" >"$BATS_TEST_TMPDIR/sends"
	[ "$(jq -s length "$BATS_TEST_TMPDIR/sends")" -ge 2 ]
	# (the script text itself names the headers and flags: look for values)
	for secret in X-Amz-Signature= X-Amz-Credential= X-Amz-Security-Token= "$stok" goman-airgap/; do
		if grep -qF -- "$secret" "$BATS_TEST_TMPDIR/sends"; then
			echo "'$secret' in a SendCommand body" >&2
			return 1
		fi
	done
	# the call after the script's here-document names the parameter, not the URLs
	jq -r '.Parameters.commands[0] | split("GOMAN_K3S_INSTALL_EOF") | last' "$BATS_TEST_TMPDIR/sends" >"$BATS_TEST_TMPDIR/calls"
	if grep -q -- "--airgap-binary-url\|--airgap-checksum-url" "$BATS_TEST_TMPDIR/calls"; then
		echo "air-gap URL flags in a command" >&2
		return 1
	fi
	jq -e -s '[.[] | .Parameters.commands[0] | select(contains("GOMAN_K3S_INSTALL_EOF"))] |
		length >= 2 and all(contains("'"'--airgap-ssm-param' '/goman/t9/airgap'"'"))' \
		"$BATS_TEST_TMPDIR/sends"
	# the parameter was written (SecureString) before the first SendCommand
	jq -e '[.[] | .action] | index("PutParameter") < index("SendCommand")' "$BATS_TEST_TMPDIR/log.json"
	N=/goman/t9/airgap "$LOCAL_AWS_PYTHON" -c '
import botocore.session, os
c = botocore.session.get_session().create_client("ssm", endpoint_url=os.environ["MOTO"], region_name="us-east-1")
p = c.get_parameter(Name=os.environ["N"], WithDecryption=True)["Parameter"]
print(p["Type"]); print(p["Value"])' >"$BATS_TEST_TMPDIR/param"
	[ "$(sed -n 1p "$BATS_TEST_TMPDIR/param")" = SecureString ]
	read -r bin sums < <(sed -n 2p "$BATS_TEST_TMPDIR/param")
	[[ "$bin" == */goman-airgap/k3s/v1/k3s\?*X-Amz-Signature=* ]]
	[[ "$sums" == */goman-airgap/k3s/v1/sha256sum-amd64.txt\?*X-Amz-Signature=* ]]
	[[ "$bin" == *"X-Amz-Security-Token="* ]]
	# nor in the records, the log or the events
	if printf "%s\n" "$output" "$stderr" | cat - "$GOMAN_EVENTS" | grep -qF -e X-Amz-Signature -e "$stok"; then
		echo "presigned URL in output or events" >&2
		return 1
	fi
}

nogrep_f() { # STRING FILE: fails when FILE holds STRING
	if grep -qF -- "$1" "$2"; then
		echo "unexpected '$1' in $2" >&2
		return 1
	fi
}

@test "goman-install: --via local --airgap installs from presigned URLs given on stdin, never in argv" {
	# moto answers 500 to every presigned GET (botocore's own URLs too): the loopback
	# mirror stands in for S3 and serves the bucket's path; the URLs are still presigned
	# by goman with the moto credentials
	# shellcheck source=fixtures/sshd.bash
	. "$ROOT/tests/fixtures/sshd.bash"
	mirror_start "$BATS_TEST_TMPDIR/mirror" goman-local-airgap/rel
	echo 1 >"$BATS_TEST_TMPDIR/mirror/files/.delay"
	P="$BATS_TEST_TMPDIR/root"
	printf '%s\n' K10goman-airgap-local-token >"$BATS_TEST_TMPDIR/token"
	printf '{"cluster":"l2","name":"l2-server-0","role":"server","index":0,"private_ip":"10.9.8.7"}\n' \
		>"$BATS_TEST_TMPDIR/in"
	AWS_ENDPOINT_URL_S3=$MIRROR goman-install --via local --prefix "$P" --no-services --no-kubeconfig \
		--token-file "$BATS_TEST_TMPDIR/token" --airgap s3://goman-local-airgap/rel --verify-wait 2s \
		<"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	# snapshot while the slow binary download is in flight
	for _ in $(seq 1 100); do
		grep -qs "^start /goman-local-airgap/rel/k3s " "$BATS_TEST_TMPDIR/mirror/log" && break
		sleep 0.05
	done
	ps -eo args >"$BATS_TEST_TMPDIR/ps.txt"
	wait "$pid"
	mirror_stop "$BATS_TEST_TMPDIR/mirror"
	jq -e '.install.ok and .install.via == "local"' "$BATS_TEST_TMPDIR/out"
	cmp "$P/usr/local/bin/k3s" "$BATS_TEST_TMPDIR/mirror/files/goman-local-airgap/rel/k3s"
	grep -q 'air-gap: binary .*/goman-local-airgap/rel/k3s,' "$P/var/log/goman-k3s-install.log"
	# the snapshot saw the script and its download, without any URL in argv
	grep -q 'k3s-install.sh .*--airgap-stdin' "$BATS_TEST_TMPDIR/ps.txt"
	grep -q 'curl -K -' "$BATS_TEST_TMPDIR/ps.txt"
	grep -q 'goman-install .*--airgap s3://goman-local-airgap/rel' "$BATS_TEST_TMPDIR/ps.txt"
	nogrep_f /goman-local-airgap/rel/k3s "$BATS_TEST_TMPDIR/ps.txt"
	for f in ps.txt out err; do
		nogrep_f X-Amz-Signature= "$BATS_TEST_TMPDIR/$f"
		nogrep_f X-Amz-Credential= "$BATS_TEST_TMPDIR/$f"
	done
	nogrep_f X-Amz-Signature= "$P/var/log/goman-k3s-install.log"
}

@test "goman-install: agents with their own names, labels and taints still share one SendCommand" {
	records t9 1 3 | jq -c 'if .role == "agent" then .labels = {"tier": "web", "idx": "a\(.index)"} |
		.taints = ["dedicated=web:NoSchedule"] else . end' >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 4 and all(.install.ok)' <<<"$output"
	proxy_log | jq -c '[.[] | select(.action == "SendCommand") | .body | fromjson |
		select(.Comment | test("agent"))]' >"$BATS_TEST_TMPDIR/agent_sends"
	jq -e 'length == 1 and (.[0].InstanceIds | length == 3)' "$BATS_TEST_TMPDIR/agent_sends"
	text=$(jq -r '.[0].Parameters.commands[0]' "$BATS_TEST_TMPDIR/agent_sends")
	for i in 1 2 3; do
		id=$(sed -n "$((i + 1))p" "$BATS_FILE_TMPDIR/ids" | cut -d' ' -f1)
		[[ "$text" == *"'$id') set -- '--node-name' 't9-agent-$((i - 1))' '--node-label' 'tier=web' '--node-label' 'idx=a$((i - 1))' '--node-taint' 'dedicated=web:NoSchedule' ;;"* ]]
	done
	[[ "$text" == *'case "${AWS_SSM_INSTANCE_ID:-}" in'* ]]
}

@test "goman-install --action drain over SSM: kubectl on the first server's instance, one SendCommand per node" {
	records t10 1 2 >"$BATS_TEST_TMPDIR/in"
	sid=$(head -n 1 "$BATS_FILE_TMPDIR/ids" | cut -d' ' -f1)
	run -0 --separate-stderr install_ssm --action drain --drain-timeout 2m <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 3 and all(.drain.ok and .drain.via == "ssm" and (.drain.command_id | length > 0))' <<<"$output"
	proxy_log | jq -c '[.[] | select(.action == "SendCommand") | .body | fromjson]' >"$BATS_TEST_TMPDIR/sends"
	jq -e --arg s "$sid" 'length == 3 and all(.InstanceIds == [$s]) and all(.Comment | test("kubectl"))' \
		"$BATS_TEST_TMPDIR/sends"
	jq -r '.[].Parameters.commands[0]' "$BATS_TEST_TMPDIR/sends" | sort >"$BATS_TEST_TMPDIR/texts"
	for n in t10-agent-0 t10-agent-1 t10-server-0; do
		grep -qxF "k=k3s; \"\$k\" kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=120s '$n' 2>&1" \
			"$BATS_TEST_TMPDIR/texts"
	done
	# no token was made or read for a drain
	proxy_log | jq -e '[.[] | select(.action == "PutParameter" or .action == "GetParameter")] | length == 0'
	# agents only: --server-instance names where kubectl runs
	records t10 1 2 | tail -n 1 >"$BATS_TEST_TMPDIR/in2"
	run -0 --separate-stderr install_ssm --action cordon --server-instance "$sid" <"$BATS_TEST_TMPDIR/in2"
	jq -e '.drain.ok and .drain.action == "cordon"' <<<"${lines[0]}"
}

@test "goman-install --action delete over SSM: one SendCommand per node on the first server: drain, then delete the node" {
	records t11 1 1 >"$BATS_TEST_TMPDIR/in"
	sid=$(head -n 1 "$BATS_FILE_TMPDIR/ids" | cut -d' ' -f1)
	run -0 --separate-stderr install_ssm --action delete --drain-timeout 30s <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 2 and all(.drain.ok and .drain.action == "delete" and .drain.via == "ssm")' <<<"$output"
	proxy_log | jq -c '[.[] | select(.action == "SendCommand") | .body | fromjson]' >"$BATS_TEST_TMPDIR/sends"
	jq -e --arg s "$sid" 'length == 2 and all(.InstanceIds == [$s])' "$BATS_TEST_TMPDIR/sends"
	text=$(jq -r '.[].Parameters.commands[0] | select(test("t11-agent-0"))' "$BATS_TEST_TMPDIR/sends")
	[[ "$text" == *"kubectl drain --ignore-daemonsets --delete-emptydir-data --force --timeout=30s 't11-agent-0'"* ]]
	[[ "$text" == *"kubectl delete node 't11-agent-0' 2>&1" ]]
}

@test "goman-install: moto without ListCommandInvocations: one List asked, then each invocation polled on its own" {
	records t12 1 19 >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 20 ]
	grep -q "ListCommandInvocations unavailable" <<<"$stderr"
	proxy_log | jq -r '.[].action' | sort | uniq -c >"$BATS_TEST_TMPDIR/calls"
	cat "$BATS_TEST_TMPDIR/calls" >&3
	[ "$(awk '$2 == "ListCommandInvocations" {print $1}' "$BATS_TEST_TMPDIR/calls")" -eq 1 ]
	# every node and the verification: at least one GetCommandInvocation each
	[ "$(awk '$2 == "GetCommandInvocation" {print $1}' "$BATS_TEST_TMPDIR/calls")" -ge 21 ]
}

# list_moto: moto_server with ListCommandInvocations (tests/fixtures/moto_ssm_list.py),
# signature checking on as tests/helpers.bash starts moto, behind its own fault proxy;
# exports LIST_MOTO, LIST_PROXY and its keys as LIST_AKID/LIST_SECRET (an earlier test's
# pair is stopped first)
list_moto() {
	local port f
	for f in "$BATS_FILE_TMPDIR"/list-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	INITIAL_NO_AUTH_ACTION_COUNT=3 AWS_EC2_METADATA_DISABLED=true \
		setsid "$LOCAL_AWS_PYTHON" "$ROOT/tests/fixtures/moto_ssm_list.py" -H 127.0.0.1 -p "$port" \
		>"$BATS_TEST_TMPDIR/list-moto.log" 2>&1 </dev/null 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/list-moto-$BATS_TEST_NUMBER.pid"
	LIST_MOTO="http://127.0.0.1:$port"
	local i
	for i in $(seq 1 150); do curl -fsS -o /dev/null "$LIST_MOTO/moto-api/" 2>/dev/null && break; sleep 0.1; done
	# the three unchecked calls make the key every later (checked) call is signed with
	read -r LIST_AKID LIST_SECRET < <(M="$LIST_MOTO" "$LOCAL_AWS_PYTHON" -c '
import botocore.session, os
iam = botocore.session.get_session().create_client("iam", endpoint_url=os.environ["M"], region_name="us-east-1",
	aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
iam.create_user(UserName="goman")
iam.put_user_policy(UserName="goman", PolicyName="all", PolicyDocument="{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}")
k = iam.create_access_key(UserName="goman")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])')
	python3 "$ROOT/tests/fixtures/fault_proxy.py" "$LIST_MOTO" "$BATS_TEST_TMPDIR/list-proxy.port" 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/list-proxy-$BATS_TEST_NUMBER.pid"
	wait_file "$BATS_TEST_TMPDIR/list-proxy.port"
	LIST_PROXY="http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/list-proxy.port")"
	export LIST_MOTO LIST_PROXY LIST_AKID LIST_SECRET
}

@test "goman-install: with ListCommandInvocations (moto + tests/fixtures/moto_ssm_list.py): one List per command, one Get per ended invocation" {
	list_moto
	M="$LIST_MOTO" AK="$LIST_AKID" SK="$LIST_SECRET" "$LOCAL_AWS_PYTHON" - >"$BATS_TEST_TMPDIR/ids" <<'EOF2'
import botocore.session, os
ec2 = botocore.session.get_session().create_client("ec2", endpoint_url=os.environ["M"], region_name="us-east-1",
	aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
for i in ec2.run_instances(ImageId="ami-12345678", MinCount=20, MaxCount=20, InstanceType="t3.micro")["Instances"]:
    print(i["InstanceId"], i["PrivateIpAddress"])
EOF2
	awk '{ n = NR - 1; role = n < 1 ? "server" : "agent"; idx = n < 1 ? 0 : n - 1
		printf "{\"cluster\":\"tl\",\"name\":\"tl-%s-%d\",\"role\":\"%s\",\"index\":%d,\"instance_id\":\"%s\",\"private_ip\":\"%s\"}\n", role, idx, role, idx, $1, $2 }' \
		"$BATS_TEST_TMPDIR/ids" >"$BATS_TEST_TMPDIR/in"
	AWS_ENDPOINT_URL="$LIST_MOTO" AWS_ENDPOINT_URL_SSM="$LIST_PROXY" AWS_ACCESS_KEY_ID="$LIST_AKID" \
		AWS_SECRET_ACCESS_KEY="$LIST_SECRET" run -0 --separate-stderr install_ssm <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 20 ]
	jq -e -s 'all(.install.ok)' <<<"$output"
	curl -s "$LIST_PROXY/__proxy/log" | jq -r '.[].action' | sort | uniq -c >"$BATS_TEST_TMPDIR/calls"
	cat "$BATS_TEST_TMPDIR/calls" >&3
	# three commands (first server, 19 agents, verification): one List poll each is enough
	# here (moto ends every command at once); the output only of what ended
	[ "$(awk '$2 == "ListCommandInvocations" {print $1}' "$BATS_TEST_TMPDIR/calls")" -eq 3 ]
	[ "$(awk '$2 == "GetCommandInvocation" {print $1}' "$BATS_TEST_TMPDIR/calls")" -eq 21 ]
	[ "$(awk '$2 == "SendCommand" {print $1}' "$BATS_TEST_TMPDIR/calls")" -eq 3 ]
	if grep -q "ListCommandInvocations unavailable" <<<"$stderr"; then return 1; fi
}

@test "goman-install: with DescribeInstanceInformation (moto + tests/fixtures/moto_ssm_list.py): an instance goes to SendCommand only once SSM lists it" {
	# the fixture leaves an instance out of DescribeInstanceInformation for its first 4 s;
	# the proxy answers InvalidInstanceId to a SendCommand naming one younger than 3 s: a
	# SendCommand sent before the check listed its instance would show as a rewrite
	MOTO_SSM_REGISTRATION_S=4 list_moto
	curl -s -X POST -d '{"registration_s":3}' "$LIST_PROXY/__proxy/config" >/dev/null
	AWS_ENDPOINT_URL_EC2="$LIST_PROXY" AK="$LIST_AKID" SK="$LIST_SECRET" "$LOCAL_AWS_PYTHON" - >"$BATS_TEST_TMPDIR/in" <<'EOF2'
import botocore.session, os
ec2 = botocore.session.get_session().create_client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL_EC2"], region_name="us-east-1",
	aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
r = ec2.run_instances(ImageId="ami-12345678", MinCount=3, MaxCount=3, InstanceType="t3.micro")
for n, i in enumerate(r["Instances"]):
    role, idx = ("server", 0) if n == 0 else ("agent", n - 1)
    print('{"cluster":"tr","name":"tr-%s-%d","role":"%s","index":%d,"instance_id":"%s","private_ip":"%s"}' % (role, idx, role, idx, i["InstanceId"], i["PrivateIpAddress"]))
EOF2
	AWS_ENDPOINT_URL="$LIST_MOTO" AWS_ENDPOINT_URL_SSM="$LIST_PROXY" AWS_ACCESS_KEY_ID="$LIST_AKID" \
		AWS_SECRET_ACCESS_KEY="$LIST_SECRET" run -0 --separate-stderr install_ssm --poll-interval 500ms <"$BATS_TEST_TMPDIR/in"
	jq -e -s 'length == 3 and all(.install.ok)' <<<"$output"
	st=$(curl -s "$LIST_PROXY/__proxy/stats")
	jq -e '(.rewrites.unregistered // 0) == 0' <<<"$st"
	curl -s "$LIST_PROXY/__proxy/log" | jq -r '.[].action' | sort | uniq -c >"$BATS_TEST_TMPDIR/calls"
	cat "$BATS_TEST_TMPDIR/calls" >&3
	# asked until listed (4 s at one check per 500 ms), and each install kind sent once
	[ "$(awk '$2 == "DescribeInstanceInformation" {print $1}' "$BATS_TEST_TMPDIR/calls")" -ge 3 ]
	[ "$(awk '$2 == "SendCommand" {print $1}' "$BATS_TEST_TMPDIR/calls")" -le 3 ]
	if grep -q "DescribeInstanceInformation unavailable" <<<"$stderr"; then return 1; fi
}
