/* listener.c — the edge's TLS listener: certificate by SNI per handshake, a tiny HTTP answer.
 *
 * The SSL_CTX holds no certificate at all: the ClientHello callback takes the current SNI table,
 * sets that name's certificate, chain and key on the SSL and drops the table again, so a reload
 * never touches the context and never races a handshake. */
#include "edge/listener.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "common/log.h"
#include "edge/kex_provider.h"

#define LISTENER_MAGIC    0x45444745u /* "EDGE" */
#define CONN_MAGIC        0x434f4e4eu /* "CONN" */
#define ACCEPT_BACKOFF_MS 100
#define OUTPUT_MAX        (64 * 1024) /* answers queued before reading pauses */

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD; listed to pin them. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
/* Elliptic curves only: a client may not pick a finite-field group (TLS 1.3 allows ffdhe8192),
 * whose key exchange costs the server far more than the client. */
static const char key_exchange_groups[] = "X25519:P-256:P-384";
static const unsigned char session_context[] = "certkeep-edge";

struct edge_conn;

struct ck_edge_listener {
    uint32_t magic;
    struct event_base *base;
    ck_edge_tables *tables;
    SSL_CTX *ctx;
    struct evconnlistener *evl;
    struct event *resume_accept; /* after EMFILE and the like, accept again a little later */
    bool accept_paused;          /* accept failed since the last connection was accepted */
    struct timeval handshake_timeout, idle_timeout;
    size_t max_connections, connections;
    struct ck_edge_conn_budget *budget; /* NULL: only max_connections applies */
    struct edge_conn *conns;            /* every open connection, so free can close them */
    /* for GET /metrics; atomic so a reader on another thread sees whole numbers */
    atomic_uint_least64_t handshakes, handshake_errors;
};

struct edge_conn {
    uint32_t magic;
    ck_edge_listener *listener;
    struct bufferevent *bev;
    struct event *deadline; /* the handshake's, then that of each request head once begun */
    struct edge_conn *prev, *next;
    bool closing;        /* the last answer is being written; close when it is out */
    bool handshake_done; /* counted in handshakes; until then a close is a handshake error */
};

static ck_edge_listener *listener_from(void *arg)
{
    ck_edge_listener *l = arg;
    if (l == NULL || l->magic != LISTENER_MAGIC)
        abort(); /* a wrong context pointer: stop before it corrupts anything */
    return l;
}

static struct edge_conn *conn_from(void *arg)
{
    struct edge_conn *c = arg;
    if (c == NULL || c->magic != CONN_MAGIC)
        abort();
    return c;
}

static struct timeval timeval_ms(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* ---- choosing the certificate ---- */

/* The first host_name in a server_name extension (RFC 6066 section 3), every length checked. */
static int sni_from_hello(SSL *ssl, const char **name, size_t *len)
{
    const unsigned char *ext;
    size_t ext_len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) != 1 ||
        ext_len < 2 || (((size_t)ext[0] << 8) | ext[1]) != ext_len - 2)
        return -1;
    const unsigned char *p = ext + 2, *end = ext + ext_len;
    while (end - p >= 3) {
        unsigned type = p[0];
        size_t n = ((size_t)p[1] << 8) | p[2];
        p += 3;
        if ((size_t)(end - p) < n)
            return -1;
        if (type == TLSEXT_NAMETYPE_host_name) {
            *name = (const char *)p;
            *len = n;
            return 0;
        }
        p += n;
    }
    return -1;
}

static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    ck_edge_listener *l = listener_from(arg);
    struct ck_edge_material material = {0};
    ck_error err = {0};
    const char *name;
    size_t len;
    int rc = SSL_CLIENT_HELLO_ERROR;
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    if (sni_from_hello(ssl, &name, &len) != 0) {
        ck_log(CK_LOG_DEBUG, "edge: handshake without SNI refused");
        goto cleanup;
    }
    if (ck_edge_tables_select(l->tables, name, len, &material, &err) != 0) {
        if (err.status != 404) {
            *alert = SSL_AD_INTERNAL_ERROR;
            ck_log(CK_LOG_WARN, "edge: %s", err.message);
        }
        goto cleanup;
    }
    if (SSL_use_cert_and_key(ssl, material.leaf, material.key, material.chain, 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        ck_error_openssl(&err, 500, "certificate_unusable",
                         "edge: OpenSSL refused a certificate for a handshake");
        ck_log(CK_LOG_WARN, "%s", err.message);
        goto cleanup;
    }
    rc = SSL_CLIENT_HELLO_SUCCESS;
cleanup:
    ck_edge_material_clear(&material);
    return rc;
}

