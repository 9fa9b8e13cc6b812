/*
 * src/kms/age_plugin.c - the key server as an age plugin: the strings
 * "age1sbxkms1..." and "AGE-PLUGIN-SBXKMS-1...", and the plugin's side of
 * recipient-v1 and identity-v1 (the program age-plugin-sbxkms calls it).
 *
 * Implementation notes (C2SP age-plugin; strongbox/kms.h, "age plugin"):
 *  - A recipient carries the key URL "https://host:port/NAME" as its Bech32
 *    data. An identity carries nothing, or a comma-separated list of the
 *    servers allowed to get the token (as SBX_KMS_URL does).
 *  - Wrapping is sbx_recipient_kms_new's: the stanza is byte for byte the
 *    one `sbx encrypt --kms URL` writes. Unwrapping is sbx_identity_kms's,
 *    with its rule on which servers get the token. Credentials and trust
 *    come from the SBX_KMS_* variables, as for sbx.
 *  - The plugin checks everything before it wraps anything, and sends no
 *    stanza when something failed (the specification's rule). An sbx-kms
 *    stanza that breaks its type's rule gets "error stanza" and its file is
 *    not opened; stanzas of other types are ignored.
 */
#include "strongbox/kms.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/sys/plugin.h"
#include "kms/client.h"
#include "kms/envelope.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPIENT_HRP "age1sbxkms"
#define IDENTITY_HRP  "AGE-PLUGIN-SBXKMS-"
#define MAX_DATA      2048 /* a key URL, or a list of server URLs */

