/*
 * tests/age/test_testkit.c - the age testkit (C2SP CCTV age/testdata)
 * through the public API.
 *
 * Every file in SBX_TESTKIT_DIR (except FORMAT.md and LICENSE) is one
 * vector; see FORMAT.md there for the format. Each vector becomes one cmocka
 * test named after the file, which:
 *  - decrypts the body with sbx_age_decrypt_buf() (armor mode ONLY for
 *    `armored: yes`, else NONE) and maps the result to the testkit's
 *    `expect` strings; for success and payload failure, SHA-256 of the
 *    released plaintext must equal `payload`;
 *  - decrypts it again through sbx_age_decryptor_new() over a source that
 *    hands out the input in irregular small pieces, reading the plaintext
 *    in irregular sizes: same classification, same released plaintext.
 * Vectors whose only identity is a post-quantum hybrid one
 * (AGE-SECRET-KEY-PQ-1...) are SKIPPED by name; when an X25519 identity is
 * also given, the vector runs with the X25519 identity alone.
 *
 * A second test per vector, "<name> header round-trip", runs for every
 * non-armored vector whose expect is not "header failure": parsing the
 * header and re-encoding it must give back the exact bytes (age.md §3.2).
 *
 * One line per vector is printed: PASS/FAIL/SKIP name: expected X got Y.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "strongbox/age.h"
#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "age/header.h"
#include "helpers.h"

#ifndef SBX_TESTKIT_DIR
#error "SBX_TESTKIT_DIR must be defined (see tests/CMakeLists.txt)"
#endif

#define MAX_SECRETS 4

struct vector {
    char name[128];
    char expect[32];
    char payload[65];
    char *identities[MAX_SECRETS];
    size_t nidentities;
    char *passphrases[MAX_SECRETS];
    size_t npassphrases;
    bool armored, compressed, has_pq, has_x25519;
    char unknown_key[64]; /* first metadata key we do not know, or "" */
    uint8_t *body;        /* as stored (maybe zlib) */
    size_t body_len;
};

/* ---- loading ---- */

static char *
xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int
read_whole_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return -1;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *grown = realloc(buf, cap);
            if (grown == NULL)
                abort();
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

/* Parse "key: value" lines up to the first empty line. Returns 0 or -1 (malformed). */
static int
parse_vector(struct vector *v, uint8_t *file, size_t len)
{
    size_t pos = 0;
    for (;;) {
        const uint8_t *nl = memchr(file + pos, '\n', len - pos);
        if (nl == NULL)
            return -1;
        size_t end = (size_t)(nl - file), n = end - pos;
        const char *line = (const char *)file + pos;
        pos = end + 1;
        if (n == 0)
            break;
        const char *sep = NULL;
        for (size_t i = 0; i + 1 < n; i++) {
            if (line[i] == ':' && line[i + 1] == ' ') {
                sep = line + i;
                break;
            }
        }
        if (sep == NULL)
            return -1;
        size_t klen = (size_t)(sep - line);
        const char *val = sep + 2;
        size_t vlen = n - klen - 2;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
        if (KEY_IS("expect")) {
            snprintf(v->expect, sizeof(v->expect), "%.*s", (int)vlen, val);
        } else if (KEY_IS("payload")) {
            snprintf(v->payload, sizeof(v->payload), "%.*s", (int)vlen, val);
        } else if (KEY_IS("identity")) {
            if (v->nidentities == MAX_SECRETS)
                return -1;
            v->identities[v->nidentities++] = xstrndup(val, vlen);
            if (vlen >= 18 && memcmp(val, "AGE-SECRET-KEY-PQ-", 18) == 0)
                v->has_pq = true;
            else
                v->has_x25519 = true;
        } else if (KEY_IS("passphrase")) {
            if (v->npassphrases == MAX_SECRETS)
                return -1;
            v->passphrases[v->npassphrases++] = xstrndup(val, vlen);
        } else if (KEY_IS("armored")) {
            v->armored = vlen == 3 && memcmp(val, "yes", 3) == 0;
        } else if (KEY_IS("compressed")) {
            if (!(vlen == 4 && memcmp(val, "zlib", 4) == 0))
                snprintf(v->unknown_key, sizeof(v->unknown_key), "compressed: %.*s", (int)vlen,
                         val);
            v->compressed = true;
        } else if (KEY_IS("file key") || KEY_IS("comment")) {
            /* debugging aids */
        } else if (v->unknown_key[0] == '\0') {
            snprintf(v->unknown_key, sizeof(v->unknown_key), "%.*s", (int)klen, line);
        }
#undef KEY_IS
    }
    v->body_len = len - pos;
    v->body = malloc(v->body_len ? v->body_len : 1);
    if (v->body == NULL)
        abort();
    memcpy(v->body, file + pos, v->body_len);
    return v->expect[0] != '\0' ? 0 : -1;
}

