/*
 * server/serve.c - `sbx kms serve`: data directory, root key, admin token,
 * audit log, TLS, then the transport (see serve.h).
 *
 * Implementation notes:
 *  - Start order: data directory -> storage -> root key (file, passphrase or
 *    --dev's fixed key) -> check against storage -> keystore -> first admin
 *    token -> audit log (its rotation size, then DIR/sbx-kms.pid) -> auth
 *    and API -> TLS (certificate, ticket keys) -> listening socket -> event
 *    loops. Any failure before the loops returns the error with nothing left
 *    open; the root key is wiped on every path.
 *  - admin.token is created only when storage holds no token at all (the very
 *    first start, or a new database): written to a temporary 0600 file,
 *    installed in storage, then renamed, so a crash leaves no token file that
 *    does not work.
 */
#include "serve.h"

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "keystore.h"
#include "log.h"
#include "store.h"
#include "tls.h"
#include "util.h"

#include "strongbox/kdf.h"
#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define DEV_TOKEN            "sbxt_dev-insecure-admin-token"
#define DEV_STORAGE          "memory:sbx-kms-dev"
#define PASSPHRASE_MAX       4096
#define TICKET_REFRESH_TICKS 12 /* x KMS_HTTP_TICK_MS = every minute */

typedef struct {
    const kms_serve_options *opt;
    const kms_serve_options *given; /* as main.c built them (no defaults filled in) */
    kms_serve_options live;         /* the settings in force after the last SIGHUP (config.h) */
    char dir[PATH_MAX];
    bool dir_is_temp;
    char storage[PATH_MAX + 16];
    char cert[PATH_MAX], key[PATH_MAX];
    kms_store *st;
    kms_keystore *ks;
    kms_auth *auth;
    kms_audit *audit;
    uint8_t audit_key[32]; /* from the root key; wiped once the log has its copy */
    kms_api *api;
    kms_tls *tls;
    unsigned ticks;
    int port;
    char pid_file[PATH_MAX]; /* "" when none was written */
    unsigned threads;
} serve_ctx;

/* The last field of a start-up line under --dev (it ends the list otherwise). */
#define DEV_FIELD(s) (s)->opt->dev ? "insecure" : NULL, "INSECURE --dev: never use it for real data"

static int
path_join(char *out, size_t cap, const char *dir, const char *name)
{
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        return sbx_error_set(SBX_EINVAL, "path too long: %s/%s", dir, name);
    return 0;
}

/* ---- data directory ---- */

static int
mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return sbx_error_set(SBX_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return sbx_error_set_sys(SBX_EIO, "cannot create directory %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return sbx_error_set_sys(SBX_EIO, "cannot create directory %s", tmp);
    struct stat sb;
    if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sbx_error_set(SBX_EIO, "%s is not a directory", tmp);
    if (sb.st_mode & 077)
        kms_log(KMS_LOG_WARN, "the data directory is accessible by other users (chmod 700 it)",
                "path", tmp, NULL);
    return 0;
}

static int
default_dir(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, cap, "%s/strongbox/kms", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, cap, "%s/.local/share/strongbox/kms", home);
    else
        return sbx_error_set(SBX_EINVAL,
                             "no HOME to put the data directory in: use --data-dir DIR");
    return n >= (int)cap ? sbx_error_set(SBX_EINVAL, "data directory path too long") : 0;
}

static int
setup_dir(serve_ctx *s)
{
    const kms_serve_options *o = s->opt;
    int err;
    if (o->data_dir != NULL) {
        if (snprintf(s->dir, sizeof s->dir, "%s", o->data_dir) >= (int)sizeof s->dir)
            return sbx_error_set(SBX_EINVAL, "--data-dir path too long");
    } else if (o->dev) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof s->dir, "%s/sbx-kms-dev.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(s->dir) == NULL)
            return sbx_error_set_sys(SBX_EIO, "cannot create a temporary directory for --dev");
        s->dir_is_temp = true;
    } else if ((err = default_dir(s->dir, sizeof s->dir)) < 0) {
        return err;
    }
    char tls[PATH_MAX];
    if ((err = mkdir_p(s->dir)) < 0 || (err = path_join(tls, sizeof tls, s->dir, "tls")) < 0)
        return err;
    if (mkdir(tls, 0700) != 0 && errno != EEXIST)
        return sbx_error_set_sys(SBX_EIO, "cannot create directory %s", tls);
    return 0;
}

