/*
 * server/audit.c - the keyed, hash-chained audit log (see audit.h).
 *
 * Implementation notes:
 *  - A line is built in two parts. The request's fields (request_id ..
 *    items) are serialised by jansson outside the lock; under the lock the
 *    line gets seq and time in front and prev at the end, is tagged (the
 *    "chain" section: the one place that knows how tags are made and
 *    checked), gets mac after prev and is written with one write(2) on an
 *    O_APPEND descriptor. jansson escapes
 *    every string; fields are first cut to FIELD_MAX bytes and invalid UTF-8
 *    bytes replaced by '?', so a line is at most a few tens of KiB and
 *    always valid JSON (a batch of KMS_BATCH_MAX items with errors stays
 *    under AUDIT_LINE_MAX: item errors are cut to ITEM_ERROR_MAX bytes).
 *  - A failed or short write never advances seq or prev. A short write is
 *    followed by one write of the rest, which completes the line or fails
 *    with the cause (ENOSPC, EFBIG); a partial line is undone with ftruncate to the last complete
 *    line; if even that fails the log is marked torn and the truncation is
 *    retried before the next line, so no line is ever appended after a
 *    fragment.
 *  - The head file (PATH.head, "seq hash\n") is rewritten after each line
 *    with one pwrite(2) at offset 0 on a descriptor kept open. Its text only
 *    grows (seq never decreases), so no stale bytes remain; one write of
 *    under 100 bytes cannot be torn by a killed process, and is cheaper than
 *    temp file + fsync + rename. Neither file is fsync'd per line (the log
 *    is fsync'd at close): after a power loss the head may lag the log.
 *  - Crash recovery at open: the log's last line is read from the tail (one
 *    pread of at most AUDIT_LINE_MAX bytes), parsed and, when keyed, its mac
 *    checked under the key; the chain continues from it. A head one line behind whose hash is that
 * line's prev (the window between the two writes) is repaired. Anything else refuses to start,
 *    keeping the evidence: a last line without its newline (a torn write),
 *    a last line that does not parse, a head ahead of the log (lines cut off
 *    the end), or a head that disagrees. The message says what to do (verify,
 *    keep a copy, move the files aside to start a new chain).
 *  - kms_audit_verify reads the log sequentially (lines of at most AUDIT_LINE_MAX
 *    bytes) and checks for every line: newline-terminated, a JSON object
 *    with the documented fields in the documented order and types, seq equal
 *    to its line number, prev equal to the previous line's tag, its mac (or,
 *    for an unkeyed line, that no keyed line came before it); then the head
 *    file, which must exist, against the last line. Every finding is
 *    SBX_EAUTH naming the line; SBX_ENOKEY for a keyed line without a key;
 *    SBX_EIO when a file cannot be read.
 */
#include "audit.h"
#include "log.h"

#include "util.h"

#include "strongbox/error.h"
#include "strongbox/kdf.h"
#include "strongbox/memory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#define FIELD_MAX      512         /* longest field value kept, in bytes */
#define ITEM_ERROR_MAX 160         /* longest error kept for one batch item */
#define AUDIT_LINE_MAX (1 << 20)   /* longest line accepted when reading */
#define HEAD_MAX       96          /* "seq hash\n" */
#define REPORT_MS      (60 * 1000) /* stderr reports of failures: at most one per minute */
#define ZERO_HASH      "0000000000000000000000000000000000000000000000000000000000000000"

struct kms_audit {
    pthread_mutex_t lock;
    int fd; /* -1: a log that discards */
    int head_fd;
    bool fail_closed;
    bool torn; /* a short write left bytes past size that could not be removed */
    uint64_t seq;
    char prev[65]; /* the last line's tag */
    uint8_t *key;  /* the audit key (secure memory); NULL for a log that discards */
    off_t size;    /* bytes of complete lines */
    int64_t reported_ms;
    uint64_t unreported;
    char *path;
    uint64_t segment;     /* the live log's segment number (1: before any rotation) */
    bool segment_pending; /* the live log still lacks its segment line */
    char reason[16];      /* of the pending segment line */
    uint64_t lost;        /* lines lost (not fail-closed) since the last written line */
    uint64_t max_size;    /* rotate once the live log reaches this many bytes; 0: never */
};

/* ---- small helpers ---- */

static void
sha256_hex(char out[65], const void *p, size_t n)
{
    uint8_t md[32];
    unsigned len = 0;
    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        memset(md, 0, sizeof(md)); // cannot happen with the default provider
    kms_hex(out, md, 32);
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    if (n > avail)
        return 0;
    unsigned v = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return n;
}