static void
vector_free(struct vector *v)
{
    for (size_t i = 0; i < v->nidentities; i++)
        free(v->identities[i]);
    for (size_t i = 0; i < v->npassphrases; i++)
        free(v->passphrases[i]);
    free(v->body);
    free(v);
}

/* The test input: the body, inflated if the vector says so. Caller frees *out. */
static int
vector_input(const struct vector *v, uint8_t **out, size_t *len)
{
    if (!v->compressed) {
        *out = malloc(v->body_len ? v->body_len : 1);
        if (*out == NULL)
            abort();
        memcpy(*out, v->body, v->body_len);
        *len = v->body_len;
        return 0;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK)
        return -1;
    size_t cap = v->body_len * 4 + 65536, n = 0;
    uint8_t *buf = malloc(cap);
    int zrc;
    if (buf == NULL)
        abort();
    zs.next_in = v->body;
    zs.avail_in = (uInt)v->body_len;
    do {
        if (n == cap) {
            cap *= 2;
            uint8_t *grown = realloc(buf, cap);
            if (grown == NULL)
                abort();
            buf = grown;
        }
        zs.next_out = buf + n;
        zs.avail_out = (uInt)(cap - n);
        zrc = inflate(&zs, Z_NO_FLUSH);
        n = cap - zs.avail_out;
    } while (zrc == Z_OK);
    inflateEnd(&zs);
    if (zrc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ---- classification ---- */

static const char *
classify(int rc)
{
    switch (rc) {
    case 0:
        return "success";
    case SBX_EHEADER:
        return "header failure";
    case SBX_ENOMATCH:
        return "no match";
    case SBX_EMAC:
        return "HMAC failure";
    case SBX_EPAYLOAD:
        return "payload failure";
    case SBX_EARMOR:
        return "armor failure";
    default:
        return sbx_error_name(rc); /* never a testkit class: always a FAIL */
    }
}

static void
sha256_hex(char out[65], const uint8_t *data, size_t len)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        abort();
    test_hex(out, md, 32);
}

/* What one decryption path produced. */
struct outcome {
    int rc;
    char message[512];
    char hash[65];
    size_t released;
};

static void
record(struct outcome *o, int rc, const sbx_buf *out)
{
    o->rc = rc;
    snprintf(o->message, sizeof(o->message), "%s", rc != 0 ? sbx_error_last()->message : "");
    sha256_hex(o->hash, out->ptr != NULL ? out->ptr : (const uint8_t *)"", out->len);
    o->released = out->len;
}

/* Whether o matches the vector's expectation; *why receives the reason when not. */
static bool
outcome_ok(const struct vector *v, const struct outcome *o, const char **why)
{
    *why = "";
    if (strcmp(classify(o->rc), v->expect) != 0) {
        *why = "wrong result";
        return false;
    }
    if ((o->rc == 0 || o->rc == SBX_EPAYLOAD) && strcmp(o->hash, v->payload) != 0) {
        *why = "released plaintext has the wrong SHA-256";
        return false;
    }
    return true;
}

/* ---- the streaming path: a source that trickles irregular pieces ---- */

struct trickle_source {
    sbx_source base;
    const uint8_t *data;
    size_t len, pos, turn;
};

static int
trickle_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    static const size_t steps[] = {1, 2, 3, 5, 13, 64, 65, 100, 1000, 4093, 9000, 70000};
    struct trickle_source *t = (struct trickle_source *)self;
    size_t n = steps[t->turn++ % (sizeof(steps) / sizeof(steps[0]))];
    if (n > t->len - t->pos)
        n = t->len - t->pos;
    if (n > len)
        n = len;
    memcpy(buf, t->data + t->pos, n);
    t->pos += n;
    *nread = n;
    return 0;
}

