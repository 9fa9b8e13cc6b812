/*
 * strongbox/age.h - file encryption in the age v1 format (C2SP age spec).
 *
 * Files written here decrypt with the `age` tool and files written by `age`
 * decrypt here. An age file is a text header that wraps a random 16-byte
 * file key once per recipient (one "stanza" each), authenticated by an HMAC,
 * followed by the payload: the plaintext in 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 (the STREAM construction).
 *
 * Keys:
 *  - sbx_recipient: who a file is encrypted to. An X25519 public key
 *    ("age1..."), a passphrase (scrypt), or an SSH public key
 *    ("ssh-ed25519 AAAA...", "ssh-rsa AAAA...", also PEM "PUBLIC KEY" /
 *    "RSA PUBLIC KEY" blocks in recipients files; PEM RSA keys are wrapped as
 *    ssh-rsa, PEM Ed25519 keys as ssh-ed25519). A passphrase must be the only
 *    recipient of a file.
 *  - sbx_identity: what decrypts a file. An X25519 secret key
 *    ("AGE-SECRET-KEY-1..."), a passphrase, or an SSH/PEM private key file
 *    (OpenSSH "openssh-key-v1" without passphrase; PEM PKCS#1, PKCS#8, and
 *    passphrase-protected PKCS#8 or legacy PEM with sbx_identities_parse_ex()).
 *    Identities live in secure memory (or, for RSA, in OpenSSL's secure
 *    heap inside an EVP_PKEY) and are wiped on free.
 *
 * SSH keys follow age 1.1.1 exactly (files interoperate both ways). The
 * stanzas name the key by a 4-byte hash tag, so unlike X25519 they link a
 * file to its recipient's public key. RSA keys under 2048 bits are refused
 * (SBX_EUNSUPPORTED, the message gives the size), and so are RSA keys that are
 * not valid: an even modulus, a public exponent that is even or 1 (with e = 1
 * the stanza would carry the file key in the clear) (SBX_EFORMAT), or above
 * 2^32-1 (SBX_EUNSUPPORTED); old OpenSSH keys with e = 35 work. Other key
 * types (ECDSA, DSA, security keys) are refused by name.
 *
 * Encrypting (constant memory, any size):
 *
 *     sbx_sink *file, *enc;
 *     sbx_sink_atomic_file_new(&file, "out.age", 0644);
 *     sbx_age_encryptor_new(&enc, file, recipients, n, NULL);
 *     while (...) sbx_sink_write(enc, buf, len);
 *     sbx_sink_finish(enc);          // writes the final chunk, commits out.age
 *     sbx_sink_free(enc); sbx_sink_free(file);
 *
 * Decrypting:
 *
 *     sbx_source *in, *dec;
 *     sbx_source_file_new(&in, "out.age");
 *     if (sbx_age_decryptor_new(&dec, in, identities, n, NULL) < 0) ... // header checked here
 *     while (sbx_source_read(dec, buf, sizeof buf, &got) == 0 && got > 0) ...
 *
 * The decryptor releases plaintext one chunk at a time and only after that
 * chunk's tag verified. A later chunk may still fail (truncation, tampering,
 * trailing data): a reader must treat everything it got as unconfirmed until
 * the read that reports end of data returns 0. Errors are classified:
 * SBX_EARMOR, SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC (header MAC), SBX_EPAYLOAD.
 */
#ifndef STRONGBOX_AGE_H
#define STRONGBOX_AGE_H

#include "strongbox/common.h"
#include "strongbox/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_AGE_FILE_KEY_LEN      16
#define SBX_AGE_CHUNK_SIZE        65536
#define SBX_AGE_SEALED_CHUNK_SIZE (65536 + 16)
/** scrypt log2(N) used for new passphrase files (as `age`: about 1 s, 256 MiB). */
#define SBX_AGE_SCRYPT_DEFAULT_LOG_N 18
/** Highest scrypt log2(N) accepted on decryption by default (as `age`: 4 GiB). */
#define SBX_AGE_SCRYPT_MAX_LOG_N 22
/** Most worker threads an encryptor or decryptor uses (the threads option). */
#define SBX_AGE_MAX_THREADS 64
/** Upper bound on the header size we accept, against memory exhaustion. */
#define SBX_AGE_MAX_HEADER_SIZE (1024 * 1024)

