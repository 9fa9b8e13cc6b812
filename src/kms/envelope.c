/*
 * src/kms/envelope.c - envelope (KMS) recipients and identities for age
 * files: the file key is wrapped by `sbx kms serve`.
 *
 * Implementation notes:
 *  - Stanza (DESIGN.md §3, "extensions keep the container valid age"):
 *        -> sbx-kms https://host:port/NAME
 *        <the server's ciphertext "sbx:v<N>:<base64>", as the stanza body>
 *    age skips a stanza of an unknown type, so a file with only sbx-kms
 *    stanzas is a valid age file that age reports as "no identity matched".
 *  - The server binds the context {"sbx": "age-file-key"} as associated data,
 *    so a stanza body cannot be replayed as some other kind of ciphertext.
 *  - The stanza is untrusted input: it names the server that gets our token.
 *    The identity sends the token only to an allowed origin (scheme, host
 *    and port of opts->urls) or, with no urls, to any server whose
 *    certificate verifies against a pinned CA file or fingerprint. A stanza
 *    for another server is NOT_MINE and remembered, so the final
 *    "no identity matched" message can name it and say how to allow it.
 *  - A failure of an allowed server (down, 401, 403, 400 "does not
 *    authenticate") does not fail the file at once: another sbx-kms stanza
 *    (another server, for redundancy) may open it. The first failure is
 *    what the user sees when none does; after KMS_MAX_FAILURES failures in
 *    one file the remaining sbx-kms stanzas are not tried (a crafted file
 *    could otherwise make us send the token a thousand times).
 *  - Clients are created on first use, one per stanza base URL, and cached
 *    in the identity. An identity is not thread-safe (as any identity).
 */
#include "strongbox/kms.h"
#include "strongbox/memory.h"
#include "strongbox/sys/age.h"
#include "kms/client.h"
#include "kms/envelope.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KMS_MAX_FAILURES 3 /* failing sbx-kms stanzas tried per file */
#define KMS_STANZA_TYPE  "sbx-kms"
#define KMS_MAX_BODY     1024 // a wrapped 16-byte key is under 100 characters

static const sbx_kms_pair file_key_ctx[1] = {{"sbx", "age-file-key"}};

/* ------------------------------------------------------------------ helpers */

/* A server ciphertext as a stanza body: "sbx:v<digits>:" then printable ASCII. */
static bool
body_ok(const uint8_t *p, size_t len)
{
    size_t i = 5;
    if (len < 8 || len > KMS_MAX_BODY || memcmp(p, "sbx:v", 5) != 0)
        return false;
    while (i < len && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == 5 || i + 1 >= len || p[i] != ':')
        return false;
    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ recipient */

struct kms_recipient {
    sbx_recipient base;
    sbx_kms_client *client; // borrowed
    char *url;              // normalised "BASE/NAME", written into the stanza
    char *name;
};

static int
recipient_wrap(const sbx_recipient *r, sbx_age_header *hdr,
               const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct kms_recipient *k = (const struct kms_recipient *)r;
    sbx_buf ct = SBX_BUF_INIT;
    unsigned version = 0;
    int err;
    if ((err = sbx_kms_encrypt(k->client, k->name, file_key, SBX_AGE_FILE_KEY_LEN, file_key_ctx, 1,
                               &ct, &version)) < 0)
        goto out;
    size_t len = ct.ptr != NULL ? strnlen((const char *)ct.ptr, ct.len) : 0;
    if (!body_ok(ct.ptr, len)) {
        err = sbx__error(SBX_EFORMAT,
                         "the key server for %s answered a ciphertext that is not "
                         "\"sbx:v<N>:...\" text; not writing it into the file",
                         k->url);
        goto out;
    }
    const char *args[1] = {k->url};
    err = sbx_age_header_add_stanza(hdr, KMS_STANZA_TYPE, args, 1, ct.ptr, len);
out:
    sbx_buf_dispose(&ct);
    return err;
}

static int
recipient_to_string(const sbx_recipient *r, sbx_buf *out)
{
    const struct kms_recipient *k = (const struct kms_recipient *)r;
    return sbx_buf_append(out, k->url, strlen(k->url));
}

static void
recipient_free(sbx_recipient *r)
{
    struct kms_recipient *k = (struct kms_recipient *)r;
    free(k->url);
    free(k->name);
    free(k);
}

static const sbx_recipient_ops recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, KMS_STANZA_TYPE, 0, recipient_wrap,
    recipient_to_string,       recipient_free,
};

