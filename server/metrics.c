/*
 * server/metrics.c - request counters and latency histograms (see metrics.h).
 *
 * Implementation notes:
 *  - Every counter is a relaxed atomic in static storage: recording is a few
 *    atomic adds, no lock, no allocation. Requests are counted per (op, HTTP
 *    status) in a dense table (status 100-599); only non-zero cells are
 *    rendered.
 *  - Histogram buckets are stored non-cumulatively (one add per request) and
 *    summed when rendered, so the exposition is cumulative. _count is the
 *    +Inf bucket as rendered, so the two always agree in one scrape even
 *    while requests are being recorded; _sum is kept in nanoseconds.
 *  - Uptime counts from process start (a constructor), or the last reset.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATUS_MIN 100
#define STATUS_MAX 599
#define NSTATUS    (STATUS_MAX - STATUS_MIN + 1)

/* Upper bounds of the finite buckets, in seconds; +Inf follows. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
static const char *const bound_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                         "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                         "1",      "2.5",   "5",      "10"};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static atomic_uint_fast64_t requests[KMS_OP_COUNT][NSTATUS];
static atomic_uint_fast64_t errors[KMS_OP_COUNT];
static atomic_uint_fast64_t buckets[KMS_OP_COUNT][NBOUNDS + 1];
static atomic_uint_fast64_t sum_ns[KMS_OP_COUNT];
static atomic_int_fast64_t keys_gauge;
static atomic_int_fast64_t start_ms; /* 0 until first use */

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets the uptime origin on first use (a lost race keeps the earlier value). */
static void
touch_start(void)
{
    int_fast64_t zero = 0;
    if (atomic_load_explicit(&start_ms, memory_order_relaxed) == 0)
        atomic_compare_exchange_strong(&start_ms, &zero, (int_fast64_t)mono_ms());
}

__attribute__((constructor)) static void
start_clock(void)
{
    touch_start();
}

static size_t
bucket_of(double seconds)
{
    size_t i = 0;
    while (i < NBOUNDS && seconds > bounds[i])
        i++;
    return i;
}

