/*
 * server/log.c - the operational log: JSON lines on stderr (see log.h).
 *
 * Implementation notes:
 *  - A line is built in a growing buffer and written with one write(2) to
 *    fd 2 (O_APPEND semantics are the caller's; a pipe or journal gets whole
 *    lines up to PIPE_BUF, and a single writer per line beyond that).
 *  - Non-ASCII bytes are passed through (the messages are UTF-8); control
 *    characters, quotes and backslashes are escaped.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = KMS_LOG_INFO;
static const char *const level_names[] = {"info", "error", "warn", "info", "debug"};

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} strbuf;

static void
put(strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
put_str(strbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void
put_json(strbuf *b, const char *s)
{
    if (s == NULL) {
        put_str(b, "null");
        return;
    }
    put_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c == '\n') {
            put_str(b, "\\n");
        } else if (c == '\t') {
            put_str(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put_str(b, esc);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put_str(b, "\"");
}

/* see log.h */
bool
kms_log_level_parse(kms_log_level *out, const char *name)
{
    for (int i = KMS_LOG_ERROR; i <= KMS_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (kms_log_level)i;
            return true;
        }
    }
    return false;
}

/* see log.h */
const char *
kms_log_level_name(kms_log_level level)
{
    return level >= KMS_LOG_ERROR && level <= KMS_LOG_DEBUG ? level_names[level] : "info";
}

/* see log.h */
void
kms_log_set_level(kms_log_level level)
{
    atomic_store(&current_level, level == KMS_LOG_UNSET ? KMS_LOG_INFO : (int)level);
}

static void
emit(kms_log_level level, const char *msg, va_list ap)
{
    if ((int)level > atomic_load(&current_level))
        return;
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    strbuf b = {0};
    put_str(&b, "{\"time\":\"");
    put_str(&b, when);
    put_str(&b, "\",\"level\":\"");
    put_str(&b, kms_log_level_name(level));
    put_str(&b, "\",\"msg\":");
    put_json(&b, msg);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        put_str(&b, ",");
        put_json(&b, key);
        put_str(&b, ":");
        put_json(&b, value);
    }
    put_str(&b, "}\n");
    if (!b.failed) {
        size_t off = 0;
        while (off < b.len) {
            ssize_t w = write(STDERR_FILENO, b.p + off, b.len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    free(b.p);
}

/* see log.h */
void
kms_log(kms_log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

static void
emit_none(kms_log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

/* see log.h */
void
kms_logf(kms_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit_none(level, msg, (const char *)NULL);
}
