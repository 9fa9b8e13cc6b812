/*
 * src/age/plugin_client.c - the age client's side of the plugin state
 * machines recipient-v1 and identity-v1 (C2SP age-plugin).
 *
 * Implementation notes:
 *  - Phase 1 is ours: we send, then "done". Phase 2 is the plugin's: it
 *    sends a command, we answer, until its "done". Commands we do not know
 *    (grease among them) are answered "unsupported", as the specification
 *    says for a bi-directional phase.
 *  - Everything the plugin sends is checked: file indices are decimal
 *    numbers below the count of files we sent, a file key is 16 bytes and
 *    sent once per file, a stanza goes through the header's own argument
 *    rules (sbx_age_header_add_stanza).
 *  - msg, confirm, request-public and request-secret go to the caller's
 *    sbx_plugin_ui; a missing callback or a refusal is answered "fail". A
 *    secret typed by the user is wiped once sent.
 *  - An "error" command is answered "ok" and kept (the first one) in the
 *    report. In identity-v1 the run goes on (the plugin may still find other
 *    files' keys); in recipient-v1 it fails the run, as no stanza of a
 *    failed wrap may be used.
 */
#include "age/plugin.h"
#include "age/header.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 1024 /* a message shown to the user is cut there */

static int
send0(sbx_plugin_conn *c, const char *type)
{
    return sbx_plugin_conn_write(c, type, NULL, 0, NULL, 0);
}

/* The body as text for the user: at most MAX_TEXT bytes, control characters as '?'. */
static void
text_of(char out[MAX_TEXT + 1], const uint8_t *p, size_t len)
{
    size_t n = len < MAX_TEXT ? len : MAX_TEXT;
    for (size_t i = 0; i < n; i++)
        out[i] = (p[i] < 0x20 || p[i] == 0x7f) ? '?' : (char)p[i];
    out[n] = '\0';
}

/* A decimal index below limit. */
static bool
index_of(size_t *out, const char *s, size_t limit)
{
    size_t v = 0;
    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 9)
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (size_t)(*s - '0');
    }
    *out = v;
    return v < limit;
}

static void
note(sbx__plugin_report *rep, const char *what, const char *why)
{
    if (rep->note[0] == '\0')
        snprintf(rep->note, sizeof(rep->note), "it asked for %s, which could not be given: %s",
                 what, why);
}

static int
handle_msg(sbx_plugin_conn *c, const char *name, const sbx_age_stanza *s, const sbx_plugin_ui *ui)
{
    char text[MAX_TEXT + 1];
    text_of(text, s->body, s->body_len);
    if (ui == NULL || ui->message == NULL || ui->message(name, text, ui->payload) < 0)
        return send0(c, "fail");
    return send0(c, "ok");
}

/* A base64 confirm choice as text. */
static int
choice(char out[MAX_TEXT + 1], const char *b64)
{
    uint8_t raw[MAX_TEXT];
    size_t n = strlen(b64), got;
    if (n > MAX_TEXT || sbx_base64_decode(raw, sizeof(raw), &got, b64, n, false) < 0)
        return sbx__error(SBX_EFORMAT, "the plugin sent a confirm whose choices are not base64");
    text_of(out, raw, got);
    return 0;
}

static int
handle_confirm(sbx_plugin_conn *c, const char *name, const sbx_age_stanza *s,
               const sbx_plugin_ui *ui, sbx__plugin_report *rep)
{
    char text[MAX_TEXT + 1], yes[MAX_TEXT + 1], no[MAX_TEXT + 1];
    bool chose_yes = false;
    int err;
    if (s->nargs != 1 && s->nargs != 2)
        return sbx__error(SBX_EFORMAT, "the plugin sent a confirm with %zu arguments (1 or 2)",
                          s->nargs);
    if ((err = choice(yes, s->args[0])) < 0 ||
        (s->nargs == 2 && (err = choice(no, s->args[1])) < 0))
        return err;
    text_of(text, s->body, s->body_len);
    if (ui == NULL || ui->confirm == NULL ||
        ui->confirm(name, text, yes, s->nargs == 2 ? no : NULL, &chose_yes, ui->payload) < 0) {
        note(rep, "a confirmation",
             ui == NULL || ui->confirm == NULL ? "no user interface" : sbx_error_last()->message);
        return send0(c, "fail");
    }
    const char *answer[1] = {chose_yes ? "yes" : "no"};
    return sbx_plugin_conn_write(c, "ok", answer, 1, NULL, 0);
}

