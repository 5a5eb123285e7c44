/* `certkeep order ...`: start (and wait for the CSR), list, show, csr, cancel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

/* order start waits for the csr job: one look every 100 ms, for at most 120 s. */
#define POLL_INTERVAL_NS (100L * 1000 * 1000)
#define POLL_MAX_LOOKS   1200

const char ck_usage_order[] = "usage: certkeep order start ENROLLMENT [--no-wait]\n"
                              "       certkeep order list [--enrollment NAME] [--state STATE]\n"
                              "       certkeep order show ID | order csr ID | order cancel ID\n";

static int show_order(const json_t *o)
{
    static const struct ck_view_row rows[] = {
        {"enrollment", "enrollment"}, {"key", "key_type"},       {"csr", "csr.subject.text"},
        {"sans", "csr.dns_sans"},     {"jobs", "jobs"},          {"error", "error"},
        {"created", "created_at"},    {"updated", "updated_at"},
    };
    printf("order %" JSON_INTEGER_FORMAT " %s\n", json_integer_value(json_object_get(o, "id")),
           ck_json_str(o, "state") ? ck_json_str(o, "state") : "?");
    ck_out_view(stdout, o, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_orders(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ID", "id"}, {"STATE", "state"}, {"ENROLLMENT", "enrollment"}, {"CREATED", "created_at"}};
    return ck_out_table(stdout, json_object_get(answer, "orders"), cols, CK_ARRAY_LEN(cols),
                        "no orders");
}

static bool order_is_new(const json_t *order)
{
    const char *state = ck_json_str(order, "state");
    return state != NULL && strcmp(state, "new") == 0;
}

/* Polls the order until its csr job has moved it on from "new"; *order is replaced by the last
 * answer. */
static int wait_for_csr(struct ck_client *c, json_t **order)
{
    const struct timespec interval = {0, POLL_INTERVAL_NS};
    long long id = json_integer_value(json_object_get(*order, "id"));
    char *path = ck_api_path("/v1/orders/%lld", id);
    int rc = path ? CK_EXIT_OK : CK_EXIT_FAILED;
    for (int look = 0; rc == CK_EXIT_OK && order_is_new(*order); look++) {
        if (look == POLL_MAX_LOOKS) {
            fprintf(stderr,
                    "certkeep: order %lld is still new after 120 s; see `certkeep order show "
                    "%lld` and `certkeep jobs --order %lld`\n",
                    id, id, id);
            rc = CK_EXIT_FAILED;
            break;
        }
        nanosleep(&interval, NULL);
        json_t *next = NULL;
        rc = ck_client_call(c, "GET", path, NULL, &next);
        if (rc == CK_EXIT_OK) {
            json_decref(*order);
            *order = next;
        }
    }
    free(path);
    return rc;
}

/* Shows the order the way `order start` ends; a failed order is exit 1. */
static int show_started(const struct ck_cli *cli, const json_t *order)
{
    int rc = cli->json ? ck_out_json(order) : show_order(order);
    const char *state = ck_json_str(order, "state");
    if (state != NULL && strcmp(state, "failed") == 0) {
        const char *error = ck_json_str(order, "error");
        fprintf(stderr, "certkeep: order %" JSON_INTEGER_FORMAT " failed: %s\n",
                json_integer_value(json_object_get(order, "id")),
                error ? error : "no reason given");
        return CK_EXIT_FAILED;
    }
    if (rc == CK_EXIT_OK && !cli->json && state != NULL && strcmp(state, "csr_ready") == 0)
        fprintf(stderr, "download the CSR with: certkeep order csr %" JSON_INTEGER_FORMAT "\n",
                json_integer_value(json_object_get(order, "id")));
    return rc;
}

static int order_start(const struct ck_cli *cli, int argc, char **argv)
{
    bool no_wait = false;
    const struct ck_opt opts[] = {{"no-wait", CK_OPT_FLAG, &no_wait}};
    const struct ck_cli_spec spec = {ck_usage_order, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    struct ck_client *c = NULL;
    json_t *order = NULL;
    json_t *body = json_object();
    char *path = NULL;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = ck_client_open(&c);
    if (rc == CK_EXIT_OK) {
        path = ck_api_path("/v1/enrollments/%s/orders", args[0]);
        rc = path ? ck_client_call(c, "POST", path, body, &order) : CK_EXIT_FAILED;
    }
    if (rc == CK_EXIT_OK && !no_wait)
        rc = wait_for_csr(c, &order);
    if (rc == CK_EXIT_OK)
        rc = show_started(cli, order);
    free(path);
    json_decref(body);
    json_decref(order);
    ck_client_free(c);
    return rc;
}

static int order_list(const struct ck_cli *cli, int argc, char **argv)
{
    const char *enrollment = NULL, *state = NULL;
    const struct ck_opt opts[] = {
        {"enrollment", CK_OPT_STRING, &enrollment},
        {"state", CK_OPT_STRING, &state},
    };
    const struct ck_cli_spec spec = {ck_usage_order, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    const struct ck_query_param query[] = {{"enrollment", enrollment}, {"state", state}};
    char *path = ck_api_path_query("/v1/orders", query, CK_ARRAY_LEN(query));
    rc = ck_client_run(cli, "GET", path, NULL, show_orders);
    free(path);
    return rc;
}

static const struct ck_simple_command order_show_def = {
    .usage = ck_usage_order, .method = "GET", .path = "/v1/orders/%lld", .show = show_order};

static const struct ck_simple_command order_cancel_def = {.usage = ck_usage_order,
                                                          .method = "POST",
                                                          .path = "/v1/orders/%lld/cancel",
                                                          .show = show_order};

static const struct ck_simple_command order_csr_def = {
    .usage = ck_usage_order, .method = "GET", .path = "/v1/orders/%lld/csr", .raw = true};

int ck_cmd_order(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"start", order_start, NULL},        {"list", order_list, NULL},
        {"show", NULL, &order_show_def},     {"csr", NULL, &order_csr_def},
        {"cancel", NULL, &order_cancel_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_order, argc, argv);
}
