/*
 * src/kms/client.c - the key server client (see strongbox/kms.h, docs/kms.md).
 *
 * Implementation notes:
 *  - libcurl easy handles are pooled per client under a mutex: a call takes
 *    one (or makes one), and gives it back after curl_easy_reset(), which
 *    keeps its live connections and TLS sessions, so connections are reused
 *    by whichever thread comes next. curl_global_init runs once (pthread_once).
 *  - A call walks the URL list from the server that last answered
 *    (c->preferred). Idempotent calls make retries + 1 passes over the list
 *    after transport errors and 502/503/504, sleeping backoff * 2^(k-1) with
 *    equal jitter between passes; other calls stop at the first server that
 *    received anything and move on only when the connection could not be made.
 *  - Trust: verification is always on. A pin replaces it: curl's own checks
 *    are turned off and an OpenSSL certificate verification callback, set on
 *    curl's SSL_CTX, accepts exactly the leaf whose SHA-256 (of the DER)
 *    equals the pin. A mismatch fails the handshake before anything is sent
 *    and sets a thread-local flag (the handshake runs in the calling thread)
 *    so the error can say why.
 *  - Secrets: the Authorization header lives in secure memory; curl's copy
 *    in the header list is wiped before it is freed. Request bodies that
 *    carry plaintext and response bodies that carry plaintext keys are wiped
 *    (sbx_buf grows by copy and wipes; jansson strings are wiped in place
 *    before json_decref). curl's and jansson's internal buffers are not.
 */
#include "kms/client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#define POOL_MAX        32
#define ERRTEXT_MAX     300   // server error text quoted in messages
#define TOKEN_MAX       4096  // bearer token length limit
#define BACKOFF_MAX_MS  10000 // one backoff delay at most
#define AUTH_PREFIX     "Authorization: Bearer "
#define DATAKEY_MAX_LEN 64

struct sbx_kms_client {
    char **urls; // base URLs without a trailing '/'
    size_t url_count;
    char *auth; // "Authorization: Bearer TOKEN" in secure memory, or NULL
    size_t auth_size;
    char *cacert, *client_cert, *client_key;
    uint8_t pin[32];
    bool pinned;
    unsigned timeout_ms, connect_timeout_ms, retries, backoff_ms;
    atomic_size_t preferred; // index of the last server that answered
    pthread_mutex_t lock;    // guards pool
    CURL *pool[POOL_MAX];
    size_t pooled;
};

/* One request and what became of it. */
typedef struct call {
    const char *method, *path;
    const char *body; // or NULL
    size_t body_len;
    bool idempotent;
    long status;     // HTTP status of the answer, 0 without one
    size_t answered; // index of the URL that answered
    sbx_buf *resp;   // the answer's body
    bool too_big;    // the answer exceeded SBX_KMS__RESPONSE_MAX
    bool nomem;
} call;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;
static _Thread_local bool pin_mismatch;
static _Thread_local unsigned last_attempts;
/* The server that answered this thread's last call (index into urls), for messages. */
static _Thread_local size_t last_answered;

