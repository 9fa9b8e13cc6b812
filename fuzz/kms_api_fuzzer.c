/*
 * fuzz/kms_api_fuzzer.c - the key server's HTTP API (server/api.c): routing,
 * request bodies (jansson with our limits), query strings, content types,
 * the Authorization header, the keas.kmi requests, batches.
 *
 * Input framing: four lines, then the body (the rest, any bytes):
 *   METHOD\n PATH[?QUERY]\n CONTENT-TYPE\n AUTH\n BODY
 * AUTH "@admin" sends "Bearer <the admin token>", "@cn:NAME" a verified client
 * certificate CN, "" nothing, anything else is the raw header value. An
 * empty CONTENT-TYPE line sends none. Input without four newlines is a body
 * for POST /v1/keys/k/encrypt as admin.
 *
 * Each input runs against a fresh in-memory store holding the admin token and
 * one key "k" (so a crash replays alone). Properties:
 *  - kms_api_handle never crashes, leaks or reads out of bounds;
 *  - the status is one of those docs/kms.md lists, never 500 (no internal
 *    failure can happen on a memory store) and never 0;
 *  - JSON answers parse; 405 carries Allow; 401 carries WWW-Authenticate;
 *  - the admin token never appears in an answer (unless the input spells it
 *    out, e.g. as a field name, which an error message may name).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "keystore.h"
#include "store.h"
#include "strongbox/common.h"
#include "fuzz_util.h"

#define ADMIN "sbxt_fuzz-admin-token"

typedef struct {
    kms_store *st;
    kms_keystore *ks;
    kms_auth *auth;
    kms_audit *audit;
    kms_api *api;
} server;

static void
server_open(server *s)
{
    static const uint8_t root[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    kms_api_options opt = {.dev = true, .storage = "sqlite"};
    kms_key_options kopt = {0};
    kms_key_info info;
    char id[17];
    FUZZ_CHECK(kms_store_open(&s->st, "memory:kms-api-fuzz") == 0, "store");
    FUZZ_CHECK(kms_keystore_new(&s->ks, root) == 0, "keystore");
    FUZZ_CHECK(kms_auth_new(&s->auth) == 0, "auth");
    FUZZ_CHECK(kms_audit_open(&s->audit, NULL, NULL, false) == 0, "audit");
    FUZZ_CHECK(kms_api_new(&s->api, s->ks, s->auth, s->audit, &opt) == 0, "api");
    FUZZ_CHECK(kms_token_install(s->st, "admin", ADMIN, true, 0, id) == 0, "admin token");
    FUZZ_CHECK(kms_key_create(s->ks, s->st, "k", &kopt, &info) == 0, "key k");
    kms_key_info_dispose(&info);
}

static void
server_close(server *s)
{
    kms_api_free(s->api);
    kms_audit_close(s->audit);
    kms_auth_free(s->auth);
    kms_keystore_free(s->ks);
    kms_store_close(s->st);
}

/* Cuts the next line (up to '\n') off [*p, end) into a malloc'd string. */
static char *
take_line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL)
        return NULL;
    char *s = strndup((const char *)*p, (size_t)(nl - *p)); // stops at a NUL byte too
    FUZZ_CHECK(s != NULL, "out of memory");
    *p = nl + 1;
    return s;
}

static bool
status_known(int status)
{
    static const int known[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (status == known[i])
            return true;
    return false;
}

static void
check_response(const kms_response *r, bool input_has_token)
{
    FUZZ_CHECK(status_known(r->status), "status is one docs/kms.md lists");
    FUZZ_CHECK(r->status != 405 || r->allow[0] != '\0', "405 carries Allow");
    FUZZ_CHECK(r->status != 401 || r->www_authenticate != NULL, "401 carries WWW-Authenticate");
    FUZZ_CHECK(r->body != NULL || r->body_len == 0, "body and length agree");
    if (r->body_len > 0 && r->content_type != NULL &&
        strcmp(r->content_type, "application/json") == 0) {
        json_t *j = json_loadb((const char *)r->body, r->body_len, 0, NULL);
        FUZZ_CHECK(j != NULL, "a JSON answer parses");
        json_decref(j);
    }
    FUZZ_CHECK(input_has_token || r->body_len < sizeof(ADMIN) - 1 ||
                   memmem(r->body, r->body_len, ADMIN, sizeof(ADMIN) - 1) == NULL,
               "the admin token is never echoed");
}

static void
run(server *s, const char *method, const char *target, const char *ctype, const char *auth,
    const uint8_t *body, size_t len, bool input_has_token)
{
    char *path = strdup(target), *q = strchr(path, '?');
    char header[256];
    FUZZ_CHECK(path != NULL, "out of memory");
    if (q != NULL)
        *q++ = '\0';
    kms_request req = {
        .method = method,
        .path = path,
        .query = q,
        .content_type = ctype[0] ? ctype : NULL,
        .body = body,
        .body_len = len,
        .remote = "127.0.0.1:1",
        .request_id = "00000000000000ff",
    };
    if (strcmp(auth, "@admin") == 0) {
        snprintf(header, sizeof(header), "Bearer %s", ADMIN);
        req.authorization = header;
    } else if (strncmp(auth, "@cn:", 4) == 0) {
        req.client_cn = auth + 4;
    } else if (auth[0] != '\0') {
        req.authorization = auth;
    }
    kms_response r;
    kms_api_handle(s->api, s->st, &req, &r);
    check_response(&r, input_has_token);
    kms_response_dispose(&r);
    free(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *line[4] = {NULL, NULL, NULL, NULL};
    server s;
    int i = 0;
    for (; i < 4 && (line[i] = take_line(&p, end)) != NULL; i++)
        ;
    bool has_token = memmem(data, size, ADMIN, sizeof(ADMIN) - 1) != NULL;
    server_open(&s);
    if (i == 4)
        run(&s, line[0], line[1], line[2], line[3], p, (size_t)(end - p), has_token);
    else
        run(&s, "POST", "/v1/keys/k/encrypt", "application/json", "@admin", data, size, has_token);
    server_close(&s);
    for (i = 0; i < 4; i++)
        free(line[i]);
    return 0;
}
