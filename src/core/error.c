/*
 * src/core/error.c - per-thread error detail (libgit2 model).
 */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#define MSG_CAP 512

static _Thread_local char tl_msg[MSG_CAP];
static _Thread_local sbx_error tl_err = {SBX_OK, 0, NULL};

static const struct {
    int code;
    const char *name;
    const char *text;
} codes[] = {
    {SBX_OK, "SBX_OK", "no error"},
    {SBX_EINVAL, "SBX_EINVAL", "invalid argument"},
    {SBX_ENOMEM, "SBX_ENOMEM", "out of memory"},
    {SBX_EIO, "SBX_EIO", "input/output error"},
    {SBX_EFORMAT, "SBX_EFORMAT", "malformed input"},
    {SBX_EAUTH, "SBX_EAUTH", "authentication failed"},
    {SBX_ENOKEY, "SBX_ENOKEY", "key or passphrase missing"},
    {SBX_ENOTFOUND, "SBX_ENOTFOUND", "not found"},
    {SBX_ETOOBIG, "SBX_ETOOBIG", "input too large"},
    {SBX_ECRYPTO, "SBX_ECRYPTO", "cryptographic library failure"},
    {SBX_EHEADER, "SBX_EHEADER", "malformed or unacceptable age header"},
    {SBX_ENOMATCH, "SBX_ENOMATCH", "no identity matched"},
    {SBX_EMAC, "SBX_EMAC", "header MAC mismatch"},
    {SBX_EPAYLOAD, "SBX_EPAYLOAD", "payload truncated, tampered or with trailing data"},
    {SBX_EARMOR, "SBX_EARMOR", "malformed ASCII armor"},
    {SBX_EEXISTS, "SBX_EEXISTS", "already exists"},
    {SBX_ECANCELED, "SBX_ECANCELED", "canceled"},
    {SBX_EUNSUPPORTED, "SBX_EUNSUPPORTED", "unsupported"},
    {SBX_ECONFLICT, "SBX_ECONFLICT", "conflicting change or state"},
    {SBX_EDENIED, "SBX_EDENIED", "permission denied"},
};

static size_t
code_index(int code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (codes[i].code == code)
            return i;
    }
    return (size_t)-1;
}

/* see strongbox/error.h */
const char *
sbx_strerror(int code)
{
    size_t i = code_index(code);
    return i == (size_t)-1 ? "unknown error code" : codes[i].text;
}

/* see strongbox/error.h */
const char *
sbx_error_name(int code)
{
    size_t i = code_index(code);
    return i == (size_t)-1 ? "SBX_E?" : codes[i].name;
}

/* see strongbox/error.h */
const sbx_error *
sbx_error_last(void)
{
    if (tl_err.message == NULL)
        tl_err.message = sbx_strerror(tl_err.code);
    return &tl_err;
}

/* see strongbox/error.h */
void
sbx_error_clear(void)
{
    tl_err.code = SBX_OK;
    tl_err.sys_errno = 0;
    tl_err.message = NULL;
}

static int
record(int code, int sys_errno, const char *fmt, va_list ap)
{
    char msg[MSG_CAP]; // an argument may be the previous message, i.e. tl_msg itself
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (sys_errno != 0) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(sys_errno));
    }
    memcpy(tl_msg, msg, strlen(msg) + 1);
    tl_err.code = code;
    tl_err.sys_errno = sys_errno;
    tl_err.message = tl_msg;
    return code;
}

/* see strongbox/error.h */
int
sbx_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(code, 0, fmt, ap);
    va_end(ap);
    return code;
}

/* see strongbox/error.h */
int
sbx_error_set_sys(int code, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    record(code, saved, fmt, ap);
    va_end(ap);
    errno = saved;
    return code;
}

/* see strongbox/error.h */
int
sbx_error_prefix(int code, const char *fmt, ...)
{
    char context[MSG_CAP];
    const sbx_error *e = sbx_error_last();
    int sys_errno = e->sys_errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof(context), fmt, ap);
    va_end(ap);
    sbx_error_set(code, "%s: %s", context, e->message); // record() formats before it overwrites
    tl_err.sys_errno = sys_errno;                       // already described in the message
    return code;
}

/* see strongbox/error.h */
int
sbx_error_set_crypto(const char *what)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "no detail";
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    return sbx__error(SBX_ECRYPTO, "%s failed in OpenSSL (%s)", what, detail);
}

/* see strongbox/error.h */
int
sbx_error_set_nomem(void)
{
    tl_err.code = SBX_ENOMEM;
    tl_err.sys_errno = ENOMEM;
    tl_err.message = "out of memory";
    return SBX_ENOMEM;
}
