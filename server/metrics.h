/*
 * server/metrics.h - request counters and latency histograms (internal).
 * Lock-free (atomics); rendered in the Prometheus text exposition format:
 *   sbx_kms_requests_total{op="decrypt",code="200"} 12
 *   sbx_kms_request_errors_total{op="decrypt"} 1          (status >= 400)
 *   sbx_kms_request_duration_seconds_bucket{op="decrypt",le="0.001"} 10 ... +Inf
 *   sbx_kms_request_duration_seconds_sum / _count{op=...}
 *   sbx_kms_keys (gauge, set by the caller), sbx_kms_uptime_seconds
 */
#ifndef SBX_SERVER_METRICS_H
#define SBX_SERVER_METRICS_H

#include "auth.h"

#include <stddef.h>

void kms_metrics_record(kms_op op, int status, double seconds);
void kms_metrics_set_keys(int64_t n);
/* Returns malloc'd text (NUL-terminated), *len its length. NULL on ENOMEM. */
char *kms_metrics_render(size_t *len);
/* Resets everything (tests). */
void kms_metrics_reset(void);

#endif
