/*
 * The Vulkan backend: the forward pass of backend/cpu/cpu.c as compute
 * dispatches (the .comp files in shaders/), with the same arithmetic.
 *
 * One forward call (plan_forward) is this list of dispatches, each one
 * a shader of its kernel role, with a compute barrier between neighbours:
 *
 *   embed            x = token_embd[tokens]                       [n, dim]
 *   per layer:
 *     qkv            rmsnorm(x) @ Wqkv (+bias), RoPE; q -> q buffer,
 *                    k, v -> the paged KV cache (one dispatch per matrix:
 *                    1 for fused or same-typed q/k/v)
 *     kv_quant       (int8 cache) the staged k, v rounded into the cache
 *     attention      q against the cache of each row's sequence
 *     attention_merge (when the keys were split) the splits combined
 *     wo             x += att @ Wo                                 (matmul)
 *                    (one row: wo folded into attention at one key split,
 *                    into attention_merge past it, where the device has
 *                    float atomics; vk_fuse_wo)
 *     ffn            h = silu(rmsnorm(x) @ Wgate) * (rmsnorm(x) @ Wup)
 *     down           x += h @ Wdown                                (matmul)
 *   lm_head          logits = rmsnorm(x[out rows]) @ Woutput  [n_out, vocab]
 *   sample           argmax of each logits row, on the device
 *
 * so a decode step of an L-layer model with the f16 cache is 5 L + 3
 * dispatches, 4 L + 3 with wo folded (one row in one key split; past one
 * split the merge adds one a layer: 6 L + 3, 5 L + 3 folded). RMSNorm is fused into
 * the matmul that consumes it and the residual add into the matmul that
 * produces it (the add_rmsnorm role); SiLU into the gate/up matmul; RoPE
 * and the cache write into qkv.
 *
 * Replay: a forward call's command buffer depends only on (rows, wanted
 * rows, key splits, logits or not, argmax or not); it is recorded once and
 * replayed, each step changing only the step buffer (tokens, positions,
 * sequences, wanted rows, page table: a few hundred bytes) that the
 * command buffer copies to the device before the first dispatch.
 *
 * Memory: per layer one buffer for K and one for V ([n_pages][16][kv_dim],
 * f16, f32 or int8 + f32 scales per head), activations for max_batch rows,
 * weights as weights.c lays them out. create() adds it all up first and
 * refuses, saying what would fit, when the device's memory is too small;
 * every buffer stays within maxStorageBufferRange.
 *
 * Environment: ZT_VK_DEVICE=N picks the Nth Vulkan device; ZT_VK_PORTABLE=1
 * forces the portable shader build; ZT_VK_MEMORY_MB caps the device memory
 * the plan may use; ZT_VK_PROFILE=1 timestamps every dispatch and prints
 * the time per role when the backend is destroyed; ZT_VK_TIMELINE=1 stamps
 * every workgroup of every 8th single-row step and prints where each
 * role's time goes (timeline.c); ZT_VK_FUSE_WO=0 keeps attention and wo
 * apart; ZT_VK_ROWS, ZT_VK_UNITS, ZT_VK_NB, ZT_VK_SPLIT, ZT_VK_WO_RPT and
 * kernels.c's other ZT_VK_ settings change launch shapes.
 */
#include "backend/backend.h"
#include "backend/vulkan/vk.h"
#include "quant/quant.h"
#include "util/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_CACHED_CMDS  4 /* recorded command buffers kept for replay */
#define VK_MAX_SEGMENTS 3

typedef struct vk_items {
    int row0, n; /* the rows of [q | k | v] the table covers */
    int count;   /* quads */
    vk_buf buf;  /* [count] uvec4 */
} vk_items;

typedef struct vk_layer {
    vk_matrix qkv[VK_MAX_SEGMENTS]; /* q, k, v rows in as few matrices as types allow */
    int qkv_row0[VK_MAX_SEGMENTS];  /* first row of each in [q | k | v] */
    vk_items *qkv_items[VK_MAX_SEGMENTS];
    int n_qkv;
    vk_buf attn_norm, ffn_norm;  /* [xs] f32 */
    vk_buf bias;                 /* [q_dim + 2 kv_dim] f32, or none (the shared zeros) */
    vk_matrix wo, gate_up, down; /* gate_up: [gate rows; up rows] */
    vk_buf k_cache, v_cache;     /* [n_pages][16][kv_dim] f16, f32 or int8 */
    vk_buf k_scale, v_scale;     /* [n_pages][16][n_kv_heads] f32 (int8 cache) */
} vk_layer;

typedef struct fwd_key {
    int n_rows, n_out, n_splits;
    bool logits, argmax;
} fwd_key;

