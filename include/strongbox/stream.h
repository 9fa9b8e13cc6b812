/*
 * strongbox/stream.h - sources, sinks and filters: how bytes move.
 *
 * A *source* produces bytes (read until it reports 0 bytes = end of data).
 * A *sink* consumes bytes (write, then finish once at the end of data).
 * A *filter* is built over another source or sink and is itself one: the age
 * encryptor is a sink that writes ciphertext to the sink below it; the age
 * decryptor is a source that reads ciphertext from the source below it. A
 * command is a chain:
 *
 *     file source -> [armor decoder] -> age decryptor -> (read loop) -> stdout sink
 *     (write loop) -> age encryptor -> [armor encoder] -> atomic file sink
 *
 * Rules of the chain:
 *  - finish() on a filter flushes it and then finishes the sink below it, so
 *    finishing the top of a chain finishes the whole chain. A sink that was
 *    never finished is treated as failed: the atomic file sink then discards
 *    its data and the target is untouched.
 *  - free() releases only that object, never the one below it. Free a chain
 *    top-down. free() is NULL-safe and wipes internal buffers.
 *  - After any error, the only valid call on that object is free().
 *
 * Everything works in constant memory: no object buffers more than a few
 * chunks whatever the size of the data.
 *
 * Custom sources and sinks: embed struct sbx_source / struct sbx_sink as the
 * first member of your own struct and fill in the function pointers.
 */
#ifndef STRONGBOX_STREAM_H
#define STRONGBOX_STREAM_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_source sbx_source;
typedef struct sbx_sink sbx_sink;

struct sbx_source {
    /**
     * Read up to len bytes into buf; *nread receives the count. *nread == 0
     * with a 0 return means end of data. Returns 0 or a negative SBX_E* code.
     */
    int (*read)(sbx_source *self, uint8_t *buf, size_t len, size_t *nread);
    /** Release this source (not the one below it). May be NULL. */
    void (*free)(sbx_source *self);
};

struct sbx_sink {
    /** Consume all len bytes. Returns 0 or a negative SBX_E* code. */
    int (*write)(sbx_sink *self, const uint8_t *buf, size_t len);
    /** End of data: flush, write trailers, finish the sink below. */
    int (*finish)(sbx_sink *self);
    /** Release this sink (not the one below it). May be NULL. */
    void (*free)(sbx_sink *self);
};

/** @brief Read from a source (dispatch helper). */
SBX_EXTERN int sbx_source_read(sbx_source *src, uint8_t *buf, size_t len,
                               size_t *nread) SBX_WARN_UNUSED;

/**
 * @brief Read until buf is full or the source ends.
 * @param nread receives the count; less than len only at end of data.
 */
SBX_EXTERN int sbx_source_read_full(sbx_source *src, uint8_t *buf, size_t len,
                                    size_t *nread) SBX_WARN_UNUSED;

/** @brief Free a source. NULL-safe. */
SBX_EXTERN void sbx_source_free(sbx_source *src);

/** @brief Write to a sink (dispatch helper). */
SBX_EXTERN int sbx_sink_write(sbx_sink *snk, const uint8_t *buf, size_t len) SBX_WARN_UNUSED;

/** @brief Finish a sink (and the chain below it). */
SBX_EXTERN int sbx_sink_finish(sbx_sink *snk) SBX_WARN_UNUSED;

/** @brief Free a sink. NULL-safe. An unfinished atomic file sink discards its output. */
SBX_EXTERN void sbx_sink_free(sbx_sink *snk);

/**
 * @brief Copy a source to a sink until end of data, then finish the sink.
 * @param total receives the number of bytes copied (may be NULL).
 */
SBX_EXTERN int sbx_stream_copy(sbx_sink *dst, sbx_source *src, uint64_t *total) SBX_WARN_UNUSED;

/* ---- sources ---- */

/** @brief A source over memory (not copied: data must outlive the source). */
SBX_EXTERN int sbx_source_mem_new(sbx_source **out, const void *data, size_t len);

/**
 * @brief A source over a file descriptor (file, pipe, socket).
 * @param close_fd when true, free() closes fd.
 */
SBX_EXTERN int sbx_source_fd_new(sbx_source **out, int fd, bool close_fd);

/**
 * @brief A source that opens path for reading ("-" means standard input).
 * @return 0, SBX_ENOTFOUND, or SBX_EIO; the message names the path.
 */
SBX_EXTERN int sbx_source_file_new(sbx_source **out, const char *path);

