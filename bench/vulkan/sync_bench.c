/*
 * What one dependency between two steps of G workgroups costs on a Vulkan
 * device, with no work in the steps (bench/vulkan/sync.comp):
 *
 *   barrier    N dispatches with a compute-to-compute pipeline barrier
 *              before each (the Vulkan backend's decode step today);
 *   overlap    the same N dispatches with no barrier (no dependency at all:
 *              the launch cost when dispatches may overlap);
 *   chained    N dispatches with no barrier, each waiting in the shader for
 *              the previous one's workgroups (atomic counter);
 *   grid       one dispatch of G resident workgroups crossing N grid
 *              barriers (the persistent-kernel form).
 *
 *   bench_vk_sync [N [G]]      (default 1000 steps; G = 66, 132, 264, 528,
 *                              or only the one given: G = 1 on lavapipe,
 *                              whose workgroups are not all resident)
 *
 * Each form is one command buffer, recorded once and submitted 5 times
 * after a warm-up; the time per step is (t(N) - t(1)) / (N - 1) of the
 * median submit-to-fence wall times, so that the submission's own cost
 * drops out. Workgroups of 256 threads.
 */
#include "backend/vulkan/vk.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const uint32_t spv_sync[] =
#include "bench_sync.inc"
    ;

#define WG   256
#define REPS 5

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench {
    vk_ctx *c;
    VkShaderModule module;
    vk_buf buf;
    VkDescriptorSet set;
    VkCommandBuffer cb;
    VkPipeline pipes[8];
    uint32_t keys[8][2]; /* iters, mode */
    int n_pipes;
} bench;

static int pipeline(bench *b, uint32_t iters, uint32_t mode, VkPipeline *out, zt_error *err) {
    for (int i = 0; i < b->n_pipes; i++)
        if (b->keys[i][0] == iters && b->keys[i][1] == mode) {
            *out = b->pipes[i];
            return ZT_OK;
        }
    uint32_t spec[3] = {WG, iters, mode};
    VkSpecializationMapEntry map[3];
    for (int i = 0; i < 3; i++) map[i] = (VkSpecializationMapEntry){(uint32_t)i, 4u * i, 4};
    VkSpecializationInfo si = {3, map, sizeof spec, spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = b->module,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = b->c->pipe_layout};
    if (b->n_pipes == 8) return zt_fail(err, ZT_EINVAL, "too many pipelines");
    int rc = vk_check(vkCreateComputePipelines(b->c->dev, VK_NULL_HANDLE, 1, &ci, NULL, out), err,
                      "vkCreateComputePipelines");
    if (!rc) {
        b->keys[b->n_pipes][0] = iters, b->keys[b->n_pipes][1] = mode;
        b->pipes[b->n_pipes++] = *out;
    }
    return rc;
}

/* Median wall time of one submission of n dispatches of G workgroups
 * (shader mode `mode`, `iters` grid barriers each), with or without
 * barriers between them; the counter is zeroed before every submission. */
