/*
 * tests/fileops/test_seal.c - seal / unseal and the encrypted metadata:
 * round trips (random binary, empty, several MiB), refusals (FILE.age
 * exists, symlinks, passphrase recipients, strict pre-flight), sync-folder
 * and version-control detection on fake folder layouts, hard links,
 * metadata round trip and strict decoding, and failure paths of unseal
 * (wrong key, tampered header, truncated payload, existing output): a clear
 * error, no output file, the sealed file kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "strongbox/fileops.h"
#include "strongbox/random.h"
#include "strongbox/memory.h"
#include "strongbox/sys/age.h"
#include "fileops/seal.h"
#include "helpers.h"

static char dir[256];
static sbx_identity *id, *other_id;
static sbx_recipient *rcpt;

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sbx-seal-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static uint8_t *
make_file(const char *path, size_t n)
{
    uint8_t *data = test_malloc_rand(n);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return data;
}

static uint8_t *
read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void
round_trip(size_t n, bool meta)
{
    char path[300], sealed[300];
    sbx_seal_report sr;
    sbx_unseal_report ur;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    struct stat st;
    size_t got;
    path_in(path, sizeof(path), "data.bin");
    path_in(sealed, sizeof(sealed), "data.bin.age");
    uint8_t *data = make_file(path, n);
    so.meta = meta;
    so.verify_identities = &id;
    so.nverify = 1;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_string_equal(sr.output, sealed);
    assert_true(sr.verified);
    assert_true(sr.verified_identity);
    assert_true(sr.destroyed);
    assert_true(sr.destroy.overwritten);
    assert_int_equal(sr.size, n);
    assert_int_equal(sr.meta, meta);
    assert_false(exists(path));
    assert_int_equal(stat(sealed, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(sr.output_size, (uint64_t)st.st_size);

    assert_sbx_ok(sbx_unseal_file(&ur, sealed, &id, 1, NULL));
    assert_false(exists(sealed));
    assert_true(ur.removed);
    assert_int_equal(ur.size, n);
    assert_memory_equal(ur.sha256, sr.sha256, 32);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    uint8_t *back = read_file(path, &got);
    assert_int_equal(got, n);
    if (n > 0)
        assert_memory_equal(back, data, n);
    assert_int_equal(ur.has_meta, meta);
    if (meta) {
        assert_string_equal(ur.meta.name, "data.bin");
        assert_int_equal(ur.meta.size, n);
        assert_true(ur.meta_size_ok);
        assert_int_equal(ur.meta.nrecipients, 1);
        assert_int_equal(strncmp(ur.meta.recipients[0], "sha256:", 7), 0);
        assert_int_equal(strlen(ur.meta.recipients[0]), 7 + 16);
        assert_int_equal(ur.meta.nhistory, 1);
        assert_non_null(strstr(ur.meta.history[0], "sealed by sbx"));
        assert_string_equal(ur.meta.tool, "sbx " SBX_VERSION_STRING);
    }
    free(back);
    free(data);
    assert_int_equal(unlink(path), 0);
}

static void
seal_round_trips_binary_empty_and_large(void **state)
{
    (void)state;
    round_trip(1000, false);
    round_trip(0, false);
    round_trip(0, true);
    round_trip(65536, true); // exactly one full chunk
    round_trip(3 * 1024 * 1024 + 17, false);
    round_trip(200001, true);
}

static void
seal_keep_keeps_the_original(void **state)
{
    char path[300];
    sbx_seal_report sr;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    (void)state;
    path_in(path, sizeof(path), "keep.txt");
    free(make_file(path, 100));
    so.keep = true;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_true(exists(path));
    assert_true(exists(sr.output));
    assert_false(sr.destroyed);
    assert_true(sr.verified);
    assert_false(sr.verified_identity);
}

static void
seal_refuses_when_the_age_file_exists(void **state)
{
    char path[300], sealed[300];
    sbx_seal_report sr;
    (void)state;
    path_in(path, sizeof(path), "x.txt");
    path_in(sealed, sizeof(sealed), "x.txt.age");
    free(make_file(path, 100));
    FILE *f = fopen(sealed, "w");
    fputs("precious", f);
    fclose(f);
    assert_sbx_err(sbx_seal_file(&sr, path, &rcpt, 1, NULL), SBX_EEXISTS);
    assert_non_null(strstr(sbx_error_last()->message, "already exists"));
    size_t n;
    uint8_t *p = read_file(sealed, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "precious", 8);
    free(p);
    assert_true(exists(path));
}

static void
seal_refuses_links_devices_and_passphrases(void **state)
{
    char path[300], link_path[300];
    sbx_seal_report sr;
    sbx_recipient *pass = NULL;
    (void)state;
    path_in(path, sizeof(path), "t.txt");
    path_in(link_path, sizeof(link_path), "l.txt");
    free(make_file(path, 10));
    assert_int_equal(symlink(path, link_path), 0);
    assert_sbx_err(sbx_seal_file(&sr, link_path, &rcpt, 1, NULL), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "symbolic link"));
    assert_sbx_err(sbx_seal_file(&sr, dir, &rcpt, 1, NULL), SBX_EINVAL);
    assert_sbx_ok(sbx_recipient_scrypt_new(&pass, "pw", 2, 10));
    assert_sbx_err(sbx_seal_file(&sr, path, &pass, 1, NULL), SBX_EINVAL);
    assert_sbx_err(sbx_seal_file(&sr, path, &rcpt, 0, NULL), SBX_EINVAL);
    sbx_recipient_free(pass);
    assert_true(exists(path));
    char sealed[300];
    path_in(sealed, sizeof(sealed), "t.txt.age");
    assert_false(exists(sealed));
}

static void
seal_with_a_wrong_verify_identity_keeps_everything(void **state)
{
    char path[300], sealed[300];
    sbx_seal_report sr;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    (void)state;
    path_in(path, sizeof(path), "v.txt");
    path_in(sealed, sizeof(sealed), "v.txt.age");
    free(make_file(path, 1000));
    so.verify_identities = &other_id;
    so.nverify = 1;
    assert_sbx_err(sbx_seal_file(&sr, path, &rcpt, 1, &so), SBX_ENOMATCH);
    assert_non_null(strstr(sbx_error_last()->message, "read-back check"));
    assert_true(exists(path));
    assert_false(exists(sealed));
}

/* mkdir -p */
static void
mkdirs(const char *rel)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", dir, rel);
    assert_int_equal(system(cmd), 0);
}

