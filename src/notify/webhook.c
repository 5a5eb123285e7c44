/* webhook.c — signed event delivery over HTTPS with libcurl; see webhook.h. */
#include "notify/webhook.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/policy.h"

#define SINK_MAGIC         0x5745424bu /* "WEBK" */
#define DEFAULT_TIMEOUT_MS 10000L
#define HOST_MAX           256
#define HEADER_VALUE_MAX   200

static int hmac_sha256(const char *secret, const char *stamp, const char *body,
                       unsigned char md[32], ck_error *err)
{
    int rc = -1;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t md_len = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac == NULL ? NULL : EVP_MAC_CTX_new(mac);
    if (ctx == NULL ||
        EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)stamp, strlen(stamp)) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)body, strlen(body)) != 1 ||
        EVP_MAC_final(ctx, md, &md_len, 32) != 1 || md_len != 32) {
        ck_error_openssl(err, 500, "internal", "could not compute the webhook signature");
        goto cleanup;
    }
    rc = 0;
cleanup:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int ck_webhook_sign(const char *secret, const char *body, int64_t timestamp, char *out,
                    size_t out_len, ck_error *err)
{
    if (secret == NULL || secret[0] == '\0')
        return ck_error_set(err, 400, "invalid_webhook",
                            "the webhook has no secret: set one so receivers can check "
                            "deliveries");
    if (out_len < CK_WEBHOOK_SIGNATURE_MAX)
        return ck_error_set(err, 500, "internal", "webhook signature buffer too small");
    char stamp[24];
    snprintf(stamp, sizeof(stamp), "%" PRId64, timestamp);
    unsigned char md[32];
    if (hmac_sha256(secret, stamp, body == NULL ? "" : body, md, err) != 0)
        return -1;
    int used = snprintf(out, out_len, "t=%s,v1=", stamp);
    for (size_t i = 0; i < sizeof(md); i++)
        used += snprintf(out + used, out_len - (size_t)used, "%02x", md[i]);
    return 0;
}

/* Accepts https://, or http:// to a loopback host; gives the scheme for CURLOPT_PROTOCOLS_STR
 * and the host for messages (the full URL may carry a token and is not repeated). */
static int check_url(const char *url, char *scheme, size_t scheme_len, char *host, size_t host_len,
                     ck_error *err)
{
    int rc = -1;
    char *url_scheme = NULL, *url_host = NULL;
    CURLU *u = curl_url();
    if (u == NULL) {
        ck_error_set(err, 500, "internal", "out of memory");
        goto cleanup;
    }
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &url_scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &url_host, 0) != CURLUE_OK) {
        ck_error_set(err, 400, "invalid_webhook",
                     "the webhook URL is not a valid URL: give one such as "
                     "https://hooks.example.com/certkeep");
        goto cleanup;
    }
    bool https = strcmp(url_scheme, "https") == 0;
    if (!https && !(strcmp(url_scheme, "http") == 0 && ck_host_is_loopback(url_host))) {
        ck_error_set(err, 400, "invalid_webhook",
                     "the webhook URL for %.200s must use https:// (plain http:// is only "
                     "allowed to a loopback address)",
                     url_host);
        goto cleanup;
    }
    snprintf(scheme, scheme_len, "%s", url_scheme);
    snprintf(host, host_len, "%s", url_host);
    rc = 0;
cleanup:
    curl_free(url_scheme);
    curl_free(url_host);
    curl_url_cleanup(u);
    return rc;
}

/* A header value must not be able to add headers of its own. */
static int check_header_value(const char *what, const char *value, ck_error *err)
{
    if (value == NULL || value[0] == '\0')
        return ck_error_set(err, 400, "invalid_webhook", "the webhook delivery has no %s", what);
    if (strlen(value) > HEADER_VALUE_MAX)
        return ck_error_set(err, 400, "invalid_webhook",
                            "the webhook delivery's %s is longer than %d characters", what,
                            HEADER_VALUE_MAX);
    for (const char *p = value; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return ck_error_set(err, 400, "invalid_webhook",
                                "the webhook delivery's %s contains a control character", what);
    }
    return 0;
}

static struct curl_slist *delivery_headers(const struct ck_webhook_request *req,
                                           const char *signature)
{
    char line[512];
    struct curl_slist *list = NULL, *next = NULL;
    const char *fixed[] = {"Content-Type: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if ((next = curl_slist_append(list, fixed[i])) == NULL)
            goto cleanup;
        list = next;
    }
    const char *names[] = {"X-Certkeep-Signature", "X-Certkeep-Event-Id", "X-Certkeep-Event-Type"};
    const char *values[] = {signature, req->event_id, req->event_type};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(line, sizeof(line), "%s: %s", names[i], values[i]);
        if ((next = curl_slist_append(list, line)) == NULL)
            goto cleanup;
        list = next;
    }
    return list;
