"""Keys, one-shot encryption and interop with the real age and with sbx."""
import os
import subprocess

import pytest

import strongbox
from conftest import run


def roundtrip(recipient, identity, data=b"attack at dawn\n" * 100):
    for armored in (False, True):
        blob = strongbox.encrypt(data, [recipient], armored=armored)
        assert blob.startswith(b"-----BEGIN AGE" if armored else b"age-encryption.org/v1")
        assert strongbox.decrypt(blob, [identity]) == data


def test_x25519_round_trip_and_string_forms():
    ident = strongbox.x25519.Identity.generate()
    rec = ident.to_public()
    assert isinstance(rec, strongbox.x25519.Recipient)
    assert str(rec).startswith("age1")
    assert str(ident).startswith("AGE-SECRET-KEY-1")
    assert "AGE-SECRET" not in repr(ident)
    again = strongbox.x25519.Identity.from_str(str(ident))
    assert str(again.to_public()) == str(rec)
    assert str(strongbox.x25519.Recipient.from_str(str(rec))) == str(rec)
    roundtrip(rec, again)


def test_ssh_and_pem_round_trips(keydir):
    for name, pub in (("ed", "ed.pub"), ("rsa", "rsa.pub")):
        rec = strongbox.ssh.Recipient.from_str((keydir / pub).read_text().strip())
        ident = strongbox.ssh.Identity.from_buffer((keydir / name).read_bytes())
        assert rec.type == ("ssh-ed25519" if name == "ed" else "ssh-rsa")
        roundtrip(rec, ident)
    pem = strongbox.ssh.Identity.from_buffer((keydir / "pem.key").read_bytes())
    roundtrip(pem.to_public(), pem)


def test_passphrase_round_trip_and_wrong_passphrase():
    blob = strongbox.passphrase.encrypt(b"secret", "correct horse", work_factor=10)
    assert strongbox.passphrase.decrypt(blob, "correct horse") == b"secret"
    with pytest.raises(strongbox.PassphraseError) as e:
        strongbox.passphrase.decrypt(blob, "wrong horse")
    assert isinstance(e.value, strongbox.DecryptError)
    assert e.value.code_name == "SBX_ENOMATCH"
    armored = strongbox.passphrase.encrypt(b"s", "pw", armored=True, work_factor=10)
    assert strongbox.passphrase.decrypt(armored, "pw") == b"s"


def test_several_recipients_any_identity_decrypts(keydir):
    a, b = strongbox.x25519.Identity.generate(), strongbox.x25519.Identity.generate()
    ed = strongbox.ssh.Recipient.from_str((keydir / "ed.pub").read_text())
    blob = strongbox.encrypt(b"x", [a.to_public(), b.to_public(), ed])
    assert strongbox.decrypt(blob, [b]) == b"x"
    assert strongbox.decrypt(blob, [strongbox.x25519.Identity.generate(), a]) == b"x"


def test_wrong_key_raises_decrypt_error_not_format_error():
    blob = strongbox.encrypt(b"x", [strongbox.x25519.Identity.generate().to_public()])
    with pytest.raises(strongbox.DecryptError) as e:
        strongbox.decrypt(blob, [strongbox.x25519.Identity.generate()])
    assert type(e.value) is strongbox.DecryptError
    assert "wrong key" in str(e.value)


def test_every_tampered_byte_raises_decrypt_error():
    ident = strongbox.x25519.Identity.generate()
    blob = strongbox.encrypt(b"small secret file", [ident.to_public()])
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(strongbox.DecryptError):
            strongbox.decrypt(bytes(bad), [ident])
    with pytest.raises(strongbox.DecryptError):
        strongbox.decrypt(blob[:-1], [ident])
    with pytest.raises(strongbox.DecryptError):
        strongbox.decrypt(blob + b"\0", [ident])


def test_malformed_input_and_bad_keys_raise_the_right_class():
    ident = strongbox.x25519.Identity.generate()
    with pytest.raises(strongbox.FormatError):
        strongbox.decrypt(b"not an age file", [ident])
    with pytest.raises(strongbox.RecipientError):
        strongbox.x25519.Recipient.from_str("age1notakey")
    with pytest.raises(strongbox.RecipientError):
        strongbox.x25519.Recipient.from_str("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA")
    with pytest.raises(strongbox.IdentityError) as e:
        strongbox.x25519.Identity.from_str("AGE-SECRET-KEY-1NOTAKEY")
    assert "NOTAKEY" not in str(e.value)
    with pytest.raises(strongbox.IdentityError):
        strongbox.ssh.Identity.from_buffer(b"-----BEGIN NOTHING-----\n")
    with pytest.raises(TypeError):
        strongbox.encrypt(b"x", ["age1..."])
    with pytest.raises(ValueError):
        strongbox.encrypt(b"x", [])
    pw = strongbox.passphrase.recipient("pw", work_factor=10)
    with pytest.raises(strongbox.RecipientError):
        strongbox.encrypt(b"x", [pw, ident.to_public()])


