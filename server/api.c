/*
 * server/api.c - the HTTP API: routing, authentication, content checks,
 * audit and metrics around the handlers of api_keys.c, api_admin.c and
 * api_seed.c (see api.h; endpoints in docs/kms.md).
 *
 * Implementation notes:
 *  - Routing is on the raw path, as it came in: a %2F inside a segment is
 *    part of that segment, never a separator. A path that does not start
 *    with '/', holds a malformed %-escape or %00 is refused (400) first; the
 *    segments a route matched are percent-decoded afterwards, so a key name
 *    holding a decoded '/' is just an invalid name.
 *  - A request the transport refused (kms_request.refuse_status: framing)
 *    gets that answer and an audit line like any other.
 *  - Order of checks: route (404, 405 with Allow) -> caller (401; not for
 *    /v1/health) -> key name in the path (400) -> policy (403; datakey is
 *    authorized after its body is read, because wrapped_only picks the
 *    operation, and the key list filters names one by one) -> content type
 *    (415) -> JSON body (400) -> handler.
 *  - After the handler: one audit line; if the log refuses it (fail-closed),
 *    the response, which may hold key material, is wiped and replaced by 503.
 *    Then the metrics, with the latency of the whole request.
 */
#include "api_json.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BEARER_MAX 512 /* longest token we look up */

enum {
    R_NOAUTH = 1,  /* no caller needed (health) */
    R_JSON = 2,    /* the body, if any, is JSON (415 / 400 checks) */
    R_KEY = 4,     /* seg[0] is a key name */
    R_NOAUTHZ = 8, /* the handler authorizes (list, datakey) */
};

typedef void (*handler_fn)(kms_call *c, const kms_args *a);

typedef struct {
    const char *method;
    const char *pattern; /* '*' matches one non-empty segment */
    kms_op op;
    unsigned flags;
    handler_fn fn;
} route;

static const route routes[] = {
    {"GET", "/", KMS_OP_SEED, 0, kms_h_seed_status},
    {"POST", "/new", KMS_OP_SEED, 0, kms_h_seed_new},
    {"POST", "/key", KMS_OP_SEED, 0, kms_h_seed_key},
    {"GET", "/v1/health", KMS_OP_HEALTH, R_NOAUTH, kms_h_health},
    {"GET", "/metrics", KMS_OP_METRICS, 0, kms_h_metrics},
    {"GET", "/v1/keys", KMS_OP_LIST, R_NOAUTHZ, kms_h_key_list},
    {"GET", "/v1/keys/*", KMS_OP_READ, R_KEY, kms_h_key_read},
    {"POST", "/v1/keys/*", KMS_OP_CREATE, R_KEY | R_JSON, kms_h_key_create},
    {"DELETE", "/v1/keys/*", KMS_OP_DELETE, R_KEY, kms_h_key_delete},
    {"POST", "/v1/keys/*/rotate", KMS_OP_ROTATE, R_KEY | R_JSON, kms_h_key_rotate},
    {"POST", "/v1/keys/*/config", KMS_OP_CONFIG, R_KEY | R_JSON, kms_h_key_config},
    {"POST", "/v1/keys/*/restore", KMS_OP_DELETE, R_KEY | R_JSON, kms_h_key_restore},
    {"POST", "/v1/keys/*/versions/*/destroy", KMS_OP_DESTROY, R_KEY | R_JSON, kms_h_key_destroy},
    {"POST", "/v1/keys/*/datakey", KMS_OP_DATAKEY, R_KEY | R_JSON | R_NOAUTHZ, kms_h_datakey},
    {"POST", "/v1/keys/*/encrypt", KMS_OP_ENCRYPT, R_KEY | R_JSON, kms_h_encrypt},
    {"POST", "/v1/keys/*/decrypt", KMS_OP_DECRYPT, R_KEY | R_JSON, kms_h_decrypt},
    {"POST", "/v1/keys/*/rewrap", KMS_OP_REWRAP, R_KEY | R_JSON, kms_h_rewrap},
    {"GET", "/v1/tokens", KMS_OP_ADMIN, 0, kms_h_token_list},
    {"POST", "/v1/tokens", KMS_OP_ADMIN, R_JSON, kms_h_token_create},
    {"DELETE", "/v1/tokens/*", KMS_OP_ADMIN, 0, kms_h_token_revoke},
    {"GET", "/v1/policies", KMS_OP_ADMIN, 0, kms_h_policy_list},
    {"GET", "/v1/policies/*", KMS_OP_ADMIN, 0, kms_h_policy_get},
    {"PUT", "/v1/policies/*", KMS_OP_ADMIN, R_JSON, kms_h_policy_put},
    {"DELETE", "/v1/policies/*", KMS_OP_ADMIN, 0, kms_h_policy_delete},
    {"GET", "/v1/certs", KMS_OP_ADMIN, 0, kms_h_cert_list},
    {"PUT", "/v1/certs/*", KMS_OP_ADMIN, R_JSON, kms_h_cert_put},
    {"DELETE", "/v1/certs/*", KMS_OP_ADMIN, 0, kms_h_cert_delete},
};

