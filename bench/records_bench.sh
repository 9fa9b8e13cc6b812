#!/usr/bin/env bash
# bench/records_bench.sh - encrypted records (docs/records.md): in-process
# encrypt and decrypt of 1 KiB values per second with a key file and with a
# key server key through the data-key cache, and uncached datakey round trips
# per second through a real `sbx kms serve` (1 and THREADS client threads).
# Not part of the test suite: run it by hand.
#
#   bench/records_bench.sh [build-dir] [extra records_bench options]
#   BENCH_SECONDS=5 BENCH_THREADS=16 bench/records_bench.sh build
#
# Builds sbx and the records_bench target (sqlite/CMakeLists.txt) in
# build-dir (default build), starts `sbx kms serve` on a new data directory
# in /tmp (SQLite storage, not --dev, so datakey requests pay for real
# storage reads; one event loop per CPU) on a free loopback port, creates a
# key "bench" with the admin token, and runs records_bench against it.
# Everything written is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
SECS=${BENCH_SECONDS:-3}
THREADS=${BENCH_THREADS:-8}
cmake --build "$build" --target sbx records_bench >/dev/null
SBX=$PWD/$build/sbx

T=$(mktemp -d /tmp/sbx-records-bench.XXXXXX)
SRV_PID=
cleanup() {
    if [ -n "$SRV_PID" ]; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
"$SBX" kms serve --data-dir "$T/kms" --listen 127.0.0.1:0 --ready-file "$T/ready" \
    >"$T/server.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 300); do [ -s "$T/ready" ] && break; sleep 0.1; done
[ -s "$T/ready" ] || { cat "$T/server.log" >&2; exit 1; }
URL=https://127.0.0.1:$(head -n 1 "$T/ready")
export SBX_KMS_CACERT=$T/kms/tls/cert.pem SBX_KMS_URL=$URL
SBX_KMS_TOKEN=$(head -n 1 "$T/kms/admin.token")
export SBX_KMS_TOKEN
curl -sS -f -o /dev/null --cacert "$SBX_KMS_CACERT" -H "Authorization: Bearer $SBX_KMS_TOKEN" \
    -H 'Content-Type: application/json' -d '{}' "$URL/v1/keys/bench"

lscpu | sed -n 's/^Model name: *//p' | head -1
echo "$(nproc) CPUs; server and client on the same machine; ${SECS} s per case"
out=$("$build/records_bench" -s "$SECS" -t "$THREADS" -k "$URL/bench" "$@")
echo "$out"

# The peer in the same run: OpenSSL's own AES-256-GCM on 1 KiB blocks (one
# context, no per-message setup, no framing, one core): the ceiling for a record.
peer=$(openssl speed -seconds "$SECS" -bytes 1024 -evp aes-256-gcm 2>&1 |
    awk '/^Doing/ { n = $(NF-3) } END { print n / '"$SECS"' }')
[ -n "$peer" ] && [ "${peer%.*}" -gt 0 ] || { echo "records-bench: openssl speed gave no figure" >&2; exit 1; }
printf '\nopenssl speed -evp aes-256-gcm, 1024 B blocks, one core: %.0f blocks/s\n' "$peer"
echo "$out" | awk -v peer="$peer" '/records\/s/ {
    for (i = 1; i <= NF; i++) if ($i == "records/s") n = $(i - 1)
    label = $0; sub(/:.*/, "", label)
    printf "%-50s %5.1f %% of openssl speed\n", label, 100 * n / peer }'
