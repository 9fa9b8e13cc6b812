"""What the module links and maps; the SQLite extension."""
import glob
import os
import sqlite3
import subprocess
import sys

import strongbox
import strongbox.sqlite


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
