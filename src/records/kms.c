/*
 * src/records/kms.c - the key server as the record key source for
 * "https://" keyrefs (strongbox/sys/records.h): one client and one data-key
 * cache per server, process-wide (see strongbox/records.h). Part of
 * libstrongbox-kms, which registers the source when it is loaded.
 *
 * Implementation notes: a list of servers keyed by base URL under a mutex,
 * created on first use and kept until sbx_record_cleanup(). An entry made
 * for encryption is trusted for decryption too (the caller named it); an
 * entry needed only by a record being decrypted is made only if the server
 * passes the Trust rule of strongbox/records.h, because the record, and
 * thus the URL, may come from an attacker and the client sends it the
 * token before any tag can be checked. The KMS encryption context is the
 * constant {"sbx": "record"} so one data key serves many rows; the row
 * context is bound by the record's own AAD.
 */
#include "records/kms.h"
#include "core/error.h"
#include "kms/client.h"
#include "strongbox/kms.h"
#include "strongbox/memory.h"
#include "strongbox/sys/records.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct kms_server {
    char *base;
    sbx_kms_client *client;
    sbx_kms_cache *cache;
    struct kms_server *next;
} kms_server;

static pthread_mutex_t servers_lock = PTHREAD_MUTEX_INITIALIZER;
static kms_server *servers;

static const sbx_kms_pair record_ctx[] = {{"sbx", "record"}};

/* An unsigned environment variable, or def when unset. */
static int
env_u64(uint64_t *out, const char *name, uint64_t def)
{
    const char *s = getenv(name);
    char *end = NULL;
    *out = def;
    if (s == NULL || *s == '\0')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || !isdigit((unsigned char)*s))
        return sbx__error(SBX_EINVAL, "%s=%s is not a number", name, s);
    *out = v;
    return 0;
}

static int
cache_limits(sbx_kms_cache_limits *l)
{
    sbx_kms_cache_limits def = SBX_KMS_CACHE_LIMITS_INIT;
    uint64_t age_s;
    int err;
    *l = def;
    if ((err = env_u64(&age_s, "SBX_KMS_CACHE_MAX_AGE", def.max_age_ms / 1000)) < 0 ||
        (err = env_u64(&l->max_uses, "SBX_KMS_CACHE_MAX_USES", def.max_uses)) < 0)
        return err;
    if (age_s == 0 || age_s > UINT64_MAX / 1000 || l->max_uses == 0)
        return sbx__error(SBX_EINVAL, "SBX_KMS_CACHE_MAX_AGE and SBX_KMS_CACHE_MAX_USES must be "
                                      "positive");
    l->max_age_ms = age_s * 1000;
    return 0;
}

/* Whether a record may make this process send its token to base (see Trust). */
static bool
trusted_for_decrypt(const char *base)
{
    const char *list = getenv("SBX_KMS_URL");
    char *origin = NULL, **urls = NULL;
    size_t n = 0;
    bool ok = false;
    if (list == NULL || *list == '\0') {
        const char *ca = getenv("SBX_KMS_CACERT"), *fp = getenv("SBX_KMS_FINGERPRINT");
        return (ca != NULL && *ca != '\0') || (fp != NULL && *fp != '\0');
    }
    if (sbx_kms__origin(&origin, base) == 0 && sbx_kms__urls_split(&urls, &n, NULL, list) == 0) {
        for (size_t i = 0; i < n && !ok; i++) {
            char *o = NULL;
            ok = sbx_kms__origin(&o, urls[i]) == 0 && strcmp(o, origin) == 0;
            free(o);
        }
    }
    sbx_kms__urls_free(urls, n);
    free(origin);
    return ok;
}

