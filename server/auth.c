/*
 * server/auth.c - callers, tokens, policies (see auth.h).
 *
 * Implementation notes:
 *  - Tokens. "sbxt_" and 16 to 128 base64url characters: the server mints 43
 *    (32 random bytes, unpadded), installed tokens (the --dev one, tests) may
 *    be shorter or longer. The format is checked, with a bounded strnlen,
 *    before anything else; the token is then hashed with SHA-256 and looked
 *    up by hex(hash). The secret is never compared: storage is indexed by
 *    its hash, and the cache compares hashes with CRYPTO_memcmp.
 *  - Token ids are 8 random bytes in hex. Revocation finds the record by id
 *    with one scan of the "token" namespace (rare; keeps the documented
 *    layout of one row per token).
 *  - The cache is one table of CACHE_SETS x CACHE_WAYS slots under one mutex,
 *    keyed by a SHA-256 (of the token, or of "cert:"+CN, "policy:"+name) and
 *    the entry's kind. Entries live CACHE_TTL_MS (under a second), so a
 *    revocation, unmapping or policy change on another node takes effect
 *    within a second; on this node the changing call drops the entry at
 *    once. Policies are cached parsed (a missing policy is cached as
 *    absent and grants nothing); a full set evicts its oldest entry.
 *  - Policies are validated strictly (only "rules"; each rule only "keys", a
 *    non-empty fnmatch pattern, and "ops", a non-empty array of op names or
 *    "*") and stored in compact canonical form. "*" grants every data and key
 *    operation (create .. rewrap) and seed; "metrics" must be named; "admin"
 *    is never granted by a policy, only by an admin token or certificate
 *    mapping. Key-less operations (key_name NULL) match any rule that names
 *    the op, whatever its pattern.
 */
#include "auth.h"

#include "util.h"

#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define TOKEN_PREFIX     "sbxt_"
#define TOKEN_PREFIX_LEN 5
#define TOKEN_BODY_MIN   16
#define TOKEN_BODY_MAX   128
#define TOKEN_RANDOM     32 /* bytes: 43 base64url characters */
#define CACHE_TTL_MS     900
#define CACHE_SETS       128
#define CACHE_WAYS       4
#define POLICY_DOC_MAX   (64 * 1024)
#define POLICY_RULES_MAX 256
#define PATTERN_MAX      256
#define RECORD_MAX       (16 * 1024)
#define NAME_MAX_BYTES   128
#define POLICY_NAME_MAX  64

static const char *const op_names[KMS_OP_COUNT] = {
    [KMS_OP_CREATE] = "create",
    [KMS_OP_READ] = "read",
    [KMS_OP_LIST] = "list",
    [KMS_OP_ROTATE] = "rotate",
    [KMS_OP_CONFIG] = "config",
    [KMS_OP_DELETE] = "delete",
    [KMS_OP_DESTROY] = "destroy",
    [KMS_OP_DATAKEY] = "datakey",
    [KMS_OP_DATAKEY_WRAPPED] = "datakey-wrapped",
    [KMS_OP_ENCRYPT] = "encrypt",
    [KMS_OP_DECRYPT] = "decrypt",
    [KMS_OP_REWRAP] = "rewrap",
    [KMS_OP_SEED] = "seed",
    [KMS_OP_METRICS] = "metrics",
    [KMS_OP_ADMIN] = "admin",
    [KMS_OP_HEALTH] = "health",
    [KMS_OP_OTHER] = "other",
};

#define OP_BIT(op) (1u << (unsigned)(op))
/* What "*" grants: every data and key operation, and seed. */
#define STAR_OPS                                                                                   \
    (OP_BIT(KMS_OP_CREATE) | OP_BIT(KMS_OP_READ) | OP_BIT(KMS_OP_LIST) | OP_BIT(KMS_OP_ROTATE) |   \
     OP_BIT(KMS_OP_CONFIG) | OP_BIT(KMS_OP_DELETE) | OP_BIT(KMS_OP_DESTROY) |                      \
     OP_BIT(KMS_OP_DATAKEY) | OP_BIT(KMS_OP_DATAKEY_WRAPPED) | OP_BIT(KMS_OP_ENCRYPT) |            \
     OP_BIT(KMS_OP_DECRYPT) | OP_BIT(KMS_OP_REWRAP) | OP_BIT(KMS_OP_SEED))

/* see auth.h */
const char *
kms_op_name(kms_op op)
{
    if ((int)op < 0 || op >= KMS_OP_COUNT)
        return "other";
    return op_names[op];
}

