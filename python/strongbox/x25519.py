"""X25519 keys (``age1...`` / ``AGE-SECRET-KEY-1...``), as pyrage.x25519."""
from ._strongbox import Identity as _Identity, Recipient as _Recipient, RecipientError, IdentityError

__all__ = ["Identity", "Recipient"]


class Recipient(_Recipient):
    """An X25519 public key, ``age1...``."""

    @classmethod
    def from_str(cls, s):
        """Parse ``age1...``. Raises :class:`strongbox.RecipientError`."""
        r = super().from_str(s)
        if r.type != "X25519":
            raise RecipientError(f"not an X25519 recipient (age1...): a {r.type} key")
        return r


class Identity(_Identity):
    """An X25519 secret key; ``str(identity)`` is ``AGE-SECRET-KEY-1...``."""

    _recipient_class = Recipient

    @classmethod
    def from_str(cls, s):
        """Parse ``AGE-SECRET-KEY-1...``. Raises :class:`strongbox.IdentityError`."""
        return super().from_str(s)

    @classmethod
    def from_buffer(cls, buffer, passphrase=None):  # pragma: no cover - not an X25519 form
        raise IdentityError("X25519 identities are strings: use Identity.from_str()")
