"""strongbox.kms: the key-server client (``sbx kms serve``) and keas.kmi's workflow.

Importing this module loads libstrongbox-kms (and through it libcurl);
``import strongbox`` alone never does. The key-server part is linked without
its own copy of libstrongbox: it uses the one inside ``strongbox._strongbox``
(re-opened with ``RTLD_GLOBAL`` first), so the ``sbx-kms`` stanza type it
registers is known to :func:`strongbox.decrypt` and :func:`strongbox.open`.

* :class:`Client`: named keys, data keys, encrypt/decrypt/rewrap, and age
  recipients/identities whose file key only the server can unwrap.
* keas.kmi's names: :class:`LocalKeyManagementFacility` (``generate``,
  ``encrypt``, ``decrypt``, ``encrypt_file``, ``decrypt_file``) over the
  server's seed endpoints, :class:`KeyHolder`, :class:`EncryptedPersistent`,
  and :mod:`strongbox.kms.testing`.
"""
import collections
import ctypes
import json
import os
import threading
import time

from .. import _strongbox
from .._strongbox import KmsError, Recipient, Identity

__all__ = ["Client", "DataKey", "KmsError", "LocalKeyManagementFacility", "KeyHolder",
           "EncryptedPersistent", "register", "get_facility"]


def _load_kms():
    # Promote the already-loaded core module to the global symbol scope, so
    # that _kms resolves libstrongbox's functions from it: one copy.
    ctypes.CDLL(_strongbox.__file__, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
    from .. import _kms
    return _kms


_kms = _load_kms()

DataKey = collections.namedtuple("DataKey", "plaintext ciphertext version")
DataKey.__doc__ = """A data key: 32 plaintext bytes (use, then drop), the
server's ciphertext of it (store this), and the key version that wrapped it."""


class KmsRecipient(Recipient):
    """An age recipient whose file key the key server wraps (stanza ``sbx-kms``)."""


def _read_token_file(path):
    with open(path, "r", encoding="utf-8") as f:
        return f.readline().strip()


class Client:
    """A client of ``sbx kms serve``.

    ``url`` is the base URL ``https://host:port``. Credentials and trust, when
    not given, come from the same environment variables as the CLI:
    ``SBX_KMS_TOKEN`` / ``SBX_KMS_TOKEN_FILE``, ``SBX_KMS_CACERT``,
    ``SBX_KMS_FINGERPRINT`` (certificate pin), ``SBX_KMS_CLIENT_CERT`` /
    ``SBX_KMS_CLIENT_KEY`` and ``SBX_KMS_FAILOVER``. Thread-safe; every call
    releases the GIL. Errors raise :class:`strongbox.KmsError`.
    """

    def __init__(self, url, token=None, token_file=None, cacert=None, fingerprint=None):
        if token is None and token_file is not None:
            token = _read_token_file(token_file)
        self.url = url.rstrip("/")
        self._c = _kms.Client(self.url, token, cacert and os.fspath(cacert), fingerprint)

    def create_key(self, name, auto_rotate_period=0):
        """Create named key ``name``; returns its metadata (a dict)."""
        return json.loads(self._c.create_key(name, auto_rotate_period))

    def rotate_key(self, name):
        """Add a version to key ``name``; returns its metadata."""
        return json.loads(self._c.rotate_key(name))

    def key(self, name):
        """The metadata of key ``name``."""
        return json.loads(self._c.read_key(name))

    def datakey(self, name, context=None, bits=256):
        """A new data key under key ``name`` (a :class:`DataKey`)."""
        return DataKey(*self._c.datakey(name, context, bits))

    def encrypt(self, name, data, context=None):
        """Encrypt small ``data`` on the server; returns the ciphertext string."""
        return self._c.encrypt(name, data, context)[0]

    def decrypt(self, name, ciphertext, context=None):
        """Decrypt a ciphertext of :meth:`encrypt` (or a data key's); returns bytes."""
        return self._c.decrypt(name, ciphertext, context)[0]

    def rewrap(self, name, ciphertext, context=None):
        """The ciphertext re-encrypted under the key's latest version."""
        return self._c.rewrap(name, ciphertext, context)[0]

    def request(self, method, path, body=None):
        """Any API request; returns ``(status, body bytes)``."""
        return self._c.request(method, path, body, method == "GET")

    def recipient(self, name):
        """An age recipient for :func:`strongbox.encrypt`/:func:`strongbox.open`:
        the file key is wrapped by key ``name`` on this server (``age`` skips
        the stanza; only this server can open the file)."""
        r = self._c.recipient(KmsRecipient, f"{self.url}/{name}")
        r._client = self  # the C recipient borrows the client
        return r

    def identity(self):
        """An age identity that unwraps ``sbx-kms`` stanzas through this
        server (only this server: a file naming another is not sent there)."""
        return self._c.identity()


class KeyHolder:
    """A key kept in locked memory (keas.kmi's KeyHolder): the contents of the
    file at ``path`` (for example the key encrypting key from
    :meth:`LocalKeyManagementFacility.generate`), surrounding whitespace removed."""

    def __init__(self, path):
        with open(path, "rb") as f:
            data = bytearray(f.read())
        try:
            self._secret = _strongbox.Secret(bytes(data).strip())
        finally:
            data[:] = bytes(len(data))

    @property
    def key(self):
        """The key (a fresh bytes copy)."""
        return self._secret.reveal()


class _DataKeyCache:
    """Data keys by key encrypting key, in locked memory, with the limits of
    the C client's cache (sbx_kms_cache_limits): an entry is used for at most
    ``max_age`` seconds (3600), ``max_uses`` times (2**24) and ``max_bytes``
    bytes (2**36), and at most ``max_entries`` (1000) are kept, least
    recently used dropped first. Past a limit the key is fetched again."""

    def __init__(self, max_age=3600.0, max_uses=1 << 24, max_entries=1000, max_bytes=1 << 36):
        self.max_age, self.max_uses, self.max_entries = max_age, max_uses, max_entries
        self.max_bytes = max_bytes
        self._d = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, kek, fetch, nbytes=0):
        now = time.monotonic()
        with self._lock:
            e = self._d.get(kek)
            if (e is not None and now - e[1] < self.max_age and e[2] < self.max_uses
                    and e[3] + nbytes <= self.max_bytes):
                e[2] += 1
                e[3] += nbytes
                self._d.move_to_end(kek)
                self.hits += 1
                return e[0].reveal()
            self._d.pop(kek, None)
        secret = _strongbox.Secret(fetch())
        with self._lock:
            self.misses += 1
            self._d[kek] = [secret, now, 1, nbytes]
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)
        return secret.reveal()

    def clear(self):
        with self._lock:
            self._d.clear()


