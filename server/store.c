/*
 * server/store.c - URL dispatch and argument checks for the storage backends
 * (see store.h for the interface, store_impl.h for the implementation notes).
 */
#include "log.h"
#include "store_impl.h"

#include "strongbox/kdf.h"
#include "strongbox/error.h"
#include "strongbox/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define ROW_MAC_LEN 32

const uint8_t kms__store_empty[1] = {0};

/* Namespaces are short identifiers: [A-Za-z0-9_.-]{1,32}. */
static int
check_ns(const char *ns)
{
    if (ns == NULL)
        return sbx_error_set(SBX_EINVAL, "storage: namespace is NULL");
    size_t n = strlen(ns);
    if (n == 0 || n > KMS_STORE_NS_MAX)
        return sbx_error_set(SBX_EINVAL, "storage: namespace must be 1 to %d bytes, not %zu",
                             KMS_STORE_NS_MAX, n);
    if (strspn(ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
        return sbx_error_set(
            SBX_EINVAL, "storage: namespace '%s' may only hold letters, digits, '_', '.', '-'", ns);
    return 0;
}

/* Keys are any bytes but NUL, 1..KMS_STORE_KEY_MAX of them. */
static int
check_key(const char *key)
{
    if (key == NULL)
        return sbx_error_set(SBX_EINVAL, "storage: key is NULL");
    size_t n = strnlen(key, KMS_STORE_KEY_MAX + 1);
    if (n == 0)
        return sbx_error_set(SBX_EINVAL, "storage: key is empty");
    if (n > KMS_STORE_KEY_MAX)
        return sbx_error_set(SBX_EINVAL, "storage: key is longer than %d bytes", KMS_STORE_KEY_MAX);
    return 0;
}

static int
check_ns_key(const char *ns, const char *key)
{
    int err = check_ns(ns);
    return err < 0 ? err : check_key(key);
}

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A URL with a scheme ("xyz://") that is not one of ours. */
static bool
unknown_scheme(const char *url)
{
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    return n > 0 && strncmp(url + n, "://", 3) == 0;
}

static int
open_memory(kms_store **out, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
        return sbx_error_set(
            SBX_EINVAL,
            "storage URL 'memory:%.64s': the name must be 1 to 64 letters, digits, "
            "'_', '.' or '-' (e.g. memory:dev)",
            name);
    return kms__store_sqlite_open(out, name, true);
}

/* see store.h */
int
kms_store_open(kms_store **out, const char *url)
{
    if (out == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_open: out is NULL");
    *out = NULL;
    if (url == NULL || *url == '\0')
        return sbx_error_set(SBX_EINVAL, "storage URL is empty: use sqlite:PATH, memory:NAME or "
                                         "postgres://user@host/db");
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"))
        return kms__store_pg_open(out, url);
    if (has_prefix(url, "memory:"))
        return open_memory(out, url + strlen("memory:"));
    const char *path = url;
    if (has_prefix(url, "sqlite:")) {
        path = url + strlen("sqlite:");
        if (has_prefix(path, "///"))
            path += 2; // sqlite:///abs/path
        if (*path == '\0')
            return sbx_error_set(SBX_EINVAL,
                                 "storage URL 'sqlite:' names no file: use sqlite:PATH");
    } else if (unknown_scheme(url)) {
        return sbx_error_set(SBX_EINVAL,
                             "storage URL scheme '%.*s' is not supported: use sqlite:PATH, "
                             "memory:NAME or postgres://user@host/db",
                             (int)strcspn(url, ":"), url);
    }
    return kms__store_sqlite_open(out, path, false);
}

/* see store.h */
void
kms_store_close(kms_store *s)
{
    if (s != NULL) {
        sbx_secret_free(s->mac_key, ROW_MAC_LEN);
        s->mac_key = NULL;
        s->ops->close(s);
    }
}

/* see store.h */
int
kms_store_set_integrity_key(kms_store *s, const uint8_t key[32])
{
    if (s == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_set_integrity_key: store is NULL");
    sbx_secret_free(s->mac_key, ROW_MAC_LEN);
    s->mac_key = NULL;
    if (key == NULL)
        return 0;
    if ((s->mac_key = sbx_secret_alloc(ROW_MAC_LEN)) == NULL)
        return sbx_error_set(SBX_ENOMEM, "out of memory for the storage integrity key");
    memcpy(s->mac_key, key, ROW_MAC_LEN);
    return 0;
}

/* see store.h */
int
kms_store_copy_integrity_key(kms_store *dst, const kms_store *src)
{
    return kms_store_set_integrity_key(dst, src != NULL ? src->mac_key : NULL);
}

static bool
protected_ns(const kms_store *s, const char *ns)
{
    return s->mac_key != NULL && strcmp(ns, "meta") != 0;
}

/* HMAC-SHA-256(mac_key, ns || 0 || key || 0 || val): binds the bytes to their row. */
static int
row_mac(uint8_t out[ROW_MAC_LEN], const kms_store *s, const char *ns, const char *key,
        const uint8_t *val, size_t len)
{
    size_t nl = strlen(ns) + 1, kl = strlen(key) + 1;
    uint8_t *msg = malloc(nl + kl + len + 1);
    if (msg == NULL)
        return sbx_error_set(SBX_ENOMEM, "out of memory for a storage row tag");
    memcpy(msg, ns, nl);
    memcpy(msg + nl, key, kl);
    if (len > 0)
        memcpy(msg + nl + kl, val, len);
    int err = sbx_hmac_sha256(out, s->mac_key, msg, nl + kl + len);
    sbx_wipe(msg, nl + kl + len);
    free(msg);
    return err;
}

/* Checks and strips the tag of a row read from ns/key: *len shrinks by ROW_MAC_LEN. */
static int
row_verify(const kms_store *s, const char *ns, const char *key, const uint8_t *val, size_t *len)
{
    uint8_t want[ROW_MAC_LEN];
    if (*len < ROW_MAC_LEN)
        return sbx_error_set(SBX_EIO,
                             "storage row %s/%s has no integrity tag: it was not written by this "
                             "server under this root key (edited in the database?)",
                             ns, key);
    int err = row_mac(want, s, ns, key, val, *len - ROW_MAC_LEN);
    if (err == 0 && CRYPTO_memcmp(want, val + *len - ROW_MAC_LEN, ROW_MAC_LEN) != 0)
        err = sbx_error_set(SBX_EIO,
                            "storage row %s/%s does not authenticate under the root key: it was "
                            "edited, planted or moved in the database; restore it from a backup",
                            ns, key);
    if (err == 0)
        *len -= ROW_MAC_LEN;
    return err;
}

/* see store.h */
const char *
kms_store_backend(const kms_store *s)
{
    return s != NULL ? s->ops->name : "none";
}

/* see store.h */
int
kms_store_get(kms_store *s, const char *ns, const char *key, uint8_t **val, size_t *len,
              int64_t *rev)
{
    if (val != NULL)
        *val = NULL;
    if (len != NULL)
        *len = 0;
    if (rev != NULL)
        *rev = 0;
    if (s == NULL || val == NULL || len == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_get: store, val and len must not be NULL");
    int err = check_ns_key(ns, key);
    if (err == 0)
        err = s->ops->get(s, ns, key, val, len, rev);
    if (err == 0 && protected_ns(s, ns)) {
        size_t full = *len;
        if ((err = row_verify(s, ns, key, *val, len)) == 0) {
            sbx_wipe(*val + *len, full - *len);
            (*val)[*len] = 0; // still NUL-terminated one byte past *len
        } else {
            sbx_wipe(*val, full);
            free(*val);
            *val = NULL;
            *len = 0;
        }
    }
    return err;
}

/* see store.h */
int
kms_store_put(kms_store *s, const char *ns, const char *key, const void *val, size_t len,
              int64_t expect_rev, int64_t *new_rev)
{
    if (new_rev != NULL)
        *new_rev = 0;
    if (s == NULL || (val == NULL && len > 0))
        return sbx_error_set(SBX_EINVAL, "kms_store_put: store and value must not be NULL");
    int err = check_ns_key(ns, key);
    if (err < 0)
        return err;
    if (len > KMS_STORE_VALUE_MAX)
        return sbx_error_set(SBX_ETOOBIG, "storage: value of %zu bytes is over the %u byte limit",
                             len, KMS_STORE_VALUE_MAX);
    if (expect_rev < KMS_REV_ANY)
        return sbx_error_set(SBX_EINVAL, "storage: bad expected revision %lld",
                             (long long)expect_rev);
    if (!protected_ns(s, ns))
        return s->ops->put(s, ns, key, len > 0 ? val : kms__store_empty, len, expect_rev, new_rev);
    uint8_t *tagged = malloc(len + ROW_MAC_LEN);
    if (tagged == NULL)
        return sbx_error_set(SBX_ENOMEM, "out of memory for a storage row");
    if (len > 0)
        memcpy(tagged, val, len);
    if ((err = row_mac(tagged + len, s, ns, key, tagged, len)) == 0)
        err = s->ops->put(s, ns, key, tagged, len + ROW_MAC_LEN, expect_rev, new_rev);
    sbx_wipe(tagged, len + ROW_MAC_LEN);
    free(tagged);
    return err;
}

/* see store.h */
int
kms_store_delete(kms_store *s, const char *ns, const char *key, int64_t expect_rev)
{
    if (s == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_delete: store is NULL");
    int err = check_ns_key(ns, key);
    if (err < 0)
        return err;
    if (expect_rev == KMS_REV_ABSENT || expect_rev < KMS_REV_ANY)
        return sbx_error_set(SBX_EINVAL,
                             "storage: delete needs KMS_REV_ANY or a revision, not %lld",
                             (long long)expect_rev);
    return s->ops->del(s, ns, key, expect_rev);
}

/* see store_impl.h */
size_t
kms__prefix_end(char *out, const char *prefix)
{
    size_t n = strlen(prefix);
    while (n > 0 && (uint8_t)prefix[n - 1] == 0xff)
        n--;
    if (n == 0)
        return 0;
    memcpy(out, prefix, n);
    out[n - 1] = (char)((uint8_t)out[n - 1] + 1);
    out[n] = '\0';
    return n;
}

/* kms_store_list through the integrity check: every row verified, tags stripped. */
struct verified_list {
    const kms_store *s;
    const char *ns;
    kms_store_list_cb cb;
    void *ctx;
};

/*
 * A row that does not verify is left out of a listing, loudly: it could not be
 * used anyway (a get of it fails), and one bad row must not stop housekeeping,
 * listings or the revocation of other tokens.
 */
static int
verified_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct verified_list *vl = arg;
    if (row_verify(vl->s, vl->ns, key, val, &len) < 0) {
        kms_log(KMS_LOG_WARN, "a storage row does not verify: left out", "error",
                sbx_error_last()->message, NULL);
        sbx_error_clear();
        return 0;
    }
    return vl->cb(vl->ctx, key, val, len, rev);
}

/* see store.h */
int
kms_store_list(kms_store *s, const char *ns, const char *prefix, kms_store_list_cb cb, void *ctx)
{
    char hi[KMS_STORE_KEY_MAX + 1];
    if (s == NULL || cb == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_list: store and callback must not be NULL");
    int err = check_ns(ns);
    if (err < 0)
        return err;
    if (prefix == NULL)
        prefix = "";
    if (strnlen(prefix, KMS_STORE_KEY_MAX + 1) > KMS_STORE_KEY_MAX)
        return sbx_error_set(SBX_EINVAL, "storage: prefix is longer than %d bytes",
                             KMS_STORE_KEY_MAX);
    size_t hi_len = kms__prefix_end(hi, prefix);
    if (!protected_ns(s, ns))
        return s->ops->list(s, ns, prefix, hi_len > 0 ? hi : NULL, hi_len, cb, ctx);
    struct verified_list vl = {s, ns, cb, ctx};
    return s->ops->list(s, ns, prefix, hi_len > 0 ? hi : NULL, hi_len, verified_row, &vl);
}

/* see store.h */
int
kms_store_count(kms_store *s, const char *ns, int64_t *n)
{
    if (n != NULL)
        *n = 0;
    if (s == NULL || n == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_store_count: store and n must not be NULL");
    int err = check_ns(ns);
    return err < 0 ? err : s->ops->count(s, ns, n);
}