static SSL_CTX *make_ssl_ctx(ck_edge_listener *l, ck_edge_kex *kex, ck_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(kex != NULL ? ck_edge_kex_libctx(kex) : NULL,
                                  kex != NULL ? ck_edge_kex_propq() : NULL, TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, key_exchange_groups) != 1 ||
        SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1) != 1) {
        ck_error_openssl(err, 500, "tls_setup_failed", "cannot set up TLS for the edge listener");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections should not pin 2 x 16 KiB of record buffers each. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Resumption: the server-side session cache and tickets (OpenSSL's random ticket keys). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, l);
    return ctx;
}

/* ---- connections ---- */

static void conn_free(struct edge_conn *c)
{
    ck_edge_listener *l = c->listener;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    l->connections--;
    if (l->budget != NULL)
        l->budget->open--;
    if (c->deadline != NULL)
        event_free(c->deadline);
    bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    c->magic = 0;
    free(c);
}

/* Sends close_notify (best effort, the socket is non-blocking) and closes. */
static void conn_close(struct edge_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl != NULL && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error();
    conn_free(c);
}

static void respond(struct edge_conn *c, int status, const char *reason, const char *body,
                    bool head_only, bool keep_alive)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t body_len = strlen(body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                        "%s%s\r\n",
                        status, reason, body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "",
                        keep_alive ? "" : "Connection: close\r\n");
    if (!head_only)
        evbuffer_add(out, body, body_len);
    if (!keep_alive)
        c->closing = true;
}

/* The value of header `name` in a request head (after the request line), trimmed, or NULL. */
static const char *header_value(const char *head, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            v += strspn(v, " \t");
            size_t n = strcspn(v, "\r");
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            *len = n;
            return v;
        }
    }
    return NULL;
}

static bool header_is(const char *head, const char *name, const char *value)
{
    size_t len;
    const char *v = header_value(head, name, &len);
    return v != NULL && len == strlen(value) && strncasecmp(v, value, len) == 0;
}

