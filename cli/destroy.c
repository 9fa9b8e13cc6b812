/*
 * cli/destroy.c - sbx destroy: overwrite and unlink files, and say honestly
 * what that can and cannot guarantee (strongbox/fileops.h, docs/destroy.md).
 */
#include "cli.h"
#include "fileops_json.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

const char usage_destroy[] = "usage: sbx destroy [--passes N] [--force] [--json] FILE...\n";

const char help_destroy[] =
    "NAME\n"
    "    sbx destroy - overwrite and remove files, reporting what cannot be guaranteed\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx destroy [--passes N] [--force] [--json] FILE...\n"
    "\n"
    "DESCRIPTION\n"
    "    Overwrite each FILE in place with random data (one pass by default),\n"
    "    sync it to disk, rename it to a random name in its directory, truncate\n"
    "    it, unlink it and sync the directory. Then report what was done: bytes\n"
    "    overwritten, passes, inode, link count, filesystem type, whether the\n"
    "    device is a rotating disk or flash (SSD) and supports TRIM, and the\n"
    "    time taken.\n"
    "\n"
    "    Overwriting in place reaches the old bytes only when the filesystem\n"
    "    writes in place and the device does not remap writes. On copy-on-write\n"
    "    or log-structured filesystems (btrfs, ZFS, F2FS), overlay filesystems,\n"
    "    SSDs and other flash storage, tmpfs (swap) and network filesystems the\n"
    "    old data may survive; sbx destroy says so in a warning and never claims\n"
    "    a secure deletion. Backups and snapshots are never reached. The reliable\n"
    "    way is to encrypt sensitive files from the start (sbx seal).\n"
    "\n"
    "    A symbolic link is refused (never followed), as is anything that is not\n"
    "    a regular file. A file with other hard links is refused: overwriting\n"
    "    would destroy the data under its other names too.\n"
    "\n"
    "OPTIONS\n"
    "    -n, --passes N  overwrite N times (1..35; default 1: one pass of random\n"
    "                    data is as good as more on any modern disk)\n"
    "    -f, --force     for a file with other hard links: remove only this name,\n"
    "                    leaving the data (not overwritten) to the other names\n"
    "    -j, --json      print one JSON object per run on standard output\n"
    "    -h, --help      show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx destroy notes.txt\n"
    "    sbx destroy --passes 3 --json a.csv b.csv | python3 -m json.tool\n"
    "\n";

/* ---- JSON output ---- */