/* Copies s into out (max + 1 bytes), cut at max, invalid UTF-8 bytes as '?'. */
static size_t
clean_field(char *out, const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t avail = strnlen(s, max * 4), o = 0, i = 0;
    while (i < avail) {
        size_t n = utf8_seq(u + i, avail - i);
        if (o + (n ? n : 1) > max)
            break;
        if (n == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return o;
}

static int
add_str_max(json_t *o, const char *name, const char *s, size_t max)
{
    char buf[FIELD_MAX + 1];
    size_t n = clean_field(buf, s != NULL ? s : "", max < FIELD_MAX ? max : FIELD_MAX);
    return json_object_set_new(o, name, json_stringn(buf, n));
}

static int
add_str(json_t *o, const char *name, const char *s)
{
    return add_str_max(o, name, s, FIELD_MAX);
}

/* see audit.h */
const char *
kms_audit_outcome(int status)
{
    return status == 401 || status == 403 ? "denied" : status < 400 ? "ok" : "error";
}

/* The items array of a batch. */
static json_t *
items_json(const kms_audit_event *ev)
{
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (size_t i = 0; !bad && i < ev->nitems; i++) {
        const kms_audit_item *it = &ev->items[i];
        json_t *o = json_object();
        bad |= o == NULL || json_array_append_new(arr, o) != 0;
        if (bad)
            break;
        bad |= add_str(o, "op", it->op);
        if (it->key_version != 0)
            bad |= json_object_set_new(o, "key_version", json_integer(it->key_version));
        bad |= json_object_set_new(o, "status", json_integer(it->status));
        bad |= add_str(o, "outcome", kms_audit_outcome(it->status));
        if (it->error != NULL)
            bad |= add_str_max(o, "error", it->error, ITEM_ERROR_MAX);
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* The fields request_id .. error as compact JSON without the braces (malloc'd). */
static char *
event_fields(const kms_audit_event *ev, size_t *len)
{
    json_t *o = json_object();
    int bad = o == NULL;
    bad |= add_str(o, "request_id", ev->request_id);
    bad |= add_str(o, "caller", ev->caller);
    bad |= add_str(o, "remote", ev->remote);
    bad |= add_str(o, "method", ev->method);
    bad |= add_str(o, "path", ev->path);
    bad |= add_str(o, "op", ev->op);
    if (ev->key != NULL)
        bad |= add_str(o, "key", ev->key);
    if (ev->key_version != 0)
        bad |= json_object_set_new(o, "key_version", json_integer(ev->key_version));
    bad |= json_object_set_new(o, "status", json_integer(ev->status));
    bad |= add_str(o, "outcome", ev->outcome);
    if (ev->error != NULL)
        bad |= add_str(o, "error", ev->error);
    if (ev->batch) {
        json_t *items = items_json(ev);
        bad |= items == NULL || json_object_set_new(o, "items", items) != 0;
    }
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        return NULL;
    *len = strlen(s);
    memmove(s, s + 1, *len - 2); // drop '{' and '}'
    *len -= 2;
    s[*len] = '\0';
    return s;
}

static void
rfc3339_ms(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    long ms = ts.tv_nsec / 1000000;
    if (n == 0 || n > 24) { // a year past 9999: cannot happen, keep the shape anyway
        memcpy(out, "9999-12-31T23:59:59", 20);
        n = 19;
    }
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100 % 10);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

static char *
head_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 6);
    if (p != NULL) {
        memcpy(p, path, n);
        memcpy(p + n, ".head", 6);
    }
    return p;
}

/* ---- head file ---- */

typedef struct {
    uint64_t seq;
    char hash[65];
} head_rec;

/* Parses "seq hash\n" (empty text: seq 0 and the zero hash). */
static bool
head_parse(const char *s, size_t n, head_rec *h)
{
    char *end;
    h->seq = 0;
    memcpy(h->hash, ZERO_HASH, 65);
    if (n == 0)
        return true;
    if (n > HEAD_MAX || s[n - 1] != '\n' || s[0] < '0' || s[0] > '9' || memchr(s, '\0', n))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != ' ' || (size_t)(end - s) + 66 != n || (s[0] == '0' && end - s > 1))
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = end[1 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    h->seq = v;
    memcpy(h->hash, end + 1, 64);
    h->hash[64] = '\0';
    return true;
}

static int
head_read(int fd, const char *hpath, head_rec *h)
{
    char buf[HEAD_MAX + 2];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot read the audit head file %s", hpath);
    if (!head_parse(buf, (size_t)n, h))
        return sbx_error_set(
            SBX_EAUTH, "the audit head file %s is malformed (want \"seq hash\" and a newline)",
            hpath);
    return 0;
}

static int
head_write(kms_audit *a)
{
    char buf[HEAD_MAX];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 " %s\n", a->seq, a->prev);
    ssize_t w = pwrite(a->head_fd, buf, (size_t)n, 0);
    if (w != n) {
        if (w >= 0)
            errno = ENOSPC;
        return sbx_error_set_sys(SBX_EIO, "audit log %s: cannot rewrite its head file", a->path);
    }
    return 0;
}

/* ---- reading a line ---- */

/* What verify and open need from one parsed line. */
typedef struct {
    uint64_t seq;
    char prev[65];
    bool keyed; /* has a mac */
    char mac[65];
    uint64_t segment; /* a segment line: its segment number; 0 for a request's line */
    uint64_t lost;    /* the lost field, 0 when absent */
} line_info;

static const char *const record_order[] = {
    "seq",         "time",   "request_id", "caller", "remote", "method", "path", "op",  "key",
    "key_version", "status", "outcome",    "error",  "items",  "lost",   "prev", "mac", NULL};
static const char *const segment_order[] = {"seq",  "time", "segment", "reason",
                                            "lost", "prev", "mac",     NULL};

static bool
is_required(const char *k)
{
    static const char *const optional[] = {"key",  "key_version", "error", "items",
                                           "lost", "mac",         NULL};
    for (size_t i = 0; optional[i] != NULL; i++)
        if (strcmp(k, optional[i]) == 0)
            return false;
    return true;
}

static bool
time_ok(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    return true;
}

static bool
hex64_ok(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Checks one value's type; returns the problem or NULL. */
static const char *
check_value(const char *k, json_t *v)
{
    if (strcmp(k, "seq") == 0)
        return json_is_integer(v) && json_integer_value(v) > 0 ? NULL
                                                               : "seq is not a positive integer";
    if (strcmp(k, "key_version") == 0)
        return json_is_integer(v) && json_integer_value(v) > 0 &&
                       json_integer_value(v) <= UINT32_MAX
                   ? NULL
                   : "key_version is not a positive integer";
    if (strcmp(k, "status") == 0)
        return json_is_integer(v) && json_integer_value(v) >= 100 && json_integer_value(v) <= 599
                   ? NULL
                   : "status is not an HTTP status";
    if (strcmp(k, "items") == 0)
        return json_is_array(v) ? NULL : "items is not an array";
    if (strcmp(k, "segment") == 0)
        return json_is_integer(v) && json_integer_value(v) > 1 ? NULL
                                                               : "segment is not an integer over 1";
    if (strcmp(k, "lost") == 0)
        return json_is_integer(v) && json_integer_value(v) > 0 ? NULL
                                                               : "lost is not a positive integer";
    if (!json_is_string(v))
        return "a field that must be a string is not";
    const char *s = json_string_value(v);
    if (strcmp(k, "time") == 0 && !time_ok(s))
        return "time is not RFC 3339 UTC with milliseconds";
    if (strcmp(k, "outcome") == 0 && strcmp(s, "ok") != 0 && strcmp(s, "denied") != 0 &&
        strcmp(s, "error") != 0)
        return "outcome is not ok, denied or error";
    if ((strcmp(k, "prev") == 0 || strcmp(k, "mac") == 0) && !hex64_ok(s))
        return "prev or mac is not 64 lower-case hex digits";
    return NULL;
}

static bool
is_known(const char *const *order, const char *k)
{
    for (size_t i = 0; order[i] != NULL; i++)
        if (strcmp(order[i], k) == 0)
            return true;
    return false;
}

/*
 * Fields in the documented order, each of its type, the required ones
 * present: a request's line, or a segment line (which has a segment field).
 */
static const char *
check_shape(json_t *o)
{
    size_t at = 0;
    const char *k;
    json_t *v;
    const char *const *field_order =
        json_object_get(o, "segment") != NULL ? segment_order : record_order;
    json_object_foreach(o, k, v)
    {
        if (!is_known(field_order, k))
            return "an unknown field";
        while (field_order[at] != NULL && strcmp(field_order[at], k) != 0) {
            if (is_required(field_order[at]))
                return "a required field is missing, or the fields are out of order";
            at++;
        }
        if (field_order[at] == NULL)
            return "the fields are out of order";
        const char *bad = check_value(k, v);
        if (bad != NULL)
            return bad;
        at++;
    }
    for (; field_order[at] != NULL; at++)
        if (is_required(field_order[at]))
            return "a required field is missing";
    return NULL;
}

/* Parses line (len bytes, no newline) number n. SBX_EAUTH naming it when bad. */
static int
parse_line(const char *line, size_t len, uint64_t n, line_info *li)
{
    json_error_t jerr;
    if (memchr(line, '\0', len) != NULL)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": contains a NUL byte", n);
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": not a JSON object (%s)", n,
                             o == NULL ? jerr.text : "another JSON value");
    }
    const char *bad = check_shape(o);
    if (bad == NULL) {
        json_t *mac = json_object_get(o, "mac");
        li->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        memcpy(li->prev, json_string_value(json_object_get(o, "prev")), 65);
        json_t *seg = json_object_get(o, "segment"), *lost = json_object_get(o, "lost");
        li->keyed = mac != NULL;
        memcpy(li->mac, mac != NULL ? json_string_value(mac) : ZERO_HASH, 65);
        li->segment = seg != NULL ? (uint64_t)json_integer_value(seg) : 0;
        li->lost = lost != NULL ? (uint64_t)json_integer_value(lost) : 0;
    }
    json_decref(o);
    if (bad != NULL)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": not an audit record: %s", n, bad);
    return 0;
}

