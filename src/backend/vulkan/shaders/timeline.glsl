/*
 * Per-workgroup clock stamps for the decode timeline (ZT_TIMELINE builds of
 * matmul, ffn, qkv and attention; the backend's ZT_VK_TIMELINE=1, see
 * ../timeline.c). The first thread of each workgroup writes the device's
 * real-time clock at mark k of its dispatch's slot:
 *   0  the workgroup starts (main's first statement)
 *   1  its dot products are reduced (matvecs; attention: its scores)
 *   2  its stores are issued (main's last statement)
 *   3  its activation row is staged (staged matvecs, matvec.glsl)
 * so that the host sees when a dispatch's first and last workgroups
 * started, how long one lived, and how far its last one trailed: where a
 * dependent dispatch boundary's time goes (bench/results/
 * 2026-11-27-vulkan-h100-2.md). Not built into the shaders the backend
 * runs otherwise.
 */
#if ZT_TIMELINE
const uint TL_SLOTS = 256u;   /* dispatches a step stamps, at most (VK_TL_SLOTS) */
const uint TL_WG_MAX = 4096u; /* workgroups a dispatch stamps, at most (VK_TL_WG_MAX) */

layout(binding = 11) writeonly buffer Timeline { uvec2 tl_stamps[]; }; /* [slot][wg][4] */

void tl_mark(uint slot, uint k) {
    if (gl_LocalInvocationIndex != 0u) return;
    uint wg = gl_WorkGroupID.x +
              gl_NumWorkGroups.x * (gl_WorkGroupID.y + gl_NumWorkGroups.y * gl_WorkGroupID.z);
    if (wg < TL_WG_MAX && slot < TL_SLOTS)
        tl_stamps[(slot * TL_WG_MAX + wg) * 4u + k] = clockRealtime2x32EXT();
}
#else
void tl_mark(uint slot, uint k) {}
#endif
