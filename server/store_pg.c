/*
 * server/store_pg.c - the PostgreSQL storage backend (see store.h).
 *
 * Implementation notes:
 *  - One table, sbx_kv (ns text, key bytea, value bytea, rev bigint,
 *    PRIMARY KEY (ns, key)), created under an advisory lock so that several
 *    nodes starting at once do not race on CREATE TABLE. The key is bytea so
 *    that order is byte order whatever the database's collation, and so that
 *    any key bytes (and the prefix scan's upper bound) are accepted.
 *  - Every statement is parameterized (PQexecParams): ns as text, keys and
 *    values as binary parameters, results in binary (bytea raw, int8 big
 *    endian). No SQL is ever built from caller data.
 *  - Conditional writes are single statements, atomic under READ COMMITTED:
 *    INSERT ... ON CONFLICT DO NOTHING (put if absent), UPDATE ... WHERE
 *    rev = $n (compare-and-set; a concurrent update makes PostgreSQL re-check
 *    the condition on the new row version, so no update is lost), and a
 *    DELETE whose CTE also reads the row, to tell "absent" from "changed".
 *  - The session sets synchronous_commit = on: a statement that returned is
 *    durable (store.h).
 *  - Connection loss: when a statement fails and the connection is bad
 *    (server restart, failover, network), the handle reconnects once
 *    (PQreset) and retries the statement. A write whose reply was lost may
 *    thus run twice: unconditional puts and deletes are idempotent enough
 *    (the revision grows by one more), a conditional one reports
 *    SBX_ECONFLICT and the caller re-reads, as on any race.
 *  - Messages name the database as "PostgreSQL database 'DB' on HOST:PORT"
 *    from the parsed URL; the password never appears: libpq's own messages
 *    are scrubbed of it (raw and percent-decoded) before they are recorded.
 *  - Lists are read in pages of PAGE rows (keyset pagination), so memory
 *    stays bounded and a callback may use the handle.
 */
#include "store_impl.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define PAGE            64 /* rows per list query: keep in step with LIMIT_PAGE */
#define LIMIT_PAGE      " LIMIT 64"
#define CONNECT_TIMEOUT "10"

static const char sql_schema[] =
    "BEGIN; SELECT pg_advisory_xact_lock(7308259410716);"
    "CREATE TABLE IF NOT EXISTS sbx_kv (ns text NOT NULL, key bytea NOT NULL, "
    "value bytea NOT NULL, rev bigint NOT NULL, PRIMARY KEY (ns, key)); COMMIT";
static const char sql_session[] = "SET synchronous_commit = on; SET client_min_messages = warning";
static const char sql_get[] = "SELECT value, rev FROM sbx_kv WHERE ns = $1 AND key = $2";
static const char sql_put_any[] =
    "INSERT INTO sbx_kv (ns, key, value, rev) VALUES ($1, $2, $3, 1) "
    "ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, rev = sbx_kv.rev + 1 "
    "RETURNING rev";
static const char sql_put_absent[] = "INSERT INTO sbx_kv (ns, key, value, rev) "
                                     "VALUES ($1, $2, $3, 1) ON CONFLICT (ns, key) DO NOTHING "
                                     "RETURNING rev";
static const char sql_put_rev[] = "UPDATE sbx_kv SET value = $3, rev = rev + 1 "
                                  "WHERE ns = $1 AND key = $2 AND rev = $4::int8 RETURNING rev";
static const char sql_del[] =
    "WITH cur AS (SELECT rev FROM sbx_kv WHERE ns = $1 AND key = $2), "
    "del AS (DELETE FROM sbx_kv WHERE ns = $1 AND key = $2 AND ($3::int8 IS NULL OR rev = $3) "
    "RETURNING rev) SELECT (SELECT count(*) FROM cur), (SELECT count(*) FROM del)";
static const char sql_list_first[] =
    "SELECT key, value, rev FROM sbx_kv WHERE ns = $1 AND key >= $2 "
    "AND ($3::bytea IS NULL OR key < $3) ORDER BY key" LIMIT_PAGE;
static const char sql_list_next[] = "SELECT key, value, rev FROM sbx_kv WHERE ns = $1 AND key > $2 "
                                    "AND ($3::bytea IS NULL OR key < $3) ORDER BY key" LIMIT_PAGE;
static const char sql_count[] = "SELECT count(*) FROM sbx_kv WHERE ns = $1";

typedef struct {
    struct kms_store base;
    PGconn *conn;
    char label[200];     /* "PostgreSQL database 'DB' on HOST:PORT" */
    char secret[2][128]; /* the URL's password, raw and percent-decoded, to scrub messages */
} pg_store;

