/* The edge's plain HTTP listener: ACME http-01 answers from the store, redirects otherwise. */
#include "server/http01.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "common/clock.h"
#include "common/log.h"
#include "server/edge_runtime.h"

#define HTTP01_MAGIC     0x636b6831u /* "ckh1" */
#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"
#define HOST_MAX         255

struct ck_http01 {
    uint32_t magic;
    struct ck_store *store;
    struct evhttp *http;
};

static bool token_valid(const char *token)
{
    size_t len = strlen(token);
    /* ACME tokens are base64url (RFC 8555 section 8.3) */
    return len > 0 && len <= CK_HTTP01_TOKEN_MAX &&
           strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

static void reply_text(struct evhttp_request *req, int status, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (body != NULL)
        evbuffer_add(body, text, strlen(text));
    evhttp_send_reply(req, status, reason, body);
    if (body != NULL)
        evbuffer_free(body);
}

static void answer_challenge(struct ck_http01 *h, struct evhttp_request *req, const char *token)
{
    char *key_authorization = NULL;
    ck_error err;
    if (!token_valid(token) ||
        ck_store_http01_get(h->store, token, ck_clock_now(), &key_authorization, &err) != 0) {
        if (token_valid(token) && err.status != 404)
            ck_log(CK_LOG_ERROR, "http-01: %s", err.message);
        reply_text(req, 404, "Not Found", "no such challenge\n");
        return;
    }
    reply_text(req, 200, "OK", key_authorization);
    free(key_authorization);
}

/* The Host header without its port, when it is a plausible host name or IP literal (so that
 * nothing odd ends up in the Location header). */
static bool request_host(struct evhttp_request *req, char host[HOST_MAX + 1])
{
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (value == NULL)
        return false;
    size_t len = strlen(value);
    if (len == 0 || len > HOST_MAX ||
        strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != len)
        return false;
    memcpy(host, value, len + 1);
    char *colon = strrchr(host, ':');
    char *bracket = strrchr(host, ']');
    if (colon != NULL && (host[0] != '[' || (bracket != NULL && colon > bracket)))
        *colon = '\0';
    return host[0] != '\0';
}

static void redirect(struct evhttp_request *req, const char *uri)
{
    char host[HOST_MAX + 1];
    if (!request_host(req, host)) {
        reply_text(req, 400, "Bad Request", "a Host header is needed to redirect to HTTPS\n");
        return;
    }
    size_t len = strlen(host) + strlen(uri) + sizeof("https://");
    char *location = malloc(len);
    if (location == NULL) {
        reply_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    snprintf(location, len, "https://%s%s", host, uri[0] == '/' ? uri : "/");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", location);
    reply_text(req, 301, "Moved Permanently", "moved to HTTPS\n");
    free(location);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct ck_http01 *h = arg;
    if (h == NULL || h->magic != HTTP01_MAGIC)
        abort(); /* a wrong context: stop before using it */
    const char *uri = evhttp_request_get_uri(req);
    const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(req);
    const char *path = parsed != NULL ? evhttp_uri_get_path(parsed) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    bool is_get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
    if (is_get && path != NULL && strncmp(path, CHALLENGE_PREFIX, strlen(CHALLENGE_PREFIX)) == 0)
        answer_challenge(h, req, path + strlen(CHALLENGE_PREFIX));
    else
        redirect(req, uri != NULL ? uri : "/");
}

/* Binds one address and appends what was bound to *bound. */
static int bind_one(struct ck_http01 *h, const char *address, ck_strv *bound, ck_error *err)
{
    char host[256], text[300];
    int port;
    if (ck_edge_address_split(address, host, sizeof(host), &port, err) != 0)
        return -1;
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (s == NULL)
        return ck_error_set(err, 500, "listen_failed", "the http-01 listener cannot listen on %s",
                            address);
    struct sockaddr_storage ss;
    ev_socklen_t ss_len = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s);
    if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) == 0) {
        port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (ck_strv_push(bound, text) != 0)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the edge");
    return 0;
}

int ck_http01_start(struct event_base *base, struct ck_store *st, const ck_strv *addresses,
                    ck_strv *bound, struct ck_http01 **out, ck_error *err)
{
    struct ck_http01 *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory starting the edge");
    h->magic = HTTP01_MAGIC;
    h->store = st;
    h->http = evhttp_new(base);
    if (h->http == NULL) {
        ck_error_set(err, 500, "event_failed", "could not start the http-01 listener");
        goto cleanup;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(h->http, 8192);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, 30);
    evhttp_set_gencb(h->http, on_request, h);
    for (size_t i = 0; i < addresses->len; i++)
        if (bind_one(h, addresses->items[i], bound, err) != 0)
            goto cleanup;
    *out = h;
    return 0;
cleanup:
    ck_http01_free(h);
    return -1;
}

void ck_http01_free(struct ck_http01 *h)
{
    if (h == NULL)
        return;
    if (h->http != NULL)
        evhttp_free(h->http);
    h->magic = 0;
    free(h);
}
