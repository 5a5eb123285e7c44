/* `certkeep ca ...` (the local CA), `certkeep issuer ...` (local and ACME issuers) and
 * `certkeep dns ...` (dns-01 providers). Secrets given here go to the API once and are never
 * shown again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/issuer_commands.h"
#include "cli/output.h"

/* A CA bundle is a few certificates; the API refuses bodies over 1 MiB anyway. */
#define CA_BUNDLE_MAX ((size_t)1024 * 1024)

const char ck_usage_ca[] = "usage: certkeep ca init [--shared] | ca root\n";
const char ck_usage_issuer[] =
    "usage: certkeep issuer create NAME --acme DIRECTORY_URL [--ca-bundle FILE]\n"
    "           [--eab-kid KID --eab-hmac KEY] [--contact mailto:ADDR]...\n"
    "       certkeep issuer create NAME --local\n"
    "       certkeep issuer list | show NAME | delete NAME\n";
const char ck_usage_dns[] =
    "usage: certkeep dns create NAME --rfc2136 ADDR:PORT --zone ZONE --tsig-name NAME\n"
    "           [--tsig-alg hmac-sha256|hmac-sha384|hmac-sha512] --tsig-secret BASE64\n"
    "           [--check-servers ADDR:PORT,...] [--ttl SECONDS]\n"
    "       certkeep dns create NAME --hook PATH [--zone ZONE] [--check-servers ...]\n"
    "       certkeep dns create NAME --manual [--zone ZONE] [--check-servers ...]\n"
    "       certkeep dns list | show NAME | delete NAME\n";

/* ---- ca ---- */

static int show_ca(const json_t *ca)
{
    printf("local CA %" JSON_INTEGER_FORMAT " created%s\n",
           json_integer_value(json_object_get(ca, "id")),
           json_is_true(json_object_get(ca, "shared")) ? " (shared by every tenant)" : "");
    puts("its root certificate: certkeep ca root");
    return CK_EXIT_OK;
}

static int ca_init(const struct ck_cli *cli, int argc, char **argv)
{
    bool shared = false;
    const struct ck_opt opts[] = {{"shared", CK_OPT_FLAG, &shared}};
    const struct ck_cli_spec spec = {ck_usage_ca, opts, CK_ARRAY_LEN(opts), 0, 0};
    char **args;
    int n_args;
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    json_t *body = json_object();
    if (rc == CK_EXIT_OK && shared)
        json_object_set_new(body, "shared", json_true());
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/ca", body, show_ca);
    json_decref(body);
    return rc;
}

static const struct ck_simple_command ca_root_def = {
    .usage = ck_usage_ca, .method = "GET", .path = "/v1/ca/root", .raw = true};

int ck_cmd_ca(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {{"init", ca_init, NULL},
                                                 {"root", NULL, &ca_root_def}};
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_ca, argc, argv);
}

/* ---- issuer ---- */

static int show_issuer(const json_t *is)
{
    static const struct ck_view_row rows[] = {
        {"name", "name"},           {"type", "type"},          {"directory", "directory_url"},
        {"eab kid", "eab_kid"},     {"eab key", "eab"},        {"contacts", "contacts"},
        {"account", "account_url"}, {"created", "created_at"},
    };
    ck_out_view(stdout, is, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_issuers(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"NAME", "name"}, {"TYPE", "type"}, {"DIRECTORY", "directory_url"}, {"EAB", "eab"}};
    return ck_out_table(stdout, json_object_get(answer, "issuers"), cols, CK_ARRAY_LEN(cols),
                        "no issuers");
}

struct issuer_opts {
    const char *acme, *ca_bundle, *eab_kid, *eab_hmac;
    bool local;
    ck_strv contacts;
};

