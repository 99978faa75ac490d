/*
 * sampler.c — logits -> the next token.
 *
 * Order of operations, each step only when its parameter turns it on:
 *
 *   1. penalties   over the last penalty_last_n accepted tokens (prompt and
 *                  generated), applied to `logits` in place:
 *                  repetition (CTRL, as llama.cpp): a seen token's logit is
 *                    divided by repeat_penalty when > 0, multiplied when <= 0;
 *                  then frequency and presence (OpenAI):
 *                    logit -= count * frequency_penalty + (count > 0) * presence_penalty.
 *                  Penalties act on logits, before anything is cut, so that a
 *                  penalized token can drop out of the top-k like any other.
 *   2. greedy      temperature <= 0: argmax, lowest index on ties. Nothing
 *                  else touches the logits, so without penalties this is
 *                  bit-identical to the argmax a backend computes on the device.
 *   3. top-k       keep the k largest logits (ties: lower index first).
 *                  Partial selection with a k-heap, O(V log k), no full sort.
 *   4. temperature divide by T, and
 *   5. softmax     over the survivors (max subtracted first). Top-k before
 *                  temperature gives the same set (both are monotonic); the
 *                  order only saves exps.
 *   6. top-p       keep the smallest set of most probable candidates whose
 *                  mass reaches top_p (at least one). After top-k the
 *                  candidates are sorted and this is a walk; over the whole
 *                  vocabulary it is a quickselect that partitions by
 *                  probability and tracks mass (expected O(V)): no sort.
 *   7. min-p       drop candidates with p < min_p * p_max (p_max always stays).
 *                  Without top-p this is decided on the logits, before any exp:
 *                  p_i >= min_p p_max  <=>  l_i >= l_max + T ln(min_p).
 *   8. draw        renormalize over what is left and draw one token with
 *                  xoshiro256** (Blackman & Vigna), its state seeded from
 *                  `seed` by splitmix64; 53-bit uniforms in [0, 1).
 *
 * NaN logits count as -inf. zt_sampler_reset forgets the history and
 * re-seeds, so a reset sampler repeats its first sequence. Sampling with a
 * NULL sampler or NULL logits returns -1.
 */
#include "util/error.h"
#include "zt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct zt_sampler {
    zt_sampler_params p;
    int n_vocab;

    int32_t *history; /* [p.penalty_last_n] ring of accepted ids */
    int hist_len;     /* ids held (<= penalty_last_n) */
    int hist_next;    /* slot the next id goes to */
    int32_t *counts;  /* [n_vocab] zero between calls; counts the window */

    uint64_t rng[4]; /* xoshiro256** state */

    int32_t *cand_id; /* [n_vocab] candidates: token ids */
    float *cand_val;  /* [n_vocab] their logits, then unnormalized probs */
};

/* ---- random numbers ---------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void rng_seed(zt_sampler *s, uint64_t seed) {
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro256ss(uint64_t *st) {
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(zt_sampler *s) { return (double)(xoshiro256ss(s->rng) >> 11) * 0x1p-53; }

/* ---- the public object -------------------------------------------------- */

zt_sampler_params zt_sampler_defaults(void) {
    /* llama.cpp's defaults; seed 0 is a fixed seed: a CLI that wants a new
     * sequence every run picks its own */
    return (zt_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
    };
}

static bool penalties_on(const zt_sampler_params *p) {
    return p->penalty_last_n > 0 && (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
                                     p->presence_penalty != 0.0f);
}

void zt_sampler_free(zt_sampler *s) {
    if (!s) return;
    free(s->history);
    free(s->counts);
    free(s->cand_id);
    free(s->cand_val);
    free(s);
}