/* see auth.h */
int
kms_op_parse(const char *name)
{
    for (int i = 0; i < KMS_OP_COUNT; i++)
        if (i != KMS_OP_HEALTH && i != KMS_OP_OTHER && strcmp(name, op_names[i]) == 0)
            return i;
    return -1;
}

/* ---- the cache ---- */

enum { E_EMPTY, E_TOKEN, E_CERT, E_POLICY };

typedef struct {
    uint32_t ops;
    char *pattern;
} rule;

typedef struct {
    size_t n;
    rule *rules;
} policy;

struct slot {
    int kind;
    uint8_t key[32];
    int64_t stamp;
    kms_principal *who; /* E_TOKEN, E_CERT */
    policy *pol;        /* E_POLICY; NULL: no such policy */
};

struct kms_auth {
    pthread_mutex_t lock;
    struct slot slots[CACHE_SETS * CACHE_WAYS];
};

static void
policy_free(policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->rules[i].pattern);
    free(p->rules);
    free(p);
}

static void
slot_clear(struct slot *s)
{
    free(s->who);
    policy_free(s->pol);
    memset(s, 0, sizeof(*s));
}

static struct slot *
set_of(kms_auth *a, const uint8_t key[32])
{
    return &a->slots[(((size_t)key[0] << 8 | key[1]) % CACHE_SETS) * CACHE_WAYS];
}

/* A fresh entry of kind for key, or NULL. Lock held. */
static struct slot *
cache_find(kms_auth *a, int kind, const uint8_t key[32])
{
    struct slot *set = set_of(a, key);
    int64_t now = kms_mono_ms();
    for (size_t w = 0; w < CACHE_WAYS; w++) {
        struct slot *s = &set[w];
        if (s->kind == kind && CRYPTO_memcmp(s->key, key, 32) == 0) {
            if (now - s->stamp < CACHE_TTL_MS)
                return s;
            slot_clear(s);
        }
    }
    return NULL;
}

/* Takes ownership of who / pol. */
static void
cache_put(kms_auth *a, int kind, const uint8_t key[32], kms_principal *who, policy *pol)
{
    pthread_mutex_lock(&a->lock);
    struct slot *set = set_of(a, key), *victim = &set[0];
    for (size_t w = 0; w < CACHE_WAYS; w++) {
        struct slot *s = &set[w];
        if ((s->kind == kind && CRYPTO_memcmp(s->key, key, 32) == 0) || s->kind == E_EMPTY) {
            victim = s;
            break;
        }
        if (s->stamp < victim->stamp)
            victim = s;
    }
    slot_clear(victim);
    victim->kind = kind;
    memcpy(victim->key, key, 32);
    victim->stamp = kms_mono_ms();
    victim->who = who;
    victim->pol = pol;
    pthread_mutex_unlock(&a->lock);
}

static void
cache_drop(kms_auth *a, int kind, const uint8_t key[32])
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    struct slot *set = set_of(a, key);
    for (size_t w = 0; w < CACHE_WAYS; w++)
        if (set[w].kind == kind && CRYPTO_memcmp(set[w].key, key, 32) == 0)
            slot_clear(&set[w]);
    pthread_mutex_unlock(&a->lock);
}

/* Cache key of a CN or policy name: SHA-256(tag ":" name). */
static void
name_key(uint8_t out[32], const char *tag, const char *name)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, tag, strlen(tag)) != 1 || EVP_DigestUpdate(c, ":", 1) != 1 ||
        EVP_DigestUpdate(c, name, strlen(name)) != 1 || EVP_DigestFinal_ex(c, out, &n) != 1)
        memset(out, 0, 32); // allocation failure: a shared key only costs cache hits
    EVP_MD_CTX_free(c);
}

/* see auth.h */
int
kms_auth_new(kms_auth **out)
{
    *out = calloc(1, sizeof(kms_auth));
    if (*out == NULL)
        return sbx_error_set_nomem();
    if (pthread_mutex_init(&(*out)->lock, NULL) != 0) {
        free(*out);
        *out = NULL;
        return sbx_error_set(SBX_ENOMEM, "cannot create the auth cache's mutex");
    }
    return 0;
}

/* see auth.h */
void
kms_auth_free(kms_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < CACHE_SETS * CACHE_WAYS; i++)
        slot_clear(&a->slots[i]);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- records ---- */

