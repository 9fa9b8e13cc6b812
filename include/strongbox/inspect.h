/*
 * strongbox/inspect.h - what a file is, without any key.
 *
 * sbx_inspect_file() / sbx_inspect_mem() recognise the format (age binary,
 * age armored, the seeds' legacy formats: gzip'd tar archives of pyFileSec
 * and PsychoPy opensslwrap, `openssl enc` "Salted__" data, pyFileSec
 * plaintext padding) and, for age files, report the header's public facts:
 * stanza types and counts, SSH key tags (which link a file to an SSH public
 * key), the scrypt work factor, the padding marker, and the payload size
 * and chunk count computed from the file size. Nothing secret is read or
 * printed: the stanza bodies (wrapped keys) are never reported. The header
 * MAC cannot be checked without a key, so a valid-looking header may still
 * have been tampered with.
 *
 *     sbx_inspect_info info;
 *     sbx_inspect_file(&info, "x.age");
 *     sbx_buf json = SBX_BUF_INIT;
 *     sbx_inspect_to_json(&info, "x.age", &json);
 */
#ifndef STRONGBOX_INSPECT_H
#define STRONGBOX_INSPECT_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sbx_inspect_format {
    SBX_INSPECT_UNKNOWN = 0,     /**< not recognised (plaintext or another format) */
    SBX_INSPECT_EMPTY = 1,       /**< zero bytes */
    SBX_INSPECT_AGE = 2,         /**< age v1, binary */
    SBX_INSPECT_AGE_ARMORED = 3, /**< age v1, ASCII armored */
    SBX_INSPECT_GZIP = 4,        /**< gzip: a pyFileSec .enc / opensslwrap bundle, or other */
    SBX_INSPECT_OPENSSL_ENC = 5, /**< `openssl enc -salt` output ("Salted__"), binary or base64 */
    SBX_INSPECT_PFS_PADDED = 6   /**< a plaintext with pyFileSec padding */
};

#define SBX_INSPECT_MAX_TYPES    16
#define SBX_INSPECT_MAX_SSH_TAGS 16

typedef struct sbx_inspect_info {
    int format;         /**< enum sbx_inspect_format */
    const char *name;   /**< short stable name: "age", "age-armored", "gzip", ... (static) */
    const char *note;   /**< one human sentence about the format (static), or NULL */
    uint64_t file_size; /**< bytes in the file as stored */
    bool valid;         /**< age: header parses (and the payload layout is consistent) */
    char error[200];    /**< age: why not valid ("" when valid) */
    /* age header facts (binary form) */
    uint64_t header_size; /**< header bytes through the MAC line */
    size_t stanzas;       /**< number of stanzas */
    size_t ntypes;        /**< entries used in types[] */
    struct {
        char name[48]; /**< stanza type (truncated if longer) */
        size_t count;
    } types[SBX_INSPECT_MAX_TYPES];
    size_t more_types; /**< distinct types not listed (over the limit) */
    size_t nssh;       /**< entries used in ssh[] */
    struct {
        char type[16]; /**< "ssh-ed25519" or "ssh-rsa" */
        char tag[16];  /**< base64 of the first 4 bytes of SHA-256(key) */
    } ssh[SBX_INSPECT_MAX_SSH_TAGS];
    int scrypt_log_n; /**< scrypt work factor log2(N), or 0 when none */
    bool padded;      /**< the header has the sbx-pad marker */
    /* payload, computed from the size */
    uint64_t payload_size;   /**< ciphertext after the header (nonce + chunks) */
    uint64_t chunks;         /**< STREAM chunks */
    uint64_t plaintext_size; /**< plaintext bytes (padded size when padded) */
    bool layout_ok;          /**< the payload size is a possible STREAM layout */
    /* pyFileSec padding */
    uint64_t pfs_pad_bytes; /**< padding bytes (filler + trailer) when PFS_PADDED */
} sbx_inspect_info;

/**
 * @brief Inspect a file (constant memory; an armored file is decoded once
 *        to measure it, a binary one is read only at its start and end).
 * @return 0 (an unknown or invalid file is not an error: see info->valid
 *         and info->error), SBX_ENOTFOUND, SBX_EIO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_inspect_file(sbx_inspect_info *info, const char *path) SBX_WARN_UNUSED;

/**
 * @brief Inspect a whole file held in memory.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_inspect_mem(sbx_inspect_info *info, const uint8_t *data,
                               size_t len) SBX_WARN_UNUSED;

/**
 * @brief The report as one JSON object (UTF-8, one line, newline at the end)
 *        appended to out.
 * @param path the file name to include, or NULL.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_inspect_to_json(const sbx_inspect_info *info, const char *path, sbx_buf *out);

/**
 * @brief The report as human-readable text (several lines) appended to out.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_inspect_to_text(const sbx_inspect_info *info, const char *path, sbx_buf *out);

#ifdef __cplusplus
}
#endif
#endif
