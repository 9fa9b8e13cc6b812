#!/usr/bin/env bash
# tests/cli/seal_destroy_test.sh - black-box tests of sbx destroy, sbx seal
# and sbx unseal (issue 6): reports and JSON (validated with python3 -m
# json.tool), refusals, fake sync-folder and version-control layouts,
# metadata, failure paths (wrong key, tampered, truncated: non-zero exit,
# clear error, no output), and age(1) reading sealed files when installed.
#
#   bash tests/cli/seal_destroy_test.sh build/sbx
set -u
SBX=$(realpath "$1")
W=$(mktemp -d /tmp/sbx-sealcli-XXXXXX)
SHM=/dev/shm/sbx-sealcli-$$
trap 'rm -rf "$W" "$SHM"*' EXIT
cd "$W" || exit 1
pass=0
fail=0

ok() {
    echo "ok   - $1"
    pass=$((pass + 1))
}
bad() {
    echo "FAIL - $1"
    fail=$((fail + 1))
}
check() { # check "name" command...
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
check_not() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then bad "$name"; else ok "$name"; fi
}
json_ok() { python3 -m json.tool "$1" >/dev/null 2>&1; }
json_get() { # json_get FILE PYTHON-EXPR (d is the document)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

"$SBX" keygen -o key.txt 2>/dev/null
"$SBX" keygen -o other.txt 2>/dev/null
R=$("$SBX" keygen -y key.txt)

# ---- destroy ----
head -c 100000 /dev/urandom >d1.bin
ino=$(stat -c %i d1.bin)
"$SBX" destroy d1.bin >out.txt 2>err.txt
rc=$?
check "destroy: exit 0" test $rc -eq 0
check "destroy: file gone" test ! -e d1.bin
check "destroy: no leftover renamed file" test -z "$(ls -A | grep '^\.sbx-')"
check "destroy: human report names bytes and passes" grep -q "1 pass, 100000 bytes" out.txt
check "destroy: human report names the inode" grep -q "inode $ino" out.txt

head -c 5000 /dev/urandom >d2.bin
"$SBX" destroy --passes 3 --json d2.bin >d2.json 2>/dev/null
check "destroy --json: valid JSON" json_ok d2.json
check "destroy --json: bytes_overwritten = 3 x size" \
    test "$(json_get d2.json 'd["results"][0]["bytes_overwritten"]')" = 15000
check "destroy --json: passes" test "$(json_get d2.json 'd["results"][0]["passes"]')" = 3
check "destroy --json: links" test "$(json_get d2.json 'd["results"][0]["links"]')" = 1
check "destroy --json: fs_type present" test -n "$(json_get d2.json 'd["results"][0]["fs_type"]')"
check "destroy --json: media is rotational|ssd|unknown" \
    json_get d2.json 'exit(0 if d["results"][0]["media"] in ("rotational","ssd","unknown") else 1)'
check "destroy --json: seconds is a number" \
    json_get d2.json 'exit(0 if isinstance(d["results"][0]["seconds"], float) else 1)'

odd=$'q"uote\\ new\nline \xff\xfe'
echo odd >"$odd"
"$SBX" destroy --json "$odd" >odd.json 2>/dev/null
check "destroy --json: odd file name (quote, newline, not UTF-8) is valid JSON" json_ok odd.json
check "destroy --json: odd file name destroyed" test ! -e "$odd"

echo x >h1
ln h1 h2
ln h1 h3
"$SBX" destroy h1 2>err.txt
rc=$?
check "destroy: hard links refused (exit 1)" test $rc -eq 1
check "destroy: refusal names the link count" grep -q "3 hard links" err.txt
check "destroy: refusal gives the find hint" grep -q -- "-inum" err.txt
check "destroy: refused file untouched" test "$(cat h1)" = x
"$SBX" destroy --force --json h1 >h.json 2>/dev/null
check "destroy --force: exit 0, valid JSON" json_ok h.json
check "destroy --force: name removed" test ! -e h1
check "destroy --force: data kept under other names" test "$(cat h2)" = x
check "destroy --force: reports not overwritten" \
    test "$(json_get h.json 'd["results"][0]["overwritten"]')" = False
check "destroy --force: warning says NOT overwritten" \
    json_get h.json 'exit(0 if "NOT overwritten" in d["results"][0]["warnings"][0] else 1)'

echo t >target
ln -s target lnk
check_not "destroy: symlink refused" "$SBX" destroy lnk
check "destroy: symlink kept, target intact" test -L lnk -a "$(cat target)" = t
"$SBX" destroy lnk 2>err.txt
check "destroy: symlink message" grep -q "symbolic link" err.txt
mkfifo fifo
check_not "destroy: FIFO refused" "$SBX" destroy fifo
check_not "destroy: directory refused" "$SBX" destroy .
check_not "destroy: missing file" "$SBX" destroy nothing-here
"$SBX" destroy --passes 0 target 2>/dev/null
check "destroy: --passes 0 is a usage error (2)" test $? -eq 2
"$SBX" destroy --json lnk >l.json 2>/dev/null
check "destroy --json on refusal: valid JSON with ok=false" \
    json_get l.json 'exit(0 if d["ok"] is False and d["results"][0]["error_code"]=="SBX_EINVAL" else 1)'

if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    head -c 4096 /dev/urandom >"$SHM"
    "$SBX" destroy --json "$SHM" >shm.json 2>/dev/null
    check "destroy on tmpfs: fs_type tmpfs" test "$(json_get shm.json 'd["results"][0]["fs_type"]')" = tmpfs
    check "destroy on tmpfs: not reliable" \
        test "$(json_get shm.json 'd["results"][0]["reliable"]')" = False
    check "destroy on tmpfs: honest swap warning" \
        json_get shm.json 'exit(0 if "swap" in d["results"][0]["warnings"][0] else 1)'
    head -c 10 /dev/urandom >"$SHM"
    "$SBX" destroy "$SHM" >shm.txt
    check "destroy on tmpfs: human warning" grep -q "warning: tmpfs" shm.txt
    check "destroy on tmpfs: no claim of success" grep -q "may survive" shm.txt
else
    echo "SKIP - /dev/shm is not a tmpfs here"
fi

# ---- seal / unseal ----
head -c 300001 /dev/urandom >bin.dat
sum=$(sha256sum <bin.dat)
"$SBX" seal -r "$R" -i key.txt --meta --json bin.dat >s.json 2>err.txt
rc=$?
check "seal: exit 0" test $rc -eq 0
check "seal --json: valid JSON" json_ok s.json
check "seal: original destroyed" test ! -e bin.dat
check "seal: FILE.age is 0600" test "$(stat -c %a bin.dat.age)" = 600
check "seal --json: verified + verified_identity" \
    json_get s.json 'exit(0 if d["results"][0]["verified"] and d["results"][0]["verified_identity"] else 1)'
check "seal --json: destroy report embedded" \
    json_get s.json 'exit(0 if d["results"][0]["destroy"]["bytes_overwritten"]==300001 else 1)'
check "seal --json: sha256 of the original" \
    test "$(json_get s.json 'd["results"][0]["sha256"]')  -" = "$sum"
check "seal: plaintext name not in the sealed file" test -z "$(grep -a -l bin.dat bin.dat.age)"
"$SBX" unseal -i other.txt bin.dat.age 2>err.txt
rc=$?
check "unseal: wrong key fails (exit 1)" test $rc -eq 1
check "unseal: wrong key writes nothing" test ! -e bin.dat
check "unseal: wrong key keeps FILE.age" test -e bin.dat.age
check "unseal: wrong key message" grep -q "no identity matched" err.txt

# A secret key pasted as -r by mistake is refused and never printed (it goes through
# the recipient loader encrypt uses).
echo secret > pasted.txt
sk=$(grep '^AGE-SECRET-KEY-' "$(ls ./*.key 2>/dev/null | head -1)" 2>/dev/null || true)
[ -n "$sk" ] || sk=AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ
"$SBX" seal -r "$sk" pasted.txt >out.txt 2>err.txt
rc=$?
check "seal -r SECRET-KEY: refused (exit 1)" test $rc -eq 1
check "seal -r SECRET-KEY: the key is not in the message" bash -c "! grep -qF -- '$sk' err.txt out.txt"
check "seal -r SECRET-KEY: the original is kept" test -e pasted.txt
"$SBX" unseal -i key.txt --json bin.dat.age >u.json 2>/dev/null
check "unseal: exit 0 and valid JSON" json_ok u.json
check "unseal: content restored" test "$(sha256sum <bin.dat)" = "$sum"
check "unseal: output 0600" test "$(stat -c %a bin.dat)" = 600
check "unseal: FILE.age removed" test ! -e bin.dat.age
check "unseal --json: metadata name" test "$(json_get u.json 'd["meta"]["name"]')" = bin.dat
check "unseal --json: metadata size" test "$(json_get u.json 'd["meta"]["size"]')" = 300001
check "unseal --json: a history line" \
    json_get u.json 'exit(0 if "sealed by sbx" in d["meta"]["history"][0] else 1)'

# rotate (rewrap) keeps the sealed metadata stanza
head -c 1000 /dev/urandom >meta.dat
"$SBX" seal -r "$R" --meta meta.dat >/dev/null 2>&1
"$SBX" rotate -i key.txt -r "$("$SBX" keygen -y other.txt)" -o meta.rot meta.dat.age 2>err.txt
check "rotate of a sealed file: exit 0" test $? -eq 0
mv meta.rot meta.dat.age
"$SBX" unseal -i other.txt --json meta.dat.age >um.json 2>err.txt
check "unseal after rotate: metadata kept" test "$(json_get um.json 'd["meta"]["name"]')" = meta.dat
rm -f meta.dat meta.dat.age um.json

: >empty
"$SBX" seal -r "$R" empty >/dev/null 2>&1
check "seal: empty file sealed" test -e empty.age -a ! -e empty
"$SBX" unseal -i key.txt empty.age >/dev/null 2>&1
check "unseal: empty file restored" test -e empty -a ! -s empty

head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >large
lsum=$(sha256sum <large)
"$SBX" seal -r "$R" --keep large >/dev/null 2>&1
check "seal --keep: original kept" test -e large -a -e large.age
"$SBX" unseal -i key.txt -o large.out large.age >/dev/null 2>&1
check "unseal -o: large file restored" test "$(sha256sum <large.out)" = "$lsum"

echo new >dup
echo precious >dup.age
"$SBX" seal -r "$R" dup 2>err.txt
rc=$?
check "seal: refuses when FILE.age exists" test $rc -eq 1
check "seal: existing FILE.age untouched" test "$(cat dup.age)" = precious
check "seal: original kept on refusal" test "$(cat dup)" = new
check "seal: refusal message" grep -q "already exists" err.txt
echo keepme >x
"$SBX" seal -r "$R" --keep x >/dev/null 2>&1
echo exists >x.out
"$SBX" unseal -i key.txt -o x.out x.age 2>/dev/null
check "unseal: refuses to replace an output" test $? -eq 1 -a "$(cat x.out)" = exists
"$SBX" unseal -i key.txt -o x.out --force --keep x.age >/dev/null 2>&1
check "unseal --force: replaces the output" test "$(cat x.out)" = keepme -a -e x.age
# Issue 14 item 6: --force never writes through a symbolic link at the output.
echo victim >victim.txt
ln -s victim.txt x.lnk
"$SBX" unseal -i key.txt -o x.lnk --force --keep x.age >/dev/null 2>err.txt
check "unseal --force -o SYMLINK: refused (exit 1)" test $? -eq 1
check "unseal --force -o SYMLINK: the link's target is untouched" test "$(cat victim.txt)" = victim
check "unseal --force -o SYMLINK: still a link" test -L x.lnk
check "unseal --force -o SYMLINK: the message names the fix" grep -q "give the target's own path" err.txt
check "unseal --force -o SYMLINK: the sealed file is kept" test -e x.age
mv x x.keep
ln -s victim.txt x
"$SBX" unseal -i key.txt --force --keep x.age >/dev/null 2>err.txt
check "unseal --force to a symlink FILE: refused, target untouched" \
    test $? -eq 1 -a "$(cat victim.txt)" = victim -a -L x
rm -f x x.lnk victim.txt
mv x.keep x
cp x.age x.age.orig
ln -s x.age x.link
for out in x.age ./x.age x.link; do
    "$SBX" unseal -i key.txt -o "$out" --force x.age >/dev/null 2>err.txt
    check "unseal --force -o $out (the sealed file itself): refused (exit 1)" test $? -eq 1
    check "unseal --force -o $out: the sealed file is untouched" cmp -s x.age x.age.orig
done
check "unseal -o the sealed file: message" grep -q "another output name" err.txt
rm -f x.link x.age.orig

# tampered and truncated sealed files
cp x.age t.age
printf '\x01' | dd of=t.age bs=1 seek=40 conv=notrunc 2>/dev/null
check_not "unseal: tampered header refused" "$SBX" unseal -i key.txt t.age
check "unseal: tampered: no output" test ! -e t
head -c 100000 /dev/urandom >big
"$SBX" seal -r "$R" big >/dev/null 2>&1
size=$(stat -c %s big.age)
head -c $((size - 500)) big.age >trunc.age
"$SBX" unseal -i key.txt trunc.age 2>err.txt
check "unseal: truncated refused (exit 1)" test $? -eq 1
check "unseal: truncated: no output, input kept" test ! -e trunc -a -e trunc.age
check "unseal: truncated: message" grep -qi "truncated\|payload" err.txt

# pre-flight: fake layouts
mkdir -p repo/.git repo/src "Dropbox/p" "Google Drive/My Drive" marker
: >marker/.dropbox
echo a >repo/src/a
echo b >Dropbox/p/b
echo c >"Google Drive/My Drive/c"
echo d >marker/d
"$SBX" seal -r "$R" --keep repo/src/a 2>err.txt >/dev/null
check "seal: git working tree warned" grep -q "inside a git working tree" err.txt
"$SBX" seal -r "$R" --keep Dropbox/p/b 2>err.txt >/dev/null
check "seal: Dropbox folder warned" grep -q "Dropbox folder" err.txt
"$SBX" seal -r "$R" --keep "Google Drive/My Drive/c" 2>err.txt >/dev/null
check "seal: Google Drive warned" grep -q "Google Drive folder" err.txt
"$SBX" seal -r "$R" --strict --json marker/d >m.json 2>err.txt
rc=$?
check "seal --strict: .dropbox marker refused (exit 1)" test $rc -eq 1
check "seal --strict: no FILE.age, original kept" test ! -e marker/d.age -a -e marker/d
check "seal --strict --json: valid, names the service" \
    json_get m.json 'exit(0 if d["results"][0]["preflight"]["sync_service"]=="Dropbox" and not d["ok"] else 1)'
rm -f repo/src/a.age
"$SBX" seal -r "$R" --strict repo/src/a 2>err.txt
check "seal --strict: git refused" test $? -eq 1 -a ! -e repo/src/a.age
check "seal --strict: message" grep -q "strict" err.txt
echo l >l1
ln l1 l2
"$SBX" seal -r "$R" --json l1 >l.json 2>err.txt
check "seal: hard links warned" grep -q "2 hard links" err.txt
check "seal: hard links: only the name removed" test ! -e l1 -a "$(cat l2)" = l
check "seal --json: preflight links = 2" test "$(json_get l.json 'd["results"][0]["preflight"]["links"]')" = 2

# usage errors
"$SBX" seal x 2>/dev/null
check "seal: no recipient is a usage error (2)" test $? -eq 2
"$SBX" unseal x.age 2>/dev/null
check "unseal: no identity is a usage error (2)" test $? -eq 2
check_not "seal: bad recipient" "$SBX" seal -r age1bogus x

# age(1) reads sealed files, with and without metadata
if command -v age >/dev/null 2>&1; then
    head -c 70000 /dev/urandom >agef
    asum=$(sha256sum <agef)
    "$SBX" seal -r "$R" --meta --keep agef >/dev/null 2>&1
    check "age -d: sealed file with metadata decrypts to the exact original" \
        test "$(age -d -i key.txt agef.age | sha256sum)" = "$asum"
else
    echo "SKIP - age not installed"
fi

echo "$pass passed, $fail failed"
test "$fail" -eq 0