static int
handle_request(sbx_plugin_conn *c, const char *name, const sbx_age_stanza *s,
               const sbx_plugin_ui *ui, sbx__plugin_report *rep)
{
    bool secret = strcmp(s->type, "request-secret") == 0;
    char text[MAX_TEXT + 1];
    sbx_buf value = SBX_BUF_INIT;
    int err;
    text_of(text, s->body, s->body_len);
    if (ui == NULL || ui->request == NULL ||
        ui->request(&value, name, text, secret, ui->payload) < 0) {
        note(rep, secret ? "a secret" : "a value",
             ui == NULL || ui->request == NULL ? "no user interface" : sbx_error_last()->message);
        sbx_buf_dispose(&value);
        return send0(c, "fail");
    }
    err = sbx_plugin_conn_write(c, "ok", NULL, 0, value.ptr, value.len);
    sbx_buf_dispose(&value);
    return err;
}

/* The plugin's error: kept (the first), answered "ok". */
static int
handle_error(sbx_plugin_conn *c, const sbx_age_stanza *s, sbx__plugin_report *rep)
{
    char text[MAX_TEXT + 1];
    if (!rep->error) {
        text_of(text, s->body, s->body_len);
        const char *kind = s->nargs > 0 ? s->args[0] : "error";
        bool plain = strcmp(kind, "internal") == 0 || s->nargs == 0;
        if (snprintf(rep->message, sizeof(rep->message), "%s%s%s%s%s", plain ? "" : kind,
                     plain ? "" : " ", plain ? "" : (s->nargs > 1 ? s->args[1] : "?"),
                     plain ? "" : ": ", text) < 0)
            rep->message[0] = '\0';
        rep->error = true;
    }
    return send0(c, "ok");
}

/* The commands both phase 2s share. *handled false: not one of them. */
static int
handle_common(sbx_plugin_conn *c, const char *name, const sbx_age_stanza *s,
              const sbx_plugin_ui *ui, sbx__plugin_report *rep, bool *handled)
{
    *handled = true;
    if (strcmp(s->type, "msg") == 0)
        return handle_msg(c, name, s, ui);
    if (strcmp(s->type, "confirm") == 0)
        return handle_confirm(c, name, s, ui, rep);
    if (strcmp(s->type, "request-secret") == 0 || strcmp(s->type, "request-public") == 0)
        return handle_request(c, name, s, ui, rep);
    if (strcmp(s->type, "error") == 0)
        return handle_error(c, s, rep);
    *handled = false;
    return 0;
}

/* Where phase 2 puts what the plugin sends: file keys (identity-v1) or stanzas (recipient-v1). */
struct results {
    sbx__plugin_file *files;
    size_t nfiles;
    sbx_age_header *const *out;
};

/*
 * Phase 2, the plugin's: its result command (own) goes to take(), the
 * shared ones to their handlers, any other is "unsupported"; until "done".
 */
static int
phase2(sbx_plugin_conn *c, const char *name, const sbx_plugin_ui *ui, sbx__plugin_report *rep,
       const char *own, int (*take)(sbx_plugin_conn *c, const sbx_age_stanza *s, struct results *r),
       struct results *r)
{
    const sbx_age_stanza *s;
    bool handled;
    int err;
    for (;;) {
        if ((err = sbx_plugin_conn_read(c, &s)) < 0)
            return err;
        if (strcmp(s->type, "done") == 0)
            return 0;
        if (strcmp(s->type, own) == 0)
            err = take(c, s, r);
        else if ((err = handle_common(c, name, s, ui, rep, &handled)) == 0 && !handled)
            err = send0(c, "unsupported");
        if (err < 0)
            return err;
    }
}

static int
send_identity_phase1(sbx_plugin_conn *c, const char *const *ids, size_t nids,
                     const sbx__plugin_file *files, size_t nfiles)
{
    const char *args[SBX_AGE_MAX_ARGS + 2];
    char index[24];
    int err;
    for (size_t i = 0; i < nids; i++) {
        if ((err = sbx_plugin_conn_write(c, "add-identity", &ids[i], 1, NULL, 0)) < 0)
            return err;
    }
    for (size_t f = 0; f < nfiles; f++) {
        snprintf(index, sizeof(index), "%zu", f);
        for (size_t k = 0; k < files[f].count; k++) {
            const sbx_age_stanza *s = files[f].stanzas[k];
            if (s->nargs > SBX_AGE_MAX_ARGS)
                continue; // not from a header we parsed; nothing a plugin could use
            args[0] = index;
            args[1] = s->type;
            memcpy(args + 2, s->args, s->nargs * sizeof(*args));
            if ((err = sbx_plugin_conn_write(c, "recipient-stanza", args, s->nargs + 2, s->body,
                                             s->body_len)) < 0)
                return err;
        }
    }
    return send0(c, "done");
}

