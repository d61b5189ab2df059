#!/bin/sh
# k3s-install.sh - goman's node-side K3s installer (runs on the node via SSM RunShellScript,
# over SSH, or locally). POSIX sh: works under dash, bash and busybox ash.
#
# What it owns: pre-checks, the parallel download + sha256 verification of the k3s binary,
# the token file, one minimal systemd unit, the readiness wait, and the progress/result
# protocol read by goman-install (GOMAN_PROGRESS lines, the progress file, and the last line
# GOMAN_RESULT {json}). Errors come back as an exit code per failure (see --help) and a
# GOMAN_RESULT line with "ok":false, the failure class and the tail of the log.
#
# Secrets: the cluster token is read from a file, from stdin or from SSM Parameter Store on
# the node; it never appears in argv (ours, curl's or k3s's: k3s gets --token-file), in the
# log, or on stdout. AWS credentials taken from IMDSv2 reach curl through a config on stdin.
#
# Run `k3s-install.sh --help` for flags, environment and exit codes.

# shellcheck disable=SC2015 # "a && b || fail": fail is wanted when either step fails
PROG=k3s-install.sh

usage() {
	cat <<'EOF'
usage: k3s-install.sh --role server|agent [options] [-- extra k3s args]

Installs K3s on this node: pre-checks, parallel download of the binary and its checksum
file, sha256 verification, binary + token file + systemd unit, start, readiness wait.
Safe to re-run: an installed binary whose sha256 matches the release is not downloaded
again ("skipped":true); another version is upgraded in place.

Role and cluster
  --role server|agent        (GOMAN_ROLE) required
  --cluster-init             (GOMAN_CLUSTER_INIT=1) this server initialises embedded etcd
  --server-url URL           (GOMAN_SERVER_URL) server to join (agents; joining servers)
  --tls-san NAME             (GOMAN_TLS_SAN, space/comma separated) repeatable
  --node-name NAME           (GOMAN_NODE_NAME) the Kubernetes node name (default: the
                             hostname); a DNS subdomain: a-z 0-9 - . (1-253). Ignored when
                             this node's unit exists without one (it keeps its name)
  --node-label KEY=VALUE     (GOMAN_NODE_LABELS, space separated) repeatable; KEY is
                             [prefix/]name, both of A-Z a-z 0-9 - _ . (and / in KEY)
  --node-taint KEY[=VALUE]:EFFECT  (GOMAN_NODE_TAINTS, space separated) repeatable;
                             EFFECT is NoSchedule, PreferNoSchedule or NoExecute
  --exec-args "ARGS"         (GOMAN_EXEC_ARGS) extra k3s args, split on spaces;
                             arguments after `--` are passed as they are
Cluster token (never on the command line)
  --token-file PATH          (GOMAN_TOKEN_FILE) read the token from PATH
  --token-ssm-param NAME     (GOMAN_TOKEN_SSM_PARAM) SSM SecureString, e.g. /goman/demo/token,
                             read with the aws CLI when present, else with
                             curl --aws-sigv4 and IMDSv2 role credentials
  --token-stdin              (GOMAN_TOKEN_STDIN=1) read one line from stdin. When the script
                             itself arrives on stdin use `bash -s` (bash reads a pipe one
                             byte at a time, so the token line after the script is left for us)
  --region REGION            (AWS_REGION, AWS_DEFAULT_REGION, else IMDS) for SSM
Kubeconfig (servers)
  --kubeconfig-ssm-param NAME  (GOMAN_KUBECONFIG_SSM_PARAM) once ready, put the kubeconfig in
                             SSM as a SecureString NAME (Overwrite; Advanced tier over 4 KB),
                             with the aws CLI when present, else curl --aws-sigv4 and IMDSv2
                             role credentials, like the token; never printed or logged.
                             A failure is reported ("kubeconfig":"failed") but not fatal
  --kubeconfig-server ADDR   (GOMAN_KUBECONFIG_SERVER) the address that replaces 127.0.0.1
                             in it, normally the private IP (default: first of hostname -I)
  Overrides for tests: GOMAN_IMDS_ENDPOINT (or AWS_EC2_METADATA_SERVICE_ENDPOINT),
  AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, GOMAN_SSM_CLIENT=aws|curl
  (the SSM fetch without the aws CLI needs curl >= 7.75 for --aws-sigv4)
Release and source
  --k3s-version VER          (GOMAN_K3S_VERSION) e.g. v1.31.4+k3s1
  --channel NAME             (GOMAN_CHANNEL, default stable) used when no version is given
  --channel-url URL          (GOMAN_CHANNEL_URL, default https://update.k3s.io/v1-release/channels)
  --mirror URL               (GOMAN_MIRROR, default https://github.com/k3s-io/k3s/releases/download)
                             files are fetched from URL/<version>/<asset>
  --airgap-binary-url URL    (GOMAN_AIRGAP_BINARY_URL) e.g. an S3 URL; with
  --airgap-checksum-url URL  (GOMAN_AIRGAP_CHECKSUM_URL) no mirror/channel is contacted.
                             These are in argv: a URL that carries a secret (a presigned
                             URL holds the session token) goes by one of the two below
  --airgap-stdin             (GOMAN_AIRGAP_STDIN=1) read one line "BINARY_URL CHECKSUM_URL"
                             from stdin, before the token line of --token-stdin
  --airgap-ssm-param NAME    (GOMAN_AIRGAP_SSM_PARAM) the same line from an SSM SecureString,
                             read like --token-ssm-param
Paths
  --prefix DIR               (GOMAN_PREFIX) put every path below under DIR (tests)
  --bin-dir DIR              (GOMAN_BIN_DIR, default /usr/local/bin)
  --data-dir DIR             (GOMAN_DATA_DIR, default /var/lib/rancher/k3s)
  --progress-file FILE       (GOMAN_PROGRESS_FILE, default /var/lib/goman/install-progress)
  --log-file FILE            (GOMAN_LOG_FILE, default /var/log/goman-k3s-install.log)
Behaviour
  --no-services              (GOMAN_NO_SERVICES=1) write the unit but do not run systemctl;
                             servers still run the readiness check on the binary (tests)
  --min-free-mb N            (GOMAN_MIN_FREE_MB, default 1024) free space needed on the data dir
  --ready-timeout SEC        (GOMAN_READY_TIMEOUT, default 300)
  --server-wait SEC          (GOMAN_SERVER_WAIT, default: --ready-timeout) a joining node
                             (agent, joining server) waits this long for --server-url to
                             answer before its unit is enabled: the first server may come up
                             later than this node; the readiness wait after it ends at the
                             later of the two deadlines. Never answered: the unit stays written but
                             disabled (no k3s retrying forever), exit 33. With --no-services
                             only when given explicitly (tests)
  GOMAN_DOWNLOADER=curl|wget the download tool (default: curl if present, else wget)
  -h, --help                 this text

Output: `GOMAN_PROGRESS <pct> <step>` lines (25 precheck, 50 download, 75 install, 100 ready),
the same "pct step" lines appended to the progress file, and as the last line
`GOMAN_RESULT {json}`: {"ok":true,"role","version","arch","checksum","skipped","upgraded",
"ms","timings_ms":{...}} or {"ok":false,"class","code","exit","message","log_tail"}.
stdout stays small (SSM keeps 24,000 characters); the full log is in the log file.

Exit codes
  0   installed (or already installed) and ready
  64  usage: bad or conflicting flags, or a value (flag, GOMAN_* variable, extra k3s
      argument) holding a control character, or a node name, label or taint outside
      its character set (code BadInput); nothing is written
  10  precheck: curl or wget, or sha256sum, missing
  11  precheck: unsupported architecture (x86_64/amd64, aarch64/arm64, armv7l/armhf)
  12  precheck: not root, or the bin/data dirs are not writable
  13  precheck: not enough free space on the data dir
  14  precheck: download source unreachable, the channel did not resolve, or the air-gap
      URL line (--airgap-stdin, --airgap-ssm-param) is missing or malformed
  15  precheck: cluster token unavailable (file, stdin or SSM)
  20  download failed (binary or checksum file)
  21  checksum: sha256 mismatch or asset missing from the checksum file; nothing installed
  30  install: could not write the binary, token file or unit
  31  start: systemctl failed
  32  start: not ready within --ready-timeout
  33  start: the server at --server-url did not answer within --server-wait; the unit is
      written but not enabled (re-run when the server is up)

Why not the official get.k3s.io installer in air-gap mode: goman's nodes are EC2 AMIs that
all run systemd, and the unit needed is a dozen lines; the official installer would be a
third download (and a third thing to mirror into S3 for air-gapped nodes), it re-derives the
paths and arguments we already know, and it cannot run under a test prefix without root or
systemd. What it adds that we skip: OpenRC units, SELinux policy RPMs, and the uninstall and
killall scripts (remove with: systemctl disable --now k3s; rm the binary, unit and data dir).
EOF
}

# ---- small helpers ---------------------------------------------------------------------

now_ms() {
	_t=$(date +%s%3N 2>/dev/null)
	case "$_t" in *N* | '') _t=$(($(date +%s) * 1000)) ;; esac
	echo "$_t"
}

log() { # human line: log file and stderr (stdout is the protocol channel)
	_l="$(date -u +%Y-%m-%dT%H:%M:%SZ) [INSTALL] $*"
	[ -n "${LOG_FILE_READY:-}" ] && printf '%s\n' "$_l" >>"$LOG_FILE"
	printf '%s\n' "$_l" >&2
}

# JSON string body from stdin (no quotes around): escapes \ " tab CR, joins lines with \n,
# drops other control characters.
json_escape() {
	tr -d '\000-\010\013\014\016-\037' | awk 'BEGIN { ORS = "" }
		{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r");
		  if (NR > 1) printf "\\n"; printf "%s", $0 }'
}
jstr() { printf '%s' "$1" | json_escape; }

# Control characters (0x01-0x1f, 0x7f; a shell value holds no NUL). A newline in a value
# would end the ExecStart line and start another directive of the unit, or another option
# of a curl config: no value with one is written anywhere.
CTL=$(printf '\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\177x')
CTL=${CTL%x}
has_ctl() {
	case "$1" in *["$CTL"]*) return 0 ;; esac
	return 1
}

