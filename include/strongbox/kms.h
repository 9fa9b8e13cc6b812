/*
 * strongbox/kms.h - client of the Strongbox key server (`sbx kms serve`),
 * a local data-key cache, and envelope (KMS) recipients for age files.
 *
 * The server's API is documented in docs/kms.md; this client speaks it over
 * HTTPS with libcurl. A client is thread-safe: any number of threads may
 * call it at once (connections are reused per thread-free handle pool).
 *
 *     sbx_kms_client *c;
 *     sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
 *     const char *urls[] = {"https://kms1:8443", "https://kms2:8443"};
 *     o.urls = urls; o.url_count = 2;
 *     o.token = "sbxt_..."; o.cacert = "/etc/kms-ca.pem";
 *     if (sbx_kms_client_new(&c, &o) < 0) ...
 *     sbx_kms_datakey dk;
 *     if (sbx_kms_datakey_new(c, "billing", NULL, 0, 256, false, &dk) == 0) {
 *         ... use dk.plaintext, store dk.ciphertext ...
 *         sbx_kms_datakey_dispose(&dk);
 *     }
 *     sbx_kms_client_free(c);
 *
 * Errors map server answers to library codes: 400 SBX_EINVAL (a ciphertext
 * that does not authenticate: SBX_EAUTH), 401/403 SBX_EDENIED, 404
 * SBX_ENOTFOUND, 409 SBX_ECONFLICT, 413 SBX_ETOOBIG; no server reachable, a
 * timeout or 5xx after all retries and servers: SBX_EIO. The message names
 * the server and carries the server's own error text. Never a token, key or
 * plaintext. TLS failures (including a certificate that does not match
 * the pin) are SBX_EIO too, with OpenSSL's reason in the message.
 *
 * Text answers (metadata, JSON, ciphertexts) are appended to an sbx_buf
 * followed by a NUL that its len does not count, so buf.data is a C string.
 * Base URLs may carry a path prefix (a reverse proxy); trailing slashes are
 * dropped.
 *
 * Linking: this is libstrongbox-kms (`pkg-config --libs strongbox-kms`),
 * apart from the core libstrongbox so that programs that need no key server
 * link libcrypto alone. Loaded as a shared library it registers, into the
 * process's libstrongbox, the sbx-kms stanza type (strongbox/sys/age.h) and
 * the https:// record key source (strongbox/sys/records.h); a program that
 * links it statically calls sbx_kms_init() first.
 */
#ifndef STRONGBOX_KMS_H
#define STRONGBOX_KMS_H

#include "strongbox/common.h"
#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Register the key server's extensions with libstrongbox: the sbx-kms
 *        stanza type and the https:// record key source. Idempotent and
 *        thread-safe; done automatically when the shared library is loaded
 *        and by the envelope constructors below.
 */
SBX_EXTERN void sbx_kms_init(void);

/* ------------------------------------------------------------------ client */

typedef struct sbx_kms_client sbx_kms_client;

typedef struct sbx_kms_client_options {
    unsigned version;        /**< SBX_KMS_CLIENT_OPTIONS_VERSION */
    const char *const *urls; /**< base URLs "https://host:port", tried in order (failover) */
    size_t url_count;        /**< at least 1 */
    const char *token;       /**< bearer token "sbxt_...", or NULL (client certificate only) */
    /** PEM file of the CA (or self-signed certificate) to trust instead of the system store. */
    const char *cacert;
    /**
     * Pin the server certificate: the SHA-256 of the certificate's DER as
     * 64 hex digits, colons allowed, optional "sha256:" prefix, exactly as
     * `sbx kms serve` prints it ("AB:CD:..."). With a pin, the chain need
     * not verify (self-signed is fine) and the host name is not checked;
     * the leaf certificate must match the pin exactly.
     */
    const char *fingerprint;
    const char *client_cert;     /**< PEM client certificate for TLS client auth, or NULL */
    const char *client_key;      /**< its PEM private key, or NULL */
    unsigned timeout_ms;         /**< whole request, per attempt (default 10000) */
    unsigned connect_timeout_ms; /**< TCP + TLS handshake, per attempt (default 3000) */
    /**
     * Extra attempts for idempotent calls (reads, datakey, encrypt, decrypt,
     * rewrap) after a transport error or 502/503/504, with exponential
     * backoff and jitter; each attempt walks the URL list from the last
     * server that answered. Non-idempotent calls (create, rotate, delete,
     * token creation...) move to the next server only when the connection
     * could not be made (nothing was sent).
     */
    unsigned retries;    /**< default 2 */
    unsigned backoff_ms; /**< first delay, doubled each time (default 100) */
} sbx_kms_client_options;