static void
touch(const char *rel)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static void
expect_sync(const char *rel, const char *service, const char *root_suffix)
{
    char p[600];
    sbx_seal_preflight pf;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    assert_sbx_ok(sbx_seal_preflight_check(&pf, p));
    if (service == NULL) {
        assert_false(pf.sync_folder);
        return;
    }
    assert_true(pf.sync_folder);
    assert_string_equal(pf.sync_service, service);
    size_t a = strlen(pf.sync_root), b = strlen(root_suffix);
    assert_true(a >= b);
    assert_string_equal(pf.sync_root + a - b, root_suffix);
}

static void
preflight_detects_sync_folders(void **state)
{
    (void)state;
    mkdirs("Dropbox/work/deep");
    touch("Dropbox/work/deep/f");
    expect_sync("Dropbox/work/deep/f", "Dropbox", "/Dropbox");
    mkdirs("Dropbox (Lab)/a");
    touch("Dropbox (Lab)/a/f");
    expect_sync("Dropbox (Lab)/a/f", "Dropbox", "/Dropbox (Lab)");
    mkdirs("renamed/sub");
    touch("renamed/.dropbox");
    touch("renamed/sub/f");
    expect_sync("renamed/sub/f", "Dropbox", "/renamed");
    mkdirs("cache/.dropbox.cache");
    touch("cache/f");
    expect_sync("cache/f", "Dropbox", "/cache");
    mkdirs("Google Drive/My Drive");
    touch("Google Drive/My Drive/f");
    expect_sync("Google Drive/My Drive/f", "Google Drive", "/My Drive");
    mkdirs("OneDrive - Contoso/docs");
    touch("OneDrive - Contoso/docs/f");
    expect_sync("OneDrive - Contoso/docs/f", "OneDrive", "/OneDrive - Contoso");
    mkdirs("home/Library/Mobile Documents/com~apple~CloudDocs");
    touch("home/Library/Mobile Documents/com~apple~CloudDocs/f");
    expect_sync("home/Library/Mobile Documents/com~apple~CloudDocs/f", "iCloud Drive",
                "com~apple~CloudDocs");
    mkdirs("plain/Dropboxes");
    touch("plain/Dropboxes/f");
    expect_sync("plain/Dropboxes/f", NULL, NULL); // no false positive on a similar name
}

