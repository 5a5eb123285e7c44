/* verify_cmd.c — `certkeep verify` (placeholder until the verifier lands). */
#include <stdio.h>

#include "cli/verify_cmd.h"

int ck_cmd_verify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("certkeep verify: not yet\n", stderr);
    return 2;
}