static void
remove_temp_dir(serve_ctx *s)
{
    static const char *const names[] = {"tls/cert.pem", "tls/key.pem", "tls", ""};
    char p[PATH_MAX];
    if (!s->dir_is_temp)
        return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (path_join(p, sizeof p, s->dir, names[i]) == 0)
            (void)remove(p);
    }
    (void)rmdir(s->dir);
}

/* ---- root key ---- */

/* Reads the first line of a passphrase file (as the CLI does): no newline, not empty. */
static int
read_passphrase(char *pass, size_t cap, size_t *len, const char *path)
{
    *len = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot open passphrase file %s", path);
    ssize_t n = 0;
    for (;;) { // byte by byte: nothing after the first line is consumed
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            n = -1;
            break;
        }
        if (r == 0 || c == '\n')
            break;
        if ((size_t)n >= cap) {
            n = -2;
            break;
        }
        pass[n++] = c;
    }
    if (!is_stdin)
        close(fd);
    if (n == -1)
        return sbx_error_set_sys(SBX_EIO, "cannot read passphrase file %s", path);
    if (n == -2)
        return sbx_error_set(SBX_ETOOBIG, "the passphrase in %s is longer than %zu bytes", path,
                             cap);
    if (n > 0 && pass[n - 1] == '\r')
        n--;
    if (n == 0)
        return sbx_error_set(SBX_ECANCELED, "passphrase file %s: an empty passphrase is refused",
                             path);
    *len = (size_t)n;
    return 0;
}

static int
root_from_passphrase(serve_ctx *s, uint8_t root[32])
{
    char *pass = sbx_secret_alloc(PASSPHRASE_MAX);
    size_t len = 0;
    if (pass == NULL)
        return sbx_error_set_nomem();
    int err = read_passphrase(pass, PASSPHRASE_MAX, &len, s->opt->unseal_passphrase_file);
    if (err == 0)
        err = kms_root_key_from_passphrase(root, s->st, pass, len);
    sbx_secret_free(pass, PASSPHRASE_MAX);
    return err;
}

static int
root_from_file(serve_ctx *s, uint8_t root[32])
{
    char path[PATH_MAX];
    uint8_t *check = NULL;
    size_t len = 0;
    int err = path_join(path, sizeof path, s->dir, "root.key");
    if (err < 0)
        return err;
    err = kms_root_key_read(root, path);
    if (err != SBX_ENOTFOUND)
        return err;
    // No root.key: a new data directory, unless the database already has keys.
    err = kms_store_get(s->st, "meta", "root-check", &check, &len, NULL);
    free(check);
    if (err == 0)
        return sbx_error_set(SBX_ENOKEY,
                             "%s is missing but the storage already holds keys sealed under a "
                             "root key: restore root.key from your backup (or use "
                             "--unseal-passphrase-file if this database was set up with one)",
                             path);
    if (err != SBX_ENOTFOUND)
        return err;
    if ((err = kms_root_key_create(root, path)) == 0)
        kms_log(KMS_LOG_INFO, "new root key written: back it up apart from the database", "path",
                path, NULL);
    return err;
}

/* Rows at rest are tagged under a key derived from the root key (store.h). */
static int
storage_integrity(kms_store *st, const uint8_t root[32])
{
    uint8_t key[32];
    int err = sbx_hkdf_sha256(key, root, 32, NULL, 0, "sbx-kms-storage-integrity-v1");
    if (err == 0)
        err = kms_store_set_integrity_key(st, key);
    SBX_WIPE_BUF(key);
    return err;
}

