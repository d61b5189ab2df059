#!/usr/bin/env bats
# creds: the parts of the credential chain that need a live endpoint. AssumeRole runs
# against the local AWS endpoint (moto, signature checking on) through the cmocka binary
# build/tests/test_creds (its "assume-role" group); the offline parts (files, env,
# credential_process, ECS/IMDSv2 against the loopback fixture) are its default group,
# run by the unit suite. Web identity, the shared cache, MFA and SSO (against
# tests/fixtures/sso_fixture.py) run through goman-api below.
bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	isolate_home
	PYTHONPATH="$ROOT/tests/fixtures/moto-webid" local_aws_start
	creds_env_start
}

teardown_file() {
	creds_env_stop
	local_aws_stop
}

@test "creds: role_arn + source_profile assumes the role through STS, chains, caches, and refreshes before expiry" {
	run -0 "$GOMAN_BUILD/tests/test_creds" assume-role
	assert_output --partial "[  PASSED  ] 3 test(s)."
	refute_output --partial "FAILED"
}

@test "creds: debug logging of every provider never shows a secret" {
	# env, profile, process, ECS and IMDS all resolve in this run, with debug lines on
	GOMAN_LOG=debug run -0 "$GOMAN_BUILD/tests/test_creds"
	assert_output --partial "[CREDS] credentials from process"
	assert_output --partial "[CREDS] credentials from imds"
	refute_output --partial "proc-secret"
	refute_output --partial "ecs-fixture-secret"
	refute_output --partial "imds-fixture-secret"
	refute_output --partial "ecs-auth-token"
	refute_output --partial "env-secret"
}

# ---- web identity, the CLI's cache, SSO, MFA, bad input -----------------------------------
# moto in this file runs with tests/fixtures/moto-webid on its PYTHONPATH: that exempts
# STS AssumeRoleWithWebIdentity (unsigned, as real STS takes it) from moto's signature
# check and nothing else; every other call, the ones signed with assumed keys included,
# is checked.

load fixtures/fault_proxy

creds_env_start() {
	MOTO_KEY=$AWS_ACCESS_KEY_ID MOTO_SECRET=$AWS_SECRET_ACCESS_KEY MOTO_URL=$AWS_ENDPOINT_URL
	export MOTO_KEY MOTO_SECRET MOTO_URL
	local role trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity"]}]}'
	local all='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
	for role in goman-webid goman-cached; do
		jq -nc --arg r "$role" --arg t "$trust" --arg p "$all" \
			'{service:"iam",action:"CreateRole",params:{RoleName:$r,AssumeRolePolicyDocument:$t}},
			 {service:"iam",action:"PutRolePolicy",params:{RoleName:$r,PolicyName:"all",PolicyDocument:$p}}'
	done | goman-api --jobs 1 >/dev/null
	# the SSO fixture hands out the local endpoint's keys: calls signed with them verify
	local dir="$BATS_FILE_TMPDIR/sso"
	mkdir -p "$dir"
	SSO_ROLE_KEY_ID=$MOTO_KEY SSO_ROLE_SECRET=$MOTO_SECRET \
		"$LOCAL_AWS_PYTHON" "$ROOT/tests/fixtures/sso_fixture.py" "$dir/port" 3>&- &
	echo $! >"$dir/pid"
	for _ in $(seq 1 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
	SSO_URL="http://127.0.0.1:$(cat "$dir/port")"
	export SSO_URL
}

creds_env_stop() {
	[ -f "$BATS_FILE_TMPDIR/sso/pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/sso/pid")" 2>/dev/null
	fault_proxy_stop
	return 0
}

# no ambient credentials: each test says where its come from
no_keys() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
	export AWS_REGION=us-east-1
	rm -rf "$HOME/.aws"
	mkdir -p "$HOME/.aws"
}

caller_arn() {
	goman-api <<<'{"service":"sts","action":"GetCallerIdentity"}'
}

webid_env() {
	printf 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJnb21hbi10ZXN0In0.webid-token-secret\n' >"$BATS_TEST_TMPDIR/token"
	export AWS_WEB_IDENTITY_TOKEN_FILE="$BATS_TEST_TMPDIR/token"
	export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/goman-webid AWS_ROLE_SESSION_NAME=ci-run
}