/* ---- sinks ---- */

/** @brief A sink appending to a caller-owned sbx_buf (which must outlive it). */
SBX_EXTERN int sbx_sink_buf_new(sbx_sink **out, sbx_buf *buf);

/**
 * @brief A sink over a file descriptor. finish() does not close or sync fd.
 * @param close_fd when true, free() closes fd.
 */
SBX_EXTERN int sbx_sink_fd_new(sbx_sink **out, int fd, bool close_fd);

/**
 * @brief A sink that atomically creates or replaces path.
 *
 * Bytes go to a new unnamed file (O_TMPFILE) in the same directory, created
 * with the given mode at open (e.g. 0600 for secrets). finish() fsyncs it,
 * links it into the directory (under a temporary name for the instant of a
 * rename over path) and fsyncs the directory: a crash at any moment leaves
 * either the old file or the complete new one. Until finish() the new data
 * has no name, so a process that dies before, however it dies (SIGKILL
 * included), leaves nothing behind. Freeing the sink without a successful
 * finish() discards the data and leaves path untouched.
 *
 * Where the filesystem has no O_TMPFILE (or /proc is not mounted), the data
 * goes to a named temporary file ".NAME.tmp-XXXXXXXXXXXX" beside path
 * instead: the weaker case, in which the file survives the process unless
 * its signal handlers call sbx_atomic_cleanup() (SIGKILL: always survives).
 *
 * A symbolic link at path is refused (SBX_EINVAL): an output is never
 * written through a link (see SBX_ATOMIC_FOLLOW). An existing path that is
 * not a regular file (a FIFO, socket or character device such as /dev/null,
 * also through a link such as /dev/stdout) is written directly, not
 * atomically; a directory is refused.
 *
 * @param mode permission bits for the new file (subject to umask).
 * @return 0, SBX_EINVAL (a symbolic link at path), or SBX_EIO (directory
 *         not writable, etc.).
 */
SBX_EXTERN int sbx_sink_atomic_file_new(sbx_sink **out, const char *path, unsigned mode);

/** Flag for sbx_sink_atomic_file_new_ex(): create path, never replace anything there. */
#define SBX_ATOMIC_NOREPLACE 1u
/**
 * Flag for sbx_sink_atomic_file_new_ex(): a symbolic link at path to a regular
 * file is followed and its target replaced (the link kept). For rewriting an
 * input in place, where the caller chose to follow the link when reading it.
 */
#define SBX_ATOMIC_FOLLOW 2u

/**
 * @brief sbx_sink_atomic_file_new() with flags.
 *
 * SBX_ATOMIC_NOREPLACE: path must not exist (not even as a dangling symbolic
 * link; links are never followed), and finish() publishes the file only if
 * nothing appeared at path meanwhile (link of the unnamed file, or rename
 * with RENAME_NOREPLACE). For new files in directories other users can
 * write to.
 *
 * SBX_ATOMIC_FOLLOW: see the flag.
 *
 * @return 0; SBX_EEXISTS when path exists (from finish() too, when something
 *         appeared while writing: the new data is then discarded);
 *         SBX_EINVAL for unknown flags or a refused symbolic link; SBX_EIO.
 */
SBX_EXTERN int sbx_sink_atomic_file_new_ex(sbx_sink **out, const char *path, unsigned mode,
                                           unsigned flags);

/**
 * @brief Remove the named temporary files of this process's unfinished atomic
 *        file sinks (the weaker case of sbx_sink_atomic_file_new(), and the
 *        temporary name of a commit in progress).
 *
 * Async-signal-safe, for the handler of a signal that ends the process
 * (SIGINT, SIGTERM, SIGHUP, SIGPIPE...): the handler calls it, then lets the
 * signal end the process. No sink may be finished afterwards. Unnamed files
 * need no cleanup; the kernel frees them when the process ends.
 */
SBX_EXTERN void sbx_atomic_cleanup(void);

/**
 * @brief Atomically replace path with len bytes from data (one-shot form of
 *        sbx_sink_atomic_file_new()).
 */
SBX_EXTERN int sbx_atomic_write_file(const char *path, const void *data, size_t len, unsigned mode);

/**
 * @brief A sink that computes SHA-256 of everything written and discards it.
 * @param digest receives the hash when finish() succeeds (must outlive the sink).
 */
SBX_EXTERN int sbx_sink_sha256_new(sbx_sink **out, uint8_t digest[32]);

#ifdef __cplusplus
}
#endif
#endif
