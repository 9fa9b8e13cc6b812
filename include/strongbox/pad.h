/*
 * strongbox/pad.h - hiding a file's length: padding inside the encrypted
 * payload (age files), and the seed's plaintext padding (pyFileSec).
 *
 * 1. Padding inside an age file (the format is in docs/pad.md).
 *
 * The plaintext is extended before encryption to a bucket size, and the
 * true length is stored in the last 8 bytes of the padded plaintext:
 *
 *     padded plaintext = data || zero bytes || uint64 big-endian len(data)
 *
 * The padded plaintext is what the age payload authenticates, so the true
 * length is authenticated too. The header carries one extra stanza of our
 * own type, "-> sbx-pad v1" with an empty body, which says the file is
 * padded; the header MAC authenticates it, and `age` skips stanza types it
 * does not know, so `age -d` still decrypts the file (to the padded form).
 * Because age requires a passphrase (scrypt) stanza to be the only stanza,
 * a padded file cannot be encrypted to a passphrase (SBX_EINVAL).
 *
 * Bucket sizes: PADME (Nikitin et al., "Reducing Metadata Leakage from
 * Encrypted Files and Communication with PURBs", PETS 2019) by default,
 * which leaks O(log log n) bits of the length for at most 12% overhead; or
 * the smallest multiple of a fixed bucket the caller gives.
 *
 *     sbx_sink *enc;                                   // encrypt, padded
 *     sbx_pad_options pad = SBX_PAD_OPTIONS_INIT;      // PADME
 *     sbx_pad_encryptor_new(&enc, file, recipients, n, NULL, &pad);
 *     ... sbx_sink_write(enc, ...) ... sbx_sink_finish(enc); sbx_sink_free(enc);
 *
 *     sbx_source *dec; bool padded;                    // decrypt, any file
 *     sbx_pad_decryptor_new(&dec, in, identities, n, NULL, &padded);
 *
 * The unpadding source works in constant memory: it holds back the last 8
 * bytes and counts (does not store) a trailing run of zero bytes, so any
 * amount of filler is handled with a fixed buffer.
 *
 * The "sbx-pad" stanza type is registered with the age layer
 * (strongbox/sys/age.h), so every header read refuses a malformed or
 * unknown-version marker (SBX_EHEADER). Callers that build their own chain
 * use the stanza interface and the two building blocks below:
 *
 *     static const char *const v[] = {SBX_PAD_STANZA_VERSION};
 *     sbx_age_header_new(&h);                        // writing
 *     sbx_age_header_wrap(h, recipients, n, file_key);
 *     sbx_age_header_add_stanza(h, SBX_PAD_STANZA_TYPE, v, 1, NULL, 0);
 *     sbx_age_encryptor_new_with_header(&enc, file, h, file_key, NULL);
 *     sbx_pad_sink_new(&pad, enc, NULL);             // write through pad
 *
 *     sbx_age_header_read(&h, in);                   // reading
 *     sbx_age_header_unwrap(h, identities, n);       // the MAC covers the marker
 *     padded = sbx_age_header_find(h, SBX_PAD_STANZA_TYPE) != NULL;
 *     sbx_age_decryptor_new_opened(&dec, h, in, NULL);
 *     if (padded) sbx_unpad_source_new(&plain, dec);
 *
 * 2. The seed's plaintext padding (pyFileSec SecFile.pad/unpad,
 *    spec/seeds.md §1.8). The file is extended in the clear to exactly a
 *    target size with NUL bytes and a 32-byte trailer:
 *
 *     "pad=" + 10 decimal digits + NUL + "pyFileSec_padded" + NUL
 *
 * where the number is the total of bytes appended (filler + trailer).
 * Default target 16 KiB, minimum 128 bytes, maximum 8 GiB. Unpadding
 * restores the exact original bytes. This padding is not authenticated and
 * is visible in the plaintext: prefer (1), or encrypt afterwards.
 */
#ifndef STRONGBOX_PAD_H
#define STRONGBOX_PAD_H

#include "strongbox/common.h"
#include "strongbox/stream.h"
#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Size of the length trailer at the end of a padded plaintext. */
#define SBX_PAD_TRAILER_LEN 8
/** Stanza type that marks a padded age file (argument: SBX_PAD_STANZA_VERSION). */
#define SBX_PAD_STANZA_TYPE    "sbx-pad"
#define SBX_PAD_STANZA_VERSION "v1"

typedef struct sbx_pad_options {
    unsigned version; /**< SBX_PAD_OPTIONS_VERSION */
    /** 0 = PADME buckets; otherwise pad to the smallest multiple of bucket bytes. */
    uint64_t bucket;
} sbx_pad_options;

#define SBX_PAD_OPTIONS_VERSION 1
#define SBX_PAD_OPTIONS_INIT                                                                       \
    {                                                                                              \
        SBX_PAD_OPTIONS_VERSION, 0                                                                 \
    }

/**
 * @brief The padded plaintext size for len bytes of data (trailer included).
 * @param out receives the size.
 * @param bucket 0 for PADME, else the fixed bucket size.
 * @return 0, or SBX_ETOOBIG when the result would exceed 2^62 bytes.
 */
SBX_EXTERN int sbx_pad_size(uint64_t *out, uint64_t len, uint64_t bucket) SBX_WARN_UNUSED;

/**
 * @brief A sink that passes data through to dst and, at finish(), appends
 *        the zero filler and the 8-byte length trailer, then finishes dst.
 * @param opts NULL for PADME.
 * @return 0, SBX_EINVAL (bad options), SBX_ENOMEM. dst is not owned.
 */
