/*
 * src/tmpfile/tmpfile.h - internals of encrypted temporary files, exposed to
 * the tests (tamper the disk, look for the key in a core dump, exercise the
 * fallback without O_TMPFILE). Not part of the public API.
 */
#ifndef SBX_TMPFILE_TMPFILE_H
#define SBX_TMPFILE_TMPFILE_H

#include "strongbox/tmpfile.h"

#define SBX_TMPFILE__NONCE_LEN 12
#define SBX_TMPFILE__TAG_LEN   16
#define SBX_TMPFILE__KEY_LEN   32

/* Bytes one block occupies on disk: nonce || ciphertext || tag. */
#define SBX_TMPFILE__SLOT(block_size) (SBX_TMPFILE__NONCE_LEN + (block_size) + SBX_TMPFILE__TAG_LEN)

/* The backing file descriptor (borrowed), or -1 when f is not ours. */
int sbx_tmpfile__fd(FILE *f);

/*
 * Write the file key to fd with write(2) (tests only: the core-dump test sends
 * it to the parent through a pipe). The kernel copies it straight from the
 * secure heap; a memcpy through vector registers would leave copies that the
 * lazy-binding trampoline or a signal frame later spills onto the stack.
 * 0, SBX_EINVAL or SBX_EIO.
 */
int sbx_tmpfile__write_key(FILE *f, int fd);

/* True when the key of f lives in the locked secure heap. */
bool sbx_tmpfile__key_is_locked(FILE *f);

/*
 * Read n bytes at off straight from the block layer, bypassing stdio (which
 * is not flushed): the logical contents as the library holds them. Returns
 * the count (short at the end of the file) or a negative SBX_E* code.
 */
long sbx_tmpfile__pread(FILE *f, uint8_t *buf, size_t n, uint64_t off);

/* Skip O_TMPFILE and use the create-then-unlink fallback (process-wide; tests only). */
void sbx_tmpfile__force_fallback(bool on);

#endif
