/* `certkeep enrollment ...`: create, list, show, update, delete (docs/CLI.md, "Enrollments"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

/* Pre-fill certificates come from a file the user names; the API refuses bodies over 1 MiB. */
#define FROM_CERT_MAX (1024 * 1024)

const char ck_usage_enrollment[] =
    "usage: certkeep enrollment create NAME --cn CN [--san NAME]... [--org O] [--ou OU]\n"
    "           [--locality L] [--state ST] [--country C]\n"
    "           [--key rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384] [--validation dv|ov|ev]\n"
    "           [--issuer NAME [--challenge dns-01|http-01] [--dns NAME]] [--contact ADDR]... "
    "[--lifetime D] [--renew-before D]\n"
    "           [--deploy-before D] [--always-test-on-staging] [--watch HOST:PORT[/SNI]]...\n"
    "           [--from-cert FILE | --from-host HOST:PORT [--sni NAME]]\n"
    "       certkeep enrollment list | show NAME | delete NAME | watch NAME\n"
    "       certkeep enrollment update NAME [same options as create, except --from-*]\n"
    "           [--no-always-test-on-staging] [--no-watch]\n";

struct enrollment_opts {
    const char *cn, *org, *ou, *locality, *state, *country;
    const char *key, *validation, *issuer, *challenge, *dns;
    const char *lifetime, *renew_before, *deploy_before;
    const char *from_cert, *from_host, *sni;
    ck_strv sans, contacts, watch;
    bool test_on_staging, no_test_on_staging, no_watch;
};

struct given_field {
    const char *value;
    const char *key;
};

/* Fills the options create and update share; returns how many. */
static size_t common_opts(struct enrollment_opts *o, struct ck_opt *t)
{
    const struct ck_opt common[] = {
        {"cn", CK_OPT_STRING, &o->cn},
        {"san", CK_OPT_LIST, &o->sans},
        {"org", CK_OPT_STRING, &o->org},
        {"ou", CK_OPT_STRING, &o->ou},
        {"locality", CK_OPT_STRING, &o->locality},
        {"state", CK_OPT_STRING, &o->state},
        {"country", CK_OPT_STRING, &o->country},
        {"key", CK_OPT_STRING, &o->key},
        {"validation", CK_OPT_STRING, &o->validation},
        {"issuer", CK_OPT_STRING, &o->issuer},
        {"challenge", CK_OPT_STRING, &o->challenge},
        {"dns", CK_OPT_STRING, &o->dns},
        {"contact", CK_OPT_LIST, &o->contacts},
        {"lifetime", CK_OPT_STRING, &o->lifetime},
        {"renew-before", CK_OPT_STRING, &o->renew_before},
        {"deploy-before", CK_OPT_STRING, &o->deploy_before},
        {"always-test-on-staging", CK_OPT_FLAG, &o->test_on_staging},
        {"watch", CK_OPT_LIST, &o->watch},
    };
    memcpy(t, common, sizeof(common));
    return CK_ARRAY_LEN(common);
}

static void enrollment_opts_free(struct enrollment_opts *o)
{
    ck_strv_free(&o->sans);
    ck_strv_free(&o->contacts);
    ck_strv_free(&o->watch);
}

/* body[key] = an object of the given fields (the API merges it key by key into the current
 * one on update); left out when nothing is given and not `force`. */
static int set_object(json_t *body, const char *key, const struct given_field *fields, size_t n,
                      bool force)
{
    bool given = force;
    for (size_t i = 0; i < n; i++)
        given = given || fields[i].value != NULL;
    if (!given)
        return CK_EXIT_OK;
    json_t *obj = json_object();
    int rc = obj ? CK_EXIT_OK : CK_EXIT_FAILED;
    for (size_t i = 0; i < n && rc == CK_EXIT_OK; i++)
        rc = ck_body_set_str(obj, fields[i].key, fields[i].value);
    if (rc == CK_EXIT_OK && json_object_set(body, key, obj) != 0)
        rc = CK_EXIT_FAILED;
    json_decref(obj);
    return rc;
}

static int set_policy(json_t *body, const struct enrollment_opts *o)
{
    const struct given_field fields[] = {
        {o->lifetime, "lifetime"},
        {o->renew_before, "renew_before"},
        {o->deploy_before, "deploy_before"},
    };
    bool flag = o->test_on_staging || o->no_test_on_staging;
    int rc = set_object(body, "policy", fields, CK_ARRAY_LEN(fields), flag);
    json_t *policy = json_object_get(body, "policy");
    if (rc == CK_EXIT_OK && flag && policy != NULL)
        json_object_set_new(policy, "always_test_on_staging", json_boolean(o->test_on_staging));
    return rc;
}

