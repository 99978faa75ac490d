/*
 * The sampler: distributions, exclusions, seeds, greedy and penalties.
 *
 * Distribution tests draw 20,000 tokens from a fixed 12-token logit vector and
 * compare the counts with the distribution computed here, independently, in
 * double precision (softmax, then the filters exactly as zt.h defines them),
 * by Pearson's chi-square test at significance 0.001. The critical value for
 * df degrees of freedom is the x with P(chi2_df > x) = 0.001, found by
 * bisection on the chi-square survival function, which for integer df is
 *   S_1(x) = erfc(sqrt(x/2)),  S_2(x) = exp(-x/2),
 *   S_{k+2}(x) = S_k(x) + (x/2)^(k/2) exp(-x/2) / Gamma(k/2 + 1)
 * (checked below against the table values 10.828 for df 1 and 31.264 for
 * df 11). The draws are seeded, so each test passes or fails the same way
 * every run.
 */
#include "../test.h"
#include "rng.h"
#include "zt.h"

#include <stdint.h>
#include <time.h>

/* ---- chi-square --------------------------------------------------------- */

static double chi2_survival(double x, int df) {
    double s = (df % 2) ? erfc(sqrt(x / 2.0)) : exp(-x / 2.0);
    for (int k = (df % 2) ? 1 : 2; k < df; k += 2)
        s += exp((k / 2.0) * log(x / 2.0) - x / 2.0 - lgamma(k / 2.0 + 1.0));
    return s;
}

static double chi2_critical(int df, double alpha) {
    double lo = 0.0, hi = 1000.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (chi2_survival(mid, df) > alpha)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

TEST(test_sampler_chi2_critical_values_match_the_table) {
    CHECK_NEAR(chi2_critical(1, 0.001), 10.828, 0.001);
    CHECK_NEAR(chi2_critical(2, 0.001), 13.816, 0.001);
    CHECK_NEAR(chi2_critical(4, 0.001), 18.467, 0.001);
    CHECK_NEAR(chi2_critical(11, 0.001), 31.264, 0.001);
    CHECK_NEAR(chi2_critical(1, 0.05), 3.841, 0.001);
}

/* ---- the reference distribution ------------------------------------------ */

/* The distribution zt.h defines: top-k on logits, softmax(l / T), top-p
 * (smallest prefix by probability with mass >= top_p), min-p (p >= min_p p_max),
 * renormalized. out[v] = 0 for excluded tokens. */
static const float *sort_logits; /* qsort has no context argument */

static int by_logit_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_logits[i] != sort_logits[j]) return sort_logits[i] > sort_logits[j] ? -1 : 1;
    return i - j;
}

static void reference_probs(const float *logits, int n, float temp, int top_k, float top_p,
                            float min_p, double *out) {
    int *order = malloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = i;
    sort_logits = logits; /* descending, ties by index */
    qsort(order, (size_t)n, sizeof *order, by_logit_desc);
    int keep = (top_k > 0 && top_k < n) ? top_k : n;
    double *p = calloc((size_t)n, sizeof *p), sum = 0.0;
    for (int i = 0; i < keep; i++)
        sum += p[i] = exp(((double)logits[order[i]] - logits[order[0]]) / temp);
    for (int i = 0; i < keep; i++) p[i] /= sum;
    if (top_p < 1.0f) {
        double cum = 0.0;
        int k = 0;
        while (k < keep) {
            cum += p[k++];
            if (cum >= top_p) break;
        }
        keep = k;
    }
    double pmax = p[0];
    sum = 0.0;
    for (int i = 0; i < n; i++) out[i] = 0.0;
    for (int i = 0; i < keep; i++)
        if (!(min_p > 0.0f && p[i] < min_p * pmax)) sum += out[order[i]] = p[i];
    for (int i = 0; i < n; i++) out[i] /= sum;
    free(order);
    free(p);
}

static const float LOGITS12[12] = {0.3f, 2.1f,  -1.2f, 1.4f,  0.0f, -0.5f,
                                   1.9f, -2.3f, 0.8f,  -0.1f, 1.1f, -3.0f};

static zt_sampler_params params(float temp, int top_k, float top_p, float min_p, uint64_t seed) {
    zt_sampler_params p = zt_sampler_defaults();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    return p;
}

/* Draws `draws` tokens and runs the chi-square test; returns false on any
 * failure (printing why). *n_kept gets the size of the support. */
