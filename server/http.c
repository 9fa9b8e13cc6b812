/*
 * server/http.c - HTTPS transport of the key server over libevent 2.1 (see http.h).
 *
 * Implementation notes:
 *  - Each connection gets a struct conn hung on its SSL object (ex_data);
 *    OpenSSL's ex_data free callback releases it when libevent frees the
 *    bufferevent, so the transport learns of every closed connection without
 *    libevent hooks that 2.1 lacks.
 *  - evhttp's read timeout restarts with every byte, so a client dripping a
 *    request byte by byte would never time out. Each connection therefore has
 *    a deadline (accept or last answer + timeout) checked by a per-thread
 *    timer; a late connection gets a synthetic BEV_EVENT_TIMEOUT, which evhttp
 *    handles as its own timeout (drops the connection, frees everything).
 *  - Idle detection for shutdown: the bytes the TLS socket BIO has read are
 *    recorded at handshake end and after each answer; a connection that read
 *    nothing since and has nothing left to write is idle and closed at once,
 *    the others get their answer (with Connection: close) first.
 *  - Request bodies and response bodies may hold key material: the input is
 *    wiped after the API returns, the output is added by reference with a
 *    cleanup that wipes it once libevent has written it.
 *  - Framing guard (request smuggling, see framing.h): evhttp's own header
 *    parser is lenient, so evhttp must never see a head we have not
 *    accepted. A callback on the TLS bufferevent's input buffer runs when
 *    decrypted bytes are added, before evhttp's read callback: it moves the
 *    new bytes aside (conn.raw) and gives back to the input only whole
 *    request heads that framing.c accepted, followed by exactly the
 *    Content-Length bytes of their body. So evhttp's request boundaries are
 *    ours. A refused head (and everything after it on the connection) is
 *    dropped and replaced by one fixed internal request; evhttp dispatches
 *    it in order after the requests before it, and on_request, which counts
 *    requests, answers it with the refusal (JSON error, audit line,
 *    Connection: close). A 413 is thus sent as soon as the head is read,
 *    whether or not the client waits for 100-continue.
 *  - Lingering close after a refusal: a client still sending its body when
 *    the answer comes would get a TCP reset, which can destroy the answer
 *    unread, if we closed at once. So the refusal says Connection: close but
 *    the header is taken off the request once evhttp has written it, which
 *    keeps evhttp from closing; the guard drops whatever else arrives, and
 *    the connection is closed when the client closes it or LINGER_MS pass.
 */
#include "http.h"

#include "framing.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SWEEP_MS  200
#define LINGER_MS 2000 /* a refused connection stays open (input dropped) this long at most */

typedef struct worker worker;

typedef struct conn {
    worker *w;
    struct bufferevent *bev;
    int64_t deadline; /* monotonic ms */
    uint64_t rd_idle; /* TLS socket bytes read when last idle */
    bool idle_valid;
    bool closing;
    bool linked;
    struct conn *prev, *next;
    /* framing guard */
    struct evbuffer *raw, *hold; /* bytes not yet given to evhttp; scratch */
    size_t scan;                 /* kms_framing_head_end's resume point in raw */
    uint64_t body_left;          /* body bytes of the current request still to give */
    bool in_guard;               /* the guard is moving bytes: ignore its own callbacks */
    bool refused;                /* a head was refused: nothing more reaches evhttp */
    unsigned passed;             /* requests given to evhttp */
    unsigned dispatched;         /* requests evhttp handed to on_request */
    unsigned refused_at;         /* the index of the internal request standing for the refusal */
    kms_framing verdict;         /* the refusal */
} conn;

/* What evhttp is given in place of a refused request (see the notes). */
static const char refused_request[] = "GET / HTTP/1.1\r\n\r\n";

typedef struct {
    const kms_http_options *opt;
    worker *workers;
    unsigned n;
    bool stopping;
} server;

struct worker {
    server *srv;
    unsigned index;
    pthread_t tid;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    kms_store *st;
    bool own_store;
    struct event *sweep_ev, *drain_ev, *tick_ev, *dog_ev, *sig_ev[3];
    conn *conns;
    unsigned nconns;
    bool draining;
    int64_t drain_deadline;
};

static int conn_index = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* ---- connections ---- */

static void
conn_unlink(conn *c)
{
    worker *w = c->w;
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = false;
    w->nconns--;
}

static void
conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    conn *c = ptr;
    if (c == NULL)
        return;
    conn_unlink(c);
    if (c->raw != NULL)
        evbuffer_free(c->raw);
    if (c->hold != NULL)
        evbuffer_free(c->hold);
    free(c);
}

