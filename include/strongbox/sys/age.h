/*
 * strongbox/sys/age.h - the age stanza interface, for code that extends the
 * age layer: new recipient and identity types, and tools that work on a
 * file's header (rotate, seal, pad, inspect, the key server envelope).
 *
 * This is the libgit2 "sys" pattern: a stable interface for extenders, kept
 * apart from the everyday API in strongbox/age.h. Every recipient and
 * identity type goes through it, the built-in ones included (X25519,
 * scrypt, ssh-ed25519, ssh-rsa): nothing built in is special.
 *
 * Concepts (age.md §3):
 *  - A stanza is one recipient's copy of the file key: a type, arguments,
 *    and a body ("-> X25519 <share>" + 32 bytes). A header holds one or more
 *    stanzas and a MAC keyed by the file key.
 *  - A stanza type (sbx_age_stanza_type) states the structural rule for its
 *    stanzas. The rule of every registered type is checked on every header
 *    read, whoever the stanza is for: a malformed stanza of a known type
 *    fails the file (SBX_EHEADER). A type may demand to be the only stanza
 *    of a file (SBX_AGE_STANZA_ALONE, as scrypt does). Stanzas of types
 *    nobody registered are skipped, as age skips them.
 *  - A recipient type (sbx_recipient_ops) wraps a file key into one or more
 *    stanzas appended to a header being built.
 *  - An identity type (sbx_identity_ops) names the stanza types it consumes
 *    and unwraps the file key from the stanzas of those types.
 *
 * Defining a type: embed the public struct first in your own and point it
 * at a static ops table:
 *
 *     struct my_recipient { sbx_recipient base; uint8_t pk[32]; };
 *     static const sbx_recipient_ops my_ops = {
 *         SBX_RECIPIENT_OPS_VERSION, "my-type", 0, my_wrap, my_to_string, my_free};
 *     r->base.ops = &my_ops;   // then hand &r->base to sbx_age_encryptor_new()
 *
 * Working on a header (what rotate and seal do):
 *
 *     sbx_age_header *h;
 *     sbx_age_header_read(&h, src);          // parse + check every stanza
 *     sbx_age_header_unwrap(h, ids, n);      // file key + MAC, kept in h
 *     sbx_age_decryptor_new_opened(&dec, h, src, NULL);   // the payload
 *
 *     sbx_age_header_new(&h);                // or build one
 *     sbx_age_header_wrap(h, recipients, n, file_key);
 *     sbx_age_header_add_stanza(h, "my-note", args, 1, NULL, 0);
 *     sbx_age_encryptor_new_with_header(&enc, dst, h, file_key, NULL);
 *
 * Threads: stanza type registration is thread-safe; a header, a recipient
 * and an identity are used by one thread at a time.
 */
#ifndef STRONGBOX_SYS_AGE_H
#define STRONGBOX_SYS_AGE_H

#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- stanzas ---- */

/**
 * One stanza of a header. Owned by its header and read-only for everyone
 * else; valid until the header is freed. Arguments and type are
 * NUL-terminated printable ASCII (the parser guarantees it).
 */
typedef struct sbx_age_stanza {
    const char *type;        /**< the first argument of the stanza line */
    const char *const *args; /**< the remaining arguments */
    size_t nargs;
    const uint8_t *body; /**< the decoded body (may be NULL when body_len is 0) */
    size_t body_len;
} sbx_age_stanza;

/** Flag: a stanza of this type must be the only stanza of its file (scrypt). */
#define SBX_AGE_STANZA_ALONE 0x1u

/** Answer of sbx_identity_ops.unwrap: none of these stanzas is for this identity. */
#define SBX_AGE_NOT_MINE 1

#define SBX_AGE_STANZA_TYPE_VERSION 1

/** The structural rule of one stanza type. */
typedef struct sbx_age_stanza_type {
    unsigned version; /**< SBX_AGE_STANZA_TYPE_VERSION */
    const char *type; /**< the stanza type, e.g. "X25519" */
    unsigned flags;   /**< SBX_AGE_STANZA_ALONE or 0 */
    /**
     * Check one stanza of this type (arguments, their encoding, body size)
     * before any unwrapping. index is its position in the header, from 0,
     * for messages. @return 0 or SBX_EHEADER with a message naming the
     * stanza. NULL: every shape is accepted.
     */
    int (*check)(const sbx_age_stanza *s, size_t index);
    /**
     * What to tell the user when no identity opened a file whose stanzas
     * are all of this type ("the passphrase is wrong ..."), or NULL for the
     * generic "no identity matched" message.
     */
    const char *no_match;
} sbx_age_stanza_type;

