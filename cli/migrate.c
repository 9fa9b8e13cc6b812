/*
 * cli/migrate.c - sbx migrate: re-encrypt a pyFileSec .enc archive or a
 * PsychoPy opensslwrap bundle to age recipients (read-only for the old
 * format; spec/seeds.md).
 *
 * The tar.gz is read with libarchive. Members are taken strictly: regular
 * files only (no links, devices, directories), plain names (no '/', '\\',
 * leading '.', "..", control characters), no duplicates, bounded sizes.
 * The library (strongbox/migrate.h) checks and decrypts; the age file is
 * written atomically and the archive is removed only with --delete-original
 * after the new file is complete.
 */
#include "cli.h"
#include "archive_dl.h"
#include "recipients.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS 16
#define MAX_SMALL   (1024 * 1024)

struct members {
    sbx_buf data, wrapped, meta;
    char name[256]; /* original base name, from NAME.aes256 */
    bool has_meta;
    unsigned kinds; /* bit per member kind seen (an empty member counts too) */
};

struct pass_ctx {
    const char *file;
};

static int
ask_passphrase(sbx_buf *out, void *payload)
{
    struct pass_ctx *p = payload;
    char why[256];
    int err = cli_read_passphrase(out, p->file, false, why, sizeof(why));
    if (err < 0)
        cli_errorf("%s", why);
    return err;
}

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static bool
name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.' || strlen(name) >= 256)
        return false;
    for (const char *c = name; *c; c++) {
        if (*c == '/' || *c == '\\' || (unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    }
    return strstr(name, "..") == NULL;
}

static int
read_member(struct archive *a, sbx_buf *out, la_int64_t size, size_t limit, const char *name)
{
    uint8_t buf[65536];
    la_ssize_t n;
    if (size < 0 || (uint64_t)size > limit) {
        cli_errorf("archive member \"%s\" is too large (limit %zu bytes)", name, limit);
        return SBX_ETOOBIG;
    }
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
        if (out->len + (size_t)n > limit || sbx_buf_append(out, buf, (size_t)n) < 0) {
            cli_errorf("archive member \"%s\" is too large", name);
            return SBX_ETOOBIG;
        }
    }
    if (n < 0) {
        cli_errorf("cannot read archive member \"%s\": %s", name, archive_error_string(a));
        return SBX_EFORMAT;
    }
    return 0;
}

/* Which member a name is; NULL for an unknown one. */
static sbx_buf *
member_slot(struct members *m, const char *name)
{
    if (has_suffix(name, ".aes256")) {
        snprintf(m->name, sizeof(m->name), "%.*s", (int)(strlen(name) - 7), name);
        return &m->data;
    }
    if (has_suffix(name, ".aes256.pwdrsa") || has_suffix(name, ".aes256pwd.rsa"))
        return &m->wrapped;
    if (has_suffix(name, ".meta")) {
        m->has_meta = true;
        return &m->meta;
    }
    return NULL;
}

static int
check_entry(struct archive_entry *e, const char *name, char seen[MAX_MEMBERS][256], size_t *nseen)
{
    if (!name_ok(name)) {
        cli_errorf("refusing archive member with an unsafe name (paths, \"..\", hidden or control "
                   "characters are not allowed in these archives)");
        return SBX_EFORMAT;
    }
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
        archive_entry_symlink(e) != NULL) {
        cli_errorf("refusing archive member \"%s\": not a regular file (links are not allowed)",
                   name);
        return SBX_EFORMAT;
    }
    for (size_t i = 0; i < *nseen; i++) {
        if (strcmp(seen[i], name) == 0) {
            cli_errorf("refusing archive: member \"%s\" appears twice", name);
            return SBX_EFORMAT;
        }
    }
    if (*nseen == MAX_MEMBERS) {
        cli_errorf("refusing archive: more than %d members", MAX_MEMBERS);
        return SBX_EFORMAT;
    }
    snprintf(seen[(*nseen)++], 256, "%s", name);
    return 0;
}