/* ---- the chain (see audit.h): how tags are made and checked ---- */

#define MAC_OPEN       ",\"mac\":\""
#define MAC_SUFFIX_LEN (sizeof(MAC_OPEN) - 1 + 64 + 2) /* ,"mac":"<64 hex>"} */

/* see audit.h */
int
kms_audit_key_derive(uint8_t key[32], const uint8_t root[32])
{
    return sbx_hkdf_sha256(key, root, 32, NULL, 0, KMS_AUDIT_KEY_LABEL);
}

/* The tag of a keyed line: HMAC-SHA-256 under key of its body ('{' .. prev's closing quote). */
static int
body_mac(char out[65], const uint8_t key[32], const char *body, size_t len)
{
    uint8_t mac[32];
    int err = sbx_hmac_sha256(mac, key, (const uint8_t *)body, len);
    if (err == 0)
        kms_hex(out, mac, 32);
    SBX_WIPE_BUF(mac);
    return err;
}

/*
 * The tag of parsed line n (len bytes, no newline) into out: its mac, once
 * checked under key, or the SHA-256 of an unkeyed line. SBX_EAUTH when the
 * mac is not at the end in its written form or does not match; SBX_ENOKEY for
 * a keyed line without a key.
 */
static int
line_tag(char out[65], const line_info *li, const char *line, size_t len, const uint8_t *key,
         uint64_t n)
{
    char want[65];
    if (!li->keyed) {
        sha256_hex(out, line, len);
        return 0;
    }
    size_t body = len - MAC_SUFFIX_LEN;
    if (len < MAC_SUFFIX_LEN || memcmp(line + body, MAC_OPEN, sizeof(MAC_OPEN) - 1) != 0 ||
        memcmp(line + len - 66, li->mac, 64) != 0 || memcmp(line + len - 2, "\"}", 2) != 0)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": mac is not the last field as written",
                             n);
    if (key == NULL)
        return sbx_error_set(SBX_ENOKEY,
                             "line %" PRIu64 " is keyed: give the audit key (--data-dir DIR with "
                             "its root.key, or --key-file FILE)",
                             n);
    int err = body_mac(want, key, line, body);
    if (err < 0)
        return err;
    if (!sbx_equal(want, li->mac, 64))
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": mac does not match (the line was edited, or the "
                             "key is not this log's audit key)",
                             n);
    memcpy(out, li->mac, 65);
    return 0;
}

