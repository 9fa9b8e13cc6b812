/*
 * fuzz/kms_url_fuzzer.c - key URLs (src/kms/client.c), which arrive from
 * untrusted places: the sbx-kms stanza of an age file, the keyref inside an
 * encrypted database record.
 *
 * Input: arbitrary bytes, read as a NUL-terminated URL (bytes after a NUL
 * are ignored). Properties:
 *  - sbx_kms_parse_key_url and sbx_kms__origin never crash, leak or read out
 *    of bounds;
 *  - when parse accepts: the base starts with "https://", has no trailing
 *    '/', the name is a valid key name, and base + "/" + name parses again
 *    to the same two parts (one meaning per URL);
 *  - the origin of an accepted URL starts with "https://" and is itself
 *    accepted by sbx_kms__origin unchanged (normalisation is idempotent).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/kms.h"
#include "kms/client.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *url = malloc(size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';

    char *base = NULL, *name = NULL;
    if (sbx_kms_parse_key_url(url, &base, &name) == 0) {
        FUZZ_CHECK(strncmp(base, "https://", 8) == 0, "base is https");
        size_t bl = strlen(base);
        FUZZ_CHECK(bl > 8 && base[bl - 1] != '/', "base has a host and no trailing slash");
        FUZZ_CHECK(sbx_kms_key_name_valid(name), "name is a valid key name");

        size_t nl = strlen(name);
        char *again = malloc(bl + nl + 2);
        FUZZ_CHECK(again != NULL, "malloc");
        memcpy(again, base, bl);
        again[bl] = '/';
        memcpy(again + bl + 1, name, nl + 1);
        char *b2 = NULL, *n2 = NULL;
        FUZZ_CHECK(sbx_kms_parse_key_url(again, &b2, &n2) == 0, "base/name parses again");
        FUZZ_CHECK(strcmp(b2, base) == 0 && strcmp(n2, name) == 0, "re-parse agrees");
        free(b2);
        free(n2);
        free(again);

        char *o1 = NULL, *o2 = NULL;
        if (sbx_kms__origin(&o1, url) == 0) {
            FUZZ_CHECK(strncmp(o1, "https://", 8) == 0, "origin is https");
            FUZZ_CHECK(sbx_kms__origin(&o2, o1) == 0 && strcmp(o1, o2) == 0,
                       "origin is idempotent");
        }
        free(o1);
        free(o2);
    }
    free(base);
    free(name);

    char *o = NULL;
    (void)sbx_kms__origin(&o, url);
    free(o);
    free(url);
    return 0;
}
