#!/usr/bin/env bash
# tests/packaging/install_test.sh BUILD_DIR SOURCE_DIR - the installed tree and its
# pkg-config files (issue 13), checked the way a user of the library meets them:
#
#   cmake --install BUILD_DIR --prefix TMP/somewhere, then with PKG_CONFIG_PATH on
#   its pkgconfig directory:
#   - strongbox.pc and strongbox-kms.pc exist and report TMP/somewhere as their prefix
#     (--variable=prefix, --cflags, --libs), and still do once the tree is moved;
#   - strongbox.pc requires libcrypto only (no libssl, libcurl, jansson);
#     strongbox-kms.pc requires strongbox, with libcurl and jansson private;
#   - static_link.c (age and tmpfile calls) compiles with
#     `pkg-config --cflags strongbox` and links with `pkg-config --static --libs
#     strongbox` against libstrongbox.a (-Wl,-Bstatic), has no NEEDED libstrongbox,
#     and runs;
#   - the installed bin/sbx starts (sbx --version) without LD_LIBRARY_PATH;
#   - bin/age-plugin-sbxkms is installed beside it, starts, and speaks the protocol.
#
# CC (default cc) compiles the program. Prints one line per check and
# "N passed, M failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -d "$2" ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
CC=${CC:-cc}
# shellcheck source=../lib/check.sh
. "$SRC/tests/lib/check.sh"
for tool in cmake pkg-config readelf "$CC"; do
    command -v "$tool" >/dev/null || fatal "$tool not found"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-install-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
# shellcheck disable=SC2034 # read by check.sh
CHECK_SHOW=$T/err

# ---- install ----
P=$T/somewhere
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>"$T/err" ||
    fatal "cmake --install $BUILD --prefix $P"
ok "cmake --install --prefix $P"
pc=$(find "$P" -name strongbox.pc -path '*/pkgconfig/*' -print -quit)
[ -n "$pc" ] || fatal "strongbox.pc installed under $P/lib*/pkgconfig"
pcdir=$(dirname "$pc")
[ -f "$pcdir/strongbox-kms.pc" ] && ok "strongbox-kms.pc installed beside strongbox.pc" ||
    not_ok "strongbox-kms.pc installed beside strongbox.pc ($pcdir)"
export PKG_CONFIG_PATH=$pcdir
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# ---- the prefix follows the tree ----
canon() { realpath -m "$1"; }
# check_prefix PC ROOT: prefix, -I and -L of PC all resolve inside ROOT.
check_prefix() {
    local pc=$1 root=$2 got inc lib
    got=$(pkg-config --variable=prefix "$pc" 2>"$T/err")
    [ "$(canon "$got")" = "$root" ] && ok "$pc.pc: prefix is $root" ||
        not_ok "$pc.pc: prefix is $root (got '$got')"
    inc=$(pkg-config --cflags-only-I "$pc" 2>"$T/err" | tr ' ' '\n' | sed -n 's/^-I//p' | head -1)
    [ -n "$inc" ] && [ -f "$inc/strongbox/age.h" ] && [ "$(canon "$inc")" = "$root/include" ] &&
        ok "$pc.pc: --cflags gives -I$root/include (strongbox/age.h there)" ||
        not_ok "$pc.pc: --cflags gives -I$root/include (got '$(pkg-config --cflags "$pc")')"
    lib=$(pkg-config --libs-only-L "$pc" 2>"$T/err" | tr ' ' '\n' | sed -n 's/^-L//p' | head -1)
    [ -n "$lib" ] && [ "$(canon "$lib")" = "$(canon "$pcdir/..")" ] &&
        ok "$pc.pc: --libs gives -L$(canon "$pcdir/..")" ||
        not_ok "$pc.pc: --libs gives -L$(canon "$pcdir/..") (got '$(pkg-config --libs "$pc")')"
}
check_prefix strongbox "$P"
check_prefix strongbox-kms "$P"

# ---- what each file requires ----
req=$(pkg-config --print-requires-private strongbox 2>"$T/err" | awk '{print $1}' | sort -u |
    tr '\n' ' ')
[ "$req" = "libcrypto " ] && ok "strongbox.pc: Requires.private is libcrypto only" ||
    not_ok "strongbox.pc: Requires.private is libcrypto only (got: ${req% })"
[ -z "$(pkg-config --print-requires strongbox)" ] && ok "strongbox.pc: no public Requires" ||
    not_ok "strongbox.pc: no public Requires (got: $(pkg-config --print-requires strongbox))"
bad=$(grep -Eo 'libcurl|jansson|libssl|libevent|libpq|sqlite3' "$pc" | sort -u | tr '\n' ' ')
[ -z "$bad" ] && ok "strongbox.pc names no libcurl, jansson, libssl, libevent, libpq, sqlite3" ||
    not_ok "strongbox.pc names no libcurl, jansson, libssl, libevent, libpq, sqlite3 (names: ${bad% })"
static_libs=$(pkg-config --static --libs strongbox 2>"$T/err")
bad=$(echo "$static_libs" | tr ' ' '\n' | grep -E '^-l(curl|jansson|ssl|event|pq|sqlite3)' |
    tr '\n' ' ')
[ -z "$bad" ] && ok "pkg-config --static --libs strongbox links no key-server library" ||
    not_ok "pkg-config --static --libs strongbox links no key-server library (${bad% })"
[ "$(pkg-config --print-requires strongbox-kms | awk '{print $1}')" = strongbox ] &&
    ok "strongbox-kms.pc: Requires strongbox" ||
    not_ok "strongbox-kms.pc: Requires strongbox (got: $(pkg-config --print-requires strongbox-kms))"