# bad_value WHAT VALUE: refuse a value with a control character (exit 64, BadInput). The
# value itself is not echoed: it is what must not reach a line-based file or the log.
bad_value() {
	has_ctl "$2" || return 0
	printf '%s: %s holds a control character\n' "$PROG" "$1" >&2
	printf 'GOMAN_RESULT {"ok":false,"class":"bad_input","code":"BadInput","exit":64,"message":"%s holds a control character"}\n' "$(jstr "$1")"
	exit 64
}

# One extra k3s argument, checked then quoted for the unit.
add_extra() {
	bad_value "an extra k3s argument" "$1"
	EXTRA_ARGS="$EXTRA_ARGS $(sd_quote "$1")"
}

# bad_form WHAT: a node name, label or taint outside its form (exit 64, BadInput); the
# value is not echoed (it may hold anything).
bad_form() {
	printf '%s: %s\n' "$PROG" "$1" >&2
	printf 'GOMAN_RESULT {"ok":false,"class":"bad_input","code":"BadInput","exit":64,"message":"%s"}\n' "$(jstr "$1")"
	exit 64
}

# The Kubernetes forms (goman-install checks them too; here nothing else reaches the unit).
check_node_name() {
	case "$1" in
	'' | *[!a-z0-9.-]* | [.-]* | *[.-]) bad_form "--node-name must be a DNS name: a-z 0-9 - ." ;;
	esac
	[ "${#1}" -le 253 ] || bad_form "--node-name is longer than 253 characters"
}
label_name_ok() { # a label name or value: [A-Za-z0-9] ([-_.A-Za-z0-9]* [A-Za-z0-9])?, 1-63
	case "$1" in '' | *[!A-Za-z0-9._-]* | [._-]* | *[._-]) return 1 ;; esac
	[ "${#1}" -le 63 ]
}
label_key_ok() { # [prefix/]name, the prefix a DNS subdomain
	case "$1" in
	*/*/*) return 1 ;;
	*/*)
		case "${1%%/*}" in '' | *[!a-z0-9.-]* | [.-]* | *[.-]) return 1 ;; esac
		[ "${#1}" -le 316 ] && label_name_ok "${1#*/}" ;;
	*) label_name_ok "$1" ;;
	esac
}
check_node_label() {
	case "$1" in *=*) ;; *) bad_form "--node-label must be KEY=VALUE" ;; esac
	label_key_ok "${1%%=*}" || bad_form "--node-label has a key outside [prefix/]name (A-Z a-z 0-9 - _ .)"
	_lv=${1#*=}
	[ -z "$_lv" ] || label_name_ok "$_lv" || bad_form "--node-label has a value outside A-Z a-z 0-9 - _ . (1-63)"
}
check_node_taint() {
	case "$1" in
	*:NoSchedule | *:PreferNoSchedule | *:NoExecute) ;;
	*) bad_form "--node-taint must end in :NoSchedule, :PreferNoSchedule or :NoExecute" ;;
	esac
	_tk=${1%:*}
	case "$_tk" in
	*=*)
		_tv=${_tk#*=} _tk=${_tk%%=*}
		[ -z "$_tv" ] || label_name_ok "$_tv" || bad_form "--node-taint has a value outside A-Z a-z 0-9 - _ . (1-63)" ;;
	esac
	label_key_ok "$_tk" || bad_form "--node-taint has a key outside [prefix/]name (A-Z a-z 0-9 - _ .)"
}

# Quote one argument for a systemd ExecStart line (values are free of control characters).
sd_quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/%/%%/g' -e 's/\$/$$/g')"
}
add_arg() { K3S_ARGS="$K3S_ARGS $(sd_quote "$1")"; }

progress() { # pct step
	printf 'GOMAN_PROGRESS %s %s\n' "$1" "$2"
	printf '%s %s\n' "$1" "$2" >>"$PROGRESS_FILE" 2>/dev/null
	log "progress $1 $2"
}

