#!/usr/bin/env python3
"""tests/kms/fake_kms.py - a scripted HTTPS server for the client's retry tests.

    fake_kms.py CERT KEY DIR

Listens on 127.0.0.1 (a free port, written to DIR/port). Each request gets the
next status from DIR/plan (one number per line, consumed from the top; when
empty: 200) and is counted as one line "METHOD PATH" appended to DIR/log.
A 200 answers {"status": "ok", "keys": [], "name": "k", ...}; others
{"error": "scripted STATUS"}. Stops on SIGTERM.
"""
import http.server
import json
import os
import ssl
import sys

cert, key, d = sys.argv[1:4]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with open(os.path.join(d, "log"), "a") as f:
            f.write(f"{self.command} {self.path}\n")
        plan = os.path.join(d, "plan")
        status = 200
        with open(plan) as f:
            lines = f.read().split()
        if lines:
            status = int(lines[0])
            with open(plan, "w") as f:
                f.write("\n".join(lines[1:]))
        body = {"status": "ok", "keys": [], "name": "k"} if status == 200 else {
            "error": f"scripted {status}"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = answer


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(os.path.join(d, "plan"), "a").close()
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
srv.serve_forever()
