/*
 * src/age/keys.c - parsing key strings and key files; generic dispatch over
 * the recipient and identity types.
 *
 * Implementation notes (age.md §8): key files hold one key per line; empty
 * lines and lines starting with '#' are skipped; a trailing CR is tolerated
 * (as age's line scanner does); nothing else is trimmed. Errors name the line
 * number only: a line of an identity file may be a secret.
 *
 * SSH and PEM keys (age.md §6.3, §6.4; src/age/ssh.h): a recipient string
 * that is not "age1..." is an OpenSSH public key line; recipients files also
 * take authorized_keys lines and PEM public key blocks between ordinary
 * lines; an identity file that starts with "-----BEGIN " is one OpenSSH or
 * PEM private key, decided on the whole file as age does.
 *
 * Encrypted identity files (as `age -p -o key.age key.txt` makes them, and
 * age -d -i reads them): an identity file that is itself an age file, binary
 * or armored, is decrypted with a passphrase from the caller's callback (a
 * scrypt identity, so the callback runs only when the file has a passphrase
 * stanza) and its plaintext, in a buffer wiped after use, is parsed as an
 * identity file. One level only: an encrypted file inside is refused, and
 * so is a protected PEM key inside (the callback is asked at most once).
 *
 * A public key where an identity belongs (an age1... line, an SSH .pub
 * line) is named as such, so a caller can point at the right option.
 */
#include "age/keys.h"
#include "age/plugin.h"
#include "age/header.h"
#include "age/ssh.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_LINE 8192

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* see strongbox/age.h */
int
sbx_recipient_parse(sbx_recipient **out, const char *str)
{
    char hrp[64];
    uint8_t data[64];
    size_t len;
    *out = NULL;
    if (has_prefix(str, "ssh-"))
        return sbx_age__ssh_recipient_parse_line(out, str, true);
    if (!has_prefix(str, "age1"))
        return sbx__error(SBX_EFORMAT, "unknown recipient type (expected an age1... public key or "
                                       "an SSH public key \"ssh-ed25519 AAAA...\")");
    if (sbx_age__is_plugin_recipient(str))
        return sbx_plugin_recipient_new(out, str, NULL);
    if (sbx_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &len, str, strlen(str)) < 0) {
        if (sbx_error_last()->code == SBX_EINVAL)
            return sbx__error(SBX_EUNSUPPORTED, "unsupported recipient type (plugin or "
                                                "post-quantum key)");
        return sbx__error_prefix(SBX_EFORMAT, "malformed recipient");
    }
    if (strcmp(hrp, "age") != 0)
        return sbx__error(SBX_EUNSUPPORTED,
                          "unsupported recipient type \"%s\" (plugin or "
                          "post-quantum key)",
                          hrp);
    if (len != 32)
        return sbx__error(SBX_EFORMAT, "malformed recipient: wrong key length");
    return sbx_age__x25519_recipient_from_bytes(out, data);
}

/* see strongbox/age.h */
int
sbx_identity_parse(sbx_identity **out, const char *str)
{
    char hrp[64];
    uint8_t data[64];
    size_t len;
    int err;
    *out = NULL;
    if (has_prefix(str, "AGE-PLUGIN-"))
        return sbx_plugin_identity_new(out, str, NULL);
    if (has_prefix(str, "age1"))
        return sbx__error(SBX_EFORMAT, "this is a recipient (an age1... public key), not an "
                                       "identity: an identity is the secret key "
                                       "AGE-SECRET-KEY-1... that it was made from");
    if (sbx_age__ssh_type_token(str))
        return sbx__error(SBX_EFORMAT, "this is a recipient (an SSH public key), not an identity: "
                                       "use the private key file (the one without .pub)");
    if (!has_prefix(str, "AGE-SECRET-KEY-"))
        return sbx__error(SBX_EFORMAT, "unknown identity type (expected AGE-SECRET-KEY-1...)");
    if (has_prefix(str, "AGE-SECRET-KEY-PQ-"))
        return sbx__error(SBX_EUNSUPPORTED, "post-quantum (ML-KEM) identities are not supported "
                                            "yet");
    if (sbx_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &len, str, strlen(str)) < 0) {
        err = sbx__error(SBX_EFORMAT, "malformed identity (bad encoding or checksum)");
        goto out;
    }
    if (strcmp(hrp, "age-secret-key-") != 0 || len != 32) {
        err = sbx__error(SBX_EFORMAT, "malformed identity (wrong prefix or length)");
        goto out;
    }
    err = sbx_age__x25519_identity_from_bytes(out, data);
