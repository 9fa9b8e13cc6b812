/*
 * src/fileops/seal.c - seal (encrypt next to itself, verify, destroy the
 * original) and unseal, with optional encrypted metadata.
 *
 * Implementation notes (strongbox/fileops.h, docs/seal.md):
 *  - Seal draws the file key itself (sbx_random_bytes, secure memory),
 *    builds the header (the sbx-meta stanza, then the recipients' stanzas,
 *    strongbox/sys/age.h) and starts sbx_age_encryptor_new_with_header().
 *    The read-back check needs no private key: the new file's header is
 *    read, opened with the kept file key (sbx_age_header_set_file_key: one
 *    MAC check) and its payload decrypted (sbx_age_decryptor_new_opened),
 *    every chunk verified, the plaintext hashed and compared with the
 *    original's SHA-256. The key is wiped when the seal ends.
 *  - Unseal and sbx_seal_meta_read(): the header is read once and unwrapped
 *    once (one MAC check); the sbx-meta stanza is decrypted with the opened
 *    header's file key, then the payload read through the same opened
 *    header. The stanza's structure is checked on every header read (its
 *    rule is registered, fileops/stanza_types.c).
 *  - Metadata text (SBX_META_MAX_SIZE at most): "sbx-meta 1\n", then
 *    "key: value\n" lines; in values, bytes < 0x20, 0x7f and '%' are written
 *    %XX. Unknown keys are skipped (forward compatibility); a key given
 *    twice that is not repeatable is an error.
 */
#include "strongbox/fileops.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "fileops/seal.h"
#include "strongbox/sys/age.h"
#include "fileops/age_file.h"
#include "fileops/stanza_types.h"
#include "core/crypto.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SALT_LEN   16
#define READ_BLOCK (64 * 1024)

/* ---- metadata text ---- */

static int
put_value(sbx_buf *out, const char *key, const char *value)
{
    int err = sbx_buf_append(out, key, strlen(key));
    if (err == 0)
        err = sbx_buf_append(out, ": ", 2);
    for (const unsigned char *c = (const unsigned char *)value; *c && err == 0; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '%') {
            char esc[4];
            snprintf(esc, sizeof(esc), "%%%02X", *c);
            err = sbx_buf_append(out, esc, 3);
        } else {
            err = sbx_buf_append(out, c, 1);
        }
    }
    return err == 0 ? sbx_buf_append(out, "\n", 1) : err;
}

