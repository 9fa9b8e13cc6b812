#!/usr/bin/env bash
# tests/server/log_test.sh - the operational log of `sbx kms serve` and its
# systemd notifications: every line on stderr is a JSON object (RFC 3339 time,
# level, msg, string fields; log_check.py), the start-up facts are fields
# (data directory, certificate fingerprint, listening address), strings are
# escaped (a data directory with a quote and a backslash round-trips),
# --log-level filters; with NOTIFY_SOCKET (a fake one, notify_listen.py) the
# server sends READY=1 once listening, WATCHDOG=1 at half of WATCHDOG_USEC,
# RELOADING=1 and READY=1 around SIGHUP and STOPPING=1 at SIGTERM.
#
#   bash tests/server/log_test.sh build/sbx
#
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, openssl, python3.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/server_test.sh
. "$HERE/../lib/server_test.sh" "$@"
require_tools curl openssl python3

kms_test_dir log
CHECK_LOG=server.log
NOTIFY_PID=
trap 'kms_kill; [ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null; rm -rf "$T"' EXIT

# ================================================================ the format
D="$T/da\"ta\\dir"
python3 "$HERE/notify_listen.py" "$T/notify.sock" notify.out &
NOTIFY_PID=$!
kms_wait_lines BOUND notify.out || fatal "the fake notification socket did not come up"
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000
check "the server starts (NOTIFY_SOCKET, WATCHDOG_USEC=400000)" kms_start "$D" server.log --threads 2 ||
    fatal "sbx kms serve did not start"
unset NOTIFY_SOCKET WATCHDOG_USEC
check "READY=1 once listening" kms_wait_lines '^READY=1$' notify.out
check "WATCHDOG=1 from the event loop" kms_wait_lines '^WATCHDOG=1$' notify.out
kill -HUP "$SRV_PID"
check "RELOADING=1 on SIGHUP" kms_wait_lines '^RELOADING=1$' notify.out
check "the reload is logged" kms_wait_lines '"msg":"reloaded' server.log
check "READY=1 again after the reload" kms_wait_lines '^READY=1$' notify.out 2
kms_stop
check "SIGTERM: exit 0 (got $srv_rc)" [ "$srv_rc" = 0 ]
check "STOPPING=1 at SIGTERM" grep -qx 'STOPPING=1' notify.out
CHECK_SHOW=check.out
check "every line is a JSON object: time (RFC 3339), level, msg, string fields" \
    bash -c "python3 '$HERE/log_check.py' server.log >check.out"
CHECK_SHOW=
FPR=$(openssl x509 -in "$D/tls/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
field() { # field MSG KEY: the KEY field of the first line whose msg is MSG
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o["msg"] == sys.argv[2]:
        print(o.get(sys.argv[3], "")); break' server.log "$1" "$2"
}
check "the certificate fingerprint is a field" [ "$(field 'TLS certificate' fingerprint)" = "$FPR" ]
check "a path with a quote and a backslash round-trips through the JSON" [ "$(field 'data directory' path)" = "$D" ]
check "the listening address is a field" [ "$(field listening address)" = "https://127.0.0.1:$PORT" ]
check "the shutdown is logged" grep -q '"msg":"SIGTERM received' server.log
check "nothing but JSON lines on the output (no stray text)" bash -c "! grep -v '^{' server.log"

# ================================================================ --log-level
check "--log-level error starts" kms_start "$D" quiet.log --log-level error
kms_stop
check "--log-level error: no info or warn lines" bash -c "! grep -qE '\"level\":\"(info|warn)\"' quiet.log"
check "--log-level warn starts (--dev warns)" kms_start "$T/dev" warn.log --dev --log-level warn
kms_stop
check "--log-level warn: the --dev warnings, no info lines" \
    bash -c "grep -q '\"level\":\"warn\".*INSECURE --dev' warn.log && ! grep -q '\"level\":\"info\"' warn.log"
check "--log-level debug starts" kms_start "$D" debug.log --log-level debug
kms_stop
check "--log-level debug: info lines too" grep -q '"level":"info"' debug.log
kill "$NOTIFY_PID" 2>/dev/null
NOTIFY_PID=

check "no sanitizer reports in the server output" \
    bash -c "! grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' ./*.log"

finish
