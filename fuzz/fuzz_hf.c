/*
 * fuzz_hf — the Hugging Face directory loader: config.json, safetensors
 * headers and data offsets, tokenizer_config.json's chat template, and
 * model.safetensors.index.json.
 *
 * The input is split on FUZZ_SEP (fuzz_util.h) into up to four files of a
 * scratch directory, each written only when its part is there:
 *
 *   part 0  config.json
 *   part 1  model.safetensors
 *   part 2  tokenizer_config.json
 *   part 3  model.safetensors.index.json
 *
 * and the directory goes through zt_model_load (hf_load_dir, then
 * arch_init). A model that loads must have every tensor view inside a
 * mapped file or an owned buffer; its chat template is rendered once.
 */
#include "fuzz/fuzz_util.h"
#include "model/model.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    dir = fuzz_dir_create("hf");
    if (!dir) abort();
    return 0;
}

/* Every tensor lies inside one of the model's mappings, or is an owned
 * copy (ASan checks that one when we read its last byte). */
static void check_views(const zt_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const zt_tensor *t = &m->tensors[i];
        if (!t->data || !t->nbytes) continue;
        const uint8_t *p = t->data;
        bool in_map = false;
        for (int k = 0; k < m->n_maps; k++) {
            const uint8_t *a = m->maps[k].addr;
            if (p >= a && p < a + m->maps[k].size) {
                if (t->nbytes > (size_t)(a + m->maps[k].size - p)) abort(); /* runs off the map */
                in_map = true;
            }
        }
        if (!in_map) {
            volatile uint8_t last = p[t->nbytes - 1];
            (void)last;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[FUZZ_MAX_PARTS] = {"config.json", "model.safetensors",
                                                      "tokenizer_config.json",
                                                      "model.safetensors.index.json"};
    fuzz_part parts[FUZZ_MAX_PARTS];
    int n = fuzz_split(data, size, parts, FUZZ_MAX_PARTS);
    fuzz_dir_clear();
    for (int k = 0; k < n; k++)
        if (fuzz_dir_write(names[k], &parts[k]) != 0) return 0;

    zt_error err = {0};
    zt_model *m = NULL;
    if (zt_model_load(dir, &m, &err) == ZT_OK) {
        check_views(m);
        static const zt_chat_msg msgs[] = {{"system", "S"}, {"user", "U"}};
        char *prompt = NULL;
        if (zt_chat_render(m, NULL, msgs, 2, true, &prompt, &err) == ZT_OK) free(prompt);
        zt_model_free(m);
    } else if (!err.msg[0]) {
        abort(); /* every refusal says why */
    }
    return 0;
}
