"""strongbox.TemporaryFile against tempfile.TemporaryFile; EphemeralFile."""
import io
import os
import random
import tempfile

import pytest

import strongbox

SEED = int(os.environ.get("SBX_TEST_SEED", random.randrange(1 << 30)))


def apply(f, op, args):
    try:
        if op == "write":
            return ("ok", f.write(args))
        if op == "read":
            return ("ok", f.read(args))
        if op == "seek":
            return ("ok", f.seek(*args))
        if op == "tell":
            return ("ok", f.tell())
        if op == "truncate":
            return ("ok", f.truncate(args))
        if op == "flush":
            return ("ok", f.flush())
        if op == "readline":
            return ("ok", f.readline())
    except (OSError, ValueError) as e:
        return ("err", type(e).__name__)
    raise AssertionError(op)


def random_ops(rng, n, text):
    alphabet = "abcé\n\u20ac" if text else None
    for _ in range(n):
        op = rng.choice(["write", "write", "read", "read", "seek", "tell", "truncate", "flush",
                         "readline"])
        if op == "write":
            k = rng.choice([0, 1, 7, 100, 4095, 4096, 4097, 20000])
            yield op, ("".join(rng.choice(alphabet) for _ in range(k)) if text
                       else rng.randbytes(k))
        elif op == "read":
            yield op, rng.choice([-1, 0, 1, 10, 4096, 9000])
        elif op == "seek":
            if text:  # text files seek only to 0, to the end, or to a tell() cookie
                yield op, rng.choice([(0,), (0, io.SEEK_END)])
            else:
                yield op, rng.choice([(rng.randrange(30000),), (rng.randrange(-50, 50), 1),
                                      (rng.randrange(-100, 100), 2)])
        elif op == "truncate":
            yield op, (None if text else rng.randrange(30000))
        else:
            yield op, None


@pytest.mark.parametrize("text", [False, True])
def test_matches_tempfile_on_thousands_of_random_ops(text):
    rng = random.Random(SEED)
    print(f"seed {SEED} (replay with SBX_TEST_SEED={SEED})")
    mode = "w+" if text else "w+b"
    kw = {"encoding": "utf-8", "newline": ""} if text else {}
    for round_ in range(6):
        with strongbox.TemporaryFile(mode, **kw) as a, tempfile.TemporaryFile(mode, **kw) as b:
            for i, (op, args) in enumerate(random_ops(rng, 700, text)):
                ra, rb = apply(a, op, args), apply(b, op, args)
                assert ra == rb, (round_, i, op, args)
            assert apply(a, "seek", (0,)) == apply(b, "seek", (0,))
            assert apply(a, "read", -1) == apply(b, "read", -1)


def test_modes_buffering_and_attributes():
    with strongbox.TemporaryFile() as f:
        assert isinstance(f, io.BufferedRandom)
        assert f.fileno() >= 3 and f.seekable() and f.readable() and f.writable()
    with strongbox.TemporaryFile("w+", encoding="utf-8") as f:
        f.write("line one\nline two\n")
        f.seek(0)
        assert f.readlines() == ["line one\n", "line two\n"]
        assert f.mode == "w+"
    with strongbox.TemporaryFile("wb") as f:
        f.write(b"abc")
        with pytest.raises(io.UnsupportedOperation):
            f.read()
    with strongbox.TemporaryFile(buffering=0) as f:
        assert f.write(b"unbuffered") == 10
        f.seek(2)
        assert f.read(3) == b"buf"
    with strongbox.TemporaryFile("a+b") as f:
        f.write(b"123")
        f.seek(0)
        f.write(b"45")
        f.seek(0)
        assert f.read() == b"12345"
    with pytest.raises(ValueError):
        strongbox.TemporaryFile("w+", buffering=0)
    with pytest.raises(ValueError):
        strongbox.TemporaryFile("rw")
    f = strongbox.TemporaryFile()
    f.close()
    with pytest.raises(ValueError):
        f.write(b"x")


def disk(f):
    f.flush()
    f.raw._t.flush()  # up to 8 dirty blocks wait in locked memory
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


@pytest.mark.parametrize("mode", ["w+b", "w+"])
def test_marker_never_reaches_the_descriptor(mode):
    marker = "SECRET-MARKER-1234567890"
    with strongbox.TemporaryFile(mode) as f:
        for _ in range(3000):
            f.write(marker if "b" not in mode else marker.encode())
        f.seek(12345)
        f.write(marker if "b" not in mode else marker.encode())
        raw = disk(f.buffer if "b" not in mode else f)
        raw = raw if raw else b""
        assert len(raw) > 3000 * len(marker)
        assert marker.encode() not in raw
        assert marker[:8].encode() not in raw


def test_tampered_descriptor_raises_decrypt_error():
    with strongbox.TemporaryFile(buffering=0) as f:
        f.write(os.urandom(3 * 4096))
        f._t.flush()
        fd = f.fileno()
        b = bytearray(os.pread(fd, 1, 5000))
        b[0] ^= 1
        os.pwrite(fd, bytes(b), 5000)
        f.seek(0)
        assert len(f.read(4096)) == 4096  # block 0 is intact
        with pytest.raises(strongbox.DecryptError):
            f.read(4096)


@pytest.mark.parametrize("key_size", [16, 24, 32])
def test_ephemeral_file_key_sizes_and_read_ciphertext(key_size):
    with strongbox.EphemeralFile(key_size=key_size) as f:
        f.write(b"ephemeral" * 2000)
        f.seek(0)
        ct = f.read_ciphertext()
        assert len(ct) == 5 * (12 + 4096 + 16)
        assert b"ephemeral" not in ct
        f.seek(4096 + 10)
        assert f.read_ciphertext(100) == ct[4124:4224]
        assert f.tell() == 4106
        assert f.read(9) == (b"ephemeral" * 2000)[4106:4115]
    with strongbox.EphemeralFile("w+t", key_size=16) as t:
        t.write("text")
        assert len(t.read_ciphertext()) == 4124
    with strongbox.EphemeralFile(buffering=0, key_size=24) as r:
        r.write(b"raw")
        assert len(r.read_ciphertext()) == 4124
    with pytest.raises(ValueError):
        strongbox.EphemeralFile(key_size=20)


def test_dir_argument(tmp_path):
    with strongbox.TemporaryFile(dir=tmp_path) as f:
        f.write(b"x")
        assert os.listdir(tmp_path) == []  # the file never has a name
    with pytest.raises(OSError):
        strongbox.TemporaryFile(dir=tmp_path / "missing")


def test_a_forked_child_cannot_use_the_file():
    with strongbox.TemporaryFile(buffering=0) as f:
        f.write(b"parent data")
        pid = os.fork()
        if pid == 0:  # the child: every access fails before touching the disk
            code = 1
            try:
                f.seek(0)
                f.read(5)
            except OSError:
                code = 0
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        f.seek(0)
        assert f.read() == b"parent data"
