#!/usr/bin/env bash
# bench/57-install-schedule.sh - schedule quality and API cost of a cluster create
# (goman-provision | goman-install --via ssm, 1 server + N-1 agents) against bench/aws_sim.py,
# a simulated EC2 + SSM with AWS's durations and throttle buckets (see its header):
#   boot 25-45 s, SSM agent registered 3-10 s after running, install 20-40 s, an agent's
#   install cannot finish before the first server's + 2 s; EC2 buckets RunInstances 5/2 s,
#   CreateTags 100/10 s, Describe* 100/20 s; SSM (assumed) SendCommand 20/5 s,
#   GetCommandInvocation and ListCommandInvocations 100/40 s each. Throttled calls get AWS's
#   own answers (RequestLimitExceeded, ThrottlingException), so goman retries them.
# The same scenario (same seed: same boot, registration and install times per node) runs
# with two builds, side by side: "base" (a git rev, built into a temporary worktree) and
# "this" ($GOMAN_BUILD, default build/).
#
# Modes (environment):
#   BENCH57_SCALE=fast   (default, `make bench`) durations x0.1, bucket refills x10, goman's
#                        SSM timing scaled the same way; 50 nodes. About 2 x 15 s, plus the
#                        simulator's check (~15 s) and the base build the first time (~1 min;
#                        cached per rev in /tmp). Meant for <= 100 nodes: goman-provision paces
#                        its CreateTags itself at AWS's real rate (10/s after a burst of 100),
#                        which no flag scales, so larger fast runs measure that pacing.
#   BENCH57_SCALE=real   AWS's real time scale, goman's defaults. A run takes the critical
#                        path (~90 s) plus goman's overhead, twice (base, this): measured on
#                        a 2-core box, about 1.6 min a build at 50 and 500 nodes and
#                        2.5 min at 1000 (the base build's slower runs: up to 3 min):
#                        ~15 min for BENCH57_NODES="50 500 1000" with a base.
#   BENCH57_NODES="50 500 1000"   node counts (default 50)
#   BENCH57_BASE=REV     the base build's rev (default: git merge-base HEAD main);
#                        BENCH57_BASE=none runs "this" only
#   BENCH57_SEED=N       the simulator's seed (default 57)
#   BENCH57_SERVER_BOOT=S  the first server boots in S s (before scaling) instead of a
#                        drawn 25-45 s: 45 makes it the last to run, so agents that wait for
#                        its record show in agent-start
#   BENCH57_WITHOUT=ListCommandInvocations   the simulator answers that action as an
#                        unknown operation (goman's per-invocation fallback)
#   BENCH57_INSTALL_FLAGS / BENCH57_PROVISION_FLAGS   extra flags for both builds
#
# Printed per (nodes, build), one row each, side by side:
#   wall = start -> last record out of goman-install; crit = the ideal: the slowest node's
#   own boot + registration + install, its install ending no earlier than the first
#   server's + 2 s, all launched at start; crit/wall (1.0 = no overhead).
#   calls = every request the simulator answered (throttled ones included), and per node;
#   thr = answered RequestLimitExceeded/ThrottlingException; thr-rec = records carrying a
#   throttling error (goman retried all others); prov-MB, inst-MB = max RSS of
#   goman-provision and goman-install (/usr/bin/time); sim-MB, sim-cpu = the simulator's
#   own (CPU seconds and % of one core over the wall: it is not the bottleneck while far
#   below 100 %); agent-start = an agent's SendCommand - its SSM agent's registration
#   (p50/max: a held agent shows here); late = agents whose start exceeds the batch
#   window + 1 s (2 s, scaled).
# Then per build: calls by action, throttles by action, goman's own api_call events
# (throttled, retries, circuit_open), error answers (InvalidInstanceId: a SendCommand
# before registration), and lateness = a node's record out - its simulated install end
# (p50/p90/max). At real scale, a targets line: crit/wall >= 0.97 and <= 300 calls at 50
# nodes (6 per node below 500), >= 0.95 and <= 3 calls per node from 500, no throttling
# error in a record, every goman process <= 30 MB RSS, no late agent.
set -u
cd "$(dirname "$0")/.." || exit 1
SCALE_MODE=${BENCH57_SCALE:-fast}
case $SCALE_MODE in
fast) SCALE=0.1 ;;
real) SCALE=1 ;;
*) echo "BENCH57_SCALE is fast or real, not '$SCALE_MODE'" >&2; exit 64 ;;
esac
NODES=${BENCH57_NODES:-${GOMAN_BENCH_NODES:-50}}
SEED=${BENCH57_SEED:-57}
THIS=${GOMAN_BUILD:-build}/bin
for b in goman-provision goman-install; do
	[ -x "$THIS/$b" ] || { echo "missing $THIS/$b (make)"; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)"; exit 1; }