typedef struct cached_cmd {
    fwd_key key;
    VkCommandBuffer cb;
    int n_dispatch;
    const char **names; /* [n_dispatch], for the profile */
    bool valid;
} cached_cmd;

typedef struct profile_row {
    const char *name;
    double us[2]; /* single-row forwards, batches */
    long calls[2];
} profile_row;

struct zt_backend {
    const zt_model *model;
    const zt_config *cfg;
    zt_backend_opts o;
    vk_ctx *vk;
    vk_shape shape;

    vk_layer *layers; /* [n_layers] */
    vk_matrix token_embd, output;
    bool tied;        /* output is token_embd */
    vk_buf out_norm;  /* [xs] */
    vk_buf zero_bias; /* [q_dim + 2 kv_dim] zeros */
    vk_buf rope;      /* [n_ctx][rope_half] (cos, sin) */
    vk_items items[2 * VK_MAX_SEGMENTS];
    int n_items;

    vk_buf step;      /* device: tokens, pos, seq, out rows [max_batch] each; page table */
    vk_buf step_host; /* the same, host-visible: written each forward */
    size_t step_bytes;
    vk_buf x;        /* [max_batch][xs] residual stream */
    vk_buf q;        /* [max_batch][qs] queries after RoPE */
    vk_buf att;      /* [max_batch][qs] attention output */
    vk_buf part;     /* [max_batch][n_heads][max_splits][head_dim + 2] split partials */
    vk_buf h;        /* [max_batch][hs] gated FFN hidden state */
    vk_buf kv_stage; /* [max_batch][2 kv_dim] k, v before int8 rounding */
    vk_buf logits;   /* [max_batch][vocab] */
    vk_buf argmax;   /* [max_batch] int32 */
    vk_buf readback; /* logits then argmax, host-visible */
    int max_splits;

    cached_cmd cmds[VK_CACHED_CMDS];
    int next_victim;
    int last_dispatches;
    vk_dispatch *plan; /* scratch for plan_forward */
    int plan_cap;

    VkQueryPool stamps; /* ZT_VK_PROFILE */
    profile_row profile[16];
    int n_profile;
    vk_timeline *tl; /* ZT_VK_TIMELINE */
    long tl_steps;
};

/* ---- the forward pass ---------------------------------------------------------- */

/* Appends the dispatches of one forward call of shape k to b->plan. */
static int plan_forward(zt_backend *b, const fwd_key *k, int *n_out, zt_error *err) {
    vk_ctx *c = b->vk;
    const vk_shape *s = &b->shape;
    vk_dispatch *d = b->plan;
    int n = 0, rows = k->n_rows, rc;
    bool q8 = s->kv_type == ZT_KV_Q8;
    if ((rc = vk_k_embed(c, s, &b->token_embd, &b->step, &b->x, rows, &d[n++], err))) return rc;
    for (int l = 0; l < b->cfg->n_layers; l++) {
        vk_layer *L = &b->layers[l];
        for (int i = 0; i < L->n_qkv; i++)
            if ((rc = vk_k_qkv(c, s, &L->qkv[i], L->qkv_row0[i], &L->qkv_items[i]->buf,
                               L->qkv_items[i]->count, &b->x, &L->attn_norm,
                               L->bias.buf ? &L->bias : &b->zero_bias, &b->q, &b->step,
                               q8 ? &b->kv_stage : &L->k_cache, q8 ? &b->kv_stage : &L->v_cache,
                               &b->rope, rows, &d[n++], err)))
                return rc;
        if (q8 && (rc = vk_k_kv_quant(c, s, &b->step, &b->kv_stage, &L->k_cache, &L->v_cache,
                                      &L->k_scale, &L->v_scale, rows, &d[n++], err)))
            return rc;
        /* wo folded into the last attention dispatch where it can be */
        bool fold = vk_fuse_wo(c, s, rows, k->n_splits), split = k->n_splits > 1;
        if (fold && !split) {
            if ((rc = vk_k_attention_wo(c, s, &b->step, &b->q, &L->k_cache, &L->v_cache, &L->wo,
                                        &b->x, &d[n++], err)))
                return rc;
        } else {
            if ((rc = vk_k_attention(c, s, &b->step, &b->q, &L->k_cache, &L->v_cache, &L->k_scale,
                                     &L->v_scale, split ? &b->part : &b->att, rows, k->n_splits,
                                     &d[n++], err)))
                return rc;
            if (split && (rc = fold ? vk_k_attention_merge_wo(c, s, &b->part, k->n_splits, &L->wo,
                                                              &b->x, &d[n++], err)
                                    : vk_k_attention_merge(c, s, &b->part, &b->att, rows,
                                                           k->n_splits, &d[n++], err)))
                return rc;
            if (!fold) {
                if ((rc = vk_k_matmul(c, s, &L->wo, &b->att, &b->x, s->xs, rows, &d[n++], err)))
                    return rc;
                d[n - 1].name = "wo";
            }
        }
        if ((rc = vk_k_ffn(c, s, &L->gate_up, &b->x, &L->ffn_norm, &b->h, rows, &d[n++], err)))
            return rc;
        if ((rc = vk_k_matmul(c, s, &L->down, &b->h, &b->x, s->xs, rows, &d[n++], err))) return rc;
        d[n - 1].name = "down";
    }
    if (k->n_out > 0) {
        const vk_matrix *out = b->tied ? &b->token_embd : &b->output;
        if ((rc = vk_k_lm_head(c, s, out, &b->x, &b->out_norm, &b->step, &b->logits, k->n_out,
                               &d[n++], err)))
            return rc;
        if (k->argmax && (rc = vk_k_sample(c, s, &b->logits, &b->argmax, k->n_out, &d[n++], err)))
            return rc;
    }
    *n_out = n;
    return ZT_OK;
}

