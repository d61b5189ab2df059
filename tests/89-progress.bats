#!/usr/bin/env bats
# The porcelain's live progress view on stderr, per group, against moto with signature
# checking on: plain lines when stderr is not a terminal, a block redrawn in place on a
# terminal (bold unless NO_COLOR), nothing with GOMAN_PROGRESS=0.
load helpers

FAST=(-- --poll-interval 200ms --poll-floor 100ms --verify-wait 1s)

setup_file() {
	isolate_home
	export GOMAN_POLL_MS=200
	local out
	out=$(HOME=$REAL_HOME goman local-aws start) || return 1
	eval "$out"
	printf '%s\n' "$out" >"$BATS_FILE_TMPDIR/env"
	goman init >/dev/null 2>&1 || return 1
}

setup() {
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/env"
}

teardown_file() {
	goman local-aws stop >/dev/null 2>&1 || true
}

# a terminal for the command (script(1)); stderr and stdout both land in the output
on_tty() { script -qec "$*" /dev/null </dev/null | tr -d '\r'; }

@test "progress: not a terminal, plain lines per group when a count changes, the last one complete" {
	run -0 --separate-stderr goman cluster create prog --servers 1 --agents 2 "${FAST[@]}"
	# one line per group and a total line, prefixed like every porcelain message
	[[ $stderr == *"[GOMAN] prog server: launched "*"/1, running "* ]]
	[[ $stderr == *"[GOMAN] prog agent: launched "*"/2, running "* ]]
	# the final frame: every node ready (SSM against moto installs at once, unverified)
	[[ $stderr == *"[GOMAN] prog server: launched 1/1, running 1, installing 0, installed 1"* ]]
	[[ $stderr == *"[GOMAN] prog agent: launched 2/2, running 2, installing 0, installed 2"* ]]
	[[ $stderr == *"[GOMAN] prog total: 3/3 done, not verified elapsed "* ]]
	# no escape sequence reaches a log
	[[ $stderr != *$'\e['* ]]
	# the same frame is not repeated: a count changed between any two
	[ "$(grep -c 'prog total: 3/3 done, not verified' <<<"$stderr")" = 1 ]
	# servers first, as wanted
	[ "$(grep -m1 -o 'prog [a-z]*: launched' <<<"$stderr")" = "prog server: launched" ]
}

@test "progress: on a terminal the block is redrawn in place, bold unless NO_COLOR" {
	# a terminal that can show bold (CI runs with no TERM at all, which is treated as dumb)
	run -0 on_tty TERM=xterm goman cluster create prog --servers 1 --agents 2 "${FAST[@]}"
	assert_output --partial $'\e[1mserver: launched 1/1'
	assert_output --partial $'\e[K'
	run -0 on_tty NO_COLOR=1 TERM=xterm goman cluster create prog --servers 1 --agents 2 "${FAST[@]}"
	assert_output --partial "agent: launched 2/2, running 2, installing 0, installed 2"
	[[ $output != *$'\e[1m'* ]]
}

@test "progress: a dumb terminal gets the redraw without bold" {
	run -0 on_tty TERM=dumb goman cluster create prog --servers 1 --agents 2 "${FAST[@]}"
	assert_output --partial $'\e[Kserver: launched 1/1'
	[[ $output != *$'\e[1m'* ]]
}

@test "progress: GOMAN_PROGRESS=0 turns the view off" {
	GOMAN_PROGRESS=0 run -0 --separate-stderr goman cluster create prog --servers 1 --agents 2 "${FAST[@]}"
	[[ $stderr != *"prog total:"* ]]
}
