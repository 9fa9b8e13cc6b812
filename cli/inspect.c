/*
 * cli/inspect.c - sbx inspect: what a file is, without any key
 * (strongbox/inspect.h).
 *
 * --json is written here from sbx_inspect_info with the writer every other
 * --json uses (cli/json_out.h), not with sbx_inspect_to_json(): the same
 * fields in the same order, and the same rule for a FILE name that is not
 * UTF-8 (U+FFFD, plus file_base64 with the exact bytes).
 */
#include "fileops_cmds.h"
#include "json_out.h"

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

/* The age header facts of the JSON object (the fields after file_size). */
static void
json_age(cli_json *j, const sbx_inspect_info *i)
{
    cli_json_bool(j, "valid", i->valid);
    cli_json_string(j, "error", i->error[0] ? i->error : NULL);
    cli_json_uint(j, "header_size", i->header_size);
    cli_json_uint(j, "stanzas", i->stanzas);
    cli_json_object_begin(j, "stanza_types");
    for (size_t k = 0; k < i->ntypes; k++)
        cli_json_uint(j, i->types[k].name, i->types[k].count);
    cli_json_object_end(j);
    cli_json_array_begin(j, "ssh_keys");
    for (size_t k = 0; k < i->nssh; k++) {
        cli_json_object_begin(j, NULL);
        cli_json_string(j, "type", i->ssh[k].type);
        cli_json_string(j, "tag", i->ssh[k].tag);
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
    if (i->scrypt_log_n)
        cli_json_int(j, "scrypt_work_factor", i->scrypt_log_n);
    else
        cli_json_null(j, "scrypt_work_factor");
    cli_json_bool(j, "padded", i->padded);
    cli_json_bool(j, "layout_ok", i->layout_ok);
    if (i->layout_ok) {
        cli_json_uint(j, "payload_size", i->payload_size);
        cli_json_uint(j, "chunks", i->chunks);
        cli_json_uint(j, "plaintext_size", i->plaintext_size);
    }
}

/* One line per file, with the fields of docs/inspect.md. */
static void
json_report(const sbx_inspect_info *i, const char *path)
{
    cli_json j;
    cli_json_init(&j, stdout, CLI_JSON_COMPACT);
    cli_json_object_begin(&j, NULL);
    cli_json_string(&j, "file", path);
    cli_json_string(&j, "format", i->name);
    cli_json_bool(&j, "armored", i->format == SBX_INSPECT_AGE_ARMORED);
    cli_json_string(&j, "description", i->note);
    cli_json_uint(&j, "file_size", i->file_size);
    if (i->format == SBX_INSPECT_PFS_PADDED)
        cli_json_uint(&j, "pyfilesec_padding_bytes", i->pfs_pad_bytes);
    if (i->format == SBX_INSPECT_AGE || i->format == SBX_INSPECT_AGE_ARMORED)
        json_age(&j, i);
    cli_json_object_end(&j);
}

static int
inspect_one(const char *path, bool json)
{
    sbx_inspect_info info;
    sbx_buf out = SBX_BUF_INIT;
    if (sbx_inspect_file(&info, path) < 0) {
        cli_error_lib(NULL);
        return CLI_FAIL;
    }
    if (json) {
        json_report(&info, path);
        return CLI_OK;
    }
    if (sbx_inspect_to_text(&info, path, &out) < 0) {
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
    if (cli_operands_check("inspect", argc, argv) != CLI_OK)
        return CLI_USAGE;
    for (int i = optind; i < argc; i++) {
        if (!json && i > optind)
            putchar('\n');
        if (inspect_one(argv[i], json) != CLI_OK)
            rc = CLI_FAIL;
    }
    return rc;
}
