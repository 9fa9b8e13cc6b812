/*
 * src/fileops/pfspad.c - the seed's plaintext padding (pyFileSec pad/unpad).
 *
 * Implementation notes (spec/seeds.md §1.8):
 *  - Trailer, the last 32 bytes: "pad=" + 10 decimal digits + NUL +
 *    "pyFileSec_padded" + NUL; the number counts every appended byte
 *    (filler + trailer); the filler is NUL bytes.
 *  - We are stricter than pyFileSec when reading: exactly 10 digits, a
 *    count from 32 to min(file size, 8 GiB), and every filler byte NUL
 *    (pyFileSec only looked at the trailer). Anything else is "not padded"
 *    for detection and SBX_EFORMAT for a strict unpad.
 *  - Outputs are written through the atomic file sink with the input's
 *    permission bits, so an interrupted run leaves the old file.
 */
#include "strongbox/pad.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_SIZE (1024 * 1024)

static const char marker[] = "pyFileSec_padded";

/* see strongbox/pad.h */
void
sbx_pad_pfs_detect(uint64_t *count, const uint8_t *tail, size_t tail_len, uint64_t size)
{
    uint64_t n = 0;
    *count = 0;
    if (tail_len != SBX_PAD_PFS_TRAILER_LEN || size < SBX_PAD_PFS_TRAILER_LEN)
        return;
    if (memcmp(tail, "pad=", 4) != 0 || tail[14] != 0 || memcmp(tail + 15, marker, 16) != 0 ||
        tail[31] != 0)
        return;
    for (int i = 4; i < 14; i++) {
        if (tail[i] < '0' || tail[i] > '9')
            return;
        n = n * 10 + (uint64_t)(tail[i] - '0');
    }
    if (n < SBX_PAD_PFS_TRAILER_LEN || n > size || n > SBX_PAD_PFS_MAX_SIZE)
        return;
    *count = n;
}

struct pfs_file {
    int fd;
    uint64_t size;
    unsigned mode;
    uint64_t count; /* padding bytes found, 0 if none */
};

static int
open_input(struct pfs_file *f, const char *path)
{
    struct stat st;
    uint8_t tail[SBX_PAD_PFS_TRAILER_LEN];
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused below)
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f->fd < 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot open %s", path);
    if (fstat(f->fd, &st) != 0)
        return sbx__error_sys(SBX_EIO, "cannot stat %s", path);
    if (!S_ISREG(st.st_mode))
        return sbx__error(SBX_EINVAL, "%s is not a regular file", path);
    f->size = (uint64_t)st.st_size;
    f->mode = (unsigned)st.st_mode & 07777;
    f->count = 0;
    if (f->size > SBX_PAD_PFS_MAX_SIZE)
        return sbx__error(SBX_ETOOBIG,
                          "%s is larger than 8 GiB, the limit of the pyFileSec "
                          "padding format",
                          path);
    if (f->size < sizeof(tail))
        return 0;
    ssize_t got = pread(f->fd, tail, sizeof(tail), (off_t)(f->size - sizeof(tail)));
    if (got != (ssize_t)sizeof(tail))
        return sbx__error_sys(SBX_EIO, "cannot read the end of %s", path);
    sbx_pad_pfs_detect(&f->count, tail, sizeof(tail), f->size);
    return 0;
}