result_ok() {
	_end=$(now_ms)
	_kcj=""
	[ -n "$KC_STATE" ] && _kcj="\"kubeconfig\":\"$KC_STATE\","
	printf 'GOMAN_RESULT {"ok":true,"role":"%s","version":"%s","arch":"%s","checksum":"sha256:%s","skipped":%s,"upgraded":%s,"airgap":%s,"services":%s,"ready":"%s",%s"ms":%s,"timings_ms":{"precheck":%s,"download":%s,"install":%s,"start":%s}}\n' \
		"$ROLE" "$(jstr "$VERSION")" "$ARCH" "$SHA" "$SKIPPED" "$UPGRADED" "$AIRGAP_JSON" \
		"$SERVICES_JSON" "$READY_STATE" "$_kcj" $((_end - T0)) "${MS_PRECHECK:-0}" "${MS_DOWNLOAD:-0}" \
		"${MS_INSTALL:-0}" "${MS_START:-0}"
}

# fail EXIT CLASS CODE MESSAGE: log, print the failure result, exit.
fail() {
	log "error: $4"
	_tail=""
	# this run's lines only (the log keeps every run), 15 lines of at most 300 characters
	[ -n "${LOG_FILE_READY:-}" ] &&
		_tail=$(tail -n "+$((LOG_START + 1))" "$LOG_FILE" | tail -n 15 | cut -c1-300 | json_escape)
	printf 'GOMAN_RESULT {"ok":false,"role":"%s","class":"%s","code":"%s","exit":%s,"message":"%s","ms":%s,"log_tail":"%s"}\n' \
		"$(jstr "${ROLE:-}")" "$2" "$3" "$1" "$(jstr "$4")" $(($(now_ms) - T0)) "$_tail"
	exit "$1"
}

usage_fail() {
	printf '%s: %s\n' "$PROG" "$1" >&2
	printf 'GOMAN_RESULT {"ok":false,"class":"bad_input","code":"Usage","exit":64,"message":"%s"}\n' "$(jstr "$1")"
	exit 64
}

# Strip the query string (presigned URLs) before a URL reaches the log.
redact_url() { printf '%s' "$1" | sed 's/[?#].*//'; }

# curl/wget with the URL in a config on stdin: presigned query strings stay out of argv.
# dl URL OUT -> exit status of the transfer
dl() {
	if [ "$DL_TOOL" = curl ]; then
		printf 'url = "%s"\noutput = "%s"\n' "$1" "$2" |
			curl -K - -fsSL --connect-timeout 10 --retry 3 --retry-delay 1 2>>"$LOG_FILE"
	else
		printf '%s\n' "$1" | wget -q -T 30 -t 3 -O "$2" -i - 2>>"$LOG_FILE"
	fi
}

# reachable URL -> 0 when some HTTP answer came back (any status), 1 on no connection
reachable() {
	if [ "$DL_TOOL" = curl ]; then
		_code=$(printf 'url = "%s"\n' "$1" |
			curl -K - -s -o /dev/null -w '%{http_code}' --connect-timeout 10 --max-time 20 2>>"$LOG_FILE")
		[ -n "$_code" ] && [ "$_code" != 000 ]
	else
		printf '%s\n' "$1" | wget -q -T 10 -t 1 --spider -i - 2>>"$LOG_FILE"
		_rc=$? # 4 network failure, 5 TLS failure; a server error (8) is an answer
		[ "$_rc" -ne 4 ] && [ "$_rc" -ne 5 ]
	fi
}

# json_field KEY < json: first string value of KEY (jq, else python3, else sed).
json_field() {
	if command -v jq >/dev/null 2>&1; then
		jq -r --arg k "$1" '.. | objects | select(has($k)) | .[$k] | strings' 2>/dev/null | head -n 1
	elif command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
def walk(o, k):
    if isinstance(o, dict):
        if isinstance(o.get(k), str): return o[k]
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = walk(v, k)
            if r is not None: return r
    return None
r = walk(json.load(sys.stdin), sys.argv[1])
if r is not None: sys.stdout.write(r)
' "$1" 2>/dev/null
	else
		tr -d '\n' | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
	fi
}

# ---- token ------------------------------------------------------------------------------

imds_endpoint() {
	_e=${GOMAN_IMDS_ENDPOINT:-${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}}
	printf '%s' "${_e%/}"
}

# SSM request via curl --aws-sigv4 with IMDSv2 role credentials (the one SSM client of the
# script without the aws CLI): ssm_curl ACTION BODY prints the response body of a 200 and
# returns 1 otherwise. Secrets (the role's keys, and a body that may hold one: a kubeconfig)
# go to curl through `-K -` (config on stdin), never argv.
ssm_curl() {
	_imds=$(imds_endpoint)
	case "$_imds" in
	*169.254.169.254*)
		if [ "${AWS_EC2_METADATA_DISABLED:-}" = true ]; then
			log "IMDS is disabled (AWS_EC2_METADATA_DISABLED=true) and no GOMAN_IMDS_ENDPOINT is set"
			return 1
		fi ;;
	esac
	_itok=$(curl -fsS -X PUT --connect-timeout 2 --max-time 5 \
		-H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$_imds/latest/api/token" 2>>"$LOG_FILE") ||
		{ log "IMDSv2 token request failed"; return 1; }
	_ihdr="header = \"X-aws-ec2-metadata-token: $_itok\""
	_role=$(printf '%s\nurl = "%s"\n' "$_ihdr" "$_imds/latest/meta-data/iam/security-credentials/" |
		curl -K - -fsS --max-time 5 2>>"$LOG_FILE" | head -n 1) || _role=""
	[ -n "$_role" ] || { log "no IAM role on this instance (IMDS)"; return 1; }
	_creds=$(printf '%s\nurl = "%s"\n' "$_ihdr" "$_imds/latest/meta-data/iam/security-credentials/$_role" |
		curl -K - -fsS --max-time 5 2>>"$LOG_FILE") || { log "IMDS role credentials request failed"; return 1; }
	_akid=$(printf '%s' "$_creds" | json_field AccessKeyId)
	_skey=$(printf '%s' "$_creds" | json_field SecretAccessKey)
	_stok=$(printf '%s' "$_creds" | json_field Token)
	[ -n "$_akid" ] && [ -n "$_skey" ] || { log "IMDS role credentials incomplete"; return 1; }
	if [ -z "$REGION" ]; then
		REGION=$(printf '%s\nurl = "%s"\n' "$_ihdr" "$_imds/latest/meta-data/placement/region" |
			curl -K - -fsS --max-time 5 2>>"$LOG_FILE")
	fi
	[ -n "$REGION" ] || { log "no region (--region, AWS_REGION or IMDS)"; return 1; }
	_ep=${AWS_ENDPOINT_URL_SSM:-${AWS_ENDPOINT_URL:-https://ssm.$REGION.amazonaws.com}}
	_resp=$({
		printf 'url = "%s/"\n' "${_ep%/}"
		printf 'aws-sigv4 = "aws:amz:%s:ssm"\n' "$REGION"
		printf 'user = "%s:%s"\n' "$_akid" "$_skey"
		[ -n "$_stok" ] && printf 'header = "X-Amz-Security-Token: %s"\n' "$_stok"
		printf 'header = "Content-Type: application/x-amz-json-1.1"\n'
		printf 'header = "X-Amz-Target: AmazonSSM.%s"\n' "$1"
		printf 'data = "%s"\n' "$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')"
	} | curl -K - -sS --connect-timeout 5 --max-time 20 -w '\n%{http_code}' 2>>"$LOG_FILE")
	_code=$(printf '%s' "$_resp" | tail -n 1)
	if [ "$_code" != 200 ]; then
		# an error body carries no secret: keep its message for the log
		log "SSM $1 ${3:-}: HTTP $_code $(printf '%s' "$_resp" | sed '$d' | cut -c1-300)"
		return 1
	fi
	printf '%s' "$_resp" | sed '$d'
}

# SSM GetParameter of a SecureString NAME; prints the value.
ssm_fetch_curl() {
	ssm_curl GetParameter "$(printf '{"Name":"%s","WithDecryption":true}' "$(jstr "$1")")" "$1" |
		json_field Value
}

ssm_fetch_aws() {
	_r=""
	[ -n "$REGION" ] && _r="--region $REGION"
	# shellcheck disable=SC2086 # _r is two words or none
	aws ssm get-parameter $_r --name "$1" --with-decryption \
		--query Parameter.Value --output text 2>>"$LOG_FILE"
}

# ssm_fetch NAME: the value of SecureString NAME with the SSM client of this node
ssm_fetch() {
	_via=${GOMAN_SSM_CLIENT:-auto}
	if [ "$_via" = auto ]; then
		if command -v aws >/dev/null 2>&1; then _via=aws; else _via=curl; fi
	fi
	log "reading SSM parameter $1 via $_via"
	case "$_via" in
	aws) ssm_fetch_aws "$1" ;;
	curl) ssm_fetch_curl "$1" ;;
	*) return 2 ;;
	esac
}

