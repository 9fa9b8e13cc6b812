/*
 * cli/seal.c - sbx seal / sbx unseal: the seed's encrypt-and-destroy
 * workflow in one command (strongbox/fileops.h, docs/seal.md).
 */
#include "cli.h"
#include "recipients.h"
#include "destroy_seal_cmds.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char usage_seal[] =
    "usage: sbx seal (-r RECIPIENT | -R FILE)... [-i IDENTITY] [--keep] [--strict] [--meta]\n"
    "                [--passes N] [--json] FILE...\n";

const char usage_unseal[] =
    "usage: sbx unseal (-i IDENTITY)... [--passphrase-file F] [-o OUTPUT] [--force]\n"
    "                  [--keep] [--json] FILE.age\n";

const char help_seal[] =
    "NAME\n"
    "    sbx seal - encrypt files next to themselves, verify, destroy the originals\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx seal (-r RECIPIENT | -R FILE)... [-i IDENTITY] [--keep] [--strict]\n"
    "             [--meta] [--passes N] [--json] FILE...\n"
    "\n"
    "DESCRIPTION\n"
    "    For each FILE: encrypt it to FILE.age (age v1, mode 0600, written\n"
    "    atomically; an existing FILE.age is never replaced), read FILE.age back\n"
    "    and check it completely (header MAC, every payload chunk, and the\n"
    "    SHA-256 of the decrypted bytes against the original) using the file key\n"
    "    kept in memory for that purpose, so no private key is needed; then\n"
    "    destroy FILE as sbx destroy does (unless --keep). With -i, FILE.age is\n"
    "    also decrypted with that identity before anything is destroyed.\n"
    "\n"
    "    Before starting, sbx seal warns when FILE is inside a sync folder\n"
    "    (Dropbox, Google Drive, OneDrive, iCloud Drive), under version control\n"
    "    (git, hg, svn), or has other hard links: copies of it probably exist\n"
    "    elsewhere, and destroying this one cannot reach them. --strict refuses\n"
    "    such files instead. A file with other hard links is sealed and then\n"
    "    only its name is removed (the data stays under the other names).\n"
    "\n"
    "    --meta stores the original name, size, modification time, tool version,\n"
    "    recipient fingerprints and a history line in the header, encrypted\n"
    "    under the file key (never in clear). age(1) skips it and decrypts the\n"
    "    file to exactly the original bytes (docs/seal.md).\n"
    "\n"
    "OPTIONS\n"
    "    -r, --recipient KEY        encrypt to KEY (age1..., ssh-ed25519, ssh-rsa)\n"
    "    -R, --recipients-file F    encrypt to every recipient in F\n"
    "    -i, --identity F           also check that this identity decrypts FILE.age\n"
    "    -k, --keep                 keep the original\n"
    "        --strict               refuse files in sync folders, under version\n"
    "                               control, or with other hard links\n"
    "    -m, --meta                 store encrypted metadata in FILE.age\n"
    "    -n, --passes N             overwrite passes when destroying (default 1)\n"
    "        --json                 print a JSON report on standard output\n"
    "    -h, --help                 show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx seal -r age1... data.csv              # data.csv.age; data.csv destroyed\n"
    "    sbx seal -R team.txt --meta --keep *.pdf\n"
    "    sbx seal -r age1... --strict --json notes.txt\n"
    "\n";

