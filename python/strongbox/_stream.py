"""strongbox.open(): age files as io streams."""
import builtins
import io
import os

from . import _strongbox

__all__ = ["open"]

CHUNK = 64 * 1024  # one age chunk: writes are sealed in whole chunks


class _RawWriter(io.RawIOBase):
    def __init__(self, target, recipients, armored):
        super().__init__()
        self._w = _strongbox.Writer(target, recipients, armored)
        self._aborted = False

    def writable(self):
        return True

    def write(self, b):
        self._checkClosed()
        if self._aborted:  # the buffer flushed at close after an abort: discarded
            return len(b)
        return self._w.write(b)

    def abort(self):
        self._aborted = True
        self._w.abort()

    def close(self):
        if self.closed:
            return
        if not hasattr(self, "_w"):  # __init__ failed
            return super().close()
        try:
            if not self._aborted:
                self._w.finish()
        finally:
            self._w.abort()
            super().close()


class AgeWriter(io.BufferedWriter):
    """A binary file that encrypts what is written to it (returned by
    :func:`strongbox.open` in ``"wb"`` mode). ``close()`` writes the last
    chunk; a path target appears atomically at close. Leaving a ``with``
    block by an exception discards the output (a path target is untouched).
    """

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.closed:
            self.raw.abort()
        return super().__exit__(exc_type, exc, tb)


class _RawReader(io.RawIOBase):
    def __init__(self, source, identities, fd):
        super().__init__()
        self._r = _strongbox.Reader(source, identities, fd)

    def readable(self):
        return True

    def readinto(self, b):
        self._checkClosed()
        return self._r.readinto(b)

    def seekable(self):
        return self._r.seekable()

    def seek(self, offset, whence=io.SEEK_SET):
        self._checkClosed()
        return self._r.seek(offset, whence)

    def tell(self):
        self._checkClosed()
        return self._r.tell()

    def close(self):
        if not self.closed:
            if hasattr(self, "_r"):
                self._r.close()
            super().close()


def _is_path(file):
    return isinstance(file, (str, bytes)) or hasattr(file, "__fspath__")


def _seekable_fd(file):
    """The descriptor of a binary file object at offset 0 of a regular file, or -1."""
    try:
        fd = file.fileno()
        if file.tell() != 0 or not os.path.isfile(f"/proc/self/fd/{fd}"):
            return -1
        return fd
    except (AttributeError, OSError, ValueError):
        return -1


def open(file, mode="rb", *, recipients=None, identities=None, armored=False,
         buffer_size=CHUNK):
    """Open an age file for streaming encryption or decryption.

    ``file`` is a path or a binary file object (not closed by the stream).

    * ``"wb"``: pass ``recipients=[...]`` (and ``armored=True`` for ASCII
      armor); returns a writable binary stream.
    * ``"rb"``: pass ``identities=[...]``; returns a readable binary stream.
      The header is checked here: a wrong key raises :class:`DecryptError`
      now. Plaintext is released one 64 KiB chunk at a time, each only after
      its tag verified. For a path (or a file object of a regular file at
      offset 0) ``seek``/``tell`` work, and reads after a seek decrypt only the
      chunks they cover (binary files; armor is not seekable).

    Both work in constant memory, use every core, and release the GIL while
    the crypto runs; both are context managers.
    """
    if mode in ("w", "wb"):
        if not recipients:
            raise ValueError("strongbox.open(..., 'wb') needs recipients=[...]")
        raw = _RawWriter(os.fspath(file) if _is_path(file) else file, recipients, armored)
        return AgeWriter(raw, buffer_size)
    if mode in ("r", "rb"):
        if not identities:
            raise ValueError("strongbox.open(..., 'rb') needs identities=[...]")
        if _is_path(file):
            raw = _RawReader(os.fspath(file), identities, -1)
        else:
            raw = _RawReader(file, identities, _seekable_fd(file))
        return io.BufferedReader(raw, buffer_size)
    raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")
