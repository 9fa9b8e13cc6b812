"""strongbox.SecFile: pyFileSec's workflow (encrypt, decrypt, rotate, sign,
verify, pad, unpad, destroy, metadata) on age files, and migrate() for the
old pyFileSec / PsychoPy opensslwrap ``.enc`` archives."""
import base64
import os
import tarfile

from . import _strongbox
from ._strongbox import Recipient, Identity, Error, FormatError

__all__ = ["SecFile"]

DEFAULT_PAD_SIZE = 16384
_AGE_MAGIC = b"age-encryption.org/v1\n"
_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _recipients(pub):
    """Recipient objects from a Recipient, a key string, a recipients file, or a list of those."""
    if pub is None:
        raise ValueError("no public key (pub=) given")
    out = []
    for p in _as_list(pub):
        if isinstance(p, Recipient):
            out.append(p)
        elif isinstance(p, str) and (p.startswith("age1") or p.startswith("ssh-")):
            out.append(Recipient.from_str(p.strip()))
        else:
            # a recipients file: age1/ssh lines, '#' comments, PEM public keys
            with open(os.fspath(p), "rb") as f:
                out.extend(_strongbox.parse_recipients(f.read()))
    return out


def _identities(priv, pphr=None):
    if priv is None:
        raise ValueError("no private key (priv=) given")
    out = []
    for p in _as_list(priv):
        if isinstance(p, Identity):
            out.append(p)
        elif isinstance(p, str) and p.startswith("AGE-SECRET-KEY-1"):
            out.append(Identity.from_str(p))
        else:
            with open(os.fspath(p), "rb") as f:
                data = f.read()
            pw = pphr.encode() if isinstance(pphr, str) else pphr
            out.extend(_strongbox.parse_identities(data, pw) if pw is not None
                       else _strongbox.parse_identities(data))
    return out


