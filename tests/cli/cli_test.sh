#!/usr/bin/env bash
# tests/cli/cli_test.sh - black-box tests of the sbx command.
#
#   bash tests/cli/cli_test.sh build/sbx
#
# Every case runs the real binary in a fresh temporary directory. Prints one
# line per case, then "N passed, M failed"; exits non-zero if any case failed.
# Needs: bash, coreutils, perl (byte tampering), cmp. `script` (util-linux)
# is used, when present, to give sbx a terminal.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-cli-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
umask 022

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -s err ]; then sed 's/^/       stderr: /' err | head -n 8; fi
}
# run CMD...: run without tripping set -e; stdout in ./out, stderr in ./err, status in $rc.
# A crash (signal) or a sanitizer report is a failure of its own, whatever the case expects.
SAN_RE='AddressSanitizer|LeakSanitizer|runtime error:'
run() {
    set +e
    "$@" >out 2>err
    rc=$?
    set -e
    if [ "$rc" -ge 128 ] || grep -qE "$SAN_RE" err; then
        not_ok "crash or sanitizer report (exit $rc): $*"
    fi
}
# expect_ok NAME CMD...: the command succeeds.
expect_ok() {
    local name=$1
    shift
    run "$@"
    if [ "$rc" -eq 0 ]; then ok "$name"; else not_ok "$name (exit $rc)"; fi
}
# expect_fail NAME STATUS REGEX CMD...: the command exits with STATUS ("nz" = any
# non-zero) and its stderr matches the extended REGEX (case-insensitive).
expect_fail() {
    local name=$1 want=$2 re=$3
    shift 3
    run "$@"
    if [ "$rc" -eq 0 ]; then
        not_ok "$name (exit 0, expected failure)"
    elif [ "$want" != nz ] && [ "$rc" -ne "$want" ]; then
        not_ok "$name (exit $rc, expected $want)"
    elif ! grep -qiE -- "$re" err; then
        not_ok "$name (stderr does not match /$re/)"
    else
        ok "$name"
    fi
}
# check NAME CONDITION...: a plain test(1)-style or command condition.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
same() { cmp -s "$1" "$2"; }
mode_of() { stat -c %a "$1"; }
# flip FILE OFFSET [MASK]: xor one byte in place.
flip() {
    perl -e 'my ($f, $o, $m) = @ARGV; open(my $h, "+<:raw", $f) or die; seek($h, $o, 0);
             read($h, my $b, 1) == 1 or die "offset $o"; seek($h, $o, 0);
             print $h chr(ord($b) ^ $m); close($h) or die' "$1" "$2" "${3:-1}"
}
size_of() { stat -c %s "$1"; }

SECRET_RE='AGE-SECRET-KEY-1[0-9A-Z]+'

# ---------------------------------------------------------------- help, usage
expect_ok "--version prints the version" "$SBX" --version
check "--version says sbx" grep -qE '^sbx [0-9]+\.[0-9]+\.[0-9]+' out
for c in keygen encrypt decrypt migrate help; do
    run "$SBX" help "$c"
    check "help $c has all manual sections" \
        bash -c 'for s in NAME SYNOPSIS DESCRIPTION EXAMPLES "EXIT STATUS"; do grep -q "^$s" out || exit 1; done'
    "$SBX" help "$c" >help_a
    "$SBX" "$c" --help >help_b
    check "$c --help equals help $c" same help_a help_b
done
run "$SBX" help keygen
check "keygen help mentions ssh-keygen/openssl" grep -q 'ssh-keygen' out
expect_fail "no command is a usage error" 2 'usage' "$SBX"
expect_fail "unknown command is a usage error" 2 "unknown command" "$SBX" frobnicate
expect_fail "unknown long option is a usage error" 2 'option --bogus' "$SBX" encrypt --bogus
expect_fail "unknown short option is a usage error" 2 'option -Z' "$SBX" decrypt -Z
expect_fail "missing option argument is a usage error" 2 'needs an argument' "$SBX" encrypt -r
expect_fail "encrypt without recipients is a usage error" 2 'no recipients' "$SBX" encrypt
expect_fail "help for an unknown command" 2 'no manual page' "$SBX" help nope

