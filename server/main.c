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
#include "config.h"
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

enum { OPT_DATA_DIR = 256, OPT_CONFIG };

/*
 * Every setting of `sbx kms serve` is a long option and a configuration-file
 * key of the same name (server/config.h checks the values); val 0 marks them.
 */
static const struct option serve_longopts[] = {
    {"data-dir", required_argument, NULL, 0},
    {"listen", required_argument, NULL, 0},
    {"storage", required_argument, NULL, 0},
    {"unseal-passphrase-file", required_argument, NULL, 0},
    {"tls-cert", required_argument, NULL, 0},
    {"tls-key", required_argument, NULL, 0},
    {"client-ca", required_argument, NULL, 0},
    {"threads", required_argument, NULL, 0},
    {"max-body", required_argument, NULL, 0},
    {"timeout", required_argument, NULL, 0},
    {"audit-fail-closed", no_argument, NULL, 0},
    {"dev", no_argument, NULL, 0},
    {"ready-file", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
kms_serve_cmd(int argc, char **argv)
{
    kms_config_pair *flags = calloc((size_t)argc + 1, sizeof *flags);
    kms_serve_options o = {0};
    const char *config = NULL;
    char err[KMS_CONFIG_ERR_MAX];
    size_t nflags = 0;
    int c, idx = 0, rc = CLI_OK;
    if (flags == NULL) {
        cli_errorf("kms serve: out of memory");
        return CLI_FAIL;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:h", serve_longopts, &idx)) != -1) {
        if (c == 'h') {
            cli_help_print(stdout, "kms");
            goto out;
        } else if (c == OPT_CONFIG) {
            config = optarg;
        } else if (c == 0) { // a setting: checked now, applied after the file (flags win)
            flags[nflags] = (kms_config_pair){serve_longopts[idx].name, optarg};
            kms_serve_options probe = {0};
            if (kms_config_set(&probe, flags[nflags].name, optarg, true, false, err) < 0) {
                rc = cli_usage_errorf("kms", "%s", err);
                goto out;
            }
            nflags++;
        } else {
            rc = cli_bad_option("kms", c, argv, serve_longopts);
            goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_errorf("kms", "sbx kms serve takes no operands ('%s')", argv[optind]);
        goto out;
    }
    if (kms_config_build(&o, config, flags, nflags, err) < 0) {
        cli_errorf("kms serve: %s", err); // the file's line, not a usage problem of the flags
        rc = CLI_USAGE;
        goto out;
    }
    if (kms_serve(&o) < 0) {
        cli_errorf("kms serve: %s", sbx_error_last()->message);
        rc = CLI_FAIL;
    }
out:
    kms_config_free(&o);
    free(flags);
    return rc;
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
