#!/usr/bin/env python3
"""aws_sim.py - a simulated EC2 + SSM (+ the IAM call goman-provision makes) with AWS's
durations and throttle buckets, for bench/57. Not a test fixture: nothing is checked
(signatures are ignored), only what goman-provision | goman-install call is answered.

    aws_sim.py PORT_FILE [--scale S] [--seed N] [--server-boot S] [--without ACTION]...

--without ListCommandInvocations answers that action as SSM answers an unknown operation
(HTTP 400 UnknownOperationException): the per-invocation fallback's path. The same for
DescribeInstanceInformation (goman then sends without checking registration first).

Listens on 127.0.0.1 (a free port), writes the port to PORT_FILE. Python 3 stdlib only.

Time model (every duration multiplied by --scale; 1 = AWS's real time scale):
  boot          25-45 s from RunInstances to "running" (pending before)
  registration  3-10 s after running, the SSM agent is registered: before that a
                SendCommand naming the instance fails InvalidInstanceId (the whole call,
                as SSM does)
  install       20-40 s from SendCommand to Success; an agent's (or joining server's)
                install cannot finish before the first server's + 2 s
  verify/kubectl commands finish 1 s after their SendCommand
Durations are drawn from random.Random(seed) per (role, launch ordinal of that role), so
two runs of the same scenario see the same nodes.

Throttle buckets (capacity / refill per second; refill multiplied by 1/scale), one token a
request; an empty bucket answers as AWS does (EC2: HTTP 503 RequestLimitExceeded XML; SSM:
HTTP 400 ThrottlingException JSON), and the request has no effect:
  EC2  RunInstances 5/2, CreateTags 100/10, Describe* 100/20 (one bucket), other 50/5
  SSM  SendCommand 20/5, GetCommandInvocation 100/40, ListCommandInvocations 100/40
       (each its own, an assumption: SSM does not publish them), GetParameter 100/40,
       PutParameter 10/3
  IAM  not throttled

SSM ListCommandInvocations follows the API reference: CommandId / InstanceId filters,
MaxResults 1-50 (default 50), NextToken, Details (CommandPlugins with Output cut at 2,500
characters; an empty CommandPlugins list without it). An install's output is ~4 KB of log
with GOMAN_RESULT last, so that line is only in GetCommandInvocation's output; a command
whose text keeps the log on the node (it names GOMAN_INSTALL_LOG, as goman's does since it
sends the installer's output to a file there) prints only its last GOMAN_PROGRESS and
GOMAN_RESULT lines, which Details holds whole.

Control: GET /__sim/stats  {"actions":{A:{"ok":N,"throttled":N,"error":N}},
                            "nodes":{id:{role,ordinal,boot,reg,install,t_launch,t_finish,...}},
                            "cpu_s":N,"requests":N,"t_epoch":N}
         POST /__sim/reset  forget everything (instances, commands, counts, buckets)
"""
import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
OUTPUT_CAP = 2500  # ListCommandInvocations Details=true: "Output" is cut here
# an install's log before its GOMAN_RESULT line, as long as a real one (~4 KB): the
# result line lies past OUTPUT_CAP, as it does on AWS
LOG = "".join("[k3s-install] %02d simulated step: pre-checks, download, verify, unit, readiness"
              " (the node-side installer's own log line)\n" % i for i in range(30))


