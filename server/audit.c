/*
 * server/audit.c - the hash-chained audit log (see audit.h).
 *
 * Implementation notes:
 *  - A line is built in two parts. The request's fields (request_id ..
 *    error) are serialised by jansson outside the lock; under the lock the
 *    line gets seq and time in front and prev at the end, is hashed and
 *    written with one write(2) on an O_APPEND descriptor. jansson escapes
 *    every string; fields are first cut to FIELD_MAX bytes and invalid UTF-8
 *    bytes replaced by '?', so a line is at most a few tens of KiB and
 *    always valid JSON.
 *  - A failed or short write never advances seq or prev. A short write
 *    (disk full, RLIMIT_FSIZE) is undone with ftruncate to the last complete
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
 *    pread of at most AUDIT_LINE_MAX bytes) and parsed; the chain continues from
 *    it. A head one line behind whose hash is that line's prev (the window
 *    between the two writes) is repaired. Anything else refuses to start,
 *    keeping the evidence: a last line without its newline (a torn write),
 *    a last line that does not parse, a head ahead of the log (lines cut off
 *    the end), or a head that disagrees. The message says what to do (verify,
 *    keep a copy, move the files aside to start a new chain).
 *  - kms_audit_verify reads the log sequentially (lines of at most AUDIT_LINE_MAX
 *    bytes) and checks for every line: newline-terminated, a JSON object
 *    with the documented fields in the documented order and types, seq equal
 *    to its line number, prev equal to the SHA-256 of the previous line's
 *    bytes; then the head file against the last line. Every finding is
 *    SBX_EAUTH naming the line; SBX_EIO when a file cannot be read.
 */
#include "audit.h"

#include "util.h"

#include "strongbox/error.h"

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
#define AUDIT_LINE_MAX (64 * 1024) /* longest line accepted when reading */
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
    char prev[65];
    off_t size; /* bytes of complete lines */
    int64_t reported_ms;
    uint64_t unreported;
    char *path;
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

/* Copies s into out (FIELD_MAX + 1), cut at FIELD_MAX, invalid UTF-8 bytes as '?'. */
static size_t
clean_field(char out[FIELD_MAX + 1], const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t avail = strnlen(s, FIELD_MAX * 4), o = 0, i = 0;
    while (i < avail) {
        size_t n = utf8_seq(u + i, avail - i);
        if (o + (n ? n : 1) > FIELD_MAX)
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
add_str(json_t *o, const char *name, const char *s)
{
    char buf[FIELD_MAX + 1];
    size_t n = clean_field(buf, s != NULL ? s : "");
    return json_object_set_new(o, name, json_stringn(buf, n));
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
} line_info;

static const char *const field_order[] = {
    "seq", "time",        "request_id", "caller",  "remote", "method", "path", "op",
    "key", "key_version", "status",     "outcome", "error",  "prev",   NULL};

static bool
is_required(const char *k)
{
    return strcmp(k, "key") != 0 && strcmp(k, "key_version") != 0 && strcmp(k, "error") != 0;
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
    if (!json_is_string(v))
        return "a field that must be a string is not";
    const char *s = json_string_value(v);
    if (strcmp(k, "time") == 0 && !time_ok(s))
        return "time is not RFC 3339 UTC with milliseconds";
    if (strcmp(k, "outcome") == 0 && strcmp(s, "ok") != 0 && strcmp(s, "denied") != 0 &&
        strcmp(s, "error") != 0)
        return "outcome is not ok, denied or error";
    if (strcmp(k, "prev") == 0 && !hex64_ok(s))
        return "prev is not 64 lower-case hex digits";
    return NULL;
}

static bool
is_known(const char *k)
{
    for (size_t i = 0; field_order[i] != NULL; i++)
        if (strcmp(field_order[i], k) == 0)
            return true;
    return false;
}

/* Fields in the documented order, each of its type, the required ones present. */
static const char *
check_shape(json_t *o)
{
    size_t at = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!is_known(k))
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
        li->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        memcpy(li->prev, json_string_value(json_object_get(o, "prev")), 65);
    }
    json_decref(o);
    if (bad != NULL)
        return sbx_error_set(SBX_EAUTH, "line %" PRIu64 ": not an audit record: %s", n, bad);
    return 0;
}

/* ---- opening ---- */

typedef struct {
    uint64_t seq;  /* 0: empty log */
    char hash[65]; /* of the last line */
    char prev[65]; /* the last line's prev */
} tail_rec;

static int
read_tail(int fd, off_t size, const char *path, tail_rec *t)
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
        if (err == 0) {
            t->seq = li.seq;
            memcpy(t->prev, li.prev, 65);
            sha256_hex(t->hash, start, len);
        }
    }
    free(buf);
    return err;
}