/* see strongbox/fileops.h */
int
sbx_seal_meta_encode(sbx_buf *out, const sbx_seal_meta *m)
{
    char num[32];
    int err = sbx_buf_append(out, "sbx-meta 1\n", 11);
    if (err == 0 && m->name[0])
        err = put_value(out, "name", m->name);
    snprintf(num, sizeof(num), "%" PRIu64, m->size);
    if (err == 0)
        err = put_value(out, "size", num);
    snprintf(num, sizeof(num), "%" PRId64, m->mtime);
    if (err == 0)
        err = put_value(out, "mtime", num);
    if (err == 0 && m->tool[0])
        err = put_value(out, "tool", m->tool);
    for (size_t i = 0; i < m->nrecipients && i < SBX_META_MAX_RECIPIENTS && err == 0; i++)
        err = put_value(out, "recipient", m->recipients[i]);
    for (size_t i = 0; i < m->nhistory && i < SBX_META_MAX_HISTORY && err == 0; i++)
        err = put_value(out, "history", m->history[i]);
    if (err == 0 && out->len > SBX_META_MAX_SIZE)
        err = sbx__error(SBX_ETOOBIG, "the metadata exceeds %d bytes", SBX_META_MAX_SIZE);
    return err;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescape [v, end) into out (cap bytes with the NUL). */
static int
get_value(char *out, size_t cap, const char *v, const char *end, size_t line)
{
    size_t n = 0;
    for (; v < end; v++) {
        int c = (unsigned char)*v;
        if (c < 0x20 || c == 0x7f)
            return sbx__error(SBX_EFORMAT, "metadata line %zu: control character", line);
        if (c == '%') {
            int hi = end - v > 2 ? hexval(v[1]) : -1, lo = end - v > 2 ? hexval(v[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return sbx__error(SBX_EFORMAT, "metadata line %zu: bad %% escape", line);
            c = hi * 16 + lo;
            v += 2;
        }
        if (n + 1 >= cap)
            return sbx__error(SBX_EFORMAT, "metadata line %zu: value too long", line);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

static int
get_number(char *tmp, size_t cap, const char *v, const char *end, size_t line, bool sign,
           int64_t *s, uint64_t *u)
{
    char *e;
    int err = get_value(tmp, cap, v, end, line);
    if (err < 0)
        return err;
    errno = 0;
    if (tmp[0] == '\0' || (tmp[0] == '-' && !sign) || tmp[0] == '+' || tmp[0] == ' ')
        return sbx__error(SBX_EFORMAT, "metadata line %zu: bad number", line);
    if (sign)
        *s = strtoll(tmp, &e, 10);
    else
        *u = strtoull(tmp, &e, 10);
    if (*e != '\0' || errno != 0)
        return sbx__error(SBX_EFORMAT, "metadata line %zu: bad number", line);
    return 0;
}

static int
decode_line(sbx_seal_meta *m, const char *p, const char *end, size_t line, unsigned *seen)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    char tmp[SBX_META_LINE_LEN];
    if (colon == NULL || colon + 1 >= end + 1 || colon[1] != ' ')
        return sbx__error(SBX_EFORMAT, "metadata line %zu: expected \"key: value\"", line);
    size_t klen = (size_t)(colon - p);
    const char *v = colon + 2;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(p, s, klen) == 0)
#define ONCE(bit)                                                                                  \
    do {                                                                                           \
        if (*seen & (bit))                                                                         \
            return sbx__error(SBX_EFORMAT, "metadata line %zu: repeated key", line);               \
        *seen |= (bit);                                                                            \
    } while (0)
    if (KEY("name")) {
        ONCE(1u);
        return get_value(m->name, sizeof(m->name), v, end, line);
    }
    if (KEY("size")) {
        ONCE(2u);
        return get_number(tmp, sizeof(tmp), v, end, line, false, NULL, &m->size);
    }
    if (KEY("mtime")) {
        ONCE(4u);
        return get_number(tmp, sizeof(tmp), v, end, line, true, &m->mtime, NULL);
    }
    if (KEY("tool")) {
        ONCE(8u);
        return get_value(m->tool, sizeof(m->tool), v, end, line);
    }
    if (KEY("recipient")) {
        if (m->nrecipients == SBX_META_MAX_RECIPIENTS)
            return sbx__error(SBX_EFORMAT, "metadata: more than %d recipients",
                              SBX_META_MAX_RECIPIENTS);
        return get_value(m->recipients[m->nrecipients++], sizeof(m->recipients[0]), v, end, line);
    }
    if (KEY("history")) {
        if (m->nhistory == SBX_META_MAX_HISTORY)
            return sbx__error(SBX_EFORMAT, "metadata: more than %d history lines",
                              SBX_META_MAX_HISTORY);
        return get_value(m->history[m->nhistory++], sizeof(m->history[0]), v, end, line);
    }
#undef KEY
#undef ONCE
    return 0; // unknown key: written by a newer version
}

/* see strongbox/fileops.h */
int
sbx_seal_meta_decode(sbx_seal_meta *out, const uint8_t *text, size_t len)
{
    static const char magic[] = "sbx-meta 1\n";
    const char *p = (const char *)text, *end = p + len;
    unsigned seen = 0;
    size_t line = 1;
    int err;
    memset(out, 0, sizeof(*out));
    if (len > SBX_META_MAX_SIZE)
        return sbx__error(SBX_EFORMAT, "metadata larger than %d bytes", SBX_META_MAX_SIZE);
    if (len < sizeof(magic) - 1 || memcmp(p, magic, sizeof(magic) - 1) != 0)
        return sbx__error(SBX_EFORMAT, "metadata does not start with \"sbx-meta 1\" (written by "
                                       "a newer sbx? upgrade)");
    p += sizeof(magic) - 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        line++;
        if (nl == NULL)
            return sbx__error(SBX_EFORMAT, "metadata line %zu: missing line end", line);
        if ((err = decode_line(out, p, nl, line, &seen)) < 0) {
            memset(out, 0, sizeof(*out));
            return err;
        }
        p = nl + 1;
    }
    return 0;
}

/* ---- the sbx-meta stanza ---- */

static int
meta_key(uint8_t key[32], const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
         const uint8_t salt[SALT_LEN])
{
    return sbx__hkdf_sha256(key, file_key, SBX_AGE_FILE_KEY_LEN, salt, SALT_LEN,
                            SBX_META_STANZA_TYPE " " SBX_META_STANZA_VERSION);
}

/* see strongbox/fileops.h */
int
sbx_seal_meta_stanza_add(sbx_age_header *hdr, const sbx_seal_meta *meta,
                         const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_buf text = SBX_BUF_INIT;
    uint8_t salt[SALT_LEN], key[32], *body = NULL;
    char salt64[SBX_BASE64_PAD_LEN(SALT_LEN) + 1];
    int err;
    if ((err = sbx_seal_meta_encode(&text, meta)) < 0 ||
        (err = sbx_random_bytes(salt, sizeof(salt))) < 0 ||
        (err = meta_key(key, file_key, salt)) < 0)
        goto out;
    if ((body = malloc(text.len + 16)) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    if (sbx_base64_encode(salt64, sizeof(salt64), salt, sizeof(salt), false) < 0) {
        err = SBX_EINVAL;
        goto out;
    }
    const char *args[] = {SBX_META_STANZA_VERSION, salt64};
    if ((err = sbx__seal_zero_nonce(body, key, text.ptr, text.len)) == 0)
        err = sbx_age_header_add_stanza(hdr, SBX_META_STANZA_TYPE, args, 2, body, text.len + 16);
out:
    SBX_WIPE_BUF(key);
    sbx_buf_dispose(&text);
    free(body);
    return err;
}

/* Decrypt and decode an sbx-meta stanza. 0, SBX_EFORMAT, SBX_EAUTH. */
static int
meta_stanza_open(sbx_seal_meta *out, const sbx_age_stanza *s,
                 const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    uint8_t salt[SBX_BASE64_DECODED_MAX(SBX_BASE64_NOPAD_LEN(SALT_LEN))], key[32], *text = NULL;
    size_t salt_len = 0;
    int err;
    memset(out, 0, sizeof(*out));
    if (s->nargs != 2 || strcmp(s->args[0], SBX_META_STANZA_VERSION) != 0)
        return sbx__error(SBX_EFORMAT, "unknown %s stanza version (written by a newer sbx?)",
                          SBX_META_STANZA_TYPE);
    if (sbx_base64_decode(salt, sizeof(salt), &salt_len, s->args[1], strlen(s->args[1]), false) <
            0 ||
        salt_len != SALT_LEN || s->body_len < 16 || s->body_len > SBX_META_MAX_SIZE + 16)
        return sbx__error(SBX_EFORMAT, "malformed %s stanza", SBX_META_STANZA_TYPE);
    if ((text = malloc(s->body_len)) == NULL)
        return sbx__error_nomem();
    if ((err = meta_key(key, file_key, salt)) < 0)
        goto out;
    if ((err = sbx__open_zero_nonce(text, key, s->body, s->body_len)) < 0) {
        err = sbx__error(SBX_EAUTH, "the metadata stanza does not decrypt: it was not written "
                                    "with this file's key");
        goto out;
    }
    err = sbx_seal_meta_decode(out, text, s->body_len - 16);
out:
    SBX_WIPE_BUF(key);
    sbx_wipe(text, s->body_len); // the metadata is confidential
    free(text);
    return err;
}

/*
 * The metadata of an opened header: none, or one sbx-meta stanza decrypted
 * with the header's file key. what names the file in messages.
 */
static int
meta_from_header(sbx_seal_meta *out, bool *found, const sbx_age_header *h, const char *what)
{
    uint8_t *key = NULL;
    const sbx_age_stanza *s = NULL;
    int err = 0;
    *found = false;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sbx_age_header_count(h); i++) {
        const sbx_age_stanza *t = sbx_age_header_stanza(h, i);
        if (strcmp(t->type, SBX_META_STANZA_TYPE) != 0)
            continue;
        if (s != NULL)
            return sbx__error(SBX_EFORMAT, "%s has two metadata stanzas", what);
        s = t;
    }
    if (s == NULL)
        return 0;
    if ((key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_age_header_file_key(h, key)) == 0 && (err = meta_stanza_open(out, s, key)) == 0)
        *found = true;
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    return err;
}

/* see strongbox/fileops.h */
int
sbx_seal_meta_from_header(sbx_seal_meta *out, bool *found, const sbx_age_header *h)
{
    return meta_from_header(out, found, h, "the file");
}

/* ---- reading files back ---- */

/* Decrypt path with ids, hashing the plaintext. */
static int
hash_decrypt(uint8_t digest[32], uint64_t *size, const char *path, sbx_identity *const *ids,
             size_t n)
{
    sbx_source *in = NULL, *dec = NULL;
    sbx_sink *sha = NULL;
    sbx_age_decrypt_options o = SBX_AGE_DECRYPT_OPTIONS_INIT;
    int err;
    o.armor = SBX_ARMOR_NONE;
    if ((err = sbx_source_file_new(&in, path)) < 0 ||
        (err = sbx_age_decryptor_new(&dec, in, ids, n, &o)) < 0 ||
        (err = sbx_sink_sha256_new(&sha, digest)) < 0)
        goto out;
    err = sbx_stream_copy(sha, dec, size);
out:
    sbx_sink_free(sha);
    sbx_source_free(dec);
    sbx_source_free(in);
    return err;
}

/* see fileops/seal.h */
int
sbx_seal__read_back(uint8_t digest[32], uint64_t *size, const char *path,
                    const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_source *in = NULL, *dec = NULL;
    sbx_sink *sha = NULL;
    sbx_age_header *h = NULL;
    int err;
    *size = 0;
    if ((err = sbx_source_file_new(&in, path)) < 0 || (err = sbx_age_header_read(&h, in)) < 0 ||
        (err = sbx_age_header_set_file_key(h, file_key)) < 0 ||
        (err = sbx_age_decryptor_new_opened(&dec, h, in, NULL)) < 0 ||
        (err = sbx_sink_sha256_new(&sha, digest)) < 0)
        goto out;
    err = sbx_stream_copy(sha, dec, size);
out:
    sbx_sink_free(sha);
    sbx_source_free(dec);
    sbx_age_header_free(h);
    sbx_source_free(in);
    return err;
}

/* see strongbox/fileops.h */
int
sbx_seal_meta_read(sbx_seal_meta *out, bool *found, const char *path,
                   sbx_identity *const *identities, size_t count)
{
    sbx_fileops__age_file f;
    sbx_source *in = NULL;
    int err;
    memset(out, 0, sizeof(*out));
    *found = false;
    if ((err = sbx_fileops__stanza_types()) < 0 || (err = sbx_source_file_new(&in, path)) < 0)
        return err;
    if ((err = sbx_fileops__age_file_open(&f, in, SBX_ARMOR_AUTO, identities, count)) == 0) {
        err = meta_from_header(out, found, f.header, path);
        sbx_fileops__age_file_close(&f);
    }
    sbx_source_free(in);
    return err;
}

/* ---- pre-flight ---- */

static bool
component_is_sync(const char *c, const char *prev, char service[24])
{
    static const struct {
        const char *prefix;
        bool exact;
        const char *service;
    } names[] = {
        {"Dropbox", true, "Dropbox"},
        {"Dropbox (", false, "Dropbox"},
        {"Google Drive", true, "Google Drive"},
        {"GoogleDrive-", false, "Google Drive"},
        {"My Drive", true, "Google Drive"},
        {"OneDrive", true, "OneDrive"},
        {"OneDrive - ", false, "OneDrive"},
        {"OneDrive-", false, "OneDrive"},
        {"iCloud Drive", true, "iCloud Drive"},
        {"iCloudDrive", true, "iCloud Drive"},
        {"com~apple~CloudDocs", true, "iCloud Drive"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i].prefix);
        if (names[i].exact ? strcmp(c, names[i].prefix) == 0
                           : strncmp(c, names[i].prefix, n) == 0) {
            snprintf(service, 24, "%s", names[i].service);
            return true;
        }
    }
    if (strcmp(c, "Mobile Documents") == 0 && prev != NULL && strcmp(prev, "Library") == 0) {
        snprintf(service, 24, "iCloud Drive");
        return true;
    }
    return false;
}

static bool
exists_in(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
    return lstat(p, &st) == 0;
}

static const struct {
    const char *name;
    const char *service;
} sync_markers[] = {
    {".dropbox", "Dropbox"},
    {".dropbox.cache", "Dropbox"},
    {".tmp.drivedownload", "Google Drive"},
    {".shortcut-targets-by-id", "Google Drive"},
    {".849C9593-D756-4E56-8D6E-42412F2A707B", "OneDrive"},
};

static const char *const vcs_dirs[][2] = {{".git", "git"}, {".hg", "hg"}, {".svn", "svn"}};

/* Check one ancestor directory (dir is absolute; comp is its last component). */
static void
check_dir(sbx_seal_preflight *p, const char *dir, const char *comp, const char *prev)
{
    if (!p->sync_folder && comp != NULL && component_is_sync(comp, prev, p->sync_service)) {
        p->sync_folder = true;
        snprintf(p->sync_root, sizeof(p->sync_root), "%s", dir);
    }
    for (size_t i = 0; !p->sync_folder && i < sizeof(sync_markers) / sizeof(sync_markers[0]); i++) {
        if (exists_in(dir, sync_markers[i].name)) {
            p->sync_folder = true;
            snprintf(p->sync_service, sizeof(p->sync_service), "%s", sync_markers[i].service);
            snprintf(p->sync_root, sizeof(p->sync_root), "%s", dir);
        }
    }
    for (size_t i = 0; !p->vcs && i < 3; i++) {
        if (exists_in(dir, vcs_dirs[i][0])) {
            p->vcs = true;
            snprintf(p->vcs_type, sizeof(p->vcs_type), "%s", vcs_dirs[i][1]);
            snprintf(p->vcs_root, sizeof(p->vcs_root), "%s", dir);
        }
    }
}

/* see strongbox/fileops.h */
int
sbx_seal_preflight_check(sbx_seal_preflight *out, const char *path)
{
    struct stat st;
    char *copy, *abs;
    memset(out, 0, sizeof(*out));
    if (lstat(path, &st) != 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot stat %s", path);
    out->links = (uint64_t)st.st_nlink;
    if ((copy = strdup(path)) == NULL)
        return sbx__error_nomem();
    abs = realpath(dirname(copy), NULL);
    free(copy);
    if (abs == NULL)
        return sbx__error_sys(SBX_EIO, "cannot resolve the directory of %s", path);
    // From the file's directory up to "/": each directory, its name and its parent's name.
    for (;;) {
        char *slash = strrchr(abs, '/');
        const char *comp = slash[1] != '\0' ? slash + 1 : NULL, *prev = NULL;
        if (slash != abs) {
            *slash = '\0';
            const char *ps = strrchr(abs, '/');
            prev = ps + 1;
            *slash = '/';
        }
        check_dir(out, abs, comp, prev);
        if (slash == abs && slash[1] == '\0')
            break;
        if (slash == abs)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    free(abs);
    return 0;
}

/* ---- seal ---- */

static void
utc_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
recipient_fingerprint(char out[32], const sbx_recipient *r)
{
    sbx_buf s = SBX_BUF_INIT;
    uint8_t md[32];
    unsigned mdlen = 0;
    snprintf(out, 32, "sha256:unknown");
    if (sbx_recipient_to_string(r, &s) == 0 &&
        EVP_Digest(s.ptr, s.len, md, &mdlen, EVP_sha256(), NULL) == 1) {
        snprintf(out, 32, "sha256:");
        for (int i = 0; i < 8; i++)
            snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    }
    sbx_buf_dispose(&s);
}

static void
fill_meta(sbx_seal_meta *m, const char *path, const struct stat *st, sbx_recipient *const *rs,
          size_t n)
{
    char *copy = strdup(path), when[32];
    memset(m, 0, sizeof(*m));
    if (copy != NULL)
        snprintf(m->name, sizeof(m->name), "%s", basename(copy));
    free(copy);
    m->size = (uint64_t)st->st_size;
    m->mtime = (int64_t)st->st_mtime;
    snprintf(m->tool, sizeof(m->tool), "sbx %s", SBX_VERSION_STRING);
    for (size_t i = 0; i < n && i < SBX_META_MAX_RECIPIENTS; i++)
        recipient_fingerprint(m->recipients[m->nrecipients++], rs[i]);
    utc_now(when);
    snprintf(m->history[0], sizeof(m->history[0]), "%s sealed by sbx %s to %zu recipient%s", when,
             SBX_VERSION_STRING, n, n == 1 ? "" : "s");
    m->nhistory = 1;
}

/* A caller's note as one more history line (printable, one line, cut to fit). */
static void
add_note(sbx_seal_meta *m, const char *note)
{
    char when[32], *line = m->history[m->nhistory++];
    utc_now(when);
    int at = snprintf(line, sizeof(m->history[0]), "%s note: ", when);
    for (size_t i = 0; note[i] != '\0' && (size_t)at + 1 < sizeof(m->history[0]); i++)
        line[at++] = (unsigned char)note[i] < 0x20 || note[i] == 0x7f ? ' ' : note[i];
    line[at] = '\0';
}

static int
check_seal_args(sbx_seal_report *rep, const char *path, sbx_recipient *const *rs, size_t n,
                const sbx_seal_options *o, struct stat *st)
{
    struct stat ost;
    int err;
    if (n == 0)
        return sbx__error(SBX_EINVAL, "no recipients: seal needs at least one public key");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(sbx_recipient_type(rs[i]), "scrypt") == 0)
            return sbx__error(SBX_EINVAL, "seal encrypts to public keys only, not to a "
                                          "passphrase (use sbx encrypt -p)");
    }
    if (lstat(path, st) != 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot stat %s", path);
    if (!S_ISREG(st->st_mode))
        return sbx__error(SBX_EINVAL, "%s is %s: only regular files can be sealed", path,
                          S_ISLNK(st->st_mode) ? "a symbolic link (seal the target by its own "
                                                 "name)"
                                               : "not a regular file");
    if (snprintf(rep->output, sizeof(rep->output), "%s.age", path) >= (int)sizeof(rep->output))
        return sbx__error(SBX_EINVAL, "%s: path too long", path);
    if (lstat(rep->output, &ost) == 0)
        return sbx__error(SBX_EEXISTS,
                          "%s already exists: remove or rename it first; nothing "
                          "was done",
                          rep->output);
    if ((err = sbx_seal_preflight_check(&rep->preflight, path)) < 0)
        return err;
    const sbx_seal_preflight *p = &rep->preflight;
    if (o->strict && (p->sync_folder || p->vcs || p->links > 1)) {
        char why[160] = "";
        if (p->sync_folder)
            snprintf(why + strlen(why), sizeof(why) - strlen(why), "inside a %s folder",
                     p->sync_service);
        if (p->vcs)
            snprintf(why + strlen(why), sizeof(why) - strlen(why), "%sunder %s version control",
                     why[0] ? ", " : "", p->vcs_type);
        if (p->links > 1)
            snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%llu hard links",
                     why[0] ? ", " : "", (unsigned long long)p->links);
        return sbx__error(SBX_EINVAL,
                          "%s: refused (strict): %s; copies may already exist "
                          "elsewhere that sealing cannot remove",
                          path, why);
    }
    return 0;
}

/* Encrypt the open file fd to rep->output under header h and file_key, hashing the plaintext. */
static int
encrypt_to(sbx_seal_report *rep, int fd, const sbx_age_header *h,
           const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_sink *file = NULL, *enc = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(READ_BLOCK);
    int err = 0;
    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = sbx__error_nomem();
        goto out;
    }
    // FILE.age was checked absent; NOREPLACE keeps a file or link planted since then intact.
    if ((err = sbx_sink_atomic_file_new_ex(&file, rep->output, 0600, SBX_ATOMIC_NOREPLACE)) < 0 ||
        (err = sbx_age_encryptor_new_with_header(&enc, file, h, file_key, NULL)) < 0)
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf, READ_BLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = sbx__error_sys(SBX_EIO, "read error while sealing");
            goto out;
        }
        if (r == 0)
            break;
        rep->size += (uint64_t)r;
        if (EVP_DigestUpdate(md, buf, (size_t)r) != 1) {
            err = sbx__error_crypto("SHA-256");
            goto out;
        }
        if ((err = sbx_sink_write(enc, buf, (size_t)r)) < 0)
            goto out;
    }
    if (EVP_DigestFinal_ex(md, rep->sha256, NULL) != 1) {
        err = sbx__error_crypto("SHA-256");
        goto out;
    }
    err = sbx_sink_finish(enc);
