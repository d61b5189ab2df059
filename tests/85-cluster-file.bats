#!/usr/bin/env bats
# goman-spec and the cluster file (goman-cluster(5)): the example files check and give the
# node specs goman-provision reads; bad files exit 65 naming file, line and key; a missing
# file exits 66, usage errors 64; the man page's example is a good file; the specs go
# through goman-provision --dry-run against moto unchanged.
load helpers

setup_file() {
	isolate_home
	local_aws_start
	node_profile_create
}

teardown_file() { local_aws_stop; }

bad() { # bad NAME.yaml TEXT: writes the file, prints its path
	printf '%s\n' "$2" >"$BATS_TEST_TMPDIR/$1"
	echo "$BATS_TEST_TMPDIR/$1"
}

@test "goman-spec: --help and --version" {
	run -0 goman-spec --help
	assert_output --partial "--check"
	run -0 goman-spec --version
	assert_output --regexp '^goman-spec [0-9]'
}

@test "goman-spec: the example files check, in YAML and JSON alike" {
	run -0 --separate-stderr goman-spec -f "$ROOT/examples/cluster.yaml" --check
	assert_output ""
	assert_equal "$stderr" ""
	run -0 goman-spec -f "$ROOT/examples/cluster.json" --check
	assert_output ""
	# the JSON example is the YAML one normalised
	assert_equal "$(goman-spec -f "$ROOT/examples/cluster.yaml" --json | jq -S .)" \
		"$(jq -S . "$ROOT/examples/cluster.json")"
}

@test "goman-spec: one node spec per node, servers then agents, indexed per role, named as goman-provision names them" {
	run -0 --separate-stderr goman-spec -f "$ROOT/examples/cluster.yaml"
	assert_equal "${#lines[@]}" 7
	assert_equal "$(jq -r '"\(.name) \(.role) \(.index) \(.group) \(.instance_type)"' <<<"$output")" \
"web-server-0 server 0 control t3.medium
web-server-1 server 1 control t3.medium
web-server-2 server 2 control t3.medium
web-agent-0 agent 0 workers t3.large
web-agent-1 agent 1 workers t3.large
web-agent-2 agent 2 workers t3.large
web-agent-3 agent 3 workers t3.large"
	# every spec names the file's subnets (goman-provision places over them by AZ) and the transport
	assert_equal "$(jq -c '[.subnets, .via]' <<<"$output" | sort -u)" '[["subnet-0a1b2c3d4e5f60718","subnet-0b1c2d3e4f5a60719"],"ssm"]' 
	# the group's fields come along
	w=${lines[3]}
	assert_equal "$(jq -c '[.cluster, .types, .spot, .labels, .taints, .tags, .volume_gb, .region]' <<<"$w")" \
		'["web",["t3.large","t3a.large"],true,{"tier":"web"},["dedicated=web:NoSchedule"],{"team":"a"},40,"us-east-1"]'
	# stdin reads like a file
	run -0 bash -c "goman-spec <'$ROOT/examples/cluster.json' | wc -l"
	assert_output 7
}

@test "goman-spec: --json is one normalised object that reads back to itself" {
	run -0 goman-spec -f "$ROOT/examples/cluster.yaml" --json
	assert_equal "${#lines[@]}" 1
	assert_equal "$(jq -r '.groups[0].type | type' <<<"$output")" array
	assert_equal "$(jq -r '.groups[0].spot' <<<"$output")" false
	again=$(goman-spec --json <<<"$output")
	assert_equal "$again" "$output"
}