static int
decrypt_streaming(sbx_buf *out, const uint8_t *in, size_t len, sbx_identity *const *ids,
                  size_t nids, const sbx_age_decrypt_options *opts)
{
    static const size_t reads[] = {1, 100, 65536, 7, 70000, 65535};
    struct trickle_source t = {{trickle_read, NULL}, in, len, 0, 0};
    sbx_source *dec = NULL;
    uint8_t *buf = malloc(70000);
    size_t got, turn = 0;
    int rc;
    if (buf == NULL)
        abort();
    if ((rc = sbx_age_decryptor_new(&dec, &t.base, ids, nids, opts)) == 0) {
        for (;;) {
            size_t want = reads[turn++ % (sizeof(reads) / sizeof(reads[0]))];
            if ((rc = sbx_source_read(dec, buf, want, &got)) < 0 || got == 0)
                break;
            if (got > want) {
                rc = SBX_EINVAL; /* a source must never overrun */
                break;
            }
            if (sbx_buf_append(out, buf, got) < 0)
                abort();
        }
    }
    sbx_source_free(dec);
    free(buf);
    return rc;
}

/* ---- tests ---- */

static void
print_line(const char *verdict, const struct vector *v, const char *got, const char *detail)
{
    printf("%s %s: expected %s got %s%s%s%s\n", verdict, v->name, v->expect, got,
           detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    fflush(stdout);
}

static void
run_vector(void **state)
{
    const struct vector *v = *state;
    sbx_identity *ids[2 * MAX_SECRETS];
    size_t nids = 0;
    uint8_t *in = NULL;
    size_t in_len = 0;

    if (v->unknown_key[0] != '\0') {
        char detail[128];
        snprintf(detail, sizeof(detail), "unknown metadata \"%s\"", v->unknown_key);
        print_line("SKIP", v, "-", detail);
        skip();
    }
    if (v->has_pq && !v->has_x25519) {
        print_line("SKIP", v, "-", "needs an ML-KEM-768 hybrid identity (not implemented)");
        skip();
    }
    for (size_t i = 0; i < v->nidentities; i++) {
        if (strncmp(v->identities[i], "AGE-SECRET-KEY-PQ-", 18) == 0)
            continue; /* run with the X25519 identity alone */
        int rc = sbx_identity_parse(&ids[nids], v->identities[i]);
        if (rc != 0) {
            print_line("FAIL", v, "-", "identity does not parse");
            fail_msg("%s: sbx_identity_parse: %s", v->name, sbx_error_last()->message);
        }
        nids++;
    }
    for (size_t i = 0; i < v->npassphrases; i++) {
        const char *p = v->passphrases[i];
        assert_sbx_ok(sbx_identity_scrypt_new(&ids[nids], p, strlen(p), 0));
        nids++;
    }
    if (vector_input(v, &in, &in_len) != 0) {
        print_line("FAIL", v, "-", "cannot inflate the zlib body");
        fail_msg("%s: bad zlib body", v->name);
    }

    sbx_age_decrypt_options opts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    opts.armor = v->armored ? SBX_ARMOR_ONLY : SBX_ARMOR_NONE;
    struct outcome one, str;
    sbx_buf out = SBX_BUF_INIT;
    record(&one, sbx_age_decrypt_buf(&out, in, in_len, ids, nids, &opts), &out);
    sbx_buf_dispose(&out);
    record(&str, decrypt_streaming(&out, in, in_len, ids, nids, &opts), &out);
    sbx_buf_dispose(&out);

    const char *why1, *why2;
    bool ok1 = outcome_ok(v, &one, &why1), ok2 = outcome_ok(v, &str, &why2);
    char detail[1200];
    if (ok1 && ok2) {
        print_line("PASS", v, classify(one.rc), one.message);
    } else if (!ok1) {
        snprintf(detail, sizeof(detail), "%s; %zu bytes released, sha256 %s; message: %s", why1,
                 one.released, one.hash, one.message[0] ? one.message : "none");
        print_line("FAIL", v, classify(one.rc), detail);
    } else {
        snprintf(detail, sizeof(detail),
                 "streaming path: %s; %zu bytes released, sha256 %s; message: %s", why2,
                 str.released, str.hash, str.message[0] ? str.message : "none");
        print_line("FAIL", v, classify(str.rc), detail);
    }

    for (size_t i = 0; i < nids; i++)
        sbx_identity_free(ids[i]);
    free(in);
    if (!ok1 || !ok2)
        fail_msg("vector %s failed (see the FAIL line above)", v->name);
}

static void
header_round_trip(void **state)
{
    const struct vector *v = *state;
    uint8_t *in = NULL;
    size_t in_len = 0, hlen = 0;
    sbx_age_header *hdr = NULL;
    sbx_buf enc = SBX_BUF_INIT;
    assert_int_equal(vector_input(v, &in, &in_len), 0);
    int rc = sbx_age__header_parse(&hdr, in, in_len, &hlen);
    if (rc != 0) {
        printf("FAIL %s header round-trip: parse failed: %s\n", v->name, sbx_error_last()->message);
        free(in);
        fail_msg("%s: header does not parse", v->name);
    }
    assert_true(hlen > 0 && hlen <= in_len);
    assert_sbx_ok(sbx_age__header_encode(&enc, hdr, true));
    bool same = enc.len == hlen && memcmp(enc.ptr, in, hlen) == 0;
    printf("%s %s header round-trip: %zu header bytes, re-encoded %zu%s\n", same ? "PASS" : "FAIL",
           v->name, hlen, enc.len, same ? "" : " (bytes differ)");
    sbx_buf_dispose(&enc);
    sbx_age_header_free(hdr);
    free(in);
    if (!same)
        fail_msg("%s: re-encoded header differs from the input", v->name);
}

/* ---- main: one test per vector (plus header round trips) ---- */

static int
compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(void)
{
    const char *dir_path = getenv("SBX_TESTKIT_DIR");
    if (dir_path == NULL || *dir_path == '\0')
        dir_path = SBX_TESTKIT_DIR;
    DIR *dir = opendir(dir_path);
    if (dir == NULL) {
        fprintf(stderr, "cannot open the testkit directory %s: %s\n", dir_path, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t nnames = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "FORMAT.md") == 0 ||
            strcmp(e->d_name, "LICENSE") == 0)
            continue;
        char **grown = realloc(names, (nnames + 1) * sizeof(*names));
        if (grown == NULL)
            abort();
        names = grown;
        names[nnames++] = xstrndup(e->d_name, strlen(e->d_name));
    }
    closedir(dir);
    qsort(names, nnames, sizeof(*names), compare_names);

    struct CMUnitTest *tests = calloc(2 * nnames + 1, sizeof(*tests));
    struct vector **vectors = calloc(nnames + 1, sizeof(*vectors));
    char **rt_names = calloc(nnames + 1, sizeof(*rt_names));
    size_t ntests = 0, bad = 0;
    if (tests == NULL || vectors == NULL || rt_names == NULL)
        abort();
    for (size_t i = 0; i < nnames; i++) {
        char path[4096];
        uint8_t *file = NULL;
        size_t len = 0;
        struct vector *v = calloc(1, sizeof(*v));
        if (v == NULL)
            abort();
        vectors[i] = v;
        snprintf(v->name, sizeof(v->name), "%s", names[i]);
        snprintf(path, sizeof(path), "%s/%s", dir_path, names[i]);
        if (read_whole_file(path, &file, &len) != 0 || parse_vector(v, file, len) != 0) {
            fprintf(stderr, "FAIL %s: cannot read or parse the vector file\n", names[i]);
            bad++;
            free(file);
            continue;
        }
        free(file);
        tests[ntests++] = (struct CMUnitTest){v->name, run_vector, NULL, NULL, v};
        if (strcmp(v->expect, "header failure") != 0 && !v->armored) {
            size_t n = strlen(v->name) + sizeof(" header round-trip");
            rt_names[i] = malloc(n);
            if (rt_names[i] == NULL)
                abort();
            snprintf(rt_names[i], n, "%s header round-trip", v->name);
            tests[ntests++] = (struct CMUnitTest){rt_names[i], header_round_trip, NULL, NULL, v};
        }
    }
    printf("[ TESTKIT  ] %zu vectors from %s\n", nnames, dir_path);
    fflush(stdout);
    int failed = _cmocka_run_group_tests("age/testkit", tests, ntests, NULL, NULL);

    for (size_t i = 0; i < nnames; i++) {
        vector_free(vectors[i]);
        free(rt_names[i]);
        free(names[i]);
    }
    free(names);
    free(vectors);
    free(rt_names);
    free(tests);
    return failed != 0 || bad != 0 ? 1 : 0;
}
