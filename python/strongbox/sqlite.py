"""strongbox.sqlite: the SQLite extension (sbx_encrypt, sbx_decrypt, sbx_is_encrypted).

The extension is built with the package (``strongbox/sbx_sqlite*.so``), so
nothing needs installing system-wide; ``path()`` gives its file.
"""
import glob
import os

__all__ = ["enable", "path"]


def path():
    """The file of the SQLite extension shipped in this package."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "sbx_sqlite*.so")))
    if not found:
        raise FileNotFoundError("strongbox's sbx_sqlite extension is missing from the package")
    return found[0]


def enable(connection):
    """Load the extension into a ``sqlite3.Connection`` (its functions then
    work in that connection's SQL). Extension loading is switched on only
    for this call."""
    connection.enable_load_extension(True)
    try:
        connection.execute("SELECT load_extension(?, 'sqlite3_sbxsqlite_init')", (path(),))
    finally:
        connection.enable_load_extension(False)
    return connection