/*
 * The next line into *out (malloc'd, *len bytes): body = prefix fields
 * ,"prev":"<prev>", then ,"mac":"<tag>"} and a newline; tag gets the tag.
 */
static int
make_line(char **out, size_t *len, char tag[65], const char *prefix, const char *fields,
          const char *prev, const uint8_t key[32])
{
    size_t blen = strlen(prefix) + strlen(fields) + sizeof(",\"prev\":\"\"") - 1 + 64;
    *len = blen + MAC_SUFFIX_LEN + 1;
    char *line = malloc(*len + 1);
    *out = NULL;
    if (line == NULL)
        return sbx_error_set_nomem();
    snprintf(line, *len + 1, "%s%s,\"prev\":\"%s\"", prefix, fields, prev);
    int err = body_mac(tag, key, line, blen);
    if (err < 0) {
        free(line);
        return err;
    }
    snprintf(line + blen, *len + 1 - blen, MAC_OPEN "%s\"}\n", tag);
    *out = line;
    return 0;
}

/* ---- opening ---- */

typedef struct {
    uint64_t seq;  /* 0: empty log */
    char hash[65]; /* of the last line */
    char prev[65]; /* the last line's prev */
} tail_rec;

static int
read_tail(int fd, off_t size, const char *path, const uint8_t *key, tail_rec *t)
{
    t->seq = 0;
    memcpy(t->hash, ZERO_HASH, 65);
    memcpy(t->prev, ZERO_HASH, 65);
    if (size == 0)
        return 0;
    size_t want = size < AUDIT_LINE_MAX + 1 ? (size_t)size : AUDIT_LINE_MAX + 1;
    off_t from = size - (off_t)want;
    char *buf = malloc(want);
    if (buf == NULL)
        return sbx_error_set_nomem();
    ssize_t got = pread(fd, buf, want, from);
    int err = 0;
    if (got != (ssize_t)want) {
        err = sbx_error_set_sys(SBX_EIO, "cannot read the end of the audit log %s", path);
    } else if (buf[want - 1] != '\n') {
        err =
            sbx_error_set(SBX_EAUTH,
                          "the audit log %s ends in a partial line (a write torn by a crash?): "
                          "check it with `sbx kms audit verify`, keep a copy, then cut the partial "
                          "line off (the last complete line ends before byte %jd) or move the log "
                          "and its .head aside to start a new one",
                          path, (intmax_t)size);
    } else {
        char *start = want > 1 ? memrchr(buf, '\n', want - 1) : NULL;
        if (start == NULL && from != 0)
            err = sbx_error_set(SBX_EAUTH, "the last line of the audit log %s is over %d bytes",
                                path, AUDIT_LINE_MAX);
        start = start != NULL ? start + 1 : buf;
        size_t len = (size_t)(buf + want - 1 - start);
        line_info li;
        if (err == 0 && (err = parse_line(start, len, 0, &li)) < 0)
            err = sbx_error_set(
                SBX_EAUTH,
                "the last line of the audit log %s is not an audit record (%s): check "
                "it with `sbx kms audit verify`, then move the log and its .head aside",
                path, sbx_error_last()->message);
        if (err == 0 && (err = line_tag(t->hash, &li, start, len, key, li.seq)) < 0)
            err = sbx_error_set(SBX_EAUTH,
                                "the last line of the audit log %s does not verify under this "
                                "server's audit key (%s): was it edited, or is this another root "
                                "key? Check it with `sbx kms audit verify`, then move the log and "
                                "its .head aside",
                                path, sbx_error_last()->message);
        if (err == 0) {
            t->seq = li.seq;
            memcpy(t->prev, li.prev, 65);
        }
    }
    free(buf);
    return err;
}

/*
 * Compares the head with the log's tail; repairs a head one line behind. An
 * empty live log after segments (a rotation whose segment line could not be
 * written yet) continues from its head, which names the previous segment's end.
 */
static int
reconcile_head(kms_audit *a, const tail_rec *t, const char *hpath)
{
    head_rec h;
    int err = head_read(a->head_fd, hpath, &h);
    if (err < 0)
        return err;
    if (h.seq == t->seq && strcmp(h.hash, t->hash) == 0)
        return 0;
    if (t->seq > 0 && h.seq == t->seq - 1 && strcmp(h.hash, t->prev) == 0) {
        return head_write(a); // the text only grows: nothing of the old one remains
    }
    if (t->seq == 0 && a->size == 0 && a->segment > 1 && h.seq > 0) {
        a->seq = h.seq;
        memcpy(a->prev, h.hash, 65);
        a->segment_pending = true;
        snprintf(a->reason, sizeof a->reason, "restart");
        return 0;
    }
    return sbx_error_set(SBX_EAUTH,
                         "the audit log %s ends at seq %" PRIu64
                         " but its head file says seq %" PRIu64
                         "%s: lines may have been removed or edited; check it with `sbx kms audit "
                         "verify`, keep a copy, then move the log and its .head aside to start a "
                         "new one",
                         a->path, t->seq, h.seq, h.seq == t->seq ? " with another hash" : "");
}

