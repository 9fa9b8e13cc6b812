/*
 * src/age/open.c - reading and opening headers (strongbox/sys/age.h):
 * read the header from a source, check every stanza against the registered
 * stanza types, find the file key with the identities, verify the MAC.
 *
 * Implementation notes (age.md §3, §4):
 *  - The header is read in 4 KiB steps until a line starting with "---"
 *    ends it, bounded by SBX_AGE_MAX_HEADER_SIZE. Bytes read past it stay in
 *    the header object: they are the start of the payload.
 *  - Identities are tried in order; each gets, in one call, every stanza of
 *    the types it consumes (in header order). The first that answers 0
 *    gives the file key; a negative answer fails the file at once.
 *  - The MAC is compared in constant time; on any failure the file key is
 *    wiped and not kept.
 */
#include "age/header.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_STEP 4096

/* Index just past the MAC line if buf holds a complete header, else 0. */
static size_t
find_header_end(const sbx_buf *buf, size_t *scan)
{
    while (*scan < buf->len) {
        const uint8_t *nl = memchr(buf->ptr + *scan, '\n', buf->len - *scan);
        if (nl == NULL)
            return 0;
        size_t start = *scan;
        *scan = (size_t)(nl - buf->ptr) + 1;
        if (*scan - start >= 4 && memcmp(buf->ptr + start, "---", 3) == 0)
            return *scan;
    }
    return 0;
}

/* Read from src into buf until it holds a whole header (or the input ends). */
static int
read_until_mac(sbx_buf *buf, sbx_source *src)
{
    size_t scan = 0, got;
    int err;
    for (;;) {
        if ((err = sbx_buf_reserve(buf, READ_STEP)) < 0)
            return err;
        if ((err = sbx_source_read(src, buf->ptr + buf->len, READ_STEP, &got)) < 0)
            return err;
        buf->len += got;
        if (find_header_end(buf, &scan) > 0 || got == 0)
            return 0;
        size_t check = buf->len < 22 ? buf->len : 22;
        if (memcmp(buf->ptr, SBX_AGE_VERSION_LINE, check) != 0)
            return 0; /* not age: let the parser name the problem */
        if (buf->len > SBX_AGE_MAX_HEADER_SIZE)
            return sbx__error(SBX_EHEADER, "header larger than %d bytes; refusing to read more",
                              SBX_AGE_MAX_HEADER_SIZE);
    }
}

/* see strongbox/sys/age.h */
int
sbx_age_header_read(sbx_age_header **out, sbx_source *src)
{
    sbx_buf buf = SBX_BUF_INIT;
    size_t len = 0;
    int err;
    *out = NULL;
    if ((err = read_until_mac(&buf, src)) < 0 ||
        (err = sbx_age__header_parse(out, buf.ptr, buf.len, &len)) < 0)
        goto fail;
    (*out)->read = buf;
    (*out)->was_read = true;
    if ((err = sbx_age__header_check(*out)) < 0) {
        sbx_age_header_free(*out);
        *out = NULL;
    }
    return err;
fail:
    sbx_buf_dispose(&buf);
    return err;
}

/* see strongbox/sys/age.h */
const uint8_t *
sbx_age_header_bytes(const sbx_age_header *h, size_t *len)
{
    *len = h->was_read ? h->len : 0;
    return h->was_read ? h->read.ptr : NULL;
}

/* see strongbox/sys/age.h */
const uint8_t *
sbx_age_header_rest(const sbx_age_header *h, size_t *len)
{
    *len = h->was_read ? h->read.len - h->len : 0;
    return h->was_read ? h->read.ptr + h->len : NULL;
}

/* Verify the MAC with file_key and keep the key. */
static int
keep_if_mac_ok(sbx_age_header *h, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    uint8_t mac[32];
    int err;
    if ((err = sbx_age__header_mac(mac, file_key, h->read.ptr, h->mac_input_len)) < 0)
        return err;
    if (!sbx_equal(mac, h->mac, sizeof(mac)))
        return sbx__error(SBX_EMAC, "header MAC mismatch: the header was tampered with or "
                                    "corrupted");
    if (h->file_key == NULL && (h->file_key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN)) == NULL)
        return SBX_ENOMEM;
    memcpy(h->file_key, file_key, SBX_AGE_FILE_KEY_LEN);
    return 0;
}