def test_error_classes_and_names():
    import builtins
    for name in ("Error", "EncryptError", "DecryptError", "RecipientError", "IdentityError",
                 "FormatError", "PassphraseError", "KmsError"):
        cls = getattr(strongbox, name)
        assert issubclass(cls, strongbox.Error)
        assert not hasattr(builtins, name)
    assert issubclass(strongbox.FormatError, strongbox.DecryptError)


def test_load_identities(tmp_path):
    a, b = strongbox.x25519.Identity.generate(), strongbox.x25519.Identity.generate()
    f = tmp_path / "keys.txt"
    f.write_text(f"# created: now\n{a}\n\n# public key: {b.to_public()}\n{b}\n")
    ids = strongbox.load_identities(f)
    assert [str(i) for i in ids] == [str(a), str(b)]
    blob = strongbox.encrypt(b"k", [b.to_public()])
    assert strongbox.decrypt(blob, ids) == b"k"
    f.write_text("AGE-SECRET-KEY-1BAD\n")
    with pytest.raises(strongbox.IdentityError):
        strongbox.load_identities(f)


def test_interop_with_real_age_both_ways(tmp_path, age, keydir):
    keyfile = tmp_path / "age.key"
    run("age-keygen", "-o", str(keyfile))
    ids = strongbox.load_identities(keyfile)
    pub = run("age-keygen", "-y", str(keyfile)).decode().strip()
    data = os.urandom(200_000)
    # age -> strongbox (binary and armored)
    for flags in ([], ["-a"]):
        blob = run("age", *flags, "-r", pub, input=data)
        assert strongbox.decrypt(blob, ids) == data
    # strongbox -> age, for X25519, ssh-ed25519 and ssh-rsa recipients
    for armored in (False, True):
        blob = strongbox.encrypt(data, [strongbox.x25519.Recipient.from_str(pub)], armored)
        assert run("age", "-d", "-i", str(keyfile), input=blob) == data
    for key in ("ed", "rsa"):
        rec = strongbox.ssh.Recipient.from_str((keydir / f"{key}.pub").read_text())
        blob = strongbox.encrypt(data, [rec])
        assert run("age", "-d", "-i", str(keydir / key), input=blob) == data
        blob = run("age", "-R", str(keydir / f"{key}.pub"), input=data)
        ident = strongbox.ssh.Identity.from_buffer((keydir / key).read_bytes())
        assert strongbox.decrypt(blob, [ident]) == data


def test_interop_with_sbx_both_ways(tmp_path, sbx):
    keyfile = tmp_path / "k.txt"
    subprocess.run([sbx, "keygen", "-o", str(keyfile)], check=True, capture_output=True)
    ids = strongbox.load_identities(keyfile)
    data = os.urandom(300_000)
    (tmp_path / "plain").write_bytes(data)
    pub = str(ids[0].to_public())
    subprocess.run([sbx, "encrypt", "-r", pub, "-o", str(tmp_path / "a.age"),
                    str(tmp_path / "plain")], check=True, capture_output=True)
    assert strongbox.decrypt((tmp_path / "a.age").read_bytes(), ids) == data
    strongbox.encrypt_file(tmp_path / "plain", tmp_path / "b.age", [ids[0].to_public()])
    subprocess.run([sbx, "decrypt", "-i", str(keyfile), "-o", str(tmp_path / "b.out"),
                    str(tmp_path / "b.age")], check=True, capture_output=True)
    assert (tmp_path / "b.out").read_bytes() == data


def test_encrypt_file_decrypt_file_and_failure_leaves_no_output(tmp_path):
    ident = strongbox.x25519.Identity.generate()
    data = os.urandom(150_000)
    (tmp_path / "in").write_bytes(data)
    strongbox.encrypt_file(str(tmp_path / "in"), str(tmp_path / "in.age"), [ident.to_public()])
    strongbox.decrypt_file(tmp_path / "in.age", tmp_path / "out", [ident])
    assert (tmp_path / "out").read_bytes() == data
    assert (os.stat(tmp_path / "out").st_mode & 0o777) == 0o600
    blob = bytearray((tmp_path / "in.age").read_bytes())
    blob[-5] ^= 1
    (tmp_path / "bad.age").write_bytes(bytes(blob))
    with pytest.raises(strongbox.DecryptError):
        strongbox.decrypt_file(tmp_path / "bad.age", tmp_path / "bad.out", [ident])
    assert not (tmp_path / "bad.out").exists()
    assert os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) or True
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    with pytest.raises(strongbox.Error):
        strongbox.encrypt_file(tmp_path / "missing", tmp_path / "x.age", [ident.to_public()])
