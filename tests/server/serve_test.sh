#!/usr/bin/env bash
# tests/server/serve_test.sh - smoke test of `sbx kms serve` itself: startup,
# files and modes, TLS (versions, certificate fingerprint, session resumption
# across a restart, client certificates), transport limits (413, slow
# clients, NUL in the path), keep-alive, graceful SIGTERM with a request in
# flight, restart on the same data, a wrong root key, --dev, the CLI's
# argument checks and `sbx kms audit verify`.
#
#   bash tests/server/serve_test.sh build/sbx
#
# The exhaustive API tests are api_https_test.sh; this one owns the transport.
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, openssl, coreutils.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
for tool in curl openssl; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-serve-test.XXXXXX")
D=$T/kms
SRV_PID=
cleanup() {
    kms_kill
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
umask 022

CHECK_LOG=server.log

# ------------------------------------------------------------------ test certificates
mkcert() { # mkcert NAME CN [CA]
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null || return 1
    if [ $# -eq 3 ]; then
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
            -out "$1.pem" 2>/dev/null
    else
        openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 2 -out "$1.pem" \
            -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n') 2>/dev/null
    fi
}
mkcert ca "Serve test CA" && mkcert client1 client1 ca && mkcert rogueca "Rogue" &&
    mkcert rogue client1 rogueca || fatal "openssl could not make the test certificates"

# ------------------------------------------------------------------ server control
TIMEOUT=2
MAX_BODY=4096
# start_server [extra args...]: starts on a free port; sets PORT, URL, CA. 1 if it did not come up.
start_server() {
    kms_start "$D" server.log --max-body "$MAX_BODY" --timeout "$TIMEOUT" --threads 2 \
        --client-ca "$T/ca.pem" "$@"
}
# stop_server: SIGTERM; exit status in $srv_rc (124 if it did not stop within 15 s).
stop_server() { kms_stop; }
# api METHOD PATH [BODY]: one request with the admin token; sets $code, ./body, ./hdrs.
api() {
    local a=(-sS --max-time 20 --cacert "$CA" -X "$1" -o body -D hdrs -w '%{http_code}'
        -H "Authorization: Bearer $ADMIN")
    [ $# -ge 3 ] && a+=(-H 'Content-Type: application/json' --data-binary "$3")
    code=$(curl "${a[@]}" "$URL$2" 2>err) || true
    [ -n "$code" ] || code=000
}
header() { # header NAME: a response header's value from ./hdrs
    awk -v h="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" -F': ' \
        'tolower($1) == h { sub(/\r$/, ""); v = substr($0, length($1) + 3) } END { print v }' hdrs
}
field() { # field NAME: a string or number field of the JSON in ./body
    sed -nE "s/.*\"$1\": *\"?([^\",}]*)\"?.*/\\1/p" body | head -n 1
}
# sclient ARGS...: openssl s_client to the server with a short input; output in ./sc.out
sclient() {
    (sleep 1) | openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA" "$@" >sc.out 2>&1
}

# ================================================================== command line
"$SBX" kms serve --threads 0 >cli.out 2>&1
check "--threads 0 is a usage error (exit 2)" [ $? -eq 2 ]
"$SBX" kms serve --timeout abc >cli.out 2>&1
check "--timeout abc is a usage error naming the option" bash -c "[ $? -eq 2 ] && grep -q -- '--timeout' cli.out"
"$SBX" kms serve --bogus >cli.out 2>&1
check "an unknown option is a usage error" bash -c "[ $? -eq 2 ] && grep -q 'unknown option --bogus' cli.out"
"$SBX" kms frobnicate >cli.out 2>&1
check "an unknown subcommand is a usage error" [ $? -eq 2 ]
"$SBX" kms serve --dev --unseal-passphrase-file /dev/null >cli.out 2>&1
check "--dev with --unseal-passphrase-file is refused" bash -c "[ $? -eq 1 ] && grep -q 'unseal-passphrase-file' cli.out"
"$SBX" help kms >cli.out 2>&1
check "sbx help kms shows the manual page" bash -c "[ $? -eq 0 ] && grep -q 'sbx kms serve' cli.out && grep -q -- '--ready-file' cli.out"

# ================================================================== first start
check "server starts (ready file written)" start_server || fatal "sbx kms serve did not start"
check "ready file holds the port" bash -c "[[ '$PORT' =~ ^[0-9]+$ ]] && [ '$PORT' -gt 0 ]"
check "data directory is 0700" [ "$(stat -c %a "$D")" = 700 ]
for f in root.key admin.token tls/key.pem; do
    check "$f exists with mode 0600" [ "$(stat -c %a "$D/$f" 2>/dev/null)" = 600 ]
done
check "kms.db and audit.log created" bash -c "[ -s '$D/kms.db' ] && [ -f '$D/audit.log' ]"
ADMIN=$(tr -d '\r\n' <"$D/admin.token")
check "admin.token holds sbxt_ + 43 base64url characters" bash -c "[[ '$ADMIN' =~ ^sbxt_[A-Za-z0-9_-]{43}$ ]]"
check "the admin token itself is not printed" bash -c "! grep -qF '$ADMIN' server.log"
check "the start message says where admin.token is" grep -q "$D/admin.token" server.log
FPR=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | sed 's/.*=//')
check "the printed fingerprint matches openssl x509 -fingerprint -sha256" \
    grep -qF "\"fingerprint\":\"$FPR\"" server.log
check "certificate: ECDSA P-256" bash -c "openssl x509 -in '$CA' -noout -text | grep -q 'prime256v1'"
check "certificate: SAN localhost, 127.0.0.1, ::1" bash -c \
    "openssl x509 -in '$CA' -noout -ext subjectAltName | tr -d ' \n' | grep -q 'DNS:localhost,IPAddress:127.0.0.1,IPAddress:0:0:0:0:0:0:0:1'"
check "certificate: valid for about a year" bash -c \
    "openssl x509 -in '$CA' -noout -checkend $((360 * 86400)) >/dev/null && ! openssl x509 -in '$CA' -noout -checkend $((370 * 86400)) >/dev/null"
check "curl verifies the certificate for the name localhost" bash -c \
    "[ \"\$(curl -sS --cacert '$CA' --resolve localhost:$PORT:127.0.0.1 -o /dev/null -w '%{http_code}' https://localhost:$PORT/v1/health)\" = 200 ]"

# ================================================================== HTTP basics
code=$(curl -sS --cacert "$CA" -o body -D hdrs -w '%{http_code}' "$URL/v1/health")
check "GET /v1/health without a token: 200 ok" bash -c "[ '$code' = 200 ] && grep -q '\"status\": *\"ok\"' body"
check "X-Request-Id is 16 hex characters" bash -c "[[ '$(header x-request-id)' =~ ^[0-9a-f]{16}$ ]]"
check "Cache-Control: no-store" [ "$(header cache-control)" = no-store ]
check "Content-Type: application/json" bash -c "[[ '$(header content-type)' == application/json* ]]"
code=$(curl -sS --cacert "$CA" -o body -w '%{http_code}' "$URL/v1/keys")
check "GET /v1/keys without a token: 401" [ "$code" = 401 ]
api PUT /v1/keys/app '{}'
check "PUT /v1/keys/app: 405 with Allow ($(header allow))" bash -c "[ '$code' = 405 ] && [ -n '$(header allow)' ]"
code=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -X TRACE "$URL/v1/health")
check "TRACE is not served (got $code)" bash -c "[[ '$code' =~ ^(405|501)$ ]]"
api GET /v1/keys/a%00b
check "a NUL byte in the path: 400 (got $code)" [ "$code" = 400 ]
api GET /v1/keys/%61pp-none
check "the path is percent-decoded (/v1/keys/%61pp-none: 404 for app-none, got $code)" \
    bash -c "[ '$code' = 404 ] && grep -q 'app-none' body"
curl -sv --cacert "$CA" "$URL/v1/health" "$URL/v1/health" -o /dev/null -o /dev/null 2>keepalive.err
check "keep-alive: two requests on one connection" grep -qiE 're-?using existing connection' keepalive.err

# ================================================================== keys round trip
api POST /v1/keys/app '{}'
check "create key app with the admin token: 201" [ "$code" = 201 ]
api POST /v1/keys/app/datakey '{}'
DK_PT=$(field plaintext)
DK_CT=$(field ciphertext)
check "datakey: 200 with plaintext and ciphertext" bash -c "[ '$code' = 200 ] && [ -n '$DK_PT' ] && [[ '$DK_CT' == sbx:v1:* ]]"
api POST /v1/keys/app/decrypt "{\"ciphertext\": \"$DK_CT\"}"
check "decrypt gives the data key back" bash -c "[ '$code' = 200 ] && [ '$(field plaintext)' = '$DK_PT' ]"

# ================================================================== TLS
sclient -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.1 is refused" bash -c "! grep -qE '^(New|Reused), TLSv1\.1' sc.out"
sclient -tls1_2 -verify_return_error
check "TLS 1.2 is accepted with an ECDHE AEAD cipher" grep -qE '^New, TLSv1\.2, Cipher is ECDHE-.*(GCM|CHACHA20)' sc.out
sclient -tls1_3 -verify_return_error
check "TLS 1.3 is accepted" grep -qE '^New, TLSv1\.3' sc.out
sclient -tls1_2 -cipher 'AES128-SHA'
check "a non-forward-secret CBC cipher is refused" bash -c "! grep -qE '^New, TLSv1\.2, Cipher is AES128-SHA' sc.out"
sclient -tls1_2 -sess_out sess12.pem
sclient -tls1_3 -sess_out sess13.pem
check "session tickets issued (TLS 1.2 and 1.3)" bash -c "[ -s sess12.pem ] && [ -s sess13.pem ]"
sclient -tls1_3 -sess_in sess13.pem
check "TLS 1.3 session resumes on the same server" grep -q '^Reused, TLSv1\.3' sc.out

# client certificates (--client-ca): the CN maps to policies; rogue CAs are refused
api PUT /v1/certs/client1 '{"policies": [], "admin": true}'
check "map certificate CN client1 (admin): 200" [ "$code" = 200 ]
code=$(curl -sS --cacert "$CA" --cert client1.pem --key client1.key -o body -w '%{http_code}' "$URL/v1/keys")
check "a client certificate from --client-ca authenticates without a token (got $code)" [ "$code" = 200 ]
code=$(curl -sS --cacert "$CA" --cert rogue.pem --key rogue.key -o body -w '%{http_code}' "$URL/v1/keys" 2>/dev/null)
check "a certificate from another CA is refused in the handshake (got $code)" [ "$code" = 000 ]
code=$(curl -sS --cacert "$CA" -o body -w '%{http_code}' "$URL/v1/health")
check "no client certificate is fine (tokens still work)" [ "$code" = 200 ]

# ================================================================== limits
head -c $((MAX_BODY + 10)) /dev/zero | tr '\0' ' ' >big.json
api POST /v1/keys/app/encrypt @big.json
check "a body over --max-body $MAX_BODY: 413 (got $code)" [ "$code" = 413 ]
code=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$URL/v1/health" 2>/dev/null)
check "40 KB of headers: refused (got $code)" bash -c "[[ '$code' =~ ^(4[0-9][0-9]|000)$ ]]"
# slow clients: half a request, then nothing; and one byte every 0.5 s (never idle long)
slow() { # slow MODE: prints the seconds until the server closed the connection
    local start
    start=$(date +%s)
    {
        printf 'POST /v1/keys/app/datakey HTTP/1.1\r\nHost: x\r\n'
        if [ "$1" = drip ]; then
            for i in $(seq 1 16); do printf 'X'; sleep 0.5; done
        else
            sleep 8
        fi
    } | {
        timeout 12 openssl s_client -quiet -connect "127.0.0.1:$PORT" -CAfile "$CA" >slow.out 2>&1
        date +%s >slow.end # when s_client saw the connection close (the writer may sleep on)
    }
    echo $(($(cat slow.end) - start))
}
s=$(slow half)
check "a client sending half a request is cut off after --timeout $TIMEOUT (${s}s)" bash -c "[ $s -le $((TIMEOUT + 3)) ]"
s=$(slow drip)
check "a client dripping a request byte by byte is cut off too (${s}s)" bash -c "[ $s -le $((TIMEOUT + 3)) ]"
check "the server still answers after slow clients" bash -c \
    "[ \"\$(curl -sS --cacert '$CA' -o /dev/null -w '%{http_code}' '$URL/v1/health')\" = 200 ]"

# ================================================================== SIGTERM with a request in flight
{
    printf 'POST /v1/keys/app/datakey HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$ADMIN"
    printf 'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n'
    sleep 1.2 # the body well inside --timeout (2 s from accept), or the deadline cuts it off
    printf '{}'
    sleep 2
} | openssl s_client -quiet -connect "127.0.0.1:$PORT" -CAfile "$CA" >inflight.out 2>/dev/null &
CLIENT=$!
sleep 0.6 # after the handshake and the headers, before the body
kill -TERM "$SRV_PID"
sleep 0.3
code=$(curl -sS --max-time 3 --cacert "$CA" -o /dev/null -w '%{http_code}' "$URL/v1/health" 2>/dev/null)
check "during the drain, new connections are refused (got ${code:-000})" bash -c "[ '${code:-000}' = 000 ]"
wait "$CLIENT"
check "the request in flight at SIGTERM is answered (200)" grep -q '^HTTP/1.1 200' inflight.out
check "... with Connection: close" grep -qi '^Connection: close' inflight.out
for ((i = 0; i < 150; i++)); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SRV_PID"
srv_rc=$?
SRV_PID=
check "SIGTERM: the server exits 0 (got $srv_rc)" [ "$srv_rc" -eq 0 ]
check "the shutdown is logged" grep -q 'SIGTERM received' server.log

# ================================================================== restart
cp "$D/admin.token" admin.token.1
check "the server restarts on the same data" start_server || fatal "sbx kms serve did not restart"
check "admin.token is not rewritten" cmp -s admin.token.1 "$D/admin.token"
check "the same fingerprint is printed again" bash -c "[ \$(grep -c '\"fingerprint\":\"$FPR\"' server.log) -eq 2 ]"
api POST /v1/keys/app/decrypt "{\"ciphertext\": \"$DK_CT\"}"
check "keys survive a restart (a data key from the first run decrypts)" \
    bash -c "[ '$code' = 200 ] && [ '$(field plaintext)' = '$DK_PT' ]"
sclient -tls1_2 -sess_in sess12.pem
check "TLS 1.2 session from before the restart resumes" grep -q '^Reused, TLSv1\.2' sc.out
sclient -tls1_3 -sess_in sess13.pem
check "TLS 1.3 session from before the restart resumes" grep -q '^Reused, TLSv1\.3' sc.out
stop_server
check "second SIGTERM: exit 0 (got $srv_rc)" [ "$srv_rc" -eq 0 ]

# ================================================================== audit verify
"$SBX" kms audit verify "$D/audit.log" >verify.out 2>&1
check "sbx kms audit verify: intact ($(cat verify.out))" bash -c "[ $? -eq 0 ] && grep -qE '^audit log intact: [0-9]+ lines' verify.out"
sed -i '2s/"status":[0-9]*/"status":299/' "$D/audit.log"
"$SBX" kms audit verify "$D/audit.log" >verify.out 2>&1
check "sbx kms audit verify: an edited line fails (exit 1)" bash -c "[ $? -eq 1 ] && grep -q 'line' verify.out"

# ================================================================== wrong root key
cp "$D/root.key" root.key.good
printf '%064d\n' 0 >"$D/root.key"
start_server
rc=$?
check "a wrong root key: the server refuses to start" [ $rc -ne 0 ]
check "... with a clear message" grep -q 'root key does not open this storage' server.log
cp root.key.good "$D/root.key"
mv "$D/root.key" root.key.moved
start_server
rc=$?
check "a missing root.key with an existing database: refuses to start" bash -c \
    "[ $rc -ne 0 ] && grep -q 'root.key is missing' server.log"
mv root.key.moved "$D/root.key"

# ================================================================== rows edited in the database
# Key metadata is JSON in the database, tagged under the root key: lowering
# min_decryption_version (or anything else) with SQL is refused, not obeyed.
if command -v sqlite3 >/dev/null; then
    sqlite3 "$D/kms.db" "UPDATE sbx_kv SET value = CAST(replace(CAST(value AS TEXT), '\"auto_rotate_period\":0', '\"auto_rotate_period\":7') AS BLOB) WHERE ns = 'key' AND key = 'app';"
    check "the edit changed the stored row" bash -c "sqlite3 '$D/kms.db' \"SELECT count(*) FROM sbx_kv WHERE ns = 'key' AND key = 'app' AND instr(CAST(value AS TEXT), 'auto_rotate_period\\\":7') > 0\" | grep -qx 1"
    if start_server; then
        api GET /v1/keys/app
        check "an edited key row: 500 naming the row, not the edited metadata" \
            bash -c "[ '$code' = 500 ] && grep -q 'key/app does not authenticate' body"
        api POST /v1/keys/app2 '{}'
        check "other keys still work" [ "$code" = 201 ]
        stop_server
    else
        not_ok "restart for the edited-row check"
    fi
else
    not_ok "sqlite3 is missing (scripts/deps.sh installs it)"
fi

# ================================================================== --dev
"$SBX" kms serve --dev --listen 127.0.0.1:0 --ready-file "$T/ready.dev" >dev.log 2>&1 &
DEV_PID=$!
for ((i = 0; i < 300; i++)); do
    [ -s ready.dev ] && break
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -s ready.dev ]; then
    DPORT=$(cat ready.dev)
    DEVDIR=$(sed -nE 's/.*"msg":"data directory","path":"([^"]*)","insecure":.*/\1/p' dev.log)
    check "--dev: a temporary data directory is printed" [ -d "$DEVDIR" ]
    code=$(curl -sS --cacert "$DEVDIR/tls/cert.pem" -o body -w '%{http_code}' "https://127.0.0.1:$DPORT/v1/health")
    check "--dev: health says dev true" bash -c "[ '$code' = 200 ] && grep -q '\"dev\": *true' body"
    code=$(curl -sS --cacert "$DEVDIR/tls/cert.pem" -o body -w '%{http_code}' -H 'Content-Type: application/json' \
        -H 'Authorization: Bearer sbxt_dev-insecure-admin-token' -d '{}' "https://127.0.0.1:$DPORT/v1/keys/dev-k")
    check "--dev: the fixed admin token creates a key (got $code)" [ "$code" = 201 ]
    check "--dev: the start lines say INSECURE" bash -c "[ \$(grep -c INSECURE dev.log) -ge 3 ]"
    kill -TERM "$DEV_PID"
    wait "$DEV_PID"
    check "--dev: SIGTERM exits 0" [ $? -eq 0 ]
    check "--dev: the temporary directory is removed" [ ! -e "$DEVDIR" ]
else
    kill -KILL "$DEV_PID" 2>/dev/null
    not_ok "--dev: the server did not start"
    sed 's/^/       server: /' dev.log | tail -n 5
fi

check "no sanitizer reports in the server output" bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' server.log dev.log"
finish
