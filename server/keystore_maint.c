/*
 * server/keystore_maint.c - housekeeping: rotation of keys whose
 * auto_rotate_period passed, and purge of keys whose deletion_time passed.
 *
 * Implementation notes:
 *  - Safe on several nodes at once: a due rotation re-checks "due" on the
 *    fresh metadata inside the compare-and-swap loop, so when two nodes race
 *    only the first rotates and the other finds the key no longer due.
 *  - Purge marks the key "purging" first (so a racing restore cannot revive a
 *    key whose secrets are being deleted), deletes all of its version rows
 *    (orphans included), then the metadata at the revision it read. A crash
 *    in between is finished by the next run.
 */
#include "keystore_internal.h"
#include "util.h"

#include "strongbox/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct due {
    char (*names)[KMS_NAME_MAX + 1];
    bool *purge;
    size_t n, cap;
    int64_t now;
};

static int
collect_due(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct due *d = arg;
    kms_meta *m = NULL;
    if (kms__meta_parse(key, val, len, rev, &m) < 0)
        return 0; // a corrupt row must not stop housekeeping of the others
    const kms_key_info *in = &m->info;
    bool purge = in->deletion_time != 0 && in->deletion_time <= d->now;
    bool rotate = in->deletion_time == 0 && in->auto_rotate_period > 0 &&
                  in->rotated + in->auto_rotate_period <= d->now;
    kms__meta_release(m);
    if (!purge && !rotate)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        void *names = realloc(d->names, cap * sizeof(*d->names));
        if (names != NULL)
            d->names = names;
        bool *p = names != NULL ? realloc(d->purge, cap * sizeof(bool)) : NULL;
        if (p == NULL)
            return sbx_error_set_nomem();
        d->purge = p;
        d->cap = cap;
    }
    snprintf(d->names[d->n], KMS_NAME_MAX + 1, "%s", key);
    d->purge[d->n++] = purge;
    return 0;
}

struct rows {
    char (*keys)[44];
    size_t n, cap;
};

static int
collect_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct rows *r = arg;
    (void)val;
    (void)len;
    (void)rev;
    if (strlen(key) != 43)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        void *k = realloc(r->keys, cap * sizeof(*r->keys));
        if (k == NULL)
            return sbx_error_set_nomem();
        r->keys = k;
        r->cap = cap;
    }
    memcpy(r->keys[r->n++], key, 44);
    return 0;
}

/* Deletes every version row of id (orphans included). */
static int
delete_versions(kms_keystore *ks, kms_store *st, const uint8_t id[16])
{
    char prefix[34];
    struct rows r = {0};
    kms_hex(prefix, id, 16);
    prefix[32] = ':';
    prefix[33] = '\0';
    int err = kms_store_list(st, "ver", prefix, collect_row, &r);
    for (size_t i = 0; err == 0 && i < r.n; i++) {
        err = kms_store_delete(st, "ver", r.keys[i], KMS_REV_ANY);
        if (err == SBX_ENOTFOUND)
            err = 0;
        unsigned long v = strtoul(r.keys[i] + 33, NULL, 10);
        kms__vcache_evict(ks, id, (uint32_t)v);
    }
    free(r.keys);
    return err;
}

static int
edit_purging(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    (void)ks;
    (void)st;
    int64_t now = *(int64_t *)arg;
    if (m->info.deletion_time == 0 || m->info.deletion_time > now)
        return KMS_NOCHANGE; // restored or rescheduled meanwhile
    if (m->purging)
        return KMS_NOCHANGE;
    m->purging = true;
    return 0;
}

/* Purges name if it is still due: 1 when it is gone, 0 when not due (or gone already). */
static int
purge(kms_keystore *ks, kms_store *st, const char *name, int64_t now)
{
    kms_key_info info;
    kms_meta *m = NULL;
    int err = kms__update(ks, st, name, edit_purging, &now, &info); // marks it "purging"
    bool due = err >= 0 && info.deletion_time != 0 && info.deletion_time <= now;
    kms_key_info_dispose(&info);
    if (err < 0 || !due)
        return err == SBX_ENOTFOUND ? 0 : err < 0 ? err : 0;
    err = kms__meta_load(ks, st, name, true, &m);
    if (err == 0)
        err = delete_versions(ks, st, m->info.id);
    if (err == 0)
        err = kms_store_delete(st, "key", name, m->rev);
    kms__meta_release(m);
    kms__meta_forget(ks, name);
    if (err == SBX_ENOTFOUND) // another node finished first
        return 0;
    return err < 0 ? err : 1;
}

/* see keystore.h */
int
kms_keystore_maintain(kms_keystore *ks, kms_store *st, int64_t now, unsigned *rotated,
                      unsigned *purged)
{
    struct due d = {.now = now};
    unsigned nrot = 0, npurge = 0;
    int first = 0;
    int err = kms_store_list(st, "key", "", collect_due, &d);
    for (size_t i = 0; err == 0 && i < d.n; i++) {
        int r;
        if (d.purge[i]) {
            r = purge(ks, st, d.names[i], now);
            npurge += r == 1;
        } else {
            struct kms_rotate_arg ra = {now, true};
            r = kms__update(ks, st, d.names[i], kms__edit_rotate, &ra, NULL);
            nrot += r == 0;
        }
        if (r < 0 && r != SBX_ENOTFOUND && first == 0)
            first = r; // keep going; report the first failure
    }
    free(d.names);
    free(d.purge);
    if (rotated != NULL)
        *rotated = nrot;
    if (purged != NULL)
        *purged = npurge;
    return err < 0 ? err : first;
}
