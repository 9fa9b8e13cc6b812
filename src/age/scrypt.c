/*
 * src/age/scrypt.c - the passphrase (scrypt) recipient type (age.md §6.2).
 *
 * Implementation notes:
 *   key  = scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt16, N = 2^logN, r 8, p 1)
 *   stanza "-> scrypt base64(salt) logN", body = ChaCha20-Poly1305(key, 0, file_key)
 *  - logN is decimal without sign or leading zero; above the identity's
 *    limit the file is refused before any work (a hostile file must not make
 *    us spend gigabytes and minutes).
 *  - An scrypt stanza must be alone in its header: otherwise a passphrase
 *    file could be silently re-encrypted to an extra recipient.
 *  - The passphrase lives in secure memory; a callback identity asks for it
 *    only when a file actually has a passphrase stanza.
 */
#include "age/keys.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/crypto.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRYPT_LABEL     "age-encryption.org/v1/scrypt"
#define SCRYPT_LABEL_LEN (sizeof(SCRYPT_LABEL) - 1)

struct scrypt_key {
    uint8_t *pass; /* secure memory */
    size_t len;
    int log_n; /* recipient: work factor; identity: maximum accepted */
};

struct scrypt_recipient {
    sbx_recipient base;
    struct scrypt_key k;
};

struct scrypt_identity {
    sbx_identity base;
    struct scrypt_key k;
    sbx_passphrase_cb cb;
    void *payload;
};

static int
key_set(struct scrypt_key *k, const void *pass, size_t len)
{
    if (len == 0)
        return sbx__error(SBX_EINVAL, "the passphrase is empty");
    if ((k->pass = sbx_secret_alloc(len)) == NULL)
        return SBX_ENOMEM;
    memcpy(k->pass, pass, len);
    k->len = len;
    return 0;
}

static int
derive(uint8_t key[32], const struct scrypt_key *k, const uint8_t salt[16], int log_n)
{
    uint8_t full_salt[SCRYPT_LABEL_LEN + 16];
    memcpy(full_salt, SCRYPT_LABEL, SCRYPT_LABEL_LEN);
    memcpy(full_salt + SCRYPT_LABEL_LEN, salt, 16);
    return sbx__scrypt(key, k->pass, k->len, full_salt, sizeof(full_salt), (unsigned)log_n);
}

static int
recipient_wrap(const sbx_recipient *r, sbx_age_header *hdr,
               const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct scrypt_recipient *s = (const struct scrypt_recipient *)r;
    uint8_t salt[16], key[32], body[SBX_AGE_FILE_KEY_LEN + 16];
    char salt_b64[32], log_n[16];
    int err;
    if ((err = sbx_random_bytes(salt, sizeof(salt))) < 0 ||
        (err = derive(key, &s->k, salt, s->k.log_n)) < 0 ||
        (err = sbx__seal_zero_nonce(body, key, file_key, SBX_AGE_FILE_KEY_LEN)) < 0)
        goto out;
    sbx_base64_encode(salt_b64, sizeof(salt_b64), salt, sizeof(salt), false);
    snprintf(log_n, sizeof(log_n), "%d", s->k.log_n);
    const char *args[2] = {salt_b64, log_n};
    err = sbx_age_header_add_stanza(hdr, "scrypt", args, 2, body, sizeof(body));
out:
    SBX_WIPE_BUF(key);
    return err;
}

static void
recipient_free(sbx_recipient *r)
{
    struct scrypt_recipient *s = (struct scrypt_recipient *)r;
    sbx_secret_free(s->k.pass, s->k.len);
    sbx_secret_free(s, sizeof(*s));
}

static const sbx_recipient_ops recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, "scrypt", SBX_AGE_STANZA_ALONE, recipient_wrap, NULL, recipient_free,
};

/* see strongbox/age.h */
int
sbx_recipient_scrypt_new(sbx_recipient **out, const char *passphrase, size_t len, int log_n)
{
    int err;
    *out = NULL;
    if (log_n == 0)
        log_n = SBX_AGE_SCRYPT_DEFAULT_LOG_N;
    if (log_n < 1 || log_n > SBX_AGE_SCRYPT_MAX_LOG_N)
        return sbx__error(SBX_EINVAL, "scrypt work factor must be between 1 and %d",
                          SBX_AGE_SCRYPT_MAX_LOG_N);
    struct scrypt_recipient *s = sbx_secret_alloc(sizeof(*s));
    if (s == NULL)
        return SBX_ENOMEM;
    s->base.ops = &recipient_ops;
    s->k.log_n = log_n;
    if ((err = key_set(&s->k, passphrase, len)) < 0) {
        recipient_free(&s->base);
        return err;
    }
    *out = &s->base;
    return 0;
}

/* Parse logN: ^[1-9][0-9]*$ without overflow. Returns -1 when invalid. */
static int
parse_log_n(const char *s)
{
    long v = 0;
    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > 1000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 1000 ? -1 : (int)v;
}

