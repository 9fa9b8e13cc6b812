/*
 * strongbox/migrate.h - reading the seed projects' encrypted archives, for
 * migration to age only (never written). See spec/seeds.md §1.4, §4.
 *
 * pyFileSec ".enc" archives and PsychoPy opensslwrap bundles are gzip'd tar
 * files holding three members: NAME.aes256 (the data: `openssl enc
 * -aes-256-cbc -a -salt` output, base64 text of "Salted__" + salt + CBC
 * ciphertext, key and IV from EVP_BytesToKey over a random session
 * password), NAME.aes256.pwdrsa (pyFileSec) or NAME.aes256pwd.rsa
 * (opensslwrap) (the password, RSA-encrypted with `openssl rsautl -oaep`),
 * and NAME.meta (clear-text metadata, optional for opensslwrap).
 *
 * The formats are weak (spec/seeds.md §6): CBC without a MAC, metadata
 * without integrity. What can be checked is checked: the SHA-256 of the
 * ciphertext member recorded in the metadata ("hash of cipher_text" for
 * pyFileSec, "HMAC-sha256 of encrypted file" for opensslwrap) must match when
 * present, the RSA padding and the CBC padding must verify. A file that
 * passes is still not authenticated: anyone with the public key could have
 * made it. Re-encrypt it to age (sbx migrate) and check the content.
 *
 * Reading the tar archive itself is the caller's job (the sbx command uses
 * libarchive); sbx_legacy_member_name_check() says which member names to
 * accept. The data member can be any size up to SBX_LEGACY_MAX_DATA and is
 * read twice, in constant memory: a first pass scans it (its format is
 * checked from the first bytes on, its hash and last blocks recorded), then
 * everything that can be checked is checked before anything is decrypted,
 * and a second pass streams it through the decryptor:
 *
 *     sbx_legacy_key *key;  sbx_legacy_scan *scan;  sbx_sink *dec;
 *     sbx_legacy_key_parse(&key, pem, pem_len, ask_passphrase, NULL);
 *     sbx_legacy_scan_new(&scan);
 *     for each piece of NAME.aes256: sbx_legacy_scan_update(scan, buf, n);
 *     sbx_legacy_scan_finish(scan);
 *     sbx_legacy_decryptor_new(&dec, plain_sink, key, scan, &members, NULL, &report);
 *     for each piece of NAME.aes256 again: sbx_sink_write(dec, buf, n);
 *     sbx_sink_finish(dec);     // checks the end, then finishes plain_sink
 *
 * sbx_legacy_decrypt() does the same over member bytes in memory.
 */
#ifndef STRONGBOX_MIGRATE_H
#define STRONGBOX_MIGRATE_H

#include "strongbox/common.h"
#include "strongbox/age.h"
#include "strongbox/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Largest data member accepted, in bytes of its base64 text: 11 GiB holds
 * the largest plaintext the seeds wrote (8 GiB, as 64-column base64). The
 * data is streamed, so memory does not grow with it.
 */
#define SBX_LEGACY_MAX_DATA (UINT64_C(11) << 30)

/** An RSA private key of a seed project (held in OpenSSL's secure heap). */
typedef struct sbx_legacy_key sbx_legacy_key;

/**
 * @brief Load the RSA private key (PEM: PKCS#1, PKCS#8, encrypted or not).
 *
 * Unlike age identities, 1024-bit keys are accepted here, because the seeds
 * made them; sbx_legacy_key_bits() lets the caller warn.
 * @param cb asked for the passphrase of a protected key (may be NULL).
 * @return 0, SBX_EFORMAT, SBX_EUNSUPPORTED (not RSA, under 1024 bits),
 *         SBX_ENOKEY (protected, no cb), SBX_EAUTH (wrong passphrase).
 */
SBX_EXTERN int sbx_legacy_key_parse(sbx_legacy_key **out, const char *pem, size_t len,
                                    sbx_passphrase_cb cb, void *payload) SBX_WARN_UNUSED;