/* Compares the head with the log's tail; repairs a head one line behind. */
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
    return sbx_error_set(SBX_EAUTH,
                         "the audit log %s ends at seq %" PRIu64
                         " but its head file says seq %" PRIu64
                         "%s: lines may have been removed or edited; check it with `sbx kms audit "
                         "verify`, keep a copy, then move the log and its .head aside to start a "
                         "new one",
                         a->path, t->seq, h.seq, h.seq == t->seq ? " with another hash" : "");
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
    int err = read_tail(a->fd, sb.st_size, path, &t);
    if (err < 0)
        return err;
    a->size = sb.st_size;
    a->seq = t.seq;
    memcpy(a->prev, t.hash, 65);
    return reconcile_head(a, &t, hpath);
}

/* see audit.h */
int
kms_audit_open(kms_audit **out, const char *path, bool fail_closed)
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
    if (w == (ssize_t)len)
        return 0;
    if (w >= 0)
        errno = w == 0 ? ENOSPC : EFBIG;
    if (w > 0)
        undo_partial(a);
    return sbx_error_set_sys(SBX_EIO, "audit log %s: cannot append a line", a->path);
}

/* Builds, hashes and writes the next line; advances seq and prev on success. Lock held. */
static int
write_locked(kms_audit *a, const char *fields, size_t flen)
{
    char ts[32], prefix[96], hash[65];
    rfc3339_ms(ts);
    int plen =
        snprintf(prefix, sizeof(prefix), "{\"seq\":%" PRIu64 ",\"time\":\"%s\",", a->seq + 1, ts);
    size_t len = (size_t)plen + flen + sizeof(",\"prev\":\"\"}\n") - 1 + 64;
    char *line = malloc(len + 1);
    if (line == NULL)
        return sbx_error_set_nomem();
    snprintf(line, len + 1, "%s%s,\"prev\":\"%s\"}\n", prefix, fields, a->prev);
    int err = append_line(a, line, len);
    if (err == 0) {
        sha256_hex(hash, line, len - 1);
        a->size += (off_t)len;
        a->seq++;
        memcpy(a->prev, hash, 65);
        err = head_write(a);
    }
    free(line);
    return err;
}

/* Not fail-closed: report on stderr at most once a minute, and go on. */
static int
report(kms_audit *a, int err)
{
    int64_t now = kms_mono_ms();
    a->unreported++;
    if (a->reported_ms == 0 || now - a->reported_ms >= REPORT_MS) {
        fprintf(stderr, "sbx kms: %s (%" PRIu64 " line(s) lost since the last report)\n",
                sbx_error_last()->message, a->unreported);
        a->reported_ms = now;
        a->unreported = 0;
    }
    (void)err;
    sbx_error_clear();
    return 0;
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
    int err = fields == NULL ? sbx_error_set_nomem() : write_locked(a, fields, flen);
    if (err < 0 && !a->fail_closed)
        err = report(a, err);
    pthread_mutex_unlock(&a->lock);
    free(fields);
    return err;
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

/* Checks line n against the chain; updates prev to its hash. */
static int
verify_line(const char *buf, size_t len, bool nl, uint64_t n, char prev[65])
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
    if (li.seq != n)
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": seq %" PRIu64 ", expected %" PRIu64
                             " (lines are missing, reordered or duplicated)",
                             n, li.seq, n);
    if (strcmp(li.prev, prev) != 0) {
        if (n == 1)
            return sbx_error_set(SBX_EAUTH, "line 1: prev is not 64 zeros (the start of the log "
                                            "is missing)");
        return sbx_error_set(SBX_EAUTH,
                             "line %" PRIu64 ": prev does not match line %" PRIu64
                             " (one of them was edited)",
                             n, n - 1);
    }
    sha256_hex(prev, buf, len - 1);
    return 0;
}

static int
verify_lines(FILE *fp, uint64_t *count, char last[65])
{
    char *buf = malloc(AUDIT_LINE_MAX + 1);
    size_t len;
    bool nl;
    int r;
    if (buf == NULL)
        return sbx_error_set_nomem();
    memcpy(last, ZERO_HASH, 65);
    *count = 0;
    while ((r = next_line(fp, buf, &len, &nl, *count + 1)) > 0) {
        if ((r = verify_line(buf, len, nl, *count + 1, last)) < 0)
            break;
        (*count)++;
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
    if (fd < 0 && errno == ENOENT && count == 0) {
        err = 0;
    } else if (fd < 0) {
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
                                "line %" PRIu64 ": does not match the hash in the head file (the "
                                "last line was edited)",
                                count);
    }
    if (fd >= 0)
        close(fd);
    free(hpath);
    return err;
}

/* see audit.h */
int
kms_audit_verify(const char *path, uint64_t *lines)
{
    char last[65];
    uint64_t count = 0;
    if (lines != NULL)
        *lines = 0;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return sbx_error_set_sys(SBX_EIO, "cannot open the audit log %s", path);
    int err = verify_lines(fp, &count, last);
    fclose(fp);
    if (err == 0)
        err = verify_head(path, count, last);
    if (err == 0 && lines != NULL)
        *lines = count;
    return err;
}