PY=python3

T=$(mktemp -d)
SIM_PID='' WT=''
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null
	[ -n "$WT" ] && git worktree remove --force "$WT" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

# base_build REV: the two commands of REV built once into /tmp/goman-bench57-bin-SHA
# (static binaries, with k3s-install.sh next to them where goman-install finds it); prints
# the directory
base_build() {
	local sha dir
	sha=$(git rev-parse --verify "$1^{commit}" 2>/dev/null) || { echo "no such rev: $1" >&2; return 1; }
	dir=/tmp/goman-bench57-bin-${sha:0:12}
	if [ ! -x "$dir/goman-install" ] || [ ! -x "$dir/goman-provision" ]; then
		WT=$(mktemp -d /tmp/goman-bench57-wt.XXXXXX)
		git worktree add -q --detach "$WT" "$sha" >&2 || return 1
		echo "building base ${sha:0:12} in $WT ..." >&2
		if make -C "$WT" -j2 build/bin/goman-provision build/bin/goman-install >"$T/base-build.log" 2>&1; then
			mkdir -p "$dir.tmp" && cp "$WT/build/bin/goman-provision" "$WT/build/bin/goman-install" \
				"$WT/scripts/k3s-install.sh" "$dir.tmp/" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
		else
			tail -20 "$T/base-build.log" >&2
		fi
		git worktree remove --force "$WT" >&2
		WT=
		[ -x "$dir/goman-install" ] || return 1
	fi
	echo "$dir"
}

BASE=${BENCH57_BASE:-$(git merge-base HEAD main 2>/dev/null)}
builds=()
if [ -n "$BASE" ] && [ "$BASE" != none ]; then
	if base_build "$BASE" >"$T/basedir"; then
		builds+=("base:$(cat "$T/basedir")")
		BASE_DESC="base = $(git rev-parse --short "$BASE") ($(git log -1 --format=%s "$BASE" | cut -c1-60))"
	else
		BASE_DESC="base = none (cannot build $BASE)"
	fi
else
	BASE_DESC="base = none"
fi
builds+=("this:$THIS")

if [ "$SCALE_MODE" = fast ]; then
	PFLAGS=(--poll-interval 200ms --poll-max 1s)
	IFLAGS=(--poll-interval 200ms --poll-floor 1s --batch-window 100ms --delivery-timeout 60s --timeout 60s)
else
	PFLAGS=()
	IFLAGS=()
fi
# shellcheck disable=SC2206
PFLAGS+=(${BENCH57_PROVISION_FLAGS:-})
# shellcheck disable=SC2206
IFLAGS+=(${BENCH57_INSTALL_FLAGS:-})

# run_one LABEL BINDIR N: one cluster create against a fresh simulator; leaves
# $T/LABEL-N.{out,stats,prov.rss,inst.rss,sim.rss,t0,prov.err,inst.err}
run_one() {
	local label=$1 bin=$2 n=$3 r=$T/$1-$3
	rm -f "$T/port"
	$PY bench/aws_sim.py "$T/port" --scale "$SCALE" --seed "$SEED" ${BENCH57_SERVER_BOOT:+--server-boot "$BENCH57_SERVER_BOOT"} \
		${BENCH57_WITHOUT:+--without "$BENCH57_WITHOUT"} 2>"$r.sim.err" &
	SIM_PID=$!
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
	[ -s "$T/port" ] || { echo "simulator did not start"; cat "$r.sim.err"; return 1; }
	local url
	url=http://127.0.0.1:$(cat "$T/port")
	mkdir -p "$T/home-$label-$n"
	date +%s%3N >"$r.t0"
	(
		export AWS_ENDPOINT_URL=$url AWS_ACCESS_KEY_ID=AKIDBENCH57SIM AWS_SECRET_ACCESS_KEY=bench57-not-a-secret
		export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
		# events on, as the porcelain's create runs them
		export HOME=$T/home-$label-$n GOMAN_EVENTS=$r.events
		unset AWS_SESSION_TOKEN AWS_PROFILE XDG_RUNTIME_DIR XDG_STATE_HOME XDG_CONFIG_HOME GOMAN_STATE_FILE GOMAN_CONFIG
		/usr/bin/time -f %M -o "$r.prov.rss" "$bin/goman-provision" --cluster bench --servers 1 \
			--agents $((n - 1)) --ami ami-0b57sim --subnet subnet-0sim --security-group sg-0sim \
			--via ssm "${PFLAGS[@]}" 2>"$r.prov.err" |
			/usr/bin/time -f %M -o "$r.inst.rss" "$bin/goman-install" --via ssm --no-verify \
				--no-kubeconfig "${IFLAGS[@]}" 2>"$r.inst.err" |
			$PY -c '
import sys, time
for line in sys.stdin:
    sys.stdout.write("%d %s" % (time.time() * 1000, line)); sys.stdout.flush()' >"$r.out"
	)
	curl -s "$url/__sim/stats" >"$r.stats"
	awk '/VmHWM/ {print $2}' "/proc/$SIM_PID/status" >"$r.sim.rss" 2>/dev/null
	kill "$SIM_PID" 2>/dev/null
	wait "$SIM_PID" 2>/dev/null
	SIM_PID=
	grep -h 'unanswered' "$r.sim.err" | sort | uniq -c | sed 's/^/  simulator: /'
}