static int
encode(sbx_buf *out, const char *hrp, const char *data, bool upper)
{
    size_t len = strlen(data), cap = strlen(hrp) + 1 + (len * 8 + 4) / 5 + 6 + 1;
    char *s;
    int err;
    if (len > MAX_DATA)
        return sbx__error(SBX_EINVAL, "the URLs are longer than %d bytes", MAX_DATA);
    if ((s = malloc(cap)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_bech32_encode(s, cap, hrp, (const uint8_t *)data, len, upper)) == 0)
        err = sbx_buf_append(out, s, strlen(s));
    free(s);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_age_recipient(sbx_buf *out, const char *key_url)
{
    char *base = NULL, *name = NULL, url[MAX_DATA + 1];
    int err;
    if ((err = sbx_kms_parse_key_url(key_url, &base, &name)) < 0)
        return err;
    if ((size_t)snprintf(url, sizeof(url), "%s/%s", base, name) >= sizeof(url))
        err = sbx__error(SBX_EINVAL, "the key URL is longer than %d bytes", MAX_DATA);
    else
        err = encode(out, RECIPIENT_HRP, url, false);
    free(base);
    free(name);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_age_identity(sbx_buf *out, const char *const *urls, size_t count)
{
    sbx_buf list = SBX_BUF_INIT;
    int err = 0;
    for (size_t i = 0; i < count && err == 0; i++) {
        // An entry of SBX_KMS_URL: a base or key URL; only https.
        if (strncmp(urls[i], "https://", 8) != 0 || strlen(urls[i]) <= 8 ||
            strchr(urls[i], ',') != NULL || strchr(urls[i], ' ') != NULL) {
            err = sbx__error(SBX_EINVAL, "%s is not a server URL https://HOST:PORT", urls[i]);
            break;
        }
        if ((i > 0 && (err = sbx_buf_append(&list, ",", 1)) < 0) ||
            (err = sbx_buf_append(&list, urls[i], strlen(urls[i]))) < 0)
            break;
    }
    if (err == 0 && (err = sbx_buf_append(&list, "", 1)) == 0)
        err = encode(out, IDENTITY_HRP, (const char *)list.ptr, true);
    sbx_buf_dispose(&list);
    return err;
}

/* The data of a string with the prefix hrp (lower case), as a C string in out. */
static int
decode(char out[MAX_DATA + 1], const char *str, const char *hrp)
{
    char got[64];
    size_t len;
    if (strlen(str) > 2 * MAX_DATA ||
        sbx_bech32_decode(got, sizeof(got), (uint8_t *)out, MAX_DATA, &len, str, strlen(str)) < 0 ||
        strcmp(got, hrp) != 0 || memchr(out, '\0', len) != NULL)
        return sbx__error(SBX_EFORMAT, "not a valid %s1... string", hrp);
    out[len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ protocol */

static int
send0(sbx_plugin_conn *c, const char *type)
{
    return sbx_plugin_conn_write(c, type, NULL, 0, NULL, 0);
}

/* Send an error command and read the client's answer. */
static int
send_error(sbx_plugin_conn *c, const char *kind, const char *a1, const char *a2, const char *msg)
{
    const char *args[3] = {kind, a1, a2};
    const sbx_age_stanza *s;
    int err = sbx_plugin_conn_write(c, "error", args,
                                    a1 == NULL   ? 1
                                    : a2 == NULL ? 2
                                                 : 3,
                                    (const uint8_t *)msg, strlen(msg));
    return err < 0 ? err : sbx_plugin_conn_read(c, &s);
}

/* Send a command with a body, then read the client's answer. */
static int
send_and_read(sbx_plugin_conn *c, const char *type, const char *const *args, size_t nargs,
              const uint8_t *body, size_t len)
{
    const sbx_age_stanza *s;
    int err = sbx_plugin_conn_write(c, type, args, nargs, body, len);
    return err < 0 ? err : sbx_plugin_conn_read(c, &s);
}

/* Phase 1 of either machine: every stanza until "done", handed to take(). */
static int
phase1(sbx_plugin_conn *c, int (*take)(const sbx_age_stanza *s, void *ctx), void *ctx)
{
    const sbx_age_stanza *s;
    int err;
    for (;;) {
        if ((err = sbx_plugin_conn_read(c, &s)) < 0)
            return err;
        if (strcmp(s->type, "done") == 0)
            return 0;
        if ((err = take(s, ctx)) < 0)
            return err;
    }
}

static int
append_ptr(char ***list, size_t *n, const char *s)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(*grown));
    if (grown == NULL)
        return sbx__error_nomem();
    *list = grown;
    if ((grown[*n] = strdup(s)) == NULL)
        return sbx__error_nomem();
    (*n)++;
    return 0;
}

static void
free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* ------------------------------------------------------------------ recipient-v1 */

struct wrap_job {
    char **recipients; /* as sent */
    size_t nrecipients;
    size_t nidentities;
    uint8_t (*keys)[SBX_AGE_FILE_KEY_LEN];
    size_t nkeys;
    bool bad_key;
};

static int
take_wrap(const sbx_age_stanza *s, void *ctx)
{
    struct wrap_job *j = ctx;
    if (strcmp(s->type, "add-recipient") == 0 && s->nargs == 1)
        return append_ptr(&j->recipients, &j->nrecipients, s->args[0]);
    if (strcmp(s->type, "add-identity") == 0) {
        j->nidentities++;
        return 0;
    }
    if (strcmp(s->type, "wrap-file-key") != 0)
        return 0; // unknown commands of a client phase are ignored
    if (s->body_len != SBX_AGE_FILE_KEY_LEN) {
        j->bad_key = true;
        return 0;
    }
    uint8_t(*grown)[SBX_AGE_FILE_KEY_LEN] = realloc(j->keys, (j->nkeys + 1) * sizeof(*grown));
    if (grown == NULL)
        return sbx__error_nomem();
    j->keys = grown;
    memcpy(j->keys[j->nkeys++], s->body, SBX_AGE_FILE_KEY_LEN);
    return 0;
}

/* Wrap every file key to recipient i, into hdrs[f]. 0, or < 0 with the message set. */
static int
wrap_one(const char *url, sbx_age_header **hdrs, const struct wrap_job *j)
{
    sbx_kms_client *client = NULL;
    sbx_recipient *r = NULL;
    char *base = NULL, *name = NULL;
    int err;
    if ((err = sbx_kms_parse_key_url(url, &base, &name)) < 0 ||
        (err = sbx_kms_client_new_from_env(&client, base, NULL)) < 0 ||
        (err = sbx_recipient_kms_new(&r, client, url)) < 0)
        goto out;
    for (size_t f = 0; f < j->nkeys && err == 0; f++)
        err = sbx_age_header_wrap(hdrs[f], &r, 1, j->keys[f]);
out:
    sbx_recipient_free(r);
    sbx_kms_client_free(client);
    free(base);
    free(name);
    return err;
}

/* Check and wrap everything; on the first failure, send its error. 1 = an error was sent. */
static int
wrap_all(sbx_plugin_conn *c, const struct wrap_job *j, sbx_age_header **hdrs)
{
    char url[MAX_DATA + 1], index[24];
    int err;
    if (j->nidentities > 0) {
        err = send_error(c, "identity", "0", NULL,
                         "an sbxkms identity names no key: encrypt to a recipient "
                         "age1sbxkms1... (sbx kms age-recipient URL)");
        return err < 0 ? err : 1;
    }
    if (j->bad_key) {
        err = send_error(c, "internal", NULL, NULL, "a file key that is not 16 bytes");
        return err < 0 ? err : 1;
    }
    for (size_t i = 0; i < j->nrecipients; i++) {
        snprintf(index, sizeof(index), "%zu", i);
        if (decode(url, j->recipients[i], "age1sbxkms") < 0 || wrap_one(url, hdrs, j) < 0) {
            err = send_error(c, "recipient", index, NULL, sbx_error_last()->message);
            return err < 0 ? err : 1;
        }
    }
    return 0;
}

static int
send_stanzas(sbx_plugin_conn *c, sbx_age_header **hdrs, size_t nfiles)
{
    const char *args[2 + 16]; // a header stanza has at most 16 arguments
    char index[24];
    int err;
    for (size_t f = 0; f < nfiles; f++) {
        snprintf(index, sizeof(index), "%zu", f);
        for (size_t i = 0; i < sbx_age_header_count(hdrs[f]); i++) {
            const sbx_age_stanza *s = sbx_age_header_stanza(hdrs[f], i);
            args[0] = index;
            args[1] = s->type;
            if (s->nargs > 16)
                return sbx__error(SBX_EINVAL, "a stanza with more than 16 arguments");
            for (size_t a = 0; a < s->nargs; a++)
                args[a + 2] = s->args[a];
            if ((err = send_and_read(c, "recipient-stanza", args, s->nargs + 2, s->body,
                                     s->body_len)) < 0)
                return err;
        }
    }
    return 0;
}

static int
serve_recipient(sbx_plugin_conn *c)
{
    struct wrap_job j = {0};
    sbx_age_header **hdrs = NULL;
    int err;
    if ((err = phase1(c, take_wrap, &j)) < 0)
        goto out;
    if ((hdrs = calloc(j.nkeys ? j.nkeys : 1, sizeof(*hdrs))) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    for (size_t f = 0; f < j.nkeys; f++) {
        if ((err = sbx_age_header_new(&hdrs[f])) < 0)
            goto out;
    }
    if ((err = wrap_all(c, &j, hdrs)) == 0)
        err = send_stanzas(c, hdrs, j.nkeys);
    if (err >= 0)
        err = send0(c, "done");
out:
    for (size_t f = 0; hdrs != NULL && f < j.nkeys; f++)
        sbx_age_header_free(hdrs[f]);
    free(hdrs);
    free_list(j.recipients, j.nrecipients);
    if (j.keys != NULL)
        sbx_wipe(j.keys, j.nkeys * sizeof(*j.keys));
    free(j.keys);
    return err;
}

/* ------------------------------------------------------------------ identity-v1 */

struct unwrap_job {
    char **identities;
    size_t nidentities;
    sbx_age_header **files; /* the stanzas of each file, as the client sent them */
    size_t nfiles;
};

static int
grow_files(struct unwrap_job *j, size_t f)
{
    while (j->nfiles <= f) {
        sbx_age_header **grown = realloc(j->files, (j->nfiles + 1) * sizeof(*grown));
        if (grown == NULL)
            return sbx__error_nomem();
        j->files = grown;
        j->files[j->nfiles] = NULL;
        if (sbx_age_header_new(&j->files[j->nfiles]) < 0)
            return SBX_ENOMEM;
        j->nfiles++;
    }
    return 0;
}

static int
take_unwrap(const sbx_age_stanza *s, void *ctx)
{
    struct unwrap_job *j = ctx;
    char *end;
    if (strcmp(s->type, "add-identity") == 0 && s->nargs == 1)
        return append_ptr(&j->identities, &j->nidentities, s->args[0]);
    if (strcmp(s->type, "recipient-stanza") != 0 || s->nargs < 2)
        return 0; // unknown commands of a client phase are ignored
    unsigned long f = strtoul(s->args[0], &end, 10);
    if (*end != '\0' || f > 100000)
        return 0;
    int err = grow_files(j, (size_t)f);
    if (err < 0)
        return err;
    err = sbx_age_header_add_stanza(j->files[f], s->args[1], s->args + 2, s->nargs - 2, s->body,
                                    s->body_len);
    if (err == SBX_EINVAL) // one a header cannot carry: kept as a placeholder, for the indices
        err = sbx_age_header_add_stanza(j->files[f], "?", NULL, 0, NULL, 0);
    return err;
}

/* The key server identity for the identities sent: their servers, or SBX_KMS_URL. */
static int
make_identity(sbx_plugin_conn *c, const struct unwrap_job *j, sbx_identity **id, bool *sent)
{
    sbx_kms_client_options ov = SBX_KMS_CLIENT_OPTIONS_INIT;
    char data[MAX_DATA + 1], index[24], **urls = NULL;
    size_t nurls = 0;
    int err = 0;
    *sent = false;
    for (size_t i = 0; i < j->nidentities && err == 0; i++) {
        snprintf(index, sizeof(index), "%zu", i);
        if (decode(data, j->identities[i], "age-plugin-sbxkms-") < 0 ||
            (data[0] != '\0' && sbx_kms__urls_split(&urls, &nurls, NULL, data) < 0)) {
            err = send_error(c, "identity", index, NULL, sbx_error_last()->message);
            *sent = true;
        }
    }
    if (err == 0 && !*sent) {
        ov.urls = (const char *const *)urls;
        ov.url_count = nurls;
        if (sbx_identity_kms_new_from_env(id, &ov) < 0) {
            err = send_error(c, "internal", NULL, NULL, sbx_error_last()->message);
            *sent = true;
        }
    }
    sbx_kms__urls_free(urls, nurls);
    return err;
}

/* Open file f: its key sent, an error sent, or nothing (not ours). */
static int
unwrap_file(sbx_plugin_conn *c, sbx_identity *id, sbx_age_header *h, size_t f)
{
    const sbx_age_stanza **list;
    uint8_t key[SBX_AGE_FILE_KEY_LEN];
    char index[24], sindex[24];
    size_t n = 0;
    int err = 0;
    snprintf(index, sizeof(index), "%zu", f);
    if ((list = calloc(sbx_age_header_count(h) + 1, sizeof(*list))) == NULL)
        return sbx__error_nomem();
    for (size_t i = 0; i < sbx_age_header_count(h); i++) {
        const sbx_age_stanza *s = sbx_age_header_stanza(h, i);
        if (strcmp(s->type, "sbx-kms") != 0)
            continue;
        if (sbx_kms__stanza_type.check(s, i) < 0) {
            snprintf(sindex, sizeof(sindex), "%zu", i);
            err = send_error(c, "stanza", index, sindex, sbx_error_last()->message);
            goto out;
        }
        list[n++] = s;
    }
    if (n == 0)
        goto out;
    if ((err = id->ops->unwrap(id, list, n, key)) == 0) {
        const char *args[1] = {index};
        err = send_and_read(c, "file-key", args, 1, key, sizeof(key));
    } else if (err != SBX_AGE_NOT_MINE || (err = id->ops->explain(id)) < 0) {
        err = send_error(c, "internal", NULL, NULL, sbx_error_last()->message);
    }
out:
    SBX_WIPE_BUF(key);
    free(list);
    return err;
}

static int
serve_identity(sbx_plugin_conn *c)
{
    struct unwrap_job j = {0};
    sbx_identity *id = NULL;
    bool sent = false;
    int err;
    if ((err = phase1(c, take_unwrap, &j)) < 0 || (err = make_identity(c, &j, &id, &sent)) < 0)
        goto out;
    for (size_t f = 0; !sent && f < j.nfiles && err >= 0; f++)
        err = unwrap_file(c, id, j.files[f], f);
    if (err >= 0)
        err = send0(c, "done");
out:
    sbx_identity_free(id);
    for (size_t f = 0; f < j.nfiles; f++)
        sbx_age_header_free(j.files[f]);
    free(j.files);
    free_list(j.identities, j.nidentities);
    return err;
}

/* see strongbox/kms.h */
int
sbx_kms_age_plugin_serve(const char *state_machine, int in_fd, int out_fd)
{
    sbx_plugin_conn *c = NULL;
    int err;
    sbx_kms__register();
    if (strcmp(state_machine, "recipient-v1") != 0 && strcmp(state_machine, "identity-v1") != 0)
        return sbx__error(SBX_EUNSUPPORTED,
                          "unknown state machine \"%s\" (recipient-v1 and identity-v1 are known)",
                          state_machine);
    if ((err = sbx_plugin_conn_new(&c, in_fd, out_fd)) < 0)
        return err;
    err = strcmp(state_machine, "recipient-v1") == 0 ? serve_recipient(c) : serve_identity(c);
    sbx_plugin_conn_free(c);
    return err < 0 ? err : 0;
}