/* The segment number of a file name: NAME.NNN (digits only), else 0. */
static uint64_t
segment_number(const char *file, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(file, base, n) != 0 || file[n] != '.' || file[n + 1] == '\0' ||
        strspn(file + n + 1, "0123456789") != strlen(file + n + 1) || strlen(file + n + 1) > 18)
        return 0;
    return strtoull(file + n + 1, NULL, 10);
}

typedef struct {
    uint64_t n;
    char *path;
} seg_entry;

static int
seg_cmp(const void *x, const void *y)
{
    const seg_entry *a = x, *b = y;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* The segments of the log at path (PATH.N), sorted; *count of them. */
static int
list_segments(seg_entry **out, size_t *count, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash == NULL ? 1 : (int)(slash - path + (slash == path)),
             slash == NULL ? "." : path);
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return sbx_error_set_sys(SBX_EIO, "cannot list the directory %s", dir);
    struct dirent *e;
    size_t cap = 0;
    int err = 0;
    while (err == 0 && (e = readdir(d)) != NULL) {
        uint64_t n = segment_number(e->d_name, base);
        if (n == 0)
            continue;
        if (*count == cap) {
            seg_entry *m = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
            if (m == NULL) {
                err = sbx_error_set_nomem();
                break;
            }
            *out = m;
        }
        if (asprintf(&(*out)[*count].path, "%s/%s", dir, e->d_name) < 0) {
            err = sbx_error_set_nomem();
            break;
        }
        (*out)[(*count)++].n = n;
    }
    closedir(d);
    if (*count > 0)
        qsort(*out, *count, sizeof **out, seg_cmp);
    return err;
}

static void
free_segments(seg_entry *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].path);
    free(s);
}

/* see audit.h */
int
kms_audit_series(char ***out, size_t *count, const char *path)
{
    seg_entry *segs;
    size_t n;
    *out = NULL;
    *count = 0;
    int err = list_segments(&segs, &n, path);
    char **list = err == 0 ? calloc(n + 2, sizeof *list) : NULL;
    if (err == 0 && list == NULL)
        err = sbx_error_set_nomem();
    for (size_t i = 0; err == 0 && i < n; i++) {
        list[i] = segs[i].path;
        segs[i].path = NULL;
    }
    if (err == 0 && (list[n] = strdup(path)) == NULL)
        err = sbx_error_set_nomem();
    free_segments(segs, n);
    if (err < 0) {
        kms_audit_series_free(list);
        return err;
    }
    *out = list;
    *count = n + 1;
    return 0;
}