static void
global_init(void)
{
    evthread_use_pthreads();
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

static uint64_t
bytes_read(SSL *ssl)
{
    BIO *rbio = SSL_get_rbio(ssl);
    return rbio ? BIO_number_read(rbio) : 0;
}

static void
on_ssl_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    conn *c = SSL_get_ex_data(ssl, conn_index);
    if (c != NULL && !c->idle_valid) {
        c->rd_idle = bytes_read((SSL *)ssl);
        c->idle_valid = true;
    }
}

/* ---- framing guard (see the notes and framing.h) ---- */

static void
guard_refuse(conn *c, struct evbuffer *in, const kms_framing *v)
{
    c->refused = true;
    c->verdict = *v;
    c->refused_at = c->passed++;
    evbuffer_add(in, refused_request, sizeof refused_request - 1);
}

/* A head evhttp would still refuse with its own page: refused here, with an audit line. */
static bool
target_parses(const kms_framing *v)
{
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(v->target, EVHTTP_URI_NONCONFORMANT);
    if (u == NULL)
        return false;
    evhttp_uri_free(u);
    return true;
}

/* Gives evhttp (in) what raw holds of accepted requests. */
static void
guard_run(conn *c, struct evbuffer *in)
{
    const size_t max_head = KMS_HTTP_MAX_HEADERS;
    kms_framing v;
    size_t len;
    while (!c->refused && (len = evbuffer_get_length(c->raw)) > 0) {
        if (c->body_left > 0) {
            size_t n = len < c->body_left ? len : (size_t)c->body_left;
            evbuffer_remove_buffer(c->raw, in, n);
            c->body_left -= n;
            continue;
        }
        size_t look = len < max_head + 1 ? len : max_head + 1;
        const uint8_t *p = evbuffer_pullup(c->raw, (ev_ssize_t)look);
        size_t end = p != NULL ? kms_framing_head_end(p, look, &c->scan) : 0;
        if (end == 0) {
            if (look > max_head || p == NULL) {
                memset(&v, 0, sizeof v);
                if (p != NULL)
                    kms_framing_request_line(&v, p, look);
                v.status = 431;
                snprintf(v.why, sizeof v.why, "request head over %zu bytes", max_head);
                guard_refuse(c, in, &v);
            }
            break;
        }
        kms_framing_check(&v, p, end, c->w->srv->opt->max_body);
        if (v.status == 0 && !target_parses(&v)) {
            v.status = 400;
            snprintf(v.why, sizeof v.why, "malformed request target");
        }
        if (v.status != 0) {
            guard_refuse(c, in, &v);
            break;
        }
        evbuffer_remove_buffer(c->raw, in, end);
        c->scan = 0;
        c->passed++;
        c->body_left = v.body;
    }
    if (c->refused)
        evbuffer_drain(c->raw, evbuffer_get_length(c->raw));
}

/*
 * The input buffer's callback: runs when SSL_read added bytes, before evhttp's
 * read callback. The new bytes are the last n_added of in: they move to raw,
 * what evhttp has not consumed yet stays in front.
 */
static void
on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn *c = arg;
    if (c->in_guard || info->n_added == 0)
        return;
    c->in_guard = true;
    size_t total = evbuffer_get_length(in);
    size_t keep = info->n_added < total ? total - info->n_added : 0;
    evbuffer_remove_buffer(in, c->hold, keep);
    evbuffer_add_buffer(c->raw, in);
    evbuffer_add_buffer(in, c->hold);
    guard_run(c, in);
    c->in_guard = false;
}

