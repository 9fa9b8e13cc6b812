/*
 * src/fileops/destroy.c - overwrite-and-unlink, with an honest report.
 *
 * Implementation notes (strongbox/fileops.h, docs/destroy.md):
 *  - The path is lstat()ed and then opened with O_NOFOLLOW; the opened
 *    file's device and inode must match the lstat() result, so a file
 *    swapped in between is not touched. Sizes and link counts come from
 *    fstat() of the opened file, and after each rename the new name must
 *    still be that file (else it is renamed back and left alone).
 *  - Each pass writes random bytes (sbx_random_bytes) over [0, size) with
 *    pwrite and ends with fsync. The file is then renamed to a random name
 *    in its directory (renameat2 RENAME_NOREPLACE), truncated to 0, fsynced,
 *    unlinked, and the directory fsynced.
 *  - Media facts come from sysfs: /sys/dev/block/MAJ:MIN/queue/rotational
 *    and queue/discard_max_bytes, or the parent device's queue for a
 *    partition. Anything unreadable is "unknown", which is reported as such.
 *  - The seed (pyFileSec) reported "secure deleted" whenever the wiper was
 *    quiet; we never claim that, only what was done and what may survive.
 */
#include "strongbox/fileops.h"
#include "strongbox/random.h"
#include "strongbox/memory.h"
#include "fileops/seal.h"
#include "core/error.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define WRITE_BLOCK (256 * 1024)

static const struct {
    uint64_t magic;
    const char *name;
} fs_names[] = {
    {0xEF53, "ext4"},         {0x58465342, "xfs"},      {0x9123683E, "btrfs"},
    {0x2FC12FC1, "zfs"},      {0xF2F52010, "f2fs"},     {0x01021994, "tmpfs"},
    {0x858458F6, "ramfs"},    {0x794C7630, "overlay"},  {0x6969, "nfs"},
    {0xFF534D42, "cifs"},     {0xFE534D42, "smb2"},     {0x517B, "smb"},
    {0x65735546, "fuse"},     {0x01021997, "9p"},       {0x00C36400, "ceph"},
    {0x6B414653, "afs"},      {0x5346414F, "afs"},      {0xCA451A4E, "bcachefs"},
    {0x3434, "nilfs2"},       {0x4D44, "vfat"},         {0x2011BAB0, "exfat"},
    {0x5346544E, "ntfs"},     {0x52654973, "reiserfs"}, {0x3153464A, "jfs"},
    {0xF15F, "ecryptfs"},     {0x73717368, "squashfs"}, {0x9FA0, "proc"},
    {0x62656572, "sysfs"},    {0x1021994, "tmpfs"},     {0x47504653, "gpfs"},
    {0x0BD00BD0, "lustre"},   {0x24051905, "ubifs"},    {0x72B6, "jffs2"},
    {0x62646576, "devtmpfs"}, {0x9660, "iso9660"},      {0x15013346, "udf"},
};

/* see strongbox/fileops.h */
const char *
sbx_fs_type_name(uint64_t magic)
{
    for (size_t i = 0; i < sizeof(fs_names) / sizeof(fs_names[0]); i++) {
        if (fs_names[i].magic == magic)
            return fs_names[i].name;
    }
    return "unknown";
}

static bool
fs_is(const sbx_destroy_report *r, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (strcmp(r->fs_type, *names) == 0)
            return true;
    }
    return false;
}

static void warn(sbx_destroy_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(sbx_destroy_report *r, const char *fmt, ...)
{
    if (r->nwarnings == SBX_DESTROY_MAX_WARNINGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->nwarnings++], SBX_DESTROY_WARNING_LEN, fmt, ap);
    va_end(ap);
}

/* ---- facts about the storage ---- */

static int
read_sys_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "re");
    unsigned long long v;
    if (f == NULL)
        return -1;
    int n = fscanf(f, "%llu", &v);
    fclose(f);
    if (n != 1)
        return -1;
    *out = v;
    return 0;
}

