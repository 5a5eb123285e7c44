/* verify_cmd.h — `certkeep verify`: offline chain verification (docs/CLI.md).
 *
 *   certkeep verify --roots FILE [--untrusted FILE] [--host NAME | --ip ADDR]
 *                   [--at UNIX_TIME] LEAF.pem
 *
 * Exit status: 0 the chain is valid, 1 it is not (the reasons are printed), 2 usage or
 * unreadable input. */
#ifndef CK_CLI_VERIFY_CMD_H
#define CK_CLI_VERIFY_CMD_H

/* argv[0] is "verify". */
int ck_cmd_verify(int argc, char **argv);

#endif
