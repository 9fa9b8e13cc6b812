#!/usr/bin/env python3
"""tests/cli/progress_width_test.py - the progress bar of sbx encrypt and sbx
decrypt never draws a line wider than the terminal (issue 14, item 12).

sbx runs with its standard error on a pseudo-terminal whose window size is set
with TIOCSWINSZ (50 and 20 columns, and a tiny 6); every status line it draws
(the text between carriage returns and newlines, escape sequences removed) must
fit. Then a window resized while sbx runs: sbx is stopped, the window shrinks
to 20 columns, sbx continues, and every line drawn after that fits 20.

    python3 tests/cli/progress_width_test.py build/sbx
"""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios

SBX = os.path.realpath(sys.argv[1])
passed = failed = 0


def result(name, good, detail=""):
    global passed, failed
    if good:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}")
        if detail:
            print(f"       {detail}")


def set_width(fd, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))


def drain(fd, timeout):
    """What the pty holds now, waiting at most timeout seconds for the first byte."""
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return out
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            return out
        if not chunk:
            return out
        out += chunk
        timeout = 0.05


def lines(data):
    text = re.sub(rb"\x1b\[[0-9;]*[A-Za-z]", b"", data).decode("utf-8", "replace")
    return [s for s in re.split(r"[\r\n]", text) if s]


def start(args, cols):
    master, slave = os.openpty()
    set_width(slave, cols)
    proc = subprocess.Popen([SBX] + args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, close_fds=True)
    os.close(slave)
    return proc, master


def run(args, cols):
    proc, master = start(args, cols)
    out = b""
    while proc.poll() is None or True:
        chunk = drain(master, 0.5)
        out += chunk
        if proc.poll() is not None and not chunk:
            break
    os.close(master)
    return proc.wait(), out


def main():
    work = tempfile.mkdtemp(prefix="sbx-progress-")
    os.chdir(work)
    subprocess.run([SBX, "keygen", "-o", "key.txt"], check=True, stderr=subprocess.DEVNULL)
    recipient = subprocess.run([SBX, "keygen", "-y", "key.txt"], check=True,
                               capture_output=True, text=True).stdout.strip()
    with open("big.bin", "wb") as f:  # over PROGRESS_MIN_BYTES (8 MiB): the bar is drawn
        f.write(os.urandom(1 << 20) * 48)
    encrypt = ["encrypt", "-j", "1", "-r", recipient, "-o", "big.age", "big.bin"]
    decrypt = ["decrypt", "-j", "1", "-i", "key.txt", "-o", "big.out", "big.age"]

    for cols in (50, 20, 6):
        for name, args in (("encrypt", encrypt), ("decrypt", decrypt)):
            rc, out = run(args, cols)
            drawn = lines(out)
            result(f"{name} at {cols} columns: exit 0", rc == 0, out[-300:])
            result(f"{name} at {cols} columns: a status line is drawn", len(drawn) > 0)
            wide = [s for s in drawn if len(s) > cols]
            result(f"{name} at {cols} columns: no line is wider than the terminal", not wide,
                   f"{len(wide)} of {len(drawn)} lines too wide, e.g. {wide[:1]!r}")
    with open("big.bin", "rb") as a, open("big.out", "rb") as b:
        result("the round trip under the bar gives the original bytes", a.read() == b.read())

    rc, out = run(encrypt[:-3] + ["-o", "wide.age", "big.bin"], 200)
    drawn = lines(out)
    result("at 200 columns the bar is drawn in full",
           any("[" + "#" * 30 + "]" in s for s in drawn), drawn[-1:])

    # Resized while running: the ciphertext goes to a pipe read slowly, so that sbx
    # draws many lines; once one is drawn at 120 columns, sbx is stopped, the window
    # shrinks to 20 columns and sbx continues: every later line must fit in 20.
    master, slave = os.openpty()
    set_width(slave, 120)
    proc = subprocess.Popen([SBX] + encrypt[:-3] + ["big.bin"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, close_fds=True)
    os.close(slave)
    before, after, resized = b"", b"", False
    while True:
        ready, _, _ = select.select([master, proc.stdout], [], [], 1)
        if master in ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if resized:
                after += chunk
            else:
                before += chunk
            if not resized and lines(before) and b"\n" not in before:
                proc.send_signal(signal.SIGSTOP)
                before += drain(master, 0.2)
                set_width(master, 20)
                resized = True
                proc.send_signal(signal.SIGCONT)
        if proc.stdout in ready:
            if not os.read(proc.stdout.fileno(), 16384):
                break
            select.select([], [], [], 0.002)  # a slow reader: sbx draws many lines
    after += drain(master, 0.5)
    os.close(master)
    result("resized run: exit 0", proc.wait() == 0)
    result("before the resize: lines as wide as 120 columns allow",
           any(len(s) > 50 for s in lines(before)), lines(before)[:1])
    drawn = lines(after)
    result("after a resize to 20 columns: lines are drawn", resized and len(drawn) > 0)
    wide = [s for s in drawn if len(s) > 20]
    result("after a resize to 20 columns: no line is wider than 20", not wide, wide[:1])

    subprocess.run(["rm", "-rf", work], check=False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
