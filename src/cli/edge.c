/* `certkeep edge`, and `certkeep order stage|ack-staging|deploy|rollback`. */
#include "cli/edge.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

const char ck_usage_edge[] = "usage: certkeep edge [--enrollment NAME]\n";

static void print_list(const char *label, const json_t *items)
{
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item)
    {
        printf("%-11s %s\n", label, json_string_value(item));
    }
}

static int show_edge(const json_t *answer)
{
    print_list("staging", json_object_get(answer, "staging"));
    print_list("production", json_object_get(answer, "production"));
    print_list("http", json_object_get(answer, "http"));
    const json_t *hosts = json_object_get(answer, "hosts");
    if (hosts == NULL)
        return CK_EXIT_OK;
    const char *const envs[] = {"staging", "production"};
    for (size_t e = 0; e < CK_ARRAY_LEN(envs); e++) {
        const json_t *lines = json_object_get(hosts, envs[e]);
        if (json_array_size(lines) == 0)
            continue;
        printf("\n# /etc/hosts lines to test on %s:\n", envs[e]);
        size_t i;
        const json_t *line;
        json_array_foreach(lines, i, line)
        {
            printf("%s\n", json_string_value(line));
        }
    }
    return CK_EXIT_OK;
}

int ck_cmd_edge(const struct ck_cli *cli, int argc, char **argv)
{
    const char *enrollment = NULL;
    const struct ck_opt opts[] = {{"enrollment", CK_OPT_STRING, &enrollment}};
    const struct ck_cli_spec spec = {ck_usage_edge, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    const struct ck_query_param query[] = {{"enrollment", enrollment}};
    char *path = ck_api_path_query("/v1/edge", query, CK_ARRAY_LEN(query));
    rc = ck_client_run(cli, "GET", path, NULL, show_edge);
    free(path);
    return rc;
}

static int show_order_state(const json_t *o)
{
    const char *state = ck_json_str(o, "state");
    printf("order %" JSON_INTEGER_FORMAT " %s\n", json_integer_value(json_object_get(o, "id")),
           state ? state : "?");
    return CK_EXIT_OK;
}

static int show_deploy(const json_t *answer)
{
    const json_t *order = json_object_get(answer, "order");
    if (order == NULL)
        return show_order_state(answer);
    show_order_state(order);
    const char *at = ck_json_str(answer, "deploy_at");
    printf("deploys at %s\n", at ? at : "?");
    return CK_EXIT_OK;
}

static const struct ck_simple_command stage_def = {.usage = ck_usage_order,
                                                   .method = "POST",
                                                   .path = "/v1/orders/%lld/stage",
                                                   .show = show_order_state};
static const struct ck_simple_command ack_staging_def = {.usage = ck_usage_order,
                                                         .method = "POST",
                                                         .path = "/v1/orders/%lld/ack-staging",
                                                         .show = show_order_state};
static const struct ck_simple_command rollback_def = {.usage = ck_usage_order,
                                                      .method = "POST",
                                                      .path = "/v1/orders/%lld/rollback",
                                                      .show = show_order_state};

int ck_cmd_order_stage(const struct ck_cli *cli, int argc, char **argv)
{
    return ck_client_simple(cli, argc, argv, &stage_def);
}

int ck_cmd_order_ack_staging(const struct ck_cli *cli, int argc, char **argv)
{
    return ck_client_simple(cli, argc, argv, &ack_staging_def);
}

int ck_cmd_order_rollback(const struct ck_cli *cli, int argc, char **argv)
{
    return ck_client_simple(cli, argc, argv, &rollback_def);
}

int ck_cmd_order_deploy(const struct ck_cli *cli, int argc, char **argv)
{
    const char *not_before = NULL;
    const struct ck_opt opts[] = {{"not-before", CK_OPT_STRING, &not_before}};
    const struct ck_cli_spec spec = {ck_usage_order, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    long long id = 0;
    char *path = NULL;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = ck_cli_parse_id(args[0], ck_usage_order, &id);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "not_before", not_before);
    if (rc == CK_EXIT_OK) {
        path = ck_api_path("/v1/orders/%lld/deploy", id);
        rc = ck_client_run(cli, "POST", path, body, show_deploy);
    }
    free(path);
    json_decref(body);
    return rc;
}
