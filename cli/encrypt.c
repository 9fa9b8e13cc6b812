/*
 * cli/encrypt.c - sbx encrypt: INPUT (or stdin) -> age encryptor ->
 * [armor] -> OUTPUT (atomic file) or stdout.
 */
#include "cli.h"
#include "fileops_cmds.h"
#include "kms_opts.h"
#include "progress.h"
#include "recipients.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
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

static int
build_recipients(sbx_recipient ***list, size_t *n, struct enc_args *a)
{
    struct cli_recipient_args ra = {
        a->recipients, a->nr, a->recipient_files, a->nrf, a->identity_files, a->nif, &a->kms, true,
    };
    if (a->passphrase)
        return cli_recipients_add_passphrase(list, n, a->passphrase_file, a->log_n, NULL);
    return cli_recipients_load(list, n, &ra);
}

static int
run(struct enc_args *a)
{
    sbx_recipient **rs = NULL;
    size_t nrs = 0;
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
    if (build_recipients(&rs, &nrs, a) < 0 || cli_open_output(&out, a->output, 0666) < 0)
        goto out;
    if (cli_pad_encryptor_new(&enc, out, rs, nrs, &opts, &a->pad) < 0 ||
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
    sbx_recipients_free(rs, nrs);
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
    if ((rc = cli_operands_check("encrypt", argc, argv)) == CLI_OK &&
        (rc = check_args(&a, argc - optind, argv + optind)) == CLI_OK)
        rc = run(&a);
out:
    free(a.recipients);
    free(a.recipient_files);
    free(a.identity_files);
    cli_kms_opts_dispose(&a.kms);
    return rc;
}
