"""SSH keys (``ssh-ed25519``, ``ssh-rsa``; PEM RSA/Ed25519), as pyrage.ssh."""
from ._strongbox import Identity as _Identity, Recipient as _Recipient, RecipientError

__all__ = ["Identity", "Recipient"]


class Recipient(_Recipient):
    """An OpenSSH public key line, ``ssh-ed25519 AAAA...`` or ``ssh-rsa AAAA...``."""

    @classmethod
    def from_str(cls, s):
        """Parse an OpenSSH public key line. Raises :class:`strongbox.RecipientError`."""
        r = super().from_str(s.strip())
        if r.type not in ("ssh-ed25519", "ssh-rsa"):
            raise RecipientError(f"not an SSH recipient: a {r.type} key")
        return r


class Identity(_Identity):
    """An SSH or PEM private key (OpenSSH without passphrase, PKCS#1, PKCS#8)."""

    _recipient_class = Recipient

    @classmethod
    def from_buffer(cls, buffer, passphrase=None):
        """One private key from its file contents (bytes). ``passphrase``
        (bytes or str) opens a protected PEM key. Raises
        :class:`strongbox.IdentityError` or :class:`strongbox.PassphraseError`."""
        if isinstance(passphrase, str):
            passphrase = passphrase.encode()
        if passphrase is None:
            return super().from_buffer(buffer)
        return super().from_buffer(buffer, passphrase)
