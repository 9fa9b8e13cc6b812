/*
 * src/records/key_source.c - the registry of record key sources (see
 * strongbox/sys/records.h).
 *
 * Implementation notes: a fixed array of borrowed pointers and a count.
 * Registration appends under a mutex and publishes the new count with a
 * release store; lookups (every record of a source) read the count with an
 * acquire load and take no lock. This is safe because an entry is written
 * once, before the count covers it, and never changes or goes away (sources
 * are static and never unregistered). The array is fixed so registering
 * from a library constructor cannot run out of memory.
 */
#include "records/records.h"
#include "core/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static const sbx_record_key_source *sources[SBX_RECORD_MAX_KEY_SOURCES];
static atomic_size_t nsources;

/* Length of the scheme + "://" that starts s (a lowercase URL scheme), or 0. */
size_t
sbx_record__scheme_len(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || s[0] < 'a' || s[0] > 'z')
        return 0;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                       s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    return len - i >= 3 && memcmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

static int
check_source(const sbx_record_key_source *src)
{
    size_t len;
    if (src == NULL)
        return sbx__error(SBX_EINVAL, "sbx_record_key_source_register: NULL argument");
    if (src->version != SBX_RECORD_KEY_SOURCE_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_record_key_source version %u", src->version);
    if (src->datakey == NULL || src->unwrap == NULL)
        return sbx__error(SBX_EINVAL, "a record key source needs datakey and unwrap");
    if (src->prefix == NULL || (len = strnlen(src->prefix, SBX_RECORD_MAX_PREFIX + 1)) == 0 ||
        len > SBX_RECORD_MAX_PREFIX || sbx_record__scheme_len(src->prefix, len) != len)
        return sbx__error(SBX_EINVAL,
                          "a record key source prefix is a lowercase URL scheme and \"://\" "
                          "(\"https://\"), at most %d bytes",
                          SBX_RECORD_MAX_PREFIX);
    if (strncmp(src->prefix, "file:", 5) == 0) // is_file_ref() comes first in record.c
        return sbx__error(SBX_EINVAL, "file: keyrefs are key files; a key source needs another "
                                      "prefix");
    return 0;
}

/* see strongbox/sys/records.h */
int
sbx_record_key_source_register(const sbx_record_key_source *src)
{
    int err;
    if ((err = check_source(src)) < 0)
        return err;
    pthread_mutex_lock(&sources_lock);
    size_t n = atomic_load_explicit(&nsources, memory_order_relaxed);
    for (size_t i = 0; i < n && err == 0; i++) {
        if (sources[i] == src)
            err = 1; // registered before: nothing to do
        else if (strcmp(sources[i]->prefix, src->prefix) == 0)
            err = sbx__error(SBX_EEXISTS, "a record key source for %s is already registered",
                             src->prefix);
    }
    if (err == 0 && n == SBX_RECORD_MAX_KEY_SOURCES) {
        err = sbx__error(SBX_ETOOBIG,
                         "cannot register the record key source for %s: %d are "
                         "registered already",
                         src->prefix, SBX_RECORD_MAX_KEY_SOURCES);
    } else if (err == 0) {
        sources[n] = src;
        atomic_store_explicit(&nsources, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&sources_lock);
    return err > 0 ? 0 : err;
}

const sbx_record_key_source *
sbx_record__source_find(const char *keyref, size_t len)
{
    size_t n = atomic_load_explicit(&nsources, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(sources[i]->prefix);
        if (len > plen && memcmp(keyref, sources[i]->prefix, plen) == 0)
            return sources[i];
    }
    return NULL;
}

void
sbx_record__sources_cleanup(void)
{
    size_t n = atomic_load_explicit(&nsources, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (sources[i]->cleanup != NULL)
            sources[i]->cleanup(sources[i]->payload);
    }
}
