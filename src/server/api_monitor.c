/* Expiry monitoring's view (GET /v1/enrollments/{name}/watch), GET /metrics and GET /healthz
 * (issue 6, items 5 and 6). */
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "core/names.h"
#include "core/watch.h"
#include "server/metrics.h"
#include "server/server.h"

int ck_api_health(struct ck_request *r, ck_error *err)
{
    (void)err;
    ck_error why = {0};
    if (ck_store_ping(r->daemon->store, &why) != 0) {
        ck_http_reply_json(r, 503,
                           json_pack("{s:s,s:s}", "status", "unavailable", "reason",
                                     "the database does not answer"));
        return 0;
    }
    ck_http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    return 0;
}

int ck_api_metrics(struct ck_request *r, ck_error *err)
{
    struct ck_store_metrics m = {0};
    struct ck_edge_counts edge = {0};
    struct ck_prom text = {0};
    size_t len = 0;
    /* the operator's admins see every tenant; everyone else only their own (nothing crosses
     * tenants); the edge's counters are the daemon's, not a tenant's */
    int64_t tenant_id = ck_auth_is_operator_admin(&r->caller) ? 0 : r->caller.tenant_id;
    if (ck_store_metrics_read(r->daemon->store, tenant_id, &m, err) != 0)
        return -1;
    for (int env = CK_ENV_STAGING; env <= CK_ENV_PRODUCTION; env++) {
        struct ck_edge_cache_stats cache;
        ck_edge_runtime_handshakes(r->daemon->edge, (enum ck_environment)env, &edge.handshakes[env],
                                   &edge.errors[env]);
        ck_edge_runtime_cache_stats(r->daemon->edge, (enum ck_environment)env, &cache);
        edge.cache_hits[env] = cache.hits;
        edge.cache_misses[env] = cache.misses;
        edge.cache_entries[env] = cache.cached;
        edge.cache_capacity[env] = cache.capacity;
    }
    ck_metrics_render(&m, &edge, &text);
    const char *body = ck_prom_text(&text, &len);
    int rc = 0;
    if (body == NULL)
        rc = ck_error_set(err, 500, "out_of_memory", "out of memory writing the metrics");
    else
        ck_http_reply_bytes(r, 200, CK_PROM_CONTENT_TYPE, body, len);
    ck_prom_free(&text);
    ck_store_metrics_free(&m);
    return rc;
}

static const struct ck_watch_state *state_of(const struct ck_watch_state *states, size_t n,
                                             const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(states[i].endpoint, key) == 0)
            return &states[i];
    return NULL;
}

static json_t *endpoint_json(const char *key, const struct ck_watch_state *s)
{
    bool production = strncmp(key, CK_WATCH_PRODUCTION, strlen(CK_WATCH_PRODUCTION)) == 0;
    return json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:o,s:o,s:o}", "endpoint", key, "kind",
                     production ? "production" : "custom", "status", s != NULL ? s->status : "none",
                     "detail", s ? s->detail : NULL, "served_serial", s ? s->served_serial : NULL,
                     "served_not_after", ck_time_json(s ? s->served_not_after : 0), "checked_at",
                     ck_time_json(s ? s->checked_at : 0), "changed_at",
                     ck_time_json(s ? s->changed_at : 0));
}

/* The endpoints the monitor watches for e now, each with its last probe. */
static json_t *watch_json(struct ck_request *r, const struct ck_enrollment *e, ck_error *err)
{
    ck_strv keys = {0};
    struct ck_watch_state *states = NULL;
    size_t n = 0;
    json_t *list = NULL;
    bool production = e->production_order_id != 0 &&
                      ck_edge_runtime_addresses(r->daemon->edge, CK_EDGE_PRODUCTION)->len > 0;
    if (ck_store_watch_list(r->daemon->store, e->tenant_id, e->id, &states, &n, err) != 0)
        goto cleanup;
    if (ck_watch_keys(&e->sans, &e->watch, production, &keys) != 0 ||
        (list = json_array()) == NULL) {
        ck_error_set(err, 500, "out_of_memory", "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < keys.len; i++)
        json_array_append_new(list,
                              endpoint_json(keys.items[i], state_of(states, n, keys.items[i])));
cleanup:
    ck_strv_free(&keys);
    ck_watch_state_array_free(states, n);
    return list;
}

int ck_api_enrollment_watch(struct ck_request *r, ck_error *err)
{
    const char *name = r->params[0];
    struct ck_enrollment e = {0};
    if (name == NULL || !ck_resource_name_valid(name))
        return ck_error_set(err, 404, "not_found", "no such enrollment");
    if (ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, &e, err) != 0)
        return -1;
    json_t *list = watch_json(r, &e, err);
    if (list != NULL)
        ck_http_reply_json(r, 200,
                           json_pack("{s:s,s:I,s:o}", "enrollment", e.name, "interval_seconds",
                                     (json_int_t)r->daemon->monitor_interval, "endpoints", list));
    ck_enrollment_free(&e);
    return list != NULL ? 0 : -1;
}