/* Length of the valid UTF-8 sequence at c (1-4), or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *c)
{
    size_t n = c[0] < 0x80             ? 1
               : (c[0] & 0xE0) == 0xC0 ? 2
               : (c[0] & 0xF0) == 0xE0 ? 3
               : (c[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && c[0] < 0xC2) || (n == 4 && c[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((c[i] & 0xC0) != 0x80)
            return 0;
    }
    if ((n == 3 && c[0] == 0xE0 && c[1] < 0xA0) || (n == 3 && c[0] == 0xED && c[1] >= 0xA0) ||
        (n == 4 && c[0] == 0xF0 && c[1] < 0x90) || (n == 4 && c[0] == 0xF4 && c[1] >= 0x90))
        return 0; // overlong, surrogate, above U+10FFFF
    return n;
}

void
cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_len(c);
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\u%04x", *c);
        else if (n == 0)
            fputs("\\ufffd", f); // not UTF-8 (a file name in another encoding)
        else
            fwrite(c, 1, n, f);
        c += n == 0 ? 1 : n;
    }
    fputc('"', f);
}

static const char *
tristate(int v, const char *yes, const char *no)
{
    return v < 0 ? "unknown" : v ? yes : no;
}

void
cli_json_destroy_fields(FILE *f, const sbx_destroy_report *r)
{
    fprintf(f,
            "\"size\": %llu, \"bytes_overwritten\": %llu, \"passes\": %u, \"inode\": %llu, "
            "\"links\": %llu, \"fs_type\": ",
            (unsigned long long)r->size, (unsigned long long)r->bytes_overwritten, r->passes,
            (unsigned long long)r->inode, (unsigned long long)r->links);
    cli_json_str(f, r->fs_type);
    fprintf(f, ", \"fs_magic\": \"0x%llx\", \"device\": ", (unsigned long long)r->fs_magic);
    cli_json_str(f, r->device);
    fprintf(f, ", \"media\": \"%s\", \"discard\": \"%s\", \"mount_point\": ",
            tristate(r->rotational, "rotational", "ssd"), tristate(r->discard, "yes", "no"));
    cli_json_str(f, r->mount_point);
    fprintf(f,
            ", \"overwritten\": %s, \"unlinked\": %s, \"reliable\": %s, \"seconds\": %.4f, "
            "\"warnings\": [",
            r->overwritten ? "true" : "false", r->unlinked ? "true" : "false",
            r->reliable ? "true" : "false", r->seconds);
    for (size_t i = 0; i < r->nwarnings; i++) {
        if (i > 0)
            fputs(", ", f);
        cli_json_str(f, r->warnings[i]);
    }
    fputc(']', f);
}

void
cli_json_error_fields(FILE *f, int err)
{
    fprintf(f, "\"ok\": %s", err == 0 ? "true" : "false");
    if (err < 0) {
        fputs(", \"error\": ", f);
        cli_json_str(f, sbx_error_last()->message);
        fputs(", \"error_code\": ", f);
        cli_json_str(f, sbx_error_name(err));
    }
}

static void
json_report(FILE *f, const char *path, int err, const sbx_destroy_report *r)
{
    fputs("    {\"file\": ", f);
    cli_json_str(f, path);
    fputs(", ", f);
    cli_json_error_fields(f, err);
    fputs(", ", f);
    cli_json_destroy_fields(f, r);
    fputc('}', f);
}

static void
human_report(const char *path, const sbx_destroy_report *r)
{
    if (r->overwritten)
        printf("%s: overwritten (%u pass%s, %llu bytes) and removed in %.4f s\n", path, r->passes,
               r->passes == 1 ? "" : "es", (unsigned long long)r->bytes_overwritten, r->seconds);
    else
        printf("%s: name removed, data NOT overwritten (%.4f s)\n", path, r->seconds);
    printf("  inode %llu, %llu link%s, filesystem %s (device %s, %s, TRIM %s), mount %s\n",
           (unsigned long long)r->inode, (unsigned long long)r->links, r->links == 1 ? "" : "s",
           r->fs_type, r->device, tristate(r->rotational, "rotational disk", "SSD/flash"),
           tristate(r->discard, "yes", "no"), r->mount_point[0] ? r->mount_point : "?");
    for (size_t i = 0; i < r->nwarnings; i++)
        printf("  warning: %s\n", r->warnings[i]);
    if (r->overwritten && r->reliable)
        printf("  no known reason for the old blocks to survive here, as far as the kernel "
               "reports the device (backups and snapshots elsewhere are not reached)\n");
    else if (r->overwritten)
        printf("  the old data may survive on this storage: not a guaranteed deletion\n");
}

int
cmd_destroy(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"passes", required_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    bool json = false;
    int c, passes, rc = CLI_OK;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:n:fjh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!cli_parse_int(&passes, optarg, 1, SBX_DESTROY_MAX_PASSES))
                return cli_usage_errorf("destroy", "--passes takes a number from 1 to %d",
                                        SBX_DESTROY_MAX_PASSES);
            o.passes = (unsigned)passes;
            break;
        case 'f':
            o.force = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_help_print(stdout, "destroy");
            return CLI_OK;
        default:
            return cli_bad_option("destroy", c, argv, longopts);
        }
    }
    if (optind >= argc)
        return cli_usage_errorf("destroy", "give the files to destroy");
    if (json)
        printf("{\"command\": \"destroy\", \"results\": [\n");
    for (int i = optind; i < argc; i++) {
        sbx_destroy_report r;
        int err = sbx_destroy(&r, argv[i], &o);
        if (err < 0)
            rc = CLI_FAIL;
        if (json) {
            if (err < 0)
                cli_errorf("%s", sbx_error_last()->message);
            json_report(stdout, argv[i], err, &r);
            fputs(i + 1 < argc ? ",\n" : "\n", stdout);
        } else if (err < 0) {
            cli_errorf("%s", sbx_error_last()->message);
        } else {
            human_report(argv[i], &r);
        }
    }
    if (json)
        printf("], \"ok\": %s}\n", rc == CLI_OK ? "true" : "false");
    return rc;
}
