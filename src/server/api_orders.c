/* Orders: start one (queues its csr job, or from an uploaded CSR), list, show, download the
 * CSR, cancel. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/clock.h"
#include "core/names.h"
#include "crypto/x509info.h"
#include "core/issue_job.h"
#include "server/server.h"

/* Each list of problems with an uploaded CSR stays readable. */
#define CSR_PROBLEMS_MAX 20

static json_t *order_csr_json(const struct ck_order *o)
{
    if (o->csr_pem == NULL)
        return json_null();
    struct ck_csr_info info = {0};
    json_t *j = NULL;
    if (ck_csr_info_from_pem(o->csr_pem, strlen(o->csr_pem), &info, NULL) == 0)
        j = ck_csr_info_to_json(&info);
    ck_csr_info_free(&info);
    return j != NULL ? j : json_null();
}

static json_t *order_cert_json(const struct ck_order *o)
{
    if (o->cert_pem == NULL)
        return json_null();
    struct ck_cert_info info = {0};
    json_t *j = NULL;
    if (ck_cert_info_from_pem(o->cert_pem, strlen(o->cert_pem), &info, NULL) == 0)
        j = ck_cert_info_to_json(&info, ck_clock_now());
    ck_cert_info_free(&info);
    return j != NULL ? j : json_null();
}

/* findings_json's list under key ("errors" or "warnings"); [] when there is none. */
static json_t *order_findings_json(const struct ck_order *o, const char *key)
{
    json_t *doc = o->findings_json ? json_loads(o->findings_json, 0, NULL) : NULL;
    json_t *list = json_object_get(doc, key);
    list = json_is_array(list) ? json_incref(list) : json_array();
    json_decref(doc);
    return list;
}

static json_t *order_jobs_json(struct ck_store *st, const struct ck_order *o, ck_error *err)
{
    struct ck_job_filter f = {.state = -1, .type = -1, .order_id = o->id};
    struct ck_job *jobs = NULL;
    size_t n = 0;
    if (ck_store_job_list(st, o->tenant_id, &f, &jobs, &n, err) != 0)
        return NULL;
    json_t *ids = json_array();
    for (size_t i = 0; ids != NULL && i < n; i++)
        json_array_append_new(ids, json_integer(jobs[i].id));
    ck_job_array_free(jobs, n);
    return ids;
}

/* The docs/API.md order JSON; NULL with err set on failure. */
static json_t *order_json(struct ck_store *st, const struct ck_order *o, ck_error *err)
{
    json_t *jobs = order_jobs_json(st, o, err);
    if (jobs == NULL)
        return NULL;
    json_t *j =
        json_pack("{s:I,s:s?,s:s,s:s,s:b,s:o,s:s?,s:o,s:o,s:o}", "id", (json_int_t)o->id,
                  "enrollment", o->enrollment_name, "state", ck_order_state_name(o->state),
                  "key_type", ck_key_type_name(o->key_type), "has_key", o->sealed_key != NULL,
                  "csr", order_csr_json(o), "error", o->error, "jobs", jobs, "created_at",
                  ck_time_json(o->created_at), "updated_at", ck_time_json(o->updated_at));
    if (j != NULL &&
        (json_object_set_new(j, "csr_uploaded", json_boolean(o->csr_uploaded)) != 0 ||
         json_object_set_new(j, "certificate", order_cert_json(o)) != 0 ||
         json_object_set_new(j, "errors", order_findings_json(o, "errors")) != 0 ||
         json_object_set_new(j, "warnings", order_findings_json(o, "warnings")) != 0 ||
         json_object_set_new(j, "validation", ck_issue_validation_json(o->acme_state_json)) != 0 ||
         json_object_set_new(j, "not_after", ck_time_json(o->cert_not_after)) != 0 ||
         json_object_set_new(j, "staged_at", ck_time_json(o->staged_at)) != 0 ||
         json_object_set_new(j, "staging_acked_at", ck_time_json(o->staging_acked_at)) != 0 ||
         json_object_set_new(j, "deploy_not_before", ck_time_json(o->deploy_not_before)) != 0 ||
         json_object_set_new(j, "deployed_at", ck_time_json(o->deployed_at)) != 0)) {
        json_decref(j);
        j = NULL;
    }
    if (j == NULL)
        ck_error_set(err, 500, "out_of_memory", "out of memory writing the order");
    return j;
}

json_t *ck_order_json_get(struct ck_store *st, int64_t tenant_id, int64_t id, ck_error *err)
{
    struct ck_order o = {0};
    if (ck_store_order_get(st, tenant_id, id, &o, err) != 0)
        return NULL;
    json_t *j = order_json(st, &o, err);
    ck_order_free(&o);
    return j;
}

