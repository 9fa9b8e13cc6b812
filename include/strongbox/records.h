/*
 * strongbox/records.h - encrypted records: small values (database cells)
 * sealed with AES-256-GCM under a local key file or a key server data key,
 * bound to a caller-chosen context. The SQLite extension sbx_sqlite.so
 * (sbx_encrypt / sbx_decrypt) is a thin layer over these functions.
 *
 *     sbx_buf rec = SBX_BUF_INIT, plain = SBX_BUF_INIT;
 *     int type;
 *     const char *ctx = "users.ssn.42";
 *     if (sbx_record_encrypt("file:/etc/app/records.key", SBX_RECORD_TEXT, "123-45-6789", 11,
 *                            ctx, strlen(ctx), &rec) < 0) ...
 *     ... store rec.ptr / rec.len ...
 *     if (sbx_record_decrypt(&type, &plain, rec.ptr, rec.len, ctx, strlen(ctx)) < 0) ...
 *     sbx_buf_dispose(&plain);                // wipes the plaintext
 *
 * Key references (keyref)
 *   "file:PATH"                 a 32-byte key file (raw, or one line of base64),
 *                               mode 0600 or stricter (`sbx keygen --symmetric`).
 *                               It is read once per process into locked memory
 *                               and kept for the life of the process.
 *   "https://host:port/NAME"    key NAME on a key server (`sbx kms serve`). One
 *                               client and one data-key cache per server, made
 *                               on first use with the credentials of
 *                               sbx_kms_client_new_from_env() (SBX_KMS_TOKEN or
 *                               SBX_KMS_TOKEN_FILE, SBX_KMS_CACERT,
 *                               SBX_KMS_FINGERPRINT, ...). Data keys are shared
 *                               between records through the cache (encryption
 *                               context {"sbx": "record"}); SBX_KMS_CACHE_MAX_AGE
 *                               (seconds) and SBX_KMS_CACHE_MAX_USES bound how
 *                               long and how often one data key is used.
 *                               Served by libstrongbox-kms (link with
 *                               -lstrongbox-kms, pkg-config strongbox-kms),
 *                               which registers itself when loaded; without
 *                               it these keyrefs fail with SBX_EUNSUPPORTED.
 *   "SCHEME://..."              any other key source a program or library
 *                               registered for that prefix
 *                               (strongbox/sys/records.h).
 *
 * Context
 *   Any bytes (for a table cell, "table.column." || row id). They are bound as
 *   associated data: a record decrypts only with the context it was made
 *   with, so a record copied to another row, column or table fails (SBX_EAUTH).
 *
 * Trust
 *   A record names its key, and decryption follows that name: an attacker who
 *   can write records could name a server of theirs. The token is therefore
 *   sent only to a server that this process already encrypted to, or that is
 *   listed in SBX_KMS_URL (comma-separated base or key URLs), or, when
 *   SBX_KMS_URL is unset, to any server when SBX_KMS_CACERT or
 *   SBX_KMS_FINGERPRINT pins the trust. Otherwise decryption fails with
 *   SBX_EDENIED and a message saying how to allow the server.
 *
 * The binary format is documented in docs/records.md. Every function is
 * thread-safe.
 */
#ifndef STRONGBOX_RECORDS_H
#define STRONGBOX_RECORDS_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Value types, equal to SQLite's fundamental datatype codes. */
#define SBX_RECORD_INTEGER 1 /**< 8 bytes: a signed 64-bit integer, big-endian */
#define SBX_RECORD_REAL    2 /**< 8 bytes: an IEEE 754 double, big-endian */
#define SBX_RECORD_TEXT    3 /**< any bytes (UTF-8 text, no terminator) */
#define SBX_RECORD_BLOB    4 /**< any bytes */

/** Length of a record key file's key. */
#define SBX_RECORD_KEY_LEN 32
/** Largest value that can be encrypted (bytes). */
#define SBX_RECORD_MAX_VALUE ((size_t)1 << 30)
/** Largest keyref, and largest context (bytes). */
#define SBX_RECORD_MAX_KEYREF  1024
#define SBX_RECORD_MAX_CONTEXT 65535