# ---------------------------------------------------------------- keygen
expect_ok "keygen -o writes a key file" "$SBX" keygen -o alice.key
check "keygen -o file has mode 0600" [ "$(mode_of alice.key)" = 600 ]
check "keygen -o prints 'Public key:' on stderr" grep -qE '^Public key: age1[0-9a-z]+$' err
check "key file line 1 is '# created: <RFC 3339>'" \
    grep -qE '^# created: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$' alice.key
check "key file line 2 is '# public key: age1...'" bash -c "sed -n 2p alice.key | grep -qE '^# public key: age1[0-9a-z]{58}$'"
check "key file line 3 is the secret key" bash -c "sed -n 3p alice.key | grep -qE '^$SECRET_RE$'"
check "key file has exactly 3 lines" [ "$(wc -l <alice.key)" -eq 3 ]
ALICE=$(sed -n 's/^# public key: //p' alice.key)
check "stderr public key equals the file's" grep -qx "Public key: $ALICE" err
cp alice.key alice.key.orig
expect_fail "keygen -o refuses to overwrite" 1 'already exists' "$SBX" keygen -o alice.key
check "refused keygen left the key unchanged" same alice.key alice.key.orig
ln -s nowhere dangling.key
expect_fail "keygen -o refuses a dangling symlink" 1 'exists' "$SBX" keygen -o dangling.key
check "keygen -o did not create the symlink target" [ ! -e nowhere ]
expect_ok "keygen -y FILE" "$SBX" keygen -y alice.key
check "keygen -y prints the public key" [ "$(cat out)" = "$ALICE" ]
run bash -c "'$SBX' keygen -y < alice.key"
check "keygen -y reads stdin" [ "$rc" -eq 0 ] && [ "$(cat out)" = "$ALICE" ]
run "$SBX" keygen -y - <alice.key
check "keygen -y - reads stdin" [ "$(cat out)" = "$ALICE" ]
run bash -c "'$SBX' keygen | '$SBX' keygen -y"
check "keygen to stdout pipes into keygen -y" grep -qE '^age1[0-9a-z]{58}$' out
"$SBX" keygen -o bob.key 2>/dev/null
"$SBX" keygen -o carol.key 2>/dev/null
BOB=$("$SBX" keygen -y bob.key)
CAROL=$("$SBX" keygen -y carol.key)
cat alice.key bob.key >two.key
chmod 600 two.key
run "$SBX" keygen -y two.key
check "keygen -y prints one recipient per identity" [ "$(cat out)" = "$(printf '%s\n%s' "$ALICE" "$BOB")" ]
expect_ok "keygen -y -o FILE" "$SBX" keygen -y -o alice.pub alice.key
check "keygen -y -o wrote the recipient" [ "$(cat alice.pub)" = "$ALICE" ]
printf 'hello\n' >garbage.key
expect_fail "keygen -y on a malformed file names the line" 1 'line 1' "$SBX" keygen -y garbage.key
expect_fail "keygen takes no operand" 2 'unexpected argument' "$SBX" keygen foo

# ---------------------------------------------------------------- round trips
head -c 100000 /dev/urandom >plain.bin
printf 'a small text\n' >plain.txt
: >empty
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >big.bin

expect_ok "encrypt binary with -o" "$SBX" encrypt -r "$ALICE" -o plain.bin.age plain.bin
check "ciphertext starts with the age header" bash -c "head -c 21 plain.bin.age | grep -q 'age-encryption.org/v1'"
check "ciphertext file mode follows the umask (0644)" [ "$(mode_of plain.bin.age)" = 644 ]
expect_ok "decrypt binary with -o" "$SBX" decrypt -i alice.key -o plain.bin.dec plain.bin.age
check "binary round trip" same plain.bin plain.bin.dec
check "decrypt -o output has mode 0600" [ "$(mode_of plain.bin.dec)" = 600 ]
check "decrypt printed no warning for a 0600 key" [ ! -s err ]

expect_ok "encrypt --armor" "$SBX" encrypt --armor --recipient "$ALICE" --output plain.txt.asc plain.txt
check "armor begins with the BEGIN line" [ "$(head -n 1 plain.txt.asc)" = "-----BEGIN AGE ENCRYPTED FILE-----" ]
check "armor ends with the END line" [ "$(tail -n 1 plain.txt.asc)" = "-----END AGE ENCRYPTED FILE-----" ]
expect_ok "decrypt detects armor" "$SBX" decrypt --identity alice.key plain.txt.asc
check "armor round trip" same out plain.txt

