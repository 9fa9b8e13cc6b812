#!/usr/bin/env bash
# tests/server/api_https_test.sh - black-box tests of `sbx kms serve` over HTTPS.
#
#   bash tests/server/api_https_test.sh build/sbx sqlite
#   bash tests/server/api_https_test.sh build/sbx postgres      # fresh database from scripts/pg.sh
#   bash tests/server/api_https_test.sh build/sbx postgres://user@127.0.0.1:5432/db
#
# Starts the real server on a free loopback port with a fresh data directory,
# talks to it with curl (real TLS verification against DIR/tls/cert.pem, never
# -k), and checks status codes and bodies of every endpoint in docs/kms.md:
# health, metrics, the keas.kmi requests, named keys, the data plane with its
# batch forms, tokens, policies, certificate mappings (TLS client
# certificates), input limits, timeouts, the audit log and X-Request-Id. Then
# it restarts the server on the same data (persistence), stops it with
# SIGTERM (must exit 0), verifies the audit log with `sbx kms audit verify` and
# checks that tampering is caught. Prints one line per case, then
# "N passed, M failed"; exits non-zero if any case failed.
#
# "postgres" takes a fresh database from `scripts/pg.sh createdb sbx_api_$$`
# (the ctest fixture `pg` starts the cluster; SBX_TEST_PG_URL, when set, is
# used to build the URL if pg.sh does not print one). A postgres:// argument
# is used as given: it should name an empty database.
# Needs: bash, curl, jq, openssl, python3, perl, coreutils. SBX_TEST_KEEP=1
# keeps the temporary directory (data, audit.log, server.log) for a post-mortem.
set -uo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX sqlite|postgres|postgres://..." >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BACKEND_ARG=$2
for tool in curl jq openssl python3 perl; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL - $tool not found (run scripts/deps.sh)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-api-test.XXXXXX")
D=$T/kms # data directory: created by the server
SRV_PID=
PG_DB=
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null
        sleep 1
        kill -KILL "$SRV_PID" 2>/dev/null
    fi
    if [ -n "$PG_DB" ] && [ -x "$ROOT/scripts/pg.sh" ]; then
        "$ROOT/scripts/pg.sh" dropdb "$PG_DB" >/dev/null 2>&1 || true
    fi
    if [ -n "${SBX_TEST_KEEP:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
cd "$T" || exit 2
umask 022
START=$SECONDS

CHECK_LOG=server.log
# show FILE: the first bytes of a response body, for a failure message.
show() {
    if [ -s "$1" ]; then
        echo "       body: $(head -c 300 "$1" | tr -c '[:print:]' '?')"
    fi
    if [ -s err ]; then sed 's/^/       curl: /' err | head -n 3; fi
}

# ------------------------------------------------------------------ storage
STORAGE_URL=
HEALTH_STORAGE=sqlite
case $BACKEND_ARG in
sqlite) ;;
postgres)
    HEALTH_STORAGE=postgres
    PG_DB=sbx_api_$$
    out=$("$ROOT/scripts/pg.sh" createdb "$PG_DB" 2>pg.err) || {
        cat pg.err >&2
        PG_DB=
        fatal "scripts/pg.sh createdb sbx_api_$$ (is the pg fixture running? scripts/pg.sh start)"
    }
    STORAGE_URL=$(printf '%s\n' "$out" | grep -E '^postgres(ql)?://' | tail -n 1)
    if [ -z "$STORAGE_URL" ] && [ -n "${SBX_TEST_PG_URL:-}" ]; then
        # SBX_TEST_PG_URL names the cluster; swap its database for ours
        STORAGE_URL=$(printf '%s' "$SBX_TEST_PG_URL" | sed -E "s#^(postgres(ql)?://[^/]*)(/[^?]*)?#\\1/$PG_DB#")
    fi
    [ -n "$STORAGE_URL" ] || fatal "no PostgreSQL URL: scripts/pg.sh printed none and SBX_TEST_PG_URL is unset"
    ;;
postgres://* | postgresql://*)
    HEALTH_STORAGE=postgres
    STORAGE_URL=$BACKEND_ARG
    ;;
*)
    echo "unknown backend '$BACKEND_ARG': sqlite, postgres or a postgres:// URL" >&2
    exit 2
    ;;
esac
echo "# $("$SBX" --version 2>&1 | head -n 1); backend $HEALTH_STORAGE${STORAGE_URL:+ ($(printf '%s' "$STORAGE_URL" | sed -E 's#//[^@/]*@#//***@#'))}"