/**
 * @brief Encrypt one value into a record.
 * @param keyref "file:PATH", "https://host:port/NAME" or the prefix of a
 *        registered key source and more (see above).
 * @param type SBX_RECORD_INTEGER, _REAL (value is 8 bytes big-endian), _TEXT or _BLOB.
 * @param value len bytes (may be NULL when len is 0).
 * @param context ctx_len bytes bound as associated data (may be NULL when 0).
 * @param out the record is appended (binary; starts with "SBXR").
 * @return 0; SBX_EINVAL (bad keyref, type or length); SBX_ETOOBIG; SBX_EIO,
 *         SBX_EFORMAT (key file unreadable or malformed); SBX_EDENIED (key
 *         file readable by others, or refused by the server); the key
 *         server's errors (strongbox/kms.h), or another key source's;
 *         SBX_EUNSUPPORTED (an https:// keyref without libstrongbox-kms);
 *         SBX_ENOMEM.
 */
SBX_EXTERN int sbx_record_encrypt(const char *keyref, int type, const void *value, size_t len,
                                  const void *context, size_t ctx_len,
                                  sbx_buf *out) SBX_WARN_UNUSED;

/**
 * @brief Decrypt a record made by sbx_record_encrypt() with the same context.
 * @param type_out receives the value's SBX_RECORD_* type (0 on error).
 * @param out the value is appended only after the tag verifies. SECRET: release
 *        it with sbx_buf_dispose(), which wipes.
 * @return 0; SBX_EFORMAT (not a record, truncated, unknown version);
 *         SBX_EAUTH (wrong context, tampered, copied elsewhere); SBX_ENOKEY
 *         (the key file holds a different key than the record was made with);
 *         SBX_EDENIED (server not trusted, see Trust); SBX_EUNSUPPORTED
 *         (the record's keyref has a scheme no registered key source
 *         serves, e.g. https:// without libstrongbox-kms); key file, key
 *         server and key source errors as for encryption.
 */
SBX_EXTERN int sbx_record_decrypt(int *type_out, sbx_buf *out, const void *record, size_t len,
                                  const void *context, size_t ctx_len) SBX_WARN_UNUSED;

/**
 * @brief Whether data looks like a record (magic and a known version). A
 *        cheap test on the prefix: it does not check the rest.
 */
SBX_EXTERN bool sbx_record_is_encrypted(const void *data, size_t len);

/**
 * @brief The keyref stored in a record (no decryption).
 * @param out the keyref is appended, NUL-terminated.
 * @return 0, SBX_EFORMAT, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_record_keyref(sbx_buf *out, const void *record, size_t len) SBX_WARN_UNUSED;

/**
 * @brief The key holder: the 32-byte key of a key file, in locked memory,
 *        loaded once per file (by its canonical path) for the life of the
 *        process. Later calls for the same file, under any name, return the
 *        same key without reading the file again.
 *
 *        The file must be a regular file that is neither readable nor
 *        writable by group or others (as ssh requires of private keys), and
 *        hold exactly 32 bytes, or one line of standard base64 of 32 bytes.
 * @param key_out receives a borrowed pointer to 32 bytes of secure memory,
 *        valid until sbx_record_cleanup(). Never copy it elsewhere.
 * @return 0; SBX_EIO (cannot open or read); SBX_EDENIED (mode too open: the
 *         message says "chmod 600 PATH"); SBX_EFORMAT (not a key file); SBX_ENOMEM.
 */
SBX_EXTERN int sbx_record_key_hold(const uint8_t **key_out, const char *path) SBX_WARN_UNUSED;

/**
 * @brief A new random key file's contents: one line of base64 of 32 bytes
 *        and a newline (45 bytes), appended to out. SECRET: write it to a
 *        file created 0600 and dispose of out.
 * @return 0, SBX_ECRYPTO (no randomness), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_record_key_generate(sbx_buf *out) SBX_WARN_UNUSED;

/**
 * @brief Free every held key (wiped), and what every registered key source
 *        holds (its cleanup(): the key server's clients and caches). For
 *        tests and leak checkers at exit: no call may be in flight, and
 *        pointers from sbx_record_key_hold() become invalid. Sources stay
 *        registered, and later calls work again.
 */
SBX_EXTERN void sbx_record_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif
