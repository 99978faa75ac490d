/*
 * Private to the Vulkan backend (and its tests): the device layer
 * (device.c), the GPU weight layouts (weights.c), the kernel roles as
 * dispatches (kernels.c), the embedded SPIR-V (shaders.c) and the decode
 * timeline (timeline.c, diagnostics). vulkan.c strings the dispatches into
 * the forward pass.
 *
 * Plain Vulkan 1.2 through the loader: one compute queue, storage buffers
 * only, one descriptor set layout for every shader (VK_BINDINGS storage
 * buffers; unused ones hold a dummy), 16 bytes of push constants, and the
 * model's shapes as specialization constants.
 */
#ifndef ZT_BACKEND_VULKAN_VK_H
#define ZT_BACKEND_VULKAN_VK_H

#include "backend/backend.h"
#include "zt.h"

#include <stdbool.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

/* ---- device.c ----------------------------------------------------------- */

#define VK_BINDINGS  12   /* storage buffers per descriptor set */
#define VK_SPEC      24   /* specialization constants per pipeline (ids 0..23) */
#define VK_PUSH      4    /* uint32 push constants per dispatch; [3] is the timeline slot */
#define VK_TL_SLOTS  256  /* dispatches a timeline step stamps (timeline.c) */
#define VK_TL_WG_MAX 4096 /* workgroups a dispatch stamps (shaders/timeline.glsl) */

enum vk_mem {
    VK_MEM_DEVICE,  /* device-local: weights, cache, activations */
    VK_MEM_UPLOAD,  /* host-visible, coherent: staging, per-step inputs */
    VK_MEM_READBACK /* host-visible, cached where the device has it: results */
};

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;     /* host-visible buffers: mapped for their lifetime */
    bool coherent; /* host-visible: no flush/invalidate needed */
} vk_buf;

/* Shaders, each compiled twice (common.glsl): fast and portable. */
enum vk_shader {
    VK_SH_EMBED,
    VK_SH_QKV_F16, /* qkv writing an f16 cache */
    VK_SH_QKV_F32, /* qkv writing an f32 cache, or the int8 cache's staging */
    VK_SH_KV_QUANT,
    VK_SH_ATT_F16,
    VK_SH_ATT_F32,
    VK_SH_ATT_Q8,
    VK_SH_ATT_MERGE,
    VK_SH_MATMUL,
    VK_SH_FFN,
    VK_SH_LM_HEAD,
    VK_SH_SAMPLE,
    /* the decode timeline's builds (shaders/timeline.glsl; ZT_VK_TIMELINE) */
    VK_SH_QKV_F16_TL,
    VK_SH_ATT_F16_TL,
    VK_SH_MATMUL_TL,
    VK_SH_FFN_TL,
    VK_SH_ATT_F16_WO, /* attention and the output projection (vk_fuse_wo) */
    VK_SH_ATT_F16_WO_TL,
    VK_SH_ATT_MERGE_WO, /* attention_merge and the output projection */
    VK_SH_COUNT
};

typedef struct vk_spirv {
    const uint32_t *code;
    size_t bytes;
} vk_spirv;

/* shaders.c: SPIR-V of shader s, fast (ZT_FAST 1) or portable build. */
vk_spirv vk_shader_code(int shader, bool fast);
const char *vk_shader_name(int shader);

/* One recorded dispatch. */
typedef struct vk_dispatch {
    const char *name; /* role, for the dispatch list and the profile */
    VkPipeline pipe;
    VkDescriptorSet set;
    uint32_t groups[3];
    uint32_t push[VK_PUSH];
} vk_dispatch;

typedef struct vk_pipe_entry vk_pipe_entry;
typedef struct vk_set_entry vk_set_entry;

