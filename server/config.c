/*
 * server/config.c - the settings of `sbx kms serve` from flags and from a
 * configuration file read with libinih (see config.h).
 *
 * Implementation notes:
 *  - One table names every setting; kms_config_set is the only place a value
 *    is checked, for flags and file lines alike, so both give the same rules.
 *  - ini_parse calls the handler for every key = value line and returns the
 *    number of the first line that failed (the handler returned 0, or the
 *    line did not parse); the handler keeps the message of the first failure.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY_LIMIT (256u << 20)      /* max-body at most 256 MiB */
#define AUDIT_SIZE_MIN 1024u             /* audit-max-size from 1 KiB */
#define AUDIT_SIZE_MAX ((size_t)1 << 40) /* to 1 TiB */

typedef enum { K_STRING, K_BOOL, K_THREADS, K_SIZE, K_AUDIT_SIZE, K_TIMEOUT, K_LEVEL } kind;

typedef struct {
    const char *name;
    kind kind;
    bool live;  /* applied by SIGHUP */
    size_t off; /* offsetof the field in kms_serve_options */
} setting;

#define F(field) offsetof(kms_serve_options, field)

static const setting settings[] = {
    {"data-dir", K_STRING, false, F(data_dir)},
    {"listen", K_STRING, false, F(listen)},
    {"storage", K_STRING, false, F(storage)},
    {"unseal-passphrase-file", K_STRING, false, F(unseal_passphrase_file)},
    {"tls-cert", K_STRING, true, F(tls_cert)},
    {"tls-key", K_STRING, true, F(tls_key)},
    {"client-ca", K_STRING, true, F(client_ca)},
    {"threads", K_THREADS, false, F(threads)},
    {"max-body", K_SIZE, false, F(max_body)},
    {"timeout", K_TIMEOUT, false, F(timeout)},
    {"audit-fail-closed", K_BOOL, false, F(audit_fail_closed)},
    {"audit-max-size", K_AUDIT_SIZE, false, F(audit_max_size)},
    {"dev", K_BOOL, false, F(dev)},
    {"ready-file", K_STRING, false, F(ready_file)},
    {"log-level", K_LEVEL, true, F(log_level)},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static const setting *
find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static int fail(char err[KMS_CONFIG_ERR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(char err[KMS_CONFIG_ERR_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, KMS_CONFIG_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal number lo..hi, the whole string. */
static bool
parse_uint(unsigned *out, const char *s, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || s[0] == '+' || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

/* A byte count: digits with an optional K, M or G suffix (binary units), 1..limit. */
static bool
parse_size(size_t *out, const char *s, size_t limit)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (errno != 0 || end == s || s[0] == '-' || s[0] == '+')
        return false;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift != 0)
        end++;
    if (*end != '\0' || v == 0 || v > (limit >> shift))
        return false;
    *out = (size_t)(v << shift);
    return true;
}

static char *
pool_add(kms_serve_options *o, const char *s)
{
    char *copy = strdup(s);
    char **pool = copy ? realloc(o->pool, (o->npool + 1) * sizeof *pool) : NULL;
    if (pool == NULL) {
        free(copy);
        return NULL;
    }
    o->pool = pool;
    o->pool[o->npool++] = copy;
    return copy;
}

/* see config.h */
int
kms_config_set(kms_serve_options *o, const char *name, const char *value, bool flag, bool copy,
               char err[KMS_CONFIG_ERR_MAX])
{
    const char *dash = flag ? "--" : "";
    const setting *k = find(name);
    if (k == NULL)
        return fail(err, "unknown setting '%s' (the keys are the long options of sbx kms serve)",
                    name);
    char *field = (char *)o + k->off;
    unsigned n;
    // A file's value is quoted in the error (the line may hold more); a flag's is on the screen.
    char shown[160] = "";
    if (!flag && value != NULL)
        snprintf(shown, sizeof shown, " (not '%.120s')", value);
    if (k->kind == K_BOOL) {
        bool v = true;
        if (value != NULL && strcmp(value, "false") == 0)
            v = false;
        else if (value != NULL && strcmp(value, "true") != 0)
            return fail(err, "%s%s takes true or false%s", dash, name, shown);
        *(bool *)field = v;
        return 0;
    }
    if (value == NULL || value[0] == '\0')
        return fail(err, "%s%s needs a value", dash, name);
    switch (k->kind) {
    case K_STRING:
        if (copy && (value = pool_add(o, value)) == NULL)
            return fail(err, "out of memory");
        *(const char **)field = value;
        return 0;
    case K_THREADS:
        if (!parse_uint(&n, value, 1, 256))
            return fail(err, "%s%s takes a number from 1 to 256%s", dash, name, shown);
        *(unsigned *)field = n;
        return 0;
    case K_TIMEOUT:
        if (!parse_uint(&n, value, 1, 3600))
            return fail(err, "%s%s takes seconds from 1 to 3600%s", dash, name, shown);
        *(unsigned *)field = n;
        return 0;
    case K_SIZE:
        if (!parse_size((size_t *)field, value, MAX_BODY_LIMIT))
            return fail(err, "%s%s takes a byte count from 1 to 256M%s", dash, name, shown);
        return 0;
    case K_AUDIT_SIZE:
        if (!parse_size((size_t *)field, value, AUDIT_SIZE_MAX) ||
            *(size_t *)field < AUDIT_SIZE_MIN)
            return fail(err, "%s%s takes a byte count from 1K to 1024G%s", dash, name, shown);
        return 0;
    case K_LEVEL:
        if (!kms_log_level_parse((kms_log_level *)field, value))
            return fail(err, "%s%s takes error, warn, info or debug%s", dash, name, shown);
        return 0;
    default:
        return fail(err, "internal: setting %s", name);
    }
}

typedef struct {
    kms_serve_options *o;
    char err[KMS_CONFIG_ERR_MAX];
    bool failed;
} file_ctx;

static int
on_line(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *c = user;
    int rc = 0;
    if (c->failed) // ini_parse goes on after a failure: keep the first message
        return 1;
    if (section[0] != '\0')
        rc = fail(c->err, "sections ([%s]) are not used: write key = value lines only", section);
    else if (strcmp(name, "config") == 0)
        rc = fail(c->err, "config cannot be set inside a configuration file");
    else if (find(name) == NULL)
        rc = fail(c->err,
                  "unknown key '%s' (the keys are the long options of sbx kms serve: "
                  "listen, data-dir, storage, max-body, ...)",
                  name);
    else
        rc = kms_config_set(c->o, name, value, false, true, c->err);
    c->failed = rc < 0;
    return rc < 0 ? 0 : 1;
}

/* see config.h */
int
kms_config_file(kms_serve_options *o, const char *path, char err[KMS_CONFIG_ERR_MAX])
{
    file_ctx c = {.o = o};
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return fail(err, "cannot read the configuration file %s: %s", path, strerror(errno));
    int line = ini_parse_file(f, on_line, &c);
    fclose(f);
    if (line == 0)
        return 0;
    if (line < 0)
        return fail(err, "%s: out of memory while reading it", path);
    return fail(err, "%s:%d: %s", path, line, c.failed ? c.err : "not a key = value line");
}

/* see config.h */
int
kms_config_build(kms_serve_options *o, const char *config_file, const kms_config_pair *flags,
                 size_t nflags, char err[KMS_CONFIG_ERR_MAX])
{
    if (config_file != NULL && kms_config_file(o, config_file, err) < 0)
        return -1;
    for (size_t i = 0; i < nflags; i++)
        if (kms_config_set(o, flags[i].name, flags[i].value, true, false, err) < 0)
            return -1;
    o->config_file = config_file;
    o->flags = flags;
    o->nflags = nflags;
    return 0;
}

/* see config.h */
bool
kms_config_is_live(const char *name)
{
    const setting *k = find(name);
    return k != NULL && k->live;
}

static bool
same(const setting *k, const kms_serve_options *a, const kms_serve_options *b)
{
    const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
    switch (k->kind) {
    case K_STRING: {
        const char *sa = *(const char *const *)fa, *sb = *(const char *const *)fb;
        return sa == sb || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
    }
    case K_BOOL:
        return *(const bool *)fa == *(const bool *)fb;
    case K_SIZE:
    case K_AUDIT_SIZE:
        return *(const size_t *)fa == *(const size_t *)fb;
    case K_LEVEL:
        return *(const kms_log_level *)fa == *(const kms_log_level *)fb;
    default:
        return *(const unsigned *)fa == *(const unsigned *)fb;
    }
}

/* see config.h */
void
kms_config_diff(char *out, size_t cap, const kms_serve_options *a, const kms_serve_options *b,
                bool live)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].live != live || same(&settings[i], a, b))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", settings[i].name);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
}

/* see config.h */
int
kms_config_pool_take(kms_serve_options *dst, kms_serve_options *src)
{
    if (src->npool == 0)
        return 0;
    char **pool = realloc(dst->pool, (dst->npool + src->npool) * sizeof *pool);
    if (pool == NULL)
        return -1;
    memcpy(pool + dst->npool, src->pool, src->npool * sizeof *pool);
    dst->pool = pool;
    dst->npool += src->npool;
    free(src->pool);
    src->pool = NULL;
    src->npool = 0;
    return 0;
}

/* see config.h */
void
kms_config_free(kms_serve_options *o)
{
    for (size_t i = 0; i < o->npool; i++)
        free(o->pool[i]);
    free(o->pool);
    o->pool = NULL;
    o->npool = 0;
}
