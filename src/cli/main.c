/* zt — the command line. `zt NAME ARGS...` runs cmd_NAME (see cli.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cmd_run, "MODEL \"prompt\"     complete a prompt, streaming tokens"},
    {"chat", cmd_chat, "MODEL              interactive chat with the model's template"},
    {"serve", cmd_serve, "MODEL              OpenAI-compatible server and chat page"},
    {"tokenize", cmd_tokenize, "MODEL TEXT     print token ids as JSON"},
    {"info", cmd_info, "MODEL              architecture, tensors, memory plan"},
    {"logits", cmd_logits, "MODEL --tokens 1,2,3 -o FILE   logits of every position (f32)"},
    {"bench", cmd_bench, "MODEL             prefill and decode throughput"},
    {"synth", cmd_synth, "--preset P --type T -o FILE   write a random-weight model"},
    {"convert", cmd_convert, "IN OUT.gguf --type T   convert / quantize to GGUF"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: zt COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\ncommon options: --backend cpu|cuda|vulkan|auto  --threads N  --ctx N\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "zt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
