#!/usr/bin/env bats
# Man pages and `make install`: every page renders without a warning, every command has its
# page, goman(7) and libgoman(3) cover what the code has, libgoman(3)'s example compiles
# against an installed tree with pkg-config, and make install puts everything in the
# standard places.
load helpers

setup_file() {
	isolate_home
}

pages() { ls "$ROOT"/man/man*/*.[1357]; }

@test "man: every page renders with groff -ww and man -l without a warning" {
	run -0 pages
	[ "${#lines[@]}" -ge 3 ]
	for f in $(pages); do
		run -0 --separate-stderr groff -man -z -ww -Tutf8 "$f"
		[ -z "$stderr$output" ] || { echo "$f: $stderr$output"; false; }
		# man -l adds the preprocessors and the terminal width (table too wide, etc.)
		run -0 --separate-stderr env MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$f"
		[ -z "$stderr" ] || { echo "$f: $stderr"; false; }
		[[ $output == *NAME* ]] || { echo "$f: no NAME section"; false; }
		run -0 --separate-stderr man -l -Tutf8 "$f"
		[ -z "$stderr" ] || { echo "$f: $stderr"; false; }
	done
}

@test "man: every command has a man1 page, plus goman(7) and libgoman(3)" {
	for c in "$ROOT"/bin/*.c; do
		c=${c##*/}
		[ -f "$ROOT/man/man1/${c%.c}.1" ] || { echo "no man/man1/${c%.c}.1"; false; }
	done
	[ -f "$ROOT/man/man1/goman.1" ]
	[ -f "$ROOT/man/man1/k3s-install.sh.1" ]
	[ -f "$ROOT/man/man7/goman.7" ]
	[ -f "$ROOT/man/man3/libgoman.3" ]
}

@test "man: goman(1) documents every verb and every option the porcelain accepts" {
	page=$(MANWIDTH=200 man -l "$ROOT/man/man1/goman.1" 2>/dev/null)
	for v in "cluster create" "cluster delete" "cluster list" "cluster status" "cluster kubeconfig" \
		"cluster scale" "cluster upgrade" "plan" "metrics" "init" "local-aws"; do
		[[ $page == *"$v"* ]] || { echo "goman(1) lacks $v"; false; }
	done
	# every --option in the porcelain's case labels
	for o in $(grep -oE '^\s+(-[a-z] \| )?--[a-z][a-z0-9-]*\)' "$ROOT/scripts/goman" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		[ "$o" = --help ] && continue
		[[ $page == *"$o"* ]] || { echo "goman(1) lacks $o"; false; }
	done
}

@test "man: goman(7) has the schemas, every exit code and every GOMAN_ variable the code reads" {
	page=$(MANWIDTH=200 man -l "$ROOT/man/man7/goman.7" 2>/dev/null)
	for s in "Node record" "Error record" "Event lines" '"event":"api_call"' '"event":"retry"' \
		'"event":"breaker"' '"event":"idempotency"' '"event":"cluster"' '"provision":{' '"install":{' \
		'"batch":{' '"response":{'; do
		[[ $page == *"$s"* ]] || { echo "goman(7) lacks $s"; false; }
	done
	for c in 64 65 69 75; do
		grep -qE "^ +$c( |$)" <<<"$page" || { echo "goman(7) lacks exit code $c"; false; }
	done
	for v in $(grep -rhoE '"GOMAN_[A-Z_]+"|"AWS_[A-Z_]+"' "$ROOT"/libgoman/*.c "$ROOT"/bin/*.c | tr -d '"' | sort -u); do
		[ "$v" = AWS_ENDPOINT_URL_ ] && continue # the prefix of AWS_ENDPOINT_URL_<SERVICE>
		[[ $page == *"$v"* ]] || { echo "goman(7) lacks $v"; false; }
	done
}

@test "man: libgoman(3) names every public header" {
	page=$(MANWIDTH=200 man -l "$ROOT/man/man3/libgoman.3" 2>/dev/null)
	for h in "$ROOT"/libgoman/include/goman/*.h; do
		h=goman/${h##*/}
		[[ $page == *"$h"* ]] || { echo "libgoman(3) lacks $h"; false; }
	done
}

@test "make install: binaries, porcelain, lib, headers, goman.pc, man pages and completions in place" {
	dest=$BATS_FILE_TMPDIR/prefix
	run -0 make -C "$ROOT" --no-print-directory install BUILD="$GOMAN_BUILD" PREFIX="$dest" DESTDIR=
	for c in "$ROOT"/bin/*.c; do
		c=${c##*/}
		[ -x "$dest/bin/${c%.c}" ] || { echo "no bin/${c%.c}"; false; }
	done
	[ -x "$dest/bin/goman" ]
	for s in goman-lib.sh local-aws.sh k3s-install.sh; do [ -f "$dest/libexec/goman/$s" ]; done
	[ -f "$dest/lib/libgoman.a" ]
	[ -f "$dest/lib/libgoman.so.0" ]
	[ "$(readlink "$dest/lib/libgoman.so")" = libgoman.so.0 ]
	for h in "$ROOT"/libgoman/include/goman/*.h; do [ -f "$dest/include/goman/${h##*/}" ]; done
	[ -f "$dest/lib/pkgconfig/goman.pc" ]
	for f in "$ROOT"/man/man*/*.[1357]; do
		s=${f##*.}
		[ -f "$dest/share/man/man$s/${f##*/}" ] || { echo "no share/man/man$s/${f##*/}"; false; }
	done
	for c in goman "$ROOT"/bin/*.c; do
		c=${c##*/}
		c=${c%.c}
		[ -f "$dest/share/bash-completion/completions/$c" ] || { echo "no completion for $c"; false; }
		run -0 bash --norc --noprofile -c ". '$dest/share/bash-completion/completions/$c'; complete -p '$c'"
	done
	# man finds the installed pages through MANPATH
	run -0 env MANPATH="$dest/share/man" MANWIDTH=80 man -w goman
	assert_output "$dest/share/man/man1/goman.1"
	run -0 env MANPATH="$dest/share/man" man -w 7 goman
	run -0 env MANPATH="$dest/share/man" man -w 3 libgoman
}