/* Copy len bytes from offset off of fd to dst; with check_zero, verify they are NUL instead. */
static int
copy_range(sbx_sink *dst, int fd, uint64_t off, uint64_t len, bool check_zero, uint8_t *buf)
{
    while (len > 0) {
        size_t want = len < COPY_SIZE ? (size_t)len : COPY_SIZE;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return sbx__error_sys(SBX_EIO, "cannot read the input (did it shrink?)");
        if (check_zero) {
            for (ssize_t i = 0; i < got; i++) {
                if (buf[i] != 0)
                    return sbx__error(SBX_EFORMAT,
                                      "malformed padding: filler byte at offset "
                                      "%llu is not NUL",
                                      (unsigned long long)(off + (uint64_t)i));
            }
        } else {
            int err = sbx_sink_write(dst, buf, (size_t)got);
            if (err < 0)
                return err;
        }
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

static int
check_filler(const struct pfs_file *f, uint8_t *buf)
{
    return copy_range(NULL, f->fd, f->size - f->count, f->count - SBX_PAD_PFS_TRAILER_LEN, true,
                      buf);
}

static int
write_padding(sbx_sink *dst, uint64_t needed)
{
    static const uint8_t nul[4096];
    char trailer[SBX_PAD_PFS_TRAILER_LEN + 1];
    int err;
    for (uint64_t left = needed; left > 0;) {
        size_t k = left < sizeof(nul) ? (size_t)left : sizeof(nul);
        if ((err = sbx_sink_write(dst, nul, k)) < 0)
            return err;
        left -= k;
    }
    snprintf(trailer, sizeof(trailer), "pad=%010llu%c%s%c",
             (unsigned long long)(needed + SBX_PAD_PFS_TRAILER_LEN), 0, marker, 0);
    return sbx_sink_write(dst, (const uint8_t *)trailer, SBX_PAD_PFS_TRAILER_LEN);
}

/* The atomic sink for out; in place (out is in), a link is followed as it was for reading. */
static int
open_output(sbx_sink **dst, const char *in, const char *out, unsigned mode)
{
    return sbx_sink_atomic_file_new_ex(dst, out, mode,
                                       strcmp(in, out) == 0 ? SBX_ATOMIC_FOLLOW : 0);
}

/* see strongbox/pad.h */
int
sbx_pad_pfs_file(const char *in, const char *out, uint64_t target, uint64_t *new_size)
{
    struct pfs_file f = {-1, 0, 0, 0};
    sbx_sink *dst = NULL;
    uint8_t *buf = NULL;
    int err;
    if (new_size != NULL)
        *new_size = 0;
    if (target > SBX_PAD_PFS_MAX_SIZE)
        return sbx__error(SBX_EINVAL, "pad size %llu is above 8 GiB, the format's limit",
                          (unsigned long long)target);
    if (target < SBX_PAD_PFS_MIN_SIZE)
        target = SBX_PAD_PFS_MIN_SIZE;
    if ((buf = malloc(COPY_SIZE)) == NULL)
        return sbx__error_nomem();
    if ((err = open_input(&f, in)) < 0 || (f.count > 0 && (err = check_filler(&f, buf)) < 0))
        goto out;
    uint64_t data = f.size - f.count;
    if (data + SBX_PAD_PFS_TRAILER_LEN >= target) {
        err = sbx__error(SBX_ETOOBIG,
                         "%s has %llu bytes of data: padding to %llu bytes would not hide its "
                         "length (data + 32-byte trailer must be below the size); choose a "
                         "larger size",
                         in, (unsigned long long)data, (unsigned long long)target);
        goto out;
    }
    if ((err = open_output(&dst, in, out, f.mode)) < 0 ||
        (err = copy_range(dst, f.fd, 0, data, false, buf)) < 0 ||
        (err = write_padding(dst, target - data - SBX_PAD_PFS_TRAILER_LEN)) < 0 ||
        (err = sbx_sink_finish(dst)) < 0)
        goto out;
    if (new_size != NULL)
        *new_size = target;
out:
    sbx_sink_free(dst);
    if (f.fd >= 0)
        close(f.fd);
    if (buf != NULL)
        sbx_wipe(buf, COPY_SIZE);
    free(buf);
    return err;
}

/* see strongbox/pad.h */
int
sbx_pad_pfs_unpad_file(const char *in, const char *out, bool strict, uint64_t *removed)
{
    struct pfs_file f = {-1, 0, 0, 0};
    sbx_sink *dst = NULL;
    uint8_t *buf = NULL;
    int err;
    if (removed != NULL)
        *removed = 0;
    if ((buf = malloc(COPY_SIZE)) == NULL)
        return sbx__error_nomem();
    if ((err = open_input(&f, in)) < 0)
        goto out;
    if (f.count == 0 && strict) {
        err = sbx__error(SBX_EFORMAT,
                         "%s has no valid pyFileSec padding (no \"pad=NNNNNNNNNN\" "
                         "+ \"pyFileSec_padded\" trailer in its last 32 bytes)",
                         in);
        goto out;
    }
    if (f.count > 0 && (err = check_filler(&f, buf)) < 0)
        goto out;
    if (f.count == 0 && strcmp(in, out) == 0)
        goto out; // lenient, nothing to remove, in place: leave the file alone
    if ((err = open_output(&dst, in, out, f.mode)) < 0 ||
        (err = copy_range(dst, f.fd, 0, f.size - f.count, false, buf)) < 0 ||
        (err = sbx_sink_finish(dst)) < 0)
        goto out;
    if (removed != NULL)
        *removed = f.count;
out:
    sbx_sink_free(dst);
    if (f.fd >= 0)
        close(f.fd);
    if (buf != NULL)
        sbx_wipe(buf, COPY_SIZE);
    free(buf);
    return err;
}
