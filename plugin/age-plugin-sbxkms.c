/*
 * plugin/age-plugin-sbxkms.c - the key server as an age plugin. age (or
 * any client of the C2SP age-plugin protocol) runs it with
 * --age-plugin=recipient-v1 or identity-v1; the protocol itself is
 * sbx_kms_age_plugin_serve() in libstrongbox-kms.
 */
#include "strongbox/strongbox.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

static const char usage[] =
    "usage: age-plugin-sbxkms --age-plugin=recipient-v1|identity-v1\n"
    "\n"
    "The Strongbox key server as an age plugin: age runs it, you do not.\n"
    "  age -r \"$(sbx kms age-recipient https://HOST:PORT/KEY)\" FILE > FILE.age\n"
    "  sbx kms age-identity > kms.id; age -d -i kms.id FILE.age\n"
    "The token and the trust come from SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE (an absolute\n"
    "path: the plugin runs in another directory), SBX_KMS_CACERT or SBX_KMS_FINGERPRINT,\n"
    "and the servers allowed to get the token from SBX_KMS_URL or the identity.\n"
    "See docs/plugins.md and `sbx help kms`.\n";

int
main(int argc, char **argv)
{
    if (argc == 2 && strncmp(argv[1], "--age-plugin=", 13) == 0) {
        // As sbx: a secure heap when the system gives one; never a core dump (keys, token).
        if (sbx_init() < 0 && getenv("SBX_DEBUG") != NULL)
            fprintf(stderr, "age-plugin-sbxkms: %s\n", sbx_error_last()->message);
        if (sbx_disable_core_dumps() < 0) {
            fprintf(stderr, "age-plugin-sbxkms: %s\n", sbx_error_last()->message);
            return 1;
        }
        if (sbx_kms_age_plugin_serve(argv[1] + 13, STDIN_FILENO, STDOUT_FILENO) < 0) {
            fprintf(stderr, "age-plugin-sbxkms: %s\n", sbx_error_last()->message);
            return 1;
        }
        return 0;
    }
    bool help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    fputs(usage, help ? stdout : stderr);
    return help ? 0 : 2;
}
