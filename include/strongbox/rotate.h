/*
 * strongbox/rotate.h - key rotation of age files.
 *
 * Rotation gives a file new recipients. By default it *rewraps*: the file
 * key is unwrapped with an old identity, wrapped again to each new
 * recipient in a new header (with a new header MAC), and the payload bytes
 * (nonce and chunks) are copied unchanged. The cost does not depend on the
 * file size beyond one sequential copy, and no plaintext is ever produced.
 * Anyone who once had the file key can still read the rotated file: when
 * the file key itself may have leaked (not only an identity), *rekey*:
 * decrypt and re-encrypt the payload under a fresh file key and nonce.
 *
 * The header is read and opened once, and its MAC verified, before
 * anything is written. In rewrap mode the payload is copied without being
 * decrypted, except its last chunk, which must authenticate as the final
 * chunk at the position the size implies (one chunk of work,
 * sbx_age_payload_copy()): a truncated file or one with data appended is
 * refused (SBX_EPAYLOAD). A chunk corrupted in the middle is copied as it
 * is and still fails at decryption; rekey mode verifies every chunk.
 *
 * Stanzas that describe the file rather than a recipient (the "sbx-pad"
 * padding marker, see strongbox/pad.h, and in a rewrap the sealed metadata
 * "sbx-meta", strongbox/fileops.h) are carried over; recipient
 * stanzas of the old header, including ones of unknown types, are dropped.
 * age's rules hold: a passphrase recipient must be alone, and a padded file
 * (or, in a rewrap, one with metadata) cannot be rotated to a passphrase
 * (the marker would not be alone).
 * Armored input gives armored output.
 *
 * Files are replaced atomically (an unnamed temporary file in the same
 * directory, fsync, link and rename, fsync of the directory): a crash at any
 * point leaves the old file or the new one. Only on a filesystem without
 * unnamed files (O_TMPFILE), or in the instant of the rename, can a killed
 * run leave a temporary file ".NAME.tmp-XXXXXXXXXXXX" behind; it is never
 * used again and may be deleted (see docs/rotate.md).
 *
 *     sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
 *     sbx_rotate_file("f.age", NULL, old_ids, n, new_recipients, m, &o, NULL);
 */
#ifndef STRONGBOX_ROTATE_H
#define STRONGBOX_ROTATE_H

#include "strongbox/common.h"
#include "strongbox/stream.h"
#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_rotate_options {
    unsigned version; /**< SBX_ROTATE_OPTIONS_VERSION */
    bool rekey;       /**< re-encrypt the payload under a fresh file key */
    unsigned threads; /**< rekey: worker threads (0 = one per CPU) */
} sbx_rotate_options;

#define SBX_ROTATE_OPTIONS_VERSION 1
#define SBX_ROTATE_OPTIONS_INIT                                                                    \
    {                                                                                              \
        SBX_ROTATE_OPTIONS_VERSION, false, 0                                                       \
    }

/** What a rotation did. */
typedef struct sbx_rotate_report {
    bool armored;            /**< the input (and so the output) is ASCII armored */
    bool padded;             /**< the file carries the sbx-pad marker (kept) */
    bool rekeyed;            /**< the payload was re-encrypted */
    size_t old_stanzas;      /**< stanzas in the old header */
    size_t new_stanzas;      /**< stanzas in the new header */
    uint64_t old_header_len; /**< binary header size before */
    uint64_t new_header_len; /**< binary header size after */
    uint64_t payload_len;    /**< payload bytes after the header (nonce + chunks) written */
} sbx_rotate_report;

/**
 * @brief Rotate an age file read from src into dst (finished on success).
 * @param ids identities that can open the file (one must match).
 * @param recipients the new recipients (at least one).
 * @param opts NULL for defaults (rewrap).
 * @param report may be NULL.
 * @return 0, SBX_EINVAL (no recipients, passphrase not alone, padded file
 *         to a passphrase), SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC, SBX_EARMOR,
 *         SBX_EPAYLOAD (truncated or extended payload; any bad chunk with
 *         rekey), SBX_EIO, SBX_ENOMEM. On failure dst is not finished.
 */
SBX_EXTERN int sbx_rotate(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
                          sbx_recipient *const *recipients, size_t count,
                          const sbx_rotate_options *opts,
                          sbx_rotate_report *report) SBX_WARN_UNUSED;

/**
 * @brief Rotate the file at path, atomically replacing out (NULL or equal
 *        to path: in place). The new file gets the old file's permission
 *        bits. On any failure out is unchanged and no temporary file is left.
 *        In place, a symbolic link at path is followed and its target
 *        replaced; a link at a different out is refused (SBX_EINVAL).
 * @return as sbx_rotate(), plus SBX_ENOTFOUND for a missing input.
 */
SBX_EXTERN int sbx_rotate_file(const char *path, const char *out, sbx_identity *const *ids,
                               size_t nids, sbx_recipient *const *recipients, size_t count,
                               const sbx_rotate_options *opts,
                               sbx_rotate_report *report) SBX_WARN_UNUSED;

