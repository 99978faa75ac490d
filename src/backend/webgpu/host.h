/*
 * The WebGPU host: the few functions the wasm module imports from the page's
 * JavaScript (web/wasm/zt-host.js, import module "zt_gpu"). C owns every
 * decision (which buffers, which shaders, which dispatches in which order);
 * the host only turns ids into GPU objects and calls the browser's API.
 *
 * Objects are small integer ids (> 0) handed out by the host. Sizes and
 * offsets are bytes. Pointers point into the wasm linear memory.
 *
 * Two imports are asynchronous in the browser and reach C through JSPI
 * (WebAssembly.Suspending): zt_gpu_read waits for a buffer map, and
 * zt_gpu_check waits for the device's error scope. Any export that can reach
 * them must be called through WebAssembly.promising (zt-host.js does).
 */
#ifndef ZT_BACKEND_WEBGPU_HOST_H
#define ZT_BACKEND_WEBGPU_HOST_H

#include <stdint.h>

#define ZT_GPU_IMPORT(name) __attribute__((import_module("zt_gpu"), import_name(name)))

/* Bits of zt_gpu_features(). */
enum {
    ZT_GPU_HAVE_DEVICE = 1 << 0, /* a device was created before the module started */
    ZT_GPU_SHADER_F16 = 1 << 1,  /* the device has "shader-f16" enabled */
    ZT_GPU_SUBGROUPS = 1 << 2,   /* the device has "subgroups" enabled */
    ZT_GPU_CPU_ADAPTER = 1 << 3  /* the adapter runs on the CPU (SwiftShader, fallback) */
};

/* Buffer usages (the host adds COPY_SRC / COPY_DST as needed). */
enum { ZT_GPU_STORAGE = 1, ZT_GPU_UNIFORM = 2 };

ZT_GPU_IMPORT("features") uint32_t zt_gpu_features(void);
/* Writes up to cap bytes of "vendor architecture description" (NUL-terminated). */
ZT_GPU_IMPORT("adapter_name") void zt_gpu_adapter_name(char *out, uint32_t cap);
/* The device's maxStorageBufferBindingSize, bytes. */
ZT_GPU_IMPORT("max_binding") uint32_t zt_gpu_max_binding(void);

/* A zero-filled buffer of `size` bytes; 0 on failure. */
ZT_GPU_IMPORT("buffer_create")
uint32_t zt_gpu_buffer_create(uint32_t size, uint32_t usage, const char *label);
ZT_GPU_IMPORT("buffer_write")
void zt_gpu_buffer_write(uint32_t buf, uint32_t offset, const void *src, uint32_t size);
ZT_GPU_IMPORT("buffer_destroy") void zt_gpu_buffer_destroy(uint32_t buf);

/* A compute pipeline from WGSL source (entry point "main"); `consts` holds
 * n_consts NUL-terminated override names and `values` their values. */
ZT_GPU_IMPORT("pipeline_create")
uint32_t zt_gpu_pipeline_create(const char *wgsl, uint32_t len, const char *label,
                                const char *const *consts, const double *values,
                                uint32_t n_consts);

/* One bind-group entry: binding, buffer, offset, size (0 = to the end). */
typedef struct zt_gpu_binding {
    uint32_t binding, buffer, offset, size;
} zt_gpu_binding;

/* A bind group for group 0 of `pipeline`. */
ZT_GPU_IMPORT("bind_group_create")
uint32_t zt_gpu_bind_group_create(uint32_t pipeline, const zt_gpu_binding *entries,
                                  uint32_t n_entries, const char *label);

/* One dispatch: pipeline, bind group, workgroup counts. */
typedef struct zt_gpu_dispatch {
    uint32_t pipeline, bind_group, x, y, z;
} zt_gpu_dispatch;

/* Records the dispatches, in order, into one compute pass and submits. */
ZT_GPU_IMPORT("submit") void zt_gpu_submit(const zt_gpu_dispatch *list, uint32_t n);

/* Copies `size` bytes at `offset` of `buf` to dst once all submitted work
 * is done (suspends through JSPI). 0 on success. */
ZT_GPU_IMPORT("read")
int32_t zt_gpu_read(uint32_t buf, uint32_t offset, uint32_t size, void *dst);

/* Waits for every error the device reported since the last call (pipeline
 * compilation, validation, out of memory); writes the first message to out
 * and returns 1 when there was one, else 0 (suspends through JSPI). */
ZT_GPU_IMPORT("check") int32_t zt_gpu_check(char *out, uint32_t cap);

#endif