static void
expect_vcs(const char *rel, const char *type, const char *root_suffix)
{
    char p[600];
    sbx_seal_preflight pf;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    assert_sbx_ok(sbx_seal_preflight_check(&pf, p));
    if (type == NULL) {
        assert_false(pf.vcs);
        return;
    }
    assert_true(pf.vcs);
    assert_string_equal(pf.vcs_type, type);
    size_t a = strlen(pf.vcs_root), b = strlen(root_suffix);
    assert_true(a >= b);
    assert_string_equal(pf.vcs_root + a - b, root_suffix);
}

static void
preflight_detects_version_control(void **state)
{
    (void)state;
    mkdirs("g/.git");
    mkdirs("g/src/deep");
    touch("g/src/deep/f");
    expect_vcs("g/src/deep/f", "git", "/g");
    mkdirs("wt/sub");
    touch("wt/.git"); // a worktree or submodule: .git is a file
    touch("wt/sub/f");
    expect_vcs("wt/sub/f", "git", "/wt");
    mkdirs("h/.hg");
    mkdirs("h/a");
    touch("h/a/f");
    expect_vcs("h/a/f", "hg", "/h");
    mkdirs("s/.svn");
    mkdirs("s/a/b"); // the seed only looked in the file's own directory
    touch("s/a/b/f");
    expect_vcs("s/a/b/f", "svn", "/s");
    mkdirs("none");
    touch("none/f");
    expect_vcs("none/f", NULL, NULL);
}

static void
seal_strict_refuses_and_default_warns(void **state)
{
    char path[300], sealed[300], other[300];
    sbx_seal_report sr;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    (void)state;
    mkdirs("repo/.git");
    path_in(path, sizeof(path), "repo/f.txt");
    path_in(sealed, sizeof(sealed), "repo/f.txt.age");
    free(make_file(path, 50));
    so.strict = true;
    assert_sbx_err(sbx_seal_file(&sr, path, &rcpt, 1, &so), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "strict"));
    assert_non_null(strstr(sbx_error_last()->message, "git"));
    assert_true(sr.preflight.vcs);
    assert_true(exists(path));
    assert_false(exists(sealed));
    so.strict = false;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_true(sr.preflight.vcs);
    assert_false(exists(path));

    // several hard links: strict refuses; otherwise only this name goes
    path_in(path, sizeof(path), "hl.txt");
    path_in(other, sizeof(other), "hl2.txt");
    free(make_file(path, 50));
    assert_int_equal(link(path, other), 0);
    so.strict = true;
    assert_sbx_err(sbx_seal_file(&sr, path, &rcpt, 1, &so), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "hard links"));
    so.strict = false;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_int_equal(sr.preflight.links, 2);
    assert_true(sr.destroyed);
    assert_false(sr.destroy.overwritten);
    assert_false(exists(path));
    assert_true(exists(other));
}

