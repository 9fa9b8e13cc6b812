/*
 * tests/server/test_audit.c - the hash-chained audit log (server/audit.h):
 * the line format and field order, the chain and the head file, concurrent
 * writers, restarts, every kind of tampering named by line, crash leftovers
 * at open, fail-closed writes (RLIMIT_FSIZE makes writes fail, fully or
 * partially), hostile field values; rotation into segments (by size and on
 * request, under concurrent writers), the series verification and what it
 * catches (a segment removed, swapped, reordered, edited), the lost count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/stat.h>

#include "audit.h"
#include "strongbox/common.h"
#include "strongbox/kdf.h"
#include "helpers.h"

/* The audit key of the tests (a server derives its own from the root key). */
static const uint8_t KEY[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};

/* Verifies with KEY, every line required keyed; *lines as the report says. */
static int
verify_log(const char *path, uint64_t *lines)
{
    kms_audit_report rep = {.lines = 99, .unkeyed = 99};
    int err = kms_audit_verify(path, KEY, KMS_AUDIT_UNKEYED_REFUSE, &rep);
    *lines = rep.lines;
    return err;
}

typedef struct {
    char dir[64];
    char log[96];
    char head[112];
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sbx-audit-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof(f->log), "%s/audit.log", f->dir);
    snprintf(f->head, sizeof(f->head), "%s.head", f->log);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static kms_audit_event
event(int i)
{
    static char rid[64];
    snprintf(rid, sizeof(rid), "%016x", (unsigned)i);
    return (kms_audit_event){
        .request_id = rid,
        .caller = "token:0123456789abcdef:app",
        .remote = "127.0.0.1:40000",
        .method = "POST",
        .path = "/v1/keys/app-x/datakey",
        .op = "datakey",
        .key = "app-x",
        .key_version = 2,
        .status = 200,
        .outcome = "ok",
    };
}

static void
write_n(const char *path, int n)
{
    kms_audit *a;
    assert_sbx_ok(kms_audit_open(&a, path, KEY, true));
    for (int i = 0; i < n; i++) {
        kms_audit_event ev = event(i);
        assert_sbx_ok(kms_audit_write(a, &ev));
    }
    kms_audit_close(a);
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = calloc(1, 1 << 22);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 22) - 1, fp);
    fclose(fp);
    return buf;
}