class Bucket:
    def __init__(self, cap, rate):
        self.cap, self.rate, self.tokens, self.last = cap, rate, float(cap), time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.cap, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Sim:
    def __init__(self, scale, seed, server_boot=None, without=()):
        self.scale, self.seed, self.server_boot, self.without = scale, seed, server_boot, set(without)
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        s = self.scale
        self.buckets = {
            "ec2:RunInstances": Bucket(5, 2 / s), "ec2:CreateTags": Bucket(100, 10 / s),
            "ec2:Describe": Bucket(100, 20 / s), "ec2:other": Bucket(50, 5 / s),
            "ssm:SendCommand": Bucket(20, 5 / s),
            "ssm:GetCommandInvocation": Bucket(100, 40 / s),
            "ssm:ListCommandInvocations": Bucket(100, 40 / s),
            "ssm:DescribeInstanceInformation": Bucket(100, 40 / s),
            "ssm:GetParameter": Bucket(100, 40 / s), "ssm:PutParameter": Bucket(10, 3 / s),
        }
        self.instances = {}      # id -> dict
        self.order = []          # ids in launch order
        self.ordinal = {}        # role -> next ordinal
        self.tokens = {}         # ClientToken -> reservation reply items
        self.commands = {}       # CommandId -> dict
        self.cmd_order = []
        self.params = {}
        self.counts = {}
        self.requests = 0
        self.server_finish = None  # monotonic time the first server's install ends
        self.ip = 0

    # ---- model ---------------------------------------------------------------------
    def durations(self, role, k):
        r = random.Random("%s/%s/%d" % (self.seed, role, k))
        s = self.scale
        boot, reg, inst = r.uniform(25, 45), r.uniform(3, 10), r.uniform(20, 40)
        if role == "server" and k == 0 and self.server_boot is not None:
            boot = self.server_boot
        return boot * s, reg * s, inst * s

    def state(self, inst, now):
        return "running" if now >= inst["t_running"] else "pending"

    def count(self, action, outcome):
        c = self.counts.setdefault(action, {"ok": 0, "throttled": 0, "error": 0})
        c[outcome] += 1

    def bucket_for(self, service, action):
        if service == "ec2":
            if action in ("RunInstances", "CreateTags"):
                return self.buckets["ec2:" + action]
            return self.buckets["ec2:Describe" if action.startswith("Describe") else "ec2:other"]
        return self.buckets.get("%s:%s" % (service, action))

    # ---- EC2 -----------------------------------------------------------------------
    def run_instances(self, p, now):
        tok = p.get("ClientToken")
        if tok and tok in self.tokens:
            return self.tokens[tok]
        n = int(p.get("MaxCount", "1"))
        tags = self.tag_list(p, "TagSpecification.1.Tag")
        role = tags.get("goman:role", "agent")
        ids = []
        for li in range(n):
            k = self.ordinal.get(role, 0)
            self.ordinal[role] = k + 1
            boot, reg, inst_s = self.durations(role, k)
            self.ip += 1
            iid = "i-%017x" % random.Random("%s/id/%d" % (self.seed, len(self.order))).getrandbits(68)
            x = {"id": iid, "role": role, "ordinal": k, "boot": boot, "reg": reg, "install": inst_s,
                 "t_launch": now, "t_running": now + boot, "t_registered": now + boot + reg,
                 "tags": dict(tags), "launch_index": li, "type": p.get("InstanceType", "t3.medium"),
                 "image": p.get("ImageId", "ami-00000000"), "subnet": p.get("SubnetId", "subnet-0sim"),
                 "private_ip": "10.%d.%d.%d" % (self.ip >> 16 & 255, self.ip >> 8 & 255, self.ip & 255),
                 "public_ip": "54.%d.%d.%d" % (self.ip >> 16 & 255, self.ip >> 8 & 255, self.ip & 255),
                 "launch_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
            self.instances[iid] = x
            self.order.append(iid)
            ids.append(iid)
        body = ("<reservationId>r-%s</reservationId><ownerId>123456789012</ownerId><groupSet/>"
                "<instancesSet>%s</instancesSet>" % (uuid.uuid4().hex[:17],
                                                     "".join(self.inst_xml(self.instances[i], now) for i in ids)))
        if tok:
            self.tokens[tok] = body
        return body

    def inst_xml(self, x, now):
        st = self.state(x, now)
        code = 16 if st == "running" else 0
        tags = "".join("<item><key>%s</key><value>%s</value></item>" % (escape(k), escape(v))
                       for k, v in x["tags"].items())
        pub = "<ipAddress>%s</ipAddress>" % x["public_ip"] if st == "running" else ""
        return ("<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>%d</code>"
                "<name>%s</name></instanceState><privateIpAddress>%s</privateIpAddress>%s"
                "<amiLaunchIndex>%d</amiLaunchIndex><instanceType>%s</instanceType>"
                "<launchTime>%s</launchTime><placement><availabilityZone>us-east-1a</availabilityZone>"
                "</placement><subnetId>%s</subnetId><vpcId>vpc-0sim</vpcId><tagSet>%s</tagSet></item>" %
                (x["id"], escape(x["image"]), code, st, x["private_ip"], pub, x["launch_index"],
                 escape(x["type"]), x["launch_time"], escape(x["subnet"]), tags))

    @staticmethod
    def indexed(p, prefix):
        out, i = [], 1
        while "%s.%d" % (prefix, i) in p:
            out.append(p["%s.%d" % (prefix, i)])
            i += 1
        return out

    @staticmethod
    def tag_list(p, prefix):
        out, i = {}, 1
        while "%s.%d.Key" % (prefix, i) in p:
            out[p["%s.%d.Key" % (prefix, i)]] = p.get("%s.%d.Value" % (prefix, i), "")
            i += 1
        return out

    def filters(self, p):
        out, i = [], 1
        while "Filter.%d.Name" % i in p:
            out.append((p["Filter.%d.Name" % i], set(self.indexed(p, "Filter.%d.Value" % i))))
            i += 1
        return out

    def matches(self, x, flt, now):
        for name, vals in flt:
            if name == "instance-id":
                v = x["id"]
            elif name == "instance-state-name":
                v = self.state(x, now)
            elif name.startswith("tag:"):
                v = x["tags"].get(name[4:])
            elif name == "tag-key":
                if not vals & set(x["tags"]):
                    return False
                continue
            else:
                continue
            if v is None or v not in vals:
                return False
        return True

    def describe_instances(self, p, now):
        want = self.indexed(p, "InstanceId")
        for i in want:
            if i not in self.instances:
                raise ApiError(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % i)
        flt = self.filters(p)
        ids = want or self.order
        sel = [self.instances[i] for i in ids if self.matches(self.instances[i], flt, now)]
        start = int(p.get("NextToken", "0") or 0)
        mx = int(p.get("MaxResults", "0") or 0) or len(sel) or 1
        page = sel[start:start + mx]
        nxt = "<nextToken>%d</nextToken>" % (start + mx) if start + mx < len(sel) else ""
        items = "".join("<item><reservationId>r-0sim</reservationId><ownerId>123456789012</ownerId>"
                        "<groupSet/><instancesSet>%s</instancesSet></item>" % self.inst_xml(x, now)
                        for x in page)
        return "<reservationSet>%s</reservationSet>%s" % (items, nxt)

    def create_tags(self, p, now):
        ids = self.indexed(p, "ResourceId")
        tags = self.tag_list(p, "Tag")
        for r in ids:
            if r in self.instances:
                self.instances[r]["tags"].update(tags)
        return "<return>true</return>"

    def call(self, service, action, args, now):
        """the answer to one request (XML body for EC2, JSON object for SSM)"""
        if action in self.without:
            raise ApiError(400, "UnknownOperationException", "") if service == "ssm" else \
                ApiError(400, "InvalidAction", "The action %s is not valid for this web service." % action)
        own = {"RunInstances": self.run_instances, "DescribeInstances": self.describe_instances,
               "CreateTags": self.create_tags, "SendCommand": self.send_command,
               "GetCommandInvocation": self.get_invocation,
               "ListCommandInvocations": self.list_invocations,
               "DescribeInstanceInformation": self.describe_information}.get(action)
        if own:
            return own(args, now)
        return (self.ssm_params if service == "ssm" else self.ec2_setup)(action, args)

    def ec2_setup(self, action, p):
        if action == "DescribeSubnets":
            ids = self.indexed(p, "SubnetId") or ["subnet-0sim"]
            return "<subnetSet>%s</subnetSet>" % "".join(
                "<item><subnetId>%s</subnetId><vpcId>vpc-0sim</vpcId><availabilityZone>us-east-1a"
                "</availabilityZone><defaultForAz>true</defaultForAz><state>available</state></item>" %
                escape(s) for s in ids)
        if action == "DescribeVpcs":
            return "<vpcSet><item><vpcId>vpc-0sim</vpcId><isDefault>true</isDefault></item></vpcSet>"
        if action == "DescribeImages":
            return ("<imagesSet><item><imageId>%s</imageId><rootDeviceName>/dev/xvda</rootDeviceName>"
                    "</item></imagesSet>" % escape(p.get("ImageId.1", "ami-0sim")))
        if action == "DescribeSecurityGroups":
            return "<securityGroupInfo/>"
        if action == "CreateSecurityGroup":
            return "<return>true</return><groupId>sg-0sim</groupId>"
        if action == "AuthorizeSecurityGroupIngress":
            return "<return>true</return>"
        raise ApiError(400, "InvalidAction", "the simulator has no %s" % action)

    # ---- SSM -----------------------------------------------------------------------
    def send_command(self, j, now):
        ids = j.get("InstanceIds") or []
        for i in ids:
            x = self.instances.get(i)
            if not x or now < x["t_registered"]:
                raise ApiError(400, "InvalidInstanceId",
                               "Instances [[%s]] not in a valid state for account 123456789012" % i)
        # a command text that sends the installer's log to a file on the node and prints only
        # its GOMAN_ lines (goman's, which names GOMAN_INSTALL_LOG) has a short output
        text = "".join((j.get("Parameters") or {}).get("commands") or [])
        quiet = "GOMAN_INSTALL_LOG" in text
        comment = j.get("Comment", "")
        # goman's Comment ends with the command's kind; anything not a verify/kubectl command
        # is an install, and the first server is known by its tags (not by the comment)
        last = comment.rsplit(" ", 1)[-1] if comment else ""
        quick = last in ("verify", "kubectl")
        cid = str(uuid.uuid4())
        inv = {}
        for i in ids:
            x = self.instances[i]
            if quick:
                kind, fin = last, now + 1.0 * self.scale
            else:
                kind = "first-server" if (x["role"], x["ordinal"]) == ("server", 0) else \
                    "join-server" if x["role"] == "server" else "agent"
                fin = now + x["install"]
                x["t_send"] = now
                x["kind"] = kind
                if kind == "first-server" and self.server_finish is None:
                    self.server_finish = fin
            inv[i] = {"t_send": now, "t_finish": fin, "kind": kind, "quiet": quiet}
            if not quick:
                x["inv"] = inv[i]
        self.commands[cid] = {"id": cid, "ids": list(ids), "inv": inv, "comment": comment,
                              "t": now, "doc": j.get("DocumentName", "AWS-RunShellScript")}
        self.cmd_order.append(cid)
        return {"Command": {"CommandId": cid, "DocumentName": self.commands[cid]["doc"],
                            "Comment": comment, "InstanceIds": list(ids), "Status": "Pending",
                            "RequestedDateTime": time.time(), "TargetCount": len(ids),
                            "CompletedCount": 0, "ErrorCount": 0}}

    def describe_information(self, j, now):
        """Filters InstanceIds (at most 100 values; MaxResults 5-50): the instances named
        whose SSM agent has registered, PingStatus Online; a named instance that has not
        registered yet is left out (an assumption: the legacy InstanceInformationFilterList
        form may answer InvalidInstanceId instead, which goman treats as no check)"""
        mx = j.get("MaxResults", 50)
        if not isinstance(mx, int) or not 5 <= mx <= 50:
            raise ApiError(400, "ValidationException", "maxResults must be 5-50")
        ids = None
        for f in j.get("Filters") or []:
            if f.get("Key") == "InstanceIds":
                ids = f.get("Values") or []
        if ids is not None and not 1 <= len(ids) <= 100:
            raise ApiError(400, "ValidationException", "InstanceIds takes 1-100 values")
        rows = []
        for i in (ids if ids is not None else self.order):
            x = self.instances.get(i)
            if x and now >= x["t_registered"]:
                rows.append({"InstanceId": i, "PingStatus": "Online", "ResourceType": "EC2Instance",
                             "PlatformType": "Linux", "AgentVersion": "3.3.0.0",
                             "IPAddress": x.get("ip", "")})
        try:
            start = int(j.get("NextToken") or 0)
        except ValueError:
            raise ApiError(400, "InvalidNextToken", "")
        res = {"InstanceInformationList": rows[start:start + mx]}
        if start + mx < len(rows):
            res["NextToken"] = str(start + mx)
        return res

    def inv_finish(self, v):
        """the invocation's end (monotonic), None while it waits for the first server's"""
        if v["kind"] in ("first-server", "verify", "kubectl"):
            return v["t_finish"]
        if self.server_finish is None:
            return None
        return max(v["t_finish"], self.server_finish + 2.0 * self.scale)

    def output(self, iid, v):
        role = "server" if v["kind"] in ("first-server", "join-server") else "agent"
        if v["kind"] in ("verify", "kubectl"):
            return "NAME STATUS ROLES AGE VERSION\n"
        return ("" if v.get("quiet") else LOG) + ("GOMAN_PROGRESS 100\n"
                'GOMAN_RESULT {"ok":true,"role":"%s","version":"v1.31.4+k3s1","arch":"amd64",'
                '"checksum":"sha256:0","skipped":false,"upgraded":false}\n' % role)

    def inv_status(self, iid, v, now):
        fin = self.inv_finish(v)
        if fin is not None and now >= fin:
            return "Success", fin
        return "InProgress", None

    def get_invocation(self, j, now):
        c = self.commands.get(j.get("CommandId", ""))
        iid = j.get("InstanceId", "")
        if not c or iid not in c["inv"]:
            raise ApiError(400, "InvocationDoesNotExist", "")
        v = c["inv"][iid]
        st, fin = self.inv_status(iid, v, now)
        done = st == "Success"
        return {"CommandId": c["id"], "InstanceId": iid, "Comment": c["comment"],
                "DocumentName": c["doc"], "DocumentVersion": "$DEFAULT", "PluginName": "aws:runShellScript",
                "ResponseCode": 0 if done else -1, "Status": st, "StatusDetails": st,
                "StandardOutputContent": self.output(iid, v) if done else "",
                "StandardErrorContent": "", "StandardOutputUrl": "", "StandardErrorUrl": "",
                "ExecutionStartDateTime": "", "ExecutionElapsedTime": "",
                "ExecutionEndDateTime": "", "CloudWatchOutputConfig": {
                    "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}}

    def list_invocations(self, j, now):
        cid, iid = j.get("CommandId"), j.get("InstanceId")
        mx = j.get("MaxResults", 50)
        if not isinstance(mx, int) or not 1 <= mx <= 50:
            raise ApiError(400, "ValidationException",
                           "1 validation error detected: Value '%s' at 'maxResults' failed to satisfy "
                           "constraint: Member must have value less than or equal to 50" % mx)
        if cid is not None and cid not in self.commands:
            raise ApiError(400, "InvalidCommandId", "")
        details = bool(j.get("Details", False))
        rows = []
        for c in ([self.commands[cid]] if cid else [self.commands[k] for k in reversed(self.cmd_order)]):
            for i in c["ids"]:
                if iid and i != iid:
                    continue
                rows.append((c, i))
        try:
            start = int(j.get("NextToken") or 0)
        except ValueError:
            raise ApiError(400, "InvalidNextToken", "")
        out = []
        for c, i in rows[start:start + mx]:
            v = c["inv"][i]
            st, fin = self.inv_status(i, v, now)
            done = st == "Success"
            row = {"CommandId": c["id"], "InstanceId": i, "InstanceName": "", "Comment": c["comment"],
                   "DocumentName": c["doc"], "DocumentVersion": "$DEFAULT",
                   "RequestedDateTime": time.time() - (now - v["t_send"]), "Status": st,
                   "StatusDetails": st, "TraceOutput": "", "StandardOutputUrl": "",
                   "StandardErrorUrl": "", "CommandPlugins": [], "ServiceRole": "",
                   "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [],
                                          "NotificationType": ""},
                   "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "",
                                              "CloudWatchOutputEnabled": False}}
            if details:
                row["CommandPlugins"] = [{
                    "Name": "aws:runShellScript", "Status": st, "StatusDetails": st,
                    "ResponseCode": 0 if done else -1,
                    "Output": self.output(i, v)[:OUTPUT_CAP] if done else "",
                    "StandardOutputUrl": "", "StandardErrorUrl": "", "OutputS3Region": "us-east-1",
                    "OutputS3BucketName": "", "OutputS3KeyPrefix": ""}]
            out.append(row)
        res = {"CommandInvocations": out}
        if start + mx < len(rows):
            res["NextToken"] = str(start + mx)
        return res

    def ssm_params(self, action, j):
        if action == "GetParameter":
            v = self.params.get(j.get("Name"))
            if v is None:
                raise ApiError(400, "ParameterNotFound", "")
            return {"Parameter": {"Name": j["Name"], "Type": v[1], "Value": v[0], "Version": 1}}
        if action == "PutParameter":
            if j.get("Name") in self.params and not j.get("Overwrite"):
                raise ApiError(400, "ParameterAlreadyExists", "")
            self.params[j["Name"]] = (j.get("Value", ""), j.get("Type", "String"))
            return {"Version": 1, "Tier": "Standard"}
        raise ApiError(400, "UnknownOperationException", "the simulator has no %s" % action)

    def stats(self):
        now = time.monotonic()
        t = os.times()
        nodes = {}
        for i in self.order:
            x = self.instances[i]
            nodes[i] = {k: x.get(k) for k in ("role", "ordinal", "boot", "reg", "install", "kind")}
            fin = self.inv_finish(x["inv"]) if x.get("inv") else None
            for k, v in (("t_launch", x["t_launch"]), ("t_running", x["t_running"]),
                         ("t_registered", x["t_registered"]), ("t_send", x.get("t_send")),
                         ("t_finish", fin)):
                if v is not None:
                    nodes[i][k] = time.time() - (now - v)  # epoch seconds
            nodes[i]["name"] = x["tags"].get("goman:name")
        return {"actions": self.counts, "nodes": nodes, "cpu_s": t.user + t.system,
                "requests": self.requests, "t_epoch": time.time(), "scale": self.scale}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype):
        b = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        sim = self.server.sim
        if self.path.startswith("/__sim/stats"):
            with sim.lock:
                self.reply(200, json.dumps(sim.stats()), "application/json")
        else:
            self.reply(404, "{}", "application/json")

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path.startswith("/__sim/reset"):
            with sim.lock:
                sim.reset()
            return self.reply(200, "{}", "application/json")
        target = self.headers.get("X-Amz-Target")
        auth = self.headers.get("Authorization", "")
        if target:
            service, action = "ssm", target.split(".")[-1]
            try:
                args = json.loads(raw or b"{}")
            except ValueError:
                args = {}
        else:
            p = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
            action = p.get("Action", "")
            service = "iam" if "/iam/" in auth else "ec2"
            args = p
        now = time.monotonic()
        err = res = None
        with sim.lock:  # the model under the lock; the answer is written after it
            sim.requests += 1
            b = sim.bucket_for(service, action)
            if b is not None and not b.take():
                sim.count(action, "throttled")
                err = ApiError(503, "RequestLimitExceeded", "Request limit exceeded.") if service == "ec2" \
                    else ApiError(400, "ThrottlingException", "Rate exceeded")
            else:
                try:
                    res = self.iam(action, args) if service == "iam" else sim.call(service, action, args, now)
                    sim.count(action, "ok")
                except ApiError as e:
                    sim.count(action, "error")
                    err = e
        if err is not None:
            if err.message.startswith("the simulator has no"):
                sys.stderr.write("aws_sim: unanswered %s %s\n" % (service, action))
            return self.error(service, err)
        rid = str(uuid.uuid4())
        if service == "ssm":
            self.reply(200, json.dumps(res), "application/x-amz-json-1.1")
        elif service == "iam":
            self.reply(200, res, "text/xml")
        else:
            self.reply(200, '<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s"><requestId>%s'
                       "</requestId>%s</%sResponse>" % (action, EC2_NS, rid, res, action), "text/xml")

    @staticmethod
    def iam(action, p):
        if action != "GetInstanceProfile":
            raise ApiError(400, "InvalidAction", "the simulator has no %s" % action)
        name = escape(p.get("InstanceProfileName", ""))
        return ('<GetInstanceProfileResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                "<GetInstanceProfileResult><InstanceProfile><InstanceProfileName>%s</InstanceProfileName>"
                "<InstanceProfileId>AIPA0SIM</InstanceProfileId><Arn>arn:aws:iam::123456789012:"
                "instance-profile/%s</Arn><Path>/</Path><Roles/></InstanceProfile></GetInstanceProfileResult>"
                "<ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></GetInstanceProfileResponse>"
                % (name, name))

    def error(self, service, e):
        if service == "ssm":
            self.reply(e.status, json.dumps({"__type": e.code, "message": e.message}),
                       "application/x-amz-json-1.1")
        elif service == "iam":
            self.reply(e.status, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s"
                       "</Message></Error><RequestId>0</RequestId></ErrorResponse>" %
                       (e.code, escape(e.message)), "text/xml")
        else:
            self.reply(e.status, '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                       "<Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID>"
                       "</Response>" % (e.code, escape(e.message), uuid.uuid4()), "text/xml")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port_file")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=57)
    ap.add_argument("--server-boot", type=float, help="the first server's boot (s, before scaling)")
    ap.add_argument("--without", action="append", default=[], metavar="ACTION",
                    help="answer ACTION as an unknown operation (as an endpoint without it does)")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 256
    srv.sim = Sim(a.scale, a.seed, a.server_boot, a.without)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
