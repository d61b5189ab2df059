#!/usr/bin/env bats
# I/O faults: the breaker state file and the idempotency log under a full or failing disk,
# against moto (signature checking on). Faults come from a real full tmpfs where mounting
# one is permitted, and from the LD_PRELOAD shim tests/fixtures/iofault.c (built as
# $GOMAN_BUILD/tests/iofault.so by `make units`) that fails chosen writes, syncs, renames
# and allocations. What must hold: no command crashes or hangs; the log stays whole lines
# that parse; a begin reported written is in the log, a failed one is reported and leaves
# nothing behind.
load helpers

SHIM="$GOMAN_BUILD/tests/iofault.so"

setup_file() {
	[ -f "$SHIM" ] || {
		echo "build the shim first: make units" >&2
		return 1
	}
	isolate_home
	local_aws_start
	node_profile_create
}

teardown_file() {
	local_aws_stop
}

teardown() {
	if [ -n "${MNT:-}" ]; then
		umount "$MNT" 2>/dev/null || true
	fi
}

# a command under the shim (IOFAULT_* from the caller's env), never left hanging
faulty() { # [NAME=VALUE...] command...
	# ASan insists on coming first; the shim is not sanitized, so let it through
	env LD_PRELOAD="$SHIM" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		IOFAULT_LOG="$BATS_TEST_TMPDIR/faults" timeout 60 env "$@"
}

faults_injected() {
	[ -f "$BATS_TEST_TMPDIR/faults" ] && wc -l <"$BATS_TEST_TMPDIR/faults" || echo 0
}

STS='{"service":"sts","action":"GetCallerIdentity"}'
LOG() { echo "$XDG_STATE_HOME/goman/idempotency/records.jsonl"; }

# every line of the log parses (what jq needs of it) and it ends with a newline
log_is_whole_lines() {
	local log
	log=$(LOG)
	if [ -s "$log" ] && [ "$(tail -c1 "$log" | od -An -c | tr -d ' ')" != '\n' ]; then
		echo "the log does not end with a newline" >&2
		return 1
	fi
	jq -c . "$log" >/dev/null
}

record_of() { # cluster
	goman-idem list --all 2>/dev/null | jq -c --arg c "$1" 'select(.identity.cluster == $c)'
}

launches() { # events file
	jq -c 'select(.event == "api_call" and .action == "RunInstances")' "$1" | wc -l
}

# mounts a tmpfs of size $1 at $MNT, or skips when this machine does not let us
mount_tmpfs() {
	MNT="$BATS_TEST_TMPDIR/mnt"
	mkdir -p "$MNT"
	mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$MNT" 2>/dev/null || {
		MNT=
		skip "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
	}
}

@test "io faults: goman-api with its breaker file on a full tmpfs warns and makes its call" {
	mount_tmpfs 64k
	mkdir -m 700 "$MNT/goman"
	# an earlier goman grew its file sparse: the holes cannot be filled on a full disk
	truncate -s 36864 "$MNT/goman/old"
	chmod 600 "$MNT/goman/old"
	dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null || true
	for f in breakers old; do
		run -0 --separate-stderr env GOMAN_STATE_FILE="$MNT/goman/$f" timeout 60 goman-api <<<"$STS"
		assert_equal "$(jq -r .response.ok <<<"$output")" true
		assert_regex "$stderr" "breakers are per process: state file '$MNT/goman/$f': cannot make it whole: No space left on device"
	done
}

@test "io faults: an allocation refused by the shim leaves goman-api on breakers of its own" {
	run -0 --separate-stderr faulty IOFAULT_CALL=posix_fallocate IOFAULT_PATH_SUBSTR=shared-state \
		IOFAULT_COUNT=0 IOFAULT_ERRNO=EIO goman-api <<<"$STS"
	assert_equal "$(jq -r .response.ok <<<"$output")" true
	assert_regex "$stderr" "breakers are per process: .*cannot make it whole: Input/output error"
	[ "$(faults_injected)" -ge 1 ]
}