static bool
consumes(const sbx_identity *id, const char *type)
{
    const char *const *t = id->ops->types;
    if (t == NULL)
        return true;
    for (; *t != NULL; t++) {
        if (strcmp(*t, type) == 0)
            return true;
    }
    return false;
}

/* Offer id the stanzas of its types: 0, SBX_AGE_NOT_MINE or an error. */
static int
try_identity(sbx_identity *id, const sbx_age_header *h, const sbx_age_stanza **mine,
             uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    size_t n = 0;
    for (size_t s = 0; s < h->count; s++) {
        if (consumes(id, h->stanzas[s].type))
            mine[n++] = &h->stanzas[s];
    }
    return n == 0 ? SBX_AGE_NOT_MINE : id->ops->unwrap(id, mine, n, file_key);
}

/* The type rule's no_match message when every stanza is of that one type, else NULL. */
static const char *
type_hint(const sbx_age_header *h)
{
    for (size_t s = 1; s < h->count; s++) {
        if (strcmp(h->stanzas[s].type, h->stanzas[0].type) != 0)
            return NULL;
    }
    const sbx_age_stanza_type *t = sbx_age_stanza_type_find(h->stanzas[0].type);
    return t != NULL ? t->no_match : NULL;
}

/* Nothing matched: the identities' own explanations first, then the generic message. */
static int
no_match(const sbx_age_header *h, sbx_identity *const *ids, size_t nids)
{
    char hint[768] = "";
    const char *msg;
    for (size_t i = 0; i < nids; i++) {
        int code = ids[i]->ops->explain != NULL ? ids[i]->ops->explain(ids[i]) : 0;
        if (code == SBX_ENOMATCH && hint[0] == '\0')
            snprintf(hint, sizeof(hint), "%s", sbx_error_last()->message);
        else if (code < 0 && code != SBX_ENOMATCH)
            return code; // its message is set: a failure wins over hints
    }
    if (hint[0] != '\0')
        return sbx__error(SBX_ENOMATCH,
                          "no identity matched any of the file's %zu recipient stanza(s); %s",
                          h->count, hint);
    if ((msg = type_hint(h)) != NULL)
        return sbx__error(SBX_ENOMATCH, "%s", msg);
    return sbx__error(SBX_ENOMATCH,
                      "no identity matched any of the file's %zu recipient stanza(s): wrong key?",
                      h->count);
}

/* see strongbox/sys/age.h */
int
sbx_age_header_unwrap(sbx_age_header *h, sbx_identity *const *ids, size_t nids)
{
    const sbx_age_stanza **mine = NULL;
    uint8_t *file_key = NULL;
    int err = SBX_AGE_NOT_MINE;
    if (!h->was_read)
        return sbx__error(SBX_EINVAL, "only a header read from a file can be unwrapped");
    for (size_t i = 0; i < nids; i++) {
        if (ids[i] == NULL || ids[i]->ops->version != SBX_IDENTITY_OPS_VERSION)
            return sbx__error(SBX_EINVAL,
                              "identity %zu is NULL or of an unknown interface "
                              "version",
                              i + 1);
    }
    if ((mine = calloc(h->count, sizeof(*mine))) == NULL)
        return sbx__error_nomem();
    if ((file_key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN)) == NULL) {
        err = SBX_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nids && err == SBX_AGE_NOT_MINE; i++)
        err = try_identity(ids[i], h, mine, file_key);
    if (err == SBX_AGE_NOT_MINE)
        err = no_match(h, ids, nids);
    if (err == 0)
        err = keep_if_mac_ok(h, file_key);
out:
    sbx_secret_free(file_key, SBX_AGE_FILE_KEY_LEN);
    free(mine);
    return err;
}

/* see strongbox/sys/age.h */
int
sbx_age_header_set_file_key(sbx_age_header *h, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    if (!h->was_read)
        return sbx__error(SBX_EINVAL, "only a header read from a file can be opened");
    return keep_if_mac_ok(h, file_key);
}

/* see strongbox/sys/age.h */
int
sbx_age_header_file_key(const sbx_age_header *h, uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    if (h->file_key == NULL) {
        sbx_wipe(file_key, SBX_AGE_FILE_KEY_LEN);
        return sbx__error(SBX_EINVAL, "the header is not opened: unwrap it first");
    }
    memcpy(file_key, h->file_key, SBX_AGE_FILE_KEY_LEN);
    return 0;
}
