"""strongbox: age file encryption, encrypted temporary files and a key-server
client, over the C library libstrongbox (docs/python.md).

pyrage's names work unchanged (``import strongbox as pyrage``)::

    ident = strongbox.x25519.Identity.generate()
    blob = strongbox.encrypt(b"data", [ident.to_public()])
    assert strongbox.decrypt(blob, [ident]) == b"data"

Streams (constant memory, all cores, the GIL released while crypto runs)::

    with strongbox.open("big.age", "wb", recipients=[r]) as f:
        shutil.copyfileobj(src, f)

Encrypted temporary files: :func:`TemporaryFile`, :func:`EphemeralFile`.
pyFileSec's workflow: :class:`SecFile`. keas.kmi's: :mod:`strongbox.kms`.
"""
from ._strongbox import (
    Error,
    EncryptError,
    DecryptError,
    RecipientError,
    IdentityError,
    FormatError,
    PassphraseError,
    KmsError,
    Recipient,
    Identity,
    encrypt_file,
    decrypt_file,
    LIBRARY_VERSION,
)
from . import _strongbox
from . import x25519, ssh, passphrase
from ._stream import open
from ._tempfile import TemporaryFile, EphemeralFile
from ._secfile import SecFile

__version__ = "0.1.0"

__all__ = [
    "Error", "EncryptError", "DecryptError", "RecipientError", "IdentityError", "FormatError",
    "PassphraseError", "KmsError", "Recipient", "Identity", "encrypt", "decrypt",
    "encrypt_file", "decrypt_file", "load_identities", "open", "TemporaryFile",
    "EphemeralFile", "SecFile", "x25519", "ssh", "passphrase",
]


def encrypt(data, recipients, armored=False):
    """Encrypt ``data`` (bytes-like) to one or more recipients; returns the age file.

    ``armored=True`` gives the ASCII-armored (PEM-like) form. Raises
    :class:`EncryptError` or :class:`RecipientError` (for example a passphrase
    recipient mixed with others).
    """
    return _strongbox.encrypt(data, recipients, armored)


def decrypt(data, identities):
    """Decrypt an age file (binary or armored) with the first identity that matches.

    Returns the plaintext only when every chunk verified. Raises
    :class:`DecryptError` (no identity matched, tampered or truncated data) or
    its subclass :class:`FormatError` (not an age file).
    """
    return _strongbox.decrypt(data, identities)


def load_identities(path, passphrase=None):
    """Read an identity file: ``age-keygen``/``sbx keygen`` files (one or more
    ``AGE-SECRET-KEY-1`` lines, ``#`` comments) or one SSH/PEM private key
    (``passphrase`` for a protected PEM key). Returns a list of :class:`Identity`.
    """
    import builtins
    import os

    with builtins.open(os.fspath(path), "rb") as f:
        text = f.read()
    pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        if pw is None:
            return _strongbox.parse_identities(text)
        return _strongbox.parse_identities(text, pw)
    finally:
        text = None


def __getattr__(name):
    # strongbox.kms and strongbox.sqlite load on first use: importing
    # strongbox alone never loads libcurl (PEP 562).
    if name in ("kms", "sqlite"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