/* Answers one request head (NUL-terminated, ending in CRLF CRLF). */
static void handle_request(struct edge_conn *c, const char *head)
{
    char method[16], target[CK_EDGE_REQUEST_HEAD_MAX], version[16];
    if (sscanf(head, "%15[A-Z] %8191[^ \r\n] HTTP/%15[0-9.]\r\n", method, target, version) != 3 ||
        (strcmp(version, "1.1") != 0 && strcmp(version, "1.0") != 0)) {
        respond(c, 400, "Bad Request", "bad request\n", false, false);
        return;
    }
    bool keep_alive = strcmp(version, "1.1") == 0 ? !header_is(head, "Connection", "close")
                                                  : header_is(head, "Connection", "keep-alive");
    size_t len;
    /* Bodies are never read, so a request announcing one ends the connection after the answer. */
    if (header_value(head, "Transfer-Encoding", &len) != NULL ||
        (header_value(head, "Content-Length", &len) != NULL &&
         !header_is(head, "Content-Length", "0")))
        keep_alive = false;
    bool head_only = strcmp(method, "HEAD") == 0;
    target[strcspn(target, "?")] = '\0';
    if (strcmp(method, "GET") != 0 && !head_only)
        respond(c, 405, "Method Not Allowed", "method not allowed\n", false, keep_alive);
    else if (strcmp(target, "/") == 0)
        respond(c, 200, "OK", "OK", head_only, keep_alive);
    else if (target[0] == '/')
        respond(c, 404, "Not Found", "not found\n", head_only, keep_alive);
    else
        respond(c, 400, "Bad Request", "bad request\n", false, false);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct edge_conn *c = conn_from(arg);
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    bool partial_head = false;
    /* Several pipelined requests may have arrived together; each loop answers one. A client that
     * sends requests but does not read answers is paused until it has read them. */
    while (!c->closing) {
        if (evbuffer_get_length(out) > OUTPUT_MAX) {
            bufferevent_disable(bev, EV_READ);
            break;
        }
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0 || (size_t)end.pos + 4 > CK_EDGE_REQUEST_HEAD_MAX) {
            if (end.pos >= 0 || evbuffer_get_length(in) > CK_EDGE_REQUEST_HEAD_MAX)
                respond(c, 431, "Request Header Fields Too Large", "request head too large\n",
                        false, false);
            else
                partial_head = evbuffer_get_length(in) > 0;
            break;
        }
        char head[CK_EDGE_REQUEST_HEAD_MAX + 1];
        size_t head_len = (size_t)end.pos + 4;
        evbuffer_remove(in, head, head_len);
        head[head_len] = '\0';
        if (strlen(head) != head_len)
            respond(c, 400, "Bad Request", "bad request\n", false, false);
        else
            handle_request(c, head);
    }
    if (c->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
    /* A request head, once begun, must be complete within the handshake timeout, however slowly
     * its bytes trickle in; otherwise each byte would restart the idle timeout. */
    if (!partial_head)
        evtimer_del(c->deadline);
    else if (!evtimer_pending(c->deadline, NULL))
        evtimer_add(c->deadline, &c->listener->handshake_timeout);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct edge_conn *c = conn_from(arg);
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        conn_close(c);
    } else if (!c->closing && (bufferevent_get_enabled(bev) & EV_READ) == 0) {
        bufferevent_enable(bev, EV_READ);
        on_read(bev, c); /* requests already buffered wait for no new bytes */
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct edge_conn *c = conn_from(arg);
    if (what & BEV_EVENT_CONNECTED) {
        atomic_fetch_add(&c->listener->handshakes, 1);
        c->handshake_done = true;
        /* Handshake done: until a request begins, only the idle timeout applies. */
        evtimer_del(c->deadline);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e;
        while ((e = bufferevent_get_openssl_error(bev)) != 0) {
            char detail[256];
            ERR_error_string_n(e, detail, sizeof(detail));
            ck_log(CK_LOG_DEBUG, "edge: connection closed: %s", detail);
        }
        if (!c->handshake_done)
            atomic_fetch_add(&c->listener->handshake_errors, 1);
        conn_free(c);
        return;
    }
    if (!c->handshake_done) /* closed before the handshake finished */
        atomic_fetch_add(&c->listener->handshake_errors, 1);
    /* End of stream or the idle timeout: an orderly end. OpenSSL drops from its cache the session
     * of any connection freed without a close_notify sent, which would defeat resumption by
     * session ID, so answer with one. */
    conn_close(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct edge_conn *c = conn_from(arg);
    ck_log(CK_LOG_DEBUG, "edge: handshake or request head did not finish in time; closed");
    if (!c->handshake_done)
        atomic_fetch_add(&c->listener->handshake_errors, 1);
    conn_close(c);
}

static int conn_start(ck_edge_listener *l, evutil_socket_t fd)
{
    SSL *ssl = SSL_new(l->ctx);
    struct edge_conn *c = calloc(1, sizeof(*c));
    if (ssl == NULL || c == NULL)
        goto cleanup;
    c->magic = CONN_MAGIC;
    c->listener = l;
    /* From here libevent owns ssl (it frees it even when creation fails, with CLOSE_ON_FREE). */
    c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    ssl = NULL;
    if (c->bev == NULL)
        goto cleanup;
    fd = -1;
    c->deadline = evtimer_new(l->base, on_deadline, c);
    if (c->deadline == NULL || evtimer_add(c->deadline, &l->handshake_timeout) != 0)
        goto cleanup;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(c->bev, &l->idle_timeout, &l->idle_timeout);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        goto cleanup;
    c->next = l->conns;
    if (l->conns != NULL)
        l->conns->prev = c;
    l->conns = c;
    l->connections++;
    if (l->budget != NULL)
        l->budget->open++;
    return 0;
cleanup:
    ck_log(CK_LOG_WARN, "edge: out of memory accepting a connection; closed");
    SSL_free(ssl);
    if (fd >= 0)
        evutil_closesocket(fd);
    if (c != NULL) {
        if (c->deadline != NULL)
            event_free(c->deadline);
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        free(c);
    }
    return -1;
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr,
                      int addr_len, void *arg)
{
    (void)evl;
    (void)addr;
    (void)addr_len;
    ck_edge_listener *l = listener_from(arg);
    if (l->accept_paused) {
        ck_log(CK_LOG_INFO, "edge: accepting connections again");
        l->accept_paused = false;
    }
    if (l->connections >= l->max_connections ||
        (l->budget != NULL && l->budget->open >= l->budget->max)) {
        ck_log(CK_LOG_DEBUG, "edge: %zu connections open; a new one was closed",
               l->budget != NULL ? l->budget->open : l->connections);
        evutil_closesocket(fd);
        return;
    }
    conn_start(l, fd);
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ck_edge_listener *l = listener_from(arg);
    evconnlistener_enable(l->evl);
}

/* accept() failing (EMFILE, ENFILE, ENOBUFS) would otherwise spin the loop: the pending
 * connection stays in the kernel's queue and the socket stays readable. Pause briefly and try
 * again; the pending connections wait in the backlog until descriptors are free. Logged once per
 * episode, not every 100 ms. */
static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    ck_edge_listener *l = listener_from(arg);
    int e = EVUTIL_SOCKET_ERROR();
    if (!l->accept_paused)
        ck_log(CK_LOG_WARN,
               "edge: accepting connections failed (%s); retrying every %d ms until it works",
               evutil_socket_error_to_string(e), ACCEPT_BACKOFF_MS);
    l->accept_paused = true;
    evconnlistener_disable(evl);
    struct timeval backoff = timeval_ms(ACCEPT_BACKOFF_MS);
    evtimer_add(l->resume_accept, &backoff);
}