/* Parameters of one statement: up to 4, text or binary. */
typedef struct {
    int n;
    const char *val[4];
    int len[4];
    int fmt[4];
} pg_params;

static pg_store *
from(kms_store *s)
{
    return (pg_store *)s;
}

/* ---- messages without the password ---- */

/* Replaces every occurrence of secret in msg (NUL-terminated) by "***". */
static void
scrub_one(char *msg, const char *secret)
{
    size_t n = strlen(secret);
    char *p;
    if (n == 0)
        return;
    while ((p = strstr(msg, secret)) != NULL) {
        size_t tail = strlen(p + n);
        if (n >= 3) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, tail + 1);
        } else {
            memset(p, '*', n); // too short to shrink in place; still hidden
        }
    }
}

/* libpq's message, trimmed to one line-ish and scrubbed, into out. */
static void
pg_message(const pg_store *p, const char *msg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", msg != NULL && *msg != '\0' ? msg : "unknown error");
    for (char *c = out; *c != '\0'; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
    scrub_one(out, p->secret[0]);
    scrub_one(out, p->secret[1]);
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void
percent_decode(char *out, size_t cap, const char *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[o++] = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* Finds the URL's password (userinfo "user:PASS@" or a "password=" parameter). */
static void
find_password(pg_store *p, const char *url)
{
    const char *a = strstr(url, "://");
    const char *pw = NULL;
    size_t n = 0;
    if (a != NULL) {
        a += 3;
        size_t auth = strcspn(a, "/?#");
        const char *at = NULL;
        for (const char *c = a; c < a + auth; c++)
            if (*c == '@')
                at = c;
        const char *colon = at != NULL ? memchr(a, ':', (size_t)(at - a)) : NULL;
        if (colon != NULL) {
            pw = colon + 1;
            n = (size_t)(at - pw);
        }
    }
    const char *q = strstr(url, "password=");
    if (pw == NULL && q != NULL) {
        pw = q + strlen("password=");
        n = strcspn(pw, "&#");
    }
    if (pw == NULL || n == 0 || n >= sizeof(p->secret[0]))
        return;
    memcpy(p->secret[0], pw, n);
    p->secret[0][n] = '\0';
    percent_decode(p->secret[1], sizeof(p->secret[1]), pw, n);
}

/* SBX_EIO "<label>: <what>: <libpq message>". */
static int
pg_error(pg_store *p, const char *what, const char *msg)
{
    char m[512];
    pg_message(p, msg, m, sizeof(m));
    return sbx_error_set(SBX_EIO, "%s: %s: %s", p->label, what, m);
}

static int
result_error(pg_store *p, const char *what, const PGresult *res)
{
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (primary == NULL)
        return pg_error(p, what, PQerrorMessage(p->conn));
    char m[512];
    snprintf(m, sizeof(m), "%s (SQLSTATE %s)", primary, state != NULL ? state : "?");
    return pg_error(p, what, m);
}

/* ---- statements ---- */

static void
quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Settings of each session (after connect and after every reconnect). */
static int
session_setup(pg_store *p)
{
    PGresult *res = PQexec(p->conn, sql_session);
    int err = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : result_error(p, "session setup", res);
    PQclear(res);
    return err;
}

static bool
failed(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK;
}

/* Reconnects once; true when the connection is usable again. */
static bool
reconnect(pg_store *p)
{
    PQreset(p->conn);
    return PQstatus(p->conn) == CONNECTION_OK && session_setup(p) == 0;
}

/* Runs sql with binary results; on a dropped connection reconnects and retries once. */
static int
run(pg_store *p, const char *sql, const pg_params *par, const char *what, PGresult **out)
{
    PGresult *res = NULL;
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(p->conn) != CONNECTION_OK && !reconnect(p))
            break;
        res = PQexecParams(p->conn, sql, par->n, NULL, par->val, par->len, par->fmt, 1);
        if (!failed(res) || PQstatus(p->conn) == CONNECTION_OK)
            break;
        PQclear(res); // the connection dropped: reconnect and retry once
        res = NULL;
    }
    if (res == NULL && PQstatus(p->conn) != CONNECTION_OK)
        return pg_error(p, what, PQerrorMessage(p->conn));
    if (failed(res)) {
        int err = result_error(p, what, res);
        PQclear(res);
        return err;
    }
    *out = res;
    return 0;
}

static void
param_text(pg_params *par, const char *s)
{
    par->val[par->n] = s;
    par->len[par->n] = 0;
    par->fmt[par->n++] = 0;
}

static void
param_bin(pg_params *par, const void *v, size_t len)
{
    par->val[par->n] = v;
    par->len[par->n] = (int)len;
    par->fmt[par->n++] = 1;
}

static void
params_ns_key(pg_params *par, const char *ns, const char *key)
{
    par->n = 0;
    param_text(par, ns);
    param_bin(par, key, strlen(key));
}

/* An int8 column of a binary result. */
static int
get_int8(pg_store *p, const PGresult *res, int row, int col, int64_t *v)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8 || PQfformat(res, col) != 1)
        return sbx_error_set(SBX_EIO, "%s: unexpected result column type", p->label);
    const uint8_t *b = (const uint8_t *)PQgetvalue(res, row, col);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | b[i];
    *v = (int64_t)u;
    return 0;
}

