#version 450
/*
 * The synchronization micro-benchmark's shader (bench/vulkan/sync_bench.c):
 * what one dependency between two steps of G workgroups costs on a device,
 * with no work in the steps, in three forms:
 *
 *   MODE 0, a grid barrier inside one dispatch: ITERS times, every
 *           workgroup adds 1 to the counter and its first thread polls
 *           until the counter reaches (i + 1) G (the persistent-kernel
 *           form; needs all G workgroups resident at once);
 *   MODE 1, an empty step per dispatch (one store), the host records N
 *           dispatches with or without pipeline barriers between them;
 *   MODE 2, a chained dispatch: dispatch k (push constant) waits until the
 *           counter reaches k G, then adds 1 (the dispatch chaining of
 *           bench/results/2026-11-27-vulkan-h100-2.md, without barriers).
 *
 * Polls are atomic loads: a plain load in an empty loop was hoisted on
 * NVIDIA's driver (same record).
 */
#extension GL_KHR_memory_scope_semantics : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ITERS = 1u;
layout(constant_id = 2) const uint MODE = 0u;

layout(binding = 0) coherent buffer Sync { uint count; uint pad[31]; uint sink[]; };
layout(push_constant) uniform Push { uint k; } pc;

uint load_count() {
    return atomicLoad(count, gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsRelaxed);
}

/* Every workgroup has arrived once count reaches target. */
void arrive_and_wait(uint target) {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) {
        atomicAdd(count, 1u);
        while (load_count() < target) {
        }
    }
    barrier();
    memoryBarrierBuffer();
}

void main() {
    uint g = gl_NumWorkGroups.x;
    if (MODE == 0u) {
        for (uint i = 0u; i < ITERS; i++) arrive_and_wait((i + 1u) * g);
    } else if (MODE == 2u) {
        if (gl_LocalInvocationIndex == 0u)
            while (load_count() < pc.k * g) {
            }
        barrier();
        memoryBarrierBuffer();
        barrier();
        if (gl_LocalInvocationIndex == 0u) atomicAdd(count, 1u);
    }
    if (gl_LocalInvocationIndex == 0u) sink[gl_WorkGroupID.x] = pc.k;
}
