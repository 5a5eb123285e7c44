/* probe.c — fetch what an endpoint serves, describe it, verify it (probe.h). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "core/probe.h"
#include "crypto/verify.h"

/* Longest host ck_fetch_peer_certificate accepts, plus room. */
#define PROBE_HOST_MAX 256

/* The host part of an endpoint ck_fetch_peer_certificate has already accepted. */
static void endpoint_host(const char *endpoint, char *host, size_t host_len)
{
    const char *start = endpoint;
    size_t len;
    if (endpoint[0] == '[') {
        start = endpoint + 1;
        const char *end = strchr(start, ']');
        len = end != NULL ? (size_t)(end - start) : strlen(start);
    } else {
        const char *colon = strchr(endpoint, ':');
        bool one_colon = colon != NULL && strchr(colon + 1, ':') == NULL;
        len = one_colon ? (size_t)(colon - endpoint) : strlen(endpoint);
    }
    if (len >= host_len)
        len = host_len - 1;
    memcpy(host, start, len);
    host[len] = '\0';
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* System roots (unless refused) followed by the extra ones, each with its own reference. */
static int trusted_roots(const struct ck_probe_request *req, STACK_OF(X509) * *out, ck_error *err)
{
    if (req->no_system_roots)
        *out = sk_X509_new_null();
    else if (ck_verify_load_system_roots(out, err) != 0)
        return -1;
    if (*out == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory loading trusted roots");
    for (int i = 0; i < sk_X509_num(req->extra_roots); i++) {
        X509 *root = sk_X509_value(req->extra_roots, i);
        if (X509_up_ref(root) != 1)
            return ck_error_set(err, 500, "out_of_memory", "out of memory loading trusted roots");
        if (sk_X509_push(*out, root) <= 0) {
            X509_free(root);
            return ck_error_set(err, 500, "out_of_memory", "out of memory loading trusted roots");
        }
    }
    return 0;
}

static int chain_entry_fill(X509 *cert, struct ck_probe_chain_entry *entry, ck_error *err)
{
    struct ck_cert_info info = {0};
    if (ck_cert_info_from_x509(cert, &info, err) != 0)
        return -1;
    entry->subject = ck_strdup(info.subject.text != NULL ? info.subject.text : "");
    entry->issuer = ck_strdup(info.issuer.text != NULL ? info.issuer.text : "");
    entry->not_after = info.not_after;
    ck_cert_info_free(&info);
    if (entry->subject == NULL || entry->issuer == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory describing a certificate");
    return 0;
}

/* The leaf and every certificate sent after it, in the order the server sent them. */
static int chain_fill(X509 *leaf, STACK_OF(X509) * sent, struct ck_probe_result *out, ck_error *err)
{
    size_t n = 1 + (size_t)sk_X509_num(sent);
    out->chain = calloc(n, sizeof(*out->chain));
    if (out->chain == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory describing a chain");
    for (size_t i = 0; i < n; i++) {
        X509 *cert = i == 0 ? leaf : sk_X509_value(sent, (int)i - 1);
        out->chain_len = i + 1;
        if (chain_entry_fill(cert, &out->chain[i], err) != 0)
            return -1;
    }
    return 0;
}

static int verify_served(const struct ck_probe_request *req, const char *host,
                         STACK_OF(X509) * sent, struct ck_probe_result *out, ck_error *err)
{
    int rc = -1;
    struct ck_verify_request vreq = {.leaf = out->leaf, .untrusted = sent};
    struct ck_verify_result vres = {0};
    if (trusted_roots(req, &vreq.roots, err) != 0)
        goto cleanup;
    if (out->sni != NULL)
        vreq.dns_name = out->sni;
    else if (is_ip_literal(host))
        vreq.ip = host;
    else
        vreq.dns_name = host;
    if (ck_verify_chain(&vreq, &vres, err) != 0)
        goto cleanup;
    out->chain_valid = vres.valid;
    if (ck_strv_copy(&out->chain_problems, &vres.reasons) != 0) {
        ck_error_set(err, 500, "out_of_memory", "out of memory copying the chain's problems");
        goto cleanup;
    }
    rc = 0;
cleanup:
    ck_verify_result_free(&vres);
    sk_X509_pop_free(vreq.roots, X509_free);
    return rc;
}

int ck_probe(const struct ck_probe_request *req, struct ck_probe_result *out, ck_error *err)
{
    int rc = -1;
    STACK_OF(X509) *sent = NULL;
    char host[PROBE_HOST_MAX];
    int timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : CK_PROBE_DEFAULT_TIMEOUT_MS;
    const char *asked_sni = req->sni != NULL && req->sni[0] != '\0' ? req->sni : NULL;
    if (req->endpoint == NULL)
        return ck_error_set(err, 400, "invalid_field", "an endpoint HOST:PORT is required");
    if (ck_fetch_peer_certificate(req->endpoint, asked_sni, timeout_ms, &out->leaf, &sent, err) !=
        0)
        goto cleanup;
    endpoint_host(req->endpoint, host, sizeof(host));
    /* What ck_fetch_peer_certificate sent: the host stands in for a missing SNI unless it is an
     * IP literal (RFC 6066 forbids IP addresses in SNI). */
    const char *sni = asked_sni != NULL || is_ip_literal(host) ? asked_sni : host;
    out->endpoint = ck_strdup(req->endpoint);
    out->sni = ck_strdup(sni);
    if (out->endpoint == NULL || (sni != NULL && out->sni == NULL)) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    if (ck_cert_info_from_x509(out->leaf, &out->certificate, err) != 0 ||
        chain_fill(out->leaf, sent, out, err) != 0 || verify_served(req, host, sent, out, err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    sk_X509_pop_free(sent, X509_free);
    return rc;
}

void ck_probe_result_free(struct ck_probe_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->chain_len; i++) {
        free(res->chain[i].subject);
        free(res->chain[i].issuer);
    }
    free(res->chain);
    free(res->endpoint);
    free(res->sni);
    ck_cert_info_free(&res->certificate);
    X509_free(res->leaf);
    ck_strv_free(&res->chain_problems);
    memset(res, 0, sizeof(*res));
}

static json_t *chain_to_json(const struct ck_probe_result *res)
{
    json_t *chain = json_array();
    for (size_t i = 0; chain != NULL && i < res->chain_len; i++) {
        char not_after[32];
        ck_time_format(res->chain[i].not_after, not_after, sizeof(not_after));
        if (json_array_append_new(
                chain, json_pack("{s:s, s:s, s:s}", "subject", res->chain[i].subject, "issuer",
                                 res->chain[i].issuer, "not_after", not_after)) != 0) {
            json_decref(chain);
            return NULL;
        }
    }
    return chain;
}

static json_t *strv_to_json(const ck_strv *v)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < v->len; i++) {
        if (json_array_append_new(array, json_string(v->items[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

json_t *ck_probe_result_to_json(const struct ck_probe_result *res, int64_t now)
{
    json_t *cert = ck_cert_info_to_json(&res->certificate, now);
    json_t *chain = chain_to_json(res);
    json_t *problems = strv_to_json(&res->chain_problems);
    if (cert == NULL || chain == NULL || problems == NULL) {
        json_decref(cert);
        json_decref(chain);
        json_decref(problems);
        return NULL;
    }
    /* "o" steals the three references, even when json_pack fails. */
    return json_pack("{s:s, s:s?, s:o, s:o, s:s, s:o}", "endpoint", res->endpoint, "sni", res->sni,
                     "certificate", cert, "chain", chain, "chain_status",
                     res->chain_valid ? "valid" : "invalid", "chain_problems", problems);
}
