/*
 * cli/kms_dl.c - loading libstrongbox-kms at run time (see kms_dl.h), and the
 * lazy key-server identity: an identity type defined outside the library
 * through strongbox/sys/age.h, as any extension would define one.
 */
#include "kms_dl.h"

#include <strongbox/sys/age.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kms_dl api;
static bool loaded;

#define SYM(field, name)                                                                           \
    {                                                                                              \
        (void **)&api.field, #name                                                                 \
    }

/*
 * The libstrongbox-kms beside the libstrongbox this sbx runs with (the build
 * tree, or PREFIX/LIBDIR): found from where the loader mapped libstrongbox,
 * which does not depend on run paths (a sanitizer's dlopen interceptor, for
 * one, makes the loader ignore sbx's own).
 */
static void *
open_beside_core(char *path, size_t cap)
{
    Dl_info info;
    const char *slash;
    // A static string of libstrongbox: its address lies in the library's mapping.
    if (dladdr((const void *)sbx_strerror(SBX_OK), &info) == 0 || info.dli_fname == NULL ||
        (slash = strrchr(info.dli_fname, '/')) == NULL)
        return NULL;
    snprintf(path, cap, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname,
             SBX_KMS_LIBRARY_NAME);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/*
 * dlopen the library: SBX_KMS_LIBRARY if set; else beside libstrongbox, by
 * name (the loader's search), then at its installed path. why gets the
 * loader's first complaint.
 */
static void *
open_library(char *tried, size_t cap, char *why, size_t why_cap)
{
    const char *env = getenv("SBX_KMS_LIBRARY");
    char beside[4096] = "";
    void *h;
    why[0] = '\0';
    if (env != NULL && env[0] != '\0') {
        snprintf(tried, cap, "%s (SBX_KMS_LIBRARY)", env);
        if ((h = dlopen(env, RTLD_NOW | RTLD_LOCAL)) == NULL)
            snprintf(why, why_cap, "%s", dlerror());
        return h;
    }
    if ((h = open_beside_core(beside, sizeof(beside))) != NULL)
        return h;
    if (beside[0] != '\0')
        snprintf(why, why_cap, "%s", dlerror());
    if ((h = dlopen(SBX_KMS_LIBRARY_NAME, RTLD_NOW | RTLD_LOCAL)) != NULL ||
        (h = dlopen(SBX_KMS_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL)) != NULL)
        return h;
    if (why[0] == '\0')
        snprintf(why, why_cap, "%s", dlerror());
    snprintf(tried, cap, "%s%s%s in the loader's path, and %s", beside,
             beside[0] != '\0' ? ", " : "", SBX_KMS_LIBRARY_NAME, SBX_KMS_LIBRARY_PATH);
    return NULL;
}

const struct kms_dl *
kms_dl_get(void)
{
    const struct {
        void **slot;
        const char *name;
    } syms[] = {
        SYM(identity_new_from_env, sbx_identity_kms_new_from_env),
        SYM(client_new_from_env, sbx_kms_client_new_from_env),
        SYM(client_free, sbx_kms_client_free),
        SYM(parse_key_url, sbx_kms_parse_key_url),
        SYM(recipient_new, sbx_recipient_kms_new),
        SYM(rotate_rewrap_file, sbx_rotate_kms_rewrap_file),
        SYM(client_url, sbx_kms_client_url),
        SYM(request, sbx_kms_request),
        SYM(json_parse, sbx_kms_json_parse),
        SYM(json_text, sbx_kms_json_text),
        SYM(json_count, sbx_kms_json_count),
        SYM(json_free, sbx_kms_json_free),
        SYM(age_recipient, sbx_kms_age_recipient),
        SYM(age_identity, sbx_kms_age_identity),
    };
    char tried[8192], why[1024];
    void *h;
    if (loaded)
        return &api;
    if ((h = open_library(tried, sizeof(tried), why, sizeof(why))) == NULL) {
        sbx_error_set(SBX_EUNSUPPORTED,
                      "the key server client library libstrongbox-kms is not installed "
                      "(looked for %s: %s); install it (the strongbox-kms package, or "
                      "`cmake --install` of a full build)",
                      tried, why);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if ((*syms[i].slot = dlsym(h, syms[i].name)) == NULL) {
            sbx_error_set(SBX_EUNSUPPORTED,
                          "the key server client library libstrongbox-kms lacks %s: it does "
                          "not match this sbx; reinstall both from one build",
                          syms[i].name);
            dlclose(h);
            return NULL;
        }
    }
    loaded = true; // never closed: its stanza type stays registered for the process
    return &api;
}

/* ---- the lazy identity ---- */

struct lazy {
    sbx_identity base;
    sbx_identity *real; /* made on first use */
    int (*make)(sbx_identity **out, void *payload);
    void *payload;
};

/* The key server identity, made on first use (a failure is tried again next time). */
static int
lazy_real(struct lazy *l)
{
    if (l->real != NULL)
        return 0;
    if (kms_dl_get() == NULL)
        return sbx_error_last()->code;
    return l->make(&l->real, l->payload);
}

static int
lazy_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
            uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    struct lazy *l = (struct lazy *)id;
    int err = lazy_real(l);
    if (err < 0)
        return err; // the file holds an sbx-kms stanza that no other identity opened
    return l->real->ops->unwrap(l->real, stanzas, count, file_key);
}

static int
lazy_explain(sbx_identity *id)
{
    struct lazy *l = (struct lazy *)id;
    if (l->real == NULL || l->real->ops->explain == NULL)
        return 0;
    return l->real->ops->explain(l->real);
}

static void
lazy_free(sbx_identity *id)
{
    struct lazy *l = (struct lazy *)id;
    if (l != NULL)
        sbx_identity_free(l->real);
    free(l);
}

static const char *const lazy_types[] = {"sbx-kms", NULL};

static const sbx_identity_ops lazy_ops = {
    SBX_IDENTITY_OPS_VERSION, lazy_types, lazy_unwrap, lazy_explain, NULL, NULL, lazy_free,
};

int
kms_dl_lazy_identity(sbx_identity **out, int (*make)(sbx_identity **out, void *payload),
                     void *payload)
{
    struct lazy *l = calloc(1, sizeof(*l));
    *out = NULL;
    if (l == NULL)
        return sbx_error_set_nomem();
    l->base.ops = &lazy_ops;
    l->make = make;
    l->payload = payload;
    *out = &l->base;
    return 0;
}