/* Records the command buffer of shape k: step inputs up, the dispatches,
 * results down. */
static int record_forward(zt_backend *b, const fwd_key *k, cached_cmd *cmd, zt_error *err) {
    vk_ctx *c = b->vk;
    int n, rc;
    if ((rc = plan_forward(b, k, &n, err))) return rc;
    const char **names = realloc(cmd->names, sizeof *names * (size_t)n);
    if (!names) return zt_fail(err, ZT_ENOMEM, "out of memory");
    cmd->names = names;
    for (int i = 0; i < n; i++) names[i] = b->plan[i].name;

    VkCommandBuffer cb = cmd->cb;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    if ((rc = vk_check(vkResetCommandBuffer(cb, 0), err, "vkResetCommandBuffer")) ||
        (rc = vk_check(vkBeginCommandBuffer(cb, &bi), err, "vkBeginCommandBuffer")))
        return rc;
    if (b->stamps) vkCmdResetQueryPool(cb, b->stamps, 0, (uint32_t)n + 1);
    VkBufferCopy up = {0, 0, b->step_bytes};
    vkCmdCopyBuffer(cb, b->step_host.buf, b->step.buf, 1, &up);
    VkMemoryBarrier to_compute = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         0, 1, &to_compute, 0, NULL, 0, NULL);
    vk_record(c, cb, b->plan, n, b->stamps);
    if (k->logits || k->argmax) {
        VkMemoryBarrier to_copy = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                   .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                                   .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT};
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &to_copy, 0, NULL, 0, NULL);
        size_t logit_bytes = sizeof(float) * (size_t)k->n_out * b->shape.vocab;
        if (k->logits) {
            VkBufferCopy down = {0, 0, logit_bytes};
            vkCmdCopyBuffer(cb, b->logits.buf, b->readback.buf, 1, &down);
        }
        if (k->argmax) {
            VkBufferCopy down = {0, sizeof(float) * (size_t)b->o.max_batch * b->shape.vocab,
                                 sizeof(int32_t) * (size_t)k->n_out};
            vkCmdCopyBuffer(cb, b->argmax.buf, b->readback.buf, 1, &down);
        }
        VkMemoryBarrier to_host = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                   .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                                   .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                             &to_host, 0, NULL, 0, NULL);
    }
    if ((rc = vk_check(vkEndCommandBuffer(cb), err, "vkEndCommandBuffer"))) return rc;
    cmd->key = *k;
    cmd->n_dispatch = n;
    cmd->valid = true;
    return ZT_OK;
}

static bool same_key(const fwd_key *a, const fwd_key *b) {
    return a->n_rows == b->n_rows && a->n_out == b->n_out && a->n_splits == b->n_splits &&
           a->logits == b->logits && a->argmax == b->argmax;
}

static cached_cmd *find_or_record(zt_backend *b, const fwd_key *k, zt_error *err) {
    for (int i = 0; i < VK_CACHED_CMDS; i++)
        if (b->cmds[i].valid && same_key(&b->cmds[i].key, k)) return &b->cmds[i];
    cached_cmd *cmd = &b->cmds[b->next_victim];
    b->next_victim = (b->next_victim + 1) % VK_CACHED_CMDS;
    cmd->valid = false;
    return record_forward(b, k, cmd, err) ? NULL : cmd;
}