/* see strongbox/kms.h */
int
sbx_recipient_kms_new(sbx_recipient **out, sbx_kms_client *client, const char *key_url)
{
    struct kms_recipient *k = NULL;
    char *base = NULL, *name = NULL;
    int err;
    *out = NULL;
    sbx_kms__register();
    if (client == NULL || key_url == NULL)
        return sbx__error(SBX_EINVAL, "sbx_recipient_kms_new: client and key_url are required");
    if ((err = sbx_kms_parse_key_url(key_url, &base, &name)) < 0)
        return err;
    if ((k = calloc(1, sizeof(*k))) == NULL ||
        (k->url = malloc(strlen(base) + strlen(name) + 2)) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    sprintf(k->url, "%s/%s", base, name);
    k->base.ops = &recipient_ops;
    k->client = client;
    k->name = name;
    name = NULL;
    *out = &k->base;
    k = NULL;
out:
    if (k != NULL)
        free(k->url);
    free(k);
    free(base);
    free(name);
    return err;
}

/* ------------------------------------------------------------------ stanza check */

/*
 * The rule of an sbx-kms stanza: one argument, a key URL
 * https://host:port/NAME; the body a printable key server ciphertext
 * "sbx:v<N>:..." of at most KMS_MAX_BODY bytes.
 */
static int
stanza_check(const sbx_age_stanza *s, size_t index)
{
    char *base = NULL, *name = NULL;
    if (s->nargs != 1)
        return sbx__error(SBX_EHEADER, "sbx-kms stanza %zu: expected 1 argument, got %zu",
                          index + 1, s->nargs);
    if (strncmp(s->args[0], "https://", 8) != 0 ||
        sbx_kms_parse_key_url(s->args[0], &base, &name) < 0)
        return sbx__error(SBX_EHEADER,
                          "sbx-kms stanza %zu: the argument is not a key URL "
                          "https://host:port/NAME",
                          index + 1);
    free(base);
    free(name);
    if (!body_ok(s->body, s->body_len))
        return sbx__error(SBX_EHEADER,
                          "sbx-kms stanza %zu: the body is not a key server ciphertext "
                          "\"sbx:v<N>:...\" of at most %d printable bytes",
                          index + 1, KMS_MAX_BODY);
    return 0;
}

/* see kms/envelope.h */
const sbx_age_stanza_type sbx_kms__stanza_type = {
    SBX_AGE_STANZA_TYPE_VERSION, KMS_STANZA_TYPE, 0, stanza_check, NULL,
};

/* ------------------------------------------------------------------ identity */

struct kms_conn {
    char *base;
    sbx_kms_client *client;
};

struct kms_identity {
    sbx_identity base;
    char **origins; // allowed servers, as sbx_kms__origin()
    size_t norigins;
    char *token; // secure memory, or NULL
    size_t token_size;
    char *cacert, *fingerprint, *client_cert, *client_key;
    unsigned timeout_ms, connect_timeout_ms, retries, backoff_ms;
    struct kms_conn *conns;
    size_t nconns;
    char *skipped;  // the first stanza server we refused to contact, or NULL
    int failed;     // the first server failure in the current file (code), or 0
    char *failure;  // its message
    size_t nfailed; // server failures in the current file
};

static void
identity_free(sbx_identity *id)
{
    struct kms_identity *k = (struct kms_identity *)id;
    for (size_t i = 0; i < k->norigins; i++)
        free(k->origins[i]);
    free(k->origins);
    for (size_t i = 0; i < k->nconns; i++) {
        sbx_kms_client_free(k->conns[i].client);
        free(k->conns[i].base);
    }
    free(k->conns);
    if (k->token != NULL)
        sbx_secret_free(k->token, k->token_size);
    free(k->cacert);
    free(k->fingerprint);
    free(k->client_cert);
    free(k->client_key);
    free(k->skipped);
    free(k->failure);
    free(k);
}

static bool
allowed(const struct kms_identity *k, const char *origin)
{
    if (k->norigins == 0)
        return k->cacert != NULL || k->fingerprint != NULL;
    for (size_t i = 0; i < k->norigins; i++) {
        if (strcmp(k->origins[i], origin) == 0)
            return true;
    }
    return false;
}

/* Note the first server not contacted, with how to allow it, for the final message. */
static void
remember_skipped(struct kms_identity *k, const char *origin)
{
    char note[1024];
    if (k->skipped != NULL)
        return;
    if (k->norigins > 0)
        snprintf(note, sizeof(note),
                 "the file's key server %s was not contacted: it is not one of the allowed "
                 "servers (add it to SBX_KMS_URL or give --kms-url %s)",
                 origin, origin);
    else
        snprintf(note, sizeof(note),
                 "the file's key server %s was not contacted: no server is allowed (set "
                 "SBX_KMS_URL=%s or give --kms-url %s; or trust its certificate with "
                 "SBX_KMS_CACERT / SBX_KMS_FINGERPRINT)",
                 origin, origin, origin);
    k->skipped = strdup(note);
}

/* The cached client for base, made on first use with the identity's credentials. */
static int
client_for(sbx_kms_client **out, struct kms_identity *k, const char *base)
{
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    const char *urls[1] = {base};
    struct kms_conn *grown;
    int err;
    for (size_t i = 0; i < k->nconns; i++) {
        if (strcmp(k->conns[i].base, base) == 0) {
            *out = k->conns[i].client;
            return 0;
        }
    }
    if ((grown = realloc(k->conns, (k->nconns + 1) * sizeof(*grown))) == NULL)
        return sbx__error_nomem();
    k->conns = grown;
    o.urls = urls;
    o.url_count = 1;
    o.token = k->token;
    o.cacert = k->cacert;
    o.fingerprint = k->fingerprint;
    o.client_cert = k->client_cert;
    o.client_key = k->client_key;
    o.timeout_ms = k->timeout_ms;
    o.connect_timeout_ms = k->connect_timeout_ms;
    o.retries = k->retries;
    o.backoff_ms = k->backoff_ms;
    if ((grown[k->nconns].base = strdup(base)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_kms_client_new(&grown[k->nconns].client, &o)) < 0) {
        free(grown[k->nconns].base);
        return err;
    }
    *out = grown[k->nconns++].client;
    return 0;
}

/* Re-raise the current error with the stanza's key URL in front. */
static int
stanza_error(int err, const char *url, const char *what)
{
    return sbx__error_prefix(err, "sbx-kms stanza for %s: %s", url, what);
}

/*
 * The client and key name for stanza s, or SBX_AGE_NOT_MINE when its server
 * is not allowed (remembered for the final message). *name is malloc'ed.
 */
static int
stanza_client(sbx_kms_client **client, char **name, struct kms_identity *k, const sbx_age_stanza *s)
{
    char *base = NULL, *origin = NULL;
    int err;
    *client = NULL;
    *name = NULL;
    if ((err = sbx_kms_parse_key_url(s->args[0], &base, name)) < 0 ||
        (err = sbx_kms__origin(&origin, base)) < 0)
        goto out;
    if (!allowed(k, origin)) {
        remember_skipped(k, origin);
        err = SBX_AGE_NOT_MINE;
        goto out;
    }
    if (k->token == NULL && k->client_cert == NULL) {
        err = sbx__error(SBX_ENOKEY,
                         "the file key is held by the key server %s, and no credentials "
                         "were given: set SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE",
                         origin);
        goto out;
    }
    err = client_for(client, k, base);
out:
    if (err != 0) {
        free(*name);
        *name = NULL;
    }
    free(base);
    free(origin);
    return err;
}

/* The stanza body as a NUL-terminated string (checked by stanza_check). */
static void
body_string(char out[KMS_MAX_BODY + 1], const sbx_age_stanza *s)
{
    size_t n = s->body_len > KMS_MAX_BODY ? KMS_MAX_BODY : s->body_len;
    memcpy(out, s->body, n);
    out[n] = '\0';
}

/* Forget what the last file's stanzas left (skipped servers, failures). */
static void
begin_file(struct kms_identity *k)
{
    free(k->skipped);
    free(k->failure);
    k->skipped = k->failure = NULL;
    k->failed = 0;
    k->nfailed = 0;
}

static int
unwrap_one(struct kms_identity *k, const sbx_age_stanza *s, size_t index,
           uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_kms_client *client = NULL;
    sbx_buf pt = SBX_BUF_INIT;
    char *name = NULL, ct[KMS_MAX_BODY + 1];
    unsigned version = 0;
    int err;
    // The library may have been loaded after the header was read: check it here too.
    if ((err = stanza_check(s, index)) < 0)
        return err;
    // A file may name a server many times (up to 1024 stanzas): after a few failures
    // in one file, stop sending the token around and report the first failure.
    if (k->nfailed >= KMS_MAX_FAILURES)
        return SBX_AGE_NOT_MINE;
    if ((err = stanza_client(&client, &name, k, s)) != 0)
        return err;
    body_string(ct, s);
    if ((err = sbx_kms_decrypt(client, name, ct, file_key_ctx, 1, &pt, &version)) < 0) {
        err = stanza_error(err, s->args[0], "the key server did not unwrap the file key");
        // Another sbx-kms stanza (another server, for redundancy) may still open the
        // file: remember the first failure, report it if nothing else matches.
        if (k->failed == 0) {
            k->failed = err;
            k->failure = strdup(sbx_error_last()->message);
        }
        k->nfailed++;
        err = SBX_AGE_NOT_MINE;
        goto out;
    }
    if (pt.len != SBX_AGE_FILE_KEY_LEN) {
        err = sbx__error(SBX_EHEADER,
                         "sbx-kms stanza for %s: the key server answered %zu bytes, not a "
                         "16-byte file key",
                         s->args[0], pt.len);
        goto out;
    }
    memcpy(file_key, pt.ptr, SBX_AGE_FILE_KEY_LEN);
out:
    sbx_buf_dispose(&pt); // wipes the file key copy
    free(name);
    return err;
}

static int
identity_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
                uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    struct kms_identity *k = (struct kms_identity *)id;
    begin_file(k);
    for (size_t i = 0; i < count; i++) {
        int err = unwrap_one(k, stanzas[i], i, file_key);
        if (err != SBX_AGE_NOT_MINE)
            return err;
    }
    return SBX_AGE_NOT_MINE;
}

