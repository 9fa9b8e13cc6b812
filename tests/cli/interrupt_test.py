#!/usr/bin/python3
"""tests/cli/interrupt_test.py SBX [named SHIM] - an interrupted command leaves no plaintext.

Issue 14 item 2. Each command that writes plaintext (decrypt, unseal, unpad)
and, for tidiness, encrypt writes a 64 MiB output into an empty directory
OUT and is interrupted while the output is half written:

  - by Ctrl-C typed on a real terminal (a pseudo-terminal: the line
    discipline turns the byte 0x03 into SIGINT for the foreground group);
  - by SIGTERM, SIGHUP and SIGPIPE sent with kill;
  - by SIGKILL (not in the "named" run, the documented weaker case).

Ctrl-C at a passphrase prompt must also restore the terminal's echo and end
sbx by SIGINT (the prompt's handler passes the signal on to sbx's).

"Half written" is observed, not guessed: the test waits until the command's
open output file (seen in /proc/PID/fd) holds at least 4 MiB, stops the
process (SIGSTOP), checks it is still mid-way, sends the signal and lets it
continue. The command must then die of that signal and OUT must be empty.

Then SIGKILL at random moments (20 runs): afterwards every file in OUT is
scanned for the plaintext's marker, and a file holding it must be the
complete, verified output (a kill in the instant of the final rename may
leave it under its temporary name); anything else fails.

With "named SHIM" (sbx runs with LD_PRELOAD=SHIM, tests/no_tmpfile.c: a
filesystem without O_TMPFILE) the outputs are named temporary files and sbx's signal handlers must remove
them. Prints one line per check; exits 1 on any failure.
"""
import hashlib
import os
import pty
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time

SBX = os.path.abspath(sys.argv[1])
NAMED = len(sys.argv) > 3 and sys.argv[2] == "named"
if NAMED:  # only sbx runs under the shim; ASan wants its runtime first, the shim comes first
    os.environ["LD_PRELOAD"] = os.path.abspath(sys.argv[3])
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
SIZE = 64 * 1024 * 1024
HALFWAY = 4 * 1024 * 1024
seed = int(os.environ.get("SBX_TEST_SEED", random.randrange(1 << 32)))
rng = random.Random(seed)
print(f"# seed {seed} (SBX_TEST_SEED to repeat){' - named temporary files' if NAMED else ''}")

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}{': ' + detail if detail else ''}")


W = tempfile.mkdtemp(prefix="sbx-interrupt.")
IN = os.path.join(W, "in")
OUT = os.path.join(W, "out")
os.mkdir(IN)
os.mkdir(OUT)
MARKER = b"SBX-PLAINTEXT-MARKER-%08x" % rng.randrange(1 << 32)


def sbx(*args, **kw):
    return subprocess.run([SBX, *args], check=True, capture_output=True, **kw)