class SecFile:
    """A file to protect, pyFileSec-style, with age files on disk.

    ``SecFile(path)`` then, for example::

        sf = strongbox.SecFile("data.csv")
        sf.encrypt(pub="age1...")            # data.csv.age; data.csv destroyed
        sf.is_encrypted                      # True
        sf.decrypt(priv="key.txt")           # data.csv again (0600)

    ``pub`` is a :class:`strongbox.Recipient`, a key string (``age1...``,
    ``ssh-...``), a recipients file, or a list; ``priv`` an
    :class:`strongbox.Identity`, an ``AGE-SECRET-KEY-1`` string, an identity
    file (or SSH/PEM private key file, ``pphr`` for a protected PEM key), or a
    list. Methods that change the file return the object (chainable, as
    pyFileSec's did); ``file`` always names the current file.
    """

    def __init__(self, infile, pub=None, priv=None, pphr=None):
        self.file = os.fspath(infile)
        self.pub, self.priv, self.pphr = pub, priv, pphr
        self.last_report = None

    def __repr__(self):
        return f"<strongbox.SecFile {self.file!r}>"

    @property
    def is_encrypted(self):
        """True when the file is an age file (binary or armored)."""
        try:
            with open(self.file, "rb") as f:
                head = f.read(64)
        except FileNotFoundError:
            return False
        return head.startswith(_AGE_MAGIC) or head.lstrip().startswith(_ARMOR)

    @property
    def size(self):
        return os.path.getsize(self.file)

    def encrypt(self, pub=None, keep=False, meta=True, note=None, passes=1):
        """Encrypt to ``FILE.age``, read it back to verify, then destroy the
        original unless ``keep``. ``meta`` stores encrypted metadata (name,
        size, time, recipient fingerprints, history; ``note`` adds a line)."""
        rep = _strongbox.seal_file(self.file, _recipients(pub if pub is not None else self.pub),
                                   keep=keep, meta=meta, note=note, passes=passes)
        self.last_report = rep
        self.file = rep["output"]
        return self

    def decrypt(self, priv=None, pphr=None, keep_enc=False, out=None, force=False):
        """Decrypt ``FILE.age`` to ``FILE`` (or ``out``), mode 0600, atomically;
        the ``.age`` file is removed unless ``keep_enc``. The metadata, if the
        file carried any, is in :attr:`last_report` ``["meta"]``."""
        ids = _identities(priv if priv is not None else self.priv,
                          pphr if pphr is not None else self.pphr)
        rep = _strongbox.unseal_file(self.file, ids, keep=keep_enc,
                                     output=None if out is None else os.fspath(out), force=force)
        self.last_report = rep
        self.file = rep["output"]
        return self

    @property
    def metadata(self):
        """The encrypted metadata of an age file (needs ``priv`` given to the
        constructor), a dict, or None when the file has none."""
        if not self.is_encrypted:
            return None
        return _strongbox.meta_read(self.file, _identities(self.priv, self.pphr))

    def rotate(self, pub=None, priv=None, pphr=None, rekey=False):
        """Re-encrypt the file key to new recipients ``pub`` in place (the
        payload is untouched unless ``rekey``), opening it with ``priv``."""
        ids = _identities(priv if priv is not None else self.priv,
                          pphr if pphr is not None else self.pphr)
        _strongbox.rotate_file(self.file, ids, _recipients(pub if pub is not None else self.pub),
                               rekey)
        if pub is not None:
            self.pub = pub
        return self

    def sign(self, priv=None, pphr=None, out=None):
        """Sign the file with a PEM private key file (RSA, ECDSA, Ed25519),
        ``openssl dgst -sha256 -sign`` compatible. Returns the signature as
        base64 text (pyFileSec's form) and writes it to ``out`` if given."""
        key = priv if priv is not None else self.priv
        with open(os.fspath(key), "rb") as f:
            pem = f.read()
        pw = pphr if pphr is not None else self.pphr
        pw = pw.encode() if isinstance(pw, str) else pw
        sig = _strongbox.pem_sign(self.file, pem, pw) if pw else _strongbox.pem_sign(self.file, pem)
        text = base64.b64encode(sig).decode()
        if out is not None:
            with open(os.fspath(out), "w", encoding="ascii") as f:
                f.write(text + "\n")
        return text

    def verify(self, pub=None, sig=None):
        """True when ``sig`` (base64 text, raw bytes, or a file of either) is a
        valid signature of the file by the PEM public key file ``pub``."""
        key = pub if pub is not None else self.pub
        with open(os.fspath(key), "rb") as f:
            pem = f.read()
        if isinstance(sig, (str, os.PathLike)) and os.path.exists(os.fspath(sig)):
            with open(os.fspath(sig), "rb") as f:
                sig = f.read()
        if isinstance(sig, str):
            sig = sig.encode()
        try:
            raw = base64.b64decode(sig.strip(), validate=True)
        except ValueError:
            raw = sig
        return _strongbox.pem_verify(self.file, pem, raw)

    def pad(self, size=DEFAULT_PAD_SIZE):
        """Pad the (plaintext) file to ``size`` bytes as pyFileSec did, hiding
        its length once encrypted (existing padding is replaced); ``size`` 0
        or less removes padding."""
        if size <= 0:
            return self.unpad()
        _strongbox.pad_file(self.file, size)
        return self

    def unpad(self):
        """Remove pyFileSec padding (a file without padding is left as it is)."""
        _strongbox.unpad_file(self.file, False)
        return self

    def destroy(self, passes=1):
        """Overwrite, truncate and unlink the file; the report (is the
        destruction reliable on this filesystem?) is in :attr:`last_report`."""
        self.last_report = _strongbox.destroy(self.file, passes)
        return self

    def migrate(self, priv=None, pphr=None, pub=None, keep=True):
        """Convert an old pyFileSec / opensslwrap ``.enc`` archive (tar.gz of
        NAME.aes256, its RSA-wrapped password and NAME.meta) into an age file
        ``NAME.age`` beside it, encrypted to ``pub``. ``priv`` is the old RSA
        private key file (PEM; ``pphr`` if protected). The archive is kept
        unless ``keep=False``. The ciphertext hash recorded in the metadata
        is checked before anything is decrypted."""
        members = _read_legacy_archive(self.file)
        with open(os.fspath(priv if priv is not None else self.priv), "rb") as f:
            pem = f.read()
        pw = pphr if pphr is not None else self.pphr
        pw = pw.encode() if isinstance(pw, str) else pw
        plain = _strongbox.legacy_decrypt(pem, pw, members["data"], members["wrapped"],
                                          members.get("meta"))
        target = os.path.join(os.path.dirname(self.file), members["name"] + ".age")
        if os.path.exists(target):
            raise FileExistsError(target)
        tmp = target + ".tmp"
        data = _strongbox.encrypt(plain, _recipients(pub if pub is not None else self.pub))
        plain = None
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        if not keep:
            os.unlink(self.file)
        self.file = target
        return self


_MAX_MEMBER = 1 << 30


def _read_legacy_archive(path):
    out = {}
    try:
        tar = tarfile.open(os.fspath(path), "r:*")
    except tarfile.TarError as e:
        raise FormatError(f"{path}: not a pyFileSec/opensslwrap archive ({e})") from None
    with tar:
        for m in tar.getmembers():
            if not m.isfile() or m.size > _MAX_MEMBER:
                continue
            base = os.path.basename(m.name)
            key = None
            if base.endswith(".aes256"):
                key = "data"
                out["name"] = base[: -len(".aes256")]
            elif base.endswith(".aes256.pwdrsa") or base.endswith(".aes256pwd.rsa"):
                key = "wrapped"
            elif base.endswith(".meta"):
                key = "meta"
            if key is not None:
                if key in out:
                    raise FormatError(f"{path}: two {key} members")
                out[key] = tar.extractfile(m).read()
    if "data" not in out or "wrapped" not in out:
        raise FormatError(f"{path}: not a pyFileSec/opensslwrap archive (needs NAME.aes256 and "
                          "its RSA-encrypted password)")
    return out