def _kek_bytes(kek):
    if isinstance(kek, KeyHolder):
        return kek.key
    return kek.encode() if isinstance(kek, str) else bytes(kek)


class _Facility:
    """encrypt/decrypt with a data key per key encrypting key (keas.kmi's API)."""

    def _data_key(self, kek, nbytes=0):
        raise NotImplementedError

    def encrypt(self, key, data):
        """Seal ``data`` (bytes) under the data key of ``key`` (the key
        encrypting key: bytes, str or a :class:`KeyHolder`): AES-256-GCM,
        ``sbxs1:`` || nonce || ciphertext || tag."""
        return _strongbox.seal(self._data_key(_kek_bytes(key), len(data)), data, b"strongbox.kms")

    def decrypt(self, key, data):
        """Open what :meth:`encrypt` sealed; a wrong key or tampered data raises
        :class:`strongbox.DecryptError`."""
        return _strongbox.open_sealed(self._data_key(_kek_bytes(key)), data, b"strongbox.kms")

    def encrypt_file(self, key, fsrc, fdst):
        """Encrypt the binary file object ``fsrc`` into ``fdst`` (whole file in memory,
        as keas.kmi did; use :func:`strongbox.open` with :meth:`Client.recipient` for
        large files)."""
        fdst.write(self.encrypt(key, fsrc.read()))

    def decrypt_file(self, key, fsrc, fdst):
        """Decrypt what :meth:`encrypt_file` wrote."""
        fdst.write(self.decrypt(key, fsrc.read()))

    # keas.kmi spelled these in camelCase
    def getEncryptionKey(self, key):  # noqa: N802 (keas.kmi's name)
        return self._data_key(_kek_bytes(key))