static int issuer_body(const struct issuer_opts *o, const char *name, json_t *body)
{
    char *bundle = NULL;
    size_t len = 0;
    ck_error err = {0};
    if ((o->acme != NULL) == o->local)
        return ck_cli_usage_error(ck_usage_issuer, "issuer create: give --acme URL or --local");
    if (o->local && (o->ca_bundle || o->eab_kid || o->eab_hmac || o->contacts.len > 0))
        return ck_cli_usage_error(ck_usage_issuer,
                                  "--ca-bundle, --eab-* and --contact are for --acme issuers");
    if (o->ca_bundle != NULL && ck_read_file(o->ca_bundle, CA_BUNDLE_MAX, &bundle, &len, &err)) {
        fprintf(stderr, "certkeep: %s\n", err.message);
        return CK_EXIT_USAGE;
    }
    int rc = ck_body_set_str(body, "name", name);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "type", o->local ? "local" : "acme");
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "directory_url", o->acme);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "ca_bundle", bundle);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "eab_kid", o->eab_kid);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_str(body, "eab_hmac", o->eab_hmac);
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_list(body, "contacts", &o->contacts);
    free(bundle);
    return rc;
}

static int issuer_create(const struct ck_cli *cli, int argc, char **argv)
{
    struct issuer_opts o = {0};
    const struct ck_opt opts[] = {
        {"acme", CK_OPT_STRING, &o.acme},           {"local", CK_OPT_FLAG, &o.local},
        {"ca-bundle", CK_OPT_STRING, &o.ca_bundle}, {"eab-kid", CK_OPT_STRING, &o.eab_kid},
        {"eab-hmac", CK_OPT_STRING, &o.eab_hmac},   {"contact", CK_OPT_LIST, &o.contacts},
    };
    const struct ck_cli_spec spec = {ck_usage_issuer, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = issuer_body(&o, args[0], body);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/issuers", body, show_issuer);
    json_decref(body);
    ck_strv_free(&o.contacts);
    return rc;
}

static const struct ck_simple_command issuer_list_def = {
    .usage = ck_usage_issuer, .method = "GET", .path = "/v1/issuers", .show = show_issuers};
static const struct ck_simple_command issuer_show_def = {
    .usage = ck_usage_issuer, .method = "GET", .path = "/v1/issuers/%s", .show = show_issuer};
static const struct ck_simple_command issuer_delete_def = {.usage = ck_usage_issuer,
                                                           .method = "DELETE",
                                                           .path = "/v1/issuers/%s",
                                                           .done = "deleted issuer"};

int ck_cmd_issuer(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"create", issuer_create, NULL},
        {"list", NULL, &issuer_list_def},
        {"show", NULL, &issuer_show_def},
        {"delete", NULL, &issuer_delete_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_issuer, argc, argv);
}

/* ---- dns ---- */

static int show_dns(const json_t *d)
{
    static const struct ck_view_row rows[] = {
        {"name", "name"},
        {"mode", "mode"},
        {"server", "server"},
        {"zone", "zone"},
        {"tsig name", "tsig_name"},
        {"tsig alg", "tsig_alg"},
        {"tsig key", "tsig_secret"},
        {"hook", "hook_path"},
        {"check", "check_servers"},
        {"ttl", "ttl"},
        {"created", "created_at"},
    };
    ck_out_view(stdout, d, rows, CK_ARRAY_LEN(rows));
    return CK_EXIT_OK;
}

static int show_dns_list(const json_t *answer)
{
    static const struct ck_column cols[] = {
        {"NAME", "name"}, {"MODE", "mode"}, {"ZONE", "zone"}, {"SERVER", "server"}};
    return ck_out_table(stdout, json_object_get(answer, "dns"), cols, CK_ARRAY_LEN(cols),
                        "no DNS providers");
}

struct dns_opts {
    const char *rfc2136, *hook, *zone, *tsig_name, *tsig_alg, *tsig_secret, *check_servers, *ttl;
    bool manual;
};

/* "a,b,c" as a list of strings. */
static int set_split_list(json_t *body, const char *key, const char *text)
{
    ck_strv list = {0};
    char *copy = text != NULL ? strdup(text) : NULL;
    char *save = NULL;
    int rc = CK_EXIT_OK;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t != NULL && rc == CK_EXIT_OK;
         t = strtok_r(NULL, ",", &save))
        rc = ck_strv_push(&list, t) == 0 ? CK_EXIT_OK : CK_EXIT_FAILED;
    if (rc == CK_EXIT_OK)
        rc = ck_body_set_list(body, key, &list);
    ck_strv_free(&list);
    free(copy);
    return rc;
}

