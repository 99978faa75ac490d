/*
 * Dispatch chaining: the decode step's per-layer dispatches recorded with
 * no pipeline barrier between them, each waiting inside the shader for the
 * one before it. Included by every shader that has a chained build
 * (ZT_CHAIN 1: matmul, ffn, qkv, attention, attention_merge).
 *
 * Why: on the H100 a compute-to-compute pipeline barrier costs ~7.8 us
 * (the device drains, then the next dispatch ramps up), half of a Phi-3
 * decode step (bench/results/2026-11-27-vulkan-h100.md). A chained
 * dispatch's workgroups are launched while the previous dispatch still
 * runs, and pay only for the last of its workgroups to finish.
 *
 * Protocol, per recorded dispatch i (the host's vk_record):
 *   - chain[i] counts the finished workgroups of dispatch i; the command
 *     buffer zeroes the chain buffer before its first dispatch;
 *   - every workgroup of a chained dispatch ends with chain_signal: its
 *     writes made visible device-wide, then one increment of chain[i];
 *   - a dispatch whose predecessor is chained starts with chain_wait: one
 *     thread polls chain[i - 1] until it reaches the predecessor's
 *     workgroup count (push constant), then the workgroup proceeds. Since
 *     dispatch i - 1 waited in the same way, every earlier dispatch is done
 *     too.
 * The reads of data that earlier dispatches of the step wrote bypass the
 * SM's L1 (ZT_DEP, `coherent`): without the barrier nothing invalidates
 * it, and a stale line would survive from an earlier read on that SM.
 * Weights are never written and keep the L1 path.
 *
 * Forward progress needs the device to launch a dispatch's workgroups in
 * order, all of one dispatch before any of the next (so that the oldest
 * unfinished dispatch always has all its workgroups resident): true of
 * NVIDIA's hardware, not promised by Vulkan. The host chains only where
 * that is known (vk_ctx.chain); everywhere else the same shaders run with
 * barriers, and the waits are never taken.
 */
#if ZT_CHAIN
#define ZT_DEP coherent

/* One counter per dispatch, each in a 128-byte line of its own: the
 * pollers of one dispatch and the signals of another do not queue at the
 * same L2 slice. */
const uint CHAIN_STRIDE = 32u;
layout(binding = 11) coherent buffer Chain { uint chain[]; };
layout(constant_id = 22) const uint CHAIN_SPIN = 0u; /* ALU steps between polls */
layout(constant_id = 23) const uint CHAIN_POLL = 0u; /* diagnostic: how chain_wait polls */

uint chain_poll(uint slot) {
    uint i = slot * CHAIN_STRIDE;
    if (CHAIN_POLL == 1u) {
        memoryBarrierBuffer(); /* a load after a barrier is not hoisted */
        return chain[i];
    }
    if (CHAIN_POLL == 2u) return atomicOr(chain[i], 0u);
    return atomicLoad(chain[i], gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsRelaxed);
}

/* Backoff between polls without memory traffic: CHAIN_SPIN dependent
 * integer steps (the never-taken store keeps them). */
void chain_spin(uint slot) {
    uint v = slot;
    for (uint k = 0u; k < CHAIN_SPIN; k++) v = v * 1664525u + 1013904223u;
    if (CHAIN_SPIN > 0u && v == 0x9e3779b9u) chain[slot * CHAIN_STRIDE + 1u] = v;
}

void chain_wait(uint slot, uint expect) {
    if (expect == 0u) return; /* recorded after a barrier */
    /* an atomic load: a plain one in an empty loop is hoisted (measured) */
    if (gl_LocalInvocationIndex == 0u)
        while (chain_poll(slot - 1u) < expect) chain_spin(slot);
    memoryBarrierBuffer();
    barrier();
}

void chain_signal(uint slot) {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) atomicAdd(chain[slot * CHAIN_STRIDE], 1u);
}
#else
#define ZT_DEP

void chain_wait(uint slot, uint expect) {}
void chain_signal(uint slot) {}
#endif
