"""Shared fixtures: the sbx binary, the real age, key pairs of every type."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def sbx_path():
    p = os.environ.get("SBX_BIN") or os.path.join(ROOT, "build", "sbx")
    return p if os.path.exists(p) else None


@pytest.fixture(scope="session")
def sbx():
    p = sbx_path()
    if p is None:
        pytest.fail("sbx not found: set SBX_BIN or build the tree into build/")
    return p


@pytest.fixture(scope="session")
def age():
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        pytest.fail("the real age is needed (scripts/deps.sh installs it)")
    return "age"


def run(*cmd, input=None):
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout


@pytest.fixture(scope="session")
def keydir(tmp_path_factory):
    """ssh-ed25519, ssh-rsa (OpenSSH) and PEM RSA key pairs, made by the real tools."""
    d = tmp_path_factory.mktemp("keys")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "ed"))
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(d / "rsa"))
    run("openssl", "genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", str(d / "pem.key"))
    run("openssl", "pkey", "-in", str(d / "pem.key"), "-pubout", "-out", str(d / "pem.pub"))
    return d
