/*
 * server/store_sqlite.c - the SQLite storage backend (see store.h).
 *
 * Implementation notes:
 *  - One table, sbx_kv (ns TEXT, key TEXT, value BLOB, rev INTEGER,
 *    PRIMARY KEY (ns, key)) WITHOUT ROWID; keys compare with the BINARY
 *    collation (memcmp), so list order is byte order.
 *  - Files: created 0600 with open(2) before SQLite opens them (SQLite gives
 *    the -wal and -shm files the database file's mode), journal_mode=WAL,
 *    synchronous=FULL (a commit is fsynced before it returns), busy_timeout
 *    so that handles of several threads or processes wait for each other.
 *  - "memory:NAME" is the memdb VFS with the name "/NAME": every connection
 *    of the process opening "file:/NAME?vfs=memdb" shares one database,
 *    freed with its last connection. memdb has no WAL; its rollback journal
 *    lives in memory and its locks make connections wait (busy_timeout).
 *  - Every write runs in BEGIN IMMEDIATE ... COMMIT: the write lock is taken
 *    first (waiting through the busy handler), so the condition check and
 *    the write are atomic, and a conditional delete can tell "absent" from
 *    "other revision" exactly.
 *  - Each handle is one connection (SQLITE_OPEN_NOMUTEX: one thread at a
 *    time, as store.h says). Statements are prepared once per handle, except
 *    the list statement, prepared per call so that a callback may use the
 *    handle to read.
 */
#include "store_impl.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 15000

enum {
    ST_GET,
    ST_REV,
    ST_PUT_ANY,
    ST_PUT_ABSENT,
    ST_PUT_REV,
    ST_DEL,
    ST_COUNT,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_N
};

static const char *const sql[ST_N] = {
    [ST_GET] = "SELECT value, rev FROM sbx_kv WHERE ns = ?1 AND key = ?2",
    [ST_REV] = "SELECT rev FROM sbx_kv WHERE ns = ?1 AND key = ?2",
    [ST_PUT_ANY] = "INSERT INTO sbx_kv (ns, key, value, rev) VALUES (?1, ?2, ?3, 1) "
                   "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, rev = rev + 1 "
                   "RETURNING rev",
    [ST_PUT_ABSENT] = "INSERT INTO sbx_kv (ns, key, value, rev) VALUES (?1, ?2, ?3, 1) "
                      "ON CONFLICT (ns, key) DO NOTHING RETURNING rev",
    [ST_PUT_REV] = "UPDATE sbx_kv SET value = ?3, rev = rev + 1 "
                   "WHERE ns = ?1 AND key = ?2 AND rev = ?4 RETURNING rev",
    [ST_DEL] = "DELETE FROM sbx_kv WHERE ns = ?1 AND key = ?2",
    [ST_COUNT] = "SELECT count(*) FROM sbx_kv WHERE ns = ?1",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

static const char sql_list[] = "SELECT key, value, rev FROM sbx_kv "
                               "WHERE ns = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) "
                               "ORDER BY key";

static const char sql_schema[] = "CREATE TABLE IF NOT EXISTS sbx_kv ("
                                 "ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
                                 "rev INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID";

typedef struct {
    struct kms_store base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    char label[112]; /* "SQLite database 'PATH'" for messages */
} sqlite_store;

static sqlite_store *
from(kms_store *s)
{
    return (sqlite_store *)s;
}

/* SBX_EIO naming the database, what failed and SQLite's message. */
static int
db_error(sqlite_store *q, const char *what)
{
    int code = sqlite3_extended_errcode(q->db);
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        return sbx_error_set(SBX_EIO, "%s: %s: database is locked for more than %d s (%s)",
                             q->label, what, BUSY_TIMEOUT_MS / 1000, sqlite3_errmsg(q->db));
    return sbx_error_set(SBX_EIO, "%s: %s: %s", q->label, what, sqlite3_errmsg(q->db));
}

static void
bind_ns_key(sqlite3_stmt *st, const char *ns, const char *key)
{
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
}

static void
done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement without result rows (BEGIN, COMMIT, ...). */
static int
exec_simple(sqlite_store *q, int which, const char *what)
{
    int rc = sqlite3_step(q->st[which]);
    sqlite3_reset(q->st[which]);
    return rc == SQLITE_DONE ? 0 : db_error(q, what);
}

static int
begin(sqlite_store *q)
{
    return exec_simple(q, ST_BEGIN, "begin transaction");
}

/* Commits when err is 0, rolls back otherwise; returns err or the commit failure. */
static int
finish(sqlite_store *q, int err)
{
    if (err == 0)
        err = exec_simple(q, ST_COMMIT, "commit");
    if (err < 0 && !sqlite3_get_autocommit(q->db)) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", sbx_error_last()->message);
        (void)exec_simple(q, ST_ROLLBACK, "rollback");
        sbx_error_set(err, "%s", msg); // keep the first failure's message
    }
    return err;
}

