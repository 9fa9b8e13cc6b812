/*
 * server/auth.h - callers, tokens, policies (internal).
 *
 * Principals: a bearer token ("sbxt_" + 43 base64url chars, 256 random bits)
 * or a TLS client certificate (verified against the configured CA; identified
 * by its subject CN). Tokens are stored hashed: namespace "token", key =
 * hex(SHA-256(token)), value JSON {id, name, policies[], admin, created,
 * expires}. The token id (16 hex chars, random) names it in lists, audit lines
 * and revocation; the token itself is shown once, at creation.
 * Certificate mappings: namespace "cert", key = CN, value JSON {policies[]}.
 * Policies: namespace "policy", key = name, value JSON
 *   {"rules":[{"keys":"app-*","ops":["datakey","decrypt"]}, ...]}
 * where keys is an fnmatch(3) pattern over key names and ops are kms_op names
 * ("*" = all data and key operations, never admin). A principal is allowed an
 * operation on a key when any rule of any of its policies matches both.
 * Admin principals may do everything, including managing tokens, policies and
 * certificate mappings.
 *
 * Lookups are cached for at most 1 s (revocation and policy changes take effect
 * within a second on every node). Thread-safe.
 */
#ifndef SBX_SERVER_AUTH_H
#define SBX_SERVER_AUTH_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    KMS_OP_CREATE,
    KMS_OP_READ,
    KMS_OP_LIST,
    KMS_OP_ROTATE,
    KMS_OP_CONFIG,
    KMS_OP_DELETE,          /* soft delete and restore */
    KMS_OP_DESTROY,         /* destroy a version */
    KMS_OP_DATAKEY,         /* data key with plaintext */
    KMS_OP_DATAKEY_WRAPPED, /* data key, wrapped only */
    KMS_OP_ENCRYPT,
    KMS_OP_DECRYPT,
    KMS_OP_REWRAP,
    KMS_OP_SEED, /* GET /, POST /new, POST /key */
    KMS_OP_METRICS,
    KMS_OP_ADMIN, /* tokens, policies, certificate mappings */
    KMS_OP_HEALTH,
    KMS_OP_OTHER, /* unknown route; for metrics and audit only */
    KMS_OP_COUNT
} kms_op;

/* "create", "read", ..., "datakey-wrapped", ..., "admin", "health", "other". */
const char *kms_op_name(kms_op op);
/* Parses an op name (not "health"/"other"). -1 if unknown. */
int kms_op_parse(const char *name);

#define KMS_PRINCIPAL_POLICIES_MAX 32

typedef struct {
    char kind[8];   /* "token" or "cert" */
    char id[17];    /* token id, or "" for certificates */
    char name[129]; /* token name, or the certificate CN */
    bool admin;
    int64_t expires; /* unix seconds; 0 = never */
    size_t npolicies;
    char policies[KMS_PRINCIPAL_POLICIES_MAX][65];
} kms_principal;

typedef struct kms_auth kms_auth;

int kms_auth_new(kms_auth **out);
void kms_auth_free(kms_auth *a);

/*
 * Authenticates a bearer token. SBX_EAUTH ("unknown or revoked token",
 * "token expired") when it does not; SBX_EIO when storage fails.
 */
int kms_auth_token(kms_auth *a, kms_store *st, const char *token, kms_principal *out);
/* Authenticates a verified client certificate's CN. SBX_EAUTH when no mapping exists. */
int kms_auth_cert(kms_auth *a, kms_store *st, const char *cn, kms_principal *out);
/*
 * 0 when p may do op on key_name (NULL for operations not on a key: list,
 * seed, metrics, admin), SBX_EDENIED otherwise, SBX_EIO on storage failure.
 */
int kms_authorize(kms_auth *a, kms_store *st, const kms_principal *p, kms_op op,
                  const char *key_name);

/* ---- management (admin) ---- */

/*
 * Creates a token. ttl seconds (0 = never expires). *token_out (malloc'd,
 * wipe) gets the secret token, id_out its id, *expires_out (may be NULL) the
 * expiry stored (unix seconds, 0 = never; at least ttl seconds from now).
 */
int kms_token_create(kms_store *st, const char *name, const char *const *policies, size_t n,
                     bool admin, int64_t ttl, char **token_out, char id_out[17],
                     int64_t *expires_out);
/* Creates an admin token with a given secret (the first start's admin.token, --dev's fixed token).
 */
int kms_token_install(kms_store *st, const char *name, const char *token, bool admin, int64_t ttl,
                      char id_out[17]);
int kms_token_list(kms_store *st, int (*cb)(void *ctx, const kms_principal *p, int64_t created),
                   void *ctx);
/* Revokes by id. SBX_ENOTFOUND when there is none. */
int kms_token_revoke(kms_auth *a, kms_store *st, const char *id);

/* Stores a policy document (validated: JSON object with a "rules" array as above). SBX_EFORMAT with
 * a message naming the problem. */
int kms_policy_put(kms_auth *a, kms_store *st, const char *name, const char *json, size_t len);
/* *json is malloc'd. */
int kms_policy_get(kms_store *st, const char *name, char **json);
int kms_policy_delete(kms_auth *a, kms_store *st, const char *name);
int kms_policy_list(kms_store *st, int (*cb)(void *ctx, const char *name), void *ctx);

int kms_cert_map(kms_auth *a, kms_store *st, const char *cn, const char *const *policies, size_t n,
                 bool admin);
int kms_cert_unmap(kms_auth *a, kms_store *st, const char *cn);
int kms_cert_list(kms_store *st, int (*cb)(void *ctx, const kms_principal *p), void *ctx);

#endif
