/* `certkeep roots ...` (a tenant's private roots), `certkeep poll [confirm ID]` and
 * `certkeep events [--order ID]`. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

/* A root certificate is small; read more than the API accepts so that its 413 is what the user
 * sees for an oversized file. */
#define ROOT_FILE_MAX ((size_t)8 * 1024 * 1024)

const char ck_usage_roots[] = "usage: certkeep roots add FILE | roots list | roots delete ID\n";
const char ck_usage_poll[] = "usage: certkeep poll | poll confirm ID\n";
const char ck_usage_events[] = "usage: certkeep events [--order ID]\n";

static int show_root(const json_t *root)
{
    static const struct ck_view_row rows[] = {
        {"subject", "subject"},
        {"sha256", "sha256_fingerprint"},
        {"not after", "not_after"},
        {"added", "created_at"},
    };
    printf("root %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(root, "id")));
    ck_out_view(stdout, root, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_roots(const json_t *answer)
{
    static const struct ck_column cols[] = {{"ID", "id"},
                                            {"SUBJECT", "subject"},
                                            {"NOT AFTER", "not_after"},
                                            {"SHA256", "sha256_fingerprint"}};
    return ck_out_table(stdout, json_object_get(answer, "roots"), cols, CK_ARRAY_LEN(cols),
                        "no roots");
}

static int roots_add(const struct ck_cli *cli, int argc, char **argv)
{
    const struct ck_cli_spec spec = {ck_usage_roots, NULL, 0, 1, 1};
    char **args;
    int n_args;
    char *pem = NULL;
    size_t len = 0;
    ck_error err = {0};
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && ck_read_file(args[0], ROOT_FILE_MAX, &pem, &len, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        rc = CK_EXIT_USAGE;
    }
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "pem", pem);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/roots", body, show_root);
    free(pem);
    json_decref(body);
    return rc;
}

static const struct ck_simple_command roots_list_def = {
    .usage = ck_usage_roots, .method = "GET", .path = "/v1/roots", .show = show_roots};

static const struct ck_simple_command roots_delete_def = {
    .usage = ck_usage_roots, .method = "DELETE", .path = "/v1/roots/%lld", .done = "deleted root"};

int ck_cmd_roots(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"add", roots_add, NULL},
        {"list", NULL, &roots_list_def},
        {"delete", NULL, &roots_delete_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_roots, argc, argv);
}

static void print_event(const json_t *ev)
{
    static const struct ck_view_row rows[] = {
        {"enrollment", "enrollment"},
        {"order", "order_id"},
        {"message", "message"},
        {"created", "created_at"},
    };
    printf("event %" JSON_INTEGER_FORMAT " %s\n", json_integer_value(json_object_get(ev, "id")),
           ck_json_str(ev, "type") ? ck_json_str(ev, "type") : "?");
    ck_out_view(stdout, ev, rows, CK_ARRAY_LEN(rows));
}

static int show_poll(const json_t *answer)
{
    const json_t *ev = json_object_get(answer, "event");
    if (!json_is_object(ev)) {
        puts("no events");
        return CK_EXIT_OK;
    }
    print_event(ev);
    printf("%" JSON_INTEGER_FORMAT " more\n",
           json_integer_value(json_object_get(answer, "remaining")));
    return CK_EXIT_OK;
}

static int show_events(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ID", "id"},
        {"TYPE", "type"},
        {"ORDER", "order_id"},
        {"CREATED", "created_at"},
        {"CONFIRMED", "confirmed_at"},
        {"MESSAGE", "message"},
    };
    return ck_out_table(stdout, json_object_get(answer, "events"), cols, CK_ARRAY_LEN(cols),
                        "no events");
}

static int poll_next(const struct ck_cli *cli, int argc, char **argv)
{
    const struct ck_cli_spec spec = {ck_usage_poll, NULL, 0, 0, 0};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    return rc == CK_EXIT_OK ? ck_client_run(cli, "GET", "/v1/poll", NULL, show_poll) : rc;
}

static const struct ck_simple_command poll_confirm_def = {
    .usage = ck_usage_poll, .method = "PUT", .path = "/v1/poll/%lld", .done = "confirmed event"};

int ck_cmd_poll(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"confirm", NULL, &poll_confirm_def}};
    if (argc < 2 || argv[1][0] == '-')
        return ck_cli_wants_help(argc, argv) ? (fputs(ck_usage_poll, stdout), CK_EXIT_OK)
                                             : poll_next(cli, argc, argv);
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_poll, argc, argv);
}

int ck_cmd_events(const struct ck_cli *cli, int argc, char **argv)
{
    const char *order = NULL;
    const struct ck_opt opts[] = {{"order", CK_OPT_STRING, &order}};
    const struct ck_cli_spec spec = {ck_usage_events, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    long long id = 0;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && order != NULL)
        rc = ck_cli_parse_id(order, ck_usage_events, &id);
    if (rc != CK_EXIT_OK)
        return rc;
    const struct ck_query_param query[] = {{"order", order}};
    char *path = ck_api_path_query("/v1/events", query, CK_ARRAY_LEN(query));
    rc = ck_client_run(cli, "GET", path, NULL, show_events);
    free(path);
    return rc;
}
