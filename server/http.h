/*
 * server/http.h - the key server's HTTPS transport over libevent (internal).
 *
 * One event_base + evhttp per thread, all accepting on one listening socket
 * (each thread holds a dup of it). Each thread opens its own storage handle.
 * Requests become kms_request, answers come from kms_api_handle. Thread 0
 * runs in the calling thread; it also handles SIGTERM/SIGINT and runs the
 * housekeeping callback every KMS_HTTP_TICK_MS.
 *
 * Shutdown (SIGTERM/SIGINT): every thread stops accepting, closes idle
 * connections, answers the requests being received (with Connection: close)
 * for up to KMS_HTTP_DRAIN_MS, then its loop ends; kms_http_run joins them.
 */
#ifndef SBX_SERVER_HTTP_H
#define SBX_SERVER_HTTP_H

#include "api.h"
#include "store.h"
#include "tls.h"

#include <openssl/ssl.h>
#include <stddef.h>

#define KMS_HTTP_TICK_MS     5000
#define KMS_HTTP_DRAIN_MS    10000
#define KMS_HTTP_MAX_HEADERS (32u << 10)

typedef struct {
    kms_tls *tls; /* every connection gets kms_tls_ssl_new(tls) */
    kms_api *api;
    const char *storage_url; /* each thread but 0 opens its handle with it */
    kms_store *store0;       /* thread 0's handle (borrowed) */
    unsigned threads;        /* >= 1 */
    size_t max_body;         /* bytes (413 above) */
    unsigned timeout;        /* seconds to send a request / stay idle */
    int listen_fd; /* bound and listening; kms_http_run closes it (each thread uses a dup) */
    /* called every KMS_HTTP_TICK_MS on thread 0 with its handle */
    void (*tick)(void *arg, kms_store *st);
    void *tick_arg;
    /* called once every thread accepts (may be NULL) */
    void (*ready)(void *arg);
    void *ready_arg;
    /* on thread 0, with hook_arg (each may be NULL): SIGHUP; SIGTERM/SIGINT
     * before the drain; every watchdog_ms (0 = never) */
    void (*reload)(void *arg);
    void (*stopping)(void *arg);
    void (*watchdog)(void *arg);
    unsigned watchdog_ms;
    void *hook_arg;
} kms_http_options;

/*
 * Runs the transport until SIGTERM or SIGINT, then drains and returns 0.
 * Returns a negative SBX_E* code (message set) when it cannot start (a
 * thread's storage handle, libevent setup).
 */
int kms_http_run(const kms_http_options *opt);

/* Binds and listens on "HOST:PORT" or "[V6]:PORT". *port gets the bound port. */
int kms_http_listen(int *fd, int *port, const char *where);

#endif