out:
    SBX_WIPE_BUF(data);
    return err;
}

/* What an identity is, for messages: the stanza types it consumes. */
static const char *
identity_kind(const sbx_identity *id)
{
    const char *const *t = id->ops->types;
    if (t == NULL || t[0] == NULL)
        return "custom";
    return strcmp(t[0], "scrypt") == 0 ? "passphrase" : t[0];
}

/* see strongbox/age.h */
const char *
sbx_recipient_type(const sbx_recipient *r)
{
    return r->ops->type;
}

/* see strongbox/age.h */
int
sbx_recipient_to_string(const sbx_recipient *r, sbx_buf *out)
{
    if (r->ops->to_string == NULL)
        return sbx__error(SBX_EUNSUPPORTED, "a %s recipient has no string form",
                          strcmp(r->ops->type, "scrypt") == 0 ? "passphrase" : r->ops->type);
    return r->ops->to_string(r, out);
}

/* see strongbox/age.h */
void
sbx_recipient_free(sbx_recipient *r)
{
    if (r != NULL)
        r->ops->free(r);
}

/* see strongbox/age.h */
void
sbx_recipients_free(sbx_recipient **list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        sbx_recipient_free(list[i]);
    free(list);
}

/* see strongbox/age.h */
int
sbx_identity_to_string(const sbx_identity *id, sbx_buf *out)
{
    if (id->ops->to_string == NULL)
        return sbx__error(SBX_EUNSUPPORTED, "a %s identity has no string form", identity_kind(id));
    return id->ops->to_string(id, out);
}

/* see strongbox/age.h */
int
sbx_identity_to_recipient(sbx_recipient **out, const sbx_identity *id)
{
    *out = NULL;
    if (id->ops->to_recipient == NULL)
        return sbx__error(SBX_EUNSUPPORTED, "a %s identity has no public recipient",
                          identity_kind(id));
    return id->ops->to_recipient(out, id);
}

/* see strongbox/age.h */
void
sbx_identity_free(sbx_identity *id)
{
    if (id != NULL)
        id->ops->free(id);
}

/* see strongbox/age.h */
void
sbx_identities_free(sbx_identity **list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        sbx_identity_free(list[i]);
    free(list);
}

/* see age/keys.h */
int
sbx_age__unwrap_each(const sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
                     uint8_t file_key[SBX_AGE_FILE_KEY_LEN], sbx_age__unwrap_one_fn one)
{
    for (size_t i = 0; i < count; i++) {
        int err = one(id, stanzas[i], file_key);
        if (err != SBX_AGE_NOT_MINE)
            return err;
    }
    return SBX_AGE_NOT_MINE;
}

typedef int (*parse_fn)(void **out, const char *line);
typedef int (*block_fn)(void **out, const char *text, size_t len);

#define PEM_BEGIN "-----BEGIN "
#define PEM_END   "-----END "

/* Length of the PEM block at text (through its END line), or 0 when it has none. */
static size_t
pem_block_len(const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        if (end - pos >= strlen(PEM_END) && memcmp(text + pos, PEM_END, strlen(PEM_END)) == 0)
            return end;
        pos = end;
    }
    return 0;
}

/*
 * Walk the lines of a key file, calling parse on each key line and
 * collecting the results. what is "identity" or "recipient" for messages.
 */
