/*
 * server/tls.c - TLS context, self-signed certificate and shared session
 * ticket keys of the key server (see tls.h).
 *
 * Implementation notes:
 *  - Ticket keys live in one sbx_secret_alloc array guarded by a rwlock; the
 *    ticket callback copies the one it needs to the stack under the read lock
 *    and wipes the copy before returning.
 *  - The ticket callback uses the OpenSSL 3 API
 *    (SSL_CTX_set_tlsext_ticket_key_evp_cb): AES-256-CBC + HMAC-SHA256, the
 *    format OpenSSL's own ticket code uses.
 *  - Reload: a new SSL_CTX is built aside and swapped in under ctx_lock;
 *    SSL_new takes a reference, so open connections keep the old context
 *    until they close. Every context points at the same kms_tls (ex_data),
 *    so the ticket keys stay shared.
 */
#include "tls.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICKET_KEYS_MAX 8
#define TICKET_REC      88 /* created(8) || name(16) || aes(32) || hmac(32) */
#define TICKET_NS       "tls"
#define TICKET_KEY      "ticket-keys"
#define TICKET_PURPOSE  "tls-ticket-keys"

typedef struct {
    int64_t created;
    uint8_t name[16];
    uint8_t aes[32];
    uint8_t hmac[32];
} ticket_key;

struct kms_tls {
    SSL_CTX *ctx; /* the context of new connections, swapped by kms_tls_reload */
    pthread_mutex_t ctx_lock;
    pthread_rwlock_t lock;
    ticket_key *keys; /* sbx_secret_alloc(TICKET_KEYS_MAX), newest first */
    size_t nkeys;
};

static int tls_ex_index = -1;
static pthread_once_t tls_ex_once = PTHREAD_ONCE_INIT;

static void
make_ex_index(void)
{
    tls_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- certificate ---- */

static int
add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int
set_serial(X509 *x)
{
    uint8_t raw[16];
    if (sbx_random_bytes(raw, sizeof raw) < 0)
        return -1;
    raw[0] &= 0x7f; // positive
    raw[0] |= 0x40; // and 16 bytes long
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *pk)
{
    X509 *x = X509_new();
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    if (x == NULL || !X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, NULL) == NULL || !X509_set_pubkey(x, pk) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Strongbox KMS",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) ||
        add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") < 0 ||
        add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") < 0 || !X509_sign(x, pk, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int
fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return sbx_error_set_nomem();
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

/* Writes a PEM file through write_fn to path + ".tmp" (mode, exclusive), syncs, renames. */
static int
write_pem(const char *path, mode_t mode, int (*write_fn)(FILE *f, void *obj), void *obj)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return sbx_error_set(SBX_EINVAL, "path too long: %s", path);
    (void)unlink(tmp); // a leftover of an interrupted start
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot create %s", tmp);
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return sbx_error_set_sys(SBX_EIO, "cannot write %s", tmp);
    }
    int ok = write_fn(f, obj) && fflush(f) == 0 && fsync(fd) == 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        ERR_clear_error();
        return sbx_error_set_sys(SBX_EIO, "cannot write %s", path);
    }
    return fsync_dir_of(path);
}

static int
write_key(FILE *f, void *pk)
{
    return PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
}

static int
write_cert(FILE *f, void *x)
{
    return PEM_write_X509(f, x);
}

/* see tls.h */
int
kms_tls_generate_cert(const char *cert_path, const char *key_path)
{
    int err;
    X509 *x = NULL;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    if (pk == NULL || (x = make_cert(pk)) == NULL) {
        err = sbx_error_set_crypto("generating the TLS certificate");
        goto out;
    }
    if ((err = write_pem(key_path, 0600, write_key, pk)) < 0)
        goto out;
    err = write_pem(cert_path, 0644, write_cert, x);
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return err;
}