static struct bufferevent *
on_new_bev(struct event_base *base, void *arg)
{
    worker *w = arg;
    SSL *ssl = kms_tls_ssl_new(w->srv->opt->tls);
    conn *c = calloc(1, sizeof *c);
    if (ssl == NULL || c == NULL || !SSL_set_ex_data(ssl, conn_index, c)) {
        SSL_free(ssl); // frees c if it was attached
        if (ssl == NULL)
            free(c);
        return NULL; // evhttp then makes a plain bufferevent: on_request refuses it
    }
    c->w = w;
    c->deadline = kms_mono_ms() + (int64_t)w->srv->opt->timeout * 1000;
    SSL_set_info_callback(ssl, on_ssl_info);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    c->bev = bev;
    c->raw = evbuffer_new();
    c->hold = evbuffer_new();
    if (c->raw == NULL || c->hold == NULL ||
        evbuffer_add_cb(bufferevent_get_input(bev), on_input, c) == NULL) {
        bufferevent_free(bev); // frees the SSL object, and c with it
        return NULL;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    c->linked = true;
    w->nconns++;
    return bev;
}

static void
conn_close(conn *c)
{
    c->closing = true;
    // evhttp treats it as its own timeout: drops the connection and frees it (and c).
    bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

static bool
conn_idle(conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    uint64_t rd = ssl ? bytes_read(ssl) : 0;
    if (rd != 0 && !(c->idle_valid && rd == c->rd_idle))
        return false;
    return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    int64_t now = kms_mono_ms();
    for (conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next; // conn_close may free c
        if (!c->closing && (now >= c->deadline || (w->draining && conn_idle(c))))
            conn_close(c);
    }
    if (w->draining && w->bound != NULL && what != 0) { // a timer sweep: the disable is applied
        evhttp_del_accept_socket(w->http, w->bound);    // closes this thread's dup
        w->bound = NULL;
    }
    if (w->draining && (w->nconns == 0 || now >= w->drain_deadline))
        event_base_loopexit(w->base, NULL);
}

/* ---- requests ---- */

static const char *
method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    default:
        return "OTHER";
    }
}

static void
format_remote(char *out, size_t cap, struct evhttp_connection *evcon)
{
    const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";
    snprintf(out, cap, "unknown");
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
}

static void
wipe_free_cb(const void *data, size_t len, void *extra)
{
    (void)extra;
    sbx_wipe((void *)data, len);
    free((void *)data);
}

/*
 * evhttp leaves a response in the connection's output as two chains (the
 * headers, then the body), and bufferevent_openssl calls SSL_write once per
 * chain: two TLS records, two write(2)s and, with TCP_NODELAY, two packets
 * per response. When the output held nothing else before this response (so
 * no SSL_write is waiting to be retried on those bytes), copy a small
 * response into one block: one record. The block may hold a data key, so it
 * is wiped when written; draining the old chains runs the body reference's
 * wiping cleanup.
 */
static void
coalesce_output(struct evbuffer *ob)
{
    size_t len = evbuffer_get_length(ob);
    if (len == 0 || len > 16384 || evbuffer_peek(ob, -1, NULL, NULL, 0) < 2)
        return;
    uint8_t *blk = malloc(len);
    if (blk == NULL)
        return; // two records it is
    // Copy, append the copy, and only then drop the original chains: on any failure
    // the output is as evhttp left it, and the block is wiped.
    if (evbuffer_copyout(ob, blk, len) != (ev_ssize_t)len ||
        evbuffer_add_reference(ob, blk, len, wipe_free_cb, NULL) != 0) {
        sbx_wipe(blk, len);
        free(blk);
        return;
    }
    evbuffer_drain(ob, len); // runs the body reference's wiping cleanup
}

static void
send_response(struct evhttp_request *req, conn *c, const char *rid, kms_response *resp)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type",
                      resp->content_type ? resp->content_type : "application/octet-stream");
    evhttp_add_header(h, "X-Request-Id", rid);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (resp->status == 405 && resp->allow[0] != '\0')
        evhttp_add_header(h, "Allow", resp->allow);
    if (resp->status == 401 && resp->www_authenticate != NULL)
        evhttp_add_header(h, "WWW-Authenticate", resp->www_authenticate);
    if (c == NULL || c->w->draining || (c->refused && c->dispatched > c->refused_at))
        evhttp_add_header(h, "Connection", "close");
    struct evbuffer *out = evbuffer_new();
    if (out != NULL && resp->body != NULL && resp->body_len > 0 &&
        evbuffer_add_reference(out, resp->body, resp->body_len, wipe_free_cb, NULL) == 0)
        resp->body = NULL; // now owned by the buffer; wiped once written
    if (out == NULL || resp->body != NULL) {
        evhttp_send_error(req, 500, NULL); // out of memory
    } else {
        struct evbuffer *ob = c != NULL ? bufferevent_get_output(c->bev) : NULL;
        bool idle = ob != NULL && evbuffer_get_length(ob) == 0;
        evhttp_send_reply(req, resp->status, NULL, out);
        if (c != NULL && c->refused && c->dispatched == c->refused_at + 1) // see the notes
            evhttp_remove_header(h, "Connection");
        if (idle)
            coalesce_output(ob);
    }
    evbuffer_free(out);
    kms_response_dispose(resp);
}

