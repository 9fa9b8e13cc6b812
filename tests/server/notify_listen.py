#!/usr/bin/env python3
"""tests/server/notify_listen.py - a fake systemd notification socket.

  notify_listen.py SOCKET OUT

Binds a unix datagram socket at SOCKET (what NOTIFY_SOCKET names) and appends
every line of every datagram received to OUT, flushed at once, until killed.
"""
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
with open(sys.argv[2], "a", encoding="utf-8") as out:
    out.write("BOUND\n")
    out.flush()
    while True:
        data = sock.recv(65536)
        for line in data.decode("utf-8", "replace").splitlines():
            out.write(line + "\n")
        out.flush()