static void profile_add(zt_backend *b, const cached_cmd *cmd) {
    uint64_t t[2048];
    int n = cmd->n_dispatch;
    if (n + 1 > 2048) return;
    if (vkGetQueryPoolResults(b->vk->dev, b->stamps, 0, (uint32_t)n + 1, sizeof t, t,
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
        return;
    double ns = b->vk->props.limits.timestampPeriod;
    int batch = cmd->key.n_rows > 1;
    for (int i = 0; i < n; i++) {
        int r = 0;
        while (r < b->n_profile && strcmp(b->profile[r].name, cmd->names[i])) r++;
        if (r == b->n_profile) {
            if (r == 16) continue;
            b->profile[b->n_profile++] = (profile_row){.name = cmd->names[i]};
        }
        b->profile[r].us[batch] += (double)(t[i + 1] - t[i]) * ns * 1e-3;
        b->profile[r].calls[batch]++;
    }
}

static void profile_print(const zt_backend *b) {
    for (int batch = 0; batch < 2; batch++) {
        double total = 0;
        for (int r = 0; r < b->n_profile; r++) total += b->profile[r].us[batch];
        if (total == 0) continue;
        fprintf(stderr, "vulkan profile, %s forwards (%s; GPU time between timestamps):\n",
                batch ? "multi-row" : "single-row", b->vk->props.deviceName);
        for (int r = 0; r < b->n_profile; r++)
            if (b->profile[r].calls[batch])
                fprintf(stderr, "  %-16s %8ld dispatches %10.1f us total %8.2f us each %5.1f%%\n",
                        b->profile[r].name, b->profile[r].calls[batch], b->profile[r].us[batch],
                        b->profile[r].us[batch] / b->profile[r].calls[batch],
                        100 * b->profile[r].us[batch] / total);
    }
}

static int vulkan_forward(zt_backend *b, const zt_fwd *f, zt_error *err) {
    const vk_shape *s = &b->shape;
    if (f->n_rows < 1 || f->n_rows > b->o.max_batch)
        return zt_fail(err, ZT_EINVAL, "vulkan: batch of %d rows (1..%d)", f->n_rows,
                       b->o.max_batch);
    int max_pos = 0;
    for (int i = 0; i < f->n_rows; i++) {
        if (f->pos[i] < 0 || f->pos[i] >= s->max_pages_per_seq * ZT_KV_PAGE || f->seq[i] < 0 ||
            f->seq[i] >= b->o.n_seq)
            return zt_fail(err, ZT_EINVAL,
                           "vulkan: row %d: position %d of sequence %d is out of "
                           "range",
                           i, f->pos[i], f->seq[i]);
        if (f->pos[i] > max_pos) max_pos = f->pos[i];
    }
    fwd_key k = {.n_rows = f->n_rows,
                 .n_out = f->n_out,
                 .n_splits = vk_attention_splits(s, max_pos),
                 .logits = f->logits && f->n_out > 0,
                 .argmax = f->argmax && f->n_out > 0};
    cached_cmd *cmd = find_or_record(b, &k, err);
    if (!cmd) return err ? err->code : ZT_EBACKEND;

    int32_t *step = b->step_host.map;
    int mb = b->o.max_batch;
    memcpy(step + VK_STEP_TOKENS * mb, f->tokens, sizeof(int32_t) * (size_t)f->n_rows);
    memcpy(step + VK_STEP_POS * mb, f->pos, sizeof(int32_t) * (size_t)f->n_rows);
    memcpy(step + VK_STEP_SEQ * mb, f->seq, sizeof(int32_t) * (size_t)f->n_rows);
    if (f->n_out > 0)
        memcpy(step + VK_STEP_OUT * mb, f->out_rows, sizeof(int32_t) * (size_t)f->n_out);
    memcpy(step + VK_STEP_PAGES * mb, f->page_table,
           sizeof(int32_t) * (size_t)b->o.n_seq * b->o.max_pages_per_seq);

    /* the timeline stamps every 8th single-row step (a 32 MB read back) */
    bool stamp = b->vk->timeline && f->n_rows == 1 && ++b->tl_steps % 8 == 0;
    int rc;
    if (stamp && (rc = vk_timeline_clear(b->vk, err))) return rc;
    if ((rc = vk_submit_wait(b->vk, cmd->cb, err))) return rc;
    b->last_dispatches = cmd->n_dispatch;
    if (b->stamps) profile_add(b, cmd);
    if (stamp && (rc = vk_timeline_step(b->vk, &b->tl, cmd->names, cmd->n_dispatch, err)))
        return rc;
    if (k.logits || k.argmax) {
        if (!b->readback.coherent) {
            VkMappedMemoryRange range = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                         .memory = b->readback.mem,
                                         .size = VK_WHOLE_SIZE};
            vkInvalidateMappedMemoryRanges(b->vk->dev, 1, &range);
        }
        const char *rb = b->readback.map;
        if (k.logits) memcpy(f->logits, rb, sizeof(float) * (size_t)f->n_out * s->vocab);
        if (k.argmax)
            memcpy(f->argmax, rb + sizeof(float) * (size_t)mb * s->vocab,
                   sizeof(int32_t) * (size_t)f->n_out);
    }
    return ZT_OK;
}

static int vulkan_dispatches(const zt_backend *b) { return b->last_dispatches; }

/* ---- create / destroy ----------------------------------------------------------- */

static void vulkan_destroy(zt_backend *b) {
    if (!b) return;
    vk_ctx *c = b->vk;
    if (c) {
        vkDeviceWaitIdle(c->dev);
        if (b->stamps) {
            profile_print(b);
            vkDestroyQueryPool(c->dev, b->stamps, NULL);
        }
        vk_timeline_print(b->tl, c->props.deviceName);
        vk_timeline_free(b->tl);
        for (int i = 0; i < VK_CACHED_CMDS; i++) {
            if (b->cmds[i].cb) vkFreeCommandBuffers(c->dev, c->cmd_pool, 1, &b->cmds[i].cb);
            free(b->cmds[i].names);
        }
        if (b->layers)
            for (int l = 0; l < b->cfg->n_layers; l++) {
                vk_layer *L = &b->layers[l];
                for (int i = 0; i < L->n_qkv; i++) vk_matrix_free(c, &L->qkv[i]);
                vk_matrix_free(c, &L->wo);
                vk_matrix_free(c, &L->gate_up);
                vk_matrix_free(c, &L->down);
                vk_buf *bufs[] = {&L->attn_norm, &L->ffn_norm, &L->bias,   &L->k_cache,
                                  &L->v_cache,   &L->k_scale,  &L->v_scale};
                for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
            }
        vk_matrix_free(c, &b->token_embd);
        vk_matrix_free(c, &b->output);
        for (int i = 0; i < b->n_items; i++) vk_buf_free(c, &b->items[i].buf);
        vk_buf *bufs[] = {&b->out_norm, &b->zero_bias, &b->rope,   &b->step,    &b->step_host,
                          &b->x,        &b->q,         &b->att,    &b->part,    &b->h,
                          &b->kv_stage, &b->logits,    &b->argmax, &b->readback};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
        vk_ctx_free(c);
    }
    free(b->layers);
    free(b->plan);
    free(b);
}

static int round32(int n) { return (n + 31) / 32 * 32; }

static size_t matrix_bytes(const zt_tensor *const *parts, int n_parts) {
    int type = vk_layout_of(parts[0]->type);
    int64_t rows = 0;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i]->type != parts[0]->type) type = ZT_F16;
        rows += parts[i]->ne[1];
    }
    size_t q, s;
    vk_matrix_bytes(type, parts[0]->ne[0], rows, &q, &s);
    return q + s;
}

