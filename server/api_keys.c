/*
 * server/api_keys.c - the named-key endpoints of the HTTP API: create, read,
 * list, rotate, config, delete/restore, destroy, and the data plane
 * (datakey, encrypt, decrypt, rewrap) with their batch forms.
 *
 * Implementation notes:
 *  - The four data operations share one runner: an item function turns one
 *    request object into one result object (written to the output only on
 *    success) or an error status and message. A single request answers the
 *    item's result or error; {"batch_input": [...]} answers 200 with
 *    {"batch_results": [...]} in order, failed items as {"error","status"}.
 *  - Secrets (data keys, decrypted plaintexts, decoded request plaintexts)
 *    stay in stack arrays, secret memory or wiped heap buffers, and reach the
 *    response only through kms_buf_b64.
 */
#include "api_json.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROTATE_PERIOD_MIN 3600
#define ROTATE_PERIOD_MAX ((int64_t)100 * 366 * 86400)
#define DELAY_MAX         ((uint64_t)10 * 366 * 86400)

/* ---- metadata ---- */

static void
render_info(kms_buf *b, const kms_key_info *k)
{
    char id[33];
    kms_hex(id, k->id, 16);
    kms_buf_puts(b, "{\"name\":");
    kms_buf_str(b, k->name);
    kms_buf_printf(b,
                   ",\"id\":\"%s\",\"created\":%" PRId64 ",\"rotated\":%" PRId64
                   ",\"latest_version\":%" PRIu32 ",\"min_decryption_version\":%" PRIu32,
                   id, k->created, k->rotated, k->latest_version, k->min_decryption_version);
    kms_buf_printf(
        b, ",\"auto_rotate_period\":%" PRId64 ",\"deletion_time\":%" PRId64 ",\"versions\":[",
        k->auto_rotate_period, k->deletion_time);
    for (size_t i = 0; i < k->nversions; i++) {
        const kms_version_info *v = &k->versions[i];
        bool gone = v->state == KMS_VERSION_DESTROYED;
        kms_buf_printf(b, "%s{\"version\":%" PRIu32 ",\"created\":%" PRId64 ",\"state\":\"%s\"",
                       i ? "," : "", v->version, v->created, gone ? "destroyed" : "active");
        if (gone)
            kms_buf_printf(b, ",\"destroyed\":%" PRId64, v->destroyed);
        kms_buf_puts(b, "}");
    }
    kms_buf_puts(b, "]}");
}

/* Answers the metadata (status) or the error err. */
static void
reply_info(kms_call *c, int status, int err, kms_key_info *info)
{
    if (err < 0) {
        kms_key_info_dispose(info);
        kms_reply_sbx(c, err);
        return;
    }
    kms_buf b = {0};
    render_info(&b, info);
    kms_key_info_dispose(info);
    kms_reply_json(c, status, &b);
}

/* Replies 400 with the last error (a bad field) and returns true when err < 0. */
static bool
bad_field(kms_call *c, int err)
{
    if (err < 0)
        kms_reply_error(c, err == SBX_ENOMEM ? 500 : 400, "%s", sbx_error_last()->message);
    return err < 0;
}

static int
rotate_period(const json_t *body, bool *present, int64_t *period)
{
    int err = kms_json_int(body, "auto_rotate_period", present, period);
    if (err == 0 && *present &&
        (*period < 0 || (*period > 0 && *period < ROTATE_PERIOD_MIN) ||
         *period > ROTATE_PERIOD_MAX))
        err =
            sbx_error_set(SBX_EFORMAT, "auto_rotate_period must be 0 (off) or at least %d seconds",
                          ROTATE_PERIOD_MIN);
    return err;
}

/* ---- control plane ---- */

void
kms_h_key_create(kms_call *c, const kms_args *a)
{
    static const char *const fields[] = {"auto_rotate_period", NULL};
    kms_key_options opt = {0};
    kms_key_info info = {0};
    bool has;
    if (bad_field(c, kms_json_only(a->body, fields)) ||
        bad_field(c, rotate_period(a->body, &has, &opt.auto_rotate_period)))
        return;
    int err = kms_key_create(c->api->ks, c->st, c->key, &opt, &info);
    if (err == 0)
        c->key_version = info.latest_version;
    reply_info(c, 201, err, &info);
}

