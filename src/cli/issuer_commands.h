/* issuer_commands.h — the command groups of issue 5 (docs/CLI.md, "Issuers"): `certkeep ca`,
 * `certkeep issuer` and `certkeep dns` (src/cli/issuers.c). Same conventions as commands.h. */
#ifndef CK_CLI_ISSUER_COMMANDS_H
#define CK_CLI_ISSUER_COMMANDS_H

#include "cli/cli.h"

int ck_cmd_ca(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_issuer(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_dns(const struct ck_cli *cli, int argc, char **argv);

extern const char ck_usage_ca[];
extern const char ck_usage_issuer[];
extern const char ck_usage_dns[];

#endif
