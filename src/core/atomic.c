/*
 * src/core/atomic.c - atomic file replacement.
 *
 * Implementation notes: the new content goes to a temporary file in the
 * target's directory (same filesystem, so rename(2) is atomic), created with
 * O_EXCL and its final mode at open (no chmod afterwards: a secret file is
 * never readable by others, not even for a moment). Commit = fsync(file),
 * rename over the target, fsync(directory). Until the rename, the target is
 * untouched; an abandoned sink unlinks its temporary file.
 *
 * Only regular files are replaced. When the target exists and is something
 * else (a character device such as /dev/null, a FIFO, a terminal), renaming
 * over it would destroy it: the sink then writes to it directly and cannot be
 * atomic. A symbolic link is followed: its target is replaced, the link kept.
 *
 * SBX_ATOMIC_NOREPLACE (new files next to someone else's, e.g. seal's
 * FILE.age): the path must not exist at all, symlinks included (lstat), and
 * the commit is renameat2(RENAME_NOREPLACE), or link(2) + unlink(2) where the
 * filesystem lacks it, so a file or symlink planted between the check and the
 * commit is never followed or replaced: the commit fails with SBX_EEXISTS.
 */
#include "strongbox/stream.h"
#include "strongbox/random.h"
#include "core/error.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct atomic_sink {
    sbx_sink base;
    int fd;
    char *path;
    char *tmp; /* NULL when writing directly to a non-regular target */
    bool committed, noreplace;
};

static int
atomic_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    return sbx__write_all(((struct atomic_sink *)self)->fd, data, len);
}

static int
fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return sbx__error_nomem();
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return sbx__error_sys(SBX_EIO, "cannot open the directory of %s to sync it", path);
    int rc = fsync(dfd);
    close(dfd);
    /* Some filesystems refuse fsync on directories; the rename is done either way. */
    if (rc != 0 && errno != EINVAL && errno != EROFS)
        return sbx__error_sys(SBX_EIO, "cannot sync the directory of %s", path);
    return 0;
}

/* Rename tmp to path only if path does not exist (never following a symlink there). */
static int
commit_noreplace(struct atomic_sink *a)
{
    if (renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) { // filesystem without RENAME_NOREPLACE
        if (link(a->tmp, a->path) == 0) {
            unlink(a->tmp);
            return 0;
        }
    }
    if (errno == EEXIST)
        return sbx__error(SBX_EEXISTS, "%s appeared while it was being written; not replaced",
                          a->path);
    return sbx__error_sys(SBX_EIO, "cannot rename %s to %s", a->tmp, a->path);
}

static int
atomic_finish(sbx_sink *self)
{
    struct atomic_sink *a = (struct atomic_sink *)self;
    if (a->committed)
        return 0;
    if (a->tmp == NULL) { /* direct write to a device or FIFO */
        a->committed = true;
        return 0;
    }
    if (fsync(a->fd) != 0)
        return sbx__error_sys(SBX_EIO, "cannot sync %s", a->tmp);
    if (close(a->fd) != 0) {
        a->fd = -1;
        return sbx__error_sys(SBX_EIO, "cannot close %s", a->tmp);
    }
    a->fd = -1;
    if (a->noreplace) {
        int err = commit_noreplace(a);
        if (err < 0)
            return err;
    } else if (rename(a->tmp, a->path) != 0) {
        return sbx__error_sys(SBX_EIO, "cannot rename %s to %s", a->tmp, a->path);
    }
    a->committed = true;
    return fsync_dir_of(a->path);
}

static void
atomic_free(sbx_sink *self)
{
    struct atomic_sink *a = (struct atomic_sink *)self;
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (!a->committed && a->tmp != NULL)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    free(a);
}

static int
open_temp(struct atomic_sink *a, unsigned mode)
{
    char *copy = strdup(a->path);
    if (copy == NULL)
        return sbx__error_nomem();
    const char *base = basename(copy);
    size_t dir_len = strlen(a->path) - strlen(base);
    size_t cap = strlen(a->path) + 32;
    int err = 0;
    a->tmp = malloc(cap);
    if (a->tmp == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    for (int tries = 0; tries < 16; tries++) {
        uint8_t rnd[6];
        if ((err = sbx_random_bytes(rnd, sizeof(rnd))) < 0)
            goto out;
        snprintf(a->tmp, cap, "%.*s.%s.tmp-%02x%02x%02x%02x%02x%02x", (int)dir_len, a->path, base,
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (a->fd >= 0 || errno != EEXIST)
            break;
    }
    if (a->fd < 0) {
        err = sbx__error_sys(SBX_EIO, "cannot create a temporary file next to %s", a->path);
        free(a->tmp);
        a->tmp = NULL;
    }
out:
    free(copy);
    return err;
}

/* see strongbox/stream.h */
int
sbx_sink_atomic_file_new(sbx_sink **out, const char *path, unsigned mode)
{
    return sbx_sink_atomic_file_new_ex(out, path, mode, 0);
}

/* see strongbox/stream.h */
int
sbx_sink_atomic_file_new_ex(sbx_sink **out, const char *path, unsigned mode, unsigned flags)
{
    int err;
    struct stat st;
    *out = NULL;
    if ((flags & ~SBX_ATOMIC_NOREPLACE) != 0)
        return sbx__error(SBX_EINVAL, "unknown atomic sink flags 0x%x", flags);
    if ((flags & SBX_ATOMIC_NOREPLACE) != 0 && lstat(path, &st) == 0)
        return sbx__error(SBX_EEXISTS, "%s already exists; not replacing it", path);
    struct atomic_sink *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return sbx__error_nomem();
    a->fd = -1;
    a->noreplace = (flags & SBX_ATOMIC_NOREPLACE) != 0;
    a->base.write = atomic_write;
    a->base.finish = atomic_finish;
    a->base.free = atomic_free;
    bool exists = stat(path, &st) == 0; /* follows symlinks */
    a->path = exists ? realpath(path, NULL) : strdup(path);
    if (a->path == NULL) {
        atomic_free(&a->base);
        return sbx__error_sys(SBX_EIO, "cannot resolve %s", path);
    }
    if (exists && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            atomic_free(&a->base);
            return sbx__error(SBX_EIO, "%s is a directory", path);
        }
        a->fd = open(a->path, O_WRONLY | O_CLOEXEC);
        if (a->fd < 0) {
            err = sbx__error_sys(SBX_EIO, "cannot open %s for writing", path);
            atomic_free(&a->base);
            return err;
        }
        *out = &a->base;
        return 0;
    }
    if ((err = open_temp(a, mode)) < 0) {
        atomic_free(&a->base);
        return err;
    }
    *out = &a->base;
    return 0;
}

/* see strongbox/stream.h */
int
sbx_atomic_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    sbx_sink *s;
    int err = sbx_sink_atomic_file_new(&s, path, mode);
    if (err < 0)
        return err;
    if ((err = sbx_sink_write(s, data, len)) == 0)
        err = sbx_sink_finish(s);
    sbx_sink_free(s);
    return err;
}
