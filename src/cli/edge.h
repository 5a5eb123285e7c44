/* edge.h — the command line around the edge (edge.c): `certkeep edge`, and the order
 * sub-commands stage, ack-staging, deploy and rollback that order.c lists. */
#ifndef CK_CLI_EDGE_H
#define CK_CLI_EDGE_H

#include "cli/cli.h"

extern const char ck_usage_edge[];
/* The lines order.c adds to its usage text. */
#define CK_USAGE_ORDER_EDGE                                                                        \
    "       certkeep order stage ID | order ack-staging ID | order rollback ID\n"                  \
    "       certkeep order deploy ID [--not-before TIME]\n"

/* `certkeep edge [--enrollment NAME]`: the staging, production and http addresses, and the
 * hosts-file lines for an enrollment's names. */
int ck_cmd_edge(const struct ck_cli *cli, int argc, char **argv);

/* `certkeep order stage|ack-staging|deploy|rollback ...` (argv[0] is the sub-command). */
int ck_cmd_order_stage(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_order_ack_staging(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_order_deploy(const struct ck_cli *cli, int argc, char **argv);
int ck_cmd_order_rollback(const struct ck_cli *cli, int argc, char **argv);

#endif
