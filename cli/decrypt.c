/*
 * cli/decrypt.c - sbx decrypt: INPUT (or stdin) -> [armor, detected] -> age
 * decryptor -> OUTPUT (atomic file, 0600) or stdout.
 *
 * The identities are the -i files in order, then a passphrase identity whose
 * callback reads --passphrase-file or the terminal. The library calls it only
 * when the file has a scrypt stanza, so passphrase files need no flag.
 * Last comes a key server identity (credentials from the environment and
 * the --kms-* flags), used only when the file has sbx-kms stanzas and no
 * other identity matched: files encrypted with --kms need no -i.
 */
#include "cli.h"
#include "kms_opts.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dec_args {
    const char **identity_files;
    size_t nif;
    const char *passphrase_file, *output, *input;
    int max_log_n;
    int threads; /* -j: 0 = one per CPU */
    bool quiet;
    bool ranged; /* --offset / --length given */
    uint64_t offset, length;
    struct cli_kms_opts kms;
};

/* Payload of the passphrase callback; the callback cannot set the library's message. */
struct pass_ctx {
    const char *file;
    bool asked, failed;
    char err[256];
};

static int
ask_passphrase(sbx_buf *out, void *payload)
{
    struct pass_ctx *p = payload;
    p->asked = true;
    int rc = cli_read_passphrase(out, p->file, false, p->err, sizeof(p->err));
    p->failed = rc < 0;
    return rc;
}

static void
report(int err, const struct dec_args *a, const struct pass_ctx *pass)
{
    if (pass->failed)
        cli_errorf("%s", pass->err);
    else
        cli_error_lib(NULL);
    cli_kms_hint(err);
    switch (err) {
    case SBX_ENOMATCH:
        if (pass->asked)
            cli_hintf("passphrases are case-sensitive; a passphrase file is read up to its first "
                      "newline");
        else if (strstr(sbx_error_last()->message, "key server") != NULL)
            break; // the message says which server was not contacted and how to allow it
        else if (a->nif == 0)
            cli_hintf("the file is encrypted to public keys: give the matching secret key with "
                      "-i KEYFILE");
        else
            cli_hintf("`sbx keygen -y KEYFILE` prints the public key an identity file matches");
        break;
    case SBX_EMAC:
        cli_hintf("the file was modified or corrupted after it was written; it cannot be trusted");
        break;
    case SBX_EPAYLOAD:
    case SBX_EFORMAT:
    case SBX_EARMOR:
        if (a->output != NULL)
            cli_hintf("nothing was written to %s", a->output);
        else
            cli_hintf("the output written before this error is incomplete: discard it");
        break;
    default:
        break;
    }
}

static int
load_all_identities(sbx_identity ***ids, size_t *n, struct dec_args *a, struct pass_ctx *pass)
{
    for (size_t i = 0; i < a->nif; i++) {
        if (cli_load_identities_pass(ids, n, a->identity_files[i], a->passphrase_file) < 0)
            return SBX_EFORMAT;
    }
    // cli_load_identities leaves room for one more; make sure there is an array at all.
    if (*ids == NULL && (*ids = calloc(1, sizeof(**ids))) == NULL) {
        cli_errorf("out of memory");
        return SBX_ENOMEM;
    }
    if (sbx_identity_scrypt_new_cb(&(*ids)[*n], ask_passphrase, pass, a->max_log_n) < 0) {
        cli_error_lib(NULL);
        return SBX_EINVAL;
    }
    (*n)++;
    return cli_kms_add_identity(ids, n, &a->kms, false);
}

/* Copy plaintext [offset, offset + length) through a random-access reader. */
static int
copy_range(sbx_sink *out, sbx_age_reader *r, uint64_t size, const struct dec_args *a)
{
    enum { STEP = 1 << 20 };
    uint8_t *buf = malloc(STEP);
    uint64_t pos = a->offset, end = a->length == UINT64_MAX ? UINT64_MAX : a->offset + a->length;
    size_t got = 0;
    int err = 0;
    if (buf == NULL)
        return SBX_ENOMEM;
    if (a->length != UINT64_MAX && end < a->offset)
        end = UINT64_MAX; /* offset + length overflowed: read to the end */
    if (end > size)
        end = size; /* a padded file: never return the filler */
    while (pos < end) {
        size_t want = end - pos < STEP ? (size_t)(end - pos) : STEP;
        if ((err = sbx_age_reader_pread(r, buf, want, pos, &got)) < 0 || got == 0)
            break;
        if ((err = sbx_sink_write(out, buf, got)) < 0)
            break;
        pos += got;
    }
    sbx_wipe(buf, STEP);
    free(buf);
    return err < 0 ? err : sbx_sink_finish(out);
}