static int time_once(bench *b, int n, uint32_t g, uint32_t mode, uint32_t iters, bool barriers,
                     double *us, zt_error *err) {
    VkPipeline pipe;
    int rc = pipeline(b, iters, mode, &pipe, err);
    if (rc) return rc;
    vk_dispatch *d = calloc((size_t)n, sizeof *d);
    if (!d) return zt_fail(err, ZT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        d[i] = (vk_dispatch){.name = "sync",
                             .pipe = pipe,
                             .set = b->set,
                             .groups = {g, 1, 1},
                             .push = {(uint32_t)i}};
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    if ((rc = vk_check(vkResetCommandBuffer(b->cb, 0), err, "vkResetCommandBuffer")) ||
        (rc = vk_check(vkBeginCommandBuffer(b->cb, &bi), err, "vkBeginCommandBuffer"))) {
        free(d);
        return rc;
    }
    /* the backend's recorder, so that "barrier" is exactly the decode
     * step's barrier; its diagnostic switch leaves the barriers out */
    if (!barriers) setenv("ZT_VK_DIAG_NO_BARRIERS", "1", 1);
    vk_record(b->c, b->cb, d, n, VK_NULL_HANDLE);
    unsetenv("ZT_VK_DIAG_NO_BARRIERS");
    free(d);
    if ((rc = vk_check(vkEndCommandBuffer(b->cb), err, "vkEndCommandBuffer"))) return rc;
    double t[REPS + 1];
    for (int r = 0; r <= REPS; r++) { /* r = 0: warm-up */
        if ((rc = vk_fill(b->c, &b->buf, 0, err))) return rc;
        double t0 = now_us();
        if ((rc = vk_submit_wait(b->c, b->cb, err))) return rc;
        t[r] = now_us() - t0;
    }
    qsort(t + 1, REPS, sizeof(double), cmp_double);
    *us = t[1 + REPS / 2];
    return ZT_OK;
}

/* Microseconds per step of a form: n steps against one. */
static int per_step(bench *b, int n, uint32_t g, uint32_t mode, bool barriers, double *us,
                    zt_error *err) {
    double t1, tn;
    bool grid = mode == 0; /* n barriers in one dispatch, else n dispatches */
    int rc = time_once(b, 1, g, mode, 1, barriers, &t1, err);
    if (!rc) rc = time_once(b, grid ? 1 : n, g, mode, grid ? (uint32_t)n : 1, barriers, &tn, err);
    if (!rc) *us = (tn - t1) / (n - 1);
    return rc;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000, only = argc > 2 ? atoi(argv[2]) : 0;
    if (n < 2 || n > 100000 || only < 0 || only > 1024) {
        fprintf(stderr, "usage: bench_vk_sync [N [G]]   (2..100000 steps; G: one grid size)\n");
        return 2;
    }
    bench b = {0};
    zt_error err = {0};
    int rc = vk_ctx_create(&b.c, false, &err);
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = sizeof spv_sync,
                                   .pCode = spv_sync};
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if (!rc)
        rc = vk_check(vkCreateShaderModule(b.c->dev, &mi, NULL, &b.module), &err,
                      "vkCreateShaderModule");
    if (!rc) rc = vk_buf_create(b.c, &b.buf, 4 * (32 + 1024), VK_MEM_DEVICE, "sync", &err);
    if (!rc) {
        vk_buf *bufs[VK_BINDINGS] = {&b.buf};
        rc = vk_set(b.c, bufs, &b.set, &err);
    }
    if (!rc) {
        ai.commandPool = b.c->cmd_pool;
        rc = vk_check(vkAllocateCommandBuffers(b.c->dev, &ai, &b.cb), &err,
                      "vkAllocateCommandBuffers");
    }
    if (!rc) {
        printf("device: %s; %d steps of G workgroups of %d threads, no work in a step\n",
               b.c->props.deviceName, n, WG);
        printf("%6s %16s %16s %16s %16s   (us per step)\n", "G", "barrier", "overlap", "chained",
               "grid");
    }
    const uint32_t gs[] = {66, 132, 264, 528};
    for (size_t i = 0; i < sizeof gs / sizeof gs[0] && !rc; i++) {
        if (only && i > 0) break;
        uint32_t g = only ? (uint32_t)only : gs[i];
        double bar, ovl, chn, grd;
        if ((rc = per_step(&b, n, g, 1, true, &bar, &err)) ||
            (rc = per_step(&b, n, g, 1, false, &ovl, &err)) ||
            (rc = per_step(&b, n, g, 2, false, &chn, &err)) ||
            (rc = per_step(&b, n, g, 0, true, &grd, &err)))
            break;
        printf("%6u %16.2f %16.2f %16.2f %16.2f\n", g, bar, ovl, chn, grd);
    }
    if (rc) fprintf(stderr, "bench_vk_sync: %s\n", err.msg);
    if (b.c) {
        vkDeviceWaitIdle(b.c->dev);
        for (int i = 0; i < b.n_pipes; i++) vkDestroyPipeline(b.c->dev, b.pipes[i], NULL);
        if (b.module) vkDestroyShaderModule(b.c->dev, b.module, NULL);
        vk_buf_free(b.c, &b.buf);
        vk_ctx_free(b.c);
    }
    return rc ? 1 : 0;
}