static void
spit(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* Start of line n (1-based) in buf, or NULL. */
static char *
line_at(char *buf, int n)
{
    char *p = buf;
    for (int i = 1; i < n && p != NULL; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return p && *p ? p : NULL;
}

static void
sha_hex(char out[65], const char *p, size_t n)
{
    uint8_t md[32];
    unsigned len;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    test_hex(out, md, 32);
}

/* The mac a line of len bytes (no newline) must carry: HMAC-SHA-256 under KEY of its body. */
static void
mac_hex(char out[65], const char *line, size_t len)
{
    const size_t suffix = strlen(",\"mac\":\"\"}") + 64;
    uint8_t mac[32];
    assert_true(len > suffix);
    assert_sbx_ok(sbx_hmac_sha256(mac, KEY, (const uint8_t *)line, len - suffix));
    test_hex(out, mac, 32);
}

static void
expect_verify_fails(const char *path, int code, const char *needle)
{
    uint64_t lines = 99;
    int err = verify_log(path, &lines);
    if (err != code || !test_contains(sbx_error_last()->message, needle)) {
        print_error("verify: %s (%d), want %s with \"%s\": %s\n", sbx_error_name(err), err,
                    sbx_error_name(code), needle, sbx_error_last()->message);
        fail();
    }
    assert_int_equal(lines, 0);
}

/* ---- format and chain ---- */

static void
lines_have_the_documented_fields_in_order(void **state)
{
    static const char *const order[] = {"seq",    "time",    "request_id", "caller", "remote",
                                        "method", "path",    "op",         "key",    "key_version",
                                        "status", "outcome", "prev",       "mac"};
    static const char *const order2[] = {"seq",    "time", "request_id", "caller", "remote",
                                         "method", "path", "op",         "status", "outcome",
                                         "error",  "prev", "mac"};
    fixture *f = *state;
    kms_audit *a;
    size_t len;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, false));
    kms_audit_event ev = event(1);
    assert_sbx_ok(kms_audit_write(a, &ev));
    ev = (kms_audit_event){.request_id = "r2",
                           .caller = "anonymous",
                           .remote = "::1",
                           .method = "GET",
                           .path = "/v1/keys",
                           .op = "list",
                           .status = 401,
                           .outcome = "denied",
                           .error = "authentication required"};
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);

    char *buf = slurp(f->log, &len);
    assert_true(strncmp(buf, "{\"seq\":1,\"time\":\"", 17) == 0);
    char *l2 = line_at(buf, 2);
    assert_non_null(l2);
    json_t *j1 = json_loadb(buf, (size_t)(l2 - buf - 1), 0, NULL);
    json_t *j2 = json_loads(l2, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j1);
    assert_non_null(j2);
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(j1, k, v) assert_string_equal(k, order[i++]);
    assert_int_equal(i, 14);
    i = 0;
    json_object_foreach(j2, k, v) assert_string_equal(k, order2[i++]);
    assert_int_equal(i, 13);
    const char *t = json_string_value(json_object_get(j1, "time"));
    assert_int_equal(strlen(t), 24);
    assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
    assert_string_equal(json_string_value(json_object_get(j1, "prev")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    char h1[65], h2[65], head[160];
    // each mac is the HMAC of its line up to prev's closing quote; prev is the previous mac
    mac_hex(h1, buf, (size_t)(l2 - buf - 1));
    assert_string_equal(json_string_value(json_object_get(j1, "mac")), h1);
    assert_string_equal(json_string_value(json_object_get(j2, "prev")), h1);
    assert_int_equal(json_integer_value(json_object_get(j2, "seq")), 2);
    assert_int_equal(json_integer_value(json_object_get(j1, "key_version")), 2);
    assert_string_equal(json_string_value(json_object_get(j1, "caller")),
                        "token:0123456789abcdef:app");
    mac_hex(h2, l2, strlen(l2) - 1);
    assert_string_equal(json_string_value(json_object_get(j2, "mac")), h2);
    snprintf(head, sizeof(head), "2 %s\n", h2);
    free(buf);
    buf = slurp(f->head, &len);
    assert_string_equal(buf, head);
    free(buf);
    json_decref(j1);
    json_decref(j2);
    struct stat sb;
    assert_int_equal(stat(f->log, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    uint64_t lines;
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 2);
}

static void
an_empty_log_verifies_and_a_null_path_discards(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    uint64_t lines = 7;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    kms_audit_close(a);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 0);
    // an empty log without its head file is not intact: lines may have been cut off
    unlink(f->head);
    expect_verify_fails(f->log, SBX_EAUTH, "head file");
    assert_sbx_ok(kms_audit_open(&a, NULL, KEY, true));
    kms_audit_event ev = event(0);
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    kms_audit_close(NULL);
    assert_sbx_err(verify_log("/nonexistent/audit.log", &lines), SBX_EIO);
    assert_sbx_err(kms_audit_open(&a, f->dir, KEY, true), SBX_EIO); // a directory
    assert_null(a);
    assert_sbx_err(kms_audit_open(&a, "/dev/null", KEY, true), SBX_EIO); // not a regular file
}

#define WRITERS 8
#define PER     200

struct writer {
    kms_audit *a;
    int id;
    int failures;
};

static void *
writer(void *arg)
{
    struct writer *w = arg;
    char rid[32];
    for (int i = 0; i < PER; i++) {
        kms_audit_event ev = event(i);
        snprintf(rid, sizeof(rid), "w%d-%d", w->id, i);
        ev.request_id = rid;
        w->failures += kms_audit_write(w->a, &ev) != 0;
    }
    return NULL;
}

static void
concurrent_writers_make_one_chain(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    pthread_t th[WRITERS];
    struct writer w[WRITERS];
    uint64_t lines;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){a, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    kms_audit_close(a);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, WRITERS * PER);
}

static void
a_restart_continues_the_chain(void **state)
{
    fixture *f = *state;
    uint64_t lines;
    size_t len;
    write_n(f->log, 5);
    write_n(f->log, 5);
    write_n(f->log, 1);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 11);
    char *buf = slurp(f->log, &len);
    char *l6 = line_at(buf, 6);
    assert_true(strncmp(l6, "{\"seq\":6,", 9) == 0);
    free(buf);
}

/* ---- tampering ---- */

typedef void (*tamper_fn)(fixture *f, char *buf, size_t *len);

static void
edit_line_5(fixture *f, char *buf, size_t *len)
{
    (void)f, (void)len;
    char *s = strstr(line_at(buf, 5), "\"status\":200");
    s[10] = '9'; // 200 -> 290, still a valid line
}

static void
edit_last_line(fixture *f, char *buf, size_t *len)
{
    (void)f, (void)len;
    char *s = strstr(line_at(buf, 10), "app-x");
    s[4] = 'y';
}

