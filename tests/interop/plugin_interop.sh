#!/usr/bin/env bash
# tests/interop/plugin_interop.sh - age plugins in sbx, against the stock age:
# the test plugin tests/plugin/age-plugin-sbxtest (both state machines) with
# sbx and with /usr/bin/age, both ways; -r, -R, -i files mixing native and
# plugin identities, encrypting to an identity (-e -i); the plugin's
# messages, a PIN typed on sbx's terminal (expect), a PIN asked for with no
# terminal; and a plugin that is missing, exits early, writes garbage, sends
# an oversized stanza or an error: clear message, exit 1, no output file.
#
#   bash tests/interop/plugin_interop.sh build/sbx
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
PLUGIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../plugin" && pwd)
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
for tool in age age-keygen expect setsid; do
    command -v "$tool" >/dev/null || fatal "$tool is installed (scripts/deps.sh)"
done
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-plugin.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 2
umask 077
CHECK_SHOW=err
export PATH=$PLUGIN_DIR:$PATH
unset SBXTEST_MODE SBXTEST_PIN SBXTEST_MSG SBXTEST_CONFIRM SBXTEST_PUBLIC SBXTEST_GREASE SBXTEST_LOG

age-plugin-sbxtest --generate >keys || fatal "the test plugin makes a key"
sed -n 1p keys >plugin.id
PREC=$(sed -n 2p keys)
age-plugin-sbxtest --generate | sed -n 1p >other.id
age-keygen -o x.key 2>/dev/null || fatal "age-keygen"
XPUB=$(age-keygen -y x.key)
head -c 70000 /dev/urandom >plain
printf 'short\n' >small

# ------------------------------------------------------------------ sbx <-> age, both ways
"$SBX" encrypt -r "$PREC" -o s.age plain 2>err
check "sbx encrypt -r age1sbxtest1..." grep -aq '^-> sbxtest ' s.age
age -d -i plugin.id -o s.age.out s.age 2>err
check "  age -d -i opens it with the same plugin" cmp -s plain s.age.out
"$SBX" decrypt -i plugin.id -o s.sbx.out s.age 2>err
check "  sbx decrypt -i opens it" cmp -s plain s.sbx.out
age -r "$PREC" -o a.age plain 2>err
check "age -r age1sbxtest1..." test -s a.age
"$SBX" decrypt -i plugin.id -o a.sbx.out a.age 2>err
check "  sbx decrypt -i opens it" cmp -s plain a.sbx.out
age -a -r "$PREC" -r "$XPUB" -o aa.age small 2>err
"$SBX" decrypt -i plugin.id -o aa.out aa.age 2>err
check "armored, beside an X25519 recipient: sbx opens it with the plugin" cmp -s small aa.out
printf '# a plugin recipient in a recipients file\n%s\n%s\n' "$PREC" "$XPUB" >recipients.txt
"$SBX" encrypt -R recipients.txt -o r.age small 2>err
age -d -i x.key -o r.x.out r.age 2>err && age -d -i plugin.id -o r.p.out r.age 2>>err
check "sbx encrypt -R with a plugin line: age opens it with either key" \
    cmp -s small r.x.out && cmp -s small r.p.out
{ cat x.key; cat other.id; cat plugin.id; } >mixed.id
"$SBX" decrypt -i mixed.id -o m1.out r.age 2>err
check "an identity file mixing native and plugin identities (native first)" cmp -s small m1.out
"$SBX" encrypt -r "$PREC" -o p.age small 2>err
"$SBX" decrypt -i mixed.id -o m2.out p.age 2>err
check "  the same file opens a plugin-only file (a non-matching plugin key before)" \
    cmp -s small m2.out
"$SBX" encrypt -i plugin.id -o e.age small 2>err
age -d -i plugin.id -o e.out e.age 2>err
check "sbx encrypt -i IDENTITY: the plugin wraps to the identity; age opens it" cmp -s small e.out
"$SBX" decrypt -i other.id -o none.out p.age 2>err
check "a plugin identity that is not the file's: no identity matched" \
    grep -q 'no identity matched' err