typedef struct sbx_recipient sbx_recipient;
typedef struct sbx_identity sbx_identity;

/* ---- recipients ---- */

/**
 * @brief Parse a recipient string: an X25519 public key "age1...", or an
 *        OpenSSH public key line "ssh-ed25519 AAAA... [comment]" /
 *        "ssh-rsa AAAA... [comment]" (single spaces, as ssh-keygen writes it;
 *        sbx_recipient_to_string() gives the same line back).
 * @return 0, SBX_EFORMAT (not a valid key; the message says why), or
 *         SBX_EUNSUPPORTED (a recognised but unsupported kind: a plugin, an
 *         RSA key under 2048 bits, an ECDSA/DSA/security-key SSH key).
 */
SBX_EXTERN int sbx_recipient_parse(sbx_recipient **out, const char *str) SBX_WARN_UNUSED;

/**
 * @brief A passphrase recipient (scrypt stanza).
 * @param log_n scrypt work factor log2(N), 1..SBX_AGE_SCRYPT_MAX_LOG_N, or 0
 *        for SBX_AGE_SCRYPT_DEFAULT_LOG_N.
 * @return 0, SBX_EINVAL (empty passphrase, bad log_n), SBX_ENOMEM.
 * The passphrase is copied into secure memory.
 */
SBX_EXTERN int sbx_recipient_scrypt_new(sbx_recipient **out, const char *passphrase, size_t len,
                                        int log_n);

/**
 * @brief Parse a recipients file: one recipient per line; empty lines and
 *        lines starting with '#' are ignored; at least one recipient. Lines
 *        may end in LF or CRLF (one CR before the LF is dropped, as age does).
 *        Lines may also be OpenSSH public keys in authorized_keys syntax
 *        (leading options such as from="..." are skipped, blanks may be
 *        runs, the comment is kept), and the text may hold PEM public key
 *        blocks ("PUBLIC KEY" SPKI, "RSA PUBLIC KEY" PKCS#1), each one
 *        recipient.
 * @param list receives an array of *count recipients; free with sbx_recipients_free().
 * @return 0, SBX_EFORMAT (the message names the line), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_recipients_parse(sbx_recipient ***list, size_t *count, const char *text,
                                    size_t len) SBX_WARN_UNUSED;

/** @brief The recipient's string form ("age1..."); SBX_EUNSUPPORTED for a passphrase. */
SBX_EXTERN int sbx_recipient_to_string(const sbx_recipient *r, sbx_buf *out);

/**
 * @brief The stanza type this recipient writes ("X25519", "scrypt",
 *        "ssh-ed25519", "ssh-rsa"). Borrowed, static.
 */
SBX_EXTERN const char *sbx_recipient_type(const sbx_recipient *r);

/** @brief Free a recipient. NULL-safe. */
SBX_EXTERN void sbx_recipient_free(sbx_recipient *r);

/** @brief Free an array from sbx_recipients_parse(). NULL-safe. */
SBX_EXTERN void sbx_recipients_free(sbx_recipient **list, size_t count);

/* ---- identities ---- */

/** @brief Generate a new X25519 identity. @return 0, SBX_ECRYPTO, SBX_ENOMEM. */
SBX_EXTERN int sbx_identity_generate(sbx_identity **out) SBX_WARN_UNUSED;

/**
 * @brief Parse an identity string "AGE-SECRET-KEY-1...".
 * @return 0 or SBX_EFORMAT. The message never contains the key.
 */
SBX_EXTERN int sbx_identity_parse(sbx_identity **out, const char *str) SBX_WARN_UNUSED;

