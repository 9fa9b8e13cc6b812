/*
 * src/core/memory.c - library initialisation, secure memory, sbx_buf.
 *
 * Implementation notes: long-lived keys use the OpenSSL secure heap, a fixed
 * mmap'd arena that OpenSSL mlock()s and marks MADV_DONTDUMP. It must be
 * created before use, hence sbx_init() (pthread_once). When it cannot be
 * created, OPENSSL_secure_* silently fall back to malloc; we remember the
 * outcome so sbx_init() can report it honestly.
 */
#include "strongbox/memory.h"
#include "core/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#define SECURE_HEAP_SIZE (512 * 1024)
#define SECURE_HEAP_MIN  32

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result; /* CRYPTO_secure_malloc_init's return: 0 none, 1 locked, 2 unlocked */

static void
do_init(void)
{
    if (CRYPTO_secure_malloc_initialized())
        init_result = 1;
    else
        init_result = CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN);
}

/* see strongbox/common.h */
int
sbx_init(void)
{
    pthread_once(&init_once, do_init);
    if (init_result == 1)
        return 0;
    if (init_result == 2)
        return sbx__error(SBX_EUNSUPPORTED,
                          "secure heap created but its pages could not be locked in RAM "
                          "(raise the memlock limit: ulimit -l)");
    return sbx__error(SBX_EUNSUPPORTED, "secure heap unavailable; keys use ordinary memory "
                                        "that is still wiped on free");
}

/* see strongbox/common.h */
int
sbx_disable_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return sbx__error_sys(SBX_EIO, "cannot disable core dumps (setrlimit)");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return sbx__error_sys(SBX_EIO, "cannot disable core dumps (prctl)");
    return 0;
}

/* see strongbox/memory.h */
void
sbx_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* see strongbox/memory.h */
void *
sbx_secret_alloc(size_t n)
{
    pthread_once(&init_once, do_init);
    void *p = OPENSSL_secure_zalloc(n == 0 ? 1 : n);
    if (p == NULL)
        sbx__error_nomem();
    return p;
}

/* see strongbox/memory.h */
void
sbx_secret_free(void *p, size_t n)
{
    if (p != NULL)
        OPENSSL_secure_clear_free(p, n == 0 ? 1 : n);
}

/* see strongbox/memory.h */
bool
sbx_secret_is_locked(const void *p)
{
    return p != NULL && init_result == 1 && CRYPTO_secure_allocated(p);
}

/* see strongbox/memory.h */
bool
sbx_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* see strongbox/common.h */
int
sbx_buf_reserve(sbx_buf *buf, size_t extra)
{
    if (extra <= buf->cap - buf->len)
        return 0;
    if (extra > SIZE_MAX / 2 - buf->len)
        return sbx__error_nomem();
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap - buf->len < extra)
        cap *= 2;
    /* Grow by copy, never realloc, so an old copy of a secret is wiped. */
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return sbx__error_nomem();
    if (buf->len > 0)
        memcpy(p, buf->ptr, buf->len);
    sbx_wipe(buf->ptr, buf->len);
    free(buf->ptr);
    buf->ptr = p;
    buf->cap = cap;
    return 0;
}

/* see strongbox/common.h */
int
sbx_buf_append(sbx_buf *buf, const void *data, size_t len)
{
    int err;
    if (len == 0)
        return 0;
    if ((err = sbx_buf_reserve(buf, len)) < 0)
        return err;
    memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    return 0;
}

/* see strongbox/common.h */
void
sbx_buf_dispose(sbx_buf *buf)
{
    if (buf == NULL)
        return;
    sbx_wipe(buf->ptr, buf->cap);
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}
