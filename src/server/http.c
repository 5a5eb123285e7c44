#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/names.h"
#include "server/api_issuers.h"
#include "server/api_webhooks.h"
#include "server/server.h"

#define PATH_SEGMENTS_MAX 8

/* Who may call a route. */
enum access { ACCESS_PUBLIC, ACCESS_VIEWER, ACCESS_EDITOR, ACCESS_ADMIN, ACCESS_OPERATOR };

struct route {
    enum evhttp_cmd_type method;
    const char *pattern; /* path segments; "{x}" matches any one segment */
    ck_handler handler;
    enum access access;
};

static const struct route routes[] = {
    {EVHTTP_REQ_GET, "/healthz", ck_api_health, ACCESS_PUBLIC},
    {EVHTTP_REQ_GET, "/metrics", ck_api_metrics, ACCESS_VIEWER},
    {EVHTTP_REQ_POST, "/v1/tenants", ck_api_tenant_create, ACCESS_OPERATOR},
    {EVHTTP_REQ_GET, "/v1/tenants", ck_api_tenant_list, ACCESS_OPERATOR},
    {EVHTTP_REQ_POST, "/v1/tokens", ck_api_token_create, ACCESS_ADMIN},
    {EVHTTP_REQ_GET, "/v1/tokens", ck_api_token_list, ACCESS_ADMIN},
    {EVHTTP_REQ_DELETE, "/v1/tokens/{id}", ck_api_token_delete, ACCESS_ADMIN},
    {EVHTTP_REQ_POST, "/v1/enrollments", ck_api_enrollment_create, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/enrollments", ck_api_enrollment_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/enrollments/{name}", ck_api_enrollment_get, ACCESS_VIEWER},
    {EVHTTP_REQ_PATCH, "/v1/enrollments/{name}", ck_api_enrollment_update, ACCESS_EDITOR},
    {EVHTTP_REQ_DELETE, "/v1/enrollments/{name}", ck_api_enrollment_delete, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/enrollments/{name}/orders", ck_api_order_create, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/orders", ck_api_order_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/orders/{id}", ck_api_order_get, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/orders/{id}/csr", ck_api_order_csr, ACCESS_VIEWER},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/cancel", ck_api_order_cancel, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/certificate", ck_api_order_import, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/orders/{id}/certificate", ck_api_order_certificate, ACCESS_VIEWER},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/acknowledge", ck_api_order_acknowledge, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/roots", ck_api_root_add, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/roots", ck_api_root_list, ACCESS_VIEWER},
    {EVHTTP_REQ_DELETE, "/v1/roots/{id}", ck_api_root_delete, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/poll", ck_api_poll, ACCESS_VIEWER},
    {EVHTTP_REQ_PUT, "/v1/poll/{id}", ck_api_poll_confirm, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/events", ck_api_event_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/jobs", ck_api_job_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/jobs/{id}", ck_api_job_get, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/jobs/{id}/artifacts/{name}", ck_api_job_artifact, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/edge", ck_api_edge, ACCESS_VIEWER},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/stage", ck_api_order_stage, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/ack-staging", ck_api_order_ack_staging, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/deploy", ck_api_order_deploy, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/rollback", ck_api_order_rollback, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/enrollments/{name}/targets", ck_api_target_add, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/enrollments/{name}/targets", ck_api_target_list, ACCESS_VIEWER},
    {EVHTTP_REQ_DELETE, "/v1/targets/{id}", ck_api_target_delete, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/ca", ck_api_ca_create, ACCESS_ADMIN},
    {EVHTTP_REQ_GET, "/v1/ca/root", ck_api_ca_root, ACCESS_VIEWER},
    {EVHTTP_REQ_POST, "/v1/issuers", ck_api_issuer_create, ACCESS_ADMIN},
    {EVHTTP_REQ_GET, "/v1/issuers", ck_api_issuer_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/issuers/{name}", ck_api_issuer_get, ACCESS_VIEWER},
    {EVHTTP_REQ_DELETE, "/v1/issuers/{name}", ck_api_issuer_delete, ACCESS_ADMIN},
    {EVHTTP_REQ_POST, "/v1/dns", ck_api_dns_create, ACCESS_ADMIN},
    {EVHTTP_REQ_GET, "/v1/dns", ck_api_dns_list, ACCESS_VIEWER},
    {EVHTTP_REQ_GET, "/v1/dns/{name}", ck_api_dns_get, ACCESS_VIEWER},
    {EVHTTP_REQ_DELETE, "/v1/dns/{name}", ck_api_dns_delete, ACCESS_ADMIN},
    {EVHTTP_REQ_POST, "/v1/orders/{id}/dns-published", ck_api_order_dns_published, ACCESS_EDITOR},
    {EVHTTP_REQ_POST, "/v1/webhooks", ck_api_webhook_create, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/webhooks", ck_api_webhook_list, ACCESS_EDITOR},
    {EVHTTP_REQ_DELETE, "/v1/webhooks/{id}", ck_api_webhook_delete, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/webhooks/{id}/deliveries", ck_api_webhook_deliveries, ACCESS_EDITOR},
    {EVHTTP_REQ_GET, "/v1/enrollments/{name}/watch", ck_api_enrollment_watch, ACCESS_VIEWER},
};

/* ---- responses ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Content";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

void ck_http_reply_bytes(struct ck_request *r, int status, const char *content_type,
                         const void *data, size_t len)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    struct evbuffer *buf = evbuffer_new();
    if (content_type != NULL)
        evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    if (buf != NULL && len > 0 && evbuffer_add(buf, data, len) != 0)
        status = 500;
    evhttp_send_reply(r->req, status, reason_phrase(status), buf);
    if (buf != NULL)
        evbuffer_free(buf);
}

void ck_http_reply_json(struct ck_request *r, int status, json_t *json)
{
    static const char fallback[] =
        "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory writing the answer\"}}";
    char *text = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (text == NULL)
        ck_http_reply_bytes(r, 500, "application/json", fallback, sizeof(fallback) - 1);
    else
        ck_http_reply_bytes(r, status, "application/json", text, strlen(text));
    free(text);
}

static void reply_error_json(struct ck_request *r, const ck_error *err, json_t *details)
{
    int status = err->status >= 400 && err->status <= 599 ? err->status : 500;
    json_t *inner = json_pack("{s:s,s:s}", "code", err->code[0] ? err->code : "internal_error",
                              "message", err->message[0] ? err->message : "the request failed");
    if (inner != NULL && details != NULL)
        json_object_set(inner, "details", details);
    if (status == 401)
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
    ck_http_reply_json(r, status, inner != NULL ? json_pack("{s:o}", "error", inner) : NULL);
}

void ck_http_reply_error(struct ck_request *r, const ck_error *err)
{
    reply_error_json(r, err, NULL);
}

void ck_http_reply_error_details(struct ck_request *r, const ck_error *err, json_t *details)
{
    reply_error_json(r, err, details);
}

void ck_http_reply_input_errors(struct ck_request *r, const struct ck_input_errors *errs)
{
    ck_error first = errs->first;
    if (errs->count > 1) {
        size_t used = strlen(first.message);
        snprintf(first.message + used, sizeof(first.message) - used, " (and %zu more problem%s)",
                 errs->count - 1, errs->count > 2 ? "s" : "");
    }
    reply_error_json(r, &first, errs->count > 1 ? errs->details : NULL);
}

void ck_http_reply_empty(struct ck_request *r, int status)
{
    evhttp_send_reply(r->req, status, reason_phrase(status), NULL);
}

json_t *ck_time_json(int64_t t)
{
    if (t == 0)
        return json_null();
    char buf[32];
    ck_time_format(t, buf, sizeof(buf));
    return json_string(buf);
}

/* ---- request parts ---- */

int ck_http_body_object(struct ck_request *r, json_t **out, ck_error *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > CK_BODY_MAX)
        return ck_error_set(err, 413, "body_too_large",
                            "the request body has %zu bytes; at most 1 MiB (%d bytes) is accepted",
                            len, CK_BODY_MAX);
    json_t *j = NULL;
    json_error_t jerr;
    if (len == 0)
        j = json_object();
    else
        j = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL && len == 0)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the request");
    if (j == NULL)
        return ck_error_set(err, 400, "malformed_json",
                            "the request body is not valid JSON: %s (line %d, column %d)",
                            jerr.text, jerr.line, jerr.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return ck_error_set(err, 400, "malformed_json", "the request body must be a JSON object");
    }
    *out = j;
    return 0;
}

const char *ck_http_query(struct ck_request *r, const char *key)
{
    const char *v = evhttp_find_header(&r->query, key);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int ck_http_param_id(struct ck_request *r, size_t i, const char *what, int64_t *out, ck_error *err)
{
    const char *s = i < CK_ROUTE_PARAMS_MAX ? r->params[i] : NULL;
    size_t digits = s != NULL ? strspn(s, "0123456789") : 0;
    /* At most 18 digits: always below INT64_MAX, so no overflow to check. */
    if (s == NULL || digits == 0 || digits > 18 || s[digits] != '\0' || s[0] == '0')
        return ck_error_set(err, 404, "not_found", "no %s with id %.40s", what, s ? s : "");
    *out = strtoll(s, NULL, 10);
    return 0;
}

/* Digits only, at most 18 (no overflow), no leading zero; -1 otherwise. */
static int64_t positive_number(const char *s)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 18 || s[digits] != '\0' || s[0] == '0')
        return -1;
    return strtoll(s, NULL, 10);
}

int ck_http_page(struct ck_request *r, bool by_name, struct ck_page *page, ck_error *err)
{
    const char *limit = ck_http_query(r, "limit");
    const char *cursor = ck_http_query(r, "cursor");
    *page = (struct ck_page){.limit = CK_PAGE_LIMIT_DEFAULT};
    if (limit != NULL) {
        int64_t n = positive_number(limit);
        if (n < 1 || n > CK_PAGE_LIMIT_MAX)
            return ck_error_set(err, 400, "invalid_limit",
                                "limit must be a number from 1 to %d, not \"%.40s\"",
                                CK_PAGE_LIMIT_MAX, limit);
        page->limit = (size_t)n;
    }
    if (cursor == NULL)
        return 0;
    if (by_name ? !ck_resource_name_valid(cursor) : (page->before_id = positive_number(cursor)) < 1)
        return ck_error_set(err, 400, "invalid_cursor",
                            "cursor \"%.40s\" is not one this list gave: pass the `next` of the "
                            "previous page as it is",
                            cursor);
    if (by_name)
        page->after_name = cursor;
    return 0;
}

json_t *ck_http_page_next(const struct ck_page *page, const char *last_name, int64_t last_id)
{
    if (!page->more)
        return json_null();
    if (last_name != NULL)
        return json_string(last_name);
    char text[24];
    snprintf(text, sizeof(text), "%lld", (long long)last_id);
    return json_string(text);
}

/* ---- routing ---- */

struct path {
    char *buf;
    const char *seg[PATH_SEGMENTS_MAX];
    size_t n;
};

static int path_split(const char *path, struct path *p)
{
    if (path[0] != '/' || (p->buf = strdup(path + 1)) == NULL)
        return -1;
    for (char *s = p->buf;; s++) {
        if (p->n == PATH_SEGMENTS_MAX)
            return -1;
        p->seg[p->n++] = s;
        if ((s = strchr(s, '/')) == NULL)
            return 0;
        *s = '\0';
    }
}

/* Matches the pattern's segments against the path's; collects the {placeholder} values. */
static bool route_matches(const char *pattern, const struct path *p, const char **params)
{
    size_t i = 0, n_params = 0;
    const char *seg = pattern + 1;
    for (; i < p->n; i++) {
        if (seg == NULL)
            return false;
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (seg[0] == '{') {
            if (n_params == CK_ROUTE_PARAMS_MAX || p->seg[i][0] == '\0')
                return false;
            params[n_params++] = p->seg[i];
        } else if (strlen(p->seg[i]) != len || strncmp(seg, p->seg[i], len) != 0) {
            return false;
        }
        seg = end ? end + 1 : NULL;
    }
    return seg == NULL;
}

static const char *method_name(enum evhttp_cmd_type method)
{
    switch (method) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "?";
    }
}

/* The route for method and path; on a 405, allow (at least 32 bytes) lists the path's methods
 * for the Allow header. */
static const struct route *route_find(enum evhttp_cmd_type method, const struct path *p,
                                      const char **params, char *allow, size_t allow_len,
                                      ck_error *err)
{
    allow[0] = '\0';
    for (size_t i = 0; i < CK_ARRAY_LEN(routes); i++) {
        const char *found[CK_ROUTE_PARAMS_MAX] = {0};
        if (!route_matches(routes[i].pattern, p, found))
            continue;
        /* HEAD is GET without the body; evhttp leaves the body out by itself. */
        if (routes[i].method == method ||
            (method == EVHTTP_REQ_HEAD && routes[i].method == EVHTTP_REQ_GET)) {
            memcpy(params, found, sizeof(found));
            return &routes[i];
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                 method_name(routes[i].method));
    }
    if (allow[0] != '\0')
        ck_error_set(err, 405, "method_not_allowed", "this path accepts only %s", allow);
    else
        ck_error_set(err, 404, "not_found", "no such route; see docs/API.md");
    return NULL;
}

static int decode_params(struct ck_request *r, const char **raw, ck_error *err)
{
    for (size_t i = 0; i < CK_ROUTE_PARAMS_MAX && raw[i] != NULL; i++) {
        size_t len = 0;
        r->params[i] = evhttp_uridecode(raw[i], 0, &len);
        if (r->params[i] == NULL)
            return ck_error_set(err, 500, "out_of_memory", "out of memory reading the path");
        if (strlen(r->params[i]) != len) /* a %00 inside: names never hold one */
            return ck_error_set(err, 404, "not_found", "no such resource");
    }
    return 0;
}

static int check_access(const struct route *route, const struct ck_token *t, ck_error *err)
{
    static const char *const needs[] = {"", "viewer", "editor", "admin", "operator admin"};
    bool allowed = true;
    if (route->access == ACCESS_OPERATOR)
        allowed = ck_auth_is_operator_admin(t);
    else if (route->access == ACCESS_EDITOR)
        allowed = t->role >= CK_ROLE_EDITOR;
    else if (route->access == ACCESS_ADMIN)
        allowed = t->role >= CK_ROLE_ADMIN;
    if (allowed)
        return 0;
    return ck_error_set(err, 403, "forbidden",
                        "this %s token may not do this: it needs the %s role%s",
                        ck_role_name(t->role), needs[route->access],
                        route->access == ACCESS_OPERATOR ? " (an admin of tenant default)" : "");
}

/* Everything before the handler: route, parameters, query, body size, token, role. */
static const struct route *prepare(struct ck_request *r, struct path *p, ck_error *err)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *raw[CK_ROUTE_PARAMS_MAX] = {0};
    if (path == NULL || path_split(path, p) != 0) {
        ck_error_set(err, 404, "not_found", "no such route; see docs/API.md");
        return NULL;
    }
    char allow[64];
    const struct route *route =
        route_find(evhttp_request_get_command(r->req), p, raw, allow, sizeof(allow), err);
    if (route == NULL && allow[0] != '\0')
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    if (route == NULL || decode_params(r, raw, err) != 0)
        return NULL;
    const char *query = evhttp_uri_get_query(uri);
    if (query != NULL && evhttp_parse_query_str(query, &r->query) != 0) {
        ck_error_set(err, 400, "invalid_query", "the query string is not valid");
        return NULL;
    }
    /* evhttp accepts up to CK_BODY_HARD_MAX so that the usual oversized bodies get this JSON
     * answer; only beyond it does libevent 2.1 answer by itself (it has no error hook). */
    size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
    if (body_len > CK_BODY_MAX) {
        ck_error_set(err, 413, "body_too_large",
                     "the request body has %zu bytes; at most 1 MiB (%d bytes) is accepted",
                     body_len, CK_BODY_MAX);
        return NULL;
    }
    if (route->access != ACCESS_PUBLIC &&
        (ck_auth_caller(r->daemon->store, r->req, &r->caller, err) != 0 ||
         check_access(route, &r->caller, err) != 0))
        return NULL;
    return route;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct ck_daemon *d = arg;
    if (d == NULL || d->magic != CK_DAEMON_MAGIC)
        abort(); /* a wrong context: stop before using it */
    struct ck_request r = {.daemon = d, .req = req};
    TAILQ_INIT(&r.query);
    struct path p = {0};
    ck_error err = {0};
    const struct route *route = prepare(&r, &p, &err);
    if (route == NULL || route->handler(&r, &err) != 0) {
        if (err.status >= 500)
            ck_log(CK_LOG_ERROR, "%s %s: %s", route ? route->pattern : "?", err.code, err.message);
        ck_http_reply_error(&r, &err);
    }
    for (size_t i = 0; i < CK_ROUTE_PARAMS_MAX; i++)
        free(r.params[i]);
    evhttp_clear_headers(&r.query);
    ck_token_free(&r.caller);
    free(p.buf);
}

void ck_http_install_routes(struct ck_daemon *d)
{
    evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(d->http, CK_BODY_HARD_MAX);
    evhttp_set_max_headers_size(d->http, 64 * 1024);
    evhttp_set_timeout(d->http, 30);
    evhttp_set_gencb(d->http, on_request, d);
}

/* ---- request JSON ---- */

int ck_json_only_keys(const json_t *body, const char *const *allowed, size_t n, ck_error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)body, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known)
            return ck_error_set(err, 400, "unknown_field", "unknown field \"%.80s\"", key);
    }
    return 0;
}

int ck_json_string_field(const json_t *body, const char *key, bool required, const char **out,
                         ck_error *err)
{
    const json_t *v = json_object_get(body, key);
    *out = NULL;
    if ((v == NULL || json_is_null(v)) && required)
        return ck_error_set(err, 400, "missing_field", "%s is required", key);
    if (v != NULL && !json_is_null(v) && !json_is_string(v))
        return ck_error_set(err, 400, "invalid_field", "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}