/* ---- responses ---- */

/* see api.h */
void
kms_response_dispose(kms_response *r)
{
    if (r == NULL)
        return;
    if (r->body != NULL) {
        sbx_wipe(r->body, r->body_len);
        free(r->body);
    }
    memset(r, 0, sizeof(*r));
}

void
kms_reply_raw(kms_call *c, int status, const char *ctype, uint8_t *body, size_t len)
{
    kms_response *r = c->resp;
    if (r->body != NULL) { // a handler answers once; keep the first body from leaking
        sbx_wipe(r->body, r->body_len);
        free(r->body);
    }
    r->status = status;
    r->content_type = ctype;
    r->body = body;
    r->body_len = body ? len : 0;
}

void
kms_reply_json(kms_call *c, int status, kms_buf *b)
{
    if (b->failed || b->p == NULL) {
        kms_buf_dispose(b);
        kms_reply_error(c, 500, "out of memory");
        return;
    }
    kms_reply_raw(c, status, "application/json", (uint8_t *)b->p, b->len);
    b->p = NULL; // the response owns it now (wiped by kms_response_dispose)
    kms_buf_dispose(b);
}

void
kms_reply_error(kms_call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    kms_buf b = {0};
    kms_buf_puts(&b, "{\"error\":");
    kms_buf_str(&b, c->error);
    kms_buf_puts(&b, "}");
    if (b.failed) { // last resort: a static body cannot be freed, so send none
        kms_buf_dispose(&b);
        kms_reply_raw(c, status, "application/json", NULL, 0);
        return;
    }
    kms_reply_raw(c, status, "application/json", (uint8_t *)b.p, b.len);
}

int
kms_status_of(int err)
{
    switch (err) {
    case SBX_ENOTFOUND:
        return 404;
    case SBX_EEXISTS:
    case SBX_ECONFLICT:
        return 409;
    case SBX_EINVAL:
    case SBX_EFORMAT:
    case SBX_EAUTH: // a ciphertext that does not authenticate is the client's bad input
    case SBX_ENOKEY:
        return 400;
    case SBX_ETOOBIG:
        return 413;
    case SBX_EDENIED:
        return 403;
    default: // SBX_EIO, SBX_ENOMEM, SBX_ECRYPTO: our failure
        return 500;
    }
}

void
kms_reply_sbx(kms_call *c, int err)
{
    kms_reply_error(c, kms_status_of(err), "%s", sbx_error_last()->message);
}

/* ---- routing ---- */

