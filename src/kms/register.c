/*
 * src/kms/register.c - what libstrongbox-kms adds to libstrongbox when it
 * is loaded: the sbx-kms stanza type (its rule is then checked on every
 * header read, whoever the stanza is for) and the https:// record key source.
 *
 * A constructor runs when the shared library is loaded (linked or
 * dlopen()ed) and when a static link pulls this object in; the kms
 * constructors (sbx_identity_kms_new, sbx_recipient_kms_new) call
 * sbx_kms__register() too, so a static link that never references this
 * file still registers before first use.
 */
#include "kms/envelope.h"
#include "records/kms.h"
#include "strongbox/kms.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
register_all(void)
{
    (void)sbx_age_stanza_type_register(&sbx_kms__stanza_type);
    (void)sbx_record__kms_register(); // SBX_EEXISTS: the program registered its own https://
}

/* see kms/envelope.h */
void
sbx_kms__register(void)
{
    pthread_once(&once, register_all);
}

/* see strongbox/kms.h */
void
sbx_kms_init(void)
{
    sbx_kms__register();
}

__attribute__((constructor)) static void
at_load(void)
{
    sbx_kms__register();
}