/** @brief The key's modulus size in bits. */
SBX_EXTERN int sbx_legacy_key_bits(const sbx_legacy_key *key);

/** @brief Wipe and free. NULL-safe. */
SBX_EXTERN void sbx_legacy_key_free(sbx_legacy_key *key);

/** The members of one archive (borrowed bytes). */
typedef struct sbx_legacy_members {
    const uint8_t *data; /**< NAME.aes256: base64 text of the openssl enc output */
    size_t data_len;
    const uint8_t *wrapped; /**< the RSA-encrypted session password */
    size_t wrapped_len;
    const uint8_t *meta; /**< clear-text metadata, or NULL */
    size_t meta_len;
} sbx_legacy_members;

enum sbx_legacy_digest {
    SBX_LEGACY_DIGEST_AUTO = 0,   /**< SHA-256 (OpenSSL >= 1.1.0), then MD5 (older); when
                                       both give valid CBC padding (about 1 in 256 archives),
                                       SBX_EFORMAT: the caller must choose */
    SBX_LEGACY_DIGEST_SHA256 = 1, /**< archives made with OpenSSL 1.1.0 or later */
    SBX_LEGACY_DIGEST_MD5 = 2     /**< archives made with OpenSSL 1.0.2 or earlier */
};

typedef struct sbx_legacy_options {
    unsigned version; /**< SBX_LEGACY_OPTIONS_VERSION */
    int digest;       /**< enum sbx_legacy_digest: EVP_BytesToKey's hash */
} sbx_legacy_options;

#define SBX_LEGACY_OPTIONS_VERSION 1
#define SBX_LEGACY_OPTIONS_INIT                                                                    \
    {                                                                                              \
        SBX_LEGACY_OPTIONS_VERSION, SBX_LEGACY_DIGEST_AUTO                                         \
    }

/** What sbx_legacy_decrypt() could check. */
typedef struct sbx_legacy_report {
    bool hash_checked; /**< the metadata recorded a ciphertext SHA-256 and it matched */
    bool oaep;         /**< the password was wrapped with OAEP (else PKCS#1 v1.5) */
    bool md5;          /**< the key was derived with MD5 (an archive from OpenSSL < 1.1.0) */
} sbx_legacy_report;

/**
 * @brief Whether an archive member name is acceptable (the seeds' archives
 *        hold three flat files named after the original file).
 *
 * Accepted: a plain name in UTF-8 (as Python 3's tarfile writes in PAX
 * headers), spaces and non-ASCII letters included, under 256 bytes.
 * Refused: an empty name, '/' or '\\' (paths), "..", a leading '.', bytes
 * that are not UTF-8, control characters (C0, DEL, C1), and the invisible
 * characters that reorder or split displayed text (bidirectional controls
 * U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069; U+2028, U+2029).
 * @return 0, or SBX_EFORMAT with a message saying what is wrong (the name
 *         itself is not repeated in it).
 */
SBX_EXTERN int sbx_legacy_member_name_check(const char *name) SBX_WARN_UNUSED;

/** A first reading of the data member (see the top of this file). */
typedef struct sbx_legacy_scan sbx_legacy_scan;

/** @brief Start a scan. @return 0 or SBX_ENOMEM. */
SBX_EXTERN int sbx_legacy_scan_new(sbx_legacy_scan **out) SBX_WARN_UNUSED;

/**
 * @brief Feed the next bytes of the data member (NAME.aes256).
 *
 * The format is checked as bytes arrive, so that a member that is not
 * `openssl enc -a -salt` output fails on its first bytes (not base64, or
 * not starting with "Salted__"), and one larger than SBX_LEGACY_MAX_DATA
 * fails as soon as it gets there. Memory use does not depend on the size.
 * @return 0, SBX_EFORMAT, SBX_ETOOBIG, SBX_ENOMEM; after an error only
 *         sbx_legacy_scan_free() is valid.
 */
