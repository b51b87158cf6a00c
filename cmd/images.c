#include <stdio.h>

#include "cmd/cli.h"

int cmd_images(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln images: not yet available\n");
    return 1;
}