static int
read_archive(struct members *m, const char *path)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    char seen[MAX_MEMBERS][256];
    size_t nseen = 0;
    int r, err = 0;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        cli_errorf("%s: not a readable tar.gz archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return SBX_EFORMAT;
    }
    while (err == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if ((err = check_entry(e, name, seen, &nseen)) < 0)
            break;
        sbx_buf *slot = member_slot(m, name);
        if (slot == NULL) {
            // skipping still decompresses it: bound it like the other small members
            if (archive_entry_size(e) < 0 || archive_entry_size(e) > MAX_SMALL) {
                cli_errorf("archive member \"%s\" is too large (limit %d bytes)", name, MAX_SMALL);
                err = SBX_ETOOBIG;
                break;
            }
            cli_warnf("ignoring unknown archive member \"%s\"", name);
            continue;
        }
        unsigned kind = slot == &m->data ? 1u : slot == &m->wrapped ? 2u : 4u;
        if ((m->kinds & kind) != 0) {
            cli_errorf("refusing archive: two members of the same kind (\"%s\")", name);
            err = SBX_EFORMAT;
            break;
        }
        m->kinds |= kind;
        err = read_member(a, slot, archive_entry_size(e),
                          slot == &m->data ? SBX_LEGACY_MAX_DATA : MAX_SMALL, name);
    }
    if (err == 0 && r != ARCHIVE_EOF) {
        cli_errorf("%s: corrupt archive: %s", path, archive_error_string(a));
        err = SBX_EFORMAT;
    }
    archive_read_free(a);
    if (err == 0 && (m->data.len == 0 || m->wrapped.len == 0)) {
        cli_errorf("%s: not a pyFileSec/opensslwrap archive (needs NAME.aes256 and its "
                   "RSA-wrapped password member)",
                   path);
        err = SBX_EFORMAT;
    }
    return err;
}

struct args {
    const char *identity, *pass_file, *output, *digest;
    const char *recipients[64], *recipient_files[64];
    size_t nr, nrf;
    bool delete_original;
};

static int
write_age(const char *path, const sbx_buf *plain, sbx_recipient **rs, size_t n, bool replace)
{
    sbx_sink *file = NULL, *enc = NULL;
    int err;
    if ((err = sbx_sink_atomic_file_new_ex(&file, path, 0600,
                                           replace ? 0 : SBX_ATOMIC_NOREPLACE)) == 0 &&
        (err = sbx_age_encryptor_new(&enc, file, rs, n, NULL)) == 0 &&
        (err = sbx_sink_write(enc, plain->ptr, plain->len)) == 0)
        err = sbx_sink_finish(enc);
    if (err < 0)
        cli_error_lib(path);
    sbx_sink_free(enc);
    sbx_sink_free(file);
    return err;
}

/* NAME.age next to the archive (malloc'ed), or NULL when out of memory. */
static char *
default_output(const char *archive, const char *name)
{
    const char *slash = strrchr(archive, '/');
    int dir = slash != NULL ? (int)(slash - archive + 1) : 0;
    char *out = NULL;
    if (asprintf(&out, "%.*s%s.age", dir, archive, name) < 0)
        return NULL;
    return out;
}

