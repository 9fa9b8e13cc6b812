/*
 * src/age/registry.c - the stanza types whose rules are checked on every
 * header read (strongbox/sys/age.h).
 *
 * Implementation notes:
 *  - The built-in types (X25519, scrypt, ssh-ed25519, ssh-rsa) are the same
 *    sbx_age_stanza_type structs an extension registers; they are simply
 *    listed from the start (builtins), and looked up first.
 *  - Registration appends to a fixed table under a mutex; lookups read an
 *    atomic count, and a slot is filled before the count that publishes it,
 *    so readers take no lock. Entries are never removed (types are static).
 *  - The "alone" rule of a type applies to the whole header: a stanza of
 *    such a type must be its only stanza.
 */
#include "age/header.h"
#include "age/keys.h"
#include "core/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MAX_TYPES 64 /* registered after start-up */

static const sbx_age_stanza_type *const builtins[] = {
    &sbx_age__x25519_type,
    &sbx_age__scrypt_type,
    &sbx_age__ssh_ed25519_type,
    &sbx_age__ssh_rsa_type,
};
static const sbx_age_stanza_type *types[MAX_TYPES];
static atomic_size_t ntypes;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* see strongbox/sys/age.h */
const sbx_age_stanza_type *
sbx_age_stanza_type_find(const char *type)
{
    size_t n = atomic_load_explicit(&ntypes, memory_order_acquire);
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(builtins[i]->type, type) == 0)
            return builtins[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(types[i]->type, type) == 0)
            return types[i];
    }
    return NULL;
}

/* see strongbox/sys/age.h */
int
sbx_age_stanza_type_register(const sbx_age_stanza_type *t)
{
    const sbx_age_stanza_type *have;
    int err = 0;
    if (t == NULL || t->version != SBX_AGE_STANZA_TYPE_VERSION || t->type == NULL ||
        t->type[0] == '\0')
        return sbx__error(SBX_EINVAL, "sbx_age_stanza_type_register: unknown version or no type");
    pthread_mutex_lock(&lock);
    size_t n = atomic_load(&ntypes);
    if ((have = sbx_age_stanza_type_find(t->type)) != NULL) {
        if (have != t)
            err = sbx__error(SBX_EEXISTS, "the stanza type \"%s\" is already registered", t->type);
    } else if (n == MAX_TYPES) {
        err = sbx__error(SBX_ENOMEM, "too many stanza types registered (at most %d)", MAX_TYPES);
    } else {
        types[n] = t; // filled before the count that publishes it
        atomic_store_explicit(&ntypes, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    return err;
}

/* see age/header.h */
int
sbx_age__header_check(const sbx_age_header *hdr)
{
    int err;
    for (size_t i = 0; i < hdr->count; i++) {
        const sbx_age_stanza *s = &hdr->stanzas[i];
        const sbx_age_stanza_type *t = sbx_age_stanza_type_find(s->type);
        if (t == NULL)
            continue;
        if ((t->flags & SBX_AGE_STANZA_ALONE) && hdr->count != 1)
            return sbx__error(SBX_EHEADER,
                              "a %s stanza must be the only stanza of a file, but this header "
                              "has %zu",
                              t->type, hdr->count);
        if (t->check != NULL && (err = t->check(s, i)) < 0)
            return err;
    }
    return 0;
}
