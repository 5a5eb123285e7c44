/* probe_cmd.h — `certkeep probe`: what a live TLS endpoint serves (docs/CLI.md).
 *
 *   certkeep probe HOST:PORT [--sni NAME] [--roots FILE] [--timeout SECONDS] [--json]
 *
 * Exit status: 0 the endpoint answered and its chain is valid, 1 the chain is invalid or the
 * endpoint cannot be reached, 2 usage or unreadable --roots. */
#ifndef CK_CLI_PROBE_CMD_H
#define CK_CLI_PROBE_CMD_H

#include "cli/cli.h"

/* argv[0] is "probe"; cli->json asks for the JSON view. */
int ck_cmd_probe(const struct ck_cli *cli, int argc, char **argv);

extern const char ck_usage_probe[];

#endif