/* The fields create and update share, and the pre-fill ones (which the option tables of update
 * leave out). */
static int enrollment_body(const struct enrollment_opts *o, json_t *body)
{
    const struct given_field subject[] = {
        {o->org, "o"}, {o->ou, "ou"}, {o->locality, "l"}, {o->state, "st"}, {o->country, "c"},
    };
    const struct given_field plain[] = {
        {o->cn, "cn"},
        {o->key, "key_type"},
        {o->validation, "validation"},
        {o->issuer, "issuer"},
        {o->from_host, "from_host"},
        {o->sni, "from_sni"},
        {o->challenge, "challenge"},
        {o->dns, "dns"},
    };
    int rc = CK_EXIT_OK;
    for (size_t i = 0; i < CK_ARRAY_LEN(plain) && rc == CK_EXIT_OK; i++)
        rc = ck_body_set_str(body, plain[i].key, plain[i].value);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_list(body, "sans", &o->sans);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_list(body, "contacts", &o->contacts);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_list(body, "watch", &o->watch);
    if (rc == CK_EXIT_OK && o->no_watch && json_object_set_new(body, "watch", json_array()) != 0)
        rc = CK_EXIT_FAILED;
    if (rc == CK_EXIT_OK)
        rc = set_object(body, "subject", subject, CK_ARRAY_LEN(subject), false);
    if (rc == CK_EXIT_OK)
        rc = set_policy(body, o);
    return rc;
}

static void print_subject(const json_t *e)
{
    static const struct ck_view_row parts[] = {
        {"O", "o"}, {"OU", "ou"}, {"L", "l"}, {"ST", "st"}, {"C", "c"},
    };
    const json_t *subject = json_object_get(e, "subject");
    const char *sep = "";
    fprintf(stdout, "%-*s", CK_OUT_LABEL_WIDTH, "subject");
    for (size_t i = 0; i < CK_ARRAY_LEN(parts); i++) {
        const char *value = ck_json_str(subject, parts[i].key);
        if (value != NULL) {
            printf("%s%s=%s", sep, parts[i].label, value);
            sep = ", ";
        }
    }
    puts(*sep ? "" : "-");
}

static int show_enrollment(const json_t *e)
{
    static const struct ck_view_row head[] = {{"name", "name"}, {"cn", "cn"}, {"sans", "sans"}};
    static const struct ck_view_row key[] = {{"key", "key_type"},
                                             {"validation", "validation"},
                                             {"issuer", "issuer"},
                                             {"challenge", "challenge"},
                                             {"dns", "dns"}};
    static const struct ck_view_row policy[] = {
        {"lifetime", "policy.lifetime"},
        {"renew-before", "policy.renew_before"},
        {"deploy-before", "policy.deploy_before"},
        {"always-test-on-staging", "policy.always_test_on_staging"}};
    static const struct ck_view_row orders[] = {{"staging", "staging_order_id"},
                                                {"production", "production_order_id"}};
    static const struct ck_view_row tail[] = {{"contacts", "contacts"},
                                              {"watch", "watch"},
                                              {"created", "created_at"},
                                              {"updated", "updated_at"}};
    ck_out_view(stdout, e, head, CK_ARRAY_LEN(head));
    print_subject(e);
    ck_out_pairs(stdout, e, key, CK_ARRAY_LEN(key));
    ck_out_pairs(stdout, e, policy, CK_ARRAY_LEN(policy));
    ck_out_pairs(stdout, e, orders, CK_ARRAY_LEN(orders));
    ck_out_view(stdout, e, tail, CK_ARRAY_LEN(tail));
    return CK_EXIT_OK;
}

static int show_enrollments(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"NAME", "name"},     {"CN", "cn"},
        {"KEY", "key_type"},  {"VALIDATION", "validation"},
        {"ISSUER", "issuer"}, {"UPDATED", "updated_at"},
    };
    return ck_out_table(stdout, json_object_get(answer, "enrollments"), cols, CK_ARRAY_LEN(cols),
                        "no enrollments");
}

/* Reads --from-cert into the body as from_pem. */
static int set_from_cert(json_t *body, const char *path)
{
    char *pem = NULL;
    size_t len = 0;
    ck_error err = {0};
    if (path == NULL)
        return CK_EXIT_OK;
    if (ck_read_file(path, FROM_CERT_MAX, &pem, &len, &err) != 0) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        return CK_EXIT_USAGE;
    }
    int rc = ck_body_set_str(body, "from_pem", pem);
    free(pem);
    return rc;
}

