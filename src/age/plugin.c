/*
 * src/age/plugin.c - plugin recipients and identities (strongbox/plugin.h):
 * "age1NAME1..." and "AGE-PLUGIN-NAME-1...", served by age-plugin-NAME.
 *
 * Implementation notes (C2SP age-plugin):
 *  - Each wrap or unwrap is one run of the plugin with one key: one file
 *    for wrap() and unwrap(), several for sbx_plugin_unwrap_headers().
 *  - A recipient's stanzas are collected in a header of their own and
 *    copied into the file's header only when the run succeeded.
 *  - An identity consumes every stanza (types NULL): the plugin decides
 *    which are its own. Whatever goes wrong with the plugin during
 *    decryption is NOT_MINE for this file (another identity may open it),
 *    kept, and told by explain() when none does.
 */
#include "age/plugin.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_KEY_STRING 4096

struct plugin_key {
    char name[33]; /* lower case */
    char *encoding;
    size_t encoding_len;
    sbx_plugin_ui ui;
    bool has_ui;
};

struct plugin_recipient {
    sbx_recipient base;
    struct plugin_key k;
    bool is_identity; /* the encoding is an identity: "add-identity" */
};

struct plugin_identity {
    sbx_identity base;
    struct plugin_key k;
    int fail; /* why the last file was not opened, for explain() */
    char why[768];
};

static void
key_dispose(struct plugin_key *k)
{
    if (k->encoding != NULL)
        sbx_wipe(k->encoding, k->encoding_len);
    free(k->encoding);
}