/* ---- the listener ---- */

/* evutil_parse_sockaddr_port refuses port 0, which asks the kernel for a free port. */
static int parse_address(const char *text, struct sockaddr_storage *ss, int *len)
{
    char copy[128];
    size_t n = strlen(text);
    if (n < 2 || n >= sizeof(copy))
        return -1;
    memcpy(copy, text, n + 1);
    /* A port is required: "IPv4:port" or "[IPv6]:port" (evutil would default it to 0). */
    const char *colon = strrchr(copy, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        (copy[0] == '[' ? colon[-1] != ']' : strchr(copy, ':') != colon))
        return -1;
    bool any_port = strcmp(copy + n - 2, ":0") == 0;
    if (any_port)
        copy[n - 1] = '1';
    if (evutil_parse_sockaddr_port(copy, (struct sockaddr *)ss, len) != 0)
        return -1;
    if (any_port && ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    else if (any_port)
        ((struct sockaddr_in *)ss)->sin_port = 0;
    return 0;
}

static void apply_options(ck_edge_listener *l, const struct ck_edge_listener_options *opts)
{
    l->handshake_timeout = timeval_ms(
        opts->handshake_timeout_ms > 0 ? opts->handshake_timeout_ms : CK_EDGE_HANDSHAKE_TIMEOUT_MS);
    l->idle_timeout =
        timeval_ms(opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : CK_EDGE_IDLE_TIMEOUT_MS);
    l->max_connections =
        opts->max_connections > 0 ? opts->max_connections : CK_EDGE_MAX_CONNECTIONS;
    l->budget = opts->budget;
}

ck_edge_listener *ck_edge_listener_new(struct event_base *base,
                                       const struct ck_edge_listener_options *opts, ck_error *err)
{
    struct sockaddr_storage ss;
    int ss_len = (int)sizeof(ss);
    ck_edge_listener *l = NULL;
    if (opts->address == NULL || opts->tables == NULL ||
        parse_address(opts->address, &ss, &ss_len) != 0) {
        ck_error_set(err, 400, "invalid_address",
                     "edge listener address \"%.200s\" is not IP:port (\"127.0.0.1:8444\", "
                     "\"[::1]:8444\")",
                     opts->address == NULL ? "" : opts->address);
        goto cleanup;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory creating the edge listener");
        goto cleanup;
    }
    l->magic = LISTENER_MAGIC;
    l->base = base;
    l->tables = opts->tables;
    apply_options(l, opts);
    l->ctx = make_ssl_ctx(l, opts->kex, err);
    if (l->ctx == NULL)
        goto cleanup;
    l->resume_accept = evtimer_new(base, on_resume_accept, l);
    l->evl = evconnlistener_new_bind(
        base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
        (struct sockaddr *)&ss, ss_len);
    if (l->resume_accept == NULL || l->evl == NULL) {
        ck_error_set(err, 500, "listen_failed", "the edge cannot listen on %s: %s", opts->address,
                     strerror(errno));
        goto cleanup;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    return l;
cleanup:
    ck_edge_listener_free(l);
    return NULL;
}

void ck_edge_listener_free(ck_edge_listener *l)
{
    if (l == NULL)
        return;
    while (l->conns != NULL)
        conn_free(l->conns);
    if (l->evl != NULL)
        evconnlistener_free(l->evl);
    if (l->resume_accept != NULL)
        event_free(l->resume_accept);
    SSL_CTX_free(l->ctx);
    l->magic = 0;
    free(l);
}

int ck_edge_listener_port(const ck_edge_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(evconnlistener_get_fd(l->evl), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

size_t ck_edge_listener_connections(const ck_edge_listener *l)
{
    return l->connections;
}

void ck_edge_listener_stats(const ck_edge_listener *l, uint64_t *handshakes, uint64_t *errors)
{
    *handshakes = atomic_load(&l->handshakes);
    *errors = atomic_load(&l->handshake_errors);
}
