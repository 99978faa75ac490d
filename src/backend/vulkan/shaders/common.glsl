/*
 * Included by every zt compute shader, right after #version.
 *
 * Two builds of each shader exist (mk/vulkan.mk compiles both):
 *   ZT_FAST 1   subgroup arithmetic and shuffles for reductions, 16-bit
 *               storage for the f16 KV cache, and the packed 4x8-bit
 *               integer dot product (SPV_KHR_integer_dot_product, emitted
 *               through GL_EXT_spirv_intrinsics because glslang has no
 *               GLSL name for it yet);
 *   ZT_FAST 0   plain Vulkan 1.2: shared-memory reductions, f16 packed in
 *               uints, and the dot product spelled out in integer ops.
 * The host picks the fast build only where the device reports all of them;
 * both compute the same integers and round the same floats.
 *
 * The decode shaders have a third build, ZT_TIMELINE 1, that stamps the
 * clock per workgroup (timeline.glsl; diagnostics only).
 *
 * Spec constant 0 is always the workgroup size (local_size_x_id = 0);
 * each shader numbers its own constants from 1.
 */
#extension GL_EXT_control_flow_attributes : require

#ifndef ZT_TIMELINE
#define ZT_TIMELINE 0 /* the timeline build of a shader (timeline.glsl) */
#endif
#if ZT_TIMELINE
#extension GL_EXT_shader_realtime_clock : require
#endif

#if ZT_FAST
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_spirv_intrinsics : require
#endif

layout(local_size_x_id = 0) in;

/* Tensor types, numbered as GGUF numbers them (quant/quant.h). */
const uint T_F32 = 0u, T_F16 = 1u, T_Q4_0 = 2u, T_Q8_0 = 8u, T_Q4_K = 12u, T_Q6_K = 14u,
           T_BF16 = 30u;

/* Masked and empty scores: finite, so that exp(a - b) never sees inf - inf. */
const float ZT_NEG_BIG = -1.0e30;

/* dot of four signed bytes of a with four signed (sdot4) or unsigned
 * (sudot4) bytes of b. */
#if ZT_FAST
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450)
int zt_sdot(uint a, uint b, spirv_literal int packed_format);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4452)
int zt_sudot(uint a, uint b, spirv_literal int packed_format);
int sdot4(uint a, uint b) { return zt_sdot(a, b, 0); }
int sudot4(uint a, uint b) { return zt_sudot(a, b, 0); }
#else
int sdot4(uint a, uint b) {
    ivec4 x = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8),
                    bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));
    ivec4 y = ivec4(bitfieldExtract(int(b), 0, 8), bitfieldExtract(int(b), 8, 8),
                    bitfieldExtract(int(b), 16, 8), bitfieldExtract(int(b), 24, 8));
    return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
int sudot4(uint a, uint b) {
    ivec4 x = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8),
                    bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));
    ivec4 y = ivec4(uvec4(b & 0xffu, (b >> 8) & 0xffu, (b >> 16) & 0xffu, b >> 24));
    return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
#endif

/* Element h of an array of f16 values packed two per uint. */
float half_at(uint h, uint packed_pair) {
    vec2 p = unpackHalf2x16(packed_pair);
    return (h & 1u) != 0u ? p.y : p.x;
}

/* v rounded to the nearest f16 value, ties to even, as the CPU rounds its
 * f16 KV cache (zt_f32_to_f16): a value the f16 conversion then stores
 * exactly, whatever rounding the device's conversion uses. */
float round_to_f16(float v) {
    uint x = floatBitsToUint(v), a = x & 0x7fffffffu, sign = x & 0x80000000u;
    if (a >= 0x7f800000u) return v;                             /* inf, nan */
    if (a >= 0x477ff000u) return uintBitsToFloat(sign | 0x7f800000u); /* rounds to inf */
    if (a < 0x38800000u) /* f16 subnormal: multiples of 2^-24 */
        return uintBitsToFloat(sign | floatBitsToUint(roundEven(uintBitsToFloat(a) * 16777216.0) *
                                                      (1.0 / 16777216.0)));
    return uintBitsToFloat((x + 0xfffu + ((x >> 13) & 1u)) & ~0x1fffu);
}

vec2 round_to_f16(vec2 v) { return vec2(round_to_f16(v.x), round_to_f16(v.y)); }

vec2 bf16x2_to_vec2(uint w) {
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
}

/* Four floats rounded to int8 codes (half to even, clamped to +-127, as
 * the CPU's activation quantizer), packed into one uint. */
uint pack_codes(vec4 v, inout int sum) {
    ivec4 q = ivec4(clamp(roundEven(v), -127.0, 127.0));
    sum += q.x + q.y + q.z + q.w;
    return uint(q.x & 0xff) | uint(q.y & 0xff) << 8 | uint(q.z & 0xff) << 16 |
           uint(q.w & 0xff) << 24;
}

/* Largest power of two below n (n >= 2): the first step of a tree
 * reduction over n values that need not be a power of two. */
uint tree_start(uint n) { return 1u << findMSB(n - 1u); }
