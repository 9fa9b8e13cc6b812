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
 * libarchive with strict member names); this API takes the member bytes.
 *
 *     sbx_legacy_key *key;
 *     sbx_legacy_key_parse(&key, pem, pem_len, ask_passphrase, NULL);
 *     sbx_legacy_decrypt(&plain, key, &members, NULL);
 *     sbx_legacy_key_free(key);
 */
#ifndef STRONGBOX_MIGRATE_H
#define STRONGBOX_MIGRATE_H

#include "strongbox/common.h"
#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest data member accepted (the seeds' own limit was 8 GiB; we decrypt in memory). */
#define SBX_LEGACY_MAX_DATA (1024u * 1024 * 1024)

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
 * @brief Decrypt one archive's data; the plaintext is appended to out.
 *
 * Order: the ciphertext hash from the metadata (when recorded) is compared
 * before anything is decrypted; then the password is unwrapped (RSA-OAEP
 * with SHA-1 as `rsautl -oaep` did, else PKCS#1 v1.5); then AES-256-CBC with
 * key and IV from EVP_BytesToKey(password, salt, 1 iteration).
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
