#!/usr/bin/env python3
"""tests/server/tls_reload.py - the SIGHUP certificate test of config_test.sh.

  tls_reload.py PORT PID LOG NEW_CERT NEW_KEY CERT KEY

Opens a keep-alive TLS connection to 127.0.0.1:PORT and makes a request,
copies NEW_CERT/NEW_KEY over CERT/KEY, sends SIGHUP to PID, waits (up to 20 s)
for the "reloaded" line in LOG, then prints, one per line:
  old-before SHA256   the certificate the open connection got
  new SHA256          the certificate a new connection gets
  old-after STATUS    the status of a second request on the open connection
"""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import sys
import time


def request(tls):
    tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = tls.recv(4096)
        if not chunk:
            break
        body += chunk
    return head.split(b" ")[1].decode()


def connect(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    return tls, hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def main():
    port, pid, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    new_cert, new_key, cert, key = sys.argv[4:8]
    old, fpr_old = connect(port)
    print("old-status", request(old))
    print("old-before", fpr_old)
    with open(log, "rb") as f:
        before = f.read().count(b'"reloaded')
    shutil.copyfile(new_key, key + ".tmp")
    os.replace(key + ".tmp", key)
    shutil.copyfile(new_cert, cert + ".tmp")
    os.replace(cert + ".tmp", cert)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            if f.read().count(b'"reloaded') > before:
                break
        time.sleep(0.05)
    new, fpr_new = connect(port)
    print("new", fpr_new)
    print("new-status", request(new))
    new.close()
    print("old-after", request(old))
    old.close()


main()
