#!/usr/bin/env bash
# tests/kms/kms_cli_test.sh - the sbx kms client commands against a real
# `sbx kms serve` (root key, TLS certificate and admin token in its data
# directory): every command in both output forms (tables, --json), and the
# failures: no token, wrong token, revoked token, 403, 404, 409, a bad
# policy file, a server that is down, no server named, bad usage. Exit
# status 1 for failures, 2 for usage errors; messages name the server, the
# HTTP status and the server's message.
#
#   bash tests/kms/kms_cli_test.sh build/sbx
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, jq, openssl, base64, python3, coreutils.
set -uo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=../lib/kms.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kms.sh"
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
for tool in jq openssl base64 python3; do
    command -v "$tool" >/dev/null || fatal "$tool not found"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-kms-cli-test.XXXXXX")
trap 'kms_kill; [ -z "${ODD_PID:-}" ] || kill "$ODD_PID" 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 2
umask 077
unset SBX_KMS_TOKEN SBX_KMS_TOKEN_FILE SBX_KMS_CACERT SBX_KMS_FINGERPRINT SBX_KMS_URL \
    SBX_KMS_CLIENT_CERT SBX_KMS_CLIENT_KEY SBX_KMS_FAILOVER
CHECK_SHOW=err
CHECK_LOG=$T/srv.log

kms_start "$T/srv" "$T/srv.log" --threads 2 || fatal "the key server starts"
ADMIN=$T/srv/admin.token
[ -s "$ADMIN" ] && [ -s "$CA" ] || fatal "the server wrote admin.token and tls/cert.pem"
export SBX_KMS_URL="$URL, https://other.invalid:8443" SBX_KMS_CACERT=$CA SBX_KMS_TOKEN_FILE=$ADMIN

# k ARGS...: sbx kms ARGS, stdout in out, stderr in err, exit status in rc.
# E (optional, word-split): arguments of env(1) for this run, e.g. E="-u VAR".
k() {
    # shellcheck disable=SC2086
    env ${E:-} "$SBX" kms "$@" >out 2>err
    rc=$?
}
# ok_run NAME ARGS...: exit 0 and nothing on stderr.
ok_run() {
    local name=$1
    shift
    k "$@"
    if [ "$rc" -ne 0 ] || [ -s err ]; then not_ok "$name (exit $rc)"; else ok "$name"; fi
}
# has NAME PATTERN: stdout matches PATTERN (grep -E).
has() { check "  $1" grep -Eq -- "$2" out; }
# jqt NAME FILTER: jq -e FILTER holds on stdout (one JSON value).
jqt() { check "  $1" bash -c 'jq -e "$1" out >/dev/null' _ "$2"; }
# fails NAME STATUS PATTERN ARGS...: exit STATUS (1 or 2), PATTERN on stderr, nothing on stdout.
fails() {
    local name=$1 want=$2 pat=$3
    shift 3
    k "$@"
    if [ "$rc" -ne "$want" ]; then
        not_ok "$name (exit $rc, expected $want)"
    elif ! grep -Eq -- "$pat" err; then
        not_ok "$name (stderr does not match '$pat')"
    elif [ -s out ]; then
        not_ok "$name (something on stdout)"
    else
        ok "$name"
    fi
}
# A server error names the server, the request, the HTTP status and the server's message.
srv() { printf 'key server %s: %s: HTTP %s: %s' "$URL" "$1" "$2" "$3"; }

# ------------------------------------------------------------------ status
ok_run "status" status
has "names the server" "^server +$URL\$"
has "reads the health answer" '^status +ok$'
ok_run "status --json" status --json
jqt "is the server's JSON" '.status == "ok" and .storage == "sqlite" and .dev == false'

# ------------------------------------------------------------------ keys
ok_run "key create" key create app
has "a key table" '^name +app$'
has "  with its versions" '^1 +[0-9-]+ [0-9:]+ UTC +active$'
ok_run "key create --auto-rotate --json" key create auto --auto-rotate 86400 --json
jqt "is the server's key metadata" '.name == "auto" and .auto_rotate_period == 86400'
fails "key create of an existing key: 409" 1 "$(srv 'POST /v1/keys/app' 409 'a key named app exists')" \
    key create app