static conn *
request_conn(struct evhttp_request *req, SSL **ssl)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return *ssl ? SSL_get_ex_data(*ssl, conn_index) : NULL;
}

static void
make_request_id(char rid[17])
{
    uint8_t raw[8] = {0};
    if (sbx_random_bytes(raw, sizeof raw) < 0)
        memset(raw, 0, sizeof raw); // never happens in practice; the id is for correlation only
    kms_hex(rid, raw, sizeof raw);
}

/* The path without query of a request target (into buf, cut to its size). */
static const char *
target_path(char *buf, size_t cap, const char *target)
{
    size_t n = strcspn(target, "?#");
    snprintf(buf, cap, "%.*s", (int)n, target);
    return buf;
}

/*
 * One request: to the API with the raw (not percent-decoded) path, which the
 * API routes on. refusal: the framing guard refused this request (it has no
 * headers or body then, only what the refused request line said).
 */
static void
handle(worker *w, struct evhttp_request *req, conn *c, SSL *ssl, const char *rid,
       const kms_framing *refusal)
{
    char remote[INET6_ADDRSTRLEN + 16], cn[KMS_TLS_CN_MAX + 1], path[KMS_FRAMING_TARGET_MAX + 1];
    format_remote(remote, sizeof remote, evhttp_request_get_connection(req));
    kms_request r = {.remote = remote, .request_id = rid};
    r.client_cn = kms_tls_peer_cn(ssl, cn) ? cn : NULL;
    if (refusal != NULL) {
        r.method = refusal->method[0] != '\0' ? refusal->method : "?";
        r.path = target_path(path, sizeof path, refusal->target);
        r.refuse_status = refusal->status;
        r.refuse_why = refusal->why;
        kms_response resp = {0};
        kms_api_handle(w->srv->opt->api, w->st, &r, &resp);
        send_response(req, c, rid, &resp);
        return;
    }
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *raw = u != NULL ? evhttp_uri_get_path(u) : NULL;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(body);
    uint8_t *bytes = body_len ? evbuffer_pullup(body, -1) : NULL;
    r.method = method_name(evhttp_request_get_command(req));
    r.path = raw != NULL && raw[0] != '\0'
                 ? raw
                 : target_path(path, sizeof path, evhttp_request_get_uri(req));
    r.query = u != NULL ? evhttp_uri_get_query(u) : NULL;
    r.content_type = evhttp_find_header(in, "Content-Type");
    r.authorization = evhttp_find_header(in, "Authorization");
    r.body = bytes;
    r.body_len = bytes ? body_len : 0;
    kms_response resp = {0};
    kms_api_handle(w->srv->opt->api, w->st, &r, &resp);
    if (bytes != NULL)
        sbx_wipe(bytes, body_len);
    evbuffer_drain(body, body_len);
    send_response(req, c, rid, &resp);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    SSL *ssl;
    conn *c = request_conn(req, &ssl);
    char rid[17];
    if (ssl == NULL) { // not TLS (the bufferevent callback failed): never answer in clear
        evhttp_connection_free(evhttp_request_get_connection(req));
        return;
    }
    make_request_id(rid);
    unsigned index = c != NULL ? c->dispatched++ : 0;
    bool refused = c != NULL && c->refused && index == c->refused_at;
    handle(w, req, c, ssl, rid, refused ? &c->verdict : NULL);
    if (c != NULL) {
        int64_t ms = (int64_t)w->srv->opt->timeout * 1000;
        c->deadline = kms_mono_ms() + (refused && ms > LINGER_MS ? LINGER_MS : ms);
        c->rd_idle = bytes_read(ssl);
        c->idle_valid = true;
    }
}

