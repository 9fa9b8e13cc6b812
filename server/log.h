/*
 * server/log.h - the key server's operational log (internal): one JSON object
 * per line on stderr, {"time":"2026-12-08T01:02:03.456Z","level":"info",
 * "msg":"...", fields...}. time is RFC 3339 in UTC with milliseconds; level is
 * error, warn, info or debug; fields are string-valued key/value pairs. Lines
 * below the current level are dropped. Each line is written with one write(2),
 * so lines of concurrent threads never interleave.
 *
 * The audit log (audit.h) is a separate, signed record of requests; this one
 * is for operators (start-up facts, reloads, warnings, shutdown).
 */
#ifndef SBX_SERVER_LOG_H
#define SBX_SERVER_LOG_H

#include <stdbool.h>

/* KMS_LOG_UNSET (0) in a setting means the default, info. */
typedef enum {
    KMS_LOG_UNSET,
    KMS_LOG_ERROR,
    KMS_LOG_WARN,
    KMS_LOG_INFO,
    KMS_LOG_DEBUG
} kms_log_level;

/* "error", "warn", "info", "debug" into *out; false for any other name. */
bool kms_log_level_parse(kms_log_level *out, const char *name);
const char *kms_log_level_name(kms_log_level level);

/* Sets the level below which lines are dropped (default info; UNSET = info). Thread-safe. */
void kms_log_set_level(kms_log_level level);

/*
 * Writes one line: msg, then the NULL-terminated list of (key, value)
 * strings, e.g. kms_log(KMS_LOG_INFO, "listening", "address", a, NULL).
 * A NULL value is written as JSON null. Strings are escaped for JSON.
 */
void kms_log(kms_log_level level, const char *msg, ...);

/* As kms_log, the message formatted with printf rules and no fields. */
void kms_logf(kms_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