static bool chi2_matches(const zt_sampler_params *p, int draws, int *n_kept) {
    enum { V = 12 };
    double want[V];
    reference_probs(LOGITS12, V, p->temperature, p->top_k, p->top_p, p->min_p, want);
    zt_sampler *s = NULL;
    zt_error err = {0};
    if (zt_sampler_create(p, V, &s, &err) != ZT_OK) {
        fprintf(stderr, "  create: %s\n", err.msg);
        return false;
    }
    long count[V] = {0};
    bool ok = true;
    for (int d = 0; d < draws; d++) {
        float logits[V];
        memcpy(logits, LOGITS12, sizeof logits);
        int32_t t = zt_sampler_sample(s, logits);
        if (t < 0 || t >= V) {
            fprintf(stderr, "  drew %d, outside the vocabulary\n", t);
            ok = false;
            break;
        }
        count[t]++;
    }
    zt_sampler_free(s);
    double chi2 = 0.0;
    int kept = 0;
    for (int v = 0; v < V; v++) {
        if (want[v] == 0.0) {
            if (count[v]) {
                fprintf(stderr, "  token %d is excluded but was drawn %ld times\n", v, count[v]);
                ok = false;
            }
            continue;
        }
        double e = want[v] * draws;
        chi2 += (count[v] - e) * (count[v] - e) / e;
        kept++;
    }
    *n_kept = kept;
    double crit = kept > 1 ? chi2_critical(kept - 1, 0.001) : 0.0;
    if (kept > 1 && !(chi2 < crit)) {
        fprintf(stderr, "  chi2 = %.3f >= %.3f (df %d)\n", chi2, crit, kept - 1);
        ok = false;
    }
    if (kept == 1) { /* one token left: every draw must be it */
        for (int v = 0; v < V; v++)
            if (want[v] > 0.0 && count[v] != draws) ok = false;
    }
    return ok;
}

TEST(test_sampler_temperature_1_matches_softmax_by_chi2) {
    zt_sampler_params p = params(1.0f, 0, 1.0f, 0.0f, 1);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 12);
}

TEST(test_sampler_temperature_0_7_matches_softmax_by_chi2) {
    zt_sampler_params p = params(0.7f, 0, 1.0f, 0.0f, 2);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 12);
}

TEST(test_sampler_top_k_3_matches_and_excludes_by_chi2) {
    zt_sampler_params p = params(1.0f, 3, 1.0f, 0.0f, 3);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 3);
}

TEST(test_sampler_top_p_0_8_matches_and_excludes_by_chi2) {
    zt_sampler_params p = params(1.0f, 0, 0.8f, 0.0f, 4);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 5); /* cumulative 0.287, 0.522, 0.665, 0.770, 0.849 */
}

TEST(test_sampler_min_p_0_2_matches_and_excludes_by_chi2) {
    zt_sampler_params p = params(1.0f, 0, 1.0f, 0.2f, 5);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 5); /* e^0.8 / e^2.1 = 0.273 stays, e^0.3 / e^2.1 = 0.165 goes */
}

TEST(test_sampler_combined_filters_match_by_chi2) {
    /* T 0.8, top-k 8: relative probs 1 .779 .417 .287 .197 .105 .072 .064;
     * top-p 0.9 keeps 5 (cumulative .917); min-p 0.25 then drops .197 */
    zt_sampler_params p = params(0.8f, 8, 0.9f, 0.25f, 6);
    int kept;
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 4);
    /* no top-k (top-p by partition): top-p 0.9 keeps 7, min-p 0.25 keeps 5 */
    p = params(1.0f, 0, 0.9f, 0.25f, 8);
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 5);
    /* top-k with min-p alone (min-p decided on logits, before the exp) */
    p = params(1.3f, 6, 1.0f, 0.15f, 7);
    CHECK(chi2_matches(&p, 20000, &kept));
    CHECK_EQ_INT(kept, 6);
}

/* ---- exclusions on a real-sized vocabulary ---------------------------------- */