static void
delete_line_7(fixture *f, char *buf, size_t *len)
{
    (void)f;
    char *a = line_at(buf, 7), *b = line_at(buf, 8);
    memmove(a, b, (size_t)(buf + *len - b));
    *len -= (size_t)(b - a);
}

static void
delete_line_1(fixture *f, char *buf, size_t *len)
{
    (void)f;
    char *b = line_at(buf, 2);
    *len -= (size_t)(b - buf);
    memmove(buf, b, *len);
}

static void
swap_lines_3_4(fixture *f, char *buf, size_t *len)
{
    (void)f, (void)len;
    char *a = line_at(buf, 3), *b = line_at(buf, 4), *c = line_at(buf, 5);
    size_t la = (size_t)(b - a), lb = (size_t)(c - b);
    char *tmp = malloc(la + lb);
    memcpy(tmp, b, lb);
    memcpy(tmp + lb, a, la);
    memcpy(a, tmp, la + lb);
    free(tmp);
}

static void
cut_two_at_the_end(fixture *f, char *buf, size_t *len)
{
    (void)f;
    *len = (size_t)(line_at(buf, 9) - buf);
}

static void
append_junk(fixture *f, char *buf, size_t *len)
{
    (void)f;
    memcpy(buf + *len, "garbage\n", 8);
    *len += 8;
}

static void
truncate_last_line(fixture *f, char *buf, size_t *len)
{
    (void)f, (void)buf;
    *len -= 5;
}

static void
append_a_forged_line(fixture *f, char *buf, size_t *len)
{
    (void)f;
    char *l10 = line_at(buf, 10);
    size_t n = (size_t)(buf + *len - l10);
    memcpy(buf + *len, l10, n); // a replayed copy of line 10
    *len += n;
}

static void
delete_the_head(fixture *f, char *buf, size_t *len)
{
    (void)buf, (void)len;
    unlink(f->head);
}

static void
garble_the_head(fixture *f, char *buf, size_t *len)
{
    (void)buf, (void)len;
    spit(f->head, "10 xyz\n", 7);
}

static void
tamper_case(fixture *f, tamper_fn fn, const char *needle)
{
    size_t len;
    uint64_t lines;
    unlink(f->log);
    unlink(f->head);
    write_n(f->log, 10);
    assert_sbx_ok(verify_log(f->log, &lines));
    char *buf = slurp(f->log, &len);
    fn(f, buf, &len);
    spit(f->log, buf, len);
    free(buf);
    expect_verify_fails(f->log, SBX_EAUTH, needle);
}

static void
verify_names_the_first_bad_line(void **state)
{
    fixture *f = *state;
    tamper_case(f, edit_line_5, "line 5: mac does not match");
    tamper_case(f, edit_last_line, "line 10: mac does not match");
    tamper_case(f, delete_line_7, "line 7: seq 8, expected 7");
    tamper_case(f, delete_line_1, "line 1: seq 2, expected 1");
    tamper_case(f, swap_lines_3_4, "line 3: seq 4, expected 3");
    tamper_case(f, cut_two_at_the_end, "log ends at seq 8 but the head file says 10");
    tamper_case(f, append_junk, "line 11: not a JSON object");
    tamper_case(f, truncate_last_line, "line 10: truncated");
    tamper_case(f, append_a_forged_line, "line 11: seq 10, expected 11");
    tamper_case(f, delete_the_head, "head file");
    tamper_case(f, garble_the_head, "malformed");
}

static void
verify_checks_every_line_field_by_field(void **state)
{
    static const struct {
        const char *from, *to, *needle;
    } edits[] = {
        {"\"outcome\":\"ok\"", "\"outcome\":\"OK\"", "outcome"},
        {"\"status\":200", "\"status\":\"200\"", "status"},
        {"\"key_version\":2", "\"key_version\":0", "key_version"},
        {"\"op\":\"datakey\",", "", "missing"},
        {"\"method\":\"POST\",", "\"method\":\"POST\",\"x\":1,", "unknown field"},
        {"\"key\":\"app-x\",\"key_version\":2", "\"key_version\":2,\"key\":\"app-x\"", "order"},
        {"{\"seq\":1,", "{\"seq\":1,\"seq\":1,", "not a JSON object"},
    };
    fixture *f = *state;
    size_t len;
    char *orig;
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        unlink(f->log);
        unlink(f->head);
        write_n(f->log, 1);
        orig = slurp(f->log, &len);
        char *at = strstr(orig, edits[i].from);
        assert_non_null(at);
        char *out = calloc(1, len + 64);
        size_t pre = (size_t)(at - orig), fl = strlen(edits[i].from), tl = strlen(edits[i].to);
        memcpy(out, orig, pre);
        memcpy(out + pre, edits[i].to, tl);
        memcpy(out + pre + tl, at + fl, len - pre - fl);
        spit(f->log, out, len - fl + tl);
        expect_verify_fails(f->log, SBX_EAUTH, "line 1");
        expect_verify_fails(f->log, SBX_EAUTH, edits[i].needle);
        free(out);
        free(orig);
    }
}

