/*
 * src/core/atomic.c - atomic file replacement.
 *
 * Implementation notes: the new content is written to an unnamed file
 * (O_TMPFILE) in the target's directory, created with its final mode at open
 * (no chmod afterwards: a secret file is never readable by others, not even
 * for a moment). Until finish(), the data has no name: a process that dies
 * for any reason, SIGKILL included, leaves nothing behind, because the kernel
 * frees an unnamed file with its last descriptor. Commit = fsync(file), then
 * link it into the directory, then fsync(directory):
 *  - SBX_ATOMIC_NOREPLACE: linkat() straight to the target's name, which
 *    fails with EEXIST if anything (a file, a symlink) appeared there;
 *  - otherwise linkat() to a random temporary name, renameat() over the
 *    target: for that instant the complete file has a temporary name.
 * The descriptor is linked through /proc/self/fd/N (AT_SYMLINK_FOLLOW); that
 * is probed when the sink is made, so the commit cannot fail for want of it.
 *
 * The weaker case: where the filesystem has no O_TMPFILE (EOPNOTSUPP, EISDIR,
 * EINVAL) or /proc is not mounted, the data goes to a named temporary file
 * ".NAME.tmp-XXXXXXXXXXXX" (O_EXCL, final mode), renamed over the target
 * (renameat2(RENAME_NOREPLACE) or link + unlink for NOREPLACE). Its name is
 * recorded in a table that sbx_atomic_cleanup() - async-signal-safe, called
 * from a program's signal handlers - unlinks; SIGKILL still leaves it.
 *
 * The table is a seqlock per slot: the owner makes the counter odd, changes
 * the name, makes it even; the cleanup copies a slot and uses the copy only
 * if the counter was even and unchanged, so a signal arriving on any thread
 * in the middle of an update skips the slot instead of reading half a name.
 * A name is recorded before its file is created and erased after it is gone
 * (renamed or unlinked), so skipping a slot that is mid-update loses nothing.
 *
 * Symbolic links at the path are refused: an output written through a link,
 * which someone else may have planted, lands wherever the link points.
 * SBX_ATOMIC_FOLLOW (an in-place rewrite of an input) resolves the link and
 * replaces its target instead. A link to a FIFO, socket or character device
 * (/dev/stdout) is written through, as the device itself would be. The
 * commit renames over (or links to) a name, which never follows a link
 * planted after the check: such a link is replaced, or for NOREPLACE makes
 * the commit fail with SBX_EEXISTS.
 *
 * Only regular files are replaced. A target that exists and is something else
 * (a character device such as /dev/null, a FIFO, a terminal) would be
 * destroyed by a rename: the sink writes to it directly and cannot be atomic.
 */
#include "strongbox/stream.h"
#include "strongbox/random.h"
#include "core/error.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PENDING_SLOTS 64
#define TMP_SUFFIX    ".tmp-XXXXXXXXXXXX"

/* ---- named temporary files, for sbx_atomic_cleanup() ---- */

struct pending {
    atomic_bool used;
    atomic_uint seq; /* odd while dfd/name change */
    int dfd;
    char name[NAME_MAX + 1]; /* "" = nothing to remove */
};

static struct pending pending[PENDING_SLOTS];

static int
pending_claim(void)
{
    for (int i = 0; i < PENDING_SLOTS; i++) {
        bool expect = false;
        if (atomic_compare_exchange_strong(&pending[i].used, &expect, true))
            return i;
    }
    return -1; /* full: the file is then not removed on a signal */
}

static void
pending_set(int slot, int dfd, const char *name)
{
    if (slot < 0)
        return;
    struct pending *p = &pending[slot];
    atomic_fetch_add_explicit(&p->seq, 1, memory_order_acq_rel);
    p->dfd = dfd;
    snprintf(p->name, sizeof(p->name), "%s", name);
    atomic_fetch_add_explicit(&p->seq, 1, memory_order_release);
}

