#!/usr/bin/env bash
# tests/server/audit_rotate_test.sh - audit log rotation of a running
# `sbx kms serve` under parallel load.
#
#   bash tests/server/audit_rotate_test.sh build/sbx
#
# A server with --audit-max-size 6K answers datakey requests from 8 curl
# workers at once while `sbx kms audit rotate` (SIGHUP through DIR/sbx-kms.pid)
# rotates it on request as well. Then: every answered request's X-Request-Id
# is in exactly one segment, the series verifies (by --data-dir, by DIR, by
# the files in order), and removing, editing, swapping or reordering a
# segment is detected and named. Last, a full disk (a 1 MiB tmpfs, when
# mount works: we are root in CI) with --audit-fail-closed (503 and a log
# line) and without (answered, a log line, the next audit line carries lost).
# Prints one line per case, then "N passed, M failed"; exits 1 if any failed.
# Needs: bash, curl, jq, xargs, coreutils.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/server_test.sh
. "$HERE/../lib/server_test.sh" "$@"
require_tools curl jq xargs
kms_test_dir audit-rotate # T, D; cd "$T"; removed at exit
CHECK_LOG=server.log
CHECK_SHOW=err
WORKERS=8
REQUESTS=${SBX_TEST_REQUESTS:-600}

kms_start "$D" server.log --audit-max-size 6K || fatal "the server did not start"
ADMIN=$(tr -d '\r\n' <"$D/admin.token")
curl -sS -o /dev/null --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{}' "$URL/v1/keys/app" || fatal "cannot create a key"

# one_request I: a datakey request; prints "REQUEST_ID STATUS".
one_request() {
    curl -sS -o /dev/null -D - -w 'status %{http_code}\n' --cacert "$CA" \
        -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{}' \
        "$URL/v1/keys/app/datakey" 2>/dev/null |
        awk 'tolower($1) == "x-request-id:" { id = $2 } $1 == "status" { print id, $2 }' | tr -d '\r'
}
export -f one_request
export CA ADMIN URL

seq "$REQUESTS" | xargs -P "$WORKERS" -n 1 bash -c 'one_request' _ >answers &
load=$!
rotations=0
# At most 5 rotations on request, a second apart: the rest of the load fills segments by size.
while kill -0 "$load" 2>/dev/null && [ "$rotations" -lt 5 ]; do
    if "$SBX" kms audit rotate --data-dir "$D" >rotate.out 2>err; then
        rotations=$((rotations + 1))
        sleep 1
    else
        not_ok "sbx kms audit rotate during the load: $(cat err)"
        break
    fi
done
wait "$load"
check "$rotations rotation(s) on request during the load" [ "$rotations" -ge 1 ]
check "sbx kms audit rotate says what it did ($(cat rotate.out))" \
    grep -qE '^audit log rotated: segment [0-9]+ is .*/audit\.log\.[0-9]{6}, segment [0-9]+ goes on' rotate.out
answered=$(awk '$2 == 200' answers | wc -l)
check "every request answered 200 ($answered of $REQUESTS)" [ "$answered" -eq "$REQUESTS" ]
nseg=$(find "$D" -maxdepth 1 -name 'audit.log.[0-9]*' ! -name '*.head' | wc -l)
check "segments by size and on request ($nseg)" [ "$nseg" -ge 5 ]
check "segments are named audit.log.000001 ... with their heads" \
    test -f "$D/audit.log.000001" -a -f "$D/audit.log.000001.head" -a -f "$D/audit.log.$(printf %06d "$nseg").head"
check "a pid file for sbx kms audit rotate" [ "$(cat "$D/sbx-kms.pid")" = "$SRV_PID" ]

# Every answered request in exactly one segment.
cat "$D"/audit.log.[0-9]*[0-9] "$D/audit.log" | jq -r 'select(.op == "datakey") | .request_id' | sort >logged
awk '$2 == 200 { print $1 }' answers | sort >asked
check "every answered request's id is in exactly one segment" \
    bash -c "[ \$(uniq -d logged | wc -l) -eq 0 ] && comm -23 asked logged | wc -l | grep -qx 0 && [ \$(wc -l <logged) -eq $REQUESTS ]"
check "each segment after the first begins with its segment line" \
    bash -c "for i in \$(seq 2 $nseg); do head -n 1 \"$D/audit.log.\$(printf %06d \$i)\" | jq -e \".segment == \$i\" >/dev/null || exit 1; done; head -n 1 '$D/audit.log' | jq -e '.segment == $((nseg + 1))' >/dev/null"
check "reasons: size and request" \
    bash -c "cat '$D'/audit.log.[0-9]*[0-9] '$D/audit.log' | jq -r 'select(.segment) | .reason' | sort -u | tr '\n' ' ' | grep -q 'signal size'"

kms_stop
check "the server stopped cleanly (rc $srv_rc) and removed its pid file" \
    [ "$srv_rc" -eq 0 -a ! -e "$D/sbx-kms.pid" ]

check "sbx kms audit verify --data-dir: the whole series" \
    bash -c "'$SBX' kms audit verify --data-dir '$D' >out 2>err && grep -q 'in $((nseg + 1)) segments (1 to $((nseg + 1)))' out"
