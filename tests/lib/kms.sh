# tests/lib/kms.sh - start and stop a real `sbx kms serve` from a bash test.
# Source it after setting SBX (the sbx binary). Used by the server tests
# (tests/server/*.sh) and the client tests (tests/kms/*.sh).

# kms_start DIR LOG [serve args...]: starts `$SBX kms serve --data-dir DIR
# --listen 127.0.0.1:0 --ready-file DIR.ready ARGS`, its output appended to LOG,
# and waits up to 30 s for the port in the ready file. Sets SRV_PID, PORT, URL
# and CA (DIR/tls/cert.pem). Returns 1 if it did not come up (the process, if
# still there, is killed).
kms_start() {
    local dir=$1 log=$2
    shift 2
    local ready=$dir.ready
    rm -f "$ready"
    "$SBX" kms serve --data-dir "$dir" --listen 127.0.0.1:0 --ready-file "$ready" "$@" \
        >>"$log" 2>&1 &
    SRV_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        if [ -s "$ready" ] && grep -qE '^[0-9]+$' "$ready"; then break; fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! { [ -s "$ready" ] && grep -qE '^[0-9]+$' "$ready"; }; then
        kill -KILL "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
        SRV_PID=
        return 1
    fi
    PORT=$(head -n 1 "$ready")
    URL=https://127.0.0.1:$PORT
    CA=$dir/tls/cert.pem
}

# kms_test_dir NAME: a fresh temporary directory T (sbx-NAME-test.XXXXXX), D=$T/kms for the
# server's data, SRV_PID empty; cd into T with umask 022. At exit the server, if still running,
# is killed and T removed.
kms_test_dir() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-$1-test.XXXXXX") || exit 2
    D=$T/kms
    SRV_PID=
    trap 'kms_kill; rm -rf "$T"' EXIT
    cd "$T" || exit 2
    umask 022
}

# kms_stop: SIGTERM to $SRV_PID and wait up to 15 s (then SIGKILL). The exit
# status lands in $srv_rc (124 when it had to be killed).
kms_stop() {
    [ -n "${SRV_PID:-}" ] || { srv_rc=0; return 0; }
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        kill -KILL "$SRV_PID"
        wait "$SRV_PID" 2>/dev/null
        srv_rc=124
    else
        wait "$SRV_PID"
        srv_rc=$?
    fi
    SRV_PID=
}

# kms_kill: SIGKILL $SRV_PID if it still runs (for EXIT traps).
kms_kill() {
    if [ -n "${SRV_PID:-}" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -KILL "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
    fi
    SRV_PID=
}

# kms_wait_lines PATTERN FILE [N]: waits up to 20 s until at least N (default 1) lines of FILE
# match PATTERN (grep); 1 if they never do. For a server's log or a fake NOTIFY_SOCKET's output.
kms_wait_lines() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -c -- "$1" "$2" 2>/dev/null)" -ge "${3:-1}" ] && return 0
        sleep 0.1
    done
    return 1
}
