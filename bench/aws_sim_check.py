#!/usr/bin/env python3
"""aws_sim_check.py - checks bench/aws_sim.py against botocore's own models (a real AWS
client parses every answer): launch, pending -> running, registration, SendCommand,
ListCommandInvocations by CommandId (pages, Details, the 2,500-character Output cut),
GetCommandInvocation, an agent held until the first server's install + 2 s, and the
throttle answers botocore classifies as throttling, and --without's unknown operation. Starts its own simulator at --scale 0.05.

    aws_sim_check.py      prints "aws_sim: N checks passed" or fails on the first wrong one
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import botocore.config
import botocore.exceptions
import botocore.session

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = 0.05
checks = 0


def check(cond, what):
    global checks
    if not cond:
        sys.exit("aws_sim check failed: %s" % what)
    checks += 1


def code_of(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def start(scale, sims, extra=()):
    """a simulator at SCALE: its (ec2, ssm) botocore clients, retries off, and its URL"""
    pf = os.path.join(tempfile.mkdtemp(), "port")
    sims.append(subprocess.Popen([sys.executable, os.path.join(HERE, "aws_sim.py"), pf,
                                  "--scale", str(scale)] + list(extra)))
    for _ in range(400):
        if os.path.exists(pf):
            break
        time.sleep(0.05)
    s = botocore.session.get_session()
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    kw = dict(region_name="us-east-1", endpoint_url="http://127.0.0.1:%s" % open(pf).read(),
              aws_access_key_id="AKIDCHECK", aws_secret_access_key="check", config=cfg)
    return s.create_client("ec2", **kw), s.create_client("ssm", **kw), kw["endpoint_url"]


def main():
    sims = []
    try:
        ec2, ssm, url = start(SCALE, sims)
        tag = lambda role: [{"ResourceType": "instance", "Tags": [{"Key": "goman:role", "Value": role}]}]
        srv = ec2.run_instances(ImageId="ami-1", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                TagSpecifications=tag("server"))["Instances"][0]["InstanceId"]
        r = ec2.run_instances(ImageId="ami-1", MinCount=60, MaxCount=60, InstanceType="t3.micro",
                              TagSpecifications=tag("agent"))
        ids = [x["InstanceId"] for x in r["Instances"]]
        check(len(set(ids)) == 60 and r["Instances"][0]["State"]["Name"] == "pending", "60 pending instances")
        send = lambda i, kind: ssm.send_command(
            InstanceIds=i, DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]},
            Comment="goman install c " + kind)["Command"]["CommandId"]
        check(code_of(lambda: send(ids[:50], "agent"))[0] == "InvalidInstanceId", "unregistered: InvalidInstanceId")
        flt = [{"Key": "InstanceIds", "Values": ids[:50]}]
        check(ssm.describe_instance_information(Filters=flt, MaxResults=50)["InstanceInformationList"] == [],
              "DescribeInstanceInformation leaves unregistered instances out")
        time.sleep((45 + 10) * SCALE + 0.1)
        info = ssm.describe_instance_information(Filters=flt, MaxResults=50)["InstanceInformationList"]
        check(len(info) == 50 and {x["PingStatus"] for x in info} == {"Online"},
              "DescribeInstanceInformation lists registered instances Online")
        d1 = ec2.describe_instances(Filters=[{"Name": "tag:goman:role", "Values": ["agent"]}], MaxResults=25)
        check(len(d1["Reservations"]) == 25 and d1.get("NextToken"), "describe pages of 25")
        check({i["State"]["Name"] for res in d1["Reservations"] for i in res["Instances"]} == {"running"},
              "running after the boot")
        c = send(ids[:50], "agent")
        l1 = ssm.list_command_invocations(CommandId=c)
        check(len(l1["CommandInvocations"]) == 50 and "NextToken" not in l1, "one page of 50 by default")
        check(all(x["CommandPlugins"] == [] and x["Status"] == "InProgress" for x in l1["CommandInvocations"]),
              "no plugins without Details, in progress")
        time.sleep(40 * SCALE + 0.1)
        l2 = ssm.list_command_invocations(CommandId=c, Details=True)
        check({x["Status"] for x in l2["CommandInvocations"]} == {"InProgress"}, "agents held until the server")
        cs = send([srv], "first-server")
        t_send = time.time()
        while ssm.list_command_invocations(CommandId=cs)["CommandInvocations"][0]["Status"] != "Success":
            time.sleep(0.01)
        t_srv = time.time()
        check(20 * SCALE - 0.05 <= t_srv - t_send <= 40 * SCALE + 0.1, "server install 20-40 s")
        st = json.load(urllib.request.urlopen(url + "/__sim/stats"))["nodes"]
        check(all(st[i]["t_finish"] >= st[srv]["t_finish"] + 2 * SCALE - 1e-6 for i in ids[:50]),
              "agents end no earlier than the server's end + 2 s")
        time.sleep(2 * SCALE + 0.05)
        l3 = ssm.list_command_invocations(CommandId=c, Details=True, MaxResults=20)
        p = l3["CommandInvocations"][0]["CommandPlugins"][0]
        check(l3["NextToken"] and len(l3["CommandInvocations"]) == 20, "MaxResults 20 pages")
        check(p["Status"] == "Success" and p["ResponseCode"] == 0 and len(p["Output"]) == 2500
              and "GOMAN_RESULT" not in p["Output"], "Details: plugin output cut at 2,500 characters")
        pg = ssm.get_paginator("list_command_invocations").paginate(
            CommandId=c, PaginationConfig={"PageSize": 7})
        check(sum(len(x["CommandInvocations"]) for x in pg) == 50, "botocore's paginator sees all 50")
        g = ssm.get_command_invocation(CommandId=c, InstanceId=ids[0])
        check(g["Status"] == "Success" and g["StandardOutputContent"].rstrip().split("\n")[-1]
              .startswith("GOMAN_RESULT "), "GetCommandInvocation: GOMAN_RESULT last")
        cq = ssm.send_command(InstanceIds=ids[50:52], DocumentName="AWS-RunShellScript",
                              Parameters={"commands": ["sh x >\"${GOMAN_INSTALL_LOG:-l}\" 2>&1"]},
                              Comment="goman install c agent")["Command"]["CommandId"]
        time.sleep(40 * SCALE + 0.1)
        pq = ssm.list_command_invocations(CommandId=cq, Details=True)["CommandInvocations"][0]["CommandPlugins"][0]
        check(pq["Output"].startswith("GOMAN_PROGRESS 100\nGOMAN_RESULT "),
              "a command keeping its log on the node prints only its GOMAN_ lines")
        check(code_of(lambda: ssm.list_command_invocations(CommandId="00000000-0000-0000-0000-000000000000"))[0]
              == "InvalidCommandId", "unknown CommandId")
        check(code_of(lambda: ssm.get_command_invocation(CommandId=c, InstanceId=ids[55]))[0]
              == "InvocationDoesNotExist", "instance not in the command")
        # the buckets at AWS's own rates (refills are scaled with the durations)
        ec2, ssm, _ = start(1, sims)
        # at once (a loaded machine may answer slower than the refill)
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: code_of(lambda: ec2.run_instances(
                ImageId="ami-1", MinCount=1, MaxCount=1, InstanceType="t3.micro")), range(20)))
        check(codes.count((None, 200)) >= 5 and ("RequestLimitExceeded", 503) in codes,
              "RunInstances bucket of 5: then RequestLimitExceeded 503")
        codes = [code_of(lambda: ssm.get_parameter(Name="x")) for _ in range(3)]
        check(codes[0] == ("ParameterNotFound", 400), "GetParameter of a missing name")
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: code_of(lambda: ssm.send_command(
                InstanceIds=["i-0"], DocumentName="AWS-RunShellScript",
                Parameters={"commands": ["true"]})), range(60)))
        check(codes.count(("InvalidInstanceId", 400)) >= 20 and ("ThrottlingException", 400) in codes,
              "SendCommand bucket of 20: then ThrottlingException 400")
        _, ssm, _ = start(1, sims, ["--without", "ListCommandInvocations"])
        check(code_of(lambda: ssm.list_command_invocations(CommandId=c)) == ("UnknownOperationException", 400),
              "--without: an unknown operation, as SSM answers one")
    finally:
        for p in sims:
            p.terminate()
            p.wait()
    print("aws_sim: %d checks passed" % checks)


if __name__ == "__main__":
    main()
