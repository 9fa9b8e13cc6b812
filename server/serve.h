/*
 * server/serve.h - `sbx kms serve`: data directory, TLS, event loops (internal).
 *
 * Data directory (created 0700 on first start; default
 * ${XDG_DATA_HOME:-$HOME/.local/share}/strongbox/kms):
 *   kms.db            SQLite database (unless --storage postgres://...)
 *   root.key          root key, 0600 (absent when --unseal-passphrase-file is used)
 *   admin.token       the first admin token, 0600 (written once, on first start)
 *   tls/cert.pem      self-signed certificate (ECDSA P-256, SAN localhost,
 *                     127.0.0.1, ::1), its SHA-256 fingerprint printed at start
 *   tls/key.pem       its private key, 0600
 *   audit.log         the audit log (audit.h), audit.log.head its head
 *   audit.log.NNNNNN  its rotated segments (audit.h "Segments"), each with its .head
 *   sbx-kms.pid       the running server's pid (for sbx kms audit rotate), removed at stop
 *
 * --dev: storage in memory, the fixed root key (32 bytes 0x00..0x1f) and the
 * fixed admin token "sbxt_dev-insecure-admin-token" (printed), a fresh
 * self-signed certificate written to DIR/tls (DIR defaults to a new temporary
 * directory, printed). Labelled insecure on every start line and in /v1/health.
 */
#ifndef SBX_SERVER_SERVE_H
#define SBX_SERVER_SERVE_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>

/* A setting given as a flag: its long name and its argument (NULL: a boolean flag). */
typedef struct {
    const char *name, *value;
} kms_config_pair;

typedef struct {
    const char *data_dir; /* NULL = default */
    const char *listen;   /* "127.0.0.1:8443" default; "[::1]:8443" accepted */
    const char *storage;  /* NULL = sqlite:DIR/kms.db; or postgres://... */
    const char *unseal_passphrase_file;
    const char *tls_cert, *tls_key; /* NULL = DIR/tls/... (generated when missing) */
    const char *client_ca;          /* PEM CA bundle: enables TLS client certificates */
    bool dev;
    bool audit_fail_closed;
    size_t audit_max_size;  /* rotate the audit log at this size; 0 = never */
    unsigned threads;       /* event loops; 0 = one per online CPU */
    size_t max_body;        /* bytes; 0 = 1 MiB */
    unsigned timeout;       /* seconds a client may take to send a request / stay idle; 0 = 10 */
    const char *ready_file; /* if set, written ("PORT\n") once listening (tests) */
    kms_log_level log_level;
    /* for SIGHUP (config.h): the file and the flags that override it */
    const char *config_file;
    const kms_config_pair *flags;
    size_t nflags;
    /* strings copied from a configuration file (config.h) */
    char **pool;
    size_t npool;
} kms_serve_options;

#define KMS_SERVE_PID_FILE "sbx-kms.pid"

/*
 * SIGHUP: re-reads the configuration file (flags still override it), applies
 * the settings that can change live (log-level, and the TLS certificate, key
 * and client CA: new connections get the new context, open ones keep theirs)
 * and logs what changed; a change of any other setting is logged as waiting
 * for a restart. A file or certificate that does not load is logged and the
 * running settings stay. Under systemd: RELOADING=1, then READY=1.
 *
 * Runs the server until SIGTERM or SIGINT, then stops accepting, finishes
 * in-flight requests (up to 10 s), flushes the audit log, closes storage and
 * returns 0. Returns a negative SBX_E* code (message set) when it cannot start.
 * SIGHUP rotates the audit log (at the next housekeeping tick, within
 * KMS_HTTP_TICK_MS).
 */
int kms_serve(const kms_serve_options *opt);

#endif
