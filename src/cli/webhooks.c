/* `certkeep webhook add|list|delete|deliveries`: endpoints that receive every event of the
 * tenant as signed JSON, and the log of what was delivered to each. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/output.h"
#include "cli/webhook_cmd.h"

const char ck_usage_webhook[] = "usage: certkeep webhook add URL [--secret SECRET] | webhook list\n"
                                "       certkeep webhook delete ID | webhook deliveries ID\n";

static int show_webhook(const json_t *w)
{
    static const struct ck_view_row rows[] = {{"url", "url"}, {"added", "created_at"}};
    const char *secret = json_string_value(json_object_get(w, "secret"));
    printf("webhook %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(w, "id")));
    ck_out_view(stdout, w, rows, CK_ARRAY_LEN(rows));
    /* Shown once: the daemon keeps it sealed and never returns it again. */
    if (secret != NULL)
        printf("secret %s\n(shown only now: give it to the receiver to check signatures)\n",
               secret);
    return CK_EXIT_OK;
}

static int show_webhooks(const json_t *answer)
{
    static const struct ck_column cols[] = {{"ID", "id"}, {"URL", "url"}, {"ADDED", "created_at"}};
    return ck_out_table(stdout, json_object_get(answer, "webhooks"), cols, CK_ARRAY_LEN(cols),
                        "no webhooks");
}

static int show_deliveries(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"EVENT", "event_id"},       {"TYPE", "type"},          {"STATE", "state"},
        {"ATTEMPTS", "attempts"},    {"STATUS", "last_status"}, {"DELIVERED", "delivered_at"},
        {"NEXT", "next_attempt_at"}, {"ERROR", "last_error"},
    };
    return ck_out_table(stdout, json_object_get(answer, "deliveries"), cols, CK_ARRAY_LEN(cols),
                        "no deliveries yet");
}

static int webhook_add(const struct ck_cli *cli, int argc, char **argv)
{
    const char *secret = NULL;
    const struct ck_opt opts[] = {{"secret", CK_OPT_STRING, &secret}};
    const struct ck_cli_spec spec = {ck_usage_webhook, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    json_t *body = json_object();
    if (body == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    rc = ck_body_set_str(body, "url", args[0]);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "secret", secret);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/webhooks", body, show_webhook);
    json_decref(body);
    return rc;
}

static const struct ck_simple_command webhook_list_def = {
    .usage = ck_usage_webhook, .method = "GET", .path = "/v1/webhooks", .show = show_webhooks};

static const struct ck_simple_command webhook_delete_def = {.usage = ck_usage_webhook,
                                                            .method = "DELETE",
                                                            .path = "/v1/webhooks/%lld",
                                                            .done = "deleted webhook"};

static const struct ck_simple_command webhook_deliveries_def = {.usage = ck_usage_webhook,
                                                                .method = "GET",
                                                                .path =
                                                                    "/v1/webhooks/%lld/deliveries",
                                                                .show = show_deliveries};

int ck_cmd_webhook(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"add", webhook_add, NULL},
        {"list", NULL, &webhook_list_def},
        {"delete", NULL, &webhook_delete_def},
        {"deliveries", NULL, &webhook_deliveries_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_webhook, argc, argv);
}
