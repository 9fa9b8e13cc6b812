#!/usr/bin/env bash
# tests/packaging/deps_test.sh BUILD_DIR SOURCE_DIR - what the built binaries load
# (issue 13: the core library links libcrypto only; sbx starts like age).
#
#   readelf -d libstrongbox.so   NEEDED is libcrypto and libc, nothing else (the
#                                dynamic loader ld-linux is allowed: glibc 2.36 lists
#                                it for __tls_get_addr, the thread-local error state,
#                                and it is mapped in every dynamic process anyway;
#                                libpthread and libdl are not: glibc 2.34+ has them in
#                                libc and ships no libpthread.so/libdl.so to link;
#                                libasan and libubsan in an SBX_SANITIZE build)
#   ldd sbx                      no libcurl, libevent, libpq, libsqlite3, jansson or
#                                GnuTLS, directly or through another library
#
# Prints one line per check and "N passed, M failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -d "$2" ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
# shellcheck source=../lib/check.sh
. "$2/tests/lib/check.sh"
command -v readelf >/dev/null || fatal "readelf not found (binutils)"

# find_built NAME: BUILD/NAME, else the first file or link called NAME in the build tree.
find_built() {
    if [ -e "$BUILD/$1" ]; then
        echo "$BUILD/$1"
    else
        find "$BUILD" -name "$1" \( -type f -o -type l \) -not -path '*/CMakeFiles/*' -print -quit
    fi
}
needed() { # NEEDED entries of an ELF file, one per line
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# ---- libstrongbox.so: libcrypto and libc only ----
lib=$(find_built libstrongbox.so)
[ -n "$lib" ] || fatal "libstrongbox.so not found under $BUILD (target strongbox_shared built?)"
echo "#    $lib NEEDED: $(needed "$lib" | tr '\n' ' ')"
allowed='libcrypto\.so\.3|libc\.so\.6|ld-linux[-a-z0-9_.]*\.so\.[0-9]+'
if grep -q '^SBX_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    allowed+='|lib(a|ub)san\.so\.[0-9]+' # the sanitizer runtimes of an SBX_SANITIZE build
fi
extra=$(needed "$lib" | grep -Ev "^($allowed)\$" | tr '\n' ' ')
if [ -z "$extra" ]; then
    ok "libstrongbox.so NEEDED holds only libcrypto and libc"
else
    not_ok "libstrongbox.so NEEDED holds only libcrypto and libc; also needs: ${extra% }"
fi
needed "$lib" | grep -qx 'libcrypto\.so\.3' && ok "libstrongbox.so needs libcrypto.so.3" ||
    not_ok "libstrongbox.so needs libcrypto.so.3"

# ---- sbx: none of the key server's or key-server client's libraries ----
sbx=$(find_built sbx)
[ -n "$sbx" ] && [ -x "$sbx" ] || fatal "sbx not found under $BUILD"
if ! loaded=$(ldd "$sbx" 2>&1); then
    fatal "ldd $sbx: $loaded"
fi
echo "#    ldd $sbx: $(echo "$loaded" | wc -l) libraries"
if echo "$loaded" | grep -q 'not found'; then
    not_ok "ldd sbx resolves every library: $(echo "$loaded" | grep 'not found' | tr -s ' \t' ' ')"
fi
for bad in libcurl libevent libpq libsqlite3 libjansson libgnutls; do
    hit=$(echo "$loaded" | awk -v p="$bad" 'index($1, p) == 1 {print $1}' | tr '\n' ' ')
    if [ -z "$hit" ]; then
        ok "sbx does not load $bad"
    else
        direct=$(needed "$sbx" | grep "^$bad" | tr '\n' ' ')
        not_ok "sbx does not load $bad: loads ${hit% }${direct:+ (NEEDED by sbx itself: ${direct% })}"
    fi
done

finish