fails "  and with --json" 1 'HTTP 409' key create app --json
ok_run "key show" key show app
has "a key table" '^latest version +1$'
ok_run "key show --json" key show app --json
jqt "is the server's JSON" '.name == "app" and .latest_version == 1 and (.versions | length) == 1'
fails "key show of a missing key: 404" 1 "$(srv 'GET /v1/keys/nope' 404 'no key named nope')" \
    key show nope
fails "  and with --json" 1 'HTTP 404: no key named nope' key show nope --json
ok_run "key list" key list
check "  one name a line under a header" diff <(printf 'NAME\napp\nauto\n') out
ok_run "key list --json" key list --json
jqt "is the server's JSON" '.keys == ["app", "auto"]'
ok_run "key list --prefix" key list --prefix au --json
jqt "lists the matching keys" '.keys == ["auto"]'
ok_run "key rotate" key rotate app
has "the new latest version" '^latest version +2$'
ok_run "key rotate --json" key rotate auto --json
jqt "is the server's JSON" '.latest_version == 2'
ok_run "key config" key config app --min-decryption-version 2
has "the new minimum" '^min decryption version +2$'
ok_run "key config --json" key config app --auto-rotate 0 --min-decryption-version 1 --json
jqt "is the server's JSON" '.min_decryption_version == 1 and .auto_rotate_period == 0'
fails "key config without a setting: usage" 2 'give --min-decryption-version' key config app
ok_run "key destroy-version" key destroy-version app 1
has "the version is destroyed" '^1 +.* +destroyed$'
ok_run "key destroy-version --json" key destroy-version auto 1 --json
jqt "is the server's JSON" '.versions[0].state == "destroyed"'
fails "destroying the latest version: 409" 1 \
    "$(srv 'POST /v1/keys/app/versions/2/destroy' 409 'version 2 is the latest')" \
    key destroy-version app 2
fails "destroy-version with a bad VERSION: usage" 2 'VERSION must be a number' \
    key destroy-version app x
ok_run "key delete" key delete auto --delay 3600
has "the deletion time" '^deletion time +[0-9-]+ [0-9:]+ UTC$'
ok_run "key restore" key restore auto
has "no deletion scheduled" '^deletion time +none scheduled$'
ok_run "key delete --json" key delete auto --json
jqt "is the server's JSON" '.deletion_time > 0'
ok_run "key restore --json" key restore auto --json
jqt "is the server's JSON" '.deletion_time == 0'
fails "restoring a key that is not being deleted: 409" 1 \
    "$(srv 'POST /v1/keys/auto/restore' 409 'key auto is not scheduled for deletion')" key restore auto

# ------------------------------------------------------------------ data plane
ok_run "datakey" datakey app --context app=billing
has "the key version" '^key version +2$'
has "the wrapped key" '^ciphertext +sbx:v2:'
has "the plaintext key" '^plaintext +[A-Za-z0-9+/]{43}=$'
ok_run "datakey --json --bits 128" datakey app --bits 128 --json
check "  a 16-byte data key" bash -c '[ "$(jq -r .plaintext out | base64 -d | wc -c)" -eq 16 ]'
ok_run "datakey --wrapped-only" datakey app --wrapped-only
check "  no plaintext" bash -c '! grep -q plaintext out && grep -q "^ciphertext" out'
ok_run "datakey --wrapped-only --json" datakey app --wrapped-only --json
jqt "is the server's JSON" 'has("plaintext") | not'
fails "datakey --bits 100: usage" 2 'data keys are 128, 256 or 512 bits' datakey app --bits 100

printf 'secret\0bytes\n\377' >plain.bin
"$SBX" kms encrypt app --context a=b <plain.bin >ct.txt 2>err
check "encrypt: standard input to the ciphertext text" grep -Eqx 'sbx:v2:[A-Za-z0-9+/=]+' ct.txt
"$SBX" kms decrypt app --context a=b <ct.txt >back.bin 2>err
check "decrypt gives back the raw bytes" cmp -s plain.bin back.bin
fails "decrypt with another context: 400" 1 \
    "$(srv 'POST /v1/keys/app/decrypt' 400 'ciphertext does not authenticate')" \
    decrypt app --context a=c <ct.txt
