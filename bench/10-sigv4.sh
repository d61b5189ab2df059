#!/usr/bin/env bash
# bench/10-sigv4.sh - SigV4 signing throughput: goman_sigv4_sign() against botocore's
# SigV4Auth.add_auth and against a raw OpenSSL HMAC/SHA-256 chain, all in this one run, on
# the same EC2 POST (both peers must produce the same signature first). CPU time, best of
# two rounds per side. See bench/sigv4_bench.c for exactly what each raw chain computes.
set -eu
cd "$(dirname "$0")/.."
B=${GOMAN_BUILD:-build}
SECS=${SIGV4_BENCH_SECS:-1}
bin="$B/bench/sigv4_bench"
[ -x "$bin" ] || { echo "sigv4: $bin not built (make benches)" >&2; exit 1; }
py=$(scripts/local-aws.sh python 2>/dev/null || true)
[ -n "$py" ] || py=python3
"$py" -c 'import botocore' 2>/dev/null || { echo "sigv4: no botocore for $py" >&2; exit 1; }

c_out=$("$bin" "$SECS")
p_out=$("$py" bench/sigv4_botocore.py "$SECS")
c_sig=$(awk '$1=="SIG"{print $2}' <<<"$c_out")
p_sig=$(awk '$1=="SIG"{print $2}' <<<"$p_out")
if [ -z "$c_sig" ] || [ "$c_sig" != "$p_sig" ]; then
	echo "sigv4: signatures differ: goman=$c_sig botocore=$p_sig" >&2
	exit 1
fi
echo "same request, same signature: $c_sig"
printf '%s\n%s\n' "$c_out" "$p_out" | awk '
$1 == "RESULT" && $2 != "warmup" { if (!($2 in best) || $3 < best[$2]) best[$2] = $3 }
function row(n, d) { printf "  %-16s %9.1f ns/op %11.0f signs/s  %s\n", n, best[n], 1e9 / best[n], d }
function verdict(ok) { return ok ? "(target met)" : "(TARGET MISSED)" }
END {
	row("goman_sign", "goman_sigv4_sign, key cache warm")
	row("goman_sign_cold", "goman_sigv4_sign, key cache emptied every call")
	row("raw_cached", "SHA256()x2 + HMAC() with kSigning known")
	row("raw_full", "SHA256()x2 + HMAC()x5 (key derived)")
	row("raw_cached_ll", "low-level SHA256_* x2 + hand HMAC, kSigning known")
	row("botocore", "botocore SigV4Auth.add_auth")
	r1 = best["botocore"] / best["goman_sign"]
	r2 = best["goman_sign"] / best["raw_cached"]
	r3 = best["goman_sign_cold"] / best["raw_full"]
	r4 = best["goman_sign"] / best["raw_cached_ll"]
	printf "goman vs botocore:          %6.1fx faster   %s target >= 20x\n", r1, verdict(r1 >= 20)
	printf "goman vs raw chain (cached): %5.2fx its time %s target <= 1.5x\n", r2, verdict(r2 <= 1.5)
	printf "goman vs raw chain (full):   %5.2fx its time %s target <= 1.5x\n", r3, verdict(r3 <= 1.5)
	printf "goman vs low-level floor:    %5.2fx its time (informational)\n", r4
}'
