/* Jobs: list with filters, show with the log, download artifacts again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "server/server.h"

#define ARTIFACT_NAME_MAX 32

static json_t *job_json(const struct ck_job *j)
{
    json_t *artifacts = json_array();
    for (size_t i = 0; artifacts != NULL && i < j->artifacts.len; i++)
        json_array_append_new(artifacts, json_string(j->artifacts.items[i]));
    return json_pack(
        "{s:I,s:s,s:s,s:s?,s:o,s:o,s:o,s:o,s:s?,s:o}", "id", (json_int_t)j->id, "type",
        ck_job_type_name(j->type), "state", ck_job_state_name(j->state), "enrollment",
        j->enrollment_name, "order_id", j->order_id > 0 ? json_integer(j->order_id) : json_null(),
        "created_at", ck_time_json(j->created_at), "started_at", ck_time_json(j->started_at),
        "finished_at", ck_time_json(j->finished_at), "error", j->error, "artifacts", artifacts);
}

static int job_filter(struct ck_request *r, struct ck_job_filter *f, ck_error *err)
{
    const char *state = ck_http_query(r, "state");
    const char *type = ck_http_query(r, "type");
    const char *order = ck_http_query(r, "order");
    enum ck_job_state s;
    enum ck_job_type t;
    *f = (struct ck_job_filter){.state = -1, .type = -1};
    f->enrollment = ck_http_query(r, "enrollment");
    if (state != NULL) {
        if (ck_job_state_parse(state, &s, err) != 0)
            return -1;
        f->state = (int)s;
    }
    if (type != NULL) {
        if (ck_job_type_parse(type, &t, err) != 0)
            return -1;
        f->type = (int)t;
    }
    size_t digits = order != NULL ? strspn(order, "0123456789") : 0;
    if (order != NULL && (digits == 0 || digits > 18 || order[digits] != '\0'))
        return ck_error_set(err, 400, "invalid_field", "order must be an order id");
    if (order != NULL)
        f->order_id = strtoll(order, NULL, 10);
    return 0;
}

int ck_api_job_list(struct ck_request *r, ck_error *err)
{
    struct ck_job_filter f;
    struct ck_page page;
    struct ck_job *jobs = NULL;
    size_t n = 0;
    if (job_filter(r, &f, err) != 0 || ck_http_page(r, false, &page, err) != 0 ||
        ck_store_job_list_page(r->daemon->store, r->caller.tenant_id, &f, &page, &jobs, &n, err) !=
            0)
        return -1;
    json_t *next = ck_http_page_next(&page, NULL, n > 0 ? jobs[n - 1].id : 0);
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, job_json(&jobs[i]));
    ck_job_array_free(jobs, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o,s:o}", "jobs", items, "next", next) : NULL);
    return 0;
}

static json_t *log_json(const struct ck_job_log_line *lines, size_t n)
{
    json_t *log = json_array();
    for (size_t i = 0; log != NULL && i < n; i++)
        json_array_append_new(log, json_pack("{s:o,s:s,s:s}", "at", ck_time_json(lines[i].at),
                                             "level", lines[i].level, "message", lines[i].message));
    return log;
}

int ck_api_job_get(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    int64_t id;
    struct ck_job job = {0};
    struct ck_job_log_line *lines = NULL;
    size_t n = 0;
    if (ck_http_param_id(r, 0, "job", &id, err) != 0 ||
        ck_store_job_get(r->daemon->store, r->caller.tenant_id, id, &job, err) != 0 ||
        ck_store_job_log_lines(r->daemon->store, r->caller.tenant_id, id, &lines, &n, err) != 0)
        goto cleanup;
    json_t *j = job_json(&job);
    if (j != NULL)
        json_object_set_new(j, "log", log_json(lines, n));
    ck_http_reply_json(r, 200, j);
    rc = 0;
cleanup:
    ck_job_free(&job);
    ck_job_log_lines_free(lines, n);
    return rc;
}

/* Artifact names are short identifiers, so they are safe inside a Content-Disposition. */
static bool artifact_name_valid(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    return len > 0 && len <= ARTIFACT_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

int ck_api_job_artifact(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    int64_t id;
    struct ck_job job = {0};
    char *content_type = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    const char *name = r->params[1];
    if (ck_http_param_id(r, 0, "job", &id, err) != 0)
        goto cleanup;
    if (!artifact_name_valid(name)) {
        ck_error_set(err, 404, "not_found", "job %lld has no such artifact", (long long)id);
        goto cleanup;
    }
    if (ck_store_job_get(r->daemon->store, r->caller.tenant_id, id, &job, err) != 0 ||
        ck_store_job_artifact_get(r->daemon->store, r->caller.tenant_id, id, name, &content_type,
                                  &data, &len, err) != 0)
        goto cleanup;
    char disposition[160];
    if (job.enrollment_name != NULL && job.order_id > 0)
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s-%lld.%s\"",
                 job.enrollment_name, (long long)job.order_id, name);
    else
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"job-%lld.%s\"",
                 (long long)job.id, name);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
                      disposition);
    ck_http_reply_bytes(r, 200, content_type ? content_type : "application/octet-stream", data,
                        len);
    rc = 0;
cleanup:
    ck_job_free(&job);
    free(content_type);
    free(data);
    return rc;
}