k encrypt app --json <plain.bin
jqt "encrypt --json is the server's JSON" '.key_version == 2 and (.ciphertext | startswith("sbx:v2:"))'
jq -r .ciphertext out >ct2.txt
k decrypt app --json <ct2.txt
jqt "decrypt --json is the server's JSON (base64 plaintext)" '.key_version == 2'
check "  whose plaintext is the input" cmp -s plain.bin <(jq -r .plaintext out | base64 -d)
fails "decrypt of text that is not one ciphertext" 1 'must hold one ciphertext' \
    decrypt app <<<'two words'
fails "encrypt to a missing key: 404" 1 "$(srv 'POST /v1/keys/nope/encrypt' 404 'no key named nope')" \
    encrypt nope <plain.bin
ok_run "key rotate (for rewrap)" key rotate app
"$SBX" kms rewrap app --context a=b <ct.txt >ct3.txt 2>err
check "rewrap: the ciphertext under the latest version" grep -Eqx 'sbx:v3:[A-Za-z0-9+/=]+' ct3.txt
"$SBX" kms decrypt app --context a=b <ct3.txt >back3.bin 2>err
check "  which decrypts to the same bytes" cmp -s plain.bin back3.bin
k rewrap app --context a=b --json <ct.txt
jqt "rewrap --json is the server's JSON" '.key_version == 3 and (has("plaintext") | not)'

# ------------------------------------------------------------------ policies
cat >ro.json <<'EOF'
{"rules": [{"keys": "app", "ops": ["read", "list"]}]}
EOF
ok_run "policy put" policy put ro ro.json
has "the rules" '^app +read, list$'
ok_run "policy put --json (from standard input)" policy put wide - --json <<'EOF'
{"rules": [{"keys": "*", "ops": ["*"]}]}
EOF
jqt "is the server's JSON" '.rules[0].keys == "*"'
ok_run "policy get" policy get ro
has "names the policy" '^policy ro$'
has "the rules" '^app +read, list$'
ok_run "policy get --json" policy get ro --json
jqt "is the server's JSON" '.rules == [{"keys": "app", "ops": ["read", "list"]}]'
ok_run "policy list" policy list
check "  one name a line" diff <(printf 'POLICY\nro\nwide\n') out
ok_run "policy list --json" policy list --json
jqt "is the server's JSON" '.policies == ["ro", "wide"]'
printf '{"rules": [\n' >bad.json
fails "policy put of a file that is not JSON" 1 'policy file bad.json: not JSON: line 2' \
    policy put bad bad.json
fails "  and with --json" 1 'policy file bad.json: not JSON' policy put bad bad.json --json
fails "policy put of a missing file" 1 'no-such.json' policy put bad no-such.json
fails "policy put of rules the server refuses: 400" 1 "$(srv 'PUT /v1/policies/bad' 400 '')" \
    policy put bad - <<<'{"rules": [{"keys": "*", "ops": ["fly"]}]}'
ok_run "policy delete" policy delete wide
has "says so" '^deleted policy wide$'
fails "policy get of a deleted policy: 404" 1 'HTTP 404' policy get wide
ok_run "policy put (again)" policy put wide - <<<'{"rules": [{"keys": "*", "ops": ["*"]}]}'
ok_run "policy delete --json: the server's empty answer" policy delete wide --json
check "  nothing on stdout" test ! -s out

# ------------------------------------------------------------------ tokens
ok_run "token create" token create reader --policy ro --ttl 3600
has "the token" '^token +sbxt_[A-Za-z0-9_-]{43}$'
has "its expiry" '^expires +[0-9-]+ [0-9:]+ UTC$'
ok_run "token create --json" token create admin2 --admin --json
jqt "is the server's JSON" '(.token | startswith("sbxt_")) and (.id | length) == 16 and .expires == 0'
ADMIN2_ID=$(jq -r .id out)
ok_run "token create -o FILE" token create ro -o ro.token --policy ro
has "the table does not show the token" '^token +\(written to ro.token\)$'
check "  the file holds the token, mode 0600" \
    bash -c 'grep -Eqx "sbxt_[A-Za-z0-9_-]{43}" ro.token && [ "$(stat -c %a ro.token)" = 600 ]'