/* Device bytes of everything but the KV cache, and of the KV cache per
 * position (all layers). */
static void memory_plan(const zt_backend *b, double *fixed, double *kv_per_pos) {
    const zt_model *m = b->model;
    const zt_config *c = b->cfg;
    const vk_shape *s = &b->shape;
    double w = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const zt_layer_weights *W = &m->w.layers[l];
        const zt_tensor *qkv[3] = {W->wqkv ? W->wqkv : W->wq, W->wk, W->wv};
        const zt_tensor *gu[2] = {W->w_gate_up ? W->w_gate_up : W->w_gate, W->w_up};
        w += (double)matrix_bytes(qkv, W->wqkv ? 1 : 3) + (double)matrix_bytes(&W->wo, 1) +
             (double)matrix_bytes(gu, W->w_gate_up ? 1 : 2) + (double)matrix_bytes(&W->w_down, 1);
        w += 4.0 * (2 * s->xs + s->q_dim + 2 * s->kv_dim);
    }
    w += (double)matrix_bytes(&m->w.token_embd, 1);
    if (!c->tied_output) w += (double)matrix_bytes(&m->w.output, 1);
    double B = b->o.max_batch;
    double scratch = 4.0 * B * (s->xs + 2 * s->qs + s->hs + s->vocab + 1) +
                     4.0 * B * s->n_heads * b->max_splits * (s->head_dim + 2) +
                     8.0 * (double)s->max_pages_per_seq * ZT_KV_PAGE * s->rope_half;
    if (s->kv_type == ZT_KV_Q8) scratch += 8.0 * B * s->kv_dim;
    *fixed = w + scratch;
    double elem = s->kv_type == ZT_KV_F32 ? 4 : s->kv_type == ZT_KV_F16 ? 2 : 1;
    *kv_per_pos =
        c->n_layers * (2.0 * s->kv_dim * elem + (s->kv_type == ZT_KV_Q8 ? 8.0 * s->n_kv_heads : 0));
}

/* Refuses, saying what would fit, when the plan exceeds the device's
 * largest device-local heap (or ZT_VK_MEMORY_MB, to share a device). */
