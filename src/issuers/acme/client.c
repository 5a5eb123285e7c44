/* client.c — HTTPS to the CA: the directory, nonces, signed POSTs (POST-as-GET included) and the
 * account. The only file here that talks to the network; signing is jws.c's. */
#include "issuers/acme/client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/log.h"

#define DEFAULT_TIMEOUT_S    30
#define MAX_RETRY_AFTER_S    86400
#define MAX_HEADER_VALUE_LEN 4096
#define PROBLEM_BAD_NONCE    "urn:ietf:params:acme:error:badNonce"
#define PROBLEM_NO_ACCOUNT   "urn:ietf:params:acme:error:accountDoesNotExist"

/* ---- responses ---- */

void ck_acme_response_free(struct ck_acme_response *r)
{
    free(r->body);
    free(r->location);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
    r->retry_after_s = -1;
}

json_t *ck_acme_response_json(const struct ck_acme_response *r, ck_error *err)
{
    json_error_t jerr;
    json_t *doc = r->body == NULL ? NULL : json_loadb(r->body, r->body_len, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        ck_error_set(err, 502, "acme_bad_response",
                     "the ACME server sent a response that is not a JSON object (HTTP %ld)",
                     r->status);
        return NULL;
    }
    return doc;
}

void ck_acme_response_problem(const struct ck_acme_response *r, struct ck_acme_problem *out)
{
    ck_acme_problem_free(out);
    json_t *doc = ck_acme_response_json(r, NULL);
    if (doc != NULL && json_is_string(json_object_get(doc, "type")))
        ck_acme_problem_from_json(doc, out);
    json_decref(doc);
    if (out->type == NULL) {
        char detail[64];
        snprintf(detail, sizeof(detail), "the ACME server answered HTTP %ld", r->status);
        out->type = ck_strdup("about:blank");
        out->detail = ck_strdup(detail);
    }
    if (out->status == 0)
        out->status = (int)r->status;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct ck_acme_response *r = userdata;
    size_t len = size * nmemb;
    if (len > CK_ACME_MAX_RESPONSE - r->body_len)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR: the body is too large */
    char *grown = realloc(r->body, r->body_len + len + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + r->body_len, data, len);
    r->body = grown;
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static char *header_value(const char *line, size_t len, const char *name)
{
    size_t name_len = strlen(name);
    if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return NULL;
    const char *v = line + name_len + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if ((size_t)(end - v) > MAX_HEADER_VALUE_LEN)
        return NULL;
    char *out = malloc((size_t)(end - v) + 1);
    if (out != NULL) {
        memcpy(out, v, (size_t)(end - v));
        out[end - v] = '\0';
    }
    return out;
}

static int64_t parse_retry_after(const char *value)
{
    char *end = NULL;
    long long secs = strtoll(value, &end, 10);
    if (end == value || *end != '\0') {
        time_t when = curl_getdate(value, NULL); /* the HTTP-date form */
        if (when < 0)
            return -1;
        secs = (long long)when - ck_clock_now();
    }
    if (secs < 0)
        secs = 0;
    return secs > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : secs;
}

struct header_ctx {
    struct ck_acme_response *resp;
    char **nonce;
};

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct header_ctx *h = userdata;
    size_t len = size * nmemb;
    char *v;
    if ((v = header_value(line, len, "Replay-Nonce")) != NULL) {
        free(*h->nonce);
        *h->nonce = v;
    } else if ((v = header_value(line, len, "Location")) != NULL) {
        free(h->resp->location);
        h->resp->location = v;
    } else if ((v = header_value(line, len, "Content-Type")) != NULL) {
        free(h->resp->content_type);
        h->resp->content_type = v;
    } else if ((v = header_value(line, len, "Retry-After")) != NULL) {
        h->resp->retry_after_s = parse_retry_after(v);
        free(v);
    }
    return len;
}

