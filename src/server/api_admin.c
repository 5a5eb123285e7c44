/* Tenants (operator admins) and tokens (admins). */
#include <string.h>

#include <openssl/crypto.h>

#include "core/names.h"
#include "server/server.h"

#define TOKEN_NAME_MAX 64

static json_t *tenant_json(const struct ck_tenant *t)
{
    return json_pack("{s:I,s:s,s:o}", "id", (json_int_t)t->id, "name", t->name, "created_at",
                     ck_time_json(t->created_at));
}

static json_t *token_json(const struct ck_token *t)
{
    return json_pack("{s:I,s:s,s:s?,s:s?,s:o}", "id", (json_int_t)t->id, "role",
                     ck_role_name(t->role), "name", t->name, "tenant", t->tenant_name, "created_at",
                     ck_time_json(t->created_at));
}

int ck_api_tenant_create(struct ck_request *r, ck_error *err)
{
    static const char *const keys[] = {"name"};
    int rc = -1;
    json_t *body = NULL;
    struct ck_tenant t = {0};
    const char *name;
    if (ck_http_body_object(r, &body, err) != 0 ||
        ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(body, "name", true, &name, err) != 0)
        goto cleanup;
    if (!ck_tenant_name_valid(name)) {
        ck_error_set(err, 400, "invalid_field",
                     "tenant name \"%.80s\" is not valid: use 1-63 of a-z, 0-9 and '-', "
                     "starting with a letter or digit",
                     name);
        goto cleanup;
    }
    if (ck_store_tenant_create(r->daemon->store, name, &t, err) != 0)
        goto cleanup;
    ck_http_reply_json(r, 201, tenant_json(&t));
    rc = 0;
cleanup:
    json_decref(body);
    ck_tenant_free(&t);
    return rc;
}

int ck_api_tenant_list(struct ck_request *r, ck_error *err)
{
    struct ck_tenant *tenants = NULL;
    size_t n = 0;
    if (ck_store_tenant_list(r->daemon->store, &tenants, &n, err) != 0)
        return -1;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        json_array_append_new(list, tenant_json(&tenants[i]));
    ck_tenant_array_free(tenants, n);
    ck_http_reply_json(r, 200, list ? json_pack("{s:o}", "tenants", list) : NULL);
    return 0;
}

/* The tenant a token request acts on: the caller's, or (operator admins only) the one named. */
static int target_tenant(struct ck_request *r, const char *name, struct ck_tenant *out,
                         ck_error *err)
{
    const struct ck_token *c = &r->caller;
    if (name == NULL || (c->tenant_name != NULL && strcmp(name, c->tenant_name) == 0)) {
        out->id = c->tenant_id;
        out->name = ck_strdup(c->tenant_name);
        return 0;
    }
    if (!ck_auth_is_operator_admin(c))
        return ck_error_set(err, 403, "forbidden",
                            "only admins of tenant default manage tokens of other tenants");
    if (ck_store_tenant_get(r->daemon->store, name, out, err) != 0) {
        if (err != NULL && err->status == 404)
            ck_error_set(err, 404, "not_found", "no tenant named %.80s", name);
        return -1;
    }
    return 0;
}

/* Checks the create request's fields; on success *role, *name and *tenant are set. */
static int token_request(const json_t *body, enum ck_role *role, const char **name,
                         const char **tenant, ck_error *err)
{
    static const char *const keys[] = {"role", "name", "tenant"};
    const char *role_name;
    if (ck_json_only_keys(body, keys, CK_ARRAY_LEN(keys), err) != 0 ||
        ck_json_string_field(body, "role", true, &role_name, err) != 0 ||
        ck_json_string_field(body, "name", false, name, err) != 0 ||
        ck_json_string_field(body, "tenant", false, tenant, err) != 0 ||
        ck_role_parse(role_name, role, err) != 0)
        return -1;
    if (*name != NULL && strlen(*name) > TOKEN_NAME_MAX)
        return ck_error_set(err, 400, "invalid_field", "name is longer than %d characters",
                            TOKEN_NAME_MAX);
    return 0;
}

int ck_api_token_create(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    json_t *body = NULL;
    struct ck_tenant tenant = {0};
    struct ck_token created = {0};
    char secret[68] = "";
    uint8_t hash[32];
    enum ck_role role;
    const char *name, *tenant_name;
    if (ck_http_body_object(r, &body, err) != 0 ||
        token_request(body, &role, &name, &tenant_name, err) != 0 ||
        target_tenant(r, tenant_name, &tenant, err) != 0 ||
        ck_auth_token_new(secret, hash, err) != 0 ||
        ck_store_token_create(r->daemon->store, tenant.id, role, name, hash, &created, err) != 0)
        goto cleanup;
    json_t *j = token_json(&created);
    if (j != NULL)
        json_object_set_new(j, "token", json_string(secret));
    ck_http_reply_json(r, 201, j);
    rc = 0;
cleanup:
    OPENSSL_cleanse(secret, sizeof(secret));
    json_decref(body);
    ck_tenant_free(&tenant);
    ck_token_free(&created);
    return rc;
}

int ck_api_token_list(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    struct ck_tenant tenant = {0};
    struct ck_token *tokens = NULL;
    size_t n = 0;
    if (target_tenant(r, ck_http_query(r, "tenant"), &tenant, err) != 0 ||
        ck_store_token_list(r->daemon->store, tenant.id, &tokens, &n, err) != 0)
        goto cleanup;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        json_array_append_new(list, token_json(&tokens[i]));
    ck_http_reply_json(r, 200, list ? json_pack("{s:o}", "tokens", list) : NULL);
    rc = 0;
cleanup:
    ck_token_array_free(tokens, n);
    ck_tenant_free(&tenant);
    return rc;
}

int ck_api_token_delete(struct ck_request *r, ck_error *err)
{
    int rc = -1;
    struct ck_tenant tenant = {0};
    int64_t id;
    if (ck_http_param_id(r, 0, "token", &id, err) != 0 ||
        target_tenant(r, ck_http_query(r, "tenant"), &tenant, err) != 0 ||
        ck_store_token_delete(r->daemon->store, tenant.id, id, err) != 0)
        goto cleanup;
    ck_http_reply_empty(r, 204);
    rc = 0;
cleanup:
    ck_tenant_free(&tenant);
    return rc;
}
