#include "cli/client.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli/output.h"
#include "common/util.h"

struct ck_client {
    CURL *curl;
    char *base;        /* CERTKEEP_ADDR without a trailing slash */
    char *auth_header; /* "Authorization: Bearer ..." — a secret, never printed */
    const char *ca_file;
    char curl_error[CURL_ERROR_SIZE];
};

/* Where the body of the answer being received goes; `too_large` stops the transfer. */
struct body_sink {
    char *data;
    size_t len;
    bool too_large;
};

/* CERTKEEP_ADDR as a base URL in *out (the caller frees it). A bare ADDR:PORT, the form
 * `serve --api` takes, means http:// on loopback only: elsewhere a token could go in clear to
 * an HTTPS daemon's port, so the scheme must be written. */
static int base_url(const char *addr, char **out)
{
    *out = NULL;
    if (strncmp(addr, "http://", 7) == 0 || strncmp(addr, "https://", 8) == 0) {
        *out = strdup(addr);
    } else {
        const char *colon = strrchr(addr, ':');
        char host[256];
        size_t host_len = colon != NULL ? (size_t)(colon - addr) : 0;
        if (colon == NULL || strchr(addr, '/') != NULL || host_len == 0 ||
            host_len >= sizeof(host) || colon[1] == '\0') {
            fprintf(stderr,
                    "certkeep: CERTKEEP_ADDR must start with http:// or https:// (got %s)\n", addr);
            return CK_EXIT_USAGE;
        }
        memcpy(host, addr, host_len);
        host[host_len] = '\0';
        if (!ck_host_is_loopback(host)) {
            fprintf(stderr,
                    "certkeep: CERTKEEP_ADDR %s has no scheme: write https://%s (or http:// "
                    "if the daemon really serves plain HTTP there)\n",
                    addr, addr);
            return CK_EXIT_USAGE;
        }
        size_t len = strlen("http://") + strlen(addr) + 1;
        if ((*out = malloc(len)) != NULL)
            snprintf(*out, len, "http://%s", addr);
    }
    if (*out == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    return CK_EXIT_OK;
}

static int client_env(struct ck_client *c)
{
    const char *addr = getenv("CERTKEEP_ADDR");
    const char *token = getenv("CERTKEEP_TOKEN");
    if (addr == NULL || *addr == '\0')
        addr = CK_CLIENT_DEFAULT_ADDR;
    int rc = base_url(addr, &c->base);
    if (rc != CK_EXIT_OK)
        return rc;
    if (token == NULL || *token == '\0') {
        fputs("certkeep: CERTKEEP_TOKEN is not set; export the token `certkeep init` or "
              "`certkeep token create` printed\n",
              stderr);
        return CK_EXIT_USAGE;
    }
    if (strpbrk(token, "\r\n") != NULL) {
        fputs("certkeep: CERTKEEP_TOKEN holds a line break; set it to the token alone\n", stderr);
        return CK_EXIT_USAGE;
    }
    static const char prefix[] = "Authorization: Bearer ";
    size_t header_len = sizeof(prefix) + strlen(token);
    c->auth_header = malloc(header_len);
    if (c->auth_header == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    snprintf(c->auth_header, header_len, "%s%s", prefix, token);
    size_t len = strlen(c->base);
    while (len > 0 && c->base[len - 1] == '/')
        c->base[--len] = '\0';
    c->ca_file = getenv("CERTKEEP_CA_FILE");
    return CK_EXIT_OK;
}

int ck_client_open(struct ck_client **out)
{
    *out = NULL;
    struct ck_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    int rc = client_env(c);
    if (rc != CK_EXIT_OK)
        goto cleanup;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        fputs("certkeep: cannot start libcurl\n", stderr);
        rc = CK_EXIT_FAILED;
        goto cleanup;
    }
    *out = c;
    c = NULL;
cleanup:
    ck_client_free(c);
    return rc;
}

void ck_client_free(struct ck_client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->base);
    if (c->auth_header != NULL) {
        OPENSSL_cleanse(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c);
}

void ck_response_free(struct ck_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static size_t sink_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct body_sink *sink = userdata;
    size_t n = size * nmemb;
    if (n > CK_CLIENT_MAX_BODY - sink->len) {
        sink->too_large = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    char *grown = realloc(sink->data, sink->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + sink->len, data, n);
    sink->data = grown;
    sink->len += n;
    sink->data[sink->len] = '\0';
    return n;
}

/* Sets up the handle for one request; `payload` is the JSON text of the body or NULL. */
static int client_prepare(struct ck_client *c, const char *method, const char *url,
                          const char *payload, struct curl_slist *headers, struct body_sink *sink)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->curl_error[0] = '\0';
    CURLcode e = curl_easy_setopt(h, CURLOPT_URL, url);
    e = e ? e : curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    e = e ? e : curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CK_CLIENT_CONNECT_TIMEOUT_S);
    e = e ? e : curl_easy_setopt(h, CURLOPT_TIMEOUT, CK_CLIENT_TOTAL_TIMEOUT_S);
    e = e ? e : curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
    e = e ? e : curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    e = e ? e : curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (c->ca_file != NULL && *c->ca_file != '\0')
        e = e ? e : curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (payload != NULL || strcmp(method, "POST") == 0)
        e = e ? e : curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
    if (e != CURLE_OK) {
        fprintf(stderr, "certkeep: cannot prepare the request: %s\n", curl_easy_strerror(e));
        return CK_EXIT_FAILED;
    }
    return CK_EXIT_OK;
}