/* see tls.h */
int
kms_tls_fingerprint(char out[KMS_TLS_FINGERPRINT_LEN], const char *cert_path)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    FILE *f = fopen(cert_path, "re");
    if (f == NULL)
        return sbx_error_set_sys(SBX_EIO, "cannot open TLS certificate %s", cert_path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL || !X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
        X509_free(x);
        ERR_clear_error();
        return sbx_error_set(SBX_EFORMAT, "%s is not a PEM certificate", cert_path);
    }
    X509_free(x);
    for (unsigned i = 0; i < n; i++) {
        out[3 * i] = hex[md[i] >> 4];
        out[3 * i + 1] = hex[md[i] & 15];
        out[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    return 0;
}

/* ---- session tickets ---- */

static int
ticket_key_copy(kms_tls *t, const uint8_t *name, ticket_key *k, bool *current)
{
    int rc = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nkeys; i++) {
        if (name == NULL || CRYPTO_memcmp(t->keys[i].name, name, 16) == 0) {
            *k = t->keys[i];
            *current = i == 0;
            rc = 1;
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static int
ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
          EVP_MAC_CTX *hctx, int enc)
{
    kms_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tls_ex_index);
    ticket_key k;
    bool current = false;
    int rc;
    if (t == NULL || !ticket_key_copy(t, enc ? NULL : key_name, &k, &current))
        return enc ? -1 : 0; // no key: no ticket / unknown ticket (full handshake)
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof k.hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (enc) {
        memcpy(key_name, k.name, 16);
        rc = RAND_bytes(iv, 16) == 1 &&
                     EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
                     EVP_MAC_CTX_set_params(hctx, params) == 1
                 ? 1
                 : -1;
    } else {
        rc = EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
                     EVP_MAC_CTX_set_params(hctx, params) == 1
                 ? (current ? 1 : 2) // 2: valid, but issue a ticket under the current key
                 : -1;
    }
    OPENSSL_cleanse(&k, sizeof k);
    return rc;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Parses an opened set into keys (at most TICKET_KEYS_MAX, newest first). */
static int
tickets_parse(ticket_key *keys, size_t *n, const uint8_t *in, size_t len)
{
    *n = 0;
    if (len % TICKET_REC != 0 || len / TICKET_REC > TICKET_KEYS_MAX)
        return sbx_error_set(SBX_EFORMAT, "stored TLS ticket keys are malformed");
    for (size_t i = 0; i < len / TICKET_REC; i++) {
        const uint8_t *p = in + i * TICKET_REC;
        keys[i].created = (int64_t)get_be64(p);
        memcpy(keys[i].name, p + 8, 16);
        memcpy(keys[i].aes, p + 24, 32);
        memcpy(keys[i].hmac, p + 56, 32);
    }
    *n = len / TICKET_REC;
    return 0;
}

static void
tickets_serialize(uint8_t *out, const ticket_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = out + i * TICKET_REC;
        put_be64(p, (uint64_t)keys[i].created);
        memcpy(p + 8, keys[i].name, 16);
        memcpy(p + 24, keys[i].aes, 32);
        memcpy(p + 56, keys[i].hmac, 32);
    }
}

/* Drops expired keys and adds a new one when the newest is due. @return true if changed. */
static bool
tickets_rotate(ticket_key *keys, size_t *n, int64_t now, int *err)
{
    size_t kept = 0;
    *err = 0;
    for (size_t i = 0; i < *n; i++) {
        if (now - keys[i].created < KMS_TLS_TICKET_ROTATE + KMS_TLS_TICKET_KEEP)
            keys[kept++] = keys[i];
    }
    bool changed = kept != *n;
    *n = kept;
    if (*n > 0 && now - keys[0].created < KMS_TLS_TICKET_ROTATE)
        return changed;
    if (*n == TICKET_KEYS_MAX)
        (*n)--;
    memmove(keys + 1, keys, *n * sizeof *keys);
    keys[0].created = now;
    if (sbx_random_bytes(keys[0].name, 16) < 0 || sbx_random_bytes(keys[0].aes, 32) < 0 ||
        sbx_random_bytes(keys[0].hmac, 32) < 0)
        *err = SBX_ECRYPTO;
    (*n)++;
    return true;
}

/* Reads the stored set into keys; *rev = 0 when there is none. */
static int
tickets_load(kms_keystore *ks, kms_store *st, ticket_key *keys, size_t *n, int64_t *rev)
{
    uint8_t *sealed = NULL, *plain = NULL;
    size_t len = 0, plain_len = 0;
    *n = 0;
    *rev = 0;
    int err = kms_store_get(st, TICKET_NS, TICKET_KEY, &sealed, &len, rev);
    if (err == SBX_ENOTFOUND) {
        *rev = 0;
        return 0;
    }
    if (err < 0)
        return err;
    err = kms_keystore_open(ks, TICKET_PURPOSE, sealed, len, &plain, &plain_len);
    free(sealed);
    if (err < 0)
        return err;
    err = tickets_parse(keys, n, plain, plain_len);
    sbx_secret_free(plain, plain_len);
    return err;
}

static int
tickets_store(kms_keystore *ks, kms_store *st, const ticket_key *keys, size_t n, int64_t rev)
{
    uint8_t plain[TICKET_KEYS_MAX * TICKET_REC];
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    tickets_serialize(plain, keys, n);
    int err = kms_keystore_seal(ks, TICKET_PURPOSE, plain, n * TICKET_REC, &sealed, &sealed_len);
    OPENSSL_cleanse(plain, sizeof plain);
    if (err < 0)
        return err;
    err = kms_store_put(st, TICKET_NS, TICKET_KEY, sealed, sealed_len,
                        rev == 0 ? KMS_REV_ABSENT : rev, NULL);
    free(sealed);
    return err;
}

static void
tickets_install(kms_tls *t, const ticket_key *keys, size_t n)
{
    pthread_rwlock_wrlock(&t->lock);
    memcpy(t->keys, keys, n * sizeof *keys);
    if (n < t->nkeys)
        OPENSSL_cleanse(t->keys + n, (t->nkeys - n) * sizeof *keys);
    t->nkeys = n;
    pthread_rwlock_unlock(&t->lock);
}

/* see tls.h */
int
kms_tls_tickets_refresh(kms_tls *t, kms_keystore *ks, kms_store *st, int64_t now)
{
    size_t size = TICKET_KEYS_MAX * sizeof(ticket_key), n = 0;
    ticket_key *keys = sbx_secret_alloc(size);
    int err = keys == NULL ? sbx_error_set_nomem() : SBX_ECONFLICT;
    for (int attempt = 0; attempt < 5 && err == SBX_ECONFLICT; attempt++) {
        int64_t rev = 0;
        int rerr = 0;
        if ((err = tickets_load(ks, st, keys, &n, &rev)) < 0)
            break;
        if (tickets_rotate(keys, &n, now, &rerr)) {
            err = rerr < 0 ? sbx_error_set(rerr, "cannot make a TLS ticket key")
                           : tickets_store(ks, st, keys, n, rev);
        }
    }
    if (err == SBX_ECONFLICT)
        sbx_error_set(err, "TLS ticket keys keep changing in storage; retrying later");
    if (err == 0)
        tickets_install(t, keys, n);
    sbx_secret_free(keys, size);
    return err;
}

/* ---- context ---- */

static int
ctx_error(const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return sbx_error_set(SBX_EFORMAT, "%s %s: %s", what, path ? path : "", buf[0] ? buf : "failed");
}

static int
ctx_configure(SSL_CTX *ctx)
{
    static const char ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    static const char suites13[] =
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
    static const unsigned char sid_ctx[] = "sbx-kms";
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, ciphers12) || !SSL_CTX_set_ciphersuites(ctx, suites13) ||
        !SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") ||
        !SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1))
        return ctx_error("cannot configure TLS", NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    // Tickets only (stateless, shared between nodes); no per-process session cache.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, KMS_TLS_TICKET_ROTATE);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    return 0;
}

