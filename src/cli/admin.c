/* `certkeep tenant ...` and `certkeep token ...` (docs/CLI.md, "Tenants and tokens"). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

const char ck_usage_tenant[] = "usage: certkeep tenant create NAME | tenant list\n";

const char ck_usage_token[] =
    "usage: certkeep token create --role admin|editor|viewer [--name LABEL] [--tenant NAME]\n"
    "       certkeep token list | token revoke ID\n";

static int show_tenant(const json_t *t)
{
    static const struct ck_view_row rows[] = {
        {"id", "id"}, {"name", "name"}, {"created", "created_at"}};
    ck_out_view(stdout, t, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_tenants(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ID", "id"}, {"NAME", "name"}, {"CREATED", "created_at"}};
    return ck_out_table(stdout, json_object_get(answer, "tenants"), cols, CK_ARRAY_LEN(cols),
                        "no tenants");
}

/* The secret alone on stdout, so that TOKEN=$(certkeep token create ...) works; what it is on
 * stderr. */
static int show_new_token(const json_t *t)
{
    const char *secret = ck_json_str(t, "token");
    if (secret == NULL) {
        fputs("certkeep: the API's answer has no token\n", stderr);
        return CK_EXIT_FAILED;
    }
    puts(secret);
    char *name = ck_json_display(json_object_get(t, "name"));
    fprintf(stderr,
            "created %s token %" JSON_INTEGER_FORMAT " (name %s) in tenant %s; it is shown "
            "only this once\n",
            ck_json_str(t, "role") ? ck_json_str(t, "role") : "?",
            json_integer_value(json_object_get(t, "id")), name ? name : "-",
            ck_json_str(t, "tenant") ? ck_json_str(t, "tenant") : "?");
    free(name);
    return CK_EXIT_OK;
}

static int show_tokens(const json_t *answer)
{
    static const struct ck_column cols[] = {{"ID", "id"},
                                            {"ROLE", "role"},
                                            {"TENANT", "tenant"},
                                            {"NAME", "name"},
                                            {"CREATED", "created_at"}};
    return ck_out_table(stdout, json_object_get(answer, "tokens"), cols, CK_ARRAY_LEN(cols),
                        "no tokens");
}

static int tenant_create(const struct ck_cli *cli, int argc, char **argv)
{
    const struct ck_cli_spec spec = {ck_usage_tenant, NULL, 0, 1, 1};
    char **args;
    int n_args;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "name", args[0]);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/tenants", body, show_tenant);
    json_decref(body);
    return rc;
}

static int token_create(const struct ck_cli *cli, int argc, char **argv)
{
    const char *role = NULL, *name = NULL, *tenant = NULL;
    const struct ck_opt opts[] = {
        {"role", CK_OPT_STRING, &role},
        {"name", CK_OPT_STRING, &name},
        {"tenant", CK_OPT_STRING, &tenant},
    };
    const struct ck_cli_spec spec = {ck_usage_token, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && role == NULL)
        rc = ck_cli_usage_error(ck_usage_token, "token create needs --role");
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "role", role);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "name", name);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "tenant", tenant);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/tokens", body, show_new_token);
    json_decref(body);
    return rc;
}

static const struct ck_simple_command tenant_list_def = {
    .usage = ck_usage_tenant, .method = "GET", .path = "/v1/tenants", .show = show_tenants};

static const struct ck_simple_command token_list_def = {
    .usage = ck_usage_token, .method = "GET", .path = "/v1/tokens", .show = show_tokens};

static const struct ck_simple_command token_revoke_def = {.usage = ck_usage_token,
                                                          .method = "DELETE",
                                                          .path = "/v1/tokens/%lld",
                                                          .done = "revoked token"};

int ck_cmd_tenant(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"create", tenant_create, NULL},
                                                 {"list", NULL, &tenant_list_def}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_tenant, argc, argv);
}

int ck_cmd_token(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"create", token_create, NULL},
                                                 {"list", NULL, &token_list_def},
                                                 {"revoke", NULL, &token_revoke_def}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_token, argc, argv);
}