void ck_client_print_error(const struct ck_response *resp)
{
    json_t *doc = json_loadb(resp->body ? resp->body : "", resp->len, 0, NULL);
    const char *message = ck_json_str(doc, "error.message");
    if (message == NULL)
        fprintf(stderr, "certkeep: the API answered HTTP %ld without an error message\n",
                resp->status);
    else
        fprintf(stderr, "certkeep: %s\n", message);
    const json_t *details = ck_json_at(doc, "error.details");
    size_t i;
    const json_t *detail;
    json_array_foreach(details, i, detail)
    {
        const char *text = ck_json_str(detail, "message");
        if (text != NULL)
            fprintf(stderr, "  %s\n", text);
    }
    json_decref(doc);
}

static void print_transport_error(const struct ck_client *c, CURLcode e, bool too_large)
{
    if (too_large)
        fprintf(stderr, "certkeep: the API's answer is larger than %zu MiB; refused\n",
                CK_CLIENT_MAX_BODY >> 20);
    else
        fprintf(stderr, "certkeep: cannot reach the API at %s: %s\n", c->base,
                c->curl_error[0] ? c->curl_error : curl_easy_strerror(e));
}

static struct curl_slist *request_headers(const struct ck_client *c, bool has_body)
{
    struct curl_slist *headers = curl_slist_append(NULL, c->auth_header);
    struct curl_slist *next = headers;
    if (next != NULL && has_body)
        next = curl_slist_append(next, "Content-Type: application/json");
    if (next == NULL) {
        curl_slist_free_all(headers);
        return NULL;
    }
    return headers;
}