/* Why no sbx-kms stanza opened the file: a server failure, or a server not contacted. */
static int
identity_explain(sbx_identity *id)
{
    const struct kms_identity *k = (const struct kms_identity *)id;
    if (k->failed < 0)
        return sbx__error(k->failed, "%s",
                          k->failure != NULL ? k->failure
                                             : "the key server did not unwrap the file key");
    if (k->skipped != NULL)
        return sbx__error(SBX_ENOMATCH, "%s", k->skipped);
    return 0;
}

static const char *const identity_types[] = {KMS_STANZA_TYPE, NULL};

static const sbx_identity_ops identity_ops = {
    SBX_IDENTITY_OPS_VERSION,
    identity_types,
    identity_unwrap,
    identity_explain,
    NULL,
    NULL,
    identity_free,
};

static int
copy_strings(struct kms_identity *k, const sbx_kms_client_options *o)
{
    if ((o->cacert && !(k->cacert = strdup(o->cacert))) ||
        (o->fingerprint && !(k->fingerprint = strdup(o->fingerprint))) ||
        (o->client_cert && !(k->client_cert = strdup(o->client_cert))) ||
        (o->client_key && !(k->client_key = strdup(o->client_key))))
        return sbx__error_nomem();
    if (o->token != NULL) {
        k->token_size = strlen(o->token) + 1;
        if ((k->token = sbx_secret_alloc(k->token_size)) == NULL)
            return sbx__error_nomem();
        memcpy(k->token, o->token, k->token_size);
    }
    if (o->url_count > 0 && (k->origins = calloc(o->url_count, sizeof(char *))) == NULL)
        return sbx__error_nomem();
    for (size_t i = 0; i < o->url_count; i++) {
        int err = sbx_kms__origin(&k->origins[i], o->urls[i]);
        if (err < 0)
            return err;
        k->norigins++;
    }
    return 0;
}

