#!/usr/bin/env bash
# tests/kms/sqlite_test.sh - the SQLite extension sbx_sqlite.so in the real
# sqlite3 shell, with a key file and with a real `sbx kms serve --dev`:
# no plaintext in the database file (or its WAL) after inserts, a value
# copied to another row does not decrypt, in-place conversion of a
# plaintext column in one transaction keeps every row, a failure in the
# middle of a conversion leaves the table as it was, a wrong token fails.
#
#   bash tests/kms/sqlite_test.sh build/sbx build
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, sqlite3, curl.
set -uo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX BUILD_DIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/kms.sh
. "$HERE/../lib/kms.sh"
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
EXT=$(cd "$2" && pwd)/sbx_sqlite
for tool in sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done
[ -f "$EXT.so" ] || { echo "FAIL - $EXT.so not built"; echo "0 passed, 1 failed"; exit 1; }

# A sanitizer build's extension needs the sanitizer runtimes preloaded into the
# sqlite3 shell (tests/kms/CMakeLists.txt sets SBX_TEST_PRELOAD); the shell's own
# leaks are not ours to report.
if [ -n "${SBX_TEST_PRELOAD:-}" ]; then
    sqlite3() { LD_PRELOAD=$SBX_TEST_PRELOAD ASAN_OPTIONS=detect_leaks=0 command sqlite3 "$@"; }
    export -f sqlite3
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-sqlite-test.XXXXXX")
D=$T/kms
SRV_PID=
cleanup() {
    kms_kill
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2

# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
CHECK_LOG=server.log

# sql DB SQL...: run statements with the extension loaded; stdout and stderr to out.txt/err.txt.
sql() {
    local db=$1
    shift
    sqlite3 -batch -bail "$db" ".load $EXT" "$@" >out.txt 2>err.txt
}
# no_plaintext FILE VALUES_FILE: none of the lines of VALUES_FILE occurs in FILE (or FILE-wal).
no_plaintext() {
    local f v
    for f in "$1" "$1-wal"; do
        [ -f "$f" ] || continue
        while IFS= read -r v; do
            if [ "$(grep -c -a -F -- "$v" "$f")" != 0 ]; then
                echo "       '$v' found in $f"
                return 1
            fi
        done <"$2"
    done
}

# ------------------------------------------------------------------ server
kms_start "$D" server.log --dev --threads 2 || fatal "sbx kms serve --dev started"
TOKEN=sbxt_dev-insecure-admin-token
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{}' "$URL/v1/keys/records")
[ "$code" = 201 ] || fatal "create key records (HTTP $code)"
export SBX_KMS_TOKEN=$TOKEN SBX_KMS_CACERT=$CA SBX_KMS_URL=$URL
KMS="$URL/records"

# ------------------------------------------------------------------ key file
"$SBX" keygen --symmetric -o rec.key 2>err.txt
check "sbx keygen --symmetric makes a 0600 key file" \
    test "$(stat -c %a rec.key)" = 600 -a "$(wc -c <rec.key)" = 45
"$SBX" keygen --symmetric -o rec.key 2>/dev/null
check "sbx keygen --symmetric never overwrites" test $? -ne 0
FILE="file:$T/rec.key"
# A process decrypts only with key files it used or was told to trust (a record names its
# key file, and a planted record could name one of known content).
printf 'CREATE TABLE k(c); INSERT INTO k VALUES (1);\n' | sqlite3 trust.db
sql trust.db "UPDATE k SET c = sbx_encrypt('v', '$FILE', 'k');"
sql trust.db "SELECT sbx_decrypt(c, 'k') FROM k;"
check "a fresh process does not use a key file only a record names" grep -q 'SBX_RECORD_KEYS' err.txt
export SBX_RECORD_KEYS=$T/rec.key
sql trust.db "SELECT sbx_decrypt(c, 'k') FROM k;"
check "... and does with SBX_RECORD_KEYS" grep -qx v out.txt
cp rec.key open.key && chmod 644 open.key
sql x.db "SELECT sbx_encrypt('v', 'file:$T/open.key', 'c');"
check "a key file readable by others is refused (chmod 600)" grep -q 'chmod 600' err.txt

# ------------------------------------------------------------------ inserts: no plaintext on disk
for i in $(seq 1 50); do printf 'SSN-%03d-%05d-secret\n' "$i" $((i * 7919)); done >values.txt
for kind in file kms; do
    ref=$FILE
    [ $kind = kms ] && ref=$KMS
    db=$kind.db
    {
        echo "PRAGMA journal_mode=WAL;"
        echo "CREATE TABLE users(id INTEGER PRIMARY KEY, ssn BLOB, n BLOB, r BLOB, b BLOB);"
        echo "BEGIN;"
        i=0
        while IFS= read -r v; do
            i=$((i + 1))
            echo "INSERT INTO users VALUES ($i, sbx_encrypt('$v', '$ref', 'users.ssn.$i'),"
            echo "  sbx_encrypt($((i * 1000003)), '$ref', 'users.n.$i'),"
            echo "  sbx_encrypt($i.25, '$ref', 'users.r.$i'), sbx_encrypt(x'00ff$(printf %04x "$i")', '$ref', 'users.b.$i'));"
        done <values.txt
        echo "INSERT INTO users VALUES (51, sbx_encrypt(NULL, '$ref', 'users.ssn.51'), NULL, NULL, NULL);"
        echo "COMMIT;"
    } >insert.sql
    sql "$db" ".read insert.sql"
    check "$kind: inserts" test $? -eq 0
    check "$kind: no plaintext value in the database file or its WAL" no_plaintext "$db" values.txt
    sql "$db" "PRAGMA wal_checkpoint(TRUNCATE);" "VACUUM;"
    check "$kind: none after checkpoint and VACUUM either" no_plaintext "$db" values.txt
    sql "$db" "SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users WHERE id <= 50 ORDER BY id;"
    check "$kind: every value decrypts with its row context" cmp -s out.txt values.txt
    sql "$db" "SELECT typeof(sbx_decrypt(n, 'users.n.' || id)), sbx_decrypt(n, 'users.n.' || id),
                      typeof(sbx_decrypt(r, 'users.r.' || id)), sbx_decrypt(r, 'users.r.' || id),
                      typeof(sbx_decrypt(b, 'users.b.' || id)), hex(sbx_decrypt(b, 'users.b.' || id)),
                      sbx_decrypt(ssn, 'users.ssn.' || id) IS NULL
               FROM users WHERE id IN (7, 51) ORDER BY id;"
    check "$kind: integer, real, blob and NULL keep their type" \
        test "$(tr '\n' ';' <out.txt)" = "integer|7000021|real|7.25|blob|00FF0007|0;null||null||null||1;"
    sql "$db" "UPDATE users SET ssn = (SELECT ssn FROM users WHERE id = 1) WHERE id = 2;" \
        "SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users WHERE id = 2;"
    check "$kind: a value copied to another row fails to decrypt" \
        grep -q 'does not authenticate with this context' err.txt
    check "$kind: ... and the error shows no plaintext" bash -c "! grep -q SSN- err.txt out.txt"
    sql "$db" "SELECT sbx_is_encrypted(ssn), count(*) FROM users GROUP BY 1;"
    check "$kind: sbx_is_encrypted" test "$(tr '\n' ';' <out.txt)" = "0|1;1|50;"
done

# Triggers and views cannot call sbx_decrypt (SQLITE_DIRECTONLY).
sql file.db "CREATE VIEW leak AS SELECT sbx_decrypt(ssn, 'users.ssn.' || id) AS v FROM users;"
sql file.db "SELECT * FROM leak;"
check "sbx_decrypt cannot be called from a view in the database" grep -qi 'unsafe use' err.txt

# ------------------------------------------------------------------ in-place conversion
for kind in file kms; do
    ref=$FILE
    [ $kind = kms ] && ref=$KMS
    db=conv-$kind.db
    {
        echo "CREATE TABLE t(id INTEGER PRIMARY KEY, c);"
        i=0
        while IFS= read -r v; do
            i=$((i + 1))
            echo "INSERT INTO t VALUES ($i, '$v');"
        done <values.txt
        echo "INSERT INTO t VALUES (51, NULL), (52, 42), (53, 2.5), (54, x'0102');"
    } >plain.sql
    sqlite3 "$db" <plain.sql
    sqlite3 "$db" "SELECT id, quote(c) FROM t ORDER BY id;" >before.txt
    sql "$db" "BEGIN;" "UPDATE t SET c = sbx_encrypt(c, '$ref', 't.c.' || id) WHERE NOT sbx_is_encrypted(c);" "COMMIT;"
    check "$kind: convert a plaintext column in place, one transaction" test $? -eq 0
    check "$kind: no plaintext left in the file after conversion + VACUUM" \
        bash -c "sqlite3 '$db' VACUUM && ! grep -q -a -F -f values.txt '$db'"
    sql "$db" "SELECT id, quote(sbx_decrypt(c, 't.c.' || id)) FROM t ORDER BY id;"
    check "$kind: conversion keeps every row (decrypted dump = original dump)" cmp -s out.txt before.txt
done

# A failure in the middle (one row's key is unusable) rolls the whole conversion back.
db=conv-fail.db
sqlite3 "$db" <plain.sql
sqlite3 "$db" "SELECT id, quote(c) FROM t ORDER BY id;" >before.txt
sql "$db" "BEGIN;" \
    "UPDATE t SET c = sbx_encrypt(c, CASE WHEN id = 30 THEN 'file:$T/missing.key' ELSE '$FILE' END, 't.c.' || id);" \
    "COMMIT;"
check "conversion with a bad key on row 30 fails" grep -q 'missing.key: cannot open' err.txt
sqlite3 "$db" "SELECT id, quote(c) FROM t ORDER BY id;" >after.txt
check "... and leaves the table fully plaintext" cmp -s after.txt before.txt
# Killed in the middle: the journal rolls it back at the next open.
sqlite3 "$db" "PRAGMA journal_mode=DELETE;" >/dev/null
# (sqlite3 runs in an inner bash, which reports "Killed" to /dev/null.)
DB=$db EXT=$EXT FILE=$FILE bash -c 'sqlite3 "$DB" ".load $EXT" "BEGIN;" \
    "UPDATE t SET c = sbx_encrypt(c, '"'"'$FILE'"'"', '"'"'t.c.'"'"' || id);" \
    ".shell kill -9 \$PPID" "COMMIT;" >killed.txt 2>&1; true' 2>/dev/null
check "(the conversion was killed with its rollback journal in place)" test -s "$db-journal"
sqlite3 "$db" "SELECT id, quote(c) FROM t ORDER BY id;" >after.txt
check "a conversion killed before COMMIT leaves the table fully plaintext" cmp -s after.txt before.txt
# Resumable form: only rows not yet encrypted are touched.
sql "$db" "UPDATE t SET c = sbx_encrypt(c, '$FILE', 't.c.' || id) WHERE id <= 10;" \
    "UPDATE t SET c = sbx_encrypt(c, '$FILE', 't.c.' || id) WHERE NOT sbx_is_encrypted(c);" \
    "SELECT id, quote(sbx_decrypt(c, 't.c.' || id)) FROM t ORDER BY id;"
check "resumed conversion (WHERE NOT sbx_is_encrypted) keeps every row" cmp -s out.txt before.txt

# ------------------------------------------------------------------ credentials
WRONG=sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA # well-formed, unknown
SBX_KMS_TOKEN=$WRONG sql w.db \
    "SELECT sbx_encrypt('v', '$KMS', 'c');"
check "kms: a wrong token fails (401)" grep -q 'HTTP 401' err.txt
sql kms.db "SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users WHERE id = 1;"
check "kms: decrypt in a new process (cache cold) works" test "$(cat out.txt)" = "SSN-001-07919-secret"
SBX_KMS_TOKEN=$WRONG sql kms.db \
    "SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users WHERE id = 1;"
check "kms: decrypt with a wrong token fails" bash -c "grep -q 'HTTP 401' err.txt && ! test -s out.txt"
SBX_KMS_URL=https://127.0.0.1:1 sql kms.db "SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users WHERE id = 1;"
check "kms: a server not in SBX_KMS_URL is not sent the token" grep -q 'SBX_KMS_URL' err.txt

finish