static int reply_order(struct ck_request *r, int status, int64_t id, ck_error *err)
{
    json_t *j = ck_order_json_get(r->daemon->store, r->caller.tenant_id, id, err);
    if (j == NULL)
        return -1;
    ck_http_reply_json(r, status, j);
    return 0;
}

/* Adds a problem with an uploaded CSR; the list stops growing at CSR_PROBLEMS_MAX. */
__attribute__((format(printf, 3, 4))) static void
csr_problem(struct ck_input_errors *errs, const char *code, const char *fmt, ...)
{
    if (errs->count >= CSR_PROBLEMS_MAX)
        return;
    ck_error e = {.status = 400};
    snprintf(e.code, sizeof(e.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    ck_input_errors_add(errs, &e);
}

static void csr_check_name(const char *name, const char *what, struct ck_input_errors *errs)
{
    ck_error e = {0};
    char *copy = ck_strdup(name);
    if (copy == NULL)
        csr_problem(errs, "out_of_memory", "out of memory checking the CSR");
    else if (ck_hostname_check(copy, &e) != 0)
        csr_problem(errs, "invalid_hostname", "the CSR's %s: %s", what, e.message);
    free(copy);
}

static void csr_check_names(const struct ck_csr_info *info, struct ck_input_errors *errs)
{
    if (info->subject.cn == NULL && info->dns_sans.len == 0)
        csr_problem(errs, "invalid_csr", "the CSR names no host: it has no CN and no DNS SAN");
    if (info->subject.cn != NULL)
        csr_check_name(info->subject.cn, "CN", errs);
    for (size_t i = 0; i < info->dns_sans.len; i++)
        csr_check_name(info->dns_sans.items[i], "SAN", errs);
    for (size_t i = 0; i < info->ip_sans.len; i++)
        csr_problem(errs, "invalid_csr",
                    "the CSR's SAN %s is an IP address; certkeep manages DNS names only",
                    info->ip_sans.items[i]);
}

/* Checks the CSR's signature, key and names. `req` is the parsed request, `pem` its text. */
static void csr_check(X509_REQ *req, const char *pem, size_t len, enum ck_key_type *type,
                      struct ck_input_errors *errs)
{
    struct ck_csr_info info = {0};
    ck_error e = {0};
    char key_name[32];
    int bits = 0;
    if (ck_csr_info_from_pem(pem, len, &info, &e) != 0) {
        csr_problem(errs, "invalid_csr", "the CSR cannot be read: %s", e.message);
        return;
    }
    if (!info.signature_valid)
        csr_problem(errs, "csr_bad_signature",
                    "the CSR's signature does not verify with its own key: it was altered or "
                    "damaged; make it again");
    if (ck_key_describe(X509_REQ_get0_pubkey(req), key_name, &bits, type, &e) != 0)
        csr_problem(errs, "invalid_key_type", "the CSR's key: %s", e.message);
    csr_check_names(&info, errs);
    ck_csr_info_free(&info);
}

/* Reads an uploaded CSR. On success (errs->count == 0) *pem is its canonical PEM (any text
 * around the block dropped) and *type its key type; otherwise errs lists every problem. */
static void csr_upload_read(const char *text, char **pem, enum ck_key_type *type,
                            struct ck_input_errors *errs)
{
    BIO *in = BIO_new_mem_buf(text, -1), *out = BIO_new(BIO_s_mem());
    X509_REQ *req = in != NULL ? PEM_read_bio_X509_REQ(in, NULL, NULL, NULL) : NULL;
    char *data = NULL;
    long len = 0;
    if (req == NULL || out == NULL || PEM_write_bio_X509_REQ(out, req) != 1) {
        csr_problem(errs, "invalid_csr",
                    "csr is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
        goto cleanup;
    }
    len = BIO_get_mem_data(out, &data);
    csr_check(req, data, (size_t)len, type, errs);
    if (errs->count == 0 && (*pem = strndup(data, (size_t)len)) == NULL)
        csr_problem(errs, "out_of_memory", "out of memory reading the CSR");
cleanup:
    ERR_clear_error();
    X509_REQ_free(req);
    BIO_free(in);
    BIO_free(out);
}

/* 400 invalid_csr with every problem in details. */
static void reply_csr_refused(struct ck_request *r, const struct ck_input_errors *errs)
{
    ck_error e = {0};
    ck_error_set(&e, 400, "invalid_csr", "the CSR was refused: %s%s", errs->first.message,
                 errs->count > 1 ? " (and more problems: see details)" : "");
    ck_http_reply_error_details(r, &e, errs->details);
}

/* An order from an uploaded CSR starts in csr_ready: the user buys the certificate next.
 * Returns 1 when it answered the request itself (the CSR was refused). */
static int order_create_from_csr(struct ck_request *r, const struct ck_enrollment *e,
                                 const char *text, int64_t *order_id, ck_error *err)
{
    int rc = -1;
    char *pem = NULL;
    int64_t job_id;
    enum ck_key_type type = CK_KEY_RSA_2048;
    struct ck_input_errors errs = {0};
    char message[CK_ERROR_MSG_MAX];
    csr_upload_read(text, &pem, &type, &errs);
    if (errs.count > 0) {
        reply_csr_refused(r, &errs);
        rc = 1;
        goto cleanup;
    }
    snprintf(message, sizeof(message),
             "the CSR for %s was uploaded: buy a certificate with it and import it", e->cn);
    const struct ck_event_new needed = {
        .type = "certificate_needed", .enrollment_id = e->id, .message = message};
    rc = ck_store_order_create_from_csr(r->daemon->store, r->caller.tenant_id, e->id, type, pem,
                                        &needed, order_id, &job_id, err);
cleanup:
    free(pem);
    ck_input_errors_free(&errs);
    return rc;
}

int ck_api_order_create(struct ck_request *r, ck_error *err)
{
    static const char *const keys[] = {"csr"};
    int rc = -1;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    int64_t order_id = 0, job_id;
    const char *csr = NULL;
    const char *name = r->params[0];
    if (name == NULL || !ck_resource_name_valid(name)) {
        ck_error_set(err, 404, "not_found", "no such enrollment");
        goto cleanup;
    }
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(body, "csr", false, &csr, err) != 0 ||
        ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0)
        goto cleanup;
    if (csr != NULL) {
        rc = order_create_from_csr(r, &e, csr, &order_id, err);
        if (rc == 0)
            rc = reply_order(r, 201, order_id, err);
        rc = rc > 0 ? 0 : rc;
        goto cleanup;
    }
    if (ck_store_order_create(r->daemon->store, r->caller.tenant_id, e.id, &order_id, &job_id,
                              err) != 0)
        goto cleanup;
    ck_job_runner_wake(r->daemon->runner);
    rc = reply_order(r, 202, order_id, err);
cleanup:
    json_decref(body);
    ck_enrollment_free(&e);
    return rc;
}

int ck_api_order_list(struct ck_request *r, ck_error *err)
{
    struct ck_order_filter f = {.enrollment = ck_http_query(r, "enrollment"), .state = -1};
    const char *state = ck_http_query(r, "state");
    enum ck_order_state s;
    struct ck_order *orders = NULL;
    size_t n = 0;
    if (state != NULL) {
        if (ck_order_state_parse(state, &s, err) != 0)
            return -1;
        f.state = (int)s;
    }
    struct ck_page page;
    if (ck_http_page(r, false, &page, err) != 0 ||
        ck_store_order_list_page(r->daemon->store, r->caller.tenant_id, &f, &page, &orders, &n,
                                 err) != 0)
        return -1;
    json_t *next = ck_http_page_next(&page, NULL, n > 0 ? orders[n - 1].id : 0);
    int rc = 0;
    json_t *items = json_array();
    for (size_t i = 0; rc == 0 && items != NULL && i < n; i++) {
        json_t *j = order_json(r->daemon->store, &orders[i], err);
        rc = j != NULL ? json_array_append_new(items, j) : -1;
    }
    ck_order_array_free(orders, n);
    if (rc != 0) {
        json_decref(items);
        json_decref(next);
        return -1;
    }
    ck_http_reply_json(r, 200,
                       items ? json_pack("{s:o,s:o}", "orders", items, "next", next) : NULL);
    return 0;
}

int ck_api_order_get(struct ck_request *r, ck_error *err)
{
    int64_t id;
    if (ck_http_param_id(r, 0, "order", &id, err) != 0)
        return -1;
    return reply_order(r, 200, id, err);
}

int ck_api_order_csr(struct ck_request *r, ck_error *err)
{
    int64_t id;
    struct ck_order o = {0};
    if (ck_http_param_id(r, 0, "order", &id, err) != 0 ||
        ck_store_order_get(r->daemon->store, r->caller.tenant_id, id, &o, err) != 0)
        return -1;
    int rc = 0;
    if (o.csr_pem == NULL)
        rc = ck_error_set(err, 409, "csr_not_ready",
                          "order %lld has no CSR yet (state %s); try again in a moment",
                          (long long)o.id, ck_order_state_name(o.state));
    else
        ck_http_reply_bytes(r, 200, "application/pkcs10", o.csr_pem, strlen(o.csr_pem));
    ck_order_free(&o);
    return rc;
}

int ck_api_order_cancel(struct ck_request *r, ck_error *err)
{
    int64_t id;
    json_t *body = NULL;
    int rc = -1;
    if (ck_http_param_id(r, 0, "order", &id, err) != 0 || ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, NULL, 0, err) != 0 ||
        ck_store_order_cancel(r->daemon->store, r->caller.tenant_id, id, err) != 0)
        goto cleanup;
    rc = reply_order(r, 200, id, err);
cleanup:
    json_decref(body);
    return rc;
}