/* ---- crash leftovers at open ---- */

static void
open_repairs_a_lagging_head_and_refuses_damage(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    uint64_t lines;
    size_t len;
    char head[160], h2[65];

    // the head one line behind (killed between the line and its head): repaired at open
    write_n(f->log, 3);
    char *buf = slurp(f->log, &len);
    char *l2 = line_at(buf, 2), *l3 = line_at(buf, 3);
    mac_hex(h2, l2, (size_t)(l3 - l2 - 1));
    snprintf(head, sizeof(head), "2 %s\n", h2);
    spit(f->head, head, strlen(head));
    expect_verify_fails(f->log, SBX_EAUTH, "head");
    write_n(f->log, 1);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 4);

    // a torn last line: refused, the file left as it was
    buf[len - 3] = '\0';
    spit(f->log, buf, len - 3);
    assert_sbx_err(kms_audit_open(&a, f->log, KEY, false), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "partial line"));
    assert_null(a);
    struct stat sb;
    assert_int_equal(stat(f->log, &sb), 0);
    assert_int_equal(sb.st_size, len - 3);

    // lines cut off the end (the head is ahead): refused
    unlink(f->log);
    unlink(f->head);
    write_n(f->log, 3);
    spit(f->log, buf, (size_t)(l3 - buf));
    assert_sbx_err(kms_audit_open(&a, f->log, KEY, false), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "head file says seq 3"));

    // a last line that is not a record: refused
    unlink(f->head);
    spit(f->log, "hello\n", 6);
    assert_sbx_err(kms_audit_open(&a, f->log, KEY, false), SBX_EAUTH);
    free(buf);
}

/* ---- failing writes ---- */

static int
write_capped(kms_audit *a, const char *path, off_t extra)
{
    struct stat sb;
    struct rlimit old, lim;
    kms_audit_event ev = event(99);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)(sb.st_size + extra);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int err = kms_audit_write(a, &ev);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(stat(path, &sb), 0);
    return err;
}

static void
fail_closed_writes_fail_and_leave_the_chain_intact(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    uint64_t lines;
    struct stat before, after;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    for (int i = 0; i < 3; i++) {
        kms_audit_event ev = event(i);
        assert_sbx_ok(kms_audit_write(a, &ev));
    }
    assert_int_equal(stat(f->log, &before), 0);
    assert_sbx_err(write_capped(a, f->log, 0), SBX_EIO); // nothing fits
    assert_true(test_contains(sbx_error_last()->message, "audit log"));
    assert_sbx_err(write_capped(a, f->log, 40), SBX_EIO); // a short write, undone
    assert_int_equal(stat(f->log, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    kms_audit_event ev = event(4);
    assert_sbx_ok(kms_audit_write(a, &ev)); // writable again: the chain goes on
    kms_audit_close(a);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 4);

    // not fail-closed: the same failures are reported on stderr, the caller goes on
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, false));
    assert_sbx_ok(write_capped(a, f->log, 0));
    assert_sbx_ok(write_capped(a, f->log, 40));
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 5);
}

/* ---- hostile values ---- */

static void
hostile_field_values_stay_one_valid_line(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    uint64_t lines;
    size_t len;
    char *huge = malloc(20000);
    memset(huge, 'k', 19999);
    huge[19999] = '\0';
    kms_audit_event ev = {
        .request_id = "id\"},{\"seq\":99",
        .caller = "cert:evil\ncn\r\t\x01\x7f",
        .remote = "\xff\xfe bad utf-8 \xc3\x28 \xed\xa0\x80 ok \xc3\xa9",
        .method = "GET",
        .path = huge,
        .op = "read",
        .key = NULL,
        .status = 500,
        .outcome = "error",
        .error = "\\\"quoted\\\"",
    };
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    char *buf = slurp(f->log, &len);
    assert_true(len < 4096); // the 20 KB path was cut
    assert_int_equal(strchr(buf, '\n') - buf, (long)len - 1);
    json_t *j = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "id\"},{\"seq\":99");
    assert_string_equal(json_string_value(json_object_get(j, "caller")),
                        "cert:evil\ncn\r\t\x01\x7f");
    assert_string_equal(json_string_value(json_object_get(j, "remote")),
                        "?? bad utf-8 ?( ??? ok \xc3\xa9");
    assert_true(json_string_length(json_object_get(j, "path")) <= 512);
    assert_null(json_object_get(j, "key"));
    assert_null(json_object_get(j, "key_version"));
    json_decref(j);
    free(buf);
    free(huge);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 1);
}

