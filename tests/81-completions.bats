#!/usr/bin/env bats
# bash completion: completions/goman (and its goman-* links) load in a plain bash, register
# every command, and complete subcommands, flags, --env values and cluster names from the
# state files. Each case runs the completion function the way bash does: COMP_WORDS and
# COMP_CWORD set, COMPREPLY read back.
load helpers

setup_file() {
	isolate_home
	mkdir -p "$XDG_STATE_HOME/goman"
	for n in alpha beta; do printf '{"cluster":"%s","name":"%s-server-0"}\n' "$n" "$n" >"$XDG_STATE_HOME/goman/$n.jsonl"; done
	# not clusters: a deleted cluster's history, a bad name, something else
	: >"$XDG_STATE_HOME/goman/gamma.deleted.jsonl"
	: >"$XDG_STATE_HOME/goman/Bad_Name.jsonl"
	: >"$XDG_STATE_HOME/goman/notes.txt"
}

# comp WORDS...: load the completion in a fresh bash, complete the last word, print COMPREPLY
# sorted, one per line
comp() {
	bash --norc --noprofile -c '
		. "$ROOT/completions/goman" || exit 9
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		f=$(complete -p "$1" | sed -nE "s/.* -F ([^ ]+) .*/\1/p")
		[ -n "$f" ] || exit 8
		"$f" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort -u' comp "$@"
}

@test "completions: goman and every goman-* command are registered by complete -p" {
	run -0 bash --norc --noprofile -c '. "$ROOT/completions/goman"; complete -p'
	assert_line "complete -F _goman goman"
	for c in "$ROOT"/bin/*.c; do
		c=${c##*/}
		assert_line "complete -F _goman_plumbing ${c%.c}"
	done
}

@test "completions: bash-completion's loader finds a file named after each command" {
	for c in goman "$ROOT"/bin/*.c; do
		c=${c##*/}
		c=${c%.c}
		[ -f "$ROOT/completions/$c" ]
		run -0 bash --norc --noprofile -c ". '$ROOT/completions/$c'; complete -p '$c'"
	done
}

@test "completions: goman completes its commands and the cluster verbs" {
	run -0 comp goman ""
	assert_line cluster
	assert_line plan
	assert_line metrics
	assert_line init
	assert_line local-aws
	run -0 comp goman cl
	assert_output cluster
	run -0 comp goman cluster ""
	for v in create delete list status kubeconfig scale upgrade; do assert_line "$v"; done
	run -0 comp goman cluster s
	assert_output $'scale\nstatus'
	run -0 comp goman local-aws ""
	assert_output $'--help\nenv\nstart\nstop'
}

@test "completions: goman cluster flags per verb, and values for --env and --via" {
	run -0 comp goman cluster create demo --
	for f in --servers --agents --type --env --via --k3s-version --max-nodes --force --json \
		--server-type --agent-type --ami --subnet --key-name --tag --ssh-cidr --api-cidr --dry-run; do
		assert_line -- "$f"
	done
	refute_line -- --yes
	run -0 comp goman cluster delete demo --
	assert_output $'--force\n--help\n--json\n--timeout\n--yes'
	run -0 comp goman cluster create demo --env ""
	assert_output $'development\nhigh-volume\nproduction\nstaging'
	run -0 comp goman cluster create demo --env pro
	assert_output production
	run -0 comp goman cluster scale demo --via ""
	assert_output $'local\nssh\nssm'
	run -0 comp goman cluster scale demo --y
	assert_output --yes
	run -0 comp goman plan --
	assert_output $'--help\n--json\n--nodes'
}

@test "completions: cluster names come from the state files" {
	run -0 comp goman cluster delete ""
	assert_output $'alpha\nbeta'
	run -0 comp goman cluster status a
	assert_output alpha
	run -0 comp goman cluster kubeconfig ""
	assert_output $'alpha\nbeta'
	run -0 comp goman metrics ""
	assert_output $'alpha\nbeta'
	run -0 comp goman-batch terminate --cluster ""
	assert_output $'alpha\nbeta'
	# a new cluster's name is the user's to type
	run -0 comp goman cluster create ""
	assert_output ""
}

@test "completions: plumbing flags come from each command's --help" {
	for c in "$ROOT"/bin/*.c; do
		c=${c##*/}
		c=${c%.c}
		run -0 comp "$c" --
		assert_line -- --help
		# every long option the command's own --help names is offered
		for f in $("$c" --help | grep -oE '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u); do
			assert_line -- "$f"
		done
	done
	run -0 comp goman-provision --ser
	assert_output $'--server-type\n--servers'
	run -0 comp goman-metrics --format ""
	assert_output $'json\nprom\ntable'
}

@test "completions: goman-batch verbs and wait states; goman-fanout completes a command after --" {
	run -0 comp goman-batch ""
	assert_output $'clusters\ndescribe\nreboot\nstart\nstop\ntag\nterminate\nwait'
	run -0 comp goman-batch wait ""
	assert_output $'running\nstatus-ok\nstopped\nterminated'
	run -0 comp goman-fanout -j 4 -- goman-ap
	assert_output goman-api
	run -0 comp goman-fanout -j ""
	assert_line auto
}

@test "completions: the file is clean under shellcheck" {
	command -v shellcheck >/dev/null || skip "shellcheck not installed"
	run -0 shellcheck -s bash -e SC2207,SC2086,SC2034 "$ROOT/completions/goman"
}
