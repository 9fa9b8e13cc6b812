/*
 * strongbox/tmpfile.h - encrypted temporary files: a drop-in tmpfile(3).
 *
 * sbx_tmpfile() returns an ordinary stdio FILE * (built with fopencookie) that
 * behaves like the one tmpfile(3) returns: fread, fwrite, fseek/fseeko, ftell,
 * rewind, fflush, fclose, seeking past the end and writing (the gap reads as
 * zeros), and shrinking through sbx_tmpfile_truncate(). The difference is on
 * disk: every byte that reaches the backing file is AEAD ciphertext under a
 * key that exists only in this process's locked memory.
 *
 *     FILE *f = sbx_tmpfile();
 *     if (f == NULL)
 *         die("sbx_tmpfile: %s", sbx_error_last()->message);
 *     fwrite(run, 1, run_len, f);      // sort run spilled to disk, encrypted
 *     rewind(f);
 *     while ((n = fread(buf, 1, sizeof buf, f)) > 0) ...
 *     if (ferror(f) && errno == EIO)   // a block failed authentication
 *         ...
 *     fclose(f);                       // key wiped, file gone
 *
 * The backing file
 *   It is created 0600 in the chosen directory (default $TMPDIR, else /tmp)
 *   with O_TMPFILE, so it never has a name; on filesystems without O_TMPFILE
 *   it is created with O_EXCL under a random name and unlinked at once. It is
 *   opened O_CLOEXEC. The kernel frees it on fclose() or when the process
 *   exits, however it exits. fileno() on the returned FILE is -1.
 *
 * Layout and cryptography
 *   The logical file is cut into fixed-size blocks (default 4096 bytes). Block
 *   i is stored at offset i * (12 + block_size + 16) as
 *       nonce[12] || ciphertext[block_size] || tag[16]
 *   under AES-256-GCM (default) or ChaCha20-Poly1305, both from OpenSSL. The
 *   key is 32 random bytes generated per file. The nonce is 4 zero bytes and a
 *   64-bit per-file counter incremented for every block written, so no nonce
 *   is ever used twice under a key, even when a block is rewritten with new
 *   contents. The associated data is a 16-byte random file id and the block
 *   index, so a block moved to another position does not verify. The library
 *   also remembers, in memory, the counter each block was last written with
 *   and refuses any other: an attacker who restores an older ciphertext of the
 *   same block (a rollback) is detected too. The logical size is kept in
 *   memory; blocks never written (holes) are not stored and read as zeros.
 *
 * Errors
 *   A read of a block whose tag, nonce or length does not verify fails: fread
 *   returns a short count, ferror(f) is set and errno is EIO. No byte of that
 *   block is returned, and the destination range of the failed call is zeroed.
 *   sbx_error_last() on the same thread says which block failed and why.
 *   Other errno values from the stdio calls: ENOMEM, EFBIG (beyond
 *   SBX_TMPFILE_MAX_SIZE), EINVAL (seek before 0), and the errno of the
 *   failed pread/pwrite.
 *
 * Caching and memory
 *   stdio's buffer (one block), a small write-back cache of whole plaintext
 *   blocks (default 8) and a read-ahead window for sequential readers mean
 *   that small reads and writes do not seal or open a block each; large
 *   aligned writes bypass the cache and seal many blocks per system call.
 *   Dirty cached blocks reach the disk when evicted or when
 *   sbx_tmpfile_read_ciphertext() is called; fflush() moves data from stdio
 *   into this cache but does not force it to disk (a temporary file has
 *   nothing to make durable). The plaintext buffers (stdio buffer, cache,
 *   read-ahead) are mapped MADV_DONTDUMP, locked when the memlock limit
 *   allows, and wiped on fclose(). Memory cost per open file:
 *   (cache_blocks + 1) * block_size of plaintext, about 256 KiB of read-ahead
 *   and 256 KiB of ciphertext staging, and 8 bytes per block up to the
 *   highest block ever written (the rollback counters): 2 MiB per GiB of file
 *   at 4 KiB blocks, 128 KiB per GiB at 64 KiB blocks.
 *
 * What is protected, and what is not
 *   Protected: confidentiality and integrity of the data at rest in the
 *   backing file against anyone who reads or modifies the disk or the open
 *   file (another process of the same user, a stolen disk, blocks recovered
 *   later): no plaintext, no key. Modified, truncated, swapped, replayed or
 *   rolled-back blocks are detected on read.
 *   The 32-byte key lives in the OpenSSL secure heap (sbx_secret_alloc): locked
 *   in RAM, excluded from core dumps, wiped on fclose(). The AES or ChaCha key
 *   schedule exists only inside each stdio callback, in an OpenSSL context
 *   that is wiped (EVP_CIPHER_CTX_free) before the callback returns.
 *   Not protected: the plaintext in the caller's own buffers; an attacker who
 *   can read this process's memory (ptrace, /proc/PID/mem) while it runs; the
 *   size of the file and which blocks were written when (visible on disk);
 *   availability (a modified disk gives EIO, not the data). The secure heap is
 *   locked only when sbx_init() reports 0 (see strongbox/common.h).
 *
 * fork()
 *   Only the process that created the file may use it. A child after fork()
 *   shares the backing file but writing to it would reuse nonces of the parent
 *   and corrupt the parent's data, so every stdio callback in the child fails
 *   with EIO before touching the disk: fwrite/fflush/fread/fseek in the child
 *   fail once they need the file (bytes already sitting in the stdio buffer at
 *   fork() may still be returned by fread, since stdio serves them without the
 *   callback). fclose() in the child releases the child's copy of the memory
 *   and its descriptor and never writes. The parent is unaffected. The file is
 *   not inherited across exec (O_CLOEXEC).
 *
 * Threads: the FILE is locked by stdio as usual; sbx_tmpfile_truncate() and
 * sbx_tmpfile_read_ciphertext() take the same lock (flockfile).
 */
