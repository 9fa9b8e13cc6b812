/*
 * src/tmpfile/tmpfile.c - encrypted temporary files (see strongbox/tmpfile.h).
 *
 * Implementation notes
 *
 * State (struct sbx_tmpfd, the fopencookie cookie): pos and size, the logical
 * position and length; ctr(i), the nonce counter block i was last sealed
 * with (0: never written, a hole that reads as zeros), kept in pages of
 * CTR_PAGE counters allocated on first write, so a write far past the end
 * costs one page and a directory slot per CTR_PAGE blocks skipped, not a
 * counter per block; next_ctr, the next
 * nonce counter (starts at 1, only ever incremented, so a (key, nonce) pair
 * is never reused); a small cache of whole plaintext blocks.
 *
 * Invariants
 *  - Bytes of a block past the logical size are zero: truncation zeroes the
 *    tail of the new last block and clears the counters past it, a write
 *    extends the size over everything it wrote. Growing a file therefore
 *    never exposes stale bytes, and a hole is just a block with ctr 0.
 *  - A cached block is authoritative; an uncached block's contents are on
 *    disk sealed with ctr[i] (or it is a hole).
 *  - Plaintext reaches the caller only after its block's tag verified. Bulk
 *    reads decrypt straight into the caller's buffer; if any block of the
 *    call fails, the whole destination range is wiped before returning -1.
 *
 * Keys: the 32-byte key lives in sbx_secret_alloc memory. OpenSSL contexts,
 * which hold the key schedule, are created on demand inside one callback and
 * freed (OpenSSL cleanses them) before it returns: ctx_release() on every
 * exit. Plaintext buffers (stdio's, the cache) and the ciphertext staging
 * area share one mapping marked MADV_DONTDUMP and locked when allowed.
 *
 * Fork: every entry point compares getpid() with the creator's pid and fails
 * with EIO in a child, before any disk access.
 */
#include "tmpfile/tmpfile.h"
#include "core/error.h"
#include "strongbox/aead.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NONCE_LEN     SBX_TMPFILE__NONCE_LEN
#define TAG_LEN       SBX_TMPFILE__TAG_LEN
#define KEY_LEN       SBX_TMPFILE__KEY_LEN
#define ID_LEN        16
#define AAD_LEN       (ID_LEN + 8)
#define STAGING_BYTES (256 * 1024) // ciphertext moved per pread/pwrite in bulk transfers
#define STAGING_MAX   512          // slots; bounds the per-call counter array
#define CTR_PAGE      1024         // nonce counters per page of the counter table

struct cache_entry {
    uint8_t *data; // block_size bytes of plaintext
    uint64_t idx;
    uint64_t used; // LRU tick
    bool valid, dirty;
};

