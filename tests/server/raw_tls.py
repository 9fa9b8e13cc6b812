#!/usr/bin/python3
"""tests/server/raw_tls.py - send raw bytes to the key server over TLS, print what comes back.

    raw_tls.py PORT CA_FILE < request-bytes

Sends stdin as is (no HTTP library in between, so malformed framing stays
malformed) and keeps the connection open, as a client does that waits for an
answer before sending the rest of its body. Then reads until the server
closes the connection or 5 s pass without a byte, and writes the raw
response bytes to stdout; stderr gets "first byte after S s" (how long the
answer took). Exit status 0 when the server closed the connection, 3 when it
was still open at the timeout.
"""
import socket
import ssl
import sys
import time


def main():
    port, ca = int(sys.argv[1]), sys.argv[2]
    data = sys.stdin.buffer.read()
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the test certificate names 127.0.0.1 or localhost
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(data)
    s.settimeout(5)
    out = b""
    closed = False
    t0 = time.monotonic()
    first = None
    while True:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        except (ConnectionResetError, ssl.SSLError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        if first is None:
            first = time.monotonic() - t0
        out += chunk
    sys.stdout.buffer.write(out)
    if first is not None:
        sys.stderr.write("first byte after %.2f s\n" % first)
    return 0 if closed else 3


if __name__ == "__main__":
    sys.exit(main())
