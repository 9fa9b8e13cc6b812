#!/usr/bin/env bash
# tests/interop/sign_interop.sh - sbx sign/verify against the real minisign
# and openssl.
#
#   bash tests/interop/sign_interop.sh build/sbx
#
# minisign: sbx sign -> minisign -V and minisign -S -> sbx verify, with keys
# from either tool, without and with a passphrase (minisign reads passwords
# only from a terminal, so expect(1) types them; its scrypt uses 1 GiB and a
# few seconds per key operation), legacy signatures, -P, trusted comments.
# openssl: dgst -sha256 -sign/-verify (RSA-2048, ECDSA P-256) and pkeyutl
# -rawin (Ed25519), both directions. Tampered files, tampered signatures,
# tampered trusted comments and wrong keys must be refused by both tools,
# with no signature file left behind by a failed sign. Prints one line per
# check, then "N passed, M failed"; exits non-zero if any failed or if
# minisign, openssl, expect or python3 is missing (scripts/deps.sh installs
# them: a missing peer is a failure, never a silent skip).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
for tool in minisign openssl expect python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL - $tool not found (run scripts/deps.sh, or apt-get install $tool)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-sign-interop.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
echo "# $(minisign -v 2>&1 | head -n 1); $(openssl version); $("$SBX" --version)"

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -s err ]; then sed 's/^/       stderr: /' err | head -n 6; fi
}
# pass NAME CMD...: the command must succeed.
pass() {
    local name=$1
    shift
    set +e
    "$@" >out 2>err
    local rc=$?
    set -e
    if [ $rc -eq 0 ]; then ok "$name"; else not_ok "$name (exit $rc)"; fi
}
# refuse NAME CMD...: the command must fail (status 1, a message on stderr); a crash
# (status >= 128) or a usage error is not a refusal. refuse_usage wants status 2.
refuse_status() {
    local want=$1 name=$2
    shift 2
    set +e
    "$@" >out 2>err
    local rc=$?
    set -e
    if [ $rc -eq "$want" ] && { [ -s err ] || [ -s out ]; }; then
        ok "$name (refused: $(head -c 100 err | tr '\n' ' '))"
    else
        not_ok "$name (exit $rc, expected a refusal with status $want)"
    fi
}
refuse() {
    refuse_status 1 "$@"
}
refuse_usage() {
    refuse_status 2 "$@"
}
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# json_ok: ./out holds exactly one valid JSON object.
json_ok() {
    python3 -c 'import json, sys; o = json.load(open("out")); sys.exit(0 if isinstance(o, dict) else 1)'
}

# minisign's password prompts, typed by expect.
ms_gen_pass() { # PUB SEC PASS
    expect -c "set timeout 300
spawn minisign -G -p $1 -s $2
expect \"Password: \"; send \"$3\r\"
expect \"Password (one more time): \"; send \"$3\r\"
expect eof
catch wait r; exit [lindex \$r 3]" >/dev/null
}
ms_sign_pass() { # SEC FILE SIG PASS COMMENT
    expect -c "set timeout 300
spawn minisign -S -s $1 -m $2 -x $3 -t \"$5\"
expect \"Password: \"; send \"$4\r\"
expect eof
catch wait r; exit [lindex \$r 3]"
}

head -c 200000 /dev/urandom >data.bin
printf 'hello, signatures\n' >small.txt
: >empty.txt
printf 'pass phrase 1\n' >pass.txt
printf 'wrong phrase\n' >wrong.txt

# ---- minisign keys without passphrase ----
pass "minisign -G -W makes a key pair" minisign -G -W -p ms.pub -s ms.key
pass "sbx keygen --sign -W makes a key pair" "$SBX" keygen --sign -W -p sbx.pub -s sbx.key
check "sbx secret key file is mode 0600" test "$(stat -c %a sbx.key)" = 600

