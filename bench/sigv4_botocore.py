#!/usr/bin/env python3
"""Peer for bench/sigv4_bench.c: botocore's SigV4Auth.add_auth on the same EC2 POST.

Prints "SIG <hex>" for the request signed at 2015-08-30T12:36:00Z (must equal goman's) and
"RESULT botocore <ns_per_op> <ops_per_s>", timed in CPU time like the C side.
A fresh AWSRequest per call is not made: add_auth re-signs the same request (as a retry
does), which is also what the C side does with its header list.
"""
import datetime, sys, time
from unittest import mock

import botocore.auth as A
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

URL = "https://ec2.us-east-1.amazonaws.com/"
BODY = ("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Agoman%3Acluster"
        "&Filter.1.Value.1=demo&Filter.2.Name=instance-state-name&Filter.2.Value.1=running"
        "&MaxResults=100")
CTYPE = "application/x-www-form-urlencoded; charset=utf-8"
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def request():
    return AWSRequest(method="POST", url=URL, data=BODY, headers={"Content-Type": CTYPE})


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    auth = A.SigV4Auth(creds, "ec2", "us-east-1")
    r = request()
    with mock.patch.object(A, "get_current_datetime",
                           return_value=datetime.datetime(2015, 8, 30, 12, 36, 0)):
        auth.add_auth(r)
    print("SIG", r.headers["Authorization"].rsplit("Signature=", 1)[1])
    r = request()
    best = None
    for _ in range(2):
        n, t0 = 0, time.process_time()
        while True:
            for _ in range(200):
                auth.add_auth(r)
            n += 200
            t = time.process_time() - t0
            if t >= secs / 2:
                break
        ns = t * 1e9 / n
        print(f"RESULT botocore {ns:.1f} {n / t:.0f}")


if __name__ == "__main__":
    main()