#define SBX_KMS_CLIENT_OPTIONS_VERSION 1
#define SBX_KMS_CLIENT_OPTIONS_INIT                                                                \
    {                                                                                              \
        SBX_KMS_CLIENT_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, NULL, NULL, 10000, 3000, 2, 100 \
    }

/**
 * @brief A new client. Copies everything from opts (the token into secure
 *        memory). No connection is made until the first call.
 * @return 0, SBX_EINVAL (no URL, a URL that is not https://, bad
 *         fingerprint, client cert without key), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_client_new(sbx_kms_client **out,
                                  const sbx_kms_client_options *opts) SBX_WARN_UNUSED;

/**
 * @brief A client for one base URL with credentials and trust taken from
 *        the environment, as `sbx` and the SQLite extension do:
 *        SBX_KMS_TOKEN, or SBX_KMS_TOKEN_FILE (first line of the file);
 *        SBX_KMS_CACERT (CA file), SBX_KMS_FINGERPRINT (pin);
 *        SBX_KMS_CLIENT_CERT and SBX_KMS_CLIENT_KEY; SBX_KMS_FAILOVER, a
 *        comma-separated list of further base URLs tried after base_url.
 * @param base_url the server; NULL for the one the environment names:
 *        the scheme, host and port of overrides->urls[0] when overrides
 *        has urls, else of the first entry of SBX_KMS_URL (the list of
 *        servers that sbx_identity_kms_new_from_env() may send the token to).
 * @param overrides may be NULL; its non-NULL token/cacert/fingerprint/
 *        client_cert/client_key fields win over the environment (command
 *        line flags), its urls are ignored (but for base_url NULL), and its
 *        timeouts, retries and backoff are used (so start it from
 *        SBX_KMS_CLIENT_OPTIONS_INIT).
 * @return as sbx_kms_client_new(); SBX_EIO if SBX_KMS_TOKEN_FILE cannot be
 *         read; SBX_EINVAL when base_url is NULL and no server is named.
 */
SBX_EXTERN int sbx_kms_client_new_from_env(sbx_kms_client **out, const char *base_url,
                                           const sbx_kms_client_options *overrides) SBX_WARN_UNUSED;

/**
 * @brief The client's i-th base URL, as it is used ("https://host:port"
 *        and any path prefix), or NULL past the last. Borrowed: valid until
 *        the client is freed.
 */
SBX_EXTERN const char *sbx_kms_client_url(const sbx_kms_client *c, size_t i);

/** @brief Wipe (token) and free a client. NULL-safe. No call may be in flight. */
SBX_EXTERN void sbx_kms_client_free(sbx_kms_client *c);

/**
 * @brief Split a key URL "https://host:port/NAME" into its base URL
 *        ("https://host:port") and key name. The name must be a valid key
 *        name (docs/kms.md); no query or fragment.
 * @param base, name receive malloc'ed strings (free()).
 * @return 0, SBX_EINVAL (the message says what is wrong), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_parse_key_url(const char *url, char **base, char **name) SBX_WARN_UNUSED;

/** One encryption-context entry (docs/kms.md: bound as associated data). */
typedef struct sbx_kms_pair {
    const char *key;
    const char *value;
} sbx_kms_pair;

