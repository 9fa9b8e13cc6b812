/*
 * server/keystore_root.c - the root key: key file, unseal passphrase, check value.
 *
 * Implementation notes:
 *  - Key file: 64 hex digits and an optional newline, mode 0600 (any group or
 *    other bit is refused, as ssh does for private keys). Created with
 *    O_CREAT|O_EXCL|O_NOFOLLOW at mode 0600, fsynced with its directory.
 *  - Unseal record (namespace "meta", key "unseal"): "scrypt:<log2 N>:<salt,
 *    64 hex>", r = 8, p = 1. The cost is read back from the record, so a
 *    database made with another cost still opens; it is bounded (10..22).
 *  - Check value (namespace "meta", key "root-check"): "sbx-root-check-1:" and
 *    the hex of HMAC-SHA-256(HKDF(root, "sbx-kms-root-check-v1"), label).
 *    It reveals nothing usable about the root key and is compared in
 *    constant time.
 */
#include "keystore_internal.h"
#include "util.h"

#include "strongbox/kdf.h"
#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define UNSEAL_PREFIX "scrypt:"
#define CHECK_PREFIX  "sbx-root-check-1:"
#define PASS_MAX      4096

unsigned kms__unseal_log_n = 17;

/* ---- key file ---- */

static int
read_small(int fd, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sbx_error_set_sys(SBX_EIO, "cannot read the root key file");
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    return 0;
}

/* see keystore.h */
int
kms_key_file_read(uint8_t root[32], const char *path, const char *what)
{
    char buf[72];
    size_t n = 0;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx_error_set_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO,
                                 "cannot open %s file %s", what, path);
    int err = fstat(fd, &sb) != 0 ? sbx_error_set_sys(SBX_EIO, "cannot stat %s", path) : 0;
    if (err == 0 && !S_ISREG(sb.st_mode))
        err = sbx_error_set(SBX_EINVAL, "%s file %s is not a regular file", what, path);
    if (err == 0 && (sb.st_mode & 077) != 0)
        err = sbx_error_set(SBX_EINVAL,
                            "%s file %s is accessible by group or others (mode %03o); "
                            "run chmod 600 on it",
                            what, path, (unsigned)(sb.st_mode & 0777));
    if (err == 0)
        err = read_small(fd, buf, sizeof(buf), &n);
    close(fd);
    if (err == 0 && n == 65 && buf[64] == '\n')
        n = 64;
    if (err == 0 && n != 64)
        err = sbx_error_set(SBX_EFORMAT, "%s file %s must hold 64 hex digits", what, path);
    if (err == 0) {
        buf[64] = '\0';
        if (kms_unhex(root, 32, buf) < 0)
            err = sbx_error_set(SBX_EFORMAT, "%s file %s must hold 64 hex digits", what, path);
    }
    SBX_WIPE_BUF(buf);
    if (err < 0)
        sbx_wipe(root, 32);
    return err;
}

/* see keystore.h */
int
kms_root_key_read(uint8_t root[32], const char *path)
{
    return kms_key_file_read(root, path, "root key");
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return sbx_error_set_sys(SBX_EIO, "cannot write the key file");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so the new name survives a crash. */
static int
sync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot open the directory of %s", path);
    int err =
        fsync(fd) != 0 ? sbx_error_set_sys(SBX_EIO, "cannot fsync the directory of %s", path) : 0;
    close(fd);
    return err;
}

/* see keystore.h */
int
kms_key_file_write(const uint8_t key[32], const char *path, const char *what)
{
    char hex[66];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sbx_error_set_sys(errno == EEXIST ? SBX_EEXISTS : SBX_EIO,
                                 "cannot create %s file %s", what, path);
    kms_hex(hex, key, 32);
    hex[64] = '\n';
    int err = write_all(fd, hex, 65);
    if (err == 0 && fsync(fd) != 0)
        err = sbx_error_set_sys(SBX_EIO, "cannot fsync %s file %s", what, path);
    if (close(fd) != 0 && err == 0)
        err = sbx_error_set_sys(SBX_EIO, "cannot close %s file %s", what, path);
    if (err == 0)
        err = sync_dir(path);
    SBX_WIPE_BUF(hex);
    if (err < 0)
        unlink(path);
    return err;
}

/* see keystore.h */
int
kms_root_key_create(uint8_t root[32], const char *path)
{
    int err = sbx_random_bytes(root, 32);
    if (err == 0)
        err = kms_key_file_write(root, path, "root key");
    if (err < 0)
        sbx_wipe(root, 32);
    return err;
}

/* ---- unseal passphrase ---- */

