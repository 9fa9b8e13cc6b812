#!/usr/bin/env bash
# tests/server/exec_test.sh - `sbx kms serve` and `sbx kms audit verify` run
# the key server program sbx-kms by exec (cli/kms.c): the process started as
# sbx IS the server (same PID: signals and systemd reach it), arguments and
# exit statuses pass through, and when sbx-kms cannot be found the error
# names it and where it was looked for.
#
#   bash tests/server/exec_test.sh build/sbx
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, coreutils.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-exec-test.XXXXXX")
SRV_PID=
cleanup() {
    kms_kill
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
CHECK_LOG=server.log
CHECK_SHOW=$T/err

# 1. The PID of the sbx we started is the server's, running sbx-kms.
kms_start "$T/kms" server.log --dev || fatal "sbx kms serve --dev starts"
ok "sbx kms serve --dev starts and writes its ready file"
exe=$(readlink "/proc/$SRV_PID/exe")
check "the started PID runs sbx-kms (exec, no fork): $exe" test "$(basename "$exe")" = sbx-kms
check "it is the sbx-kms beside sbx" test "$exe" = "$(dirname "$SBX")/sbx-kms"
check "argv[0] of the server is sbx-kms" \
    bash -c "tr '\\0' '\\n' </proc/$SRV_PID/cmdline | head -n 1 | grep -qx sbx-kms"
check "the server answers on its port" curl -fsS -o /dev/null --cacert "$CA" "$URL/v1/health"
kms_stop
check "SIGTERM to that PID stops the server gracefully (exit 0, got $srv_rc)" test "$srv_rc" = 0

# 2. Flags, messages and exit statuses pass through unchanged.
"$SBX" kms serve --threads 0 >out 2>err
rc=$?
check "a bad flag is a usage error (exit 2, got $rc)" test "$rc" = 2
check "... worded by the server program as sbx kms" \
    grep -q '^sbx: error: --threads takes a number from 1 to 256$' err
check "... with the usage of sbx kms" grep -q "^Run 'sbx help kms' for the manual.$" err
"$SBX" kms serve --help >out 2>err
rc=$?
"$SBX" help kms >help.txt 2>&1
check "sbx kms serve --help exits 0 (got $rc)" test "$rc" = 0
check "... and prints the manual page of sbx help kms" cmp -s out help.txt
"$SBX" kms audit verify "$T/missing.log" >out 2>err
rc=$?
check "sbx kms audit verify of a missing log exits 1 (got $rc)" test "$rc" = 1
check "... naming the file" grep -q "^sbx: error: $T/missing.log: " err

# 3. SBX_KMS_SERVER names the program; set, it is the only place looked at.
SBX_KMS_SERVER=/nonexistent/sbx-kms "$SBX" kms serve --dev >out 2>err
rc=$?
check "SBX_KMS_SERVER=/nonexistent: exit 1 (got $rc)" test "$rc" = 1
check "... the message says sbx-kms is not installed" \
    grep -q '^sbx: error: the key server program sbx-kms is not installed' err
check "... and where it looked" grep -q 'SBX_KMS_SERVER=/nonexistent/sbx-kms' err
SBX_KMS_SERVER=$(dirname "$SBX")/sbx-kms "$SBX" kms audit verify "$T/missing.log" >out 2>err
rc=$?
check "SBX_KMS_SERVER=<the real program> runs it (exit 1 on a missing log, got $rc)" \
    grep -q "^sbx: error: $T/missing.log: " err

# 4. sbx alone in a directory: no sbx-kms beside it.
mkdir alone
cp "$SBX" alone/sbx
alone/sbx kms audit verify "$T/missing.log" >out 2>err
rc=$?
if grep -q 'not installed' err; then
    check "sbx alone: exit 1 (got $rc)" test "$rc" = 1
    check "... the message names the directory of sbx" grep -qF "$T/alone/sbx-kms" err
else
    ok "# skip sbx alone: an installed sbx-kms was found ($(head -n 1 err))"
fi
check "other sbx kms subcommands are still unknown (exit 2)" \
    bash -c "alone/sbx kms nosuch 2>err2; test \$? = 2 && grep -q \"unknown subcommand 'nosuch'\" err2"

finish