SBX_EXTERN int sbx_legacy_scan_update(sbx_legacy_scan *scan, const uint8_t *buf,
                                      size_t len) SBX_WARN_UNUSED;

/**
 * @brief End of the data member: the last base64 and the length are checked
 *        (a whole number of cipher blocks, at least one).
 * @return 0, SBX_EFORMAT, SBX_EINVAL (called twice or after an error).
 */
SBX_EXTERN int sbx_legacy_scan_finish(sbx_legacy_scan *scan) SBX_WARN_UNUSED;

/** @brief Free a scan. NULL-safe. */
SBX_EXTERN void sbx_legacy_scan_free(sbx_legacy_scan *scan);

/**
 * @brief The second reading: a sink that decrypts the data member written
 *        into it and writes the plaintext to plain.
 *
 * Before it returns, and before any data is decrypted: the SHA-256 from
 * the scan is compared with the metadata's (when recorded), the password is
 * unwrapped (RSA-OAEP with SHA-1 as `rsautl -oaep` did, else PKCS#1 v1.5),
 * and the last cipher block must have valid CBC padding under the chosen key
 * derivation (with SBX_LEGACY_DIGEST_AUTO: SHA-256 or MD5, whichever opens
 * it; SBX_EFORMAT when both do). Key and IV: EVP_BytesToKey(password, salt,
 * 1 iteration).
 *
 * The sink then takes the data member's bytes again; finish() checks that
 * they were the scanned ones (same SHA-256 and length: the archive did not
 * change in between) and the CBC padding, then finishes plain. CBC has no
 * MAC, so plaintext reaches plain before those last checks: on any error
 * plain is never finished, so give a sink that discards unfinished output
 * (sbx_sink_atomic_file_new(), an age encryptor over one, a buffer you drop).
 *
 * @param plain borrowed; must outlive the sink (free the sink first).
 * @param scan a finished scan; it may be freed once this returns.
 * @param m the password and metadata members (data and data_len are not
 *        read: the scan stands for the data).
 * @param report may be NULL; filled when this returns 0.
 * @return 0, SBX_EAUTH (hash mismatch: tampered or corrupted archive; the key
 *         does not open the password: wrong key; bad CBC padding),
 *         SBX_EFORMAT (both digests open the data), SBX_ETOOBIG, SBX_EINVAL
 *         (unfinished scan, unknown options version), SBX_ENOMEM. The sink's
 *         write() and finish() return SBX_EFORMAT, SBX_EAUTH or plain's codes.
 */
SBX_EXTERN int sbx_legacy_decryptor_new(sbx_sink **out, sbx_sink *plain, const sbx_legacy_key *key,
                                        const sbx_legacy_scan *scan, const sbx_legacy_members *m,
                                        const sbx_legacy_options *opts,
                                        sbx_legacy_report *report) SBX_WARN_UNUSED;

/**
 * @brief Decrypt one archive's data held in memory; the plaintext is
 *        appended to out (a scan and a decryptor over the bytes).
 *
 * The checks and their order are sbx_legacy_decryptor_new()'s.
 *
 * @param report may be NULL.
 * @return 0, SBX_EAUTH (hash mismatch: tampered or corrupted archive; or the
 *         key does not open the password: wrong key; or bad CBC padding),
 *         SBX_EFORMAT (not the openssl enc format; or, with SBX_LEGACY_DIGEST_AUTO,
 *         both digests give valid padding), SBX_ETOOBIG, SBX_ENOMEM.
 *         On failure out is left as it was (nothing unverified is released).
 */
SBX_EXTERN int sbx_legacy_decrypt(sbx_buf *out, const sbx_legacy_key *key,
                                  const sbx_legacy_members *members, const sbx_legacy_options *opts,
                                  sbx_legacy_report *report) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
