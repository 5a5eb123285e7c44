/* Enrollments: create (with pre-fill), list, show, update, delete. */
#include "core/names.h"
#include "server/api_issuers.h"
#include "server/server.h"

/* The {name} of the path; a name that could never exist is simply not found. */
static int param_name(struct ck_request *r, const char **out, ck_error *err)
{
    *out = r->params[0];
    if (*out == NULL || !ck_resource_name_valid(*out))
        return ck_error_set(err, 404, "not_found", "no such enrollment");
    return 0;
}

int ck_api_enrollment_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    struct ck_input_errors errs = {0};
    if (ck_http_body_object(r, &body, err) != 0)
        goto cleanup;
    /* A from_host pre-fill holds the event loop for at most CK_PREFILL_TIMEOUT_MS. */
    if (ck_enrollment_input_create(body, ck_http_query(r, "from_host"), &e, &errs) != 0) {
        ck_http_reply_input_errors(r, &errs);
        rc = 0;
        goto cleanup;
    }
    e.tenant_id = r->caller.tenant_id;
    if (ck_api_enrollment_issuer_check(r, &e, err) != 0 ||
        ck_store_enrollment_create(r->daemon->store, &e, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, ck_enrollment_to_json(&e));
    rc = 0;
cleanup:
    json_decref(body);
    ck_enrollment_free(&e);
    ck_input_errors_free(&errs);
    return rc;
}

int ck_api_enrollment_list(struct ck_request *r, ck_error *err)
{
    struct ck_enrollment *list = NULL;
    size_t n = 0;
    if (ck_store_enrollment_list(r->daemon->store, r->caller.tenant_id, &list, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, ck_enrollment_to_json(&list[i]));
    ck_enrollment_array_free(list, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "enrollments", items) : NULL);
    return 0;
}

int ck_api_enrollment_get(struct ck_request *r, ck_error *err)
{
    const char *name;
    struct ck_enrollment e = {0};
    if (param_name(r, &name, err) != 0 ||
        ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0)
        return -1;
    ck_http_reply_json(r, 200, ck_enrollment_to_json(&e));
    ck_enrollment_free(&e);
    return 0;
}

int ck_api_enrollment_update(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    const char *name;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    struct ck_input_errors errs = {0};
    if (param_name(r, &name, err) != 0 || ck_http_body_object(r, &body, err) != 0 ||
        ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0)
        goto cleanup;
    if (ck_enrollment_input_update(body, &e, &errs) != 0) {
        ck_http_reply_input_errors(r, &errs);
        rc = 0;
        goto cleanup;
    }
    if (ck_api_enrollment_issuer_check(r, &e, err) != 0 ||
        ck_store_enrollment_update(r->daemon->store, &e, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 200, ck_enrollment_to_json(&e));
    rc = 0;
cleanup:
    json_decref(body);
    ck_enrollment_free(&e);
    ck_input_errors_free(&errs);
    return rc;
}

int ck_api_enrollment_delete(struct ck_request *r, ck_error *err)
{
    const char *name;
    if (param_name(r, &name, err) != 0 ||
        ck_store_enrollment_delete(r->daemon->store, r->caller.tenant_id, name, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}
