/*
 * src/kms/json.c - reading JSON answers for programs without a JSON library
 * of their own (see strongbox/kms.h, "reading answers").
 *
 * Implementation notes: jansson parses (JSON_REJECT_DUPLICATES, as the
 * server); a pointer is walked one reference token at a time (RFC 6901 §4:
 * "~1" is '/', "~0" is '~', an array index is "0" or digits without a
 * leading zero). A token longer than TOKEN_MAX cannot name anything we
 * print and is refused as not found.
 */
#include "kms/client.h"

#include "core/error.h"
#include "strongbox/memory.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 1024

struct sbx_kms_json {
    json_t *root;
};

/* see strongbox/kms.h */
int
sbx_kms_json_parse(sbx_kms_json **out, const void *text, size_t len)
{
    json_error_t e;
    *out = NULL;
    if (text == NULL && len > 0)
        return sbx__error(SBX_EINVAL, "sbx_kms_json_parse: text is NULL");
    sbx_kms_json *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return sbx__error_nomem();
    j->root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &e);
    if (j->root == NULL) {
        free(j);
        return sbx__error(SBX_EFORMAT, "not JSON: line %d, column %d: %s", e.line, e.column,
                          e.text);
    }
    *out = j;
    return 0;
}

/* The next reference token of *p (unescaped into tok), advancing *p. */
static bool
token_next(const char **p, char tok[TOKEN_MAX + 1])
{
    size_t n = 0;
    const char *s = *p + 1; // past the '/'
    for (; *s != '\0' && *s != '/'; s++) {
        char c = *s;
        if (c == '~') {
            if (s[1] != '0' && s[1] != '1')
                return false;
            c = *++s == '0' ? '~' : '/';
        }
        if (n == TOKEN_MAX)
            return false;
        tok[n++] = c;
    }
    tok[n] = '\0';
    *p = s;
    return true;
}

/* The array index of tok, or false. */
static bool
index_of(const char *tok, size_t *out)
{
    size_t n = strlen(tok);
    if (n == 0 || n > 9 || strspn(tok, "0123456789") != n || (tok[0] == '0' && n > 1))
        return false;
    *out = (size_t)strtoul(tok, NULL, 10);
    return true;
}

/* The value at pointer, or NULL. */
static json_t *
resolve(const sbx_kms_json *j, const char *pointer)
{
    char tok[TOKEN_MAX + 1];
    json_t *v = j != NULL ? j->root : NULL;
    if (pointer == NULL)
        return NULL;
    while (v != NULL && *pointer != '\0') {
        size_t i;
        if (*pointer != '/' || !token_next(&pointer, tok))
            return NULL;
        if (json_is_object(v))
            v = json_object_get(v, tok);
        else if (json_is_array(v) && index_of(tok, &i))
            v = json_array_get(v, i);
        else
            v = NULL;
    }
    return v;
}

/* see strongbox/kms.h */
int
sbx_kms_json_text(const sbx_kms_json *j, const char *pointer, sbx_buf *out)
{
    json_t *v = resolve(j, pointer);
    if (v == NULL)
        return sbx__error(SBX_ENOTFOUND, "the answer has no value at %.200s",
                          pointer != NULL ? pointer : "(null)");
    const char *s = json_string_value(v);
    char *dumped = NULL;
    size_t n;
    if (s != NULL)
        n = json_string_length(v);
    else if ((s = dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return sbx__error_nomem();
    else
        n = strlen(s);
    int err = sbx_buf_reserve(out, n + 1);
    if (err == 0) {
        memcpy(out->ptr + out->len, s, n);
        out->len += n;
        out->ptr[out->len] = '\0';
    }
    if (dumped != NULL)
        sbx_wipe(dumped, n);
    free(dumped);
    return err;
}

/* see strongbox/kms.h */
size_t
sbx_kms_json_count(const sbx_kms_json *j, const char *pointer)
{
    json_t *v = resolve(j, pointer);
    if (json_is_array(v))
        return json_array_size(v);
    return json_is_object(v) ? json_object_size(v) : 0;
}

/* Wipes every string under v (jansson frees without wiping). */
static void
wipe_strings(json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_string(v))
        sbx_wipe((char *)json_string_value(v), json_string_length(v));
    else if (json_is_object(v))
        json_object_foreach(v, k, m) wipe_strings(m);
    else if (json_is_array(v))
        json_array_foreach(v, i, m) wipe_strings(m);
}

/* see strongbox/kms.h */
void
sbx_kms_json_free(sbx_kms_json *j)
{
    if (j == NULL)
        return;
    wipe_strings(j->root);
    json_decref(j->root);
    free(j);
}