check "  nothing written" test ! -e none.out

# ------------------------------------------------------------------ the plugin talks
SBXTEST_MSG="touch the sbxtest key" "$SBX" decrypt -i plugin.id -o msg.out p.age 2>err
check "a plugin's msg is shown on stderr" grep -q 'age-plugin-sbxtest: touch the sbxtest key' err
SBXTEST_GREASE=1 SBXTEST_LOG=$T/grease.log "$SBX" decrypt -i plugin.id -o g.out p.age 2>err
check "an unknown command (grease) is answered unsupported" grep -qx 'answer unsupported' grease.log
check "  the file opens all the same" cmp -s small g.out
check "  the plugin runs in /" grep -qx 'cwd /' grease.log
# A PIN typed on sbx's terminal, through a pseudo-terminal.
cat >pin.exp <<'EOF'
set timeout 120
log_user 0
spawn -noecho {*}$argv
expect {
    -re {PIN for sbxtest: } { send -- "$env(TYPE_PIN)\r"; exp_continue }
    timeout { exit 124 }
    eof
}
lassign [wait] pid spawn_id os_error status
exit $status
EOF
SBXTEST_PIN=4321 TYPE_PIN=4321 expect -f pin.exp -- "$SBX" decrypt -i plugin.id -o pin.out p.age \
    2>err
check "request-secret: the PIN typed on the terminal opens the file" cmp -s small pin.out
SBXTEST_PIN=4321 TYPE_PIN=9999 expect -f pin.exp -- "$SBX" decrypt -i plugin.id -o pin2.out \
    p.age >/dev/null 2>&1
check "  a wrong PIN does not" test ! -e pin2.out
expect_fail "request-secret with no terminal: the plugin's error and why" \
    'the PIN is needed.*asked for a secret.*no terminal' \
    env SBXTEST_PIN=1 setsid "$SBX" decrypt -i plugin.id -o nopin.out p.age
check "  nothing written" test ! -e nopin.out
SBXTEST_PIN=4321 TYPE_PIN=4321 expect -f pin.exp -- "$SBX" encrypt -r "$PREC" -o pinw.age small \
    2>err
age -d -i plugin.id -o pinw.out pinw.age 2>err
check "request-secret while encrypting (recipient-v1)" cmp -s small pinw.out

# ------------------------------------------------------------------ a plugin that fails
PATH=/usr/bin:/bin expect_fail "a missing plugin: decrypt names it" \
    'age-plugin-sbxtest is not installed' "$SBX" decrypt -i plugin.id -o miss.out p.age
PATH=/usr/bin:/bin expect_fail "a missing plugin: encrypt names it" \
    'age-plugin-sbxtest is not installed' "$SBX" encrypt -r "$PREC" -o miss.age small
check "  nothing written" test ! -e miss.out && test ! -e miss.age
for m in "exit-early|exited with status 3: sbxtest: broken on purpose" \
    "exit-now|exited with status 4: sbxtest: gone at once" \
    "garbage|malformed stanza" \
    "oversized|larger than 65536 bytes" \
    "error|sbxtest refuses on purpose"; do
    mode=${m%%|*}
    pat=${m#*|}
    expect_fail "a plugin that does $mode: decrypt fails with '$pat'" "$pat" \
        env SBXTEST_MODE="$mode" "$SBX" decrypt -i plugin.id -o f.out p.age
    check "  nothing written" test ! -e f.out
    expect_fail "a plugin that does $mode: encrypt fails with '$pat'" "$pat" \
        env SBXTEST_MODE="$mode" "$SBX" encrypt -r "$PREC" -o f.age small
    check "  nothing written" test ! -e f.age
done
expect_fail "a plugin that wraps nothing: encrypt fails" 'wrapped no stanza' \
    env SBXTEST_MODE=silent "$SBX" encrypt -r "$PREC" -o f.age small
# The native key in the same identity file still opens a file when the plugin is missing.
PATH=/usr/bin:/bin "$SBX" decrypt -i mixed.id -o nat.out r.age 2>err
check "a missing plugin does not stop a native identity of the same file" cmp -s small nat.out

finish
