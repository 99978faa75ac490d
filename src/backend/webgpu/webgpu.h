/*
 * The WebGPU backend (wasm32 build only): hand-written WGSL kernels driven
 * through the page's JavaScript host (host.h). The engine reaches it as
 * zt_webgpu_backend ("webgpu") when built with ZT_HAVE_WEBGPU.
 */
#ifndef ZT_BACKEND_WEBGPU_WEBGPU_H
#define ZT_BACKEND_WEBGPU_WEBGPU_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"

extern const zt_backend_ops zt_webgpu_backend;

/* Which optional device features backends created from now on may use
 * (both on by default; each is used only when the device has it), and how
 * many threads share a matmul output feature (0: by adapter, else a power
 * of two up to 64). The page's toggles and the tests use it to run the
 * fallbacks. */
void zt_webgpu_allow(bool shader_f16, bool subgroups, int split);

/* "adapter; f16|f32 path; subgroup|workgroup reductions" for what a backend
 * created now would use (NUL-terminated, at most cap bytes). */
void zt_webgpu_describe(char *out, size_t cap);

/* Runs every WGSL kernel alone on random inputs against a scalar reference
 * (selftest.c) with the given choices (as zt_webgpu_allow). Returns a JSON
 * array of {"name", "err", "tol", "ok"} (malloc'd) and the failures in
 * *n_failed, or NULL with err set when the device fails. */
char *zt_webgpu_selftest(bool allow_f16, bool allow_subgroups, int split, uint64_t seed,
                         int *n_failed, zt_error *err);

/* Every pipeline a backend with these choices can build, as a JSON array
 * of {"label", "constants", "code"} (malloc'd), for compiling the WGSL
 * elsewhere (tests/browser/wgsl.test.mjs runs Dawn with shader-f16). */
char *zt_webgpu_shaders(bool allow_f16, bool allow_subgroups, int split, bool kv_f16);

#endif
