/*
 * src/core/pem.c - shared PEM key helpers (see pem.h).
 */
#include "core/pem.h"
#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define BEGIN SBX_PEM_BEGIN
#define END   SBX_PEM_END

bool
sbx__pem_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Check that text is one PEM block with only whitespace around it; give its
 * label (NUL-terminated) and extent.
 */
int
sbx__pem_one_block(const char *text, size_t len, char label[64], const char **start,
                   size_t *block_len)
{
    size_t b = 0, e = len;
    while (b < len && sbx__pem_space(text[b]))
        b++;
    while (e > b && sbx__pem_space(text[e - 1]))
        e--;
    if (e - b < strlen(BEGIN) || memcmp(text + b, BEGIN, strlen(BEGIN)) != 0)
        return sbx__error(SBX_EFORMAT, "not a PEM key (no \"-----BEGIN\" line)");
    const char *l = text + b + strlen(BEGIN), *dash = memchr(l, '-', e - b - strlen(BEGIN));
    if (dash == NULL || dash - l >= 64 || dash == l)
        return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    memcpy(label, l, (size_t)(dash - l));
    label[dash - l] = '\0';
    for (const char *c = label; *c; c++) {
        if (!(*c == ' ' || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    }
    // The last line must be the matching END line.
    char end_line[96];
    int n = snprintf(end_line, sizeof(end_line), "%s%s-----", END, label);
    if ((size_t)n > e - b || memcmp(text + e - (size_t)n, end_line, (size_t)n) != 0)
        return sbx__error(SBX_EFORMAT,
                          "the PEM block \"%s\" does not end with its END line (or "
                          "has text after it)",
                          label);
    if (memmem(text + b, e - b - (size_t)n, END, strlen(END)) != NULL)
        return sbx__error(SBX_EFORMAT, "more than one PEM block in a key file");
    *start = text + b;
    *block_len = e - b;
    return 0;
}

int
sbx__pem_pass_cb(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg)
{
    struct sbx__pem_pass *st = arg;
    (void)params;
    *len = 0;
    if (!st->asked) {
        st->asked = true;
        if (st->cb == NULL) {
            st->err = SBX_ENOKEY;
            return 0;
        }
        int err = st->cb(&st->pass, st->payload);
        if (err < 0) {
            st->err = err;
            sbx_buf_dispose(&st->pass);
            return 0;
        }
    }
    if (st->err < 0)
        return 0;
    if (st->pass.len > size) {
        st->err = SBX_ETOOBIG;
        return 0;
    }
    if (st->pass.len > 0)
        memcpy(pass, st->pass.ptr, st->pass.len);
    *len = st->pass.len;
    return 1;
}

void
sbx__pem_pass_dispose(struct sbx__pem_pass *st)
{
    sbx_buf_dispose(&st->pass);
}