# The air-gap URLs from stdin or SSM: one line "BINARY_URL CHECKSUM_URL". Presigned URLs
# carry the session token: they never go through argv, and only without their query
# string into the log.
read_airgap() {
	_line=""
	if [ "$AIRGAP_STDIN" = 1 ]; then
		IFS= read -r _line || [ -n "$_line" ] ||
			fail 14 precheck Unreachable "no air-gap URL line on stdin"
	elif [ -n "$AIRGAP_SSM_PARAM" ]; then
		_line=$(ssm_fetch "$AIRGAP_SSM_PARAM") || _line=""
		[ -n "$_line" ] || fail 14 precheck Unreachable "could not read SSM parameter $AIRGAP_SSM_PARAM"
	else
		return 0
	fi
	_line=$(printf '%s' "$_line" | tr -d '\r\n')
	has_ctl "$_line" && fail 14 precheck Unreachable "the air-gap URL line holds a control character"
	AIRGAP_BIN_URL=${_line%% *}
	AIRGAP_SUMS_URL=${_line#* }
	case "$AIRGAP_SUMS_URL" in *' '*) AIRGAP_SUMS_URL="" ;; esac
	[ -n "$AIRGAP_BIN_URL" ] && [ -n "$AIRGAP_SUMS_URL" ] && [ "$AIRGAP_BIN_URL" != "$_line" ] ||
		fail 14 precheck Unreachable "the air-gap line is not \"BINARY_URL CHECKSUM_URL\""
}

read_token() {
	TOKEN=""
	_n=0
	[ -n "$TOKEN_FILE" ] && _n=$((_n + 1))
	[ -n "$TOKEN_SSM_PARAM" ] && _n=$((_n + 1))
	[ "$TOKEN_STDIN" = 1 ] && _n=$((_n + 1))
	[ "$_n" -gt 1 ] && usage_fail "give one token source: --token-file, --token-ssm-param or --token-stdin"
	if [ -n "$TOKEN_FILE" ]; then
		[ -r "$TOKEN_FILE" ] || fail 15 precheck TokenUnavailable "token file $TOKEN_FILE is not readable"
		TOKEN=$(head -n 1 "$TOKEN_FILE")
	elif [ "$TOKEN_STDIN" = 1 ]; then
		IFS= read -r TOKEN || [ -n "$TOKEN" ] ||
			fail 15 precheck TokenUnavailable "no token line on stdin"
	elif [ -n "$TOKEN_SSM_PARAM" ]; then
		case "${GOMAN_SSM_CLIENT:-auto}" in
		auto | aws | curl) ;;
		*) usage_fail "GOMAN_SSM_CLIENT must be aws or curl" ;;
		esac
		TOKEN=$(ssm_fetch "$TOKEN_SSM_PARAM")
		[ -n "$TOKEN" ] || fail 15 precheck TokenUnavailable "could not read SSM parameter $TOKEN_SSM_PARAM"
	fi
	TOKEN=$(printf '%s' "$TOKEN" | tr -d '\r\n')
	has_ctl "$TOKEN" && fail 15 precheck TokenUnavailable "the token holds a control character"
	if [ -z "$TOKEN" ]; then
		if [ "$ROLE" = agent ] || [ -n "$SERVER_URL" ]; then
			fail 15 precheck TokenUnavailable "joining a cluster needs a token (--token-file, --token-ssm-param or --token-stdin)"
		fi
		log "no token given: k3s generates one (first server)"
	fi
}

# ---- kubeconfig ---------------------------------------------------------------------------

# The client's view of the server, wherever it runs: k3s writes https://127.0.0.1:6443;
# ADDR (IPv6 in brackets) takes its place.
kubeconfig_rewrite() { # IN OUT
	_a=$KC_SERVER
	case "$_a" in *:*) case "$_a" in \[*) ;; *) _a="[$_a]" ;; esac ;; esac
	sed -e "s#server: https://127\.0\.0\.1:#server: https://$_a:#" \
		-e "s#server: https://localhost:#server: https://$_a:#" "$1" >"$2"
}

# Put the server's kubeconfig into Parameter Store as a SecureString (Overwrite: a re-run
# or a rebuilt server replaces it; Advanced tier over 4 KB, the Standard limit). Its text
# goes from the file to the aws CLI (file://) or to curl's config on stdin: never argv, the
# log or stdout. Sets KC_STATE stored|failed; a failure does not undo a working server.
store_kubeconfig() {
	KC_STATE=failed
	_kc="$ETC_DIR/k3s.yaml"
	_i=0
	while [ ! -s "$_kc" ] && [ "$_i" -lt 30 ]; do sleep 1; _i=$((_i + 1)); done
	[ -s "$_kc" ] || { log "kubeconfig $_kc not found: not stored"; return 0; }
	if [ -z "$KC_SERVER" ]; then
		KC_SERVER=$(hostname -I 2>/dev/null | awk '{ print $1 }')
		[ -n "$KC_SERVER" ] || KC_SERVER=127.0.0.1
	fi
	(umask 077 && kubeconfig_rewrite "$_kc" "$TMP/kubeconfig") ||
		{ log "cannot rewrite $_kc: not stored"; return 0; }
	_size=$(wc -c <"$TMP/kubeconfig" | tr -d ' ')
	if [ "$_size" -gt 4096 ]; then _tier=Advanced; else _tier=Standard; fi
	_via=${GOMAN_SSM_CLIENT:-auto}
	if [ "$_via" = auto ]; then
		if command -v aws >/dev/null 2>&1; then _via=aws; else _via=curl; fi
	fi
	log "storing the kubeconfig (server $KC_SERVER, $_size bytes, $_tier tier) in SSM parameter $KC_SSM_PARAM via $_via"
	case "$_via" in
	aws)
		_r=""
		[ -n "$REGION" ] && _r="--region $REGION"
		# shellcheck disable=SC2086 # _r is two words or none
		aws ssm put-parameter $_r --name "$KC_SSM_PARAM" --type SecureString --tier "$_tier" \
			--overwrite --value "file://$TMP/kubeconfig" >/dev/null 2>>"$LOG_FILE" ;;
	*)
		_body=$(printf '{"Name":"%s","Type":"SecureString","Overwrite":true,"Tier":"%s","Value":"%s\\n"}' \
			"$(jstr "$KC_SSM_PARAM")" "$_tier" "$(json_escape <"$TMP/kubeconfig")")
		ssm_curl PutParameter "$_body" "$KC_SSM_PARAM" >/dev/null ;;
	esac
	_rc=$?
	rm -f "$TMP/kubeconfig"
	if [ "$_rc" = 0 ]; then
		KC_STATE=stored
		log "kubeconfig stored in $KC_SSM_PARAM"
	else
		log "warning: storing the kubeconfig in $KC_SSM_PARAM failed (the server itself is ready)"
	fi
}