cleanup:
    curl_slist_free_all(list);
    return NULL;
}

struct answer_sink {
    uint32_t magic;
    size_t received;
    bool too_big;
};

/* The answer only matters by its status; its body is counted, bounded and dropped. */
static size_t count_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    struct answer_sink *sink = arg;
    if (sink->magic != SINK_MAGIC)
        abort();
    size_t len = size * nmemb;
    if (len > CK_WEBHOOK_RESPONSE_MAX - sink->received) {
        sink->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    sink->received += len;
    return len;
}

static CURLcode configure(CURL *h, const struct ck_webhook_request *req, const char *scheme,
                          struct curl_slist *headers, struct answer_sink *sink, char *errbuf)
{
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    CURLcode e = curl_easy_setopt(h, CURLOPT_URL, req->url);
    e = e ? e : curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, scheme);
    e = e ? e : curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    e = e ? e : curl_easy_setopt(h, CURLOPT_USERAGENT, "certkeep-webhook/1");
    e = e ? e : curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    e = e ? e : curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    e = e ? e : curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body));
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, count_answer);
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    e = e ? e : curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (req->ca_file != NULL)
        e = e ? e : curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
    return e;
}

/* Turns curl's outcome into acknowledged (0) or a reason a person can act on. */
static int judge(CURLcode code, const struct answer_sink *sink, const char *errbuf,
                 const char *host, long status, ck_error *err)
{
    if (sink->too_big)
        return ck_error_set(err, 502, "webhook_failed",
                            "the webhook at %s answered with more than %d KiB; answer with a "
                            "short body",
                            host, CK_WEBHOOK_RESPONSE_MAX / 1024);
    if (code != CURLE_OK)
        return ck_error_set(err, 502, "webhook_failed",
                            "could not deliver to the webhook at %s: %s", host,
                            errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
    if (status >= 200 && status <= 299)
        return 0;
    if (status >= 300 && status <= 399)
        return ck_error_set(err, 502, "webhook_failed",
                            "the webhook at %s answered %ld, a redirect, which is not followed: "
                            "set the webhook URL to the final address",
                            host, status);
    return ck_error_set(err, 502, "webhook_failed",
                        "the webhook at %s answered HTTP %ld instead of 2xx; the delivery will be "
                        "retried",
                        host, status);
}

static int check_request(const struct ck_webhook_request *req, char *scheme, size_t scheme_len,
                         char *host, size_t host_len, ck_error *err)
{
    if (req->body == NULL)
        return ck_error_set(err, 400, "invalid_webhook", "the webhook delivery has no body");
    if (check_url(req->url, scheme, scheme_len, host, host_len, err) != 0 ||
        check_header_value("event id", req->event_id, err) != 0 ||
        check_header_value("event type", req->event_type, err) != 0)
        return -1;
    return 0;
}

int ck_webhook_deliver(const struct ck_webhook_request *req, struct ck_webhook_result *result,
                       ck_error *err)
{
    int rc = -1;
    ck_error why = {0};
    char scheme[8], host[HOST_MAX], signature[CK_WEBHOOK_SIGNATURE_MAX];
    char errbuf[CURL_ERROR_SIZE] = "";
    struct answer_sink sink = {.magic = SINK_MAGIC};
    struct curl_slist *headers = NULL;
    CURL *h = NULL;
    *result = (struct ck_webhook_result){0};
    if (check_request(req, scheme, sizeof(scheme), host, sizeof(host), &why) != 0 ||
        ck_webhook_sign(req->secret, req->body, req->timestamp, signature, sizeof(signature),
                        &why) != 0)
        goto cleanup;
    if ((headers = delivery_headers(req, signature)) == NULL || (h = curl_easy_init()) == NULL ||
        configure(h, req, scheme, headers, &sink, errbuf) != CURLE_OK) {
        ck_error_set(&why, 500, "internal", "could not set up the webhook delivery");
        goto cleanup;
    }
    CURLcode code = curl_easy_perform(h);
    curl_off_t total_us = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result->http_status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total_us);
    result->duration_ms = (int64_t)(total_us / 1000);
    rc = judge(code, &sink, errbuf, host, result->http_status, &why);
cleanup:
    if (rc != 0) {
        snprintf(result->error, sizeof(result->error), "%s", why.message);
        if (err != NULL)
            *err = why;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return rc;
}

int64_t ck_webhook_next_attempt(int attempts, int64_t now, uint64_t seed)
{
    return ck_policy_retry_after(attempts, now, seed);
}
