/* Helpers shared by the Vulkan tests: one device context per shader build
 * (kept for the whole run: device creation under the validation layer is
 * slow), random data, and comparisons that name the first bad element. */
#ifndef ZT_TESTS_VK_TEST_H
#define ZT_TESTS_VK_TEST_H

#include "backend/vulkan/vk.h"

#include <stdbool.h>
#include <stdint.h>

/* The shared context: fast build where the device has it, or portable. */
vk_ctx *vt_ctx(bool portable);
void vt_release(void);

/* Device buffer of n bytes holding src (NULL: filled with `fill` words). */
bool vt_buf(vk_ctx *c, vk_buf *b, size_t n, const void *src, uint32_t fill);
bool vt_get(vk_ctx *c, vk_buf *b, void *dst, size_t n);

/* |got - want| <= tol * scale + tol for n floats; prints the first miss
 * (and NaNs, i.e. elements the shader never wrote over the poison). */
bool vt_close(const char *what, const float *got, const float *want, size_t n, double tol);
double vt_absmax(const float *x, size_t n);

#endif