static bool
name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int
check_policy_names(const char *const *policies, size_t n)
{
    if (n > KMS_PRINCIPAL_POLICIES_MAX)
        return sbx_error_set(SBX_EINVAL, "at most %d policies per token or certificate",
                             KMS_PRINCIPAL_POLICIES_MAX);
    for (size_t i = 0; i < n; i++)
        if (policies[i] == NULL || !name_ok(policies[i], POLICY_NAME_MAX))
            return sbx_error_set(SBX_EINVAL, "policy name %zu: want 1 to %d printable bytes", i + 1,
                                 POLICY_NAME_MAX);
    return 0;
}

static json_t *
policies_json(const char *const *policies, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        if (json_array_append_new(arr, json_string(policies[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    return arr;
}

/* Stores a JSON record (stolen). */
static int
put_record(kms_store *st, const char *ns, const char *key, json_t *rec, int64_t expect)
{
    char *s = rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(rec);
    if (s == NULL)
        return sbx_error_set_nomem();
    int err = kms_store_put(st, ns, key, s, strlen(s), expect, NULL);
    free(s);
    return err;
}

/* Fills p->policies and p->admin from a stored record. false when malformed. */
static bool
read_grants(json_t *rec, kms_principal *p)
{
    json_t *arr = json_object_get(rec, "policies"), *v;
    json_t *admin = json_object_get(rec, "admin");
    size_t i;
    if (!json_is_array(arr) || json_array_size(arr) > KMS_PRINCIPAL_POLICIES_MAX ||
        !json_is_boolean(admin))
        return false;
    p->admin = json_is_true(admin);
    p->npolicies = 0;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || json_string_length(v) >= sizeof(p->policies[0]) || !name_ok(s, 64))
            return false;
        strcpy(p->policies[p->npolicies++], s);
    }
    return true;
}

static bool
copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) >= cap || strlen(s) != json_string_length(v))
        return false;
    memcpy(dst, s, json_string_length(v) + 1);
    return true;
}

static json_t *
load_record(const uint8_t *val, size_t len)
{
    json_t *rec = len <= RECORD_MAX ? json_loadb((const char *)val, len, 0, NULL) : NULL;
    if (rec != NULL && !json_is_object(rec)) {
        json_decref(rec);
        rec = NULL;
    }
    return rec;
}

/* A stored token record into p (and *created). false when malformed. */
static bool
parse_token(const uint8_t *val, size_t len, kms_principal *p, int64_t *created)
{
    json_t *rec = load_record(val, len);
    memset(p, 0, sizeof(*p));
    strcpy(p->kind, "token");
    bool ok = rec != NULL && copy_str(p->id, sizeof(p->id), json_object_get(rec, "id")) &&
              copy_str(p->name, sizeof(p->name), json_object_get(rec, "name")) &&
              read_grants(rec, p) && json_is_integer(json_object_get(rec, "created")) &&
              json_is_integer(json_object_get(rec, "expires"));
    if (ok) {
        p->expires = json_integer_value(json_object_get(rec, "expires"));
        if (created != NULL)
            *created = json_integer_value(json_object_get(rec, "created"));
    }
    json_decref(rec);
    return ok;
}

/* A stored certificate mapping into p. false when malformed. */
static bool
parse_cert(const char *cn, const uint8_t *val, size_t len, kms_principal *p)
{
    json_t *rec = load_record(val, len);
    memset(p, 0, sizeof(*p));
    strcpy(p->kind, "cert");
    bool ok = rec != NULL && strlen(cn) < sizeof(p->name) && read_grants(rec, p);
    if (ok)
        strcpy(p->name, cn);
    json_decref(rec);
    return ok;
}

/* ---- tokens ---- */

