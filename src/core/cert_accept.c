#include "core/cert_accept.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "crypto/x509info.h"

/* What an accepted certificate writes on the order; every string owned. */
struct accepted {
    char *cert_pem;
    char *chain_pem;
    char *findings_json;
    int64_t not_after;
};

static void accepted_free(struct accepted *a)
{
    free(a->cert_pem);
    free(a->chain_pem);
    free(a->findings_json);
    memset(a, 0, sizeof(*a));
}

X509_STORE *ck_cert_trust_store(struct ck_store *st, int64_t tenant_id,
                                const STACK_OF(X509) * system_roots, const char *extra_roots_pem,
                                ck_error *err)
{
    struct ck_root *roots = NULL;
    size_t n = 0;
    char *pems = NULL;
    size_t len = 0;
    X509_STORE *trust = NULL;
    if (ck_store_root_list(st, tenant_id, &roots, &n, err) != 0)
        return NULL;
    FILE *out = open_memstream(&pems, &len);
    for (size_t i = 0; out != NULL && i < n; i++)
        fprintf(out, "%s\n", roots[i].pem);
    if (out != NULL && extra_roots_pem != NULL)
        fprintf(out, "%s\n", extra_roots_pem);
    if (out == NULL || fclose(out) != 0)
        ck_error_set(err, 500, "out_of_memory", "out of memory reading the tenant's roots");
    else
        trust = system_roots != NULL ? ck_trust_store_with(system_roots, pems, err)
                                     : ck_trust_store_new(pems, err);
    free(pems);
    ck_root_array_free(roots, n);
    return trust;
}

/* The order's key, public part used only; NULL with no error for an uploaded CSR's order,
 * whose key certkeep never held. */
static int order_key(const ck_master_key *mk, const struct ck_order *o, EVP_PKEY **key,
                     ck_error *err)
{
    char aad[64];
    *key = NULL;
    if (o->csr_uploaded)
        return 0;
    if (o->sealed_key == NULL)
        return ck_error_set(err, 500, "key_missing", "order %lld has no key stored",
                            (long long)o->id);
    ck_order_key_aad(o->id, aad, sizeof(aad));
    *key = ck_unseal_private_key(mk, aad, o->sealed_key, o->sealed_key_len, err);
    return *key != NULL ? 0 : -1;
}

int ck_cert_check(struct ck_store *st, const ck_master_key *mk, const struct ck_order *o,
                  const struct ck_cert_offer *offer, struct ck_import_result *res, ck_error *err)
{
    int rc = -1;
    X509_STORE *trust = NULL;
    EVP_PKEY *key = NULL;
    if (o->csr_pem == NULL) {
        ck_error_set(err, 500, "csr_missing", "order %lld has no CSR to check against",
                     (long long)o->id);
        goto cleanup;
    }
    if ((trust = ck_cert_trust_store(st, o->tenant_id, offer->system_roots, offer->extra_roots_pem,
                                     err)) == NULL ||
        order_key(mk, o, &key, err) != 0)
        goto cleanup;
    const struct ck_import_input in = {.cert_pem = offer->cert_pem,
                                       .cert_len = strlen(offer->cert_pem),
                                       .chain_pem = offer->chain_pem,
                                       .chain_len = offer->chain_pem ? strlen(offer->chain_pem) : 0,
                                       .csr_pem = o->csr_pem,
                                       .order_key = key,
                                       .trust = trust,
                                       .now = offer->now};
    rc = ck_import_check(&in, res, err);
cleanup:
    EVP_PKEY_free(key);
    X509_STORE_free(trust);
    return rc;
}

static char *x509_pem(X509 *const *certs, int n)
{
    BIO *out = BIO_new(BIO_s_mem());
    char *data = NULL, *text = NULL;
    int ok = out != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(out, certs[i]) == 1;
    long len = ok ? BIO_get_mem_data(out, &data) : 0;
    if (ok)
        text = strndup(data ? data : "", (size_t)len);
    BIO_free(out);
    return text;
}