/* see strongbox/kms.h */
int
sbx_identity_kms_new(sbx_identity **out, const sbx_kms_client_options *opts)
{
    sbx_kms_client_options defaults = SBX_KMS_CLIENT_OPTIONS_INIT;
    struct kms_identity *k;
    int err;
    *out = NULL;
    sbx_kms__register();
    if (opts == NULL)
        opts = &defaults;
    if (opts->version != SBX_KMS_CLIENT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_kms_client_options version");
    if (opts->url_count > 0 && opts->urls == NULL)
        return sbx__error(SBX_EINVAL, "sbx_identity_kms_new: url_count > 0 but urls is NULL");
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return sbx__error_nomem();
    k->base.ops = &identity_ops;
    k->timeout_ms = opts->timeout_ms;
    k->connect_timeout_ms = opts->connect_timeout_ms;
    k->retries = opts->retries;
    k->backoff_ms = opts->backoff_ms;
    if ((err = copy_strings(k, opts)) < 0) {
        identity_free(&k->base);
        return err;
    }
    *out = &k->base;
    return 0;
}

/* see strongbox/kms.h */
int
sbx_identity_kms_new_from_env(sbx_identity **out, const sbx_kms_client_options *overrides)
{
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    const sbx_kms_client_options none = SBX_KMS_CLIENT_OPTIONS_INIT;
    char **urls = NULL, *token = NULL;
    size_t nurls = 0, token_size = 0;
    const char *v;
    int err = 0;
    *out = NULL;
    if (overrides == NULL)
        overrides = &none;
    if ((err = sbx_kms__env_credentials(&o, overrides, &token, &token_size)) < 0)
        goto out;
    if (overrides->url_count > 0) {
        o.urls = overrides->urls;
        o.url_count = overrides->url_count;
    } else if ((v = getenv("SBX_KMS_URL")) != NULL && v[0] != '\0') {
        if ((err = sbx_kms__urls_split(&urls, &nurls, NULL, v)) < 0)
            goto out;
        o.urls = (const char *const *)urls;
        o.url_count = nurls;
    }
    if (overrides->timeout_ms != 0) // zero: keep the defaults
        o.timeout_ms = overrides->timeout_ms;
    if (overrides->connect_timeout_ms != 0)
        o.connect_timeout_ms = overrides->connect_timeout_ms;
    if (overrides != &none) {
        o.retries = overrides->retries;
        o.backoff_ms = overrides->backoff_ms;
    }
    err = sbx_identity_kms_new(out, &o);
out:
    sbx_kms__urls_free(urls, nurls);
    if (token != NULL)
        sbx_secret_free(token, token_size);
    return err;
}

/* ------------------------------------------------------------------ internals */

/* see kms/envelope.h */
bool
sbx_kms__is_identity(const sbx_identity *id)
{
    return id != NULL && id->ops == &identity_ops;
}

/* see kms/envelope.h */
int
sbx_kms__stanza_rewrap(sbx_identity *id, const sbx_age_stanza *s, sbx_buf *body, unsigned *version)
{
    struct kms_identity *k = (struct kms_identity *)id;
    sbx_kms_client *client = NULL;
    sbx_buf ct = SBX_BUF_INIT;
    char *name = NULL, old[KMS_MAX_BODY + 1];
    int err;
    *version = 0;
    if (!sbx_kms__is_identity(id))
        return sbx__error(SBX_EINVAL, "rewrapping an sbx-kms stanza needs a key server identity");
    if ((err = stanza_check(s, 0)) < 0)
        return err;
    if ((err = stanza_client(&client, &name, k, s)) == SBX_AGE_NOT_MINE)
        return sbx__error(SBX_EDENIED, "sbx-kms stanza for %s: %s", s->args[0],
                          k->skipped != NULL ? k->skipped : "its server is not allowed");
    if (err < 0)
        return err;
    body_string(old, s);
    if ((err = sbx_kms_rewrap(client, name, old, file_key_ctx, 1, &ct, version)) < 0) {
        err = stanza_error(err, s->args[0], "the key server did not rewrap the file key");
        goto out;
    }
    size_t len = ct.ptr != NULL ? strnlen((const char *)ct.ptr, ct.len) : 0;
    if (!body_ok(ct.ptr, len)) {
        err = sbx__error(SBX_EFORMAT,
                         "sbx-kms stanza for %s: the key server answered a "
                         "ciphertext that is not \"sbx:v<N>:...\" text",
                         s->args[0]);
        goto out;
    }
    err = sbx_buf_append(body, ct.ptr, len);
out:
    sbx_buf_dispose(&ct);
    free(name);
    return err;
}
