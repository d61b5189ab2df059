#!/usr/bin/env python3
"""batch_instances.py - instances for goman-batch tests and benches, made with botocore
against the local AWS endpoint ($AWS_ENDPOINT_URL and keys from local-aws.sh's env).

    batch_instances.py launch N [--cluster NAME]   N instances; prints {"instance_id","n"} lines
    batch_instances.py protect ID...               DisableApiTermination=true
    batch_instances.py states ID...                prints "ID STATE" lines (absent: "ID -")
    batch_instances.py tags ID                     prints the instance's tags as one JSON object
    batch_instances.py naive-stop BS < ids.jsonl   the peer of bench/41: StopInstances per batch
                                                   of BS, one after another, no bisection (a
                                                   refused batch loses all its IDs); prints
                                                   {"ok":N,"calls":N,"ms":N}
"""
import json
import sys
import time

import botocore.session


def client():
    return botocore.session.get_session().create_client("ec2")


def main(argv):
    ec2 = client()
    cmd = argv[1]
    if cmd == "launch":
        n = int(argv[2])
        kw = {}
        if len(argv) > 4 and argv[3] == "--cluster":
            kw["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": "goman:cluster", "Value": argv[4]}]}]
        r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=n, MaxCount=n,
                              InstanceType="t3.micro", **kw)
        for i, x in enumerate(r["Instances"]):
            print(json.dumps({"instance_id": x["InstanceId"], "n": i}))
    elif cmd == "protect":
        for i in argv[2:]:
            ec2.modify_instance_attribute(InstanceId=i, DisableApiTermination={"Value": True})
    elif cmd == "states":
        want = argv[2:]
        seen = {}
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": want}]):
            for res in page["Reservations"]:
                for x in res["Instances"]:
                    seen[x["InstanceId"]] = x["State"]["Name"]
        for i in want:
            print(i, seen.get(i, "-"))
    elif cmd == "tags":
        r = ec2.describe_instances(InstanceIds=[argv[2]])
        x = r["Reservations"][0]["Instances"][0]
        print(json.dumps({t["Key"]: t["Value"] for t in x.get("Tags", [])}, sort_keys=True))
    elif cmd == "naive-stop":
        bs = int(argv[2])
        ids = [json.loads(l)["instance_id"] for l in sys.stdin if l.strip()]
        ec2.describe_regions()  # timed from a warm connection (an edge for the peer)
        ok = calls = 0
        t0 = time.monotonic()
        for i in range(0, len(ids), bs):
            calls += 1
            try:
                ec2.stop_instances(InstanceIds=ids[i:i + bs])
                ok += len(ids[i:i + bs])
            except ec2.exceptions.ClientError:
                pass
        print(json.dumps({"ok": ok, "calls": calls,
                          "ms": int((time.monotonic() - t0) * 1000)}))
    else:
        sys.exit("usage: batch_instances.py launch|protect|states|tags ...")


if __name__ == "__main__":
    main(sys.argv)
