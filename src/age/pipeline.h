/*
 * src/age/pipeline.h - parallel STREAM processing (internal).
 *
 * The payload is processed in *slots* of up to SBX_AGE_SLOT_CHUNKS chunks.
 * The caller's thread fills slots in order (plaintext for encryption,
 * ciphertext for decryption) and consumes them in the same order; a pool of
 * worker threads seals or opens the chunks of queued slots in between. A
 * fixed ring of slots bounds memory whatever the file size, and because
 * every chunk is processed with the same key, counter and flag as in a
 * serial loop, the output is identical byte for byte.
 *
 * With one thread (or before a second slot is ever queued) slots are
 * processed inline on the caller's thread: small files never start threads.
 */
#ifndef SBX_AGE_PIPELINE_H
#define SBX_AGE_PIPELINE_H

#include "strongbox/age.h"

#define SBX_AGE_SLOT_CHUNKS 8

enum sbx_age_slot_state { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

typedef struct sbx_age_slot {
    enum sbx_age_slot_state state;
    uint8_t *in;            /* plaintext (encrypt) or ciphertext (decrypt) */
    uint8_t *out;           /* ciphertext (encrypt) or plaintext (decrypt) */
    size_t in_len;          /* bytes in `in` */
    uint64_t first_counter; /* counter of the slot's first chunk */
    bool last;              /* encrypt: last chunk is final; decrypt: input ended here */
    int err;                /* encrypt: 0 or an error */
    /* decryption results, per chunk, valid up to the first failure */
    size_t nchunks;
    bool chunk_final[SBX_AGE_SLOT_CHUNKS];
    bool chunk_ok[SBX_AGE_SLOT_CHUNKS];
    size_t used; /* high-water mark of bytes used in `in` and `out`: what free() wipes */
} sbx_age_slot;

typedef struct sbx_age_pipeline sbx_age_pipeline;

/*
 * A pipeline keyed with the payload key derived from file_key and nonce.
 * threads: 0 = one per online CPU; 1 = serial.
 */
int sbx_age__pipeline_new(sbx_age_pipeline **out, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                          const uint8_t nonce[16], bool encrypt, unsigned threads);

/* Stop the workers, wipe and free everything. NULL-safe. */
void sbx_age__pipeline_free(sbx_age_pipeline *p);

/* Bytes of input one slot holds. */
size_t sbx_age__slot_capacity(const sbx_age_pipeline *p);

/*
 * The next slot to fill, in order, or NULL when every slot is in flight
 * (consume the oldest first). Marks it FILLING; its first_counter is set.
 */
sbx_age_slot *sbx_age__pipeline_next_free(sbx_age_pipeline *p);

/* Hand a filled slot to the workers (or process it inline). */
void sbx_age__pipeline_submit(sbx_age_pipeline *p, sbx_age_slot *slot);

/* The oldest submitted slot, after waiting for it to be processed; NULL if none. */
sbx_age_slot *sbx_age__pipeline_oldest(sbx_age_pipeline *p);

/* Return the oldest slot to the free ring once its output was consumed. */
void sbx_age__pipeline_release(sbx_age_pipeline *p, sbx_age_slot *slot);

/* Number of chunks a slot's input makes (at least 1 for encryption). */
size_t sbx_age__slot_chunks(const sbx_age_slot *slot, bool encrypt);

/* The default number of worker threads: online CPUs available to this process. */
unsigned sbx_age__default_threads(void);

#endif
