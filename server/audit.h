/*
 * server/audit.h - the keyed, hash-chained audit log (internal).
 *
 * One JSON object per line, one line per request, appended with O_APPEND and
 * written in one write(2) (a short write completed by a second); fields:
 *   seq (1, 2, ...), time (RFC 3339 UTC with milliseconds), request_id,
 *   caller ("token:<id>:<name>", "cert:<CN>" or "anonymous"), remote (address),
 *   method, path (raw, without query), op (kms_op name), key (name or
 *   omitted), key_version (omitted when 0), status (HTTP), outcome ("ok",
 *   "denied", "error": of the HTTP status), error (message,
 *   omitted on success), items (batches only: one {op, key_version, status,
 *   outcome, error} per item, in order), lost (requests answered without a
 *   line since the previous line: omitted when none; see "Fail closed"), prev
 *   (the previous line's tag; 64
 *   zeros for the first line), mac (this line's tag).
 * Never key material, tokens, plaintext, ciphertext or context values.
 *
 * The chain (one place: the "chain" section of audit.c). A line's tag is
 * mac = HMAC-SHA-256(audit key, the line's bytes from '{' through the closing
 * quote of prev), in lower-case hex; prev holds the previous line's tag, so
 * every tag covers the previous tag and its own line. The audit key is
 * HKDF-SHA-256 of the root key with the label KMS_AUDIT_KEY_LABEL: whoever
 * holds it (or the root key) can verify the log and can also forge it, so it
 * is guarded like the root key. Lines written before keyed chains have no mac;
 * their tag is the SHA-256 of their bytes (without the newline). Such lines
 * may only come before the first keyed line.
 *
 * Tamper evidence: editing a line breaks its mac (and removing one the next
 * line's prev or the seq sequence); removing lines at the end is caught by
 * the head file (PATH + ".head": "seq tag\n", rewritten after each line),
 * which verification compares with the last line and which must exist. A new
 * process continues the chain from the last line of an existing log, after
 * checking that line's mac.
 *
 * Segments (rotation): the live log PATH is segment 1 until the first
 * rotation, which renames it to PATH.000001 (with PATH.000001.head) and
 * starts segment 2 in a new PATH; the next rotation makes PATH.000002, and
 * so on (six digits, more past 999999; never over an existing file). seq
 * and the chain go on across segments: a new segment's first line is a
 * segment line
 *   {"seq":K+1,"time":...,"segment":N+1,"reason":"size"|"request"|"signal"|"restart",
 *    ["lost":L,]"prev":"<the tag of line K>","mac":"..."}
 * so its mac commits to the previous segment's number (N = segment - 1),
 * last seq (K = seq - 1) and last tag (prev). Verification of the series
 * therefore notices a removed, reordered, swapped or edited segment; the
 * head of each segment notices lines cut off its end. A new segment's head
 * holds the previous segment's end until its segment line is written.
 *
 * Fail closed: when opened with fail_closed, a failed write makes
 * kms_audit_write return SBX_EIO, and the server then withholds the response
 * (503). Otherwise the request is answered and counted as lost: the next line
 * written carries "lost":L (before prev, under the mac), so the chain records
 * the gap. Both are reported on stderr at most once per minute.
 */
#ifndef SBX_SERVER_AUDIT_H
#define SBX_SERVER_AUDIT_H

#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#define KMS_AUDIT_KEY_LABEL   "sbx-kms-audit-chain-v1"
#define KMS_AUDIT_SEGMENT_FMT "%06" PRIu64 /* PATH.000001, PATH.000002, ... */

typedef struct kms_audit kms_audit;

/* One item of a batch request, for the items array. */
typedef struct {
    const char *op;       /* kms_op name */
    uint32_t key_version; /* 0 = none */
    int status;
    const char *error; /* may be NULL */
} kms_audit_item;

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
    bool batch;          /* write items (nitems of them, maybe 0) */
    const kms_audit_item *items;
    size_t nitems;
} kms_audit_event;

/* "denied" for 401 and 403, "ok" below 400, else "error": the rule of the outcome field. */
const char *kms_audit_outcome(int status);

/* The audit key of a root key: HKDF-SHA-256(root, no salt, KMS_AUDIT_KEY_LABEL). */
int kms_audit_key_derive(uint8_t key[32], const uint8_t root[32]);