/* ---- operations ---- */

static int
pg_get(kms_store *s, const char *ns, const char *key, uint8_t **val, size_t *len, int64_t *rev)
{
    pg_store *p = from(s);
    pg_params par;
    PGresult *res;
    params_ns_key(&par, ns, key);
    int err = run(p, sql_get, &par, "read", &res);
    if (err < 0)
        return err;
    int64_t r = 0;
    if (PQntuples(res) == 0)
        err = sbx_error_set(SBX_ENOTFOUND, "storage: no row '%s' in namespace '%s'", key, ns);
    else
        err = get_int8(p, res, 0, 1, &r);
    if (err == 0) {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        uint8_t *v = malloc(n + 1);
        if (v == NULL) {
            err = sbx_error_set_nomem();
        } else {
            memcpy(v, PQgetvalue(res, 0, 0), n);
            v[n] = 0;
            *val = v;
            *len = n;
            if (rev != NULL)
                *rev = r;
        }
    }
    PQclear(res);
    return err;
}

static int
pg_put(kms_store *s, const char *ns, const char *key, const void *val, size_t len,
       int64_t expect_rev, int64_t *new_rev)
{
    pg_store *p = from(s);
    pg_params par;
    PGresult *res;
    char revtxt[24];
    const char *sql = expect_rev == KMS_REV_ANY      ? sql_put_any
                      : expect_rev == KMS_REV_ABSENT ? sql_put_absent
                                                     : sql_put_rev;
    params_ns_key(&par, ns, key);
    param_bin(&par, val, len);
    if (expect_rev > 0) {
        snprintf(revtxt, sizeof(revtxt), "%lld", (long long)expect_rev);
        param_text(&par, revtxt);
    }
    int err = run(p, sql, &par, "write", &res);
    if (err < 0)
        return err;
    int64_t r = 0;
    if (PQntuples(res) == 0)
        err = expect_rev == KMS_REV_ABSENT
                  ? sbx_error_set(SBX_ECONFLICT, "storage: row '%s' in namespace '%s' exists", key,
                                  ns)
                  : sbx_error_set(SBX_ECONFLICT,
                                  "storage: row '%s' in namespace '%s' is not at revision %lld",
                                  key, ns, (long long)expect_rev);
    else
        err = get_int8(p, res, 0, 0, &r);
    PQclear(res);
    if (err == 0 && new_rev != NULL)
        *new_rev = r;
    return err;
}

static int
pg_del(kms_store *s, const char *ns, const char *key, int64_t expect_rev)
{
    pg_store *p = from(s);
    pg_params par;
    PGresult *res;
    char revtxt[24];
    params_ns_key(&par, ns, key);
    snprintf(revtxt, sizeof(revtxt), "%lld", (long long)expect_rev);
    param_text(&par, expect_rev == KMS_REV_ANY ? NULL : revtxt);
    int err = run(p, sql_del, &par, "delete", &res);
    if (err < 0)
        return err;
    int64_t existed = 0, deleted = 0;
    err = PQntuples(res) == 1 ? get_int8(p, res, 0, 0, &existed)
                              : sbx_error_set(SBX_EIO, "%s: bad delete result", p->label);
    if (err == 0)
        err = get_int8(p, res, 0, 1, &deleted);
    PQclear(res);
    if (err == 0 && existed == 0 && deleted == 0)
        err = sbx_error_set(SBX_ENOTFOUND, "storage: no row '%s' in namespace '%s'", key, ns);
    else if (err == 0 && deleted == 0)
        err = sbx_error_set(SBX_ECONFLICT,
                            "storage: row '%s' in namespace '%s' is not at revision %lld", key, ns,
                            (long long)expect_rev);
    return err;
}

