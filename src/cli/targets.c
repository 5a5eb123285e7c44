/* `certkeep target add|list|delete`: file targets, where certkeep writes an enrollment's
 * certificate for a server it does not run, and the command that reloads that server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

const char ck_usage_target[] =
    "usage: certkeep target add ENROLLMENT --environment staging|production --dir DIR\n"
    "           [--reload 'nginx -s reload'] [--timeout SECONDS] [--probe HOST:PORT]\n"
    "       certkeep target list ENROLLMENT | target delete ID\n";

static int show_target(const json_t *t)
{
    static const struct ck_view_row rows[] = {
        {"enrollment", "enrollment"}, {"environment", "environment"}, {"directory", "directory"},
        {"reload", "reload_command"}, {"timeout", "timeout_seconds"}, {"probe", "probe_endpoint"},
        {"added", "created_at"},
    };
    printf("target %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(t, "id")));
    ck_out_view(stdout, t, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_targets(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ID", "id"},
        {"ENVIRONMENT", "environment"},
        {"DIRECTORY", "directory"},
        {"PROBE", "probe_endpoint"},
        {"RELOAD", "reload_command"},
    };
    return ck_out_table(stdout, json_object_get(answer, "targets"), cols, CK_ARRAY_LEN(cols),
                        "no targets");
}

/* "nginx -s reload" -> ["nginx","-s","reload"]: split on spaces, no shell quoting. */
static int split_reload(const char *text, ck_strv *argv)
{
    char *copy = strdup(text), *save = NULL;
    if (copy == NULL)
        return -1;
    int rc = 0;
    for (char *word = strtok_r(copy, " \t", &save); word != NULL && rc == 0;
         word = strtok_r(NULL, " \t", &save))
        rc = ck_strv_push(argv, word);
    free(copy);
    return rc;
}

static int parse_timeout(const char *text, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n < 1 || n > 600)
        return ck_cli_usage_error(
            ck_usage_target, "--timeout must be a number of seconds from 1 to 600, not %s", text);
    *out = n;
    return CK_EXIT_OK;
}

static int target_body(const char *environment, const char *dir, const char *reload,
                       const char *timeout, const char *probe, json_t *body)
{
    ck_strv argv = {0};
    long seconds = 0;
    int rc = ck_body_set_str(body, "environment", environment);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "directory", dir);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "probe_endpoint", probe);
    if (rc == CK_EXIT_OK && reload != NULL) {
        if (split_reload(reload, &argv) != 0) {
            fputs("certkeep: out of memory\n", stderr);
            rc = CK_EXIT_FAILED;
        } else if (argv.len == 0) {
            rc = ck_cli_usage_error(ck_usage_target, "--reload needs a command");
        } else {
            rc = ck_body_set_list(body, "reload_command", &argv);
        }
    }
    if (rc == CK_EXIT_OK && timeout != NULL && (rc = parse_timeout(timeout, &seconds)) == 0)
        json_object_set_new(body, "timeout_seconds", json_integer(seconds));
    ck_strv_free(&argv);
    return rc;
}

static int target_add(const struct ck_cli *cli, int argc, char **argv)
{
    const char *environment = NULL, *dir = NULL, *reload = NULL, *timeout = NULL, *probe = NULL;
    const struct ck_opt opts[] = {
        {"environment", CK_OPT_STRING, &environment},
        {"dir", CK_OPT_STRING, &dir},
        {"reload", CK_OPT_STRING, &reload},
        {"timeout", CK_OPT_STRING, &timeout},
        {"probe", CK_OPT_STRING, &probe},
    };
    const struct ck_cli_spec spec = {ck_usage_target, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    if (environment == NULL || dir == NULL)
        return ck_cli_usage_error(ck_usage_target, "target add needs --environment and --dir");
    json_t *body = json_object();
    char *path = ck_api_path("/v1/enrollments/%s/targets", args[0]);
    if (body == NULL || path == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        rc = CK_EXIT_FAILED;
    }
    if (rc == CK_EXIT_OK)
        rc = target_body(environment, dir, reload, timeout, probe, body);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", path, body, show_target);
    json_decref(body);
    free(path);
    return rc;
}

static const struct ck_simple_command target_list_def = {.usage = ck_usage_target,
                                                         .method = "GET",
                                                         .path = "/v1/enrollments/%s/targets",
                                                         .show = show_targets};

static const struct ck_simple_command target_delete_def = {.usage = ck_usage_target,
                                                           .method = "DELETE",
                                                           .path = "/v1/targets/%lld",
                                                           .done = "deleted target"};

int ck_cmd_target(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"add", target_add, NULL},
        {"list", NULL, &target_list_def},
        {"delete", NULL, &target_delete_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_target, argc, argv);
}