/* ---- keyed and unkeyed chains ---- */

/* Writes an unkeyed log and head as a server before keyed chains did (prev = SHA-256). */
static void
write_old_format(fixture *f, int n)
{
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    char line[512], head[160];
    FILE *fp = fopen(f->log, "wb");
    assert_non_null(fp);
    for (int i = 1; i <= n; i++) {
        int len =
            snprintf(line, sizeof line,
                     "{\"seq\":%d,\"time\":\"2026-01-01T00:00:00.000Z\",\"request_id\":\"r%d\","
                     "\"caller\":\"anonymous\",\"remote\":\"::1\",\"method\":\"GET\","
                     "\"path\":\"/v1/health\",\"op\":\"health\",\"status\":200,"
                     "\"outcome\":\"ok\",\"prev\":\"%s\"}",
                     i, i, prev);
        fprintf(fp, "%s\n", line);
        sha_hex(prev, line, (size_t)len);
    }
    fclose(fp);
    snprintf(head, sizeof head, "%d %s\n", n, prev);
    spit(f->head, head, strlen(head));
}

static void
an_old_unkeyed_log_verifies_as_unkeyed_and_continues_keyed(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    kms_audit_report rep;
    uint64_t lines;
    write_old_format(f, 3);
    // by default a log with no keyed line is refused: it may be a keyed one stripped of its macs
    assert_sbx_err(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_PREFIX, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "no line carries a mac"));
    assert_true(test_contains(sbx_error_last()->message, "--allow-unkeyed"));
    assert_sbx_ok(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_ALLOW, &rep));
    assert_int_equal(rep.lines, 3);
    assert_int_equal(rep.unkeyed, 3);
    assert_sbx_ok(kms_audit_verify(f->log, NULL, KMS_AUDIT_UNKEYED_ALLOW, &rep)); // no key needed
    expect_verify_fails(f->log, SBX_EAUTH, "line 1: no mac"); // every line required keyed
    // a server of this version continues it with keyed lines
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    kms_audit_event ev = event(1);
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    // an unkeyed prefix continued by keyed lines verifies by default
    assert_sbx_ok(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_PREFIX, &rep));
    assert_int_equal(rep.lines, 4);
    assert_int_equal(rep.unkeyed, 3);
    assert_sbx_err(kms_audit_verify(f->log, NULL, KMS_AUDIT_UNKEYED_PREFIX, &rep), SBX_ENOKEY);
    assert_true(test_contains(sbx_error_last()->message, "line 4 is keyed"));
    (void)lines;
}

/* The attack the keyed chain stops: edit a line, then recompute the SHA-256 chain and head. */
static void
recomputing_an_unkeyed_chain_after_an_edit_fails(void **state)
{
    fixture *f = *state;
    size_t len;
    kms_audit_report rep;
    write_n(f->log, 5);
    char *buf = slurp(f->log, &len);
    char *s = strstr(line_at(buf, 3), "\"status\":200");
    s[10] = '9'; // line 3: 200 -> 290
    // recompute every prev as the SHA-256 of the line before, and the head likewise
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    for (int n = 1; n <= 5; n++) {
        char *l = line_at(buf, n), *end = strchr(l, '\n');
        char *p = strstr(l, "\"prev\":\"") + 8;
        memcpy(p, prev, 64);
        sha_hex(prev, l, (size_t)(end - l));
    }
    spit(f->log, buf, len);
    char head[160];
    snprintf(head, sizeof head, "5 %s\n", prev);
    spit(f->head, head, strlen(head));
    expect_verify_fails(f->log, SBX_EAUTH, "line 2: prev does not match"); // prev is a mac
    assert_sbx_err(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_PREFIX, &rep), SBX_EAUTH);

    // the same, with every mac stripped (a log made to look older): refused by default, intact
    // only when wholly unkeyed logs are allowed (old archives), refused where every line must be
    // keyed
    for (int n = 1; n <= 5; n++) {
        char *l = line_at(buf, n), *m = strstr(l, ",\"mac\":\"");
        size_t cut = strlen(",\"mac\":\"\"") + 64;
        memmove(m, m + cut, (size_t)(buf + len - (m + cut)));
        len -= cut;
        buf[len] = '\0';
    }
    memcpy(prev, "0000000000000000000000000000000000000000000000000000000000000000", 65);
    for (int n = 1; n <= 5; n++) {
        char *l = line_at(buf, n), *end = strchr(l, '\n');
        memcpy(strstr(l, "\"prev\":\"") + 8, prev, 64);
        sha_hex(prev, l, (size_t)(end - l));
    }
    spit(f->log, buf, len);
    snprintf(head, sizeof head, "5 %s\n", prev);
    spit(f->head, head, strlen(head));
    assert_sbx_err(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_PREFIX, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "no line carries a mac"));
    assert_sbx_ok(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_ALLOW, &rep));
    assert_int_equal(rep.unkeyed, 5);
    expect_verify_fails(f->log, SBX_EAUTH, "no mac");
    free(buf);
}