@test "make install: the installed goman runs from its prefix, with its own plumbing" {
	dest=$BATS_FILE_TMPDIR/prefix
	[ -x "$dest/bin/goman" ] || skip "needs the previous test's install"
	run -0 env -u GOMAN_BUILD PATH=/usr/bin:/bin "$dest/bin/goman" --version
	assert_output "goman $(cat "$ROOT/VERSION")"
	run -0 env -u GOMAN_BUILD PATH=/usr/bin:/bin "$dest/bin/goman" plan --nodes 10 --json
	[ "$(jq -r .profile <<<"$output")" = staging ]
	# goman metrics finds goman-metrics beside it, not in the source tree
	run -0 env -u GOMAN_BUILD PATH=/usr/bin:/bin bash -c \
		"echo '{\"cluster\":\"x\",\"name\":\"x-server-0\",\"ok\":true}' | '$dest/bin/goman' metrics --format json"
	[ "$(jq -r '.clusters[0].cluster' <<<"$output")" = x ]
}

@test "make install: the installed goman-install finds the installed k3s-install.sh" {
	dest=$BATS_FILE_TMPDIR/prefix
	[ -x "$dest/bin/goman-install" ] || skip "needs the install test"
	# empty input: nothing is installed and nothing leaves the host; only the lookup runs
	echo not-a-real-token >"$BATS_TEST_TMPDIR/token" && chmod 600 "$BATS_TEST_TMPDIR/token"
	run -0 --separate-stderr env -u GOMAN_INSTALL_SCRIPT "$dest/bin/goman-install" --via local \
		--token-file "$BATS_TEST_TMPDIR/token" </dev/null
	[[ $stderr != *"not found"* ]]
}

@test "make install: goman.pc names the install prefix, the version, and -lm for static links" {
	dest=$BATS_FILE_TMPDIR/prefix
	[ -f "$dest/lib/pkgconfig/goman.pc" ] || skip "needs the install test"
	export PKG_CONFIG_PATH=$dest/lib/pkgconfig
	run -0 pkg-config --modversion goman
	assert_output "$(cat "$ROOT/VERSION")"
	run -0 pkg-config --variable=prefix goman
	assert_output "$dest"
	# libgoman.a needs libm beside the Requires.private packages (retry.c uses cbrt)
	run -0 pkg-config --static --libs goman
	[[ " $output " == *" -lm "* ]] || { echo "goman.pc: no -lm for static linking: $output"; false; }
}

@test "make install: libgoman(3)'s example builds against the installed tree and fails cleanly" {
	dest=$BATS_FILE_TMPDIR/prefix
	[ -f "$dest/lib/pkgconfig/goman.pc" ] || skip "needs the install test"
	export PKG_CONFIG_PATH=$dest/lib/pkgconfig
	# whatever prefix the .pc was generated with, point it at this install
	pc() { pkg-config --define-variable=prefix="$dest" "$@"; }
	# the EXAMPLE section, un-escaped from roff, is the program
	sed -n '/^\.SH EXAMPLE/,/^\.SH/p' "$ROOT/man/man3/libgoman.3" | sed -n '/^\.EX/,/^\.EE/p' |
		sed -n '1,/^\.EE/p' | grep -v '^\.E[XE]' | sed 's/\\e/\\/g; s/\\-/-/g' >"$BATS_TEST_TMPDIR/who.c"
	grep -q 'int main' "$BATS_TEST_TMPDIR/who.c"
	run -0 cc -std=c11 -Wall -Wextra -Werror $(pc --cflags goman) "$BATS_TEST_TMPDIR/who.c" \
		$(pc --libs goman) -o "$BATS_TEST_TMPDIR/who"
	run -0 cc -std=c11 -Wall -Wextra -Werror $(pc --cflags goman) "$BATS_TEST_TMPDIR/who.c" \
		"$dest/lib/libgoman.a" $(pkg-config --libs libcurl libcjson expat openssl) -lm -o "$BATS_TEST_TMPDIR/who-static"
	# its error path: nothing listens on the loopback port, so no answer -> a goman exit code
	for w in who who-static; do
		run --separate-stderr env LD_LIBRARY_PATH="$dest/lib" AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
			AWS_SECRET_ACCESS_KEY=not-a-secret AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9 \
			GOMAN_RETRY_POLICY=high-frequency GOMAN_STATE_FILE="$BATS_TEST_TMPDIR/state" \
			"$BATS_TEST_TMPDIR/$w"
		[[ $status == 69 || $status == 75 ]] || { echo "$w exited $status: $stderr"; false; }
		[[ $stderr == *"who: "* ]]
	done
	run -0 env LD_LIBRARY_PATH="$dest/lib" ldd "$BATS_TEST_TMPDIR/who"
	assert_output --partial "libgoman.so.0 => $dest/lib/libgoman.so.0"
}