/* sbx decrypt --offset/--length: only the chunks covering the range are decrypted. */
static int
run_range(const struct dec_args *a, sbx_identity **ids, size_t nids, struct pass_ctx *pass)
{
    sbx_age_reader *r = NULL;
    sbx_sink *out = NULL;
    uint64_t size = 0;
    int err, rc = CLI_FAIL;
    int fd = open(a->input, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_errorf("cannot open %s: %s", a->input, strerror(errno));
        return CLI_FAIL;
    }
    if ((err = sbx_pad_reader_open(&r, &size, NULL, fd, ids, nids)) < 0) {
        report(err, a, pass);
        goto out;
    }
    if (cli_open_output(&out, a->output, 0600) < 0)
        goto out;
    if ((err = copy_range(out, r, size, a)) < 0) {
        report(err, a, pass);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_sink_free(out);
    sbx_age_reader_free(r);
    close(fd);
    return rc;
}

static int
run(struct dec_args *a)
{
    struct pass_ctx pass = {a->passphrase_file, false, false, ""};
    sbx_identity **ids = NULL;
    size_t nids = 0;
    sbx_source *in = NULL, *counted = NULL, *dec = NULL;
    sbx_sink *out = NULL;
    sbx_age_decrypt_options opts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    bool own_counted = false;
    int err, rc = CLI_FAIL;
    opts.armor = SBX_ARMOR_AUTO;
    opts.threads = (unsigned)a->threads;
    if (load_all_identities(&ids, &nids, a, &pass) < 0)
        goto out;
    if (a->ranged) {
        rc = run_range(a, ids, nids, &pass);
        goto out;
    }
    if (sbx_source_file_new(&in, a->input) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    if (progress_source_new(&counted, &own_counted, in, progress_file_size(a->input), "decrypting",
                            a->quiet) < 0) {
        cli_errorf("out of memory");
        goto out;
    }
    if ((err = sbx_pad_decryptor_new(&dec, counted, ids, nids, &opts, NULL)) < 0) {
        report(err, a, &pass);
        goto out;
    }
    if (cli_open_output(&out, a->output, 0600) < 0)
        goto out;
    if ((err = sbx_stream_copy(out, dec, NULL)) < 0) {
        report(err, a, &pass);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_sink_free(out); // unfinished: the temporary file is removed, OUTPUT untouched
    sbx_source_free(dec);
    if (own_counted)
        sbx_source_free(counted);
    sbx_source_free(in);
    sbx_identities_free(ids, nids);
    return rc;
}

static bool
parse_u64(uint64_t *out, const char *s)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

int
cmd_decrypt(int argc, char **argv)
{
    enum { OPT_PASSFILE = 256, OPT_MAXWORK, OPT_QUIET, OPT_OFFSET, OPT_LENGTH };
    static const struct option longopts[] = {
        {"identity", required_argument, NULL, 'i'},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"max-work-factor", required_argument, NULL, OPT_MAXWORK},
        {"output", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"length", required_argument, NULL, OPT_LENGTH},
        {"kms-url", required_argument, NULL, CLI_OPT_KMS_URL},
        CLI_KMS_TRUST_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct dec_args a = {0};
    int c, rc = CLI_USAGE, nargs;
    a.max_log_n = SBX_AGE_SCRYPT_MAX_LOG_N;
    a.length = UINT64_MAX;
    if ((a.identity_files = calloc((size_t)argc, sizeof(char *))) == NULL) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    if (cli_kms_opts_init(&a.kms, argc) != CLI_OK) {
        rc = CLI_FAIL;
        goto out;
    }
    while ((c = getopt_long(argc, argv, "+:i:o:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a.identity_files[a.nif++] = optarg;
            break;
        case OPT_PASSFILE:
            a.passphrase_file = optarg;
            break;
        case OPT_MAXWORK:
            if (!cli_parse_int(&a.max_log_n, optarg, 1, 40)) {
                rc = cli_usage_errorf("decrypt",
                                      "--max-work-factor must be an integer from 1 "
                                      "to 40 (log2 of scrypt N; default %d)",
                                      SBX_AGE_SCRYPT_MAX_LOG_N);
                goto out;
            }
            break;
        case 'o':
            a.output = optarg;
            break;
        case 'j':
            if (!cli_parse_int(&a.threads, optarg, 1, SBX_AGE_MAX_THREADS)) {
                rc = cli_usage_errorf("decrypt", "-j/--threads must be an integer from 1 to %d",
                                      SBX_AGE_MAX_THREADS);
                goto out;
            }
            break;
        case 'q':
        case OPT_QUIET:
            a.quiet = true;
            break;
        case OPT_OFFSET:
        case OPT_LENGTH:
            if (!parse_u64(c == OPT_OFFSET ? &a.offset : &a.length, optarg)) {
                rc = cli_usage_errorf("decrypt", "--%s must be a byte count (a decimal integer)",
                                      c == OPT_OFFSET ? "offset" : "length");
                goto out;
            }
            a.ranged = true;
            break;
        case 'h':
            cli_help_print(stdout, "decrypt");
            rc = CLI_OK;
            goto out;
        default:
            if (c != CLI_OPT_KMS && cli_kms_option(&a.kms, c, optarg))
                break;
            rc = cli_bad_option("decrypt", c, argv, longopts);
            goto out;
        }
    }
    nargs = argc - optind;
    if ((rc = cli_operands_check("decrypt", argc, argv)) != CLI_OK)
        goto out;
    if (nargs > 1) {
        rc = cli_usage_errorf("decrypt",
                              "too many arguments: give at most one INPUT (got '%s' "
                              "after '%s'); options go before INPUT",
                              argv[optind + 1], argv[optind]);
        goto out;
    }
    a.input = nargs == 1 ? argv[optind] : "-";
    if (a.ranged && strcmp(a.input, "-") == 0) {
        rc = cli_usage_errorf("decrypt", "--offset/--length need INPUT to be a file (random "
                                         "access), not standard input");
        goto out;
    }
    if (a.output != NULL && strcmp(a.output, "-") == 0)
        a.output = NULL;
    rc = run(&a);
out:
    free(a.identity_files);
    cli_kms_opts_dispose(&a.kms);
    return rc;
}