static void
a_wrong_key_does_not_verify_nor_continue(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    kms_audit_report rep;
    uint8_t other[32] = {9};
    write_n(f->log, 2);
    assert_sbx_err(kms_audit_verify(f->log, other, false, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "line 1: mac does not match"));
    assert_sbx_err(kms_audit_open(&a, f->log, other, false), SBX_EAUTH);
    assert_null(a);
    // the audit key is HKDF-SHA-256 of the root key with its own label
    uint8_t root[32] = {7}, k1[32], k2[32];
    assert_sbx_ok(kms_audit_key_derive(k1, root));
    assert_sbx_ok(sbx_hkdf_sha256(k2, root, 32, NULL, 0, "sbx-kms-audit-chain-v1"));
    assert_memory_equal(k1, k2, 32);
}

static void
a_batch_is_one_line_with_each_items_outcome(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    uint64_t lines;
    size_t len;
    const kms_audit_item items[] = {
        {"datakey", 3, 200, NULL},
        {"datakey-wrapped", 0, 403, "policy app denies datakey-wrapped on app-x"},
        {"datakey", 0, 400, "batch_input[2] must be an object"},
    };
    kms_audit_event ev = event(1);
    ev.batch = true;
    ev.items = items;
    ev.nitems = 3;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    char *buf = slurp(f->log, &len);
    json_t *j = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    json_t *it = json_object_get(j, "items");
    assert_int_equal(json_array_size(it), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(it, 0), "outcome")), "ok");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(it, 0), "key_version")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(it, 1), "outcome")),
                        "denied");
    assert_string_equal(json_string_value(json_object_get(json_array_get(it, 1), "op")),
                        "datakey-wrapped");
    assert_string_equal(json_string_value(json_object_get(json_array_get(it, 2), "outcome")),
                        "error");
    assert_non_null(json_object_get(json_array_get(it, 2), "error"));
    json_decref(j);
    free(buf);
    assert_sbx_ok(verify_log(f->log, &lines));
    assert_int_equal(lines, 1);
}

/* ---- rotation ---- */

#define ROT_THREADS 4
#define ROT_LINES   150

typedef struct {
    kms_audit *a;
    int base;
} rot_arg;

static void *
rot_writer(void *p)
{
    rot_arg *r = p;
    for (int i = 0; i < ROT_LINES; i++) {
        char rid[32];
        kms_audit_event ev = event(0);
        snprintf(rid, sizeof rid, "w%d-%d", r->base, i);
        ev.request_id = rid;
        assert_int_equal(kms_audit_write(r->a, &ev), 0);
        if (r->base == 0 && i % 20 == 0)
            assert_int_equal(kms_audit_rotate(r->a, "request"), 0);
    }
    return NULL;
}

/* Verifies the series of f->log with KEY (every line keyed). */
static int
verify_dir(const fixture *f, kms_audit_report *rep)
{
    char **list;
    size_t n;
    assert_sbx_ok(kms_audit_series(&list, &n, f->log));
    int err = kms_audit_verify_series((const char *const *)list, n, KEY, KMS_AUDIT_UNKEYED_REFUSE,
                                      false, rep);
    kms_audit_series_free(list);
    return err;
}

static void
seg_path(char *out, size_t cap, const fixture *f, int n, const char *suffix)
{
    snprintf(out, cap, "%s.%06d%s", f->log, n, suffix);
}