static int
take_file_key(sbx_plugin_conn *c, const sbx_age_stanza *s, struct results *r)
{
    sbx__plugin_file *files = r->files;
    size_t f, nfiles = r->nfiles;
    if (s->nargs != 1 || !index_of(&f, s->args[0], nfiles))
        return sbx__error(SBX_EFORMAT, "the plugin sent a file-key for a file it was not given");
    if (s->body_len != SBX_AGE_FILE_KEY_LEN)
        return sbx__error(SBX_EFORMAT, "the plugin sent a file key of %zu bytes (not %d)",
                          s->body_len, SBX_AGE_FILE_KEY_LEN);
    if (files[f].found)
        return sbx__error(SBX_EFORMAT, "the plugin sent two file keys for file %zu", f);
    memcpy(files[f].file_key, s->body, SBX_AGE_FILE_KEY_LEN);
    files[f].found = true;
    return send0(c, "ok");
}

/* see age/plugin.h */
int
sbx__plugin_identity_v1(sbx_plugin_conn *c, const char *name, const char *const *identities,
                        size_t nids, sbx__plugin_file *files, size_t nfiles,
                        const sbx_plugin_ui *ui, sbx__plugin_report *rep)
{
    struct results r = {files, nfiles, NULL};
    int err;
    memset(rep, 0, sizeof(*rep));
    if ((err = send_identity_phase1(c, identities, nids, files, nfiles)) < 0)
        return err;
    return phase2(c, name, ui, rep, "file-key", take_file_key, &r);
}

static int
send_recipient_phase1(sbx_plugin_conn *c, const char *const *keys, const bool *is_identity,
                      size_t nkeys, const uint8_t (*file_keys)[SBX_AGE_FILE_KEY_LEN], size_t nfiles)
{
    int err;
    for (size_t i = 0; i < nkeys; i++) {
        const char *cmd = is_identity != NULL && is_identity[i] ? "add-identity" : "add-recipient";
        if ((err = sbx_plugin_conn_write(c, cmd, &keys[i], 1, NULL, 0)) < 0)
            return err;
    }
    for (size_t f = 0; f < nfiles; f++) {
        if ((err = sbx_plugin_conn_write(c, "wrap-file-key", NULL, 0, file_keys[f],
                                         SBX_AGE_FILE_KEY_LEN)) < 0)
            return err;
    }
    return send0(c, "done");
}

static int
take_stanza(sbx_plugin_conn *c, const sbx_age_stanza *s, struct results *r)
{
    sbx_age_header *const *out = r->out;
    size_t f, nfiles = r->nfiles;
    int err;
    if (s->nargs < 2 || !index_of(&f, s->args[0], nfiles))
        return sbx__error(SBX_EFORMAT,
                          "the plugin sent a recipient-stanza for a file it was not given");
    if ((err = sbx_age_header_add_stanza(out[f], s->args[1], s->args + 2, s->nargs - 2, s->body,
                                         s->body_len)) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", sbx_error_last()->message);
        return sbx__error(err == SBX_EINVAL ? SBX_EFORMAT : err,
                          "the plugin sent a stanza a header cannot carry (%s)", why);
    }
    return send0(c, "ok");
}

/* see age/plugin.h */
int
sbx__plugin_recipient_v1(sbx_plugin_conn *c, const char *name, const char *const *keys,
                         const bool *is_identity, size_t nkeys,
                         const uint8_t (*file_keys)[SBX_AGE_FILE_KEY_LEN],
                         sbx_age_header *const *out, size_t nfiles, const sbx_plugin_ui *ui,
                         sbx__plugin_report *rep)
{
    struct results r = {NULL, nfiles, out};
    int err;
    memset(rep, 0, sizeof(*rep));
    if ((err = send_recipient_phase1(c, keys, is_identity, nkeys, file_keys, nfiles)) < 0 ||
        (err = phase2(c, name, ui, rep, "recipient-stanza", take_stanza, &r)) < 0)
        return err;
    if (rep->error)
        return sbx__error(SBX_EIO, "%s%s%s%s", rep->message, rep->note[0] ? " (" : "", rep->note,
                          rep->note[0] ? ")" : "");
    for (size_t f = 0; f < nfiles; f++) {
        if (sbx_age_header_count(out[f]) == 0)
            return sbx__error(SBX_EFORMAT, "the plugin wrapped no stanza%s%s",
                              rep->note[0] ? ": " : "", rep->note);
    }
    return 0;
}