for f in empty big.bin; do
    "$SBX" encrypt -r "$ALICE" -o "$f.age" "$f"
    run "$SBX" decrypt -i alice.key -o "$f.dec" "$f.age"
    check "round trip of $f ($(size_of $f) bytes)" same "$f" "$f.dec"
done

run bash -c "cat big.bin | '$SBX' encrypt -r '$ALICE' | '$SBX' decrypt -i alice.key | cmp -s - big.bin"
check "stdin to stdout pipes round trip" [ "$rc" -eq 0 ]
run bash -c "'$SBX' encrypt -a -r '$ALICE' - <plain.txt | '$SBX' decrypt -i alice.key -"
check "'-' means stdin, armored pipe" same out plain.txt

"$SBX" encrypt -r "$ALICE" -r "$BOB" -o multi.age plain.bin
for k in alice bob; do
    run "$SBX" decrypt -i "$k.key" multi.age
    check "multiple -r: $k decrypts" same out plain.bin
done
expect_fail "multiple -r: carol does not" 1 'no identity matched' "$SBX" decrypt -i carol.key multi.age

cat >team.txt <<EOF
# the team

# alice
$ALICE

# bob and carol
$BOB
$CAROL
EOF
expect_ok "encrypt -R with comments and blank lines" "$SBX" encrypt -R team.txt -o team.age plain.txt
for k in alice bob carol; do
    run "$SBX" decrypt -i "$k.key" team.age
    check "-R file: $k decrypts" same out plain.txt
done
printf '%s\n   \n' "$ALICE" >spaces.txt
expect_fail "-R file: a whitespace-only line is refused (as age)" 1 'spaces.txt: line 2' \
    "$SBX" encrypt -R spaces.txt plain.txt
printf '# nobody\n\n' >nobody.txt
expect_fail "-R file without recipients" 1 'no recipient' "$SBX" encrypt -R nobody.txt plain.txt
expect_fail "-R of an identity file is refused" 1 'recipients file alice.key: line' \
    "$SBX" encrypt -R alice.key plain.txt
check "... and the secret key is not echoed" bash -c "! grep -qE '$SECRET_RE' err"
expect_fail "malformed -r names the recipient" 1 'age1bogus' "$SBX" encrypt -r age1bogus plain.txt
expect_fail "a secret key given to -r gets a hint" 1 'hint: .*secret key' \
    "$SBX" encrypt -r "$(sed -n 3p alice.key)" plain.txt
check "... and the secret key is not echoed" bash -c "! grep -qE '$SECRET_RE' err"

# A key given to the wrong option says what it is and where it belongs (issue 14, item 12).
printf '%s\n' "$ALICE" >alice.pub
for opt in -R -i; do
    expect_fail "$opt of a public key string: not a file, give it with -r" 1 \
        'hint: this is a recipient \(public key\), not a file: give it with -r' \
        "$SBX" encrypt $opt "$ALICE" plain.txt
    expect_fail "$opt of a secret key string is refused as a file name" 1 \
        "$opt takes .*(a )?secret key.*not shown" "$SBX" encrypt $opt "$(sed -n 3p alice.key)" plain.txt
    check "... and the secret key is not echoed" bash -c "! grep -qE '$SECRET_RE' err"
done
expect_fail "-i of a public key file: named a recipient" 1 \
    'alice.pub: line 1: this is a recipient \(an age1\.\.\. public key\), not an identity' \
    "$SBX" decrypt -i alice.pub team.age
check "... with a hint towards -R/-r and -i" grep -q 'hint: alice.pub holds recipients (public keys), not identities: give it with -R (a single key with -r), and the identity file (secret key) with -i' err
if command -v ssh-keygen >/dev/null; then
    ssh-keygen -q -t ed25519 -N '' -f sshid
    expect_fail "-i of an SSH .pub file: use the private key file" 1 \
        'this is a recipient \(an SSH public key\), not an identity: use the private key file' \
        "$SBX" decrypt -i sshid.pub team.age
    check "... with a hint towards -R" grep -q 'hint: sshid.pub holds recipients' err
fi

# Identity files encrypted with a passphrase (age -p key.txt; age -d -i reads them).
printf 'correct horse battery staple\n' >idpass.txt
printf 'wrong horse\n' >idwrong.txt
expect_ok "an identity file encrypted with a passphrase" \
    "$SBX" encrypt --passphrase-file idpass.txt --work-factor 10 -o alice.key.age alice.key