for f in data.bin small.txt empty.txt; do
    pass "sbx sign ($f, minisign key)" "$SBX" sign -s ms.key -t "sbx-made $f" -m "$f"
    pass "minisign -V accepts sbx's signature ($f)" minisign -V -p ms.pub -m "$f"
    check "minisign shows sbx's trusted comment ($f)" grep -q "Trusted comment: sbx-made $f" out
    pass "minisign -S ($f, minisign key)" minisign -S -s ms.key -t "minisign-made $f" -m "$f" -x "$f.ms"
    pass "sbx verify accepts minisign's signature ($f)" "$SBX" verify -p ms.pub -x "$f.ms" -m "$f"
    check "sbx shows minisign's trusted comment ($f)" grep -q "Trusted comment: minisign-made $f" out
done
pass "sbx sign with an sbx key" "$SBX" sign -s sbx.key -m data.bin -x data.sbx.minisig
pass "minisign -V accepts it (sbx public key file)" minisign -V -p sbx.pub -m data.bin -x data.sbx.minisig
pass "minisign -S with an sbx -W secret key" minisign -S -s sbx.key -m small.txt -x small.sbxkey.minisig
pass "sbx verify -P (base64 key) accepts it" "$SBX" verify -P "$(tail -n 1 sbx.pub)" -m small.txt -x small.sbxkey.minisig
pass "minisign -l (legacy) -S" minisign -S -l -s ms.key -m small.txt -x small.legacy
pass "sbx verify accepts a legacy signature" "$SBX" verify -p ms.pub -x small.legacy -m small.txt
pass "sbx verify --json" "$SBX" verify --json -p ms.pub -x data.bin.ms -m data.bin
check "verify --json output is valid JSON" json_ok
check "JSON says verified with the trusted comment" grep -q '"verified":true.*"trusted_comment":"minisign-made data.bin"' out
pass "sbx verify -Q prints only the trusted comment" "$SBX" verify -Q -p ms.pub -x data.bin.ms -m data.bin
check "-Q output is the comment" test "$(cat out)" = "minisign-made data.bin"

# flip_byte FILE OFFSET: change the byte at OFFSET (xor 1), whatever it was.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# tampering and wrong keys, refused by both tools
cp data.bin tampered.bin
flip_byte tampered.bin 1000
cp data.bin.minisig tampered.bin.minisig
refuse "sbx verify refuses a changed file" "$SBX" verify -p ms.pub -m tampered.bin
refuse "minisign -V refuses the same changed file" minisign -V -p ms.pub -m tampered.bin
sed '3s/.*/trusted comment: forged comment/' data.bin.minisig >forged.minisig
refuse "sbx verify refuses a changed trusted comment" "$SBX" verify -p ms.pub -x forged.minisig -m data.bin
refuse "minisign -V refuses it too" minisign -V -p ms.pub -x forged.minisig -m data.bin
awk 'NR==2 { c = substr($0, 20, 1); r = (c == "A") ? "B" : "A"; $0 = substr($0, 1, 19) r substr($0, 21) } { print }' \
    data.bin.minisig >badsig.minisig
refuse "sbx verify refuses a changed signature line" "$SBX" verify -p ms.pub -x badsig.minisig -m data.bin
refuse "minisign -V refuses it too" minisign -V -p ms.pub -x badsig.minisig -m data.bin
refuse "sbx verify refuses another key (key id)" "$SBX" verify -p sbx.pub -x data.bin.minisig -m data.bin
check "the message names the key ids" grep -q "key id" err
refuse "minisign -V refuses another key" minisign -V -p sbx.pub -x data.bin.minisig -m data.bin
head -n 2 data.bin.minisig >truncated.minisig
refuse "sbx verify refuses a truncated signature file" "$SBX" verify -p ms.pub -x truncated.minisig -m data.bin
refuse "sbx verify refuses a missing signature file" "$SBX" verify -p ms.pub -x nope.minisig -m data.bin
refuse "sbx verify refuses a secret key as public key" "$SBX" verify -p ms.key -m data.bin
refuse "sbx sign refuses a public key as secret key" "$SBX" sign -s ms.pub -m data.bin -x never.minisig
check "no signature file left by the failed sign" test ! -e never.minisig
refuse_usage "sbx sign refuses -x naming the signed file" "$SBX" sign -s ms.key -m small.txt -x small.txt
check "the signed file is intact" grep -q "hello, signatures" small.txt
pass "sbx verify --json on failure" bash -c "\"$SBX\" verify --json -p ms.pub -m tampered.bin >out 2>err; test \$? -eq 1"
check "failed verify --json output is valid JSON" json_ok
check "JSON failure says verified false" grep -q '"verified":false.*"code":"SBX_EAUTH"' out

