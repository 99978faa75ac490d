/*
 * The SPIR-V of every shader, compiled from the .comp files in shaders/ by
 * glslc at build time (mk/vulkan.mk writes each as a C initializer,
 * NAME.VARIANT.inc, into the build tree) and embedded here, so the binary
 * needs no files at run time. "fast" and "portable" are the two builds of
 * common.glsl; shaders that use none of the fast build's features exist
 * once, and the timeline's builds (shaders/timeline.glsl) only as fast.
 */
#include "backend/vulkan/vk.h"

static const uint32_t spv_embed_portable[] =
#include "embed.portable.inc"
    ;

static const uint32_t spv_qkv_f16_fast[] =
#include "qkv.f16.fast.inc"
    ;

static const uint32_t spv_qkv_f16_portable[] =
#include "qkv.f16.portable.inc"
    ;

static const uint32_t spv_qkv_f32_fast[] =
#include "qkv.f32.fast.inc"
    ;

static const uint32_t spv_qkv_f32_portable[] =
#include "qkv.f32.portable.inc"
    ;

static const uint32_t spv_kv_quant_fast[] =
#include "kv_quant.fast.inc"
    ;

static const uint32_t spv_kv_quant_portable[] =
#include "kv_quant.portable.inc"
    ;

static const uint32_t spv_attention_f16_fast[] =
#include "attention.f16.fast.inc"
    ;

static const uint32_t spv_attention_f16_portable[] =
#include "attention.f16.portable.inc"
    ;

static const uint32_t spv_attention_f32_fast[] =
#include "attention.f32.fast.inc"
    ;

static const uint32_t spv_attention_f32_portable[] =
#include "attention.f32.portable.inc"
    ;

static const uint32_t spv_attention_q8_fast[] =
#include "attention.q8.fast.inc"
    ;

static const uint32_t spv_attention_q8_portable[] =
#include "attention.q8.portable.inc"
    ;

static const uint32_t spv_attention_merge_portable[] =
#include "attention_merge.portable.inc"
    ;

static const uint32_t spv_matmul_fast[] =
#include "matmul.fast.inc"
    ;

static const uint32_t spv_matmul_portable[] =
#include "matmul.portable.inc"
    ;

static const uint32_t spv_ffn_fast[] =
#include "ffn.fast.inc"
    ;

static const uint32_t spv_ffn_portable[] =
#include "ffn.portable.inc"
    ;

static const uint32_t spv_lm_head_fast[] =
#include "lm_head.fast.inc"
    ;

static const uint32_t spv_lm_head_portable[] =
#include "lm_head.portable.inc"
    ;

static const uint32_t spv_sample_fast[] =
#include "sample.fast.inc"
    ;

static const uint32_t spv_sample_portable[] =
#include "sample.portable.inc"
    ;

static const uint32_t spv_matmul_tl_fast[] =
#include "matmul.tl.fast.inc"
    ;

static const uint32_t spv_ffn_tl_fast[] =
#include "ffn.tl.fast.inc"
    ;

static const uint32_t spv_qkv_f16_tl_fast[] =
#include "qkv.f16.tl.fast.inc"
    ;

static const uint32_t spv_attention_f16_tl_fast[] =
#include "attention.f16.tl.fast.inc"
    ;

static const uint32_t spv_attention_f16_wo_fast[] =
#include "attention.f16.wo.fast.inc"
    ;

static const uint32_t spv_attention_f16_wo_tl_fast[] =
#include "attention.f16.wo.tl.fast.inc"
    ;

static const uint32_t spv_attention_merge_wo_fast[] =
#include "attention_merge.wo.fast.inc"
    ;

/* An entry: the shader's name and its fast and portable builds. */
#define BUILDS(name, fast, portable)                                                               \
    { name, fast, portable, sizeof fast, sizeof portable }

static const struct {
    const char *name;
    const uint32_t *fast, *portable;
    size_t fast_bytes, portable_bytes;
} shaders[VK_SH_COUNT] = {
    [VK_SH_EMBED] = BUILDS("embed", spv_embed_portable, spv_embed_portable),
    [VK_SH_QKV_F16] = BUILDS("qkv.f16", spv_qkv_f16_fast, spv_qkv_f16_portable),
    [VK_SH_QKV_F32] = BUILDS("qkv.f32", spv_qkv_f32_fast, spv_qkv_f32_portable),
    [VK_SH_KV_QUANT] = BUILDS("kv_quant", spv_kv_quant_fast, spv_kv_quant_portable),
    [VK_SH_ATT_F16] = BUILDS("attention.f16", spv_attention_f16_fast, spv_attention_f16_portable),
    [VK_SH_ATT_F32] = BUILDS("attention.f32", spv_attention_f32_fast, spv_attention_f32_portable),
    [VK_SH_ATT_Q8] = BUILDS("attention.q8", spv_attention_q8_fast, spv_attention_q8_portable),
    [VK_SH_ATT_MERGE] =
        BUILDS("attention_merge", spv_attention_merge_portable, spv_attention_merge_portable),
    [VK_SH_MATMUL] = BUILDS("matmul", spv_matmul_fast, spv_matmul_portable),
    [VK_SH_FFN] = BUILDS("ffn", spv_ffn_fast, spv_ffn_portable),
    [VK_SH_LM_HEAD] = BUILDS("lm_head", spv_lm_head_fast, spv_lm_head_portable),
    [VK_SH_SAMPLE] = BUILDS("sample", spv_sample_fast, spv_sample_portable),
    /* timeline builds: fast only (the timeline needs the fast build's device) */
    [VK_SH_QKV_F16_TL] = BUILDS("qkv.f16.tl", spv_qkv_f16_tl_fast, spv_qkv_f16_tl_fast),
    [VK_SH_ATT_F16_TL] =
        BUILDS("attention.f16.tl", spv_attention_f16_tl_fast, spv_attention_f16_tl_fast),
    [VK_SH_MATMUL_TL] = BUILDS("matmul.tl", spv_matmul_tl_fast, spv_matmul_tl_fast),
    [VK_SH_FFN_TL] = BUILDS("ffn.tl", spv_ffn_tl_fast, spv_ffn_tl_fast),
    /* attention with Wo fused: fast only (float atomics; vk_fuse_wo) */
    [VK_SH_ATT_F16_WO] =
        BUILDS("attention.f16.wo", spv_attention_f16_wo_fast, spv_attention_f16_wo_fast),
    [VK_SH_ATT_F16_WO_TL] =
        BUILDS("attention.f16.wo.tl", spv_attention_f16_wo_tl_fast, spv_attention_f16_wo_tl_fast),
    [VK_SH_ATT_MERGE_WO] =
        BUILDS("attention_merge.wo", spv_attention_merge_wo_fast, spv_attention_merge_wo_fast),
};

vk_spirv vk_shader_code(int shader, bool fast) {
    if (fast) return (vk_spirv){shaders[shader].fast, shaders[shader].fast_bytes};
    return (vk_spirv){shaders[shader].portable, shaders[shader].portable_bytes};
}

const char *vk_shader_name(int shader) { return shaders[shader].name; }
