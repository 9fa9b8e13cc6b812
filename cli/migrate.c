/*
 * cli/migrate.c - sbx migrate: re-encrypt a pyFileSec .enc archive or a
 * PsychoPy opensslwrap bundle to age recipients (read-only for the old
 * format; spec/seeds.md).
 *
 * The tar.gz is read with libarchive, twice, in constant memory whatever
 * its size (strongbox/migrate.h): the first pass checks every member (the
 * library's name rule, regular files only, no duplicates, bounded small
 * members), keeps the small ones and scans the data member, whose format is
 * checked from its first bytes; the second pass streams the data member
 * through the decryptor into the age encryptor and the atomic output file.
 * Both passes read the same open file. Names are read as UTF-8 (Python 3's
 * tarfile writes PAX headers in UTF-8): libarchive converts names to the
 * thread's locale, so the reading runs under C.UTF-8. The archive is
 * removed only with --delete-original after the new file is complete.
 */
#include "cli.h"
#include "archive_dl.h"
#include "recipients.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS 16
#define MAX_SMALL   (1024 * 1024)
#define READ_CHUNK  65536

struct members {
    sbx_buf wrapped, meta;
    sbx_legacy_scan *scan;
    char data_member[256]; // NAME.aes256
    char name[256];        // NAME, the original base name
    bool has_meta;
    unsigned kinds; // bit per member kind seen (an empty member counts too)
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

/* One reading of the archive: libarchive over fd from its start, names in UTF-8. */
struct reading {
    struct archive *a;
    locale_t utf8, prev;
};

static int
reading_open(struct reading *r, int fd, const char *path)
{
    r->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    r->prev = r->utf8 != (locale_t)0 ? uselocale(r->utf8) : (locale_t)0;
    r->a = archive_read_new();
    if (r->a == NULL || lseek(fd, 0, SEEK_SET) != 0) {
        cli_errorf("%s: cannot read the archive: %s", path,
                   r->a == NULL ? "out of memory" : strerror(errno));
        return SBX_EIO;
    }
    archive_read_support_filter_gzip(r->a);
    archive_read_support_format_tar(r->a);
    if (archive_read_open_fd(r->a, fd, READ_CHUNK) != ARCHIVE_OK) {
        cli_errorf("%s: not a readable tar.gz archive: %s", path, archive_error_string(r->a));
        return SBX_EFORMAT;
    }
    return 0;
}

static void
reading_close(struct reading *r)
{
    if (r->a != NULL)
        archive_read_free(r->a);
    if (r->utf8 != (locale_t)0) {
        uselocale(r->prev);
        freelocale(r->utf8);
    }
}

/*
 * The next member header. ARCHIVE_WARN is refused too: for a name it means
 * libarchive could not read it as UTF-8 and would hand out a changed one.
 */
static int
next_member(struct reading *r, struct archive_entry **e, bool *end, const char *path)
{
    int rc = archive_read_next_header(r->a, e);
    *end = rc == ARCHIVE_EOF;
    if (rc == ARCHIVE_OK || rc == ARCHIVE_EOF)
        return 0;
    cli_errorf("%s: refusing the archive: %s", path, archive_error_string(r->a));
    return SBX_EFORMAT;
}

/*
 * Read the current member in pieces into fn (a small buffer, the scan or the
 * decryptor); errors are reported here.
 */
static int
stream_member(struct archive *a, const char *name, int (*fn)(void *, const uint8_t *, size_t),
              void *payload)
{
    static uint8_t buf[READ_CHUNK];
    la_ssize_t n;
    int err;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
        if ((err = fn(payload, buf, (size_t)n)) < 0) {
            cli_errorf("archive member \"%s\": %s", name, sbx_error_last()->message);
            return err;
        }
    }
    if (n < 0) {
        cli_errorf("cannot read archive member \"%s\": %s", name, archive_error_string(a));
        return SBX_EFORMAT;
    }
    return 0;
}

static int
to_small(void *payload, const uint8_t *buf, size_t n)
{
    sbx_buf *b = payload;
    if (b->len + n > MAX_SMALL)
        return sbx_error_set(SBX_ETOOBIG, "larger than %d bytes, the limit for this member",
                             MAX_SMALL);
    return sbx_buf_append(b, buf, n);
}

static int
to_scan(void *payload, const uint8_t *buf, size_t n)
{
    return sbx_legacy_scan_update(payload, buf, n);
}

static int
to_sink(void *payload, const uint8_t *buf, size_t n)
{
    return sbx_sink_write(payload, buf, n);
}