static void
unseal_failures_write_nothing_and_keep_the_sealed_file(void **state)
{
    char path[300], sealed[300];
    sbx_seal_report sr;
    sbx_unseal_report ur;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    sbx_unseal_options uo = SBX_UNSEAL_OPTIONS_INIT;
    size_t n;
    (void)state;
    path_in(path, sizeof(path), "u.bin");
    path_in(sealed, sizeof(sealed), "u.bin.age");
    free(make_file(path, 150000));
    so.meta = true;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    uint8_t *orig = read_file(sealed, &n);

    // wrong key
    assert_sbx_err(sbx_unseal_file(&ur, sealed, &other_id, 1, NULL), SBX_ENOMATCH);
    assert_false(exists(path));
    assert_true(exists(sealed));

    // every byte of the header region, flipped in turn: always refused, nothing written
    size_t hdr_end = (size_t)((uint8_t *)memmem(orig, n, "\n---", 4) - orig) + 40;
    for (size_t i = 0; i < hdr_end; i += 7) {
        orig[i] ^= 0x01;
        assert_int_equal(sbx_atomic_write_file(sealed, orig, n, 0600), 0);
        assert_true(sbx_unseal_file(&ur, sealed, &id, 1, NULL) < 0);
        assert_false(exists(path));
        orig[i] ^= 0x01;
    }
    // a flipped payload byte, and a truncation: SBX_EPAYLOAD, nothing written
    orig[n - 100] ^= 0x80;
    assert_int_equal(sbx_atomic_write_file(sealed, orig, n, 0600), 0);
    assert_sbx_err(sbx_unseal_file(&ur, sealed, &id, 1, NULL), SBX_EPAYLOAD);
    assert_false(exists(path));
    orig[n - 100] ^= 0x80;
    assert_int_equal(sbx_atomic_write_file(sealed, orig, n - 1000, 0600), 0);
    assert_sbx_err(sbx_unseal_file(&ur, sealed, &id, 1, NULL), SBX_EPAYLOAD);
    assert_false(exists(path));
    assert_true(exists(sealed));

    // existing output: refused without force, replaced with it
    assert_int_equal(sbx_atomic_write_file(sealed, orig, n, 0600), 0);
    assert_int_equal(sbx_atomic_write_file(path, "old", 3, 0644), 0);
    assert_sbx_err(sbx_unseal_file(&ur, sealed, &id, 1, NULL), SBX_EEXISTS);
    uo.force = true;
    uo.keep = true;
    assert_sbx_ok(sbx_unseal_file(&ur, sealed, &id, 1, &uo));
    assert_true(exists(sealed));
    assert_false(ur.removed);
    assert_int_equal(ur.size, 150000);

    // no .age suffix and no output name
    char plain[300];
    path_in(plain, sizeof(plain), "noext");
    assert_int_equal(sbx_atomic_write_file(plain, orig, n, 0600), 0);
    assert_sbx_err(sbx_unseal_file(&ur, plain, &id, 1, NULL), SBX_EINVAL);
    free(orig);
}

static void
meta_reads_back_and_decodes_strictly(void **state)
{
    char path[300], sealed[300];
    sbx_seal_report sr;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    sbx_seal_meta m, back;
    bool found;
    sbx_buf text = SBX_BUF_INIT;
    (void)state;
    path_in(path, sizeof(path), "m.txt");
    path_in(sealed, sizeof(sealed), "m.txt.age");
    free(make_file(path, 10));
    so.meta = true;
    so.keep = true;
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_sbx_ok(sbx_seal_meta_read(&m, &found, sealed, &id, 1));
    assert_true(found);
    assert_string_equal(m.name, "m.txt");
    assert_sbx_err(sbx_seal_meta_read(&m, &found, sealed, &other_id, 1), SBX_ENOMATCH);

    // the encoded text never holds the plaintext name in a sealed file
    size_t n;
    uint8_t *raw = read_file(sealed, &n);
    assert_null(memmem(raw, n, "m.txt", 5));
    free(raw);

    // encode / decode with awkward values
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "a%%b\nc\x7f d:e");
    m.size = UINT64_MAX;
    m.mtime = -5;
    snprintf(m.tool, sizeof(m.tool), "sbx 9");
    m.nrecipients = 2;
    snprintf(m.recipients[0], sizeof(m.recipients[0]), "sha256:0011223344556677");
    snprintf(m.recipients[1], sizeof(m.recipients[1]), "sha256:8899aabbccddeeff");
    m.nhistory = 2;
    snprintf(m.history[0], sizeof(m.history[0]), "one");
    snprintf(m.history[1], sizeof(m.history[1]), "two");
    assert_sbx_ok(sbx_seal_meta_encode(&text, &m));
    assert_sbx_ok(sbx_seal_meta_decode(&back, text.ptr, text.len));
    assert_memory_equal(&m, &back, sizeof(m));
    // unknown keys are skipped (forward compatibility)
    assert_sbx_ok(sbx_seal_meta_decode(&back, (const uint8_t *)"sbx-meta 1\nfuture: x\n", 21));

    const char *bad[] = {
        "",
        "sbx-meta 2\n",
        "sbx-meta 1\nname: x",            // no final newline
        "sbx-meta 1\nname x\n",           // no ": "
        "sbx-meta 1\nsize: -1\n",         // negative size
        "sbx-meta 1\nsize: 1x\n",         // trailing junk
        "sbx-meta 1\nsize: \n",           // empty number
        "sbx-meta 1\nname: a%zz\n",       // bad escape
        "sbx-meta 1\nname: a%00\n",       // NUL escape
        "sbx-meta 1\nname: a\tb\n",       // raw control character
        "sbx-meta 1\nname: a\nname: b\n", // repeated key
        "sbx-meta 1\nsize: 99999999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_sbx_err(sbx_seal_meta_decode(&back, (const uint8_t *)bad[i], strlen(bad[i])),
                       SBX_EFORMAT);
    sbx_buf_dispose(&text);
}