expect_ok "... armored" \
    "$SBX" encrypt -a --passphrase-file idpass.txt --work-factor 10 -o alice.key.asc alice.key
for f in alice.key.age alice.key.asc; do
    run "$SBX" decrypt -i $f --passphrase-file idpass.txt team.age
    check "decrypt -i $f --passphrase-file opens it" same out plain.txt
    expect_fail "decrypt -i $f: a wrong passphrase is named" 1 \
        "identity file $f: encrypted identity file: wrong passphrase" \
        "$SBX" decrypt -i $f --passphrase-file idwrong.txt -o wrong.out team.age
    check "... and nothing is written" [ ! -e wrong.out ]
done
expect_fail "an encrypted identity file without a terminal says what to do" 1 \
    'alice.key.age: encrypted identity file: cannot ask for a passphrase: no terminal.*--passphrase-file' \
    "$SBX" decrypt -i alice.key.age team.age </dev/null
"$SBX" encrypt -i alice.key -o to-alice.age alice.key
expect_fail "an identity file encrypted to a key (not a passphrase) is explained" 1 \
    'encrypted to keys, not with a passphrase: decrypt it first' \
    "$SBX" decrypt -i to-alice.age --passphrase-file idpass.txt team.age

expect_ok "encrypt -i encrypts to the identity's recipient" "$SBX" encrypt -i bob.key -o bob.age plain.txt
run "$SBX" decrypt -i bob.key bob.age
check "encrypt -i round trip" same out plain.txt
run "$SBX" decrypt -i alice.key -i carol.key -i two.key team.age
check "several -i files, matching key not first" same out plain.txt

# ---------------------------------------------------------------- passphrases
printf 'correct horse battery staple\n' >pass.txt
printf 'correct horse battery staple' >pass-nonl.txt
printf 'correct horse battery staple\r\n' >pass-crlf.txt
printf 'wrong horse\n' >wrong.txt
expect_ok "encrypt --passphrase-file" "$SBX" encrypt --passphrase-file pass.txt --work-factor 10 \
    -o pass.age plain.txt
check "passphrase file has a single scrypt stanza" bash -c "grep -ac '^-> ' pass.age | grep -qx 1 && grep -aq '^-> scrypt ' pass.age"
expect_ok "decrypt --passphrase-file" "$SBX" decrypt --passphrase-file pass.txt pass.age
check "passphrase round trip" same out plain.txt
run "$SBX" decrypt --passphrase-file pass-nonl.txt pass.age
check "the trailing newline is not part of the passphrase" same out plain.txt
run "$SBX" decrypt --passphrase-file pass-crlf.txt pass.age
check "a trailing CRLF is not part of the passphrase" same out plain.txt
run "$SBX" decrypt --passphrase-file /dev/fd/3 pass.age 3<pass.txt
check "passphrase via /dev/fd/3 (decrypt)" same out plain.txt
run bash -c "'$SBX' encrypt --passphrase-file /dev/fd/3 --work-factor 10 -a plain.txt 3< <(printf 'from fd 3\n') >fd3.age"
check "passphrase via /dev/fd/3 (encrypt)" [ "$rc" -eq 0 ]
run bash -c "'$SBX' decrypt --passphrase-file /dev/fd/3 fd3.age 3< <(printf 'from fd 3')"
check "passphrase via /dev/fd/3 round trip" same out plain.txt
expect_ok "encrypt with the default work factor" "$SBX" encrypt --passphrase-file pass.txt \
    -o pass18.age plain.txt
check "default work factor is 18" grep -aqE '^-> scrypt [A-Za-z0-9+/]{22} 18$' pass18.age
run "$SBX" decrypt --passphrase-file pass.txt pass18.age
check "default work factor round trip" same out plain.txt
expect_fail "wrong passphrase" 1 'passphrase is wrong' "$SBX" decrypt --passphrase-file wrong.txt pass.age
expect_fail "work factor above --max-work-factor" 1 'work factor' \
    "$SBX" decrypt --max-work-factor 9 --passphrase-file pass.txt pass.age
expect_fail "bad --max-work-factor" 2 'max-work-factor' "$SBX" decrypt --max-work-factor x pass.age
printf '\n' >emptypass.txt
expect_fail "empty passphrase is refused (encrypt)" 1 'empty' \
    "$SBX" encrypt --passphrase-file emptypass.txt plain.txt
