/*
 * tests/server/test_metrics.c - request counters and latency histograms
 * (server/metrics.h): counts by op and status, cumulative buckets, a valid
 * Prometheus text exposition, out-of-range inputs, concurrent recording.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>

#include "metrics.h"
#include "strongbox/common.h"
#include "helpers.h"

/* The value of the sample line "<series> <value>", or -1 when absent. */
static double
sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static char *
render(void)
{
    size_t len = 0;
    char *t = kms_metrics_render(&len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_true(len > 0 && t[len - 1] == '\n');
    return t;
}

static void
requests_are_counted_by_op_and_status(void **state)
{
    (void)state;
    kms_metrics_reset();
    for (int i = 0; i < 3; i++)
        kms_metrics_record(KMS_OP_DECRYPT, 200, 0.001);
    kms_metrics_record(KMS_OP_DECRYPT, 403, 0.001);
    kms_metrics_record(KMS_OP_DATAKEY_WRAPPED, 503, 0.001);
    kms_metrics_record(KMS_OP_CREATE, 201, 0.001);
    char *t = render();
    assert_true(sample(t, "sbx_kms_requests_total{op=\"decrypt\",code=\"200\"}") == 3);
    assert_true(sample(t, "sbx_kms_requests_total{op=\"decrypt\",code=\"403\"}") == 1);
    assert_true(sample(t, "sbx_kms_requests_total{op=\"datakey-wrapped\",code=\"503\"}") == 1);
    assert_true(sample(t, "sbx_kms_requests_total{op=\"create\",code=\"201\"}") == 1);
    assert_true(sample(t, "sbx_kms_request_errors_total{op=\"decrypt\"}") == 1);
    assert_true(sample(t, "sbx_kms_request_errors_total{op=\"datakey-wrapped\"}") == 1);
    assert_true(sample(t, "sbx_kms_request_errors_total{op=\"create\"}") == -1); // no errors
    assert_true(sample(t, "sbx_kms_requests_total{op=\"read\",code=\"200\"}") == -1);
    free(t);
}

static void
histogram_buckets_are_cumulative(void **state)
{
    static const double lat[] = {0.0001, 0.003, 0.003, 0.2, 7.0, 100.0};
    static const struct {
        const char *le;
        double want;
    } b[] = {{"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"0.1", 3},
             {"0.25", 4},   {"1", 4},     {"5", 4},      {"10", 5},    {"+Inf", 6}};
    char series[128];
    (void)state;
    kms_metrics_reset();
    for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++)
        kms_metrics_record(KMS_OP_READ, 200, lat[i]);
    char *t = render();
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
        snprintf(series, sizeof(series),
                 "sbx_kms_request_duration_seconds_bucket{op=\"read\",le=\"%s\"}", b[i].le);
        if (sample(t, series) != b[i].want) {
            print_error("%s: %g, want %g\n", series, sample(t, series), b[i].want);
            fail();
        }
    }
    assert_true(sample(t, "sbx_kms_request_duration_seconds_count{op=\"read\"}") == 6);
    double sum = sample(t, "sbx_kms_request_duration_seconds_sum{op=\"read\"}");
    assert_true(fabs(sum - 107.2061) < 1e-6);
    // every bucket series never decreases
    double last = 0;
    const char *prefix = "sbx_kms_request_duration_seconds_bucket{op=\"read\",le=\"";
    for (const char *p = strstr(t, prefix); p; p = strstr(p + 1, prefix)) {
        double v = strtod(strchr(p, ' ') + 1, NULL);
        assert_true(v >= last);
        last = v;
    }
    assert_true(last == 6);
    free(t);
}

/* A sample line: name, optional {k="v",...} with escaped values, a space, a number. */
static bool
sample_line_ok(const char *l, size_t n, char *family, size_t cap)
{
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)l[i]) || l[i] == '_' || l[i] == ':'))
        i++;
    if (i == 0 || i >= cap)
        return false;
    memcpy(family, l, i);
    family[i] = '\0';
    if (i < n && l[i] == '{') {
        for (i++; i < n && l[i] != '}';) {
            while (i < n && (isalnum((unsigned char)l[i]) || l[i] == '_'))
                i++;
            if (i + 1 >= n || l[i] != '=' || l[i + 1] != '"')
                return false;
            for (i += 2; i < n && l[i] != '"'; i++)
                if (l[i] == '\\')
                    i++;
            if (i >= n)
                return false;
            i++;
            if (i < n && l[i] == ',')
                i++;
        }
        if (i >= n)
            return false;
        i++;
    }
    if (i >= n || l[i] != ' ')
        return false;
    char *end;
    strtod(l + i + 1, &end);
    return end == l + n && end > l + i + 1;
}