# ---- passphrase-protected keys ----
pass "minisign -G with a password (expect)" ms_gen_pass msp.pub msp.key "pass phrase 1"
pass "sbx sign with minisign's protected key" "$SBX" sign -s msp.key --passphrase-file pass.txt -t protected -m small.txt
pass "minisign -V accepts it" minisign -V -p msp.pub -m small.txt
refuse "sbx sign refuses a wrong passphrase" "$SBX" sign -s msp.key --passphrase-file wrong.txt -m data.bin -x never2.minisig
check "no signature file left by the wrong passphrase" test ! -e never2.minisig
pass "minisign -S with the protected key (expect)" ms_sign_pass msp.key data.bin data.msp.minisig "pass phrase 1" "protected-by-minisign"
pass "sbx verify accepts it" "$SBX" verify -p msp.pub -x data.msp.minisig -m data.bin
pass "sbx keygen --sign with a passphrase" "$SBX" keygen --sign --json --passphrase-file pass.txt -p sbxp.pub -s sbxp.key
check "keygen --json output is valid JSON" json_ok
check "keygen --json says minisign can use the protected key" grep -q '"minisign_can_use_secret_key":true' out
check "protected sbx key file is mode 0600" test "$(stat -c %a sbxp.key)" = 600
pass "sbx sign with sbx's protected key" "$SBX" sign -s sbxp.key --passphrase-file pass.txt -m data.bin -x data.sbxp.minisig
pass "minisign -V accepts it" minisign -V -p sbxp.pub -m data.bin -x data.sbxp.minisig
refuse "sbx refuses sbx's protected key with a wrong passphrase" "$SBX" sign -s sbxp.key --passphrase-file wrong.txt -m data.bin -x never3.minisig
# minisign checks the BLAKE2b-256 checksum of a protected key ("Wrong password for that key")
pass "minisign -S with sbx's protected key (expect)" ms_sign_pass sbxp.key small.txt small.sbxp.minisig "pass phrase 1" "signed-by-minisign-with-sbx-key"
pass "minisign -V accepts it" minisign -V -p sbxp.pub -m small.txt -x small.sbxp.minisig
pass "sbx verify accepts it" "$SBX" verify -p sbxp.pub -m small.txt -x small.sbxp.minisig
check "sbx shows that trusted comment" grep -q "Trusted comment: signed-by-minisign-with-sbx-key" out
# minisign exits with status 2 on a wrong password
refuse_status 2 "minisign -S refuses sbx's protected key with a wrong password (expect)" ms_sign_pass sbxp.key small.txt never7.minisig "wrong phrase" "x"
check "minisign says the password is wrong" grep -q "Wrong password for that key" out
check "no signature file left by minisign's refusal" test ! -e never7.minisig
refuse "sbx keygen refuses to replace an existing key" "$SBX" keygen --sign -W -p sbxp.pub -s sbxp.key
refuse_usage "sbx keygen refuses -p and -s spelling one file" "$SBX" keygen --sign -W -p ./same.key -s same.key
check "no key file written for them" test ! -e same.key
ln -s sbxp.key sbxp.link
refuse_usage "sbx keygen -f refuses -p linking to -s" "$SBX" keygen --sign -W -f -p sbxp.link -s sbxp.key
check "the protected key is intact" grep -q "minisign encrypted secret key" sbxp.key

# ---- PEM keys against openssl ----
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem
openssl ecparam -genkey -name prime256v1 -out p256sec1.pem
openssl genpkey -algorithm ED25519 -out ed.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null
for k in rsa p256 p256sec1 ed other; do openssl pkey -in $k.pem -pubout -out $k.pub.pem; done
openssl pkcs8 -topk8 -in rsa.pem -out rsa_enc.pem -passout pass:"pass phrase 1" -v2 aes-256-cbc

