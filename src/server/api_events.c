/* Events a tenant polls (seed 001's PollInfo / PollConfirm) and their history. */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define EVENT_HISTORY_MAX 500

static json_t *event_json(const struct ck_event *ev)
{
    json_t *data = ev->data_json ? json_loads(ev->data_json, 0, NULL) : NULL;
    return json_pack("{s:I,s:s,s:s?,s:o,s:s?,s:o,s:o,s:o}", "id", (json_int_t)ev->id, "type",
                     ev->type ? ev->type : "", "enrollment", ev->enrollment_name, "order_id",
                     ev->order_id > 0 ? json_integer(ev->order_id) : json_null(), "message",
                     ev->message, "data", data ? data : json_null(), "created_at",
                     ck_time_json(ev->created_at), "confirmed_at", ck_time_json(ev->confirmed_at));
}

int ck_api_poll(struct ck_request *r, ck_error *err)
{
    struct ck_event ev = {0};
    int64_t remaining = 0;
    int found = ck_store_event_poll(r->daemon->store, r->caller.tenant_id, &ev, &remaining, err);
    if (found < 0)
        return -1;
    json_t *event = found ? event_json(&ev) : json_null();
    ck_event_free(&ev);
    ck_http_reply_json(r, 200,
                       event ? json_pack("{s:o,s:I}", "event", event, "remaining",
                                         (json_int_t)(found ? remaining : 0))
                             : NULL);
    return 0;
}

int ck_api_poll_confirm(struct ck_request *r, ck_error *err)
{
    int64_t id;
    json_t *body = NULL;
    int rc = -1;
    if (ck_http_param_id(r, 0, "event", &id, err) != 0 || ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, NULL, 0, err) != 0 ||
        ck_store_event_confirm(r->daemon->store, r->caller.tenant_id, id, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 200, json_pack("{s:I}", "confirmed", (json_int_t)id));
    rc = 0;
cleanup:
    json_decref(body);
    return rc;
}

int ck_api_event_list(struct ck_request *r, ck_error *err)
{
    const char *order = ck_http_query(r, "order");
    int64_t order_id = 0;
    size_t digits = order != NULL ? strspn(order, "0123456789") : 0;
    if (order != NULL && (digits == 0 || digits > 18 || order[digits] != '\0'))
        return ck_error_set(err, 400, "invalid_field", "order must be an order id");
    if (order != NULL)
        order_id = strtoll(order, NULL, 10);
    struct ck_event *events = NULL;
    size_t n = 0;
    if (ck_store_event_list(r->daemon->store, r->caller.tenant_id, order_id, EVENT_HISTORY_MAX,
                            &events, &n, err) != 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, event_json(&events[i]));
    ck_event_array_free(events, n);
    ck_http_reply_json(r, 200, items ? json_pack("{s:o}", "events", items) : NULL);
    return 0;
}
