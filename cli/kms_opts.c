/*
 * cli/kms_opts.c - key server options of sbx encrypt, decrypt and rotate.
 */
#include "kms_opts.h"
#include "kms_dl.h"

#include <stdlib.h>
#include <string.h>

int
cli_kms_opts_init(struct cli_kms_opts *o, int argc)
{
    memset(o, 0, sizeof(*o));
    o->keys = calloc((size_t)argc + 1, sizeof(char *));
    o->urls = calloc((size_t)argc + 1, sizeof(char *));
    if (o->keys == NULL || o->urls == NULL) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    return CLI_OK;
}

bool
cli_kms_option(struct cli_kms_opts *o, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_KMS:
        o->keys[o->nkeys++] = arg;
        return true;
    case CLI_OPT_KMS_URL:
        o->urls[o->nurls++] = arg;
        break;
    case CLI_OPT_KMS_TOKEN_FILE:
        o->token_file = arg;
        break;
    case CLI_OPT_KMS_CACERT:
        o->cacert = arg;
        break;
    case CLI_OPT_KMS_FINGERPRINT:
        o->fingerprint = arg;
        break;
    default:
        return false;
    }
    o->any = true;
    return true;
}

void
cli_kms_opts_dispose(struct cli_kms_opts *o)
{
    for (size_t i = 0; i < o->nclients; i++)
        kms_dl_get()->client_free(o->clients[i]); // clients exist only once it is loaded
    free(o->clients);
    free(o->keys);
    free(o->urls);
    sbx_buf_dispose(&o->token);
    memset(o, 0, sizeof(*o));
}

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The library reads SBX_KMS_TOKEN_FILE when no token was given: warn as for --kms-token-file. */
static void
warn_env_token_file(struct cli_kms_opts *o)
{
    const char *path = env("SBX_KMS_TOKEN_FILE");
    if (o->env_file_checked || path == NULL || env("SBX_KMS_TOKEN") != NULL)
        return;
    o->env_file_checked = true;
    cli_warn_if_exposed("token file (SBX_KMS_TOKEN_FILE)", path);
}

/* The flags as overrides of the environment; reads --kms-token-file once. */
static int
overrides(sbx_kms_client_options *ov, struct cli_kms_opts *o)
{
    sbx_kms_client_options init = SBX_KMS_CLIENT_OPTIONS_INIT;
    *ov = init;
    if (o->token_file != NULL && o->token.len == 0) {
        if (strcmp(o->token_file, "-") == 0) {
            // Standard input is the data (INPUT) or another flag's; a token read from
            // it would take the first line of the plaintext and send it to the server.
            cli_errorf("--kms-token-file -: the token cannot come from standard input; give "
                       "a file (or /dev/fd/N), or set SBX_KMS_TOKEN");
            return SBX_EINVAL;
        }
        int err = cli_read_small_file(&o->token, o->token_file, "token file", true);
        if (err < 0)
            return err;
        size_t line = 0; // the first line, within the bytes read (no NUL there)
        while (line < o->token.len && o->token.ptr[line] != '\r' && o->token.ptr[line] != '\n')
            line++;
        o->token.len = line;
        if (line == 0 || sbx_buf_append(&o->token, "", 1) < 0) {
            cli_errorf("token file %s: %s", o->token_file,
                       line == 0 ? "empty first line" : "out of memory");
            return SBX_EFORMAT;
        }
    }
    if (o->token.len > 0)
        ov->token = (const char *)o->token.ptr;
    else
        warn_env_token_file(o);
    ov->cacert = o->cacert;
    ov->fingerprint = o->fingerprint;
    ov->urls = o->urls;
    ov->url_count = o->nurls;
    return 0;
}

