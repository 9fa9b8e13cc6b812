"""What the module links and maps; the SQLite extension."""
import glob
import os
import sqlite3
import subprocess
import sys

import strongbox
import strongbox.sqlite

import pytest


def test_core_module_needs_only_libcrypto():
    so = strongbox._strongbox.__file__
    needed = subprocess.run(["objdump", "-p", so], capture_output=True, text=True,
                            check=True).stdout
    libs = sorted(l.split()[1] for l in needed.splitlines() if l.strip().startswith("NEEDED"))
    assert [l for l in libs if not l.startswith(("libc.so", "libm.so", "libpthread", "ld-linux"))] == \
        ["libcrypto.so.3"], libs


def test_importing_strongbox_does_not_map_libcurl():
    code = ("import strongbox, strongbox.x25519, strongbox.ssh; "
            "strongbox.encrypt(b'x', [strongbox.x25519.Identity.generate().to_public()]); "
            "print('libcurl' in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sqlite_extension_loads():
    con = sqlite3.connect(":memory:")
    strongbox.sqlite.enable(con)
    assert con.execute("SELECT sbx_is_encrypted(x'00')").fetchone() == (0,)
    assert os.path.exists(strongbox.sqlite.path())


def test_type_stubs_cover_the_public_names():
    import ast
    import inspect

    import strongbox.kms
    import strongbox.kms.testing

    pkg = os.path.dirname(strongbox.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    for mod in (strongbox, strongbox.x25519, strongbox.ssh, strongbox.passphrase,
                strongbox.sqlite, strongbox.kms, strongbox.kms.testing):
        stub = os.path.splitext(mod.__file__)[0] + ".pyi"
        with open(stub) as f:
            tree = ast.parse(f.read())
        names = {n.name for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        names |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                  for a in n.names}
        names |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                  for t in ([n.target] if isinstance(n, ast.AnnAssign) else n.targets)
                  if isinstance(t, ast.Name)}
        public = getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")])
        missing = [n for n in public if n not in names and not inspect.ismodule(getattr(mod, n))]
        assert not missing, (mod.__name__, missing)
        for name in public:  # and every public thing has a docstring
            obj = getattr(mod, name)
            if callable(obj):
                assert obj.__doc__, f"{mod.__name__}.{name} has no docstring"


def test_sqlite_functions_round_trip_with_a_file_key(tmp_path, sbx):
    key = tmp_path / "records.key"
    subprocess.run([sbx, "keygen", "--symmetric", "-o", str(key)], check=True,
                   capture_output=True)
    con = sqlite3.connect(":memory:")
    strongbox.sqlite.enable(con)
    ref = f"file:{key}"
    (blob,) = con.execute("SELECT sbx_encrypt('123-45-6789', ?, 'users.ssn.1')", (ref,)).fetchone()
    assert b"123-45" not in bytes(blob)
    assert con.execute("SELECT sbx_is_encrypted(?)", (blob,)).fetchone() == (1,)
    assert con.execute("SELECT sbx_decrypt(?, 'users.ssn.1')", (blob,)).fetchone() == \
        ("123-45-6789",)
    with pytest.raises(sqlite3.Error):
        con.execute("SELECT sbx_decrypt(?, 'users.ssn.2')", (blob,)).fetchone()
    con.close()