check "sbx kms audit verify DIR" "$SBX" kms audit verify "$D"
files=()
for i in $(seq 1 "$nseg"); do files+=("$D/audit.log.$(printf %06d "$i")"); done
check "sbx kms audit verify FILES in order" "$SBX" kms audit verify "${files[@]}" "$D/audit.log"
expect_fail "FILES reordered" "audit\.log\.000003: line 1: begins segment 3 but follows .*000001, segment 1" \
    "$SBX" kms audit verify --data-dir "$D" "${files[0]}" "${files[2]}" "${files[1]}" "${files[@]:3}" "$D/audit.log"
expect_fail "a later segment alone" "segments 1 to 2 are missing.*--partial" \
    "$SBX" kms audit verify --data-dir "$D" "${files[2]}"
check "a later series with --partial (earlier segments archived)" \
    bash -c "'$SBX' kms audit verify --partial --data-dir '$D' ${files[*]:2} '$D/audit.log' >out && grep -q 'earlier segments not checked' out"

mkdir -p aside
mv "$D/audit.log.000002" "$D/audit.log.000002.head" aside/
expect_fail "a segment deleted" "audit\.log\.000003: line 1: begins segment 3 but follows .*audit\.log\.000001, segment 1 \(a segment is missing" \
    "$SBX" kms audit verify --data-dir "$D"
mv aside/* "$D/"
mv "$D/audit.log.000002" x && mv "$D/audit.log.000003" "$D/audit.log.000002" && mv x "$D/audit.log.000003"
mv "$D/audit.log.000002.head" x && mv "$D/audit.log.000003.head" "$D/audit.log.000002.head" && mv x "$D/audit.log.000003.head"
expect_fail "two segments swapped" "audit\.log\.000002: line 1: begins segment 3" "$SBX" kms audit verify "$D"
mv "$D/audit.log.000002" x && mv "$D/audit.log.000003" "$D/audit.log.000002" && mv x "$D/audit.log.000003"
mv "$D/audit.log.000002.head" x && mv "$D/audit.log.000003.head" "$D/audit.log.000002.head" && mv x "$D/audit.log.000003.head"
check "swapped back: verifies" "$SBX" kms audit verify "$D"
cp "$D/audit.log.000003" keep
sed -i '2s/"status":200/"status":201/' "$D/audit.log.000003"
expect_fail "a segment edited" "audit\.log\.000003: line 2: mac does not match" "$SBX" kms audit verify "$D"
cp keep "$D/audit.log.000003"
rm "$D/audit.log" "$D/audit.log.head"
expect_fail "the live log removed" "no live audit log" "$SBX" kms audit verify --data-dir "$D"

# ---- a full disk ----
full_disk() { # full_disk NAME [serve flags]: a server on a 1 MiB tmpfs, filled up
    local name=$1 m=$T/$1
    mkdir -p "$m"
    mount -t tmpfs -o size=1m,mode=0700 tmpfs "$m" 2>/dev/null || return 1
    MOUNTS+=("$m")
    shift
    kms_start "$m/kms" "$T/$name.log" --storage "sqlite:$T/$name.db" "$@" || return 1
    ADMIN=$(tr -d '\r\n' <"$m/kms/admin.token")
    curl -sS -o /dev/null --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' -d '{}' "$URL/v1/keys/app"
    dd if=/dev/zero of="$m/filler" bs=4k 2>/dev/null # until ENOSPC
    FULL=$m
}
MOUNTS=()
trap 'kms_kill; for m in "${MOUNTS[@]}"; do umount "$m"; done; rm -rf "$T"' EXIT
# until_failure LOG: requests until the server's LOG reports an audit failure (the last
# page of audit.log may still take a few lines); the last answer's status in $last.
until_failure() {
    local i
    for ((i = 0; i < 40; i++)); do
        last=$(one_request | cut -d' ' -f2)
        grep -q 'AUDIT FAILURE' "$1" && return 0
    done
    return 1
}
if full_disk closed --audit-fail-closed; then
    check "full disk, fail-closed: the server log says so" until_failure "$T/closed.log"
    check "full disk, fail-closed: 503 ($last)" [ "$last" = 503 ]
    check "full disk, fail-closed: the log line names the cause" \
        grep -q 'AUDIT FAILURE: audit log .*: cannot append a line: No space left on device.*refused with 503' "$T/closed.log"
    check "still full: 503 again" [ "$(one_request | cut -d' ' -f2)" = 503 ]
    rm "$FULL/filler"
    check "space again: answered" [ "$(one_request | cut -d' ' -f2)" = 200 ]
    kms_stop
    check "full disk, fail-closed: the chain verifies, nothing lost" \
        bash -c "'$SBX' kms audit verify '$FULL/kms' >out && ! grep -q lost out"
    if full_disk open; then
        check "full disk, fail-open: the server log says so" until_failure "$T/open.log"
        check "full disk, fail-open: answered ($last)" [ "$last" = 200 ]
        check "full disk, fail-open: the log line says the answers go out unaudited" \
            grep -q 'AUDIT FAILURE: .*No space left on device.*answered without an audit line' "$T/open.log"
        one_request >/dev/null
        rm "$FULL/filler"
        one_request >/dev/null
        kms_stop
        check "fail-open: the next line records the 2 lost requests" \
            bash -c "tail -n 1 '$FULL/kms/audit.log' | jq -e '.lost == 2' >/dev/null"
        check "fail-open: verify reports them" \
            bash -c "'$SBX' kms audit verify '$FULL/kms' >out && grep -q '2 requests were answered without a line' out"
    else
        not_ok "a second server on a full tmpfs did not start"
    fi
else
    echo "skip - full disk cases: cannot mount a tmpfs here"
fi
finish
