/*
 * fuzz/audit_verify_fuzzer.c - the key server's audit verification
 * (server/audit.c: kms_audit_verify_series), which reads log files an
 * attacker may have written.
 *
 * Input: up to 4 segments separated by the byte 0x1e; each segment is its
 * head file's text up to the first newline (included), then the log's bytes.
 * They are written as DIR/audit.log.000001 ... and DIR/audit.log (the last),
 * each with its .head, and verified as one series under the audit key of the
 * --dev root key (0x00..0x1f; the seeds are real logs of `sbx kms serve
 * --dev --data-dir DIR`), with and without partial. Properties: no crash,
 * leak or out-of-bounds read; the result is 0, SBX_EAUTH, SBX_EIO or
 * SBX_ENOKEY with a message; an intact series reports at least one line per
 * non-empty segment.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "fuzz_util.h"
#include "strongbox/error.h"

#define MAX_SEGMENTS 4

static void
put(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (n > 0 && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    static uint8_t key[32];
    char paths[MAX_SEGMENTS][128], head[4 * 128 + 8];
    const char *list[MAX_SEGMENTS];
    size_t n = 0, at = 0;
    if (dir[0] == '\0') {
        uint8_t root[32];
        for (int i = 0; i < 32; i++)
            root[i] = (uint8_t)i;
        snprintf(dir, sizeof dir, "/tmp/sbx-audit-fuzz.XXXXXX");
        if (mkdtemp(dir) == NULL || kms_audit_key_derive(key, root) != 0)
            abort();
    }
    while (n < MAX_SEGMENTS && at <= size) {
        const uint8_t *p = data + at, *end = memchr(p, 0x1e, size - at);
        size_t len = end != NULL ? (size_t)(end - p) : size - at;
        const uint8_t *nl = memchr(p, '\n', len);
        size_t hlen = nl != NULL ? (size_t)(nl - p) + 1 : len;
        snprintf(paths[n], sizeof paths[n], "%s/audit.log.%06zu", dir, n + 1);
        list[n] = paths[n];
        snprintf(head, sizeof head, "%s.head", paths[n]);
        put(paths[n], p + hlen, len - hlen);
        put(head, p, hlen);
        n++;
        at += len + 1;
        if (end == NULL)
            break;
    }
    for (int partial = 0; partial < 2; partial++) {
        kms_audit_report rep;
        int err =
            kms_audit_verify_series(list, n, key, KMS_AUDIT_UNKEYED_PREFIX, partial != 0, &rep);
        FUZZ_CHECK(err == 0 || err == SBX_EAUTH || err == SBX_EIO || err == SBX_ENOKEY,
                   "verify: a documented result");
        if (err != 0)
            FUZZ_CHECK(sbx_error_last()->message[0] != '\0', "verify: a message");
        else
            FUZZ_CHECK(rep.segments == n && rep.lines >= rep.unkeyed, "verify: a sane report");
        sbx_error_clear();
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(head, sizeof head, "%s.head", paths[i]);
        unlink(paths[i]);
        unlink(head);
    }
    return 0;
}