static int check_memory(const zt_backend *b, zt_error *err) {
    double fixed, per_pos;
    memory_plan(b, &fixed, &per_pos);
    double positions = (double)b->o.n_pages * ZT_KV_PAGE, mib = 1024.0 * 1024;
    double need = fixed + per_pos * positions, have = (double)b->vk->heap_bytes;
    const char *cap = getenv("ZT_VK_MEMORY_MB");
    if (cap && atof(cap) > 0 && atof(cap) * mib < have) have = atof(cap) * mib;
    if (need <= have) return ZT_OK;
    char what[128];
    long fit = have > fixed ? (long)((have - fixed) / per_pos) / ZT_KV_PAGE * ZT_KV_PAGE : 0;
    if (fit > 0)
        snprintf(what, sizeof what,
                 "a KV cache of %ld positions would fit (all sequences together)", fit);
    else
        snprintf(what, sizeof what, "the weights and activations alone do not fit");
    return zt_fail(err, ZT_ENOMEM,
                   "vulkan: the model needs %.1f MiB of device memory (weights and activations "
                   "%.1f MiB, KV cache %.1f MiB for %.0f positions) but %s has %.1f MiB; %s",
                   need / mib, fixed / mib, per_pos * positions / mib, positions,
                   b->vk->props.deviceName, have / mib, what);
}

/* The shared quad table of rows [row0, row0 + n) of [q | k | v]. */
static int items_for(zt_backend *b, int row0, int n, vk_items **out, zt_error *err) {
    for (int i = 0; i < b->n_items; i++)
        if (b->items[i].row0 == row0 && b->items[i].n == n) {
            *out = &b->items[i];
            return ZT_OK;
        }
    if (b->n_items == 2 * VK_MAX_SEGMENTS)
        return zt_fail(err, ZT_EUNSUP, "vulkan: too many q/k/v layouts");
    vk_items *it = &b->items[b->n_items];
    uint32_t *tab = malloc(sizeof(uint32_t) * 4 * (size_t)(n / 2 + 1));
    if (!tab) return zt_fail(err, ZT_ENOMEM, "out of memory");
    it->row0 = row0;
    it->n = n;
    it->count = vk_qkv_items(&b->shape, b->cfg->rope_interleaved, b->cfg->rope_dim, row0, n, tab);
    int rc = ZT_OK;
    if (it->count < 0)
        rc = zt_fail(err, ZT_EUNSUP,
                     "vulkan: rope_dim %d: rotate-half RoPE needs rope_dim %% 4 == 0",
                     b->cfg->rope_dim);
    else if (!(rc = vk_buf_create(b->vk, &it->buf, 16 * (size_t)(it->count + 1), VK_MEM_DEVICE,
                                  "qkv items", err)))
        rc = vk_write(b->vk, &it->buf, 0, tab, 16 * (size_t)it->count, err);
    free(tab);
    if (rc) return rc;
    b->n_items++;
    *out = it;
    return ZT_OK;
}

static int upload_layer(zt_backend *b, int l, zt_error *err) {
    vk_ctx *c = b->vk;
    const vk_shape *s = &b->shape;
    const zt_layer_weights *W = &b->model->w.layers[l];
    vk_layer *L = &b->layers[l];
    int rc;

    /* q, k, v: fused, or consecutive tensors of one type merged */
    const zt_tensor *parts[3] = {W->wqkv ? W->wqkv : W->wq, W->wk, W->wv};
    int n_parts = W->wqkv ? 1 : 3, row = 0;
    for (int i = 0; i < n_parts;) {
        int j = i + 1;
        while (j < n_parts && parts[j]->type == parts[i]->type) j++;
        int rows = 0;
        for (int p = i; p < j; p++) rows += (int)parts[p]->ne[1];
        int seg = L->n_qkv++;
        L->qkv_row0[seg] = row;
        if ((rc = vk_matrix_upload(c, &L->qkv[seg], parts + i, j - i, -1, err)) ||
            (rc = items_for(b, row, rows, &L->qkv_items[seg], err)))
            return rc;
        row += rows;
        i = j;
    }
    const zt_tensor *bias[3] = {W->bq, W->bk, W->bv};
    int lens[3] = {s->q_dim, s->kv_dim, s->kv_dim};
    if ((W->bq || W->bk || W->bv) &&
        (rc = vk_vector_upload(c, &L->bias, bias, lens, 3, round32(s->q_dim + 2 * s->kv_dim), err)))
        return rc;

    const zt_tensor *gu[2] = {W->w_gate_up ? W->w_gate_up : W->w_gate, W->w_up};
    int dim = s->dim;
    if ((rc = vk_vector_upload(c, &L->attn_norm, &W->attn_norm, &dim, 1, s->xs, err)) ||
        (rc = vk_vector_upload(c, &L->ffn_norm, &W->ffn_norm, &dim, 1, s->xs, err)) ||
        (rc = vk_matrix_upload(c, &L->wo, &W->wo, 1, -1, err)) ||
        (rc = vk_matrix_upload(c, &L->gate_up, gu, W->w_gate_up ? 1 : 2, -1, err)) ||
        (rc = vk_matrix_upload(c, &L->down, &W->w_down, 1, -1, err)))
        return rc;

    size_t slots = (size_t)b->o.n_pages * ZT_KV_PAGE;
    size_t elem = s->kv_type == ZT_KV_F32 ? 4 : s->kv_type == ZT_KV_F16 ? 2 : 1;
    if ((rc = vk_buf_create(c, &L->k_cache, slots * s->kv_dim * elem, VK_MEM_DEVICE,
                            "the K cache of a layer", err)) ||
        (rc = vk_buf_create(c, &L->v_cache, slots * s->kv_dim * elem, VK_MEM_DEVICE,
                            "the V cache of a layer", err)))
        return rc;
    if (s->kv_type == ZT_KV_Q8 && ((rc = vk_buf_create(c, &L->k_scale, slots * s->n_kv_heads * 4,
                                                       VK_MEM_DEVICE, "K scales", err)) ||
                                   (rc = vk_buf_create(c, &L->v_scale, slots * s->n_kv_heads * 4,
                                                       VK_MEM_DEVICE, "V scales", err))))
        return rc;
    return ZT_OK;
}

