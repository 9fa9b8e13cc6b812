"""strongbox.kms.testing: a key management facility for unit tests.

:class:`TestingKeyManagementFacility` runs in the process, needs no server,
and uses one constant data key for every key encrypting key: it protects
nothing and exists only so that code written against
:class:`strongbox.kms.LocalKeyManagementFacility` can be unit tested (as
keas.kmi's testing facility was).
"""
import hashlib
import os

from . import _Facility

__all__ = ["TestingKeyManagementFacility"]

_CONSTANT_KEY = hashlib.sha256(b"strongbox.kms.testing: NOT A SECRET").digest()


class TestingKeyManagementFacility(_Facility):
    """In-process facility with one constant key (for tests only).

    ``generate()`` returns a new random key encrypting key (so code that
    stores them keeps working); every one maps to the same constant data key.
    ``storage_dir``, if given, receives each generated key as a file, as
    keas.kmi's facility stored its keys.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, storage_dir=None):
        self.storage_dir = storage_dir

    def generate(self):
        kek = b"sbx-kek-testing:" + os.urandom(16).hex().encode()
        if self.storage_dir is not None:
            path = os.path.join(self.storage_dir, kek.split(b":")[1].decode() + ".kek")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(kek)
        return kek

    def _data_key(self, kek, nbytes=0):
        return _CONSTANT_KEY
