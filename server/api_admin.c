/*
 * server/api_admin.c - the admin endpoints of the HTTP API: tokens, policies
 * and certificate mappings (auth.h). The router has already checked that the
 * caller may do KMS_OP_ADMIN; granting admin rights (admin tokens, admin
 * certificate mappings) additionally needs an admin principal.
 */
#include "api_json.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_NAME_MAX 128
#define TTL_MAX        ((int64_t)100 * 366 * 86400)

static bool
bad_field(kms_call *c, int err)
{
    if (err < 0)
        kms_reply_error(c, err == SBX_ENOMEM ? 500 : 400, "%s", sbx_error_last()->message);
    return err < 0;
}

/* Policy names: 1..64 of A-Z a-z 0-9 . _ -, not starting with '.'. */
static bool
policy_name_valid(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= KMS_POLICY_NAME_MAX && s[0] != '.' &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Certificate CNs: 1..128 bytes of UTF-8 without control characters or '/'. */
static bool
cn_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KMS_CN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
            return false;
    return kms_utf8_valid(s);
}

static void
render_policies(kms_buf *b, const kms_principal *p)
{
    kms_buf_puts(b, "[");
    for (size_t i = 0; i < p->npolicies && i < KMS_PRINCIPAL_POLICIES_MAX; i++) {
        kms_buf_puts(b, i ? "," : "");
        kms_buf_str(b, p->policies[i]);
    }
    kms_buf_puts(b, "]");
}

static void
render_strs(kms_buf *b, const char *const *v, size_t n)
{
    kms_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        kms_buf_puts(b, i ? "," : "");
        kms_buf_str(b, v[i]);
    }
    kms_buf_puts(b, "]");
}

/* Every policy name in v must be valid. */
static int
check_policy_names(const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!policy_name_valid(v[i]))
            return sbx_error_set(SBX_EFORMAT, "policies[%zu] is not a valid policy name", i);
    return 0;
}

static bool
grant_admin_allowed(kms_call *c, bool admin)
{
    if (admin && !c->who.admin) {
        kms_reply_error(c, 403, "only admin callers may grant admin rights");
        return false;
    }
    return true;
}

/* ---- tokens ---- */

typedef struct {
    const char *name;
    const char **policies;
    size_t npolicies;
    int64_t ttl;
    bool admin;
} token_req;

static int
parse_token_req(const json_t *body, token_req *t)
{
    static const char *const fields[] = {"name", "policies", "ttl", "admin", NULL};
    size_t len = 0;
    bool has;
    int err = kms_json_only(body, fields);
    if (err == 0)
        err = kms_json_str(body, "name", &has, &t->name, &len);
    if (err == 0 && (!has || len == 0 || len > TOKEN_NAME_MAX))
        err = sbx_error_set(SBX_EFORMAT, "name is required: a string of 1 to %d bytes",
                            TOKEN_NAME_MAX);
    if (err == 0)
        err = kms_json_int(body, "ttl", &has, &t->ttl);
    if (err == 0 && (t->ttl < 0 || t->ttl > TTL_MAX))
        err = sbx_error_set(SBX_EFORMAT, "ttl must be 0 (never expires) or a number of seconds");
    if (err == 0)
        err = kms_json_bool(body, "admin", &has, &t->admin);
    if (err == 0)
        err = kms_json_strs(body, "policies", KMS_PRINCIPAL_POLICIES_MAX, KMS_POLICY_NAME_MAX,
                            &t->policies, &t->npolicies);
    if (err == 0)
        err = check_policy_names(t->policies, t->npolicies);
    return err;
}