static int create_scratch(zt_backend *b, zt_error *err) {
    vk_ctx *c = b->vk;
    const vk_shape *s = &b->shape;
    size_t B = (size_t)b->o.max_batch;
    int n_ctx = s->max_pages_per_seq * ZT_KV_PAGE, half = s->rope_half;
    int rc;

    /* RoPE angles as the CPU computes them: (float)pos * inv_freq[i] */
    float *rope = malloc(sizeof(float) * 2 * (size_t)n_ctx * (half ? half : 1));
    if (!rope) return zt_fail(err, ZT_ENOMEM, "out of memory");
    for (int p = 0; p < n_ctx; p++)
        for (int i = 0; i < half; i++) {
            float angle = (float)p * b->cfg->rope_inv_freq[i];
            rope[2 * ((size_t)p * half + i)] = cosf(angle);
            rope[2 * ((size_t)p * half + i) + 1] = sinf(angle);
        }
    size_t rope_bytes = sizeof(float) * 2 * (size_t)n_ctx * (half ? half : 1);
    rc = vk_buf_create(c, &b->rope, rope_bytes, VK_MEM_DEVICE, "the RoPE table", err);
    if (!rc && half) rc = vk_write(c, &b->rope, 0, rope, rope_bytes, err);
    free(rope);
    if (rc) return rc;

    b->step_bytes = sizeof(int32_t) * (4 * B + (size_t)b->o.n_seq * b->o.max_pages_per_seq);
    size_t logit_bytes = sizeof(float) * B * s->vocab;
    struct {
        vk_buf *buf;
        size_t bytes;
        int mem;
        const char *label;
    } list[] = {
        {&b->step, b->step_bytes, VK_MEM_DEVICE, "the step inputs"},
        {&b->step_host, b->step_bytes, VK_MEM_UPLOAD, "the step inputs"},
        {&b->x, sizeof(float) * B * s->xs, VK_MEM_DEVICE, "the residual stream"},
        {&b->q, sizeof(float) * B * s->qs, VK_MEM_DEVICE, "the queries"},
        {&b->att, sizeof(float) * B * s->qs, VK_MEM_DEVICE, "the attention output"},
        {&b->h, sizeof(float) * B * s->hs, VK_MEM_DEVICE, "the FFN hidden state"},
        {&b->logits, logit_bytes, VK_MEM_DEVICE, "the logits"},
        {&b->argmax, sizeof(int32_t) * B, VK_MEM_DEVICE, "the argmax"},
        {&b->readback, logit_bytes + sizeof(int32_t) * B, VK_MEM_READBACK, "the results"},
        {&b->zero_bias, sizeof(float) * (size_t)round32(s->q_dim + 2 * s->kv_dim), VK_MEM_DEVICE,
         "the bias"},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if ((rc = vk_buf_create(c, list[i].buf, list[i].bytes, list[i].mem, list[i].label, err)))
            return rc;
    if (b->max_splits > 1 &&
        (rc = vk_buf_create(c, &b->part,
                            sizeof(float) * B * s->n_heads * b->max_splits * (s->head_dim + 2),
                            VK_MEM_DEVICE, "the attention partials", err)))
        return rc;
    if (s->kv_type == ZT_KV_Q8 &&
        (rc = vk_buf_create(c, &b->kv_stage, sizeof(float) * B * 2 * s->kv_dim, VK_MEM_DEVICE,
                            "the KV staging", err)))
        return rc;
    /* activation padding must read as zero: zero everything once */
    vk_buf *zero[] = {&b->x, &b->q, &b->att, &b->h, &b->zero_bias};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if ((rc = vk_fill(c, zero[i], 0, err))) return rc;
    memset(b->step_host.map, 0xff, b->step_bytes);
    return ZT_OK;
}

static int create_commands(zt_backend *b, zt_error *err) {
    vk_ctx *c = b->vk;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    for (int i = 0; i < VK_CACHED_CMDS; i++) {
        int rc = vk_check(vkAllocateCommandBuffers(c->dev, &ai, &b->cmds[i].cb), err,
                          "vkAllocateCommandBuffers");
        if (rc) return rc;
    }
    b->plan_cap = 16 * b->cfg->n_layers + 8;
    b->plan = calloc((size_t)b->plan_cap, sizeof *b->plan);
    if (!b->plan) return zt_fail(err, ZT_ENOMEM, "out of memory");
    const char *prof = getenv("ZT_VK_PROFILE");
    if (prof && *prof && strcmp(prof, "0") != 0 && c->props.limits.timestampComputeAndGraphics) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = (uint32_t)b->plan_cap + 1};
        return vk_check(vkCreateQueryPool(c->dev, &qi, NULL, &b->stamps), err, "vkCreateQueryPool");
    }
    return ZT_OK;
}

