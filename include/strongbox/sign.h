/*
 * strongbox/sign.h - detached signatures: minisign (Ed25519) and PEM keys
 * (RSA, ECDSA P-256, Ed25519) compatible with `openssl dgst`/`pkeyutl`.
 *
 * minisign
 * --------
 * Files signed here verify with `minisign -V` and files signed by
 * `minisign -S` verify here. A key pair has a random 8-byte key id, shown
 * as the little-endian integer in hex (minisign writes it unpadded in the
 * public key file and zero-padded to 16 digits in messages; so do we).
 *
 *   public key file   untrusted comment: minisign public key 1A2B3C4D5E6F7081
 *                     base64("Ed" || keyid[8] || public key[32])
 *   secret key file   untrusted comment: minisign encrypted secret key
 *                     base64("Ed" || kdf "Sc"|"\0\0" || "B2" || salt[32] ||
 *                            opslimit_le[8] || memlimit_le[8] ||
 *                            (keyid[8] || seed[32] || pk[32] || checksum[32]) XOR scrypt)
 *   signature file    untrusted comment: <anything>
 *                     base64("ED" || keyid[8] || Ed25519(BLAKE2b-512(file)))
 *                     trusted comment: <comment>
 *                     base64(Ed25519(signature[64] || comment))
 *
 * The trusted comment is signed (the "global signature"), the untrusted one
 * is not. Signing always produces prehashed ("ED") signatures, so files of
 * any size stream in constant memory; verification also accepts minisign's
 * legacy "Ed" signatures (the whole file signed) up to
 * SBX_SIGN_MAX_IN_MEMORY bytes.
 *
 * A passphrase-protected secret key is XORed with scrypt(passphrase, salt)
 * under minisign's libsodium limits (opslimit 2^25, memlimit 2^30: N = 2^20,
 * r = 8, p = 1, so 1 GiB and a few seconds). The checksum is BLAKE2b-256
 * over "Ed" || keyid || secret key (from libb2, linked into libstrongbox:
 * OpenSSL before 3.2 has no BLAKE2b-256), so protected keys written here
 * open with `minisign -S` and minisign's open here. A decrypted key is also
 * checked by deriving the public key from the seed and comparing it with
 * the stored one. Keys without a passphrase (kdf "\0\0", as `minisign -G
 * -W`) carry no checksum. Protected keys written by sbx releases that had
 * no BLAKE2b-256 carry a zero checksum: sbx still reads them (the public
 * key check detects a wrong passphrase), minisign refuses them.
 *
 *     sbx_minisign_seckey *sk;  sbx_minisign_pubkey *pk;
 *     sbx_minisign_seckey_parse(&sk, text, len, ask_pass, NULL);
 *     sbx_minisign_sign(&sig, sk, file_source, NULL);        // sig = .minisig text
 *     sbx_minisign_pubkey_parse(&pk, pub_text, pub_len);
 *     if (sbx_minisign_verify(pk, file_source, sig.ptr, sig.len, &comment) == 0) ...
 *
 * PEM keys
 * --------
 * RSA (at least 2048 bits; PKCS#1 v1.5 padding), ECDSA on P-256 (DER
 * signatures) and Ed25519, from PEM files ("PRIVATE KEY", "ENCRYPTED
 * PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"; public: "PUBLIC KEY",
 * "RSA PUBLIC KEY"). Signatures are raw bytes, the same as
 *
 *     openssl dgst -sha256 -sign key.pem -out file.sig file        (RSA, ECDSA)
 *     openssl pkeyutl -sign -rawin -inkey key.pem -in file -out file.sig  (Ed25519)
 *
 * The digest is always SHA-256, named explicitly, never a library default
 * (pyFileSec's signatures silently changed digest with the OpenSSL version).
 * Ed25519 signs the message itself (pure Ed25519, RFC 8032), which needs the
 * whole message at once: the source forms buffer up to
 * SBX_SIGN_MAX_IN_MEMORY bytes; the _mem forms take a mapped file.
 *
 * Verification functions return 0 only when the signature is valid; every
 * other result (SBX_EAUTH for a bad signature) must be treated as invalid.
 */