static int
parse_key_file(void ***list, size_t *count, const char *text, size_t len, parse_fn parse,
               block_fn block, void (*free_one)(void *), const char *what)
{
    char *line = sbx_secret_alloc(MAX_KEY_LINE + 1);
    void **items = NULL;
    size_t n = 0, lineno = 0, pos = 0;
    int err = 0;
    *list = NULL;
    *count = 0;
    if (line == NULL)
        return SBX_ENOMEM;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - pos, first = lineno + 1;
        lineno++;
        if (block != NULL && l >= strlen(PEM_BEGIN) &&
            memcmp(text + pos, PEM_BEGIN, strlen(PEM_BEGIN)) == 0) {
            size_t blen = pem_block_len(text + pos, len - pos);
            if (blen == 0) {
                err = sbx__error(SBX_EFORMAT, "line %zu: PEM block without an END line", first);
                goto fail;
            }
            for (size_t i = pos; i < pos + blen; i++)
                lineno += text[i] == '\n';
            lineno -= (text[pos + blen - 1] == '\n'); // the block's last LF ends its last line
            void **grown = realloc(items, (n + 1) * sizeof(void *));
            if (grown == NULL) {
                err = sbx__error_nomem();
                goto fail;
            }
            items = grown;
            if ((err = block(&items[n], text + pos, blen)) < 0) {
                err = sbx__error_prefix(err, "line %zu", first);
                goto fail;
            }
            n++;
            pos += blen;
            continue;
        }
        if (l > 0 && text[pos + l - 1] == '\r')
            l--;
        if (l > MAX_KEY_LINE) {
            err = sbx__error(SBX_EFORMAT, "line %zu: too long for a %s", lineno, what);
            goto fail;
        }
        memcpy(line, text + pos, l);
        line[l] = '\0';
        pos = end + 1;
        if (l == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', l) != NULL) {
            err = sbx__error(SBX_EFORMAT, "line %zu: contains a NUL byte", lineno);
            goto fail;
        }
        void **grown = realloc(items, (n + 1) * sizeof(void *));
        if (grown == NULL) {
            err = sbx__error_nomem();
            goto fail;
        }
        items = grown;
        if ((err = parse(&items[n], line)) < 0) {
            err = sbx__error_prefix(err, "line %zu", lineno);
            goto fail;
        }
        n++;
    }
    if (n == 0) {
        err = sbx__error(SBX_EFORMAT, "no %s found in the file", what);
        goto fail;
    }
    sbx_secret_free(line, MAX_KEY_LINE + 1);
    *list = items;
    *count = n;
    return 0;
fail:
    sbx_secret_free(line, MAX_KEY_LINE + 1);
    for (size_t i = 0; i < n; i++)
        free_one(items[i]);
    free(items);
    return err;
}

static int
parse_identity_line(void **out, const char *line)
{
    return sbx_identity_parse((sbx_identity **)out, line);
}

static int
parse_recipient_line(void **out, const char *line)
{
    if (has_prefix(line, "age1"))
        return sbx_recipient_parse((sbx_recipient **)out, line);
    return sbx_age__ssh_recipient_parse_line((sbx_recipient **)out, line, false);
}

static int
parse_recipient_block(void **out, const char *text, size_t len)
{
    return sbx_age__pem_recipient_parse((sbx_recipient **)out, text, len);
}

static void
free_identity(void *p)
{
    sbx_identity_free(p);
}

static void
free_recipient(void *p)
{
    sbx_recipient_free(p);
}

/* A whole-file OpenSSH or PEM private key as a list of one identity. */
static int
parse_key_identity(sbx_identity ***list, size_t *count, const char *text, size_t len,
                   sbx_passphrase_cb cb, void *payload)
{
    sbx_identity *id = NULL;
    int err;
    if (memmem(text, len, "-----BEGIN OPENSSH PRIVATE KEY-----", 35) != NULL)
        err = sbx_age__openssh_identity_parse(&id, text, len);
    else
        err = sbx_age__pem_identity_parse(&id, text, len, cb, payload);
    if (err < 0)
        return err;
    if ((*list = malloc(sizeof(**list))) == NULL) {
        sbx_identity_free(id);
        return sbx__error_nomem();
    }
    (*list)[0] = id;
    *count = 1;
    return 0;
}

/* Bytes of leading whitespace. */
static size_t
leading_space(const char *text, size_t len)
{
    size_t lead = 0;
    while (lead < len && strchr(" \t\r\n", text[lead]) != NULL && text[lead] != '\0')
        lead++;
    return lead;
}

static bool
starts_with(const char *text, size_t len, const char *prefix)
{
    return len >= strlen(prefix) && memcmp(text, prefix, strlen(prefix)) == 0;
}