static void
pending_release(int slot)
{
    if (slot < 0)
        return;
    pending_set(slot, -1, "");
    atomic_store(&pending[slot].used, false);
}

/* see strongbox/stream.h */
void
sbx_atomic_cleanup(void)
{
    for (int i = 0; i < PENDING_SLOTS; i++) {
        struct pending *p = &pending[i];
        char name[NAME_MAX + 1];
        unsigned seq = atomic_load_explicit(&p->seq, memory_order_acquire);
        if ((seq & 1) != 0 || !atomic_load(&p->used))
            continue;
        int dfd = p->dfd;
        memcpy(name, p->name, sizeof(name));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) != seq)
            continue;
        name[NAME_MAX] = '\0';
        if (name[0] != '\0')
            unlinkat(dfd, name, 0);
    }
}

/* ---- the sink ---- */

struct atomic_sink {
    sbx_sink base;
    int fd;                 /* the data: unnamed file, named temporary file, or the device */
    int dfd;                /* the target's directory; -1 when writing to a device directly */
    char *path;             /* the target, as named by the caller (or resolved, with FOLLOW) */
    const char *name;       /* its last component, inside path */
    char tmp[NAME_MAX + 1]; /* the temporary name in dfd; "" when none exists */
    int slot;               /* pending[] slot of tmp, or -1 */
    bool unnamed, committed, noreplace;
};

static int
atomic_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    return sbx__write_all(((struct atomic_sink *)self)->fd, data, len);
}