/* ---- rewriting a header (for stanza types that rotate themselves) ---- */

/* The header types of strongbox/sys/age.h. */
typedef struct sbx_age_header sbx_age_header;
typedef struct sbx_age_stanza sbx_age_stanza;

/**
 * What to put in a new header for one stanza of the old one: append its
 * replacement, a copy (sbx_age_header_copy_stanza()) or nothing to
 * new_header with the calls of strongbox/sys/age.h. Called for each old
 * stanza in header order, then once more with old == NULL (the end: append
 * more stanzas, or refuse the file). The file key is never handed out.
 * @return 0, or a negative code with its message set: the rewrite stops and
 *         nothing is committed.
 */
typedef int (*sbx_rotate_stanza_fn)(sbx_age_header *new_header, const sbx_age_stanza *old,
                                    void *payload);

/**
 * @brief Rewrite the header of an age file read from src into dst (finished
 *        on success), keeping its file key and its payload.
 *
 * The building block of rotations done by a stanza's own type (the key
 * server's rewrap, in libstrongbox-kms): the header is read and opened once
 * (one of ids unwraps the file key; one header MAC check), fn builds the
 * new header stanza by stanza, the new header is encoded with a new MAC
 * under the same file key, and the payload is copied unchanged with the
 * end check of sbx_rotate() (a truncated or extended payload is refused).
 * Armored input gives armored output. report: old_stanzas, new_stanzas,
 * header sizes, payload_len, armored, padded (the old header has sbx-pad).
 * @return 0, SBX_EINVAL (no identities, fn NULL, a new header with no
 *         stanza or breaking a stanza rule), fn's error, and the errors of
 *         sbx_rotate() (SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC, SBX_EARMOR,
 *         SBX_EPAYLOAD, SBX_EIO, SBX_ENOMEM). On failure dst is not finished.
 */
SBX_EXTERN int sbx_rotate_rewrite(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids,
                                  size_t nids, sbx_rotate_stanza_fn fn, void *payload,
                                  sbx_rotate_report *report) SBX_WARN_UNUSED;

/**
 * @brief sbx_rotate_rewrite() on the file at path, atomically replacing out
 *        (NULL or equal to path: in place), as sbx_rotate_file().
 * @return as sbx_rotate_rewrite(), plus SBX_ENOTFOUND for a missing input.
 */
SBX_EXTERN int sbx_rotate_rewrite_file(const char *path, const char *out, sbx_identity *const *ids,
                                       size_t nids, sbx_rotate_stanza_fn fn, void *payload,
                                       sbx_rotate_report *report) SBX_WARN_UNUSED;

/* ---- key server rewrap (defined in libstrongbox-kms, src/kms/rotate_kms.c) ---- */

/**
 * @brief Rewrap the sbx-kms (key server) stanzas of an age file read from
 *        src to their keys' latest versions, into dst (finished on success).
 *        Part of libstrongbox-kms (src/kms/rotate_kms.c), built on
 *        sbx_rotate_rewrite().
 *
 *        For key rotation on the server (POST /v1/keys/NAME/rotate): each
 *        sbx-kms stanza's ciphertext is sent to POST .../rewrap and replaced
 *        by the answer, so the file opens again after old key versions are
 *        retired (min_decryption_version) or destroyed. The server never
 *        returns the file key for a rewrap, but changing a stanza changes the
 *        header, whose MAC is keyed by the file key: the file key is
 *        therefore unwrapped once (by any of ids, normally through the key
 *        server) and the old MAC verified before anything is written. Every
 *        other stanza (other recipients, sbx-pad, unknown types) is kept
 *        byte for byte; the payload is copied unchanged as in sbx_rotate().
 *        Armored input gives armored output.
 * @param ids identities that can open the file; the first key server
 *        identity among them (sbx_identity_kms_new) does the rewraps, with
 *        its credentials and trust rule.
 * @param report may be NULL; old_stanzas = new_stanzas.
 * @return 0, SBX_EINVAL (no key server identity among ids; a file without
 *         sbx-kms stanzas), SBX_EDENIED (a stanza names a server that is
 *         not allowed, or the server refused), the errors of sbx_rotate().
 *         On failure dst is not finished.
 */
SBX_EXTERN int sbx_rotate_kms_rewrap(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids,
                                     size_t nids, sbx_rotate_report *report) SBX_WARN_UNUSED;

/**
 * @brief sbx_rotate_kms_rewrap() on the file at path, atomically replacing
 *        out (NULL or equal to path: in place), as sbx_rotate_file().
 * @return as sbx_rotate_kms_rewrap(), plus SBX_ENOTFOUND for a missing input.
 */
SBX_EXTERN int sbx_rotate_kms_rewrap_file(const char *path, const char *out,
                                          sbx_identity *const *ids, size_t nids,
                                          sbx_rotate_report *report) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
