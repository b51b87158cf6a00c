#include <stdio.h>

#include "cmd/cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln info: not yet available\n");
    return 1;
}
