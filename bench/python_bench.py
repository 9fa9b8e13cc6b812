"""bench/python_bench.py - the strongbox Python package against its peers, one run.

    bench/python_bench.sh [build-dir]        (BENCH_MB=1024 by default)

Prints, for BENCH_MB MiB of random data in BENCH_DIR (default /dev/shm):
  1. strongbox.encrypt_file against `sbx encrypt` (same recipient, same input),
     and strongbox.decrypt_file against `sbx decrypt`;
  2. strongbox.open(...,"wb") / ("rb") against Debian's python3-cryptography
     ChaCha20Poly1305 sealing the same data in a 64 KiB chunk loop (a
     framing-free lower bound of what a hand-written Python loop costs);
  3. strongbox.TemporaryFile against tempfile.TemporaryFile: sequential write
     then read in 1 MiB calls.
Each figure is the best of BENCH_RUNS (default 3); ratios are strongbox / peer
time (below 1 means strongbox is faster).
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import strongbox

MB = int(os.environ.get("BENCH_MB", "1024"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DIR = os.environ.get("BENCH_DIR", "/dev/shm")
SBX = sys.argv[1] if len(sys.argv) > 1 else "build/sbx"
CHUNK = 1 << 20


def cpu_seconds():
    """CPU time of this process (all threads) and of its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def best(fn):
    """(best wall time, best CPU time) of RUNS runs: on a shared machine the
    CPU time is the steadier figure."""
    wall, cpu = [], []
    for _ in range(RUNS):
        t0, c0 = time.perf_counter(), cpu_seconds()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds() - c0)
    return min(wall), min(cpu)


def line(what, ours, peer, peer_name):
    mbps = lambda s: MB * 1.048576 / s  # noqa: E731 (MB/s, 10^6 bytes)
    print(f"{what:<38} strongbox {ours[0]:7.3f} s ({mbps(ours[0]):6.0f} MB/s)   {peer_name} "
          f"{peer[0]:7.3f} s ({mbps(peer[0]):6.0f} MB/s)   ratio {ours[0] / peer[0]:5.2f}   "
          f"CPU {ours[1]:6.2f} s / {peer[1]:6.2f} s = {ours[1] / peer[1]:5.2f}")


def main():
    work = tempfile.mkdtemp(prefix="sbx-pybench-", dir=DIR)
    try:
        src = os.path.join(work, "in.bin")
        with open(src, "wb") as f:
            for _ in range(MB):
                f.write(os.urandom(CHUNK))
        ident = strongbox.x25519.Identity.generate()
        rec = ident.to_public()
        keyfile = os.path.join(work, "key.txt")
        with os.fdopen(os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(str(ident) + "\n")
        a, b = os.path.join(work, "a.age"), os.path.join(work, "b.age")
        print(f"{MB} MiB in {DIR}, best of {RUNS}; {os.cpu_count()} CPUs")

        ours = best(lambda: strongbox.encrypt_file(src, a, [rec]))
        peer = best(lambda: subprocess.run([SBX, "encrypt", "-r", str(rec), "-o", b, src],
                                           check=True))
        line("encrypt_file vs sbx encrypt", ours, peer, "sbx")
        out = os.path.join(work, "out.bin")

        def dec_ours():
            if os.path.exists(out):
                os.unlink(out)
            strongbox.decrypt_file(a, out, [ident])

        def dec_sbx():
            if os.path.exists(out):
                os.unlink(out)
            subprocess.run([SBX, "decrypt", "-i", keyfile, "-o", out, b], check=True)

        line("decrypt_file vs sbx decrypt", best(dec_ours), best(dec_sbx), "sbx")

        try:
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        except ImportError:
            print("python3-cryptography not installed: ChaCha20Poly1305 loop skipped")
        else:
            key = ChaCha20Poly1305.generate_key()
            aead = ChaCha20Poly1305(key)

            def crypto_loop():
                with open(src, "rb") as fin, open(os.path.join(work, "c.bin"), "wb") as fout:
                    n = 0
                    while True:
                        block = fin.read(65536)
                        if not block:
                            break
                        fout.write(aead.encrypt(n.to_bytes(12, "big"), block, None))
                        n += 1

            def stream_ours():
                with open(src, "rb") as fin, strongbox.open(a, "wb", recipients=[rec]) as fout:
                    shutil.copyfileobj(fin, fout, CHUNK)

            line("open('wb') vs ChaCha20Poly1305 loop", best(stream_ours), best(crypto_loop),
                 "cryptography")

            def crypto_read():
                with open(os.path.join(work, "c.bin"), "rb") as fin:
                    n = 0
                    while True:
                        block = fin.read(65536 + 16)
                        if not block:
                            break
                        aead.decrypt(n.to_bytes(12, "big"), block, None)
                        n += 1

            def stream_read():
                with strongbox.open(a, "rb", identities=[ident]) as f:
                    while f.read(CHUNK):
                        pass

            line("open('rb') vs ChaCha20Poly1305 loop", best(stream_read), best(crypto_read),
                 "cryptography")

        buf = os.urandom(CHUNK)

        def seq(factory):
            def run():
                with factory(dir=DIR) as f:
                    for _ in range(MB):
                        f.write(buf)
                    f.seek(0)
                    while f.read(CHUNK):
                        pass
            return run

        line("TemporaryFile write+read sequential", best(seq(strongbox.TemporaryFile)),
             best(seq(tempfile.TemporaryFile)), "tempfile")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