# ------------------------------------------------------------------ client certificates
# A CA for --client-ca and two client certificates (CN client1, client2), plus
# one from a CA the server does not know.
mkcert() { # mkcert NAME CN [CA]
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null || return 1
    if [ $# -eq 3 ]; then
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
            -out "$1.pem" 2>/dev/null
    else
        openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 2 -out "$1.pem" \
            -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n') 2>/dev/null
    fi
}
mkcert ca "Strongbox test CA" && mkcert client1 client1 ca && mkcert client2 client2 ca &&
    mkcert rogueca "Rogue CA" && mkcert rogue client1 rogueca ||
    fatal "openssl could not make the test certificates"

# ------------------------------------------------------------------ server control
TIMEOUT=2
MAX_BODY=65536
start_server() {
    local args=(--max-body "$MAX_BODY" --timeout "$TIMEOUT" --client-ca "$T/ca.pem" --threads 2)
    [ -n "$STORAGE_URL" ] && args+=(--storage "$STORAGE_URL")
    kms_start "$D" server.log "${args[@]}"
}
# stop_server: SIGTERM; the exit status lands in $srv_rc (124 if it did not stop in 15 s).
stop_server() { kms_stop; }

# ------------------------------------------------------------------ HTTP helpers
# req METHOD PATH [BODY [curl args...]]: one HTTPS request. The bearer token is
# $AS when set (empty: none), else the admin token. BODY ("@file" reads a file;
# "--" means no body, to pass curl args) is sent with Content-Type $CT
# (default application/json; empty: none). Sets
# $code (000 when curl failed), ./body, ./hdrs, $rid (X-Request-Id).
req() {
    local method=$1 path=$2
    shift 2
    local a=(-sS --max-time 30 --cacert "$CA" -X "$method" -o body -D hdrs -w '%{http_code}')
    local tok=${AS-$ADMIN}
    [ -n "$tok" ] && a+=(-H "Authorization: Bearer $tok")
    if [ $# -gt 0 ] && [ "$1" = -- ]; then
        shift
    elif [ $# -gt 0 ]; then
        local ct=${CT-application/json}
        if [ -n "$ct" ]; then a+=(-H "Content-Type: $ct"); else a+=(-H 'Content-Type:'); fi
        a+=(--data-binary "$1")
        shift
    fi
    : >body
    : >hdrs
    code=$(curl "${a[@]}" "$@" "$URL$path" 2>err)
    [ -n "$code" ] || code=000
    rid=$(header x-request-id)
}
# header NAME: the value of a response header (case-insensitive), CR stripped.
header() {
    awk -v h="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" -F': ' \
        'tolower($1) == h { sub(/\r$/, ""); v = substr($0, length($1) + 3) } END { print v }' hdrs
}
# expect NAME STATUS [JQ-FILTER]: the last response had STATUS (a regex
# alternation such as 400|404 accepts several) and its body
# satisfies the filter ($re is bound to $RE). Returns 1 on failure.
expect() {
    local name=$1 want=$2 filt=${3-}
    if ! [[ $code =~ ^($want)$ ]]; then
        not_ok "$name (HTTP $code, expected $want)"
        show body
        return 1
    fi
    if [ -n "$filt" ] && ! jq -e --arg re "${RE-}" "$filt" body >/dev/null 2>&1; then
        not_ok "$name (body does not satisfy: $filt)"
        show body
        return 1
    fi
    ok "$name"
}
# chk NAME STATUS FILTER METHOD PATH [BODY [curl args]]: request + expect.
chk() {
    local n=$1 s=$2 f=$3
    shift 3
    req "$@"
    expect "$n" "$s" "$f"
}
# chkerr NAME STATUS REGEX METHOD PATH ...: an error {"error": "..."} matching REGEX (case-insensitive).
ERRF='(.error | type == "string") and (.error | test($re; "i"))'
chkerr() {
    local n=$1 s=$2
    RE=$3
    shift 3
    req "$@"
    expect "$n" "$s" "$ERRF"
}
b64() { base64 -w0; }
b64len() { printf '%s' "$1" | base64 -d 2>/dev/null | wc -c; }
jb() { jq -r "$1" body; } # jb FILTER: a value of the last body
# flipb64 B64 OFFSET: the base64 of the bytes with one byte xor-ed at OFFSET.
flipb64() {
    printf '%s' "$1" | base64 -d >flip.bin
    perl -e 'my ($f, $o) = @ARGV; open(my $h, "+<:raw", $f) or die; seek($h, $o, 0);
             read($h, my $b, 1) == 1 or die; seek($h, $o, 0); print $h chr(ord($b) ^ 1); close($h)' \
        flip.bin "$2"
    b64 <flip.bin
}
# tamper CIPHERTEXT OFFSET: sbx:vN:<base64> with one byte of the payload changed.
tamper() {
    local pre=${1%:*} payload=${1##*:}
    printf '%s:%s' "$pre" "$(flipb64 "$payload" "$2")"
}
# metric SAMPLE: its value in /metrics (0 if absent).
metric() {
    curl -sS --max-time 30 --cacert "$CA" -H "Authorization: Bearer $ADMIN" "$URL/metrics" >metrics.txt 2>/dev/null
    awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }' metrics.txt
}
# audit_expect FILTER WHAT: the audit line of the last request ($rid) must satisfy FILTER (checked at the end).
A_RID=()
A_FILT=()
A_WHAT=()
audit_expect() {
    A_RID+=("$rid")
    A_FILT+=("$1")
    A_WHAT+=("$2")
}
SECRETS=secrets.txt # strings that must never appear in audit.log (one per line)
: >$SECRETS
secret() { # only strings long enough not to occur by chance
    local s
    for s in "$@"; do [ ${#s} -ge 8 ] && [ "$s" != null ] && printf '%s\n' "$s" >>$SECRETS; done
    return 0
}

# ================================================================== start
check "server starts (ready file written)" start_server || fatal "sbx kms serve did not start"
echo "# listening on $URL"
check "data directory is 0700" [ "$(stat -c %a "$D")" = 700 ]
for f in root.key admin.token tls/key.pem; do
    check "$f exists with mode 0600" [ "$(stat -c %a "$D/$f" 2>/dev/null)" = 600 ]
done
check "kms.db created for SQLite" bash -c "[ '$HEALTH_STORAGE' != sqlite ] || [ -s '$D/kms.db' ]"
ADMIN=$(tr -d '\r\n' <"$D/admin.token" 2>/dev/null)
check "admin.token holds sbxt_ + 43 base64url characters" \
    bash -c "printf '%s' '$ADMIN' | grep -qE '^sbxt_[A-Za-z0-9_-]{43}$'"
secret "$ADMIN"
FPR=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
check "the certificate's SHA-256 fingerprint is printed at start" \
    bash -c "tr -d ':' <server.log | tr 'A-F' 'a-f' | grep -q '$FPR'"
check "certificate is ECDSA P-256" bash -c "openssl x509 -in '$CA' -noout -text | grep -qE 'prime256v1|P-256'"
check "certificate names localhost, 127.0.0.1 and ::1" \
    bash -c "openssl x509 -in '$CA' -noout -ext subjectAltName | tr -d ' ' | grep -q 'DNS:localhost' &&
             openssl x509 -in '$CA' -noout -ext subjectAltName | grep -q '127.0.0.1' &&
             openssl x509 -in '$CA' -noout -ext subjectAltName | grep -qiE '0:0:0:0:0:0:0:1|::1'"
run_curl_host() { curl -sS --max-time 10 --cacert "$CA" --resolve "localhost:$PORT:127.0.0.1" \
    -o /dev/null -w '%{http_code}' "https://localhost:$PORT/v1/health" 2>/dev/null; }
check "TLS verifies for the name localhost" [ "$(run_curl_host)" = 200 ]
check "TLS 1.1 is refused" bash -c "! openssl s_client -connect 127.0.0.1:$PORT -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -CAfile '$CA' </dev/null >/dev/null 2>&1"
check "TLS 1.2 works" bash -c "openssl s_client -connect 127.0.0.1:$PORT -tls1_2 -CAfile '$CA' -verify_return_error </dev/null >/dev/null 2>&1"

# ================================================================== health and metrics
AS='' chk "GET /v1/health without auth: 200 ok" 200 \
    ".status == \"ok\" and .storage == \"$HEALTH_STORAGE\" and .dev == false and (.version | type == \"string\")" \
    GET /v1/health
check "health answers application/json" bash -c "grep -qi '^content-type: application/json' hdrs"
check "X-Request-Id is 16 hex characters" bash -c "[[ '$rid' =~ ^[0-9a-f]{16}$ ]]"
RID_HEALTH=$rid
audit_expect '.path == "/v1/health" and .method == "GET" and .status == 200 and .outcome == "ok" and .op == "health" and .caller == "anonymous"' "anonymous health"
AS='' req GET /v1/health
check "X-Request-Id differs between requests" [ -n "$rid" ] && [ "$rid" != "$RID_HEALTH" ]

AS='' chkerr "GET /metrics without a token: 401" 401 '.' GET /metrics
audit_expect '.status == 401 and .outcome == "denied" and .caller == "anonymous" and .path == "/metrics"' "anonymous /metrics denied"
chk "GET /metrics with the admin token: 200" 200 "" GET /metrics
check "metrics are text/plain" bash -c "grep -qi '^content-type: text/plain' hdrs"
for m in sbx_kms_requests_total sbx_kms_request_errors_total sbx_kms_request_duration_seconds_bucket \
    sbx_kms_request_duration_seconds_sum sbx_kms_request_duration_seconds_count sbx_kms_keys sbx_kms_uptime_seconds; do
    check "metrics expose $m" grep -q "^$m" body
done
check "metrics count the 401 on /metrics" grep -qE '^sbx_kms_requests_total\{op="metrics",code="401"\} [1-9]' body
h0=$(metric 'sbx_kms_requests_total{op="health",code="200"}')
d0=$(metric 'sbx_kms_request_duration_seconds_count{op="health"}')
e0=$(metric 'sbx_kms_request_errors_total{op="other"}')
for i in 1 2 3; do AS='' req GET /v1/health; done
AS='' req GET /v1/no-such-route
h1=$(metric 'sbx_kms_requests_total{op="health",code="200"}')
d1=$(metric 'sbx_kms_request_duration_seconds_count{op="health"}')
e1=$(metric 'sbx_kms_request_errors_total{op="other"}')
check "requests_total{op=health,code=200} moves by 3 ($h0 -> $h1)" [ "$((h1 - h0))" -eq 3 ]
check "duration_seconds_count{op=health} moves by 3 ($d0 -> $d1)" [ "$((d1 - d0))" -eq 3 ]
check "request_errors_total{op=other} counts the unknown route ($e0 -> $e1)" [ "$((e1 - e0))" -eq 1 ]
up=$(metric sbx_kms_uptime_seconds)
check "uptime_seconds is a non-negative number ($up)" bash -c "[[ '$up' =~ ^[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]"

# ================================================================== keas.kmi compatibility
req GET /
check "GET /: 200" [ "$code" = 200 ]
check "GET / is text/plain" bash -c "grep -qi '^content-type: text/plain' hdrs"
check "GET / says 'KMS server holding N keys'" grep -qE '^KMS server holding [0-9]+ keys?$' body
n0=$(grep -oE '[0-9]+' body | head -n 1)
CT=text/plain req POST /new ''
KEK=$(tr -d '\n' <body)
check "POST /new: 200" [ "$code" = 200 ]
check "POST /new is text/plain" bash -c "grep -qi '^content-type: text/plain' hdrs"
check "POST /new answers sbx-kek-1:<id>:<secret> and a newline" \
    bash -c "[ \"\$(tail -c 1 body | od -An -tx1 | tr -d ' ')\" = 0a ] && grep -qE '^sbx-kek-1:[^:[:space:]]+:[^:[:space:]]+$' body"
secret "$KEK" "${KEK##*:}"
req GET /
check "GET / counts the new seed key ($n0 -> $(grep -oE '[0-9]+' body | head -n 1))" \
    [ "$(grep -oE '[0-9]+' body | head -n 1)" = "$((n0 + 1))" ]
CT=text/plain req POST /key "$KEK"
cp body dk1.bin
check "POST /key: 200" [ "$code" = 200 ]
check "POST /key is application/octet-stream" bash -c "grep -qi '^content-type: application/octet-stream' hdrs"
check "POST /key returns 32 bytes ($(wc -c <dk1.bin))" [ "$(wc -c <dk1.bin)" -eq 32 ]
secret "$(b64 <dk1.bin)" "$(od -An -tx1 dk1.bin | tr -d ' \n')"
CT='' req POST /key "$(printf '  \n%s \r\n\n' "$KEK")"
check "POST /key ignores surrounding whitespace and content type: same data key" \
    bash -c "[ '$code' = 200 ] && cmp -s body dk1.bin"
CT=text/plain req POST /new ''
KEK2=$(tr -d '\n' <body)
secret "$KEK2" "${KEK2##*:}"
CT=text/plain req POST /key "$KEK2"
check "a second KEK gives a different 32-byte data key" bash -c "[ '$code' = 200 ] && [ \$(wc -c <body) -eq 32 ] && ! cmp -s body dk1.bin"
secret "$(b64 <body)"
# swapch STRING: the string with its first character replaced by another digit ('0' or
# '1'), valid in hex ids and base64url secrets alike. (A tr mapping used here before took
# "Y-_" for a range and turned a leading '-' into '[', a 400 instead of the 404 checked.)
swapch() {
    local s=$1 c=0
    [ "${1:0:1}" = 0 ] && c=1
    printf '%s%s' "$c" "${s:1}"
}
kid=${KEK#sbx-kek-1:}
kid=${kid%%:*}
ksec=${KEK##*:}
CT=text/plain req POST /key "sbx-kek-1:$kid:$(swapch "$ksec")"
check "POST /key with a wrong secret: 404 'Key not found'" bash -c "[ '$code' = 404 ] && grep -q 'Key not found' body"
check "the 404 is text/plain" bash -c "grep -qi '^content-type: text/plain' hdrs"
CT=text/plain req POST /key "sbx-kek-1:$(swapch "$kid"):$ksec"
check "POST /key with an unknown id: 404 'Key not found'" bash -c "[ '$code' = 404 ] && grep -q 'Key not found' body"
for bad in 'hello' "sbx-kek-1:$kid" "sbx-kek-2:$kid:$ksec" "sbx-kek-1:$kid:$ksec:extra" ''; do
    CT=text/plain req POST /key "$bad"
    check "POST /key with malformed KEK '${bad:0:24}...': 400" [ "$code" = 400 ]
done
AS='' req GET /
check "GET / without a token: 401" [ "$code" = 401 ]
AS='' CT=text/plain req POST /key "$KEK"
check "POST /key without a token: 401 (and no key bytes)" bash -c "[ '$code' = 401 ] && ! cmp -s body dk1.bin"
chk "GET /new: 405" 405 "" GET /new
check "405 on /new carries Allow: POST" bash -c "grep -qiE '^allow:.*POST' hdrs"

# ================================================================== keys: create, read, list
NOW=$(date +%s)
chk "create app-x: 201 with metadata" 201 \
    '.name == "app-x" and (.id | test("^[0-9a-f]{32}$")) and .latest_version == 1 and .min_decryption_version == 1
     and .auto_rotate_period == 0 and .deletion_time == 0 and (.created | type == "number")
     and (.versions | length == 1) and .versions[0].version == 1 and .versions[0].state == "active"' \
    POST /v1/keys/app-x '{}'
APPX_ID=$(jb .id)
check "created time is now (±60 s)" bash -c "[ \$(( $(jb '.created // 0') - $NOW )) -le 60 ] && [ \$(( $NOW - $(jb '.created // 0') )) -le 60 ]"
check "key metadata is application/json" bash -c "grep -qi '^content-type: application/json' hdrs"
audit_expect '.op == "create" and .key == "app-x" and .status == 201 and .outcome == "ok" and .method == "POST" and (.caller | startswith("token:"))' "create app-x"
chkerr "create app-x again: 409" 409 '.' POST /v1/keys/app-x '{}'
audit_expect '.op == "create" and .key == "app-x" and .status == 409 and .outcome == "error" and (.error | type == "string")' "create app-x again"
chk "create app-y" 201 '.name == "app-y"' POST /v1/keys/app-y '{}'
chk "create other-z with auto_rotate_period 86400" 201 '.auto_rotate_period == 86400' POST /v1/keys/other-z '{"auto_rotate_period": 86400}'
chk "create Ok_.-9 (every allowed character class)" 201 '.name == "Ok_.-9"' POST /v1/keys/Ok_.-9 '{}'
K128=$(printf 'k%.0s' {1..128})
chk "create a 128-character name" 201 ".name == \"$K128\"" POST "/v1/keys/$K128" '{}'
chkerr "create a 129-character name: 400" 400 'name' POST "/v1/keys/${K128}k" '{}'
chkerr "create '.x': 400" 400 'name' POST /v1/keys/.x '{}'
chkerr "create 'a b' (space): 400" 400 'name' POST /v1/keys/a%20b '{}'
chkerr "create 'caf%C3%A9' (non-ASCII): 400" 400 'name' POST /v1/keys/caf%C3%A9 '{}'
chkerr "create 'a%2Fb' (slash): 400 or 404" '400|404' '.' POST /v1/keys/a%2Fb '{}'
chkerr "create with auto_rotate_period 10: 400" 400 'auto_rotate_period' POST /v1/keys/rot-10 '{"auto_rotate_period": 10}'
chk "create with auto_rotate_period 3600 (the minimum)" 201 '.auto_rotate_period == 3600' POST /v1/keys/rot-3600 '{"auto_rotate_period": 3600}'
chkerr "create with an unknown field: 400 naming it" 400 'colour' POST /v1/keys/unk-f '{"colour": "red"}'
chkerr "create with auto_rotate_period as a string: 400" 400 'auto_rotate_period' POST /v1/keys/typ-k '{"auto_rotate_period": "86400"}'
AS='' chkerr "create without a token: 401" 401 '.' POST /v1/keys/anon-k '{}'
req GET /v1/keys/anon-k
check "the refused create made no key" [ "$code" = 404 ]

chk "read app-x: 200, same id" 200 ".name == \"app-x\" and .id == \"$APPX_ID\" and .latest_version == 1" GET /v1/keys/app-x
audit_expect '.op == "read" and .key == "app-x" and .status == 200 and .method == "GET"' "read app-x"
chkerr "read an unknown key: 404" 404 '.' GET /v1/keys/nope-k
chk "list all keys" 200 '(.keys | index("app-x")) and (.keys | index("other-z")) and (.keys | index("rot-3600"))' GET /v1/keys
chk "list with ?prefix=app-: exactly app-x, app-y" 200 '(.keys | sort) == ["app-x", "app-y"]' GET '/v1/keys?prefix=app-'
chk "list with ?prefix=zzz: empty" 200 '.keys == []' GET '/v1/keys?prefix=zzz'

# ================================================================== data plane
P1=$(head -c 100 /dev/urandom | b64)
P2=$(head -c 1 /dev/urandom | b64)
secret "$P1" "$P2"
CTX='{"tenant": "acme", "file": "ctx-secret-value-4711"}'
secret ctx-secret-value-4711
chk "encrypt on app-x with a context: 200" 200 '(.ciphertext | test("^sbx:v1:[A-Za-z0-9+/]+=*$")) and .key_version == 1' \
    POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\", \"context\": $CTX}"
C1=$(jb .ciphertext)
secret "${C1##*:}"
RID_ENC=$rid
audit_expect '.op == "encrypt" and .key == "app-x" and .key_version == 1 and .status == 200 and .outcome == "ok" and .path == "/v1/keys/app-x/encrypt"' "encrypt app-x"
chk "decrypt with the same context: same plaintext" 200 ".plaintext == \"$P1\" and .key_version == 1" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
chk "decrypt with the context keys in another order: same plaintext" 200 ".plaintext == \"$P1\"" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": {\"file\": \"ctx-secret-value-4711\", \"tenant\": \"acme\"}}"
AUTH_RE='does not authenticate'
chkerr "decrypt with another context: 400" 400 "$AUTH_RE" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": {\"tenant\": \"evil\", \"file\": \"ctx-secret-value-4711\"}}"
audit_expect '.op == "decrypt" and .status == 400 and .outcome == "error" and (.error | test("authenticate"))' "decrypt with another context"
chkerr "decrypt with an extra context entry: 400" 400 "$AUTH_RE" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": {\"tenant\": \"acme\", \"file\": \"ctx-secret-value-4711\", \"x\": \"y\"}}"
chkerr "decrypt without the context: 400" 400 "$AUTH_RE" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\"}"
chkerr "decrypt under another key (app-y): 400 naming app-y" 400 "$AUTH_RE.*app-y|app-y.*$AUTH_RE" \
    POST /v1/keys/app-y/decrypt "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
chkerr "the error names the key" 400 'under key app-x' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\"}"
nb=$(printf '%s' "${C1##*:}" | base64 -d | wc -c)
for off in 0 20 $((nb / 2)) $((nb - 1)); do
    chkerr "decrypt with byte $off of $nb flipped: 400" 400 '.' POST /v1/keys/app-x/decrypt \
        "{\"ciphertext\": \"$(tamper "$C1" "$off")\", \"context\": $CTX}"
done
TRUNC=${C1:0:$((${#C1} - 8))}
chkerr "decrypt a truncated ciphertext: 400" 400 '.' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$TRUNC\", \"context\": $CTX}"
for bad in hello 'sbx:v1:' 'sbx:v1:!!!!' 'sbx:vx:AAAA' "${C1/sbx:v1:/sbx:v0:}" "${C1/sbx:v1:/sbx:v99:}"; do
    chkerr "decrypt malformed ciphertext '${bad:0:14}': 400" 400 '.' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$bad\", \"context\": $CTX}"
done
chkerr "context with a number value: 400 naming context" 400 'context' \
    POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\", \"context\": {\"n\": 1}}"
chkerr "context as an array: 400 naming context" 400 'context' POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\", \"context\": [\"a\"]}"
chkerr "plaintext that is not base64: 400 naming plaintext" 400 'plaintext' POST /v1/keys/app-x/encrypt '{"plaintext": "not base64!"}'
chkerr "plaintext as a number: 400 naming plaintext" 400 'plaintext' POST /v1/keys/app-x/encrypt '{"plaintext": 12}'
chkerr "encrypt without plaintext: 400 naming plaintext" 400 'plaintext' POST /v1/keys/app-x/encrypt '{}'
chkerr "encrypt on an unknown key: 404" 404 '.' POST /v1/keys/nope-k/encrypt "{\"plaintext\": \"$P1\"}"
chk "encrypt a 1-byte plaintext without context" 200 '.key_version == 1' POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P2\"}"
C2=$(jb .ciphertext)
chk "decrypt it" 200 ".plaintext == \"$P2\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C2\"}"
chk "encrypting the same plaintext twice gives different ciphertexts" 200 ".ciphertext != \"$C2\"" POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P2\"}"

head -c 32768 /dev/urandom >p32k.bin
printf '{"plaintext": "%s"}' "$(b64 <p32k.bin)" >p32k.json
chk "encrypt exactly 32 KiB: 200" 200 '.key_version == 1' POST /v1/keys/app-x/encrypt @p32k.json
C32=$(jb .ciphertext)
chk "decrypt 32 KiB round trip" 200 ".plaintext == \"$(b64 <p32k.bin)\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C32\"}"
head -c 32769 /dev/urandom >p32k1.bin
printf '{"plaintext": "%s"}' "$(b64 <p32k1.bin)" >p32k1.json
chkerr "encrypt 32 KiB + 1: 413" 413 '.' POST /v1/keys/app-x/encrypt @p32k1.json

# datakey
for bits in 128 256 512; do
    chk "datakey bits $bits: 200" 200 '(.ciphertext | startswith("sbx:v1:")) and .key_version == 1 and (.plaintext | type == "string")' \
        POST /v1/keys/app-x/datakey "{\"bits\": $bits, \"context\": $CTX}"
    DKP=$(jb .plaintext)
    DKC=$(jb .ciphertext)
    secret "$DKP"
    check "datakey bits $bits is $((bits / 8)) bytes ($(b64len "$DKP"))" [ "$(b64len "$DKP")" -eq $((bits / 8)) ]
    chk "datakey bits $bits: its ciphertext decrypts to its plaintext" 200 ".plaintext == \"$DKP\"" \
        POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$DKC\", \"context\": $CTX}"
done
RID_DK=$rid
chk "datakey with {}: 256 bits" 200 '.key_version == 1' POST /v1/keys/app-x/datakey '{}'
check "default datakey is 32 bytes" [ "$(b64len "$(jb .plaintext)")" -eq 32 ]
secret "$(jb .plaintext)"
audit_expect '.op == "datakey" and .key == "app-x" and .status == 200' "datakey"
chk "datakey wrapped_only: no plaintext" 200 '(has("plaintext") | not) and (.ciphertext | startswith("sbx:v1:")) and .key_version == 1' \
    POST /v1/keys/app-x/datakey '{"bits": 256, "wrapped_only": true}'
WRAPPED=$(jb .ciphertext)
audit_expect '.op == "datakey-wrapped" and .key == "app-x" and .status == 200' "datakey wrapped_only"
chk "the wrapped-only data key decrypts to 32 bytes" 200 '.plaintext | length == 44' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$WRAPPED\"}"
secret "$(jb .plaintext)"
chk "wrapped_only false gives the plaintext" 200 'has("plaintext")' POST /v1/keys/app-x/datakey '{"wrapped_only": false}'
secret "$(jb .plaintext)"
for bad in 0 100 257 1024 -256 '"256"' 256.5 null; do
    chkerr "datakey bits $bad: 400 naming bits" 400 'bits' POST /v1/keys/app-x/datakey "{\"bits\": $bad}"
done
chkerr "datakey wrapped_only as a string: 400" 400 'wrapped_only' POST /v1/keys/app-x/datakey '{"wrapped_only": "yes"}'

# rotate, rewrap, min_decryption_version
chk "rotate app-x: latest_version 2" 200 '.latest_version == 2 and (.versions | length == 2) and (.versions | map(.state) | all(. == "active"))' \
    POST /v1/keys/app-x/rotate
audit_expect '.op == "rotate" and .key == "app-x" and .status == 200' "rotate"
chk "rotate app-x with a {} body: latest_version 3" 200 '.latest_version == 3' POST /v1/keys/app-x/rotate '{}'
chk "encrypt now uses v3" 200 '(.ciphertext | startswith("sbx:v3:")) and .key_version == 3' POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\"}"
C3=$(jb .ciphertext)
chk "datakey now uses v3" 200 '.key_version == 3' POST /v1/keys/app-x/datakey '{"wrapped_only": true}'
WRAPPED3=$(jb .ciphertext)
chk "a v1 ciphertext still decrypts (key_version 1)" 200 ".plaintext == \"$P1\" and .key_version == 1" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
chk "rewrap the v1 ciphertext: v3, no plaintext" 200 '(.ciphertext | startswith("sbx:v3:")) and .key_version == 3 and (has("plaintext") | not)' \
    POST /v1/keys/app-x/rewrap "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
C1R=$(jb .ciphertext)
secret "${C1R##*:}"
check "the rewrap answer does not hold the plaintext" bash -c "! grep -qF '$P1' body"
audit_expect '.op == "rewrap" and .key == "app-x" and .status == 200' "rewrap"
chk "the rewrapped ciphertext decrypts with the context" 200 ".plaintext == \"$P1\" and .key_version == 3" \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1R\", \"context\": $CTX}"
chkerr "the rewrapped ciphertext without the context: 400" 400 "$AUTH_RE" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1R\"}"
chkerr "rewrap with another context: 400" 400 "$AUTH_RE" POST /v1/keys/app-x/rewrap "{\"ciphertext\": \"$C1\", \"context\": {\"tenant\": \"x\"}}"
chkerr "rewrap a tampered ciphertext: 400" 400 '.' POST /v1/keys/app-x/rewrap "{\"ciphertext\": \"$(tamper "$C1" 20)\", \"context\": $CTX}"
chkerr "a v1 ciphertext relabelled v3: 400" 400 '.' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"${C1/sbx:v1:/sbx:v3:}\", \"context\": $CTX}"
chk "config min_decryption_version 2" 200 '.min_decryption_version == 2 and .latest_version == 3' \
    POST /v1/keys/app-x/config '{"min_decryption_version": 2}'
audit_expect '.op == "config" and .key == "app-x" and .status == 200' "config"
chkerr "decrypt a v1 ciphertext below min_decryption_version: 400 naming version 1" 400 'version.*1|v1' \
    POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
chkerr "rewrap a v1 ciphertext below min_decryption_version: 400" 400 'version.*1|v1' \
    POST /v1/keys/app-x/rewrap "{\"ciphertext\": \"$C1\", \"context\": $CTX}"
chk "the v3 ciphertext still decrypts" 200 ".plaintext == \"$P1\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\"}"
req POST /v1/keys/app-x/config '{"min_decryption_version": 4}'
check "min_decryption_version beyond the latest version: 400 or 409 (got $code)" \
    bash -c "[ '$code' = 400 ] || [ '$code' = 409 ]"
check "... with an error naming min_decryption_version" jq -e '.error | test("min_decryption_version")' body >/dev/null
chkerr "min_decryption_version 0: 400" 400 'min_decryption_version' POST /v1/keys/app-x/config '{"min_decryption_version": 0}'
chkerr "config auto_rotate_period 10: 400" 400 'auto_rotate_period' POST /v1/keys/app-x/config '{"auto_rotate_period": 10}'
chkerr "config auto_rotate_period -1: 400" 400 'auto_rotate_period' POST /v1/keys/app-x/config '{"auto_rotate_period": -1}'
chk "config auto_rotate_period 7200 and back to 0" 200 '.auto_rotate_period == 7200' POST /v1/keys/app-x/config '{"auto_rotate_period": 7200}'
chk "config auto_rotate_period 0" 200 '.auto_rotate_period == 0 and .min_decryption_version == 2' POST /v1/keys/app-x/config '{"auto_rotate_period": 0}'
chkerr "config with an unknown field: 400 naming it" 400 'min_version' POST /v1/keys/app-x/config '{"min_version": 2}'
chkerr "config on an unknown key: 404" 404 '.' POST /v1/keys/nope-k/config '{"auto_rotate_period": 0}'
chkerr "rotate an unknown key: 404" 404 '.' POST /v1/keys/nope-k/rotate
chk "read app-x shows 3 versions, min 2" 200 '.latest_version == 3 and .min_decryption_version == 2 and (.versions | map(.version)) == [1, 2, 3]' GET /v1/keys/app-x

# destroy a version
chk "create ds-k" 201 '' POST /v1/keys/ds-k '{}'
chk "encrypt on ds-k v1" 200 '.key_version == 1' POST /v1/keys/ds-k/encrypt "{\"plaintext\": \"$P1\"}"
DS1=$(jb .ciphertext)
chk "rotate ds-k" 200 '.latest_version == 2' POST /v1/keys/ds-k/rotate
chk "encrypt on ds-k v2" 200 '.key_version == 2' POST /v1/keys/ds-k/encrypt "{\"plaintext\": \"$P1\"}"
DS2=$(jb .ciphertext)
chkerr "destroy the latest version: 409" 409 '.' POST /v1/keys/ds-k/versions/2/destroy
chk "destroy version 1: 200, state no longer active" 200 '(.versions[] | select(.version == 1) | .state) != "active" and (.versions[] | select(.version == 2) | .state) == "active"' \
    POST /v1/keys/ds-k/versions/1/destroy
audit_expect '.op == "destroy" and .key == "ds-k" and .key_version == 1 and .status == 200' "destroy version 1"
chkerr "decrypt a destroyed version's ciphertext: 400 naming version 1" 400 'version.*1|v1' POST /v1/keys/ds-k/decrypt "{\"ciphertext\": \"$DS1\"}"
chkerr "rewrap a destroyed version's ciphertext: 400" 400 'version.*1|v1' POST /v1/keys/ds-k/rewrap "{\"ciphertext\": \"$DS1\"}"
chk "version 2 still decrypts" 200 ".plaintext == \"$P1\"" POST /v1/keys/ds-k/decrypt "{\"ciphertext\": \"$DS2\"}"
req POST /v1/keys/ds-k/versions/9/destroy
check "destroy a version that does not exist: 400 or 404 (got $code)" bash -c "[ '$code' = 400 ] || [ '$code' = 404 ]"
req POST /v1/keys/ds-k/versions/abc/destroy
check "destroy version 'abc': 400 or 404 (got $code)" bash -c "[ '$code' = 400 ] || [ '$code' = 404 ]"
req POST /v1/keys/ds-k/versions/1/destroy
check "destroy version 1 again: 200 or 409 (got $code)" bash -c "[ '$code' = 200 ] || [ '$code' = 409 ]"

# delete and restore
chk "create del-k" 201 '' POST /v1/keys/del-k '{}'
chk "encrypt on del-k" 200 '' POST /v1/keys/del-k/encrypt "{\"plaintext\": \"$P1\"}"
DEL1=$(jb .ciphertext)
NOW=$(date +%s)
chk "delete del-k: 200 with deletion_time a week away" 200 \
    ".deletion_time >= $((NOW + 604800 - 60)) and .deletion_time <= $((NOW + 604800 + 60))" DELETE /v1/keys/del-k
audit_expect '.op == "delete" and .key == "del-k" and .status == 200 and .method == "DELETE"' "delete"
chkerr "encrypt on a deleted key: 409" 409 '.' POST /v1/keys/del-k/encrypt "{\"plaintext\": \"$P1\"}"
chkerr "decrypt on a deleted key: 409" 409 '.' POST /v1/keys/del-k/decrypt "{\"ciphertext\": \"$DEL1\"}"
chkerr "datakey on a deleted key: 409" 409 '.' POST /v1/keys/del-k/datakey '{}'
chkerr "rewrap on a deleted key: 409" 409 '.' POST /v1/keys/del-k/rewrap "{\"ciphertext\": \"$DEL1\"}"
chk "read a deleted key shows its deletion_time" 200 '.deletion_time > 0' GET /v1/keys/del-k
chk "restore del-k: deletion_time 0" 200 '.deletion_time == 0' POST /v1/keys/del-k/restore
audit_expect '.op == "delete" and .key == "del-k" and .status == 200 and (.path | endswith("/restore"))' "restore"
chkerr "restore again: 409" 409 '.' POST /v1/keys/del-k/restore '{}'
chk "decrypt works again after restore" 200 ".plaintext == \"$P1\"" POST /v1/keys/del-k/decrypt "{\"ciphertext\": \"$DEL1\"}"
NOW=$(date +%s)
chk "delete with ?delay=3600" 200 ".deletion_time >= $((NOW + 3600 - 60)) and .deletion_time <= $((NOW + 3600 + 60))" DELETE '/v1/keys/del-k?delay=3600'
req DELETE '/v1/keys/app-y?delay=abc'
check "delete with ?delay=abc: 400 (got $code)" [ "$code" = 400 ]
chk "app-y was not deleted by the bad request" 200 '.deletion_time == 0' GET /v1/keys/app-y
chkerr "restore a key that is not deleted: 409" 409 '.' POST /v1/keys/app-y/restore
chkerr "delete an unknown key: 404" 404 '.' DELETE /v1/keys/nope-k

# batch
chk "batch encrypt: mixed items, per-item results in order" 200 \
    '(.batch_results | length == 4) and (.batch_results[0] | has("ciphertext")) and .batch_results[1].status == 400
     and (.batch_results[1].error | type == "string") and (.batch_results[2] | has("ciphertext")) and .batch_results[3].status == 400
     and (.batch_results[0] | has("error") | not)' \
    POST /v1/keys/app-y/encrypt "{\"batch_input\": [{\"plaintext\": \"$P1\"}, {\"plaintext\": \"%%%\"},
        {\"plaintext\": \"$P2\", \"context\": $CTX}, {\"plaintext\": \"$P1\", \"context\": {\"n\": 1}}]}"
B0=$(jb '.batch_results[0].ciphertext')
B2=$(jb '.batch_results[2].ciphertext')
chk "batch decrypt: good, tampered, good with context, missing context, other key's" 200 \
    "(.batch_results | length == 5) and .batch_results[0].plaintext == \"$P1\" and .batch_results[1].status == 400
     and .batch_results[2].plaintext == \"$P2\" and .batch_results[3].status == 400 and .batch_results[4].status == 400
     and (.batch_results[3].error | test(\"$AUTH_RE\"))" \
    POST /v1/keys/app-y/decrypt "{\"batch_input\": [{\"ciphertext\": \"$B0\"}, {\"ciphertext\": \"$(tamper "$B0" 30)\"},
        {\"ciphertext\": \"$B2\", \"context\": $CTX}, {\"ciphertext\": \"$B2\"}, {\"ciphertext\": \"$C3\"}]}"
chk "batch datakey: 128, bad bits, default, wrapped_only" 200 \
    '(.batch_results | length == 4) and (.batch_results[0].plaintext | length == 24) and .batch_results[1].status == 400
     and (.batch_results[2].plaintext | length == 44) and (.batch_results[3] | has("plaintext") | not) and (.batch_results[3] | has("ciphertext"))' \
    POST /v1/keys/app-y/datakey '{"batch_input": [{"bits": 128}, {"bits": 7}, {}, {"wrapped_only": true}]}'
for i in 0 2; do secret "$(jb ".batch_results[$i].plaintext")"; done
chk "batch rewrap: good and garbage" 200 \
    '(.batch_results | length == 2) and (.batch_results[0].ciphertext | startswith("sbx:v1:")) and .batch_results[1].status == 400' \
    POST /v1/keys/app-y/rewrap "{\"batch_input\": [{\"ciphertext\": \"$B0\"}, {\"ciphertext\": \"garbage\"}]}"
{
    printf '{"batch_input": ['
    for ((i = 0; i < 1000; i++)); do printf '%s{"plaintext": "AAE="}' "$([ $i -gt 0 ] && echo ,)"; done
    printf ']}'
} >b1000.json
sed 's/]}$/, {"plaintext": "AAE="}]}/' b1000.json >b1001.json
chk "batch of 1000 items: 1000 results" 200 '(.batch_results | length == 1000) and (.batch_results | all(has("ciphertext")))' \
    POST /v1/keys/app-y/encrypt @b1000.json
chkerr "batch of 1001 items: 413" 413 '.' POST /v1/keys/app-y/encrypt @b1001.json
chk "batch of 0 items: empty results or 400" '200|400' '.batch_results == [] or (.error | type == "string")' POST /v1/keys/app-y/encrypt '{"batch_input": []}'
chkerr "batch_input not an array: 400 naming batch_input" 400 'batch_input' POST /v1/keys/app-y/encrypt '{"batch_input": {}}'
chk "batch_input with a non-object item: 400, or a per-item 400" '200|400' '.batch_results[0].status == 400 or (.error | type == "string")' \
    POST /v1/keys/app-y/encrypt '{"batch_input": [1]}'
chkerr "batch_input beside plaintext: 400" 400 '.' POST /v1/keys/app-y/encrypt "{\"batch_input\": [], \"plaintext\": \"$P1\"}"

# concurrency
seq 1 24 | xargs -P 12 -I{} curl -sS --max-time 30 --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' --data-binary '{"wrapped_only": true}' -o /dev/null -w '%{http_code}\n' \
    "$URL/v1/keys/app-x/datakey" >par.txt 2>/dev/null
check "24 concurrent datakey requests: all 200" [ "$(grep -c '^200$' par.txt)" -eq 24 ]
seq 1 12 | xargs -P 12 -I{} curl -sS --max-time 30 --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
    -X POST -o /dev/null -w '%{http_code}\n' "$URL/v1/keys/ds-k/rotate" >par.txt 2>/dev/null
chk "12 concurrent rotations: all 200, 12 new versions" 200 '.latest_version == 14 and (.versions | length == 14)' GET /v1/keys/ds-k
check "... each rotation answered 200" [ "$(grep -c '^200$' par.txt)" -eq 12 ]
out=$(curl -sS --max-time 30 --cacert "$CA" -H "Authorization: Bearer $ADMIN" -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects}\n' "$URL/v1/keys/app-x" "$URL/v1/keys/app-y" 2>/dev/null | tr '\n' ' ')
check "keep-alive: two requests on one connection ($out)" [ "$out" = "200 1 200 0 " ]

# ================================================================== auth: tokens
AS='' chkerr "no token: 401" 401 '.' GET /v1/keys
AS='' chkerr "no token on a data operation: 401" 401 '.' POST /v1/keys/app-x/datakey '{}'
audit_expect '.status == 401 and .outcome == "denied" and .caller == "anonymous" and .op == "datakey" and .key == "app-x"' "datakey without token"
BADTOK=sbxt_$(head -c 32 /dev/urandom | b64 | tr '+/' '-_' | tr -d '=')
AS=$BADTOK chkerr "unknown token: 401" 401 '.' GET /v1/keys
AS="${ADMIN}x" chkerr "admin token with an extra character: 401" 401 '.' GET /v1/keys
AS=garbage chkerr "garbage token: 401" 401 '.' GET /v1/keys
AS='' req GET /v1/keys -- -H "Authorization: Basic $(printf 'a:b' | b64)"
check "Basic auth: 401" [ "$code" = 401 ]
AS='' req GET /v1/keys -- -H "Authorization: Bearer"
check "'Bearer' with no token: 401" [ "$code" = 401 ]
AS='' req GET /v1/keys -- -H "Authorization: bearer $ADMIN"
check "lower-case 'bearer' scheme accepted (RFC 7235: case-insensitive; got $code)" [ "$code" = 200 ]

NOW=$(date +%s)
chk "create a token: 201" 201 \
    "(.token | test(\"^sbxt_[A-Za-z0-9_-]{43}\$\")) and (.id | test(\"^[0-9a-f]{16}\$\")) and .expires >= $((NOW + 3600 - 60)) and .expires <= $((NOW + 3600 + 60))" \
    POST /v1/tokens '{"name": "t-plain", "policies": [], "ttl": 3600, "admin": false}'
T1=$(jb .token)
T1ID=$(jb .id)
secret "$T1"
audit_expect '.op == "admin" and .path == "/v1/tokens" and .status == 201' "token create"
chk "list tokens: the new one, without its secret" 200 \
    "(.tokens | map(select(.id == \"$T1ID\")) | length == 1) and (.tokens[] | select(.id == \"$T1ID\") | .name == \"t-plain\" and .admin == false and .policies == [] and (has(\"token\") | not))" \
    GET /v1/tokens
check "the token list does not contain the token" bash -c "! grep -qF '$T1' body"
AS=$T1 chk "a token without policies lists no keys" 200 '.keys == []' GET /v1/keys
AS=$T1 chkerr "a token without policies: 403 on read" 403 '.' GET /v1/keys/app-x
audit_expect '.status == 403 and .outcome == "denied" and .op == "read" and (.caller | startswith("token:'"$T1ID"'"))' "403 for t-plain"
AS=$T1 chkerr "a non-admin token: 403 on GET /v1/tokens" 403 '.' GET /v1/tokens
AS=$T1 chkerr "a non-admin token cannot mint an admin token: 403" 403 '.' POST /v1/tokens '{"name": "esc", "admin": true}'
chk "revoke the token: 204" 204 '' DELETE "/v1/tokens/$T1ID"
check "the 204 has an empty body" [ ! -s body ]
audit_expect '.op == "admin" and .method == "DELETE" and .status == 204' "token revoke"
sleep 1.1
AS=$T1 chkerr "a revoked token: 401 (after 1.1 s)" 401 '.' GET /v1/keys
chk "the revoked token is gone from the list" 200 "(.tokens | map(select(.id == \"$T1ID\")) | length == 0)" GET /v1/tokens
chkerr "revoke it again: 404" 404 '.' DELETE "/v1/tokens/$T1ID"
chkerr "create a token with an unknown field: 400 naming it" 400 'admn' POST /v1/tokens '{"name": "x", "admn": true}'
chkerr "create a token with ttl as a string: 400 naming ttl" 400 'ttl' POST /v1/tokens '{"name": "x", "ttl": "60"}'
chkerr "create a token with a negative ttl: 400 naming ttl" 400 'ttl' POST /v1/tokens '{"name": "x", "ttl": -5}'
chkerr "create a token with policies not an array: 400 naming policies" 400 'policies' POST /v1/tokens '{"name": "x", "policies": "apps"}'

chk "create an admin token with ttl 1" 201 '.token | startswith("sbxt_")' POST /v1/tokens '{"name": "t-short", "ttl": 1, "admin": true}'
TSHORT=$(jb .token)
secret "$TSHORT"
AS=$TSHORT chk "the short-lived admin token works at once" 200 '.tokens | type == "array"' GET /v1/tokens
sleep 2.1
AS=$TSHORT chkerr "after ttl 1 and 2 s: 401" 401 '.' GET /v1/tokens
audit_expect '.status == 401 and .outcome == "denied"' "expired token"

# ================================================================== auth: policies
APPS='{"rules": [{"keys": "app-*", "ops": ["datakey", "decrypt"]}]}'
chk "PUT policy apps: 200, the document" 200 '.rules[0].keys == "app-*" and .rules[0].ops == ["datakey", "decrypt"]' PUT /v1/policies/apps "$APPS"
audit_expect '.op == "admin" and .method == "PUT" and .path == "/v1/policies/apps" and .status == 200' "policy put"
chk "PUT policy wrapped (datakey-wrapped on app-*)" 200 '' PUT /v1/policies/wrapped '{"rules": [{"keys": "app-*", "ops": ["datakey-wrapped"]}]}'
chk "PUT policy lister (list on app-*)" 200 '' PUT /v1/policies/lister '{"rules": [{"keys": "app-*", "ops": ["list", "read"]}]}'
chk "PUT policy seeder (seed)" 200 '' PUT /v1/policies/seeder '{"rules": [{"keys": "*", "ops": ["seed"]}]}'
chk "PUT policy all (* on *)" 200 '' PUT /v1/policies/all '{"rules": [{"keys": "*", "ops": ["*"]}]}'
chk "GET /v1/policies lists them" 200 '(.policies | sort) as $p | ["all", "apps", "lister", "seeder", "wrapped"] - $p == []' GET /v1/policies
chk "GET /v1/policies/apps: the document" 200 '.rules == [{"keys": "app-*", "ops": ["datakey", "decrypt"]}]' GET /v1/policies/apps
chkerr "GET an unknown policy: 404" 404 '.' GET /v1/policies/nope
chkerr "PUT a policy with rules not an array: 400 naming rules" 400 'rules' PUT /v1/policies/bad '{"rules": "x"}'
chkerr "PUT a policy with an unknown op: 400 naming it" 400 'fly' PUT /v1/policies/bad '{"rules": [{"keys": "*", "ops": ["fly"]}]}'
chkerr "PUT a policy without keys: 400 naming keys" 400 'keys' PUT /v1/policies/bad '{"rules": [{"ops": ["read"]}]}'
chkerr "PUT a policy that is not JSON: 400" 400 '.' PUT /v1/policies/bad '{"rules": ['
chkerr "the bad policy was not stored: 404" 404 '.' GET /v1/policies/bad

mktok() { # mktok VAR NAME POLICIES-JSON: a token with these policies, in $VAR
    req POST /v1/tokens "{\"name\": \"$2\", \"policies\": $3, \"ttl\": 3600}"
    expect "create token $2 with policies $3" 201 '.token | startswith("sbxt_")'
    printf -v "$1" '%s' "$(jb '.token // "none"')"
    secret "${!1}"
}
mktok TA t-apps '["apps"]'
mktok TW t-wrapped '["wrapped"]'
mktok TL t-lister '["lister"]'
mktok TS t-seeder '["seeder"]'
mktok TALL t-all '["all"]'
AS=$TA chk "apps policy: datakey on app-x allowed" 200 'has("plaintext")' POST /v1/keys/app-x/datakey '{}'
secret "$(jb .plaintext)"
audit_expect '.op == "datakey" and .key == "app-x" and .status == 200 and (.caller | endswith(":t-apps"))' "datakey with the apps policy"
AS=$TA chk "apps policy: decrypt on app-x allowed" 200 ".plaintext == \"$P1\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\"}"
AS=$TA chk "apps policy: batch decrypt on app-y allowed" 200 ".batch_results[0].plaintext == \"$P1\"" POST /v1/keys/app-y/decrypt "{\"batch_input\": [{\"ciphertext\": \"$B0\"}]}"
AS=$TA chkerr "apps policy: datakey on other-z: 403" 403 '.' POST /v1/keys/other-z/datakey '{}'
audit_expect '.op == "datakey" and .key == "other-z" and .status == 403 and .outcome == "denied"' "403 on other-z"
AS=$TA chkerr "apps policy: datakey on xapp-1 (pattern is anchored): 403" 403 '.' POST /v1/keys/xapp-1/datakey '{}'
AS=$TA chkerr "apps policy: decrypt on other-z: 403" 403 '.' POST /v1/keys/other-z/decrypt "{\"ciphertext\": \"$C3\"}"
AS=$TA chkerr "apps policy: encrypt on app-x: 403" 403 '.' POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\"}"
AS=$TA chkerr "apps policy: rewrap on app-x: 403" 403 '.' POST /v1/keys/app-x/rewrap "{\"ciphertext\": \"$C3\"}"
AS=$TA chkerr "apps policy: create app-new: 403" 403 '.' POST /v1/keys/app-new '{}'
AS=$TA chkerr "apps policy: rotate app-x: 403" 403 '.' POST /v1/keys/app-x/rotate
AS=$TA chkerr "apps policy: config app-x: 403" 403 '.' POST /v1/keys/app-x/config '{"auto_rotate_period": 0}'
AS=$TA chkerr "apps policy: delete app-x: 403" 403 '.' DELETE /v1/keys/app-x
AS=$TA chkerr "apps policy: destroy app-x v2: 403" 403 '.' POST /v1/keys/app-x/versions/2/destroy
AS=$TA chkerr "apps policy: read app-x: 403" 403 '.' GET /v1/keys/app-x
AS=$TA chk "apps policy: list shows nothing" 200 '.keys == []' GET /v1/keys
AS=$TA chkerr "apps policy: GET /v1/tokens: 403" 403 '.' GET /v1/tokens
AS=$TA chkerr "apps policy: POST /v1/tokens: 403" 403 '.' POST /v1/tokens '{"name": "x"}'
AS=$TA chkerr "apps policy: PUT /v1/policies/apps: 403" 403 '.' PUT /v1/policies/apps '{"rules": [{"keys": "*", "ops": ["*"]}]}'
AS=$TA chkerr "apps policy: GET /v1/policies: 403" 403 '.' GET /v1/policies
AS=$TA chkerr "apps policy: PUT /v1/certs/x: 403" 403 '.' PUT /v1/certs/x '{"policies": []}'
AS=$TA chkerr "apps policy: GET /metrics: 403" 403 '.' GET /metrics
AS=$TA req GET /
check "apps policy: GET / (seed): 403" [ "$code" = 403 ]
AS=$TA chk "apps policy: datakey on a missing app-* key: 404" 404 '' POST /v1/keys/app-missing/datakey '{}'
AS=$TW chk "wrapped policy: datakey wrapped_only on app-x allowed" 200 '(has("plaintext") | not) and has("ciphertext")' \
    POST /v1/keys/app-x/datakey '{"wrapped_only": true}'
AS=$TW chkerr "wrapped policy: datakey with plaintext: 403" 403 '.' POST /v1/keys/app-x/datakey '{}'
AS=$TW chk "wrapped policy: batch datakey with plaintext: 403, or a per-item 403" '200|403' \
    '(.error | type == "string") or (.batch_results[0].status == 403 and (.batch_results[0] | has("plaintext") | not))' \
    POST /v1/keys/app-x/datakey '{"batch_input": [{}]}'
AS=$TW chkerr "wrapped policy: datakey-wrapped on other-z: 403" 403 '.' POST /v1/keys/other-z/datakey '{"wrapped_only": true}'
AS=$TL chk "lister policy: list shows only app-* keys" 200 '(.keys | sort) == ["app-x", "app-y"]' GET /v1/keys
AS=$TL chk "lister policy: read app-x" 200 '.name == "app-x"' GET /v1/keys/app-x
AS=$TS req GET /
check "seeder policy: GET / allowed" [ "$code" = 200 ]
AS=$TS CT=text/plain req POST /key "$KEK"
check "seeder policy: POST /key returns the same data key" bash -c "[ '$code' = 200 ] && cmp -s body dk1.bin"
AS=$TALL chk "* policy: create any key" 201 '' POST /v1/keys/all-k '{}'
AS=$TALL chkerr "* policy is never admin: GET /v1/tokens 403" 403 '.' GET /v1/tokens
AS=$TALL chkerr "* policy is never admin: PUT a policy 403" 403 '.' PUT /v1/policies/x '{"rules": []}'
chk "DELETE /v1/policies/apps: 204" 204 '' DELETE /v1/policies/apps
check "the 204 has an empty body" [ ! -s body ]
chkerr "deleted policy: 404" 404 '.' GET /v1/policies/apps
chkerr "delete it again: 404" 404 '.' DELETE /v1/policies/apps
sleep 1.1
AS=$TA chkerr "after the policy is deleted, its token gets 403" 403 '.' POST /v1/keys/app-x/datakey '{}'
chk "PUT policy apps again" 200 '' PUT /v1/policies/apps "$APPS"

# ================================================================== auth: TLS client certificates
creq() { # creq CERT METHOD PATH BODY|--: a request authenticated by a client certificate only
    local c=$1
    shift
    AS='' req "$@" --cert "$T/$c.pem" --key "$T/$c.key"
}
creq client1 POST /v1/keys/app-x/datakey '{}'
check "client1 certificate before any mapping: 401 (got $code)" [ "$code" = 401 ]
chk "PUT /v1/certs/client1: 200" 200 '' PUT /v1/certs/client1 '{"policies": ["apps"], "admin": false}'
audit_expect '.op == "admin" and .path == "/v1/certs/client1" and .status == 200' "cert map"
chk "PUT /v1/certs/admin-cn (admin)" 200 '' PUT /v1/certs/admin-cn '{"policies": [], "admin": true}'
chk "GET /v1/certs lists the mappings" 200 \
    '(.certs[] | select(.cn == "client1") | .policies == ["apps"] and .admin == false) and (.certs[] | select(.cn == "admin-cn") | .admin == true)' GET /v1/certs
chkerr "PUT a cert mapping with an unknown field: 400 naming it" 400 'polices' PUT /v1/certs/x '{"polices": []}'
sleep 1.1
creq client1 POST /v1/keys/app-x/datakey '{}'
expect "client1 certificate: datakey on app-x allowed" 200 'has("plaintext")'
secret "$(jb .plaintext)"
audit_expect '.caller == "cert:client1" and .op == "datakey" and .status == 200' "datakey by client certificate"
creq client1 POST /v1/keys/other-z/datakey '{}'
expect "client1 certificate: datakey on other-z: 403" 403 ''
creq client1 POST /v1/keys/app-c '{}'
expect "client1 certificate: create: 403" 403 ''
creq client1 GET /v1/tokens --
expect "client1 certificate: admin endpoint: 403" 403 ''
creq client2 POST /v1/keys/app-x/datakey '{}'
check "client2 certificate (unmapped CN): 401 (got $code)" [ "$code" = 401 ]
creq rogue POST /v1/keys/app-x/datakey '{}'
check "certificate from an unknown CA, CN client1: refused (got $code)" bash -c "[ '$code' = 000 ] || [ '$code' = 401 ]"
AS=$TA req POST /v1/keys/other-z/datakey '{}' --cert "$T/client1.pem" --key "$T/client1.key"
check "token and certificate together: 403 stays 403 (got $code)" [ "$code" = 403 ]
chk "DELETE /v1/certs/client1: 204" 204 '' DELETE /v1/certs/client1
check "the 204 has an empty body" [ ! -s body ]
chkerr "delete it again: 404" 404 '.' DELETE /v1/certs/client1
sleep 1.1
creq client1 POST /v1/keys/app-x/datakey '{}'
check "client1 certificate after unmapping: 401 (got $code)" [ "$code" = 401 ]

# ================================================================== request parsing and limits
chkerr "malformed JSON: 400" 400 '.' POST /v1/keys/app-x/datakey '{"bits": 128'
chkerr "trailing garbage after JSON: 400" 400 '.' POST /v1/keys/app-x/datakey '{"bits": 128} x'
chkerr "duplicate JSON keys: 400" 400 'bits|duplicate' POST /v1/keys/app-x/datakey '{"bits": 128, "bits": 256}'
chkerr "JSON array instead of object: 400" 400 '.' POST /v1/keys/app-x/datakey '[]'
chkerr "JSON string instead of object: 400" 400 '.' POST /v1/keys/app-x/datakey '"x"'
chkerr "empty body with Content-Type json on encrypt: 400" 400 '.' POST /v1/keys/app-x/encrypt ''
chkerr "invalid UTF-8 in JSON: 400" 400 '.' POST /v1/keys/app-x/encrypt "$(printf '{"plaintext": "\xff\xfe"}')"
chkerr "NUL in a JSON string: 400" 400 '.' POST /v1/keys/app-x/encrypt '{"plaintext": "AA\u0000=="}'
chkerr "unknown field in datakey: 400 naming it" 400 'bitz' POST /v1/keys/app-x/datakey '{"bitz": 256}'
chkerr "unknown field in decrypt: 400 naming it" 400 'nonce' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\", \"nonce\": \"x\"}"
chkerr "ciphertext as a number: 400 naming ciphertext" 400 'ciphertext' POST /v1/keys/app-x/decrypt '{"ciphertext": 5}'
CT=text/plain chkerr "Content-Type text/plain on /v1: 415" 415 '.' POST /v1/keys/app-x/datakey '{}'
CT='' chkerr "no Content-Type on a /v1 body: 415" 415 '.' POST /v1/keys/app-x/datakey '{}'
CT='application/x-www-form-urlencoded' chkerr "form Content-Type: 415" 415 '.' POST /v1/keys/app-x/datakey '{}'
CT='application/json; charset=utf-8' chk "Content-Type with charset parameter accepted" 200 '' POST /v1/keys/app-x/datakey '{"wrapped_only": true}'
CT='Application/JSON' chk "Content-Type is case-insensitive" 200 '' POST /v1/keys/app-x/datakey '{"wrapped_only": true}'
{
    printf '{"wrapped_only": true'
    head -c 60000 /dev/zero | tr '\0' ' '
    printf '}'
} >under.json
{
    printf '{"wrapped_only": true'
    head -c 70000 /dev/zero | tr '\0' ' '
    printf '}'
} >over.json
chk "a 60000-byte body under --max-body $MAX_BODY: 200" 200 '' POST /v1/keys/app-x/datakey @under.json
{
    printf '{"wrapped_only": true'
    head -c 200000 /dev/zero | tr '\0' ' '
    printf '}'
} >over200k.json
# Ten tries each: a server that closes without draining the body (no lingering
# close) makes the client fail to send ("broken pipe", 000) before it reads the 413.
for f in over.json over200k.json; do
    codes=
    for i in 1 2 3 4 5 6 7 8 9 10; do
        req POST /v1/keys/app-x/datakey "@$f"
        codes="$codes $code"
    done
    check "a $(wc -c <$f)-byte body over --max-body $MAX_BODY: 413 on 10 of 10 tries (got$codes)" \
        [ "$(printf '%s\n' $codes | grep -c '^413$')" -eq 10 ]
done
for i in 1 2 3; do # (retries: see above)
    req POST /v1/keys/app-x/datakey @over.json
    [ "$code" = 000 ] || break
done
# The framing guard answers an over-limit body as soon as its head is read: JSON like every error.
check "the over-limit answer is 413 with a JSON error (got $code)" \
    bash -c "[ '$code' = 413 ] && jq -e '.error | contains(\"--max-body\")' body >/dev/null"
CT=text/plain req POST /key @over.json
check "a body over --max-body on POST /key: 413 (got $code)" [ "$code" = 413 ]
chk "the server still answers after 413s" 200 '.status == "ok"' GET /v1/health
chkerr "unknown route /v1/nope: 404" 404 '.' GET /v1/nope
audit_expect '.status == 404 and .op == "other" and .path == "/v1/nope"' "unknown route"
chkerr "unknown route /v1/keys/app-x/bogus: 404" 404 '.' POST /v1/keys/app-x/bogus '{}'
chkerr "unknown route /v1/keys/app-x/versions/1: 404 or 405" '404|405' '.' GET /v1/keys/app-x/versions/1
AS='' chkerr "unknown route without a token: 401 or 404" '401|404' '.' GET /v2/whatever
chkerr "PUT /v1/keys/app-x: 405" 405 '.' PUT /v1/keys/app-x '{}'
check "405 carries Allow with GET, POST, DELETE ($(header allow))" \
    bash -c "a='$(header allow)'; [[ \$a == *GET* && \$a == *POST* && \$a == *DELETE* && \$a != *PUT* ]]"
chkerr "GET /v1/keys/app-x/encrypt: 405" 405 '.' GET /v1/keys/app-x/encrypt
check "405 carries Allow: POST ($(header allow))" bash -c "[[ '$(header allow)' == *POST* && '$(header allow)' != *GET* ]]"
AS='' chkerr "POST /v1/health: 405" 405 '.' POST /v1/health '{}'
check "405 carries Allow: GET ($(header allow))" bash -c "[[ '$(header allow)' == *GET* ]]"
chkerr "PATCH /v1/tokens: 405" 405 '.' PATCH /v1/tokens '{}'
check "405 carries Allow with GET, POST ($(header allow))" bash -c "[[ '$(header allow)' == *GET* && '$(header allow)' == *POST* ]]"
chkerr "DELETE /v1/policies: 405" 405 '.' DELETE /v1/policies
req POST /v1/keys/app-x/datakey '{"wrapped_only": true}' -H 'Transfer-Encoding: chunked'
check "a chunked request body: 200, or 411 (got $code)" bash -c "[[ '$code' =~ ^(200|411)$ ]]"
long=$(head -c 20000 /dev/zero | tr '\0' a)
req GET "/v1/keys/$long"
check "a 20000-character path: 400, 404 or 414 (got $code)" bash -c "[[ '$code' =~ ^(400|404|414|431)$ ]]"
req GET /v1/keys -- -H "X-Big: $long$long$long$long"
check "an 80 KB header: refused with 4xx (got $code)" bash -c "[[ '$code' =~ ^4[0-9][0-9]$ ]] || [ '$code' = 000 ]"
chk "the server still answers" 200 '.status == "ok"' GET /v1/health

# slow clients: the server must cut off a request that takes longer than --timeout
cat >slow.py <<'EOF'
import socket, ssl, sys, time
port, ca, mode, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.monotonic()
if mode == "tcp":
    s = raw  # never starts TLS
else:
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    t0 = time.monotonic()
req = (b"POST /v1/keys/app-x/datakey HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Content-Length: 2\r\nX-Padding: " + b"p" * 200 + b"\r\n\r\n{}")
s.settimeout(0.4)
i = 0
try:
    while time.monotonic() - t0 < limit:
        if mode == "drip" and i < len(req):
            s.sendall(req[i:i + 1])  # one byte every 0.4 s: never idle for --timeout
            i += 1
        try:
            d = s.recv(4096)
            if not d:
                print("closed %.1f after %d bytes" % (time.monotonic() - t0, i))
                sys.exit(0)
            print("answer %.1f %r" % (time.monotonic() - t0, d[:40]))
        except (socket.timeout, TimeoutError):
            pass
    print("open %.1f after %d bytes" % (time.monotonic() - t0, i))
except (OSError, ssl.SSLError) as e:
    print("closed %.1f after %d bytes (%s)" % (time.monotonic() - t0, i, type(e).__name__))
EOF
LIMIT=$((TIMEOUT * 4 + 2))
for mode in drip idle tcp; do
    out=$(python3 slow.py "$PORT" "$CA" "$mode" "$LIMIT" 2>&1 | tail -n 1)
    secs=$(printf '%s' "$out" | awk '$1 == "closed" { print int($2) }')
    check "slow client ($mode) is cut off within --timeout $TIMEOUT + 2 s ($out)" \
        bash -c "[ -n '$secs' ] && [ '$secs' -le $((TIMEOUT + 2)) ]"
done
chk "the server still answers after slow clients" 200 '.status == "ok"' GET /v1/health

# ================================================================== deletion delay runs out
chk "create purge-k" 201 '' POST /v1/keys/purge-k '{}'
chk "encrypt on purge-k" 200 '' POST /v1/keys/purge-k/encrypt "{\"plaintext\": \"$P1\"}"
PURGE_CT=$(jb .ciphertext)
chk "delete purge-k with ?delay=1" 200 '.deletion_time > 0' DELETE '/v1/keys/purge-k?delay=1'
gone=
for ((i = 0; i < 40; i++)); do
    sleep 0.5
    req GET /v1/keys/purge-k
    if [ "$code" = 404 ]; then gone=$i; break; fi
done
check "purge-k is gone (404) within 20 s of its deletion time (after $(((${gone:-40} + 1) / 2)) s)" [ -n "$gone" ]
chk "its name can be used again" 201 '.latest_version == 1' POST /v1/keys/purge-k '{}'
chkerr "the old ciphertext does not decrypt under the new purge-k" 400 '.' POST /v1/keys/purge-k/decrypt "{\"ciphertext\": \"$PURGE_CT\"}"
nk=$(metric sbx_kms_keys)
check "sbx_kms_keys counts the keys ($nk)" [ "${nk%.*}" -ge 10 ]

# ================================================================== TLS sessions
# s_client waits a moment on stdin so that the TLS 1.3 ticket arrives before it quits.
tls_session() { # tls_session PORT OUT|IN FILE: prints "Reused" or "New"
    local flag=-sess_out
    [ "$2" = IN ] && flag=-sess_in
    sleep 1 | openssl s_client -connect "127.0.0.1:$1" -servername localhost -CAfile "$CA" \
        -verify_return_error "$flag" "$3" 2>/dev/null | grep -oE '^(Reused|New),' | head -n 1 | tr -d ,
}
r=$(tls_session "$PORT" OUT "$T/sess.pem")
check "a TLS session is saved (handshake: $r)" test "$r" = New -a -s "$T/sess.pem"
check "the TLS session resumes on the same server" [ "$(tls_session "$PORT" IN "$T/sess.pem")" = Reused ]

# ================================================================== a second node (PostgreSQL)
if [ -n "$STORAGE_URL" ]; then
    D2=$T/kms2
    mkdir -m 700 "$D2" "$D2/tls"
    cp -p "$D/root.key" "$D2/" && cp -p "$D/tls/cert.pem" "$D/tls/key.pem" "$D2/tls/"
    "$SBX" kms serve --data-dir "$D2" --listen 127.0.0.1:0 --ready-file "$T/ready2" --storage "$STORAGE_URL" \
        --timeout "$TIMEOUT" >server2.log 2>&1 &
    N2_PID=$!
    for ((i = 0; i < 300; i++)); do
        [ -s ready2 ] && break
        kill -0 "$N2_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -s ready2 ]; then
        URL1=$URL
        URL2=https://127.0.0.1:$(head -n 1 ready2)
        on2() { URL=$URL2 "$@"; }
        on2 chk "node 2: reads app-x created on node 1" 200 ".id == \"$APPX_ID\"" GET /v1/keys/app-x
        on2 chk "node 2: decrypts node 1's ciphertext" 200 ".plaintext == \"$P1\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\"}"
        on2 chk "node 2: rotates app-x" 200 '.latest_version == 4' POST /v1/keys/app-x/rotate
        chk "node 1: sees the rotation and encrypts under v4" 200 '.key_version == 4' POST /v1/keys/app-x/encrypt "{\"plaintext\": \"$P1\"}"
        C4=$(jb .ciphertext)
        on2 chk "node 2: decrypts it" 200 ".plaintext == \"$P1\" and .key_version == 4" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C4\"}"
        CT=text/plain on2 req POST /key "$KEK"
        check "node 2: a seed KEK from node 1 gives the same data key" bash -c "[ '$code' = 200 ] && cmp -s body dk1.bin"
        req POST /v1/tokens '{"name": "t-nodes", "ttl": 3600, "admin": true}'
        TN=$(jb .token)
        TNID=$(jb .id)
        secret "$TN"
        AS=$TN on2 chk "node 2: accepts a token made on node 1" 200 '' GET /v1/tokens
        chk "node 1: revokes it" 204 '' DELETE "/v1/tokens/$TNID"
        sleep 1.1
        AS=$TN on2 chkerr "node 2: the revoked token is refused within a second" 401 '.' GET /v1/tokens
        chk "node 1: the apps policy loses decrypt" 200 '' PUT /v1/policies/apps '{"rules": [{"keys": "app-*", "ops": ["datakey"]}]}'
        sleep 1.1
        AS=$TA on2 chkerr "node 2: the policy change applies within a second" 403 '.' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\"}"
        chk "node 1: the apps policy restored" 200 '' PUT /v1/policies/apps "$APPS"
        check "node 2: resumes the TLS session of node 1" [ "$(tls_session "$(head -n 1 ready2)" IN "$T/sess.pem")" = Reused ]
        kill -TERM "$N2_PID"
        wait "$N2_PID"
        check "node 2: SIGTERM exits 0" [ $? -eq 0 ]
        run_verify2() { "$SBX" kms audit verify "$D2/audit.log" >/dev/null 2>verify.err; }
        check "node 2: its audit log verifies" run_verify2
        check "node 2: its audit log holds no token" bash -c "! grep -qF '$TN' '$D2/audit.log' && ! grep -qF '$ADMIN' '$D2/audit.log'"
        URL=$URL1
    else
        kill -KILL "$N2_PID" 2>/dev/null
        not_ok "node 2 did not start on the same PostgreSQL database"
        sed 's/^/       server: /' server2.log | tail -n 5
    fi
fi

# ================================================================== restart on the same data
req GET /v1/keys/app-x
APPX_META=$(jq -c '{id, latest_version, min_decryption_version}' body)
check "the server is still running before SIGTERM" kill -0 "$SRV_PID"
stop_server
check "SIGTERM: the server exits 0 (got $srv_rc)" [ "$srv_rc" -eq 0 ]
check "after SIGTERM the port is closed" bash -c "! curl -sS --max-time 3 --cacert '$CA' -o /dev/null '$URL/v1/health' 2>/dev/null"
run_verify() { # with the data directory's root key, whatever directory the log is in
    "$SBX" kms audit verify --data-dir "$D" "$1" >verify.out 2>verify.err
    vrc=$?
}
run_verify "$D/audit.log"
check "sbx kms audit verify passes after the first run (exit $vrc)" [ "$vrc" -eq 0 ]
[ "$vrc" -eq 0 ] || sed 's/^/       verify: /' verify.err | head -n 3
lines1=$(wc -l <"$D/audit.log")
cp "$D/admin.token" admin.token.1

check "the server restarts on the same data" start_server || fatal "sbx kms serve did not restart"
check "admin.token is not rewritten on the second start" cmp -s admin.token.1 "$D/admin.token"
check "a TLS session from before the restart resumes" [ "$(tls_session "$PORT" IN "$T/sess.pem")" = Reused ]
chk "keys survive a restart" 200 "{id, latest_version, min_decryption_version} == $APPX_META" GET /v1/keys/app-x
chk "a ciphertext from the first run decrypts" 200 ".plaintext == \"$P1\"" POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$C3\"}"
chk "a data key from the first run decrypts" 200 '.plaintext | length == 44' POST /v1/keys/app-x/decrypt "{\"ciphertext\": \"$WRAPPED3\"}"
CT=text/plain req POST /key "$KEK"
check "a seed KEK from the first run returns the same data key" bash -c "[ '$code' = 200 ] && cmp -s body dk1.bin"
AS=$TA chk "tokens and policies survive a restart" 200 'has("plaintext")' POST /v1/keys/app-x/datakey '{}'
AS=$T1 chkerr "a revoked token stays revoked" 401 '.' GET /v1/keys
chk "a deleted key stays deleted" 200 '.deletion_time > 0' GET /v1/keys/del-k
chk "a destroyed version stays destroyed" 400 '' POST /v1/keys/ds-k/decrypt "{\"ciphertext\": \"$DS1\"}"
stop_server
check "second SIGTERM: exit 0 (got $srv_rc)" [ "$srv_rc" -eq 0 ]

# ================================================================== --dev (backend-independent: SQLite run only)
if [ "$BACKEND_ARG" = sqlite ]; then
    DEVD=$T/dev
    "$SBX" kms serve --dev --data-dir "$DEVD" --listen '[::1]:0' --ready-file "$T/ready.dev" >dev.log 2>&1 &
    DEV_PID=$!
    for ((i = 0; i < 300; i++)); do
        [ -s ready.dev ] && break
        kill -0 "$DEV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -s ready.dev ]; then
        DPORT=$(head -n 1 ready.dev)
        dcurl() { curl -sS --max-time 10 --cacert "$DEVD/tls/cert.pem" "$@" 2>/dev/null; }
        out=$(dcurl "https://[::1]:$DPORT/v1/health")
        check "--dev on [::1]: health says dev true" bash -c "printf '%s' '$out' | jq -e '.dev == true and .status == \"ok\"' >/dev/null"
        out=$(dcurl -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sbxt_dev-insecure-admin-token' \
            -H 'Content-Type: application/json' -d '{}' "https://[::1]:$DPORT/v1/keys/dev-k")
        check "--dev: the fixed admin token creates a key (got $out)" [ "$out" = 201 ]
        check "--dev: the start line says insecure" grep -qi 'insecure' dev.log
        kill -TERM "$DEV_PID"
        wait "$DEV_PID"
        check "--dev: SIGTERM exits 0" [ $? -eq 0 ]
    else
        kill -KILL "$DEV_PID" 2>/dev/null
        not_ok "--dev: server did not start"
        sed 's/^/       server: /' dev.log | tail -n 5
    fi
fi

# ================================================================== audit log
LOG=$D/audit.log
run_verify "$LOG"
check "sbx kms audit verify passes after both runs (exit $vrc)" [ "$vrc" -eq 0 ]
[ "$vrc" -eq 0 ] || sed 's/^/       verify: /' verify.err | head -n 3
check "audit.log is 0600" [ "$(stat -c %a "$LOG")" = 600 ]
check "the second run continued the log" [ "$(wc -l <"$LOG")" -gt "$lines1" ]
alllines() { jq -s -e "all(.[]; $1)" "$LOG" >/dev/null 2>&1; }
check "every audit line is a JSON object" alllines 'type == "object"'
check "every audit line has the documented fields" alllines 'has("seq") and has("time") and has("request_id") and has("caller")
    and has("remote") and has("method") and has("path") and has("op") and has("status") and has("outcome") and has("prev") and has("mac")'
check "seq runs 1, 2, 3, ... without gaps" bash -c "[ \"\$(jq -r .seq '$LOG' | tr '\n' ' ')\" = \"\$(seq 1 \$(wc -l <'$LOG') | tr '\n' ' ')\" ]"
check "time is RFC 3339 UTC with milliseconds" alllines '.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z$")'
check "outcome is ok, denied or error" alllines '.outcome | IN("ok", "denied", "error")'
check "request_id is 16 hex characters on every line" alllines '.request_id | test("^[0-9a-f]{16}$")'
check "denied lines are 401 or 403, ok lines below 400" alllines '(.outcome != "denied" or (.status == 401 or .status == 403)) and (.outcome != "ok" or .status < 400)'
# The documented chain, recomputed with Python's own HMAC: audit key = HKDF-SHA-256(root key, no
# salt, info "sbx-kms-audit-chain-v1"); mac = HMAC-SHA-256(audit key, the line up to prev's closing
# quote); prev = the previous line's mac (64 zeros first); the head file "seq mac" of the last line.
python3 - "$LOG" "$D/root.key" >chain.out 2>&1 <<'EOF'
import hashlib, hmac, json, sys
root = bytes.fromhex(open(sys.argv[2]).read().strip())
prk = hmac.new(b"\0" * 32, root, hashlib.sha256).digest()
key = hmac.new(prk, b"sbx-kms-audit-chain-v1\x01", hashlib.sha256).digest()
prev = "0" * 64
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
for n, line in enumerate(lines, 1):
    rec = json.loads(line)
    if rec["prev"] != prev:
        print("line %d: prev %s, expected %s" % (n, rec["prev"], prev)); sys.exit(1)
    body = line[: line.index(b',"mac":"')]
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    if rec["mac"] != mac or not line.endswith(b',"mac":"' + mac.encode() + b'"}'):
        print("line %d: mac %s, expected %s" % (n, rec["mac"], mac)); sys.exit(1)
    prev = mac
head = open(sys.argv[1] + ".head").read()
if head != "%d %s\n" % (len(lines), prev):
    print("head %r, expected %d %s" % (head, len(lines), prev)); sys.exit(1)
print("ok")
EOF
check "each mac is HMAC-SHA-256 under the HKDF audit key, prev the previous mac, the head 'seq mac' ($(tail -n 1 chain.out))" grep -qx ok chain.out
leaks=
while IFS= read -r s; do
    [ -n "$s" ] || continue
    grep -qF -- "$s" "$LOG" && leaks="$leaks ${s:0:12}..."
done <$SECRETS
check "none of $(wc -l <$SECRETS) tokens, plaintexts, data keys, ciphertexts, context values is in audit.log${leaks:+ (found:$leaks)}" [ -z "$leaks" ]
if grep -qE 'sbxt_[A-Za-z0-9_-]{8}|sbx:v[0-9]+:[A-Za-z0-9+/]{8}' "$LOG"; then
    not_ok "nothing shaped like a token (sbxt_...) or a ciphertext (sbx:vN:...) in audit.log"
    grep -E 'sbxt_[A-Za-z0-9_-]{8}|sbx:v[0-9]+:[A-Za-z0-9+/]{8}' "$LOG" | head -n 3 | cut -c 1-400 | sed 's/^/       line: /'
else
    ok "nothing shaped like a token (sbxt_...) or a ciphertext (sbx:vN:...) in audit.log"
fi
leaks=
while IFS= read -r s; do
    [ -n "$s" ] || continue
    [ "$s" = "$ADMIN" ] && continue
    grep -qF -- "$s" server.log && leaks="$leaks ${s:0:12}..."
done <$SECRETS
check "the server's own output holds none of them either${leaks:+ (found:$leaks)}" [ -z "$leaks" ]
for i in "${!A_RID[@]}"; do
    r=${A_RID[$i]}
    filt=${A_FILT[$i]}
    what=${A_WHAT[$i]}
    n=$(jq -c --arg r "$r" 'select(.request_id == $r)' "$LOG" | wc -l)
    if [ -z "$r" ] || [ "$n" -ne 1 ]; then
        not_ok "audit: X-Request-Id '$r' of '$what' is on exactly one line (found $n)"
    elif jq -s -e --arg r "$r" "map(select(.request_id == \$r)) | .[0] | $filt" "$LOG" >/dev/null 2>&1; then
        ok "audit: the line of X-Request-Id $r ($what) matches"
    else
        not_ok "audit: the line of '$what' does not satisfy: $filt"
        echo "       line: $(jq -c --arg r "$r" 'select(.request_id == $r)' "$LOG" | head -c 400)"
    fi
done
check "audit: 401s and 403s are recorded as denied" alllines '(.status != 403 and .status != 401) or .outcome == "denied"'
check "audit: the remote address is 127.0.0.1" alllines '.remote | startswith("127.0.0.1")'
check "audit: paths carry no query string" alllines '.path | contains("?") | not'

# tampering: copies of the log and head
mkdir -p tamper
tcopy() { cp "$LOG" tamper/audit.log && cp "$LOG.head" tamper/audit.log.head; }
tcopy
sed -i '5s/"status":[ ]*[0-9]*/"status":299/' tamper/audit.log
check "tamper: the edit changed line 5" bash -c "! cmp -s '$LOG' tamper/audit.log"
run_verify tamper/audit.log
check "tamper: an edited line 5 fails verify with exit 1 (got $vrc)" [ "$vrc" -eq 1 ]
check "tamper: verify names line 5 or 6 ($(head -n 1 verify.err verify.out 2>/dev/null | grep -v '^==>' | tr '\n' ' ' | head -c 120))" \
    grep -qE 'line (5|6)([^0-9]|$)' verify.err verify.out
tcopy
sed -i '7d' tamper/audit.log
run_verify tamper/audit.log
check "tamper: a deleted line 7 fails verify with exit 1 naming line 7 (got $vrc)" \
    bash -c "[ $vrc -eq 1 ] && grep -qE 'line 7([^0-9]|$)' verify.err verify.out"
tcopy
head -n -2 "$LOG" >tamper/audit.log
run_verify tamper/audit.log
check "tamper: the last 2 lines cut off fails verify with exit 1 (got $vrc)" [ "$vrc" -eq 1 ]
tcopy
python3 - tamper/audit.log <<'EOF'
import sys
p = sys.argv[1]
lines = open(p, "rb").read().split(b"\n")
lines[2], lines[3] = lines[3], lines[2]
open(p, "wb").write(b"\n".join(lines))
EOF
run_verify tamper/audit.log
check "tamper: two lines swapped fails verify with exit 1 (got $vrc)" [ "$vrc" -eq 1 ]
run_verify tamper/nonexistent.log
check "verify of a missing file fails (exit $vrc, not 0)" [ "$vrc" -ne 0 ]
check "sanitizer reports in the server output: none" bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' server.log dev.log 2>/dev/null"

echo
echo "# $HEALTH_STORAGE run took $((SECONDS - START)) s"
finish
