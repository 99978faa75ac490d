/* Shared helpers of the Vulkan tests (vk_test.h). */
#include "vk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vk_ctx *contexts[2];

vk_ctx *vt_ctx(bool portable) {
    if (!contexts[portable]) {
        zt_error err = {0};
        if (vk_ctx_create(&contexts[portable], portable, &err) != ZT_OK) {
            fprintf(stderr, "  %s\n", err.msg);
            return NULL;
        }
    }
    return contexts[portable];
}

void vt_release(void) {
    for (int i = 0; i < 2; i++) {
        vk_ctx_free(contexts[i]);
        contexts[i] = NULL;
    }
}

bool vt_buf(vk_ctx *c, vk_buf *b, size_t n, const void *src, uint32_t fill) {
    zt_error err = {0};
    if (vk_buf_create(c, b, n, VK_MEM_DEVICE, "test buffer", &err) ||
        (src ? vk_write(c, b, 0, src, n, &err) : vk_fill(c, b, fill, &err))) {
        fprintf(stderr, "  %s\n", err.msg);
        return false;
    }
    return true;
}

bool vt_get(vk_ctx *c, vk_buf *b, void *dst, size_t n) {
    zt_error err = {0};
    if (vk_read(c, b, 0, dst, n, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return false;
    }
    return true;
}

double vt_absmax(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

bool vt_close(const char *what, const float *got, const float *want, size_t n, double tol) {
    double scale = vt_absmax(want, n);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol * scale + tol)) {
            fprintf(stderr, "  %s[%zu] = %.9g, expected %.9g (scale %.3g, tol %g)\n", what, i,
                    got[i], want[i], scale, tol);
            return false;
        }
    }
    return true;
}
