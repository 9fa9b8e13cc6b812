"""Passphrase encryption (scrypt recipients), as pyrage.passphrase."""
from . import _strongbox

__all__ = ["encrypt", "decrypt", "recipient", "identity"]


def encrypt(data, passphrase, armored=False, work_factor=None):
    """Encrypt ``data`` under ``passphrase`` (scrypt). ``work_factor`` is
    log2(N), default 18 as ``age`` (about a second); lower it only for tests."""
    return _strongbox.passphrase_encrypt(data, passphrase, armored, work_factor or 0)


def decrypt(data, passphrase, max_work_factor=None):
    """Decrypt a passphrase file. A wrong passphrase raises
    :class:`strongbox.PassphraseError` (a :class:`strongbox.DecryptError`);
    files asking for more than ``max_work_factor`` (default 22) are refused."""
    return _strongbox.passphrase_decrypt(data, passphrase, max_work_factor or 0)


def recipient(passphrase, work_factor=None):
    """A passphrase :class:`strongbox.Recipient`, for :func:`strongbox.open`."""
    return _strongbox.passphrase_recipient(passphrase, work_factor or 0)


def identity(passphrase, max_work_factor=None):
    """A passphrase :class:`strongbox.Identity`, for :func:`strongbox.open`."""
    return _strongbox.passphrase_identity(passphrase, max_work_factor or 0)