/* Make the client and cache of base. */
static int
server_new(kms_server **out, const char *base)
{
    sbx_kms_cache_limits limits;
    int err;
    kms_server *s = calloc(1, sizeof *s);
    if (s == NULL || (s->base = strdup(base)) == NULL) {
        err = sbx__error_nomem();
        goto fail;
    }
    if ((err = cache_limits(&limits)) < 0 ||
        (err = sbx_kms_client_new_from_env(&s->client, base, NULL)) < 0 ||
        (err = sbx_kms_cache_new(&s->cache, s->client, &limits)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (s != NULL) {
        sbx_kms_client_free(s->client);
        free(s->base);
        free(s);
    }
    return err;
}

/* The server of key URL keyref, made on first use; *name gets the key name (free()). */
static int
server_get(kms_server **out, char **name, const char *keyref, bool for_decrypt)
{
    char *base = NULL;
    int err;
    *out = NULL;
    *name = NULL;
    if ((err = sbx_kms_parse_key_url(keyref, &base, name)) < 0)
        return err;
    pthread_mutex_lock(&servers_lock);
    kms_server *s = servers;
    while (s != NULL && strcmp(s->base, base) != 0)
        s = s->next;
    if (s == NULL && for_decrypt && !trusted_for_decrypt(base)) {
        err = sbx__error(SBX_EDENIED,
                         "a record names key server %s, which this process has not encrypted to: "
                         "list it in SBX_KMS_URL (or pin its certificate with SBX_KMS_CACERT or "
                         "SBX_KMS_FINGERPRINT) to allow sending it the token",
                         base);
    } else if (s == NULL && (err = server_new(&s, base)) == 0) {
        s->next = servers;
        servers = s;
    }
    pthread_mutex_unlock(&servers_lock);
    free(base);
    if (err < 0) {
        free(*name);
        *name = NULL;
        return err;
    }
    *out = s;
    return 0;
}

/* see sbx_record_key_source.datakey */
static int
datakey(uint8_t key_out[32], sbx_buf *wrapped_out, const char *keyref, uint64_t bytes,
        void *payload)
{
    sbx_kms_datakey dk;
    kms_server *s;
    char *name;
    int err;
    (void)payload;
    memset(&dk, 0, sizeof dk);
    if ((err = server_get(&s, &name, keyref, false)) < 0)
        return err;
    err = sbx_kms_cache_datakey(s->cache, name, record_ctx, 1, bytes, &dk);
    free(name);
    if (err == 0 && (dk.plaintext == NULL || dk.plaintext_len != 32 || dk.ciphertext == NULL))
        err = sbx__error(SBX_EFORMAT, "key server: data key for %s is not 256 bits", keyref);
    if (err == 0 && (err = sbx_buf_append(wrapped_out, dk.ciphertext, strlen(dk.ciphertext))) == 0)
        memcpy(key_out, dk.plaintext, 32);
    sbx_kms_datakey_dispose(&dk);
    return err;
}

/* see sbx_record_key_source.unwrap */
static int
unwrap(uint8_t key_out[32], const char *keyref, const char *wrapped, void *payload)
{
    uint8_t buf[64];
    size_t len = 0;
    kms_server *s;
    char *name;
    int err;
    (void)payload;
    if ((err = server_get(&s, &name, keyref, true)) < 0)
        return err;
    err = sbx_kms_cache_decrypt(s->cache, name, wrapped, record_ctx, 1, buf, &len);
    free(name);
    if (err == 0 && len != 32)
        err = sbx__error(SBX_EFORMAT, "key server: data key for %s is not 256 bits", keyref);
    if (err == 0)
        memcpy(key_out, buf, 32);
    SBX_WIPE_BUF(buf);
    return err;
}

/* see sbx_record_key_source.cleanup: every client and cache. */
static void
cleanup(void *payload)
{
    (void)payload;
    pthread_mutex_lock(&servers_lock);
    while (servers != NULL) {
        kms_server *s = servers;
        servers = s->next;
        sbx_kms_cache_free(s->cache);
        sbx_kms_client_free(s->client);
        free(s->base);
        free(s);
    }
    pthread_mutex_unlock(&servers_lock);
}

static const sbx_record_key_source kms_source = {
    SBX_RECORD_KEY_SOURCE_VERSION, "https://", datakey, unwrap, cleanup, NULL,
};

int
sbx_record__kms_register(void)
{
    return sbx_record_key_source_register(&kms_source);
}
