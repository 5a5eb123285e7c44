#include "cli/cli.h"

#include "cli/client.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long's `val` for table entry i; above every char so it never clashes with a short
 * option. */
#define OPT_VAL_BASE 256

bool ck_cli_take_flag(int *argc, char **argv, const char *flag)
{
    bool found = false;
    int out = 0;
    int i = 0;
    for (; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (i > 0 && strcmp(argv[i], flag) == 0) {
            found = true;
            continue;
        }
        argv[out++] = argv[i];
    }
    for (; i < *argc; i++)
        argv[out++] = argv[i];
    argv[out] = NULL;
    *argc = out;
    return found;
}

bool ck_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int ck_cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certkeep: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(usage, stderr);
    return CK_EXIT_USAGE;
}

int ck_cli_dispatch(const struct ck_cli *cli, const struct ck_cli_command *cmds, size_t n,
                    const char *usage, int argc, char **argv)
{
    if (argc < 2)
        return ck_cli_usage_error(usage, "%s needs a sub-command", argv[0]);
    if (ck_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return CK_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(cmds[i].name, argv[1]) == 0)
            return cmds[i].run ? cmds[i].run(cli, argc - 1, argv + 1)
                               : ck_client_simple(cli, argc - 1, argv + 1, cmds[i].simple);
    return ck_cli_usage_error(usage, "unknown command: %s %s", argv[0], argv[1]);
}

static void opt_store(const struct ck_opt *opt, const char *value, int *failed)
{
    switch (opt->kind) {
    case CK_OPT_STRING:
        *(const char **)opt->target = value;
        break;
    case CK_OPT_LIST:
        if (ck_strv_push(opt->target, value) != 0) {
            fputs("certkeep: out of memory\n", stderr);
            *failed = 1;
        }
        break;
    case CK_OPT_FLAG:
        *(bool *)opt->target = true;
        break;
    }
}

static struct option *opt_table(const struct ck_cli_spec *spec)
{
    struct option *table = calloc(spec->n_opts + 1, sizeof(*table));
    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < spec->n_opts; i++) {
        table[i].name = spec->opts[i].name;
        table[i].has_arg = spec->opts[i].kind == CK_OPT_FLAG ? no_argument : required_argument;
        table[i].val = OPT_VAL_BASE + (int)i;
    }
    return table;
}

/* Reports what getopt_long refused; `c` is ':' for a missing value, '?' for an unknown option. */
static int opt_error(const struct ck_cli_spec *spec, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == ':')
        return ck_cli_usage_error(spec->usage, "%s needs a value", arg);
    if (optopt != 0 && optopt < OPT_VAL_BASE)
        return ck_cli_usage_error(spec->usage, "unknown option -%c", optopt);
    return ck_cli_usage_error(spec->usage, "unknown option %s", arg);
}

int ck_cli_parse(const struct ck_cli_spec *spec, int argc, char **argv, char ***args, int *n_args)
{
    int rc = CK_EXIT_USAGE;
    struct option *table = opt_table(spec);
    if (table == NULL) {
        fputs("certkeep: out of memory\n", stderr);
        return CK_EXIT_FAILED;
    }
    optind = 0; /* GNU: re-initialise, the previous command may have used getopt */
    opterr = 0;
    int c;
    int failed = 0;
    while (!failed && (c = getopt_long(argc, argv, ":", table, NULL)) != -1) {
        if (c < OPT_VAL_BASE) {
            opt_error(spec, c, argv);
            goto cleanup;
        }
        opt_store(&spec->opts[c - OPT_VAL_BASE], optarg, &failed);
    }
    if (failed) {
        rc = CK_EXIT_FAILED;
        goto cleanup;
    }
    *n_args = argc - optind;
    *args = argv + optind;
    if (*n_args < spec->min_args) {
        ck_cli_usage_error(spec->usage, "%s: missing argument", argv[0]);
        goto cleanup;
    }
    if (*n_args > spec->max_args) {
        ck_cli_usage_error(spec->usage, "%s: unexpected argument %s", argv[0],
                           (*args)[spec->max_args]);
        goto cleanup;
    }
    rc = CK_EXIT_OK;
cleanup:
    free(table);
    return rc;
}

int ck_cli_parse_id(const char *text, const char *usage, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long id = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || id <= 0 || text[0] == '+')
        return ck_cli_usage_error(usage, "%s is not an id (a positive number)", text);
    *out = id;
    return CK_EXIT_OK;
}