/* queue/<attr> of the device, or of its parent when it is a partition. */
static int
read_queue_attr(dev_t dev, const char *attr, uint64_t *out)
{
    char p[128];
    snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/queue/%s", major(dev), minor(dev), attr);
    if (read_sys_u64(p, out) == 0)
        return 0;
    snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../queue/%s", major(dev), minor(dev), attr);
    return read_sys_u64(p, out);
}

/* The highest ancestor directory on the same device: the mount point (for the find hint). */
static void
find_mount_point(sbx_destroy_report *r, const char *path, dev_t dev)
{
    char *abs = realpath(path, NULL);
    char cur[PATH_MAX], parent[PATH_MAX];
    struct stat st;
    if (abs == NULL)
        return;
    snprintf(cur, sizeof(cur), "%s", dirname(abs));
    free(abs);
    while (strcmp(cur, "/") != 0) {
        snprintf(parent, sizeof(parent), "%s", cur);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(parent, &st) != 0 || st.st_dev != dev)
            break;
        memcpy(cur, parent, sizeof(cur));
    }
    snprintf(r->mount_point, sizeof(r->mount_point), "%s", cur);
}

static void
gather_facts(sbx_destroy_report *r, const char *path, int fd, const struct stat *st)
{
    struct statfs sfs;
    uint64_t v;
    r->inode = (uint64_t)st->st_ino;
    r->links = (uint64_t)st->st_nlink;
    r->size = (uint64_t)st->st_size;
    snprintf(r->device, sizeof(r->device), "%u:%u", major(st->st_dev), minor(st->st_dev));
    snprintf(r->fs_type, sizeof(r->fs_type), "unknown");
    if (fstatfs(fd, &sfs) == 0) {
        r->fs_magic = (uint64_t)(unsigned long)sfs.f_type & 0xFFFFFFFFu;
        snprintf(r->fs_type, sizeof(r->fs_type), "%s", sbx_fs_type_name(r->fs_magic));
    }
    r->rotational = read_queue_attr(st->st_dev, "rotational", &v) == 0 ? (v != 0) : -1;
    r->discard = read_queue_attr(st->st_dev, "discard_max_bytes", &v) == 0 ? (v != 0) : -1;
    find_mount_point(r, path, st->st_dev);
}

static const char *const cow_fs[] = {"btrfs",  "zfs",   "f2fs",  "bcachefs",
                                     "nilfs2", "ubifs", "jffs2", NULL};
static const char *const net_fs[] = {"nfs", "cifs", "smb2",   "smb",  "9p", "ceph",
                                     "afs", "fuse", "lustre", "gpfs", NULL};
static const char *const mem_fs[] = {"tmpfs", "ramfs", NULL};
static const char *const inplace_fs[] = {"ext4", "xfs",   "jfs",  "reiserfs",
                                         "vfat", "exfat", "ntfs", NULL};

#define ENCRYPT_ADVICE                                                                             \
    "encrypt sensitive files from the start (sbx seal, sbx encrypt) so that no plaintext "         \
    "reaches this storage"