out:
    sbx_sink_free(enc);
    sbx_sink_free(file);
    EVP_MD_CTX_free(md);
    if (buf != NULL)
        sbx_wipe(buf, READ_BLOCK);
    free(buf);
    return err;
}

/* The read-back check (with the file key, or with ids when ids != NULL). */
static int
verify_with(sbx_seal_report *rep, const uint8_t *file_key, sbx_identity *const *ids, size_t n,
            const char *what)
{
    uint8_t digest[32];
    uint64_t size = 0;
    int err = ids != NULL ? hash_decrypt(digest, &size, rep->output, ids, n)
                          : sbx_seal__read_back(digest, &size, rep->output, file_key);
    if (err < 0)
        return sbx__error_prefix(err, "%s: read-back check (%s) failed", rep->output, what);
    if (size != rep->size || !sbx_equal(digest, rep->sha256, sizeof(digest)))
        return sbx__error(SBX_EAUTH,
                          "%s: read-back check (%s): the decrypted content differs "
                          "from the original",
                          rep->output, what);
    return 0;
}

/* The original must not have changed while it was read: the sealed copy would not be it. */
static int
check_unchanged(const sbx_seal_report *rep, int fd, const struct stat *st, const char *path)
{
    struct stat now;
    if (fstat(fd, &now) != 0)
        return sbx__error_sys(SBX_EIO, "cannot stat %s", path);
    if ((uint64_t)now.st_size != rep->size || now.st_size != st->st_size ||
        now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
        return sbx__error(SBX_EIO,
                          "%s changed while it was being sealed: it was kept and no sealed file "
                          "was left; seal it again when nothing writes to it",
                          path);
    return 0;
}

/* The new file's header: the sbx-meta stanza (with o->meta), then the recipients' stanzas. */
static int
seal_header(sbx_age_header **h, sbx_seal_report *rep, const char *path, const struct stat *st,
            sbx_recipient *const *rs, size_t n, const sbx_seal_options *o,
            const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_seal_meta meta;
    int err;
    if ((err = sbx_age_header_new(h)) < 0)
        return err;
    if (o->meta) {
        fill_meta(&meta, path, st, rs, n);
        if (o->version >= 2 && o->note != NULL)
            add_note(&meta, o->note);
        if ((err = sbx_seal_meta_stanza_add(*h, &meta, file_key)) < 0)
            return err;
        rep->meta = true;
    }
    return sbx_age_header_wrap(*h, rs, n, file_key);
}

static int
seal_and_verify(sbx_seal_report *rep, const char *path, const struct stat *st,
                sbx_recipient *const *rs, size_t n, const sbx_seal_options *o, uint8_t *file_key,
                bool *written)
{
    sbx_age_header *h = NULL;
    struct stat fst;
    int fd = -1, err;
    if ((err = sbx_random_bytes(file_key, SBX_AGE_FILE_KEY_LEN)) < 0)
        return err;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &fst) != 0 || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev) {
        err = sbx__error_sys(SBX_EIO, "cannot open %s (or it changed while opening)", path);
        goto out;
    }
    if ((err = seal_header(&h, rep, path, st, rs, n, o, file_key)) < 0 ||
        (err = encrypt_to(rep, fd, h, file_key)) < 0)
        goto out;
    *written = true;
    if ((err = check_unchanged(rep, fd, st, path)) < 0 ||
        (err = verify_with(rep, file_key, NULL, 0, "file key")) < 0)
        goto out;
    rep->verified = true;
    if (o->nverify > 0) {
        if ((err = verify_with(rep, NULL, o->verify_identities, o->nverify, "given identity")) < 0)
            goto out;
        rep->verified_identity = true;
    }
    struct stat ost;
    if (stat(rep->output, &ost) == 0)
        rep->output_size = (uint64_t)ost.st_size;
