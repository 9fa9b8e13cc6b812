/*
 * server/api_seed.c - the keas.kmi-compatible requests (GET /, POST /new,
 * POST /key; text/plain, as that server answered), /v1/health and /metrics.
 */
#include "api_json.h"
#include "metrics.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEK_TEXT_MAX 256 /* "sbx-kek-1:" + 32 + ":" + 43, with room to spare */

static void
reply_text(kms_call *c, int status, const char *ctype, const char *text)
{
    size_t len = strlen(text);
    uint8_t *body = malloc(len ? len : 1);
    if (body == NULL) {
        kms_reply_error(c, 500, "out of memory");
        return;
    }
    memcpy(body, text, len);
    kms_reply_raw(c, status, ctype, body, len);
}

void
kms_h_seed_status(kms_call *c, const kms_args *a)
{
    int64_t n = 0;
    char text[64];
    (void)a;
    int err = kms_key_count(c->st, &n);
    if (err < 0) {
        kms_reply_sbx(c, err);
        return;
    }
    snprintf(text, sizeof(text), "KMS server holding %" PRId64 " keys", n);
    reply_text(c, 200, "text/plain", text);
}

void
kms_h_seed_new(kms_call *c, const kms_args *a)
{
    char *kek = NULL;
    (void)a;
    int err = kms_seed_new(c->api->ks, c->st, &kek);
    if (err < 0) {
        kms_reply_sbx(c, err);
        return;
    }
    size_t len = strlen(kek);
    uint8_t *body = malloc(len + 1);
    if (body != NULL) {
        memcpy(body, kek, len);
        body[len] = '\n';
        kms_reply_raw(c, 200, "text/plain", body, len + 1);
    } else {
        kms_reply_error(c, 500, "out of memory");
    }
    sbx_wipe(kek, len);
    free(kek);
}

static bool
is_space(uint8_t ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

void
kms_h_seed_key(kms_call *c, const kms_args *a)
{
    const uint8_t *p = c->req->body;
    size_t len = c->req->body_len;
    char kek[KEK_TEXT_MAX + 1];
    uint8_t dek[32];
    (void)a;
    while (len > 0 && is_space(p[0]))
        p++, len--;
    while (len > 0 && is_space(p[len - 1]))
        len--;
    if (len == 0 || len > KEK_TEXT_MAX || memchr(p, '\0', len) != NULL) {
        kms_reply_error(c, 400, "the body must be a key encrypting key from POST /new");
        return;
    }
    memcpy(kek, p, len);
    kek[len] = '\0';
    int err = kms_seed_key(c->api->ks, c->st, kek, len, dek);
    SBX_WIPE_BUF(kek);
    if (err == SBX_ENOTFOUND) { // keas.kmi's answer, which old clients know
        snprintf(c->error, sizeof(c->error), "Key not found");
        reply_text(c, 404, "text/plain", "Key not found");
    } else if (err < 0) {
        kms_reply_sbx(c, err);
    } else {
        uint8_t *body = malloc(sizeof(dek));
        if (body != NULL) {
            memcpy(body, dek, sizeof(dek));
            kms_reply_raw(c, 200, "application/octet-stream", body, sizeof(dek));
        } else {
            kms_reply_error(c, 500, "out of memory");
        }
    }
    SBX_WIPE_BUF(dek);
}

void
kms_h_health(kms_call *c, const kms_args *a)
{
    kms_buf b = {0};
    (void)a;
    kms_buf_puts(&b, "{\"status\":\"ok\",\"storage\":");
    kms_buf_str(&b, c->api->storage);
    kms_buf_printf(&b, ",\"dev\":%s,\"version\":\"%s\"}", c->api->dev ? "true" : "false",
                   SBX_VERSION_STRING);
    kms_reply_json(c, 200, &b);
}

void
kms_h_metrics(kms_call *c, const kms_args *a)
{
    size_t len = 0;
    (void)a;
    char *text = kms_metrics_render(&len);
    if (text == NULL) {
        kms_reply_error(c, 500, "out of memory");
        return;
    }
    kms_reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", (uint8_t *)text, len);
}