/* "sbxt_" and TOKEN_BODY_MIN..MAX base64url characters; never reads past the limit. */
static bool
token_format_ok(const char *t)
{
    size_t n = strnlen(t, TOKEN_PREFIX_LEN + TOKEN_BODY_MAX + 1);
    if (n < TOKEN_PREFIX_LEN + TOKEN_BODY_MIN || n > TOKEN_PREFIX_LEN + TOKEN_BODY_MAX ||
        memcmp(t, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return false;
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    return strspn(t + TOKEN_PREFIX_LEN, b64url) == n - TOKEN_PREFIX_LEN;
}

static void
sha256(uint8_t out[32], const void *p, size_t n)
{
    unsigned len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32); // never with the default provider; an all-zero hash matches nothing
}

static int
check_expiry(const kms_principal *p)
{
    if (p->expires != 0 && kms_now() >= p->expires)
        return sbx_error_set(SBX_EAUTH, "token expired");
    return 0;
}

static int
fetch_token(kms_store *st, const uint8_t hash[32], kms_principal *out)
{
    char hex[65];
    uint8_t *val = NULL;
    size_t len = 0;
    kms_hex(hex, hash, 32);
    int err = kms_store_get(st, "token", hex, &val, &len, NULL);
    if (err == SBX_ENOTFOUND)
        return sbx_error_set(SBX_EAUTH, "unknown or revoked token");
    if (err < 0)
        return err;
    bool ok = parse_token(val, len, out, NULL);
    free(val);
    if (!ok)
        return sbx_error_set(SBX_EIO, "the stored record of this token is malformed: revoke it by "
                                      "id and create a new one");
    return 0;
}

/* see auth.h */
int
kms_auth_token(kms_auth *a, kms_store *st, const char *token, kms_principal *out)
{
    uint8_t hash[32];
    memset(out, 0, sizeof(*out));
    if (token == NULL || !token_format_ok(token))
        return sbx_error_set(SBX_EAUTH, "malformed bearer token (see docs/kms.md, Auth)");
    sha256(hash, token, strlen(token));
    pthread_mutex_lock(&a->lock);
    struct slot *s = cache_find(a, E_TOKEN, hash);
    if (s != NULL)
        *out = *s->who;
    pthread_mutex_unlock(&a->lock);
    if (s == NULL) {
        int err = fetch_token(st, hash, out);
        if (err < 0)
            return err;
        kms_principal *copy = malloc(sizeof(*copy));
        if (copy != NULL) {
            *copy = *out;
            cache_put(a, E_TOKEN, hash, copy, NULL);
        }
    }
    int err = check_expiry(out);
    if (err < 0)
        memset(out, 0, sizeof(*out));
    return err;
}

static int
new_id(char id_out[17])
{
    uint8_t raw[8];
    int err = sbx_random_bytes(raw, sizeof(raw));
    if (err < 0)
        return err;
    kms_hex(id_out, raw, sizeof(raw));
    return 0;
}

/* Stores the record of token under hex(SHA-256(token)), if absent. */
static int
store_token(kms_store *st, const char *name, const char *token, const char *const *policies,
            size_t n, bool admin, int64_t ttl, const char id[17], int64_t *expires_out)
{
    uint8_t hash[32];
    char hex[65];
    int64_t now = kms_now();
    // Expiry is in whole seconds and a token expires when the clock reaches it: count
    // from the next whole second, so a token lives at least ttl seconds (at most ttl + 1).
    int64_t expires = ttl ? (kms_now_ms() + 999) / 1000 + ttl : 0;
    if (expires_out != NULL)
        *expires_out = expires;
    sha256(hash, token, strlen(token));
    kms_hex(hex, hash, 32);
    json_t *rec = json_pack("{s:s, s:s, s:o, s:b, s:I, s:I}", "id", id, "name", name, "policies",
                            policies_json(policies, n), "admin", (int)admin, "created",
                            (json_int_t)now, "expires", (json_int_t)expires);
    return put_record(st, "token", hex, rec, KMS_REV_ABSENT);
}

static int
check_token_args(const char *name, const char *const *policies, size_t n, int64_t ttl)
{
    if (name == NULL || !name_ok(name, NAME_MAX_BYTES))
        return sbx_error_set(SBX_EINVAL, "token name: want 1 to %d printable bytes",
                             NAME_MAX_BYTES);
    if (ttl < 0 || ttl > INT64_MAX / 4)
        return sbx_error_set(SBX_EINVAL, "ttl must be 0 (never expires) or a number of seconds");
    return check_policy_names(policies, n);
}

/* see auth.h */
int
kms_token_create(kms_store *st, const char *name, const char *const *policies, size_t n, bool admin,
                 int64_t ttl, char **token_out, char id_out[17], int64_t *expires_out)
{
    uint8_t raw[TOKEN_RANDOM];
    char body[SBX_BASE64_PAD_LEN(TOKEN_RANDOM) + 1]; // the encoder wants room for padding
    *token_out = NULL;
    id_out[0] = '\0';
    int err = check_token_args(name, policies, n, ttl);
    if (err == 0)
        err = sbx_random_bytes(raw, sizeof(raw));
    if (err == 0 && sbx_base64_encode(body, sizeof(body), raw, sizeof(raw), false) < 0)
        err = sbx_error_set(SBX_EINVAL, "base64 buffer too small");
    char *token = err == 0 ? malloc(TOKEN_PREFIX_LEN + sizeof(body)) : NULL; // 48 used
    if (err == 0 && token == NULL)
        err = sbx_error_set_nomem();
    if (err == 0) {
        for (char *c = body; *c; c++) // standard base64 to base64url
            *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
        memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
        memcpy(token + TOKEN_PREFIX_LEN, body, strlen(body) + 1);
        err = new_id(id_out);
    }
    if (err == 0)
        err = store_token(st, name, token, policies, n, admin, ttl, id_out, expires_out);
    SBX_WIPE_BUF(raw);
    SBX_WIPE_BUF(body);
    if (err < 0) {
        if (token != NULL)
            sbx_wipe(token, strlen(token));
        free(token);
        id_out[0] = '\0';
        return err;
    }
    *token_out = token;
    return 0;
}

/* see auth.h */
int
kms_token_install(kms_store *st, const char *name, const char *token, bool admin, int64_t ttl,
                  char id_out[17])
{
    id_out[0] = '\0';
    if (token == NULL || !token_format_ok(token))
        return sbx_error_set(SBX_EINVAL,
                             "a token to install must be \"sbxt_\" and %d to %d base64url "
                             "characters",
                             TOKEN_BODY_MIN, TOKEN_BODY_MAX);
    int err = check_token_args(name, NULL, 0, ttl);
    if (err == 0)
        err = new_id(id_out);
    if (err == 0)
        err = store_token(st, name, token, NULL, 0, admin, ttl, id_out, NULL);
    if (err == SBX_ECONFLICT) { // installed before: keep that record, report its id
        kms_principal p;
        uint8_t hash[32];
        sha256(hash, token, strlen(token));
        err = fetch_token(st, hash, &p);
        if (err == 0)
            memcpy(id_out, p.id, 17);
    }
    if (err < 0)
        id_out[0] = '\0';
    return err;
}

struct token_list {
    int (*cb)(void *ctx, const kms_principal *p, int64_t created);
    void *ctx;
    const char *find_id; /* revocation: the id sought */
    char found_key[65];
};

static int
token_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct token_list *tl = arg;
    kms_principal p;
    int64_t created = 0;
    (void)rev;
    bool ok = parse_token(val, len, &p, &created);
    if (tl->find_id != NULL) {
        if (ok && strcmp(p.id, tl->find_id) == 0 && strlen(key) == 64) {
            memcpy(tl->found_key, key, 65);
            return 1;
        }
        return 0;
    }
    if (!ok)
        return sbx_error_set(SBX_EFORMAT, "a stored token record (hash %.8s...) is malformed", key);
    return tl->cb(tl->ctx, &p, created);
}

