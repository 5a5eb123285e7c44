/* Issuers (local, acme) and DNS providers (rfc2136, hook, manual) of a tenant: create, list,
 * show, delete. Secrets (the EAB HMAC key, the TSIG secret) are sealed inside the store's
 * transaction under their row's AAD and never returned: the JSON says "configured". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "core/names.h"
#include "issuers/acme/jws.h"
#include "issuers/dns/dns01.h"
#include "server/api_issuers.h"

#define CONTACTS_MAX      10
#define CHECK_SERVERS_MAX 10
#define DNS_TTL_DEFAULT   60
#define DNS_TTL_MAX       86400

/* One secret to seal for the store's callback; `what` is the callback's name for it, `kind` the
 * AAD's folder ("issuer", "dns"). */
struct secret_seal {
    const ck_master_key *mk;
    const char *kind;
    const char *what;
    const char *aad_name; /* the AAD's last part */
    const char *secret;   /* NULL: nothing to seal */
};

static int seal_secret(void *ctx, int64_t id, const char *what, uint8_t **sealed,
                       size_t *sealed_len, ck_error *err)
{
    const struct secret_seal *s = ctx;
    char aad[96];
    *sealed = NULL;
    *sealed_len = 0;
    if (s->secret == NULL || strcmp(what, s->what) != 0)
        return 0;
    snprintf(aad, sizeof(aad), "certkeep/%s/%lld/%s", s->kind, (long long)id, s->aad_name);
    return ck_seal(s->mk, aad, (const uint8_t *)s->secret, strlen(s->secret), sealed, sealed_len,
                   err);
}

static json_t *strv_json(const ck_strv *v)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < v->len; i++)
        json_array_append_new(a, json_string(v->items[i]));
    return a;
}

/* body[key] as an array of at most max strings appended to out. */
static int string_list(const json_t *body, const char *key, size_t max, ck_strv *out, ck_error *err)
{
    const json_t *v = json_object_get(body, key);
    size_t i;
    const json_t *item;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > max)
        return ck_error_set(err, 400, "invalid_field", "%s must be an array of at most %zu strings",
                            key, max);
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return ck_error_set(err, 400, "invalid_field", "%s must hold strings only", key);
        if (ck_strv_push(out, json_string_value(item)) != 0)
            return ck_error_set(err, 500, "out_of_memory", "out of memory reading %s", key);
    }
    return 0;
}

static int param_name(struct ck_request *r, const char *what, const char **out, ck_error *err)
{
    *out = r->params[0];
    if (*out == NULL || !ck_resource_name_valid(*out))
        return ck_error_set(err, 404, "not_found", "no such %s", what);
    return 0;
}

static int new_name(const json_t *body, const char **name, ck_error *err)
{
    if (ck_json_string_field(body, "name", true, name, err) != 0)
        return -1;
    if (!ck_resource_name_valid(*name) || strcmp(*name, "manual") == 0)
        return ck_error_set(err, 400, "invalid_field",
                            "name \"%.64s\" is not valid: 1-63 of A-Z a-z 0-9 . _ -, starting "
                            "with a letter or digit, and not \"manual\"",
                            *name);
    return 0;
}

/* ---- issuers ---- */

static json_t *issuer_json(const struct ck_issuer *i)
{
    return json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:o,s:s?,s:o}", "id", (json_int_t)i->id,
                     "name", i->name, "type", i->type, "directory_url", i->directory_url,
                     "ca_bundle", i->ca_bundle_pem, "eab_kid", i->eab_kid, "eab",
                     i->sealed_eab_hmac != NULL ? "configured" : NULL, "contacts",
                     strv_json(&i->contacts), "account_url", i->account_url, "created_at",
                     ck_time_json(i->created_at));
}

static int ca_bundle_check(const char *pem, ck_error *err)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *cert = NULL;
    int n = 0;
    while (in != NULL && (cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        X509_free(cert);
        n++;
    }
    BIO_free(in);
    if (n == 0)
        return ck_error_set(err, 400, "invalid_ca_bundle",
                            "ca_bundle holds no PEM certificate: give the roots that sign the "
                            "ACME server's HTTPS certificate");
    return 0;
}