check "... and nothing was written" [ ! -s out ]
expect_fail "empty passphrase file (decrypt)" 1 'empty' "$SBX" decrypt --passphrase-file emptypass.txt pass.age
expect_fail "missing passphrase file" 1 'nope.txt' "$SBX" decrypt --passphrase-file nope.txt pass.age
expect_fail "-p with -r is a usage error" 2 'only recipient' "$SBX" encrypt -p -r "$ALICE" plain.txt
expect_fail "--passphrase-file with -R is a usage error" 2 'only recipient' \
    "$SBX" encrypt --passphrase-file pass.txt -R team.txt plain.txt
expect_ok "an X25519 file never reads the passphrase file" \
    "$SBX" decrypt -i alice.key --passphrase-file does-not-exist plain.bin.age
run "$SBX" decrypt -i alice.key --passphrase-file pass.txt pass.age
check "-i plus --passphrase-file decrypts a passphrase file" same out plain.txt
if command -v setsid >/dev/null; then
    expect_fail "no terminal and no passphrase file" 1 'passphrase-file' \
        setsid -w "$SBX" decrypt pass.age </dev/null
    expect_fail "-p without a terminal" 1 'no terminal' setsid -w "$SBX" encrypt -p -a plain.txt </dev/null
fi
expect_fail "passphrase never taken from argv" 2 'takes no argument' "$SBX" encrypt --passphrase=secret plain.txt

# ---------------------------------------------------------------- error classes
expect_fail "no identity matched" 1 'no identity matched' "$SBX" decrypt -i carol.key plain.bin.age
check "... with a hint" grep -q '^sbx: hint: ' err
expect_fail "X25519 file without -i" 1 'no identity matched' "$SBX" decrypt plain.bin.age </dev/null
check "... hints at -i" grep -q -- '-i KEYFILE' err

cp plain.txt.asc /dev/null
"$SBX" encrypt -r "$ALICE" -o small.age plain.txt
cp small.age mac.age
perl -0777 -pi -e 's/^--- (.)/"--- " . ($1 eq "A" ? "B" : "A")/me' mac.age
expect_fail "tampered header MAC" 1 'header MAC' "$SBX" decrypt -i alice.key mac.age

hdr_len=$(grep -abo -- '^--- ' small.age | cut -d: -f1)
hdr_end=$((hdr_len + 48)) # "--- " + 43 base64 + "\n"
cp small.age payload.age
flip payload.age $(($(size_of small.age) - 1))
expect_fail "tampered payload" 1 'payload' "$SBX" decrypt -i alice.key payload.age
cp small.age nonce.age
flip nonce.age "$hdr_end"
expect_fail "tampered payload nonce" 1 'payload' "$SBX" decrypt -i alice.key nonce.age

head -c $(($(size_of small.age) - 5)) small.age >trunc.age
expect_fail "truncated payload" 1 'truncated' "$SBX" decrypt -i alice.key trunc.age
head -c $((hdr_end + 16)) small.age >nopayload.age
expect_fail "payload with no chunk" 1 'truncated' "$SBX" decrypt -i alice.key nopayload.age
head -c $((hdr_end + 3)) small.age >shortnonce.age
expect_fail "file cut inside the nonce" 1 'truncated' "$SBX" decrypt -i alice.key shortnonce.age
head -c 40 small.age >shorthdr.age
expect_fail "file cut inside the header" 1 'header|truncated|end' "$SBX" decrypt -i alice.key shorthdr.age

cp small.age appended.age
printf 'x' >>appended.age
expect_fail "a byte appended to a short file" 1 'payload' "$SBX" decrypt -i alice.key appended.age
head -c 65536 /dev/urandom >full.bin # one full final chunk: what follows is trailing data
"$SBX" encrypt -r "$ALICE" -o trailing.age full.bin
printf 'x' >>trailing.age
expect_fail "trailing data" 1 'trailing data' "$SBX" decrypt -i alice.key trailing.age