/* see auth.h */
int
kms_token_list(kms_store *st, int (*cb)(void *ctx, const kms_principal *p, int64_t created),
               void *ctx)
{
    struct token_list tl = {.cb = cb, .ctx = ctx};
    return kms_store_list(st, "token", "", token_row, &tl);
}

/* see auth.h */
int
kms_token_revoke(kms_auth *a, kms_store *st, const char *id)
{
    struct token_list tl = {.find_id = id};
    uint8_t hash[32];
    if (id == NULL || strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16)
        return sbx_error_set(SBX_ENOTFOUND, "no token with that id (ids are 16 hex characters)");
    int err = kms_store_list(st, "token", "", token_row, &tl);
    if (err < 0)
        return err;
    if (err == 0)
        return sbx_error_set(SBX_ENOTFOUND, "no token with id %s", id);
    err = kms_store_delete(st, "token", tl.found_key, KMS_REV_ANY);
    if (err == SBX_ENOTFOUND)
        err = sbx_error_set(SBX_ENOTFOUND, "no token with id %s", id);
    if (kms_unhex(hash, 32, tl.found_key) == 0)
        cache_drop(a, E_TOKEN, hash);
    return err;
}

/* ---- policies: parsing ---- */

static const char ops_help[] = "create read list rotate config delete destroy datakey "
                               "datakey-wrapped encrypt decrypt rewrap seed metrics, or *";

static int
parse_op(json_t *v, size_t r, uint32_t *mask)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        return sbx_error_set(SBX_EFORMAT, "rule %zu: ops must be strings (%s)", r, ops_help);
    if (strcmp(s, "*") == 0) {
        *mask |= STAR_OPS;
        return 0;
    }
    int op = kms_op_parse(s);
    if (op == KMS_OP_ADMIN)
        return sbx_error_set(SBX_EFORMAT,
                             "rule %zu: op \"admin\" cannot be granted by a policy: use an admin "
                             "token or certificate mapping",
                             r);
    if (op < 0)
        return sbx_error_set(SBX_EFORMAT, "rule %zu: unknown op \"%.40s\" (ops: %s)", r, s,
                             ops_help);
    *mask |= OP_BIT(op);
    return 0;
}