/*
 * Hooks into the seal workflow: an identity used as a verify identity (runs
 * after FILE.age is written, before the original is destroyed), and a
 * recipient (its wrap() runs when the encryptor starts, before FILE is read).
 * Each changes the original once, as a concurrent writer or editor would.
 */
enum mischief { REPLACE_BY_RENAME, APPEND_IN_PLACE };

static char mischief_path[300];

static void
do_mischief(enum mischief m)
{
    char tmp[320];
    FILE *f;
    if (m == REPLACE_BY_RENAME) { // an editor saving: write a new file, rename it over
        snprintf(tmp, sizeof(tmp), "%s.new", mischief_path);
        f = fopen(tmp, "wb");
        assert_non_null(f);
        fputs("new content", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, mischief_path), 0);
    } else {
        f = fopen(mischief_path, "ab");
        assert_non_null(f);
        fputs("appended", f);
        assert_int_equal(fclose(f), 0);
    }
}

struct hook_ident {
    sbx_identity base;
    sbx_identity *inner;
    enum mischief what;
    bool done;
};

static int
hook_unwrap(sbx_identity *self, const sbx_age_stanza *const *s, size_t n,
            uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    struct hook_ident *h = (struct hook_ident *)self;
    if (!h->done) {
        h->done = true;
        do_mischief(h->what);
    }
    return h->inner->ops->unwrap(h->inner, s, n, key);
}

static void
hook_ident_free(sbx_identity *self)
{
    (void)self;
}

static const char *const hook_types[] = {"X25519", NULL};
static const sbx_identity_ops hook_ident_ops = {
    SBX_IDENTITY_OPS_VERSION, hook_types, hook_unwrap, NULL, NULL, NULL, hook_ident_free};

struct hook_rcpt {
    sbx_recipient base;
    sbx_recipient *inner;
    bool done;
};

static int
hook_wrap(const sbx_recipient *self, sbx_age_header *hdr, const uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    struct hook_rcpt *h = (struct hook_rcpt *)(uintptr_t)self;
    if (!h->done) {
        h->done = true;
        do_mischief(APPEND_IN_PLACE);
    }
    return h->inner->ops->wrap(h->inner, hdr, key);
}

static void
hook_rcpt_free(sbx_recipient *self)
{
    (void)self;
}

static const sbx_recipient_ops hook_rcpt_ops = {
    SBX_RECIPIENT_OPS_VERSION, "X25519", 0, hook_wrap, NULL, hook_rcpt_free};

static void
seal_never_destroys_an_original_changed_after_it_was_read(void **state)
{
    static const enum mischief kinds[] = {REPLACE_BY_RENAME, APPEND_IN_PLACE};
    char sealed[300];
    sbx_seal_report sr;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    (void)state;
    path_in(mischief_path, sizeof(mischief_path), "edited.txt");
    path_in(sealed, sizeof(sealed), "edited.txt.age");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct hook_ident hook = {{&hook_ident_ops}, id, kinds[i], false};
        sbx_identity *hid = &hook.base;
        free(make_file(mischief_path, 5000));
        so.verify_identities = &hid;
        so.nverify = 1;
        assert_sbx_err(sbx_seal_file(&sr, mischief_path, &rcpt, 1, &so), SBX_EIO);
        assert_true(hook.done);
        assert_false(sr.destroyed);
        assert_true(exists(mischief_path)); // the new content was not destroyed
        assert_true(exists(sealed));        // the sealed (older) content is complete
        assert_int_equal(unlink(sealed), 0);
        assert_int_equal(unlink(mischief_path), 0);
    }
}

