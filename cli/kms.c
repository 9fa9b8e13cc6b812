/*
 * cli/kms.c - sbx kms: a dispatcher. `sbx kms serve` and `sbx kms audit
 * verify` belong to the key server program, sbx-kms (server/main.c): sbx
 * execs it, without forking, so the server keeps this process's PID for
 * systemd and signals, and sbx itself links none of the server's libraries.
 *
 * Where sbx-kms is looked for, in order:
 *   1. $SBX_KMS_SERVER, when set (and then only there): a path to the program;
 *   2. the directory of the running sbx (/proc/self/exe), as in a build tree;
 *   3. SBX_KMS_SERVER_PATH, fixed at build time: LIBEXECDIR/strongbox/sbx-kms.
 *
 * Client subcommands go in the table below, beside serve and audit:
 * age-recipient and age-identity print the strings of the age plugin
 * age-plugin-sbxkms (docs/plugins.md), with libstrongbox-kms.
 */
#include "cli.h"
#include "kms_client.h"
#include "kms_dl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SBX_KMS_SERVER_PATH
#define SBX_KMS_SERVER_PATH "/usr/local/libexec/strongbox/sbx-kms"
#endif

#define KMS_PROGRAM "sbx-kms"
#define KMS_SUBCOMMANDS                                                                            \
    "serve, audit verify|export-key, status, key, datakey, encrypt, decrypt, rewrap, token, "      \
    "policy, cert,"                                                                                \
    " age-recipient, age-identity"

int cmd_kms(int argc, char **argv);

/* The sbx-kms beside the running sbx, in path (cap bytes). @return false if none. */
static bool
beside_self(char *path, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    return (size_t)snprintf(path, cap, "%s/%s", self, KMS_PROGRAM) < cap;
}

/*
 * Find sbx-kms: its path in path, or false with the places looked at in
 * looked (comma-separated).
 */
static bool
find_server(char *path, size_t cap, char *looked, size_t lcap)
{
    const char *env = getenv("SBX_KMS_SERVER");
    if (env != NULL && *env != '\0') {
        snprintf(looked, lcap, "SBX_KMS_SERVER=%s", env);
        return access(env, X_OK) == 0 && (size_t)snprintf(path, cap, "%s", env) < cap;
    }
    looked[0] = '\0';
    if (beside_self(path, cap)) {
        if (access(path, X_OK) == 0)
            return true;
        snprintf(looked, lcap, "%s, ", path);
    }
    size_t used = strlen(looked);
    snprintf(looked + used, lcap - used, "%s", SBX_KMS_SERVER_PATH);
    return access(SBX_KMS_SERVER_PATH, X_OK) == 0 &&
           (size_t)snprintf(path, cap, "%s", SBX_KMS_SERVER_PATH) < cap;
}

/* Replace this process with `sbx-kms SUBCOMMAND ARGS...`; returns only on failure. */
static int
exec_server(int argc, char **argv)
{
    char path[PATH_MAX], looked[3 * PATH_MAX];
    if (!find_server(path, sizeof path, looked, sizeof looked)) {
        cli_errorf("the key server program %s is not installed (looked in %s): install the "
                   "strongbox key server package, or set SBX_KMS_SERVER to the path of %s",
                   KMS_PROGRAM, looked, KMS_PROGRAM);
        return CLI_FAIL;
    }
    char **args = calloc((size_t)argc + 2, sizeof(*args)); // sbx-kms, SUBCOMMAND ARGS..., NULL
    if (args == NULL) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    args[0] = (char *)KMS_PROGRAM;
    memcpy(args + 1, argv, (size_t)argc * sizeof(*args));
    fflush(NULL);
    execv(path, args);
    cli_errorf("cannot run the key server program %s: %s", path, strerror(errno));
    free(args);
    return CLI_FAIL;
}

/* Print one plugin string made by make(); usage errors for a bad argument. */
static int
print_age_string(const char *what,
                 int (*make)(sbx_buf *out, const struct kms_dl *kms, int argc, char **argv),
                 int argc, char **argv)
{
    const struct kms_dl *kms = kms_dl_get();
    sbx_buf out = SBX_BUF_INIT;
    if (kms == NULL) {
        cli_error_lib(NULL);
        return CLI_FAIL;
    }
    int err = make(&out, kms, argc, argv);
    if (err == SBX_EINVAL) {
        char why[512];
        snprintf(why, sizeof(why), "%s", sbx_error_last()->message);
        sbx_buf_dispose(&out);
        return cli_usage_errorf("kms", "%s: %s", what, why);
    }
    if (err == 0)
        printf("%.*s\n", (int)out.len, (const char *)out.ptr);
    else
        cli_error_lib(what);
    sbx_buf_dispose(&out);
    return err == 0 ? CLI_OK : CLI_FAIL;
}

static int
make_recipient(sbx_buf *out, const struct kms_dl *kms, int argc, char **argv)
{
    if (argc != 2)
        return sbx_error_set(SBX_EINVAL, "give one key URL https://HOST:PORT/KEY");
    return kms->age_recipient(out, argv[1]);
}

static int
make_identity(sbx_buf *out, const struct kms_dl *kms, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            return sbx_error_set(SBX_EINVAL, "unknown option %s (give server URLs, or nothing)",
                                 argv[i]);
    }
    return kms->age_identity(out, (const char *const *)argv + 1, (size_t)argc - 1);
}

/* sbx kms age-recipient https://HOST:PORT/KEY: the recipient age1sbxkms1... of a key. */
static int
age_recipient(int argc, char **argv)
{
    return print_age_string("kms age-recipient", make_recipient, argc, argv);
}

/* sbx kms age-identity [URL...]: the identity AGE-PLUGIN-SBXKMS-1... for age -i. */
static int
age_identity(int argc, char **argv)
{
    return print_age_string("kms age-identity", make_identity, argc, argv);
}

struct kms_subcommand {
    const char *name;
    int (*run)(int argc, char **argv); // argv[0] is the subcommand
};

static const struct kms_subcommand subcommands[] = {
    {"serve", exec_server},
    {"audit", exec_server},
    // the client commands: cli/kms_client.c
    {"status", kms_client_main},
    {"key", kms_client_main},
    {"datakey", kms_client_main},
    {"encrypt", kms_client_main},
    {"decrypt", kms_client_main},
    {"rewrap", kms_client_main},
    {"token", kms_client_main},
    {"policy", kms_client_main},
    {"cert", kms_client_main},
    {"age-recipient", age_recipient},
    {"age-identity", age_identity},
};

int
cmd_kms(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_errorf("kms", "give a subcommand: " KMS_SUBCOMMANDS);
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        cli_help_print(stdout, "kms");
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(sub, subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    }
    return cli_usage_errorf("kms", "unknown subcommand '%s' (" KMS_SUBCOMMANDS ")", sub);
}
