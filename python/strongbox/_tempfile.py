"""strongbox.TemporaryFile and strongbox.EphemeralFile: tempfile.TemporaryFile
whose bytes on disk are authenticated ciphertext (over sbx_tmpfd)."""
import io
import os

from . import _strongbox

__all__ = ["TemporaryFile", "EphemeralFile"]



class _EncryptedRaw(io.RawIOBase):
    """An unbuffered file over an encrypted temporary file (sbx_tmpfd)."""

    def __init__(self, tmpfd, readable, writable, append, mode):
        super().__init__()
        self._t = tmpfd
        self._pos = 0
        self._readable, self._writable, self._append = readable, writable, append
        self.mode = mode

    @property
    def name(self):
        return self._t.fileno() if not self._t.closed else -1

    def readable(self):
        self._checkClosed()
        return self._readable

    def writable(self):
        self._checkClosed()
        return self._writable

    def seekable(self):
        self._checkClosed()
        return True

    def fileno(self):
        """The real descriptor of the backing file: its bytes are ciphertext."""
        self._checkClosed()
        return self._t.fileno()

    def readinto(self, b):
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("read")
        n = self._t.preadinto(b, self._pos)
        self._pos += n
        return n

    def write(self, b):
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("write")
        if self._append:
            self._pos = self._t.size()
        n = self._t.pwrite(b, self._pos)
        self._pos += n
        return n

    def seek(self, pos, whence=io.SEEK_SET):
        self._checkClosed()
        pos = pos.__index__()
        if whence == io.SEEK_SET:
            new = pos
        elif whence == io.SEEK_CUR:
            new = self._pos + pos
        elif whence == io.SEEK_END:
            new = self._t.size() + pos
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if new < 0:
            raise OSError(22, "Invalid argument")
        self._pos = new
        return new

    def tell(self):
        self._checkClosed()
        return self._pos

    def truncate(self, size=None):
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("truncate")
        size = self._pos if size is None else size.__index__()
        if size < 0:
            raise OSError(22, "Invalid argument")
        self._t.truncate(size)
        return size

    def close(self):
        if not self.closed:
            try:
                super().close()
            finally:
                self._t.close()

    def _read_ciphertext(self, pos, n):
        self._t.flush()
        fd = self._t.fileno()
        start = self._t.disk_offset(pos)
        if n is None or n < 0:
            n = max(os.fstat(fd).st_size - start, 0)
        return os.pread(fd, n, start)


class _EphemeralRaw(_EncryptedRaw):
    def read_ciphertext(self, n=-1):
        """The raw bytes on disk (ciphertext) from the block holding the current position."""
        self._checkClosed()
        return self._read_ciphertext(self._pos, n)


def _parse_mode(mode):
    if not isinstance(mode, str) or len(set(mode)) != len(mode) or set(mode) - set("rwxab+t"):
        raise ValueError(f"invalid mode: {mode!r}")
    kinds = sum(c in mode for c in "rwxa")
    if kinds != 1 or ("b" in mode and "t" in mode):
        raise ValueError(f"invalid mode: {mode!r}")
    plus = "+" in mode
    return ("r" in mode or plus, "r" not in mode or plus, "a" in mode, "b" in mode)


class _EphemeralBinaryRandom(io.BufferedRandom):
    def read_ciphertext(self, n=-1):
        """The raw bytes on disk (ciphertext) from the block holding the
        current position: ``n`` bytes, or all to the end."""
        self.flush()
        return self.raw._read_ciphertext(self.tell(), n)


class _EphemeralBinaryWriter(io.BufferedWriter):
    read_ciphertext = _EphemeralBinaryRandom.read_ciphertext


class _EphemeralBinaryReader(io.BufferedReader):
    read_ciphertext = _EphemeralBinaryRandom.read_ciphertext


class _EphemeralText(io.TextIOWrapper):
    def read_ciphertext(self, n=-1):
        """The raw bytes on disk (ciphertext) from the block holding the current position."""
        self.flush()
        return self.buffer.raw._read_ciphertext(self.buffer.tell(), n)


def _make(mode, buffering, encoding, newline, dir, errors, key_size, ephemeral):
    readable, writable, append, binary = _parse_mode(mode)
    if binary and (encoding is not None or errors is not None or newline is not None):
        raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    if buffering == 0 and not binary:
        raise ValueError("can't have unbuffered text I/O")
    line_buffering = buffering == 1 and not binary
    if buffering == 1 and binary:
        import warnings
        warnings.warn("line buffering (buffering=1) isn't supported in binary mode, "
                      "the default buffer size will be used", RuntimeWarning, 3)
    t = _strongbox.TmpFD(key_size, dir)
    # The buffer size io.open() would choose for the backing file (st_blksize):
    # text-mode results after mixing reads and writes depend on it.
    size = buffering
    if buffering in (-1, 1):
        size = os.fstat(t.fileno()).st_blksize
        size = size if size > 1 else io.DEFAULT_BUFFER_SIZE
    raw = (_EphemeralRaw if ephemeral else _EncryptedRaw)(t, readable, writable, append, mode)
    try:
        if buffering == 0:
            return raw
        if readable and writable:
            buf = (_EphemeralBinaryRandom if ephemeral else io.BufferedRandom)(raw, size)
        elif writable:
            buf = (_EphemeralBinaryWriter if ephemeral else io.BufferedWriter)(raw, size)
        else:
            buf = (_EphemeralBinaryReader if ephemeral else io.BufferedReader)(raw, size)
        if binary:
            return buf
        if encoding is None:
            encoding = io.text_encoding(None) if hasattr(io, "text_encoding") else None
        text = (_EphemeralText if ephemeral else io.TextIOWrapper)(
            buf, encoding, errors, newline, line_buffering)
        text.mode = mode
        return text
    except BaseException:
        raw.close()
        raise


def TemporaryFile(mode="w+b", buffering=-1, encoding=None, newline=None, suffix=None,
                  prefix=None, dir=None, *, errors=None):
    """An encrypted ``tempfile.TemporaryFile``: same signature and behaviour
    (binary and text modes, seek/tell/truncate, ``with``), but every byte on
    disk is AES-256-GCM ciphertext in 4 KiB authenticated blocks under a key
    held in locked memory, wiped at close; the file has no name and vanishes
    at close or exit. ``fileno()`` is the real descriptor (ciphertext).
    ``suffix`` and ``prefix`` are accepted and ignored (the file never has a
    name). A block modified on disk makes the read raise
    :class:`strongbox.DecryptError`. Use it only in the process that made it
    (after ``fork`` the child gets ``OSError``)."""
    return _make(mode, buffering, encoding, newline, dir, errors, 32, False)


def EphemeralFile(mode="w+b", buffering=-1, encoding=None, newline=None, suffix=None,
                  prefix=None, dir=None, *, errors=None, key_size=32):
    """:func:`TemporaryFile` for Ephemeral's users: ``key_size`` 16, 24 or 32
    bytes selects AES-128/192/256-GCM blocks on disk, and the file has
    ``read_ciphertext(n=-1)``, the raw bytes on disk from the block holding
    the current position (the position does not move)."""
    if key_size not in (16, 24, 32):
        raise ValueError(f"key_size must be 16, 24 or 32 bytes, not {key_size!r}")
    return _make(mode, buffering, encoding, newline, dir, errors, key_size, True)
