#!/usr/bin/env bash
# tests/interop/age_interop.sh - sbx against the real age / age-keygen.
#
#   bash tests/interop/age_interop.sh build/sbx
#
# Files sbx writes must decrypt with age and files age writes must decrypt
# with sbx: X25519 keys from either tool, several recipients, binary and
# armor, sizes around the 64 KiB chunk boundary, and passphrases (age reads
# those only from a terminal, so expect(1) types them). Prints one line per
# case, then "N passed, M failed"; exits non-zero if any case failed or if
# age is not installed (scripts/deps.sh installs it: a missing peer is a
# failure, never a silent skip).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
AGE=${AGE:-age}
AGE_KEYGEN=${AGE_KEYGEN:-age-keygen}
if ! command -v "$AGE" >/dev/null || ! command -v "$AGE_KEYGEN" >/dev/null; then
    echo "FAIL - age/age-keygen not found (run scripts/deps.sh, or apt-get install age)"
    echo "0 passed, 1 failed"
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-interop.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
echo "# $("$AGE" --version 2>&1 | head -n 1) at $(command -v "$AGE"); $("$SBX" --version)"

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
# step NAME CMD...: run a command, record a failure if it fails (stderr in ./err).
step() {
    local name=$1
    shift
    set +e
    "$@" 2>err
    local rc=$?
    set -e
    if [ $rc -eq 0 ]; then ok "$name"; else not_ok "$name (exit $rc)"; fi
    return 0
}
# roundtrip NAME PLAIN DECRYPTED: compare after an encrypt/decrypt pair ran.
same() {
    if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1 (plaintext differs)"; fi
}
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# ---------------------------------------------------------------- keys
"$AGE_KEYGEN" -o age.key 2>/dev/null
"$AGE_KEYGEN" -o age2.key 2>/dev/null
"$SBX" keygen -o sbx.key 2>/dev/null
"$SBX" keygen -o sbx2.key 2>/dev/null
AGE_PUB=$("$AGE_KEYGEN" -y age.key)
AGE2_PUB=$("$AGE_KEYGEN" -y age2.key)
SBX_PUB=$("$SBX" keygen -y sbx.key)
SBX2_PUB=$("$SBX" keygen -y sbx2.key)
for k in age.key age2.key sbx.key sbx2.key; do
    check "sbx keygen -y equals age-keygen -y ($k)" \
        [ "$("$SBX" keygen -y "$k")" = "$("$AGE_KEYGEN" -y "$k")" ]
done
# Same lines with the keys and digits masked (the created time differs by seconds at most).
layout() { sed -e 's/age1.*/age1/' -e 's/AGE-SECRET-KEY-1.*/AGE-SECRET-KEY-1/' -e 's/[0-9]/0/g' "$1"; }
check "sbx keygen file layout matches age-keygen's" [ "$(layout sbx.key)" = "$(layout age.key)" ]
check "both key files are mode 0600" [ "$(stat -c %a sbx.key)$(stat -c %a age.key)" = 600600 ]
cat age.key sbx.key >both.key
chmod 600 both.key
check "keygen -y of a two-key file matches age-keygen -y" \
    [ "$("$SBX" keygen -y both.key)" = "$("$AGE_KEYGEN" -y both.key)" ]

# ---------------------------------------------------------------- sizes x armor x direction
sizes=(0 1 65535 65536 65537 $((3 * 1024 * 1024)))
for n in "${sizes[@]}"; do
    head -c "$n" /dev/urandom >"p$n"
done
for n in "${sizes[@]}"; do
    for armor in "" -a; do
        tag="$n bytes${armor:+, armor}"
        step "sbx encrypt -> age -d ($tag)" "$SBX" encrypt $armor -r "$AGE_PUB" -o s.age "p$n"
        step "  age -d" "$AGE" -d -i age.key -o s.out s.age
        # age opens -o lazily, at the first byte: an empty plaintext creates no file.
        if [ "$n" -eq 0 ] && [ ! -e s.out ]; then : >s.out; fi
        same "  sbx -> age plaintext ($tag)" "p$n" s.out
        step "age -e -> sbx decrypt ($tag)" "$AGE" -e $armor -r "$SBX_PUB" -o a.age "p$n"
        step "  sbx decrypt" "$SBX" decrypt -i sbx.key -o a.out a.age
        same "  age -> sbx plaintext ($tag)" "p$n" a.out
        rm -f s.age s.out a.age a.out
    done
done

# Streams: stdin to stdout on both sides.
set +e
"$SBX" encrypt -r "$AGE_PUB" <p65537 | "$AGE" -d -i age.key >pipe1.out 2>err
"$AGE" -r "$SBX_PUB" <p65537 | "$SBX" decrypt -i sbx.key >pipe2.out 2>err
set -e
same "sbx | age -d through pipes" p65537 pipe1.out
same "age | sbx decrypt through pipes" p65537 pipe2.out

# ---------------------------------------------------------------- keys across tools
step "sbx encrypts to an sbx key, age decrypts with the sbx key file" \
    "$SBX" encrypt -r "$SBX_PUB" -o k1.age p65537
