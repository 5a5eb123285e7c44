/* Enrollments: create (with pre-fill), list, show, update, delete. */
#include "common/clock.h"
#include "common/log.h"
#include "core/names.h"
#include "server/api_issuers.h"
#include "server/prefill.h"
#include "server/server.h"

/* The {name} of the path; a name that could never exist is simply not found. */
static int param_name(struct ck_request *r, const char **out, ck_error *err)
{
    *out = r->params[0];
    if (*out == NULL || !ck_resource_name_valid(*out))
        return ck_error_set(err, 404, "not_found", "no such enrollment");
    return 0;
}

/* The part of a create after the input was read, on the event loop: the store's checks, the
 * insert, the answer. */
static void create_finish(struct ck_request *r, int input_rc, struct ck_enrollment *e,
                          struct ck_input_errors *errs)
{
    ck_error err = {0};
    if (input_rc != 0) {
        ck_http_reply_input_errors(r, errs);
        return;
    }
    e->tenant_id = r->caller.tenant_id;
    if (ck_api_enrollment_issuer_check(r, e, &err) != 0 ||
        ck_store_enrollment_create(r->daemon->store, e, &err) != 0) {
        if (err.status >= 500)
            ck_log(CK_LOG_ERROR, "POST /v1/enrollments: %s %s", err.code, err.message);
        ck_http_reply_error(r, &err);
        return;
    }
    ck_http_reply_json(r, 201, ck_enrollment_to_json(e));
}

int ck_api_enrollment_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    struct ck_input_errors errs = {0};
    if (ck_http_body_object(r, &body, err) != 0)
        goto cleanup;
    const char *from_host_query = ck_http_query(r, "from_host");
    /* A pre-fill from a live host may take CK_PREFILL_TIMEOUT_MS: off the loop (prefill.h). */
    if (ck_enrollment_input_needs_network(body, from_host_query)) {
        rc = ck_prefill_start(r->daemon->prefill, r, body, from_host_query, create_finish, err);
        goto cleanup;
    }
    int input_rc = ck_enrollment_input_create(body, from_host_query, &e, &errs);
    create_finish(r, input_rc, &e, &errs);
    rc = 0;
cleanup:
    json_decref(body);
    ck_enrollment_free(&e);
    ck_input_errors_free(&errs);
    return rc;
}

int ck_api_enrollment_list(struct ck_request *r, ck_error *err)
{
    struct ck_page page;
    struct ck_enrollment *list = NULL;
    size_t n = 0;
    if (ck_http_page(r, true, &page, err) != 0 ||
        ck_store_enrollment_list_page(r->daemon->store, r->caller.tenant_id, &page, &list, &n,
                                      err) != 0)
        return -1;
    json_t *next = ck_http_page_next(&page, n > 0 ? list[n - 1].name : NULL, 0);
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, ck_enrollment_to_json(&list[i]));
    ck_enrollment_array_free(list, n);
    ck_http_reply_json(r, 200,
                       items ? json_pack("{s:o,s:o}", "enrollments", items, "next", next) : NULL);
    return 0;
}

static json_t *time_or_null(int64_t t)
{
    char text[32];
    if (t == 0)
        return json_null();
    ck_time_format(t, text, sizeof(text));
    return json_string(text);
}

/* What the production certificate's CA last said about renewing it (RFC 9773), or null. */
static json_t *renewal_info_json(struct ck_request *r, int64_t production_order_id, ck_error *err)
{
    struct ck_ari_status a = {0};
    int found = production_order_id != 0
                    ? ck_store_ari_get(r->daemon->store, production_order_id, &a, err)
                    : 0;
    if (found <= 0)
        return found < 0 ? NULL : json_null();
    json_t *window = a.has_window ? json_pack("{s:o,s:o}", "start", time_or_null(a.window_start),
                                              "end", time_or_null(a.window_end))
                                  : json_null();
    json_t *info = json_pack("{s:s?,s:b,s:o,s:s?,s:s?,s:o,s:o}", "cert_id", a.cert_id, "offered",
                             a.offered, "window", window, "explanation_url", a.explanation_url,
                             "last_error", a.last_error, "checked_at", time_or_null(a.checked_at),
                             "next_check_at", time_or_null(a.next_check_at));
    ck_ari_status_free(&a);
    if (info == NULL)
        ck_error_set(err, 500, "out_of_memory", "out of memory");
    return info;
}

int ck_api_enrollment_get(struct ck_request *r, ck_error *err)
{
    const char *name;
    struct ck_enrollment e = {0};
    if (param_name(r, &name, err) != 0 ||
        ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0)
        return -1;
    json_t *doc = ck_enrollment_to_json(&e);
    json_t *info = renewal_info_json(r, e.production_order_id, err);
    if (info == NULL) {
        json_decref(doc);
        ck_enrollment_free(&e);
        return -1;
    }
    json_object_set_new(doc, "renewal_info", info);
    ck_http_reply_json(r, 200, doc);
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