RO_ID=$(grep '^id ' out | awk '{print $2}')
fails "-o FILE that cannot be written: the token's id to revoke" 1 \
    'the token was created but not saved: revoke it with sbx kms token revoke [0-9a-f]{16}' \
    token create lost -o no-such-dir/x.token
fails "-o with --json: usage" 2 'do not go together' token create x -o x.token --json
ok_run "token list" token list
has "a header" '^ID +NAME +POLICIES +ADMIN +CREATED +EXPIRES$'
has "the read-only token" "^$RO_ID +ro +ro +false +"
ok_run "token list --json" token list --json
jqt "is the server's JSON" "[.tokens[] | select(.id == \"$RO_ID\")] | .[0].policies == [\"ro\"]"
check "  no token value in the list" bash -c '! grep -q sbxt_ out'

# ------------------------------------------------------------------ auth failures
E="-u SBX_KMS_TOKEN_FILE" fails "no token: 401" 1 \
    "$(srv 'GET /v1/keys/app' 401 'authentication required')" key show app
E="-u SBX_KMS_TOKEN_FILE" fails "  and with --json" 1 'HTTP 401' key list --json
fails "an empty token file" 1 'token file /dev/null: empty first line' \
    key show app --kms-token-file /dev/null
echo sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA >wrong.token
fails "a wrong token: 401" 1 "$(srv 'GET /v1/keys' 401 'unknown or revoked token')" \
    key list --kms-token-file wrong.token
fails "  and with --json" 1 'HTTP 401' key list --json --kms-token-file wrong.token
ok_run "the read-only token reads" key show app --kms-token-file ro.token
fails "a token whose policy does not allow it: 403" 1 \
    "$(srv 'POST /v1/keys/app/rotate' 403 'token "ro" is not allowed to rotate')" \
    key rotate app --kms-token-file ro.token
fails "  and the admin API: 403" 1 'HTTP 403' token list --kms-token-file ro.token --json
check "  a hint names the token and the policy" grep -q 'policy allows' err
fails "--token VALUE is no option (the token is never a flag value)" 2 'unknown option --token' \
    key list --token "$(cat "$ADMIN")"
ok_run "token revoke" token revoke "$RO_ID"
has "says so" "^revoked token $RO_ID\$"
fails "the revoked token: 401" 1 'HTTP 401: unknown or revoked token' key show app \
    --kms-token-file ro.token
fails "token revoke again: 404" 1 "$(srv "DELETE /v1/tokens/$RO_ID" 404 'no token')" \
    token revoke "$RO_ID"
ok_run "token revoke --json: the server's empty answer" token revoke "$ADMIN2_ID" --json
check "  nothing on stdout" test ! -s out

# ------------------------------------------------------------------ certificate mappings
ok_run "cert map" cert map "svc é 1" --policy ro
has "the mapping" '^svc é 1 +ro +false$'
ok_run "cert map --json" cert map ops --policy ro --policy wide --admin --json
jqt "is the server's JSON" '.cn == "ops" and .policies == ["ro", "wide"] and .admin == true'
ok_run "cert list" cert list
has "a header" '^CN +POLICIES +ADMIN$'
has "the first mapping" '^ops +ro, wide +true$'
has "the second mapping" '^svc é 1 +ro +false$'
ok_run "cert list --json" cert list --json
jqt "is the server's JSON" '[.certs[].cn] | sort == ["ops", "svc é 1"]'
ok_run "cert unmap" cert unmap "svc é 1"
has "says so" '^unmapped certificate CN svc é 1$'
fails "cert unmap again: 404" 1 'HTTP 404: no certificate mapping for CN' cert unmap "svc é 1"
ok_run "cert unmap --json" cert unmap ops --json
check "  nothing on stdout" test ! -s out
fails "a CN with '/': usage" 2 "'a/b': a name the server can address is not empty and holds no '/'" cert map a/b
fails "a policy name with '/': usage" 2 "holds no '/'" policy get a/b