struct sbx_tmpfd {
    FILE *fp;               // the stdio layer (sbx_tmpfile_open); NULL for a bare sbx_tmpfd
    struct sbx_tmpfd *next; // registry of open FILEs
    uint64_t pos;           // the stdio layer's position
    pid_t owner;
    int fd;
    sbx_aead_alg alg;
    uint8_t *key; // KEY_LEN bytes in the secure heap (AES-128/192 use the first 16/24)
    uint8_t id[ID_LEN];
    size_t bsize, slot;
    uint64_t size;
    uint64_t **ctr_dir; // page p holds ctr(p * CTR_PAGE ...); NULL page = all holes
    size_t ctr_pages;
    uint64_t next_ctr, tick;
    struct cache_entry cache[SBX_TMPFILE_MAX_CACHE];
    unsigned ncache;
    uint8_t *region; // iobuf | cache blocks | staging, one DONTDUMP mapping
    size_t region_len;
    uint8_t *iobuf, *staging;
    size_t staging_slots;
    uint8_t *ra;       // read-ahead window: staging_slots plaintext blocks from ra_first
    uint64_t ra_first; // ...of which ra_n are valid (and verified)
    size_t ra_n;
    uint64_t ra_next; // where a sequential reader's next read starts
    sbx_aead *aead;   // the key schedule: lives only during one call
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sbx_tmpfd *reg_head;
static bool force_fallback;

/* ---- registry: which FILE * are ours ---- */

static void
reg_add(struct sbx_tmpfd *t)
{
    pthread_mutex_lock(&reg_lock);
    t->next = reg_head;
    reg_head = t;
    pthread_mutex_unlock(&reg_lock);
}

static void
reg_remove(struct sbx_tmpfd *t)
{
    pthread_mutex_lock(&reg_lock);
    for (struct sbx_tmpfd **p = &reg_head; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

static struct sbx_tmpfd *
reg_find(FILE *f)
{
    struct sbx_tmpfd *t;
    pthread_mutex_lock(&reg_lock);
    for (t = reg_head; t != NULL && t->fp != f; t = t->next)
        ;
    pthread_mutex_unlock(&reg_lock);
    return f != NULL ? t : NULL;
}

/* ---- small helpers ---- */

static int
errno_of(int err)
{
    int sys = sbx_error_last()->sys_errno;
    switch (err) {
    case SBX_ENOMEM:
        return ENOMEM;
    case SBX_ETOOBIG:
        return EFBIG;
    case SBX_EINVAL:
        return EINVAL;
    case SBX_EIO:
        return sys != 0 ? sys : EIO;
    default:
        return EIO; // SBX_EAUTH, SBX_ECRYPTO: the data cannot be returned
    }
}

static bool
in_owner(const struct sbx_tmpfd *t)
{
    if (getpid() == t->owner)
        return true;
    sbx__error(SBX_EIO, "tmpfile: used in a child process after fork; only the process that "
                        "created it may use it");
    return false;
}

static void
put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static void
make_nonce(uint8_t nonce[NONCE_LEN], uint64_t ctr)
{
    memset(nonce, 0, NONCE_LEN - 8);
    put_be64(nonce + NONCE_LEN - 8, ctr);
}

static void
make_aad(const struct sbx_tmpfd *t, uint8_t aad[AAD_LEN], uint64_t idx)
{
    memcpy(aad, t->id, ID_LEN);
    put_be64(aad + ID_LEN, idx);
}

static uint64_t
block_ctr(const struct sbx_tmpfd *t, uint64_t idx)
{
    uint64_t p = idx / CTR_PAGE;
    return p < t->ctr_pages && t->ctr_dir[p] != NULL ? t->ctr_dir[p][idx % CTR_PAGE] : 0;
}

/* The counter cell of block idx; its page must have been reserved (ctr_reserve). */
static uint64_t *
ctr_cell(struct sbx_tmpfd *t, uint64_t idx)
{
    return &t->ctr_dir[idx / CTR_PAGE][idx % CTR_PAGE];
}

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- cipher contexts (key schedule lives only during one call) ---- */

static sbx_aead *
ctx_get(struct sbx_tmpfd *t)
{
    if (t->aead == NULL && sbx_aead_new(&t->aead, t->alg, t->key) < 0)
        return NULL;
    return t->aead;
}

static void
ctx_release(struct sbx_tmpfd *t)
{
    sbx_aead_free(t->aead); // cleanses the key schedule
    t->aead = NULL;
}

/* Seal one block of plaintext into slot (nonce || ct || tag) under a fresh counter. */
static int
seal_block(struct sbx_tmpfd *t, uint8_t *slot, const uint8_t *pt, uint64_t idx, uint64_t *ctr_out)
{
    uint8_t aad[AAD_LEN];
    sbx_aead_part part = {aad, AAD_LEN};
    sbx_aead *a = ctx_get(t);
    int err;
    if (a == NULL)
        return SBX_ECRYPTO;
    if (t->next_ctr == UINT64_MAX)
        return sbx__error(SBX_ETOOBIG, "tmpfile: nonce counter exhausted");
    uint64_t ctr = t->next_ctr++;
    make_nonce(slot, ctr);
    make_aad(t, aad, idx);
    uint8_t *ct = slot + NONCE_LEN;
    if ((err = sbx_aead_seal(a, ct, ct + t->bsize, slot, &part, 1, pt, t->bsize)) < 0)
        return err;
    *ctr_out = ctr;
    return 0;
}

/* Open the sealed slot of block idx into pt; pt is wiped unless the tag verifies. */
static int
open_block(struct sbx_tmpfd *t, uint8_t *pt, const uint8_t *slot, uint64_t idx)
{
    uint8_t nonce[NONCE_LEN], aad[AAD_LEN];
    sbx_aead_part part = {aad, AAD_LEN};
    sbx_aead *a = ctx_get(t);
    if (a == NULL)
        return SBX_ECRYPTO;
    make_nonce(nonce, block_ctr(t, idx));
    if (memcmp(nonce, slot, NONCE_LEN) != 0)
        return sbx__error(SBX_EAUTH,
                          "tmpfile: block %llu on disk is not its latest version (rolled back "
                          "or replaced); the backing file was modified",
                          (unsigned long long)idx);
    make_aad(t, aad, idx);
    const uint8_t *ct = slot + NONCE_LEN;
    int err = sbx_aead_open(a, pt, nonce, &part, 1, ct, t->bsize, ct + t->bsize);
    if (err != SBX_EAUTH)
        return err;
    return sbx__error(SBX_EAUTH,
                      "tmpfile: block %llu fails authentication; the backing file was modified",
                      (unsigned long long)idx);
}

/* ---- disk ---- */

static int
pread_all(struct sbx_tmpfd *t, uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread(t->fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "tmpfile: reading the backing file");
        if (n == 0)
            return sbx__error(SBX_EAUTH, "tmpfile: backing file truncated at offset %llu",
                              (unsigned long long)off);
        buf += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

static int
pwrite_all(struct sbx_tmpfd *t, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(t->fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return sbx__error_sys(SBX_EIO, "tmpfile: writing the backing file");
        buf += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

/* Allocate the counter pages of blocks [first, first + k), k >= 1 (new cells are holes). */
static int
ctr_reserve(struct sbx_tmpfd *t, uint64_t first, uint64_t k)
{
    uint64_t p0 = first / CTR_PAGE, p1 = (first + k - 1) / CTR_PAGE;
    if (p1 >= SIZE_MAX / 2 / sizeof(uint64_t *))
        return sbx__error_nomem();
    if (p1 >= t->ctr_pages) {
        size_t cap = t->ctr_pages ? t->ctr_pages : 16;
        while (cap <= p1)
            cap *= 2;
        uint64_t **d = realloc(t->ctr_dir, cap * sizeof *d);
        if (d == NULL)
            return sbx__error_nomem();
        memset(d + t->ctr_pages, 0, (cap - t->ctr_pages) * sizeof *d);
        t->ctr_dir = d;
        t->ctr_pages = cap;
    }
    for (uint64_t p = p0; p <= p1; p++) {
        if (t->ctr_dir[p] == NULL && (t->ctr_dir[p] = calloc(CTR_PAGE, sizeof(uint64_t))) == NULL)
            return sbx__error_nomem();
    }
    return 0;
}

/* Make every block from keep on a hole; pages wholly past keep are freed. */
static void
ctr_clear_from(struct sbx_tmpfd *t, uint64_t keep)
{
    for (uint64_t p = keep / CTR_PAGE; p < t->ctr_pages; p++) {
        uint64_t first = p * CTR_PAGE;
        if (t->ctr_dir[p] == NULL)
            continue;
        if (first >= keep) {
            free(t->ctr_dir[p]);
            t->ctr_dir[p] = NULL;
        } else {
            memset(t->ctr_dir[p] + (keep - first), 0,
                   (CTR_PAGE - (keep - first)) * sizeof(uint64_t));
        }
    }
}

/*
 * Seal k whole blocks from src to disk starting at block idx (bypasses the
 * cache). *written counts the blocks whose counters were committed, also on
 * failure: the caller must count them in the file size.
 */
static int
write_blocks(struct sbx_tmpfd *t, uint64_t idx, const uint8_t *src, size_t k, size_t *written)
{
    uint64_t fresh[STAGING_MAX];
    int err;
    *written = 0;
    while (k > 0) {
        size_t m = min_size(k, t->staging_slots);
        for (size_t j = 0; j < m; j++) {
            if ((err = seal_block(t, t->staging + j * t->slot, src + j * t->bsize, idx + j,
                                  &fresh[j])) < 0)
                return err;
        }
        if ((err = pwrite_all(t, t->staging, m * t->slot, idx * t->slot)) < 0)
            return err;
        for (size_t j = 0; j < m; j++)
            *ctr_cell(t, idx + j) = fresh[j];
        idx += m, src += m * t->bsize, k -= m, *written += m;
    }
    return 0;
}

/* Read and open k consecutive whole, stored blocks into dst. */
static int
read_blocks(struct sbx_tmpfd *t, uint64_t idx, uint8_t *dst, size_t k)
{
    int err;
    if ((err = pread_all(t, t->staging, k * t->slot, idx * t->slot)) < 0)
        return err;
    for (size_t j = 0; j < k; j++) {
        if ((err = open_block(t, dst + j * t->bsize, t->staging + j * t->slot, idx + j)) < 0)
            return err;
    }
    return 0;
}

/* ---- read-ahead window and block cache ---- */

static bool
ra_has(const struct sbx_tmpfd *t, uint64_t idx)
{
    return idx >= t->ra_first && idx - t->ra_first < t->ra_n;
}

/* Drop the read-ahead window if it holds any block in [first, first + k). */
static void
ra_invalidate(struct sbx_tmpfd *t, uint64_t first, uint64_t k)
{
    if (t->ra_n > 0 && first < t->ra_first + t->ra_n && t->ra_first < first + k) {
        sbx_wipe(t->ra, t->ra_n * t->bsize);
        t->ra_n = 0;
    }
}

static struct cache_entry *
cache_find(struct sbx_tmpfd *t, uint64_t idx)
{
    for (unsigned i = 0; i < t->ncache; i++) {
        if (t->cache[i].valid && t->cache[i].idx == idx)
            return &t->cache[i];
    }
    return NULL;
}

static void
cache_drop(struct sbx_tmpfd *t, struct cache_entry *e)
{
    sbx_wipe(e->data, t->bsize);
    e->valid = e->dirty = false;
}

static int
cache_writeback(struct sbx_tmpfd *t, struct cache_entry *e)
{
    uint64_t fresh = 0;
    int err;
    if (!e->valid || !e->dirty)
        return 0;
    if ((err = ctr_reserve(t, e->idx, 1)) < 0 ||
        (err = seal_block(t, t->staging, e->data, e->idx, &fresh)) < 0 ||
        (err = pwrite_all(t, t->staging, t->slot, e->idx * t->slot)) < 0)
        return err;
    *ctr_cell(t, e->idx) = fresh;
    e->dirty = false;
    return 0;
}

/* Write back every dirty block, empty the cache and the read-ahead window. */
static int
cache_flush(struct sbx_tmpfd *t)
{
    int err;
    ra_invalidate(t, t->ra_first, t->ra_n);
    for (unsigned i = 0; i < t->ncache; i++) {
        if ((err = cache_writeback(t, &t->cache[i])) < 0)
            return err;
        cache_drop(t, &t->cache[i]);
    }
    return 0;
}

static struct cache_entry *
cache_victim(struct sbx_tmpfd *t)
{
    struct cache_entry *v = &t->cache[0];
    for (unsigned i = 0; i < t->ncache; i++) {
        if (!t->cache[i].valid)
            return &t->cache[i];
        if (t->cache[i].used < v->used)
            v = &t->cache[i];
    }
    return v;
}

/* The cache entry holding block idx, loading (and verifying) it when needed. */
static int
cache_get(struct sbx_tmpfd *t, uint64_t idx, struct cache_entry **out)
{
    int err;
    struct cache_entry *e = cache_find(t, idx);
    if (e == NULL) {
        e = cache_victim(t);
        if ((err = cache_writeback(t, e)) < 0)
            return err;
        cache_drop(t, e); // zeroed: a hole needs no disk access
        if (block_ctr(t, idx) != 0 && (err = read_blocks(t, idx, e->data, 1)) < 0)
            return err;
        e->idx = idx;
        e->valid = true;
    }
    e->used = ++t->tick;
    *out = e;
    return 0;
}

/* ---- logical reads and writes ---- */

/* Consecutive whole blocks from idx that are stored, uncached, and within max. */
static size_t
bulk_run(struct sbx_tmpfd *t, uint64_t idx, size_t max)
{
    size_t k = 0;
    max = min_size(max, t->staging_slots);
    while (k < max && block_ctr(t, idx + k) != 0 && cache_find(t, idx + k) == NULL)
        k++;
    return k;
}

/*
 * Sequential reading: open up to staging_slots stored blocks from idx into
 * the window with one pread. A bad block after the first only shortens the
 * window (it fails when actually read); a bad first block is an error.
 */
static int
ra_fill(struct sbx_tmpfd *t, uint64_t idx)
{
    int err;
    size_t k = bulk_run(t, idx, t->staging_slots);
    t->ra_n = 0; // overwritten below; wiped at close
    if ((err = pread_all(t, t->staging, k * t->slot, idx * t->slot)) < 0 && k > 1)
        err = pread_all(t, t->staging, (k = 1) * t->slot, idx * t->slot);
    if (err < 0)
        return err;
    t->ra_first = idx;
    for (size_t j = 0; j < k; j++) {
        err = open_block(t, t->ra + j * t->bsize, t->staging + j * t->slot, idx + j);
        if (err < 0 && j == 0)
            return err;
        if (err < 0)
            break;
        t->ra_n = j + 1;
    }
    return 0;
}

static int
read_range(struct sbx_tmpfd *t, uint8_t *dst, uint64_t pos, size_t n)
{
    bool sequential = pos == t->ra_next;
    struct cache_entry *e;
    int err;
    for (size_t off = 0; off < n;) {
        uint64_t p = pos + off, idx = p / t->bsize;
        size_t in = (size_t)(p % t->bsize), chunk = min_size(t->bsize - in, n - off);
        if ((e = cache_find(t, idx)) != NULL) {
            memcpy(dst + off, e->data + in, chunk);
            e->used = ++t->tick;
        } else if (block_ctr(t, idx) == 0) {
            memset(dst + off, 0, chunk);
        } else if (ra_has(t, idx) || (sequential && (err = ra_fill(t, idx)) == 0)) {
            memcpy(dst + off, t->ra + (idx - t->ra_first) * t->bsize + in, chunk);
        } else if (sequential) {
            return err;
        } else if (chunk == t->bsize) {
            size_t k = bulk_run(t, idx, (n - off) / t->bsize);
            if ((err = read_blocks(t, idx, dst + off, k)) < 0)
                return err;
            chunk = k * t->bsize;
        } else {
            if ((err = cache_get(t, idx, &e)) < 0)
                return err;
            memcpy(dst + off, e->data + in, chunk);
        }
        off += chunk;
    }
    return 0;
}

/* Write n bytes at pos; *done receives how many were fully written. */
static int
write_range(struct sbx_tmpfd *t, const uint8_t *src, uint64_t pos, size_t n, size_t *done)
{
    struct cache_entry *e;
    int err;
    *done = 0;
    if (n == 0)
        return 0;
    if ((err = ctr_reserve(t, pos / t->bsize, (pos + n - 1) / t->bsize - pos / t->bsize + 1)) < 0)
        return err;
    ra_invalidate(t, pos / t->bsize, (pos + n - 1) / t->bsize - pos / t->bsize + 1);
    for (size_t off = 0; off < n;) {
        uint64_t p = pos + off, idx = p / t->bsize;
        size_t in = (size_t)(p % t->bsize), chunk = min_size(t->bsize - in, n - off);
        if (chunk == t->bsize) {
            size_t k = (n - off) / t->bsize, written = 0;
            for (size_t j = 0; j < k; j++) {
                if ((e = cache_find(t, idx + j)) != NULL)
                    cache_drop(t, e); // wholly overwritten
            }
            if ((err = write_blocks(t, idx, src + off, k, &written)) < 0) {
                *done = off + written * t->bsize; // committed blocks now count in the size
                return err;
            }
            chunk = k * t->bsize;
        } else {
            if ((err = cache_get(t, idx, &e)) < 0)
                return err;
            memcpy(e->data + in, src + off, chunk);
            e->dirty = true;
        }
        off += chunk;
        *done = off;
    }
    return 0;
}

static int
truncate_locked(struct sbx_tmpfd *t, uint64_t size)
{
    struct cache_entry *e;
    int err;
    if (size >= t->size) {
        t->size = size; // the new range is a hole; past-the-end bytes are already zero
        return 0;
    }
    uint64_t keep = (size + t->bsize - 1) / t->bsize;
    size_t tail = (size_t)(size % t->bsize);
    ra_invalidate(t, t->ra_first, t->ra_n);
    if (tail != 0 && (cache_find(t, size / t->bsize) || block_ctr(t, size / t->bsize) != 0)) {
        if ((err = cache_get(t, size / t->bsize, &e)) < 0)
            return err;
        memset(e->data + tail, 0, t->bsize - tail);
        e->dirty = true;
    }
    for (unsigned i = 0; i < t->ncache; i++) {
        if (t->cache[i].valid && t->cache[i].idx >= keep)
            cache_drop(t, &t->cache[i]);
    }
    ctr_clear_from(t, keep);
    t->size = size;
    if (ftruncate(t->fd, (off_t)(keep * t->slot)) != 0)
        return sbx__error_sys(SBX_EIO, "tmpfile: shrinking the backing file");
    return 0;
}

/* ---- fopencookie callbacks ---- */

static ssize_t
cookie_read(void *cookie, char *buf, size_t n)
{
    struct sbx_tmpfd *t = cookie;
    size_t got = 0;
    int err = sbx_tmpfd_pread(t, buf, n, t->pos, &got);
    if (err < 0) {
        errno = errno_of(err);
        return -1;
    }
    t->pos += got;
    return (ssize_t)got;
}

/*
 * glibc's _IO_cookie_write, unlike _IO_new_file_write, does not advance the
 * FILE's cached offset, so after fseek into a read buffer, fwrite, then
 * fseek(f, 0, SEEK_CUR), stdio resumes at the position before the write
 * (glibc 2.36; any fopencookie stream). Do what _IO_new_file_write does.
 */
static void
sync_stdio_offset(struct sbx_tmpfd *t)
{
#ifdef __GLIBC__
    if (t->fp != NULL && t->fp->_offset >= 0)
        t->fp->_offset = (off64_t)t->pos;
#else
    (void)t;
#endif
}

static ssize_t
cookie_write(void *cookie, const char *buf, size_t n)
{
    struct sbx_tmpfd *t = cookie;
    size_t done = 0;
    int err = sbx_tmpfd_pwrite(t, buf, n, t->pos, &done);
    t->pos += done;
    sync_stdio_offset(t);
    if (err < 0) {
        errno = errno_of(err);
        return done > 0 ? (ssize_t)done : -1;
    }
    return (ssize_t)n;
}

static int
cookie_seek(void *cookie, off64_t *offset, int whence)
{
    struct sbx_tmpfd *t = cookie;
    int64_t base;
    if (!in_owner(t)) {
        errno = EIO;
        return -1;
    }
    switch (whence) {
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)t->pos;
        break;
    case SEEK_END:
        base = (int64_t)t->size;
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    if (*offset < -base || *offset > (int64_t)SBX_TMPFILE_MAX_SIZE - base) {
        errno = *offset < 0 ? EINVAL : EFBIG;
        return -1;
    }
    t->pos = (uint64_t)(base + *offset);
    *offset = (off64_t)t->pos;
    return 0;
}

static void
destroy(struct sbx_tmpfd *t)
{
    if (t == NULL)
        return;
    ctx_release(t);
    if (t->region != NULL) {
        sbx_wipe(t->region, t->region_len);
        munmap(t->region, t->region_len);
    }
    for (size_t p = 0; p < t->ctr_pages; p++)
        free(t->ctr_dir[p]);
    free(t->ctr_dir);
    sbx_secret_free(t->key, KEY_LEN);
    if (t->fd >= 0)
        close(t->fd); // in a child after fork: only the child's descriptor
    SBX_WIPE_CTX(t);
    free(t);
}

/* Dirty blocks are not written: the file disappears with the descriptor. */
static int
cookie_close(void *cookie)
{
    struct sbx_tmpfd *t = cookie;
    reg_remove(t);
    destroy(t);
    return 0;
}

static int
append_disk(struct sbx_tmpfd *t, sbx_buf *out)
{
    struct stat st;
    int err;
    if (fstat(t->fd, &st) != 0)
        return sbx__error_sys(SBX_EIO, "tmpfile: fstat of the backing file");
    size_t len = (size_t)st.st_size;
    if ((err = sbx_buf_reserve(out, len)) < 0)
        return err;
    if (len > 0 && (err = pread_all(t, out->ptr + out->len, len, 0)) < 0)
        return err;
    out->len += len;
    return 0;
}

/* ---- the descriptor-level API (strongbox/tmpfile.h) ---- */

static int
check_use(const struct sbx_tmpfd *t, const void *buf, size_t len)
{
    if (t == NULL || (buf == NULL && len > 0))
        return sbx__error(SBX_EINVAL, "tmpfile: NULL argument");
    return in_owner(t) ? 0 : SBX_EIO;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_pread(sbx_tmpfd *t, void *buf, size_t len, uint64_t off, size_t *nread)
{
    int err;
    if (nread == NULL)
        return sbx__error(SBX_EINVAL, "tmpfile: NULL argument");
    *nread = 0;
    if ((err = check_use(t, buf, len)) < 0)
        return err;
    size_t n = off >= t->size ? 0 : (size_t)min_size(len, t->size - off);
    err = read_range(t, buf, off, n);
    ctx_release(t);
    if (err < 0) {
        sbx_wipe(buf, n);
        return err;
    }
    t->ra_next = off + n;
    *nread = n;
    return 0;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_pwrite(sbx_tmpfd *t, const void *buf, size_t len, uint64_t off, size_t *nwritten)
{
    size_t done = 0;
    int err;
    if (nwritten != NULL)
        *nwritten = 0;
    if ((err = check_use(t, buf, len)) < 0)
        return err;
    if (off > SBX_TMPFILE_MAX_SIZE || len > SBX_TMPFILE_MAX_SIZE - off)
        return sbx__error(SBX_ETOOBIG, "tmpfile: the file would exceed SBX_TMPFILE_MAX_SIZE");
    err = write_range(t, buf, off, len, &done);
    ctx_release(t);
    if (done > 0 && off + done > t->size)
        t->size = off + done;
    if (nwritten != NULL)
        *nwritten = done;
    return err;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_truncate(sbx_tmpfd *t, uint64_t size)
{
    int err;
    if ((err = check_use(t, NULL, 0)) < 0)
        return err;
    if (size > SBX_TMPFILE_MAX_SIZE)
        return sbx__error(SBX_ETOOBIG, "tmpfile: size %llu exceeds SBX_TMPFILE_MAX_SIZE",
                          (unsigned long long)size);
    err = truncate_locked(t, size);
    ctx_release(t);
    return err;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_flush(sbx_tmpfd *t)
{
    int err;
    if ((err = check_use(t, NULL, 0)) < 0)
        return err;
    err = cache_flush(t);
    ctx_release(t);
    return err;
}

/* see strongbox/tmpfile.h */
uint64_t
sbx_tmpfd_size(const sbx_tmpfd *t)
{
    return t != NULL ? t->size : 0;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_fd(const sbx_tmpfd *t)
{
    return t != NULL ? t->fd : -1;
}

/* see strongbox/tmpfile.h */
size_t
sbx_tmpfd_block_size(const sbx_tmpfd *t)
{
    return t != NULL ? t->bsize : 0;
}

/* see strongbox/tmpfile.h */
uint64_t
sbx_tmpfd_disk_offset(const sbx_tmpfd *t, uint64_t off)
{
    return t != NULL ? off / t->bsize * t->slot : 0;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_read_ciphertext(sbx_tmpfd *t, sbx_buf *out)
{
    int err;
    if ((err = check_use(t, out, 1)) < 0)
        return err;
    if ((err = cache_flush(t)) == 0)
        err = append_disk(t, out);
    ctx_release(t);
    return err;
}

/* see strongbox/tmpfile.h */
void
sbx_tmpfd_free(sbx_tmpfd *t)
{
    destroy(t);
}

/* ---- creation ---- */

static int
check_options(const struct sbx_tmpfile_options *o)
{
    size_t b = o->block_size;
    if (o->version != SBX_TMPFILE_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL,
                          "tmpfile: options version %u unknown (use "
                          "SBX_TMPFILE_OPTIONS_INIT)",
                          o->version);
    if (o->cipher < SBX_TMPFILE_AES_256_GCM || o->cipher > SBX_TMPFILE_AES_192_GCM)
        return sbx__error(SBX_EINVAL, "tmpfile: unknown cipher %d", (int)o->cipher);
    if (b != 0 && (b < SBX_TMPFILE_MIN_BLOCK || b > SBX_TMPFILE_MAX_BLOCK || (b & (b - 1)) != 0))
        return sbx__error(SBX_EINVAL,
                          "tmpfile: block size %zu invalid (a power of two from 512 to 1 MiB)", b);
    if (o->cache_blocks > SBX_TMPFILE_MAX_CACHE)
        return sbx__error(SBX_EINVAL, "tmpfile: cache of %u blocks too large (at most %d)",
                          o->cache_blocks, SBX_TMPFILE_MAX_CACHE);
    return 0;
}

static int
open_backing(const char *dir, int *fd_out)
{
    int fd = -1;
    if (!force_fallback) {
        fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
            goto out;
    }
    size_t len = strlen(dir) + sizeof "/.sbx-tmp-XXXXXX";
    char *path = malloc(len);
    if (path == NULL)
        return sbx__error_nomem();
    snprintf(path, len, "%s/.sbx-tmp-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC); // O_EXCL, mode 0600
    if (fd >= 0 && unlink(path) != 0) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    free(path);
out:
    if (fd < 0)
        return sbx__error_sys(SBX_EIO,
                              "tmpfile: cannot create a temporary file in %s (set TMPDIR or "
                              "options.dir to a writable directory)",
                              dir);
    *fd_out = fd;
    return 0;
}

/* One mapping for stdio's buffer, the cache and the staging area. */
static int
map_region(struct sbx_tmpfd *t)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    size_t len = t->bsize * (1 + t->ncache) + t->staging_slots * (t->slot + t->bsize);
    t->region_len = (len + pg - 1) / pg * pg;
    void *p = mmap(NULL, t->region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return sbx__error_sys(SBX_ENOMEM, "tmpfile: mapping the block cache");
    t->region = p;
    (void)madvise(p, t->region_len, MADV_DONTDUMP); // plaintext stays out of core dumps
    (void)mlock(p, t->region_len);                  // best effort: RLIMIT_MEMLOCK may refuse
    t->iobuf = t->region;
    for (unsigned i = 0; i < t->ncache; i++)
        t->cache[i].data = t->region + t->bsize * (1 + i);
    t->staging = t->region + t->bsize * (1 + t->ncache);
    t->ra = t->staging + t->staging_slots * t->slot;
    return 0;
}

static int
setup(struct sbx_tmpfd *t, const struct sbx_tmpfile_options *o)
{
    int err;
    const char *dir = o->dir;
    if (dir == NULL || *dir == '\0')
        dir = secure_getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    t->alg = (sbx_aead_alg)o->cipher; // the tmpfile ciphers are numbered as sbx_aead_alg
    t->owner = getpid();
    t->bsize = o->block_size ? o->block_size : SBX_TMPFILE_DEFAULT_BLOCK;
    t->slot = SBX_TMPFILE__SLOT(t->bsize);
    t->ncache = o->cache_blocks ? o->cache_blocks : SBX_TMPFILE_DEFAULT_CACHE;
    t->staging_slots = STAGING_BYTES / t->slot;
    t->staging_slots = t->staging_slots < 1 ? 1 : min_size(t->staging_slots, STAGING_MAX);
    t->next_ctr = 1;
    if ((t->key = sbx_secret_alloc(KEY_LEN)) == NULL)
        return SBX_ENOMEM;
    if ((err = sbx_random_bytes(t->key, KEY_LEN)) < 0 ||
        (err = sbx_random_bytes(t->id, ID_LEN)) < 0 || (err = map_region(t)) < 0)
        return err;
    return open_backing(dir, &t->fd);
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfd_new(sbx_tmpfd **out, const struct sbx_tmpfile_options *opts)
{
    struct sbx_tmpfile_options defaults = SBX_TMPFILE_OPTIONS_INIT;
    struct sbx_tmpfd *t = NULL;
    int err;
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "tmpfile: NULL output");
    *out = NULL;
    if ((err = check_options(opts ? opts : &defaults)) < 0)
        return err;
    if ((t = calloc(1, sizeof *t)) == NULL)
        return sbx__error_nomem();
    t->fd = -1;
    if ((err = setup(t, opts ? opts : &defaults)) < 0) {
        destroy(t);
        return err;
    }
    *out = t;
    return 0;
}

/* see strongbox/tmpfile.h */
FILE *
sbx_tmpfile_open(const struct sbx_tmpfile_options *opts)
{
    static const cookie_io_functions_t io = {cookie_read, cookie_write, cookie_seek, cookie_close};
    struct sbx_tmpfd *t = NULL;
    int err;
    if ((err = sbx_tmpfd_new(&t, opts)) < 0)
        goto fail;
    if ((t->fp = fopencookie(t, "w+", io)) == NULL) {
        err = sbx__error_sys(SBX_ENOMEM, "tmpfile: fopencookie");
        goto fail;
    }
    setvbuf(t->fp, (char *)t->iobuf, _IOFBF, t->bsize); // stdio's plaintext stays in our mapping
    reg_add(t);
    return t->fp;
fail:
    destroy(t);
    errno = errno_of(err);
    return NULL;
}

/* see strongbox/tmpfile.h */
FILE *
sbx_tmpfile(void)
{
    return sbx_tmpfile_open(NULL);
}

/* The state behind f, for the calling process only. */
static int
lookup(FILE *f, struct sbx_tmpfd **out)
{
    *out = reg_find(f);
    if (*out == NULL)
        return sbx__error(SBX_EINVAL, "tmpfile: not a FILE from sbx_tmpfile()");
    if (!in_owner(*out))
        return SBX_EIO;
    return 0;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfile_truncate(FILE *f, uint64_t size)
{
    struct sbx_tmpfd *t;
    int err;
    if ((err = lookup(f, &t)) < 0)
        return err;
    flockfile(f);
    if (fflush(f) != 0)
        err = sbx__error_sys(SBX_EIO, "tmpfile: flushing before truncation");
    else
        err = sbx_tmpfd_truncate(t, size);
    funlockfile(f);
    return err;
}

/* see strongbox/tmpfile.h */
int
sbx_tmpfile_read_ciphertext(FILE *f, sbx_buf *out)
{
    struct sbx_tmpfd *t;
    int err;
    if ((err = lookup(f, &t)) < 0)
        return err;
    flockfile(f);
    if (fflush(f) != 0)
        err = sbx__error_sys(SBX_EIO, "tmpfile: flushing before reading the ciphertext");
    else
        err = sbx_tmpfd_read_ciphertext(t, out);
    funlockfile(f);
    return err;
}

/* see strongbox/tmpfile.h */
bool
sbx_tmpfile_is_encrypted(FILE *f)
{
    return reg_find(f) != NULL;
}

/* ---- test hooks (src/tmpfile/tmpfile.h) ---- */

int
sbx_tmpfile__fd(FILE *f)
{
    struct sbx_tmpfd *t = reg_find(f);
    return t != NULL ? t->fd : -1;
}

int
sbx_tmpfile__write_key(FILE *f, int fd)
{
    struct sbx_tmpfd *t = reg_find(f);
    if (t == NULL)
        return sbx__error(SBX_EINVAL, "tmpfile: not a FILE from sbx_tmpfile()");
    if (write(fd, t->key, KEY_LEN) != KEY_LEN)
        return sbx__error_sys(SBX_EIO, "tmpfile: writing the key");
    return 0;
}

bool
sbx_tmpfile__key_is_locked(FILE *f)
{
    struct sbx_tmpfd *t = reg_find(f);
    return t != NULL && sbx_secret_is_locked(t->key);
}

long
sbx_tmpfile__pread(FILE *f, uint8_t *buf, size_t n, uint64_t off)
{
    struct sbx_tmpfd *t = reg_find(f);
    size_t got = 0;
    if (t == NULL)
        return sbx__error(SBX_EINVAL, "tmpfile: not a FILE from sbx_tmpfile()");
    flockfile(f);
    uint64_t ra_next = t->ra_next; // a test peek must not look like a sequential reader
    int err = sbx_tmpfd_pread(t, buf, n, off, &got);
    t->ra_next = ra_next;
    funlockfile(f);
    return err < 0 ? err : (long)got;
}

void
sbx_tmpfile__force_fallback(bool on)
{
    force_fallback = on;
}
