#!/usr/bin/env bash
# tests/kms/envelope_test.sh - envelope-encrypted age files (sbx encrypt --kms)
# against two real `sbx kms serve --dev` servers and the real `age`:
# round trips (alone, beside an X25519 recipient, armored), decryption with
# no -i, credentials and trust (wrong and missing token, a policy without
# decrypt, a wrong CA, a fingerprint pin, a server that is not allowed and
# must not be contacted), age's view of the file, sbx inspect, rewrapping
# after a key rotation (sbx rotate --kms-rewrap), tampering and a server
# that is down.
#
#   bash tests/kms/envelope_test.sh build/sbx build
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, jq, openssl, age, coreutils.
set -uo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX [BUILD_DIR]" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
for tool in curl jq openssl age age-keygen; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-envelope-test.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
umask 077
# Nothing from the caller's environment may leak into the cases.
unset SBX_KMS_TOKEN SBX_KMS_TOKEN_FILE SBX_KMS_CACERT SBX_KMS_FINGERPRINT SBX_KMS_URL \
    SBX_KMS_CLIENT_CERT SBX_KMS_CLIENT_KEY SBX_KMS_FAILOVER

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
CHECK_SHOW=err

# ------------------------------------------------------------------ servers
DEV_TOKEN=sbxt_dev-insecure-admin-token
# start_server NAME: a --dev server with data in $T/NAME (log $T/NAME.log); sets
# NAME_URL, NAME_CA, NAME_PID.
start_server() {
    local name=$1
    kms_start "$T/$name" "$T/$name.log" --dev --threads 2 || return 1
    PIDS+=("$SRV_PID")
    printf -v "${name}_URL" '%s' "$URL"
    printf -v "${name}_CA" '%s' "$CA"
    printf -v "${name}_PID" '%s' "$SRV_PID"
}
stop_server() { # stop_server PID
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
# api URL CA METHOD PATH [BODY]: an admin request; the body of the answer on stdout.
api() {
    curl -sS --fail-with-body --cacert "$2" -H "Authorization: Bearer $DEV_TOKEN" \
        -H 'Content-Type: application/json' -X "$3" "$1$4" ${5:+-d "$5"}
}

start_server A || fatal "server A starts"
start_server B || fatal "server B starts"
api "$A_URL" "$A_CA" POST /v1/keys/files '{}' >/dev/null || fatal "create key A/files"
api "$A_URL" "$A_CA" POST /v1/keys/rot '{}' >/dev/null || fatal "create key A/rot"
api "$B_URL" "$B_CA" POST /v1/keys/files '{}' >/dev/null || fatal "create key B/files"
api "$A_URL" "$A_CA" PUT /v1/policies/filesrw \
    '{"rules": [{"keys": "*", "ops": ["encrypt", "decrypt", "rewrap"]}]}' >/dev/null &&
    api "$A_URL" "$A_CA" PUT /v1/policies/enconly \
        '{"rules": [{"keys": "*", "ops": ["encrypt"]}]}' >/dev/null || fatal "policies"
api "$A_URL" "$A_CA" POST /v1/tokens '{"name": "app", "policies": ["filesrw"]}' |
    jq -r .token >app.token && api "$A_URL" "$A_CA" POST /v1/tokens \
    '{"name": "writer", "policies": ["enconly"]}' | jq -r .token >writer.token ||
    fatal "tokens"
grep -q '^sbxt_' app.token && grep -q '^sbxt_' writer.token || fatal "tokens are sbxt_..."
echo "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" >bad.token

KEY=$A_URL/files
head -c 200000 /dev/urandom >plain.bin
printf 'hello, envelope\n' >small.txt
age-keygen -o x.key 2>/dev/null || fatal "age-keygen"
XPUB=$(age-keygen -y x.key)
age-keygen -o other.key 2>/dev/null

# The usual environment of a client of server A.
envA() { env SBX_KMS_TOKEN_FILE="$T/app.token" SBX_KMS_CACERT="$A_CA" "$@"; }

# ------------------------------------------------------------------ round trips
envA "$SBX" encrypt --kms "$KEY" -o k.age plain.bin 2>err
check "encrypt --kms alone" test -s k.age
check "the header has one sbx-kms stanza naming the key URL" \
    grep -aqx -- "-> sbx-kms $KEY" k.age
envA "$SBX" decrypt -o k.out k.age 2>err
check "decrypt with no -i unwraps through the key server" cmp -s plain.bin k.out
"$SBX" decrypt --kms-token-file app.token --kms-cacert "$A_CA" -o k.flags k.age 2>err
check "the --kms-token-file and --kms-cacert flags work as the variables" cmp -s plain.bin k.flags
env SBX_KMS_TOKEN="$(cat app.token)" SBX_KMS_URL="$A_URL" SBX_KMS_CACERT="$A_CA" \
    "$SBX" decrypt -o k.tok k.age 2>err
check "SBX_KMS_TOKEN and SBX_KMS_URL work" cmp -s plain.bin k.tok

envA "$SBX" encrypt --kms "$KEY" -r "$XPUB" -o kx.age plain.bin 2>err
check "encrypt --kms beside an X25519 recipient" test -s kx.age
age -d -i x.key -o kx.age.out kx.age 2>err
check "age decrypts it with the X25519 key" cmp -s plain.bin kx.age.out
"$SBX" decrypt -i x.key -o kx.sbx.out kx.age 2>err
check "sbx decrypts it with the X25519 key (no key server needed)" cmp -s plain.bin kx.sbx.out
envA "$SBX" decrypt -o kx.kms.out kx.age 2>err
check "sbx decrypts it through the key server" cmp -s plain.bin kx.kms.out
envA "$SBX" decrypt -i other.key -o kx.other.out kx.age 2>err
check "a non-matching -i still falls back to the key server" cmp -s plain.bin kx.other.out

# ------------------------------------------------------------------ libstrongbox-kms absent
# sbx loads the key-server client library only when a command needs it.
NOLIB="SBX_KMS_LIBRARY=$T/no-such-libstrongbox-kms.so"
expect_fail "without libstrongbox-kms, encrypt --kms names the missing library" \
    'libstrongbox-kms is not installed' envA env "$NOLIB" "$SBX" encrypt --kms "$KEY" -o nolib.age plain.bin
check "  nothing written" test ! -e nolib.age
expect_fail "without it, decrypt of a --kms-only file names the missing library" \
    'libstrongbox-kms is not installed' envA env "$NOLIB" "$SBX" decrypt -o nolib.out k.age
check "  no output file is left" test ! -e nolib.out
env "$NOLIB" "$SBX" decrypt -i x.key -o nolib.x.out kx.age 2>err
check "without it, the X25519 key still opens a --kms file (nothing loaded)" cmp -s plain.bin nolib.x.out
expect_fail "without it, rotate --kms-rewrap names the missing library" \
    'libstrongbox-kms is not installed' envA env "$NOLIB" "$SBX" rotate --kms-rewrap k.age
# A library that is not libstrongbox-kms (sbx's own libstrongbox) is named as not matching.
CORE=$(ldd "$SBX" | awk '/libstrongbox\.so/ {print $3}')
expect_fail "a library without the key server functions is named as not matching" \
    'libstrongbox-kms lacks sbx_' envA env "SBX_KMS_LIBRARY=$CORE" "$SBX" encrypt --kms "$KEY" -o lacks.age plain.bin
check "  nothing written" test ! -e lacks.age
LD_DEBUG=files "$SBX" decrypt -i x.key -o ld.out kx.age 2>ld.log
check "a decrypt that needs no key server does not load libstrongbox-kms or libcurl" \
    bash -c "cmp -s plain.bin ld.out && ! grep -Eq 'libstrongbox-kms|libcurl' ld.log"
LD_DEBUG=files envA "$SBX" decrypt -o ld2.out k.age 2>ld2.log
check "a decrypt through the key server loads it" \
    bash -c "cmp -s plain.bin ld2.out && grep -q 'libstrongbox-kms' ld2.log"

envA "$SBX" encrypt -a --kms "$KEY" -o ka.asc small.txt 2>err
check "armored --kms file" grep -q 'BEGIN AGE ENCRYPTED FILE' ka.asc
envA "$SBX" decrypt ka.asc >ka.out 2>err
check "armored --kms file decrypts" cmp -s small.txt ka.out

"$SBX" encrypt --passphrase-file app.token --kms "$KEY" -o pp.age small.txt >/dev/null 2>err
rc=$?
check "--kms with a passphrase: usage error (exit 2), nothing written" \
    bash -c "[ $rc -eq 2 ] && [ ! -e pp.age ] && grep -q 'passphrase must be the only' err"
expect_fail "--kms-token-file - is refused (standard input is the plaintext)" 'standard input' \
    env SBX_KMS_CACERT="$A_CA" "$SBX" encrypt --kms-token-file - --kms "$KEY" -o tf.age <plain.bin
check "  no output file is left" test ! -e tf.age
printf '%s' "$(cat app.token)" >nonl.token # no newline at the end
chmod 600 nonl.token
env SBX_KMS_CACERT="$A_CA" "$SBX" encrypt --kms-token-file nonl.token --kms "$KEY" -o nonl.age plain.bin 2>err
check "a token file without a final newline works" test -s nonl.age
expect_fail "encrypt --kms with a bad key URL" 'kms' envA "$SBX" encrypt --kms "$A_URL" -o bad.age \
    small.txt
check "  nothing written" test ! -e bad.age

# ------------------------------------------------------------------ credentials and trust
expect_fail "a wrong token is refused" '401' \
    env SBX_KMS_TOKEN_FILE="$T/bad.token" SBX_KMS_CACERT="$A_CA" "$SBX" decrypt -o wrong.out k.age
check "  no output file is left" test ! -e wrong.out
check "  the message names the stanza's key" grep -q "sbx-kms stanza for $KEY" err
expect_fail "no token at all is refused before any request" 'no credentials.*SBX_KMS_TOKEN' \
    env SBX_KMS_CACERT="$A_CA" "$SBX" decrypt -o none.out k.age
check "  no output file is left" test ! -e none.out
expect_fail "a token whose policy lacks decrypt is refused" '403' \
    env SBX_KMS_TOKEN_FILE="$T/writer.token" SBX_KMS_CACERT="$A_CA" "$SBX" decrypt -o pol.out k.age
check "  no output file is left" test ! -e pol.out
check "  a hint names the policy" grep -q 'policy' err

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=rogue \
    -keyout rogue.key -out rogue.pem -days 2 2>/dev/null
expect_fail "a server that does not verify against the CA is refused" "127.0.0.1" \
    env SBX_KMS_TOKEN_FILE="$T/app.token" SBX_KMS_CACERT="$T/rogue.pem" "$SBX" decrypt \
    -o ca.out k.age
check "  no output file is left" test ! -e ca.out

FPR=$(openssl x509 -in "$A_CA" -noout -fingerprint -sha256 | sed 's/.*=//')
env SBX_KMS_TOKEN_FILE="$T/app.token" SBX_KMS_FINGERPRINT="$FPR" "$SBX" decrypt -o fp.out k.age \
    2>err
check "a fingerprint pin (SBX_KMS_FINGERPRINT) alone trusts the server" cmp -s plain.bin fp.out
"$SBX" decrypt --kms-token-file app.token --kms-fingerprint "$FPR" -o fp2.out k.age 2>err
check "--kms-fingerprint works" cmp -s plain.bin fp2.out
BADFPR=$(openssl x509 -in rogue.pem -noout -fingerprint -sha256 | sed 's/.*=//')
expect_fail "a wrong fingerprint pin is refused" '127.0.0.1' \
    env SBX_KMS_TOKEN_FILE="$T/app.token" SBX_KMS_FINGERPRINT="$BADFPR" "$SBX" decrypt \
    -o fpbad.out k.age
check "  no output file is left" test ! -e fpbad.out

# A file for server B, opened by a client that only allows A: B is never contacted.
env SBX_KMS_TOKEN="$DEV_TOKEN" SBX_KMS_CACERT="$B_CA" "$SBX" encrypt --kms "$B_URL/files" \
    -o b.age small.txt 2>err
check "encrypt to server B" test -s b.age
before=$(grep -c '"op":"decrypt"' B/audit.log)
expect_fail "a stanza naming a server that is not allowed is skipped" \
    "key server $B_URL was not contacted.*--kms-url $B_URL" \
    env SBX_KMS_TOKEN="$DEV_TOKEN" SBX_KMS_CACERT="$B_CA" SBX_KMS_URL="$A_URL" "$SBX" decrypt \
    -o b.out b.age
check "  no output file is left" test ! -e b.out
after=$(grep -c '"op":"decrypt"' B/audit.log)
check "  server B got no request (its audit log has no new decrypt)" test "$before" = "$after"
expect_fail "with no allowed server and no pinned CA, nothing is contacted" \
    "was not contacted: no server is allowed" \
    env SBX_KMS_TOKEN="$DEV_TOKEN" "$SBX" decrypt -o b.out b.age
check "  server B got no request" test "$before" = "$(grep -c '"op":"decrypt"' B/audit.log)"
env SBX_KMS_TOKEN="$DEV_TOKEN" SBX_KMS_CACERT="$B_CA" "$SBX" decrypt --kms-url "$B_URL" \
    -o b.out b.age 2>err
check "--kms-url allows it" cmp -s small.txt b.out

# ------------------------------------------------------------------ age and inspect
age -d -i x.key -o age.out k.age 2>err
rc=$?
check "age refuses a --kms-only file (exit non-zero, no output)" \
    bash -c "[ $rc -ne 0 ] && [ ! -s age.out ]"
check "  with 'no identity matched', not a header or format error" \
    bash -c "grep -q 'no identity matched' err && ! grep -Eqi 'header|malformed|parse' err"
"$SBX" inspect k.age >out 2>err
check "sbx inspect shows the sbx-kms stanza" grep -q 'sbx-kms' out

# ------------------------------------------------------------------ tampering, server down
hdr_end() { # byte offset just past the header's MAC line
    local off
    off=$(grep -a -b -m 1 '^--- ' "$1" | cut -d: -f1)
    echo $((off + 48))
}
# Change one character in the middle of the stanza's first body line (line 3).
c=$(sed -n 3p k.age | cut -c 30)
if [ "$c" = A ]; then c=B; else c=A; fi
{ head -c "$(hdr_end k.age)" k.age | sed "3s/^\(.\{29\}\)./\1$c/"; tail -c +"$(($(hdr_end k.age) + 1))" k.age; } >t2.age
check "the tampered copy differs from the original" bash -c "! cmp -s k.age t2.age"
expect_fail "a malformed stanza body is a clear error" 'sbx-kms stanza' envA "$SBX" decrypt -o t.out t2.age
check "  no output file is left" test ! -e t.out
# A well-formed body whose server ciphertext was edited: the server refuses it.
body=$(awk '/^-> sbx-kms /{f=1; next} /^(-> |--- )/{f=0} f' k.age | tr -d '\n')
pad=$(( (4 - ${#body} % 4) % 4 ))
text=$(printf '%s%s' "$body" "$(head -c "$pad" <<<"===")" | base64 -d)
i=$(( ${#text} - 10 ))
c=${text:$i:1}
if [ "$c" = A ]; then c=B; else c=A; fi
text="${text:0:$i}$c${text:$((i + 1))}"
{
    sed -n '1,2p' k.age
    printf '%s' "$text" | base64 -w 64 | tr -d '='
    tail -c +"$(($(grep -a -b -m 1 '^--- ' k.age | cut -d: -f1) + 1))" k.age
} >t3.age
expect_fail "an edited server ciphertext is refused by the server" \
    'sbx-kms stanza for .*(authenticate|HTTP 400)' envA "$SBX" decrypt -o t3.out t3.age
check "  no output file is left" test ! -e t3.out

# ------------------------------------------------------------------ rotate --kms-rewrap
envA "$SBX" encrypt --kms "$A_URL/rot" -r "$XPUB" -o r.age plain.bin 2>err || fatal "encrypt r.age"
cp r.age r.old.age
stanza_version() { # the sbx:vN: prefix of the first sbx-kms stanza's body
    awk '/^-> sbx-kms /{getline; print; exit}' "$1" | head -c 8 | base64 -d 2>/dev/null |
        cut -d: -f2
}
check "the stanza is under version 1" test "$(stanza_version r.age)" = v1
api "$A_URL" "$A_CA" POST /v1/keys/rot/rotate >/dev/null || fatal "rotate the key on the server"
envA "$SBX" rotate --kms-rewrap r.age >out 2>err
check "sbx rotate --kms-rewrap succeeds" grep -q 'rewrapped' out
check "  the stanza is now under version 2" test "$(stanza_version r.age)" = v2
check "  the X25519 stanza is kept byte for byte" \
    bash -c "grep -a -A1 '^-> X25519' r.old.age | cmp -s - <(grep -a -A1 '^-> X25519' r.age)"
tail -c +"$(($(hdr_end r.age) + 1))" r.age >r.payload
tail -c +"$(($(hdr_end r.old.age) + 1))" r.old.age >r.old.payload
check "  the payload bytes after the header are unchanged" cmp -s r.payload r.old.payload
envA "$SBX" decrypt -o r.out r.age 2>err
check "  the rotated file decrypts through the key server" cmp -s plain.bin r.out
age -d -i x.key -o r.age.out r.age 2>err
check "  and with age and the X25519 key" cmp -s plain.bin r.age.out
api "$A_URL" "$A_CA" POST /v1/keys/rot/config '{"min_decryption_version": 2}' >/dev/null ||
    fatal "retire version 1"
envA "$SBX" decrypt -o r2.out r.age 2>err
check "after min_decryption_version=2 the rotated file decrypts" cmp -s plain.bin r2.out
expect_fail "  and the old copy does not" 'version' envA "$SBX" decrypt -o r3.out r.old.age
check "  no output file is left" test ! -e r3.out
envA "$SBX" rotate --kms-rewrap --json r.age >out 2>err
check "rotate --kms-rewrap --json" bash -c "jq -e '.mode == \"kms-rewrap\"' out >/dev/null"
age -r "$XPUB" -o plain.age plain.bin
expect_fail "rotate --kms-rewrap of a file without sbx-kms stanzas" 'no sbx-kms stanza' \
    envA "$SBX" rotate --kms-rewrap -i x.key plain.age
envA "$SBX" rotate --kms "$A_URL/files" r.age >out 2>err
check "sbx rotate a --kms file to a new key server key with no -i" \
    grep -aqx -- "-> sbx-kms $A_URL/files" r.age
envA "$SBX" decrypt -o r4.out r.age 2>err
check "  it decrypts" cmp -s plain.bin r4.out
"$SBX" rotate --kms-rewrap --kms-rewrap -r "$XPUB" r.age >/dev/null 2>err
check "--kms-rewrap with new recipients is a usage error" test $? -eq 2

# Redundancy: one file for two key servers (both CAs trusted, both allowed).
cat "$A_CA" "$B_CA" >both-ca.pem
envAB() { env SBX_KMS_TOKEN="$DEV_TOKEN" SBX_KMS_CACERT="$T/both-ca.pem" SBX_KMS_URL="$A_URL,$B_URL" "$@"; }
envAB "$SBX" encrypt --kms "$A_URL/files" --kms "$B_URL/files" -o ab.age plain.bin 2>err
check "encrypt to two key servers: two sbx-kms stanzas" \
    test "$(grep -ac '^-> sbx-kms ' ab.age)" -eq 2

stop_server "$A_PID"
envAB "$SBX" decrypt -o ab.out ab.age 2>err
check "server A down: a file also wrapped by server B opens through B" cmp -s plain.bin ab.out
expect_fail "server down: a clear error naming it" "$A_URL" envA "$SBX" decrypt -o down.out k.age
check "  no output file is left" test ! -e down.out
cp k.age k.before
expect_fail "server down: rotate --kms-rewrap fails" "$A_URL" envA "$SBX" rotate --kms-rewrap k.age
check "  and leaves the file unchanged" cmp -s k.age k.before

finish
