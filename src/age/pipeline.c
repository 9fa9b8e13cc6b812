/*
 * src/age/pipeline.c - the worker pool behind parallel STREAM (see pipeline.h).
 *
 * Implementation notes: slots form a ring. The caller's thread hands slots
 * out in order (next_free), submits them in order, and takes them back in
 * order (oldest, release); workers take queued slots in order too, so no
 * reordering buffer is needed. One mutex guards slot states; two condition
 * variables wake workers (work) and the caller (done). Each worker keeps its
 * own cipher context keyed from a copy of the file key in secure memory.
 */
#include "age/pipeline.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

struct secret {
    uint8_t file_key[SBX_AGE_FILE_KEY_LEN];
    uint8_t nonce[SBX_AGE_NONCE_LEN];
};

struct sbx_age_pipeline {
    bool encrypt;
    unsigned threads, started;
    pthread_t tids[SBX_AGE_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    bool stopping;
    struct secret *secret; /* secure memory */
    EVP_CIPHER_CTX *inline_ctx;
    sbx_age_slot *slots;
    size_t nslots, fill_idx, head, queue_idx;
    uint64_t next_counter;
};

static size_t
in_size(bool encrypt)
{
    return SBX_AGE_SLOT_CHUNKS * (size_t)(encrypt ? SBX_AGE_CHUNK_SIZE : SBX_AGE_SEALED_CHUNK_SIZE);
}

static size_t
out_size(bool encrypt)
{
    return in_size(!encrypt);
}

size_t
sbx_age__slot_capacity(const sbx_age_pipeline *p)
{
    return in_size(p->encrypt);
}

size_t
sbx_age__slot_chunks(const sbx_age_slot *slot, bool encrypt)
{
    size_t unit = encrypt ? SBX_AGE_CHUNK_SIZE : SBX_AGE_SEALED_CHUNK_SIZE;
    size_t n = (slot->in_len + unit - 1) / unit;
    return (encrypt && n == 0) ? 1 : n;
}

unsigned
sbx_age__default_threads(void)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    return n > SBX_AGE_MAX_THREADS ? SBX_AGE_MAX_THREADS : (unsigned)n;
}

static void
seal_slot(EVP_CIPHER_CTX *ctx, sbx_age_slot *s)
{
    size_t n = sbx_age__slot_chunks(s, true);
    s->err = 0;
    for (size_t i = 0; i < n && s->err == 0; i++) {
        size_t off = i * SBX_AGE_CHUNK_SIZE;
        size_t len = s->in_len - off < SBX_AGE_CHUNK_SIZE ? s->in_len - off : SBX_AGE_CHUNK_SIZE;
        s->err = sbx_age__chunk_seal(ctx, s->out + i * SBX_AGE_SEALED_CHUNK_SIZE, s->in + off, len,
                                     s->first_counter + i, s->last && i == n - 1);
    }
    s->nchunks = n;
}

static void
open_slot(EVP_CIPHER_CTX *ctx, sbx_age_slot *s)
{
    size_t n = sbx_age__slot_chunks(s, false);
    memset(s->chunk_ok, 0, sizeof(s->chunk_ok));
    memset(s->chunk_final, 0, sizeof(s->chunk_final));
    for (size_t i = 0; i < n; i++) {
        size_t off = i * SBX_AGE_SEALED_CHUNK_SIZE;
        size_t len = s->in_len - off < SBX_AGE_SEALED_CHUNK_SIZE ? s->in_len - off
                                                                 : SBX_AGE_SEALED_CHUNK_SIZE;
        if (len < SBX_AGE_TAG_LEN)
            break;
        bool final = len < SBX_AGE_SEALED_CHUNK_SIZE;
        uint8_t *out = s->out + i * SBX_AGE_CHUNK_SIZE;
        int err = sbx_age__chunk_open(ctx, out, s->in + off, len, s->first_counter + i, final);
        if (err == SBX_EAUTH && !final) {
            final = true;
            err = sbx_age__chunk_open(ctx, out, s->in + off, len, s->first_counter + i, true);
        }
        s->chunk_ok[i] = err == 0;
        s->chunk_final[i] = final;
        if (err != 0)
            break;
    }
    s->nchunks = n;
}

static void
process(sbx_age_pipeline *p, EVP_CIPHER_CTX *ctx, sbx_age_slot *s)
{
    /* Plaintext and ciphertext both fit in in_len plus the tags of a full slot. */
    size_t used = s->in_len + SBX_AGE_SLOT_CHUNKS * (size_t)SBX_AGE_TAG_LEN;
    if (used > s->used)
        s->used = used;
    if (p->encrypt)
        seal_slot(ctx, s);
    else
        open_slot(ctx, s);
}

