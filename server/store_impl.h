/*
 * server/store_impl.h - what the storage backends share (internal to
 * store*.c; everybody else uses store.h).
 *
 * Implementation notes:
 *  - store.c parses the URL, validates every argument (namespace, key and
 *    prefix lengths and characters, value size, expect_rev) and then calls
 *    the backend through a small vtable, so the backends only ever see valid
 *    input and report only their own failures.
 *  - A backend handle is a struct whose first member is a struct kms_store.
 *  - Both backends keep one table (ns, key, value, rev) with primary key
 *    (ns, key); keys compare byte by byte (SQLite TEXT with the BINARY
 *    collation, PostgreSQL bytea), so list order is the same on both.
 *  - A prefix scan is the range [prefix, kms__prefix_end(prefix)): the upper
 *    bound is the prefix with its last byte below 0xff incremented (and the
 *    0xff bytes after it dropped); none when the prefix is empty or all 0xff.
 */
#ifndef SBX_SERVER_STORE_IMPL_H
#define SBX_SERVER_STORE_IMPL_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name; /* "sqlite" | "postgres" */
    int (*get)(kms_store *s, const char *ns, const char *key, uint8_t **val, size_t *len,
               int64_t *rev);
    int (*put)(kms_store *s, const char *ns, const char *key, const void *val, size_t len,
               int64_t expect_rev, int64_t *new_rev);
    int (*del)(kms_store *s, const char *ns, const char *key, int64_t expect_rev);
    /* hi: exclusive upper bound, hi_len bytes; NULL when there is none. */
    int (*list)(kms_store *s, const char *ns, const char *lo, const char *hi, size_t hi_len,
                kms_store_list_cb cb, void *ctx);
    int (*count)(kms_store *s, const char *ns, int64_t *n);
    void (*close)(kms_store *s);
} kms_store_ops;

struct kms_store {
    const kms_store_ops *ops;
    uint8_t *mac_key; /* integrity key (secure memory, 32 bytes), or NULL: see store.c */
};

/* SQLite: a file (created 0600), or the process-shared in-memory database NAME when memory. */
int kms__store_sqlite_open(kms_store **out, const char *path, bool memory);
/* PostgreSQL: url is a libpq connection URI. */
int kms__store_pg_open(kms_store **out, const char *url);

/*
 * The exclusive upper bound of the keys starting with prefix, written to
 * out (KMS_STORE_KEY_MAX + 1 bytes); returns its length, or 0 when there is
 * no bound (every key from prefix on matches).
 */
size_t kms__prefix_end(char *out, const char *prefix);

/* A 0-length value's non-NULL address (backends must bind a non-NULL pointer). */
extern const uint8_t kms__store_empty[1];

#endif
