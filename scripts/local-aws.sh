#!/usr/bin/env bash
# local-aws.sh - start/stop a local AWS endpoint (moto_server) with signature checking on.
#
#   local-aws.sh start DIR   start on a free loopback port; writes DIR/env (export lines),
#                            DIR/pid, DIR/port, DIR/moto.log; prints DIR/env
#   local-aws.sh stop DIR    stop the server started with DIR (by PID)
#   local-aws.sh env DIR     print DIR/env
#   local-aws.sh python      print the python3 that has moto (for botocore in benches)
#
# Signature checking: moto lets the first INITIAL_NO_AUTH_ACTION_COUNT=3 requests through
# unchecked; they are spent on CreateUser, PutUserPolicy (allow all) and CreateAccessKey,
# and every later call must be signed with that key (a wrong signature is refused).
set -euo pipefail

find_python() {
	local c
	for c in "$(command -v moto_server 2>/dev/null || true)" "$HOME/.pyenv/shims/moto_server"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			# the python that runs this moto_server
			local py
			py=$(head -1 "$c" | sed -n 's/^#! *//p')
			case "$py" in
			*python*) [ -x "$py" ] && "$py" -c 'import moto.server' 2>/dev/null && { echo "$py"; return 0; } ;;
			esac
			if [ -x "$HOME/.pyenv/shims/python3" ] && "$HOME/.pyenv/shims/python3" -c 'import moto.server' 2>/dev/null; then
				echo "$HOME/.pyenv/shims/python3"; return 0
			fi
		fi
	done
	for c in python3 "$HOME/.pyenv/shims/python3" /usr/bin/python3; do
		if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import moto.server' 2>/dev/null; then
			command -v "$c"; return 0
		fi
	done
	echo "local-aws: moto is not installed: pip install 'moto[server]'" >&2
	return 69
}

free_port() {
	"$1" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
	local dir=$1 py port pid i
	# the env file holds the endpoint's keys: nothing here is ever readable by others,
	# not even between its creation and a chmod
	umask 077
	mkdir -p "$dir"
	py=$(find_python)
	for attempt in 1 2 3; do
		port=$(free_port "$py")
		INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_IAM_LOAD_MANAGED_POLICIES=true \
			AWS_EC2_METADATA_DISABLED=true \
			setsid "$py" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 </dev/null &
		pid=$!
		echo "$pid" >"$dir/pid"
		echo "$port" >"$dir/port"
		for i in $(seq 1 150); do
			if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
				break
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
			break
		fi
		kill "$pid" 2>/dev/null || true
		[ "$attempt" = 3 ] && { echo "local-aws: moto_server did not start (see $dir/moto.log)" >&2; return 69; }
	done
	# The three unchecked calls: user, allow-all policy, access key.
	"$py" - "$port" "$dir/env" <<'PY'
import os, sys, urllib.request, urllib.parse, re
port, envfile = sys.argv[1], sys.argv[2]
url = "http://127.0.0.1:%s/" % port
def iam(params):
    params["Version"] = "2010-05-08"
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        "Host": "127.0.0.1:%s" % port})
    return urllib.request.urlopen(req, timeout=30).read().decode()
iam({"Action": "CreateUser", "UserName": "goman"})
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
iam({"Action": "PutUserPolicy", "UserName": "goman", "PolicyName": "all", "PolicyDocument": policy})
out = iam({"Action": "CreateAccessKey", "UserName": "goman"})
akid = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", out).group(1)
secret = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", out).group(1)
tmp = envfile + ".tmp"
try:
    os.unlink(tmp)
except FileNotFoundError:
    pass
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("export AWS_ENDPOINT_URL=%s\n" % url.rstrip("/"))
    f.write("export AWS_ACCESS_KEY_ID=%s\n" % akid)
    f.write("export AWS_SECRET_ACCESS_KEY=%s\n" % secret)
    f.write("export AWS_REGION=us-east-1\n")
    f.write("export AWS_DEFAULT_REGION=us-east-1\n")
    f.write("export AWS_EC2_METADATA_DISABLED=true\n")
    f.write("unset AWS_SESSION_TOKEN AWS_PROFILE\n")
os.replace(tmp, envfile)
PY
	# Warm-up: the first EC2 call is slow (~1 s); make it once, signed, here.
	"$py" - "$dir/env" <<'PY' >/dev/null 2>&1 || true
import sys, os
for line in open(sys.argv[1]):
    if line.startswith("export "):
        k, v = line[7:].strip().split("=", 1); os.environ[k] = v
import botocore.session
s = botocore.session.get_session()
s.create_client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).describe_regions()
PY
	cat "$dir/env"
}

stop() {
	local dir=$1 pid
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/pid"
}

case "${1:-}" in
start) start "${2:?usage: local-aws.sh start DIR}" ;;
stop) stop "${2:?usage: local-aws.sh stop DIR}" ;;
env) cat "${2:?usage: local-aws.sh env DIR}/env" ;;
python) find_python ;;
*) echo "usage: local-aws.sh start|stop|env DIR | python" >&2; exit 64 ;;
esac
