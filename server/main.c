/*
 * server/main.c - sbx-kms, the key server program: `sbx-kms serve [FLAGS]`
 * runs the server (server/serve.h), `sbx-kms audit verify [DIR | FILE...]`
 * checks its audit log (a series of segments), `sbx-kms audit rotate` has a
 * running server start a new segment (SIGHUP through DIR/sbx-kms.pid) and
 * `sbx-kms audit export-key` writes its audit key (server/audit.h).
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
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strongbox/memory.h"

const struct cli_page cli_pages[] = {{"kms", usage_kms, help_kms}};
const size_t cli_npages = sizeof(cli_pages) / sizeof(cli_pages[0]);

enum { OPT_DATA_DIR = 256, OPT_CONFIG };

#define ROTATE_WAIT_MS 15000 /* sbx kms audit rotate: how long to wait for the new segment */

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
    {"audit-max-size", required_argument, NULL, 0},
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
    bool partial;              /* --partial */
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

static bool
is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/*
 * The files to verify: the series of DIR/audit.log (--data-dir or a single
 * directory operand), else the operands in the order given.
 */
static int
audit_files(char ***list, size_t *n, const audit_args *a, char **ops, int nops)
{
    char log[4096];
    const char *dir = nops == 1 && is_dir(ops[0]) ? ops[0] : nops == 0 ? a->data_dir : NULL;
    if (dir != NULL) {
        if (!join(log, sizeof log, dir, "audit.log"))
            return sbx_error_set(SBX_EINVAL, "path too long: %s", dir);
        if (access(log, F_OK) != 0)
            return sbx_error_set_sys(SBX_EIO, "no live audit log %s", log);
        return kms_audit_series(list, n, log);
    }
    *list = calloc((size_t)nops + 1, sizeof **list);
    if (*list == NULL)
        return sbx_error_set_nomem();
    for (int i = 0; i < nops; i++)
        if (((*list)[i] = strdup(ops[i])) == NULL)
            return sbx_error_set_nomem();
    *n = (size_t)nops;
    return 0;
}

static int
audit_verify(const audit_args *a, char **ops, int nops)
{
    char probe[4096];
    uint8_t key[32];
    bool have = false;
    kms_audit_report rep;
    char **list = NULL;
    size_t n = 0;
    if (nops == 0 && a->data_dir == NULL)
        return cli_usage_errorf("kms", "sbx kms audit verify needs --data-dir DIR, DIR or FILES");
    int err = audit_files(&list, &n, a, ops, nops);
    if (err == 0 && n > 0) { // a directory operand: its root.key, as for the log inside it
        const char *where =
            nops == 1 && is_dir(ops[0]) && join(probe, sizeof probe, ops[0], "audit.log")
                ? probe
                : list[n - 1];
        err = audit_key(key, &have, a, where);
    }
    if (err == 0)
        err = kms_audit_verify_series((const char *const *)list, n, have ? key : NULL, a->unkeyed,
                                      a->partial, &rep);
    SBX_WIPE_BUF(key);
    kms_audit_series_free(list);
    if (err < 0) {
        cli_errorf("%s", sbx_error_last()->message); // begins with the file
        return CLI_FAIL;
    }
    printf("audit log intact: %" PRIu64 " line%s", rep.lines, rep.lines == 1 ? "" : "s");
    if (rep.segments > 1 || rep.first_segment > 1)
        printf(" in %" PRIu64 " segment%s (%" PRIu64 " to %" PRIu64 "%s)", rep.segments,
               rep.segments == 1 ? "" : "s", rep.first_segment,
               rep.first_segment + rep.segments - 1,
               rep.first_segment > 1 ? "; earlier segments not checked (--partial)" : "");
    if (rep.unkeyed == 0)
        printf(", keyed (HMAC-SHA-256 chain under the audit key)");
    else
        printf(", %s%" PRIu64 " unkeyed (written before keyed chains; anyone who can write the "
               "log could have made those)",
               rep.unkeyed == rep.lines ? "all " : "", rep.unkeyed);
    if (rep.lost > 0)
        printf("; %" PRIu64 " request%s answered without a line (recorded as lost: the log could "
               "not be written)",
               rep.lost, rep.lost == 1 ? " was" : "s were");
    printf("\n");
    return CLI_OK;
}

/* The live log's segment number: one past the number of DIR's last segment. */
static int
live_segment_of(uint64_t *seg, const char *log)
{
    char **list;
    size_t n;
    int err = kms_audit_series(&list, &n, log);
    if (err < 0)
        return err;
    const char *dot = n > 1 ? strrchr(list[n - 2], '.') : NULL;
    *seg = dot != NULL ? strtoull(dot + 1, NULL, 10) + 1 : 1;
    kms_audit_series_free(list);
    return 0;
}

