/*
 * Chained decode dispatches: a layer's dispatches recorded with no pipeline
 * barrier between them, each waiting inside the shader for the one before
 * (the ZT_CHAIN 1 builds of qkv, attention, matmul and ffn; the backend's
 * ZT_VK_CHAIN, device.c).
 *
 * Why: a barrier between dependent dispatches costs ~2.4 us on the H100
 * with no work at all (bench/results/2026-11-27-vulkan-h100-2.md), five
 * a layer. A chained dispatch's workgroups start as soon as the previous
 * dispatch's retire and issue their first weight loads (weights never
 * depend on the step's activations; matvec.glsl's mv_prefetch) before they
 * wait, so DRAM streams across the boundary instead of idling through it.
 * An earlier form of this (dee7c09) waited before any weight was in
 * flight and gained nothing; the staged matvecs now hold up to ~32 words a
 * lane of weights ahead of their wait.
 *
 * Protocol, for the dispatch recorded at index i (vk_record):
 *   - chain[i] counts dispatch i's finished workgroups; the command buffer
 *     zeroes the chain buffer before its first dispatch;
 *   - every workgroup of a chained dispatch waits (chain_wait) before it
 *     reads anything the step wrote, and ends with chain_signal: its
 *     writes made visible device-wide, then one increment of chain[i];
 *   - wait = the workgroups of dispatch i - 1 where that one is chained
 *     too (push constant), else 0 (a barrier was recorded instead). Every
 *     workgroup waits before it signals, so a dispatch's count complete
 *     means every earlier dispatch is done too.
 * Reads and writes of what the step's dispatches exchange bypass the SM's
 * L1 (ZT_DEP, `coherent`): with no barrier nothing invalidates it, and a
 * line could survive from an earlier read on that SM. Weights keep the
 * cached path: nothing writes them.
 *
 * Forward progress needs a device that starts all of a dispatch's
 * workgroups before any of the next one's (so the oldest unfinished
 * dispatch always has every workgroup resident): NVIDIA's, not promised
 * by Vulkan. The host chains only on request or where that is known;
 * lavapipe runs dispatches one after another, where every wait is met at
 * once (the tests force it there to check the builds and the recording).
 */
#if ZT_CHAIN
#define ZT_DEP coherent

/* One counter per dispatch, each in a 128-byte line of its own
 * (VK_CHAIN_STRIDE): one dispatch's pollers and the next one's signals do
 * not meet at one L2 slice. */
const uint CHAIN_STRIDE = 32u;
layout(binding = 12) coherent buffer Chain { uint chain[]; };

bool chain_waited = false;

/* Waits until dispatch slot - 1 has `expect` finished workgroups (0: no
 * wait). One thread polls with an atomic load (a plain load in an empty
 * loop is hoisted out of it: measured in dee7c09); the barrier holds the
 * rest. */
void chain_wait(uint slot, uint expect) {
    if (chain_waited) return;
    chain_waited = true;
    if (expect == 0u) return;
    if (gl_LocalInvocationIndex == 0u)
        while (atomicLoad(chain[(slot - 1u) * CHAIN_STRIDE], gl_ScopeDevice,
                          gl_StorageSemanticsBuffer, gl_SemanticsRelaxed) < expect) {
        }
    memoryBarrierBuffer();
    barrier();
}

/* The workgroup's writes made visible, then counted; waits first where the
 * workgroup had nothing to do (it still must not finish before the
 * dispatch it follows). */
void chain_signal(uint slot, uint expect) {
    chain_wait(slot, expect);
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) atomicAdd(chain[slot * CHAIN_STRIDE], 1u);
}
#else
#define ZT_DEP

void chain_wait(uint slot, uint expect) {}
void chain_signal(uint slot, uint expect) {}
#endif