static int
one_recipient(sbx_recipient **r, struct cli_kms_opts *o, const sbx_kms_client_options *ov,
              const char *url)
{
    const struct kms_dl *kms = kms_dl_get();
    char *base = NULL, *name = NULL;
    sbx_kms_client *c = NULL, **grown;
    int err;
    if (kms == NULL)
        return sbx_error_last()->code;
    if ((err = kms->parse_key_url(url, &base, &name)) < 0 ||
        (err = kms->client_new_from_env(&c, base, ov)) < 0)
        goto out;
    if ((grown = realloc(o->clients, (o->nclients + 1) * sizeof(*grown))) == NULL) {
        kms->client_free(c);
        err = SBX_ENOMEM;
        goto out;
    }
    o->clients = grown;
    o->clients[o->nclients++] = c;
    err = kms->recipient_new(r, c, url);
out:
    free(base);
    free(name);
    return err;
}

int
cli_kms_add_recipients(sbx_recipient ***list, size_t *n, struct cli_kms_opts *o)
{
    sbx_kms_client_options ov;
    int err;
    if (o->nkeys == 0)
        return 0;
    if ((err = overrides(&ov, o)) < 0)
        return err;
    ov.urls = NULL;
    ov.url_count = 0;
    for (size_t i = 0; i < o->nkeys; i++) {
        sbx_recipient *r = NULL;
        if ((err = one_recipient(&r, o, &ov, o->keys[i])) < 0) {
            cli_errorf("--kms %s: %s", o->keys[i], sbx_error_last()->message);
            return err;
        }
        if ((err = cli_recipient_append(list, n, r)) < 0)
            return err;
    }
    return 0;
}

int
cli_kms_identity(sbx_identity **out, struct cli_kms_opts *o)
{
    const struct kms_dl *kms = kms_dl_get();
    sbx_kms_client_options ov;
    int err;
    *out = NULL;
    if (kms == NULL)
        return sbx_error_last()->code;
    if ((err = overrides(&ov, o)) < 0)
        return err;
    return kms->identity_new_from_env(out, &ov);
}

int
cli_kms_client(sbx_kms_client **out, struct cli_kms_opts *o)
{
    const struct kms_dl *kms = kms_dl_get();
    sbx_kms_client_options ov;
    int err;
    *out = NULL;
    if (kms == NULL) {
        cli_error_lib(NULL);
        return sbx_error_last()->code;
    }
    if ((err = overrides(&ov, o)) < 0)
        return err;
    ov.url_count = o->nurls > 0 ? 1 : 0; // the first --kms-url is the server
    if ((err = kms->client_new_from_env(out, NULL, &ov)) < 0)
        cli_error_lib("key server");
    return err;
}

static int
make_identity(sbx_identity **out, void *payload)
{
    return cli_kms_identity(out, payload);
}

int
cli_kms_add_identity(sbx_identity ***ids, size_t *n, struct cli_kms_opts *o, bool required)
{
    sbx_identity *id = NULL, **grown;
    // Needed for sure: load the library now. Else only if a file has an sbx-kms stanza.
    int err = required ? cli_kms_identity(&id, o) : kms_dl_lazy_identity(&id, make_identity, o);
    if (err < 0) {
        cli_error_lib("key server");
        return err;
    }
    if ((grown = realloc(*ids, (*n + 1) * sizeof(*grown))) == NULL) {
        sbx_identity_free(id);
        cli_errorf("out of memory");
        return SBX_ENOMEM;
    }
    grown[(*n)++] = id;
    *ids = grown;
    return 0;
}

void
cli_kms_hint(int err)
{
    switch (err) {
    case SBX_EDENIED:
        cli_hintf("the key server refused the request: check the token (SBX_KMS_TOKEN, "
                  "SBX_KMS_TOKEN_FILE or --kms-token-file) and that its policy allows the "
                  "operation on the key");
        break;
    case SBX_ENOKEY:
        cli_hintf("give the key server token with SBX_KMS_TOKEN_FILE=FILE or --kms-token-file "
                  "FILE (or SBX_KMS_TOKEN)");
        break;
    default:
        break;
    }
}
