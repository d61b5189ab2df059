#!/usr/bin/env bash
# bench/15-sign-rss.sh - goman-sign's memory over a long stream: max RSS after 1k, 10k and
# 100k input lines. Flat means the 100k figure is no larger than the 1k one (plus a little
# allocator slack); the target is <= 10 MB. The peer is the same binary on 1k lines, in
# the same run, so the ratio 100k/1k says whether memory grows with the stream.
set -eu
cd "$(dirname "$0")/.."
BIN=${GOMAN_BUILD:-build}/bin/goman-sign
[ -x "$BIN" ] || { echo "goman-sign not built"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_EC2_METADATA_DISABLED=true HOME=$tmp
unset AWS_PROFILE AWS_SESSION_TOKEN
# varied records: header objects and arrays, bodies, presign, explain-sized strings
awk 'BEGIN {
	for (i = 0; i < 100000; i++) {
		if (i % 3 == 0)
			printf "{\"url\":\"https://ec2.us-west-2.amazonaws.com/?Action=DescribeInstances&n=%d\",\"headers\":{\"X-Seq\":\"%d\"},\"time\":\"2015-08-30T12:36:00Z\"}\n", i, i
		else if (i % 3 == 1)
			printf "{\"method\":\"POST\",\"url\":\"https://ssm.eu-west-1.amazonaws.com/\",\"headers\":[[\"X-Amz-Target\",\"AmazonSSM.GetParameter\"],[\"X-Seq\",\"%d\"]],\"body\":\"{\\\"Name\\\":\\\"/p/%d\\\"}\"}\n", i, i
		else
			printf "{\"url\":\"https://bucket.s3.us-east-2.amazonaws.com/key%%20%d\",\"presign\":900}\n", i
	}
}' >"$tmp/100k"
head -n 1000 "$tmp/100k" >"$tmp/1k"
head -n 10000 "$tmp/100k" >"$tmp/10k"

rss_kb() { # file -> max RSS in kB of goman-sign --explain over it
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%M' -o "$tmp/rss" "$BIN" --explain <"$1" >/dev/null
		cat "$tmp/rss"
	else # fall back to VmHWM while it runs
		"$BIN" --explain <"$1" >/dev/null &
		local pid=$! hwm=0 v
		while v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null); do
			[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
			sleep 0.05
		done
		wait "$pid"
		echo "$hwm"
	fi
}
a=$(rss_kb "$tmp/1k"); b=$(rss_kb "$tmp/10k"); c=$(rss_kb "$tmp/100k")
echo "goman-sign --explain max RSS: 1k lines ${a} kB, 10k lines ${b} kB, 100k lines ${c} kB"
awk -v a="$a" -v c="$c" 'BEGIN {
	printf "ratio 100k/1k = %.3f (flat: <= 1.05); 100k within 10 MB: %s\n", c / a, (c <= 10240 ? "yes" : "NO")
	exit !(c <= 10240 && c <= a * 1.05)
}'