"$SBX" encrypt -a -r "$ALICE" -o arm.asc plain.bin
perl -pi -e 's/^(.{10})./$1*/ if $. == 3' arm.asc
expect_fail "bad armor (bad character)" 1 'armor' "$SBX" decrypt -i alice.key arm.asc
"$SBX" encrypt -a -r "$ALICE" -o arm2.asc plain.bin
perl -pi -e 'chomp, $_ .= "AAAA\n" if $. == 2' arm2.asc
expect_fail "bad armor (long line)" 1 'armor' "$SBX" decrypt -i alice.key arm2.asc
"$SBX" encrypt -a -r "$ALICE" -o arm3.asc plain.txt
sed -i '$d' arm3.asc
expect_fail "bad armor (no END line)" 1 'armor' "$SBX" decrypt -i alice.key arm3.asc
"$SBX" encrypt -a -r "$ALICE" -o arm4.asc plain.txt
echo garbage >>arm4.asc
expect_fail "armor followed by garbage" 1 'armor|trailing' "$SBX" decrypt -i alice.key arm4.asc

printf 'not an age file at all\n' >notage.txt
expect_fail "not an age file" 1 'header|age' "$SBX" decrypt -i alice.key notage.txt
expect_fail "nonexistent input" 1 'missing\.age' "$SBX" decrypt -i alice.key missing.age
expect_fail "nonexistent input (encrypt)" 1 'missing\.txt' "$SBX" encrypt -r "$ALICE" missing.txt
expect_fail "nonexistent key file" 1 'cannot open identity file no\.key' \
    "$SBX" decrypt -i no.key plain.bin.age
mkdir keydir
expect_fail "key file that is a directory" 1 'identity file keydir' "$SBX" decrypt -i keydir plain.bin.age
if [ "$(id -u)" -ne 0 ]; then
    cp alice.key locked.key
    chmod 000 locked.key
    expect_fail "unreadable key file" 1 'locked\.key.*(denied)' "$SBX" decrypt -i locked.key plain.bin.age
fi
{
    echo "# my key"
    sed -n 3p alice.key | tr 'A-Z' 'a-z'
} >bad.key
chmod 600 bad.key
expect_fail "malformed key file names the line" 1 'bad\.key: line 2' "$SBX" decrypt -i bad.key plain.bin.age
check "... and does not echo the key" bash -c "! grep -qiE '$SECRET_RE' err"
expect_fail "decrypt takes one INPUT" 2 'too many arguments' "$SBX" decrypt -i alice.key a b

# ---------------------------------------------------------------- warnings
cp alice.key open.key
chmod 644 open.key
expect_ok "decrypt works with a 0644 key" "$SBX" decrypt -i open.key plain.bin.age
check "... but warns it is readable by others" \
    grep -q 'warning: identity file open.key is readable by others (mode 0644); run chmod 600 open.key' err
check "... and the output is still right" same out plain.bin
if command -v script >/dev/null; then
    run script -qec "'$SBX' encrypt -r '$ALICE' plain.txt" /dev/null
    check "binary ciphertext to a terminal is refused" grep -q 'refusing to write binary' out
    run script -qec "'$SBX' encrypt -a -r '$ALICE' plain.txt" /dev/null
    check "armored ciphertext to a terminal is allowed" grep -q 'BEGIN AGE ENCRYPTED FILE' out
fi

# ---------------------------------------------------------------- outputs on failure
printf 'precious\n' >existing.txt
cp existing.txt existing.orig
ls -a >dir.before
expect_fail "decrypt -o with a wrong key fails" 1 'no identity matched' \
    "$SBX" decrypt -i carol.key -o newout.bin plain.bin.age
check "... leaves no output file" [ ! -e newout.bin ]
expect_fail "decrypt -o of a truncated file fails" 1 'truncated' \
    "$SBX" decrypt -i alice.key -o newout.bin trunc.age
check "... leaves no output file" [ ! -e newout.bin ]
expect_fail "decrypt -o over an existing file, tampered payload" 1 'payload' \
    "$SBX" decrypt -i alice.key -o existing.txt payload.age
check "... leaves the existing file untouched" same existing.txt existing.orig
ls -a >dir.after
check "... and no temporary files behind" bash -c "diff <(grep -v '^dir\.' dir.before) <(grep -v '^dir\.' dir.after) >/dev/null"
expect_fail "encrypt -o with a bad recipient fails" 1 'recipient' \
    "$SBX" encrypt -r age1bogus -o enc-out.age plain.txt
check "... leaves no output file" [ ! -e enc-out.age ]

