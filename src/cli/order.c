/* `certkeep order ...`: start (and wait for the CSR, or from an uploaded CSR), list, show, csr,
 * cancel, import (a bought certificate), ack (its warnings), cert (download it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/edge.h"
#include "cli/output.h"

/* order start waits for the csr job: one look every 100 ms, for at most 120 s. */
#define POLL_INTERVAL_NS (100L * 1000 * 1000)
#define POLL_MAX_LOOKS   1200

/* Files the user names are read up to this size; the API itself refuses bodies over 1 MiB with
 * a message that says so (413), which is more useful than a refusal of the command line's own. */
#define ORDER_FILE_MAX ((size_t)8 * 1024 * 1024)

const char ck_usage_order[] = "usage: certkeep order start ENROLLMENT [--no-wait] [--csr FILE]\n"
                              "       certkeep order list [--enrollment NAME] [--state STATE]\n"
                              "       certkeep order show ID | order csr ID | order cancel ID\n"
                              "       certkeep order import ID --cert FILE [--chain FILE]\n"
                              "       certkeep order ack ID | order cert ID\n" CK_USAGE_ORDER_EDGE
                              "       certkeep order dns-published ID\n";

/* An ACME order's progress and the records it needs published ("validation" in docs/API.md). */
static void show_validation(const json_t *v)
{
    size_t i;
    const json_t *r;
    if (!json_is_object(v))
        return;
    ck_out_field(stdout, "acme", ck_json_str(v, "step") ? ck_json_str(v, "step") : "?");
    json_array_foreach(json_object_get(v, "records"), i, r)
    {
        printf("%-*s%s %s %s\n", CK_OUT_LABEL_WIDTH, "record",
               ck_json_str(r, "type") ? ck_json_str(r, "type") : "?",
               ck_json_str(r, "record") ? ck_json_str(r, "record") : "?",
               ck_json_str(r, "value") ? ck_json_str(r, "value") : "?");
    }
}