TEST(test_sampler_filters_never_emit_excluded_tokens_on_32k_vocab) {
    enum { V = 32000 };
    float *base = malloc(V * sizeof *base), *logits = malloc(V * sizeof *logits);
    double *want = malloc(V * sizeof *want);
    REQUIRE(base && logits && want);
    test_rng r = rng_seed(42);
    for (int i = 0; i < V; i++) base[i] = 2.5f * rng_normal(&r);
    static const struct {
        float t;
        int k;
        float p, minp;
    } cfg[] = {
        {1.0f, 5, 1.0f, 0.0f},   {1.0f, 0, 0.5f, 0.0f},  {0.9f, 0, 1.0f, 0.3f},
        {1.2f, 50, 0.7f, 0.05f}, {1.0f, 0, 0.95f, 0.0f},
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        zt_sampler_params p = params(cfg[c].t, cfg[c].k, cfg[c].p, cfg[c].minp, 100 + c);
        reference_probs(base, V, p.temperature, p.top_k, p.top_p, p.min_p, want);
        int support = 0;
        for (int i = 0; i < V; i++) support += want[i] > 0.0;
        zt_sampler *s = NULL;
        zt_error err = {0};
        REQUIRE(zt_sampler_create(&p, V, &s, &err) == ZT_OK);
        int bad = 0, distinct = 0;
        char *seen = calloc(V, 1);
        for (int d = 0; d < 1000; d++) {
            memcpy(logits, base, V * sizeof *logits);
            int32_t t = zt_sampler_sample(s, logits);
            if (t < 0 || t >= V || want[t] == 0.0)
                bad++;
            else if (!seen[t]) {
                seen[t] = 1;
                distinct++;
            }
        }
        free(seen);
        zt_sampler_free(s);
        if (bad)
            fprintf(stderr, "  config %zu: %d draws outside the %d allowed tokens\n", c, bad,
                    support);
        CHECK_EQ_INT(bad, 0);
        fprintf(stderr, "  config %zu: support %d, distinct drawn %d\n", c, support, distinct);
        CHECK(distinct >= (support > 1 ? 2 : 1) && distinct <= support);
    }
    free(base);
    free(logits);
    free(want);
}

/* ---- seeds ------------------------------------------------------------------- */

static void draw_sequence(const zt_sampler_params *p, int32_t *out, int n) {
    zt_sampler *s = NULL;
    zt_error err = {0};
    if (zt_sampler_create(p, 12, &s, &err) != ZT_OK) return;
    for (int i = 0; i < n; i++) {
        float logits[12];
        memcpy(logits, LOGITS12, sizeof logits);
        out[i] = zt_sampler_sample(s, logits);
    }
    zt_sampler_free(s);
}

TEST(test_sampler_same_seed_same_sequence_different_seed_differs) {
    enum { N = 1000 };
    int32_t a[N], b[N], c[N];
    memset(a, 0xff, sizeof a);
    memset(b, 0, sizeof b);
    zt_sampler_params p = params(1.0f, 0, 1.0f, 0.0f, 1234);
    draw_sequence(&p, a, N);
    draw_sequence(&p, b, N);
    CHECK(memcmp(a, b, sizeof a) == 0);
    p.seed = 1235;
    draw_sequence(&p, c, N);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += a[i] != c[i];
    CHECK(diff > N / 2); /* two independent draws agree with probability ~0.19 */

    /* reset re-seeds: the sampler repeats its first sequence */
    p.seed = 1234;
    zt_sampler *s = NULL;
    zt_error err = {0};
    REQUIRE(zt_sampler_create(&p, 12, &s, &err) == ZT_OK);
    int32_t first[20], again[20];
    for (int i = 0; i < 20; i++) {
        float l[12];
        memcpy(l, LOGITS12, sizeof l);
        first[i] = zt_sampler_sample(s, l);
    }
    zt_sampler_reset(s);
    for (int i = 0; i < 20; i++) {
        float l[12];
        memcpy(l, LOGITS12, sizeof l);
        again[i] = zt_sampler_sample(s, l);
    }
    CHECK(memcmp(first, again, sizeof first) == 0);
    CHECK(memcmp(first, a, sizeof first) == 0);
    zt_sampler_free(s);
}

/* ---- greedy ---------------------------------------------------------------- */

