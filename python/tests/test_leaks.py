"""10,000 iterations of encrypt/decrypt/TemporaryFile leave RSS flat."""
import os

import strongbox


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def work(ident, rec, data):
    blob = strongbox.encrypt(data, [rec])
    assert strongbox.decrypt(blob, [ident]) == data
    with strongbox.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        assert f.read() == data


def test_ten_thousand_iterations_leave_rss_flat():
    ident = strongbox.x25519.Identity.generate()
    rec = ident.to_public()
    data = os.urandom(1000)
    for _ in range(500):  # warm up: allocator pools, thread stacks
        work(ident, rec, data)
    before = rss_kib()
    for _ in range(10_000):
        work(ident, rec, data)
    after = rss_kib()
    print(f"RSS {before} KiB -> {after} KiB over 10,000 iterations")
    assert after - before < 4096, (before, after)