static int acme_fields(const json_t *body, struct ck_issuer *is, const char **eab_hmac,
                       ck_error *err)
{
    const char *url, *bundle, *kid;
    if (ck_json_string_field(body, "directory_url", true, &url, err) != 0 ||
        ck_json_string_field(body, "ca_bundle", false, &bundle, err) != 0 ||
        ck_json_string_field(body, "eab_kid", false, &kid, err) != 0 ||
        ck_json_string_field(body, "eab_hmac", false, eab_hmac, err) != 0)
        return -1;
    if (strncmp(url, "https://", 8) != 0 || strlen(url) > 2048)
        return ck_error_set(err, 400, "invalid_field",
                            "directory_url must be an https:// URL, e.g. "
                            "https://acme-v02.api.letsencrypt.org/directory");
    if ((kid == NULL) != (*eab_hmac == NULL))
        return ck_error_set(err, 400, "invalid_field",
                            "eab_kid and eab_hmac go together: give both or neither");
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (*eab_hmac != NULL && ck_acme_b64url_decode(*eab_hmac, &raw, &raw_len, err) != 0)
        return ck_error_set(err, 400, "invalid_field",
                            "eab_hmac must be the base64url key the CA gave");
    free(raw);
    if (bundle != NULL && ca_bundle_check(bundle, err) != 0)
        return -1;
    is->directory_url = strdup(url);
    is->ca_bundle_pem = ck_strdup(bundle);
    is->eab_kid = ck_strdup(kid);
    if (is->directory_url == NULL || (bundle && !is->ca_bundle_pem) || (kid && !is->eab_kid))
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the issuer");
    return 0;
}

static int contacts_check(const ck_strv *contacts, ck_error *err)
{
    for (size_t i = 0; i < contacts->len; i++)
        if (strncmp(contacts->items[i], "mailto:", 7) != 0 || strlen(contacts->items[i]) < 9)
            return ck_error_set(err, 400, "invalid_field",
                                "contact \"%.80s\" is not a mailto: URL such as "
                                "mailto:ops@example.com",
                                contacts->items[i]);
    return 0;
}

/* A local issuer needs a CA to sign with: the tenant's own or the shared one. */
static int local_ca_exists(struct ck_request *r, ck_error *err)
{
    struct ck_local_ca_record ca = {0};
    if (ck_store_local_ca_get(r->daemon->store, r->caller.tenant_id, &ca, err) != 0) {
        if (err->status == 404)
            ck_error_set(err, 409, "no_local_ca",
                         "there is no local CA for this tenant: create it first with "
                         "certkeep ca init (POST /v1/ca)");
        return -1;
    }
    ck_local_ca_record_free(&ca);
    return 0;
}

