#!/usr/bin/env bash
# scripts/pg.sh - a private PostgreSQL 15 cluster for the key server's tests.
#
#   scripts/pg.sh start          initdb (first time) and start; creates database sbx_test
#   scripts/pg.sh stop           stop the cluster (its data stays until `destroy`)
#   scripts/pg.sh status         exit 0 when it is running
#   scripts/pg.sh url            print postgres://postgres@127.0.0.1:PORT/sbx_test
#   scripts/pg.sh createdb NAME  create database NAME (dropping an old one) and print its URL
#   scripts/pg.sh dropdb NAME    drop database NAME
#   scripts/pg.sh destroy        stop and remove the data directory
#
# The cluster listens on 127.0.0.1 only, on port SBX_PG_PORT (default: the
# port of SBX_TEST_PG_URL when that is set, else 54329), with trust
# authentication for loopback and its own socket directory: for tests only,
# never for data. Its files live in SBX_PG_DIR (default /tmp/sbx-pg-PORT),
# owned by the postgres user (run as root, the server runs as postgres through
# runuser; run as another user, it runs as that user). Idempotent: starting a
# running cluster is fine. Installs PostgreSQL with apt-get when missing.
set -euo pipefail

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

PG_VERSION=15
PG_BIN=${SBX_PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}

default_port() {
    local url=${SBX_TEST_PG_URL:-}
    if [[ $url =~ ^postgres(ql)?://[^/]*:([0-9]+)(/|$) ]]; then
        echo "${BASH_REMATCH[2]}"
    else
        echo 54329
    fi
}

PORT=${SBX_PG_PORT:-$(default_port)}
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ] ||
    die "SBX_PG_PORT must be a port number from 1024 to 65535, not '$PORT'"
BASE=${SBX_PG_DIR:-/tmp/sbx-pg-$PORT}
DATA=$BASE/data
LOG=$BASE/postgres.log
HOST=127.0.0.1
DB=sbx_test

if [ "$(id -u)" -eq 0 ]; then
    PG_USER=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    PG_USER=$(id -un)
    as_pg() { "$@"; }
fi

install_postgres() {
    [ -x "$PG_BIN/initdb" ] && return 0
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL $PG_VERSION is not installed ($PG_BIN/initdb): run scripts/deps.sh as root"
    echo "pg.sh: installing postgresql-$PG_VERSION" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "postgresql-$PG_VERSION" >/dev/null
    [ -x "$PG_BIN/initdb" ] || die "apt-get installed postgresql-$PG_VERSION but $PG_BIN/initdb is missing"
}

psql_c() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U postgres -d postgres "$@"
}

running() {
    [ -f "$DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url_of() {
    echo "postgres://postgres@$HOST:$PORT/$1"
}

check_name() {
    [[ $1 =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "database name '$1': use 1 to 63 of [a-z0-9_], not starting with a digit"
}

init_cluster() {
    mkdir -p "$BASE"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$BASE"
    chmod 0700 "$BASE"
    as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; die "initdb failed (see above)"; }
    # loopback only, trust: a throwaway test cluster
    as_pg tee "$DATA/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
    as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$BASE'
max_connections = 200
fsync = on
synchronous_commit = on
logging_collector = off
EOF
}

port_taken() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

do_start() {
    install_postgres
    if running; then
        create_db "$DB" keep >/dev/null
        return 0
    fi
    [ -f "$DATA/PG_VERSION" ] || init_cluster
    port_taken && die "port $PORT on $HOST is in use by another program: set SBX_PG_PORT to a free port"
    # 9>&-: the server must not inherit (and so hold) the lock of with_lock
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 9>&- ||
        { tail -n 20 "$LOG" >&2 || true; die "PostgreSQL did not start (log: $LOG)"; }
    create_db "$DB" keep >/dev/null
}

do_stop() {
    running || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
}

# create_db NAME [keep]: keep leaves an existing database alone, else it is recreated empty.
create_db() {
    check_name "$1"
    running || die "the cluster in $BASE is not running: scripts/pg.sh start"
    local exists
    exists=$(psql_c -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")
    if [ "$exists" = 1 ] && [ "${2:-}" != keep ]; then
        psql_c -c "DROP DATABASE \"$1\" WITH (FORCE)"
        exists=
    fi
    [ "$exists" = 1 ] || psql_c -c "CREATE DATABASE \"$1\""
    url_of "$1"
}

drop_db() {
    check_name "$1"
    running || return 0
    psql_c -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"
}

# One pg.sh at a time per cluster (parallel ctest runs share it).
with_lock() {
    mkdir -p "$(dirname "$BASE")"
    exec 9>"$BASE.lock"
    flock -w 60 9 || die "another pg.sh holds $BASE.lock for more than a minute"
    "$@"
}

case ${1:-} in
start) with_lock do_start ;;
stop) with_lock do_stop ;;
status) running ;;
url) url_of "$DB" ;;
createdb)
    [ $# -eq 2 ] || die "usage: $0 createdb NAME"
    with_lock create_db "$2"
    ;;
dropdb)
    [ $# -eq 2 ] || die "usage: $0 dropdb NAME"
    with_lock drop_db "$2"
    ;;
destroy)
    with_lock do_stop
    rm -rf "$DATA" "$LOG" "$BASE/initdb.log"
    rmdir "$BASE" 2>/dev/null || true
    rm -f "$BASE.lock"
    ;;
*)
    echo "usage: $0 start|stop|status|url|createdb NAME|dropdb NAME|destroy" >&2
    exit 2
    ;;
esac