static void
seal_refuses_an_original_changed_while_it_was_read(void **state)
{
    char sealed[300];
    sbx_seal_report sr;
    (void)state;
    path_in(mischief_path, sizeof(mischief_path), "growing.txt");
    path_in(sealed, sizeof(sealed), "growing.txt.age");
    free(make_file(mischief_path, 5000));
    struct hook_rcpt hook = {{&hook_rcpt_ops}, rcpt, false};
    sbx_recipient *hr = &hook.base;
    assert_sbx_err(sbx_seal_file(&sr, mischief_path, &hr, 1, NULL), SBX_EIO);
    assert_true(hook.done);
    assert_non_null(strstr(sbx_error_last()->message, "changed while it was being sealed"));
    assert_true(exists(mischief_path));
    assert_false(exists(sealed)); // not a faithful copy of anything: removed
}

/* An age file at path under a file key the test knows (as seal builds it). */
static void
write_keyed_file(const char *path, const uint8_t key[SBX_AGE_FILE_KEY_LEN], const uint8_t *data,
                 size_t n)
{
    sbx_age_header *h = NULL;
    sbx_sink *file = NULL, *enc = NULL;
    assert_sbx_ok(sbx_age_header_new(&h));
    assert_sbx_ok(sbx_age_header_wrap(h, &rcpt, 1, key));
    assert_sbx_ok(sbx_sink_atomic_file_new(&file, path, 0600));
    assert_sbx_ok(sbx_age_encryptor_new_with_header(&enc, file, h, key, NULL));
    assert_sbx_ok(sbx_sink_write(enc, data, n));
    assert_sbx_ok(sbx_sink_finish(enc));
    sbx_sink_free(enc);
    sbx_sink_free(file);
    sbx_age_header_free(h);
}

static void
read_back_detects_a_file_modified_after_sealing(void **state)
{
    char path[300];
    uint8_t key[SBX_AGE_FILE_KEY_LEN], other[SBX_AGE_FILE_KEY_LEN], digest[32], *data, *raw;
    uint64_t size = 0;
    size_t n = 100000, len;
    (void)state;
    path_in(path, sizeof(path), "readback.age");
    assert_sbx_ok(sbx_random_bytes(key, sizeof(key)));
    memcpy(other, key, sizeof(key));
    other[0] ^= 1;
    data = make_file(path, n); // the plaintext (overwritten just below)
    write_keyed_file(path, key, data, n);
    assert_sbx_ok(sbx_seal__read_back(digest, &size, path, key));
    assert_int_equal(size, n);
    assert_sbx_err(sbx_seal__read_back(digest, &size, path, other), SBX_EMAC);
    raw = read_file(path, &len);
    size_t at[] = {len - 1, len - 70000}; // in the last chunk, in the first one
    for (size_t i = 0; i < 2; i++) {      // a payload byte changed after sealing
        raw[at[i]] ^= 0x20;
        assert_int_equal(sbx_atomic_write_file(path, raw, len, 0600), 0);
        assert_sbx_err(sbx_seal__read_back(digest, &size, path, key), SBX_EPAYLOAD);
        raw[at[i]] ^= 0x20;
    }
    uint8_t *line = memmem(raw, len, "-> X25519 ", 10); // a header byte: the MAC no longer matches
    assert_non_null(line);
    uint8_t saved = line[12];
    line[12] = saved == 'A' ? 'B' : 'A';
    assert_int_equal(sbx_atomic_write_file(path, raw, len, 0600), 0);
    assert_sbx_err(sbx_seal__read_back(digest, &size, path, key), SBX_EMAC);
    line[12] = saved;
    assert_int_equal(sbx_atomic_write_file(path, raw, len - 10, 0600), 0); // truncated
    assert_sbx_err(sbx_seal__read_back(digest, &size, path, key), SBX_EPAYLOAD);
    assert_int_equal(unlink(path), 0);
    sbx_wipe(key, sizeof(key));
    free(raw);
    free(data);
}

