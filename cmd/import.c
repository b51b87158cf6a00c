#include <stdio.h>

#include "cmd/cli.h"

int cmd_import(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln import: not yet available\n");
    return 1;
}