# ------------------------------------------------------------------ trust and servers
FPR=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | sed 's/.*=//')
E="-u SBX_KMS_CACERT" ok_run "--kms-fingerprint pins the server" key list --kms-fingerprint "$FPR"
has "and it answers" '^app$'
E="-u SBX_KMS_CACERT SBX_KMS_FINGERPRINT=$(printf '0%.0s' {1..64})" fails \
    "a certificate that does not match the pin is refused" 1 \
    "key server $URL: server certificate does not match the pinned fingerprint" key list
E="SBX_KMS_URL=https://127.0.0.1:1" ok_run "--kms-url wins over SBX_KMS_URL" key list --kms-url "$URL"
has "and it answers" '^app$'
E="-u SBX_KMS_URL" fails "no server named" 1 'SBX_KMS_URL=https://HOST:PORT' key list
fails "an http:// server is refused" 1 'must start with https://' key list --kms-url http://x:1

# ------------------------------------------------------------------ usage
fails "unknown subcommand: usage" 2 "unknown subcommand 'keys'" keys list
fails "unknown key subcommand: usage" 2 "unknown subcommand 'frob'" key frob
fails "a missing NAME: usage" 2 'key show takes NAME' key show
fails "an extra operand: usage" 2 'too many operands' key show a b
fails "an option of another command: usage" 2 '--bits does not apply to sbx kms key list' \
    key list --bits 128
fails "a bad key name: usage" 2 'bad key name' key show .hidden
fails "a bad --context: usage" 2 'give KEY=VALUE' encrypt app --context x <plain.bin
k key list --help
check "--help prints the manual" grep -q 'sbx kms key list' out
k key --help
check "key --help prints it too" grep -q "sbx kms key destroy-version" out
"$SBX" help kms >help.txt 2>&1
for c in status 'key create' 'key show' 'key list' 'key rotate' 'key config' 'key delete' \
    'key restore' 'key destroy-version' datakey encrypt decrypt rewrap 'token create' \
    'token list' 'token revoke' 'policy put' 'policy get' 'policy list' 'policy delete' \
    'cert map' 'cert list' 'cert unmap'; do
    check "sbx help kms documents sbx kms $c, with an example" \
        bash -c "grep -q '^ *sbx kms $c' help.txt && grep -A200 '^EXAMPLES' help.txt | grep -q 'sbx kms $c'"
done

# ------------------------------------------------------------------ answers that are not the API's
# A stand-in server (with the real one's certificate) answering GET /v1/keys
# with a name that holds an escape sequence, and anything else with 200 HTML.
cat >odd.py <<'EOF'
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"keys":["a\\u001b[31mb"]}' if self.path == "/v1/keys" else b"<html>hi</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = c.wrap_socket(s.socket, server_side=True)
open(sys.argv[3], "w").write(str(s.server_address[1]))
s.serve_forever()
EOF
python3 odd.py "$CA" "$T/srv/tls/key.pem" odd.port &
ODD_PID=$!
for _ in $(seq 100); do [ -s odd.port ] && break; sleep 0.1; done
ODD=https://127.0.0.1:$(cat odd.port)
ok_run "a name with control characters" key list --kms-url "$ODD"
check "  is printed with '?' for them" grep -qx 'a?\[31mb' out
fails "an answer that is not JSON" 1 "key server: the answer to GET /v1/health \(HTTP 200\) is not JSON" \
    status --kms-url "$ODD"
fails "  and with --json" 1 'is not JSON' key show x --json --kms-url "$ODD"
kill "$ODD_PID" 2>/dev/null
wait "$ODD_PID" 2>/dev/null
ODD_PID=

# ------------------------------------------------------------------ server down
kms_stop
fails "server down: status" 1 "key server $URL: GET /v1/health: .*(onnect|refused)" status
fails "server down: key list --json" 1 "key server $URL: GET /v1/keys: " key list --json
fails "server down: key create (not retried elsewhere)" 1 "key server $URL: POST /v1/keys/x: " \
    key create x

finish
