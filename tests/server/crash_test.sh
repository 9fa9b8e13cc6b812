#!/usr/bin/env bash
# tests/server/crash_test.sh - crash safety of `sbx kms serve` (kill -9 under write load).
#
#   bash tests/server/crash_test.sh build/sbx sqlite [ROUNDS]
#   bash tests/server/crash_test.sh build/sbx postgres [ROUNDS]     # fresh database from scripts/pg.sh
#   bash tests/server/crash_test.sh build/sbx postgres://user@127.0.0.1:5432/db [ROUNDS]
#
# ROUNDS (default 10) times: while the server runs on one data directory, four
# parallel curl loops hammer it with writes (three create named keys, rotate
# them and a few shared "hot" keys, encrypt with and without a context and
# make data keys; one makes keas.kmi seed KEKs with POST /new and reads their
# data keys with POST /key). Every answer that was acknowledged (curl exit 0,
# HTTP 2xx, a complete body) is recorded. The server is killed with SIGKILL
# after a random 0.2-2.2 s, then:
#   - `sbx kms audit verify` on the log the dead server left: intact, or the
#     documented torn tail "log ends at seq N but the head file says N-1 (the
#     head lags: ...)" (the only window SIGKILL can open: a line is one
#     write(2), the head is rewritten after it, and the next start repairs a
#     head one line behind); anything else fails and is printed;
#   - the server is restarted on the same data (must come up: the database is
#     not corrupt), and every acknowledgement of every round so far is checked
#     by tests/server/crash_check.py over one keep-alive connection:
#     GET /v1/keys/NAME 200 with latest_version >= the acknowledged one and
#     versions 1..latest all present, a data key under every listed key (no
#     half-created or half-rotated key is visible), decrypt of every
#     acknowledged ciphertext (encrypt and datakey) gives the recorded
#     plaintext, POST /key with every acknowledged seed KEK gives the same 32
#     bytes as before, every acknowledged key is in GET /v1/keys and GET /
#     counts at least all of them;
#   - SQLite: PRAGMA integrity_check on kms.db (read-only, the server running).
# At the end the server is stopped with SIGTERM (must exit 0) and the audit
# log must verify intact. Prints one line per check, a summary of what was
# observed (kills, acknowledgements, audit states), then "N passed, M failed";
# exits non-zero on any failure.
#
# "postgres" takes a fresh database from `scripts/pg.sh createdb` (the ctest
# fixture `pg` starts the cluster; SBX_TEST_PG_URL, when set, is used to build
# the URL if pg.sh prints none) and drops it at the end.
# Knobs: SBX_CRASH_SEED (RANDOM seed, printed, to replay a run's kill times),
# SBX_CRASH_MAX_MS (longest load before the kill, default 2200).
# Needs: bash, curl, python3, coreutils (sqlite3 optional).
set -uo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX sqlite|postgres|postgres://... [ROUNDS]" >&2
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
ROUNDS=${3:-10}
MAX_MS=${SBX_CRASH_MAX_MS:-2200}
SEED=${SBX_CRASH_SEED:-$(($(date +%s) % 32768))}
RANDOM=$SEED
for tool in curl python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL - $tool not found (run scripts/deps.sh)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-crash-test.XXXXXX")
D=$T/kms
SRV_PID=
PG_DB=
WORKERS=()
cleanup() {
    [ -n "${T:-}" ] && touch "$T/stop" 2>/dev/null
    local p
    for p in "${WORKERS[@]}"; do wait "$p" 2>/dev/null; done
    kms_kill
    if [ -n "$PG_DB" ]; then
        "$ROOT/scripts/pg.sh" dropdb "$PG_DB" >/dev/null 2>&1 || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$T" || exit 2
START=$SECONDS

# finish: the summary with the run time, and the exit status (check.sh's finish does not exit).
finish() {
    echo
    echo "$passed passed, $failed failed ($((SECONDS - START)) s)"
    [ "$failed" = 0 ]
    exit
}
server_log_tail() {
    [ -f server.log ] && sed 's/^/       server: /' server.log | tail -n 15
}

# ------------------------------------------------------------------ storage
STORAGE_URL=
case $BACKEND_ARG in
sqlite) ;;
postgres)
    PG_DB=sbx_crash_$$
    out=$("$ROOT/scripts/pg.sh" createdb "$PG_DB" 2>pg.err) || {
        sed 's/^/       pg.sh: /' pg.err
        PG_DB=
        not_ok "scripts/pg.sh createdb (is the pg fixture running? scripts/pg.sh start)"
        finish
    }
    STORAGE_URL=$(printf '%s\n' "$out" | grep -E '^postgres(ql)?://' | tail -n 1)
    if [ -z "$STORAGE_URL" ] && [ -n "${SBX_TEST_PG_URL:-}" ]; then
        STORAGE_URL=$(printf '%s' "$SBX_TEST_PG_URL" | sed -E "s#^(postgres(ql)?://[^/]*)(/[^?]*)?#\\1/$PG_DB#")
    fi
    [ -n "$STORAGE_URL" ] || {
        not_ok "no PostgreSQL URL: scripts/pg.sh printed none and SBX_TEST_PG_URL is unset"
        finish
    }
    ;;