/*
 * sbx kms audit rotate --data-dir DIR: SIGHUP to the server whose pid is in
 * DIR/sbx-kms.pid (which must be an sbx-kms process), then waits until the
 * live log has become a segment.
 */
static int
audit_rotate(const audit_args *a)
{
    char pidfile[4096], log[4096], comm[64] = "", procp[64];
    struct stat sb;
    uint64_t before, now;
    long pid = 0;
    if (a->data_dir == NULL)
        return cli_usage_errorf("kms", "use: sbx kms audit rotate --data-dir DIR");
    if (!join(pidfile, sizeof pidfile, a->data_dir, KMS_SERVE_PID_FILE) ||
        !join(log, sizeof log, a->data_dir, "audit.log"))
        return cli_usage_errorf("kms", "--data-dir: path too long");
    FILE *f = fopen(pidfile, "re");
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        if (f != NULL)
            fclose(f);
        cli_errorf("kms audit rotate: no server pid in %s: is sbx kms serve running on this data "
                   "directory?",
                   pidfile);
        return CLI_FAIL;
    }
    fclose(f);
    snprintf(procp, sizeof procp, "/proc/%ld/comm", pid);
    f = fopen(procp, "re");
    if (f == NULL || fgets(comm, sizeof comm, f) == NULL || strncmp(comm, "sbx-kms", 7) != 0) {
        if (f != NULL)
            fclose(f);
        cli_errorf("kms audit rotate: process %ld (from %s) is not a running sbx-kms: a stale pid "
                   "file?",
                   pid, pidfile);
        return CLI_FAIL;
    }
    fclose(f);
    if (stat(log, &sb) != 0 || sb.st_size == 0) {
        printf("audit log %s is empty: nothing to rotate\n", log);
        return CLI_OK;
    }
    int err = live_segment_of(&before, log);
    if (err == 0 && kill((pid_t)pid, SIGHUP) != 0)
        err = sbx_error_set_sys(SBX_EIO, "cannot signal process %ld", pid);
    for (int waited = 0; err == 0; waited += 100) {
        if ((err = live_segment_of(&now, log)) < 0 || now > before)
            break;
        if (waited >= ROTATE_WAIT_MS) {
            err = sbx_error_set(SBX_EIO,
                                "the server (pid %ld) did not rotate within %d s: see its "
                                "log",
                                pid, ROTATE_WAIT_MS / 1000);
            break;
        }
        usleep(100 * 1000);
    }
    if (err < 0) {
        cli_errorf("kms audit rotate: %s", sbx_error_last()->message);
        return CLI_FAIL;
    }
    printf("audit log rotated: segment %" PRIu64 " is %s." KMS_AUDIT_SEGMENT_FMT
           ", segment %" PRIu64 " goes on in %s\n",
           now - 1, log, now - 1, now, log);
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
    enum { OPT_KEY_FILE = 300, OPT_REQUIRE_KEYED, OPT_ALLOW_UNKEYED, OPT_PARTIAL };
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"require-keyed", no_argument, NULL, OPT_REQUIRE_KEYED},
        {"allow-unkeyed", no_argument, NULL, OPT_ALLOW_UNKEYED},
        {"partial", no_argument, NULL, OPT_PARTIAL},
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
        } else if (c == OPT_PARTIAL) {
            a.partial = true;
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
    int nops = argc - optind - 1;
    bool verify = strcmp(sub, "verify") == 0, rotate = strcmp(sub, "rotate") == 0;
    if ((!verify && !rotate && strcmp(sub, "export-key") != 0) || (!verify && nops > 1) ||
        (rotate && nops > 0))
        return cli_usage_errorf("kms",
                                "use: sbx kms audit verify [--data-dir DIR | --key-file "
                                "FILE] [--require-keyed | --allow-unkeyed] [--partial] [DIR | "
                                "FILE...], sbx kms audit rotate --data-dir DIR, or sbx kms audit "
                                "export-key --data-dir DIR FILE");
    if (a.data_dir != NULL && a.key_file != NULL)
        return cli_usage_errorf("kms", "give --data-dir or --key-file, not both");
    if (verify)
        return audit_verify(&a, argv + optind + 1, nops);
    if (rotate)
        return audit_rotate(&a);
    return audit_export_key(&a, nops == 1 ? argv[optind + 1] : NULL);
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
