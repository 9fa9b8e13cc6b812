/*
 * strongbox/sys/records.h - the key source interface of encrypted records,
 * for code that adds a kind of record key: a key server, a cloud KMS, an
 * HSM. The everyday API is strongbox/records.h; this header is for
 * extenders (the libgit2 "sys" pattern).
 *
 * Concepts (docs/records.md, "Key sources"):
 *  - A keyref names the key of a record. "file:PATH" is the key file built
 *    into libstrongbox. Every other keyref starts with a URL scheme and
 *    "://", and the key source registered for that prefix serves it:
 *    "https://" is the key server source of libstrongbox-kms, which
 *    registers itself when that library is loaded.
 *  - A source's records hold a data key wrapped by the source: encryption
 *    asks it for a fresh 256-bit data key and the wrapped form of that key
 *    as text (datakey()); the record stores the text (record kind 2 of
 *    docs/records.md, "Format"), and decryption hands it back to be
 *    unwrapped (unwrap()). The record itself is sealed by libstrongbox
 *    with AES-256-GCM under the data key, bound to the keyref, the wrapped
 *    key and the caller's context, so a source never sees a value and
 *    never needs to authenticate anything but its own wrapping.
 *  - A source may share one data key between many records (a cache); the
 *    `bytes` argument of datakey() says how much each record adds, so that
 *    a cache can bound the use of one key. Nonces are random (96 bits):
 *    keep a data key under 2^32 records.
 *
 * Defining a source: a static struct, registered once, for instance from
 * the constructor of the library that holds it:
 *
 *     static int my_datakey(uint8_t key_out[32], sbx_buf *wrapped_out,
 *                           const char *keyref, uint64_t bytes, void *payload);
 *     static int my_unwrap(uint8_t key_out[32], const char *keyref,
 *                          const char *wrapped, void *payload);
 *     static const sbx_record_key_source my_source = {
 *         SBX_RECORD_KEY_SOURCE_VERSION, "vault://", my_datakey, my_unwrap, NULL, NULL};
 *
 *     if (sbx_record_key_source_register(&my_source) < 0) ...
 *     sbx_record_encrypt("vault://team/records", ...);   // now served by my_source
 *
 * Trust: decryption calls unwrap() with the keyref and wrapped key of the
 * record being decrypted, and a record may come from an attacker (anyone
 * who can write a database cell). A source that sends credentials
 * somewhere must decide from keyref whether that place is trusted before
 * contacting it (the key server source's rule is in strongbox/records.h,
 * "Trust"), and must treat wrapped as untrusted input.
 *
 * Threads: registration is thread-safe, and may happen at any time (from a
 * library constructor or from any thread); a registered source is never
 * removed. datakey() and unwrap() are called from any thread, concurrently.
 */
#ifndef STRONGBOX_SYS_RECORDS_H
#define STRONGBOX_SYS_RECORDS_H

#include "strongbox/records.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of sbx_record_key_source described here. */
#define SBX_RECORD_KEY_SOURCE_VERSION 1

/** Most key sources one process can register. */
#define SBX_RECORD_MAX_KEY_SOURCES 16

/** Longest prefix of a key source (bytes, "://" included). */
#define SBX_RECORD_MAX_PREFIX 32

/** Largest wrapped data key a source may return (bytes of text). */
#define SBX_RECORD_MAX_WRAPPED 1024

/**
 * A source of record keys for the keyrefs that start with one prefix.
 * Registered by address: it must stay valid and unchanged for the life of
 * the process (make it static const).
 */
typedef struct sbx_record_key_source {
    unsigned version; /**< SBX_RECORD_KEY_SOURCE_VERSION */
    /**
     * The keyrefs this source serves: a URL scheme and "://" ("https://"),
     * lowercase: a letter, then letters, digits, '+', '-' or '.'. Keyrefs
     * match it case-sensitively and must be longer than it.
     */
    const char *prefix;
    /**
     * A data key for a record about to be encrypted under keyref.
     * @param key_out receives the 32-byte data key. SECRET: libstrongbox
     *        wipes it after use, whatever the result; a source wipes its own
     *        copies.
     * @param wrapped_out an empty buffer: append the wrapped data key, as
     *        text that the same source's unwrap() turns back into the key
     *        (1 to SBX_RECORD_MAX_WRAPPED bytes, no NUL). It is stored in
     *        the record as it is. libstrongbox disposes of it.
     * @param keyref the caller's keyref, NUL-terminated, starting with
     *        prefix (at most SBX_RECORD_MAX_KEYREF bytes).
     * @param bytes the plaintext bytes this record encrypts under the key
     *        (the value and its type byte), for sources that bound a key's use.
     * @param payload the struct's payload.
     * @return 0, or a negative SBX_E* code with its message set by
     *         sbx_error_set() (strongbox/error.h): sbx_record_encrypt()
     *         fails with that code and message.
     */
    int (*datakey)(uint8_t key_out[32], sbx_buf *wrapped_out, const char *keyref, uint64_t bytes,
                   void *payload);
    /**
     * The data key of a record being decrypted.
     * @param key_out receives the 32-byte data key. SECRET: as for datakey().
     * @param keyref the record's keyref, NUL-terminated, starting with
     *        prefix. UNTRUSTED: it comes from the record (see Trust above).
     * @param wrapped the record's wrapped data key, NUL-terminated (1 to
     *        SBX_RECORD_MAX_WRAPPED bytes). UNTRUSTED as well.
     * @param payload the struct's payload.
     * @return 0, or a negative SBX_E* code with its message set:
     *         sbx_record_decrypt() fails with it. A key that unwraps but is
     *         the wrong one needs no check here: the record's tag fails
     *         (SBX_EAUTH).
     */
    int (*unwrap)(uint8_t key_out[32], const char *keyref, const char *wrapped, void *payload);
    /**
     * Free what the source holds (clients, caches, keys), called by
     * sbx_record_cleanup() with no other record call in flight. The source
     * stays registered: a later datakey() or unwrap() must work again
     * (making its state anew) or fail with a message. NULL: nothing to free.
     */
    void (*cleanup)(void *payload);
    void *payload; /**< passed to each callback as it is */
} sbx_record_key_source;

/**
 * @brief Register a key source: from now on, in every thread, keyrefs
 *        starting with src->prefix are served by src.
 * @param src static: it must stay valid and unchanged for the life of the
 *        process. It is never unregistered.
 * @return 0 (also when src itself was registered before); SBX_EEXISTS when
 *         another source is registered for the same prefix (the message
 *         names it); SBX_EINVAL (NULL, unknown version, a prefix that is
 *         not a lowercase scheme and "://" or is longer than
 *         SBX_RECORD_MAX_PREFIX, no datakey or unwrap); SBX_ETOOBIG (already
 *         SBX_RECORD_MAX_KEY_SOURCES sources).
 */
SBX_EXTERN int sbx_record_key_source_register(const sbx_record_key_source *src);

#ifdef __cplusplus
}
#endif
#endif