out:
    if (fd >= 0)
        close(fd);
    sbx_age_header_free(h);
    return err;
}

/* see strongbox/fileops.h */
int
sbx_seal_file(sbx_seal_report *report, const char *path, sbx_recipient *const *recipients,
              size_t count, const sbx_seal_options *opts)
{
    sbx_seal_options defaults = SBX_SEAL_OPTIONS_INIT;
    const sbx_seal_options *o = opts != NULL ? opts : &defaults;
    struct stat st;
    uint8_t *file_key;
    bool written = false;
    int err;
    if (report == NULL || path == NULL || (count > 0 && recipients == NULL))
        return sbx__error(SBX_EINVAL, "sbx_seal_file: report, path and recipients are required");
    if ((err = sbx_fileops__stanza_types()) < 0)
        return err;
    memset(report, 0, sizeof(*report));
    if (o->version != 1 && o->version != SBX_SEAL_OPTIONS_VERSION) // 1: without note
        return sbx__error(SBX_EINVAL, "sbx_seal_file: unknown options version %u", o->version);
    if ((err = check_seal_args(report, path, recipients, count, o, &st)) < 0)
        return err;
    if ((file_key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN)) == NULL)
        return sbx__error_nomem();
    err = seal_and_verify(report, path, &st, recipients, count, o, file_key, &written);
    sbx_secret_free(file_key, SBX_AGE_FILE_KEY_LEN);
    if (err < 0) {
        if (written)
            unlink(report->output); // written but not verified: never leave it behind
        report->verified = report->verified_identity = false;
        return err;
    }
    if (o->keep)
        return 0;
    sbx_destroy_options d = SBX_DESTROY_OPTIONS_INIT;
    d.passes = o->passes ? o->passes : 1;
    d.force = report->preflight.links > 1; // not strict: remove this name only (reported)
    // Only the file that was sealed: not one renamed or written over it since (an editor's save).
    if ((err = sbx_destroy__expect(&report->destroy, path, &d, &st)) < 0)
        return sbx__error_prefix(err,
                                 "%s is sealed and verified, but the original could not be "
                                 "destroyed",
                                 report->output);
    report->destroyed = true;
    return 0;
}