@test "goman-spec: bad files exit 65 and name file, line and key; nothing on stdout" {
	f=$(bad typo.yaml $'name: web\ngroups:\n  - {name: a, role: server, count: 1}\n  - name: b\n    role: agent\n    count: 2\n    sopt: true')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_output ""
	assert_equal "$stderr" "goman-spec: $f:7: groups[1].sopt: unknown key (known here: name role count type ami spot labels taints tags volume_gb)"
	f=$(bad yes.yaml $'name: web\ngroups: [{name: a, role: server, count: 1, spot: yes}]')
	run -65 --separate-stderr goman-spec -f "$f" --check
	assert_equal "$stderr" "goman-spec: $f:2: groups[0].spot: must be true or false, not 'yes'"
	f=$(bad alias.yaml $'name: &n web\ngroups: [{name: *n, role: server, count: 1}]')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_equal "$stderr" "goman-spec: $f:1: anchors (&name) are not allowed"
	f=$(bad region.yaml $'name: web\nregion: eu west\ngroups: [{name: a, role: server, count: 1}]')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_equal "$stderr" "goman-spec: $f:2: region: 'eu west' is not a region name like us-east-1"
	f=$(bad noserver.yaml $'name: web\ngroups: [{name: a, role: agent, count: 3}]')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_equal "$stderr" "goman-spec: $f:2: groups: the groups must have at least one server in total"
	f=$(bad tag.json '{"name":"web","groups":[{"name":"a","role":"server","count":1,"tags":{"goman:group":"x"}}]}')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_equal "$stderr" "goman-spec: $f: groups[0].tags[\"goman:group\"]: key must not start with goman: (goman's own tags)"
	f=$(bad syntax.json $'{"name": "web",\n "groups": [}')
	run -65 --separate-stderr goman-spec -f "$f"
	assert_equal "$stderr" "goman-spec: $f:2: JSON syntax error"
}

@test "goman-spec: a file over GOMAN_CLUSTER_FILE_MAX_BYTES is refused (65), a missing one is 66" {
	run -65 --separate-stderr env GOMAN_CLUSTER_FILE_MAX_BYTES=100 goman-spec -f "$ROOT/examples/cluster.yaml"
	assert_output ""
	assert_regex "$stderr" 'larger than 100 bytes'
	run -65 --separate-stderr env GOMAN_CLUSTER_FILE_MAX_GROUPS=1 goman-spec -f "$ROOT/examples/cluster.yaml"
	assert_regex "$stderr" 'groups: must hold 1 to 1 groups, not 2'
	run -66 --separate-stderr goman-spec -f "$BATS_TEST_TMPDIR/nosuch.yaml"
	assert_equal "$stderr" "goman-spec: $BATS_TEST_TMPDIR/nosuch.yaml: No such file or directory"
}

@test "goman-spec: usage errors exit 64" {
	run -64 goman-spec --bogus
	run -64 goman-spec -f "$ROOT/examples/cluster.yaml" extra
	run -64 goman-spec -f "$ROOT/examples/cluster.yaml" --check --json
	run -64 goman-spec -f "$ROOT/examples/cluster.yaml" --format toml
	run -64 env GOMAN_CLUSTER_FILE_MAX_BYTES=lots goman-spec -f "$ROOT/examples/cluster.yaml"
}

@test "goman-spec: --format overrides the file name" {
	cp "$ROOT/examples/cluster.json" "$BATS_TEST_TMPDIR/c.yaml"
	run -0 goman-spec -f "$BATS_TEST_TMPDIR/c.yaml" --format json --check
	cp "$ROOT/examples/cluster.yaml" "$BATS_TEST_TMPDIR/c.txt"
	run -0 goman-spec -f "$BATS_TEST_TMPDIR/c.txt" --check
	run -65 --separate-stderr goman-spec -f "$BATS_TEST_TMPDIR/c.txt" --format json --check
	assert_regex "$stderr" 'JSON syntax error'
}

@test "goman-spec: the example of goman-cluster(5) is a good file" {
	sed -n '/^\.SH EXAMPLE/,/^\.SH/p' "$ROOT/man/man5/goman-cluster.5" | sed -n '/^\.EX/,/^\.EE/p' |
		grep -v '^\.E[XE]' | sed 's/\\-/-/g' >"$BATS_TEST_TMPDIR/man.yaml"
	grep -q '^groups:' "$BATS_TEST_TMPDIR/man.yaml"
	run -0 --separate-stderr goman-spec -f "$BATS_TEST_TMPDIR/man.yaml"
	assert_equal "${#lines[@]}" 7
}

@test "goman-spec | goman-provision --dry-run: the specs are read as they are, group fields pass through" {
	f=$(bad small.yaml $'name: specs\ngroups:\n  - {name: cp, role: server, count: 1}\n  - {name: w, role: agent, count: 2, type: t3.small, tags: {team: a}, labels: {tier: web}}')
	run -0 --separate-stderr bash -c "goman-spec -f '$f' | goman-provision --dry-run"
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -r '"\(.name) \(.group) \(.instance_type) \(.provision.would_launch) \(.labels.tier // "-")"' <<<"$output" | sort)" \
"specs-agent-0 w t3.small true web
specs-agent-1 w t3.small true web
specs-server-0 cp t3.medium true -"
}