/* ---- one HTTP exchange ---- */

/* method: "GET", "HEAD" or "POST" (with body). */
static int http_exchange(struct ck_acme_client *c, const char *method, const char *url,
                         const char *body, const char *accept, struct ck_acme_response *resp,
                         ck_error *err)
{
    int rc = -1;
    struct curl_slist *headers = NULL;
    char accept_header[128];
    struct header_ctx hctx = {resp, &c->nonce};
    ck_acme_response_free(resp);
    snprintf(accept_header, sizeof(accept_header), "Accept: %s",
             accept == NULL ? "application/json" : accept);
    headers = curl_slist_append(headers, accept_header);
    headers = curl_slist_append(headers, "Expect:");
    if (body != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/jose+json");
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_seconds);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_seconds);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hctx);
    if (c->ca_file != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    } else if (c->ca_pem != NULL) {
        struct curl_blob blob = {
            .data = c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        ck_log(CK_LOG_WARN, "acme: %s %s: %s", method, url, curl_easy_strerror(cc));
        if (cc == CURLE_WRITE_ERROR)
            ck_error_set(err, 502, "acme_bad_response",
                         "the ACME server at %s sent more than %d bytes", url,
                         CK_ACME_MAX_RESPONSE);
        else
            ck_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? 504 : 502, "acme_unreachable",
                         "could not reach the ACME server at %s: %s", url, curl_easy_strerror(cc));
        goto cleanup;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = 0;
cleanup:
    curl_slist_free_all(headers);
    return rc;
}

/* ---- client ---- */

struct ck_acme_client *ck_acme_client_new(const struct ck_acme_client_options *opt, ck_error *err)
{
    struct ck_acme_client *c = NULL;
    if (opt->directory_url == NULL || strncmp(opt->directory_url, "https://", 8) != 0) {
        ck_error_set(err, 400, "invalid_acme_directory",
                     "the ACME directory URL must start with https://");
        goto fail;
    }
    if ((opt->eab_kid == NULL) != (opt->eab_hmac_key == NULL)) {
        ck_error_set(err, 400, "invalid_eab",
                     "external account binding needs both the key id and the MAC key");
        goto fail;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto fail;
    }
    if (opt->account_key != NULL &&
        ck_acme_jwk_thumbprint(opt->account_key, c->thumbprint, err) != 0)
        goto fail;
    c->account_key = opt->account_key;
    c->terms_agreed = opt->terms_agreed;
    c->timeout_seconds = opt->timeout_seconds > 0 ? opt->timeout_seconds : DEFAULT_TIMEOUT_S;
    c->directory_url = ck_strdup(opt->directory_url);
    c->ca_file = ck_strdup(opt->ca_file);
    c->ca_pem = ck_strdup(opt->ca_pem);
    c->user_agent = ck_strdup(opt->user_agent == NULL ? "certkeep" : opt->user_agent);
    c->eab_kid = ck_strdup(opt->eab_kid);
    c->eab_hmac_key = ck_strdup(opt->eab_hmac_key);
    c->curl = curl_easy_init();
    if (c->directory_url == NULL || c->user_agent == NULL || c->curl == NULL ||
        (opt->ca_file != NULL && c->ca_file == NULL) ||
        (opt->ca_pem != NULL && c->ca_pem == NULL) ||
        (opt->eab_kid != NULL && (c->eab_kid == NULL || c->eab_hmac_key == NULL)) ||
        (opt->contacts != NULL && ck_strv_copy(&c->contacts, opt->contacts) != 0)) {
        ck_error_set(err, 500, "out_of_memory", "could not set up the ACME client");
        goto fail;
    }
    return c;
fail:
    ck_acme_client_free(c);
    return NULL;
}