postgres://* | postgresql://*) STORAGE_URL=$BACKEND_ARG ;;
*)
    echo "unknown backend '$BACKEND_ARG': sqlite, postgres or a postgres:// URL" >&2
    exit 2
    ;;
esac
backend=sqlite
[ -n "$STORAGE_URL" ] && backend="postgres ($STORAGE_URL)"
echo "# $("$SBX" --version 2>&1 | head -n 1); backend $backend; $ROUNDS rounds; SBX_CRASH_SEED=$SEED"

# ------------------------------------------------------------------ server control
# start_server: starts it on a free port, waits for the ready file (30 s). Returns 1 if it does not come up.
start_server() {
    local args=()
    [ -n "$STORAGE_URL" ] && args+=(--storage "$STORAGE_URL")
    echo "--- start $(date +%T.%N)" >>server.log
    kms_start "$D" server.log "${args[@]}"
}

# audit_after_kill ROUND: verifies the log the killed server left. Intact, or a
# head file that is one line behind (SIGKILL between the line and the head
# rewrite), is accepted; the state is counted in audit_states.
declare -A audit_states=()
audit_after_kill() {
    local out rc state
    out=$("$SBX" kms audit verify "$D/audit.log" 2>&1)
    rc=$?
    out=$(printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//')
    if [ "$rc" = 0 ]; then
        state=intact
        ok "round $1: audit log verifies after the kill"
    elif [ "$rc" = 1 ] && printf '%s' "$out" | grep -q 'the head lags'; then
        state="head lags: $(printf '%s' "$out" | sed -E 's/[0-9]+/N/g')"
        ok "round $1: audit log fails only at its head after the kill (tolerated: $out)"
    else
        state="other (exit $rc)"
        not_ok "round $1: audit verify after the kill: exit $rc: $out"
        tail -n 2 "$D/audit.log" 2>/dev/null | cut -c1-300 | sed 's/^/       log: /'
        sed 's/^/       head: /' "$D/audit.log.head" 2>/dev/null
    fi
    audit_states[$state]=$((${audit_states[$state]:-0} + 1))
}

# ------------------------------------------------------------------ load
# A base64 string of 32 characters (24 random bytes), made without a subprocess.
B64=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/
rand_b64() {
    local s='' i
    for ((i = 0; i < 32; i++)); do s+=${B64:RANDOM % 64:1}; done
    REPLY=$s
}
# post PATH BODY: one POST with the admin token (BODY '' = none); sets rc (curl), code, resp (body).
post() {
    local out a=(-X POST)
    [ -n "$2" ] && a=(-H 'Content-Type: application/json' --data-binary "$2")
    out=$(curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $ADMIN" "${a[@]}" \
        -w '\n%{http_code}' "$URL$1" 2>/dev/null)
    rc=$?
    code=${out##*$'\n'}
    resp=${out%$'\n'*}
}
# key_worker ID ROUND FILE: creates, rotates, encrypts and makes data keys until $T/stop
# exists; appends one tab-separated line per acknowledged answer to FILE:
#   K name version | C name plaintext context|- ciphertext
key_worker() {
    local id=$1 round=$2 f=$3 n=0 name r pt ctx ct keys
    RANDOM=$((SEED + round * 10 + id))
    mapfile -t keys <keys.txt
    while [ ! -e stop ]; do
        n=$((n + 1))
        r=$((RANDOM % 10))
        if [ ${#keys[@]} = 0 ] || [ "$r" -lt 3 ]; then
            name=r${round}w${id}n$n
            post "/v1/keys/$name" '{}'
            if [ "$rc" = 0 ] && [ "$code" = 201 ] && [[ $resp =~ \"latest_version\":\ *([0-9]+) ]]; then
                printf 'K\t%s\t%s\n' "$name" "${BASH_REMATCH[1]}" >>"$f"
                keys+=("$name")
            fi
            continue
        fi
        name=${keys[RANDOM % ${#keys[@]}]}
        if [ "$r" -lt 5 ]; then
            post "/v1/keys/$name/rotate" ''
            if [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $resp =~ \"latest_version\":\ *([0-9]+) ]]; then
                printf 'K\t%s\t%s\n' "$name" "${BASH_REMATCH[1]}" >>"$f"
            fi
        elif [ "$r" -lt 8 ]; then
            rand_b64
            pt=$REPLY
            if [ $((n % 2)) = 0 ]; then ctx="{\"w\":\"$id\",\"n\":\"$round.$n\"}"; else ctx=-; fi
            if [ "$ctx" = - ]; then
                post "/v1/keys/$name/encrypt" "{\"plaintext\":\"$pt\"}"
            else
                post "/v1/keys/$name/encrypt" "{\"plaintext\":\"$pt\",\"context\":$ctx}"
            fi
            if [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $resp =~ \"ciphertext\":\ *\"([^\"]+)\" ]]; then
                printf 'C\t%s\t%s\t%s\t%s\n' "$name" "$pt" "$ctx" "${BASH_REMATCH[1]}" >>"$f"
            fi
        else
            post "/v1/keys/$name/datakey" '{"bits":256}'
            if [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $resp =~ \"ciphertext\":\ *\"([^\"]+)\" ]]; then
                ct=${BASH_REMATCH[1]}
                if [[ $resp =~ \"plaintext\":\ *\"([^\"]+)\" ]]; then
                    printf 'C\t%s\t%s\t-\t%s\n' "$name" "${BASH_REMATCH[1]}" "$ct" >>"$f"
                fi
            fi
        fi
    done
}
# seed_worker FILE: POST /new, then POST /key with the new KEK, until $T/stop exists; appends
#   S kek hex-of-the-data-key|-   (- when /new was acknowledged but /key was not)
seed_worker() {
    local f=$1 kek out hex
    while [ ! -e stop ]; do
        out=$(curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $ADMIN" -X POST \
            -w '\n%{http_code}' "$URL/new" 2>/dev/null)
        rc=$?
        code=${out##*$'\n'}
        kek=$(printf '%s' "${out%$'\n'*}" | tr -d '\r\n')
        [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $kek =~ ^sbx-kek-1:[^:[:space:]]+:[^:[:space:]]+$ ]] || continue
        code=$(curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $ADMIN" \
            --data-binary "$kek" -o seed.bin -w '%{http_code}' "$URL/key" 2>/dev/null)
        rc=$?
        hex=-
        if [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$(stat -c %s seed.bin)" = 32 ]; then
            hex=$(od -An -v -tx1 seed.bin | tr -d ' \n')
        fi
        printf 'S\t%s\t%s\n' "$kek" "$hex" >>"$f"
    done
}

# ------------------------------------------------------------------ the rounds
touch acks.txt keys.txt
start_server || {
    not_ok "the server starts on a new data directory"
    server_log_tail
    finish
}
ADMIN=$(tr -d '\r\n' <"$D/admin.token" 2>/dev/null)
[ -n "$ADMIN" ] || {
    not_ok "admin.token written on first start"
    finish
}
# A few keys every worker rotates and uses at the same time.
for h in hot0 hot1 hot2; do
    post "/v1/keys/$h" '{}'
    if [ "$rc" = 0 ] && [ "$code" = 201 ]; then
        printf 'K\t%s\t1\n' "$h" >>acks.txt
        echo "$h" >>keys.txt
    else
        not_ok "create the shared key $h (curl $rc, HTTP $code: ${resp:0:200})"
        finish
    fi
done

kills=0
declare -a per_round=()
for ((round = 1; round <= ROUNDS; round++)); do
    rm -f stop w*.txt
    WORKERS=()
    for w in 1 2 3; do
        key_worker "$w" "$round" "w$w.txt" 2>/dev/null &
        WORKERS+=($!)
    done
    seed_worker ws.txt 2>/dev/null &
    WORKERS+=($!)
    ms=$((200 + RANDOM % (MAX_MS > 200 ? MAX_MS - 199 : 1)))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    if kill -KILL "$SRV_PID" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
    touch stop
    for p in "${WORKERS[@]}"; do wait "$p" 2>/dev/null; done
    WORKERS=()
    touch w1.txt w2.txt w3.txt ws.txt
    cat w1.txt w2.txt w3.txt ws.txt >>acks.txt
    awk -F'\t' '$1 == "K" && $3 == 1 { print $2 }' w1.txt w2.txt w3.txt >>keys.txt
    nk=$(cat w1.txt w2.txt w3.txt | grep -c '^K' || true)
    nc=$(cat w1.txt w2.txt w3.txt | grep -c '^C' || true)
    ns=$(grep -c '^S' ws.txt || true)
    per_round+=("$ms ms: $nk key, $nc ciphertext, $ns seed acks")
    echo "# round $round: killed after $ms ms; acknowledged this round: $nk key creations/rotations, $nc ciphertexts, $ns seed KEKs"

    audit_after_kill "$round"

    if start_server; then
        ok "round $round: the server restarts after kill -9"
    else
        not_ok "round $round: the server does not restart after kill -9"
        server_log_tail
        finish
    fi
    if python3 "$HERE/crash_check.py" --url "$URL" --ca "$CA" --token-file "$D/admin.token" \
        --acks acks.txt --label "round $round" >check.out 2>&1; then
        cat check.out
        passed=$((passed + $(grep -c '^ok' check.out)))
    else
        cat check.out
        passed=$((passed + $(grep -c '^ok' check.out)))
        failed=$((failed + $(grep -c '^FAIL' check.out) + 0))
        grep -q '^FAIL' check.out || not_ok "round $round: crash_check.py failed without a verdict"
    fi
    if [ -z "$STORAGE_URL" ] && command -v sqlite3 >/dev/null; then
        ic=$(sqlite3 "file:$D/kms.db?mode=ro" 'PRAGMA integrity_check;' 2>&1 | head -n 5 | tr '\n' ' ')
        if [ "$ic" = "ok " ]; then
            ok "round $round: SQLite integrity_check ok"
        else
            not_ok "round $round: SQLite integrity_check: $ic"
        fi
    fi
done

# ------------------------------------------------------------------ graceful end
kms_stop
case $srv_rc in
0) ok "SIGTERM after the last round: exit 0" ;;
124) not_ok "SIGTERM: the server did not stop within 15 s" ;;
*) not_ok "SIGTERM after the last round: exit $srv_rc" ;;
esac
out=$("$SBX" kms audit verify "$D/audit.log" 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
    ok "the audit log verifies intact after $kills kills and restarts ($(printf '%s' "$out" | tr '\n' ' '))"
else
    not_ok "the audit log after $kills kills and a graceful stop: exit $rc: $(printf '%s' "$out" | tr '\n' ' ')"
fi

echo
echo "# observed: $kills kills; acknowledged in total: $(grep -c '^K' acks.txt) key creations/rotations," \
    "$(grep -c '^C' acks.txt) ciphertexts, $(grep -c '^S' acks.txt) seed KEKs ($(awk -F'\t' '$1 == "S" && $3 == "-"' acks.txt | wc -l) acknowledged by /new only)"
for s in "${!audit_states[@]}"; do echo "# audit after a kill: ${audit_states[$s]} x $s"; done
finish
