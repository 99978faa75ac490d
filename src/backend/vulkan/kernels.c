/*
 * The kernel roles as dispatches: for each shader, its specialization
 * constants (the model's shapes and the launch shape), its bindings and its
 * grid. The forward pass (vulkan.c) and the kernel tests both build their
 * dispatches here, so the tests run exactly what the forward pass runs.
 *
 * Launch shape of the matvecs (matmul, qkv, ffn, lm_head; matvec.glsl).
 * Quantized weights take the staged path where it fits (mv_choose_staged,
 * mv_grid: teams of a subgroup, the NB activation rows staged once per
 * workgroup; H100, Phi-3-mini decode in one call: Q4_0 591-596 tok/s and
 * Q4_K_M 483-494 against 445-461 and 468 for 8ea9dbc's staging,
 * bench/results/2026-11-27-vulkan-h100-4.md; batches and prefill since
 * -5.md). Otherwise:
 * R weight rows x NB activation rows per workgroup, and a workgroup of
 * round_up(KU / units, 32) threads (32..256) so that each thread takes
 * `units` 32-input units of every row (default 2: H100, Phi-3-mini Q4_0
 * decode 392 tok/s against 372 with 1 and 382 with 3; bench/results/
 * 2026-11-26-vulkan.md). Decode (one row) uses R = rows (default 8: eight
 * 16-byte loads in flight per thread, and every activation load reused
 * eight times; 4 rows: 308 tok/s, 16: 370); batches use NB up to 8 with
 * R = rows_batch (4), which bounds the accumulators at 32 per thread. The
 * staged path takes up to ZT_VK_NB (default 8) activation rows a
 * workgroup, as many as its shared memory holds (H100, Phi-3-mini Q4_0,
 * 32 sequences: 2,193-2,206 tok/s with 8, 2,011-2,025 with 12, 1,934 with
 * 16; pp512 2,791 / 2,804 / 2,888: 16 rows win prefill by 3% and lose
 * decode batches by 12%; bench/results/2026-11-27-vulkan-h100-6.md).
 */
#include "backend/vulkan/vk.h"
#include "quant/quant.h"
#include "util/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int env_int(const char *name, int dflt, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    int x = atoi(v);
    return x < lo ? lo : x > hi ? hi : x;
}