/* The honest part: every known reason the old bytes may survive. */
static void
assess(sbx_destroy_report *r)
{
    bool media_ok = false;
    if (fs_is(r, cow_fs))
        warn(r,
             "%s is a copy-on-write or log-structured filesystem: writes go to new blocks, "
             "so the old data blocks (and any snapshots holding them) are not overwritten; "
             "" ENCRYPT_ADVICE,
             r->fs_type);
    else if (strcmp(r->fs_type, "overlay") == 0)
        warn(r, "overlay filesystem: the file may come from a lower layer (an image or another "
                "directory) that is never modified, and the upper layer's own filesystem decides "
                "where writes land; " ENCRYPT_ADVICE);
    else if (fs_is(r, mem_fs))
        warn(r,
             "%s keeps files in memory: the data may also have been written to swap, which "
             "overwriting does not reach; use encrypted swap, and " ENCRYPT_ADVICE,
             r->fs_type);
    else if (fs_is(r, net_fs))
        warn(r,
             "%s is a network or user-space filesystem: the storage, caches, snapshots and "
             "backups of the server are out of reach, and the overwrite may go to new blocks "
             "there; " ENCRYPT_ADVICE,
             r->fs_type);
    else if (!fs_is(r, inplace_fs))
        warn(r,
             "filesystem type %s is not known to overwrite in place; the old blocks may "
             "survive; " ENCRYPT_ADVICE,
             r->fs_type);
    else
        media_ok = true;
    if (fs_is(r, mem_fs) || fs_is(r, net_fs))
        return; // no local block device to judge
    if (r->rotational == 0)
        warn(r,
             "the device is flash storage (SSD): wear levelling remaps writes, so the old "
             "cells may keep the data until the drive erases them%s; " ENCRYPT_ADVICE,
             r->discard == 1 ? " (it supports TRIM, which frees them at a time nobody controls)"
                             : "");
    else if (r->rotational < 0)
        warn(r,
             "the storage device could not be identified (device %s): if it is flash (SSD, "
             "USB stick, SD card, virtual disk), overwriting does not reliably reach the old "
             "cells; " ENCRYPT_ADVICE,
             r->device);
    else if (r->discard == 1)
        warn(r, "the device reports itself as a rotating disk but supports discard, which "
                "usually means a virtual, thin-provisioned or RAID-backed disk: the overwrite "
                "may land on other physical storage than the old data; " ENCRYPT_ADVICE);
    r->reliable = media_ok && r->rotational == 1 && r->discard != 1;
}

/* ---- the steps ---- */

