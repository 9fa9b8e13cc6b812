/*
 * server/api.h - the key server's HTTP API, independent of the transport
 * (internal). The HTTP layer (http.c) turns each evhttp request into a
 * kms_request, calls kms_api_handle, and sends the kms_response; the fuzz
 * target and unit tests call kms_api_handle directly. The endpoints, bodies
 * and status codes are specified in docs/kms.md ("API reference"), which is
 * the contract.
 *
 * kms_api_handle authenticates (bearer token or client certificate CN),
 * authorizes (policy), runs the operation, writes one audit line, records
 * metrics, and fills the response. It never fails: every error becomes a
 * JSON error response {"error": "..."} with the right status.
 */
#ifndef SBX_SERVER_API_H
#define SBX_SERVER_API_H

#include "audit.h"
#include "auth.h"
#include "keystore.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMS_BATCH_MAX 1000

typedef struct {
    const char *method;        /* "GET", "POST", "PUT", "DELETE", ... */
    const char *path;          /* raw path without query, e.g. "/v1/keys/app" (the API routes on
                                  it, then percent-decodes each matched segment) */
    const char *query;         /* raw query string without '?', or NULL */
    const char *content_type;  /* header value or NULL */
    const char *authorization; /* header value or NULL */
    const char *client_cn;     /* verified TLS client certificate subject CN, or NULL */
    const uint8_t *body;
    size_t body_len;
    const char *remote;     /* "127.0.0.1:53422" */
    const char *request_id; /* 16 hex chars, made by the transport */
    int refuse_status;      /* not 0: the transport refused the request (framing); the API
                               answers refuse_why with this status and audits it */
    const char *refuse_why;
} kms_request;

typedef struct {
    int status;
    const char *content_type; /* static string */
    uint8_t *body;            /* malloc'd; may hold key material: kms_response_dispose wipes it */
    size_t body_len;
    char allow[64];               /* for 405: the Allow header value */
    const char *www_authenticate; /* for 401: the WWW-Authenticate header value (static), or NULL */
} kms_response;

void kms_response_dispose(kms_response *r);

typedef struct {
    bool dev;            /* reported by /v1/health */
    const char *storage; /* backend name for /v1/health */
} kms_api_options;

typedef struct kms_api kms_api;

/* ks, auth and audit are borrowed and shared by every thread. */
int kms_api_new(kms_api **out, kms_keystore *ks, kms_auth *auth, kms_audit *audit,
                const kms_api_options *opt);
void kms_api_free(kms_api *api);

/* Handles one request with the calling thread's storage handle. Thread-safe. */
void kms_api_handle(kms_api *api, kms_store *st, const kms_request *req, kms_response *resp);

/* Periodic housekeeping (auto-rotation, purges, key-count gauge); call every few seconds from one
 * thread. */
void kms_api_tick(kms_api *api, kms_store *st);

#endif