# ---- pre-checks -------------------------------------------------------------------------

# nearest existing ancestor of a path (for writability and free-space checks)
existing_parent() {
	_p=$1
	while [ ! -e "$_p" ] && [ "$_p" != / ] && [ -n "$_p" ]; do _p=$(dirname "$_p"); done
	printf '%s' "${_p:-/}"
}

precheck() {
	DL_TOOL=${GOMAN_DOWNLOADER:-}
	if [ -z "$DL_TOOL" ]; then
		if command -v curl >/dev/null 2>&1; then DL_TOOL=curl; elif command -v wget >/dev/null 2>&1; then DL_TOOL=wget; fi
	fi
	case "$DL_TOOL" in
	curl | wget) command -v "$DL_TOOL" >/dev/null 2>&1 || fail 10 precheck MissingTool "$DL_TOOL is not installed" ;;
	'') fail 10 precheck MissingTool "neither curl nor wget is installed" ;;
	*) usage_fail "GOMAN_DOWNLOADER must be curl or wget" ;;
	esac
	command -v sha256sum >/dev/null 2>&1 || fail 10 precheck MissingTool "sha256sum is not installed"
	if [ -n "$TOKEN_SSM_PARAM$KC_SSM_PARAM$AIRGAP_SSM_PARAM" ] && [ "${GOMAN_SSM_CLIENT:-auto}" != aws ] &&
		! command -v aws >/dev/null 2>&1 && ! command -v curl >/dev/null 2>&1; then
		fail 10 precheck MissingTool "SSM (token or kubeconfig) needs the aws CLI or curl"
	fi

	_m=${GOMAN_UNAME_M:-$(uname -m)}
	case "$_m" in
	x86_64 | amd64) ARCH=amd64 ASSET=k3s SUMS=sha256sum-amd64.txt ;;
	aarch64 | arm64) ARCH=arm64 ASSET=k3s-arm64 SUMS=sha256sum-arm64.txt ;;
	armv7l | armv7 | armhf | arm) ARCH=arm ASSET=k3s-armhf SUMS=sha256sum-arm.txt ;;
	*) fail 11 precheck UnsupportedArch "unsupported architecture $_m (need x86_64, aarch64 or armv7l)" ;;
	esac

	if [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
		fail 12 precheck Permission "must run as root (or use --prefix with writable dirs)"
	fi
	for _d in "$BIN_DIR" "$DATA_DIR" "$ETC_DIR" "$UNIT_DIR"; do
		_e=$(existing_parent "$_d")
		[ -d "$_e" ] && [ -w "$_e" ] || fail 12 precheck Permission "$_d is not writable (nearest existing: $_e)"
	done

	_e=$(existing_parent "$DATA_DIR")
	_free_kb=$(df -Pk "$_e" 2>/dev/null | awk 'NR == 2 { print $4 }')
	case "$_free_kb" in '' | *[!0-9]*) fail 13 precheck LowDisk "cannot read free space of $_e" ;; esac
	_free_mb=$((_free_kb / 1024))
	log "free space on $_e: ${_free_mb} MB (need $MIN_FREE_MB MB)"
	[ "$_free_mb" -ge "$MIN_FREE_MB" ] ||
		fail 13 precheck LowDisk "only ${_free_mb} MB free on $_e, need ${MIN_FREE_MB} MB"

	# stdin holds the air-gap line first, then the token line
	read_airgap
	read_token

	if [ -n "$AIRGAP_BIN_URL" ]; then
		AIRGAP_JSON=true
		BIN_URL=$AIRGAP_BIN_URL SUMS_URL=$AIRGAP_SUMS_URL
		log "air-gap: binary $(redact_url "$BIN_URL"), checksums $(redact_url "$SUMS_URL")"
	else
		if [ -z "$VERSION" ]; then
			_cu="${CHANNEL_URL%/}/$CHANNEL"
			if [ "$DL_TOOL" = curl ]; then
				_eff=$(printf 'url = "%s"\n' "$_cu" |
					curl -K - -fsSL -o /dev/null -w '%{url_effective}' --connect-timeout 10 --max-time 30 2>>"$LOG_FILE")
			else
				_eff=$(printf '%s\n' "$_cu" | wget -S --spider -T 10 -t 1 -i - 2>&1 |
					sed -n 's/^ *Location: *//p' | tail -n 1)
			fi
			VERSION=${_eff##*/}
			case "$VERSION" in
			v[0-9]*) log "channel $CHANNEL resolved to $VERSION" ;;
			*) fail 14 precheck Unreachable "channel $CHANNEL did not resolve at $_cu" ;;
			esac
		fi
		BIN_URL="${MIRROR%/}/$VERSION/$ASSET"
		SUMS_URL="${MIRROR%/}/$VERSION/$SUMS"
		reachable "${MIRROR%/}/" || fail 14 precheck Unreachable "download source $MIRROR is unreachable"
	fi
}

# ---- download and verify ----------------------------------------------------------------

expected_sum() { awk -v a="$ASSET" '$2 == a || $2 == "*" a { print $1; exit }' "$TMP/sums"; }