#ifndef STRONGBOX_SIGN_H
#define STRONGBOX_SIGN_H

#include "strongbox/common.h"
#include "strongbox/stream.h"
#include "strongbox/age.h" /* sbx_passphrase_cb */

#ifdef __cplusplus
extern "C" {
#endif

/** Largest message held in memory (legacy minisign "Ed", PEM Ed25519 from a source). */
#define SBX_SIGN_MAX_IN_MEMORY ((size_t)1 << 30)
/** Largest key or signature file accepted by the parsers. */
#define SBX_SIGN_MAX_TEXT (64 * 1024)
/** Longest trusted comment (minisign's 8192-byte line with prefix, newline and NUL). */
#define SBX_MINISIGN_MAX_TRUSTED_COMMENT (8192 - 19)
/** Longest untrusted comment (minisign's 1024-byte line with prefix, newline and NUL). */
#define SBX_MINISIGN_MAX_COMMENT (1024 - 21)
/** minisign's default scrypt limits (libsodium "sensitive"). */
#define SBX_MINISIGN_OPSLIMIT_DEFAULT 33554432ULL
#define SBX_MINISIGN_MEMLIMIT_DEFAULT 1073741824ULL
/** Highest scrypt memory accepted when reading a protected key (2 GiB). */
#define SBX_MINISIGN_MEMLIMIT_MAX 2147483648ULL

typedef struct sbx_minisign_pubkey sbx_minisign_pubkey;
typedef struct sbx_minisign_seckey sbx_minisign_seckey;

/* ---- minisign keys ---- */

/**
 * @brief Parse a minisign public key: a whole key file (comment line, then
 *        the base64 line) or the bare base64 string (as `minisign -P`).
 * @param out receives the key (NULL on failure); free with sbx_minisign_pubkey_free().
 * @return 0, SBX_EFORMAT (bad base64, wrong length, no key line),
 *         SBX_EUNSUPPORTED (an algorithm other than "Ed"), SBX_ETOOBIG.
 */
SBX_EXTERN int sbx_minisign_pubkey_parse(sbx_minisign_pubkey **out, const char *text,
                                         size_t len) SBX_WARN_UNUSED;

/** @brief The key id as an integer (print it with "%016" PRIX64, as minisign's messages). */
SBX_EXTERN uint64_t sbx_minisign_pubkey_keyid(const sbx_minisign_pubkey *pk);

/**
 * @brief The key as a base64 string (56 characters, for `minisign -P`).
 * @return a borrowed NUL-terminated string, valid until the key is freed.
 */
SBX_EXTERN const char *sbx_minisign_pubkey_base64(const sbx_minisign_pubkey *pk);

/**
 * @brief Append a public key file ("untrusted comment: minisign public key
 *        <ID>\n<base64>\n") to out.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_minisign_pubkey_to_file(const sbx_minisign_pubkey *pk, sbx_buf *out);

/** @brief Free a public key. NULL-safe. */
SBX_EXTERN void sbx_minisign_pubkey_free(sbx_minisign_pubkey *pk);

/**
 * @brief Generate a new key pair (Ed25519 through OpenSSL, random key id).
 * @param out receives the secret key, held in secure memory.
 * @return 0, SBX_ECRYPTO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_minisign_seckey_generate(sbx_minisign_seckey **out);

/**
 * @brief Parse a minisign secret key file, asking cb for the passphrase when
 *        the key is protected (kdf "Sc"; cb is not called otherwise).
 *
 * The decrypted key is checked: the public key derived from the seed must
 * equal the stored one, and the BLAKE2b-256 checksum of a protected key
 * must match (unless it is zero: see the top of this file).
 *
 * @param cb may be NULL, then a protected key fails with SBX_ENOKEY.
 * @return 0, SBX_EFORMAT (malformed file), SBX_EUNSUPPORTED (unknown
 *         signature, kdf or checksum algorithm), SBX_EAUTH (wrong passphrase
 *         or corrupted key), SBX_ENOKEY, SBX_ETOOBIG (scrypt limits above
 *         SBX_MINISIGN_MEMLIMIT_MAX), a code returned by cb, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_minisign_seckey_parse(sbx_minisign_seckey **out, const char *text, size_t len,
                                         sbx_passphrase_cb cb, void *payload) SBX_WARN_UNUSED;

/**
 * @brief Encode a secret key file and append it to out (wipe it with
 *        sbx_buf_dispose(): without a passphrase it holds the key in clear).
 * @param pass passphrase bytes, or NULL for an unprotected key (kdf "\0\0",
 *        as `minisign -G -W`).
 * @param opslimit, memlimit libsodium scrypt limits; 0 for minisign's
 *        defaults (SBX_MINISIGN_OPSLIMIT_DEFAULT, SBX_MINISIGN_MEMLIMIT_DEFAULT).
 * @return 0, SBX_EINVAL (empty passphrase, limits out of range), SBX_ENOMEM, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_minisign_seckey_to_file(const sbx_minisign_seckey *sk, sbx_buf *out,
                                           const uint8_t *pass, size_t pass_len, uint64_t opslimit,
                                           uint64_t memlimit);

/**
 * @brief The public key of a secret key.
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_minisign_seckey_public(sbx_minisign_pubkey **out, const sbx_minisign_seckey *sk);

/** @brief The key id of a secret key (as sbx_minisign_pubkey_keyid()). */
SBX_EXTERN uint64_t sbx_minisign_seckey_keyid(const sbx_minisign_seckey *sk);

/** @brief Wipe and free a secret key. NULL-safe. */
SBX_EXTERN void sbx_minisign_seckey_free(sbx_minisign_seckey *sk);

/**
 * @brief Whether protected secret keys get minisign's BLAKE2b-256 checksum.
 *        Always true since libstrongbox carries libb2 (it depended on
 *        OpenSSL >= 3.2 before); kept for callers that ask.
 */
SBX_EXTERN bool sbx_minisign_checksum_supported(void);

/* ---- minisign signatures ---- */

typedef struct sbx_minisign_sign_options {
    int version;                   /**< SBX_MINISIGN_SIGN_OPTIONS_VERSION */
    const char *trusted_comment;   /**< signed; NULL: "timestamp:<now>[\tfile:<name>]\thashed" */
    const char *untrusted_comment; /**< NULL: "signature from minisign secret key" */
    const char *file_name;         /**< base name for the default trusted comment, or NULL */
} sbx_minisign_sign_options;

#define SBX_MINISIGN_SIGN_OPTIONS_VERSION 1
#define SBX_MINISIGN_SIGN_OPTIONS_INIT                                                             \
    {                                                                                              \
        SBX_MINISIGN_SIGN_OPTIONS_VERSION, NULL, NULL, NULL                                        \
    }

/**
 * @brief Sign everything msg produces (BLAKE2b-512 prehash, constant
 *        memory) and append the four-line .minisig text to sig_out.
 * @param opts may be NULL for the defaults. Comments must be one line
 *        (no CR, LF) and within SBX_MINISIGN_MAX_TRUSTED_COMMENT /
 *        SBX_MINISIGN_MAX_COMMENT bytes.
 * @return 0, SBX_EINVAL (bad comment), a read error of msg, SBX_ECRYPTO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_minisign_sign(sbx_buf *sig_out, const sbx_minisign_seckey *sk, sbx_source *msg,
                                 const sbx_minisign_sign_options *opts);

/**
 * @brief Verify a .minisig signature of everything msg produces.
 *
 * Checks, in order: the file's layout, the key id (it must be pk's), the
 * signature of the file, the signature of the trusted comment.
 *
 * @param trusted_comment receives the trusted comment (NUL-terminated) only
 *        when everything verified; may be NULL.
 * @return 0 when valid; SBX_EFORMAT (malformed signature file), SBX_ENOKEY
 *         (signed by another key id; the message names both ids), SBX_EAUTH
 *         (the file or the trusted comment does not match the signature),
 *         SBX_EUNSUPPORTED (unknown algorithm), SBX_ETOOBIG (a legacy
 *         signature of a message over SBX_SIGN_MAX_IN_MEMORY), read errors.
 */
SBX_EXTERN int sbx_minisign_verify(const sbx_minisign_pubkey *pk, sbx_source *msg,
                                   const char *sig_text, size_t sig_len,
                                   sbx_buf *trusted_comment) SBX_WARN_UNUSED;

/**
 * @brief Read a .minisig file's key id without verifying anything (to pick
 *        a key, or to say which key signed).
 * @return 0, SBX_EFORMAT, SBX_EUNSUPPORTED.
 */
SBX_EXTERN int sbx_minisign_signature_keyid(uint64_t *keyid, const char *sig_text,
                                            size_t sig_len) SBX_WARN_UNUSED;

/* ---- PEM keys (openssl dgst / pkeyutl compatible) ---- */

typedef struct sbx_pem_key sbx_pem_key;

/**
 * @brief Parse a PEM private key (one block; passphrase from cb when the key
 *        is encrypted).
 * @return 0, SBX_EFORMAT, SBX_EUNSUPPORTED (another key type, RSA under
 *         2048 bits, an EC curve other than P-256), SBX_ENOKEY (protected,
 *         no cb), SBX_EAUTH (wrong passphrase), a code from cb, SBX_ETOOBIG.
 */
SBX_EXTERN int sbx_pem_key_parse_private(sbx_pem_key **out, const char *text, size_t len,
                                         sbx_passphrase_cb cb, void *payload) SBX_WARN_UNUSED;

/**
 * @brief Parse a PEM public key ("PUBLIC KEY" or "RSA PUBLIC KEY").
 * @return 0, SBX_EFORMAT, SBX_EUNSUPPORTED, SBX_ETOOBIG.
 */
SBX_EXTERN int sbx_pem_key_parse_public(sbx_pem_key **out, const char *text,
                                        size_t len) SBX_WARN_UNUSED;

/** @brief True when the text looks like PEM ("-----BEGIN " after optional whitespace). */
SBX_EXTERN bool sbx_pem_text_is_pem(const char *text, size_t len);

/**
 * @brief The key's algorithm: "RSA-<bits>", "ECDSA-P256" or "Ed25519".
 * @return a borrowed string, valid until the key is freed.
 */
SBX_EXTERN const char *sbx_pem_key_type(const sbx_pem_key *key);

/** @brief True when the key holds a private key (can sign). */
SBX_EXTERN bool sbx_pem_key_is_private(const sbx_pem_key *key);

/** @brief Free a key. NULL-safe. */
SBX_EXTERN void sbx_pem_key_free(sbx_pem_key *key);

/**
 * @brief Sign everything msg produces; append the raw signature to sig_out.
 *        RSA/ECDSA stream over SHA-256; Ed25519 buffers the message (limit
 *        SBX_SIGN_MAX_IN_MEMORY).
 * @return 0, SBX_EINVAL (a public key), SBX_ETOOBIG, read errors, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_pem_sign(sbx_buf *sig_out, const sbx_pem_key *key, sbx_source *msg);

/** @brief sbx_pem_sign() over a message in memory (e.g. a mapped file); no size limit. */
SBX_EXTERN int sbx_pem_sign_mem(sbx_buf *sig_out, const sbx_pem_key *key, const uint8_t *msg,
                                size_t len);

/**
 * @brief Verify a raw signature of everything msg produces.
 * @param key a public or private key.
 * @return 0 when valid; SBX_EAUTH when not (wrong key, changed file, bad
 *         signature encoding); SBX_ETOOBIG (Ed25519 over the memory limit),
 *         read errors, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_pem_verify(const sbx_pem_key *key, sbx_source *msg, const uint8_t *sig,
                              size_t sig_len) SBX_WARN_UNUSED;

/** @brief sbx_pem_verify() over a message in memory. */
SBX_EXTERN int sbx_pem_verify_mem(const sbx_pem_key *key, const uint8_t *msg, size_t len,
                                  const uint8_t *sig, size_t sig_len) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