/**
 * @brief Register a stanza type, so that its rule is checked on every
 *        header read from now on.
 * @param t static: it must stay valid for the life of the process.
 * @return 0 (also when t itself was registered before), SBX_EEXISTS when
 *         another rule is registered for the same type (the built-in types
 *         are registered from the start), SBX_EINVAL (unknown version, no
 *         type), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_age_stanza_type_register(const sbx_age_stanza_type *t);

/** @brief The registered rule for a stanza type, or NULL. Thread-safe. */
SBX_EXTERN const sbx_age_stanza_type *sbx_age_stanza_type_find(const char *type);

/* ---- headers ---- */

/**
 * A header: read from a file (sbx_age_header_read()) or built for a new one
 * (sbx_age_header_new()). A header that was opened (unwrapped or given its
 * file key) holds the file key in secure memory; sbx_age_header_free()
 * wipes it.
 */
typedef struct sbx_age_header sbx_age_header;

/** @brief A new empty header to build. @return 0 or SBX_ENOMEM. */
SBX_EXTERN int sbx_age_header_new(sbx_age_header **out);

/**
 * @brief Append a stanza (everything is copied). Meant for a recipient's
 *        wrap() and for stanzas that describe a file rather than a
 *        recipient (padding, metadata).
 * @param type and args: printable ASCII without spaces, non-empty, at most
 *        SBX_AGE_MAX_ARG_LEN bytes each, at most SBX_AGE_MAX_ARGS arguments.
 * @return 0, SBX_EINVAL (an argument the format cannot carry; the header is
 *         unchanged), SBX_ETOOBIG (more than SBX_AGE_MAX_STANZAS stanzas),
 *         SBX_ENOMEM.
 */
SBX_EXTERN int sbx_age_header_add_stanza(sbx_age_header *h, const char *type,
                                         const char *const *args, size_t nargs, const uint8_t *body,
                                         size_t body_len);

/** @brief Append a copy of a stanza (for example one of another header). */
SBX_EXTERN int sbx_age_header_copy_stanza(sbx_age_header *h, const sbx_age_stanza *s);

/**
 * @brief Append one or more stanzas per recipient, each from its type's
 *        wrap(). A recipient whose type must be alone (a passphrase) cannot
 *        be combined with other recipients.
 * @return 0, SBX_EINVAL (no recipient, a NULL one, a passphrase with
 *         others), or the recipient's error.
 */
SBX_EXTERN int sbx_age_header_wrap(sbx_age_header *h, sbx_recipient *const *recipients,
                                   size_t count,
                                   const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]) SBX_WARN_UNUSED;

/** @brief The number of stanzas. */
SBX_EXTERN size_t sbx_age_header_count(const sbx_age_header *h);

/** @brief Stanza i (from 0), or NULL past the end. Borrowed from h. */
SBX_EXTERN const sbx_age_stanza *sbx_age_header_stanza(const sbx_age_header *h, size_t i);

/** @brief The first stanza of a type, or NULL. Borrowed from h. */
SBX_EXTERN const sbx_age_stanza *sbx_age_header_find(const sbx_age_header *h, const char *type);

/**
 * @brief Read the header at the start of src (binary: put an armor decoder
 *        in front for armored input), parse it strictly, and check every
 *        stanza against the registered stanza types.
 *
 * Reads at most SBX_AGE_MAX_HEADER_SIZE bytes plus one read block; the bytes
 * read past the header are kept (sbx_age_header_rest()) and are the start of
 * the payload. Nothing is decrypted.
 * @return 0, SBX_EHEADER (malformed, over a limit, a stanza that breaks its
 *         type's rule; the message says which), SBX_EIO, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_age_header_read(sbx_age_header **out, sbx_source *src) SBX_WARN_UNUSED;

/**
 * @brief sbx_age_header_read() for random access: the header at the start
 *        of fd, read with pread(2) (the fd offset is left alone), after the
 *        checks sbx_age_reader_open() makes (a regular file, the binary form).
 *        Open it, then hand it to sbx_age_reader_open_opened() with the same fd.
 * @return as sbx_age_header_read(); SBX_EINVAL (not a regular file, or armored).
 */