const char help_unseal[] =
    "NAME\n"
    "    sbx unseal - decrypt a sealed file back to its name and remove FILE.age\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx unseal (-i IDENTITY)... [--passphrase-file F] [-o OUTPUT] [--force]\n"
    "               [--keep] [--json] FILE.age\n"
    "\n"
    "DESCRIPTION\n"
    "    Decrypt FILE.age to FILE (mode 0600, written atomically: FILE appears\n"
    "    only once it is complete and every chunk has verified) and then remove\n"
    "    FILE.age. An existing FILE is not replaced without --force, and a\n"
    "    symbolic link at FILE or OUTPUT never (give its target as -o). On any\n"
    "    error nothing is written and FILE.age is kept. Metadata stored by\n"
    "    sbx seal --meta is decrypted, checked and shown.\n"
    "\n"
    "OPTIONS\n"
    "    -i, --identity F           identity file (repeatable)\n"
    "    -P, --passphrase-file F    read a passphrase from F (first line)\n"
    "    -o, --output OUTPUT        write here instead of FILE\n"
    "    -f, --force                replace an existing output file\n"
    "    -k, --keep                 keep FILE.age\n"
    "        --json                 print a JSON report on standard output\n"
    "    -h, --help                 show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx unseal -i key.txt data.csv.age\n"
    "    sbx unseal -i key.txt --keep --json data.csv.age\n"
    "\n";

/* ---- shared ---- */

static void
json_meta(cli_json *j, const sbx_seal_meta *m)
{
    cli_json_object_begin(j, "meta");
    cli_json_string(j, "name", m->name);
    cli_json_uint(j, "size", m->size);
    cli_json_int(j, "mtime", m->mtime);
    cli_json_string(j, "tool", m->tool);
    cli_json_array_begin(j, "recipients");
    for (size_t i = 0; i < m->nrecipients; i++)
        cli_json_string(j, NULL, m->recipients[i]);
    cli_json_array_end(j);
    cli_json_array_begin(j, "history");
    for (size_t i = 0; i < m->nhistory; i++)
        cli_json_string(j, NULL, m->history[i]);
    cli_json_array_end(j);
    cli_json_object_end(j);
}

/* One -r or -R of seal, through the loader that encrypt uses (secret keys never shown). */
static int
load_one(sbx_recipient ***rs, size_t *n, const char *arg, bool file)
{
    const char *one[1] = {arg};
    struct cli_recipient_args ra = {NULL, 0, NULL, 0, NULL, 0, NULL, true};
    if (file) {
        ra.files = one;
        ra.nfiles = 1;
    } else {
        ra.strings = one;
        ra.nstrings = 1;
    }
    return cli_recipients_load(rs, n, &ra) < 0 ? CLI_FAIL : CLI_OK;
}

/* ---- seal ---- */

struct seal_args {
    const char **keys; /* -r KEY and -R FILE arguments, in order */
    bool *key_is_file;
    size_t nkeys;
    const char **id_files; /* -i */
    size_t nid_files;
    sbx_recipient **rs;
    size_t nr;
    sbx_identity **ids;
    size_t nids;
    sbx_seal_options o;
    bool json;
};

static void
warn_preflight(const char *path, const sbx_seal_preflight *p, bool strict)
{
    if (strict)
        return; // the library refuses with the reasons
    if (p->sync_folder)
        cli_warnf("%s is inside a %s folder (%s): it has probably been uploaded already, and "
                  "destroying it here does not remove the copies there",
                  path, p->sync_service, p->sync_root);
    if (p->vcs)
        cli_warnf("%s is inside a %s working tree (%s): if it was ever committed, the history "
                  "keeps it",
                  path, p->vcs_type, p->vcs_root);
    if (p->links > 1)
        cli_warnf("%s has %llu hard links: only this name will be removed; the data stays "
                  "readable under the others",
                  path, (unsigned long long)p->links);
}

static void
json_preflight(cli_json *j, const sbx_seal_preflight *p)
{
    cli_json_object_begin(j, "preflight");
    cli_json_bool(j, "sync_folder", p->sync_folder);
    cli_json_string(j, "sync_service", p->sync_service);
    cli_json_string(j, "sync_root", p->sync_root);
    cli_json_bool(j, "vcs", p->vcs);
    cli_json_string(j, "vcs_type", p->vcs_type);
    cli_json_string(j, "vcs_root", p->vcs_root);
    cli_json_uint(j, "links", p->links);
    cli_json_object_end(j);
}

