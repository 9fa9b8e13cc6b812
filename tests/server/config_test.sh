#!/usr/bin/env bash
# tests/server/config_test.sh - `sbx kms serve --config FILE`: every key of the
# file takes effect, flags override the file, an unknown key, a bad value, a
# section and a malformed line are errors naming FILE:LINE (exit 2, nothing
# started); SIGHUP serves a new certificate to new connections while an open
# keep-alive connection completes another request on the old one, and the log
# says what changed (live settings applied, the others waiting for a restart).
#
#   bash tests/server/config_test.sh build/sbx
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, openssl, python3.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/server_test.sh
. "$HERE/../lib/server_test.sh" "$@"
require_tools curl openssl python3

kms_test_dir config
CHECK_LOG=server.log

# mkcert NAME CN: a self-signed P-256 certificate NAME.pem (SAN localhost, 127.0.0.1), key NAME.key
mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
mkcert a "cert A" && mkcert b "cert B" && mkcert ca "Config test client CA" ||
    fatal "openssl could not make the test certificates"
fpr() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }
served() { # the SHA-256 fingerprint of the certificate 127.0.0.1:$PORT serves
    openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}
# start_conf LOG ARGS...: `sbx kms serve ARGS` in the background (output to LOG), waiting for
# the ready file ./ready (which the configuration names); sets SRV_PID and PORT.
start_conf() {
    local log=$1 i
    shift
    rm -f ready
    "$SBX" kms serve "$@" >>"$log" 2>&1 &
    SRV_PID=$!
    for ((i = 0; i < 300; i++)); do
        [ -s ready ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -s ready ] || { kms_kill; return 1; }
    PORT=$(head -n 1 ready)
    URL=https://127.0.0.1:$PORT
}

# ================================================================ every key from the file
mkdir -p cfg
cat >cfg/kms.conf <<CONF
# sbx kms serve configuration (libinih grammar)
; a comment of the other kind
listen = 127.0.0.1:0
data-dir = $T/data
storage = sqlite:$T/other.db
tls-cert = $T/a.pem
tls-key  = $T/a.key
client-ca = $T/ca.pem
threads = 3
max-body = 4K
timeout = 1
audit-fail-closed = true
ready-file = $T/ready
log-level = info
dev = false
CONF
check "the server starts from the configuration file alone" start_conf server.log --config cfg/kms.conf ||
    fatal "sbx kms serve --config did not start"
