#!/usr/bin/env python3
"""Writes goman's own SigV4 cases (the AWS suite's layout) with expected values from botocore.

Run once, by hand, when a case is added:  python3 tests/vectors/sigv4/botocore-gen.py
The unit test (tests/unit/test_sigv4.c) only reads the files; botocore is not needed to test.
"""
import datetime, json, os, sys
from urllib.parse import quote
from unittest import mock

import botocore.auth as A
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes=="
WHEN = datetime.datetime(2015, 8, 30, 12, 36, 0)
BUCKET = "examplebucket.s3.amazonaws.com"


def s3key(k):  # how botocore puts an S3 key on the wire
    return "/" + quote(k, safe="/~")


# name, method, host, wire path(+query), extra headers, body, s3, token, unsigned, modes, note
CASES = [
    ("s3-key-plus-space", "PUT", BUCKET, s3key("a+b c.txt"), [("Content-Type", "text/plain")],
     b"hello", True, None, False, ("header", "query"), "S3 key with '+' and space"),
    ("s3-key-double-slash", "GET", BUCKET, s3key("dir//sub/./file"), [], b"", True, None, False,
     ("header", "query"), "S3 key with '//' and '/./': no normalisation"),
    ("s3-key-percent", "GET", BUCKET, s3key("100%.txt"), [], b"", True, None, False,
     ("header", "query"), "S3 key with a literal '%'"),
    ("s3-key-unicode", "GET", BUCKET, s3key("\u00fcn\u00ef/\u65e5\u672c.txt"), [], b"", True, None,
     False, ("header", "query"), "S3 key with non-ASCII characters"),
    ("s3-bare-query-key", "POST", BUCKET, s3key("big.bin") + "?uploads", [], b"", True, None,
     False, ("header", "query"), "bare query key (?uploads) signs as 'uploads='"),
    ("repeated-query-keys", "GET", "example.amazonaws.com", "/?b=1&a=2&a=1&c", [], b"", False,
     None, False, ("header",), "repeated query keys kept and sorted by value"),
    ("double-encode-non-s3", "GET", "example.amazonaws.com", "/a%20b/./c//d", [], b"", False,
     None, False, ("header",), "non-S3 path: normalised, then encoded again"),
    ("s3-presign-session-token", "GET", BUCKET, s3key("photos/cat.jpg"), [], b"", True, TOKEN,
     False, ("header", "query"), "session token: signed header, or signed query parameter"),
    ("s3-unsigned-payload", "PUT", BUCKET, s3key("big.bin"), [], b"x" * 100, True, None, True,
     ("header", "query"), "UNSIGNED-PAYLOAD in header mode"),
]


class Capture:
    def wrap(self, cls):
        cap = self

        class W(cls):
            def canonical_request(self, request):
                cap.cr = super().canonical_request(request)
                return cap.cr

            def string_to_sign(self, request, canonical_request):
                cap.sts = super().string_to_sign(request, canonical_request)
                return cap.sts

            def signature(self, string_to_sign, request):
                cap.sig = super().signature(string_to_sign, request)
                return cap.sig
        return W


def sign(mode, method, host, path, headers, body, s3, token, unsigned):
    creds = Credentials(AKID, SECRET, token)
    cap = Capture()
    svc = "s3" if s3 else "service"
    if mode == "header":
        cls = cap.wrap(A.S3SigV4Auth if s3 else A.SigV4Auth)
        auth = cls(creds, svc, "us-east-1")
    else:
        cls = cap.wrap(A.S3SigV4QueryAuth if s3 else A.SigV4QueryAuth)
        auth = cls(creds, svc, "us-east-1", expires=3600)
        body = b""  # botocore would move a body into the query string; S3 presign ignores it
    req = AWSRequest(method=method, url="https://" + host + path, data=body,
                     headers=dict([("Host", host)] + list(headers)))
    req.context["client_config"] = Config(s3={"payload_signing_enabled": not unsigned})
    with mock.patch.object(A, "get_current_datetime", return_value=WHEN):
        auth.add_auth(req)
    return cap


def main():
    for (name, method, host, path, headers, body, s3, token, unsigned, modes, note) in CASES:
        d = os.path.join(HERE, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "request.txt"), "wb") as f:
            lines = [f"{method} {path} HTTP/1.1", f"Host:{host}"] + [f"{k}:{v}" for k, v in headers]
            f.write(("\n".join(lines) + "\n\n").encode() + body)
        ctx = {"credentials": {"access_key_id": AKID, "secret_access_key": SECRET},
               "expiration_in_seconds": 3600, "normalize": not s3, "region": "us-east-1",
               "service": "s3" if s3 else "service", "sign_body": False,
               "timestamp": "2015-08-30T12:36:00Z", "s3": s3, "unsigned_payload": unsigned,
               "note": note}
        if token:
            ctx["credentials"]["token"] = token
        with open(os.path.join(d, "context.json"), "w") as f:
            json.dump(ctx, f, indent=4)
            f.write("\n")
        for mode in ("header", "query"):
            for part in ("canonical-request", "string-to-sign", "signature"):
                p = os.path.join(d, f"{mode}-{part}.txt")
                if os.path.exists(p):
                    os.unlink(p)
            if mode not in modes:
                continue
            cap = sign(mode, method, host, path, headers, body, s3, token, unsigned)
            for part, val in (("canonical-request", cap.cr), ("string-to-sign", cap.sts),
                              ("signature", cap.sig)):
                with open(os.path.join(d, f"{mode}-{part}.txt"), "w") as f:
                    f.write(val)
        print(name, file=sys.stderr)


if __name__ == "__main__":
    main()