void ck_acme_client_free(struct ck_acme_client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->directory_url);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->user_agent);
    free(c->eab_kid);
    if (c->eab_hmac_key != NULL)
        OPENSSL_cleanse(c->eab_hmac_key, strlen(c->eab_hmac_key));
    free(c->eab_hmac_key);
    ck_strv_free(&c->contacts);
    json_decref(c->directory);
    free(c->nonce);
    free(c->account_url);
    free(c);
}

int ck_acme_directory(struct ck_acme_client *c, ck_error *err)
{
    if (c->directory != NULL)
        return 0;
    int rc = -1;
    struct ck_acme_response resp = {.retry_after_s = -1};
    if (http_exchange(c, "GET", c->directory_url, NULL, NULL, &resp, err) != 0)
        goto cleanup;
    if (resp.status != 200) {
        ck_error_set(err, 502, "acme_bad_directory",
                     "the ACME directory %s answered HTTP %ld instead of 200", c->directory_url,
                     resp.status);
        goto cleanup;
    }
    json_t *dir = ck_acme_response_json(&resp, err);
    if (dir == NULL)
        goto cleanup;
    c->directory = dir;
    if (ck_acme_resource(c, "newNonce") == NULL || ck_acme_resource(c, "newAccount") == NULL ||
        ck_acme_resource(c, "newOrder") == NULL) {
        json_decref(c->directory);
        c->directory = NULL;
        ck_error_set(err, 502, "acme_bad_directory",
                     "%s is not an ACME directory: newNonce, newAccount or newOrder is missing",
                     c->directory_url);
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_acme_response_free(&resp);
    return rc;
}

const char *ck_acme_resource(const struct ck_acme_client *c, const char *name)
{
    const char *url = json_string_value(json_object_get(c->directory, name));
    return url != NULL && strncmp(url, "https://", 8) == 0 ? url : NULL;
}

static int fetch_nonce(struct ck_acme_client *c, ck_error *err)
{
    if (c->nonce != NULL)
        return 0;
    struct ck_acme_response resp = {.retry_after_s = -1};
    int rc = http_exchange(c, "HEAD", ck_acme_resource(c, "newNonce"), NULL, NULL, &resp, err);
    ck_acme_response_free(&resp);
    if (rc == 0 && c->nonce == NULL)
        rc = ck_error_set(err, 502, "acme_bad_response",
                          "the ACME server gave no Replay-Nonce from newNonce");
    return rc;
}

static bool is_bad_nonce(const struct ck_acme_response *r)
{
    if (r->status != 400)
        return false;
    json_t *doc = ck_acme_response_json(r, NULL);
    const char *type = json_string_value(json_object_get(doc, "type"));
    bool bad = type != NULL && strcmp(type, PROBLEM_BAD_NONCE) == 0;
    json_decref(doc);
    return bad;
}

int ck_acme_get(struct ck_acme_client *c, const char *url, struct ck_acme_response *resp,
                ck_error *err)
{
    return http_exchange(c, "GET", url, NULL, NULL, resp, err);
}

int ck_acme_post(struct ck_acme_client *c, const char *url, const char *payload, bool use_jwk,
                 const char *accept, struct ck_acme_response *resp, ck_error *err)
{
    if (c->account_key == NULL)
        return ck_error_set(err, 500, "no_account_key",
                            "this ACME client has no account key: it can only read");
    if (ck_acme_directory(c, err) != 0)
        return -1;
    for (int attempt = 0; attempt <= CK_ACME_BADNONCE_RETRIES; attempt++) {
        if (fetch_nonce(c, err) != 0)
            return -1;
        char *nonce = c->nonce;
        c->nonce = NULL; /* a nonce is good for one request; the answer brings the next */
        char *jws = ck_acme_jws_sign(c->account_key, use_jwk ? NULL : c->account_url, nonce, url,
                                     payload, err);
        free(nonce);
        if (jws == NULL)
            return -1;
        int rc = http_exchange(c, "POST", url, jws, accept, resp, err);
        free(jws);
        if (rc != 0)
            return -1;
        if (!is_bad_nonce(resp))
            return 0;
        c->bad_nonce_answers++;
        ck_log(CK_LOG_DEBUG, "acme: badNonce from %s, retrying with a fresh nonce", url);
    }
    return 0; /* the last badNonce answer goes to the caller as it is */
}

/* ---- account ---- */

static char *account_payload(struct ck_acme_client *c, bool only_existing, ck_error *err)
{
    char *text = NULL;
    json_t *body = json_object();
    if (body == NULL)
        goto oom;
    if (only_existing) {
        if (json_object_set_new(body, "onlyReturnExisting", json_true()) != 0)
            goto oom;
    } else {
        json_t *contacts = json_array();
        if (json_object_set_new(body, "contact", contacts) != 0 ||
            json_object_set_new(body, "termsOfServiceAgreed", json_boolean(c->terms_agreed)))
            goto oom;
        for (size_t i = 0; i < c->contacts.len; i++)
            if (json_array_append_new(contacts, json_string(c->contacts.items[i])) != 0)
                goto oom;
        if (c->eab_kid != NULL) {
            json_t *eab = ck_acme_eab_jws(c->account_key, c->eab_kid, c->eab_hmac_key,
                                          ck_acme_resource(c, "newAccount"), err);
            if (eab == NULL || json_object_set_new(body, "externalAccountBinding", eab) != 0)
                goto cleanup;
        }
    }
    text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        goto oom;
    goto cleanup;
oom:
    ck_error_set(err, 500, "out_of_memory", "out of memory");
cleanup:
    json_decref(body);
    return text;
}

/* One newAccount request; *found is false when onlyReturnExisting found no account. */
static int new_account(struct ck_acme_client *c, bool only_existing, bool *found,
                       struct ck_acme_problem *problem, ck_error *err)
{
    int rc = -1;
    struct ck_acme_response resp = {.retry_after_s = -1};
    char *payload = account_payload(c, only_existing, err);
    *found = false;
    if (payload == NULL ||
        ck_acme_post(c, ck_acme_resource(c, "newAccount"), payload, true, NULL, &resp, err) != 0)
        goto cleanup;
    if ((resp.status == 200 || resp.status == 201) && resp.location != NULL) {
        free(c->account_url);
        c->account_url = ck_strdup(resp.location);
        *found = c->account_url != NULL;
        rc = *found ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    ck_acme_response_problem(&resp, problem);
    if (only_existing && problem->type != NULL && strcmp(problem->type, PROBLEM_NO_ACCOUNT) == 0) {
        rc = 0;
        goto cleanup;
    }
    char line[CK_ERROR_MSG_MAX - 64];
    ck_acme_problem_format(problem, line, sizeof(line));
    ck_error_set(err, resp.status == 429 ? 429 : 502, "acme_account_refused",
                 "the ACME server refused the account: %s", line);
cleanup:
    free(payload);
    ck_acme_response_free(&resp);
    return rc;
}

int ck_acme_account_ensure(struct ck_acme_client *c, struct ck_acme_problem *problem, ck_error *err)
{
    bool found = false;
    if (c->account_url != NULL)
        return 0;
    if (ck_acme_directory(c, err) != 0 || new_account(c, true, &found, problem, err) != 0)
        return -1;
    if (!found && new_account(c, false, &found, problem, err) != 0)
        return -1;
    ck_acme_problem_free(problem);
    return 0;
}

int ck_acme_account(struct ck_acme_client *c, char **account_url, ck_error *err)
{
    struct ck_acme_problem problem = {0};
    *account_url = NULL;
    int rc = ck_acme_account_ensure(c, &problem, err);
    ck_acme_problem_free(&problem);
    if (rc != 0)
        return -1;
    *account_url = ck_strdup(c->account_url);
    return *account_url != NULL ? 0 : ck_error_set(err, 500, "out_of_memory", "out of memory");
}
