/*
 * server/api_json.h - what the api*.c files share (internal to the HTTP API;
 * other modules use api.h only).
 *
 * Implementation notes:
 *  - A request is a kms_call: the borrowed request and response, the
 *    authenticated principal, the operation and key name for the audit line,
 *    and the error message the audit line carries. Handlers fill the response
 *    through kms_reply_* only, so every path sets c->error consistently.
 *  - Response bodies are written by hand into a kms_buf, never through
 *    jansson: a kms_buf wipes its old memory when it grows and when it is
 *    disposed, and the response body it becomes is wiped by
 *    kms_response_dispose. So plaintext data keys and decrypted plaintexts
 *    (base64) never sit in memory that is freed unwiped.
 *  - Request bodies are parsed with jansson (duplicate keys, NUL characters,
 *    invalid UTF-8 and trailing data refused; nesting depth checked before
 *    parsing). Requests carry secrets too (the plaintext of /encrypt), so
 *    kms_api_new installs jansson allocation functions that wipe every block
 *    before freeing it (malloc_usable_size bytes, so blocks allocated before
 *    the switch are freed correctly as well).
 *  - Messages never echo request values that may be secret (tokens,
 *    plaintexts, ciphertexts, context values); field names are echoed,
 *    truncated and escaped, so that "unknown field" names the field.
 */
#ifndef SBX_SERVER_API_JSON_H
#define SBX_SERVER_API_JSON_H

#include "api.h"

#include <jansson.h>

#define KMS_JSON_DEPTH_MAX    10          /* nesting of request bodies */
#define KMS_API_BODY_MAX      (16u << 20) /* defence in depth; the transport limits bodies first */
#define KMS_CONTEXT_PAIRS_MAX 64
#define KMS_CONTEXT_KEY_MAX   128
#define KMS_CONTEXT_VALUE_MAX 1024
#define KMS_POLICY_NAME_MAX   64
#define KMS_CN_MAX            128

struct kms_api {
    kms_keystore *ks;
    kms_auth *auth;
    kms_audit *audit;
    bool dev;
    char storage[16];
    int64_t tick_report_ms; /* last time kms_api_tick reported a failure */
};

/* ---- output buffer: wiped when it grows and when disposed ---- */

typedef struct {
    char *p; /* NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    bool failed; /* out of memory: the content is incomplete */
} kms_buf;

