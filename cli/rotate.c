/*
 * cli/rotate.c - sbx rotate: give an age file new recipients, in place and
 * atomically (strongbox/rotate.h).
 *
 * Old identities: the -i files, then a passphrase identity whose callback
 * reads --passphrase-file or the terminal, only when the file is encrypted
 * to a passphrase. New recipients: -r, -R, or one new passphrase
 * (--new-passphrase-file, or -p on the terminal), which must be alone.
 * A key server identity comes last among the old identities, so a file
 * encrypted with --kms rotates without -i; --kms URL adds a new key server
 * recipient. --kms-rewrap only rewraps the file's sbx-kms stanzas to their
 * keys' latest versions (strongbox/rotate.h, sbx_rotate_kms_rewrap).
 */
#include "fileops_cmds.h"
#include "json_out.h"
#include "recipients.h"
#include "kms_opts.h"
#include "kms_dl.h"

#include <dirent.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

const char usage_rotate[] =
    "usage: sbx rotate -i OLD_IDENTITY... (-r RECIPIENT | -R FILE)... [--rekey] [-o OUTPUT]\n"
    "                  [--json] FILE\n"
    "       sbx rotate [-i OLD_IDENTITY]... [--passphrase-file F]\n"
    "                  (-p | --new-passphrase-file F | -r ... | -R ...) [--rekey] FILE\n"
    "       sbx rotate --kms-rewrap [--kms-url URL]... [-o OUTPUT] [--json] FILE\n";

const char help_rotate[] =
    "NAME\n"
    "    sbx rotate - give an age file new recipients (key rotation)\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx rotate -i OLD_IDENTITY... (-r RECIPIENT | -R FILE)... [--rekey]\n"
    "               [-o OUTPUT] [--json] FILE\n"
    "    sbx rotate [--passphrase-file F] (-p | --new-passphrase-file F) FILE\n"
    "    sbx rotate [-i OLD_IDENTITY]... (--kms URL | -r RECIPIENT)... FILE\n"
    "    sbx rotate --kms-rewrap [--kms-url URL]... [-o OUTPUT] [--json] FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    Open FILE with an old identity and replace its recipients with the new\n"
    "    ones. By default only the header changes: the file key is unwrapped and\n"
    "    wrapped again to each new recipient, a new header MAC is written, and\n"
    "    the encrypted payload is copied byte for byte, never decrypted, so the\n"
    "    cost does not depend on what the file holds. After rotation the old\n"
    "    identities no longer open the file.\n"
    "\n"
    "    A rewrap keeps the file key: anyone who ever saw it (for example from a\n"
    "    decryption on a compromised machine) can still read the file. --rekey\n"
    "    decrypts and re-encrypts the whole payload under a fresh file key; it\n"
    "    also verifies every chunk.\n"
    "\n"
    "    FILE is replaced atomically (or OUTPUT written, with -o): the new file\n"
    "    goes to an unnamed file in the same directory, is synced, linked as\n"
    "    .FILE.tmp-XXXXXXXXXXXX and renamed over FILE, and the directory is\n"
    "    synced. If sbx is killed, FILE is either the old or the new file,\n"
    "    never neither; a run killed during the rename (or on a filesystem\n"
    "    without unnamed files) may leave its temporary file, which is never\n"
    "    reused: sbx rotate warns about such files and you may delete them.\n"
    "    A symbolic link FILE is followed; a symbolic link OUTPUT is refused.\n"
    "\n"
    "    Rules of age: a passphrase must be the only recipient. A file padded\n"
    "    with sbx encrypt --pad stays padded and cannot be rotated to a\n"
    "    passphrase. Armored files stay armored.\n"
    "\n"
    "    Key server files (sbx encrypt --kms): the old file key is unwrapped\n"
    "    through the key server named in the file when no -i opens it, with the\n"
    "    credentials and trust of sbx decrypt (SBX_KMS_TOKEN_FILE, SBX_KMS_CACERT,\n"
    "    SBX_KMS_URL or the --kms-* options); --kms URL makes a new key server\n"
    "    recipient, as in sbx encrypt.\n"
    "\n"
    "    --kms-rewrap keeps the recipients and only brings each sbx-kms stanza\n"
    "    to its key's latest version after the key was rotated on the server\n"
    "    (POST /v1/keys/NAME/rotate): the server rewraps the stanza's ciphertext\n"
    "    without returning the file key, so the file opens after the old key\n"
    "    versions are retired (min_decryption_version) or destroyed. The header\n"
    "    MAC is keyed by the file key, so the file key is unwrapped once (through\n"
    "    the server) to write the new MAC; every other stanza is kept byte for\n"
    "    byte and the payload is copied unchanged.\n"
    "\n"
    "OPTIONS\n"
    "    -i, --identity FILE          an old identity file; repeatable\n"
    "        --passphrase-file F      the old passphrase, if FILE is encrypted to one\n"
    "                                 (else asked on the terminal when needed)\n"
    "    -r, --recipient RECIPIENT    a new recipient (age1..., ssh-ed25519 ...,\n"
    "                                 ssh-rsa ...); repeatable\n"
    "    -R, --recipients-file FILE   new recipients, one per line; repeatable\n"
    "    -p, --passphrase             the new recipient is a passphrase typed twice\n"
    "                                 on the terminal\n"
    "        --new-passphrase-file F  the new passphrase, first line of F\n"
    "        --rekey                  re-encrypt the payload under a fresh file key\n"
    "        --kms URL                a new key server recipient\n"
    "                                 https://HOST:PORT/KEY; repeatable\n"
    "        --kms-rewrap             rewrap the sbx-kms stanzas to their keys'\n"
    "                                 latest versions; no new recipients\n"
    "        --kms-url URL            a key server the token may be sent to, to open\n"
    "                                 the file (default: SBX_KMS_URL); repeatable\n"
    "        --kms-token-file FILE    the key server token, first line of FILE\n"
    "                                 (default: SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE)\n"
    "        --kms-cacert FILE        trust this CA for the key server\n"
    "                                 (default: SBX_KMS_CACERT, else the system's)\n"
    "        --kms-fingerprint FP     pin the key server certificate's SHA-256\n"
    "                                 (default: SBX_KMS_FINGERPRINT)\n"
    "    -o, --output OUTPUT          write OUTPUT instead of replacing FILE\n"
    "        --json                   print the result as JSON\n"
    "    -h, --help                   show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx rotate -i old-key.txt -r age1new... data.age\n"
    "    sbx rotate -i old-key.txt -R team.txt --rekey data.age\n"
    "    sbx rotate --passphrase-file old.txt -r age1... secrets.age\n"
    "    sbx rotate -i key.txt --new-passphrase-file new.txt -o copy.age data.age\n"
    "    sbx rotate -i key.txt --kms https://kms.example:8443/backups data.age\n"
    "    SBX_KMS_TOKEN_FILE=~/.kms-token SBX_KMS_URL=https://kms.example:8443 \\\n"
    "        sbx rotate --kms-rewrap data.age\n"
    "\n";

