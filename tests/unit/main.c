/* Runs every registered TEST (or those whose name contains argv[1]). */
#include <stdlib.h>
#include <sys/stat.h>

#include "../test.h"

static test_case *head, **tail = &head;
static char tmpdir[256];

void test_register(test_case *tc) {
    *tail = tc;
    tail = &tc->next;
}

const char *test_tmpdir(void) { return tmpdir; }

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(tmpdir, sizeof tmpdir, "%s", getenv("ZT_TEST_TMP") ? getenv("ZT_TEST_TMP") : "build/test-tmp");
    mkdir(tmpdir, 0755);
    int passed = 0, failed = 0;
    for (test_case *tc = head; tc; tc = tc->next) {
        if (filter && !strstr(tc->name, filter)) continue;
        int f = 0;
        tc->fn(&f);
        printf("%s %s\n", f ? "FAIL" : "ok  ", tc->name);
        fflush(stdout);
        if (f) failed++;
        else passed++;
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