def make_inputs():
    key = os.path.join(IN, "key.txt")
    sbx("keygen", "-o", key)
    recipient = sbx("keygen", "-y", key).stdout.decode().strip()
    block = bytearray()
    while len(block) < 1024 * 1024:  # the marker every 96 bytes: any piece of output holds one
        block += MARKER + b" " + os.urandom(32).hex().encode() + b"\n" + b"." * 29
    plain = bytes(block[: 1024 * 1024]) * (SIZE // (1024 * 1024))
    with open(os.path.join(IN, "plain"), "wb") as f:
        f.write(plain)
    sbx("encrypt", "-r", recipient, "-o", os.path.join(IN, "big.age"), os.path.join(IN, "plain"))
    sbx("pad", "-s", str(SIZE + 4096), "-o", os.path.join(IN, "big.padded"),
        os.path.join(IN, "plain"))
    return key, recipient, hashlib.sha256(plain).hexdigest()


KEY, RECIPIENT, WANT = make_inputs()
OUTPUT = os.path.join(OUT, "big")
COMMANDS = {
    "decrypt": ["decrypt", "-i", KEY, "-o", OUTPUT, os.path.join(IN, "big.age")],
    "unseal": ["unseal", "-i", KEY, "--keep", "-o", OUTPUT, os.path.join(IN, "big.age")],
    "unpad": ["unpad", "-o", OUTPUT, os.path.join(IN, "big.padded")],
    "encrypt": ["encrypt", "-r", RECIPIENT, "-o", OUTPUT, os.path.join(IN, "plain")],
}
PLAINTEXT_WRITERS = ["decrypt", "unseal", "unpad"]


def output_file(pid):
    """(size, name as /proc shows it) of the process's open file in OUT, or None."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        link = f"/proc/{pid}/fd/{fd}"
        try:
            name = os.readlink(link)
            if name.startswith(OUT + "/"):
                return os.stat(link).st_size, name[len(OUT) + 1:]
        except OSError:
            continue
    return None


def expected_kind(name):
    """Named run: a named temporary file; else an unnamed one (no directory entry)."""
    if NAMED:
        return name.startswith(".big.tmp-") and not name.endswith("(deleted)")
    return name.endswith("(deleted)")


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stop_halfway(pid, alive):
    """Wait until pid's output holds HALFWAY bytes, stop it there; False if it ended first
    or the output is not the expected kind of file."""
    while alive():
        f = output_file(pid)
        if f is not None and f[0] >= HALFWAY:
            os.kill(pid, signal.SIGSTOP)
            while alive() and state(pid) not in ("T", "t"):
                time.sleep(0.001)
            f = output_file(pid)
            if f is not None and f[0] < SIZE and expected_kind(f[1]):
                return True
            os.kill(pid, signal.SIGCONT)  # not as expected: let it run to its end
            return False
        time.sleep(0.001)
    return False


def out_entries():
    return sorted(os.listdir(OUT))


def files_with_marker():
    found = []
    for name in out_entries():
        with open(os.path.join(OUT, name), "rb") as f:
            data = f.read()
        if MARKER in data:
            found.append((name, hashlib.sha256(data).hexdigest() == WANT))
    return found


def clear_out():
    for name in out_entries():
        os.unlink(os.path.join(OUT, name))


ATTEMPTS = 5  # a run that ends before the test sees it half written (a busy machine) is redone


def run_killed(cmd, sig):
    """One run of cmd, sent sig half-way: (half-way, status)."""
    p = subprocess.Popen([SBX, *COMMANDS[cmd]], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    halfway = stop_halfway(p.pid, lambda: p.poll() is None)
    if halfway:
        os.kill(p.pid, sig)
        os.kill(p.pid, signal.SIGCONT)
    p.wait()
    return halfway, p.returncode


def run_ctrl_c(cmd):
    """One run of cmd on a pseudo-terminal, Ctrl-C typed half-way: (half-way, status)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(SBX, [SBX, *COMMANDS[cmd]])
    os.set_blocking(master, False)
    status = None

    def alive():
        nonlocal status
        try:
            os.read(master, 65536)  # drain the terminal (progress output)
        except OSError:
            pass
        if status is None:
            got, st = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
            if got == pid and not os.WIFSTOPPED(st):
                status = st
        return status is None

    halfway = stop_halfway(pid, alive)
    if halfway:
        os.write(master, b"\x03")  # Ctrl-C: the terminal signals the foreground group
        os.kill(pid, signal.SIGCONT)
    while alive():
        time.sleep(0.001)
    os.close(master)
    return halfway, -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def interrupt(cmd, sig, how):
    for _ in range(ATTEMPTS):
        halfway, rc = run_ctrl_c(cmd) if how == "Ctrl-C" else run_killed(cmd, sig)
        if halfway:
            break
        clear_out()
    check(f"{cmd}: {how} while the output is half written", halfway)
    check(f"{cmd}: {how} ends sbx by {signal.Signals(sig).name}", rc == -sig, f"exit {rc}")
    leftover = out_entries()
    check(f"{cmd}: {how} leaves nothing in the directory", not leftover, f"left {leftover}")
    clear_out()


def ctrl_c_at_the_passphrase_prompt():
    """The prompt's handler restores echo, then sbx's own handler ends it by SIGINT."""
    pw = os.path.join(IN, "pw")
    with open(pw, "w") as f:
        f.write("correct horse\n")
    enc = os.path.join(IN, "pw.age")
    sbx("encrypt", "--passphrase-file", pw, "--work-factor", "10", "-o", enc,
        os.path.join(IN, "big.padded"))
    pid, master = pty.fork()
    if pid == 0:
        os.execv(SBX, [SBX, "decrypt", "-o", OUTPUT, enc])
    seen = b""
    while b"assphrase" not in seen:
        chunk = os.read(master, 4096)
        if not chunk:
            break
        seen += chunk
    echo_off = not termios.tcgetattr(master)[3] & termios.ECHO
    os.write(master, b"\x03")
    _, status = os.waitpid(pid, 0)
    echo_back = bool(termios.tcgetattr(master)[3] & termios.ECHO)
    os.close(master)
    check("Ctrl-C at the passphrase prompt: echo was off, and is back on", echo_off and echo_back)
    check("Ctrl-C at the passphrase prompt ends sbx by SIGINT",
          os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, f"status {status}")
    check("Ctrl-C at the passphrase prompt leaves nothing", not out_entries())
    clear_out()


def kill_at_random(rounds):
    start = time.monotonic()
    subprocess.run([SBX, *COMMANDS["decrypt"]], check=True, capture_output=True)
    span = time.monotonic() - start  # kills land before, during and after the commit
    clear_out()
    outcomes = {"nothing": 0, "complete": 0}
    for i in range(rounds):
        cmd = PLAINTEXT_WRITERS[i % len(PLAINTEXT_WRITERS)]
        p = subprocess.Popen([SBX, *COMMANDS[cmd]], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, span * 1.2))
        p.kill()
        p.wait()
        found = files_with_marker()
        others = [n for n in out_entries() if n not in [f for f, _ in found]]
        bad = [f for f, complete in found if not complete]
        check(f"kill -9 #{i} ({cmd}): no partial plaintext", not bad and not others,
              f"partial {bad}, other files {others}")
        outcomes["complete" if found else "nothing"] += 1
        clear_out()
    print(f"# kill -9 at random: {outcomes['nothing']} left nothing, "
          f"{outcomes['complete']} the complete output")


try:
    ctrl_c_at_the_passphrase_prompt()
    for cmd in PLAINTEXT_WRITERS + ["encrypt"]:
        interrupt(cmd, signal.SIGINT, "Ctrl-C")
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            interrupt(cmd, sig, "kill -" + signal.Signals(sig).name[3:])
    if not NAMED:
        for cmd in PLAINTEXT_WRITERS:
            interrupt(cmd, signal.SIGKILL, "kill -KILL")
        kill_at_random(int(os.environ.get("SBX_KILL_ROUNDS", "20")))
finally:
    shutil.rmtree(W, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
