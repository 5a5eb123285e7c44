/* commands.h — the command groups of docs/CLI.md that src/main.c dispatches to, one file each
 * (admin.c: tenant and token, enrollment.c, order.c, jobs.c, inspect.c: csr and cert, events.c:
 * roots, poll and events). Each takes argv[0] = the group's name and returns the process exit code.
 * The usage texts are what `certkeep GROUP --help` prints. */
#ifndef CK_CLI_COMMANDS_H
#define CK_CLI_COMMANDS_H

#include "cli/cli.h"

int ck_cmd_tenant(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_token(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_enrollment(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_order(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_jobs(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_job(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_csr(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_cert(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_roots(const struct ck_cli *cli, int argc, char **argv);  /* events.c */
int ck_cmd_poll(const struct ck_cli *cli, int argc, char **argv);   /* events.c */
int ck_cmd_events(const struct ck_cli *cli, int argc, char **argv); /* events.c */
int ck_cmd_target(const struct ck_cli *cli, int argc, char **argv); /* targets.c */

extern const char ck_usage_tenant[];
extern const char ck_usage_token[];
extern const char ck_usage_enrollment[];
extern const char ck_usage_order[];
extern const char ck_usage_jobs[];
extern const char ck_usage_job[];
extern const char ck_usage_csr[];
extern const char ck_usage_cert[];
extern const char ck_usage_roots[];
extern const char ck_usage_poll[];
extern const char ck_usage_events[];
extern const char ck_usage_target[];

#endif