TEST(test_sampler_greedy_is_argmax_with_lowest_index_on_ties) {
    enum { V = 5000 };
    float *l = malloc(V * sizeof *l);
    REQUIRE(l);
    zt_sampler_params p = params(0.0f, 40, 0.9f, 0.05f, 9); /* filters are ignored */
    zt_sampler *s = NULL;
    zt_error err = {0};
    REQUIRE(zt_sampler_create(&p, V, &s, &err) == ZT_OK);
    CHECK(zt_sampler_is_greedy(s));
    test_rng r = rng_seed(7);
    int wrong = 0;
    for (int trial = 0; trial < 50; trial++) {
        int best = 0;
        for (int i = 0; i < V; i++) {
            l[i] = rng_normal(&r);
            if (l[i] > l[best]) best = i;
        }
        if (zt_sampler_sample(s, l) != best) wrong++;
        /* a tie at a higher index loses; at a lower index it wins */
        int hi = (best + 1 + (int)(rng_u64(&r) % (V - 1))) % V;
        l[hi] = l[best];
        int want = hi < best ? hi : best;
        if (zt_sampler_sample(s, l) != want) wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    /* NaN never wins; all equal -> index 0 */
    for (int i = 0; i < V; i++) l[i] = -1.0f;
    l[0] = NAN;
    l[17] = 0.5f;
    CHECK_EQ_INT(zt_sampler_sample(s, l), 17);
    for (int i = 0; i < V; i++) l[i] = 3.0f;
    CHECK_EQ_INT(zt_sampler_sample(s, l), 0);
    zt_sampler_free(s);
    free(l);
}

TEST(test_sampler_top_k_1_and_tiny_temperature_pick_the_argmax) {
    float l[12];
    zt_sampler_params p = params(1.0f, 1, 1.0f, 0.0f, 3);
    zt_sampler *s = NULL;
    zt_error err = {0};
    REQUIRE(zt_sampler_create(&p, 12, &s, &err) == ZT_OK);
    CHECK(!zt_sampler_is_greedy(s));
    for (int i = 0; i < 100; i++) {
        memcpy(l, LOGITS12, sizeof l);
        CHECK_EQ_INT(zt_sampler_sample(s, l), 1);
    }
    zt_sampler_free(s);
    p = params(1e-30f, 0, 1.0f, 0.0f, 3); /* 1/T overflows to inf */
    REQUIRE(zt_sampler_create(&p, 12, &s, &err) == ZT_OK);
    for (int i = 0; i < 100; i++) {
        memcpy(l, LOGITS12, sizeof l);
        CHECK_EQ_INT(zt_sampler_sample(s, l), 1);
    }
    zt_sampler_free(s);
}

/* ---- penalties --------------------------------------------------------------- */

TEST(test_sampler_penalties_change_logits_as_the_formulas_say) {
    zt_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1);
    p.repeat_penalty = 1.5f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 4;
    zt_sampler *s = NULL;
    zt_error err = {0};
    REQUIRE(zt_sampler_create(&p, 5, &s, &err) == ZT_OK);
    CHECK(!zt_sampler_is_greedy(s)); /* needs the logits: not a device argmax */
    /* history 3 0 1 0 0: the window of 4 is [0 1 0 0]; token 3 fell out */
    int32_t hist[] = {3, 0, 1, 0, 0};
    for (int i = 0; i < 5; i++) zt_sampler_accept(s, hist[i]);
    zt_sampler_accept(s, -1); /* out of range: ignored */
    zt_sampler_accept(s, 5);
    float l[5] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
    CHECK_EQ_INT(zt_sampler_sample(s, l), 3);
    CHECK_NEAR(l[0], 2.0 / 1.5 - 3 * 0.25 - 0.5, 1e-6);  /* 0.0833: positive, divided */
    CHECK_NEAR(l[1], -1.0 * 1.5 - 1 * 0.25 - 0.5, 1e-6); /* -2.25: negative, multiplied */
    CHECK_NEAR(l[2], 0.5, 0.0);
    CHECK_NEAR(l[3], 3.0, 0.0); /* outside the window */
    CHECK_NEAR(l[4], -2.0, 0.0);
    /* the same history gives the same penalties again (counts were cleared) */
    float l2[5] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
    zt_sampler_sample(s, l2);
    CHECK(memcmp(l, l2, sizeof l) == 0);
    /* reset forgets the history */
    zt_sampler_reset(s);
    float l3[5] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
    zt_sampler_sample(s, l3);
    CHECK_NEAR(l3[0], 2.0, 0.0);
    zt_sampler_free(s);

    /* a penalty can move the argmax */
    p = params(0.0f, 0, 1.0f, 0.0f, 1);
    p.repeat_penalty = 1.2f;
    p.penalty_last_n = 8;
    REQUIRE(zt_sampler_create(&p, 2, &s, &err) == ZT_OK);
    zt_sampler_accept(s, 0);
    float two[2] = {1.0f, 0.9f};
    CHECK_EQ_INT(zt_sampler_sample(s, two), 1);
    CHECK_NEAR(two[0], 1.0 / 1.2, 1e-7);
    zt_sampler_free(s);

    /* presence only (repeat 1): a zero logit seen twice */
    p = params(0.0f, 0, 1.0f, 0.0f, 1);
    p.presence_penalty = 0.75f;
    p.frequency_penalty = -0.5f; /* negative: encourages repeats */
    p.penalty_last_n = 8;
    REQUIRE(zt_sampler_create(&p, 3, &s, &err) == ZT_OK);
    zt_sampler_accept(s, 2);
    zt_sampler_accept(s, 2);
    float three[3] = {0.1f, 0.2f, 0.0f};
    CHECK_EQ_INT(zt_sampler_sample(s, three), 2); /* 0.25 now beats 0.2 */
    CHECK_NEAR(three[2], 0.0 - (2 * -0.5 + 0.75), 1e-7);
    zt_sampler_free(s);
}