static int vulkan_create(const zt_model *m, const zt_backend_opts *o, zt_backend **out,
                         zt_error *err) {
    *out = NULL;
    const zt_config *cfg = &m->cfg;
    if (cfg->head_dim % 2 || (o->kv_type == ZT_KV_Q8 && cfg->head_dim % 4))
        return zt_fail(err, ZT_EUNSUP, "vulkan: head_dim %d is not a multiple of %d", cfg->head_dim,
                       o->kv_type == ZT_KV_Q8 ? 4 : 2);
    zt_backend *b = calloc(1, sizeof *b);
    if (!b) return zt_fail(err, ZT_ENOMEM, "out of memory");
    b->model = m;
    b->cfg = cfg;
    b->o = *o;
    vk_tuning t = vk_tuning_get();
    vk_shape *s = &b->shape;
    s->dim = cfg->dim;
    s->n_heads = cfg->n_heads;
    s->n_kv_heads = cfg->n_kv_heads;
    s->head_dim = cfg->head_dim;
    s->ffn_dim = cfg->ffn_dim;
    s->vocab = cfg->n_vocab;
    s->q_dim = cfg->n_heads * cfg->head_dim;
    s->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    s->xs = round32(cfg->dim);
    s->qs = round32(s->q_dim);
    s->hs = round32(cfg->ffn_dim);
    s->eps = cfg->rms_eps;
    s->rope_half = cfg->rope_dim / 2;
    s->window = cfg->sliding_window > 0 ? cfg->sliding_window : 0;
    s->kv_type = o->kv_type;
    s->max_batch = o->max_batch;
    s->max_pages_per_seq = o->max_pages_per_seq;
    s->split = t.split;
    b->max_splits = vk_attention_splits(s, o->max_pages_per_seq * ZT_KV_PAGE - 1);

    int rc = vk_ctx_create(&b->vk, false, err);
    if (rc) goto fail;
    if ((rc = check_memory(b, err))) goto fail;
    if (!(b->layers = calloc((size_t)cfg->n_layers, sizeof *b->layers))) {
        rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = create_scratch(b, err))) goto fail;
    for (int l = 0; l < cfg->n_layers; l++)
        if ((rc = upload_layer(b, l, err))) goto fail;
    b->tied = cfg->tied_output || m->w.output == m->w.token_embd;
    int dim = cfg->dim;
    if ((rc = vk_matrix_upload(b->vk, &b->token_embd, &m->w.token_embd, 1, -1, err)) ||
        (!b->tied && (rc = vk_matrix_upload(b->vk, &b->output, &m->w.output, 1, -1, err))) ||
        (rc = vk_vector_upload(b->vk, &b->out_norm, &m->w.output_norm, &dim, 1, s->xs, err)) ||
        (rc = create_commands(b, err)))
        goto fail;
    *out = b;
    return ZT_OK;
fail:
    vulkan_destroy(b);
    return rc;
}

static int vulkan_probe(zt_error *err) {
    vk_ctx *c;
    int rc = vk_ctx_create(&c, false, err);
    if (rc == ZT_OK) vk_ctx_free(c);
    return rc;
}

const zt_backend_ops zt_vulkan_backend = {
    .name = "vulkan",
    .probe = vulkan_probe,
    .create = vulkan_create,
    .forward = vulkan_forward,
    .destroy = vulkan_destroy,
    .dispatches = vulkan_dispatches,
};
