/*
 * Functions wasi-libc declares but does not define, which the shared core
 * calls: madvise (advice only — the CPU matmul asks for huge pages, which
 * linear memory has no notion of).
 */
#include <stddef.h>
#include <sys/mman.h>

int madvise(void *addr, size_t len, int advice) {
    (void)addr, (void)len, (void)advice;
    return 0;
}
