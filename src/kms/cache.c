/*
 * src/kms/cache.c - the data-key cache (see strongbox/kms.h).
 *
 * Implementation notes
 *
 * The AWS Encryption SDK's local caching model, in front of one client.
 *
 * Partitions. Every entry is found by a partition key, a byte string built
 * from the request (pkey_make): a kind byte ('E' encryption, 'D'
 * decryption), the key name, for 'D' the ciphertext, then the context
 * pairs sorted by key (then value), every string length-prefixed with 8
 * bytes. Two different requests therefore never share a partition, and the
 * same pairs in another order do. Lookup is a chained hash table over full
 * byte comparison, plus a doubly linked LRU list, most recently used first.
 * The table hashes with SipHash-2-4 (64-bit output, OpenSSL's EVP_MAC)
 * under a random 128-bit key per cache: ciphertexts come from files an
 * attacker may write, and an unkeyed hash (FNV-1a before) lets them pick
 * partition keys that share one bucket, turning every lookup into a walk of
 * the whole chain. The key is made once; each hash duplicates a keyed
 * template context, so hashing needs no lock.
 *
 * Entries. 'E': a 256-bit data key, its ciphertext, key version, created
 * time (CLOCK_MONOTONIC, ns, when the fetched key arrived), uses and bytes
 * counted so far (the fetching request is the first use). 'D': the
 * plaintext of one ciphertext. Key bytes live in sbx_secret_alloc memory;
 * entry_destroy() wipes them. A request is served by an entry only while
 * it is younger than max_age, and ('E') uses + 1 <= max_uses and bytes +
 * bytes <= max_bytes; otherwise the entry is dropped (expirations) and
 * the request fetches. A datakey request for more than max_bytes on its own
 * fetches a fresh key for itself and caches nothing (nor does any request
 * when max_uses is 1); an entry of that partition is left as it was.
 * Entries past max_age are also swept at most every second (or every
 * max_age, if shorter) during any call, so an unused key does not linger
 * long after expiry. Adding to a full cache first drops
 * entries past max_age (expirations), then the least recently used
 * (evictions).
 *
 * Single flight. A miss registers a flight for its partition, releases the
 * lock, fetches, then under the lock stores the result (never an error),
 * removes the flight and broadcasts `done`. A thread that misses while a
 * flight for its partition is registered waits on `done` and then repeats
 * the whole lookup: it finds the new entry (a hit), or, when the fetch
 * failed, registers a flight itself, so exactly one waiter refetches.
 * The fetcher returns the fetched key itself and stores a copy. clear()
 * bumps a generation number; a fetch begun before a clear is returned to
 * its caller but not stored.
 *
 * Counters: misses counts every fetch made (failed ones included); hits,
 * requests served from an entry (a waiter served by another thread's fetch
 * is a hit).
 */
#include "kms/cache.h"
#include "core/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATAKEY_BITS   256
#define DATAKEY_LEN    32
#define PLAINTEXT_MAX  64
#define SWEEP_EVERY_NS 1000000000u
#define KIND_ENC       'E'
#define KIND_DEC       'D'

typedef struct pkey {
    uint8_t *p; // malloc'ed; owned by the request, then by its entry
    size_t len;
    uint64_t hash;
} pkey;

typedef struct entry {
    struct entry *prev, *next; // LRU list
    struct entry *chain;       // hash bucket
    pkey key;
    uint8_t *secret; // secure memory: the data key (E) or the plaintext (D)
    size_t secret_len;
    char *ciphertext; // E: the wrapped data key
    unsigned key_version;
    uint64_t created_ns;
    uint64_t uses, bytes;
} entry;

typedef struct flight {
    struct flight *next;
    const pkey *key; // the fetcher's request key
    uint64_t generation;
} flight;