/* see audit.h */
void
kms_audit_series_free(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* The live log's segment number: one past the last segment beside it. */
static int
live_segment(kms_audit *a)
{
    seg_entry *segs;
    size_t n;
    int err = list_segments(&segs, &n, a->path);
    if (err == 0)
        a->segment = n > 0 ? segs[n - 1].n + 1 : 1;
    free_segments(segs, n);
    return err;
}

static int
open_files(kms_audit *a, const char *path, char *hpath)
{
    struct stat sb;
    tail_rec t;
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot open the audit log %s", path);
    if (fstat(a->fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return sbx_error_set(SBX_EIO, "the audit log %s must be a regular file", path);
    a->head_fd = open(hpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->head_fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot open the audit head file %s", hpath);
    int err = read_tail(a->fd, sb.st_size, path, a->key, &t);
    if (err < 0)
        return err;
    a->size = sb.st_size;
    a->seq = t.seq;
    memcpy(a->prev, t.hash, 65);
    if ((err = live_segment(a)) < 0)
        return err;
    return reconcile_head(a, &t, hpath);
}

/* see audit.h */
int
kms_audit_open(kms_audit **out, const char *path, const uint8_t *key, bool fail_closed)
{
    *out = NULL;
    kms_audit *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return sbx_error_set_nomem();
    a->fd = a->head_fd = -1;
    a->fail_closed = fail_closed;
    memcpy(a->prev, ZERO_HASH, 65);
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return sbx_error_set(SBX_ENOMEM, "cannot create the audit log's mutex");
    }
    if (path == NULL) {
        *out = a;
        return 0;
    }
    if (key == NULL || (a->key = sbx_secret_alloc(32)) == NULL) {
        kms_audit_close(a);
        return key == NULL ? sbx_error_set(SBX_EINVAL, "kms_audit_open: a log needs its key")
                           : sbx_error_set_nomem();
    }
    memcpy(a->key, key, 32);
    char *hpath = head_path(path);
    a->path = strdup(path);
    int err = hpath == NULL || a->path == NULL ? sbx_error_set_nomem() : open_files(a, path, hpath);
    free(hpath);
    if (err < 0) {
        kms_audit_close(a);
        return err;
    }
    *out = a;
    return 0;
}

/* ---- writing ---- */

/* Undoes a short write; marks the log torn when that fails. */
static void
undo_partial(kms_audit *a)
{
    int saved = errno;
    a->torn = ftruncate(a->fd, a->size) < 0;
    errno = saved;
}

static int
append_line(kms_audit *a, const char *line, size_t len)
{
    if (a->torn) {
        if (ftruncate(a->fd, a->size) < 0)
            return sbx_error_set_sys(SBX_EIO,
                                     "audit log %s: cannot remove a partial line left by an "
                                     "earlier failed write",
                                     a->path);
        a->torn = false;
    }
    ssize_t w = write(a->fd, line, len);
    if (w > 0 && w < (ssize_t)len) { // short: the rest either fits now or says why not
        ssize_t w2 = write(a->fd, line + w, len - (size_t)w);
        if (w2 == (ssize_t)len - w)
            return 0;
        w += w2 > 0 ? w2 : 0;
        if (w2 >= 0)
            errno = ENOSPC;
    }
    if (w == (ssize_t)len)
        return 0;
    if (w == 0)
        errno = ENOSPC;
    if (w > 0)
        undo_partial(a);
    return sbx_error_set_sys(SBX_EIO, "audit log %s: cannot append a line", a->path);
}

/*
 * Builds, tags and writes the next line from fields (a request's, or a segment
 * line's), with the lost count when lines were lost; advances seq and prev and
 * clears lost on success. Lock held.
 */
static int
write_line(kms_audit *a, const char *fields)
{
    char ts[32], prefix[96], hash[65], *line, *body = NULL;
    size_t len;
    rfc3339_ms(ts);
    snprintf(prefix, sizeof(prefix), "{\"seq\":%" PRIu64 ",\"time\":\"%s\",", a->seq + 1, ts);
    if (a->lost > 0 && asprintf(&body, "%s,\"lost\":%" PRIu64, fields, a->lost) < 0)
        return sbx_error_set_nomem();
    int err = make_line(&line, &len, hash, prefix, body != NULL ? body : fields, a->prev, a->key);
    free(body);
    if (err < 0)
        return err;
    err = append_line(a, line, len);
    if (err == 0) {
        a->size += (off_t)len;
        a->seq++;
        a->lost = 0;
        memcpy(a->prev, hash, 65);
        err = head_write(a);
    }
    free(line);
    return err;
}

/* Writes the live log's segment line when it is still missing. Lock held. */
static int
write_segment_line(kms_audit *a)
{
    char fields[96];
    if (!a->segment_pending)
        return 0;
    snprintf(fields, sizeof fields, "\"segment\":%" PRIu64 ",\"reason\":\"%s\"", a->segment,
             a->reason);
    int err = write_line(a, fields);
    if (err == 0)
        a->segment_pending = false;
    return err;
}

/* PATH.NNNNNN (segment n) into out, and its head file into hout. */
static int
segment_paths(char *out, char *hout, size_t cap, const char *path, uint64_t n)
{
    int a = snprintf(out, cap, "%s." KMS_AUDIT_SEGMENT_FMT, path, n);
    int b = snprintf(hout, cap, "%s." KMS_AUDIT_SEGMENT_FMT ".head", path, n);
    if (a < 0 || b < 0 || (size_t)a >= cap || (size_t)b >= cap)
        return sbx_error_set(SBX_EINVAL, "audit log path too long: %s", path);
    return 0;
}

/*
 * Closes the live log as segment a->segment (renamed, with its head, to
 * PATH.NNNNNN and PATH.NNNNNN.head, never over an existing file) and starts
 * the next segment at PATH, whose first line (the segment line) continues
 * the chain. An empty live log is not rotated. Lock held.
 */
static int
rotate_locked(kms_audit *a, const char *reason)
{
    char seg[4096], seghead[4096], *hpath = NULL;
    if (a->fd < 0 || a->size == 0 || a->segment_pending)
        return 0;
    int err = segment_paths(seg, seghead, sizeof seg, a->path, a->segment);
    if (err < 0)
        return err;
    if ((hpath = head_path(a->path)) == NULL)
        return sbx_error_set_nomem();
    (void)fsync(a->fd);
    (void)fsync(a->head_fd);
    int fd = -1, hfd = -1;
    if (renameat2(AT_FDCWD, a->path, AT_FDCWD, seg, RENAME_NOREPLACE) != 0) {
        err = sbx_error_set_sys(SBX_EIO, "audit log %s: cannot rotate it to %s", a->path, seg);
    } else if (renameat2(AT_FDCWD, hpath, AT_FDCWD, seghead, RENAME_NOREPLACE) != 0) {
        err = sbx_error_set_sys(SBX_EIO, "audit log %s: cannot rotate its head to %s", a->path,
                                seghead);
        (void)rename(seg, a->path);
    } else {
        fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        hfd = open(hpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || hfd < 0) { // put the segment back: the log goes on as it was
            err =
                sbx_error_set_sys(SBX_EIO, "audit log %s: cannot create the next segment", a->path);
            if (fd >= 0)
                (void)unlink(a->path), close(fd);
            if (hfd >= 0)
                (void)unlink(hpath), close(hfd);
            (void)rename(seg, a->path);
            (void)rename(seghead, hpath);
        }
    }
    free(hpath);
    if (err < 0)
        return err;
    close(a->fd);
    close(a->head_fd);
    a->fd = fd;
    a->head_fd = hfd;
    a->size = 0;
    a->segment++;
    a->segment_pending = true;
    snprintf(a->reason, sizeof a->reason, "%s", reason);
    // The head of the new segment first names where it continues from (the
    // previous segment's end), then its segment line; if that cannot be
    // written now, the next write writes it first.
    if ((err = head_write(a)) == 0)
        err = write_segment_line(a);
    return err;
}

/* Reports a failure on stderr at most once a minute; counts a lost line when not fail-closed. */
static void
report(kms_audit *a)
{
    int64_t now = kms_mono_ms();
    a->unreported++;
    if (!a->fail_closed)
        a->lost++;
    if (a->reported_ms == 0 || now - a->reported_ms >= REPORT_MS) {
        kms_logf(KMS_LOG_ERROR,
                 "AUDIT FAILURE: %s (%" PRIu64 " request(s) since the last report %s)",
                 sbx_error_last()->message, a->unreported,
                 a->fail_closed ? "refused with 503 (--audit-fail-closed)"
                                : "answered without an audit line: the next line written records "
                                  "them in its lost field");
        a->reported_ms = now;
        a->unreported = 0;
    }
}

/* A failed rotation by size: reported at most once a minute, the log goes on. */
static void
report_rotation(kms_audit *a)
{
    int64_t now = kms_mono_ms();
    if (a->reported_ms == 0 || now - a->reported_ms >= REPORT_MS) {
        kms_logf(KMS_LOG_WARN, "%s (the live audit log keeps growing; retried after each line)",
                 sbx_error_last()->message);
        a->reported_ms = now;
    }
    sbx_error_clear();
}

/* see audit.h */
int
kms_audit_write(kms_audit *a, const kms_audit_event *ev)
{
    size_t flen = 0;
    if (a == NULL || ev == NULL)
        return sbx_error_set(SBX_EINVAL, "kms_audit_write: NULL argument");
    if (a->fd < 0)
        return 0;
    char *fields = event_fields(ev, &flen);
    pthread_mutex_lock(&a->lock);
    int err = fields == NULL ? sbx_error_set_nomem() : write_segment_line(a);
    if (err == 0)
        err = write_line(a, fields);
    if (err < 0) {
        report(a);
        if (!a->fail_closed) {
            sbx_error_clear();
            err = 0;
        }
    } else if (a->max_size > 0 && (uint64_t)a->size >= a->max_size &&
               rotate_locked(a, "size") < 0) {
        report_rotation(a); // the line is written: only the rotation waits for the next line
    }
    pthread_mutex_unlock(&a->lock);
    free(fields);
    return err;
}

/* see audit.h */
int
kms_audit_rotate(kms_audit *a, const char *reason)
{
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->lock);
    int err = rotate_locked(a, reason);
    pthread_mutex_unlock(&a->lock);
    return err;
}

/* see audit.h */
void
kms_audit_set_max_size(kms_audit *a, uint64_t bytes)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->max_size = bytes;
    pthread_mutex_unlock(&a->lock);
}

/* see audit.h */
void
kms_audit_close(kms_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0) {
        (void)fsync(a->fd);
        close(a->fd);
    }
    if (a->head_fd >= 0) {
        (void)fsync(a->head_fd);
        close(a->head_fd);
    }
    pthread_mutex_destroy(&a->lock);
    sbx_secret_free(a->key, 32);
    free(a->path);
    free(a);
}