static int dns_body(const struct dns_opts *o, const char *name, json_t *body)
{
    int modes = (o->rfc2136 != NULL) + (o->hook != NULL) + o->manual;
    if (modes != 1)
        return ck_cli_usage_error(ck_usage_dns,
                                  "dns create: give exactly one of --rfc2136, --hook, --manual");
    if (o->rfc2136 == NULL && (o->tsig_name || o->tsig_alg || o->tsig_secret))
        return ck_cli_usage_error(ck_usage_dns, "--tsig-* options are for --rfc2136");
    const char *mode = o->rfc2136 ? "rfc2136" : o->hook ? "hook" : "manual";
    int rc = ck_body_set_str(body, "name", name);
    const struct {
        const char *key, *value;
    } fields[] = {{"mode", mode},
                  {"server", o->rfc2136},
                  {"zone", o->zone},
                  {"tsig_name", o->tsig_name},
                  {"tsig_alg", o->tsig_alg},
                  {"tsig_secret", o->tsig_secret},
                  {"hook_path", o->hook}};
    for (size_t i = 0; i < CK_ARRAY_LEN(fields) && rc == CK_EXIT_OK; i++)
        rc = ck_body_set_str(body, fields[i].key, fields[i].value);
    if (rc == CK_EXIT_OK)
        rc = set_split_list(body, "check_servers", o->check_servers);
    if (rc == CK_EXIT_OK && o->ttl != NULL) {
        char *end = NULL;
        long ttl = strtol(o->ttl, &end, 10);
        if (end == o->ttl || *end != '\0' || ttl < 1 || ttl > 86400)
            return ck_cli_usage_error(ck_usage_dns, "--ttl must be 1 to 86400 seconds");
        json_object_set_new(body, "ttl", json_integer(ttl));
    }
    return rc;
}

static int dns_create(const struct ck_cli *cli, int argc, char **argv)
{
    struct dns_opts o = {0};
    const struct ck_opt opts[] = {
        {"rfc2136", CK_OPT_STRING, &o.rfc2136},
        {"hook", CK_OPT_STRING, &o.hook},
        {"manual", CK_OPT_FLAG, &o.manual},
        {"zone", CK_OPT_STRING, &o.zone},
        {"tsig-name", CK_OPT_STRING, &o.tsig_name},
        {"tsig-alg", CK_OPT_STRING, &o.tsig_alg},
        {"tsig-secret", CK_OPT_STRING, &o.tsig_secret},
        {"check-servers", CK_OPT_STRING, &o.check_servers},
        {"ttl", CK_OPT_STRING, &o.ttl},
    };
    const struct ck_cli_spec spec = {ck_usage_dns, opts, CK_ARRAY_LEN(opts), 1, 1};
    char **args;
    int n_args;
    json_t *body = json_object();
    int rc = ck_cli_parse(&spec, argc, argv, &args, &n_args);
    if (rc == CK_EXIT_OK)
        rc = dns_body(&o, args[0], body);
    if (rc == CK_EXIT_OK)
        rc = ck_client_run(cli, "POST", "/v1/dns", body, show_dns);
    json_decref(body);
    return rc;
}

static const struct ck_simple_command dns_list_def = {
    .usage = ck_usage_dns, .method = "GET", .path = "/v1/dns", .show = show_dns_list};
static const struct ck_simple_command dns_show_def = {
    .usage = ck_usage_dns, .method = "GET", .path = "/v1/dns/%s", .show = show_dns};
static const struct ck_simple_command dns_delete_def = {.usage = ck_usage_dns,
                                                        .method = "DELETE",
                                                        .path = "/v1/dns/%s",
                                                        .done = "deleted DNS provider"};

int ck_cmd_dns(const struct ck_cli *cli, int argc, char **argv)
{
    static const struct ck_cli_command cmds[] = {
        {"create", dns_create, NULL},
        {"list", NULL, &dns_list_def},
        {"show", NULL, &dns_show_def},
        {"delete", NULL, &dns_delete_def},
    };
    return ck_cli_dispatch(cli, cmds, CK_ARRAY_LEN(cmds), ck_usage_dns, argc, argv);
}
