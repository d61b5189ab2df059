#!/usr/bin/env python3
"""bench/caps_endpoint.py - a stand-in EC2 endpoint for bench/31-shared-caps.sh.

  caps_endpoint.py PORTFILE MODE [DELAY_MS]
MODE dead: every request waits DELAY_MS, then gets 500 InternalError (a service that is
down but still accepts connections). MODE ok: every request gets a DescribeRegions answer
after DELAY_MS. GET /__count answers the number of requests seen and the most that were
in flight at once ("N PEAK"); POST /__reset zeroes both. Threaded: requests overlap.
"""
import http.server
import socketserver
import sys
import threading
import time

PORTFILE, MODE = sys.argv[1], sys.argv[2]
DELAY = int(sys.argv[3]) / 1000.0 if len(sys.argv) > 3 else 0.0
LOCK = threading.Lock()
COUNT = {"n": 0, "now": 0, "peak": 0}

OK = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
      b'<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
      b'<requestId>r-1</requestId><regionInfo><item><regionName>us-east-1</regionName>'
      b'<regionEndpoint>ec2.us-east-1.amazonaws.com</regionEndpoint></item></regionInfo>'
      b'</DescribeRegionsResponse>')
DEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        b'<Code>InternalError</Code><Message>down</Message></Error></Errors>'
        b'<RequestID>r-1</RequestID></Response>')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            body = ("%d %d\n" % (COUNT["n"], COUNT["peak"])).encode()
        self.send(200, body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path.startswith("/__reset"):
            with LOCK:
                COUNT.update(n=0, peak=0)
            return self.send(200, b"ok\n")
        with LOCK:
            COUNT["n"] += 1
            COUNT["now"] += 1
            COUNT["peak"] = max(COUNT["peak"], COUNT["now"])
        try:
            if DELAY:
                time.sleep(DELAY)
            self.send(500, DEAD) if MODE == "dead" else self.send(200, OK)
        finally:
            with LOCK:
                COUNT["now"] -= 1


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


srv = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