int ck_client_exchange(struct ck_client *c, const char *method, const char *path,
                       const json_t *body, struct ck_response *resp)
{
    int rc = CK_EXIT_FAILED;
    struct body_sink sink = {0};
    char *url = NULL;
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *headers = request_headers(c, body != NULL);
    size_t url_len = strlen(c->base) + strlen(path) + 1;
    url = malloc(url_len);
    memset(resp, 0, sizeof(*resp));
    if (url == NULL || headers == NULL || (body != NULL && payload == NULL)) {
        fputs("certkeep: out of memory\n", stderr);
        goto cleanup;
    }
    snprintf(url, url_len, "%s%s", c->base, path);
    if (client_prepare(c, method, url, payload, headers, &sink) != CK_EXIT_OK)
        goto cleanup;
    CURLcode e = curl_easy_perform(c->curl);
    if (e != CURLE_OK) {
        print_transport_error(c, e, sink.too_large);
        goto cleanup;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = sink.data;
    resp->len = sink.len;
    sink.data = NULL;
    rc = CK_EXIT_OK;
cleanup:
    free(sink.data);
    free(url);
    free(payload);
    curl_slist_free_all(headers);
    return rc;
}

int ck_client_send(struct ck_client *c, const char *method, const char *path, const json_t *body,
                   struct ck_response *resp)
{
    int rc = ck_client_exchange(c, method, path, body, resp);
    if (rc == CK_EXIT_OK && (resp->status < 200 || resp->status > 299)) {
        ck_client_print_error(resp);
        ck_response_free(resp);
        rc = CK_EXIT_FAILED;
    }
    return rc;
}

int ck_client_call(struct ck_client *c, const char *method, const char *path, const json_t *body,
                   json_t **out)
{
    struct ck_response resp;
    *out = NULL;
    int rc = ck_client_send(c, method, path, body, &resp);
    if (rc != CK_EXIT_OK)
        return rc;
    if (resp.len > 0) {
        json_error_t jerr;
        *out = json_loadb(resp.body, resp.len, 0, &jerr);
        if (*out == NULL) {
            fprintf(stderr, "certkeep: the API's answer is not JSON (%s)\n", jerr.text);
            rc = CK_EXIT_FAILED;
        }
    }
    ck_response_free(&resp);
    return rc;
}

/* Appends s to the stream, URL-encoded. */
static int put_escaped(FILE *out, const char *s)
{
    char *escaped = curl_easy_escape(NULL, s, 0);
    if (escaped == NULL)
        return -1;
    fputs(escaped, out);
    curl_free(escaped);
    return 0;
}

static int path_vformat(FILE *out, const char *fmt, va_list ap)
{
    while (*fmt != '\0') {
        if (strncmp(fmt, "%s", 2) == 0) {
            if (put_escaped(out, va_arg(ap, const char *)) != 0)
                return -1;
            fmt += 2;
        } else if (strncmp(fmt, "%lld", 4) == 0) {
            fprintf(out, "%lld", va_arg(ap, long long));
            fmt += 4;
        } else {
            fputc(*fmt++, out);
        }
    }
    return 0;
}

char *ck_api_path(const char *fmt, ...)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int failed = path_vformat(out, fmt, ap);
    va_end(ap);
    if (fclose(out) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}

char *ck_api_path_query(const char *path, const struct ck_query_param *params, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    fputs(path, out);
    int failed = 0;
    char sep = '?';
    for (size_t i = 0; i < n && !failed; i++) {
        if (params[i].value == NULL)
            continue;
        fprintf(out, "%c%s=", sep, params[i].key);
        failed = put_escaped(out, params[i].value);
        sep = '&';
    }
    if (fclose(out) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}

int ck_client_run(const struct ck_cli *cli, const char *method, const char *path,
                  const json_t *body, ck_show_fn show)
{
    struct ck_client *c = NULL;
    json_t *answer = NULL;
    if (path == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    int rc = ck_client_open(&c);
    if (rc == CK_EXIT_OK)
        rc = ck_client_call(c, method, path, body, &answer);
    if (rc == CK_EXIT_OK && answer != NULL && cli->json)
        rc = ck_out_json(answer);
    else if (rc == CK_EXIT_OK && show != NULL)
        rc = show(answer);
    json_decref(answer);
    ck_client_free(c);
    return rc;
}

/* path with limit and (after the first page) cursor added to its query. */
static char *page_path(const char *path, const char *cursor)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    fprintf(out, "%s%climit=%d", path, strchr(path, '?') != NULL ? '&' : '?', CK_CLIENT_PAGE_LIMIT);
    int failed = 0;
    if (cursor != NULL) {
        fputs("&cursor=", out);
        failed = put_escaped(out, cursor);
    }
    if (fclose(out) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}

/* Appends the rows of page[key] to all; takes page's `next` (a copy in *cursor, NULL at the
 * end). */
static int page_collect(json_t *all, json_t *page, const char *key, char **cursor)
{
    json_t *rows = json_object_get(page, key);
    json_t *next = json_object_get(page, "next");
    bool repeated =
        *cursor != NULL && json_is_string(next) && strcmp(*cursor, json_string_value(next)) == 0;
    free(*cursor);
    *cursor = NULL;
    if (!json_is_array(rows) || (next != NULL && !json_is_null(next) && !json_is_string(next)) ||
        repeated) {
        fprintf(stderr, "certkeep: the API's answer is not a page of \"%s\"\n", key);
        return CK_EXIT_FAILED;
    }
    if (json_array_extend(all, rows) != 0 ||
        (json_is_string(next) && (*cursor = strdup(json_string_value(next))) == NULL)) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    return CK_EXIT_OK;
}

int ck_client_run_list(const struct ck_cli *cli, const char *path, const char *key, ck_show_fn show)
{
    struct ck_client *c = NULL;
    json_t *rows = json_array();
    char *cursor = NULL;
    int rc = rows != NULL && path != NULL ? ck_client_open(&c) : CK_EXIT_FAILED;
    if (rows == NULL || path == NULL)
        fputs("certkeep: out of memory\n", stderr);
    do {
        char *page_at = rc == CK_EXIT_OK ? page_path(path, cursor) : NULL;
        json_t *page = NULL;
        if (rc == CK_EXIT_OK && page_at == NULL) {
            fputs("certkeep: out of memory\n", stderr);
            rc = CK_EXIT_FAILED;
        }
        if (rc == CK_EXIT_OK)
            rc = ck_client_call(c, "GET", page_at, NULL, &page);
        if (rc == CK_EXIT_OK)
            rc = page_collect(rows, page, key, &cursor);
        json_decref(page);
        free(page_at);
    } while (rc == CK_EXIT_OK && cursor != NULL);
    json_t *answer = rc == CK_EXIT_OK ? json_pack("{s:O}", key, rows) : NULL;
    if (rc == CK_EXIT_OK && answer == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        rc = CK_EXIT_FAILED;
    }
    if (rc == CK_EXIT_OK)
        rc = cli->json ? ck_out_json(answer) : show(answer);
    json_decref(answer);
    json_decref(rows);
    free(cursor);
    ck_client_free(c);
    return rc;
}

static int body_set(json_t *obj, const char *key, json_t *value, const char *text)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0) {
        fprintf(stderr, "certkeep: %s is not UTF-8 text\n", text);
        return CK_EXIT_USAGE;
    }
    return CK_EXIT_OK;
}

int ck_body_set_str(json_t *obj, const char *key, const char *value)
{
    if (value == NULL)
        return CK_EXIT_OK;
    return body_set(obj, key, json_string(value), value);
}

int ck_body_set_list(json_t *obj, const char *key, const ck_strv *values)
{
    if (values->len == 0)
        return CK_EXIT_OK;
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < values->len; i++) {
        if (json_array_append_new(array, json_string(values->items[i])) != 0) {
            json_decref(array);
            return body_set(obj, key, NULL, values->items[i]);
        }
    }
    return body_set(obj, key, array, key);
}