static int
overwrite(sbx_destroy_report *r, int fd, const char *path, unsigned passes)
{
    uint8_t *buf = malloc(WRITE_BLOCK);
    int err = 0;
    if (buf == NULL)
        return sbx__error_nomem();
    for (unsigned p = 0; p < passes && err == 0; p++) {
        for (uint64_t off = 0; off < r->size && err == 0;) {
            size_t n = r->size - off < WRITE_BLOCK ? (size_t)(r->size - off) : WRITE_BLOCK;
            if ((err = sbx_random_bytes(buf, n)) < 0)
                break;
            ssize_t w = pwrite(fd, buf, n, (off_t)off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                err = sbx__error_sys(SBX_EIO, "%s: overwrite pass %u failed at byte %llu", path,
                                     p + 1, (unsigned long long)off);
            else {
                off += (uint64_t)w;
                r->bytes_overwritten += (uint64_t)w;
            }
        }
        if (err == 0 && fsync(fd) != 0)
            err = sbx__error_sys(SBX_EIO, "%s: cannot sync overwrite pass %u to disk", path, p + 1);
        if (err == 0)
            r->passes = p + 1;
    }
    r->overwritten = err == 0 && r->passes == passes;
    sbx_wipe(buf, WRITE_BLOCK);
    free(buf);
    return err;
}

static int
random_name(char out[24])
{
    uint8_t b[8];
    int err = sbx_random_bytes(b, sizeof(b));
    if (err < 0)
        return err;
    snprintf(out, 24, ".sbx-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7]);
    return 0;
}

/* The rename moved a name, not our fd: check that the name was still our file's. */
static int
check_renamed(int dfd, const char *base, const char *newname, const struct stat *st,
              const char *path)
{
    struct stat now;
    if (fstatat(dfd, newname, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st->st_dev &&
        now.st_ino == st->st_ino)
        return 0;
    if (renameat2(dfd, newname, dfd, base, RENAME_NOREPLACE) == 0)
        return sbx__error(SBX_EIO,
                          "%s was replaced by another file during destruction; that file was "
                          "left alone",
                          path);
    return sbx__error(SBX_EIO,
                      "%s was replaced by another file during destruction; that file was left "
                      "alone, renamed to %s in the same directory",
                      path, newname);
}

static int
rename_random(int dfd, const char *base, char newname[24], const char *path, const char *done)
{
    for (int tries = 0; tries < 16; tries++) {
        int err = random_name(newname);
        if (err < 0)
            return err;
        if (renameat2(dfd, base, dfd, newname, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EEXIST)
            continue;
        if (errno == EINVAL || errno == ENOSYS) { // no RENAME_NOREPLACE here
            if (faccessat(dfd, newname, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            if (renameat(dfd, base, dfd, newname) == 0)
                return 0;
        }
        return sbx__error_sys(SBX_EIO, "%s: %s, but renaming it failed", path, done);
    }
    return sbx__error(SBX_EIO, "%s: no free random name for the rename", path);
}

static int
sync_dir(int dfd, const char *path)
{
    if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
        return sbx__error_sys(SBX_EIO,
                              "%s: the file is unlinked, but its directory could not be "
                              "synced",
                              path);
    return 0;
}

static int
remove_file(sbx_destroy_report *r, int fd, const struct stat *st, int dfd, const char *base,
            const char *path)
{
    char tmp[24];
    int err;
    if ((err = rename_random(dfd, base, tmp, path, "the data was overwritten")) < 0 ||
        (err = check_renamed(dfd, base, tmp, st, path)) < 0)
        return err;
    if (ftruncate(fd, 0) != 0 || fsync(fd) != 0)
        return sbx__error_sys(SBX_EIO, "%s: overwritten and renamed to %s, but truncation failed",
                              path, tmp);
    if (unlinkat(dfd, tmp, 0) != 0)
        return sbx__error_sys(SBX_EIO, "%s: overwritten and renamed to %s, but unlink failed", path,
                              tmp);
    r->unlinked = true;
    return sync_dir(dfd, path);
}

static int
unlink_name_only(sbx_destroy_report *r, const struct stat *st, int dfd, const char *base,
                 const char *path)
{
    char tmp[24];
    int err;
    if ((err = rename_random(dfd, base, tmp, path, "nothing was changed")) < 0 ||
        (err = check_renamed(dfd, base, tmp, st, path)) < 0)
        return err;
    if (unlinkat(dfd, tmp, 0) != 0)
        return sbx__error_sys(SBX_EIO, "%s: cannot unlink (renamed to %s)", path, tmp);
    r->unlinked = true;
    warn(r,
         "the file had %llu hard links: only this name was removed and the data was NOT "
         "overwritten; it is still readable under the other names (find them with: find %s "
         "-xdev -inum %llu)",
         (unsigned long long)r->links, r->mount_point[0] ? r->mount_point : "/",
         (unsigned long long)r->inode);
    return sync_dir(dfd, path);
}

static int
check_type(const char *path, struct stat *st)
{
    if (lstat(path, st) != 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot stat %s", path);
    if (S_ISLNK(st->st_mode))
        return sbx__error(SBX_EINVAL,
                          "%s is a symbolic link: destroy never follows links; "
                          "destroy the target by its own name, or remove the link "
                          "with rm",
                          path);
    if (!S_ISREG(st->st_mode))
        return sbx__error(SBX_EINVAL,
                          "%s is not a regular file: only regular files can be "
                          "destroyed",
                          path);
    return 0;
}

/* Open path, check it is the file lstat() saw, and give the opened file's own fstat() in st. */
static int
open_checked(const char *path, const struct stat *want, int *fd_out, struct stat *st)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    *fd_out = -1;
    if (fd < 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO,
                              "cannot open %s for writing", path);
    if (fstat(fd, st) != 0 || st->st_dev != want->st_dev || st->st_ino != want->st_ino ||
        !S_ISREG(st->st_mode)) {
        close(fd);
        return sbx__error(SBX_EIO, "%s changed while it was being opened; nothing was done", path);
    }
    *fd_out = fd;
    return 0;
}

static int
open_dir_of(const char *path, int *dfd, char **base)
{
    char *d = strdup(path), *b = strdup(path);
    int err = 0;
    *dfd = -1;
    *base = NULL;
    if (d == NULL || b == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    *dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dfd < 0) {
        err = sbx__error_sys(SBX_EIO, "cannot open the directory of %s", path);
        goto out;
    }
    *base = strdup(basename(b));
    if (*base == NULL)
        err = sbx__error_nomem();
out:
    free(d);
    free(b);
    return err;
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
same_file_unchanged(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
destroy_open(sbx_destroy_report *r, const char *path, const struct stat *lst,
             const sbx_destroy_options *o, const struct stat *expect)
{
    struct stat st;
    int fd = -1, dfd = -1, err;
    char *base = NULL;
    if ((err = open_checked(path, lst, &fd, &st)) < 0)
        return err;
    gather_facts(r, path, fd, &st); // links and size of the opened file, not of the path
    if (expect != NULL && !same_file_unchanged(&st, expect)) {
        err = sbx__error(
            SBX_EIO, "%s was replaced or modified after it was read; it was not destroyed", path);
        goto out;
    }
    if ((err = open_dir_of(path, &dfd, &base)) < 0)
        goto out;
    if (r->links > 1 && !o->force) {
        err = sbx__error(SBX_EINVAL,
                         "%s has %llu hard links: overwriting would destroy the data under the "
                         "other names too, and unlinking this name would leave it readable; find "
                         "them with: find %s -xdev -inum %llu (use force to remove only this name)",
                         path, (unsigned long long)r->links,
                         r->mount_point[0] ? r->mount_point : "/", (unsigned long long)r->inode);
        goto out;
    }
    if (r->links > 1) {
        err = unlink_name_only(r, &st, dfd, base, path);
        goto out;
    }
    assess(r);
    if ((err = overwrite(r, fd, path, o->passes)) < 0 ||
        (err = remove_file(r, fd, &st, dfd, base, path)) < 0)
        goto out;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(base);
    return err;
}

static int
destroy(sbx_destroy_report *report, const char *path, const sbx_destroy_options *opts,
        const struct stat *expect)
{
    sbx_destroy_options defaults = SBX_DESTROY_OPTIONS_INIT;
    const sbx_destroy_options *o = opts != NULL ? opts : &defaults;
    struct stat st;
    double t0 = now();
    int err;
    if (report == NULL || path == NULL)
        return sbx__error(SBX_EINVAL, "sbx_destroy: report and path are required");
    memset(report, 0, sizeof(*report));
    report->rotational = report->discard = -1;
    snprintf(report->fs_type, sizeof(report->fs_type), "unknown");
    if (o->version != SBX_DESTROY_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "sbx_destroy: unknown options version %u", o->version);
    if (o->passes < 1 || o->passes > SBX_DESTROY_MAX_PASSES)
        return sbx__error(SBX_EINVAL,
                          "passes must be between 1 and %d (one pass of random data "
                          "is as good as many on modern disks)",
                          SBX_DESTROY_MAX_PASSES);
    if ((err = check_type(path, &st)) < 0)
        return err;
    err = destroy_open(report, path, &st, o, expect);
    report->seconds = now() - t0;
    return err;
}

/* see strongbox/fileops.h */
int
sbx_destroy(sbx_destroy_report *report, const char *path, const sbx_destroy_options *opts)
{
    return destroy(report, path, opts, NULL);
}

/* see fileops/seal.h */
int
sbx_destroy__expect(sbx_destroy_report *report, const char *path, const sbx_destroy_options *opts,
                    const struct stat *expect)
{
    return destroy(report, path, opts, expect);
}
