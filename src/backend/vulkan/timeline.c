/*
 * The decode timeline (ZT_VK_TIMELINE=1; diagnostics): where a dependent
 * dispatch boundary's time goes. The timeline builds of qkv, attention,
 * matmul and ffn (shaders/timeline.glsl) stamp the device clock per
 * workgroup at its start (mark 0), after its dot products (1), at its
 * end (2) and, in staged matvecs, once its activation row is staged (3),
 * into slot i of the stamp buffer for dispatch i of the command
 * buffer. vulkan.c zeroes the stamps before every 8th single-row step and
 * hands the result here; the destroy prints, per role, averaged over the
 * collected dispatches (microseconds, the clock read as nanoseconds):
 *
 *   gap     first workgroup's start - previous dispatch's last end
 *           (the barrier and the launch)
 *   spread  last workgroup's start - first's (the launch ramp)
 *   staged  a workgroup's start -> mark 3, median (0: not staged)
 *   mark 1  a workgroup's start -> mark 1, median
 *   life    a workgroup's start -> end, median
 *   tail    last end - median end (the stragglers)
 *   span    last end - first start
 */
#include "backend/vulkan/vk.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_ROLES 8

typedef struct tl_role {
    const char *name;
    long n, n_gap;
    double gap, spread, staged, mark1, life, tail, span;
} tl_role;

struct vk_timeline {
    tl_role roles[TL_ROLES];
    int n_roles;
    uint64_t *stamps; /* host copy of the stamp buffer */
};

int vk_timeline_init(vk_ctx *c, zt_error *err) {
    return vk_buf_create(c, &c->tl_buf, (VkDeviceSize)VK_TL_SLOTS * VK_TL_WG_MAX * 4 * 8,
                         VK_MEM_DEVICE, "the timeline stamps", err);
}

int vk_timeline_clear(vk_ctx *c, zt_error *err) { return vk_fill(c, &c->tl_buf, 0, err); }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static tl_role *role_of(vk_timeline *t, const char *name) {
    for (int r = 0; r < t->n_roles; r++)
        if (!strcmp(t->roles[r].name, name)) return &t->roles[r];
    if (t->n_roles == TL_ROLES) return NULL;
    t->roles[t->n_roles] = (tl_role){.name = name};
    return &t->roles[t->n_roles++];
}

int vk_timeline_step(vk_ctx *c, vk_timeline **tp, const char *const *names, int n, zt_error *err) {
    vk_timeline *t = *tp;
    size_t bytes = (size_t)VK_TL_SLOTS * VK_TL_WG_MAX * 4 * 8;
    if (!t) {
        if (!(t = calloc(1, sizeof *t)) || !(t->stamps = malloc(bytes))) {
            free(t);
            return zt_fail(err, ZT_ENOMEM, "out of memory");
        }
        *tp = t;
    }
    int slots = n < VK_TL_SLOTS ? n : VK_TL_SLOTS; /* only the step's dispatches */
    int rc = vk_read(c, &c->tl_buf, 0, t->stamps, bytes / VK_TL_SLOTS * (size_t)slots, err);
    if (rc) return rc;
    uint64_t *a = malloc(sizeof(uint64_t) * 4 * VK_TL_WG_MAX);
    if (!a) return zt_fail(err, ZT_ENOMEM, "out of memory");
    uint64_t *life = a, *m1 = a + VK_TL_WG_MAX, *end = a + 2 * VK_TL_WG_MAX,
             *m3 = a + 3 * VK_TL_WG_MAX, prev_end = 0;
    for (int i = 0; i < slots; i++) {
        const uint64_t *s = t->stamps + (size_t)i * VK_TL_WG_MAX * 4;
        int g = 0;
        while (g < VK_TL_WG_MAX && s[4 * g] != 0 && s[4 * g + 2] != 0) g++;
        tl_role *r = g > 0 ? role_of(t, names[i]) : NULL;
        if (!r) {
            prev_end = 0; /* an unstamped dispatch: no gap for the next */
            continue;
        }
        uint64_t s_min = UINT64_MAX, s_max = 0, e_max = 0;
        for (int w = 0; w < g; w++) {
            uint64_t s0 = s[4 * w], s1 = s[4 * w + 1], s2 = s[4 * w + 2], s3 = s[4 * w + 3];
            s_min = s0 < s_min ? s0 : s_min;
            s_max = s0 > s_max ? s0 : s_max;
            e_max = s2 > e_max ? s2 : e_max;
            life[w] = s2 - s0, m1[w] = s1 > s0 ? s1 - s0 : 0, end[w] = s2;
            m3[w] = s3 > s0 && s3 < s2 ? s3 - s0 : 0; /* 0: not staged */
        }
        qsort(life, (size_t)g, sizeof *life, cmp_u64);
        qsort(m1, (size_t)g, sizeof *m1, cmp_u64);
        qsort(m3, (size_t)g, sizeof *m3, cmp_u64);
        qsort(end, (size_t)g, sizeof *end, cmp_u64);
        r->n++;
        if (prev_end && s_min >= prev_end) {
            r->gap += (double)(s_min - prev_end) * 1e-3;
            r->n_gap++;
        }
        r->spread += (double)(s_max - s_min) * 1e-3;
        r->mark1 += (double)m1[g / 2] * 1e-3;
        r->staged += (double)m3[g / 2] * 1e-3;
        r->life += (double)life[g / 2] * 1e-3;
        r->tail += (double)(e_max - end[g / 2]) * 1e-3;
        r->span += (double)(e_max - s_min) * 1e-3;
        prev_end = e_max;
    }
    free(a);
    return ZT_OK;
}

void vk_timeline_print(const vk_timeline *t, const char *device) {
    if (!t || !t->n_roles) return;
    fprintf(
        stderr,
        "vulkan timeline, single-row forwards (%s; per dispatch, us, averaged over %ld of each; "
        "the clock read as ns):\n",
        device, t->roles[0].n);
    fprintf(stderr, "  %-12s %8s %8s %8s %8s %8s %8s %8s\n", "role", "gap", "spread", "staged",
            "mark 1", "life", "tail", "span");
    for (int i = 0; i < t->n_roles; i++) {
        const tl_role *r = &t->roles[i];
        double n = (double)r->n;
        fprintf(stderr, "  %-12s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", r->name,
                r->n_gap ? r->gap / (double)r->n_gap : 0.0, r->spread / n, r->staged / n,
                r->mark1 / n, r->life / n, r->tail / n, r->span / n);
    }
}

void vk_timeline_free(vk_timeline *t) {
    if (!t) return;
    free(t->stamps);
    free(t);
}
