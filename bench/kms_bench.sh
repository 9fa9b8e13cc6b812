#!/usr/bin/env bash
# Throughput and latency of `sbx kms serve` against nginx serving a fixed answer
# over the same kind of TLS, as bench.sh prints ratios against a peer measured in
# the same run. Not part of the test suite: run it by hand.
#
#   bench/kms_bench.sh                          # 12 s per case
#   BENCH_SECONDS=15 bench/kms_bench.sh
#   SBX=build/sbx BENCH_PERF=1 bench/kms_bench.sh
#
# Knobs: BENCH_SECONDS (wrk duration per case, default 12), BENCH_CONNS (default
# 32), BENCH_THREADS (wrk threads, default 2), SBX (use this sbx binary instead of
# building build-bench/sbx), BENCH_PERF=1 (record `perf record -g` of the server
# during an extra datakey run, or decrypt with BENCH_PERF_CASE=decrypt, and print
# the top of `perf report`).
#
# What it does: installs wrk and nginx with apt-get when missing; builds sbx
# (Release) into build-bench/; starts `sbx kms serve` on a new data directory in
# /tmp (SQLite, its self-signed ECDSA P-256 certificate, one event loop per CPU)
# and, on another loopback port, an nginx in the foreground (config, pid, logs
# and temp paths in a temporary directory, not the system service; one worker per
# CPU) that answers every request with the same 32 bytes over TLS 1.3 with a
# self-signed P-256 certificate, keep-alive. With the admin token it creates a
# key "bench", a policy allowing datakey, decrypt and seed on it, and a token with
# that policy; gets one ciphertext (encrypt) and one seed KEK (POST /new). Then
# wrk (keep-alive, BENCH_CONNS connections, BENCH_THREADS threads, --latency, a
# lua script per case for the POST body and the Authorization header) runs
#   nginx                       POST / (the fixed 32-byte answer)
#   POST /v1/keys/bench/datakey {"bits":256}
#   POST /v1/keys/bench/decrypt {"ciphertext": ...}
#   POST /key                   the seed KEK (an uncached key fetch, as keas.kmi's /key)
# and prints requests/s, p50 and p99 for each, and the ratio to nginx's
# requests/s. Target (issue): >= 50 % of nginx's requests/s and p99 < 5 ms at 32
# connections. Seed comparison: keas.kmi managed about 37 uncached key fetches/s.
# wrk runs on the same machine and shares its CPUs with the server under test.
# Everything written is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SECS=${BENCH_SECONDS:-12}
CONNS=${BENCH_CONNS:-32}
THREADS=${BENCH_THREADS:-2}
SEED_RPS=37

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  echo "kms-bench: installing ${need[*]} ..."
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >/dev/null
  # nginx-light (Debian 12) has the ssl module; the package's own service is not used
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk "$NGINX" curl jq openssl python3; do
  command -v "$tool" >/dev/null || { echo "kms-bench: $tool is missing (scripts/deps.sh)" >&2; exit 1; }
done

if [ -z "${SBX:-}" ]; then
  echo "kms-bench: building sbx (Release) in build-bench/ ..."
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B build-bench "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSBX_BUILD_TESTS=OFF \
    -DSBX_BUILD_FUZZERS=OFF >/dev/null
  cmake --build build-bench --target sbx >/dev/null
  SBX=$root/build-bench/sbx
fi
SBX=$(cd "$(dirname "$SBX")" && pwd)/$(basename "$SBX")