SBX_EXTERN int sbx_age_header_read_fd(sbx_age_header **out, int fd) SBX_WARN_UNUSED;

/**
 * @brief The exact bytes of a header that was read, from the version line
 *        through the MAC line's LF. NULL and 0 for a header being built.
 */
SBX_EXTERN const uint8_t *sbx_age_header_bytes(const sbx_age_header *h, size_t *len);

/**
 * @brief The bytes read from the source past the header (the start of the
 *        payload: its nonce, then chunks). Borrowed from h.
 */
SBX_EXTERN const uint8_t *sbx_age_header_rest(const sbx_age_header *h, size_t *len);

/**
 * @brief Open a header that was read: find the file key with the
 *        identities and verify the header MAC; the key is kept in h.
 *
 * Identities are tried in order; each gets, in one call, every stanza of
 * the types it consumes. When none opens the file, an identity's explain()
 * may say why (a key server that was down); otherwise the message says that
 * no identity matched (or what the stanza type's no_match says).
 * @return 0, SBX_ENOMATCH, SBX_EMAC, SBX_EINVAL (h was built, not read; a
 *         NULL identity), or an identity's error (SBX_EHEADER, ...).
 */
SBX_EXTERN int sbx_age_header_unwrap(sbx_age_header *h, sbx_identity *const *identities,
                                     size_t count) SBX_WARN_UNUSED;

/**
 * @brief Open a header that was read with a file key known by other means
 *        (kept from encryption, say): verify the MAC and keep the key.
 * @return 0, SBX_EMAC, SBX_EINVAL (h was built, not read).
 */
SBX_EXTERN int
sbx_age_header_set_file_key(sbx_age_header *h,
                            const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]) SBX_WARN_UNUSED;

/**
 * @brief Copy out the file key of an opened header.
 * SECRET: wipe file_key after use.
 * @return 0, SBX_EINVAL (not opened).
 */
SBX_EXTERN int sbx_age_header_file_key(const sbx_age_header *h,
                                       uint8_t file_key[SBX_AGE_FILE_KEY_LEN]) SBX_WARN_UNUSED;

/**
 * @brief Encode a built header with its MAC under file_key (the form that
 *        starts a file), appended to out. The header must have at least one
 *        stanza and respect the stanza types' rules (a passphrase alone).
 * @return 0, SBX_EINVAL (no stanza, a broken rule), SBX_ENOMEM, SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_age_header_encode(sbx_buf *out, const sbx_age_header *h,
                                     const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]) SBX_WARN_UNUSED;

/** @brief Free a header, wiping its file key. NULL-safe. */
SBX_EXTERN void sbx_age_header_free(sbx_age_header *h);

/* ---- payloads of opened and built headers ---- */

/**
 * @brief The plaintext of a file whose header was opened: a decryptor
 *        reading the payload from the header's rest, then from src (the
 *        source the header was read from, positioned just after it).
 * @param opts the armor field is ignored (src is what follows the header);
 *        NULL for defaults.
 * @return as sbx_age_decryptor_new() after its header checks; SBX_EINVAL when
 *         h is not opened. h may be freed once this returns; src must
 *         outlive the decryptor.
 */
SBX_EXTERN int sbx_age_decryptor_new_opened(sbx_source **out, const sbx_age_header *h,
                                            sbx_source *src,
                                            const sbx_age_decrypt_options *opts) SBX_WARN_UNUSED;

/**
 * @brief A random-access reader over a binary age file whose header (read
 *        from the start of fd) was opened.
 * @return as sbx_age_reader_open(); SBX_EINVAL when h is not opened.
 */
SBX_EXTERN int sbx_age_reader_open_opened(sbx_age_reader **out, int fd,
                                          const sbx_age_header *h) SBX_WARN_UNUSED;