/* ---- verification ---- */

/*
 * Reads the next line into buf (AUDIT_LINE_MAX + 1): 1 and *len (newline included
 * when *nl), 0 at end of file, SBX_EIO on a read error, SBX_EAUTH when over
 * AUDIT_LINE_MAX.
 */
static int
next_line(FILE *fp, char *buf, size_t *len, bool *nl, uint64_t n)
{
    size_t i = 0;
    int c = EOF;
    *nl = false;
    while (i < AUDIT_LINE_MAX && (c = getc_unlocked(fp)) != EOF) {
        buf[i++] = (char)c;
        if (c == '\n') {
            *nl = true;
            break;
        }
    }
    *len = i;
    if (ferror(fp))
        return sbx_error_set_sys(SBX_EIO, "cannot read the audit log");
    if (!*nl && i == AUDIT_LINE_MAX)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": longer than %d bytes", n,
                             AUDIT_LINE_MAX);
    return i > 0;
}

/* What verification carries from line to line and from segment to segment. */
typedef struct {
    const uint8_t *key; /* NULL: none */
    kms_audit_unkeyed unkeyed;
    bool partial; /* the series may begin after archived segments */
    bool seen_keyed;
    uint64_t files;   /* segments done */
    uint64_t segment; /* the segment being read */
    uint64_t seq;     /* the last line's seq */
    char prev[65];    /* the last line's tag */
    const char *last_file;
    kms_audit_report rep;
} verifier;

/* The checks of a segment's first line (li): where the segment fits in the series. */
static int
verify_segment_start(verifier *v, const line_info *li)
{
    if (v->files == 0) {
        if (li->segment == 0) {
            v->segment = 1;
            return 0;
        }
        if (!v->partial)
            return sbx_error_set(SBX_EAUTH,
                                 "line 1: begins segment %" PRIu64 ", so segments 1 to %" PRIu64
                                 " are missing: verify the whole series (the data directory), or "
                                 "give --partial for a series whose earlier segments were archived",
                                 li->segment, li->segment - 1);
        v->segment = v->rep.first_segment = li->segment; // its link backwards is not checked
        v->seq = li->seq - 1;
        memcpy(v->prev, li->prev, 65);
        return 0;
    }
    if (li->segment == 0)
        return sbx_error_set(SBX_EAUTH,
                             "line 1: not a segment line, so this is the start of a log, not the "
                             "segment after %s (segments swapped, or from another log?)",
                             v->last_file);
    if (li->segment != v->segment + 1)
        return sbx_error_set(SBX_EAUTH,
                             "line 1: begins segment %" PRIu64 " but follows %s, segment %" PRIu64
                             " (a segment is missing, duplicated or out of order)",
                             li->segment, v->last_file, v->segment);
    v->segment = li->segment;
    return 0;
}