for k in rsa p256 p256sec1; do
    pass "sbx sign ($k) " "$SBX" sign -s $k.pem -m data.bin -x data.$k.sig
    pass "openssl dgst -sha256 -verify accepts sbx's $k signature" openssl dgst -sha256 -verify $k.pub.pem -signature data.$k.sig data.bin
    pass "openssl dgst -sha256 -sign ($k)" openssl dgst -sha256 -sign $k.pem -out data.$k.ossl data.bin
    pass "sbx verify accepts openssl's $k signature" "$SBX" verify -p $k.pub.pem -x data.$k.ossl -m data.bin
    refuse "sbx verify refuses a changed file ($k)" "$SBX" verify -p $k.pub.pem -x data.$k.ossl -m tampered.bin
    refuse "openssl refuses the changed file ($k)" openssl dgst -sha256 -verify $k.pub.pem -signature data.$k.sig tampered.bin
    refuse "sbx verify refuses the wrong key ($k signature, other key)" "$SBX" verify -p other.pub.pem -x data.$k.sig -m data.bin
    refuse "openssl refuses the wrong key ($k)" openssl dgst -sha256 -verify other.pub.pem -signature data.$k.sig data.bin
done
cmp -s data.rsa.sig data.rsa.ossl && ok "RSA PKCS#1 v1.5 signature identical to openssl's" ||
    not_ok "RSA signature differs from openssl's"
pass "sbx sign (Ed25519) " "$SBX" sign -s ed.pem -m data.bin
pass "openssl pkeyutl -verify -rawin accepts sbx's Ed25519 signature" \
    openssl pkeyutl -verify -rawin -pubin -inkey ed.pub.pem -in data.bin -sigfile data.bin.sig
pass "openssl pkeyutl -sign -rawin (Ed25519)" openssl pkeyutl -sign -rawin -inkey ed.pem -in data.bin -out data.ed.ossl
pass "sbx verify accepts openssl's Ed25519 signature" "$SBX" verify -p ed.pub.pem -x data.ed.ossl -m data.bin
cmp -s data.bin.sig data.ed.ossl && ok "Ed25519 signature identical to openssl's" ||
    not_ok "Ed25519 signature differs from openssl's"
refuse "sbx verify refuses a changed file (Ed25519)" "$SBX" verify -p ed.pub.pem -x data.ed.ossl -m tampered.bin
refuse "openssl refuses the changed file (Ed25519)" \
    openssl pkeyutl -verify -rawin -pubin -inkey ed.pub.pem -in tampered.bin -sigfile data.bin.sig
refuse "sbx verify refuses an RSA key for an Ed25519 signature" "$SBX" verify -p rsa.pub.pem -x data.ed.ossl -m data.bin
pass "sbx sign with an encrypted PKCS#8 key" "$SBX" sign -s rsa_enc.pem --passphrase-file pass.txt -m small.txt
pass "openssl verifies it" openssl dgst -sha256 -verify rsa.pub.pem -signature small.txt.sig small.txt
refuse "sbx refuses the encrypted key with a wrong passphrase" "$SBX" sign -s rsa_enc.pem --passphrase-file wrong.txt -m small.txt -x never4.sig
check "no signature file left" test ! -e never4.sig
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem 2>/dev/null
refuse "sbx refuses an RSA-1024 key" "$SBX" sign -s rsa1024.pem -m small.txt -x never5.sig
check "the message gives the size" grep -q "1024" err
pass "sbx sign --json (PEM)" "$SBX" sign --json -s p256.pem -m small.txt -x small.json.sig
check "sign --json output is valid JSON" json_ok
check "JSON names SHA-256" grep -q '"digest":"SHA-256"' out
refuse_usage "sbx sign -t with a PEM key is a usage error" "$SBX" sign -s p256.pem -t x -m small.txt -x never6.sig

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