W=$(mktemp -d /tmp/sbx-kms-bench.XXXXXX)
SRV_PID=
NGX_PID=
cleanup() {
  local p
  for p in "$SRV_PID" "$NGX_PID"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "$SRV_PID" "$NGX_PID"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the key server ----
D=$W/kms
"$SBX" kms serve --data-dir "$D" --listen 127.0.0.1:0 --ready-file "$W/ready" >"$W/kms.log" 2>&1 &
SRV_PID=$!
for ((i = 0; i < 300; i++)); do
  [ -s "$W/ready" ] && break
  kill -0 "$SRV_PID" 2>/dev/null || break
  sleep 0.1
done
[ -s "$W/ready" ] || { echo "kms-bench: sbx kms serve did not start:" >&2; cat "$W/kms.log" >&2; exit 1; }
KPORT=$(head -n 1 "$W/ready")
KURL=https://127.0.0.1:$KPORT
CA=$D/tls/cert.pem
ADMIN=$(tr -d '\r\n' <"$D/admin.token")

# api METHOD PATH [BODY]: one request with the admin token; prints the body, fails on non-2xx.
api() {
  local a=(-sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $ADMIN" -X "$1")
  [ $# -gt 2 ] && a+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${a[@]}" "$KURL$2"
}
api POST /v1/keys/bench '{}' >/dev/null
api PUT /v1/policies/bench '{"rules": [{"keys": "bench", "ops": ["datakey", "decrypt", "seed"]}]}' >/dev/null
TOKEN=$(api POST /v1/tokens '{"name": "bench", "policies": ["bench"], "ttl": 86400}' | jq -r .token)
CT=$(api POST /v1/keys/bench/encrypt '{"plaintext": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}' | jq -r .ciphertext)
KEK=$(curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" -X POST "$KURL/new" | tr -d '\r\n')
# The token must work for each case before anything is timed.
curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary "{\"ciphertext\": \"$CT\"}" "$KURL/v1/keys/bench/decrypt" | jq -e '.plaintext' >/dev/null
[ "$(curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" --data-binary "$KEK" \
  "$KURL/key" | wc -c)" = 32 ] || { echo "kms-bench: POST /key did not answer 32 bytes" >&2; exit 1; }

# ---- nginx: a fixed 32-byte answer over TLS 1.3, P-256 certificate ----
NPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
N=$W/nginx
mkdir -p "$N"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout "$N/key.pem" -out "$N/cert.pem" 2>/dev/null
ANSWER=0123456789abcdef0123456789abcdef # 32 bytes, like a data key
cat >"$N/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $(nproc);
pid $N/nginx.pid;
error_log $N/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $N/body;
    proxy_temp_path $N/proxy;
    fastcgi_temp_path $N/fastcgi;
    uwsgi_temp_path $N/uwsgi;
    scgi_temp_path $N/scgi;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $N/cert.pem;
        ssl_certificate_key $N/key.pem;
        ssl_protocols TLSv1.3;
        location / {
            default_type application/octet-stream;
            return 200 '$ANSWER';
        }
    }
}
EOF
"$NGINX" -p "$N" -c "$N/nginx.conf" -e "$N/error.log" >"$N/stdout.log" 2>&1 &
NGX_PID=$!
for ((i = 0; i < 50; i++)); do
  curl -s -o /dev/null --cacert "$N/cert.pem" "https://127.0.0.1:$NPORT/" && break
  kill -0 "$NGX_PID" 2>/dev/null || { cat "$N/error.log" "$N/stdout.log" >&2; exit 1; }
  sleep 0.1
done
NURL=https://127.0.0.1:$NPORT
[ "$(curl -sS --cacert "$N/cert.pem" -X POST -d x "$NURL/")" = "$ANSWER" ] ||
  { echo "kms-bench: nginx does not answer" >&2; cat "$N/error.log" >&2; exit 1; }

# ---- what each side negotiates ----
tls_of() { # tls_of HOST:PORT: protocol, cipher and key type of the server certificate
  openssl s_client -connect "$1" -servername localhost </dev/null 2>/dev/null |
    awk '/^Server public key is/ {k = $5 "-bit key"} /^New, / {p = $2; c = $NF; sub(/,$/, "", p)}
         /Peer signature type/ {s = $NF} END {print p, c ",", s, k}'
}
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo
echo "CPU:      $cpu ($(nproc) logical CPUs; wrk runs on the same CPUs)"
echo "kernel:   $(uname -sr), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sbx:      $SBX ($("$SBX" --version 2>/dev/null | head -1 || echo '?')), SQLite, $KURL"
echo "          TLS: $(tls_of "127.0.0.1:$KPORT")"
echo "nginx:    $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(nproc) workers, $NURL"
echo "          TLS: $(tls_of "127.0.0.1:$NPORT")"
echo "wrk:      $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $CONNS connections, $THREADS threads, $SECS s per case, keep-alive"

# ---- wrk ----
# lua METHOD BODY TOKEN CONTENT_TYPE: a wrk script file for POST with a body and a bearer token.
lua() {
  local f
  f=$(mktemp "$W/wrk.XXXXXX.lua")
  cat >"$f" <<EOF
wrk.method = "POST"
wrk.body = [==[$2]==]
wrk.headers["Content-Type"] = "$4"
$( [ -n "$3" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $3\"")
EOF
  echo "$f"
}
# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds.
to_ms() {
  python3 -c "
import re, sys
m = re.fullmatch(r'([0-9.]+)(us|ms|s|m)', sys.argv[1])
v, u = float(m.group(1)), m.group(2)
print(f'{v * {\"us\": 1e-3, \"ms\": 1, \"s\": 1e3, \"m\": 6e4}[u]:.2f}')" "$1"
}
declare -A RPS P50 P99 ERR
# run LABEL URL LUA: one wrk run; fills RPS, P50, P99 (ms) and ERR (non-2xx + socket errors).
run() {
  local out
  wrk -t"$THREADS" -c"$CONNS" -d2s -s "$3" "$2" >/dev/null 2>&1 # warm-up
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$3" "$2")
  echo "$out" >"$W/wrk-$(printf '%s' "$1" | tr -c 'A-Za-z0-9' '_').txt"
  RPS[$1]=$(echo "$out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
  P50[$1]=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  P99[$1]=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  ERR[$1]=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {n += $NF}
    /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
  printf '%-34s %9s req/s   p50 %7s ms   p99 %7s ms   errors %s\n' "$1" "${RPS[$1]}" "${P50[$1]}" "${P99[$1]}" "${ERR[$1]}"
}

echo
echo "== wrk -t$THREADS -c$CONNS -d${SECS}s --latency (after a 2 s warm-up each) =="
run "nginx: fixed 32-byte answer" "$NURL/" "$(lua POST 'x' '' application/octet-stream)"
run "sbx: POST /v1/keys/K/datakey" "$KURL/v1/keys/bench/datakey" "$(lua POST '{"bits":256}' "$TOKEN" application/json)"
run "sbx: POST /v1/keys/K/decrypt" "$KURL/v1/keys/bench/decrypt" "$(lua POST "{\"ciphertext\":\"$CT\"}" "$TOKEN" application/json)"
run "sbx: POST /key (seed KEK)" "$KURL/key" "$(lua POST "$KEK" "$TOKEN" text/plain)"

ref=${RPS["nginx: fixed 32-byte answer"]}
echo
echo "Markdown (for BENCHMARKS.md):"
echo "| case | requests/s | p50 ms | p99 ms | requests/s vs nginx | errors |"
echo "|---|---|---|---|---|---|"
verdict=()
for k in "nginx: fixed 32-byte answer" "sbx: POST /v1/keys/K/datakey" "sbx: POST /v1/keys/K/decrypt" \
  "sbx: POST /key (seed KEK)"; do
  r=$(python3 -c "print(f'{100 * ${RPS[$k]} / $ref:.0f} %')")
  echo "| $k | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | $r | ${ERR[$k]} |"
  case $k in
  *datakey* | *decrypt*)
    verdict+=("$k: $r of nginx (target >= 50 %): $(python3 -c "print('met' if ${RPS[$k]} >= 0.5 * $ref else 'NOT met')"); p99 ${P99[$k]} ms (target < 5 ms): $(python3 -c "print('met' if ${P99[$k]} < 5 else 'NOT met')")")
    ;;
  esac
done
echo
printf '%s\n' "${verdict[@]}"
k="sbx: POST /key (seed KEK)"
echo "seed comparison: keas.kmi ~$SEED_RPS uncached key fetches/s; sbx POST /key ${RPS[$k]}/s = $(python3 -c "print(f'{${RPS[$k]} / $SEED_RPS:.0f}')") times as many"
for k in "${!ERR[@]}"; do
  [ "${ERR[$k]}" = 0 ] || echo "kms-bench: WARNING: $k had ${ERR[$k]} errors (non-2xx or socket errors)" >&2
done

if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  echo
  pcase=${BENCH_PERF_CASE:-datakey}
  echo "== perf record -g of the server during a ${SECS} s $pcase run =="
  perf record -g -o "$W/perf.data" -p "$SRV_PID" -- sleep "$SECS" >/dev/null 2>&1 &
  perf_pid=$!
  if [ "$pcase" = decrypt ]; then
    plua=$(lua POST "{\"ciphertext\":\"$CT\"}" "$TOKEN" application/json)
  else
    plua=$(lua POST '{"bits":256}' "$TOKEN" application/json)
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -s "$plua" "$KURL/v1/keys/bench/$pcase" >/dev/null
  wait "$perf_pid" || true
  perf report -i "$W/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -n 30
  echo "-- by library --"
  perf report -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 12
fi
