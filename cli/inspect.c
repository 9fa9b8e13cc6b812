/*
 * cli/inspect.c - sbx inspect: what a file is, without any key
 * (strongbox/inspect.h).
 */
#include "fileops_cmds.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char usage_inspect[] = "usage: sbx inspect [--json] FILE...\n";

const char help_inspect[] =
    "NAME\n"
    "    sbx inspect - describe an encrypted file without any key\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx inspect [--json] FILE...\n"
    "\n"
    "DESCRIPTION\n"
    "    Recognise each FILE's format: age v1 (binary or ASCII armored), or a\n"
    "    legacy format of the seed tools (gzip'd pyFileSec .enc archives and\n"
    "    opensslwrap bundles, `openssl enc` data, pyFileSec clear-text padding).\n"
    "    For age files, report the header's public facts: the stanza types and\n"
    "    how many of each (one per recipient), the SSH key tags (a 4-byte hash\n"
    "    that links the file to an SSH public key), the scrypt work factor of a\n"
    "    passphrase file, whether the file is padded (sbx encrypt --pad), and\n"
    "    the payload size, chunk count and plaintext size computed from the\n"
    "    file size (for a padded file, the padded size).\n"
    "\n"
    "    No key is used and nothing secret is printed. Without a key the header\n"
    "    MAC and the payload cannot be verified: a file that looks valid here\n"
    "    may still fail to decrypt.\n"
    "\n"
    "    With --json, one JSON object per FILE, one per line, with the fields\n"
    "    file, format, armored, description, file_size and, for age files,\n"
    "    valid, error, header_size, stanzas, stanza_types, ssh_keys,\n"
    "    scrypt_work_factor, padded, layout_ok, payload_size, chunks,\n"
    "    plaintext_size (see docs/inspect.md).\n"
    "\n"
    "OPTIONS\n"
    "        --json      print JSON (one object per line)\n"
    "    -h, --help      show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx inspect data.age\n"
    "    sbx inspect --json *.age | jq -r 'select(.padded) | .file'\n"
    "\n";

static int
inspect_one(const char *path, bool json)
{
    sbx_inspect_info info;
    sbx_buf out = SBX_BUF_INIT;
    int err;
    if (sbx_inspect_file(&info, path) < 0) {
        cli_error_lib(NULL);
        return CLI_FAIL;
    }
    err = json ? sbx_inspect_to_json(&info, path, &out) : sbx_inspect_to_text(&info, path, &out);
    if (err < 0) {
        cli_error_lib(NULL);
        sbx_buf_dispose(&out);
        return CLI_FAIL;
    }
    fwrite(out.ptr, 1, out.len, stdout);
    sbx_buf_dispose(&out);
    return CLI_OK;
}

int
cmd_inspect(int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {{"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bool json = false;
    int c, rc = CLI_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c == OPT_JSON) {
            json = true;
        } else if (c == 'h') {
            cli_help_print(stdout, "inspect");
            return CLI_OK;
        } else {
            return cli_bad_option("inspect", c, argv, longopts);
        }
    }
    if (optind >= argc)
        return cli_usage_errorf("inspect", "give at least one FILE");
    for (int i = optind; i < argc; i++) {
        if (!json && i > optind)
            putchar('\n');
        if (inspect_one(argv[i], json) != CLI_OK)
            rc = CLI_FAIL;
    }
    return rc;
}
