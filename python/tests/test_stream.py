"""strongbox.open(): streams in constant memory, seek reads, file objects."""
import io
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import strongbox


@pytest.fixture()
def ident():
    return strongbox.x25519.Identity.generate()


def test_path_round_trip_with_copyfileobj(tmp_path, ident):
    data = os.urandom(1_000_003)
    with strongbox.open(tmp_path / "f.age", "wb", recipients=[ident.to_public()]) as f:
        shutil.copyfileobj(io.BytesIO(data), f)
    assert strongbox.decrypt((tmp_path / "f.age").read_bytes(), [ident]) == data
    out = io.BytesIO()
    with strongbox.open(tmp_path / "f.age", "rb", identities=[ident]) as f:
        shutil.copyfileobj(f, out)
    assert out.getvalue() == data


def test_file_objects_and_armor(ident):
    data = os.urandom(300_000)
    sink = io.BytesIO()
    with strongbox.open(sink, "wb", recipients=[ident.to_public()], armored=True) as f:
        for i in range(0, len(data), 7777):
            f.write(data[i:i + 7777])
    assert not sink.closed  # like gzip: a caller's file object stays open
    blob = sink.getvalue()
    assert blob.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    with strongbox.open(io.BytesIO(blob), "rb", identities=[ident]) as f:
        buf = bytearray(1000)
        n = f.readinto(buf)
        assert bytes(buf[:n]) == data[:n]
        assert f.read() == data[n:]


def test_seek_reads_decrypt_ranges(tmp_path, ident):
    data = os.urandom(5 * 65536 + 123)
    p = tmp_path / "s.age"
    strongbox.encrypt_file  # noqa: B018 (the path form is tested elsewhere)
    p.write_bytes(strongbox.encrypt(data, [ident.to_public()]))
    with strongbox.open(p, "rb", identities=[ident]) as f:
        assert f.seekable()
        assert f.read(10) == data[:10]
        for off, n in ((65530, 20), (3 * 65536, 65536), (0, 5), (len(data) - 7, 100)):
            assert f.seek(off) == off
            assert f.read(n) == data[off:off + n]
            assert f.tell() == min(off + n, len(data))
        assert f.seek(-50, io.SEEK_END) == len(data) - 50
        assert f.read() == data[-50:]
    with open(p, "rb") as raw, strongbox.open(raw, "rb", identities=[ident]) as f:
        f.seek(70000)
        assert f.read(10) == data[70000:70010]


def test_tampered_chunk_fails_on_read_and_seek(tmp_path, ident):
    data = os.urandom(3 * 65536)
    blob = bytearray(strongbox.encrypt(data, [ident.to_public()]))
    blob[-70000] ^= 1
    p = tmp_path / "t.age"
    p.write_bytes(bytes(blob))
    with strongbox.open(p, "rb", identities=[ident]) as f:
        with pytest.raises(strongbox.DecryptError):
            f.read()
    with strongbox.open(p, "rb", identities=[ident]) as f:
        f.seek(0)
        assert f.read(1000) == data[:1000]
        with pytest.raises(strongbox.DecryptError):
            f.seek(2 * 65536 - 10)
            f.read(100)


def test_wrong_key_fails_at_open(tmp_path, ident):
    p = tmp_path / "w.age"
    p.write_bytes(strongbox.encrypt(b"x", [ident.to_public()]))
    with pytest.raises(strongbox.DecryptError):
        strongbox.open(p, "rb", identities=[strongbox.x25519.Identity.generate()])


def test_exception_in_with_leaves_no_file(tmp_path, ident):
    p = tmp_path / "never.age"
    with pytest.raises(RuntimeError):
        with strongbox.open(p, "wb", recipients=[ident.to_public()]) as f:
            f.write(b"partial" * 100000)
            raise RuntimeError("stop")
    assert not p.exists()
    assert os.listdir(tmp_path) == []
    with pytest.raises(KeyError):  # small writes still in the buffer: the same
        with strongbox.open(p, "wb", recipients=[ident.to_public()]) as f:
            f.write(b"in the buffer")
            raise KeyError("stop")
    assert os.listdir(tmp_path) == []


def test_python_file_object_errors_propagate(ident):
    class Broken(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as e:
        with strongbox.open(Broken(), "wb", recipients=[ident.to_public()]) as f:
            f.write(b"x" * 300_000)
    assert e.value.errno == 28


def test_bad_modes_and_missing_keys(ident):
    with pytest.raises(ValueError):
        strongbox.open(io.BytesIO(), "ab", recipients=[ident.to_public()])
    with pytest.raises(ValueError):
        strongbox.open(io.BytesIO(), "wb")
    with pytest.raises(ValueError):
        strongbox.open(io.BytesIO(), "rb")


def test_100_mib_through_open_in_constant_memory(tmp_path):
    """100 MiB encrypted and decrypted through strongbox.open in a fresh
    process; its peak RSS must stay far below the data size."""
    script = textwrap.dedent(f"""
        import os, resource, strongbox
        ident = strongbox.x25519.Identity.generate()
        chunk = os.urandom(1 << 20)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with strongbox.open({str(tmp_path / 'big.age')!r}, "wb", recipients=[ident.to_public()]) as f:
            for _ in range(100):
                f.write(chunk)
        n = 0
        with strongbox.open({str(tmp_path / 'big.age')!r}, "rb", identities=[ident]) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                assert b == chunk
                n += len(b)
        assert n == 100 << 20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(base, peak)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    base, peak = int(out[0]), int(out[1])
    print(f"RSS before {base} KiB, peak {peak} KiB over 100 MiB")
    assert peak - base < 48 * 1024, (base, peak)


def test_the_gil_is_released_while_crypto_runs(tmp_path, ident):
    """With a switch interval of 100 s the interpreter never takes the GIL
    away from the main thread, so the other thread can count only while a
    call of ours has released it."""
    import sys
    import threading

    data = os.urandom(32 << 20)
    state = {"n": 0, "done": False}

    def spin():
        while not state["done"]:
            state["n"] += 1
            time.sleep(0)  # hands the GIL back to the main thread at once

    calls = {
        "encrypt": lambda: strongbox.encrypt(data, [ident.to_public()]),
        "open(wb).write": lambda: _stream_write(tmp_path / "g.age", ident, data),
        "TemporaryFile.write": lambda: strongbox.TemporaryFile(buffering=0).write(data),
    }
    old = sys.getswitchinterval()
    sys.setswitchinterval(100)
    try:
        for name, call in calls.items():
            state.update(n=0, done=False)
            t = threading.Thread(target=spin)
            t.start()
            before = state["n"]
            call()
            during = state["n"] - before
            state["done"] = True
            t.join()
            assert during > 0, f"{name} held the GIL"
    finally:
        sys.setswitchinterval(old)


def _stream_write(path, ident, data):
    f = strongbox.open(path, "wb", recipients=[ident.to_public()])
    f.write(data)
    f.raw.abort()
    f.close()