struct sbx_kms_cache {
    pthread_mutex_t lock;
    pthread_cond_t done; // a flight finished
    sbx_kms__cache_fetch fetch;
    void *fetch_ctx;
    sbx_kms_cache_limits limits;
    uint64_t max_age_ns;
    uint64_t next_sweep_ns;
    EVP_MAC_CTX *hasher; // SipHash-2-4 keyed with a random key: duplicated per hash
    uint64_t generation;
    entry **buckets;
    size_t nbuckets; // a power of two
    entry *head, *tail;
    flight *flights;
    sbx_kms_cache_stats stats;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- partition keys ---- */

static int
pair_cmp(const void *a, const void *b)
{
    const sbx_kms_pair *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r != 0 ? r : strcmp(x->value, y->value);
}

static uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *
put_str(uint8_t *p, const char *s)
{
    size_t len = strlen(s);
    p = put_u64(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* SipHash-2-4 of p under the cache's key (see the notes), as a little-endian 64-bit value. */
static int
hash_bytes(const EVP_MAC_CTX *hasher, const uint8_t *p, size_t len, uint64_t *out)
{
    uint8_t md[8];
    size_t md_len = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(hasher);
    int ok = ctx != NULL && EVP_MAC_update(ctx, p, len) == 1 &&
             EVP_MAC_final(ctx, md, &md_len, sizeof md) == 1 && md_len == sizeof md;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return sbx__error_crypto("key cache: SipHash");
    *out = 0;
    for (int i = 7; i >= 0; i--)
        *out = *out << 8 | md[i];
    return 0;
}

/* A SipHash-2-4 context (64-bit output) keyed with key. NULL (error set) on failure. */
static EVP_MAC_CTX *
hasher_new(const uint8_t key[16])
{
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); // the context keeps its own reference
    if (ctx == NULL || EVP_MAC_init(ctx, key, 16, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        sbx__error_crypto("key cache: SipHash is not available");
        return NULL;
    }
    return ctx;
}

/* The partition key of a request (see the notes); ciphertext NULL for 'E'. */
static int
pkey_make(pkey *out, const EVP_MAC_CTX *hasher, uint8_t kind, const char *name,
          const char *ciphertext, const sbx_kms_pair *ctx, size_t n)
{
    size_t len = 1 + 8 + strlen(name) + 8;
    if (ciphertext != NULL)
        len += 8 + strlen(ciphertext);
    for (size_t i = 0; i < n; i++)
        len += 16 + strlen(ctx[i].key) + strlen(ctx[i].value);
    sbx_kms_pair *sorted = n > 0 ? malloc(n * sizeof *sorted) : NULL;
    uint8_t *p = malloc(len);
    if (p == NULL || (n > 0 && sorted == NULL)) {
        free(sorted);
        free(p);
        return sbx__error_nomem();
    }
    if (n > 0) {
        memcpy(sorted, ctx, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, pair_cmp);
    }
    out->p = p;
    *p++ = kind;
    p = put_str(p, name);
    if (ciphertext != NULL)
        p = put_str(p, ciphertext);
    p = put_u64(p, n);
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, sorted[i].key);
        p = put_str(p, sorted[i].value);
    }
    free(sorted);
    out->len = len;
    int err = hash_bytes(hasher, out->p, len, &out->hash);
    if (err < 0) {
        free(out->p);
        out->p = NULL;
    }
    return err;
}

static bool
pkey_equal(const pkey *a, const pkey *b)
{
    return a->hash == b->hash && a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static int
check_request(const char *name, const sbx_kms_pair *ctx, size_t n)
{
    assert(name != NULL && (ctx != NULL || n == 0));
    if (name == NULL || (ctx == NULL && n > 0))
        return sbx__error(SBX_EINVAL, "key cache: NULL key name or context");
    for (size_t i = 0; i < n; i++) {
        assert(ctx[i].key != NULL && ctx[i].value != NULL);
        if (ctx[i].key == NULL || ctx[i].value == NULL)
            return sbx__error(SBX_EINVAL, "key cache: context entry %zu has a NULL key or value",
                              i + 1);
    }
    return 0;
}

/* ---- entries, the table and the LRU list (lock held) ---- */

static void
entry_destroy(entry *e)
{
    if (e == NULL)
        return;
    sbx_secret_free(e->secret, e->secret_len);
    if (e->ciphertext != NULL) {
        sbx_wipe(e->ciphertext, strlen(e->ciphertext));
        free(e->ciphertext);
    }
    free(e->key.p);
    SBX_WIPE_CTX(e);
    free(e);
}

/* A new entry holding a copy of secret (and of ciphertext); its key is set by land(). */
static entry *
entry_new(const uint8_t *secret, size_t secret_len, const char *ciphertext)
{
    entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->secret = sbx_secret_alloc(secret_len);
    e->ciphertext = ciphertext != NULL ? strdup(ciphertext) : NULL;
    if (e->secret == NULL || (ciphertext != NULL && e->ciphertext == NULL)) {
        entry_destroy(e);
        return NULL;
    }
    memcpy(e->secret, secret, secret_len);
    e->secret_len = secret_len;
    return e;
}

static entry **
bucket(sbx_kms_cache *c, uint64_t hash)
{
    return &c->buckets[hash & (c->nbuckets - 1)];
}

static entry *
find(sbx_kms_cache *c, const pkey *key)
{
    for (entry *e = *bucket(c, key->hash); e != NULL; e = e->chain) {
        if (pkey_equal(&e->key, key))
            return e;
    }
    return NULL;
}

static void
lru_unlink(sbx_kms_cache *c, entry *e)
{
    *(e->prev != NULL ? &e->prev->next : &c->head) = e->next;
    *(e->next != NULL ? &e->next->prev : &c->tail) = e->prev;
    e->prev = e->next = NULL;
}

static void
lru_push_front(sbx_kms_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    *(c->head != NULL ? &c->head->prev : &c->tail) = e;
    c->head = e;
}

static void
drop(sbx_kms_cache *c, entry *e)
{
    entry **pp = bucket(c, e->key.hash);
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    c->stats.entries--;
    entry_destroy(e);
}

static bool
too_old(const sbx_kms_cache *c, const entry *e, uint64_t now)
{
    return now - e->created_ns >= c->max_age_ns;
}

static void
drop_old(sbx_kms_cache *c, uint64_t now)
{
    entry *next;
    for (entry *e = c->head; e != NULL; e = next) {
        next = e->next;
        if (too_old(c, e, now)) {
            drop(c, e);
            c->stats.expirations++;
        }
    }
}

/* Sweep entries past max_age now and then, so unused keys do not linger. */
static void
maybe_sweep(sbx_kms_cache *c, uint64_t now)
{
    if (now < c->next_sweep_ns)
        return;
    drop_old(c, now);
    uint64_t every = c->max_age_ns < SWEEP_EVERY_NS ? c->max_age_ns : SWEEP_EVERY_NS;
    c->next_sweep_ns = now + every;
}

/* Double the table when it is fuller than one entry per bucket (best effort). */
static void
maybe_grow(sbx_kms_cache *c)
{
    if (c->stats.entries < c->nbuckets || c->nbuckets > SIZE_MAX / 2 / sizeof(entry *))
        return;
    size_t nb = c->nbuckets * 2;
    entry **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; // longer chains, still correct
    for (entry *e = c->head; e != NULL; e = e->next) {
        entry **slot = &b[e->key.hash & (nb - 1)];
        e->chain = *slot;
        *slot = e;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

static void
insert(sbx_kms_cache *c, entry *e, uint64_t now)
{
    entry *old = find(c, &e->key);
    if (old != NULL)
        drop(c, old);
    if (c->stats.entries >= c->limits.max_entries)
        drop_old(c, now);
    while (c->stats.entries >= c->limits.max_entries && c->tail != NULL) {
        drop(c, c->tail);
        c->stats.evictions++;
    }
    entry **slot = bucket(c, e->key.hash);
    e->chain = *slot;
    *slot = e;
    lru_push_front(c, e);
    c->stats.entries++;
    maybe_grow(c);
}

/* ---- single flight (lock held) ---- */

static bool
in_flight(const sbx_kms_cache *c, const pkey *key)
{
    for (const flight *f = c->flights; f != NULL; f = f->next) {
        if (pkey_equal(f->key, key))
            return true;
    }
    return false;
}

/* The entry that can serve this request, after dropping a stale one. */
static entry *
lookup(sbx_kms_cache *c, const pkey *key, bool enc, uint64_t bytes)
{
    uint64_t now = now_ns();
    maybe_sweep(c, now);
    entry *e = find(c, key);
    if (e == NULL)
        return NULL;
    if (too_old(c, e, now) ||
        (enc && (e->uses >= c->limits.max_uses || bytes > c->limits.max_bytes - e->bytes))) {
        drop(c, e);
        c->stats.expirations++;
        return NULL;
    }
    return e;
}

/*
 * The entry for this request, waiting for another thread's fetch of the
 * same partition first; or NULL when the caller must fetch, with f
 * registered as the partition's flight (end it with land()).
 */
static entry *
lookup_or_claim(sbx_kms_cache *c, const pkey *key, bool enc, uint64_t bytes, flight *f)
{
    for (;;) {
        entry *e = lookup(c, key, enc, bytes);
        if (e != NULL) {
            lru_unlink(c, e);
            lru_push_front(c, e);
            return e;
        }
        if (!in_flight(c, key))
            break;
        pthread_cond_wait(&c->done, &c->lock);
    }
    f->key = key;
    f->generation = c->generation;
    f->next = c->flights;
    c->flights = f;
    c->stats.misses++;
    return NULL;
}

/*
 * End flight f, storing e (may be NULL: the fetch failed) under key (whose
 * bytes it takes: waiters compare them until now), and wake the waiters.
 */
static void
land(sbx_kms_cache *c, flight *f, entry *e, pkey *key)
{
    flight **pp = &c->flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    if (e != NULL && f->generation == c->generation) {
        e->key = *key;
        key->p = NULL;
        e->created_ns = now_ns(); // age counts from arrival, as in the AWS SDK
        insert(c, e, e->created_ns);
    } else {
        entry_destroy(e);
    }
    pthread_cond_broadcast(&c->done);
}

/* ---- the cache ---- */

static int
client_datakey(void *client, const char *name, const sbx_kms_pair *ctx, size_t n, unsigned bits,
               bool wrapped_only, sbx_kms_datakey *out)
{
    return sbx_kms_datakey_new(client, name, ctx, n, bits, wrapped_only, out);
}

static int
client_decrypt(void *client, const char *name, const char *ciphertext, const sbx_kms_pair *ctx,
               size_t n, sbx_buf *out, unsigned *key_version)
{
    return sbx_kms_decrypt(client, name, ciphertext, ctx, n, out, key_version);
}

static int
set_limits(sbx_kms_cache *c, const sbx_kms_cache_limits *limits)
{
    const sbx_kms_cache_limits def = SBX_KMS_CACHE_LIMITS_INIT;
    if (limits == NULL)
        limits = &def;
    if (limits->version != SBX_KMS_CACHE_LIMITS_VERSION)
        return sbx__error(SBX_EINVAL,
                          "key cache: limits version %u, expected %u (use "
                          "SBX_KMS_CACHE_LIMITS_INIT)",
                          limits->version, SBX_KMS_CACHE_LIMITS_VERSION);
    c->limits = *limits;
    c->limits.max_age_ms = limits->max_age_ms ? limits->max_age_ms : def.max_age_ms;
    c->limits.max_uses = limits->max_uses ? limits->max_uses : def.max_uses;
    c->limits.max_bytes = limits->max_bytes ? limits->max_bytes : def.max_bytes;
    c->limits.max_entries = limits->max_entries ? limits->max_entries : def.max_entries;
    uint64_t ms = c->limits.max_age_ms;
    c->max_age_ns = ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
    return 0;
}

/* see src/kms/cache.h */
int
sbx_kms__cache_new_with(sbx_kms_cache **out, const sbx_kms__cache_fetch *fetch, void *fetch_ctx,
                        const sbx_kms_cache_limits *limits)
{
    assert(out != NULL && fetch != NULL && fetch->datakey != NULL && fetch->decrypt != NULL);
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "key cache: NULL out");
    *out = NULL;
    if (fetch == NULL || fetch->datakey == NULL || fetch->decrypt == NULL)
        return sbx__error(SBX_EINVAL, "key cache: no fetch functions");
    sbx_kms_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sbx__error_nomem();
    int err = set_limits(c, limits);
    if (err < 0) {
        free(c);
        return err;
    }
    c->nbuckets = 16;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return sbx__error_nomem();
    }
    uint8_t key[16];
    if ((err = sbx_random_bytes(key, sizeof key)) < 0 || (c->hasher = hasher_new(key)) == NULL) {
        err = err < 0 ? err : sbx_error_last()->code;
        SBX_WIPE_BUF(key);
        free(c->buckets);
        free(c);
        return err;
    }
    SBX_WIPE_BUF(key);
    c->fetch = *fetch;
    c->fetch_ctx = fetch_ctx;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->done, NULL);
    *out = c;
    return 0;
}

/* see strongbox/kms.h */
int
sbx_kms_cache_new(sbx_kms_cache **out, sbx_kms_client *client, const sbx_kms_cache_limits *limits)
{
    static const sbx_kms__cache_fetch real = {client_datakey, client_decrypt};
    assert(client != NULL);
    if (client == NULL) {
        if (out != NULL)
            *out = NULL;
        return sbx__error(SBX_EINVAL, "key cache: NULL client");
    }
    return sbx_kms__cache_new_with(out, &real, client, limits);
}

static void
drop_all(sbx_kms_cache *c)
{
    while (c->head != NULL)
        drop(c, c->head);
}

/* see strongbox/kms.h */
void
sbx_kms_cache_free(sbx_kms_cache *cache)
{
    if (cache == NULL)
        return;
    assert(cache->flights == NULL);
    drop_all(cache);
    pthread_cond_destroy(&cache->done);
    pthread_mutex_destroy(&cache->lock);
    free(cache->buckets);
    EVP_MAC_CTX_free(cache->hasher);
    free(cache);
}

/* see kms/cache.h */
int
sbx_kms__cache_set_hash_key(sbx_kms_cache *cache, const uint8_t key[16])
{
    EVP_MAC_CTX *h = hasher_new(key);
    if (h == NULL)
        return sbx_error_last()->code;
    EVP_MAC_CTX_free(cache->hasher);
    cache->hasher = h;
    return 0;
}

/* see kms/cache.h */
int
sbx_kms__cache_hash(const sbx_kms_cache *cache, const uint8_t *p, size_t len, uint64_t *out)
{
    return hash_bytes(cache->hasher, p, len, out);
}

/* A copy of entry e's data key for the caller (lock held). */
static int
copy_datakey(const entry *e, sbx_kms_datakey *out)
{
    out->plaintext = sbx_secret_alloc(e->secret_len);
    out->ciphertext = strdup(e->ciphertext);
    if (out->plaintext == NULL || out->ciphertext == NULL) {
        sbx_secret_free(out->plaintext, e->secret_len);
        free(out->ciphertext);
        memset(out, 0, sizeof *out);
        return sbx__error_nomem();
    }
    memcpy(out->plaintext, e->secret, e->secret_len);
    out->plaintext_len = e->secret_len;
    out->key_version = e->key_version;
    return 0;
}

static int
fetch_datakey(sbx_kms_cache *c, const char *name, const sbx_kms_pair *ctx, size_t n,
              sbx_kms_datakey *out)
{
    int err = c->fetch.datakey(c->fetch_ctx, name, ctx, n, DATAKEY_BITS, false, out);
    if (err == 0 &&
        (out->plaintext == NULL || out->plaintext_len != DATAKEY_LEN || out->ciphertext == NULL)) {
        sbx_kms_datakey_dispose(out);
        err = sbx__error(SBX_EFORMAT, "key server answered a malformed data key for key %s", name);
    }
    return err;
}

/* A request larger than max_bytes (or max_uses 1): a key of its own, used once, never cached. */
static int
datakey_uncached(sbx_kms_cache *c, const char *name, const sbx_kms_pair *ctx, size_t n,
                 sbx_kms_datakey *out)
{
    pthread_mutex_lock(&c->lock);
    c->stats.misses++;
    pthread_mutex_unlock(&c->lock);
    return fetch_datakey(c, name, ctx, n, out);
}

/* see strongbox/kms.h */
int
sbx_kms_cache_datakey(sbx_kms_cache *cache, const char *name, const sbx_kms_pair *ctx, size_t n,
                      uint64_t bytes, sbx_kms_datakey *out)
{
    assert(cache != NULL && out != NULL);
    if (cache == NULL || out == NULL)
        return sbx__error(SBX_EINVAL, "key cache: NULL cache or out");
    memset(out, 0, sizeof *out);
    int err = check_request(name, ctx, n);
    if (err < 0)
        return err;
    if (bytes > cache->limits.max_bytes || cache->limits.max_uses == 1)
        return datakey_uncached(cache, name, ctx, n, out);
    pkey key;
    if ((err = pkey_make(&key, cache->hasher, KIND_ENC, name, NULL, ctx, n)) < 0)
        return err;

    flight f;
    pthread_mutex_lock(&cache->lock);
    entry *e = lookup_or_claim(cache, &key, true, bytes, &f);
    if (e != NULL) {
        if ((err = copy_datakey(e, out)) == 0) {
            e->uses++;
            e->bytes += bytes;
            cache->stats.hits++;
        }
        pthread_mutex_unlock(&cache->lock);
        free(key.p);
        return err;
    }
    pthread_mutex_unlock(&cache->lock);

    err = fetch_datakey(cache, name, ctx, n, out);
    entry *fresh = NULL;
    if (err == 0) {
        fresh = entry_new(out->plaintext, out->plaintext_len, out->ciphertext);
        if (fresh != NULL) { // else not cached: the caller still has its key
            fresh->key_version = out->key_version;
            fresh->uses = 1;
            fresh->bytes = bytes;
        }
    }
    pthread_mutex_lock(&cache->lock);
    land(cache, &f, fresh, &key);
    pthread_mutex_unlock(&cache->lock);
    free(key.p);
    return err;
}

static int
fetch_plaintext(sbx_kms_cache *c, const char *name, const char *ciphertext, const sbx_kms_pair *ctx,
                size_t n, uint8_t out[64], size_t *out_len)
{
    sbx_buf pt = SBX_BUF_INIT;
    unsigned version = 0;
    int err = c->fetch.decrypt(c->fetch_ctx, name, ciphertext, ctx, n, &pt, &version);
    if (err == 0 && pt.len > PLAINTEXT_MAX)
        err = sbx__error(SBX_ETOOBIG, "key %s: the decrypted data key is %zu bytes, more than %d",
                         name, pt.len, PLAINTEXT_MAX);
    if (err == 0 && pt.len > 0) {
        memcpy(out, pt.ptr, pt.len);
        *out_len = pt.len;
    }
    sbx_buf_dispose(&pt);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_cache_decrypt(sbx_kms_cache *cache, const char *name, const char *ciphertext,
                      const sbx_kms_pair *ctx, size_t n, uint8_t out[64], size_t *out_len)
{
    assert(cache != NULL && ciphertext != NULL && out != NULL && out_len != NULL);
    if (cache == NULL || ciphertext == NULL || out == NULL || out_len == NULL)
        return sbx__error(SBX_EINVAL, "key cache: NULL cache, ciphertext or out");
    *out_len = 0;
    int err = check_request(name, ctx, n);
    pkey key;
    if (err < 0 || (err = pkey_make(&key, cache->hasher, KIND_DEC, name, ciphertext, ctx, n)) < 0)
        return err;

    flight f;
    pthread_mutex_lock(&cache->lock);
    entry *e = lookup_or_claim(cache, &key, false, 0, &f);
    if (e != NULL) {
        memcpy(out, e->secret, e->secret_len);
        *out_len = e->secret_len;
        cache->stats.hits++;
        pthread_mutex_unlock(&cache->lock);
        free(key.p);
        return 0;
    }
    pthread_mutex_unlock(&cache->lock);

    err = fetch_plaintext(cache, name, ciphertext, ctx, n, out, out_len);
    entry *fresh = NULL;
    if (err == 0 && *out_len > 0)
        fresh = entry_new(out, *out_len, NULL);
    pthread_mutex_lock(&cache->lock);
    land(cache, &f, fresh, &key);
    pthread_mutex_unlock(&cache->lock);
    free(key.p);
    return err;
}

/* see strongbox/kms.h */
void
sbx_kms_cache_get_stats(sbx_kms_cache *cache, sbx_kms_cache_stats *out)
{
    assert(cache != NULL && out != NULL);
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (cache == NULL)
        return;
    pthread_mutex_lock(&cache->lock);
    maybe_sweep(cache, now_ns());
    *out = cache->stats;
    pthread_mutex_unlock(&cache->lock);
}

/* see strongbox/kms.h */
void
sbx_kms_cache_clear(sbx_kms_cache *cache)
{
    assert(cache != NULL);
    if (cache == NULL)
        return;
    pthread_mutex_lock(&cache->lock);
    drop_all(cache);
    cache->generation++;
    pthread_mutex_unlock(&cache->lock);
}