download() {
	SKIPPED=false UPGRADED=false
	if [ -x "$BIN_DIR/k3s" ]; then
		# Already installed: the small checksum file decides whether the binary is needed.
		dl "$SUMS_URL" "$TMP/sums" || fail 20 download DownloadFailed "checksum file download failed: $(redact_url "$SUMS_URL")"
		SHA=$(expected_sum)
		[ -n "$SHA" ] || fail 21 checksum ChecksumMissing "$ASSET is not listed in $SUMS"
		_have=$(sha256sum "$BIN_DIR/k3s" | awk '{ print $1 }')
		if [ "$_have" = "$SHA" ]; then
			log "installed binary matches $SHA: download skipped"
			SKIPPED=true
			return 0
		fi
		log "installed binary differs ($_have): upgrading in place"
		UPGRADED=true
		dl "$BIN_URL" "$TMP/k3s" || fail 20 download DownloadFailed "binary download failed: $(redact_url "$BIN_URL")"
	else
		# Both at once: background jobs, each exit status checked.
		log "downloading $(redact_url "$BIN_URL") and $(redact_url "$SUMS_URL") in parallel"
		dl "$BIN_URL" "$TMP/k3s" &
		_pb=$!
		dl "$SUMS_URL" "$TMP/sums" &
		_ps=$!
		wait "$_pb"
		_rb=$?
		wait "$_ps"
		_rs=$?
		[ "$_rb" = 0 ] || fail 20 download DownloadFailed "binary download failed (exit $_rb): $(redact_url "$BIN_URL")"
		[ "$_rs" = 0 ] || fail 20 download DownloadFailed "checksum file download failed (exit $_rs): $(redact_url "$SUMS_URL")"
		SHA=$(expected_sum)
		[ -n "$SHA" ] || fail 21 checksum ChecksumMissing "$ASSET is not listed in $SUMS"
	fi
	_got=$(sha256sum "$TMP/k3s" | awk '{ print $1 }')
	if [ "$_got" != "$SHA" ]; then
		rm -f "$TMP/k3s"
		fail 21 checksum ChecksumMismatch "sha256 of $ASSET is $_got, expected $SHA; nothing installed"
	fi
	log "sha256 verified: $SHA"
}

# ---- install ----------------------------------------------------------------------------

install_files() {
	umask 022
	mkdir -p "$BIN_DIR" "$DATA_DIR" "$ETC_DIR" "$UNIT_DIR" 2>>"$LOG_FILE" ||
		fail 30 install InstallFailed "cannot create the install directories"
	if [ "$SKIPPED" = false ]; then
		# copy next to the target, then rename: atomic, and a running k3s keeps its inode
		cp "$TMP/k3s" "$BIN_DIR/.k3s.new.$$" 2>>"$LOG_FILE" && chmod 755 "$BIN_DIR/.k3s.new.$$" &&
			mv -f "$BIN_DIR/.k3s.new.$$" "$BIN_DIR/k3s" 2>>"$LOG_FILE" ||
			{ rm -f "$BIN_DIR/.k3s.new.$$"; fail 30 install InstallFailed "cannot install $BIN_DIR/k3s"; }
		log "installed $BIN_DIR/k3s"
	fi
	_v=$("$BIN_DIR/k3s" --version 2>>"$LOG_FILE" </dev/null | awk '/^k3s version/ { print $3; exit }')
	[ -n "$_v" ] && VERSION=$_v

	TOKEN_PATH="$ETC_DIR/goman-token"
	if [ -n "$TOKEN" ]; then
		(umask 077 && printf '%s\n' "$TOKEN" >"$TOKEN_PATH.new.$$") && chmod 600 "$TOKEN_PATH.new.$$" &&
			mv -f "$TOKEN_PATH.new.$$" "$TOKEN_PATH" ||
			{ rm -f "$TOKEN_PATH.new.$$"; fail 30 install InstallFailed "cannot write the token file"; }
		log "token file $TOKEN_PATH (0600)"
	fi

	K3S_ARGS=""
	add_arg "$ROLE"
	if [ "$ROLE" = server ]; then
		[ "$CLUSTER_INIT" = 1 ] && add_arg --cluster-init
		for _s in $(printf '%s' "$TLS_SAN" | tr ',' ' '); do add_arg --tls-san; add_arg "$_s"; done
		# under a prefix the kubeconfig stays below it too (k3s's own default is fixed)
		[ "$ETC_DIR" != /etc/rancher/k3s ] && { add_arg --write-kubeconfig; add_arg "$ETC_DIR/k3s.yaml"; }
	fi
	if [ -n "$SERVER_URL" ]; then add_arg --server; add_arg "$SERVER_URL"; fi
	if [ -n "$TOKEN" ]; then add_arg --token-file; add_arg "$TOKEN_PATH"; fi
	if [ "$ROLE" = server ]; then UNIT=k3s; else UNIT=k3s-agent; fi
	# A node registered under its host name (a unit of ours without --node-name) keeps it:
	# under a new name K3s would register a second node and leave the first NotReady.
	if [ -n "$NODE_NAME" ] && [ -f "$UNIT_DIR/$UNIT.service" ] &&
		! grep -q '"--node-name"' "$UNIT_DIR/$UNIT.service"; then
		log "keeping the registered node name (the host name): $UNIT.service has no --node-name"
		NODE_NAME=""
	fi
	if [ -n "$NODE_NAME" ]; then add_arg --node-name; add_arg "$NODE_NAME"; fi
	for _l in $NODE_LABELS; do add_arg --node-label; add_arg "$_l"; done
	for _l in $NODE_TAINTS; do add_arg --node-taint; add_arg "$_l"; done
	[ "$DATA_DIR" != /var/lib/rancher/k3s ] && { add_arg --data-dir; add_arg "$DATA_DIR"; }
	K3S_ARGS="$K3S_ARGS$EXTRA_ARGS"

	if [ "$ROLE" = server ]; then UNIT=k3s SD_TYPE=notify; else UNIT=k3s-agent SD_TYPE=exec; fi
	_unit="$UNIT_DIR/$UNIT.service"
	cat >"$TMP/unit" <<EOF
# written by goman k3s-install.sh
[Unit]
Description=Lightweight Kubernetes ($UNIT, goman)
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=$SD_TYPE
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$(sd_quote "$BIN_DIR/k3s")$K3S_ARGS
EOF
	UNIT_CHANGED=false
	if ! cmp -s "$TMP/unit" "$_unit"; then
		cp "$TMP/unit" "$_unit.new.$$" && mv -f "$_unit.new.$$" "$_unit" ||
			fail 30 install InstallFailed "cannot write $_unit"
		UNIT_CHANGED=true
		log "wrote $_unit"
	fi
}

# server_answers: does --server-url answer at all (TLS and HTTP; k3s's /ping is open)?
server_answers() {
	if [ "$DL_TOOL" = curl ]; then
		curl -ks -o /dev/null --max-time 5 "$SERVER_URL/ping" 2>>"$LOG_FILE" </dev/null
	else
		wget -q --no-check-certificate -T 5 -t 1 -O /dev/null "$SERVER_URL/ping" 2>>"$LOG_FILE" </dev/null
	fi
}

# wait_for_server: a joining node may be running before its server; its unit is enabled
# only once the server answers, so one whose server never comes does not retry forever.
wait_for_server() {
	[ -n "$SERVER_URL" ] || return 0
	[ "$NO_SERVICES" = 1 ] && [ -z "$SERVER_WAIT" ] && return 0
	_sdeadline=$(($(date +%s) + ${SERVER_WAIT:-$READY_TIMEOUT}))
	[ "$_sdeadline" -gt "$_deadline" ] && _deadline=$_sdeadline
	log "waiting for the server $SERVER_URL, up to ${SERVER_WAIT:-$READY_TIMEOUT}s"
	until server_answers; do
		[ "$(date +%s)" -ge "$_sdeadline" ] &&
			fail 33 start ServerUnreachable "the server $SERVER_URL did not answer within ${SERVER_WAIT:-$READY_TIMEOUT}s; $UNIT is written, not enabled"
		sleep 2
	done
	log "the server $SERVER_URL answers"
}