static void
json_seal(cli_json *j, const char *path, int err, const sbx_seal_report *r)
{
    cli_json_object_begin(j, NULL);
    cli_json_string(j, "file", path);
    cli_json_error_fields(j, err);
    cli_json_string(j, "output", r->output);
    cli_json_uint(j, "size", r->size);
    cli_json_uint(j, "output_size", r->output_size);
    cli_json_hex(j, "sha256", r->sha256, sizeof(r->sha256));
    cli_json_bool(j, "verified", r->verified);
    cli_json_bool(j, "verified_identity", r->verified_identity);
    cli_json_bool(j, "meta", r->meta);
    json_preflight(j, &r->preflight);
    cli_json_bool(j, "destroyed", r->destroyed);
    if (r->destroyed) {
        cli_json_object_begin(j, "destroy");
        cli_json_destroy_fields(j, &r->destroy);
        cli_json_object_end(j);
    } else {
        cli_json_null(j, "destroy");
    }
    cli_json_object_end(j);
}

static void
human_seal(const char *path, const sbx_seal_report *r)
{
    printf("%s -> %s: %llu bytes sealed, read back and verified%s%s\n", path, r->output,
           (unsigned long long)r->size, r->verified_identity ? " (also with the identity)" : "",
           r->meta ? ", with encrypted metadata" : "");
    if (!r->destroyed) {
        printf("  original kept\n");
        return;
    }
    const sbx_destroy_report *d = &r->destroy;
    if (d->overwritten)
        printf("  original overwritten (%u pass%s) and removed; filesystem %s\n", d->passes,
               d->passes == 1 ? "" : "es", d->fs_type);
    else
        printf("  original name removed, data NOT overwritten\n");
    for (size_t i = 0; i < d->nwarnings; i++)
        printf("  warning: %s\n", d->warnings[i]);
}

static int
seal_all(struct seal_args *a, int nfiles, char **files)
{
    cli_json j;
    int rc = CLI_OK;
    a->o.verify_identities = a->ids;
    a->o.nverify = a->nids;
    if (a->json) {
        cli_json_init(&j, stdout, CLI_JSON_SPACED);
        cli_json_object_begin(&j, NULL);
        cli_json_string(&j, "command", "seal");
        cli_json_array_begin_lines(&j, "results");
    }
    for (int i = 0; i < nfiles; i++) {
        sbx_seal_preflight p;
        sbx_seal_report r;
        if (sbx_seal_preflight_check(&p, files[i]) == 0)
            warn_preflight(files[i], &p, a->o.strict);
        int err = sbx_seal_file(&r, files[i], a->rs, a->nr, &a->o);
        if (err < 0) {
            rc = CLI_FAIL;
            cli_errorf("%s", sbx_error_last()->message);
        }
        if (a->json)
            json_seal(&j, files[i], err, &r);
        else if (err == 0)
            human_seal(files[i], &r);
    }
    if (a->json) {
        cli_json_array_end(&j);
        cli_json_bool(&j, "ok", rc == CLI_OK);
        cli_json_object_end(&j);
    }
    return rc;
}

