/* zt_model_load: picks the format from the path (a directory is a Hugging
 * Face model, anything else GGUF), loads it, then interprets it (arch.c). */
#include <stdlib.h>
#include <sys/stat.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

int zt_model_load(const char *path, zt_model **out, zt_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return zt_fail(err, ZT_EIO, "%s: no such file or directory", path);
    zt_model *m = model_new(path);
    if (!m) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = hf_load_dir(path, m, err);
        if (rc == ZT_OK && m->hf_tokenizer_json)
            rc = hf_tokenizer_to_kv(m, m->hf_tokenizer_json, err);
    } else {
        rc = gguf_load(path, m, err);
    }
    if (rc == ZT_OK) rc = arch_init(m, err);
    if (rc != ZT_OK) {
        zt_model_free(m);
        return rc;
    }
    *out = m;
    return ZT_OK;
}