struct rot_args {
    const char **ids, **recips, **rfiles;
    size_t nids, nr, nrf;
    const char *pass_file, *new_pass_file, *output, *input;
    bool new_pass, rekey, json, kms_rewrap;
    struct cli_kms_opts kms;
};

struct pass_ctx {
    const char *file;
    bool failed;
    char err[256];
};

static int
ask_passphrase(sbx_buf *out, void *payload)
{
    struct pass_ctx *p = payload;
    int rc = cli_read_passphrase(out, p->file, false, p->err, sizeof(p->err));
    p->failed = rc < 0;
    return rc;
}

static int
load_identities(sbx_identity ***ids, size_t *n, struct rot_args *a, struct pass_ctx *pass)
{
    for (size_t i = 0; i < a->nids; i++) {
        if (cli_load_identities_pass(ids, n, a->ids[i], a->pass_file) < 0)
            return SBX_EFORMAT;
    }
    if (*ids == NULL && (*ids = calloc(1, sizeof(**ids))) == NULL) {
        cli_errorf("out of memory");
        return SBX_ENOMEM;
    }
    if (sbx_identity_scrypt_new_cb(&(*ids)[*n], ask_passphrase, pass, 0) < 0) {
        cli_error_lib(NULL);
        return SBX_EINVAL;
    }
    (*n)++;
    return cli_kms_add_identity(ids, n, &a->kms, a->kms_rewrap);
}

static int
load_recipients(sbx_recipient ***list, size_t *n, struct rot_args *a)
{
    struct cli_recipient_args ra = {a->recips, a->nr, a->rfiles, a->nrf, NULL, 0, &a->kms, false};
    if (a->new_pass)
        return cli_recipients_add_passphrase(list, n, a->new_pass_file, 0, "new passphrase");
    return cli_recipients_load(list, n, &ra);
}

