/*
 * server/main.c - sbx-kms, the key server program: `sbx-kms serve [FLAGS]`
 * runs the server (server/serve.h), `sbx-kms audit verify [LOG]` checks its
 * audit log and `sbx-kms audit export-key` writes its audit key (server/audit.h).
 *
 * Users run it as `sbx kms serve ...`: sbx execs this program (cli/kms.c),
 * so the server keeps the PID that systemd and signals address. It speaks as
 * `sbx kms`: the same messages, usage lines and manual page (cli/messages.c,
 * cli/manual.c, cli/kms_manual.c), and the exit status of sbx (0 success, 1
 * failure, 2 usage error).
 */
#include "cli.h"

#include "audit.h"
#include "keystore.h"
#include "serve.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strongbox/memory.h"

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

/* ---- sbx kms audit ---- */

typedef struct {
    const char *data_dir;
    const char *key_file;
    kms_audit_unkeyed unkeyed; /* --allow-unkeyed, --require-keyed */
} audit_args;

/* DIR/NAME into out; false when it does not fit. */
static bool
join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* The audit key of DIR's root.key. */
static int
key_from_data_dir(uint8_t key[32], const char *dir)
{
    char path[4096];
    uint8_t root[32];
    if (!join(path, sizeof path, dir, "root.key"))
        return sbx_error_set(SBX_EINVAL, "data directory path too long");
    int err = kms_root_key_read(root, path);
    if (err == 0)
        err = kms_audit_key_derive(key, root);
    SBX_WIPE_BUF(root);
    return err;
}

/*
 * The key for verifying log: --key-file, else --data-dir's root.key, else a
 * root.key next to the log (the data directory's layout). *have false: none.
 */
static int
audit_key(uint8_t key[32], bool *have, const audit_args *a, const char *log)
{
    char dir[4096], probe[4096];
    *have = true;
    if (a->key_file != NULL)
        return kms_key_file_read(key, a->key_file, "audit key");
    if (a->data_dir != NULL)
        return key_from_data_dir(key, a->data_dir);
    snprintf(dir, sizeof dir, "%s", log);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; // keep "/" for a log at the root
    if (join(probe, sizeof probe, dir, "root.key") && access(probe, F_OK) == 0)
        return key_from_data_dir(key, dir);
    *have = false;
    return 0;
}

static int
audit_verify(const audit_args *a, const char *log_arg)
{
    char log[4096];
    uint8_t key[32];
    bool have = false;
    kms_audit_report rep;
    if (log_arg == NULL && a->data_dir == NULL)
        return cli_usage_errorf("kms", "sbx kms audit verify needs FILE or --data-dir DIR");
    if (log_arg == NULL && !join(log, sizeof log, a->data_dir, "audit.log"))
        return cli_usage_errorf("kms", "--data-dir: path too long");
    if (log_arg != NULL)
        snprintf(log, sizeof log, "%s", log_arg);
    int err = audit_key(key, &have, a, log);
    if (err == 0)
        err = kms_audit_verify(log, have ? key : NULL, a->unkeyed, &rep);
    SBX_WIPE_BUF(key);
    if (err < 0) {
        cli_errorf("%s: %s", log, sbx_error_last()->message);
        return CLI_FAIL;
    }
    printf("audit log intact: %" PRIu64 " line%s", rep.lines, rep.lines == 1 ? "" : "s");
    if (rep.unkeyed == 0)
        printf(", keyed (HMAC-SHA-256 chain under the audit key)\n");
    else
        printf(", %s%" PRIu64 " unkeyed (written before keyed chains; anyone who can write the "
               "log could have made those)\n",
               rep.unkeyed == rep.lines ? "all " : "", rep.unkeyed);
    return CLI_OK;
}

static int
audit_export_key(const audit_args *a, const char *out)
{
    uint8_t key[32];
    if (a->data_dir == NULL || out == NULL)
        return cli_usage_errorf("kms", "use: sbx kms audit export-key --data-dir DIR FILE");
    int err = key_from_data_dir(key, a->data_dir);
    if (err == 0)
        err = kms_key_file_write(key, out, "audit key");
    SBX_WIPE_BUF(key);
    if (err < 0) {
        cli_errorf("kms audit export-key: %s", sbx_error_last()->message);
        return CLI_FAIL;
    }
    printf("audit key written to %s (mode 0600): it verifies the audit log and can also forge "
           "it; guard it like the root key\n",
           out);
    return CLI_OK;
}

static int
kms_audit_cmd(int argc, char **argv)
{
    enum { OPT_KEY_FILE = 300, OPT_REQUIRE_KEYED, OPT_ALLOW_UNKEYED };
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"require-keyed", no_argument, NULL, OPT_REQUIRE_KEYED},
        {"allow-unkeyed", no_argument, NULL, OPT_ALLOW_UNKEYED},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    audit_args a = {0};
    int c;
    optind = 1;
    // no '+': options may come before or after the subcommand and the log
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            cli_help_print(stdout, "kms");
            return CLI_OK;
        } else if (c == OPT_DATA_DIR) {
            a.data_dir = optarg;
        } else if (c == OPT_KEY_FILE) {
            a.key_file = optarg;
        } else if (c == OPT_REQUIRE_KEYED || c == OPT_ALLOW_UNKEYED) {
            if (a.unkeyed != KMS_AUDIT_UNKEYED_PREFIX)
                return cli_usage_errorf("kms", "give --allow-unkeyed or --require-keyed, not both");
            a.unkeyed = c == OPT_REQUIRE_KEYED ? KMS_AUDIT_UNKEYED_REFUSE : KMS_AUDIT_UNKEYED_ALLOW;
        } else {
            return cli_bad_option("kms", c, argv, longopts);
        }
    }
    const char *sub = optind < argc ? argv[optind] : "";
    if ((strcmp(sub, "verify") != 0 && strcmp(sub, "export-key") != 0) || argc - optind > 2)
        return cli_usage_errorf("kms",
                                "use: sbx kms audit verify [--data-dir DIR | --key-file "
                                "FILE] [--require-keyed | --allow-unkeyed] [LOG], or sbx kms audit "
                                "export-key --data-dir DIR FILE");
    if (a.data_dir != NULL && a.key_file != NULL)
        return cli_usage_errorf("kms", "give --data-dir or --key-file, not both");
    const char *operand = argc - optind == 2 ? argv[optind + 1] : NULL;
    return strcmp(sub, "verify") == 0 ? audit_verify(&a, operand) : audit_export_key(&a, operand);
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
