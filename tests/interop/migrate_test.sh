#!/usr/bin/env bash
# tests/interop/migrate_test.sh SBX - sbx migrate against archives built with
# the openssl command exactly as pyFileSec 0.2.14 and PsychoPy opensslwrap
# made them (spec/seeds.md §1.3, §1.4, §4): the data through `openssl enc
# -aes-256-cbc -a -salt`, the session password through `openssl rsautl
# -encrypt -pubin -oaep`, a metadata member, all in a gzip'd tar.
# Prints "N passed, M failed"; exits non-zero on any failure.
set -u
SBX=${1:?usage: migrate_test.sh PATH_TO_SBX}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>err; then ok "$name"; else ko "$name"; sed 's/^/     /' err; fi; }
refuse() { local name=$1 want=$2; shift 2
  if "$@" >/dev/null 2>err; then ko "$name (accepted)"; elif grep -qi -- "$want" err; then ok "$name"; else ko "$name (message)"; sed 's/^/     /' err; fi; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out priv.pem 2>/dev/null
openssl pkey -in priv.pem -pubout -out pub.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null
age-keygen -o new.key 2>/dev/null
NEW=$(age-keygen -y new.key)
head -c 150000 /dev/urandom >data.bin

# pyFileSec: NAME.aes256, NAME.aes256.pwdrsa, NAME.meta (JSON) in NAME.enc
make_pfs() { local src=$1 out=$2 pub=$3 md=${4:-}; local d name; d=$(mktemp -d); name=$(basename "$src")
  local pwd other=md5; [ "$md" = md5 ] && other=sha256
  # About 1 archive in 256 also has valid padding under the other digest; sbx refuses those
  # without --md (tested below), so make one that is not ambiguous.
  while :; do
    pwd="#$(openssl rand -hex 32)"
    printf '%s' "$pwd" | openssl enc -aes-256-cbc -a -salt ${md:+-md $md} -in "$src" -out "$d/$name.aes256" -pass stdin 2>/dev/null
    printf '%s' "$pwd" | openssl enc -d -aes-256-cbc -a -md $other -in "$d/$name.aes256" -pass stdin >/dev/null 2>&1 || break
  done
  printf '%s' "$pwd" >"$d/pwd"
  openssl rsautl -encrypt -inkey "$pub" -pubin -in "$d/pwd" -out "$d/$name.aes256.pwdrsa" -oaep 2>/dev/null
  printf '{"meta-data 2014_04_26_13:45.07.123": {"clear_text": "/home/u/%s", "hash of cipher_text": "%s", "encryption method": "pyFileSec._encrypt_rsa_aes256cbc", "rsa padding": "-oaep"}}' \
    "$name" "$(sha "$d/$name.aes256")" >"$d/$name.meta"
  rm -f "$d/pwd"
  tar -C "$d" -czf "$out" "$name.aes256" "$name.aes256.pwdrsa" "$name.meta"
  rm -rf "$d"; }

# opensslwrap: NAME.aes256, NAME.aes256pwd.rsa, [NAME.meta] (text), password via file:
make_osw() { local src=$1 out=$2 pub=$3 meta=$4; local d name; d=$(mktemp -d); name=$(basename "$src")
  while :; do # not ambiguous between the SHA-256 and MD5 key derivations (see make_pfs)
    tr -dc '0-9a-zA-Z+_' </dev/urandom | head -c 65 >"$d/pwd"
    openssl enc -aes-256-cbc -a -salt -in "$src" -out "$d/$name.aes256" -pass "file:$d/pwd" 2>/dev/null
    openssl enc -d -aes-256-cbc -a -md md5 -in "$d/$name.aes256" -pass "file:$d/pwd" >/dev/null 2>&1 || break
  done
  openssl rsautl -oaep -encrypt -pubin -inkey "$pub" -in "$d/pwd" -out "$d/$name.aes256pwd.rsa" 2>/dev/null
  rm -f "$d/pwd"
  local members=("$name.aes256" "$name.aes256pwd.rsa")
  if [ "$meta" = meta ]; then
    printf 'orig file path: /home/u/%s\nHMAC-sha256 of encrypted file: %s\nencryption: opensslwrap._encrypt_rsa_aes256cbc\nRSA padding: -oaep\n--- end of meta-data 2013_Jan_01_1200 ---\n' \
      "$name" "$(sha "$d/$name.aes256")" >"$d/$name.meta"
    members+=("$name.meta")
  fi
  tar -C "$d" -czf "$out" "${members[@]}"
  rm -rf "$d"; }

roundtrip() { local name=$1 archive=$2 out=$3; shift 3
  check "$name" sh -c "\"$SBX\" migrate $* -r $NEW -o $out $archive && age -d -i new.key $out | cmp - data.bin"; }

make_pfs data.bin pfs.enc pub.pem
roundtrip "pyFileSec archive migrates to age (bytes equal)" pfs.enc pfs.age -i priv.pem
check "the original archive is kept" test -f pfs.enc
check "the new file is mode 0600" sh -c "[ \$(stat -c %a pfs.age) = 600 ]"
check "default output NAME.age next to the archive" sh -c "mkdir -p sub && cp pfs.enc sub/ && \"$SBX\" migrate -i priv.pem -r $NEW sub/pfs.enc && age -d -i new.key sub/data.bin.age | cmp - data.bin"
refuse "an existing default output is not overwritten" "already exists" "$SBX" migrate -i priv.pem -r "$NEW" sub/pfs.enc
make_pfs data.bin pfs-md5.enc pub.pem md5
roundtrip "pyFileSec archive from OpenSSL <= 1.0.2 (-md md5) migrates" pfs-md5.enc pfs-md5.age -i priv.pem
: >empty.bin
make_pfs empty.bin pfs-empty.enc pub.pem
check "an empty file migrates" sh -c "\"$SBX\" migrate -i priv.pem -r $NEW -o e.age pfs-empty.enc && age -d -i new.key e.age | cmp - empty.bin"
make_osw data.bin osw.enc pub.pem meta
roundtrip "opensslwrap bundle migrates (bytes equal)" osw.enc osw.age -i priv.pem
make_osw data.bin osw-nometa.enc pub.pem nometa
roundtrip "opensslwrap bundle without metadata migrates" osw-nometa.enc osw2.age -i priv.pem
# pyFileSec under Python 3: tarfile writes PAX headers, with UTF-8 names (pyFileSec's own test
# name, spaces at both ends). The archive is made as make_pfs does, packed by Python's tarfile.
pname=' ¡pathol☢gical filename!  '
mkdir py && cp data.bin "py/$pname"
make_pfs "py/$pname" py/tmp.enc pub.pem
mkdir py/m && tar -C py/m -xzf py/tmp.enc && python3 - "py/m" "py/pfs3.enc" "$pname" <<'PY'
import os, sys, tarfile
d, out, name = sys.argv[1:]
with tarfile.open(out, 'w:gz', format=tarfile.PAX_FORMAT) as t:
    for suffix in ('.aes256', '.aes256.pwdrsa', '.meta'):
        t.add(os.path.join(d, name + suffix), arcname=name + suffix)
with tarfile.open(out) as t:  # what the test is about: the names are in PAX headers
    assert all(m.pax_headers.get('path') == m.name for m in t.getmembers())
PY
check "python3 tarfile made a PAX archive with UTF-8 names" test -f py/pfs3.enc
check "pyFileSec archive from Python 3 (PAX, UTF-8 name) migrates" sh -c "\"$SBX\" migrate -i priv.pem -r $NEW py/pfs3.enc"
check "its default output keeps the UTF-8 name" sh -c 'age -d -i new.key "py/$1.age" | cmp - data.bin' sh "$pname"
rm -f "py/$pname.age"
check "the same with LANG=C and LC_ALL=C" sh -c "LANG=C LC_ALL=C \"$SBX\" migrate -i priv.pem -r $NEW py/pfs3.enc"
check "and with a UTF-8 locale" sh -c "LC_ALL=C.UTF-8 \"$SBX\" migrate -i priv.pem -r $NEW -o py/utf8.age py/pfs3.enc && age -d -i new.key py/utf8.age | cmp - data.bin"
openssl pkcs8 -topk8 -in priv.pem -passout pass:"old secret" -out priv-enc.pem
printf 'old secret\n' >pp.txt
roundtrip "passphrase-protected key with --passphrase-file" pfs.enc pfs3.age -i priv-enc.pem --passphrase-file pp.txt
age-keygen -o new2.key 2>/dev/null
check "migrate to several recipients (-r and -R)" sh -c "age-keygen -y new2.key >r.txt && \"$SBX\" migrate -i priv.pem -r $NEW -R r.txt -o multi.age pfs.enc && age -d -i new2.key multi.age | cmp - data.bin"
check "--delete-original removes the archive after success" sh -c "cp pfs.enc del.enc && \"$SBX\" migrate -i priv.pem -r $NEW -o del.age --delete-original del.enc && [ ! -e del.enc ] && age -d -i new.key del.age | cmp - data.bin"

# An MD5-era archive whose data also has valid CBC padding under the SHA-256
# key (about 1 archive in 256): auto mode must refuse, not emit garbage.
head -c 1000 /dev/urandom >amb.bin
mkdir amb && for i in $(seq 1 4000); do
  amb_pwd="#amb$i"
  printf '%s' "$amb_pwd" | openssl enc -aes-256-cbc -a -salt -md md5 -in amb.bin -out amb/amb.bin.aes256 -pass stdin 2>/dev/null
  printf '%s' "$amb_pwd" | openssl enc -d -aes-256-cbc -a -md sha256 -in amb/amb.bin.aes256 -pass stdin >/dev/null 2>&1 && break
done
printf '%s' "$amb_pwd" >amb-pwd && openssl rsautl -encrypt -inkey pub.pem -pubin -in amb-pwd -out amb/amb.bin.aes256.pwdrsa -oaep 2>/dev/null
tar -C amb -czf amb.enc amb.bin.aes256 amb.bin.aes256.pwdrsa
refuse "archive opening under both digests needs --md" "both" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age amb.enc
check "no output after an ambiguous digest" test ! -e x.age
check "the ambiguous archive migrates with --md md5" sh -c "\"$SBX\" migrate --md md5 -i priv.pem -r $NEW -o amb.age amb.enc && age -d -i new.key amb.age | cmp - amb.bin"

# Refusals
refuse "wrong private key" "wrong key" "$SBX" migrate -i other.pem -r "$NEW" -o x.age pfs.enc
check "no output after a wrong key" test ! -e x.age
mkdir t && tar -C t -xzf pfs.enc && (cd t && python3 - <<'PY'
import glob
p = glob.glob('*.aes256')[0]
b = bytearray(open(p, 'rb').read()); i = len(b) // 2
b[i] = ord('A') if b[i] != ord('A') else ord('B')
open(p, 'wb').write(bytes(b))
PY
) && tar -C t -czf tampered.enc $(cd t && ls)
refuse "tampered data member (metadata hash) refused" "modified" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age tampered.enc
check "no output after tampering" test ! -e x.age
make_osw data.bin osw-t.enc pub.pem meta
mkdir t2 && tar -C t2 -xzf osw-t.enc && python3 -c '
import sys; p = sys.argv[1]; L = open(p).read().split("\n")
L[1] = L[1][:20] + ("B" if L[1][20] == "A" else "A") + L[1][21:]  # always a change
open(p, "w").write("\n".join(L))' t2/data.bin.aes256 && tar -C t2 -czf osw-tampered.enc $(cd t2 && ls)
refuse "tampered opensslwrap bundle refused" "modified" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age osw-tampered.enc
# Structure: the data members below are well-formed `openssl enc -a -salt` text, so
# that what is refused is the structure (a data member is checked from its first bytes).
python3 - <<'PY'
import base64, tarfile, io
D = base64.encodebytes(b'Salted__' + bytes(24))
def add(t, name, data=D):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
with tarfile.open('dotdot.enc', 'w:gz') as t:
    add(t, '../x'); add(t, 'data.bin.aes256'); add(t, 'data.bin.aes256.pwdrsa')
with tarfile.open('path.enc', 'w:gz') as t:
    add(t, 'a/data.bin.aes256'); add(t, 'data.bin.aes256.pwdrsa')
with tarfile.open('link.enc', 'w:gz') as t:
    ti = tarfile.TarInfo('data.bin.aes256'); ti.type = tarfile.SYMTYPE; ti.linkname = '/etc/passwd'; t.addfile(ti)
    add(t, 'data.bin.aes256.pwdrsa')
with tarfile.open('dup.enc', 'w:gz') as t:
    add(t, 'data.bin.aes256'); add(t, 'data.bin.aes256'); add(t, 'data.bin.aes256.pwdrsa')
with tarfile.open('bigextra.enc', 'w:gz') as t:
    add(t, 'data.bin.aes256'); add(t, 'data.bin.aes256.pwdrsa'); add(t, 'notes.txt', bytes(2 << 20))
with tarfile.open('twodata.enc', 'w:gz') as t:
    add(t, 'a.aes256'); add(t, 'b.aes256'); add(t, 'b.aes256.pwdrsa')
with tarfile.open('emptydata.enc', 'w:gz') as t:
    add(t, 'a.aes256', b''); add(t, 'a.aes256.pwdrsa')
with tarfile.open('notsalted.enc', 'w:gz') as t:
    add(t, 'a.aes256', base64.encodebytes(bytes(1 << 20))); add(t, 'a.aes256.pwdrsa')
with tarfile.open('notb64.enc', 'w:gz') as t:
    add(t, 'a.aes256', b'U2FsdGVk*not base64*\n' * 1000); add(t, 'a.aes256.pwdrsa')
# Names as Python 3 writes them (PAX headers, UTF-8) that must still be refused.
pax = dict(mode='w:gz', format=tarfile.PAX_FORMAT)
for out, name in [('c1.enc', 'a\u009b[31m.aes256'), ('bidi.enc', 'x\u202egpj.aes256'),
                  ('esc.enc', 'a\x1b[2J.aes256'), ('abs.enc', '/tmp/a.aes256'),
                  ('paxdotdot.enc', '\u00a1../../x.aes256'), ('hidden.enc', '.\u00a1.aes256')]:
    with tarfile.open(out, **pax) as t:
        add(t, name); add(t, 'a.aes256.pwdrsa')
# A name that is not UTF-8 (raw bytes in a GNU header, as Python 2 could write).
with tarfile.open('latin1.enc', 'w:gz', format=tarfile.GNU_FORMAT, encoding='utf-8',
                  errors='surrogateescape') as t:
    add(t, b'caf\xe9.aes256'.decode('utf-8', 'surrogateescape')); add(t, 'a.aes256.pwdrsa')
PY
refuse "member named ../x refused" "unsafe name" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age dotdot.enc
refuse "member with a directory path refused" "unsafe name" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age path.enc
refuse "symlink member refused" "not a regular file" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age link.enc
refuse "duplicate member refused" "twice" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age dup.enc
refuse "oversized unknown member refused" "too large" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age bigextra.enc
refuse "two data members refused" "same kind" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age twodata.enc
refuse "an empty data member refused" "Salted__" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age emptydata.enc
refuse "a data member without Salted__ refused" "Salted__" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age notsalted.enc
refuse "a data member that is not base64 refused" "not base64" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age notb64.enc
refuse "PAX name with a C1 control (U+009B) refused" "U+009B" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age c1.enc
refuse "PAX name with a bidi override (U+202E) refused" "U+202E" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age bidi.enc
refuse "PAX name with an escape sequence refused" "U+001B" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age esc.enc
refuse "PAX absolute name refused" "unsafe name" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age abs.enc
refuse "PAX name with .. refused" "unsafe name" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age paxdotdot.enc
refuse "PAX hidden name refused" "unsafe name" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age hidden.enc
refuse "a name that is not UTF-8 refused" "not UTF-8" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age latin1.enc
# Memory: members are streamed, so peak RSS stays bounded whatever the archive (measured
# with /usr/bin/time -v; a memory bound, not a timing). bomb.py writes a gzip'd PAX tar whose
# data member is `openssl enc -a -salt`-shaped text: "Salted__" || salt || zero blocks || one
# last block, 64-column base64 that compresses about 300:1; extra members NAME=FILE follow it.
cat >bomb.py <<'PY'
import base64, io, sys, tarfile
name, lines, salt, last = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
first = base64.b64encode(b'Salted__' + salt + bytes(32)) + b'\n'
final = base64.b64encode(bytes(32) + last) + b'\n'
line = b'A' * 64 + b'\n'  # 48 zero bytes
class Text(io.RawIOBase):
    def __init__(self):
        self.pending, self.left, self.ended, self.block = first, lines, False, line * 16384
    def readable(self):
        return True
    def readinto(self, b):
        while len(self.pending) < len(b) and not self.ended:
            if self.left:
                k = min(self.left, 16384); self.pending += self.block[:k * 65]; self.left -= k
            else:
                self.pending += final; self.ended = True
        n = min(len(b), len(self.pending)); b[:n] = self.pending[:n]; self.pending = self.pending[n:]
        return n
with tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo(name + '.aes256'); ti.size = len(first) + lines * len(line) + len(final)
    t.addfile(ti, io.BufferedReader(Text(), 1 << 20))
    for spec in sys.argv[5:]:
        n, path = spec.split('=', 1); data = open(path, 'rb').read()
        ti = tarfile.TarInfo(n); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
PY
rss_kib() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
under_64mib() { local k; k=$(rss_kib "$1"); [ -n "$k" ] && [ "$k" -lt 65536 ]; }
bomb_pwd="#$(openssl rand -hex 32)"
printf '%s' "$bomb_pwd" >bomb-pwd
openssl rsautl -encrypt -inkey pub.pem -pubin -in bomb-pwd -out bomb.pwdrsa -oaep 2>/dev/null
# The issue's bomb: a 900 MiB data member whose metadata records another hash.
printf '{"meta-data x": {"hash of cipher_text": "%064d"}}' 0 >bomb.meta
python3 bomb.py bomb.bin 14520000 0011223344556677 "$(openssl rand -hex 16)" \
  bomb.bin.aes256.pwdrsa=bomb.pwdrsa bomb.bin.meta=bomb.meta | gzip -6 >bomb.enc
echo "     bomb.enc: $(stat -c %s bomb.enc) bytes, data member $(tar -tvzf bomb.enc | awk 'NR==1 {print $3}') bytes"
refuse "900 MiB gzip bomb refused with a clear error" "modified or corrupted" \
  /usr/bin/time -v -o bomb.time "$SBX" migrate -i priv.pem -r "$NEW" -o bomb.age bomb.enc
check "... in under 64 MiB of RSS" under_64mib bomb.time
echo "     peak RSS: $(rss_kib bomb.time) KiB"
check "... leaving no output" test ! -e bomb.age
# A large archive that migrates: the last block is crafted to have valid padding under the
# SHA-256 key, so both passes run over all 200 MiB (the plaintext is garbage, as CBC allows).
bomb_key=$(openssl enc -aes-256-cbc -md sha256 -S 8899aabbccddeeff -pass "pass:$bomb_pwd" -P | sed -n 's/^key=//p')
bomb_last=$(printf '\020%.0s' $(seq 16) | openssl enc -aes-256-ecb -nopad -K "$bomb_key" | od -An -tx1 | tr -d ' \n')
python3 bomb.py big.bin 3300000 8899aabbccddeeff "$bomb_last" big.bin.aes256.pwdrsa=bomb.pwdrsa | gzip -6 >big.enc
tar -xOzf big.enc big.bin.aes256 | openssl enc -d -aes-256-cbc -a -md sha256 -pass "pass:$bomb_pwd" | sha256sum >big.want
check "200 MiB streamed archive migrates" \
  /usr/bin/time -v -o big.time "$SBX" migrate --md sha256 -i priv.pem -r "$NEW" -o big.age big.enc
check "... in under 64 MiB of RSS" under_64mib big.time
echo "     peak RSS: $(rss_kib big.time) KiB"
check "... to what openssl enc -d makes of it" sh -c "age -d -i new.key big.age | sha256sum | cmp - big.want"
rm -f big.age big.enc bomb.enc
head -c 1000 /dev/urandom >junk.enc
refuse "not an archive" "archive" "$SBX" migrate -i priv.pem -r "$NEW" -o x.age junk.enc
check "no output left by any refusal" test ! -e x.age
check "the refused archives are untouched" test -f dotdot.enc -a -f tampered.enc

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