/* Warn about temporary files left by killed runs (".NAME.tmp-" + 12 hex digits). */
static void
warn_stale_temps(const char *target)
{
    char *d = strdup(target), *b = strdup(target), prefix[512];
    DIR *dir = NULL;
    struct dirent *e;
    size_t found = 0;
    if (d == NULL || b == NULL)
        goto out;
    snprintf(prefix, sizeof(prefix), ".%s.tmp-", basename(b));
    if ((dir = opendir(dirname(d))) == NULL)
        goto out;
    while ((e = readdir(dir)) != NULL) {
        size_t pl = strlen(prefix);
        if (strncmp(e->d_name, prefix, pl) == 0 && strlen(e->d_name) == pl + 12)
            found++;
    }
    if (found > 0)
        cli_warnf("%zu temporary file(s) %s* next to %s were left by an interrupted run; they "
                  "are not used and can be deleted",
                  found, prefix, target);
out:
    if (dir != NULL)
        closedir(dir);
    free(d);
    free(b);
}

static void
print_result(const struct rot_args *a, const sbx_rotate_report *r)
{
    const char *target = a->output ? a->output : a->input;
    if (a->json) {
        cli_json j;
        cli_json_init(&j, stdout, CLI_JSON_COMPACT);
        cli_json_object_begin(&j, NULL);
        cli_json_string(&j, "method", "rotate");
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "file", target);
        cli_json_string(&j, "mode", a->kms_rewrap ? "kms-rewrap" : r->rekeyed ? "rekey" : "rewrap");
        cli_json_bool(&j, "armored", r->armored);
        cli_json_bool(&j, "padded", r->padded);
        cli_json_uint(&j, "old_stanzas", r->old_stanzas);
        cli_json_uint(&j, "new_stanzas", r->new_stanzas);
        cli_json_uint(&j, "payload_bytes", r->payload_len);
        cli_json_object_end(&j);
        return;
    }
    if (a->kms_rewrap)
        printf("rotated %s: sbx-kms stanza(s) rewrapped to the key's latest version (header "
               "%llu -> %llu bytes, %zu stanzas kept), %llu payload bytes copied unchanged\n",
               target, (unsigned long long)r->old_header_len, (unsigned long long)r->new_header_len,
               r->new_stanzas, (unsigned long long)r->payload_len);
    else if (r->rekeyed)
        printf("rotated %s: payload re-encrypted under a new file key (%llu plaintext bytes), "
               "%zu recipient stanza(s)%s\n",
               target, (unsigned long long)r->payload_len, r->new_stanzas,
               r->padded ? ", padding kept" : "");
    else
        printf("rotated %s: header rewritten (%zu -> %zu stanzas, %llu -> %llu bytes), %llu "
               "payload bytes copied unchanged%s\n",
               target, r->old_stanzas, r->new_stanzas, (unsigned long long)r->old_header_len,
               (unsigned long long)r->new_header_len, (unsigned long long)r->payload_len,
               r->padded ? ", padding kept" : "");
}

static int
run(struct rot_args *a)
{
    struct pass_ctx pass = {a->pass_file, false, ""};
    sbx_identity **ids = NULL;
    sbx_recipient **rs = NULL;
    size_t nids = 0, nrs = 0;
    sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
    sbx_rotate_report rep;
    int err, rc = CLI_FAIL;
    o.rekey = a->rekey;
    if (load_identities(&ids, &nids, a, &pass) < 0 ||
        (!a->kms_rewrap && load_recipients(&rs, &nrs, a) < 0))
        goto out;
    if (a->kms_rewrap)
        err = kms_dl_get()->rotate_rewrap_file(a->input, a->output, ids, nids, &rep);
    else
        err = sbx_rotate_file(a->input, a->output, ids, nids, rs, nrs, &o, &rep);
    if (err < 0) {
        if (pass.failed)
            cli_errorf("%s", pass.err);
        else
            cli_error_lib(a->input);
        cli_kms_hint(err);
        if (err == SBX_ENOMATCH && strstr(sbx_error_last()->message, "key server") == NULL)
            cli_hintf("give an identity that opens the file now (-i OLD_KEY)");
        cli_hintf("%s was not changed", a->output ? a->output : a->input);
        goto out;
    }
    print_result(a, &rep);
    warn_stale_temps(a->output ? a->output : a->input);
    rc = CLI_OK;
out:
    sbx_identities_free(ids, nids);
    sbx_recipients_free(rs, nrs);
    return rc;
}

