/* clipnn command-line program. */
#include <stdio.h>
#include <string.h>

#include "clipnn.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clipnn COMMAND [ARGS]\n"
            "  train   CONFIG.json [--out DIR] [--set PATH=VALUE]... [--resume CHECKPOINT] [--quiet]\n"
            "  compare CONFIG.json [--variant NAME:PATH=VALUE[,...]]... [--seeds N] [--out DIR]\n"
            "  eval    CONFIG.json --checkpoint FILE\n"
            "  sample  CONFIG.json --checkpoint FILE [--length N] [--temperature T]\n"
            "  clipnn --help | --version ; clipnn COMMAND --help\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("clipnn %s\n", CLIPNN_VERSION); return 0; }
    fprintf(stderr, "clipnn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
