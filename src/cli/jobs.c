/* `certkeep jobs [filters]`, `certkeep job show ID`, `certkeep job artifact ID NAME`. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

const char ck_usage_jobs[] =
    "usage: certkeep jobs [--state S] [--type T] [--enrollment NAME] [--order ID]\n";

const char ck_usage_job[] = "usage: certkeep job show ID | job artifact ID NAME\n";

static int show_jobs(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ID", "id"},          {"TYPE", "type"},
        {"STATE", "state"},    {"ENROLLMENT", "enrollment"},
        {"ORDER", "order_id"}, {"CREATED", "created_at"},
    };
    return ck_out_table(stdout, json_object_get(answer, "jobs"), cols, CK_ARRAY_LEN(cols),
                        "no jobs");
}

static int show_job(const json_t *job)
{
    static const struct ck_view_row rows[] = {
        {"enrollment", "enrollment"}, {"order", "order_id"},       {"created", "created_at"},
        {"started", "started_at"},    {"finished", "finished_at"}, {"error", "error"},
        {"artifacts", "artifacts"},
    };
    static const struct ck_column log_cols[] = {
        {"AT", "at"}, {"LEVEL", "level"}, {"MESSAGE", "message"}};
    printf("job %" JSON_INTEGER_FORMAT " %s %s\n", json_integer_value(json_object_get(job, "id")),
           ck_json_str(job, "type") ? ck_json_str(job, "type") : "?",
           ck_json_str(job, "state") ? ck_json_str(job, "state") : "?");
    ck_out_view(stdout, job, rows, CK_ARRAY_LEN(rows));
    putchar('\n');
    return ck_out_table(stdout, json_object_get(job, "log"), log_cols, CK_ARRAY_LEN(log_cols),
                        "no log lines");
}

static const struct ck_simple_command job_show_def = {
    .usage = ck_usage_job, .method = "GET", .path = "/v1/jobs/%lld", .show = show_job};

static const struct ck_simple_command job_artifact_def = {
    .usage = ck_usage_job, .method = "GET", .path = "/v1/jobs/%lld/artifacts/%s", .raw = true};

int ck_cmd_jobs(const struct ck_cli *cli, int argc, char **argv)
{
    const char *state = NULL, *type = NULL, *enrollment = NULL, *order = NULL;
    const struct ck_opt opts[] = {
        {"state", CK_OPT_STRING, &state},
        {"type", CK_OPT_STRING, &type},
        {"enrollment", CK_OPT_STRING, &enrollment},
        {"order", CK_OPT_STRING, &order},
    };
    const struct ck_cli_spec spec = {ck_usage_jobs, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    long long order_id = 0;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && order != NULL)
        rc = ck_cli_parse_id(order, ck_usage_jobs, &order_id);
    if (rc != CK_EXIT_OK)
        return rc;
    const struct ck_query_param query[] = {
        {"state", state}, {"type", type}, {"enrollment", enrollment}, {"order", order}};
    char *path = ck_api_path_query("/v1/jobs", query, CK_ARRAY_LEN(query));
    rc = ck_client_run_list(cli, path, "jobs", show_jobs);
    free(path);
    return rc;
}

int ck_cmd_job(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"show", NULL, &job_show_def},
                                                 {"artifact", NULL, &job_artifact_def}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_job, argc, argv);
}