/* An age file, binary or armored (the armor may follow whitespace, as the decryptor allows). */
static bool
is_age_file(const char *text, size_t len)
{
    size_t lead = leading_space(text, len);
    return starts_with(text, len, SBX_AGE_VERSION_LINE) ||
           starts_with(text + lead, len - lead, SBX_AGE_ARMOR_BEGIN);
}

/* An identity file in the clear: key lines, or one OpenSSH or PEM private key. */
static int
parse_plain_identities(sbx_identity ***list, size_t *count, const char *text, size_t len,
                       sbx_passphrase_cb cb, void *payload)
{
    size_t lead = leading_space(text, len);
    if (starts_with(text + lead, len - lead, PEM_BEGIN))
        return parse_key_identity(list, count, text, len, cb, payload);
    return parse_key_file((void ***)list, count, text, len, parse_identity_line, NULL,
                          free_identity, "identity");
}

/* The caller's callback, and whether the passphrase identity asked it. */
struct asked_cb {
    sbx_passphrase_cb cb;
    void *payload;
    bool asked;
};

static int
ask_once(sbx_buf *out, void *payload)
{
    struct asked_cb *a = payload;
    a->asked = true;
    return a->cb(out, a->payload);
}

/* What a failure to decrypt an encrypted identity file means. */
static int
decrypt_error(int err, bool asked)
{
    if (err == SBX_ENOMATCH && asked)
        return sbx__error(SBX_EAUTH, "encrypted identity file: wrong passphrase");
    if (err == SBX_ENOMATCH)
        return sbx__error(SBX_EUNSUPPORTED,
                          "the identity file is an age file encrypted to keys, not with a "
                          "passphrase: decrypt it first and give the result");
    return sbx__error_prefix(err, "encrypted identity file");
}

/* An identity file that is an age file encrypted with a passphrase. */
static int
parse_encrypted_identities(sbx_identity ***list, size_t *count, const char *text, size_t len,
                           sbx_passphrase_cb cb, void *payload)
{
    struct asked_cb a = {cb, payload, false};
    sbx_identity *pass = NULL;
    sbx_buf plain = SBX_BUF_INIT;
    int err;
    if (cb == NULL)
        return sbx__error(SBX_ENOKEY, "the identity file is encrypted with a passphrase (an age "
                                      "file) and no passphrase was supplied");
    if ((err = sbx_identity_scrypt_new_cb(&pass, ask_once, &a, 0)) < 0)
        return err;
    if ((err = sbx_age_decrypt_buf(&plain, text, len, &pass, 1, NULL)) < 0)
        err = decrypt_error(err, a.asked);
    else if (is_age_file((const char *)plain.ptr, plain.len))
        err = sbx__error(SBX_EFORMAT, "the encrypted identity file holds another encrypted file; "
                                      "give the identities inside it");
    else if ((err = parse_plain_identities(list, count, (const char *)plain.ptr, plain.len, NULL,
                                           NULL)) < 0) // the callback is asked at most once
        err = sbx__error_prefix(err, "encrypted identity file");
    sbx_identity_free(pass);
    sbx_buf_dispose(&plain); // wipes the secret keys
    return err;
}

/* see strongbox/age.h */
int
sbx_identities_parse_ex(sbx_identity ***list, size_t *count, const char *text, size_t len,
                        sbx_passphrase_cb cb, void *payload)
{
    *list = NULL;
    *count = 0;
    if (is_age_file(text, len))
        return parse_encrypted_identities(list, count, text, len, cb, payload);
    return parse_plain_identities(list, count, text, len, cb, payload);
}

/* see strongbox/age.h */
int
sbx_identities_parse(sbx_identity ***list, size_t *count, const char *text, size_t len)
{
    return sbx_identities_parse_ex(list, count, text, len, NULL, NULL);
}

/* see strongbox/age.h */
int
sbx_recipients_parse(sbx_recipient ***list, size_t *count, const char *text, size_t len)
{
    return parse_key_file((void ***)list, count, text, len, parse_recipient_line,
                          parse_recipient_block, free_recipient, "recipient");
}
