#!/usr/bin/env bash
# tests/server/hardening_test.sh - request smuggling, audit gaps and the keyed
# audit chain of `sbx kms serve`, over real TLS.
#
#   bash tests/server/hardening_test.sh build/sbx
#
# Framing: raw requests through tests/server/raw_tls.py (a Python ssl socket:
# no HTTP library in between, so malformed framing reaches the server as
# sent). Every ambiguous head is answered with a JSON error and
# Connection: close, and a request hidden behind it is never answered.
# Routing on the raw path (%2F), 413 at once, audit lines for requests
# refused before routing, batch items in the audit line. Then `sbx kms audit
# verify` on the server's own log (root key of the data directory, an
# exported audit key file), on an edited log whose SHA-256 chain was
# recomputed (must fail), on a log written before keyed chains (verifies,
# reported unkeyed) and on an empty log without its head file (must fail).
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, jq, python3 (/usr/bin/python3), coreutils.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/server_test.sh
. "$HERE/../lib/server_test.sh" "$@"
PY=/usr/bin/python3
require_tools curl jq "$PY"
kms_test_dir hardening # T, D; cd "$T"; removed at exit
CHECK_LOG=server.log
MAX_BODY=4096

kms_start "$D" server.log --max-body "$MAX_BODY" --timeout 5 || fatal "the server did not start"
ADMIN=$(tr -d '\r\n' <"$D/admin.token")