static int accepted_from(const struct ck_import_result *res, struct accepted *a, ck_error *err)
{
    struct ck_cert_info info = {0};
    int n = sk_X509_num(res->chain);
    X509 **chain = calloc((size_t)n + 1, sizeof(*chain));
    json_t *findings = ck_import_result_to_json(res);
    for (int i = 0; chain != NULL && i < n; i++)
        chain[i] = sk_X509_value(res->chain, i);
    a->cert_pem = x509_pem(&res->leaf, 1);
    a->chain_pem = chain != NULL ? x509_pem(chain, n) : NULL;
    a->findings_json = findings != NULL ? json_dumps(findings, JSON_COMPACT) : NULL;
    int rc = ck_cert_info_from_x509(res->leaf, &info, err);
    a->not_after = info.not_after;
    ck_cert_info_free(&info);
    free(chain);
    json_decref(findings);
    if (rc == 0 && (a->cert_pem == NULL || a->chain_pem == NULL || a->findings_json == NULL))
        rc = ck_error_set(err, 500, "out_of_memory", "out of memory storing the certificate");
    return rc;
}

int ck_cert_accept_import(struct ck_store *st, const struct ck_order *o, enum ck_order_state from,
                          const struct ck_import_result *res, const struct ck_import_log *log,
                          int64_t *import_job_id, ck_error *err)
{
    struct accepted a = {0};
    char message[CK_ERROR_MSG_MAX];
    bool warned = res->warnings.len > 0;
    int rc = -1;
    if (res->errors.len > 0 || res->leaf == NULL) {
        ck_error_set(err, 500, "certificate_refused",
                     "order %lld: a refused certificate cannot be accepted", (long long)o->id);
        goto cleanup;
    }
    if (accepted_from(res, &a, err) != 0)
        goto cleanup;
    if (warned)
        snprintf(message, sizeof(message),
                 "the certificate for order %lld (%s) has %zu warning%s to acknowledge: "
                 "certkeep order ack %lld",
                 (long long)o->id, o->enrollment_name ? o->enrollment_name : "?", res->warnings.len,
                 res->warnings.len == 1 ? "" : "s", (long long)o->id);
    else
        snprintf(message, sizeof(message), "the certificate for order %lld (%s) is issued",
                 (long long)o->id, o->enrollment_name ? o->enrollment_name : "?");
    const struct ck_order_update update = {.cert_pem = a.cert_pem,
                                           .chain_pem = a.chain_pem,
                                           .findings_json = a.findings_json,
                                           .cert_not_after = a.not_after};
    const struct ck_event_new event = {.type = warned ? "warnings_to_acknowledge"
                                                      : "certificate_issued",
                                       .enrollment_id = o->enrollment_id,
                                       .order_id = o->id,
                                       .message = message};
    enum ck_order_state to = warned ? CK_ORDER_AWAITING_ACK : CK_ORDER_ISSUED;
    if (log != NULL)
        rc = ck_store_import_accept(st, o->tenant_id, o->id, log, from, to, &update, &event,
                                    import_job_id, err);
    else
        rc = ck_store_order_transition(st, o->tenant_id, o->id, from, to, &update, &event, err);
cleanup:
    accepted_free(&a);
    return rc;
}

int ck_cert_accept(struct ck_store *st, const struct ck_order *o, enum ck_order_state from,
                   const struct ck_import_result *res, ck_error *err)
{
    return ck_cert_accept_import(st, o, from, res, NULL, NULL, err);
}

void ck_cert_finding_line(const struct ck_import_result *res, size_t i, const char **level,
                          char *buf, size_t len)
{
    bool is_error = i < res->errors.len;
    const struct ck_finding *f =
        is_error ? &res->errors.items[i] : &res->warnings.items[i - res->errors.len];
    *level = is_error ? "error" : "warn";
    snprintf(buf, len, "%s: %s", f->code, f->message);
}