SBX_EXTERN int sbx_pad_sink_new(sbx_sink **out, sbx_sink *dst, const sbx_pad_options *opts);

/**
 * @brief A source that reads a padded plaintext from src and returns the
 *        data without the filler and the trailer.
 *
 * Data is released as it arrives, except the last 8 bytes and a trailing
 * run of zero bytes, which are held (counted) until the end. At the end of
 * src the trailer is checked: the true length must lie within the data
 * already released plus the held zero run. Otherwise the read fails with
 * SBX_EFORMAT (malformed padding; discard what was read).
 * @return 0 or SBX_ENOMEM. src is not owned.
 */
SBX_EXTERN int sbx_unpad_source_new(sbx_source **out, sbx_source *src);

/**
 * @brief An age encryptor whose plaintext is padded: the header gets the
 *        "sbx-pad v1" stanza and the data goes through a padding sink.
 * @param pad NULL for PADME.
 * @return as sbx_age_encryptor_new(); SBX_EINVAL (with a message saying
 *         why) for a passphrase recipient. free() on the returned sink
 *         frees the inner encryptor too (dst is not owned).
 */
SBX_EXTERN int sbx_pad_encryptor_new(sbx_sink **out, sbx_sink *dst,
                                     sbx_recipient *const *recipients, size_t count,
                                     const sbx_age_encrypt_options *opts,
                                     const sbx_pad_options *pad) SBX_WARN_UNUSED;

/**
 * @brief An age decryptor that removes sbx padding when the file has the
 *        "sbx-pad v1" stanza, and is an ordinary decryptor otherwise.
 * @param padded receives whether the file was padded (may be NULL); the
 *        value is authenticated (the header MAC covers the stanza).
 * @return as sbx_age_decryptor_new(); SBX_EHEADER for a malformed or
 *         unknown-version sbx-pad stanza. Reads may also fail with
 *         SBX_EFORMAT (malformed padding). free() on the returned source
 *         frees the inner decryptor too (src is not owned).
 */
SBX_EXTERN int sbx_pad_decryptor_new(sbx_source **out, sbx_source *src,
                                     sbx_identity *const *identities, size_t count,
                                     const sbx_age_decrypt_options *opts,
                                     bool *padded) SBX_WARN_UNUSED;

/**
 * @brief Open a random-access reader (sbx_age_reader_open()) on a file that
 *        may be padded, and give the size of the data.
 *
 * For a padded file the last chunk is authenticated and the trailer read:
 * *size is the true length, and reads at or past it must be clamped by the
 * caller (sbx_age_reader_pread() returns the padded plaintext). The zero
 * filler is not checked on this path (only the streaming decryptor reads
 * it all).
 * @param size receives the data size (the plaintext size when unpadded).
 * @param padded receives whether the file is padded (may be NULL).
 * @return as sbx_age_reader_open() and sbx_age_reader_size(); SBX_EFORMAT
 *         when the trailer is larger than the padded plaintext.
 */
SBX_EXTERN int sbx_pad_reader_open(sbx_age_reader **out, uint64_t *size, bool *padded, int fd,
                                   sbx_identity *const *identities, size_t count) SBX_WARN_UNUSED;

/* ---- the seed's plaintext padding (pyFileSec) ---- */

/** Length of the pyFileSec trailer. */
#define SBX_PAD_PFS_TRAILER_LEN 32
/** pyFileSec's default target size, minimum target and size limit. */
#define SBX_PAD_PFS_DEFAULT_SIZE 16384
#define SBX_PAD_PFS_MIN_SIZE     128
#define SBX_PAD_PFS_MAX_SIZE     (UINT64_C(1) << 33)

/**
 * @brief Examine the last 32 bytes of a file for pyFileSec padding.
 * @param count receives the number of padding bytes (filler + trailer), or
 *        0 when the trailer is absent or malformed.
 * @param tail the last min(size, 32) bytes of the file.
 * @param size the file's size.
 */
SBX_EXTERN void sbx_pad_pfs_detect(uint64_t *count, const uint8_t *tail, size_t tail_len,
                                   uint64_t size);

/**
 * @brief Pad a file as pyFileSec's pad(size) does, writing the result
 *        atomically to out (out may equal in).
 *
 * In place (out equal to in), a symbolic link is followed and its target
 * replaced; a link at a different out is refused (sbx_sink_atomic_file_new()).
 * Existing padding is removed first (sizes are not cumulative). A target
 * below 128 is raised to 128.
 * @param new_size receives the resulting size (may be NULL).
 * @return 0, SBX_EINVAL (target above 8 GiB), SBX_ETOOBIG (the data plus
 *         the 32-byte trailer does not fit below the target: the length
 *         would not be hidden), SBX_EIO, SBX_ENOTFOUND.
 */
SBX_EXTERN int sbx_pad_pfs_file(const char *in, const char *out, uint64_t target,
                                uint64_t *new_size) SBX_WARN_UNUSED;

/**
 * @brief Remove pyFileSec padding, writing the original bytes atomically to
 *        out (out may equal in; symbolic links as for sbx_pad_pfs_file()).
 * @param strict when true, a file without valid padding is an error; when
 *        false it is copied unchanged (pyFileSec's pad(0)).
 * @param removed receives the number of bytes removed (may be NULL).
 * @return 0, SBX_EFORMAT (no padding or malformed padding: the filler is not
 *         all NUL bytes, the count is out of range), SBX_EIO, SBX_ENOTFOUND.
 */
SBX_EXTERN int sbx_pad_pfs_unpad_file(const char *in, const char *out, bool strict,
                                      uint64_t *removed) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