static int
migrate(const struct args *a, const char *archive)
{
    struct members m = {SBX_BUF_INIT, SBX_BUF_INIT, SBX_BUF_INIT, "", false, 0};
    struct pass_ctx pc = {a->pass_file};
    sbx_legacy_options opts = SBX_LEGACY_OPTIONS_INIT;
    sbx_legacy_report rep;
    sbx_legacy_key *key = NULL;
    sbx_recipient **rs = NULL;
    sbx_buf keytext = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    size_t nr = 0;
    char *out = NULL;
    int rc = CLI_FAIL;
    struct stat st;
    if (a->digest != NULL)
        opts.digest =
            strcmp(a->digest, "md5") == 0 ? SBX_LEGACY_DIGEST_MD5 : SBX_LEGACY_DIGEST_SHA256;
    struct cli_recipient_args ra = {
        a->recipients, a->nr, a->recipient_files, a->nrf, NULL, 0, NULL, false,
    };
    if (cli_recipients_load(&rs, &nr, &ra) < 0 || read_archive(&m, archive) < 0 ||
        cli_read_small_file(&keytext, a->identity, "private key", true) < 0)
        goto out;
    if (sbx_legacy_key_parse(&key, (const char *)keytext.ptr, keytext.len, ask_passphrase, &pc) <
        0) {
        cli_errorf("private key %s: %s", a->identity, sbx_error_last()->message);
        goto out;
    }
    if (sbx_legacy_key_bits(key) < 2048)
        cli_warnf("the archive's key has only %d bits; migrate to a new key (age1... or a "
                  "2048+ bit RSA or Ed25519 SSH key)",
                  sbx_legacy_key_bits(key));
    sbx_legacy_members lm = {
        m.data.ptr, m.data.len, m.wrapped.ptr, m.wrapped.len, m.has_meta ? m.meta.ptr : NULL,
        m.meta.len};
    if (sbx_legacy_decrypt(&plain, key, &lm, &opts, &rep) < 0) {
        cli_errorf("%s: %s", archive, sbx_error_last()->message);
        goto out;
    }
    if (!rep.hash_checked)
        cli_warnf("%s records no ciphertext hash: only the CBC padding was checked, so changes "
                  "to the data may go unnoticed; check the content",
                  archive);
    out = a->output != NULL ? strdup(a->output) : default_output(archive, m.name);
    if (out == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    if (a->output == NULL && lstat(out, &st) == 0) {
        cli_errorf("%s already exists; choose the output with -o", out);
        goto out;
    }
    if (write_age(out, &plain, rs, nr, a->output != NULL) < 0)
        goto out;
    fprintf(stderr, "sbx: migrated %s -> %s (%zu bytes)\n", archive, out, plain.len);
    if (a->delete_original && unlink(archive) != 0) {
        cli_errorf("%s: the new file is written, but the archive could not be removed", archive);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_legacy_key_free(key);
    sbx_recipients_free(rs, nr);
    sbx_buf_dispose(&keytext);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&m.data);
    sbx_buf_dispose(&m.wrapped);
    sbx_buf_dispose(&m.meta);
    free(out);
    return rc;
}

int
cmd_migrate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"identity", required_argument, NULL, 'i'},
        {"recipient", required_argument, NULL, 'r'},
        {"recipients-file", required_argument, NULL, 'R'},
        {"output", required_argument, NULL, 'o'},
        {"passphrase-file", required_argument, NULL, 'P'},
        {"md", required_argument, NULL, 'm'},
        {"delete-original", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char why[256];
    if (!archive_dl_load(why, sizeof(why))) {
        cli_errorf("%s", why);
        return CLI_FAIL;
    }
    struct args a = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:i:r:R:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a.identity = optarg;
            break;
        case 'r':
            if (a.nr == 64)
                return cli_usage_errorf("migrate", "too many -r options");
            a.recipients[a.nr++] = optarg;
            break;
        case 'R':
            if (a.nrf == 64)
                return cli_usage_errorf("migrate", "too many -R options");
            a.recipient_files[a.nrf++] = optarg;
            break;
        case 'o':
            a.output = optarg;
            break;
        case 'P':
            a.pass_file = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "md5") != 0 && strcmp(optarg, "sha256") != 0)
                return cli_usage_errorf("migrate", "--md takes md5 or sha256");
            a.digest = optarg;
            break;
        case 'D':
            a.delete_original = true;
            break;
        case 'h':
            cli_help_print(stdout, "migrate");
            return CLI_OK;
        default:
            return cli_bad_option("migrate", c, argv, longopts);
        }
    }
    if (cli_operands_check("migrate", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (a.identity == NULL)
        return cli_usage_errorf("migrate", "the archive's RSA private key is needed (-i KEY)");
    if (a.nr + a.nrf == 0)
        return cli_usage_errorf("migrate", "give the new recipients (-r or -R)");
    if (argc - optind != 1)
        return cli_usage_errorf("migrate", "give exactly one archive");
    return migrate(&a, argv[optind]);
}
