/*
 * cli/kms.c - sbx kms: run the key management server (serve) and check its
 * audit log (audit verify). See docs/kms.md and server/serve.h.
 */
#include "cli.h"

#include "audit.h"
#include "serve.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_kms(int argc, char **argv);

enum {
    OPT_DATA_DIR = 256,
    OPT_LISTEN,
    OPT_STORAGE,
    OPT_PASSFILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_CLIENT_CA,
    OPT_THREADS,
    OPT_MAX_BODY,
    OPT_TIMEOUT,
    OPT_FAIL_CLOSED,
    OPT_DEV,
    OPT_READY_FILE,
};

#define MAX_BODY_LIMIT (256u << 20) /* --max-body at most 256 MiB */

/* Parses a byte count: digits with an optional K, M or G suffix (binary units). */
static bool
parse_size(size_t *out, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (errno != 0 || end == s || s[0] == '-')
        return false;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift != 0)
        end++;
    if (*end != '\0' || v == 0 || v > (MAX_BODY_LIMIT >> shift))
        return false;
    *out = (size_t)(v << shift);
    return true;
}

static int
serve_option(kms_serve_options *o, int c)
{
    int n;
    switch (c) {
    case OPT_DATA_DIR:
        o->data_dir = optarg;
        break;
    case OPT_LISTEN:
        o->listen = optarg;
        break;
    case OPT_STORAGE:
        o->storage = optarg;
        break;
    case OPT_PASSFILE:
        o->unseal_passphrase_file = optarg;
        break;
    case OPT_TLS_CERT:
        o->tls_cert = optarg;
        break;
    case OPT_TLS_KEY:
        o->tls_key = optarg;
        break;
    case OPT_CLIENT_CA:
        o->client_ca = optarg;
        break;
    case OPT_THREADS:
        if (!cli_parse_int(&n, optarg, 1, 256))
            return cli_usage_errorf("kms", "--threads takes a number from 1 to 256");
        o->threads = (unsigned)n;
        break;
    case OPT_MAX_BODY:
        if (!parse_size(&o->max_body, optarg))
            return cli_usage_errorf("kms", "--max-body takes a byte count from 1 to 256M");
        break;
    case OPT_TIMEOUT:
        if (!cli_parse_int(&n, optarg, 1, 3600))
            return cli_usage_errorf("kms", "--timeout takes seconds from 1 to 3600");
        o->timeout = (unsigned)n;
        break;
    case OPT_FAIL_CLOSED:
        o->audit_fail_closed = true;
        break;
    case OPT_DEV:
        o->dev = true;
        break;
    case OPT_READY_FILE:
        o->ready_file = optarg;
        break;
    default:
        return -1;
    }
    return 0;
}

static int
kms_serve_cmd(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"storage", required_argument, NULL, OPT_STORAGE},
        {"unseal-passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"audit-fail-closed", no_argument, NULL, OPT_FAIL_CLOSED},
        {"dev", no_argument, NULL, OPT_DEV},
        {"ready-file", required_argument, NULL, OPT_READY_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kms_serve_options o = {0};
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            cli_help_print(stdout, "kms");
            return CLI_OK;
        }
        if ((rc = serve_option(&o, c)) > 0)
            return rc;
        if (rc < 0)
            return cli_bad_option("kms", c, argv, longopts);
    }
    if (optind < argc)
        return cli_usage_errorf("kms", "sbx kms serve takes no operands ('%s')", argv[optind]);
    if (kms_serve(&o) < 0) {
        cli_errorf("kms serve: %s", sbx_error_last()->message);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int
kms_audit_cmd(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c != 'h')
            return cli_bad_option("kms", c, argv, longopts);
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    if (argc - optind != 2 || strcmp(argv[optind], "verify") != 0)
        return cli_usage_errorf("kms", "use: sbx kms audit verify FILE");
    uint64_t lines = 0;
    if (kms_audit_verify(argv[optind + 1], &lines) < 0) {
        cli_errorf("%s: %s", argv[optind + 1], sbx_error_last()->message);
        return CLI_FAIL;
    }
    printf("audit log intact: %" PRIu64 " line%s\n", lines, lines == 1 ? "" : "s");
    return CLI_OK;
}

int
cmd_kms(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_errorf("kms", "give a subcommand: serve or audit verify");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    if (strcmp(sub, "serve") == 0)
        return kms_serve_cmd(argc - 1, argv + 1);
    if (strcmp(sub, "audit") == 0)
        return kms_audit_cmd(argc - 1, argv + 1);
    return cli_usage_errorf("kms", "unknown subcommand '%s' (serve, audit verify)", sub);
}
