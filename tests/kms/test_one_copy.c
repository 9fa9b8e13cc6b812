/*
 * tests/kms/test_one_copy.c - a process holds one copy of libstrongbox: a
 * program linked with the shared libstrongbox (as sbx is) that loads
 * libstrongbox-kms at run time (as sbx does) sees the sbx-kms stanza type
 * registered into its own copy, and the process maps libstrongbox once.
 *
 *   test_kms_one_copy PATH-OF-libstrongbox-kms.so
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <strongbox/sys/age.h>

static int
count_mappings(const char *name)
{
    char line[4096], last[4096] = "";
    int n = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *path = strchr(line, '/');
        if (path == NULL || strstr(path, name) == NULL)
            continue;
        if (strcmp(path, last) != 0) // one file is mapped as several segments
            n++;
        snprintf(last, sizeof(last), "%s", path);
    }
    fclose(f);
    return n;
}

int
main(int argc, char **argv)
{
    int failed = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBSTRONGBOX_KMS\n", argv[0]);
        return 2;
    }
    if (sbx_age_stanza_type_find("sbx-kms") != NULL) {
        fprintf(stderr, "FAIL: sbx-kms registered before libstrongbox-kms was loaded\n");
        failed = 1;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "FAIL: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    if (sbx_age_stanza_type_find("sbx-kms") == NULL) {
        fprintf(stderr, "FAIL: loading libstrongbox-kms did not register sbx-kms into this "
                        "process's libstrongbox (a second copy?)\n");
        failed = 1;
    }
    int copies = count_mappings("/libstrongbox.so");
    if (copies != 1) {
        fprintf(stderr, "FAIL: libstrongbox.so is mapped %d times (expected once)\n", copies);
        failed = 1;
    }
    if (!failed)
        printf("ok: one libstrongbox, sbx-kms registered into it by libstrongbox-kms\n");
    return failed;
}
