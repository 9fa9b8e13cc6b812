"""strongbox.kms against a real `sbx kms serve --dev`; EncryptedPersistent;
one copy of the library for the core and the key-server part."""
import io
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

import strongbox

DEV_TOKEN = "sbxt_dev-insecure-admin-token"


@pytest.fixture(scope="module")
def server(sbx, tmp_path_factory):
    d = tmp_path_factory.mktemp("kms")
    ready = d / "ready"
    log = open(d / "log", "wb")
    proc = subprocess.Popen([sbx, "kms", "serve", "--dev", "--threads", "2", "--data-dir",
                             str(d / "data"), "--listen", "127.0.0.1:0", "--ready-file",
                             str(ready)], stdout=log, stderr=subprocess.STDOUT)
    port = None
    for _ in range(300):  # up to 30 s: the server writes its port when it listens
        if ready.exists() and ready.read_text().strip().isdigit():
            port = int(ready.read_text().strip())
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if port is None:
        proc.kill()
        pytest.fail("sbx kms serve did not start: " + (d / "log").read_text())
    yield {"url": f"https://127.0.0.1:{port}", "cacert": str(d / "data" / "tls" / "cert.pem")}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    log.close()


@pytest.fixture(scope="module")
def kms(server):
    import strongbox.kms
    return strongbox.kms


@pytest.fixture(scope="module")
def client(kms, server):
    return kms.Client(server["url"], token=DEV_TOKEN, cacert=server["cacert"])


def test_client_keys_datakeys_encrypt_decrypt_rewrap(client):
    meta = client.create_key("py-app")
    assert meta["name"] == "py-app"
    ct = client.encrypt("py-app", b"hello", {"tenant": "a"})
    assert client.decrypt("py-app", ct, {"tenant": "a"}) == b"hello"
    with pytest.raises(strongbox.KmsError):
        client.decrypt("py-app", ct, {"tenant": "b"})
    dk = client.datakey("py-app")
    assert len(dk.plaintext) == 32 and dk.ciphertext.startswith("sbx:v1:")
    assert client.decrypt("py-app", dk.ciphertext) == dk.plaintext
    client.rotate_key("py-app")
    re = client.rewrap("py-app", ct, {"tenant": "a"})
    assert re.startswith("sbx:v2:")
    assert client.decrypt("py-app", re, {"tenant": "a"}) == b"hello"
    with pytest.raises(strongbox.KmsError) as e:
        client.key("no-such-key")
    assert e.value.code_name == "SBX_ENOTFOUND"


def test_token_file_and_environment(kms, server, tmp_path, monkeypatch):
    tf = tmp_path / "token"
    tf.write_text(DEV_TOKEN + "\n")
    c = kms.Client(server["url"], token_file=tf, cacert=server["cacert"])
    c.create_key("py-tokfile")
    monkeypatch.setenv("SBX_KMS_TOKEN", DEV_TOKEN)
    monkeypatch.setenv("SBX_KMS_CACERT", server["cacert"])
    assert kms.Client(server["url"]).key("py-tokfile")["name"] == "py-tokfile"
    bad = kms.Client(server["url"], token="sbxt_" + "A" * 43, cacert=server["cacert"])
    with pytest.raises(strongbox.KmsError):
        bad.key("py-tokfile")


def test_age_files_through_the_server_use_one_copy_of_the_library(client):
    # The sbx-kms stanza type registered by the key-server part is in the
    # core's registry (a second copy of libstrongbox would have its own).
    assert strongbox._strongbox.stanza_type_registered("sbx-kms")
    client.create_key("py-files")
    data = os.urandom(200_000)
    blob = strongbox.encrypt(data, [client.recipient("py-files")])
    assert b"-> sbx-kms " in blob
    assert strongbox.decrypt(blob, [client.identity()]) == data
    out = io.BytesIO()
    with strongbox.open(out, "wb", recipients=[client.recipient("py-files")]) as f:
        f.write(data)
    with strongbox.open(io.BytesIO(out.getvalue()), "rb", identities=[client.identity()]) as f:
        assert f.read() == data
    with pytest.raises(strongbox.DecryptError):
        strongbox.decrypt(blob, [strongbox.x25519.Identity.generate()])