# raw NAME BYTES (printf %b escapes): sends BYTES over TLS; the answer in raw.out, the
# time to its first byte in raw.err, the exit status (0: the server closed) in $raw_rc.
raw() {
    printf '%b' "$1" | "$PY" "$HERE/raw_tls.py" "$PORT" "$CA" >raw.out 2>raw.err
    raw_rc=$?
}
# answers: the status codes of the responses in raw.out, space-separated.
answers() { grep -aoE 'HTTP/1\.1 [0-9]{3}' raw.out | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//'; }
body_json() { grep -aoE '\{"error":.*\}' raw.out | head -n 1; }
audit_last() { tail -n 1 "$D/audit.log"; }

# audited NAME BYTES STATUS JQ: sends BYTES; exactly one answer, STATUS, and exactly one new
# audit line, which satisfies JQ.
audited() {
    local before
    before=$(wc -l <"$D/audit.log")
    raw "$2"
    check "$1: one answer, $3 (got '$(answers)')" [ "$(answers)" = "$3" ]
    check "$1: one audit line ($(audit_last | cut -c1-160))" \
        bash -c "[ \$(wc -l <'$D/audit.log') -eq $((before + 1)) ] && tail -n 1 '$D/audit.log' | jq -e '$4' >/dev/null"
}

# refused NAME BYTES STATUS NEEDLE: audited with an error line, and the answer is a JSON error
# holding NEEDLE with Connection: close, and the server closes the connection.
refused() {
    audited "$1" "$2" "$3" ".status == $3 and .outcome == \"error\""
    check "$1: a JSON error naming it ($(body_json))" \
        bash -c "grep -aoE '\\{\"error\":.*\\}' raw.out | jq -e --arg n '$4' '.error | contains(\$n)' >/dev/null"
    check "$1: Connection: close, and the server closes (rc $raw_rc)" \
        bash -c "grep -aqi '^Connection: close' raw.out && [ $raw_rc -eq 0 ]"
}

# ================================================================== request smuggling
SMUGGLED='GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'
refused "two Content-Length headers (a request hidden in the body)" \
    "POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n$SMUGGLED" \
    400 "repeated Content-Length"
check "the hidden request was not answered" bash -c "! grep -aq '\"status\":\"ok\"' raw.out"
refused "Content-Length: +2" 'POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}' \
    400 "malformed Content-Length"
refused "Content-Length : 2 (space before the colon)" \
    'POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}' 400 "no space before the colon"
refused "Content-Length with Transfer-Encoding" \
    'POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
    400 "Content-Length with Transfer-Encoding"
refused "Transfer-Encoding alone" \
    'POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' 411 "Content-Length"
refused "obs-fold (a continuation line)" \
    'POST /v1/keys/a HTTP/1.1\r\nHost: x\r\nX-A: b\r\n Content-Length: 2\r\n\r\n{}' 400 "obs-fold"
refused "a bare CR in a header" 'GET /v1/health HTTP/1.1\r\nHost: x\rContent-Length: 2\r\n\r\n{}' \
    400 "CR"
refused "a body on TRACE (evhttp would read it as the next request)" \
    "TRACE /v1/keys HTTP/1.1\r\nContent-Length: 38\r\n\r\n$SMUGGLED" 400 "HEAD or TRACE"
refused "an unknown method" 'BREW /v1/keys HTTP/1.1\r\n\r\n' 501 "not implemented"

# a good request, then a bad one on the same connection: the first is answered, then the refusal
raw "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx$SMUGGLED"
check "pipelined: the good request is answered, then the bad one refused (got '$(answers)')" \
    [ "$(answers)" = "200 400" ]

# 413 at once: the client sends the head and part of the body, then waits (no Expect)
refused "a body over --max-body, sent without Expect: 100-continue" \
    "POST /v1/keys/a/datakey HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"a\":" \
    413 "over $MAX_BODY bytes"
first=$(sed -n 's/^first byte after \([0-9.]*\) s$/\1/p' raw.err)
check "the 413 comes at once, not after the timeout (first byte after ${first:-?} s)" \
    bash -c "[ -n '$first' ] && awk 'BEGIN { exit !($first < 2.5) }'"
code=$(curl -sS -o body413 -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' --data-binary @<(head -c 10000 /dev/zero | tr '\0' ' ') \
    "$URL/v1/keys/a/datakey" 2>/dev/null)
check "curl: 413 with a JSON error (got $code, $(head -c 100 body413))" \
    bash -c "[ '$code' = 413 ] && jq -e '.error' body413 >/dev/null"

# ================================================================== routing on the raw path
curl -sS -o /dev/null --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{}' "$URL/v1/keys/alpha"
raw "POST /v1/keys/alpha%2frotate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
check "POST /v1/keys/alpha%2frotate does not reach rotate: 400 bad key name (got '$(answers)')" \
    bash -c "[ '$(answers)' = 400 ] && grep -aq 'key name' raw.out"
check "... audited as a create of the raw path" \
    bash -c "audit=\$(tail -n 1 '$D/audit.log'); jq -e '.op == \"create\" and .path == \"/v1/keys/alpha%2frotate\" and .status == 400' <<<\"\$audit\" >/dev/null"
v=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" "$URL/v1/keys/alpha" | jq -r '.latest_version // .current_version // .version // empty')
check "alpha was not rotated (version ${v:-?})" [ "${v:-1}" = 1 ]

# ================================================================== every request is audited
audited "GET *" 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 400 '.method == "GET" and .path == "*" and .status == 400'
audited "TRACE /v1/keys" 'TRACE /v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 405 '.method == "TRACE" and .status == 405'
audited "a path with %00" 'GET /v1/keys/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 400 '.path == "/v1/keys/a%00b" and (.error | contains("NUL"))'

# a batch: one line, each item's outcome
curl -sS -o /dev/null --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -X PUT -d '{"rules": [{"keys": "alpha", "ops": ["datakey-wrapped"]}]}' "$URL/v1/policies/wrapped"
TW=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"name": "tw", "policies": ["wrapped"], "ttl": 3600}' "$URL/v1/tokens" | jq -r '.token')
before=$(wc -l <"$D/audit.log")
out=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $TW" -H 'Content-Type: application/json' \
    -d '{"batch_input": [{"wrapped_only": true}, {}, {"bits": 7, "wrapped_only": true}]}' "$URL/v1/keys/alpha/datakey")
check "a batch with a denied item answers 200 with per-item results" \
    jq -e '.batch_results | length == 3 and (.[1].status == 403)' <<<"$out" >/dev/null
check "the batch is one audit line" [ "$(wc -l <"$D/audit.log")" -eq $((before + 1)) ]
check "its items record each outcome: ok, denied, error ($(audit_last | jq -c '[.items[]?.outcome]'))" \
    bash -c "tail -n 1 '$D/audit.log' | jq -e '[.items[].outcome] == [\"ok\", \"denied\", \"error\"] and .items[1].op == \"datakey\" and .status == 200' >/dev/null"

kms_stop
check "the server stops cleanly (exit $srv_rc)" [ "$srv_rc" -eq 0 ]

# ================================================================== the keyed audit chain
LOG=$D/audit.log
verify() { # the exit status lands in $vrc
    "$SBX" kms audit verify "$@" >verify.out 2>&1
    vrc=$?
}
verify --data-dir "$D"
check "verify --data-dir: intact, keyed ($(cat verify.out))" \
    bash -c "[ $vrc -eq 0 ] && grep -qE '^audit log intact: [0-9]+ lines, keyed' verify.out"
check "every line carries a mac" bash -c "jq -se 'all(has(\"mac\"))' '$LOG' >/dev/null"
"$SBX" kms audit export-key --data-dir "$D" "$T/audit.key" >export.out 2>&1
check "export-key writes a 0600 key file ($(cat export.out | head -c 120))" \
    bash -c "[ \"\$(stat -c %a '$T/audit.key')\" = 600 ] && grep -qE '^[0-9a-f]{64}$' '$T/audit.key'"
check "export-key refuses to overwrite" bash -c "! '$SBX' kms audit export-key --data-dir '$D' '$T/audit.key' 2>/dev/null"
mkdir -p copy && cp "$LOG" "$LOG.head" copy/ # away from the root key
verify --key-file "$T/audit.key" copy/audit.log
check "verify --key-file (an exported audit key) on a copy: intact ($(cat verify.out))" \
    bash -c "[ $vrc -eq 0 ] && grep -q 'keyed' verify.out"
verify copy/audit.log
check "verify without any key refuses the keyed log ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -q 'key-file' verify.out"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/wrong.key" && echo >>"$T/wrong.key" && chmod 600 "$T/wrong.key"
verify --key-file "$T/wrong.key" copy/audit.log
check "verify with another key fails ($(cat verify.out))" bash -c "[ $vrc -eq 1 ] && grep -q 'mac does not match' verify.out"

# the attack: edit one line, recompute the SHA-256 chain (prev) and the head, as before keyed
# chains; with "strip", also remove every mac so that the log looks older than keyed chains
forge_unkeyed_chain() { # LOG [strip]
    "$PY" - "$@" <<'EOF'
import hashlib, re, sys
path, strip = sys.argv[1], sys.argv[2:] == ["strip"]
lines = open(path, "rb").read().split(b"\n")[:-1]
lines[2] = lines[2].replace(b'"request_id":"', b'"request_id":"x', 1)
prev = "0" * 64
out = []
for l in lines:
    if strip:
        l = re.sub(rb',"mac":"[0-9a-f]{64}"', b"", l)
    i = l.index(b'"prev":"') + 8
    l = l[:i] + prev.encode() + l[i + 64:]
    out.append(l)
    prev = hashlib.sha256(l).hexdigest()
open(path, "wb").write(b"\n".join(out) + b"\n")
open(path + ".head", "w").write("%d %s\n" % (len(out), prev))
EOF
}
forge_unkeyed_chain copy/audit.log
verify --key-file "$T/audit.key" copy/audit.log
check "an edited line with a recomputed unkeyed chain fails ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -qE 'line [0-9]+: (prev|mac) does not match' verify.out"

# the same attack with every mac stripped
mkdir -p stripped && cp "$LOG" "$LOG.head" stripped/
forge_unkeyed_chain stripped/audit.log strip
verify --key-file "$T/audit.key" stripped/audit.log
check "an edited line with macs stripped and an unkeyed chain recomputed fails ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -q 'no line carries a mac' verify.out"
verify stripped/audit.log
check "... also without any key ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -q 'no line carries a mac' verify.out"

# a log written before keyed chains: verifies with --allow-unkeyed, reported unkeyed
mkdir -p old
"$PY" - old/audit.log <<'EOF'
import hashlib, sys
path = sys.argv[1]
prev = "0" * 64
out = []
for i in (1, 2, 3):
    l = ('{"seq":%d,"time":"2026-01-01T00:00:00.000Z","request_id":"%016x","caller":"anonymous",'
         '"remote":"::1","method":"GET","path":"/v1/health","op":"health","status":200,'
         '"outcome":"ok","prev":"%s"}' % (i, i, prev)).encode()
    out.append(l)
    prev = hashlib.sha256(l).hexdigest()
open(path, "wb").write(b"\n".join(out) + b"\n")
open(path + ".head", "w").write("3 %s\n" % prev)
EOF
verify --key-file "$T/audit.key" old/audit.log
check "a log with no keyed line fails by default: its macs may have been stripped ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -q 'no line carries a mac' verify.out && grep -q -- --allow-unkeyed verify.out"
verify --key-file "$T/audit.key" --allow-unkeyed old/audit.log
check "an old-format log verifies with --allow-unkeyed, reported unkeyed ($(cat verify.out))" \
    bash -c "[ $vrc -eq 0 ] && grep -q 'all 3 unkeyed' verify.out"
verify --key-file "$T/audit.key" --allow-unkeyed --require-keyed old/audit.log
check "--allow-unkeyed with --require-keyed is a usage error" bash -c "[ $vrc -eq 2 ]"
verify --key-file "$T/audit.key" --require-keyed old/audit.log
check "... and fails with --require-keyed ($(cat verify.out))" bash -c "[ $vrc -eq 1 ] && grep -q 'no mac' verify.out"

# an empty log without its head file
mkdir -p empty && : >empty/audit.log
verify --key-file "$T/audit.key" empty/audit.log
check "an empty log without its head file does not verify ($(cat verify.out))" \
    bash -c "[ $vrc -eq 1 ] && grep -q 'head file' verify.out"

finish