static int
key_set_ui(struct plugin_key *k, const sbx_plugin_ui *ui)
{
    if (ui != NULL && ui->version != SBX_PLUGIN_UI_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_plugin_ui version %u", ui->version);
    k->has_ui = ui != NULL;
    if (ui != NULL)
        k->ui = *ui;
    return 0;
}

/* Decode str and check that its prefix is prefix + NAME + suffix; fill k, with ui. */
static int
key_init(struct plugin_key *k, const char *str, const char *prefix, const char *suffix,
         const char *what, const sbx_plugin_ui *ui)
{
    size_t len = strlen(str), dlen, plen = strlen(prefix), slen = strlen(suffix);
    char hrp[128];
    uint8_t *data = NULL;
    int err = 0;
    memset(k, 0, sizeof(*k));
    if (len > MAX_KEY_STRING)
        return sbx__error(SBX_EFORMAT, "a plugin %s is at most %d characters", what,
                          MAX_KEY_STRING);
    if ((data = malloc(len)) == NULL)
        return sbx__error_nomem();
    if (sbx_bech32_decode(hrp, sizeof(hrp), data, len, &dlen, str, len) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", sbx_error_last()->message);
        err = sbx__error(SBX_EFORMAT, "malformed plugin %s: %s", what, why);
        goto out;
    }
    size_t hlen = strlen(hrp);
    if (hlen < plen + slen || strncmp(hrp, prefix, plen) != 0 ||
        strcmp(hrp + hlen - slen, suffix) != 0 ||
        !sbx__plugin_name_ok(hrp + plen, hlen - plen - slen)) {
        err = sbx__error(SBX_EFORMAT,
                         "malformed plugin %s: its prefix must be %sNAME%s with a NAME of 1-32 "
                         "letters, digits and - _ . +",
                         what, prefix, suffix);
        goto out;
    }
    memcpy(k->name, hrp + plen, hlen - plen - slen);
    if ((k->encoding = strdup(str)) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    k->encoding_len = len;
    err = key_set_ui(k, ui);
out:
    sbx_wipe(data, len);
    free(data);
    return err;
}

/* ------------------------------------------------------------------ running */

static const sbx_plugin_ui *
ui_of(const struct plugin_key *k)
{
    return k->has_ui ? &k->ui : NULL;
}

static int
run_recipient(const struct plugin_recipient *r, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
              sbx_age_header *out)
{
    sbx__plugin_proc proc;
    sbx__plugin_report rep;
    sbx_plugin_conn *c = NULL;
    const char *keys[1] = {r->k.encoding};
    const bool is_id[1] = {r->is_identity};
    int err;
    if ((err = sbx__plugin_start(&proc, r->k.name, "recipient-v1")) < 0)
        return err;
    if ((err = sbx__plugin_conn_new_io(&c, &proc.io)) == 0)
        err = sbx__plugin_recipient_v1(c, r->k.name, keys, is_id, 1,
                                       (const uint8_t(*)[SBX_AGE_FILE_KEY_LEN])file_key, &out, 1,
                                       ui_of(&r->k), &rep);
    sbx_plugin_conn_free(c);
    return sbx__plugin_finish(&proc, err);
}

static int
run_identity(const struct plugin_key *k, sbx__plugin_file *files, size_t n, sbx__plugin_report *rep)
{
    sbx__plugin_proc proc;
    sbx_plugin_conn *c = NULL;
    const char *ids[1] = {k->encoding};
    int err;
    memset(rep, 0, sizeof(*rep));
    if ((err = sbx__plugin_start(&proc, k->name, "identity-v1")) < 0)
        return err;
    if ((err = sbx__plugin_conn_new_io(&c, &proc.io)) == 0)
        err = sbx__plugin_identity_v1(c, k->name, ids, 1, files, n, ui_of(k), rep);
    sbx_plugin_conn_free(c);
    return sbx__plugin_finish(&proc, err);
}

/* ------------------------------------------------------------------ recipient */

static int
recipient_wrap(const sbx_recipient *base, sbx_age_header *h,
               const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct plugin_recipient *r = (const struct plugin_recipient *)base;
    sbx_age_header *mine = NULL;
    int err;
    if ((err = sbx_age_header_new(&mine)) < 0)
        return err;
    err = run_recipient(r, file_key, mine);
    for (size_t i = 0; err == 0 && i < sbx_age_header_count(mine); i++)
        err = sbx_age_header_copy_stanza(h, sbx_age_header_stanza(mine, i));
    sbx_age_header_free(mine);
    return err;
}

static int
recipient_to_string(const sbx_recipient *base, sbx_buf *out)
{
    const struct plugin_recipient *r = (const struct plugin_recipient *)base;
    if (r->is_identity)
        return sbx__error(SBX_EUNSUPPORTED,
                          "the recipient of a plugin identity has no public form here: ask "
                          "age-plugin-%s for it",
                          r->k.name);
    return sbx_buf_append(out, r->k.encoding, r->k.encoding_len);
}

static void
recipient_free(sbx_recipient *base)
{
    struct plugin_recipient *r = (struct plugin_recipient *)base;
    key_dispose(&r->k);
    free(r);
}

static const sbx_recipient_ops recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, "age-plugin", 0, recipient_wrap, recipient_to_string, recipient_free,
};

/* see strongbox/plugin.h */
int
sbx_plugin_recipient_new(sbx_recipient **out, const char *str, const sbx_plugin_ui *ui)
{
    struct plugin_recipient *r;
    int err;
    *out = NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return sbx__error_nomem();
    if ((err = key_init(&r->k, str, "age1", "", "recipient", ui)) < 0) {
        recipient_free(&r->base);
        return err;
    }
    r->base.ops = &recipient_ops;
    *out = &r->base;
    return 0;
}

/* see strongbox/plugin.h */
bool
sbx_plugin_recipient_set_ui(sbx_recipient *r, const sbx_plugin_ui *ui)
{
    if (r == NULL || r->ops != &recipient_ops)
        return false;
    return key_set_ui(&((struct plugin_recipient *)r)->k, ui) == 0;
}

/* see strongbox/plugin.h */
const char *
sbx_plugin_recipient_name(const sbx_recipient *r)
{
    return r != NULL && r->ops == &recipient_ops ? ((const struct plugin_recipient *)r)->k.name
                                                 : NULL;
}

/* ------------------------------------------------------------------ identity */

/* Keep why this identity opened nothing: a failed run, the plugin's error, a refused request. */
static void
remember(struct plugin_identity *id, int err, const sbx__plugin_report *rep)
{
    id->fail = err;
    if (err < 0) {
        snprintf(id->why, sizeof(id->why), "%s", sbx_error_last()->message);
    } else if (rep->error || rep->note[0] != '\0') {
        id->fail = rep->error ? SBX_EIO : SBX_ECANCELED;
        if (snprintf(id->why, sizeof(id->why), "age-plugin-%s: %s%s%s%s", id->k.name,
                     rep->error ? rep->message : rep->note, rep->error && rep->note[0] ? " (" : "",
                     rep->error ? rep->note : "", rep->error && rep->note[0] ? ")" : "") < 0)
            id->why[0] = '\0';
    }
}

static int
identity_unwrap(sbx_identity *base, const sbx_age_stanza *const *stanzas, size_t count,
                uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    struct plugin_identity *id = (struct plugin_identity *)base;
    sbx__plugin_file file = {stanzas, count, false, {0}};
    sbx__plugin_report rep;
    id->fail = 0;
    int err = run_identity(&id->k, &file, 1, &rep);
    if (err == 0 && file.found) {
        memcpy(file_key, file.file_key, SBX_AGE_FILE_KEY_LEN);
        SBX_WIPE_BUF(file.file_key);
        return 0;
    }
    SBX_WIPE_BUF(file.file_key);
    remember(id, err, &rep);
    return SBX_AGE_NOT_MINE;
}

static int
identity_explain(sbx_identity *base)
{
    const struct plugin_identity *id = (const struct plugin_identity *)base;
    return id->fail < 0 ? sbx__error(id->fail, "%s", id->why) : 0;
}

static int
identity_to_string(const sbx_identity *base, sbx_buf *out)
{
    const struct plugin_identity *id = (const struct plugin_identity *)base;
    return sbx_buf_append(out, id->k.encoding, id->k.encoding_len);
}

static int
identity_to_recipient(sbx_recipient **out, const sbx_identity *base)
{
    const struct plugin_identity *id = (const struct plugin_identity *)base;
    struct plugin_recipient *r;
    *out = NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return sbx__error_nomem();
    r->base.ops = &recipient_ops;
    r->k = id->k;
    r->is_identity = true;
    if ((r->k.encoding = strdup(id->k.encoding)) == NULL) {
        free(r);
        return sbx__error_nomem();
    }
    *out = &r->base;
    return 0;
}

static void
identity_free(sbx_identity *base)
{
    struct plugin_identity *id = (struct plugin_identity *)base;
    key_dispose(&id->k);
    free(id);
}

static const sbx_identity_ops identity_ops = {
    SBX_IDENTITY_OPS_VERSION, NULL,          identity_unwrap, identity_explain, identity_to_string,
    identity_to_recipient,    identity_free,
};

/* see strongbox/plugin.h */
int
sbx_plugin_identity_new(sbx_identity **out, const char *str, const sbx_plugin_ui *ui)
{
    struct plugin_identity *id;
    int err;
    *out = NULL;
    if ((id = calloc(1, sizeof(*id))) == NULL)
        return sbx__error_nomem();
    if ((err = key_init(&id->k, str, "age-plugin-", "-", "identity", ui)) < 0) {
        identity_free(&id->base);
        return err;
    }
    id->base.ops = &identity_ops;
    *out = &id->base;
    return 0;
}

/* see strongbox/plugin.h */
bool
sbx_plugin_identity_set_ui(sbx_identity *id, const sbx_plugin_ui *ui)
{
    if (id == NULL || id->ops != &identity_ops)
        return false;
    return key_set_ui(&((struct plugin_identity *)id)->k, ui) == 0;
}

/* see strongbox/plugin.h */
const char *
sbx_plugin_identity_name(const sbx_identity *id)
{
    return id != NULL && id->ops == &identity_ops ? ((const struct plugin_identity *)id)->k.name
                                                  : NULL;
}

/* see age/plugin.h */
bool
sbx_age__is_plugin_recipient(const char *str)
{
    // Types the age format itself defines (post-quantum, tagged) are not plugins: age
    // implements them natively, so no age-plugin-pq is ever run for them.
    static const char *const native[] = {"age1pq1", "age1tag1", "age1tagpq1"};
    const char *sep = strrchr(str, '1');
    if (strncmp(str, "age1", 4) != 0 || sep == NULL || sep <= str + 4)
        return false;
    for (size_t i = 0; i < sizeof(native) / sizeof(native[0]); i++) {
        if (strncasecmp(str, native[i], strlen(native[i])) == 0)
            return false;
    }
    return true;
}

/* see strongbox/plugin.h */
int
sbx_plugin_unwrap_headers(sbx_identity *base, sbx_age_header *const *headers, size_t count,
                          int *results)
{
    struct plugin_identity *id = (struct plugin_identity *)base;
    sbx__plugin_file *files = NULL;
    const sbx_age_stanza **all = NULL;
    sbx__plugin_report rep;
    size_t total = 0, used = 0, opened = 0;
    int err;
    if (base == NULL || base->ops != &identity_ops)
        return sbx__error(SBX_EINVAL, "sbx_plugin_unwrap_headers: not a plugin identity");
    for (size_t i = 0; i < count; i++)
        total +=
            sbx_age_header_bytes(headers[i], &used) != NULL ? sbx_age_header_count(headers[i]) : 0;
    files = calloc(count ? count : 1, sizeof(*files));
    all = calloc(total ? total : 1, sizeof(*all));
    if (files == NULL || all == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    used = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len, n = sbx_age_header_bytes(headers[i], &len) != NULL
                            ? sbx_age_header_count(headers[i])
                            : 0;
        files[i].stanzas = all + used;
        files[i].count = n;
        for (size_t k = 0; k < n; k++)
            all[used++] = sbx_age_header_stanza(headers[i], k);
    }
    if ((err = run_identity(&id->k, files, count, &rep)) < 0)
        goto out;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        if (sbx_age_header_bytes(headers[i], &len) == NULL)
            results[i] = SBX_EINVAL;
        else if (!files[i].found)
            results[i] = SBX_ENOMATCH;
        else
            results[i] = sbx_age_header_set_file_key(headers[i], files[i].file_key);
        opened += results[i] == 0;
    }
    if (opened == 0 && count > 0 && (rep.error || rep.note[0] != '\0')) {
        remember(id, 0, &rep);
        err = sbx__error(id->fail, "%s", id->why);
    }
out:
    for (size_t i = 0; files != NULL && i < count; i++)
        SBX_WIPE_BUF(files[i].file_key);
    free(files);
    free(all);
    return err;
}
