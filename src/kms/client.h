/*
 * src/kms/client.h - internals of the key server client (see strongbox/kms.h)
 * shared with the cache, the envelope recipients and the records module.
 * Not part of the public API.
 */
#ifndef SBX_KMS_CLIENT_H
#define SBX_KMS_CLIENT_H

#include <jansson.h>

#include "strongbox/kms.h"
#include "strongbox/kms_name.h"

/* Limits of docs/kms.md, checked before anything is sent. */
#define SBX_KMS__NAME_MAX          SBX_KMS_KEY_NAME_MAX
#define SBX_KMS__CONTEXT_PAIRS_MAX 64
#define SBX_KMS__CONTEXT_KEY_MAX   128
#define SBX_KMS__CONTEXT_VALUE_MAX 1024
/* Largest response body accepted (SBX_ETOOBIG beyond). */
#define SBX_KMS__RESPONSE_MAX ((size_t)4 << 20)

/*
 * The encryption context as a JSON object of string values (a new
 * reference in *out; an empty object when n is 0). SBX_EINVAL for a NULL or
 * empty key, a NULL value, a duplicate key, invalid UTF-8 or a size over the
 * server's limits; SBX_ENOMEM.
 */
int sbx_kms__context_json(json_t **out, const sbx_kms_pair *ctx, size_t n);

/*
 * The canonical text of a context: compact JSON with sorted keys ("{}" when
 * n is 0), malloc'ed into *out (free()). The same pairs in any order give
 * the same text. Errors as sbx_kms__context_json().
 */
int sbx_kms__context_string(char **out, const sbx_kms_pair *ctx, size_t n);

/*
 * The origin of an https URL: "https://" + lower-case host + ":" + port
 * (443 when absent), malloc'ed into *out (free()). Only scheme, host and
 * port count, so two URLs of the same server compare equal with strcmp.
 * SBX_EINVAL (not https, bad host or port), SBX_ENOMEM.
 */
int sbx_kms__origin(char **out, const char *url);

/*
 * Credentials and trust of the environment (the variables of
 * sbx_kms_client_new_from_env) into o's token, cacert, fingerprint,
 * client_cert and client_key; non-NULL fields of ov (may be NULL) win. A
 * token read from SBX_KMS_TOKEN_FILE lands in *file_token (secure memory,
 * *file_token_size bytes: sbx_secret_free it after using o). SBX_EIO or
 * SBX_EINVAL for an unreadable or empty token file.
 */
int sbx_kms__env_credentials(sbx_kms_client_options *o, const sbx_kms_client_options *ov,
                             char **file_token, size_t *file_token_size);

/*
 * A comma-separated URL list (SBX_KMS_URL, SBX_KMS_FAILOVER; blanks around
 * items ignored, empty items dropped) as a malloc'ed array of *n malloc'ed
 * strings, after first when it is not NULL. list may be NULL. Free with
 * sbx_kms__urls_free. SBX_ENOMEM.
 */
int sbx_kms__urls_split(char ***out, size_t *n, const char *first, const char *list);
void sbx_kms__urls_free(char **urls, size_t n);

/* HTTP requests (attempts, over all servers) made by this thread's last call; for tests. */
unsigned sbx_kms__last_attempts(void);

#endif
