/* Webhooks of a tenant: register an endpoint (with a secret the caller gives or one generated
 * and shown once), list, delete, and the delivery log. The secret is sealed inside the store's
 * transaction with AAD "certkeep/webhook/<id>/secret" and never returned again. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/api_webhooks.h"

#define URL_MAX             2048
#define SECRET_MIN          16
#define SECRET_MAX          256
#define SECRET_RANDOM_BYTES 32
#define DELIVERIES_MAX      500

struct secret_seal {
    const ck_master_key *mk;
    const char *secret;
};

static int seal_secret(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                       size_t *sealed_len, ck_error *err)
{
    const struct secret_seal *s = ctx;
    char aad[64];
    *sealed = NULL;
    *sealed_len = 0;
    if (strcmp(what, "secret") != 0)
        return 0;
    snprintf(aad, sizeof(aad), "certkeep/webhook/%lld/secret", (long long)id);
    return ck_seal(s->mk, aad, (const uint8_t *)s->secret, strlen(s->secret), sealed, sealed_len,
                   err);
}

/* https:// anywhere, http:// only to this machine (notify/webhook.h's rule, checked here so
 * that a wrong URL is refused when it is registered rather than at every delivery). */
static int check_url(const char *url, ck_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (strlen(url) > URL_MAX) {
        ck_error_set(err, 400, "invalid_field", "url is longer than %d characters", URL_MAX);
        goto cleanup;
    }
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        ck_error_set(err, 400, "invalid_field", "url %s is not an absolute URL", url);
        goto cleanup;
    }
    if (strcmp(scheme, "https") != 0 &&
        !(strcmp(scheme, "http") == 0 && ck_host_is_loopback(host))) {
        ck_error_set(err, 400, "invalid_field",
                     "url must start with https:// (http:// only to a loopback address)");
        goto cleanup;
    }
    rc = 0;
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int check_secret(const char *secret, ck_error *err)
{
    size_t len = strlen(secret);
    if (len < SECRET_MIN || len > SECRET_MAX)
        return ck_error_set(err, 400, "invalid_field", "secret must be %d to %d characters",
                            SECRET_MIN, SECRET_MAX);
    for (size_t i = 0; i < len; i++)
        if (secret[i] < 0x21 || secret[i] > 0x7e)
            return ck_error_set(err, 400, "invalid_field",
                                "secret must be printable ASCII without spaces");
    return 0;
}

static json_t *webhook_json(const struct ck_webhook *w)
{
    return json_pack("{s:I,s:s,s:b,s:o}", "id", (json_int_t)w->id, "url", w->url, "active",
                     w->active, "created_at", ck_time_json(w->created_at));
}

/* The secret to register: the caller's, or 32 random bytes in hex that the answer shows once. */
static int pick_secret(const char *given, char *generated, size_t len, ck_error *err)
{
    uint8_t raw[SECRET_RANDOM_BYTES];
    if (given != NULL)
        return check_secret(given, err);
    if (len < 2 * sizeof(raw) + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
        return ck_error_set(err, 500, "random_failed", "could not generate a webhook secret");
    ck_hex_encode(raw, sizeof(raw), generated);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int ck_api_webhook_create(struct ck_request *r, ck_error *err)
{
    static const char *const allowed[] = {"url", "secret"};
    json_t *body = NULL;
    const char *url = NULL, *given = NULL;
    char generated[2 * SECRET_RANDOM_BYTES + 1] = "";
    struct ck_webhook w = {.tenant_id = r->caller.tenant_id};
    int rc = -1;
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, allowed, CK_ARRAY_LEN(allowed), err) != 0 ||
        ck_json_string_field(body, "url", true, &url, err) != 0 ||
        ck_json_string_field(body, "secret", false, &given, err) != 0 || check_url(url, err) != 0 ||
        pick_secret(given, generated, sizeof(generated), err) != 0)
        goto cleanup;
    struct secret_seal s = {.mk = &r->daemon->master_key, .secret = given ? given : generated};
    if ((w.url = strdup(url)) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    if (ck_store_webhook_create(r->daemon->store, &w, seal_secret, &s, err) != 0)
        goto cleanup;
    json_t *answer = webhook_json(&w);
    if (answer != NULL && given == NULL)
        json_object_set_new(answer, "secret", json_string(generated));
    ck_http_reply_json(r, 201, answer);
    rc = 0;
cleanup:
    OPENSSL_cleanse(generated, sizeof(generated));
    ck_webhook_free(&w);
    json_decref(body);
    return rc;
}

int ck_api_webhook_list(struct ck_request *r, ck_error *err)
{
    struct ck_webhook *hooks = NULL;
    size_t n = 0;
    if (ck_store_webhook_list(r->daemon->store, r->caller.tenant_id, &hooks, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, webhook_json(&hooks[i]));
    ck_webhook_array_free(hooks, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "webhooks", items) : NULL);
    return 0;
}

int ck_api_webhook_delete(struct ck_request *r, ck_error *err)
{
    int64_t id;
    if (ck_http_param_id(r, 0, "webhook", &id, err) != 0 ||
        ck_store_webhook_delete(r->daemon->store, r->caller.tenant_id, id, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}

static json_t *delivery_json(const struct ck_webhook_delivery *d)
{
    return json_pack(
        "{s:I,s:I,s:s?,s:s,s:i,s:o,s:o,s:s?,s:o,s:o}", "id", (json_int_t)d->id, "event_id",
        (json_int_t)d->event_id, "type", d->event_type, "state", ck_delivery_state_name(d->state),
        "attempts", d->attempts, "last_status",
        d->last_status > 0 ? json_integer(d->last_status) : json_null(), "next_attempt_at",
        d->state == CK_DELIVERY_PENDING ? ck_time_json(d->next_attempt_at) : json_null(),
        "last_error", d->last_error, "delivered_at", ck_time_json(d->delivered_at), "created_at",
        ck_time_json(d->created_at));
}

int ck_api_webhook_deliveries(struct ck_request *r, ck_error *err)
{
    int64_t id;
    struct ck_webhook_delivery *d = NULL;
    size_t n = 0;
    if (ck_http_param_id(r, 0, "webhook", &id, err) != 0 ||
        ck_store_webhook_deliveries(r->daemon->store, r->caller.tenant_id, id, DELIVERIES_MAX, &d,
                                    &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, delivery_json(&d[i]));
    ck_webhook_delivery_array_free(d, n);
    ck_http_reply_json(
        r, 200,
        items ? json_pack("{s:I,s:o}", "webhook_id", (json_int_t)id, "deliveries", items) : NULL);
    return 0;
}