step "  age -d -i sbx.key" "$AGE" -d -i sbx.key -o k1.out k1.age
same "  plaintext" p65537 k1.out
step "age encrypts to an age key, sbx decrypts with the age-keygen file" \
    "$AGE" -r "$AGE_PUB" -o k2.age p65537
step "  sbx decrypt -i age.key" "$SBX" decrypt -i age.key -o k2.out k2.age
same "  plaintext" p65537 k2.out
check "  no permission warning for age-keygen's 0600 file" [ ! -s err ]
step "sbx encrypt -i age.key (to the identity's recipient)" "$SBX" encrypt -i age.key -o k3.age p1
step "  age -d" "$AGE" -d -i age.key -o k3.out k3.age
same "  plaintext" p1 k3.out
step "age -e -i sbx.key" "$AGE" -e -i sbx.key -o k4.age p1
step "  sbx decrypt" "$SBX" decrypt -i sbx.key -o k4.out k4.age
same "  plaintext" p1 k4.out

# ---------------------------------------------------------------- several recipients
printf '# recipients\n%s\n\n%s\n' "$AGE_PUB" "$SBX_PUB" >team.txt
step "sbx encrypt to 4 recipients (-r, -R)" \
    "$SBX" encrypt -r "$AGE2_PUB" -R team.txt -r "$SBX2_PUB" -o m1.age p65537
for k in age.key age2.key sbx.key sbx2.key; do
    step "  age -d -i $k" "$AGE" -d -i "$k" -o m1.out m1.age
    same "  plaintext ($k)" p65537 m1.out
done
step "age -e to 4 recipients (-r, -R), armored" \
    "$AGE" -e -a -r "$AGE2_PUB" -R team.txt -r "$SBX2_PUB" -o m2.age p65537
for k in age.key age2.key sbx.key sbx2.key; do
    step "  sbx decrypt -i $k" "$SBX" decrypt -i "$k" -o m2.out m2.age
    same "  plaintext ($k)" p65537 m2.out
done
step "sbx decrypt with several -i files, the matching one last" \
    "$SBX" decrypt -i age2.key -i sbx2.key -i age.key -o m3.out k2.age
same "  plaintext" p65537 m3.out

# ---------------------------------------------------------------- SSH keys (when supported)
if command -v ssh-keygen >/dev/null; then
    ssh-keygen -q -t ed25519 -N '' -C ed -f id_ed25519
    ssh-keygen -q -t rsa -b 2048 -N '' -C rsa -f id_rsa
    if ! "$SBX" encrypt -r "$(cat id_ed25519.pub)" -o /dev/stdout p1 >/dev/null 2>&1; then
        echo "# this sbx does not take SSH recipients: SSH interop skipped"
    else
        for k in id_ed25519 id_rsa; do
            step "sbx encrypt -r $k.pub" "$SBX" encrypt -r "$(cat $k.pub)" -o h1.age p65537
            step "  age -d -i $k" "$AGE" -d -i "$k" -o h1.out h1.age
            same "  plaintext ($k, sbx -> age)" p65537 h1.out
            step "age -e -R $k.pub" "$AGE" -e -a -R "$k.pub" -o h2.age p65537
            step "  sbx decrypt -i $k" "$SBX" decrypt -i "$k" -o h2.out h2.age
            same "  plaintext ($k, age -> sbx)" p65537 h2.out
            rm -f h1.age h1.out h2.age h2.out
        done
        cat id_ed25519.pub id_rsa.pub >ssh-team.txt
        printf '%s\n' "$AGE_PUB" >>ssh-team.txt
        step "sbx encrypt -R (SSH and age keys mixed)" "$SBX" encrypt -R ssh-team.txt -o h3.age p1
        for k in id_ed25519 id_rsa age.key; do
            step "  age -d -i $k" "$AGE" -d -i "$k" -o h3.out h3.age
            same "  plaintext ($k)" p1 h3.out
        done
    fi
fi

# flip_byte FILE OFFSET: change the byte at OFFSET (xor 1), whatever it was.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# Refusals agree: a wrong key fails on both sides.
set +e
"$AGE" -d -i age2.key -o /dev/stdout k2.age >/dev/null 2>&1
age_rc=$?
"$SBX" decrypt -i age2.key k2.age >/dev/null 2>err
sbx_rc=$?
set -e
check "a wrong key fails in both tools" [ $age_rc -ne 0 ] && [ $sbx_rc -ne 0 ]
cp k2.age tampered.age
flip_byte tampered.age $(($(stat -c %s k2.age) - 3))
set +e
"$AGE" -d -i age.key tampered.age >/dev/null 2>&1
age_rc=$?
"$SBX" decrypt -i age.key tampered.age >/dev/null 2>err
sbx_rc=$?
set -e
check "a tampered file fails in both tools" [ $age_rc -ne 0 ] && [ $sbx_rc -ne 0 ]

# ---------------------------------------------------------------- passphrases (via a pty)
if ! command -v expect >/dev/null; then
    echo "expect not found: passphrase interop skipped (apt-get install expect)"