@test "io faults: the breaker file truncated under a running goman-api does not kill it" {
	export GOMAN_STATE_FILE="$BATS_TEST_TMPDIR/state/breakers"
	mkfifo "$BATS_TEST_TMPDIR/in"
	timeout 60 goman-api <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	exec 4>"$BATS_TEST_TMPDIR/in"
	echo "$STS" >&4
	for _ in $(seq 1 200); do
		[ -s "$BATS_TEST_TMPDIR/out" ] && break
		sleep 0.05
	done
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out")" 1
	# it has the file mapped: cut it to nothing, then give it more work
	truncate -s 0 "$GOMAN_STATE_FILE"
	echo "$STS" >&4
	echo "$STS" >&4
	exec 4>&-
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	assert_equal "$(jq -r .response.ok "$BATS_TEST_TMPDIR/out" | sort | uniq -c | tr -s ' ')" " 3 true"
	grep -q "breakers are per process from now on: state file '$GOMAN_STATE_FILE' was cut short" \
		"$BATS_TEST_TMPDIR/err"
	# and the next process makes the file whole again and shares it
	run -0 --separate-stderr goman-api <<<"$STS"
	refute_output --partial "per process"
	[ "$(stat -c %s "$GOMAN_STATE_FILE")" -ge 36864 ]
}

@test "io faults: a launch whose begin cannot be written is reported failed and launches nothing" {
	for how in "ENOSPC 0" "EIO 0" "ENOSPC 1"; do
		set -- $how
		c=$(tr A-Z a-z <<<"iof-begin-$1-$2")
		export GOMAN_EVENTS="$BATS_TEST_TMPDIR/$c.events"
		run --separate-stderr faulty IOFAULT_CALL=write,writev IOFAULT_PATH_SUBSTR=records.jsonl \
			IOFAULT_ERRNO=$1 IOFAULT_SHORT=$2 goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
		[ "$status" -ne 0 ]
		[ "$status" -lt 124 ]
		assert_equal "$(jq -r .ok <<<"$output")" false
		assert_equal "$(jq -r .provision.error.code <<<"$output")" IdempotencyStore
		[ "$(faults_injected)" -ge 1 ]
		assert_equal "$(launches "$GOMAN_EVENTS")" 0
		log_is_whole_lines
		assert_equal "$(record_of "$c")" ""
		rm -f "$BATS_TEST_TMPDIR/faults"
		# the disk has room again: the launch goes through, once
		run -0 --separate-stderr timeout 60 goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
		assert_equal "$(launches "$GOMAN_EVENTS")" 1
		assert_equal "$(record_of "$c" | jq -r .status)" COMPLETED
		log_is_whole_lines
	done
}

@test "io faults: a begin whose sync fails is reported failed and leaves no record to trip over" {
	c=iof-sync
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/$c.events"
	run --separate-stderr faulty IOFAULT_CALL=fdatasync IOFAULT_PATH_SUBSTR=records.jsonl \
		IOFAULT_ERRNO=EIO goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
	[ "$status" -ne 0 ]
	[ "$status" -lt 124 ]
	assert_equal "$(jq -r .provision.error.code <<<"$output")" IdempotencyStore
	assert_regex "$(jq -r .provision.error.message <<<"$output")" "cannot sync"
	assert_equal "$(faults_injected)" 1
	assert_equal "$(launches "$GOMAN_EVENTS")" 0
	assert_equal "$(record_of "$c")" ""
	log_is_whole_lines
}

@test "io faults: a launch whose completion cannot be written keeps its begin, and the re-run converges" {
	c=iof-complete
	export GOMAN_EVENTS="$BATS_TEST_TMPDIR/$c.events"
	# the second append to the log is the completion
	run --separate-stderr faulty IOFAULT_CALL=write,writev IOFAULT_PATH_SUBSTR=records.jsonl \
		IOFAULT_NTH=2 IOFAULT_SHORT=1 goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
	[ "$status" -lt 124 ]
	assert_equal "$(faults_injected)" 1
	assert_equal "$(launches "$GOMAN_EVENTS")" 1
	ids=$(jq -c '[.provision.nodes[]?.instance_id] | sort' <<<"$output")
	# the begin was reported written: it is there, in flight, its owner gone
	assert_equal "$(record_of "$c" | jq -r .status)" INPROGRESS
	log_is_whole_lines
	run -0 --separate-stderr timeout 60 goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
	assert_equal "$(launches "$GOMAN_EVENTS")" 1
	assert_equal "$(jq -c '[.provision.nodes[]?.instance_id] | sort' <<<"$output")" "$ids"
	log_is_whole_lines
}