void kms_buf_put(kms_buf *b, const void *s, size_t n);
void kms_buf_puts(kms_buf *b, const char *s);
void kms_buf_printf(kms_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when s is valid UTF-8 (no overlong forms, no surrogates). */
bool kms_utf8_valid(const char *s);
/* A JSON string literal of s (escaped, quoted; bytes that are not UTF-8 become U+FFFD). */
void kms_buf_str(kms_buf *b, const char *s);
/* A JSON string literal of the standard base64 (padded) of n bytes. */
void kms_buf_b64(kms_buf *b, const uint8_t *in, size_t n);
void kms_buf_dispose(kms_buf *b);

/* ---- one request ---- */

/* One item of a batch, for the audit line's items. */
typedef struct {
    kms_op op;
    uint32_t key_version;
    int status;
    char error[160]; /* "" on success */
} kms_item_record;

typedef struct {
    kms_api *api;
    kms_store *st;
    const kms_request *req;
    kms_response *resp;
    kms_principal who;
    bool authed;
    kms_op op;
    const char *key;                    /* key name from the path when valid, else NULL */
    uint32_t key_version;               /* for the audit line; 0 = none */
    char error[256];                    /* message of an error response, for the audit line */
    char seg[2][KMS_STORE_KEY_MAX + 1]; /* the path segments the route matched with '*' */
    bool batch;                         /* a batch ran: items[0..nitems) for the audit line */
    kms_item_record *items;             /* malloc'd; freed by kms_api_handle */
    size_t nitems;
} kms_call;

/* Sends b (taken over, even on failure) as an application/json body. */
void kms_reply_json(kms_call *c, int status, kms_buf *b);
/* Sends {"error": message}; the message is also kept for the audit line. */
void kms_reply_error(kms_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends the error err (a negative SBX_E*) with sbx_error_last()'s message. */
void kms_reply_sbx(kms_call *c, int err);
/* Sends a body of another type; body (malloc'd or NULL) is taken over. */
void kms_reply_raw(kms_call *c, int status, const char *ctype, uint8_t *body, size_t len);
/* The HTTP status for a keystore/auth error code. */
int kms_status_of(int err);
/* Checks that the principal may do op on key (NULL when not on a key); replies 403/500 if not. */
int kms_call_authorize(kms_call *c, kms_op op, const char *key);

/* ---- request parsing ---- */

/* Wiping allocation functions for jansson (installed once by kms_api_new). */
void kms_json_install_wiping_alloc(void);
/* Parses a body that must be a JSON object (an empty body is {}). SBX_EFORMAT naming the problem.
 */
int kms_json_parse(json_t **out, const uint8_t *body, size_t len);
/* SBX_EFORMAT naming the first field of obj not in allowed (NULL-terminated). */
int kms_json_only(const json_t *obj, const char *const *allowed);
/* Optional fields, strictly typed: *present tells whether the field was there. */
int kms_json_int(const json_t *obj, const char *field, bool *present, int64_t *v);
int kms_json_bool(const json_t *obj, const char *field, bool *present, bool *v);
int kms_json_str(const json_t *obj, const char *field, bool *present, const char **v, size_t *len);
/* An optional array of at most max strings of 1..maxlen bytes; *v is malloc'd (free it). */
int kms_json_strs(const json_t *obj, const char *field, size_t max, size_t maxlen, const char ***v,
                  size_t *n);
/* The optional "context" field, canonicalised (kms_context_canonical); wipe and free *out. */
int kms_json_context(const json_t *obj, uint8_t **out, size_t *len);
/* Wipes every string value in v (before json_decref of a body that held secrets). */
void kms_json_wipe(json_t *v);
/*
 * Percent-decodes [s, s+n) into out (cap bytes with the NUL; out may be s).
 * query: '+' is a space. SBX_EFORMAT for a malformed escape, %00, or no room.
 */
int kms_pct_decode(char *out, size_t cap, const char *s, size_t n, bool query);
/* Reads query parameter name (percent-decoded) into out. SBX_EFORMAT on bad encoding or length. */
int kms_query_get(const char *query, const char *name, char *out, size_t cap, bool *present);
/* SBX_EFORMAT naming the first query parameter not in allowed. */
int kms_query_only(const char *query, const char *const *allowed);
/* Parses a non-negative decimal (no sign, no spaces) up to max. */
int kms_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* ---- handlers (api_keys.c, api_admin.c, api_seed.c) ---- */

typedef struct {
    const char *seg[2]; /* the path segments matched by '*' in the route */
    json_t *body;       /* parsed body for JSON routes (an empty object when none) */
} kms_args;

void kms_h_key_list(kms_call *c, const kms_args *a);
void kms_h_key_create(kms_call *c, const kms_args *a);
void kms_h_key_read(kms_call *c, const kms_args *a);
void kms_h_key_rotate(kms_call *c, const kms_args *a);
void kms_h_key_config(kms_call *c, const kms_args *a);
void kms_h_key_delete(kms_call *c, const kms_args *a);
void kms_h_key_restore(kms_call *c, const kms_args *a);
void kms_h_key_destroy(kms_call *c, const kms_args *a);
void kms_h_datakey(kms_call *c, const kms_args *a);
void kms_h_encrypt(kms_call *c, const kms_args *a);
void kms_h_decrypt(kms_call *c, const kms_args *a);
void kms_h_rewrap(kms_call *c, const kms_args *a);

void kms_h_token_create(kms_call *c, const kms_args *a);
void kms_h_token_list(kms_call *c, const kms_args *a);
void kms_h_token_revoke(kms_call *c, const kms_args *a);
void kms_h_policy_put(kms_call *c, const kms_args *a);
void kms_h_policy_get(kms_call *c, const kms_args *a);
void kms_h_policy_list(kms_call *c, const kms_args *a);
void kms_h_policy_delete(kms_call *c, const kms_args *a);
void kms_h_cert_put(kms_call *c, const kms_args *a);
void kms_h_cert_list(kms_call *c, const kms_args *a);
void kms_h_cert_delete(kms_call *c, const kms_args *a);

void kms_h_seed_status(kms_call *c, const kms_args *a);
void kms_h_seed_new(kms_call *c, const kms_args *a);
void kms_h_seed_key(kms_call *c, const kms_args *a);
void kms_h_health(kms_call *c, const kms_args *a);
void kms_h_metrics(kms_call *c, const kms_args *a);

#endif