void
kms_h_token_create(kms_call *c, const kms_args *a)
{
    token_req t = {0};
    char *token = NULL, id[17] = "";
    if (bad_field(c, parse_token_req(a->body, &t)) || !grant_admin_allowed(c, t.admin)) {
        free(t.policies);
        return;
    }
    int64_t expires = 0;
    int err = kms_token_create(c->st, t.name, t.policies, t.npolicies, t.admin, t.ttl, &token, id,
                               &expires);
    free(t.policies);
    if (err < 0) {
        kms_reply_sbx(c, err);
        return;
    }
    kms_buf b = {0};
    kms_buf_puts(&b, "{\"token\":");
    kms_buf_str(&b, token);
    kms_buf_puts(&b, ",\"id\":");
    kms_buf_str(&b, id);
    kms_buf_printf(&b, ",\"expires\":%" PRId64 "}", expires);
    sbx_wipe(token, strlen(token));
    free(token);
    kms_reply_json(c, 201, &b);
}

struct list_ctx {
    kms_buf *b;
    size_t n;
};

/* Finish a list answer begun with `{"NAME":[`: close it and send it, or send err. */
static void
reply_list(kms_call *c, kms_buf *b, int err)
{
    if (err < 0) {
        kms_buf_dispose(b);
        kms_reply_sbx(c, err);
        return;
    }
    kms_buf_puts(b, "]}");
    kms_reply_json(c, 200, b);
}

/* The answer of a DELETE: 204, or err. */
static void
reply_deleted(kms_call *c, int err)
{
    if (err < 0)
        kms_reply_sbx(c, err);
    else
        kms_reply_raw(c, 204, "application/json", NULL, 0);
}

static int
token_one(void *arg, const kms_principal *p, int64_t created)
{
    struct list_ctx *lc = arg;
    kms_buf_puts(lc->b, lc->n++ ? ",{\"id\":" : "{\"id\":");
    kms_buf_str(lc->b, p->id);
    kms_buf_puts(lc->b, ",\"name\":");
    kms_buf_str(lc->b, p->name);
    kms_buf_puts(lc->b, ",\"policies\":");
    render_policies(lc->b, p);
    kms_buf_printf(lc->b, ",\"admin\":%s,\"created\":%" PRId64 ",\"expires\":%" PRId64 "}",
                   p->admin ? "true" : "false", created, p->expires);
    return 0;
}

void
kms_h_token_list(kms_call *c, const kms_args *a)
{
    kms_buf b = {0};
    struct list_ctx lc = {&b, 0};
    (void)a;
    kms_buf_puts(&b, "{\"tokens\":[");
    reply_list(c, &b, kms_token_list(c->st, token_one, &lc));
}

void
kms_h_token_revoke(kms_call *c, const kms_args *a)
{
    const char *id = a->seg[0];
    if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16) {
        kms_reply_error(c, 404, "no token with that id (ids are 16 hex characters)");
        return;
    }
    reply_deleted(c, kms_token_revoke(c->api->auth, c->st, id));
}

/* ---- policies ---- */

static bool
policy_name_ok(kms_call *c, const char *name)
{
    if (!policy_name_valid(name)) {
        kms_reply_error(c, 400,
                        "bad policy name: use 1 to %d of A-Z a-z 0-9 . _ - not starting "
                        "with '.'",
                        KMS_POLICY_NAME_MAX);
        return false;
    }
    return true;
}

static void
reply_policy(kms_call *c, const char *name)
{
    char *doc = NULL;
    int err = kms_policy_get(c->st, name, &doc);
    if (err < 0) {
        kms_reply_sbx(c, err);
        return;
    }
    kms_reply_raw(c, 200, "application/json", (uint8_t *)doc, strlen(doc));
}

void
kms_h_policy_put(kms_call *c, const kms_args *a)
{
    const char *name = a->seg[0];
    if (!policy_name_ok(c, name))
        return;
    // the router parsed the body (duplicates, depth, object); auth.c validates the rules
    int err =
        kms_policy_put(c->api->auth, c->st, name, (const char *)c->req->body, c->req->body_len);
    if (err < 0)
        kms_reply_sbx(c, err);
    else
        reply_policy(c, name);
}