static int
check_entry(struct archive_entry *e, const char *name, char seen[MAX_MEMBERS][256], size_t *nseen)
{
    if (sbx_legacy_member_name_check(name) < 0) {
        cli_errorf("refusing archive member with an unsafe name: %s", sbx_error_last()->message);
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

/* Which kind a member is by its name: 1 data, 2 wrapped password, 4 metadata, 0 unknown. */
static unsigned
member_kind(const char *name)
{
    if (has_suffix(name, ".aes256"))
        return 1;
    if (has_suffix(name, ".aes256.pwdrsa") || has_suffix(name, ".aes256pwd.rsa"))
        return 2;
    return has_suffix(name, ".meta") ? 4 : 0;
}

/* One member of the first pass: kept (small ones), scanned (data) or skipped (unknown). */
static int
take_member(struct members *m, struct archive *a, struct archive_entry *e, const char *name)
{
    unsigned kind = member_kind(name);
    la_int64_t size = archive_entry_size(e);
    int err;
    if ((m->kinds & kind) != 0) {
        cli_errorf("refusing archive: two members of the same kind (\"%s\")", name);
        return SBX_EFORMAT;
    }
    m->kinds |= kind;
    if (kind != 1 && (size < 0 || size > MAX_SMALL)) {
        // skipping still decompresses it: bound it like the other small members
        cli_errorf("archive member \"%s\" is too large (limit %d bytes)", name, MAX_SMALL);
        return SBX_ETOOBIG;
    }
    if (kind == 0) {
        cli_warnf("ignoring unknown archive member \"%s\"", name);
        return 0;
    }
    if (kind == 1) {
        if (size < 0 || (uint64_t)size > SBX_LEGACY_MAX_DATA) {
            cli_errorf("archive member \"%s\" is too large (limit %llu bytes)", name,
                       (unsigned long long)SBX_LEGACY_MAX_DATA);
            return SBX_ETOOBIG;
        }
        snprintf(m->data_member, sizeof(m->data_member), "%s", name);
        snprintf(m->name, sizeof(m->name), "%.*s", (int)(strlen(name) - 7), name);
        if ((err = stream_member(a, name, to_scan, m->scan)) == 0 &&
            (err = sbx_legacy_scan_finish(m->scan)) < 0)
            cli_errorf("archive member \"%s\": %s", name, sbx_error_last()->message);
        return err;
    }
    m->has_meta |= kind == 4;
    return stream_member(a, name, to_small, kind == 2 ? &m->wrapped : &m->meta);
}

/* First pass: every member checked, the small ones kept, the data member scanned. */
static int
read_archive(struct members *m, int fd, const char *path)
{
    struct reading r = {NULL, (locale_t)0, (locale_t)0};
    struct archive_entry *e;
    char seen[MAX_MEMBERS][256];
    size_t nseen = 0;
    bool end = false;
    int err;
    if ((err = sbx_legacy_scan_new(&m->scan)) < 0) {
        cli_errorf("out of memory");
        return err;
    }
    if ((err = reading_open(&r, fd, path)) < 0)
        goto out;
    while ((err = next_member(&r, &e, &end, path)) == 0 && !end) {
        const char *name = archive_entry_pathname(e);
        if ((err = check_entry(e, name, seen, &nseen)) < 0 ||
            (err = take_member(m, r.a, e, name)) < 0)
            break;
    }
    if (err == 0 && ((m->kinds & 3) != 3 || m->wrapped.len == 0)) {
        cli_errorf("%s: not a pyFileSec/opensslwrap archive (needs NAME.aes256 and its "
                   "RSA-wrapped password member)",
                   path);
        err = SBX_EFORMAT;
    }
out:
    reading_close(&r);
    return err;
}

/* Second pass: the data member again, through the decryptor (finished here). */
static int
decrypt_archive(const struct members *m, int fd, const char *path, sbx_sink *dec)
{
    struct reading r = {NULL, (locale_t)0, (locale_t)0};
    struct archive_entry *e;
    bool end = false;
    int err;
    if ((err = reading_open(&r, fd, path)) < 0)
        goto out;
    while ((err = next_member(&r, &e, &end, path)) == 0 && !end) {
        if (strcmp(archive_entry_pathname(e), m->data_member) == 0)
            break;
    }
    if (err == 0 && end) {
        cli_errorf("%s: the archive changed while it was read (its data member is gone)", path);
        err = SBX_EFORMAT;
    }
    if (err == 0 && (err = stream_member(r.a, m->data_member, to_sink, dec)) == 0 &&
        (err = sbx_sink_finish(dec)) < 0)
        cli_errorf("%s: %s", path, sbx_error_last()->message);
out:
    reading_close(&r);
    return err;
}

struct args {
    const char *identity, *pass_file, *output, *digest;
    const char *recipients[64], *recipient_files[64];
    size_t nr, nrf;
    bool delete_original;
};

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

/* The output chain: atomic file <- age encryptor. */
static int
open_output(sbx_sink **file, sbx_sink **enc, const char *path, sbx_recipient **rs, size_t n,
            bool replace)
{
    int err;
    if ((err = sbx_sink_atomic_file_new_ex(file, path, 0600, replace ? 0 : SBX_ATOMIC_NOREPLACE)) <
            0 ||
        (err = sbx_age_encryptor_new(enc, *file, rs, n, NULL)) < 0)
        cli_error_lib(path);
    return err;
}

static int
load_key(sbx_legacy_key **key, const struct args *a)
{
    struct pass_ctx pc = {a->pass_file};
    sbx_buf keytext = SBX_BUF_INIT;
    int err;
    if ((err = cli_read_small_file(&keytext, a->identity, "private key", true)) < 0)
        return err;
    if ((err = sbx_legacy_key_parse(key, (const char *)keytext.ptr, keytext.len, ask_passphrase,
                                    &pc)) < 0)
        cli_errorf("private key %s: %s", a->identity, sbx_error_last()->message);
    else if (sbx_legacy_key_bits(*key) < 2048)
        cli_warnf("the archive's key has only %d bits; migrate to a new key (age1... or a "
                  "2048+ bit RSA or Ed25519 SSH key)",
                  sbx_legacy_key_bits(*key));
    sbx_buf_dispose(&keytext);
    return err;
}

static int
migrate(const struct args *a, const char *archive)
{
    struct members m = {SBX_BUF_INIT, SBX_BUF_INIT, NULL, "", "", false, 0};
    sbx_legacy_options opts = SBX_LEGACY_OPTIONS_INIT;
    sbx_legacy_report rep;
    sbx_legacy_key *key = NULL;
    sbx_recipient **rs = NULL;
    sbx_sink *file = NULL, *enc = NULL, *dec = NULL;
    size_t nr = 0;
    char *out = NULL;
    int rc = CLI_FAIL, fd = -1;
    struct stat st;
    if (a->digest != NULL)
        opts.digest =
            strcmp(a->digest, "md5") == 0 ? SBX_LEGACY_DIGEST_MD5 : SBX_LEGACY_DIGEST_SHA256;
    struct cli_recipient_args ra = {
        a->recipients, a->nr, a->recipient_files, a->nrf, NULL, 0, NULL, false,
    };
    if (cli_recipients_load(&rs, &nr, &ra) < 0)
        goto out;
    if ((fd = open(archive, O_RDONLY | O_CLOEXEC)) < 0) {
        cli_errorf("%s: %s", archive, strerror(errno));
        goto out;
    }
    if (read_archive(&m, fd, archive) < 0 || load_key(&key, a) < 0)
        goto out;
    out = a->output != NULL ? strdup(a->output) : default_output(archive, m.name);
    if (out == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    if (a->output == NULL && lstat(out, &st) == 0) {
        cli_errorf("%s already exists; choose the output with -o", out);
        goto out;
    }
    sbx_legacy_members lm = {
        NULL, 0, m.wrapped.ptr, m.wrapped.len, m.has_meta ? m.meta.ptr : NULL, m.meta.len};
    if (open_output(&file, &enc, out, rs, nr, a->output != NULL) < 0)
        goto out;
    if (sbx_legacy_decryptor_new(&dec, enc, key, m.scan, &lm, &opts, &rep) < 0) {
        cli_errorf("%s: %s", archive, sbx_error_last()->message);
        goto out;
    }
    if (!rep.hash_checked)
        cli_warnf("%s records no ciphertext hash: only the CBC padding was checked, so changes "
                  "to the data may go unnoticed; check the content",
                  archive);
    if (decrypt_archive(&m, fd, archive, dec) < 0)
        goto out;
    fprintf(stderr, "sbx: migrated %s -> %s\n", archive, out);
    if (a->delete_original && unlink(archive) != 0) {
        cli_errorf("%s: the new file is written, but the archive could not be removed", archive);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_sink_free(dec); // unfinished: the atomic file sink removes its temporary file
    sbx_sink_free(enc);
    sbx_sink_free(file);
    if (fd >= 0)
        close(fd);
    sbx_legacy_key_free(key);
    sbx_recipients_free(rs, nr);
    sbx_legacy_scan_free(m.scan);
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
