/*
 * cli/pad.c - sbx pad / sbx unpad: the seed's clear-text length padding
 * (pyFileSec pad/unpad, spec/seeds.md §1.8), files replaced atomically.
 */
#include "fileops_cmds.h"
#include "json_out.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char usage_pad[] = "usage: sbx pad [-s SIZE] [-o OUTPUT] [--json] FILE\n";

const char help_pad[] =
    "NAME\n"
    "    sbx pad - pad a file in the clear to a fixed size (pyFileSec format)\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx pad [-s SIZE] [-o OUTPUT] [--json] FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    Append NUL bytes and a 32-byte trailer so that FILE is exactly SIZE\n"
    "    bytes (default 16384), as pyFileSec's pad() does: files of different\n"
    "    lengths padded to the same SIZE have the same length. The trailer is\n"
    "    \"pad=\" + 10 digits (bytes appended) + NUL + \"pyFileSec_padded\" + NUL.\n"
    "    Existing padding is removed first, so sizes do not add up. A SIZE\n"
    "    below 128 is raised to 128; the limit is 8 GiB. The command fails when\n"
    "    the data plus the trailer does not fit below SIZE.\n"
    "\n"
    "    This padding is plain text, not authenticated, and visible to anyone\n"
    "    who can read the file: encrypt afterwards, or better, use\n"
    "    sbx encrypt --pad, which pads inside the encrypted payload.\n"
    "\n"
    "    SIZE 0 removes padding if there is any (no error otherwise), and -1\n"
    "    removes it and fails when there is none (pyFileSec's pad(0), pad(-1)).\n"
    "    FILE is replaced atomically (temporary file, fsync, rename), keeping\n"
    "    its permissions; -o writes OUTPUT instead.\n"
    "\n"
    "OPTIONS\n"
    "    -s, --size SIZE     target size in bytes; K, M, G suffixes (KiB...) allowed\n"
    "    -o, --output FILE   write the result to FILE instead of replacing FILE\n"
    "        --json          print the result as JSON\n"
    "    -h, --help          show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx pad notes.txt                  # 16384 bytes\n"
    "    sbx pad -s 1M -o padded.bin data.bin\n"
    "    sbx pad notes.txt && sbx encrypt -r age1... -o notes.age notes.txt\n"
    "\n";

const char usage_unpad[] = "usage: sbx unpad [--lenient] [-o OUTPUT] [--json] FILE\n";

const char help_unpad[] =
    "NAME\n"
    "    sbx unpad - remove pyFileSec padding, restoring the exact original bytes\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx unpad [--lenient] [-o OUTPUT] [--json] FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    Remove the padding written by sbx pad or pyFileSec. The padding is\n"
    "    checked strictly: the 32-byte trailer must be exact (10 digits, the\n"
    "    marker, the NUL bytes), the count must fit in the file, and every\n"
    "    filler byte must be NUL; otherwise nothing is changed and the command\n"
    "    fails. A file without padding is an error unless --lenient is given.\n"
    "    FILE is replaced atomically, keeping its permissions.\n"
    "\n"
    "OPTIONS\n"
    "        --lenient       a file without padding is left as it is (exit 0)\n"
    "    -o, --output FILE   write the result to FILE instead of replacing FILE\n"
    "        --json          print the result as JSON\n"
    "    -h, --help          show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx unpad notes.txt\n"
    "    sbx unpad -o original.bin padded.bin\n"
    "\n";

struct pad_args {
    const char *output, *input;
    bool json, lenient, size_given;
    int special; /* 0, or the pyFileSec special sizes 0 and -1 */
    uint64_t size;
};