start_and_wait() {
	READY_STATE=unmanaged
	_deadline=$(($(date +%s) + READY_TIMEOUT))
	wait_for_server
	if [ "$NO_SERVICES" != 1 ]; then
		command -v systemctl >/dev/null 2>&1 || fail 31 start StartFailed "systemctl not found (use --no-services)"
		systemctl daemon-reload >>"$LOG_FILE" 2>&1 || fail 31 start StartFailed "systemctl daemon-reload failed"
		systemctl enable "$UNIT" >>"$LOG_FILE" 2>&1 || fail 31 start StartFailed "systemctl enable $UNIT failed"
		# --no-block: a server's notify unit would block until etcd is up; we wait ourselves
		if [ "$UPGRADED" = true ] || [ "$UNIT_CHANGED" = true ]; then _verb=restart; else _verb=start; fi
		systemctl "$_verb" --no-block "$UNIT" >>"$LOG_FILE" 2>&1 || fail 31 start StartFailed "systemctl $_verb $UNIT failed"
		log "systemctl $_verb $UNIT"
	fi
	if [ "$ROLE" = server ]; then
		log "waiting for the API server (/readyz), up to ${READY_TIMEOUT}s"
		while :; do
			_r=$(KUBECONFIG="$ETC_DIR/k3s.yaml" "$BIN_DIR/k3s" kubectl get --raw /readyz 2>>"$LOG_FILE" </dev/null)
			[ "$_r" = ok ] && { READY_STATE=api; break; }
			[ "$(date +%s)" -ge "$_deadline" ] && fail 32 start NotReady "API server not ready after ${READY_TIMEOUT}s"
			sleep 2
		done
	elif [ "$NO_SERVICES" != 1 ]; then
		log "waiting for $UNIT to be active, up to ${READY_TIMEOUT}s"
		while :; do
			systemctl is-active --quiet "$UNIT" && { READY_STATE=active; break; }
			[ "$(date +%s)" -ge "$_deadline" ] && fail 32 start NotReady "$UNIT not active after ${READY_TIMEOUT}s"
			sleep 2
		done
	fi
}

# ---- main -------------------------------------------------------------------------------

