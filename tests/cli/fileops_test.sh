#!/usr/bin/env bash
# tests/cli/fileops_test.sh SBX - sbx rotate, encrypt --pad, pad/unpad, inspect
# (issue 6), including interop with age(1) when it is installed.
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure.
set -u
SBX=${1:?usage: fileops_test.sh path/to/sbx}
SBX=$(cd "$(dirname "$SBX")" && pwd)/$(basename "$SBX")
W=$(mktemp -d /tmp/sbx-fileops-cli.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
pass=0
fail=0
ok() { echo "ok   - $1"; pass=$((pass + 1)); }
ko() { echo "FAIL - $1"; fail=$((fail + 1)); }
check() { # check "name" command...
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$name"; else ko "$name"; fi
}
check_fails() { # check_fails "name" expected_status command...
    local name=$1 want=$2
    shift 2
    "$@" >/dev/null 2>"$W/err"
    local st=$?
    if [ "$st" = "$want" ]; then ok "$name"; else ko "$name (exit $st, want $want: $(head -c 300 "$W/err"))"; fi
}
json_ok() { python3 -c 'import json,sys
for line in open(sys.argv[1]): json.loads(line)' "$1"; }
json_get() { python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d'"$2"')' "$1"; }
have_age() { command -v age >/dev/null 2>&1; }
size() { stat -c %s "$1"; }

"$SBX" keygen -o k1 2>/dev/null
"$SBX" keygen -o k2 2>/dev/null
R1=$("$SBX" keygen -y k1)
R2=$("$SBX" keygen -y k2)
head -c 300000 /dev/urandom >plain
printf 'correct horse\n' >pw1
printf 'battery staple\n' >pw2

# ---- rotate ----
"$SBX" encrypt -r "$R1" -o f.age plain
cp f.age f.orig
payload() { # payload bytes of a binary age file (after the MAC line)
    local off
    off=$(grep -abo -m1 -- '^--- ' "$1" | cut -d: -f1)
    tail -c +$((off + 49)) "$1" # the MAC line is 48 bytes
}
check "rotate: exit 0" "$SBX" rotate -i k1 -r "$R2" f.age
check_fails "rotate: old identity no longer matches" 1 "$SBX" decrypt -i k1 -o out f.age
grep -q "no identity matched" "$W/err" && ok "rotate: old identity error says no match" || ko "rotate: old identity error says no match"
"$SBX" decrypt -i k2 -o out f.age && cmp -s out plain && ok "rotate: new identity decrypts to the same plaintext" || ko "rotate: new identity decrypts to the same plaintext"
payload f.orig >p.before
payload f.age >p.after
cmp -s p.before p.after && [ "$(size p.before)" -gt 300000 ] && ok "rotate: payload bytes unchanged" || ko "rotate: payload bytes unchanged"
ls -a | grep -q '\.tmp-' && ko "rotate: no temporary file left" || ok "rotate: no temporary file left"
if have_age; then
    age -d -i k2 f.age | cmp -s - plain && ok "rotate: age decrypts the rotated file" || ko "rotate: age decrypts the rotated file"
fi
cp f.age f.before-rekey
check "rotate --rekey -o" "$SBX" rotate -i k2 -r "$R1" -r "$R2" --rekey -o g.age f.age
cmp -s f.age f.before-rekey && ok "rotate -o: input untouched" || ko "rotate -o: input untouched"
payload g.age | cmp -s - p.before && ko "rotate --rekey: payload changed" || ok "rotate --rekey: payload changed"
"$SBX" decrypt -i k1 g.age | cmp -s - plain && ok "rotate --rekey: decrypts (both new recipients)" || ko "rotate --rekey: decrypts (both new recipients)"
"$SBX" rotate --json -i k1 -r "$R2" g.age >rot.json && json_ok rot.json && [ "$(json_get rot.json "['mode']")" = rewrap ] && ok "rotate --json: valid JSON" || ko "rotate --json: valid JSON"
check_fails "rotate: wrong identity fails" 1 "$SBX" rotate -i k1 -r "$R1" f.age
cmp -s f.age f.before-rekey && ok "rotate: failed rotation leaves the file" || ko "rotate: failed rotation leaves the file"
check_fails "rotate: passphrase with other recipients is a usage error" 2 "$SBX" rotate -i k2 --new-passphrase-file pw1 -r "$R1" f.age
check "rotate: key -> passphrase" "$SBX" rotate -i k2 --new-passphrase-file pw1 f.age
"$SBX" decrypt --passphrase-file pw1 f.age | cmp -s - plain && ok "rotate: passphrase decrypts" || ko "rotate: passphrase decrypts"
check "rotate: passphrase -> passphrase" "$SBX" rotate --passphrase-file pw1 --new-passphrase-file pw2 f.age
check_fails "rotate: old passphrase refused" 1 "$SBX" decrypt --passphrase-file pw1 f.age
check "rotate: passphrase -> key" "$SBX" rotate --passphrase-file pw2 -r "$R1" f.age
"$SBX" decrypt -i k1 f.age | cmp -s - plain && ok "rotate: key decrypts again" || ko "rotate: key decrypts again"
"$SBX" encrypt -a -r "$R1" -o a.age plain
check "rotate: armored file" "$SBX" rotate -i k1 -r "$R2" a.age
head -1 a.age | grep -q 'BEGIN AGE ENCRYPTED FILE' && "$SBX" decrypt -i k2 a.age | cmp -s - plain && ok "rotate: armored stays armored and decrypts" || ko "rotate: armored stays armored and decrypts"
head -c 200 f.age >trunc.age
check_fails "rotate: truncated file refused" 1 "$SBX" rotate -i k1 -r "$R2" trunc.age
[ "$(size trunc.age)" = 200 ] && ok "rotate: truncated file unchanged" || ko "rotate: truncated file unchanged"
touch .f.age.tmp-0123456789ab
"$SBX" rotate -i k1 -r "$R2" f.age 2>err.txt >/dev/null
grep -q "interrupted run" err.txt && ok "rotate: warns about a stale temporary file" || ko "rotate: warns about a stale temporary file"
"$SBX" decrypt -i k2 f.age | cmp -s - plain && ok "rotate: stale temporary file is ignored" || ko "rotate: stale temporary file is ignored"
rm -f .f.age.tmp-0123456789ab
ln -s f.age f.link
check "rotate FILE-as-symlink: in place" "$SBX" rotate -i k2 -r "$R1" f.link
[ -L f.link ] && "$SBX" decrypt -i k1 f.age | cmp -s - plain && ok "rotate: the link's target rotated, link kept" || ko "rotate: the link's target rotated, link kept"
cp f.age f.before
check_fails "rotate -o SYMLINK refused" 1 "$SBX" rotate -i k1 -r "$R2" -o f.link f.age
cmp -s f.age f.before && ok "rotate -o SYMLINK: the target untouched" || ko "rotate -o SYMLINK: the target untouched"
check "rotate back" "$SBX" rotate -i k1 -r "$R2" f.age
rm -f f.link f.before

# ---- encrypt --pad / decrypt ----
for n in 0 1 4087 4088 4089 65536 100000; do
    head -c "$n" /dev/urandom >d$n
    "$SBX" encrypt --pad-to 4096 -r "$R1" -o d$n.age d$n
    "$SBX" decrypt -i k1 -o d$n.out d$n.age && cmp -s d$n d$n.out && ok "pad-to 4096: $n bytes round trip" || ko "pad-to 4096: $n bytes round trip"
    if have_age; then
        want=$(( (n + 8 + 4095) / 4096 * 4096 ))
        age -d -i k1 -o d$n.raw d$n.age
        [ "$(size d$n.raw)" = "$want" ] && ok "pad-to 4096: age sees $want padded bytes for $n" || ko "pad-to 4096: age sees $want padded bytes for $n (got $(size d$n.raw))"
        tl=$(tail -c 8 d$n.raw | od -An -tx1 | tr -d ' \n')
        [ "$((16#$tl))" = "$n" ] && ok "pad-to 4096: trailer holds the length $n" || ko "pad-to 4096: trailer holds the length $n"
    fi
done
"$SBX" encrypt --pad -r "$R1" -o padme.age plain
"$SBX" decrypt -i k1 padme.age | cmp -s - plain && ok "pad (PADME): round trip" || ko "pad (PADME): round trip"
if have_age; then
    [ "$(age -d -i k1 padme.age | wc -c)" = 303104 ] && ok "pad (PADME): age sees 303104 bytes" || ko "pad (PADME): age sees 303104 bytes"
fi
"$SBX" decrypt -i k1 --offset 4000 --length 200 d4089.age >range.out
tail -c +4001 d4089 | cmp -s - range.out && [ "$(size range.out)" = 89 ] && ok "pad: --offset/--length stop at the true end" || ko "pad: --offset/--length stop at the true end"
"$SBX" decrypt -i k1 --offset 5000 d4089.age >range.out
[ "$(size range.out)" = 0 ] && ok "pad: --offset past the true end gives nothing" || ko "pad: --offset past the true end gives nothing"
check_fails "pad: refused with a passphrase" 2 "$SBX" encrypt --pad --passphrase-file pw1 -o x.age plain
check_fails "pad: bad size refused" 2 "$SBX" encrypt --pad-to 12Q -r "$R1" -o x.age plain
head -c $(( $(size d100000.age) - 70000 )) d100000.age >dt.age
check_fails "pad: truncated padded file refused" 1 "$SBX" decrypt -i k1 -o dt.out dt.age
[ -e dt.out ] && ko "pad: no output from a truncated file" || ok "pad: no output from a truncated file"
check "pad: rotated padded file" "$SBX" rotate -i k1 -r "$R2" d4089.age
"$SBX" decrypt -i k2 d4089.age | cmp -s - d4089 && ok "pad: padding kept by rotate" || ko "pad: padding kept by rotate"

# ---- sbx pad / unpad (pyFileSec format) ----
head -c 128 /dev/zero | tr '\0' a >a128
cp a128 a
check "pad -s 38400" "$SBX" pad -s 38400 a
[ "$(size a)" = 38400 ] && ok "pad: size is 38400" || ko "pad: size is 38400"
[ "$(tail -c 32 a | head -c 14)" = "pad=0000038272" ] && ok "pad: trailer count" || ko "pad: trailer count"
check "pad: re-pad to default size" "$SBX" pad a
[ "$(size a)" = 16384 ] && ok "pad: default 16384, not cumulative" || ko "pad: default 16384, not cumulative"
"$SBX" unpad --json a >unpad.json && json_ok unpad.json && ok "unpad --json: valid JSON" || ko "unpad --json: valid JSON"
cmp -s a a128 && ok "unpad: exact original bytes" || ko "unpad: exact original bytes"
check_fails "unpad: unpadded file refused" 1 "$SBX" unpad a
check "unpad --lenient: unpadded file accepted" "$SBX" unpad --lenient a
cmp -s a a128 && ok "unpad --lenient: file unchanged" || ko "unpad --lenient: file unchanged"
: >empty
"$SBX" pad --json empty >pad.json && json_ok pad.json && [ "$(json_get pad.json "['size']")" = 16384 ] && ok "pad: empty file to 16384 (JSON)" || ko "pad: empty file to 16384 (JSON)"
head -c 200 /dev/urandom >b200
check_fails "pad: 32 bytes short of the target refused" 1 "$SBX" pad -s 232 b200
check "pad: 33 bytes short accepted" "$SBX" pad -s 233 -o b233 b200
cp b233 bad
printf 'Z' | dd of=bad bs=1 seek=201 conv=notrunc 2>/dev/null
check_fails "unpad: non-NUL filler refused" 1 "$SBX" unpad bad
[ "$(size bad)" = 233 ] && ok "unpad: malformed file unchanged" || ko "unpad: malformed file unchanged"
cp b233 bad2
printf 'x' | dd of=bad2 bs=1 seek=205 conv=notrunc 2>/dev/null
check_fails "unpad: damaged count refused" 1 "$SBX" unpad bad2
check "pad -s -1: strict unpad" "$SBX" pad -s -1 -o b200.back b233
cmp -s b200.back b200 && ok "pad -s -1: exact bytes" || ko "pad -s -1: exact bytes"
check_fails "pad: bad size is a usage error" 2 "$SBX" pad -s abc b200
# Symbolic links (issue 14): FILE in place is followed, a link at -o OUTPUT refused.
cp a128 lt && ln -s lt lt.link
check "pad FILE-as-symlink: in place" "$SBX" pad lt.link
[ -L lt.link ] && [ "$(size lt)" = 16384 ] && ok "pad: the link's target padded, link kept" || ko "pad: the link's target padded, link kept"
check "unpad FILE-as-symlink: in place" "$SBX" unpad lt.link
[ -L lt.link ] && cmp -s lt a128 && ok "unpad: the link's target restored, link kept" || ko "unpad: the link's target restored, link kept"
check_fails "pad -o SYMLINK refused" 1 "$SBX" pad -o lt.link b200
check_fails "unpad -o SYMLINK refused" 1 "$SBX" unpad -o lt.link b233
cmp -s lt a128 && ok "pad/unpad -o SYMLINK: the target untouched" || ko "pad/unpad -o SYMLINK: the target untouched"
rm -f lt lt.link

# ---- inspect ----
"$SBX" encrypt --passphrase-file pw1 --work-factor 10 -o s.age plain
for f in f.age a.age s.age d4089.age padme.age b233 plain empty; do
    "$SBX" inspect --json "$f" >i.json && json_ok i.json && ok "inspect --json $f: valid JSON" || ko "inspect --json $f: valid JSON"
done
"$SBX" inspect --json f.age a.age >two.json && [ "$(wc -l <two.json)" = 2 ] && json_ok two.json && ok "inspect: one JSON line per file" || ko "inspect: one JSON line per file"
"$SBX" inspect --json f.age >i.json
[ "$(json_get i.json "['format']")" = age ] && [ "$(json_get i.json "['stanza_types']['X25519']")" = 1 ] && [ "$(json_get i.json "['plaintext_size']")" = 300000 ] && [ "$(json_get i.json "['chunks']")" = 5 ] && ok "inspect: age facts" || ko "inspect: age facts"
"$SBX" inspect --json a.age >i.json
[ "$(json_get i.json "['format']")" = age-armored ] && [ "$(json_get i.json "['plaintext_size']")" = 300000 ] && ok "inspect: armored facts" || ko "inspect: armored facts"
"$SBX" inspect --json s.age >i.json
[ "$(json_get i.json "['scrypt_work_factor']")" = 10 ] && ok "inspect: scrypt work factor" || ko "inspect: scrypt work factor"
"$SBX" inspect --json d4089.age >i.json
[ "$(json_get i.json "['padded']")" = True ] && [ "$(json_get i.json "['plaintext_size']")" = 8192 ] && ok "inspect: padded file" || ko "inspect: padded file"
"$SBX" inspect --json b233 >i.json
[ "$(json_get i.json "['format']")" = pyfilesec-padded ] && ok "inspect: pyFileSec padding" || ko "inspect: pyFileSec padding"
"$SBX" inspect --json d100000.age >i.json
head -c $(( $(json_get i.json "['header_size']") + 16 + 65552 + 5 )) d100000.age >dt2.age
"$SBX" inspect --json dt2.age >i.json
[ "$(json_get i.json "['valid']")" = False ] && ok "inspect: truncated file reported invalid" || ko "inspect: truncated file reported invalid"
"$SBX" inspect f.age >i.txt && grep -q "X25519 x1" i.txt && ok "inspect: text output" || ko "inspect: text output"
if "$SBX" inspect --json f.age | grep -q "$(sed -n 3p f.age | head -c 20)"; then ko "inspect: no stanza body in output"; else ok "inspect: no stanza body in output"; fi
if command -v ssh-keygen >/dev/null 2>&1; then
    ssh-keygen -q -t ed25519 -N '' -f sk >/dev/null
    "$SBX" encrypt -R sk.pub -o ssh.age plain 2>/dev/null
    if [ -s ssh.age ]; then
        "$SBX" inspect --json ssh.age >i.json
        [ "$(json_get i.json "['ssh_keys'][0]['type']")" = ssh-ed25519 ] && ok "inspect: ssh key tag" || ko "inspect: ssh key tag"
    fi
fi
check_fails "inspect: missing file" 1 "$SBX" inspect nosuchfile
check_fails "inspect: no file is a usage error" 2 "$SBX" inspect

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