void
kms_h_policy_get(kms_call *c, const kms_args *a)
{
    if (policy_name_ok(c, a->seg[0]))
        reply_policy(c, a->seg[0]);
}

static int
policy_one(void *arg, const char *name)
{
    struct list_ctx *lc = arg;
    kms_buf_puts(lc->b, lc->n++ ? "," : "");
    kms_buf_str(lc->b, name);
    return 0;
}

void
kms_h_policy_list(kms_call *c, const kms_args *a)
{
    kms_buf b = {0};
    struct list_ctx lc = {&b, 0};
    (void)a;
    kms_buf_puts(&b, "{\"policies\":[");
    reply_list(c, &b, kms_policy_list(c->st, policy_one, &lc));
}

void
kms_h_policy_delete(kms_call *c, const kms_args *a)
{
    if (!policy_name_ok(c, a->seg[0]))
        return;
    reply_deleted(c, kms_policy_delete(c->api->auth, c->st, a->seg[0]));
}

/* ---- certificate mappings ---- */

static bool
cn_ok(kms_call *c, const char *cn)
{
    if (!cn_valid(cn)) {
        kms_reply_error(c, 400, "bad certificate CN: 1 to %d bytes of UTF-8, no control characters",
                        KMS_CN_MAX);
        return false;
    }
    return true;
}

static int
parse_cert_req(const json_t *body, const char ***policies, size_t *n, bool *admin)
{
    static const char *const fields[] = {"policies", "admin", NULL};
    bool has;
    int err = kms_json_only(body, fields);
    if (err == 0)
        err = kms_json_bool(body, "admin", &has, admin);
    if (err == 0)
        err = kms_json_strs(body, "policies", KMS_PRINCIPAL_POLICIES_MAX, KMS_POLICY_NAME_MAX,
                            policies, n);
    if (err == 0)
        err = check_policy_names(*policies, *n);
    return err;
}

void
kms_h_cert_put(kms_call *c, const kms_args *a)
{
    const char **policies = NULL;
    size_t n = 0;
    bool admin = false;
    const char *cn = a->seg[0];
    if (!cn_ok(c, cn) || bad_field(c, parse_cert_req(a->body, &policies, &n, &admin)) ||
        !grant_admin_allowed(c, admin)) {
        free(policies);
        return;
    }
    int err = kms_cert_map(c->api->auth, c->st, cn, policies, n, admin);
    if (err < 0) {
        free(policies);
        kms_reply_sbx(c, err);
        return;
    }
    kms_buf b = {0};
    kms_buf_puts(&b, "{\"cn\":");
    kms_buf_str(&b, cn);
    kms_buf_puts(&b, ",\"policies\":");
    render_strs(&b, policies, n);
    kms_buf_printf(&b, ",\"admin\":%s}", admin ? "true" : "false");
    free(policies);
    kms_reply_json(c, 200, &b);
}

static int
cert_one(void *arg, const kms_principal *p)
{
    struct list_ctx *lc = arg;
    kms_buf_puts(lc->b, lc->n++ ? ",{\"cn\":" : "{\"cn\":");
    kms_buf_str(lc->b, p->name);
    kms_buf_puts(lc->b, ",\"policies\":");
    render_policies(lc->b, p);
    kms_buf_printf(lc->b, ",\"admin\":%s}", p->admin ? "true" : "false");
    return 0;
}

void
kms_h_cert_list(kms_call *c, const kms_args *a)
{
    kms_buf b = {0};
    struct list_ctx lc = {&b, 0};
    (void)a;
    kms_buf_puts(&b, "{\"certs\":[");
    reply_list(c, &b, kms_cert_list(c->st, cert_one, &lc));
}

void
kms_h_cert_delete(kms_call *c, const kms_args *a)
{
    if (!cn_ok(c, a->seg[0]))
        return;
    reply_deleted(c, kms_cert_unmap(c->api->auth, c->st, a->seg[0]));
}