/* Checks line n of the current segment against the chain; updates v->seq and v->prev. */
static int
verify_line(verifier *v, const char *buf, size_t len, bool nl, uint64_t n)
{
    line_info li;
    if (!nl)
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": truncated: no newline at the end (a torn write or "
                             "appended bytes)",
                             n);
    int err = parse_line(buf, len - 1, n, &li);
    if (err < 0)
        return err;
    if (n == 1 && (err = verify_segment_start(v, &li)) < 0)
        return err;
    if (n > 1 && li.segment != 0)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": a segment line inside a segment", n);
    if (li.segment != 0 && !li.keyed)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": a segment line without a mac", n);
    if (li.seq != v->seq + 1)
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": seq %" PRIu64 ", expected %" PRIu64
                             " (lines %s missing, reordered or duplicated)",
                             n, li.seq, v->seq + 1, n == 1 ? "or segments are" : "are");
    if (!li.keyed && (v->seen_keyed || v->unkeyed == KMS_AUDIT_UNKEYED_REFUSE))
        return sbx_error_set(
            SBX_EAUTH,
            "line %" PRIu64 ": no mac (%s): an unkeyed line is forgeable by "
            "anyone who can write the log",
            n, v->seen_keyed ? "after keyed lines" : "and every line must be keyed here");
    if (strcmp(li.prev, v->prev) != 0) {
        if (v->seq == 0)
            return sbx_error_set(SBX_EAUTH, "line 1: prev is not 64 zeros (the start of the log "
                                            "is missing)");
        if (n == 1)
            return sbx_error_set(SBX_EAUTH,
                                 "line 1: prev does not match the last line of %s (one of the "
                                 "two segments was edited, or they are not neighbours)",
                                 v->last_file);
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": prev does not match line %" PRIu64
                             " (one of them was edited)",
                             n, n - 1);
    }
    if ((err = line_tag(v->prev, &li, buf, len - 1, v->key, n)) < 0)
        return err;
    v->seq = li.seq;
    v->seen_keyed |= li.keyed;
    v->rep.unkeyed += !li.keyed;
    v->rep.lost += li.lost;
    return 0;
}

static int
verify_lines(verifier *v, FILE *fp)
{
    char *buf = malloc(AUDIT_LINE_MAX + 1);
    size_t len;
    bool nl;
    int r;
    uint64_t n = 0;
    if (buf == NULL)
        return sbx_error_set_nomem();
    while ((r = next_line(fp, buf, &len, &nl, n + 1)) > 0) {
        if ((r = verify_line(v, buf, len, nl, n + 1)) < 0)
            break;
        n++;
        v->rep.lines++;
    }
    free(buf);
    return r < 0 ? r : 0;
}

static int
verify_head(const char *path, uint64_t count, const char last[65])
{
    char *hpath = head_path(path);
    head_rec h;
    if (hpath == NULL)
        return sbx_error_set_nomem();
    int fd = open(hpath, O_RDONLY | O_CLOEXEC);
    int err = 0;
    if (fd < 0) { // even for an empty log: without its head, removed lines go unnoticed
        err = errno == ENOENT ? sbx_error_set(SBX_EAUTH,
                                              "the head file %s is missing: cannot tell whether "
                                              "lines were removed at the end",
                                              hpath)
                              : sbx_error_set_sys(SBX_EIO, "cannot open %s", hpath);
    } else if ((err = head_read(fd, hpath, &h)) == 0) {
        if (h.seq != count)
            err = sbx_error_set(SBX_EAUTH,
                                "log ends at seq %" PRIu64 " but the head file says %" PRIu64 "%s",
                                count, h.seq,
                                h.seq > count ? " (lines were removed at the end)"
                                              : " (the head lags: a crash between a line and its "
                                                "head?)");
        else if (strcmp(h.hash, last) != 0)
            err = sbx_error_set(SBX_EAUTH,
                                "seq %" PRIu64 ": does not match the tag in the head file (the "
                                "last line was edited)",
                                count);
    }
    if (fd >= 0)
        close(fd);
    free(hpath);
    return err;
}

/* One segment of a series and its head file. */
static int
verify_file(verifier *v, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return sbx_error_set_sys(SBX_EIO, "cannot open the audit log %s", path);
    uint64_t before = v->rep.lines;
    int err = verify_lines(v, fp);
    fclose(fp);
    if (err == 0 && v->rep.lines == before && v->files == 0 && v->partial)
        err = sbx_error_set(SBX_EAUTH, "empty: a series given with --partial must begin with a "
                                       "segment line");
    if (err == 0)
        err = verify_head(path, v->seq, v->prev);
    return err;
}

/* see audit.h */
int
kms_audit_verify_series(const char *const *paths, size_t n, const uint8_t *key,
                        kms_audit_unkeyed unkeyed, bool partial, kms_audit_report *rep)
{
    verifier v = {.key = key, .unkeyed = unkeyed, .partial = partial, .rep.first_segment = 1};
    memcpy(v.prev, ZERO_HASH, 65);
    if (rep != NULL)
        memset(rep, 0, sizeof *rep);
    if (n == 0)
        return sbx_error_set(SBX_EINVAL, "no audit log to verify");
    for (size_t i = 0; i < n; i++, v.files++) {
        int err = verify_file(&v, paths[i]);
        if (err < 0)
            return sbx_error_prefix(err, "%s", paths[i]);
        v.last_file = paths[i];
    }
    v.rep.segments = n;
    if (v.rep.lines > 0 && !v.seen_keyed && unkeyed == KMS_AUDIT_UNKEYED_PREFIX)
        return sbx_error_set(SBX_EAUTH,
                             "no line carries a mac: either a log written before keyed chains "
                             "(verify it with --allow-unkeyed) or one whose macs were stripped and "
                             "whose chain was recomputed, which anyone who can write it can do");
    if (rep != NULL)
        *rep = v.rep;
    return 0;
}

/* see audit.h */
int
kms_audit_verify(const char *path, const uint8_t *key, kms_audit_unkeyed unkeyed,
                 kms_audit_report *rep)
{
    return kms_audit_verify_series(&path, 1, key, unkeyed, false, rep);
}
