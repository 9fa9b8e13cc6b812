/*
 * cli/recipients.c - the recipients of sbx encrypt, rotate and migrate
 * (see cli/recipients.h).
 */
#include "recipients.h"
#include "kms_opts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* see cli.h */
int
cli_recipient_append(sbx_recipient ***list, size_t *n, sbx_recipient *r)
{
    sbx_recipient **grown = realloc(*list, (*n + 1) * sizeof(*grown));
    if (grown == NULL) {
        sbx_recipient_free(r);
        cli_errorf("out of memory");
        return SBX_ENOMEM;
    }
    grown[(*n)++] = r;
    *list = grown;
    return 0;
}

/* Move k parsed recipients to the end of *list, or free them all when out of memory. */
static int
append_all(sbx_recipient ***list, size_t *n, sbx_recipient **got, size_t k)
{
    if (k == 0)
        return 0;
    sbx_recipient **grown = realloc(*list, (*n + k) * sizeof(*grown));
    if (grown == NULL) {
        for (size_t i = 0; i < k; i++)
            sbx_recipient_free(got[i]);
        cli_errorf("out of memory");
        return SBX_ENOMEM;
    }
    memcpy(grown + *n, got, k * sizeof(*got));
    *list = grown;
    *n += k;
    return 0;
}

/* A -r argument as it may appear in a message: never a secret key pasted by mistake. */
static const char *
shown(const char *arg)
{
    if (strncasecmp(arg, "AGE-SECRET-KEY-", 15) == 0 || strncasecmp(arg, "AGE-PLUGIN-", 11) == 0)
        return "(a secret key, not shown)";
    return arg;
}

static void
recipient_hint(const char *arg)
{
    if (strncasecmp(arg, "AGE-SECRET-KEY-", 15) == 0)
        cli_hintf("that is a secret key: encrypt to its public key (sbx keygen -y KEYFILE), "
                  "or pass the key file with -i");
    else if (access(arg, F_OK) == 0)
        cli_hintf("%s is a file: use -R %s for a recipients file or -i %s for an identity file",
                  arg, arg, arg);
}

static int
add_string(sbx_recipient ***list, size_t *n, const char *arg, bool explain)
{
    sbx_recipient *r = NULL;
    int err = sbx_recipient_parse(&r, arg);
    if (err < 0 && explain) {
        cli_errorf("-r %s: %s", shown(arg), sbx_error_last()->message);
        recipient_hint(arg);
    } else if (err < 0) {
        cli_errorf("-r: %s", sbx_error_last()->message);
    }
    return err < 0 ? err : cli_recipient_append(list, n, r);
}

/* -R given a key rather than a file name: where it belongs. */
static void
not_a_file_hint(const char *arg)
{
    sbx_recipient *r = NULL;
    if (strncasecmp(arg, "AGE-SECRET-KEY-", 15) == 0)
        cli_hintf("that is a secret key: encrypt to its public key (sbx keygen -y KEYFILE), or "
                  "pass the key file with -i");
    else if (sbx_recipient_parse(&r, arg) == 0)
        cli_hintf("this is a recipient (public key), not a file: give it with -r, and a file of "
                  "recipients with -R");
    sbx_recipient_free(r);
}

static int
add_file(sbx_recipient ***list, size_t *n, const char *path, bool explain)
{
    sbx_buf text = SBX_BUF_INIT;
    sbx_recipient **got = NULL;
    size_t k = 0;
    int err;
    if (shown(path) != path && access(path, F_OK) != 0) {
        cli_errorf("-R takes a file name, not a key: %s", shown(path));
        not_a_file_hint(path);
        return SBX_ENOTFOUND;
    }
    if ((err = cli_read_small_file(&text, path, "recipients file", false)) < 0) {
        if (err == SBX_ENOTFOUND)
            not_a_file_hint(path);
        goto out;
    }
    if ((err = sbx_recipients_parse(&got, &k, (const char *)text.ptr, text.len)) < 0) {
        cli_errorf("recipients file %s: %s", path, sbx_error_last()->message);
        if (explain && memmem(text.ptr, text.len, "AGE-SECRET-KEY-", 15) != NULL)
            cli_hintf("%s holds secret keys: use -i %s to encrypt to their public keys", path,
                      path);
        goto out;
    }
    err = append_all(list, n, got, k);
    sbx_recipients_free(got, 0); // the array only: its recipients were moved
out:
    sbx_buf_dispose(&text);
    return err;
}

static int
add_identity_file(sbx_recipient ***list, size_t *n, const char *path)
{
    sbx_identity **ids = NULL;
    size_t k = 0;
    int err;
    if ((err = cli_load_identities(&ids, &k, path)) < 0)
        return err;
    for (size_t i = 0; i < k && err == 0; i++) {
        sbx_recipient *r = NULL;
        if ((err = sbx_identity_to_recipient(&r, ids[i])) < 0)
            cli_errorf("identity file %s: key %zu: %s", path, i + 1, sbx_error_last()->message);
        else
            err = cli_recipient_append(list, n, r);
    }
    sbx_identities_free(ids, k);
    return err;
}

/* see recipients.h */
int
cli_recipients_load(sbx_recipient ***list, size_t *n, const struct cli_recipient_args *a)
{
    int err = 0;
    for (size_t i = 0; i < a->nstrings && err == 0; i++)
        err = add_string(list, n, a->strings[i], a->explain);
    for (size_t i = 0; i < a->nfiles && err == 0; i++)
        err = add_file(list, n, a->files[i], a->explain);
    for (size_t i = 0; i < a->nidentity_files && err == 0; i++)
        err = add_identity_file(list, n, a->identity_files[i]);
    if (err == 0 && a->kms != NULL)
        err = cli_kms_add_recipients(list, n, a->kms);
    if (err == 0)
        cli_plugin_ui_recipients(*list, *n);
    return err;
}

/* see recipients.h */
int
cli_recipients_add_passphrase(sbx_recipient ***list, size_t *n, const char *file, int log_n,
                              const char *what)
{
    sbx_buf pass = SBX_BUF_INIT;
    sbx_recipient *r = NULL;
    char why[256] = "";
    int err = cli_read_passphrase(&pass, file, true, why, sizeof(why));
    if (err < 0) {
        if (what != NULL)
            cli_errorf("%s: %s", what, why);
        else
            cli_errorf("%s", why);
        return err;
    }
    err = sbx_recipient_scrypt_new(&r, (const char *)pass.ptr, pass.len, log_n);
    sbx_buf_dispose(&pass);
    if (err < 0) {
        cli_error_lib(NULL);
        return err;
    }
    return cli_recipient_append(list, n, r);
}