/* ---- unseal ---- */

static int
unseal_output(sbx_unseal_report *rep, const char *path, const sbx_unseal_options *o)
{
    struct stat st;
    size_t n = strlen(path);
    if (o->output != NULL)
        snprintf(rep->output, sizeof(rep->output), "%s", o->output);
    else if (n > 4 && strcmp(path + n - 4, ".age") == 0 && path[n - 5] != '/' &&
             n - 4 < sizeof(rep->output))
        snprintf(rep->output, sizeof(rep->output), "%.*s", (int)(n - 4), path);
    else
        return sbx__error(SBX_EINVAL, "%s does not end in .age: give the output name", path);
    if (!o->force && lstat(rep->output, &st) == 0)
        return sbx__error(SBX_EEXISTS, "%s already exists: remove it, or force replacing it",
                          rep->output);
    // A device or FIFO is written directly, not atomically: the sealed file would then be removed.
    if (stat(rep->output, &st) == 0 && !S_ISREG(st.st_mode))
        return sbx__error(SBX_EINVAL,
                          "%s is not a regular file: unseal writes a file atomically before "
                          "removing the sealed one (use sbx decrypt for devices and pipes)",
                          rep->output);
    // The output replaced, then the sealed file removed: both must not be the same file.
    struct stat in;
    if (stat(rep->output, &st) == 0 && stat(path, &in) == 0 && st.st_dev == in.st_dev &&
        st.st_ino == in.st_ino)
        return sbx__error(SBX_EINVAL,
                          "%s is %s itself (or a link to it): unsealing would replace the sealed "
                          "file and then remove it; give another output name",
                          rep->output, path);
    return 0;
}