/* ".NAME.tmp-" + 12 random hex digits, recorded for the signal cleanup before it exists. */
static int
pick_temp_name(struct atomic_sink *a)
{
    uint8_t rnd[6];
    int err = sbx_random_bytes(rnd, sizeof(rnd));
    if (err < 0)
        return err;
    if (strlen(a->name) + sizeof("." TMP_SUFFIX) > sizeof(a->tmp))
        return sbx__error(SBX_EINVAL, "%s: name too long for a temporary file beside it", a->path);
    snprintf(a->tmp, sizeof(a->tmp), ".%s.tmp-%02x%02x%02x%02x%02x%02x", a->name, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    pending_set(a->slot, a->dfd, a->tmp);
    return 0;
}

static void
forget_temp_name(struct atomic_sink *a)
{
    a->tmp[0] = '\0';
    pending_set(a->slot, -1, "");
}

static void
proc_fd_path(char out[32], int fd)
{
    snprintf(out, 32, "/proc/self/fd/%d", fd);
}

/* Give the unnamed file the name `name` in dfd; never replaces anything (EEXIST). */
static int
link_unnamed(struct atomic_sink *a, const char *name)
{
    char proc[32];
    proc_fd_path(proc, a->fd);
    return linkat(AT_FDCWD, proc, a->dfd, name, AT_SYMLINK_FOLLOW);
}

static int
exists_error(struct atomic_sink *a)
{
    return sbx__error(SBX_EEXISTS, "%s appeared while it was being written; not replaced", a->path);
}

/* NOREPLACE: the name must still be free; a file or link that appeared there is kept. */
static int
commit_noreplace(struct atomic_sink *a)
{
    if (a->unnamed) {
        if (link_unnamed(a, a->name) == 0)
            return 0;
    } else {
        bool done = renameat2(a->dfd, a->tmp, a->dfd, a->name, RENAME_NOREPLACE) == 0;
        if (!done && (errno == EINVAL || errno == ENOSYS) && // no RENAME_NOREPLACE here
            linkat(a->dfd, a->tmp, a->dfd, a->name, 0) == 0) {
            unlinkat(a->dfd, a->tmp, 0);
            done = true;
        }
        if (done) {
            forget_temp_name(a);
            return 0;
        }
    }
    if (errno == EEXIST)
        return exists_error(a);
    return sbx__error_sys(SBX_EIO, "cannot create %s", a->path);
}

/* Replace the target: the unnamed file gets a temporary name for the instant of the rename. */
static int
commit_replace(struct atomic_sink *a)
{
    int err;
    for (int tries = 0; a->unnamed; tries++) {
        if ((err = pick_temp_name(a)) < 0)
            return err;
        if (link_unnamed(a, a->tmp) == 0)
            break;
        int e = errno;
        forget_temp_name(a);
        if (e != EEXIST || tries == 15) {
            errno = e;
            return sbx__error_sys(SBX_EIO, "cannot give %s a name beside it", a->path);
        }
    }
    if (renameat(a->dfd, a->tmp, a->dfd, a->name) != 0) {
        err = sbx__error_sys(SBX_EIO, "cannot rename %s to %s", a->tmp, a->path);
        if (a->unnamed) {
            unlinkat(a->dfd, a->tmp, 0);
            forget_temp_name(a);
        }
        return err;
    }
    forget_temp_name(a);
    return 0;
}

static int
fsync_dir(struct atomic_sink *a)
{
    /* Some filesystems refuse fsync on directories; the file is in place either way. */
    if (fsync(a->dfd) != 0 && errno != EINVAL && errno != EROFS)
        return sbx__error_sys(SBX_EIO, "cannot sync the directory of %s", a->path);
    return 0;
}

static int
atomic_finish(sbx_sink *self)
{
    struct atomic_sink *a = (struct atomic_sink *)self;
    int err;
    if (a->committed)
        return 0;
    if (a->dfd < 0) { /* direct write to a device or FIFO */
        a->committed = true;
        return 0;
    }
    if (fsync(a->fd) != 0)
        return sbx__error_sys(SBX_EIO, "cannot sync the new %s", a->path);
    if (!a->unnamed) { // closed before the rename: close() can report a late write error (NFS)
        int rc = close(a->fd);
        a->fd = -1;
        if (rc != 0)
            return sbx__error_sys(SBX_EIO, "cannot close the new %s", a->path);
    }
    err = a->noreplace ? commit_noreplace(a) : commit_replace(a);
    if (err < 0)
        return err;
    a->committed = true;
    return fsync_dir(a);
}

static void
atomic_free(sbx_sink *self)
{
    struct atomic_sink *a = (struct atomic_sink *)self;
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd); // an unnamed file is gone with it
    if (a->tmp[0] != '\0')
        unlinkat(a->dfd, a->tmp, 0);
    pending_release(a->slot);
    if (a->dfd >= 0)
        close(a->dfd);
    free(a->path);
    free(a);
}