@test "creds: web identity (env) assumes the role unsigned; GetCallerIdentity answers the assumed-role ARN" {
	no_keys
	webid_env
	run -0 caller_arn
	assert_equal "$(jq -r '.response.data.GetCallerIdentityResult.Arn' <<<"$output")" \
		"arn:aws:sts::123456789012:assumed-role/goman-webid/ci-run"
	refute_output --partial "webid-token-secret"
}

@test "creds: web identity from profile keys, the token file re-read at each refresh" {
	no_keys
	webid_env
	unset AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN AWS_ROLE_SESSION_NAME
	printf '[profile ci]\nweb_identity_token_file = %s\nrole_arn = arn:aws:iam::123456789012:role/goman-webid\nrole_session_name = from-profile\n' \
		"$BATS_TEST_TMPDIR/token" >"$HOME/.aws/config"
	AWS_PROFILE=ci run -0 caller_arn
	assert_output --partial "assumed-role/goman-webid/from-profile"
	# the next refresh reads the file again: a rotated-away token is noticed, not reused
	rm -f "$HOME"/.aws/cli/cache/*.json "$BATS_TEST_TMPDIR/token"
	AWS_PROFILE=ci run -78 caller_arn
	assert_output --partial "cannot read web identity token file"
}

@test "creds: a missing, empty or unreadable web identity token file is a clear error, exit 78" {
	no_keys
	webid_env
	AWS_WEB_IDENTITY_TOKEN_FILE=$BATS_TEST_TMPDIR/nope run -78 caller_arn
	assert_output --partial "cannot read web identity token file '$BATS_TEST_TMPDIR/nope'"
	: >"$BATS_TEST_TMPDIR/empty"
	AWS_WEB_IDENTITY_TOKEN_FILE=$BATS_TEST_TMPDIR/empty run -78 caller_arn
	assert_output --partial "is empty"
	mkdir "$BATS_TEST_TMPDIR/adir"
	AWS_WEB_IDENTITY_TOKEN_FILE=$BATS_TEST_TMPDIR/adir run -78 caller_arn
	assert_output --partial "cannot read web identity token file"
	AWS_ROLE_ARN= run -78 caller_arn
	assert_output --partial "no role ARN"
	refute_output --partial "webid-token-secret"
}

role_profile() {
	printf '[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$MOTO_KEY" "$MOTO_SECRET" >"$HOME/.aws/credentials"
	printf '[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/goman-cached\nsource_profile = base\nrole_session_name = pipeline\nduration_seconds = 900\n' >"$HOME/.aws/config"
	chmod 600 "$HOME/.aws/credentials"
}

# the cache key botocore's own AssumeRoleCredentialFetcher makes for the ops profile
botocore_key() {
	"$LOCAL_AWS_PYTHON" - <<'PY'
from botocore.credentials import AssumeRoleCredentialFetcher
f = AssumeRoleCredentialFetcher(client_creator=None, source_credentials=None,
    role_arn="arn:aws:iam::123456789012:role/goman-cached",
    extra_args={"RoleSessionName": "pipeline", "DurationSeconds": 900})
print(f._cache_key)
PY
}

assume_count() {
	fault_proxy_get stats | jq '[(.actions.AssumeRole // {})[]] | add // 0'
}

@test "creds: a role profile used by 3 processes in a row makes 1 AssumeRole, cached as the CLI does" {
	no_keys
	role_profile
	[ -n "${FAULT_PROXY_URL:-}" ] || fault_proxy_start
	export AWS_ENDPOINT_URL=$FAULT_PROXY_URL
	fault_proxy_config '{"reset_stats":true}' >/dev/null
	for _ in 1 2 3; do
		AWS_PROFILE=ops run -0 caller_arn
		assert_output --partial "assumed-role/goman-cached/pipeline"
	done
	assert_equal "$(assume_count)" 1
	key=$(botocore_key)
	f="$HOME/.aws/cli/cache/$key.json"
	[ -f "$f" ]
	assert_equal "$(stat -c %a "$f")" 600
	assert_equal "$(stat -c %a "$HOME/.aws/cli/cache")" 700
	# botocore's own fetcher reads the entry as valid: `aws` would reuse it
	run -0 "$LOCAL_AWS_PYTHON" - "$HOME/.aws/cli/cache" "$key" <<'PY'
import sys
from botocore.utils import JSONFileCache
from botocore.credentials import AssumeRoleCredentialFetcher
f = AssumeRoleCredentialFetcher(client_creator=None, source_credentials=None,
    role_arn="arn:aws:iam::123456789012:role/goman-cached",
    extra_args={"RoleSessionName": "pipeline", "DurationSeconds": 900},
    cache=JSONFileCache(sys.argv[1]), expiry_window_seconds=60)
assert f._cache_key == sys.argv[2]
print("cached" if f._load_from_cache() else "missing")
PY
	assert_output cached
}

@test "creds: an expired cache entry is refreshed exactly once by the processes that follow" {
	no_keys
	role_profile
	[ -n "${FAULT_PROXY_URL:-}" ] || fault_proxy_start
	export AWS_ENDPOINT_URL=$FAULT_PROXY_URL
	AWS_PROFILE=ops run -0 caller_arn
	f="$HOME/.aws/cli/cache/$(botocore_key).json"
	# as botocore writes it: "...UTC", one hour ago
	jq '.Credentials.Expiration = (now - 3600 | strftime("%Y-%m-%dT%H:%M:%SUTC"))' "$f" >"$f.new"
	mv "$f.new" "$f"
	chmod 600 "$f"
	fault_proxy_config '{"reset_stats":true}' >/dev/null
	for _ in 1 2 3; do AWS_PROFILE=ops run -0 caller_arn; done
	assert_equal "$(assume_count)" 1
	run jq -r '.Credentials.Expiration' "$f"
	refute_output --partial UTC
}

@test "creds: a corrupt cache file is replaced; another user's is refused, exit 78" {
	no_keys
	role_profile
	export AWS_ENDPOINT_URL=$MOTO_URL
	mkdir -p -m 700 "$HOME/.aws/cli/cache"
	f="$HOME/.aws/cli/cache/$(botocore_key).json"
	printf '{"Credentials": {"AccessKeyId": "AKIACORRUPT", "Secret' >"$f"
	chmod 600 "$f"
	AWS_PROFILE=ops run -0 caller_arn
	assert_output --partial "assumed-role/goman-cached/pipeline"
	jq -e '.Credentials.AccessKeyId' "$f" >/dev/null
	chown nobody "$f"
	AWS_PROFILE=ops run -78 caller_arn
	assert_output --partial "is not yours alone"
	refute_output --partial "$(jq -r .Credentials.SecretAccessKey "$f")"
}

@test "creds: mfa_serial with no terminal is a clear error, exit 78, before any call" {
	no_keys
	role_profile
	export AWS_ENDPOINT_URL=$MOTO_URL
	printf 'mfa_serial = arn:aws:iam::123456789012:mfa/ops\n' >>"$HOME/.aws/config"
	AWS_PROFILE=ops run -78 setsid -w goman-api <<<'{"service":"sts","action":"GetCallerIdentity"}'
	assert_output --partial "mfa_serial arn:aws:iam::123456789012:mfa/ops needs a code typed at a terminal"
	refute_output --partial "$MOTO_SECRET"
}

# the token cache as `aws sso login` leaves it, written by botocore's own SSO token code
sso_login() { # SESSION EXPIRES_IN_S [refreshable]
	"$LOCAL_AWS_PYTHON" - "$1" "$2" "${3:-}" <<'PY'
import os, sys, datetime
from botocore.utils import JSONFileCache, SSOTokenLoader
from botocore.tokens import _sso_json_dumps
session, left, refreshable = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = datetime.datetime.now(datetime.timezone.utc)
token = {"startUrl": "https://goman.awsapps.com/start", "region": "eu-west-1",
         "accessToken": "sso-fixture-access-token",
         "expiresAt": now + datetime.timedelta(seconds=left)}
if refreshable:
    token.update({"clientId": "sso-fixture-client", "clientSecret": "sso-fixture-client-secret",
                  "refreshToken": "sso-fixture-refresh-token",
                  "registrationExpiresAt": now + datetime.timedelta(days=30)})
cache = JSONFileCache(os.path.expanduser("~/.aws/sso/cache"), dumps_func=_sso_json_dumps)
SSOTokenLoader(cache=cache).save_token(token["startUrl"], token, session_name=session)
PY
}

sso_profile() {
	cat >"$HOME/.aws/config" <<-CFG
	[profile sso]
	sso_session = corp
	sso_account_id = 123456789012
	sso_role_name = Admin
	[sso-session corp]
	sso_start_url = https://goman.awsapps.com/start
	sso_region = eu-west-1
	CFG
	export AWS_ENDPOINT_URL_SSO=$SSO_URL AWS_ENDPOINT_URL_SSO_OIDC=$SSO_URL AWS_ENDPOINT_URL=$MOTO_URL
}

sso_stat() {
	curl -fsS "$SSO_URL/__fixture/stats" | jq -r "$1"
}

@test "creds: SSO (sso_session) reads the CLI's token cache and calls GetRoleCredentials once" {
	no_keys
	sso_profile
	sso_login corp 7200
	before=$(sso_stat .GetRoleCredentials)
	AWS_PROFILE=sso run -0 caller_arn
	jq -e '.response.data.GetCallerIdentityResult.Arn' <<<"$output" >/dev/null
	AWS_PROFILE=sso run -0 caller_arn
	assert_equal "$(sso_stat .GetRoleCredentials)" $((before + 1))
	assert_equal "$(sso_stat '.queries[-1]')" "account_id=123456789012&role_name=Admin"
	assert_equal "$(sso_stat '.bearers[-1]')" "sso-fixture-access-token"
	refute_output --partial "sso-fixture-access-token"
}

@test "creds: an SSO token near expiry is refreshed with CreateToken and written back as the CLI does" {
	no_keys
	sso_profile
	sso_login corp 300 refreshable
	before=$(sso_stat .CreateToken)
	AWS_PROFILE=sso run -0 caller_arn
	assert_equal "$(sso_stat .CreateToken)" $((before + 1))
	assert_equal "$(sso_stat '.bearers[-1]')" "sso-fixture-refreshed-$((before + 1))"
	# botocore's loader reads the written-back token: new access token, later expiry
	run -0 "$LOCAL_AWS_PYTHON" - <<'PY'
import os, datetime, dateutil.parser
from botocore.utils import JSONFileCache, SSOTokenLoader
t = SSOTokenLoader(cache=JSONFileCache(os.path.expanduser("~/.aws/sso/cache")))(
    "https://goman.awsapps.com/start", session_name="corp")
left = dateutil.parser.parse(t["expiresAt"]) - datetime.datetime.now(datetime.timezone.utc)
print(t["accessToken"].startswith("sso-fixture-refreshed-"), left.total_seconds() > 3600,
      t["clientId"], t["refreshToken"] == "sso-fixture-refresh-token")
PY
	assert_output "True True sso-fixture-client True"
	assert_equal "$(stat -c %a "$HOME"/.aws/sso/cache/*.json)" 600
}

@test "creds: an expired or missing SSO login is one error naming aws sso login, exit 78" {
	no_keys
	sso_profile
	AWS_PROFILE=sso run -78 caller_arn
	assert_output --partial 'run `aws sso login --profile sso`'
	sso_login corp -60
	AWS_PROFILE=sso run -78 caller_arn
	assert_output --partial "the cached SSO login has expired"
	assert_output --partial 'aws sso login --profile sso'
	refute_output --partial "sso-fixture-access-token"
	# the legacy form (sso_start_url in the profile) reads the token named after the URL
	printf '[profile old]\nsso_start_url = https://goman.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = 123456789012\nsso_role_name = Admin\n' >>"$HOME/.aws/config"
	AWS_PROFILE=old run -78 caller_arn
	assert_output --partial 'aws sso login --profile old'
}

@test "creds: sso_region is checked like every region before it names a host" {
	no_keys
	sso_profile
	sed -i 's/^sso_region = .*/sso_region = x@127.0.0.1:1#/' "$HOME/.aws/config"
	AWS_PROFILE=sso run -78 caller_arn
	assert_output --partial "sso_region is not a valid region name"
	refute_output --partial "127.0.0.1:1"
}