static int
decrypt_to(sbx_unseal_report *rep, const char *path, sbx_identity *const *ids, size_t n,
           bool replace)
{
    sbx_fileops__age_file f = {NULL, NULL, NULL, false};
    sbx_source *in = NULL, *dec = NULL;
    sbx_sink *file = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(READ_BLOCK);
    size_t got;
    int err;
    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = sbx__error_nomem();
        goto out;
    }
    if ((err = sbx_source_file_new(&in, path)) < 0 ||
        (err = sbx_fileops__age_file_open(&f, in, SBX_ARMOR_AUTO, ids, n)) < 0 ||
        (err = meta_from_header(&rep->meta, &rep->has_meta, f.header, path)) < 0 ||
        (err = sbx_age_decryptor_new_opened(&dec, f.header, f.in, NULL)) < 0 ||
        (err = sbx_sink_atomic_file_new_ex(&file, rep->output, 0600,
                                           replace ? 0 : SBX_ATOMIC_NOREPLACE)) < 0)
        goto out;
    while ((err = sbx_source_read(dec, buf, READ_BLOCK, &got)) == 0 && got > 0) {
        rep->size += got;
        if (EVP_DigestUpdate(md, buf, got) != 1) {
            err = sbx__error_crypto("SHA-256");
            goto out;
        }
        if ((err = sbx_sink_write(file, buf, got)) < 0)
            goto out;
    }
    if (err < 0)
        goto out;
    if (EVP_DigestFinal_ex(md, rep->sha256, NULL) != 1) {
        err = sbx__error_crypto("SHA-256");
        goto out;
    }
    err = sbx_sink_finish(file); // only now does the output appear, complete
