/*
 * cli/encrypt.c - sbx encrypt: INPUT (or stdin) -> age encryptor ->
 * [armor] -> OUTPUT (atomic file) or stdout.
 */
#include "cli.h"
#include "fileops_cmds.h"
#include "kms_opts.h"
#include "progress.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct enc_args {
    const char **recipients, **recipient_files, **identity_files;
    size_t nr, nrf, nif;
    bool passphrase, armor;
    const char *passphrase_file, *output, *input;
    int log_n;
    int threads; /* -j: 0 = one per CPU */
    bool quiet;
    struct cli_pad_opts pad;
    struct cli_kms_opts kms;
};

struct rlist {
    sbx_recipient **items;
    size_t n, cap;
};

static int
rlist_add(struct rlist *l, sbx_recipient *r)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        sbx_recipient **grown = realloc(l->items, cap * sizeof(*grown));
        if (grown == NULL) {
            sbx_recipient_free(r);
            cli_errorf("out of memory");
            return SBX_ENOMEM;
        }
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->n++] = r;
    return 0;
}

static void
rlist_free(struct rlist *l)
{
    sbx_recipients_free(l->items, l->n);
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
add_recipient_strings(struct rlist *l, const struct enc_args *a)
{
    for (size_t i = 0; i < a->nr; i++) {
        sbx_recipient *r = NULL;
        if (sbx_recipient_parse(&r, a->recipients[i]) < 0) {
            cli_errorf("-r %s: %s", shown(a->recipients[i]), sbx_error_last()->message);
            recipient_hint(a->recipients[i]);
            return SBX_EFORMAT;
        }
        if (rlist_add(l, r) < 0)
            return SBX_ENOMEM;
    }
    return 0;
}

static int
add_recipient_file(struct rlist *l, const char *path)
{
    sbx_buf text = SBX_BUF_INIT;
    sbx_recipient **list = NULL;
    size_t n = 0, i = 0;
    int err;
    if ((err = cli_read_small_file(&text, path, "recipients file", false)) < 0)
        goto out;
    if ((err = sbx_recipients_parse(&list, &n, (const char *)text.ptr, text.len)) < 0) {
        cli_errorf("recipients file %s: %s", path, sbx_error_last()->message);
        if (memmem(text.ptr, text.len, "AGE-SECRET-KEY-", 15) != NULL)
            cli_hintf("%s holds secret keys: use -i %s to encrypt to their public keys", path,
                      path);
        goto out;
    }
    for (; i < n && err == 0; i++)
        err = rlist_add(l, list[i]); // on failure rlist_add frees list[i]
    for (; i < n; i++)
        sbx_recipient_free(list[i]);
    sbx_recipients_free(list, 0);
out:
    sbx_buf_dispose(&text);
    return err;
}

static int
add_identity_file(struct rlist *l, const char *path)
{
    sbx_identity **ids = NULL;
    size_t n = 0;
    int err;
    if ((err = cli_load_identities(&ids, &n, path)) < 0)
        return err;
    for (size_t i = 0; i < n && err == 0; i++) {
        sbx_recipient *r = NULL;
        if ((err = sbx_identity_to_recipient(&r, ids[i])) < 0)
            cli_errorf("identity file %s: key %zu: %s", path, i + 1, sbx_error_last()->message);
        else
            err = rlist_add(l, r);
    }
    sbx_identities_free(ids, n);
    return err;
}

static int
add_passphrase(struct rlist *l, const struct enc_args *a)
{
    sbx_buf pass = SBX_BUF_INIT;
    sbx_recipient *r = NULL;
    char why[256] = "";
    int err = cli_read_passphrase(&pass, a->passphrase_file, true, why, sizeof(why));
    if (err < 0) {
        cli_errorf("%s", why);
        return err;
    }
    err = sbx_recipient_scrypt_new(&r, (const char *)pass.ptr, pass.len, a->log_n);
    sbx_buf_dispose(&pass);
    if (err < 0) {
        cli_error_lib(NULL);
        return err;
    }
    return rlist_add(l, r);
}

static int
add_kms(struct rlist *l, struct enc_args *a)
{
    sbx_recipient **list = NULL;
    size_t n = 0, i = 0;
    int err = cli_kms_add_recipients(&list, &n, &a->kms);
    for (; i < n && err == 0; i++)
        err = rlist_add(l, list[i]); // on failure rlist_add frees list[i]
    for (; i < n; i++)
        sbx_recipient_free(list[i]);
    free(list);
    return err;
}

static int
build_recipients(struct rlist *l, struct enc_args *a)
{
    int err = 0;
    if (a->passphrase)
        return add_passphrase(l, a);
    if ((err = add_recipient_strings(l, a)) < 0)
        return err;
    for (size_t i = 0; i < a->nrf && err == 0; i++)
        err = add_recipient_file(l, a->recipient_files[i]);
    for (size_t i = 0; i < a->nif && err == 0; i++)
        err = add_identity_file(l, a->identity_files[i]);
    if (err == 0)
        err = add_kms(l, a);
    return err;
}

static int
run(struct enc_args *a)
{
    struct rlist rl = {NULL, 0, 0};
    sbx_source *in = NULL, *counted = NULL;
    sbx_sink *out = NULL, *enc = NULL;
    sbx_age_encrypt_options opts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    bool own_counted = false;
    int rc = CLI_FAIL;
    opts.armor = a->armor;
    opts.threads = (unsigned)a->threads;
    if (sbx_source_file_new(&in, a->input) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    if (progress_source_new(&counted, &own_counted, in, progress_file_size(a->input), "encrypting",
                            a->quiet) < 0) {
        cli_errorf("out of memory");
        goto out;
    }
    if (build_recipients(&rl, a) < 0 || cli_open_output(&out, a->output, 0666) < 0)
        goto out;
    if (cli_pad_encryptor_new(&enc, out, rl.items, rl.n, &opts, &a->pad) < 0 ||
        sbx_stream_copy(enc, counted, NULL) < 0) {
        int err = sbx_error_last()->code;
        cli_error_lib(NULL);
        cli_kms_hint(err);
        if (a->output != NULL)
            cli_hintf("%s was not written", a->output);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_sink_free(enc);
    sbx_sink_free(out); // unfinished: the temporary file is removed
    if (own_counted)
        sbx_source_free(counted);
    sbx_source_free(in);
    rlist_free(&rl);
    return rc;
}

static int
check_args(struct enc_args *a, int nargs, char **rest)
{
    if (nargs > 1)
        return cli_usage_errorf("encrypt",
                                "too many arguments: give at most one INPUT (got '%s' "
                                "after '%s'); options go before INPUT",
                                rest[1], rest[0]);
    a->input = nargs == 1 ? rest[0] : "-";
    if (a->output != NULL && strcmp(a->output, "-") == 0)
        a->output = NULL;
    if (a->passphrase_file != NULL)
        a->passphrase = true;
    bool keys = a->nr + a->nrf + a->nif + a->kms.nkeys > 0;
    if (a->passphrase && keys)
        return cli_usage_errorf("encrypt",
                                "-p/--passphrase-file cannot be combined with -r, -R, -i or --kms: "
                                "a passphrase must be the only recipient of a file");
    if (a->kms.nurls > 0)
        return cli_usage_errorf("encrypt", "--kms-url is for decryption; encrypt to a key server "
                                           "key with --kms https://HOST:PORT/KEY");
    if (a->passphrase && a->pad.pad)
        return cli_usage_errorf("encrypt", "--pad/--pad-to cannot be used with a passphrase: age "
                                           "requires a passphrase stanza to be alone in the "
                                           "header, and padding adds one (use a key, or sbx pad)");
    if (!a->passphrase && !keys)
        return cli_usage_errorf("encrypt", "no recipients: give -r, -R, -i, --kms or -p");
    bool stdin_used = strcmp(a->input, "-") == 0;
    for (size_t i = 0; i < a->nrf; i++) {
        if (strcmp(a->recipient_files[i], "-") == 0 && stdin_used)
            return cli_usage_errorf("encrypt", "-R - reads standard input, which is also INPUT");
        stdin_used = stdin_used || strcmp(a->recipient_files[i], "-") == 0;
    }
    if (a->output == NULL && !a->armor && isatty(STDOUT_FILENO)) {
        cli_errorf("refusing to write binary ciphertext to a terminal");
        cli_hintf("use -a/--armor for text output, or -o FILE");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int
cmd_encrypt(int argc, char **argv)
{
    enum { OPT_PASSFILE = 256, OPT_WORK, OPT_QUIET, OPT_PAD, OPT_PADTO };
    static const struct option longopts[] = {
        {"recipient", required_argument, NULL, 'r'},
        {"recipients-file", required_argument, NULL, 'R'},
        {"identity", required_argument, NULL, 'i'},
        {"passphrase", no_argument, NULL, 'p'},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"work-factor", required_argument, NULL, OPT_WORK},
        {"armor", no_argument, NULL, 'a'},
        {"pad", no_argument, NULL, OPT_PAD},
        {"pad-to", required_argument, NULL, OPT_PADTO},
        {"output", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"kms", required_argument, NULL, CLI_OPT_KMS},
        CLI_KMS_TRUST_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct enc_args a = {0};
    size_t max = (size_t)argc;
    a.recipients = calloc(max, sizeof(char *));
    a.recipient_files = calloc(max, sizeof(char *));
    a.identity_files = calloc(max, sizeof(char *));
    int c, rc = CLI_USAGE;
    if (a.recipients == NULL || a.recipient_files == NULL || a.identity_files == NULL ||
        cli_kms_opts_init(&a.kms, argc) != CLI_OK) {
        cli_errorf("out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    while ((c = getopt_long(argc, argv, "+:r:R:i:pao:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            a.recipients[a.nr++] = optarg;
            break;
        case 'R':
            a.recipient_files[a.nrf++] = optarg;
            break;
        case 'i':
            a.identity_files[a.nif++] = optarg;
            break;
        case 'p':
            a.passphrase = true;
            break;
        case OPT_PASSFILE:
            a.passphrase_file = optarg;
            break;
        case OPT_WORK:
            if (!cli_parse_int(&a.log_n, optarg, 1, SBX_AGE_SCRYPT_MAX_LOG_N)) {
                rc = cli_usage_errorf("encrypt", "--work-factor must be an integer from 1 to %d",
                                      SBX_AGE_SCRYPT_MAX_LOG_N);
                goto out;
            }
            break;
        case OPT_PAD:
        case OPT_PADTO:
            if (cli_pad_option(&a.pad, c == OPT_PADTO ? optarg : NULL) != CLI_OK)
                goto out;
            break;
        case 'a':
            a.armor = true;
            break;
        case 'j':
            if (!cli_parse_int(&a.threads, optarg, 1, SBX_AGE_MAX_THREADS)) {
                rc = cli_usage_errorf("encrypt", "-j/--threads must be an integer from 1 to %d",
                                      SBX_AGE_MAX_THREADS);
                goto out;
            }
            break;
        case 'q':
        case OPT_QUIET:
            a.quiet = true;
            break;
        case 'o':
            a.output = optarg;
            break;
        case 'h':
            cli_help_print(stdout, "encrypt");
            rc = CLI_OK;
            goto out;
        default:
            if (cli_kms_option(&a.kms, c, optarg))
                break;
            rc = cli_bad_option("encrypt", c, argv, longopts);
            goto out;
        }
    }
    if ((rc = check_args(&a, argc - optind, argv + optind)) == CLI_OK)
        rc = run(&a);
out:
    free(a.recipients);
    free(a.recipient_files);
    free(a.identity_files);
    cli_kms_opts_dispose(&a.kms);
    return rc;
}