run bash -c "'$SBX' decrypt -i alice.key -o /dev/stdout plain.bin.age | cat"
check "decrypt -o /dev/stdout writes through the pipe" same out plain.bin
mkfifo fifo
(cat fifo >fifo.out) &
"$SBX" encrypt -r "$ALICE" -o fifo plain.txt
wait
check "encrypt -o FIFO writes into the FIFO" [ -p fifo ] && [ -s fifo.out ]
# A symbolic link at OUTPUT is refused, never written through (issue 14 item 6).
ln -s existing.txt link.txt
expect_fail "decrypt -o SYMLINK is refused" 1 \
    'link.txt is a symbolic link \(to existing.txt\).*give the target.s own path' \
    "$SBX" decrypt -i alice.key -o link.txt small.age
check "... the link's target is untouched" same existing.txt existing.orig
check "... and the link is still a link" [ -L link.txt ]
expect_ok "decrypt -o TARGET (as the message says) writes the file" \
    "$SBX" decrypt -i alice.key -o existing.txt small.age
check "... with the plaintext" same existing.txt plain.txt
ln -s planted-target dangling-out
expect_fail "decrypt -o DANGLING-SYMLINK is refused" 1 'symbolic link' \
    "$SBX" decrypt -i alice.key -o dangling-out small.age
check "... and creates nothing where it points" [ ! -e planted-target ]
expect_fail "encrypt -o SYMLINK is refused too" 1 'symbolic link' \
    "$SBX" encrypt -r "$ALICE" -o link.txt plain.txt
check "... the link's target is untouched" same existing.txt plain.txt

# Truncated multi-chunk file to stdout: only whole verified chunks come out.
head -c $((3 * 65536 + 1000)) /dev/urandom >chunks.bin
"$SBX" encrypt -r "$ALICE" -o chunks.age chunks.bin
head -c $(($(size_of chunks.age) - 500)) chunks.age >chunks-trunc.age
expect_fail "truncated multi-chunk file to stdout fails" 1 'truncated' \
    "$SBX" decrypt -i alice.key chunks-trunc.age
got=$(size_of out)
check "... released only whole chunks ($got bytes)" [ $((got % 65536)) -eq 0 ]
check "... which are a prefix of the plaintext" cmp -s -n "$got" out chunks.bin
check "... and nothing of the truncated final chunk" [ "$got" -le $((3 * 65536)) ]
# Cut exactly after a full chunk: the final-chunk flag is missing.
head -c $(($(size_of chunks.age) - 1016)) chunks.age >chunks-cut.age
expect_fail "file cut at a chunk boundary fails" 1 'truncated|payload' \
    "$SBX" decrypt -i alice.key chunks-cut.age
cp chunks.age chunks-mid.age
flip chunks-mid.age $((hdr_end + 16 + 65536 + 16 + 100))
expect_fail "tampered second chunk to stdout fails" 1 'payload chunk 2' \
    "$SBX" decrypt -i alice.key chunks-mid.age
check "... after releasing only the first chunk" [ "$(size_of out)" -le 65536 ]

# ---------------------------------------------------------------- tamper loop
head -c 100 /dev/urandom >t100.bin
"$SBX" encrypt -r "$ALICE" -o t100.age t100.bin
n=$(size_of t100.age)
bad=""
for ((i = 0; i < n; i++)); do
    cp t100.age t.age
    flip t.age "$i"
    set +e
    "$SBX" decrypt -i alice.key t.age >/dev/null 2>t.err
    trc=$?
    set -e
    if [ "$trc" -eq 0 ] || [ "$trc" -ge 128 ] || grep -qE "$SAN_RE" t.err; then bad="$bad $i"; fi
done
check "tamper loop: all $n single-byte flips of a 100-byte file are refused${bad:+ (accepted at:$bad)}" [ -z "$bad" ]
"$SBX" encrypt -a -r "$ALICE" -o t100.asc t100.bin
n=$(size_of t100.asc)
bad=""
for ((i = 0; i < n; i++)); do
    cp t100.asc t.asc
    flip t.asc "$i" 2 # bit 1 keeps most base64 characters in the alphabet
    set +e
    "$SBX" decrypt -i alice.key t.asc >/dev/null 2>t.err
    trc=$?
    set -e
    if [ "$trc" -eq 0 ] || [ "$trc" -ge 128 ] || grep -qE "$SAN_RE" t.err; then bad="$bad $i"; fi
done
check "tamper loop: all $n byte flips of the armored file are refused${bad:+ (accepted at:$bad)}" [ -z "$bad" ]

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