/*
 * Opens (creating 0600) the log at path, writing keyed lines under key
 * (copied). path NULL: a log that discards (--dev without a data dir; key
 * may be NULL then). SBX_EAUTH when the log's last line does not carry a
 * valid mac under key, or the head file disagrees with the log.
 */
int kms_audit_open(kms_audit **out, const char *path, const uint8_t *key, bool fail_closed);
/*
 * Appends one line (first the segment line when the live log still lacks
 * it), then rotates when the live log has reached the maximum size.
 * Thread-safe. A failed write: SBX_EIO when fail_closed, else 0 and the line
 * is counted in the next line's lost field. Either way reported on stderr (at
 * most once a minute).
 */
int kms_audit_write(kms_audit *a, const kms_audit_event *ev);
/*
 * Rotates now (reason: "request", "signal", ...; written in the segment
 * line): PATH becomes PATH.NNNNNN (see "Segments"), the next segment starts.
 * Nothing happens to an empty live log or a discarding one. Thread-safe.
 * SBX_EIO naming the file when a rename or the new segment fails (the log
 * then goes on in the old file, or with its segment line pending).
 */
int kms_audit_rotate(kms_audit *a, const char *reason);
/* Rotates by size (reason "size") once the live log reaches bytes; 0: never. */
void kms_audit_set_max_size(kms_audit *a, uint64_t bytes);
/* Flushes (fsync) and closes. NULL-safe. */
void kms_audit_close(kms_audit *a);

typedef struct {
    uint64_t lines;         /* lines checked */
    uint64_t unkeyed;       /* of which written before keyed chains (no mac) */
    uint64_t segments;      /* files checked */
    uint64_t first_segment; /* the number of the first (1 unless --partial) */
    uint64_t lost;          /* the sum of the lost fields: requests answered without a line */
} kms_audit_report;

/* Which lines without a mac (written before keyed chains) a verification accepts. */
typedef enum {
    /*
     * The default: an unkeyed prefix that keyed lines continue (a log begun
     * before keyed chains, then continued by this version: the first keyed
     * line's mac covers the prefix's last hash). A log with no keyed line at
     * all is refused, since anyone who can write a log can strip its macs and
     * recompute an unkeyed chain.
     */
    KMS_AUDIT_UNKEYED_PREFIX,
    KMS_AUDIT_UNKEYED_ALLOW,  /* also a wholly unkeyed log (an archive from before keyed chains) */
    KMS_AUDIT_UNKEYED_REFUSE, /* every line must be keyed */
} kms_audit_unkeyed;

/*
 * Verifies a log file and its head file with the audit key (NULL: none, so
 * only a log without keyed lines can verify, and only under
 * KMS_AUDIT_UNKEYED_ALLOW). unkeyed: which unkeyed lines are accepted. Returns 0 and *rep when
 * intact; SBX_EAUTH with a message naming the first bad line ("line 17: mac does not match", "log
 * ends at seq 40 but the head file says 42") otherwise; SBX_ENOKEY when a keyed line is met without
 * a key; SBX_EIO for unreadable files.
 */
int kms_audit_verify(const char *path, const uint8_t *key, kms_audit_unkeyed unkeyed,
                     kms_audit_report *rep);

/*
 * Verifies a series of segments in order (paths[0] first, the live log
 * last), each with its head file, as one chain: every segment after the
 * first begins with a segment line numbered one past the previous segment's,
 * whose seq and prev continue the previous segment's last line. The first
 * must be segment 1 (begins at seq 1) unless partial (its earlier segments
 * archived elsewhere: its first line is then taken as the start). Messages
 * begin with the file's path. Otherwise as kms_audit_verify.
 */
int kms_audit_verify_series(const char *const *paths, size_t n, const uint8_t *key,
                            kms_audit_unkeyed unkeyed, bool partial, kms_audit_report *rep);

/*
 * The series of the log at path: its segments PATH.N in increasing N, then
 * path itself; *out is NULL-terminated (free with kms_audit_series_free).
 */
int kms_audit_series(char ***out, size_t *count, const char *path);
void kms_audit_series_free(char **list);

#endif
