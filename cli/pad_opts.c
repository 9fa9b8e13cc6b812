/*
 * cli/pad_opts.c - the --pad / --pad-to options of sbx encrypt, and the
 * size syntax they share with sbx pad -s.
 */
#include "fileops_cmds.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
cli_parse_size(uint64_t *out, const char *s)
{
    char *end;
    unsigned shift = 0;
    *out = 0;
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    if (*end != '\0') {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (u == NULL || *u == '\0')
            return false;
        shift = 10 * (unsigned)(u - units + 1);
        end++;
        if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
            end += strlen(end);
        if (*end != '\0')
            return false;
    }
    if (v == 0 || (shift > 0 && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int
cli_pad_option(struct cli_pad_opts *p, const char *arg)
{
    p->pad = true;
    if (arg == NULL)
        return CLI_OK;
    if (!cli_parse_size(&p->bucket, arg))
        return cli_usage_errorf("encrypt",
                                "--pad-to takes a size in bytes, optionally with K, M or G "
                                "(e.g. 1M); got '%s'",
                                arg);
    return CLI_OK;
}

int
cli_pad_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *r, size_t n,
                      const sbx_age_encrypt_options *opts, const struct cli_pad_opts *p)
{
    sbx_pad_options po = SBX_PAD_OPTIONS_INIT;
    if (p == NULL || !p->pad)
        return sbx_age_encryptor_new(out, dst, r, n, opts);
    po.bucket = p->bucket;
    return sbx_pad_encryptor_new(out, dst, r, n, opts, &po);
}