static int enrollment_create(const struct ck_cli *cli, int argc, char **argv)
{
    struct enrollment_opts o = {0};
    struct ck_opt table[24];
    size_t n = common_opts(&o, table);
    table[n++] = (struct ck_opt){"from-cert", CK_OPT_STRING, &o.from_cert};
    table[n++] = (struct ck_opt){"from-host", CK_OPT_STRING, &o.from_host};
    table[n++] = (struct ck_opt){"sni", CK_OPT_STRING, &o.sni};
    const struct ck_cli_spec spec = {ck_usage_enrollment, table, n, 1, 1};
    char **args;
    int n_args;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && o.from_cert != NULL && o.from_host != NULL)
        rc = ck_cli_usage_error(ck_usage_enrollment, "give --from-cert or --from-host, not both");
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "name", args[0]);
    if (rc == CK_EXIT_OK)
        rc = enrollment_body(&o, body);
    if (rc == CK_EXIT_OK)
        rc = set_from_cert(body, o.from_cert);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/enrollments", body, show_enrollment);
    json_decref(body);
    enrollment_opts_free(&o);
    return rc;
}

static int enrollment_update(const struct ck_cli *cli, int argc, char **argv)
{
    struct enrollment_opts o = {0};
    struct ck_opt table[24];
    size_t n = common_opts(&o, table);
    table[n++] = (struct ck_opt){"no-always-test-on-staging", CK_OPT_FLAG, &o.no_test_on_staging};
    table[n++] = (struct ck_opt){"no-watch", CK_OPT_FLAG, &o.no_watch};
    const struct ck_cli_spec spec = {ck_usage_enrollment, table, n, 1, 1};
    char **args;
    int n_args;
    char *path = NULL;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK && o.test_on_staging && o.no_test_on_staging)
        rc = ck_cli_usage_error(ck_usage_enrollment,
                                "--always-test-on-staging and --no-always-test-on-staging "
                                "contradict each other");
    if (rc == CK_EXIT_OK && o.no_watch && o.watch.len > 0)
        rc =
            ck_cli_usage_error(ck_usage_enrollment, "--watch and --no-watch contradict each other");
    if (rc == CK_EXIT_OK)
        rc = enrollment_body(&o, body);
    if (rc == CK_EXIT_OK && json_object_size(body) == 0)
        rc = ck_cli_usage_error(ck_usage_enrollment, "enrollment update: nothing to change");
    if (rc == CK_EXIT_OK) {
        path = ck_api_path("/v1/enrollments/%s", args[0]);
        rc = ck_client_run(cli, "PATCH", path, body, show_enrollment);
    }
    free(path);
    json_decref(body);
    enrollment_opts_free(&o);
    return rc;
}

static int enrollment_list(const struct ck_cli *cli, int argc, char **argv)
{
    const struct ck_cli_spec spec = {ck_usage_enrollment, NULL, 0, 0, 0};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc != CK_EXIT_OK)
        return rc;
    return ck_client_run_list(cli, "/v1/enrollments", "enrollments", show_enrollments);
}

static const struct ck_simple_command enrollment_show_def = {.usage = ck_usage_enrollment,
                                                             .method = "GET",
                                                             .path = "/v1/enrollments/%s",
                                                             .show = show_enrollment};

static int show_watch(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"ENDPOINT", "endpoint"},  {"STATUS", "status"},      {"SERVED EXPIRY", "served_not_after"},
        {"CHECKED", "checked_at"}, {"CHANGED", "changed_at"}, {"DETAIL", "detail"},
    };
    return ck_out_table(stdout, json_object_get(answer, "endpoints"), cols, CK_ARRAY_LEN(cols),
                        "no endpoints watched (nothing deployed yet, or no production listener "
                        "and no --watch)");
}

static const struct ck_simple_command enrollment_watch_def = {.usage = ck_usage_enrollment,
                                                              .method = "GET",
                                                              .path = "/v1/enrollments/%s/watch",
                                                              .show = show_watch};

static const struct ck_simple_command enrollment_delete_def = {.usage = ck_usage_enrollment,
                                                               .method = "DELETE",
                                                               .path = "/v1/enrollments/%s",
                                                               .done = "deleted enrollment"};

int ck_cmd_enrollment(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"create", enrollment_create, NULL},      {"list", enrollment_list, NULL},
        {"show", NULL, &enrollment_show_def},     {"update", enrollment_update, NULL},
        {"delete", NULL, &enrollment_delete_def}, {"watch", NULL, &enrollment_watch_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_enrollment, argc, argv);
}
