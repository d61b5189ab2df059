#!/usr/bin/env bash
# deps.sh - make sure the Debian packages goman builds, tests and benches with are present
# (clang and libclang-rt-14-dev, the libFuzzer runtime, for `make fuzz`).
# As root: installs the missing ones with apt-get. Otherwise: prints the exact line to run.
set -u
pkgs=(build-essential pkg-config curl libcurl4-openssl-dev libssl-dev libcjson-dev libexpat1-dev
      libcmocka-dev bats bats-assert bats-support jq python3 openssh-server openssh-client
      parallel prometheus valgrind man-db procps
      clang libclang-rt-14-dev clang-format libyaml-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "deps: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ echo "deps: apt-get install failed" >&2; exit 1; }
	else
		echo "deps: missing packages; run:" >&2
		echo "  sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi
if ! "$(dirname "$0")/local-aws.sh" python >/dev/null 2>&1; then
	echo "deps: moto_server (the local AWS endpoint) is not installed; get it with:" >&2
	echo "  pip install 'moto[server]'" >&2
	exit 1
fi
exit 0
