/*
 * server/main.c - sbx-kms, the key server program: `sbx-kms serve [FLAGS]`
 * runs the server (server/serve.h), `sbx-kms audit verify FILE` checks its
 * audit log (server/audit.h).
 *
 * Users run it as `sbx kms serve ...`: sbx execs this program (cli/kms.c),
 * so the server keeps the PID that systemd and signals address. It speaks as
 * `sbx kms`: the same messages, usage lines and manual page (cli/messages.c,
 * cli/manual.c, cli/kms_manual.c), and the exit status of sbx (0 success, 1
 * failure, 2 usage error).
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

const struct cli_page cli_pages[] = {{"kms", usage_kms, help_kms}};
const size_t cli_npages = sizeof(cli_pages) / sizeof(cli_pages[0]);

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
main(int argc, char **argv)
{
    cli_process_start(); // before anything else: key memory locked, no core dumps
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return kms_serve_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "audit") == 0)
        return kms_audit_cmd(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    return cli_usage_errorf("kms", "sbx-kms runs as: sbx kms serve or sbx kms audit verify");
}
