/* File targets of an enrollment: add, list, delete. What they do is src/core/target.h. */
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "core/target.h"
#include "server/server.h"

static json_t *target_json(const struct ck_target *t, const char *enrollment_name)
{
    json_t *reload = NULL;
    if (t->reload_command != NULL)
        reload = json_loads(t->reload_command, 0, NULL);
    return json_pack("{s:I,s:s?,s:s,s:s?,s:o,s:i,s:s?,s:o}", "id", (json_int_t)t->id, "enrollment",
                     enrollment_name, "environment", ck_environment_name(t->environment),
                     "directory", t->directory, "reload_command",
                     reload != NULL ? reload : json_null(), "timeout_seconds", t->timeout_seconds,
                     "probe_endpoint", t->probe_endpoint, "created_at",
                     ck_time_json(t->created_at));
}

static int enrollment_of_path(struct ck_request *r, struct ck_enrollment *e, ck_error *err)
{
    const char *name = r->params[0];
    if (name == NULL || !ck_resource_name_valid(name))
        return ck_error_set(err, 404, "not_found", "no such enrollment");
    return ck_store_enrollment_get(r->daemon->store, r->caller.tenant_id, name, e, err);
}

static int environment_field(const json_t *body, enum ck_environment *out, ck_error *err)
{
    const char *env;
    if (ck_json_string_field(body, "environment", true, &env, err) != 0)
        return -1;
    if (strcmp(env, "staging") == 0)
        *out = CK_ENV_STAGING;
    else if (strcmp(env, "production") == 0)
        *out = CK_ENV_PRODUCTION;
    else
        return ck_error_set(err, 400, "invalid_field",
                            "environment must be \"staging\" or \"production\" (got \"%.40s\")",
                            env);
    return 0;
}

/* reload_command: an array of strings, kept as its compact JSON; null or absent for none. */
static int reload_field(const json_t *body, struct ck_target *t, ck_error *err)
{
    json_t *v = json_object_get(body, "reload_command");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return ck_error_set(err, 400, "invalid_reload_command",
                            "reload_command must be an array of strings such as "
                            "[\"nginx\",\"-s\",\"reload\"] (it runs without a shell), or null");
    if ((t->reload_command = json_dumps(v, JSON_COMPACT)) == NULL)
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    return 0;
}

static int timeout_field(const json_t *body, struct ck_target *t, ck_error *err)
{
    json_t *v = json_object_get(body, "timeout_seconds");
    t->timeout_seconds = CK_TARGET_TIMEOUT_DEFAULT;
    if (v == NULL || json_is_null(v))
        return 0;
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < 1 || n > CK_TARGET_TIMEOUT_MAX)
        return ck_error_set(err, 400, "invalid_field",
                            "timeout_seconds must be a whole number of seconds from 1 to %d",
                            CK_TARGET_TIMEOUT_MAX);
    t->timeout_seconds = (int)n;
    return 0;
}

static int target_from_body(const json_t *body, struct ck_target *t, ck_error *err)
{
    static const char *const allowed[] = {"environment", "directory", "reload_command",
                                          "timeout_seconds", "probe_endpoint"};
    const char *directory, *probe;
    if (ck_json_only_keys(body, allowed, CK_ARRAY_LEN(allowed), err) != 0 ||
        environment_field(body, &t->environment, err) != 0 ||
        ck_json_string_field(body, "directory", true, &directory, err) != 0 ||
        ck_json_string_field(body, "probe_endpoint", false, &probe, err) != 0 ||
        reload_field(body, t, err) != 0 || timeout_field(body, t, err) != 0)
        return -1;
    t->directory = ck_strdup(directory);
    t->probe_endpoint = ck_strdup(probe);
    if (t->directory == NULL || (probe != NULL && t->probe_endpoint == NULL))
        return ck_error_set(err, 500, "out_of_memory", "out of memory");
    return ck_target_validate(t, err);
}

int ck_api_target_add(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_enrollment e = {0};
    struct ck_target t = {0};
    if (enrollment_of_path(r, &e, err) != 0 || ck_http_body_object(r, &body, err) != 0 ||
        target_from_body(body, &t, err) != 0)
        goto cleanup;
    t.tenant_id = r->caller.tenant_id;
    t.enrollment_id = e.id;
    if (ck_store_target_add(r->daemon->store, &t, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, target_json(&t, e.name));
    rc = 0;
cleanup:
    json_decref(body);
    ck_enrollment_free(&e);
    ck_target_free(&t);
    return rc;
}

int ck_api_target_list(struct ck_request *r, ck_error *err)
{
    struct ck_enrollment e = {0};
    struct ck_target *list = NULL;
    size_t n = 0;
    if (enrollment_of_path(r, &e, err) != 0)
        return -1;
    if (ck_store_target_list(r->daemon->store, r->caller.tenant_id, e.id, &list, &n, err) != 0) {
        ck_enrollment_free(&e);
        return -1;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++)
        json_array_append_new(items, target_json(&list[i], e.name));
    ck_target_array_free(list, n);
    ck_enrollment_free(&e);
    ck_http_reply_json(r, 200, items != NULL ? json_pack("{s:o}", "targets", items) : NULL);
    return 0;
}

int ck_api_target_delete(struct ck_request *r, ck_error *err)
{
    int64_t id;
    if (ck_http_param_id(r, 0, "target", &id, err) != 0 ||
        ck_store_target_delete(r->daemon->store, r->caller.tenant_id, id, err) != 0)
        return -1;
    ck_http_reply_empty(r, 204);
    return 0;
}