/* Calls cb for each row of one page; *last gets the page's last key. */
static int
list_page(pg_store *p, const PGresult *res, char last[KMS_STORE_KEY_MAX + 1], kms_store_list_cb cb,
          void *ctx)
{
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t rev = 0;
        size_t klen = (size_t)PQgetlength(res, i, 0);
        const char *k = PQgetvalue(res, i, 0);
        if (klen == 0 || klen > KMS_STORE_KEY_MAX || memchr(k, 0, klen) != NULL)
            return sbx_error_set(SBX_EIO, "%s: table sbx_kv holds a key that is not a valid key",
                                 p->label);
        int err = get_int8(p, res, i, 2, &rev);
        if (err < 0)
            return err;
        memcpy(last, k, klen);
        last[klen] = '\0';
        err = cb(ctx, last, (const uint8_t *)PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1),
                 rev);
        if (err != 0)
            return err;
    }
    return 0;
}

static int
pg_list(kms_store *s, const char *ns, const char *lo, const char *hi, size_t hi_len,
        kms_store_list_cb cb, void *ctx)
{
    pg_store *p = from(s);
    char last[KMS_STORE_KEY_MAX + 1];
    const char *sql = sql_list_first;
    snprintf(last, sizeof(last), "%s", lo);
    for (;;) {
        pg_params par;
        PGresult *res;
        params_ns_key(&par, ns, last);
        param_bin(&par, hi, hi_len);
        int err = run(p, sql, &par, "list", &res);
        if (err < 0)
            return err;
        int rows = PQntuples(res);
        err = list_page(p, res, last, cb, ctx);
        PQclear(res);
        if (err != 0 || rows < PAGE)
            return err;
        sql = sql_list_next;
    }
}

static int
pg_count(kms_store *s, const char *ns, int64_t *n)
{
    pg_store *p = from(s);
    pg_params par = {0};
    PGresult *res;
    param_text(&par, ns);
    int err = run(p, sql_count, &par, "count", &res);
    if (err < 0)
        return err;
    err = PQntuples(res) == 1 ? get_int8(p, res, 0, 0, n)
                              : sbx_error_set(SBX_EIO, "%s: bad count result", p->label);
    PQclear(res);
    return err;
}

static void
pg_close(kms_store *s)
{
    pg_store *p = from(s);
    PQfinish(p->conn);
    sbx_wipe(p->secret, sizeof(p->secret));
    free(p);
}

static const kms_store_ops pg_ops = {
    .name = "postgres",
    .get = pg_get,
    .put = pg_put,
    .del = pg_del,
    .list = pg_list,
    .count = pg_count,
    .close = pg_close,
};

/* ---- open ---- */

/* Checks the URL's syntax and names the database for messages. */
static int
make_label(pg_store *p, const char *url)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        char m[256];
        pg_message(p, perr != NULL ? perr : "out of memory", m, sizeof(m));
        PQfreemem(perr);
        return sbx_error_set(SBX_EINVAL,
                             "storage URL is not a valid PostgreSQL URL (%s): use "
                             "postgres://user[:password]@host[:port]/database",
                             m);
    }
    const char *db = NULL, *host = NULL, *port = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    snprintf(p->label, sizeof(p->label), "PostgreSQL database '%.40s' on %.60s:%.8s as %.40s",
             db != NULL ? db : "(default)", host != NULL ? host : "(default host)",
             port != NULL ? port : "5432", user != NULL ? user : "(default user)");
    PQconninfoFree(opts);
    return 0;
}

static int
connect_db(pg_store *p, const char *url)
{
    // URL settings come last and override these defaults.
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {CONNECT_TIMEOUT, "strongbox-kms", url, NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (p->conn == NULL)
        return sbx_error_set_nomem();
    PQsetNoticeProcessor(p->conn, quiet_notices, NULL);
    if (PQstatus(p->conn) != CONNECTION_OK)
        return pg_error(p, "cannot connect (is the server running and the URL right?)",
                        PQerrorMessage(p->conn));
    int err = session_setup(p);
    if (err < 0)
        return err;
    PGresult *res = PQexec(p->conn, sql_schema);
    err = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : result_error(p, "create table", res);
    PQclear(res);
    if (err < 0) {
        res = PQexec(p->conn, "ROLLBACK");
        PQclear(res);
    }
    return err;
}

/* see store_impl.h */
int
kms__store_pg_open(kms_store **out, const char *url)
{
    pg_store *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return sbx_error_set_nomem();
    p->base.ops = &pg_ops;
    find_password(p, url);
    int err = make_label(p, url);
    if (err == 0)
        err = connect_db(p, url);
    if (err < 0) {
        pg_close(&p->base);
        return err;
    }
    *out = &p->base;
    return 0;
}
