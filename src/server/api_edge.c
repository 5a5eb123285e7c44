/* The edge API: GET /v1/edge, and an order's stage, ack-staging, deploy and rollback. Deploys
 * with a future not_before are done by ck_edge_deploy_due on the edge's timer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/edge_jobs.h"
#include "core/order_flow.h"
#include "edge/sni_table.h"
#include "server/server.h"

static const char *first_address(struct ck_daemon *d, enum ck_edge_kind kind)
{
    const ck_strv *v = ck_edge_runtime_addresses(d->edge, kind);
    return v->len > 0 ? v->items[0] : NULL;
}

static int order_param(struct ck_request *r, struct ck_order *o, ck_error *err)
{
    int64_t id;
    json_t *body = NULL;
    int rc = -1;
    if (ck_http_param_id(r, 0, "order", &id, err) == 0 && ck_http_body_object(r, &body, err) == 0 &&
        ck_store_order_get(r->daemon->store, r->caller.tenant_id, id, o, err) == 0)
        rc = 0;
    json_decref(body);
    return rc;
}

static void edge_refresh(void *ctx)
{
    struct ck_daemon *d = ctx;
    ck_edge_runtime_refresh(d->edge);
}

static void runner_wake(void *ctx)
{
    struct ck_daemon *d = ctx;
    ck_job_runner_wake(d->runner);
}

/* The API's way through core/order_flow.h, the one the scheduler takes too; on the loop thread,
 * so the edge is rebuilt at once after a change. */
static struct ck_order_flow flow_of(struct ck_daemon *d)
{
    return (struct ck_order_flow){.store = d->store,
                                  .staging_address = first_address(d, CK_EDGE_STAGING),
                                  .production_address = first_address(d, CK_EDGE_PRODUCTION),
                                  .edge_changed = edge_refresh,
                                  .job_queued = runner_wake,
                                  .ctx = d};
}

static int deploy_now(struct ck_daemon *d, const struct ck_order *o, ck_error *err)
{
    const struct ck_order_flow f = flow_of(d);
    return ck_order_flow_deploy(&f, o, err);
}

static int reply_order(struct ck_request *r, int status, int64_t id, ck_error *err)
{
    json_t *j = ck_order_json_get(r->daemon->store, r->caller.tenant_id, id, err);
    if (j == NULL)
        return -1;
    ck_http_reply_json(r, status, j);
    return 0;
}

int ck_api_order_stage(struct ck_request *r, ck_error *err)
{
    struct ck_order o = {0};
    const struct ck_order_flow f = flow_of(r->daemon);
    int rc = -1;
    if (order_param(r, &o, err) == 0 && ck_order_flow_stage(&f, &o, err) == 0)
        rc = reply_order(r, 200, o.id, err);
    ck_order_free(&o);
    return rc;
}

int ck_api_order_ack_staging(struct ck_request *r, ck_error *err)
{
    struct ck_order o = {0};
    int rc = -1;
    if (order_param(r, &o, err) == 0 &&
        ck_store_order_ack_staging(r->daemon->store, r->caller.tenant_id, o.id, err) == 0)
        rc = reply_order(r, 200, o.id, err);
    ck_order_free(&o);
    return rc;
}

/* body {"not_before": RFC 3339} (optional) into *at (0 when absent). */
static int deploy_body(struct ck_request *r, int64_t *at, ck_error *err)
{
    static const char *const keys[] = {"not_before"};
    json_t *body = NULL;
    const char *text = NULL;
    int rc = -1;
    *at = 0;
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(body, "not_before", false, &text, err) != 0)
        goto cleanup;
    if (text != NULL && ck_time_parse(text, at) != 0) {
        ck_error_set(err, 400, "invalid_field",
                     "not_before \"%.60s\" is not an RFC 3339 time (e.g. 2026-12-01T06:00:00Z)",
                     text);
        goto cleanup;
    }
    rc = 0;
cleanup:
    json_decref(body);
    return rc;
}

static int reply_deferred(struct ck_request *r, int64_t order_id, int64_t at, ck_error *err)
{
    json_t *order = ck_order_json_get(r->daemon->store, r->caller.tenant_id, order_id, err);
    if (order == NULL)
        return -1;
    ck_http_reply_json(r, 202,
                       json_pack("{s:o,s:o,s:s}", "order", order, "deploy_at", ck_time_json(at),
                                 "message",
                                 "the daemon deploys the order within a few seconds of deploy_at"));
    return 0;
}

int ck_api_order_deploy(struct ck_request *r, ck_error *err)
{
    struct ck_daemon *d = r->daemon;
    struct ck_order o = {0};
    int64_t id, at;
    int rc = -1;
    if (ck_http_param_id(r, 0, "order", &id, err) != 0 || deploy_body(r, &at, err) != 0 ||
        ck_store_order_get(d->store, r->caller.tenant_id, id, &o, err) != 0 ||
        ck_order_flow_deploy_allowed(d->store, &o, err) != 0)
        goto cleanup;
    if (at != 0 && ck_store_order_set_not_before(d->store, o.tenant_id, o.id, at, err) != 0)
        goto cleanup;
    if (at == 0)
        at = o.deploy_not_before;
    if (at > ck_clock_now()) {
        rc = reply_deferred(r, o.id, at, err);
        goto cleanup;
    }
    if (deploy_now(d, &o, err) == 0)
        rc = reply_order(r, 200, o.id, err);
cleanup:
    ck_order_free(&o);
    return rc;
}

