"""Build the strongbox Python package (see docs/python.md).

    ENV/bin/pip install --no-build-isolation ./python

The extension modules link the tree's static libraries:

  strongbox._strongbox  libstrongbox.a (libcrypto only): keys, age, streams,
                        TemporaryFile. Importing strongbox loads just this.
  strongbox._kms        libstrongbox-kms.a (libcurl, jansson, libssl), loaded
                        by strongbox.kms only; it takes every core function
                        from _strongbox (promoted to the global symbol scope
                        first), so there is one copy of the library.
  strongbox/sbx_sqlite  the SQLite extension (sqlite/sbx_sqlite.c) over both
                        static libraries, loaded by strongbox.sqlite.enable().

The static libraries come from a CMake build directory: $SBX_BUILD_DIR if
set, else ../build when it has them (scripts/build.sh build), else this
script configures and builds them into python/build/cmake.
"""
import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBS = ("libstrongbox.a", "libstrongbox-kms.a")


def _has_libs(d):
    return all(os.path.exists(os.path.join(d, n)) for n in LIBS)


def find_build_dir():
    env = os.environ.get("SBX_BUILD_DIR")
    if env:
        if not _has_libs(env):
            sys.exit(f"SBX_BUILD_DIR={env} has no {' and '.join(LIBS)}; build the tree first")
        return os.path.abspath(env)
    default = os.path.join(ROOT, "build")
    if _has_libs(default):
        return default
    own = os.path.join(HERE, "build", "cmake")
    subprocess.check_call(["cmake", "-S", ROOT, "-B", own, "-G", "Ninja",
                           "-DSBX_BUILD_TESTS=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    subprocess.check_call(["cmake", "--build", own, "--target", "strongbox_static",
                           "strongbox_kms_static"])
    return own


# libstrongbox takes BLAKE2b from libb2's static archive (libb2-dev), as libstrongbox.so does:
# linked in and kept internal, so that the modules still need only libcrypto at run time.
LIBB2 = ["-l:libb2.a", "-Wl,--exclude-libs,libb2.a"]


def pkg_libs(*names):
    """Linker flags, placed after the archives (the linker runs --as-needed)."""
    return subprocess.check_output(["pkg-config", "--libs", *names], text=True).split()


class BuildExt(build_ext):
    def build_extensions(self):
        self.force = True  # the archives may have changed under an unchanged source file
        build = find_build_dir()
        core = os.path.join(build, "libstrongbox.a")
        kms = os.path.join(build, "libstrongbox-kms.a")
        for ext in self.extensions:
            if ext.name == "strongbox._strongbox":
                # The whole archive, so that every sbx_* function is exported
                # for strongbox._kms and the SQLite extension's peers.
                ext.extra_link_args = ["-Wl,--whole-archive", core, "-Wl,--no-whole-archive",
                                       *LIBB2, *pkg_libs("libcrypto"), "-lpthread"]
            elif ext.name == "strongbox._kms":
                # No libstrongbox here: its symbols come from _strongbox.
                ext.extra_link_args = ["-Wl,--whole-archive", kms, "-Wl,--no-whole-archive",
                                       *pkg_libs("libcurl", "jansson", "libssl", "libcrypto")]
            else:  # the SQLite extension: a self-contained copy, loaded by SQLite
                ext.extra_link_args = [kms, core, *LIBB2, "-Wl,--no-undefined",
                                       *pkg_libs("libcurl", "jansson", "libssl", "libcrypto"),
                                       "-lpthread"]
        super().build_extensions()

    def get_export_symbols(self, ext):
        if ext.name == "strongbox.sbx_sqlite":
            return ["sqlite3_sbxsqlite_init"]
        return super().get_export_symbols(ext)


INCLUDE = [os.path.join(ROOT, "include")]
CFLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-Wno-cast-function-type"]

setup(
    name="strongbox",
    version="0.1.0",
    description="age file encryption, encrypted temporary files and key-server client "
                "over libstrongbox",
    packages=["strongbox", "strongbox.kms"],
    package_data={"strongbox": ["py.typed", "*.pyi"], "strongbox.kms": ["*.pyi"]},
    include_package_data=False,
    python_requires=">=3.9",
    ext_modules=[
        Extension("strongbox._strongbox", ["src/_strongbox.c", "src/secfile.c"], include_dirs=INCLUDE,
                  extra_compile_args=CFLAGS),
        Extension("strongbox._kms", ["src/_kms.c"], include_dirs=INCLUDE,
                  extra_compile_args=CFLAGS),
        Extension("strongbox.sbx_sqlite", [os.path.join(ROOT, "sqlite", "sbx_sqlite.c")],
                  include_dirs=INCLUDE, extra_compile_args=CFLAGS),
    ],
    cmdclass={"build_ext": BuildExt},
    zip_safe=False,
)