static int
parse_rule(json_t *o, size_t r, rule *out)
{
    const char *k;
    json_t *v, *keys = json_object_get(o, "keys"), *ops = json_object_get(o, "ops");
    size_t i;
    if (!json_is_object(o))
        return sbx_error_set(SBX_EFORMAT,
                             "rule %zu: must be an object {\"keys\": ..., \"ops\": [...]}", r);
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "keys") != 0 && strcmp(k, "ops") != 0)
            return sbx_error_set(
                SBX_EFORMAT, "rule %zu: unknown field \"%.40s\" (a rule has \"keys\" and \"ops\")",
                r, k);
    }
    const char *pat = json_string_value(keys);
    size_t plen = json_string_length(keys);
    if (pat == NULL || plen == 0 || plen > PATTERN_MAX || strlen(pat) != plen)
        return sbx_error_set(SBX_EFORMAT,
                             "rule %zu: \"keys\" is required: an fnmatch pattern of 1 to %d bytes "
                             "over key names",
                             r, PATTERN_MAX);
    if (!json_is_array(ops) || json_array_size(ops) == 0 || json_array_size(ops) > 64)
        return sbx_error_set(SBX_EFORMAT,
                             "rule %zu: \"ops\" is required: an array of 1 to 64 ops (%s)", r,
                             ops_help);
    out->ops = 0;
    json_array_foreach(ops, i, v)
    {
        int err = parse_op(v, r, &out->ops);
        if (err < 0)
            return err;
    }
    out->pattern = strdup(pat);
    return out->pattern != NULL ? 0 : sbx_error_set_nomem();
}

static int
parse_rules(json_t *rules, policy *pol)
{
    json_t *v;
    size_t i;
    if (!json_is_array(rules))
        return sbx_error_set(SBX_EFORMAT, "policy: \"rules\" is required: an array of "
                                          "{\"keys\": pattern, \"ops\": [...]}");
    if (json_array_size(rules) > POLICY_RULES_MAX)
        return sbx_error_set(SBX_EFORMAT, "policy: at most %d rules", POLICY_RULES_MAX);
    pol->rules = calloc(json_array_size(rules) + 1, sizeof(rule));
    if (pol->rules == NULL)
        return sbx_error_set_nomem();
    json_array_foreach(rules, i, v)
    {
        int err = parse_rule(v, i + 1, &pol->rules[i]);
        if (err < 0)
            return err;
        pol->n++;
    }
    return 0;
}

/* Validates a policy document; *out (may be NULL) gets it parsed, *canon (may be NULL) its
 * canonical text. */