/* ---- shutdown ---- */

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline = kms_mono_ms() + KMS_HTTP_DRAIN_MS;
    // Stop accepting now, close our dup of the listening socket on the next sweep:
    // with the epoll changelist, the removal is applied at the next dispatch, and
    // it must reach epoll while the fd is still open (closing a dup does not
    // remove it from epoll while other threads' dups keep the socket alive).
    if (w->bound != NULL)
        evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound));
    on_sweep(-1, 0, w);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *srv = arg;
    if (srv->stopping)
        return;
    srv->stopping = true;
    unsigned busy = 0;
    for (unsigned i = 0; i < srv->n; i++)
        busy += srv->workers[i].nconns; // racy read, for the message only
    char nbusy[16], drain[16];
    snprintf(nbusy, sizeof nbusy, "%u", busy);
    snprintf(drain, sizeof drain, "%d", KMS_HTTP_DRAIN_MS / 1000);
    kms_log(KMS_LOG_INFO,
            sig == SIGINT ? "SIGINT received: no new connections; finishing requests in flight"
                          : "SIGTERM received: no new connections; finishing requests in flight",
            "connections", nbusy, "max_seconds", drain, NULL);
    if (srv->opt->stopping != NULL)
        srv->opt->stopping(srv->opt->hook_arg);
    for (unsigned i = 0; i < srv->n; i++)
        event_active(srv->workers[i].drain_ev, EV_READ, 0);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    server *srv = arg;
    if (!srv->stopping && srv->opt->reload != NULL)
        srv->opt->reload(srv->opt->hook_arg);
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    w->srv->opt->watchdog(w->srv->opt->hook_arg);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    if (w->srv->opt->tick != NULL && !w->draining)
        w->srv->opt->tick(w->srv->opt->tick_arg, w->st);
}

/* ---- threads ---- */

static int
add_timer(struct event **ev, worker *w, int ms, event_callback_fn fn)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    *ev = event_new(w->base, -1, EV_PERSIST, fn, w);
    return *ev != NULL && event_add(*ev, &tv) == 0 ? 0 : -1;
}

