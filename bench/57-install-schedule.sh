#!/usr/bin/env bash
# bench/57-install-schedule.sh - schedule quality of goman-install --via ssm at AWS time
# scales compressed 1/10, against moto behind the fault proxy's delay model:
#   boot 25-45 s   -> a feeder launches each node (RunInstances through the proxy) after a
#                     random 2.5-4.5 s and writes its record at once (the "running" moment)
#   registration   -> registration_s 0.3 (SendCommand is InvalidInstanceId for 0.3 s)
#   install 30 s   -> invocation_s 3.0 (GetCommandInvocation InProgress for 3 s)
#   goman timing   -> --poll-interval 200ms (2 s), --poll-floor 1s (10 s), --batch-window 100ms
# Critical path: the slowest node's record + registration + install (agents need only the
# server's record). Ratio = wall (start → last node record) / critical path.
# Per node: its record's lateness = t.installed - (its record + registration + install),
# i.e. how long after its own command could have been seen finished it was written.
# Peer (the naive bound): one SendCommand per node + a 2 s (scaled: 0.2 s) poll of every
# invocation for its whole run. The machine's load average is printed with the figures:
# ratios near 1 are sensitive to a loaded box (moto and the proxy share the CPUs).
set -u
cd "$(dirname "$0")/.." || exit 1
N=${GOMAN_BENCH_NODES:-40}
B=${GOMAN_BUILD:-build}/bin/goman-install
[ -x "$B" ] || { echo "missing $B (make)"; exit 1; }
T=$(mktemp -d)
trap 'kill $(cat "$T/proxy.pid" 2>/dev/null) 2>/dev/null; scripts/local-aws.sh stop "$T/aws" >/dev/null 2>&1; rm -rf "$T"' EXIT
scripts/local-aws.sh start "$T/aws" >/dev/null || exit 1
. "$T/aws/env"
PY=$(scripts/local-aws.sh python)
python3 tests/fixtures/fault_proxy.py "$AWS_ENDPOINT_URL" "$T/proxy.port" \
	--config '{"registration_s":0.3,"invocation_s":3.0}' 3>&- &
echo $! >"$T/proxy.pid"
for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
PROXY="http://127.0.0.1:$(cat "$T/proxy.port")"
# warm-up (moto's first EC2 call is slow) outside the measured window
AWS_ENDPOINT_URL="$PROXY" "$PY" -c '
import botocore.session; botocore.session.get_session().create_client("ec2", region_name="us-east-1").describe_instances()'
curl -s -X POST -d '{"reset_stats":true}' "$PROXY/__proxy/config" >/dev/null

T0=$(date +%s%3N)
N=$N T0=$T0 AWS_ENDPOINT_URL="$PROXY" "$PY" - 2>"$T/feeder.log" <<'EOF' |
import botocore.session, json, os, random, sys, threading, time
n = int(os.environ["N"]); t0 = int(os.environ["T0"]) / 1000.0
rnd = random.Random(57)
ec2 = botocore.session.get_session().create_client("ec2", region_name="us-east-1")
out = sys.stdout
lock = threading.Lock()
def boot(i):
    time.sleep(max(0.0, t0 + rnd_delays[i] - time.time()))
    with lock:
        inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
        role = "server" if i == 0 else "agent"
        rec = {"cluster": "bench", "name": "bench-%s-%d" % (role, 0 if i == 0 else i - 1), "role": role,
               "index": 0 if i == 0 else i - 1, "instance_id": inst["InstanceId"],
               "private_ip": inst["PrivateIpAddress"], "t_running_ms": int(time.time() * 1000)}
        out.write(json.dumps(rec) + "\n"); out.flush()
rnd_delays = [rnd.uniform(2.5, 4.5) for _ in range(n)]
ts = [threading.Thread(target=boot, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
	AWS_ENDPOINT_URL="$PROXY" "$B" --via ssm --poll-interval 200ms --poll-floor 1s --batch-window 100ms \
		--delivery-timeout 30s --timeout 60s --no-verify >"$T/out" 2>"$T/err"
stats=$(curl -s "$PROXY/__proxy/stats")
N=$N T0=$T0 "$PY" - "$T/out" "$stats" <<'EOF'
import json, os, sys, datetime
n = int(os.environ["N"]); t0 = int(os.environ["T0"])
recs = [json.loads(l) for l in open(sys.argv[1])]
st = json.loads(sys.argv[2])
def ms(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
ok = sum(1 for r in recs if r.get("install", {}).get("ok"))
last_run = max(r["t_running_ms"] for r in recs)
crit = last_run - t0 + 300 + 3000
wall = max(ms(r["t"]["installed"]) for r in recs) - t0
acts = st["actions"]
sends = sum(acts.get("SendCommand", {}).values())
polls = sum(acts.get("GetCommandInvocation", {}).values())
naive = n + n * (3000 // 200)
print("load average: %s" % open("/proc/loadavg").read().split()[0:3])
print("nodes %d, ok %d" % (n, ok))
print("critical path %.0f ms (scaled x10: %.1f s), wall %.0f ms, wall/critical = %.3f" % (crit, crit / 100, wall, wall / crit))
late = sorted(ms(r["t"]["installed"]) - (r["t_running_ms"] + 300 + 3000) for r in recs)
print("per-node lateness (record out - own record+registration+install): p50 %.0f ms, p90 %.0f ms, max %.0f ms (scaled x10: %.1f / %.1f / %.1f s)" %
      (late[len(late) // 2], late[int(len(late) * 0.9)], late[-1], late[len(late) // 2] / 100, late[int(len(late) * 0.9)] / 100, late[-1] / 100))
print("calls: SendCommand %d (%d rejected InvalidInstanceId), GetCommandInvocation %d, total %d" %
      (sends, st.get("rewrites", {}).get("unregistered", 0), polls, sends + polls))
print("naive bound (1 SendCommand/node + 2 s poll of every invocation): %d calls; ratio ours/naive = %.3f" %
      (naive, (sends + polls) / naive))
EOF