static void *
worker(void *arg)
{
    sbx_age_pipeline *p = arg;
    EVP_CIPHER_CTX *ctx = NULL;
    bool ok = sbx_age__payload_ctx(&ctx, p->secret->file_key, p->secret->nonce, p->encrypt) == 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->slots[p->queue_idx].state != SLOT_QUEUED)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        sbx_age_slot *s = &p->slots[p->queue_idx];
        p->queue_idx = (p->queue_idx + 1) % p->nslots;
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->mu);
        if (ok) {
            process(p, ctx, s);
        } else {
            s->err = SBX_ECRYPTO;
            s->nchunks = 0;
        }
        pthread_mutex_lock(&p->mu);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

static void
start_workers(sbx_age_pipeline *p)
{
    for (unsigned i = 0; i < p->threads; i++) {
        if (pthread_create(&p->tids[p->started], NULL, worker, p) != 0)
            break;
        p->started++;
    }
}

sbx_age_slot *
sbx_age__pipeline_next_free(sbx_age_pipeline *p)
{
    sbx_age_slot *s = &p->slots[p->fill_idx];
    pthread_mutex_lock(&p->mu);
    bool busy = s->state != SLOT_FREE;
    pthread_mutex_unlock(&p->mu);
    if (busy)
        return NULL;
    p->fill_idx = (p->fill_idx + 1) % p->nslots;
    s->state = SLOT_FILLING;
    s->in_len = 0;
    s->last = false;
    s->err = 0;
    s->nchunks = 0;
    s->first_counter = p->next_counter;
    p->next_counter += SBX_AGE_SLOT_CHUNKS;
    return s;
}

void
sbx_age__pipeline_submit(sbx_age_pipeline *p, sbx_age_slot *s)
{
    /* Serial, or a lone last slot before any worker started: do it here. */
    if (p->threads <= 1 || (p->started == 0 && s->last && &p->slots[p->head] == s)) {
        process(p, p->inline_ctx, s);
        s->state = SLOT_DONE;
        return;
    }
    if (p->started == 0)
        start_workers(p);
    if (p->started == 0) { /* could not start any thread: degrade to serial */
        p->threads = 1;
        process(p, p->inline_ctx, s);
        s->state = SLOT_DONE;
        return;
    }
    pthread_mutex_lock(&p->mu);
    s->state = SLOT_QUEUED;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

sbx_age_slot *
sbx_age__pipeline_oldest(sbx_age_pipeline *p)
{
    sbx_age_slot *s = &p->slots[p->head];
    pthread_mutex_lock(&p->mu);
    bool none = s->state == SLOT_FREE || s->state == SLOT_FILLING;
    while (!none && s->state != SLOT_DONE)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return none ? NULL : s;
}

void
sbx_age__pipeline_release(sbx_age_pipeline *p, sbx_age_slot *s)
{
    pthread_mutex_lock(&p->mu);
    s->state = SLOT_FREE;
    pthread_mutex_unlock(&p->mu);
    p->head = (p->head + 1) % p->nslots;
}

int
sbx_age__pipeline_new(sbx_age_pipeline **out, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                      const uint8_t nonce[16], bool encrypt, unsigned threads)
{
    int err;
    *out = NULL;
    sbx_age_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return sbx__error_nomem();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->encrypt = encrypt;
    p->threads = threads == 0 ? sbx_age__default_threads() : threads;
    if (p->threads > SBX_AGE_MAX_THREADS)
        p->threads = SBX_AGE_MAX_THREADS;
    p->nslots = p->threads <= 1 ? 1 : (p->threads * 2 > 32 ? 32 : p->threads * 2);
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->secret = sbx_secret_alloc(sizeof(*p->secret));
    if (p->slots == NULL || p->secret == NULL) {
        err = sbx__error_nomem();
        goto fail;
    }
    memcpy(p->secret->file_key, file_key, SBX_AGE_FILE_KEY_LEN);
    memcpy(p->secret->nonce, nonce, SBX_AGE_NONCE_LEN);
    for (size_t i = 0; i < p->nslots; i++) {
        p->slots[i].in = malloc(in_size(encrypt));
        p->slots[i].out = malloc(out_size(encrypt));
        if (p->slots[i].in == NULL || p->slots[i].out == NULL) {
            err = sbx__error_nomem();
            goto fail;
        }
    }
    if ((err = sbx_age__payload_ctx(&p->inline_ctx, file_key, nonce, encrypt)) < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    sbx_age__pipeline_free(p);
    return err;
}

void
sbx_age__pipeline_free(sbx_age_pipeline *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->tids[i], NULL);
    for (size_t i = 0; p->slots != NULL && i < p->nslots; i++) {
        /* Only what was used: wiping untouched pages would only fault them in. */
        size_t used = p->slots[i].used;
        sbx_wipe(p->slots[i].in, p->slots[i].in ? MIN(used, in_size(p->encrypt)) : 0);
        sbx_wipe(p->slots[i].out, p->slots[i].out ? MIN(used, out_size(p->encrypt)) : 0);
        free(p->slots[i].in);
        free(p->slots[i].out);
    }
    free(p->slots);
    sbx_secret_free(p->secret, sizeof(*p->secret));
    EVP_CIPHER_CTX_free(p->inline_ctx);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