out:
    sbx_sink_free(file);
    sbx_source_free(dec);
    sbx_fileops__age_file_close(&f);
    sbx_source_free(in);
    EVP_MD_CTX_free(md);
    if (buf != NULL)
        sbx_wipe(buf, READ_BLOCK);
    free(buf);
    return err;
}

static int
remove_sealed(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return sbx__error_nomem();
    if (unlink(path) != 0) {
        free(copy);
        return sbx__error_sys(SBX_EIO, "the file is unsealed, but %s could not be removed", path);
    }
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* see strongbox/fileops.h */
int
sbx_unseal_file(sbx_unseal_report *report, const char *path, sbx_identity *const *identities,
                size_t count, const sbx_unseal_options *opts)
{
    sbx_unseal_options defaults = SBX_UNSEAL_OPTIONS_INIT;
    const sbx_unseal_options *o = opts != NULL ? opts : &defaults;
    int err;
    if (report == NULL || path == NULL || count == 0 || identities == NULL)
        return sbx__error(SBX_EINVAL, "sbx_unseal_file: report, path and identities are required");
    if ((err = sbx_fileops__stanza_types()) < 0)
        return err;
    memset(report, 0, sizeof(*report));
    if (o->version != SBX_UNSEAL_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "sbx_unseal_file: unknown options version %u", o->version);
    if ((err = unseal_output(report, path, o)) < 0)
        return err;
    if ((err = decrypt_to(report, path, identities, count, o->force)) < 0)
        return err;
    report->meta_size_ok = report->has_meta && report->meta.size == report->size;
    if (!o->keep && (err = remove_sealed(path)) == 0)
        report->removed = true;
    return err;
}