static int
ctx_load(SSL_CTX *ctx, const kms_tls_options *opt)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, opt->cert_file) != 1)
        return ctx_error("cannot load the TLS certificate", opt->cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, opt->key_file, SSL_FILETYPE_PEM) != 1)
        return ctx_error("cannot load the TLS private key", opt->key_file);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ctx_error("the TLS private key does not match the certificate", opt->key_file);
    if (opt->client_ca == NULL)
        return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->client_ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, opt->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return ctx_error("cannot load the client CA file (PEM certificates)", opt->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify_depth(ctx, 5);
    return 0;
}

/* A configured context with opt's certificate, key and client CA, tied to t (ticket keys). */
static int
ctx_new(SSL_CTX **out, kms_tls *t, const kms_tls_options *opt)
{
    int err;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || tls_ex_index < 0 || !SSL_CTX_set_ex_data(ctx, tls_ex_index, t))
        err = ctx_error("cannot create a TLS context", "");
    else if ((err = ctx_configure(ctx)) == 0 && (err = ctx_load(ctx, opt)) == 0) {
        *out = ctx;
        return 0;
    }
    SSL_CTX_free(ctx);
    return err;
}

/* see tls.h */
int
kms_tls_new(kms_tls **out, const kms_tls_options *opt)
{
    int err;
    *out = NULL;
    pthread_once(&tls_ex_once, make_ex_index);
    kms_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return sbx_error_set_nomem();
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->ctx_lock, NULL);
    t->keys = sbx_secret_alloc(TICKET_KEYS_MAX * sizeof(ticket_key));
    if (t->keys == NULL) {
        err = sbx_error_set_nomem();
        goto fail;
    }
    if ((err = ctx_new(&t->ctx, t, opt)) < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    kms_tls_free(t);
    return err;
}

/* see tls.h */
int
kms_tls_reload(kms_tls *t, const kms_tls_options *opt)
{
    SSL_CTX *ctx = NULL, *old;
    int err = ctx_new(&ctx, t, opt);
    if (err < 0)
        return err;
    pthread_mutex_lock(&t->ctx_lock);
    old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->ctx_lock);
    SSL_CTX_free(old); // the connections made with it hold their own reference
    return 0;
}

/* see tls.h */
void
kms_tls_free(kms_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    sbx_secret_free(t->keys, TICKET_KEYS_MAX * sizeof(ticket_key));
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->ctx_lock);
    free(t);
}

/* see tls.h */
SSL *
kms_tls_ssl_new(kms_tls *t)
{
    pthread_mutex_lock(&t->ctx_lock);
    SSL *ssl = SSL_new(t->ctx); // takes a reference to the context
    pthread_mutex_unlock(&t->ctx_lock);
    return ssl;
}

/* see tls.h */
bool
kms_tls_peer_cn(SSL *ssl, char out[KMS_TLS_CN_MAX + 1])
{
    out[0] = '\0';
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return false;
    X509_NAME *subject = X509_get_subject_name(peer);
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    X509_NAME_ENTRY *e = i >= 0 ? X509_NAME_get_entry(subject, i) : NULL;
    unsigned char *utf8 = NULL;
    int len = e ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e)) : -1;
    bool ok = len > 0 && len <= KMS_TLS_CN_MAX;
    for (int j = 0; ok && j < len; j++)
        ok = utf8[j] >= 0x20 && utf8[j] != 0x7f;
    if (ok) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
    return ok;
}