typedef struct vk_ctx {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    bool fast;                 /* the ZT_FAST shader builds are usable and chosen */
    bool timeline;             /* ZT_VK_TIMELINE=1 and the device clock: timeline builds */
    bool stats;                /* ZT_VK_STATS=1: print each pipeline's statistics */
    bool exec_stats;           /* pipelines' statistics captured (stats, or sm_count) */
    bool atomic_add;           /* float atomic add on storage buffers (fast build only) */
    vk_buf tl_buf;             /* [VK_TL_SLOTS][VK_TL_WG_MAX][4] u64 stamps (timeline) */
    uint32_t subgroup_min;     /* smallest subgroup the device may use */
    uint32_t subgroup_fixed;   /* the subgroup size where it is the only one, else 0 */
    uint32_t sm_count;         /* multiprocessors (VK_NV_shader_sm_builtins), else 0 */
    VkDeviceSize max_range;    /* maxStorageBufferRange */
    VkDeviceSize max_alloc;    /* maxMemoryAllocationSize */
    VkDeviceSize heap_bytes;   /* the largest device-local heap */
    VkDeviceSize device_bytes; /* device-local memory allocated so far */

    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkDescriptorPool *pools; /* grown on demand */
    int n_pools;
    VkShaderModule modules[VK_SH_COUNT];
    vk_pipe_entry *pipes;
    int n_pipes, cap_pipes;
    vk_set_entry *sets;
    int n_sets, cap_sets;
    int n_dead_sets; /* sets dropped with a buffer they bound */

    VkCommandPool cmd_pool;
    VkCommandBuffer once; /* transfers and test dispatches */
    VkFence fence;
    vk_buf staging; /* VK_MEM_UPLOAD, for vk_write / vk_read */
    vk_buf dummy;   /* bound to unused bindings */
} vk_ctx;

/* Opens the best device (discrete > integrated > virtual > CPU; the
 * ZT_VK_DEVICE index overrides); portable forces the portable shaders
 * (so does ZT_VK_PORTABLE=1). */
int vk_ctx_create(vk_ctx **out, bool portable, zt_error *err);
void vk_ctx_free(vk_ctx *c);
/* Validation messages (warnings and errors) seen by any context of this
 * process through VK_EXT_debug_utils; the tests require zero. */
int vk_validation_messages(void);

int vk_buf_create(vk_ctx *c, vk_buf *b, VkDeviceSize size, int mem, const char *label,
                  zt_error *err);
void vk_buf_free(vk_ctx *c, vk_buf *b);
/* dst[off .. off + n) = src, through the staging buffer for device memory. */
int vk_write(vk_ctx *c, vk_buf *dst, VkDeviceSize off, const void *src, size_t n, zt_error *err);
int vk_read(vk_ctx *c, vk_buf *src, VkDeviceSize off, void *dst, size_t n, zt_error *err);
int vk_fill(vk_ctx *c, vk_buf *b, uint32_t word, zt_error *err);

/* A pipeline of `shader` with specialization constants spec[0..VK_SPEC)
 * (id i = spec[i]; floats as their bits), created once and cached. */
int vk_pipeline(vk_ctx *c, int shader, const uint32_t spec[VK_SPEC], VkPipeline *out,
                zt_error *err);
/* The registers a thread of a pipeline made by vk_pipeline takes, where
 * the driver reports them (exec_stats); 0 where unknown. */
uint32_t vk_pipeline_regs(const vk_ctx *c, VkPipeline pipe);
/* A descriptor set binding bufs[i] (NULL: the dummy) at i, cached. */
int vk_set(vk_ctx *c, vk_buf *const bufs[VK_BINDINGS], VkDescriptorSet *out, zt_error *err);

/* Records the dispatches with a compute barrier before each; with a query
 * pool, a timestamp after each (query i + 1; query 0 before the first). */
void vk_record(vk_ctx *c, VkCommandBuffer cb, const vk_dispatch *d, int n, VkQueryPool stamps);
/* Records, submits and waits for the dispatches (tests, one-off work). */
int vk_run(vk_ctx *c, const vk_dispatch *d, int n, zt_error *err);
int vk_submit_wait(vk_ctx *c, VkCommandBuffer cb, zt_error *err);
int vk_check(VkResult r, zt_error *err, const char *what);

/* ---- timeline.c ------------------------------------------------------------ */

/* The decode timeline (ZT_VK_TIMELINE=1, diagnostics): per role, when a
 * dispatch's workgroups start and end relative to the previous dispatch. */