static int
copy_value(sqlite3_stmt *st, int col, uint8_t **val, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    uint8_t *v = malloc(n + 1);
    if (v == NULL)
        return sbx_error_set_nomem();
    if (n > 0)
        memcpy(v, p, n);
    v[n] = 0;
    *val = v;
    *len = n;
    return 0;
}

static int
sq_get(kms_store *s, const char *ns, const char *key, uint8_t **val, size_t *len, int64_t *rev)
{
    sqlite_store *q = from(s);
    sqlite3_stmt *st = q->st[ST_GET];
    int err = 0;
    bind_ns_key(st, ns, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        err = copy_value(st, 0, val, len);
        if (err == 0 && rev != NULL)
            *rev = sqlite3_column_int64(st, 1);
    } else if (rc == SQLITE_DONE) {
        err = sbx_error_set(SBX_ENOTFOUND, "storage: no row '%s' in namespace '%s'", key, ns);
    } else {
        err = db_error(q, "read");
    }
    done(st);
    return err;
}

/* Steps a RETURNING rev statement: 1 row = written, none = condition failed. */
static int
step_returning(sqlite_store *q, sqlite3_stmt *st, bool *hit, int64_t *rev)
{
    int rc = sqlite3_step(st);
    *hit = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        *rev = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    int err = rc == SQLITE_DONE ? 0 : db_error(q, "write");
    done(st);
    return err;
}

static int
sq_put(kms_store *s, const char *ns, const char *key, const void *val, size_t len,
       int64_t expect_rev, int64_t *new_rev)
{
    sqlite_store *q = from(s);
    int which = expect_rev == KMS_REV_ANY      ? ST_PUT_ANY
                : expect_rev == KMS_REV_ABSENT ? ST_PUT_ABSENT
                                               : ST_PUT_REV;
    sqlite3_stmt *st = q->st[which];
    bool hit = false;
    int64_t rev = 0;
    int err = begin(q);
    if (err < 0)
        return err;
    bind_ns_key(st, ns, key);
    sqlite3_bind_blob(st, 3, val, (int)len, SQLITE_STATIC);
    if (which == ST_PUT_REV)
        sqlite3_bind_int64(st, 4, expect_rev);
    err = step_returning(q, st, &hit, &rev);
    if (err == 0 && !hit)
        err = expect_rev == KMS_REV_ABSENT
                  ? sbx_error_set(SBX_ECONFLICT, "storage: row '%s' in namespace '%s' exists", key,
                                  ns)
                  : sbx_error_set(SBX_ECONFLICT,
                                  "storage: row '%s' in namespace '%s' is not at revision %lld",
                                  key, ns, (long long)expect_rev);
    err = finish(q, err);
    if (err == 0 && new_rev != NULL)
        *new_rev = rev;
    return err;
}

/* The current revision of a row inside the write transaction (0 when absent). */
static int
current_rev(sqlite_store *q, const char *ns, const char *key, int64_t *rev)
{
    sqlite3_stmt *st = q->st[ST_REV];
    bind_ns_key(st, ns, key);
    int rc = sqlite3_step(st);
    *rev = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int err = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(q, "read revision");
    done(st);
    return err;
}

static int
sq_del(kms_store *s, const char *ns, const char *key, int64_t expect_rev)
{
    sqlite_store *q = from(s);
    int64_t rev = 0;
    int err = begin(q);
    if (err == 0)
        err = current_rev(q, ns, key, &rev);
    if (err == 0 && rev == 0)
        err = sbx_error_set(SBX_ENOTFOUND, "storage: no row '%s' in namespace '%s'", key, ns);
    else if (err == 0 && expect_rev != KMS_REV_ANY && rev != expect_rev)
        err = sbx_error_set(SBX_ECONFLICT,
                            "storage: row '%s' in namespace '%s' is at revision %lld, not %lld",
                            key, ns, (long long)rev, (long long)expect_rev);
    if (err == 0) {
        bind_ns_key(q->st[ST_DEL], ns, key);
        err = sqlite3_step(q->st[ST_DEL]) == SQLITE_DONE ? 0 : db_error(q, "delete");
        done(q->st[ST_DEL]);
    }
    return finish(q, err);
}