/**
 * @brief Parse an identity file (as written by `age-keygen` / `sbx keygen`):
 *        one key per line, '#' comments and empty lines ignored, at least one key.
 *        Lines may end in LF or CRLF; nothing else is trimmed.
 *        A file that starts (after whitespace) with "-----BEGIN " is instead
 *        one SSH or PEM private key (see sbx_identities_parse_ex()); a
 *        passphrase-protected PEM key, or an identity file encrypted with a
 *        passphrase (an age file), fails here with SBX_ENOKEY.
 *        A public key where a secret key belongs ("age1...", an SSH .pub
 *        line, a PEM public key) fails with a message naming it a recipient.
 * @return 0, SBX_EFORMAT (names the line number, never its content),
 *         SBX_EUNSUPPORTED, SBX_ENOKEY, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_identities_parse(sbx_identity ***list, size_t *count, const char *text,
                                    size_t len) SBX_WARN_UNUSED;

/**
 * @brief A passphrase identity (decrypts scrypt stanzas).
 * @param max_log_n highest work factor accepted, or 0 for SBX_AGE_SCRYPT_MAX_LOG_N.
 *        Files asking for more are refused (SBX_EHEADER) before any work.
 */
SBX_EXTERN int sbx_identity_scrypt_new(sbx_identity **out, const char *passphrase, size_t len,
                                       int max_log_n);

/* sbx_passphrase_cb (passphrase callbacks) is defined in strongbox/common.h. */

/**
 * @brief Parse an identity file that may be a passphrase-protected key.
 *
 * As sbx_identities_parse(), and a file holding one private key is also
 * accepted in these forms (the whole file, whitespace around it allowed):
 *  - "-----BEGIN OPENSSH PRIVATE KEY-----" (ssh-keygen's format) with an
 *    ssh-ed25519 or ssh-rsa key and no passphrase. A protected one fails
 *    with SBX_EUNSUPPORTED and a message giving the command that removes
 *    the passphrase from a copy (OpenSSH's bcrypt KDF is not in OpenSSL).
 *  - PEM "RSA PRIVATE KEY" (PKCS#1), "PRIVATE KEY" (PKCS#8, RSA or Ed25519),
 *    "ENCRYPTED PRIVATE KEY" (PKCS#8 with a passphrase) and legacy
 *    encrypted PEM ("Proc-Type: 4,ENCRYPTED").
 * RSA keys become ssh-rsa identities, Ed25519 keys ssh-ed25519 identities.
 *
 * An identity file encrypted with a passphrase (an age file, binary or
 * armored, as `age -p -o key.txt.age key.txt` makes it and `age -d -i` reads
 * it) is decrypted with the passphrase from cb and its plaintext parsed as
 * above, except that it may not be encrypted again nor hold a protected PEM
 * key. The plaintext lives in a buffer wiped before return. Errors:
 * SBX_EAUTH (wrong passphrase), SBX_EUNSUPPORTED (an age file encrypted to
 * keys, not a passphrase), SBX_EHEADER/SBX_EMAC/SBX_EPAYLOAD (damaged), each
 * message starting "encrypted identity file: ".
 *
 * @param cb called (at most once) only when the key is protected; may be
 *        NULL, in which case a protected key fails with SBX_ENOKEY. The
 *        library wipes the passphrase after use.
 * @return 0, SBX_EFORMAT, SBX_EUNSUPPORTED (key type or size, protected
 *         OpenSSH key), SBX_ENOKEY (protected, no cb), SBX_EAUTH (wrong
 *         passphrase), a negative code returned by cb, SBX_ETOOBIG, SBX_ENOMEM.
 *         Messages never contain key material.
 */
SBX_EXTERN int sbx_identities_parse_ex(sbx_identity ***list, size_t *count, const char *text,
                                       size_t len, sbx_passphrase_cb cb,
                                       void *payload) SBX_WARN_UNUSED;

/**
 * @brief A passphrase identity that asks for the passphrase only when a file
 *        actually has a scrypt stanza (at most once per identity).
 */
SBX_EXTERN int sbx_identity_scrypt_new_cb(sbx_identity **out, sbx_passphrase_cb cb, void *payload,
                                          int max_log_n);

/**
 * @brief The identity's secret string form ("AGE-SECRET-KEY-1..."; for an
 *        SSH/PEM identity, an unencrypted PKCS#8 PEM private key).
 * SECRET: out holds key material; sbx_buf_dispose() wipes it.
 * @return 0, SBX_EUNSUPPORTED for a passphrase identity.
 */