static int
parse_policy(const char *json, size_t len, policy **out, char **canon)
{
    json_error_t jerr;
    const char *k;
    json_t *v;
    if (len > POLICY_DOC_MAX)
        return sbx_error_set(SBX_EFORMAT, "policy: the document is over %d bytes", POLICY_DOC_MAX);
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return sbx_error_set(SBX_EFORMAT, "policy: not valid JSON: %s (line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
    int err = json_is_object(doc) ? 0
                                  : sbx_error_set(SBX_EFORMAT, "policy: must be a JSON object with "
                                                               "\"rules\"");
    if (err == 0) {
        json_object_foreach(doc, k, v)
        {
            if (strcmp(k, "rules") != 0) {
                err = sbx_error_set(SBX_EFORMAT,
                                    "policy: unknown field \"%.40s\" (a policy has only \"rules\")",
                                    k);
                break;
            }
        }
    }
    policy *pol = calloc(1, sizeof(*pol));
    if (err == 0 && pol == NULL)
        err = sbx_error_set_nomem();
    if (err == 0)
        err = parse_rules(json_object_get(doc, "rules"), pol);
    if (err == 0 && canon != NULL && (*canon = json_dumps(doc, JSON_COMPACT)) == NULL)
        err = sbx_error_set_nomem();
    json_decref(doc);
    if (err < 0 || out == NULL)
        policy_free(pol);
    else
        *out = pol;
    return err;
}

/* ---- policies: evaluation ---- */

static bool
policy_grants(const policy *pol, kms_op op, const char *key_name)
{
    for (size_t i = 0; pol != NULL && i < pol->n; i++)
        if ((pol->rules[i].ops & OP_BIT(op)) != 0 &&
            (key_name == NULL || fnmatch(pol->rules[i].pattern, key_name, 0) == 0))
            return true;
    return false;
}

/* 1 when the named policy grants op on key_name, 0 when not (or it does not exist). */
static int
policy_allows(kms_auth *a, kms_store *st, const char *name, kms_op op, const char *key_name)
{
    uint8_t key[32];
    uint8_t *val = NULL;
    size_t len = 0;
    policy *pol = NULL;
    name_key(key, "policy", name);
    pthread_mutex_lock(&a->lock);
    struct slot *s = cache_find(a, E_POLICY, key);
    int hit = s != NULL, yes = hit && policy_grants(s->pol, op, key_name);
    pthread_mutex_unlock(&a->lock);
    if (hit)
        return yes;
    int err = kms_store_get(st, "policy", name, &val, &len, NULL);
    if (err < 0 && err != SBX_ENOTFOUND)
        return err;
    if (err == 0 && parse_policy((const char *)val, len, &pol, NULL) < 0)
        pol = NULL; // a damaged stored policy grants nothing
    free(val);
    yes = policy_grants(pol, op, key_name);
    cache_put(a, E_POLICY, key, NULL, pol);
    sbx_error_clear();
    return yes;
}

static int
deny(const kms_principal *p, kms_op op, const char *key_name)
{
    if (op == KMS_OP_ADMIN)
        return sbx_error_set(SBX_EDENIED, "only admin callers may manage tokens, policies and "
                                          "certificate mappings");
    if (key_name != NULL)
        return sbx_error_set(
            SBX_EDENIED, "%s \"%s\" is not allowed to %s on key \"%.128s\": no policy grants it",
            p->kind, p->name, kms_op_name(op), key_name);
    return sbx_error_set(SBX_EDENIED, "%s \"%s\" is not allowed to %s: no policy grants it",
                         p->kind, p->name, kms_op_name(op));
}

/* see auth.h */
int
kms_authorize(kms_auth *a, kms_store *st, const kms_principal *p, kms_op op, const char *key_name)
{
    if (p == NULL || (int)op < 0 || op >= KMS_OP_COUNT)
        return sbx_error_set(SBX_EDENIED, "no caller, or an unknown operation");
    if (p->admin || op == KMS_OP_HEALTH)
        return 0;
    if (op == KMS_OP_ADMIN || op == KMS_OP_OTHER)
        return deny(p, op, key_name);
    for (size_t i = 0; i < p->npolicies && i < KMS_PRINCIPAL_POLICIES_MAX; i++) {
        int r = policy_allows(a, st, p->policies[i], op, key_name);
        if (r != 0)
            return r > 0 ? 0 : r;
    }
    return deny(p, op, key_name);
}

/* ---- policies: management ---- */

/* see auth.h */
int
kms_policy_put(kms_auth *a, kms_store *st, const char *name, const char *json, size_t len)
{
    char *canon = NULL;
    uint8_t key[32];
    if (name == NULL || !name_ok(name, POLICY_NAME_MAX))
        return sbx_error_set(SBX_EINVAL, "policy name: want 1 to %d printable bytes",
                             POLICY_NAME_MAX);
    if (json == NULL)
        return sbx_error_set(SBX_EFORMAT, "policy: no document");
    int err = parse_policy(json, len, NULL, &canon);
    if (err < 0)
        return err;
    err = kms_store_put(st, "policy", name, canon, strlen(canon), KMS_REV_ANY, NULL);
    free(canon);
    name_key(key, "policy", name);
    cache_drop(a, E_POLICY, key);
    return err;
}

/* see auth.h */
int
kms_policy_get(kms_store *st, const char *name, char **json)
{
    uint8_t *val = NULL;
    size_t len = 0;
    *json = NULL;
    if (name == NULL || !name_ok(name, POLICY_NAME_MAX))
        return sbx_error_set(SBX_ENOTFOUND, "no such policy");
    int err = kms_store_get(st, "policy", name, &val, &len, NULL);
    if (err == SBX_ENOTFOUND)
        return sbx_error_set(SBX_ENOTFOUND, "no policy named \"%s\"", name);
    if (err < 0)
        return err;
    *json = (char *)val; // NUL-terminated by kms_store_get
    return 0;
}

/* see auth.h */
int
kms_policy_delete(kms_auth *a, kms_store *st, const char *name)
{
    uint8_t key[32];
    if (name == NULL || !name_ok(name, POLICY_NAME_MAX))
        return sbx_error_set(SBX_ENOTFOUND, "no such policy");
    int err = kms_store_delete(st, "policy", name, KMS_REV_ANY);
    if (err == SBX_ENOTFOUND)
        err = sbx_error_set(SBX_ENOTFOUND, "no policy named \"%s\"", name);
    name_key(key, "policy", name);
    cache_drop(a, E_POLICY, key);
    return err;
}

struct name_list {
    int (*cb)(void *ctx, const char *name);
    void *ctx;
};

static int
policy_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct name_list *nl = arg;
    (void)val, (void)len, (void)rev;
    return nl->cb(nl->ctx, key);
}

