#!/usr/bin/env bash
# tests/kms/age_plugin_test.sh - age-plugin-sbxkms: the stock age writes and
# opens key-server files through a real `sbx kms serve --dev`. The recipient
# from `sbx kms age-recipient` makes age write the very stanza `sbx encrypt
# --kms` writes; the identity from `sbx kms age-identity` opens files made
# either way, in age and in sbx; the token and the trust come from the
# SBX_KMS_* variables and the token goes only to allowed servers; a wrong
# token, a server that is down, a server not allowed: age fails with the
# key server's message and writes nothing.
#
#   bash tests/kms/age_plugin_test.sh build/sbx build
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2/age-plugin-sbxkms" ]; then
    echo "usage: $0 PATH_TO_SBX BUILD_DIR (with age-plugin-sbxkms)" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BUILD=$(cd "$2" && pwd)
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
for tool in curl age; do
    command -v "$tool" >/dev/null || fatal "$tool is installed"
done
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-age-plugin.XXXXXX")
cleanup() {
    kms_kill
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
umask 077
CHECK_SHOW=err
unset SBX_KMS_TOKEN SBX_KMS_TOKEN_FILE SBX_KMS_CACERT SBX_KMS_FINGERPRINT SBX_KMS_URL \
    SBX_KMS_CLIENT_CERT SBX_KMS_CLIENT_KEY SBX_KMS_FAILOVER
# age finds the plugin in PATH, as it would beside an installed sbx.
export PATH=$BUILD:$PATH
check "age-plugin-sbxkms is the one built beside sbx" \
    test "$(command -v age-plugin-sbxkms)" = "$BUILD/age-plugin-sbxkms"

CHECK_LOG=$T/srv.log
kms_start "$T/srv" "$T/srv.log" --dev --threads 2 || fatal "the key server starts"
DEV_TOKEN=sbxt_dev-insecure-admin-token
curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $DEV_TOKEN" \
    -H 'Content-Type: application/json' -X POST "$URL/v1/keys/files" -d '{}' >/dev/null ||
    fatal "create the key"
echo "$DEV_TOKEN" >token
echo "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" >bad.token
KEY=$URL/files
head -c 100000 /dev/urandom >plain
export SBX_KMS_TOKEN_FILE=$T/token SBX_KMS_CACERT=$CA

# ------------------------------------------------------------------ the strings
REC=$("$SBX" kms age-recipient "$KEY" 2>err)
check "sbx kms age-recipient prints age1sbxkms1..." grep -q '^age1sbxkms1' <<<"$REC"
"$SBX" kms age-identity >kms.id 2>err
check "sbx kms age-identity prints AGE-PLUGIN-SBXKMS-1..." grep -qx 'AGE-PLUGIN-SBXKMS-1[0-9A-Z]*' kms.id
"$SBX" kms age-identity "$URL" >kms-url.id 2>err
check "  with an allowed server" grep -q '^AGE-PLUGIN-SBXKMS-1' kms-url.id
"$SBX" kms age-recipient http://example.com/files >out 2>err
check "a key URL that is not https: usage error (exit 2)" test $? -eq 2
"$SBX" kms age-identity ftp://x >out 2>err
check "an identity URL that is not https: usage error (exit 2)" test $? -eq 2

# ------------------------------------------------------------------ age writes, both open
age -r "$REC" -o a.age plain 2>err
check "age -r \$(sbx kms age-recipient URL) writes the file" test -s a.age
"$SBX" encrypt --kms "$KEY" -o s.age plain 2>err
check "  with the same sbx-kms stanza line as sbx encrypt --kms" \
    test "$(grep -a -m1 '^-> ' a.age)" = "$(grep -a -m1 '^-> ' s.age)"
check "  the line names the key URL" grep -aqx -- "-> sbx-kms $KEY" a.age
age -d -i kms.id -o a.out a.age 2>err
check "age -d -i kms.id opens age's file" cmp -s plain a.out
age -d -i kms.id -o s.out s.age 2>err
check "age -d -i kms.id opens sbx's file" cmp -s plain s.out
"$SBX" decrypt -o a.sbx.out a.age 2>err
check "sbx decrypt (no -i) opens age's file" cmp -s plain a.sbx.out
# Without libstrongbox-kms in sbx itself, only the plugin can open it.
env SBX_KMS_LIBRARY="$T/no-such-lib.so" "$SBX" decrypt -i kms.id -o a.sbxp.out a.age 2>err
check "sbx decrypt -i kms.id opens it through the plugin (sbx's own client not loaded)" \
    cmp -s plain a.sbxp.out
env -u SBX_KMS_CACERT SBX_KMS_URL="$URL" SBX_KMS_FINGERPRINT="$(openssl x509 -in "$CA" -noout \
    -fingerprint -sha256 | cut -d= -f2)" age -d -i kms.id -o fp.out a.age 2>err
check "SBX_KMS_URL and SBX_KMS_FINGERPRINT work for the plugin" cmp -s plain fp.out
age-keygen -o x.key 2>/dev/null
age -r "$REC" -r "$(age-keygen -y x.key)" -o ax.age plain 2>err
age -d -i x.key -o ax.out ax.age 2>err
check "beside an X25519 recipient, age opens it with the X25519 key" cmp -s plain ax.out
cd / && age -d -i "$T/kms.id" -o "$T/rel.out" "$T/a.age" 2>"$T/err"
cd "$T" || exit 2
check "from another directory (the plugin runs in /)" cmp -s plain rel.out

# ------------------------------------------------------------------ failures
expect_fail "age -d with a wrong token: the key server's 401" 'sbxkms plugin: .*401' \
    env SBX_KMS_TOKEN_FILE="$T/bad.token" age -d -i kms.id -o wt.out a.age
check "  nothing written" test ! -s wt.out
expect_fail "age -r with a wrong token: the key server's 401" 'sbxkms plugin: .*401' \
    env SBX_KMS_TOKEN_FILE="$T/bad.token" age -r "$REC" -o wt.age plain
check "  nothing written" test ! -s wt.age
expect_fail "no trust given: the server is not contacted, and the message says how to allow it" \
    'not contacted.*SBX_KMS_URL' env -u SBX_KMS_CACERT age -d -i kms.id -o nt.out a.age
"$SBX" kms age-identity https://127.0.0.1:1 >elsewhere.id
expect_fail "an identity that allows another server only: not contacted" \
    'not one of the allowed servers' age -d -i elsewhere.id -o el.out a.age
age -d -i kms-url.id -o ku.out a.age 2>err
check "an identity that names the server opens it" cmp -s plain ku.out
kms_stop
expect_fail "age -d with the server down: the plugin says so" 'sbxkms plugin: .*127.0.0.1' \
    age -d -i kms.id -o down.out a.age
check "  nothing written" test ! -s down.out
expect_fail "age -r with the server down: the plugin says so" 'sbxkms plugin: .*127.0.0.1' \
    age -r "$REC" -o down.age plain
check "  nothing written" test ! -s down.age
finish