report() { # report LABEL N
	$PY - "$T" "$1" "$2" "$SCALE" <<'EOF'
import json, sys
d, label, n, scale = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
r = "%s/%s-%d" % (d, label, n)
t0 = int(open(r + ".t0").read()) / 1000.0
st = json.load(open(r + ".stats"))
recs = []
for line in open(r + ".out"):
    ts, _, j = line.partition(" ")
    try:
        recs.append((int(ts) / 1000.0, json.loads(j)))
    except ValueError:
        pass
nodes = st["nodes"]
def rss(f):
    try:
        return int(open(r + f).read().split()[-1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return float("nan")
# the ideal: every node launched at t0
srv = [x for x in nodes.values() if x["role"] == "server" and x["ordinal"] == 0]
s_fin = (srv[0]["boot"] + srv[0]["reg"] + srv[0]["install"]) if srv else 0.0
crit = 0.0
for x in nodes.values():
    own = x["boot"] + x["reg"] + x["install"]
    crit = max(crit, own if x is (srv[0] if srv else None) else max(own, s_fin + 2 * scale))
ok = sum(1 for _, x in recs if x.get("ok") is True and x.get("install", {}).get("ok"))
wall = (max(t for t, _ in recs) - t0) if recs else float("nan")
acts = st["actions"]
calls = sum(sum(v.values()) for v in acts.values())
thr = sum(v["throttled"] for v in acts.values())
THR = ("RequestLimitExceeded", "ThrottlingException", "Throttling", "SlowDown", "TooManyRequests")
in_recs = sum(1 for _, x in recs if any(c in json.dumps(x) for c in THR) and x.get("ok") is not True)
by_id = {x.get("instance_id"): t for t, x in recs}
late = sorted(by_id[i] - x["t_finish"] for i, x in nodes.items() if i in by_id and "t_finish" in x)
start = sorted(x["t_send"] - x["t_registered"] for x in nodes.values()
               if x["role"] != "server" and "t_send" in x)
held = sum(1 for v in start if v > 2 * scale)
ev = {"calls": 0, "throttled": 0, "retries": 0, "circuit_open": 0}
try:
    for line in open(r + ".events"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") != "api_call":
            continue
        ev["calls"] += 1
        ev["retries"] += e.get("attempt", 1) > 1
        if e.get("outcome") in ("throttled", "circuit_open"):
            ev[e["outcome"]] += 1
except OSError:
    pass
def q(v, p):
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")
row = {"label": label, "n": n, "ok": ok, "wall": wall, "crit": crit, "calls": calls, "thr": thr,
       "in_recs": in_recs, "prov_rss": rss(".prov.rss"), "inst_rss": rss(".inst.rss"),
       "sim_rss": rss(".sim.rss"), "sim_cpu": st["cpu_s"],
       "late": (q(late, .5), q(late, .9), late[-1] if late else float("nan")),
       "start": (q(start, .5), start[-1] if start else float("nan")), "held": held, "ev": ev,
       "acts": {a: sum(v.values()) for a, v in acts.items()},
       "thr_acts": {a: v["throttled"] for a, v in acts.items() if v["throttled"]},
       "err_acts": {a: v["error"] for a, v in acts.items() if v["error"]}}
json.dump(row, open(r + ".row", "w"))
EOF
}

table() { # table N LABEL...
	local n=$1
	shift
	$PY - "$T" "$n" "$SCALE" "$@" <<'EOF'
import json, sys
d, n, scale, labels = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
rows = [json.load(open("%s/%s-%d.row" % (d, l, n))) for l in labels]
u = "s" if scale == 1 else "s (x%g)" % scale
print("%-5s %5s %5s %8s %8s %9s %6s %9s %5s %8s %8s %8s %8s %11s %11s %5s" % (
    "build", "nodes", "ok", "wall", "crit", "crit/wall", "calls", "calls/node", "thr", "thr-rec",
    "prov-MB", "inst-MB", "sim-MB", "sim-cpu", "agent-start", "late"))
for r in rows:
    print("%-5s %5d %5d %8.1f %8.1f %9.3f %6d %9.2f %5d %8d %8.1f %8.1f %8.1f %6.1fs/%2.0f%% %5.1f/%5.1f %5d" % (
        r["label"], r["n"], r["ok"], r["wall"], r["crit"], r["crit"] / r["wall"] if r["wall"] else 0,
        r["calls"], r["calls"] / r["n"], r["thr"], r["in_recs"], r["prov_rss"], r["inst_rss"],
        r["sim_rss"], r["sim_cpu"], 100 * r["sim_cpu"] / r["wall"] if r["wall"] else 0,
        r["start"][0], r["start"][1], r["held"]))
print("  (times in %s; agent-start = SendCommand - agent registered, p50/max; late = agents whose"
      " SendCommand came more than the batch window + 1 s (%g s) after registration)" % (u, 2 * scale))
for r in rows:
    print("  %s: calls by action: %s" % (r["label"], ", ".join(
        "%s %d" % (a, c) for a, c in sorted(r["acts"].items(), key=lambda x: -x[1]))))
    if r["thr_acts"]:
        print("  %s: throttled: %s (%d reached a record)" % (r["label"], ", ".join(
            "%s %d" % x for x in sorted(r["thr_acts"].items())), r["in_recs"]))
    print("  %s: goman's api_call events: %d, %d throttled, %d retries (attempt > 1), %d circuit_open" % (
        r["label"], r["ev"]["calls"], r["ev"]["throttled"], r["ev"]["retries"], r["ev"]["circuit_open"]))
    if r["err_acts"]:
        print("  %s: error answers: %s" % (r["label"], ", ".join(
            "%s %d" % x for x in sorted(r["err_acts"].items()))))
    print("  %s: lateness (record out - install end) p50 %.2f, p90 %.2f, max %.2f" % (
        (r["label"],) + tuple(r["late"])))
    if scale == 1:
        # the targets a real-scale create is held to
        small = r["n"] < 500
        want_ratio, want_calls = (0.97, 300 if r["n"] == 50 else 6 * r["n"]) if small else (0.95, 3 * r["n"])
        ratio = r["crit"] / r["wall"] if r["wall"] else 0
        mb = max(r["prov_rss"], r["inst_rss"])
        res = [("crit/wall %.3f >= %.2f" % (ratio, want_ratio), ratio >= want_ratio),
               ("calls %d <= %d" % (r["calls"], want_calls), r["calls"] <= want_calls),
               ("throttling errors in records %d == 0" % r["in_recs"], r["in_recs"] == 0),
               ("max RSS %.1f MB <= 30" % mb, mb <= 30),
               ("late agents %d == 0" % r["held"], r["held"] == 0)]
        print("  %s: targets: %s" % (r["label"], "; ".join(
            "%s %s" % (t, "ok" if good else "MISSED") for t, good in res)))
EOF
}

# one function, so that editing this file while it runs cannot change what runs
main() {
	# the simulator against botocore's models first (fast mode; needs botocore, as the tests do)
	if [ "$SCALE_MODE" = fast ] && BOTO=$(scripts/local-aws.sh python 2>/dev/null) &&
		"$BOTO" -c 'import botocore' 2>/dev/null; then
		"$BOTO" bench/aws_sim_check.py || exit 1
	fi
	echo "scale: $SCALE_MODE (durations x$SCALE), nodes: $NODES, seed $SEED; $BASE_DESC; this = $THIS"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
	for n in $NODES; do
		[ "$SCALE_MODE" = fast ] && [ "$n" -gt 100 ] &&
			echo "note: fast mode at $n nodes: goman-provision's own CreateTags pacing (10/s) is not scaled"
	done
	rc=0
	for n in $NODES; do
		labels=()
		for b in "${builds[@]}"; do
			label=${b%%:*}
			run_one "$label" "${b#*:}" "$n" || { rc=1; continue; }
			report "$label" "$n" || { rc=1; continue; }
			labels+=("$label")
		done
		echo "--- $n nodes (1 server + $((n - 1)) agents)"
		[ ${#labels[@]} -gt 0 ] && table "$n" "${labels[@]}"
	done
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	return $rc
}
main "$@"
exit $?