typedef struct vk_timeline vk_timeline;
int vk_timeline_init(vk_ctx *c, zt_error *err);  /* the stamp buffer */
int vk_timeline_clear(vk_ctx *c, zt_error *err); /* before a timed step */
/* Adds the stamps of the step just run (names: its dispatches' roles). */
int vk_timeline_step(vk_ctx *c, vk_timeline **t, const char *const *names, int n, zt_error *err);
void vk_timeline_print(const vk_timeline *t, const char *device);
void vk_timeline_free(vk_timeline *t);

/* ---- weights.c ----------------------------------------------------------- */

/* A weight matrix in its GPU layout (shaders/weights.glsl). */
typedef struct vk_matrix {
    int type;  /* layout: ZT_F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K */
    int n_in;  /* inputs per row (K) */
    int n_out; /* rows (N) */
    int ku;    /* 32-input units per row: K rounded up / 32 */
    vk_buf q;  /* uvec4 stream */
    vk_buf s;  /* f16 scale stream (size 0 when the layout has none) */
} vk_matrix;

/* The GPU layout a file type is uploaded as: itself where the shaders
 * read it, else F16 (dequantized by the reference, then rounded). */
int vk_layout_of(int file_type);
/* Bytes of the two streams of an n_out x n_in matrix in layout `type`. */
void vk_matrix_bytes(int type, int64_t n_in, int64_t n_out, size_t *q_bytes, size_t *s_bytes);
/* Repacks the n_out rows of a file matrix (n_in inputs, file type
 * file_type, rows contiguous) into layout `type`: the codes of row r at
 * q + r * (code bytes per row), its scales at f16 index s_first + r *
 * (scales per row) of s (see vk_matrix_bytes). */
void vk_repack(int type, int file_type, const void *src, int64_t n_in, int64_t n_out, void *q,
               void *s, int64_t s_first);
/* Uploads the rows of parts[0], parts[1], ... stacked as one matrix, in
 * vk_layout_of(the parts' type) (type -1; F16 when the parts' types
 * differ) or in F16 (type ZT_F16). */
int vk_matrix_upload(vk_ctx *c, vk_matrix *m, const zt_tensor *const *parts, int n_parts, int type,
                     zt_error *err);
void vk_matrix_free(vk_ctx *c, vk_matrix *m);
/* An f32 vector buffer of n_pad floats: the parts' values one after
 * another (NULL parts: n zeros each, lens[i] values), then zeros. */
int vk_vector_upload(vk_ctx *c, vk_buf *b, const zt_tensor *const *parts, const int *lens,
                     int n_parts, int n_pad, zt_error *err);

/* ---- kernels.c ------------------------------------------------------------ */

/* Shapes of one model as the kernels see them. Strides are in floats and
 * multiples of 32, so that activation rows are whole 32-input units; the
 * padding stays zero. */
typedef struct vk_shape {
    int dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab;
    int q_dim, kv_dim; /* n_heads head_dim, n_kv_heads head_dim */
    int xs, qs, hs;    /* row strides of x, q/att, h */
    float eps;
    int rope_half;         /* rope_dim / 2 */
    int window;            /* sliding window, 0 = none */
    int kv_type;           /* enum zt_kv_type */
    int max_batch;         /* rows per forward (step buffer sections) */
    int max_pages_per_seq; /* page table row length */
    int split;             /* attention positions per key split */
} vk_shape;

/* Launch choices from the environment (ZT_VK_ROWS, _ROWS_BATCH, _UNITS,
 * _NB, _SPLIT, _STAGE, _TEAMS, _TEAM_ROWS, _GROUPS, _PREFETCH), read each
 * time a dispatch is built: when a forward's command buffer is first
 * recorded, not when the backend opens (a setting must hold until the
 * first forward of each shape). */
typedef struct vk_tuning {
    int rows;       /* weight rows per workgroup, one activation row */
    int rows_batch; /* weight rows per workgroup, NB > 1 */
    int units;      /* 32-input units per thread (sets the workgroup size) */
    int nb_max;     /* activation rows per workgroup, at most */
    int split;      /* attention key split */
    int stage;      /* staged single-row matvecs where they fit (matvec.glsl) */
    int teams;      /* staged matvecs: row teams (a subgroup each) per workgroup */
    int team_rows;  /* staged matvecs: rows per team (0: by the row's length) */
    int groups;     /* staged matvecs: workgroups that run at once (0: unknown) */
    int prefetch;   /* staged matvecs: units a lane loads before the staging (-1: auto) */
} vk_tuning;
vk_tuning vk_tuning_get(void);
/* Key splits of a batch whose largest position is max_pos. */
int vk_attention_splits(const vk_shape *s, int max_pos);