static int
do_unpad(const struct pad_args *a, bool strict, const char *method)
{
    uint64_t removed = 0;
    const char *out = a->output ? a->output : a->input;
    if (sbx_pad_pfs_unpad_file(a->input, out, strict, &removed) < 0) {
        cli_error_lib(NULL);
        cli_hintf("%s was not changed", out);
        return CLI_FAIL;
    }
    if (a->json) {
        cli_json j;
        cli_json_init(&j, stdout, CLI_JSON_COMPACT);
        cli_json_object_begin(&j, NULL);
        cli_json_string(&j, "method", method);
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "file", out);
        cli_json_uint(&j, "removed", removed);
        cli_json_null(&j, "padding");
        cli_json_object_end(&j);
    } else if (removed > 0) {
        printf("unpadded %s: removed %llu bytes of padding\n", out, (unsigned long long)removed);
    } else {
        printf("%s has no padding; unchanged\n", a->input);
    }
    return CLI_OK;
}

static int
do_pad(const struct pad_args *a)
{
    uint64_t size = 0;
    const char *out = a->output ? a->output : a->input;
    if (sbx_pad_pfs_file(a->input, out, a->size, &size) < 0) {
        cli_error_lib(NULL);
        cli_hintf("%s was not changed", out);
        return CLI_FAIL;
    }
    if (a->json) {
        cli_json j;
        cli_json_init(&j, stdout, CLI_JSON_COMPACT);
        cli_json_object_begin(&j, NULL);
        cli_json_string(&j, "method", "pad");
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "file", out);
        cli_json_uint(&j, "size", size);
        cli_json_object_end(&j);
    } else {
        printf("padded %s to %llu bytes\n", out, (unsigned long long)size);
    }
    return CLI_OK;
}

static int
parse(struct pad_args *a, const char *cmd, int argc, char **argv, bool *help)
{
    enum { OPT_JSON = 256, OPT_LENIENT };
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'}, {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, OPT_JSON},  {"lenient", no_argument, NULL, OPT_LENIENT},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    bool is_pad = strcmp(cmd, "pad") == 0;
    int c;
    a->size = SBX_PAD_PFS_DEFAULT_SIZE;
    optind = 0;
    while ((c = getopt_long(argc, argv, is_pad ? "+:s:o:h" : "+:o:h", longopts, NULL)) != -1) {
        if (c == 's' && is_pad) {
            if (strcmp(optarg, "0") == 0 || strcmp(optarg, "-1") == 0)
                a->special = strcmp(optarg, "0") == 0 ? 1 : -1;
            else if (!cli_parse_size(&a->size, optarg))
                return cli_usage_errorf(cmd,
                                        "-s takes a size in bytes (K, M, G suffixes), or 0 "
                                        "or -1 to remove padding; got '%s'",
                                        optarg);
        } else if (c == 'o') {
            a->output = optarg;
        } else if (c == OPT_JSON) {
            a->json = true;
        } else if (c == OPT_LENIENT && !is_pad) {
            a->lenient = true;
        } else if (c == 'h') {
            *help = true;
            return CLI_OK;
        } else {
            return cli_bad_option(cmd, c == 's' || c == OPT_LENIENT ? '?' : c, argv, longopts);
        }
    }
    if (cli_operands_check(cmd, argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (argc - optind != 1)
        return cli_usage_errorf(cmd, "give exactly one FILE (got %d)", argc - optind);
    a->input = argv[optind];
    return CLI_OK;
}

int
cmd_pad(int argc, char **argv)
{
    struct pad_args a = {0};
    bool help = false;
    int rc = parse(&a, "pad", argc, argv, &help);
    if (rc != CLI_OK || help) {
        if (help)
            cli_help_print(stdout, "pad");
        return rc;
    }
    if (a.special != 0)
        return do_unpad(&a, a.special < 0, "unpad");
    return do_pad(&a);
}

int
cmd_unpad(int argc, char **argv)
{
    struct pad_args a = {0};
    bool help = false;
    int rc = parse(&a, "unpad", argc, argv, &help);
    if (rc != CLI_OK || help) {
        if (help)
            cli_help_print(stdout, "unpad");
        return rc;
    }
    return do_unpad(&a, !a.lenient, "unpad");
}
