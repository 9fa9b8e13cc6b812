/*
 * sqlite/sbx_sqlite.c - SQLite loadable extension over strongbox/records.h.
 *
 *     .load ./sbx_sqlite
 *     INSERT INTO users(id, ssn) VALUES (42, sbx_encrypt('123-45-6789', 'file:/etc/app/rec.key',
 *                                                        'users.ssn.42'));
 *     SELECT sbx_decrypt(ssn, 'users.ssn.' || id) FROM users;
 *
 * sbx_encrypt(value, keyref, context)  record BLOB; NULL value -> NULL
 * sbx_decrypt(value, context)          the original value and type; NULL -> NULL
 * sbx_is_encrypted(value)              1 when value is a record BLOB, else 0
 *
 * Implementation notes: integers and reals travel as 8 bytes big-endian;
 * text as UTF-8. Decrypted values are handed to SQLite in a buffer whose
 * destructor wipes it. sbx_encrypt and sbx_decrypt are SQLITE_DIRECTONLY:
 * triggers, views and schema of a database (which may come from someone
 * else) cannot call them; only top-level SQL can. Error messages come from
 * the library and never contain values or keys.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "strongbox/error.h"
#include "strongbox/kms.h"
#include "strongbox/memory.h"
#include "strongbox/records.h"
#include <stdlib.h>
#include <string.h>

static void
result_lib_error(sqlite3_context *ctx, const char *fn)
{
    char *msg = sqlite3_mprintf("%s: %s", fn, sbx_error_last()->message);
    sqlite3_result_error(ctx, msg != NULL ? msg : fn, -1);
    sqlite3_free(msg);
}

/* The context argument as bytes: a BLOB as is, anything else as its text. */
static int
context_arg(sqlite3_context *ctx, sqlite3_value *v, const char *fn, const void **p, size_t *n)
{
    if (sqlite3_value_type(v) == SQLITE_NULL) {
        char *msg = sqlite3_mprintf("%s: context is NULL (is a row id or key column NULL?)", fn);
        sqlite3_result_error(ctx, msg != NULL ? msg : fn, -1);
        sqlite3_free(msg);
        return -1;
    }
    if (sqlite3_value_type(v) == SQLITE_BLOB) {
        *p = sqlite3_value_blob(v);
    } else {
        *p = sqlite3_value_text(v);
        if (*p == NULL) {
            sqlite3_result_error_nomem(ctx);
            return -1;
        }
    }
    *n = (size_t)sqlite3_value_bytes(v);
    if (*p == NULL)
        *p = "";
    return 0;
}

static void
put64(uint8_t out[8], uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        out[i] = (uint8_t)x;
}

static uint64_t
get64(const uint8_t in[8])
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | in[i];
    return x;
}