#ifndef STRONGBOX_TMPFILE_H
#define STRONGBOX_TMPFILE_H

#include "strongbox/common.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The AEAD that seals each block. */
enum sbx_tmpfile_cipher {
    SBX_TMPFILE_AES_256_GCM = 0,       /**< default; fastest with AES-NI/VAES */
    SBX_TMPFILE_CHACHA20_POLY1305 = 1, /**< constant-time without AES hardware */
    SBX_TMPFILE_AES_128_GCM = 2,       /**< a 16-byte key (Ephemeral's key_size=16) */
    SBX_TMPFILE_AES_192_GCM = 3        /**< a 24-byte key (Ephemeral's key_size=24) */
};

#define SBX_TMPFILE_OPTIONS_VERSION 1
#define SBX_TMPFILE_DEFAULT_BLOCK   4096
#define SBX_TMPFILE_MIN_BLOCK       512
#define SBX_TMPFILE_MAX_BLOCK       (1024 * 1024)
#define SBX_TMPFILE_DEFAULT_CACHE   8
#define SBX_TMPFILE_MAX_CACHE       64
/** Largest logical size (and seek position) a file may reach: 2^48 bytes. */
#define SBX_TMPFILE_MAX_SIZE ((uint64_t)1 << 48)

/** Options for sbx_tmpfile_open(). Initialise with SBX_TMPFILE_OPTIONS_INIT. */
struct sbx_tmpfile_options {
    unsigned version;               /**< SBX_TMPFILE_OPTIONS_VERSION */
    const char *dir;                /**< directory; NULL: $TMPDIR, else /tmp */
    enum sbx_tmpfile_cipher cipher; /**< the block AEAD (and so the key size) */
    size_t block_size;              /**< 0: 4096; else a power of two in [512, 1 MiB] */
    unsigned cache_blocks;          /**< 0: 8; else 1..64 plaintext blocks cached */
};

#define SBX_TMPFILE_OPTIONS_INIT                                                                   \
    {                                                                                              \
        SBX_TMPFILE_OPTIONS_VERSION, NULL, SBX_TMPFILE_AES_256_GCM, 0, 0                           \
    }