static void
rotation_under_writers_puts_every_line_in_one_segment(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    pthread_t t[ROT_THREADS];
    rot_arg args[ROT_THREADS];
    kms_audit_report rep;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    assert_sbx_ok(kms_audit_rotate(a, "request")); // an empty log is not rotated
    kms_audit_set_max_size(a, 8192);
    for (int i = 0; i < ROT_THREADS; i++) {
        args[i] = (rot_arg){a, i};
        assert_int_equal(pthread_create(&t[i], NULL, rot_writer, &args[i]), 0);
    }
    for (int i = 0; i < ROT_THREADS; i++)
        pthread_join(t[i], NULL);
    kms_audit_close(a);

    char **list;
    size_t n;
    assert_sbx_ok(kms_audit_series(&list, &n, f->log));
    assert_true(n > 10); // by size (8 KiB is ~25 lines) and by request
    int seen[ROT_THREADS][ROT_LINES] = {{0}};
    uint64_t segment_lines = 0, records = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *buf = slurp(list[i], &len), *save = NULL;
        if (i + 1 < n) {
            char want[160];
            seg_path(want, sizeof want, f, (int)i + 1, "");
            assert_string_equal(list[i], want);
        }
        for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            json_t *j = json_loads(l, 0, NULL);
            assert_non_null(j);
            if (json_object_get(j, "segment") != NULL) {
                assert_true(l == buf); // the first line of its segment
                assert_int_equal(json_integer_value(json_object_get(j, "segment")), i + 1);
                segment_lines++;
            } else {
                int w, k;
                assert_int_equal(
                    sscanf(json_string_value(json_object_get(j, "request_id")), "w%d-%d", &w, &k),
                    2);
                seen[w][k]++;
                records++;
            }
            json_decref(j);
        }
        free(buf);
    }
    kms_audit_series_free(list);
    for (int w = 0; w < ROT_THREADS; w++)
        for (int k = 0; k < ROT_LINES; k++)
            assert_int_equal(seen[w][k], 1); // every line in exactly one segment
    assert_int_equal(segment_lines, n - 1);
    assert_int_equal(records, ROT_THREADS * ROT_LINES);
    assert_sbx_ok(verify_dir(f, &rep));
    assert_int_equal(rep.lines, records + segment_lines);
    assert_int_equal(rep.segments, n);
    assert_int_equal(rep.first_segment, 1);

    // a restart goes on in the live segment, and rotates to the next number
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    kms_audit_event ev = event(7);
    assert_sbx_ok(kms_audit_write(a, &ev));
    assert_sbx_ok(kms_audit_rotate(a, "request"));
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    char last[160];
    seg_path(last, sizeof last, f, (int)n, "");
    assert_int_equal(access(last, F_OK), 0);
    assert_sbx_ok(verify_dir(f, &rep));
    assert_int_equal(rep.segments, n + 1);
}

/* Writes 3 segments of 3, 4 and 2 lines (each after the first begins with its segment line). */
static void
three_segments(const fixture *f)
{
    kms_audit *a;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, true));
    for (int i = 0; i < 7; i++) {
        kms_audit_event ev = event(i);
        assert_sbx_ok(kms_audit_write(a, &ev));
        if (i == 2 || i == 4)
            assert_sbx_ok(kms_audit_rotate(a, "request"));
    }
    kms_audit_close(a);
}

static int
verify_files(const char *const *paths, size_t n, bool partial)
{
    kms_audit_report rep;
    return kms_audit_verify_series(paths, n, KEY, KMS_AUDIT_UNKEYED_REFUSE, partial, &rep);
}

static void
swap_files(const char *x, const char *y)
{
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.swap", x);
    assert_int_equal(rename(x, tmp), 0);
    assert_int_equal(rename(y, x), 0);
    assert_int_equal(rename(tmp, y), 0);
}