static int
stanza_check(const sbx_age_stanza *s, size_t index)
{
    uint8_t salt[20];
    size_t len;
    if (s->nargs != 2)
        return sbx__error(SBX_EHEADER, "scrypt stanza %zu: expected 2 arguments, got %zu",
                          index + 1, s->nargs);
    if (sbx_base64_decode(salt, sizeof(salt), &len, s->args[0], strlen(s->args[0]), false) < 0 ||
        len != 16)
        return sbx__error(SBX_EHEADER, "scrypt stanza: salt is not 16 bytes of canonical base64");
    if (parse_log_n(s->args[1]) < 1)
        return sbx__error(SBX_EHEADER, "scrypt stanza: invalid work factor");
    if (s->body_len != SBX_AGE_FILE_KEY_LEN + 16)
        return sbx__error(SBX_EHEADER, "scrypt stanza: body is %zu bytes, expected 32",
                          s->body_len);
    return 0;
}

const sbx_age_stanza_type sbx_age__scrypt_type = {
    SBX_AGE_STANZA_TYPE_VERSION,
    "scrypt",
    SBX_AGE_STANZA_ALONE, // else a passphrase file could be re-encrypted to an extra key unseen
    stanza_check,
    "the passphrase is wrong (or no passphrase identity was given for this "
    "passphrase-encrypted file)",
};

static int
fetch_passphrase(struct scrypt_identity *id)
{
    sbx_buf buf = SBX_BUF_INIT;
    int err;
    if (id->k.pass != NULL)
        return 0;
    if (id->cb == NULL)
        return sbx__error(SBX_ENOKEY, "no passphrase available");
    if ((err = id->cb(&buf, id->payload)) == 0)
        err = key_set(&id->k, buf.ptr, buf.len);
    sbx_buf_dispose(&buf);
    return err;
}

static int
identity_unwrap(sbx_identity *idp, const sbx_age_stanza *const *stanzas, size_t count,
                uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    struct scrypt_identity *id = (struct scrypt_identity *)idp;
    const sbx_age_stanza *s = stanzas[0]; // alone in its header: count is 1
    uint8_t salt[20], key[32];
    size_t len;
    int err;
    (void)count;
    int log_n = parse_log_n(s->args[1]);
    if (log_n > id->k.log_n)
        return sbx__error(SBX_EHEADER,
                          "the file's passphrase work factor 2^%d exceeds the limit 2^%d; if you "
                          "trust this file, raise the limit (sbx decrypt --max-work-factor %d)",
                          log_n, id->k.log_n, log_n);
    if ((err = sbx_base64_decode(salt, sizeof(salt), &len, s->args[0], strlen(s->args[0]), false)) <
            0 ||
        (err = fetch_passphrase(id)) < 0 || (err = derive(key, &id->k, salt, log_n)) < 0)
        goto out;
    err = sbx__open_zero_nonce(file_key, key, s->body, s->body_len);
    if (err == SBX_EAUTH)
        err = SBX_AGE_NOT_MINE;
out:
    SBX_WIPE_BUF(key);
    return err;
}

static void
identity_free(sbx_identity *idp)
{
    struct scrypt_identity *id = (struct scrypt_identity *)idp;
    sbx_secret_free(id->k.pass, id->k.len);
    sbx_secret_free(id, sizeof(*id));
}

static const char *const identity_types[] = {"scrypt", NULL};

static const sbx_identity_ops identity_ops = {
    SBX_IDENTITY_OPS_VERSION, identity_types, identity_unwrap, NULL, NULL, NULL, identity_free,
};

static int
identity_new(struct scrypt_identity **out, int max_log_n)
{
    *out = NULL;
    if (max_log_n == 0)
        max_log_n = SBX_AGE_SCRYPT_MAX_LOG_N;
    if (max_log_n < 1 || max_log_n > 40)
        return sbx__error(SBX_EINVAL, "the scrypt work factor limit must be between 1 and 40");
    struct scrypt_identity *id = sbx_secret_alloc(sizeof(*id));
    if (id == NULL)
        return SBX_ENOMEM;
    id->base.ops = &identity_ops;
    id->k.log_n = max_log_n;
    *out = id;
    return 0;
}

/* see strongbox/age.h */
int
sbx_identity_scrypt_new(sbx_identity **out, const char *passphrase, size_t len, int max_log_n)
{
    struct scrypt_identity *id;
    int err;
    *out = NULL;
    if ((err = identity_new(&id, max_log_n)) < 0)
        return err;
    if ((err = key_set(&id->k, passphrase, len)) < 0) {
        identity_free(&id->base);
        return err;
    }
    *out = &id->base;
    return 0;
}

/* see strongbox/age.h */
int
sbx_identity_scrypt_new_cb(sbx_identity **out, sbx_passphrase_cb cb, void *payload, int max_log_n)
{
    struct scrypt_identity *id;
    int err;
    *out = NULL;
    if (cb == NULL)
        return sbx__error(SBX_EINVAL, "sbx_identity_scrypt_new_cb: callback is NULL");
    if ((err = identity_new(&id, max_log_n)) < 0)
        return err;
    id->cb = cb;
    id->payload = payload;
    *out = &id->base;
    return 0;
}
