/*
 * cli/kms_client.c - the client commands of sbx kms: key, token, policy and
 * certificate administration and the data plane, over the key server's API
 * (docs/kms.md), one table row per command.
 *
 * Each command builds one request (method, path, JSON body), sends it with
 * sbx_kms_request() to the server of SBX_KMS_URL (or --kms-url), with the
 * credentials and trust of --kms (cli/kms_opts.c), and prints the answer:
 * the server's JSON as it came with --json, else a table read from the
 * answer with the library's JSON reader (sbx links no JSON library; the
 * answer is parsed where it is received, in libstrongbox-kms). Text from the
 * server is printed with control characters replaced by '?'.
 */
#include "kms_client.h"
#include "kms_dl.h"
#include "kms_opts.h"

#include <strongbox/encoding.h>
#include <strongbox/kms_name.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest plaintext or ciphertext read from standard input (the server takes 32 KiB). */
#define INPUT_MAX ((size_t)1 << 20)

/* Options of single commands: the bits of struct command.opts. */
enum {
    O_PREFIX = 1 << 0,
    O_AUTO_ROTATE = 1 << 1,
    O_MIN_VERSION = 1 << 2,
    O_DELAY = 1 << 3,
    O_BITS = 1 << 4,
    O_WRAPPED = 1 << 5,
    O_CONTEXT = 1 << 6,
    O_POLICY = 1 << 7,
    O_TTL = 1 << 8,
    O_ADMIN = 1 << 9,
    O_OUTPUT = 1 << 10,
};

enum {
    OPT_JSON = 2000,
    OPT_PREFIX,
    OPT_AUTO_ROTATE,
    OPT_MIN_VERSION,
    OPT_DELAY,
    OPT_BITS,
    OPT_WRAPPED,
    OPT_CONTEXT,
    OPT_POLICY,
    OPT_TTL,
    OPT_ADMIN,
};

static const struct option longopts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {"kms-url", required_argument, NULL, CLI_OPT_KMS_URL},
    CLI_KMS_TRUST_LONGOPTS,
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"auto-rotate", required_argument, NULL, OPT_AUTO_ROTATE},
    {"min-decryption-version", required_argument, NULL, OPT_MIN_VERSION},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"bits", required_argument, NULL, OPT_BITS},
    {"wrapped-only", no_argument, NULL, OPT_WRAPPED},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"admin", no_argument, NULL, OPT_ADMIN},
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

/* One run of a command: its options, operands, request and answer. */
struct run {
    const struct command *cmd;
    bool json;
    struct cli_kms_opts kms;
    const char *prefix, *output;
    int64_t auto_rotate, min_version, delay, ttl; // -1: not given
    unsigned bits;
    bool wrapped_only, admin;
    const char **policies, **context; // argv pointers; context items are KEY=VALUE
    size_t npolicies, ncontext;
    char **args; // the operands
    /* the request */
    char path[512];
    sbx_buf body; // wiped: it may carry a plaintext
    sbx_buf input;
    /* the answer */
    sbx_buf answer;
    sbx_kms_json *doc;  // NULL for an empty answer
    const char *server; // the client's URL (borrowed)
};

struct command {
    const char *group; // "key", "token", ...; NULL for a command of its own
    const char *verb;
    const char *operands; // for messages: "NAME VERSION"
    int nargs;
    unsigned opts;
    const char *method, *path;   // the request; '*' in path: the first operand
    bool retry;                  // the request may be repeated (idempotent)
    int (*build)(struct run *r); // body, path suffix; CLI_OK, CLI_USAGE or CLI_FAIL (reported)
    int (*show)(struct run *r);  // prints the answer as a table or text
};

/* ------------------------------------------------------------------ output */