/* Each fills one dispatch (d) of its role; buffers as named in the
 * shaders' headers. n_rows = activation rows of the call. */
int vk_k_embed(vk_ctx *c, const vk_shape *s, const vk_matrix *table, vk_buf *step, vk_buf *x,
               int n_rows, vk_dispatch *d, zt_error *err);
int vk_k_qkv(vk_ctx *c, const vk_shape *s, const vk_matrix *w, int row_base, vk_buf *items,
             int n_items, vk_buf *x, vk_buf *gamma, vk_buf *bias, vk_buf *q, vk_buf *step,
             vk_buf *k_dst, vk_buf *v_dst, vk_buf *rope, int n_rows, vk_dispatch *d, zt_error *err);
int vk_k_kv_quant(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *stage, vk_buf *k_cache,
                  vk_buf *v_cache, vk_buf *k_scale, vk_buf *v_scale, int n_rows, vk_dispatch *d,
                  zt_error *err);
int vk_k_attention(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *q, vk_buf *k_cache,
                   vk_buf *v_cache, vk_buf *k_scale, vk_buf *v_scale, vk_buf *out, int n_rows,
                   int n_splits, vk_dispatch *d, zt_error *err);
int vk_k_attention_merge(vk_ctx *c, const vk_shape *s, vk_buf *part, vk_buf *att, int n_rows,
                         int n_splits, vk_dispatch *d, zt_error *err);
/* Whether a forward of n_rows rows in n_splits key splits folds the
 * output projection into its last attention dispatch (wo_fold.glsl): one
 * row, float atomics; at one split attention.comp's Wo build (f16 cache),
 * past it attention_merge.comp's. ZT_VK_FUSE_WO=0: never. */
bool vk_fuse_wo(const vk_ctx *c, const vk_shape *s, int n_rows, int n_splits);
/* Those dispatches: x += attention(q) @ Wo^T for the one row, at one split
 * and (after vk_k_attention's partials) past it. */
int vk_k_attention_wo(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *q, vk_buf *k_cache,
                      vk_buf *v_cache, const vk_matrix *wo, vk_buf *x, vk_dispatch *d,
                      zt_error *err);
int vk_k_attention_merge_wo(vk_ctx *c, const vk_shape *s, vk_buf *part, int n_splits,
                            const vk_matrix *wo, vk_buf *x, vk_dispatch *d, zt_error *err);
int vk_k_matmul(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *act, vk_buf *x,
                int x_stride, int n_rows, vk_dispatch *d, zt_error *err);
int vk_k_ffn(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *x, vk_buf *gamma, vk_buf *h,
             int n_rows, vk_dispatch *d, zt_error *err);
int vk_k_lm_head(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *x, vk_buf *gamma,
                 vk_buf *step, vk_buf *logits, int n_out, vk_dispatch *d, zt_error *err);
int vk_k_sample(vk_ctx *c, const vk_shape *s, vk_buf *logits, vk_buf *argmax, int n_out,
                vk_dispatch *d, zt_error *err);

/* The qkv quads (qkv.comp) for the rows [row0, row0 + n) of the fused
 * [q | k | v] space that one matrix holds, for this shape and RoPE pairing;
 * items must hold (n / 2 + 1) uvec4. Returns the number of quads, or -1
 * when the split of a RoPE pair across matrices makes it impossible. */
int vk_qkv_items(const vk_shape *s, bool rope_interleaved, int rope_dim, int row0, int n,
                 uint32_t *items);

/* Step buffer sections (int32), each max_batch long, then the page table. */
enum { VK_STEP_TOKENS = 0, VK_STEP_POS = 1, VK_STEP_SEQ = 2, VK_STEP_OUT = 3, VK_STEP_PAGES = 4 };

#endif
