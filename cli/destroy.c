/*
 * cli/destroy.c - sbx destroy: overwrite and unlink files, and say honestly
 * what that can and cannot guarantee (strongbox/fileops.h, docs/destroy.md).
 */
#include "cli.h"
#include "destroy_seal_cmds.h"

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
    "        --json      print one JSON object per run on standard output\n"
    "    -h, --help      show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx destroy notes.txt\n"
    "    sbx destroy --passes 3 --json a.csv b.csv | python3 -m json.tool\n"
    "\n";

/* ---- JSON output ---- */

static const char *
tristate(int v, const char *yes, const char *no)
{
    return v < 0 ? "unknown" : v ? yes : no;
}

void
cli_json_destroy_fields(cli_json *j, const sbx_destroy_report *r)
{
    char magic[32];
    snprintf(magic, sizeof(magic), "0x%llx", (unsigned long long)r->fs_magic);
    cli_json_uint(j, "size", r->size);
    cli_json_uint(j, "bytes_overwritten", r->bytes_overwritten);
    cli_json_uint(j, "passes", r->passes);
    cli_json_uint(j, "inode", r->inode);
    cli_json_uint(j, "links", r->links);
    cli_json_string(j, "fs_type", r->fs_type);
    cli_json_string(j, "fs_magic", magic);
    cli_json_string(j, "device", r->device);
    cli_json_string(j, "media", tristate(r->rotational, "rotational", "ssd"));
    cli_json_string(j, "discard", tristate(r->discard, "yes", "no"));
    cli_json_string(j, "mount_point", r->mount_point);
    cli_json_bool(j, "overwritten", r->overwritten);
    cli_json_bool(j, "unlinked", r->unlinked);
    cli_json_bool(j, "reliable", r->reliable);
    cli_json_fixed(j, "seconds", r->seconds, 4);
    cli_json_array_begin(j, "warnings");
    for (size_t i = 0; i < r->nwarnings; i++)
        cli_json_string(j, NULL, r->warnings[i]);
    cli_json_array_end(j);
}

void
cli_json_error_fields(cli_json *j, int err)
{
    cli_json_bool(j, "ok", err == 0);
    if (err < 0) {
        cli_json_string(j, "error", sbx_error_last()->message);
        cli_json_string(j, "error_code", sbx_error_name(err));
    }
}

static void
json_report(cli_json *j, const char *path, int err, const sbx_destroy_report *r)
{
    cli_json_object_begin(j, NULL);
    cli_json_string(j, "file", path);
    cli_json_error_fields(j, err);
    cli_json_destroy_fields(j, r);
    cli_json_object_end(j);
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
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"passes", required_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    cli_json j;
    bool json = false;
    int c, passes, rc = CLI_OK;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:n:fh", longopts, NULL)) != -1) {
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
        case OPT_JSON:
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
    if (cli_operands_check("destroy", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (json) {
        cli_json_init(&j, stdout, CLI_JSON_SPACED);
        cli_json_object_begin(&j, NULL);
        cli_json_string(&j, "command", "destroy");
        cli_json_array_begin_lines(&j, "results");
    }
    for (int i = optind; i < argc; i++) {
        sbx_destroy_report r;
        int err = sbx_destroy(&r, argv[i], &o);
        if (err < 0)
            rc = CLI_FAIL;
        if (json) {
            if (err < 0)
                cli_errorf("%s", sbx_error_last()->message);
            json_report(&j, argv[i], err, &r);
        } else if (err < 0) {
            cli_errorf("%s", sbx_error_last()->message);
        } else {
            human_report(argv[i], &r);
        }
    }
    if (json) {
        cli_json_array_end(&j);
        cli_json_bool(&j, "ok", rc == CLI_OK);
        cli_json_object_end(&j);
    }
    return rc;
}