/* Matches path against pattern; fills seg[] with the '*' segments. */
static bool
match(const char *pattern, const char *path, const char *seg[2], size_t seglen[2])
{
    size_t n = 0;
    while (*pattern != '\0') {
        if (*pattern == '*') {
            size_t len = strcspn(path, "/");
            if (len == 0 || n == 2)
                return false;
            seg[n] = path;
            seglen[n++] = len;
            path += len;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

/* What is wrong with a raw path, or NULL: see the notes. */
static const char *
path_problem(const char *p)
{
    if (p[0] != '/')
        return "malformed request target (want a path starting with /)";
    for (; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        if (kms_hex_digit(p[1]) < 0 || kms_hex_digit(p[2]) < 0)
            return "malformed percent-encoding in the path";
        if (p[1] == '0' && p[2] == '0')
            return "the path holds a NUL byte (%00)";
        p += 2;
    }
    return NULL;
}

/* Percent-decodes a segment of a path that passed path_problem, in place (it cannot fail). */
static void
decode_segment(char *s)
{
    (void)kms_pct_decode(s, strlen(s) + 1, s, strlen(s), false);
}

/* Finds the route; on 405 fills allow. NULL and *status 404/405 when none. */
static const route *
find_route(const kms_request *req, char seg[2][KMS_STORE_KEY_MAX + 1], char *allow, size_t cap,
           int *status)
{
    const route *found = NULL;
    *status = 404;
    allow[0] = '\0';
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const char *s[2] = {NULL, NULL};
        size_t sl[2] = {0, 0};
        if (!match(routes[i].pattern, req->path, s, sl))
            continue;
        if (strcmp(routes[i].method, req->method) == 0 && found == NULL) {
            found = &routes[i];
            for (int k = 0; k < 2; k++) {
                size_t len = sl[k] > KMS_STORE_KEY_MAX ? KMS_STORE_KEY_MAX : sl[k];
                memcpy(seg[k], s[k] ? s[k] : "", s[k] ? len : 0);
                seg[k][s[k] ? len : 0] = '\0';
                if (sl[k] > KMS_STORE_KEY_MAX) // too long for any name: make it invalid
                    seg[k][0] = '\0';
            }
        }
        if (strstr(allow, routes[i].method) == NULL) {
            size_t used = strlen(allow);
            snprintf(allow + used, cap - used, "%s%s", used ? ", " : "", routes[i].method);
        }
        *status = 405;
    }
    return found;
}

/* ---- authentication and authorization ---- */

/* The token of "Bearer TOKEN" (scheme case-insensitive), or NULL. */
static const char *
bearer(const char *h)
{
    if (h == NULL || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h != '\0' ? h : NULL;
}

static void
deny_401(kms_call *c, const char *challenge, const char *msg)
{
    kms_reply_error(c, 401, "%s", msg);
    c->resp->www_authenticate = challenge;
}

static int
authenticate(kms_call *c)
{
    const kms_request *req = c->req;
    const char *tok = bearer(req->authorization);
    int err;
    if (tok != NULL) {
        size_t len = strnlen(tok, BEARER_MAX + 1);
        err = len > BEARER_MAX ? sbx_error_set(SBX_EAUTH, "unknown or revoked token")
                               : kms_auth_token(c->api->auth, c->st, tok, &c->who);
    } else if (req->client_cn != NULL && req->client_cn[0] != '\0') {
        err = kms_auth_cert(c->api->auth, c->st, req->client_cn, &c->who);
    } else {
        deny_401(c, "Bearer realm=\"strongbox-kms\"",
                 "authentication required: send Authorization: Bearer TOKEN or a client "
                 "certificate");
        return SBX_EAUTH;
    }
    if (err == 0) {
        c->authed = true;
        return 0;
    }
    if (err == SBX_EAUTH || err == SBX_EDENIED || err == SBX_ENOTFOUND)
        deny_401(c, "Bearer realm=\"strongbox-kms\", error=\"invalid_token\"",
                 sbx_error_last()->message);
    else
        kms_reply_sbx(c, err);
    return err < 0 ? err : SBX_EAUTH;
}

int
kms_call_authorize(kms_call *c, kms_op op, const char *key)
{
    int err = kms_authorize(c->api->auth, c->st, &c->who, op, key);
    if (err == 0)
        return 0;
    if (err == SBX_EDENIED)
        kms_reply_error(c, 403, "%s", sbx_error_last()->message);
    else
        kms_reply_sbx(c, err);
    return err;
}

/* A caller allowed neither kind of data key on the key is refused before its body is read. */
static bool
datakey_allowed(kms_call *c)
{
    int err = kms_authorize(c->api->auth, c->st, &c->who, KMS_OP_DATAKEY, c->key);
    if (err == SBX_EDENIED)
        err = kms_authorize(c->api->auth, c->st, &c->who, KMS_OP_DATAKEY_WRAPPED, c->key);
    if (err == 0)
        return true;
    if (err == SBX_EDENIED)
        kms_reply_error(c, 403, "%s", sbx_error_last()->message);
    else
        kms_reply_sbx(c, err);
    return false;
}

/* ---- content ---- */

/* True for "application/json" with optional parameters, any case. */
static bool
is_json_ctype(const char *ct)
{
    static const char want[] = "application/json";
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    ct += sizeof(want) - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int
read_body(kms_call *c, json_t **body)
{
    const kms_request *req = c->req;
    bool sent =
        req->body_len > 0 && (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0);
    if (sent && !is_json_ctype(req->content_type)) {
        kms_reply_error(c, 415, "request bodies must be Content-Type: application/json");
        return SBX_EFORMAT;
    }
    if (req->body_len > KMS_API_BODY_MAX) {
        kms_reply_error(c, 413, "request body over %u bytes", KMS_API_BODY_MAX);
        return SBX_ETOOBIG;
    }
    int err = kms_json_parse(body, sent ? req->body : NULL, sent ? req->body_len : 0);
    if (err < 0)
        kms_reply_sbx(c, err);
    return err;
}

/* ---- one request ---- */

static void
run_route(kms_call *c, const route *r)
{
    kms_args a = {{c->seg[0], c->seg[1]}, NULL};
    if (!(r->flags & R_NOAUTH) && authenticate(c) < 0)
        return;
    if ((r->flags & R_KEY) && c->key == NULL) {
        (void)sbx_kms_key_name_check(c->seg[0]); // the rule, worded once
        kms_reply_error(c, 400, "%s", sbx_error_last()->message);
        return;
    }
    if (!(r->flags & (R_NOAUTH | R_NOAUTHZ)) && kms_call_authorize(c, r->op, c->key) < 0)
        return;
    if (r->op == KMS_OP_DATAKEY && !datakey_allowed(c)) // items are checked one by one later
        return;
    if ((r->flags & R_JSON) && read_body(c, &a.body) < 0)
        return;
    r->fn(c, &a);
    if (a.body != NULL) {
        kms_json_wipe(a.body);
        json_decref(a.body);
    }
}

static void
dispatch(kms_call *c)
{
    int status;
    const kms_request *req = c->req;
    if (req->refuse_status != 0) {
        kms_reply_error(c, req->refuse_status, "%s", req->refuse_why ? req->refuse_why : "refused");
        return;
    }
    if (req->method == NULL || req->path == NULL) {
        kms_reply_error(c, 400, "request without method or path");
        return;
    }
    const char *bad = path_problem(req->path);
    if (bad != NULL) {
        kms_reply_error(c, 400, "%s", bad);
        return;
    }
    const route *r = find_route(req, c->seg, c->resp->allow, sizeof(c->resp->allow), &status);
    if (r == NULL) {
        if (status == 404)
            c->resp->allow[0] = '\0';
        kms_reply_error(
            c, status, status == 404 ? "no such endpoint (see docs/kms.md)" : "method not allowed");
        return;
    }
    c->resp->allow[0] = '\0';
    c->op = r->op;
    decode_segment(c->seg[0]);
    decode_segment(c->seg[1]);
    if ((r->flags & R_KEY) && sbx_kms_key_name_valid(c->seg[0]))
        c->key = c->seg[0];
    run_route(c, r);
}

static void
caller_name(const kms_call *c, char *out, size_t cap)
{
    if (!c->authed)
        snprintf(out, cap, "anonymous");
    else if (strcmp(c->who.kind, "cert") == 0)
        snprintf(out, cap, "cert:%s", c->who.name);
    else
        snprintf(out, cap, "token:%s:%s", c->who.id, c->who.name);
}

static int
audit(const kms_call *c)
{
    char caller[160];
    int status = c->resp->status;
    if (c->api->audit == NULL)
        return 0;
    kms_audit_item *items = c->nitems ? calloc(c->nitems, sizeof *items) : NULL;
    size_t n = items != NULL ? c->nitems : 0; // out of memory: the line without its items
    for (size_t i = 0; i < n; i++)
        items[i] = (kms_audit_item){
            .op = kms_op_name(c->items[i].op),
            .key_version = c->items[i].key_version,
            .status = c->items[i].status,
            .error = c->items[i].error[0] ? c->items[i].error : NULL,
        };
    caller_name(c, caller, sizeof(caller));
    kms_audit_event ev = {
        .request_id = c->req->request_id ? c->req->request_id : "",
        .caller = caller,
        .remote = c->req->remote ? c->req->remote : "",
        .method = c->req->method ? c->req->method : "",
        .path = c->req->path ? c->req->path : "",
        .op = kms_op_name(c->op),
        .key = c->key,
        .key_version = c->key_version,
        .status = status,
        .outcome = kms_audit_outcome(status), // of the request; a batch's items carry their own
        .error = status >= 400 && c->error[0] ? c->error : NULL,
        .batch = c->batch && status < 400 && n == c->nitems,
        .items = items,
        .nitems = n,
    };
    int err = kms_audit_write(c->api->audit, &ev);
    free(items);
    return err;
}

static double
mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* see api.h */
void
kms_api_handle(kms_api *api, kms_store *st, const kms_request *req, kms_response *resp)
{
    double t0 = mono_seconds();
    memset(resp, 0, sizeof(*resp));
    kms_call c = {.api = api, .st = st, .req = req, .resp = resp, .op = KMS_OP_OTHER};
    dispatch(&c);
    if (resp->status == 0)
        kms_reply_error(&c, 500, "the request was not answered");
    if (audit(&c) < 0) { // fail-closed: nothing of the answer may leave
        kms_response_dispose(resp);
        kms_reply_error(&c, 503, "audit log unavailable");
    }
    kms_metrics_record(c.op, resp->status, mono_seconds() - t0);
    free(c.items);
    SBX_WIPE_CTX(&c.who);
}

/* ---- lifetime ---- */

/* see api.h */
int
kms_api_new(kms_api **out, kms_keystore *ks, kms_auth *auth, kms_audit *audit_log,
            const kms_api_options *opt)
{
    *out = NULL;
    if (ks == NULL || auth == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_api_new needs a keystore and an auth object");
    kms_api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return sbx_error_set_nomem();
    kms_json_install_wiping_alloc();
    api->ks = ks;
    api->auth = auth;
    api->audit = audit_log;
    api->dev = opt != NULL && opt->dev;
    snprintf(api->storage, sizeof(api->storage), "%s",
             opt != NULL && opt->storage != NULL ? opt->storage : "sqlite");
    *out = api;
    return 0;
}

/* see api.h */
void
kms_api_free(kms_api *api)
{
    free(api);
}

/* see api.h */
void
kms_api_tick(kms_api *api, kms_store *st)
{
    unsigned rotated = 0, purged = 0;
    int64_t n = 0;
    int err = kms_keystore_maintain(api->ks, st, kms_now(), &rotated, &purged);
    if (err == 0)
        err = kms_key_count(st, &n);
    if (err == 0) {
        kms_metrics_set_keys(n);
        return;
    }
    int64_t now = kms_mono_ms();
    if (api->tick_report_ms == 0 || now - api->tick_report_ms >= 60000) {
        api->tick_report_ms = now;
        kms_log(KMS_LOG_WARN, "housekeeping failed", "error", sbx_error_last()->message, NULL);
    }
}