/**
 * @brief An encrypted temporary file with the default options: the drop-in
 *        replacement for tmpfile(3).
 *
 * Same as sbx_tmpfile_open(NULL).
 *
 * @return a FILE open for reading and writing ("w+"), positioned at 0, empty;
 *         or NULL with errno set and sbx_error_last() describing the failure
 *         (code SBX_EIO: directory missing or not writable; SBX_ENOMEM;
 *         SBX_ECRYPTO). Close it with fclose(), which wipes the key.
 */
SBX_EXTERN FILE *sbx_tmpfile(void);

/**
 * @brief An encrypted temporary file with the given options.
 *
 * @param opts NULL for the defaults, or options initialised with
 *        SBX_TMPFILE_OPTIONS_INIT and then changed. The directory string is
 *        used only during the call.
 * @return the FILE, or NULL with errno set and sbx_error_last() filled in:
 *         SBX_EINVAL (unknown version or cipher, bad block size or cache
 *         size), SBX_EIO (cannot create the backing file in dir), SBX_ENOMEM,
 *         SBX_ECRYPTO (no cipher or no randomness from OpenSSL).
 */
SBX_EXTERN FILE *sbx_tmpfile_open(const struct sbx_tmpfile_options *opts);

/**
 * @brief Set the logical size of an encrypted temporary file, like
 *        ftruncate(2) on a plain one.
 *
 * Flushes stdio's buffer first. Shrinking discards the blocks past the new
 * end (the backing file shrinks too) and zeroes the tail of the new last
 * block; growing adds a hole that reads as zeros. The stdio position is not
 * moved, as with ftruncate(2).
 *
 * @param f a FILE from sbx_tmpfile() or sbx_tmpfile_open().
 * @param size the new size, at most SBX_TMPFILE_MAX_SIZE.
 * @return 0; SBX_EINVAL when f is not an encrypted temporary file;
 *         SBX_ETOOBIG; SBX_EAUTH when the block holding the new end fails
 *         to verify (nothing is changed); SBX_EIO (disk error, or a call
 *         from a child process after fork); SBX_ENOMEM.
 */
SBX_EXTERN int sbx_tmpfile_truncate(FILE *f, uint64_t size);

/**
 * @brief Append the raw bytes of the backing file, exactly as stored on disk,
 *        to out (for tests and audits: check that no plaintext reached the
 *        disk).
 *
 * Flushes stdio's buffer, writes every dirty cached block to disk and empties
 * the cache first, so the bytes reflect everything written so far and the
 * next read of any block re-reads and re-verifies it from disk. The format is
 * described at the top of this header; holes are absent or zero-filled.
 *
 * @param f a FILE from sbx_tmpfile() or sbx_tmpfile_open().
 * @param out a caller-owned buffer; the bytes are appended.
 * @return 0; SBX_EINVAL when f is not an encrypted temporary file; SBX_EIO
 *         (read or write error, a cached block could not be written, or a
 *         call from a child after fork); SBX_ENOMEM.
 */
SBX_EXTERN int sbx_tmpfile_read_ciphertext(FILE *f, sbx_buf *out);

/**
 * @brief True when f was returned by sbx_tmpfile() or sbx_tmpfile_open() and
 *        is still open.
 */
SBX_EXTERN bool sbx_tmpfile_is_encrypted(FILE *f);

/* ---- the descriptor-level API ----
 *
 * The same encrypted temporary file without stdio, for bindings that keep
 * their own position and buffering (the Python strongbox.TemporaryFile) and
 * for programs that want pread/pwrite. sbx_tmpfile() is built on it: block
 * layout, keys, cache, fork rule and errors are exactly as described above.
 *
 *     sbx_tmpfd *t;
 *     if (sbx_tmpfd_new(&t, NULL) < 0) ...
 *     sbx_tmpfd_pwrite(t, data, len, 0, NULL);
 *     sbx_tmpfd_pread(t, buf, sizeof buf, 0, &got);   // got < sizeof buf only at the end
 *     int fd = sbx_tmpfd_fd(t);                        // the real descriptor: ciphertext
 *     sbx_tmpfd_free(t);                               // key wiped, file gone
 *
 * An sbx_tmpfd has no position and no lock: calls on one object must not run
 * concurrently (serialise them; different objects are independent). Every
 * call fails with SBX_EIO in a child process after fork(). The descriptor
 * belongs to the object: do not close it or write through it (a write
 * through it is detected as tampering on the next read of that block).
 */