static int show_order(const json_t *o)
{
    static const struct ck_view_row rows[] = {
        {"enrollment", "enrollment"},
        {"key", "key_type"},
        {"csr", "csr.subject.text"},
        {"sans", "csr.dns_sans"},
        {"uploaded", "csr_uploaded"},
        {"certificate", "certificate.subject.text"},
        {"issuer", "certificate.issuer.text"},
        {"not after", "certificate.not_after"},
        {"jobs", "jobs"},
        {"error", "error"},
        {"created", "created_at"},
        {"updated", "updated_at"},
    };
    printf("order %" JSON_INTEGER_FORMAT " %s\n", json_integer_value(json_object_get(o, "id")),
           ck_json_str(o, "state") ? ck_json_str(o, "state") : "?");
    ck_out_view(stdout, o, rows, CK_ARRAY_LEN(rows));
    size_t i;
    const json_t *w;
    json_array_foreach(json_object_get(o, "warnings"), i, w)
    {
        printf("warning: %s: %s\n", ck_json_str(w, "code") ? ck_json_str(w, "code") : "?",
               ck_json_str(w, "message") ? ck_json_str(w, "message") : "");
    }
    show_validation(json_object_get(o, "validation"));
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

/* body[key] = the text of the file at path; exit 2 when it cannot be read. */
static int body_set_file(json_t *body, const char *key, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    ck_error err = {0};
    if (path == NULL)
        return CK_EXIT_OK;
    if (ck_read_file(path, ORDER_FILE_MAX, &text, &len, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        return CK_EXIT_USAGE;
    }
    int rc = ck_body_set_str(body, key, text);
    free(text);
    return rc;
}

static int order_start(const struct ck_cli *cli, int argc, char **argv)
{
    bool no_wait = false;
    const char *csr = NULL;
    const struct ck_opt opts[] = {{"no-wait", CK_OPT_FLAG, &no_wait}, {"csr", CK_OPT_STRING, &csr}};
    const struct ck_cli_spec spec = {ck_usage_order, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    struct ck_client *c = NULL;
    json_t *order = NULL;
    json_t *body = json_object();
    char *path = NULL;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = body_set_file(body, "csr", csr);
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
    rc = ck_client_run_list(cli, path, "orders", show_orders);
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

static void print_findings(FILE *out, const json_t *list, const char *label)
{
    size_t i;
    const json_t *f;
    json_array_foreach(list, i, f)
    {
        fprintf(out, "%s: %s: %s\n", label, ck_json_str(f, "code") ? ck_json_str(f, "code") : "?",
                ck_json_str(f, "message") ? ck_json_str(f, "message") : "");
    }
}

/* 200: the order's new state and every warning; 422: every error on stderr, exit 1. */
static int show_import(const struct ck_cli *cli, const struct ck_response *resp)
{
    json_t *doc = json_loadb(resp->body ? resp->body : "", resp->len, 0, NULL);
    int rc = CK_EXIT_FAILED;
    if (resp->status != 200 && resp->status != 422) {
        ck_client_print_error(resp);
    } else if (doc == NULL) {
        fputs("certkeep: the API's answer is not JSON\n", stderr);
    } else if (resp->status == 422) {
        fprintf(stderr, "certkeep: %s\n",
                ck_json_str(doc, "error.message") ? ck_json_str(doc, "error.message")
                                                  : "the certificate was refused");
        print_findings(stderr, json_object_get(doc, "errors"), "error");
        print_findings(stderr, json_object_get(doc, "warnings"), "warning");
        if (cli->json)
            ck_out_json(doc);
    } else if (cli->json) {
        rc = ck_out_json(doc);
    } else {
        const json_t *order = json_object_get(doc, "order");
        long long id = json_integer_value(json_object_get(order, "id"));
        const char *state = ck_json_str(order, "state");
        printf("order %lld %s\n", id, state ? state : "?");
        print_findings(stdout, json_object_get(doc, "warnings"), "warning");
        if (state != NULL && strcmp(state, "awaiting_ack") == 0)
            printf("acknowledge the warnings with: certkeep order ack %lld\n", id);
        rc = CK_EXIT_OK;
    }
    json_decref(doc);
    return rc;
}

static int order_import(const struct ck_cli *cli, int argc, char **argv)
{
    const char *cert = NULL, *chain = NULL;
    const struct ck_opt opts[] = {{"cert", CK_OPT_STRING, &cert}, {"chain", CK_OPT_STRING, &chain}};
    const struct ck_cli_spec spec = {ck_usage_order, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    long long id = 0;
    struct ck_client *c = NULL;
    struct ck_response resp = {0};
    json_t *body = json_object();
    char *path = NULL;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = ck_cli_parse_id(args[0], ck_usage_order, &id);
    if (rc == CK_EXIT_OK && cert == NULL)
        rc = ck_cli_usage_error(ck_usage_order, "order import needs --cert FILE");
    if (rc == CK_EXIT_OK)
        rc = body_set_file(body, "certificate", cert);
    if (rc == CK_EXIT_OK)
        rc = body_set_file(body, "chain", chain);
    if (rc == CK_EXIT_OK)
        rc = ck_client_open(&c);
    if (rc == CK_EXIT_OK) {
        path = ck_api_path("/v1/orders/%lld/certificate", id);
        rc = path ? ck_client_exchange(c, "POST", path, body, &resp) : CK_EXIT_FAILED;
    }
    if (rc == CK_EXIT_OK)
        rc = show_import(cli, &resp);
    ck_response_free(&resp);
    free(path);
    json_decref(body);
    ck_client_free(c);
    return rc;
}

static const struct ck_simple_command order_ack_def = {.usage = ck_usage_order,
                                                       .method = "POST",
                                                       .path = "/v1/orders/%lld/acknowledge",
                                                       .show = show_order};

static const struct ck_simple_command order_cert_def = {
    .usage = ck_usage_order, .method = "GET", .path = "/v1/orders/%lld/certificate", .raw = true};

/* Manual dns-01: the user created the records the order shows; validation goes on. */
static const struct ck_simple_command order_dns_published_def = {
    .usage = ck_usage_order,
    .method = "POST",
    .path = "/v1/orders/%lld/dns-published",
    .show = show_order};

int ck_cmd_order(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"start", order_start, NULL},
        {"list", order_list, NULL},
        {"show", NULL, &order_show_def},
        {"csr", NULL, &order_csr_def},
        {"cancel", NULL, &order_cancel_def},
        {"import", order_import, NULL},
        {"dns-published", NULL, &order_dns_published_def},
        {"ack", NULL, &order_ack_def},
        {"cert", NULL, &order_cert_def},
        {"stage", ck_cmd_order_stage, NULL},
        {"ack-staging", ck_cmd_order_ack_staging, NULL},
        {"deploy", ck_cmd_order_deploy, NULL},
        {"rollback", ck_cmd_order_rollback, NULL},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_order, argc, argv);
}
