/* certkeep — command dispatch (docs/CLI.md). The daemon's commands live in src/server, `verify`
 * in src/cli/verify_cmd.c, the client and offline commands in src/cli. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/edge.h"
#include "cli/issuer_commands.h"
#include "cli/probe_cmd.h"
#include "cli/verify_cmd.h"
#include "cli/webhook_cmd.h"
#include "common/alloc_arena.h"
#include "server/daemon.h"

#ifndef CK_VERSION
#define CK_VERSION "0.1.0"
#endif

static int key_command(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "export") != 0) {
        fprintf(stderr, "certkeep: %s\n%s",
                argc < 2 ? "key needs a sub-command" : "unknown command", ck_daemon_usage_key);
        return CK_EXIT_USAGE;
    }
    return ck_daemon_cmd_key_export(argc - 1, argv + 1);
}

/* A top-level command: ours take a parsed struct ck_cli (`run`); the ones other modules own get
 * argv as it is (`run_raw`). `usage` NULL: the command prints its own help. */
struct top_command {
    const char *name;
    ck_cli_handler run;
    int (*run_raw)(int argc, char **argv);
    const char *usage;
};

static const struct top_command commands[] = {
    {"init", NULL, ck_daemon_cmd_init, ck_daemon_usage_init},
    {"serve", NULL, ck_daemon_cmd_serve, ck_daemon_usage_serve},
    {"key", NULL, key_command, ck_daemon_usage_key},
    {"tenant", ck_cmd_tenant, NULL, ck_usage_tenant},
    {"token", ck_cmd_token, NULL, ck_usage_token},
    {"enrollment", ck_cmd_enrollment, NULL, ck_usage_enrollment},
    {"order", ck_cmd_order, NULL, ck_usage_order},
    {"jobs", ck_cmd_jobs, NULL, ck_usage_jobs},
    {"job", ck_cmd_job, NULL, ck_usage_job},
    {"csr", ck_cmd_csr, NULL, ck_usage_csr},
    {"cert", ck_cmd_cert, NULL, ck_usage_cert},
    {"roots", ck_cmd_roots, NULL, ck_usage_roots},
    {"poll", ck_cmd_poll, NULL, ck_usage_poll},
    {"events", ck_cmd_events, NULL, ck_usage_events},
    {"edge", ck_cmd_edge, NULL, ck_usage_edge},
    {"target", ck_cmd_target, NULL, ck_usage_target},
    {"ca", ck_cmd_ca, NULL, ck_usage_ca},
    {"issuer", ck_cmd_issuer, NULL, ck_usage_issuer},
    {"dns", ck_cmd_dns, NULL, ck_usage_dns},
    {"verify", NULL, ck_cmd_verify, NULL},
    {"probe", ck_cmd_probe, NULL, ck_usage_probe},
    {"webhook", ck_cmd_webhook, NULL, ck_usage_webhook},
};

static void print_usage(FILE *out)
{
    fputs("certkeep — TLS certificate lifecycle manager\n\n", out);
    for (size_t i = 0; i < CK_ARRAY_LEN(commands); i++)
        if (commands[i].usage != NULL)
            fputs(commands[i].usage, out);
    fputs("usage: certkeep verify ...               (certkeep verify --help)\n"
          "\n"
          "Client commands use CERTKEEP_ADDR (default http://127.0.0.1:8443), CERTKEEP_TOKEN\n"
          "and, for https, CERTKEEP_CA_FILE. --json prints the API's JSON.\n"
          "Exit status: 0 ok, 1 the request or the check failed, 2 usage or unreadable input.\n",
          out);
}

static const struct top_command *find_command(const char *name)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int run_command(const struct top_command *cmd, int argc, char **argv)
{
    if (cmd->usage != NULL && ck_cli_wants_help(argc, argv)) {
        fputs(cmd->usage, stdout);
        return CK_EXIT_OK;
    }
    if (cmd->run_raw != NULL)
        return cmd->run_raw(argc, argv);
    struct ck_cli cli = {0};
    cli.json = ck_cli_take_flag(&argc, argv, "--json");
    return cmd->run(&cli, argc, argv);
}

/* `certkeep help [COMMAND]`, `certkeep --help`. */
static int help(int argc, char **argv)
{
    const struct top_command *cmd = argc > 2 ? find_command(argv[2]) : NULL;
    if (cmd != NULL && cmd->usage != NULL)
        fputs(cmd->usage, stdout);
    else if (cmd != NULL)
        return run_command(cmd, 2, (char *[]){argv[2], "--help", NULL});
    else
        print_usage(stdout);
    return CK_EXIT_OK;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return CK_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return help(argc, argv);
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("certkeep %s\n", CK_VERSION);
        return CK_EXIT_OK;
    }
    if (strcmp(name, "--json") == 0 && argc > 2) {
        /* `certkeep --json order show 7`: the flag goes after the command's name, where
         * run_command takes it. */
        argv[1] = argv[2];
        argv[2] = "--json";
        name = argv[1];
    }
    const struct top_command *cmd = find_command(name);
    if (cmd != NULL)
        return run_command(cmd, argc - 1, argv + 1);
    fprintf(stderr, "certkeep: unknown command %s\n\n", name);
    print_usage(stderr);
    return CK_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* before libcurl starts OpenSSL: the edge cache's arena routes OpenSSL's allocations */
    (void)ck_alloc_arena_route_openssl();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("certkeep: cannot initialise libcurl\n", stderr);
        return CK_EXIT_FAILED;
    }
    int rc = dispatch(argc, argv);
    curl_global_cleanup();
    return rc;
}