void
kms_h_key_read(kms_call *c, const kms_args *a)
{
    kms_key_info info = {0};
    (void)a;
    reply_info(c, 200, kms_key_get(c->api->ks, c->st, c->key, &info), &info);
}

void
kms_h_key_rotate(kms_call *c, const kms_args *a)
{
    static const char *const fields[] = {NULL};
    kms_key_info info = {0};
    if (bad_field(c, kms_json_only(a->body, fields)))
        return;
    int err = kms_key_rotate(c->api->ks, c->st, c->key, &info);
    if (err == 0)
        c->key_version = info.latest_version;
    reply_info(c, 200, err, &info);
}

static int
min_version(const json_t *body, kms_key_config *cfg)
{
    int64_t v = 0;
    int err = kms_json_int(body, "min_decryption_version", &cfg->set_min_decryption_version, &v);
    if (err == 0 && cfg->set_min_decryption_version && (v < 1 || v > UINT32_MAX))
        err = sbx_error_set(SBX_EFORMAT,
                            "min_decryption_version must be a version number (1 or more)");
    cfg->min_decryption_version = (uint32_t)(err == 0 ? v : 0);
    return err;
}

void
kms_h_key_config(kms_call *c, const kms_args *a)
{
    static const char *const fields[] = {"min_decryption_version", "auto_rotate_period", NULL};
    kms_key_config cfg = {0};
    kms_key_info info = {0};
    if (bad_field(c, kms_json_only(a->body, fields)) || bad_field(c, min_version(a->body, &cfg)) ||
        bad_field(c, rotate_period(a->body, &cfg.set_auto_rotate_period, &cfg.auto_rotate_period)))
        return;
    reply_info(c, 200, kms_key_configure(c->api->ks, c->st, c->key, &cfg, &info), &info);
}

void
kms_h_key_delete(kms_call *c, const kms_args *a)
{
    static const char *const params[] = {"delay", NULL};
    char val[24];
    bool has;
    uint64_t delay = KMS_DEFAULT_DELETE_DELAY;
    kms_key_info info = {0};
    (void)a;
    if (bad_field(c, kms_query_only(c->req->query, params)))
        return;
    int err = kms_query_get(c->req->query, "delay", val, sizeof(val), &has);
    if (err == 0 && has && kms_parse_u64(val, DELAY_MAX, &delay) < 0)
        err = SBX_EFORMAT;
    if (err < 0) {
        kms_reply_error(c, 400, "delay must be a number of seconds from 0 to %" PRIu64, DELAY_MAX);
        return;
    }
    reply_info(c, 200, kms_key_schedule_delete(c->api->ks, c->st, c->key, (int64_t)delay, &info),
               &info);
}

void
kms_h_key_restore(kms_call *c, const kms_args *a)
{
    static const char *const fields[] = {NULL};
    kms_key_info info = {0};
    if (bad_field(c, kms_json_only(a->body, fields)))
        return;
    reply_info(c, 200, kms_key_restore(c->api->ks, c->st, c->key, &info), &info);
}

void
kms_h_key_destroy(kms_call *c, const kms_args *a)
{
    static const char *const fields[] = {NULL};
    uint64_t v;
    kms_key_info info = {0};
    if (kms_parse_u64(a->seg[1], UINT32_MAX, &v) < 0 || v == 0) {
        kms_reply_error(c, 400, "the version in the path must be a number from 1 to %" PRIu32,
                        UINT32_MAX);
        return;
    }
    c->key_version = (uint32_t)v;
    if (bad_field(c, kms_json_only(a->body, fields)))
        return;
    reply_info(c, 200, kms_key_destroy_version(c->api->ks, c->st, c->key, (uint32_t)v, &info),
               &info);
}

struct list_ctx {
    kms_call *c;
    kms_buf *b;
    size_t n;
    int err;
};

static int
list_one(void *arg, const kms_key_info *info)
{
    struct list_ctx *lc = arg;
    int err = kms_authorize(lc->c->api->auth, lc->c->st, &lc->c->who, KMS_OP_LIST, info->name);
    if (err == SBX_EDENIED)
        return 0;
    if (err < 0) {
        lc->err = err;
        return 1;
    }
    kms_buf_puts(lc->b, lc->n++ ? "," : "");
    kms_buf_str(lc->b, info->name);
    return 0;
}