static void
a_removed_swapped_or_edited_segment_is_named(void **state)
{
    fixture *f = *state;
    char s1[160], s2[160], h1[170], h2[170];
    kms_audit_report rep;
    three_segments(f);
    seg_path(s1, sizeof s1, f, 1, "");
    seg_path(s2, sizeof s2, f, 2, "");
    seg_path(h1, sizeof h1, f, 1, ".head");
    seg_path(h2, sizeof h2, f, 2, ".head");
    assert_sbx_ok(verify_dir(f, &rep));
    assert_int_equal(rep.lines, 3 + 1 + 2 + 1 + 2);
    assert_int_equal(rep.segments, 3);

    // the files given in order verify; out of order, or one left out, they do not
    const char *all[] = {s1, s2, f->log};
    assert_sbx_ok(verify_files(all, 3, false));
    const char *reordered[] = {s2, s1, f->log};
    assert_sbx_err(verify_files(reordered, 3, false), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "segments 1 to 1 are missing"));
    const char *gap[] = {s1, f->log};
    assert_sbx_err(verify_files(gap, 2, false), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, f->log));
    assert_true(test_contains(sbx_error_last()->message, "begins segment 3 but follows"));
    // a later segment alone: only with partial (its earlier segments archived)
    const char *tail[] = {s2, f->log};
    assert_sbx_err(verify_files(tail, 2, false), SBX_EAUTH);
    assert_sbx_ok(kms_audit_verify_series(tail, 2, KEY, KMS_AUDIT_UNKEYED_REFUSE, true, &rep));
    assert_int_equal(rep.first_segment, 2);
    assert_int_equal(rep.lines, 6);

    // removed: the directory's series has a hole
    assert_int_equal(rename(s2, "/tmp/sbx-audit-seg2"), 0);
    assert_int_equal(rename(h2, "/tmp/sbx-audit-seg2.head"), 0);
    assert_sbx_err(verify_dir(f, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "a segment is missing"));
    assert_int_equal(rename("/tmp/sbx-audit-seg2", s2), 0);
    assert_int_equal(rename("/tmp/sbx-audit-seg2.head", h2), 0);
    assert_sbx_ok(verify_dir(f, &rep));

    // swapped (file names and heads exchanged): named
    swap_files(s1, s2);
    swap_files(h1, h2);
    assert_sbx_err(verify_dir(f, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, s1));
    swap_files(s1, s2);
    swap_files(h1, h2);
    assert_sbx_ok(verify_dir(f, &rep));

    // edited: a line of segment 2 (its key field)
    size_t len;
    char *buf = slurp(s2, &len), *k = strstr(buf, "app-x");
    assert_non_null(k);
    k[4] = 'y';
    spit(s2, buf, len);
    assert_sbx_err(verify_dir(f, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, s2));
    assert_true(test_contains(sbx_error_last()->message, "mac does not match"));
    k[4] = 'x';
    spit(s2, buf, len);
    assert_sbx_ok(verify_dir(f, &rep));
    // cut at the end of a segment: its head says more
    char *nl = memrchr(buf, '\n', len - 1);
    spit(s2, buf, (size_t)(nl - buf) + 1);
    assert_sbx_err(verify_dir(f, &rep), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message, "head file says"));
    free(buf);
}

static void
lost_lines_are_recorded_in_the_next_line(void **state)
{
    fixture *f = *state;
    kms_audit *a;
    kms_audit_report rep;
    size_t len;
    assert_sbx_ok(kms_audit_open(&a, f->log, KEY, false)); // fail-open
    kms_audit_event ev = event(1);
    assert_sbx_ok(kms_audit_write(a, &ev));
    assert_sbx_ok(write_capped(a, f->log, 0)); // answered, but no line: lost
    assert_sbx_ok(write_capped(a, f->log, 0));
    assert_sbx_ok(kms_audit_write(a, &ev));
    assert_sbx_ok(kms_audit_write(a, &ev));
    kms_audit_close(a);
    char *buf = slurp(f->log, &len);
    char *l2 = strchr(buf, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_non_null(strstr(l2, ",\"lost\":2,\"prev\":"));
    assert_true(strstr(l2, "\"lost\"") < l3);
    assert_null(strstr(l3, "\"lost\""));
    free(buf);
    assert_sbx_ok(kms_audit_verify(f->log, KEY, KMS_AUDIT_UNKEYED_REFUSE, &rep));
    assert_int_equal(rep.lines, 3);
    assert_int_equal(rep.lost, 2);
}

int
main(void)
{
    (void)sbx_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(lines_have_the_documented_fields_in_order),
        T(an_empty_log_verifies_and_a_null_path_discards),
        T(concurrent_writers_make_one_chain),
        T(a_restart_continues_the_chain),
        T(verify_names_the_first_bad_line),
        T(verify_checks_every_line_field_by_field),
        T(open_repairs_a_lagging_head_and_refuses_damage),
        T(fail_closed_writes_fail_and_leave_the_chain_intact),
        T(hostile_field_values_stay_one_valid_line),
        T(an_old_unkeyed_log_verifies_as_unkeyed_and_continues_keyed),
        T(recomputing_an_unkeyed_chain_after_an_edit_fails),
        T(a_wrong_key_does_not_verify_nor_continue),
        T(a_batch_is_one_line_with_each_items_outcome),
        T(rotation_under_writers_puts_every_line_in_one_segment),
        T(a_removed_swapped_or_edited_segment_is_named),
        T(lost_lines_are_recorded_in_the_next_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