static int
sq_list(kms_store *s, const char *ns, const char *lo, const char *hi, size_t hi_len,
        kms_store_list_cb cb, void *ctx)
{
    sqlite_store *q = from(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql_list, -1, &st, NULL) != SQLITE_OK)
        return db_error(q, "prepare list");
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, lo, -1, SQLITE_STATIC);
    if (hi != NULL)
        sqlite3_bind_text(st, 3, hi, (int)hi_len, SQLITE_STATIC);
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        ret = cb(ctx, (const char *)sqlite3_column_text(st, 0), v != NULL ? v : kms__store_empty, n,
                 sqlite3_column_int64(st, 2));
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_error(q, "list");
    sqlite3_finalize(st);
    return ret;
}

static int
sq_count(kms_store *s, const char *ns, int64_t *n)
{
    sqlite_store *q = from(s);
    sqlite3_stmt *st = q->st[ST_COUNT];
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    int err = rc == SQLITE_ROW ? 0 : db_error(q, "count");
    done(st);
    return err;
}

static void
sq_close(kms_store *s)
{
    sqlite_store *q = from(s);
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close_v2(q->db);
    free(q);
}

static const kms_store_ops sqlite_ops = {
    .name = "sqlite",
    .get = sq_get,
    .put = sq_put,
    .del = sq_del,
    .list = sq_list,
    .count = sq_count,
    .close = sq_close,
};

/* Creates the file 0600 unless it exists (SQLite would use the umask). */
static int
create_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "SQLite database '%.200s': cannot open or create it",
                                 path);
    close(fd);
    return 0;
}

/* Runs one pragma and checks the text of its first result column when want is set. */
static int
pragma(sqlite_store *q, const char *stmt, const char *want)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, stmt, -1, &st, NULL) != SQLITE_OK)
        return db_error(q, stmt);
    int rc = sqlite3_step(st);
    bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (ok && want != NULL)
        ok = rc == SQLITE_ROW &&
             sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), want) == 0;
    sqlite3_finalize(st);
    if (!ok && (rc == SQLITE_DONE || rc == SQLITE_ROW))
        return sbx_error_set(SBX_EIO,
                             "%s: %s did not take effect (is the file on a filesystem "
                             "without shared memory support?)",
                             q->label, stmt);
    return ok ? 0 : db_error(q, stmt);
}

static int
setup(sqlite_store *q, bool memory)
{
    int err = 0;
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    sqlite3_db_config(q->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(q->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    if (!memory)
        err = pragma(q, "PRAGMA journal_mode = WAL", "wal");
    if (err == 0)
        err = pragma(q, "PRAGMA synchronous = FULL", NULL);
    if (err == 0 && sqlite3_exec(q->db, sql_schema, NULL, NULL, NULL) != SQLITE_OK)
        err = db_error(q, "create table");
    for (int i = 0; err == 0 && i < ST_N; i++)
        if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) !=
            SQLITE_OK)
            err = db_error(q, "prepare");
    return err;
}

/* see store_impl.h */
int
kms__store_sqlite_open(kms_store **out, const char *path, bool memory)
{
    char uri[128];
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (memory) {
        snprintf(uri, sizeof(uri), "file:/%s?vfs=memdb", path); // name checked by store.c
        flags |= SQLITE_OPEN_URI;
    } else if (create_file(path) < 0) {
        return SBX_EIO;
    }
    sqlite_store *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return sbx_error_set_nomem();
    q->base.ops = &sqlite_ops;
    if (memory)
        snprintf(q->label, sizeof(q->label), "SQLite database 'memory:%s'", path);
    else
        snprintf(q->label, sizeof(q->label), "SQLite database '%.80s'", path);
    int err = 0;
    if (sqlite3_open_v2(memory ? uri : path, &q->db, flags, NULL) != SQLITE_OK)
        err = q->db != NULL ? db_error(q, "open")
                            : sbx_error_set(SBX_ENOMEM, "%s: out of memory", q->label);
    if (err == 0)
        err = setup(q, memory);
    if (err < 0) {
        sq_close(&q->base);
        return err;
    }
    *out = &q->base;
    return 0;
}