static void
global_init(void)
{
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* see kms/client.h */
unsigned
sbx_kms__last_attempts(void)
{
    return last_attempts;
}

/* ---------------------------------------------------------------- names, URLs */

/* ASCII-only classes: <ctype.h> follows the locale (a Latin-1 locale would take
 * bytes >= 0x80 as letters, in key names and in the host names compared to
 * decide where the token may go). */
static bool
ascii_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool
ascii_alnum(int c)
{
    return ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
ascii_xdigit(int c)
{
    return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/*
 * Checks "https://AUTHORITY" at the start of url; *end receives the index
 * just past the authority. what names the URL's role in messages.
 */
static int
authority_parse(const char *url, size_t *end, const char *what)
{
    static const char scheme[] = "https://";
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        return sbx__error(SBX_EINVAL, "%s must start with https:// (only HTTPS is spoken)", what);
    size_t i = sizeof scheme - 1;
    if (url[i] == '[') {
        size_t j = i + 1;
        while (ascii_xdigit((unsigned char)url[j]) || url[j] == ':' || url[j] == '.')
            j++;
        if (url[j] != ']' || j == i + 1)
            return sbx__error(SBX_EINVAL, "%s: bad IPv6 address (use [addr]:port)", what);
        i = j + 1;
    } else {
        size_t j = i;
        while (ascii_alnum((unsigned char)url[j]) || url[j] == '.' || url[j] == '-' ||
               url[j] == '_')
            j++;
        if (j == i)
            return sbx__error(SBX_EINVAL, "%s has no host name", what);
        if (url[j] == '@')
            return sbx__error(SBX_EINVAL, "%s must not contain user information (user@)", what);
        i = j;
    }
    if (url[i] == ':') {
        unsigned long port = 0;
        size_t j = i + 1;
        while (ascii_digit((unsigned char)url[j]) && j - i <= 5)
            port = port * 10 + (unsigned long)(url[j++] - '0');
        if (j == i + 1 || ascii_digit((unsigned char)url[j]) || port == 0 || port > 65535)
            return sbx__error(SBX_EINVAL, "%s: the port must be a number from 1 to 65535", what);
        i = j;
    }
    if (url[i] != '\0' && url[i] != '/')
        return sbx__error(SBX_EINVAL, "%s: unexpected character after the host and port", what);
    *end = i;
    return 0;
}

/* A copy of a base URL, scheme in lower case, without trailing '/'. */
static int
base_url_copy(char **out, const char *url)
{
    *out = NULL;
    size_t end;
    int err = authority_parse(url, &end, "a key server URL");
    if (err < 0)
        return err;
    size_t n = strlen(url);
    for (size_t i = end; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#')
            return sbx__error(SBX_EINVAL, "a key server URL must not contain a query, fragment, "
                                          "space or control character");
    }
    while (n > end && url[n - 1] == '/')
        n--;
    char *s = malloc(n + 1);
    if (s == NULL)
        return sbx__error_nomem();
    memcpy(s, "https://", 8);
    memcpy(s + 8, url + 8, n - 8);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* see kms/client.h */
int
sbx_kms__origin(char **out, const char *url)
{
    *out = NULL;
    size_t end;
    int err = authority_parse(url, &end, "a key server URL");
    if (err < 0)
        return err;
    const char *host = url + 8;
    size_t hlen = end - 8;
    const char *colon = host[0] == '[' ? memchr(host, ']', hlen) : host;
    colon = memchr(colon, ':', hlen - (size_t)(colon - host));
    size_t host_len = colon ? (size_t)(colon - host) : hlen;
    size_t cap = 8 + host_len + 8;
    char *s = malloc(cap);
    if (s == NULL)
        return sbx__error_nomem();
    memcpy(s, "https://", 8);
    for (size_t i = 0; i < host_len; i++)
        s[8 + i] = (char)ascii_lower((unsigned char)host[i]);
    if (colon != NULL)
        snprintf(s + 8 + host_len, cap - 8 - host_len, ":%.*s", (int)(hlen - host_len - 1),
                 colon + 1);
    else
        snprintf(s + 8 + host_len, cap - 8 - host_len, ":443");
    *out = s;
    return 0;
}

/* see strongbox/kms.h */
int
sbx_kms_parse_key_url(const char *url, char **base, char **name)
{
    if (base != NULL)
        *base = NULL;
    if (name != NULL)
        *name = NULL;
    if (url == NULL || base == NULL || name == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_parse_key_url: NULL argument");
    size_t end;
    int err = authority_parse(url, &end, "a key URL");
    if (err < 0)
        return err;
    if (url[end] != '/' || url[end + 1] == '\0')
        return sbx__error(SBX_EINVAL, "a key URL needs the key name: https://host:port/NAME");
    const char *n = url + end + 1;
    if (strpbrk(n, "/?#") != NULL)
        return sbx__error(SBX_EINVAL, "a key URL is https://host:port/NAME, without further path, "
                                      "query or fragment");
    if ((err = sbx_kms_key_name_check(n)) < 0)
        return err;
    char *b = strndup(url, end), *k = strdup(n);
    if (b == NULL || k == NULL) {
        free(b);
        free(k);
        return sbx__error_nomem();
    }
    memcpy(b, "https://", 8);
    *base = b;
    *name = k;
    return 0;
}

/* ---------------------------------------------------------------- context */

/* see kms/client.h */
int
sbx_kms__context_json(json_t **out, const sbx_kms_pair *ctx, size_t n)
{
    *out = NULL;
    if (n > 0 && ctx == NULL)
        return sbx__error(SBX_EINVAL, "context: %zu pairs announced but none given", n);
    if (n > SBX_KMS__CONTEXT_PAIRS_MAX)
        return sbx__error(SBX_EINVAL, "context: at most %d pairs", SBX_KMS__CONTEXT_PAIRS_MAX);
    json_t *obj = json_object();
    if (obj == NULL)
        return sbx__error_nomem();
    for (size_t i = 0; i < n; i++) {
        const char *k = ctx[i].key, *v = ctx[i].value;
        int err = 0;
        if (k == NULL || k[0] == '\0' || strlen(k) > SBX_KMS__CONTEXT_KEY_MAX)
            err = sbx__error(SBX_EINVAL, "context pair %zu: the key must be 1 to %d bytes", i,
                             SBX_KMS__CONTEXT_KEY_MAX);
        else if (v == NULL || strlen(v) > SBX_KMS__CONTEXT_VALUE_MAX)
            err = sbx__error(SBX_EINVAL,
                             "context key \"%s\": the value must be a string of at "
                             "most %d bytes",
                             k, SBX_KMS__CONTEXT_VALUE_MAX);
        else if (json_object_get(obj, k) != NULL)
            err = sbx__error(SBX_EINVAL, "context key \"%s\" appears twice", k);
        else {
            json_t *s = json_string(v);
            if (s == NULL || json_object_set_new(obj, k, s) < 0)
                err = sbx__error(SBX_EINVAL, "context pair %zu: key and value must be UTF-8", i);
        }
        if (err < 0) {
            json_decref(obj);
            return err;
        }
    }
    *out = obj;
    return 0;
}

/* see kms/client.h */
int
sbx_kms__context_string(char **out, const sbx_kms_pair *ctx, size_t n)
{
    *out = NULL;
    json_t *obj;
    int err = sbx_kms__context_json(&obj, ctx, n);
    if (err < 0)
        return err;
    *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    return *out == NULL ? sbx__error_nomem() : 0;
}

/* ---------------------------------------------------------------- client */

/* 64 hex digits, colons anywhere, optional "sha256:" prefix. */
static int
fingerprint_parse(uint8_t pin[32], const char *s)
{
    if (strncasecmp(s, "sha256:", 7) == 0)
        s += 7;
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (*s == ':')
            continue;
        int v = ascii_digit((unsigned char)*s)    ? *s - '0'
                : ascii_xdigit((unsigned char)*s) ? ascii_lower((unsigned char)*s) - 'a' + 10
                                                  : -1;
        if (v < 0 || n >= 64)
            return sbx__error(SBX_EINVAL, "bad certificate fingerprint: expected the SHA-256 as "
                                          "64 hex digits (colons allowed), as `sbx kms serve` "
                                          "prints it");
        pin[n / 2] = (uint8_t)(n % 2 ? pin[n / 2] | v : v << 4);
        n++;
    }
    if (n != 64)
        return sbx__error(SBX_EINVAL, "bad certificate fingerprint: %zu hex digits, expected 64",
                          n);
    return 0;
}

static int
strdup_opt(char **out, const char *s)
{
    *out = NULL;
    if (s == NULL || s[0] == '\0')
        return 0;
    if ((*out = strdup(s)) == NULL)
        return sbx__error_nomem();
    return 0;
}

static int
token_set(sbx_kms_client *c, const char *token)
{
    size_t n = strlen(token);
    if (n == 0)
        return sbx__error(SBX_EINVAL, "the key server token is empty");
    if (n > TOKEN_MAX)
        return sbx__error(SBX_EINVAL, "the key server token is over %d bytes", TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
            return sbx__error(SBX_EINVAL, "the key server token contains a space or a control "
                                          "character (check the token file)");
    c->auth_size = sizeof AUTH_PREFIX + n;
    if ((c->auth = sbx_secret_alloc(c->auth_size)) == NULL)
        return SBX_ENOMEM;
    memcpy(c->auth, AUTH_PREFIX, sizeof AUTH_PREFIX - 1);
    memcpy(c->auth + sizeof AUTH_PREFIX - 1, token, n);
    return 0;
}

static int
options_copy(sbx_kms_client *c, const sbx_kms_client_options *o)
{
    int err;
    if ((c->urls = calloc(o->url_count, sizeof *c->urls)) == NULL)
        return sbx__error_nomem();
    for (; c->url_count < o->url_count; c->url_count++) {
        if (o->urls[c->url_count] == NULL)
            return sbx__error(SBX_EINVAL, "key server URL %zu is NULL", c->url_count);
        if ((err = base_url_copy(&c->urls[c->url_count], o->urls[c->url_count])) < 0)
            return err;
    }
    if (o->token != NULL && (err = token_set(c, o->token)) < 0)
        return err;
    if (o->fingerprint != NULL && o->fingerprint[0] != '\0') {
        if ((err = fingerprint_parse(c->pin, o->fingerprint)) < 0)
            return err;
        c->pinned = true;
    }
    if ((err = strdup_opt(&c->cacert, o->cacert)) < 0 ||
        (err = strdup_opt(&c->client_cert, o->client_cert)) < 0 ||
        (err = strdup_opt(&c->client_key, o->client_key)) < 0)
        return err;
    if ((c->client_cert == NULL) != (c->client_key == NULL))
        return sbx__error(SBX_EINVAL, "a TLS client certificate needs its private key and the "
                                      "key its certificate: give both");
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 3000;
    c->retries = o->retries > 100 ? 100 : o->retries; // passes = retries + 1 must not wrap
    c->backoff_ms = o->backoff_ms;
    return 0;
}

/* see strongbox/kms.h */
int
sbx_kms_client_new(sbx_kms_client **out, const sbx_kms_client_options *opts)
{
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_client_new: out is NULL");
    *out = NULL;
    if (opts == NULL || opts->version != SBX_KMS_CLIENT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "sbx_kms_client_new: options missing or of another "
                                      "version (use SBX_KMS_CLIENT_OPTIONS_INIT)");
    if (opts->url_count == 0 || opts->urls == NULL)
        return sbx__error(SBX_EINVAL, "no key server URL given");
    pthread_once(&global_once, global_init);
    if (global_result != CURLE_OK)
        return sbx__error(SBX_EIO, "libcurl failed to initialise: %s",
                          curl_easy_strerror(global_result));
    sbx_kms_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sbx__error_nomem();
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return sbx__error_nomem();
    }
    int err = options_copy(c, opts);
    if (err < 0) {
        sbx_kms_client_free(c);
        return err;
    }
    *out = c;
    return 0;
}

/* see strongbox/kms.h */
void
sbx_kms_client_free(sbx_kms_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->pooled; i++)
        curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->lock);
    for (size_t i = 0; i < c->url_count; i++)
        free(c->urls[i]);
    free(c->urls);
    sbx_secret_free(c->auth, c->auth_size);
    free(c->cacert);
    free(c->client_cert);
    free(c->client_key);
    SBX_WIPE_CTX(c);
    free(c);
}

/* see strongbox/kms.h */
const char *
sbx_kms_client_url(const sbx_kms_client *c, size_t i)
{
    return c != NULL && i < c->url_count ? c->urls[i] : NULL;
}

/* ---------------------------------------------------------------- from the environment */

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The first line of a token file into secure memory (*size bytes, sbx_secret_free). */
static int
token_file_read(char **out, size_t *size, const char *path)
{
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx__error_sys(SBX_EIO, "SBX_KMS_TOKEN_FILE %s", path);
    char buf[TOKEN_MAX + 2];
    size_t n = 0;
    int err = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = sbx__error_sys(SBX_EIO, "SBX_KMS_TOKEN_FILE %s", path);
            break;
        }
        if (r == 0 || memchr(buf + n, '\n', (size_t)r) != NULL) {
            n += (size_t)r;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (err == 0) {
        size_t len = 0;
        while (len < n && buf[len] != '\n' && buf[len] != '\r')
            len++;
        if (len == 0)
            err = sbx__error(SBX_EINVAL, "SBX_KMS_TOKEN_FILE %s: the first line is empty", path);
        else if (len > TOKEN_MAX)
            err = sbx__error(SBX_EINVAL, "SBX_KMS_TOKEN_FILE %s: the token is over %d bytes", path,
                             TOKEN_MAX);
        else if ((*out = sbx_secret_alloc(len + 1)) == NULL)
            err = SBX_ENOMEM;
        else {
            memcpy(*out, buf, len);
            *size = len + 1;
        }
    }
    SBX_WIPE_BUF(buf);
    return err;
}

/* see client.h */
int
sbx_kms__env_credentials(sbx_kms_client_options *o, const sbx_kms_client_options *ov,
                         char **file_token, size_t *file_token_size)
{
    *file_token = NULL;
    *file_token_size = 0;
    o->token = ov && ov->token ? ov->token : env("SBX_KMS_TOKEN");
    o->cacert = ov && ov->cacert ? ov->cacert : env("SBX_KMS_CACERT");
    o->fingerprint = ov && ov->fingerprint ? ov->fingerprint : env("SBX_KMS_FINGERPRINT");
    o->client_cert = ov && ov->client_cert ? ov->client_cert : env("SBX_KMS_CLIENT_CERT");
    o->client_key = ov && ov->client_key ? ov->client_key : env("SBX_KMS_CLIENT_KEY");
    const char *path = env("SBX_KMS_TOKEN_FILE");
    if (o->token != NULL || path == NULL)
        return 0;
    int err = token_file_read(file_token, file_token_size, path);
    if (err == 0)
        o->token = *file_token;
    return err;
}

/* see client.h */
void
sbx_kms__urls_free(char **urls, size_t n)
{
    for (size_t i = 0; urls != NULL && i < n; i++)
        free(urls[i]);
    free(urls);
}

/* see client.h */
int
sbx_kms__urls_split(char ***out, size_t *n, const char *first, const char *list)
{
    size_t cap = 2;
    *n = 0;
    for (const char *p = list; p != NULL && *p != '\0'; p++)
        cap += *p == ',';
    if ((*out = calloc(cap, sizeof **out)) == NULL)
        return sbx__error_nomem();
    if (first != NULL && ((*out)[(*n)++] = strdup(first)) == NULL)
        goto nomem;
    while (list != NULL && *list != '\0') {
        list += strspn(list, " \t");
        size_t len = strcspn(list, ","), m = len;
        while (m > 0 && (list[m - 1] == ' ' || list[m - 1] == '\t'))
            m--;
        if (m > 0 && ((*out)[(*n)++] = strndup(list, m)) == NULL)
            goto nomem;
        list += len + (list[len] == ',');
    }
    return 0;
nomem:
    sbx_kms__urls_free(*out, *n);
    *out = NULL;
    *n = 0;
    return sbx__error_nomem();
}

/*
 * The server of sbx_kms_client_new_from_env() without a base URL: the origin
 * of ov's first URL, else of SBX_KMS_URL's first entry, malloc'ed into *out.
 */
static int
named_server(char **out, const sbx_kms_client_options *ov)
{
    char **list = NULL;
    size_t n = 0;
    int err;
    *out = NULL;
    if (ov != NULL && ov->url_count > 0 && ov->urls != NULL && ov->urls[0] != NULL)
        err = sbx_kms__urls_split(&list, &n, ov->urls[0], NULL);
    else
        err = sbx_kms__urls_split(&list, &n, NULL, env("SBX_KMS_URL"));
    if (err == 0 && n == 0)
        err = sbx__error(SBX_EINVAL, "no key server named: set SBX_KMS_URL=https://HOST:PORT "
                                     "(the first entry of the list is used)");
    if (err == 0 && (err = sbx_kms__origin(out, list[0])) < 0) {
        char why[256]; // the message is rewritten below: copy it first
        snprintf(why, sizeof why, "%s", sbx_error_last()->message);
        err = sbx__error(err, "%.200s (the key server's URL): %s", list[0], why);
    }
    sbx_kms__urls_free(list, n);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_client_new_from_env(sbx_kms_client **out, const char *base_url,
                            const sbx_kms_client_options *overrides)
{
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_client_new_from_env: out is NULL");
    *out = NULL;
    if (overrides != NULL && overrides->version != SBX_KMS_CLIENT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "sbx_kms_client_new_from_env: overrides of another "
                                      "version (use SBX_KMS_CLIENT_OPTIONS_INIT)");
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    if (overrides != NULL)
        o = *overrides;
    char *file_token = NULL, **urls = NULL, *named = NULL;
    size_t file_token_size = 0;
    o.url_count = 0;
    int err = base_url == NULL ? named_server(&named, overrides) : 0;
    if (err == 0)
        err = sbx_kms__env_credentials(&o, overrides, &file_token, &file_token_size);
    if (err < 0)
        goto out;
    if (base_url == NULL)
        base_url = named;
    if ((err = sbx_kms__urls_split(&urls, &o.url_count, base_url, env("SBX_KMS_FAILOVER"))) < 0)
        goto out;
    o.urls = (const char *const *)urls;
    err = sbx_kms_client_new(out, &o);
out:
    sbx_secret_free(file_token, file_token_size);
    sbx_kms__urls_free(urls, o.url_count);
    free(named);
    return err;
}

/* ---------------------------------------------------------------- transport */

static CURL *
handle_take(sbx_kms_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->pooled > 0)
        h = c->pool[--c->pooled];
    pthread_mutex_unlock(&c->lock);
    return h != NULL ? h : curl_easy_init();
}

static void
handle_give(sbx_kms_client *c, CURL *h)
{
    if (h == NULL)
        return;
    curl_easy_reset(h); // drops our pointers, keeps connections and TLS sessions
    pthread_mutex_lock(&c->lock);
    if (c->pooled < POOL_MAX) {
        c->pool[c->pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* OpenSSL certificate verification replaced by the pin (arg: the client). */
static int
pin_verify(X509_STORE_CTX *x, void *arg)
{
    const sbx_kms_client *c = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &len) != 1 || len != 32 ||
        CRYPTO_memcmp(md, c->pin, 32) != 0) {
        pin_mismatch = true;
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

static CURLcode
on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
    (void)h;
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ssl_ctx, pin_verify, arg);
    return CURLE_OK;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    call *k = arg;
    size_t n = size * nmemb;
    if (n > SBX_KMS__RESPONSE_MAX - k->resp->len) {
        k->too_big = true;
        return 0;
    }
    if (sbx_buf_append(k->resp, data, n) < 0) {
        k->nomem = true;
        return 0;
    }
    return n;
}

static void
headers_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        sbx_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* Header list (curl copies the strings; the Authorization copy is wiped in headers_free). */
static struct curl_slist *
headers_new(const sbx_kms_client *c, bool body)
{
    static const char *const fixed[] = {"Accept: application/json", "Expect:"};
    struct curl_slist *l = NULL, *t;
    if (c->auth != NULL && (l = curl_slist_append(l, c->auth)) == NULL)
        return NULL;
    for (size_t i = 0; i < 2 + (size_t)body; i++) {
        const char *s = i < 2 ? fixed[i] : "Content-Type: application/json";
        if ((t = curl_slist_append(l, s)) == NULL) {
            headers_free(l); // wipes the copy of the Authorization header
            return NULL;
        }
        l = t;
    }
    return l;
}

static CURLcode
setopts(sbx_kms_client *c, CURL *h, call *k, const char *url, struct curl_slist *hdr, char *errbuf)
{
    CURLcode r = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (r == CURLE_OK)                                                                         \
            r = curl_easy_setopt(h, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    SET(CURLOPT_USERAGENT, "strongbox/" SBX_VERSION_STRING);
    SET(CURLOPT_HTTPHEADER, hdr);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, k);
    SET(CURLOPT_SSL_VERIFYPEER, c->pinned ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->pinned ? 0L : 2L);
    if (c->pinned) {
        SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        SET(CURLOPT_SSL_CTX_DATA, c);
    }
    if (c->cacert != NULL)
        SET(CURLOPT_CAINFO, c->cacert);
    if (c->client_cert != NULL) {
        SET(CURLOPT_SSLCERT, c->client_cert);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLKEY, c->client_key);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (strcmp(k->method, "GET") == 0)
        SET(CURLOPT_HTTPGET, 1L);
    else
        SET(CURLOPT_CUSTOMREQUEST, k->method);
    if (k->body != NULL || strcmp(k->method, "POST") == 0 || strcmp(k->method, "PUT") == 0) {
        SET(CURLOPT_POSTFIELDS, k->body != NULL ? k->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body_len);
    }
#undef SET
    return r;
}

/* Nothing reached the server: the connection or the TLS handshake failed. */
static bool
nothing_sent(CURL *h, CURLcode r)
{
    switch (r) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return true;
    case CURLE_OPERATION_TIMEDOUT: { // in the handshake, not on a reused connection
        curl_off_t app = 1;
        long sent = 1;
        curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &app);
        curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
        return app == 0 && sent == 0;
    }
    default:
        return false;
    }
}

/* One attempt against urls[i]: the curl result; k->status and k->resp are set. */
static CURLcode
attempt(sbx_kms_client *c, CURL *h, call *k, size_t i, char errbuf[CURL_ERROR_SIZE])
{
    size_t ulen = strlen(c->urls[i]) + strlen(k->path) + 1;
    char *url = malloc(ulen);
    struct curl_slist *hdr = headers_new(c, k->body != NULL);
    CURLcode r = CURLE_OUT_OF_MEMORY;
    errbuf[0] = '\0';
    sbx_buf_dispose(k->resp);
    k->status = 0;
    pin_mismatch = false;
    last_attempts++;
    if (url != NULL && hdr != NULL) {
        snprintf(url, ulen, "%s%s", c->urls[i], k->path);
        curl_easy_reset(h);
        if ((r = setopts(c, h, k, url, hdr, errbuf)) == CURLE_OK)
            r = curl_easy_perform(h);
        if (r == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &k->status);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    }
    headers_free(hdr);
    free(url);
    return r;
}

/* Records a transport error for urls[i]; returns SBX_EIO (or the local cause). */
static int
transport_error(const sbx_kms_client *c, const call *k, size_t i, CURLcode r, const char *errbuf)
{
    if (k->nomem || r == CURLE_OUT_OF_MEMORY)
        return sbx__error_nomem();
    if (k->too_big)
        return sbx__error(SBX_ETOOBIG, "key server %s: %s %s: the answer is over %zu bytes",
                          c->urls[i], k->method, k->path, SBX_KMS__RESPONSE_MAX);
    if (pin_mismatch)
        return sbx__error(SBX_EIO,
                          "key server %s: server certificate does not match the "
                          "pinned fingerprint (check SBX_KMS_FINGERPRINT against the "
                          "one `sbx kms serve` prints)",
                          c->urls[i]);
    const char *hint = "";
    if (r == CURLE_PEER_FAILED_VERIFICATION || r == CURLE_SSL_CACERT_BADFILE)
        hint = " (give the server's CA with SBX_KMS_CACERT, or pin its certificate with "
               "SBX_KMS_FINGERPRINT)";
    return sbx__error(SBX_EIO, "key server %s: %s %s: %s%s", c->urls[i], k->method, k->path,
                      errbuf[0] ? errbuf : curl_easy_strerror(r), hint);
}

/* The server's {"error": "..."} text, printable and truncated, into text. */
static void
server_error_text(char text[ERRTEXT_MAX + 4], const sbx_buf *resp)
{
    text[0] = '\0';
    json_t *j = resp->len ? json_loadb((const char *)resp->ptr, resp->len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e != NULL) {
        size_t n = 0;
        for (; e[n] != '\0' && n < ERRTEXT_MAX; n++)
            text[n] = (unsigned char)e[n] < ' ' || e[n] == 0x7f ? '?' : e[n];
        strcpy(text + n, e[n] != '\0' ? "..." : "");
    }
    json_decref(j);
}

/* Maps a non-2xx answer from urls[i] to a code with the server's message. */
static int
http_error(const sbx_kms_client *c, const call *k, size_t i)
{
    char text[ERRTEXT_MAX + 4];
    server_error_text(text, k->resp);
    int code;
    const char *hint = "";
    switch (k->status) {
    case 400:
        code = strstr(text, "does not authenticate") != NULL ? SBX_EAUTH : SBX_EINVAL;
        break;
    case 401:
        code = SBX_EDENIED;
        hint = " (check the token: SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE)";
        break;
    case 403:
        code = SBX_EDENIED;
        break;
    case 404:
        code = SBX_ENOTFOUND;
        break;
    case 409:
        code = SBX_ECONFLICT;
        break;
    case 413:
        code = SBX_ETOOBIG;
        break;
    default:
        code = k->status >= 500 || k->status < 400 ? SBX_EIO : SBX_EINVAL;
    }
    return sbx__error(code, "key server %s: %s %s: HTTP %ld: %s%s", c->urls[i], k->method, k->path,
                      k->status, text[0] ? text : "(no error text)", hint);
}

static void
backoff_sleep(const sbx_kms_client *c, unsigned pass)
{
    uint64_t d = c->backoff_ms;
    for (unsigned i = 1; i < pass && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    uint64_t jitter = 0;
    if (d / 2 > 0 && sbx_random_uniform(&jitter, d / 2 + 1) < 0)
        jitter = d / 2;
    uint64_t ms = d - d / 2 + jitter; // equal jitter: [d/2, d]
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool
retryable_status(long st)
{
    return st == 502 || st == 503 || st == 504;
}

/*
 * Performs k with failover and retries. 0 for a 2xx answer (k->answered,
 * k->status, k->resp set), else the mapped error (k->resp holds the last
 * answer's body, if any).
 */
static int
perform(sbx_kms_client *c, call *k)
{
    CURL *h = handle_take(c);
    if (h == NULL)
        return sbx__error_nomem();
    char errbuf[CURL_ERROR_SIZE];
    unsigned passes = k->idempotent ? c->retries + 1 : 1;
    size_t start = atomic_load(&c->preferred) % c->url_count;
    int err = SBX_EIO;
    last_attempts = 0;
    for (unsigned p = 0; p < passes; p++) {
        if (p > 0) {
            backoff_sleep(c, p);
            start = atomic_load(&c->preferred) % c->url_count;
        }
        for (size_t j = 0; j < c->url_count; j++) {
            size_t i = (start + j) % c->url_count;
            CURLcode r = attempt(c, h, k, i, errbuf);
            if (r == CURLE_OK) {
                k->answered = last_answered = i;
                if (k->idempotent && retryable_status(k->status)) {
                    err = http_error(c, k, i);
                    continue;
                }
                atomic_store(&c->preferred, i);
                err = k->status >= 200 && k->status < 300 ? 0 : http_error(c, k, i);
                goto out;
            }
            err = transport_error(c, k, i, r, errbuf);
            if (err != SBX_EIO || (!k->idempotent && !nothing_sent(h, r)))
                goto out;
        }
    }
out:
    handle_give(c, h);
    return err;
}

/* ---------------------------------------------------------------- JSON plumbing */

/* Wipes a JSON string value in place (jansson owns a copy of what we gave it). */
static void
json_wipe_string(json_t *s)
{
    if (json_is_string(s))
        sbx_wipe((char *)json_string_value(s), json_string_length(s));
}

/* Appends text and a NUL terminator (not counted in out->len). */
static int
append_text(sbx_buf *out, const void *s, size_t n)
{
    int err = sbx_buf_reserve(out, n + 1);
    if (err < 0)
        return err;
    if (n > 0)
        memcpy(out->ptr + out->len, s, n);
    out->len += n;
    out->ptr[out->len] = '\0';
    return 0;
}

/* Sends body (a JSON object, or NULL) and parses a 2xx JSON answer into *ans (may be NULL). */
static int
json_call(sbx_kms_client *c, const char *method, const char *path, json_t *body, bool idempotent,
          bool secret, sbx_buf *raw_out, json_t **ans)
{
    if (ans != NULL)
        *ans = NULL;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL)
        return sbx__error_nomem();
    sbx_buf resp = SBX_BUF_INIT;
    call k = {
        .method = method, .path = path, .body = text, .idempotent = idempotent, .resp = &resp};
    k.body_len = text != NULL ? strlen(text) : 0;
    int err = perform(c, &k);
    if (text != NULL && secret)
        sbx_wipe(text, k.body_len);
    free(text);
    if (err == 0 && ans != NULL) {
        *ans = json_loadb((const char *)resp.ptr, resp.len, 0, NULL);
        if (!json_is_object(*ans)) {
            json_decref(*ans);
            *ans = NULL;
            err = sbx__error(SBX_EFORMAT, "key server %s: %s %s: the answer is not a JSON object",
                             c->urls[k.answered], method, path);
        }
    }
    if (err == 0 && raw_out != NULL)
        err = append_text(raw_out, resp.ptr, resp.len);
    sbx_buf_dispose(&resp); // wipes: it may carry plaintext keys
    return err;
}

static int
bad_answer(const sbx_kms_client *c, const char *path, const char *what)
{
    return sbx__error(SBX_EFORMAT, "key server %s: the answer to %s has %s",
                      c->urls[last_answered % c->url_count], path, what);
}

static int
answer_version(const sbx_kms_client *c, const char *path, json_t *ans, unsigned *out)
{
    json_t *v = json_object_get(ans, "key_version");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > UINT32_MAX)
        return bad_answer(c, path, "no valid key_version");
    if (out != NULL)
        *out = (unsigned)json_integer_value(v);
    return 0;
}

static int
answer_ciphertext(const sbx_kms_client *c, const char *path, json_t *ans, const char **out)
{
    json_t *j = json_object_get(ans, "ciphertext");
    const char *s = json_string_value(j);
    if (s == NULL || strncmp(s, "sbx:v", 5) != 0 || strlen(s) != json_string_length(j))
        return bad_answer(c, path, "no valid ciphertext");
    *out = s;
    return 0;
}

/* The request body {"context": {...}} (context only when n > 0). */
static int
body_new(json_t **out, const sbx_kms_pair *ctx, size_t n)
{
    *out = json_object();
    if (*out == NULL)
        return sbx__error_nomem();
    if (n == 0)
        return 0;
    json_t *cj;
    int err = sbx_kms__context_json(&cj, ctx, n);
    if (err == 0 && json_object_set_new(*out, "context", cj) < 0)
        err = sbx__error_nomem();
    if (err < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

static int
set_int(json_t *o, const char *key, json_int_t v)
{
    return json_object_set_new(o, key, json_integer(v)) < 0 ? sbx__error_nomem() : 0;
}

static int
set_str(json_t *o, const char *key, const char *v)
{
    json_t *s = json_string(v);
    if (s == NULL)
        return sbx__error(SBX_EINVAL, "%s is not valid UTF-8 text", key);
    return json_object_set_new(o, key, s) < 0 ? sbx__error_nomem() : 0;
}

/* ---------------------------------------------------------------- public calls */

static bool
arg_ok(const sbx_kms_client *c)
{
    return c != NULL;
}

/* see strongbox/kms.h */
int
sbx_kms_request(sbx_kms_client *c, const char *method, const char *path, const char *json_body,
                bool idempotent, long *status, sbx_buf *response)
{
    if (status != NULL)
        *status = 0;
    if (!arg_ok(c) || method == NULL || path == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_request: NULL argument");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
        strcmp(method, "DELETE") != 0)
        return sbx__error(SBX_EINVAL, "sbx_kms_request: method must be GET, POST, PUT or DELETE");
    if (json_body != NULL && strcmp(method, "GET") == 0)
        return sbx__error(SBX_EINVAL, "sbx_kms_request: a GET has no body (curl would send it "
                                      "as a POST)");
    if (path[0] != '/' || strpbrk(path, " #\t\r\n") != NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_request: the path must start with '/' and "
                                      "contain no space or fragment");
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
            return sbx__error(SBX_EINVAL, "sbx_kms_request: the path must be printable ASCII");
    sbx_buf resp = SBX_BUF_INIT;
    call k = {
        .method = method, .path = path, .body = json_body, .idempotent = idempotent, .resp = &resp};
    k.body_len = json_body != NULL ? strlen(json_body) : 0;
    int err = perform(c, &k);
    if (status != NULL)
        *status = k.status;
    if (response != NULL && (k.status != 0 || resp.len > 0)) {
        int e2 = append_text(response, resp.ptr, resp.len);
        if (err == 0)
            err = e2;
    }
    sbx_buf_dispose(&resp);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_health(sbx_kms_client *c, sbx_buf *json)
{
    if (!arg_ok(c))
        return sbx__error(SBX_EINVAL, "sbx_kms_health: client is NULL");
    json_t *ans;
    sbx_buf raw = SBX_BUF_INIT;
    int err = json_call(c, "GET", "/v1/health", NULL, true, false, &raw, &ans);
    if (err == 0) {
        const char *st = json_string_value(json_object_get(ans, "status"));
        if (st == NULL || strcmp(st, "ok") != 0)
            err = sbx__error(SBX_EIO, "key server %s is not healthy: status \"%.40s\"",
                             c->urls[last_answered % c->url_count], st ? st : "(none)");
        json_decref(ans);
    }
    if (err == 0 && json != NULL)
        err = append_text(json, raw.ptr, raw.len);
    sbx_buf_dispose(&raw);
    return err;
}

/* A key-path "/v1/keys/NAME" + suffix into buf. */
static int
key_path(char *buf, size_t size, const char *name, const char *suffix)
{
    int err = sbx_kms_key_name_check(name);
    if (err < 0)
        return err;
    snprintf(buf, size, "/v1/keys/%s%s", name, suffix);
    return 0;
}

#define PATH_MAX_LEN (SBX_KMS__NAME_MAX + 64)

static int
key_simple(sbx_kms_client *c, const char *method, const char *name, const char *suffix,
           json_t *body, bool idempotent, sbx_buf *meta)
{
    char path[PATH_MAX_LEN];
    int err = arg_ok(c) ? key_path(path, sizeof path, name, suffix)
                        : sbx__error(SBX_EINVAL, "key server client is NULL");
    if (err == 0)
        err = json_call(c, method, path, body, idempotent, false, meta, NULL);
    json_decref(body);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_key_create(sbx_kms_client *c, const char *name, uint64_t auto_rotate_period, sbx_buf *meta)
{
    if (auto_rotate_period > INT64_MAX)
        return sbx__error(SBX_EINVAL, "auto_rotate_period is out of range");
    json_t *b = json_object();
    if (b == NULL)
        return sbx__error_nomem();
    int err =
        auto_rotate_period ? set_int(b, "auto_rotate_period", (json_int_t)auto_rotate_period) : 0;
    if (err < 0) {
        json_decref(b);
        return err;
    }
    return key_simple(c, "POST", name, "", b, false, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_read(sbx_kms_client *c, const char *name, sbx_buf *meta)
{
    return key_simple(c, "GET", name, "", NULL, true, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_list(sbx_kms_client *c, const char *prefix, sbx_buf *json)
{
    if (!arg_ok(c))
        return sbx__error(SBX_EINVAL, "key server client is NULL");
    if (prefix != NULL && !sbx_kms_key_prefix_valid(prefix))
        return sbx__error(SBX_EINVAL, "a key name prefix is at most %d of A-Z a-z 0-9 . _ -",
                          SBX_KMS__NAME_MAX);
    char path[PATH_MAX_LEN];
    if (prefix != NULL && prefix[0] != '\0')
        snprintf(path, sizeof path, "/v1/keys?prefix=%s", prefix);
    else
        snprintf(path, sizeof path, "/v1/keys");
    return json_call(c, "GET", path, NULL, true, false, json, NULL);
}

/* see strongbox/kms.h */
int
sbx_kms_key_rotate(sbx_kms_client *c, const char *name, sbx_buf *meta)
{
    return key_simple(c, "POST", name, "/rotate", NULL, false, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_config(sbx_kms_client *c, const char *name, int64_t min_decryption_version,
                   int64_t auto_rotate_period, sbx_buf *meta)
{
    json_t *b = json_object();
    if (b == NULL)
        return sbx__error_nomem();
    int err = 0;
    if (min_decryption_version >= 0)
        err = set_int(b, "min_decryption_version", (json_int_t)min_decryption_version);
    if (err == 0 && auto_rotate_period >= 0)
        err = set_int(b, "auto_rotate_period", (json_int_t)auto_rotate_period);
    if (err < 0) {
        json_decref(b);
        return err;
    }
    return key_simple(c, "POST", name, "/config", b, false, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_delete(sbx_kms_client *c, const char *name, int64_t delay, sbx_buf *meta)
{
    char suffix[40] = "";
    if (delay >= 0)
        snprintf(suffix, sizeof suffix, "?delay=%" PRId64, delay);
    return key_simple(c, "DELETE", name, suffix, NULL, false, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_restore(sbx_kms_client *c, const char *name, sbx_buf *meta)
{
    return key_simple(c, "POST", name, "/restore", NULL, false, meta);
}

/* see strongbox/kms.h */
int
sbx_kms_key_destroy_version(sbx_kms_client *c, const char *name, unsigned version, sbx_buf *meta)
{
    if (version == 0)
        return sbx__error(SBX_EINVAL, "key versions start at 1");
    char suffix[40];
    snprintf(suffix, sizeof suffix, "/versions/%u/destroy", version);
    return key_simple(c, "POST", name, suffix, NULL, false, meta);
}

/* ---------------------------------------------------------------- data plane */

/* see strongbox/kms.h */
void
sbx_kms_datakey_dispose(sbx_kms_datakey *dk)
{
    if (dk == NULL)
        return;
    sbx_secret_free(dk->plaintext, dk->plaintext_len);
    free(dk->ciphertext);
    SBX_WIPE_CTX(dk);
}

/* The base64 "plaintext" of ans decoded into dst (cap bytes); *len its length. */
static int
answer_plaintext(const sbx_kms_client *c, const char *path, json_t *ans, uint8_t *dst, size_t cap,
                 size_t *len)
{
    json_t *p = json_object_get(ans, "plaintext");
    const char *s = json_string_value(p);
    *len = 0;
    if (s == NULL)
        return bad_answer(c, path, "no plaintext");
    size_t n = json_string_length(p);
    if (SBX_BASE64_DECODED_MAX(n) > cap)
        return bad_answer(c, path, "a plaintext longer than expected");
    if (sbx_base64_decode(dst, cap, len, s, n, true) < 0) {
        sbx_wipe(dst, cap);
        return bad_answer(c, path, "a plaintext that is not base64");
    }
    return 0;
}

static int
datakey_parse(const sbx_kms_client *c, const char *path, json_t *ans, unsigned bits,
              bool wrapped_only, sbx_kms_datakey *out)
{
    const char *ct;
    int err = answer_ciphertext(c, path, ans, &ct);
    if (err == 0)
        err = answer_version(c, path, ans, &out->key_version);
    if (err == 0 && (out->ciphertext = strdup(ct)) == NULL)
        err = sbx__error_nomem();
    if (err < 0 || wrapped_only)
        return err;
    uint8_t key[SBX_BASE64_DECODED_MAX(SBX_BASE64_PAD_LEN(DATAKEY_MAX_LEN))];
    size_t len = 0;
    err = answer_plaintext(c, path, ans, key, sizeof key, &len);
    if (err == 0 && len != bits / 8)
        err = bad_answer(c, path, "a data key of the wrong length");
    if (err == 0 && (out->plaintext = sbx_secret_alloc(len)) == NULL)
        err = SBX_ENOMEM;
    if (err == 0) {
        memcpy(out->plaintext, key, len);
        out->plaintext_len = len;
    }
    SBX_WIPE_BUF(key);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_datakey_new(sbx_kms_client *c, const char *name, const sbx_kms_pair *ctx, size_t n,
                    unsigned bits, bool wrapped_only, sbx_kms_datakey *out)
{
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_datakey_new: out is NULL");
    memset(out, 0, sizeof *out);
    if (!arg_ok(c))
        return sbx__error(SBX_EINVAL, "key server client is NULL");
    bits = bits ? bits : 256;
    if (bits != 128 && bits != 256 && bits != 512)
        return sbx__error(SBX_EINVAL, "data keys are 128, 256 or 512 bits, not %u", bits);
    char path[PATH_MAX_LEN];
    json_t *b = NULL, *ans = NULL;
    int err = key_path(path, sizeof path, name, "/datakey");
    if (err == 0)
        err = body_new(&b, ctx, n);
    if (err == 0)
        err = set_int(b, "bits", (json_int_t)bits);
    if (err == 0 && wrapped_only)
        err = json_object_set_new(b, "wrapped_only", json_true()) < 0 ? sbx__error_nomem() : 0;
    if (err == 0)
        err = json_call(c, "POST", path, b, true, false, NULL, &ans);
    if (err == 0)
        err = datakey_parse(c, path, ans, bits, wrapped_only, out);
    json_wipe_string(json_object_get(ans, "plaintext"));
    json_decref(ans);
    json_decref(b);
    if (err < 0)
        sbx_kms_datakey_dispose(out);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_encrypt(sbx_kms_client *c, const char *name, const void *plaintext, size_t len,
                const sbx_kms_pair *ctx, size_t n, sbx_buf *out, unsigned *key_version)
{
    if (key_version != NULL)
        *key_version = 0;
    if (!arg_ok(c) || out == NULL || (plaintext == NULL && len > 0))
        return sbx__error(SBX_EINVAL, "sbx_kms_encrypt: NULL argument");
    if (len > ((size_t)64 << 20))
        return sbx__error(SBX_ETOOBIG, "the plaintext is over 64 MiB (the key server encrypts "
                                       "at most 32 KiB at a time)");
    char path[PATH_MAX_LEN];
    json_t *b = NULL, *ans = NULL;
    size_t b64_size = SBX_BASE64_PAD_LEN(len) + 1;
    char *b64 = NULL;
    const char *ct;
    int err = key_path(path, sizeof path, name, "/encrypt");
    if (err == 0)
        err = body_new(&b, ctx, n);
    if (err == 0 && (b64 = malloc(b64_size)) == NULL)
        err = sbx__error_nomem();
    if (err == 0 && sbx_base64_encode(b64, b64_size, plaintext, len, true) < 0)
        err = sbx__error(SBX_EINVAL, "base64 of the plaintext failed");
    if (err == 0)
        err = set_str(b, "plaintext", b64);
    if (err == 0)
        err = json_call(c, "POST", path, b, true, true, NULL, &ans);
    if (err == 0)
        err = answer_ciphertext(c, path, ans, &ct);
    if (err == 0)
        err = answer_version(c, path, ans, key_version);
    if (err == 0)
        err = append_text(out, ct, strlen(ct));
    json_wipe_string(json_object_get(b, "plaintext"));
    if (b64 != NULL)
        sbx_wipe(b64, b64_size);
    free(b64);
    json_decref(b);
    json_decref(ans);
    return err;
}

/* decrypt and rewrap: {"ciphertext": ..., "context": ...} to path. */
static int
ciphertext_call(sbx_kms_client *c, const char *name, const char *suffix, const char *ciphertext,
                const sbx_kms_pair *ctx, size_t n, json_t **ans, char path[PATH_MAX_LEN])
{
    *ans = NULL;
    if (!arg_ok(c) || ciphertext == NULL)
        return sbx__error(SBX_EINVAL, "key server call: NULL argument");
    json_t *b = NULL;
    int err = key_path(path, PATH_MAX_LEN, name, suffix);
    if (err == 0)
        err = body_new(&b, ctx, n);
    if (err == 0)
        err = set_str(b, "ciphertext", ciphertext);
    if (err == 0)
        err = json_call(c, "POST", path, b, true, false, NULL, ans);
    json_decref(b);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_decrypt(sbx_kms_client *c, const char *name, const char *ciphertext,
                const sbx_kms_pair *ctx, size_t n, sbx_buf *out, unsigned *key_version)
{
    if (key_version != NULL)
        *key_version = 0;
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_decrypt: out is NULL");
    char path[PATH_MAX_LEN];
    json_t *ans;
    int err = ciphertext_call(c, name, "/decrypt", ciphertext, ctx, n, &ans, path);
    json_t *p = json_object_get(ans, "plaintext");
    size_t cap = SBX_BASE64_DECODED_MAX(json_string_length(p));
    if (err == 0)
        err = answer_version(c, path, ans, key_version);
    if (err == 0)
        err = sbx_buf_reserve(out, cap);
    if (err == 0) {
        size_t len = 0;
        err = answer_plaintext(c, path, ans, out->ptr + out->len, cap, &len);
        out->len += len;
    }
    json_wipe_string(p);
    json_decref(ans);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_rewrap(sbx_kms_client *c, const char *name, const char *ciphertext, const sbx_kms_pair *ctx,
               size_t n, sbx_buf *out, unsigned *key_version)
{
    if (key_version != NULL)
        *key_version = 0;
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_kms_rewrap: out is NULL");
    char path[PATH_MAX_LEN];
    json_t *ans;
    const char *ct;
    int err = ciphertext_call(c, name, "/rewrap", ciphertext, ctx, n, &ans, path);
    if (err == 0)
        err = answer_ciphertext(c, path, ans, &ct);
    if (err == 0)
        err = answer_version(c, path, ans, key_version);
    if (err == 0)
        err = append_text(out, ct, strlen(ct));
    json_decref(ans);
    return err;
}
