/*
 * server/audit.h - the hash-chained audit log (internal).
 *
 * One JSON object per line, one line per request, appended with O_APPEND and
 * written in one write(2); fields:
 *   seq (1, 2, ...), time (RFC 3339 UTC with milliseconds), request_id,
 *   caller ("token:<id>:<name>", "cert:<CN>" or "anonymous"), remote (address),
 *   method, path (without query), op (kms_op name), key (name or omitted),
 *   key_version (omitted when 0), status (HTTP), outcome ("ok", "denied",
 *   "error"), error (message, omitted on success), prev (hex SHA-256 of the
 *   previous line's bytes without its newline; 64 zeros for the first line).
 * Never key material, tokens, plaintext, ciphertext or context values.
 *
 * Tamper evidence: editing or removing a line breaks the next line's prev or
 * the seq sequence; removing lines at the end is caught by the head file
 * (PATH + ".head": "seq hash\n", rewritten after each line) which
 * kms_audit_verify compares with the last line. A new process continues the
 * chain from the last line of an existing log.
 *
 * Fail closed: when opened with fail_closed, a failed write makes
 * kms_audit_write return SBX_EIO, and the server then withholds the response
 * (503). Otherwise failures are reported on stderr once per minute.
 */
#ifndef SBX_SERVER_AUDIT_H
#define SBX_SERVER_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct kms_audit kms_audit;

typedef struct {
    const char *request_id;
    const char *caller;
    const char *remote;
    const char *method;
    const char *path;
    const char *op;
    const char *key;      /* may be NULL */
    uint32_t key_version; /* 0 = none */
    int status;
    const char *outcome; /* "ok" | "denied" | "error" */
    const char *error;   /* may be NULL */
} kms_audit_event;

/* Opens (creating 0600) the log at path. path NULL: a log that discards (--dev without a data dir).
 */
int kms_audit_open(kms_audit **out, const char *path, bool fail_closed);
/* Appends one line. Thread-safe. */
int kms_audit_write(kms_audit *a, const kms_audit_event *ev);
/* Flushes (fsync) and closes. NULL-safe. */
void kms_audit_close(kms_audit *a);

/*
 * Verifies a log file and its head file. Returns 0 and *lines when intact;
 * SBX_EAUTH with a message naming the first bad line ("line 17: prev does not
 * match line 16", "log ends at seq 40 but the head file says 42") otherwise;
 * SBX_EIO / SBX_EFORMAT for unreadable or malformed files.
 */
int kms_audit_verify(const char *path, uint64_t *lines);

#endif