/* An unnamed file in the directory, if the filesystem has them and /proc can link it. */
static bool
open_unnamed(struct atomic_sink *a, unsigned mode, int *err)
{
    struct stat st, via_proc;
    char proc[32];
    *err = 0;
    a->fd = openat(a->dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
    if (a->fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
            return false;
        *err = sbx__error_sys(SBX_EIO, "cannot create a temporary file next to %s", a->path);
        return false;
    }
    proc_fd_path(proc, a->fd);
    if (fstat(a->fd, &st) == 0 && stat(proc, &via_proc) == 0 && st.st_ino == via_proc.st_ino &&
        st.st_dev == via_proc.st_dev)
        return a->unnamed = true;
    close(a->fd); // no /proc: the file could not be linked at the end
    a->fd = -1;
    return false;
}

/* The weaker case: a named temporary file, removed by sbx_atomic_cleanup() on a signal. */
static int
open_named(struct atomic_sink *a, unsigned mode)
{
    int err;
    for (int tries = 0; tries < 16; tries++) {
        if ((err = pick_temp_name(a)) < 0)
            return err;
        a->fd = openat(a->dfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       (mode_t)mode);
        if (a->fd >= 0)
            return 0;
        int e = errno;
        forget_temp_name(a);
        if (e != EEXIST) {
            errno = e;
            break;
        }
    }
    return sbx__error_sys(SBX_EIO, "cannot create a temporary file next to %s", a->path);
}

static int
open_temp(struct atomic_sink *a, unsigned mode)
{
    char *slash = strrchr(a->path, '/');
    int err;
    a->name = slash != NULL ? slash + 1 : a->path;
    if (a->name[0] == '\0')
        return sbx__error(SBX_EINVAL, "%s names a directory, not a file", a->path);
    if (slash == a->path) {
        a->dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (slash != NULL) {
        *slash = '\0';
        a->dfd = open(a->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
    } else {
        a->dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (a->dfd < 0)
        return sbx__error_sys(SBX_EIO, "cannot open the directory of %s", a->path);
    a->slot = pending_claim(); // for the temporary name, however briefly it exists
    if (open_unnamed(a, mode, &err) || err < 0)
        return err;
    return open_named(a, mode);
}

/* A FIFO, socket, terminal or other character device: written in place, never replaced. */
static bool
is_device(const struct stat *st)
{
    return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) || S_ISCHR(st->st_mode);
}

static int
open_direct(struct atomic_sink *a, bool follow)
{
    struct stat st;
    int flags = O_WRONLY | O_NOCTTY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
    a->fd = open(a->path, flags);
    if (a->fd < 0)
        return sbx__error_sys(SBX_EIO, "cannot open %s for writing", a->path);
    if (fstat(a->fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return sbx__error(SBX_EIO, "%s changed while it was being opened; try again", a->path);
    return 0;
}

static int
link_refused(const char *path)
{
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    return sbx__error(SBX_EINVAL,
                      "%s is a symbolic link (to %s): an output is never written through a "
                      "link, which someone else may have planted; give the target's own path "
                      "instead, or remove the link",
                      path, target);
}

/*
 * What is at path decides how it is written: *direct for a device, the
 * resolved path in a->path with FOLLOW, else a new or replaced regular file.
 */
static int
check_target(struct atomic_sink *a, const char *path, unsigned flags, bool *direct, bool *follow)
{
    struct stat lst, st;
    *direct = *follow = false;
    if (lstat(path, &lst) != 0) {
        a->path = strdup(path);
        return a->path == NULL ? sbx__error_nomem() : 0;
    }
    if ((flags & SBX_ATOMIC_NOREPLACE) != 0)
        return sbx__error(SBX_EEXISTS, "%s already exists; not replacing it", path);
    if (S_ISLNK(lst.st_mode)) {
        if (stat(path, &st) == 0 && is_device(&st))
            *direct = *follow = true; // /dev/stdout and the like
        else if ((flags & SBX_ATOMIC_FOLLOW) == 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return link_refused(path);
        a->path = *direct ? strdup(path) : realpath(path, NULL);
        return a->path == NULL ? sbx__error_sys(SBX_EIO, "cannot resolve %s", path) : 0;
    }
    if (S_ISDIR(lst.st_mode))
        return sbx__error(SBX_EIO, "%s is a directory", path);
    *direct = !S_ISREG(lst.st_mode);
    a->path = strdup(path);
    return a->path == NULL ? sbx__error_nomem() : 0;
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
    bool direct, follow;
    int err;
    *out = NULL;
    if ((flags & ~(SBX_ATOMIC_NOREPLACE | SBX_ATOMIC_FOLLOW)) != 0)
        return sbx__error(SBX_EINVAL, "unknown atomic sink flags 0x%x", flags);
    struct atomic_sink *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return sbx__error_nomem();
    a->fd = a->dfd = a->slot = -1;
    a->noreplace = (flags & SBX_ATOMIC_NOREPLACE) != 0;
    a->base.write = atomic_write;
    a->base.finish = atomic_finish;
    a->base.free = atomic_free;
    if ((err = check_target(a, path, flags, &direct, &follow)) < 0 ||
        (err = direct ? open_direct(a, follow) : open_temp(a, mode)) < 0) {
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
