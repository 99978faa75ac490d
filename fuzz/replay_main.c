/*
 * A main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line (a
 * directory stands for the files in it), then prints "N inputs". Built by
 * tests/e2e/fuzz_regressions.sh with the compiler and library of the suite
 * being run (so under `make asan` the kept crash inputs replay under ASan
 * and UBSan), with no clang or libFuzzer needed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int n_inputs;

static void run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, n = 0, k;
    uint8_t *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) exit(2);
    /* an exact-size copy, so ASan sees reads past the input's end */
    uint8_t *input = malloc(n ? n : 1);
    if (!input) exit(2);
    memcpy(input, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(input, n);
    free(input);
    n_inputs++;
}

static void run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (names[i]->d_name[0] != '.') {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
                run_path(p);
            }
            free(names[i]);
        }
        free(n > 0 ? names : NULL);
        return;
    }
    run_file(path);
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%d inputs\n", n_inputs);
    return 0;
}
