/* Orders: start one (queues its csr job), list, show, download the CSR, cancel. */
#include <string.h>

#include "core/names.h"
#include "crypto/x509info.h"
#include "server/server.h"

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
    if (j == NULL)
        ck_error_set(err, 500, "out_of_memory", "out of memory writing the order");
    return j;
}

static int reply_order(struct ck_request *r, int status, int64_t id, ck_error *err)
{
    struct ck_order o = {0};
    if (ck_store_order_get(r->daemon->store, r->caller.tenant_id, id, &o, err) != 0)
        return -1;
    json_t *j = order_json(r->daemon->store, &o, err);
    ck_order_free(&o);
    if (j == NULL)
        return -1;
    ck_http_reply_json(r, status, j);
    return 0;
}

int ck_api_order_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    int64_t order_id, job_id;
    const char *name = r->params[0];
    if (name == NULL || !ck_resource_name_valid(name)) {
        ck_error_set(err, 404, "not_found", "no such enrollment");
        goto cleanup;
    }
    if (ck_http_body_object(r, &body, err) != 0 || ck_json_only_keys(body, NULL, 0, err) != 0 ||
        ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0 ||
        ck_store_order_create(r->daemon->store, r->caller.tenant_id, e.id, &order_id, &job_id,
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
    if (ck_store_order_list(r->daemon->store, r->caller.tenant_id, &f, &orders, &n, err) != 0)
        return -1;
    int rc = 0;
    json_t *items = json_array();
    for (size_t i = 0; rc == 0 && items != NULL && i < n; i++) {
        json_t *j = order_json(r->daemon->store, &orders[i], err);
        rc = j != NULL ? json_array_append_new(items, j) : -1;
    }
    ck_order_array_free(orders, n);
    if (rc != 0) {
        json_decref(items);
        return -1;
    }
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "orders", items) : NULL);
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