/* see auth.h */
int
kms_policy_list(kms_store *st, int (*cb)(void *ctx, const char *name), void *ctx)
{
    struct name_list nl = {cb, ctx};
    return kms_store_list(st, "policy", "", policy_row, &nl);
}

/* ---- certificates ---- */

/* see auth.h */
int
kms_auth_cert(kms_auth *a, kms_store *st, const char *cn, kms_principal *out)
{
    uint8_t key[32];
    uint8_t *val = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    if (cn == NULL || !name_ok(cn, NAME_MAX_BYTES))
        return sbx_error_set(SBX_EAUTH, "no mapping for this client certificate's CN");
    name_key(key, "cert", cn);
    pthread_mutex_lock(&a->lock);
    struct slot *s = cache_find(a, E_CERT, key);
    if (s != NULL)
        *out = *s->who;
    pthread_mutex_unlock(&a->lock);
    if (s != NULL)
        return 0;
    int err = kms_store_get(st, "cert", cn, &val, &len, NULL);
    if (err == SBX_ENOTFOUND)
        return sbx_error_set(SBX_EAUTH, "no mapping for this client certificate's CN: an admin can "
                                        "add one with PUT /v1/certs/{cn}");
    if (err < 0)
        return err;
    bool ok = parse_cert(cn, val, len, out);
    free(val);
    if (!ok)
        return sbx_error_set(SBX_EIO, "the stored mapping of this certificate CN is malformed: map "
                                      "it again");
    kms_principal *copy = malloc(sizeof(*copy));
    if (copy != NULL) {
        *copy = *out;
        cache_put(a, E_CERT, key, copy, NULL);
    }
    return 0;
}

/* see auth.h */
int
kms_cert_map(kms_auth *a, kms_store *st, const char *cn, const char *const *policies, size_t n,
             bool admin)
{
    uint8_t key[32];
    if (cn == NULL || !name_ok(cn, NAME_MAX_BYTES))
        return sbx_error_set(SBX_EINVAL, "certificate CN: want 1 to %d printable bytes",
                             NAME_MAX_BYTES);
    int err = check_policy_names(policies, n);
    if (err < 0)
        return err;
    json_t *rec =
        json_pack("{s:o, s:b}", "policies", policies_json(policies, n), "admin", (int)admin);
    err = put_record(st, "cert", cn, rec, KMS_REV_ANY);
    name_key(key, "cert", cn);
    cache_drop(a, E_CERT, key);
    return err;
}

/* see auth.h */
int
kms_cert_unmap(kms_auth *a, kms_store *st, const char *cn)
{
    uint8_t key[32];
    if (cn == NULL || !name_ok(cn, NAME_MAX_BYTES))
        return sbx_error_set(SBX_ENOTFOUND, "no such certificate mapping");
    int err = kms_store_delete(st, "cert", cn, KMS_REV_ANY);
    if (err == SBX_ENOTFOUND)
        err = sbx_error_set(SBX_ENOTFOUND, "no certificate mapping for CN \"%s\"", cn);
    name_key(key, "cert", cn);
    cache_drop(a, E_CERT, key);
    return err;
}

struct cert_list {
    int (*cb)(void *ctx, const kms_principal *p);
    void *ctx;
};

static int
cert_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct cert_list *cl = arg;
    kms_principal p;
    (void)rev;
    if (!parse_cert(key, val, len, &p))
        return sbx_error_set(SBX_EFORMAT,
                             "the stored mapping of certificate CN \"%.128s\" is "
                             "malformed: map it again",
                             key);
    return cl->cb(cl->ctx, &p);
}

/* see auth.h */
int
kms_cert_list(kms_store *st, int (*cb)(void *ctx, const kms_principal *p), void *ctx)
{
    struct cert_list cl = {cb, ctx};
    return kms_store_list(st, "cert", "", cert_row, &cl);
}