SBX_EXTERN int sbx_identity_to_string(const sbx_identity *id, sbx_buf *out);

/** @brief The recipient that matches an identity ("age-keygen -y"). */
SBX_EXTERN int sbx_identity_to_recipient(sbx_recipient **out, const sbx_identity *id);

/** @brief Wipe and free an identity. NULL-safe. */
SBX_EXTERN void sbx_identity_free(sbx_identity *id);

/** @brief Free an array from sbx_identities_parse(). NULL-safe. */
SBX_EXTERN void sbx_identities_free(sbx_identity **list, size_t count);

/* ---- encryption ---- */

typedef struct sbx_age_encrypt_options {
    unsigned version; /**< SBX_AGE_ENCRYPT_OPTIONS_VERSION */
    bool armor;       /**< write ASCII armor (PEM-style text) */
    /**
     * Worker threads sealing chunks: 0 = one per available CPU, 1 = serial.
     * The output is byte-identical for every value; memory stays bounded
     * (about 1 MiB per thread, at most 32 MiB).
     */
    unsigned threads;
} sbx_age_encrypt_options;

#define SBX_AGE_ENCRYPT_OPTIONS_VERSION 1
#define SBX_AGE_ENCRYPT_OPTIONS_INIT                                                               \
    {                                                                                              \
        SBX_AGE_ENCRYPT_OPTIONS_VERSION, false, 0                                                  \
    }

/**
 * @brief Start an age file: a sink that takes plaintext and writes the age
 *        file to dst.
 *
 * The header is written to dst at once. Plaintext is sealed in 64 KiB
 * chunks; finish() writes the final chunk (and the armor trailer) and
 * finishes dst.
 *
 * @param recipients one or more; a passphrase recipient must be alone.
 * @param opts NULL for defaults.
 * @return 0, SBX_EINVAL (no recipients, passphrase mixed with others),
 *         SBX_ECRYPTO, or an error from dst.
 */
SBX_EXTERN int sbx_age_encryptor_new(sbx_sink **out, sbx_sink *dst,
                                     sbx_recipient *const *recipients, size_t count,
                                     const sbx_age_encrypt_options *opts) SBX_WARN_UNUSED;

/* ---- decryption ---- */

enum sbx_armor_mode {
    SBX_ARMOR_AUTO = 0, /**< detect armor (leading whitespace allowed) */
    SBX_ARMOR_NONE = 1, /**< input is binary */
    SBX_ARMOR_ONLY = 2  /**< input must be armored */
};

typedef struct sbx_age_decrypt_options {
    unsigned version; /**< SBX_AGE_DECRYPT_OPTIONS_VERSION */
    int armor;        /**< enum sbx_armor_mode */
    /** Worker threads opening chunks: 0 = one per available CPU, 1 = serial. */
    unsigned threads;
} sbx_age_decrypt_options;

#define SBX_AGE_DECRYPT_OPTIONS_VERSION 1
#define SBX_AGE_DECRYPT_OPTIONS_INIT                                                               \
    {                                                                                              \
        SBX_AGE_DECRYPT_OPTIONS_VERSION, SBX_ARMOR_AUTO, 0                                         \
    }

/**
 * @brief Open an age file: reads and checks the header from src, unwraps the
 *        file key with the identities, verifies the header MAC, and returns a
 *        source of plaintext.
 *
 * Identities are tried in order against every stanza. A stanza of a type we
 * know that is malformed fails the whole file (SBX_EHEADER), as does a
 * passphrase stanza that is not alone in the header.
 *
 * @return 0, SBX_EARMOR, SBX_EHEADER, SBX_ENOMATCH (no identity matched:
 *         wrong key or passphrase), SBX_EMAC, SBX_EIO, SBX_ENOMEM.
 *         Reads from the returned source fail with SBX_EPAYLOAD (or
 *         SBX_EARMOR) when the payload is truncated, tampered or followed by
 *         trailing data; plaintext from chunks that verified before the
 *         failure has already been returned.
 */