static int
setup_keystore(serve_ctx *s)
{
    uint8_t root[32];
    int err;
    if (s->opt->dev) {
        for (unsigned i = 0; i < 32; i++)
            root[i] = (uint8_t)i;
        err = 0;
    } else if (s->opt->unseal_passphrase_file != NULL) {
        err = root_from_passphrase(s, root);
    } else {
        err = root_from_file(s, root);
    }
    if (err == 0 && (err = kms_root_key_check(s->st, root)) < 0)
        err = sbx_error_prefix(err, "%s",
                               s->opt->unseal_passphrase_file
                                   ? "the unseal passphrase does not open this storage"
                                   : "the root key does not open this storage (restore the "
                                     "root.key that belongs to this database)");
    if (err == 0)
        err = kms_keystore_new(&s->ks, root);
    if (err == 0)
        err = storage_integrity(s->st, root);
    if (err == 0)
        err = kms_audit_key_derive(s->audit_key, root);
    SBX_WIPE_BUF(root);
    return err;
}

/* ---- admin token ---- */

static int
new_token(char out[5 + 44])
{
    uint8_t raw[32];
    char b64[48];
    int err = sbx_random_bytes(raw, sizeof raw);
    long n = err < 0 ? -1 : sbx_base64_encode(b64, sizeof b64, raw, sizeof raw, false);
    SBX_WIPE_BUF(raw);
    if (n != 43) {
        SBX_WIPE_BUF(b64);
        return sbx_error_set(SBX_ECRYPTO, "cannot make the admin token");
    }
    for (char *p = b64; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p; // base64url
    memcpy(out, "sbxt_", 5);
    memcpy(out + 5, b64, 44); // with the NUL
    SBX_WIPE_BUF(b64);
    return 0;
}

static int
write_secret_file(const char *path, const char *text)
{
    (void)unlink(path); // a leftover of an interrupted start
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot create %s", path);
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0 || !ok) {
        unlink(path);
        return sbx_error_set_sys(SBX_EIO, "cannot write %s", path);
    }
    return 0;
}

static int
first_admin_token(serve_ctx *s)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], token[5 + 44 + 1], id[17];
    int64_t n = 0;
    int err = kms_store_count(s->st, "token", &n);
    if (err < 0 || n > 0) {
        if (err == 0 && path_join(path, sizeof path, s->dir, "admin.token") == 0 &&
            access(path, F_OK) == 0)
            kms_log(KMS_LOG_INFO, "admin token file", "path", path, NULL);
        return err;
    }
    if ((err = path_join(path, sizeof path, s->dir, "admin.token")) < 0)
        return err;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((err = new_token(token)) < 0)
        return err;
    token[48] = '\n';
    token[49] = '\0';
    err = write_secret_file(tmp, token);
    token[48] = '\0';
    if (err == 0 && (err = kms_token_install(s->st, "admin", token, true, 0, id)) < 0)
        unlink(tmp);
    if (err == 0 && rename(tmp, path) != 0)
        err = sbx_error_set_sys(SBX_EIO, "cannot rename %s to %s", tmp, path);
    SBX_WIPE_BUF(token);
    if (err == 0)
        kms_log(KMS_LOG_INFO,
                "first start: admin token written (mode 0600); it is not shown anywhere else", "id",
                id, "path", path, NULL);
    return err;
}

static int
dev_admin_token(serve_ctx *s)
{
    char id[17];
    int err = kms_token_install(s->st, "dev-admin", DEV_TOKEN, true, 0, id);
    if (err == SBX_EEXISTS)
        err = 0;
    if (err == 0)
        kms_log(KMS_LOG_WARN, "INSECURE --dev admin token", "token", DEV_TOKEN, NULL);
    return err;
}

/* ---- TLS ---- */

/* The certificate and key files of o: --tls-cert and --tls-key, else DIR/tls/. */
static int
tls_paths(const serve_ctx *s, const kms_serve_options *o, char cert[PATH_MAX], char key[PATH_MAX])
{
    int err;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return sbx_error_set(SBX_EINVAL, "give both --tls-cert and --tls-key, or neither");
    if (o->tls_cert != NULL) {
        if (snprintf(cert, PATH_MAX, "%s", o->tls_cert) >= PATH_MAX ||
            snprintf(key, PATH_MAX, "%s", o->tls_key) >= PATH_MAX)
            return sbx_error_set(SBX_EINVAL, "--tls-cert or --tls-key path too long");
        return 0;
    }
    if ((err = path_join(cert, PATH_MAX, s->dir, "tls/cert.pem")) < 0)
        return err;
    return path_join(key, PATH_MAX, s->dir, "tls/key.pem");
}