check "listen, ready-file: it answers on the port of the ready file" \
    [ "$(curl -sS --cacert a.pem --resolve "localhost:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' "https://localhost:$PORT/v1/health")" = 200 ]
check "data-dir: the data directory is made there" bash -c "[ -s data/root.key ] && [ -s data/admin.token ]"
check "storage: the database is the one named" bash -c "[ -s other.db ] && [ ! -e data/kms.db ]"
check "tls-cert, tls-key: the configured certificate is served" [ "$(served)" = "$(fpr a.pem)" ]
check "client-ca: the server asks for client certificates of that CA" bash -c \
    "openssl s_client -connect 127.0.0.1:$PORT </dev/null 2>/dev/null | grep -q 'Config test client CA'"
check "threads: 3 event loops" grep -q '"msg":"listening".*"threads":"3"' server.log
head -c 5000 /dev/zero | tr '\0' a >big.json
ADMIN=$(tr -d '\r\n' <data/admin.token)
code=$(curl -sS --cacert a.pem --resolve "localhost:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' --data-binary @big.json \
    "https://localhost:$PORT/v1/keys/x")
check "max-body: 4K, a 5000-byte body is refused with 413 (got $code)" [ "$code" = 413 ]
idle=$(python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
t = time.monotonic()
try:
    while s.recv(4096):
        pass
    print("closed")
except socket.timeout:
    print("open")
PY
)
check "timeout: 1 s, an idle connection is closed well before the default 10 s ($idle)" [ "$idle" = closed ]
check "log-level info: info lines are written" grep -q '"level":"info"' server.log
check "dev = false: not in --dev mode" bash -c "! grep -q INSECURE server.log"
kms_stop
check "audit-fail-closed: accepted (the server ran and stopped cleanly, rc $srv_rc)" [ "$srv_rc" = 0 ]

# unseal-passphrase-file and dev, each in a run of its own
printf 'correct horse battery staple\n' >pass.txt
printf 'listen = 127.0.0.1:0\ndata-dir = %s/sealed\nready-file = %s/ready\nunseal-passphrase-file = %s/pass.txt\n' \
    "$T" "$T" "$T" >cfg/sealed.conf
check "unseal-passphrase-file: the server starts" start_conf sealed.log --config cfg/sealed.conf
check "unseal-passphrase-file: no root.key is written" bash -c "[ ! -e sealed/root.key ] && [ -s sealed/admin.token ]"
kms_stop
printf 'listen = 127.0.0.1:0\nready-file = %s/ready\ndev = true\ndata-dir = %s/devdir\n' "$T" "$T" >cfg/dev.conf
check "dev = true: the server starts" start_conf dev.log --config cfg/dev.conf
check "dev = true: --dev mode, labelled insecure" grep -q 'INSECURE --dev mode' dev.log
kms_stop

# ================================================================ flags override the file
printf 'threads = 3\nlisten = 127.0.0.1:1\nlog-level = warn\ndata-dir = /nonexistent/nowhere\n' >cfg/prec.conf
check "flags override the file (listen, data-dir, threads, log-level)" \
    kms_start "$D" prec.log --config cfg/prec.conf --threads 2 --log-level info
check "--threads 2 wins over threads = 3" grep -q '"msg":"listening".*"threads":"2"' prec.log
check "--log-level info wins over log-level = warn" grep -q '"level":"info"' prec.log
kms_stop
printf 'log-level = warn\n' >cfg/warn.conf
check "the file's log-level applies when no flag is given" kms_start "$D" warn.log --config cfg/warn.conf
check "log-level = warn: no info lines" bash -c "! grep -q '\"level\":\"info\"' warn.log"
kms_stop

# ================================================================ errors name the line
bad() { # bad NAME LINE CONTENT PATTERN: the file CONTENT is refused, naming bad.conf:LINE
    printf '%b' "$3" >cfg/bad.conf
    "$SBX" kms serve --config cfg/bad.conf --data-dir "$T/never" --listen 127.0.0.1:0 >out 2>err
    local rc=$?
    check "$1: exit 2 (got $rc)" [ "$rc" = 2 ]
    check "$1: the error names cfg/bad.conf:$2" grep -q "cfg/bad.conf:$2: .*$4" err
    check "$1: nothing was started" [ ! -e "$T/never" ]
}
bad "an unknown key" 3 '# c\nthreads = 2\nlisten-on = 127.0.0.1:1\n' "unknown key 'listen-on'"
bad "a bad number" 2 'timeout = 5\ntimeout = 0\n' "timeout takes seconds"
bad "a bad byte count" 1 'max-body = 1T\n' "max-body takes a byte count"
bad "a bad boolean" 4 '\n\n\ndev = yes\n' "dev takes true or false"
bad "a bad log level" 1 'log-level = loud\n' "log-level takes error, warn, info or debug"
bad "a key under a section" 3 'threads = 2\n[server]\nthreads = 3\n' "sections"
bad "a line without =" 2 'threads = 2\njust some words\n' "not a key = value line"
bad "config inside the file" 1 'config = other.conf\n' "config cannot be set"
bad "an empty value" 1 'listen =\n' "listen needs a value"
"$SBX" kms serve --config "$T/missing.conf" >out 2>err
rc=$?
check "a missing configuration file: exit 2 (got $rc), named" bash -c "[ $rc = 2 ] && grep -q 'missing.conf' err"
"$SBX" kms serve --log-level loud >out 2>err
rc=$?
check "--log-level loud: a usage error (got $rc)" bash -c "[ $rc = 2 ] && grep -q 'log-level takes' err"

# ================================================================ SIGHUP: a new certificate
cp a.pem live.pem && cp a.key live.key
printf 'tls-cert = %s/live.pem\ntls-key = %s/live.key\nlog-level = info\nthreads = 2\n' "$T" "$T" >cfg/hup.conf
check "the server starts with certificate A" kms_start "$D" hup.log --config cfg/hup.conf ||
    fatal "the SIGHUP server did not start"
# The same reload also changes log-level (live) and threads (needs a restart).
printf 'tls-cert = %s/live.pem\ntls-key = %s/live.key\nlog-level = debug\nthreads = 3\n' "$T" "$T" >cfg/hup.conf
python3 "$HERE/tls_reload.py" "$PORT" "$SRV_PID" hup.log b.pem b.key live.pem live.key >reload.out 2>reload.err
CHECK_SHOW=reload.err
check "the open connection's first request: 200" grep -qx 'old-status 200' reload.out
check "the open connection got certificate A" grep -qx "old-before $(fpr a.pem)" reload.out
check "after SIGHUP a new connection gets certificate B" grep -qx "new $(fpr b.pem)" reload.out
check "the new connection is answered (200)" grep -qx 'new-status 200' reload.out
check "the open connection completes another request after the reload (200)" grep -qx 'old-after 200' reload.out
CHECK_SHOW=
check "the log says SIGHUP was received" grep -q '"msg":"SIGHUP received: reloading"' hup.log
check "the log names the changed live setting and the new fingerprint" \
    grep -q "\"msg\":\"reloaded.*\"changed\":\"log-level\".*\"fingerprint\":\"$(openssl x509 -in b.pem -noout -fingerprint -sha256 | sed 's/.*=//')\"" hup.log
check "the log names a setting that waits for a restart" \
    grep -q '"level":"warn".*next restart.*"settings":"threads"' hup.log
check "the server still runs" kill -0 "$SRV_PID"
# A certificate that does not load: logged, the running one stays.
printf 'not a certificate\n' >live.pem
kill -HUP "$SRV_PID"
check "a bad certificate on SIGHUP is logged as an error" kms_wait_lines '"msg":"reload failed' hup.log
check "... and the previous certificate is still served" [ "$(served)" = "$(fpr b.pem)" ]
printf 'bogus = 1\n' >cfg/hup.conf
kill -HUP "$SRV_PID"
check "a bad configuration on SIGHUP is logged with its line" kms_wait_lines 'hup.conf:1: unknown key' hup.log
check "... and the server keeps serving" [ "$(served)" = "$(fpr b.pem)" ]
kms_stop
check "SIGTERM after the reloads: exit 0 (got $srv_rc)" [ "$srv_rc" = 0 ]

check "no sanitizer reports in the server output" \
    bash -c "! grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' ./*.log"

finish