int ck_client_download(const char *path)
{
    struct ck_client *c = NULL;
    struct ck_response resp = {0};
    if (path == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    int rc = ck_client_open(&c);
    if (rc == CK_EXIT_OK)
        rc = ck_client_send(c, "GET", path, NULL, &resp);
    if (rc == CK_EXIT_OK && (fwrite(resp.body ? resp.body : "", 1, resp.len, stdout) != resp.len ||
                             fflush(stdout) != 0)) {
        fputs("certkeep: cannot write to the standard output\n", stderr);
        rc = CK_EXIT_FAILED;
    }
    ck_response_free(&resp);
    ck_client_free(c);
    return rc;
}

/* How many arguments a path format takes. */
static int path_arity(const char *fmt)
{
    int n = 0;
    for (const char *p = strchr(fmt, '%'); p != NULL; p = strchr(p + 1, '%'))
        n++;
    return n;
}

/* Fills fmt's placeholders with args in order; "%lld" ones must be ids. */
static int path_from_args(const char *fmt, char **args, const char *usage, char **path)
{
    char *text = NULL;
    size_t len = 0;
    long long id;
    int rc = CK_EXIT_OK;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return CK_EXIT_FAILED;
    while (*fmt != '\0' && rc == CK_EXIT_OK) {
        bool is_id = strncmp(fmt, "%lld", 4) == 0;
        if (is_id || strncmp(fmt, "%s", 2) == 0) {
            rc = is_id ? ck_cli_parse_id(*args, usage, &id) : CK_EXIT_OK;
            if (rc == CK_EXIT_OK && put_escaped(out, *args++) != 0)
                rc = CK_EXIT_FAILED;
            fmt += is_id ? 4 : 2;
        } else {
            fputc(*fmt++, out);
        }
    }
    if (fclose(out) != 0 && rc == CK_EXIT_OK)
        rc = CK_EXIT_FAILED;
    if (rc != CK_EXIT_OK)
        free(text);
    else
        *path = text;
    return rc;
}

int ck_client_simple(const struct ck_cli *cli, int argc, char **argv,
                     const struct ck_simple_command *def)
{
    int wanted = path_arity(def->path);
    const struct ck_cli_spec spec = {def->usage, NULL, 0, wanted, wanted};
    char **args;
    int n_args;
    char *path = NULL;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = path_from_args(def->path, args, def->usage, &path);
    if (rc == CK_EXIT_OK)
        rc = def->raw ? ck_client_download(path)
                      : ck_client_run(cli, def->method, path, NULL, def->show);
    if (rc == CK_EXIT_OK && def->done != NULL && !cli->json)
        printf("%s %s\n", def->done, args[0]);
    free(path);
    return rc;
}