int ck_api_order_rollback(struct ck_request *r, ck_error *err)
{
    struct ck_daemon *d = r->daemon;
    struct ck_order o = {0};
    struct ck_enrollment e = {0};
    char message[CK_ERROR_MSG_MAX];
    int64_t back_id = 0;
    int rc = -1;
    if (order_param(r, &o, err) != 0 ||
        ck_store_enrollment_get(d->store, o.tenant_id, o.enrollment_name, &e, err) != 0)
        goto cleanup;
    if (e.production_order_id != o.id) {
        ck_error_set(err, 409, "order_not_in_production",
                     "order %lld is not in production (enrollment %s serves order %lld): roll "
                     "back from the order in production",
                     (long long)o.id, e.name, (long long)e.production_order_id);
        goto cleanup;
    }
    snprintf(message, sizeof(message), "enrollment %s rolled back from order %lld", e.name,
             (long long)o.id);
    const struct ck_event_new event = {
        .type = "rolled_back", .enrollment_id = e.id, .order_id = o.id, .message = message};
    const struct ck_order_flow f = flow_of(d);
    if (ck_order_flow_rollback(&f, &e, &event, &back_id, err) != 0)
        goto cleanup;
    rc = reply_order(r, 200, back_id, err);
cleanup:
    ck_enrollment_free(&e);
    ck_order_free(&o);
    return rc;
}

/* ---- deferred deploys ---- */

static void deploy_due_for(struct ck_daemon *d, int64_t tenant_id, int64_t now)
{
    const struct ck_order_filter f = {.state = CK_ORDER_STAGED};
    struct ck_order *orders = NULL;
    size_t n = 0;
    ck_error err;
    if (ck_store_order_list(d->store, tenant_id, &f, &orders, &n, &err) != 0) {
        ck_log(CK_LOG_ERROR, "deferred deploys: %s", err.message);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ck_order *o = &orders[i];
        if (o->deploy_not_before == 0 || o->deploy_not_before > now)
            continue;
        /* another daemon sharing the database may have deployed it: 409, nothing to say */
        if (ck_order_flow_deploy_allowed(d->store, o, &err) != 0 || deploy_now(d, o, &err) != 0) {
            if (err.status != 409 || strcmp(err.code, "order_state_changed") != 0)
                ck_log(CK_LOG_WARN, "order %lld is not deployed at its date: %s", (long long)o->id,
                       err.message);
        } else {
            ck_log(CK_LOG_INFO, "order %lld deployed at its date", (long long)o->id);
        }
    }
    ck_order_array_free(orders, n);
}

void ck_edge_deploy_due(void *daemon)
{
    struct ck_daemon *d = daemon;
    if (d == NULL || d->magic != CK_DAEMON_MAGIC)
        abort(); /* a wrong context: stop before using it */
    struct ck_tenant *tenants = NULL;
    size_t n = 0;
    ck_error err;
    if (ck_store_tenant_list(d->store, &tenants, &n, &err) != 0) {
        ck_log(CK_LOG_ERROR, "deferred deploys: %s", err.message);
        return;
    }
    int64_t now = ck_clock_now();
    for (size_t i = 0; i < n; i++)
        deploy_due_for(d, tenants[i].id, now);
    ck_tenant_array_free(tenants, n);
}

/* ---- GET /v1/edge ---- */

static json_t *addresses_json(const ck_strv *v)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < v->len; i++)
        json_array_append_new(a, json_string(v->items[i]));
    return a;
}

/* "ADDR NAME" for each name, ADDR the host of the environment's first listener. */
static json_t *hosts_json(struct ck_daemon *d, enum ck_edge_kind kind, const ck_strv *names)
{
    json_t *lines = json_array();
    const char *address = first_address(d, kind);
    char host[256], name[CK_SNI_NAME_MAX + 1], line[sizeof(host) + sizeof(name) + 2];
    int port;
    if (address == NULL || ck_edge_address_split(address, host, sizeof(host), &port, NULL) != 0)
        return lines;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "%s", strchr(host, ':') ? "::1" : "127.0.0.1");
    for (size_t i = 0; lines != NULL && i < names->len; i++) {
        ck_edge_test_name(names->items[i], name, sizeof(name));
        snprintf(line, sizeof(line), "%s %s", host, name);
        json_array_append_new(lines, json_string(line));
    }
    return lines;
}

int ck_api_edge(struct ck_request *r, ck_error *err)
{
    struct ck_daemon *d = r->daemon;
    const char *name = ck_http_query(r, "enrollment");
    struct ck_enrollment e = {0};
    if (name != NULL && ck_store_enrollment_get(d->store, r->caller.tenant_id, name, &e, err) != 0)
        return -1;
    json_t *j = json_object();
    for (int k = 0; j != NULL && k < CK_EDGE_KIND_COUNT; k++)
        json_object_set_new(j, ck_edge_kind_name((enum ck_edge_kind)k),
                            addresses_json(ck_edge_runtime_addresses(d->edge, k)));
    if (j != NULL && name != NULL)
        json_object_set_new(j, "hosts",
                            json_pack("{s:o,s:o}", "staging",
                                      hosts_json(d, CK_EDGE_STAGING, &e.sans), "production",
                                      hosts_json(d, CK_EDGE_PRODUCTION, &e.sans)));
    ck_enrollment_free(&e);
    if (j == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    ck_http_reply_json(r, 200, j);
    return 0;
}