req=" $(pkg-config --print-requires-private strongbox-kms | awk '{print $1}' | tr '\n' ' ')"
[[ $req == *" libcurl "* && $req == *" jansson "* ]] &&
    ok "strongbox-kms.pc: Requires.private has libcurl and jansson" ||
    not_ok "strongbox-kms.pc: Requires.private has libcurl and jansson (got:${req% })"
pkg-config --libs strongbox-kms | grep -q -- '-lstrongbox-kms' &&
    ok "strongbox-kms.pc: --libs has -lstrongbox-kms" ||
    not_ok "strongbox-kms.pc: --libs has -lstrongbox-kms (got: $(pkg-config --libs strongbox-kms))"

# ---- a program linked statically with libstrongbox.a, as a user builds it ----
libdir=$(canon "$(pkg-config --variable=libdir strongbox)")
[ -f "$libdir/libstrongbox.a" ] && ok "libstrongbox.a installed in $libdir" ||
    not_ok "libstrongbox.a installed in $libdir"
# -Wl,-Bstatic around -lstrongbox: the archive, even with libstrongbox.so beside it;
# libcrypto and libc stay shared.
case " $static_libs " in
*" -lstrongbox "*) ;;
*) not_ok "pkg-config --static --libs strongbox has -lstrongbox (got: $static_libs)" ;;
esac
libs=$(echo " $static_libs " | sed 's/ -lstrongbox / -Wl,-Bstatic -lstrongbox -Wl,-Bdynamic /')
extra_flags=()
if grep -q '^SBX_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    extra_flags=("-fsanitize=address,undefined") # the archive is instrumented
fi
prog=$T/static_link
# shellcheck disable=SC2046,SC2086 # pkg-config output is a list of words
if "$CC" -std=c11 -Wall -Wextra -Werror "${extra_flags[@]}" $(pkg-config --cflags strongbox) \
    -o "$prog" "$SRC/tests/packaging/static_link.c" $libs -Wl,-Map,"$T/link.map" >"$T/err" 2>&1; then
    ok "static_link.c compiles and links with pkg-config --static --libs strongbox"
    echo "#    NEEDED: $(readelf -d "$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | tr '\n' ' ')"
    if readelf -d "$prog" | grep NEEDED | grep -q 'libstrongbox'; then
        not_ok "static_link has no NEEDED libstrongbox (libstrongbox.a was not used)"
    else
        ok "static_link has no NEEDED libstrongbox (libstrongbox.a was used)"
    fi
    if env -u LD_LIBRARY_PATH "$prog" >"$T/out" 2>"$T/err" && grep -q 'static_link: ok' "$T/out"; then
        ok "static_link runs: $(cat "$T/out")"
    else
        not_ok "static_link runs"
    fi
else
    not_ok "static_link.c compiles and links with pkg-config --static --libs strongbox"
    echo "#    $CC ... $(pkg-config --cflags strongbox) ... $libs"
    undef=$(grep -o "undefined reference to \`[^']*'" "$T/err" | sort -u | sed "s/undefined reference to //" |
        head -n 12 | tr '\n' ' ')
    [ -n "$undef" ] && echo "#    undefined: $undef"
    # Which members of libstrongbox.a hold those references, and what pulled them in.
    members=$(sed -n 's/.*libstrongbox\.a(\([^)]*\)): in function.*/\1/p' "$T/err" | sort -u)
    if [ -n "$members" ] && [ -f "$T/link.map" ] && command -v python3 >/dev/null; then
        # shellcheck disable=SC2086 # one argument per member
        python3 "$SRC/tests/packaging/link_chain.py" "$T/link.map" $members | sed 's/^/#    why: /'
    fi
fi

# ---- the installed sbx finds its library wherever the tree is ----
if [ -x "$P/bin/sbx" ]; then
    env -u LD_LIBRARY_PATH "$P/bin/sbx" --version >"$T/out" 2>"$T/err" &&
        ok "installed bin/sbx --version runs without LD_LIBRARY_PATH" ||
        not_ok "installed bin/sbx --version runs without LD_LIBRARY_PATH"
else
    not_ok "bin/sbx installed"
fi

# ---- the age plugin of the key server is installed beside sbx ----
if [ -x "$P/bin/age-plugin-sbxkms" ]; then
    ok "bin/age-plugin-sbxkms installed beside bin/sbx (in the PATH where age looks)"
    env -u LD_LIBRARY_PATH "$P/bin/age-plugin-sbxkms" --help >"$T/out" 2>"$T/err" &&
        grep -q 'age-plugin=recipient-v1' "$T/out" &&
        ok "installed age-plugin-sbxkms runs without LD_LIBRARY_PATH" ||
        not_ok "installed age-plugin-sbxkms runs without LD_LIBRARY_PATH"
    # It speaks the protocol: an empty identity-v1 run answers "done".
    printf -- '-> done\n\n' | env -u LD_LIBRARY_PATH "$P/bin/age-plugin-sbxkms" \
        --age-plugin=identity-v1 >"$T/out" 2>"$T/err" && grep -qx -- '-> done' "$T/out" &&
        ok "installed age-plugin-sbxkms answers an identity-v1 run" ||
        not_ok "installed age-plugin-sbxkms answers an identity-v1 run"
else
    not_ok "bin/age-plugin-sbxkms installed"
fi

# ---- move the tree: the pkg-config files follow it ----
M=$T/moved
mv "$P" "$M"
export PKG_CONFIG_PATH=$M/${pcdir#"$P"/}
pcdir=$PKG_CONFIG_PATH
check_prefix strongbox "$M"

finish