static int
check(struct rot_args *a, int nargs, char **rest)
{
    if (nargs != 1)
        return cli_usage_errorf("rotate", "give exactly one FILE to rotate (got %d)", nargs);
    a->input = rest[0];
    if (a->new_pass_file != NULL)
        a->new_pass = true;
    if (a->kms_rewrap) {
        if (a->new_pass || a->nr + a->nrf + a->kms.nkeys > 0 || a->rekey)
            return cli_usage_errorf("rotate", "--kms-rewrap keeps the recipients: it cannot be "
                                              "combined with -r, -R, -p, --kms or --rekey");
        if (a->output != NULL && strcmp(a->output, a->input) == 0)
            a->output = NULL;
        return CLI_OK;
    }
    if (a->new_pass && a->nr + a->nrf + a->kms.nkeys > 0)
        return cli_usage_errorf("rotate", "a new passphrase cannot be combined with -r or -R: "
                                          "a passphrase must be the only recipient of a file");
    if (!a->new_pass && a->nr + a->nrf + a->kms.nkeys == 0)
        return cli_usage_errorf("rotate", "no new recipients: give -r, -R, -p or "
                                          "--new-passphrase-file (or --kms-rewrap)");
    if (a->output != NULL && strcmp(a->output, a->input) == 0)
        a->output = NULL;
    return CLI_OK;
}

int
cmd_rotate(int argc, char **argv)
{
    enum { OPT_PASS = 256, OPT_NEWPASS, OPT_REKEY, OPT_JSON, OPT_KMS_REWRAP };
    static const struct option longopts[] = {
        {"identity", required_argument, NULL, 'i'},
        {"passphrase-file", required_argument, NULL, OPT_PASS},
        {"recipient", required_argument, NULL, 'r'},
        {"recipients-file", required_argument, NULL, 'R'},
        {"passphrase", no_argument, NULL, 'p'},
        {"new-passphrase-file", required_argument, NULL, OPT_NEWPASS},
        {"rekey", no_argument, NULL, OPT_REKEY},
        {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, OPT_JSON},
        {"kms", required_argument, NULL, CLI_OPT_KMS},
        {"kms-rewrap", no_argument, NULL, OPT_KMS_REWRAP},
        {"kms-url", required_argument, NULL, CLI_OPT_KMS_URL},
        CLI_KMS_TRUST_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct rot_args a = {0};
    int c, rc = CLI_USAGE;
    a.ids = calloc((size_t)argc, sizeof(char *));
    a.recips = calloc((size_t)argc, sizeof(char *));
    a.rfiles = calloc((size_t)argc, sizeof(char *));
    if (a.ids == NULL || a.recips == NULL || a.rfiles == NULL ||
        cli_kms_opts_init(&a.kms, argc) != CLI_OK) {
        cli_errorf("out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:i:r:R:po:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a.ids[a.nids++] = optarg;
            break;
        case OPT_PASS:
            a.pass_file = optarg;
            break;
        case 'r':
            a.recips[a.nr++] = optarg;
            break;
        case 'R':
            a.rfiles[a.nrf++] = optarg;
            break;
        case 'p':
            a.new_pass = true;
            break;
        case OPT_NEWPASS:
            a.new_pass_file = optarg;
            break;
        case OPT_REKEY:
            a.rekey = true;
            break;
        case 'o':
            a.output = optarg;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case OPT_KMS_REWRAP:
            a.kms_rewrap = true;
            break;
        case 'h':
            cli_help_print(stdout, "rotate");
            rc = CLI_OK;
            goto out;
        default:
            if (cli_kms_option(&a.kms, c, optarg))
                break;
            rc = cli_bad_option("rotate", c, argv, longopts);
            goto out;
        }
    }
    if ((rc = cli_operands_check("rotate", argc, argv)) == CLI_OK &&
        (rc = check(&a, argc - optind, argv + optind)) == CLI_OK)
        rc = run(&a);
out:
    free(a.ids);
    free(a.recips);
    free(a.rfiles);
    cli_kms_opts_dispose(&a.kms);
    return rc;
}
