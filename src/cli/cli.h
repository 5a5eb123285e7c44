/* cli.h — what every command group shares: exit codes (docs/CLI.md), dispatch of sub-commands,
 * and option parsing from a declarative table so that every command reports usage errors the
 * same way. */
#ifndef CK_CLI_CLI_H
#define CK_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

enum { CK_EXIT_OK = 0, CK_EXIT_FAILED = 1, CK_EXIT_USAGE = 2 };

/* Settings that apply to the whole command line, taken out of argv before dispatch. */
struct ck_cli {
    bool json; /* --json: print the API's JSON instead of the human view */
};

/* argv[0] is the (sub-)command's own name, as for main(). Returns the process exit code. */
typedef int (*ck_cli_handler)(const struct ck_cli *cli, int argc, char **argv);

struct ck_simple_command; /* client.h */

/* A sub-command: either a handler, or (run NULL) a plain API call that ck_client_simple runs. */
struct ck_cli_command {
    const char *name;
    ck_cli_handler run;
    const struct ck_simple_command *simple;
};

/* Removes every occurrence of `flag` before a "--" from argv (keeping the NULL terminator);
 * returns whether there was one. */
bool ck_cli_take_flag(int *argc, char **argv, const char *flag);

/* True when argv (after argv[0], before "--") asks for help: -h or --help. */
bool ck_cli_wants_help(int argc, char **argv);

/* Prints "certkeep: <message>" and then the usage on stderr; returns CK_EXIT_USAGE. */
int ck_cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs the sub-command named argv[1] with (argc - 1, argv + 1). A missing or unknown name, or
 * --help, prints `usage` (stderr and exit 2, or stdout and exit 0 for help). */
int ck_cli_dispatch(const struct ck_cli *cli, const struct ck_cli_command *cmds, size_t n,
                    const char *usage, int argc, char **argv);

/* ---- options ---- */

enum ck_opt_kind {
    CK_OPT_STRING, /* target: const char ** (the last one given wins) */
    CK_OPT_LIST,   /* target: ck_strv * (repeatable) */
    CK_OPT_FLAG,   /* target: bool *, set to true */
};

struct ck_opt {
    const char *name; /* long name without "--" */
    enum ck_opt_kind kind;
    void *target;
};

struct ck_cli_spec {
    const char *usage;
    const struct ck_opt *opts;
    size_t n_opts;
    int min_args, max_args; /* positional arguments after the options */
};

/* Parses argv (argv[0] = the command's name) with getopt_long. On success *args points at the
 * positional arguments and *n_args counts them; on a usage error prints it and returns
 * CK_EXIT_USAGE. */
int ck_cli_parse(const struct ck_cli_spec *spec, int argc, char **argv, char ***args, int *n_args);

/* Parses a resource id (a positive decimal integer); prints a usage error when it is not one. */
int ck_cli_parse_id(const char *text, const char *usage, long long *out);

#endif