else
    # tty PASSPHRASE CMD...: run CMD on a pseudo-terminal, typing PASSPHRASE at every
    # "...passphrase...:" prompt; exits with CMD's status.
    cat >tty.exp <<'EOF'
set timeout 180
log_user 0
set pass $env(TTY_PASS)
spawn -noecho {*}$argv
expect {
    -re {[Pp]assphrase[^:\r\n]*:} { send -- "$pass\r"; exp_continue }
    timeout { puts stderr "tty.exp: timed out"; close; wait; exit 124 }
    eof
}
lassign [wait] pid spawn_id os_error status
exit $status
EOF
    tty() {
        TTY_PASS=$1 expect -f tty.exp -- "${@:2}"
    }
    PASS='correct horse battery staple'
    printf '%s\n' "$PASS" >pass.txt

    step "sbx encrypt --passphrase-file (default work factor)" \
        "$SBX" encrypt --passphrase-file pass.txt -o pp1.age p65537
    step "  age -d, passphrase typed" tty "$PASS" "$AGE" -d -o pp1.out pp1.age
    same "  sbx -> age passphrase plaintext" p65537 pp1.out
    step "sbx encrypt --passphrase-file /dev/fd/3, armored" \
        "$SBX" encrypt -a --passphrase-file /dev/fd/3 -o pp2.age p1 3<pass.txt
    step "  age -d, passphrase typed" tty "$PASS" "$AGE" -d -o pp2.out pp2.age
    same "  plaintext" p1 pp2.out
    step "age -p, passphrase typed twice" tty "$PASS" "$AGE" -p -o pp3.age p65537
    step "  sbx decrypt --passphrase-file" "$SBX" decrypt --passphrase-file pass.txt -o pp3.out pp3.age
    same "  age -> sbx passphrase plaintext" p65537 pp3.out
    step "age -p -a" tty "$PASS" "$AGE" -p -a -o pp4.age p0
    step "  sbx decrypt --passphrase-file /dev/fd/3" \
        "$SBX" decrypt --passphrase-file /dev/fd/3 -o pp4.out pp4.age 3<pass.txt
    same "  plaintext" p0 pp4.out
    step "sbx encrypt -p, passphrase typed twice on sbx's terminal prompt" \
        tty "$PASS" "$SBX" encrypt -p -o pp5.age p65536
    step "  age -d, passphrase typed" tty "$PASS" "$AGE" -d -o pp5.out pp5.age
    same "  plaintext" p65536 pp5.out
    step "sbx decrypt asks on the terminal for an age -p file" \
        tty "$PASS" "$SBX" decrypt -o pp6.out pp3.age
    same "  plaintext" p65537 pp6.out
    set +e
    tty "wrong $PASS" "$AGE" -d -o pp7.out pp1.age >/dev/null 2>&1
    age_rc=$?
    tty "wrong $PASS" "$SBX" decrypt -o pp8.out pp3.age >/dev/null 2>&1
    sbx_rc=$?
    set -e
    check "a wrong passphrase fails in both tools" [ $age_rc -ne 0 ] && [ $sbx_rc -ne 0 ]
    check "  and neither left an output file" [ ! -e pp8.out ]

    # Identity files encrypted with a passphrase: age -p key.txt makes them, age -d -i and
    # sbx -i read them (the passphrase typed, or for sbx also from --passphrase-file).
    "$SBX" encrypt -r "$AGE_PUB" -o id1.age p65537
    step "age -p of an identity file" tty "$PASS" "$AGE" -p -o age.key.age age.key
    step "  sbx decrypt -i it --passphrase-file" \
        "$SBX" decrypt -i age.key.age --passphrase-file pass.txt -o id1.out id1.age
    same "  plaintext" p65537 id1.out
    step "age -p -a of an identity file" tty "$PASS" "$AGE" -p -a -o age.key.asc age.key
    step "  sbx decrypt -i it, passphrase typed at sbx's prompt" \
        tty "$PASS" "$SBX" decrypt -i age.key.asc -o id2.out id1.age
    same "  plaintext" p65537 id2.out
    step "  sbx encrypt -i it (to its public key), passphrase typed" \
        tty "$PASS" "$SBX" encrypt -i age.key.asc -o id3.age p1
    step "  age -d -i age.key" "$AGE" -d -i age.key -o id3.out id3.age
    same "  plaintext" p1 id3.out
    step "sbx encrypt --passphrase-file of an identity file" \
        "$SBX" encrypt --passphrase-file pass.txt -o sbx.key.age age.key
    step "  age -d -i it, passphrase typed" tty "$PASS" "$AGE" -d -i sbx.key.age -o id4.out id1.age
    same "  plaintext" p65537 id4.out
    set +e
    printf 'wrong\n' >wrong.txt
    "$SBX" decrypt -i age.key.age --passphrase-file wrong.txt -o id5.out id1.age 2>err
    sbx_rc=$?
    set -e
    check "a wrong identity-file passphrase fails, named" \
        [ $sbx_rc -eq 1 ] && grep -q 'wrong passphrase' err && [ ! -e id5.out ]
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