@test "io faults: goman-idem forget and cleanup on a failing disk report it and lose no record" {
	c=iof-idem
	run -0 --separate-stderr timeout 60 goman-provision --cluster "$c" --servers 1 --poll-interval 100ms
	key=$(record_of "$c" | jq -r .id)
	before=$(goman-idem list --all | jq -S -c . | sort)
	run --separate-stderr faulty IOFAULT_CALL=write,writev IOFAULT_PATH_SUBSTR=records.jsonl \
		IOFAULT_SHORT=1 goman-idem forget "$key"
	[ "$status" -ne 0 ]
	[ "$status" -lt 124 ]
	assert_equal "$(jq -r .error.code <<<"$output")" IdempotencyStore
	assert_equal "$(goman-idem list --all | jq -S -c . | sort)" "$before"
	log_is_whole_lines
	# cleanup rewrites the log through a temp file: a failed write, sync or rename of it
	# leaves the old log in place, and no temp file behind
	for call in write fsync rename; do
		rm -f "$BATS_TEST_TMPDIR/faults"
		run --separate-stderr faulty IOFAULT_CALL=$call IOFAULT_PATH_SUBSTR=.records.tmp \
			IOFAULT_ERRNO=EIO goman-idem cleanup
		[ "$status" -ne 0 ]
		[ "$status" -lt 124 ]
		assert_equal "$(faults_injected)" 1
		assert_equal "$(goman-idem list --all | jq -S -c . | sort)" "$before"
		[ ! -e "$(dirname "$(LOG)")/.records.tmp" ]
		log_is_whole_lines
	done
}

@test "io faults: goman-api whose stdout fails says so and exits non-zero, without crashing or hanging" {
	for e in EIO ENOSPC; do
		rm -f "$BATS_TEST_TMPDIR/faults"
		# the pipe is the command's stdout: every write to it fails
		printf '%s\n%s\n' "$STS" "$STS" |
			faulty IOFAULT_CALL=write,writev IOFAULT_PATH_SUBSTR=pipe: IOFAULT_ERRNO=$e \
				IOFAULT_COUNT=0 goman-api 2>"$BATS_TEST_TMPDIR/err" | cat >"$BATS_TEST_TMPDIR/out"
		rc=${PIPESTATUS[1]}
		[ "$rc" -ne 0 ]
		[ "$rc" -lt 124 ]
		assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" ""
		[ "$(faults_injected)" -ge 1 ]
		stderr=$(cat "$BATS_TEST_TMPDIR/err")
		assert_regex "$stderr" "cannot write output"
	done
}

@test "local-aws.sh: the env file with the endpoint's keys is 0600 from its creation, whatever the umask" {
	# a chmod that notes the mode each file had before it, to catch a file born readable
	mkdir "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/chmod" <<SH
#!/bin/sh
for a; do [ -e "\$a" ] && stat -c '%a %n' "\$a" >>"$BATS_TEST_TMPDIR/modes"; done
exec /bin/chmod "\$@"
SH
	/bin/chmod 755 "$BATS_TEST_TMPDIR/bin/chmod"
	d="$BATS_TEST_TMPDIR/aws"
	run -0 --separate-stderr bash -c 'umask 000; HOME=$REAL_HOME PATH="$1:$PATH" \
		"$ROOT/scripts/local-aws.sh" start "$2"' _ "$BATS_TEST_TMPDIR/bin" "$d"
	"$ROOT/scripts/local-aws.sh" stop "$d"
	assert_output --partial "export AWS_SECRET_ACCESS_KEY="
	assert_equal "$(stat -c %a "$d/env")" 600
	assert_equal "$(stat -c %a "$d")" 700
	assert_equal "$(stat -c %a "$d/moto.log")" 600
	if [ -f "$BATS_TEST_TMPDIR/modes" ]; then
		run grep -v '^600 ' "$BATS_TEST_TMPDIR/modes"
		assert_output ""
	fi
}