int zt_sampler_create(const zt_sampler_params *p, int n_vocab, zt_sampler **out, zt_error *err) {
    if (!out) return zt_fail(err, ZT_EINVAL, "zt_sampler_create: out is NULL");
    *out = NULL;
    zt_sampler_params d = zt_sampler_defaults();
    if (!p) p = &d;
    if (n_vocab <= 0)
        return zt_fail(err, ZT_EINVAL, "sampler: vocabulary size %d must be > 0", n_vocab);
    if (isnan(p->temperature)) return zt_fail(err, ZT_EINVAL, "sampler: temperature is NaN");
    if (isnan(p->top_p)) return zt_fail(err, ZT_EINVAL, "sampler: top_p is NaN");
    if (isnan(p->min_p)) return zt_fail(err, ZT_EINVAL, "sampler: min_p is NaN");
    if (p->min_p > 1.0f)
        return zt_fail(err, ZT_EINVAL, "sampler: min_p %g must be <= 1", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f))
        return zt_fail(err, ZT_EINVAL, "sampler: repeat_penalty %g must be > 0",
                       (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        return zt_fail(err, ZT_EINVAL, "sampler: frequency/presence penalties must be finite");
    if (p->penalty_last_n < 0)
        return zt_fail(err, ZT_EINVAL, "sampler: penalty_last_n %d must be >= 0",
                       p->penalty_last_n);

    zt_sampler *s = calloc(1, sizeof *s);
    if (!s) return zt_fail(err, ZT_ENOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    size_t v = (size_t)n_vocab;
    s->cand_id = malloc(v * sizeof *s->cand_id);
    s->cand_val = malloc(v * sizeof *s->cand_val);
    bool ok = s->cand_id && s->cand_val;
    if (ok && penalties_on(p)) {
        s->history = malloc((size_t)p->penalty_last_n * sizeof *s->history);
        s->counts = calloc(v, sizeof *s->counts);
        ok = s->history && s->counts;
    }
    if (!ok) {
        zt_sampler_free(s);
        return zt_fail(err, ZT_ENOMEM, "sampler: out of memory for %d vocabulary entries", n_vocab);
    }
    rng_seed(s, p->seed);
    *out = s;
    return ZT_OK;
}

void zt_sampler_accept(zt_sampler *s, int32_t id) {
    /* ids outside the vocabulary cannot be penalized; they are not kept */
    if (!s || !s->history || id < 0 || id >= s->n_vocab) return;
    s->history[s->hist_next] = id;
    s->hist_next = (s->hist_next + 1) % s->p.penalty_last_n;
    if (s->hist_len < s->p.penalty_last_n) s->hist_len++;
}

void zt_sampler_reset(zt_sampler *s) {
    if (!s) return;
    s->hist_len = 0;
    s->hist_next = 0;
    rng_seed(s, s->p.seed);
}

bool zt_sampler_is_greedy(const zt_sampler *s) {
    /* true exactly when zt_sampler_sample is the plain argmax of the logits,
     * so that a caller may take the backend's argmax instead */
    return s && s->p.temperature <= 0.0f && !penalties_on(&s->p);
}

/* ---- steps ---------------------------------------------------------------- */

static void apply_penalties(zt_sampler *s, float *logits) {
    if (!s->history || s->hist_len == 0) return;
    const zt_sampler_params *p = &s->p;
    for (int i = 0; i < s->hist_len; i++) s->counts[s->history[i]]++;
    for (int i = 0; i < s->hist_len; i++) {
        int32_t id = s->history[i];
        int c = s->counts[id];
        if (c == 0) continue; /* already done */
        float l = logits[id];
        if (p->repeat_penalty != 1.0f) l = l > 0.0f ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        logits[id] = l;
        s->counts[id] = 0;
    }
}

/* NaN sorts as -inf. */
static float key(float x) { return x == x ? x : -INFINITY; }

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    float bv = key(logits[0]);
    for (int i = 1; i < n; i++)
        if (key(logits[i]) > bv) {
            bv = key(logits[i]);
            best = i;
        }
    return best;
}

/* a ranks after b: smaller value, or equal value and larger id */
static bool worse(float va, int32_t ia, float vb, int32_t ib) {
    return va < vb || (va == vb && ia > ib);
}

static void heap_sift_down(int32_t *id, float *val, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(val[l], id[l], val[m], id[m])) m = l;
        if (r < n && worse(val[r], id[r], val[m], id[m])) m = r;
        if (m == i) return;
        int32_t ti = id[i];
        float tv = val[i];
        id[i] = id[m];
        val[i] = val[m];
        id[m] = ti;
        val[m] = tv;
        i = m;
    }
}

/* The k best of the n logits into out_id/out_val, best first. A min-heap of
 * the k best so far (root = the worst of them) rejects most entries with one
 * comparison; the heap is then sorted in place by popping the root to the end. */
static void select_top(const float *logits, int n, int k, int32_t *out_id, float *out_val) {
    int h = 0;
    for (int i = 0; i < n; i++) {
        float v = key(logits[i]);
        int32_t id = i;
        if (h < k) {
            /* sift up */
            int j = h++;
            while (j > 0) {
                int parent = (j - 1) / 2;
                if (!worse(v, id, out_val[parent], out_id[parent])) break;
                out_id[j] = out_id[parent];
                out_val[j] = out_val[parent];
                j = parent;
            }
            out_id[j] = id;
            out_val[j] = v;
        } else if (worse(out_val[0], out_id[0], v, id)) {
            out_id[0] = id;
            out_val[0] = v;
            heap_sift_down(out_id, out_val, k, 0);
        }
    }
    for (int end = h - 1; end > 0; end--) {
        int32_t ti = out_id[0];
        float tv = out_val[0];
        out_id[0] = out_id[end];
        out_val[0] = out_val[end];
        out_id[end] = ti;
        out_val[end] = tv;
        heap_sift_down(out_id, out_val, end, 0);
    }
}