/* see metrics.h */
void
kms_metrics_record(kms_op op, int status, double seconds)
{
    touch_start();
    if ((int)op < 0 || op >= KMS_OP_COUNT)
        op = KMS_OP_OTHER;
    if (!(seconds >= 0.0)) // negative or NaN: a clock hiccup, count as 0
        seconds = 0.0;
    if (seconds > 1e6)
        seconds = 1e6;
    if (status >= STATUS_MIN && status <= STATUS_MAX)
        atomic_fetch_add_explicit(&requests[op][status - STATUS_MIN], 1, memory_order_relaxed);
    if (status >= 400 || status < STATUS_MIN || status > STATUS_MAX)
        atomic_fetch_add_explicit(&errors[op], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&buckets[op][bucket_of(seconds)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_ns[op], (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
}

/* see metrics.h */
void
kms_metrics_set_keys(int64_t n)
{
    touch_start();
    atomic_store_explicit(&keys_gauge, n, memory_order_relaxed);
}

/* see metrics.h */
void
kms_metrics_reset(void)
{
    for (size_t o = 0; o < KMS_OP_COUNT; o++) {
        for (size_t s = 0; s < NSTATUS; s++)
            atomic_store(&requests[o][s], 0);
        for (size_t b = 0; b <= NBOUNDS; b++)
            atomic_store(&buckets[o][b], 0);
        atomic_store(&errors[o], 0);
        atomic_store(&sum_ns[o], 0);
    }
    atomic_store(&keys_gauge, 0);
    atomic_store(&start_ms, (int_fast64_t)mono_ms());
}

/* ---- rendering ---- */

/* A growing text buffer; ok turns false on the first allocation failure. */
typedef struct {
    char *p;
    size_t len, cap;
    int ok;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(text *t, const char *fmt, ...)
{
    va_list ap;
    for (int attempt = 0; attempt < 2 && t->ok; attempt++) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->ok = 0;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *q = realloc(t->p, cap);
        if (q == NULL) {
            t->ok = 0;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
}

/* A label value escaped per the exposition format (\\, \", \n) into out. */
static const char *
esc(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

static void
render_requests(text *t)
{
    char op[64];
    put(t, "# HELP sbx_kms_requests_total Requests answered, by operation and HTTP status.\n"
           "# TYPE sbx_kms_requests_total counter\n");
    for (int o = 0; o < KMS_OP_COUNT; o++) {
        for (int s = 0; s < NSTATUS; s++) {
            uint64_t v = atomic_load_explicit(&requests[o][s], memory_order_relaxed);
            if (v != 0)
                put(t, "sbx_kms_requests_total{op=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                    esc(op, sizeof(op), kms_op_name((kms_op)o)), s + STATUS_MIN, v);
        }
    }
    put(t, "# HELP sbx_kms_request_errors_total Requests answered with a status of 400 or more.\n"
           "# TYPE sbx_kms_request_errors_total counter\n");
    for (int o = 0; o < KMS_OP_COUNT; o++) {
        uint64_t v = atomic_load_explicit(&errors[o], memory_order_relaxed);
        if (v != 0)
            put(t, "sbx_kms_request_errors_total{op=\"%s\"} %" PRIu64 "\n",
                esc(op, sizeof(op), kms_op_name((kms_op)o)), v);
    }
}

static void
render_histogram_op(text *t, int o)
{
    char op[64];
    uint64_t cum = 0, counts[NBOUNDS + 1];
    for (size_t b = 0; b <= NBOUNDS; b++)
        counts[b] = atomic_load_explicit(&buckets[o][b], memory_order_relaxed);
    for (size_t b = 0; b <= NBOUNDS; b++)
        cum += counts[b];
    if (cum == 0)
        return;
    esc(op, sizeof(op), kms_op_name((kms_op)o));
    cum = 0;
    for (size_t b = 0; b <= NBOUNDS; b++) {
        cum += counts[b];
        put(t, "sbx_kms_request_duration_seconds_bucket{op=\"%s\",le=\"%s\"} %" PRIu64 "\n", op,
            b < NBOUNDS ? bound_text[b] : "+Inf", cum);
    }
    double sum = (double)atomic_load_explicit(&sum_ns[o], memory_order_relaxed) / 1e9;
    put(t, "sbx_kms_request_duration_seconds_sum{op=\"%s\"} %.9f\n", op, sum);
    put(t, "sbx_kms_request_duration_seconds_count{op=\"%s\"} %" PRIu64 "\n", op, cum);
}

/* see metrics.h */
char *
kms_metrics_render(size_t *len)
{
    text t = {.p = malloc(8192), .len = 0, .cap = 8192, .ok = 1};
    touch_start();
    if (len != NULL)
        *len = 0;
    if (t.p == NULL)
        return NULL;
    render_requests(&t);
    put(&t, "# HELP sbx_kms_request_duration_seconds Time to answer a request, by operation.\n"
            "# TYPE sbx_kms_request_duration_seconds histogram\n");
    for (int o = 0; o < KMS_OP_COUNT; o++)
        render_histogram_op(&t, o);
    put(&t,
        "# HELP sbx_kms_keys Keys held (named keys and seed keys).\n"
        "# TYPE sbx_kms_keys gauge\n"
        "sbx_kms_keys %" PRId64 "\n",
        (int64_t)atomic_load_explicit(&keys_gauge, memory_order_relaxed));
    int64_t up = mono_ms() - (int64_t)atomic_load_explicit(&start_ms, memory_order_relaxed);
    put(&t,
        "# HELP sbx_kms_uptime_seconds Seconds since the server started.\n"
        "# TYPE sbx_kms_uptime_seconds gauge\n"
        "sbx_kms_uptime_seconds %.3f\n",
        (double)(up > 0 ? up : 0) / 1000.0);
    if (!t.ok) {
        free(t.p);
        return NULL;
    }
    if (len != NULL)
        *len = t.len;
    return t.p;
}