static int
setup_tls(serve_ctx *s)
{
    const kms_serve_options *o = s->opt;
    char fpr[KMS_TLS_FINGERPRINT_LEN];
    int err;
    if ((err = tls_paths(s, o, s->cert, s->key)) < 0)
        return err;
    if (o->tls_cert == NULL && access(s->cert, F_OK) != 0) {
        if ((err = kms_tls_generate_cert(s->cert, s->key)) < 0)
            return err;
        kms_log(KMS_LOG_INFO, "new self-signed TLS certificate (localhost, 127.0.0.1, ::1; 1 year)",
                "path", s->cert, DEV_FIELD(s), NULL);
    }
    if ((err = kms_tls_fingerprint(fpr, s->cert)) < 0)
        return err;
    kms_log(KMS_LOG_INFO, "TLS certificate", "path", s->cert, "fingerprint", fpr, NULL);
    kms_tls_options to = {.cert_file = s->cert, .key_file = s->key, .client_ca = o->client_ca};
    if ((err = kms_tls_new(&s->tls, &to)) < 0)
        return err;
    if ((err = kms_tls_tickets_refresh(s->tls, s->ks, s->st, kms_now())) < 0)
        return sbx_error_prefix(err, "TLS session ticket keys");
    return 0;
}

/* ---- the running server ---- */

/*
 * SIGHUP (on thread 0, see serve.h): the one place that reloads. The new
 * settings are built the way main.c built the first ones (file, then flags);
 * only the live ones (config.h) are applied. Then the audit log starts a new
 * segment (what `sbx kms audit rotate` asks for), whether or not the
 * settings could be reloaded.
 */
static void
reload(void *arg)
{
    serve_ctx *s = arg;
    kms_serve_options n = {0};
    char err[KMS_CONFIG_ERR_MAX], live[256], restart[256], fpr[KMS_TLS_FINGERPRINT_LEN];
    char cert[PATH_MAX], key[PATH_MAX];
    sd_notify(0, "RELOADING=1\nSTATUS=reloading");
    kms_log(KMS_LOG_INFO, "SIGHUP received: reloading", s->live.config_file ? "config" : NULL,
            s->live.config_file, NULL);
    if (kms_config_build(&n, s->live.config_file, s->live.flags, s->live.nflags, err) < 0) {
        kms_log(KMS_LOG_ERROR, "reload failed: the running settings stay", "error", err, NULL);
        goto out;
    }
    kms_config_diff(live, sizeof live, &s->live, &n, true);
    kms_config_diff(restart, sizeof restart, s->given, &n, false);
    kms_tls_options to = {.cert_file = cert, .key_file = key, .client_ca = n.client_ca};
    int e = tls_paths(s, &n, cert, key);
    if (e == 0)
        e = kms_tls_fingerprint(fpr, cert);
    if (e == 0)
        e = kms_tls_reload(s->tls, &to);
    if (e < 0) {
        kms_log(KMS_LOG_ERROR, "reload failed: the running TLS certificate and settings stay",
                "error", sbx_error_last()->message, NULL);
        goto out;
    }
    if (restart[0] != '\0')
        kms_log(KMS_LOG_WARN, "settings changed that take effect at the next restart", "settings",
                restart, NULL);
    s->live.tls_cert = n.tls_cert;
    s->live.tls_key = n.tls_key;
    s->live.client_ca = n.client_ca;
    s->live.log_level = n.log_level;
    kms_log_set_level(n.log_level);
    snprintf(s->cert, sizeof s->cert, "%s", cert);
    snprintf(s->key, sizeof s->key, "%s", key);
    if (kms_config_pool_take(&s->live, &n) < 0) { // the live strings point into n's pool
        n.pool = NULL;                            // out of memory: leave them allocated
        n.npool = 0;
    }
    kms_log(KMS_LOG_INFO, "reloaded: new connections use the TLS certificate below", "changed",
            live[0] ? live : "nothing", "path", cert, "fingerprint", fpr, "log_level",
            kms_log_level_name(n.log_level), NULL);
out:
    kms_config_free(&n);
    if (kms_audit_rotate(s->audit, "signal") < 0)
        kms_log(KMS_LOG_WARN, "SIGHUP: audit log not rotated", "error", sbx_error_last()->message,
                NULL);
    sd_notify(0, "READY=1\nSTATUS=listening");
}