static int
parse_unseal(const uint8_t *val, size_t len, unsigned *log_n, uint8_t salt[32])
{
    char text[80];
    size_t pl = sizeof(UNSEAL_PREFIX) - 1;
    if (len >= sizeof(text) || len < pl || memcmp(val, UNSEAL_PREFIX, pl) != 0)
        return sbx_error_set(SBX_EIO, "stored unseal parameters are corrupt");
    memcpy(text, val, len);
    text[len] = '\0';
    char *end = NULL;
    unsigned long n = strtoul(text + pl, &end, 10);
    if (end == text + pl || *end != ':' || n < 10 || n > 22 || kms_unhex(salt, 32, end + 1) < 0)
        return sbx_error_set(SBX_EIO, "stored unseal parameters are corrupt");
    *log_n = (unsigned)n;
    return 0;
}

/* Reads the unseal record, creating it on first use (a racing node's record wins). */
static int
unseal_params(kms_store *st, unsigned *log_n, uint8_t salt[32])
{
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *val = NULL;
        size_t len = 0;
        int err = kms_store_get(st, "meta", "unseal", &val, &len, NULL);
        if (err == 0)
            err = parse_unseal(val, len, log_n, salt);
        free(val);
        if (err != SBX_ENOTFOUND)
            return err;
        char text[sizeof(UNSEAL_PREFIX) + 8 + 64];
        err = sbx_random_bytes(salt, 32);
        if (err < 0)
            return err;
        int hl = snprintf(text, sizeof(text), UNSEAL_PREFIX "%u:", kms__unseal_log_n);
        kms_hex(text + hl, salt, 32);
        err = kms_store_put(st, "meta", "unseal", text, strlen(text), KMS_REV_ABSENT, NULL);
        if (err == 0) {
            *log_n = kms__unseal_log_n;
            return 0;
        }
        if (err != SBX_ECONFLICT)
            return err;
    }
    return sbx_error_set(SBX_EIO, "cannot read or create the unseal parameters");
}

/* see keystore.h */
int
kms_root_key_from_passphrase(uint8_t root[32], kms_store *st, const char *pass, size_t len)
{
    uint8_t salt[32];
    unsigned log_n = 0;
    if (len == 0 || len > PASS_MAX)
        return sbx_error_set(SBX_EINVAL, "unseal passphrase must be 1..%d bytes", PASS_MAX);
    int err = unseal_params(st, &log_n, salt);
    if (err == 0)
        err = sbx_scrypt(root, (const uint8_t *)pass, len, salt, 32, log_n);
    if (err < 0)
        sbx_wipe(root, 32);
    return err;
}

/* ---- check value ---- */

static int
check_value(char out[sizeof(CHECK_PREFIX) + 64], const uint8_t root[32])
{
    static const char label[] = "sbx-kms-root-check-v1";
    uint8_t k[32], mac[32];
    int err = sbx_hkdf_sha256(k, root, 32, NULL, 0, label);
    if (err == 0)
        err = sbx_hmac_sha256(mac, k, (const uint8_t *)label, sizeof(label) - 1);
    if (err == 0) {
        memcpy(out, CHECK_PREFIX, sizeof(CHECK_PREFIX) - 1);
        kms_hex(out + sizeof(CHECK_PREFIX) - 1, mac, 32);
    }
    SBX_WIPE_BUF(k);
    SBX_WIPE_BUF(mac);
    return err;
}

/* see keystore.h */
int
kms_root_key_check(kms_store *st, const uint8_t root[32])
{
    char want[sizeof(CHECK_PREFIX) + 64];
    size_t wl = sizeof(want) - 1;
    int err = check_value(want, root);
    for (int attempt = 0; err == 0 && attempt < 2; attempt++) {
        uint8_t *val = NULL;
        size_t len = 0;
        err = kms_store_get(st, "meta", "root-check", &val, &len, NULL);
        if (err == 0) {
            bool same = len == wl && CRYPTO_memcmp(val, want, wl) == 0;
            free(val);
            return same ? 0
                        : sbx_error_set(SBX_EAUTH,
                                        "wrong root key or unseal passphrase for this database");
        }
        if (err != SBX_ENOTFOUND)
            return err;
        err = kms_store_put(st, "meta", "root-check", want, wl, KMS_REV_ABSENT, NULL);
        if (err == 0)
            return 0;
        if (err == SBX_ECONFLICT) // another node wrote it first: compare with theirs
            err = 0;
    }
    return err < 0 ? err : sbx_error_set(SBX_EIO, "cannot read or create the root key check value");
}