def test_curl_is_mapped_only_once_kms_is_used():
    code = ("import strongbox; m1 = 'libcurl' in open('/proc/self/maps').read(); "
            "strongbox.kms.Client; m2 = 'libcurl' in open('/proc/self/maps').read(); "
            "m3 = 'libstrongbox' in open('/proc/self/maps').read(); print(m1, m2, m3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


def test_local_facility_keas_workflow(kms, server, tmp_path):
    fac = kms.LocalKeyManagementFacility(server["url"], token=DEV_TOKEN, cacert=server["cacert"])
    kek = fac.generate()
    assert kek.startswith(b"sbx-kek-1:")
    sealed = fac.encrypt(kek, b"patient record 17")
    assert b"patient" not in sealed
    assert fac.decrypt(kek, sealed) == b"patient record 17"
    assert fac.cache.misses == 1 and fac.cache.hits >= 1
    fresh = kms.LocalKeyManagementFacility(server["url"], token=DEV_TOKEN,
                                           cacert=server["cacert"])
    assert fresh.decrypt(kek.decode(), sealed) == b"patient record 17"
    with pytest.raises(strongbox.KmsError):
        fac.decrypt(b"sbx-kek-1:" + b"0" * 10 + b":nope", sealed)
    other = fac.generate()
    with pytest.raises(strongbox.DecryptError):
        fac.decrypt(other, sealed)
    src, dst, back = io.BytesIO(b"file body" * 1000), io.BytesIO(), io.BytesIO()
    fac.encrypt_file(kek, src, dst)
    fac.decrypt_file(kek, io.BytesIO(dst.getvalue()), back)
    assert back.getvalue() == b"file body" * 1000
    keyfile = tmp_path / "kek"
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, kek + b"\n")
    os.close(fd)
    holder = kms.KeyHolder(keyfile)
    assert holder.key == kek
    assert fac.decrypt(holder, sealed) == b"patient record 17"


def test_local_facility_cache_limits_refetch(kms, server):
    fac = kms.LocalKeyManagementFacility(server["url"], token=DEV_TOKEN, cacert=server["cacert"],
                                         max_uses=2, max_bytes=100)
    kek = fac.generate()
    for _ in range(4):
        fac.encrypt(kek, b"x")
    assert (fac.cache.misses, fac.cache.hits) == (2, 2)  # every second use fetches again
    fac.encrypt(kek, b"y" * 150)  # past max_uses and max_bytes: fetched again
    assert fac.cache.misses == 3
    sealed = fac.encrypt(kek, b"z")
    assert fac.decrypt(kek, sealed) == b"z"


def test_encrypted_persistent_state_holds_no_plaintext(kms, server):
    import persistent  # noqa: F401 (Debian python3-persistent)

    fac = kms.LocalKeyManagementFacility(server["url"], token=DEV_TOKEN, cacert=server["cacert"])
    kms.register(fac, fac.generate())
    obj = Patient("Jane Roe", "123-45-6789")
    state = obj.__getstate__()
    assert list(state) == ["__sbx_sealed__"]
    blob = pickle.dumps(obj)
    assert b"Jane" not in blob and b"123-45" not in blob
    back = pickle.loads(blob)
    assert (back.name, back.ssn) == ("Jane Roe", "123-45-6789")


def test_testing_facility_needs_no_server(tmp_path):
    from strongbox.kms.testing import TestingKeyManagementFacility
    fac = TestingKeyManagementFacility(storage_dir=str(tmp_path))
    kek = fac.generate()
    assert len(os.listdir(tmp_path)) == 1
    assert fac.decrypt(kek, fac.encrypt(kek, b"x")) == b"x"


try:
    from strongbox.kms import EncryptedPersistent as _Base
except Exception:  # pragma: no cover
    _Base = object


class Patient(_Base):
    def __init__(self, name, ssn):
        self.name = name
        self.ssn = ssn