static void
stopping(void *arg)
{
    (void)arg;
    sd_notify(0, "STOPPING=1");
}

static void
watchdog(void *arg)
{
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

static void
on_tick(void *arg, kms_store *st)
{
    serve_ctx *s = arg;
    kms_api_tick(s->api, st);
    if (++s->ticks % TICKET_REFRESH_TICKS != 0)
        return;
    if (kms_tls_tickets_refresh(s->tls, s->ks, st, kms_now()) < 0) {
        kms_log(KMS_LOG_WARN, "TLS ticket keys not refreshed", "error", sbx_error_last()->message,
                NULL);
    }
}

static void
on_ready(void *arg)
{
    serve_ctx *s = arg;
    const char *l = s->opt->listen;
    char where[300], threads[16];
    snprintf(where, sizeof where, "https://%.*s:%d", (int)(strrchr(l, ':') - l), l, s->port);
    snprintf(threads, sizeof threads, "%u", s->threads);
    kms_log(KMS_LOG_INFO, "listening", "address", where, "threads", threads, "storage",
            kms_store_backend(s->st), DEV_FIELD(s), NULL);
    sd_notify(0, "READY=1\nSTATUS=listening");
    if (s->opt->ready_file == NULL)
        return;
    char tmp[PATH_MAX + 8], text[16];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->opt->ready_file);
    snprintf(text, sizeof text, "%d\n", s->port);
    FILE *f = fopen(tmp, "we");
    bool ok = f != NULL && fputs(text, f) >= 0;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, s->opt->ready_file) != 0)
        kms_log(KMS_LOG_WARN, "cannot write the ready file", "path", s->opt->ready_file, NULL);
}

/* DIR/sbx-kms.pid: where sbx kms audit rotate finds the server. */
static int
write_pid_file(serve_ctx *s)
{
    char tmp[PATH_MAX + 8];
    int err = path_join(s->pid_file, sizeof s->pid_file, s->dir, KMS_SERVE_PID_FILE);
    if (err < 0)
        return err;
    snprintf(tmp, sizeof tmp, "%s.tmp", s->pid_file);
    FILE *f = fopen(tmp, "we");
    bool ok = f != NULL && fprintf(f, "%ld\n", (long)getpid()) > 0;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, s->pid_file) != 0) {
        (void)unlink(tmp);
        err = sbx_error_set_sys(SBX_EIO, "cannot write the pid file %s", s->pid_file);
        s->pid_file[0] = '\0';
    }
    return err;
}