/* A directory among the files is an argument error: say so before any warning or work. */
static int
check_not_directories(int nfiles, char **files)
{
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (lstat(files[i], &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        cli_errorf("%s is a directory: sbx seal takes files (nothing was done)", files[i]);
        cli_hintf("give the files in it (sbx seal -r KEY %s/*; subdirectories are not "
                  "entered), or seal an archive of it (tar cf NAME.tar %s, then sbx seal -r KEY "
                  "NAME.tar)",
                  files[i], files[i]);
        return cli_usage("seal");
    }
    return CLI_OK;
}

static int
parse_seal(struct seal_args *a, int argc, char **argv)
{
    enum { OPT_STRICT = 256, OPT_JSON };
    static const struct option longopts[] = {
        {"recipient", required_argument, NULL, 'r'},
        {"recipients-file", required_argument, NULL, 'R'},
        {"identity", required_argument, NULL, 'i'},
        {"keep", no_argument, NULL, 'k'},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"meta", no_argument, NULL, 'm'},
        {"passes", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, passes;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:r:R:i:kmn:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
        case 'R':
            a->key_is_file[a->nkeys] = c == 'R';
            a->keys[a->nkeys++] = optarg;
            break;
        case 'i':
            a->id_files[a->nid_files++] = optarg;
            break;
        case 'k':
            a->o.keep = true;
            break;
        case OPT_STRICT:
            a->o.strict = true;
            break;
        case 'm':
            a->o.meta = true;
            break;
        case 'n':
            if (!cli_parse_int(&passes, optarg, 1, SBX_DESTROY_MAX_PASSES))
                return cli_usage_errorf("seal", "--passes takes a number from 1 to %d",
                                        SBX_DESTROY_MAX_PASSES);
            a->o.passes = (unsigned)passes;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case 'h':
            cli_help_print(stdout, "seal");
            return -1;
        default:
            return cli_bad_option("seal", c, argv, longopts);
        }
    }
    if (a->nkeys == 0)
        return cli_usage_errorf("seal", "give the recipients (-r KEY or -R FILE)");
    if (optind >= argc)
        return cli_usage_errorf("seal", "give the files to seal");
    if (cli_operands_check("seal", argc, argv) != CLI_OK)
        return CLI_USAGE;
    return check_not_directories(argc - optind, argv + optind);
}

/* The keys named by the arguments, once they are known to be complete and valid. */
static int
load_keys(struct seal_args *a)
{
    for (size_t i = 0; i < a->nkeys; i++) {
        if (load_one(&a->rs, &a->nr, a->keys[i], a->key_is_file[i]) != CLI_OK)
            return CLI_FAIL;
    }
    for (size_t i = 0; i < a->nid_files; i++) {
        if (cli_load_identities(&a->ids, &a->nids, a->id_files[i]) < 0)
            return CLI_FAIL;
    }
    return CLI_OK;
}

int
cmd_seal(int argc, char **argv)
{
    struct seal_args a = {.o = SBX_SEAL_OPTIONS_INIT};
    int rc = CLI_FAIL;
    a.keys = calloc((size_t)argc, sizeof(*a.keys));
    a.key_is_file = calloc((size_t)argc, sizeof(*a.key_is_file));
    a.id_files = calloc((size_t)argc, sizeof(*a.id_files));
    if (a.keys == NULL || a.key_is_file == NULL || a.id_files == NULL)
        cli_errorf("out of memory");
    else if ((rc = parse_seal(&a, argc, argv)) == CLI_OK && (rc = load_keys(&a)) == CLI_OK)
        rc = seal_all(&a, argc - optind, argv + optind);
    else if (rc < 0)
        rc = CLI_OK; // --help
    sbx_recipients_free(a.rs, a.nr);
    sbx_identities_free(a.ids, a.nids);
    free(a.keys);
    free(a.key_is_file);
    free(a.id_files);
    return rc;
}

/* ---- unseal ---- */

static int
add_passphrase(sbx_identity ***ids, size_t *n, const char *file)
{
    sbx_buf pass = SBX_BUF_INIT;
    sbx_identity *id = NULL;
    char why[256];
    int rc = CLI_FAIL;
    if (cli_read_passphrase(&pass, file, false, why, sizeof(why)) < 0) {
        cli_errorf("%s", why);
        goto out;
    }
    if (sbx_identity_scrypt_new(&id, (const char *)pass.ptr, pass.len, 0) < 0) {
        cli_error_lib("passphrase");
        goto out;
    }
    sbx_identity **grown = realloc(*ids, (*n + 2) * sizeof(*grown));
    if (grown == NULL) {
        sbx_identity_free(id);
        cli_errorf("out of memory");
        goto out;
    }
    grown[(*n)++] = id;
    *ids = grown;
    rc = CLI_OK;
out:
    sbx_buf_dispose(&pass);
    return rc;
}

