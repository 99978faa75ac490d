/*
 * Runs every Vulkan TEST (or those whose name contains argv[1]) and prints
 * "ok NAME" / "FAIL NAME" per test and "vulkan: N passed, N failed".
 * A test also fails when the Vulkan validation layer (enabled by the
 * caller: VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation) reported any
 * warning or error while it ran; the runner says whether the layer is on.
 */
#include "../test.h"
#include "backend/vulkan/vk.h"
#include "vk_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static test_case *head, **tail = &head;
static char tmpdir[256];

void test_register(test_case *tc) {
    *tail = tc;
    tail = &tc->next;
}

const char *test_tmpdir(void) { return tmpdir; }

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(tmpdir, sizeof tmpdir, "%s",
             getenv("ZT_TEST_TMP") ? getenv("ZT_TEST_TMP") : "build/test-tmp");
    for (char *p = tmpdir + 1; *p; p++) /* mkdir -p */
        if (*p == '/') {
            *p = 0;
            mkdir(tmpdir, 0755);
            *p = '/';
        }
    mkdir(tmpdir, 0755);
    const char *layers = getenv("VK_INSTANCE_LAYERS");
    printf("vulkan tests: validation layer %s\n",
           layers && strstr(layers, "VK_LAYER_KHRONOS_validation") ? "on" : "OFF");
    int passed = 0, failed = 0;
    for (test_case *tc = head; tc; tc = tc->next) {
        if (filter && !strstr(tc->name, filter)) continue;
        int f = 0, before = vk_validation_messages();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tc->fn(&f);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (getenv("ZT_TEST_TIMES"))
            fprintf(stderr, "  %.2f s %s\n",
                    (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                    tc->name);
        int msgs = vk_validation_messages() - before;
        if (msgs) fprintf(stderr, "  %d validation message(s) during %s\n", msgs, tc->name);
        f |= msgs != 0;
        printf("%s %s\n", f ? "FAIL" : "ok", tc->name);
        fflush(stdout);
        if (f)
            failed++;
        else
            passed++;
    }
    vt_release();
    if (vk_validation_messages()) {
        printf("FAIL vulkan_validation_clean_at_exit\n");
        failed++;
    }
    printf("vulkan: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