static int
setup(serve_ctx *s)
{
    const kms_serve_options *o = s->opt;
    int err;
    if ((err = setup_dir(s)) < 0)
        return err;
    if (o->dev) {
        kms_log(KMS_LOG_WARN,
                "INSECURE --dev mode: in-memory storage, fixed root key, fixed "
                "admin token; never use it for real data",
                NULL);
        snprintf(s->storage, sizeof s->storage, "%s", o->storage ? o->storage : DEV_STORAGE);
    } else if (o->storage != NULL) {
        snprintf(s->storage, sizeof s->storage, "%s", o->storage);
    } else {
        snprintf(s->storage, sizeof s->storage, "sqlite:%s/kms.db", s->dir);
    }
    kms_log(KMS_LOG_INFO, "data directory", "path", s->dir, DEV_FIELD(s), NULL);
    if ((err = kms_store_open(&s->st, s->storage)) < 0 || (err = setup_keystore(s)) < 0)
        return err;
    if ((err = o->dev ? dev_admin_token(s) : first_admin_token(s)) < 0)
        return sbx_error_prefix(err, "admin token");
    char audit[PATH_MAX];
    if ((err = path_join(audit, sizeof audit, s->dir, "audit.log")) < 0 ||
        (err = kms_audit_open(&s->audit, s->dir_is_temp ? NULL : audit, s->audit_key,
                              o->audit_fail_closed)) < 0)
        return err;
    SBX_WIPE_BUF(s->audit_key); // the log holds its own copy in secure memory
    kms_audit_set_max_size(s->audit, o->audit_max_size);
    if (!s->dir_is_temp && (err = write_pid_file(s)) < 0)
        return err;
    if ((err = kms_auth_new(&s->auth)) < 0)
        return err;
    kms_api_options ao = {.dev = o->dev, .storage = kms_store_backend(s->st)};
    if ((err = kms_api_new(&s->api, s->ks, s->auth, s->audit, &ao)) < 0)
        return err;
    return setup_tls(s);
}

static void
teardown(serve_ctx *s)
{
    kms_api_free(s->api);
    kms_auth_free(s->auth);
    kms_audit_close(s->audit);
    SBX_WIPE_BUF(s->audit_key);
    if (s->pid_file[0] != '\0')
        (void)unlink(s->pid_file);
    kms_tls_free(s->tls);
    kms_keystore_free(s->ks);
    kms_store_close(s->st);
    kms_config_free(&s->live);
    remove_temp_dir(s);
}

static int
check_options(const kms_serve_options *o)
{
    if (o->dev && o->unseal_passphrase_file != NULL)
        return sbx_error_set(SBX_EINVAL, "--dev uses a fixed root key: it cannot be combined with "
                                         "--unseal-passphrase-file");
    if (o->dev && o->storage != NULL)
        return sbx_error_set(SBX_EINVAL, "--dev keeps everything in memory: drop --storage");
    if (o->listen == NULL)
        return sbx_error_set(SBX_EINVAL, "no --listen address");
    return 0;
}

static unsigned
default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

/* see serve.h */
int
kms_serve(const kms_serve_options *opt)
{
    kms_serve_options o = *opt;
    if (o.listen == NULL)
        o.listen = "127.0.0.1:8443";
    serve_ctx s = {.opt = &o, .given = opt, .live = *opt};
    s.live.pool = NULL; // the caller's pool stays the caller's
    s.live.npool = 0;
    int fd = -1, err;
    uint64_t dog_usec = 0;
    kms_log_set_level(o.log_level);
    signal(SIGPIPE, SIG_IGN);
    if ((err = check_options(&o)) < 0)
        return err;
    s.threads = o.threads ? o.threads : default_threads();
    // Listen first: a bad address or a busy port fails before anything is created.
    if ((err = kms_http_listen(&fd, &s.port, o.listen)) < 0)
        return err;
    if ((err = setup(&s)) < 0) {
        close(fd);
    } else {
        // Under systemd with WatchdogSec=: a ping at half the interval, from the event loop.
        if (sd_watchdog_enabled(0, &dog_usec) <= 0)
            dog_usec = 0;
        kms_http_options ho = {
            .tls = s.tls,
            .api = s.api,
            .storage_url = s.storage,
            .store0 = s.st,
            .threads = s.threads,
            .max_body = o.max_body ? o.max_body : (1u << 20),
            .timeout = o.timeout ? o.timeout : 10,
            .listen_fd = fd,
            .tick = on_tick,
            .tick_arg = &s,
            .ready = on_ready,
            .ready_arg = &s,
            .reload = reload,
            .stopping = stopping,
            .watchdog = watchdog,
            .watchdog_ms = dog_usec ? (unsigned)(dog_usec / 2000 ? dog_usec / 2000 : 1) : 0,
            .hook_arg = &s,
        };
        err = kms_http_run(&ho);
        if (err == 0)
            kms_log(KMS_LOG_INFO, "stopped", NULL);
    }
    teardown(&s);
    return err;
}