/**
 * @brief Any API request: for the operations without a typed wrapper
 *        (batch forms, tokens, policies, certificates, seed, metrics).
 * @param method "GET", "POST", "PUT" or "DELETE".
 * @param path starting with '/', e.g. "/v1/tokens".
 * @param json_body request body (sent as application/json), or NULL.
 * @param idempotent whether it may be retried (see options.retries).
 * @param status receives the HTTP status (may be NULL).
 * @param response receives the response body (may be NULL).
 * @return 0 for 2xx, otherwise the mapped error (the body is still stored).
 */
SBX_EXTERN int sbx_kms_request(sbx_kms_client *c, const char *method, const char *path,
                               const char *json_body, bool idempotent, long *status,
                               sbx_buf *response) SBX_WARN_UNUSED;

/** @brief GET /v1/health; 0 when the server answers "ok". json may be NULL. */
SBX_EXTERN int sbx_kms_health(sbx_kms_client *c, sbx_buf *json) SBX_WARN_UNUSED;

/* Key management: each answers the key metadata JSON in meta (may be NULL). */

/** @brief POST /v1/keys/{name}; auto_rotate_period 0 = off. SBX_ECONFLICT if it exists. */
SBX_EXTERN int sbx_kms_key_create(sbx_kms_client *c, const char *name, uint64_t auto_rotate_period,
                                  sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief GET /v1/keys/{name}. */
SBX_EXTERN int sbx_kms_key_read(sbx_kms_client *c, const char *name, sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief GET /v1/keys[?prefix=]; answers {"keys": [...]} in json. prefix may be NULL. */
SBX_EXTERN int sbx_kms_key_list(sbx_kms_client *c, const char *prefix,
                                sbx_buf *json) SBX_WARN_UNUSED;
/** @brief POST /v1/keys/{name}/rotate (not retried). */
SBX_EXTERN int sbx_kms_key_rotate(sbx_kms_client *c, const char *name,
                                  sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief POST /v1/keys/{name}/config; a negative value leaves that setting unchanged. */
SBX_EXTERN int sbx_kms_key_config(sbx_kms_client *c, const char *name,
                                  int64_t min_decryption_version, int64_t auto_rotate_period,
                                  sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief DELETE /v1/keys/{name}[?delay=]; delay < 0 = the server default. */
SBX_EXTERN int sbx_kms_key_delete(sbx_kms_client *c, const char *name, int64_t delay,
                                  sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief POST /v1/keys/{name}/restore. */
SBX_EXTERN int sbx_kms_key_restore(sbx_kms_client *c, const char *name,
                                   sbx_buf *meta) SBX_WARN_UNUSED;
/** @brief POST /v1/keys/{name}/versions/{v}/destroy (crypto-shredding). */
SBX_EXTERN int sbx_kms_key_destroy_version(sbx_kms_client *c, const char *name, unsigned version,
                                           sbx_buf *meta) SBX_WARN_UNUSED;

/* Data plane. ctx may be NULL when n is 0. */

/** A data key from the server. SECRET: plaintext is in secure memory. */
typedef struct sbx_kms_datakey {
    uint8_t *plaintext; /**< bits/8 bytes (secure memory), NULL when wrapped_only */
    size_t plaintext_len;
    char *ciphertext; /**< "sbx:v<N>:<base64>", NUL-terminated, malloc'ed */
    unsigned key_version;
} sbx_kms_datakey;

/**
 * @brief POST /v1/keys/{name}/datakey.
 * @param bits 128, 256 or 512 (0 = 256).
 * @param wrapped_only ask only for the wrapped key (op datakey-wrapped).
 */
SBX_EXTERN int sbx_kms_datakey_new(sbx_kms_client *c, const char *name, const sbx_kms_pair *ctx,
                                   size_t n, unsigned bits, bool wrapped_only,
                                   sbx_kms_datakey *out) SBX_WARN_UNUSED;

/** @brief Wipe and free a data key's fields (the struct itself is the caller's). NULL-safe. */
SBX_EXTERN void sbx_kms_datakey_dispose(sbx_kms_datakey *dk);

/** @brief POST .../encrypt: ciphertext (text, NUL-terminated) appended to out. */
SBX_EXTERN int sbx_kms_encrypt(sbx_kms_client *c, const char *name, const void *plaintext,
                               size_t len, const sbx_kms_pair *ctx, size_t n, sbx_buf *out,
                               unsigned *key_version) SBX_WARN_UNUSED;

/** @brief POST .../decrypt: plaintext appended to out (SECRET: sbx_buf_dispose() wipes). */
SBX_EXTERN int sbx_kms_decrypt(sbx_kms_client *c, const char *name, const char *ciphertext,
                               const sbx_kms_pair *ctx, size_t n, sbx_buf *out,
                               unsigned *key_version) SBX_WARN_UNUSED;

/** @brief POST .../rewrap: the ciphertext under the latest version appended to out. */
SBX_EXTERN int sbx_kms_rewrap(sbx_kms_client *c, const char *name, const char *ciphertext,
                              const sbx_kms_pair *ctx, size_t n, sbx_buf *out,
                              unsigned *key_version) SBX_WARN_UNUSED;

/* ------------------------------------------------------------------ reading answers */

/**
 * A parsed JSON document, typically an answer of sbx_kms_request(), for
 * programs that link no JSON library of their own (the `sbx kms` commands
 * print their tables with it). Values are addressed by JSON Pointer
 * (RFC 6901): "" is the whole document, "/keys/0" the first element of the
 * member "keys", "/a~1b" the member "a/b", "/m~0n" the member "m~n".
 *
 *     sbx_kms_json *j;
 *     if (sbx_kms_json_parse(&j, answer.ptr, answer.len) == 0) {
 *         for (size_t i = 0; i < sbx_kms_json_count(j, "/keys"); i++) ...
 *         sbx_kms_json_free(j);
 *     }
 */
typedef struct sbx_kms_json sbx_kms_json;

/**
 * @brief Parse a JSON object or array (UTF-8; duplicate member names are
 *        refused, as the server refuses them).
 * @param text need not be NUL-terminated; len bytes are read.
 * @return 0, SBX_EFORMAT (not JSON: the message gives the line, column and
 *         reason), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_json_parse(sbx_kms_json **out, const void *text, size_t len) SBX_WARN_UNUSED;

/**
 * @brief Append the value at pointer to out as text: a string's own
 *        characters (unquoted), a number, true, false or null as JSON writes
 *        them, an array or object as compact JSON. out stays NUL-terminated
 *        (the NUL not counted in len).
 * @return 0, SBX_ENOTFOUND (no value there, or a malformed pointer), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_json_text(const sbx_kms_json *j, const char *pointer,
                                 sbx_buf *out) SBX_WARN_UNUSED;

/**
 * @brief The number of elements of the array, or of members of the object,
 *        at pointer; 0 for any other value and when there is none.
 */
SBX_EXTERN size_t sbx_kms_json_count(const sbx_kms_json *j, const char *pointer);

/** @brief Free a document, wiping its strings (an answer may hold keys). NULL-safe. */
SBX_EXTERN void sbx_kms_json_free(sbx_kms_json *j);

/* ------------------------------------------------------------------ cache */

/**
 * A data-key cache in locked memory, in front of one client (the AWS
 * Encryption SDK's caching model). Encryption reuses a data key for one
 * (key name, context) partition until any limit is reached; decryption
 * remembers unwrapped data keys by (key name, ciphertext, context) until
 * max_age. Entries are wiped on eviction; errors are never cached; when
 * several threads miss the same entry at once, one request is made and the
 * others wait for it. Thread-safe.
 */
typedef struct sbx_kms_cache sbx_kms_cache;

typedef struct sbx_kms_cache_limits {
    unsigned version;    /**< SBX_KMS_CACHE_LIMITS_VERSION */
    uint64_t max_age_ms; /**< an entry is used for at most this long (default 3600000) */
    uint64_t max_uses;   /**< encryptions per data key (default 1<<24) */
    uint64_t max_bytes;  /**< bytes encrypted per data key (default 1<<36) */
    size_t max_entries;  /**< entries kept, least recently used evicted first (default 1000) */
} sbx_kms_cache_limits;

#define SBX_KMS_CACHE_LIMITS_VERSION 1
#define SBX_KMS_CACHE_LIMITS_INIT                                                                  \
    {                                                                                              \
        SBX_KMS_CACHE_LIMITS_VERSION, 3600000, (uint64_t)1 << 24, (uint64_t)1 << 36, 1000          \
    }

/**
 * @brief A cache over client (borrowed: it must outlive the cache).
 * @param limits NULL for the defaults; start from SBX_KMS_CACHE_LIMITS_INIT
 *        (version set), then zero fields take their defaults.
 * @return 0, SBX_EINVAL (unknown limits version), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_cache_new(sbx_kms_cache **out, sbx_kms_client *client,
                                 const sbx_kms_cache_limits *limits) SBX_WARN_UNUSED;

/** @brief Wipe every entry and free the cache. NULL-safe. No call may be in flight. */
SBX_EXTERN void sbx_kms_cache_free(sbx_kms_cache *cache);

/**
 * @brief A data key (256 bits) for encrypting `bytes` bytes under key `name`
 *        with this context: from the cache, or fetched (datakey) when the
 *        partition has none or its key reached a limit (age, uses + 1 >
 *        max_uses, bytes used + bytes > max_bytes). Counts one use and
 *        `bytes` bytes against the entry.
 * A request for more than max_bytes on its own (or any request when
 * max_uses is 1) gets a fresh data key that is used once and not cached.
 * @param out receives copies (plaintext in secure memory); dispose with
 *        sbx_kms_datakey_dispose().
 * @return 0 or the client's error for the fetch.
 */
SBX_EXTERN int sbx_kms_cache_datakey(sbx_kms_cache *cache, const char *name,
                                     const sbx_kms_pair *ctx, size_t n, uint64_t bytes,
                                     sbx_kms_datakey *out) SBX_WARN_UNUSED;

/**
 * @brief The plaintext of a data key ciphertext (from datakey) under key
 *        `name` and this context: from the cache, or through decrypt.
 * @param out receives up to 64 bytes; *out_len the length.
 * @return 0, SBX_ETOOBIG (the plaintext is over 64 bytes: not a data key),
 *         or the client's error.
 */
SBX_EXTERN int sbx_kms_cache_decrypt(sbx_kms_cache *cache, const char *name, const char *ciphertext,
                                     const sbx_kms_pair *ctx, size_t n, uint8_t out[64],
                                     size_t *out_len) SBX_WARN_UNUSED;

/** Counters, for tests and monitoring. */
typedef struct sbx_kms_cache_stats {
    uint64_t hits;
    uint64_t misses;      /**< fetches made (datakey + decrypt requests, failed ones too) */
    uint64_t evictions;   /**< entries dropped for size */
    uint64_t expirations; /**< entries dropped for age, uses or bytes */
    size_t entries;
} sbx_kms_cache_stats;

/** @brief Current counters. */
SBX_EXTERN void sbx_kms_cache_get_stats(sbx_kms_cache *cache, sbx_kms_cache_stats *out);

/** @brief Wipe and drop every entry now (e.g. after a credential change). */
SBX_EXTERN void sbx_kms_cache_clear(sbx_kms_cache *cache);

/* ------------------------------------------------------------------ envelope recipients */

/**
 * @brief An age recipient whose file key is wrapped by the key server:
 *        a stanza of our own type, which `age` skips,
 *
 *            -> sbx-kms https://host:port/NAME
 *            <the server's ciphertext "sbx:v<N>:...", as the stanza body>
 *
 *        The file key is sent to POST /v1/keys/NAME/encrypt with the
 *        context {"sbx": "age-file-key"}. The client is borrowed and must
 *        outlive the recipient.
 * @param key_url "https://host:port/NAME"; its base URL is written into the
 *        stanza (the client's first URL is used to reach the server).
 * @return 0, SBX_EINVAL (bad key URL), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_recipient_kms_new(sbx_recipient **out, sbx_kms_client *client,
                                     const char *key_url) SBX_WARN_UNUSED;

/**
 * @brief An identity that unwraps sbx-kms stanzas through the key server
 *        named in each stanza, with the credentials and trust of `opts`
 *        (typically from sbx_kms_client_new_from_env's environment).
 *
 *        A file is untrusted input: its stanza could name a server of the
 *        attacker's. The token is therefore sent only to a server that is
 *        either one of opts->urls (same scheme, host and port), or, when
 *        opts->urls is empty, authenticated by a pinned opts->cacert or
 *        opts->fingerprint. A stanza naming any other server is not used
 *        (SBX_ENOMATCH for the file if nothing else matches, with a message
 *        naming the server and how to allow it).
 * @param opts copied; NULL fields mean none.
 */
SBX_EXTERN int sbx_identity_kms_new(sbx_identity **out,
                                    const sbx_kms_client_options *opts) SBX_WARN_UNUSED;

/**
 * @brief sbx_identity_kms_new() with credentials and trust from the
 *        environment (the variables of sbx_kms_client_new_from_env()) and
 *        the allowed servers from SBX_KMS_URL (a comma-separated list of
 *        base or key URLs; only their scheme, host and port count).
 * @param overrides may be NULL; non-NULL fields win over the environment
 *        (its urls, when url_count > 0, replace SBX_KMS_URL).
 */
SBX_EXTERN int
sbx_identity_kms_new_from_env(sbx_identity **out,
                              const sbx_kms_client_options *overrides) SBX_WARN_UNUSED;

/* ------------------------------------------------------------------ age plugin */

/*
 * The key server as an age plugin (docs/plugins.md): `age-plugin-sbxkms`
 * lets the stock `age` (and any client of the C2SP age-plugin protocol)
 * write and open the sbx-kms stanzas that `sbx encrypt --kms` writes.
 */

/**
 * @brief The plugin recipient "age1sbxkms1..." of a key URL
 *        "https://host:port/NAME" (the URL is its data), appended to out.
 * @return 0, SBX_EINVAL (not a key URL, over 2048 bytes), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_age_recipient(sbx_buf *out, const char *key_url) SBX_WARN_UNUSED;

/**
 * @brief The plugin identity "AGE-PLUGIN-SBXKMS-1...", appended to out. It
 *        holds no secret: the token comes from SBX_KMS_TOKEN(_FILE) when it
 *        is used. With urls, it names the servers allowed to get the token
 *        (as SBX_KMS_URL would, which it then replaces); without, the rule
 *        of sbx_identity_kms_new_from_env() applies.
 * @param urls base or key URLs "https://host:port[/NAME]"; count may be 0.
 * @return 0, SBX_EINVAL (a URL that is not https://), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_kms_age_identity(sbx_buf *out, const char *const *urls,
                                    size_t count) SBX_WARN_UNUSED;

/**
 * @brief Serve one run of the age plugin protocol as age-plugin-sbxkms:
 *        state_machine "recipient-v1" (wrap file keys to age1sbxkms1...
 *        recipients through the key server) or "identity-v1" (unwrap the
 *        sbx-kms stanzas offered, for AGE-PLUGIN-SBXKMS-1... identities).
 *        Credentials and trust come from the SBX_KMS_* variables
 *        (sbx_kms_client_new_from_env(), sbx_identity_kms_new_from_env()).
 *        Failures of the key server are told to the client in the protocol.
 * @return 0 when the protocol ran to its end; SBX_EUNSUPPORTED (another
 *         state machine), or the connection's error (the client went away,
 *         broke the protocol).
 */
SBX_EXTERN int sbx_kms_age_plugin_serve(const char *state_machine, int in_fd, int out_fd);

#ifdef __cplusplus
}
#endif
#endif