/* Text from the server made safe for a terminal: control characters become '?'. */
static void
sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* The text at the pointer fmt... of the answer (malloc'ed; "" when absent, NULL: no memory). */
static char *get(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
get(const struct run *r, const char *fmt, ...)
{
    char pointer[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pointer, sizeof pointer, fmt, ap);
    va_end(ap);
    sbx_buf b = SBX_BUF_INIT;
    if (kms_dl_get()->json_text(r->doc, pointer, &b) < 0 || b.len == 0) {
        sbx_buf_dispose(&b);
        return strdup("");
    }
    char *s = strndup((const char *)b.ptr, b.len);
    sbx_buf_dispose(&b);
    if (s != NULL)
        sanitize(s);
    return s;
}

/* The strings of the array at pointer, joined by ", " ("-" when none). */
static char *
joined(const struct run *r, const char *pointer)
{
    size_t n = kms_dl_get()->json_count(r->doc, pointer);
    sbx_buf b = SBX_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char *s = get(r, "%s/%zu", pointer, i);
        if (s == NULL || sbx_buf_append(&b, i ? ", " : "", i ? 2 : 0) < 0 ||
            sbx_buf_append(&b, s, strlen(s) + 1) < 0) {
            free(s);
            sbx_buf_dispose(&b);
            return NULL;
        }
        b.len--; // keep the NUL out of the length
        free(s);
    }
    char *s = strdup(n > 0 ? (const char *)b.ptr : "-");
    sbx_buf_dispose(&b);
    return s;
}

/* A time in seconds since 1970 as UTC text; zero is written as none. */
static char *
when(const struct run *r, const char *pointer, const char *none)
{
    char *s = get(r, "%s", pointer), *end, text[64];
    if (s == NULL)
        return NULL;
    long long t = strtoll(s, &end, 10);
    struct tm tm;
    time_t tt = (time_t)t;
    if (*s == '\0' || *end != '\0')
        return s;
    free(s);
    if (t == 0)
        return strdup(none);
    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(text, sizeof text, "%lld", t);
    return strdup(text);
}

/* A table: rows of malloc'ed cells, printed with columns aligned. */
struct table {
    size_t ncols, ncells;
    char **cells;
    bool nomem;
};

/* Add a cell (taken; NULL means no memory). */
static void
cell(struct table *t, char *s)
{
    char **grown = s != NULL ? realloc(t->cells, (t->ncells + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(s);
        t->nomem = true;
        return;
    }
    t->cells = grown;
    t->cells[t->ncells++] = s;
}

/* Display width of UTF-8 text: its code points. */
static size_t
width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Print the table and free it. @return CLI_OK or CLI_FAIL (no memory). */
static int
table_print(struct table *t)
{
    size_t w[8] = {0};
    int rc = CLI_OK;
    if (t->nomem) {
        cli_errorf("out of memory");
        rc = CLI_FAIL;
    }
    for (size_t i = 0; rc == CLI_OK && i < t->ncells; i++) {
        size_t c = i % t->ncols, n = width(t->cells[i]);
        w[c] = n > w[c] ? n : w[c];
    }
    for (size_t i = 0; rc == CLI_OK && i < t->ncells; i++) {
        size_t c = i % t->ncols;
        bool last = c + 1 == t->ncols;
        fputs(t->cells[i], stdout);
        for (size_t p = width(t->cells[i]); !last && p < w[c] + 2; p++)
            fputc(' ', stdout);
        if (last)
            fputc('\n', stdout);
    }
    for (size_t i = 0; i < t->ncells; i++) { // a cell may hold a data key or a token
        sbx_wipe(t->cells[i], strlen(t->cells[i]));
        free(t->cells[i]);
    }
    free(t->cells);
    return rc;
}

/* An empty table of ncols columns, with one header per column after ncols. */
static void
table_init(struct table *t, size_t ncols, ...)
{
    va_list ap;
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    va_start(ap, ncols);
    for (size_t i = 0; i < ncols; i++)
        cell(t, strdup(va_arg(ap, const char *)));
    va_end(ap);
}

/* ------------------------------------------------------------------ request bodies */

/* Append formatted text to the body. */
static void body_printf(struct run *r, bool *nomem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
body_printf(struct run *r, bool *nomem, const char *fmt, ...)
{
    char text[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text || sbx_buf_append(&r->body, text, (size_t)n) < 0)
        *nomem = true;
}

/* Append a JSON string; false for text that is not UTF-8 (nomem set on no memory). */
static bool
body_string(struct run *r, bool *nomem, const char *s)
{
    bool lossless = true;
    if (sbx_json_quote(&r->body, s, &lossless) < 0)
        *nomem = true;
    return lossless;
}

/* Finish the body: add its NUL. @return CLI_OK or CLI_FAIL (no memory). */
static int
body_end(struct run *r, bool nomem)
{
    if (nomem || sbx_buf_append(&r->body, "", 1) < 0) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    r->body.len--;
    return CLI_OK;
}

/* Append `,"policies":[...],"admin":...` from the options. */
static int
body_grants(struct run *r, bool *nomem)
{
    body_printf(r, nomem, "\"policies\":[");
    for (size_t i = 0; i < r->npolicies; i++) {
        body_printf(r, nomem, "%s", i ? "," : "");
        if (!body_string(r, nomem, r->policies[i]))
            return cli_usage_errorf("kms", "--policy %s: not UTF-8 text", r->policies[i]);
    }
    body_printf(r, nomem, "],\"admin\":%s", r->admin ? "true" : "false");
    return CLI_OK;
}

/* Append `"context":{...}` from --context KEY=VALUE (nothing when none). */
static int
body_context(struct run *r, bool *nomem)
{
    if (r->ncontext == 0)
        return CLI_OK;
    body_printf(r, nomem, ",\"context\":{");
    for (size_t i = 0; i < r->ncontext; i++) {
        const char *kv = r->context[i], *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv)
            return cli_usage_errorf("kms", "--context %s: give KEY=VALUE", kv);
        for (size_t j = 0; j < i; j++)
            if (strncmp(r->context[j], kv, (size_t)(eq - kv) + 1) == 0)
                return cli_usage_errorf("kms", "--context %.*s given twice", (int)(eq - kv), kv);
        char *key = strndup(kv, (size_t)(eq - kv));
        if (key == NULL) {
            *nomem = true;
            return CLI_OK;
        }
        body_printf(r, nomem, "%s", i ? "," : "");
        bool ok = body_string(r, nomem, key);
        free(key);
        body_printf(r, nomem, ":");
        if (!ok || !body_string(r, nomem, eq + 1))
            return cli_usage_errorf("kms", "--context %s: not UTF-8 text", kv);
    }
    body_printf(r, nomem, "}");
    return CLI_OK;
}

/* End a data-plane body: the context, '}', the NUL. @return CLI_OK, CLI_USAGE or CLI_FAIL. */
static int
body_close(struct run *r, bool nomem)
{
    int rc = body_context(r, &nomem);
    body_printf(r, &nomem, "}");
    return rc != CLI_OK ? rc : body_end(r, nomem);
}

/* ------------------------------------------------------------------ paths */

/* Append s to the path, percent-encoding all but A-Z a-z 0-9 - . _ ~ (RFC 3986). */
static bool
path_segment(char *path, size_t cap, const char *s)
{
    size_t n = strlen(path);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (n + 4 > cap)
            return false;
        n += plain ? (size_t)snprintf(path + n, cap - n, "%c", c)
                   : (size_t)snprintf(path + n, cap - n, "%%%02X", c);
    }
    return true;
}

/*
 * r->path from the command's path, its '*' replaced by the first operand,
 * encoded. A key name is checked; no name may hold '/' (the server decodes
 * the path before routing it). @return CLI_OK or CLI_USAGE.
 */
static int
make_path(struct run *r)
{
    const char *tpl = r->cmd->path, *star = strchr(tpl, '*'), *name = r->args[0];
    if (star == NULL) {
        snprintf(r->path, sizeof r->path, "%s", tpl);
        return CLI_OK;
    }
    if (strncmp(tpl, "/v1/keys/", 9) == 0 && sbx_kms_key_name_check(name) < 0)
        return cli_usage_errorf("kms", "%s", sbx_error_last()->message);
    if (name[0] == '\0' || strchr(name, '/') != NULL)
        return cli_usage_errorf("kms",
                                "'%s': a name the server can address is not empty and "
                                "holds no '/'",
                                name);
    snprintf(r->path, sizeof r->path, "%.*s", (int)(star - tpl), tpl);
    if (!path_segment(r->path, sizeof r->path - 64, name))
        return cli_usage_errorf("kms", "'%.40s...' is too long", name);
    size_t n = strlen(r->path);
    snprintf(r->path + n, sizeof r->path - n, "%s", star + 1);
    return CLI_OK;
}

/* Append a formatted suffix (a version, a query) to the path. */
static void path_printf(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
path_printf(struct run *r, const char *fmt, ...)
{
    va_list ap;
    size_t n = strlen(r->path);
    va_start(ap, fmt);
    vsnprintf(r->path + n, sizeof r->path - n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ builders */

/* Builders complete a request after make_path: the body, a path suffix. */

static int
b_key_create(struct run *r)
{
    bool nomem = false;
    if (r->auto_rotate >= 0)
        body_printf(r, &nomem, "{\"auto_rotate_period\":%" PRId64 "}", r->auto_rotate);
    else
        body_printf(r, &nomem, "{}");
    return body_end(r, nomem);
}

static int
b_key_list(struct run *r)
{
    if (r->prefix == NULL || r->prefix[0] == '\0')
        return CLI_OK;
    if (!sbx_kms_key_prefix_valid(r->prefix))
        return cli_usage_errorf("kms",
                                "--prefix %s: a key name prefix is at most %d of A-Z "
                                "a-z 0-9 . _ -",
                                r->prefix, SBX_KMS_KEY_NAME_MAX);
    path_printf(r, "?prefix=%s", r->prefix);
    return CLI_OK;
}

static int
b_key_config(struct run *r)
{
    bool nomem = false;
    if (r->min_version < 0 && r->auto_rotate < 0)
        return cli_usage_errorf("kms", "key config: give --min-decryption-version N and/or "
                                       "--auto-rotate SECONDS");
    body_printf(r, &nomem, "{");
    if (r->min_version >= 0)
        body_printf(r, &nomem, "\"min_decryption_version\":%" PRId64, r->min_version);
    if (r->auto_rotate >= 0)
        body_printf(r, &nomem, "%s\"auto_rotate_period\":%" PRId64, r->min_version >= 0 ? "," : "",
                    r->auto_rotate);
    body_printf(r, &nomem, "}");
    return body_end(r, nomem);
}

static int
b_key_delete(struct run *r)
{
    if (r->delay >= 0)
        path_printf(r, "?delay=%" PRId64, r->delay);
    return CLI_OK;
}

static int
b_key_destroy(struct run *r)
{
    int v;
    if (!cli_parse_int(&v, r->args[1], 1, INT32_MAX))
        return cli_usage_errorf("kms",
                                "key destroy-version: VERSION must be a number from 1, "
                                "not '%s'",
                                r->args[1]);
    path_printf(r, "%d/destroy", v);
    return CLI_OK;
}

static int
b_datakey(struct run *r)
{
    bool nomem = false;
    body_printf(r, &nomem, "{\"bits\":%u%s", r->bits ? r->bits : 256,
                r->wrapped_only ? ",\"wrapped_only\":true" : "");
    return body_close(r, nomem);
}

static int
b_encrypt(struct run *r)
{
    bool nomem = false;
    if (cli_read_small_file(&r->input, "-", "plaintext", false) < 0)
        return CLI_FAIL;
    if (r->input.len > INPUT_MAX) {
        cli_errorf("the plaintext on standard input is over %zu bytes (the key server encrypts "
                   "small secrets, at most 32 KiB; encrypt files with sbx encrypt --kms)",
                   INPUT_MAX);
        return CLI_FAIL;
    }
    size_t cap = SBX_BASE64_PAD_LEN(r->input.len) + 1;
    body_printf(r, &nomem, "{\"plaintext\":\"");
    if (!nomem && sbx_buf_reserve(&r->body, cap) == 0) {
        long n = sbx_base64_encode((char *)r->body.ptr + r->body.len, cap, r->input.ptr,
                                   r->input.len, true);
        r->body.len += n > 0 ? (size_t)n : 0;
    } else {
        nomem = true;
    }
    body_printf(r, &nomem, "\"");
    return body_close(r, nomem);
}

/* decrypt and rewrap: {"ciphertext": standard input, trimmed, "context": ...}. */
static int
b_ciphertext(struct run *r)
{
    bool nomem = false;
    if (cli_read_small_file(&r->input, "-", "ciphertext", false) < 0 ||
        sbx_buf_append(&r->input, "", 1) < 0)
        return CLI_FAIL;
    // one line of text: blanks around it dropped, none inside, no NUL
    char *ct = (char *)r->input.ptr;
    size_t n = r->input.len - 1;
    while (n > 0 && strchr(" \t\r\n", ct[n - 1]) != NULL)
        ct[--n] = '\0';
    ct += strspn(ct, " \t\r\n");
    if (*ct == '\0' || strlen(ct) != n - (size_t)(ct - (char *)r->input.ptr) ||
        strpbrk(ct, " \t\r\n") != NULL || n > INPUT_MAX) {
        cli_errorf("standard input must hold one ciphertext, sbx:v<N>:<base64> (as sbx kms "
                   "encrypt writes it)");
        return CLI_FAIL;
    }
    body_printf(r, &nomem, "{\"ciphertext\":");
    body_string(r, &nomem, ct);
    return body_close(r, nomem);
}

static int
b_token_create(struct run *r)
{
    bool nomem = false;
    body_printf(r, &nomem, "{\"name\":");
    if (!body_string(r, &nomem, r->args[0]))
        return cli_usage_errorf("kms", "token create: NAME is not UTF-8 text");
    body_printf(r, &nomem, ",\"ttl\":%" PRId64 ",", r->ttl >= 0 ? r->ttl : 0);
    int rc = body_grants(r, &nomem);
    body_printf(r, &nomem, "}");
    return rc != CLI_OK ? rc : body_end(r, nomem);
}

static int
b_policy_put(struct run *r)
{
    sbx_kms_json *doc = NULL;
    const struct kms_dl *kms = kms_dl_get();
    if (cli_read_small_file(&r->body, r->args[1], "policy file", false) < 0)
        return CLI_FAIL;
    const char *what = strcmp(r->args[1], "-") != 0 ? r->args[1] : "(standard input)";
    if (memchr(r->body.ptr, '\0', r->body.len) != NULL) {
        cli_errorf("policy file %s: not JSON: it holds a NUL byte", what);
        return CLI_FAIL;
    }
    if (kms->json_parse(&doc, r->body.ptr, r->body.len) < 0) {
        cli_errorf("policy file %s: %s", what, sbx_error_last()->message);
        return CLI_FAIL;
    }
    kms->json_free(doc);
    return body_end(r, false);
}

static int
b_cert_map(struct run *r)
{
    bool nomem = false;
    body_printf(r, &nomem, "{");
    int rc = body_grants(r, &nomem);
    body_printf(r, &nomem, "}");
    return rc != CLI_OK ? rc : body_end(r, nomem);
}

/* ------------------------------------------------------------------ tables */

/* A two-column table of label, value pairs: the pointers of the answer. */
/* Label, value rows into t: the labels and pointers of the answer in fields. */
static void
fields_add(struct table *t, const struct run *r, const char *const *fields)
{
    for (size_t i = 0; fields[i] != NULL; i += 2) {
        cell(t, strdup(fields[i]));
        cell(t, get(r, "%s", fields[i + 1]));
    }
}

static int
s_status(struct run *r)
{
    static const char *const f[] = {"status",   "/status", "version", "/version", "storage",
                                    "/storage", "dev",     "/dev",    NULL};
    struct table t = {.ncols = 2};
    cell(&t, strdup("server"));
    cell(&t, strdup(r->server != NULL ? r->server : "-"));
    fields_add(&t, r, f);
    return table_print(&t);
}

static int
s_key(struct run *r)
{
    struct table t = {.ncols = 2};
    static const char *const f[] = {"name",
                                    "/name",
                                    "id",
                                    "/id",
                                    "latest version",
                                    "/latest_version",
                                    "min decryption version",
                                    "/min_decryption_version",
                                    NULL};
    fields_add(&t, r, f);
    cell(&t, strdup("auto rotate period"));
    char *p = get(r, "/auto_rotate_period");
    if (p != NULL && strcmp(p, "0") == 0) {
        free(p);
        p = strdup("off");
    }
    cell(&t, p);
    cell(&t, strdup("created"));
    cell(&t, when(r, "/created", "-"));
    cell(&t, strdup("rotated"));
    cell(&t, when(r, "/rotated", "-"));
    cell(&t, strdup("deletion time"));
    cell(&t, when(r, "/deletion_time", "none scheduled"));
    int rc = table_print(&t);
    size_t n = kms_dl_get()->json_count(r->doc, "/versions");
    if (rc != CLI_OK || n == 0)
        return rc;
    fputc('\n', stdout);
    table_init(&t, 3, "VERSION", "CREATED", "STATE");
    for (size_t i = 0; i < n; i++) {
        char ptr[64];
        cell(&t, get(r, "/versions/%zu/version", i));
        snprintf(ptr, sizeof ptr, "/versions/%zu/created", i);
        cell(&t, when(r, ptr, "-"));
        cell(&t, get(r, "/versions/%zu/state", i));
    }
    return table_print(&t);
}

/* A one-column list: the strings of the array at pointer under a header. */
static int
s_names(struct run *r, const char *pointer, const char *header)
{
    struct table t;
    size_t n = kms_dl_get()->json_count(r->doc, pointer);
    table_init(&t, 1, header);
    for (size_t i = 0; i < n; i++)
        cell(&t, get(r, "%s/%zu", pointer, i));
    return table_print(&t);
}

static int
s_key_list(struct run *r)
{
    return s_names(r, "/keys", "NAME");
}

static int
s_datakey(struct run *r)
{
    static const char *const f[] = {"key version", "/key_version", "ciphertext", "/ciphertext",
                                    "plaintext",   "/plaintext",   NULL};
    static const char *const wrapped[] = {"key version", "/key_version", "ciphertext",
                                          "/ciphertext", NULL};
    struct table t = {.ncols = 2};
    fields_add(&t, r, r->wrapped_only ? wrapped : f);
    return table_print(&t);
}

/* encrypt, rewrap: the ciphertext text and a newline. */
static int
s_ciphertext(struct run *r)
{
    char *ct = get(r, "/ciphertext");
    if (ct == NULL || ct[0] == '\0') {
        cli_errorf("key server: the answer to %s %s has no ciphertext", r->cmd->method, r->path);
        free(ct);
        return CLI_FAIL;
    }
    printf("%s\n", ct);
    free(ct);
    return CLI_OK;
}

static int
s_decrypt(struct run *r)
{
    sbx_buf b64 = SBX_BUF_INIT, pt = SBX_BUF_INIT;
    int rc = CLI_FAIL;
    size_t len = 0;
    if (kms_dl_get()->json_text(r->doc, "/plaintext", &b64) < 0 ||
        sbx_buf_reserve(&pt, SBX_BASE64_DECODED_MAX(b64.len) + 1) < 0 ||
        sbx_base64_decode(pt.ptr, SBX_BASE64_DECODED_MAX(b64.len) + 1, &len, (const char *)b64.ptr,
                          b64.len, true) < 0)
        cli_errorf("key server: the answer to %s %s has no base64 plaintext", r->cmd->method,
                   r->path);
    else if (fwrite(pt.ptr, 1, len, stdout) == len)
        rc = CLI_OK;
    sbx_wipe(pt.ptr, len);
    sbx_buf_dispose(&pt);
    sbx_buf_dispose(&b64);
    return rc;
}

/* Write the new token to -o FILE (0600). @return CLI_OK or CLI_FAIL (reported). */
static int
token_save(struct run *r, const char *token)
{
    sbx_sink *out = NULL;
    int rc = cli_open_output(&out, r->output, 0600) < 0 ? CLI_FAIL : CLI_OK;
    if (rc == CLI_OK &&
        (sbx_sink_write(out, (const uint8_t *)token, strlen(token)) < 0 ||
         sbx_sink_write(out, (const uint8_t *)"\n", 1) < 0 || sbx_sink_finish(out) < 0)) {
        cli_error_lib(r->output);
        rc = CLI_FAIL;
    }
    sbx_sink_free(out);
    if (rc != CLI_OK) {
        char *id = get(r, "/id");
        cli_hintf("the token was created but not saved: revoke it with sbx kms token revoke %s",
                  id != NULL ? id : "ID");
        free(id);
    }
    return rc;
}

static int
s_token_create(struct run *r)
{
    struct table t = {.ncols = 2};
    int rc = CLI_FAIL;
    char *token = get(r, "/token");
    if (token == NULL || token[0] == '\0')
        cli_errorf("key server %s: the answer to POST /v1/tokens has no token", r->server);
    else if (r->output == NULL || (rc = token_save(r, token)) == CLI_OK) {
        size_t n = r->output != NULL ? strlen(r->output) + 16 : 0;
        char *where = n > 0 ? malloc(n) : NULL;
        if (where != NULL)
            snprintf(where, n, "(written to %s)", r->output);
        cell(&t, strdup("token"));
        cell(&t, r->output != NULL ? where : strdup(token));
        cell(&t, strdup("id"));
        cell(&t, get(r, "/id"));
        cell(&t, strdup("expires"));
        cell(&t, when(r, "/expires", "never"));
        rc = table_print(&t);
    }
    if (token != NULL)
        sbx_wipe(token, strlen(token));
    free(token);
    return rc;
}

static int
s_token_list(struct run *r)
{
    struct table t;
    size_t n = kms_dl_get()->json_count(r->doc, "/tokens");
    table_init(&t, 6, "ID", "NAME", "POLICIES", "ADMIN", "CREATED", "EXPIRES");
    for (size_t i = 0; i < n; i++) {
        char p[64];
        cell(&t, get(r, "/tokens/%zu/id", i));
        cell(&t, get(r, "/tokens/%zu/name", i));
        snprintf(p, sizeof p, "/tokens/%zu/policies", i);
        cell(&t, joined(r, p));
        cell(&t, get(r, "/tokens/%zu/admin", i));
        snprintf(p, sizeof p, "/tokens/%zu/created", i);
        cell(&t, when(r, p, "-"));
        snprintf(p, sizeof p, "/tokens/%zu/expires", i);
        cell(&t, when(r, p, "never"));
    }
    return table_print(&t);
}

/* A policy document: one row per rule. */
static int
s_policy(struct run *r)
{
    struct table t;
    size_t n = kms_dl_get()->json_count(r->doc, "/rules");
    printf("policy %s\n", r->args[0]);
    table_init(&t, 2, "KEYS", "OPERATIONS");
    for (size_t i = 0; i < n; i++) {
        char p[64];
        cell(&t, get(r, "/rules/%zu/keys", i));
        snprintf(p, sizeof p, "/rules/%zu/ops", i);
        cell(&t, joined(r, p));
    }
    return table_print(&t);
}

static int
s_policy_list(struct run *r)
{
    return s_names(r, "/policies", "POLICY");
}

/* One certificate mapping, or all of them (array at "/certs"). */
static int
s_certs(struct run *r, const char *array)
{
    struct table t;
    size_t n = array != NULL ? kms_dl_get()->json_count(r->doc, array) : 1;
    table_init(&t, 3, "CN", "POLICIES", "ADMIN");
    for (size_t i = 0; i < n; i++) {
        char p[64];
        if (array != NULL)
            snprintf(p, sizeof p, "%s/%zu", array, i);
        else
            p[0] = '\0';
        cell(&t, get(r, "%s/cn", p));
        size_t used = strlen(p);
        snprintf(p + used, sizeof p - used, "/policies");
        cell(&t, joined(r, p));
        p[used] = '\0';
        cell(&t, get(r, "%s/admin", p));
    }
    return table_print(&t);
}

static int
s_cert_map(struct run *r)
{
    return s_certs(r, NULL);
}

static int
s_cert_list(struct run *r)
{
    return s_certs(r, "/certs");
}

/* A deletion (204, no answer): what was done. */
static int
s_done(struct run *r)
{
    const char *what = strcmp(r->cmd->group, "token") == 0    ? "revoked token"
                       : strcmp(r->cmd->group, "policy") == 0 ? "deleted policy"
                                                              : "unmapped certificate CN";
    printf("%s %s\n", what, r->args[0]);
    return CLI_OK;
}

/* ------------------------------------------------------------------ the table */

/*
 * One row per command: its request is method and path (a '*' stands for the
 * first operand), completed by build (NULL: nothing to add); retry says
 * whether the request may be repeated (reads and the data plane).
 */
static const struct command commands[] = {
    {NULL, "status", "", 0, 0, "GET", "/v1/health", true, NULL, s_status},
    {"key", "create", "NAME", 1, O_AUTO_ROTATE, "POST", "/v1/keys/*", false, b_key_create, s_key},
    {"key", "show", "NAME", 1, 0, "GET", "/v1/keys/*", true, NULL, s_key},
    {"key", "list", "", 0, O_PREFIX, "GET", "/v1/keys", true, b_key_list, s_key_list},
    {"key", "rotate", "NAME", 1, 0, "POST", "/v1/keys/*/rotate", false, NULL, s_key},
    {"key", "config", "NAME", 1, O_MIN_VERSION | O_AUTO_ROTATE, "POST", "/v1/keys/*/config", false,
     b_key_config, s_key},
    {"key", "delete", "NAME", 1, O_DELAY, "DELETE", "/v1/keys/*", false, b_key_delete, s_key},
    {"key", "restore", "NAME", 1, 0, "POST", "/v1/keys/*/restore", false, NULL, s_key},
    {"key", "destroy-version", "NAME VERSION", 2, 0, "POST", "/v1/keys/*/versions/", false,
     b_key_destroy, s_key},
    {NULL, "datakey", "NAME", 1, O_BITS | O_WRAPPED | O_CONTEXT, "POST", "/v1/keys/*/datakey", true,
     b_datakey, s_datakey},
    {NULL, "encrypt", "NAME", 1, O_CONTEXT, "POST", "/v1/keys/*/encrypt", true, b_encrypt,
     s_ciphertext},
    {NULL, "decrypt", "NAME", 1, O_CONTEXT, "POST", "/v1/keys/*/decrypt", true, b_ciphertext,
     s_decrypt},
    {NULL, "rewrap", "NAME", 1, O_CONTEXT, "POST", "/v1/keys/*/rewrap", true, b_ciphertext,
     s_ciphertext},
    {"token", "create", "NAME", 1, O_POLICY | O_TTL | O_ADMIN | O_OUTPUT, "POST", "/v1/tokens",
     false, b_token_create, s_token_create},
    {"token", "list", "", 0, 0, "GET", "/v1/tokens", true, NULL, s_token_list},
    {"token", "revoke", "ID", 1, 0, "DELETE", "/v1/tokens/*", false, NULL, s_done},
    {"policy", "put", "NAME FILE", 2, 0, "PUT", "/v1/policies/*", false, b_policy_put, s_policy},
    {"policy", "get", "NAME", 1, 0, "GET", "/v1/policies/*", true, NULL, s_policy},
    {"policy", "list", "", 0, 0, "GET", "/v1/policies", true, NULL, s_policy_list},
    {"policy", "delete", "NAME", 1, 0, "DELETE", "/v1/policies/*", false, NULL, s_done},
    {"cert", "map", "CN", 1, O_POLICY | O_ADMIN, "PUT", "/v1/certs/*", false, b_cert_map,
     s_cert_map},
    {"cert", "list", "", 0, 0, "GET", "/v1/certs", true, NULL, s_cert_list},
    {"cert", "unmap", "CN", 1, 0, "DELETE", "/v1/certs/*", false, NULL, s_done},
};

/* ------------------------------------------------------------------ running */

/* Option c's bit among struct command.opts; 0 for the options of every command. */
static unsigned
option_bit(int c)
{
    switch (c) {
    case OPT_PREFIX:
        return O_PREFIX;
    case OPT_AUTO_ROTATE:
        return O_AUTO_ROTATE;
    case OPT_MIN_VERSION:
        return O_MIN_VERSION;
    case OPT_DELAY:
        return O_DELAY;
    case OPT_BITS:
        return O_BITS;
    case OPT_WRAPPED:
        return O_WRAPPED;
    case OPT_CONTEXT:
        return O_CONTEXT;
    case OPT_POLICY:
        return O_POLICY;
    case OPT_TTL:
        return O_TTL;
    case OPT_ADMIN:
        return O_ADMIN;
    case 'o':
        return O_OUTPUT;
    default:
        return 0;
    }
}

/* The long name of option c. */
static const char *
option_name(int c)
{
    if (c == 'o')
        return "o";
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* A count of seconds or a version: a decimal number from 0. */
static bool
parse_count(int64_t *out, const char *s)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    *out = v;
    return errno == 0 && *end == '\0';
}

/* Take one option. @return CLI_OK or CLI_USAGE (reported). */
static int
take_option(struct run *r, int c, const char *arg)
{
    int64_t v = 0;
    switch (c) {
    case OPT_JSON:
        r->json = true;
        return CLI_OK;
    case OPT_PREFIX:
        r->prefix = arg;
        return CLI_OK;
    case OPT_WRAPPED:
        r->wrapped_only = true;
        return CLI_OK;
    case OPT_ADMIN:
        r->admin = true;
        return CLI_OK;
    case 'o':
        r->output = arg;
        return CLI_OK;
    case OPT_CONTEXT:
        r->context[r->ncontext++] = arg;
        return CLI_OK;
    case OPT_POLICY:
        r->policies[r->npolicies++] = arg;
        return CLI_OK;
    case OPT_BITS:
        if (strcmp(arg, "128") != 0 && strcmp(arg, "256") != 0 && strcmp(arg, "512") != 0)
            return cli_usage_errorf("kms", "--bits %s: data keys are 128, 256 or 512 bits", arg);
        r->bits = (unsigned)atoi(arg);
        return CLI_OK;
    default:
        break;
    }
    if (!parse_count(&v, arg))
        return cli_usage_errorf("kms", "option --%s needs a number from 0, not '%s'",
                                option_name(c), arg);
    *(c == OPT_AUTO_ROTATE   ? &r->auto_rotate
      : c == OPT_MIN_VERSION ? &r->min_version
      : c == OPT_DELAY       ? &r->delay
                             : &r->ttl) = v;
    return CLI_OK;
}

/* Parse argv (argv[0]: the verb) for r->cmd. @return CLI_OK, or CLI_USAGE (reported), or -1 for
 * --help. */
static int
parse(struct run *r, int argc, char **argv)
{
    const struct command *cmd = r->cmd;
    int c, rc;
    optind = 0; // GNU getopt: start afresh, and permute (flags may follow the operands)
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        if (c == 'h')
            return -1;
        if (c == '?' || c == ':')
            return cli_bad_option("kms", c, argv, longopts);
        unsigned bit = option_bit(c);
        if (bit != 0 && (cmd->opts & bit) == 0)
            return cli_usage_errorf("kms", "%s%s does not apply to sbx kms %s%s%s",
                                    c == 'o' ? "-" : "--", option_name(c),
                                    cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb);
        if (cli_kms_option(&r->kms, c, optarg))
            continue;
        if ((rc = take_option(r, c, optarg)) != CLI_OK)
            return rc;
    }
    if (argc - optind != cmd->nargs)
        return cli_usage_errorf("kms", "sbx kms %s%s%s takes %s%s", cmd->group ? cmd->group : "",
                                cmd->group ? " " : "", cmd->verb,
                                cmd->nargs ? cmd->operands : "no operands",
                                argc - optind > cmd->nargs ? " (too many operands)" : "");
    if (r->output != NULL && r->json)
        return cli_usage_errorf("kms", "-o and --json do not go together (the JSON holds the "
                                       "token)");
    r->args = argv + optind;
    return CLI_OK;
}

/* Send the request and keep the answer. @return CLI_OK or CLI_FAIL (reported). */
static int
exchange(struct run *r, sbx_kms_client *client)
{
    const struct kms_dl *kms = kms_dl_get();
    long status = 0;
    int err = kms->request(client, r->cmd->method, r->path,
                           r->body.len > 0 ? (const char *)r->body.ptr : NULL, r->cmd->retry,
                           &status, &r->answer);
    if (err < 0) {
        cli_error_lib(NULL);
        cli_kms_hint(err);
        return CLI_FAIL;
    }
    if (r->answer.len > 0 && kms->json_parse(&r->doc, r->answer.ptr, r->answer.len) < 0) {
        cli_errorf("key server: the answer to %s %s (HTTP %ld) is not JSON: %s", r->cmd->method,
                   r->path, status, sbx_error_last()->message);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Print the answer as it came (--json), with a final newline. */
static int
print_json(const struct run *r)
{
    if (r->answer.len == 0)
        return CLI_OK; // 204: the server sent nothing
    fwrite(r->answer.ptr, 1, r->answer.len, stdout);
    if (r->answer.ptr[r->answer.len - 1] != '\n')
        fputc('\n', stdout);
    return CLI_OK;
}

static int
run(struct run *r, int argc, char **argv)
{
    sbx_kms_client *client = NULL;
    int rc = parse(r, argc, argv);
    if (rc == -1) {
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    if (rc == CLI_OK && kms_dl_get() == NULL) {
        cli_error_lib(NULL);
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK)
        rc = make_path(r);
    if (rc == CLI_OK && r->cmd->build != NULL)
        rc = r->cmd->build(r);
    if (rc == CLI_OK && cli_kms_client(&client, &r->kms) < 0)
        rc = CLI_FAIL;
    if (rc == CLI_OK) {
        r->server = kms_dl_get()->client_url(client, 0);
        rc = exchange(r, client);
    }
    if (rc == CLI_OK)
        rc = r->json ? print_json(r) : r->cmd->show(r);
    if (rc == CLI_OK && (fflush(stdout) != 0 || ferror(stdout))) {
        cli_errorf("cannot write to standard output");
        rc = CLI_FAIL;
    }
    if (client != NULL)
        kms_dl_get()->client_free(client);
    return rc;
}

/* The command named by argv[0] (and argv[1] for a group); *skip: words used. */
static const struct command *
find(int argc, char **argv, int *skip)
{
    bool group = false;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const struct command *c = &commands[i];
        if (c->group == NULL && strcmp(c->verb, argv[0]) == 0) {
            *skip = 0;
            return c;
        }
        if (c->group != NULL && strcmp(c->group, argv[0]) == 0) {
            group = true;
            if (argc > 1 && strcmp(c->verb, argv[1]) == 0) {
                *skip = 1;
                return c;
            }
        }
    }
    *skip = group ? 1 : 0;
    return NULL;
}

/* The verbs of a group, for messages ("create, show, ..."). */
static void
verbs(char *out, size_t cap, const char *group)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, group) == 0 && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", commands[i].verb);
}

/* see kms_client.h */
int
kms_client_main(int argc, char **argv)
{
    int skip;
    char list[128];
    const struct command *cmd = find(argc, argv, &skip);
    if (cmd == NULL && argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    if (cmd == NULL) {
        verbs(list, sizeof list, argv[0]);
        if (argc < 2 || argv[1][0] == '-')
            return cli_usage_errorf("kms", "sbx kms %s: give one of %s", argv[0], list);
        return cli_usage_errorf("kms", "sbx kms %s: unknown subcommand '%s' (%s)", argv[0], argv[1],
                                list);
    }
    struct run r = {.cmd = cmd, .auto_rotate = -1, .min_version = -1, .delay = -1, .ttl = -1};
    int rc = CLI_FAIL;
    r.policies = calloc((size_t)argc + 1, sizeof(char *));
    r.context = calloc((size_t)argc + 1, sizeof(char *));
    if (r.policies == NULL || r.context == NULL || cli_kms_opts_init(&r.kms, argc) != CLI_OK)
        cli_errorf("out of memory");
    else
        rc = run(&r, argc - skip, argv + skip);
    if (r.doc != NULL)
        kms_dl_get()->json_free(r.doc);
    sbx_buf_dispose(&r.answer);
    sbx_buf_dispose(&r.body);
    sbx_buf_dispose(&r.input);
    cli_kms_opts_dispose(&r.kms);
    free(r.policies);
    free(r.context);
    return rc;
}