static void
fn_encrypt(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sbx_buf rec = SBX_BUF_INIT;
    uint8_t num[8];
    const void *value = num, *context = NULL;
    size_t len = 8, ctx_len = 0;
    int type = sqlite3_value_type(argv[0]);
    const char *keyref = (const char *)sqlite3_value_text(argv[1]);
    if (type == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (sqlite3_value_type(argv[1]) != SQLITE_TEXT || keyref == NULL) {
        sqlite3_result_error(ctx,
                             "sbx_encrypt: keyref must be text: 'file:PATH' or "
                             "'https://host:port/NAME'",
                             -1);
        return;
    }
    if (context_arg(ctx, argv[2], "sbx_encrypt", &context, &ctx_len) < 0)
        return;
    if (type == SQLITE_INTEGER) {
        put64(num, (uint64_t)sqlite3_value_int64(argv[0]));
    } else if (type == SQLITE_FLOAT) {
        double d = sqlite3_value_double(argv[0]);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        put64(num, bits);
    } else {
        value = type == SQLITE_BLOB ? sqlite3_value_blob(argv[0]) : sqlite3_value_text(argv[0]);
        len = (size_t)sqlite3_value_bytes(argv[0]);
        if (value == NULL && len > 0) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    if (sbx_record_encrypt(keyref, type, value, len, context, ctx_len, &rec) < 0)
        result_lib_error(ctx, "sbx_encrypt");
    else
        sqlite3_result_blob64(ctx, rec.ptr, rec.len, SQLITE_TRANSIENT);
    SBX_WIPE_BUF(num);
    sbx_buf_dispose(&rec);
}

/* A plaintext buffer SQLite frees through wipe_free: length stored before it. */
static void
wipe_free(void *p)
{
    if (p == NULL)
        return;
    uint8_t *base = (uint8_t *)p - sizeof(size_t);
    size_t n;
    memcpy(&n, base, sizeof n);
    sbx_wipe(base, n + sizeof(size_t));
    free(base);
}

static uint8_t *
wipe_alloc(const uint8_t *src, size_t n)
{
    uint8_t *base = malloc(sizeof(size_t) + n + 1);
    if (base == NULL)
        return NULL;
    memcpy(base, &n, sizeof n);
    if (n > 0)
        memcpy(base + sizeof(size_t), src, n);
    base[sizeof(size_t) + n] = 0;
    return base + sizeof(size_t);
}

static void
result_value(sqlite3_context *ctx, int type, const sbx_buf *plain)
{
    if (type == SQLITE_INTEGER) {
        sqlite3_result_int64(ctx, (sqlite3_int64)get64(plain->ptr));
    } else if (type == SQLITE_FLOAT) {
        uint64_t bits = get64(plain->ptr);
        double d;
        memcpy(&d, &bits, 8);
        sqlite3_result_double(ctx, d);
    } else {
        uint8_t *copy = wipe_alloc(plain->ptr, plain->len); // n + 1 bytes, n >= 0
        if (copy == NULL)
            sqlite3_result_error_nomem(ctx);
        else if (type == SQLITE_TEXT)
            sqlite3_result_text64(ctx, (const char *)copy, plain->len, wipe_free, SQLITE_UTF8);
        else
            sqlite3_result_blob64(ctx, copy, plain->len, wipe_free);
    }
}

static void
fn_decrypt(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sbx_buf plain = SBX_BUF_INIT;
    const void *context = NULL;
    size_t ctx_len = 0;
    int type = 0;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const void *rec = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || !sbx_record_is_encrypted(rec, len)) {
        sqlite3_result_error(ctx,
                             "sbx_decrypt: value is not an encrypted record (sbx_encrypt "
                             "makes them; plaintext left in the column?)",
                             -1);
        return;
    }
    if (context_arg(ctx, argv[1], "sbx_decrypt", &context, &ctx_len) < 0)
        return;
    if (sbx_record_decrypt(&type, &plain, rec, len, context, ctx_len) < 0)
        result_lib_error(ctx, "sbx_decrypt");
    else
        result_value(ctx, type, &plain);
    sbx_buf_dispose(&plain);
}

static void
fn_is_encrypted(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int yes =
        sqlite3_value_type(argv[0]) == SQLITE_BLOB &&
        sbx_record_is_encrypted(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]));
    sqlite3_result_int(ctx, yes);
}

__attribute__((visibility("default"))) int
sqlite3_sbxsqlite_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    sbx_kms_init(); // https:// keyrefs (done at load already; harmless again)
    // SQLITE_DIRECTONLY (3.30) keeps views and triggers of a database from someone else
    // from calling sbx_decrypt/sbx_encrypt; older SQLite ignores the flag silently.
    if (sqlite3_libversion_number() < 3030000) {
        if (errmsg != NULL)
            *errmsg = sqlite3_mprintf("sbx_sqlite needs SQLite 3.30 or newer (this is %s): "
                                      "older versions would let views and triggers call "
                                      "sbx_decrypt",
                                      sqlite3_libversion());
        return SQLITE_ERROR;
    }
    const int direct = SQLITE_UTF8 | SQLITE_DIRECTONLY;
    int rc = sqlite3_create_function(db, "sbx_encrypt", 3, direct, NULL, fn_encrypt, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "sbx_decrypt", 2, direct, NULL, fn_decrypt, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "sbx_is_encrypted", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                     NULL, fn_is_encrypted, NULL, NULL);
    return rc;
}