SBX_EXTERN int sbx_age_decryptor_new(sbx_source **out, sbx_source *src,
                                     sbx_identity *const *identities, size_t count,
                                     const sbx_age_decrypt_options *opts) SBX_WARN_UNUSED;

/* ---- random access ---- */

/**
 * A reader for random access into a binary age file on a seekable file
 * descriptor. Only the chunks that cover a requested range are read and
 * decrypted; each verifies before any of its bytes are returned. Not
 * thread-safe: use one reader per thread (they may share the fd, since
 * reads use pread(2) and never move the file offset).
 */
typedef struct sbx_age_reader sbx_age_reader;

/**
 * @brief Open an age file for random access: reads and authenticates the
 *        header exactly as sbx_age_decryptor_new() does.
 * @param fd a regular file opened for reading; not closed by the reader.
 * @return 0, SBX_EINVAL (fd is not a regular file, or armored input: armor
 *         is not seekable), SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC, SBX_EIO.
 */
SBX_EXTERN int sbx_age_reader_open(sbx_age_reader **out, int fd, sbx_identity *const *identities,
                                   size_t count) SBX_WARN_UNUSED;

/**
 * @brief The plaintext size. Before answering, the last chunk is decrypted
 *        and must be a valid final chunk at the position the file size
 *        implies, so a truncated or extended file is detected here.
 * @return 0 or SBX_EPAYLOAD.
 */
SBX_EXTERN int sbx_age_reader_size(sbx_age_reader *r, uint64_t *size) SBX_WARN_UNUSED;

/**
 * @brief Read up to len plaintext bytes at offset (pread-style).
 * @param nread receives the count: less than len only at the end of the
 *        plaintext, 0 at or past it.
 * @return 0, SBX_EPAYLOAD (a chunk in the range failed to verify: nothing is
 *         returned, buf is wiped and *nread is 0), SBX_EIO.
 */
SBX_EXTERN int sbx_age_reader_pread(sbx_age_reader *r, void *buf, size_t len, uint64_t offset,
                                    size_t *nread) SBX_WARN_UNUSED;

/** @brief Wipe and free a reader. NULL-safe. */
SBX_EXTERN void sbx_age_reader_free(sbx_age_reader *r);

/* ---- armor ---- */

/**
 * @brief A sink that writes its input as an armored age file
 *        ("-----BEGIN AGE ENCRYPTED FILE-----", 64-column base64, END line).
 */
SBX_EXTERN int sbx_armor_encoder_new(sbx_sink **out, sbx_sink *dst);

/**
 * @brief A source that strictly decodes an armored file read from src.
 *
 * Accepts LF or CRLF line ends and up to 1 KiB of whitespace before BEGIN and
 * after END; refuses anything else (SBX_EARMOR, the message says what).
 */
SBX_EXTERN int sbx_armor_decoder_new(sbx_source **out, sbx_source *src);

/**
 * @brief Peek at src and decode armor if (after optional whitespace) it
 *        starts with the armor BEGIN line; otherwise pass bytes through.
 * @param armored receives whether armor was detected (may be NULL).
 */
SBX_EXTERN int sbx_armor_detect_new(sbx_source **out, bool *armored,
                                    sbx_source *src) SBX_WARN_UNUSED;

/* ---- one-shot helpers (whole buffers in memory) ---- */

/** @brief Encrypt a buffer; the age file is appended to out. */
SBX_EXTERN int sbx_age_encrypt_buf(sbx_buf *out, const void *plaintext, size_t len,
                                   sbx_recipient *const *recipients, size_t count,
                                   const sbx_age_encrypt_options *opts) SBX_WARN_UNUSED;

/**
 * @brief Decrypt a buffer; plaintext is appended to out.
 * On SBX_EPAYLOAD, out holds the plaintext of the chunks that verified
 * before the failure (what a streaming reader would have seen); callers
 * that want all-or-nothing must discard it.
 */
SBX_EXTERN int sbx_age_decrypt_buf(sbx_buf *out, const void *file, size_t len,
                                   sbx_identity *const *identities, size_t count,
                                   const sbx_age_decrypt_options *opts) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