/* ---- arguments ----------------------------------------------------------------- */

TEST(test_sampler_create_rejects_bad_parameters_with_messages) {
    zt_sampler *s = (zt_sampler *)&s;
    zt_error err = {0};
    zt_sampler_params p = zt_sampler_defaults();
    CHECK_EQ_INT(zt_sampler_create(&p, 0, &s, &err), ZT_EINVAL);
    CHECK(s == NULL);
    CHECK_STR(err.msg, "sampler: vocabulary size 0 must be > 0");
    p.min_p = 1.5f;
    CHECK_EQ_INT(zt_sampler_create(&p, 10, &s, &err), ZT_EINVAL);
    CHECK_STR(err.msg, "sampler: min_p 1.5 must be <= 1");
    p = zt_sampler_defaults();
    p.repeat_penalty = 0.0f;
    CHECK_EQ_INT(zt_sampler_create(&p, 10, &s, &err), ZT_EINVAL);
    p = zt_sampler_defaults();
    p.penalty_last_n = -1;
    CHECK_EQ_INT(zt_sampler_create(&p, 10, &s, &err), ZT_EINVAL);
    p = zt_sampler_defaults();
    p.temperature = NAN;
    CHECK_EQ_INT(zt_sampler_create(&p, 10, &s, &err), ZT_EINVAL);
    /* NULL params: the defaults */
    CHECK_EQ_INT(zt_sampler_create(NULL, 10, &s, &err), ZT_OK);
    CHECK(s != NULL && !zt_sampler_is_greedy(s));
    zt_sampler_free(s);
    zt_sampler_free(NULL);
}

/* Cost per token on Qwen2's 152k vocabulary (copying the logits included):
 * the default pipeline (penalties, top-k 40, top-p, min-p), top-p over the
 * whole vocabulary (no top-k), and plain temperature sampling. Printed; the
 * assertion is only a loose bound (20 ms) that a full sort per token with
 * sanitizers on would still meet, to catch accidental quadratic work. */
TEST(test_sampler_cost_per_token_on_152k_vocab_is_bounded) {
    enum { V = 152064, N = 50 };
    float *base = malloc(V * sizeof *base), *l = malloc(V * sizeof *l);
    REQUIRE(base && l);
    test_rng r = rng_seed(5);
    for (int i = 0; i < V; i++) base[i] = 3.0f * rng_normal(&r);
    zt_sampler_params cfg[3];
    cfg[0] = zt_sampler_defaults();
    cfg[0].repeat_penalty = 1.1f;
    cfg[1] = params(1.0f, 0, 0.95f, 0.0f, 1);
    cfg[2] = params(1.0f, 0, 1.0f, 0.0f, 1);
    static const char *const what[] = {"defaults", "top-p 0.95 alone", "temperature alone"};
    for (int c = 0; c < 3; c++) {
        zt_sampler *s = NULL;
        zt_error err = {0};
        REQUIRE(zt_sampler_create(&cfg[c], V, &s, &err) == ZT_OK);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++) {
            memcpy(l, base, V * sizeof *l);
            int32_t t = zt_sampler_sample(s, l);
            CHECK(t >= 0 && t < V);
            zt_sampler_accept(s, t);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms =
            ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / N;
        fprintf(stderr, "  sampler, vocab %d, %s: %.3f ms/token\n", V, what[c], ms);
        CHECK(ms < 20.0);
        zt_sampler_free(s);
    }
    free(base);
    free(l);
}
