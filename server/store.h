/*
 * server/store.h - the key server's storage interface (internal).
 *
 * A deliberately small transactional key/value interface that both backends
 * implement exactly alike: SQLite (one node, the default) and PostgreSQL
 * (several nodes sharing one replicated database). Everything the server
 * keeps (key metadata, wrapped key versions, seed keys, tokens, policies,
 * certificate mappings, TLS ticket keys, the root-key check value) is a
 * value in a namespace, so the two backends stay small and identical in
 * behaviour, and the same test suite runs against both.
 *
 * Every row carries a revision: 1 when created, incremented by each put.
 * Conditional writes (put if absent, put if unchanged) are what makes
 * rotation and creation safe when several threads or nodes race; there are
 * no multi-row transactions, so callers order their writes so that a crash
 * between two writes leaves only a harmless orphan (see keystore.c).
 *
 * Durability: a put or delete that returned 0 is on stable storage (SQLite
 * WAL with synchronous=FULL; PostgreSQL commit with synchronous_commit on).
 *
 * Threads: a handle is used by one thread at a time. The server opens one
 * handle per event loop thread. Handles to the same URL see each other's
 * committed writes at once.
 *
 * Errors: 0 or a negative SBX_E* code with a message naming the backend
 * problem (never a value's bytes): SBX_ENOTFOUND (no such row),
 * SBX_ECONFLICT (the condition of a conditional write failed), SBX_EIO (the
 * database failed or is unreachable), SBX_EINVAL (bad URL or arguments).
 */
#ifndef SBX_SERVER_STORE_H
#define SBX_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kms_store kms_store;

/* expect_rev values for kms_store_put/kms_store_delete. */
#define KMS_REV_ANY    ((int64_t)-1) /* unconditional */
#define KMS_REV_ABSENT ((int64_t)0)  /* only if the row does not exist */

/* Longest namespace and key, in bytes (longer ones are SBX_EINVAL). */
#define KMS_STORE_NS_MAX  32
#define KMS_STORE_KEY_MAX 256
/* Largest value, in bytes (larger ones are SBX_ETOOBIG). */
#define KMS_STORE_VALUE_MAX (1u << 20)

/*
 * Opens a handle. url is one of:
 *   "sqlite:PATH" or a plain PATH   SQLite file (created 0600 if missing, WAL mode)
 *   "memory:NAME"                   SQLite in-memory database shared by every handle
 *                                   of this process opened with the same NAME
 *                                   (--dev; gone when the last handle closes)
 *   "postgres://..." / "postgresql://..."   PostgreSQL via libpq (conninfo URI)
 * The schema is created when missing. Returns 0 and *out, or an error.
 */
int kms_store_open(kms_store **out, const char *url);

/* Closes a handle (NULL-safe). */
void kms_store_close(kms_store *s);

/* "sqlite" or "postgres". */
const char *kms_store_backend(const kms_store *s);

/*
 * Reads one row. On success *val is a malloc'd copy (caller wipes and frees
 * it; NUL-terminated one byte past *len for convenience), *len its length,
 * and *rev its revision (rev may be NULL). SBX_ENOTFOUND when absent.
 */
int kms_store_get(kms_store *s, const char *ns, const char *key, uint8_t **val, size_t *len,
                  int64_t *rev);

/*
 * Writes one row. expect_rev: KMS_REV_ANY writes unconditionally;
 * KMS_REV_ABSENT only if the row does not exist; n > 0 only if the current
 * revision is n. SBX_ECONFLICT when the condition fails. *new_rev (may be
 * NULL) gets the row's revision after the write.
 */
int kms_store_put(kms_store *s, const char *ns, const char *key, const void *val, size_t len,
                  int64_t expect_rev, int64_t *new_rev);

/*
 * Deletes one row. expect_rev as for put (KMS_REV_ABSENT is SBX_EINVAL).
 * SBX_ENOTFOUND when absent, SBX_ECONFLICT when the revision differs.
 */
int kms_store_delete(kms_store *s, const char *ns, const char *key, int64_t expect_rev);

/*
 * Calls cb for every row of ns whose key starts with prefix ("" for all), in
 * ascending byte order of key, until cb returns non-zero (which is then
 * returned) or the rows end (0). The value pointer is valid only during the
 * call.
 */
typedef int (*kms_store_list_cb)(void *ctx, const char *key, const uint8_t *val, size_t len,
                                 int64_t rev);
int kms_store_list(kms_store *s, const char *ns, const char *prefix, kms_store_list_cb cb,
                   void *ctx);

/*
 * Integrity of rows at rest. Once a handle has an integrity key (derived
 * from the root key), every value it writes, outside the namespace "meta"
 * (which holds the records that check the root key itself), carries an
 * HMAC-SHA-256 tag over its namespace, key and bytes, and every value it
 * reads must carry a valid one: a row edited, planted or moved to another
 * key in the database by someone without the root key is refused (SBX_EIO,
 * naming the row: the server's storage is damaged) instead of used.
 * kms_store_list leaves such rows out (with a warning on stderr), so that one
 * bad row does not stop housekeeping or the revocation of other tokens.
 * Replaying an older value of the same row is not detected (that needs state
 * outside the database). Tags are stripped: callers see the values they
 * wrote. key NULL removes the integrity key.
 */
int kms_store_set_integrity_key(kms_store *s, const uint8_t key[32]);
/* Gives dst the integrity key of src (or none). */
int kms_store_copy_integrity_key(kms_store *dst, const kms_store *src);

/* Number of rows in ns. */
int kms_store_count(kms_store *s, const char *ns, int64_t *n);

#endif