static void
unseal_refuses_an_output_that_is_the_sealed_file_or_not_a_file(void **state)
{
    char path[300], sealed[300], dotted[320], link_path[300];
    sbx_seal_report sr;
    sbx_unseal_report ur;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    sbx_unseal_options uo = SBX_UNSEAL_OPTIONS_INIT;
    size_t n, m;
    (void)state;
    path_in(path, sizeof(path), "self.bin");
    path_in(sealed, sizeof(sealed), "self.bin.age");
    path_in(link_path, sizeof(link_path), "self-link");
    snprintf(dotted, sizeof(dotted), "%s/./self.bin.age", dir);
    free(make_file(path, 3000));
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    uint8_t *before = read_file(sealed, &n);
    assert_int_equal(symlink(sealed, link_path), 0);
    uo.force = true;
    const char *outputs[] = {sealed, dotted, link_path};
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        uo.output = outputs[i];
        assert_sbx_err(sbx_unseal_file(&ur, sealed, &id, 1, &uo), SBX_EINVAL);
        assert_false(ur.removed);
        uint8_t *after = read_file(sealed, &m); // still the sealed file, byte for byte
        assert_int_equal(m, n);
        assert_memory_equal(after, before, n);
        free(after);
    }
    // a device is written directly, not atomically: refused, the sealed file kept
    uo.output = "/dev/null";
    assert_sbx_err(sbx_unseal_file(&ur, sealed, &id, 1, &uo), SBX_EINVAL);
    assert_false(ur.removed);
    assert_true(exists(sealed));
    free(before);
}

/* Options version 2: a note becomes a second history line (one line, printable). */
static void
seal_records_a_note_in_the_metadata(void **state)
{
    (void)state;
    char path[300], sealed[300];
    sbx_seal_report sr;
    sbx_seal_meta m;
    bool found = false;
    sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
    path_in(path, sizeof(path), "noted.bin");
    path_in(sealed, sizeof(sealed), "noted.bin.age");
    free(make_file(path, 100));
    so.meta = true;
    so.keep = true;
    so.note = "subject 17\nsession 2";
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_sbx_ok(sbx_seal_meta_read(&m, &found, sealed, &id, 1));
    assert_true(found);
    assert_int_equal(m.nhistory, 2);
    assert_non_null(strstr(m.history[1], " note: subject 17 session 2"));
    so.version = 1; // the old layout: no note field is read
    assert_int_equal(unlink(sealed), 0);
    assert_sbx_ok(sbx_seal_file(&sr, path, &rcpt, 1, &so));
    assert_sbx_ok(sbx_seal_meta_read(&m, &found, sealed, &id, 1));
    assert_int_equal(m.nhistory, 1);
    assert_int_equal(unlink(sealed), 0);
    assert_int_equal(unlink(path), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_records_a_note_in_the_metadata),
        cmocka_unit_test_setup_teardown(seal_round_trips_binary_empty_and_large, setup, teardown),
        cmocka_unit_test_setup_teardown(seal_keep_keeps_the_original, setup, teardown),
        cmocka_unit_test_setup_teardown(seal_refuses_when_the_age_file_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(seal_refuses_links_devices_and_passphrases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(seal_with_a_wrong_verify_identity_keeps_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(preflight_detects_sync_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(preflight_detects_version_control, setup, teardown),
        cmocka_unit_test_setup_teardown(seal_strict_refuses_and_default_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(unseal_failures_write_nothing_and_keep_the_sealed_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(meta_reads_back_and_decodes_strictly, setup, teardown),
        cmocka_unit_test_setup_teardown(seal_never_destroys_an_original_changed_after_it_was_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(seal_refuses_an_original_changed_while_it_was_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            unseal_refuses_an_output_that_is_the_sealed_file_or_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(read_back_detects_a_file_modified_after_sealing, setup,
                                        teardown),
    };
    int rc;
    test_seed_init("fileops/seal");
    if (sbx_identity_generate(&id) != 0 || sbx_identity_generate(&other_id) != 0 ||
        sbx_identity_to_recipient(&rcpt, id) != 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    sbx_recipient_free(rcpt);
    sbx_identity_free(id);
    sbx_identity_free(other_id);
    return rc;
}