vk_tuning vk_tuning_get(void) {
    vk_tuning t;
    t.rows = env_int("ZT_VK_ROWS", 8, 1, 16);
    t.rows_batch = env_int("ZT_VK_ROWS_BATCH", 4, 1, 16);
    t.units = env_int("ZT_VK_UNITS", 2, 1, 16);
    t.nb_max = env_int("ZT_VK_NB", 8, 1, 32);
    t.split = env_int("ZT_VK_SPLIT", 512, 64, 1 << 16);
    t.stage = env_int("ZT_VK_STAGE", 1, 0, 1);
    t.teams = env_int("ZT_VK_TEAMS", 8, 1, 32);
    t.team_rows = env_int("ZT_VK_TEAM_ROWS", 0, 0, 16);
    t.groups = env_int("ZT_VK_GROUPS", -1, -1, 1 << 20);
    t.prefetch = env_int("ZT_VK_PREFETCH", -1, -1, 64);
    return t;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

/* groups[0..1] for a 1-D count of workgroups past the 65535 per-dimension
 * limit (shaders index x + y * num_x and ignore the excess). */
static void fold_groups(uint32_t n, uint32_t groups[3]) {
    groups[0] = n < 65535 ? n : 65535;
    groups[1] = ceil_div(n, groups[0]);
}

/* Binding 11 is the timeline's stamp buffer where it exists. */
static int finish(vk_ctx *c, int shader, const uint32_t spec[VK_SPEC], vk_buf *const b[VK_BINDINGS],
                  const char *name, vk_dispatch *d, zt_error *err) {
    d->name = name;
    vk_buf *bufs[VK_BINDINGS];
    memcpy(bufs, b, sizeof bufs);
    if (c->timeline) bufs[11] = &c->tl_buf;
    int rc = vk_pipeline(c, shader, spec, &d->pipe, err);
    if (!rc) rc = vk_set(c, bufs, &d->set, err);
    return rc;
}

/* Single-row forwards take the timeline builds where it is on. */
static bool timed(const vk_ctx *c, int n_rows) { return c->timeline && n_rows == 1; }

/* ---- matvec launch shape ----------------------------------------------------- */

typedef struct mv_shape {
    uint32_t wg, r, nb, max_sg;
    uint32_t team;     /* staged path (matvec.glsl): lanes per row team; 0: not staged */
    uint32_t prefetch; /* staged path: units a lane loads before the staging */
} mv_shape;

static bool quantized(int type) {
    return type == ZT_Q4_0 || type == ZT_Q8_0 || type == ZT_Q4_K || type == ZT_Q6_K;
}

/* The 32-bit words of one 32-input unit that a thread holds once loaded
 * (weights.glsl's wfrag, the words its type uses): Q4_0 5 (16 bytes and a
 * scale word), Q4_K 7 (16 bytes, its scale and min words, the (d, dmin)
 * word), Q8_0 9, Q6_K 10; float types 0 (not held: read where they are
 * used). */
static uint32_t unit_words(int type) {
    return type == ZT_Q4_0   ? 5
           : type == ZT_Q4_K ? 7
           : type == ZT_Q8_0 ? 9
           : type == ZT_Q6_K ? 10
                             : 0;
}

/* The staged launch shape for m->nb activation rows of quantized weights:
 * ZT_VK_TEAMS teams of a subgroup each (where the device's subgroup size
 * is fixed; 32 lanes without subgroups in the portable build), each team
 * ZT_VK_TEAM_ROWS rows (0: chosen below), if the staged rows fit in
 * shared memory beside the reduction's: per unit and row 32 bytes of
 * codes and a scale (and, once, 32 of partial maxima in the portable
 * build); m->nb shrinks until they do. */
static bool mv_choose_staged(const vk_ctx *c, const vk_matrix *w, int multiple, mv_shape *m) {
    vk_tuning t = vk_tuning_get();
    if (!t.stage || !quantized(w->type)) return false;
    uint32_t lanes = c->fast ? c->subgroup_fixed : 32;
    if (lanes < 8) return false; /* the fast staging's unit spans 8 lanes */
    /* rows per team, unless set: about 15 registers of a lane's weights
     * a row (unit_words a unit), so 1 row of a 3072-wide row on
     * a 32-lane team (H100, Phi-3-mini Q4_0, one call: 1 row 591-596
     * tok/s against 529-537 with 2, bench/results/2026-11-27-vulkan-h100-4.md) */
    uint32_t words = unit_words(w->type);
    uint32_t upl = ceil_div((uint32_t)w->ku, lanes), rw = (uint32_t)t.team_rows;
    if (!rw) rw = upl * words >= 15 ? 1 : 15 / (upl * words);
    uint32_t wg = (uint32_t)t.teams * lanes;
    while (((uint32_t)t.teams * rw) % (uint32_t)multiple) rw++;
    if (wg % 8 || wg > c->props.limits.maxComputeWorkGroupSize[0] ||
        wg > c->props.limits.maxComputeWorkGroupInvocations)
        return false;
    uint32_t r = (uint32_t)t.teams * rw, max_sg = c->fast ? ceil_div(wg, c->subgroup_min) : 1;
    uint32_t nb = m->nb;
    for (;; nb--) {
        size_t red = c->fast ? (size_t)((r + 2) * nb) * max_sg * 4 : (size_t)wg * 4;
        size_t rows = (size_t)w->ku * 36 * nb + (c->fast ? 0 : (size_t)w->ku * 32);
        if (rows + red <= c->props.limits.maxComputeSharedMemorySize && r * nb <= wg) break;
        if (nb == 1) return false;
    }
    /* units a lane loads before the staging (a single-row forward only:
     * mv_pin relies on a grid one activation row deep, which a batch
     * whose rows fit only one at a time is not): all of them where that
     * is within ~32 words, so that DRAM streams while the row is staged,
     * but at most 4 units (Phi-3-mini Q4_0's down projection, 8 units a
     * lane: 4 ahead against 6, +0.2 to +2% tg128 in three H100 calls, 7
     * of 8 interleaved rounds; 3 and 5 no better than 6;
     * bench/results/2026-11-28-vulkan-h100-2.md) */
    uint32_t pf = t.prefetch >= 0 ? (uint32_t)t.prefetch : 32 / (words * rw);
    if (t.prefetch < 0 && pf > 4) pf = 4;
    m->prefetch = m->nb > 1 ? 0 : pf < upl ? pf : upl;
    m->wg = wg, m->r = r, m->nb = nb, m->max_sg = max_sg, m->team = lanes;
    return true;
}

/* multiple: R must be a multiple of it (4 for qkv quads, 2 for ffn pairs). */
static mv_shape mv_choose(const vk_ctx *c, const vk_matrix *w, int n_rows, int multiple) {
    vk_tuning t = vk_tuning_get();
    mv_shape m = {0};
    m.nb = (uint32_t)(n_rows < 1 ? 1 : n_rows < t.nb_max ? n_rows : t.nb_max);
    if (mv_choose_staged(c, w, multiple, &m)) return m;
    /* unstaged: R x NB accumulators a thread, so at most 8 rows */
    if (m.nb > 8) m.nb = 8;
    int r = m.nb == 1 ? t.rows : t.rows_batch;
    r = (r + multiple - 1) / multiple * multiple;
    m.r = (uint32_t)r;
    uint32_t threads = ceil_div((uint32_t)w->ku, (uint32_t)t.units);
    m.wg = ceil_div(threads, 32) * 32;
    if (m.wg > 256) m.wg = 256;
    m.max_sg = c->fast ? ceil_div(m.wg, c->subgroup_min) : 1;
    return m;
}

static void mv_spec(uint32_t spec[VK_SPEC], const mv_shape *m, const vk_matrix *w,
                    const vk_shape *s, bool norm) {
    memset(spec, 0, sizeof(uint32_t) * VK_SPEC);
    spec[0] = m->wg;
    spec[1] = (uint32_t)w->type;
    spec[2] = (uint32_t)w->ku;
    spec[3] = (uint32_t)w->n_out;
    spec[4] = m->r;
    spec[5] = m->nb;
    spec[6] = m->max_sg;
    spec[7] = norm;
    spec[8] = f32_bits(norm ? s->eps : 0.0f);
    spec[9] = norm ? (uint32_t)s->dim : 0;
    spec[22] = m->team > 0;
    spec[23] = m->team > 0 ? m->team : 1;
    spec[21] = m->prefetch;
}

/* Workgroups of wg threads one NVIDIA multiprocessor holds at `regs`
 * registers a thread (a 64K register file handed out 256 registers a
 * warp, at most 2,048 threads; the staged matvecs' shared memory, ~10 KB
 * a workgroup for one activation row, is not the limit there, though
 * eight rows' ~40 KB may be); 6 where the driver does not say (256
 * threads of ~40 registers). */
static uint32_t wg_per_sm(uint32_t wg, uint32_t regs) {
    if (!regs) return 6;
    uint32_t by_regs = 65536 / ((regs + 7) / 8 * 8 * wg), by_threads = 2048 / wg;
    uint32_t n = by_regs < by_threads ? by_regs : by_threads;
    return n ? n : 1;
}

/* The grid of a matvec of n_groups row groups, after its pipeline is
 * made. A staged one (spec[22]) with more groups than the device runs
 * workgroups at once (ZT_VK_GROUPS, default the SMs times what one holds
 * at the pipeline's registers, where the device says how many SMs it has)
 * launches one wave of workgroups that take equal numbers of groups,
 * rather than a full wave and a ragged one (H100, Phi-3-mini Q4_0 decode,
 * ffn's 1,024 groups: 540-542 tok/s with 660 or 792 at once against 523
 * without; Q4_K_M at 44-48 registers, 5 an SM: 511.8 against 491.0 with
 * 6 an SM assumed). */
static void mv_grid(const vk_ctx *c, const uint32_t spec[VK_SPEC], uint32_t n_groups,
                    vk_dispatch *d) {
    vk_tuning t = vk_tuning_get();
    uint32_t at_once = t.groups >= 0
                           ? (uint32_t)t.groups
                           : c->sm_count * wg_per_sm(spec[0], vk_pipeline_regs(c, d->pipe));
    uint32_t launched = n_groups;
    if (spec[22] && at_once > 0 && n_groups > at_once)
        launched = ceil_div(n_groups, ceil_div(n_groups, at_once));
    if (c->stats && spec[22])
        fprintf(stderr, "zt vulkan grid: %s %u row groups, %u at once, %u workgroups\n", d->name,
                n_groups, at_once, launched);
    fold_groups(launched, d->groups);
}

/* A matvec role's dispatch: its pipeline and set (finish), then its grid:
 * n_groups row groups, and the n_rows activation rows NB (spec[5]) to a
 * workgroup along z. */
static int mv_finish(vk_ctx *c, int shader, const uint32_t spec[VK_SPEC],
                     vk_buf *const b[VK_BINDINGS], const char *name, uint32_t n_groups, int n_rows,
                     vk_dispatch *d, zt_error *err) {
    int rc = finish(c, shader, spec, b, name, d, err);
    if (rc) return rc;
    mv_grid(c, spec, n_groups, d);
    d->groups[2] = ceil_div((uint32_t)n_rows, spec[5]);
    return ZT_OK;
}

/* ---- roles ------------------------------------------------------------------------- */

int vk_k_embed(vk_ctx *c, const vk_shape *s, const vk_matrix *table, vk_buf *step, vk_buf *x,
               int n_rows, vk_dispatch *d, zt_error *err) {
    uint32_t spec[VK_SPEC] = {64, (uint32_t)table->type, (uint32_t)table->ku, (uint32_t)s->xs,
                              (uint32_t)s->max_batch};
    vk_buf *b[VK_BINDINGS] = {(vk_buf *)&table->q, (vk_buf *)&table->s, step, x};
    *d = (vk_dispatch){.groups = {ceil_div((uint32_t)table->ku, 64), (uint32_t)n_rows, 1},
                       .push = {(uint32_t)n_rows}};
    return finish(c, VK_SH_EMBED, spec, b, "embed", d, err);
}

int vk_k_qkv(vk_ctx *c, const vk_shape *s, const vk_matrix *w, int row_base, vk_buf *items,
             int n_items, vk_buf *x, vk_buf *gamma, vk_buf *bias, vk_buf *q, vk_buf *step,
             vk_buf *k_dst, vk_buf *v_dst, vk_buf *rope, int n_rows, vk_dispatch *d,
             zt_error *err) {
    mv_shape m = mv_choose(c, w, n_rows, 4);
    uint32_t spec[VK_SPEC];
    mv_spec(spec, &m, w, s, true);
    uint32_t qpw = m.r / 4;
    spec[10] = (uint32_t)s->max_batch;
    spec[11] = (uint32_t)s->max_pages_per_seq;
    spec[12] = (uint32_t)s->q_dim;
    spec[13] = (uint32_t)s->kv_dim;
    spec[14] = (uint32_t)s->qs;
    spec[15] = (uint32_t)(s->rope_half > 0 ? s->rope_half : 1);
    spec[16] = qpw;
    spec[17] = (uint32_t)n_items;
    spec[18] = (uint32_t)row_base;
    spec[19] = s->kv_type == ZT_KV_Q8;
    vk_buf *b[VK_BINDINGS] = {&((vk_matrix *)w)->q,
                              &((vk_matrix *)w)->s,
                              x,
                              gamma,
                              bias,
                              q,
                              step,
                              k_dst,
                              v_dst,
                              rope,
                              items};
    *d = (vk_dispatch){.push = {(uint32_t)n_rows}};
    int shader = s->kv_type == ZT_KV_F16 ? VK_SH_QKV_F16 : VK_SH_QKV_F32;
    if (shader == VK_SH_QKV_F16 && timed(c, n_rows)) shader = VK_SH_QKV_F16_TL;
    return mv_finish(c, shader, spec, b, "qkv", ceil_div((uint32_t)n_items, qpw), n_rows, d, err);
}

int vk_k_kv_quant(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *stage, vk_buf *k_cache,
                  vk_buf *v_cache, vk_buf *k_scale, vk_buf *v_scale, int n_rows, vk_dispatch *d,
                  zt_error *err) {
    uint32_t spec[VK_SPEC] = {32, (uint32_t)s->head_dim, (uint32_t)s->n_kv_heads,
                              (uint32_t)s->max_batch, (uint32_t)s->max_pages_per_seq};
    vk_buf *b[VK_BINDINGS] = {step, stage, k_cache, v_cache, k_scale, v_scale};
    *d = (vk_dispatch){.groups = {(uint32_t)s->n_kv_heads, 2, (uint32_t)n_rows},
                       .push = {(uint32_t)n_rows}};
    return finish(c, VK_SH_KV_QUANT, spec, b, "kv_quant", d, err);
}

/* Attention workgroups: 128 threads (256 for rows of more than 128 words),
 * and a key split that keeps the shader's shared memory near 24 KiB: the
 * scores of G heads for SPLIT positions plus the pass-3 partial sums. */
static uint32_t attention_wg(const vk_shape *s) {
    uint32_t dpt = s->kv_type == ZT_KV_Q8 ? 4 : s->kv_type == ZT_KV_F16 ? 2 : 1;
    /* 8 position groups in pass 3 (attention.comp), 128..512 threads
     * (H100, Phi-3-mini Q4_0 decode: 523 tok/s against 504 with 2 groups) */
    uint32_t ds = (uint32_t)s->head_dim / dpt, wg = ceil_div(8 * ds, 32) * 32;
    wg = wg < 128 ? 128 : wg > 512 ? 512 : wg;
    wg = (uint32_t)env_int("ZT_VK_ATT_WG", (int)wg, 32, 1024);
    return wg < ds ? ceil_div(ds, 32) * 32 : wg;
}

/* Positions whose values a thread of attention's value pass loads at
 * once (ZT_VK_ATT_VU, default 16): each load is a DRAM or L2 round trip,
 * and a decode split is one workgroup's whole work (H100, Phi-3-mini
 * decode: Q4_0 539.8 tok/s against 534.7 with 8 and 533.3 with 4;
 * Q4_K_M 484.8, 476.2, 480.7). */
static uint32_t attention_vu(void) { return (uint32_t)env_int("ZT_VK_ATT_VU", 16, 1, 32); }

static uint32_t attention_split(const vk_shape *s) {
    uint32_t dpt = s->kv_type == ZT_KV_Q8 ? 4 : s->kv_type == ZT_KV_F16 ? 2 : 1;
    uint32_t wg = attention_wg(s), g = (uint32_t)(s->n_heads / s->n_kv_heads);
    uint32_t hd = (uint32_t)s->head_dim, ng = wg / (hd / dpt);
    int64_t room = 6144 - (int64_t)g * hd * (1 + ng) - wg, split = 32;
    while (split * 2 <= (int64_t)s->split && split * 2 * (g + 1) <= room) split *= 2;
    return (uint32_t)split;
}

int vk_attention_splits(const vk_shape *s, int max_pos) {
    return (int)ceil_div((uint32_t)max_pos + 1, attention_split(s));
}

/* attention.comp's constants 0-11 (its Wo build adds 12-15) */
static void attention_spec(const vk_ctx *c, const vk_shape *s, uint32_t spec[VK_SPEC]) {
    uint32_t wg = attention_wg(s);
    uint32_t common[] = {wg,
                         (uint32_t)s->head_dim,
                         (uint32_t)(s->n_heads / s->n_kv_heads),
                         (uint32_t)s->n_kv_heads,
                         (uint32_t)s->qs,
                         (uint32_t)s->max_batch,
                         (uint32_t)s->max_pages_per_seq,
                         attention_split(s),
                         (uint32_t)s->window,
                         f32_bits(1.0f / sqrtf((float)s->head_dim)),
                         c->fast ? ceil_div(wg, c->subgroup_min) : 1,
                         attention_vu()};
    memset(spec, 0, sizeof(uint32_t) * VK_SPEC);
    memcpy(spec, common, sizeof common);
}

int vk_k_attention(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *q, vk_buf *k_cache,
                   vk_buf *v_cache, vk_buf *k_scale, vk_buf *v_scale, vk_buf *out, int n_rows,
                   int n_splits, vk_dispatch *d, zt_error *err) {
    uint32_t spec[VK_SPEC];
    attention_spec(c, s, spec);
    vk_buf *b[VK_BINDINGS] = {step, q, k_cache, v_cache, k_scale, v_scale, out};
    *d = (vk_dispatch){.groups = {(uint32_t)n_splits, (uint32_t)s->n_kv_heads, (uint32_t)n_rows},
                       .push = {(uint32_t)n_rows, (uint32_t)n_splits}};
    int shader = s->kv_type == ZT_KV_Q8    ? VK_SH_ATT_Q8
                 : s->kv_type == ZT_KV_F32 ? VK_SH_ATT_F32
                                           : VK_SH_ATT_F16;
    if (shader == VK_SH_ATT_F16 && timed(c, n_rows)) shader = VK_SH_ATT_F16_TL;
    return finish(c, shader, spec, b, "attention", d, err);
}

/* The outputs one fused dispatch projects (whole Wo units): a KV head's
 * query heads at one key split (attention.comp), one head past it
 * (attention_merge.comp). */
static int wo_values(const vk_shape *s, int n_splits) {
    return n_splits == 1 ? s->n_heads / s->n_kv_heads * s->head_dim : s->head_dim;
}

bool vk_fuse_wo(const vk_ctx *c, const vk_shape *s, int n_rows, int n_splits) {
    /* subgroups of 8 or more: wo_fold.glsl's unit rounding shuffles across
     * 8 lanes; one split runs attention.comp's Wo build, which exists for
     * the f16 cache */
    return env_int("ZT_VK_FUSE_WO", 1, 0, 1) && c->atomic_add && c->subgroup_min >= 8 &&
           n_rows == 1 && (n_splits > 1 || s->kv_type == ZT_KV_F16) &&
           wo_values(s, n_splits) % 32 == 0;
}

/* Wo rows a thread: as many as keep the Wo words it holds through the
 * attention near 32 (H100, Phi-3-mini tg128: Q4_0, 5 words a unit, 2 rows,
 * 30 words: 638-641 tok/s against 623-624 at 1 row; Q4_K, then 8 words
 * (7 now, the same 1 row), 1 row: 530-533 against 511-513 at 2;
 * bench/results/2026-11-27-vulkan-h100-6.md) */
static uint32_t wo_rows_per_thread(int values, const vk_matrix *wo) {
    int words = (int)unit_words(wo->type); /* float types: loaded after the attention */
    int units = values / 32;
    int rows = words ? 32 / (words * units) : 1;
    return (uint32_t)env_int("ZT_VK_WO_RPT", rows < 1 ? 1 : rows, 1, 16);
}

int vk_k_attention_wo(vk_ctx *c, const vk_shape *s, vk_buf *step, vk_buf *q, vk_buf *k_cache,
                      vk_buf *v_cache, const vk_matrix *wo, vk_buf *x, vk_dispatch *d,
                      zt_error *err) {
    uint32_t wg = attention_wg(s), rpt = wo_rows_per_thread(wo_values(s, 1), wo), spec[VK_SPEC];
    attention_spec(c, s, spec);
    spec[12] = (uint32_t)wo->type;
    spec[13] = (uint32_t)wo->ku;
    spec[14] = (uint32_t)wo->n_out;
    spec[15] = rpt;
    vk_buf *b[VK_BINDINGS] = {step,
                              q,
                              k_cache,
                              v_cache,
                              NULL,
                              NULL,
                              NULL,
                              x,
                              &((vk_matrix *)wo)->q,
                              &((vk_matrix *)wo)->s};
    *d = (vk_dispatch){
        .groups = {1, (uint32_t)s->n_kv_heads, ceil_div((uint32_t)wo->n_out, rpt * wg)},
        .push = {1, 1}};
    return finish(c, timed(c, 1) ? VK_SH_ATT_F16_WO_TL : VK_SH_ATT_F16_WO, spec, b, "attention_wo",
                  d, err);
}

int vk_k_attention_merge_wo(vk_ctx *c, const vk_shape *s, vk_buf *part, int n_splits,
                            const vk_matrix *wo, vk_buf *x, vk_dispatch *d, zt_error *err) {
    /* 256 threads: the merge takes head_dim of them, the projection all */
    uint32_t wg = 256, rpt = wo_rows_per_thread(wo_values(s, n_splits), wo);
    uint32_t spec[VK_SPEC] = {wg,
                              (uint32_t)s->head_dim,
                              (uint32_t)s->n_heads,
                              (uint32_t)s->qs,
                              (uint32_t)wo->type,
                              (uint32_t)wo->ku,
                              (uint32_t)wo->n_out,
                              rpt};
    vk_buf *b[VK_BINDINGS] = {part, NULL, x, &((vk_matrix *)wo)->q, &((vk_matrix *)wo)->s};
    *d = (vk_dispatch){.groups = {(uint32_t)s->n_heads, 1, ceil_div((uint32_t)wo->n_out, rpt * wg)},
                       .push = {1, (uint32_t)n_splits}};
    return finish(c, VK_SH_ATT_MERGE_WO, spec, b, "attention_merge_wo", d, err);
}

int vk_k_attention_merge(vk_ctx *c, const vk_shape *s, vk_buf *part, vk_buf *att, int n_rows,
                         int n_splits, vk_dispatch *d, zt_error *err) {
    uint32_t wg = ceil_div((uint32_t)s->head_dim, 32) * 32;
    uint32_t spec[VK_SPEC] = {wg > 256 ? 256 : wg, (uint32_t)s->head_dim, (uint32_t)s->n_heads,
                              (uint32_t)s->qs};
    vk_buf *b[VK_BINDINGS] = {part, att};
    *d = (vk_dispatch){.groups = {(uint32_t)s->n_heads, (uint32_t)n_rows, 1},
                       .push = {(uint32_t)n_rows, (uint32_t)n_splits}};
    return finish(c, VK_SH_ATT_MERGE, spec, b, "attention_merge", d, err);
}

int vk_k_matmul(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *act, vk_buf *x,
                int x_stride, int n_rows, vk_dispatch *d, zt_error *err) {
    mv_shape m = mv_choose(c, w, n_rows, 1);
    uint32_t spec[VK_SPEC];
    mv_spec(spec, &m, w, s, false);
    spec[10] = (uint32_t)x_stride;
    vk_buf *b[VK_BINDINGS] = {&((vk_matrix *)w)->q, &((vk_matrix *)w)->s, act, NULL, NULL, x};
    *d = (vk_dispatch){.push = {(uint32_t)n_rows}};
    return mv_finish(c, timed(c, n_rows) ? VK_SH_MATMUL_TL : VK_SH_MATMUL, spec, b, "matmul",
                     ceil_div((uint32_t)w->n_out, m.r), n_rows, d, err);
}

int vk_k_ffn(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *x, vk_buf *gamma, vk_buf *h,
             int n_rows, vk_dispatch *d, zt_error *err) {
    mv_shape m = mv_choose(c, w, n_rows, 2);
    uint32_t spec[VK_SPEC];
    mv_spec(spec, &m, w, s, true);
    spec[10] = (uint32_t)s->ffn_dim;
    spec[11] = (uint32_t)s->hs;
    vk_buf *b[VK_BINDINGS] = {&((vk_matrix *)w)->q, &((vk_matrix *)w)->s, x, gamma, NULL, h};
    *d = (vk_dispatch){.push = {(uint32_t)n_rows}};
    return mv_finish(c, timed(c, n_rows) ? VK_SH_FFN_TL : VK_SH_FFN, spec, b, "ffn",
                     ceil_div((uint32_t)s->ffn_dim, m.r / 2), n_rows, d, err);
}

int vk_k_lm_head(vk_ctx *c, const vk_shape *s, const vk_matrix *w, vk_buf *x, vk_buf *gamma,
                 vk_buf *step, vk_buf *logits, int n_out, vk_dispatch *d, zt_error *err) {
    mv_shape m = mv_choose(c, w, n_out, 1);
    uint32_t spec[VK_SPEC];
    mv_spec(spec, &m, w, s, true);
    spec[10] = (uint32_t)s->max_batch;
    vk_buf *b[VK_BINDINGS] = {
        &((vk_matrix *)w)->q, &((vk_matrix *)w)->s, x, gamma, NULL, logits, step};
    *d = (vk_dispatch){.push = {(uint32_t)n_out}};
    return mv_finish(c, VK_SH_LM_HEAD, spec, b, "lm_head", ceil_div((uint32_t)w->n_out, m.r), n_out,
                     d, err);
}

int vk_k_sample(vk_ctx *c, const vk_shape *s, vk_buf *logits, vk_buf *argmax, int n_out,
                vk_dispatch *d, zt_error *err) {
    uint32_t spec[VK_SPEC] = {256, (uint32_t)s->vocab};
    vk_buf *b[VK_BINDINGS] = {logits, argmax};
    *d = (vk_dispatch){.groups = {(uint32_t)n_out, 1, 1}, .push = {(uint32_t)n_out}};
    return finish(c, VK_SH_SAMPLE, spec, b, "sample", d, err);
}

/* ---- qkv quads ------------------------------------------------------------------ */

typedef struct item_list {
    uint32_t *items;
    int n, row0, row_end;
} item_list;

static void add_item(item_list *l, int a, int b, int f, int mode) {
    if (a < l->row0 || a >= l->row_end) return;
    uint32_t *it = l->items + 4 * l->n++;
    it[0] = (uint32_t)(a - l->row0);
    it[1] = (uint32_t)(b - l->row0);
    it[2] = (uint32_t)f;
    it[3] = (uint32_t)mode;
}

/* Unrotated rows [from, to) (an even count): quads, then a pair. */
static void add_plain(item_list *l, int from, int to) {
    for (int e = from; e < to; e += 4)
        if (e + 4 <= to)
            add_item(l, e, e + 2, 0, 0);
        else
            add_item(l, e, e, 0, 4);
}

/* Heads [0, n_heads) of head_dim rows starting at `base`. */
static int add_heads(item_list *l, const vk_shape *s, int base, int n_heads, bool interleaved,
                     int rope_dim) {
    int half = rope_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        int hb = base + h * s->head_dim;
        if (interleaved) {
            for (int i = 0; i < half; i += 2) /* pairs (2i, 2i+1) and (2i+2, 2i+3) */
                if (i + 1 < half)
                    add_item(l, hb + 2 * i, hb + 2 * i + 2, i, 2);
                else
                    add_item(l, hb + 2 * i, hb + 2 * i, i, 2 | 4);
        } else {
            if (half % 2) return -1; /* a rotate-half pair would split a stored pair */
            for (int i = 0; i < half; i += 2) add_item(l, hb + i, hb + i + half, i, 1);
        }
        add_plain(l, hb + rope_dim, hb + s->head_dim);
    }
    return 0;
}

int vk_qkv_items(const vk_shape *s, bool rope_interleaved, int rope_dim, int row0, int n,
                 uint32_t *items) {
    item_list l = {items, 0, row0, row0 + n};
    if (add_heads(&l, s, 0, s->n_heads, rope_interleaved, rope_dim) ||
        add_heads(&l, s, s->q_dim, s->n_kv_heads, rope_interleaved, rope_dim))
        return -1;
    add_plain(&l, s->q_dim + s->kv_dim, s->q_dim + 2 * s->kv_dim);
    return l.n;
}