void
kms_h_key_list(kms_call *c, const kms_args *a)
{
    static const char *const params[] = {"prefix", NULL};
    char prefix[KMS_NAME_MAX + 1];
    bool has;
    kms_buf b = {0};
    struct list_ctx lc = {c, &b, 0, 0};
    (void)a;
    if (bad_field(c, kms_query_only(c->req->query, params)))
        return;
    if (kms_query_get(c->req->query, "prefix", prefix, sizeof(prefix), &has) < 0) {
        kms_reply_error(c, 400, "prefix must be at most %d characters of a key name", KMS_NAME_MAX);
        return;
    }
    kms_buf_puts(&b, "{\"keys\":[");
    int err = kms_key_list(c->api->ks, c->st, prefix, list_one, &lc);
    if (lc.err < 0)
        err = lc.err;
    if (err < 0) {
        kms_buf_dispose(&b);
        kms_reply_sbx(c, err);
        return;
    }
    kms_buf_puts(&b, "]}");
    kms_reply_json(c, 200, &b);
}

/* ---- data plane: items ---- */

typedef struct {
    kms_call *c;
    bool batch;
    int authz[2]; /* datakey, datakey-wrapped: 0 unknown, 1 allowed, < 0 the error */
    char authz_msg[2][160];
} runner;

typedef struct {
    int status;
    uint32_t version;
    kms_op op;
    char msg[256];
} item_result;