/**
 * @brief Copy the payload of an opened header unchanged (what a rewrap
 *        writes after its new header): the header's rest, then src to its
 *        end, into dst. Before returning, the last chunk is authenticated as
 *        the final chunk at the position the size implies, so a truncated or
 *        extended file is refused with one chunk of crypto; the chunks before
 *        it are copied unverified (every reader verifies them). dst is not
 *        finished: the caller commits it only when this returns 0.
 * @param total receives the payload bytes copied (its nonce included).
 * @return 0, SBX_EPAYLOAD (truncated, extended or corrupted at its end),
 *         SBX_EINVAL (h is not opened), or an error of src or dst.
 */
SBX_EXTERN int sbx_age_payload_copy(sbx_sink *dst, const sbx_age_header *h, sbx_source *src,
                                    uint64_t *total) SBX_WARN_UNUSED;

/**
 * @brief Start a file with a header the caller built and a file key the
 *        caller chose: the header is encoded with its MAC
 *        (sbx_age_header_encode()) and written to dst with a fresh payload
 *        nonce; the returned sink takes the plaintext, as
 *        sbx_age_encryptor_new()'s does.
 * @param file_key SECRET: 16 bytes from the CSPRNG, used for this file only.
 * @return as sbx_age_encryptor_new(). h may be freed once this returns.
 */
SBX_EXTERN int
sbx_age_encryptor_new_with_header(sbx_sink **out, sbx_sink *dst, const sbx_age_header *h,
                                  const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                                  const sbx_age_encrypt_options *opts) SBX_WARN_UNUSED;

/* ---- recipient types ---- */

#define SBX_RECIPIENT_OPS_VERSION 1

/** The operations of a recipient type. */
typedef struct sbx_recipient_ops {
    unsigned version; /**< SBX_RECIPIENT_OPS_VERSION */
    const char *type; /**< the stanza type it writes (sbx_recipient_type()) */
    unsigned flags;   /**< SBX_AGE_STANZA_ALONE: must be a file's only recipient */
    /**
     * Wrap file_key for this recipient: append one or more stanzas to h
     * with sbx_age_header_add_stanza(). @return 0 or a negative code (with
     * its message set); the file is then not written.
     */
    int (*wrap)(const sbx_recipient *r, sbx_age_header *h,
                const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);
    /** The recipient's text form, appended to out; NULL: it has none. */
    int (*to_string)(const sbx_recipient *r, sbx_buf *out);
    /** Free (and wipe) the recipient. */
    void (*free)(sbx_recipient *r);
} sbx_recipient_ops;

/** The head of every recipient: embed it first in the type's own struct. */
struct sbx_recipient {
    const sbx_recipient_ops *ops;
};

/* ---- identity types ---- */

#define SBX_IDENTITY_OPS_VERSION 1

/** The operations of an identity type. */
typedef struct sbx_identity_ops {
    unsigned version; /**< SBX_IDENTITY_OPS_VERSION */
    /**
     * The stanza types it consumes, NULL-terminated; NULL: every stanza
     * (for types that decide for themselves, such as plugins).
     */
    const char *const *types;
    /**
     * Find the file key in the stanzas of the consumed types (in header
     * order; count >= 1). Must not trust that the stanzas were checked: a
     * type registered later, or not at all, was not.
     * @return 0 with file_key set; SBX_AGE_NOT_MINE when none is for this
     *         identity (the next identity is tried); a negative code (with
     *         its message set) to fail the file at once.
     */
    int (*unwrap)(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
                  uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);
    /**
     * Optional: called when no identity opened the file, to say why this
     * one could not (its server was down, not allowed). @return 0 (nothing
     * to say), SBX_ENOMATCH with a message (a hint added to the "no identity
     * matched" message), or another negative code with its message (the
     * file's error; it wins over hints).
     */
    int (*explain)(sbx_identity *id);
    /** The identity's secret text form, appended to out; NULL: it has none. */
    int (*to_string)(const sbx_identity *id, sbx_buf *out);
    /** The matching recipient; NULL: there is none. */
    int (*to_recipient)(sbx_recipient **out, const sbx_identity *id);
    /** Wipe and free the identity. */
    void (*free)(sbx_identity *id);
} sbx_identity_ops;

/** The head of every identity: embed it first in the type's own struct. */
struct sbx_identity {
    const sbx_identity_ops *ops;
};

#ifdef __cplusplus
}
#endif
#endif