@test "creds: mfa_serial reads the code from the terminal unechoed, holding the cache lock across the prompt" {
	no_keys
	role_profile
	export AWS_ENDPOINT_URL=$MOTO_URL
	printf 'mfa_serial = arn:aws:iam::123456789012:mfa/ops\n' >>"$HOME/.aws/config"
	# A prompts on a terminal of its own; B, with no terminal, starts while A waits at the
	# prompt: it must wait for A's credentials rather than fail for want of a terminal
	run -0 "$LOCAL_AWS_PYTHON" - "$GOMAN_BIN/goman-api" <<'PY'
import os, pty, select, subprocess, sys, time
line = b'{"service":"sts","action":"GetCallerIdentity"}\n'
env = dict(os.environ, AWS_PROFILE="ops")
pid, fd = pty.fork()
if pid == 0:
    r, w = os.pipe()
    os.write(w, line); os.close(w)
    os.dup2(r, 0)
    os.execve(sys.argv[1], [sys.argv[1]], env)
seen = b""
while b"Enter MFA code" not in seen:
    select.select([fd], [], [], 10)
    seen += os.read(fd, 1024)
b = subprocess.Popen(["setsid", "-w", sys.argv[1]], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
b.stdin.write(line); b.stdin.close()
time.sleep(1.0)
assert b.poll() is None, "B did not wait for the lock: " + b.stdout.read().decode()
os.write(fd, b"975318\n")
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
bout = b.stdout.read().decode()
print("A", os.waitstatus_to_exitcode(status), "echoed" if b"975318" in out else "quiet",
      "assumed" if b"assumed-role/goman-cached/pipeline" in out else out.decode())
print("B", b.wait(), "assumed" if "assumed-role/goman-cached/pipeline" in bout else bout)
PY
	assert_line "A 0 quiet assumed"
	assert_line "B 0 assumed"
}

@test "creds: no token, refresh token, client secret or secret key in debug logs, events or errors" {
	no_keys
	sso_profile
	sso_login corp 300 refreshable
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/events"
	AWS_PROFILE=sso GOMAN_LOG=debug run -0 --separate-stderr caller_arn
	all="$output$stderr$(cat "$GOMAN_EVENTS" 2>/dev/null)"
	webid_env
	AWS_ENDPOINT_URL=$MOTO_URL GOMAN_LOG=debug run -0 --separate-stderr caller_arn
	all="$all$output$stderr"
	unset AWS_WEB_IDENTITY_TOKEN_FILE
	role_profile
	AWS_ENDPOINT_URL=$MOTO_URL AWS_PROFILE=ops GOMAN_LOG=debug run -0 --separate-stderr caller_arn
	all="$all$output$stderr"
	# the failures name files and profiles, never what they hold
	unset AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN AWS_ROLE_SESSION_NAME
	sso_profile
	sso_login corp -60 refreshable
	sed -i 's/sso-fixture-refresh-token/wrong-refresh-token-secret/' "$HOME"/.aws/sso/cache/*.json
	cached=$(jq -r .Credentials.SecretAccessKey "$HOME"/.aws/cli/cache/*.json | head -1)
	rm -f "$HOME"/.aws/cli/cache/*.json
	AWS_PROFILE=sso GOMAN_LOG=debug run -78 --separate-stderr caller_arn
	all="$all$output$stderr"
	for secret in sso-fixture-access-token sso-fixture-refreshed sso-fixture-refresh-token \
		wrong-refresh-token-secret sso-fixture-client-secret webid-token-secret "$MOTO_SECRET"; do
		[[ "$all" != *"$secret"* ]] || { echo "leaked: $secret"; false; }
	done
	[ -n "$cached" ] && [[ "$all" != *"$cached"* ]]
	# nothing secret on any command line (the patterns come from a file: grep's own argv
	# holds none of them)
	printf '%s\n' sso-fixture-access-token webid-token-secret >"$BATS_TEST_TMPDIR/pat"
	! grep -l -F -f "$BATS_TEST_TMPDIR/pat" /proc/[0-9]*/cmdline 2>/dev/null
}

@test "creds: an SSO token holding a line break never reaches a header" {
	no_keys
	sso_profile
	sso_login corp 7200
	f=$(ls "$HOME"/.aws/sso/cache/*.json)
	jq -c '.accessToken = "sso-fixture-access-token\r\nx-injected: 1"' "$f" >"$f.new"
	mv "$f.new" "$f"
	chmod 600 "$f"
	before=$(sso_stat .GetRoleCredentials)
	AWS_PROFILE=sso run -78 caller_arn
	assert_output --partial "GetRoleCredentials: the token holds control bytes"
	assert_equal "$(sso_stat .GetRoleCredentials)" "$before"
	refute_output --partial "sso-fixture-access-token"
}