static void item_fail(item_result *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
item_fail(item_result *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    r->status = status;
}

/* Records err (with sbx_error_last()'s message); true when err < 0. */
static bool
item_err(item_result *r, int err)
{
    if (err < 0)
        item_fail(r, kms_status_of(err), "%s", sbx_error_last()->message);
    return err < 0;
}

/* Field errors are 400 (out of memory stays 500). */
static bool
item_field(item_result *r, int err)
{
    if (err < 0)
        item_fail(r, err == SBX_ENOMEM ? 500 : 400, "%s", sbx_error_last()->message);
    return err < 0;
}

static bool
item_authorize(runner *run, kms_op op, item_result *r)
{
    int i = op == KMS_OP_DATAKEY ? 0 : 1;
    kms_call *c = run->c;
    if (run->authz[i] == 0) {
        int err = kms_authorize(c->api->auth, c->st, &c->who, op, c->key);
        run->authz[i] = err < 0 ? err : 1;
        snprintf(run->authz_msg[i], sizeof(run->authz_msg[i]), "%s",
                 err < 0 ? sbx_error_last()->message : "");
    }
    if (run->authz[i] < 0)
        item_fail(r, kms_status_of(run->authz[i]), "%s", run->authz_msg[i]);
    return run->authz[i] > 0;
}

static void
ciphertext_result(kms_buf *out, const char *ct, uint32_t v)
{
    kms_buf_puts(out, "{\"ciphertext\":");
    kms_buf_str(out, ct);
    kms_buf_printf(out, ",\"key_version\":%" PRIu32 "}", v);
}

static int
datakey_bits(const json_t *item, int64_t *bits)
{
    bool has;
    *bits = 256;
    int err = kms_json_int(item, "bits", &has, bits);
    if (err < 0 || (has && *bits != 128 && *bits != 256 && *bits != 512))
        return sbx_error_set(SBX_EFORMAT, "bits must be 128, 256 or 512");
    return 0;
}

static void
datakey_item(runner *run, const json_t *item, kms_buf *out, item_result *r)
{
    static const char *const fields[] = {"bits", "context", "wrapped_only", NULL};
    kms_call *c = run->c;
    int64_t bits;
    bool has, wrapped = false;
    uint8_t dek[64], *ctx = NULL;
    size_t ctx_len = 0;
    char *ct = NULL;
    if (item_field(r, kms_json_only(item, fields)) || item_field(r, datakey_bits(item, &bits)) ||
        item_field(r, kms_json_bool(item, "wrapped_only", &has, &wrapped)))
        return;
    r->op = wrapped ? KMS_OP_DATAKEY_WRAPPED : KMS_OP_DATAKEY;
    if (!item_authorize(run, r->op, r) || item_field(r, kms_json_context(item, &ctx, &ctx_len)))
        return;
    int err = kms_datakey(c->api->ks, c->st, c->key, ctx, ctx_len, (size_t)bits / 8,
                          wrapped ? NULL : dek, &ct, &r->version);
    if (!item_err(r, err)) {
        kms_buf_puts(out, "{");
        if (!wrapped) {
            kms_buf_puts(out, "\"plaintext\":");
            kms_buf_b64(out, dek, (size_t)bits / 8);
            kms_buf_puts(out, ",");
        }
        kms_buf_puts(out, "\"ciphertext\":");
        kms_buf_str(out, ct);
        kms_buf_printf(out, ",\"key_version\":%" PRIu32 "}", r->version);
    }
    SBX_WIPE_BUF(dek);
    sbx_wipe(ctx, ctx_len);
    free(ctx);
    free(ct);
}

/* Decodes the base64 "plaintext" field into a heap buffer of *cap bytes (wipe it). */
static int
plaintext_field(const json_t *item, uint8_t **pt, size_t *pt_len, size_t *cap, item_result *r)
{
    const char *s = NULL;
    size_t len = 0;
    bool has;
    *pt = NULL;
    *cap = 0;
    if (item_field(r, kms_json_str(item, "plaintext", &has, &s, &len)))
        return -1;
    if (!has) {
        item_fail(r, 400, "plaintext is required (standard base64)");
        return -1;
    }
    if (len > SBX_BASE64_PAD_LEN(KMS_ENCRYPT_MAX)) {
        item_fail(r, 413, "plaintext is over %u bytes", KMS_ENCRYPT_MAX);
        return -1;
    }
    if ((*pt = malloc(SBX_BASE64_DECODED_MAX(len) + 1)) == NULL) {
        item_fail(r, 500, "out of memory");
        return -1;
    }
    *cap = SBX_BASE64_DECODED_MAX(len) + 1;
    if (sbx_base64_decode(*pt, *cap, pt_len, s, len, true) < 0) {
        item_fail(r, 400, "plaintext must be standard base64 with padding");
        return -1;
    }
    if (*pt_len > KMS_ENCRYPT_MAX) {
        item_fail(r, 413, "plaintext is over %u bytes", KMS_ENCRYPT_MAX);
        return -1;
    }
    return 0;
}

static void
encrypt_item(runner *run, const json_t *item, kms_buf *out, item_result *r)
{
    static const char *const fields[] = {"plaintext", "context", NULL};
    kms_call *c = run->c;
    uint8_t *pt = NULL, *ctx = NULL;
    size_t pt_len = 0, cap = 0, ctx_len = 0;
    char *ct = NULL;
    if (!item_field(r, kms_json_only(item, fields)) &&
        plaintext_field(item, &pt, &pt_len, &cap, r) == 0 &&
        !item_field(r, kms_json_context(item, &ctx, &ctx_len)) &&
        !item_err(
            r, kms_encrypt(c->api->ks, c->st, c->key, ctx, ctx_len, pt, pt_len, &ct, &r->version)))
        ciphertext_result(out, ct, r->version);
    sbx_wipe(pt, cap);
    free(pt);
    sbx_wipe(ctx, ctx_len);
    free(ctx);
    free(ct);
}

/* The "ciphertext" field (required, bounded). */
static int
ciphertext_field(const json_t *item, const char **ct, item_result *r)
{
    size_t len = 0;
    bool has;
    if (item_field(r, kms_json_str(item, "ciphertext", &has, ct, &len)))
        return -1;
    if (!has) {
        item_fail(r, 400, "ciphertext is required");
        return -1;
    }
    if (len > KMS_CIPHERTEXT_MAX) {
        item_fail(r, 400, "ciphertext is longer than %u bytes", KMS_CIPHERTEXT_MAX);
        return -1;
    }
    return 0;
}

static void
decrypt_item(runner *run, const json_t *item, kms_buf *out, item_result *r)
{
    static const char *const fields[] = {"ciphertext", "context", NULL};
    kms_call *c = run->c;
    const char *ct = NULL;
    uint8_t *pt = NULL, *ctx = NULL;
    size_t pt_len = 0, ctx_len = 0;
    if (!item_field(r, kms_json_only(item, fields)) && ciphertext_field(item, &ct, r) == 0 &&
        !item_field(r, kms_json_context(item, &ctx, &ctx_len)) &&
        !item_err(r, kms_decrypt(c->api->ks, c->st, c->key, ctx, ctx_len, ct, &pt, &pt_len,
                                 &r->version))) {
        kms_buf_puts(out, "{\"plaintext\":");
        kms_buf_b64(out, pt, pt_len);
        kms_buf_printf(out, ",\"key_version\":%" PRIu32 "}", r->version);
    }
    if (pt != NULL)
        sbx_secret_free(pt, pt_len + 1);
    sbx_wipe(ctx, ctx_len);
    free(ctx);
}

static void
rewrap_item(runner *run, const json_t *item, kms_buf *out, item_result *r)
{
    static const char *const fields[] = {"ciphertext", "context", NULL};
    kms_call *c = run->c;
    const char *ct = NULL;
    uint8_t *ctx = NULL;
    size_t ctx_len = 0;
    char *nct = NULL;
    if (!item_field(r, kms_json_only(item, fields)) && ciphertext_field(item, &ct, r) == 0 &&
        !item_field(r, kms_json_context(item, &ctx, &ctx_len)) &&
        !item_err(r, kms_rewrap(c->api->ks, c->st, c->key, ctx, ctx_len, ct, &nct, &r->version)))
        ciphertext_result(out, nct, r->version);
    sbx_wipe(ctx, ctx_len);
    free(ctx);
    free(nct);
}

/* ---- data plane: single and batch ---- */

typedef void (*item_fn)(runner *run, const json_t *item, kms_buf *out, item_result *r);

static void
run_single(runner *run, const json_t *body, item_fn fn)
{
    kms_call *c = run->c;
    kms_buf b = {0};
    item_result r = {200, 0, c->op, ""};
    fn(run, body, &b, &r);
    c->op = r.op;
    c->key_version = r.version;
    if (r.status == 200) {
        kms_reply_json(c, 200, &b);
    } else {
        kms_buf_dispose(&b);
        kms_reply_error(c, r.status, "%s", r.msg);
    }
}

static void
run_item(runner *run, const json_t *item, size_t i, kms_buf *b, item_fn fn)
{
    item_result r = {200, 0, run->c->op, ""};
    if (!json_is_object(item))
        item_fail(&r, 400, "batch_input[%zu] must be an object", i);
    else
        fn(run, item, b, &r);
    if (r.status != 200) {
        kms_buf_puts(b, "{\"error\":");
        kms_buf_str(b, r.msg);
        kms_buf_printf(b, ",\"status\":%d}", r.status);
    } else if (r.version != 0) {
        run->c->key_version = r.version;
    }
    kms_call *c = run->c;
    if (c->items != NULL) { // the audit line's record of this item
        kms_item_record *rec = &c->items[c->nitems++];
        rec->op = r.op;
        rec->key_version = r.version;
        rec->status = r.status;
        snprintf(rec->error, sizeof rec->error, "%.*s", (int)sizeof rec->error - 1,
                 r.status != 200 ? r.msg : "");
    }
}

static void
run_items(kms_call *c, const kms_args *a, item_fn fn)
{
    runner run = {.c = c};
    json_t *batch = json_object_get(a->body, "batch_input");
    if (batch == NULL) {
        run_single(&run, a->body, fn);
        return;
    }
    run.batch = true;
    if (json_object_size(a->body) != 1) {
        kms_reply_error(c, 400, "batch_input cannot be combined with other fields");
        return;
    }
    if (!json_is_array(batch)) {
        kms_reply_error(c, 400, "batch_input must be an array of request objects");
        return;
    }
    if (json_array_size(batch) > KMS_BATCH_MAX) {
        kms_reply_error(c, 413, "batch_input has more than %d items", KMS_BATCH_MAX);
        return;
    }
    c->batch = true;
    c->items = calloc(json_array_size(batch) ? json_array_size(batch) : 1, sizeof *c->items);
    if (c->items == NULL) {
        kms_reply_error(c, 500, "out of memory");
        return;
    }
    kms_buf b = {0};
    kms_buf_puts(&b, "{\"batch_results\":[");
    for (size_t i = 0; i < json_array_size(batch); i++) {
        kms_buf_puts(&b, i ? "," : "");
        run_item(&run, json_array_get(batch, i), i, &b, fn);
    }
    kms_buf_puts(&b, "]}");
    kms_reply_json(c, 200, &b);
}

void
kms_h_datakey(kms_call *c, const kms_args *a)
{
    run_items(c, a, datakey_item);
}

void
kms_h_encrypt(kms_call *c, const kms_args *a)
{
    run_items(c, a, encrypt_item);
}

void
kms_h_decrypt(kms_call *c, const kms_args *a)
{
    run_items(c, a, decrypt_item);
}

void
kms_h_rewrap(kms_call *c, const kms_args *a)
{
    run_items(c, a, rewrap_item);
}