static void
json_unseal(const char *path, int err, const sbx_unseal_report *r)
{
    cli_json j;
    cli_json_init(&j, stdout, CLI_JSON_SPACED);
    cli_json_object_begin(&j, NULL);
    cli_json_string(&j, "command", "unseal");
    cli_json_string(&j, "file", path);
    cli_json_error_fields(&j, err);
    cli_json_string(&j, "output", r->output);
    cli_json_uint(&j, "size", r->size);
    cli_json_hex(&j, "sha256", r->sha256, sizeof(r->sha256));
    cli_json_bool(&j, "removed", r->removed);
    if (r->has_meta) {
        json_meta(&j, &r->meta);
        cli_json_bool(&j, "meta_size_ok", r->meta_size_ok);
    } else {
        cli_json_null(&j, "meta");
    }
    cli_json_object_end(&j);
}

static void
human_unseal(const char *path, const sbx_unseal_report *r)
{
    printf("%s -> %s: %llu bytes decrypted and verified%s\n", path, r->output,
           (unsigned long long)r->size, r->removed ? ", sealed file removed" : "");
    if (!r->has_meta)
        return;
    const sbx_seal_meta *m = &r->meta;
    printf("  metadata: name \"%s\", size %llu%s, mtime %lld, %s\n", m->name,
           (unsigned long long)m->size, r->meta_size_ok ? "" : " (DIFFERS from the content)",
           (long long)m->mtime, m->tool);
    for (size_t i = 0; i < m->nrecipients; i++)
        printf("  recipient %s\n", m->recipients[i]);
    for (size_t i = 0; i < m->nhistory; i++)
        printf("  history: %s\n", m->history[i]);
}

/* The -i files and -P passphrases, in the order given. */
static int
load_unseal_identities(sbx_identity ***ids, size_t *n, const char **args, const bool *is_pass,
                       size_t nargs)
{
    for (size_t i = 0; i < nargs; i++) {
        if (is_pass[i] ? add_passphrase(ids, n, args[i]) != CLI_OK
                       : cli_load_identities(ids, n, args[i]) < 0)
            return CLI_FAIL;
    }
    return CLI_OK;
}

static int
check_unseal_args(size_t nid_args, int argc, char **argv)
{
    if (nid_args == 0)
        return cli_usage_errorf("unseal", "give an identity (-i FILE or --passphrase-file FILE)");
    if (cli_operands_check("unseal", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (argc - optind != 1)
        return cli_usage_errorf("unseal", "give exactly one sealed file");
    return CLI_OK;
}

int
cmd_unseal(int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"identity", required_argument, NULL, 'i'},
        {"passphrase-file", required_argument, NULL, 'P'},
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"keep", no_argument, NULL, 'k'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sbx_unseal_options o = SBX_UNSEAL_OPTIONS_INIT;
    sbx_identity **ids = NULL;
    size_t nids = 0, nid_args = 0;
    const char **id_args = calloc((size_t)argc, sizeof(*id_args));
    bool *is_pass = calloc((size_t)argc, sizeof(*is_pass));
    bool json = false;
    int c, rc = CLI_FAIL;
    if (id_args == NULL || is_pass == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:i:P:o:fkh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
        case 'P':
            is_pass[nid_args] = c == 'P';
            id_args[nid_args++] = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case 'f':
            o.force = true;
            break;
        case 'k':
            o.keep = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            cli_help_print(stdout, "unseal");
            rc = CLI_OK;
            goto out;
        default:
            rc = cli_bad_option("unseal", c, argv, longopts);
            goto out;
        }
    }
    if ((rc = check_unseal_args(nid_args, argc, argv)) != CLI_OK)
        goto out;
    if ((rc = load_unseal_identities(&ids, &nids, id_args, is_pass, nid_args)) != CLI_OK)
        goto out;
    sbx_unseal_report r;
    int err = sbx_unseal_file(&r, argv[optind], ids, nids, &o);
    if (err < 0)
        cli_errorf("%s", sbx_error_last()->message);
    if (json)
        json_unseal(argv[optind], err, &r);
    else if (err == 0)
        human_unseal(argv[optind], &r);
    rc = err < 0 ? CLI_FAIL : CLI_OK;
out:
    sbx_identities_free(ids, nids);
    free(id_args);
    free(is_pass);
    return rc;
}