static int issuer_from_body(struct ck_request *r, const json_t *body, struct ck_issuer *is,
                            const char **eab_hmac, ck_error *err)
{
    static const char *const keys[] = {"name",    "type",     "directory_url", "ca_bundle",
                                       "eab_kid", "eab_hmac", "contacts"};
    static const char *const acme_only[] = {"directory_url", "ca_bundle", "eab_kid", "eab_hmac",
                                            "contacts"};
    const char *name, *type;
    *eab_hmac = NULL;
    if (ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        new_name(body, &name, err) != 0 ||
        ck_json_string_field(body, "type", true, &type, err) != 0)
        return -1;
    if (strcmp(type, "local") != 0 && strcmp(type, "acme") != 0)
        return ck_error_set(err, 400, "invalid_field", "type must be local or acme, not \"%.40s\"",
                            type);
    is->tenant_id = r->caller.tenant_id;
    is->name = strdup(name);
    is->type = strdup(type);
    if (is->name == NULL || is->type == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the issuer");
    if (strcmp(type, "local") == 0) {
        for (size_t i = 0; i < CK_ARRAY_LEN(acme_only); i++)
            if (json_object_get(body, acme_only[i]) != NULL)
                return ck_error_set(err, 400, "invalid_field",
                                    "%s is for acme issuers only; a local issuer signs with the "
                                    "tenant's local CA",
                                    acme_only[i]);
        return local_ca_exists(r, err);
    }
    if (acme_fields(body, is, eab_hmac, err) != 0 ||
        string_list(body, "contacts", CONTACTS_MAX, &is->contacts, err) != 0)
        return -1;
    return contacts_check(&is->contacts, err);
}

int ck_api_issuer_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_issuer is = {0};
    const char *eab_hmac = NULL;
    if (ck_http_body_object(r, &body, err) != 0 ||
        issuer_from_body(r, body, &is, &eab_hmac, err) != 0)
        goto cleanup;
    struct secret_seal seal = {.mk = &r->daemon->master_key,
                               .kind = "issuer",
                               .what = "eab",
                               .aad_name = "eab",
                               .secret = eab_hmac};
    if (ck_store_issuer_create(r->daemon->store, &is, seal_secret, &seal, err) != 0)
        goto cleanup;
    ck_issuer_free(&is);
    /* Read back: the answer shows what the store holds, "eab": "configured" included. */
    if (ck_store_issuer_get(r->daemon->store, r->caller.tenant_id,
                            json_string_value(json_object_get(body, "name")), &is, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, issuer_json(&is));
    rc = 0;
cleanup:
    ck_issuer_free(&is);
    json_decref(body);
    return rc;
}

int ck_api_issuer_list(struct ck_request *r, ck_error *err)
{
    struct ck_issuer *list = NULL;
    size_t n = 0;
    if (ck_store_issuer_list(r->daemon->store, r->caller.tenant_id, &list, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, issuer_json(&list[i]));
    ck_issuer_array_free(list, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "issuers", items) : NULL);
    return 0;
}

int ck_api_issuer_get(struct ck_request *r, ck_error *err)
{
    const char *name;
    struct ck_issuer is = {0};
    if (param_name(r, "issuer", &name, err) != 0 ||
        ck_store_issuer_get(r->daemon->store, r->caller.tenant_id, name, &is, err) != 0)
        return -1;
    ck_http_reply_json(r, 200, issuer_json(&is));
    ck_issuer_free(&is);
    return 0;
}

int ck_api_issuer_delete(struct ck_request *r, ck_error *err)
{
    const char *name;
    if (param_name(r, "issuer", &name, err) != 0 ||
        ck_store_issuer_delete(r->daemon->store, r->caller.tenant_id, name, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}

/* ---- DNS providers ---- */

static json_t *dns_json(const struct ck_dns_provider *d)
{
    return json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:o,s:i,s:o}", "id",
                     (json_int_t)d->id, "name", d->name, "mode", d->mode, "server", d->server,
                     "zone", d->zone, "tsig_name", d->tsig_name, "tsig_alg", d->tsig_alg,
                     "tsig_secret", d->sealed_tsig_secret != NULL ? "configured" : NULL,
                     "hook_path", d->hook_path, "check_servers", strv_json(&d->check_servers),
                     "ttl", d->ttl, "created_at", ck_time_json(d->created_at));
}

static int dns_rfc2136(const json_t *body, struct ck_dns_provider *d, const char **secret,
                       ck_error *err)
{
    const char *server, *name, *alg;
    struct ck_dns_server primary;
    if (ck_json_string_field(body, "server", true, &server, err) != 0 ||
        ck_json_string_field(body, "tsig_name", true, &name, err) != 0 ||
        ck_json_string_field(body, "tsig_alg", false, &alg, err) != 0 ||
        ck_json_string_field(body, "tsig_secret", true, secret, err) != 0 ||
        ck_dns_server_parse(server, CK_DNS_DEFAULT_PORT, &primary, err) != 0)
        return -1;
    const struct ck_rfc2136_config cfg = {.primary = primary,
                                          .zone = d->zone,
                                          .tsig_name = name,
                                          .tsig_alg = alg ? alg : "hmac-sha256",
                                          .tsig_secret_b64 = *secret};
    if (ck_rfc2136_config_check(&cfg, err) != 0)
        return -1;
    d->server = strdup(server);
    d->tsig_name = strdup(name);
    d->tsig_alg = strdup(cfg.tsig_alg);
    if (d->server == NULL || d->tsig_name == NULL || d->tsig_alg == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the DNS provider");
    return 0;
}

static int dns_mode_fields(const json_t *body, struct ck_dns_provider *d, const char **secret,
                           ck_error *err)
{
    enum ck_dns01_mode mode;
    const char *hook;
    if (ck_dns01_mode_parse(d->mode, &mode) != 0)
        return ck_error_set(err, 400, "invalid_field",
                            "mode must be rfc2136, hook or manual, not \"%.40s\"", d->mode);
    if (mode != CK_DNS01_RFC2136) {
        static const char *const rfc_only[] = {"server", "tsig_name", "tsig_alg", "tsig_secret"};
        for (size_t i = 0; i < CK_ARRAY_LEN(rfc_only); i++)
            if (json_object_get(body, rfc_only[i]) != NULL)
                return ck_error_set(err, 400, "invalid_field", "%s is for mode rfc2136 only",
                                    rfc_only[i]);
    }
    if (mode == CK_DNS01_RFC2136)
        return dns_rfc2136(body, d, secret, err);
    if (ck_json_string_field(body, "hook_path", mode == CK_DNS01_HOOK, &hook, err) != 0)
        return -1;
    if (mode == CK_DNS01_MANUAL && hook != NULL)
        return ck_error_set(err, 400, "invalid_field", "hook_path is for mode hook only");
    if (hook != NULL && hook[0] != '/')
        return ck_error_set(err, 400, "invalid_field",
                            "hook_path must be an absolute path to an executable");
    if (hook != NULL && (d->hook_path = strdup(hook)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the DNS provider");
    return 0;
}

static int dns_common_fields(const json_t *body, struct ck_dns_provider *d, ck_error *err)
{
    const char *zone;
    const json_t *ttl = json_object_get(body, "ttl");
    if (ck_json_string_field(body, "zone", false, &zone, err) != 0 ||
        string_list(body, "check_servers", CHECK_SERVERS_MAX, &d->check_servers, err) != 0)
        return -1;
    for (size_t i = 0; i < d->check_servers.len; i++) {
        struct ck_dns_server s;
        if (ck_dns_server_parse(d->check_servers.items[i], CK_DNS_DEFAULT_PORT, &s, err) != 0)
            return -1;
    }
    if (ttl != NULL && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                        json_integer_value(ttl) > DNS_TTL_MAX))
        return ck_error_set(err, 400, "invalid_field", "ttl must be 1 to %d seconds", DNS_TTL_MAX);
    d->ttl = ttl != NULL ? (int)json_integer_value(ttl) : DNS_TTL_DEFAULT;
    if (zone != NULL && (d->zone = strdup(zone)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the DNS provider");
    return 0;
}

static int dns_from_body(struct ck_request *r, const json_t *body, struct ck_dns_provider *d,
                         const char **secret, ck_error *err)
{
    static const char *const keys[] = {"name",      "mode",         "server",      "zone",
                                       "tsig_name", "tsig_alg",     "tsig_secret", "hook_path",
                                       "ttl",       "check_servers"};
    const char *name, *mode;
    *secret = NULL;
    if (ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        new_name(body, &name, err) != 0 ||
        ck_json_string_field(body, "mode", true, &mode, err) != 0)
        return -1;
    d->tenant_id = r->caller.tenant_id;
    d->name = strdup(name);
    d->mode = strdup(mode);
    if (d->name == NULL || d->mode == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory reading the DNS provider");
    if (dns_common_fields(body, d, err) != 0)
        return -1;
    return dns_mode_fields(body, d, secret, err);
}

int ck_api_dns_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_dns_provider d = {0};
    const char *secret = NULL;
    if (ck_http_body_object(r, &body, err) != 0 || dns_from_body(r, body, &d, &secret, err) != 0)
        goto cleanup;
    struct secret_seal seal = {.mk = &r->daemon->master_key,
                               .kind = "dns",
                               .what = "tsig",
                               .aad_name = "tsig",
                               .secret = secret};
    if (ck_store_dns_create(r->daemon->store, &d, seal_secret, &seal, err) != 0)
        goto cleanup;
    ck_dns_provider_free(&d);
    if (ck_store_dns_get(r->daemon->store, r->caller.tenant_id,
                         json_string_value(json_object_get(body, "name")), &d, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, dns_json(&d));
    rc = 0;
cleanup:
    ck_dns_provider_free(&d);
    json_decref(body);
    return rc;
}

int ck_api_dns_list(struct ck_request *r, ck_error *err)
{
    struct ck_dns_provider *list = NULL;
    size_t n = 0;
    if (ck_store_dns_list(r->daemon->store, r->caller.tenant_id, &list, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, dns_json(&list[i]));
    ck_dns_provider_array_free(list, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "dns", items) : NULL);
    return 0;
}

int ck_api_dns_get(struct ck_request *r, ck_error *err)
{
    const char *name;
    struct ck_dns_provider d = {0};
    if (param_name(r, "DNS provider", &name, err) != 0 ||
        ck_store_dns_get(r->daemon->store, r->caller.tenant_id, name, &d, err) != 0)
        return -1;
    ck_http_reply_json(r, 200, dns_json(&d));
    ck_dns_provider_free(&d);
    return 0;
}

int ck_api_dns_delete(struct ck_request *r, ck_error *err)
{
    const char *name;
    if (param_name(r, "DNS provider", &name, err) != 0 ||
        ck_store_dns_delete(r->daemon->store, r->caller.tenant_id, name, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}

/* ---- enrollments and orders ---- */

static int acme_choice_check(struct ck_request *r, const struct ck_enrollment *e, ck_error *err)
{
    struct ck_dns_provider d = {0};
    if (e->challenge == NULL)
        return ck_error_set(err, 400, "missing_field",
                            "issuer %s is an ACME CA: choose a challenge, dns-01 or http-01",
                            e->issuer);
    if (strcmp(e->challenge, "dns-01") != 0) {
        if (e->dns != NULL)
            return ck_error_set(err, 400, "invalid_field",
                                "dns names a DNS provider for dns-01; the challenge is %s",
                                e->challenge);
        return 0;
    }
    if (e->dns == NULL)
        return ck_error_set(err, 400, "missing_field",
                            "dns-01 needs a DNS provider: give dns (certkeep dns list)");
    if (ck_store_dns_get(r->daemon->store, r->caller.tenant_id, e->dns, &d, err) != 0) {
        if (err->status == 404)
            ck_error_set(err, 400, "unknown_dns",
                         "there is no DNS provider named \"%.64s\"; create it with certkeep dns "
                         "create",
                         e->dns);
        return -1;
    }
    ck_dns_provider_free(&d);
    return 0;
}

int ck_api_enrollment_issuer_check(struct ck_request *r, const struct ck_enrollment *e,
                                   ck_error *err)
{
    struct ck_issuer is = {0};
    int rc = -1;
    if (e->issuer == NULL || strcmp(e->issuer, "manual") == 0) {
        is.type = NULL;
    } else if (ck_store_issuer_get(r->daemon->store, r->caller.tenant_id, e->issuer, &is, err) !=
               0) {
        if (err->status == 404)
            ck_error_set(err, 400, "unknown_issuer",
                         "there is no issuer named \"%.64s\": use manual or one of certkeep "
                         "issuer list",
                         e->issuer);
        goto cleanup;
    }
    if (is.type != NULL && strcmp(is.type, "acme") == 0) {
        rc = acme_choice_check(r, e, err);
        goto cleanup;
    }
    if (e->challenge != NULL || e->dns != NULL) {
        ck_error_set(err, 400, "invalid_field",
                     "%s is for ACME issuers only; issuer %s takes no challenge",
                     e->challenge != NULL ? "challenge" : "dns", e->issuer ? e->issuer : "manual");
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_issuer_free(&is);
    return rc;
}

int ck_api_order_dns_published(struct ck_request *r, ck_error *err)
{
    int64_t id, job_id;
    struct ck_order o = {0};
    int rc = -1;
    if (ck_http_param_id(r, 0, "order", &id, err) != 0 ||
        ck_store_order_get(r->daemon->store, r->caller.tenant_id, id, &o, err) != 0)
        goto cleanup;
    if (o.state != CK_ORDER_PENDING_VALIDATION) {
        ck_error_set(err, 409, "order_not_pending_validation",
                     "order %lld is %s: DNS records are confirmed while it is pending_validation",
                     (long long)o.id, ck_order_state_name(o.state));
        goto cleanup;
    }
    if (ck_store_job_enqueue(r->daemon->store, r->caller.tenant_id, o.id, CK_JOB_ISSUE,
                             "{\"dns_published\":true}", &job_id, err) != 0)
        goto cleanup;
    ck_job_runner_wake(r->daemon->runner);
    json_t *order = ck_order_json_get(r->daemon->store, r->caller.tenant_id, o.id, err);
    if (order == NULL)
        goto cleanup;
    ck_http_reply_json(r, 202, order);
    rc = 0;
cleanup:
    ck_order_free(&o);
    return rc;
}