main() {
	T0=$(now_ms)
	ROLE=${GOMAN_ROLE:-} CLUSTER_INIT=${GOMAN_CLUSTER_INIT:-0} SERVER_URL=${GOMAN_SERVER_URL:-}
	TLS_SAN=${GOMAN_TLS_SAN:-} TOKEN_FILE=${GOMAN_TOKEN_FILE:-}
	TOKEN_SSM_PARAM=${GOMAN_TOKEN_SSM_PARAM:-} TOKEN_STDIN=${GOMAN_TOKEN_STDIN:-0}
	KC_SSM_PARAM=${GOMAN_KUBECONFIG_SSM_PARAM:-} KC_SERVER=${GOMAN_KUBECONFIG_SERVER:-} KC_STATE=""
	REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
	VERSION=${GOMAN_K3S_VERSION:-} CHANNEL=${GOMAN_CHANNEL:-stable}
	CHANNEL_URL=${GOMAN_CHANNEL_URL:-https://update.k3s.io/v1-release/channels}
	MIRROR=${GOMAN_MIRROR:-https://github.com/k3s-io/k3s/releases/download}
	AIRGAP_BIN_URL=${GOMAN_AIRGAP_BINARY_URL:-} AIRGAP_SUMS_URL=${GOMAN_AIRGAP_CHECKSUM_URL:-}
	AIRGAP_STDIN=${GOMAN_AIRGAP_STDIN:-0} AIRGAP_SSM_PARAM=${GOMAN_AIRGAP_SSM_PARAM:-}
	PREFIX=${GOMAN_PREFIX:-} BIN_DIR=${GOMAN_BIN_DIR:-} DATA_DIR=${GOMAN_DATA_DIR:-}
	PROGRESS_FILE=${GOMAN_PROGRESS_FILE:-} LOG_FILE=${GOMAN_LOG_FILE:-}
	NO_SERVICES=${GOMAN_NO_SERVICES:-0} MIN_FREE_MB=${GOMAN_MIN_FREE_MB:-1024}
	READY_TIMEOUT=${GOMAN_READY_TIMEOUT:-300} SERVER_WAIT=${GOMAN_SERVER_WAIT:-}
	NODE_NAME=${GOMAN_NODE_NAME:-} NODE_LABELS=${GOMAN_NODE_LABELS:-} NODE_TAINTS=${GOMAN_NODE_TAINTS:-}
	EXTRA_ARGS=""
	for _a in ${GOMAN_EXEC_ARGS:-}; do add_extra "$_a"; done

	while [ $# -gt 0 ]; do
		case "$1" in
		-h | --help) usage; exit 0 ;;
		--cluster-init) CLUSTER_INIT=1 ;;
		--token-stdin) TOKEN_STDIN=1 ;;
		--airgap-stdin) AIRGAP_STDIN=1 ;;
		--no-services) NO_SERVICES=1 ;;
		--) shift; for _a in "$@"; do add_extra "$_a"; done; break ;;
		--role | --server-url | --tls-san | --token-file | --token-ssm-param | --region | \
			--k3s-version | --channel | --channel-url | --mirror | --airgap-binary-url | \
			--airgap-checksum-url | --prefix | --bin-dir | --data-dir | --progress-file | \
			--log-file | --min-free-mb | --ready-timeout | --server-wait | --exec-args | \
			--kubeconfig-ssm-param | --kubeconfig-server | --airgap-ssm-param | --node-name | \
			--node-label | --node-taint)
			[ $# -ge 2 ] || usage_fail "$1 needs a value"
			_v=$2
			case "$1" in
			--role) ROLE=$_v ;;
			--server-url) SERVER_URL=$_v ;;
			--tls-san) TLS_SAN="$TLS_SAN $_v" ;;
			--token-file) TOKEN_FILE=$_v ;;
			--token-ssm-param) TOKEN_SSM_PARAM=$_v ;;
			--kubeconfig-ssm-param) KC_SSM_PARAM=$_v ;;
			--kubeconfig-server) KC_SERVER=$_v ;;
			--region) REGION=$_v ;;
			--k3s-version) VERSION=$_v ;;
			--channel) CHANNEL=$_v ;;
			--channel-url) CHANNEL_URL=$_v ;;
			--mirror) MIRROR=$_v ;;
			--airgap-binary-url) AIRGAP_BIN_URL=$_v ;;
			--airgap-checksum-url) AIRGAP_SUMS_URL=$_v ;;
			--airgap-ssm-param) AIRGAP_SSM_PARAM=$_v ;;
			--prefix) PREFIX=$_v ;;
			--bin-dir) BIN_DIR=$_v ;;
			--data-dir) DATA_DIR=$_v ;;
			--progress-file) PROGRESS_FILE=$_v ;;
			--log-file) LOG_FILE=$_v ;;
			--min-free-mb) MIN_FREE_MB=$_v ;;
			--ready-timeout) READY_TIMEOUT=$_v ;;
			--server-wait) SERVER_WAIT=$_v ;;
			--exec-args) for _a in $_v; do add_extra "$_a"; done ;;
			--node-name) NODE_NAME=$_v ;;
			--node-label) bad_value --node-label "$_v"; check_node_label "$_v"; NODE_LABELS="$NODE_LABELS $_v" ;;
			--node-taint) bad_value --node-taint "$_v"; check_node_taint "$_v"; NODE_TAINTS="$NODE_TAINTS $_v" ;;
			esac
			shift ;;
		--token | --token=*) usage_fail "the token is never taken from the command line: use --token-file, --token-ssm-param or --token-stdin" ;;
		*) usage_fail "unknown argument: $1" ;;
		esac
		shift
	done

	# every value that can reach the unit, a curl config, the token file or the log
	bad_value --role "$ROLE"
	bad_value --server-url "$SERVER_URL"
	bad_value --tls-san "$TLS_SAN"
	bad_value --token-file "$TOKEN_FILE"
	bad_value --token-ssm-param "$TOKEN_SSM_PARAM"
	bad_value --kubeconfig-ssm-param "$KC_SSM_PARAM"
	bad_value --kubeconfig-server "$KC_SERVER"
	bad_value --region "$REGION"
	bad_value --k3s-version "$VERSION"
	bad_value --channel "$CHANNEL"
	bad_value --channel-url "$CHANNEL_URL"
	bad_value --mirror "$MIRROR"
	bad_value --airgap-binary-url "$AIRGAP_BIN_URL"
	bad_value --airgap-checksum-url "$AIRGAP_SUMS_URL"
	bad_value --airgap-ssm-param "$AIRGAP_SSM_PARAM"
	bad_value --prefix "$PREFIX"
	bad_value --bin-dir "$BIN_DIR"
	bad_value --data-dir "$DATA_DIR"
	bad_value --progress-file "$PROGRESS_FILE"
	bad_value --log-file "$LOG_FILE"
	bad_value --node-name "$NODE_NAME"
	[ -z "$NODE_NAME" ] || check_node_name "$NODE_NAME"
	# the variables' lists (flags were checked as they came; checking again is harmless)
	bad_value GOMAN_NODE_LABELS "$NODE_LABELS"
	bad_value GOMAN_NODE_TAINTS "$NODE_TAINTS"
	# before they are split: no glob character can expand to file names
	case "$NODE_LABELS" in *[!A-Za-z0-9._/=\ -]*) bad_form "a node label holds a character outside A-Z a-z 0-9 - _ . / =" ;; esac
	case "$NODE_TAINTS" in *[!A-Za-z0-9._/=:\ -]*) bad_form "a node taint holds a character outside A-Z a-z 0-9 - _ . / = :" ;; esac
	for _l in $NODE_LABELS; do check_node_label "$_l"; done
	for _l in $NODE_TAINTS; do check_node_taint "$_l"; done
	case "$ROLE" in
	server | agent) ;;
	'') usage_fail "--role server|agent is required" ;;
	*) usage_fail "--role must be server or agent, not $ROLE" ;;
	esac
	[ "$ROLE" = agent ] && [ -z "$SERVER_URL" ] && usage_fail "an agent needs --server-url"
	[ "$ROLE" = agent ] && [ "$CLUSTER_INIT" = 1 ] && usage_fail "--cluster-init is for servers"
	[ "$CLUSTER_INIT" = 1 ] && [ -n "$SERVER_URL" ] && usage_fail "--cluster-init and --server-url conflict"
	[ "$ROLE" = agent ] && [ -n "$KC_SSM_PARAM" ] && usage_fail "--kubeconfig-ssm-param is for servers"
	# it goes into a sed expression and a URL: an address or host name, nothing else
	case "$KC_SERVER" in *[!A-Za-z0-9.:_[\]-]*) usage_fail "--kubeconfig-server must be an address or host name" ;; esac
	_ag=0
	[ -n "$AIRGAP_BIN_URL$AIRGAP_SUMS_URL" ] && _ag=$((_ag + 1))
	[ "$AIRGAP_STDIN" = 1 ] && _ag=$((_ag + 1))
	[ -n "$AIRGAP_SSM_PARAM" ] && _ag=$((_ag + 1))
	[ "$_ag" -gt 1 ] && usage_fail "give one air-gap source: the URL flags, --airgap-stdin or --airgap-ssm-param"
	if [ -n "$AIRGAP_BIN_URL" ] || [ -n "$AIRGAP_SUMS_URL" ]; then
		[ -n "$AIRGAP_BIN_URL" ] && [ -n "$AIRGAP_SUMS_URL" ] ||
			usage_fail "air-gap needs both --airgap-binary-url and --airgap-checksum-url"
	fi
	case "$MIN_FREE_MB" in '' | *[!0-9]*) usage_fail "--min-free-mb must be a number" ;; esac
	case "$READY_TIMEOUT" in '' | *[!0-9]*) usage_fail "--ready-timeout must be a number" ;; esac
	case "$SERVER_WAIT" in *[!0-9]*) usage_fail "--server-wait must be a number" ;; esac
	case "$PREFIX" in '' | /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
	PREFIX=${PREFIX%/}

	BIN_DIR=$PREFIX${BIN_DIR:-/usr/local/bin}
	DATA_DIR=$PREFIX${DATA_DIR:-/var/lib/rancher/k3s}
	ETC_DIR=$PREFIX/etc/rancher/k3s
	UNIT_DIR=$PREFIX/etc/systemd/system
	PROGRESS_FILE=$PREFIX${PROGRESS_FILE:-/var/lib/goman/install-progress}
	LOG_FILE=$PREFIX${LOG_FILE:-/var/log/goman-k3s-install.log}
	AIRGAP_JSON=false
	if [ "$NO_SERVICES" = 1 ]; then SERVICES_JSON=false; else SERVICES_JSON=true; fi

	# Bookkeeping files first (not a change to the system): the log keeps every run.
	mkdir -p "$(dirname "$LOG_FILE")" "$(dirname "$PROGRESS_FILE")" 2>/dev/null
	LOG_START=0
	if : >>"$LOG_FILE" 2>/dev/null; then
		LOG_FILE_READY=1
		LOG_START=$(wc -l <"$LOG_FILE")
	else
		LOG_FILE=/dev/null
	fi
	: >"$PROGRESS_FILE" 2>/dev/null
	log "start: role $ROLE, prefix '${PREFIX}', services $SERVICES_JSON"

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/goman-k3s.XXXXXX") || fail 30 install InstallFailed "mktemp failed"
	trap 'rm -rf "$TMP"' EXIT
	trap 'exit 130' INT TERM

	precheck
	MS_PRECHECK=$(($(now_ms) - T0))
	progress 25 precheck

	_t=$(now_ms)
	download
	MS_DOWNLOAD=$(($(now_ms) - _t))
	progress 50 download

	_t=$(now_ms)
	install_files
	MS_INSTALL=$(($(now_ms) - _t))
	progress 75 install

	_t=$(now_ms)
	start_and_wait
	MS_START=$(($(now_ms) - _t))
	progress 100 ready
	[ "$ROLE" = server ] && [ -n "$KC_SSM_PARAM" ] && store_kubeconfig
	log "done: $ROLE $VERSION skipped=$SKIPPED upgraded=$UPGRADED"
	result_ok
}

# One line: when the script arrives on stdin (`bash -s --token-stdin`), bash has read up to
# here when main reads the token line that follows the script.
main "$@"; exit $?
