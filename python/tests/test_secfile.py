"""strongbox.SecFile: pyFileSec's workflow on age files, and migrate()."""
import base64
import hashlib
import os
import pathlib
import subprocess
import tarfile

import pytest

import strongbox
from conftest import run


@pytest.fixture()
def keys(tmp_path):
    ident = strongbox.x25519.Identity.generate()
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(str(ident) + "\n")
    return ident, keyfile


def test_encrypt_decrypt_with_metadata_and_note(tmp_path, keys):
    ident, keyfile = keys
    p = tmp_path / "data.csv"
    p.write_bytes(b"id,value\n1,42\n" * 100)
    sf = strongbox.SecFile(p, priv=str(keyfile))
    assert not sf.is_encrypted
    assert sf.encrypt(str(ident.to_public()), note="visit 2") is sf
    assert sf.file == str(p) + ".age" and sf.is_encrypted
    assert not p.exists()  # destroyed (keep=False)
    assert sf.last_report["destroyed"]
    meta = sf.metadata
    assert meta["name"] == "data.csv" and meta["size"] == 1400
    assert any("note: visit 2" in h for h in meta["history"])
    sf.decrypt()
    assert sf.file == str(p) and p.read_bytes() == b"id,value\n1,42\n" * 100
    assert not os.path.exists(str(p) + ".age")
    assert (os.stat(p).st_mode & 0o777) == 0o600


def test_keep_recipients_file_and_wrong_key(tmp_path, keys):
    ident, keyfile = keys
    p = tmp_path / "x.bin"
    p.write_bytes(os.urandom(1000))
    rfile = tmp_path / "recipients.txt"
    rfile.write_text(f"# team\n{ident.to_public()}\n")
    sf = strongbox.SecFile(p, priv=ident).encrypt(rfile, keep=True, meta=False)
    assert p.exists()
    assert sf.metadata is None
    with pytest.raises(strongbox.DecryptError):
        strongbox.SecFile(sf.file).decrypt(priv=strongbox.x25519.Identity.generate(),
                                           out=tmp_path / "y.bin")
    assert not (tmp_path / "y.bin").exists()


def test_rotate_to_a_new_key(tmp_path, keys):
    ident, keyfile = keys
    new = strongbox.x25519.Identity.generate()
    p = tmp_path / "r.bin"
    data = os.urandom(100_000)
    p.write_bytes(data)
    sf = strongbox.SecFile(p).encrypt(ident.to_public())
    assert sf.rotate(pub=new.to_public(), priv=ident) is sf
    with pytest.raises(strongbox.DecryptError):
        strongbox.decrypt(pathlib.Path(sf.file).read_bytes(), [ident])
    assert strongbox.decrypt(pathlib.Path(sf.file).read_bytes(), [new]) == data


def test_sign_verify_interop_with_openssl(tmp_path):
    run("openssl", "genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", str(tmp_path / "priv.pem"))
    run("openssl", "pkey", "-in", str(tmp_path / "priv.pem"), "-pubout", "-out",
        str(tmp_path / "pub.pem"))
    p = tmp_path / "doc.txt"
    p.write_bytes(b"signed document\n")
    sf = strongbox.SecFile(p)
    sig = sf.sign(priv=tmp_path / "priv.pem", out=tmp_path / "doc.sig")
    assert sf.verify(pub=tmp_path / "pub.pem", sig=sig)
    assert sf.verify(pub=tmp_path / "pub.pem", sig=tmp_path / "doc.sig")
    (tmp_path / "raw.sig").write_bytes(base64.b64decode(sig))
    run("openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
        str(tmp_path / "raw.sig"), str(p))
    p.write_bytes(b"signed documenT\n")
    assert not sf.verify(pub=tmp_path / "pub.pem", sig=sig)


def test_pad_unpad_destroy(tmp_path):
    p = tmp_path / "short.txt"
    p.write_bytes(b"tiny")
    sf = strongbox.SecFile(p)
    assert sf.pad() is sf and os.path.getsize(p) == 16384
    assert sf.pad(1000).size == 1000
    assert sf.unpad().size == 4 and p.read_bytes() == b"tiny"
    with pytest.raises(ValueError):
        strongbox.SecFile(p).pad(0) and strongbox.SecFile(p).pad(10 ** 12)
    assert sf.destroy() is sf and not p.exists()
    assert sf.last_report["unlinked"]


def _legacy_archive(d, src, pub, name):
    """A pyFileSec 0.2.14 archive made with the openssl command (as the seed did)."""
    for _ in range(20):
        pwd = "#" + os.urandom(32).hex()
        run("openssl", "enc", "-aes-256-cbc", "-a", "-salt", "-md", "sha256", "-in", str(src),
            "-out", str(d / f"{name}.aes256"), "-pass", f"pass:{pwd}")
        r = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-a", "-md", "md5", "-in",
                            str(d / f"{name}.aes256"), "-pass", f"pass:{pwd}"],
                           capture_output=True)
        if r.returncode != 0:  # not ambiguous between the two digests
            break
    (d / "pwd").write_text(pwd)
    run("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(pub), "-pkeyopt",
        "rsa_padding_mode:oaep", "-in", str(d / "pwd"), "-out", str(d / f"{name}.aes256.pwdrsa"))
    h = hashlib.sha256((d / f"{name}.aes256").read_bytes()).hexdigest()
    (d / f"{name}.meta").write_text(
        '{"meta-data 2014_04_26_13:45.07.123": {"clear_text": "/home/u/%s", '
        '"hash of cipher_text": "%s", "encryption method": '
        '"pyFileSec._encrypt_rsa_aes256cbc", "rsa padding": "-oaep"}}' % (name, h))
    out = d / f"{name}.enc"
    with tarfile.open(out, "w:gz") as t:
        for m in (f"{name}.aes256", f"{name}.aes256.pwdrsa", f"{name}.meta"):
            t.add(d / m, arcname=m)
    return out


def test_migrate_an_old_pyfilesec_archive(tmp_path, keys):
    ident, _ = keys
    run("openssl", "genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", str(tmp_path / "old.pem"))
    run("openssl", "pkey", "-in", str(tmp_path / "old.pem"), "-pubout", "-out",
        str(tmp_path / "old.pub"))
    work = tmp_path / "w"
    work.mkdir()
    src = tmp_path / "subject.dat"
    data = os.urandom(5000)
    src.write_bytes(data)
    arch = _legacy_archive(work, src, tmp_path / "old.pub", "subject.dat")
    sf = strongbox.SecFile(arch).migrate(priv=tmp_path / "old.pem", pub=ident.to_public())
    assert sf.file.endswith("subject.dat.age") and sf.is_encrypted
    assert strongbox.decrypt(pathlib.Path(sf.file).read_bytes(), [ident]) == data
    assert arch.exists()
    # a tampered archive is refused before decryption
    b = bytearray((work / "subject.dat.aes256").read_bytes())
    b[10] = ord("A") if b[10] != ord("A") else ord("B")
    (work / "subject.dat.aes256").write_bytes(bytes(b))
    with tarfile.open(tmp_path / "bad.enc", "w:gz") as t:
        for m in ("subject.dat.aes256", "subject.dat.aes256.pwdrsa", "subject.dat.meta"):
            t.add(work / m, arcname=m)
    with pytest.raises(strongbox.DecryptError):
        strongbox.SecFile(tmp_path / "bad.enc").migrate(priv=tmp_path / "old.pem",
                                                       pub=ident.to_public())
    with pytest.raises(strongbox.FormatError):
        strongbox.SecFile(src).migrate(priv=tmp_path / "old.pem", pub=ident.to_public())