/* Swaps candidates i and j. */
static void cand_swap(int32_t *id, float *val, int i, int j) {
    int32_t ti = id[i];
    float tv = val[i];
    id[i] = id[j];
    val[i] = val[j];
    id[j] = ti;
    val[j] = tv;
}

/* Top-p without a sorted list: a quickselect on (probability, id) that
 * tracks mass instead of rank. Rearranges the n candidates so that the first
 * m — the returned count — are the smallest best-first set whose mass reaches
 * target (0 < target <= mass of all), in no particular order. Expected O(n).
 * Invariant: the candidates before lo are kept and hold acc < target; those
 * in [lo, hi) hold at least target - acc. */
static int top_p_partition(int32_t *id, float *val, int n, double target) {
    int lo = 0, hi = n;
    double acc = 0.0;
    if (!(target > 0.0)) { /* top_p <= 0: just the best */
        int b = 0;
        for (int i = 1; i < n; i++)
            if (worse(val[b], id[b], val[i], id[i])) b = i;
        cand_swap(id, val, 0, b);
        return 1;
    }
    while (hi - lo > 1) {
        /* median of three as the pivot, moved to hi - 1 */
        int a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
        if (worse(val[a], id[a], val[b], id[b])) cand_swap(id, val, a, b);
        if (worse(val[b], id[b], val[c], id[c])) cand_swap(id, val, b, c);
        if (worse(val[a], id[a], val[b], id[b])) cand_swap(id, val, a, b);
        cand_swap(id, val, b, hi - 1);
        float pv = val[hi - 1];
        int32_t pi = id[hi - 1];
        /* better than the pivot to the front */
        int store = lo;
        double upper = 0.0;
        for (int i = lo; i < hi - 1; i++)
            if (worse(pv, pi, val[i], id[i])) {
                upper += val[i];
                cand_swap(id, val, i, store++);
            }
        cand_swap(id, val, store, hi - 1); /* the pivot after them */
        if (acc + upper >= target) {
            hi = store;
        } else if (acc + upper + pv >= target) {
            return store + 1;
        } else {
            acc += upper + pv;
            lo = store + 1;
        }
    }
    return lo + 1;
}

int32_t zt_sampler_sample(zt_sampler *s, float *logits) {
    if (!s || !logits) return -1;
    const zt_sampler_params *p = &s->p;
    int V = s->n_vocab;
    apply_penalties(s, logits);
    if (p->temperature <= 0.0f) return argmax(logits, V);

    bool top_p_on = p->top_p < 1.0f;
    bool min_p_on = p->min_p > 0.0f;
    float inv_t = 1.0f / p->temperature;

    /* 3. candidates: the top-k, best first, or the whole vocabulary */
    int32_t *id = s->cand_id;
    float *val = s->cand_val;
    int n;
    bool sorted;
    if (p->top_k > 0 && p->top_k < V) {
        select_top(logits, V, p->top_k, id, val);
        n = p->top_k;
        sorted = true;
    } else {
        n = V;
        sorted = false;
    }
    float lmax = sorted ? val[0] : key(logits[argmax(logits, V)]);
    if (!isfinite(lmax)) return sorted ? id[0] : argmax(logits, V);

    /* 7 (early). min-p alone: cut on the logits, so dropped tokens cost no exp */
    float lmin = -INFINITY;
    if (min_p_on && !top_p_on) lmin = lmax + p->temperature * logf(p->min_p);

    /* 4-5. temperature and softmax (unnormalized; `total` is the mass) */
    double total = 0.0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        float l = sorted ? val[i] : key(logits[i]);
        if (l < lmin) continue;
        float d = l - lmax; /* <= 0; d == 0 stays 1 even when 1/T overflows */
        float e = d == 0.0f ? 1.0f : expf(d * inv_t);
        id[m] = sorted ? id[i] : i;
        val[m] = e;
        total += e;
        m++;
    }
    n = m;

    /* 6. top-p: the smallest set of best candidates holding top_p of the mass */
    if (top_p_on) {
        double target = (double)p->top_p * total;
        if (sorted) {
            double cum = 0.0;
            int keep = 0;
            while (keep < n) {
                cum += val[keep++];
                if (cum >= target) break;
            }
            n = keep;
        } else {
            n = top_p_partition(id, val, n, target);
        }
        total = 0.0;
        for (int i = 0; i < n; i++) total += val[i];
    }

    /* 7. min-p after top-p; p_max is exp(0) = 1, the best candidate's */
    if (min_p_on && top_p_on) {
        float cut = p->min_p;
        total = 0.0;
        m = 0;
        for (int i = 0; i < n; i++) {
            if (val[i] < cut) continue;
            id[m] = id[i];
            val[m] = val[i];
            total += val[i];
            m++;
        }
        n = m;
    }

    /* 8. draw */
    double r = rng_uniform(s) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += val[i];
        if (r < cum) return id[i];
    }
    return id[n - 1]; /* r landed on the rounding slack at the top */
}