class LocalKeyManagementFacility(_Facility):
    """keas.kmi's local facility over ``sbx kms serve``'s seed endpoints.

    :meth:`generate` asks the server for a new key encrypting key (``POST
    /new``; the server keeps only the data key sealed under it). The caller
    stores that key (for example in a 0600 file read by :class:`KeyHolder`).
    :meth:`encrypt` / :meth:`decrypt` fetch the data key once (``POST /key``)
    and keep it in a local cache in locked memory with the C client cache's
    limits (``max_age`` 3600 s, ``max_uses`` 2**24, ``max_entries`` 1000,
    ``max_bytes`` 2**36).
    The other arguments are :class:`Client`'s (the token needs the ``seed``
    operation).
    """

    def __init__(self, url, token=None, token_file=None, cacert=None, fingerprint=None,
                 max_age=3600.0, max_uses=1 << 24, max_entries=1000, max_bytes=1 << 36):
        self.client = Client(url, token, token_file, cacert, fingerprint)
        self.cache = _DataKeyCache(max_age, max_uses, max_entries, max_bytes)

    def generate(self):
        """A new key encrypting key (bytes, ``sbx-kek-1:...``)."""
        status, body = self.client.request("POST", "/new")
        if status != 200:
            raise KmsError(f"POST /new answered {status}: {body[:200]!r}")
        return body.strip()

    def _data_key(self, kek, nbytes=0):
        def fetch():
            status, body = self.client._c.request("POST", "/key", kek.decode(), True)
            if status != 200:
                raise KmsError(f"POST /key answered {status}: {body[:100].decode(errors='replace')}")
            if len(body) != 32:
                raise KmsError("POST /key did not answer a 32-byte data key")
            return body
        return self.cache.get(kek, fetch, nbytes)


_registry = threading.local()
_default = {}


def register(facility, key):
    """Make ``facility`` and ``key`` (a :class:`KeyHolder` or key bytes) what
    :class:`EncryptedPersistent` objects use, as keas.kmi registered an
    IKeyManagementFacility utility and an IKeyHolder."""
    _default["facility"], _default["key"] = facility, key


def get_facility():
    """The registered ``(facility, key)``; :class:`strongbox.KmsError` if none."""
    if "facility" not in _default:
        raise KmsError("no key management facility registered: call strongbox.kms.register()")
    return _default["facility"], _default["key"]


try:
    import persistent as _persistent
except ImportError:  # pragma: no cover - Debian's python3-persistent is a test dependency
    _persistent = None

if _persistent is not None:
    import pickle as _pickle

    class EncryptedPersistent(_persistent.Persistent):
        """A ``persistent.Persistent`` (ZODB) base class whose pickled state is
        sealed under a data key from the key server, as keas.kmi's was.

        How an object finds its facility and key: the attribute
        ``__sbx_facility__`` (a ``(facility, key)`` pair) on the instance or
        its class if set, else what :func:`register` made the default. The
        state written to the database is ``{"__sbx_sealed__": bytes}``; the
        plaintext attributes never reach the pickle. ``_p_`` and ``_v_``
        attributes are not stored, as with any Persistent.
        """

        def _sbx_facility(self):
            pair = getattr(self, "__sbx_facility__", None)
            return pair if pair is not None else get_facility()

        def __getstate__(self):
            state = super().__getstate__()
            facility, key = self._sbx_facility()
            return {"__sbx_sealed__": facility.encrypt(key, _pickle.dumps(state, 4))}

        def __setstate__(self, state):
            facility, key = self._sbx_facility()
            sealed = state["__sbx_sealed__"]
            super().__setstate__(_pickle.loads(facility.decrypt(key, sealed)))
else:  # pragma: no cover
    class EncryptedPersistent:
        def __init__(self, *a, **k):
            raise ImportError("EncryptedPersistent needs the persistent package "
                              "(Debian: python3-persistent)")