typedef struct sbx_tmpfd sbx_tmpfd;

/**
 * @brief Create an encrypted temporary file (see sbx_tmpfile_open() for opts).
 * @param out receives the object (NULL on error); free it with sbx_tmpfd_free().
 * @return 0, SBX_EINVAL (bad options), SBX_EIO (cannot create the backing
 *         file), SBX_ENOMEM, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_tmpfd_new(sbx_tmpfd **out,
                             const struct sbx_tmpfile_options *opts) SBX_WARN_UNUSED;

/**
 * @brief Read up to len plaintext bytes at off (pread(2)-style).
 * @param nread receives the count: less than len only at the end of the file.
 * @return 0; SBX_EAUTH (a block failed to verify: nothing is returned, the
 *         destination range is wiped, *nread is 0; the message names the
 *         block); SBX_EIO; SBX_ENOMEM.
 */
SBX_EXTERN int sbx_tmpfd_pread(sbx_tmpfd *t, void *buf, size_t len, uint64_t off,
                               size_t *nread) SBX_WARN_UNUSED;

/**
 * @brief Write len bytes at off (pwrite(2)-style); writing past the end grows
 *        the file, and the gap reads as zeros.
 * @param nwritten receives the count written (may be NULL); len on success,
 *        and on failure the bytes that were committed (they count in the size).
 * @return 0, SBX_ETOOBIG (past SBX_TMPFILE_MAX_SIZE), SBX_EAUTH (a partly
 *         written block failed to verify when it was loaded), SBX_EIO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_tmpfd_pwrite(sbx_tmpfd *t, const void *buf, size_t len, uint64_t off,
                                size_t *nwritten) SBX_WARN_UNUSED;

/** @brief Set the logical size, as sbx_tmpfile_truncate(). @return as sbx_tmpfile_truncate(). */
SBX_EXTERN int sbx_tmpfd_truncate(sbx_tmpfd *t, uint64_t size) SBX_WARN_UNUSED;

/** @brief The logical (plaintext) size in bytes; 0 for NULL. */
SBX_EXTERN uint64_t sbx_tmpfd_size(const sbx_tmpfd *t);

/**
 * @brief The backing descriptor (borrowed; -1 for NULL). Its bytes are
 *        ciphertext in the layout above; call sbx_tmpfd_flush() first to see
 *        everything written so far.
 */
SBX_EXTERN int sbx_tmpfd_fd(const sbx_tmpfd *t);

/**
 * @brief Write every dirty cached block to disk and empty the cache (the next
 *        read of any block re-reads and re-verifies it).
 * @return 0, SBX_EIO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_tmpfd_flush(sbx_tmpfd *t);

/** @brief The plaintext block size (4096 unless the options chose another); 0 for NULL. */
SBX_EXTERN size_t sbx_tmpfd_block_size(const sbx_tmpfd *t);

/**
 * @brief Where on disk the block holding logical offset off starts:
 *        (off / block_size) * (12 + block_size + 16).
 */
SBX_EXTERN uint64_t sbx_tmpfd_disk_offset(const sbx_tmpfd *t, uint64_t off);

/** @brief As sbx_tmpfile_read_ciphertext(): flush, then append the raw disk bytes to out. */
SBX_EXTERN int sbx_tmpfd_read_ciphertext(sbx_tmpfd *t, sbx_buf *out);

/** @brief Wipe the key and the buffers, close the descriptor (the file is gone). NULL-safe. */
SBX_EXTERN void sbx_tmpfd_free(sbx_tmpfd *t);

#ifdef __cplusplus
}
#endif
#endif