static void
the_exposition_is_valid_prometheus_text(void **state)
{
    char typed[16][64], fam[128];
    size_t ntyped = 0;
    (void)state;
    kms_metrics_reset();
    for (int op = 0; op < KMS_OP_COUNT; op++)
        kms_metrics_record((kms_op)op, 200 + op, 0.01 * op);
    kms_metrics_set_keys(42);
    char *t = render();
    for (char *l = t, *nl; *l; l = nl + 1) {
        nl = strchr(l, '\n');
        assert_non_null(nl);
        size_t n = (size_t)(nl - l);
        if (strncmp(l, "# HELP ", 7) == 0)
            continue;
        if (strncmp(l, "# TYPE ", 7) == 0) {
            assert_true(ntyped < 16);
            assert_int_equal(sscanf(l + 7, "%63s", typed[ntyped]), 1);
            const char *type = l + 7 + strlen(typed[ntyped]) + 1;
            assert_true(strncmp(type, "counter\n", 8) == 0 || strncmp(type, "gauge\n", 6) == 0 ||
                        strncmp(type, "histogram\n", 10) == 0);
            ntyped++;
            continue;
        }
        if (!sample_line_ok(l, n, fam, sizeof(fam))) {
            print_error("not a sample line: %.*s\n", (int)n, l);
            fail();
        }
        bool declared = false; // its family (histogram suffixes stripped) was typed before
        for (size_t i = 0; i < ntyped && !declared; i++)
            declared = strncmp(fam, typed[i], strlen(typed[i])) == 0;
        assert_true(declared);
    }
    assert_true(sample(t, "sbx_kms_keys") == 42);
    assert_true(sample(t, "sbx_kms_uptime_seconds") >= 0);
    assert_true(test_contains(t, "# TYPE sbx_kms_request_duration_seconds histogram\n"));
    assert_true(test_contains(t, "# TYPE sbx_kms_requests_total counter\n"));
    assert_true(sample(t, "sbx_kms_requests_total{op=\"datakey-wrapped\",code=\"208\"}") == 1);
    free(t);
}

static void
out_of_range_inputs_are_counted_safely(void **state)
{
    (void)state;
    kms_metrics_reset();
    kms_metrics_record((kms_op)(KMS_OP_COUNT + 5), 200, 0.001); // counted as "other"
    kms_metrics_record(KMS_OP_READ, 0, 0.001);                  // no status: an error
    kms_metrics_record(KMS_OP_READ, 1000, 0.001);
    kms_metrics_record(KMS_OP_READ, 200, -1.0); // clock step backwards
    kms_metrics_record(KMS_OP_READ, 200, NAN);
    kms_metrics_record(KMS_OP_READ, 200, INFINITY);
    char *t = render();
    assert_true(sample(t, "sbx_kms_requests_total{op=\"other\",code=\"200\"}") == 1);
    assert_true(sample(t, "sbx_kms_request_errors_total{op=\"read\"}") == 2);
    assert_true(sample(t, "sbx_kms_requests_total{op=\"read\",code=\"200\"}") == 3);
    assert_true(sample(t, "sbx_kms_request_duration_seconds_bucket{op=\"read\",le=\"0.0005\"}") ==
                2);
    assert_true(sample(t, "sbx_kms_request_duration_seconds_count{op=\"read\"}") == 5);
    assert_false(test_contains(t, "nan"));
    assert_false(test_contains(t, "inf\n"));
    free(t);
    kms_metrics_reset();
    t = render();
    assert_false(test_contains(t, "sbx_kms_requests_total{"));
    assert_true(sample(t, "sbx_kms_keys") == 0);
    free(t);
}

#define THREADS 8
#define PER     20000

static void *
recorder(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++)
        kms_metrics_record(i % 2 ? KMS_OP_ENCRYPT : KMS_OP_DECRYPT, id % 2 ? 200 : 400,
                           0.0001 * (i % 100));
    return NULL;
}

static void
concurrent_records_are_all_counted(void **state)
{
    pthread_t th[THREADS];
    (void)state;
    kms_metrics_reset();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, recorder, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 2; i++) { // scrapes during the load stay consistent
        char *t = render();
        double c = sample(t, "sbx_kms_request_duration_seconds_count{op=\"encrypt\"}");
        double inf =
            sample(t, "sbx_kms_request_duration_seconds_bucket{op=\"encrypt\",le=\"+Inf\"}");
        assert_true(c == inf);
        free(t);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render();
    double total = 0;
    total += sample(t, "sbx_kms_requests_total{op=\"encrypt\",code=\"200\"}");
    total += sample(t, "sbx_kms_requests_total{op=\"encrypt\",code=\"400\"}");
    total += sample(t, "sbx_kms_requests_total{op=\"decrypt\",code=\"200\"}");
    total += sample(t, "sbx_kms_requests_total{op=\"decrypt\",code=\"400\"}");
    assert_true(total == THREADS * PER);
    assert_true(sample(t, "sbx_kms_request_errors_total{op=\"encrypt\"}") == THREADS * PER / 4);
    assert_true(sample(t, "sbx_kms_request_duration_seconds_count{op=\"decrypt\"}") ==
                THREADS * PER / 2);
    free(t);
}

int
main(void)
{
    (void)sbx_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_are_counted_by_op_and_status),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(the_exposition_is_valid_prometheus_text),
        cmocka_unit_test(out_of_range_inputs_are_counted_safely),
        cmocka_unit_test(concurrent_records_are_all_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
