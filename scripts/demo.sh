#!/usr/bin/env bash
# The demo walkthrough: installs dependencies, builds, and shows the main job
# of Strongbox on embedded defaults (nothing to configure): make a key,
# encrypt to it and to a passphrase, decrypt, use armor, and watch a tampered
# file be refused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
sbx=$PWD/build/sbx

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. Make a key pair (the secret key file is created 0600)"
run "$sbx" keygen -o alice.key
ls -l alice.key
recipient=$("$sbx" keygen -y alice.key)
echo "Alice's public key (share it freely): $recipient"

step "2. Encrypt a file to Alice's public key"
printf 'subject 17: heart rate 71, consent on file\n' > results.csv
run "$sbx" encrypt -r "$recipient" -o results.csv.age results.csv
head -c 120 results.csv.age | sed -n '1,3p'
echo "... ($(stat -c %s results.csv.age) bytes of age v1, readable by the age tool too)"

step "3. Decrypt it with Alice's secret key"
run "$sbx" decrypt -i alice.key results.csv.age

step "4. Encrypt to a passphrase instead (read from a file here, never from argv)"
printf 'correct horse battery staple\n' > pass.txt
chmod 600 pass.txt
run "$sbx" encrypt --passphrase-file pass.txt -o notes.age results.csv
run "$sbx" decrypt --passphrase-file pass.txt notes.age

step "5. ASCII armor, for e-mail and copy-paste"
run "$sbx" encrypt -a -r "$recipient" -o results.csv.asc results.csv
cat results.csv.asc
run "$sbx" decrypt -i alice.key results.csv.asc

# flip_byte FILE OFFSET: change the byte at OFFSET (xor 1), whatever it was.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
step "6. A tampered file is refused, and no plaintext is written"
cp results.csv.age tampered.age
size=$(stat -c %s tampered.age)
flip_byte tampered.age $((size - 20))
printf '$ %s\n' "sbx decrypt -i alice.key -o out.csv tampered.age"
if "$sbx" decrypt -i alice.key -o out.csv tampered.age; then
  echo "demo: ERROR: the tampered file was accepted" >&2
  exit 1
fi
[ ! -e out.csv ] && echo "(refused, exit status non-zero, and out.csv was not created)"

step "7. The wrong key is refused too"
"$sbx" keygen -o mallory.key 2>/dev/null
printf '$ %s\n' "sbx decrypt -i mallory.key results.csv.age"
"$sbx" decrypt -i mallory.key results.csv.age || echo "(refused)"

step "8. Keys that live on a key server (envelope encryption)"
# An in-memory demo server (--dev: fixed insecure keys, never for real data) on a free port.
"$sbx" kms serve --dev --data-dir kms --listen 127.0.0.1:0 --ready-file kms.ready >kms.log 2>&1 &
kms_pid=$!
trap 'kill "$kms_pid" 2>/dev/null || true; wait "$kms_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s kms.ready ] && break; sleep 0.1; done
[ -s kms.ready ] || { cat kms.log >&2; echo "demo: the key server did not start" >&2; exit 1; }
kms=https://127.0.0.1:$(cat kms.ready)
# The server logs JSON lines on stderr; the certificate's fingerprint is a field of one of them.
sed -n 's/.*"fingerprint":"\([^"]*\)".*/TLS certificate SHA-256 fingerprint: \1/p' kms.log | head -n 1
export SBX_KMS_CACERT=$PWD/kms/tls/cert.pem
printf 'sbxt_dev-insecure-admin-token\n' > kms.token
chmod 600 kms.token
export SBX_KMS_TOKEN_FILE=$PWD/kms.token
export SBX_KMS_URL=$kms
run "$sbx" kms key create lab-data
run "$sbx" kms key list
run "$sbx" encrypt --kms "$kms/lab-data" -o results.kms.age results.csv
head -n 3 results.kms.age | cut -c 1-70
echo "(the file key is wrapped by the server: no key file on this machine opens it)"
run "$sbx" decrypt results.kms.age

step "9. The stock age opens it too, through age-plugin-sbxkms"
printf '$ %s\n' "$sbx kms age-identity $kms > kms.id"
"$sbx" kms age-identity "$kms" > kms.id
printf '$ %s\n' "PATH=$(dirname "$sbx"):\$PATH age -d -i kms.id results.kms.age"
PATH="$(dirname "$sbx"):$PATH" age -d -i kms.id results.kms.age
kill "$kms_pid" 2>/dev/null; wait "$kms_pid" 2>/dev/null || true

printf '\nDemo complete. Try: %s help\n' "$sbx"