static int
worker_events(worker *w)
{
    // Every method evhttp knows reaches the API (which answers 405 or 404, with an audit line);
    // the framing guard answers the others, CONNECT included (501).
    const unsigned methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                             EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
                             EVHTTP_REQ_TRACE;
    const kms_http_options *o = w->srv->opt;
    if ((w->http = evhttp_new(w->base)) == NULL)
        return -1;
    evhttp_set_bevcb(w->http, on_new_bev, w);
    evhttp_set_gencb(w->http, on_request, w);
    // The framing guard answers an oversized body first (413 at once); this is a second wall.
    evhttp_set_max_body_size(w->http, (ev_ssize_t)o->max_body);
    evhttp_set_max_headers_size(w->http, KMS_HTTP_MAX_HEADERS);
    evhttp_set_timeout(w->http, (int)o->timeout);
    evhttp_set_allowed_methods(w->http, (ev_uint16_t)methods);
    if (add_timer(&w->sweep_ev, w, SWEEP_MS, on_sweep) < 0 ||
        (w->drain_ev = event_new(w->base, -1, 0, on_drain, w)) == NULL)
        return -1;
    if (w->index == 0) {
        w->sig_ev[0] = evsignal_new(w->base, SIGTERM, on_signal, w->srv);
        w->sig_ev[1] = evsignal_new(w->base, SIGINT, on_signal, w->srv);
        w->sig_ev[2] = evsignal_new(w->base, SIGHUP, on_hup, w->srv);
        if (add_timer(&w->tick_ev, w, KMS_HTTP_TICK_MS, on_tick) < 0 || !w->sig_ev[0] ||
            !w->sig_ev[1] || !w->sig_ev[2] || event_add(w->sig_ev[0], NULL) < 0 ||
            event_add(w->sig_ev[1], NULL) < 0 || event_add(w->sig_ev[2], NULL) < 0)
            return -1;
        if (o->watchdog != NULL && o->watchdog_ms > 0 &&
            add_timer(&w->dog_ev, w, (int)o->watchdog_ms, on_watchdog) < 0)
            return -1;
    }
    int fd = dup(o->listen_fd);
    if (fd < 0 || evutil_make_socket_closeonexec(fd) < 0 ||
        (w->bound = evhttp_accept_socket_with_handle(w->http, fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

/*
 * An event loop whose epoll changes are batched per loop iteration
 * (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): evhttp turns reading off and on and
 * writing on and off around every request, and with the changelist the pairs
 * that cancel out within one iteration cost no epoll_ctl(2). The flag's known
 * hazard is closing a dup(2)'d fd before its removal reaches epoll: each
 * worker watches a dup of the listening socket, so on_drain disables it first
 * and on_sweep closes it on a later iteration.
 */
static struct event_base *
new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b = NULL;
    if (cfg != NULL && event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b != NULL ? b : event_base_new();
}

static int
worker_setup(worker *w)
{
    const kms_http_options *o = w->srv->opt;
    int err;
    if (w->index == 0) {
        w->st = o->store0;
    } else if ((err = kms_store_open(&w->st, o->storage_url)) < 0) {
        return err;
    } else {
        w->own_store = true;
        if ((err = kms_store_copy_integrity_key(w->st, o->store0)) < 0)
            return err;
    }
    if ((w->base = new_base()) == NULL || worker_events(w) < 0)
        return sbx_error_set(SBX_EIO, "cannot set up event loop %u (libevent)", w->index);
    return 0;
}

static void
worker_teardown(worker *w)
{
    if (w->http != NULL)
        evhttp_free(w->http); // closes the remaining connections (and frees their conn)
    struct event *evs[] = {w->sweep_ev,  w->drain_ev,  w->tick_ev,  w->dog_ev,
                           w->sig_ev[0], w->sig_ev[1], w->sig_ev[2]};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        if (evs[i] != NULL)
            event_free(evs[i]);
    }
    if (w->base != NULL)
        event_base_free(w->base); // runs libevent's deferred frees
    if (w->own_store)
        kms_store_close(w->st);
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int
start_threads(server *srv)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old); // signals go to thread 0 (this one)
    int rc = 0;
    for (unsigned i = 1; i < srv->n && rc == 0; i++) {
        if ((rc = pthread_create(&srv->workers[i].tid, NULL, worker_main, &srv->workers[i])) == 0)
            srv->workers[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return sbx_error_set_sys(SBX_EIO, "cannot start the event loop threads");
    }
    return 0;
}

/* see http.h */
int
kms_http_run(const kms_http_options *opt)
{
    pthread_once(&init_once, global_init);
    if (conn_index < 0)
        return sbx_error_set(SBX_ECRYPTO, "cannot register TLS connection data");
    server srv = {.opt = opt, .n = opt->threads ? opt->threads : 1};
    srv.workers = calloc(srv.n, sizeof *srv.workers);
    if (srv.workers == NULL)
        return sbx_error_set_nomem();
    int err = 0;
    for (unsigned i = 0; i < srv.n && err == 0; i++) {
        srv.workers[i].srv = &srv;
        srv.workers[i].index = i;
        err = worker_setup(&srv.workers[i]);
    }
    close(opt->listen_fd); // every loop holds its own dup now
    if (err == 0)
        err = start_threads(&srv);
    if (err == 0 && opt->ready != NULL)
        opt->ready(opt->ready_arg);
    if (srv.workers[0].base != NULL && err == 0)
        event_base_dispatch(srv.workers[0].base);
    else if (err < 0) // stop the threads that did start
        for (unsigned i = 0; i < srv.n; i++)
            if (srv.workers[i].started)
                event_base_loopbreak(srv.workers[i].base);
    for (unsigned i = 0; i < srv.n; i++) {
        if (srv.workers[i].started)
            pthread_join(srv.workers[i].tid, NULL);
    }
    for (unsigned i = 0; i < srv.n; i++)
        worker_teardown(&srv.workers[i]);
    free(srv.workers);
    return err;
}

/* ---- listening socket ---- */

static int
split_listen(char *host, size_t cap, const char **port, const char *where)
{
    const char *colon = strrchr(where, ':');
    const char *h = where;
    size_t hlen = colon ? (size_t)(colon - where) : 0;
    if (colon == NULL || colon[1] == '\0')
        return -1;
    if (h[0] == '[') { // [v6]:port
        if (hlen < 2 || h[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) != NULL) {
        return -1; // a bare IPv6 address: the port would be ambiguous
    }
    if (hlen == 0 || hlen >= cap)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

static int
bind_one(const struct addrinfo *ai, const char *where)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sbx_error_set_sys(SBX_EIO, "cannot listen on %s", where);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit it: without it, a response written as two TLS records
    // (headers, body) waits for the client's delayed ACK, about 40 ms per request.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return sbx_error_set_sys(SBX_EIO, "cannot listen on %s (is another server running there?)",
                                 where);
    }
    return fd;
}

/* see http.h */
int
kms_http_listen(int *fd, int *port, const char *where)
{
    char host[256];
    const char *portstr;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    *fd = -1;
    *port = 0;
    if (split_listen(host, sizeof host, &portstr, where) < 0)
        return sbx_error_set(
            SBX_EINVAL, "--listen %s: give ADDRESS:PORT, e.g. 127.0.0.1:8443 or [::1]:8443", where);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0)
        return sbx_error_set(SBX_EINVAL, "--listen %s: %s", where, gai_strerror(gai));
    int s = bind_one(ai, where);
    freeaddrinfo(ai);
    if (s < 0)
        return s;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) < 0) {
        close(s);
        return sbx_error_set_sys(SBX_EIO, "cannot listen on %s", where);
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    *fd = s;
    return 0;
}
