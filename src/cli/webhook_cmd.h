/* webhook_cmd.h — `certkeep webhook add|list|delete|deliveries` (webhooks.c), dispatched from
 * src/main.c like the groups of commands.h. */
#ifndef CK_CLI_WEBHOOK_CMD_H
#define CK_CLI_WEBHOOK_CMD_H

#include "cli/cli.h"

int ck_cmd_webhook(const struct ck_cli *cli, int argc, char **argv);
extern const char ck_usage_webhook[];

#endif
