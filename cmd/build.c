#include <stdio.h>

#include "cmd/cli.h"

int cmd_build(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln build: not yet available\n");
    return 1;
}
